//! Builds and maintains a cluster's fence index (see [`crate::domain::fences`]) in the background.
//!
//! The build scans the key space once, keys only, in bounded pages pinned to one revision (the
//! scan itself uses the index-less listing, so it never sends an unbounded range). A watch from the
//! next revision then keeps bucket counts current and splits buckets that grow too large. On any
//! error (member gone, watch cancelled, compaction) the index is rebuilt after a pause; listings
//! stay correct meanwhile, only their cost grows.
//!
//! The same watch feeds the cluster's page cache ([`crate::etcd::page_cache`]): it enables it from
//! the revision the watch starts at, reports every key created or deleted, asks etcd for a
//! progress report every [`PROGRESS_EVERY`] so the cache knows the watch is current, and disables
//! it whenever the watch ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tracing::{debug, info, warn};

use crate::domain::deletions::RecentDeletions;
use crate::domain::fences::Fences;
use crate::domain::listing::{list_page, FenceView, ListReq, Mode, RangeReq};
use crate::domain::page_cache::Change;
use crate::etcd::gateway::EtcdCluster;
use crate::etcd::member_watch::{MemberWatch, WatchNext};
use crate::etcd::page_cache::{PageCacheState, PROGRESS_EVERY};

/// Keys per bucket aimed for: a flat page costs at most about a page plus two buckets.
pub const FENCE_TARGET: u64 = 256;
/// Keys per page of the build scan.
const SCAN_PAGE: usize = 4096;
/// How long one read of the build scan may take: its first probe of a large key space may count
/// millions of keys once, which takes longer than a page is allowed to.
const SCAN_READ_BUDGET: Duration = Duration::from_secs(20);
/// How long to wait before building the index again after etcd's roles refused it.
const DENIED_RETRY: Duration = Duration::from_secs(300);

/// The gateway with a patient read budget, for the build scan.
struct Patient<'a>(&'a EtcdCluster);

impl crate::domain::listing::RangeSource for Patient<'_> {
    type Error = crate::etcd::EtcdError;
    async fn ranges(
        &self,
        reqs: Vec<crate::domain::listing::RangeReq>,
        revision: Option<i64>,
    ) -> Result<crate::domain::listing::Batch, Self::Error> {
        self.0.ranges_within(reqs, revision, SCAN_READ_BUDGET).await
    }
}

/// Where the index stands, for the UI and `/api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexStatus {
    /// Not started (no listing asked yet).
    Idle,
    /// Scanning; this many keys seen so far.
    Building(u64),
    /// Ready: about this many keys, current as of the watch.
    Ready(u64),
    /// The last build failed; it is retried.
    Failed(String),
}

/// A cluster's fence index, shared by all requests; read briefly under a lock, never across awaits.
#[derive(Debug)]
pub struct FenceIndex {
    fences: RwLock<Option<Fences>>,
    status: RwLock<IndexStatus>,
    scanned: AtomicU64,
    started: AtomicBool,
    /// True while a task re-scans oversized buckets (at most one per cluster).
    splitting: AtomicBool,
    pages: PageCacheState,
    /// Keys this watch saw deleted, for their history.
    deletions: std::sync::Mutex<RecentDeletions>,
}

impl Default for FenceIndex {
    fn default() -> Self {
        FenceIndex {
            fences: RwLock::new(None),
            status: RwLock::new(IndexStatus::Idle),
            scanned: AtomicU64::new(0),
            started: AtomicBool::new(false),
            splitting: AtomicBool::new(false),
            pages: PageCacheState::default(),
            deletions: std::sync::Mutex::new(RecentDeletions::default()),
        }
    }
}

impl FenceIndex {
    /// The cluster's page cache, kept honest by this index's watch.
    pub fn pages(&self) -> &PageCacheState {
        &self.pages
    }

    /// The revision `key` was last deleted at, when this index's watch saw it (since etcdboard
    /// started, among the most recent deletions).
    pub fn deleted_at(&self, key: &[u8]) -> Option<i64> {
        self.deletions.lock().ok()?.deleted_at(key)
    }

    /// Where the life of `key` before the one created at `revision` ended (its deletion), when
    /// this index's watch saw it.
    pub fn deleted_before(&self, key: &[u8], revision: i64) -> Option<i64> {
        self.deletions.lock().ok()?.deleted_before(key, revision)
    }

    /// Notes a deletion made through etcdboard at once (its watch event may come a moment later).
    pub fn note_deleted(&self, key: &[u8], revision: i64) {
        if let Ok(mut d) = self.deletions.lock() {
            d.deleted(key, revision);
        }
    }

    /// True once the index can bound reads.
    pub fn is_ready(&self) -> bool {
        self.fences.read().map(|f| f.is_some()).unwrap_or(false)
    }

    /// Current status.
    pub fn status(&self) -> IndexStatus {
        let status = self
            .status
            .read()
            .map(|s| s.clone())
            .unwrap_or(IndexStatus::Idle);
        match status {
            IndexStatus::Building(_) => IndexStatus::Building(self.scanned.load(Ordering::Relaxed)),
            IndexStatus::Ready(_) => IndexStatus::Ready(
                self.fences
                    .read()
                    .ok()
                    .and_then(|f| f.as_ref().map(Fences::total))
                    .unwrap_or(0),
            ),
            other => other,
        }
    }

    fn set_status(&self, s: IndexStatus) {
        if let Ok(mut g) = self.status.write() {
            *g = s;
        }
    }

    /// Spawns the build-and-watch task once per cluster; it ends when the cluster is dropped.
    pub(crate) fn ensure_started(cluster: &Arc<EtcdCluster>) {
        let index = cluster.index();
        if index.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(cluster);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            let mut told_denied = false;
            loop {
                let Some(cluster) = weak.upgrade() else {
                    return;
                };
                let result = tokio::select! {
                    r = build_and_watch(&cluster, &weak) => r,
                    _ = cluster.closed() => Ok(()),
                };
                // Without the watch nothing proves a cached page current.
                cluster.index().pages.disable();
                match result {
                    Ok(()) => return,
                    Err(_) if cluster.is_closed() => return,
                    Err(reason) => {
                        // etcd's roles keep the etcd user from reading every key: that will not
                        // change by itself soon, so say it once and ask again only rarely (the
                        // pages work without the index).
                        let denied = crate::etcd::gateway::says_denied(&reason);
                        if denied && told_denied {
                            debug!(cluster = cluster.name(), %reason, "fence index still refused");
                        } else if denied {
                            warn!(cluster = cluster.name(), %reason, "no fence index: the etcd user may not read every key; pages list without it, and it is tried again every 5 minutes");
                        } else {
                            warn!(cluster = cluster.name(), %reason, "fence index lost; rebuilding");
                        }
                        told_denied |= denied;
                        if !cluster.index().is_ready() {
                            cluster.index().set_status(IndexStatus::Failed(reason));
                        }
                        drop(cluster);
                        tokio::time::sleep(if denied { DENIED_RETRY } else { backoff }).await;
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        });
    }
}

/// The listing reads fences through this view; the lock is held only while choosing boundaries.
impl FenceView for FenceIndex {
    fn buckets(&self, from: &[u8], end: Option<&[u8]>, max: usize) -> Vec<(Option<Vec<u8>>, u64)> {
        match self.fences.read() {
            Ok(guard) => match guard.as_ref() {
                Some(f) => f.buckets(from, end, max),
                None => Vec::new(),
            },
            Err(_) => Vec::new(),
        }
    }
}

async fn build_and_watch(
    cluster: &Arc<EtcdCluster>,
    weak: &Weak<EtcdCluster>,
) -> Result<(), String> {
    let index = cluster.index().clone();
    index.scanned.store(0, Ordering::Relaxed);
    if !index.is_ready() {
        index.set_status(IndexStatus::Building(0));
    }
    let started = std::time::Instant::now();
    let mut fences = Fences::new(FENCE_TARGET);
    let mut req = ListReq::first(Vec::new(), Mode::Flat, SCAN_PAGE);
    let revision = loop {
        let page = list_page(&Patient(cluster.as_ref()), None, &req)
            .await
            .map_err(|e| e.to_string())?;
        if page.stale {
            return Err("no quorum; the index is built from linearizable reads only".into());
        }
        for item in &page.items {
            fences.push_scanned(&item.key);
        }
        index
            .scanned
            .fetch_add(page.items.len() as u64, Ordering::Relaxed);
        match page.next {
            Some(c) => {
                req.start = c.start;
                req.revision = Some(c.revision);
                req.hint = Some(c.hint);
            }
            None => break page.revision,
        }
    };
    info!(
        cluster = cluster.name(),
        keys = fences.total(),
        buckets = fences.len(),
        ms = started.elapsed().as_millis() as u64,
        "fence index built"
    );
    if let Ok(mut g) = index.fences.write() {
        *g = Some(fences);
    }
    index.set_status(IndexStatus::Ready(0));

    // Keep it current: one watch at a time. When its stream ends, fails or goes silent (a hung
    // member answers nothing, not even progress requests), the watch resumes on the next member
    // from the revision after the last change applied, so no change is missed and the index need
    // not be rebuilt.
    index.pages.enable(revision);
    let members = cluster.endpoints().len().max(1);
    let mut next_rev = revision + 1;
    let mut failures = 0usize;
    let mut last = None;
    loop {
        let member = cluster.watch_member(last).await;
        last = Some(member);
        match watch_from(cluster, weak, &index, member, &mut next_rev).await {
            WatchEnd::Gone => return Ok(()),
            WatchEnd::Rebuild(reason) => {
                cluster.watch_restarted("index", "history");
                return Err(reason);
            }
            WatchEnd::Moved => {
                cluster.watch_restarted("index", "leader");
                failures = 0;
                info!(
                    cluster = cluster.name(),
                    member, next_rev, "index watch moves off the new leader"
                );
            }
            WatchEnd::Resume { reason, delivered } => {
                cluster.watch_restarted("index", "member");
                failures = if delivered { 1 } else { failures + 1 };
                if failures > 3 * members {
                    return Err(reason);
                }
                warn!(cluster = cluster.name(), member, %reason, next_rev, "index watch resumes on the next member");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A watch that answers nothing for this long is taken for stuck: its member is hung, or cut off.
const WATCH_SILENT_FOR: Duration = Duration::from_secs(3);
/// How long a member may take to start the watch.
const WATCH_OPEN_WITHIN: Duration = Duration::from_secs(5);

/// How one index watch ended.
enum WatchEnd {
    /// Nobody can list the cluster any more.
    Gone,
    /// Go on from `next_rev` on another member (`delivered`: this one applied something first).
    Resume { reason: String, delivered: bool },
    /// Its member became the leader: go on from `next_rev` on the next member, at once.
    Moved,
    /// The history needed to go on was compacted: scan again.
    Rebuild(String),
}

/// Watches every key from `*next_rev` on `member`, applying each change to the index and its
/// page cache and advancing `*next_rev` past it.
async fn watch_from(
    cluster: &Arc<EtcdCluster>,
    weak: &Weak<EtcdCluster>,
    index: &Arc<FenceIndex>,
    member: usize,
    next_rev: &mut i64,
) -> WatchEnd {
    let resume = |reason: String, delivered: bool| WatchEnd::Resume { reason, delivered };
    let opts = WatchOptions::new()
        .with_range(vec![0])
        .with_start_revision(*next_rev)
        .with_progress_notify();
    let timing = (PROGRESS_EVERY, WATCH_SILENT_FOR);
    let opened = MemberWatch::open(cluster, member, vec![0], opts, WATCH_OPEN_WITHIN, timing).await;
    let mut watch = match opened {
        Ok(w) => w,
        Err(reason) => return resume(reason, false),
    };
    let mut delivered = false;
    loop {
        let resp = match watch.next().await {
            WatchNext::Response(resp) => resp,
            WatchNext::Tick => {
                index.pages.check_silence(std::time::Instant::now());
                if cluster.leads(member) {
                    return WatchEnd::Moved;
                }
                continue;
            }
            WatchNext::Silent(reason) => {
                index.pages.check_silence(std::time::Instant::now());
                return resume(reason, delivered);
            }
            WatchNext::Ended(reason) => return resume(reason, delivered),
            // Resuming would be sent the same message again: start over from now instead.
            WatchNext::TooLarge(reason) => {
                return WatchEnd::Rebuild(format!("the watch could not catch up: {reason}"))
            }
        };
        if resp.compact_revision() > 0 {
            return WatchEnd::Rebuild(format!(
                "the revisions the watch needed were compacted (at {})",
                resp.compact_revision()
            ));
        }
        if resp.canceled() {
            return resume(
                format!("watch cancelled: {}", resp.cancel_reason()),
                delivered,
            );
        }
        if weak.strong_count() <= 1 {
            // Only this task holds the cluster: nobody can list it any more.
            return WatchEnd::Gone;
        }
        if let Some(through) = apply(weak, index, &resp) {
            *next_rev = through + 1;
            delivered = true;
        }
    }
}

/// Applies one watch response to the index and its page cache; the highest revision it held.
fn apply(
    weak: &Weak<EtcdCluster>,
    index: &Arc<FenceIndex>,
    resp: &etcd_client::WatchResponse,
) -> Option<i64> {
    // Creates and deletes change listings (and bucket counts); a put of an existing key
    // changes neither. Collected apart from the fence lock so the cache never misses one.
    let mut changes = Vec::new();
    let mut through = 0;
    for ev in resp.events() {
        let Some(kv) = ev.kv() else { continue };
        through = through.max(kv.mod_revision());
        let created = ev.event_type() == EventType::Put && kv.version() == 1;
        if created || ev.event_type() == EventType::Delete {
            changes.push((
                created,
                Change {
                    revision: kv.mod_revision(),
                    key: kv.key().to_vec(),
                },
            ));
        }
    }
    if let Ok(mut d) = index.deletions.lock() {
        for (created, change) in &changes {
            if *created {
                d.created(&change.key);
            } else {
                d.deleted(&change.key, change.revision);
            }
        }
    }
    let mut oversized = false;
    if let Ok(mut guard) = index.fences.write() {
        if let Some(f) = guard.as_mut() {
            for (created, change) in &changes {
                if *created {
                    oversized |= f.on_create(&change.key);
                } else {
                    f.on_delete(&change.key);
                }
            }
        }
    }
    let changes: Vec<Change> = changes.into_iter().map(|(_, c)| c).collect();
    // Only events advance what the cache has seen: etcd 3.4 may answer a progress request
    // before events it has not sent yet, so a progress answer only says the stream is alive.
    index.pages.observe(&changes, through);
    index.pages.heard(std::time::Instant::now());
    if oversized {
        // Off this loop: the watch must keep delivering changes (the page cache trusts it).
        start_splitter(weak.clone(), index.clone());
    }
    (through > 0).then_some(through)
}

/// Pause between two reads of the splitter, so a bulk load (one oversized bucket after another)
/// is indexed at a gentle pace instead of as a burst of reads.
const SPLIT_PAUSE: Duration = Duration::from_millis(20);
/// Most buckets re-scanned per run of the splitter; the next create past the limit starts it again.
const SPLITS_PER_RUN: usize = 64;

/// Starts the splitter unless it is running: it re-scans oversized buckets one at a time.
fn start_splitter(weak: Weak<EtcdCluster>, index: Arc<FenceIndex>) {
    if index.splitting.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async move {
        for _ in 0..SPLITS_PER_RUN {
            let Some(split) = index
                .fences
                .read()
                .ok()
                .and_then(|g| g.as_ref().and_then(Fences::oversized))
            else {
                break;
            };
            let Some(cluster) = weak.upgrade() else { break };
            if let Err(reason) = rescan_bucket(&cluster, &index, split).await {
                warn!(cluster = cluster.name(), %reason, "could not re-scan an index bucket");
                break;
            }
        }
        index.splitting.store(false, Ordering::SeqCst);
    });
}

/// Re-reads one oversized bucket, `[start, end)`, in pages of [`SCAN_PAGE`] keys at one revision
/// and puts a fence every `target` keys. Every read is bounded by the bucket's own end, so etcd
/// counts at most the bucket's keys per page, never the key space after it.
async fn rescan_bucket(
    cluster: &EtcdCluster,
    index: &FenceIndex,
    split: crate::domain::fences::SplitRequest,
) -> Result<(), String> {
    let end = split.end.clone();
    let (target, before) = index
        .fences
        .read()
        .ok()
        .and_then(|g| {
            g.as_ref()
                .map(|f| (f.target(), f.count_between(&split.start, end.as_deref())))
        })
        .ok_or("no index")?;
    let mut bucket = split.start.clone();
    let mut in_bucket = 0u64;
    let mut cursor = split.start.clone();
    let mut revision = None;
    loop {
        let req = RangeReq {
            start: cursor.clone(),
            end: end.clone(),
            limit: SCAN_PAGE,
        };
        let batch = cluster
            .ranges_within(vec![req], revision, SCAN_READ_BUDGET)
            .await
            .map_err(|e| e.to_string())?;
        revision = Some(batch.revision);
        let resp = batch.responses.into_iter().next().unwrap_or_default();
        let more = resp.count > resp.keys.len() as u64;
        {
            let mut fences = index.fences.write().map_err(|_| "index lock poisoned")?;
            let Some(f) = fences.as_mut() else {
                return Err("index dropped".into());
            };
            for key in &resp.keys {
                if in_bucket >= target && *key > bucket {
                    f.split(&bucket, key.clone(), in_bucket);
                    bucket = key.clone();
                    in_bucket = 0;
                }
                in_bucket += 1;
            }
            if !more {
                // The last piece holds what the scan saw plus what was created meanwhile; its
                // estimate may only go down to that (it had drifted up if it is higher).
                let created = f
                    .count_between(&split.start, end.as_deref())
                    .saturating_sub(before);
                f.cap_count(&bucket, in_bucket + created);
                return Ok(());
            }
        }
        match resp.keys.last() {
            Some(last) => cursor = crate::domain::key::key_after(last),
            None => return Ok(()),
        }
        tokio::time::sleep(SPLIT_PAUSE).await;
    }
}
