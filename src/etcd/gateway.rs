//! One long-lived connection set per configured cluster, and reads that never hang.
//!
//! Each member endpoint has its own client (connected lazily, so a member that is down at start
//! costs nothing). A read goes to the member that answered last; if it fails or has not answered
//! after a short hedge delay, the next member is asked as well, and the first answer wins. When no
//! member can give a linearizable answer (quorum lost), members are asked for their local copy
//! (serializable) and the answer is marked stale — all within a bounded time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse};
use futures::stream::{FuturesUnordered, StreamExt};
use tracing::{debug, warn};

use crate::config::{ClusterConfig, Credentials, TlsConfig};
use crate::domain::listing::{Batch, RangeReq, RangeResp, RangeSource};
use crate::domain::record::{KeyRecord, Read};
use crate::etcd::barrier::ReadBarrier;
use crate::etcd::index::FenceIndex;

/// etcd refuses txns with more operations than `--max-txn-ops` (128 by default).
const MAX_TXN_OPS: usize = 128;
/// Page reads of one cluster in flight at once (see `EtcdCluster::browse_permits`).
const BROWSE_READS_IN_FLIGHT: usize = 2;
/// After this long without an answer, the next member is asked too.
const HEDGE_DELAY: Duration = Duration::from_millis(250);
/// After a stale answer, reads go straight to members' local copies for this long.
const DEGRADED_FOR: Duration = Duration::from_secs(1);
/// Pause before asking every member again when all refused at once.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long to wait for a stale (serializable) answer once linearizable reads failed.
const STALE_BUDGET: Duration = Duration::from_millis(600);
/// How long a snapshot read (see [`EtcdCluster::snapshot_ranges`]) may take before the listing
/// falls back to the linearizable path, and when its next member is asked too.
const SNAPSHOT_BUDGET: Duration = Duration::from_millis(400);
const SNAPSHOT_HEDGE: Duration = Duration::from_millis(150);
/// The longest the linearizable phase of a read may take, so that a page answers within 2 s even
/// without quorum.
const LINEARIZABLE_BUDGET: Duration = Duration::from_millis(1200);

/// " within N ms", for a wait long enough to say (a member that refused at once was not waited
/// for).
fn within(waited_ms: u128) -> String {
    if waited_ms < 10 {
        String::new()
    } else {
        format!(" within {waited_ms} ms")
    }
}

/// What can go wrong talking to etcd, in terms the web layer can map to a status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtcdError {
    /// No member answered in time (every member down, hung or unreachable).
    #[error("no member of cluster `{cluster}` answered{} ({detail})", within(*.waited_ms))]
    Unavailable {
        /// Cluster name.
        cluster: String,
        /// How long we waited.
        waited_ms: u128,
        /// Short reason from the last member tried (never an address the user did not configure).
        detail: String,
    },
    /// One member, asked by itself (maintenance, snapshot), did not answer. The rest of the
    /// cluster may be fine.
    #[error("member {member} of cluster `{cluster}` did not answer ({detail})")]
    MemberUnavailable {
        /// Cluster name.
        cluster: String,
        /// The member's id (hex).
        member: String,
        /// Why.
        detail: String,
        /// The request reached the member before it stopped answering, so it may have acted
        /// on it; `false` when not even a connection opened.
        sent: bool,
    },
    /// The pinned revision of a listing was compacted away.
    #[error("revision {0} has been compacted; start the listing again")]
    Compacted(i64),
    /// etcd rejected the request itself.
    #[error("etcd rejected the request: {0}")]
    Rejected(String),
    /// A configuration problem (bad TLS material).
    #[error("cluster `{cluster}`: {detail}")]
    Config {
        /// Cluster name.
        cluster: String,
        /// What is wrong.
        detail: String,
    },
}

/// Largest answer etcdboard decodes from etcd in one message, a read or a watch message. gRPC's
/// default of 4 MiB is less than one value may be on a cluster run with a raised
/// `--max-request-bytes`, and less than a watch catching up is sent at once: etcd puts up to
/// 1,000 revisions' events in one message (10 MB for revisions of 10 KB). etcd's Go client allows
/// 2 GiB; this still bounds what one answer can cost.
pub(crate) const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// `c`'s KV client, taking answers up to [`MAX_ANSWER_BYTES`].
pub(crate) fn kv(c: &Client) -> KvClient {
    kv_up_to(c, MAX_ANSWER_BYTES)
}

/// `c`'s KV client, taking answers up to `max_bytes` (a larger one fails with [`too_large`]).
pub(crate) fn kv_up_to(c: &Client, max_bytes: usize) -> KvClient {
    c.kv_client().max_decoding_message_size(max_bytes)
}

/// What the client says of an answer larger than it would decode (see [`MAX_ANSWER_BYTES`]).
const TOO_LARGE: &str = "decoded message length too large";

/// Whether `e` is an answer larger than the client would decode (see [`MAX_ANSWER_BYTES`]).
/// etcd's own OUT_OF_RANGE errors (a future revision) are not.
pub(crate) fn too_large(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s)
        if i32::from(s.code()) == OUT_OF_RANGE && s.message().contains(TOO_LARGE))
}

impl EtcdError {
    /// The answer was larger than the client would decode: asking for less may work.
    pub fn is_too_large(&self) -> bool {
        matches!(self, EtcdError::Rejected(msg) if msg.contains(TOO_LARGE))
    }

    /// etcd's own access control refused the etcd user etcdboard signs in as (see [`rejected`]).
    pub fn is_denied(&self) -> bool {
        matches!(self, EtcdError::Rejected(msg) if says_denied(msg))
    }
}

/// What etcd says when the etcd user may not do what was asked (its roles' key ranges).
const DENIED: &str = "etcdserver: permission denied";

/// Whether an error's text (an [`EtcdError`] said in words, as the index keeps its failure) is
/// etcd's access control refusing the etcd user.
pub fn says_denied(reason: &str) -> bool {
    reason.contains(DENIED)
}

/// etcd refused a request, in its own words; when its access control refused it, also what that
/// means here, since the user reading the page is not the etcd user that was refused.
pub(crate) fn rejected(msg: String) -> EtcdError {
    if says_denied(&msg) {
        EtcdError::Rejected(format!(
            "{msg}: the etcd user etcdboard signs in as may not do this here (its etcd roles \
             do not cover this key range or action); open a prefix it may read, or give it a \
             wider role"
        ))
    } else {
        EtcdError::Rejected(msg)
    }
}

/// How often the gateway asks its members who leads (see [`EtcdCluster::placement`]).
const PLACEMENT_EVERY: Duration = Duration::from_secs(5);
/// How long after its first call a cluster's members are first asked who leads.
const PLACEMENT_FIRST_AFTER: Duration = Duration::from_millis(500);
/// Deadline of one member's status call when the gateway asks who leads.
const PLACEMENT_DEADLINE: Duration = Duration::from_millis(800);
/// `EtcdCluster::leader` when no configured endpoint is known to be the leader.
const NO_LEADER: usize = usize::MAX;
/// After etcd refuses a cluster's username and password, connections are not made with the same
/// ones again for this long: every try costs etcd a bcrypt check (tens of ms of a core), and
/// etcdboard's background work (the monitor, the listing index) would otherwise try several times
/// a second for as long as the password is wrong. A changed password file is used at once.
const AUTH_REFUSED_FOR: Duration = Duration::from_secs(10);
/// How etcd says it refused a username and password.
const AUTH_REFUSED: &str = "authentication failed";

/// The order in which to ask `n` members: from `first` (the member that answered last: its
/// connection is warm, and it was reachable a moment ago) round the list, with `leader` last.
///
/// The leader and one follower commit every write. Calls kept on one other follower leave that
/// quorum path alone, so the cluster's own writers do not wait behind our reads; a write sent to
/// a follower costs it one forward to the leader.
fn member_order(n: usize, first: usize, leader: Option<usize>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).map(|k| (first + k) % n.max(1)).collect();
    if let Some(l) = leader.filter(|l| *l < n) {
        order.retain(|i| *i != l);
        order.push(l);
    }
    order
}

/// Why a member attempt failed: try another member, or give up.
enum Failure {
    Retry(String),
    Fatal(EtcdError),
}

fn classify(err: etcd_client::Error, revision: Option<i64>) -> Failure {
    if let Some(tls) = tls_failure(&err) {
        return Failure::Retry(tls);
    }
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            let msg = status.message().to_string();
            // A pinned read's revision is gone; anything else (a compaction asked for at a
            // revision already compacted) is the request's own mistake, said as etcd says it.
            if msg.contains("compacted") {
                return Failure::Fatal(match revision {
                    Some(rev) => EtcdError::Compacted(rev),
                    None => EtcdError::Rejected(msg),
                });
            }
            let code: i32 = status.code().into();
            match code {
                CANCELLED | UNKNOWN | DEADLINE_EXCEEDED | RESOURCE_EXHAUSTED | INTERNAL
                | UNAVAILABLE => Failure::Retry(msg),
                // A lagging member cannot serve a revision it has not applied yet: ask another
                // (when every member says so twice, the revision is really in the future).
                OUT_OF_RANGE if msg.contains("future revision") && revision.is_some() => {
                    Failure::Retry(msg)
                }
                _ => Failure::Fatal(rejected(msg)),
            }
        }
        other => Failure::Retry(short_reason(&other)),
    }
}

/// Whether `e` says the member could not answer now (unavailable, timed out, a transport error),
/// rather than that it refused the request.
pub(crate) fn could_not_answer(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let code: i32 = status.code().into();
            matches!(
                code,
                CANCELLED
                    | UNKNOWN
                    | DEADLINE_EXCEEDED
                    | RESOURCE_EXHAUSTED
                    | INTERNAL
                    | UNAVAILABLE
            )
        }
        _ => true,
    }
}

/// Whether `new` explains a failure better than `old`: what a member said itself ("etcdserver: no
/// leader") beats a member that could not be reached at all, so that with quorum lost the answer
/// names the cause, not the dead members' connection errors.
fn says_more(new: &str, old: &str) -> bool {
    let unreachable = |r: &str| {
        [
            "tcp connect error",
            "transport error",
            "connect timed out",
            "no answer after",
            "no member tried",
        ]
        .iter()
        .any(|p| r.starts_with(p))
            || r.contains("Connection refused")
    };
    !unreachable(new) || unreachable(old)
}

// gRPC status codes (by number, as in the gRPC spec) that mean "this member cannot answer now".
const CANCELLED: i32 = 1;
const UNKNOWN: i32 = 2;
const DEADLINE_EXCEEDED: i32 = 4;
const RESOURCE_EXHAUSTED: i32 = 8;
const OUT_OF_RANGE: i32 = 11;
const INTERNAL: i32 = 13;
const UNAVAILABLE: i32 = 14;

/// How often the TLS and password files of a cluster are read again (see
/// [`EtcdCluster::watch_secret_files`]).
const SECRETS_POLL: Duration = Duration::from_secs(5);

/// What a cluster's connections authenticate with, as read from the configuration's files.
#[derive(Clone, PartialEq, Eq)]
struct Secrets {
    tls: Option<TlsConfig>,
    credentials: Option<Credentials>,
}

impl Secrets {
    fn read_from_files(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| t.files != Default::default())
            || self
                .credentials
                .as_ref()
                .is_some_and(|c| c.password_file.is_some())
    }

    /// Every file read again (see [`TlsConfig::reread`], [`Credentials::reread`]).
    fn reread(&self) -> Result<Secrets, crate::config::ConfigError> {
        Ok(Secrets {
            tls: self.tls.as_ref().map(TlsConfig::reread).transpose()?,
            credentials: self
                .credentials
                .as_ref()
                .map(Credentials::reread)
                .transpose()?,
        })
    }
}

/// The options new connections of a cluster are made with, and the secrets they were made from.
/// Replaced whole when the files change; a connection made with a `Dial` that is no longer the
/// cluster's is not kept.
struct Dial {
    /// With etcd's require-leader header.
    strict: ConnectOptions,
    /// Without it, for serializable reads when quorum is lost.
    local: ConnectOptions,
    secrets: Secrets,
    /// When etcd last refused these credentials, and its words.
    refused: Mutex<Option<(Instant, String)>>,
}

impl Dial {
    fn new(secrets: Secrets, timeout: Duration) -> Dial {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(800).min(timeout))
            // Our own deadlines (per read, per write) end requests on time; this is only a backstop,
            // long enough for the index build's occasional large read.
            .with_timeout(timeout.max(Duration::from_secs(30)))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_keep_alive_while_idle(true);
        if let Some(c) = &secrets.credentials {
            // etcd's tokens expire (`--auth-token-ttl` after their last use; a JWT after its ttl
            // whether used or not): without this a member's client answered "invalid auth token"
            // for ever after a quiet spell.
            options = options
                .with_user(c.username.clone(), c.password.expose().to_string())
                .with_auto_token_refresh(true);
        }
        if let Some(tls) = &secrets.tls {
            let mut t = etcd_client::TlsOptions::new();
            if let Some(ca) = &tls.ca_pem {
                t = t.ca_certificate(etcd_client::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &tls.identity_pem {
                t = t.identity(etcd_client::Identity::from_pem(cert, key.expose()));
            }
            if let Some(name) = &tls.server_name {
                t = t.domain_name(name.clone());
            }
            options = options.with_tls(t);
        }
        Dial {
            local: options.clone(),
            strict: options.with_require_leader(true),
            secrets,
            refused: Mutex::new(None),
        }
    }

    fn options(&self, local: bool) -> ConnectOptions {
        if local { &self.local } else { &self.strict }.clone()
    }

    /// Connects to `endpoint` (`local`: without require-leader) within `timeout`; without
    /// contacting etcd while it recently refused these credentials (see [`AUTH_REFUSED_FOR`]).
    async fn connect(
        &self,
        endpoint: &str,
        local: bool,
        timeout: Duration,
    ) -> Result<Client, String> {
        self.admit()?;
        let connected = tokio::time::timeout(
            timeout,
            Client::connect([endpoint], Some(self.options(local))),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| short_reason(&e));
        let refusal = match &connected {
            Err(why) if self.secrets.credentials.is_some() && why.contains(AUTH_REFUSED) => {
                Some(why.clone())
            }
            _ => None,
        };
        if let Ok(mut refused) = self.refused.lock() {
            match &refusal {
                Some(why) => *refused = Some((Instant::now(), why.clone())),
                None if connected.is_ok() => *refused = None,
                None => {}
            }
        }
        match refusal {
            Some(why) => Err(refused_text(&why, AUTH_REFUSED_FOR)),
            None => connected,
        }
    }

    /// Whether a connection may try these credentials now: not while etcd's last refusal is
    /// recent; once it is not, one connection tries (the others wait for the next window).
    fn admit(&self) -> Result<(), String> {
        let Ok(mut refused) = self.refused.lock() else {
            return Ok(());
        };
        let Some((at, why)) = refused.as_mut() else {
            return Ok(());
        };
        match AUTH_REFUSED_FOR.checked_sub(at.elapsed()) {
            Some(left) if !left.is_zero() => Err(refused_text(why, left)),
            _ => {
                *at = Instant::now();
                Ok(())
            }
        }
    }
}

/// etcd's refusal of a cluster's credentials, and when they are tried again.
fn refused_text(why: &str, left: Duration) -> String {
    format!(
        "{why}: etcd refused the username and password etcdboard signs in with; not tried again \
         for {} s, or until the password file changes",
        left.as_secs() + 1
    )
}

/// What differs between two readings of a cluster's files, for the log (never the content).
fn secret_changes(old: &Secrets, new: &Secrets) -> String {
    fn ca(s: &Secrets) -> Option<&Vec<u8>> {
        s.tls.as_ref()?.ca_pem.as_ref()
    }
    fn cert(s: &Secrets) -> Option<&Vec<u8>> {
        s.tls.as_ref()?.identity_pem.as_ref().map(|(c, _)| c)
    }
    fn key(s: &Secrets) -> Option<&crate::config::Secret> {
        s.tls.as_ref()?.identity_pem.as_ref().map(|(_, k)| k)
    }
    [
        ("ca", ca(old) != ca(new)),
        ("cert", cert(old) != cert(new)),
        ("key", key(old) != key(new)),
        ("password", old.credentials != new.credentials),
    ]
    .iter()
    .filter(|(_, changed)| *changed)
    .map(|(name, _)| *name)
    .collect::<Vec<_>>()
    .join(", ")
}

/// One member endpoint with two lazily connected clients: `strict` sends etcd's require-leader
/// header (a member without a leader refuses at once instead of blocking), `local` does not, so it
/// can still serve serializable reads when quorum is lost.
struct MemberSlot {
    endpoint: String,
    strict: Mutex<Option<Client>>,
    local: Mutex<Option<Client>>,
    /// Held while one of the two clients connects, so that calls arriving meanwhile share that
    /// connection instead of opening (and, with etcd auth, authenticating) one each.
    connecting: tokio::sync::Mutex<()>,
}

/// A configured etcd cluster: its member clients, read policy and fence index.
pub struct EtcdCluster {
    name: String,
    members: Vec<MemberSlot>,
    /// The member reads ask first (it answered the last one).
    preferred: AtomicUsize,
    /// The configured endpoint that leads, as the members said when last asked
    /// ([`NO_LEADER`]: unknown, or none of them).
    leader: AtomicUsize,
    /// When the members were last asked who leads.
    placement_asked: Mutex<Option<Instant>>,
    /// True once a member answered who leads.
    placement_known: std::sync::atomic::AtomicBool,
    /// This cluster itself, for the background work its calls start.
    me: std::sync::Weak<EtcdCluster>,
    /// How new connections are made, and from what; replaced when the TLS or password files
    /// change.
    dial: Mutex<Arc<Dial>>,
    /// Until when reads skip the linearizable attempt because quorum was just found lost, so one
    /// page with several reads does not pay the linearizable budget each time.
    degraded_until: Mutex<Option<Instant>>,
    /// Clients by member client URL (as the member list advertises them), for per-member calls.
    url_clients: Mutex<std::collections::HashMap<(String, bool), Client>>,
    /// Page reads in flight against this cluster: browsers queue here rather than pile onto etcd,
    /// so many users browsing cannot starve the cluster's own writers.
    browse_permits: tokio::sync::Semaphore,
    /// The linearizable rounds that pages "as of now" share.
    barrier: ReadBarrier,
    timeout: Duration,
    index: Arc<FenceIndex>,
    separator: String,
    /// Call counts and latencies, once the app hands them over (tests and benches may not).
    metrics: std::sync::OnceLock<crate::metrics::EtcdCallMetrics>,
    /// True once the app is shutting down: background work (the index watch) ends quietly.
    closing: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for EtcdCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdCluster")
            .field("name", &self.name)
            .finish()
    }
}

impl EtcdCluster {
    /// Prepares clients for every member of `cfg`; nothing is dialled until the first request.
    pub fn new(cfg: &ClusterConfig, timeout: Duration) -> Result<Arc<EtcdCluster>, EtcdError> {
        let dial = Dial::new(
            Secrets {
                tls: cfg.tls.clone(),
                credentials: cfg.credentials.clone(),
            },
            timeout,
        );
        let members = cfg
            .endpoints
            .iter()
            .map(|e| MemberSlot {
                endpoint: e.clone(),
                strict: Mutex::new(None),
                local: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            })
            .collect();
        Ok(Arc::new_cyclic(|me| EtcdCluster {
            name: cfg.name.clone(),
            members,
            preferred: AtomicUsize::new(0),
            leader: AtomicUsize::new(NO_LEADER),
            placement_asked: Mutex::new(None),
            placement_known: std::sync::atomic::AtomicBool::new(false),
            me: me.clone(),
            dial: Mutex::new(Arc::new(dial)),
            degraded_until: Mutex::new(None),
            url_clients: Mutex::new(std::collections::HashMap::new()),
            browse_permits: tokio::sync::Semaphore::new(BROWSE_READS_IN_FLIGHT),
            barrier: ReadBarrier::default(),
            timeout,
            index: Arc::new(FenceIndex::default()),
            separator: cfg.separator.clone(),
            metrics: std::sync::OnceLock::new(),
            closing: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// The cluster's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tree separator configured for this cluster.
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// The configured client URLs.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.endpoint.clone()).collect()
    }

    /// Where this cluster's calls are counted from now on (the first call wins; later ones are
    /// ignored so counters never reset under a running app).
    pub fn set_metrics(&self, metrics: crate::metrics::EtcdCallMetrics) {
        let _ = self.metrics.set(metrics);
    }

    /// Counts a restart of one of this cluster's watches (see
    /// [`crate::metrics::EtcdCallMetrics::watch_restarted`]).
    pub(crate) fn watch_restarted(&self, watch: &'static str, reason: &'static str) {
        if let Some(metrics) = self.metrics.get() {
            metrics.watch_restarted(&self.name, watch, reason);
        }
    }

    /// The app is shutting down: background work on this cluster ends without complaint (the
    /// members may go away before the process does, as in `etcdboard demo`).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`EtcdCluster::close`] was called.
    pub(crate) async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|closing| *closing).await;
    }

    /// True once [`EtcdCluster::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        *self.closing.borrow()
    }

    /// The fence index of this cluster (started on first use by [`EtcdCluster::ensure_index`]).
    pub fn index(&self) -> &Arc<FenceIndex> {
        &self.index
    }

    /// Starts building the fence index in the background if that has not happened yet.
    pub fn ensure_index(self: &Arc<Self>) {
        FenceIndex::ensure_started(self);
    }

    /// The TLS settings new connections use now (rotated files included).
    pub(crate) fn tls_settings(&self) -> Option<TlsConfig> {
        self.dial().secrets.tls.clone()
    }

    /// How new connections are made now.
    fn dial(&self) -> Arc<Dial> {
        match self.dial.lock() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the cluster's TLS and password files every few seconds while the app runs, and
    /// once a change has read the same twice in a row (a rotation writing cert and key one after
    /// the other is not caught half done), makes every new connection with it: the connections
    /// kept are dropped, so the next call of each member connects (and authenticates) again.
    /// Calls in flight and open watches finish on their connection. Files that cannot be used
    /// are logged and the previous ones kept.
    pub fn watch_secret_files(self: &Arc<Self>) {
        if !self.dial().secrets.read_from_files() {
            return;
        }
        let me = Arc::downgrade(self);
        let mut closing = self.closing.subscribe();
        tokio::spawn(async move {
            let mut pending: Option<Secrets> = None;
            let mut last_error = String::new();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(SECRETS_POLL) => {}
                    _ = closing.wait_for(|c| *c) => return,
                }
                let Some(cluster) = me.upgrade() else { return };
                let current = cluster.dial().secrets.clone();
                // Reading files can block: off the async threads.
                let read = tokio::task::spawn_blocking(move || {
                    let new = current.reread();
                    (current, new)
                })
                .await;
                let Ok((current, new)) = read else { continue };
                match new {
                    Err(e) => {
                        if e.to_string() != last_error {
                            warn!(cluster = %cluster.name, error = %e, "TLS or password files changed but cannot be used; keeping the previous ones");
                            last_error = e.to_string();
                        }
                        pending = None;
                    }
                    Ok(new) if new == current => {
                        pending = None;
                        last_error.clear();
                    }
                    Ok(new) if pending.as_ref() == Some(&new) => {
                        pending = None;
                        last_error.clear();
                        cluster.use_secrets(&current, new);
                    }
                    Ok(new) => pending = Some(new),
                }
            }
        });
    }

    /// Makes new connections with `new` from now on (see [`Self::watch_secret_files`]).
    fn use_secrets(&self, old: &Secrets, new: Secrets) {
        let changed = secret_changes(old, &new);
        if let Ok(mut d) = self.dial.lock() {
            *d = Arc::new(Dial::new(new, self.timeout));
        }
        for slot in &self.members {
            for cell in [&slot.strict, &slot.local] {
                if let Ok(mut c) = cell.lock() {
                    *c = None;
                }
            }
        }
        if let Ok(mut map) = self.url_clients.lock() {
            map.clear();
        }
        tracing::info!(cluster = %self.name, changed = %changed, "TLS or password files changed; new connections use them");
    }

    /// The client of member `i` (`local`: without require-leader), connecting it on first use.
    pub(crate) async fn client(&self, i: usize, local: bool) -> Result<Client, String> {
        let slot = &self.members[i];
        let cell = if local { &slot.local } else { &slot.strict };
        let connected = || cell.lock().ok().and_then(|g| g.as_ref().cloned());
        if let Some(c) = connected() {
            return Ok(c);
        }
        let _turn = slot.connecting.lock().await;
        if let Some(c) = connected() {
            return Ok(c);
        }
        let dial = self.dial();
        let client = dial.connect(&slot.endpoint, local, self.timeout).await?;
        // Not kept when the TLS files changed meanwhile: the next call connects with them.
        if let Ok(mut guard) = cell.lock() {
            if Arc::ptr_eq(&self.dial(), &dial) {
                *guard = Some(client.clone());
            }
        }
        Ok(client)
    }

    /// A client for one member's own URL (`strict`: with require-leader), connected on first use,
    /// so a call reports what *that* member says. Only URLs from the cluster's own member list or
    /// configuration reach here, never one from a request.
    pub(crate) async fn url_client(&self, url: &str, strict: bool) -> Result<Client, String> {
        let cache_key = (url.to_string(), strict);
        if let Ok(map) = self.url_clients.lock() {
            if let Some(c) = map.get(&cache_key) {
                return Ok(c.clone());
            }
        }
        let dial = self.dial();
        let client = dial.connect(url, !strict, self.timeout).await?;
        if let Ok(mut map) = self.url_clients.lock() {
            if Arc::ptr_eq(&self.dial(), &dial) {
                map.insert(cache_key, client.clone());
            }
        }
        Ok(client)
    }

    /// A member's failure reason, with a hint when a TLS connection was closed without a word:
    /// that is how etcd refuses a client whose certificate it does not accept (or that sent none).
    fn explain(&self, reason: String) -> String {
        let tls = self
            .members
            .iter()
            .any(|m| m.endpoint.starts_with("https://"));
        let closed = [
            "operation was canceled",
            "transport error",
            "connection closed",
        ]
        .iter()
        .any(|r| reason.starts_with(r));
        if tls && closed {
            format!(
                "{reason}: the server closed the TLS connection; if it requires client \
                 certificates, check tls.cert and tls.key"
            )
        } else {
            reason
        }
    }

    fn order(&self) -> Vec<usize> {
        self.placement();
        let leader = Some(self.leader.load(Ordering::Relaxed)).filter(|l| *l != NO_LEADER);
        member_order(
            self.members.len(),
            self.preferred.load(Ordering::Relaxed),
            leader,
        )
    }

    /// The member a watch opens on: the first in the order reads use (so the leader last), or,
    /// after the watch on member `after` ended, the next one after it in that order. A watch of
    /// the whole key space streams every write to us; from the leader, that is work on the
    /// write path, and a consumer that falls behind (a busy etcdboard) makes the leader buffer
    /// events and catch it up. A watch stays where it opened, so until the members have answered
    /// who leads once, they are asked first (at most [`PLACEMENT_DEADLINE`]).
    pub(crate) async fn watch_member(&self, after: Option<usize>) -> usize {
        if self.members.len() > 1 && !self.placement_known.load(Ordering::Relaxed) {
            self.ask_who_leads().await;
        }
        next_member(&self.order(), after)
    }

    /// True when a watch on `member` should move on: the members last said it leads, and there
    /// is another member to go to (see [`EtcdCluster::watch_member`]).
    pub(crate) fn leads(&self, member: usize) -> bool {
        self.members.len() > 1 && self.leader.load(Ordering::Relaxed) == member
    }

    /// Asks every configured endpoint who leads, in the background, at most once per
    /// [`PLACEMENT_EVERY`], so that calls keep off the leader (see [`member_order`]) within a
    /// few seconds of an election. Costs one status call per member.
    fn placement(&self) {
        if self.members.len() < 2 || self.is_closed() {
            return;
        }
        {
            let Ok(mut asked) = self.placement_asked.lock() else {
                return;
            };
            if asked.is_some_and(|at| at.elapsed() < PLACEMENT_EVERY) {
                return;
            }
            *asked = Some(Instant::now());
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Not at the very moment of the first call: with etcd auth, every new connection costs the
        // members a password check, and the first page should not wait behind three more.
        let first = !self.placement_known.load(Ordering::Relaxed);
        rt.spawn(async move {
            if first {
                tokio::time::sleep(PLACEMENT_FIRST_AFTER).await;
            }
            me.ask_who_leads().await
        });
    }

    /// Asks every configured endpoint who leads (one status call each, within
    /// [`PLACEMENT_DEADLINE`]) and notes the answer.
    async fn ask_who_leads(&self) {
        let said = futures::future::join_all((0..self.members.len()).map(|i| async move {
            let mut c = self.client(i, true).await.ok()?;
            let s = tokio::time::timeout(PLACEMENT_DEADLINE, c.status())
                .await
                .ok()?
                .ok()?;
            Some((i, s.header()?.member_id(), s.leader()))
        }))
        .await;
        let said: Vec<(usize, u64, u64)> = said.into_iter().flatten().collect();
        let leader = leader_slot(&said).unwrap_or(NO_LEADER);
        if !said.is_empty() {
            self.placement_known.store(true, Ordering::Relaxed);
        }
        if self.leader.swap(leader, Ordering::Relaxed) != leader {
            debug!(cluster = %self.name, leader, "calls keep off the leader's endpoint");
        }
    }

    /// True while reads skip the linearizable attempt because quorum was just found lost.
    fn degraded(&self) -> bool {
        self.degraded_until
            .lock()
            .ok()
            .and_then(|g| *g)
            .is_some_and(|until| Instant::now() < until)
    }

    /// A linearizable read sent at `sent` answered at `revision`: quorum is there (reads stop
    /// going to members' local copies), and the page cache's watch can be proven caught up.
    fn answered_linearizably(&self, sent: Instant, revision: i64) {
        if let Ok(mut g) = self.degraded_until.lock() {
            *g = None;
        }
        self.index.pages().note_linearizable(sent, revision);
    }

    /// Runs `op` against the cluster: linearizable on one member at a time (hedged), then, if none
    /// could answer, serializable on all members at once. Never takes much longer than 2 s.
    pub async fn read<T, F, Fut>(&self, revision: Option<i64>, op: F) -> Result<Read<T>, EtcdError>
    where
        F: Fn(Client, bool) -> Fut,
        Fut: std::future::Future<Output = Result<(T, i64), etcd_client::Error>>,
    {
        self.read_within(revision, LINEARIZABLE_BUDGET.min(self.timeout), op)
            .await
    }

    /// [`EtcdCluster::read`] with another budget for the linearizable phase: background work (the
    /// index build) may wait longer for a large read than a page may.
    pub async fn read_within<T, F, Fut>(
        &self,
        revision: Option<i64>,
        budget: Duration,
        op: F,
    ) -> Result<Read<T>, EtcdError>
    where
        F: Fn(Client, bool) -> Fut,
        Fut: std::future::Future<Output = Result<(T, i64), etcd_client::Error>>,
    {
        let started = Instant::now();
        let mut last_reason = String::from("no member tried");
        let degraded = self.degraded();
        if !degraded {
            match self
                .race(&op, false, revision, budget, HEDGE_DELAY, &mut last_reason)
                .await
            {
                Ok(Some((value, rev))) => {
                    self.answered_linearizably(started, rev);
                    return Ok(Read {
                        value,
                        revision: rev,
                        stale: false,
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        debug!(cluster = %self.name, reason = %last_reason, "linearizable read failed; trying serializable");
        // Only a failed linearizable attempt (re)starts the degraded window, so a linearizable read
        // is tried again at least once per window. Set at once, before the stale read: the next
        // reads of the same page (a listing's next round, a deep link's levels) start as soon as
        // this one returns, and must not wait out a linearizable budget again.
        if !degraded {
            if let Ok(mut g) = self.degraded_until.lock() {
                *g = Some(Instant::now() + DEGRADED_FOR);
            }
        }
        match self
            .race(
                &op,
                true,
                revision,
                STALE_BUDGET,
                Duration::ZERO,
                &mut last_reason,
            )
            .await
        {
            Ok(Some((value, rev))) => {
                if !degraded {
                    warn!(cluster = %self.name, "answered from a member's local copy: no quorum");
                }
                Ok(Read {
                    value,
                    revision: rev,
                    stale: true,
                })
            }
            Ok(None) => Err(EtcdError::Unavailable {
                cluster: self.name.clone(),
                waited_ms: started.elapsed().as_millis(),
                detail: self.explain(last_reason),
            }),
            Err(e) => Err(e),
        }
    }

    /// Asks members in [`member_order`], starting the next one when the previous failed or after
    /// `hedge`; the first answer wins (`serializable`: from a member's local copy). `Ok(None)`
    /// when no member answered within `budget`.
    ///
    /// Every read and write (and the member and alarm lists) passes here, so this is where etcd
    /// calls are counted and timed, labelled by the gateway method that made `op`. Per-member
    /// probes, maintenance and watches go straight to a member and are not counted.
    pub(crate) async fn race<T, F, Fut>(
        &self,
        op: &F,
        serializable: bool,
        revision: Option<i64>,
        budget: Duration,
        hedge: Duration,
        last_reason: &mut String,
    ) -> Result<Option<(T, i64)>, EtcdError>
    where
        F: Fn(Client, bool) -> Fut,
        Fut: std::future::Future<Output = Result<(T, i64), etcd_client::Error>>,
    {
        let started = Instant::now();
        let result = self
            .race_members(op, serializable, revision, budget, hedge, last_reason)
            .await;
        if let Some(metrics) = self.metrics.get() {
            use crate::metrics::EtcdOutcome;
            let outcome = match &result {
                Ok(Some(_)) => EtcdOutcome::Ok,
                Ok(None)
                | Err(EtcdError::Unavailable { .. } | EtcdError::MemberUnavailable { .. }) => {
                    EtcdOutcome::Unavailable
                }
                Err(EtcdError::Rejected(_)) => EtcdOutcome::Rejected,
                Err(EtcdError::Compacted(_)) => EtcdOutcome::Compacted,
                Err(EtcdError::Config { .. }) => EtcdOutcome::Config,
            };
            let operation = crate::metrics::operation_of::<F>();
            metrics.record(&self.name, operation, started.elapsed(), outcome);
        }
        result
    }

    async fn race_members<T, F, Fut>(
        &self,
        op: &F,
        serializable: bool,
        revision: Option<i64>,
        budget: Duration,
        hedge: Duration,
        last_reason: &mut String,
    ) -> Result<Option<(T, i64)>, EtcdError>
    where
        F: Fn(Client, bool) -> Fut,
        Fut: std::future::Future<Output = Result<(T, i64), etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + budget;
        let order = self.order();
        let mut next = 0usize;
        let mut rounds = 0u32;
        let mut running = FuturesUnordered::new();
        let attempt = |i: usize| async move {
            let client = match self.client(i, serializable).await {
                Ok(c) => c,
                Err(reason) => return (i, Err(Failure::Retry(reason))),
            };
            (
                i,
                op(client, serializable)
                    .await
                    .map_err(|e| classify(e, revision)),
            )
        };
        loop {
            if next < order.len() && (running.is_empty() || hedge.is_zero()) {
                running.push(attempt(order[next]));
                next += 1;
                if hedge.is_zero() {
                    continue;
                }
            }
            let hedge_timer = tokio::time::sleep(if next < order.len() { hedge } else { budget });
            tokio::select! {
                done = running.next() => match done {
                    Some((i, Ok(v))) => {
                        if !serializable {
                            self.preferred.store(i, Ordering::Relaxed);
                        }
                        return Ok(Some(v));
                    }
                    Some((i, Err(Failure::Retry(reason)))) => {
                        debug!(cluster = %self.name, member = i, %reason, "member failed");
                        if says_more(&reason, last_reason) {
                            *last_reason = reason;
                        }
                        if running.is_empty() && next >= order.len() {
                            // Every member refused at once (e.g. "no leader" during an election):
                            // go round again while the budget lasts, then give up. A revision
                            // every member called future twice is not one a member lags behind.
                            rounds += 1;
                            if rounds >= 2 && last_reason.contains("future revision") {
                                return Err(EtcdError::Rejected(format!(
                                    "revision {} is newer than the cluster's current revision",
                                    revision.unwrap_or(0)
                                )));
                            }
                            let pause = tokio::time::Instant::now() + RETRY_PAUSE;
                            if serializable || pause >= deadline {
                                return Ok(None);
                            }
                            tokio::time::sleep_until(pause).await;
                            next = 0;
                        }
                    }
                    Some((_, Err(Failure::Fatal(e)))) => return Err(e),
                    None => return Ok(None),
                },
                _ = hedge_timer, if next < order.len() => {
                    running.push(attempt(order[next]));
                    next += 1;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    // A member's own words (e.g. "authentication failed") from earlier in this
                    // read say more than our timeout does.
                    if last_reason == "no member tried" || last_reason.starts_with("no answer after") {
                        *last_reason = format!("no answer after {} ms", budget.as_millis());
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Runs a write on one member at a time (the next only after a failure), within the timeout.
    /// Writes are never answered from a stale copy: without quorum this is `Unavailable`.
    pub async fn write<T, F, Fut>(&self, op: F) -> Result<Read<T>, EtcdError>
    where
        F: Fn(Client, bool) -> Fut,
        Fut: std::future::Future<Output = Result<(T, i64), etcd_client::Error>>,
    {
        self.write_given(Duration::ZERO, op).await
    }

    /// The deadline of one etcd operation (`--etcd-timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A read whose work on etcd grows with the keyspace (a count of a whole prefix), which no
    /// page-sized budget fits. Quorum is proven first by a read that costs etcd nothing, within
    /// a page's budget, so lost quorum is told as quickly as on any page. `op` then runs at the
    /// revision that read saw, from a member's local copy (which holds it once applied: as fresh
    /// as a linearizable read), for up to `budget`. Without quorum it runs on a member's own
    /// copy at its latest revision and the answer is marked stale. The answer's revision is the
    /// one `op` read at. `op` is given the revision to read at, or `None` for the latest.
    pub async fn read_large<T, F, Fut>(&self, budget: Duration, op: F) -> Result<Read<T>, EtcdError>
    where
        F: Fn(Client, Option<i64>) -> Fut,
        Fut: std::future::Future<Output = Result<(T, i64), etcd_client::Error>>,
    {
        let now = self
            .read(None, |mut client, serializable| async move {
                let mut o = GetOptions::new().with_count_only();
                if serializable {
                    o = o.with_serializable();
                }
                let r = client.get(vec![0], Some(o)).await?;
                let rev = r.header().map_or(0, |h| h.revision());
                Ok(((), rev))
            })
            .await?;
        let at = (!now.stale).then_some(now.revision);
        let started = Instant::now();
        let mut last_reason = String::from("no member tried");
        let pinned = |client, _serializable| op(client, at);
        match self
            .race(&pinned, true, at, budget, self.timeout, &mut last_reason)
            .await?
        {
            Some((value, revision)) => Ok(Read {
                value,
                revision: at.unwrap_or(revision),
                stale: now.stale,
            }),
            None => Err(EtcdError::Unavailable {
                cluster: self.name.clone(),
                waited_ms: started.elapsed().as_millis(),
                detail: self.explain(last_reason),
            }),
        }
    }

    /// [`EtcdCluster::write`] for a write whose work on etcd grows with its size (a prefix
    /// deletion): it gets `extra` time beyond the timeout, and the next member is asked only
    /// after the one before failed, as for every write.
    pub async fn write_given<T, F, Fut>(&self, extra: Duration, op: F) -> Result<Read<T>, EtcdError>
    where
        F: Fn(Client, bool) -> Fut,
        Fut: std::future::Future<Output = Result<(T, i64), etcd_client::Error>>,
    {
        let budget = self.timeout.saturating_add(extra);
        let started = Instant::now();
        let mut last_reason = String::from("no member tried");
        match self
            .race(&op, false, None, budget, budget, &mut last_reason)
            .await?
        {
            Some((value, revision)) => {
                // Cached listing pages wait for this write's watch event: read-your-writes.
                self.index.pages().note_write(revision);
                Ok(Read {
                    value,
                    revision,
                    stale: false,
                })
            }
            None => Err(EtcdError::Unavailable {
                cluster: self.name.clone(),
                waited_ms: started.elapsed().as_millis(),
                detail: self.explain(last_reason),
            }),
        }
    }

    /// [`EtcdCluster::write`] for writes whose retry is not harmless: `op` is told whether this
    /// attempt is a retry (an earlier one failed, and may have been applied without an answer),
    /// and so is the caller, so that either can recognise the earlier attempt's own write.
    pub async fn write_noting_retries<T, F, Fut>(&self, op: F) -> Result<(Read<T>, bool), EtcdError>
    where
        F: Fn(Client, bool) -> Fut,
        Fut: std::future::Future<Output = Result<(T, i64), etcd_client::Error>>,
    {
        let attempts = AtomicUsize::new(0);
        let read = self
            .write(|c, _| op(c, attempts.fetch_add(1, Ordering::Relaxed) > 0))
            .await?;
        Ok((read, attempts.load(Ordering::Relaxed) > 1))
    }

    /// Reads one key with its metadata and, when it has a lease, the lease's remaining TTL.
    pub async fn get(&self, key: &[u8]) -> Result<Read<Option<KeyRecord>>, EtcdError> {
        let key = key.to_vec();
        let read = self
            .read(None, |client, serializable| {
                let key = key.clone();
                async move {
                    let mut opts = GetOptions::new();
                    if serializable {
                        opts = opts.with_serializable();
                    }
                    let resp = kv(&client).get(key, Some(opts)).await?;
                    let rev = resp.header().map_or(0, |h| h.revision());
                    let record = resp.kvs().first().map(record_of);
                    Ok((record, rev))
                }
            })
            .await?;
        let mut read = read;
        if let Some(rec) = read.value.as_mut() {
            if rec.lease != 0 {
                rec.ttl = self.lease_ttl(rec.lease).await;
            }
        }
        Ok(read)
    }

    /// Remaining TTL of a lease, or `None` when it cannot be read quickly (it needs the leader).
    async fn lease_ttl(&self, lease: i64) -> Option<i64> {
        let read = self
            .read(None, |mut client, _| async move {
                let resp = client.lease_time_to_live(lease, None).await?;
                Ok((resp.ttl(), resp.header().map_or(0, |h| h.revision())))
            })
            .await
            .ok()?;
        (!read.stale).then_some(read.value)
    }

    /// Runs a batch of ranges, [`MAX_TXN_OPS`] to a txn, all at one revision: `revision` when
    /// pinned, else the one the first txn read at. Returns the responses and that revision.
    async fn batch_ranges(
        mut client: Client,
        reqs: &[RangeReq],
        revision: Option<i64>,
        serializable: bool,
    ) -> Result<(Vec<RangeResp>, i64), etcd_client::Error> {
        let mut chunks = reqs.chunks(MAX_TXN_OPS);
        let Some(first) = chunks.next() else {
            return Ok((Vec::new(), revision.unwrap_or(0)));
        };
        let (mut out, rev) = Self::txn_ranges(&mut client, first, revision, serializable).await?;
        let pinned = revision.or(Some(rev).filter(|r| *r > 0));
        // The member that answered the first chunk has applied the pinned revision, and what a
        // revision holds never changes: the rest are snapshot reads on that member, without
        // another linearizable round (the leader's heartbeats) each.
        let rest_serializable = serializable || pinned.is_some();
        let rest: Vec<_> = chunks
            .map(|chunk| {
                let mut c = client.clone();
                async move { Self::txn_ranges(&mut c, chunk, pinned, rest_serializable).await }
            })
            .collect();
        for result in futures::future::join_all(rest).await {
            out.extend(result?.0);
        }
        Ok((out, pinned.unwrap_or(rev)))
    }

    /// Runs one chunk of ranges as a single read-only txn (one range alone as a plain range
    /// request, which costs etcd less than a txn of one).
    async fn txn_ranges(
        client: &mut Client,
        reqs: &[RangeReq],
        revision: Option<i64>,
        serializable: bool,
    ) -> Result<(Vec<RangeResp>, i64), etcd_client::Error> {
        if let [r] = reqs {
            let (key, opts) = range_request(r, revision, serializable);
            let resp = kv(client).get(key, Some(opts)).await?;
            let rev = resp.header().map_or(0, |h| h.revision());
            return Ok((vec![range_response(r, resp)], rev));
        }
        let ops: Vec<TxnOp> = reqs
            .iter()
            .map(|r| {
                let (key, opts) = range_request(r, revision, serializable);
                TxnOp::get(key, Some(opts))
            })
            .collect();
        let resp = kv(client).txn(Txn::new().and_then(ops)).await?;
        let rev = resp.header().map_or(0, |h| h.revision());
        let out = resp
            .op_responses()
            .into_iter()
            .zip(reqs)
            .map(|(op, r)| match op {
                TxnOpResponse::Get(g) => range_response(r, g),
                _ => RangeResp::default(),
            })
            .collect();
        Ok((out, rev))
    }
}

/// The etcd range request for `r`: keys only, at most `r.limit` of them, or only a count for a
/// one-key range (see [`single_key`]).
fn range_request(r: &RangeReq, revision: Option<i64>, serializable: bool) -> (Vec<u8>, GetOptions) {
    let mut o = if single_key(r) {
        GetOptions::new().with_count_only()
    } else {
        GetOptions::new()
            .with_keys_only()
            .with_limit(r.limit.max(1) as i64)
    }
    .with_range(r.end.clone().unwrap_or_else(|| vec![0]));
    if let Some(rev) = revision {
        o = o.with_revision(rev);
    }
    if serializable {
        o = o.with_serializable();
    }
    // etcd has no empty key; the empty start means "from the first key".
    let start = if r.start.is_empty() {
        vec![0]
    } else {
        r.start.clone()
    };
    (start, o)
}

/// etcd's answer to [`range_request`] for `r`.
fn range_response(r: &RangeReq, mut g: etcd_client::GetResponse) -> RangeResp {
    let count = g.count().max(0) as u64;
    let keys = if single_key(r) {
        // Counted, not read: the one key the range can hold is its start.
        if count > 0 {
            vec![r.start.clone()]
        } else {
            Vec::new()
        }
    } else {
        g.take_kvs()
            .into_iter()
            .map(|kv| kv.key().to_vec())
            .collect()
    };
    RangeResp { count, keys }
}

impl RangeSource for EtcdCluster {
    type Error = EtcdError;

    async fn ranges(&self, reqs: Vec<RangeReq>, revision: Option<i64>) -> Result<Batch, EtcdError> {
        let started = Instant::now();
        // A page pinned to a revision (the next pages of a listing) reads a snapshot no later
        // write can change: any member that has applied the revision can answer it, without the
        // leader's round of heartbeats a linearizable read costs. A page "as of now" reads the
        // snapshot at a fresh point, whose round it shares with the pages asked at the same time.
        // While quorum is lost, reads go the degraded way below, so that they are marked stale.
        let snapshot = match revision {
            Some(at) => Some(at),
            None if !self.degraded() => match self.fresh_point(&reqs).await {
                Fresh::Read(batch) => return Ok(batch),
                Fresh::At(at) => Some(at),
                Fresh::Unknown => None,
            },
            None => None,
        }
        .filter(|_| !self.degraded());
        // Wait for a turn, but never longer than a page may take: past that, read anyway.
        let _turn = tokio::time::timeout(
            LINEARIZABLE_BUDGET.saturating_sub(started.elapsed()),
            self.browse_permits.acquire(),
        )
        .await;
        if let Some(at) = snapshot {
            match self.snapshot_ranges(&reqs, at).await {
                Ok(Some(batch)) => return Ok(batch),
                // Nobody had it in time (members down, or behind the watch): the usual way.
                Ok(None) => {}
                Err(e @ (EtcdError::Compacted(_) | EtcdError::Rejected(_))) => return Err(e),
                Err(e) => debug!(cluster = %self.name, error = %e, "snapshot read failed"),
            }
        }
        let budget = LINEARIZABLE_BUDGET.min(self.timeout);
        self.ranges_within(reqs, revision, budget.saturating_sub(started.elapsed()))
            .await
    }
}

impl EtcdCluster {
    /// Where a page "as of now" is read: from a linearizable round shared with the pages asked at
    /// the same time (see [`crate::etcd::barrier`]). When no round is in flight the page's own
    /// read is the round, so a lone page costs one linearizable read as it always did, and the
    /// pages asked meanwhile read the snapshot at its revision.
    async fn fresh_point(&self, reqs: &[RangeReq]) -> Fresh {
        let budget = LINEARIZABLE_BUDGET.min(self.timeout);
        let mut own: Option<(Vec<RangeResp>, i64)> = None;
        let own_read = &mut own;
        let round = |sent: std::time::Instant| async move {
            // The round is a page read too, so it takes a turn like the others: at most
            // BROWSE_READS_IN_FLIGHT page reads per cluster are in flight, rounds included. Waiting
            // keeps `sent`, which only makes the proof the round gives older, never wrong.
            let _turn = tokio::time::timeout(
                budget.saturating_sub(sent.elapsed()),
                self.browse_permits.acquire(),
            )
            .await;
            let mut reason = String::new();
            let op = |client: Client, _| async move {
                Self::batch_ranges(client, reqs, None, false).await
            };
            let answered = self
                .race(&op, false, None, budget, HEDGE_DELAY, &mut reason)
                .await;
            match answered {
                Ok(Some((responses, revision))) if revision > 0 => {
                    self.answered_linearizably(sent, revision);
                    *own_read = Some((responses, revision));
                    Some(revision)
                }
                _ => {
                    debug!(cluster = %self.name, %reason, "no fresh point");
                    None
                }
            }
        };
        let point = self.barrier.fresh_point(|sent| round(sent.into_std()));
        let point = tokio::time::timeout(budget, point).await.ok().flatten();
        match (own, point) {
            (Some((responses, revision)), _) => Fresh::Read(Batch {
                revision,
                responses,
                stale: false,
            }),
            (None, Some(p)) => Fresh::At(p.revision),
            (None, None) => Fresh::Unknown,
        }
    }

    /// Reads a batch of ranges at revision `at`, serializable, from the members in turn.
    /// `Ok(None)` when no member could answer within [`SNAPSHOT_BUDGET`].
    async fn snapshot_ranges(
        &self,
        reqs: &[RangeReq],
        at: i64,
    ) -> Result<Option<Batch>, EtcdError> {
        let mut reason = String::new();
        let found = self
            .race(
                &|client: Client, _| async move {
                    Self::batch_ranges(client, reqs, Some(at), true).await
                },
                true,
                Some(at),
                SNAPSHOT_BUDGET,
                SNAPSHOT_HEDGE,
                &mut reason,
            )
            .await?;
        Ok(found.map(|(responses, revision)| Batch {
            revision,
            responses,
            stale: false,
        }))
    }

    /// Reads a batch of ranges at one revision, with `budget` for the linearizable phase.
    pub async fn ranges_within(
        &self,
        reqs: Vec<RangeReq>,
        revision: Option<i64>,
        budget: Duration,
    ) -> Result<Batch, EtcdError> {
        let reqs = Arc::new(reqs);
        let read = self
            .read_within(revision, budget, |client, serializable| {
                let reqs = reqs.clone();
                async move { Self::batch_ranges(client, &reqs, revision, serializable).await }
            })
            .await?;
        Ok(Batch {
            revision: read.revision,
            responses: read.value,
            stale: read.stale,
        })
    }
}

/// Where a page "as of now" stands after [`EtcdCluster::fresh_point`].
enum Fresh {
    /// Its own read was the linearizable round: the answer.
    Read(Batch),
    /// Another page's round answered at this revision: read the snapshot there.
    At(i64),
    /// No round answered in time, or etcd refused it: read the usual way, which says why.
    Unknown,
}

/// The member after `after` in `order` (round the end), or the first when there is no `after` or
/// it is not in the order.
fn next_member(order: &[usize], after: Option<usize>) -> usize {
    let first = order.first().copied().unwrap_or(0);
    match after.and_then(|a| order.iter().position(|m| *m == a)) {
        Some(at) => order.get((at + 1) % order.len()).copied().unwrap_or(first),
        None => first,
    }
}

/// The endpoint whose member most members name as leader, from `(endpoint, member id, leader id)`
/// as each endpoint's status said.
fn leader_slot(said: &[(usize, u64, u64)]) -> Option<usize> {
    let mut votes: Vec<(u64, usize)> = Vec::new();
    for (_, _, l) in said.iter().filter(|(_, _, l)| *l != 0) {
        match votes.iter_mut().find(|(v, _)| v == l) {
            Some((_, n)) => *n += 1,
            None => votes.push((*l, 1)),
        }
    }
    let (leader, _) = votes.into_iter().max_by_key(|(_, n)| *n)?;
    said.iter()
        .find(|(_, id, _)| *id == leader)
        .map(|(i, _, _)| *i)
}

/// True when `r` can hold only its start key (`[k, k\0)`, the anchors of tree listings). etcd
/// answers such a range as a count alone from its index, without reading the key-value from its
/// database file, and the key it proves is known already.
fn single_key(r: &RangeReq) -> bool {
    // `end == start + [0]` (what `key_after` builds), compared without building it: this runs
    // twice for each of the ~200 ranges of a tree page.
    !r.start.is_empty()
        && r.end
            .as_deref()
            .is_some_and(|e| e.strip_suffix(&[0]) == Some(r.start.as_slice()))
}

/// A key-value from etcd as a domain record (TTL not known yet).
pub(crate) fn record_of(kv: &etcd_client::KeyValue) -> KeyRecord {
    KeyRecord {
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
        ttl: None,
        key: kv.key().to_vec(),
        value: kv.value().to_vec(),
    }
}

/// A short, address-free reason for logs and error pages.
pub fn short_reason(e: &etcd_client::Error) -> String {
    if let Some(tls) = tls_failure(e) {
        return tls;
    }
    match e {
        etcd_client::Error::GRpcStatus(s) => s.message().to_string(),
        etcd_client::Error::TransportError(_) => {
            "transport error (connection refused or reset)".into()
        }
        etcd_client::Error::IoError(e) => format!("i/o error: {}", e.kind()),
        other => {
            let text = other.to_string();
            text.chars().take(120).collect()
        }
    }
}

/// A TLS handshake failure anywhere in the error's chain, said with the setting to check. tonic
/// reports these as a bare "transport error"; rustls' own words name no address (at most the
/// names in the server's certificate, i.e. the configured server's).
fn tls_failure(e: &etcd_client::Error) -> Option<String> {
    let (mut texts, mut cur): (Vec<String>, Option<&(dyn std::error::Error + 'static)>) = match e {
        etcd_client::Error::GRpcStatus(s) => {
            (vec![s.message().to_string()], std::error::Error::source(s))
        }
        etcd_client::Error::TransportError(t) => (Vec::new(), Some(t)),
        _ => return None,
    };
    while let Some(err) = cur {
        texts.push(err.to_string());
        cur = err.source();
    }
    for full in texts {
        let text: String = full.chars().take(200).collect();
        if text.contains("invalid peer certificate") {
            let check = if text.contains("not valid for name") || text.contains("NotValidForName") {
                "check tls.server_name"
            } else {
                "check tls.ca"
            };
            return Some(format!(
                "TLS: the server's certificate is not trusted ({text}; {check})"
            ));
        }
        if text.contains("received fatal alert") {
            return Some(format!(
                "TLS: the server refused the connection ({text}; check tls.cert and tls.key)"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_start_at_the_member_that_answered_last_and_ask_the_leader_last() {
        assert_eq!(member_order(3, 0, None), vec![0, 1, 2]);
        assert_eq!(member_order(3, 1, None), vec![1, 2, 0]);
        // The last answer came from the leader (every follower had failed): followers first again.
        assert_eq!(member_order(3, 0, Some(0)), vec![1, 2, 0]);
        assert_eq!(member_order(3, 2, Some(0)), vec![2, 1, 0]);
        assert_eq!(member_order(5, 3, Some(4)), vec![3, 0, 1, 2, 4]);
        // One endpoint (a load balancer in front of the members): nothing to choose.
        assert_eq!(member_order(1, 0, Some(0)), vec![0]);
        // A leader index from a longer endpoint list than this one is ignored.
        assert_eq!(member_order(2, 1, Some(7)), vec![1, 0]);
    }

    #[test]
    fn a_watch_moves_on_to_the_member_after_the_one_it_left() {
        assert_eq!(next_member(&[1, 2, 0], None), 1);
        assert_eq!(next_member(&[1, 2, 0], Some(1)), 2);
        // Reads moved on meanwhile: the order starts elsewhere, the hung member is not retried.
        assert_eq!(next_member(&[1, 0, 2], Some(0)), 2);
        assert_eq!(next_member(&[1, 0, 2], Some(2)), 1);
        assert_eq!(next_member(&[0], Some(0)), 0);
        assert_eq!(next_member(&[2, 0], Some(5)), 2);
    }

    #[test]
    fn the_leader_is_the_member_most_endpoints_name() {
        // (endpoint, member id, leader id it names)
        assert_eq!(
            leader_slot(&[(0, 10, 20), (1, 20, 20), (2, 30, 20)]),
            Some(1)
        );
        // A member cut off still names the old leader; the majority wins.
        assert_eq!(
            leader_slot(&[(0, 10, 10), (1, 20, 30), (2, 30, 30)]),
            Some(2)
        );
        // No leader (0), or the leader is not among the configured endpoints.
        assert_eq!(leader_slot(&[(0, 10, 0), (1, 20, 0)]), None);
        assert_eq!(leader_slot(&[(0, 10, 99), (1, 20, 99)]), None);
        assert_eq!(leader_slot(&[]), None);
    }

    #[test]
    fn a_members_own_words_outrank_a_dead_members_connection_error() {
        assert!(says_more(
            "etcdserver: no leader",
            "tcp connect error: Connection refused"
        ));
        assert!(!says_more(
            "tcp connect error: Connection refused",
            "etcdserver: no leader"
        ));
        assert!(says_more("tcp connect error: x", "no member tried"));
        assert!(says_more(
            "etcdserver: request timed out",
            "etcdserver: no leader"
        ));
    }
}
