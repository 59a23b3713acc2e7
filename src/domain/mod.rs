//! Pure types and logic, no I/O: keys as bytes, listing pages, the fence index.

/// Roles, grants and the access decision.
pub mod access;
/// How long a large request body may take to arrive: as long as it keeps coming.
pub mod body_pace;
pub mod cluster;
/// Keys deleted recently and their deletion revisions, for the history of a deleted key.
pub mod deletions;
/// Discovered etcd clusters and the `discovery:` rules that make them browsable.
pub mod discovery;
pub mod edit;
pub mod fences;
pub mod format;
pub mod hosts;
/// Import batching (by key count and request bytes), per-key decisions and the report.
pub mod import;
pub mod k8s_proto;
pub mod key;
pub mod listing;
/// Failed sign-ins by user name, and how long the next attempt must wait.
pub mod login_throttle;
pub mod metrics;
/// Listing pages kept in memory while no key in their range changes.
pub mod page_cache;
/// PodDisruptionBudgets: what they select and whether their budget keeps quorum.
pub mod pdb;
pub mod record;
/// Password hashes and signed session cookies of built-in users.
pub mod scrape_token;
pub mod session;
pub mod topology;
pub mod transfer;
