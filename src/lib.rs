//! etcdboard: a web dashboard for etcd clusters that run on Kubernetes.

/// Pure types and logic, no I/O.
pub mod domain;
