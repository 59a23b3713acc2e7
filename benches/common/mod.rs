//! What the benches share: their `main`, bounded etcd calls, loading keys, a page picker and
//! reading a process's CPU time. Included by each bench with `mod common;` (a directory, so cargo
//! does not take it for a bench of its own).

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use etcd_client::{Client, Txn, TxnOp};
use futures::stream::{self, StreamExt, TryStreamExt};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

pub fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(msg.into().into())
}

/// Deadline of any single etcd call or HTTP request of a bench.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Puts per load txn (etcd's default `--max-txn-ops`).
pub const TXN_OPS: u64 = 128;
/// Load txns in flight.
pub const TXNS_IN_FLIGHT: usize = 8;

/// A bench's `main`: refuses to run without `--bench` (which `cargo bench` passes), so that
/// `cargo test --all-targets` does not start a benchmark, then runs `bench` on a 2-worker runtime.
/// `block_on` polls it on the main thread, so children spawned from it get a parent-death signal
/// tied to the main thread, which lives until the process ends.
pub fn main_of<F>(name: &str, command: &str, bench: F) -> ExitCode
where
    F: Future<Output = Res<()>>,
{
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name} bench: not run (no --bench flag); run it with `{command}`");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name} bench: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name} bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `fut` within [`CALL_TIMEOUT`], its error named by `what`.
pub async fn with_timeout<T, E: std::fmt::Display>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Res<T> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => fail(format!("{what}: {e}")),
        Err(_) => fail(format!("{what}: no answer within {CALL_TIMEOUT:?}")),
    }
}

/// Writes keys `kv(0..n)` in txns of [`TXN_OPS`] puts, [`TXNS_IN_FLIGHT`] txns at a time.
pub async fn load<F>(client: &Client, n: u64, kv: F) -> Res<Duration>
where
    F: Fn(u64) -> (Vec<u8>, Vec<u8>) + Copy,
{
    let started = Instant::now();
    stream::iter((0..n).step_by(TXN_OPS as usize))
        .map(|first| {
            let mut c = client.clone();
            async move {
                let ops: Vec<TxnOp> = (first..(first + TXN_OPS).min(n))
                    .map(|i| {
                        let (k, v) = kv(i);
                        TxnOp::put(k, v, None)
                    })
                    .collect();
                let resp = with_timeout("load txn", c.txn(Txn::new().and_then(ops))).await?;
                if !resp.succeeded() {
                    return fail("load txn was not applied");
                }
                Ok(())
            }
        })
        .buffer_unordered(TXNS_IN_FLIGHT)
        .try_for_each(|()| async { Ok(()) })
        .await?;
    Ok(started.elapsed())
}

/// xorshift64: enough randomness to pick pages, without another dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n.max(1)
    }
}

/// CPU time (user + system, all threads) a process has used so far, in seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf(3) only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 })
}
