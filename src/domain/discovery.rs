//! Discovered etcd clusters and the rules that make them browsable, as pure data and functions.
//!
//! Kubernetes only *proposes* clusters (pods grouped by the operator or chart that runs them);
//! the configuration decides. A proposal is dialled only when a `discovery:` rule of the config
//! file matches its namespace and source, and then only at endpoints derived from Kubernetes
//! objects (pod IPs and container ports), never from a request. Credentials come from the rule.

use std::collections::BTreeMap;

use serde::Serialize;

/// Client port of etcd when a pod does not name a container port `client`.
pub const DEFAULT_CLIENT_PORT: u16 = 2379;

/// The longest cluster name (the configuration's rule: 1–63 of letters, digits, `-`, `.`, `_`).
const MAX_NAME: usize = 63;

/// Which kind of deployment a discovered cluster was found through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiscoverySource {
    /// CoreOS etcd-operator: pods labelled `etcd_cluster=<name>`.
    EtcdOperator,
    /// The etcd project's operator (`operator.etcd.io`).
    #[serde(rename = "operator.etcd.io")]
    OperatorEtcdIo,
    /// Gardener etcd-druid.
    Druid,
    /// A StatefulSet such as the Bitnami chart's (`app.kubernetes.io/name=etcd`).
    Statefulset,
    /// kubeadm's stacked etcd static pods in `kube-system`.
    Kubeadm,
}

impl DiscoverySource {
    /// Every source, in the order they are tried when a pod could belong to several.
    pub const ALL: [DiscoverySource; 5] = [
        DiscoverySource::EtcdOperator,
        DiscoverySource::OperatorEtcdIo,
        DiscoverySource::Druid,
        DiscoverySource::Statefulset,
        DiscoverySource::Kubeadm,
    ];

    /// The name used in the config file and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscoverySource::EtcdOperator => "etcd-operator",
            DiscoverySource::OperatorEtcdIo => "operator.etcd.io",
            DiscoverySource::Druid => "druid",
            DiscoverySource::Statefulset => "statefulset",
            DiscoverySource::Kubeadm => "kubeadm",
        }
    }

    /// Parses a config-file name (`etcd-operator`, `operator.etcd.io`, `druid`, `statefulset`,
    /// `kubeadm`).
    pub fn parse(text: &str) -> Result<DiscoverySource, String> {
        DiscoverySource::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim())
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a discovery source (one of {})",
                    DiscoverySource::ALL.map(DiscoverySource::as_str).join(", ")
                )
            })
    }
}

/// A namespace pattern: a namespace name where `*` stands for any run of characters and `?` for
/// one (`prod-*`, `team-?-etcd`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceGlob(String);

impl NamespaceGlob {
    /// Accepts what a namespace may contain (lowercase letters, digits, `-`) plus `*` and `?`.
    pub fn parse(text: &str) -> Result<NamespaceGlob, String> {
        let t = text.trim();
        let ok = !t.is_empty()
            && t.len() <= 63
            && t.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'*' | b'?')
            });
        if ok {
            Ok(NamespaceGlob(t.to_string()))
        } else {
            Err(format!(
                "`{text}` is not a namespace pattern (lowercase letters, digits, `-`, and `*` or `?` as wildcards)"
            ))
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `namespace` matches the whole pattern.
    pub fn matches(&self, namespace: &str) -> bool {
        glob_match(self.0.as_bytes(), namespace.as_bytes())
    }
}

/// `*`/`?` matching with one backtrack point (linear for patterns like these).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == b'?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|c| *c == b'*')
}

/// The matching part of a `discovery:` rule (its credentials stay in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// Namespaces it covers.
    pub namespaces: Vec<NamespaceGlob>,
    /// Sources it covers (every source when the file does not say).
    pub sources: Vec<DiscoverySource>,
}

impl RuleMatch {
    /// Whether a cluster found through `source` in `namespace` is covered.
    pub fn matches(&self, namespace: &str, source: DiscoverySource) -> bool {
        self.sources.contains(&source) && self.namespaces.iter().any(|g| g.matches(namespace))
    }
}

/// The first rule (in file order) covering `namespace` and `source`, by index.
pub fn first_rule(rules: &[RuleMatch], namespace: &str, source: DiscoverySource) -> Option<usize> {
    rules.iter().position(|r| r.matches(namespace, source))
}

/// Whether `name` may name a cluster (in URLs): 1–63 of ASCII letters, digits, `-`, `.`, `_`.
pub fn is_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-._".contains(ch))
}

/// What discovery needs to know about one pod, read from its spec, status and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodFacts {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `status.podIP`.
    pub ip: Option<String>,
    /// The container port named `client`, when any container has one.
    pub client_port: Option<u16>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The controlling owner as `(kind, name)`, e.g. `("StatefulSet", "etcd")`.
    pub owner: Option<(String, String)>,
    /// Phase; `Failed` and `Succeeded` pods serve nothing.
    pub phase: String,
    /// Being deleted (`metadata.deletionTimestamp` set).
    pub terminating: bool,
}

impl PodFacts {
    /// Whether the pod can be asked: it has an IP and is neither finished nor going away.
    pub fn serves(&self) -> bool {
        self.ip.as_deref().is_some_and(|ip| !ip.is_empty())
            && !self.terminating
            && !matches!(self.phase.as_str(), "Failed" | "Succeeded")
    }

    /// Its client URL: `scheme://IP:port`, IPv6 in brackets; `None` when it cannot serve.
    pub fn client_url(&self, https: bool) -> Option<String> {
        if !self.serves() {
            return None;
        }
        let ip = self.ip.as_deref()?;
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let scheme = if https { "https" } else { "http" };
        let port = self.client_port.unwrap_or(DEFAULT_CLIENT_PORT);
        Some(format!("{scheme}://{host}:{port}"))
    }
}

/// The etcd cluster a pod found through `source` belongs to (the operator's object name, the
/// StatefulSet's name, or `etcd` for kubeadm's one cluster per control plane); `None` when the
/// pod does not say.
pub fn cluster_of(source: DiscoverySource, pod: &PodFacts) -> Option<String> {
    let label = |k: &str| pod.labels.get(k).filter(|v| !v.is_empty()).cloned();
    let statefulset = || {
        pod.owner
            .as_ref()
            .filter(|(kind, _)| kind == "StatefulSet")
            .map(|(_, name)| name.clone())
    };
    match source {
        DiscoverySource::EtcdOperator => label("etcd_cluster"),
        DiscoverySource::OperatorEtcdIo | DiscoverySource::Druid | DiscoverySource::Statefulset => {
            statefulset().or_else(|| label("app.kubernetes.io/instance"))
        }
        DiscoverySource::Kubeadm => Some("etcd".into()),
    }
}

/// An etcd cluster Kubernetes shows: where it is, how it was found, and its pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredCluster {
    /// Namespace.
    pub namespace: String,
    /// The operator object's or StatefulSet's name.
    pub name: String,
    /// How it was found.
    pub source: DiscoverySource,
    /// Its pods, by name.
    pub pods: Vec<PodFacts>,
}

impl DiscoveredCluster {
    /// Its name in etcdboard (`{namespace}.{name}`); a configured name never contains a pod's
    /// namespace by accident, and a clash is resolved for the configured cluster elsewhere.
    /// `Err` says why it cannot be used as a name.
    pub fn cluster_name(&self) -> Result<String, String> {
        let name = format!("{}.{}", self.namespace, self.name);
        if is_cluster_name(&name) {
            Ok(name)
        } else {
            Err(format!(
                "`{name}` cannot be a cluster name (at most {MAX_NAME} letters, digits, `-`, `.`, `_`)"
            ))
        }
    }

    /// Client URLs of the pods that can serve, sorted: what the gateway dials.
    pub fn endpoints(&self, https: bool) -> Vec<String> {
        let mut out: Vec<String> = self
            .pods
            .iter()
            .filter_map(|p| p.client_url(https))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Groups pods into clusters. `pods` come with the source whose watch found them; a pod seen by
/// several sources counts once, for the first in [`DiscoverySource::ALL`] order that can name its
/// cluster. The result is sorted by namespace and name, pods by name, so equal inputs give equal
/// outputs (a publisher can skip unchanged results).
pub fn group(pods: &[(DiscoverySource, PodFacts)]) -> Vec<DiscoveredCluster> {
    let mut ordered: Vec<&(DiscoverySource, PodFacts)> = pods.iter().collect();
    ordered.sort_by_key(|(s, _)| *s);
    let mut seen = std::collections::HashSet::new();
    let mut clusters: BTreeMap<(String, String), DiscoveredCluster> = BTreeMap::new();
    for (source, pod) in ordered {
        let Some(name) = cluster_of(*source, pod) else {
            continue;
        };
        if !seen.insert((pod.namespace.clone(), pod.name.clone())) {
            continue;
        }
        clusters
            .entry((pod.namespace.clone(), name.clone()))
            .or_insert_with(|| DiscoveredCluster {
                namespace: pod.namespace.clone(),
                name,
                source: *source,
                pods: Vec::new(),
            })
            .pods
            .push(pod.clone());
    }
    clusters
        .into_values()
        .map(|mut c| {
            c.pods.sort_by(|a, b| a.name.cmp(&b.name));
            c
        })
        .collect()
}

/// At most this many discovered clusters are browsable at once (each costs a gateway, a
/// monitor polling every few seconds and metrics labels).
pub const MAX_BROWSABLE: usize = 100;

/// A configured cluster as discovery needs to see it: its name, and its `kubernetes:` target
/// when it has one.
#[derive(Debug, Clone, Copy)]
pub struct Configured<'a> {
    /// Its name.
    pub name: &'a str,
    /// Where its pods are, when configured.
    pub target: Option<&'a crate::domain::topology::KubeTarget>,
}

/// What the configuration makes of one proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The proposal.
    pub cluster: DiscoveredCluster,
    /// The name it is (or would be) browsed under; `namespace.name` even when that is invalid.
    pub name: String,
    /// The rule that covers it (by index), when browsable.
    pub rule: Option<usize>,
    /// Where it is dialled, when browsable.
    pub endpoints: Vec<String>,
    /// Why it is not browsable.
    pub reason: Option<String>,
}

impl Verdict {
    /// Whether it is dialled.
    pub fn browsable(&self) -> bool {
        self.reason.is_none()
    }

    /// The verdict as shown on the topology side.
    pub fn status(&self) -> DiscoveryStatus {
        DiscoveryStatus {
            name: self.name.clone(),
            namespace: self.cluster.namespace.clone(),
            object: self.cluster.name.clone(),
            source: self.cluster.source,
            pods: self.cluster.pods.len(),
            browsable: self.browsable(),
            reason: self.reason.clone(),
        }
    }
}

/// One discovered cluster as the topology answer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveryStatus {
    /// The name it is (or would be) browsed under.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// The operator object's or StatefulSet's name.
    pub object: String,
    /// How it was found.
    pub source: DiscoverySource,
    /// Pods found.
    pub pods: usize,
    /// Whether etcdboard dials it (a `discovery:` rule covers it).
    pub browsable: bool,
    /// Why not, in plain words with what to do.
    pub reason: Option<String>,
}

/// Decides, for each proposal, whether it is browsed and where. `rules` are the `discovery:`
/// rules with whether each dials https. A proposal is browsable only when a rule covers its
/// namespace and source, its name is valid and free (a configured cluster of that name wins), its
/// pods are not a configured cluster's `kubernetes:` target, at least one pod can serve, and
/// fewer than [`MAX_BROWSABLE`] came before it.
pub fn decide(
    proposals: &[DiscoveredCluster],
    rules: &[(RuleMatch, bool)],
    configured: &[Configured<'_>],
) -> Vec<Verdict> {
    let matchers: Vec<RuleMatch> = rules.iter().map(|(m, _)| m.clone()).collect();
    let mut browsable = 0;
    proposals
        .iter()
        .map(|c| {
            let mut verdict = Verdict {
                cluster: c.clone(),
                name: format!("{}.{}", c.namespace, c.name),
                rule: None,
                endpoints: Vec::new(),
                reason: None,
            };
            let covering = configured.iter().find(|k| {
                k.target.is_some_and(|t| {
                    t.namespace == c.namespace
                        && c.pods.iter().any(|p| t.selector.matches(&p.labels))
                })
            });
            let reason = match (first_rule(&matchers, &c.namespace, c.source), c.cluster_name()) {
                (None, _) => Some(format!(
                    "discovered, not browsable: add a discovery rule for namespace `{}` and source `{}`",
                    c.namespace,
                    c.source.as_str()
                )),
                (Some(_), Err(why)) => Some(format!("discovered, not browsable: {why}")),
                (Some(_), Ok(name)) if configured.iter().any(|k| k.name == name) => Some(format!(
                    "a configured cluster is named `{name}`; that one is used"
                )),
                (Some(_), Ok(_)) if covering.is_some() => Some(format!(
                    "these are the pods of the configured cluster `{}`",
                    covering.map(|k| k.name).unwrap_or_default()
                )),
                (Some(i), Ok(_)) => {
                    let endpoints = c.endpoints(rules[i].1);
                    if endpoints.is_empty() {
                        Some("discovered, not browsable yet: no pod has an IP".to_string())
                    } else if browsable >= MAX_BROWSABLE {
                        Some(format!(
                            "discovered, not browsable: more than {MAX_BROWSABLE} discovered clusters"
                        ))
                    } else {
                        browsable += 1;
                        verdict.rule = Some(i);
                        verdict.endpoints = endpoints;
                        None
                    }
                }
            };
            verdict.reason = reason;
            verdict
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, ip: Option<&str>, labels: &[(&str, &str)]) -> PodFacts {
        PodFacts {
            namespace: ns.into(),
            name: name.into(),
            ip: ip.map(str::to_string),
            client_port: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            owner: None,
            phase: "Running".into(),
            terminating: false,
        }
    }

    fn rule(namespaces: &[&str], sources: &[DiscoverySource]) -> RuleMatch {
        RuleMatch {
            namespaces: namespaces
                .iter()
                .map(|n| NamespaceGlob::parse(n).unwrap())
                .collect(),
            sources: sources.to_vec(),
        }
    }

    #[test]
    fn namespace_patterns_match_whole_names() {
        let g = NamespaceGlob::parse("prod-*").unwrap();
        assert!(g.matches("prod-a") && g.matches("prod-") && g.matches("prod-eu-1"));
        assert!(!g.matches("prod") && !g.matches("staging-prod-a") && !g.matches("xprod-a"));
        let g = NamespaceGlob::parse("team-?-etcd").unwrap();
        assert!(g.matches("team-a-etcd") && !g.matches("team-ab-etcd"));
        assert!(NamespaceGlob::parse("*").unwrap().matches("anything"));
        let g = NamespaceGlob::parse("*-etcd-*").unwrap();
        assert!(g.matches("a-etcd-b") && g.matches("-etcd-") && !g.matches("a-etcd"));
        assert!(NamespaceGlob::parse("kube-system")
            .unwrap()
            .matches("kube-system"));
        assert!(!NamespaceGlob::parse("kube-system")
            .unwrap()
            .matches("kube-systems"));
        for bad in ["", "Prod-*", "prod/a", "prod a", "[a-z]"] {
            assert!(NamespaceGlob::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rule_needs_both_namespace_and_source() {
        use DiscoverySource::*;
        let rules = [
            rule(&["prod-*"], &[EtcdOperator]),
            rule(&["kube-system", "prod-*"], &DiscoverySource::ALL),
        ];
        assert_eq!(first_rule(&rules, "prod-a", EtcdOperator), Some(0));
        assert_eq!(first_rule(&rules, "prod-a", Statefulset), Some(1));
        assert_eq!(first_rule(&rules, "kube-system", Kubeadm), Some(1));
        assert_eq!(first_rule(&rules, "staging", EtcdOperator), None);
        assert_eq!(first_rule(&[], "prod-a", EtcdOperator), None);
        assert_eq!(DiscoverySource::parse("druid"), Ok(Druid));
        assert_eq!(
            DiscoverySource::parse("operator.etcd.io"),
            Ok(OperatorEtcdIo)
        );
        assert!(DiscoverySource::parse("helm")
            .unwrap_err()
            .contains("etcd-operator, operator.etcd.io, druid, statefulset, kubeadm"));
    }

    #[test]
    fn names_are_namespace_dot_name_and_must_fit() {
        let c = DiscoveredCluster {
            namespace: "prod-a".into(),
            name: "etcd-app".into(),
            source: DiscoverySource::EtcdOperator,
            pods: Vec::new(),
        };
        assert_eq!(c.cluster_name().unwrap(), "prod-a.etcd-app");
        let long = DiscoveredCluster {
            name: "x".repeat(60),
            ..c.clone()
        };
        assert!(long
            .cluster_name()
            .unwrap_err()
            .contains("cannot be a cluster name"));
        assert!(is_cluster_name("a.b_c-d") && !is_cluster_name("a/b") && !is_cluster_name(""));
    }

    #[test]
    fn endpoints_come_from_serving_pods_ips_and_client_ports() {
        let mut a = pod("ns", "a", Some("10.0.0.2"), &[]);
        a.client_port = Some(32379);
        let b = pod("ns", "b", Some("10.0.0.1"), &[]);
        let c = pod("ns", "c", None, &[]);
        let mut d = pod("ns", "d", Some("10.0.0.4"), &[]);
        d.terminating = true;
        let mut e = pod("ns", "e", Some("10.0.0.5"), &[]);
        e.phase = "Failed".into();
        let f = pod("ns", "f", Some("fd00::6"), &[]);
        let cluster = DiscoveredCluster {
            namespace: "ns".into(),
            name: "x".into(),
            source: DiscoverySource::Statefulset,
            pods: vec![a, b, c, d, e, f],
        };
        assert_eq!(
            cluster.endpoints(false),
            [
                "http://10.0.0.1:2379",
                "http://10.0.0.2:32379",
                "http://[fd00::6]:2379"
            ]
        );
        assert!(cluster
            .endpoints(true)
            .iter()
            .all(|u| u.starts_with("https://")));
    }

    #[test]
    fn only_a_rule_makes_a_proposal_browsable_and_configured_clusters_win() {
        use crate::domain::topology::KubeTarget;
        use DiscoverySource::*;
        let cluster = |ns: &str, name: &str, ip: Option<&str>| DiscoveredCluster {
            namespace: ns.into(),
            name: name.into(),
            source: EtcdOperator,
            pods: vec![pod(ns, &format!("{name}-0"), ip, &[("etcd_cluster", name)])],
        };
        let proposals = [
            cluster("prod-a", "app", Some("10.0.0.1")),
            cluster("staging", "app", Some("10.0.0.2")),
            cluster("prod-b", "taken", Some("10.0.0.3")),
            cluster("prod-c", "mine", Some("10.0.0.4")),
            cluster("prod-d", "starting", None),
            cluster("prod-e", &"x".repeat(60), Some("10.0.0.5")),
        ];
        let rules = [(rule(&["prod-*"], &[EtcdOperator]), true)];
        let target = KubeTarget::parse("prod-c", "etcd_cluster=mine").unwrap();
        let configured = [
            Configured {
                name: "prod-b.taken",
                target: None,
            },
            Configured {
                name: "main",
                target: Some(&target),
            },
        ];
        let verdicts = decide(&proposals, &rules, &configured);
        let v = |name: &str| verdicts.iter().find(|v| v.name == name).unwrap();
        assert!(v("prod-a.app").browsable());
        assert_eq!(v("prod-a.app").endpoints, ["https://10.0.0.1:2379"]);
        assert_eq!(v("prod-a.app").rule, Some(0));
        let no_rule = v("staging.app");
        assert!(!no_rule.browsable() && no_rule.endpoints.is_empty());
        assert!(no_rule
            .reason
            .as_deref()
            .unwrap()
            .contains("not browsable: add a discovery rule"));
        assert!(v("prod-b.taken")
            .reason
            .as_deref()
            .unwrap()
            .contains("configured"));
        assert!(v("prod-c.mine")
            .reason
            .as_deref()
            .unwrap()
            .contains("`main`"));
        assert!(v("prod-d.starting")
            .reason
            .as_deref()
            .unwrap()
            .contains("no pod has an IP"));
        let long = format!("prod-e.{}", "x".repeat(60));
        assert!(v(&long)
            .reason
            .as_deref()
            .unwrap()
            .contains("cannot be a cluster name"));
        let status = v("staging.app").status();
        assert_eq!((status.pods, status.browsable), (1, false));
        // Without rules nothing is ever browsable.
        assert!(decide(&proposals, &[], &[]).iter().all(|v| !v.browsable()));
    }

    #[test]
    fn pods_are_grouped_per_cluster_and_counted_once() {
        use DiscoverySource::*;
        let op = |ns: &str, name: &str, cluster: &str| {
            pod(ns, name, Some("10.0.0.1"), &[("etcd_cluster", cluster)])
        };
        let mut sts = pod(
            "data",
            "etcd-0",
            Some("10.0.1.1"),
            &[("app.kubernetes.io/name", "etcd")],
        );
        sts.owner = Some(("StatefulSet".into(), "etcd".into()));
        let by_instance = pod(
            "data",
            "etcd-1",
            Some("10.0.1.2"),
            &[("app.kubernetes.io/instance", "etcd")],
        );
        let nameless = pod("data", "stray", Some("10.0.1.3"), &[]);
        let pods = vec![
            (Statefulset, sts),
            (EtcdOperator, op("prod-a", "app-1", "app")),
            (EtcdOperator, op("prod-a", "app-0", "app")),
            (EtcdOperator, op("prod-a", "other-0", "other")),
            (Statefulset, by_instance),
            (Statefulset, nameless),
            // The same pod seen by a second source counts once, for etcd-operator.
            (Statefulset, op("prod-a", "app-0", "app")),
            (
                Kubeadm,
                pod("kube-system", "etcd-node-1", Some("192.168.0.1"), &[]),
            ),
        ];
        let got: Vec<(String, DiscoverySource, Vec<String>)> = group(&pods)
            .into_iter()
            .map(|c| {
                (
                    c.cluster_name().unwrap(),
                    c.source,
                    c.pods.into_iter().map(|p| p.name).collect(),
                )
            })
            .collect();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            [
                (
                    "data.etcd".to_string(),
                    Statefulset,
                    names(&["etcd-0", "etcd-1"])
                ),
                (
                    "kube-system.etcd".to_string(),
                    Kubeadm,
                    names(&["etcd-node-1"])
                ),
                (
                    "prod-a.app".to_string(),
                    EtcdOperator,
                    names(&["app-0", "app-1"])
                ),
                (
                    "prod-a.other".to_string(),
                    EtcdOperator,
                    names(&["other-0"])
                ),
            ]
        );
    }
}
