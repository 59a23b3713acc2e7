//! A bounded cache of listing pages that a stream of key changes keeps honest.
//!
//! A page read at revision `R` depends only on the keys in one range: from where it starts to the
//! first key of the next page (inclusive), or to the end of the prefix when it is the last page
//! ([`Coverage`]). Values are never shown in a listing, so only a key being *created* or *deleted*
//! inside that range can change it. As long as every such change after `R` is seen (the fence
//! index's watch sees every change in the key space), a page nobody's change touched is still
//! exactly the page at any later revision the changes have been seen up to, and can be answered
//! without asking etcd.
//!
//! This module is the pure bookkeeping: which page covers which keys, which changes evict what,
//! whether a freshly read page may be stored (the watch may already have seen a change that
//! the read missed), LRU eviction by count and bytes, and when the watch was last *proven*
//! current ([`PageCache::note_linearizable`]). When the caller may trust the cache (the watch is
//! healthy and proven caught up) is decided in [`crate::etcd::page_cache`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use crate::domain::key::{key_after, prefix_end};
use crate::domain::listing::{item_for, ListReq, Mode, Page};

/// What identifies a page apart from its revision: prefix, start, grouping and size. The cursor's
/// probe hint is left out on purpose: it only changes how a page is read, never what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    prefix: Vec<u8>,
    start: Vec<u8>,
    /// `None` in flat mode, the separator in tree mode.
    sep: Option<Vec<u8>>,
    limit: usize,
}

impl PageKey {
    /// The key of the page `req` asks for.
    pub fn of(req: &ListReq) -> PageKey {
        PageKey {
            prefix: req.prefix.clone(),
            start: req.start.clone(),
            sep: match &req.mode {
                Mode::Flat => None,
                Mode::Tree { sep } => Some(sep.clone()),
            },
            limit: req.limit,
        }
    }

    fn bytes(&self) -> usize {
        self.prefix.len() + self.start.len() + self.sep.as_ref().map_or(0, Vec::len)
    }
}

/// The keys `[lo, hi)` a page depends on (`hi == None`: to the end of the key space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// First key that matters.
    pub lo: Vec<u8>,
    /// First key that does not matter any more.
    pub hi: Option<Vec<u8>>,
}

impl Coverage {
    /// What `page`, the answer to `req`, depends on: the keys from its start up to and including
    /// the child the next page starts with (so a change that moves the cursor evicts the page
    /// too), or to the end of the prefix for a last page. In tree mode this includes every key of
    /// the directories listed: a directory appears or goes only through a key inside it.
    pub fn of(req: &ListReq, page: &Page) -> Coverage {
        let lo = req.start.clone().max(req.prefix.clone());
        let hi = match &page.next {
            Some(cursor) => {
                let child = item_for(&req.prefix, &req.mode, &cursor.start);
                if child.dir {
                    prefix_end(&child.key)
                } else {
                    Some(key_after(&cursor.start))
                }
            }
            None => prefix_end(&req.prefix),
        };
        Coverage { lo, hi }
    }

    /// True when a change to `key` may change the page.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.lo.as_slice() && self.hi.as_deref().is_none_or(|hi| key < hi)
    }

    /// True when one of `sorted` (ascending) lies in the range.
    fn hits_any(&self, sorted: &[&[u8]]) -> bool {
        let from = sorted.partition_point(|k| *k < self.lo.as_slice());
        sorted.get(from).is_some_and(|k| self.contains(k))
    }
}

/// A key created or deleted at a revision, as the watch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The revision of the change.
    pub revision: i64,
    /// The key.
    pub key: Vec<u8>,
}

/// How large the cache may grow.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most pages kept.
    pub max_entries: usize,
    /// Most bytes (estimated) kept; a page larger than an eighth of it is never kept.
    pub max_bytes: usize,
    /// Most recent changes remembered for checking pages read while the watch was ahead.
    pub max_log: usize,
}

impl Default for Limits {
    /// 2,048 pages and 4 MiB: a few screens for each of many users, well inside the server's
    /// memory budget.
    fn default() -> Self {
        Limits {
            max_entries: 2048,
            max_bytes: 4 << 20,
            max_log: 4096,
        }
    }
}

/// Counters, for tests, benchmarks and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Pages answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Pages stored.
    pub inserts: u64,
    /// Pages not stored (a newer change in their range, read before the watch started, too big).
    pub refused: u64,
    /// Pages evicted because a key in their range was created or deleted.
    pub evicted_by_change: u64,
    /// Pages evicted to stay within [`Limits`].
    pub evicted_by_capacity: u64,
    /// Times the whole cache was dropped (watch lost, lagging or restarted).
    pub clears: u64,
    /// Pages held now.
    pub entries: u64,
    /// Estimated bytes held now.
    pub bytes: u64,
}

#[derive(Debug)]
struct Entry {
    page: Page,
    cover: Coverage,
    bytes: usize,
    tick: u64,
}

/// The cache proper. Disabled (empty, refusing everything) until [`PageCache::enable`] says from
/// which revision on every change will be reported.
#[derive(Debug)]
pub struct PageCache {
    limits: Limits,
    entries: HashMap<PageKey, Entry>,
    /// Least recently used first.
    lru: BTreeMap<u64, PageKey>,
    tick: u64,
    bytes: usize,
    /// `Some(r)`: every change after revision `r` up to `seen` has been applied.
    seen: Option<i64>,
    /// Recent changes, oldest first; holds every change after `log_floor`.
    log: VecDeque<Change>,
    log_floor: i64,
    /// Linearizable reads `(sent, revision)` the changes seen have not reached yet, oldest first.
    proofs: VecDeque<(Instant, i64)>,
    /// The latest moment every change committed by then is known to have been seen.
    proven: Option<Instant>,
    stats: CacheStats,
}

/// Most linearizable reads kept waiting for the changes seen to reach their revision.
const MAX_PENDING_PROOFS: usize = 8;

impl PageCache {
    /// An empty, disabled cache.
    pub fn new(limits: Limits) -> PageCache {
        PageCache {
            limits,
            entries: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            seen: None,
            log: VecDeque::new(),
            log_floor: 0,
            proofs: VecDeque::new(),
            proven: None,
            stats: CacheStats::default(),
        }
    }

    /// Every change after `revision` will be reported from now on: start afresh.
    pub fn enable(&mut self, revision: i64) {
        self.clear();
        self.seen = Some(revision);
        self.log.clear();
        self.log_floor = revision;
        self.proofs.clear();
        self.proven = None;
    }

    /// Changes will no longer be reported (the watch is gone): drop everything, store nothing.
    pub fn disable(&mut self) {
        self.clear();
        self.seen = None;
        self.log.clear();
        self.proofs.clear();
        self.proven = None;
    }

    /// True between [`PageCache::enable`] and [`PageCache::disable`].
    pub fn enabled(&self) -> bool {
        self.seen.is_some()
    }

    /// The revision changes have been applied up to, while enabled.
    pub fn seen(&self) -> Option<i64> {
        self.seen
    }

    /// Drops every page (the watch may be behind); the change log stays, so the cache can go on.
    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.stats.clears += 1;
        }
        self.entries.clear();
        self.lru.clear();
        self.bytes = 0;
    }

    /// Counters and current size.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.entries.len() as u64,
            bytes: self.bytes as u64,
            ..self.stats
        }
    }

    /// Applies what the watch reported: `changes` (creates and deletes) and that every event up
    /// to revision `through` has now been delivered. Evicts every page whose range holds a changed
    /// key.
    pub fn observe(&mut self, changes: &[Change], through: i64) {
        let Some(seen) = self.seen else { return };
        if !changes.is_empty() {
            let mut keys: Vec<&[u8]> = changes.iter().map(|c| c.key.as_slice()).collect();
            keys.sort_unstable();
            let doomed: Vec<PageKey> = self
                .entries
                .iter()
                .filter(|(_, e)| e.cover.hits_any(&keys))
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                self.remove(&k);
                self.stats.evicted_by_change += 1;
            }
            self.log.extend(changes.iter().cloned());
            while self.log.len() > self.limits.max_log {
                if let Some(old) = self.log.pop_front() {
                    self.log_floor = self.log_floor.max(old.revision);
                }
            }
        }
        let newest = changes.iter().map(|c| c.revision).max().unwrap_or(0);
        let seen = seen.max(through).max(newest);
        self.seen = Some(seen);
        while let Some(&(sent, revision)) = self.proofs.front() {
            if revision > seen {
                break;
            }
            self.proofs.pop_front();
            self.proven = self.proven.max(Some(sent));
        }
    }

    /// A linearizable read sent at `sent` answered at `revision`: every change committed before
    /// `sent` has a revision of at most `revision`. Once the changes seen reach it (now or in a
    /// later [`PageCache::observe`]), the cache is proven to have been current at `sent`.
    ///
    /// Hearing from the watch is not enough: a member cut off from the others, or left alone
    /// without quorum, keeps its watches open and answers their progress requests, while writes
    /// made through the others never reach it.
    pub fn note_linearizable(&mut self, sent: Instant, revision: i64) {
        let Some(seen) = self.seen else { return };
        if revision <= seen {
            self.proven = self.proven.max(Some(sent));
            return;
        }
        if self.proofs.len() >= MAX_PENDING_PROOFS {
            self.proofs.pop_front();
        }
        self.proofs.push_back((sent, revision));
    }

    /// The latest moment the cache is known to have held every change committed by then.
    pub fn proven(&self) -> Option<Instant> {
        self.proven
    }

    /// The page stored for `key`. Unpinned (`pinned == None`: "the latest"), it is answered with
    /// its own revision; pinned to revision `p`, only when the page is known to be the same at `p`
    /// (read at or before `p`, and no change seen up to `p`), and then answered *at* `p`, so its
    /// cursor keeps the listing on `p`. The caller decides whether the cache may be trusted for
    /// "the latest" at all (see [`crate::etcd::page_cache`]).
    pub fn get(&mut self, key: &PageKey, pinned: Option<i64>) -> Option<Page> {
        let seen = self.seen?;
        let tick = self.next_tick();
        let Some(entry) = self.entries.get_mut(key) else {
            self.stats.misses += 1;
            return None;
        };
        let mut page = entry.page.clone();
        if let Some(p) = pinned {
            if p < page.revision || p > seen {
                self.stats.misses += 1;
                return None;
            }
            page.revision = p;
            if let Some(next) = page.next.as_mut() {
                next.revision = p;
            }
        }
        self.lru.remove(&entry.tick);
        entry.tick = tick;
        self.lru.insert(tick, key.clone());
        self.stats.hits += 1;
        // Served from memory: it cost etcd nothing.
        page.cost = 0;
        page.rounds = 0;
        Some(page)
    }

    /// Stores `page`, the answer to `req`, unless a change already seen makes it out of date, it
    /// was read from before the changes are known (or without quorum), or it is too big. Returns
    /// whether it was stored.
    pub fn insert(&mut self, req: &ListReq, page: &Page) -> bool {
        if self.seen.is_none() {
            return false;
        }
        let cover = Coverage::of(req, page);
        let key = PageKey::of(req);
        let bytes = estimate_bytes(&key, &cover, page);
        let outdated = self
            .log
            .iter()
            .any(|c| c.revision > page.revision && cover.contains(&c.key));
        if page.stale
            || page.revision < self.log_floor
            || outdated
            || bytes > self.limits.max_bytes / 8
        {
            self.stats.refused += 1;
            return false;
        }
        self.remove(&key);
        let tick = self.next_tick();
        self.lru.insert(tick, key.clone());
        self.bytes += bytes;
        self.entries.insert(
            key,
            Entry {
                page: page.clone(),
                cover,
                bytes,
                tick,
            },
        );
        self.stats.inserts += 1;
        while self.entries.len() > self.limits.max_entries || self.bytes > self.limits.max_bytes {
            // Popping first guarantees progress whatever the state of the maps.
            let Some((_, oldest)) = self.lru.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes = self.bytes.saturating_sub(e.bytes);
                self.stats.evicted_by_capacity += 1;
            }
        }
        true
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn remove(&mut self, key: &PageKey) {
        if let Some(e) = self.entries.remove(key) {
            self.lru.remove(&e.tick);
            self.bytes = self.bytes.saturating_sub(e.bytes);
        }
    }
}

/// Roughly what an entry costs in memory: its keys plus per-item and per-entry overhead.
fn estimate_bytes(key: &PageKey, cover: &Coverage, page: &Page) -> usize {
    const PER_ITEM: usize = 40;
    const PER_ENTRY: usize = 256;
    let items: usize = page.items.iter().map(|i| i.key.len() + PER_ITEM).sum();
    let next = page.next.as_ref().map_or(0, |c| c.start.len());
    let cover = cover.lo.len() + cover.hi.as_ref().map_or(0, Vec::len);
    PER_ENTRY + key.bytes() + items + next + cover
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::listing::tests::MemSource;
    use crate::domain::listing::{list_page, Cursor, Item};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn req(prefix: &[u8], start: &[u8], mode: Mode, limit: usize) -> ListReq {
        ListReq {
            start: start.to_vec(),
            ..ListReq::first(prefix.to_vec(), mode, limit)
        }
    }

    fn tree() -> Mode {
        Mode::Tree { sep: b"/".to_vec() }
    }

    fn page(revision: i64, keys: &[&[u8]], next: Option<&[u8]>) -> Page {
        Page {
            revision,
            items: keys
                .iter()
                .map(|k| Item {
                    key: k.to_vec(),
                    dir: false,
                })
                .collect(),
            next: next.map(|s| Cursor {
                revision,
                start: s.to_vec(),
                hint: 3,
            }),
            stale: false,
            cost: 7,
            rounds: 1,
        }
    }

    fn change(revision: i64, key: &[u8]) -> Change {
        Change {
            revision,
            key: key.to_vec(),
        }
    }

    fn enabled(rev: i64) -> PageCache {
        let mut c = PageCache::new(Limits::default());
        c.enable(rev);
        c
    }

    #[test]
    fn a_page_covers_its_start_through_the_next_page_s_first_key() {
        let r = req(b"/a/", b"/a/k2", Mode::Flat, 2);
        let p = page(5, &[b"/a/k2", b"/a/k3"], Some(b"/a/k4"));
        let c = Coverage::of(&r, &p);
        assert!(!c.contains(b"/a/k1"));
        assert!(c.contains(b"/a/k2"));
        assert!(c.contains(b"/a/k25"));
        assert!(c.contains(b"/a/k4"), "a change at the cursor moves it");
        assert!(!c.contains(b"/a/k40"));
        // The last page depends on everything up to the end of the prefix.
        let last = Coverage::of(&r, &page(5, &[b"/a/k2"], None));
        assert!(last.contains(b"/a/zzz"));
        assert!(!last.contains(b"/b"));
        // The empty prefix's last page reaches the end of the key space.
        let all = Coverage::of(&req(b"", b"", Mode::Flat, 2), &page(5, &[], None));
        assert!(all.contains(b"\xff\xff\xff") && all.contains(b"\0"));
    }

    #[test]
    fn a_tree_page_covers_every_key_inside_the_directories_it_lists() {
        let r = req(b"/h/", b"/h/", tree(), 2);
        let p = Page {
            items: vec![
                Item {
                    key: b"/h/d0/".to_vec(),
                    dir: true,
                },
                Item {
                    key: b"/h/d1/".to_vec(),
                    dir: true,
                },
            ],
            ..page(5, &[], Some(b"/h/d2/"))
        };
        let c = Coverage::of(&r, &p);
        assert!(c.contains(b"/h/d0/deep/key"));
        assert!(c.contains(b"/h/d1/x"));
        assert!(c.contains(b"/h/d15"), "a new child between two listed ones");
        assert!(c.contains(b"/h/d2/x"), "the next page's first directory");
        assert!(!c.contains(b"/h/d3/x"));
    }

    #[test]
    fn a_change_inside_the_range_evicts_and_one_outside_does_not() {
        let mut cache = enabled(4);
        let r = req(b"/a/", b"/a/", Mode::Flat, 2);
        assert!(cache.insert(&r, &page(5, &[b"/a/1", b"/a/2"], Some(b"/a/3"))));
        let key = PageKey::of(&r);
        let hit = cache.get(&key, None).expect("cached");
        assert_eq!(
            (hit.revision, hit.cost, hit.rounds),
            (5, 0, 0),
            "its own revision, no etcd cost"
        );
        cache.observe(&[change(6, b"/b/x"), change(7, b"/a/4")], 7);
        assert!(cache.get(&key, None).is_some(), "changes outside the range");
        cache.observe(&[change(8, b"/a/15")], 8);
        assert!(cache.get(&key, None).is_none(), "a key created inside");
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.evicted_by_change), (2, 1, 1));
    }

    #[test]
    fn a_page_older_than_a_change_already_seen_is_not_stored() {
        // The watch delivered revision 9 before the read at 8 came back: the page misses it.
        let mut cache = enabled(4);
        cache.observe(&[change(9, b"/a/1")], 9);
        let r = req(b"/a/", b"/a/", Mode::Flat, 10);
        assert!(!cache.insert(&r, &page(8, &[b"/a/2"], None)));
        // A page read after the change is fine, and so is one whose range the change missed.
        assert!(cache.insert(&r, &page(9, &[b"/a/1", b"/a/2"], None)));
        let other = req(b"/b/", b"/b/", Mode::Flat, 10);
        assert!(cache.insert(&other, &page(8, &[b"/b/1"], None)));
        assert_eq!(cache.stats().refused, 1);
    }

    #[test]
    fn pages_read_before_the_watch_started_or_the_log_forgot_are_not_stored() {
        let mut cache = PageCache::new(Limits {
            max_log: 2,
            ..Limits::default()
        });
        let r = req(b"/a/", b"/a/", Mode::Flat, 10);
        assert!(!cache.insert(&r, &page(5, &[], None)), "disabled");
        cache.enable(10);
        assert!(!cache.insert(&r, &page(9, &[], None)), "before the watch");
        cache.observe(
            &[change(11, b"/x"), change(12, b"/y"), change(13, b"/z")],
            13,
        );
        assert!(
            !cache.insert(&r, &page(10, &[], None)),
            "the log forgot 11, which a page at 10 would need checked"
        );
        assert!(cache.insert(&r, &page(11, &[], None)));
    }

    #[test]
    fn pinned_requests_are_served_only_inside_the_known_unchanged_window() {
        let mut cache = enabled(4);
        let r = req(b"/a/", b"/a/", Mode::Flat, 1);
        assert!(cache.insert(&r, &page(5, &[b"/a/1"], Some(b"/a/2"))));
        let key = PageKey::of(&r);
        assert!(cache.get(&key, Some(4)).is_none(), "before the read");
        assert!(cache.get(&key, Some(6)).is_none(), "not seen yet");
        cache.observe(&[], 9);
        let at7 = cache.get(&key, Some(7)).expect("unchanged through 9");
        assert_eq!(at7.revision, 7);
        assert_eq!(
            at7.next.map(|c| c.revision),
            Some(7),
            "the cursor stays on 7"
        );
    }

    #[test]
    fn disabling_drops_everything_and_refuses_until_enabled_again() {
        let mut cache = enabled(4);
        let r = req(b"", b"", Mode::Flat, 1);
        assert!(cache.insert(&r, &page(5, &[b"a"], Some(b"b"))));
        cache.disable();
        assert!(!cache.enabled());
        assert!(cache.get(&PageKey::of(&r), None).is_none());
        assert!(!cache.insert(&r, &page(5, &[b"a"], Some(b"b"))));
        assert_eq!(cache.stats().clears, 1);
        cache.enable(6);
        assert!(cache.insert(&r, &page(6, &[b"a"], Some(b"b"))));
    }

    #[test]
    fn stale_or_oversized_pages_are_not_stored() {
        let mut cache = PageCache::new(Limits {
            max_bytes: 8 * 1024,
            ..Limits::default()
        });
        cache.enable(1);
        let r = req(b"", b"", Mode::Flat, 1000);
        let mut stale = page(2, &[b"a"], None);
        stale.stale = true;
        assert!(!cache.insert(&r, &stale));
        let big: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("key{i:05}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = big.iter().map(Vec::as_slice).collect();
        assert!(!cache.insert(&r, &page(2, &refs, None)));
    }

    #[test]
    fn the_least_recently_used_page_goes_first_by_count_and_by_bytes() {
        let mut cache = PageCache::new(Limits {
            max_entries: 2,
            max_bytes: 1 << 20,
            max_log: 16,
        });
        cache.enable(1);
        let reqs: Vec<ListReq> = (0..3)
            .map(|i| req(b"", format!("k{i}").as_bytes(), Mode::Flat, 1))
            .collect();
        assert!(cache.insert(&reqs[0], &page(2, &[b"k0"], None)));
        assert!(cache.insert(&reqs[1], &page(2, &[b"k1"], None)));
        assert!(cache.get(&PageKey::of(&reqs[0]), None).is_some());
        assert!(cache.insert(&reqs[2], &page(2, &[b"k2"], None)));
        assert!(
            cache.get(&PageKey::of(&reqs[0]), None).is_some(),
            "used last"
        );
        assert!(cache.get(&PageKey::of(&reqs[1]), None).is_none(), "evicted");
        assert_eq!(cache.stats().evicted_by_capacity, 1);

        let one = estimate_bytes(
            &PageKey::of(&reqs[0]),
            &Coverage::of(&reqs[0], &page(2, &[b"k0"], None)),
            &page(2, &[b"k0"], None),
        );
        let mut small = PageCache::new(Limits {
            max_entries: 100,
            max_bytes: 16 * one + one,
            max_log: 16,
        });
        small.enable(1);
        for i in 0..40 {
            let r = req(b"", format!("k{i}").as_bytes(), Mode::Flat, 1);
            assert!(small.insert(&r, &page(2, &[b"k0"], None)));
        }
        let s = small.stats();
        assert!(s.bytes as usize <= 17 * one && s.entries <= 17, "{s:?}");
    }

    /// Lists `r` fresh from `src`, the truth a cache hit must equal.
    fn fresh(src: &MemSource, r: &ListReq) -> Page {
        block_on(list_page(src, None, r)).unwrap()
    }

    proptest::proptest! {
        /// Whatever keys come and go, a page the cache still answers is the page a fresh read
        /// of the current keys gives (same items, same cursor position).
        #[test]
        fn every_hit_equals_a_fresh_listing(
            initial in proptest::collection::btree_set(proptest::collection::vec(proptest::sample::select(vec![b'/', b'a', b'b', b'c']), 1..5), 0..40),
            ops in proptest::collection::vec((proptest::bool::ANY, proptest::collection::vec(proptest::sample::select(vec![b'/', b'a', b'b', b'c']), 1..5)), 1..30),
            limit in 1usize..5,
        ) {
            let mut keys = initial;
            let mut cache = enabled(0);
            let mut rev = 1i64;
            let shapes: Vec<ListReq> = [&b""[..], b"a", b"/", b"a/"]
                .iter()
                .flat_map(|p| [
                    req(p, p, Mode::Flat, limit),
                    req(p, p, tree(), limit),
                    req(p, &[p, &b"b"[..]].concat(), Mode::Flat, limit),
                    req(p, &[p, &b"b"[..]].concat(), tree(), limit),
                ])
                .collect();
            for (create, key) in ops {
                let src = MemSource::new(keys.clone());
                for r in &shapes {
                    let truth = fresh(&src, r);
                    match cache.get(&PageKey::of(r), None) {
                        Some(hit) => {
                            proptest::prop_assert_eq!(&hit.items, &truth.items);
                            proptest::prop_assert_eq!(
                                hit.next.map(|c| c.start),
                                truth.next.map(|c| c.start)
                            );
                        }
                        None => {
                            let mut p = truth;
                            p.revision = rev;
                            cache.insert(r, &p);
                        }
                    }
                }
                // One change: a create of a new key or a delete of an existing one (a put of an
                // existing key changes no listing and is not reported).
                rev += 1;
                let changed = if create { keys.insert(key.clone()) } else { keys.remove(&key) };
                if changed {
                    cache.observe(&[Change { revision: rev, key }], rev);
                } else {
                    cache.observe(&[], rev);
                }
            }
        }
    }

    #[test]
    fn the_cache_is_proven_current_only_once_the_watch_reaches_a_linearizable_read() {
        let t0 = Instant::now();
        let t1 = t0 + std::time::Duration::from_millis(10);
        let mut c = PageCache::new(Limits::default());
        c.note_linearizable(t0, 5);
        assert_eq!(c.proven(), None, "no watch, nothing to prove");
        c.enable(10);
        c.note_linearizable(t0, 10);
        assert_eq!(c.proven(), Some(t0), "the watch already holds revision 10");
        c.note_linearizable(t1, 12);
        assert_eq!(c.proven(), Some(t0), "revisions 11 and 12 are not seen yet");
        c.observe(&[change(11, b"/a")], 11);
        assert_eq!(c.proven(), Some(t0));
        c.observe(&[], 12);
        assert_eq!(c.proven(), Some(t1));
        // An older read proven later never moves the proof back.
        c.note_linearizable(t0, 12);
        assert_eq!(c.proven(), Some(t1));
    }

    #[test]
    fn a_new_or_lost_watch_forgets_its_proofs_and_pending_ones_are_bounded() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let mut c = PageCache::new(Limits::default());
        c.enable(1);
        c.note_linearizable(at(0), 1);
        assert!(c.proven().is_some());
        c.disable();
        assert_eq!(c.proven(), None);
        c.enable(1);
        assert_eq!(c.proven(), None, "a new watch is proven anew");
        for i in 0..20u64 {
            c.note_linearizable(at(i), 100 + i as i64);
        }
        c.observe(&[], 200);
        assert_eq!(
            c.proven(),
            Some(at(19)),
            "the newest pending read proves the most"
        );
        c.enable(300);
        c.note_linearizable(at(30), 301);
        c.clear();
        c.observe(&[], 301);
        assert_eq!(
            c.proven(),
            Some(at(30)),
            "dropping pages keeps what is pending"
        );
    }
}
