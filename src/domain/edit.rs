//! Edits as the user meant them: a compare-and-swap on the key's revision, the lease kept unless the
//! request changes it, bytes exactly as sent. Parsing here turns a request body into an edit or a
//! clear 400/413; the etcd gateway carries it out as one txn.

use std::time::Duration;

use serde::Deserialize;

use crate::domain::key::b64_url_decode;
use crate::domain::record::KeyRecord;

/// etcd's default request size limit (`--max-request-bytes`, 1.5 MiB).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1536 * 1024;

/// Bytes etcd counts against its request limit for a CAS put: the key travels three times (compare,
/// put, and the read-back on conflict) plus protobuf framing, bounded generously.
pub fn request_size(key_len: usize, value_len: usize) -> usize {
    value_len + 3 * key_len + REQUEST_OVERHEAD
}

/// Framing of a CAS put txn beyond its key and value bytes (field tags, lengths, revision, lease,
/// raft header), rounded up.
pub const REQUEST_OVERHEAD: usize = 256;

/// Time etcd is allowed per key a prefix deletion removes, beyond the etcd timeout. Its one txn
/// compares and deletes every key under the prefix, so its apply grows with the count. On a
/// 3-member cluster on loopback (2 cores): 100,001 keys took 1.6 s idle, up to 3.5 s (the whole
/// request) beside another test's cluster, and a million 15.6 s through etcdboard: 16–35 µs a
/// key. This allows about three times the slower.
pub const DELETE_TIME_PER_KEY: Duration = Duration::from_micros(100);

/// The time a prefix deletion of `count` keys gets beyond the etcd timeout (a million keys: 100 s).
pub fn deletion_allowance(count: u64) -> Duration {
    DELETE_TIME_PER_KEY.saturating_mul(u32::try_from(count).unwrap_or(u32::MAX))
}

/// What happens to the key's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseChange {
    /// Keep whatever lease the key has (the default for an edit).
    Keep,
    /// Remove the lease: the key becomes permanent.
    Detach,
    /// Attach this existing lease.
    Attach(i64),
    /// Grant a new lease with this TTL (seconds) and attach it.
    Ttl(i64),
}

/// A compare-and-swap put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRequest {
    /// Key bytes.
    pub key: Vec<u8>,
    /// New value bytes.
    pub value: Vec<u8>,
    /// The key's mod_revision the user started from; 0 means "must not exist yet".
    pub expected_mod_revision: i64,
    /// Lease handling.
    pub lease: LeaseChange,
}

/// The result of a CAS write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written at this revision.
    Done {
        /// Cluster revision of the write.
        revision: i64,
    },
    /// The key changed since the user read it: what is there now (`None`: absent).
    Conflict {
        /// The key as it is now.
        current: Option<KeyRecord>,
        /// Revision of that read.
        revision: i64,
    },
}

/// A write attempt can fail without saying whether etcd applied it (the member died or timed out
/// after receiving it). When the write is then retried on another member, its compare fails on the
/// first attempt's own write. This tells that case from a real conflict: after a retry, a conflict
/// that shows exactly what this put writes (its value, and the lease it attaches when it attaches
/// one), at a newer revision than expected, is taken as done at that revision. Someone else may
/// have written the same value in between; the key then holds what the user asked for either way.
/// `granted` is the lease granted for this put, if any.
pub fn retried_put_outcome(
    req: &PutRequest,
    granted: Option<i64>,
    outcome: WriteOutcome,
) -> WriteOutcome {
    let WriteOutcome::Conflict {
        current: Some(now), ..
    } = &outcome
    else {
        return outcome;
    };
    let lease_as_written = match (&req.lease, granted) {
        (_, Some(id)) => now.lease == id,
        (LeaseChange::Attach(id), None) => now.lease == *id,
        (LeaseChange::Detach, None) => now.lease == 0,
        (LeaseChange::Keep | LeaseChange::Ttl(_), None) => true,
    };
    let newly_created = req.expected_mod_revision != 0 || now.version == 1;
    if now.value == req.value
        && now.mod_revision > req.expected_mod_revision
        && lease_as_written
        && newly_created
    {
        return WriteOutcome::Done {
            revision: now.mod_revision,
        };
    }
    outcome
}

/// The delete counterpart of [`retried_put_outcome`]: after a retry, a conflict that finds the key
/// gone is taken as this delete's own doing (the revision is that of the read, at or after it).
pub fn retried_delete_outcome(outcome: WriteOutcome) -> WriteOutcome {
    match outcome {
        WriteOutcome::Conflict {
            current: None,
            revision,
        } => WriteOutcome::Done { revision },
        other => other,
    }
}

/// The prefix counterpart of [`retried_delete_outcome`]: the keys a prefix deletion reports. Its
/// compare holds on an empty prefix, so a retry after an attempt that was applied without an
/// answer deletes nothing and succeeds; the `expected` keys it was confirmed for are then taken as
/// the earlier attempt's doing, not reported as 0.
pub fn retried_prefix_deleted(retried: bool, expected: u64, deleted: u64) -> u64 {
    match (retried, deleted) {
        (true, 0) => expected,
        _ => deleted,
    }
}

/// Why a request body is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// 400 with this message.
    Invalid(String),
    /// 413: the value is larger than the limit.
    TooLarge {
        /// Bytes sent.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::Invalid(m) => f.write_str(m),
            EditError::TooLarge { size, limit } => write!(
                f,
                "this write would be a {size}-byte request; etcd accepts at most {limit} bytes per request (--max-request-bytes), so the value must be smaller"
            ),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    key: Option<String>,
    key_b64: Option<String>,
    value: Option<String>,
    value_b64: Option<String>,
    expected_mod_revision: Option<i64>,
    ttl: Option<i64>,
    lease: Option<i64>,
}

/// Picks `text` or its base64 twin (exactly one must be present).
pub fn text_or_b64(
    text: Option<String>,
    b64: Option<&str>,
    name: &str,
) -> Result<Vec<u8>, EditError> {
    match (text, b64) {
        (Some(t), None) => Ok(t.into_bytes()),
        (None, Some(b)) => b64_url_decode(b)
            .ok_or_else(|| EditError::Invalid(format!("`{name}_b64` is not valid base64"))),
        (Some(_), Some(_)) => Err(EditError::Invalid(format!(
            "give `{name}` or `{name}_b64`, not both"
        ))),
        (None, None) => Err(EditError::Invalid(format!(
            "`{name}` (or `{name}_b64`) is required"
        ))),
    }
}

/// Parses the JSON body of `PUT …/key`.
pub fn parse_put(body: &[u8], max_value: usize) -> Result<PutRequest, EditError> {
    let b: PutBody = serde_json::from_slice(body)
        .map_err(|e| EditError::Invalid(format!("body is not the expected JSON: {e}")))?;
    let key = text_or_b64(b.key, b.key_b64.as_deref(), "key")?;
    if key.is_empty() {
        return Err(EditError::Invalid("`key` must not be empty".into()));
    }
    let value = text_or_b64(b.value, b.value_b64.as_deref(), "value")?;
    let size = request_size(key.len(), value.len());
    if size > max_value {
        return Err(EditError::TooLarge {
            size,
            limit: max_value,
        });
    }
    let expected_mod_revision = b.expected_mod_revision.ok_or_else(|| {
        EditError::Invalid(
            "`expected_mod_revision` is required: the key's mod_revision you edited, or 0 to create"
                .into(),
        )
    })?;
    if expected_mod_revision < 0 {
        return Err(EditError::Invalid(
            "`expected_mod_revision` must be >= 0".into(),
        ));
    }
    let lease = match (b.ttl, b.lease) {
        (Some(_), Some(_)) => {
            return Err(EditError::Invalid("give `ttl` or `lease`, not both".into()))
        }
        (Some(t), None) if (1..=10 * 365 * 86_400).contains(&t) => LeaseChange::Ttl(t),
        (Some(_), None) => {
            return Err(EditError::Invalid(
                "`ttl` must be 1 second to 10 years".into(),
            ))
        }
        (None, Some(0)) => LeaseChange::Detach,
        (None, Some(id)) => LeaseChange::Attach(id),
        (None, None) => LeaseChange::Keep,
    };
    Ok(PutRequest {
        key,
        value,
        expected_mod_revision,
        lease,
    })
}

/// One line of a line diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    /// In both.
    Same(String),
    /// Only in the old text.
    Removed(String),
    /// Only in the new text.
    Added(String),
}

/// A line diff (longest common subsequence). Inputs past `max_lines` lines are compared as a
/// whole (one removed block, one added block) so a huge value cannot cost quadratic time.
pub fn line_diff(old: &str, new: &str, max_lines: usize) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len() > max_lines || b.len() > max_lines {
        let mut out: Vec<DiffLine> = a.iter().map(|l| DiffLine::Removed(l.to_string())).collect();
        out.extend(b.iter().map(|l| DiffLine::Added(l.to_string())));
        return out;
    }
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n && j < m {
        if a[i] == b[j] {
            out.push(DiffLine::Same(a[i].to_string()));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(DiffLine::Removed(a[i].to_string()));
            i += 1;
        } else {
            out.push(DiffLine::Added(b[j].to_string()));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| DiffLine::Removed(l.to_string())));
    out.extend(b[j..].iter().map(|l| DiffLine::Added(l.to_string())));
    out
}

/// When two texts differ only in their line endings (CRLF against LF, or a newline at the end),
/// which a line diff cannot show: a sentence saying how, naming the sides as `names`.
pub fn line_ending_difference(a: &str, b: &str, names: (&str, &str)) -> Option<String> {
    if a == b {
        return None;
    }
    let bare = |t: &str| t.replace("\r\n", "\n");
    let (na, nb) = (bare(a), bare(b));
    let ending = |t: &str| {
        let crlf = t.matches("\r\n").count();
        let lf = t.matches('\n').count() - crlf;
        match (crlf, lf) {
            (0, 0) => "no line breaks",
            (_, 0) => "CRLF (\\r\\n) line endings",
            (0, _) => "LF (\\n) line endings",
            _ => "mixed CRLF and LF line endings",
        }
    };
    if na == nb {
        return Some(format!(
            "The versions differ only in line endings: {} has {}, {} {}.",
            names.0,
            ending(a),
            names.1,
            ending(b)
        ));
    }
    let trimmed = |t: &str| {
        t.strip_suffix('\n')
            .map(str::to_string)
            .unwrap_or_else(|| t.to_string())
    };
    if trimmed(&na) == trimmed(&nb) {
        let (with, without) = if na.ends_with('\n') {
            names
        } else {
            (names.1, names.0)
        };
        return Some(format!(
            "The versions differ only at the end: {with} ends with a line break, {without} does not."
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deletion_gets_time_for_each_key() {
        assert_eq!(deletion_allowance(0), Duration::ZERO);
        assert_eq!(deletion_allowance(1), DELETE_TIME_PER_KEY);
        assert_eq!(deletion_allowance(1_000_000), Duration::from_secs(100));
        // Counts past u32 do not wrap around to a short deadline.
        assert!(deletion_allowance(u64::MAX) >= deletion_allowance(u64::from(u32::MAX)));
    }

    fn record(value: &[u8], mod_revision: i64, version: i64, lease: i64) -> KeyRecord {
        KeyRecord {
            key: b"k".to_vec(),
            value: value.to_vec(),
            create_revision: mod_revision + 1 - version,
            mod_revision,
            version,
            lease,
            ttl: None,
        }
    }

    fn conflict(now: Option<KeyRecord>) -> WriteOutcome {
        WriteOutcome::Conflict {
            current: now,
            revision: 50,
        }
    }

    fn put(expected: i64, lease: LeaseChange) -> PutRequest {
        PutRequest {
            key: b"k".to_vec(),
            value: b"mine".to_vec(),
            expected_mod_revision: expected,
            lease,
        }
    }

    #[test]
    fn a_retried_put_that_finds_its_own_write_is_done() {
        let done = WriteOutcome::Done { revision: 42 };
        let edit = put(10, LeaseChange::Keep);
        assert_eq!(
            retried_put_outcome(&edit, None, conflict(Some(record(b"mine", 42, 3, 7)))),
            done
        );
        let ttl = put(10, LeaseChange::Ttl(60));
        assert_eq!(
            retried_put_outcome(&ttl, Some(99), conflict(Some(record(b"mine", 42, 3, 99)))),
            done
        );
        let create = put(0, LeaseChange::Keep);
        assert_eq!(
            retried_put_outcome(&create, None, conflict(Some(record(b"mine", 42, 1, 0)))),
            done
        );
    }

    #[test]
    fn a_retried_put_still_conflicts_when_the_key_is_not_as_it_wrote_it() {
        let cases = [
            // Someone else's value.
            (
                put(10, LeaseChange::Keep),
                None,
                record(b"theirs", 42, 3, 0),
            ),
            // Not newer than what the user saw: the user's own starting point.
            (put(42, LeaseChange::Keep), None, record(b"mine", 42, 3, 0)),
            // The granted lease is not the one attached.
            (
                put(10, LeaseChange::Ttl(60)),
                Some(99),
                record(b"mine", 42, 3, 5),
            ),
            (
                put(10, LeaseChange::Attach(5)),
                None,
                record(b"mine", 42, 3, 6),
            ),
            (
                put(10, LeaseChange::Detach),
                None,
                record(b"mine", 42, 3, 6),
            ),
            // "Must not exist yet", but the key has a history of its own.
            (put(0, LeaseChange::Keep), None, record(b"mine", 42, 2, 0)),
        ];
        for (req, granted, now) in cases {
            let outcome = conflict(Some(now));
            assert_eq!(
                retried_put_outcome(&req, granted, outcome.clone()),
                outcome,
                "{req:?}"
            );
        }
        let gone = conflict(None);
        assert_eq!(
            retried_put_outcome(&put(10, LeaseChange::Keep), None, gone.clone()),
            gone
        );
    }

    #[test]
    fn a_retried_delete_that_finds_the_key_gone_is_done() {
        assert_eq!(
            retried_delete_outcome(conflict(None)),
            WriteOutcome::Done { revision: 50 }
        );
        let other = conflict(Some(record(b"x", 42, 3, 0)));
        assert_eq!(retried_delete_outcome(other.clone()), other);
    }

    #[test]
    fn a_retried_prefix_deletion_that_finds_nothing_reports_what_it_was_confirmed_for() {
        assert_eq!(retried_prefix_deleted(true, 1000, 0), 1000);
        assert_eq!(retried_prefix_deleted(true, 1000, 1000), 1000);
        assert_eq!(retried_prefix_deleted(false, 1000, 0), 0);
        assert_eq!(retried_prefix_deleted(false, 5, 5), 5);
    }

    #[test]
    fn a_put_needs_the_revision_it_started_from() {
        let e = parse_put(br#"{"key":"a","value":"b"}"#, 1000).unwrap_err();
        assert!(e.to_string().contains("expected_mod_revision"));
        let p = parse_put(
            br#"{"key":"a","value":"b","expected_mod_revision":0}"#,
            1000,
        )
        .unwrap();
        assert_eq!(p.lease, LeaseChange::Keep);
        assert_eq!(p.expected_mod_revision, 0);
    }

    #[test]
    fn bytes_lease_and_size_are_parsed_exactly() {
        let p = parse_put(
            br#"{"key_b64":"_w","value_b64":"AAH_","expected_mod_revision":5,"ttl":30}"#,
            1000,
        )
        .unwrap();
        assert_eq!(
            (p.key, p.value, p.lease),
            (vec![0xff], vec![0, 1, 0xff], LeaseChange::Ttl(30))
        );
        let p = parse_put(
            br#"{"key":"a","value":"b","expected_mod_revision":5,"lease":0}"#,
            1000,
        )
        .unwrap();
        assert_eq!(p.lease, LeaseChange::Detach);
        assert!(matches!(
            parse_put(
                br#"{"key":"a","value":"0123456789","expected_mod_revision":1}"#,
                request_size(1, 9)
            ),
            Err(EditError::TooLarge { .. })
        ));
        assert!(parse_put(
            br#"{"key":"a","value":"b","value_b64":"Yg","expected_mod_revision":1}"#,
            1000
        )
        .is_err());
        assert!(parse_put(
            br#"{"key":"a","value":"b","expected_mod_revision":1,"extra":1}"#,
            1000
        )
        .is_err());
    }

    #[test]
    fn line_diff_marks_changes() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\nd\n", 100);
        assert_eq!(
            d,
            vec![
                DiffLine::Same("a".into()),
                DiffLine::Removed("b".into()),
                DiffLine::Added("B".into()),
                DiffLine::Same("c".into()),
                DiffLine::Added("d".into()),
            ]
        );
        assert_eq!(line_diff("x\ny", "z", 1).len(), 3);
    }

    #[test]
    fn differences_only_in_line_endings_are_said() {
        let names = ("revision 5", "revision 7");
        assert_eq!(line_ending_difference("a\nb\n", "a\nb\n", names), None);
        assert_eq!(
            line_ending_difference("a\r\nb\r\n", "a\nb\n", names).as_deref(),
            Some("The versions differ only in line endings: revision 5 has CRLF (\\r\\n) line endings, revision 7 LF (\\n) line endings.")
        );
        assert_eq!(
            line_ending_difference("a\nb", "a\nb\n", names).as_deref(),
            Some("The versions differ only at the end: revision 7 ends with a line break, revision 5 does not.")
        );
        assert_eq!(line_ending_difference("a\nb", "a\nc", names), None);
    }
}
