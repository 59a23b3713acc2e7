//! Export and import of a prefix. Export streams bounded pages read at one pinned revision (never
//! the whole prefix at once), byte-exact; import shows a dry run and applies with CAS in batches.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery as AxumQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::sync::mpsc;

use crate::app::AppState;
use crate::domain::access::Need;
use crate::domain::edit::{LeaseChange, PutRequest, WriteOutcome};
use crate::domain::key::{b64_std, display_text, key_after, RawQuery};
use crate::domain::listing::{ListReq, Mode};
use crate::domain::transfer::{plan, Action, Document, Entry, FORMAT_VERSION};
use crate::error::AppError;
use crate::web::auth::Caller;

/// Keys per export page.
const EXPORT_PAGE: usize = 500;
/// Keys per import batch (one read txn and one write txn each; etcd allows 128 ops).
const IMPORT_BATCH: usize = 100;
/// Conflicting keys listed in an import report (the counts are always complete).
const MAX_LISTED: usize = 1000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

fn entry_text(entry: &Entry, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string(entry).unwrap_or_default(),
        Format::Yaml => serde_yaml::to_string(&[entry])
            .unwrap_or_default()
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect(),
    }
}

/// `GET /api/v1/clusters/{cluster}/export?prefix=P&format=json|yaml`.
pub async fn export(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = state.cluster(&cluster)?.clone();
    let q = RawQuery::parse(query.as_deref());
    let prefix = q
        .bytes_or_b64("prefix")
        .map_err(AppError::BadRequest)?
        .unwrap_or_default();
    let format = match q.text("format").map_err(AppError::BadRequest)? {
        None | Some("json") => Format::Json,
        Some("yaml") => Format::Yaml,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "parameter `format` must be json or yaml, not `{other}`"
            )))
        }
    };
    let mut req = ListReq::first(prefix.clone(), Mode::Flat, EXPORT_PAGE);
    // The first page is read before answering, so a failure is a proper status, not a cut stream.
    let first = state.list(&c, &req).await?;
    let revision = first.revision;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let header_text = match format {
        Format::Json => format!(
            "{{\"etcdboard_export\":{FORMAT_VERSION},\"cluster\":{},\"prefix\":{},\"prefix_b64\":\"{}\",\"revision\":{revision},\"keys\":[\n",
            json!(c.name()),
            json!(display_text(&prefix)),
            b64_std(&prefix)
        ),
        Format::Yaml => format!(
            "etcdboard_export: {FORMAT_VERSION}\ncluster: {}\nprefix_b64: \"{}\"\nrevision: {revision}\nkeys:\n",
            json!(c.name()),
            b64_std(&prefix)
        ),
    };
    let state2 = state.clone();
    let name = c.name().to_string();
    tokio::spawn(async move {
        let mut page = first;
        let mut written = 0usize;
        let mut failure: Option<String> = None;
        if tx.send(Ok(Bytes::from(header_text))).await.is_err() {
            return;
        }
        loop {
            if let (Some(first_key), Some(last_key)) = (page.items.first(), page.items.last()) {
                match c
                    .values_in(
                        &first_key.key,
                        &key_after(&last_key.key),
                        revision,
                        page.items.len(),
                    )
                    .await
                {
                    Ok(read) => {
                        let mut chunk = String::new();
                        for rec in &read.value {
                            if format == Format::Json && written > 0 {
                                chunk.push_str(",\n");
                            }
                            chunk.push_str(&entry_text(
                                &Entry::new(&rec.key, &rec.value, rec.mod_revision),
                                format,
                            ));
                            written += 1;
                        }
                        if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
            let Some(next) = page.next.take() else { break };
            req.start = next.start;
            req.revision = Some(next.revision);
            req.hint = Some(next.hint);
            match state2.list(&c, &req).await {
                Ok(p) => page = p,
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let tail = match (format, &failure) {
            (Format::Json, None) => "\n]}\n".to_string(),
            (Format::Json, Some(e)) => format!("\n],\"error\":{}}}\n", json!(e)),
            (Format::Yaml, None) if written == 0 => String::new(),
            (Format::Yaml, None) => String::new(),
            (Format::Yaml, Some(e)) => format!("error: {}\n", json!(e)),
        };
        if let Some(e) = &failure {
            tracing::warn!(error = %e, "export stopped early; the document says so");
        }
        let _ = tx.send(Ok(Bytes::from(tail))).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let (ctype, ext) = match format {
        Format::Json => ("application/json", "json"),
        Format::Yaml => ("application/yaml", "yaml"),
    };
    let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{name}-rev{revision}.{ext}\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&revision.to_string()) {
        h.insert("x-export-revision", v);
    }
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// `POST /api/v1/clusters/{cluster}/import?dry_run=true|false&overwrite=false` with an export
/// document (JSON or YAML). Reports creates, updates, unchanged and conflicts; applies only when
/// `dry_run=false`, in CAS batches.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
    body: Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let c = &state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let flag = |name: &str, default: bool| -> Result<bool, AppError> {
        match q.text(name).map_err(AppError::BadRequest)? {
            None => Ok(default),
            Some("1" | "true") => Ok(true),
            Some("0" | "false") => Ok(false),
            Some(other) => Err(AppError::BadRequest(format!(
                "parameter `{name}` must be true or false, not `{other}`"
            ))),
        }
    };
    let dry_run = flag("dry_run", true)?;
    let overwrite = flag("overwrite", false)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| AppError::BadRequest("the document is not UTF-8 text".into()))?;
    let doc: Document = if text.trim_start().starts_with('{') {
        serde_json::from_str(text)
            .map_err(|e| AppError::BadRequest(format!("not an etcdboard export (JSON): {e}")))?
    } else {
        serde_yaml::from_str(text)
            .map_err(|e| AppError::BadRequest(format!("not an etcdboard export (YAML): {e}")))?
    };
    if doc.etcdboard_export != FORMAT_VERSION {
        return Err(AppError::BadRequest(format!(
            "unsupported export version {}",
            doc.etcdboard_export
        )));
    }
    if let Some(e) = &doc.error {
        return Err(AppError::BadRequest(format!(
            "this export is incomplete (it stopped early: {e}); nothing was imported"
        )));
    }
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (i, e) in doc.keys.unwrap_or_default().iter().enumerate() {
        let (k, v) = e
            .bytes()
            .map_err(|err| AppError::BadRequest(format!("keys[{i}]: {err}")))?;
        if k.len() + v.len() > state.config().max_value_bytes {
            return Err(AppError::TooLarge(format!(
                "keys[{i}] is larger than the {} byte limit",
                state.config().max_value_bytes
            )));
        }
        entries.push((k, v));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, _) in &entries {
        if !seen.insert(k.clone()) {
            return Err(AppError::BadRequest(format!(
                "key {} appears twice",
                crate::domain::format::display_bytes(k)
            )));
        }
    }
    // Every key must be the caller's to import before anything is written (or dry-run shown).
    for (k, _) in &entries {
        caller.require(&state, c.name(), Need::ImportKey(k))?;
    }
    let export_revision = doc
        .revision
        .filter(|_| doc.cluster.as_deref() == Some(c.name()));

    let mut counts = [0u64; 4];
    let idx = |a: Action| match a {
        Action::Create => 0,
        Action::Update => 1,
        Action::Unchanged => 2,
        Action::Conflict => 3,
    };
    let mut listed: Vec<serde_json::Value> = Vec::new();
    let mut note_conflict = |key: &[u8], reason: &str, counts: &mut [u64; 4]| {
        counts[3] += 1;
        if listed.len() < MAX_LISTED {
            listed.push(
                json!({ "key": display_text(key), "key_b64": b64_std(key), "reason": reason }),
            );
        }
    };
    for batch in entries.chunks(IMPORT_BATCH) {
        let keys: Vec<Vec<u8>> = batch.iter().map(|(k, _)| k.clone()).collect();
        let current = c.get_many(&keys).await?;
        let mut writes: Vec<(Vec<u8>, Vec<u8>, i64)> = Vec::new();
        for ((k, v), cur) in batch.iter().zip(&current) {
            let action = plan(
                v,
                cur.as_ref().map(|(cv, r)| (cv.as_slice(), *r)),
                export_revision,
            );
            let expected = cur.as_ref().map_or(0, |(_, r)| *r);
            match action {
                Action::Conflict if !overwrite => note_conflict(
                    k,
                    "changed in this cluster after the export was taken",
                    &mut counts,
                ),
                Action::Unchanged => counts[idx(action)] += 1,
                _ => {
                    let counted = if action == Action::Conflict {
                        Action::Update
                    } else {
                        action
                    };
                    counts[idx(counted)] += 1;
                    writes.push((k.clone(), v.clone(), expected));
                }
            }
        }
        if dry_run || writes.is_empty() {
            continue;
        }
        if c.put_many_cas(&writes).await? {
            for (k, _, expected) in &writes {
                caller.audit(&state, c.name(), "import", k, *expected, None, "ok");
            }
            continue;
        }
        // Someone changed a key of this batch between our read and our write: write the batch key
        // by key, each still a CAS on what we read, and report the ones that changed.
        for (k, v, expected) in writes {
            let req = PutRequest {
                key: k.clone(),
                value: v,
                expected_mod_revision: expected,
                lease: LeaseChange::Keep,
            };
            match c.put_cas(&req).await?.value {
                WriteOutcome::Done { revision } => caller.audit(
                    &state,
                    c.name(),
                    "import",
                    &k,
                    expected,
                    Some(revision),
                    "ok",
                ),
                WriteOutcome::Conflict { .. } => {
                    caller.audit(&state, c.name(), "import", &k, expected, None, "conflict");
                    let was_create = expected == 0;
                    counts[if was_create { 0 } else { 1 }] -= 1;
                    note_conflict(&k, "changed during the import", &mut counts);
                }
            }
        }
    }
    Ok(Json(json!({
        "dry_run": dry_run,
        "created": counts[0],
        "updated": counts[1],
        "unchanged": counts[2],
        "conflicts": counts[3],
        "conflict_keys": listed,
    })))
}
