//! Write endpoints of the JSON API. Every write is a CAS in etcd (see [`crate::etcd::writes`]);
//! every mutation leaves one audit line (who when known, cluster, key, old → new revision; never
//! the value).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery as AxumQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::domain::access::Need;
use crate::domain::edit::{parse_put, text_or_b64, EditError, WriteOutcome};
use crate::domain::key::{b64_std, display_text, RawQuery};
use crate::error::AppError;
use crate::etcd::gateway::{EtcdCluster, EtcdError};
use crate::etcd::writes::{DeletePrefixOutcome, LeaseInfo};
use crate::web::api::{key_json, required_key};
use crate::web::auth::Caller;

fn edit_error(e: EditError) -> AppError {
    match e {
        EditError::Invalid(m) => AppError::BadRequest(m),
        too_large @ EditError::TooLarge { .. } => AppError::TooLarge(too_large.to_string()),
    }
}

fn conflict(
    outcome_current: Option<&crate::domain::record::KeyRecord>,
    revision: i64,
    what: &str,
) -> AppError {
    let current = outcome_current.map(|rec| key_json(rec, revision, false));
    let message = match outcome_current {
        Some(rec) => format!(
            "{what}: the key changed since you read it (it is now at revision {}); nothing was written",
            rec.mod_revision
        ),
        None => format!("{what}: the key no longer exists (or already exists) since you read it; nothing was written"),
    };
    AppError::Conflict(message, json!({ "current": current, "revision": revision }))
}

/// The audit result of a change that failed: `unknown` when no member answered in time (etcd may
/// still have applied it), else `error`.
pub(crate) fn failure_result(e: &EtcdError) -> String {
    match outcome_unknown(e) {
        true => format!("unknown: {e} (it may have been applied)"),
        false => format!("error: {e}"),
    }
}

/// True when a change failed without saying whether etcd applied it: no member answered in time,
/// or the one asked stopped after receiving it.
fn outcome_unknown(e: &EtcdError) -> bool {
    match e {
        // Refused before anything was sent (see `delete_prefix_cas`).
        EtcdError::Unavailable { detail, .. } => !detail.starts_with(crate::etcd::writes::NOT_SENT),
        EtcdError::MemberUnavailable { sent, .. } => *sent,
        _ => false,
    }
}

/// The error a change's caller gets; when its outcome is unknown, it says so (still a 503), so
/// nobody takes a deletion that went through late for one that did not happen.
fn write_failed(e: EtcdError) -> AppError {
    match outcome_unknown(&e) {
        true => {
            tracing::warn!(error = %e, "a change's outcome is unknown");
            AppError::Timeout(format!(
                "{e}; the change may still have been applied: reload to see"
            ))
        }
        false => AppError::Etcd(e),
    }
}

/// `PUT /api/v1/clusters/{cluster}/key` with `{"key"|"key_b64", "value"|"value_b64",
/// "expected_mod_revision", "ttl"?, "lease"?}`.
pub async fn put_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let req = parse_put(&body, state.config().max_value_bytes).map_err(edit_error)?;
    caller.require_to(&state, c.name(), Need::WriteKey(&req.key), "put", &req.key)?;
    let audit = |new_revision: Option<i64>, result: &str| {
        caller.audit(
            &state,
            c.name(),
            "put",
            &req.key,
            req.expected_mod_revision,
            new_revision,
            result,
        )
    };
    let read = c
        .put_cas(&req)
        .await
        .inspect_err(|e| audit(None, &failure_result(e)))
        .map_err(write_failed)?;
    match read.value {
        WriteOutcome::Done { revision } => {
            audit(Some(revision), "ok");
            Ok(Json(
                json!({ "revision": revision, "mod_revision": revision }),
            ))
        }
        WriteOutcome::Conflict { current, revision } => {
            audit(None, "conflict");
            Err(conflict(current.as_ref(), revision, "not saved"))
        }
    }
}

/// `DELETE /api/v1/clusters/{cluster}/key?key=K&expected_mod_revision=N`.
pub async fn delete_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let key = required_key(&q)?;
    let expected = q
        .text("expected_mod_revision")
        .map_err(AppError::BadRequest)?
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| AppError::BadRequest("parameter `expected_mod_revision` (the key's mod_revision you saw, > 0) is required".into()))?;
    caller.require_to(&state, c.name(), Need::WriteKey(&key), "delete", &key)?;
    let audit = |new_revision: Option<i64>, result: &str| {
        caller.audit(
            &state,
            c.name(),
            "delete",
            &key,
            expected,
            new_revision,
            result,
        )
    };
    let read = c
        .delete_cas(&key, expected)
        .await
        .inspect_err(|e| audit(None, &failure_result(e)))
        .map_err(write_failed)?;
    match read.value {
        WriteOutcome::Done { revision } => {
            audit(Some(revision), "ok");
            Ok(Json(json!({ "revision": revision })))
        }
        WriteOutcome::Conflict { current, revision } => {
            audit(None, "conflict");
            Err(conflict(current.as_ref(), revision, "not deleted"))
        }
    }
}

/// `GET /api/v1/clusters/{cluster}/delete-prefix?prefix=P`: what deleting P would remove.
pub async fn delete_prefix_preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let prefix = q
        .bytes_or_b64("prefix")
        .map_err(AppError::BadRequest)?
        .unwrap_or_default();
    let read = c.prefix_preview(&prefix, 20).await?;
    let sample: Vec<_> = read
        .value
        .sample
        .iter()
        .map(|k| json!({ "key": display_text(k), "key_b64": b64_std(k) }))
        .collect();
    Ok(Json(json!({
        "prefix": display_text(&prefix),
        "prefix_b64": b64_std(&prefix),
        "count": read.value.count,
        "sample": sample,
        "revision": read.revision,
        "stale": read.stale,
        // Whether this caller could delete it now (the POST checks again).
        "allowed": (!prefix.is_empty() || state.config().allow_delete_all)
            && caller.require(&state, c.name(), Need::DeletePrefix(&prefix)).is_ok(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeletePrefixBody {
    prefix: Option<String>,
    prefix_b64: Option<String>,
    expected_count: Option<u64>,
    /// The `revision` of the preview the user confirmed: a key created or changed after it makes
    /// the deletion refuse (without it, only a changed count does).
    revision: Option<i64>,
}

/// `POST /api/v1/clusters/{cluster}/delete-prefix` with `{"prefix"|"prefix_b64", "expected_count",
/// "revision"}` (`revision`: the preview's, recommended).
pub async fn delete_prefix(
    State(state): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let b: DeletePrefixBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("body is not the expected JSON: {e}")))?;
    let prefix = text_or_b64(b.prefix, b.prefix_b64.as_deref(), "prefix").map_err(edit_error)?;
    let expected = b.expected_count.ok_or_else(|| {
        AppError::BadRequest("`expected_count` (the count you were shown) is required".into())
    })?;
    caller.require_to(
        &state,
        c.name(),
        Need::DeletePrefix(&prefix),
        "delete-prefix",
        &prefix,
    )?;
    if prefix.is_empty() && !state.config().allow_delete_all {
        let why = "deleting the empty prefix (every key) is disabled; start etcdboard with --allow-delete-all to permit it";
        caller.audit_denied(&state, c.name(), "delete-prefix", b"", &why);
        return Err(AppError::Forbidden(why.into()));
    }
    // Without the revision the count was read at, keys changed since could not be told apart.
    let revision = b.revision.filter(|r| *r > 0).ok_or_else(|| {
        AppError::BadRequest(
            "`revision` (the revision of the preview you confirmed, from GET …/delete-prefix) is required"
                .into(),
        )
    })?;
    let outcome = c
        .delete_prefix_cas(&prefix, expected, Some(revision))
        .await
        .inspect_err(|e| {
            caller.audit(
                &state,
                c.name(),
                "delete-prefix",
                &prefix,
                0,
                None,
                &failure_result(e),
            )
        })
        .map_err(write_failed)?;
    match outcome {
        DeletePrefixOutcome::Done { deleted, revision } => {
            caller.audit(
                &state,
                c.name(),
                "delete-prefix",
                &prefix,
                0,
                Some(revision),
                &format!("deleted {deleted}"),
            );
            Ok(Json(json!({ "deleted": deleted, "revision": revision })))
        }
        DeletePrefixOutcome::Changed { count } => {
            caller.audit(
                &state,
                c.name(),
                "delete-prefix",
                &prefix,
                0,
                None,
                "changed",
            );
            Err(AppError::Conflict(
                format!("the prefix changed since you looked (it holds {count} keys now, you confirmed {expected}); nothing was deleted"),
                json!({ "count": count }),
            ))
        }
    }
}

/// `GET /api/v1/clusters/{cluster}/history?key=K&before=REV&limit=N`: retained versions, newest first.
pub async fn history(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let key = required_key(&q)?;
    let before = match q.text("before").map_err(AppError::BadRequest)? {
        None => None,
        Some(t) => Some(t.parse::<i64>().ok().filter(|r| *r > 0).ok_or_else(|| {
            AppError::BadRequest("parameter `before` must be a revision > 0".into())
        })?),
    };
    let limit = q
        .text("limit")
        .map_err(AppError::BadRequest)?
        .map(|t| t.parse::<usize>().ok().filter(|n| (1..=200).contains(n)))
        .unwrap_or(Some(50))
        .ok_or_else(|| AppError::BadRequest("parameter `limit` must be 1..=200".into()))?;
    let mut page = c.history(&key, before, limit).await?;
    let mut deleted = None;
    if page.versions.is_empty() && before.is_none() && !page.compacted {
        // A key deleted while etcdboard watched: its versions end just before the deletion.
        deleted = c.index().deleted_at(&key);
        let Some(rev) = deleted else {
            return Err(AppError::NotFound(
                "key not found (nor seen deleted by etcdboard; give before=REVISION to read its history)"
                    .into(),
            ));
        };
        page = c.history(&key, Some(rev - 1), limit).await?;
    }
    Ok(Json(json!({
        "versions": page.versions.iter().map(|r| key_json(r, r.mod_revision, false)).collect::<Vec<_>>(),
        "compacted": page.compacted,
        "older": page.older,
        "deleted_revision": deleted,
        "stale": page.stale,
    })))
}

/// Keys listed per lease by `GET …/leases` unless `keys=N` says otherwise.
const LEASE_KEYS_DEFAULT: usize = 100;
/// Most keys `keys=N` may name (without it, `GET …/leases/{id}` lists all of one lease's keys).
const LEASE_KEYS_MAX: usize = 10_000;

/// A lease as the API shows it, with the keys read. `key_count` is null when etcd's list of them
/// is too large to read (see [`LeaseInfo::key_count`]).
fn lease_json(l: &LeaseInfo) -> serde_json::Value {
    json!({
        "id": l.id,
        "id_hex": format!("{:016x}", l.id),
        "ttl": l.ttl,
        "granted_ttl": l.granted_ttl,
        "key_count": l.key_count,
        "keys": l.keys.iter().map(|k| json!({ "key": display_text(k), "key_b64": b64_std(k) })).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/clusters/{cluster}/leases?keys=N`: every lease (the first 500), each with its key
/// count and its first `N` keys (default 100).
pub async fn leases(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let keys = keys_param(query.as_deref(), LEASE_KEYS_DEFAULT)?;
    let leases = c.leases(500, keys).await?;
    Ok(Json(json!(leases
        .iter()
        .map(lease_json)
        .collect::<Vec<_>>())))
}

/// `GET /api/v1/clusters/{cluster}/leases/{id}?keys=N`: one lease with its key count and its first
/// `N` keys (default all); 404 when it does not exist (or expired).
pub async fn lease(
    State(state): State<AppState>,
    Path((cluster, id)): Path<(String, String)>,
    AxumQuery(query): AxumQuery,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let keys = keys_param(query.as_deref(), usize::MAX)?;
    let info = live_lease(c, &id, keys).await?;
    Ok(Json(lease_json(&info)))
}

/// The `keys=N` parameter of the lease reads: how many keys to list per lease.
fn keys_param(query: Option<&str>, default: usize) -> Result<usize, AppError> {
    RawQuery::parse(query)
        .text("keys")
        .map_err(AppError::BadRequest)?
        .map(|t| t.parse::<usize>().ok().filter(|n| *n <= LEASE_KEYS_MAX))
        .unwrap_or(Some(default))
        .ok_or_else(|| {
            AppError::BadRequest(format!("parameter `keys` must be 0..={LEASE_KEYS_MAX}"))
        })
}

/// The lease `text` names with its first `keys` keys, read now; 400 for a malformed id, 404 when
/// it does not exist.
async fn live_lease(c: &EtcdCluster, text: &str, keys: usize) -> Result<LeaseInfo, AppError> {
    let id = parse_lease_id(text).ok_or_else(|| {
        AppError::BadRequest("lease id must be decimal, or hex with a 0x prefix".into())
    })?;
    let info = c.lease_info(id, keys).await?;
    if info.ttl < 0 {
        return Err(AppError::NotFound(format!(
            "lease {id:x} does not exist (or expired)"
        )));
    }
    Ok(info)
}

/// A lease id as the API takes it: hex with a `0x` prefix, else decimal. Bare hex is accepted only
/// when it cannot be read as decimal (it has a letter a–f): `1234` is always decimal, so a hex id
/// of digits only never revokes another lease.
fn parse_lease_id(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok();
    }
    text.parse::<i64>()
        .ok()
        .or_else(|| i64::from_str_radix(text, 16).ok())
}

/// `DELETE /api/v1/clusters/{cluster}/leases/{id}`: revokes the lease (its keys are deleted).
pub async fn revoke_lease(
    State(state): State<AppState>,
    caller: Caller,
    Path((cluster, id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let info = live_lease(c, &id, usize::MAX).await?;
    let id = info.id;
    let keys = info.keys;
    if info.key_count.is_none() {
        return Err(AppError::Conflict(
            format!(
                "lease {id:x} has too many keys for etcdboard to list (etcd's list of them is over \
                 4 MiB), so it can neither show nor check which keys revoking it would delete; \
                 nothing was revoked. If they may all go, revoke it with \
                 `etcdctl lease revoke {id:x}`."
            ),
            json!({ "key_count": null }),
        ));
    }
    // Revoking deletes every key attached: the caller must be allowed to delete each of them
    // (read-only prefixes such as /registry/ bind admins too).
    for k in &keys {
        caller.require_to(&state, c.name(), Need::WriteKey(k), "revoke-lease", k)?;
    }
    let revision = c
        .revoke_lease(id, keys.len())
        .await
        .inspect_err(|e| {
            caller.audit(
                &state,
                c.name(),
                "revoke-lease",
                b"",
                0,
                None,
                &format!("lease {id:x}: {}", failure_result(e)),
            )
        })
        .map_err(write_failed)?;
    if keys.is_empty() {
        caller.audit(
            &state,
            c.name(),
            "revoke-lease",
            b"",
            0,
            Some(revision),
            &format!("lease {id:x}, no keys"),
        );
    }
    for k in &keys {
        caller.audit(
            &state,
            c.name(),
            "revoke-lease",
            k,
            0,
            Some(revision),
            &format!("lease {id:x}"),
        );
    }
    Ok(Json(
        json!({ "revision": revision, "deleted_keys": keys.len() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_are_decimal_or_0x_hex_and_never_ambiguous() {
        assert_eq!(parse_lease_id("1234"), Some(1234));
        assert_eq!(parse_lease_id("0x1234"), Some(0x1234));
        assert_eq!(
            parse_lease_id("694d8a1b2c3d4e5f"),
            Some(0x694d_8a1b_2c3d_4e5f)
        );
        assert_eq!(parse_lease_id("0xzz"), None);
        assert_eq!(parse_lease_id(""), None);
    }
}
