//! Logging: `RUST_LOG`-style filtering (default `info`), text or JSON lines.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber writing to `sink` (stdout in production; tests pass a sink that
/// drops everything unless `TEST_LOG` is set). Calling it twice is harmless.
pub fn init<W>(format: LogFormat, sink: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The Kubernetes client logs every failed request of every retry (the watcher warns about
    // each refusal, the HTTP layer errs about each refused connection, without saying what was
    // asked); the topology module logs each watch's failure once, when it starts or changes, and
    // its recovery. Unless RUST_LOG names the kube crates itself.
    let asks_for_kube = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("kube_"));
    if !asks_for_kube {
        for quiet in [
            "kube_runtime::watcher=error",
            "kube_client::client::builder=off",
        ] {
            if let Ok(quiet) = quiet.parse() {
                filter = filter.add_directive(quiet);
            }
        }
    }
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(sink))
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    // Colour codes only for a person at a terminal, not in `kubectl logs`.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                    .with_writer(sink),
            )
            .try_init(),
    };
}

/// Target of the request log lines: `RUST_LOG=etcdboard::access=warn` silences them alone.
pub const ACCESS_TARGET: &str = "etcdboard::access";

/// Routes polled by probes and scrapers: logged at `debug`, so a kubelet probing every 5 s and a
/// Prometheus scraping every 15 s do not drown the lines people read.
const QUIET_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The outermost middleware: a span per request carrying method and route template (so every log
/// line of the request names it), one request log line (method, route, status, latency, user),
/// and the request metrics.
///
/// Only the route *template* is logged and counted, never the path or query: keys travel in both,
/// are attacker-controlled and would make every key a new series.
pub async fn observe(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;

    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| route_label(p.as_str(), state.base()));
    let shown = route.as_deref().unwrap_or(crate::metrics::UNMATCHED);
    let span = tracing::info_span!("request", method = %method, route = %shown);
    let resp = next.run(req).instrument(span).await;
    let took = started.elapsed();
    let status = resp.status().as_u16();
    state
        .metrics()
        .record_request(&method, route.as_deref(), status, took);
    let user = resp
        .extensions()
        .get::<crate::web::auth::RequestUser>()
        .map_or("anonymous", |u| u.0.as_str());
    // Two decimals: sub-millisecond precision is noise in a log line.
    let latency_ms = (took.as_secs_f64() * 100_000.0).round() / 100.0;
    if QUIET_ROUTES.contains(&shown) {
        tracing::debug!(target: ACCESS_TARGET, method = %method, route = %shown, status, latency_ms, user = %user, "request");
    } else {
        tracing::info!(target: ACCESS_TARGET, method = %method, route = %shown, status, latency_ms, user = %user, "request");
    }
    resp
}

/// A route template without the base path, so dashboards and alerts work for every deployment
/// (`/etcd/api/v1/clusters/{cluster}/keys` → `/api/v1/clusters/{cluster}/keys`).
fn route_label(template: &str, base: &str) -> String {
    match template.strip_prefix(base) {
        Some("") => "/".to_string(),
        Some(rest) if !base.is_empty() && rest.starts_with('/') => rest.to_string(),
        _ => template.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn route_labels_drop_the_base_path() {
        assert_eq!(
            route_label("/etcd/api/v1/clusters/{cluster}/keys", "/etcd"),
            "/api/v1/clusters/{cluster}/keys"
        );
        assert_eq!(route_label("/etcd", "/etcd"), "/");
        assert_eq!(route_label("/healthz", ""), "/healthz");
        assert_eq!(route_label("/etcdx/healthz", "/etcd"), "/etcdx/healthz");
    }
}
