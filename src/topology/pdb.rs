//! PodDisruptionBudgets, read in the background and reused: a page never waits on the API server
//! for them (a hung API server made every cluster page take 2 s when they were listed per
//! request).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::Topology;
use crate::domain::pdb::Pdb;

/// A namespace's budgets are read again (in the background) once the last read is this old.
const PDB_FRESH: Duration = Duration::from_secs(30);
/// How long one list call may take.
const PDB_LIST_DEADLINE: Duration = Duration::from_secs(2);
/// The first request for a namespace waits this long for the first read, so a page normally
/// shows the budget's verdict at once; after that, pages use what was last read.
const FIRST_READ_WAIT: Duration = Duration::from_millis(300);

/// The budgets read per namespace.
#[derive(Debug, Default)]
pub(crate) struct PdbCache {
    by_namespace: HashMap<String, PdbEntry>,
}

#[derive(Debug, Default)]
struct PdbEntry {
    /// When the last read ended (answered or failed).
    read_at: Option<Instant>,
    /// What the last successful read found.
    pdbs: Option<Vec<Pdb>>,
    /// A read is running.
    reading: bool,
}

impl Topology {
    /// The PodDisruptionBudgets of `namespace` as last read; `None` while none could be read
    /// yet. A read older than [`PDB_FRESH`] starts a new one in the background.
    pub async fn pdbs(self: &Arc<Self>, namespace: &str) -> Option<Vec<Pdb>> {
        let (first, start) = {
            let mut cache = self.pdb_cache.lock().ok()?;
            let entry = cache.by_namespace.entry(namespace.to_string()).or_default();
            let stale = entry.read_at.is_none_or(|t| t.elapsed() > PDB_FRESH);
            let start = stale && !entry.reading;
            if start {
                entry.reading = true;
            }
            (entry.read_at.is_none(), start)
        };
        if start {
            let me = Arc::clone(self);
            let ns = namespace.to_string();
            let read = tokio::spawn(async move {
                let found = me.read_pdbs(&ns).await;
                if let Ok(mut cache) = me.pdb_cache.lock() {
                    let entry = cache.by_namespace.entry(ns).or_default();
                    entry.reading = false;
                    entry.read_at = Some(Instant::now());
                    if found.is_some() {
                        entry.pdbs = found;
                    }
                }
            });
            if first {
                let _ = tokio::time::timeout(FIRST_READ_WAIT, read).await;
            }
        }
        let cache = self.pdb_cache.lock().ok()?;
        cache.by_namespace.get(namespace)?.pdbs.clone()
    }

    /// Lists the budgets of `namespace` (policy/v1, else policy/v1beta1 for API servers before
    /// 1.21); `None` when neither answers in time.
    async fn read_pdbs(&self, namespace: &str) -> Option<Vec<Pdb>> {
        let client = self.client.lock().ok()?.clone()?;
        for version in ["v1", "v1beta1"] {
            let gvk = GroupVersionKind::gvk("policy", version, "PodDisruptionBudget");
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk));
            let listed =
                tokio::time::timeout(PDB_LIST_DEADLINE, api.list(&ListParams::default())).await;
            if let Ok(Ok(list)) = listed {
                return Some(
                    list.items
                        .iter()
                        .map(|o| {
                            let name = o.metadata.name.as_deref().unwrap_or_default();
                            Pdb::from_object(namespace, name, &o.data)
                        })
                        .collect(),
                );
            }
        }
        None
    }
}
