//! What the platform asks of the process: `/healthz` (it serves), `/readyz` (every configured
//! cluster is reachable, or marked optional) and `/metrics` (OpenMetrics text).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::domain::access::Need;
use crate::topology::KubeState;
use crate::web::auth::{may_enter, presents_metrics_token, Caller};

/// An observation older than this no longer counts: the monitor observes every 3 s, so this is
/// several missed rounds, not one slow one.
const OBSERVATION_FRESH_MS: u64 = 15_000;

/// Whether one configured cluster can be reached, as the last observation of its monitor says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterReadiness {
    /// The configured name.
    pub name: String,
    /// Whether its member list answered recently.
    pub reachable: bool,
    /// Whether the configuration marks it optional (then it does not decide readiness).
    pub optional: bool,
    /// Why it is not reachable (address-free, like every error shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Every configured cluster's reachability from the monitors' latest observations. Asks etcd
/// nothing: the monitors observe every few seconds with their own deadlines, so a probe is cheap
/// and can never hang.
pub fn cluster_readiness(state: &AppState) -> Vec<ClusterReadiness> {
    let now = now_ms();
    state
        .monitors()
        .iter()
        .map(|m| {
            let name = m.cluster().name().to_string();
            let optional = state
                .config()
                .clusters
                .iter()
                .any(|c| c.name == name && c.optional);
            let snap = m.snapshot();
            let age = now.saturating_sub(snap.observed_ms);
            let reason = match snap.error {
                Some(e) => Some(e),
                None if age > OBSERVATION_FRESH_MS => {
                    Some(format!("last observed {} s ago", age / 1000))
                }
                None => None,
            };
            ClusterReadiness {
                name,
                reachable: reason.is_none(),
                optional,
                reason,
            }
        })
        .collect()
}

/// `GET /healthz`: the process serves. Nothing else is checked, so an etcd outage never gets the
/// pods restarted.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when every configured cluster is reachable or optional, else 503. The JSON
/// body names each cluster and why it is not reachable — for those who may see the clusters or
/// present the metrics token; anyone else (a probe, a stranger) gets only `{"ready": …}`.
pub async fn readyz(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Response {
    let clusters = cluster_readiness(&state);
    let needed_down = |c: &ClusterReadiness| !c.reachable && !c.optional;
    let ready = !clusters.iter().any(needed_down);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let scraper = presents_metrics_token(&state, &headers);
    let body = if scraper || may_enter(&state, &caller) {
        // The scraper sees every cluster; a user only those they may read (the others' names
        // are not theirs to learn, as on every other page).
        let shown: Vec<ClusterReadiness> = clusters
            .into_iter()
            .filter(|c| scraper || caller.require(&state, &c.name, Need::Read).is_ok())
            .collect();
        let unreachable: Vec<&str> = shown
            .iter()
            .filter(|c| needed_down(c))
            .map(|c| c.name.as_str())
            .collect();
        json!({ "ready": ready, "unreachable": unreachable, "clusters": shown })
    } else {
        json!({ "ready": ready })
    };
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /metrics`: the dashboard's own metrics in the OpenMetrics text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let now = crate::metrics::Current {
        watches_open: state.live().watches(),
        sse_clients: state.live().viewers(),
        kube_state: match state.topology().state() {
            KubeState::Off => "off",
            KubeState::Connecting => "connecting",
            KubeState::Ready => "ready",
            KubeState::Error(_) => "error",
        },
        kube_cache_staleness_secs: state.topology().cache_staleness_secs(),
        clusters_reachable: cluster_readiness(&state)
            .into_iter()
            .map(|c| (c.name, c.reachable))
            .collect(),
    };
    match state.metrics().render(&now) {
        Ok(text) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response()
        }
    }
}
