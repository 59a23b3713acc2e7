//! Where each etcd member runs and what one node or zone failure would cost: the member ↔ pod join
//! and the spread/risk analysis, as pure functions over plain data (the Kubernetes client fills it).

use serde::Serialize;

use crate::domain::cluster::MemberView;

/// A pod as far as the topology needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Pod IP.
    pub ip: Option<String>,
    /// Phase (Running, Pending, …).
    pub phase: String,
    /// All containers ready.
    pub ready: bool,
    /// Restarts summed over containers.
    pub restarts: u32,
    /// Reason of the last restart (e.g. OOMKilled), when any.
    pub last_restart_reason: Option<String>,
    /// Creation time, unix seconds.
    pub created_unix: Option<i64>,
    /// Node it is scheduled on.
    pub node: Option<String>,
    /// Runs with the host network (kubeadm static pods).
    pub host_network: bool,
    /// Has a required pod anti-affinity on `kubernetes.io/hostname` or a hostname topology spread
    /// constraint with `DoNotSchedule`.
    pub spread_by_host: bool,
    /// Has any anti-affinity or topology spread on the zone label.
    pub spread_by_zone: bool,
    /// Claim names of its persistent volumes.
    pub claims: Vec<String>,
    /// Uses an emptyDir for data (data lost with the pod).
    pub empty_dir: bool,
    /// Recent Kubernetes Events of the pod (newest first, at most [`EVENTS_PER_POD`]).
    pub events: Vec<KubeEvent>,
}

/// A node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// Name.
    pub name: String,
    /// The Ready condition is True.
    pub ready: bool,
    /// `topology.kubernetes.io/zone` (or the legacy `failure-domain.beta.kubernetes.io/zone`).
    pub zone: Option<String>,
}

/// A persistent volume claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PvcInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Storage class.
    pub storage_class: Option<String>,
    /// Capacity (e.g. "1Gi").
    pub capacity: Option<String>,
    /// Phase (Bound, Pending, Lost).
    pub phase: String,
}

/// A member joined with what runs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    /// The etcd member.
    pub member: MemberView,
    /// How it was matched (`name`, `peer-host`, `pod-ip`), when matched.
    pub matched_by: Option<&'static str>,
    /// Its pod.
    pub pod: Option<PodInfo>,
    /// Its node.
    pub node: Option<NodeInfo>,
    /// Its volume(s).
    pub volumes: Vec<PvcInfo>,
}

/// The first DNS label of a URL's host: `http://etcd-app-x.etcd-app.ns.svc:2380` → `etcd-app-x`.
fn host_label(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', ':']).next()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.split('.').next().filter(|h| !h.is_empty())
}

fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next();
    }
    rest.split(['/', ':']).next().filter(|h| !h.is_empty())
}

/// The namespace a peer URL names, for in-cluster service names
/// (`http://etcd-0.etcd-headless.prod.svc.cluster.local:2380` → `prod`).
fn url_namespace(url: &str) -> Option<&str> {
    let labels: Vec<&str> = url_host(url)?.split('.').collect();
    match labels.as_slice() {
        [_, _, ns, "svc", ..] => Some(ns),
        _ => None,
    }
}

/// How strongly `pods` in namespace `ns` match `members`: `(strong, by_name)`, where strong
/// evidence is a pod IP that is a peer URL host (3: IPs are unique in a cluster) or a peer URL
/// that names the namespace (2), and `by_name` counts members with a pod of their name (or
/// peer host) there, which two releases of one chart share.
fn namespace_score(members: &[MemberView], pods: &[PodInfo], ns: &str) -> (usize, usize) {
    let in_ns = || pods.iter().filter(|p| p.namespace == ns);
    members.iter().fold((0, 0), |(strong, names), m| {
        let by_ip = m
            .peer_urls
            .iter()
            .any(|u| url_host(u).is_some_and(|h| in_ns().any(|p| p.ip.as_deref() == Some(h))));
        let names_ns = m.peer_urls.iter().any(|u| url_namespace(u) == Some(ns));
        let by_name = in_ns().any(|p| {
            (!m.name.is_empty() && p.name == m.name)
                || m.peer_urls
                    .iter()
                    .any(|u| host_label(u) == Some(p.name.as_str()))
        });
        (
            strong + 3 * usize::from(by_ip) + 2 * usize::from(names_ns),
            names + usize::from(by_name),
        )
    })
}

/// Which namespace's pods run `members` (an etcd cluster's pods share one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespacePick {
    /// The namespace chosen, when any pod matches.
    pub chosen: Option<String>,
    /// Other namespaces with pods named like the members, when only names decided (two releases
    /// of one chart both have pods `etcd-0`…): the page says the choice is uncertain.
    pub uncertain_with: Vec<String>,
}

/// Picks the namespace of `members`' pods. Strong evidence (pod IPs, namespaces in peer URLs)
/// wins; on names alone, `previous` (the namespace chosen before) is kept while any of its pods
/// still matches, so one pod deleted does not move the whole cluster to another release's pods;
/// otherwise the namespace with the most name matches.
pub fn pick_namespace(
    members: &[MemberView],
    pods: &[PodInfo],
    previous: Option<&str>,
) -> NamespacePick {
    let mut namespaces: Vec<&str> = pods.iter().map(|p| p.namespace.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let scored: Vec<(&str, (usize, usize))> = namespaces
        .iter()
        .map(|ns| (*ns, namespace_score(members, pods, ns)))
        .filter(|(_, (strong, names))| strong + names > 0)
        .collect();
    let strongest = scored
        .iter()
        .map(|(_, (strong, _))| *strong)
        .max()
        .unwrap_or(0);
    let chosen = if strongest > 0 {
        scored
            .iter()
            .filter(|(_, (strong, _))| *strong == strongest)
            .max_by_key(|(ns, (_, names))| (*names, std::cmp::Reverse(*ns)))
            .map(|(ns, _)| ns.to_string())
    } else if let Some(prev) = previous.filter(|p| scored.iter().any(|(ns, _)| ns == p)) {
        Some(prev.to_string())
    } else {
        scored
            .iter()
            .max_by_key(|(ns, (_, names))| (*names, std::cmp::Reverse(*ns)))
            .map(|(ns, _)| ns.to_string())
    };
    // Names alone decided, and another namespace has same-named pods: say so.
    let decisive = scored.iter().filter(|(_, (strong, _))| *strong > 0).count() == 1;
    let uncertain_with = if decisive {
        Vec::new()
    } else {
        scored
            .iter()
            .map(|(ns, _)| ns.to_string())
            .filter(|ns| Some(ns) != chosen.as_ref())
            .collect()
    };
    NamespacePick {
        chosen,
        uncertain_with,
    }
}

/// Matches members to pods in `namespace` (see [`pick_namespace`]): member name = pod name;
/// else the first DNS label of the peer URL host = pod name; else the peer URL host = pod IP
/// (hostNetwork). Returns placements (in member order) and that namespace's pods that are no
/// member.
pub fn join_in(
    members: &[MemberView],
    pods: &[PodInfo],
    namespace: Option<&str>,
    nodes: &[NodeInfo],
    pvcs: &[PvcInfo],
) -> (Vec<Placement>, Vec<PodInfo>) {
    let pods: Vec<&PodInfo> = match namespace {
        Some(ns) => pods.iter().filter(|p| p.namespace == ns).collect(),
        None => Vec::new(),
    };
    let mut used = vec![false; pods.len()];
    let mut out = Vec::new();
    for m in members {
        let by_name = (!m.name.is_empty())
            .then(|| pods.iter().position(|p| p.name == m.name))
            .flatten()
            .map(|i| (i, "name"));
        let by_peer_host = || {
            m.peer_urls.iter().find_map(|u| {
                let label = host_label(u)?;
                pods.iter()
                    .position(|p| p.name == label)
                    .map(|i| (i, "peer-host"))
            })
        };
        let by_ip = || {
            m.peer_urls.iter().find_map(|u| {
                let host = url_host(u)?;
                pods.iter()
                    .position(|p| p.ip.as_deref() == Some(host))
                    .map(|i| (i, "pod-ip"))
            })
        };
        let found = by_name
            .or_else(by_peer_host)
            .or_else(by_ip)
            .filter(|(i, _)| !used[*i]);
        let (pod, matched_by) = match found {
            Some((i, how)) => {
                used[i] = true;
                (Some(pods[i].clone()), Some(how))
            }
            None => (None, None),
        };
        let node = pod
            .as_ref()
            .and_then(|p| p.node.as_ref())
            .and_then(|n| nodes.iter().find(|x| &x.name == n).cloned());
        let volumes = pod
            .as_ref()
            .map(|p| {
                p.claims
                    .iter()
                    .filter_map(|c| {
                        pvcs.iter()
                            .find(|v| &v.name == c && v.namespace == p.namespace)
                            .cloned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Placement {
            member: m.clone(),
            matched_by,
            pod,
            node,
            volumes,
        });
    }
    let strays = pods
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(p, _)| (*p).clone())
        .collect();
    (out, strays)
}

/// What losing one failure domain (a node or a zone) would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainRisk {
    /// `node` or `zone`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Voting members running there.
    pub members: Vec<String>,
    /// Voting members left if it fails.
    pub left: usize,
    /// Quorum kept if it fails.
    pub quorum_kept: bool,
    /// Plain words: "if node-1 fails, 2 members are lost → 1/3 left, quorum lost".
    pub text: String,
}

/// A spread warning with what to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpreadWarning {
    /// `critical` or `warning`.
    pub level: &'static str,
    /// What is wrong.
    pub text: String,
    /// What to change.
    pub advice: String,
}

/// The spread analysis of a cluster's placements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spread {
    /// Per node.
    pub nodes: Vec<DomainRisk>,
    /// Per zone.
    pub zones: Vec<DomainRisk>,
    /// Warnings, most severe first.
    pub warnings: Vec<SpreadWarning>,
}

/// Advice when the scheduler may put (or has put) two members on one node.
const ANTI_AFFINITY: &str = "Give the etcd pods a required pod anti-affinity on kubernetes.io/hostname (or a topology spread constraint on it with whenUnsatisfiable: DoNotSchedule), so that each member runs on its own node: 5 members on 5 nodes keep quorum through two node failures.";

/// One member of a failure domain: its label, and whether it is up now (answering at all).
type Seat = (String, bool);

/// What losing each domain would cost, counting only members that are up now: a member already
/// down is lost already, so losing another domain may cost quorum although the numbers alone
/// (`size - on that domain`) look safe.
fn risks(
    kind: &'static str,
    groups: Vec<(String, Vec<Seat>)>,
    size: usize,
    up: usize,
) -> Vec<DomainRisk> {
    let majority = size / 2 + 1;
    let down = size.saturating_sub(up);
    groups
        .into_iter()
        .map(|(name, seats)| {
            let lost = seats.iter().filter(|(_, is_up)| *is_up).count();
            let left = up.saturating_sub(lost);
            let quorum_kept = left >= majority;
            let already = match down {
                0 => String::new(),
                n => format!(" ({n} already down)"),
            };
            let text = if up < majority {
                format!("if {kind} {name} fails: quorum is already lost ({up}/{size} members up)")
            } else {
                format!(
                    "if {kind} {name} fails, {lost} member(s) are lost → {left}/{size} left{already}, quorum {}",
                    if quorum_kept { "kept" } else { "LOST" }
                )
            };
            DomainRisk {
                kind,
                text,
                name,
                members: seats.into_iter().map(|(label, _)| label).collect(),
                left,
                quorum_kept,
            }
        })
        .collect()
}

/// Members per node and zone, what each failure would cost now, and warnings. `has_pdb` says
/// whether a PodDisruptionBudget that keeps quorum selects the pods (`true` when unknown). The
/// member count itself (fewer than 3, an even size) is the etcd view's warning, not repeated here.
pub fn spread(placements: &[Placement], has_pdb: bool) -> Spread {
    let voters: Vec<&Placement> = placements.iter().filter(|p| !p.member.learner).collect();
    let size = voters.len();
    let majority = size / 2 + 1;
    // Up is answering at all, as the etcd view counts it: a member that answers but cannot
    // serve (no leader, mid-election) is not down. A member etcdboard cannot reach from where it
    // runs is up when its pod is ready (its readiness probe asks etcd).
    let is_up = |p: &Placement| {
        p.member.reachable
            || p.member.serving
            || (p.member.unseen && p.pod.as_ref().is_some_and(|pod| pod.ready))
    };
    let up = voters.iter().filter(|p| is_up(p)).count();
    let label = |p: &Placement| {
        if p.member.name.is_empty() {
            p.member.id.clone()
        } else {
            p.member.name.clone()
        }
    };
    let mut by_node: Vec<(String, Vec<Seat>)> = Vec::new();
    let mut by_zone: Vec<(String, Vec<Seat>)> = Vec::new();
    for p in &voters {
        let seat = (label(p), is_up(p));
        if let Some(node) = p.pod.as_ref().and_then(|pod| pod.node.clone()) {
            match by_node.iter_mut().find(|(n, _)| *n == node) {
                Some((_, v)) => v.push(seat.clone()),
                None => by_node.push((node, vec![seat.clone()])),
            }
        }
        if let Some(zone) = p.node.as_ref().and_then(|n| n.zone.clone()) {
            match by_zone.iter_mut().find(|(z, _)| *z == zone) {
                Some((_, v)) => v.push(seat),
                None => by_zone.push((zone, vec![seat])),
            }
        }
    }
    by_node.sort();
    by_zone.sort();
    let nodes = risks("node", by_node, size, up);
    let zones = risks("zone", by_zone, size, up);
    let mut warnings = Vec::new();
    // With quorum already lost the etcd view says so; what a further failure costs is moot.
    let has_quorum = size > 0 && up >= majority;
    for n in nodes.iter().filter(|_| has_quorum) {
        let together = n.members.len() >= 2;
        if !n.quorum_kept {
            warnings.push(SpreadWarning {
                level: "critical",
                text: format!(
                    "losing node {} loses quorum: {} would be left of {size}{}",
                    n.name,
                    n.left,
                    if together {
                        format!(" ({} run there)", n.members.join(" and "))
                    } else {
                        format!(" ({} already down)", size - up)
                    }
                ),
                advice: if together {
                    format!("{ANTI_AFFINITY} Then delete one of the pods on {} so that it is scheduled on another node.", n.name)
                } else {
                    format!("Bring the down member(s) back before any maintenance: do not drain or restart node {} until then.", n.name)
                },
            });
        } else if together {
            warnings.push(SpreadWarning {
                level: "warning",
                text: format!(
                    "{} run on node {}: losing it leaves {}/{size} — quorum kept, but the margin shrinks",
                    n.members.join(" and "),
                    n.name,
                    n.left
                ),
                advice: ANTI_AFFINITY.into(),
            });
        }
    }
    for p in voters
        .iter()
        .filter(|p| p.node.as_ref().is_some_and(|n| !n.ready))
    {
        if let Some(node) = &p.node {
            warnings.push(SpreadWarning {
                level: "warning",
                text: format!("node {} is NotReady: member {} runs there", node.name, label(p)),
                advice: format!("Check the node (kubectl describe node {}); if it does not come back, its pods are evicted after the toleration period.", node.name),
            });
        }
    }
    let placed: usize = zones.iter().map(|z| z.members.len()).sum();
    for z in zones.iter().filter(|z| has_quorum && !z.quorum_kept) {
        // A zone of half the members or more is a standing design fault; a smaller zone whose
        // loss costs quorum does so only because members are down already: the urgent case.
        let (level, text, advice) = if z.members.len() * 2 >= size {
            let text = if zones.len() == 1 && placed > 1 {
                format!(
                    "all {placed} placed members are in zone {}: a zone outage loses the cluster",
                    z.name
                )
            } else {
                format!(
                    "losing zone {} loses quorum ({}/{size} left)",
                    z.name, z.left
                )
            };
            ("warning", text, "No zone should hold half of the voting members or more: 3 members over 3 zones, 5 over 3 zones (2/2/1), with a topology spread constraint on topology.kubernetes.io/zone.".to_string())
        } else {
            (
                "critical",
                format!(
                    "losing zone {} loses quorum: {} would be left of {size} ({} already down)",
                    z.name,
                    z.left,
                    size - up
                ),
                format!(
                    "Bring the down member(s) back before any maintenance in zone {}.",
                    z.name
                ),
            )
        };
        warnings.push(SpreadWarning {
            level,
            text,
            advice,
        });
    }
    // kubeadm's static pods run with the host network, pinned to their control-plane nodes:
    // neither anti-affinity nor a PodDisruptionBudget applies to them.
    let pods: Vec<&PodInfo> = voters
        .iter()
        .filter_map(|p| p.pod.as_ref())
        .filter(|p| !p.host_network)
        .collect();
    let unspread: Vec<&str> = pods
        .iter()
        .filter(|p| !p.spread_by_host)
        .map(|p| p.name.as_str())
        .collect();
    if !unspread.is_empty() {
        let which = if unspread.len() == pods.len() {
            "the pods have".to_string()
        } else {
            format!("pods {} have", unspread.join(", "))
        };
        warnings.push(SpreadWarning {
            level: "warning",
            text: format!("{which} no required anti-affinity or topology spread on kubernetes.io/hostname: the scheduler may put several members on one node"),
            advice: ANTI_AFFINITY.into(),
        });
    }
    if !pods.is_empty() && !has_pdb {
        warnings.push(SpreadWarning {
            level: "warning",
            text: "no PodDisruptionBudget that keeps quorum covers the members: a node drain may evict several at once".into(),
            advice: format!(
                "Add a PodDisruptionBudget selecting the etcd pods with maxUnavailable: 1 (or minAvailable: {majority} for {size} members)."
            ),
        });
    }
    for p in &pods {
        if p.empty_dir {
            warnings.push(SpreadWarning {
                level: "warning",
                text: format!(
                    "pod {} keeps its data in an emptyDir: data is lost with the pod",
                    p.name
                ),
                advice: "Use a PersistentVolumeClaim per member so a restarted pod keeps its data."
                    .into(),
            });
        }
    }
    warnings.sort_by_key(|w| if w.level == "critical" { 0 } else { 1 });
    Spread {
        nodes,
        zones,
        warnings,
    }
}

/// How many recent Kubernetes Events are shown per pod.
pub const EVENTS_PER_POD: usize = 5;

/// A Kubernetes Event (core/v1) about a pod, as far as the page needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubeEvent {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short machine-readable reason (`Scheduled`, `BackOff`, `FailedMount`, …).
    pub reason: String,
    /// What happened, in the reporting component's words.
    pub message: String,
    /// How often it happened (Kubernetes folds repeats into one Event).
    pub count: u32,
    /// When it last happened, unix seconds.
    pub last_seen_unix: Option<i64>,
    /// How long ago it last happened ("12s", "3m", "2h", "4d"; "?" when unknown).
    pub age: String,
}

/// A short age like `kubectl get` prints: `45s`, `3m`, `2h`, `4d`.
pub fn age_text(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The newest `limit` events of pod `namespace/name` among `events` (`(namespace, pod, event)`),
/// newest first.
pub fn events_of_pod(
    events: &[(String, String, KubeEvent)],
    namespace: &str,
    name: &str,
    limit: usize,
) -> Vec<KubeEvent> {
    let mut out: Vec<KubeEvent> = events
        .iter()
        .filter(|(ns, pod, _)| ns == namespace && pod == name)
        .map(|(_, _, e)| e.clone())
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.last_seen_unix));
    out.truncate(limit);
    out
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    /// `key=value`, `key==value`.
    Equals(String, String),
    /// `key!=value`.
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)`.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
}

/// A Kubernetes label selector in its text form (`app=etcd,release=x`, `tier in (a,b)`, `!canary`),
/// checked with the API server's rules for keys and values, so a typo fails at start rather than
/// silently matching nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    text: String,
    requirements: Vec<Requirement>,
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn check_key(key: &str) -> Result<String, String> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    };
    if ok {
        Ok(key.to_string())
    } else {
        Err(format!(
            "`{key}` is not a label key (name of up to 63 letters, digits, `-_.`, optionally prefixed by a DNS name and `/`)"
        ))
    }
}

fn check_value(value: &str) -> Result<String, String> {
    if value.is_empty() || is_label_name(value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{value}` is not a label value (up to 63 letters, digits, `-_.`, starting and ending alphanumeric)"
        ))
    }
}

/// Splits at commas that are not inside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced `)`".into());
                }
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced `(`".into());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("`{}`: a set is written `(a,b)`", rest.trim()))?;
    let values = inner
        .split(',')
        .map(|v| check_value(v.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if values.iter().all(String::is_empty) {
        return Err("a set needs at least one value".into());
    }
    Ok(values)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let p = part.trim();
    if p.is_empty() {
        return Err("empty requirement (stray comma?)".into());
    }
    if let Some((k, v)) = p.split_once("!=") {
        return Ok(Requirement::NotEquals(
            check_key(k.trim())?,
            check_value(v.trim())?,
        ));
    }
    if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
        return Ok(Requirement::Equals(
            check_key(k.trim())?,
            check_value(v.trim())?,
        ));
    }
    if let Some(k) = p.strip_prefix('!') {
        return Ok(Requirement::NotExists(check_key(k.trim())?));
    }
    let mut words = p.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    match words.next().map(str::trim_start) {
        None => Ok(Requirement::Exists(check_key(key)?)),
        Some(rest) => {
            if let Some(set) = rest.strip_prefix("notin") {
                Ok(Requirement::NotIn(check_key(key)?, parse_set(set)?))
            } else if let Some(set) = rest.strip_prefix("in") {
                Ok(Requirement::In(check_key(key)?, parse_set(set)?))
            } else {
                Err(format!(
                    "`{p}`: expected `key=value`, `key!=value`, `key in (…)`, `key notin (…)`, `key` or `!key`"
                ))
            }
        }
    }
}

impl LabelSelector {
    /// Parses the text form; the empty selector selects every pod.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let text = text.trim();
        let requirements = if text.is_empty() {
            Vec::new()
        } else {
            split_top_level(text)?
                .into_iter()
                .map(parse_requirement)
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(LabelSelector {
            text: text.to_string(),
            requirements,
        })
    }

    /// The selector as given (trimmed), which is what the API server is sent.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// Where a configured cluster's pods are: exactly the pods in `namespace` matching `selector`.
/// When configured, it always wins over discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeTarget {
    /// The namespace.
    pub namespace: String,
    /// The label selector.
    pub selector: LabelSelector,
}

impl KubeTarget {
    /// Checks both parts; the error says which (`namespace` or `selector`) and why.
    pub fn parse(namespace: &str, selector: &str) -> Result<KubeTarget, (&'static str, String)> {
        let ns = namespace.trim();
        let b = ns.as_bytes();
        let ns_ok = !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
        if !ns_ok {
            return Err((
                "namespace",
                format!("`{namespace}` is not a namespace name (lowercase letters, digits and `-`, at most 63)"),
            ));
        }
        let selector = LabelSelector::parse(selector).map_err(|e| ("selector", e))?;
        Ok(KubeTarget {
            namespace: ns.to_string(),
            selector,
        })
    }

    /// How the source is named on the page and in the API.
    pub fn source_name(&self) -> String {
        if self.selector.as_str().is_empty() {
            format!("configured namespace {} (every pod)", self.namespace)
        } else {
            format!(
                "configured selector {} in namespace {}",
                self.selector.as_str(),
                self.namespace
            )
        }
    }
}

/// The etcd operators whose custom resources etcdboard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorKind {
    /// CoreOS etcd-operator, `etcd.database.coreos.com/v1beta2` `EtcdCluster`.
    CoreosEtcdCluster,
    /// The etcd project's operator, `operator.etcd.io/v1alpha1` `EtcdCluster`.
    EtcdIoEtcdCluster,
    /// Gardener etcd-druid, `druid.gardener.cloud/v1alpha1` `Etcd`.
    DruidEtcd,
}

impl OperatorKind {
    /// Every kind, in the order shown.
    pub const ALL: [OperatorKind; 3] = [
        OperatorKind::CoreosEtcdCluster,
        OperatorKind::EtcdIoEtcdCluster,
        OperatorKind::DruidEtcd,
    ];

    /// `(group, version, kind, plural)`.
    pub fn gvk(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            OperatorKind::CoreosEtcdCluster => (
                "etcd.database.coreos.com",
                "v1beta2",
                "EtcdCluster",
                "etcdclusters",
            ),
            OperatorKind::EtcdIoEtcdCluster => (
                "operator.etcd.io",
                "v1alpha1",
                "EtcdCluster",
                "etcdclusters",
            ),
            OperatorKind::DruidEtcd => ("druid.gardener.cloud", "v1alpha1", "Etcd", "etcds"),
        }
    }

    /// The source's name on the page and in the API.
    pub fn source_name(self) -> &'static str {
        match self {
            OperatorKind::CoreosEtcdCluster => {
                "etcd-operator EtcdCluster (etcd.database.coreos.com/v1beta2)"
            }
            OperatorKind::EtcdIoEtcdCluster => {
                "etcd operator EtcdCluster (operator.etcd.io/v1alpha1)"
            }
            OperatorKind::DruidEtcd => "gardener etcd-druid Etcd (druid.gardener.cloud/v1alpha1)",
        }
    }
}

/// A status condition of a custom resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrCondition {
    /// Condition type (`Available`, `Ready`, `AllMembersReady`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown` (druid also has `Progressing`).
    pub status: String,
    /// Machine-readable reason.
    pub reason: Option<String>,
    /// Human-readable details.
    pub message: Option<String>,
}

/// What an operator says about one of its etcd clusters (read from the custom resource's status
/// with the field names each CRD defines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorStatus {
    /// The source (operator and API version).
    pub source: &'static str,
    /// `group/version`.
    pub api_version: String,
    /// Kind.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Phase: `status.phase` (etcd-operator v1beta2); the last operation's state (druid); none
    /// for operator.etcd.io, which reports conditions instead.
    pub phase: Option<String>,
    /// Ready: phase `Running` (v1beta2), condition `Available` (operator.etcd.io), `status.ready`
    /// (druid); `None` when the status does not say yet.
    pub ready: Option<bool>,
    /// Desired members (`spec.size` / `spec.replicas`).
    pub desired: Option<i64>,
    /// Current members (`status.size`, `status.memberCount`, `status.currentReplicas`).
    pub current: Option<i64>,
    /// Ready members (`status.members.ready` count, `status.readyReplicas`).
    pub ready_members: Option<i64>,
    /// Running etcd version, when reported.
    pub version: Option<String>,
    /// Status conditions.
    pub conditions: Vec<CrCondition>,
    /// The last error the operator reported (druid `lastErrors`, v1beta2 `reason`).
    pub last_error: Option<String>,
    /// One line in plain words.
    pub summary: String,
}

fn text_at(v: &serde_json::Value, p: &str) -> Option<String> {
    match v.pointer(p)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int_at(v: &serde_json::Value, p: &str) -> Option<i64> {
    v.pointer(p).and_then(serde_json::Value::as_i64)
}

/// Reads an operator's custom resource (`data` is the whole object as JSON).
pub fn operator_status(
    kind: OperatorKind,
    namespace: &str,
    name: &str,
    data: &serde_json::Value,
) -> OperatorStatus {
    let (group, api_ver, k, _) = kind.gvk();
    let conditions: Vec<CrCondition> = data
        .pointer("/status/conditions")
        .and_then(serde_json::Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| CrCondition {
                    kind: text_at(c, "/type").unwrap_or_default(),
                    status: text_at(c, "/status").unwrap_or_else(|| "Unknown".into()),
                    reason: text_at(c, "/reason"),
                    message: text_at(c, "/message"),
                })
                .collect()
        })
        .unwrap_or_default();
    let condition = |t: &str| {
        conditions
            .iter()
            .find(|c| c.kind == t)
            .map(|c| c.status == "True")
    };
    let (phase, ready, desired, current, ready_members, version, last_error) = match kind {
        OperatorKind::CoreosEtcdCluster => {
            let phase = text_at(data, "/status/phase");
            let ready_list = data
                .pointer("/status/members/ready")
                .and_then(serde_json::Value::as_array)
                .map(|a| a.len() as i64);
            (
                phase.clone(),
                phase.map(|p| p == "Running"),
                int_at(data, "/spec/size"),
                int_at(data, "/status/size"),
                ready_list,
                text_at(data, "/status/currentVersion").or_else(|| text_at(data, "/spec/version")),
                text_at(data, "/status/reason"),
            )
        }
        OperatorKind::EtcdIoEtcdCluster => (
            None,
            condition("Available"),
            int_at(data, "/spec/size"),
            int_at(data, "/status/memberCount").or_else(|| int_at(data, "/status/currentReplicas")),
            int_at(data, "/status/readyReplicas"),
            text_at(data, "/status/currentVersion").or_else(|| text_at(data, "/spec/version")),
            None,
        ),
        OperatorKind::DruidEtcd => (
            text_at(data, "/status/lastOperation/state").map(|s| {
                match text_at(data, "/status/lastOperation/type") {
                    Some(t) => format!("{t} {s}"),
                    None => s,
                }
            }),
            data.pointer("/status/ready")
                .and_then(serde_json::Value::as_bool)
                .or_else(|| condition("Ready")),
            int_at(data, "/spec/replicas"),
            int_at(data, "/status/currentReplicas"),
            int_at(data, "/status/readyReplicas"),
            None,
            data.pointer("/status/lastErrors")
                .and_then(serde_json::Value::as_array)
                .and_then(|e| e.first())
                .and_then(|e| text_at(e, "/description")),
        ),
    };
    let mut parts = vec![match ready {
        Some(true) => "ready".to_string(),
        Some(false) => "NOT ready".to_string(),
        None => "status not reported yet".to_string(),
    }];
    if let Some(p) = &phase {
        parts.push(format!("phase {p}"));
    }
    match (ready_members, current, desired) {
        (r, c, Some(d)) if r.is_some() || c.is_some() => parts.push(format!(
            "{}/{} ready of {d} wanted",
            r.map_or_else(|| "?".into(), |r| r.to_string()),
            c.map_or_else(|| "?".into(), |c| c.to_string())
        )),
        (_, _, Some(d)) => parts.push(format!("{d} wanted")),
        _ => {}
    }
    if let Some(v) = &version {
        parts.push(format!("etcd {v}"));
    }
    let failing: Vec<String> = conditions
        .iter()
        .filter(|c| {
            // Conditions named for trouble are bad when True; the others when not True.
            let trouble = matches!(
                c.kind.as_str(),
                "Degraded" | "Progressing" | "ClusterIDMismatch" | "Failed"
            );
            (c.status == "True") == trouble
        })
        .map(|c| {
            format!(
                "{} {}{}",
                c.kind,
                c.status,
                c.message
                    .as_ref()
                    .or(c.reason.as_ref())
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    if !failing.is_empty() {
        parts.push(failing.join("; "));
    }
    if let Some(e) = &last_error {
        parts.push(format!("last error: {e}"));
    }
    OperatorStatus {
        source: kind.source_name(),
        api_version: format!("{group}/{api_ver}"),
        kind: k,
        namespace: namespace.to_string(),
        name: name.to_string(),
        phase,
        ready,
        desired,
        current,
        ready_members,
        version,
        conditions,
        last_error,
        summary: parts.join(" · "),
    }
}

/// What one discovery source found, for the page and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    /// Its name.
    pub source: String,
    /// `watching`, `not installed` (a CRD that is not there: the normal case), `starting`, or
    /// what went wrong.
    pub state: String,
    /// Pods or custom resources found.
    pub found: usize,
    /// `pods`, `custom resources` or `events`.
    pub what: &'static str,
}

/// What a pod volume is backed by, as far as losing the data on it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeKind {
    /// `emptyDir`: deleted with the pod.
    EmptyDir,
    /// `persistentVolumeClaim`: outlives the pod.
    Claim,
    /// `hostPath`: stays on the node (kubeadm's stacked etcd keeps its data there).
    HostPath,
    /// Anything else (configMap, secret, projected, CSI, …).
    Other,
}

/// The etcd data directory a container's command line or environment names. `--data-dir` (also
/// `-data-dir`, `=`-joined or as the next word, and inside a `sh -c` script, which is how
/// etcd-operator starts etcd) wins over `ETCD_DATA_DIR`, as in etcd itself. `None` unless it is an
/// absolute path: etcd's default, `<name>.etcd` in the working directory, cannot be placed.
pub fn etcd_data_dir(command_line: &[String], env_data_dir: Option<&str>) -> Option<String> {
    let words: Vec<&str> = command_line
        .iter()
        .flat_map(|part| part.split_whitespace())
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
        .collect();
    let from_flag = words.iter().enumerate().find_map(|(i, w)| {
        let flag = w.strip_prefix("--").or_else(|| w.strip_prefix('-'))?;
        match flag.strip_prefix("data-dir") {
            Some("") => words.get(i + 1).map(|v| v.to_string()),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        }
    });
    from_flag
        .or_else(|| env_data_dir.map(str::to_string))
        .filter(|d| d.starts_with('/'))
}

/// Whether `path` is `dir` or below it (whole path segments: `/var/etcd` holds `/var/etcd/data`,
/// not `/var/etcd-2`).
fn path_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    let path = path.trim_end_matches('/');
    path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Whether a pod keeps its etcd data in an emptyDir, i.e. loses it with the pod. `volumes` are the
/// pod's `(name, kind)`, `mounts` the etcd container's `(volume, mount path)`.
///
/// With the data directory known, the volume mounted at it (the deepest mount that holds it)
/// decides. Otherwise only a pod with an emptyDir and neither a PVC nor a hostPath counts: charts
/// mount emptyDirs for scratch space next to the data volume (Bitnami: `/tmp`), and flagging
/// those would be a permanent false alarm on every such cluster.
pub fn keeps_data_in_empty_dir(
    volumes: &[(String, VolumeKind)],
    mounts: &[(String, String)],
    data_dir: Option<&str>,
) -> bool {
    let kind_of = |name: &str| {
        volumes
            .iter()
            .find(|(n, _)| n == name)
            .map_or(VolumeKind::Other, |(_, k)| *k)
    };
    let data_mount = data_dir.and_then(|dir| {
        mounts
            .iter()
            .filter(|(_, path)| path_within(dir, path))
            .max_by_key(|(_, path)| path.trim_end_matches('/').len())
    });
    if let Some((volume, _)) = data_mount {
        return kind_of(volume) == VolumeKind::EmptyDir;
    }
    let has = |kind: VolumeKind| volumes.iter().any(|(_, k)| *k == kind);
    has(VolumeKind::EmptyDir) && !has(VolumeKind::Claim) && !has(VolumeKind::HostPath)
}

/// Longest Kubernetes message quoted in advice: room for a refusal's identity, verb, resource and
/// scope (about 150 characters) without letting a proxy's HTML error page through whole.
pub const KUBE_MESSAGE_CHARS: usize = 400;

/// `text` on one line and at most `max_chars` characters (cut with `…`).
pub fn one_line(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        return flat;
    }
    let mut cut: String = flat.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Advice for a list or watch Kubernetes refused: the API server's whole message, which names the
/// identity and the verb, resource and scope a binding has to grant.
pub fn forbidden_advice(what: &str, server_message: &str) -> String {
    let detail = match one_line(server_message, KUBE_MESSAGE_CHARS) {
        d if d.is_empty() => "access denied".to_string(),
        d => d,
    };
    format!("forbidden: etcdboard may not list {what} ({detail}) — see deploy/base/rbac.yaml")
}

/// What a watch keeps; the order is the order in which the headline names failing watches (the
/// pods matter most: without them nothing is placed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKind {
    /// Not a watch: the probe that asks the API server whether it answers at all (a hung server
    /// keeps every watch's connection open and silent). First, so it is the headline.
    ApiServer,
    /// Pods of a discovery source or of a configured `namespace + selector`.
    Pods,
    /// Nodes.
    Nodes,
    /// PersistentVolumeClaims.
    Pvcs,
    /// Events about pods in one namespace.
    Events,
    /// An operator's custom resources.
    CustomResources,
}

/// How one watch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchHealth {
    /// Has not listed yet.
    Starting,
    /// Listed and watching: its cache is current.
    Watching,
    /// Its resource is not served: a CRD that is not installed, which is normal, not a fault.
    NotInstalled,
    /// Failing; the text says why and what to do.
    Failing(String),
}

impl WatchHealth {
    /// As shown for a source: `starting`, `watching`, `not installed`, or what is wrong.
    pub fn text(&self) -> &str {
        match self {
            WatchHealth::Starting => "starting",
            WatchHealth::Watching => "watching",
            WatchHealth::NotInstalled => "not installed",
            WatchHealth::Failing(why) => why,
        }
    }
}

/// What to log when a watch's health changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchLog {
    /// Nothing: no change worth a line (e.g. a retry that failed the same way).
    Quiet,
    /// It started failing, or fails for another reason now.
    Failing(String),
    /// It works again after failing.
    Recovered,
}

/// The log line a health change deserves: one when a watch starts failing or its reason changes,
/// one when it recovers, none per retry, so a refused watch does not flood the log.
pub fn watch_log(before: &WatchHealth, after: &WatchHealth) -> WatchLog {
    match (before, after) {
        (WatchHealth::Failing(old), WatchHealth::Failing(new)) if old == new => WatchLog::Quiet,
        (_, WatchHealth::Failing(new)) => WatchLog::Failing(new.clone()),
        (WatchHealth::Failing(_), WatchHealth::Watching) => WatchLog::Recovered,
        _ => WatchLog::Quiet,
    }
}

/// Where Kubernetes stands over all watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Headline {
    /// Still listing for the first time.
    Connecting,
    /// Every watch works (or its CRD is not installed).
    Ready,
    /// A watch fails: the reason of the most important one.
    Error(String),
}

/// The headline over every watch: an error while any watch fails (a missing CRD is not a
/// failure), naming the most important failing one ([`WatchKind`] order, then input order), so
/// the page never says "ready" while, say, the pods are unknown; ready only when all work.
/// Watches still starting keep it connecting until it was ready once (`was_ready`); after that a
/// watch started later (the events of a new namespace) does not turn it back.
pub fn headline<'a>(
    watches: impl IntoIterator<Item = (WatchKind, &'a WatchHealth)>,
    was_ready: bool,
) -> Headline {
    let mut worst: Option<(WatchKind, &str)> = None;
    let mut starting = false;
    let mut any = false;
    for (kind, health) in watches {
        any = true;
        match health {
            WatchHealth::Failing(why) => {
                if worst.is_none_or(|(k, _)| kind < k) {
                    worst = Some((kind, why));
                }
            }
            WatchHealth::Starting => starting = true,
            WatchHealth::Watching | WatchHealth::NotInstalled => {}
        }
    }
    match worst {
        Some((_, why)) => Headline::Error(why.to_string()),
        None if !any || (starting && !was_ready) => Headline::Connecting,
        None => Headline::Ready,
    }
}

/// A pod coming or going, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodChange {
    /// `namespace/name` appeared.
    Created(String),
    /// `namespace/name` went away.
    Deleted(String),
}

/// The pods one watch has seen, to tell the timeline which came and went, also across a re-list:
/// after an outage the watch lists everything again instead of replaying what happened, so the
/// pods that went (or came) meanwhile are only found by comparing the new list with the old.
#[derive(Debug, Clone, Default)]
pub struct PodPresence {
    seen: std::collections::BTreeSet<String>,
    /// The list being read, from its start to its end.
    relist: Option<std::collections::BTreeSet<String>>,
    /// A first list has completed: what is found before is the starting point, not news.
    listed: bool,
}

impl PodPresence {
    /// A (re)list starts.
    pub fn list_started(&mut self) {
        self.relist = Some(Default::default());
    }

    /// The list being read holds `name`.
    pub fn listed(&mut self, name: String) {
        self.relist
            .get_or_insert_with(Default::default)
            .insert(name);
    }

    /// The list is complete: the pods gone since the last one, then the new ones (none for the
    /// first list).
    pub fn list_done(&mut self) -> Vec<PodChange> {
        let now = self.relist.take().unwrap_or_default();
        let before = std::mem::replace(&mut self.seen, now);
        if !std::mem::replace(&mut self.listed, true) {
            return Vec::new();
        }
        let gone = before
            .difference(&self.seen)
            .cloned()
            .map(PodChange::Deleted);
        let new = self
            .seen
            .difference(&before)
            .cloned()
            .map(PodChange::Created);
        gone.chain(new).collect()
    }

    /// `name` was added or modified.
    pub fn applied(&mut self, name: String) -> Option<PodChange> {
        let new = self.seen.insert(name.clone());
        (new && self.listed).then_some(PodChange::Created(name))
    }

    /// `name` was deleted (said even when it was never seen: the API server knows best).
    pub fn deleted(&mut self, name: String) -> PodChange {
        self.seen.remove(&name);
        PodChange::Deleted(name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::cluster::tests::member;

    /// [`join_in`] the namespace [`pick_namespace`] chooses with no earlier choice.
    fn join(
        members: &[MemberView],
        pods: &[PodInfo],
        nodes: &[NodeInfo],
        pvcs: &[PvcInfo],
    ) -> (Vec<Placement>, Vec<PodInfo>) {
        let namespace = pick_namespace(members, pods, None).chosen;
        join_in(members, pods, namespace.as_deref(), nodes, pvcs)
    }

    pub(crate) fn pod(name: &str, node: &str, ip: &str, spread: bool) -> PodInfo {
        PodInfo {
            namespace: "operator-cluster".into(),
            name: name.into(),
            ip: Some(ip.into()),
            phase: "Running".into(),
            ready: true,
            restarts: 0,
            last_restart_reason: None,
            created_unix: None,
            node: Some(node.into()),
            host_network: false,
            spread_by_host: spread,
            spread_by_zone: false,
            claims: vec![format!("{name}-data")],
            empty_dir: false,
            events: vec![],
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_parse_like_the_api_server_and_match() {
        let s = LabelSelector::parse(
            "app=etcd, release==x,tier in (a, b),!canary,zone,env notin (dev)",
        )
        .unwrap();
        assert_eq!(
            s.as_str(),
            "app=etcd, release==x,tier in (a, b),!canary,zone,env notin (dev)"
        );
        let good = labels(&[
            ("app", "etcd"),
            ("release", "x"),
            ("tier", "b"),
            ("zone", "z"),
            ("env", "prod"),
        ]);
        assert!(s.matches(&good));
        let mut bad = good.clone();
        bad.insert("canary".into(), "yes".into());
        assert!(!s.matches(&bad));
        assert!(LabelSelector::parse("app.kubernetes.io/name=etcd,a!=b")
            .unwrap()
            .matches(&labels(&[("app.kubernetes.io/name", "etcd")])));
        assert!(LabelSelector::parse("").unwrap().matches(&labels(&[])));
        for wrong in [
            "app=",
            "=etcd",
            "app=et cd",
            "app=etcd,",
            "tier in a,b",
            "tier in (a",
            "Bad Key=x",
            "a=b)",
            "-app=x",
            "x/y/z=1",
        ] {
            if wrong == "app=" {
                // An empty value is allowed by Kubernetes.
                assert!(LabelSelector::parse(wrong).is_ok());
                continue;
            }
            assert!(
                LabelSelector::parse(wrong).is_err(),
                "{wrong} must be refused"
            );
        }
    }

    #[test]
    fn a_kube_target_names_the_bad_part() {
        assert_eq!(
            KubeTarget::parse("Bad_NS", "app=etcd").unwrap_err().0,
            "namespace"
        );
        assert_eq!(
            KubeTarget::parse("etcd", "app in x").unwrap_err().0,
            "selector"
        );
        let t = KubeTarget::parse("etcd", "app=etcd,release=x").unwrap();
        assert_eq!(
            t.source_name(),
            "configured selector app=etcd,release=x in namespace etcd"
        );
    }

    #[test]
    fn ages_read_like_kubectl_and_events_are_per_pod_newest_first() {
        assert_eq!(age_text(5), "5s");
        assert_eq!(age_text(600), "10m");
        assert_eq!(age_text(3 * 3600), "3h");
        assert_eq!(age_text(3 * 86_400), "3d");
        let ev = |reason: &str, at: i64| KubeEvent {
            kind: "Normal".into(),
            reason: reason.into(),
            message: String::new(),
            count: 1,
            last_seen_unix: Some(at),
            age: String::new(),
        };
        let all = vec![
            ("ns".to_string(), "p".to_string(), ev("Old", 1)),
            ("ns".to_string(), "q".to_string(), ev("Other", 5)),
            ("ns".to_string(), "p".to_string(), ev("New", 9)),
            ("other".to_string(), "p".to_string(), ev("Elsewhere", 10)),
        ];
        let got: Vec<_> = events_of_pod(&all, "ns", "p", 5)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(got, vec!["New", "Old"]);
        assert_eq!(events_of_pod(&all, "ns", "p", 1).len(), 1);
    }

    #[test]
    fn operator_statuses_are_read_with_each_crds_field_names() {
        // operator.etcd.io/v1alpha1: conditions and replica counts, no phase.
        let etcd_io = serde_json::json!({
            "spec": {"size": 3, "version": "3.5.21"},
            "status": {
                "currentReplicas": 3, "readyReplicas": 2, "memberCount": 3, "currentVersion": "3.5.21",
                "leaderID": "41f5beba5f42189a",
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "ClusterAvailable", "message": "Etcd cluster has 2/3 healthy members with quorum"},
                    {"type": "Degraded", "status": "True", "reason": "MembersUnhealthy", "message": "1 member unhealthy"}
                ]
            }
        });
        let s = operator_status(OperatorKind::EtcdIoEtcdCluster, "ns", "c", &etcd_io);
        assert_eq!(
            (s.ready, s.desired, s.current, s.ready_members),
            (Some(true), Some(3), Some(3), Some(2))
        );
        assert_eq!(s.api_version, "operator.etcd.io/v1alpha1");
        assert_eq!(s.version.as_deref(), Some("3.5.21"));
        assert!(
            s.summary.contains("2/3 ready of 3 wanted")
                && s.summary.contains("Degraded True (1 member unhealthy)"),
            "{}",
            s.summary
        );
        assert!(
            !s.summary.contains("Available"),
            "a healthy condition is not news: {}",
            s.summary
        );

        // druid.gardener.cloud/v1alpha1: ready, replicas, lastOperation, lastErrors.
        let druid = serde_json::json!({
            "spec": {"replicas": 3},
            "status": {
                "ready": false, "replicas": 3, "currentReplicas": 3, "readyReplicas": 1,
                "lastOperation": {"type": "Reconcile", "state": "Error", "description": "x"},
                "lastErrors": [{"code": "ERR_SYNC_STATEFULSET", "description": "statefulset not ready"}],
                "conditions": [{"type": "AllMembersReady", "status": "False", "reason": "NotAllMembersReady", "message": "At least one member is not ready"}]
            }
        });
        let s = operator_status(OperatorKind::DruidEtcd, "ns", "etcd-main", &druid);
        assert_eq!(
            (s.ready, s.ready_members, s.desired),
            (Some(false), Some(1), Some(3))
        );
        assert_eq!(s.phase.as_deref(), Some("Reconcile Error"));
        assert_eq!(s.last_error.as_deref(), Some("statefulset not ready"));
        assert!(
            s.summary.starts_with("NOT ready") && s.summary.contains("AllMembersReady False"),
            "{}",
            s.summary
        );

        // etcd.database.coreos.com/v1beta2: phase, size, members.ready.
        let coreos = serde_json::json!({
            "spec": {"size": 3, "version": "3.4.13"},
            "status": {"phase": "Running", "size": 3, "currentVersion": "3.4.13", "members": {"ready": ["a", "b", "c"]}}
        });
        let s = operator_status(OperatorKind::CoreosEtcdCluster, "ns", "etcd-app", &coreos);
        assert_eq!(
            (s.ready, s.ready_members, s.phase.as_deref()),
            (Some(true), Some(3), Some("Running"))
        );

        // No status yet (just created): says so, no guesses.
        let s = operator_status(
            OperatorKind::DruidEtcd,
            "ns",
            "new",
            &serde_json::json!({"spec": {"replicas": 3}}),
        );
        assert_eq!(s.ready, None);
        assert!(s.summary.starts_with("status not reported yet"));
    }

    pub(crate) fn node(name: &str, zone: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            ready: true,
            zone: Some(zone.into()),
        }
    }

    fn named(id: &str, name: &str, peer: &str) -> MemberView {
        let mut m = member(id, true, id == "a");
        m.name = name.into();
        m.peer_urls = vec![peer.into()];
        m
    }

    #[test]
    fn members_match_pods_by_name_peer_host_or_ip() {
        let members = vec![
            named(
                "a",
                "etcd-app-9wdl",
                "http://etcd-app-9wdl.etcd-app.operator-cluster.svc:2380",
            ),
            named(
                "b",
                "",
                "http://etcd-app-d9c9.etcd-app.operator-cluster.svc:2380",
            ),
            named("c", "master-1", "https://10.0.0.7:2380"),
            named("d", "gone", "http://gone.etcd-app.svc:2380"),
        ];
        let pods = vec![
            pod("etcd-app-9wdl", "node-1", "10.1.0.1", true),
            pod("etcd-app-d9c9", "node-1", "10.1.0.2", true),
            pod("etcd-master", "master-1", "10.0.0.7", true),
            pod("etcd-app-new", "node-2", "10.1.0.3", true),
        ];
        let (placed, strays) = join(&members, &pods, &[node("node-1", "a")], &[]);
        let how: Vec<_> = placed.iter().map(|p| p.matched_by).collect();
        assert_eq!(
            how,
            vec![Some("name"), Some("peer-host"), Some("pod-ip"), None]
        );
        assert_eq!(
            placed[0].node.as_ref().map(|n| n.zone.clone()),
            Some(Some("a".into()))
        );
        assert_eq!(
            strays.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            vec!["etcd-app-new"]
        );
    }

    #[test]
    fn two_of_three_on_one_node_is_the_field_reports_failure() {
        let members = vec![
            named("a", "etcd-app-9wdl", "http://x:2380"),
            named("b", "etcd-app-d9c9", "http://y:2380"),
            named("c", "etcd-app-pbtj", "http://z:2380"),
        ];
        let pods = vec![
            pod("etcd-app-9wdl", "node-1", "10.1.0.1", false),
            pod("etcd-app-d9c9", "node-1", "10.1.0.2", false),
            pod("etcd-app-pbtj", "node-2", "10.1.0.3", false),
        ];
        let nodes = vec![node("node-1", "zone-a"), node("node-2", "zone-a")];
        let (placed, _) = join(&members, &pods, &nodes, &[]);
        let s = spread(&placed, false);
        let n1 = s.nodes.iter().find(|n| n.name == "node-1").unwrap();
        assert!(!n1.quorum_kept);
        assert_eq!(n1.left, 1);
        assert_eq!(s.warnings[0].level, "critical");
        assert!(
            s.warnings[0].text.contains("node node-1")
                && s.warnings[0].advice.contains("anti-affinity")
                && s.warnings[0]
                    .advice
                    .contains("delete one of the pods on node-1"),
            "{:?}",
            s.warnings[0]
        );
        assert!(s
            .warnings
            .iter()
            .any(|w| w.text.contains("all 3 placed members are in zone zone-a")));
        assert!(s
            .warnings
            .iter()
            .any(|w| w.text.contains("PodDisruptionBudget")));
        assert!(s.warnings.iter().any(|w| w.text.contains("anti-affinity")));
    }

    #[test]
    fn five_members_spread_over_nodes_and_zones_are_rated_safe() {
        let names = ["e0", "e1", "e2", "e3", "e4"];
        let members: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| named(&i.to_string(), n, "http://h:2380"))
            .collect();
        let pods: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| pod(n, &format!("node-{i}"), &format!("10.0.0.{i}"), true))
            .collect();
        let nodes: Vec<_> = (0..5)
            .map(|i| node(&format!("node-{i}"), ["a", "b", "c"][i % 3]))
            .collect();
        let (placed, _) = join(&members, &pods, &nodes, &[]);
        let s = spread(&placed, true);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert!(s.nodes.iter().all(|n| n.quorum_kept) && s.zones.iter().all(|z| z.quorum_kept));
    }

    fn three_on_three_nodes() -> Vec<Placement> {
        let members = vec![
            named("a", "etcd-0", "http://x:2380"),
            named("b", "etcd-1", "http://y:2380"),
            named("c", "etcd-2", "http://z:2380"),
        ];
        let pods = vec![
            pod("etcd-0", "node-1", "10.1.0.1", true),
            pod("etcd-1", "node-2", "10.1.0.2", true),
            pod("etcd-2", "node-3", "10.1.0.3", true),
        ];
        let nodes = vec![
            node("node-1", "zone-a"),
            node("node-2", "zone-b"),
            node("node-3", "zone-c"),
        ];
        join(&members, &pods, &nodes, &[]).0
    }

    fn down(p: &mut Placement) {
        p.member.reachable = false;
        p.member.serving = false;
        p.member.healthy = false;
    }

    #[test]
    fn with_a_member_already_down_losing_any_other_node_costs_quorum() {
        let mut placed = three_on_three_nodes();
        assert!(spread(&placed, true).warnings.is_empty());
        down(&mut placed[0]);
        let s = spread(&placed, true);
        let line = |name: &str| s.nodes.iter().find(|n| n.name == name).unwrap().clone();
        assert!(line("node-1").quorum_kept, "its member is down already");
        assert_eq!(
            line("node-1").text,
            "if node node-1 fails, 0 member(s) are lost → 2/3 left (1 already down), quorum kept"
        );
        assert!(!line("node-2").quorum_kept);
        assert_eq!(
            line("node-2").text,
            "if node node-2 fails, 1 member(s) are lost → 1/3 left (1 already down), quorum LOST"
        );
        assert!(s.zones.iter().filter(|z| !z.quorum_kept).count() == 2);
        let critical: Vec<&SpreadWarning> = s
            .warnings
            .iter()
            .filter(|w| w.level == "critical")
            .collect();
        assert_eq!(critical.len(), 4, "two nodes, two zones: {:?}", s.warnings);
        assert!(
            s.warnings.iter().any(|w| w.text
                == "losing zone zone-b loses quorum: 1 would be left of 3 (1 already down)"
                && w.advice.starts_with("Bring the down member(s) back")),
            "{:?}",
            s.warnings
        );
        assert_eq!(
            critical[0].text,
            "losing node node-2 loses quorum: 1 would be left of 3 (1 already down)"
        );
        assert!(critical[0]
            .advice
            .starts_with("Bring the down member(s) back"));
        // Two down: quorum is gone already; no advice about further failures.
        down(&mut placed[1]);
        let s = spread(&placed, true);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert!(s.nodes[2]
            .text
            .ends_with("quorum is already lost (1/3 members up)"));
    }

    #[test]
    fn a_member_etcdboard_cannot_reach_counts_as_up_while_its_pod_is_ready() {
        let mut placed = three_on_three_nodes();
        down(&mut placed[0]);
        placed[0].member.unseen = true;
        let s = spread(&placed, true);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert!(s.nodes.iter().all(|n| n.quorum_kept), "{:?}", s.nodes);
        // Its pod not ready: as good as down.
        if let Some(pod) = placed[0].pod.as_mut() {
            pod.ready = false;
        }
        let s = spread(&placed, true);
        assert!(
            s.nodes.iter().filter(|n| !n.quorum_kept).count() == 2,
            "{:?}",
            s.nodes
        );
    }

    #[test]
    fn a_member_added_but_not_started_counts_against_quorum() {
        let mut placed = three_on_three_nodes();
        let mut new = named("d", "", "http://w:2380");
        new.unstarted = true;
        new.reachable = false;
        new.serving = false;
        placed.push(Placement {
            member: new,
            matched_by: None,
            pod: None,
            node: None,
            volumes: vec![],
        });
        // 4 voters, 3 up, majority 3: any node (or zone) lost leaves 2.
        let s = spread(&placed, true);
        assert!(s.nodes.iter().all(|n| !n.quorum_kept), "{:?}", s.nodes);
        assert_eq!(
            s.warnings.iter().filter(|w| w.level == "critical").count(),
            6
        );
    }

    #[test]
    fn a_zone_holding_a_majority_is_flagged_even_with_a_member_unplaced() {
        let names = ["e0", "e1", "e2", "e3", "e4"];
        let members: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| named(&i.to_string(), n, "http://h:2380"))
            .collect();
        // e4's pod is gone (the member still runs); the other four are all in zone-a.
        let pods: Vec<_> = names[..4]
            .iter()
            .enumerate()
            .map(|(i, n)| pod(n, &format!("node-{i}"), &format!("10.0.0.{i}"), true))
            .collect();
        let nodes: Vec<_> = (0..4)
            .map(|i| node(&format!("node-{i}"), "zone-a"))
            .collect();
        let (placed, _) = join(&members, &pods, &nodes, &[]);
        let s = spread(&placed, true);
        assert!(
            s.warnings.iter().any(|w| w.text
                == "all 4 placed members are in zone zone-a: a zone outage loses the cluster"),
            "{:?}",
            s.warnings
        );
        // Two zones, one with half of four: losing it loses quorum ("half or more", not "majority").
        let members: Vec<_> = names[..4]
            .iter()
            .enumerate()
            .map(|(i, n)| named(&i.to_string(), n, "http://h:2380"))
            .collect();
        let nodes: Vec<_> = (0..4)
            .map(|i| node(&format!("node-{i}"), ["zone-a", "zone-b"][i % 2]))
            .collect();
        let (placed, _) = join(&members, &pods, &nodes, &[]);
        let s = spread(&placed, true);
        let zone = s
            .warnings
            .iter()
            .find(|w| {
                w.text
                    .starts_with("losing zone zone-a loses quorum (2/4 left)")
            })
            .expect("a zone warning");
        assert!(zone.advice.contains("half of the voting members or more"));
    }

    #[test]
    fn pods_of_the_same_names_in_another_namespace_are_not_joined() {
        let members = vec![
            named(
                "a",
                "etcd-0",
                "http://etcd-0.etcd-headless.prod.svc.cluster.local:2380",
            ),
            named(
                "b",
                "etcd-1",
                "http://etcd-1.etcd-headless.prod.svc.cluster.local:2380",
            ),
            named(
                "c",
                "etcd-2",
                "http://etcd-2.etcd-headless.prod.svc.cluster.local:2380",
            ),
        ];
        let in_ns = |ns: &str, name: &str, node: &str| PodInfo {
            namespace: ns.into(),
            ..pod(name, node, "10.9.9.9", true)
        };
        // staging first: a namespace-blind join would take its pods.
        let mut pods: Vec<PodInfo> = (0..3)
            .map(|i| in_ns("staging", &format!("etcd-{i}"), "node-1"))
            .collect();
        pods.extend(
            (0..3).map(|i| in_ns("prod", &format!("etcd-{i}"), &format!("node-{}", i + 2))),
        );
        pods.push(in_ns("prod", "etcd-3", "node-9"));
        let (placed, strays) = join(&members, &pods, &[], &[]);
        assert!(
            placed
                .iter()
                .all(|p| p.pod.as_ref().is_some_and(|pod| pod.namespace == "prod")),
            "{placed:?}"
        );
        assert_eq!(
            strays
                .iter()
                .map(|p| format!("{}/{}", p.namespace, p.name))
                .collect::<Vec<_>>(),
            vec!["prod/etcd-3"]
        );
        // Names alone cannot tell two releases apart: the tie is reported.
        let bare: Vec<MemberView> = (0..3)
            .map(|i| named(&i.to_string(), &format!("etcd-{i}"), "http://10.1.1.1:2380"))
            .collect();
        let pick = pick_namespace(&bare, &pods, None);
        assert_eq!(
            pick.chosen.as_deref(),
            Some("prod"),
            "the most name matches"
        );
        assert_eq!(pick.uncertain_with, vec!["staging".to_string()]);
        // One of prod's pods deleted: names now favour staging 3 to 2, but the namespace chosen
        // before keeps the cluster while any of its pods still matches.
        let fewer: Vec<PodInfo> = pods
            .iter()
            .filter(|p| !(p.namespace == "prod" && p.name == "etcd-2"))
            .cloned()
            .collect();
        assert_eq!(
            pick_namespace(&bare, &fewer, None).chosen.as_deref(),
            Some("staging")
        );
        let kept = pick_namespace(&bare, &fewer, Some("prod"));
        assert_eq!(kept.chosen.as_deref(), Some("prod"));
        assert_eq!(kept.uncertain_with, vec!["staging".to_string()]);
        // Peer URLs that name the namespace decide, whatever came before, and are certain.
        let certain = pick_namespace(&members, &fewer, Some("staging"));
        assert_eq!(certain.chosen.as_deref(), Some("prod"));
        assert!(certain.uncertain_with.is_empty());
    }

    #[test]
    fn static_pods_on_the_host_network_get_no_anti_affinity_or_budget_advice() {
        let members = vec![named("a", "master-1", "https://10.0.0.7:2380")];
        let mut kubeadm = pod("etcd-master-1", "master-1", "10.0.0.7", false);
        kubeadm.namespace = "kube-system".into();
        kubeadm.host_network = true;
        let (placed, _) = join(&members, &[kubeadm], &[node("master-1", "a")], &[]);
        assert_eq!(placed[0].matched_by, Some("pod-ip"));
        let s = spread(&placed, false);
        assert!(
            !s.warnings
                .iter()
                .any(|w| w.text.contains("anti-affinity") || w.text.contains("PodDisruptionBudget")),
            "{:?}",
            s.warnings
        );
    }

    fn words(line: &[&str]) -> Vec<String> {
        line.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_data_dir_is_read_from_flags_scripts_and_the_environment() {
        let kubeadm = words(&["etcd", "--data-dir=/var/lib/etcd", "--name=node-1"]);
        assert_eq!(
            etcd_data_dir(&kubeadm, None).as_deref(),
            Some("/var/lib/etcd")
        );
        let operator = words(&[
            "/bin/sh",
            "-ec",
            "/usr/local/bin/etcd --data-dir=/var/etcd/data --name=etcd-app-0",
        ]);
        assert_eq!(
            etcd_data_dir(&operator, None).as_deref(),
            Some("/var/etcd/data")
        );
        let spaced = words(&["etcd", "-data-dir", "'/data'"]);
        assert_eq!(etcd_data_dir(&spaced, None).as_deref(), Some("/data"));
        // The flag wins over the environment, as in etcd; Bitnami sets only the environment.
        assert_eq!(
            etcd_data_dir(&kubeadm, Some("/elsewhere")).as_deref(),
            Some("/var/lib/etcd")
        );
        let bitnami = words(&["/opt/bitnami/scripts/etcd/entrypoint.sh"]);
        assert_eq!(
            etcd_data_dir(&bitnami, Some("/bitnami/etcd/data")).as_deref(),
            Some("/bitnami/etcd/data")
        );
        // Relative (etcd's default `<name>.etcd`) or unrelated flags: unknown.
        assert_eq!(etcd_data_dir(&words(&["etcd", "--name=x"]), None), None);
        assert_eq!(
            etcd_data_dir(&words(&["etcd", "--data-dir=x.etcd"]), None),
            None
        );
        assert_eq!(
            etcd_data_dir(&words(&["etcd", "--data-dirx=/a"]), None),
            None
        );
    }

    fn vols(list: &[(&str, VolumeKind)]) -> Vec<(String, VolumeKind)> {
        list.iter().map(|(n, k)| (n.to_string(), *k)).collect()
    }

    fn mounts(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(v, p)| (v.to_string(), p.to_string()))
            .collect()
    }

    #[test]
    fn a_scratch_empty_dir_next_to_a_data_volume_is_not_data_in_an_empty_dir() {
        use VolumeKind::*;
        // Bitnami: an emptyDir for /tmp (and config), the data on a PVC.
        let v = vols(&[("empty-dir", EmptyDir), ("data", Claim)]);
        let m = mounts(&[
            ("empty-dir", "/tmp"),
            ("empty-dir", "/opt/bitnami/etcd/conf"),
            ("data", "/bitnami/etcd"),
        ]);
        assert!(!keeps_data_in_empty_dir(&v, &m, Some("/bitnami/etcd/data")));
        // The same pod without a known data dir: the PVC makes it safe too.
        assert!(!keeps_data_in_empty_dir(&v, &m, None));
        // kubeadm: hostPath data, nothing else.
        let v = vols(&[("etcd-data", HostPath), ("etcd-certs", HostPath)]);
        let m = mounts(&[("etcd-data", "/var/lib/etcd")]);
        assert!(!keeps_data_in_empty_dir(&v, &m, Some("/var/lib/etcd")));
        assert!(!keeps_data_in_empty_dir(&v, &m, None));
        // A pod without any emptyDir.
        assert!(!keeps_data_in_empty_dir(
            &vols(&[("data", Claim)]),
            &[],
            None
        ));
    }

    #[test]
    fn data_on_an_empty_dir_is_flagged_even_next_to_a_pvc() {
        use VolumeKind::*;
        // etcd-operator's default: the data dir on an emptyDir.
        let v = vols(&[("etcd-data", EmptyDir)]);
        let m = mounts(&[("etcd-data", "/var/etcd")]);
        assert!(keeps_data_in_empty_dir(&v, &m, Some("/var/etcd/data")));
        assert!(keeps_data_in_empty_dir(&v, &m, None));
        // A PVC mounted somewhere else does not save data that is on the emptyDir; the deepest
        // mount holding the data dir decides.
        let v = vols(&[("backup", Claim), ("data", EmptyDir)]);
        let m = mounts(&[
            ("backup", "/var"),
            ("data", "/var/etcd/"),
            ("x", "/var/etcd-2"),
        ]);
        assert!(keeps_data_in_empty_dir(&v, &m, Some("/var/etcd/data")));
        assert!(!keeps_data_in_empty_dir(&v, &m, Some("/var/etcd-2/data")));
        assert!(!keeps_data_in_empty_dir(&v, &m, Some("/var/lib")));
    }

    #[test]
    fn a_refusal_quotes_the_whole_server_message_on_one_bounded_line() {
        let msg = r#"pods is forbidden: User "system:serviceaccount:default:nobody" cannot list resource "pods" in API group "" at the cluster scope"#;
        let text = forbidden_advice("pods", msg);
        assert_eq!(
            text,
            format!("forbidden: etcdboard may not list pods ({msg}) — see deploy/base/rbac.yaml")
        );
        let long = format!("line one\n{}", "é".repeat(1000));
        let text = forbidden_advice("nodes", &long);
        assert!(
            text.contains("(line one éé") && text.contains("…) — see"),
            "{text}"
        );
        assert!(text.chars().count() < KUBE_MESSAGE_CHARS + 80, "{text}");
        assert!(forbidden_advice("pods", " ").contains("(access denied)"));
    }

    #[test]
    fn a_watch_failure_is_logged_when_it_starts_or_changes_and_once_on_recovery() {
        use WatchHealth::*;
        let denied = Failing("forbidden".into());
        assert_eq!(
            watch_log(&Starting, &denied),
            WatchLog::Failing("forbidden".into())
        );
        assert_eq!(watch_log(&denied, &denied.clone()), WatchLog::Quiet);
        assert_eq!(
            watch_log(&denied, &Failing("unreachable".into())),
            WatchLog::Failing("unreachable".into())
        );
        assert_eq!(watch_log(&denied, &Watching), WatchLog::Recovered);
        assert_eq!(watch_log(&Watching, &Watching), WatchLog::Quiet);
        assert_eq!(watch_log(&Starting, &Watching), WatchLog::Quiet);
        assert_eq!(watch_log(&Starting, &NotInstalled), WatchLog::Quiet);
    }

    #[test]
    fn the_headline_is_ready_only_when_every_watch_works_and_names_the_worst_failure() {
        use WatchHealth::*;
        use WatchKind::*;
        let pods = Failing("cannot list pods".into());
        let events = Failing("cannot list events".into());
        let crd = Failing("cannot list etcdclusters".into());
        // A CRD that is not installed is normal.
        let ok = [
            (Pods, &Watching),
            (Nodes, &Watching),
            (CustomResources, &NotInstalled),
        ];
        assert_eq!(headline(ok, false), Headline::Ready);
        // One failing source is enough, whatever works besides; the pods are named first.
        assert_eq!(
            headline([(Nodes, &Watching), (Pods, &pods), (Pods, &Watching)], true),
            Headline::Error("cannot list pods".into())
        );
        assert_eq!(
            headline(
                [(CustomResources, &crd), (Events, &events), (Pods, &pods)],
                true
            ),
            Headline::Error("cannot list pods".into())
        );
        assert_eq!(
            headline([(Pods, &Watching), (Events, &events)], true),
            Headline::Error("cannot list events".into())
        );
        // Starting: connecting at first; a watch started later does not undo "ready".
        assert_eq!(
            headline([(Pods, &Watching), (Nodes, &Starting)], false),
            Headline::Connecting
        );
        assert_eq!(
            headline([(Pods, &Watching), (Events, &Starting)], true),
            Headline::Ready
        );
        assert_eq!(headline([], false), Headline::Connecting);
    }

    #[test]
    fn a_relist_tells_the_pods_that_went_and_came_during_the_gap() {
        let name = |n: &str| format!("ns/{n}");
        let mut p = PodPresence::default();
        // The first list is the starting point, not news.
        p.list_started();
        p.listed(name("a"));
        p.listed(name("b"));
        assert_eq!(p.list_done(), vec![]);
        assert_eq!(p.applied(name("c")), Some(PodChange::Created(name("c"))));
        assert_eq!(p.applied(name("c")), None, "a modification is no creation");
        // An outage: b went, d came; the watch lists again.
        p.list_started();
        for n in ["a", "c", "d"] {
            p.listed(name(n));
        }
        assert_eq!(
            p.list_done(),
            vec![PodChange::Deleted(name("b")), PodChange::Created(name("d"))]
        );
        // b is gone from what was seen, so its re-creation is news again.
        assert_eq!(p.applied(name("b")), Some(PodChange::Created(name("b"))));
        assert_eq!(p.deleted(name("b")), PodChange::Deleted(name("b")));
        assert_eq!(p.applied(name("b")), Some(PodChange::Created(name("b"))));
        // A list that broke off half-way is started over and only the complete one counts.
        p.list_started();
        p.listed(name("a"));
        p.list_started();
        for n in ["a", "b", "c", "d"] {
            p.listed(name(n));
        }
        assert_eq!(p.list_done(), vec![]);
    }
}
