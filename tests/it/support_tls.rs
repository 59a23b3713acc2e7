//! Test PKI made with the `openssl` command (Debian package `openssl`, installed by
//! `scripts/deps.sh test`), and the real `etcdboard` binary run from a configuration file, with
//! its log captured.
//!
//! The etcd side is [`LocalCluster`](etcdboard::etcd::local::LocalCluster) with its
//! [`LocalTls`](etcdboard::etcd::local::LocalTls) option: this file only makes certificates and
//! runs etcdboard, it does not spawn etcd itself.

#![allow(dead_code)]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcdboard::etcd::local::LocalTls;

/// The DNS name in the server certificate (besides `IP:127.0.0.1`), for `tls.server_name`.
pub const SERVER_DNS: &str = "etcd.etcdboard-test.internal";

/// A CA, a server certificate and a client certificate it signed, and an unrelated second CA.
pub struct Pki {
    /// Holds every file; removed on drop.
    pub dir: tempfile::TempDir,
}

impl Pki {
    /// A file of the PKI by name: `ca.crt`, `server.crt`, `server.key`, `client.crt`,
    /// `client.key`, `other-ca.crt`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// etcd serving clients over TLS with this PKI, refusing clients without a certificate.
    pub fn etcd_tls(&self) -> LocalTls {
        LocalTls {
            cert_file: self.path("server.crt"),
            key_file: self.path("server.key"),
            ca_file: self.path("ca.crt"),
            client_cert_auth: true,
            client_identity: Some((self.path("client.crt"), self.path("client.key"))),
        }
    }

    /// The base64 body lines of a PEM private key: what must never appear in an answer or a log.
    pub fn key_material(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(name))
            .expect("read key")
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
            .map(str::to_string)
            .collect()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("TLS tests need the `openssl` command (apt-get install openssl): {e}")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA (EC P-256), a server certificate for `127.0.0.1` and [`SERVER_DNS`] (also usable as
/// a client certificate: etcd's gRPC gateway dials its own members with it), a client certificate,
/// and a second CA that signed nothing here.
pub fn make_pki() -> Pki {
    let dir = tempfile::Builder::new()
        .prefix("etcdboard-pki-")
        .tempdir()
        .expect("pki dir");
    let d = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-noenc",
    ];
    for ca in ["ca", "other-ca"] {
        let key = format!("{ca}.key");
        let crt = format!("{ca}.crt");
        let subj = format!("/CN=etcdboard test {ca}");
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(d, &args);
    }
    let leaf = |name: &str, cn: &str, ext: &str| {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let ext_file = format!("{name}.ext");
        std::fs::write(d.join(&ext_file), ext).expect("write ext");
        let subj = format!("/CN={cn}");
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(d, &args);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext_file,
            ],
        );
    };
    leaf(
        "server",
        "etcd test server",
        &format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:{SERVER_DNS}\n"
        ),
    );
    leaf(
        "client",
        "etcdboard",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=clientAuth\n",
    );
    Pki { dir }
}

/// The `etcdboard` binary serving from a configuration file, its stdout and stderr in a file.
/// Killed on drop.
pub struct Served {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Runs `etcdboard serve --config <yaml>` with `env` added to its environment, debug logs on,
    /// and waits until it answers `/healthz`.
    pub async fn start(yaml: &str, etcd_timeout: &str, env: &[(&str, &str)]) -> Served {
        let dir = tempfile::Builder::new()
            .prefix("etcdboard-served-")
            .tempdir()
            .expect("dir");
        let config = dir.path().join("clusters.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let log = dir.path().join("etcdboard.log");
        // A free port, released just before etcdboard binds it (a race with other processes
        // is possible but rare; the failure then says so).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_etcdboard"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--etcd-timeout")
            .arg(etcd_timeout)
            .arg("--kube")
            .arg("off")
            .env("RUST_LOG", "debug")
            .env_remove("ETCDBOARD_ENDPOINTS")
            .env_remove("ETCDBOARD_CONFIG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn etcdboard");
        let mut served = Served {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
            _dir: dir,
        };
        if let Err(why) = served.wait_ready().await {
            panic!("{why}");
        }
        served
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.url)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("etcdboard exited ({status}):\n{}", self.log_text()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "etcdboard did not answer /healthz within 20 s:\n{}",
                    self.log_text()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
