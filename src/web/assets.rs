//! Static assets embedded in the binary (CSS, JS, vendored htmx), served with ETags; long-lived
//! caching only for URLs that carry the content hash (`?v=`).

use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

fn short_hash(path: &str) -> Option<String> {
    let file = Assets::get(path)?;
    let hash = file.metadata.sha256_hash();
    Some(hash[..6].iter().map(|b| format!("{b:02x}")).collect())
}

/// The versioned URL of an embedded asset: `{base}/static/{path}?v={hash}`.
pub fn url(base: &str, path: &str) -> String {
    match short_hash(path) {
        Some(h) => format!("{base}/static/{path}?v={h}"),
        None => format!("{base}/static/{path}"),
    }
}

/// `GET /static/{*path}`.
pub async fn serve(
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(file) = Assets::get(&path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let hash = short_hash(&path).unwrap_or_default();
    let etag = format!("\"{hash}\"");
    let versioned = query.as_deref() == Some(&format!("v={hash}"));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mime = mime_guess::from_path(&path).first_or_octet_stream();
        let mut r = file.data.into_owned().into_response();
        if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
