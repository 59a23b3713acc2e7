//! Writes, each a single etcd txn guarded by a compare on the revision the user saw, so nothing is
//! ever overwritten unseen: CAS put (lease kept unless changed), CAS delete, delete of a prefix that
//! refuses when the prefix changed, plus history, leases and export reads.

use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, LeaseTimeToLiveOptions, PutOptions, Txn, TxnOp,
    TxnOpResponse,
};
use futures::{stream, StreamExt, TryStreamExt};

use crate::domain::edit::{
    deletion_allowance, retried_delete_outcome, retried_prefix_deleted, retried_put_outcome,
    LeaseChange, PutRequest, WriteOutcome,
};
use crate::domain::key::prefix_end;
use crate::domain::record::{KeyRecord, Read};
use crate::domain::transfer::EXPORT_READ_MAX_BYTES;
use crate::etcd::gateway::{kv, kv_up_to, record_of, too_large, EtcdCluster, EtcdError};

/// The detail of an `Unavailable` error given before any write was sent (so nothing happened).
pub const NOT_SENT: &str = "no quorum: nothing is deleted without it";

/// What a prefix deletion would remove.
#[derive(Debug, Clone)]
pub struct PrefixPreview {
    /// Keys under the prefix.
    pub count: u64,
    /// The first few of them.
    pub sample: Vec<Vec<u8>>,
}

/// Result of a prefix deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletePrefixOutcome {
    /// Deleted this many keys at this revision.
    Done {
        /// Keys deleted.
        deleted: u64,
        /// Revision of the delete.
        revision: i64,
    },
    /// The prefix changed since the user saw its count: nothing was deleted.
    Changed {
        /// Keys under the prefix now.
        count: u64,
    },
}

/// One version of a key from its retained history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// Versions, newest first.
    pub versions: Vec<KeyRecord>,
    /// Older versions exist but were compacted away.
    pub compacted: bool,
    /// Where to continue (the revision to read older versions at), if there are more.
    pub older: Option<i64>,
    /// Read without quorum from one member's local copy: may be out of date.
    pub stale: bool,
}

/// A lease with what is attached to it.
#[derive(Debug, Clone)]
pub struct LeaseInfo {
    /// Lease id.
    pub id: i64,
    /// Seconds left (-1: expired).
    pub ttl: i64,
    /// TTL it was granted with.
    pub granted_ttl: i64,
    /// How many keys are attached; `None` when etcd's list of them is larger than etcd-client
    /// lets a lease answer be (gRPC's 4 MiB: on the order of 80,000 keys of 50 bytes), so they
    /// cannot be listed or counted here.
    pub key_count: Option<usize>,
    /// The first of them in byte order, as many as asked for (none when they cannot be listed).
    pub keys: Vec<Vec<u8>>,
}

/// How many leases' keys are read at once: a lease's TTL call goes to the leader (a follower
/// forwards it), so a list of hundreds of leases would otherwise cost hundreds of round trips in
/// a row.
const LEASE_READS_IN_FLIGHT: usize = 8;

/// The outcome of a CAS txn whose failure branch reads the key back: written, or what is there now.
fn cas_outcome(resp: &etcd_client::TxnResponse) -> (WriteOutcome, i64) {
    let rev = resp.header().map_or(0, |h| h.revision());
    if resp.succeeded() {
        return (WriteOutcome::Done { revision: rev }, rev);
    }
    let current = resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(g) => Some(g.kvs().first().map(record_of)),
        _ => None,
    });
    (
        WriteOutcome::Conflict {
            current: current.flatten(),
            revision: rev,
        },
        rev,
    )
}

fn range_end_or_all(prefix: &[u8]) -> Vec<u8> {
    prefix_end(prefix).unwrap_or_else(|| vec![0])
}

fn range_start(prefix: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        vec![0]
    } else {
        prefix.to_vec()
    }
}

impl EtcdCluster {
    /// A compare-and-swap put: written only if the key's mod_revision is still the expected one.
    pub async fn put_cas(&self, req: &PutRequest) -> Result<Read<WriteOutcome>, EtcdError> {
        let granted = match req.lease {
            LeaseChange::Ttl(ttl) => Some(
                self.write(|mut c, _| async move {
                    let r = c.lease_grant(ttl, None).await?;
                    let rev = r.header().map_or(0, |h| h.revision());
                    Ok((r.id(), rev))
                })
                .await?
                .value,
            ),
            _ => None,
        };
        let result = self
            .write_noting_retries(|mut c, _| {
                let req = req.clone();
                async move {
                    let mut opts = PutOptions::new();
                    match (req.lease.clone(), granted) {
                        (_, Some(id)) | (LeaseChange::Attach(id), _) => opts = opts.with_lease(id),
                        (LeaseChange::Keep, _) if req.expected_mod_revision > 0 => {
                            opts = opts.with_ignore_lease()
                        }
                        _ => {}
                    }
                    let txn = Txn::new()
                        .when([Compare::mod_revision(
                            req.key.clone(),
                            CompareOp::Equal,
                            req.expected_mod_revision,
                        )])
                        .and_then([TxnOp::put(req.key.clone(), req.value.clone(), Some(opts))])
                        .or_else([TxnOp::get(req.key.clone(), None)]);
                    Ok(cas_outcome(&c.txn(txn).await?))
                }
            })
            .await
            .map(|(read, retried)| match retried {
                false => read,
                true => Read {
                    value: retried_put_outcome(req, granted, read.value),
                    ..read
                },
            });
        // A lease granted for a put that certainly did not happen would only linger: give it back.
        // Not when the outcome is unknown (no answer in time): the put may still have been applied
        // with that lease, and revoking it would delete the key. It then expires with its TTL.
        let not_written = match &result {
            Ok(Read {
                value: WriteOutcome::Conflict { current, .. },
                ..
            }) => current.as_ref().map(|now| now.lease) != granted,
            Err(EtcdError::Rejected(_) | EtcdError::Config { .. }) => true,
            Err(EtcdError::MemberUnavailable { sent, .. }) => !sent,
            Ok(_) | Err(EtcdError::Unavailable { .. } | EtcdError::Compacted(_)) => false,
        };
        if let (Some(id), true) = (granted, not_written) {
            let _ = self
                .write(|mut c, _| async move {
                    c.lease_revoke(id).await?;
                    Ok(((), 0))
                })
                .await;
        }
        result
    }

    /// A compare-and-swap delete of one key.
    pub async fn delete_cas(
        &self,
        key: &[u8],
        expected_mod_revision: i64,
    ) -> Result<Read<WriteOutcome>, EtcdError> {
        let key = key.to_vec();
        self.write_noting_retries(|mut c, _| {
            let key = key.clone();
            async move {
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        key.clone(),
                        CompareOp::Equal,
                        expected_mod_revision,
                    )])
                    .and_then([TxnOp::delete(key.clone(), None)])
                    .or_else([TxnOp::get(key.clone(), None)]);
                Ok(cas_outcome(&c.txn(txn).await?))
            }
        })
        .await
        .map(|(read, retried)| match retried {
            false => read,
            true => Read {
                value: retried_delete_outcome(read.value),
                ..read
            },
        })
        .inspect(|read| {
            if let WriteOutcome::Done { revision } = read.value {
                self.index().note_deleted(&key, revision);
            }
        })
    }

    /// How many keys a prefix holds and the first few of them (one counting read: it is O(prefix),
    /// acceptable for a deliberate deletion, never used for browsing).
    pub async fn prefix_preview(
        &self,
        prefix: &[u8],
        sample: usize,
    ) -> Result<Read<PrefixPreview>, EtcdError> {
        let (start, end) = (range_start(prefix), range_end_or_all(prefix));
        // etcd counts by walking every key under the prefix: on an idle 3-member cluster here (2
        // cores) a million keys took 0.2–0.4 s, but 383,232 keys 0.55–1.4 s on one with a large
        // history; past a page's budget. Three etcd timeouts, so that a large count is not taken
        // for lost quorum.
        self.read_large(self.timeout().saturating_mul(3), |mut c, at| {
            let (start, end) = (start.clone(), end.clone());
            async move {
                let mut o = GetOptions::new()
                    .with_range(end)
                    .with_keys_only()
                    .with_limit(sample.max(1) as i64)
                    .with_serializable();
                if let Some(rev) = at {
                    o = o.with_revision(rev);
                }
                let r = c.get(start, Some(o)).await?;
                let rev = r.header().map_or(0, |h| h.revision());
                Ok((
                    PrefixPreview {
                        count: r.count().max(0) as u64,
                        sample: r.kvs().iter().map(|kv| kv.key().to_vec()).collect(),
                    },
                    rev,
                ))
            }
        })
        .await
    }

    /// Deletes every key under `prefix`, but only if it still holds `expected_count` keys and none
    /// was created or changed since `seen_revision` (the revision of the preview the user confirmed;
    /// without it, since this call's own count).
    pub async fn delete_prefix_cas(
        &self,
        prefix: &[u8],
        expected_count: u64,
        seen_revision: Option<i64>,
    ) -> Result<DeletePrefixOutcome, EtcdError> {
        let seen = self.prefix_preview(prefix, 1).await?;
        if seen.stale {
            return Err(EtcdError::Unavailable {
                cluster: self.name().to_string(),
                waited_ms: 0,
                detail: NOT_SENT.into(),
            });
        }
        if seen.value.count != expected_count {
            return Ok(DeletePrefixOutcome::Changed {
                count: seen.value.count,
            });
        }
        // A revision the cluster has not reached was not seen by anyone: it would let every
        // change since the preview through.
        if seen_revision.is_some_and(|r| r > seen.revision) {
            return Err(EtcdError::Rejected(format!(
                "revision {} is newer than the cluster's current revision",
                seen_revision.unwrap_or_default()
            )));
        }
        let (start, end) = (range_start(prefix), range_end_or_all(prefix));
        let at = seen_revision.unwrap_or(seen.revision);
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let out = self
            .write_given(deletion_allowance(expected_count), |mut c, _| {
                let (start, end) = (start.clone(), end.clone());
                let retried = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0;
                async move {
                    // Every key still there was last changed at or before the counted revision:
                    // nothing was created or modified in between.
                    let txn = Txn::new()
                        .when([Compare::mod_revision(
                            start.clone(),
                            CompareOp::Less,
                            at.saturating_add(1),
                        )
                        .with_range(end.clone())])
                        .and_then([TxnOp::delete(
                            start.clone(),
                            Some(DeleteOptions::new().with_range(end.clone())),
                        )])
                        .or_else([TxnOp::get(
                            start,
                            Some(GetOptions::new().with_range(end).with_count_only()),
                        )]);
                    let resp = c.txn(txn).await?;
                    let rev = resp.header().map_or(0, |h| h.revision());
                    let mut deleted = 0;
                    let mut count = 0;
                    for op in resp.op_responses() {
                        match op {
                            TxnOpResponse::Delete(d) => deleted = d.deleted().max(0) as u64,
                            TxnOpResponse::Get(g) => count = g.count().max(0) as u64,
                            _ => {}
                        }
                    }
                    let outcome = if resp.succeeded() {
                        DeletePrefixOutcome::Done {
                            deleted: retried_prefix_deleted(retried, expected_count, deleted),
                            revision: rev,
                        }
                    } else {
                        DeletePrefixOutcome::Changed { count }
                    };
                    Ok((outcome, rev))
                }
            })
            .await?;
        Ok(out.value)
    }

    /// Up to `max` versions of `key`, newest first, starting at revision `at` (latest when `None`).
    /// Stops at the key's creation or where etcd has compacted its history. When the key was
    /// created again after a deletion etcdboard saw, `older` leads on into the earlier life.
    pub async fn history(
        &self,
        key: &[u8],
        at: Option<i64>,
        max: usize,
    ) -> Result<HistoryPage, EtcdError> {
        let mut versions: Vec<KeyRecord> = Vec::new();
        let mut rev = at;
        let mut compacted = false;
        let mut stale = false;
        while versions.len() < max {
            let key = key.to_vec();
            let got = self
                .read(rev, |c, serializable| {
                    let key = key.clone();
                    async move {
                        let mut o = GetOptions::new();
                        if let Some(r) = rev {
                            o = o.with_revision(r);
                        }
                        if serializable {
                            o = o.with_serializable();
                        }
                        let r = kv(&c).get(key, Some(o)).await?;
                        let head = r.header().map_or(0, |h| h.revision());
                        Ok((r.kvs().first().map(record_of), head))
                    }
                })
                .await;
            match got {
                Ok(read) => {
                    stale |= read.stale;
                    match read.value {
                        Some(rec) => {
                            let created = rec.version <= 1;
                            rev = Some(rec.mod_revision - 1);
                            if created {
                                // The key's creation: its versions go on before it only in an
                                // earlier life, which ended at a deletion the index saw.
                                rev = self
                                    .index()
                                    .deleted_before(&key, rec.create_revision)
                                    .map(|d| d - 1);
                                versions.push(rec);
                                break;
                            }
                            versions.push(rec);
                        }
                        None => {
                            rev = None;
                            break;
                        }
                    }
                }
                Err(EtcdError::Compacted(_)) => {
                    compacted = true;
                    rev = None;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(HistoryPage {
            versions,
            compacted,
            stale,
            older: rev.filter(|r| *r > 0),
        })
    }

    /// Every lease with its TTL and its first `keys` attached keys: the `max` leases of lowest id
    /// (etcd lists them in no order). Only those keys are kept: a few hundred leases of tens of
    /// thousands of keys each would otherwise all be held at once.
    pub async fn leases(&self, max: usize, keys: usize) -> Result<Vec<LeaseInfo>, EtcdError> {
        let listed = self
            .read(None, |mut c, _| async move {
                let r = c.leases().await?;
                let rev = r.header().map_or(0, |h| h.revision());
                Ok((r.leases().iter().map(|l| l.id()).collect::<Vec<_>>(), rev))
            })
            .await?;
        let (mut ids, stale) = (listed.value, listed.stale);
        ids.sort_unstable();
        let count = ids.len();
        stream::iter(ids.into_iter().take(max))
            .map(|id| self.lease_info(id, keys))
            .buffered(LEASE_READS_IN_FLIGHT)
            .try_collect()
            .await
            .map_err(|e| match e {
                // A member without quorum lists its leases, but their TTLs and keys are the
                // leader's to tell: say that, not which member timed out.
                EtcdError::Unavailable {
                    cluster, waited_ms, ..
                } if stale => EtcdError::Unavailable {
                    cluster,
                    waited_ms,
                    detail: format!(
                        "no quorum: a lease's TTL and keys are known only to the leader, and \
                         no member has one; a member's local copy lists {count} lease{}",
                        if count == 1 { "" } else { "s" }
                    ),
                },
                e => e,
            })
    }

    /// One lease's TTL, key count and first `keep` keys (see [`LeaseInfo::key_count`] for when
    /// they cannot be listed).
    pub async fn lease_info(&self, id: i64, keep: usize) -> Result<LeaseInfo, EtcdError> {
        self.read(None, |mut c, _| async move {
            let with_keys = Some(LeaseTimeToLiveOptions::new().with_keys());
            let (r, listed) = match c.lease_time_to_live(id, with_keys).await {
                // etcd-client offers no way to raise its lease client's 4 MiB limit on an
                // answer, and etcd has no paged form of this call: ask again for the TTL alone.
                Err(e) if too_large(&e) => (c.lease_time_to_live(id, None).await?, false),
                r => (r?, true),
            };
            let rev = r.header().map_or(0, |h| h.revision());
            // etcd lists them in no particular order.
            let mut keys = if listed {
                r.keys().to_vec()
            } else {
                Vec::new()
            };
            keys.sort_unstable();
            let key_count = listed.then_some(keys.len());
            keys.truncate(keep);
            Ok((
                LeaseInfo {
                    id,
                    ttl: r.ttl(),
                    granted_ttl: r.granted_ttl(),
                    key_count,
                    keys,
                },
                rev,
            ))
        })
        .await
        .map(|r| r.value)
    }

    /// Revokes a lease: every key attached to it is deleted by etcd.
    pub async fn revoke_lease(&self, id: i64, keys: usize) -> Result<i64, EtcdError> {
        let keys = u64::try_from(keys).unwrap_or(u64::MAX);
        self.write_given(deletion_allowance(keys), |mut c, _| async move {
            let r = c.lease_revoke(id).await?;
            let rev = r.header().map_or(0, |h| h.revision());
            Ok((rev, rev))
        })
        .await
        .map(|r| r.value)
    }

    /// Keys with values in `[start, end)` at `revision`, at most `limit` (used by export, where the
    /// range was first bounded by a listing page so it holds about `limit` keys). An answer over
    /// [`EXPORT_READ_MAX_BYTES`] fails with [`EtcdError::is_too_large`]: ask for fewer keys.
    pub async fn values_in(
        &self,
        start: &[u8],
        end: &[u8],
        revision: i64,
        limit: usize,
    ) -> Result<Read<Vec<KeyRecord>>, EtcdError> {
        let (start, end) = (start.to_vec(), end.to_vec());
        self.read(Some(revision), |c, serializable| {
            let (start, end) = (start.clone(), end.clone());
            async move {
                let mut o = GetOptions::new()
                    .with_range(end)
                    .with_revision(revision)
                    .with_limit(limit as i64);
                if serializable {
                    o = o.with_serializable();
                }
                let r = kv_up_to(&c, EXPORT_READ_MAX_BYTES)
                    .get(start, Some(o))
                    .await?;
                Ok((r.kvs().iter().map(record_of).collect(), revision))
            }
        })
        .await
    }

    /// The current value and mod_revision of each key (one txn; at most 128 keys).
    pub async fn get_many(
        &self,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<(Vec<u8>, i64)>>, EtcdError> {
        let keys = keys.to_vec();
        self.read(None, |c, serializable| {
            let keys = keys.clone();
            async move {
                let ops: Vec<TxnOp> = keys
                    .iter()
                    .map(|k| {
                        let o = if serializable {
                            GetOptions::new().with_serializable()
                        } else {
                            GetOptions::new()
                        };
                        TxnOp::get(k.clone(), Some(o))
                    })
                    .collect();
                let resp = kv(&c).txn(Txn::new().and_then(ops)).await?;
                let rev = resp.header().map_or(0, |h| h.revision());
                let out = resp
                    .op_responses()
                    .into_iter()
                    .map(|op| match op {
                        TxnOpResponse::Get(g) => g
                            .kvs()
                            .first()
                            .map(|kv| (kv.value().to_vec(), kv.mod_revision())),
                        _ => None,
                    })
                    .collect();
                Ok((out, rev))
            }
        })
        .await
        .map(|r| r.value)
    }

    /// Puts all `(key, value, expected_mod_revision)` in one txn, only if every key is still at its
    /// expected revision (0: absent). Returns the revision of the write, or `None`, writing
    /// nothing, when any key changed. Every key is written without a lease (an existing key's
    /// lease is detached), as an import restores keys, not their leases. At most 128 entries, and
    /// together within etcd's request size limit (the caller batches them).
    pub async fn put_many_cas(
        &self,
        entries: &[(Vec<u8>, Vec<u8>, i64)],
    ) -> Result<Option<i64>, EtcdError> {
        let entries = entries.to_vec();
        self.write_noting_retries(|mut c, retried| {
            let entries = entries.clone();
            async move {
                let compares: Vec<Compare> = entries
                    .iter()
                    .map(|(k, _, rev)| Compare::mod_revision(k.clone(), CompareOp::Equal, *rev))
                    .collect();
                // A put without options attaches no lease: etcd sets the key's lease to none.
                let puts: Vec<TxnOp> = entries
                    .iter()
                    .map(|(k, v, _)| TxnOp::put(k.clone(), v.clone(), None))
                    .collect();
                let mut txn = Txn::new().when(compares).and_then(puts);
                if retried {
                    // An earlier attempt may have been applied without an answer: read the keys
                    // back to recognise it.
                    txn = txn.or_else(
                        entries
                            .iter()
                            .map(|(k, _, _)| TxnOp::get(k.clone(), None))
                            .collect::<Vec<_>>(),
                    );
                }
                let resp = c.txn(txn).await?;
                let rev = resp.header().map_or(0, |h| h.revision());
                if resp.succeeded() {
                    return Ok((Some(rev), rev));
                }
                Ok((retried.then(|| own_batch(&entries, &resp)).flatten(), rev))
            }
        })
        .await
        .map(|(read, _)| read.value)
    }
}

/// What a failed retry's read-back (`resp`) holds for each key of the batch, in order.
fn own_batch(entries: &[(Vec<u8>, Vec<u8>, i64)], resp: &etcd_client::TxnResponse) -> Option<i64> {
    let found: Vec<Option<KeyRecord>> = resp
        .op_responses()
        .into_iter()
        .map(|op| match op {
            TxnOpResponse::Get(g) => g.kvs().first().map(record_of),
            _ => None,
        })
        .collect();
    crate::domain::import::batch_written_at(entries, &found)
}
