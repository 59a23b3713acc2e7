//! How an import is carried out, decided without I/O: which keys go into which write txn (bounded
//! by etcd's op count and its request size limit), what each key's state makes of it, and the
//! report of what happened. The handler reads, writes and audits; this decides and counts.

use serde_json::json;

use crate::domain::edit::request_size;
use crate::domain::key::{b64_std, display_text};
use crate::domain::record::KeyRecord;
use crate::domain::transfer::{plan, Action};

/// Keys per write txn: each is one compare and one put, and etcd allows 128 ops per txn
/// (`--max-txn-ops`).
pub const MAX_BATCH_KEYS: usize = 100;

/// Keys listed by name in each list of a report (the counts are always complete).
pub const MAX_LISTED: usize = 1000;

/// The entries of an import grouped into write txns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batches {
    /// Indices of the entries of each txn, in document order.
    pub txns: Vec<Vec<usize>>,
    /// Entries whose own put is larger than etcd accepts: never written, reported per key.
    pub too_large: Vec<usize>,
}

/// Groups `(key, value)` entries, in order, into txns of at most `max_keys` keys whose CAS puts
/// together stay within `max_bytes` (etcd's `--max-request-bytes`), each put counted as
/// [`request_size`]. An entry too large on its own goes to [`Batches::too_large`] instead of
/// failing the txn it would share with others.
pub fn batches(entries: &[(Vec<u8>, Vec<u8>)], max_keys: usize, max_bytes: usize) -> Batches {
    let mut out = Batches::default();
    let mut txn: Vec<usize> = Vec::new();
    let mut bytes = 0usize;
    for (i, (k, v)) in entries.iter().enumerate() {
        let size = request_size(k.len(), v.len());
        if size > max_bytes {
            out.too_large.push(i);
            continue;
        }
        if !txn.is_empty() && (txn.len() >= max_keys.max(1) || bytes + size > max_bytes) {
            out.txns.push(std::mem::take(&mut txn));
            bytes = 0;
        }
        txn.push(i);
        bytes += size;
    }
    if !txn.is_empty() {
        out.txns.push(txn);
    }
    out
}

/// One put an import makes: a CAS on the revision read just before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Key bytes.
    pub key: Vec<u8>,
    /// Value bytes.
    pub value: Vec<u8>,
    /// The key's mod_revision as read (0: absent).
    pub expected: i64,
}

impl Write {
    /// Whether this put creates the key.
    pub fn creates(&self) -> bool {
        self.expected == 0
    }
}

/// What an import did (or, in a dry run, would do), key by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    dry_run: bool,
    created: u64,
    updated: u64,
    unchanged: u64,
    conflicts: u64,
    conflict_keys: Vec<serde_json::Value>,
    too_large: u64,
    too_large_keys: Vec<serde_json::Value>,
}

impl Report {
    /// An empty report.
    pub fn new(dry_run: bool) -> Report {
        Report {
            dry_run,
            ..Report::default()
        }
    }

    /// Whether nothing is written.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Decides what importing `value` over `current` (`(value, mod_revision)`, `None`: absent)
    /// does, counts what is left alone, and returns the put to make, if any. A create or update is
    /// counted only once [`Report::written`] says it happened (at once in a dry run).
    pub fn decide(
        &mut self,
        key: &[u8],
        value: &[u8],
        current: Option<(&[u8], i64)>,
        export_revision: Option<i64>,
        overwrite: bool,
    ) -> Option<Write> {
        let expected = current.map_or(0, |(_, r)| r);
        match plan(value, current, export_revision) {
            Action::Unchanged => {
                self.unchanged += 1;
                None
            }
            Action::Conflict if !overwrite => {
                self.conflict(key, "changed in this cluster after the export was taken");
                None
            }
            Action::Create | Action::Update | Action::Conflict => {
                let w = Write {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    expected,
                };
                if self.dry_run {
                    self.written(&w);
                }
                Some(w)
            }
        }
    }

    /// Counts a put that was applied (or, in a dry run, would be).
    pub fn written(&mut self, w: &Write) {
        if w.creates() {
            self.created += 1;
        } else {
            self.updated += 1;
        }
    }

    /// Counts a key left alone because it changed, listing it with `reason`.
    pub fn conflict(&mut self, key: &[u8], reason: &str) {
        self.conflicts += 1;
        if self.conflict_keys.len() < MAX_LISTED {
            self.conflict_keys.push(
                json!({ "key": display_text(key), "key_b64": b64_std(key), "reason": reason }),
            );
        }
    }

    /// Counts a key not written because etcd does not accept a request that large.
    pub fn too_large(&mut self, key: &[u8], size: usize, limit: usize) {
        self.too_large += 1;
        if self.too_large_keys.len() < MAX_LISTED {
            let reason = format!(
                "a {size}-byte write; etcd accepts at most {limit} bytes per request (--max-request-bytes)"
            );
            self.too_large_keys.push(
                json!({ "key": display_text(key), "key_b64": b64_std(key), "reason": reason }),
            );
        }
    }

    /// Keys written so far (0 in a dry run).
    pub fn keys_written(&self) -> u64 {
        if self.dry_run {
            0
        } else {
            self.created + self.updated
        }
    }

    /// The JSON answer.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "conflicts": self.conflicts,
            "conflict_keys": self.conflict_keys,
            "too_large": self.too_large,
            "too_large_keys": self.too_large_keys,
            "written": self.keys_written(),
        })
    }

    /// The JSON answer of an import that stopped part-way on `error`: what was done before it,
    /// and a message that says so (a bare error would hide that keys were already written).
    /// `in_doubt` is how many keys the failed write carried when its outcome is unknown (no
    /// member answered): they may have been written too.
    pub fn stopped(&self, error: &str, in_doubt: usize) -> serde_json::Value {
        let written = self.keys_written();
        let mut message = format!(
            "the import stopped part-way: {error}. {written} key{} had already been written",
            if written == 1 { "" } else { "s" }
        );
        if in_doubt > 0 {
            message.push_str(&format!(
                ", and the last write ({in_doubt} key{}) may or may not have been applied",
                if in_doubt == 1 { "" } else { "s" }
            ));
        }
        message
            .push_str("; a dry run shows what is left, importing the document again finishes it");
        let mut body = self.to_json();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("error".into(), json!(message));
            obj.insert("stopped".into(), json!(true));
        }
        body
    }
}

/// After a batch write was retried (an earlier attempt failed without an answer) and the retry's
/// compare failed: the revision the earlier attempt wrote the batch at, when `found` (each key as
/// it is now, in order) shows it — every key holds exactly its value, without a lease, all at one
/// mod_revision newer than expected (one txn wrote them all). `None`: a real conflict.
pub fn batch_written_at(
    entries: &[(Vec<u8>, Vec<u8>, i64)],
    found: &[Option<KeyRecord>],
) -> Option<i64> {
    if found.len() != entries.len() || entries.is_empty() {
        return None;
    }
    let mut at = None;
    for ((_, value, expected), now) in entries.iter().zip(found) {
        let now = now.as_ref()?;
        if now.value != *value || now.lease != 0 || now.mod_revision <= *expected {
            return None;
        }
        match at {
            None => at = Some(now.mod_revision),
            Some(r) if r != now.mod_revision => return None,
            Some(_) => {}
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(value: &[u8], mod_revision: i64, lease: i64) -> Option<KeyRecord> {
        Some(KeyRecord {
            key: Vec::new(),
            value: value.to_vec(),
            create_revision: 1,
            mod_revision,
            version: 2,
            lease,
            ttl: None,
        })
    }

    #[test]
    fn a_retried_batch_finds_its_own_write_or_a_real_conflict() {
        let batch = vec![
            (b"/a".to_vec(), b"1".to_vec(), 5),
            (b"/b".to_vec(), b"2".to_vec(), 0),
        ];
        assert_eq!(
            batch_written_at(&batch, &[rec(b"1", 9, 0), rec(b"2", 9, 0)]),
            Some(9)
        );
        // Different revisions: not one txn. Another value, a lease, an absent key, the old
        // revision: someone else's doing.
        for found in [
            vec![rec(b"1", 9, 0), rec(b"2", 10, 0)],
            vec![rec(b"1", 9, 0), rec(b"x", 9, 0)],
            vec![rec(b"1", 9, 7), rec(b"2", 9, 0)],
            vec![rec(b"1", 9, 0), None],
            vec![rec(b"1", 5, 0), rec(b"2", 5, 0)],
        ] {
            assert_eq!(batch_written_at(&batch, &found), None, "{found:?}");
        }
    }
    use crate::domain::edit::{DEFAULT_MAX_VALUE_BYTES, REQUEST_OVERHEAD};

    fn entries(sizes: &[usize]) -> Vec<(Vec<u8>, Vec<u8>)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("/k/{i:03}").into_bytes(), vec![b'v'; *n]))
            .collect()
    }

    #[test]
    fn small_keys_are_batched_by_count() {
        let e = entries(&[10; 250]);
        let b = batches(&e, MAX_BATCH_KEYS, DEFAULT_MAX_VALUE_BYTES);
        let lens: Vec<usize> = b.txns.iter().map(Vec::len).collect();
        assert_eq!(lens, [100, 100, 50]);
        assert!(b.too_large.is_empty());
        let all: Vec<usize> = b.txns.concat();
        assert_eq!(
            all,
            (0..250).collect::<Vec<_>>(),
            "every key once, in order"
        );
    }

    #[test]
    fn ten_values_of_200_kib_fit_in_txns_etcd_accepts() {
        let e = entries(&[200 * 1024; 10]);
        let b = batches(&e, MAX_BATCH_KEYS, DEFAULT_MAX_VALUE_BYTES);
        assert!(b.txns.len() > 1, "not one 2 MB txn");
        assert_eq!(b.txns.concat(), (0..10).collect::<Vec<_>>());
        for txn in &b.txns {
            let bytes: usize = txn
                .iter()
                .map(|&i| request_size(e[i].0.len(), e[i].1.len()))
                .sum();
            assert!(bytes <= DEFAULT_MAX_VALUE_BYTES, "{bytes}");
        }
    }

    #[test]
    fn a_txn_is_cut_exactly_at_the_byte_limit() {
        let key_len = "/k/000".len();
        let one = request_size(key_len, 100);
        assert_eq!(one, 100 + 3 * key_len + REQUEST_OVERHEAD);
        // Three puts fit exactly; a fourth starts the next txn.
        let b = batches(&entries(&[100; 4]), MAX_BATCH_KEYS, 3 * one);
        assert_eq!(b.txns, vec![vec![0, 1, 2], vec![3]]);
        let b = batches(&entries(&[100; 4]), MAX_BATCH_KEYS, 3 * one - 1);
        assert_eq!(b.txns, vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn a_key_too_large_alone_is_set_aside_and_the_rest_still_batched() {
        let limit = 4096;
        let b = batches(&entries(&[10, 5000, 10, limit, 10]), MAX_BATCH_KEYS, limit);
        assert_eq!(
            b.too_large,
            vec![1, 3],
            "the value plus its overhead is over the limit"
        );
        assert_eq!(b.txns, vec![vec![0, 2, 4]]);
        let fits = limit - request_size("/k/000".len(), 0);
        let b = batches(&entries(&[fits]), MAX_BATCH_KEYS, limit);
        assert_eq!(b.txns, vec![vec![0]], "exactly at the limit is accepted");
    }

    #[test]
    fn a_large_key_never_shares_a_txn_it_would_overflow() {
        let limit = 10_000;
        let b = batches(&entries(&[100, 9700, 100, 100]), MAX_BATCH_KEYS, limit);
        assert_eq!(b.txns, vec![vec![0], vec![1], vec![2, 3]]);
        assert!(batches(&[], MAX_BATCH_KEYS, limit).txns.is_empty());
    }

    #[test]
    fn the_report_counts_writes_only_once_they_happen() {
        let mut r = Report::new(false);
        let create = r.decide(b"/a", b"1", None, Some(10), false);
        let update = r.decide(b"/b", b"2", Some((b"old", 5)), Some(10), false);
        assert_eq!(
            r.decide(b"/c", b"3", Some((b"3", 50)), Some(10), false),
            None
        );
        assert_eq!(
            r.decide(b"/d", b"4", Some((b"x", 50)), Some(10), false),
            None
        );
        let forced = r.decide(b"/e", b"5", Some((b"x", 50)), Some(10), true);
        assert_eq!(
            create,
            Some(Write {
                key: b"/a".to_vec(),
                value: b"1".to_vec(),
                expected: 0
            })
        );
        assert_eq!(update.as_ref().map(|w| w.expected), Some(5));
        assert_eq!(forced.as_ref().map(|w| w.expected), Some(50));
        let j = r.to_json();
        assert_eq!(
            (j["created"].clone(), j["updated"].clone()),
            (json!(0), json!(0))
        );
        assert_eq!(j["unchanged"], 1);
        assert_eq!(j["conflicts"], 1);
        assert_eq!(j["conflict_keys"][0]["key"], "/d");
        for w in [create, update, forced].iter().flatten() {
            r.written(w);
        }
        let j = r.to_json();
        assert_eq!(
            (j["created"].clone(), j["updated"].clone()),
            (json!(1), json!(2))
        );
        assert_eq!(j["written"], 3);
    }

    #[test]
    fn a_dry_run_counts_what_it_would_write_and_writes_nothing() {
        let mut r = Report::new(true);
        assert!(r.decide(b"/a", b"1", None, None, false).is_some());
        r.too_large(b"/big", 2_000_000, DEFAULT_MAX_VALUE_BYTES);
        let j = r.to_json();
        assert_eq!(j["created"], 1);
        assert_eq!(j["written"], 0);
        assert_eq!(j["too_large"], 1);
        assert_eq!(j["too_large_keys"][0]["key"], "/big");
        assert!(j["too_large_keys"][0]["reason"]
            .as_str()
            .is_some_and(|s| s.contains("2000000-byte")));
    }

    #[test]
    fn a_stopped_import_says_how_many_keys_were_written() {
        let mut r = Report::new(false);
        for k in [b"/a", b"/b"] {
            if let Some(w) = r.decide(k, b"v", None, None, false) {
                r.written(&w);
            }
        }
        let j = r.stopped("etcd rejected the request: boom", 0);
        assert_eq!(j["written"], 2);
        assert_eq!(j["stopped"], true);
        let msg = j["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains("boom") && msg.contains("2 keys had already been written"),
            "{msg}"
        );
        let j = r.stopped("no member answered", 7);
        let msg = j["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains("7 keys) may or may not have been applied"),
            "{msg}"
        );
    }
}
