//! Test fixtures: `spawn_app()` starts a real 3-member etcd on loopback and etcdboard in front of
//! it; everything is torn down when the returned value is dropped.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use etcdboard::app::App;
use etcdboard::config::{AccessArgs, ClusterConfig, Config, HttpArgs};
use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};

static LOGS: Once = Once::new();

/// Logs go to stdout only when `TEST_LOG` is set, so test output stays readable.
pub fn init_logs() {
    LOGS.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            etcdboard::telemetry::init(etcdboard::config::LogFormat::Text, std::io::stdout);
        } else {
            etcdboard::telemetry::init(etcdboard::config::LogFormat::Text, std::io::sink);
        }
    });
}

/// How to start the app under test.
pub struct AppOptions {
    /// `--base-path`.
    pub base_path: String,
    /// Members of the etcd cluster.
    pub members: usize,
    /// Listen address (port 0: any free port).
    pub listen: SocketAddr,
    /// Deadline for etcd calls.
    pub etcd_timeout: Duration,
    /// Metrics scrape interval of the cluster page.
    pub metrics_interval: Duration,
    /// `--kube` (`off` unless a test brings a Kubernetes API server).
    pub kube: String,
    /// Identity and role flags. By default anonymous users are admins here, so tests of other
    /// features can write; access-control tests set what they test.
    pub access: AccessArgs,
    /// The config file's `access:` section (YAML), as a user would write it.
    pub access_yaml: Option<String>,
    /// `--request-timeout`.
    pub request_timeout: Duration,
    /// `--allowed-hosts`.
    pub allowed_hosts: Vec<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            base_path: String::new(),
            members: 3,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            etcd_timeout: Duration::from_secs(3),
            metrics_interval: Duration::from_secs(10),
            kube: "off".into(),
            access: AccessArgs {
                anonymous_role: Some("admin".into()),
                // Tests that check audit lines name a file; the rest keep the output readable.
                audit_log: Some("/dev/null".into()),
                ..AccessArgs::default()
            },
            access_yaml: None,
            request_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
        }
    }
}

/// A running etcdboard in front of its own real etcd cluster.
pub struct TestApp {
    /// Where etcdboard listens.
    pub addr: SocketAddr,
    /// Its base path.
    pub base: String,
    /// The etcd cluster (kill / stop / restart members through it).
    pub etcd: LocalCluster,
    /// An HTTP client for the API.
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.etcd.shutdown();
    }
}

/// Starts etcd + etcdboard with default options.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

/// Starts etcd + etcdboard.
pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    init_logs();
    let etcd = LocalCluster::start(LocalClusterOptions {
        members: opts.members,
        ..Default::default()
    })
    .await
    .expect("start etcd");
    serve_on(etcd, opts).await
}

/// Starts etcdboard in front of an already running cluster.
pub async fn serve_on(etcd: LocalCluster, opts: AppOptions) -> TestApp {
    let endpoints = etcd.client_urls();
    serve_on_endpoints(etcd, endpoints, opts).await
}

/// Starts etcdboard in front of an already running cluster, configured with `endpoints` only.
pub async fn serve_on_endpoints(
    etcd: LocalCluster,
    endpoints: Vec<String>,
    opts: AppOptions,
) -> TestApp {
    let replica = start_replica(endpoints, &opts).await;
    TestApp {
        addr: replica.addr,
        base: replica.base.clone(),
        etcd,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client"),
        shutdown: replica.into_shutdown(),
    }
}

/// One more etcdboard (a replica) in front of etcd members it does not own; stopped on drop.
pub struct Replica {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its base path.
    pub base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Replica {
    fn into_shutdown(mut self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.shutdown.take()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts etcdboard for the cluster `test` at `endpoints`.
pub async fn start_replica(endpoints: Vec<String>, opts: &AppOptions) -> Replica {
    init_logs();
    let http = HttpArgs {
        listen: opts.listen,
        base_path: opts.base_path.clone(),
        etcd_timeout: opts.etcd_timeout,
        metrics_interval: opts.metrics_interval,
        kube: opts.kube.clone(),
        access: opts.access.clone(),
        request_timeout: opts.request_timeout,
        allowed_hosts: opts.allowed_hosts.clone(),
        ..HttpArgs::default()
    };
    let mut config = Config::new(
        &http,
        vec![ClusterConfig {
            name: "test".into(),
            endpoints,
            ..Default::default()
        }],
    )
    .expect("config");
    if let Some(yaml) = &opts.access_yaml {
        let file: etcdboard::access::FileAccess = serde_yaml::from_str(yaml).expect("access yaml");
        config
            .access
            .add_file("test: access", file, &["test"])
            .expect("access section");
    }
    serve_config(config).await
}

/// Builds and serves etcdboard with `config` until the returned [`Replica`] is dropped.
pub async fn serve_config(config: Config) -> Replica {
    init_logs();
    let base = config.base_path.clone();
    let app = App::build(config).await.expect("build app");
    let addr = app.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    Replica {
        addr,
        base,
        shutdown: Some(tx),
    }
}

impl TestApp {
    /// Waits (≤ 5 s) until the listing index of cluster `test` is built; it starts with the
    /// first listing, and its watch is what notes deletions and serves cached pages.
    pub async fn wait_for_index(&self) {
        for _ in 0..100 {
            let (_, body) = self.get_json("/api/v1/clusters/test/keys?limit=1").await;
            if body["index"] == "ready" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the listing index never became ready");
    }

    /// Absolute URL of a path under the base path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}{}", self.addr, self.base, path)
    }

    /// GET a path and parse the JSON answer.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self.http.get(self.url(path)).send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.json().await.expect("json body");
        (status, body)
    }

    /// GET a path and return status and body text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let resp = self.http.get(self.url(path)).send().await.expect("request");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    }

    /// A direct etcd client (tests may talk to etcd themselves; product code goes through the gateway).
    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect(self.etcd.client_urls(), None)
            .await
            .expect("etcd client")
    }

    /// Writes keys directly to etcd, in txns of 128.
    pub async fn put_all<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, kvs: &[(K, V)]) {
        self.put_all_leased(kvs, None).await;
    }

    /// [`TestApp::put_all`], the keys attached to `lease` if given.
    pub async fn put_all_leased<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        kvs: &[(K, V)],
        lease: Option<i64>,
    ) {
        let mut c = self.client().await;
        let opts = lease.map(|l| etcd_client::PutOptions::new().with_lease(l));
        for chunk in kvs.chunks(128) {
            let ops: Vec<etcd_client::TxnOp> = chunk
                .iter()
                .map(|(k, v)| {
                    etcd_client::TxnOp::put(k.as_ref().to_vec(), v.as_ref().to_vec(), opts.clone())
                })
                .collect();
            c.txn(etcd_client::Txn::new().and_then(ops))
                .await
                .expect("txn");
        }
    }

    /// Attaches so many long keys under `prefix` to `lease` that etcd's list of its keys is over
    /// the 4 MiB etcd-client reads of one answer: 4,500 keys of 1,000 bytes, 4.5 MB (typical keys
    /// of 50 bytes would need ~80,000). Returns how many.
    pub async fn attach_unlistable_keys(&self, lease: i64, prefix: &str) -> u32 {
        const KEYS: u32 = 4_500;
        let pad = "p".repeat(1_000 - prefix.len() - 5);
        let kvs: Vec<(String, &str)> = (0..KEYS)
            .map(|i| (format!("{prefix}{pad}{i:05}"), "v"))
            .collect();
        self.put_all_leased(&kvs, Some(lease)).await;
        KEYS
    }

    /// Lists every page of a listing through the API and returns the items' `key_b64`s.
    pub async fn list_all(&self, query: &str) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let q = match &after {
                Some(a) => format!("{query}&after={a}"),
                None => query.to_string(),
            };
            let (status, body) = self
                .get_json(&format!("/api/v1/clusters/test/keys?{q}"))
                .await;
            assert_eq!(status, 200, "{body}");
            for item in body["items"].as_array().expect("items") {
                out.push((
                    item["key_b64"].as_str().expect("key_b64").to_string(),
                    item["dir"].as_bool().expect("dir"),
                ));
            }
            match body["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => return out,
            }
        }
    }
}

/// Standard base64 of bytes.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Base64url (no padding) of bytes, for `*_b64` parameters.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Percent-encodes every byte (for query parameters carrying raw bytes).
pub fn pct(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}
