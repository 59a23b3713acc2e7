//! askama view structs, one per template. They hold display-ready strings and URLs only; no etcd
//! or HTTP types reach the templates (askama escapes every `{{ }}`: keys are attacker-controlled).

pub mod cluster;
pub mod edit;

use askama::Template;

use crate::domain::format::Tok;

/// What every full page needs: asset URLs, the home link, the cluster picker, the search form.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `{base}/`.
    pub home: String,
    /// Versioned stylesheet URL.
    pub css: String,
    /// Versioned app script URL.
    pub js: String,
    /// Versioned htmx URL.
    pub htmx: String,
    /// Versioned favicon URL.
    pub icon: String,
    /// `{base}/go`, the no-JS target of the cluster picker.
    pub go: String,
    /// Cluster picker entries.
    pub clusters: Vec<PickerOption>,
    /// Search form target and state, when on a cluster's pages.
    pub search: Option<SearchForm>,
    /// Alarms raised on the current cluster `(what, what to do)`: a red banner on every page of it.
    pub alarms: Vec<(String, String)>,
    /// Who is signed in, and the sign-in/sign-out controls.
    pub account: Account,
    /// What the caller may do on the current cluster (controls they may not use are hidden).
    pub caps: crate::domain::access::Capabilities,
}

/// The signed-in user shown in the top bar.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// User name, when someone signed in.
    pub user: Option<String>,
    /// `{base}/login`, when this server has a login page and nobody signed in.
    pub login: Option<String>,
    /// `{base}/logout`, when a login cookie can be removed.
    pub logout: Option<String>,
    /// A note like "read-only" shown beside the name.
    pub note: Option<String>,
}

/// One entry of the cluster picker.
#[derive(Debug, Clone)]
pub struct PickerOption {
    /// Cluster name.
    pub name: String,
    /// Its key browser URL.
    pub url: String,
    /// The current cluster.
    pub selected: bool,
}

/// The search / jump form.
#[derive(Debug, Clone)]
pub struct SearchForm {
    /// Form action.
    pub action: String,
    /// Current mode (kept across searches).
    pub mode: String,
    /// Current text.
    pub value: String,
}

/// One row of the tree or flat list.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Text shown (segment name in tree mode, full key in flat mode), escaped for display.
    pub label: String,
    /// Directory (tree mode).
    pub dir: bool,
    /// Full-page URL (no-JS fallback, and what is pushed to history).
    pub href: String,
    /// Fragment URL: children for a directory, key view for a key.
    pub fragment: String,
    /// Expanded on render (the path to the selected key).
    pub expanded: bool,
    /// The selected key.
    pub selected: bool,
    /// Pre-rendered children (only when expanded).
    pub children_html: String,
}

/// A "load more" row.
#[derive(Debug, Clone)]
pub struct MoreView {
    /// Full-page fallback URL.
    pub href: String,
    /// Fragment URL returning the next `<li>`s.
    pub fragment: String,
}

/// `keys/nodes.html`: a run of `<li>` rows, used for a whole level and for "load more".
#[derive(Template)]
#[template(path = "keys/nodes.html")]
pub struct NodesView {
    /// A note above the rows (e.g. "earlier entries hidden").
    pub gap: Option<(String, String)>,
    /// The rows.
    pub nodes: Vec<NodeView>,
    /// The next page, if any.
    pub more: Option<MoreView>,
    /// Shown when the level is empty.
    pub empty: bool,
    /// Why the level could not be listed (etcd's roles refuse the etcd user): only the way to
    /// the open key, if any, is shown.
    pub denied: Option<String>,
}

/// A highlighted token.
#[derive(Debug, Clone)]
pub struct TokenView {
    /// CSS class.
    pub class: &'static str,
    /// Text.
    pub text: String,
}

impl TokenView {
    /// Builds the token list of a rendered value.
    pub fn list(tokens: Vec<(Tok, String)>) -> Vec<TokenView> {
        tokens
            .into_iter()
            .map(|(t, text)| TokenView {
                class: t.class(),
                text,
            })
            .collect()
    }
}

/// One hex dump line.
#[derive(Debug, Clone)]
pub struct HexLine {
    /// Offset column.
    pub off: String,
    /// Hex bytes.
    pub hex: String,
    /// Printable column.
    pub ascii: String,
}

/// `keys/key.html`: the key view fragment.
#[derive(Template)]
#[template(path = "keys/key.html")]
pub struct KeyView {
    /// The key as display text.
    pub key_label: String,
    /// The value's bytes as a download (the JSON API's `value`).
    pub download_href: String,
    /// The key as standard base64.
    pub key_b64: String,
    /// Whether the key exists.
    pub found: bool,
    /// Metadata rows.
    pub mod_revision: i64,
    /// Creation revision.
    pub create_revision: i64,
    /// Version.
    pub version: i64,
    /// Lease id in hex, empty when none.
    pub lease_hex: String,
    /// TTL text ("52 s", "expired", "unknown").
    pub ttl: String,
    /// Size text ("1.2 KiB").
    pub size: String,
    /// Format label.
    pub format: &'static str,
    /// Highlighted tokens (JSON/YAML).
    pub tokens: Vec<TokenView>,
    /// Plain text.
    pub text: Option<String>,
    /// Hex dump lines (binary).
    pub hex: Vec<HexLine>,
    /// The whole value as base64, for the copy buttons, when it is small enough to carry in the
    /// page; `None` for a larger one, which the copy buttons fetch from `download_href` instead.
    pub value_b64: Option<String>,
    /// When truncated: the key view fragment and the page that show the whole value.
    pub load_all: Option<(String, String)>,
    /// Bytes shown / total, when truncated.
    pub truncated_note: String,
    /// Read without quorum.
    pub stale: bool,
    /// Revision of the read.
    pub revision: i64,
    /// Permalink of this key.
    pub permalink: String,
    /// Edit, history, delete and reload links.
    pub actions: edit::KeyActions,
    /// For a Kubernetes protobuf value (`k8s\0…`): what it is, shown instead of the format.
    pub kube_note: String,
    /// What the format label alone does not say about the value (CRLF line endings, or why UTF-8
    /// text is shown as bytes).
    pub format_note: Option<&'static str>,
    /// Not offered for editing (Kubernetes' own storage): no edit button.
    pub read_only: bool,
}

/// `keys/page.html`: the key browser.
#[derive(Template)]
#[template(path = "keys/page.html")]
pub struct KeysPage {
    /// Shared layout.
    pub layout: Layout,
    /// Cluster name.
    pub cluster: String,
    /// "tree" or "flat".
    pub mode: String,
    /// Link to tree mode.
    pub tree_href: String,
    /// Link to flat mode.
    pub flat_href: String,
    /// The prefix filter, as display text (empty: whole key space).
    pub prefix_label: String,
    /// Link that clears the filter.
    pub clear_filter: String,
    /// Revision the listing was read at.
    pub revision: i64,
    /// Index status text.
    pub index_note: String,
    /// Notice above the listing (e.g. "no key X; showing keys from there").
    pub notice: Option<String>,
    /// Rendered first level (`<li>`s).
    pub nodes_html: String,
    /// Rendered key view, when a key is selected.
    pub key_html: Option<String>,
    /// Read without quorum.
    pub stale: bool,
    /// Live updates and write actions.
    pub live: edit::BrowserLinks,
}

/// `clusters.html`: the list of configured clusters.
#[derive(Template)]
#[template(path = "clusters.html")]
pub struct ClustersPage {
    /// Shared layout.
    pub layout: Layout,
    /// `(name, endpoints, url)`.
    pub clusters: Vec<(String, String, String)>,
}

/// `error.html`: an error page with a way back.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Shared layout.
    pub layout: Layout,
    /// HTTP status code.
    pub status: u16,
    /// Status reason.
    pub title: String,
    /// The message.
    pub message: String,
}

/// `login.html`: the sign-in form of built-in users.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Shared layout.
    pub layout: Layout,
    /// Where the form posts.
    pub action: String,
    /// Where to go afterwards (a path of this app).
    pub next: String,
    /// User name typed before (after a failure).
    pub user: String,
    /// What went wrong, when something did.
    pub error: Option<String>,
}
