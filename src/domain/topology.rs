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
    /// Recent events (newest first), as text.
    pub events: Vec<String>,
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

/// Matches members to pods: member name = pod name; else the first DNS label of the peer URL host =
/// pod name; else the peer URL host = pod IP (hostNetwork). Returns placements (in member order),
/// pods that are no member, and members without a pod.
pub fn join(
    members: &[MemberView],
    pods: &[PodInfo],
    nodes: &[NodeInfo],
    pvcs: &[PvcInfo],
) -> (Vec<Placement>, Vec<PodInfo>) {
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
        .map(|(p, _)| p.clone())
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

const FIX: &str = "Run 5 members with a required pod anti-affinity on kubernetes.io/hostname (the field report's fix), and spread them over zones with a topology spread constraint on topology.kubernetes.io/zone.";

fn risks(kind: &'static str, groups: Vec<(String, Vec<String>)>, size: usize) -> Vec<DomainRisk> {
    let majority = size / 2 + 1;
    groups
        .into_iter()
        .map(|(name, members)| {
            let left = size.saturating_sub(members.len());
            let quorum_kept = left >= majority;
            DomainRisk {
                kind,
                text: format!(
                    "if {kind} {name} fails, {} member(s) are lost → {left}/{size} left, quorum {}",
                    members.len(),
                    if quorum_kept { "kept" } else { "LOST" }
                ),
                name,
                members,
                left,
                quorum_kept,
            }
        })
        .collect()
}

/// Members per node and zone, what each failure would cost, and warnings. `has_pdb` says whether a
/// PodDisruptionBudget selects the pods.
pub fn spread(placements: &[Placement], has_pdb: bool) -> Spread {
    let voters: Vec<&Placement> = placements.iter().filter(|p| !p.member.learner).collect();
    let size = voters.len();
    let label = |p: &Placement| {
        if p.member.name.is_empty() {
            p.member.id.clone()
        } else {
            p.member.name.clone()
        }
    };
    let mut by_node: Vec<(String, Vec<String>)> = Vec::new();
    let mut by_zone: Vec<(String, Vec<String>)> = Vec::new();
    for p in &voters {
        if let Some(node) = p.pod.as_ref().and_then(|pod| pod.node.clone()) {
            match by_node.iter_mut().find(|(n, _)| *n == node) {
                Some((_, v)) => v.push(label(p)),
                None => by_node.push((node, vec![label(p)])),
            }
        }
        if let Some(zone) = p.node.as_ref().and_then(|n| n.zone.clone()) {
            match by_zone.iter_mut().find(|(z, _)| *z == zone) {
                Some((_, v)) => v.push(label(p)),
                None => by_zone.push((zone, vec![label(p)])),
            }
        }
    }
    by_node.sort();
    by_zone.sort();
    let nodes = risks("node", by_node, size);
    let zones = risks("zone", by_zone, size);
    let mut warnings = Vec::new();
    for n in nodes.iter().filter(|n| n.members.len() >= 2) {
        warnings.push(SpreadWarning {
            level: if n.quorum_kept { "warning" } else { "critical" },
            text: format!(
                "{} run on node {}: losing it leaves {}/{} — quorum {}",
                n.members.join(" and "),
                n.name,
                n.left,
                size,
                if n.quorum_kept {
                    "kept, but the margin shrinks"
                } else {
                    "LOST"
                }
            ),
            advice: FIX.into(),
        });
    }
    if zones.len() == 1 && size > 1 && zones[0].members.len() == size {
        warnings.push(SpreadWarning {
            level: "warning",
            text: format!("all {size} members are in zone {}: a zone outage loses the cluster", zones[0].name),
            advice: "Spread members over at least 3 zones with a topology spread constraint on topology.kubernetes.io/zone.".into(),
        });
    }
    for z in zones.iter().filter(|z| !z.quorum_kept && zones.len() > 1) {
        warnings.push(SpreadWarning {
            level: "warning",
            text: format!(
                "losing zone {} loses quorum ({}/{} left)",
                z.name, z.left, size
            ),
            advice:
                "No zone should hold a majority of the members: use 3 zones for 3 or 5 members."
                    .into(),
        });
    }
    let pods: Vec<&PodInfo> = voters.iter().filter_map(|p| p.pod.as_ref()).collect();
    if !pods.is_empty() && pods.iter().any(|p| !p.spread_by_host) {
        warnings.push(SpreadWarning {
            level: "warning",
            text: "the pods have no required anti-affinity or topology spread on kubernetes.io/hostname: the scheduler may put several members on one node".into(),
            advice: FIX.into(),
        });
    }
    if !pods.is_empty() && !has_pdb {
        warnings.push(SpreadWarning {
            level: "warning",
            text:
                "no PodDisruptionBudget covers the members: a node drain may evict several at once"
                    .into(),
            advice: "Add a PodDisruptionBudget with maxUnavailable: 1 selecting the etcd pods."
                .into(),
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
    if size > 0 && size < 3 {
        warnings.push(SpreadWarning {
            level: "warning",
            text: format!("only {size} member(s): one failure loses quorum"),
            advice: FIX.into(),
        });
    } else if size > 0 && size.is_multiple_of(2) {
        warnings.push(SpreadWarning {
            level: "warning",
            text: format!(
                "{size} members: an even size adds no failure tolerance over {}",
                size - 1
            ),
            advice: "Use an odd number of members (3 or 5).".into(),
        });
    }
    warnings.sort_by_key(|w| if w.level == "critical" { 0 } else { 1 });
    Spread {
        nodes,
        zones,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cluster::tests::member;

    fn pod(name: &str, node: &str, ip: &str, spread: bool) -> PodInfo {
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

    fn node(name: &str, zone: &str) -> NodeInfo {
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
                && s.warnings[0].advice.contains("5 members")
        );
        assert!(s
            .warnings
            .iter()
            .any(|w| w.text.contains("all 3 members are in zone zone-a")));
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
}
