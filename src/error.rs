//! One error type for every handler, and one way it becomes a response.
//!
//! Handlers return [`AppError`]; it renders as `{"error": "..."}` with the right status. For the
//! HTML pages, [`crate::web::html_errors`] turns that JSON into an error page (same status, same
//! message, with a way back). Internal details are logged once here and never shown raw.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::etcd::EtcdError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request itself is malformed (bad parameter, bad cursor).
    #[error("{0}")]
    BadRequest(String),
    /// 404: unknown cluster, key or page.
    #[error("{0}")]
    NotFound(String),
    /// 401: nobody signed in, and this needs someone who did.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: refused by policy (cross-site request, a forbidden operation).
    #[error("{0}")]
    Forbidden(String),
    /// 409: the data changed since the user saw it; the JSON carries what is there now.
    #[error("{0}")]
    Conflict(String, serde_json::Value),
    /// 503: the request took longer than its deadline.
    #[error("{0}")]
    Timeout(String),
    /// 413: the request is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// 503: a bounded resource (live-update streams) is used up; try again later.
    #[error("{0}")]
    Busy(String),
    /// 503 / 410 / 502 depending on what etcd said (see [`EtcdError`]).
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// 500: a bug or an unexpected failure; the details are logged, not shown.
    #[error("internal error")]
    Internal(String),
}

/// Marker put on error responses so the HTML layer can render a page for them.
#[derive(Debug, Clone)]
pub struct ErrorMessage(pub String);

impl AppError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(..) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Timeout(_) | AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Etcd(EtcdError::Unavailable { .. })
            | AppError::Etcd(EtcdError::MemberUnavailable { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Etcd(EtcdError::Compacted(_)) => StatusCode::GONE,
            // etcd's own roles refused the etcd user etcdboard signs in as.
            AppError::Etcd(e) if e.is_denied() => StatusCode::FORBIDDEN,
            // A safety net: etcdboard checks sizes first, but etcd's own limit may be lower.
            AppError::Etcd(EtcdError::Rejected(m)) if m.contains("request is too large") => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            // A revision from the request that etcd cannot serve: the request's mistake.
            AppError::Etcd(EtcdError::Rejected(m))
                if m.contains("future revision")
                    || m.contains("newer than the cluster's current revision")
                    || m.contains("has been compacted") =>
            {
                StatusCode::BAD_REQUEST
            }
            // A lease the request named that does not exist.
            AppError::Etcd(EtcdError::Rejected(m)) if m.contains("requested lease not found") => {
                StatusCode::BAD_REQUEST
            }
            // A member id from the request that is not in the cluster's member list.
            AppError::Etcd(EtcdError::Rejected(m))
                if m.starts_with("no member ") && m.ends_with("with a client URL") =>
            {
                StatusCode::NOT_FOUND
            }
            AppError::Etcd(EtcdError::Rejected(_)) => StatusCode::BAD_GATEWAY,
            AppError::Etcd(EtcdError::Config { .. }) | AppError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AppError::Internal(detail) => tracing::error!(%detail, "internal error"),
            AppError::Etcd(e) => tracing::warn!(error = %e, "etcd error"),
            _ => tracing::debug!(error = %self, "request error"),
        }
        let message = self.to_string();
        let mut body = serde_json::json!({ "error": message });
        if let (AppError::Conflict(_, serde_json::Value::Object(extra)), Some(obj)) =
            (&self, body.as_object_mut())
        {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorMessage(message));
        response
    }
}
