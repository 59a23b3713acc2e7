//! HTTP handlers, one file per area; they parse, call the gateway, build a view and render.

pub mod api;
pub mod assets;
pub mod common;
pub mod keys;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::app::AppState;
use crate::error::ErrorMessage;
use crate::views::ErrorPage;

/// Turns error responses of HTML routes into an error page (full page for navigations, a short
/// `<li>`/`<p>` for htmx fragment requests), keeping status and message.
pub async fn html_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let is_fragment = req.headers().contains_key("hx-request");
    let resp = next.run(req).await;
    let Some(ErrorMessage(message)) = resp.extensions().get::<ErrorMessage>().cloned() else {
        return resp;
    };
    let status = resp.status();
    let body = if is_fragment {
        format!(
            "<p class=\"banner error\" role=\"alert\">{}</p>",
            crate::domain::format::escape_html(&message)
        )
    } else {
        let page = ErrorPage {
            layout: keys::layout(&state, None, None),
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
