//! HTTP handlers, one file per area; they parse, call the gateway, build a view and render.

pub mod api;
pub mod assets;
pub mod auth;
pub mod cluster;
pub mod common;
pub mod edit;
pub mod health;
pub mod keys;
pub mod live;
pub mod topology;
pub mod transfer;
pub mod ui_edit;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::app::AppState;
use crate::domain::hosts::host_part;
use crate::domain::session::insecure_origin;
use crate::error::{AppError, ErrorMessage};
use crate::views::ErrorPage;

/// Renders a template; a template error is an internal error (logged, never shown raw).
pub(crate) fn render_html<T: askama::Template>(t: &T) -> Result<String, AppError> {
    t.render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))
}

/// An HTML page or fragment that must not be cached (it shows live data).
pub(crate) fn html(body: String) -> Response {
    let mut r = Html(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Turns error responses of HTML routes into an error page (full page for navigations, a short
/// `<li>`/`<p>` for htmx fragment requests), keeping status and message.
pub async fn html_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    // Unknown API paths land on the pages' fallback too; they keep the API's JSON.
    let api = is_api_path(&state, req.uri().path());
    let resp = next.run(req).await;
    if api {
        return resp;
    }
    let Some(ErrorMessage(message)) = resp.extensions().get::<ErrorMessage>().cloned() else {
        return resp;
    };
    error_page(&state, resp.status(), message, &headers)
}

/// Whether `path` is under the JSON API (`{base}/api/`).
fn is_api_path(state: &AppState, path: &str) -> bool {
    path.strip_prefix(state.base())
        .is_some_and(|rest| rest.starts_with("/api/"))
}

/// What [`error_page`] needs of a request's headers (whether htmx asked), kept without copying
/// every header of every request.
fn error_page_headers(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    if let Some(v) = headers.get("hx-request") {
        kept.insert("hx-request", v.clone());
    }
    kept
}

/// The answer to a method a route does not have (axum adds the route's `Allow`;
/// [`uniform_errors`] gives it the usual error shape).
pub async fn method_not_allowed() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

/// Gives error responses that did not come from our handlers (axum's own 405 with an empty body,
/// the body limit's plain-text 413, …) the same shape as ours: `{"error": …}` on the API, the
/// error page elsewhere.
pub async fn uniform_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let headers = error_page_headers(req.headers());
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    // Only what axum says in its own words: an empty body (405, unknown routes' defaults), the
    // body limit's plain text, or an extractor's plain-text rejection (a path segment that is
    // not UTF-8, a form without its content type). Our handlers' errors, and deliberate
    // plain-text answers such as the metrics challenge (a 401), are left as they are.
    let ours = resp.extensions().get::<ErrorMessage>().is_some();
    let rejection = !ours && is_plain_text(&resp) && REJECTIONS.contains(&status);
    let router_made = !resp.headers().contains_key(header::CONTENT_TYPE)
        || status == StatusCode::PAYLOAD_TOO_LARGE && !ours
        || rejection;
    if !router_made {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed on {path}"),
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is larger than {} bytes, the most this route takes",
            state.config().max_value_bytes * 2 + 64 * 1024
        ),
        // The rejection's own words (axum's are short and say what was wrong).
        _ if rejection => match axum::body::to_bytes(body, 4096).await {
            Ok(text) if !text.is_empty() => String::from_utf8_lossy(&text).into_owned(),
            _ => status.canonical_reason().unwrap_or("error").to_string(),
        },
        other => other.canonical_reason().unwrap_or("error").to_string(),
    };
    let resp = Response::from_parts(parts, Body::empty());
    let mut kept = resp.headers().clone();
    kept.remove(header::CONTENT_TYPE);
    kept.remove(header::CONTENT_LENGTH);
    let mut out = if is_api_path(&state, &path) {
        let mut r = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        r.extensions_mut().insert(ErrorMessage(message));
        r
    } else {
        error_page(&state, status, message, &headers)
    };
    // Keep what the original said (Allow, WWW-Authenticate, …) unless the new answer says it.
    let new_names: Vec<_> = kept
        .keys()
        .filter(|name| !out.headers().contains_key(*name))
        .cloned()
        .collect();
    for name in new_names {
        for value in kept.get_all(&name) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// Statuses axum's extractors reject a request with (as plain text).
const REJECTIONS: [StatusCode; 3] = [
    StatusCode::BAD_REQUEST,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    StatusCode::UNPROCESSABLE_ENTITY,
];

fn is_plain_text(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"))
}

/// An error as HTML: a banner for htmx fragment requests, else a full page with a way back.
pub(crate) fn error_page(
    state: &AppState,
    status: StatusCode,
    message: String,
    request_headers: &HeaderMap,
) -> Response {
    let body = if request_headers.contains_key("hx-request") {
        format!(
            "<p class=\"banner error\" role=\"alert\">{}</p>",
            crate::domain::format::escape_html(&message)
        )
    } else {
        let page = ErrorPage {
            layout: keys::layout(state, None, None),
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            message,
        };
        askama::Template::render(&page).unwrap_or_else(|_| "error".into())
    };
    let mut out = (status, Html(body)).into_response();
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}

/// Why a mutating request is refused as cross-site, or `None` when it may go on.
///
/// Works behind an ingress and with several replicas (no session store): a browser always sends
/// `Sec-Fetch-Site` and/or `Origin` on a cross-site POST/PUT/DELETE, and a cross-site page cannot
/// send `Content-Type: application/json` without a CORS preflight, which this server never grants.
/// A script (curl) sends neither header and is not a cross-site request.
pub fn cross_site_reason(method: &Method, path: &str, headers: &HeaderMap) -> Option<String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = site.filter(|s| *s != "same-origin" && *s != "none") {
        return Some(format!(
            "cross-site request refused (Sec-Fetch-Site: {site})"
        ));
    }
    // The browser itself says the page that sent this is of our origin (scheme, host and port;
    // scripts cannot set this header). Then the Origin need not match `Host`, which a proxy
    // that does not pass `Host` on (plain `proxy_pass`) rewrites to the upstream's address.
    let mut proven_same_origin = site == Some("same-origin");
    let form_route = path.ends_with("/login") || path.ends_with("/logout");
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|_| !proven_same_origin);
    // Browsers send Origin on every POST; scripts (curl) do not.
    let from_browser = headers.contains_key(header::ORIGIN);
    if let Some(origin) = origin {
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get(header::HOST))
            .and_then(|v| v.to_str().ok())
            .map(|h| host_part(h.split(',').next().unwrap_or(h)).to_ascii_lowercase());
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| host_part(rest).to_ascii_lowercase());
        if origin_host.is_none() || origin_host != host {
            // Signing in from a plain-HTTP page would fail anyway (the cookie is Secure): say
            // that first, since fixing the proxy alone would not make it work.
            if let (true, Some(insecure)) = (form_route, insecure_origin(origin)) {
                return Some(format!(
                    "signing in needs HTTPS: this page was opened over plain HTTP at {insecure}"
                ));
            }
            return Some(match (origin_host, host) {
                (Some(from), Some(seen)) => format!(
                    "cross-site request refused (Origin: {origin} is not `{seen}`, the host this \
                     server was reached as; if {from} is this dashboard's own address, the proxy \
                     in front must pass the Host header or X-Forwarded-Host)"
                ),
                _ => format!("cross-site request refused (Origin: {origin})"),
            });
        }
        proven_same_origin = true;
    }
    let has_body = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|l| l != "0")
        || headers.contains_key(header::TRANSFER_ENCODING);
    // HTML forms (and cross-site fetches without a CORS preflight) can only send these types.
    let form_like = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|t| t.trim().to_ascii_lowercase())
        .is_none_or(|t| {
            [
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "text/plain",
            ]
            .iter()
            .any(|simple| t.starts_with(simple))
        });
    // Only the sign-in (and sign-out) forms are sent as forms, from a same-origin page. Everywhere
    // else only types a cross-site page cannot send are accepted: the Origin check above compares
    // host names only (an ingress passes `Host` without the port), so a page on another port of
    // the same host would pass it. That holds for a browser's POST without a body too (a POST is
    // the one write a page elsewhere can send without a CORS preflight): browsers send no
    // Sec-Fetch-Site to plain-HTTP pages, so on those only the content type tells our pages
    // (always JSON or YAML) from another port's.
    let bodiless_browser_post = from_browser && *method == Method::POST && site.is_none();
    if (has_body || bodiless_browser_post) && form_like && !(form_route && proven_same_origin) {
        return Some(
            "writes must be sent as Content-Type: application/json (or application/yaml for imports)"
                .into(),
        );
    }
    None
}

/// The Content-Security-Policy of every response: scripts and styles only from our own embedded
/// files (no inline script can run, so markup hidden in a key or value cannot execute), no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self' blob:; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers every response carries.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// Ends requests that take longer than `--request-timeout` to produce their response head with a
/// 503, so a stuck dependency never holds a connection (and a concurrency slot) forever. Streams
/// (live updates, export, snapshot) answer at once and then stream; imports are bounded by their
/// per-batch etcd deadlines instead, since a large one legitimately takes longer, and so are
/// maintenance (a defragmentation of a large database takes minutes), prefix deletions and lease
/// revocations (one step each, given time for each key it removes). Cutting those off would not
/// stop them on etcd, only lose their answer and their audit line.
pub async fn request_deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let exempt = match *req.method() {
        Method::POST => {
            path.ends_with("/import")
                || path.ends_with("/delete-prefix")
                || path.contains("/maintenance/")
        }
        // Revoking a lease deletes its keys, in one step that grows with their number too.
        Method::DELETE => path.contains("/leases/"),
        _ => false,
    };
    if exempt {
        // Their work may take long, and an import's body may be large: it must keep arriving
        // (see `domain::body_pace`), so a client that sends a few bytes and stops, or trickles,
        // does not hold its request slot for ever.
        let idle = state.config().request_timeout;
        return next.run(req.map(|body| paced_body(body, idle))).await;
    }
    let deadline = state.config().request_timeout;
    let path = req.uri().path().to_string();
    let headers = error_page_headers(req.headers());
    match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(%path, "request took longer than its deadline");
            let message = format!(
                "no answer within {:.1} s; try again (or narrow the request)",
                deadline.as_secs_f64()
            );
            // Pages get the error page, as their own errors do (see `html_errors`).
            if is_api_path(&state, &path) {
                AppError::Timeout(message).into_response()
            } else {
                error_page(&state, StatusCode::SERVICE_UNAVAILABLE, message, &headers)
            }
        }
    }
}

/// `body`, failing once a chunk is overdue: a pause longer than `idle`, or (past the first
/// `idle`) an average below [`crate::domain::body_pace::MIN_BYTES_PER_SEC`].
fn paced_body(body: Body, idle: Duration) -> Body {
    use crate::domain::body_pace::{next_chunk_due, MIN_BYTES_PER_SEC};
    use futures::StreamExt;
    let start = tokio::time::Instant::now();
    let state = (body.into_data_stream(), 0u64, Duration::ZERO);
    let chunks = futures::stream::unfold(Some(state), move |state| async move {
        let (mut chunks, received, last) = state?;
        let due = start + next_chunk_due(idle, received, last);
        match tokio::time::timeout_at(due, chunks.next()).await {
            Ok(Some(Ok(chunk))) => {
                let received = received + chunk.len() as u64;
                Some((Ok(chunk), Some((chunks, received, start.elapsed()))))
            }
            Ok(Some(Err(e))) => Some((Err(e), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(axum::Error::new(format!(
                    "the request body stopped arriving: it may pause at most {:.1} s, and must \
                     average at least {} KiB/s after that ({received} bytes in {:.0} s)",
                    idle.as_secs_f64(),
                    MIN_BYTES_PER_SEC / 1024,
                    start.elapsed().as_secs_f64()
                ))),
                None,
            )),
        }
    });
    Body::from_stream(chunks)
}

/// Refuses requests that name a host this server is not reached as (see
/// [`crate::domain::hosts`]), so that a page whose own name was pointed at this server (DNS
/// rebinding) gets a 403 and nothing else: plain text, without the layout's cluster names, or
/// `{"error": …}` on the API. A request without a `Host` (HTTP/1.0) does not come from a browser.
pub async fn allowed_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let hosts = &state.config().allowed_hosts;
    let named = match req.headers().get(header::HOST) {
        // Not text: no browser sends that, and no allowed name looks like it.
        Some(value) => Some(value.to_str().unwrap_or_default()),
        None => req.uri().host(),
    };
    let Some(host) = named.filter(|host| !hosts.allows(host)) else {
        return next.run(req).await;
    };
    let reason = hosts.refusal(host);
    tracing::warn!(method = %req.method(), path = %req.uri().path(), host, "refused: host not allowed");
    if is_api_path(&state, req.uri().path()) {
        AppError::Forbidden(reason).into_response()
    } else {
        let mut out = (StatusCode::FORBIDDEN, reason).into_response();
        out.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        out
    }
}

/// Refuses cross-site mutations (see [`cross_site_reason`]) with a 403.
pub async fn same_origin_writes(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match cross_site_reason(req.method(), req.uri().path(), req.headers()) {
        Some(reason) => {
            tracing::warn!(method = %req.method(), path = %req.uri().path(), %reason, "refused");
            if is_api_path(&state, req.uri().path()) {
                AppError::Forbidden(reason).into_response()
            } else {
                // A form (the sign-in page): a page that says why, not a line of JSON.
                let headers = error_page_headers(req.headers());
                error_page(&state, StatusCode::FORBIDDEN, reason, &headers)
            }
        }
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn scripts_and_same_origin_pages_may_write_cross_site_pages_may_not() {
        let put = Method::PUT;
        let json = ("content-type", "application/json");
        assert_eq!(
            cross_site_reason(
                &put,
                "/api/v1/clusters/c/key",
                &headers(&[json, ("content-length", "5")])
            ),
            None
        );
        assert_eq!(
            cross_site_reason(
                &put,
                "/api/v1/clusters/c/key",
                &headers(&[
                    json,
                    ("host", "dash.example:8080"),
                    ("origin", "https://dash.example"),
                    ("sec-fetch-site", "same-origin")
                ])
            ),
            None
        );
        assert!(cross_site_reason(
            &put,
            "/api/v1/clusters/c/key",
            &headers(&[json, ("sec-fetch-site", "cross-site")])
        )
        .is_some());
        assert!(cross_site_reason(
            &put,
            "/api/v1/clusters/c/key",
            &headers(&[
                json,
                ("host", "dash.example"),
                ("origin", "https://evil.example")
            ])
        )
        .is_some());
        assert!(cross_site_reason(
            &put,
            "/api/v1/clusters/c/key",
            &headers(&[json, ("host", "dash.example"), ("origin", "null")])
        )
        .is_some());
        assert!(cross_site_reason(
            &Method::POST,
            "/login",
            &headers(&[
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-length", "3")
            ])
        )
        .is_some());
        assert_eq!(
            cross_site_reason(
                &Method::GET,
                "/x",
                &headers(&[("sec-fetch-site", "cross-site")])
            ),
            None
        );
        assert_eq!(
            cross_site_reason(
                &put,
                "/api/v1/clusters/c/key",
                &headers(&[
                    json,
                    ("host", "10.0.0.1"),
                    ("x-forwarded-host", "dash.example"),
                    ("origin", "https://dash.example")
                ])
            ),
            None
        );
    }

    #[test]
    fn a_bodiless_post_from_another_port_of_the_same_host_is_refused() {
        // Plain HTTP: the browser sends no Sec-Fetch-Site, and Origin names the same host.
        let other_port = headers(&[
            ("host", "dash.test"),
            ("origin", "http://dash.test:32099"),
            ("content-length", "0"),
        ]);
        assert!(cross_site_reason(
            &Method::POST,
            "/api/v1/clusters/c/maintenance/disarm",
            &other_port
        )
        .is_some());
        // Our own page sends JSON; a script sends no Origin at all.
        let json = headers(&[
            ("host", "dash.test"),
            ("origin", "http://dash.test"),
            ("content-type", "application/json"),
            ("content-length", "2"),
        ]);
        assert_eq!(
            cross_site_reason(
                &Method::POST,
                "/api/v1/clusters/c/maintenance/disarm",
                &json
            ),
            None
        );
        assert_eq!(
            cross_site_reason(
                &Method::POST,
                "/api/v1/clusters/c/maintenance/disarm",
                &headers(&[("content-length", "0")])
            ),
            None
        );
        // Sign-out is a form of our own page.
        let logout = headers(&[
            ("host", "dash.test"),
            ("origin", "http://dash.test"),
            ("content-length", "0"),
        ]);
        assert_eq!(cross_site_reason(&Method::POST, "/logout", &logout), None);
    }

    #[test]
    fn a_refusal_blames_the_proxy_only_where_that_may_be_it() {
        let why = |origin: &'static str, path: &str| {
            cross_site_reason(
                &Method::POST,
                path,
                &headers(&[
                    ("host", "etcdboard"),
                    ("origin", origin),
                    ("content-type", "application/json"),
                ]),
            )
            .expect("refused")
        };
        assert_eq!(
            why("null", "/api/v1/clusters/c/key"),
            "cross-site request refused (Origin: null)"
        );
        let mismatch = why("https://dash.example", "/api/v1/clusters/c/key");
        assert!(
            mismatch.contains("if dash.example is this dashboard's own address"),
            "{mismatch}"
        );
        assert_eq!(
            why("http://dash.test:8080", "/etcd/login"),
            "signing in needs HTTPS: this page was opened over plain HTTP at dash.test"
        );
    }

    #[test]
    fn a_browser_saying_same_origin_is_believed_behind_a_proxy_that_rewrites_host() {
        // nginx `proxy_pass` without `proxy_set_header Host`: Host is the upstream's address.
        let behind = |site: Option<&'static str>| {
            let mut h = headers(&[
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-length", "40"),
                ("host", "127.0.0.1:31081"),
                ("origin", "https://dash.test:31091"),
            ]);
            if let Some(site) = site {
                h.insert("sec-fetch-site", HeaderValue::from_static(site));
            }
            h
        };
        assert_eq!(
            cross_site_reason(&Method::POST, "/etcd/login", &behind(Some("same-origin"))),
            None
        );
        // Without the browser's word the Origin must match, and the refusal says what to fix.
        let why = cross_site_reason(&Method::POST, "/etcd/login", &behind(None)).expect("refused");
        assert!(why.contains("must pass the Host header"), "{why}");
        assert!(cross_site_reason(&Method::POST, "/etcd/login", &behind(Some("none"))).is_some());
        // Same-site (another port or subdomain) is not same-origin.
        assert!(
            cross_site_reason(&Method::POST, "/etcd/login", &behind(Some("same-site"))).is_some()
        );
        // Same-origin pages still send forms only to the sign-in routes.
        assert!(cross_site_reason(
            &Method::POST,
            "/api/v1/clusters/c/delete-prefix",
            &behind(Some("same-origin"))
        )
        .is_some());
    }

    #[test]
    fn only_the_sign_in_form_may_send_a_form_or_plain_text_body() {
        let same_host_other_port = |ct: &'static str| {
            headers(&[
                ("content-type", ct),
                ("content-length", "40"),
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:9999"),
            ])
        };
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            assert!(
                cross_site_reason(
                    &Method::POST,
                    "/api/v1/clusters/c/delete-prefix",
                    &same_host_other_port(ct)
                )
                .is_some(),
                "{ct}"
            );
        }
        let login = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "40"),
            ("host", "dash.example"),
            ("origin", "https://dash.example"),
        ]);
        assert_eq!(
            cross_site_reason(&Method::POST, "/etcd/login", &login),
            None
        );
    }
}
