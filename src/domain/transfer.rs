//! The export/import format: byte-exact (base64 always, text too when UTF-8), readable as JSON or
//! YAML, and the import plan (creates, updates, unchanged, conflicts) computed from it.

use serde::{Deserialize, Serialize};

use crate::domain::edit::{text_or_b64, EditError};
use crate::domain::key::{b64_std, display_text};

/// Format marker and version.
pub const FORMAT_VERSION: u32 = 1;

/// One exported key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Key as text (when UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Key bytes, standard base64 (authoritative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_b64: Option<String>,
    /// Value as text (when UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value bytes, standard base64 (authoritative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_b64: Option<String>,
    /// Revision the key was last modified at (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mod_revision: Option<i64>,
}

impl Entry {
    /// Builds the entry of a key and value.
    pub fn new(key: &[u8], value: &[u8], mod_revision: i64) -> Entry {
        Entry {
            key: display_text(key).map(str::to_string),
            key_b64: Some(b64_std(key)),
            value: display_text(value).map(str::to_string),
            value_b64: Some(b64_std(value)),
            mod_revision: Some(mod_revision),
        }
    }

    /// The exact key and value bytes (base64 wins over text when both are given).
    pub fn bytes(&self) -> Result<(Vec<u8>, Vec<u8>), EditError> {
        let key = match &self.key_b64 {
            Some(b) => text_or_b64(None, Some(b), "key")?,
            None => text_or_b64(self.key.clone(), None, "key")?,
        };
        let value = match &self.value_b64 {
            Some(b) => text_or_b64(None, Some(b), "value")?,
            None => text_or_b64(self.value.clone(), None, "value")?,
        };
        if key.is_empty() {
            return Err(EditError::Invalid("an entry has an empty key".into()));
        }
        Ok((key, value))
    }
}

/// A whole export document (the streamed export has exactly this shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    /// Format version ([`FORMAT_VERSION`]).
    pub etcdboard_export: u32,
    /// Cluster it was exported from.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Prefix exported (text when UTF-8).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Prefix bytes, base64.
    #[serde(default)]
    pub prefix_b64: Option<String>,
    /// Revision the export was read at.
    #[serde(default)]
    pub revision: Option<i64>,
    /// The keys (an empty YAML list may be written as nothing at all).
    #[serde(default)]
    pub keys: Option<Vec<Entry>>,
    /// Set when the export stopped early: such a document is incomplete and is not imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an import does to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Absent now: created (CAS: must still be absent).
    Create,
    /// Present with another value: replaced (CAS on its current mod_revision).
    Update,
    /// Present with the same value: left alone.
    Unchanged,
    /// Changed in this cluster after the export was taken: left alone unless overwriting.
    Conflict,
}

/// Decides what importing `value` over the current state does. `current` is `(value, mod_revision)`;
/// `export_revision` is set only when the export came from this same cluster, where a key modified
/// after the export revision holds a change the export never saw.
pub fn plan(value: &[u8], current: Option<(&[u8], i64)>, export_revision: Option<i64>) -> Action {
    match current {
        None => Action::Create,
        Some((v, _)) if v == value => Action::Unchanged,
        Some((_, rev)) if export_revision.is_some_and(|r| rev > r) => Action::Conflict,
        Some(_) => Action::Update,
    }
}

/// Bytes one export read aims at: the keys of the next read are chosen so that, at the average
/// value size seen so far, it holds about this much.
pub const EXPORT_READ_BYTES: usize = 4 * 1024 * 1024;
/// Keys of an export's first read, before anything is known of its values' sizes.
pub const EXPORT_FIRST_READ_KEYS: usize = 16;
/// Most an export read may decode. A read of more (values grew larger than those before them)
/// is refused by the client and asked again for half the keys, so one read never holds more.
pub const EXPORT_READ_MAX_BYTES: usize = 64 * 1024 * 1024;

/// How many keys an export's next read should take, after the last one read `keys` keys holding
/// `bytes` bytes: about [`EXPORT_READ_BYTES`] at their average size, at most twice as many as
/// the last time (sizes change along a key space), at least 1 and at most `max`.
pub fn next_export_keys(keys: usize, bytes: usize, max: usize) -> usize {
    let keys = keys.max(1);
    let average = (bytes / keys).max(1);
    (EXPORT_READ_BYTES / average).clamp(1, keys.saturating_mul(2).min(max).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_reads_aim_at_a_few_mib_and_grow_at_most_twofold() {
        // Small values: the reads grow, doubling, up to the page.
        assert_eq!(next_export_keys(16, 16 * 100, 500), 32);
        assert_eq!(next_export_keys(256, 256 * 100, 500), 500);
        // 1 MiB values: four keys a read.
        assert_eq!(next_export_keys(16, 16 << 20, 500), 4);
        // Values larger than the target: one at a time.
        assert_eq!(next_export_keys(4, 40 << 20, 500), 1);
        // Nothing read (empty values) or nothing asked: never zero, never past the page.
        assert_eq!(next_export_keys(0, 0, 500), 2);
        assert_eq!(next_export_keys(500, 0, 500), 500);
        assert_eq!(next_export_keys(1, 0, 0), 1);
    }

    #[test]
    fn entries_round_trip_bytes_and_prefer_base64() {
        let e = Entry::new(b"/k\xff", b"\x00v", 9);
        assert_eq!(e.key, None);
        assert_eq!(e.bytes().unwrap(), (b"/k\xff".to_vec(), b"\x00v".to_vec()));
        let text_only = Entry {
            key: Some("a".into()),
            key_b64: None,
            value: Some("b".into()),
            value_b64: None,
            mod_revision: None,
        };
        assert_eq!(text_only.bytes().unwrap(), (b"a".to_vec(), b"b".to_vec()));
    }

    #[test]
    fn the_plan_never_overwrites_a_change_the_export_did_not_see() {
        assert_eq!(plan(b"v", None, Some(10)), Action::Create);
        assert_eq!(plan(b"v", Some((b"v", 50)), Some(10)), Action::Unchanged);
        assert_eq!(plan(b"v", Some((b"w", 50)), Some(10)), Action::Conflict);
        assert_eq!(plan(b"v", Some((b"w", 5)), Some(10)), Action::Update);
        assert_eq!(plan(b"v", Some((b"w", 50)), None), Action::Update);
    }
}
