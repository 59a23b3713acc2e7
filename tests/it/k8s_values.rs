//! Kubernetes' own objects in etcd, as a real kube-apiserver (1.20) stores them: protobuf behind a
//! `k8s\0` prefix. etcdboard shows them decoded as YAML, read-only, and refuses to edit them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use etcdboard::config::{ClusterConfig, Config, HttpArgs};
use etcdboard::domain::k8s_proto::{self, Decoded};
use serde_json::Value as Json;

use crate::helpers::{init_logs, pct, serve_config, Replica};
use crate::support_kube::KubeApi;

const NS: &str = "shop";

const OBJECTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels:
    app.kubernetes.io/name: shop
data:
  mode: fast
  greeting: "hello: world"
  script: |
    #!/bin/sh
    echo "<b>&</b>"
binaryData:
  blob: AAEC/w==
  readable: aGkgdGhlcmU=
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shop
type: Opaque
data:
  password: aHVudGVyMg==
  key: 3q2+7w==
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: shop
  labels:
    app: web
spec:
  nodeName: node-a
  automountServiceAccountToken: false
  containers:
  - name: app
    image: nginx:1.25
    ports:
    - containerPort: 8080
      name: http
    resources:
      limits:
        cpu: 250m
        memory: 64Mi
    readinessProbe:
      httpGet:
        path: /healthz
        port: http
    env:
    - name: MODE
      valueFrom:
        configMapKeyRef:
          name: settings
          key: mode
  - name: sidecar
    image: busybox:1.36
    command: ["sleep", "3600"]
  volumes:
  - name: scratch
    emptyDir: {}
  - name: conf
    configMap:
      name: settings
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: http
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  replicas: 0
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      automountServiceAccountToken: false
      containers:
      - name: api
        image: example/api:2
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: shop
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list"]
---
apiVersion: v1
kind: Endpoints
metadata:
  name: legacy
  namespace: shop
subsets:
- addresses:
  - ip: 10.1.2.3
    nodeName: node-a
    targetRef:
      kind: Pod
      name: web-0
      namespace: shop
  ports:
  - name: http
    port: 8080
    protocol: TCP
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: leader
  namespace: shop
spec:
  holderIdentity: web-0
  leaseDurationSeconds: 15
  leaseTransitions: 0
  acquireTime: "2024-05-06T07:00:00.000000Z"
  renewTime: "2024-05-06T07:08:09.123456Z"
---
apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels:
    topology.kubernetes.io/zone: zone-a
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24]
  providerID: test://node-a
  taints:
  - key: dedicated
    value: db
    effect: NoSchedule
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-a
spec:
  capacity:
    storage: 1Gi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: manual
  hostPath:
    path: /data/a
    type: DirectoryOrCreate
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: shop
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  volumeName: pv-a
  resources:
    requests:
      storage: 1Gi
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: integer
                minimum: 1
                default: 3
              mode:
                type: string
                enum: [fast, safe]
              tags:
                type: array
                items:
                  type: string
              labels:
                type: object
                additionalProperties:
                  type: string
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reader
  namespace: shop
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: reader
subjects:
- kind: ServiceAccount
  name: default
  namespace: shop
"#;

/// etcdboard in front of the API server's etcd (which the [`KubeApi`] owns).
struct Board {
    addr: SocketAddr,
    http: reqwest::Client,
    _replica: Replica,
}

impl Board {
    async fn start(endpoints: Vec<String>) -> Board {
        init_logs();
        let http = HttpArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kube: "off".into(),
            // Anonymous admins, so a refusal below can only come from the protobuf rule.
            access: etcdboard::config::AccessArgs {
                anonymous_role: Some("admin".into()),
                ..Default::default()
            },
            ..HttpArgs::default()
        };
        let config = Config::new(
            &http,
            vec![ClusterConfig {
                name: "test".into(),
                endpoints,
                tls: None,
                credentials: None,
                separator: "/".into(),
                ..Default::default()
            }],
        )
        .expect("config");
        let replica = serve_config(config).await;
        Board {
            addr: replica.addr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            _replica: replica,
        }
    }

    async fn get(&self, path: &str, fragment: bool) -> (u16, String) {
        let mut req = self.http.get(format!("http://{}{path}", self.addr));
        if fragment {
            req = req.header("hx-request", "true");
        }
        let resp = req.send().await.expect("request");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    }

    async fn get_json(&self, path: &str) -> Json {
        let (status, body) = self.get(path, false).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }
}

/// The text of the value `<pre>` of a key view fragment, tags stripped and entities decoded.
fn shown_value(html: &str) -> String {
    let start = html
        .find("id=\"value-text\">")
        .unwrap_or_else(|| panic!("no value in the key view: {html}"))
        + "id=\"value-text\">".len();
    let end = start + html[start..].find("</pre>").expect("end of the value");
    let mut text = String::new();
    let mut in_tag = false;
    for c in html[start..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    for (entity, c) in [
        ("&lt;", "<"),
        ("&#60;", "<"),
        ("&gt;", ">"),
        ("&#62;", ">"),
        ("&quot;", "\""),
        ("&#34;", "\""),
        ("&#x27;", "'"),
        ("&#39;", "'"),
    ] {
        text = text.replace(entity, c);
    }
    text.replace("&#38;", "&").replace("&amp;", "&")
}

/// Our YAML as JSON: `!binary` values are base64 already, `!text` values become base64, as the
/// API shows bytes.
fn yaml_to_json(v: &serde_yaml::Value) -> Json {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Json::Null,
        Y::Bool(b) => Json::Bool(*b),
        Y::Number(n) => serde_json::to_value(n).expect("number"),
        Y::String(s) => Json::String(s.clone()),
        Y::Sequence(items) => Json::Array(items.iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().expect("string key").to_string(), yaml_to_json(v)))
                .collect(),
        ),
        Y::Tagged(t) => {
            let s = t.value.as_str().expect("tagged string");
            if t.tag == "text" {
                Json::String(base64::engine::general_purpose::STANDARD.encode(s))
            } else {
                assert!(t.tag == "binary", "unexpected tag {}", t.tag);
                Json::String(s.to_string())
            }
        }
    }
}

/// Every leaf (scalars, empty objects and arrays) by path.
fn leaves(v: &Json, path: String, out: &mut BTreeMap<String, Json>) {
    match v {
        Json::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                leaves(v, format!("{path}.{k}"), out);
            }
        }
        Json::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                leaves(v, format!("{path}[{i}]"), out);
            }
        }
        _ => {
            out.insert(path, v.clone());
        }
    }
}

fn is_zero(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::Bool(b) => !b,
        Json::Number(n) => n.as_f64() == Some(0.0),
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Object(m) => m.is_empty(),
    }
}

/// Differences between our rendering and the API's JSON of the same object: a leaf present on
/// both sides must be equal; a leaf present on one side only must be a zero value (proto2 cannot
/// tell unset from zero; `omitempty` differs per field), except what the API adds on read.
fn compare(kind: &str, ours: &Json, theirs: &Json) -> Vec<String> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(ours, String::new(), &mut a);
    leaves(theirs, String::new(), &mut b);
    let mut diffs = Vec::new();
    for (path, v) in &a {
        match b.get(path) {
            Some(t) if t == v => {}
            Some(t) => diffs.push(format!("{path}: ours {v}, API {t}")),
            None if is_zero(v) => {}
            None => diffs.push(format!("{path}: ours {v}, API has none")),
        }
    }
    for (path, t) in &b {
        // The resource version is the etcd revision, filled in on read; selfLink likewise.
        if path == ".metadata.resourceVersion" || path == ".metadata.selfLink" {
            continue;
        }
        // Defaulted when the apiserver decodes from storage, not stored (checked below).
        if matches!(kind, "PersistentVolume" | "PersistentVolumeClaim")
            && path == ".status.phase"
            && t == "Pending"
        {
            continue;
        }
        if !a.contains_key(path) && !is_zero(t) {
            diffs.push(format!("{path}: API {t}, ours has none"));
        }
    }
    diffs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_objects_are_decoded_read_only() {
    let kube = KubeApi::start().await;
    kube.ensure_namespace(NS).await;
    kube.apply(OBJECTS).await;
    let board = Board::start(kube.etcd_endpoints()).await;

    // The raw value is the apiserver's protobuf, byte for byte.
    let cm_key = format!("/registry/configmaps/{NS}/settings");
    let raw = board
        .get_json(&format!(
            "/api/v1/clusters/test/key?key={}",
            pct(cm_key.as_bytes())
        ))
        .await;
    let cm_bytes = base64::engine::general_purpose::STANDARD
        .decode(raw["value_b64"].as_str().expect("value_b64"))
        .expect("base64");
    assert!(cm_bytes.starts_with(b"k8s\0"), "{raw}");

    // The key view of the ConfigMap: decoded YAML, the data there, no edit button.
    let (status, html) = board
        .get(
            &format!("/clusters/test/ui/key?key={}", pct(cm_key.as_bytes())),
            true,
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Kubernetes object (protobuf, read-only)"),
        "{html}"
    );
    assert!(!html.contains("title=\"edit this value (e)\""), "{html}");
    assert!(html.contains(">history</a>"), "{html}");
    // "copy base64" still copies the stored bytes.
    assert!(
        html.contains(&base64::engine::general_purpose::STANDARD.encode(&cm_bytes)),
        "copy base64 must hold the stored bytes"
    );
    let cm_text = shown_value(&html);
    let cm: serde_yaml::Value = serde_yaml::from_str(&cm_text)
        .unwrap_or_else(|e| panic!("shown ConfigMap is not YAML ({e}):\n{cm_text}"));
    assert_eq!(cm["apiVersion"], "v1", "{cm_text}");
    assert_eq!(cm["kind"], "ConfigMap", "{cm_text}");
    assert_eq!(cm["metadata"]["name"], "settings", "{cm_text}");
    assert_eq!(cm["metadata"]["namespace"], NS, "{cm_text}");
    assert_eq!(cm["data"]["mode"], "fast", "{cm_text}");
    assert_eq!(cm["data"]["greeting"], "hello: world", "{cm_text}");
    assert_eq!(
        cm["data"]["script"], "#!/bin/sh\necho \"<b>&</b>\"\n",
        "{cm_text}"
    );
    assert!(cm_text.contains("blob: !binary AAEC/w=="), "{cm_text}");
    assert!(cm_text.contains("readable: !text hi there"), "{cm_text}");

    // The Pod: names, images, node, the inlined fields where the API has them.
    let pod_key = format!("/registry/pods/{NS}/web-0");
    let (status, html) = board
        .get(
            &format!("/clusters/test/ui/key?key={}", pct(pod_key.as_bytes())),
            true,
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Kubernetes object (protobuf, read-only): Pod (v1)"),
        "{html}"
    );
    assert!(html.contains("class=\"value yaml\""), "{html}");
    assert!(
        html.contains("<span class=\"t-key\">"),
        "not highlighted: {html}"
    );
    assert!(!html.contains("title=\"edit this value (e)\""), "{html}");
    let pod_text = shown_value(&html);
    let pod: serde_yaml::Value = serde_yaml::from_str(&pod_text)
        .unwrap_or_else(|e| panic!("shown Pod is not YAML ({e}):\n{pod_text}"));
    assert_eq!(pod["kind"], "Pod", "{pod_text}");
    assert_eq!(pod["metadata"]["name"], "web-0", "{pod_text}");
    assert_eq!(pod["metadata"]["namespace"], NS, "{pod_text}");
    assert_eq!(pod["spec"]["nodeName"], "node-a", "{pod_text}");
    assert_eq!(
        pod["spec"]["automountServiceAccountToken"], false,
        "{pod_text}"
    );
    let containers = pod["spec"]["containers"].as_sequence().expect("containers");
    let names: Vec<(&str, &str)> = containers
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name"),
                c["image"].as_str().expect("image"),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("app", "nginx:1.25"), ("sidecar", "busybox:1.36")],
        "{pod_text}"
    );
    assert_eq!(containers[0]["resources"]["limits"]["cpu"], "250m");
    assert_eq!(containers[0]["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(
        containers[0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"],
        "settings"
    );
    assert_eq!(pod["spec"]["volumes"][0]["name"], "scratch");
    assert!(
        pod["spec"]["volumes"][0]["emptyDir"].is_mapping(),
        "{pod_text}"
    );
    assert_eq!(pod["spec"]["volumes"][1]["configMap"]["name"], "settings");
    let created = pod["metadata"]["creationTimestamp"]
        .as_str()
        .expect("creationTimestamp");
    let api_pod = kube
        .get_json(&format!("/api/v1/namespaces/{NS}/pods/web-0"))
        .await;
    assert_eq!(created, api_pod["metadata"]["creationTimestamp"]);
    assert_eq!(
        pod["metadata"]["uid"].as_str(),
        api_pod["metadata"]["uid"].as_str()
    );

    // Editing is refused, as a fragment and as a page; the key is untouched.
    let (status, body) = board
        .get(
            &format!("/clusters/test/ui/edit?key={}", pct(pod_key.as_bytes())),
            true,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("bypasses the API server"), "{body}");
    assert!(!body.contains("<textarea"), "{body}");
    let (status, body) = board
        .get(
            &format!("/clusters/test/edit?key={}", pct(pod_key.as_bytes())),
            false,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("bypasses the API server"), "{body}");
    assert!(body.contains("kubectl"), "{body}");

    // A plain key next to them is still editable.
    let mut etcd = etcd_client::Client::connect(kube.etcd_endpoints(), None)
        .await
        .expect("etcd client");
    etcd.put("/etcdboard-test/plain", "a: 1\n", None)
        .await
        .expect("put");
    let (status, html) = board
        .get("/clusters/test/ui/key?key=/etcdboard-test/plain", true)
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("title=\"edit this value (e)\""), "{html}");
    assert!(!html.contains("Kubernetes object"), "{html}");
    let (status, body) = board
        .get("/clusters/test/ui/edit?key=/etcdboard-test/plain", true)
        .await;
    assert_eq!(status, 200, "{body}");

    // CRDs are stored as JSON (by the apiextensions server): an ordinary, editable JSON value.
    let (status, html) = board
        .get(
            "/clusters/test/ui/key?key=/registry/apiextensions.k8s.io/customresourcedefinitions/\
             widgets.example.com",
            true,
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<span class=\"format\">JSON</span>"),
        "{html}"
    );
    assert!(html.contains("title=\"edit this value (e)\""), "{html}");

    // The tree of /registry/: the resource types are directories.
    let mut dirs = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = "mode=tree&prefix=/registry/".to_string();
        if let Some(a) = &after {
            q.push_str(&format!("&after={a}"));
        }
        let page = board
            .get_json(&format!("/api/v1/clusters/test/keys?{q}"))
            .await;
        for item in page["items"].as_array().expect("items") {
            if item["dir"] == true {
                dirs.insert(item["key"].as_str().expect("key").to_string());
            }
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    for want in [
        "/registry/namespaces/",
        "/registry/pods/",
        "/registry/configmaps/",
        "/registry/secrets/",
        "/registry/services/",
        "/registry/deployments/",
        "/registry/clusterroles/",
    ] {
        assert!(
            dirs.contains(want),
            "{want} not a dir of /registry/: {dirs:?}"
        );
    }
    let (status, html) = board
        .get("/clusters/test/keys?mode=tree&prefix=/registry/", false)
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("configmaps"), "{html}");

    // Every object the apiserver stored: a kind with a decoder decodes, and reads like the API's
    // own JSON of it.
    let stored = etcd
        .get(
            "/registry/",
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .expect("get /registry/");
    let mut decoded: BTreeMap<(String, String, String), (String, Json)> = BTreeMap::new();
    let mut no_decoder = BTreeSet::new();
    let mut not_protobuf = BTreeSet::new();
    for kv in stored.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        match k8s_proto::decode(kv.value()) {
            None => {
                not_protobuf.insert(key.split('/').take(3).collect::<Vec<_>>().join("/"));
            }
            Some(Decoded::Yaml {
                api_version,
                kind,
                text,
            }) => {
                let y: serde_yaml::Value = serde_yaml::from_str(&text)
                    .unwrap_or_else(|e| panic!("{key}: not YAML ({e}):\n{text}"));
                let json = yaml_to_json(&y);
                let ns = json["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                // Some records have no name (`/registry/masterleases/IP` Endpoints).
                if let Some(name) = json["metadata"]["name"].as_str() {
                    decoded.insert((kind, ns, name.to_string()), (api_version, json));
                }
            }
            Some(Decoded::NoDecoder {
                api_version, kind, ..
            }) => {
                assert!(
                    !k8s_proto::KINDS.contains(&(api_version.as_str(), kind.as_str())),
                    "{key}: {kind} ({api_version}) has a decoder but did not decode"
                );
                no_decoder.insert(format!("{kind} ({api_version})"));
            }
            Some(Decoded::Invalid(e)) => panic!("{key}: invalid envelope: {e}"),
        }
    }
    println!(
        "/registry/: {} keys, {} decoded; no decoder: {no_decoder:?}; not protobuf: {not_protobuf:?}",
        stored.kvs().len(),
        decoded.len()
    );

    let listed = list_json(
        &kube,
        "namespaces,pods,configmaps,secrets,services,endpoints,serviceaccounts,deployments,\
         roles,rolebindings,clusterroles,clusterrolebindings,leases,priorityclasses,nodes,\
         persistentvolumes,persistentvolumeclaims,flowschemas,prioritylevelconfigurations",
    )
    .await;
    let mut compared = BTreeSet::new();
    let mut other_version = BTreeSet::new();
    let mut failures = Vec::new();
    for item in listed {
        let kind = item["kind"].as_str().expect("kind").to_string();
        let ns = item["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = item["metadata"]["name"].as_str().expect("name").to_string();
        let Some((api_version, ours)) = decoded.get(&(kind.clone(), ns.clone(), name.clone()))
        else {
            failures.push(format!(
                "{kind} {ns}/{name}: listed by the API, not decoded"
            ));
            continue;
        };
        let item = if item["apiVersion"] == api_version.as_str() {
            item
        } else {
            // Stored at another version than the API serves by default: ask for that one.
            other_version.insert(format!("{kind} ({api_version} stored)"));
            let group = if api_version.contains('/') {
                "apis"
            } else {
                "api"
            };
            let scope = if ns.is_empty() {
                String::new()
            } else {
                format!("/namespaces/{ns}")
            };
            let plural = format!("{}s", kind.to_lowercase());
            kube.get_json(&format!("/{group}/{api_version}{scope}/{plural}/{name}"))
                .await
        };
        for d in compare(&kind, ours, &item) {
            failures.push(format!("{kind} {ns}/{name}: {d}"));
        }
        compared.insert(format!("{kind} {ns}/{name}"));
    }
    println!(
        "compared {} objects with the API's JSON; fetched at the stored version: {other_version:?}",
        compared.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for want in [
        "Pod shop/web-0",
        "ConfigMap shop/settings",
        "Secret shop/creds",
        "Service shop/web",
        "Deployment shop/api",
        "Role shop/reader",
        "RoleBinding shop/reader",
        "Namespace /shop",
        "ServiceAccount shop/default",
        "Endpoints shop/legacy",
        "Lease shop/leader",
        "Node /node-a",
        "PersistentVolume /pv-a",
        "PersistentVolumeClaim shop/data",
        "FlowSchema /exempt",
        "PriorityLevelConfiguration /exempt",
    ] {
        assert!(compared.contains(want), "{want} not compared: {compared:?}");
    }
    assert!(compared.len() > 50, "{compared:?}");

    // The phase the API shows for the PV and the PVC is a read-time default: storage has none.
    for key in [
        "/registry/persistentvolumes/pv-a",
        "/registry/persistentvolumeclaims/shop/data",
    ] {
        let resp = etcd.get(key, None).await.expect("get");
        let env = k8s_proto::envelope(resp.kvs()[0].value()).expect("envelope");
        let phase = if env.kind == "PersistentVolume" {
            <k8s_pb::api::core::v1::PersistentVolume as prost::Message>::decode(&env.raw[..])
                .expect("PV")
                .status
                .and_then(|s| s.phase)
        } else {
            <k8s_pb::api::core::v1::PersistentVolumeClaim as prost::Message>::decode(&env.raw[..])
                .expect("PVC")
                .status
                .and_then(|s| s.phase)
        };
        assert!(phase.unwrap_or_default().is_empty(), "{key}: phase stored");
    }

    // Inlined Go structs sit where the API has them; MicroTime keeps its microseconds.
    let (_, pv) = &decoded[&("PersistentVolume".into(), String::new(), "pv-a".into())];
    assert_eq!(pv["spec"]["hostPath"]["path"], "/data/a", "{pv}");
    let (_, lease) = &decoded[&("Lease".into(), NS.into(), "leader".into())];
    assert_eq!(
        lease["spec"]["renewTime"], "2024-05-06T07:08:09.123456Z",
        "{lease}"
    );
    assert_eq!(lease["spec"]["leaseTransitions"], 0, "{lease}");
    let (_, node) = &decoded[&("Node".into(), String::new(), "node-a".into())];
    assert_eq!(node["spec"]["podCIDRs"][0], "10.244.1.0/24", "{node}");
    assert_eq!(node["spec"]["providerID"], "test://node-a", "{node}");
    let (_, secret) = &decoded[&("Secret".into(), NS.into(), "creds".into())];
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==", "{secret}");
    assert_eq!(secret["data"]["key"], "3q2+7w==", "{secret}");

    // Zero where it means something: a Deployment scaled to zero says so.
    let (_, dep) = &decoded[&("Deployment".into(), NS.into(), "api".into())];
    assert_eq!(dep["spec"]["replicas"], 0, "{dep}");
}

/// `kubectl get R1,R2,… -A -o json` items.
async fn list_json(kube: &KubeApi, resources: &str) -> Vec<Json> {
    let out = kube
        .kubectl(&[
            "get",
            resources,
            "-A",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
    let list: Json = serde_json::from_str(&out).expect("kubectl JSON");
    list["items"].as_array().expect("items").clone()
}
