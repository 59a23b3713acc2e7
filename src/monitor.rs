//! Keeps watch over each configured cluster: observes its members every few seconds (and on demand
//! when a page asks), derives the event timeline from successive observations, and scrapes each
//! member's `/metrics` into a bounded in-memory window for the charts. Nothing here can slow a
//! page: every call has a deadline and pages read the latest snapshot or a fresh bounded round.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::cluster::{diff_events, quorum, AlarmView, ClusterEvent, MemberView, Quorum};
use crate::domain::metrics::{parse, point, Point, Scrape};
use crate::etcd::members::Observation;
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
}

#[derive(Default)]
struct State {
    last: Option<(Observation, u64, bool)>,
    events: VecDeque<ClusterEvent>,
    leader_changes: VecDeque<u64>,
    scrapes: HashMap<String, Scrape>,
    series: HashMap<String, VecDeque<Point>>,
    learner_behind: HashMap<String, u32>,
}

/// The watcher of one cluster.
pub struct Monitor {
    cluster: Arc<EtcdCluster>,
    scrape_every: Duration,
    state: Mutex<State>,
    http: reqwest::Client,
}

impl Monitor {
    /// A monitor for `cluster` (not started) scraping metrics every `scrape_every`.
    pub fn new(cluster: Arc<EtcdCluster>, scrape_every: Duration) -> Arc<Monitor> {
        Arc::new(Monitor {
            cluster,
            scrape_every,
            state: Mutex::new(State::default()),
            http: reqwest::Client::builder()
                .timeout(SCRAPE_DEADLINE)
                .connect_timeout(Duration::from_millis(800))
                .build()
                .unwrap_or_default(),
        })
    }

    /// A monitor for `cluster` that carries on from `previous` (its timeline, last observation
    /// and chart points), for a discovered cluster whose endpoints changed: the members are the
    /// same etcd cluster, so its history continues and a replaced member shows as such.
    pub fn succeed(cluster: Arc<EtcdCluster>, previous: &Monitor) -> Arc<Monitor> {
        let next = Monitor::new(cluster, previous.scrape_every);
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
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let Some(m) = weak.upgrade() else { return };
                        m.observe_now().await;
                    }
                    _ = scrape_tick.tick() => {
                        let Some(m) = weak.upgrade() else { return };
                        m.scrape().await;
                    }
                }
            }
        });
    }

    /// Observes the members now (bounded by the per-member deadline) and records what changed.
    pub async fn observe_now(&self) -> Snapshot {
        let mut obs = self.cluster.observe().await;
        let at = now_ms();
        if let Ok(mut st) = self.state.lock() {
            // An alarm list that could not be read keeps the last known alarms: an alarm never
            // "clears" just because quorum was lost.
            if !obs.alarms_known {
                if let Some((prev, _, _)) = &st.last {
                    obs.alarms = prev.alarms.clone();
                }
            }
            let lagging = self.lagging_learners(&mut st, &obs.members);
            let q = quorum(&obs.members, 0, &lagging).has_quorum;
            if obs.error.is_none() {
                if let Some((prev, _, prev_q)) = &st.last {
                    if prev.error.is_none() {
                        let events = diff_events(
                            &prev.members,
                            &prev.alarms,
                            *prev_q,
                            &obs.members,
                            &obs.alarms,
                            q,
                            at,
                        );
                        for e in events {
                            if e.kind == "leader-changed" {
                                st.leader_changes.push_back(at);
                            }
                            st.events.push_front(e);
                        }
                        st.events.truncate(EVENTS_KEPT);
                    }
                }
            }
            st.last = Some((obs, at, q));
        }
        self.snapshot()
    }

    fn lagging_learners(&self, st: &mut State, members: &[MemberView]) -> Vec<String> {
        let mut out = Vec::new();
        for m in members.iter().filter(|m| m.learner) {
            let behind = m.lag.is_none_or(|l| l > LEARNER_LAG);
            let n = st.learner_behind.entry(m.id.clone()).or_default();
            *n = if behind { *n + 1 } else { 0 };
            if *n >= LEARNER_OBSERVATIONS {
                out.push(if m.name.is_empty() {
                    m.id.clone()
                } else {
                    m.name.clone()
                });
            }
        }
        out
    }

    /// The latest snapshot (members, quorum, timeline, charts) without asking etcd.
    pub fn snapshot(&self) -> Snapshot {
        let Ok(mut st) = self.state.lock() else {
            return Snapshot::empty("monitor state unavailable");
        };
        let horizon = now_ms().saturating_sub(15 * 60 * 1000);
        while st.leader_changes.front().is_some_and(|t| *t < horizon) {
            st.leader_changes.pop_front();
        }
        let changes = st.leader_changes.len();
        let lagging: Vec<String> = st
            .learner_behind
            .iter()
            .filter(|(_, n)| **n >= LEARNER_OBSERVATIONS)
            .map(|(id, _)| id.clone())
            .collect();
        let Some((obs, at, _)) = &st.last else {
            return Snapshot::empty("not observed yet");
        };
        let names: HashMap<&str, &str> = obs
            .members
            .iter()
            .map(|m| (m.id.as_str(), m.name.as_str()))
            .collect();
        let mut series: Vec<(String, String, Vec<Point>)> = st
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
        let mut members = obs.members.clone();
        for m in members.iter_mut().filter(|m| m.quota.is_none()) {
            m.quota = st
                .scrapes
                .get(&m.id)
                .and_then(|s| s.values.get("etcd_server_quota_backend_bytes"))
                .map(|q| *q as i64);
        }
        Snapshot {
            quorum: quorum(&obs.members, changes, &lagging),
            members,
            alarms: obs.alarms.clone(),
            error: obs.error.clone(),
            observed_ms: *at,
            took_ms: obs.took.as_millis() as u64,
            events: st.events.iter().cloned().collect(),
            series,
        }
    }

    /// Alarms of the latest observation (for the banner on every page of the cluster).
    pub fn alarms(&self) -> Vec<AlarmView> {
        self.state
            .lock()
            .ok()
            .and_then(|st| st.last.as_ref().map(|(o, _, _)| o.alarms.clone()))
            .unwrap_or_default()
    }

    /// Scrapes `/metrics` of every reachable member (in parallel, each with a deadline).
    pub async fn scrape(&self) {
        let targets: Vec<(String, String)> = match self.state.lock() {
            Ok(st) => st
                .last
                .as_ref()
                .map(|(o, _, _)| {
                    o.members
                        .iter()
                        .filter(|m| m.reachable)
                        .filter_map(|m| {
                            m.client_urls.first().map(|u| {
                                (m.id.clone(), format!("{}/metrics", u.trim_end_matches('/')))
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => return,
        };
        let fetches = targets.into_iter().map(|(id, url)| {
            let http = self.http.clone();
            async move {
                let text = async {
                    http.get(&url)
                        .send()
                        .await?
                        .error_for_status()?
                        .text()
                        .await
                };
                (
                    id,
                    tokio::time::timeout(SCRAPE_DEADLINE, text)
                        .await
                        .ok()
                        .and_then(Result::ok),
                )
            }
        });
        let results = futures::future::join_all(fetches).await;
        let at = now_ms();
        if let Ok(mut st) = self.state.lock() {
            for (id, text) in results {
                let Some(text) = text else { continue };
                let scrape = parse(&text);
                let previous = st.scrapes.insert(id.clone(), scrape.clone());
                if let Some(prev) = previous {
                    let series = st.series.entry(id).or_default();
                    series.push_back(point(&prev, &scrape, at));
                    while series.len() > POINTS_KEPT {
                        series.pop_front();
                    }
                }
            }
        }
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
        }
    }
}
