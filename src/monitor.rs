//! Keeps watch over each configured cluster: observes its members every few seconds (and on demand
//! when a page asks), derives the event timeline from successive observations, and scrapes each
//! member's `/metrics` into a bounded in-memory window for the charts. Nothing here can slow a
//! page: every call has a deadline and pages read the latest snapshot or a fresh bounded round.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::cluster::{
    diff_events, explain_down, lagging_learners, learners_behind, most_serious_first, quorum,
    quorum_with_slow_disks, slow_members, space_warnings, unanswered, utc_time, AlarmView,
    ClusterEvent, MemberView, Quorum, QuorumClock,
};
use crate::domain::metrics::{parse, point, Point, Scrape};
use crate::etcd::members::{Observation, MEMBER_DEADLINE};
use crate::etcd::EtcdCluster;

/// How often members are observed in the background.
const OBSERVE_EVERY: Duration = Duration::from_secs(3);
/// Deadline of one metrics scrape.
const SCRAPE_DEADLINE: Duration = Duration::from_millis(1500);
/// Chart points kept per member (an hour at the scrape interval).
const POINTS_KEPT: usize = 360;
/// Timeline entries kept.
const EVENTS_KEPT: usize = 500;
/// A learner this far behind for this many observations is reported as not catching up.
const LEARNER_LAG: u64 = 1000;
const LEARNER_OBSERVATIONS: u32 = 20;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the cluster page shows.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Members.
    pub members: Vec<MemberView>,
    /// Alarms.
    pub alarms: Vec<AlarmView>,
    /// Quorum panel.
    pub quorum: Quorum,
    /// Why the member list could not be read.
    pub error: Option<String>,
    /// Unix ms of the observation.
    pub observed_ms: u64,
    /// How long the observation took.
    pub took_ms: u64,
    /// Timeline, newest first.
    pub events: Vec<ClusterEvent>,
    /// Chart points per member id (oldest first).
    pub series: Vec<(String, String, Vec<Point>)>,
    /// When the member list was last read (the members shown are from then when the latest
    /// round found no member to ask).
    pub listed_ms: Option<u64>,
    /// Since when the cluster has been in its quorum state, and without quorum.
    pub clock: QuorumClock,
    /// How often metrics are scraped (a chart value older than a few of these is stale).
    pub scrape_every_ms: u64,
    /// Why members' `/metrics` could not be read in the latest round (member name or id, why).
    pub scrape_errors: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    /// The latest observation, when it was made, and whether the timeline counts quorum as held.
    last: Option<(Observation, u64, bool)>,
    events: VecDeque<ClusterEvent>,
    leader_changes: VecDeque<u64>,
    /// The last leader a change was counted for: during a failover the observed leader can blink
    /// (none, an old view, the new one), which is one change, not several.
    counted_leader: Option<String>,
    /// Per member id, like `series` and `learner_behind`: only ids in the latest member list.
    scrapes: HashMap<String, Scrape>,
    /// Why a member's `/metrics` could not be read in the latest round.
    scrape_errors: HashMap<String, String>,
    series: HashMap<String, VecDeque<Point>>,
    learner_behind: HashMap<String, u32>,
    listed_ms: Option<u64>,
    clock: QuorumClock,
    /// Maintenance etcdboard runs on members now: a copy of the monitor's [`BusyMap`], taken
    /// before each observation and snapshot.
    busy: Marks,
    /// Members whose latest `/metrics` said a defragmentation is running
    /// (`etcd_disk_defrag_inflight`), with when that was first and last seen (Unix ms).
    defrag_seen: HashMap<String, (u64, u64)>,
}

/// etcdboard's own maintenance marks; shared by a monitor and its successors, so that a guard
/// taken before a discovered cluster's monitor was replaced still ends it.
type BusyMap = Arc<Mutex<Marks>>;

/// What etcdboard runs on members, by member id.
#[derive(Debug, Clone, Default)]
struct Marks {
    /// Running now.
    running: HashMap<String, Busy>,
    /// When the last one on each member ended (Unix ms): a scrape taken before that still
    /// reports it running, and is not someone else's defragmentation.
    ended_ms: HashMap<String, u64>,
}

/// The gauge etcd (3.4.18+, 3.5.1+) sets to 1 while a member defragments, whoever asked.
const DEFRAG_INFLIGHT: &str = "etcd_disk_defrag_inflight";

/// Maintenance running on one member (see [`Monitor::begin_maintenance`]).
#[derive(Debug, Clone)]
struct Busy {
    what: &'static str,
    since_ms: u64,
    user: String,
}

/// Marks a member as under maintenance until dropped.
pub struct MaintenanceGuard {
    busy: BusyMap,
    member: String,
}

impl Drop for MaintenanceGuard {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.busy.lock() {
            busy.running.remove(&self.member);
            busy.ended_ms.insert(self.member.clone(), now_ms());
        }
    }
}

impl Marks {
    /// Since when member `id` has been defragmented by someone else, given `seen` (first and
    /// last seen in its metrics): not while etcdboard runs maintenance on it, and not from a
    /// scrape taken before etcdboard's own defragmentation of it ended.
    fn defrag_elsewhere(&self, id: &str, (since, last): (u64, u64)) -> Option<u64> {
        let ended = self.ended_ms.get(id).copied().unwrap_or(0);
        (!self.running.contains_key(id) && last > ended).then_some(since)
    }
}

/// What etcdboard calls its own defragmentations (see [`Monitor::begin_maintenance`]).
pub const DEFRAGMENTING: &str = "defragmenting";

/// "is being defragmented (…)": a defragmentation etcd reports that this etcdboard did not
/// start, and where it may come from, so that nobody starts another or takes it for a failure.
fn defrag_elsewhere_text(since_ms: u64) -> String {
    format!(
        "being defragmented (etcd has reported it since {}; started elsewhere: another etcdboard replica, etcdctl or an operator)",
        utc_time(since_ms)
    )
}

/// The watcher of one cluster.
pub struct Monitor {
    cluster: Arc<EtcdCluster>,
    scrape_every: Duration,
    state: Mutex<State>,
    busy: BusyMap,
}

impl Monitor {
    /// A monitor for `cluster` (not started) scraping metrics every `scrape_every`.
    pub fn new(cluster: Arc<EtcdCluster>, scrape_every: Duration) -> Arc<Monitor> {
        Arc::new(Monitor {
            cluster,
            scrape_every,
            state: Mutex::new(State::default()),
            busy: BusyMap::default(),
        })
    }

    /// A monitor for `cluster` that carries on from `previous` (its timeline, last observation
    /// and chart points), for a discovered cluster whose endpoints changed: the members are the
    /// same etcd cluster, so its history continues and a replaced member shows as such.
    pub fn succeed(cluster: Arc<EtcdCluster>, previous: &Monitor) -> Arc<Monitor> {
        let next = Arc::new(Monitor {
            cluster,
            scrape_every: previous.scrape_every,
            state: Mutex::new(State::default()),
            busy: previous.busy.clone(),
        });
        if let (Ok(mut old), Ok(mut new)) = (previous.state.lock(), next.state.lock()) {
            *new = std::mem::take(&mut *old);
        }
        next
    }

    /// The cluster watched.
    pub fn cluster(&self) -> &Arc<EtcdCluster> {
        &self.cluster
    }

    /// Starts the background loops; they end when the monitor is dropped.
    pub fn start(self: &Arc<Self>) {
        let weak: Weak<Monitor> = Arc::downgrade(self);
        let scrape_every = self.scrape_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(OBSERVE_EVERY);
            let mut scrape_tick = tokio::time::interval(scrape_every);
            // Metrics need a member list to know whom to ask: until a scrape had someone to
            // ask, one follows each observation, so the quota, the charts and the warnings that
            // need them come with the first member list, not a scrape period later.
            let mut scraped = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let Some(m) = weak.upgrade() else { return };
                        m.observe_now().await;
                        if !scraped {
                            scraped = m.scrape().await;
                        }
                    }
                    _ = scrape_tick.tick() => {
                        let Some(m) = weak.upgrade() else { return };
                        scraped |= m.scrape().await;
                    }
                }
            }
        });
    }

    /// Observes the members now (bounded by the per-member deadline) and records what changed.
    pub async fn observe_now(&self) -> Snapshot {
        let obs = self.cluster.observe().await;
        let at = now_ms();
        // The busy map is read before the state is locked: the two are never held together.
        let busy = self.busy_now();
        if let Ok(mut st) = self.state.lock() {
            st.busy = busy;
            st.record(obs, at, &self.cluster.endpoints());
        }
        self.snapshot()
    }

    /// The latest snapshot (members, quorum, timeline, charts) without asking etcd.
    pub fn snapshot(&self) -> Snapshot {
        let busy = self.busy_now();
        let Ok(mut st) = self.state.lock() else {
            return Snapshot::empty("monitor state unavailable");
        };
        st.busy = busy;
        st.snapshot(now_ms(), self.scrape_every)
    }

    fn busy_now(&self) -> Marks {
        self.busy.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Marks member `id` (hex) as under `what` ("defragmenting") for `user` until the guard is
    /// dropped: while it is, the member's row and warnings say so, instead of calling a member
    /// that cannot answer down. Refused, naming the member, while another member of this
    /// cluster is under the same maintenance: one member at a time keeps the rest serving. A
    /// defragmentation etcd reports that etcdboard did not start (another replica, etcdctl, an
    /// operator) counts too.
    pub fn begin_maintenance(
        self: &Arc<Self>,
        id: &str,
        what: &'static str,
        user: &str,
    ) -> Result<MaintenanceGuard, String> {
        let id = id.to_ascii_lowercase();
        // What the state knows first: the two locks are never held together.
        let (names, seen): (HashMap<String, String>, HashMap<String, (u64, u64)>) = self
            .state
            .lock()
            .map(|st| {
                let names = st
                    .last
                    .as_ref()
                    .map(|(o, _, _)| {
                        o.members
                            .iter()
                            .filter(|m| !m.name.is_empty())
                            .map(|m| (m.id.clone(), m.name.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                (names, st.defrag_seen.clone())
            })
            .unwrap_or_default();
        let Ok(mut busy) = self.busy.lock() else {
            return Err("monitor state unavailable".into());
        };
        let one_at_a_time = "one member at a time, so that the others keep serving";
        if let Some((other, b)) = busy.running.iter().find(|(_, b)| b.what == what) {
            let name = names.get(other).unwrap_or(other);
            return Err(format!(
                "{name} is {what} (since {}, asked by {}): {one_at_a_time}",
                utc_time(b.since_ms),
                b.user
            ));
        }
        if what == DEFRAGMENTING {
            if let Some((other, since)) = seen
                .iter()
                .find_map(|(m, seen)| busy.defrag_elsewhere(m, *seen).map(|since| (m, since)))
            {
                let name = names.get(other).unwrap_or(other);
                return Err(format!(
                    "{name} is {}: {one_at_a_time}",
                    defrag_elsewhere_text(since)
                ));
            }
        }
        busy.running.insert(
            id.clone(),
            Busy {
                what,
                since_ms: now_ms(),
                user: user.to_string(),
            },
        );
        Ok(MaintenanceGuard {
            busy: self.busy.clone(),
            member: id,
        })
    }

    /// Alarms of the latest observation (for the banner on every page of the cluster).
    pub fn alarms(&self) -> Vec<AlarmView> {
        self.state
            .lock()
            .ok()
            .and_then(|st| st.last.as_ref().map(|(o, _, _)| o.alarms.clone()))
            .unwrap_or_default()
    }

    /// Scrapes `/metrics` of every member with a URL etcdboard can use (in parallel, each with a
    /// deadline); false when no member was known yet, so nobody was asked.
    pub async fn scrape(&self) -> bool {
        let targets: Vec<(String, String)> = match self.state.lock() {
            Ok(st) => st
                .last
                .as_ref()
                .map(|(o, _, _)| {
                    // Members that did not answer their status too: metrics are served apart
                    // from raft, so a member too slow to answer in time (a slow disk) still
                    // says why. Only members known not to be reachable from here are skipped.
                    o.members
                        .iter()
                        .filter(|m| !m.unseen)
                        .filter_map(|m| m.reach_url().map(|u| (m.id.clone(), u.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => return false,
        };
        let asked = !targets.is_empty();
        let fetches = targets.into_iter().map(|(id, url)| async move {
            let text = self.cluster.member_metrics(&url, SCRAPE_DEADLINE).await;
            (id, text)
        });
        let results = futures::future::join_all(fetches).await;
        let at = now_ms();
        let busy = self.busy_now();
        if let Ok(mut st) = self.state.lock() {
            st.busy = busy;
            st.record_scrapes(results, at);
            st.explain_defrags(self.scrape_every);
        }
        asked
    }
}

impl State {
    /// Records one observation made at `at` (`endpoints`: what the gateway asks for the member
    /// list). When no endpoint answered, the last known members stand in, all down, so the page
    /// keeps their names and count instead of an empty table.
    fn record(&mut self, mut obs: Observation, at: u64, endpoints: &[String]) {
        self.mark_busy(&mut obs.members);
        // An alarm list that could not be read keeps the last known alarms: an alarm never
        // "clears" just because quorum was lost.
        if !obs.alarms_known {
            if let Some((prev, _, _)) = &self.last {
                obs.alarms = prev.alarms.clone();
            }
        }
        if obs.error.is_none() {
            self.listed_ms = Some(at);
            self.learner_behind = learners_behind(&self.learner_behind, &obs.members, LEARNER_LAG);
            self.keep_members(&obs.members);
        } else if obs.members.is_empty() {
            if let Some((prev, _, _)) = &self.last {
                obs.members = unanswered(&prev.members, endpoints, MEMBER_DEADLINE.as_secs_f64());
            }
        }
        if self.counted_leader.is_none() {
            self.counted_leader = obs.members.iter().find(|m| m.leader).map(|m| m.id.clone());
        }
        let lagging = lagging_learners(&self.learner_behind, &obs.members, LEARNER_OBSERVATIONS);
        let q = quorum(&obs.members, 0, &lagging);
        self.clock.observe(q.state, at);
        let before = self.last.as_ref().is_none_or(|(_, _, held)| *held);
        let held = self.clock.held_for_timeline(before, at);
        if let Some((prev, _, prev_held)) = &self.last {
            // Both rounds must know the members: a round without a member list says nothing about
            // who was added or removed.
            if !prev.members.is_empty() && !obs.members.is_empty() {
                let events = diff_events(
                    &prev.members,
                    &prev.alarms,
                    *prev_held,
                    &obs.members,
                    &obs.alarms,
                    held,
                    at,
                );
                let leader = obs.members.iter().find(|m| m.leader).map(|m| m.id.clone());
                for e in events {
                    if e.kind == "leader-changed" {
                        if leader.is_some() && leader == self.counted_leader {
                            // Back to the leader already counted: no change after all.
                            continue;
                        }
                        self.counted_leader = leader.clone();
                        self.leader_changes.push_back(at);
                    }
                    self.events.push_front(e);
                }
                self.events.truncate(EVENTS_KEPT);
            }
        }
        self.last = Some((obs, at, held));
    }

    /// Forgets what is kept per member for ids no longer in the member list (removed, replaced).
    /// A member that is down stays in the list, and so keeps its chart.
    fn keep_members(&mut self, members: &[MemberView]) {
        let ids: HashSet<&str> = members.iter().map(|m| m.id.as_str()).collect();
        self.scrapes.retain(|id, _| ids.contains(id.as_str()));
        self.series.retain(|id, _| ids.contains(id.as_str()));
        self.defrag_seen.retain(|id, _| ids.contains(id.as_str()));
        self.learner_behind
            .retain(|id, _| ids.contains(id.as_str()));
    }

    /// Says on each member whether maintenance runs on it now: etcdboard's own, or a
    /// defragmentation etcd reports that was started elsewhere.
    fn mark_busy(&self, members: &mut [MemberView]) {
        for m in members.iter_mut() {
            m.maintenance = match self.busy.running.get(&m.id) {
                Some(b) => Some(format!(
                    "etcdboard is {} it (since {}, asked by {})",
                    b.what,
                    utc_time(b.since_ms),
                    b.user
                )),
                None => self.defrag_elsewhere(&m.id).map(|(_, why)| why),
            };
        }
    }

    /// A defragmentation of member `id` that etcd reports and etcdboard did not start: since
    /// when, and the clause that says so ("it is being defragmented (…)").
    fn defrag_elsewhere(&self, id: &str) -> Option<(u64, String)> {
        let seen = self.defrag_seen.get(id)?;
        let since = self.busy.defrag_elsewhere(id, *seen)?;
        Some((since, format!("it is {}", defrag_elsewhere_text(since))))
    }

    /// Records a scrape round at `at`: `results` has the text of each member asked, `None` if it
    /// did not answer. Every charted member without an answer gets an empty point, so the charts
    /// stay aligned in time and a dead member's line stops where it died.
    fn record_scrapes(&mut self, results: Vec<(String, Result<String, String>)>, at: u64) {
        let mut answered = HashSet::new();
        self.scrape_errors.clear();
        for (id, text) in results {
            let text = match text {
                Ok(text) => text,
                Err(why) => {
                    self.scrape_errors.insert(id, why);
                    continue;
                }
            };
            answered.insert(id.clone());
            let scrape = parse(&text);
            if scrape
                .values
                .get(DEFRAG_INFLIGHT)
                .is_some_and(|v| *v >= 1.0)
            {
                self.defrag_seen.entry(id.clone()).or_insert((at, at)).1 = at;
            } else {
                self.defrag_seen.remove(&id);
            }
            let previous = self.scrapes.insert(id.clone(), scrape.clone());
            if let Some(prev) = previous {
                let series = self.series.entry(id).or_default();
                series.push_back(point(&prev, &scrape, at));
                while series.len() > POINTS_KEPT {
                    series.pop_front();
                }
            }
        }
        // A member that did not answer says nothing about a defragmentation: down is down.
        self.defrag_seen.retain(|id, _| answered.contains(id));
        for (id, series) in self.series.iter_mut() {
            if !answered.contains(id) {
                series.push_back(gap(at));
                while series.len() > POINTS_KEPT {
                    series.pop_front();
                }
            }
        }
    }

    /// A member the timeline says went down that its metrics now show being defragmented by
    /// someone else: the timeline says that instead (the observation that found it silent may
    /// have come up to a scrape period before the scrape that says why).
    fn explain_defrags(&mut self, scrape_every: Duration) {
        let Some((obs, _, _)) = &self.last else {
            return;
        };
        let slack = (scrape_every + OBSERVE_EVERY).as_millis() as u64;
        let explained: Vec<(String, u64, String)> = obs
            .members
            .iter()
            .filter_map(|m| {
                let (since, why) = self.defrag_elsewhere(&m.id)?;
                Some((m.label(), since, why))
            })
            .collect();
        for (label, since, why) in explained {
            explain_down(&mut self.events, &label, &why, since, slack);
        }
    }

    fn snapshot(&mut self, now: u64, scrape_every: Duration) -> Snapshot {
        let horizon = now.saturating_sub(15 * 60 * 1000);
        while self.leader_changes.front().is_some_and(|t| *t < horizon) {
            self.leader_changes.pop_front();
        }
        let changes = self.leader_changes.len();
        let Some((obs, at, _)) = &self.last else {
            return Snapshot::empty("not observed yet");
        };
        let lagging = lagging_learners(&self.learner_behind, &obs.members, LEARNER_OBSERVATIONS);
        let names: HashMap<&str, &str> = obs
            .members
            .iter()
            .map(|m| (m.id.as_str(), m.name.as_str()))
            .collect();
        let mut series: Vec<(String, String, Vec<Point>)> = self
            .series
            .iter()
            .map(|(id, pts)| {
                (
                    id.clone(),
                    names.get(id.as_str()).unwrap_or(&"").to_string(),
                    pts.iter().cloned().collect(),
                )
            })
            .collect();
        series.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        let mut scrape_errors: Vec<(String, String)> = self
            .scrape_errors
            .iter()
            .map(|(id, why)| {
                let name = names.get(id.as_str()).copied().unwrap_or_default();
                (
                    if name.is_empty() { id } else { name }.to_string(),
                    why.clone(),
                )
            })
            .collect();
        scrape_errors.sort();
        let mut members = obs.members.clone();
        self.mark_busy(&mut members);
        for m in members
            .iter_mut()
            .filter(|m| m.quota.is_none() && m.reachable)
        {
            m.quota = self
                .scrapes
                .get(&m.id)
                .and_then(|s| s.values.get("etcd_server_quota_backend_bytes"))
                .map(|q| *q as i64);
        }
        let slow = slow_members(&series, scrape_every.as_millis() as u64);
        let slow_disks: Vec<&str> = slow
            .iter()
            .filter(|s| s.disk)
            .map(|s| s.id.as_str())
            .collect();
        let mut quorum = quorum_with_slow_disks(&members, changes, &lagging, &slow_disks);
        quorum
            .warnings
            .extend(space_warnings(&members, &obs.alarms));
        quorum
            .warnings
            .extend(slow.iter().map(|s| s.warning.clone()));
        most_serious_first(&mut quorum.warnings);
        Snapshot {
            quorum,
            members,
            alarms: obs.alarms.clone(),
            error: obs.error.clone(),
            observed_ms: *at,
            took_ms: obs.took.as_millis() as u64,
            events: self.events.iter().cloned().collect(),
            series,
            listed_ms: self.listed_ms,
            clock: self.clock,
            scrape_every_ms: scrape_every.as_millis() as u64,
            scrape_errors,
        }
    }
}

/// A chart point with no values: the member did not answer this round.
fn gap(at_ms: u64) -> Point {
    Point {
        at_ms,
        fsync_p99: None,
        commit_p99: None,
        peer_rtt_p99: None,
        leader_changes: None,
        proposals_failed: None,
        proposals_pending: None,
        db_size: None,
        quota: None,
    }
}

impl Snapshot {
    fn empty(reason: &str) -> Snapshot {
        Snapshot {
            members: Vec::new(),
            alarms: Vec::new(),
            quorum: quorum(&[], 0, &[]),
            error: Some(reason.to_string()),
            observed_ms: 0,
            took_ms: 0,
            events: Vec::new(),
            series: Vec::new(),
            listed_ms: None,
            clock: QuorumClock::default(),
            scrape_every_ms: 0,
            scrape_errors: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cluster::tests::member;
    use crate::domain::cluster::QuorumState;

    /// A monitor (not started) of a cluster nobody answers for, and that cluster.
    fn idle_monitor() -> (Arc<EtcdCluster>, Arc<Monitor>) {
        let cfg = crate::config::ClusterConfig {
            name: "c".into(),
            endpoints: vec!["http://127.0.0.1:9".into()],
            ..Default::default()
        };
        let cluster = EtcdCluster::new(&cfg, Duration::from_secs(1)).unwrap();
        (
            cluster.clone(),
            Monitor::new(cluster, Duration::from_secs(10)),
        )
    }

    #[test]
    fn maintenance_is_one_member_at_a_time_and_ends_in_a_successor_too() {
        let (cluster, m) = idle_monitor();
        let guard = m
            .begin_maintenance("ABC", "defragmenting", "alice")
            .unwrap();
        let refused = m
            .begin_maintenance("def", "defragmenting", "bob")
            .err()
            .unwrap();
        assert!(
            refused.starts_with("abc is defragmenting (since ")
                && refused.ends_with(
                    ", asked by alice): one member at a time, so that the others keep serving"
                ),
            "{refused}"
        );
        // A discovered cluster's monitor replaced meanwhile: the successor knows, and the guard
        // taken before ends it there.
        let next = Monitor::succeed(cluster, &m);
        assert!(next
            .begin_maintenance("def", "defragmenting", "bob")
            .is_err());
        drop(guard);
        assert!(next
            .begin_maintenance("def", "defragmenting", "bob")
            .is_ok());
    }

    #[test]
    fn a_defragmentation_etcd_reports_is_maintenance_whoever_started_it() {
        let (_, m) = idle_monitor();
        let mut down_c = healthy_three();
        down_c[2] = member("c", false, false);
        let scrape = |m: &Monitor, c: Result<&str, &str>, at: u64| {
            let mut st = m.state.lock().unwrap();
            st.record(seen(down_c.clone()), at, &endpoints());
            st.record_scrapes(
                vec![
                    ("a".into(), Ok(format!("{DEFRAG_INFLIGHT} 0\n"))),
                    ("c".into(), c.map(str::to_string).map_err(str::to_string)),
                ],
                at,
            );
        };
        let defrag_of_c = |m: &Monitor| {
            m.snapshot()
                .members
                .iter()
                .find(|x| x.id == "c")
                .unwrap()
                .maintenance
                .clone()
        };
        // Another replica, etcdctl or an operator defragments c: its metrics say so.
        scrape(&m, Ok("etcd_disk_defrag_inflight 1\n"), 1_000_000);
        scrape(&m, Ok("etcd_disk_defrag_inflight 1\n"), 1_010_000);
        let said = defrag_of_c(&m).expect("c is in maintenance");
        assert_eq!(
            said,
            "it is being defragmented (etcd has reported it since 00:16:40 UTC; started \
             elsewhere: another etcdboard replica, etcdctl or an operator)"
        );
        let snap = m.snapshot();
        let c = snap.members.iter().find(|x| x.id == "c").unwrap();
        assert_eq!(
            crate::domain::cluster::member_health(c, true).0,
            "in maintenance"
        );
        assert!(
            snap.quorum.warnings.iter().any(|w| w.level == "info"
                && w.text == format!("member m-c does not answer in time: {said}")),
            "{:?}",
            snap.quorum.warnings
        );
        // So a defragmentation of another member waits for it.
        let refused = m
            .begin_maintenance("a", DEFRAGMENTING, "alice")
            .err()
            .unwrap();
        assert!(
            refused
                .starts_with("m-c is being defragmented (etcd has reported it since 00:16:40 UTC;")
                && refused.ends_with("one member at a time, so that the others keep serving"),
            "{refused}"
        );
        // It ended; and a member whose metrics do not answer is not "being defragmented".
        scrape(&m, Ok("etcd_disk_defrag_inflight 0\n"), 1_020_000);
        assert_eq!(defrag_of_c(&m), None);
        scrape(&m, Ok("etcd_disk_defrag_inflight 1\n"), 1_030_000);
        assert!(defrag_of_c(&m).is_some());
        scrape(&m, Err("connection refused"), 1_040_000);
        assert_eq!(defrag_of_c(&m), None);
        // etcdboard's own defragmentation is named as such, and once it ended a scrape from
        // before its end (still saying 1) is not taken for someone else's.
        let guard = m.begin_maintenance("c", DEFRAGMENTING, "alice").unwrap();
        scrape(&m, Ok("etcd_disk_defrag_inflight 1\n"), now_ms() - 1);
        assert!(defrag_of_c(&m)
            .unwrap()
            .starts_with("etcdboard is defragmenting it (since "));
        drop(guard);
        assert_eq!(defrag_of_c(&m), None);
        assert!(m.begin_maintenance("a", DEFRAGMENTING, "alice").is_ok());
    }

    const ENDPOINTS: [&str; 3] = ["http://a:2379", "http://b:2379", "http://c:2379"];

    fn endpoints() -> Vec<String> {
        ENDPOINTS.iter().map(|e| e.to_string()).collect()
    }

    fn seen(members: Vec<MemberView>) -> Observation {
        Observation {
            members,
            alarms: Vec::new(),
            alarms_known: true,
            error: None,
            took: Duration::from_millis(12),
        }
    }

    fn no_answer() -> Observation {
        Observation {
            members: Vec::new(),
            alarms: Vec::new(),
            alarms_known: false,
            error: Some("no member of cluster `t` answered within 800 ms".into()),
            took: Duration::ZERO,
        }
    }

    fn healthy_three() -> Vec<MemberView> {
        vec![
            member("a", true, true),
            member("b", true, false),
            member("c", true, false),
        ]
    }

    /// Two scrape rounds for `ids`, so each has a chart point.
    fn scrape_twice(st: &mut State, ids: &[&str], at: u64) {
        for t in [at, at + 1000] {
            st.record_scrapes(
                ids.iter()
                    .map(|id| {
                        (
                            id.to_string(),
                            Ok("etcd_mvcc_db_total_size_in_bytes 1\n".into()),
                        )
                    })
                    .collect(),
                t,
            );
        }
    }

    fn kinds(s: &Snapshot) -> Vec<&'static str> {
        s.events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn removed_or_promoted_members_are_forgotten_but_a_down_member_keeps_its_chart() {
        let mut st = State::default();
        let mut learner = member("l", true, false);
        learner.learner = true;
        learner.lag = Some(1_000_000);
        let mut members = healthy_three();
        members.push(learner.clone());
        let mut at = 1_000_000;
        for _ in 0..LEARNER_OBSERVATIONS {
            st.record(seen(members.clone()), at, &endpoints());
            at += 3000;
        }
        scrape_twice(&mut st, &["a", "b", "c", "l"], at);
        let s = st.snapshot(at, Duration::from_secs(10));
        assert!(s
            .quorum
            .warnings
            .iter()
            .any(|w| w.text == "learner m-l has not caught up"));

        // Promoted while still far behind: not a learner any more.
        let mut promoted = learner.clone();
        promoted.learner = false;
        let mut members = healthy_three();
        members.push(promoted);
        st.record(seen(members), at, &endpoints());
        let s = st.snapshot(at, Duration::from_secs(10));
        assert!(
            s.quorum
                .warnings
                .iter()
                .all(|w| !w.text.contains("has not caught up")),
            "{:#?}",
            s.quorum.warnings
        );

        // Then removed, while c is down (still a member).
        let mut members = healthy_three();
        members[2] = member("c", false, false);
        st.record(seen(members), at + 3000, &endpoints());
        let s = st.snapshot(at + 3000, Duration::from_secs(10));
        let charted: Vec<&str> = s.series.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(charted, ["a", "b", "c"]);
        assert!(st.scrapes.keys().all(|id| id != "l"));
        assert!(st.learner_behind.is_empty(), "{:?}", st.learner_behind);
    }

    #[test]
    fn with_every_member_down_the_last_known_members_stay_listed_as_down() {
        let mut st = State::default();
        st.record(seen(healthy_three()), 1_000, &endpoints());
        scrape_twice(&mut st, &["a", "b", "c"], 1_500);
        st.record(no_answer(), 4_000, &endpoints());
        st.record(no_answer(), 7_000, &endpoints());
        let s = st.snapshot(7_000, Duration::from_secs(10));
        assert!(s.error.is_some());
        assert_eq!(
            s.members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["m-a", "m-b", "m-c"]
        );
        assert!(s.members.iter().all(|m| !m.reachable && !m.serving));
        assert!(s.members[0].errors[0].starts_with("no answer after"));
        assert_eq!(
            (s.quorum.state, s.quorum.size, s.quorum.majority),
            (QuorumState::Lost, 3, 2)
        );
        assert_eq!(s.listed_ms, Some(1_000));
        assert_eq!(s.clock.without_quorum().map(|w| w.at_ms), Some(4_000));
        // The charts keep the members' names, not their ids.
        assert_eq!(
            s.series
                .iter()
                .map(|(_, n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["m-a", "m-b", "m-c"]
        );
        let k = kinds(&s);
        assert!(k.contains(&"quorum-lost"), "{k:?}");
        assert_eq!(
            k.iter().filter(|k| **k == "member-down").count(),
            3,
            "{k:?}"
        );

        st.record(seen(healthy_three()), 10_000, &endpoints());
        let s = st.snapshot(10_000, Duration::from_secs(10));
        assert_eq!(s.quorum.state, QuorumState::Held);
        assert!(kinds(&s).contains(&"quorum-regained"));
    }

    #[test]
    fn never_answered_means_no_members_and_unknown_quorum() {
        let mut st = State::default();
        st.record(no_answer(), 1_000, &endpoints());
        let s = st.snapshot(1_000, Duration::from_secs(10));
        assert!(s.members.is_empty());
        assert_eq!(s.quorum.state, QuorumState::Unknown);
        assert_eq!(s.listed_ms, None);
        assert!(s.events.is_empty());
    }

    #[test]
    fn a_failover_is_a_leader_change_not_lost_and_regained_quorum() {
        let mut st = State::default();
        st.record(seen(healthy_three()), 1_000, &endpoints());
        let mut electing = vec![
            member("a", false, false),
            member("b", false, false),
            member("c", false, false),
        ];
        for m in &mut electing[1..] {
            m.reachable = true;
            m.errors = vec!["etcdserver: no leader".into()];
        }
        st.record(seen(electing), 4_000, &endpoints());
        assert_eq!(
            st.snapshot(4_000, Duration::from_secs(10)).quorum.state,
            QuorumState::Electing
        );
        st.record(
            seen(vec![
                member("a", false, false),
                member("b", true, true),
                member("c", true, false),
            ]),
            7_000,
            &endpoints(),
        );
        let s = st.snapshot(7_000, Duration::from_secs(10));
        let k = kinds(&s);
        assert!(k.contains(&"leader-changed"), "{k:?}");
        assert!(
            !k.contains(&"quorum-lost") && !k.contains(&"quorum-regained"),
            "{k:?}"
        );
    }

    #[test]
    fn a_leader_that_blinks_during_a_failover_is_one_change_not_several() {
        let three = |leader: Option<&str>| {
            seen(
                ["a", "b", "c"]
                    .iter()
                    .map(|id| member(id, true, Some(*id) == leader))
                    .collect(),
            )
        };
        let mut st = State::default();
        st.record(three(Some("a")), 1_000, &endpoints());
        // A blink with no leader, then the same leader: no change.
        st.record(three(None), 2_000, &endpoints());
        st.record(three(Some("a")), 3_000, &endpoints());
        assert_eq!(st.leader_changes.len(), 0);
        // A real failover whose new leader blinks: one change.
        st.record(three(Some("b")), 4_000, &endpoints());
        st.record(three(None), 5_000, &endpoints());
        st.record(three(Some("b")), 6_000, &endpoints());
        assert_eq!(st.leader_changes.len(), 1);
        let s = st.snapshot(6_000, Duration::from_secs(10));
        assert_eq!(
            kinds(&s).iter().filter(|k| **k == "leader-changed").count(),
            1
        );
    }

    #[test]
    fn a_member_that_stops_answering_gets_gaps_so_charts_stay_aligned() {
        let mut st = State::default();
        st.record(seen(healthy_three()), 1_000, &endpoints());
        scrape_twice(&mut st, &["a", "b", "c"], 2_000);
        st.record_scrapes(
            vec![
                ("a".into(), Ok("x 1\n".into())),
                ("b".into(), Ok("x 1\n".into())),
                ("c".into(), Err("no answer after 1.5 s".into())),
            ],
            5_000,
        );
        let errors = st.snapshot(5_000, Duration::from_secs(1)).scrape_errors;
        assert_eq!(
            errors,
            [("m-c".to_string(), "no answer after 1.5 s".to_string())]
        );
        st.record_scrapes(vec![("a".into(), Ok("x 1\n".into()))], 6_000);
        assert!(st
            .snapshot(6_000, Duration::from_secs(1))
            .scrape_errors
            .is_empty());
        let len = |id: &str| st.series.get(id).map_or(0, VecDeque::len);
        assert_eq!((len("a"), len("b"), len("c")), (3, 3, 3));
        let c = st.series.get("c").expect("c keeps its chart");
        assert_eq!(c.back().map(|p| (p.at_ms, p.db_size)), Some((6_000, None)));
    }
}
