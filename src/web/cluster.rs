//! The cluster page (`/clusters/{cluster}`): members, quorum, alarms, charts, timeline and
//! maintenance; its polled fragment; and the members/maintenance JSON API.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery as AxumQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::domain::cluster::{
    ago, db_size_text, headline, legend_value, member_health, observation_note, utc_time,
    Maintained, MemberView, QuorumState,
};
use crate::domain::key::RawQuery;
use crate::domain::metrics::{scale_note, spark, thresholds, Point};
use crate::error::AppError;
use crate::etcd::EtcdError;
use crate::monitor::Snapshot;
use crate::views::cluster::{Chart, ClusterPage, EventRow, MemberRow, Notice, Overview};
use crate::web::auth::Caller;
use crate::web::common::Urls;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A member's row; `leader_reached`: etcdboard reaches the leader, whom a leadership move asks.
fn member_row(m: &MemberView, quorum_held: bool, leader_reached: bool) -> MemberRow {
    let name = m.label();
    let (health, state) = member_health(m, quorum_held);
    let role = if m.unstarted {
        "not started"
    } else if m.leader {
        "leader"
    } else if m.learner {
        "learner"
    } else {
        "member"
    };
    let db = match (m.db_size, m.fragmentation()) {
        (Some(total), Some(frag)) => {
            format!(
                "{} ({:.0} % in use)",
                db_size_text(total),
                (1.0 - frag) * 100.0
            )
        }
        (Some(total), None) => db_size_text(total),
        _ => "—".into(),
    };
    let quota_share = match (m.db_size, m.quota) {
        (Some(db), Some(q)) if q > 0 => Some(db as f64 / q as f64),
        _ => None,
    };
    MemberRow {
        name,
        id: m.id.clone(),
        role,
        health,
        state,
        version: m.version.clone().unwrap_or_else(|| "—".into()),
        db,
        quota: quota_share.map_or_else(
            || "—".into(),
            |s| {
                format!(
                    "{:.0} % of {}",
                    s * 100.0,
                    db_size_text(m.quota.unwrap_or(0))
                )
            },
        ),
        quota_warn: quota_share.is_some_and(|s| s > thresholds::DB_QUOTA_SHARE),
        raft_index: m.raft_index.map_or_else(|| "—".into(), |i| i.to_string()),
        lag: m.lag.map_or_else(|| "—".into(), |l| l.to_string()),
        rtt: m
            .latency_ms
            .map_or_else(|| "—".into(), |l| format!("{l:.1} ms")),
        errors: m.errors.join("; "),
        client_urls: m.client_urls.join(", "),
        via: m.via.as_ref().map_or_else(String::new, |v| {
            format!(
                "reached through the configured endpoint {}; its client URL {} did not answer here ({})",
                v.endpoint,
                m.client_urls.first().map_or("(none)", String::as_str),
                v.advertised
            )
        }),
        peer_urls: m.peer_urls.join(", "),
        // etcd refuses maintenance calls (defragment, snapshot) on a learner.
        actionable: m.reachable && !m.learner,
        is_leader: m.leader,
        can_lead: m.reachable && quorum_held && leader_reached && !m.leader && !m.learner,
        can_promote: m.learner && m.reachable && quorum_held,
        placement: String::new(),
    }
}

/// A configured endpoint when no member list was ever read: what was asked, and that it did not
/// answer.
fn endpoint_row(endpoint: &str) -> MemberRow {
    MemberRow {
        name: endpoint.to_string(),
        id: String::new(),
        role: "endpoint",
        health: "down",
        state: "bad",
        version: "—".into(),
        db: "—".into(),
        quota: "—".into(),
        quota_warn: false,
        raft_index: "—".into(),
        lag: "—".into(),
        rtt: "—".into(),
        errors: format!(
            "no answer after {:.1} s",
            crate::etcd::members::MEMBER_DEADLINE.as_secs_f64()
        ),
        client_urls: endpoint.to_string(),
        via: String::new(),
        peer_urls: String::new(),
        actionable: false,
        is_leader: false,
        can_lead: false,
        can_promote: false,
        placement: String::new(),
    }
}

fn placement_text(p: &crate::domain::topology::Placement) -> String {
    let Some(pod) = &p.pod else {
        return "no pod found".into();
    };
    let mut parts = vec![format!(
        "pod {}/{} ({}{}",
        pod.namespace,
        pod.name,
        pod.phase,
        if pod.ready { ", ready" } else { ", not ready" }
    )];
    if pod.restarts > 0 {
        parts[0].push_str(&format!(
            ", {} restart(s){}",
            pod.restarts,
            pod.last_restart_reason
                .as_ref()
                .map(|r| format!(", last {r}"))
                .unwrap_or_default()
        ));
    }
    parts[0].push(')');
    match (&pod.node, &p.node) {
        (Some(n), Some(info)) => parts.push(format!(
            "node {n}{}{}",
            if info.ready { "" } else { " (NotReady)" },
            info.zone
                .as_ref()
                .map(|z| format!(" / zone {z}"))
                .unwrap_or_default()
        )),
        (Some(n), None) => parts.push(format!("node {n}")),
        _ => parts.push("not scheduled".into()),
    }
    if pod.empty_dir && p.volumes.is_empty() {
        parts.push("emptyDir: data is lost with the pod".into());
    }
    for v in &p.volumes {
        parts.push(format!(
            "PVC {} {} {} ({})",
            v.name,
            v.capacity.clone().unwrap_or_default(),
            v.storage_class.clone().unwrap_or_default(),
            v.phase
        ));
    }
    parts.join(" · ")
}

/// What a chart needs to label each member's latest value honestly.
struct Freshness<'a> {
    /// Member ids that are down now.
    down: &'a [&'a str],
    now_ms: u64,
    /// A value older than this is shown with its age.
    fresh_ms: u64,
    /// What a chart without data says: still collecting, or why no member's metrics were read.
    empty_note: String,
}

fn chart(
    title: &str,
    series: &[(String, String, Vec<Point>)],
    pick: fn(&Point) -> Option<f64>,
    threshold: Option<f64>,
    unit: fn(f64) -> String,
    fresh: &Freshness,
) -> Chart {
    let mut lines = Vec::new();
    let mut legend = Vec::new();
    let mut max = 0.0f64;
    // Series end at the same scrape round; one that started later is padded at the front, so
    // every line shares the time axis.
    let longest = series
        .iter()
        .map(|(_, _, pts)| pts.len())
        .max()
        .unwrap_or(0);
    let values: Vec<Vec<Option<f64>>> = series
        .iter()
        .map(|(_, _, pts)| {
            std::iter::repeat_n(None, longest - pts.len())
                .chain(pts.iter().map(pick))
                .collect()
        })
        .collect();
    for v in values.iter().flatten().flatten() {
        max = max.max(*v);
    }
    let mut threshold_line = None;
    for (i, ((id, name, pts), vals)) in series.iter().zip(&values).enumerate() {
        // Draw every member on one shared scale: pad each with the global max as threshold.
        let s = spark(
            vals,
            threshold.or(Some(max)).filter(|t| *t > 0.0),
            300.0,
            60.0,
        );
        if threshold.is_some() {
            threshold_line = s.threshold_y.map(|y| {
                (
                    y,
                    format!("alert threshold {}", unit(threshold.unwrap_or(0.0))),
                )
            });
        }
        let who = if name.is_empty() {
            id.clone()
        } else {
            name.clone()
        };
        let down = fresh.down.contains(&id.as_str());
        let last = pts
            .iter()
            .rev()
            .find_map(|p| pick(p).map(|v| (unit(v), p.at_ms)));
        let value = legend_value(last, down, fresh.now_ms, fresh.fresh_ms);
        legend.push((who, value, s.over && !down));
        lines.push((format!("s{i}"), s.points));
    }
    let scale = threshold.map_or(max, |t| max.max(t * 1.1));
    let since = series
        .iter()
        .filter_map(|(_, _, pts)| pts.first().map(|p| p.at_ms))
        .min();
    Chart {
        title: title.to_string(),
        empty: values.iter().all(|v| v.iter().all(Option::is_none)),
        empty_note: fresh.empty_note.clone(),
        legend,
        lines,
        threshold: threshold_line,
        scale_note: scale_note(scale, threshold, unit, since, fresh.now_ms),
    }
}

fn secs(v: f64) -> String {
    if v < 1.0 {
        format!("{:.1} ms", v * 1000.0)
    } else {
        format!("{v:.2} s")
    }
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn bytes(v: f64) -> String {
    db_size_text(v as i64)
}

fn share(v: f64) -> String {
    format!("{:.0} %", v * 100.0)
}

/// Turns counters into per-interval increases, so the chart shows when things happened.
fn deltas(
    series: &[(String, String, Vec<Point>)],
    pick: fn(&Point) -> Option<f64>,
) -> Vec<(String, String, Vec<Point>)> {
    series
        .iter()
        .map(|(id, name, pts)| {
            let mut prev: Option<f64> = None;
            let out = pts
                .iter()
                .map(|p| {
                    let cur = pick(p);
                    let d = match (prev, cur) {
                        (Some(a), Some(b)) => Some((b - a).max(0.0)),
                        _ => None,
                    };
                    prev = cur.or(prev);
                    Point {
                        leader_changes: d,
                        ..p.clone()
                    }
                })
                .collect();
            (id.clone(), name.clone(), out)
        })
        .collect()
}

fn overview(
    state: &AppState,
    cluster: &str,
    endpoints: &[String],
    snap: &Snapshot,
    topo: &crate::web::topology::TopologyReport,
) -> Overview {
    let now = now_ms();
    let q = &snap.quorum;
    let top = headline(
        q,
        &snap.members,
        snap.alarms.len(),
        endpoints.len(),
        &snap.clock,
        now,
    );
    let held = q.state == QuorumState::Held;
    let leader_reached = snap.members.iter().any(|m| m.leader && m.reachable);
    let down: Vec<&str> = snap
        .members
        .iter()
        .filter(|m| member_health(m, held).0 == "down")
        .map(|m| m.id.as_str())
        .collect();
    let fresh = Freshness {
        down: &down,
        now_ms: now,
        // Two missed scrapes and then some: a value this old is not the current one.
        fresh_ms: snap.scrape_every_ms.saturating_mul(2) + 5_000,
        empty_note: match snap.scrape_errors.as_slice() {
            [] => "collecting…".into(),
            [(who, why)] => format!("no metrics: {who}: {why}"),
            [(who, why), rest @ ..] => {
                format!("no metrics: {who}: {why} (and {} more)", rest.len())
            }
        },
    };
    let base = state.base();
    let series = &snap.series;
    let leader_deltas = deltas(series, |p| p.leader_changes);
    let failed_deltas = deltas(series, |p| p.proposals_failed);
    let quota_share: Vec<(String, String, Vec<Point>)> = series
        .iter()
        .map(|(id, name, pts)| {
            (
                id.clone(),
                name.clone(),
                pts.iter()
                    .map(|p| Point {
                        db_size: match (p.db_size, p.quota) {
                            (Some(d), Some(q)) if q > 0.0 => Some(d / q),
                            _ => None,
                        },
                        ..p.clone()
                    })
                    .collect(),
            )
        })
        .collect();
    Overview {
        refresh_url: format!("{base}/clusters/{cluster}/ui/overview"),
        state: top.state,
        headline: top.text,
        alarms: snap
            .alarms
            .iter()
            .map(|a| Notice {
                level: "critical",
                text: format!("{} alarm on {}", a.alarm, a.member),
                advice: a.advice.clone(),
            })
            .collect(),
        warnings: q
            .warnings
            .iter()
            .map(|w| Notice {
                level: w.level,
                text: w.text.clone(),
                advice: w.advice.clone(),
            })
            .collect(),
        members: if snap.members.is_empty() && snap.error.is_some() {
            // No member list was ever read: show what was asked.
            endpoints.iter().map(|e| endpoint_row(e)).collect()
        } else {
            snap.members
                .iter()
                .map(|m| {
                    let mut row = member_row(m, held, leader_reached);
                    if let Some(p) = topo.members.iter().find(|p| p.member.id == m.id) {
                        if topo.kubernetes == crate::topology::KubeState::Ready {
                            row.placement = placement_text(p);
                        }
                    }
                    row
                })
                .collect()
        },
        quorum: (
            q.size,
            q.healthy,
            q.majority,
            if q.unseen > 0 {
                format!("can lose ? ({} not reachable from here)", q.unseen)
            } else {
                format!("can lose {} more", q.tolerates)
            },
        ),
        observed: observation_note(
            snap.observed_ms,
            snap.took_ms,
            snap.error.is_none(),
            snap.listed_ms,
            now,
        ),
        error: snap.error.clone(),
        charts: vec![
            chart(
                "WAL fsync p99",
                series,
                |p| p.fsync_p99,
                Some(thresholds::FSYNC_P99),
                secs,
                &fresh,
            ),
            chart(
                "backend commit p99",
                series,
                |p| p.commit_p99,
                Some(thresholds::COMMIT_P99),
                secs,
                &fresh,
            ),
            chart(
                "peer round-trip p99",
                series,
                |p| p.peer_rtt_p99,
                Some(thresholds::PEER_RTT_P99),
                secs,
                &fresh,
            ),
            chart(
                "DB size / quota",
                &quota_share,
                |p| p.db_size,
                Some(thresholds::DB_QUOTA_SHARE),
                share,
                &fresh,
            ),
            chart("DB size", series, |p| p.db_size, None, bytes, &fresh),
            chart(
                "leader changes",
                &leader_deltas,
                |p| p.leader_changes,
                None,
                count,
                &fresh,
            ),
            chart(
                "proposals failed",
                &failed_deltas,
                |p| p.leader_changes,
                None,
                count,
                &fresh,
            ),
            chart(
                "proposals pending",
                series,
                |p| p.proposals_pending,
                None,
                count,
                &fresh,
            ),
        ],
        events: {
            // etcd's own changes and the pods coming and going, one timeline, newest first.
            let mut all: Vec<(u64, &'static str, String)> = snap
                .events
                .iter()
                .map(|e| (e.at_ms, e.kind, e.text.clone()))
                .chain(
                    topo.pod_events
                        .iter()
                        .map(|e| (e.at_ms, e.kind, e.text.clone())),
                )
                .collect();
            all.sort_by_key(|e| std::cmp::Reverse(e.0));
            all.into_iter()
                .map(|(at_ms, kind, text)| EventRow {
                    ago: ago(at_ms, now),
                    at: utc_time(at_ms),
                    kind,
                    text,
                })
                .collect()
        },
        maintenance_url: format!("{base}/api/v1/clusters/{cluster}/maintenance"),
        can_admin: crate::web::auth::current_caps(state, cluster).admin,
        snapshot_url: format!("{base}/api/v1/clusters/{cluster}/snapshot"),
        kube_note: match &topo.kubernetes {
            crate::topology::KubeState::Off => String::new(),
            crate::topology::KubeState::Connecting => "Kubernetes: connecting…".into(),
            crate::topology::KubeState::Ready => {
                let matched = topo.members.iter().filter(|p| p.pod.is_some()).count();
                match &topo.source {
                    Some(s) if topo.candidate_pods == 0 => format!(
                        "Kubernetes: {s} finds no pod: check the namespace and the selector against the pods' labels (kubectl get pods --show-labels)"
                    ),
                    Some(s) if matched == 0 => format!(
                        "Kubernetes: {} pod(s) found through {s}, but none is one of these members (by name, peer URL or IP): placement unknown",
                        topo.candidate_pods
                    ),
                    Some(s) => format!("Kubernetes: pods found through {s}"),
                    None => "Kubernetes: no pod matches these members (configure a namespace and selector, or check the labels)".into(),
                }
            }
            crate::topology::KubeState::Error(e) => format!("Kubernetes: {e}"),
        },
        topology_svg: crate::web::topology::svg(topo, held),
        topology_details: crate::web::topology::details_html(topo),
        spread_warnings: topo
            .spread
            .warnings
            .iter()
            .map(|w| Notice {
                level: w.level,
                text: w.text.clone(),
                advice: w.advice.clone(),
            })
            .collect(),
        risks: topo
            .spread
            .nodes
            .iter()
            .chain(topo.spread.zones.iter())
            .map(|r| r.text.clone())
            .collect(),
    }
}

/// A fresh observation when the last one is older than this (pages and polls share rounds; a page
/// never shows a state more than about 1.5 s old: this plus one bounded observation).
const FRESH_MS: u64 = 500;

async fn fresh(state: &AppState, cluster: &crate::etcd::EtcdCluster) -> Result<Snapshot, AppError> {
    let monitor = state.monitor(cluster)?;
    let snap = monitor.snapshot();
    if now_ms().saturating_sub(snap.observed_ms) <= FRESH_MS {
        return Ok(snap);
    }
    Ok(monitor.observe_now().await)
}

/// `GET /clusters/{cluster}`.
pub async fn page(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let snap = fresh(&state, c).await?;
    let topo = crate::web::topology::report(&state, c).await?;
    let view = overview(&state, c.name(), &c.endpoints(), &snap, &topo);
    let overview_html =
        askama::Template::render(&view).map_err(|e| AppError::Internal(e.to_string()))?;
    let page = ClusterPage {
        layout: crate::web::keys::layout(&state, Some(c.name()), None),
        cluster: c.name().to_string(),
        keys_href: Urls::new(state.base(), c.name()).page("tree", None, None),
        overview_html,
        css: crate::web::assets::url(state.base(), "cluster.css"),
        js: crate::web::assets::url(state.base(), "cluster.js"),
        maintenance_url: format!("{}/api/v1/clusters/{}/maintenance", state.base(), c.name()),
    };
    let body = askama::Template::render(&page).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(no_store(Html(body).into_response()))
}

/// `GET /clusters/{cluster}/ui/overview`: the polled fragment.
pub async fn overview_fragment(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let snap = fresh(&state, c).await?;
    let topo = crate::web::topology::report(&state, c).await?;
    let body = askama::Template::render(&overview(&state, c.name(), &c.endpoints(), &snap, &topo))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(no_store(Html(body).into_response()))
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /api/v1/clusters/{cluster}/members`.
pub async fn members_json(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let snap = fresh(&state, c).await?;
    let members: Vec<serde_json::Value> = snap
        .members
        .iter()
        .map(|m| {
            let mut v = serde_json::to_value(m).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("fragmentation".into(), json!(m.fragmentation()));
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "members": members,
        "quorum": snap.quorum,
        "alarms": snap.alarms,
        "events": snap.events,
        "error": snap.error,
        "observed_ms": snap.observed_ms,
        "listed_ms": snap.listed_ms,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceBody {
    member: Option<String>,
    revision: Option<i64>,
}

/// `POST /api/v1/clusters/{cluster}/maintenance/{action}` with `{"member": "<hex id>"}`
/// (defragment, move-leader) or `{"revision": N}` (compact) or `{}` (disarm).
pub async fn maintenance(
    State(state): State<AppState>,
    caller: Caller,
    Path((cluster, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let b: MaintenanceBody = if body.is_empty() {
        MaintenanceBody {
            member: None,
            revision: None,
        }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::BadRequest(format!("body is not the expected JSON: {e}")))?
    };
    let member = || {
        b.member
            .clone()
            .filter(|m| u64::from_str_radix(m, 16).is_ok())
            .ok_or_else(|| AppError::BadRequest("`member` (hex id) is required".into()))
    };
    // An action that does not exist, or lacks what it needs, is refused before anything is
    // attempted (and so not audited).
    enum Action {
        Defragment(String),
        MoveLeader(String),
        Promote(String),
        Compact(i64),
        Disarm,
    }
    let act = match action.as_str() {
        "defragment" => Action::Defragment(member()?),
        "move-leader" => Action::MoveLeader(member()?),
        "promote" => Action::Promote(member()?),
        "compact" => Action::Compact(
            b.revision
                .filter(|r| *r > 0)
                .ok_or_else(|| AppError::BadRequest("`revision` > 0 is required".into()))?,
        ),
        "disarm" => Action::Disarm,
        other => {
            return Err(AppError::NotFound(format!(
                "no maintenance action `{other}`"
            )))
        }
    };
    let monitor = state.monitor(c)?;
    let before = monitor.snapshot();
    let started = Instant::now();
    let outcome = async {
        Ok(match act {
            Action::Defragment(m) => {
                let _busy = monitor
                    .begin_maintenance(&m, crate::monitor::DEFRAGMENTING, &caller.principal.user)
                    .map_err(|why| AppError::Conflict(why, json!({})))?;
                c.defragment(&m).await?;
                Maintained::Defragmented(m)
            }
            Action::MoveLeader(m) => {
                c.move_leader(&m).await?;
                Maintained::Leader(m)
            }
            Action::Promote(m) => {
                c.promote(&m).await?;
                Maintained::Promoted(m)
            }
            Action::Compact(rev) => {
                c.compact(rev).await.map_err(|e| match e {
                    // etcd's words ("mvcc: required revision has been compacted") say less.
                    EtcdError::Compacted(_) => already_compacted(rev),
                    EtcdError::Rejected(why) if why.contains("has been compacted") => {
                        already_compacted(rev)
                    }
                    other => other.into(),
                })?;
                Maintained::Compacted(rev)
            }
            Action::Disarm => Maintained::Disarmed(c.disarm_alarms().await?),
        })
    }
    .await;
    let took = started.elapsed();
    // Failed attempts are audited too: someone tried to change the cluster.
    let result_text = match &outcome {
        Ok(_) => "ok".to_string(),
        Err(AppError::Etcd(e)) => crate::web::edit::failure_result(e),
        Err(e) => format!("error: {e}"),
    };
    caller.audit(
        &state,
        c.name(),
        &format!("maintenance:{action}"),
        b.member.as_deref().unwrap_or("").as_bytes(),
        0,
        b.revision.filter(|_| outcome.is_ok()),
        &result_text,
    );
    let done = outcome?;
    let after = monitor.observe_now().await;
    let message = done.message(&before.members, &after.members, took);
    let mut answer = match done {
        Maintained::Defragmented(id) => json!({ "defragmented": id }),
        Maintained::Leader(id) => json!({ "leader": id }),
        Maintained::Promoted(id) => json!({ "promoted": id }),
        Maintained::Compacted(rev) => json!({ "compacted": rev }),
        Maintained::Disarmed(n) => json!({ "disarmed": n }),
    };
    answer["message"] = json!(message);
    Ok(Json(answer))
}

fn already_compacted(rev: i64) -> AppError {
    AppError::BadRequest(format!(
        "revision {rev} is compacted already: history is kept only after a later revision"
    ))
}

/// The audit action of a snapshot download.
const SNAPSHOT: &str = "maintenance:snapshot";

/// Writes a snapshot download's audit line when it ends: `ok: N bytes`, `error: …`, or that the
/// download stopped (the client went away) after N bytes.
struct SnapshotAudit {
    state: AppState,
    caller: Caller,
    cluster: String,
    member: String,
    total: Option<u64>,
    sent: u64,
    result: Option<String>,
}

impl SnapshotAudit {
    /// The download ended this way (the first end reported counts).
    fn ended(&mut self, result: String) {
        self.result.get_or_insert(result);
    }
}

impl Drop for SnapshotAudit {
    fn drop(&mut self) {
        let result = self.result.take().unwrap_or_else(|| {
            format!(
                "cancelled: the client went away after {} bytes were handed to the connection",
                self.sent
            )
        });
        let (state, cluster, key) = (&self.state, &self.cluster, self.member.as_bytes());
        self.caller
            .audit(state, cluster, SNAPSHOT, key, 0, None, &result);
    }
}

/// `GET /api/v1/clusters/{cluster}/snapshot?member=<hex id>`: streams that member's snapshot.
pub async fn snapshot(
    State(state): State<AppState>,
    caller: Caller,
    method: axum::http::Method,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let member = q
        .text("member")
        .map_err(AppError::BadRequest)?
        // Checked here so that text which is not an id is a 400 and is never echoed back.
        .filter(|m| u64::from_str_radix(m, 16).is_ok())
        .ok_or_else(|| AppError::BadRequest("parameter `member` (hex id) is required".into()))?
        .to_string();
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-{member}.snapshot.db\"",
        c.name()
    ))
    .ok();
    // HEAD asks what a GET would answer: it must not make the member stream its database.
    if method == axum::http::Method::HEAD {
        let mut resp = StatusCode::OK.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Some(v) = disposition {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        return Ok(resp);
    }
    let snap = match c.snapshot(&member).await {
        Ok(snap) => snap,
        Err(e) => {
            let result = crate::web::edit::failure_result(&e);
            let (name, key) = (c.name(), member.as_bytes());
            caller.audit(&state, name, SNAPSHOT, key, 0, None, &result);
            return Err(e.into());
        }
    };
    // One audit line when the download ends (the guard travels with the stream).
    let audit = SnapshotAudit {
        state: state.clone(),
        caller,
        cluster: c.name().to_string(),
        member: member.clone(),
        total: snap.total,
        sent: 0,
        result: None,
    };
    let stream = futures::stream::unfold((snap.chunks, audit), |(mut rx, mut audit)| async move {
        match rx.recv().await {
            Some(Ok(chunk)) => {
                audit.sent += chunk.len() as u64;
                // With a Content-Length the server stops asking once that many bytes went out.
                if audit.total.is_some_and(|t| audit.sent >= t) {
                    audit.ended(format!("ok: {} bytes", audit.sent));
                }
                Some((Ok(Bytes::from(chunk)), (rx, audit)))
            }
            Some(Err(e)) => {
                audit.ended(format!("error: {e} (after {} bytes)", audit.sent));
                Some((Err(std::io::Error::other(e)), (rx, audit)))
            }
            None => {
                audit.ended(format!("ok: {} bytes", audit.sent));
                None
            }
        }
    });
    let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(total) = snap.total {
        if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
            h.insert(header::CONTENT_LENGTH, v);
        }
    }
    if let Some(v) = disposition {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
