//! What one listing page costs etcd itself: the CPU time of the 3 members per page, for each kind
//! of page the key browser asks for, one page at a time.
//!
//! Run with `cargo bench --bench etcd_cost` (about two minutes once built). It loads 300,000
//! flat numeric keys and 1,000 directories × 300 keys into a fresh local 3-member etcd, builds a
//! fence index, then lists 1,500 random pages of each kind with etcdboard's listing code called
//! directly (no HTTP, no page cache), and prints per page: wall time, CPU of the etcd members
//! together, CPU of this process (etcdboard's side of the reads), range operations and round
//! trips. Each kind is read twice as of now (linearizable) and twice pinned to one revision
//! (serializable snapshot reads), alternating, so drift shows as the spread between passes. A
//! one-key `get` is the reference: what etcd spends on the smallest request at all.
//!
//! This is the figure behind "a page costs etcd about a millisecond of CPU": it does not depend on
//! how busy the machine is with other work, unlike the listing bench's writer phases.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use etcdboard::config::ClusterConfig;
use etcdboard::domain::listing::{
    list_page, Batch, FenceView, ListReq, Mode, RangeReq, RangeSource,
};
use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};
use etcdboard::etcd::{EtcdCluster, EtcdError};

mod common;

use common::{cpu_secs, load, main_of, with_timeout, Res, Rng};

const COMMAND: &str = "cargo bench --bench etcd_cost";
/// Flat numeric keys `1` … `FLAT`.
const FLAT: u64 = 300_000;
/// Directories `/h/d0000/` … and keys per directory.
const DIRS: u64 = 1_000;
const PER_DIR: u64 = 300;
/// Pages per series.
const PAGES: u64 = 1_500;
/// Page size, as the bench and the UI use.
const PAGE: usize = 100;
fn main() -> ExitCode {
    main_of("etcd_cost", COMMAND, run())
}

/// The gateway, counting the rounds and range operations a page asks for.
struct Counting {
    cluster: Arc<EtcdCluster>,
    ops: AtomicU64,
    rounds: AtomicU64,
}

impl RangeSource for Counting {
    type Error = EtcdError;
    async fn ranges(&self, reqs: Vec<RangeReq>, revision: Option<i64>) -> Result<Batch, EtcdError> {
        self.ops.fetch_add(reqs.len() as u64, Ordering::Relaxed);
        self.rounds.fetch_add(1, Ordering::Relaxed);
        self.cluster.ranges(reqs, revision).await
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A flat page from a random numeric key.
    Flat,
    /// The tree level `/h/` (1,000 directories) from a random directory.
    TreeOfDirs,
    /// The first page of a random directory (300 plain keys).
    TreeOfKeys,
    /// One `get` of a random key, keys only: the smallest request.
    OneKeyGet,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Flat => "flat page from a random key",
            Kind::TreeOfDirs => "tree: /h/ from a random dir",
            Kind::TreeOfKeys => "tree: first page of a dir",
            Kind::OneKeyGet => "reference: one-key get",
        }
    }

    fn request(self, rng: &mut Rng) -> ListReq {
        let tree = Mode::Tree { sep: b"/".to_vec() };
        match self {
            Kind::Flat => ListReq {
                start: (1 + rng.below(FLAT)).to_string().into_bytes(),
                ..ListReq::first(Vec::new(), Mode::Flat, PAGE)
            },
            Kind::TreeOfDirs => ListReq {
                start: format!("/h/d{:04}/", rng.below(DIRS)).into_bytes(),
                ..ListReq::first(b"/h/".to_vec(), tree, PAGE)
            },
            Kind::TreeOfKeys | Kind::OneKeyGet => ListReq::first(
                format!("/h/d{:04}/", rng.below(DIRS)).into_bytes(),
                tree,
                PAGE,
            ),
        }
    }
}

/// Key `i` of the key space: the flat numeric keys, then the directories' keys.
fn key_value(i: u64) -> (Vec<u8>, Vec<u8>) {
    let key = if i < FLAT {
        (i + 1).to_string()
    } else {
        let j = i - FLAT;
        format!("/h/d{:04}/k{:04}", j / PER_DIR, j % PER_DIR)
    };
    (key.into_bytes(), b"v".to_vec())
}

async fn run() -> Res<()> {
    let mut cluster = LocalCluster::start(LocalClusterOptions {
        members: 3,
        ..Default::default()
    })
    .await?;
    let result = measure(&cluster).await;
    cluster.shutdown();
    result
}

async fn measure(cluster: &LocalCluster) -> Res<()> {
    let endpoints = cluster.client_urls();
    let pids: Vec<u32> = (0..3).filter_map(|i| cluster.pid(i)).collect();
    if pids.len() != 3 {
        return Err("an etcd member has no pid".into());
    }
    let client = with_timeout("connect", Client::connect(endpoints.clone(), None)).await?;
    let n = FLAT + DIRS * PER_DIR;
    let took = load(&client, n, key_value).await?;
    let gateway = EtcdCluster::new(
        &ClusterConfig {
            name: "bench".into(),
            endpoints,
            ..Default::default()
        },
        Duration::from_secs(5),
    )?;
    gateway.ensure_index();
    let index_started = Instant::now();
    while !gateway.index().is_ready() {
        if index_started.elapsed() > Duration::from_secs(180) {
            return Err("the fence index was not ready within 180 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("command: {COMMAND}");
    println!(
        "setup: {} cores; 3-member local etcd; {n} keys loaded in {:.1} s ({FLAT} flat, {DIRS} dirs × {PER_DIR}); fence index ready in {:.1} s",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        took.as_secs_f64(),
        index_started.elapsed().as_secs_f64()
    );
    println!("{PAGES} random pages per series, one at a time, listing code called directly (no HTTP, no page cache)");
    println!(
        "{:<30} {:<8} {:>10} {:>14} {:>15} {:>9} {:>7}",
        "kind", "read", "ms/page", "etcd CPU ms", "our CPU ms", "ops", "rounds"
    );
    let source = Counting {
        cluster: gateway.clone(),
        ops: AtomicU64::new(0),
        rounds: AtomicU64::new(0),
    };
    let cpu = |pid: u32| cpu_secs(pid).ok_or_else(|| format!("no CPU time for pid {pid}"));
    let etcd_cpu = || -> Res<f64> { Ok(pids.iter().map(|p| cpu(*p)).sum::<Result<f64, _>>()?) };
    let own_pid = std::process::id();
    for kind in [
        Kind::Flat,
        Kind::TreeOfDirs,
        Kind::TreeOfKeys,
        Kind::OneKeyGet,
    ] {
        for pinned in [false, true, false, true] {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            let mut c = client.clone();
            let revision = with_timeout(
                "revision",
                c.get("x", Some(GetOptions::new().with_count_only())),
            )
            .await?
            .header()
            .map_or(0, |h| h.revision());
            source.ops.store(0, Ordering::Relaxed);
            source.rounds.store(0, Ordering::Relaxed);
            let (etcd0, own0, started) = (etcd_cpu()?, cpu(own_pid)?, Instant::now());
            for _ in 0..PAGES {
                let mut req = kind.request(&mut rng);
                if kind == Kind::OneKeyGet {
                    let mut o = GetOptions::new().with_keys_only();
                    if pinned {
                        o = o.with_serializable().with_revision(revision);
                    }
                    let mut key = req.prefix;
                    key.extend_from_slice(format!("k{:04}", rng.below(PER_DIR)).as_bytes());
                    with_timeout("get", c.get(key, Some(o))).await?;
                    continue;
                }
                req.revision = pinned.then_some(revision);
                let fences: Option<&(dyn FenceView + Sync)> = Some(gateway.index().as_ref());
                list_page(&source, fences, &req).await?;
            }
            let per_page = |x: f64| 1000.0 * x / PAGES as f64;
            println!(
                "{:<30} {:<8} {:>10.3} {:>14.3} {:>15.3} {:>9.1} {:>7.2}",
                kind.label(),
                if pinned { "pinned" } else { "as of now" },
                per_page(started.elapsed().as_secs_f64()),
                per_page(etcd_cpu()? - etcd0),
                per_page(cpu(own_pid)? - own0),
                source.ops.load(Ordering::Relaxed) as f64 / PAGES as f64,
                source.rounds.load(Ordering::Relaxed) as f64 / PAGES as f64,
            );
        }
    }
    println!("as of now = linearizable reads (the leader confirms its leadership with a heartbeat round);");
    println!("pinned = serializable snapshot reads at one revision from any member; CPU from /proc/PID/stat");
    Ok(())
}
