//! etcdboard: a web dashboard for etcd clusters that run on Kubernetes.
//!
//! A request flows router → handler (`web`) → domain parsing (`domain`) → etcd gateway (`etcd`) →
//! view (`views`) → template; errors end in [`error::AppError`].

/// Access settings: identity source, role policy, audit target.
pub mod access;
/// Building and running the server: state, router, listener.
pub mod app;
/// The audit log of changes.
pub mod audit;
/// Typed configuration from flags, env and file.
pub mod config;
/// `etcdboard demo`: a local etcd with sample data, and the dashboard on it.
pub mod demo;
/// Pure types and logic, no I/O.
pub mod domain;
/// One error type and its responses.
pub mod error;
/// The etcd gateway: per-member clients, bounded reads, the fence index, local clusters.
pub mod etcd;
/// The dashboard's own metrics (`/metrics`, OpenMetrics).
pub mod metrics;
/// Watching each cluster: members, timeline, metrics.
pub mod monitor;
/// Logging setup.
pub mod telemetry;
/// The Kubernetes side: discovery and watch-driven caches (the only user of kube).
pub mod topology;
/// askama view structs.
pub mod views;
/// HTTP handlers.
pub mod web;
