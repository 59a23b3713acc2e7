//! PodDisruptionBudgets, read in the background and reused: a page never waits on the API server
//! for them (a hung API server made every cluster page take 2 s when they were listed per
//! request).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::Topology;
use crate::domain::pdb::Pdb;
use crate::domain::topology::one_line;

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
    /// Why the last read failed, when it did.
    error: Option<String>,
    /// A read is running.
    reading: bool,
}

/// What is known of a namespace's PodDisruptionBudgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdbRead {
    /// As last read.
    Read(Vec<Pdb>),
    /// They cannot be read (forbidden, or no answer), and why.
    Unreadable(String),
    /// The first read has not answered yet.
    NotYet,
}

/// A read older than this is not served while a new one runs: the first page after a long idle
/// waits (at most [`FIRST_READ_WAIT`]) for the new read, as the very first page does.
const PDB_TOO_OLD: Duration = Duration::from_secs(120);

impl Topology {
    /// The PodDisruptionBudgets of `namespace` as last read; `None` while none could be read
    /// yet. A read older than [`PDB_FRESH`] starts a new one in the background.
    pub async fn pdbs(self: &Arc<Self>, namespace: &str) -> PdbRead {
        let Some((first, start)) = self.pdb_cache.lock().ok().map(|mut cache| {
            let entry = cache.by_namespace.entry(namespace.to_string()).or_default();
            let stale = entry.read_at.is_none_or(|t| t.elapsed() > PDB_FRESH);
            let start = stale && !entry.reading;
            if start {
                entry.reading = true;
            }
            let too_old = entry.read_at.is_none_or(|t| t.elapsed() > PDB_TOO_OLD);
            (too_old, start)
        }) else {
            return PdbRead::NotYet;
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
                    match found {
                        Ok(pdbs) => {
                            entry.pdbs = Some(pdbs);
                            entry.error = None;
                        }
                        Err(why) => entry.error = Some(why),
                    }
                }
            });
            if first {
                let _ = tokio::time::timeout(FIRST_READ_WAIT, read).await;
            }
        }
        let Ok(cache) = self.pdb_cache.lock() else {
            return PdbRead::NotYet;
        };
        match cache.by_namespace.get(namespace) {
            Some(PdbEntry {
                error: Some(why), ..
            }) => PdbRead::Unreadable(why.clone()),
            Some(PdbEntry {
                pdbs: Some(pdbs), ..
            }) => PdbRead::Read(pdbs.clone()),
            _ => PdbRead::NotYet,
        }
    }

    /// Lists the budgets of `namespace` (policy/v1, else policy/v1beta1 for API servers before
    /// 1.21); why not, when neither answers with a list (a refusal's own words first).
    async fn read_pdbs(&self, namespace: &str) -> Result<Vec<Pdb>, String> {
        let client = self
            .client
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| "no Kubernetes client".to_string())?;
        let mut why = String::from("no answer");
        for version in ["v1", "v1beta1"] {
            let gvk = GroupVersionKind::gvk("policy", version, "PodDisruptionBudget");
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk));
            let listed =
                tokio::time::timeout(PDB_LIST_DEADLINE, api.list(&ListParams::default())).await;
            match listed {
                Ok(Ok(list)) => {
                    return Ok(list
                        .items
                        .iter()
                        .map(|o| {
                            let name = o.metadata.name.as_deref().unwrap_or_default();
                            Pdb::from_object(namespace, name, &o.data)
                        })
                        .collect())
                }
                // A version the server does not serve says nothing about permissions.
                Ok(Err(kube::Error::Api(status))) if status.code == 404 => {}
                Ok(Err(kube::Error::Api(status))) => {
                    why = one_line(&format!("{} ({})", status.message, status.reason), 300);
                }
                Ok(Err(e)) => why = one_line(&e.to_string(), 200),
                Err(_) => why = format!("no answer in {} s", PDB_LIST_DEADLINE.as_secs()),
            }
        }
        Err(why)
    }
}
