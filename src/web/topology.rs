//! The Kubernetes topology of a cluster: the member ↔ pod join, the spread analysis and an SVG
//! picture (zones → nodes → members) drawn by the server, plus the same data as JSON.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::domain::format::escape_html;
use crate::domain::topology::{join, spread, Placement, PodInfo, Spread};
use crate::error::AppError;
use crate::topology::{KubeState, PodEvent};

/// Everything known about where a cluster runs.
#[derive(Debug, Clone, Serialize)]
pub struct TopologyReport {
    /// Kubernetes state (`off`, `connecting`, `ready`, or `error` with the reason and what to do).
    pub kubernetes: KubeState,
    /// Which discovery source found the matched pods.
    pub source: Option<String>,
    /// Members with their pod, node, zone and volumes.
    pub members: Vec<Placement>,
    /// Members without a pod.
    pub unmatched_members: Vec<String>,
    /// Pods in the members' namespace that are no member (starting, or left over).
    pub unmatched_pods: Vec<PodInfo>,
    /// Node and zone failure analysis with warnings.
    pub spread: Spread,
    /// Whether a PodDisruptionBudget covers the pods (`None`: could not be checked).
    pub pdb: Option<bool>,
    /// etcd-operator `EtcdCluster` objects seen: `(namespace/name, summary)`.
    pub etcd_clusters: Vec<(String, String)>,
    /// Pods created and deleted recently (newest first).
    pub pod_events: Vec<PodEvent>,
}

/// Builds the report from the caches (no call to etcd; one bounded PDB lookup).
pub async fn report(
    state: &AppState,
    cluster: &crate::etcd::EtcdCluster,
) -> Result<TopologyReport, AppError> {
    let members = state.monitor(cluster)?.snapshot().members;
    let topo = state.topology();
    let ks = topo.snapshot();
    let pods: Vec<PodInfo> = ks.pods.iter().map(|(_, p)| p.clone()).collect();
    let (placements, strays) = join(&members, &pods, &ks.nodes, &ks.pvcs);
    let matched: Vec<&PodInfo> = placements.iter().filter_map(|p| p.pod.as_ref()).collect();
    let namespaces: Vec<String> = matched.iter().map(|p| p.namespace.clone()).collect();
    let source = matched.first().and_then(|m| {
        ks.pods
            .iter()
            .find(|(_, p)| p.name == m.name && p.namespace == m.namespace)
            .map(|(s, _)| s.clone())
    });
    let pdb = match matched.first() {
        Some(p) => {
            topo.has_pdb(&p.namespace, &topo.pod_labels(&p.namespace, &p.name))
                .await
        }
        None => None,
    };
    let analysis = spread(&placements, pdb.unwrap_or(true));
    let pod_names: Vec<String> = matched
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    Ok(TopologyReport {
        kubernetes: ks.state,
        source,
        unmatched_members: placements
            .iter()
            .filter(|p| p.pod.is_none())
            .map(|p| {
                if p.member.name.is_empty() {
                    p.member.id.clone()
                } else {
                    p.member.name.clone()
                }
            })
            .collect(),
        unmatched_pods: strays
            .into_iter()
            .filter(|p| namespaces.contains(&p.namespace))
            .collect(),
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
    })
}

/// `GET /api/v1/clusters/{cluster}/topology`.
pub async fn topology_json(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<Json<TopologyReport>, AppError> {
    let c = state.cluster(&cluster)?;
    Ok(Json(report(&state, c).await?))
}

/// A node in the picture: name, Ready, the members on it.
type NodeBox<'a> = (String, bool, Vec<&'a Placement>);

/// Draws zones → nodes → members as SVG (colours come from CSS classes, so it follows dark mode).
pub fn svg(report: &TopologyReport) -> String {
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
            out.push_str(&format!(
                "<g class=\"{cls}\"><rect x=\"{nx}\" y=\"30\" width=\"{NODE_W}\" height=\"{node_h}\" rx=\"6\"/><text x=\"{}\" y=\"48\" class=\"node-name\">{}{}</text>",
                nx + 8,
                escape_html(node),
                if *ready { "" } else { " (NotReady)" }
            ));
            for (i, p) in members.iter().enumerate() {
                let m = &p.member;
                let state = if m.serving { "ok" } else { "bad" };
                let name = if m.name.is_empty() {
                    m.id.clone()
                } else {
                    m.name.clone()
                };
                let y = 52 + i * ROW_H;
                out.push_str(&format!(
                    "<g class=\"member {state}\"><rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" rx=\"4\"/><text x=\"{}\" y=\"{}\">{}{}</text></g>",
                    nx + 6,
                    NODE_W - 12,
                    ROW_H - 4,
                    nx + 12,
                    y + 12,
                    if m.leader { "★ " } else { "" },
                    escape_html(&name)
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
