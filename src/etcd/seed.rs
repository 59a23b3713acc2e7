//! Sample data for `etcdboard demo` and for tests.
//!
//! The data set is built to exercise every awkward corner of a key browser,
//! not to look like one particular application:
//!
//! * nested config trees with JSON, YAML and TOML values
//!   (`/app/team-a/config.json`, `/app/team-b/deploy.yaml`,
//!   `/services/web/instances/web-0`, …), and a key (`/services/web`) that is
//!   also the prefix of other keys;
//! * keys without a leading `/` (`noslash/config`, `toplevel`);
//! * empty path segments and odd characters (`/weird//empty`,
//!   `/weird/trailing/`, `/weird/space key`, `/weird/100%/done`), Unicode
//!   (`/i18n/日本語/挨拶`) and an empty value (`/empty/value`);
//! * a binary value ([`BINARY_VALUE_KEY`], bytes `0x00..=0xff`) and a key that
//!   is not UTF-8 ([`NON_UTF8_KEY`]);
//! * a key whose name is HTML ([`MARKUP_KEY`]) to catch escaping bugs;
//! * a key attached to a lease ([`LEASED_KEY`], TTL [`LEASE_TTL_SECS`]);
//! * a ~200 KiB text value ([`BIG_VALUE_KEY`]);
//! * `flat_keys` flat numeric keys `1`…`N` whose value is the number as text
//!   (like `etcdctl put $n $n`), to test paging through large flat listings.
//!
//! Every etcd call has a deadline of [`CALL_TIMEOUT`]; a call that exceeds it
//! fails with `etcd_client::Error::IoError` of kind
//! [`std::io::ErrorKind::TimedOut`].

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use etcd_client::{Client, PutOptions, Txn, TxnOp};
use futures::stream::{self, StreamExt};

/// Deadline for each etcd call made while seeding. Generous because a txn of
/// 128 puts on a busy 2-core box with fsync can take a while; a timeout is
/// reported as `Error::IoError` with `ErrorKind::TimedOut`.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Puts per txn for the flat keys: etcd's default `--max-txn-ops` is 128.
pub const TXN_BATCH: usize = 128;

/// How many flat-key txns are in flight at once; enough for etcd to batch
/// them into shared raft entries and fsyncs.
pub const TXNS_IN_FLIGHT: usize = 8;

/// Key holding the binary value `0x00..=0xff` (256 bytes).
pub const BINARY_VALUE_KEY: &str = "/bin/blob";

/// A key that is not valid UTF-8.
pub const NON_UTF8_KEY: &[u8] = b"/bin/key-\xff\xfe";

/// A key whose name is an HTML tag, to catch unescaped output.
pub const MARKUP_KEY: &str = "/xss/<img src=x onerror=alert(1)>";

/// Key attached to a lease of [`LEASE_TTL_SECS`].
pub const LEASED_KEY: &str = "/leases/session-1";

/// TTL of the lease granted for [`LEASED_KEY`].
pub const LEASE_TTL_SECS: i64 = 3600;

/// Key holding a ~200 KiB text value.
pub const BIG_VALUE_KEY: &str = "/big/value.txt";

/// Size the value at [`BIG_VALUE_KEY`] reaches (it ends at a line boundary
/// just past this).
pub const BIG_VALUE_MIN_BYTES: usize = 200 * 1024;

/// What [`seed_demo`] did, for the demo's startup banner and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// Number of keys written (fixtures, the leased key and flat keys).
    pub keys: usize,
    /// Wall-clock time the seeding took.
    pub elapsed: Duration,
}

/// Write the demo data set (see the module docs) through `client`.
///
/// Flat keys are written in txns of up to [`TXN_BATCH`] puts with
/// [`TXNS_IN_FLIGHT`] txns in flight, so 100,000 keys take seconds rather
/// than minutes. `progress(done, total)` is called once the fixtures are
/// written and then after each flat-key txn; `total` counts every key, so the
/// last call is `(report.keys, report.keys)`. Keys are overwritten if they
/// exist; each run grants a new lease for [`LEASED_KEY`].
pub async fn seed_demo(
    client: &mut Client,
    flat_keys: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<SeedReport, etcd_client::Error> {
    let started = Instant::now();
    let fixtures = fixtures();
    let total = fixtures.len() + 1 + flat_keys;

    for (key, value) in &fixtures {
        with_deadline("put", client.put(key.clone(), value.clone(), None)).await?;
    }
    let lease = with_deadline("lease grant", client.lease_grant(LEASE_TTL_SECS, None)).await?;
    with_deadline(
        "put",
        client.put(
            LEASED_KEY,
            "session owned by a lease; disappears when the lease expires",
            Some(PutOptions::new().with_lease(lease.id())),
        ),
    )
    .await?;
    let mut done = fixtures.len() + 1;
    progress(done, total);

    let batches = (1..=flat_keys).step_by(TXN_BATCH.max(1)).map(|first| {
        let last = (first + TXN_BATCH - 1).min(flat_keys);
        let ops: Vec<TxnOp> = (first..=last)
            .map(|n| {
                let text = n.to_string();
                TxnOp::put(text.clone(), text, None)
            })
            .collect();
        let count = ops.len();
        let mut client = client.clone();
        async move {
            with_deadline("txn", client.txn(Txn::new().and_then(ops))).await?;
            Ok::<usize, etcd_client::Error>(count)
        }
    });
    let mut results = stream::iter(batches).buffer_unordered(TXNS_IN_FLIGHT);
    while let Some(result) = results.next().await {
        done += result?;
        progress(done, total);
    }

    Ok(SeedReport {
        keys: total,
        elapsed: started.elapsed(),
    })
}

/// Run one etcd call with [`CALL_TIMEOUT`], turning a timeout into
/// `Error::IoError(ErrorKind::TimedOut)`.
async fn with_deadline<T>(
    what: &str,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, etcd_client::Error> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(etcd_client::Error::IoError(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("etcd {what} timed out after {CALL_TIMEOUT:?} while seeding demo data"),
        ))),
    }
}

/// The fixed keys (everything but the leased key and the flat keys).
fn fixtures() -> Vec<(Vec<u8>, Vec<u8>)> {
    let text = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
    let mut kvs = vec![
        text(
            "/app/team-a/config.json",
            r#"{
  "service": "checkout",
  "replicas": 3,
  "features": {"new_cart": true, "dark_mode": false},
  "endpoints": ["https://checkout.internal:8443", "https://checkout-b.internal:8443"],
  "timeouts_ms": {"connect": 250, "request": 2000}
}
"#,
        ),
        text(
            "/app/team-a/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\n  labels:\n    team: team-a\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: checkout\n          image: registry.internal/checkout:1.14.2\n          ports:\n            - containerPort: 8443\n",
        ),
        text(
            "/app/team-a/settings.toml",
            "[server]\nport = 8443\nlog_level = \"info\"\n\n[cache]\nttl_seconds = 300\n",
        ),
        text(
            "/app/team-a/feature-flags.json",
            r#"{"new_cart":{"enabled":true,"rollout":0.25},"dark_mode":{"enabled":false}}"#,
        ),
        text(
            "/app/team-b/config.json",
            r#"{"service":"search","replicas":2,"index":{"shards":4,"refresh":"1s"}}"#,
        ),
        text(
            "/app/team-b/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: search\nspec:\n  replicas: 2\n",
        ),
        text("/app/team-b/secrets/db-password", "hunter2 (demo data, not a secret)"),
        text("/services/web", "web service root; also a prefix of other keys"),
        text("/services/api/instances/api-0", r#"{"host":"10.0.1.10","port":9000,"healthy":true}"#),
        text("noslash/config", "key without a leading slash"),
        text("toplevel", "top-level key without any slash"),
        text("/weird//empty", "key with an empty path segment"),
        text("/weird/trailing/", "key ending in a slash"),
        text("/weird/space key", "key with a space"),
        text("/weird/100%/done", "key with a percent sign"),
        text("/i18n/日本語/挨拶", "こんにちは"),
        text("/empty/value", ""),
        text(MARKUP_KEY, "<script>alert('value')</script>"),
    ];
    for i in 0..3 {
        kvs.push(text(
            &format!("/services/web/instances/web-{i}"),
            &format!(
                r#"{{"host":"10.0.0.{}","port":8080,"zone":"zone-{}"}}"#,
                10 + i,
                i % 2
            ),
        ));
    }
    kvs.push((
        BINARY_VALUE_KEY.as_bytes().to_vec(),
        (0..=255u8).collect::<Vec<u8>>(),
    ));
    kvs.push((
        NON_UTF8_KEY.to_vec(),
        b"value of a key that is not UTF-8".to_vec(),
    ));
    kvs.push((BIG_VALUE_KEY.as_bytes().to_vec(), big_text().into_bytes()));
    kvs
}

/// Numbered lorem-ipsum lines, just over [`BIG_VALUE_MIN_BYTES`].
fn big_text() -> String {
    let mut out = String::with_capacity(BIG_VALUE_MIN_BYTES + 128);
    let mut line = 1usize;
    while out.len() < BIG_VALUE_MIN_BYTES {
        let _ = writeln!(
            out,
            "{line:06}: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
        );
        line += 1;
    }
    out
}

/// Connects to `endpoints` and seeds the demo data (see [`seed_demo`]); for callers outside this
/// module, which never see an etcd client.
pub async fn seed_endpoints(
    endpoints: &[String],
    flat_keys: usize,
    progress: impl FnMut(usize, usize),
) -> Result<SeedReport, String> {
    let options = etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_secs(2));
    let mut client = tokio::time::timeout(
        CALL_TIMEOUT,
        etcd_client::Client::connect(endpoints, Some(options)),
    )
    .await
    .map_err(|_| "connecting to the demo cluster timed out".to_string())?
    .map_err(|e| format!("connecting to the demo cluster: {e}"))?;
    seed_demo(&mut client, flat_keys, progress)
        .await
        .map_err(|e| format!("seeding: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_cover_the_edge_cases() {
        let kvs = fixtures();
        let keys: Vec<&[u8]> = kvs.iter().map(|(k, _)| k.as_slice()).collect();
        assert!(keys.contains(&NON_UTF8_KEY));
        assert!(std::str::from_utf8(std::hint::black_box(NON_UTF8_KEY)).is_err());
        assert!(keys.contains(&b"/weird//empty".as_slice()));
        assert!(keys.contains(&b"toplevel".as_slice()));
        let blob = kvs
            .iter()
            .find(|(k, _)| k == BINARY_VALUE_KEY.as_bytes())
            .map(|(_, v)| v.clone())
            .unwrap();
        assert_eq!(blob.len(), 256);
        assert!(std::str::from_utf8(&blob).is_err());
        let big = kvs
            .iter()
            .find(|(k, _)| k == BIG_VALUE_KEY.as_bytes())
            .map(|(_, v)| v.len())
            .unwrap();
        assert!((BIG_VALUE_MIN_BYTES..BIG_VALUE_MIN_BYTES + 200).contains(&big));
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "duplicate fixture keys");
    }
}
