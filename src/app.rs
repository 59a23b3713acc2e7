//! Building and running the server: shared state, the router, the listener.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::domain::listing::{list_page, FenceView, ListReq, Page};
use crate::error::AppError;
use crate::etcd::{EtcdCluster, EtcdError};
use crate::web;

/// State shared by all handlers: the configuration and one gateway per configured cluster.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    clusters: Vec<Arc<EtcdCluster>>,
    monitors: Vec<Arc<crate::monitor::Monitor>>,
    topology: Arc<crate::topology::Topology>,
    live: Arc<web::live::LiveHub>,
}

impl AppState {
    /// Creates a gateway per configured cluster (nothing is dialled yet) and the Kubernetes side.
    pub async fn new(config: Config) -> Result<AppState, EtcdError> {
        let topology =
            crate::topology::Topology::start(crate::topology::KubeMode::parse(&config.kube)).await;
        let clusters = config
            .clusters
            .iter()
            .map(|c| EtcdCluster::new(c, config.etcd_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        let metrics_interval = config.metrics_interval;
        Ok(AppState {
            inner: Arc::new(Inner {
                topology,
                config,
                monitors: clusters
                    .iter()
                    .map(|c| crate::monitor::Monitor::new(c.clone(), metrics_interval))
                    .collect(),
                clusters,
                live: Arc::new(web::live::LiveHub::default()),
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

    /// The monitor of a configured cluster.
    pub fn monitor(
        &self,
        cluster: &EtcdCluster,
    ) -> Result<&Arc<crate::monitor::Monitor>, AppError> {
        self.inner
            .monitors
            .iter()
            .find(|m| m.cluster().name() == cluster.name())
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "no cluster named `{}` is configured",
                    cluster.name()
                ))
            })
    }

    /// Every monitor (one per cluster).
    pub fn monitors(&self) -> &[Arc<crate::monitor::Monitor>] {
        &self.inner.monitors
    }

    /// The Kubernetes side (its state says when it is off or unusable).
    pub fn topology(&self) -> &Arc<crate::topology::Topology> {
        &self.inner.topology
    }

    /// Shared live-update watches.
    pub fn live(&self) -> &Arc<web::live::LiveHub> {
        &self.inner.live
    }

    /// All configured clusters, in configuration order.
    pub fn clusters(&self) -> &[Arc<EtcdCluster>] {
        &self.inner.clusters
    }

    /// A configured cluster by name; anything else is a 404 (no request can name an endpoint).
    pub fn cluster(&self, name: &str) -> Result<&Arc<EtcdCluster>, AppError> {
        self.inner
            .clusters
            .iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| AppError::NotFound(format!("no cluster named `{name}` is configured")))
    }

    /// Lists one page, bounded by the cluster's fence index once it is ready.
    pub async fn list(&self, cluster: &Arc<EtcdCluster>, req: &ListReq) -> Result<Page, AppError> {
        cluster.ensure_index();
        let index = cluster.index();
        let fences: Option<&(dyn FenceView + Sync)> = if index.is_ready() {
            Some(index.as_ref())
        } else {
            None
        };
        Ok(list_page(cluster.as_ref(), fences, req).await?)
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
        .route(
            &p("/api/v1/clusters/{cluster}/leases"),
            get(web::edit::leases),
        )
        .route(
            &p("/api/v1/clusters/{cluster}/leases/{id}"),
            axum::routing::delete(web::edit::revoke_lease),
        )
        .route(&p("/static/{*path}"), get(web::assets::serve))
        .route(&p("/healthz"), get(|| async { "ok" }));
    if !base.is_empty() {
        app = app.route(&base, get(web::keys::home));
    }
    app.merge(pages)
        .layer(axum::middleware::from_fn(web::same_origin_writes))
        .layer(DefaultBodyLimit::max(
            state.config().max_value_bytes * 2 + 64 * 1024,
        ))
        .layer(axum::middleware::from_fn(web::security_headers))
        // At most this many requests at once; the rest wait (bounded by their own deadlines).
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            MAX_CONCURRENT_REQUESTS,
        ))
        .layer(TraceLayer::new_for_http())
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

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
