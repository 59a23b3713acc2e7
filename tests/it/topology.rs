//! The Kubernetes topology against a REAL kube-apiserver (1.20, built by scripts/kube-apiserver.sh)
//! and a real 3-member etcd whose members the test's pods pretend to run.

use std::time::{Duration, Instant};

use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};

use crate::helpers::{serve_on, AppOptions, TestApp};
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
    let started = Instant::now();
    loop {
        let (status, body) = app.get_json("/api/v1/clusters/test/topology").await;
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
    let kube = KubeApi::start().await;
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let names = etcd.member_names();
    lay_out(&kube, &names, &["node-1", "node-2", "node-3"]).await;
    let app = app_on(&kube, etcd, &kube.kubeconfig).await;
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
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\ncurrent-context: c\n",
            kube.url
        ),
    )
    .unwrap();
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
}
