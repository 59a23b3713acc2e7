//! Live updates over server-sent events. One etcd watch per (cluster, prefix), shared by every
//! viewer of that prefix and closed when the last one leaves. Heartbeats keep proxies (nginx) from
//! timing the stream out; `X-Accel-Buffering: no` keeps nginx from buffering it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery as AxumQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::Stream;
use serde_json::json;
use tokio::sync::broadcast;

use crate::app::AppState;
use crate::domain::key::{b64_std, display_text, RawQuery};
use crate::error::AppError;
use crate::etcd::watch::WatchItem;
use crate::etcd::EtcdCluster;

type Topic = (String, Vec<u8>);

/// One shared watch: its broadcast channel and the revision it has covered so far (where it started,
/// then the last change it broadcast), once etcd created it. A viewer whose page is older than that
/// may have missed a change and is told to resync.
struct Shared {
    tx: broadcast::Sender<WatchItem>,
    started: Arc<Mutex<Option<i64>>>,
}

/// Shared watches by (cluster, prefix).
#[derive(Default)]
pub struct LiveHub {
    topics: Mutex<HashMap<Topic, Shared>>,
}

/// A viewer's subscription: its channel, and the revision the shared watch has covered, if started.
pub struct Subscription {
    rx: broadcast::Receiver<WatchItem>,
    started: Option<i64>,
}

impl LiveHub {
    /// Subscribes to changes under `prefix`, starting a watch if nobody watches it yet.
    pub fn subscribe(self: &Arc<Self>, cluster: &Arc<EtcdCluster>, prefix: &[u8]) -> Subscription {
        let topic = (cluster.name().to_string(), prefix.to_vec());
        let Ok(mut topics) = self.topics.lock() else {
            // A poisoned lock only happens after a panic elsewhere; a private channel still works.
            return Subscription {
                rx: broadcast::channel(1).1,
                started: None,
            };
        };
        if let Some(shared) = topics.get(&topic) {
            let started = shared.started.lock().ok().and_then(|g| *g);
            return Subscription {
                rx: shared.tx.subscribe(),
                started,
            };
        }
        let (tx, rx) = broadcast::channel(256);
        let started = Arc::new(Mutex::new(None));
        topics.insert(
            topic.clone(),
            Shared {
                tx: tx.clone(),
                started: started.clone(),
            },
        );
        let mut watch = cluster.watch_prefix(prefix);
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    item = watch.recv() => match item {
                        Some(item) => {
                            let covered = match &item {
                                WatchItem::Started(rev) => Some(*rev),
                                WatchItem::Events(evs) => evs.last().map(|e| e.revision),
                                WatchItem::Resync => None,
                            };
                            if let (Some(rev), Ok(mut g)) = (covered, started.lock()) {
                                *g = Some(rev);
                            }
                            let _ = tx.send(item);
                        }
                        None => break,
                    },
                    _ = tick.tick() => {}
                }
                if tx.receiver_count() == 0 {
                    break;
                }
            }
            if let Ok(mut topics) = hub.topics.lock() {
                topics.remove(&topic);
            }
            // Dropping `watch` ends the etcd watch.
        });
        Subscription { rx, started: None }
    }

    /// Number of prefixes watched right now.
    pub fn watches(&self) -> usize {
        self.topics.lock().map(|t| t.len()).unwrap_or(0)
    }
}

fn to_event(item: &WatchItem) -> Vec<Event> {
    match item {
        WatchItem::Started(_) => Vec::new(),
        WatchItem::Resync => vec![Event::default().event("resync").data("{}")],
        WatchItem::Events(events) => events
            .iter()
            .map(|e| {
                Event::default().event("change").data(
                    json!({
                        "type": if e.deleted { "delete" } else { "put" },
                        "key": display_text(&e.key),
                        "key_b64": b64_std(&e.key),
                        "revision": e.revision,
                    })
                    .to_string(),
                )
            })
            .collect(),
    }
}

/// `GET /api/v1/clusters/{cluster}/watch?prefix=P&start_revision=R`: server-sent events. `ready`
/// (`{"revision"}`) once etcd's watch exists; then `change` (`{"type": "put"|"delete", "key",
/// "key_b64", "revision"}`) for every change after it; `resync` when changes may have been missed —
/// the shared watch started after the `start_revision` the viewer rendered at, a slow viewer fell
/// behind, or etcd compacted the history a resumed watch needed. A viewer reloads what it shows on
/// `resync`, so it never shows a state that silently skipped a change.
pub async fn watch(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let prefix = q
        .bytes_or_b64("prefix")
        .map_err(AppError::BadRequest)?
        .unwrap_or_default();
    let start_revision = match q.text("start_revision").map_err(AppError::BadRequest)? {
        None => None,
        Some(t) => Some(t.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
            AppError::BadRequest("parameter `start_revision` must be a revision".into())
        })?),
    };
    let sub = state.live().subscribe(c, &prefix);
    let stream = events(sub, start_revision);
    let mut resp = Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("ping"),
        )
        .into_response();
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// The events before `ready`: a `resync` when the viewer's data is older than the watch.
fn opening(started: i64, start_revision: Option<i64>) -> Vec<Event> {
    let mut out = Vec::new();
    if start_revision.is_some_and(|r| r < started) {
        out.push(Event::default().event("resync").data("{}"));
    }
    out.push(
        Event::default()
            .event("ready")
            .data(json!({ "revision": started }).to_string())
            .retry(Duration::from_secs(3)),
    );
    out
}

fn events(
    sub: Subscription,
    start_revision: Option<i64>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let pending: Vec<Event> = sub
        .started
        .map(|s| opening(s, start_revision))
        .unwrap_or_default();
    let ready = sub.started.is_some();
    futures::stream::unfold(
        (sub.rx, pending, ready),
        move |(mut rx, mut pending, mut ready)| async move {
            loop {
                if !pending.is_empty() {
                    let ev = pending.remove(0);
                    return Some((Ok(ev), (rx, pending, ready)));
                }
                match rx.recv().await {
                    Ok(WatchItem::Started(rev)) if !ready => {
                        ready = true;
                        pending = opening(rev, start_revision);
                    }
                    // Changes before this viewer's watch was ready are covered by its resync check.
                    Ok(_) if !ready => {}
                    Ok(item) => pending = to_event(&item),
                    // A slow viewer missed events: tell it to reload rather than show a wrong state.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        pending = to_event(&WatchItem::Resync)
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}
