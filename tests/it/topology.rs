//! The Kubernetes topology against a REAL kube-apiserver (1.20, built by scripts/kube-apiserver.sh)
//! and a real 3-member etcd whose members the test's pods pretend to run.

use std::time::{Duration, Instant};

use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};

use etcdboard::config::{ClusterConfig, Config, HttpArgs};
use etcdboard::domain::topology::KubeTarget;

use crate::helpers::{init_logs, serve_config, serve_on, AppOptions, Replica, TestApp};
use crate::support_kube::KubeApi;

const NS: &str = "operator-cluster";

/// Nodes `node-1` (zone-a) and `node-2` (zone-b), Ready; pods named like the etcd members
/// (etcd-operator style labels), `placement[i]` = node of member i; a PVC per pod.
async fn lay_out(kube: &KubeApi, members: &[String], placement: &[&str]) {
    kube.ensure_namespace(NS).await;
    for (node, zone) in [
        ("node-1", "zone-a"),
        ("node-2", "zone-b"),
        ("node-3", "zone-c"),
    ] {
        kube.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\n  labels:\n    kubernetes.io/hostname: {node}\n    topology.kubernetes.io/zone: {zone}\n"
        ))
        .await;
        kube.kubectl(&[
            "patch", "node", node, "--subresource=status", "--type=merge", "-p",
            r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
        ])
        .await;
    }
    for (i, (name, node)) in members.iter().zip(placement).enumerate() {
        kube.apply(&format!(
            "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}-data
  namespace: {NS}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ceph-rbd
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {NS}
  labels:
    etcd_cluster: etcd-app
    app: etcd
spec:
  nodeName: {node}
  automountServiceAccountToken: false
  containers:
  - name: etcd
    image: quay.io/coreos/etcd:v3.4.23
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: {name}-data
"
        ))
        .await;
        kube.patch_status(
            NS,
            "pod",
            name,
            &format!(
                r#"{{"status":{{"phase":"Running","podIP":"10.1.0.{i}","containerStatuses":[{{"name":"etcd","ready":true,"restartCount":0,"image":"etcd","imageID":"","state":{{"running":{{}}}}}}]}}}}"#,
                i = i + 1
            ),
        )
        .await;
    }
}

/// A real API server, a real 3-member etcd whose members' pods run on node-1, node-2 and
/// node-3 (zones a, b, c), and etcdboard watching both.
async fn spread_over_three_nodes() -> (KubeApi, TestApp, Vec<String>) {
    let kube = KubeApi::start().await;
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let names = etcd.member_names();
    lay_out(&kube, &names, &["node-1", "node-2", "node-3"]).await;
    let app = app_on(&kube, etcd, &kube.kubeconfig).await;
    (kube, app, names)
}

async fn app_on(kube: &KubeApi, etcd: LocalCluster, kubeconfig: &std::path::Path) -> TestApp {
    let _ = kube;
    serve_on(
        etcd,
        AppOptions {
            kube: kubeconfig.display().to_string(),
            ..Default::default()
        },
    )
    .await
}

async fn topology_until(
    app: &TestApp,
    within: Duration,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    topology_until_at(
        &app.http,
        &app.url("/api/v1/clusters/test/topology"),
        within,
        what,
        ok,
    )
    .await
}

async fn topology_until_at(
    http: &reqwest::Client,
    url: &str,
    within: Duration,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let resp = http.get(url).send().await.expect("topology request");
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.expect("topology JSON");
        assert_eq!(status, 200, "{body}");
        if ok(&body) {
            return body;
        }
        assert!(
            started.elapsed() < within,
            "{what} not seen within {within:?}: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_on_one_node_are_warned_about_with_the_field_reports_fix() {
    let kube = KubeApi::start().await;
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let names = etcd.member_names();
    lay_out(&kube, &names, &["node-1", "node-1", "node-2"]).await;
    // A budget exists, selecting the pods by expression, but lets a drain evict 2 of 3.
    kube.apply(&format!(
        "apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata:
  name: too-lax
  namespace: {NS}
spec:
  maxUnavailable: 2
  selector:
    matchExpressions:
    - {{key: etcd_cluster, operator: In, values: [etcd-app]}}
"
    ))
    .await;
    let app = app_on(&kube, etcd, &kube.kubeconfig).await;

    let body = topology_until(&app, Duration::from_secs(15), "three placed members", |b| {
        b["kubernetes"]["state"] == "ready"
            && b["members"]
                .as_array()
                .is_some_and(|m| m.len() == 3 && m.iter().all(|p| !p["pod"].is_null()))
    })
    .await;
    for (i, m) in body["members"].as_array().unwrap().iter().enumerate() {
        assert_eq!(m["matched_by"], "name", "{m:#}");
        assert_eq!(m["pod"]["namespace"], NS);
        assert!(m["node"]["zone"].is_string(), "{m:#}");
        assert_eq!(m["volumes"][0]["storage_class"], "ceph-rbd", "{i}: {m:#}");
    }
    assert_eq!(body["source"], "etcd-operator EtcdCluster");
    let node1 = body["spread"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "node-1")
        .unwrap()
        .clone();
    assert_eq!(node1["members"].as_array().unwrap().len(), 2);
    assert_eq!(
        node1["quorum_kept"], false,
        "losing node-1 loses 2 of 3: {node1:#}"
    );
    let first = &body["spread"]["warnings"][0];
    assert_eq!(first["level"], "critical", "{body:#}");
    assert!(first["text"].as_str().unwrap().contains("node-1"));
    assert!(
        first["advice"].as_str().unwrap().contains("5 members")
            && first["advice"]
                .as_str()
                .unwrap()
                .contains("kubernetes.io/hostname")
    );
    assert!(body["spread"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["text"].as_str().unwrap().contains("anti-affinity")));
    // Discovery finds the same pods as a cluster of their own: said to be this one, with no
    // advice to add a rule for it.
    let own: Vec<&serde_json::Value> = body["discovered"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["namespace"] == NS)
        .collect();
    assert!(!own.is_empty(), "{:#}", body["discovered"]);
    for d in own {
        assert_eq!(
            d["reason"], "these are the pods of this cluster (test)",
            "{d:#}"
        );
    }
    // The budget is read (matchExpressions included) and judged by what it allows.
    let body = topology_until(&app, Duration::from_secs(10), "the budget judged", |b| {
        b["pdb"] == false
    })
    .await;
    let warnings = body["spread"]["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w["text"]
            == "PodDisruptionBudget too-lax lets a drain evict 2 of 3 members at once: quorum may be lost"),
        "{warnings:#?}"
    );
    assert!(
        !warnings.iter().any(|w| w["text"]
            .as_str()
            .unwrap()
            .starts_with("no PodDisruptionBudget")),
        "{warnings:#?}"
    );

    // The cluster page draws it and says it.
    let (status, html) = app.get_text("/clusters/test").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<svg class=\"topology\""),
        "the topology picture"
    );
    assert!(html.contains("zone zone-a") && html.contains("node-1"));
    assert!(html.contains("quorum LOST"), "node-1 risk line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_shows_up_within_seconds() {
    let (kube, app, names) = spread_over_three_nodes().await;
    topology_until(&app, Duration::from_secs(15), "placed members", |b| {
        b["members"]
            .as_array()
            .is_some_and(|m| m.iter().all(|p| !p["pod"].is_null()))
    })
    .await;
    let victim = names[2].clone();
    kube.kubectl(&[
        "-n",
        NS,
        "delete",
        "pod",
        &victim,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ])
    .await;
    let want = format!("pod {NS}/{victim} deleted");
    let body = topology_until(
        &app,
        Duration::from_secs(5),
        "the pod deletion event",
        |b| {
            b["pod_events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["text"] == want.as_str()))
        },
    )
    .await;
    let (_, html) = app.get_text("/clusters/test").await;
    assert!(
        html.contains(&want),
        "the cluster page's timeline shows the deletion"
    );
    let m = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member"]["name"] == victim.as_str())
        .unwrap();
    assert!(m["pod"].is_null(), "the member's pod is gone: {m:#}");
    assert!(body["unmatched_members"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == victim.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_permission_the_topology_says_forbidden_and_the_rest_works() {
    let kube = KubeApi::start().await;
    kube.ensure_namespace("etcdboard").await;
    kube.apply(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: nobody\n  namespace: etcdboard\n",
    )
    .await;
    let token = kube.service_account_token("etcdboard", "nobody");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_with_token(&kube, &token, dir.path());
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let started = Instant::now();
    let app = app_on(&kube, etcd, &kubeconfig).await;
    let body = topology_until(&app, Duration::from_secs(2), "the forbidden message", |b| {
        b["kubernetes"]["state"] == "error"
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let msg = body["kubernetes"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("forbidden:") && msg.contains("deploy/base/rbac.yaml"),
        "{msg}"
    );
    // The whole refusal: who, which verb on which resource, at which scope, so the platform
    // team can write the binding.
    assert!(
        msg.contains(r#"User "system:serviceaccount:etcdboard:nobody" cannot list resource ""#)
            && msg.contains("at the cluster scope) — see deploy/base/rbac.yaml"),
        "{msg}"
    );
    // Key browsing and the etcd cluster view are not affected.
    app.put_all(&[("/k", "v")]).await;
    let (status, _) = app.get_json("/api/v1/clusters/test/key?key=/k").await;
    assert_eq!(status, 200);
    let (status, html) = app.get_text("/clusters/test").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Healthy") && html.contains("forbidden"),
        "the page works and says why topology is missing"
    );
    // The metrics say the Kubernetes caches are not being kept current.
    let (_, metrics) = app.get_text("/metrics").await;
    let stale: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("etcdboard_kubernetes_cache_staleness_seconds "))
        .expect("a staleness gauge")
        .parse()
        .unwrap();
    assert!(stale > 0.0, "{metrics}");
    assert!(metrics.contains(r#"etcdboard_kubernetes_state{state="error"} 1"#));

    // A refused watch backs off instead of asking again about every second forever: over 15 s
    // once the backoff has grown, each of the ten refused watches (five pod sources, nodes,
    // PVCs, three custom resources) asks once or twice; when every retry reset the backoff,
    // each asked about 12 times.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
    let before = token_requests(&kube).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let asked = token_requests(&kube).await - before;
    assert!(asked <= 40, "{asked} requests in 15 s while refused");
    let body = topology_until(&app, Duration::from_secs(1), "still forbidden", |b| {
        b["kubernetes"]["state"] == "error"
    })
    .await;
    assert!(body["kubernetes"]["message"]
        .as_str()
        .unwrap()
        .starts_with("forbidden:"));
}

/// Requests authenticated with a bearer token so far, from the API server's own metrics: those
/// of etcdboard and of kubectl, not the server's internal ones (they authenticate apart). The
/// 1.20 server does not count requests its authorizer refuses in `apiserver_request_total`.
async fn token_requests(kube: &KubeApi) -> u64 {
    let metrics = kube.kubectl(&["get", "--raw=/metrics"]).await;
    metrics
        .lines()
        .filter(|l| l.starts_with("authentication_token_cache_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// etcdboard for cluster `test` on `etcd` whose config names its pods explicitly
/// (`kubernetes: {namespace, selector}`); [`TestApp`]'s fixture has no such option.
struct ExplicitApp {
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    _etcd: LocalCluster,
    _replica: Replica,
}

impl ExplicitApp {
    async fn start(etcd: LocalCluster, kubeconfig: &std::path::Path, target: KubeTarget) -> Self {
        init_logs();
        let http = HttpArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            kube: kubeconfig.display().to_string(),
            ..HttpArgs::default()
        };
        let config = Config::new(
            &http,
            vec![ClusterConfig {
                name: "test".into(),
                endpoints: etcd.client_urls(),
                kubernetes: Some(target),
                ..Default::default()
            }],
        )
        .expect("config");
        let replica = serve_config(config).await;
        ExplicitApp {
            addr: replica.addr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            _etcd: etcd,
            _replica: replica,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn page(&self) -> String {
        let resp = self
            .http
            .get(self.url("/clusters/test"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }
}

/// A Running pod `ns/name` on `node` with `labels` (YAML flow map) and pod IP `ip`.
async fn running_pod(kube: &KubeApi, ns: &str, name: &str, labels: &str, node: &str, ip: &str) {
    kube.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {labels}
spec:
  nodeName: {node}
  automountServiceAccountToken: false
  containers:
  - name: etcd
    image: quay.io/coreos/etcd:v3.4.23
"
    ))
    .await;
    kube.patch_status(
        ns,
        "pod",
        name,
        &format!(
            r#"{{"status":{{"phase":"Running","podIP":"{ip}","containerStatuses":[{{"name":"etcd","ready":true,"restartCount":0,"image":"etcd","imageID":"","state":{{"running":{{}}}}}}]}}}}"#
        ),
    )
    .await;
}

/// A core/v1 Event about pod `ns/pod`, first seen 10 minutes ago and last 90 s ago.
async fn pod_event(
    kube: &KubeApi,
    ns: &str,
    pod: &str,
    name: &str,
    (kind, reason, message, count): (&str, &str, &str, u32),
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamp = |secs: u64| {
        // RFC 3339 in UTC without a date library: days since the epoch → civil date.
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    };
    kube.apply(&format!(
        "apiVersion: v1
kind: Event
metadata:
  name: {name}
  namespace: {ns}
involvedObject:
  apiVersion: v1
  kind: Pod
  name: {pod}
  namespace: {ns}
type: {kind}
reason: {reason}
message: \"{message}\"
count: {count}
firstTimestamp: \"{first}\"
lastTimestamp: \"{last}\"
source:
  component: kubelet
",
        first = stamp(now - 600),
        last = stamp(now - 90),
    ))
    .await;
}

fn members_of(body: &serde_json::Value) -> Vec<serde_json::Value> {
    body["members"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_namespace_and_selector_win_over_discovery_and_show_pod_events() {
    let kube = KubeApi::start().await;
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let names = etcd.member_names();
    // Discovery would find pods with the members' names in NS (two on node-1: a critical
    // warning) ...
    lay_out(&kube, &names, &["node-1", "node-1", "node-2"]).await;
    // ... but the configuration says the members run in `explicit-etcd`, spread over 3 nodes,
    // labelled app=etcd,release=x (no discovery source knows these labels).
    let ens = "explicit-etcd";
    kube.ensure_namespace(ens).await;
    for (i, name) in names.iter().enumerate() {
        running_pod(
            &kube,
            ens,
            name,
            "{app: etcd, release: x}",
            &format!("node-{}", i + 1),
            &format!("10.2.0.{}", i + 1),
        )
        .await;
    }
    running_pod(
        &kube,
        ens,
        "etcd-starting",
        "{app: etcd, release: x}",
        "node-3",
        "10.2.0.9",
    )
    .await;
    running_pod(
        &kube,
        ens,
        "other-release",
        "{app: etcd, release: other}",
        "node-3",
        "10.2.0.8",
    )
    .await;
    pod_event(
        &kube,
        ens,
        &names[0],
        "m0-backoff",
        (
            "Warning",
            "BackOff",
            "Back-off restarting failed container",
            4,
        ),
    )
    .await;
    pod_event(
        &kube,
        ens,
        &names[1],
        "m1-pulled",
        (
            "Normal",
            "Pulled",
            "Container image already present on machine",
            1,
        ),
    )
    .await;
    pod_event(
        &kube,
        NS,
        &names[0],
        "decoy-event",
        (
            "Warning",
            "DecoyReason",
            "about the other namespace's pod",
            1,
        ),
    )
    .await;

    let target = KubeTarget::parse(ens, "app=etcd,release=x").unwrap();
    let app = ExplicitApp::start(etcd, &kube.kubeconfig, target).await;
    let url = app.url("/api/v1/clusters/test/topology");
    let body = topology_until_at(
        &app.http,
        &url,
        Duration::from_secs(15),
        "members placed in the configured namespace with their events",
        |b| {
            b["kubernetes"]["state"] == "ready"
                && members_of(b).len() == 3
                && members_of(b).iter().all(|m| m["pod"]["namespace"] == ens)
                && members_of(b)[0]["pod"]["events"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty())
        },
    )
    .await;
    assert_eq!(
        body["source"], "configured selector app=etcd,release=x in namespace explicit-etcd",
        "{body:#}"
    );
    assert_eq!(body["sources"][0]["source"], body["source"]);
    assert_eq!(
        body["sources"][0]["found"], 4,
        "3 members + 1 starting pod: {body:#}"
    );
    assert_eq!(body["sources"][0]["state"], "watching");
    let strays: Vec<&str> = body["unmatched_pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        strays,
        vec!["etcd-starting"],
        "only the selected pods count"
    );
    // The decoys' node-1 pile-up is not this cluster's: no critical warning.
    assert!(
        body["spread"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["level"] != "critical"),
        "{:#}",
        body["spread"]
    );
    let ev = &members_of(&body)[0]["pod"]["events"][0];
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["reason"], "BackOff");
    assert_eq!(ev["count"], 4);
    assert!(
        ev["age"]
            .as_str()
            .is_some_and(|a| a.ends_with('m') || a.ends_with('s')),
        "{ev:#}"
    );
    assert_eq!(members_of(&body)[1]["pod"]["events"][0]["reason"], "Pulled");
    assert!(
        !body.to_string().contains("DecoyReason"),
        "events of a same-named pod in another namespace are not this member's"
    );
    assert!(body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["what"] == "events" && s["state"] == "watching"));

    let html = app.page().await;
    assert!(html.contains("configured selector app=etcd,release=x in namespace explicit-etcd"));
    assert!(
        html.contains("Recent events of the members")
            && html.contains("BackOff")
            && html.contains("Back-off restarting failed container")
    );
    assert!(!html.contains("other-release"));
    // The pod that is no member (never joined, or left over) is on the page, not only in JSON.
    assert!(
        html.contains("Pods that are no member")
            && html.contains("<span class=\"mono\">explicit-etcd/etcd-starting</span>"),
        "{html}"
    );

    // A new event shows up without a page load hitting the API server (watch-driven), in seconds.
    pod_event(
        &kube,
        ens,
        &names[2],
        "m2-killing",
        ("Normal", "Killing", "Stopping container etcd", 1),
    )
    .await;
    let started = Instant::now();
    topology_until_at(
        &app.http,
        &url,
        Duration::from_secs(5),
        "the new event",
        |b| members_of(b)[2]["pod"]["events"][0]["reason"] == "Killing",
    )
    .await;
    eprintln!("new pod event shown after {:?}", started.elapsed());
}

/// Minimal CRDs (real group, version, kind and plural; schema open) of the etcd project's
/// operator and gardener etcd-druid.
pub const OPERATOR_CRDS: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: etcdclusters.operator.etcd.io
spec:
  group: operator.etcd.io
  names: {kind: EtcdCluster, listKind: EtcdClusterList, plural: etcdclusters, singular: etcdcluster}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: etcds.druid.gardener.cloud
spec:
  group: druid.gardener.cloud
  names: {kind: Etcd, listKind: EtcdList, plural: etcds, singular: etcd}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_operators_status_is_shown_with_each_source() {
    let kube = KubeApi::start().await;
    kube.apply(OPERATOR_CRDS).await;
    kube.kubectl(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd/etcdclusters.operator.etcd.io",
        "crd/etcds.druid.gardener.cloud",
    ])
    .await;
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let names = etcd.member_names();
    lay_out(&kube, &names, &["node-1", "node-2", "node-3"]).await;
    kube.apply(&format!(
        "apiVersion: operator.etcd.io/v1alpha1
kind: EtcdCluster
metadata:
  name: etcd-app
  namespace: {NS}
spec:
  size: 3
  version: 3.5.21
---
apiVersion: druid.gardener.cloud/v1alpha1
kind: Etcd
metadata:
  name: etcd-main
  namespace: {NS}
spec:
  replicas: 3
---
apiVersion: druid.gardener.cloud/v1alpha1
kind: Etcd
metadata:
  name: etcd-elsewhere
  namespace: default
spec:
  replicas: 1
"
    ))
    .await;
    kube.patch_status(
        NS,
        "etcdclusters.operator.etcd.io",
        "etcd-app",
        r#"{"status":{"currentReplicas":3,"readyReplicas":2,"memberCount":3,"currentVersion":"3.5.21","leaderID":"41f5beba5f42189a","conditions":[{"type":"Available","status":"True","reason":"ClusterAvailable","message":"Etcd cluster has 2/3 healthy members with quorum","lastTransitionTime":"2026-01-01T00:00:00Z"},{"type":"Degraded","status":"True","reason":"MembersUnhealthy","message":"1 of 3 members is unhealthy","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
    )
    .await;
    kube.patch_status(
        NS,
        "etcds.druid.gardener.cloud",
        "etcd-main",
        r#"{"status":{"ready":false,"replicas":3,"currentReplicas":3,"readyReplicas":1,"lastOperation":{"type":"Reconcile","state":"Error","description":"sts not ready"},"lastErrors":[{"code":"ERR_SYNC_STATEFULSET","description":"statefulset etcd-main is not ready"}],"conditions":[{"type":"AllMembersReady","status":"False","reason":"NotAllMembersReady","message":"At least one member is not ready"}]}}"#,
    )
    .await;
    let app = app_on(&kube, etcd, &kube.kubeconfig).await;
    let body = topology_until(
        &app,
        Duration::from_secs(15),
        "both operators' status",
        |b| {
            b["kubernetes"]["state"] == "ready"
                && b["operators"].as_array().is_some_and(|o| o.len() == 2)
                && members_of(b).iter().all(|m| !m["pod"].is_null())
        },
    )
    .await;
    let op = |name: &str| {
        body["operators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {body:#}"))
            .clone()
    };
    let new_op = op("etcd-app");
    assert_eq!(new_op["api_version"], "operator.etcd.io/v1alpha1");
    assert_eq!(new_op["kind"], "EtcdCluster");
    assert_eq!(
        (
            new_op["ready"].clone(),
            new_op["desired"].clone(),
            new_op["ready_members"].clone()
        ),
        (true.into(), 3.into(), 2.into())
    );
    assert_eq!(new_op["version"], "3.5.21");
    assert!(new_op["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Degraded" && c["status"] == "True"));
    let druid = op("etcd-main");
    assert_eq!(druid["api_version"], "druid.gardener.cloud/v1alpha1");
    assert_eq!(druid["ready"], false);
    assert_eq!(druid["phase"], "Reconcile Error");
    assert_eq!(druid["last_error"], "statefulset etcd-main is not ready");
    // Each source with what it found; the CoreOS CRD is not installed, which is no error.
    let source = |name: &str| {
        body["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {body:#}"))
            .clone()
    };
    assert_eq!(
        source("etcd operator EtcdCluster (operator.etcd.io")["found"],
        1
    );
    assert_eq!(
        source("etcd operator EtcdCluster (operator.etcd.io")["state"],
        "watching"
    );
    assert_eq!(
        source("gardener etcd-druid Etcd")["found"],
        2,
        "druid Etcds anywhere"
    );
    assert_eq!(
        source("etcd-operator EtcdCluster (etcd.database.coreos.com")["state"],
        "not installed"
    );
    assert_eq!(source("etcd-operator EtcdCluster")["found"], 3, "the pods");

    let (_, html) = app.get_text("/clusters/test").await;
    assert!(html.contains("Operator status"));
    assert!(
        html.contains("EtcdCluster operator-cluster/etcd-app")
            && html.contains("Etcd operator-cluster/etcd-main")
    );
    assert!(html.contains("statefulset etcd-main is not ready") && html.contains("Degraded True"));
    assert!(
        !html.contains("etcd-elsewhere"),
        "another namespace's Etcd is not this cluster's"
    );
    assert!(
        html.contains("not installed"),
        "the sources table says which CRDs are missing"
    );

    // Watch-driven: the operator reports recovery → shown within seconds.
    kube.patch_status(
        NS,
        "etcds.druid.gardener.cloud",
        "etcd-main",
        r#"{"status":{"ready":true,"readyReplicas":3,"lastErrors":null,"lastOperation":{"type":"Reconcile","state":"Succeeded","description":"ok"},"conditions":[{"type":"AllMembersReady","status":"True","reason":"AllMembersReady","message":"All members are ready"}]}}"#,
    )
    .await;
    topology_until(&app, Duration::from_secs(5), "druid recovered", |b| {
        b["operators"].as_array().is_some_and(|o| {
            o.iter()
                .any(|o| o["name"] == "etcd-main" && o["ready"] == true && o["ready_members"] == 3)
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_member_with_a_new_pod_shows_in_the_topology_and_the_timeline() {
    let (kube, mut app, names) = spread_over_three_nodes().await;
    topology_until(&app, Duration::from_secs(15), "placed members", |b| {
        members_of(b).len() == 3 && members_of(b).iter().all(|p| !p["pod"].is_null())
    })
    .await;

    // The field report's self-healing, done by hand: the pod of m2 goes, m2 is removed from the
    // cluster, a new member joins and its pod appears on the same node.
    let old = names[2].clone();
    kube.kubectl(&[
        "-n",
        NS,
        "delete",
        "pod",
        &old,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ])
    .await;
    app.etcd
        .remove_member(2)
        .await
        .expect("remove the old member");
    let new = app.etcd.add_member().await.expect("add a member");
    let new_name = app.etcd.member_names()[new].clone();
    running_pod(
        &kube,
        NS,
        &new_name,
        "{etcd_cluster: etcd-app, app: etcd}",
        "node-3",
        "10.1.0.9",
    )
    .await;
    let replaced_at = Instant::now();
    app.etcd
        .wait_healthy(Duration::from_secs(30))
        .await
        .expect("the new member catches up");

    let body = topology_until(
        &app,
        Duration::from_secs(15),
        "the new member on its pod, the old one gone",
        |b| {
            let ms = members_of(b);
            ms.len() == 3
                && ms.iter().all(|m| m["member"]["name"] != old.as_str())
                && ms.iter().any(|m| {
                    m["member"]["name"] == new_name.as_str()
                        && m["pod"]["name"] == new_name.as_str()
                })
        },
    )
    .await;
    let shown = replaced_at.elapsed();
    let texts: Vec<String> = body["pod_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        texts.contains(&format!("pod {NS}/{old} deleted")),
        "{texts:?}"
    );
    assert!(
        texts.contains(&format!("pod {NS}/{new_name} created")),
        "{texts:?}"
    );
    assert!(
        body["unmatched_members"].as_array().unwrap().is_empty(),
        "{body:#}"
    );
    assert!(
        body["unmatched_pods"].as_array().unwrap().is_empty(),
        "{body:#}"
    );
    let placed = members_of(&body)
        .into_iter()
        .find(|m| m["member"]["name"] == new_name.as_str())
        .unwrap();
    assert_eq!(placed["node"]["name"], "node-3");

    // One timeline on the cluster page: etcd's membership change and the pods coming and going.
    let started = Instant::now();
    loop {
        let (status, html) = app.get_text("/clusters/test").await;
        assert_eq!(status, 200);
        // A member added but not started yet has no name in etcd: the replacement line may name
        // it by id, and a later line then says it started under its name.
        let membership = html.contains(&format!("member {new_name} joined, replacing {old}"))
            || (html.contains(&format!(" joined, replacing {old}"))
                && html.contains(&format!("member {new_name} started and joined")))
            || (html.contains(&format!("member {old} was removed"))
                && html.contains(&format!("member {new_name} was added")));
        if membership
            && html.contains(&format!("pod {NS}/{old} deleted"))
            && html.contains(&format!("pod {NS}/{new_name} created"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the timeline does not show the replacement: {}",
            html.split("Timeline").nth(1).unwrap_or(&html)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!(
        "replacement shown in the topology after {shown:?}, on the timeline after {:?} more",
        started.elapsed()
    );
}

/// A kubeconfig in `dir` for the API server of `kube` with a bearer `token`.
fn kubeconfig_with_token(kube: &KubeApi, token: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\ncurrent-context: c\n",
            kube.url
        ),
    )
    .unwrap();
    path
}

fn source_state<'a>(body: &'a serde_json::Value, source: &str) -> Option<&'a str> {
    body["sources"]
        .as_array()?
        .iter()
        .find(|s| s["source"] == source)?["state"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_is_an_error_while_any_watch_fails_and_ready_once_all_work() {
    let kube = KubeApi::start().await;
    kube.ensure_namespace("etcdboard").await;
    // Everything etcdboard reads except the Events.
    kube.apply(
        "apiVersion: v1
kind: ServiceAccount
metadata: {name: partial, namespace: etcdboard}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: all-but-events}
rules:
- apiGroups: ['']
  resources: [pods, nodes, persistentvolumeclaims]
  verbs: [get, list, watch]
- apiGroups: [etcd.database.coreos.com, operator.etcd.io, druid.gardener.cloud]
  resources: ['*']
  verbs: [get, list, watch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: all-but-events}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: all-but-events}
subjects: [{kind: ServiceAccount, name: partial, namespace: etcdboard}]
",
    )
    .await;
    let token = kube.service_account_token("etcdboard", "partial");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_with_token(&kube, &token, dir.path());
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let names = etcd.member_names();
    lay_out(&kube, &names, &["node-1", "node-2", "node-3"]).await;
    let app = app_on(&kube, etcd, &kubeconfig).await;

    let events = format!("events in namespace {NS}");
    let body = topology_until(
        &app,
        Duration::from_secs(15),
        "placed members with a refused events watch",
        |b| {
            members_of(b).iter().all(|m| !m["pod"].is_null())
                && source_state(b, &events).is_some_and(|s| s.starts_with("forbidden:"))
        },
    )
    .await;
    // Pods, nodes and PVCs work, yet one watch is refused: not "ready", and it says which.
    assert_eq!(body["kubernetes"]["state"], "error", "{body:#}");
    let msg = body["kubernetes"]["message"].as_str().unwrap();
    assert!(msg.contains("may not list events"), "{msg}");
    // And it stays so while the watch keeps being refused (no "ready" between retries).
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let (_, b) = app.get_json("/api/v1/clusters/test/topology").await;
        assert_eq!(b["kubernetes"]["state"], "error", "{b:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Granted: the refused watch's next try (backing off, so within its current pause) works,
    // and then everything does.
    kube.apply(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: events}
rules:
- apiGroups: ['']
  resources: [events]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: events}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: events}
subjects: [{kind: ServiceAccount, name: partial, namespace: etcdboard}]
",
    )
    .await;
    topology_until(
        &app,
        Duration::from_secs(45),
        "ready once events are allowed",
        |b| b["kubernetes"]["state"] == "ready" && source_state(b, &events) == Some("watching"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_went_and_came_while_kubernetes_was_down_reach_the_timeline() {
    let mut kube = KubeApi::start().await;
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let names = etcd.member_names();
    lay_out(&kube, &names, &["node-1", "node-2", "node-3"]).await;
    let app = app_on(&kube, etcd, &kube.kubeconfig).await;
    topology_until(&app, Duration::from_secs(15), "placed members", |b| {
        b["kubernetes"]["state"] == "ready"
            && members_of(b).len() == 3
            && members_of(b).iter().all(|m| !m["pod"].is_null())
    })
    .await;

    let victim = names[2].clone();
    kube.stop();
    topology_until(&app, Duration::from_secs(10), "the outage", |b| {
        b["kubernetes"]["state"] == "error"
    })
    .await;
    // Deleted behind the API server's back: no watch sees it happen, only the re-list after
    // the outage can find it gone.
    let mut client = etcd_client::Client::connect(kube.etcd_endpoints(), None)
        .await
        .expect("the API server's etcd");
    let gone = client
        .delete(format!("/registry/pods/{NS}/{victim}"), None)
        .await
        .expect("delete the pod in etcd")
        .deleted();
    assert_eq!(
        gone, 1,
        "the pod was stored at /registry/pods/{NS}/{victim}"
    );
    kube.restart().await;

    let deleted = format!("pod {NS}/{victim} deleted");
    let body = topology_until(
        &app,
        Duration::from_secs(45),
        "the deletion found by the re-list",
        |b| {
            b["kubernetes"]["state"] == "ready"
                && b["pod_events"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["text"] == deleted.as_str()))
        },
    )
    .await;
    let m = members_of(&body)
        .into_iter()
        .find(|m| m["member"]["name"] == victim.as_str())
        .unwrap();
    assert!(m["pod"].is_null(), "the member's pod is gone: {m:#}");

    // Its re-creation is news again.
    running_pod(
        &kube,
        NS,
        &victim,
        "{etcd_cluster: etcd-app, app: etcd}",
        "node-3",
        "10.1.0.3",
    )
    .await;
    let created = format!("pod {NS}/{victim} created");
    topology_until(&app, Duration::from_secs(10), "the re-creation", |b| {
        b["pod_events"]
            .as_array()
            .is_some_and(|e| e.first().is_some_and(|e| e["text"] == created.as_str()))
    })
    .await;
}

/// A hung API server (SIGSTOP) keeps every watch's connection open and silent. The topology
/// must still say, within seconds, that it does not answer and since when, the cache staleness
/// must grow, and no page may wait for it; when it answers again, all is ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_api_server_is_reported_with_its_age_and_no_page_waits_for_it() {
    let (kube, app, _) = spread_over_three_nodes().await;
    topology_until(&app, Duration::from_secs(15), "ready and placed", |b| {
        b["kubernetes"]["state"] == "ready"
            && b["members"]
                .as_array()
                .is_some_and(|m| m.iter().all(|p| !p["pod"].is_null()))
    })
    .await;

    let pid = libc::pid_t::try_from(kube.pid().expect("apiserver pid")).unwrap();
    // SAFETY: signals to a child process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let body = topology_until(&app, Duration::from_secs(15), "the hang reported", |b| {
        b["kubernetes"]["state"] == "error"
            && b["kubernetes"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("does not answer"))
    })
    .await;
    let message = body["kubernetes"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(&format!("the API server {}", kube.url))
            && message.contains(" since ")
            && message.contains(" UTC: the pods, nodes and volumes shown are as of then"),
        "{message}"
    );
    // The page says it, and answers without waiting for the API server.
    let started = Instant::now();
    let (status, html) = app.get_text("/clusters/test").await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(html.contains("does not answer"), "{html}");
    assert!(took < Duration::from_secs(1), "the page took {took:?}");
    let (_, metrics) = app.get_text("/metrics").await;
    let staleness: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("etcdboard_kubernetes_cache_staleness_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the staleness gauge");
    assert!(staleness > 0.0, "{staleness}");

    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    topology_until(&app, Duration::from_secs(20), "ready again", |b| {
        b["kubernetes"]["state"] == "ready"
    })
    .await;
}

/// A kubeconfig whose token the API server does not accept: the page says the credentials are
/// refused (the server answers), not that the server does not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_said_as_such() {
    let kube = KubeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_with_token(&kube, "not-a-token-the-server-knows", dir.path());
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let app = app_on(&kube, etcd, &kubeconfig).await;
    let body = topology_until(&app, Duration::from_secs(15), "the refusal", |b| {
        b["kubernetes"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("refuses etcdboard's credentials"))
    })
    .await;
    let msg = body["kubernetes"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("the API server {}", kube.url))
            && msg.contains("(401 Unauthorized)")
            && msg.contains("renew the kubeconfig's token"),
        "{msg}"
    );
    assert!(!msg.contains("does not answer"), "{msg}");
}
