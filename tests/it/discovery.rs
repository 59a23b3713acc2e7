//! Discovered clusters against a REAL kube-apiserver (1.20) and real etcd: Kubernetes proposes,
//! the `discovery:` rules of the config file decide. A cluster a rule covers is browsed at its
//! pods' IPs and client ports; one no rule covers is listed and never dialled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcdboard::config::{AccessArgs, Config, HttpArgs, ServeArgs};
use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};

use crate::helpers::{init_logs, serve_config, Replica};
use crate::support_kube::KubeApi;

/// The one discovered cluster a rule covers.
const BROWSED: &str = "prod-a.etcd-app";

/// etcd-operator's CRD (v1beta2, schema open), as the operator installs it.
const ETCDCLUSTER_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: etcdclusters.etcd.database.coreos.com
spec:
  group: etcd.database.coreos.com
  scope: Namespaced
  names: {kind: EtcdCluster, listKind: EtcdClusterList, plural: etcdclusters, singular: etcdcluster}
  versions:
  - name: v1beta2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

/// etcdboard serving only what a config file says: `yaml` (clusters and/or discovery rules).
struct DiscoveryApp {
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _replica: Replica,
}

impl DiscoveryApp {
    async fn start(kube: &KubeApi, yaml: &str) -> Self {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etcdboard.yaml");
        std::fs::write(&path, yaml).unwrap();
        let args = ServeArgs {
            http: HttpArgs {
                listen: "127.0.0.1:0".parse().unwrap(),
                kube: kube.kubeconfig.display().to_string(),
                access: AccessArgs {
                    anonymous_role: Some("admin".into()),
                    ..AccessArgs::default()
                },
                ..HttpArgs::default()
            },
            endpoints: Vec::new(),
            config: Some(path),
        };
        let config = Config::from_serve(&args).expect("config");
        let replica = serve_config(config).await;
        DiscoveryApp {
            addr: replica.addr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            _dir: dir,
            _replica: replica,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .expect("request");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    }

    async fn json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.get(path).await;
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        (status, body)
    }

    /// Polls `path` until `ok` holds for (status, body); panics with the last answer after `within`.
    async fn until(
        &self,
        path: &str,
        within: Duration,
        what: &str,
        ok: impl Fn(u16, &serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let (status, body) = self.json(path).await;
            if ok(status, &body) {
                eprintln!("{what}: after {:?}", started.elapsed());
                return body;
            }
            assert!(
                started.elapsed() < within,
                "{what}: not seen within {within:?}; last answer {status}: {body:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn listed<'a>(clusters: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    clusters.as_array()?.iter().find(|c| c["name"] == name)
}

/// An etcd-operator style pod `ns/name` (label `etcd_cluster=cluster`) whose status says it runs
/// at 127.0.0.1 with its container port `client` = `port`.
async fn etcd_pod(kube: &KubeApi, ns: &str, name: &str, labels: &str, port: u16) {
    kube.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {labels}
spec:
  automountServiceAccountToken: false
  containers:
  - name: etcd
    image: quay.io/coreos/etcd:v3.4.23
    ports:
    - {{name: client, containerPort: {port}}}
    - {{name: peer, containerPort: 2380}}
"
    ))
    .await;
    kube.patch_status(
        ns,
        "pod",
        name,
        r#"{"status":{"phase":"Running","podIP":"127.0.0.1","podIPs":[{"ip":"127.0.0.1"}],"containerStatuses":[{"name":"etcd","ready":true,"restartCount":0,"image":"etcd","imageID":"","state":{"running":{}}}]}}"#,
    )
    .await;
}

async fn etcd_cluster_cr(kube: &KubeApi, ns: &str, name: &str) {
    kube.apply(&format!(
        "apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  name: {name}
  namespace: {ns}
spec:
  size: 3
  version: 3.4.23
"
    ))
    .await;
}

async fn install_crd(kube: &KubeApi) {
    kube.apply(ETCDCLUSTER_CRD).await;
    kube.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/etcdclusters.etcd.database.coreos.com",
        "--timeout=30s",
    ])
    .await;
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

async fn force_delete_pod(kube: &KubeApi, ns: &str, name: &str) {
    kube.kubectl(&[
        "-n",
        ns,
        "delete",
        "pod",
        name,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_cluster_a_rule_covers_is_browsed_at_its_pods_and_goes_with_them() {
    let kube = KubeApi::start().await;
    install_crd(&kube).await;
    kube.ensure_namespace("prod-a").await;
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let mut client = etcd_client::Client::connect(etcd.client_urls(), None)
        .await
        .expect("etcd client");
    client.put("/app/a", "1", None).await.expect("put");
    client.put("/app/b", "2", None).await.expect("put");

    let app = DiscoveryApp::start(
        &kube,
        "discovery:\n  - namespaces: [prod-*]\n    sources: [etcd-operator]\n",
    )
    .await;
    etcd_cluster_cr(&kube, "prod-a", "etcd-app").await;
    for (name, url) in etcd.member_names().iter().zip(etcd.client_urls()) {
        etcd_pod(
            &kube,
            "prod-a",
            name,
            "{etcd_cluster: etcd-app, app: etcd}",
            port_of(&url),
        )
        .await;
    }

    // Listed within seconds, at the pods' IPs and client ports.
    let clusters = app
        .until(
            "/api/v1/clusters",
            Duration::from_secs(20),
            "the discovered cluster listed",
            |_, b| {
                listed(b, BROWSED).is_some_and(|c| c["endpoints"].as_array().unwrap().len() == 3)
            },
        )
        .await;
    let c = listed(&clusters, BROWSED).unwrap();
    assert_eq!(c["discovered"], true, "{c:#}");
    assert_eq!(c["source"], "etcd-operator");
    assert_eq!(c["namespace"], "prod-a");
    let mut want: Vec<String> = etcd.client_urls();
    want.sort();
    let got: Vec<String> = c["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want, "endpoints are the pods' IPs and `client` ports");

    // Keys can be listed and read through it.
    let (status, page) = app
        .json(&format!(
            "/api/v1/clusters/{BROWSED}/keys?prefix=/app/&mode=flat"
        ))
        .await;
    assert_eq!(status, 200, "{page:#}");
    let keys: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["/app/a", "/app/b"]);
    let (status, key) = app
        .json(&format!("/api/v1/clusters/{BROWSED}/key?key=/app/b"))
        .await;
    assert_eq!((status, key["value"].as_str()), (200, Some("2")), "{key:#}");

    // Its pages open, and its topology is exactly its pods.
    let (status, html) = app
        .get(&format!("/clusters/{BROWSED}/keys?prefix=/app/&mode=flat"))
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("/app/b"),
        "the key browser lists the keys: {html}"
    );
    let (status, html) = app.get(&format!("/clusters/{BROWSED}")).await;
    assert_eq!(status, 200, "{html}");
    let topo = app
        .until(
            &format!("/api/v1/clusters/{BROWSED}/topology"),
            Duration::from_secs(10),
            "members joined with their pods",
            |s, b| {
                s == 200
                    && b["members"]
                        .as_array()
                        .is_some_and(|m| m.len() == 3 && m.iter().all(|p| !p["pod"].is_null()))
            },
        )
        .await;
    assert!(
        topo["source"]
            .as_str()
            .unwrap()
            .contains("discovered (etcd-operator) in namespace prod-a"),
        "{topo:#}"
    );
    let status = topo["discovered"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == BROWSED)
        .unwrap();
    assert_eq!(status["browsable"], true, "{status:#}");

    // Endpoints follow the pods.
    let names = etcd.member_names();
    force_delete_pod(&kube, "prod-a", &names[2]).await;
    app.until(
        "/api/v1/clusters",
        Duration::from_secs(10),
        "the deleted pod's endpoint dropped",
        |_, b| listed(b, BROWSED).is_some_and(|c| c["endpoints"].as_array().unwrap().len() == 2),
    )
    .await;
    let (status, _) = app
        .json(&format!("/api/v1/clusters/{BROWSED}/key?key=/app/a"))
        .await;
    assert_eq!(status, 200, "still browsable at the remaining members");

    // Removing the cluster removes it (after a short grace period).
    kube.kubectl(&["-n", "prod-a", "delete", "etcdcluster", "etcd-app"])
        .await;
    for name in &names[..2] {
        force_delete_pod(&kube, "prod-a", name).await;
    }
    app.until(
        &format!("/api/v1/clusters/{BROWSED}/keys?prefix=/"),
        Duration::from_secs(20),
        "the removed cluster gone",
        |s, _| s == 404,
    )
    .await;
    let (_, clusters) = app.json("/api/v1/clusters").await;
    assert!(listed(&clusters, BROWSED).is_none(), "{clusters:#}");
    let (status, _) = app.get(&format!("/clusters/{BROWSED}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_cluster_no_rule_covers_is_listed_and_never_dialled() {
    let kube = KubeApi::start().await;
    install_crd(&kube).await;
    kube.ensure_namespace("staging").await;
    kube.ensure_namespace("prod-b").await;

    // What the uncovered clusters' pods point at: a listener counting every connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    // A configured cluster (to ask for the topology) next to a rule for `prod-*` etcd-operator
    // clusters only.
    let etcd = LocalCluster::start(LocalClusterOptions {
        members: 1,
        ..Default::default()
    })
    .await
    .expect("etcd");
    let app = DiscoveryApp::start(
        &kube,
        &format!(
            "clusters:\n  - name: main\n    endpoints: [{}]\ndiscovery:\n  - namespaces: [prod-*]\n    sources: [etcd-operator]\n",
            etcd.client_urls()[0]
        ),
    )
    .await;
    // An etcd-operator cluster in a namespace no rule covers …
    etcd_cluster_cr(&kube, "staging", "etcd-app").await;
    for name in ["etcd-app-0", "etcd-app-1", "etcd-app-2"] {
        etcd_pod(&kube, "staging", name, "{etcd_cluster: etcd-app}", trap).await;
    }
    // … and a StatefulSet-style one in a covered namespace, but from a source the rule leaves out.
    etcd_pod(
        &kube,
        "prod-b",
        "etcd-0",
        "{app.kubernetes.io/name: etcd, app.kubernetes.io/instance: etcd}",
        trap,
    )
    .await;

    let topo = app
        .until(
            "/api/v1/clusters/main/topology",
            Duration::from_secs(20),
            "both discovered clusters listed",
            |_, b| {
                b["discovered"]
                    .as_array()
                    .is_some_and(|d| d.len() == 2 && d.iter().any(|d| d["pods"] == 3))
            },
        )
        .await;
    let discovered = topo["discovered"].as_array().unwrap();
    let staging = discovered
        .iter()
        .find(|d| d["name"] == "staging.etcd-app")
        .unwrap();
    assert_eq!(staging["browsable"], false, "{staging:#}");
    assert_eq!(staging["source"], "etcd-operator");
    assert!(
        staging["reason"]
            .as_str()
            .unwrap()
            .contains("discovered, not browsable: add a discovery rule"),
        "{staging:#}"
    );
    let sts = discovered
        .iter()
        .find(|d| d["name"] == "prod-b.etcd")
        .unwrap();
    assert_eq!(
        (&sts["browsable"], &sts["source"]),
        (&serde_json::json!(false), &serde_json::json!("statefulset")),
        "{sts:#}"
    );
    let (_, html) = app.get("/clusters/main").await;
    assert!(
        html.contains("staging.etcd-app") && html.contains("add a discovery rule"),
        "the cluster page lists it too"
    );

    // Neither is offered, neither can be named, and nothing ever dialled them: give monitors and
    // any eager connection time to happen (they run every 3 s).
    let (_, clusters) = app.json("/api/v1/clusters").await;
    let names: Vec<&str> = clusters
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main"]);
    for path in [
        "/api/v1/clusters/staging.etcd-app/keys?prefix=/",
        "/api/v1/clusters/prod-b.etcd/key?key=/x",
        "/clusters/staging.etcd-app",
    ] {
        let (status, _) = app.get(path).await;
        assert_eq!(status, 404, "{path}");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a cluster no rule covers must never be dialled"
    );
}
