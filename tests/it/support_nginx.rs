//! A real nginx reverse proxy in front of the app, the way etcdboard is deployed behind an ingress
//! under a path prefix. Everything nginx writes (pid, logs, temp files) stays in a tempdir; it runs
//! as a single foreground process and is killed and reaped on drop.

#![allow(dead_code)]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx as installed by Debian's `nginx` package.
pub const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx.
pub struct Nginx {
    /// Where nginx listens.
    pub addr: SocketAddr,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// How the test nginx is set up beyond the defaults.
#[derive(Default)]
pub struct NginxOptions<'a> {
    /// More directives inside `location {prefix}/` (e.g. `auth_basic`, `proxy_set_header`).
    pub location_extra: &'a str,
    /// A bare `proxy_pass`: `Host` and `X-Forwarded-Proto` are not passed on (nginx then sends
    /// the upstream's name as `Host`), as in many hand-written configurations.
    pub bare_proxy_pass: bool,
}

/// The configuration: `location {prefix}/` proxies to the upstreams (round-robin, like an
/// ingress in front of several replicas) without rewriting the path.
fn config(
    dir: &Path,
    port: u16,
    prefix: &str,
    upstreams: &[SocketAddr],
    opts: &NginxOptions<'_>,
) -> String {
    let d = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {u};\n"))
        .collect();
    let extra = opts.location_extra;
    let forward = if opts.bare_proxy_pass {
        ""
    } else {
        "proxy_set_header Host $host;\n            proxy_set_header X-Forwarded-Proto $scheme;"
    };
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;

events {{
    worker_connections 256;
}}

http {{
    log_format upstream '$request $status upstream=$upstream_addr';
    access_log {d}/access.log upstream;

    upstream etcdboard {{
{servers}    }}
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

    server {{
        listen 127.0.0.1:{port};
        server_name localhost;

        location {prefix}/ {{
            proxy_pass http://etcdboard;
            proxy_http_version 1.1;
            {forward}
            proxy_buffering off;
            proxy_read_timeout 1h;
{extra}
        }}

        location / {{
            return 404 "not proxied by the test nginx\n";
        }}
    }}
}}
"#
    )
}

impl Nginx {
    /// Starts nginx on a free loopback port, proxying `{prefix}/` to `upstream`, and waits until
    /// `{prefix}/healthz` answers through it.
    pub async fn start(prefix: &str, upstream: SocketAddr) -> Nginx {
        Self::start_with(prefix, &[upstream], NginxOptions::default()).await
    }

    /// Starts nginx in front of several upstreams, with extra location directives.
    pub async fn start_with(
        prefix: &str,
        upstreams: &[SocketAddr],
        opts: NginxOptions<'_>,
    ) -> Nginx {
        assert!(
            Path::new(NGINX).is_file(),
            "ingress tests need {NGINX} (Debian package `nginx`); it is missing"
        );
        let dir = tempfile::Builder::new()
            .prefix("etcdboard-nginx-")
            .tempdir()
            .expect("nginx tempdir");
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, prefix, upstreams, &opts))
            .expect("write nginx.conf");
        let log = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            // Before the configuration is read, nginx opens its compiled-in error log; keep that
            // in the tempdir too.
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {NGINX}: {e}"));
        let mut nginx = Nginx {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: Some(child),
            dir,
        };
        nginx.wait_ready(&format!("{prefix}/healthz")).await;
        nginx
    }

    async fn wait_ready(&mut self, path: &str) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        let url = self.url(path);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = http.get(&url).send().await {
                // 401: nginx asks for a password (auth_basic in front): it is up.
                if r.status().is_success() || r.status() == 401 {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("nginx exited ({status}) before answering:\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not answer {url} within 15 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Absolute URL of a path on nginx (the path includes the prefix).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// nginx's stderr and error log, for failure messages.
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- stderr\n{}\n--- error.log\n{}",
            read("stderr.log"),
            read("error.log")
        )
    }

    /// The access log (one line per proxied request).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
