//! The editing pages: the editor (fragment and full page), a key's history with diffs, leases, and
//! export/import. They read through the gateway and render; every write goes from the browser to
//! the JSON API ([`crate::web::edit`], [`crate::web::transfer`]), which does the CAS.

use std::sync::Arc;

use axum::extract::{Path, RawQuery as AxumQuery, State};
use axum::response::Response;

use crate::app::AppState;
use crate::domain::edit::{line_diff, line_ending_difference, REQUEST_OVERHEAD};
use crate::domain::format::{display_bytes, hex_dump};
use crate::domain::key::{b64_std, percent_encode_query, RawQuery};
use crate::domain::record::KeyRecord;
use crate::error::AppError;
use crate::etcd::EtcdCluster;
use crate::views::edit::{
    diff_pair, editor_mode, human_size, BrowserLinks, DiffLineView, DiffView, EditPage,
    EditorAssets, EditorView, HistoryPage, KeyActions, LeaseRow, LeasesPage, ShownValue,
    TransferPage, VersionRow,
};
use crate::views::{HexLine, Layout, SearchForm};
use crate::web::api::required_key;
use crate::web::assets;
use crate::web::common::Urls;
use crate::web::keys::layout;
use crate::web::{html, render_html};

/// Versions per history page.
const HISTORY_PAGE: usize = 50;
/// Lines past which a diff compares whole blocks (the diff is quadratic).
const DIFF_MAX_LINES: usize = 2000;
/// Leases listed at most.
const MAX_LEASES: usize = 500;
/// Keys listed per lease (the count is always complete).
const KEYS_PER_LEASE: usize = 20;

/// URLs of the editing pages and of the JSON API, for one cluster, under the base path.
struct EditUrls {
    base: String,
    cluster: String,
}

impl EditUrls {
    fn new(base: &str, cluster: &str) -> EditUrls {
        EditUrls {
            base: base.to_string(),
            cluster: cluster.to_string(),
        }
    }

    fn page(&self, path: &str) -> String {
        format!("{}/clusters/{}/{path}", self.base, self.cluster)
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api/v1/clusters/{}/{path}", self.base, self.cluster)
    }

    fn with_key(url: String, name: &str, key: &[u8]) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{name}={}", percent_encode_query(key))
    }
}

fn editor_assets(base: &str) -> EditorAssets {
    EditorAssets {
        cm_js: assets::url(base, "vendor/codemirror/codemirror.js"),
        cm_modes: ["javascript", "yaml", "toml"]
            .iter()
            .map(|m| assets::url(base, &format!("vendor/codemirror/mode/{m}.js")))
            .collect::<Vec<_>>()
            .join(" "),
        js_yaml: assets::url(base, "vendor/js-yaml/js-yaml.min.js"),
    }
}

fn page_layout(state: &AppState, c: &EtcdCluster) -> Layout {
    layout(
        state,
        Some(c.name()),
        Some(SearchForm {
            action: format!("{}/clusters/{}/keys", state.base(), c.name()),
            mode: "tree".into(),
            value: String::new(),
        }),
    )
}

/// The links of a key view: edit, history, delete, reload, and "new key" next to it.
pub fn key_actions(state: &AppState, cluster: &EtcdCluster, key: &[u8]) -> KeyActions {
    let base = state.base();
    let write_refusal = crate::web::auth::current_refusal(
        state,
        cluster.name(),
        crate::domain::access::Need::WriteKey(key),
    );
    let sep = cluster.separator().as_bytes();
    let deleted_at = cluster.index().deleted_at(key);
    let cluster = cluster.name();
    let u = EditUrls::new(base, cluster);
    let dir_len = if sep.is_empty() {
        0
    } else {
        key.windows(sep.len())
            .rposition(|w| w == sep)
            .map_or(0, |at| at + sep.len())
    };
    KeyActions {
        new_sibling: EditUrls::with_key(u.page("ui/edit?new=1"), "prefix", &key[..dir_len]),
        view_url: Urls::new(base, cluster).key_view(key, false),
        edit_href: EditUrls::with_key(u.page("edit"), "key", key),
        edit_fragment: EditUrls::with_key(u.page("ui/edit"), "key", key),
        history_href: EditUrls::with_key(u.page("history"), "key", key),
        delete_url: EditUrls::with_key(u.api("key"), "key", key),
        can_write: write_refusal.is_none(),
        write_refusal: write_refusal.unwrap_or_default(),
        deleted: deleted_at.map(|rev| {
            let history = EditUrls::with_key(u.page("history"), "key", key);
            (rev, format!("{history}&before={}", rev - 1))
        }),
    }
}

/// What the key browser needs for live updates, "new key", "delete prefix" and "export".
/// `revision` is what the page was rendered at: the watch tells the page to resync if it started later.
pub fn browser_links(
    base: &str,
    cluster: &EtcdCluster,
    mode: &str,
    prefix: &[u8],
    revision: i64,
) -> BrowserLinks {
    let u = EditUrls::new(base, cluster.name());
    let urls = Urls::new(base, cluster.name());
    let with_prefix = |url: String| {
        if prefix.is_empty() {
            url
        } else {
            EditUrls::with_key(url, "prefix", prefix)
        }
    };
    BrowserLinks {
        watch_url: format!(
            "{}&start_revision={revision}",
            EditUrls::with_key(u.api("watch"), "prefix", prefix)
        ),
        level_url: urls.nodes(mode, prefix, None),
        sep: cluster.separator().to_string(),
        new_key_href: with_prefix(u.page("edit?new=1")),
        new_key_fragment: with_prefix(u.page("ui/edit?new=1")),
        delete_prefix_url: u.api("delete-prefix"),
        delete_prefix_preview: if prefix.is_empty() {
            String::new()
        } else {
            EditUrls::with_key(u.api("delete-prefix"), "prefix", prefix)
        },
        transfer_href: with_prefix(u.page("transfer")),
        edit_js: assets::url(base, "edit.js"),
        editor_css: assets::url(base, "vendor/codemirror/codemirror.css"),
    }
}

/// The editor for `key` (its current value), or for a new key prefilled with `prefill`.
fn editor_view(
    state: &AppState,
    c: &EtcdCluster,
    key: Option<&[u8]>,
    prefill: &[u8],
    rec: Option<&KeyRecord>,
    revision: i64,
    stale: bool,
) -> EditorView {
    let base = state.base();
    let u = EditUrls::new(base, c.name());
    let urls = Urls::new(base, c.name());
    let max = state.config().max_value_bytes;
    let value: &[u8] = rec.map_or(&[], |r| r.value.as_slice());
    // A new key under a directory whose name is not UTF-8 keeps that directory as bytes.
    let bytes_prefix = (key.is_none() && std::str::from_utf8(prefill).is_err()).then_some(prefill);
    let mut view = EditorView {
        is_new: rec.is_none(),
        key_label: key.map(display_bytes).unwrap_or_default(),
        key_b64: key.map(b64_std).unwrap_or_default(),
        key_input: match (key, std::str::from_utf8(prefill)) {
            (Some(k), _) => String::from_utf8_lossy(k).into_owned(),
            (None, Ok(text)) => text.to_string(),
            // Typed text cannot carry these bytes: the input takes the rest of the key only.
            (None, Err(_)) => String::new(),
        },
        prefix_b64: bytes_prefix.map(b64_std).unwrap_or_default(),
        prefix_label: bytes_prefix.map(display_bytes).unwrap_or_default(),
        mod_revision: 0,
        version: 0,
        lease_hex: String::new(),
        ttl: String::new(),
        value_b64: b64_std(value),
        value_text: std::str::from_utf8(value).ok().map(str::to_string),
        hex: Vec::new(),
        mode: editor_mode(key.unwrap_or(prefill), value),
        size: human_size(value.len()),
        max_bytes: max,
        max_label: human_size(max),
        request_overhead: REQUEST_OVERHEAD,
        revision,
        stale,
        put_url: u.api("key"),
        view_url: String::new(),
        view_base: format!("{base}/clusters/{}/ui/key?key=", c.name()),
        permalink: String::new(),
        permalink_base: format!("{base}/clusters/{}/keys?mode=tree&key=", c.name()),
        history_href: String::new(),
        assets: editor_assets(base),
    };
    if view.value_text.is_none() {
        view.hex = hex_dump(value)
            .into_iter()
            .map(|(off, hex, ascii)| HexLine { off, hex, ascii })
            .collect();
    }
    if let Some(k) = key {
        view.view_url = urls.key_view(k, false);
        view.permalink = urls.page("tree", None, Some(k));
    }
    if let (Some(k), Some(r)) = (key, rec) {
        view.mod_revision = r.mod_revision;
        view.version = r.version;
        view.history_href = EditUrls::with_key(u.page("history"), "key", k);
        if r.lease != 0 {
            view.lease_hex = format!("{:016x}", r.lease);
            view.ttl = match r.ttl {
                Some(t) if t > 0 => format!("{t} s"),
                Some(_) => "expired".into(),
                None => "unknown".into(),
            };
        }
    }
    view
}

/// Reads what the editor query names: `key=K` (an existing or a missing key), or `new=1&prefix=P`.
async fn load_editor(
    state: &AppState,
    caller: &crate::web::auth::Caller,
    c: &Arc<EtcdCluster>,
    query: Option<&str>,
) -> Result<EditorView, AppError> {
    let q = RawQuery::parse(query);
    let key = q
        .bytes_or_b64("key")
        .map_err(AppError::BadRequest)?
        .filter(|k| !k.is_empty());
    match key {
        Some(k) => {
            // An editor that could not save would only waste the user's typing.
            caller.require(state, c.name(), crate::domain::access::Need::WriteKey(&k))?;
            let read = c.get(&k).await?;
            if read
                .value
                .as_ref()
                .is_some_and(|r| crate::domain::k8s_proto::is_kube_proto(&r.value))
            {
                return Err(AppError::Forbidden(
                    crate::domain::k8s_proto::EDIT_REFUSED.into(),
                ));
            }
            Ok(editor_view(
                state,
                c,
                Some(&k),
                b"",
                read.value.as_ref(),
                read.revision,
                read.stale,
            ))
        }
        None if q.text("new").map_err(AppError::BadRequest)? == Some("1") => {
            let prefix = q
                .bytes_or_b64("prefix")
                .map_err(AppError::BadRequest)?
                .unwrap_or_default();
            if !caller.caps(state, c.name()).write {
                caller.require(
                    state,
                    c.name(),
                    crate::domain::access::Need::WriteKey(&prefix),
                )?;
            }
            Ok(editor_view(state, c, None, &prefix, None, 0, false))
        }
        None => Err(AppError::BadRequest(
            "parameter `key` (or `new=1`) is required".into(),
        )),
    }
}

/// `GET /clusters/{cluster}/ui/edit?key=K` (or `?new=1&prefix=P`): the editor fragment.
pub async fn editor_fragment(
    State(state): State<AppState>,
    caller: crate::web::auth::Caller,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let view = load_editor(&state, &caller, c, query.as_deref()).await?;
    Ok(html(render_html(&view)?))
}

/// `GET /clusters/{cluster}/edit?key=K` (or `?new=1&prefix=P`): the editor as a page.
pub async fn editor_page(
    State(state): State<AppState>,
    caller: crate::web::auth::Caller,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let view = load_editor(&state, &caller, c, query.as_deref()).await?;
    let base = state.base();
    let u = EditUrls::new(base, c.name());
    let urls = Urls::new(base, c.name());
    let key = RawQuery::parse(query.as_deref())
        .bytes_or_b64("key")
        .map_err(AppError::BadRequest)?
        .filter(|k| !k.is_empty());
    let page = EditPage {
        layout: page_layout(&state, c),
        cluster: c.name().to_string(),
        title: if view.is_new && key.is_none() {
            "new key".into()
        } else {
            format!("edit {}", view.key_label)
        },
        watch_url: key
            .as_deref()
            .map(|k| {
                format!(
                    "{}&start_revision={}",
                    EditUrls::with_key(u.api("watch"), "prefix", k),
                    view.revision
                )
            })
            .unwrap_or_default(),
        back_href: urls.page("tree", None, key.as_deref()),
        edit_js: assets::url(base, "edit.js"),
        editor_css: assets::url(base, "vendor/codemirror/codemirror.css"),
        editor_html: render_html(&view)?,
    };
    Ok(html(render_html(&page)?))
}

fn positive(q: &RawQuery, name: &str) -> Result<Option<i64>, AppError> {
    match q.text(name).map_err(AppError::BadRequest)? {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| {
                AppError::BadRequest(format!("parameter `{name}` must be a revision > 0"))
            }),
    }
}

/// The version of `key` as of revision `rev` (from the listed versions when there).
async fn version_at(
    c: &EtcdCluster,
    key: &[u8],
    listed: &[KeyRecord],
    rev: i64,
) -> Result<Option<KeyRecord>, AppError> {
    if let Some(r) = listed.iter().find(|r| r.mod_revision == rev) {
        return Ok(Some(r.clone()));
    }
    let page = c.history(key, Some(rev), 1).await?;
    Ok(page.versions.into_iter().next())
}

/// `GET /clusters/{cluster}/history?key=K&before=&rev=&a=&b=`: retained versions, one shown, or a
/// diff of two.
pub async fn history_page(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let key = required_key(&q)?;
    let before = positive(&q, "before")?;
    let rev = positive(&q, "rev")?;
    let (a, b) = (positive(&q, "a")?, positive(&q, "b")?);
    let restored = positive(&q, "restored")?;
    let current = c.get(&key).await?;
    let current_revision = current.value.as_ref().map_or(0, |r| r.mod_revision);
    // A deleted key's versions end just before its deletion, when etcdboard saw it.
    let before = match (&current.value, before) {
        (None, None) => c.index().deleted_at(&key).map(|rev| rev - 1),
        (_, before) => before,
    };
    let page = c.history(&key, before, HISTORY_PAGE).await?;
    if page.versions.is_empty() && !page.compacted && before.is_none() {
        return Err(AppError::NotFound(format!(
            "no key {} now, and etcdboard did not see it deleted, so it cannot tell where its              history ends; open the history with before=REVISION (any revision it existed at)",
            display_bytes(&key)
        )));
    }
    let base = state.base();
    let u = EditUrls::new(base, c.name());
    let urls = Urls::new(base, c.name());
    let self_href = EditUrls::with_key(u.page("history"), "key", &key);
    let with_before = |href: String| match before {
        Some(r) => format!("{href}&before={r}"),
        None => href,
    };

    let shown = match rev {
        Some(r) => version_at(c, &key, &page.versions, r).await?.map(|v| {
            ShownValue::new(
                v.mod_revision,
                v.version,
                &v.value,
                v.mod_revision == current_revision,
            )
        }),
        None => None,
    };
    let diff = match (a, b) {
        (Some(a), Some(b)) => {
            let old = version_at(c, &key, &page.versions, a).await?;
            let new = version_at(c, &key, &page.versions, b).await?;
            match (old, new) {
                (Some(old), Some(new)) => {
                    let (old_text, new_text, as_hex) = diff_pair(&old.value, &new.value);
                    Some(DiffView {
                        a: old.mod_revision,
                        b: new.mod_revision,
                        as_hex,
                        identical: old.value == new.value,
                        endings: line_ending_difference(
                            &old_text,
                            &new_text,
                            (
                                &format!("revision {}", old.mod_revision),
                                &format!("revision {}", new.mod_revision),
                            ),
                        ),
                        lines: DiffLineView::list(line_diff(&old_text, &new_text, DIFF_MAX_LINES)),
                    })
                }
                _ => {
                    return Err(AppError::NotFound(format!(
                        "revision {} is not a retained version of this key",
                        if a < b { a } else { b }
                    )))
                }
            }
        }
        _ => None,
    };
    let (pick_a, pick_b) = match (a, b) {
        (Some(a), Some(b)) => (a, b),
        _ => (
            page.versions.get(1).map_or(0, |v| v.mod_revision),
            page.versions.first().map_or(0, |v| v.mod_revision),
        ),
    };
    let versions = page
        .versions
        .iter()
        .map(|v| VersionRow {
            revision: v.mod_revision,
            version: v.version,
            size: human_size(v.value.len()),
            lease_hex: if v.lease == 0 {
                String::new()
            } else {
                format!("{:x}", v.lease)
            },
            current: v.mod_revision == current_revision,
            view_href: format!(
                "{}&rev={}#shown",
                with_before(self_href.clone()),
                v.mod_revision
            ),
            a_checked: v.mod_revision == pick_a,
            b_checked: v.mod_revision == pick_b,
            shown: Some(v.mod_revision) == rev,
        })
        .collect::<Vec<_>>();
    let view = HistoryPage {
        stale: page.stale || current.stale,
        layout: page_layout(&state, c),
        cluster: c.name().to_string(),
        key_label: display_bytes(&key),
        key_b64: b64_std(&key),
        key_href: urls.page("tree", None, Some(&key)),
        edit_href: EditUrls::with_key(u.page("edit"), "key", &key),
        current_revision,
        oldest: page.versions.last().map_or(0, |v| v.mod_revision),
        older_href: page.older.map(|r| format!("{self_href}&before={r}")),
        newest_href: before.map(|_| self_href.clone()),
        versions,
        compacted: page.compacted,
        form_action: u.page("history#diff"),
        before: before.unwrap_or(0),
        shown,
        diff,
        put_url: u.api("key"),
        history_api: EditUrls::with_key(u.api("history"), "key", &key),
        self_href,
        restored,
        edit_js: assets::url(base, "edit.js"),
    };
    Ok(html(render_html(&view)?))
}

/// `GET /clusters/{cluster}/leases`: every lease, its TTL and its keys.
pub async fn leases_page(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let leases = c.leases(MAX_LEASES, KEYS_PER_LEASE).await?;
    let base = state.base();
    let u = EditUrls::new(base, c.name());
    let urls = Urls::new(base, c.name());
    let rows = leases
        .iter()
        .map(|l| {
            let count = l.key_count.unwrap_or(0);
            LeaseRow {
                id_hex: format!("{:016x}", l.id),
                ttl: if l.ttl < 0 {
                    "expired".into()
                } else {
                    format!("{} s", l.ttl)
                },
                expiring: l.ttl <= 5,
                granted: format!("{} s", l.granted_ttl),
                keys: l
                    .keys
                    .iter()
                    .map(|k| (display_bytes(k), urls.page("tree", None, Some(k))))
                    .collect(),
                key_count: count,
                more_keys: count.saturating_sub(l.keys.len()),
                unlisted: l.key_count.is_none(),
                revoke_url: u.api(&format!("leases/0x{:x}", l.id)),
            }
        })
        .collect::<Vec<_>>();
    let view = LeasesPage {
        layout: page_layout(&state, c),
        cluster: c.name().to_string(),
        truncated: rows.len() >= MAX_LEASES,
        leases: rows,
        self_href: u.page("leases"),
        edit_js: assets::url(base, "edit.js"),
    };
    Ok(html(render_html(&view)?))
}

/// `GET /clusters/{cluster}/transfer?prefix=P`: export (download, with progress) and import
/// (dry run, then apply).
pub async fn transfer_page(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    AxumQuery(query): AxumQuery,
) -> Result<Response, AppError> {
    let c = &state.cluster(&cluster)?;
    let q = RawQuery::parse(query.as_deref());
    let prefix = q
        .bytes_or_b64("prefix")
        .map_err(AppError::BadRequest)?
        .unwrap_or_default();
    let base = state.base();
    let u = EditUrls::new(base, c.name());
    let urls = Urls::new(base, c.name());
    let export = EditUrls::with_key(u.api("export"), "prefix", &prefix);
    let view = TransferPage {
        layout: page_layout(&state, c),
        cluster: c.name().to_string(),
        prefix_label: display_bytes(&prefix),
        prefix_input: String::from_utf8_lossy(&prefix).into_owned(),
        form_action: u.page("transfer"),
        export_json: format!("{export}&format=json"),
        export_yaml: format!("{export}&format=yaml"),
        count_url: EditUrls::with_key(u.api("delete-prefix"), "prefix", &prefix),
        import_url: u.api("import"),
        keys_href: urls.page("tree", Some(&prefix), None),
        edit_js: assets::url(base, "edit.js"),
    };
    Ok(html(render_html(&view)?))
}
