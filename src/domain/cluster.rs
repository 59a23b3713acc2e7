//! What etcd says about its members, and what it means: health, quorum margin, warnings in plain
//! words, the page's top line, and the events that successive observations imply. Pure; the
//! gateway fills it in and the monitor keeps the history.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

/// One member as the member list and its own status call describe it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberView {
    /// Member id in hex, as etcdctl prints it.
    pub id: String,
    /// Name (empty for a member added but not started).
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs (empty for a member added but not started).
    pub client_urls: Vec<String>,
    /// Learner (non-voting).
    pub learner: bool,
    /// This member is the leader.
    pub leader: bool,
    /// Answered a linearizable read and no alarm is raised (as `etcdctl endpoint health`).
    pub healthy: bool,
    /// Answered a linearizable read: it takes part in quorum, whatever alarm is raised (a NOSPACE
    /// cluster still has quorum; only its writes are refused).
    pub serving: bool,
    /// Answered its status call at all.
    pub reachable: bool,
    /// etcd version.
    pub version: Option<String>,
    /// Database size allocated, bytes.
    pub db_size: Option<i64>,
    /// Database size in use, bytes.
    pub db_size_in_use: Option<i64>,
    /// Backend quota, bytes (when known).
    pub quota: Option<i64>,
    /// Raft term.
    pub raft_term: Option<u64>,
    /// Raft index.
    pub raft_index: Option<u64>,
    /// Raft applied index.
    pub raft_applied_index: Option<u64>,
    /// How far this member's raft index is behind the leader's.
    pub lag: Option<u64>,
    /// Status call round trip, ms.
    pub latency_ms: Option<f64>,
    /// Errors the member reports, or why it could not be asked.
    pub errors: Vec<String>,
    /// Added to the cluster but never started (no name, no client URLs).
    pub unstarted: bool,
    /// The configured endpoint it was reached through, when its advertised client URL could not
    /// be used from where etcdboard runs (a `kubectl port-forward`, a host outside the pod
    /// network, an address every member shares).
    pub via: Option<Via>,
    /// Not reached, and not known to be down: the member list came through a configured
    /// endpoint, but no member answered at the client URL it advertises, so those URLs do not
    /// work from here, and no configured endpoint answered as this member.
    pub unseen: bool,
    /// Maintenance running on it now, which keeps it from answering (a defragmentation blocks
    /// the member while it rewrites its database), as a clause that follows "member m2 …:":
    /// who, what and since when. Either etcdboard's own ("etcdboard is defragmenting it (since
    /// 03:12:05 UTC, asked by alice)") or one etcd reports in its metrics that was started
    /// elsewhere: another etcdboard replica, etcdctl, an operator's scheduled defragmentation.
    pub maintenance: Option<String>,
}

/// How a member was reached when its advertised client URL could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Via {
    /// The configured endpoint that answered as this member.
    pub endpoint: String,
    /// What its advertised client URL did instead ("dns error", "answered as member …").
    pub advertised: String,
}

impl MemberView {
    /// A member as the member list names it, before anything is heard from it: not reachable,
    /// nothing measured, no errors yet.
    pub fn unheard(
        id: String,
        name: String,
        peer_urls: Vec<String>,
        client_urls: Vec<String>,
        learner: bool,
        unstarted: bool,
    ) -> MemberView {
        MemberView {
            id,
            name,
            peer_urls,
            client_urls,
            learner,
            leader: false,
            healthy: false,
            serving: false,
            reachable: false,
            version: None,
            db_size: None,
            db_size_in_use: None,
            quota: None,
            raft_term: None,
            raft_index: None,
            raft_applied_index: None,
            lag: None,
            latency_ms: None,
            errors: Vec::new(),
            unstarted,
            via: None,
            unseen: false,
            maintenance: None,
        }
    }

    /// Where calls to this one member go: the configured endpoint that answered as it, else its
    /// first advertised client URL.
    pub fn reach_url(&self) -> Option<&str> {
        self.via
            .as_ref()
            .map(|v| v.endpoint.as_str())
            .or(self.client_urls.first().map(String::as_str))
    }

    /// How the member is named on the page: its name, or its id while it has none (added but
    /// not started).
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.id.clone()
        } else {
            self.name.clone()
        }
    }

    /// Fragmentation: share of the allocated database not in use (0.0–1.0).
    pub fn fragmentation(&self) -> Option<f64> {
        match (self.db_size, self.db_size_in_use) {
            (Some(total), Some(used)) if total > 0 => Some(1.0 - used as f64 / total as f64),
            _ => None,
        }
    }
}

/// An alarm raised on a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmView {
    /// Member id (hex).
    pub member_id: String,
    /// Member name, when known.
    pub member: String,
    /// `NOSPACE` or `CORRUPT`.
    pub alarm: String,
    /// What to do about it.
    pub advice: String,
}

/// Where the cluster stands on quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuorumState {
    /// A leader, and a majority of voting members serving.
    Held,
    /// A majority of voting members answers but there is no leader yet, or not yet a majority
    /// serving: an election (a failover) is in progress. Not a lost quorum, unless it lasts.
    Electing,
    /// Fewer voting members answer than a majority: nothing can be elected or written.
    Lost,
    /// No member list could be read: membership, and so quorum, is unknown.
    Unknown,
}

/// Quorum arithmetic and warnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quorum {
    /// Voting members.
    pub size: usize,
    /// Voting members that are healthy (serve linearizable reads).
    pub healthy: usize,
    /// Voting members that answer at all (serving or not, e.g. up but without a leader).
    pub reachable: usize,
    /// Voting members etcdboard cannot reach from where it runs, whose state is unknown (see
    /// [`MemberView::unseen`]): neither healthy nor down.
    pub unseen: usize,
    /// Votes needed for a majority.
    pub majority: usize,
    /// How many more voting members may fail right now without losing quorum (0 when lost); with
    /// unseen members, as far as the members etcdboard reaches show (the least it can be).
    pub tolerates: usize,
    /// Quorum is held (a majority is healthy and there is a leader).
    pub has_quorum: bool,
    /// A leader is known.
    pub has_leader: bool,
    /// Held, electing, lost or unknown.
    pub state: QuorumState,
    /// Warnings, most severe first.
    pub warnings: Vec<Warning>,
}

/// A warning with what it means and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// `critical` or `warning`.
    pub level: &'static str,
    /// What is wrong, in plain words.
    pub text: String,
    /// What to do.
    pub advice: String,
}

fn warn(level: &'static str, text: impl Into<String>, advice: impl Into<String>) -> Warning {
    Warning {
        level,
        text: text.into(),
        advice: advice.into(),
    }
}

/// Orders warnings most serious first (critical, then warnings, then notes), so that a cause
/// (a slow disk, critical) comes before what it causes (a member answering late); the order
/// within a level stays.
pub fn most_serious_first(warnings: &mut [Warning]) {
    warnings.sort_by_key(|w| match w.level {
        "critical" => 0,
        "warning" => 1,
        _ => 2,
    });
}

/// An election lasting longer than this is no longer "in progress": the members cannot agree
/// (partitioned from each other), and the page says so in red. etcd elects within a few election
/// timeouts (1 s by default), and the monitor observes every few seconds.
pub const ELECTION_GRACE_MS: u64 = 15_000;

/// Why a reachable member does not serve, in a few words (it sees no leader, most often).
fn not_serving_reason(m: &MemberView) -> String {
    if m.errors.iter().any(|e| e.contains("no leader")) {
        "no leader".into()
    } else {
        m.errors
            .first()
            .cloned()
            .unwrap_or_else(|| "linearizable reads fail".into())
    }
}

/// Warns while a member's database nears its quota (`--quota-backend-bytes`): at the quota etcd
/// raises NOSPACE and accepts only reads and deletes, which takes down every writer. A warning
/// from [`thresholds::DB_QUOTA_EARLY_SHARE`], critical from [`thresholds::DB_QUOTA_SHARE`], naming
/// the fullest member first and what would free space: a defragmentation when much of the file
/// is free pages, else a compaction first, or a larger quota. Nothing while a NOSPACE alarm is
/// raised (its banner says what to do) or while no quota is known.
///
/// [`thresholds::DB_QUOTA_EARLY_SHARE`]: crate::domain::metrics::thresholds::DB_QUOTA_EARLY_SHARE
/// [`thresholds::DB_QUOTA_SHARE`]: crate::domain::metrics::thresholds::DB_QUOTA_SHARE
pub fn space_warnings(members: &[MemberView], alarms: &[AlarmView]) -> Vec<Warning> {
    use crate::domain::metrics::thresholds::{DB_QUOTA_EARLY_SHARE, DB_QUOTA_SHARE};
    if alarms.iter().any(|a| a.alarm == "NOSPACE") {
        return Vec::new();
    }
    let mut full: Vec<(&MemberView, i64, i64, f64)> = members
        .iter()
        .filter_map(|m| match (m.db_size, m.quota) {
            (Some(size), Some(quota)) if quota > 0 => {
                Some((m, size, quota, size as f64 / quota as f64))
            }
            _ => None,
        })
        .filter(|(_, _, _, share)| *share >= DB_QUOTA_EARLY_SHARE)
        .collect();
    full.sort_by(|a, b| b.3.total_cmp(&a.3));
    let Some(&(m, size, quota, share)) = full.first() else {
        return Vec::new();
    };
    let others: Vec<String> = full[1..]
        .iter()
        .map(|(o, _, _, s)| format!("{} at {:.0} %", o.label(), (s * 100.0).floor()))
        .collect();
    let text = format!(
        "Database near its quota: {} at {:.0} % ({} of {}){}. At 100 % etcd raises NOSPACE and accepts only reads and deletes",
        m.label(),
        (share * 100.0).floor(),
        db_size_text(size),
        db_size_text(quota),
        if others.is_empty() {
            String::new()
        } else {
            format!(", {}", others.join(", "))
        }
    );
    let advice = match (m.db_size_in_use, m.fragmentation()) {
        (Some(in_use), Some(free)) if free >= 0.3 => format!(
            "{:.0} % of {}'s file is free pages: defragment each member, one at a time (defrag in the members table), and it shrinks to about {}.",
            free * 100.0,
            m.label(),
            db_size_text(in_use)
        ),
        _ => "The data itself fills it. Compact old revisions (Maintenance below) and then defragment each member, one at a time; delete data nobody needs; or raise --quota-backend-bytes on every member (etcd suggests at most 8 GiB).".to_string(),
    };
    let level = if share >= DB_QUOTA_SHARE {
        "critical"
    } else {
        "warning"
    };
    vec![warn(level, text, advice)]
}

/// Scrapes in a row that must all be over a threshold before a member is called slow: one slow
/// interval is a hiccup (a snapshot, a compaction), several in a row is the disk or the network.
pub const SLOW_SCRAPES: usize = 3;

/// A member found slow by [`slow_members`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowMember {
    /// Member id (hex).
    pub id: String,
    /// Its disk (not only its network) is slow.
    pub disk: bool,
    /// What is slow, and what to do.
    pub warning: Warning,
}

/// Finds members whose disk or network has been slow in each of the last [`SLOW_SCRAPES`]
/// scrapes, by etcd's own alert thresholds: WAL fsync p99 (critical from 1 s) and backend commit
/// p99 for the disk, peer round-trip p99 for the network. `series` is the charts' points per
/// member, `(id, name, points)`, oldest first; `scrape_every_ms` says how long that is.
pub fn slow_members(
    series: &[(String, String, Vec<crate::domain::metrics::Point>)],
    scrape_every_ms: u64,
) -> Vec<SlowMember> {
    use crate::domain::metrics::thresholds::{
        COMMIT_P99, FSYNC_P99, FSYNC_P99_CRITICAL, PEER_RTT_P99,
    };
    use crate::domain::metrics::Point;
    // The smallest of the last SLOW_SCRAPES values, when every one of them is known.
    let floor = |points: &[Point], get: fn(&Point) -> Option<f64>| -> Option<f64> {
        let recent = points.get(points.len().checked_sub(SLOW_SCRAPES)?..)?;
        recent
            .iter()
            .map(get)
            .try_fold(f64::INFINITY, |low, v| v.map(|v| low.min(v)))
    };
    let span = format!(
        "for the last {} s",
        (scrape_every_ms * SLOW_SCRAPES as u64).div_ceil(1000)
    );
    let ms = |s: f64| format!("{:.0} ms", s * 1000.0);
    let mut out = Vec::new();
    for (id, name, points) in series {
        let who = if name.is_empty() { id } else { name };
        let mut disk = Vec::new();
        let mut critical = false;
        if let Some(v) = floor(points, |p| p.fsync_p99).filter(|v| *v > FSYNC_P99) {
            critical = v > FSYNC_P99_CRITICAL;
            disk.push(format!(
                "WAL fsync p99 at least {} (etcd alerts from {})",
                ms(v),
                ms(FSYNC_P99)
            ));
        }
        if let Some(v) = floor(points, |p| p.commit_p99).filter(|v| *v > COMMIT_P99) {
            disk.push(format!(
                "backend commit p99 at least {} (etcd alerts from {})",
                ms(v),
                ms(COMMIT_P99)
            ));
        }
        if !disk.is_empty() {
            out.push(SlowMember {
                id: id.clone(),
                disk: true,
                warning: warn(
                    if critical { "critical" } else { "warning" },
                    format!("{who}'s disk is slow {span}: {}", disk.join(", ")),
                    "etcd waits for this disk on every write: slow fsyncs cause leader changes, failed proposals and slow writes for the whole cluster. Give the member a disk with low fsync latency (an SSD not shared with busy workloads); check the node for other I/O.",
                ),
            });
        }
        if let Some(v) = floor(points, |p| p.peer_rtt_p99).filter(|v| *v > PEER_RTT_P99) {
            out.push(SlowMember {
                id: id.clone(),
                disk: false,
                warning: warn(
                    "warning",
                    format!("{who}'s network to its peers is slow {span}: peer round-trip p99 at least {} (etcd alerts from {})", ms(v), ms(PEER_RTT_P99)),
                    "Raft heartbeats and log entries between members are late: check the network between the nodes (packet loss, cross-zone latency) and the member's CPU. Members far apart need a longer --heartbeat-interval and --election-timeout.",
                ),
            });
        }
    }
    out
}

/// The etcd versions the members answered with, oldest first, each with the members running it.
fn versions(members: &[MemberView]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for m in members {
        let Some(v) = m.version.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        match out.iter_mut().find(|(known, _)| known == v) {
            Some((_, who)) => who.push(m.label()),
            None => out.push((v.to_string(), vec![m.label()])),
        }
    }
    // Numerically, part by part: 3.4.9 is older than 3.4.23.
    let key = |v: &str| -> Vec<u64> {
        v.split(['.', '-'])
            .map(|p| p.parse().unwrap_or(u64::MAX))
            .collect()
    };
    out.sort_by(|a, b| key(&a.0).cmp(&key(&b.0)).then(a.0.cmp(&b.0)));
    out
}

/// Computes the quorum panel. `leader_changes_15m` counts leader changes seen in the last 15
/// minutes; `lagging_learners` names learners that have not caught up for a long time.
pub fn quorum(
    members: &[MemberView],
    leader_changes_15m: usize,
    lagging_learners: &[String],
) -> Quorum {
    quorum_with_slow_disks(members, leader_changes_15m, lagging_learners, &[])
}

/// [`quorum`], knowing which members' disks are slow (ids, from [`slow_members`]): a slow
/// member that does not serve, or does not answer in time, is called slow, not cut off or dead,
/// and nobody is told to remove it.
pub fn quorum_with_slow_disks(
    members: &[MemberView],
    leader_changes_15m: usize,
    lagging_learners: &[String],
    slow_disks: &[&str],
) -> Quorum {
    let voters: Vec<&MemberView> = members.iter().filter(|m| !m.learner).collect();
    let size = voters.len();
    // Quorum is about members that serve, not about alarms: those have their own banner and advice.
    let healthy = voters.iter().filter(|m| m.serving).count();
    // A member that answers but cannot serve (no leader) is up: it votes as soon as it can reach
    // enough peers, so it counts towards an election, not as a dead member.
    let reachable = voters.iter().filter(|m| m.reachable || m.serving).count();
    let unseen_voters: Vec<&&MemberView> = voters.iter().filter(|m| m.unseen).collect();
    let unseen = unseen_voters.len();
    let majority = size / 2 + 1;
    let has_leader = members.iter().any(|m| m.leader);
    // A served linearizable read proves a leader that a majority confirmed; members etcdboard
    // cannot reach may make up that majority, and are not counted as lost.
    let proven = healthy > 0 && healthy + unseen >= majority;
    let state = if size == 0 {
        QuorumState::Unknown
    } else if (healthy >= majority || proven) && has_leader {
        QuorumState::Held
    } else if reachable >= majority {
        QuorumState::Electing
    } else {
        QuorumState::Lost
    };
    let has_quorum = state == QuorumState::Held;
    let tolerates = if has_quorum {
        healthy.saturating_sub(majority)
    } else {
        0
    };
    let out_of_sight = if unseen > 0 {
        format!("; {unseen} more cannot be reached from etcdboard")
    } else {
        String::new()
    };
    let mut warnings = Vec::new();
    match state {
        QuorumState::Held => {}
        QuorumState::Unknown => warnings.push(warn(
            "critical",
            "NO ANSWER — no member could be asked: membership and quorum are unknown",
            "Check that the configured endpoints are right and reachable from etcdboard, then that the etcd processes run.",
        )),
        QuorumState::Lost => warnings.push(warn(
            "critical",
            format!("NO QUORUM — {reachable}/{size} voting members reachable, {majority} needed; writes and linearizable reads fail{out_of_sight}"),
            "Bring members back (restart their pods or processes). Do not add or remove members while quorum is lost; if the lost members cannot come back, restore from a snapshot.",
        )),
        QuorumState::Electing if !has_leader => warnings.push(warn(
            "warning",
            format!("No leader — election in progress ({reachable}/{size} voting members reachable{out_of_sight})"),
            "Writes wait until a leader is elected, normally within seconds. If it lasts, the members cannot reach each other: check peer connectivity (peer URLs, firewalls, DNS).",
        )),
        QuorumState::Electing => warnings.push(warn(
            "warning",
            format!("Leader elected, but only {healthy}/{size} voting members serve reads so far, {majority} needed"),
            "Usually the moments after an election. If it lasts, check the members' disks and logs.",
        )),
    }
    // Membership advice only while quorum is held: removing a member needs quorum, and without it
    // the only safe advice is the banner's (bring members back, change nothing).
    if has_quorum && unseen > 0 {
        let names: Vec<String> = unseen_voters
            .iter()
            .map(|m| match m.client_urls.first() {
                Some(url) => format!("{} ({url})", m.label()),
                None => m.label(),
            })
            .collect();
        warnings.push(warn(
            "warning",
            format!(
                "{unseen} of {size} voting members cannot be reached from etcdboard: {}. Quorum holds (a member served a linearizable read), but whether they are up, and how many more failures the cluster survives, is unknown from here",
                names.join(", ")
            ),
            "etcdboard asks each member at the client URL it advertises, or at a configured endpoint that answers as that member. Those URLs do not work from where etcdboard runs (a kubectl port-forward, a host outside the pod network). Run etcdboard where they resolve, or configure one endpoint per member (e.g. a port-forward per pod).",
        ));
    }
    if has_quorum {
        for m in voters
            .iter()
            .filter(|m| !m.serving && !m.unstarted && !m.unseen)
        {
            if let Some(what) = &m.maintenance {
                warnings.push(warn(
                    "info",
                    format!("member {} does not answer in time: {what}", m.label()),
                    "A defragmentation blocks the member while it rewrites its database; the other members serve. It answers again when that ends: wait for it before defragmenting the next member.",
                ));
            } else if slow_disks.contains(&m.id.as_str()) {
                warnings.push(warn(
                    "warning",
                    if m.reachable {
                        format!("member {} answers but does not serve ({}): its disk is slow", m.label(), not_serving_reason(m))
                    } else {
                        format!("member {} does not answer in time: its disk is slow", m.label())
                    },
                    "It is slow, not dead: etcd waits for its disk (see the disk warning), so it falls behind and answers late. Do not remove it for this: move its data to a faster disk, or stop what else uses that disk, and it catches up.",
                ));
            } else if m.reachable {
                warnings.push(warn(
                    "warning",
                    format!("member {} answers but does not serve ({})", m.label(), not_serving_reason(m)),
                    "It is up but cut off from the leader: check its peer connectivity (peer URLs, firewalls, DNS) and its log. Do not remove it: it rejoins once it reaches its peers.",
                ));
            } else {
                warnings.push(warn(
                    "warning",
                    format!("member {} is down", m.label()),
                    "If it does not come back, remove the dead member (etcdctl member remove) before adding a new one, so the cluster never has more members than it can reach.",
                ));
            }
        }
    }
    for m in members.iter().filter(|m| m.unstarted) {
        warnings.push(warn(
            "warning",
            format!("member {} was added but has not started", m.id),
            if has_quorum {
                "Start the new member with --initial-cluster-state existing, or remove it: an unstarted voting member counts against quorum."
            } else {
                "Start the new member with --initial-cluster-state existing: an unstarted voting member counts against quorum."
            },
        ));
    }
    if size > 0 && size < 3 {
        warnings.push(warn(
            "warning",
            format!("only {size} voting member(s): a single failure loses quorum"),
            "Run 3 members, or 5 to survive two failures, each on its own node.",
        ));
    } else if size > 0 && size.is_multiple_of(2) {
        warnings.push(warn(
            "warning",
            format!(
                "{size} voting members: an even size tolerates no more failures than {}",
                size - 1
            ),
            "Use an odd number of members.",
        ));
    }
    if leader_changes_15m >= 4 {
        warnings.push(warn(
            "warning",
            format!("{leader_changes_15m} leader changes in the last 15 minutes"),
            "Frequent elections usually mean slow disks (WAL fsync) or an overloaded network between members.",
        ));
    } else if leader_changes_15m > 0 {
        warnings.push(warn(
            "info",
            format!("{leader_changes_15m} leader change(s) in the last 15 minutes"),
            "Watch for more: they interrupt writes.",
        ));
    }
    for name in lagging_learners {
        warnings.push(warn(
            "warning",
            format!("learner {name} has not caught up"),
            "Check its network and disk; promote it only once its raft index matches the leader's.",
        ));
    }
    let versions = versions(members);
    if versions.len() > 1 {
        let on: Vec<String> = versions
            .iter()
            .rev()
            .map(|(v, who)| format!("{v} on {}", who.join(", ")))
            .collect();
        warnings.push(warn(
            "warning",
            format!("members run different etcd versions: {}", on.join("; ")),
            "An upgrade is under way or stopped half-way. The cluster keeps the oldest member's features until every member runs the new version: upgrade the rest one member at a time, checking health after each (etcd supports one minor version at a time).",
        ));
    }
    Quorum {
        size,
        healthy,
        reachable,
        unseen,
        majority,
        tolerates,
        has_quorum,
        has_leader,
        state,
        warnings,
    }
}

/// How one member is doing, for its row: a label and a state (`ok`, `warn` or `bad`).
/// `quorum_held` is the cluster's: without quorum, a member that answers but cannot serve is up
/// and waiting for a leader, not a broken member.
pub fn member_health(m: &MemberView, quorum_held: bool) -> (&'static str, &'static str) {
    if m.unstarted {
        ("not started", "warn")
    } else if m.maintenance.is_some() && !m.healthy {
        ("in maintenance", "warn")
    } else if m.healthy {
        ("ok", "ok")
    } else if m.serving {
        ("alarm", "warn")
    } else if m.unseen {
        ("not reachable from here", "warn")
    } else if m.reachable && (!quorum_held || not_serving_reason(m) == "no leader") {
        ("no leader", "warn")
    } else if m.reachable {
        ("unhealthy", "bad")
    } else {
        ("down", "bad")
    }
}

/// Since when something has lasted, as far as etcdboard has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Since {
    /// Unix ms of the first observation that saw it.
    pub at_ms: u64,
    /// The change into it was observed; false when it was already so when watching began (it
    /// may be older).
    pub seen_start: bool,
}

impl Since {
    /// "since 03:12:05 UTC", or "since at least …" when it was so before etcdboard looked.
    pub fn text(&self) -> String {
        if self.seen_start {
            format!("since {}", utc_time(self.at_ms))
        } else {
            format!("since at least {}", utc_time(self.at_ms))
        }
    }
}

/// Since when the cluster has been in its quorum state, and without quorum, from successive
/// observations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuorumClock {
    state: Option<(QuorumState, Since)>,
    without_quorum: Option<Since>,
}

impl QuorumClock {
    /// Records an observation of `state` at `at_ms`.
    pub fn observe(&mut self, state: QuorumState, at_ms: u64) {
        let seen_start = self.state.is_some();
        if self.state.map(|(s, _)| s) != Some(state) {
            self.state = Some((state, Since { at_ms, seen_start }));
        }
        if state == QuorumState::Held {
            self.without_quorum = None;
        } else if self.without_quorum.is_none() {
            self.without_quorum = Some(Since { at_ms, seen_start });
        }
    }

    /// Since when the current state has lasted.
    pub fn in_state(&self) -> Option<Since> {
        self.state.map(|(_, s)| s)
    }

    /// Since when quorum has not been held (`None` while it is).
    pub fn without_quorum(&self) -> Option<Since> {
        self.without_quorum
    }

    /// An election that outlasted [`ELECTION_GRACE_MS`] at `now_ms`.
    pub fn election_stuck(&self, now_ms: u64) -> bool {
        matches!(self.state, Some((QuorumState::Electing, since))
            if now_ms.saturating_sub(since.at_ms) >= ELECTION_GRACE_MS)
    }

    /// Whether the timeline counts quorum as held at `now_ms`, given what it counted before: a
    /// failover (a short election) is a leader change, not "quorum lost" and "regained".
    pub fn held_for_timeline(&self, before: bool, now_ms: u64) -> bool {
        match self.state.map(|(s, _)| s) {
            Some(QuorumState::Held) => true,
            Some(QuorumState::Electing) => before && !self.election_stuck(now_ms),
            Some(QuorumState::Lost | QuorumState::Unknown) => false,
            None => before,
        }
    }
}

/// The page's top line: a state (`ok`, `warn` or `bad`) and one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headline {
    /// `ok`, `warn` or `bad`.
    pub state: &'static str,
    /// What the user came to know.
    pub text: String,
}

/// The top line of the cluster page: healthy or degraded with the margin, an election in progress,
/// or in red how many members answer and since when. `endpoints` is the number of configured
/// endpoints (what was asked when no member list is known).
pub fn headline(
    q: &Quorum,
    members: &[MemberView],
    alarms: usize,
    endpoints: usize,
    clock: &QuorumClock,
    now_ms: u64,
) -> Headline {
    let since = |s: Option<Since>| s.map(|s| format!(" {}", s.text())).unwrap_or_default();
    let noun = if members.iter().any(|m| m.learner) {
        "voting members"
    } else {
        "members"
    };
    let leader = members.iter().find(|m| m.leader).map(MemberView::label);
    let (size, reachable, healthy, majority) = (q.size, q.reachable, q.healthy, q.majority);
    let (state, text) = match q.state {
        QuorumState::Unknown => (
            "bad",
            if endpoints == 0 {
                format!("NO ANSWER — no member could be asked{}", since(clock.without_quorum()))
            } else {
                format!(
                    "NO ANSWER — 0/{endpoints} configured endpoints answered{}",
                    since(clock.without_quorum())
                )
            },
        ),
        QuorumState::Lost => (
            "bad",
            format!(
                "NO QUORUM — {reachable}/{size} {noun} reachable{}, {majority} needed",
                since(clock.without_quorum())
            ),
        ),
        QuorumState::Electing if clock.election_stuck(now_ms) => (
            "bad",
            match &leader {
                None => format!(
                    "NO LEADER — {reachable}/{size} {noun} reachable, no leader elected{}",
                    since(clock.in_state())
                ),
                Some(l) => format!(
                    "NOT SERVING — leader {l}, {healthy}/{size} {noun} serve reads{}, {majority} needed",
                    since(clock.in_state())
                ),
            },
        ),
        QuorumState::Electing => (
            "warn",
            match &leader {
                None => format!(
                    "Election in progress — {reachable}/{size} {noun} reachable, no leader yet"
                ),
                Some(l) => format!(
                    "Election in progress — leader {l}, {healthy}/{size} {noun} serve reads so far, {majority} needed"
                ),
            },
        ),
        QuorumState::Held => {
            let version = versions(members)
                .into_iter()
                .map(|(v, _)| v)
                .collect::<Vec<_>>()
                .join(" / ");
            let degraded = healthy < size || alarms > 0;
            if q.unseen > 0 {
                return Headline {
                    state: "warn",
                    text: format!(
                        "Quorum held — leader {} · {healthy}/{size} members answer etcdboard, {} cannot be reached from here · etcd {version}",
                        leader.unwrap_or_else(|| "?".into()),
                        q.unseen,
                    ),
                };
            }
            (
                if degraded || q.tolerates == 0 {
                    "warn"
                } else {
                    "ok"
                },
                format!(
                    "{} — leader {} · {healthy}/{size} members · can lose {} · etcd {version}",
                    if degraded { "Degraded" } else { "Healthy" },
                    leader.unwrap_or_else(|| "?".into()),
                    q.tolerates,
                ),
            )
        }
    };
    Headline { state, text }
}

/// The last known members as they stand when no configured endpoint answers: all down, nothing
/// measured. A member whose own client URL is a configured endpoint was asked and did not answer
/// within `deadline_s`; the others were not asked, and their note says so.
pub fn unanswered(
    last_known: &[MemberView],
    endpoints: &[String],
    deadline_s: f64,
) -> Vec<MemberView> {
    let norm = |u: &str| u.trim_end_matches('/').to_string();
    let asked: Vec<String> = endpoints.iter().map(|e| norm(e)).collect();
    last_known
        .iter()
        .map(|m| MemberView {
            errors: vec![if m
                .client_urls
                .iter()
                .chain(m.via.iter().map(|v| &v.endpoint))
                .any(|u| asked.contains(&norm(u)))
            {
                format!("no answer after {deadline_s:.1} s")
            } else {
                "not asked: no configured endpoint answered".into()
            }],
            ..MemberView::unheard(
                m.id.clone(),
                m.name.clone(),
                m.peer_urls.clone(),
                m.client_urls.clone(),
                m.learner,
                m.unstarted,
            )
        })
        .collect()
}

/// Counts, per learner, the observations in a row it has been more than `max_lag` entries behind
/// (or with an unknown lag). Members that are no longer learners (promoted, removed) are dropped.
pub fn learners_behind(
    before: &HashMap<String, u32>,
    members: &[MemberView],
    max_lag: u64,
) -> HashMap<String, u32> {
    members
        .iter()
        .filter(|m| m.learner)
        .map(|m| {
            let behind = m.lag.is_none_or(|l| l > max_lag);
            let n = before.get(&m.id).copied().unwrap_or(0);
            (m.id.clone(), if behind { n + 1 } else { 0 })
        })
        .collect()
}

/// Names of the current learners that have been behind for at least `observations` rounds.
pub fn lagging_learners(
    counts: &HashMap<String, u32>,
    members: &[MemberView],
    observations: u32,
) -> Vec<String> {
    members
        .iter()
        .filter(|m| m.learner && counts.get(&m.id).is_some_and(|n| *n >= observations))
        .map(MemberView::label)
        .collect()
}

/// "HH:MM:SS UTC" of a Unix time in ms.
pub fn utc_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02} UTC")
}

/// "12 s ago", "5 min ago", "2 h 3 min ago".
pub fn ago(ms: u64, now_ms: u64) -> String {
    let s = now_ms.saturating_sub(ms) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        _ => format!("{} h {} min ago", s / 3600, (s % 3600) / 60),
    }
}

/// The note next to the quorum numbers: when the cluster was last asked and what came back. When
/// no member answered, the member list shown is the last one read (`listed_ms`), and it says so.
pub fn observation_note(
    observed_ms: u64,
    took_ms: u64,
    answered: bool,
    listed_ms: Option<u64>,
    now_ms: u64,
) -> String {
    if observed_ms == 0 {
        return "not observed yet".into();
    }
    if answered {
        return format!("observed {} in {took_ms} ms", ago(observed_ms, now_ms));
    }
    match listed_ms {
        Some(l) => format!(
            "asked {}: no answer · members as last listed {} ({})",
            ago(observed_ms, now_ms),
            ago(l, now_ms),
            utc_time(l)
        ),
        None => format!(
            "asked {}: no answer · no member list seen since etcdboard started",
            ago(observed_ms, now_ms)
        ),
    }
}

/// A chart legend's value for one member: `last` is its latest value (formatted) and when it was
/// measured. A member that is down, or a value older than `fresh_ms`, is labelled with its age
/// instead of passing for current.
pub fn legend_value(last: Option<(String, u64)>, down: bool, now_ms: u64, fresh_ms: u64) -> String {
    match (last, down) {
        (None, true) => "down".into(),
        (None, false) => "—".into(),
        (Some((v, at)), true) => format!("down · last {v} {}", ago(at, now_ms)),
        (Some((v, at)), false) if now_ms.saturating_sub(at) > fresh_ms => {
            format!("{v} ({})", ago(at, now_ms))
        }
        (Some((v, _)), false) => v,
    }
}

/// Advice for an alarm type.
pub fn alarm_advice(alarm: &str) -> String {
    match alarm {
        "NOSPACE" => "The database reached its quota and the cluster only accepts reads and deletes. Delete or compact old data, defragment each member (one at a time), then disarm the alarm.".into(),
        "CORRUPT" => "A member's data differs from the others. Stop writing, find the corrupt member (hash check), remove it and re-add it from a healthy snapshot, then disarm.".into(),
        other => format!("Alarm {other}: check the member's logs before disarming."),
    }
}

/// Something that happened, derived from two successive observations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterEvent {
    /// Unix time in ms when it was observed.
    pub at_ms: u64,
    /// `member-added`, `member-removed`, `member-replaced`, `leader-changed`, `member-down`,
    /// `member-up`, `alarm-raised`, `alarm-cleared`, `quorum-lost`, `quorum-regained`.
    pub kind: &'static str,
    /// Plain-words description.
    pub text: String,
}

/// Rewrites "member X went down" as "member X stopped answering: {why}" when a later look
/// showed why (a defragmentation etcd reported, seen from `since_ms` on): the observation that
/// found the member silent can come a scrape period before the metrics that explain it. Only
/// the newest such event counts, made no earlier than `slack_ms` before `since_ms` and not
/// followed by the member coming back. Whether one was rewritten.
pub fn explain_down(
    events: &mut std::collections::VecDeque<ClusterEvent>,
    label: &str,
    why: &str,
    since_ms: u64,
    slack_ms: u64,
) -> bool {
    let down = went_down(label);
    let back = is_back(label);
    for e in events.iter_mut() {
        if e.text == back || e.at_ms + slack_ms < since_ms {
            return false;
        }
        if e.kind == "member-down" && e.text == down {
            e.text = stopped_answering(label, why);
            return true;
        }
    }
    false
}

// The timeline's words for a member going and coming back: written by [`diff_events`] and
// recognised by [`explain_down`], so the two cannot drift apart.
fn went_down(label: &str) -> String {
    format!("member {label} went down")
}

fn is_back(label: &str) -> String {
    format!("member {label} is back")
}

fn stopped_answering(label: &str, why: &str) -> String {
    format!("member {label} stopped answering: {why}")
}

/// The events between observation `before` and `after`.
pub fn diff_events(
    before: &[MemberView],
    before_alarms: &[AlarmView],
    before_quorum: bool,
    after: &[MemberView],
    after_alarms: &[AlarmView],
    after_quorum: bool,
    at_ms: u64,
) -> Vec<ClusterEvent> {
    let ev = |kind: &'static str, text: String| ClusterEvent { at_ms, kind, text };
    let mut out = Vec::new();
    let removed: Vec<&MemberView> = before
        .iter()
        .filter(|b| !after.iter().any(|a| a.id == b.id))
        .collect();
    let added: Vec<&MemberView> = after
        .iter()
        .filter(|a| !before.iter().any(|b| b.id == a.id))
        .collect();
    if removed.len() == 1 && added.len() == 1 {
        out.push(ev(
            "member-replaced",
            format!(
                "member {} joined, replacing {}",
                added[0].label(),
                removed[0].label()
            ),
        ));
    } else {
        for m in &removed {
            out.push(ev(
                "member-removed",
                format!("member {} was removed", m.label()),
            ));
        }
        for m in &added {
            out.push(ev(
                "member-added",
                format!("member {} was added", m.label()),
            ));
        }
    }
    // Up is answering at all: a member that answers but cannot serve (no leader, when quorum is
    // lost) did not go down, and the quorum events tell the rest.
    let up = |m: &MemberView| m.reachable || m.serving;
    for a in after {
        if let Some(b) = before.iter().find(|b| b.id == a.id) {
            // A member etcdboard cannot reach is neither down nor back: its state is unknown.
            let known = !a.unseen && !b.unseen;
            if known && up(b) && !up(a) {
                out.push(ev(
                    "member-down",
                    match &a.maintenance {
                        Some(what) => stopped_answering(&a.label(), what),
                        None => went_down(&a.label()),
                    },
                ));
            } else if known && !up(b) && up(a) {
                out.push(ev("member-up", is_back(&a.label())));
            }
            if b.name.is_empty() && !a.name.is_empty() {
                out.push(ev(
                    "member-started",
                    format!("member {} started and joined", a.label()),
                ));
            }
        }
    }
    let old_leader = before.iter().find(|m| m.leader).map(MemberView::label);
    let new_leader = after.iter().find(|m| m.leader).map(MemberView::label);
    if let (Some(o), Some(n)) = (&old_leader, &new_leader) {
        if o != n {
            out.push(ev(
                "leader-changed",
                format!("leader changed from {o} to {n}"),
            ));
        }
    } else if let (None, Some(n)) = (&old_leader, &new_leader) {
        if !before.is_empty() {
            out.push(ev("leader-changed", format!("{n} became leader")));
        }
    }
    for a in after_alarms {
        if !before_alarms.contains(a) {
            out.push(ev(
                "alarm-raised",
                format!("{} alarm raised on {}", a.alarm, a.member),
            ));
        }
    }
    for b in before_alarms {
        if !after_alarms.contains(b) {
            out.push(ev(
                "alarm-cleared",
                format!("{} alarm cleared on {}", b.alarm, b.member),
            ));
        }
    }
    if before_quorum && !after_quorum {
        out.push(ev("quorum-lost", "quorum lost".into()));
    } else if !before_quorum && after_quorum && !before.is_empty() {
        out.push(ev("quorum-regained", "quorum regained".into()));
    }
    out
}

/// A database size as the cluster page shows it ("12.3 MiB").
pub fn db_size_text(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KiB", b / 1024.0)
    }
}

/// What a maintenance action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maintained {
    /// That member (hex id) was defragmented.
    Defragmented(String),
    /// Leadership moved to that member (hex id).
    Leader(String),
    /// That learner (hex id) is a voting member now.
    Promoted(String),
    /// History was compacted up to that revision.
    Compacted(i64),
    /// That many alarms were disarmed.
    Disarmed(usize),
}

impl Maintained {
    /// A sentence for the page saying what was done, naming the member and, for a
    /// defragmentation, its database size `before` and `after` the action (member lists read
    /// just before and just after it).
    pub fn message(&self, before: &[MemberView], after: &[MemberView], took: Duration) -> String {
        let find = |list: &[MemberView], id: &str| {
            list.iter().find(|m| m.id.eq_ignore_ascii_case(id)).cloned()
        };
        let name = |id: &str| {
            find(after, id)
                .or_else(|| find(before, id))
                .map(|m| m.name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| id.to_string())
        };
        match self {
            Maintained::Defragmented(id) => {
                let secs = took.as_secs_f64();
                let sizes = find(before, id)
                    .and_then(|m| m.db_size)
                    .zip(find(after, id).and_then(|m| m.db_size));
                match sizes {
                    Some((was, is)) => format!(
                        "Defragmented {} in {secs:.1} s: its database went from {} to {}.",
                        name(id),
                        db_size_text(was),
                        db_size_text(is)
                    ),
                    None => format!("Defragmented {} in {secs:.1} s.", name(id)),
                }
            }
            Maintained::Leader(id) => format!("{} is the leader now.", name(id)),
            Maintained::Promoted(id) => {
                let voters = after.iter().filter(|m| !m.learner).count();
                format!(
                    "{} is a voting member now ({voters} voting members).",
                    name(id)
                )
            }
            Maintained::Compacted(rev) => {
                format!("Compacted: versions older than revision {rev} are gone for good.")
            }
            Maintained::Disarmed(0) => "No alarm was raised.".to_string(),
            Maintained::Disarmed(1) => "Disarmed 1 alarm.".to_string(),
            Maintained::Disarmed(n) => format!("Disarmed {n} alarms."),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn member(id: &str, healthy: bool, leader: bool) -> MemberView {
        MemberView {
            id: id.into(),
            name: format!("m-{id}"),
            peer_urls: vec![],
            client_urls: vec![format!("http://{id}:2379")],
            learner: false,
            leader,
            healthy,
            serving: healthy,
            reachable: healthy,
            version: None,
            db_size: Some(100),
            db_size_in_use: Some(60),
            quota: None,
            raft_term: None,
            raft_index: None,
            raft_applied_index: None,
            lag: None,
            latency_ms: None,
            errors: vec![],
            unstarted: false,
            via: None,
            unseen: false,
            maintenance: None,
        }
    }

    /// A member whose database is `size` MiB, `in_use` MiB of it in use, under an 8 MiB quota.
    fn filled(id: &str, size: f64, in_use: f64) -> MemberView {
        const MIB: f64 = 1024.0 * 1024.0;
        let mut m = member(id, true, false);
        m.db_size = Some((size * MIB) as i64);
        m.db_size_in_use = Some((in_use * MIB) as i64);
        m.quota = Some(8 * 1024 * 1024);
        m
    }

    #[test]
    fn a_database_near_its_quota_is_warned_about_with_what_frees_space() {
        // Below 80 % of the quota, or with no quota known: nothing to say.
        assert!(space_warnings(&[filled("a", 6.3, 6.0), filled("b", 6.0, 6.0)], &[]).is_empty());
        let mut unknown = filled("a", 7.9, 7.9);
        unknown.quota = None;
        assert!(space_warnings(&[unknown], &[]).is_empty());

        // The data fills it: the fullest member first, the others after, and compaction advice.
        let w = space_warnings(
            &[
                filled("a", 6.5, 6.2),
                filled("b", 6.9, 6.6),
                filled("c", 6.0, 6.0),
            ],
            &[],
        );
        assert_eq!(w.len(), 1, "one warning for the cluster: {w:?}");
        assert_eq!(w[0].level, "warning");
        assert_eq!(
            w[0].text,
            "Database near its quota: m-b at 86 % (6.9 MiB of 8.0 MiB), m-a at 81 %. At 100 % etcd \
             raises NOSPACE and accepts only reads and deletes"
        );
        assert!(
            w[0].advice
                .starts_with("The data itself fills it. Compact old revisions"),
            "{w:?}"
        );

        // Mostly free pages: defragmenting is what helps, and says how small it gets.
        let w = space_warnings(&[filled("a", 7.7, 2.5)], &[]);
        assert_eq!(w[0].level, "critical", "96 % is close to NOSPACE");
        assert_eq!(
            w[0].advice,
            "68 % of m-a's file is free pages: defragment each member, one at a time (defrag in \
             the members table), and it shrinks to about 2.5 MiB."
        );

        // Once NOSPACE is raised, its banner says what to do; no second voice.
        let alarm = AlarmView {
            member_id: "a".into(),
            member: "m-a".into(),
            alarm: "NOSPACE".into(),
            advice: String::new(),
        };
        assert!(space_warnings(&[filled("a", 8.0, 8.0)], &[alarm]).is_empty());
    }

    /// Chart points with these WAL fsync, backend commit and peer round-trip p99s (seconds).
    fn points(
        values: &[(Option<f64>, Option<f64>, Option<f64>)],
    ) -> Vec<crate::domain::metrics::Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, &(fsync, commit, rtt))| crate::domain::metrics::Point {
                at_ms: i as u64 * 10_000,
                fsync_p99: fsync,
                commit_p99: commit,
                peer_rtt_p99: rtt,
                leader_changes: None,
                proposals_failed: None,
                proposals_pending: None,
                db_size: None,
                quota: None,
            })
            .collect()
    }

    /// The warnings of [`slow_members`].
    fn slow_members_warnings_for_test(
        series: &[(String, String, Vec<crate::domain::metrics::Point>)],
        every_ms: u64,
    ) -> Vec<Warning> {
        slow_members(series, every_ms)
            .into_iter()
            .map(|s| s.warning)
            .collect()
    }

    #[test]
    fn a_member_slow_in_each_of_the_last_scrapes_is_warned_about_once_a_hiccup_is_not() {
        let fine = (Some(0.004), Some(0.01), Some(0.002));
        let slow_disk = (Some(0.7), Some(0.3), Some(0.002));
        let series = |name: &str, p: Vec<crate::domain::metrics::Point>| {
            vec![("b1".to_string(), name.to_string(), p)]
        };
        // One slow interval among fine ones, or too few points: nothing.
        let hiccup = points(&[fine, slow_disk, fine, slow_disk, slow_disk]);
        assert!(slow_members_warnings_for_test(&series("m1", hiccup), 10_000).is_empty());
        let short = points(&[slow_disk, slow_disk]);
        assert!(slow_members_warnings_for_test(&series("m1", short), 10_000).is_empty());
        // A scrape that failed (a gap) or saw no write leaves it unknown: nothing either.
        let gap = points(&[slow_disk, (None, None, None), slow_disk, slow_disk]);
        assert!(
            slow_members_warnings_for_test(&series("m1", gap[..3].to_vec()), 10_000).is_empty()
        );

        // Slow three times in a row: the disk, with the smallest of those values.
        let w = slow_members_warnings_for_test(
            &series(
                "m1",
                points(&[
                    fine,
                    (Some(0.9), Some(0.4), Some(0.002)),
                    slow_disk,
                    (Some(0.6), Some(0.5), None),
                ]),
            ),
            10_000,
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].level, "warning");
        assert_eq!(
            w[0].text,
            "m1's disk is slow for the last 30 s: WAL fsync p99 at least 600 ms (etcd alerts from \
             500 ms), backend commit p99 at least 300 ms (etcd alerts from 250 ms)"
        );
        assert!(w[0]
            .advice
            .starts_with("etcd waits for this disk on every write"));

        // Over a second is etcd's critical level; a member without a name goes by its id.
        let w = slow_members_warnings_for_test(
            &series("", points(&[(Some(1.5), None, None); 3])),
            5_000,
        );
        assert_eq!(w[0].level, "critical");
        assert!(
            w[0].text
                .starts_with("b1's disk is slow for the last 15 s: WAL fsync p99 at least 1500 ms"),
            "{w:?}"
        );

        // The network: peer round trips.
        let w = slow_members_warnings_for_test(
            &series("m2", points(&[(Some(0.004), None, Some(0.2)); 3])),
            10_000,
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            w[0].text,
            "m2's network to its peers is slow for the last 30 s: peer round-trip p99 at least \
             200 ms (etcd alerts from 150 ms)"
        );
        let slow = slow_members(
            &series("m2", points(&[(Some(0.004), None, Some(0.2)); 3])),
            10_000,
        );
        assert!(!slow[0].disk, "a slow network is not a slow disk");
    }

    #[test]
    fn a_member_with_a_slow_disk_is_called_slow_not_dead_and_nobody_is_told_to_remove_it() {
        let mut members = vec![
            member("a", true, true),
            member("b", true, false),
            member("c", false, false),
        ];
        // c timed out: its status did not come back within the deadline.
        members[2].errors = vec!["no answer after 0.8 s".into()];
        let q = quorum(&members, 0, &[]);
        assert_eq!(
            q.warnings[0].text, "member m-c is down",
            "without metrics it looks dead"
        );
        let q = quorum_with_slow_disks(&members, 0, &[], &["c"]);
        assert_eq!(q.warnings.len(), 1, "{:?}", q.warnings);
        assert_eq!(
            q.warnings[0].text,
            "member m-c does not answer in time: its disk is slow"
        );
        assert!(
            q.warnings[0].advice.starts_with("It is slow, not dead"),
            "{:?}",
            q.warnings
        );
        assert!(!q.warnings[0].advice.contains("remove the dead member"));
        // Answering its status but not serving reads: slow too, not cut off from its peers.
        members[2].reachable = true;
        members[2].errors = vec!["linearizable read: no answer after 0.8 s".into()];
        let q = quorum_with_slow_disks(&members, 0, &[], &["c"]);
        assert_eq!(
            q.warnings[0].text,
            "member m-c answers but does not serve (linearizable read: no answer after 0.8 s): its \
             disk is slow"
        );
    }

    #[test]
    fn members_on_different_etcd_versions_are_an_upgrade_half_done() {
        let mut members = vec![
            member("a", true, true),
            member("b", true, false),
            member("c", true, false),
        ];
        for m in &mut members {
            m.version = Some("3.4.23".into());
        }
        let q = quorum(&members, 0, &[]);
        assert!(q.warnings.is_empty(), "{:?}", q.warnings);
        let h = headline(&q, &members, 0, 3, &QuorumClock::default(), 0);
        assert!(h.text.ends_with("· etcd 3.4.23"), "{}", h.text);

        // Mid-upgrade; versions are compared by number (3.4.9 is older than 3.4.23).
        members[1].version = Some("3.5.17".into());
        members[2].version = Some("3.4.9".into());
        let q = quorum(&members, 0, &[]);
        assert_eq!(q.warnings.len(), 1, "{:?}", q.warnings);
        assert_eq!(
            q.warnings[0].text,
            "members run different etcd versions: 3.5.17 on m-b; 3.4.23 on m-a; 3.4.9 on m-c"
        );
        assert!(q.warnings[0].advice.starts_with("An upgrade is under way"));
        let h = headline(&q, &members, 0, 3, &QuorumClock::default(), 0);
        assert!(
            h.text.ends_with("· etcd 3.4.9 / 3.4.23 / 3.5.17"),
            "{}",
            h.text
        );

        // A member that did not answer has no version: it is not a version of its own.
        members[1].version = None;
        members[2].version = Some("3.4.23".into());
        assert!(quorum(&members, 0, &[]).warnings.is_empty());
    }

    #[test]
    fn a_member_etcdboard_is_defragmenting_is_in_maintenance_not_down() {
        let before = vec![
            member("a", true, true),
            member("b", true, false),
            member("c", true, false),
        ];
        let mut after = before.clone();
        after[2] = member("c", false, false);
        after[2].maintenance =
            Some("etcdboard is defragmenting it (since 03:12:05 UTC, asked by alice)".into());
        assert_eq!(member_health(&after[2], true), ("in maintenance", "warn"));
        let q = quorum(&after, 0, &[]);
        assert_eq!(q.warnings.len(), 1, "{:?}", q.warnings);
        assert_eq!(q.warnings[0].level, "info");
        assert_eq!(
            q.warnings[0].text,
            "member m-c does not answer in time: etcdboard is defragmenting it (since 03:12:05 \
             UTC, asked by alice)"
        );
        let ev = diff_events(&before, &[], true, &after, &[], true, 1);
        assert_eq!(
            ev[0].text,
            "member m-c stopped answering: etcdboard is defragmenting it (since 03:12:05 UTC, \
             asked by alice)"
        );
        // Once it answers again, it is simply healthy.
        let mut done = before[2].clone();
        done.maintenance =
            Some("etcdboard is defragmenting it (since 03:12:05 UTC, asked by alice)".into());
        assert_eq!(member_health(&done, true), ("ok", "ok"));
    }

    #[test]
    fn a_member_seen_down_before_its_defragmentation_was_seen_is_explained_later() {
        let ev = |at_ms: u64, kind: &'static str, text: &str| ClusterEvent {
            at_ms,
            kind,
            text: text.to_string(),
        };
        let why = "it is being defragmented (etcd has reported it since 00:16:40 UTC)";
        // Newest first, as the timeline keeps them.
        let mut events: std::collections::VecDeque<ClusterEvent> = [
            ev(995_000, "member-down", "member m-c went down"),
            ev(990_000, "member-down", "member m-b went down"),
        ]
        .into();
        assert!(explain_down(&mut events, "m-c", why, 1_000_000, 13_000));
        assert_eq!(
            events[0].text,
            format!("member m-c stopped answering: {why}")
        );
        assert_eq!(events[1].text, "member m-b went down", "only that member's");
        // Once explained it stays so; an older outage is not rewritten.
        assert!(!explain_down(&mut events, "m-c", why, 1_000_000, 13_000));
        let mut old: std::collections::VecDeque<ClusterEvent> =
            [ev(900_000, "member-down", "member m-c went down")].into();
        assert!(!explain_down(&mut old, "m-c", why, 1_000_000, 13_000));
        // Nor one the member came back from since.
        let mut back: std::collections::VecDeque<ClusterEvent> = [
            ev(998_000, "member-up", "member m-c is back"),
            ev(995_000, "member-down", "member m-c went down"),
        ]
        .into();
        assert!(!explain_down(&mut back, "m-c", why, 1_000_000, 13_000));
        assert_eq!(back[1].text, "member m-c went down");
    }

    #[test]
    fn warnings_are_listed_most_serious_first_and_keep_their_order_within_a_level() {
        let mut w = vec![
            warn("info", "n1", ""),
            warn("warning", "w1", ""),
            warn("critical", "c1", ""),
            warn("warning", "w2", ""),
            warn("critical", "c2", ""),
        ];
        most_serious_first(&mut w);
        let order: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(order, ["c1", "c2", "w1", "w2", "n1"]);
    }

    #[test]
    fn maintenance_messages_name_the_member_and_what_changed() {
        let mut was = member("8e9e05c52164694d", true, false);
        was.db_size = Some(45 * 1024 * 1024);
        let mut is = was.clone();
        is.db_size = Some(12 * 1024 * 1024 + 100 * 1024);
        let took = Duration::from_millis(1_240);
        let defrag = Maintained::Defragmented("8E9E05C52164694D".into());
        assert_eq!(
            defrag.message(&[was.clone()], &[is], took),
            "Defragmented m-8e9e05c52164694d in 1.2 s: its database went from 45.0 MiB to 12.1 MiB."
        );
        // The member no longer answers its status: no sizes to compare, still named.
        let mut gone = was.clone();
        gone.db_size = None;
        assert_eq!(
            defrag.message(&[was.clone()], &[gone], took),
            "Defragmented m-8e9e05c52164694d in 1.2 s."
        );
        // A member the lists do not know (yet) is named by its id.
        assert_eq!(
            Maintained::Leader("abc".into()).message(&[was.clone()], &[], took),
            "abc is the leader now."
        );
        assert_eq!(
            Maintained::Leader("8e9e05c52164694d".into()).message(&[], &[was], took),
            "m-8e9e05c52164694d is the leader now."
        );
        assert_eq!(
            Maintained::Compacted(42).message(&[], &[], took),
            "Compacted: versions older than revision 42 are gone for good."
        );
        let disarmed = |n| Maintained::Disarmed(n).message(&[], &[], took);
        assert_eq!(disarmed(0), "No alarm was raised.");
        assert_eq!(disarmed(1), "Disarmed 1 alarm.");
        assert_eq!(disarmed(3), "Disarmed 3 alarms.");
    }

    #[test]
    fn database_sizes_read_in_the_largest_fitting_unit() {
        assert_eq!(db_size_text(20 * 1024), "20 KiB");
        assert_eq!(db_size_text(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(db_size_text(2 * 1024 * 1024 * 1024), "2.0 GiB");
    }

    #[test]
    fn three_healthy_members_tolerate_one_failure() {
        let q = quorum(
            &[
                member("a", true, true),
                member("b", true, false),
                member("c", true, false),
            ],
            0,
            &[],
        );
        assert_eq!(
            (q.size, q.majority, q.tolerates, q.has_quorum),
            (3, 2, 1, true)
        );
        assert!(q.warnings.is_empty());
    }

    #[test]
    fn one_down_leaves_no_margin_and_says_what_to_do() {
        let q = quorum(
            &[
                member("a", true, true),
                member("b", true, false),
                member("c", false, false),
            ],
            0,
            &[],
        );
        assert_eq!((q.tolerates, q.has_quorum), (0, true));
        assert!(
            q.warnings
                .iter()
                .any(|w| w.text.contains("m-c is down")
                    && w.advice.contains("remove the dead member"))
        );
    }

    #[test]
    fn two_down_of_three_is_no_quorum() {
        let q = quorum(
            &[
                member("a", true, false),
                member("b", false, false),
                member("c", false, false),
            ],
            0,
            &[],
        );
        assert!(!q.has_quorum);
        assert_eq!(q.warnings[0].level, "critical");
        assert!(q.warnings[0].text.starts_with("NO QUORUM"));
    }

    #[test]
    fn small_and_even_sizes_are_warned_about() {
        let q = quorum(&[member("a", true, true)], 0, &[]);
        assert!(q
            .warnings
            .iter()
            .any(|w| w.text.contains("only 1 voting member")));
        let four: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, id)| member(id, true, i == 0))
            .collect();
        let q = quorum(&four, 0, &[]);
        assert_eq!(q.tolerates, 1);
        assert!(q.warnings.iter().any(|w| w.text.contains("even size")));
        let q = quorum(&four[..3], 5, &[]);
        assert!(q
            .warnings
            .iter()
            .any(|w| w.text.contains("5 leader changes")));
    }

    #[test]
    fn an_alarm_is_not_a_lost_member() {
        let mut full = vec![
            member("a", true, true),
            member("b", true, false),
            member("c", true, false),
        ];
        for m in full.iter_mut() {
            m.healthy = false; // NOSPACE: etcdctl calls it unhealthy, but it serves and votes
        }
        let q = quorum(&full, 0, &[]);
        assert_eq!((q.has_quorum, q.tolerates), (true, 1));
        assert!(q
            .warnings
            .iter()
            .all(|w| !w.advice.contains("remove the dead member")));
    }

    #[test]
    fn learners_do_not_vote() {
        let mut l = member("d", false, false);
        l.learner = true;
        let q = quorum(
            &[
                member("a", true, true),
                member("b", true, false),
                member("c", true, false),
                l,
            ],
            0,
            &[],
        );
        assert_eq!((q.size, q.tolerates), (3, 1));
    }

    #[test]
    fn replacement_leader_change_and_alarms_become_events() {
        let before = vec![
            member("a", true, true),
            member("b", true, false),
            member("c", true, false),
        ];
        let after = vec![
            member("a", true, false),
            member("b", true, true),
            member("d", true, false),
        ];
        let alarm = AlarmView {
            member_id: "a".into(),
            member: "m-a".into(),
            alarm: "NOSPACE".into(),
            advice: String::new(),
        };
        let ev = diff_events(
            &before,
            &[],
            true,
            &after,
            std::slice::from_ref(&alarm),
            true,
            1,
        );
        let kinds: Vec<_> = ev.iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&"member-replaced"), "{kinds:?}");
        assert!(ev
            .iter()
            .any(|e| e.text == "member m-d joined, replacing m-c"));
        assert!(kinds.contains(&"leader-changed"));
        assert!(kinds.contains(&"alarm-raised"));
        let ev = diff_events(&after, &[alarm], true, &after, &[], true, 2);
        assert_eq!(ev[0].kind, "alarm-cleared");
        let down = vec![
            member("a", false, false),
            member("b", false, false),
            member("d", true, true),
        ];
        let ev = diff_events(&after, &[], true, &down, &[], false, 3);
        assert!(ev.iter().any(|e| e.kind == "quorum-lost"));
        assert!(ev.iter().filter(|e| e.kind == "member-down").count() == 2);
    }

    /// Up and answering its status call, but without a leader (what a survivor of lost quorum,
    /// or a follower during an election, says).
    fn up_without_leader(id: &str) -> MemberView {
        let mut m = member(id, false, false);
        m.reachable = true;
        m.errors = vec![
            "etcdserver: no leader".into(),
            "linearizable read: etcdserver: no leader".into(),
        ];
        m
    }

    /// 03:12:05 UTC on some day.
    const T0: u64 = (3 * 3600 + 12 * 60 + 5) * 1000 + 86_400_000 * 20_000;

    #[test]
    fn without_quorum_no_member_is_advised_removed_and_the_survivor_is_up_without_leader() {
        let members = [
            up_without_leader("a"),
            member("b", false, false),
            member("c", false, false),
        ];
        let q = quorum(&members, 0, &[]);
        assert_eq!(
            (q.state, q.has_quorum, q.reachable),
            (QuorumState::Lost, false, 1)
        );
        assert!(
            q.warnings
                .iter()
                .all(|w| !w.advice.contains("member remove")
                    && !w.advice.contains("remove the dead member")),
            "{:#?}",
            q.warnings
        );
        assert_eq!(q.warnings[0].level, "critical");
        assert!(
            q.warnings[0]
                .text
                .contains("1/3 voting members reachable, 2 needed"),
            "{}",
            q.warnings[0].text
        );
        assert!(q.warnings[0]
            .advice
            .contains("Do not add or remove members"));
        assert!(
            q.warnings.iter().all(|w| !w.text.contains("m-a")),
            "the survivor is not reported as down: {:#?}",
            q.warnings
        );
        assert_eq!(member_health(&members[0], false), ("no leader", "warn"));
        assert_eq!(member_health(&members[1], false), ("down", "bad"));
    }

    #[test]
    fn a_member_cut_off_from_the_leader_is_not_called_dead_while_quorum_holds() {
        let members = [
            member("a", true, true),
            member("b", true, false),
            up_without_leader("c"),
        ];
        let q = quorum(&members, 0, &[]);
        assert_eq!(q.state, QuorumState::Held);
        let w = q
            .warnings
            .iter()
            .find(|w| w.text.contains("m-c"))
            .expect("a warning names m-c");
        assert!(
            w.text.contains("answers but does not serve (no leader)"),
            "{}",
            w.text
        );
        assert!(!w.advice.contains("member remove"), "{}", w.advice);
        assert_eq!(member_health(&members[2], true), ("no leader", "warn"));
        let mut slow = member("d", false, false);
        slow.reachable = true;
        slow.errors = vec!["linearizable read: no answer after 0.8 s".into()];
        assert_eq!(member_health(&slow, true), ("unhealthy", "bad"));
    }

    #[test]
    fn a_failover_with_a_majority_up_is_an_election_in_progress_not_lost_quorum() {
        // The leader was killed; the two others answer and have not elected a new one yet.
        let members = [
            member("a", false, false),
            up_without_leader("b"),
            up_without_leader("c"),
        ];
        let q = quorum(&members, 0, &[]);
        assert_eq!(q.state, QuorumState::Electing);
        assert!(!q.has_quorum);
        assert!(
            q.warnings
                .iter()
                .all(|w| w.level != "critical" && !w.text.contains("NO QUORUM")),
            "{:#?}",
            q.warnings
        );
        assert!(q.warnings[0].text.contains("election in progress"));
        let mut clock = QuorumClock::default();
        clock.observe(QuorumState::Held, T0);
        clock.observe(QuorumState::Electing, T0 + 3_000);
        let h = headline(&q, &members, 0, 3, &clock, T0 + 3_500);
        assert_eq!(h.state, "warn", "{h:?}");
        assert!(
            h.text
                .starts_with("Election in progress — 2/3 members reachable"),
            "{}",
            h.text
        );
        // A failover is a leader change, not "quorum lost".
        assert!(clock.held_for_timeline(true, T0 + 3_500));
        // An election that never ends is not "in progress" any more.
        let late = T0 + 3_000 + ELECTION_GRACE_MS;
        let h = headline(&q, &members, 0, 3, &clock, late);
        assert_eq!(h.state, "bad", "{h:?}");
        assert!(
            h.text.starts_with(
                "NO LEADER — 2/3 members reachable, no leader elected since 03:12:08 UTC"
            ),
            "{}",
            h.text
        );
        assert!(!clock.held_for_timeline(true, late));
    }

    #[test]
    fn a_survivor_that_loses_its_leader_did_not_go_down() {
        let before = [
            member("a", true, true),
            member("b", true, false),
            member("c", true, false),
        ];
        let after = [
            up_without_leader("a"),
            member("b", false, false),
            member("c", false, false),
        ];
        let ev = diff_events(&before, &[], true, &after, &[], false, 1);
        let down: Vec<&str> = ev
            .iter()
            .filter(|e| e.kind == "member-down")
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(down, ["member m-b went down", "member m-c went down"]);
        assert!(ev.iter().any(|e| e.kind == "quorum-lost"));
        let ev = diff_events(&after, &[], false, &before, &[], true, 2);
        let up: Vec<&str> = ev
            .iter()
            .filter(|e| e.kind == "member-up")
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(up, ["member m-b is back", "member m-c is back"]);
    }

    #[test]
    fn the_no_quorum_headline_says_how_many_members_answer_and_since_when() {
        let members = [
            up_without_leader("a"),
            member("b", false, false),
            member("c", false, false),
        ];
        let q = quorum(&members, 0, &[]);
        let mut clock = QuorumClock::default();
        clock.observe(QuorumState::Held, T0 - 3_000);
        clock.observe(QuorumState::Lost, T0);
        clock.observe(QuorumState::Lost, T0 + 60_000);
        let h = headline(&q, &members, 0, 3, &clock, T0 + 61_000);
        assert_eq!(
            (h.state, h.text.as_str()),
            (
                "bad",
                "NO QUORUM — 1/3 members reachable since 03:12:05 UTC, 2 needed"
            )
        );
        // Lost before etcdboard looked: it cannot say when it began.
        let mut fresh = QuorumClock::default();
        fresh.observe(QuorumState::Lost, T0);
        let h = headline(&q, &members, 0, 3, &fresh, T0);
        assert!(
            h.text.contains("reachable since at least 03:12:05 UTC"),
            "{}",
            h.text
        );
        // An election on the way out of lost quorum keeps the time quorum was lost.
        clock.observe(QuorumState::Electing, T0 + 90_000);
        assert_eq!(clock.without_quorum().map(|s| s.at_ms), Some(T0));
        clock.observe(QuorumState::Held, T0 + 91_000);
        assert_eq!(clock.without_quorum(), None);
    }

    #[test]
    fn with_every_member_down_the_last_known_members_are_shown_down_not_0_of_0() {
        let known = [
            member("a", true, true),
            member("b", true, false),
            member("c", true, false),
        ];
        let endpoints = vec!["http://a:2379/".to_string(), "http://b:2379".to_string()];
        let down = unanswered(&known, &endpoints, 0.8);
        assert_eq!(down.len(), 3);
        assert!(down.iter().all(|m| !m.reachable
            && !m.serving
            && !m.healthy
            && !m.leader
            && m.db_size.is_none()));
        assert_eq!(
            down.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["m-a", "m-b", "m-c"]
        );
        assert_eq!(down[0].errors, ["no answer after 0.8 s"]);
        assert_eq!(
            down[2].errors,
            ["not asked: no configured endpoint answered"]
        );
        let q = quorum(&down, 0, &[]);
        assert_eq!(
            (q.state, q.size, q.majority, q.reachable),
            (QuorumState::Lost, 3, 2, 0)
        );
        let mut clock = QuorumClock::default();
        clock.observe(QuorumState::Held, T0 - 3_000);
        clock.observe(QuorumState::Lost, T0);
        let h = headline(&q, &down, 0, 2, &clock, T0);
        assert_eq!(
            h.text,
            "NO QUORUM — 0/3 members reachable since 03:12:05 UTC, 2 needed"
        );
    }

    #[test]
    fn with_no_member_list_ever_quorum_is_unknown_and_the_endpoints_are_counted() {
        let q = quorum(&[], 0, &[]);
        assert_eq!((q.state, q.has_quorum), (QuorumState::Unknown, false));
        assert!(
            q.warnings
                .iter()
                .all(|w| !w.text.contains("0/0") && !w.text.contains("NO QUORUM")),
            "{:#?}",
            q.warnings
        );
        let mut clock = QuorumClock::default();
        clock.observe(QuorumState::Unknown, T0);
        let h = headline(&q, &[], 0, 3, &clock, T0 + 4_000);
        assert_eq!(
            (h.state, h.text.as_str()),
            (
                "bad",
                "NO ANSWER — 0/3 configured endpoints answered since at least 03:12:05 UTC"
            )
        );
    }

    #[test]
    fn the_observation_note_never_passes_a_failed_round_for_a_measurement() {
        let now = T0 + 5_000;
        assert_eq!(
            observation_note(T0, 12, true, Some(T0), now),
            "observed 5 s ago in 12 ms"
        );
        assert_eq!(
            observation_note(now, 0, false, Some(T0 - 300_000), now),
            "asked 0 s ago: no answer · members as last listed 5 min ago (03:07:05 UTC)"
        );
        assert_eq!(
            observation_note(now, 0, false, None, now),
            "asked 0 s ago: no answer · no member list seen since etcdboard started"
        );
        assert_eq!(observation_note(0, 0, false, None, now), "not observed yet");
    }

    #[test]
    fn a_down_members_last_chart_value_is_labelled_with_its_age() {
        let now = T0 + 300_000;
        assert_eq!(
            legend_value(Some(("7.8 ms".into(), T0)), true, now, 30_000),
            "down · last 7.8 ms 5 min ago"
        );
        assert_eq!(legend_value(None, true, now, 30_000), "down");
        assert_eq!(
            legend_value(Some(("7.8 ms".into(), T0)), false, now, 30_000),
            "7.8 ms (5 min ago)"
        );
        assert_eq!(
            legend_value(Some(("7.8 ms".into(), now - 10_000)), false, now, 30_000),
            "7.8 ms"
        );
        assert_eq!(legend_value(None, false, now, 30_000), "—");
    }

    #[test]
    fn learners_that_were_promoted_or_removed_are_forgotten() {
        let mut l = member("l", false, false);
        l.learner = true;
        l.lag = Some(50_000);
        let mut counts = HashMap::new();
        for _ in 0..3 {
            counts = learners_behind(&counts, std::slice::from_ref(&l), 1000);
        }
        assert_eq!(counts.get("l"), Some(&3));
        assert_eq!(
            lagging_learners(&counts, std::slice::from_ref(&l), 3),
            ["m-l"]
        );
        // Promoted while still far behind: no longer a learner, no longer reported.
        let mut promoted = l.clone();
        promoted.learner = false;
        let after = learners_behind(&counts, std::slice::from_ref(&promoted), 1000);
        assert!(after.is_empty(), "{after:?}");
        assert!(lagging_learners(&counts, std::slice::from_ref(&promoted), 3).is_empty());
        // Removed.
        assert!(learners_behind(&counts, &[member("a", true, true)], 1000).is_empty());
        // Caught up.
        l.lag = Some(3);
        assert_eq!(learners_behind(&counts, &[l], 1000).get("l"), Some(&0));
    }

    /// Not reachable from where etcdboard runs: its advertised client URL does not resolve.
    fn unseen(id: &str) -> MemberView {
        let mut m = member(id, false, false);
        m.unseen = true;
        m.errors = vec!["dns error".into(), "linearizable read: dns error".into()];
        m
    }

    #[test]
    fn a_served_read_proves_quorum_when_the_other_members_cannot_be_reached_from_here() {
        // One port-forward: a follower serves, and names the leader etcdboard cannot reach.
        let mut leader = unseen("b");
        leader.leader = true;
        let members = [member("a", true, false), leader, unseen("c")];
        let q = quorum(&members, 0, &[]);
        assert_eq!(
            (q.state, q.has_quorum, q.healthy, q.unseen, q.tolerates),
            (QuorumState::Held, true, 1, 2, 0)
        );
        assert_eq!(q.warnings.len(), 1, "{:#?}", q.warnings);
        let w = &q.warnings[0];
        assert!(
            w.text.contains("2 of 3 voting members cannot be reached from etcdboard: m-b (http://b:2379), m-c (http://c:2379)"),
            "{}",
            w.text
        );
        assert!(
            !w.text.contains("down") && !w.advice.contains("remove"),
            "{w:#?}"
        );
        assert_eq!(
            member_health(&members[1], true),
            ("not reachable from here", "warn")
        );
        let h = headline(&q, &members, 0, 1, &QuorumClock::default(), T0);
        assert_eq!(h.state, "warn");
        assert!(
            h.text.starts_with("Quorum held — leader m-b · 1/3 members answer etcdboard, 2 cannot be reached from here"),
            "{}",
            h.text
        );
    }

    #[test]
    fn members_that_cannot_be_reached_do_not_hide_a_lost_quorum() {
        // The forwarded member answers but sees no leader: the unseen members cannot make up a
        // majority that nobody proved.
        let members = [up_without_leader("a"), unseen("b"), unseen("c")];
        let q = quorum(&members, 0, &[]);
        assert_eq!((q.state, q.unseen), (QuorumState::Lost, 2));
        assert!(
            q.warnings[0]
                .text
                .ends_with("1/3 voting members reachable, 2 needed; writes and linearizable reads fail; 2 more cannot be reached from etcdboard"),
            "{}",
            q.warnings[0].text
        );
        // A member down for real next to unseen ones is still down, and quorum needs it.
        let members = [
            member("a", true, true),
            member("b", false, false),
            unseen("c"),
        ];
        let q = quorum(&members, 0, &[]);
        assert_eq!((q.state, q.tolerates), (QuorumState::Held, 0));
        assert!(
            q.warnings.iter().any(|w| w.text == "member m-b is down"),
            "{:#?}",
            q.warnings
        );
        let members = [
            member("a", true, true),
            member("b", false, false),
            member("c", false, false),
        ];
        assert_eq!(quorum(&members, 0, &[]).state, QuorumState::Lost);
    }

    #[test]
    fn a_member_that_cannot_be_reached_from_here_is_neither_down_nor_back() {
        let before = [member("a", true, true), member("b", true, false)];
        let after = [member("a", true, true), unseen("b")];
        assert!(diff_events(&before, &[], true, &after, &[], true, 1).is_empty());
        assert!(diff_events(&after, &[], true, &before, &[], true, 2).is_empty());
        let down = [member("a", true, true), member("b", false, false)];
        assert_eq!(
            diff_events(&before, &[], true, &down, &[], true, 3)[0].kind,
            "member-down"
        );
    }

    #[test]
    fn calls_to_a_member_go_where_it_was_reached() {
        let mut m = member("a", true, false);
        assert_eq!(m.reach_url(), Some("http://a:2379"));
        m.via = Some(Via {
            endpoint: "http://127.0.0.1:23790".into(),
            advertised: "dns error".into(),
        });
        assert_eq!(m.reach_url(), Some("http://127.0.0.1:23790"));
        let listed = [m.clone()];
        let last = unanswered(&listed, &["http://127.0.0.1:23790/".into()], 0.8);
        assert_eq!(last[0].errors, ["no answer after 0.8 s"]);
    }
}
