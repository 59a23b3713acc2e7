//! The JSON API (`/api/v1`): the same data as the pages, for scripts and tests.

use axum::extract::{Path, RawQuery as AxumQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::domain::key::{b64_std, display_text, download_name, RawQuery};
use crate::domain::listing::Page;
use crate::domain::record::KeyRecord;
use crate::error::AppError;
use crate::etcd::index::IndexStatus;
use crate::web::common::list_request;

/// One cluster (configured, or discovered in Kubernetes and allowed by a `discovery:` rule).
#[derive(Serialize)]
pub struct ClusterJson {
    name: String,
    endpoints: Vec<String>,
    /// Found in Kubernetes rather than configured.
    discovered: bool,
    /// For discovered clusters: how they were found (`etcd-operator`, `statefulset`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    /// For discovered clusters: their namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
}

/// `GET /api/v1/clusters`.
pub async fn clusters(
    State(state): State<AppState>,
    caller: crate::web::auth::Caller,
) -> Json<Vec<ClusterJson>> {
    Json(
        crate::web::auth::visible_clusters(&state, &caller)
            .into_iter()
            .map(|c| {
                let found = state.discovered(c.name());
                ClusterJson {
                    name: c.name().to_string(),
                    endpoints: c.endpoints(),
                    discovered: found.is_some(),
                    source: found.as_ref().map(|d| d.source.as_str()),
                    namespace: found.map(|d| d.namespace),
                }
            })
            .collect(),
    )
}

/// One listing entry.
#[derive(Serialize)]
pub struct ItemJson {
    key: Option<String>,
    key_b64: String,
    dir: bool,
}

/// A page of a listing.
#[derive(Serialize)]
pub struct PageJson {
    revision: i64,
    items: Vec<ItemJson>,
    next: Option<String>,
    stale: bool,
    /// State of the listing index: `ready`, `building`, `failed` or `idle`.
    index: &'static str,
}

impl From<Page> for PageJson {
    fn from(page: Page) -> Self {
        PageJson {
            revision: page.revision,
            items: page
                .items
                .into_iter()
                .map(|i| ItemJson {
                    key: display_text(&i.key).map(str::to_string),
                    key_b64: b64_std(&i.key),
                    dir: i.dir,
                })
                .collect(),
            next: page.next.map(|c| c.encode()),
            stale: page.stale,
            index: "idle",
        }
    }
}

/// `GET /api/v1/clusters/{cluster}/keys?prefix=&mode=&limit=&after=&start=`.
pub async fn keys(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Json<PageJson>, AppError> {
    let cluster = &state.cluster(&cluster)?;
    let req = list_request(
        &RawQuery::parse(query.as_deref()),
        cluster.separator(),
        state.config().page_size,
    )?;
    let page = state.list(cluster, &req).await?;
    let mut json = PageJson::from(page);
    json.index = match cluster.index().status() {
        IndexStatus::Ready(_) => "ready",
        IndexStatus::Building(_) => "building",
        IndexStatus::Failed(_) => "failed",
        IndexStatus::Idle => "idle",
    };
    Ok(Json(json))
}

/// One key.
#[derive(Serialize)]
pub struct KeyJson {
    key: Option<String>,
    key_b64: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    value_b64: String,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
    ttl: Option<i64>,
    revision: i64,
    stale: bool,
}

/// `GET /api/v1/clusters/{cluster}/key?key=` (or `key_b64=`).
pub async fn key(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Json<KeyJson>, AppError> {
    let cluster = &state.cluster(&cluster)?;
    let key = required_key(&RawQuery::parse(query.as_deref()))?;
    let read = cluster.get(&key).await?;
    let rec = read
        .value
        .ok_or_else(|| AppError::NotFound("key not found".into()))?;
    Ok(Json(key_json(&rec, read.revision, read.stale)))
}

/// `GET /api/v1/clusters/{cluster}/value?key=K`: the value's bytes as they are, as a download
/// (`application/octet-stream`, named after the key's last segment); 404 when the key is absent.
/// The key's `mod_revision` is in `X-Etcd-Mod-Revision`.
pub async fn value(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let cluster = &state.cluster(&cluster)?;
    let key = required_key(&RawQuery::parse(query.as_deref()))?;
    let rec = cluster
        .get(&key)
        .await?
        .value
        .ok_or_else(|| AppError::NotFound("key not found".into()))?;
    let disposition = format!("attachment; filename=\"{}\"", download_name(&key));
    let mut resp = rec.value.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-etcd-mod-revision", HeaderValue::from(rec.mod_revision));
    Ok(resp)
}

/// The JSON form of a key record.
pub fn key_json(rec: &KeyRecord, revision: i64, stale: bool) -> KeyJson {
    KeyJson {
        key: display_text(&rec.key).map(str::to_string),
        key_b64: b64_std(&rec.key),
        value: display_text(&rec.value).map(str::to_string),
        value_b64: b64_std(&rec.value),
        create_revision: rec.create_revision,
        mod_revision: rec.mod_revision,
        version: rec.version,
        lease: rec.lease,
        ttl: rec.ttl,
        revision,
        stale,
    }
}

/// The `key` / `key_b64` parameter, required and non-empty.
pub fn required_key(q: &RawQuery) -> Result<Vec<u8>, AppError> {
    match q.bytes_or_b64("key").map_err(AppError::BadRequest)? {
        Some(k) if !k.is_empty() => Ok(k),
        _ => Err(AppError::BadRequest(
            "parameter `key` (or `key_b64`) is required and must not be empty".into(),
        )),
    }
}
