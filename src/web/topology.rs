//! The Kubernetes topology of a cluster: the member ↔ pod join, the spread analysis and an SVG
//! picture (zones → nodes → members) drawn by the server, plus the same data as JSON.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::domain::cluster::member_health;
use crate::domain::discovery::DiscoveryStatus;
use crate::domain::format::escape_html;
use crate::domain::pdb::{self, PdbVerdict};
use crate::domain::topology::{
    join_in, pick_namespace, spread, OperatorStatus, Placement, PodInfo, SourceReport, Spread,
    SpreadWarning,
};
use crate::error::AppError;
use crate::topology::{KubeState, PdbRead, PodEvent};

/// Everything known about where a cluster runs.
#[derive(Debug, Clone, Serialize)]
pub struct TopologyReport {
    /// Kubernetes state (`off`, `connecting`, `ready`, or `error` with the reason and what to do).
    pub kubernetes: KubeState,
    /// Which discovery source found the matched pods (a configured `namespace + selector`
    /// always wins over discovery).
    pub source: Option<String>,
    /// Every source with what it found (pods, custom resources, events) and the state of its
    /// watch; a CRD that is not installed says `not installed`, which is not an error.
    pub sources: Vec<SourceReport>,
    /// What the operators' custom resources say (etcd-operator, operator.etcd.io, etcd-druid) in
    /// the namespaces of this cluster's pods (all of them while no pod is matched).
    pub operators: Vec<OperatorStatus>,
    /// Members with their pod, node, zone and volumes.
    pub members: Vec<Placement>,
    /// Members without a pod.
    pub unmatched_members: Vec<String>,
    /// Pods in the members' namespace that are no member (starting, or left over).
    pub unmatched_pods: Vec<PodInfo>,
    /// Pods considered for the join (those of the configured selector or discovered cluster,
    /// else every etcd pod found); 0 says the selector or labels find nothing.
    pub candidate_pods: usize,
    /// Node and zone failure analysis with warnings.
    pub spread: Spread,
    /// Whether a PodDisruptionBudget that keeps quorum through a drain covers the pods (`None`:
    /// the budgets could not be read yet).
    pub pdb: Option<bool>,
    /// etcd-operator `EtcdCluster` objects seen: `(namespace/name, summary)`.
    pub etcd_clusters: Vec<(String, String)>,
    /// Pods created and deleted recently (newest first).
    pub pod_events: Vec<PodEvent>,
    /// Every etcd cluster discovered in Kubernetes and what became of it: browsable (a
    /// `discovery:` rule covers it) or, with the reason, only listed and never dialled.
    /// Browsable ones the caller may not read are left out.
    pub discovered: Vec<DiscoveryStatus>,
}

/// Builds the report from the caches (no call to etcd; one bounded PDB lookup).
pub async fn report(
    state: &AppState,
    cluster: &crate::etcd::EtcdCluster,
) -> Result<TopologyReport, AppError> {
    let members = state.monitor(cluster)?.snapshot().members;
    let topo = state.topology();
    let ks = topo.snapshot();
    let target = state
        .config()
        .clusters
        .iter()
        .find(|c| c.name == cluster.name())
        .and_then(|c| c.kubernetes.clone());
    let mut sources = ks.sources.clone();
    let found = state.discovered(cluster.name());
    // A configured namespace + selector always wins: exactly those pods, no discovery. A
    // discovered cluster is exactly the pods it was discovered as.
    let (pods, explicit): (Vec<PodInfo>, Option<String>) = match (&target, &found) {
        (None, Some(d)) => (
            ks.pods
                .iter()
                .filter(|(_, p)| p.namespace == d.namespace && d.pods.contains(&p.name))
                .map(|(_, p)| p.clone())
                .collect(),
            Some(format!(
                "discovered ({}) in namespace {}",
                d.source.as_str(),
                d.namespace
            )),
        ),
        (Some(t), _) => {
            let pods = topo.explicit_pods(t).unwrap_or_default();
            let name = t.source_name();
            sources.insert(
                0,
                SourceReport {
                    state: topo.source_state(&name),
                    source: name.clone(),
                    found: pods.len(),
                    what: "pods",
                },
            );
            (pods, Some(name))
        }
        (None, None) => (ks.pods.iter().map(|(_, p)| p.clone()).collect(), None),
    };
    // One namespace: the one the evidence points to, or (on names alone) the one chosen before.
    let pick = pick_namespace(&members, &pods, topo.joined_in(cluster.name()).as_deref());
    topo.set_joined_in(cluster.name(), pick.chosen.as_deref());
    let (placements, strays) =
        join_in(&members, &pods, pick.chosen.as_deref(), &ks.nodes, &ks.pvcs);
    let matched: Vec<&PodInfo> = placements.iter().filter_map(|p| p.pod.as_ref()).collect();
    let mut namespaces: Vec<String> = matched.iter().map(|p| p.namespace.clone()).collect();
    if let Some(t) = &target {
        namespaces.push(t.namespace.clone());
    }
    if let Some(d) = &found {
        namespaces.push(d.namespace.clone());
    }
    namespaces.sort();
    namespaces.dedup();
    let source = match &explicit {
        Some(name) => Some(name.clone()),
        None => matched.first().and_then(|m| {
            ks.pods
                .iter()
                .find(|(_, p)| p.name == m.name && p.namespace == m.namespace)
                .map(|(s, _)| s.clone())
        }),
    };
    let operators: Vec<OperatorStatus> = ks
        .operators
        .into_iter()
        .filter(|o| namespaces.is_empty() || namespaces.contains(&o.namespace))
        .collect();
    // What the PodDisruptionBudgets (as last read, never waited for long) do for these pods;
    // when they cannot be read, the page says so.
    let voters = placements.iter().filter(|p| !p.member.learner).count();
    let mut unreadable = None;
    let verdict = match matched.first() {
        Some(first) => match topo.pdbs(&first.namespace).await {
            PdbRead::Read(pdbs) => {
                let labels: Vec<_> = matched
                    .iter()
                    .map(|p| topo.pod_labels(&p.namespace, &p.name))
                    .collect();
                Some(pdb::verdict(&pdbs, &first.namespace, &labels, voters))
            }
            PdbRead::Unreadable(why) => {
                unreadable = Some((first.namespace.clone(), why));
                None
            }
            PdbRead::NotYet => None,
        },
        None => None,
    };
    let mut analysis = spread(&placements, verdict != Some(PdbVerdict::Missing));
    let fix = format!(
        "Set maxUnavailable: 1 (or minAvailable: {} for {voters} members).",
        voters / 2 + 1
    );
    match &verdict {
        Some(PdbVerdict::TooLax { name, allows, of }) => analysis.warnings.push(SpreadWarning {
            level: "warning",
            text: format!(
                "PodDisruptionBudget {name} lets a drain evict {allows} of {of} members at once: quorum may be lost"
            ),
            advice: fix,
        }),
        Some(PdbVerdict::BlocksDrains { name }) => analysis.warnings.push(SpreadWarning {
            level: "warning",
            text: format!(
                "PodDisruptionBudget {name} allows no eviction: draining a member's node waits for ever"
            ),
            advice: fix,
        }),
        _ => {}
    }
    if let Some((namespace, why)) = unreadable {
        analysis.warnings.push(SpreadWarning {
            level: "warning",
            text: format!(
                "the PodDisruptionBudgets in namespace {namespace} cannot be read ({why}): whether a drain may take quorum is unknown"
            ),
            advice: "Let etcdboard list poddisruptionbudgets (group policy), as deploy/base/rbac.yaml does.".into(),
        });
    }
    let pdb = verdict
        .as_ref()
        .map(|v| matches!(v, PdbVerdict::KeepsQuorum { .. }));
    // Members' names found in several namespaces (two releases of one chart) and nothing
    // stronger to tell them apart: the page says which it shows, and how to make it certain.
    if let (Some(chosen), false) = (&pick.chosen, pick.uncertain_with.is_empty()) {
        analysis.warnings.push(SpreadWarning {
            level: "warning",
            text: format!(
                "pods named like these members are in namespaces {chosen} and {}: showing {chosen}",
                pick.uncertain_with.join(", ")
            ),
            advice: format!(
                "Say where this cluster's pods are: kubernetes: {{namespace: …, selector: …}} under clusters[] named `{}` in the configuration.",
                cluster.name()
            ),
        });
    }
    let candidate_pods = pods.len();
    // Discovered clusters made of the pods joined here: (namespace, object).
    let own: Vec<(String, String)> = topo
        .discovered()
        .borrow()
        .iter()
        .filter(|d| {
            d.pods.iter().any(|f| {
                matched
                    .iter()
                    .any(|p| p.namespace == d.namespace && p.name == f.name)
            })
        })
        .map(|d| (d.namespace.clone(), d.name.clone()))
        .collect();
    let pod_names: Vec<String> = matched
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    Ok(TopologyReport {
        kubernetes: ks.state,
        source,
        sources,
        operators,
        unmatched_members: placements
            .iter()
            .filter(|p| p.pod.is_none())
            .map(|p| p.member.label())
            .collect(),
        unmatched_pods: strays
            .into_iter()
            .filter(|p| namespaces.contains(&p.namespace))
            .collect(),
        candidate_pods,
        members: placements,
        spread: analysis,
        pdb,
        etcd_clusters: ks.etcd_clusters,
        pod_events: topo
            .pod_events()
            .into_iter()
            .filter(|e| {
                pod_names.iter().any(|n| e.text.contains(n.as_str()))
                    || namespaces
                        .iter()
                        .any(|ns| e.text.contains(&format!("pod {ns}/")))
            })
            .collect(),
        discovered: state
            .discovery_status()
            .iter()
            .filter(|d| {
                !d.browsable
                    || crate::web::auth::current_may(
                        state,
                        &d.name,
                        crate::domain::access::Need::Read,
                    )
            })
            .map(|d| {
                let mut d = d.clone();
                // The pods this page's members run in, found again by discovery: not another
                // cluster to add a rule for.
                if !d.browsable && own.contains(&(d.namespace.clone(), d.object.clone())) {
                    d.reason = Some(format!(
                        "these are the pods of this cluster ({})",
                        cluster.name()
                    ));
                }
                d
            })
            .collect(),
    })
}

/// `GET /api/v1/clusters/{cluster}/topology`.
pub async fn topology_json(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<Json<TopologyReport>, AppError> {
    let c = &state.cluster(&cluster)?;
    Ok(Json(report(&state, c).await?))
}

/// Characters of a label that fit in a node's box (12 px bold text in 170 px, less padding).
/// Longer names (EKS, GKE and AKS node names run to 40) are cut in the middle, so that names
/// that differ only at the end (`…-vmss000000`, `…-vmss000001`) still look different; the full
/// name is the tooltip.
const NODE_LABEL_CHARS: usize = 20;

/// `text` cut to `max` characters with an ellipsis in the middle, when longer.
fn fit(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(1);
    let head = keep / 2;
    let tail = keep - head;
    let mut cut: String = chars[..head].iter().collect();
    cut.push('…');
    cut.extend(&chars[chars.len() - tail..]);
    cut
}

/// A node in the picture: name, Ready, the members on it.
type NodeBox<'a> = (String, bool, Vec<&'a Placement>);

/// Draws zones → nodes → members as SVG (colours come from CSS classes, so it follows dark mode).
/// A member is coloured as its row in the members table is ([`member_health`]): a learner that
/// answers is fine, an alarmed member or one waiting for a leader is a warning, not a failure.
pub fn svg(report: &TopologyReport, quorum_held: bool) -> String {
    let mut zones: Vec<(String, Vec<NodeBox<'_>>)> = Vec::new();
    for p in &report.members {
        let Some(pod) = &p.pod else { continue };
        let zone = p
            .node
            .as_ref()
            .and_then(|n| n.zone.clone())
            .unwrap_or_else(|| "(no zone)".into());
        let node = pod.node.clone().unwrap_or_else(|| "(unscheduled)".into());
        let node_ready = p.node.as_ref().is_some_and(|n| n.ready);
        let zi = match zones.iter().position(|(z, _)| *z == zone) {
            Some(i) => i,
            None => {
                zones.push((zone, Vec::new()));
                zones.len() - 1
            }
        };
        let nodes = &mut zones[zi].1;
        match nodes.iter_mut().find(|(n, _, _)| *n == node) {
            Some((_, _, ms)) => ms.push(p),
            None => nodes.push((node, node_ready, vec![p])),
        }
    }
    if zones.is_empty() {
        return String::new();
    }
    zones.sort_by(|a, b| a.0.cmp(&b.0));
    const NODE_W: usize = 170;
    const ROW_H: usize = 20;
    let max_members = zones
        .iter()
        .flat_map(|(_, n)| n.iter().map(|(_, _, m)| m.len()))
        .max()
        .unwrap_or(1);
    let node_h = 30 + ROW_H * max_members;
    let zone_h = node_h + 40;
    let total_w: usize = zones
        .iter()
        .map(|(_, n)| n.len() * (NODE_W + 10) + 20)
        .sum::<usize>()
        + 10;
    let mut out = format!(
        "<svg class=\"topology\" viewBox=\"0 0 {total_w} {zone_h}\" width=\"{total_w}\" height=\"{zone_h}\" role=\"img\" aria-label=\"zones, nodes and members\">"
    );
    let mut x = 5;
    for (zone, nodes) in &zones {
        let w = nodes.len() * (NODE_W + 10) + 10;
        out.push_str(&format!(
            "<g class=\"zone\"><rect x=\"{x}\" y=\"5\" width=\"{w}\" height=\"{}\" rx=\"8\"/><text x=\"{}\" y=\"22\" class=\"zone-name\">zone {}</text>",
            zone_h - 10,
            x + 10,
            escape_html(zone)
        ));
        let mut nx = x + 10;
        for (node, ready, members) in nodes {
            let cls = if *ready { "node" } else { "node down" };
            let title = format!("{node}{}", if *ready { "" } else { " (NotReady)" });
            // A NotReady node is marked before its name, which may be cut, never the mark.
            let label = if *ready {
                fit(node, NODE_LABEL_CHARS)
            } else {
                format!("⚠ {}", fit(node, NODE_LABEL_CHARS - 2))
            };
            out.push_str(&format!(
                "<g class=\"{cls}\"><title>{}</title><rect x=\"{nx}\" y=\"30\" width=\"{NODE_W}\" height=\"{node_h}\" rx=\"6\"/><text x=\"{}\" y=\"48\" class=\"node-name\">{}</text>",
                escape_html(&title),
                nx + 8,
                escape_html(&label)
            ));
            for (i, p) in members.iter().enumerate() {
                let m = &p.member;
                let (health, state) = member_health(m, quorum_held);
                let name = m.label();
                let title = format!(
                    "{name}{}: {health}",
                    if m.learner { " (learner)" } else { "" }
                );
                let y = 52 + i * ROW_H;
                out.push_str(&format!(
                    "<g class=\"member {state}\"><title>{}</title><rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" rx=\"4\"/><text x=\"{}\" y=\"{}\">{}{}</text></g>",
                    escape_html(&title),
                    nx + 6,
                    NODE_W - 12,
                    ROW_H - 4,
                    nx + 12,
                    y + 12,
                    if m.leader { "★ " } else { "" },
                    escape_html(&fit(&name, NODE_LABEL_CHARS - 2))
                ));
            }
            out.push_str("</g>");
            nx += NODE_W + 10;
        }
        out.push_str("</g>");
        x += w + 10;
    }
    out.push_str("</svg>");
    out
}

/// The topology section's details (sources, operator status, each member pod's recent events) as
/// HTML for the cluster page.
pub fn details_html(report: &TopologyReport) -> String {
    use crate::views::cluster::{EventLine, MemberEvents, OperatorRow, SourceRow, TopologyDetails};
    let view = TopologyDetails {
        sources: report
            .sources
            .iter()
            .map(|s| SourceRow {
                source: s.source.clone(),
                what: s.what,
                found: s.found,
                state: s.state.clone(),
                class: match s.state.as_str() {
                    "watching" => "ok",
                    "not installed" | "starting" => "dim",
                    _ => "bad",
                },
            })
            .collect(),
        operators: report
            .operators
            .iter()
            .map(|o| OperatorRow {
                title: format!("{} {}/{}", o.kind, o.namespace, o.name),
                source: o.source.to_string(),
                class: match o.ready {
                    Some(true) => "ok",
                    Some(false) => "bad",
                    None => "dim",
                },
                summary: o.summary.clone(),
                conditions: o
                    .conditions
                    .iter()
                    .map(|c| {
                        let mut line = format!("{} {}", c.kind, c.status);
                        if let Some(r) = &c.reason {
                            line.push_str(&format!(": {r}"));
                        }
                        if let Some(m) = &c.message {
                            line.push_str(&format!(" — {m}"));
                        }
                        line
                    })
                    .collect(),
            })
            .collect(),
        member_events: report
            .members
            .iter()
            .filter_map(|p| {
                let pod = p.pod.as_ref()?;
                Some(MemberEvents {
                    member: p.member.label(),
                    pod: format!("{}/{}", pod.namespace, pod.name),
                    events: pod
                        .events
                        .iter()
                        .map(|e| EventLine {
                            kind: e.kind.clone(),
                            reason: e.reason.clone(),
                            message: e.message.clone(),
                            count: e.count,
                            age: e.age.clone(),
                        })
                        .collect(),
                })
            })
            .collect(),
    };
    let mut html = askama::Template::render(&view).unwrap_or_default();
    html.push_str(&strays_html(&report.unmatched_pods));
    html.push_str(&discovered_html(&report.discovered));
    html
}

/// Pods beside the members' that are no member: a pod that never joined (the operator's classic
/// failure) or one left over from a removed member.
fn strays_html(pods: &[PodInfo]) -> String {
    if pods.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section class=\"stray-pods\"><h3>Pods that are no member</h3><p class=\"dim\">A pod that never joined the cluster, or one left over from a removed member.</p><ul>",
    );
    for p in pods {
        out.push_str(&format!(
            "<li><span class=\"mono\">{}/{}</span> — {}{}{}</li>",
            escape_html(&p.namespace),
            escape_html(&p.name),
            escape_html(&p.phase),
            if p.ready { ", ready" } else { ", not ready" },
            p.node
                .as_ref()
                .map(|n| format!(", on node {}", escape_html(n)))
                .unwrap_or_default()
        ));
    }
    out.push_str("</ul></section>");
    out
}

/// The discovered clusters as a short list: a link for the browsable ones, the reason for the
/// others (every text escaped: names come from Kubernetes objects).
fn discovered_html(discovered: &[DiscoveryStatus]) -> String {
    if discovered.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("<section class=\"discovered\"><h3>Discovered in Kubernetes</h3><ul>");
    for d in discovered {
        let what = format!(
            "{} ({}, {} pod(s), namespace {})",
            d.name,
            d.source.as_str(),
            d.pods,
            d.namespace
        );
        match &d.reason {
            None => out.push_str(&format!(
                "<li class=\"ok\">{} — browsable</li>",
                escape_html(&what)
            )),
            Some(why) => out.push_str(&format!(
                "<li class=\"dim\">{} — {}</li>",
                escape_html(&what),
                escape_html(why)
            )),
        }
    }
    out.push_str("</ul></section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_with_an_ellipsis_to_fit_their_box() {
        assert_eq!(fit("node-1", NODE_LABEL_CHARS), "node-1");
        let eks = "ip-10-0-12-34.eu-west-1.compute.internal";
        let cut = fit(eks, NODE_LABEL_CHARS);
        assert_eq!(cut.chars().count(), NODE_LABEL_CHARS);
        assert_eq!(cut, "ip-10-0-1…e.internal");
        // Names that differ only at the end stay apart.
        let a = fit("aks-nodepool1-12345678-vmss000000", NODE_LABEL_CHARS);
        let b = fit("aks-nodepool1-12345678-vmss000001", NODE_LABEL_CHARS);
        assert_ne!(a, b);
        assert_eq!(fit("ééééé", 3), "é…é");
    }

    /// The report of one 3-member cluster on three nodes of one zone, from the members given.
    fn report_of(members: Vec<crate::domain::cluster::MemberView>) -> TopologyReport {
        use crate::domain::topology::tests::{node, pod};
        let placed = members
            .into_iter()
            .enumerate()
            .map(|(i, member)| Placement {
                pod: Some(pod(
                    &format!("etcd-{i}"),
                    &format!("node-{i}"),
                    &format!("10.0.0.{i}"),
                    true,
                )),
                node: Some(node(&format!("node-{i}"), "zone-a")),
                member,
                matched_by: Some("name"),
                volumes: vec![],
            })
            .collect();
        TopologyReport {
            kubernetes: KubeState::Ready,
            source: None,
            sources: vec![],
            operators: vec![],
            members: placed,
            unmatched_members: vec![],
            unmatched_pods: vec![],
            candidate_pods: 3,
            spread: crate::domain::topology::spread(&[], true),
            pdb: None,
            etcd_clusters: vec![],
            pod_events: vec![],
            discovered: vec![],
        }
    }

    /// The class and the tooltip of each member's box, in drawing order.
    fn member_boxes(svg: &str) -> Vec<(String, String)> {
        svg.split("<g class=\"member ")
            .skip(1)
            .map(|g| {
                let class = g.split('"').next().unwrap_or_default().to_string();
                let title = g
                    .split_once("<title>")
                    .and_then(|(_, t)| t.split_once("</title>"))
                    .map(|(t, _)| t.to_string())
                    .unwrap_or_default();
                (class, title)
            })
            .collect()
    }

    #[test]
    fn members_are_coloured_as_their_rows_say_a_learner_that_answers_is_fine() {
        use crate::domain::cluster::tests::member;
        let leader = member("a", true, true);
        // A learner that answers as a learner: healthy, though it serves no linearizable read.
        let mut learner = member("b", true, false);
        learner.learner = true;
        learner.serving = false;
        // An alarmed member still serves.
        let mut alarmed = member("c", false, false);
        alarmed.serving = true;
        alarmed.reachable = true;
        let boxes = member_boxes(&svg(&report_of(vec![leader, learner, alarmed]), true));
        assert_eq!(
            boxes,
            [
                ("ok".to_string(), "m-a: ok".to_string()),
                ("ok".to_string(), "m-b (learner): ok".to_string()),
                ("warn".to_string(), "m-c: alarm".to_string()),
            ]
        );

        // Without quorum, members that answer wait for a leader (a warning); a dead one is bad.
        let mut waiting = member("a", false, false);
        waiting.reachable = true;
        let dead = member("b", false, false);
        let boxes = member_boxes(&svg(&report_of(vec![waiting, dead]), false));
        assert_eq!(
            boxes,
            [
                ("warn".to_string(), "m-a: no leader".to_string()),
                ("bad".to_string(), "m-b: down".to_string()),
            ]
        );
    }
}
