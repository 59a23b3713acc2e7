//! Integration tests against real things: a real 3-member etcd, a real browser, real nginx.
//! One binary, so helpers are compiled once.

// Tests may panic on the unexpected: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod api;
mod big_values;
mod browser;
mod browser_edit;
mod bulk;
mod cluster;
mod demo;
mod deploy;
mod discovery;
mod edit;
mod etcd_tls;
mod failure;
mod fresh;
mod helpers;
mod ingress;
mod k8s_values;
mod ops;
mod page_cache;
mod replicas;
mod security;
mod security_browser;
mod support_browser;
mod support_kube;
mod support_nginx;
mod support_tls;
mod topology;
mod transfer;
