//! The only module that talks to Kubernetes (the only user of `kube` / `k8s-openapi`): discovery of
//! etcd pods, their nodes and volumes, kept in watch-driven caches so a page load never waits for
//! the API server. Kubernetes being absent, slow or forbidden never affects key browsing or the etcd
//! cluster view: this module then reports what is wrong, in plain words, and everything else goes on.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Config};

use crate::domain::topology::{NodeInfo, PodInfo, PvcInfo};

/// How to reach Kubernetes (`--kube`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeMode {
    /// Do not use Kubernetes.
    Off,
    /// In-cluster service account when running in a pod, else `$KUBECONFIG` / `~/.kube/config`.
    Auto,
    /// This kubeconfig file.
    Kubeconfig(PathBuf),
}

impl KubeMode {
    /// Parses `off`, `auto` or a kubeconfig path.
    pub fn parse(text: &str) -> KubeMode {
        match text.trim() {
            "off" | "" => KubeMode::Off,
            "auto" => KubeMode::Auto,
            path => KubeMode::Kubeconfig(PathBuf::from(path)),
        }
    }
}

/// Where Kubernetes stands, as shown to users.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "message", rename_all = "snake_case")]
pub enum KubeState {
    /// `--kube off`.
    Off,
    /// Connecting or listing for the first time.
    Connecting,
    /// Caches are filled and watched.
    Ready,
    /// Not usable; the message says why and what to do.
    Error(String),
}

/// Labels that mark etcd pods of each discovery source: `(source, namespace or all, selector)`.
const POD_SOURCES: &[(&str, Option<&str>, &str)] = &[
    ("etcd-operator EtcdCluster", None, "etcd_cluster"),
    (
        "Bitnami chart / StatefulSet",
        None,
        "app.kubernetes.io/name=etcd",
    ),
    (
        "kubeadm stacked etcd",
        Some("kube-system"),
        "component=etcd,tier=control-plane",
    ),
    (
        "etcd operator (operator.etcd.io)",
        None,
        "app.kubernetes.io/managed-by=etcd-operator",
    ),
    (
        "gardener etcd-druid",
        None,
        "app.kubernetes.io/part-of=etcd-druid",
    ),
];

/// A pod coming or going, for the event timeline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PodEvent {
    /// Unix ms.
    pub at_ms: u64,
    /// `pod-created` or `pod-deleted`.
    pub kind: &'static str,
    /// Plain words.
    pub text: String,
}

/// What the caches hold right now.
#[derive(Debug, Clone)]
pub struct KubeSnapshot {
    /// State.
    pub state: KubeState,
    /// etcd pods from every source, each with the source that found it.
    pub pods: Vec<(String, PodInfo)>,
    /// Nodes.
    pub nodes: Vec<NodeInfo>,
    /// PVCs.
    pub pvcs: Vec<PvcInfo>,
    /// etcd-operator `EtcdCluster` objects: `(namespace/name, summary)`.
    pub etcd_clusters: Vec<(String, String)>,
}

/// The Kubernetes side of etcdboard: watch-driven caches.
pub struct Topology {
    state: RwLock<KubeState>,
    pods: Mutex<Vec<(String, Store<Pod>)>>,
    nodes: Mutex<Option<Store<Node>>>,
    pvcs: Mutex<Option<Store<PersistentVolumeClaim>>>,
    crs: Mutex<Option<Store<DynamicObject>>>,
    events: Mutex<VecDeque<PodEvent>>,
    client: Mutex<Option<Client>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Turns a kube error into advice a platform team can act on.
fn explain(err: &watcher::Error, what: &str) -> String {
    let text = err.to_string();
    if text.contains("403") || text.contains("forbidden") {
        let detail = text
            .split("message: \"")
            .nth(1)
            .and_then(|m| m.split('"').next())
            .unwrap_or("access denied");
        format!("forbidden: etcdboard may not list {what} ({detail}) — see deploy/base/rbac.yaml")
    } else if text.contains("404") {
        format!("{what}: not served by this API server")
    } else {
        let short: String = text.chars().take(200).collect();
        format!("cannot list {what}: {short}")
    }
}

impl Topology {
    /// Connects (bounded by 2 s) and starts the watchers in the background.
    pub async fn start(mode: KubeMode) -> Arc<Topology> {
        let topo = Arc::new(Topology {
            state: RwLock::new(if mode == KubeMode::Off {
                KubeState::Off
            } else {
                KubeState::Connecting
            }),
            pods: Mutex::new(Vec::new()),
            nodes: Mutex::new(None),
            pvcs: Mutex::new(None),
            crs: Mutex::new(None),
            events: Mutex::new(VecDeque::new()),
            client: Mutex::new(None),
        });
        if mode == KubeMode::Off {
            return topo;
        }
        let config = match tokio::time::timeout(Duration::from_secs(2), load_config(&mode)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                topo.set_state(KubeState::Error(e));
                return topo;
            }
            Err(_) => {
                topo.set_state(KubeState::Error(
                    "no Kubernetes configuration found within 2 s".into(),
                ));
                return topo;
            }
        };
        let client = match Client::try_from(config) {
            Ok(c) => c,
            Err(e) => {
                topo.set_state(KubeState::Error(format!(
                    "cannot create a Kubernetes client: {e}"
                )));
                return topo;
            }
        };
        if let Ok(mut g) = topo.client.lock() {
            *g = Some(client.clone());
        }
        topo.spawn_watchers(client);
        topo
    }

    fn set_state(&self, s: KubeState) {
        if let Ok(mut g) = self.state.write() {
            *g = s;
        }
    }

    /// The current state.
    pub fn state(&self) -> KubeState {
        self.state
            .read()
            .map(|s| s.clone())
            .unwrap_or(KubeState::Connecting)
    }

    fn spawn_watchers(self: &Arc<Self>, client: Client) {
        for (source, ns, selector) in POD_SOURCES {
            let api: Api<Pod> = match ns {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let (store, writer) = reflector::store();
            if let Ok(mut g) = self.pods.lock() {
                g.push((source.to_string(), store));
            }
            let cfg = watcher::Config::default().labels(selector);
            let stream = reflector::reflector(writer, watcher::watcher(api, cfg)).default_backoff();
            self.drive(stream, "pods", true);
        }
        let (nodes, writer) = reflector::store();
        if let Ok(mut g) = self.nodes.lock() {
            *g = Some(nodes);
        }
        let api: Api<Node> = Api::all(client.clone());
        self.drive(
            reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
                .default_backoff(),
            "nodes",
            false,
        );
        let (pvcs, writer) = reflector::store();
        if let Ok(mut g) = self.pvcs.lock() {
            *g = Some(pvcs);
        }
        let api: Api<PersistentVolumeClaim> = Api::all(client.clone());
        self.drive(
            reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
                .default_backoff(),
            "persistentvolumeclaims",
            false,
        );
        // etcd-operator's EtcdCluster (a CRD that may not exist: then it is simply not a source).
        let gvk = GroupVersionKind::gvk("etcd.database.coreos.com", "v1beta2", "EtcdCluster");
        let resource = ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = Api::all_with(client, &resource);
        let writer = reflector::store::Writer::new(resource);
        let crs = writer.as_reader();
        if let Ok(mut g) = self.crs.lock() {
            *g = Some(crs);
        }
        self.drive(
            reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
                .default_backoff(),
            "etcdclusters.etcd.database.coreos.com",
            false,
        );
    }

    /// Runs one watch stream for as long as the topology lives, recording errors and pod events.
    fn drive<K, S>(self: &Arc<Self>, stream: S, what: &'static str, pods: bool)
    where
        K: kube::Resource + Send + 'static,
        S: futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut seen: HashSet<String> = HashSet::new();
            let mut listed = false;
            while let Some(item) = stream.next().await {
                let Some(topo) = weak.upgrade() else { return };
                match item {
                    Ok(ev) => {
                        if matches!(topo.state(), KubeState::Connecting | KubeState::Error(_)) {
                            topo.set_state(KubeState::Ready);
                        }
                        if pods {
                            topo.pod_event(&ev, &mut seen, &mut listed);
                        }
                    }
                    Err(e) => {
                        // A CRD that is not installed is not an error of etcdboard's setup.
                        let msg = explain(&e, what);
                        if !msg.contains("not served") {
                            topo.set_state(KubeState::Error(msg));
                        }
                    }
                }
            }
        });
    }

    fn pod_event<K: kube::Resource>(
        &self,
        ev: &Event<K>,
        seen: &mut HashSet<String>,
        listed: &mut bool,
    ) {
        let name_of = |k: &K| {
            let m = k.meta();
            format!(
                "{}/{}",
                m.namespace.clone().unwrap_or_default(),
                m.name.clone().unwrap_or_default()
            )
        };
        let push = |kind: &'static str, text: String| {
            if let Ok(mut g) = self.events.lock() {
                g.push_front(PodEvent {
                    at_ms: now_ms(),
                    kind,
                    text,
                });
                g.truncate(200);
            }
        };
        match ev {
            Event::InitApply(k) => {
                seen.insert(name_of(k));
            }
            Event::InitDone => *listed = true,
            Event::Apply(k) => {
                let name = name_of(k);
                if seen.insert(name.clone()) && *listed {
                    push("pod-created", format!("pod {name} created"));
                }
            }
            Event::Delete(k) => {
                let name = name_of(k);
                seen.remove(&name);
                push("pod-deleted", format!("pod {name} deleted"));
            }
            Event::Init => {}
        }
    }

    /// Pods created or deleted, newest first.
    pub fn pod_events(&self) -> Vec<PodEvent> {
        self.events
            .lock()
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// What the caches hold (no API call).
    pub fn snapshot(&self) -> KubeSnapshot {
        let mut pods: Vec<(String, PodInfo)> = Vec::new();
        let mut seen = HashSet::new();
        if let Ok(stores) = self.pods.lock() {
            for (source, store) in stores.iter() {
                for p in store.state() {
                    let info = pod_info(&p);
                    if seen.insert((info.namespace.clone(), info.name.clone())) {
                        pods.push((source.clone(), info));
                    }
                }
            }
        }
        let nodes = self
            .nodes
            .lock()
            .ok()
            .and_then(|g| {
                g.as_ref()
                    .map(|s| s.state().iter().map(|n| node_info(n)).collect())
            })
            .unwrap_or_default();
        let pvcs = self
            .pvcs
            .lock()
            .ok()
            .and_then(|g| {
                g.as_ref()
                    .map(|s| s.state().iter().map(|p| pvc_info(p)).collect())
            })
            .unwrap_or_default();
        let etcd_clusters = self
            .crs
            .lock()
            .ok()
            .and_then(|g| {
                g.as_ref()
                    .map(|s| s.state().iter().map(|o| cr_summary(o)).collect())
            })
            .unwrap_or_default();
        KubeSnapshot {
            state: self.state(),
            pods,
            nodes,
            pvcs,
            etcd_clusters,
        }
    }

    /// Whether a PodDisruptionBudget in `namespace` selects a pod with `labels` (one bounded list
    /// call, policy/v1 then policy/v1beta1 for older API servers).
    pub async fn has_pdb(
        &self,
        namespace: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Option<bool> {
        let client = self.client.lock().ok()?.clone()?;
        for version in ["v1", "v1beta1"] {
            let gvk = GroupVersionKind::gvk("policy", version, "PodDisruptionBudget");
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk));
            let listed =
                tokio::time::timeout(Duration::from_secs(1), api.list(&ListParams::default()))
                    .await;
            if let Ok(Ok(list)) = listed {
                return Some(list.items.iter().any(|pdb| {
                    pdb.data
                        .pointer("/spec/selector/matchLabels")
                        .and_then(|m| m.as_object())
                        .is_some_and(|m| {
                            !m.is_empty()
                                && m.iter()
                                    .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
                        })
                }));
            }
        }
        None
    }

    /// Labels of a cached pod (for PDB matching).
    pub fn pod_labels(
        &self,
        namespace: &str,
        name: &str,
    ) -> std::collections::BTreeMap<String, String> {
        if let Ok(stores) = self.pods.lock() {
            for (_, store) in stores.iter() {
                if let Some(p) = store.state().iter().find(|p| {
                    p.metadata.namespace.as_deref() == Some(namespace)
                        && p.metadata.name.as_deref() == Some(name)
                }) {
                    return p.metadata.labels.clone().unwrap_or_default();
                }
            }
        }
        Default::default()
    }
}

async fn load_config(mode: &KubeMode) -> Result<Config, String> {
    match mode {
        KubeMode::Off => Err("Kubernetes is off".into()),
        KubeMode::Auto => Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration: {e}")),
        KubeMode::Kubeconfig(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| format!("bad kubeconfig {}: {e}", path.display()))
        }
    }
}

fn pod_info(p: &Pod) -> PodInfo {
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    let statuses = status
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let ready = !statuses.is_empty() && statuses.iter().all(|c| c.ready);
    let restarts = statuses.iter().map(|c| c.restart_count.max(0) as u32).sum();
    let last_restart_reason = statuses.iter().find_map(|c| {
        c.last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.reason.clone())
    });
    let affinity = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref());
    let required_host = affinity
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|terms| {
            terms
                .iter()
                .any(|t| t.topology_key == "kubernetes.io/hostname")
        });
    let constraints = spec
        .and_then(|s| s.topology_spread_constraints.clone())
        .unwrap_or_default();
    let spread_host = constraints.iter().any(|c| {
        c.topology_key == "kubernetes.io/hostname" && c.when_unsatisfiable == "DoNotSchedule"
    });
    let zone_key = |k: &str| {
        k == "topology.kubernetes.io/zone" || k == "failure-domain.beta.kubernetes.io/zone"
    };
    let spread_zone = constraints.iter().any(|c| zone_key(&c.topology_key))
        || affinity.is_some_and(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
                .is_some_and(|t| t.iter().any(|t| zone_key(&t.topology_key)))
                || a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
                    .is_some_and(|t| {
                        t.iter()
                            .any(|w| zone_key(&w.pod_affinity_term.topology_key))
                    })
        });
    let volumes = spec.and_then(|s| s.volumes.clone()).unwrap_or_default();
    PodInfo {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        ip: status.and_then(|s| s.pod_ip.clone()),
        phase: status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
        ready,
        restarts,
        last_restart_reason,
        created_unix: p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second()),
        node: spec.and_then(|s| s.node_name.clone()),
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        spread_by_host: required_host || spread_host,
        spread_by_zone: spread_zone,
        claims: volumes
            .iter()
            .filter_map(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.clone())
            })
            .collect(),
        empty_dir: volumes.iter().any(|v| v.empty_dir.is_some()),
        events: Vec::new(),
    }
}

fn node_info(n: &Node) -> NodeInfo {
    let labels = n.metadata.labels.clone().unwrap_or_default();
    NodeInfo {
        name: n.metadata.name.clone().unwrap_or_default(),
        ready: n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        zone: labels
            .get("topology.kubernetes.io/zone")
            .or_else(|| labels.get("failure-domain.beta.kubernetes.io/zone"))
            .cloned(),
    }
}

fn pvc_info(p: &PersistentVolumeClaim) -> PvcInfo {
    PvcInfo {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        storage_class: p.spec.as_ref().and_then(|s| s.storage_class_name.clone()),
        capacity: p
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .map(|q| q.0.clone())
            .or_else(|| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"))
                    .map(|q| q.0.clone())
            }),
        phase: p
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
    }
}

fn cr_summary(o: &DynamicObject) -> (String, String) {
    let name = format!(
        "{}/{}",
        o.metadata.namespace.clone().unwrap_or_default(),
        o.metadata.name.clone().unwrap_or_default()
    );
    let s = |p: &str| {
        o.data
            .pointer(p)
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    let summary = format!(
        "phase {}, size {} (spec {}), version {}",
        s("/status/phase").unwrap_or_else(|| "?".into()),
        s("/status/size").unwrap_or_else(|| "?".into()),
        s("/spec/size").unwrap_or_else(|| "?".into()),
        s("/status/currentVersion")
            .or_else(|| s("/spec/version"))
            .unwrap_or_else(|| "?".into()),
    );
    (name, summary)
}
