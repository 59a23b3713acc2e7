//! Watching a prefix for live updates. The watch task resumes on another member after a failure
//! from the last revision it delivered, so no change is lost, and ends when nobody listens.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tokio::sync::mpsc;

use crate::domain::key::prefix_end;
use crate::etcd::gateway::{says_denied, EtcdCluster};
use crate::etcd::member_watch::{MemberWatch, WatchNext};

/// One change under a watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// The key.
    pub key: Vec<u8>,
    /// True for a delete.
    pub deleted: bool,
    /// Revision of the change.
    pub revision: i64,
}

/// What a watch delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchItem {
    /// The watch exists in etcd and reports every change after this revision.
    Started(i64),
    /// Changes, in revision order.
    Events(Vec<KeyEvent>),
    /// History needed to resume was compacted: viewers should reload.
    Resync,
    /// No member could keep the watch (every member was tried once and failed, e.g. no leader
    /// without quorum); it is retried. Sent once per outage, with the last member's reason.
    Paused(String),
    /// The watch runs again after [`WatchItem::Paused`], from where it stopped (nothing missed).
    Resumed,
    /// etcd's roles do not let etcdboard's etcd user watch this prefix: the watch ends, since
    /// trying again would be refused the same way (a new viewer tries once more).
    Denied(String),
}

/// A watch that answers nothing (not even a progress request) for this long is moved to the
/// next member: its member is hung or cut off.
const SILENT_FOR: Duration = Duration::from_secs(3);
/// How long a member may take to start the watch.
const OPEN_WITHIN: Duration = Duration::from_secs(3);

impl EtcdCluster {
    /// Watches every key under `prefix` from now on; the receiver yields batches of changes. Dropping
    /// the receiver ends the watch.
    pub fn watch_prefix(self: &Arc<Self>, prefix: &[u8]) -> mpsc::Receiver<WatchItem> {
        let (tx, rx) = mpsc::channel(64);
        let cluster = Arc::clone(self);
        let prefix = prefix.to_vec();
        tokio::spawn(async move {
            let start = if prefix.is_empty() {
                vec![0]
            } else {
                prefix.clone()
            };
            let end = prefix_end(&prefix).unwrap_or_else(|| vec![0]);
            let mut next_rev: Option<i64> = None;
            let mut member = None;
            let members = cluster.endpoints().len().max(1);
            // Attempts that failed since the watch last ran, and whether viewers were told.
            let (mut failed, mut paused) = (0usize, false);
            let mut reason = String::from("no member answered");
            loop {
                if tx.is_closed() {
                    return;
                }
                if failed >= members && !paused {
                    paused = true;
                    if tx.send(WatchItem::Paused(reason.clone())).await.is_err() {
                        return;
                    }
                }
                let mut opts = WatchOptions::new().with_range(end.clone());
                if let Some(r) = next_rev {
                    opts = opts.with_start_revision(r);
                }
                let timing = (Duration::from_secs(1), SILENT_FOR);
                let on = cluster.watch_member(member).await;
                member = Some(on);
                let opened =
                    MemberWatch::open(&cluster, on, start.clone(), opts, OPEN_WITHIN, timing).await;
                let mut watch = match opened {
                    Ok(w) => w,
                    Err(why) if says_denied(&why) => {
                        let _ = tx.send(WatchItem::Denied(why)).await;
                        return;
                    }
                    Err(why) => {
                        cluster.watch_restarted("live", "member");
                        reason = why;
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        continue;
                    }
                };
                // Counted as a failure until etcd confirms the watch below.
                failed += 1;
                loop {
                    let next = tokio::select! {
                        _ = tx.closed() => return,
                        next = watch.next() => next,
                    };
                    match next {
                        // Off the leader (see `EtcdCluster::watch_member`): on to the next member,
                        // from the next revision, unseen by viewers.
                        WatchNext::Tick if next_rev.is_some() && cluster.leads(on) => {
                            cluster.watch_restarted("live", "leader");
                            break;
                        }
                        WatchNext::Tick => {}
                        WatchNext::Silent(why) | WatchNext::Ended(why) => {
                            cluster.watch_restarted("live", "member");
                            reason = why;
                            break;
                        }
                        // The changes missed cannot be had in one message: as after a
                        // compaction, viewers reload and the watch goes on from now.
                        WatchNext::TooLarge(_) => {
                            cluster.watch_restarted("live", "history");
                            next_rev = None;
                            if tx.send(WatchItem::Resync).await.is_err() {
                                return;
                            }
                            break;
                        }
                        WatchNext::Response(resp) => {
                            if resp.compact_revision() > 0 {
                                cluster.watch_restarted("live", "history");
                                next_rev = None;
                                if tx.send(WatchItem::Resync).await.is_err() {
                                    return;
                                }
                                break;
                            }
                            if resp.canceled() {
                                let why = format!("watch cancelled: {}", resp.cancel_reason());
                                if says_denied(&why) {
                                    let _ = tx.send(WatchItem::Denied(why)).await;
                                    return;
                                }
                                cluster.watch_restarted("live", "member");
                                reason = why;
                                break;
                            }
                            if resp.created() {
                                failed = 0;
                                if std::mem::take(&mut paused)
                                    && next_rev.is_some()
                                    && tx.send(WatchItem::Resumed).await.is_err()
                                {
                                    return;
                                }
                            }
                            if resp.created() && next_rev.is_none() {
                                let at = resp.header().map_or(0, |h| h.revision());
                                next_rev = Some(at + 1);
                                if tx.send(WatchItem::Started(at)).await.is_err() {
                                    return;
                                }
                            }
                            let events: Vec<KeyEvent> = resp
                                .events()
                                .iter()
                                .filter_map(|ev| {
                                    let kv = ev.kv()?;
                                    Some(KeyEvent {
                                        key: kv.key().to_vec(),
                                        deleted: ev.event_type() == EventType::Delete,
                                        revision: kv.mod_revision(),
                                    })
                                })
                                .collect();
                            if let Some(last) = events.last() {
                                next_rev = Some(last.revision + 1);
                            }
                            if !events.is_empty()
                                && tx.send(WatchItem::Events(events)).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        rx
    }
}
