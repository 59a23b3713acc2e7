//! What etcd says about one key, in domain terms.

/// One key with its value and metadata, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key bytes.
    pub key: Vec<u8>,
    /// The value bytes.
    pub value: Vec<u8>,
    /// Revision of the key's creation.
    pub create_revision: i64,
    /// Revision of its last modification (the CAS token for edits).
    pub mod_revision: i64,
    /// Number of modifications since creation.
    pub version: i64,
    /// Lease id, 0 when none.
    pub lease: i64,
    /// Remaining TTL of the lease in seconds; `None` when there is no lease or it could not be read.
    pub ttl: Option<i64>,
}

/// A read result with where it came from.
#[derive(Debug, Clone)]
pub struct Read<T> {
    /// The data.
    pub value: T,
    /// The cluster revision the read saw.
    pub revision: i64,
    /// True when no member with quorum answered and a member's local (possibly stale) copy was used.
    pub stale: bool,
}
