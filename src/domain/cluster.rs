//! What etcd says about its members, and what it means: health, quorum margin, warnings in plain
//! words, and the events that successive observations imply. Pure; the gateway fills it in.

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
}

impl MemberView {
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

/// Quorum arithmetic and warnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quorum {
    /// Voting members.
    pub size: usize,
    /// Voting members that are healthy.
    pub healthy: usize,
    /// Votes needed for a majority.
    pub majority: usize,
    /// How many more voting members may fail right now without losing quorum (0 when lost).
    pub tolerates: usize,
    /// Quorum is held (a majority is healthy and there is a leader).
    pub has_quorum: bool,
    /// A leader is known.
    pub has_leader: bool,
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

/// Computes the quorum panel. `leader_changes_15m` counts leader changes seen in the last 15
/// minutes; `lagging_learners` names learners that have not caught up for a long time.
pub fn quorum(
    members: &[MemberView],
    leader_changes_15m: usize,
    lagging_learners: &[String],
) -> Quorum {
    let voters: Vec<&MemberView> = members.iter().filter(|m| !m.learner).collect();
    let size = voters.len();
    // Quorum is about members that serve, not about alarms: those have their own banner and advice.
    let healthy = voters.iter().filter(|m| m.serving).count();
    let majority = size / 2 + 1;
    let has_leader = members.iter().any(|m| m.leader);
    let has_quorum = size > 0 && healthy >= majority && has_leader;
    let tolerates = if has_quorum { healthy - majority } else { 0 };
    let mut warnings = Vec::new();
    if !has_quorum {
        warnings.push(warn(
            "critical",
            format!("NO QUORUM — {healthy}/{size} voting members healthy, {majority} needed; writes and linearizable reads fail"),
            "Bring members back (restart their pods or processes). Do not add or remove members while quorum is lost; if the lost members cannot come back, restore from a snapshot.",
        ));
    } else if !has_leader {
        warnings.push(warn(
            "critical",
            "No leader",
            "An election is in progress or the cluster is partitioned; check peer connectivity.",
        ));
    }
    for m in voters.iter().filter(|m| !m.serving && !m.unstarted) {
        let who = if m.name.is_empty() {
            m.id.clone()
        } else {
            m.name.clone()
        };
        warnings.push(warn(
            "warning",
            format!("member {who} is down or unhealthy"),
            "If it does not come back, remove the dead member (etcdctl member remove) before adding a new one, so the cluster never has more members than it can reach.",
        ));
    }
    for m in members.iter().filter(|m| m.unstarted) {
        warnings.push(warn(
            "warning",
            format!("member {} was added but has not started", m.id),
            "Start the new member with --initial-cluster-state existing, or remove it: an unstarted voting member counts against quorum.",
        ));
    }
    if size > 0 && size < 3 {
        warnings.push(warn(
            "warning",
            format!("only {size} voting member(s): a single failure loses quorum"),
            "Run 3 or 5 members (the field report's fix was 5, spread over nodes).",
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
    Quorum {
        size,
        healthy,
        majority,
        tolerates,
        has_quorum,
        has_leader,
        warnings,
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

fn label(m: &MemberView) -> String {
    if m.name.is_empty() {
        m.id.clone()
    } else {
        m.name.clone()
    }
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
                label(added[0]),
                label(removed[0])
            ),
        ));
    } else {
        for m in &removed {
            out.push(ev(
                "member-removed",
                format!("member {} was removed", label(m)),
            ));
        }
        for m in &added {
            out.push(ev("member-added", format!("member {} was added", label(m))));
        }
    }
    for a in after {
        if let Some(b) = before.iter().find(|b| b.id == a.id) {
            if b.serving && !a.serving {
                out.push(ev("member-down", format!("member {} went down", label(a))));
            } else if !b.serving && a.serving {
                out.push(ev("member-up", format!("member {} is back", label(a))));
            }
            if b.name.is_empty() && !a.name.is_empty() {
                out.push(ev(
                    "member-started",
                    format!("member {} started and joined", label(a)),
                ));
            }
        }
    }
    let old_leader = before.iter().find(|m| m.leader).map(label);
    let new_leader = after.iter().find(|m| m.leader).map(label);
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
        }
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
}
