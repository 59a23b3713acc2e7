//! The key browser pages: the full page (tree or flat, deep-linkable), and the fragments htmx loads
//! (a level of the tree, a page of the list, a key view).

use std::sync::Arc;

use axum::extract::{Path, RawQuery as AxumQuery, State};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::domain::format::{display_bytes, parse_display, render, value_note, Rendered};
use crate::domain::key::{b64_std, RawQuery};
use crate::domain::listing::{Item, ListReq, Mode, Page};
use crate::domain::record::KeyRecord;
use crate::error::AppError;
use crate::etcd::index::IndexStatus;
use crate::etcd::page_cache;
use crate::etcd::{EtcdCluster, EtcdError};
use crate::views::edit::human_size;
use crate::views::{
    ClustersPage, HexLine, KeyView, KeysPage, Layout, MoreView, NodeView, NodesView, PickerOption,
    SearchForm, TokenView,
};
use crate::web::api::required_key;
use crate::web::assets;
use crate::web::common::{list_request, mode_name, Urls};
use crate::web::ui_edit;
use crate::web::{html, render_html};

/// Values larger than this are shown truncated, with a "load all" link.
const SHOW_BYTES: usize = 64 * 1024;

/// The layout of every page; `cluster` selects the picker entry and enables the search form.
pub fn layout(state: &AppState, cluster: Option<&str>, search: Option<SearchForm>) -> Layout {
    let base = state.base();
    let caller = super::auth::current().unwrap_or_else(super::auth::Caller::anonymous);
    let policy = &state.config().access.policy;
    let caps = cluster
        .map(|name| caller.caps(state, name))
        .unwrap_or_default();
    let users_mode = matches!(
        state.config().access.identity,
        crate::access::Identity::Users(_)
    );
    let account = crate::views::Account {
        user: caller
            .principal
            .authenticated
            .then(|| caller.principal.user.clone()),
        login: (users_mode && !caller.principal.authenticated).then(|| format!("{base}/login")),
        logout: (users_mode && caller.principal.authenticated).then(|| format!("{base}/logout")),
        note: cluster.and_then(|_| {
            if policy.read_only {
                Some("read-only".to_string())
            } else {
                (caps.read && !caps.write).then(|| "viewer".to_string())
            }
        }),
    };
    Layout {
        caps,
        account,
        home: format!("{base}/"),
        css: assets::url(base, "app.css"),
        js: assets::url(base, "app.js"),
        htmx: assets::url(base, "vendor/htmx/htmx.min.js"),
        icon: assets::url(base, "favicon.svg"),
        go: format!("{base}/go"),
        clusters: super::auth::visible_clusters(state, &caller)
            .into_iter()
            .map(|c| PickerOption {
                name: c.name().to_string(),
                url: Urls::new(base, c.name()).page("tree", None, None),
                selected: Some(c.name()) == cluster,
            })
            .collect(),
        search,
        alarms: cluster
            .and_then(|name| state.cluster(name).ok())
            .and_then(|c| state.monitor(&c).ok())
            .map(|m| {
                m.alarms()
                    .into_iter()
                    .map(|a| (format!("{} alarm on {}", a.alarm, a.member), a.advice))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// `GET /`: the first cluster's key browser (or the list when there are several).
pub async fn home(
    State(state): State<AppState>,
    caller: super::auth::Caller,
) -> Result<Response, AppError> {
    match super::auth::visible_clusters(&state, &caller).as_slice() {
        [only] => Ok(
            Redirect::to(&Urls::new(state.base(), only.name()).page("tree", None, None))
                .into_response(),
        ),
        _ => clusters_page(State(state), caller).await,
    }
}

/// `GET /clusters`: every configured cluster.
pub async fn clusters_page(
    State(state): State<AppState>,
    caller: super::auth::Caller,
) -> Result<Response, AppError> {
    let page = ClustersPage {
        layout: layout(&state, None, None),
        clusters: super::auth::visible_clusters(&state, &caller)
            .into_iter()
            .map(|c| {
                (
                    c.name().to_string(),
                    c.endpoints().join(", "),
                    Urls::new(state.base(), c.name()).page("tree", None, None),
                )
            })
            .collect(),
    };
    Ok(html(render_html(&page)?))
}

/// `GET /go?to=URL`: the cluster picker without JavaScript. Only our own pages are redirect targets.
pub async fn go(
    State(state): State<AppState>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let q = RawQuery::parse(query.as_deref());
    let to = q
        .text("to")
        .map_err(AppError::BadRequest)?
        .unwrap_or_default();
    let ours = state
        .clusters()
        .iter()
        .any(|c| to == Urls::new(state.base(), c.name()).page("tree", None, None));
    if !ours {
        return Err(AppError::BadRequest("unknown destination".into()));
    }
    Ok(Redirect::to(to).into_response())
}

/// Fallback for unknown pages.
pub async fn not_found() -> AppError {
    AppError::NotFound("no such page".into())
}

fn index_note(cluster: &EtcdCluster) -> String {
    match cluster.index().status() {
        IndexStatus::Ready(_) | IndexStatus::Idle => String::new(),
        IndexStatus::Building(n) => format!("indexing… {n} keys"),
        IndexStatus::Failed(why) if crate::etcd::gateway::says_denied(&why) => {
            "no index: the etcd user may not read every key, so pages ask etcd directly".into()
        }
        IndexStatus::Failed(_) => "index unavailable; retrying".into(),
    }
}

fn node(urls: &Urls, req: &ListReq, item: &Item, selected_key: Option<&[u8]>) -> NodeView {
    let mode = mode_name(&req.mode);
    let shown = match &req.mode {
        // Relative to the directory the prefix is in: a filter `/app/te` shows `team-a/`, not
        // `am-a/`.
        Mode::Tree { sep } => {
            let dir_len = req
                .prefix
                .windows(sep.len().max(1))
                .rposition(|w| w == sep.as_slice())
                .map_or(0, |at| at + sep.len());
            item.key.get(dir_len..).unwrap_or(&item.key)
        }
        Mode::Flat => &item.key,
    };
    let mut label = display_bytes(shown);
    if label.is_empty() {
        label = "(this prefix itself)".into();
    }
    if item.dir {
        NodeView {
            label,
            dir: true,
            href: urls.page("tree", Some(&item.key), None),
            fragment: urls.nodes("tree", &item.key, None),
            expanded: false,
            // A directory jumped to is the selected row.
            selected: selected_key == Some(item.key.as_slice()),
            children_html: String::new(),
        }
    } else {
        NodeView {
            label,
            dir: false,
            // Tree mode links the key alone (the page expands the path to it, whatever level this
            // fragment was); flat mode keeps the listing's prefix filter.
            href: match req.mode {
                Mode::Tree { .. } => urls.page("tree", None, Some(&item.key)),
                Mode::Flat => urls.page(mode, Some(&req.prefix), Some(&item.key)),
            },
            fragment: urls.key_view(&item.key, false),
            expanded: false,
            selected: selected_key == Some(item.key.as_slice()),
            children_html: String::new(),
        }
    }
}

fn nodes_view(urls: &Urls, req: &ListReq, page: &Page, selected_key: Option<&[u8]>) -> NodesView {
    let mode = mode_name(&req.mode);
    NodesView {
        gap: None,
        nodes: page
            .items
            .iter()
            .map(|i| node(urls, req, i, selected_key))
            .collect(),
        more: page.next.as_ref().map(|c| {
            let after = c.encode();
            MoreView {
                href: urls.page_after(mode, &req.prefix, &after),
                fragment: urls.nodes(mode, &req.prefix, Some(&after)),
            }
        }),
        empty: page.items.is_empty() && page.next.is_none() && req.start == req.prefix,
        denied: None,
    }
}

/// A tree level etcd's roles do not let the etcd user list (see [`EtcdError::is_denied`]): it
/// shows only `way` (the directory or key on the way to what was opened), and says why.
fn denied_level(req: &ListReq, way: Option<Item>) -> (Page, String) {
    let page = Page {
        revision: 0,
        items: way.into_iter().collect(),
        next: None,
        stale: false,
        cost: 0,
        rounds: 0,
    };
    let level = if req.prefix.is_empty() {
        "the top level".to_string()
    } else {
        format!("`{}`", display_bytes(&req.prefix))
    };
    let why = if page.items.is_empty() {
        format!(
            "etcd does not let the etcd user etcdboard signs in as list {level} (its etcd roles \
             cover other key ranges): filter by a prefix it may read, or open a key (/)"
        )
    } else {
        format!(
            "the rest of {level} is hidden: etcd's roles do not let etcdboard's etcd user list it"
        )
    };
    (page, why)
}

/// `list`, except that a level etcd's roles refuse is shown as [`denied_level`] with `way`.
fn or_denied<T>(
    listed: Result<T, AppError>,
    req: &ListReq,
    way: Option<Item>,
) -> Result<Result<T, (Page, String)>, AppError> {
    match listed {
        Ok(v) => Ok(Ok(v)),
        Err(AppError::Etcd(e)) if e.is_denied() => Ok(Err(denied_level(req, way))),
        Err(e) => Err(e),
    }
}

/// `GET /clusters/{cluster}/ui/nodes?prefix=&mode=&after=`: `<li>` rows of one level or page.
pub async fn nodes(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let req = list_request(
        &RawQuery::parse(query.as_deref()),
        c.separator(),
        state.config().page_size,
    )?;
    let (page, lost) = list_on(&state, c, &req).await?;
    let urls = Urls::new(state.base(), c.name());
    let mut view = nodes_view(&urls, &req, &page, None);
    let again = urls.page(mode_name(&req.mode), Some(&req.prefix), None);
    if let Some(lost) = lost {
        view.gap = Some((
            format!(
                "revision {lost}, which this listing was read at, has been compacted: from here on \
                 it is read at revision {}, so keys changed in between may be missing or repeated \
                 (list again)",
                page.revision
            ),
            again,
        ));
    } else if page.stale {
        view.gap = Some(("no quorum: this listing may be stale".into(), again));
    }
    Ok(html(render_html(&view)?))
}

/// Lists `req`. When the revision its listing was pinned at has been compacted since (Kubernetes
/// compacts every 5 minutes, so a page left open that long), it goes on from the same key at the
/// current revision instead, and says which revision was lost: the listing cannot be finished
/// at that revision, and starting again would lose the reader's place.
async fn list_on(
    state: &AppState,
    c: &Arc<EtcdCluster>,
    req: &ListReq,
) -> Result<(Page, Option<i64>), AppError> {
    match state.list(c, req).await {
        Err(AppError::Etcd(EtcdError::Compacted(lost))) if req.revision.is_some() => {
            let now = ListReq {
                revision: None,
                ..req.clone()
            };
            Ok((state.list(c, &now).await?, Some(lost)))
        }
        listed => listed.map(|page| (page, None)),
    }
}

fn key_view_for(
    urls: &Urls,
    key: &[u8],
    rec: Option<&KeyRecord>,
    revision: i64,
    stale: bool,
    full: bool,
    actions: crate::views::edit::KeyActions,
) -> KeyView {
    let mut view = KeyView {
        key_label: display_bytes(key),
        download_href: urls.value(key),
        key_b64: b64_std(key),
        found: rec.is_some(),
        mod_revision: 0,
        create_revision: 0,
        version: 0,
        lease_hex: String::new(),
        ttl: String::new(),
        size: String::new(),
        format: "",
        tokens: Vec::new(),
        text: None,
        hex: Vec::new(),
        value_b64: None,
        load_all: None,
        truncated_note: String::new(),
        stale,
        revision,
        permalink: urls.page("tree", None, Some(key)),
        actions,
        kube_note: String::new(),
        format_note: None,
        read_only: false,
    };
    let Some(rec) = rec else { return view };
    view.mod_revision = rec.mod_revision;
    view.create_revision = rec.create_revision;
    view.version = rec.version;
    if rec.lease != 0 {
        view.lease_hex = format!("{:016x}", rec.lease);
        view.ttl = match rec.ttl {
            Some(t) if t > 0 => format!("{t} s"),
            Some(_) => "expired".into(),
            None => "unknown".into(),
        };
    }
    view.size = human_size(rec.value.len());
    // A large value is not carried twice (shown, and again as base64 for copying: 7 MB of page
    // for a 5 MiB value); its copy buttons fetch the bytes when clicked.
    view.value_b64 = (rec.value.len() <= SHOW_BYTES).then(|| b64_std(&rec.value));
    // Kubernetes' own objects: decoded whole (a cut protobuf does not decode), read-only.
    if let Some(decoded) = crate::domain::k8s_proto::decode(&rec.value) {
        view.read_only = true;
        view.kube_note = decoded.note();
        if let crate::domain::k8s_proto::Decoded::Yaml { text, .. } = decoded {
            view.format = "YAML";
            match render(text.as_bytes()) {
                Rendered::Json(t) | Rendered::Yaml(t) => view.tokens = TokenView::list(t),
                _ => view.text = Some(text),
            }
            return view;
        }
    }
    if view.kube_note.is_empty() {
        view.format_note = value_note(&rec.value);
    }
    let shown: &[u8] = if !full && rec.value.len() > SHOW_BYTES {
        // Cut at a character boundary so valid text stays text.
        let mut cut = SHOW_BYTES;
        while cut > SHOW_BYTES - 4 && std::str::from_utf8(&rec.value[..cut]).is_err() {
            cut -= 1;
        }
        view.load_all = Some((
            urls.key_view(key, true),
            urls.page("tree", None, Some(key)) + "&full=1",
        ));
        view.truncated_note = format!(
            "Showing the first {} of {}.",
            human_size(cut),
            human_size(rec.value.len())
        );
        &rec.value[..cut]
    } else {
        &rec.value
    };
    let rendered = render(shown);
    view.format = rendered.label();
    match rendered {
        Rendered::Json(t) | Rendered::Yaml(t) => view.tokens = TokenView::list(t),
        Rendered::Text(t) => view.text = Some(t),
        Rendered::Binary(lines) => {
            view.hex = lines
                .into_iter()
                .map(|(off, hex, ascii)| HexLine { off, hex, ascii })
                .collect()
        }
    }
    view
}

/// `GET /clusters/{cluster}/ui/key?key=&full=`: the key view fragment.
pub async fn key_view(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let key = required_key(&q)?;
    let full = q.text("full").map_err(AppError::BadRequest)? == Some("1");
    let read = c.get(&key).await?;
    let urls = Urls::new(state.base(), c.name());
    let view = key_view_for(
        &urls,
        &key,
        read.value.as_ref(),
        read.revision,
        read.stale,
        full,
        ui_edit::key_actions(&state, c, &key),
    );
    Ok(html(render_html(&view)?))
}

/// The directories from `prefix` down to `key`'s parent, each ending with the separator: the
/// last [`MAX_DEEP_LEVELS`] of them when there are more.
fn ancestors(prefix: &[u8], key: &[u8], sep: &[u8]) -> Vec<Vec<u8>> {
    let mut ends = vec![prefix.len()];
    let mut from = prefix.len();
    while let Some(at) = key
        .get(from..)
        .and_then(|rest| rest.windows(sep.len()).position(|w| w == sep))
    {
        from += at + sep.len();
        ends.push(from);
    }
    let skip = ends.len().saturating_sub(MAX_DEEP_LEVELS);
    ends.iter()
        .enumerate()
        .skip(skip)
        .map(|(i, &end)| match i {
            0 => prefix.to_vec(),
            _ => key.get(..end).unwrap_or_default().to_vec(),
        })
        .collect()
}

/// Rows of each level above the key's own on a deep link.
const ANCESTOR_ROWS: usize = 20;

/// Most tree levels a deep link expands (each is its own listing, all read at once). A key
/// deeper than this opens in a tree rooted that many levels above it, as if filtered by that
/// prefix, so a key of thousands of separators cannot fan one request out to thousands of reads.
const MAX_DEEP_LEVELS: usize = 32;

/// The prefix a deep link's tree starts at when `key` lies more than [`MAX_DEEP_LEVELS`] levels
/// below `prefix`: the directory that many levels above the key.
fn deep_root(prefix: &[u8], key: &[u8], sep: &[u8]) -> Option<Vec<u8>> {
    ancestors(prefix, key, sep)
        .into_iter()
        .next()
        .filter(|root| root.as_slice() != prefix)
}

/// One level of a deep link's tree: the page of `dir` that shows `target`, the request it was
/// listed with, and the "earlier entries" link when it does not start at the beginning.
async fn level_around(
    state: &AppState,
    c: &Arc<EtcdCluster>,
    urls: &Urls,
    mode: &Mode,
    dir: &[u8],
    target: Item,
    limit: usize,
) -> Result<(ListReq, Page, Option<(String, String)>, Item), AppError> {
    let mut req = ListReq::first(dir.to_vec(), mode.clone(), limit);
    // A directory opened by itself (a jump to it): its own level from the start.
    if target.key.as_slice() <= dir {
        let page = state.list(c, &req).await?;
        return Ok((req, page, None, target));
    }
    let gap = Some((
        "… earlier entries (show from the start)".to_string(),
        urls.page("tree", Some(dir), None),
    ));
    // Far into a large level (the index shows twice a page of children before the target), the
    // level is listed from the target at once; otherwise its first page tells.
    let far = 2 * limit as u64;
    if page_cache::lies_beyond(c, dir, &req.mode, &target.key, far) {
        req.start = target.key.clone();
        let page = state.list(c, &req).await?;
        return Ok((req, page, gap, target));
    }
    let page = state.list(c, &req).await?;
    // The target is on the first page, or the whole level is (a missing key is then shown where
    // it would be, among all its siblings).
    if page.items.contains(&target) || page.next.is_none() {
        return Ok((req, page, None, target));
    }
    req.start = target.key.clone();
    req.revision = Some(page.revision);
    let page = state.list(c, &req).await?;
    Ok((req, page, gap, target))
}

/// The directory `key` names (`key` itself when it ends with `sep`, else `key` + `sep`) when
/// any key lies under it.
async fn directory_at(
    state: &AppState,
    c: &Arc<EtcdCluster>,
    mode: &Mode,
    key: &[u8],
    sep: &[u8],
) -> Result<Option<Vec<u8>>, AppError> {
    if sep.is_empty() {
        return Ok(None);
    }
    let dir = if key.ends_with(sep) {
        key.to_vec()
    } else {
        [key, sep].concat()
    };
    let page = state
        .list(c, &ListReq::first(dir.clone(), mode.clone(), 1))
        .await?;
    Ok((!page.items.is_empty()).then_some(dir))
}

/// Renders the tree with every directory on the way to `key` expanded, innermost first. A `key`
/// ending with the separator is a directory: it is expanded too, from its first entry.
async fn tree_path(
    state: &AppState,
    c: &Arc<EtcdCluster>,
    urls: &Urls,
    base_req: &ListReq,
    key: &[u8],
) -> Result<(String, Page), AppError> {
    let sep = match &base_req.mode {
        Mode::Tree { sep } => sep.clone(),
        Mode::Flat => Vec::new(),
    };
    let levels = ancestors(&base_req.prefix, key, &sep);
    // Every level is read at once (each is its own listing); they are nested afterwards.
    let listed = futures::future::try_join_all(levels.iter().enumerate().map(|(i, dir)| {
        let target = match levels.get(i + 1) {
            Some(child_dir) => Item {
                key: child_dir.clone(),
                dir: true,
            },
            None => Item {
                key: key.to_vec(),
                dir: false,
            },
        };
        // The key's own level gets a full page; the levels above show the way to it with a few
        // neighbours each (and "load more"), so that the path stays in view and the page stays
        // light enough to show at once.
        let limit = if i + 1 == levels.len() {
            base_req.limit
        } else {
            base_req.limit.min(ANCESTOR_ROWS)
        };
        async move {
            let listed =
                level_around(state, c, urls, &base_req.mode, dir, target.clone(), limit).await;
            let req = ListReq::first(dir.to_vec(), base_req.mode.clone(), limit);
            Ok::<_, AppError>(match or_denied(listed, &req, Some(target.clone()))? {
                Ok((req, page, gap, target)) => (req, page, gap, target, None),
                Err((page, why)) => (req, page, None, target, Some(why)),
            })
        }
    }))
    .await?;
    let mut inner = String::new();
    let mut root_page: Option<Page> = None;
    let revision = listed.iter().map(|l| l.1.revision).max().unwrap_or(0);
    for (req, page, gap, target, denied) in listed.into_iter().rev() {
        let mut view = nodes_view(urls, &req, &page, Some(key));
        view.gap = gap;
        view.denied = denied;
        if target.dir {
            let fragment = urls.nodes("tree", &target.key, None);
            if let Some(n) = view
                .nodes
                .iter_mut()
                .find(|n| n.dir && n.fragment == fragment)
            {
                n.expanded = true;
                n.children_html = std::mem::take(&mut inner);
            }
        }
        inner = render_html(&view)?;
        root_page = Some(page);
    }
    let mut page = root_page.ok_or_else(|| AppError::Internal("no tree level".into()))?;
    // A level shown only as the way to the key has no revision of its own.
    page.revision = page.revision.max(revision);
    Ok((inner, page))
}

/// `GET /clusters/{cluster}/keys?mode=&prefix=&key=&q=&go=&after=`: the key browser.
pub async fn page(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let mut req = list_request(&q, c.separator(), state.config().page_size)?;
    let mode = mode_name(&req.mode);
    let urls = Urls::new(state.base(), c.name());
    let mut key = q
        .bytes_or_b64("key")
        .map_err(AppError::BadRequest)?
        .filter(|k| !k.is_empty());
    let mut notice = None;
    // The search box holds display text (what labels show, and what it is refilled with): `\\`
    // and `\xNN` in it stand for bytes, so a label pasted or typed back finds the same key.
    let search_text = q.bytes("q").map(parse_display).unwrap_or_default();
    if !search_text.is_empty() {
        if q.text("go").map_err(AppError::BadRequest)? == Some("prefix") {
            req.prefix = search_text.clone();
            req.start = search_text.clone();
            key = None;
        } else {
            key = Some(search_text.clone());
        }
    }
    if let Some(k) = &key {
        if !k.starts_with(&req.prefix) {
            req.prefix.clear();
            req.start.clear();
        }
        if let Mode::Tree { sep } = &req.mode {
            if let Some(root) = deep_root(&req.prefix, k, sep) {
                req.prefix = root.clone();
                req.start = root;
            }
        }
    }

    // The key and a deep link's tree levels are read at once.
    let record = async {
        match &key {
            Some(k) => c.get(k).await.map(Some),
            None => Ok(None),
        }
    };
    let deep_tree = async {
        match (&key, &req.mode) {
            (Some(k), Mode::Tree { .. }) => tree_path(&state, c, &urls, &req, k).await.map(Some),
            _ => Ok(None),
        }
    };
    let (record, deep_tree) = tokio::join!(record, deep_tree);
    let (mut record, mut deep_tree) = (record?, deep_tree?);
    // No key of that name, but keys under it (a jump to `/config/app` or `/config/app/`): the
    // tree opens that directory with its row selected, and no "no such key" pane.
    let mut opened_dir = None;
    let missing = record.as_ref().is_some_and(|r| r.value.is_none());
    if let (Some(k), Mode::Tree { sep }, true) = (&key, &req.mode, missing) {
        if let Some(dir) = directory_at(&state, c, &req.mode, k, sep).await? {
            if let Some(root) = deep_root(&req.prefix, &dir, sep) {
                req.prefix = root.clone();
                req.start = root;
            }
            deep_tree = Some(tree_path(&state, c, &urls, &req, &dir).await?);
            notice = Some(format!(
                "{} is a directory: its keys are listed in the tree.",
                display_bytes(&dir)
            ));
            record = None;
            key = Some(dir.clone());
            opened_dir = Some(dir);
        }
    }
    if let (Some(k), Some(read)) = (&key, &record) {
        if read.value.is_none() && !search_text.is_empty() {
            notice = Some(format!(
                "No key {} — showing where it would be.",
                display_bytes(k)
            ));
        }
    }

    let (nodes_html, page) = match deep_tree {
        Some(tree) => tree,
        None => {
            let mut gap = None;
            if let Some(k) = &key {
                if req.start == req.prefix && k.as_slice() > req.prefix.as_slice() {
                    req.start = k.clone();
                    gap = Some((
                        "… earlier keys (show from the start)".to_string(),
                        urls.page(mode, Some(&req.prefix), None),
                    ));
                }
            }
            if req.start != req.prefix && gap.is_none() {
                gap = Some((
                    "… earlier keys (show from the start)".to_string(),
                    urls.page(mode, Some(&req.prefix), None),
                ));
            }
            // A page of its own: read at the current revision when its listing's is gone.
            let (page, denied) = match or_denied(list_on(&state, c, &req).await, &req, None)? {
                Ok((page, _)) => (page, None),
                Err((page, why)) => (page, Some(why)),
            };
            let mut view = nodes_view(&urls, &req, &page, key.as_deref());
            view.gap = gap;
            view.empty &= denied.is_none();
            view.denied = denied;
            (render_html(&view)?, page)
        }
    };

    let key_html = match (&key, &record) {
        (Some(k), Some(read)) => Some(render_html(&key_view_for(
            &urls,
            k,
            read.value.as_ref(),
            read.revision,
            read.stale,
            q.text("full").ok().flatten() == Some("1"),
            ui_edit::key_actions(&state, c, k),
        ))?),
        _ => None,
    };
    let stale = page.stale || record.as_ref().is_some_and(|r| r.stale);
    let view = KeysPage {
        layout: layout(
            &state,
            Some(c.name()),
            Some(SearchForm {
                action: format!("{}/clusters/{}/keys", state.base(), c.name()),
                mode: mode.to_string(),
                value: display_bytes(&search_text),
            }),
        ),
        cluster: c.name().to_string(),
        mode: mode.to_string(),
        tree_href: urls.page("tree", Some(&req.prefix), key.as_deref()),
        // A directory opened by a jump lists flat as its keys (a prefix filter).
        flat_href: match &opened_dir {
            Some(dir) => urls.page("flat", Some(dir), None),
            None => urls.page("flat", Some(&req.prefix), key.as_deref()),
        },
        prefix_label: display_bytes(&req.prefix),
        clear_filter: urls.page(mode, None, None),
        revision: page.revision,
        index_note: index_note(c),
        notice,
        nodes_html,
        key_html,
        stale,
        live: ui_edit::browser_links(state.base(), c, mode, &req.prefix, page.revision),
    };
    Ok(html(render_html(&view)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_filter_inside_a_name_shows_whole_names() {
        let urls = Urls::new("", "c");
        let sep = Mode::Tree { sep: b"/".to_vec() };
        let label = |prefix: &[u8], key: &[u8], dir: bool| {
            let req = ListReq::first(prefix.to_vec(), sep.clone(), 10);
            let item = Item {
                key: key.to_vec(),
                dir,
            };
            node(&urls, &req, &item, None).label
        };
        assert_eq!(label(b"/app/te", b"/app/team-a/", true), "team-a/");
        assert_eq!(label(b"/app/", b"/app/team-a/", true), "team-a/");
        assert_eq!(label(b"", b"/", true), "/");
        assert_eq!(label(b"no", b"noslash", false), "noslash");
    }

    #[test]
    fn ancestors_walk_every_separator_including_empty_segments() {
        assert_eq!(
            ancestors(b"", b"/a//b", b"/"),
            vec![
                b"".to_vec(),
                b"/".to_vec(),
                b"/a/".to_vec(),
                b"/a//".to_vec()
            ]
        );
        assert_eq!(ancestors(b"/a/", b"/a/x", b"/"), vec![b"/a/".to_vec()]);
        assert_eq!(ancestors(b"", b"noslash", b"/"), vec![b"".to_vec()]);
    }

    #[test]
    fn a_deep_link_expands_at_most_the_last_levels_above_a_very_deep_key() {
        assert_eq!(deep_root(b"", b"/a/b/c", b"/"), None);
        let exactly = "/x".repeat(MAX_DEEP_LEVELS - 1);
        assert_eq!(
            ancestors(b"", exactly.as_bytes(), b"/").len(),
            MAX_DEEP_LEVELS
        );
        assert_eq!(deep_root(b"", exactly.as_bytes(), b"/"), None);
        let key = "/".repeat(10_000) + "k";
        let root = deep_root(b"", key.as_bytes(), b"/").expect("rooted deeper");
        assert_eq!(root, "/".repeat(10_000 - MAX_DEEP_LEVELS + 1).into_bytes());
        assert_eq!(
            ancestors(&root, key.as_bytes(), b"/").len(),
            MAX_DEEP_LEVELS
        );
    }
}
