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

/// Shared watches by (cluster, prefix).
#[derive(Default)]
pub struct LiveHub {
    topics: Mutex<HashMap<Topic, broadcast::Sender<WatchItem>>>,
}

impl LiveHub {
    /// Subscribes to changes under `prefix`, starting a watch if nobody watches it yet.
    pub fn subscribe(
        self: &Arc<Self>,
        cluster: &Arc<EtcdCluster>,
        prefix: &[u8],
    ) -> broadcast::Receiver<WatchItem> {
        let topic = (cluster.name().to_string(), prefix.to_vec());
        let Ok(mut topics) = self.topics.lock() else {
            // A poisoned lock only happens after a panic elsewhere; a private channel still works.
            return broadcast::channel(1).1;
        };
        if let Some(tx) = topics.get(&topic) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(256);
        topics.insert(topic.clone(), tx.clone());
        let mut watch = cluster.watch_prefix(prefix);
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    item = watch.recv() => match item {
                        Some(item) => { let _ = tx.send(item); }
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
        rx
    }

    /// Number of prefixes watched right now.
    pub fn watches(&self) -> usize {
        self.topics.lock().map(|t| t.len()).unwrap_or(0)
    }
}

fn to_event(item: &WatchItem) -> Vec<Event> {
    match item {
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

/// `GET /api/v1/clusters/{cluster}/watch?prefix=P`: server-sent events `change` (`{"type":
/// "put"|"delete", "key", "key_b64", "revision"}`) and `resync`.
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
    let rx = state.live().subscribe(c, &prefix);
    let stream = events(rx);
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

fn events(rx: broadcast::Receiver<WatchItem>) -> impl Stream<Item = Result<Event, Infallible>> {
    let first = Event::default()
        .event("ready")
        .data("{}")
        .retry(Duration::from_secs(3));
    let pending: Vec<Event> = vec![first];
    futures::stream::unfold((rx, pending), |(mut rx, mut pending)| async move {
        loop {
            if !pending.is_empty() {
                let ev = pending.remove(0);
                return Some((Ok(ev), (rx, pending)));
            }
            match rx.recv().await {
                Ok(item) => pending = to_event(&item),
                // A slow viewer missed events: tell it to reload rather than show a wrong state.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    pending = to_event(&WatchItem::Resync)
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
