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
use crate::domain::edit::{request_size, LeaseChange, PutRequest, WriteOutcome};
use crate::domain::import::{batches, Report, Write, MAX_BATCH_KEYS};
use crate::domain::key::{b64_std, display_text, key_after, RawQuery};
use crate::domain::listing::{ListReq, Mode};
use crate::domain::transfer::{
    next_export_keys, Document, Entry, EXPORT_FIRST_READ_KEYS, FORMAT_VERSION,
};
use crate::error::{AppError, ErrorMessage};
use crate::etcd::{EtcdCluster, EtcdError};
use crate::web::auth::Caller;

/// Keys per export page.
const EXPORT_PAGE: usize = 500;

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
    // Two chunks of a few MiB each wait at most for a slow download.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
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
        // Keys per read: few at first, then as many as make a few MiB at the sizes seen.
        let mut per_read = EXPORT_FIRST_READ_KEYS;
        'pages: loop {
            let mut i = 0;
            while i < page.items.len() {
                let j = (i + per_read).min(page.items.len());
                let (first_key, last_key) = (&page.items[i].key, &page.items[j - 1].key);
                let read = c
                    .values_in(first_key, &key_after(last_key), revision, j - i)
                    .await;
                let read = match read {
                    Ok(read) => read,
                    // Larger values than before: the same keys in smaller reads.
                    Err(e) if e.is_too_large() && j - i > 1 => {
                        per_read = (j - i) / 2;
                        continue;
                    }
                    Err(e) => {
                        failure = Some(e.to_string());
                        break 'pages;
                    }
                };
                let mut chunk = String::new();
                let mut bytes = 0;
                for rec in &read.value {
                    if format == Format::Json && written > 0 {
                        chunk.push_str(",\n");
                    }
                    chunk.push_str(&entry_text(
                        &Entry::new(&rec.key, &rec.value, rec.mod_revision),
                        format,
                    ));
                    bytes += rec.key.len() + rec.value.len();
                    written += 1;
                }
                drop(read);
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
                per_read = next_export_keys(j - i, bytes, EXPORT_PAGE);
                i = j;
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
/// document (JSON or YAML). Reports creates, updates, unchanged, conflicts and keys too large for
/// etcd; applies only when `dry_run=false`, in CAS batches bounded by key count and request bytes.
/// Imported keys have no lease. An import that fails after it began writing answers with the
/// error's status and what it had written.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
    body: Bytes,
) -> Result<Response, AppError> {
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
        caller.require_to(&state, c.name(), Need::ImportKey(k), "import", k)?;
    }
    let export_revision = doc
        .revision
        .filter(|_| doc.cluster.as_deref() == Some(c.name()));

    let limit = state.config().max_value_bytes;
    let batching = batches(&entries, MAX_BATCH_KEYS, limit);
    let mut report = Report::new(dry_run);
    for &i in &batching.too_large {
        let (k, v) = &entries[i];
        report.too_large(k, request_size(k.len(), v.len()), limit);
    }
    let mut run = Run {
        state: &state,
        caller: &caller,
        cluster: c,
        limit,
        report,
        attempted: false,
    };
    for txn in &batching.txns {
        let batch: Vec<&(Vec<u8>, Vec<u8>)> = txn.iter().map(|&i| &entries[i]).collect();
        if let Err(stop) = run.batch(&batch, export_revision, overwrite).await {
            if !run.attempted {
                // Nothing was written (or could have been): a plain error says it all.
                return Err(stop.error.into());
            }
            return Ok(stopped(&run.report, stop));
        }
    }
    Ok(Json(run.report.to_json()).into_response())
}

/// An etcd failure that ends an import; `in_doubt` keys were in a write whose outcome is unknown.
struct Stop {
    error: EtcdError,
    in_doubt: usize,
}

impl Stop {
    fn new(error: EtcdError, keys: usize) -> Stop {
        let in_doubt = match error {
            EtcdError::Unavailable { .. } => keys,
            _ => 0,
        };
        Stop { error, in_doubt }
    }
}

/// etcd refused a request over its `--max-request-bytes` (a lower limit than ours).
fn too_large(e: &EtcdError) -> bool {
    matches!(e, EtcdError::Rejected(m) if m.contains("request is too large"))
}

/// The answer of an import that stopped after it began writing: the error's status, with what
/// had been done (a bare error would hide the keys already written).
fn stopped(report: &Report, stop: Stop) -> Response {
    let body = report.stopped(&stop.error.to_string(), stop.in_doubt);
    tracing::warn!(
        error = %stop.error,
        written = report.keys_written(),
        in_doubt = stop.in_doubt,
        "import stopped part-way"
    );
    let message = body["error"].as_str().unwrap_or_default().to_string();
    let mut resp = (AppError::Etcd(stop.error).status(), Json(body)).into_response();
    resp.extensions_mut().insert(ErrorMessage(message));
    resp
}

/// One import being applied: where, by whom, and what happened so far.
struct Run<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    cluster: &'a EtcdCluster,
    limit: usize,
    report: Report,
    /// A write was sent: from here on, a failure may leave the import part-way.
    attempted: bool,
}

impl Run<'_> {
    fn audit(&self, w: &Write, new_revision: Option<i64>, result: &str) {
        self.caller.audit(
            self.state,
            self.cluster.name(),
            "import",
            &w.key,
            w.expected,
            new_revision,
            result,
        );
    }

    /// Reads one batch's keys, decides each, and (unless a dry run) writes the changes in one
    /// CAS txn, falling back to key-by-key writes when that txn cannot be applied whole.
    async fn batch(
        &mut self,
        batch: &[&(Vec<u8>, Vec<u8>)],
        export_revision: Option<i64>,
        overwrite: bool,
    ) -> Result<(), Stop> {
        let keys: Vec<Vec<u8>> = batch.iter().map(|(k, _)| k.clone()).collect();
        let current = self
            .cluster
            .get_many(&keys)
            .await
            .map_err(|e| Stop::new(e, 0))?;
        let writes: Vec<Write> = batch
            .iter()
            .zip(&current)
            .filter_map(|((k, v), cur)| {
                self.report.decide(
                    k,
                    v,
                    cur.as_ref().map(|(cv, r)| (cv.as_slice(), *r)),
                    export_revision,
                    overwrite,
                )
            })
            .collect();
        if self.report.dry_run() || writes.is_empty() {
            return Ok(());
        }
        let txn: Vec<(Vec<u8>, Vec<u8>, i64)> = writes
            .iter()
            .map(|w| (w.key.clone(), w.value.clone(), w.expected))
            .collect();
        self.attempted = true;
        match self.cluster.put_many_cas(&txn).await {
            Ok(Some(revision)) => {
                for w in &writes {
                    self.report.written(w);
                    self.audit(w, Some(revision), "ok");
                }
                Ok(())
            }
            // Someone changed a key of this batch between our read and our write, or etcd's own
            // size limit is lower than ours: write key by key, each still a CAS on what we read.
            Ok(None) => self.one_by_one(writes).await,
            Err(e) if too_large(&e) => self.one_by_one(writes).await,
            Err(e) => {
                let result = crate::web::edit::failure_result(&e);
                for w in &writes {
                    self.audit(w, None, &result);
                }
                Err(Stop::new(e, writes.len()))
            }
        }
    }

    /// Writes a batch key by key; a key that changed is reported as a conflict, one etcd finds too
    /// large as such, and the rest are still written.
    async fn one_by_one(&mut self, writes: Vec<Write>) -> Result<(), Stop> {
        for w in writes {
            let req = PutRequest {
                key: w.key.clone(),
                value: w.value.clone(),
                expected_mod_revision: w.expected,
                lease: LeaseChange::Detach,
            };
            match self.cluster.put_cas(&req).await.map(|r| r.value) {
                Ok(WriteOutcome::Done { revision }) => {
                    self.report.written(&w);
                    self.audit(&w, Some(revision), "ok");
                }
                Ok(WriteOutcome::Conflict { .. }) => {
                    self.audit(&w, None, "conflict");
                    self.report.conflict(&w.key, "changed during the import");
                }
                Err(e) if too_large(&e) => {
                    self.audit(&w, None, &format!("error: {e}"));
                    let size = request_size(w.key.len(), w.value.len());
                    self.report.too_large(&w.key, size, self.limit);
                }
                Err(e) => {
                    self.audit(&w, None, &crate::web::edit::failure_result(&e));
                    return Err(Stop::new(e, 1));
                }
            }
        }
        Ok(())
    }
}
