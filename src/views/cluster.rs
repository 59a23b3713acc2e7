//! View structs of the cluster page.

use askama::Template;

/// One member row.
#[derive(Debug, Clone)]
pub struct MemberRow {
    /// Name or id.
    pub name: String,
    /// Hex id.
    pub id: String,
    /// `leader`, `member`, `learner` or `not started`.
    pub role: &'static str,
    /// `ok`, `down`, `unhealthy`, `not started`.
    pub health: &'static str,
    /// CSS state class: ok / warn / bad.
    pub state: &'static str,
    /// etcd version.
    pub version: String,
    /// "148 MB (61 % in use)".
    pub db: String,
    /// Share of quota used, when known ("7 %").
    pub quota: String,
    /// Quota close to full.
    pub quota_warn: bool,
    /// Raft index.
    pub raft_index: String,
    /// Lag behind the leader.
    pub lag: String,
    /// Status round trip.
    pub rtt: String,
    /// Errors or "no answer after 1.0 s".
    pub errors: String,
    /// Client URLs.
    pub client_urls: String,
    /// How it was reached when not at its client URL ("reached through …"), else empty.
    pub via: String,
    /// Peer URLs.
    pub peer_urls: String,
    /// Offer maintenance actions (reachable member with an id).
    pub actionable: bool,
    /// Is the leader.
    pub is_leader: bool,
    /// Leadership can be moved to it: it answers, is not the leader, and there is a leader (quorum).
    pub can_lead: bool,
    /// A learner that may be promoted to a voting member (etcd refuses until it caught up).
    pub can_promote: bool,
    /// Pod / node / zone / volume, when Kubernetes knows.
    pub placement: String,
}

/// A warning or alarm line.
#[derive(Debug, Clone)]
pub struct Notice {
    /// `critical`, `warning` or `info` (CSS).
    pub level: &'static str,
    /// What.
    pub text: String,
    /// What to do.
    pub advice: String,
}

/// One chart: a polyline per member.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// Latest values per member ("m0 1.2 ms").
    pub legend: Vec<(String, String, bool)>,
    /// Polylines `(css class, points)`.
    pub lines: Vec<(String, String)>,
    /// Threshold line y, and its label.
    pub threshold: Option<(f64, String)>,
    /// What the chart spans, under it: the vertical scale, the dashed line's meaning and the
    /// time window ("0–550.0 ms · dashed: etcd alerts at 500.0 ms · last 12 min").
    pub scale_note: String,
    /// No data yet.
    pub empty: bool,
    /// What an empty chart says ("collecting…", or why there is no data).
    pub empty_note: String,
}

/// One timeline entry.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// "12 s ago".
    pub ago: String,
    /// Absolute time (UTC), for the title attribute.
    pub at: String,
    /// Kind (CSS class).
    pub kind: &'static str,
    /// Text.
    pub text: String,
}

/// `cluster/overview.html`: the live part of the cluster page (refreshed by polling).
#[derive(Template)]
#[template(path = "cluster/overview.html")]
pub struct Overview {
    /// URL polled to refresh this fragment.
    pub refresh_url: String,
    /// `ok`, `warn` or `bad`.
    pub state: &'static str,
    /// The top line.
    pub headline: String,
    /// Alarms with advice.
    pub alarms: Vec<Notice>,
    /// Warnings with advice.
    pub warnings: Vec<Notice>,
    /// Member rows.
    pub members: Vec<MemberRow>,
    /// Quorum numbers: size, healthy, majority, and how many more may fail ("can lose 1 more").
    pub quorum: (usize, usize, usize, String),
    /// "observed 1 s ago in 12 ms".
    pub observed: String,
    /// Why the member list could not be read.
    pub error: Option<String>,
    /// Charts.
    pub charts: Vec<Chart>,
    /// Timeline, newest first.
    pub events: Vec<EventRow>,
    /// Base URL of the maintenance API (`…/api/v1/clusters/{c}/maintenance`).
    pub maintenance_url: String,
    /// Whether the caller may run maintenance (else its buttons are not shown).
    pub can_admin: bool,
    /// Snapshot download URL (append `?member=`).
    pub snapshot_url: String,
    /// Kubernetes state in plain words (empty when Kubernetes is off).
    pub kube_note: String,
    /// The topology picture (server-drawn SVG; empty without placements).
    pub topology_svg: String,
    /// Spread warnings with what to change.
    pub spread_warnings: Vec<Notice>,
    /// "if node-1 fails, …" lines.
    pub risks: Vec<String>,
    /// Rendered [`TopologyDetails`]: sources, operator status, pod events.
    pub topology_details: String,
}

/// `cluster/page.html`: the cluster page.
#[derive(Template)]
#[template(path = "cluster/page.html")]
pub struct ClusterPage {
    /// Shared layout.
    pub layout: crate::views::Layout,
    /// Cluster name.
    pub cluster: String,
    /// Link to the key browser.
    pub keys_href: String,
    /// The rendered overview fragment.
    pub overview_html: String,
    /// Page stylesheet URL.
    pub css: String,
    /// Page script URL.
    pub js: String,
    /// Base URL of the maintenance API.
    pub maintenance_url: String,
}

/// One discovery source in the topology section.
#[derive(Debug, Clone)]
pub struct SourceRow {
    /// Its name.
    pub source: String,
    /// `pods`, `custom resources` or `events`.
    pub what: &'static str,
    /// How many it found.
    pub found: usize,
    /// State of its watch.
    pub state: String,
    /// CSS: `ok` (watching), `dim` (not installed, starting) or `bad`.
    pub class: &'static str,
}

/// What an operator's custom resource says.
#[derive(Debug, Clone)]
pub struct OperatorRow {
    /// `EtcdCluster ns/name`.
    pub title: String,
    /// The operator and API version.
    pub source: String,
    /// CSS: `ok`, `bad` or `dim` (no status yet).
    pub class: &'static str,
    /// One line in plain words.
    pub summary: String,
    /// `type status: reason — message`.
    pub conditions: Vec<String>,
}

/// One Kubernetes Event of a pod.
#[derive(Debug, Clone)]
pub struct EventLine {
    /// `Normal` or `Warning` (also the CSS class).
    pub kind: String,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// Count.
    pub count: u32,
    /// Age ("3m").
    pub age: String,
}

/// The recent events of one member's pod.
#[derive(Debug, Clone)]
pub struct MemberEvents {
    /// Member name (or id).
    pub member: String,
    /// `namespace/pod`.
    pub pod: String,
    /// Newest first.
    pub events: Vec<EventLine>,
}

/// `cluster/topology_details.html`: what each Kubernetes source found, the operators' status,
/// and the recent events of each member's pod.
#[derive(Template)]
#[template(path = "cluster/topology_details.html")]
pub struct TopologyDetails {
    /// Discovery sources.
    pub sources: Vec<SourceRow>,
    /// Operator custom resources.
    pub operators: Vec<OperatorRow>,
    /// Events per member.
    pub member_events: Vec<MemberEvents>,
}
