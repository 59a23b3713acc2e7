//! Building and running the server: shared state, the router, the listener.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::config::{ClusterConfig, Config};
use crate::domain::discovery::{decide, Configured, DiscoveredCluster, DiscoveryStatus, Verdict};
use crate::domain::listing::{ListReq, Page};
use crate::error::AppError;
use crate::etcd::EtcdCluster;
use crate::web;

/// State shared by all handlers: the configuration and one gateway per cluster (configured, or
/// discovered in Kubernetes and allowed by a `discovery:` rule).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// A discovered cluster being browsed: where Kubernetes shows it and where it is dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredInfo {
    /// Namespace.
    pub namespace: String,
    /// The operator object's or StatefulSet's name.
    pub object: String,
    /// How it was found.
    pub source: crate::domain::discovery::DiscoverySource,
    /// Its pods' names.
    pub pods: Vec<String>,
    /// Client URLs derived from its pods.
    pub endpoints: Vec<String>,
}

/// One cluster the server talks to: its gateway and monitor, and whether it was discovered.
#[derive(Clone)]
struct Entry {
    cluster: Arc<EtcdCluster>,
    monitor: Arc<crate::monitor::Monitor>,
    discovered: Option<DiscoveredInfo>,
}

/// How long a discovered cluster outlives its last proposal: a pod being replaced (no IP for a
/// moment) or a relist of the watch does not drop it and lose its timeline.
const DISCOVERY_GRACE: Duration = Duration::from_secs(5);

struct Inner {
    config: Config,
    /// Configured clusters first (in configuration order), then discovered ones (by name). A
    /// snapshot: readers clone the `Arc` and never hold the lock across an await.
    registry: RwLock<Arc<Vec<Entry>>>,
    /// What became of every discovered cluster (browsable or why not), for the topology answer.
    discovery: RwLock<Arc<Vec<DiscoveryStatus>>>,
    topology: Arc<crate::topology::Topology>,
    live: Arc<web::live::LiveHub>,
    metrics: Arc<crate::metrics::Metrics>,
    audit: crate::audit::AuditLog,
    /// Password checks are slow on purpose; at most two at once keep logins from starving pages.
    login_permits: tokio::sync::Semaphore,
    /// Failed sign-ins by user name (see [`crate::domain::login_throttle`]).
    login_throttle: std::sync::Mutex<crate::domain::login_throttle::LoginThrottle>,
}

impl AppState {
    /// Creates a gateway per configured cluster (nothing is dialled yet) and the Kubernetes side.
    pub async fn new(config: Config) -> Result<AppState, Box<dyn std::error::Error + Send + Sync>> {
        let audit = crate::audit::AuditLog::open(&config.access.audit)
            .map_err(|e| format!("--audit-log: cannot open {:?}: {e}", config.access.audit))?;
        let topology =
            crate::topology::Topology::start(crate::topology::KubeMode::parse(&config.kube)).await;
        let clusters = config
            .clusters
            .iter()
            .map(|c| EtcdCluster::new(c, config.etcd_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        let metrics_interval = config.metrics_interval;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        for c in &clusters {
            c.set_metrics(metrics.etcd().clone());
            c.watch_secret_files();
        }
        // Explicit selectors always win over discovery; watching them from the start means the
        // first cluster page already has their pods.
        for target in config.clusters.iter().filter_map(|c| c.kubernetes.as_ref()) {
            topology.watch_explicit(target);
        }
        let entries = clusters
            .into_iter()
            .map(|c| Entry {
                monitor: crate::monitor::Monitor::new(c.clone(), metrics_interval),
                cluster: c,
                discovered: None,
            })
            .collect();
        Ok(AppState {
            inner: Arc::new(Inner {
                topology,
                config,
                registry: RwLock::new(Arc::new(entries)),
                discovery: RwLock::new(Arc::new(Vec::new())),
                live: Arc::new(web::live::LiveHub::default()),
                metrics,
                audit,
                login_permits: tokio::sync::Semaphore::new(2),
                login_throttle: std::sync::Mutex::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The base path (`""` or `/prefix`).
    pub fn base(&self) -> &str {
        &self.inner.config.base_path
    }

    fn entries(&self) -> Arc<Vec<Entry>> {
        match self.inner.registry.read() {
            Ok(g) => g.clone(),
            // Only a panic while swapping the snapshot poisons the lock; the snapshot is whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The monitor of a cluster (configured or discovered).
    pub fn monitor(&self, cluster: &EtcdCluster) -> Result<Arc<crate::monitor::Monitor>, AppError> {
        self.entries()
            .iter()
            .find(|e| e.cluster.name() == cluster.name())
            .map(|e| e.monitor.clone())
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "no cluster named `{}` is configured",
                    cluster.name()
                ))
            })
    }

    /// The monitors of the configured clusters. Discovered clusters are left out on purpose:
    /// readiness and its metrics are about what the configuration promises, and a cluster that
    /// Kubernetes shows must never take the dashboard out of service.
    pub fn monitors(&self) -> Vec<Arc<crate::monitor::Monitor>> {
        self.entries()
            .iter()
            .filter(|e| e.discovered.is_none())
            .map(|e| e.monitor.clone())
            .collect()
    }

    /// Where a discovered cluster was found; `None` for configured clusters and unknown names.
    pub fn discovered(&self, name: &str) -> Option<DiscoveredInfo> {
        self.entries()
            .iter()
            .find(|e| e.cluster.name() == name)
            .and_then(|e| e.discovered.clone())
    }

    /// Every cluster Kubernetes shows and what became of it (browsable, or why not).
    pub fn discovery_status(&self) -> Arc<Vec<DiscoveryStatus>> {
        match self.inner.discovery.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The Kubernetes side (its state says when it is off or unusable).
    pub fn topology(&self) -> &Arc<crate::topology::Topology> {
        &self.inner.topology
    }

    /// Shared live-update watches.
    pub fn live(&self) -> &Arc<web::live::LiveHub> {
        &self.inner.live
    }

    /// The audit log.
    pub fn audit(&self) -> &crate::audit::AuditLog {
        &self.inner.audit
    }

    /// Permits for password checks.
    pub fn login_permits(&self) -> &tokio::sync::Semaphore {
        &self.inner.login_permits
    }

    /// Failed sign-ins by user name. Held only briefly, never across an await.
    pub fn login_throttle(
        &self,
    ) -> std::sync::MutexGuard<'_, crate::domain::login_throttle::LoginThrottle> {
        // Only a panic inside the throttle's bookkeeping poisons it; its state stays usable.
        self.inner
            .login_throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// This app's own metrics (one registry per app, so tests running several apps stay apart).
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.inner.metrics
    }

    /// Every cluster: the configured ones in configuration order, then the browsable discovered
    /// ones by name. A snapshot: discovered clusters come and go.
    pub fn clusters(&self) -> Vec<Arc<EtcdCluster>> {
        self.entries().iter().map(|e| e.cluster.clone()).collect()
    }

    /// A cluster by name, configured or discovered and allowed by a `discovery:` rule; anything
    /// else is a 404 (no request can name an endpoint).
    pub fn cluster(&self, name: &str) -> Result<Arc<EtcdCluster>, AppError> {
        self.entries()
            .iter()
            .find(|e| e.cluster.name() == name)
            .map(|e| e.cluster.clone())
            .ok_or_else(|| {
                // Only a name that could be configured is repeated back: anything else (an
                // address, markup) is the request's own text and is not echoed.
                AppError::NotFound(if crate::domain::discovery::is_cluster_name(name) {
                    format!("no cluster named `{name}` is configured")
                } else {
                    "no cluster by that name is configured (names are letters, digits, `-`, `.` and `_`)"
                        .into()
                })
            })
    }

    /// Lists one page, bounded by the cluster's fence index once it is ready, or from the
    /// cluster's page cache while its watch proves the page current.
    pub async fn list(&self, cluster: &Arc<EtcdCluster>, req: &ListReq) -> Result<Page, AppError> {
        Ok(crate::etcd::page_cache::list(cluster, req).await?)
    }
}

impl AppState {
    /// Follows Kubernetes' proposals for as long as the state lives: starts a gateway and monitor
    /// for each discovered cluster a `discovery:` rule allows, follows its pods' endpoints, and
    /// drops it [`DISCOVERY_GRACE`] after it disappeared. Configured clusters are never touched,
    /// so Kubernetes being absent, slow or forbidden cannot affect them.
    fn start_discovery(&self) {
        let mut proposals = self.inner.topology.discovered();
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut missing: HashMap<String, Instant> = HashMap::new();
            let mut first = true;
            loop {
                if !first {
                    // While a cluster waits out its grace period, look again every second.
                    let recheck = async {
                        if missing.is_empty() {
                            std::future::pending::<()>().await
                        } else {
                            tokio::time::sleep(Duration::from_secs(1)).await
                        }
                    };
                    tokio::select! {
                        changed = proposals.changed() => if changed.is_err() { return },
                        _ = recheck => {}
                    }
                }
                first = false;
                let current = proposals.borrow_and_update().clone();
                let Some(inner) = weak.upgrade() else { return };
                AppState { inner }.reconcile(&current, &mut missing, Instant::now());
            }
        });
    }

    /// Brings the registry in line with `proposals` (see [`Self::start_discovery`]).
    fn reconcile(
        &self,
        proposals: &[DiscoveredCluster],
        missing: &mut HashMap<String, Instant>,
        now: Instant,
    ) {
        let config = &self.inner.config;
        let rules: Vec<_> = config
            .discovery
            .iter()
            .map(|r| (r.matcher.clone(), r.tls.is_some()))
            .collect();
        let configured: Vec<Configured<'_>> = config
            .clusters
            .iter()
            .map(|c| Configured {
                name: &c.name,
                target: c.kubernetes.as_ref(),
            })
            .collect();
        let verdicts = decide(proposals, &rules, &configured);
        let old = self.entries();
        let mut next: Vec<Entry> = old
            .iter()
            .filter(|e| e.discovered.is_none())
            .cloned()
            .collect();
        let mut discovered: Vec<Entry> = Vec::new();
        for v in verdicts.iter().filter(|v| v.browsable()) {
            missing.remove(&v.name);
            let previous = old.iter().find(|e| e.cluster.name() == v.name);
            match self.discovered_entry(v, previous) {
                Ok(entry) => discovered.push(entry),
                Err(e) => {
                    tracing::warn!(cluster = %v.name, error = %e, "discovered cluster not usable")
                }
            }
        }
        for e in old.iter().filter(|e| e.discovered.is_some()) {
            let name = e.cluster.name();
            if discovered.iter().any(|d| d.cluster.name() == name) {
                continue;
            }
            let since = *missing.entry(name.to_string()).or_insert(now);
            if now.duration_since(since) < DISCOVERY_GRACE {
                discovered.push(e.clone());
            } else {
                missing.remove(name);
                tracing::info!(cluster = %name, "discovered cluster gone from Kubernetes; no longer browsable");
            }
        }
        discovered.sort_by(|a, b| a.cluster.name().cmp(b.cluster.name()));
        let changed = discovered.len() != old.len() - next.len()
            || discovered
                .iter()
                .zip(old.iter().filter(|e| e.discovered.is_some()))
                .any(|(a, b)| !Arc::ptr_eq(&a.cluster, &b.cluster) || a.discovered != b.discovered);
        next.extend(discovered);
        if changed {
            if let Ok(mut g) = self.inner.registry.write() {
                *g = Arc::new(next);
            }
        }
        let status: Vec<DiscoveryStatus> = verdicts.iter().map(Verdict::status).collect();
        if let Ok(mut g) = self.inner.discovery.write() {
            if **g != status {
                // Said once per change, not at every pod update.
                for v in verdicts.iter().filter(|v| !g.contains(&v.status())) {
                    if let Some(reason) = &v.reason {
                        tracing::info!(cluster = %v.name, %reason, "discovered cluster not browsed");
                    }
                }
                *g = Arc::new(status);
            }
        }
    }

    /// The entry of a browsable discovered cluster: the one it already has when nothing changed,
    /// else a new gateway (whose monitor carries on the previous one's timeline).
    fn discovered_entry(&self, v: &Verdict, previous: Option<&Entry>) -> Result<Entry, String> {
        let info = DiscoveredInfo {
            namespace: v.cluster.namespace.clone(),
            object: v.cluster.name.clone(),
            source: v.cluster.source,
            pods: v.cluster.pods.iter().map(|p| p.name.clone()).collect(),
            endpoints: v.endpoints.clone(),
        };
        if let Some(prev) = previous {
            if let Some(old) = &prev.discovered {
                if old.endpoints == info.endpoints {
                    let mut same = prev.clone();
                    same.discovered = Some(info);
                    return Ok(same);
                }
            }
        }
        let config = &self.inner.config;
        let rule = v
            .rule
            .and_then(|i| config.discovery.get(i))
            .ok_or("no discovery rule covers it")?;
        let cfg = ClusterConfig {
            name: v.name.clone(),
            endpoints: info.endpoints.clone(),
            tls: rule.tls.clone(),
            credentials: rule.credentials.clone(),
            separator: rule.separator.clone(),
            optional: true,
            kubernetes: None,
        };
        let cluster = EtcdCluster::new(&cfg, config.etcd_timeout).map_err(|e| e.to_string())?;
        cluster.set_metrics(self.inner.metrics.etcd().clone());
        cluster.watch_secret_files();
        let monitor = match previous {
            Some(prev) => crate::monitor::Monitor::succeed(cluster.clone(), &prev.monitor),
            None => crate::monitor::Monitor::new(cluster.clone(), config.metrics_interval),
        };
        monitor.start();
        tracing::info!(
            cluster = %v.name,
            namespace = %info.namespace,
            source = info.source.as_str(),
            members = info.endpoints.len(),
            "discovered cluster browsable"
        );
        Ok(Entry {
            cluster,
            monitor,
            discovered: Some(info),
        })
    }
}

/// Requests served at once; etcd and the browser both prefer a queue to a stampede.
const MAX_CONCURRENT_REQUESTS: usize = 256;

/// Largest import document accepted (100,000 keys export to about 10 MiB).
const IMPORT_BODY_LIMIT: usize = 512 * 1024 * 1024;

/// The whole HTTP surface. A plain function so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    let base = state.base().to_string();
    let p = |path: &str| format!("{base}{path}");
    let pages = Router::new()
        .route(&p("/"), get(web::keys::home))
        .route(&p("/go"), get(web::keys::go))
        .route(&p("/clusters"), get(web::keys::clusters_page))
        .route(&p("/clusters/{cluster}"), get(web::cluster::page))
        .route(
            &p("/clusters/{cluster}/ui/overview"),
            get(web::cluster::overview_fragment),
        )
        .route(&p("/clusters/{cluster}/keys"), get(web::keys::page))
        .route(&p("/clusters/{cluster}/ui/nodes"), get(web::keys::nodes))
        .route(&p("/clusters/{cluster}/ui/key"), get(web::keys::key_view))
        .route(
            &p("/clusters/{cluster}/ui/edit"),
            get(web::ui_edit::editor_fragment),
        )
        .route(
            &p("/clusters/{cluster}/edit"),
            get(web::ui_edit::editor_page),
        )
        .route(
            &p("/clusters/{cluster}/history"),
            get(web::ui_edit::history_page),
        )
        .route(
            &p("/clusters/{cluster}/leases"),
            get(web::ui_edit::leases_page),
        )
        .route(
            &p("/clusters/{cluster}/transfer"),
            get(web::ui_edit::transfer_page),
        )
        .fallback(web::keys::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::html_errors,
        ));
    let mut app = Router::new()
        .route(&p("/api/v1/clusters"), get(web::api::clusters))
        .route(&p("/api/v1/clusters/{cluster}/keys"), get(web::api::keys))
        .route(
            &p("/api/v1/clusters/{cluster}/members"),
            get(web::cluster::members_json),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/topology"),
            get(web::topology::topology_json),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/snapshot"),
            get(web::cluster::snapshot),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/maintenance/{action}"),
            axum::routing::post(web::cluster::maintenance),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/key"),
            get(web::api::key)
                .put(web::edit::put_key)
                .delete(web::edit::delete_key),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/delete-prefix"),
            get(web::edit::delete_prefix_preview).post(web::edit::delete_prefix),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/history"),
            get(web::edit::history),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/watch"),
            get(web::live::watch),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/export"),
            get(web::transfer::export),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/import"),
            axum::routing::post(web::transfer::import)
                .layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route(&p("/api/v1/clusters/{cluster}/value"), get(web::api::value))
        .route(
            &p("/api/v1/clusters/{cluster}/leases"),
            get(web::edit::leases),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/leases/{id}"),
            get(web::edit::lease).delete(web::edit::revoke_lease),
        )
        .route(
            &p("/login"),
            get(web::auth::login_page).post(web::auth::login),
        )
        .route(&p("/logout"), axum::routing::post(web::auth::logout))
        .route(&p("/static/{*path}"), get(web::assets::serve));
    if !base.is_empty() {
        app = app.route(&base, get(web::keys::home));
    }
    // Probes and the scrape stay outside the concurrency limit: requests queueing for a slot (or
    // slow clients holding them) must not make the kubelet restart a pod that serves.
    let probes = Router::new()
        .route(&p("/healthz"), get(web::health::healthz))
        .route(&p("/readyz"), get(web::health::readyz))
        .route(&p("/metrics"), get(web::health::metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::auth::access,
        ));
    app.merge(pages)
        // Who is calling and whether the route is theirs to use; handlers check keys and prefixes.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::auth::access,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::same_origin_writes,
        ))
        // A method the route does not have is a 405 whoever asks, not "may not write" or "writes
        // must be JSON" from the guards above (which would send the caller after the wrong fix).
        // Set after them, this replaces each route's default fallback they wrapped: it runs no
        // handler and answers nothing but the status and the route's `Allow`.
        .method_not_allowed_fallback(web::method_not_allowed)
        .layer(DefaultBodyLimit::max(
            state.config().max_value_bytes * 2 + 64 * 1024,
        ))
        // At most this many requests at once; the rest wait. One semaphore for the whole router:
        // axum applies a layer to each route separately, so a plain ConcurrencyLimitLayer would
        // allow this many per route.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_CONCURRENT_REQUESTS,
        ))
        // Outside the limit, so the time spent waiting for a slot counts against the deadline.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::request_deadline,
        ))
        .merge(probes)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::uniform_errors,
        ))
        // Before anything reads a cluster: a request naming a host this server is not reached as
        // (DNS rebinding) gets a 403 and nothing else.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::allowed_host,
        ))
        .layer(axum::middleware::from_fn(web::security_headers))
        // Outermost, so the request log and metrics see every response (and the user the identity
        // middleware put on it) and time the whole request, queueing included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::telemetry::observe,
        ))
        .with_state(state)
}

/// A bound, ready-to-run server.
pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl App {
    /// Binds the listener (port 0 picks a free port) and prepares the router; starts building each
    /// cluster's listing index in the background.
    pub async fn build(config: Config) -> Result<App, Box<dyn std::error::Error + Send + Sync>> {
        let listener = TcpListener::bind(config.listen).await?;
        let state = AppState::new(config).await?;
        for c in state.clusters() {
            c.ensure_index();
        }
        for m in state.monitors() {
            m.start();
        }
        state.start_discovery();
        Ok(App {
            router: router(state.clone()),
            listener,
            state,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Shared state (for tests that want to inspect it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then stops accepting, ends live-update streams with a
    /// reconnect hint and lets in-flight requests finish for at most `--shutdown-timeout`.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use std::future::IntoFuture;

        let deadline = self.state.config().shutdown_timeout;
        let live = self.state.live().clone();
        let clusters = self.state.clone();
        let (began_tx, began_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            // Background watches end now, quietly, whatever happens to the members next.
            for c in clusters.clusters() {
                c.close();
            }
            // SSE streams never end on their own; graceful shutdown would wait for them forever.
            live.close_all();
            let _ = began_tx.send(());
        };
        // The peer address is the identity of a trusted proxy and goes into audit lines.
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(self.listener, service)
            .with_graceful_shutdown(signal)
            .into_future();
        tokio::pin!(serve);
        tokio::select! {
            biased;
            done = &mut serve => return done,
            _ = began_rx => {}
        }
        tracing::info!(
            deadline_ms = deadline.as_millis() as u64,
            "shutting down: finishing in-flight requests"
        );
        match tokio::time::timeout(deadline, serve).await {
            Ok(done) => done,
            Err(_) => {
                // Dropping the server future closes the listener; requests still running are
                // cut off when the process exits.
                tracing::warn!(
                    deadline_ms = deadline.as_millis() as u64,
                    "shutdown deadline passed with requests still in flight"
                );
                Ok(())
            }
        }
    }
}
