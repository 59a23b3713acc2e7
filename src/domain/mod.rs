//! Pure types and logic, no I/O: keys as bytes, listing pages, the fence index.

pub mod cluster;
pub mod edit;
pub mod fences;
pub mod format;
pub mod k8s_proto;
pub mod key;
pub mod listing;
pub mod metrics;
pub mod record;
pub mod topology;
pub mod transfer;
