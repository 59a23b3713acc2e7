//! Keys deleted recently, and at which revision: etcd keeps a deleted key's versions until
//! compaction but has no read that finds where they end, so the history of a key deleted while
//! etcdboard watched starts from what its watch saw. Bounded: the oldest deletions are forgotten
//! first, and very long keys are not remembered at all.

use std::collections::{HashMap, VecDeque};

/// Deletions remembered at most.
pub const MAX_REMEMBERED: usize = 4096;
/// Longer keys are not remembered (the memory bound is `MAX_REMEMBERED × MAX_KEY_BYTES`).
pub const MAX_KEY_BYTES: usize = 1024;

/// Deletions of one key remembered at most: enough to walk a re-created key's history back
/// through a few earlier lives.
pub const LIVES: usize = 4;

/// One key's remembered deletions.
#[derive(Debug, Default)]
struct KeyNotes {
    /// Deletion revisions, oldest first (at most [`LIVES`]).
    deletions: Vec<i64>,
    /// Created again since the last deletion (so that deletion no longer ends its history).
    recreated: bool,
    /// Sequence number of the latest note about it.
    seq: u64,
}

/// Recent deletions by key, oldest forgotten first.
#[derive(Debug, Default)]
pub struct RecentDeletions {
    by_key: HashMap<Vec<u8>, KeyNotes>,
    /// Notes in the order they were made; stale ones (superseded by a later note of the same key)
    /// are skipped when they come up for eviction.
    order: VecDeque<(Vec<u8>, u64)>,
    seq: u64,
}

impl RecentDeletions {
    /// `key` was deleted at `revision`.
    pub fn deleted(&mut self, key: &[u8], revision: i64) {
        if key.len() > MAX_KEY_BYTES {
            return;
        }
        self.seq += 1;
        let notes = self.by_key.entry(key.to_vec()).or_default();
        if notes.deletions.last() != Some(&revision) {
            notes.deletions.push(revision);
        }
        if notes.deletions.len() > LIVES {
            notes.deletions.remove(0);
        }
        notes.recreated = false;
        notes.seq = self.seq;
        self.order.push_back((key.to_vec(), self.seq));
        while self.by_key.len() > MAX_REMEMBERED || self.order.len() > 2 * MAX_REMEMBERED {
            let Some((old, seq)) = self.order.pop_front() else {
                break;
            };
            if self.by_key.get(&old).is_some_and(|n| n.seq == seq) {
                self.by_key.remove(&old);
            }
        }
    }

    /// `key` exists again: its last deletion no longer ends its history (but still separates
    /// this life from the one before, see [`Self::deleted_before`]).
    pub fn created(&mut self, key: &[u8]) {
        if let Some(notes) = self.by_key.get_mut(key) {
            notes.recreated = true;
        }
    }

    /// The revision `key` was last deleted at, while it has not been created again.
    pub fn deleted_at(&self, key: &[u8]) -> Option<i64> {
        self.by_key
            .get(key)
            .filter(|n| !n.recreated)
            .and_then(|n| n.deletions.last().copied())
    }

    /// The latest remembered deletion of `key` before `revision`: where the life before the one
    /// created at `revision` ended.
    pub fn deleted_before(&self, key: &[u8], revision: i64) -> Option<i64> {
        self.by_key
            .get(key)?
            .deletions
            .iter()
            .rev()
            .find(|d| **d < revision)
            .copied()
    }

    /// Deletions remembered now.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when none is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_deletion_until_the_key_is_created_again() {
        let mut d = RecentDeletions::default();
        d.deleted(b"/a", 10);
        assert_eq!(d.deleted_at(b"/a"), Some(10));
        d.created(b"/a");
        assert_eq!(d.deleted_at(b"/a"), None);
        d.deleted(b"/a", 12);
        d.deleted(b"/a", 15);
        assert_eq!(d.deleted_at(b"/a"), Some(15));
        assert_eq!(d.deleted_at(b"/b"), None);
    }

    #[test]
    fn earlier_lives_of_a_recreated_key_are_found_by_their_deletions() {
        let mut d = RecentDeletions::default();
        // Lives: created 5, deleted 10; created 20, deleted 30; created 40 (exists).
        d.deleted(b"/a", 10);
        d.created(b"/a");
        d.deleted(b"/a", 30);
        d.created(b"/a");
        assert_eq!(d.deleted_before(b"/a", 40), Some(30));
        assert_eq!(d.deleted_before(b"/a", 20), Some(10));
        assert_eq!(d.deleted_before(b"/a", 5), None);
        assert_eq!(d.deleted_before(b"/b", 40), None);
        // At most LIVES deletions per key are kept, the oldest forgotten.
        for rev in 100..(100 + LIVES as i64 + 2) {
            d.deleted(b"/a", rev);
        }
        assert_eq!(d.deleted_before(b"/a", 40), None);
        assert_eq!(d.deleted_before(b"/a", 1000), Some(100 + LIVES as i64 + 1));
    }

    #[test]
    fn is_bounded_and_forgets_the_oldest_first() {
        let mut d = RecentDeletions::default();
        for i in 0..(MAX_REMEMBERED + 10) {
            d.deleted(format!("/k{i}").as_bytes(), i as i64 + 1);
        }
        assert_eq!(d.len(), MAX_REMEMBERED);
        assert_eq!(d.deleted_at(b"/k0"), None);
        assert_eq!(d.deleted_at(b"/k9"), None);
        assert_eq!(d.deleted_at(b"/k10"), Some(11));
        // The same key deleted over and over takes one place, and the queue stays bounded.
        for rev in 0..(10 * MAX_REMEMBERED as i64) {
            d.deleted(b"/hot", rev);
        }
        assert_eq!(d.deleted_at(b"/hot"), Some(10 * MAX_REMEMBERED as i64 - 1));
        assert!(d.order.len() <= 2 * MAX_REMEMBERED);
        assert!(d.len() <= MAX_REMEMBERED);
    }

    #[test]
    fn very_long_keys_are_not_remembered() {
        let mut d = RecentDeletions::default();
        d.deleted(&[b'x'; MAX_KEY_BYTES + 1], 5);
        assert!(d.is_empty());
    }
}
