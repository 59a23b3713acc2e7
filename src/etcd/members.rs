//! Asking every member about itself, in parallel, each call with its own deadline, so a dead or
//! hung member costs at most one deadline and never slows the rest.

use std::time::{Duration, Instant};

use etcd_client::{AlarmAction, AlarmOptions, AlarmType, GetOptions};

use crate::domain::cluster::{alarm_advice, AlarmView, MemberView, Via};
use crate::etcd::gateway::{says_denied, short_reason, EtcdCluster, EtcdError};

/// Deadline of one per-member call: a hung member costs at most this (plus the hedge for the member
/// list), so the cluster page answers within about a second whatever the members do.
pub const MEMBER_DEADLINE: Duration = Duration::from_millis(800);

/// What one round of questions found.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Members, in member-list order.
    pub members: Vec<MemberView>,
    /// Raised alarms.
    pub alarms: Vec<AlarmView>,
    /// False when the alarm list could not be read (etcd 3.4 answers it through raft, so not
    /// without a leader): `alarms` is then empty but means "unknown", not "none".
    pub alarms_known: bool,
    /// Why the member list could not be read, if it could not.
    pub error: Option<String>,
    /// How long the round took.
    pub took: Duration,
}

struct RawMember {
    id: u64,
    name: String,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
    learner: bool,
}

impl RawMember {
    /// The member as listed, nothing heard from it yet.
    fn unheard(&self) -> MemberView {
        MemberView::unheard(
            format!("{:x}", self.id),
            self.name.clone(),
            self.peer_urls.clone(),
            self.client_urls.clone(),
            self.learner,
            self.name.is_empty() && self.client_urls.is_empty(),
        )
    }
}

/// What one client URL said about the member behind it.
struct Probe {
    /// The status call, and how long it took.
    status: Result<(etcd_client::StatusResponse, Duration), String>,
    /// The linearizable read: the member that served it, when its answer says (a permission
    /// error does not).
    health: Result<Option<u64>, String>,
}

impl Probe {
    /// The member that answered the status call.
    fn member(&self) -> Option<u64> {
        let (s, _) = self.status.as_ref().ok()?;
        s.header().map(|h| h.member_id()).filter(|id| *id != 0)
    }

    /// Fills `view` in (for member `id`) from what was said; returns whom the member sees as
    /// leader. An answer from another member (an address several members share, a load
    /// balancer) says nothing about this one and is not used.
    fn apply(self, view: &mut MemberView, id: u64, url: &str) -> Option<u64> {
        if let Some(other) = self.member().filter(|other| *other != id) {
            view.errors.push(format!(
                "{url} answered as member {other:x}, not as this one (an address several members share?)"
            ));
            return None;
        }
        let mut leader_seen = None;
        match self.status {
            Ok((s, took)) => {
                view.reachable = true;
                view.latency_ms = Some(took.as_secs_f64() * 1000.0);
                view.version = Some(s.version().to_string());
                view.db_size = Some(s.db_size());
                view.db_size_in_use = Some(s.raft_used_db_size()).filter(|n| *n > 0);
                view.quota = Some(s.db_size_quota()).filter(|q| *q > 0);
                view.raft_term = Some(s.raft_term());
                view.raft_index = Some(s.raft_index());
                view.raft_applied_index = Some(s.raft_applied_index());
                view.errors.extend(s.errors().iter().cloned());
                leader_seen = Some(s.leader());
            }
            Err(e) => view.errors.push(e),
        }
        match self.health {
            Ok(Some(other)) if other != id => view.errors.push(format!(
                "linearizable read: {url} answered as member {other:x}, not as this one"
            )),
            Ok(_) => {
                view.serving = true;
                view.healthy = view.reachable;
            }
            // A learner serves no linearizable read, by design: answering as one is its health
            // (how far behind it is, the lag says).
            Err(e) if view.learner && e.contains("not supported for learner") => {
                view.healthy = view.reachable;
            }
            Err(e) => view.errors.push(e),
        }
        leader_seen
    }
}

fn alarm_name(t: AlarmType) -> &'static str {
    match t {
        AlarmType::Nospace => "NOSPACE",
        AlarmType::Corrupt => "CORRUPT",
        AlarmType::None => "NONE",
    }
}

impl EtcdCluster {
    async fn member_list(&self) -> Result<Vec<RawMember>, EtcdError> {
        let mut reason = String::from("no member tried");
        let found = self
            .race(
                &|mut c: etcd_client::Client, _| async move {
                    let r = c.member_list().await?;
                    let rev = r.header().map_or(0, |h| h.revision());
                    let list = r
                        .members()
                        .iter()
                        .map(|m| RawMember {
                            id: m.id(),
                            name: m.name().to_string(),
                            peer_urls: m.peer_urls().to_vec(),
                            client_urls: m.client_urls().to_vec(),
                            learner: m.is_learner(),
                        })
                        .collect::<Vec<_>>();
                    Ok((list, rev))
                },
                true,
                None,
                MEMBER_DEADLINE,
                Duration::from_millis(150),
                &mut reason,
            )
            .await?;
        found.map(|(l, _)| l).ok_or_else(|| EtcdError::Unavailable {
            cluster: self.name().to_string(),
            waited_ms: MEMBER_DEADLINE.as_millis(),
            detail: reason,
        })
    }

    async fn alarm_list(&self) -> Result<Vec<(u64, &'static str)>, String> {
        let mut reason = String::from("no member tried");
        let found = self
            .race(
                &|mut c: etcd_client::Client, _| async move {
                    let r = c.alarm(AlarmAction::Get, AlarmType::None, None).await?;
                    let list = r
                        .alarms()
                        .iter()
                        .map(|a| (a.member_id(), alarm_name(a.alarm())))
                        .filter(|(_, n)| *n != "NONE")
                        .collect::<Vec<_>>();
                    Ok((list, 0))
                },
                true,
                None,
                MEMBER_DEADLINE,
                Duration::from_millis(250),
                &mut reason,
            )
            .await
            .map_err(|e| e.to_string())?;
        found.map(|(l, _)| l).ok_or(reason)
    }

    /// Asks the member list, then every member (status and a linearizable read on that member)
    /// and the alarm list, all in parallel with per-call deadlines.
    pub async fn observe(&self) -> Observation {
        let started = Instant::now();
        // The alarm list runs alongside the member list and the probes, so a cluster without a
        // leader (where it cannot answer) costs one deadline in total, not two.
        let alarms_task = self.alarm_list();
        let members_task = async {
            let raw = self.member_list().await?;
            let extra = self.unadvertised_endpoints(&raw);
            let (mut probed, answers) = tokio::join!(
                futures::future::join_all(raw.iter().map(|m| self.probe(m))),
                futures::future::join_all(extra.iter().map(|e| self.probe_url(e)))
            );
            Self::reach_through_endpoints(&raw, &mut probed, extra, answers);
            Ok::<_, EtcdError>((raw, probed))
        };
        let (listed, alarms) = tokio::join!(members_task, alarms_task);
        let (mut raw, probed) = match listed {
            Ok(l) => l,
            Err(e) => {
                return Observation {
                    members: Vec::new(),
                    alarms: Vec::new(),
                    alarms_known: false,
                    error: Some(e.to_string()),
                    took: started.elapsed(),
                }
            }
        };
        let alarms_known = alarms.is_ok();
        let alarms = alarms.unwrap_or_default();
        let mut both: Vec<(RawMember, (MemberView, Option<u64>))> =
            raw.drain(..).zip(probed).collect();
        both.sort_by(|a, b| a.0.name.cmp(&b.0.name).then(a.0.id.cmp(&b.0.id)));
        let (raw, probed): (Vec<RawMember>, Vec<(MemberView, Option<u64>)>) =
            both.into_iter().unzip();
        // The leader is the one most members name.
        let mut votes: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        for leader in probed.iter().filter_map(|(_, l)| *l).filter(|l| *l != 0) {
            *votes.entry(leader).or_default() += 1;
        }
        // A leader named by a member that served a linearizable read leads, whether or not
        // etcdboard reaches it: that read was confirmed by it.
        let named_by_serving: Vec<u64> = probed
            .iter()
            .filter(|(m, _)| m.serving)
            .filter_map(|(_, l)| *l)
            .collect();
        let leader = votes
            .into_iter()
            .max_by_key(|(id, n)| (*n, *id))
            .map(|(id, _)| id);
        let mut members: Vec<MemberView> = probed.into_iter().map(|(m, _)| m).collect();
        let leader_index = raw
            .iter()
            .zip(&members)
            .find(|(r, _)| Some(r.id) == leader)
            .and_then(|(_, m)| m.raft_index);
        for (m, r) in members.iter_mut().zip(&raw) {
            m.leader = Some(r.id) == leader && (m.reachable || named_by_serving.contains(&r.id));
            if let (Some(li), Some(mi)) = (leader_index, m.raft_index) {
                m.lag = Some(li.saturating_sub(mi));
            }
            if alarms.iter().any(|(id, _)| *id == r.id) {
                m.healthy = false;
                m.errors.push("alarm raised".into());
            }
        }
        let name_of = |id: u64| {
            raw.iter()
                .find(|r| r.id == id)
                .map(|r| {
                    if r.name.is_empty() {
                        format!("{id:x}")
                    } else {
                        r.name.clone()
                    }
                })
                .unwrap_or_else(|| format!("{id:x}"))
        };
        let alarms = alarms
            .into_iter()
            .map(|(id, a)| AlarmView {
                member_id: format!("{id:x}"),
                member: name_of(id),
                alarm: a.to_string(),
                advice: alarm_advice(a),
            })
            .collect();
        Observation {
            members,
            alarms,
            alarms_known,
            error: None,
            took: started.elapsed(),
        }
    }

    /// Status and health of one member through its own client URL, and whom it sees as leader.
    async fn probe(&self, m: &RawMember) -> (MemberView, Option<u64>) {
        let mut view = m.unheard();
        let Some(url) = m.client_urls.first() else {
            if !view.unstarted {
                view.errors.push("no client URL".into());
            }
            return (view, None);
        };
        let leader = self.probe_url(url).await.apply(&mut view, m.id, url);
        (view, leader)
    }

    /// Asks whoever answers at `url` for its status, and for a linearizable read, in parallel,
    /// each within [`MEMBER_DEADLINE`].
    async fn probe_url(&self, url: &str) -> Probe {
        let deadline = MEMBER_DEADLINE;
        let status = async {
            let started = Instant::now();
            let mut c = self.url_client(url, false).await?;
            let r = tokio::time::timeout(deadline, c.status())
                .await
                .map_err(|_| format!("no answer after {:.1} s", deadline.as_secs_f64()))?
                .map_err(|e| short_reason(&e))?;
            Ok::<_, String>((r, started.elapsed()))
        };
        let health = async {
            let mut c = self.url_client(url, true).await?;
            let opts = GetOptions::new().with_keys_only().with_limit(1);
            match tokio::time::timeout(deadline, c.get("health", Some(opts))).await {
                Err(_) => Err(format!(
                    "linearizable read: no answer after {:.1} s",
                    deadline.as_secs_f64()
                )),
                Ok(Err(e)) => {
                    let reason = short_reason(&e);
                    // As etcdctl: a permission error still proves the member serves reads.
                    if says_denied(&reason) {
                        Ok(None)
                    } else {
                        Err(format!("linearizable read: {reason}"))
                    }
                }
                Ok(Ok(r)) => Ok(r.header().map(|h| h.member_id()).filter(|id| *id != 0)),
            }
        };
        let late = deadline + Duration::from_millis(100);
        let (status, health) = tokio::join!(
            tokio::time::timeout(late, status),
            tokio::time::timeout(late, health)
        );
        Probe {
            status: status.unwrap_or_else(|_| {
                Err(format!("no answer after {:.1} s", deadline.as_secs_f64()))
            }),
            health: health.unwrap_or_else(|_| {
                Err(format!(
                    "linearizable read: no answer after {:.1} s",
                    deadline.as_secs_f64()
                ))
            }),
        }
    }

    /// Configured endpoints that no member advertises as its client URL (a port-forward, a load
    /// balancer, an address outside the pod network): the members may be reachable only there.
    fn unadvertised_endpoints(&self, listed: &[RawMember]) -> Vec<String> {
        let norm = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
        let advertised: std::collections::HashSet<String> = listed
            .iter()
            .flat_map(|m| m.client_urls.iter().map(|u| norm(u)))
            .collect();
        self.endpoints()
            .into_iter()
            .filter(|e| !advertised.contains(&norm(e)))
            .collect()
    }

    /// Members not reached at their advertised client URL take the answer of a configured
    /// endpoint that answered as them. When no member answered at its advertised URL while the
    /// cluster answers through configured endpoints, the advertised URLs do not work from here,
    /// and the members still unreached are unseen (state unknown), not down.
    fn reach_through_endpoints(
        listed: &[RawMember],
        probed: &mut [(MemberView, Option<u64>)],
        endpoints: Vec<String>,
        answers: Vec<Probe>,
    ) {
        let any_endpoints = !endpoints.is_empty();
        for (endpoint, answer) in endpoints.into_iter().zip(answers) {
            let Some(id) = answer.member() else { continue };
            let Some(i) = listed.iter().position(|m| m.id == id) else {
                continue;
            };
            let (view, leader) = &mut probed[i];
            if view.reachable {
                continue;
            }
            let advertised = if view.errors.is_empty() {
                "no client URL".to_string()
            } else {
                view.errors.join("; ")
            };
            let mut fresh = listed[i].unheard();
            *leader = answer.apply(&mut fresh, id, &endpoint);
            fresh.via = Some(Via {
                endpoint,
                advertised,
            });
            *view = fresh;
        }
        let advertised_work = probed.iter().any(|(v, _)| v.reachable && v.via.is_none());
        if any_endpoints && !advertised_work {
            for (view, _) in probed.iter_mut() {
                view.unseen = !view.reachable && !view.unstarted;
            }
        }
    }

    /// Disarms every alarm (after the cause was fixed); returns how many were cleared.
    pub async fn disarm_alarms(&self) -> Result<usize, EtcdError> {
        let raised = self
            .alarm_list()
            .await
            .map_err(|detail| EtcdError::Unavailable {
                cluster: self.name().to_string(),
                waited_ms: MEMBER_DEADLINE.as_millis(),
                detail,
            })?;
        let n = raised.len();
        for (member, alarm) in raised {
            let alarm_type = if alarm == "NOSPACE" {
                AlarmType::Nospace
            } else {
                AlarmType::Corrupt
            };
            self.write(|mut c, _| async move {
                let mut o = AlarmOptions::new();
                o.with_member(member);
                c.alarm(AlarmAction::Deactivate, alarm_type, Some(o))
                    .await?;
                Ok(((), 0))
            })
            .await?;
        }
        Ok(n)
    }
}
