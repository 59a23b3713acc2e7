//! Who is calling and whether they may: identity from trusted proxy headers, a signed login
//! cookie, or anonymous; the route-level check on every request; the login and logout pages.
//!
//! Every request passes [`access`]: it identifies the caller, checks the route's cluster-level
//! need ([`crate::domain::access::route_need`]) and hands the [`Caller`] to the handler, which
//! checks key-level needs (prefix rules) with [`Caller::require`]. The UI hides what the caller
//! may not do, but this is the check.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::access::{Identity, ProxyIdentity, UsersIdentity};
use crate::app::AppState;
use crate::audit::AuditEntry;
use crate::domain::access::{
    action_phrase, route_action, route_need, Capabilities, Decision, Need, Principal, RouteNeed,
};
use crate::domain::session::{insecure_origin, Session};
use crate::error::AppError;

/// The user a request was served for, set on every response by the identity middleware so the
/// request log line can name them (`"anonymous"` when nobody logged in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUser(pub String);

/// Name of the login cookie.
pub const SESSION_COOKIE: &str = "etcdboard_session";

/// Longest user name or password read from the login form.
const MAX_CREDENTIAL_LEN: usize = 1024;

/// The caller of a request: who, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Identity and groups.
    pub principal: Principal,
    /// The peer address (the proxy's, behind an ingress).
    pub source: Option<IpAddr>,
}

tokio::task_local! {
    /// The caller of the request being handled, for the page layout (user menu, which clusters
    /// to list). Decisions use the explicit [`Caller`] extractor instead.
    static CURRENT: Caller;
}

/// The caller of the request being handled, when called inside one.
pub fn current() -> Option<Caller> {
    CURRENT.try_with(Caller::clone).ok()
}

/// What the current caller may do on `cluster`, for showing or hiding controls (the handlers
/// still check every action).
pub fn current_caps(state: &AppState, cluster: &str) -> Capabilities {
    current()
        .unwrap_or_else(Caller::anonymous)
        .caps(state, cluster)
}

/// Whether the current caller may do `need` on `cluster`, for showing or hiding controls.
pub fn current_may(state: &AppState, cluster: &str, need: Need<'_>) -> bool {
    current_refusal(state, cluster, need).is_none()
}

/// Why the caller of the request being handled may not do `need` on `cluster` (`None`: they may).
pub fn current_refusal(state: &AppState, cluster: &str, need: Need<'_>) -> Option<String> {
    current()
        .unwrap_or_else(Caller::anonymous)
        .require(state, cluster, need)
        .err()
        .map(|e| e.to_string())
}

/// The clusters `caller` may read, in configuration order (others are not even listed).
pub fn visible_clusters(
    state: &AppState,
    caller: &Caller,
) -> Vec<std::sync::Arc<crate::etcd::EtcdCluster>> {
    state
        .clusters()
        .into_iter()
        .filter(|c| caller.require(state, c.name(), Need::Read).is_ok())
        .collect()
}

impl Caller {
    /// Nobody signed in (outside a request, e.g. in a test driving a handler directly).
    pub fn anonymous() -> Caller {
        Caller {
            principal: Principal::anonymous(),
            source: None,
        }
    }

    /// Refuses with 401/403 and a reason unless the policy allows `need` on `cluster`.
    pub fn require(&self, state: &AppState, cluster: &str, need: Need<'_>) -> Result<(), AppError> {
        match state
            .config()
            .access
            .policy
            .decide(&self.principal, cluster, need)
        {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => Err(self.refusal(state, why)),
        }
    }

    /// [`Caller::require`] for a change the caller asked for (not one a page only offers): a
    /// refusal is audited as `action` on `key`, `denied: …`.
    pub fn require_to(
        &self,
        state: &AppState,
        cluster: &str,
        need: Need<'_>,
        action: &str,
        key: &[u8],
    ) -> Result<(), AppError> {
        self.require(state, cluster, need)
            .inspect_err(|e| self.audit_denied(state, cluster, action, key, e))
    }

    /// Writes the audit line of a change refused before it was tried: `denied: <why>`.
    pub fn audit_denied(
        &self,
        state: &AppState,
        cluster: &str,
        action: &str,
        key: &[u8],
        why: &dyn std::fmt::Display,
    ) {
        self.audit(
            state,
            cluster,
            action,
            key,
            0,
            None,
            &format!("denied: {why}"),
        );
    }

    /// What to show this caller on `cluster`.
    pub fn caps(&self, state: &AppState, cluster: &str) -> Capabilities {
        state
            .config()
            .access
            .policy
            .capabilities(&self.principal, cluster)
    }

    /// 401 when signing in is possible and nobody has, else 403 (with `--auth none` nobody can
    /// sign in, so a 401 would ask for what cannot be given).
    fn refusal(&self, state: &AppState, why: String) -> AppError {
        if self.principal.authenticated || !state.config().access.policy.sign_in {
            AppError::Forbidden(why)
        } else {
            AppError::Unauthorized(why)
        }
    }

    /// Writes one audit line for an action of this caller.
    #[allow(clippy::too_many_arguments)]
    pub fn audit(
        &self,
        state: &AppState,
        cluster: &str,
        action: &str,
        key: &[u8],
        old_revision: i64,
        new_revision: Option<i64>,
        result: &str,
    ) {
        state.audit().record(&AuditEntry {
            user: &self.principal.user,
            source: self.source,
            cluster,
            action,
            key,
            old_revision,
            new_revision,
            result,
        });
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, Self::Rejection> {
        // The access middleware always sets it; a router without it serves nobody in particular.
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(Caller::anonymous))
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn from_proxy(
    p: &ProxyIdentity,
    source: Option<IpAddr>,
    headers: &HeaderMap,
    path: &str,
) -> Principal {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let present = p.header_names().iter().any(|h| headers.contains_key(*h));
    if !present {
        return Principal::anonymous();
    }
    if !source.is_some_and(|s| p.trusts(s)) {
        tracing::warn!(
            source = ?source,
            path,
            "identity headers from an address that is not a trusted proxy were ignored"
        );
        return Principal::anonymous();
    }
    let Some(user) = text(&p.user_header).or_else(|| text(&p.email_header)) else {
        return Principal::anonymous();
    };
    let groups = text(&p.groups_header)
        .map(|g| {
            g.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Principal::user(user, groups)
}

fn from_cookie(u: &UsersIdentity, headers: &HeaderMap) -> Principal {
    let now = now_secs();
    cookie_value(headers, SESSION_COOKIE)
        .and_then(|v| u.key.verify(v, now))
        // A cookie signed for longer than this server's --session-ttl (by a replica, or before a
        // restart with a shorter one) lasts no longer than this server allows.
        .filter(|s| s.accepted(now, u.ttl.as_secs()))
        // The users file decides, whatever the cookie says: a user removed from it loses access
        // at once, and one moved to other groups gets those groups' rights at once.
        .and_then(|s| u.users.iter().find(|user| user.name == s.user))
        .map(|user| Principal::user(user.name.clone(), user.groups.clone()))
        .unwrap_or_else(Principal::anonymous)
}

/// Identifies the caller, checks the route's cluster-level need, and passes the [`Caller`] on.
pub async fn access(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let base = state.base();
    let path = req.uri().path();
    let local = path.strip_prefix(base).unwrap_or(path);
    let local = if local.is_empty() { "/" } else { local };
    let principal = match &state.config().access.identity {
        Identity::None => Principal::anonymous(),
        Identity::Proxy(p) => from_proxy(p, source, req.headers(), local),
        Identity::Users(u) => from_cookie(u, req.headers()),
    };
    let caller = Caller { principal, source };
    let policy = &state.config().access.policy;
    let enter = || {
        if may_enter(&state, &caller) {
            Decision::Allow
        } else if caller.principal.authenticated {
            Decision::Deny(format!(
                "user `{}` has no role on any cluster; ask an administrator for one",
                caller.principal.user
            ))
        } else {
            Decision::Deny("sign in first: anonymous access is off".into())
        }
    };
    let need = route_need(req.method().as_str(), local);
    // What a refusal names and the audit line records.
    let action = route_action(req.method().as_str(), local);
    let decision = match &need {
        RouteNeed::Public => Decision::Allow,
        RouteNeed::Enter => enter(),
        RouteNeed::Monitoring if presents_metrics_token(&state, req.headers()) => Decision::Allow,
        // Its series name every cluster: for those who may read them all.
        RouteNeed::Monitoring => match enter() {
            Decision::Allow if reads_every_cluster(&state, &caller) => Decision::Allow,
            Decision::Allow => Decision::Deny(format!(
                "metrics name every cluster, and user `{}` may not read all of them; scrapers use --metrics-token-file",
                caller.principal.user
            )),
            deny => deny,
        },
        RouteNeed::Cluster(name, level) => {
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            if !name.is_empty() && state.cluster(&name).is_err() {
                // The handler answers 404 without touching anything — to those who may see
                // which clusters exist at all.
                enter()
            } else {
                policy.decide_level(
                    &caller.principal,
                    &name,
                    *level,
                    &action_phrase(action.as_deref()),
                )
            }
        }
    };
    let user = caller.principal.user.clone();
    let mut resp = match decision {
        Decision::Allow => {
            req.extensions_mut().insert(caller.clone());
            CURRENT.scope(caller, next.run(req)).await
        }
        Decision::Deny(why) => {
            tracing::info!(user = %user, method = %req.method(), path = local, %why, "refused by policy");
            // A refused change to a configured cluster is audited; requests for paths and
            // clusters that do not exist (a scanner's) are not: they could change nothing.
            if let (RouteNeed::Cluster(cluster, _), Some(action)) = (&need, &action) {
                let cluster = percent_encoding::percent_decode_str(cluster).decode_utf8_lossy();
                if state.cluster(&cluster).is_ok() {
                    caller.audit_denied(&state, &cluster, action, b"", &why);
                }
            }
            if need == RouteNeed::Monitoring && !caller.principal.authenticated {
                refuse_scraper(&state)
            } else {
                refuse(&state, &caller, &req, local, why)
            }
        }
    };
    resp.extensions_mut().insert(RequestUser(user));
    resp
}

/// Whether the caller may see that clusters exist at all (some cluster's viewer, or anonymous
/// access is on).
pub fn may_enter(state: &AppState, caller: &Caller) -> bool {
    let clusters = state.clusters();
    let names: Vec<&str> = clusters.iter().map(|c| c.name()).collect();
    state
        .config()
        .access
        .policy
        .may_enter(&caller.principal, &names)
}

/// Whether the caller may read every configured cluster.
fn reads_every_cluster(state: &AppState, caller: &Caller) -> bool {
    visible_clusters(state, caller).len() == state.clusters().len()
}

/// Whether the request presents the `--metrics-token-file` token.
pub fn presents_metrics_token(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.config().access.metrics_token else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| token.admits(v.as_bytes()))
}

/// `/metrics` refused to someone not signed in: a plain 401 a scraper can report, never a
/// redirect to the login page (which a scraper would follow and fail to parse). A signed-in user
/// without any role gets the usual 403.
fn refuse_scraper(state: &AppState) -> Response {
    let how = if state.config().access.metrics_token.is_some() {
        "metrics need a signed-in user or the metrics token (Authorization: Bearer …)"
    } else {
        "metrics need a signed-in user; for a scraper, set --metrics-token-file"
    };
    let mut resp = (StatusCode::UNAUTHORIZED, how).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"etcdboard metrics\""),
    );
    resp
}

/// A refusal: a sign-in redirect for a page navigation when a login page exists, else 401/403
/// (an error page for HTML routes, JSON for the API).
fn refuse(state: &AppState, caller: &Caller, req: &Request, local: &str, why: String) -> Response {
    let is_api = local.starts_with("/api/");
    let login_page = matches!(state.config().access.identity, Identity::Users(_));
    let navigation = req.method() == Method::GET && !req.headers().contains_key("hx-request");
    if !caller.principal.authenticated && login_page && navigation && !is_api {
        let next = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let to = format!(
            "{}/login?next={}",
            state.base(),
            percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
        );
        return Redirect::to(&to).into_response();
    }
    let err = caller.refusal(state, why);
    if is_api {
        err.into_response()
    } else {
        super::error_page(state, err.status(), err.to_string(), req.headers())
    }
}

/// `?next=` of the login page.
#[derive(Debug, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

/// Where to go after signing in: only paths of this app (never another site).
fn safe_next(state: &AppState, next: Option<&str>) -> String {
    let home = format!("{}/", state.base());
    match next {
        Some(n)
            if n.starts_with(&home)
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => home,
    }
}

fn users_identity(state: &AppState) -> Result<&UsersIdentity, AppError> {
    match &state.config().access.identity {
        Identity::Users(u) => Ok(u),
        Identity::Proxy(_) => Err(AppError::NotFound(
            "sign in through the authenticating proxy in front of etcdboard".into(),
        )),
        Identity::None => Err(AppError::NotFound(
            "etcdboard runs without sign-in (--auth none)".into(),
        )),
    }
}

/// The layout of the login page: no "sign in" link in the top bar of the sign-in page itself.
fn login_layout(state: &AppState) -> crate::views::Layout {
    let mut layout = super::keys::layout(state, None, None);
    layout.account.login = None;
    layout
}

/// `GET /login`: the sign-in form.
pub async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<NextParam>,
) -> Result<Response, AppError> {
    users_identity(&state)?;
    let page = crate::views::LoginPage {
        layout: login_layout(&state),
        action: format!("{}/login", state.base()),
        next: safe_next(&state, q.next.as_deref()),
        user: String::new(),
        error: None,
    };
    Ok(super::html(super::render_html(&page)?))
}

/// What the sign-in page says when the browser would drop the session cookie.
fn insecure_sign_in(host: &str) -> String {
    format!(
        "Signing in needs HTTPS: this page was opened over plain HTTP at {host}, where the browser \
         drops the session cookie (it is Secure). Open etcdboard over HTTPS (TLS at the ingress), \
         or on localhost (e.g. kubectl port-forward)."
    )
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// The answer to a throttled sign-in: 429 with `Retry-After`, the form again with the wait.
fn throttled(
    state: &AppState,
    caller: &Caller,
    form: LoginForm,
    next: String,
    wait: std::time::Duration,
) -> Result<Response, AppError> {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    tracing::warn!(user = %form.user, source = ?caller.source, retry_after = secs, "sign-in throttled");
    let page = crate::views::LoginPage {
        layout: login_layout(state),
        action: format!("{}/login", state.base()),
        next,
        user: form.user,
        error: Some(format!(
            "Too many failed sign-ins for this user name. Try again in {secs} s."
        )),
    };
    let mut resp = super::html(super::render_html(&page)?);
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Ok(resp)
}

/// `POST /login`: checks the password (argon2/bcrypt, off the async threads, two at a time) and
/// sets the signed cookie. After [`crate::domain::login_throttle::FREE_FAILURES`] failures for a
/// user name, further attempts for it wait (429 with `Retry-After`, no password check).
pub async fn login(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let users = users_identity(&state)?;
    let next = safe_next(&state, form.next.as_deref());
    // The cookie is `Secure`: on a plain-HTTP page (not loopback) the browser would drop it and
    // the user would land on this form again with no word why. Say so instead.
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if let Some(host) = origin.and_then(insecure_origin) {
        tracing::warn!(user = %form.user, %host, "sign-in over plain HTTP refused");
        let page = crate::views::LoginPage {
            layout: login_layout(&state),
            action: format!("{}/login", state.base()),
            next,
            user: form.user,
            error: Some(insecure_sign_in(&host)),
        };
        let mut resp = super::html(super::render_html(&page)?);
        *resp.status_mut() = StatusCode::FORBIDDEN;
        return Ok(resp);
    }
    if form.user.len() > MAX_CREDENTIAL_LEN || form.password.len() > MAX_CREDENTIAL_LEN {
        return Err(AppError::BadRequest(
            "user name or password too long".into(),
        ));
    }
    // Too many failures for this name: answer at once, without a password check.
    if let Err(wait) = state
        .login_throttle()
        .check(&form.user, std::time::Instant::now())
    {
        return throttled(&state, &caller, form, next, wait);
    }
    let user = users.users.iter().find(|u| u.name == form.user).cloned();
    // Unknown users are checked against the slowest real hash, and every refusal is padded to
    // the same floor below, so timing tells neither which names exist nor their hash kinds.
    let hash = user
        .as_ref()
        .map_or_else(|| users.decoy.clone(), |u| u.hash.clone());
    let (ok, checked_at) = {
        let _permit = state
            .login_permits()
            .acquire()
            .await
            .map_err(|_| AppError::Internal("login semaphore closed".into()))?;
        // Again now that this attempt's turn has come: many attempts sent at once all passed the
        // check above before any of them failed.
        if let Err(wait) = state
            .login_throttle()
            .check(&form.user, std::time::Instant::now())
        {
            return throttled(&state, &caller, form, next, wait);
        }
        let password = form.password.clone();
        let checked_at = std::time::Instant::now();
        let ok = tokio::task::spawn_blocking(move || hash.verify(&password))
            .await
            .map_err(|e| AppError::Internal(format!("password check: {e}")))?;
        (ok, checked_at)
    };
    match user.filter(|_| ok) {
        Some(u) => {
            state.login_throttle().succeeded(&u.name);
            tracing::info!(user = %u.name, source = ?caller.source, "signed in");
            let now = now_secs();
            let session = Session {
                user: u.name.clone(),
                groups: u.groups.clone(),
                expires: now + users.ttl.as_secs(),
                issued: Some(now),
            };
            let cookie = session_cookie(&state, &users.key.sign(&session), users.ttl);
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie?);
            Ok(resp)
        }
        None => {
            // Counted at once (attempts queued behind this one check the throttle again), then
            // answered no sooner than the floor.
            state
                .login_throttle()
                .failed(&form.user, std::time::Instant::now());
            tracing::warn!(user = %form.user, source = ?caller.source, "failed sign-in");
            tokio::time::sleep_until((checked_at + users.refusal_floor).into()).await;
            let page = crate::views::LoginPage {
                layout: login_layout(&state),
                action: format!("{}/login", state.base()),
                next,
                user: form.user,
                error: Some("Wrong user name or password.".into()),
            };
            let mut resp = super::html(super::render_html(&page)?);
            *resp.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(resp)
        }
    }
}

/// `POST /logout`: removes the cookie.
pub async fn logout(State(state): State<AppState>) -> Result<Response, AppError> {
    let mut resp = Redirect::to(&format!("{}/login", state.base())).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&state, "", Duration::ZERO)?,
    );
    Ok(resp)
}

fn session_cookie(state: &AppState, value: &str, ttl: Duration) -> Result<HeaderValue, AppError> {
    let text = format!(
        "{SESSION_COOKIE}={value}; Path={}/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        state.base(),
        ttl.as_secs()
    );
    HeaderValue::from_str(&text).map_err(|e| AppError::Internal(format!("cookie: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; etcdboard_session=xyz.abc; b=2"),
        );
        assert_eq!(cookie_value(&h, SESSION_COOKIE), Some("xyz.abc"));
        assert_eq!(cookie_value(&h, "c"), None);
    }

    #[test]
    fn forged_headers_count_only_from_trusted_proxies() {
        let p = ProxyIdentity {
            trusted: vec!["10.0.0.0/8".parse().unwrap()],
            user_header: "x-auth-request-user".into(),
            email_header: "x-auth-request-email".into(),
            groups_header: "x-auth-request-groups".into(),
        };
        let mut h = HeaderMap::new();
        h.insert("x-auth-request-user", HeaderValue::from_static("root"));
        h.insert(
            "x-auth-request-groups",
            HeaderValue::from_static("sre, ops ,"),
        );
        let trusted = from_proxy(&p, Some("10.1.1.1".parse().unwrap()), &h, "/");
        assert_eq!(
            trusted,
            Principal::user("root", vec!["sre".into(), "ops".into()])
        );
        let forged = from_proxy(&p, Some("127.0.0.1".parse().unwrap()), &h, "/");
        assert_eq!(forged, Principal::anonymous());
        assert_eq!(from_proxy(&p, None, &h, "/"), Principal::anonymous());
        let mut e = HeaderMap::new();
        e.insert("x-auth-request-email", HeaderValue::from_static("a@b.c"));
        assert_eq!(
            from_proxy(&p, Some("10.0.0.1".parse().unwrap()), &e, "/").user,
            "a@b.c"
        );
    }
}
