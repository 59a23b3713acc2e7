//! The Kubernetes manifests under `deploy/` against a REAL kube-apiserver 1.20 (see
//! `support_kube.rs`): they render, the API server accepts every object, the ServiceAccount may do
//! exactly what etcdboard needs and nothing more, and the example HA etcd is rated safe by
//! etcdboard itself.
//!
//! The 1.20 API server has no `policy/v1` (PodDisruptionBudget is `policy/v1beta1` there). The
//! example overlay switches the base's PDB with `deploy/components/policy-v1beta1`; the plain
//! example files under `deploy/examples/` are written for current clusters (`policy/v1`), so the
//! tests apply their PDBs as `policy/v1beta1`, which has the same fields for what they use
//! (`selector` and `maxUnavailable`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser as _;
use serde::Deserialize as _;
use serde_json::{json, Value};

use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};

use crate::helpers::{serve_on, AppOptions, TestApp};
use crate::support_kube::{KubeApi, KUBECTL};

/// `deploy/` (or a path under it) in this checkout.
fn deploy_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel)
}

/// `kubectl kustomize DIR` (no API server involved); panics with kustomize's message.
fn kustomize(dir: &Path) -> String {
    let out = std::process::Command::new(KUBECTL)
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {KUBECTL}: {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kustomize output is UTF-8")
}

/// The documents of a YAML stream, as JSON values (empty documents skipped).
fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("bad YAML document: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn read_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    docs(&text)
}

/// The one document of `kind` (panics unless there is exactly one).
fn the<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind} expected");
    found[0]
}

/// Back to one YAML stream for `kubectl apply -f -`.
fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_yaml::to_string(d).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// `policy/v1` PodDisruptionBudgets as `policy/v1beta1` for the 1.20 API server.
fn for_kube_1_20(mut docs: Vec<Value>) -> Vec<Value> {
    for d in &mut docs {
        if d["kind"] == "PodDisruptionBudget" && d["apiVersion"] == "policy/v1" {
            d["apiVersion"] = json!("policy/v1beta1");
        }
    }
    docs
}

fn name_of(d: &Value) -> String {
    format!(
        "{} {}/{}",
        d["kind"].as_str().unwrap_or("?"),
        d["metadata"]["namespace"].as_str().unwrap_or("-"),
        d["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Applies documents; a rejected object fails the test with kubectl's message.
async fn apply_all(kube: &KubeApi, what: &str, docs: &[Value]) -> String {
    kube.try_kubectl(&["apply", "-f", "-"], Some(&to_yaml(docs)))
        .await
        .unwrap_or_else(|e| panic!("the API server rejected {what}: {e}"))
}

/// etcd-operator's CustomResourceDefinition, as the operator installs it (trimmed to a structural
/// schema: `spec.size`, `spec.version`, `spec.pod` and the rest preserved).
const ETCDCLUSTER_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: etcdclusters.etcd.database.coreos.com
spec:
  group: etcd.database.coreos.com
  scope: Namespaced
  names:
    kind: EtcdCluster
    listKind: EtcdClusterList
    plural: etcdclusters
    singular: etcdcluster
    shortNames: [etcd]
  versions:
  - name: v1beta2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            properties:
              size:
                type: integer
                minimum: 1
              version:
                type: string
              pod:
                type: object
                x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
";

async fn install_etcdcluster_crd(kube: &KubeApi) {
    kube.apply(ETCDCLUSTER_CRD).await;
    kube.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/etcdclusters.etcd.database.coreos.com",
        "--timeout=30s",
    ])
    .await;
}

/// A Ready node with hostname and zone labels.
async fn add_node(kube: &KubeApi, name: &str, zone: &str) {
    kube.apply(&format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\n    topology.kubernetes.io/zone: {zone}\n"
    ))
    .await;
    kube.kubectl(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
    ])
    .await;
}

/// What a kubelet would report for a running pod whose containers are all ready.
async fn mark_running(kube: &KubeApi, ns: &str, pod: &str, container: &str, ip: &str) {
    let status = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "containerStatuses": [{
            "name": container, "ready": true, "restartCount": 0, "image": "etcd", "imageID": "",
            "state": {"running": {}}
        }]
    }});
    kube.patch_status(ns, "pod", pod, &status.to_string()).await;
}

/// A kubeconfig that authenticates with `token`.
fn kubeconfig_for(kube: &KubeApi, token: &str, dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\ncurrent-context: c\n",
            kube.url
        ),
    )
    .expect("write kubeconfig");
    path
}

async fn topology_until(
    app: &TestApp,
    within: Duration,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
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

fn all_placed(body: &Value, n: usize) -> bool {
    body["members"].as_array().is_some_and(|m| {
        m.len() == n
            && m.iter()
                .all(|p| !p["pod"].is_null() && !p["node"].is_null())
    })
}

/// The pod volume `is` picks (`what`, for failures), after checking that the container mounts it
/// at the directory of `file`.
fn volume_holding<'a>(
    pod: &'a Value,
    container: &Value,
    file: &Path,
    what: &str,
    is: impl Fn(&Value) -> bool,
) -> &'a Value {
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| is(v))
        .unwrap_or_else(|| panic!("{what} is not a volume"));
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .unwrap_or_else(|| panic!("{what} is not mounted"));
    assert_eq!(
        file.parent().unwrap(),
        Path::new(mount["mountPath"].as_str().unwrap()),
        "{what}"
    );
    volume
}

fn env_of(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.into(), e["value"].as_str()?.into())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifests_render_and_the_api_server_accepts_every_object() {
    // 1. `kubectl kustomize deploy/` renders, and what it renders fits together.
    let rendered = kustomize(&deploy_path(""));
    let objects = docs(&rendered);
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(kind), "deploy/ renders no {kind}: {kinds:?}");
    }
    assert!(
        !kinds.contains("Secret"),
        "no secret data is shipped, only a reference"
    );

    let deployment = the(&objects, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env = env_of(container);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(env["ETCDBOARD_LISTEN"], "0.0.0.0:8080");
    assert_eq!(pod["automountServiceAccountToken"], true);
    let csc = &container["securityContext"];
    assert_eq!(csc["runAsNonRoot"], true);
    assert_eq!(csc["runAsUser"], 65532);
    assert_eq!(csc["allowPrivilegeEscalation"], false);
    assert_eq!(csc["readOnlyRootFilesystem"], true);
    assert_eq!(csc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(csc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(!container["resources"]["requests"].is_null());

    // The base path, the ingress path and the probes agree (the ingress does not rewrite).
    let base = env["ETCDBOARD_BASE_PATH"].as_str();
    let ingress = the(&objects, "Ingress");
    assert_eq!(ingress["apiVersion"], "networking.k8s.io/v1");
    let path = &ingress["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(path["path"], base, "the ingress path is the base path");
    let annotations = ingress["metadata"]["annotations"]
        .as_object()
        .expect("annotations");
    assert!(
        !annotations.keys().any(|k| k.contains("rewrite-target")),
        "no rewrite: etcdboard serves under its base path itself"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/proxy-buffering"],
        "off"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"],
        "3600"
    );
    assert!(annotations.contains_key("nginx.ingress.kubernetes.io/proxy-send-timeout"));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["path"],
            format!("{base}/healthz"),
            "{probe} lives under the base path"
        );
    }
    let service = the(&objects, "Service");
    assert_eq!(
        path["backend"]["service"]["name"],
        service["metadata"]["name"]
    );

    // ETCDBOARD_CONFIG names a file of the mounted ConfigMap, and etcdboard accepts that file
    // (with the Deployment's listen address and base path) exactly as it would at start.
    let config_path = Path::new(env["ETCDBOARD_CONFIG"].as_str());
    let configmap = the(&objects, "ConfigMap");
    volume_holding(pod, container, config_path, "the ConfigMap", |v| {
        v["configMap"]["name"] == configmap["metadata"]["name"]
    });
    let file_name = config_path.file_name().unwrap().to_str().unwrap();
    let clusters_yaml = configmap["data"][file_name]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap has no {file_name}"));
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join(file_name);
    std::fs::write(&local, clusters_yaml).unwrap();
    // Every ETCDBOARD_* variable of the Deployment, as the flag it twins (env is process-wide, so
    // the test passes flags), with the config path pointing at the local copy.
    let mut args = vec![
        "etcdboard".to_string(),
        "serve".to_string(),
        "--kube=off".to_string(),
    ];
    for (name, value) in &env {
        let Some(flag) = name.strip_prefix("ETCDBOARD_") else {
            continue;
        };
        let flag = flag.to_ascii_lowercase().replace('_', "-");
        match flag.as_str() {
            "config" => args.push(format!("--config={}", local.display())),
            // A Secret you create (below); a stand-in of the documented form takes its place.
            "metrics-token-file" => {
                let token = dir.path().join("metrics-token");
                std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
                args.push(format!("--metrics-token-file={}", token.display()));
            }
            "kube" => {}
            _ => args.push(format!("--{flag}={value}")),
        }
    }
    let cli = etcdboard::config::Cli::try_parse_from(&args)
        .unwrap_or_else(|e| panic!("etcdboard refuses the Deployment's settings {args:?}: {e}"));
    let etcdboard::config::Command::Serve(serve) = cli.command else {
        panic!("not serve")
    };
    let config = etcdboard::config::Config::from_serve(&serve)
        .unwrap_or_else(|e| panic!("etcdboard refuses the shipped clusters.yaml: {e}"));
    assert!(!config.clusters.is_empty());
    assert_eq!(config.base_path, base);
    // The ingress's host is served; a name pointed at the pods by someone else is not.
    if let Some(host) = ingress["spec"]["rules"][0]["host"].as_str() {
        assert!(config.allowed_hosts.allows(host), "{host}");
        assert!(!config.allowed_hosts.allows("attacker.example"));
    }
    // Shipped access defaults: identity from the ingress's auth proxy, strangers see nothing,
    // Kubernetes' own keys read-only.
    assert!(matches!(
        config.access.identity,
        etcdboard::access::Identity::Proxy(_)
    ));
    assert_eq!(config.access.policy.anonymous_role, None);
    assert!(config
        .access
        .policy
        .read_only_prefixes
        .iter()
        .any(|r| r.prefix == b"/registry/"));
    // ... and the example ingress passes the proxy's user and groups on.
    let passed = annotations["nginx.ingress.kubernetes.io/auth-response-headers"]
        .as_str()
        .unwrap_or_default();
    for h in ["X-Auth-Request-User", "X-Auth-Request-Groups"] {
        assert!(passed.contains(h), "{passed}");
    }

    // Prometheus gets in with a token from a Secret that must exist: metrics that nobody may read
    // would only hide an outage.
    let metrics_path = Path::new(env["ETCDBOARD_METRICS_TOKEN_FILE"].as_str());
    let metrics_volume = volume_holding(
        pod,
        container,
        metrics_path,
        "the metrics token Secret",
        |v| v["secret"]["secretName"] == "etcdboard-metrics-token",
    );
    assert_ne!(metrics_volume["secret"]["optional"], true);
    assert!(config.access.metrics_token.is_some());

    // The Secret is only referenced, optional, read-only.
    let tls = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"]["secretName"] == "etcd-client-tls")
        .expect("the etcd-client-tls Secret is mounted");
    assert_eq!(tls["secret"]["optional"], true);

    // RBAC: reads only, no secrets.
    for rule in the(&objects, "ClusterRole")["rules"].as_array().unwrap() {
        let resources: Vec<&str> = rule["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            !resources.iter().any(|r| *r == "secrets" || r.contains('*')),
            "{rule}"
        );
        for verb in rule["verbs"].as_array().unwrap() {
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                "write verb {verb} in {rule}"
            );
        }
    }
    assert_eq!(
        the(&objects, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );

    // The base is written for current clusters (policy/v1); the example overlay targets 1.20.
    let base_objects = docs(&kustomize(&deploy_path("base")));
    assert_eq!(
        the(&base_objects, "PodDisruptionBudget")["apiVersion"],
        "policy/v1"
    );
    assert_eq!(
        the(&objects, "PodDisruptionBudget")["apiVersion"],
        "policy/v1beta1"
    );

    // 2. `kubectl apply -k deploy/` against the real API server: every object is accepted and
    //    stored (nothing runs pods there, so a real apply is harmless).
    let kube = KubeApi::start().await;
    let dir_arg = deploy_path("");
    let dir_arg = dir_arg.to_str().unwrap();
    let out = kube
        .try_kubectl(&["apply", "-k", dir_arg], None)
        .await
        .unwrap_or_else(|e| panic!("the API server rejected deploy/: {e}"));
    let stored = kube.kubectl(&["get", "-k", dir_arg, "-o", "name"]).await;
    assert_eq!(
        stored.lines().count(),
        objects.len(),
        "every rendered object is stored; apply said:\n{out}\nget said:\n{stored}"
    );
    // Applying again is a no-op the server accepts in a server-side dry run, too (before the
    // first apply it would refuse the namespaced objects for want of the Namespace alone).
    kube.try_kubectl(&["apply", "-k", dir_arg, "--dry-run=server"], None)
        .await
        .unwrap_or_else(|e| panic!("the API server rejected deploy/ in a dry run: {e}"));

    // 3. The examples, with etcd-operator's CRD installed first as the operator would.
    install_etcdcluster_crd(&kube).await;
    for file in ["etcd-statefulset.yaml", "etcd-operator-etcdcluster.yaml"] {
        let example = for_kube_1_20(read_docs(&deploy_path("examples").join(file)));
        apply_all(&kube, &format!("deploy/examples/{file}"), &example).await;
        for d in &example {
            let kind = d["kind"].as_str().unwrap();
            let name = d["metadata"]["name"].as_str().unwrap();
            let group = d["apiVersion"]
                .as_str()
                .unwrap()
                .rsplit_once('/')
                .map(|(g, _)| format!(".{g}"))
                .unwrap_or_default();
            let mut args = vec!["get".to_string(), format!("{kind}{group}"), name.into()];
            if let Some(ns) = d["metadata"]["namespace"].as_str() {
                args.extend(["-n".into(), ns.into()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            kube.try_kubectl(&args, None)
                .await
                .unwrap_or_else(|e| panic!("{} not stored: {e}", name_of(d)));
        }
    }

    // The stored EtcdCluster is the field report's fix: 5 members, never two on one node.
    let cr: Value = serde_json::from_str(
        &kube
            .kubectl(&[
                "-n",
                "operator-cluster",
                "get",
                "etcdclusters.etcd.database.coreos.com",
                "etcd-app",
                "-o",
                "json",
            ])
            .await,
    )
    .unwrap();
    assert_eq!(cr["spec"]["size"], 5, "{cr:#}");
    let terms = cr["spec"]["pod"]["affinity"]["podAntiAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .unwrap_or_else(|| panic!("no required pod anti-affinity: {cr:#}"));
    assert!(
        terms
            .iter()
            .any(|t| t["topologyKey"] == "kubernetes.io/hostname"
                && t["labelSelector"]["matchLabels"]["etcd_cluster"] == cr["metadata"]["name"]),
        "the anti-affinity must select the operator's pods (etcd_cluster: NAME): {cr:#}"
    );
}

/// Whether `kubectl auth can-i ARGS` says yes for `token`.
async fn can_i(kube: &KubeApi, token: &str, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    match kube.try_kubectl_as(token, &all, None).await {
        Ok(out) => out.trim() == "yes",
        Err(e) if e.contains("stdout: no") => false,
        Err(e) => panic!("kubectl auth can-i {}: {e}", args.join(" ")),
    }
}

/// The namespaced and cluster-scoped (resource → verbs) rules `token` has in `ns`, as
/// `kubectl auth can-i --list` shows them, without the self-review rules every user has.
async fn rules_of(kube: &KubeApi, token: &str, ns: &str) -> BTreeMap<String, String> {
    let out = kube
        .try_kubectl_as(token, &["auth", "can-i", "--list", "-n", ns], None)
        .await
        .unwrap_or_else(|e| panic!("auth can-i --list: {e}"));
    out.lines()
        .skip(1)
        .filter_map(|line| {
            let resource = line.split_whitespace().next()?;
            let verbs = &line[line.rfind('[')?..];
            (!resource.starts_with('[') && !resource.starts_with("selfsubject"))
                .then(|| (resource.to_string(), verbs.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_account_can_do_exactly_what_etcdboard_needs() {
    let kube = KubeApi::start().await;
    install_etcdcluster_crd(&kube).await;
    kube.apply(crate::topology::OPERATOR_CRDS).await;
    kube.kubectl(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd/etcdclusters.operator.etcd.io",
        "crd/etcds.druid.gardener.cloud",
    ])
    .await;

    // Only the RBAC of the shipped manifests (as rendered, so overlays count).
    let objects = docs(&kustomize(&deploy_path("")));
    let rbac: Vec<Value> = objects
        .iter()
        .filter(|d| {
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
            ]
            .contains(&d["kind"].as_str().unwrap_or(""))
        })
        .cloned()
        .collect();
    apply_all(&kube, "the RBAC of deploy/", &rbac).await;
    let sa = the(&rbac, "ServiceAccount");
    let sa_ns = sa["metadata"]["namespace"].as_str().unwrap();
    let sa_name = sa["metadata"]["name"].as_str().unwrap();
    assert_eq!(sa_ns, "etcdboard");
    let token = kube.service_account_token(sa_ns, sa_name);

    // An etcd-operator cluster whose pods are the members of a real local etcd.
    let ns = "operator-cluster";
    kube.ensure_namespace(ns).await;
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("etcd");
    let names = etcd.member_names();
    for (node, zone) in [
        ("node-1", "zone-a"),
        ("node-2", "zone-b"),
        ("node-3", "zone-c"),
    ] {
        add_node(&kube, node, zone).await;
    }
    kube.apply(&format!(
        "apiVersion: etcd.database.coreos.com/v1beta2
kind: EtcdCluster
metadata:
  name: etcd-app
  namespace: {ns}
spec:
  size: 3
  version: 3.4.13
---
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata:
  name: etcd-app
  namespace: {ns}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      etcd_cluster: etcd-app
"
    ))
    .await;
    for (i, name) in names.iter().enumerate() {
        kube.apply(&format!(
            "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}-data
  namespace: {ns}
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels:
    etcd_cluster: etcd-app
    app: etcd
spec:
  nodeName: node-{n}
  automountServiceAccountToken: false
  containers:
  - name: etcd
    image: quay.io/coreos/etcd:v3.4.13
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: {name}-data
",
            n = i + 1
        ))
        .await;
        mark_running(&kube, ns, name, "etcd", &format!("10.1.0.{}", i + 1)).await;
    }

    // etcdboard with the ServiceAccount's token sees everything it needs: pods (members placed),
    // nodes (zones), PVCs (volumes), PDBs (checked, not unknown), EtcdClusters (listed).
    let dir = tempfile::tempdir().unwrap();
    let app = serve_on(
        etcd,
        AppOptions {
            kube: kubeconfig_for(&kube, &token, dir.path())
                .display()
                .to_string(),
            ..Default::default()
        },
    )
    .await;
    let body = topology_until(
        &app,
        Duration::from_secs(20),
        "every member placed with node, volume, PDB and EtcdCluster",
        |b| {
            b["kubernetes"]["state"] == "ready"
                && all_placed(b, 3)
                && b["members"].as_array().unwrap().iter().all(|m| {
                    m["node"]["zone"].is_string()
                        && m["volumes"].as_array().is_some_and(|v| !v.is_empty())
                })
                && b["pdb"] == true
                && b["etcd_clusters"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c[0] == "operator-cluster/etcd-app"))
        },
    )
    .await;
    assert_eq!(body["source"], "etcd-operator EtcdCluster", "{body:#}");
    // No watch is failing behind the scenes (a forbidden one would flip the state to error).
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, b) = app.get_json("/api/v1/clusters/test/topology").await;
        assert_eq!(b["kubernetes"]["state"], "ready", "{b:#}");
    }

    // Exactly these permissions, in any namespace (cluster-wide reads), and no others.
    let want: BTreeMap<String, String> = [
        ("pods", "[get list watch]"),
        ("nodes", "[get list watch]"),
        ("persistentvolumeclaims", "[get list watch]"),
        ("events", "[get list watch]"),
        ("etcdclusters.etcd.database.coreos.com", "[get list watch]"),
        ("etcdclusters.operator.etcd.io", "[get list watch]"),
        ("etcds.druid.gardener.cloud", "[get list watch]"),
        ("poddisruptionbudgets.policy", "[get list]"),
    ]
    .into_iter()
    .map(|(r, v)| (r.to_string(), v.to_string()))
    .collect();
    for namespace in [ns, "kube-system", "etcdboard"] {
        assert_eq!(
            rules_of(&kube, &token, namespace).await,
            want,
            "permissions in {namespace}"
        );
    }
    for allowed in [
        ["list", "pods", "--all-namespaces"],
        ["watch", "pods", "--all-namespaces"],
        ["list", "pods", "-n=kube-system"],
        ["watch", "nodes", "--all-namespaces"],
        [
            "list",
            "etcdclusters.etcd.database.coreos.com",
            "--all-namespaces",
        ],
        ["list", "poddisruptionbudgets.policy", "-n=etcd"],
        ["watch", "events", "-n=operator-cluster"],
        ["list", "etcdclusters.operator.etcd.io", "--all-namespaces"],
        ["watch", "etcds.druid.gardener.cloud", "--all-namespaces"],
    ] {
        assert!(can_i(&kube, &token, &allowed).await, "may {allowed:?}");
    }

    // May not read secrets, nor write anything.
    for denied in [
        ["get", "secrets", "--all-namespaces"],
        ["list", "secrets", "-n=etcdboard"],
        ["watch", "secrets", "-n=kube-system"],
        ["create", "pods", "-n=operator-cluster"],
        ["delete", "pods", "-n=operator-cluster"],
        ["create", "pods/exec", "-n=operator-cluster"],
        ["create", "pods/eviction", "-n=operator-cluster"],
        ["patch", "nodes", "--all-namespaces"],
        ["update", "persistentvolumeclaims", "-n=operator-cluster"],
        [
            "delete",
            "etcdclusters.etcd.database.coreos.com",
            "-n=operator-cluster",
        ],
        [
            "create",
            "poddisruptionbudgets.policy",
            "-n=operator-cluster",
        ],
        ["get", "configmaps", "-n=etcdboard"],
        ["create", "events", "-n=operator-cluster"],
        ["delete", "events", "-n=operator-cluster"],
        ["patch", "etcds.druid.gardener.cloud", "-n=operator-cluster"],
        ["create", "clusterrolebindings", "--all-namespaces"],
        ["impersonate", "serviceaccounts", "-n=kube-system"],
    ] {
        assert!(!can_i(&kube, &token, &denied).await, "may not {denied:?}");
    }
    // And the API server really refuses (server-side dry runs: nothing changes if it did not).
    let refused = |r: Result<String, String>, what: &str| match r {
        Ok(out) => panic!("{what} was allowed: {out}"),
        Err(e) => assert!(e.contains("forbidden"), "{what}: {e}"),
    };
    refused(
        kube.try_kubectl_as(&token, &["get", "secrets", "--all-namespaces"], None)
            .await,
        "reading secrets",
    );
    refused(
        kube.try_kubectl_as(
            &token,
            &[
                "-n",
                ns,
                "delete",
                "pod",
                &names[0],
                "--dry-run=server",
                "--wait=false",
            ],
            None,
        )
        .await,
        "deleting a pod",
    );
    refused(
        kube.try_kubectl_as(
            &token,
            &["-n", ns, "create", "-f", "-", "--dry-run=server"],
            Some(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: intruder\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
            ),
        )
        .await,
        "creating a pod",
    );
    refused(
        kube.try_kubectl_as(
            &token,
            &["label", "node", "node-1", "hacked=yes", "--dry-run=server"],
            None,
        )
        .await,
        "labelling a node",
    );
}

/// The values of `key` on the nodes, per pod.
fn domains<'a>(
    placement: &'a [(String, &'a str)],
    node_labels: &BTreeMap<&str, BTreeMap<String, String>>,
    key: &str,
) -> Vec<(&'a str, Option<String>)> {
    placement
        .iter()
        .map(|(pod, node)| (pod.as_str(), node_labels[node].get(key).cloned()))
        .collect()
}

fn selects(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .is_some_and(|m| m.iter().all(|(k, v)| labels[k] == *v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_ha_etcd_is_rated_safe_by_etcdboard() {
    let example = read_docs(&deploy_path("examples/etcd-statefulset.yaml"));
    let sts = the(&example, "StatefulSet").clone();
    let ns = sts["metadata"]["namespace"]
        .as_str()
        .expect("namespace")
        .to_string();
    let template = &sts["spec"]["template"];
    let labels = &template["metadata"]["labels"];
    assert_eq!(sts["spec"]["replicas"], 5, "the field report's fix");
    let pdb = the(&example, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(
        selects(&pdb["spec"]["selector"], labels),
        "the PDB selects the pods"
    );

    // Five nodes over three zones; pod i on node i, as the scheduler may place them.
    let nodes = [
        ("node-1", "zone-a"),
        ("node-2", "zone-b"),
        ("node-3", "zone-c"),
        ("node-4", "zone-a"),
        ("node-5", "zone-b"),
    ];
    let etcd = LocalCluster::start(LocalClusterOptions {
        members: 5,
        ..Default::default()
    })
    .await
    .expect("5-member etcd");
    // Pods are named like the members, as the example's `--name=$(POD_NAME)` does.
    let members = etcd.member_names();
    let placement: Vec<(String, &str)> = members
        .iter()
        .cloned()
        .zip(nodes.iter().map(|(n, _)| *n))
        .collect();

    // That placement obeys the example's own constraints, i.e. Kubernetes would schedule it so.
    let node_labels: BTreeMap<&str, BTreeMap<String, String>> = nodes
        .iter()
        .map(|(n, z)| {
            (
                *n,
                BTreeMap::from([
                    ("kubernetes.io/hostname".to_string(), n.to_string()),
                    ("topology.kubernetes.io/zone".to_string(), z.to_string()),
                ]),
            )
        })
        .collect();
    let spec = &template["spec"];
    for term in spec["affinity"]["podAntiAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(selects(&term["labelSelector"], labels));
        let key = term["topologyKey"].as_str().unwrap();
        let values: Vec<_> = domains(&placement, &node_labels, key);
        let distinct: BTreeSet<_> = values.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(
            distinct.len(),
            values.len(),
            "anti-affinity on {key}: {values:?}"
        );
    }
    for c in spec["topologySpreadConstraints"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if c["whenUnsatisfiable"] != "DoNotSchedule" {
            continue;
        }
        assert!(selects(&c["labelSelector"], labels));
        let key = c["topologyKey"].as_str().unwrap();
        let mut counts: BTreeMap<String, i64> = node_labels
            .values()
            .filter_map(|l| l.get(key).map(|v| (v.clone(), 0)))
            .collect();
        for (_, v) in domains(&placement, &node_labels, key) {
            *counts.get_mut(&v.unwrap()).unwrap() += 1;
        }
        let skew = counts.values().max().unwrap() - counts.values().min().unwrap();
        assert!(
            skew <= c["maxSkew"].as_i64().unwrap(),
            "spread on {key}: {counts:?}"
        );
    }

    // The example's objects, then the pods and volumes the StatefulSet controller would make from
    // its template and claim templates.
    let kube = KubeApi::start().await;
    kube.ensure_namespace(&ns).await;
    apply_all(
        &kube,
        "deploy/examples/etcd-statefulset.yaml",
        &for_kube_1_20(example.clone()),
    )
    .await;
    for (n, z) in nodes {
        add_node(&kube, n, z).await;
    }
    let container = spec["containers"][0]["name"].as_str().unwrap();
    for (i, (pod_name, node)) in placement.iter().enumerate() {
        let mut pod_spec = spec.clone();
        let mut volumes = pod_spec["volumes"].as_array().cloned().unwrap_or_default();
        let mut objects = Vec::new();
        for claim in sts["spec"]["volumeClaimTemplates"].as_array().unwrap() {
            let claim_name = format!("{}-{pod_name}", claim["metadata"]["name"].as_str().unwrap());
            let mut pvc = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": claim["metadata"].clone(),
                "spec": claim["spec"].clone(),
            });
            pvc["metadata"]["name"] = json!(claim_name);
            pvc["metadata"]["namespace"] = json!(ns);
            objects.push(pvc);
            volumes.push(json!({
                "name": claim["metadata"]["name"],
                "persistentVolumeClaim": {"claimName": claim_name},
            }));
        }
        pod_spec["volumes"] = json!(volumes);
        pod_spec["nodeName"] = json!(node);
        pod_spec["hostname"] = json!(pod_name);
        pod_spec["subdomain"] = sts["spec"]["serviceName"].clone();
        // The fixture has no token controller (see support_kube.rs); the example says false anyway.
        pod_spec["automountServiceAccountToken"] = json!(false);
        let mut pod_labels = labels.clone();
        pod_labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": ns, "labels": pod_labels},
            "spec": pod_spec,
        }));
        apply_all(
            &kube,
            &format!("pod {pod_name} from the example's template"),
            &objects,
        )
        .await;
        mark_running(
            &kube,
            &ns,
            pod_name,
            container,
            &format!("10.2.0.{}", i + 1),
        )
        .await;
    }

    let app = serve_on(
        etcd,
        AppOptions {
            kube: kube.kubeconfig.display().to_string(),
            ..Default::default()
        },
    )
    .await;
    let body = topology_until(
        &app,
        Duration::from_secs(20),
        "five placed members and the PDB",
        |b| b["kubernetes"]["state"] == "ready" && all_placed(b, 5) && !b["pdb"].is_null(),
    )
    .await;

    // Rated safe: no warning at all, any node or zone may fail.
    assert_eq!(
        body["spread"]["warnings"],
        json!([]),
        "warnings for the example HA etcd: {body:#}"
    );
    assert_eq!(body["pdb"], true, "{body:#}");
    assert_eq!(body["source"], "Bitnami chart / StatefulSet", "{body:#}");
    for m in body["members"].as_array().unwrap() {
        assert_eq!(m["matched_by"], "name", "{m:#}");
        assert_eq!(m["pod"]["spread_by_host"], true, "{m:#}");
        assert_eq!(m["pod"]["spread_by_zone"], true, "{m:#}");
        assert!(!m["volumes"].as_array().unwrap().is_empty(), "{m:#}");
    }
    let node_risks = body["spread"]["nodes"].as_array().unwrap();
    let zone_risks = body["spread"]["zones"].as_array().unwrap();
    assert_eq!(node_risks.len(), 5, "{body:#}");
    assert_eq!(zone_risks.len(), 3, "{body:#}");
    for r in node_risks.iter().chain(zone_risks) {
        assert_eq!(r["quorum_kept"], true, "{r:#}");
    }
    let per_zone: Vec<usize> = zone_risks
        .iter()
        .map(|z| z["members"].as_array().unwrap().len())
        .collect();
    assert_eq!(per_zone, vec![2, 2, 1], "zones a, b, c");

    // The cluster page says the same.
    let (status, html) = app.get_text("/clusters/test").await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("quorum LOST"),
        "no failure domain loses quorum"
    );
}

/// Runs the real binary as a Deployment would (flags or their `ETCDBOARD_*` twins, nothing
/// inherited) and returns what it printed on stderr; fails if it is still running after a while,
/// i.e. if it started serving with the setting.
fn refused_at_start(args: &[&str], env: &[(&str, &str)], files: &Path) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_etcdboard"));
    cmd.env_clear()
        .args(["serve", "--kube=off", "--listen=127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(files)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn etcdboard");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("etcdboard started with {args:?} {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{args:?} {env:?}: {status} {stderr}");
    stderr
}

/// Flags, `ETCDBOARD_*` variables, and what stderr must say.
type Refused<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn a_bad_setting_stops_the_server_at_start_and_the_message_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("hostname"), "etcd-0\n").unwrap();
    std::fs::write(
        d.join("clusters.yaml"),
        "clusters:\n  - name: a\n    endpoints: [https://127.0.0.1:1]\n    tls: {ca: hostname}\n",
    )
    .unwrap();
    let endpoints = ("ETCDBOARD_ENDPOINTS", "http://127.0.0.1:1");
    let cases: [Refused; 12] = [
        (&["--session-ttl=8d"], &[endpoints], &["--session-ttl", "7 days"]),
        (
            &[],
            &[endpoints, ("ETCDBOARD_SESSION_TTL", "0")],
            &["--session-ttl", "7 days"],
        ),
        (
            &["--config=clusters.yaml"],
            &[],
            &["configuration: clusters.yaml: clusters[0].tls.ca: hostname: is not a PEM certificate"],
        ),
        (
            &["--endpoints=http://127.0.0.1:99999"],
            &[],
            &["configuration: --endpoints[0]: `http://127.0.0.1:99999`: port"],
        ),
        (
            &[],
            &[("ETCDBOARD_ENDPOINTS", "http://127.0.0.1:2379/x?y")],
            &["configuration: --endpoints[0]: ", "path, query or fragment"],
        ),
        (
            &["--endpoints=http://root:s3cret@127.0.0.1:2379"],
            &[],
            &["configuration: --endpoints[0]: `http://***@127.0.0.1:2379`", "password_env"],
        ),
        (
            &["--page-size=5000"],
            &[endpoints],
            &["configuration: --page-size: 5000 must be between 1 and 1000"],
        ),
        (
            &[],
            &[endpoints, ("ETCDBOARD_MAX_VALUE_BYTES", "0")],
            &["configuration: --max-value-bytes: 0 must be between 1024"],
        ),
        (
            &["--auth=none", "--anonymous-role=none"],
            &[endpoints],
            &["configuration: --anonymous-role none", "--auth none"],
        ),
        (
            &[],
            &[endpoints, ("ETCDBOARD_ANONYMOUS_ROLE", "none")],
            &["configuration: --anonymous-role none"],
        ),
        (
            &["--base-path=/etcd/../x"],
            &[endpoints],
            &["configuration: --base-path `/etcd/../x` has a `..` segment"],
        ),
        (
            &[],
            &[endpoints, ("ETCDBOARD_BASE_PATH", "/etcd//x")],
            &["configuration: --base-path `/etcd//x` has an empty segment"],
        ),
    ];
    for (args, env, wants) in cases {
        let stderr = refused_at_start(args, env, d);
        for want in wants {
            assert!(stderr.contains(want), "{args:?} {env:?}: {stderr}");
        }
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}
