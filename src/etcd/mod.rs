//! The only module that talks to etcd (the only user of `etcd_client`): it speaks domain types.

mod barrier;
pub mod gateway;
pub mod index;
pub mod local;
pub mod maintenance;
mod member_watch;
pub mod members;
/// Listing pages answered from memory while the index's watch proves them current.
pub mod page_cache;
mod scrape;
pub mod seed;
pub mod watch;
pub mod writes;

pub use gateway::{EtcdCluster, EtcdError};
