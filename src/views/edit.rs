//! Views of the editing side: the editor, a key's history, leases, export/import, and the links
//! and data the key browser needs to offer them. Display-ready strings and URLs only; the browser
//! script takes every URL from these (the app may run under a base path).

use askama::Template;

use crate::domain::edit::DiffLine;
use crate::domain::format::{render, Rendered};
use crate::views::{HexLine, Layout, TokenView};

/// Links and URLs of one key view (`keys/key.html`).
#[derive(Debug, Clone, Default)]
pub struct KeyActions {
    /// This key view as a fragment (to reload it in place).
    pub view_url: String,
    /// The editor as a full page (no-JS / new tab target of "edit").
    pub edit_href: String,
    /// The editor as a fragment for `#keyview`.
    pub edit_fragment: String,
    /// The key's history page.
    pub history_href: String,
    /// `DELETE` URL of the key in the JSON API (the script appends `expected_mod_revision`).
    pub delete_url: String,
    /// A new-key editor prefilled with this key's directory ("new key" while this key is open).
    pub new_sibling: String,
    /// Whether the caller may write this key (else edit/delete/create are not offered).
    pub can_write: bool,
    /// Why not, when they may not (shown beside the key, so "no edit button" is explained).
    pub write_refusal: String,
    /// When the key was deleted while etcdboard watched: the revision, and its history up to then.
    pub deleted: Option<(i64, String)>,
}

/// What the key browser page (`keys/page.html`) needs for live updates and write actions.
#[derive(Debug, Clone, Default)]
pub struct BrowserLinks {
    /// Server-sent events for the listed prefix.
    pub watch_url: String,
    /// The first page of the top level as `<li>` rows (to refresh it).
    pub level_url: String,
    /// The cluster's key separator.
    pub sep: String,
    /// "new key" as a full page.
    pub new_key_href: String,
    /// "new key" as a fragment for `#keyview`.
    pub new_key_fragment: String,
    /// `delete-prefix` in the JSON API, without a query (directory rows append `?prefix=`).
    pub delete_prefix_url: String,
    /// The preview of deleting the filter prefix (empty when there is no filter).
    pub delete_prefix_preview: String,
    /// Export / import page for the filter prefix.
    pub transfer_href: String,
    /// Versioned `edit.js`.
    pub edit_js: String,
    /// Versioned CodeMirror stylesheet.
    pub editor_css: String,
}

/// Script and stylesheet URLs of the code editor, loaded only when an editor opens.
#[derive(Debug, Clone, Default)]
pub struct EditorAssets {
    /// CodeMirror core.
    pub cm_js: String,
    /// CodeMirror modes (javascript, yaml, toml), space-separated.
    pub cm_modes: String,
    /// js-yaml, for YAML validation.
    pub js_yaml: String,
}

/// `keys/edit.html`: the editor of one key (or of a new key).
#[derive(Template)]
#[template(path = "keys/edit.html")]
pub struct EditorView {
    /// A key that does not exist yet (expected_mod_revision 0).
    pub is_new: bool,
    /// The key as display text (empty for a new key without a name).
    pub key_label: String,
    /// The key as standard base64 (empty for a new key).
    pub key_b64: String,
    /// Prefill of the key field of a new key.
    pub key_input: String,
    /// A new key under a directory whose name is not UTF-8: that directory's bytes (base64) and
    /// label; the input then holds only the rest of the key. Empty otherwise.
    pub prefix_b64: String,
    /// The label of [`EditorView::prefix_b64`].
    pub prefix_label: String,
    /// The revision the editor was opened at (0: new key).
    pub mod_revision: i64,
    /// The key's version.
    pub version: i64,
    /// Lease id in hex, empty when none.
    pub lease_hex: String,
    /// TTL text.
    pub ttl: String,
    /// The stored value, exact, standard base64.
    pub value_b64: String,
    /// The stored value as text, when it is UTF-8 (shown before the editor loads, and without JS).
    pub value_text: Option<String>,
    /// The stored value as a hex dump, when it is not UTF-8.
    pub hex: Vec<HexLine>,
    /// Editor mode: `json`, `yaml`, `toml`, `text` or `hex`.
    pub mode: &'static str,
    /// Size text.
    pub size: String,
    /// Largest value the server accepts, in bytes.
    pub max_bytes: usize,
    /// The same, as text.
    pub max_label: String,
    /// Bytes a write request carries beyond its value and key (the limit counts them too).
    pub request_overhead: usize,
    /// Revision of the read.
    pub revision: i64,
    /// Read without quorum.
    pub stale: bool,
    /// `PUT` URL of the JSON API.
    pub put_url: String,
    /// This key's view fragment (empty for a new key).
    pub view_url: String,
    /// Key view fragment URL without the key value (`…/ui/key?key=`), for a new key.
    pub view_base: String,
    /// Permalink of this key (empty for a new key).
    pub permalink: String,
    /// Permalink without the key value (`…/keys?mode=tree&key=`), for a new key.
    pub permalink_base: String,
    /// History page of the key (empty for a new key).
    pub history_href: String,
    /// Scripts the editor loads on demand.
    pub assets: EditorAssets,
}

/// `keys/edit_page.html`: the editor as a full page.
#[derive(Template)]
#[template(path = "keys/edit_page.html")]
pub struct EditPage {
    /// Shared layout.
    pub layout: Layout,
    /// Cluster name.
    pub cluster: String,
    /// Title text.
    pub title: String,
    /// The rendered editor.
    pub editor_html: String,
    /// Live updates of the key (empty for a new key).
    pub watch_url: String,
    /// Back to the key browser.
    pub back_href: String,
    /// Versioned `edit.js`.
    pub edit_js: String,
    /// Versioned CodeMirror stylesheet.
    pub editor_css: String,
}

/// One retained version in the history table.
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// Its mod_revision.
    pub revision: i64,
    /// Its version number.
    pub version: i64,
    /// Size text.
    pub size: String,
    /// Lease id in hex, empty when none.
    pub lease_hex: String,
    /// The key's current version.
    pub current: bool,
    /// Link that shows this version.
    pub view_href: String,
    /// Preselected as the old side of a diff.
    pub a_checked: bool,
    /// Preselected as the new side of a diff.
    pub b_checked: bool,
    /// Shown below the table right now.
    pub shown: bool,
}

/// A value shown on the history page.
#[derive(Debug, Clone)]
pub struct ShownValue {
    /// Revision of the version.
    pub revision: i64,
    /// Its version number.
    pub version: i64,
    /// Format label.
    pub format: &'static str,
    /// Highlighted tokens (JSON/YAML).
    pub tokens: Vec<TokenView>,
    /// Plain text.
    pub text: Option<String>,
    /// Hex dump.
    pub hex: Vec<HexLine>,
    /// Whether this is the current version (no restore offered).
    pub current: bool,
}

impl ShownValue {
    /// Prepares `value` for display.
    pub fn new(revision: i64, version: i64, value: &[u8], current: bool) -> ShownValue {
        let rendered = render(value);
        let mut shown = ShownValue {
            revision,
            version,
            format: rendered.label(),
            tokens: Vec::new(),
            text: None,
            hex: Vec::new(),
            current,
        };
        match rendered {
            Rendered::Json(t) | Rendered::Yaml(t) => shown.tokens = TokenView::list(t),
            Rendered::Text(t) => shown.text = Some(t),
            Rendered::Binary(lines) => {
                shown.hex = lines
                    .into_iter()
                    .map(|(off, hex, ascii)| HexLine { off, hex, ascii })
                    .collect()
            }
        }
        shown
    }
}

/// One line of a rendered diff.
#[derive(Debug, Clone)]
pub struct DiffLineView {
    /// `same`, `del` or `add`.
    pub class: &'static str,
    /// ` `, `-` or `+`.
    pub sign: &'static str,
    /// The line.
    pub text: String,
}

impl DiffLineView {
    /// Converts a domain diff into display lines.
    pub fn list(lines: Vec<DiffLine>) -> Vec<DiffLineView> {
        lines
            .into_iter()
            .map(|l| match l {
                DiffLine::Same(text) => DiffLineView {
                    class: "same",
                    sign: " ",
                    text,
                },
                DiffLine::Removed(text) => DiffLineView {
                    class: "del",
                    sign: "-",
                    text,
                },
                DiffLine::Added(text) => DiffLineView {
                    class: "add",
                    sign: "+",
                    text,
                },
            })
            .collect()
    }
}

/// A diff between two versions.
#[derive(Debug, Clone)]
pub struct DiffView {
    /// Old side revision.
    pub a: i64,
    /// New side revision.
    pub b: i64,
    /// Compared as hex dumps (one side is not UTF-8).
    pub as_hex: bool,
    /// The lines.
    pub lines: Vec<DiffLineView>,
    /// Both versions hold the same bytes.
    pub identical: bool,
    /// They differ only in line endings, which the lines cannot show: how.
    pub endings: Option<String>,
}

/// `keys/history.html`: the retained versions of a key.
#[derive(Template)]
#[template(path = "keys/history.html")]
pub struct HistoryPage {
    /// Read without quorum from one member's local copy.
    pub stale: bool,
    /// Shared layout.
    pub layout: Layout,
    /// Cluster name.
    pub cluster: String,
    /// The key as display text.
    pub key_label: String,
    /// The key as standard base64.
    pub key_b64: String,
    /// The key in the browser.
    pub key_href: String,
    /// The editor page.
    pub edit_href: String,
    /// The key's current mod_revision (0: deleted now).
    pub current_revision: i64,
    /// Versions, newest first.
    pub versions: Vec<VersionRow>,
    /// Older versions were compacted away.
    pub compacted: bool,
    /// Oldest revision listed.
    pub oldest: i64,
    /// Link to older versions, when there are more.
    pub older_href: Option<String>,
    /// Link back to the newest versions, when not on the first page.
    pub newest_href: Option<String>,
    /// Target of the diff form.
    pub form_action: String,
    /// `before` to keep in the diff form (0: none).
    pub before: i64,
    /// A version shown below the table.
    pub shown: Option<ShownValue>,
    /// A diff shown below the table.
    pub diff: Option<DiffView>,
    /// `PUT` URL of the JSON API (restore).
    pub put_url: String,
    /// History in the JSON API (the script appends `&before=REV&limit=1`).
    pub history_api: String,
    /// This page, first page (the script appends `&restored=REV`).
    pub self_href: String,
    /// Set after a restore: the revision that was restored.
    pub restored: Option<i64>,
    /// Versioned `edit.js`.
    pub edit_js: String,
}

/// One lease on the leases page.
#[derive(Debug, Clone)]
pub struct LeaseRow {
    /// Lease id in hex.
    pub id_hex: String,
    /// Seconds left as text.
    pub ttl: String,
    /// Expired (TTL < 0) or about to (<= 5 s).
    pub expiring: bool,
    /// Granted TTL as text.
    pub granted: String,
    /// Attached keys: `(label, link)`, the first few.
    pub keys: Vec<(String, String)>,
    /// Keys attached in all.
    pub key_count: usize,
    /// Attached keys not listed.
    pub more_keys: usize,
    /// Too many keys are attached for etcd's list of them to be read (so `key_count` is 0):
    /// they cannot be shown, nor the lease revoked here.
    pub unlisted: bool,
    /// URL of the lease in the JSON API (`GET` reads it now, `DELETE` revokes it).
    pub revoke_url: String,
}

/// `leases.html`: every lease with its keys.
#[derive(Template)]
#[template(path = "leases.html")]
pub struct LeasesPage {
    /// Shared layout.
    pub layout: Layout,
    /// Cluster name.
    pub cluster: String,
    /// The leases.
    pub leases: Vec<LeaseRow>,
    /// Only the first leases are shown.
    pub truncated: bool,
    /// This page (refresh).
    pub self_href: String,
    /// Versioned `edit.js`.
    pub edit_js: String,
}

/// `transfer.html`: export and import of a prefix.
#[derive(Template)]
#[template(path = "transfer.html")]
pub struct TransferPage {
    /// Shared layout.
    pub layout: Layout,
    /// Cluster name.
    pub cluster: String,
    /// The prefix as display text (empty: every key).
    pub prefix_label: String,
    /// The prefix as the text field's value.
    pub prefix_input: String,
    /// Target of the prefix form.
    pub form_action: String,
    /// Export as JSON (a plain download without JS).
    pub export_json: String,
    /// Export as YAML.
    pub export_yaml: String,
    /// Count of keys under the prefix (`delete-prefix` preview, read only).
    pub count_url: String,
    /// Import in the JSON API (the script appends `?dry_run=`).
    pub import_url: String,
    /// The prefix in the key browser.
    pub keys_href: String,
    /// Versioned `edit.js`.
    pub edit_js: String,
}

/// The editor mode for a value: by the key's extension first, then by its content.
pub fn editor_mode(key: &[u8], value: &[u8]) -> &'static str {
    let Ok(text) = std::str::from_utf8(value) else {
        return "hex";
    };
    let lower = key.to_ascii_lowercase();
    if lower.ends_with(b".json") {
        return "json";
    }
    if lower.ends_with(b".yaml") || lower.ends_with(b".yml") {
        return "yaml";
    }
    if lower.ends_with(b".toml") {
        return "toml";
    }
    match render(value) {
        Rendered::Json(_) => "json",
        Rendered::Yaml(_) => "yaml",
        _ if looks_like_toml(text) => "toml",
        _ => "text",
    }
}

/// A TOML document with at least one table header or `key = value` line.
fn looks_like_toml(text: &str) -> bool {
    let has_shape = text.lines().any(|l| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']')) || l.split_once(" = ").is_some()
    });
    has_shape && text.parse::<toml::Table>().is_ok_and(|t| !t.is_empty())
}

/// The texts a diff compares: the values themselves when both are UTF-8, else both as hex lines
/// (16 bytes a line, no offsets, so inserted bytes do not mark every later line); `true` for hex.
pub fn diff_pair(old: &[u8], new: &[u8]) -> (String, String, bool) {
    match (std::str::from_utf8(old), std::str::from_utf8(new)) {
        (Ok(a), Ok(b)) => (a.to_string(), b.to_string(), false),
        _ => (hex_lines(old), hex_lines(new), true),
    }
}

fn hex_lines(value: &[u8]) -> String {
    crate::domain::format::hex_dump(value)
        .into_iter()
        .map(|(_, hex, _)| format!("{}\n", hex.trim_end()))
        .collect()
}

/// Human size ("1.2 KiB").
pub fn human_size(n: usize) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_mode_follows_the_extension_then_the_content() {
        assert_eq!(editor_mode(b"/a/config.yaml", b"{\"a\":1}"), "yaml");
        assert_eq!(editor_mode(b"/a/x", b"{\"a\":1}"), "json");
        assert_eq!(editor_mode(b"/a/x", b"a: 1\nb: 2\n"), "yaml");
        assert_eq!(editor_mode(b"/a/x", b"[server]\nport = 8080\n"), "toml");
        assert_eq!(editor_mode(b"/a/x", b"hello"), "text");
        assert_eq!(editor_mode(b"/a/x.json", b"\xff\x00"), "hex");
    }

    #[test]
    fn binary_values_are_diffed_as_hex() {
        let (a, b, hex) = diff_pair(b"a", b"\xff\x00a");
        assert!(hex);
        assert_eq!((a.as_str(), b.as_str()), ("61\n", "ff 00 61\n"));
        assert_eq!(
            diff_pair(b"a\nb", b"c"),
            ("a\nb".to_string(), "c".to_string(), false)
        );
    }
}
