//! Live updates over server-sent events. One etcd watch per (cluster, prefix), shared by every
//! viewer of that prefix and closed when the last one leaves. Heartbeats keep proxies (nginx) from
//! timing the stream out; `X-Accel-Buffering: no` keeps nginx from buffering it. On shutdown every
//! stream ends with a short `retry:` hint, so browsers reconnect at once — to another replica, since
//! this one no longer accepts connections.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery as AxumQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::Stream;
use serde_json::json;
use tokio::sync::{broadcast, watch};

use crate::app::AppState;
use crate::domain::key::{b64_std, display_text, RawQuery};
use crate::error::AppError;
use crate::etcd::watch::WatchItem;
use crate::etcd::EtcdCluster;

type Topic = (String, Vec<u8>);

/// How soon a browser reconnects after the server closed its stream for shutdown: soon, because
/// another replica is there to answer.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// Live-update streams open at once, at most (each holds a connection and a task).
pub const MAX_VIEWERS: usize = 1000;
/// Distinct prefixes watched per cluster, at most (each is one etcd watch and a task): many
/// viewers of a few prefixes share watches; thousands of prefixes would be an abuse.
pub const MAX_TOPICS_PER_CLUSTER: usize = 100;

/// One shared watch: its broadcast channel and the revision it has covered so far (where it started,
/// then the last change it broadcast), once etcd created it. A viewer whose page is older than that
/// may have missed a change and is told to resync.
struct Shared {
    tx: broadcast::Sender<WatchItem>,
    started: Arc<Mutex<Option<i64>>>,
    /// Why the watch is paused right now (see [`WatchItem::Paused`]), for viewers joining then.
    paused: Arc<Mutex<Option<String>>>,
}

/// Shared watches by (cluster, prefix), the viewers connected, and the shutdown signal of their
/// streams.
pub struct LiveHub {
    topics: Mutex<HashMap<Topic, Shared>>,
    viewers: Arc<AtomicUsize>,
    closing: watch::Sender<bool>,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub {
            topics: Mutex::new(HashMap::new()),
            viewers: Arc::new(AtomicUsize::new(0)),
            closing: watch::channel(false).0,
        }
    }
}

/// Counts a connected viewer for as long as its stream lives.
struct ViewerGuard(Arc<AtomicUsize>);

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A viewer's subscription: its channel, and the revision the shared watch has covered, if started.
pub struct Subscription {
    rx: broadcast::Receiver<WatchItem>,
    started: Option<i64>,
    paused: Option<String>,
}

impl LiveHub {
    /// Subscribes to changes under `prefix`, starting a watch if nobody watches it yet; `None`
    /// when the cluster already has [`MAX_TOPICS_PER_CLUSTER`] prefixes watched.
    pub fn subscribe(
        self: &Arc<Self>,
        cluster: &Arc<EtcdCluster>,
        prefix: &[u8],
    ) -> Option<Subscription> {
        let topic = (cluster.name().to_string(), prefix.to_vec());
        let Ok(mut topics) = self.topics.lock() else {
            // A poisoned lock only happens after a panic elsewhere; a private channel still works.
            return Some(Subscription {
                rx: broadcast::channel(1).1,
                started: None,
                paused: None,
            });
        };
        if let Some(shared) = topics.get(&topic) {
            let started = shared.started.lock().ok().and_then(|g| *g);
            let paused = shared.paused.lock().ok().and_then(|g| g.clone());
            return Some(Subscription {
                rx: shared.tx.subscribe(),
                started,
                paused,
            });
        }
        if topics.keys().filter(|(c, _)| *c == topic.0).count() >= MAX_TOPICS_PER_CLUSTER {
            return None;
        }
        let (tx, rx) = broadcast::channel(256);
        let started = Arc::new(Mutex::new(None));
        let paused = Arc::new(Mutex::new(None));
        topics.insert(
            topic.clone(),
            Shared {
                tx: tx.clone(),
                started: started.clone(),
                paused: paused.clone(),
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
                                WatchItem::Resync
                                | WatchItem::Paused(_)
                                | WatchItem::Resumed
                                | WatchItem::Denied(_) => None,
                            };
                            if let (Some(rev), Ok(mut g)) = (covered, started.lock()) {
                                *g = Some(rev);
                            }
                            if let Ok(mut g) = paused.lock() {
                                match &item {
                                    WatchItem::Paused(why) => *g = Some(why.clone()),
                                    WatchItem::Resumed | WatchItem::Started(_) => *g = None,
                                    _ => {}
                                }
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
        Some(Subscription {
            rx,
            started: None,
            paused: None,
        })
    }

    /// Number of prefixes watched right now.
    pub fn watches(&self) -> usize {
        self.topics.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// Number of live-update streams connected right now.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Ends every stream (those open and any opened from now on) with a reconnect hint, so the
    /// server's graceful shutdown is not held up by streams that would otherwise never end.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }
}

fn to_event(item: &WatchItem) -> Vec<Event> {
    match item {
        WatchItem::Started(_) => Vec::new(),
        WatchItem::Resync => vec![Event::default().event("resync").data("{}")],
        WatchItem::Paused(reason) => vec![Event::default()
            .event("paused")
            .data(json!({ "reason": reason }).to_string())],
        WatchItem::Resumed => vec![Event::default().event("resumed").data("{}")],
        WatchItem::Denied(reason) => vec![Event::default()
            .event("denied")
            .data(json!({ "reason": reason }).to_string())],
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
/// `resync`, so it never shows a state that silently skipped a change. `paused` / `resumed` when no
/// member can keep the watch for a while; `denied` (`{"reason"}`), and the stream ends, when etcd's
/// roles do not let etcdboard's etcd user watch the prefix.
pub async fn watch(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
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
    let hub = state.live();
    if hub.viewers() >= MAX_VIEWERS {
        return Err(AppError::Busy(format!(
            "{MAX_VIEWERS} live-update streams are open already; try again later"
        )));
    }
    let sub = hub.subscribe(c, &prefix).ok_or_else(|| {
        AppError::Busy(format!(
            "{MAX_TOPICS_PER_CLUSTER} prefixes of cluster `{}` are watched already; try again later",
            c.name()
        ))
    })?;
    hub.viewers.fetch_add(1, Ordering::Relaxed);
    let viewer = Viewer {
        rx: sub.rx,
        pending: VecDeque::new(),
        ready: sub.started.is_some(),
        closing: hub.closing.subscribe(),
        ended: false,
        _guard: ViewerGuard(hub.viewers.clone()),
    };
    let stream = events(viewer, sub.started, start_revision, sub.paused);
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

/// One viewer's stream state.
struct Viewer {
    rx: broadcast::Receiver<WatchItem>,
    pending: VecDeque<Event>,
    ready: bool,
    closing: watch::Receiver<bool>,
    ended: bool,
    _guard: ViewerGuard,
}

/// The last event of a stream closed for shutdown: no data (browsers dispatch nothing), only
/// a comment for people reading the stream and the reconnect delay.
fn goodbye() -> Event {
    Event::default()
        .comment("server shutting down; reconnect")
        .retry(RECONNECT_AFTER)
}

enum Next {
    Close,
    Item(Result<WatchItem, broadcast::error::RecvError>),
}

fn events(
    mut viewer: Viewer,
    started: Option<i64>,
    start_revision: Option<i64>,
    paused: Option<String>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    viewer.pending = started
        .map(|s| opening(s, start_revision))
        .unwrap_or_default()
        .into();
    if let Some(why) = paused {
        viewer.pending.extend(to_event(&WatchItem::Paused(why)));
    }
    futures::stream::unfold(viewer, move |mut v| async move {
        loop {
            if let Some(ev) = v.pending.pop_front() {
                return Some((Ok(ev), v));
            }
            if v.ended {
                return None;
            }
            let next = tokio::select! {
                // Shutdown first: a busy prefix must not keep a stream open past it.
                biased;
                _ = v.closing.wait_for(|closing| *closing) => Next::Close,
                item = v.rx.recv() => Next::Item(item),
            };
            match next {
                Next::Close => {
                    v.ended = true;
                    v.pending.push_back(goodbye());
                }
                Next::Item(Ok(WatchItem::Started(rev))) if !v.ready => {
                    v.ready = true;
                    v.pending = opening(rev, start_revision).into();
                }
                // Whether the watch can run at all matters before it is ready too.
                Next::Item(Ok(
                    item @ (WatchItem::Paused(_) | WatchItem::Resumed | WatchItem::Denied(_)),
                )) => v.pending = to_event(&item).into(),
                // Changes before this viewer's watch was ready are covered by its resync check.
                Next::Item(Ok(_)) if !v.ready => {}
                Next::Item(Ok(item)) => v.pending = to_event(&item).into(),
                // A slow viewer missed events: tell it to reload rather than show a wrong state.
                Next::Item(Err(broadcast::error::RecvError::Lagged(_))) => {
                    v.pending = to_event(&WatchItem::Resync).into()
                }
                Next::Item(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    })
}
