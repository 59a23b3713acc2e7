//! PodDisruptionBudgets: which pods one selects, how many of them a drain may evict at once, and
//! whether that keeps etcd's quorum. A budget that exists is not enough: `maxUnavailable: 2` on 3
//! members lets a drain take quorum, and `minAvailable: 3` on 3 blocks every drain.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::topology::LabelSelector;

/// A budget as the spec gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// A number of pods.
    Count(i64),
    /// A percentage of the expected pods (rounded up, as the disruption controller does).
    Percent(i64),
}

impl Budget {
    fn parse(v: &Value) -> Option<Budget> {
        match v {
            Value::Number(n) => n.as_i64().map(Budget::Count),
            Value::String(s) => s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse().ok())
                .map(Budget::Percent)
                .or_else(|| s.trim().parse().ok().map(Budget::Count)),
            _ => None,
        }
    }

    fn of(self, expected: usize) -> usize {
        match self {
            Budget::Count(n) => usize::try_from(n.max(0)).unwrap_or(0),
            Budget::Percent(p) => {
                let p = usize::try_from(p.clamp(0, 100)).unwrap_or(0);
                (expected * p).div_ceil(100)
            }
        }
    }
}

/// A PodDisruptionBudget, as far as quorum needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdb {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Which pods it selects (`None`: a selector this cannot read, taken as selecting none).
    selector: Option<LabelSelector>,
    min_available: Option<Budget>,
    max_unavailable: Option<Budget>,
}

impl Pdb {
    /// Reads a PodDisruptionBudget object (policy/v1 or v1beta1): `spec.selector`
    /// (`matchLabels` and `matchExpressions`), `spec.minAvailable`, `spec.maxUnavailable`.
    pub fn from_object(namespace: &str, name: &str, obj: &Value) -> Pdb {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        Pdb {
            namespace: namespace.to_string(),
            name: name.to_string(),
            selector: spec.get("selector").and_then(selector_of),
            min_available: spec.get("minAvailable").and_then(Budget::parse),
            max_unavailable: spec.get("maxUnavailable").and_then(Budget::parse),
        }
    }

    /// Whether it selects a pod of `namespace` with `labels`.
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespace == namespace && self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }

    /// How many of `expected` selected pods a drain may evict at once. Neither field set means
    /// `minAvailable: 1` (the API's default).
    pub fn allowed_disruptions(&self, expected: usize) -> usize {
        match (self.max_unavailable, self.min_available) {
            (Some(max), _) => max.of(expected).min(expected),
            (None, min) => expected.saturating_sub(min.unwrap_or(Budget::Count(1)).of(expected)),
        }
    }
}

/// A label selector object (`matchLabels`, `matchExpressions`) in the text form the rest of
/// the code reads; `None` when it uses something that form cannot say.
fn selector_of(sel: &Value) -> Option<LabelSelector> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str()?));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key")?.as_str()?;
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            parts.push(match e.get("operator")?.as_str()? {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                _ => return None,
            });
        }
    }
    LabelSelector::parse(&parts.join(",")).ok()
}

/// What the budgets do for a cluster's member pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdbVerdict {
    /// No budget selects every member pod.
    Missing,
    /// The tightest budget over all member pods still lets a drain evict `allows` of `of`
    /// voting members at once: quorum may go.
    TooLax {
        /// The budget's name.
        name: String,
        /// Pods a drain may evict at once.
        allows: usize,
        /// Voting members.
        of: usize,
    },
    /// The budget allows no eviction at all: every drain of a member's node hangs.
    BlocksDrains {
        /// The budget's name.
        name: String,
    },
    /// A drain evicts few enough members at once to keep quorum.
    KeepsQuorum {
        /// The budget's name.
        name: String,
    },
}

/// The verdict of `pdbs` over the member pods of `namespace` (their labels), for `voters`
/// voting members. Eviction must satisfy every budget that selects a pod, so the tightest
/// budget that selects all of them decides.
pub fn verdict(
    pdbs: &[Pdb],
    namespace: &str,
    pod_labels: &[BTreeMap<String, String>],
    voters: usize,
) -> PdbVerdict {
    let covering = pdbs
        .iter()
        .filter(|p| !pod_labels.is_empty() && pod_labels.iter().all(|l| p.selects(namespace, l)));
    let Some((pdb, allows)) = covering
        .map(|p| (p, p.allowed_disruptions(voters)))
        .min_by_key(|(_, allows)| *allows)
    else {
        return PdbVerdict::Missing;
    };
    let majority = voters / 2 + 1;
    let name = pdb.name.clone();
    if allows == 0 {
        PdbVerdict::BlocksDrains { name }
    } else if voters.saturating_sub(allows) < majority {
        PdbVerdict::TooLax {
            name,
            allows,
            of: voters,
        }
    } else {
        PdbVerdict::KeepsQuorum { name }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pdb(name: &str, spec: Value) -> Pdb {
        Pdb::from_object("ns", name, &json!({ "spec": spec }))
    }

    #[test]
    fn budgets_read_like_the_disruption_controller() {
        let sel = json!({"matchLabels": {"app": "etcd"}});
        let allowed = |spec: Value, n| pdb("p", spec).allowed_disruptions(n);
        assert_eq!(allowed(json!({"selector": sel, "maxUnavailable": 1}), 3), 1);
        assert_eq!(allowed(json!({"selector": sel, "maxUnavailable": 2}), 3), 2);
        assert_eq!(allowed(json!({"selector": sel, "minAvailable": 2}), 3), 1);
        assert_eq!(allowed(json!({"selector": sel, "minAvailable": 1}), 3), 2);
        assert_eq!(
            allowed(json!({"selector": sel, "minAvailable": "51%"}), 5),
            2
        );
        assert_eq!(
            allowed(json!({"selector": sel, "maxUnavailable": "34%"}), 3),
            2
        );
        assert_eq!(
            allowed(json!({"selector": sel, "maxUnavailable": "1"}), 3),
            1
        );
        assert_eq!(
            allowed(json!({"selector": sel}), 3),
            2,
            "minAvailable 1 by default"
        );
        assert_eq!(allowed(json!({"selector": sel, "minAvailable": 3}), 3), 0);
    }

    #[test]
    fn selectors_with_expressions_are_read() {
        let p = pdb(
            "p",
            json!({"selector": {"matchExpressions": [
                {"key": "etcd_cluster", "operator": "In", "values": ["etcd-app"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]}, "maxUnavailable": 1}),
        );
        assert!(p.selects("ns", &labels(&[("etcd_cluster", "etcd-app")])));
        assert!(!p.selects("ns", &labels(&[("etcd_cluster", "other")])));
        assert!(!p.selects(
            "ns",
            &labels(&[("etcd_cluster", "etcd-app"), ("canary", "1")])
        ));
        assert!(!p.selects("other-ns", &labels(&[("etcd_cluster", "etcd-app")])));
        let odd = pdb(
            "odd",
            json!({"selector": {"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}}),
        );
        assert!(
            !odd.selects("ns", &labels(&[("k", "2")])),
            "unknown operator selects none"
        );
    }

    #[test]
    fn the_tightest_budget_over_every_member_decides() {
        let pods = vec![labels(&[("app", "etcd")]); 3];
        let sel = json!({"matchLabels": {"app": "etcd"}});
        let lax = pdb("lax", json!({"selector": sel, "maxUnavailable": 2}));
        let good = pdb("good", json!({"selector": sel, "maxUnavailable": 1}));
        let frozen = pdb("frozen", json!({"selector": sel, "minAvailable": 3}));
        let other = pdb(
            "other",
            json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}),
        );
        assert_eq!(verdict(&[], "ns", &pods, 3), PdbVerdict::Missing);
        assert_eq!(
            verdict(std::slice::from_ref(&other), "ns", &pods, 3),
            PdbVerdict::Missing
        );
        assert_eq!(
            verdict(std::slice::from_ref(&lax), "ns", &pods, 3),
            PdbVerdict::TooLax {
                name: "lax".into(),
                allows: 2,
                of: 3
            }
        );
        assert_eq!(
            verdict(&[lax, good.clone(), other], "ns", &pods, 3),
            PdbVerdict::KeepsQuorum {
                name: "good".into()
            }
        );
        assert_eq!(
            verdict(&[good, frozen], "ns", &pods, 3),
            PdbVerdict::BlocksDrains {
                name: "frozen".into()
            }
        );
        // 5 members: 2 at once still leave a majority.
        let two = pdb("two", json!({"selector": sel, "maxUnavailable": 2}));
        let five = vec![labels(&[("app", "etcd")]); 5];
        assert_eq!(
            verdict(&[two], "ns", &five, 5),
            PdbVerdict::KeepsQuorum { name: "two".into() }
        );
    }
}
