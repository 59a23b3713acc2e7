//! The fence index: a sparse, sorted sample of the key space.
//!
//! Every `target`-th key becomes a *fence*, and each fence remembers roughly how many keys lie between
//! it and the next one. With it a listing can ask etcd for `[key, fence)` instead of
//! `[key, prefix_end)`, so a page costs O(page + target) instead of O(keys after key). The index is
//! built once by a scan and kept current by a watch (creates add to a bucket, deletes take away; a
//! bucket that grows past `2 × target` is re-read in bounded pages and split every `target` keys).
//!
//! Counts are estimates used to size reads; correctness never depends on them, because every page
//! reads real keys from etcd and follows up any read that was cut short.

use std::collections::BTreeMap;

use crate::domain::listing::FenceView;

/// An oversized bucket, `[start, end)`, to re-read and split every `target` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRequest {
    /// The bucket's fence.
    pub start: Vec<u8>,
    /// The next fence (`None`: end of the key space).
    pub end: Option<Vec<u8>>,
}

/// Sorted fences with the estimated number of keys from each to the next.
#[derive(Debug, Clone)]
pub struct Fences {
    buckets: BTreeMap<Vec<u8>, u64>,
    target: u64,
}

impl Fences {
    /// An index with one bucket holding `count` keys; `target` is the bucket size aimed for.
    pub fn new(target: u64) -> Fences {
        let mut buckets = BTreeMap::new();
        buckets.insert(Vec::new(), 0);
        Fences {
            buckets,
            target: target.max(2),
        }
    }

    /// The bucket size aimed for.
    pub fn target(&self) -> u64 {
        self.target
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Always false: the first bucket (from the empty key) always exists.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Estimated number of keys in the whole key space.
    pub fn total(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// Adds a key in scan order (keys must arrive sorted): every `target`-th key opens a bucket.
    pub fn push_scanned(&mut self, key: &[u8]) {
        let target = self.target;
        if let Some((_, count)) = self.buckets.iter_mut().next_back() {
            if *count < target {
                *count += 1;
                return;
            }
        }
        self.buckets.insert(key.to_vec(), 1);
    }

    fn bucket_of(&self, key: &[u8]) -> Vec<u8> {
        self.buckets
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(key)))
            .next_back()
            .map(|(k, _)| k.clone())
            .unwrap_or_default()
    }

    fn next_fence(&self, fence: &[u8]) -> Option<Vec<u8>> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.buckets
            .range::<[u8], _>((Excluded(fence), Unbounded))
            .next()
            .map(|(k, _)| k.clone())
    }

    /// A key was created; true when its bucket has grown past twice the target (then
    /// [`Fences::oversized`] names a bucket to re-scan).
    pub fn on_create(&mut self, key: &[u8]) -> bool {
        let fence = self.bucket_of(key);
        let count = self.buckets.entry(fence).or_insert(0);
        *count += 1;
        *count > 2 * self.target
    }

    /// A key was deleted; small neighbouring buckets are merged so the index stays compact.
    pub fn on_delete(&mut self, key: &[u8]) {
        let fence = self.bucket_of(key);
        let count = match self.buckets.get_mut(&fence) {
            Some(c) => {
                *c = c.saturating_sub(1);
                *c
            }
            None => return,
        };
        if let Some(next) = self.next_fence(&fence) {
            let next_count = self.buckets.get(&next).copied().unwrap_or(0);
            if count + next_count < self.target / 2 {
                self.buckets.remove(&next);
                self.buckets.insert(fence, count + next_count);
            }
        }
    }

    /// Splits the bucket `start` at `at` (a key inside it): `left` keys stay before `at`.
    pub fn split(&mut self, start: &[u8], at: Vec<u8>, left: u64) {
        let Some(count) = self.buckets.get(start).copied() else {
            return;
        };
        if at.as_slice() <= start || self.bucket_of(&at) != start {
            return;
        }
        self.buckets.insert(start.to_vec(), left.min(count));
        self.buckets.insert(at, count.saturating_sub(left));
    }

    /// Estimated keys in the buckets whose fences lie in `[start, end)`.
    pub fn count_between(&self, start: &[u8], end: Option<&[u8]>) -> u64 {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let hi = end.map_or(Unbounded, Excluded);
        self.buckets
            .range::<[u8], _>((Included(start), hi))
            .map(|(_, c)| *c)
            .sum()
    }

    /// Lowers the count of the bucket `start` to `count` when it was higher (a re-scan found the
    /// estimate had drifted up), if that bucket still exists.
    pub fn cap_count(&mut self, start: &[u8], count: u64) {
        if let Some(c) = self.buckets.get_mut(start) {
            *c = (*c).min(count);
        }
    }

    /// The first bucket that needs splitting, if any (after a rebuild or many creates).
    pub fn oversized(&self) -> Option<SplitRequest> {
        let (start, _) = self.buckets.iter().find(|(_, c)| **c > 2 * self.target)?;
        Some(SplitRequest {
            start: start.clone(),
            end: self.next_fence(start),
        })
    }
}

impl FenceView for Fences {
    fn buckets(&self, from: &[u8], end: Option<&[u8]>, max: usize) -> Vec<(Option<Vec<u8>>, u64)> {
        let first = self.bucket_of(from);
        let mut out = Vec::new();
        let mut iter = self
            .buckets
            .range::<[u8], _>((
                std::ops::Bound::Included(first.as_slice()),
                std::ops::Bound::Unbounded,
            ))
            .peekable();
        while let Some((_, count)) = iter.next() {
            if out.len() >= max {
                break;
            }
            let hi = iter.peek().map(|(k, _)| (*k).clone());
            let past_end = match (&hi, end) {
                (Some(h), Some(e)) => h.as_slice() >= e,
                (None, _) => true,
                (Some(_), None) => false,
            };
            out.push((hi, *count));
            if past_end {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::listing::tests::{list_all, MemSource};
    use crate::domain::listing::{list_page, ListReq, Mode};

    fn build(keys: &MemSource, target: u64) -> Fences {
        let mut f = Fences::new(target);
        for k in &keys.keys {
            f.push_scanned(k);
        }
        f
    }

    fn numeric(n: u32) -> MemSource {
        MemSource::new((1..=n).map(|i| i.to_string().into_bytes()))
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn first_page(
        src: &MemSource,
        f: &Fences,
        prefix: &[u8],
        start: &[u8],
        mode: Mode,
    ) -> crate::domain::listing::Page {
        let req = ListReq {
            start: start.to_vec(),
            ..ListReq::first(prefix.to_vec(), mode, 100)
        };
        block_on(list_page(src, Some(f), &req)).unwrap()
    }

    #[test]
    fn scan_builds_buckets_of_the_target_size() {
        let src = numeric(10_000);
        let f = build(&src, 256);
        assert_eq!(f.total(), 10_000);
        assert_eq!(f.len(), 40);
    }

    #[test]
    fn a_flat_page_anywhere_costs_about_a_page_plus_a_bucket() {
        let src = numeric(200_000);
        let f = build(&src, 1024);
        for start in [&b"1"[..], b"150000", b"5"] {
            let page = first_page(&src, &f, b"", start, Mode::Flat);
            assert_eq!(page.items.len(), 100);
            assert!(
                page.cost <= 100 + 3 * 1024,
                "cost {} from {start:?}",
                page.cost
            );
            assert_eq!(page.rounds, 1);
        }
    }

    #[test]
    fn a_flat_page_from_any_key_is_one_round_trip() {
        let src = numeric(200_000);
        let f = build(&src, 256);
        let mut n = 1u32;
        while n <= 200_000 {
            let start = n.to_string();
            let page = first_page(&src, &f, b"", start.as_bytes(), Mode::Flat);
            assert_eq!(page.rounds, 1, "from {start}");
            assert!(
                page.items.len() == 100 || page.next.is_none(),
                "from {start}"
            );
            assert!(
                page.cost <= 101 + 3 * 256,
                "cost {} from {start}",
                page.cost
            );
            n += 613;
        }
    }

    #[test]
    fn tree_root_of_many_directories_costs_o_of_the_directories_read() {
        let src = MemSource::new(
            (0..1000).flat_map(|d| (0..200).map(move |k| format!("/d{d:04}/k{k:04}").into_bytes())),
        );
        for target in [128, 256] {
            let f = build(&src, target);
            let page = first_page(&src, &f, b"/", b"/", Mode::Tree { sep: b"/".to_vec() });
            assert_eq!(page.items.len(), 100);
            assert!(page.items.iter().all(|i| i.dir));
            // 101 directories of 200 keys (20k keys) out of 200k: etcd counts a small multiple of
            // what those directories hold, never the whole prefix.
            eprintln!(
                "target {target}: cost {} rounds {} batches {:?}",
                page.cost,
                page.rounds,
                src.log.lock().unwrap()
            );
            src.log.lock().unwrap().clear();
            assert!(page.cost < 3 * 20_200 + 2 * target, "cost {}", page.cost);
            assert!(page.rounds <= 8, "rounds {}", page.rounds);
        }
    }

    #[test]
    fn a_level_of_large_directories_costs_two_tiny_reads_per_directory() {
        // 300 directories of 600 keys: each spans two or three buckets of 256.
        let src = MemSource::new(
            (0..300)
                .flat_map(|d| (0..600).map(move |k| format!("/h/d{d:04}/k{k:04}").into_bytes())),
        );
        let f = build(&src, 256);
        let tree = Mode::Tree { sep: b"/".to_vec() };
        let page = first_page(&src, &f, b"/h/", b"/h/d0100/", tree.clone());
        let reads: usize = src.log.lock().unwrap().iter().sum();
        assert_eq!(page.items.len(), 100);
        assert_eq!(page.items[0].key, b"/h/d0100/".to_vec());
        // A gap read and an anchor per directory (101 with the look-ahead), not one per bucket.
        assert!(reads <= 2 * 101 + 40, "reads {reads}");
        assert!(page.cost <= 101 * 8, "cost {}", page.cost);
        assert_eq!(
            page.rounds, 1,
            "the fences show enough directories to plan the page"
        );

        // Inside one directory the level is plain keys: one read, like a flat page.
        src.log.lock().unwrap().clear();
        let page = first_page(&src, &f, b"/h/d0100/", b"/h/d0100/", tree);
        assert_eq!(page.items.len(), 100);
        assert!(page.items.iter().all(|i| !i.dir));
        assert_eq!(*src.log.lock().unwrap(), vec![1]);
        assert!(page.cost <= 101 + 2 * 256, "cost {}", page.cost);
    }

    #[test]
    fn the_fences_tell_when_a_child_lies_beyond_the_first_pages_of_its_level() {
        use crate::domain::listing::children_before;
        // 300 directories of 600 keys, then 20 directories of 2 keys, then 5,000 plain keys.
        let mut keys: Vec<Vec<u8>> = (0..300)
            .flat_map(|d| (0..600).map(move |k| format!("/h/d{d:04}/k{k:04}").into_bytes()))
            .collect();
        keys.extend(
            (0..20).flat_map(|d| (0..2).map(move |k| format!("/h/e{d:02}/{k}").into_bytes())),
        );
        keys.extend((0..5000).map(|k| format!("/h/p{k:05}").into_bytes()));
        keys.extend(
            (0..3).flat_map(|d| (0..5000).map(move |k| format!("/big/d{d}/k{k:05}").into_bytes())),
        );
        let src = MemSource::new(keys);
        let f = build(&src, 256);
        let tree = Mode::Tree { sep: b"/".to_vec() };
        let before =
            |prefix: &[u8], target: &[u8], n: u64| children_before(&f, prefix, &tree, target, n);
        // Directories: each spans two or three buckets, so the fences name every one.
        assert!(before(b"/h/", b"/h/d0250/", 200));
        assert!(
            !before(b"/h/", b"/h/d0150/", 200),
            "150 directories come first"
        );
        // Plain keys: counted from the buckets between their fences.
        assert!(
            before(b"/h/d0100/", b"/h/d0100/k0500", 200),
            "500 keys come first"
        );
        assert!(!before(b"/h/d0100/", b"/h/d0100/k0100", 200));
        assert!(before(b"/h/", b"/h/p04000", 2000));
        // A few huge directories are few children, however many keys they hold.
        assert!(before(b"/big/", b"/big/d2/", 2));
        assert!(!before(b"/big/", b"/big/d2/", 3));
        assert!(before(b"", b"/big/", 0));
    }

    #[test]
    fn a_level_of_many_tiny_directories_follows_up_only_what_can_be_on_the_page() {
        // 30,000 directories of 3 keys: every fence in a directory of its own, each gap between
        // two fences about 85 directories. Follow-ups of gaps past a known page of children
        // were of no use; they were 259 range reads counting 47,563 keys for this page.
        let src = MemSource::new(
            (0..30_000).flat_map(|d| (0..3).map(move |k| format!("/h/d{d:05}/k{k}").into_bytes())),
        );
        let f = build(&src, 256);
        let page = first_page(&src, &f, b"/h/", b"/h/", Mode::Tree { sep: b"/".to_vec() });
        let reads: usize = src.log.lock().unwrap().iter().sum();
        assert_eq!(page.items.len(), 100);
        assert_eq!(page.items[99].key, b"/h/d00099/".to_vec());
        assert!(reads <= 170, "reads {reads}");
        assert!(page.cost <= 26_000, "cost {}", page.cost);
        assert!(page.rounds <= 3, "rounds {}", page.rounds);
    }

    #[test]
    fn a_directory_spanning_many_buckets_is_crossed_in_one_round() {
        // "/" holds 150,000 keys (about 590 buckets) before the numeric keys of the top level.
        let mut keys: Vec<Vec<u8>> = (0..250)
            .flat_map(|d| (0..600).map(move |k| format!("/h/d{d:04}/k{k:04}").into_bytes()))
            .collect();
        keys.extend((1..=30_000).map(|n: u32| format!("/small/{n}").into_bytes()));
        keys.extend((1..=30_000).map(|n: u32| n.to_string().into_bytes()));
        let src = MemSource::new(keys);
        let f = build(&src, 256);
        let tree = Mode::Tree { sep: b"/".to_vec() };
        let top = first_page(&src, &f, b"", b"", tree.clone());
        assert_eq!(top.items.len(), 100);
        assert_eq!(top.items[0].key, b"/".to_vec());
        assert_eq!(top.items[1].key, b"1".to_vec());
        assert!(top.rounds <= 3, "rounds {}", top.rounds);
        assert!(top.cost <= 1000, "cost {}", top.cost);
        let slash = first_page(&src, &f, b"/", b"/", tree);
        let names: Vec<&[u8]> = slash.items.iter().map(|i| i.key.as_slice()).collect();
        assert_eq!(names, [&b"/h/"[..], b"/small/"]);
        assert!(slash.rounds <= 3, "rounds {}", slash.rounds);
    }

    #[test]
    fn a_level_of_a_few_huge_directories_is_planned_past_each_of_them_in_one_round() {
        // Five directories of 30,000 keys, each about 1,900 buckets of 16: more than a round
        // walks over the fences, so each one used to end its round.
        let keys =
            (0..5).flat_map(|d| (0..30_000).map(move |k| format!("/d{d}/k{k:05}").into_bytes()));
        let src = MemSource::new(keys);
        let f = build(&src, 16);
        let tree = Mode::Tree { sep: b"/".to_vec() };
        let page = first_page(&src, &f, b"/", b"/", tree);
        let names: Vec<&[u8]> = page.items.iter().map(|i| i.key.as_slice()).collect();
        assert_eq!(names, [&b"/d0/"[..], b"/d1/", b"/d2/", b"/d3/", b"/d4/"]);
        assert_eq!(
            page.rounds,
            1,
            "reads per round {:?}",
            src.log.lock().unwrap()
        );
        assert!(page.cost <= 100, "cost {}", page.cost);
    }

    #[test]
    fn listings_with_the_index_match_listings_without_it() {
        let mut keys: Vec<Vec<u8>> = (1..=5000)
            .map(|n: u32| n.to_string().into_bytes())
            .collect();
        for d in 0..60 {
            for k in 0..(d * 13 % 70 + 1) {
                keys.push(format!("/dir{d:03}/k{k}").into_bytes());
            }
        }
        keys.push(b"/dir007".to_vec());
        keys.push(b"\xff\x00".to_vec());
        let src = MemSource::new(keys);
        for target in [2, 16, 300] {
            let f = build(&src, target);
            for prefix in [&b""[..], b"/", b"/dir01", b"2", b"/dir007/"] {
                for mode in [Mode::Flat, Mode::Tree { sep: b"/".to_vec() }] {
                    for limit in [1, 7, 100] {
                        let req = ListReq::first(prefix.to_vec(), mode.clone(), limit);
                        let with = list_all(&src, Some(&f), req.clone());
                        let without = list_all(&src, None, req);
                        assert_eq!(
                            with, without,
                            "target {target} prefix {prefix:?} {mode:?} limit {limit}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_stale_index_never_changes_what_is_listed() {
        // The index was built on one key set; then anchors (fence keys) and whole directories were
        // deleted and others created without the index hearing of it. Listings stay exact.
        let before: Vec<Vec<u8>> = (0..40)
            .flat_map(|d| (0..30).map(move |k| format!("/d{d:02}/k{k:02}").into_bytes()))
            .collect();
        let f = build(&MemSource::new(before.clone()), 16);
        let fence_keys: std::collections::HashSet<Vec<u8>> = f
            .buckets(b"", None, 10_000)
            .into_iter()
            .filter_map(|(hi, _)| hi)
            .collect();
        let mut after: Vec<Vec<u8>> = before
            .into_iter()
            .filter(|k| {
                !fence_keys.contains(k) && !k.starts_with(b"/d07/") && !k.starts_with(b"/d2")
            })
            .collect();
        after.extend((0..5).map(|i| format!("/d07x/new{i}").into_bytes()));
        after.extend((0..50).map(|i| format!("/d3{i:02}").into_bytes()));
        let src = MemSource::new(after);
        for prefix in [&b""[..], b"/", b"/d1"] {
            for mode in [Mode::Flat, Mode::Tree { sep: b"/".to_vec() }] {
                for limit in [1, 3, 100] {
                    let req = ListReq::first(prefix.to_vec(), mode.clone(), limit);
                    assert_eq!(
                        list_all(&src, Some(&f), req.clone()),
                        list_all(&src, None, req),
                        "prefix {prefix:?} {mode:?} limit {limit}"
                    );
                }
            }
        }
    }

    #[test]
    fn creates_and_deletes_keep_counts_and_split_oversized_buckets() {
        let mut f = Fences::new(4);
        for k in [&b"a"[..], b"b", b"c", b"d", b"e", b"f"] {
            f.push_scanned(k);
        }
        assert_eq!(f.len(), 2);
        let mut grew = false;
        for k in [&b"a1"[..], b"a2", b"a3", b"a4", b"a5"] {
            grew |= f.on_create(k);
        }
        assert!(grew, "bucket grew past 2x target");
        let req = f.oversized().expect("bucket grew past 2x target");
        assert_eq!(req.start, b"".to_vec());
        assert_eq!(req.end, Some(b"e".to_vec()));
        f.split(&req.start, b"a4".to_vec(), 4);
        assert_eq!(f.len(), 3);
        assert_eq!(f.total(), 11);
        for k in [&b"a4"[..], b"a5", b"b", b"c", b"d"] {
            f.on_delete(k);
        }
        assert_eq!(f.total(), 6);
        assert!(f.len() <= 3);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Directories of mixed sizes among plain keys, an index built before some keys were
        /// deleted and others created (its anchors may be gone): tree and flat listings with the
        /// index equal those without it.
        #[test]
        fn listings_over_a_stale_index_are_exact(
            sizes in proptest::collection::vec(1u32..400, 1..40),
            plain in 0u32..300,
            target in 2u64..300,
            drop_every in 2usize..9,
            added in proptest::collection::vec((0u32..40, 0u32..500), 0..30),
            limit in 1usize..120,
        ) {
            let mut keys: Vec<Vec<u8>> = (0..plain).map(|n| format!("/h/p{n}").into_bytes()).collect();
            for (d, n) in sizes.iter().enumerate() {
                keys.extend((0..*n).map(|k| format!("/h/d{d:03}/k{k:04}").into_bytes()));
            }
            let mut src = MemSource::new(keys);
            let f = build(&src, target);
            let doomed: Vec<Vec<u8>> = src.keys.iter().step_by(drop_every).cloned().collect();
            for k in doomed {
                src.keys.remove(&k);
            }
            for (d, k) in added {
                src.keys.insert(format!("/h/d{d:03}/n{k:04}").into_bytes());
            }
            for prefix in [&b"/h/"[..], b"/h/d001/", b""] {
                for mode in [Mode::Flat, Mode::Tree { sep: b"/".to_vec() }] {
                    let req = ListReq::first(prefix.to_vec(), mode.clone(), limit);
                    let with = list_all(&src, Some(&f), req.clone());
                    let without = list_all(&src, None, req);
                    proptest::prop_assert_eq!(with, without, "prefix {:?} {:?}", prefix, mode);
                }
            }
        }
    }
}
