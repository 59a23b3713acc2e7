//! The dashboard's own metrics, served at `{base}/metrics` in the OpenMetrics text format.
//!
//! One registry per [`crate::app::AppState`], not a global: tests run several apps in one process
//! and each must see only its own figures. Label values are bounded sets chosen by the server —
//! route templates (never raw paths: keys travel in paths and queries and are attacker-controlled),
//! configured cluster names, operation names fixed at compile time — so no request can blow up the
//! number of series.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The content type of the OpenMetrics text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Route label of requests no route matched (their path is never used as a label).
pub const UNMATCHED: &str = "unmatched";

/// Latency buckets in seconds, 1 ms to 10 s: pages answer in milliseconds, and 2–3 s is where
/// etcd deadlines end a request.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EtcdLabels {
    cluster: String,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EtcdErrorLabels {
    cluster: String,
    operation: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchLabels {
    cluster: String,
    watch: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KubeStateLabels {
    state: &'static str,
}

type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// How one etcd call ended, for the error counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdOutcome {
    /// A member answered.
    Ok,
    /// No member answered within the call's budget.
    Unavailable,
    /// etcd refused the request.
    Rejected,
    /// The revision asked for was compacted.
    Compacted,
    /// The cluster's configuration is unusable (TLS material).
    Config,
}

impl EtcdOutcome {
    fn kind(self) -> Option<&'static str> {
        match self {
            EtcdOutcome::Ok => None,
            EtcdOutcome::Unavailable => Some("unavailable"),
            EtcdOutcome::Rejected => Some("rejected"),
            EtcdOutcome::Compacted => Some("compacted"),
            EtcdOutcome::Config => Some("config"),
        }
    }
}

/// The etcd call figures, a cheap clone handed to each cluster's gateway.
#[derive(Clone)]
pub struct EtcdCallMetrics {
    calls: Family<EtcdLabels, Counter>,
    errors: Family<EtcdErrorLabels, Counter>,
    latency: LatencyFamily<EtcdLabels>,
    watch_restarts: Family<WatchLabels, Counter>,
}

impl std::fmt::Debug for EtcdCallMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EtcdCallMetrics")
    }
}

impl EtcdCallMetrics {
    /// Records that `watch` of `cluster` (`index`: the listing index's; `live`: a prefix's live
    /// updates) started again, and why: `member` (its member failed, hung, or ended or refused
    /// it), `leader` (it moved off a member that became the leader), `history` (it could not go
    /// on from where it was, compacted or too much at once: the index scans again, live streams
    /// resync). A few are normal; a steady climb is a watch that cannot keep up.
    pub fn watch_restarted(&self, cluster: &str, watch: &'static str, reason: &'static str) {
        self.watch_restarts
            .get_or_create(&WatchLabels {
                cluster: cluster.to_string(),
                watch,
                reason,
            })
            .inc();
    }

    /// Records one call of `operation` against `cluster`.
    pub fn record(
        &self,
        cluster: &str,
        operation: &'static str,
        took: Duration,
        outcome: EtcdOutcome,
    ) {
        let labels = EtcdLabels {
            cluster: cluster.to_string(),
            operation,
        };
        self.calls.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some(kind) = outcome.kind() {
            self.errors
                .get_or_create(&EtcdErrorLabels {
                    cluster: labels.cluster,
                    operation,
                    kind,
                })
                .inc();
        }
    }
}

/// What the scrape-time gauges read from the rest of the app (filled by the `/metrics` handler,
/// so the figures are current without a background task).
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Shared etcd watches open (one per watched prefix).
    pub watches_open: usize,
    /// Live-update (SSE) clients connected.
    pub sse_clients: usize,
    /// Kubernetes state: `off`, `connecting`, `ready` or `error`.
    pub kube_state: &'static str,
    /// How stale the Kubernetes caches may be (0 while every watch is connected).
    pub kube_cache_staleness_secs: f64,
    /// Per configured cluster: reachable as `/readyz` judges it.
    pub clusters_reachable: Vec<(String, bool)>,
}

/// The registry and every metric of one app.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: LatencyFamily<HttpLabels>,
    etcd: EtcdCallMetrics,
    watches_open: Gauge,
    sse_clients: Gauge,
    kube_state: Family<KubeStateLabels, Gauge>,
    kube_stale: Gauge<f64, AtomicU64>,
    cluster_reachable: Family<ClusterLabels, Gauge>,
    /// When the Kubernetes caches were last seen in sync (`None`: never since start).
    started: Instant,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every etcdboard metric, all prefixed `etcdboard_`.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("etcdboard");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency: LatencyFamily<HttpLabels> =
            Family::new_with_constructor(latency_histogram);
        let etcd = EtcdCallMetrics {
            calls: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            watch_restarts: Family::default(),
        };
        let watches_open = Gauge::default();
        let sse_clients = Gauge::default();
        let kube_state = Family::<KubeStateLabels, Gauge>::default();
        let kube_stale = Gauge::<f64, AtomicU64>::default();
        let cluster_reachable = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to the response headers, by method, route template and status",
            Unit::Seconds,
            http_latency.clone(),
        );
        registry.register(
            "etcd_requests",
            "etcd calls by cluster and operation (a hedged call to several members counts once)",
            etcd.calls.clone(),
        );
        registry.register(
            "etcd_request_errors",
            "etcd calls that failed, by cluster, operation and kind (unavailable, rejected, compacted, config)",
            etcd.errors.clone(),
        );
        registry.register_with_unit(
            "etcd_request_duration",
            "etcd call latency by cluster and operation",
            Unit::Seconds,
            etcd.latency.clone(),
        );
        registry.register(
            "etcd_watch_restarts",
            "etcd watches started again, by cluster, watch (index, live) and reason (member, leader, history)",
            etcd.watch_restarts.clone(),
        );
        registry.register(
            "watches_open",
            "Shared etcd watches open for live updates (one per watched prefix)",
            watches_open.clone(),
        );
        registry.register(
            "sse_clients",
            "Live-update (server-sent events) clients connected",
            sse_clients.clone(),
        );
        registry.register(
            "cluster_reachable",
            "1 when the cluster's member list answered within the last 15 s (what /readyz uses)",
            cluster_reachable.clone(),
        );
        registry.register(
            "kubernetes_state",
            "1 for the current state of the Kubernetes caches (off, connecting, ready, error)",
            kube_state.clone(),
        );
        registry.register_with_unit(
            "kubernetes_cache_staleness",
            "Seconds since the Kubernetes caches were last seen in sync with the API server (0 while they are; since start when never)",
            Unit::Seconds,
            kube_stale.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_latency,
            etcd,
            watches_open,
            sse_clients,
            kube_state,
            kube_stale,
            cluster_reachable,
            started: Instant::now(),
        }
    }

    /// The etcd call figures, for the gateways.
    pub fn etcd(&self) -> &EtcdCallMetrics {
        &self.etcd
    }

    /// Records one served request. `route` is the matched route template, or `None` when no route
    /// matched.
    pub fn record_request(
        &self,
        method: &http::Method,
        route: Option<&str>,
        status: u16,
        took: Duration,
    ) {
        let labels = HttpLabels {
            method: method_label(method),
            route: route.unwrap_or(UNMATCHED).to_string(),
            status,
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Sets the scrape-time gauges and encodes everything as OpenMetrics text.
    pub fn render(&self, now: &Current) -> Result<String, std::fmt::Error> {
        self.watches_open.set(saturating_i64(now.watches_open));
        self.sse_clients.set(saturating_i64(now.sse_clients));
        for state in ["off", "connecting", "ready", "error"] {
            self.kube_state
                .get_or_create(&KubeStateLabels { state })
                .set(i64::from(state == now.kube_state));
        }
        let stale = match now.kube_state {
            "off" => 0.0,
            // Never connected yet: nothing is cached, stale since start.
            "connecting" => self.started.elapsed().as_secs_f64(),
            _ => now.kube_cache_staleness_secs,
        };
        self.kube_stale.set(stale);
        for (cluster, reachable) in &now.clusters_reachable {
            self.cluster_reachable
                .get_or_create(&ClusterLabels {
                    cluster: cluster.clone(),
                })
                .set(i64::from(*reachable));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The method as a label: any method outside the standard set (a client may send anything) is
/// `other`, so the label stays a small fixed set.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The name of the gateway method a closure type was written in, as an operation label:
/// `…::writes::<impl …EtcdCluster>::put_cas::{{closure}}::{{closure}}` → `put_cas`.
///
/// Taken from the type name so the one central place that runs every call can label it without
/// each of the dozens of call sites passing a name; the set is fixed at compile time, so the
/// label stays bounded. `std::any::type_name` is best-effort, hence the `other` fallback.
pub fn operation_of<F>() -> &'static str {
    let name = std::any::type_name::<F>();
    let head = name.split("::{{closure}}").next().unwrap_or(name);
    match head.rsplit("::").next() {
        Some(op)
            if !op.is_empty()
                && op.len() <= 40
                && op.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            op
        }
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_gateway_method() -> &'static str {
        let op = |x: u8| x;
        fn name_of<F: Fn(u8) -> u8>(_: &F) -> &'static str {
            operation_of::<F>()
        }
        name_of(&op)
    }

    #[test]
    fn operations_are_named_after_the_method_that_made_the_closure() {
        assert_eq!(some_gateway_method(), "some_gateway_method");
        assert_eq!(operation_of::<String>(), "String");
        assert_eq!(operation_of::<Vec<u8>>(), "other");
    }

    #[test]
    fn exposition_is_openmetrics_with_bounded_labels() {
        let m = Metrics::new();
        m.record_request(
            &http::Method::GET,
            Some("/api/v1/clusters/{cluster}/key"),
            200,
            Duration::from_millis(3),
        );
        m.record_request(
            &http::Method::from_bytes(b"BREW").unwrap(),
            None,
            404,
            Duration::from_millis(1),
        );
        m.etcd()
            .record("prod", "get", Duration::from_millis(2), EtcdOutcome::Ok);
        m.etcd().record(
            "prod",
            "put_cas",
            Duration::from_secs(3),
            EtcdOutcome::Unavailable,
        );
        m.etcd().watch_restarted("prod", "index", "member");
        let text = m
            .render(&Current {
                watches_open: 2,
                sse_clients: 3,
                kube_state: "off",
                kube_cache_staleness_secs: 7.0,
                clusters_reachable: vec![("prod".into(), true)],
            })
            .unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        for line in [
            r#"etcdboard_http_requests_total{method="GET",route="/api/v1/clusters/{cluster}/key",status="200"} 1"#,
            r#"etcdboard_http_requests_total{method="other",route="unmatched",status="404"} 1"#,
            r#"etcdboard_etcd_requests_total{cluster="prod",operation="put_cas"} 1"#,
            r#"etcdboard_etcd_request_errors_total{cluster="prod",operation="put_cas",kind="unavailable"} 1"#,
            r#"etcdboard_etcd_request_duration_seconds_count{cluster="prod",operation="get"} 1"#,
            r#"etcdboard_etcd_watch_restarts_total{cluster="prod",watch="index",reason="member"} 1"#,
            "etcdboard_watches_open 2",
            "etcdboard_sse_clients 3",
            r#"etcdboard_kubernetes_state{state="off"} 1"#,
            r#"etcdboard_cluster_reachable{cluster="prod"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            text.contains("etcdboard_kubernetes_cache_staleness_seconds 0.0"),
            "{text}"
        );
        // Connected: the caches are as stale as the oldest failing watch says.
        let text = m
            .render(&Current {
                kube_state: "ready",
                kube_cache_staleness_secs: 7.0,
                ..Current::default()
            })
            .unwrap();
        assert!(
            text.contains("etcdboard_kubernetes_cache_staleness_seconds 7.0"),
            "{text}"
        );
    }
}
