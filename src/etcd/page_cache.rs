//! Listing pages answered from memory while the fence index's watch proves them current.
//!
//! The watch that keeps the fence index current (see [`crate::etcd::index`]) sees every change in
//! the key space, so it can also tell which cached pages a change touches
//! ([`crate::domain::page_cache`]). This module decides *when* the cache may be trusted:
//!
//! * only while that watch is established: it enables the cache from the revision it starts at
//!   and disables (drops) it on any error, cancellation or restart;
//! * a page asked "as of now" (no pinned revision) only while the watch has answered a progress
//!   request within [`FRESH_FOR`] — the watch asks every [`PROGRESS_EVERY`], so a hung member or a
//!   stalled stream turns the cache off within a second, and after [`CLEAR_AFTER`] of silence the
//!   pages are dropped;
//! * and only while a linearizable read made within [`FRESH_FOR`] found the watch caught up
//!   ([`PageCacheState::note_linearizable`]). A member that lost quorum, or is cut off from the
//!   others, keeps the watch open and answers its progress requests, but hears no write made
//!   through the others; without a recent proof the page is read from etcd, the way that says
//!   when data may be stale. Any page read from etcd is such a proof, so under steady browsing
//!   about one page a second pays for it;
//! * and only once the watch has delivered every write this gateway made (read-your-writes for
//!   the dashboard's own edits).
//!
//! A change made by another client is therefore seen once its watch event arrives (normally
//! milliseconds), never later than the silence limit. A page pinned to a revision (the next
//! pages of a listing) is a snapshot: it is answered whenever the changes seen prove it is the
//! same at that revision.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::domain::listing::{children_before, list_page, FenceView, ListReq, Mode, Page};
use crate::domain::page_cache::{CacheStats, Change, Limits, PageCache, PageKey};
use crate::etcd::gateway::{EtcdCluster, EtcdError};

/// How often the watch asks etcd to confirm it is current (a progress request).
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How recent the watch's last answer must be for a page "as of now" to come from memory.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// After this long without a word from the watch, every cached page is dropped.
pub const CLEAR_AFTER: Duration = Duration::from_secs(3);
/// Pages larger than this are always read from etcd (exports read 1,000s of keys per page and
/// would only push browsing pages out).
const MAX_CACHED_LIMIT: usize = 1000;

/// The page cache of one cluster, fed by its fence index's watch.
#[derive(Debug)]
pub struct PageCacheState {
    cache: Mutex<PageCache>,
    /// When the watch last answered (an event or a progress response).
    heard: Mutex<Option<Instant>>,
    /// The highest revision a write through this gateway returned.
    written: AtomicI64,
}

impl Default for PageCacheState {
    fn default() -> Self {
        PageCacheState {
            cache: Mutex::new(PageCache::new(Limits::default())),
            heard: Mutex::new(None),
            written: AtomicI64::new(0),
        }
    }
}

impl PageCacheState {
    fn cache(&self) -> MutexGuard<'_, PageCache> {
        // Only a panic inside the cache's own bookkeeping poisons it; start afresh then.
        self.cache.lock().unwrap_or_else(|poisoned| {
            let mut g = poisoned.into_inner();
            g.disable();
            g
        })
    }

    /// Counters and size, for tests, benchmarks and logs.
    pub fn stats(&self) -> CacheStats {
        self.cache().stats()
    }

    /// The revision the watch has delivered every change up to; `None` while there is no watch.
    pub fn seen(&self) -> Option<i64> {
        self.cache().seen()
    }

    /// A write through this gateway returned `revision`: pages "as of now" come from memory
    /// only once the watch has delivered it, so an edit shows on the very next page.
    pub fn note_write(&self, revision: i64) {
        self.written.fetch_max(revision, Ordering::SeqCst);
    }

    /// The watch starts delivering every change after `revision`.
    pub(crate) fn enable(&self, revision: i64) {
        if let Ok(mut h) = self.heard.lock() {
            *h = None;
        }
        self.cache().enable(revision);
    }

    /// A linearizable read sent at `sent` answered at `revision` (see
    /// [`PageCache::note_linearizable`]).
    pub(crate) fn note_linearizable(&self, sent: Instant, revision: i64) {
        self.cache().note_linearizable(sent, revision);
    }

    /// The watch is gone: drop everything until it is back.
    pub(crate) fn disable(&self) {
        self.cache().disable();
    }

    /// The watch answered just now (any response: events, progress, creation).
    pub(crate) fn heard(&self, now: Instant) {
        if let Ok(mut h) = self.heard.lock() {
            *h = Some(now);
        }
    }

    /// The watch delivered `changes` (creates and deletes) and every event up to `through`.
    pub(crate) fn observe(&self, changes: &[Change], through: i64) {
        self.cache().observe(changes, through);
    }

    /// Called on the watch's progress tick: drops the pages once the watch has been silent for
    /// [`CLEAR_AFTER`] (it lags, or the member behind it hangs).
    pub(crate) fn check_silence(&self, now: Instant) {
        let silent = self
            .heard
            .lock()
            .map(|h| h.is_some_and(|t| now.duration_since(t) > CLEAR_AFTER))
            .unwrap_or(true);
        if silent {
            self.cache().clear();
        }
    }

    /// True when a page "as of now" may come from memory: the watch answered recently, was
    /// recently proven caught up with the cluster, and has delivered every write made through
    /// this gateway.
    fn current(&self, cache: &PageCache, now: Instant) -> bool {
        let recent = |t: Instant| now.duration_since(t) <= FRESH_FOR;
        let heard = self
            .heard
            .lock()
            .map(|h| h.is_some_and(recent))
            .unwrap_or(false);
        heard
            && cache.proven().is_some_and(recent)
            && cache
                .seen()
                .is_some_and(|seen| seen >= self.written.load(Ordering::SeqCst))
    }

    /// The cached answer to `req`, when it can be trusted.
    pub fn lookup(&self, req: &ListReq) -> Option<Page> {
        if req.limit > MAX_CACHED_LIMIT {
            return None;
        }
        let mut cache = self.cache();
        if !cache.enabled() {
            return None;
        }
        if req.revision.is_none() && !self.current(&cache, Instant::now()) {
            return None;
        }
        cache.get(&PageKey::of(req), req.revision)
    }

    /// Keeps `page`, just read from etcd for `req`, if the changes seen allow. Only pages asked
    /// "as of now" are kept: those are the ones asked again (a level opened by many users, a
    /// reload), while the pinned pages of one listing (an export walks thousands) would only push
    /// them out. A pinned request can still be answered by a kept page.
    pub fn remember(&self, req: &ListReq, page: &Page) {
        if req.revision.is_none() && req.limit <= MAX_CACHED_LIMIT {
            self.cache().insert(req, page);
        }
    }
}

/// True when `cluster`'s fence index is ready and shows at least `n` children of `prefix` before
/// `target` (see [`children_before`]): a page from the start of that level would not reach it.
pub fn lies_beyond(
    cluster: &EtcdCluster,
    prefix: &[u8],
    mode: &Mode,
    target: &[u8],
    n: u64,
) -> bool {
    let index = cluster.index();
    index.is_ready() && children_before(index.as_ref(), prefix, mode, target, n)
}

/// Lists one page of `cluster`: from memory when the page cache can prove it current, else read
/// from etcd (bounded by the fence index once it is ready) and remembered.
pub async fn list(cluster: &Arc<EtcdCluster>, req: &ListReq) -> Result<Page, EtcdError> {
    cluster.ensure_index();
    let index = cluster.index();
    if let Some(page) = index.pages().lookup(req) {
        return Ok(page);
    }
    let fences: Option<&(dyn FenceView + Sync)> = if index.is_ready() {
        Some(index.as_ref())
    } else {
        None
    };
    let page = list_page(cluster.as_ref(), fences, req).await?;
    index.pages().remember(req, &page);
    Ok(page)
}
