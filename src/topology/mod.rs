//! The only module that talks to Kubernetes (the only user of `kube` / `k8s-openapi`): discovery of
//! etcd pods, their nodes and volumes, kept in watch-driven caches so a page load never waits for
//! the API server. Kubernetes being absent, slow or forbidden never affects key browsing or the etcd
//! cluster view: this module then reports what is wrong, in plain words, and everything else goes on.

mod pdb;

pub use pdb::PdbRead;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Container, Event as KubeApiEvent, Node, PersistentVolumeClaim, Pod, PodSpec,
};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::Backoff as _;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Config};

use crate::domain::discovery::{group, DiscoveredCluster, DiscoverySource, PodFacts};
use crate::domain::topology::{
    age_text, etcd_data_dir, events_of_pod, forbidden_advice, headline, keeps_data_in_empty_dir,
    one_line, operator_status, watch_log, Headline, KubeEvent, KubeTarget, NodeInfo, OperatorKind,
    OperatorStatus, PodChange, PodInfo, PodPresence, PvcInfo, SourceReport, VolumeKind,
    WatchHealth, WatchKind, WatchLog, EVENTS_PER_POD,
};

/// Kubernetes Events kept per namespace (the oldest go first): bounds memory however chatty a
/// namespace is.
const EVENTS_PER_NAMESPACE: usize = 300;
/// Namespaces whose Events are watched (one watch each, started when an etcd pod is seen there).
const EVENT_NAMESPACES: usize = 50;
/// Explicit `namespace + selector` pod watches (one per distinct configured pair).
const EXPLICIT_WATCHES: usize = 100;

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

/// Labels that mark etcd pods of each discovery source: `(source, namespace or all, selector,
/// the source as discovery rules name it)`.
const POD_SOURCES: &[(&str, Option<&str>, &str, DiscoverySource)] = &[
    (
        "etcd-operator EtcdCluster",
        None,
        "etcd_cluster",
        DiscoverySource::EtcdOperator,
    ),
    (
        "Bitnami chart / StatefulSet",
        None,
        "app.kubernetes.io/name=etcd",
        DiscoverySource::Statefulset,
    ),
    (
        "kubeadm stacked etcd",
        Some("kube-system"),
        "component=etcd,tier=control-plane",
        DiscoverySource::Kubeadm,
    ),
    (
        "etcd operator (operator.etcd.io)",
        None,
        "app.kubernetes.io/managed-by=etcd-operator",
        DiscoverySource::OperatorEtcdIo,
    ),
    (
        "gardener etcd-druid",
        None,
        "app.kubernetes.io/part-of=etcd-druid",
        DiscoverySource::Druid,
    ),
];

/// Pod changes are gathered this long before discovered clusters are recomputed, so a relist of
/// many pods publishes once.
const DISCOVERY_SETTLE: Duration = Duration::from_millis(200);

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
    /// Status of every operator custom resource seen (etcd-operator, operator.etcd.io, druid).
    pub operators: Vec<OperatorStatus>,
    /// Each discovery source with what it found.
    pub sources: Vec<SourceReport>,
}

/// Events of one namespace: by uid, `(pod name, event)`.
type NamespaceEvents = HashMap<String, (String, KubeEvent)>;

/// The Kubernetes side of etcdboard: watch-driven caches.
pub struct Topology {
    state: RwLock<KubeState>,
    /// Watches that failed and have not delivered anything since, with when they failed: while
    /// a watch is connected its cache is current, so this is how stale the caches may be.
    failing_since: Mutex<HashMap<String, std::time::Instant>>,
    pods: Mutex<Vec<(String, DiscoverySource, Store<Pod>)>>,
    nodes: Mutex<Option<Store<Node>>>,
    pvcs: Mutex<Option<Store<PersistentVolumeClaim>>>,
    crs: Mutex<Vec<(OperatorKind, Store<DynamicObject>)>>,
    events: Mutex<VecDeque<PodEvent>>,
    client: Mutex<Option<Client>>,
    /// Pods of configured `namespace + selector` pairs: `(namespace, selector, store)`.
    explicit: Mutex<Vec<(String, String, Store<Pod>)>>,
    /// Recent Kubernetes Events about pods, per namespace (bounded).
    kube_events: Mutex<HashMap<String, NamespaceEvents>>,
    /// Namespaces whose Events are watched.
    event_namespaces: Mutex<HashSet<String>>,
    /// Health of each watch, by source, with what it keeps: [`Self::state`] is computed from it.
    source_states: Mutex<BTreeMap<String, (WatchKind, WatchHealth)>>,
    /// Every watch worked at once at some point: a watch started later (the events of a new
    /// namespace) no longer makes the state "connecting".
    ready_once: AtomicBool,
    /// The etcd clusters the discovery sources' pods make up (pure data, no kube types).
    discovered: tokio::sync::watch::Sender<Vec<DiscoveredCluster>>,
    /// Set when a discovery source's pods changed; the publisher recomputes [`Self::discovered`].
    discovery_dirty: Arc<tokio::sync::Notify>,
    /// PodDisruptionBudgets per namespace, read in the background.
    pdb_cache: Mutex<pdb::PdbCache>,
    /// The namespace each cluster's members were last joined in (so that one pod deleted does
    /// not move a cluster to another release's same-named pods).
    joined_in: Mutex<HashMap<String, String>>,
}

/// How often the API server is asked whether it answers (see [`Topology::spawn_probe`]).
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How long the API server may take to answer the probe.
const PROBE_DEADLINE: Duration = Duration::from_secs(3);
/// The probe's name among the watches' states.
const API_SERVER: &str = "API server";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Deepest a failing watch waits before trying again (kube_runtime's default backoff, like
/// client-go's, grows from 0.8 s to 30 s); used should that backoff ever end.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(30);

/// A watch that lists afresh after every error instead of resuming where it broke off (as
/// kube_runtime's watcher does): a resumed watch says nothing until something changes, so it
/// would neither show that it works again nor tell which pods went while it was down. A list
/// (the one client-go's reflector makes too) tells both.
fn relisting<K>(
    api: Api<K>,
    cfg: watcher::Config,
) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let inner = watcher::watcher(api.clone(), cfg.clone()).boxed();
    futures::stream::unfold((api, cfg, inner), |(api, cfg, mut inner)| async move {
        let item = inner.next().await?;
        if item.is_err() {
            inner = watcher::watcher(api.clone(), cfg.clone()).boxed();
        }
        Some((item, (api, cfg, inner)))
    })
}

/// The API server's own answer inside a watch error, when it gave one.
fn api_status(err: &watcher::Error) -> Option<&kube::core::Status> {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s))
        | watcher::Error::WatchError(s) => Some(s),
        _ => None,
    }
}

/// Turns a kube error into advice a platform team can act on; `None` for a `410 Gone` during a
/// watch, which only means "list again" and which the watcher does at once by itself.
///
/// Read from the API server's status, not from the error's text: the Debug-formatted text
/// escapes the quotes around the user name, and a server address may contain "403".
fn explain(err: &watcher::Error, what: &str) -> Option<WatchHealth> {
    let status = api_status(err);
    if let (watcher::Error::WatchError(_), Some(s)) = (err, status) {
        if s.code == 410 {
            return None;
        }
    }
    Some(match status {
        // By code too: an API group that is not served at all answers a bare "404 page not
        // found", which the client turns into a status without a reason.
        Some(s) if s.is_forbidden() || s.code == 403 => {
            WatchHealth::Failing(forbidden_advice(what, &s.message))
        }
        Some(s) if s.is_not_found() || s.code == 404 => WatchHealth::NotInstalled,
        _ => WatchHealth::Failing(format!(
            "cannot list {what}: {}",
            one_line(&err.to_string(), 200)
        )),
    })
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
            failing_since: Mutex::new(HashMap::new()),
            pods: Mutex::new(Vec::new()),
            nodes: Mutex::new(None),
            pvcs: Mutex::new(None),
            crs: Mutex::new(Vec::new()),
            events: Mutex::new(VecDeque::new()),
            client: Mutex::new(None),
            explicit: Mutex::new(Vec::new()),
            kube_events: Mutex::new(HashMap::new()),
            event_namespaces: Mutex::new(HashSet::new()),
            source_states: Mutex::new(BTreeMap::new()),
            ready_once: AtomicBool::new(false),
            discovered: tokio::sync::watch::channel(Vec::new()).0,
            discovery_dirty: Arc::new(tokio::sync::Notify::new()),
            pdb_cache: Mutex::new(pdb::PdbCache::default()),
            joined_in: Mutex::new(HashMap::new()),
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
        let cluster_url = config.cluster_url.to_string();
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
        topo.spawn_probe(client.clone(), cluster_url);
        topo.spawn_watchers(client);
        topo
    }

    /// Asks the API server every [`PROBE_EVERY`] whether it answers at all. A hung server (or
    /// a connection black-holed on the way) keeps every watch open and silent, so the watches
    /// alone would show the caches as current for ever; the probe makes the headline say since
    /// when it does not answer, and the cache staleness grow.
    fn spawn_probe(self: &Arc<Self>, client: Client, url: String) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut since: Option<String> = None;
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let answer = tokio::time::timeout(PROBE_DEADLINE, client.apiserver_version()).await;
                let Some(me) = weak.upgrade() else { return };
                let at = || crate::domain::cluster::utc_time(now_ms());
                let text = match answer {
                    Ok(Ok(_)) => {
                        since = None;
                        me.watch_ok(API_SERVER);
                        me.set_health(API_SERVER, WatchKind::ApiServer, WatchHealth::Watching);
                        continue;
                    }
                    // It answers, but not to etcdboard: the credentials are the problem.
                    Ok(Err(kube::Error::Api(status))) if status.code == 401 => format!(
                        "the API server {url} refuses etcdboard's credentials (401 Unauthorized) since {}: renew the kubeconfig's token, or check the service account",
                        since.get_or_insert_with(at)
                    ),
                    Ok(Err(kube::Error::Api(status))) => format!(
                        "the API server {url} answers {} {} since {}: the pods, nodes and volumes shown are as of then",
                        status.code,
                        one_line(&status.message, 200),
                        since.get_or_insert_with(at)
                    ),
                    failed => {
                        let why = match failed {
                            Ok(Err(e)) if e.to_string().contains("Connect") => {
                                "connection refused".to_string()
                            }
                            Ok(Err(e)) => one_line(&e.to_string(), 200),
                            _ => format!("no answer after {} s", PROBE_DEADLINE.as_secs()),
                        };
                        format!(
                            "the API server {url} does not answer ({why}) since {}: the pods, nodes and volumes shown are as of then",
                            since.get_or_insert_with(at)
                        )
                    }
                };
                me.watch_failed(API_SERVER);
                me.set_health(API_SERVER, WatchKind::ApiServer, WatchHealth::Failing(text));
            }
        });
    }

    fn set_state(&self, s: KubeState) {
        if let Ok(mut g) = self.state.write() {
            *g = s;
        }
    }

    fn watch_ok(&self, source: &str) {
        if let Ok(mut g) = self.failing_since.lock() {
            g.remove(source);
        }
    }

    fn watch_failed(&self, source: &str) {
        if let Ok(mut g) = self.failing_since.lock() {
            g.entry(source.to_string())
                .or_insert_with(std::time::Instant::now);
        }
    }

    /// How stale the watch-driven caches may be, in seconds: 0 while every watch is connected
    /// (a connected watch delivers every change), else the time since the oldest failing watch
    /// last worked.
    pub fn cache_staleness_secs(&self) -> f64 {
        self.failing_since
            .lock()
            .map(|g| {
                g.values()
                    .map(|t| t.elapsed().as_secs_f64())
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0)
    }

    /// The namespace `cluster`'s members were last joined in.
    pub fn joined_in(&self, cluster: &str) -> Option<String> {
        self.joined_in.lock().ok()?.get(cluster).cloned()
    }

    /// Remembers the namespace `cluster`'s members were joined in now.
    pub fn set_joined_in(&self, cluster: &str, namespace: Option<&str>) {
        if let Ok(mut g) = self.joined_in.lock() {
            match namespace {
                Some(ns) => g.insert(cluster.to_string(), ns.to_string()),
                None => g.remove(cluster),
            };
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
        self.spawn_discovery_publisher();
        for (source, ns, selector, kind) in POD_SOURCES {
            let api: Api<Pod> = match ns {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let (store, writer) = reflector::store();
            if let Ok(mut g) = self.pods.lock() {
                g.push((source.to_string(), *kind, store));
            }
            let cfg = watcher::Config::default().labels(selector);
            let stream = reflector::reflector(writer, relisting(api, cfg));
            self.drive(stream, "pods", source.to_string(), WatchKind::Pods);
        }
        let (nodes, writer) = reflector::store();
        if let Ok(mut g) = self.nodes.lock() {
            *g = Some(nodes);
        }
        let api: Api<Node> = Api::all(client.clone());
        self.drive(
            reflector::reflector(writer, relisting(api, watcher::Config::default())),
            "nodes",
            "nodes".into(),
            WatchKind::Nodes,
        );
        let (pvcs, writer) = reflector::store();
        if let Ok(mut g) = self.pvcs.lock() {
            *g = Some(pvcs);
        }
        let api: Api<PersistentVolumeClaim> = Api::all(client.clone());
        self.drive(
            reflector::reflector(writer, relisting(api, watcher::Config::default())),
            "persistentvolumeclaims",
            "persistentvolumeclaims".into(),
            WatchKind::Pvcs,
        );
        // The operators' custom resources (CRDs that usually do not exist: then they are simply
        // not a source, and the watch keeps retrying with backoff in case one is installed).
        for kind in OperatorKind::ALL {
            let (group, version, k, plural) = kind.gvk();
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, version, k),
                plural,
            );
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let writer = reflector::store::Writer::new(resource);
            if let Ok(mut g) = self.crs.lock() {
                g.push((kind, writer.as_reader()));
            }
            self.drive(
                reflector::reflector(writer, relisting(api, watcher::Config::default())),
                &format!("{plural}.{group}"),
                kind.source_name().to_string(),
                WatchKind::CustomResources,
            );
        }
    }

    /// Records how a watch stands, logs it when that is news (see [`watch_log`]: a watch refused
    /// forever logs once, not on every retry) and recomputes [`Self::state`] over all watches.
    fn set_health(&self, source: &str, kind: WatchKind, health: WatchHealth) {
        let Ok(mut g) = self.source_states.lock() else {
            return;
        };
        let before = g.insert(source.to_string(), (kind, health.clone()));
        let before = before.map_or(WatchHealth::Starting, |(_, h)| h);
        match watch_log(&before, &health) {
            WatchLog::Failing(why) => tracing::warn!(source, "Kubernetes watch failing: {why}"),
            WatchLog::Recovered => tracing::info!(source, "Kubernetes watch works again"),
            WatchLog::Quiet => {}
        }
        // Computed while the watches are locked, so two watches changing at once cannot leave
        // the older picture in place.
        let was_ready = self.ready_once.load(Ordering::Relaxed);
        let state = match headline(g.values().map(|(k, h)| (*k, h)), was_ready) {
            Headline::Connecting => KubeState::Connecting,
            Headline::Ready => {
                self.ready_once.store(true, Ordering::Relaxed);
                KubeState::Ready
            }
            Headline::Error(why) => KubeState::Error(why),
        };
        self.set_state(state);
    }

    /// The state of one source's watch (`watching`, `not installed`, `starting`, or what is wrong).
    pub fn source_state(&self, source: &str) -> String {
        self.source_states
            .lock()
            .ok()
            .and_then(|g| g.get(source).map(|(_, h)| h.text().to_string()))
            .unwrap_or_else(|| "starting".into())
    }

    /// The etcd clusters the discovery sources see right now, updated as pods come and go. Pure
    /// proposals: whether one is dialled is decided by the configuration's `discovery:` rules.
    /// Stays empty while Kubernetes is off or unusable.
    pub fn discovered(&self) -> tokio::sync::watch::Receiver<Vec<DiscoveredCluster>> {
        self.discovered.subscribe()
    }

    /// Starts the watch of a configured `namespace + selector` now, so its pods are cached by the
    /// time the first page asks (without it, the first cluster page would show no pods).
    pub fn watch_explicit(self: &Arc<Self>, target: &KubeTarget) {
        let _ = self.explicit_pods(target);
    }

    /// Recomputes the discovered clusters whenever a discovery source's pods changed (after
    /// [`DISCOVERY_SETTLE`]), publishing only real changes. Ends with the topology.
    fn spawn_discovery_publisher(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let dirty = self.discovery_dirty.clone();
        tokio::spawn(async move {
            loop {
                dirty.notified().await;
                tokio::time::sleep(DISCOVERY_SETTLE).await;
                let Some(topo) = weak.upgrade() else { return };
                let found = group(&topo.discovery_pods());
                topo.discovered.send_if_modified(|current| {
                    if *current == found {
                        false
                    } else {
                        *current = found;
                        true
                    }
                });
            }
        });
    }

    /// Every pod the discovery sources' caches hold, with its source.
    fn discovery_pods(&self) -> Vec<(DiscoverySource, PodFacts)> {
        let Ok(stores) = self.pods.lock() else {
            return Vec::new();
        };
        stores
            .iter()
            .flat_map(|(_, kind, store)| {
                store
                    .state()
                    .iter()
                    .map(|p| (*kind, pod_facts(p)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The pods of a configured `namespace + selector` (which always wins over discovery). The
    /// first call starts a watch of exactly those pods; later calls read its cache. `None` when
    /// Kubernetes is off or not connected.
    pub fn explicit_pods(self: &Arc<Self>, target: &KubeTarget) -> Option<Vec<PodInfo>> {
        let client = self.client.lock().ok()?.clone()?;
        let selector = target.selector.as_str().to_string();
        let store = {
            let mut g = self.explicit.lock().ok()?;
            match g
                .iter()
                .find(|(ns, sel, _)| *ns == target.namespace && *sel == selector)
            {
                Some((_, _, store)) => store.clone(),
                None => {
                    if g.len() >= EXPLICIT_WATCHES {
                        return None;
                    }
                    let api: Api<Pod> = Api::namespaced(client, &target.namespace);
                    let (store, writer) = reflector::store();
                    g.push((target.namespace.clone(), selector.clone(), store.clone()));
                    let cfg = watcher::Config::default().labels(&selector);
                    let stream = reflector::reflector(writer, relisting(api, cfg));
                    self.drive(
                        stream,
                        &format!("pods in namespace {}", target.namespace),
                        target.source_name(),
                        WatchKind::Pods,
                    );
                    store
                }
            }
        };
        let events = self.event_list();
        Some(
            store
                .state()
                .iter()
                .map(|p| self.with_events(pod_info(p), &events))
                .collect(),
        )
    }

    /// Every cached Kubernetes Event, as `(namespace, pod, event)` with its age filled in.
    fn event_list(&self) -> Vec<(String, String, KubeEvent)> {
        let now = (now_ms() / 1000) as i64;
        let Ok(g) = self.kube_events.lock() else {
            return Vec::new();
        };
        g.iter()
            .flat_map(|(ns, evs)| {
                evs.values().map(move |(pod, e)| {
                    let mut e = e.clone();
                    e.age = e
                        .last_seen_unix
                        .map_or_else(|| "?".into(), |t| age_text(now - t));
                    (ns.clone(), pod.clone(), e)
                })
            })
            .collect()
    }

    fn with_events(&self, mut pod: PodInfo, events: &[(String, String, KubeEvent)]) -> PodInfo {
        pod.events = events_of_pod(events, &pod.namespace, &pod.name, EVENTS_PER_POD);
        pod
    }

    /// Starts watching the Events about pods in `namespace` (once per namespace, bounded).
    fn ensure_event_watch(self: &Arc<Self>, namespace: &str) {
        if namespace.is_empty() {
            return;
        }
        {
            let Ok(mut g) = self.event_namespaces.lock() else {
                return;
            };
            if g.contains(namespace) || g.len() >= EVENT_NAMESPACES {
                return;
            }
            g.insert(namespace.to_string());
        }
        let Some(client) = self.client.lock().ok().and_then(|g| g.clone()) else {
            return;
        };
        let api: Api<KubeApiEvent> = Api::namespaced(client, namespace);
        let cfg = watcher::Config::default().fields("involvedObject.kind=Pod");
        let stream = relisting(api, cfg);
        let weak = Arc::downgrade(self);
        let ns = namespace.to_string();
        let source = format!("events in namespace {ns}");
        self.set_health(&source, WatchKind::Events, WatchHealth::Starting);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut backoff = watcher::DefaultBackoff::default();
            // A (re)list replaces the namespace's events at its end, so events deleted while the
            // watch was down do not linger.
            let mut relist: Option<NamespaceEvents> = None;
            while let Some(item) = stream.next().await {
                let Some(topo) = weak.upgrade() else { return };
                let pause = match item {
                    Ok(Event::Init) => {
                        relist = Some(HashMap::new());
                        None
                    }
                    Ok(ev) => {
                        backoff.reset();
                        topo.watch_ok(&source);
                        topo.set_health(&source, WatchKind::Events, WatchHealth::Watching);
                        match ev {
                            Event::Init => {}
                            Event::InitApply(e) => {
                                if let (Some(m), Some((uid, v))) = (relist.as_mut(), kube_event(&e))
                                {
                                    m.insert(uid, v);
                                    bound_events(m);
                                }
                            }
                            Event::InitDone => {
                                if let (Some(m), Ok(mut g)) =
                                    (relist.take(), topo.kube_events.lock())
                                {
                                    g.insert(ns.clone(), m);
                                }
                            }
                            Event::Apply(e) => {
                                if let (Some((uid, v)), Ok(mut g)) =
                                    (kube_event(&e), topo.kube_events.lock())
                                {
                                    let m = g.entry(ns.clone()).or_default();
                                    m.insert(uid, v);
                                    bound_events(m);
                                }
                            }
                            Event::Delete(e) => {
                                if let (Some((uid, _)), Ok(mut g)) =
                                    (kube_event(&e), topo.kube_events.lock())
                                {
                                    if let Some(m) = g.get_mut(&ns) {
                                        m.remove(&uid);
                                    }
                                }
                            }
                        }
                        None
                    }
                    Err(e) => {
                        topo.watch_error(&source, WatchKind::Events, &e, "events", &mut backoff)
                    }
                };
                // Not holding the topology while waiting, so it can end meanwhile.
                drop(topo);
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
            }
        });
    }

    /// Records a watch's failure and says how long to wait before the watch may try again.
    ///
    /// The wait is kept here rather than with kube_runtime's `default_backoff()`, which resets on
    /// any success, and the watcher reports `Init` as a success right before each list it is
    /// about to try: a refused watch then retried every 0.8 s forever. `backoff` is reset only
    /// when the watch has really read something.
    fn watch_error(
        &self,
        source: &str,
        kind: WatchKind,
        err: &watcher::Error,
        what: &str,
        backoff: &mut watcher::DefaultBackoff,
    ) -> Option<Duration> {
        let health = explain(err, what)?;
        match health {
            WatchHealth::Failing(_) => self.watch_failed(source),
            // "Not installed" is a current answer: nothing of it is stale.
            _ => self.watch_ok(source),
        }
        self.set_health(source, kind, health);
        Some(backoff.next().unwrap_or(MAX_RETRY_PAUSE))
    }

    /// Runs one watch stream for as long as the topology lives, recording its health and, for
    /// pods, their comings and goings.
    fn drive<K, S>(self: &Arc<Self>, stream: S, what: &str, source: String, kind: WatchKind)
    where
        K: kube::Resource + Send + 'static,
        S: futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    {
        let weak = Arc::downgrade(self);
        let what = what.to_string();
        let pods = kind == WatchKind::Pods;
        self.set_health(&source, kind, WatchHealth::Starting);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut backoff = watcher::DefaultBackoff::default();
            let mut presence = PodPresence::default();
            while let Some(item) = stream.next().await {
                let Some(topo) = weak.upgrade() else { return };
                let pause = match item {
                    Ok(ev) => {
                        // `Init` announces a list about to be tried: nothing has been read yet,
                        // so it says nothing about the watch's health.
                        if !matches!(ev, Event::Init) {
                            backoff.reset();
                            topo.watch_ok(&source);
                            topo.set_health(&source, kind, WatchHealth::Watching);
                        }
                        if pods {
                            topo.discovery_dirty.notify_one();
                            topo.pod_event(&ev, &mut presence);
                            if let Event::Apply(k) | Event::InitApply(k) = &ev {
                                if let Some(ns) = k.meta().namespace.as_deref() {
                                    topo.ensure_event_watch(ns);
                                }
                            }
                        }
                        None
                    }
                    Err(e) => topo.watch_error(&source, kind, &e, &what, &mut backoff),
                };
                // Not holding the topology while waiting, so it can end meanwhile.
                drop(topo);
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
            }
        });
    }

    /// Puts the pods that came and went on the timeline, also those found by a re-list after an
    /// outage (see [`PodPresence`]).
    fn pod_event<K: kube::Resource>(&self, ev: &Event<K>, presence: &mut PodPresence) {
        let name_of = |k: &K| {
            let m = k.meta();
            format!(
                "{}/{}",
                m.namespace.clone().unwrap_or_default(),
                m.name.clone().unwrap_or_default()
            )
        };
        let changes = match ev {
            Event::Init => {
                presence.list_started();
                Vec::new()
            }
            Event::InitApply(k) => {
                presence.listed(name_of(k));
                Vec::new()
            }
            Event::InitDone => presence.list_done(),
            Event::Apply(k) => presence.applied(name_of(k)).into_iter().collect(),
            Event::Delete(k) => vec![presence.deleted(name_of(k))],
        };
        if changes.is_empty() {
            return;
        }
        let Ok(mut g) = self.events.lock() else {
            return;
        };
        for change in changes {
            let (kind, text) = match change {
                PodChange::Created(name) => ("pod-created", format!("pod {name} created")),
                PodChange::Deleted(name) => ("pod-deleted", format!("pod {name} deleted")),
            };
            // The same pod may be watched twice (a configured selector and a discovery
            // source): say it once.
            let now = now_ms();
            if g.iter()
                .take_while(|e| now.saturating_sub(e.at_ms) < 10_000)
                .any(|e| e.text == text)
            {
                continue;
            }
            g.push_front(PodEvent {
                at_ms: now,
                kind,
                text,
            });
        }
        g.truncate(200);
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
        let events = self.event_list();
        let states = self
            .source_states
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        let state_of = |source: &str| {
            states
                .get(source)
                .map_or_else(|| "starting".into(), |(_, h)| h.text().to_string())
        };
        let mut sources = Vec::new();
        if let Ok(stores) = self.pods.lock() {
            for (source, _, store) in stores.iter() {
                let found = store.state();
                sources.push(SourceReport {
                    source: source.clone(),
                    state: state_of(source),
                    found: found.len(),
                    what: "pods",
                });
                for p in found {
                    let info = self.with_events(pod_info(&p), &events);
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
        let mut etcd_clusters = Vec::new();
        let mut operators = Vec::new();
        if let Ok(g) = self.crs.lock() {
            for (kind, store) in g.iter() {
                let objects = store.state();
                sources.push(SourceReport {
                    source: kind.source_name().to_string(),
                    state: state_of(kind.source_name()),
                    found: objects.len(),
                    what: "custom resources",
                });
                for o in &objects {
                    if *kind == OperatorKind::CoreosEtcdCluster {
                        etcd_clusters.push(cr_summary(o));
                    }
                    operators.push(operator_status(
                        *kind,
                        o.metadata.namespace.as_deref().unwrap_or_default(),
                        o.metadata.name.as_deref().unwrap_or_default(),
                        &o.data,
                    ));
                }
            }
        }
        operators.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for (source, (_, health)) in states.iter().filter(|(_, (k, _))| *k == WatchKind::Events) {
            let ns = source.trim_start_matches("events in namespace ");
            sources.push(SourceReport {
                source: source.clone(),
                state: health.text().to_string(),
                found: events.iter().filter(|(n, _, _)| n == ns).count(),
                what: "events",
            });
        }
        KubeSnapshot {
            state: self.state(),
            pods,
            nodes,
            pvcs,
            etcd_clusters,
            operators,
            sources,
        }
    }

    /// Labels of a cached pod (for PDB matching).
    pub fn pod_labels(
        &self,
        namespace: &str,
        name: &str,
    ) -> std::collections::BTreeMap<String, String> {
        let find = |store: &Store<Pod>| {
            store
                .state()
                .iter()
                .find(|p| {
                    p.metadata.namespace.as_deref() == Some(namespace)
                        && p.metadata.name.as_deref() == Some(name)
                })
                .map(|p| p.metadata.labels.clone().unwrap_or_default())
        };
        if let Ok(stores) = self.explicit.lock() {
            if let Some(l) = stores.iter().find_map(|(_, _, s)| find(s)) {
                return l;
            }
        }
        if let Ok(stores) = self.pods.lock() {
            if let Some(l) = stores.iter().find_map(|(_, _, s)| find(s)) {
                return l;
            }
        }
        Default::default()
    }
}

async fn load_config(mode: &KubeMode) -> Result<Config, String> {
    match mode {
        KubeMode::Off => Err("Kubernetes is off".into()),
        KubeMode::Auto => Config::infer().await.map_err(|e| {
            let home_config = std::env::var_os("HOME")
                .map(|h| std::path::Path::new(&h).join(".kube/config"))
                .is_some_and(|p| p.exists());
            if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none()
                && std::env::var_os("KUBECONFIG").is_none()
                && !home_config
            {
                // The usual case outside Kubernetes, not a fault: say so plainly, not with the
                // client library's chain of both failed attempts.
                "not running in a pod and no kubeconfig ($KUBECONFIG, ~/.kube/config), so where \
                 the members run is not shown (--kube PATH names a kubeconfig; --kube off hides \
                 this note)"
                    .to_string()
            } else {
                format!("no usable Kubernetes configuration: {e}")
            }
        }),
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
        empty_dir: spec.is_some_and(data_in_empty_dir),
        events: Vec::new(),
    }
}

/// The container that runs etcd: named like it (all the charts and operators name it `etcd`),
/// else running an etcd image, else the only one there is.
fn etcd_container(spec: &PodSpec) -> Option<&Container> {
    let c = &spec.containers;
    c.iter()
        .find(|c| c.name.contains("etcd"))
        .or_else(|| {
            c.iter()
                .find(|c| c.image.as_deref().is_some_and(|i| i.contains("etcd")))
        })
        .or_else(|| c.first().filter(|_| c.len() == 1))
}

/// Whether the pod keeps its etcd data in an emptyDir (see [`keeps_data_in_empty_dir`]): the
/// volume mounted at etcd's `--data-dir` / `ETCD_DATA_DIR` decides when the pod names one.
fn data_in_empty_dir(spec: &PodSpec) -> bool {
    let volumes: Vec<(String, VolumeKind)> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| {
            let kind = if v.empty_dir.is_some() {
                VolumeKind::EmptyDir
            } else if v.persistent_volume_claim.is_some() {
                VolumeKind::Claim
            } else if v.host_path.is_some() {
                VolumeKind::HostPath
            } else {
                VolumeKind::Other
            };
            (v.name.clone(), kind)
        })
        .collect();
    let etcd = etcd_container(spec);
    let mounts: Vec<(String, String)> = etcd
        .and_then(|c| c.volume_mounts.as_ref())
        .into_iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    let data_dir = etcd.and_then(|c| {
        let command_line: Vec<String> = c
            .command
            .iter()
            .chain(c.args.iter())
            .flatten()
            .cloned()
            .collect();
        let env = c.env.iter().flatten().find(|e| e.name == "ETCD_DATA_DIR");
        etcd_data_dir(&command_line, env.and_then(|e| e.value.as_deref()))
    });
    keeps_data_in_empty_dir(&volumes, &mounts, data_dir.as_deref())
}

/// What discovery needs of a pod: where it can be reached and which cluster it belongs to.
fn pod_facts(p: &Pod) -> PodFacts {
    let client_port = p.spec.as_ref().and_then(|s| {
        s.containers.iter().find_map(|c| {
            c.ports.as_ref()?.iter().find_map(|port| {
                (port.name.as_deref() == Some("client"))
                    .then(|| u16::try_from(port.container_port).ok())
                    .flatten()
            })
        })
    });
    PodFacts {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        ip: p.status.as_ref().and_then(|s| s.pod_ip.clone()),
        client_port,
        labels: p.metadata.labels.clone().unwrap_or_default(),
        owner: p.metadata.owner_references.as_ref().and_then(|owners| {
            owners
                .iter()
                .find(|o| o.controller == Some(true))
                .map(|o| (o.kind.clone(), o.name.clone()))
        }),
        phase: p
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
        terminating: p.metadata.deletion_timestamp.is_some(),
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

/// Reads a core/v1 Event about a pod: `(uid, (pod name, event))`.
fn kube_event(e: &KubeApiEvent) -> Option<(String, (String, KubeEvent))> {
    let uid = e.metadata.uid.clone().or_else(|| e.metadata.name.clone())?;
    let pod = e.involved_object.name.clone()?;
    let last_seen_unix = e
        .last_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.as_second()))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0.as_second()))
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
        });
    let count = e
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(e.count)
        .unwrap_or(1)
        .max(1) as u32;
    Some((
        uid,
        (
            pod,
            KubeEvent {
                kind: e.type_.clone().unwrap_or_else(|| "Normal".into()),
                reason: e.reason.clone().unwrap_or_default(),
                message: e.message.clone().unwrap_or_default(),
                count,
                last_seen_unix,
                age: String::new(),
            },
        ),
    ))
}

/// Drops the oldest events of a namespace beyond [`EVENTS_PER_NAMESPACE`].
fn bound_events(m: &mut NamespaceEvents) {
    while m.len() > EVENTS_PER_NAMESPACE {
        let oldest = m
            .iter()
            .min_by_key(|(_, (_, e))| e.last_seen_unix)
            .map(|(uid, _)| uid.clone());
        match oldest {
            Some(uid) => {
                m.remove(&uid);
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "etcd-2", "namespace": "prod"},
            "spec": spec,
        }))
        .expect("a pod")
    }

    #[test]
    fn a_bitnami_pod_with_a_scratch_empty_dir_and_its_data_on_a_pvc_is_not_flagged() {
        // What the Bitnami chart renders: an emptyDir for /tmp and the config, the data on a PVC.
        let p = pod(serde_json::json!({
            "containers": [{
                "name": "etcd",
                "image": "docker.io/bitnami/etcd:3.5",
                "env": [{"name": "ETCD_DATA_DIR", "value": "/bitnami/etcd/data"}],
                "volumeMounts": [
                    {"name": "empty-dir", "mountPath": "/tmp", "subPath": "tmp-dir"},
                    {"name": "empty-dir", "mountPath": "/opt/bitnami/etcd/conf", "subPath": "app-conf-dir"},
                    {"name": "data", "mountPath": "/bitnami/etcd"}
                ]
            }],
            "volumes": [
                {"name": "empty-dir", "emptyDir": {}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-etcd-2"}}
            ]
        }));
        let info = pod_info(&p);
        assert!(!info.empty_dir, "the data is on the PVC");
        assert_eq!(info.claims, vec!["data-etcd-2".to_string()]);
    }

    #[test]
    fn a_pod_whose_data_dir_is_on_an_empty_dir_is_flagged() {
        // etcd-operator's default pod: data dir on an emptyDir, given in a shell script.
        let p = pod(serde_json::json!({
            "containers": [{
                "name": "etcd",
                "command": ["/bin/sh", "-ec", "/usr/local/bin/etcd --data-dir=/var/etcd/data --name=etcd-2"],
                "volumeMounts": [{"name": "etcd-data", "mountPath": "/var/etcd"}]
            }],
            "volumes": [{"name": "etcd-data", "emptyDir": {}}]
        }));
        assert!(pod_info(&p).empty_dir);
        // A PVC elsewhere does not save data that is on the emptyDir.
        let p = pod(serde_json::json!({
            "containers": [{
                "name": "etcd",
                "command": ["etcd", "--data-dir", "/var/etcd/data"],
                "volumeMounts": [
                    {"name": "etcd-data", "mountPath": "/var/etcd"},
                    {"name": "backup", "mountPath": "/backup"}
                ]
            }],
            "volumes": [
                {"name": "etcd-data", "emptyDir": {}},
                {"name": "backup", "persistentVolumeClaim": {"claimName": "backup"}}
            ]
        }));
        assert!(pod_info(&p).empty_dir);
        // kubeadm: hostPath data; no emptyDir at all.
        let p = pod(serde_json::json!({
            "containers": [{
                "name": "etcd",
                "command": ["etcd", "--data-dir=/var/lib/etcd"],
                "volumeMounts": [{"name": "etcd-data", "mountPath": "/var/lib/etcd"}]
            }],
            "volumes": [{"name": "etcd-data", "hostPath": {"path": "/var/lib/etcd"}}]
        }));
        assert!(!pod_info(&p).empty_dir);
    }

    #[test]
    fn a_refused_watch_quotes_who_may_not_do_what_in_full() {
        let message = r#"pods is forbidden: User "system:serviceaccount:default:nobody" cannot list resource "pods" in API group "" at the cluster scope"#;
        let err = watcher::Error::InitialListFailed(kube::Error::Api(
            Status::failure(message, "Forbidden").with_code(403).boxed(),
        ));
        let Some(WatchHealth::Failing(text)) = explain(&err, "pods") else {
            panic!("a refusal is a failure");
        };
        assert_eq!(
            text,
            format!(
                "forbidden: etcdboard may not list pods ({message}) — see deploy/base/rbac.yaml"
            )
        );
    }

    #[test]
    fn a_missing_crd_is_not_installed_and_a_gone_watch_is_no_failure() {
        let err = watcher::Error::InitialListFailed(kube::Error::Api(
            Status::failure(
                "the server could not find the requested resource",
                "NotFound",
            )
            .with_code(404)
            .boxed(),
        ));
        assert_eq!(explain(&err, "etcds"), Some(WatchHealth::NotInstalled));
        // A group the server does not serve at all: a plain-text 404 the client wraps.
        let err = watcher::Error::InitialListFailed(kube::Error::Api(
            Status::failure("404 page not found", "Failed to parse error data")
                .with_code(404)
                .boxed(),
        ));
        assert_eq!(explain(&err, "etcds"), Some(WatchHealth::NotInstalled));
        let err = watcher::Error::WatchError(
            Status::failure("too old resource version: 1 (20)", "Expired")
                .with_code(410)
                .boxed(),
        );
        assert_eq!(explain(&err, "pods"), None);
    }
}
