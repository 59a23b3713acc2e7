//! A real, throw-away etcd cluster of N members on 127.0.0.1.
//!
//! `etcdboard demo` and every integration test need a genuine etcd (not a
//! mock) so that what the dashboard shows — leaders, dead members, raft
//! indexes, quota alarms — is what an operator would see. [`LocalCluster`]
//! spawns the `etcd` binary once per member, each with its own data dir and
//! log file inside one [`tempfile::TempDir`], and makes sure none of those
//! processes outlives the cluster value or the process that owns it:
//!
//! * [`Drop`] kills and reaps every member, also while a test unwinds from a
//!   panic;
//! * each member is spawned with `prctl(PR_SET_PDEATHSIG, SIGKILL)`, so the
//!   kernel kills it if the owning process dies abruptly (SIGKILL, abort).
//!   Because that signal follows the death of the *thread* that forked the
//!   child, members are forked from one dedicated, never-ending spawner
//!   thread rather than from whatever (possibly short-lived) runtime thread
//!   called [`LocalCluster::start`].
//!
//! Members can also be added and removed the way an operator does it
//! ([`LocalCluster::add_member`], [`LocalCluster::remove_member`]), so the
//! dashboard's membership views can be tested against real reconfigurations.
//!
//! Every network call made here (health probes, membership calls) has a
//! deadline.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::{Client, ConnectOptions};

/// How long [`LocalCluster::start`] waits for one attempt to produce a
/// cluster with a leader in which every member answers. Generous because a
/// 2-core CI box may be running several clusters and compilers at once; a
/// normal start takes about one second.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times [`LocalCluster::start`] tries with fresh ports when a member
/// could not bind its port (another process took it between our probe and
/// etcd's bind).
const START_ATTEMPTS: usize = 4;

/// How long [`LocalCluster::restart`] waits for the restarted process to
/// serve its peer port.
const RESTART_TIMEOUT: Duration = Duration::from_secs(15);

/// Deadline for one HTTP request to a member's peer port.
const PEER_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Pause between two peer-port probes of a starting member.
const PEER_PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// First deadline for each step (connect, status, get) of a health probe.
/// A member that has bound its port but is not ready yet accepts the TCP
/// connection and then says nothing, so a short deadline retried often finds
/// readiness much sooner than one long wait.
const PROBE_FIRST_TIMEOUT: Duration = Duration::from_millis(250);

/// The per-step deadline doubles after every unhealthy round up to this, so
/// a heavily loaded machine still gets through.
const PROBE_MAX_TIMEOUT: Duration = Duration::from_secs(4);

/// Pause between two rounds of health probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Deadline of one membership call (member list, add, update, remove) and
/// of connecting the client that makes it.
const MEMBERSHIP_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a membership change is retried while etcd refuses it for a
/// reason that passes: with its strict reconfiguration check etcd 3.4 only
/// adds a member once every voting member has been connected for 5 s
/// ("unhealthy cluster"), which a freshly started cluster is not yet.
const MEMBERSHIP_RETRY_FOR: Duration = Duration::from_secs(20);

/// Pause between two attempts of a refused membership change.
const MEMBERSHIP_RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// How many lines of a member's log go into an error message.
const LOG_TAIL_LINES: usize = 25;

/// Key read by the linearizable health probe. It never needs to exist: a
/// linearizable range on a missing key still goes through raft's read index.
const PROBE_KEY: &str = "__etcdboard_local_health_probe__";

/// How a [`LocalCluster`] is started.
///
/// Kept deliberately small; build it with `..Default::default()` so that new
/// knobs do not break callers.
#[derive(Debug, Clone)]
pub struct LocalClusterOptions {
    /// Number of members (default 3: the smallest cluster that survives the
    /// loss of a member, which is what the dashboard's failure views need).
    pub members: usize,
    /// Passed as `--quota-backend-bytes` when set, so tests can fill the
    /// backend and trigger a NOSPACE alarm quickly.
    pub quota_backend_bytes: Option<u64>,
    /// The etcd binary to run; `None` looks up `etcd` on `PATH`.
    pub etcd_binary: Option<PathBuf>,
    /// Extra flags appended to every member's command line (also on
    /// [`LocalCluster::restart`]), for experiments the options above do not
    /// cover.
    pub extra_args: Vec<String>,
    /// Serve clients over TLS (https client URLs); `None` (the default, and
    /// what `etcdboard demo` uses) serves plain http. Peers always talk http.
    pub tls: Option<LocalTls>,
    /// What members advertise as their client URL (what member lists show).
    pub advertise: Advertise,
}

/// The client URL members advertise, for trying clients placed as they are in Kubernetes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Advertise {
    /// The URL each member listens on (the default).
    #[default]
    Own,
    /// In-cluster names that do not resolve here (`http://m1.etcd.invalid:2379`), as a member
    /// list looks from a `kubectl port-forward`.
    Unresolvable,
    /// Member 0's URL for every member, as with one address in front of all of them.
    Shared,
}

/// Client TLS of a [`LocalCluster`], as PEM files (e.g. made with `openssl`).
#[derive(Debug, Clone)]
pub struct LocalTls {
    /// `--cert-file`: the members' server certificate; its SANs must cover
    /// `127.0.0.1`, the host of the client URLs.
    pub cert_file: PathBuf,
    /// `--key-file`: its private key.
    pub key_file: PathBuf,
    /// `--trusted-ca-file`: the CA that signed client certificates; also
    /// what the cluster's own probes trust the server certificate with.
    pub ca_file: PathBuf,
    /// `--client-cert-auth`: refuse clients without a certificate signed by
    /// `ca_file`.
    pub client_cert_auth: bool,
    /// Certificate and key files the cluster's own probes and membership
    /// calls present (required with `client_cert_auth`).
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

impl Default for LocalClusterOptions {
    /// Three members, no quota, `etcd` from `PATH`, no extra flags.
    fn default() -> Self {
        LocalClusterOptions {
            members: 3,
            quota_backend_bytes: None,
            etcd_binary: None,
            extra_args: Vec::new(),
            tls: None,
            advertise: Advertise::Own,
        }
    }
}

/// Why a [`LocalCluster`] operation failed. Messages carry the tail of the
/// relevant member log, because "etcd did not come up" is useless without it.
#[derive(Debug, thiserror::Error)]
pub enum LocalClusterError {
    /// No `etcd` executable on `PATH`; the message tells how to install it.
    #[error("etcd binary not found on PATH; install it with: sudo apt-get install etcd-server")]
    EtcdNotFound,
    /// [`LocalClusterOptions::etcd_binary`] names a file that does not exist
    /// or is not executable.
    #[error("etcd binary {} does not exist or is not executable; install etcd with: sudo apt-get install etcd-server", path.display())]
    EtcdBinaryMissing {
        /// The configured path.
        path: PathBuf,
    },
    /// The options cannot describe a cluster (e.g. zero members).
    #[error("invalid local cluster options: {0}")]
    InvalidOptions(String),
    /// A member index that the cluster does not have.
    #[error("no member with index {index} (cluster has {members} members)")]
    NoSuchMember {
        /// The index asked for.
        index: usize,
        /// How many members the cluster has.
        members: usize,
    },
    /// Creating files/dirs, probing ports or spawning a process failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A member process exited while it was expected to run.
    #[error("etcd member {member} exited ({status}); last lines of {}:\n{log_tail}", log.display())]
    MemberExited {
        /// Member name, e.g. `m1`.
        member: String,
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        log_tail: String,
    },
    /// A membership change (member add/update/remove) was refused by etcd,
    /// could not be asked in time, or is not possible for this member.
    #[error("{what} failed: {reason}")]
    Membership {
        /// What was being done, e.g. `adding member m3`.
        what: String,
        /// Why it failed (etcd's answer, or ours).
        reason: String,
    },
    /// The cluster (or a member) did not become healthy in time. `detail`
    /// lists what each unhealthy member last answered plus its log tail.
    #[error("{what} not ready after {waited:?}:\n{detail}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        waited: Duration,
        /// Per-member diagnostics.
        detail: String,
    },
}

impl LocalClusterError {
    /// A start attempt is worth repeating with fresh ports only when a member
    /// lost a race for its port.
    fn is_port_collision(&self) -> bool {
        match self {
            LocalClusterError::MemberExited { log_tail, .. } => {
                log_tail.contains("address already in use")
            }
            _ => false,
        }
    }
}

/// One etcd process slot; the process may be running, stopped (`SIGSTOP`) or killed.
#[derive(Debug)]
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    peer_addr: SocketAddr,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// `--initial-cluster` of this member: the bootstrap list for the first
    /// members, the membership at the time it was added for members added by
    /// [`LocalCluster::add_member`]. Only read by etcd on a member's first
    /// start (an existing data dir wins).
    initial_cluster: String,
    /// Set by [`LocalCluster::remove_member`]: the slot stays (indexes stay
    /// stable) but the member is gone from the cluster for good.
    removed: AtomicBool,
    /// `None` once killed (and reaped). A mutex because health checks
    /// (`&self`) need `try_wait`, which takes `&mut Child`.
    child: Mutex<Option<Child>>,
    /// Set by [`LocalCluster::stop`], cleared by [`LocalCluster::cont`].
    stopped: AtomicBool,
}

impl Member {
    /// Slot `i` (named `m{i}`) with its files in `dir`; not started.
    fn new(dir: &Path, i: usize, client_port: u16, peer_port: u16) -> Member {
        let name = format!("m{i}");
        let peer_addr = SocketAddr::from(([127, 0, 0, 1], peer_port));
        Member {
            client_url: format!("http://127.0.0.1:{client_port}"),
            peer_url: format!("http://{peer_addr}"),
            peer_addr,
            data_dir: dir.join(format!("{name}.etcd")),
            log_path: dir.join(format!("{name}.log")),
            name,
            initial_cluster: String::new(),
            removed: AtomicBool::new(false),
            child: Mutex::new(None),
            stopped: AtomicBool::new(false),
        }
    }

    /// Serves clients over https instead of http.
    fn with_client_tls(mut self, tls: bool) -> Member {
        if tls {
            self.client_url = self.client_url.replacen("http://", "https://", 1);
        }
        self
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        // A panic while holding this lock cannot leave the Option in a bad
        // state, so poisoning is ignored (shutdown must work while unwinding).
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pid while the process is alive (running or stopped). `None` once
    /// it was killed by us or exited on its own: an exited child is reaped
    /// by `try_wait`, after which its pid may belong to another process.
    fn live_pid(child: &mut Child) -> Option<libc::pid_t> {
        match child.try_wait() {
            Ok(None) => libc::pid_t::try_from(child.id()).ok(),
            Ok(Some(_)) | Err(_) => None,
        }
    }

    fn pid(&self) -> Option<u32> {
        let mut guard = self.child();
        let pid = Self::live_pid(guard.as_mut()?)?;
        u32::try_from(pid).ok()
    }

    fn signal(&self, sig: libc::c_int) {
        let mut guard = self.child();
        if let Some(pid) = guard.as_mut().and_then(Self::live_pid) {
            // SAFETY: kill(2) has no memory-safety preconditions. The pid is
            // that of our child, which `live_pid` just found not yet reaped
            // while we hold the lock, so it cannot be another process.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// SIGCONT (if stopped), SIGKILL and reap. Idempotent.
    fn kill_and_reap(&self) {
        let mut guard = self.child();
        if let Some(mut child) = guard.take() {
            let was_stopped = self.stopped.swap(false, Ordering::SeqCst);
            if let Some(pid) = Self::live_pid(&mut child) {
                if was_stopped {
                    // SAFETY: as in `signal`: our own child, not yet reaped.
                    unsafe {
                        libc::kill(pid, libc::SIGCONT);
                    }
                }
                if let Err(err) = child.kill() {
                    tracing::debug!(member = %self.name, %err, "kill etcd member");
                }
            }
            // Returns at once with the cached status if already reaped.
            if let Err(err) = child.wait() {
                tracing::warn!(member = %self.name, %err, "reap etcd member");
            }
        }
    }

    /// `Some(error)` while the process has exited on its own (it stays
    /// reported until the member is restarted or killed).
    fn exited(&self) -> Option<LocalClusterError> {
        let mut guard = self.child();
        let child = guard.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(LocalClusterError::MemberExited {
                member: self.name.clone(),
                status: status.to_string(),
                log: self.log_path.clone(),
                log_tail: log_tail(&self.log_path, LOG_TAIL_LINES),
            }),
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(member = %self.name, %err, "try_wait on etcd member");
                None
            }
        }
    }

    /// Killed on purpose by [`LocalCluster::kill`] (or never started).
    fn is_killed(&self) -> bool {
        self.child().is_none()
    }
}

/// A running N-member etcd cluster on loopback, owned by this value.
///
/// All data and logs live in a temporary directory deleted on drop; dropping
/// the value kills and reaps every member (see the module docs for the
/// safety net used when the owning process dies without dropping it).
#[derive(Debug)]
pub struct LocalCluster {
    members: Vec<Member>,
    etcd: PathBuf,
    token: String,
    quota_backend_bytes: Option<u64>,
    extra_args: Vec<String>,
    tls: Option<LocalTls>,
    advertise: Advertise,
    // Declared last so the directory is removed after members are gone.
    dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Start a fresh cluster and return once it has a leader and every member
    /// answers a linearizable read through its own endpoint, so callers can
    /// use it straight away. Retries with fresh ports if a member lost its
    /// port to another process.
    pub async fn start(opts: LocalClusterOptions) -> Result<LocalCluster, LocalClusterError> {
        if opts.members == 0 {
            return Err(LocalClusterError::InvalidOptions(
                "members must be at least 1".to_string(),
            ));
        }
        let etcd = resolve_etcd_binary(opts.etcd_binary.as_deref())?;
        let mut attempt = 1;
        loop {
            match Self::start_once(&opts, &etcd).await {
                Ok(cluster) => return Ok(cluster),
                Err(err) if err.is_port_collision() && attempt < START_ATTEMPTS => {
                    tracing::warn!(attempt, %err, "local etcd lost a port race; retrying with fresh ports");
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn start_once(
        opts: &LocalClusterOptions,
        etcd: &Path,
    ) -> Result<LocalCluster, LocalClusterError> {
        let dir = tempfile::Builder::new()
            .prefix("etcdboard-local-")
            .tempdir()
            .map_err(|source| LocalClusterError::Io {
                context: "create temp dir for local etcd cluster".to_string(),
                source,
            })?;
        let ports = free_ports(opts.members * 2)?;
        let mut members: Vec<Member> = (0..opts.members)
            .map(|i| Member::new(dir.path(), i, ports[2 * i], ports[2 * i + 1]))
            .map(|m| m.with_client_tls(opts.tls.is_some()))
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        for member in &mut members {
            member.initial_cluster.clone_from(&initial_cluster);
        }
        let cluster = LocalCluster {
            members,
            etcd: etcd.to_path_buf(),
            token: unique_token(),
            quota_backend_bytes: opts.quota_backend_bytes,
            extra_args: opts.extra_args.clone(),
            tls: opts.tls.clone(),
            advertise: opts.advertise,
            dir,
        };
        // On any error below, dropping `cluster` kills what was started.
        //
        // Members are started one after another, each once the previous one
        // serves its peer port. When bootstrapping, etcd 3.4 first asks every
        // other peer whether it already joined, with a 1 s timeout per peer;
        // a peer that has bound its port but does not serve yet lets that
        // request hang, so starting all members at once often costs 1-2 s.
        // A peer that refuses the connection or answers costs nothing.
        let started = Instant::now();
        for i in 0..cluster.members.len() {
            cluster.spawn_member(i, "new").await?;
            let left = START_TIMEOUT.saturating_sub(started.elapsed());
            cluster.wait_peer_serving(i, left).await?;
        }
        let what = format!("local etcd cluster of {} members", cluster.members.len());
        let left = START_TIMEOUT.saturating_sub(started.elapsed());
        cluster.wait_until_healthy(left, &what).await?;
        tracing::info!(
            endpoints = ?cluster.client_urls(),
            dir = %cluster.dir.path().display(),
            "local etcd cluster started"
        );
        Ok(cluster)
    }

    /// Client URLs (`http://127.0.0.1:PORT`), one per member in member order,
    /// to hand to a client or the dashboard. Members added with
    /// [`add_member`](Self::add_member) come last; removed members keep their
    /// place so that indexes stay stable.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Member names (`m0`, `m1`, …) in member order, as etcd reports them in
    /// member lists, so tests can match what the dashboard shows.
    pub fn member_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    /// OS pid of member `i` while its process is alive (running or stopped),
    /// or `None` if it was killed, exited on its own, or `i` is out of range;
    /// lets tests check the process really exists or is gone.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members.get(i).and_then(Member::pid)
    }

    /// Path of member `i`'s log file (stdout and stderr of every incarnation),
    /// for diagnosing a failing test.
    pub fn log_path(&self, i: usize) -> Option<PathBuf> {
        self.members.get(i).map(|m| m.log_path.clone())
    }

    /// SIGKILL member `i` and reap it, to simulate a crashed member. No-op if
    /// it is already killed or `i` is out of range.
    pub fn kill(&mut self, i: usize) {
        if let Some(member) = self.members.get(i) {
            member.kill_and_reap();
        }
    }

    /// SIGSTOP member `i`: the process keeps its sockets but stops answering,
    /// which is how a hung member looks to clients. Undo with
    /// [`cont`](Self::cont). No-op if it is killed or `i` is out of range.
    pub fn stop(&self, i: usize) {
        if let Some(member) = self.members.get(i) {
            if member.pid().is_some() {
                member.stopped.store(true, Ordering::SeqCst);
                member.signal(libc::SIGSTOP);
            }
        }
    }

    /// SIGCONT member `i`, resuming a member hung with [`stop`](Self::stop).
    pub fn cont(&self, i: usize) {
        if let Some(member) = self.members.get(i) {
            member.signal(libc::SIGCONT);
            member.stopped.store(false, Ordering::SeqCst);
        }
    }

    /// Start member `i` again (after [`kill`](Self::kill); a running member
    /// is killed first) with the same name, data dir and ports and
    /// `--initial-cluster-state existing`, to simulate a member coming back.
    ///
    /// Returns once the process serves its peer port. It does *not* wait for
    /// the member to serve clients, because that needs a quorum which may
    /// only exist after more members are restarted: call
    /// [`wait_healthy`](Self::wait_healthy) next.
    pub async fn restart(&mut self, i: usize) -> Result<(), LocalClusterError> {
        let members = self.members.len();
        let member = self
            .members
            .get(i)
            .ok_or(LocalClusterError::NoSuchMember { index: i, members })?;
        if member.removed.load(Ordering::SeqCst) {
            return Err(LocalClusterError::Membership {
                what: format!("restarting member {}", member.name),
                reason: "it was removed from the cluster".to_string(),
            });
        }
        member.kill_and_reap();
        self.spawn_member(i, "existing").await?;
        self.wait_peer_serving(i, RESTART_TIMEOUT).await
    }

    /// Add a new voting member the way an operator does: `MemberAdd` through
    /// the running members, then start the new process with the membership
    /// etcd answered and `--initial-cluster-state existing`. The new member
    /// gets the next index and name (`m3` after `m0`–`m2`) and its own ports,
    /// data dir and log in the cluster's directory, and is killed with the
    /// rest (same no-orphans guarantees as the first members).
    ///
    /// Retries the `MemberAdd` while etcd refuses it for a passing reason (a
    /// cluster younger than 5 s, an election); if another process takes the
    /// new member's port before etcd binds it, the member is moved to fresh
    /// ports with `MemberUpdate`. Returns the new index once the process
    /// serves its peer port; call [`wait_healthy`](Self::wait_healthy) to wait
    /// until it has caught up and serves clients.
    pub async fn add_member(&mut self) -> Result<usize, LocalClusterError> {
        self.add(false).await
    }

    /// As [`add_member`](Self::add_member), as a learner (non-voting until promoted; it serves
    /// no linearizable reads). [`wait_healthy`](Self::wait_healthy) does not apply to it.
    pub async fn add_learner(&mut self) -> Result<usize, LocalClusterError> {
        self.add(true).await
    }

    async fn add(&mut self, learner: bool) -> Result<usize, LocalClusterError> {
        let index = self.members.len();
        let ports = free_ports(2)?;
        let mut member = Member::new(self.dir.path(), index, ports[0], ports[1])
            .with_client_tls(self.tls.is_some());
        let what = format!("adding member {} ({})", member.name, member.peer_url);
        let admin = self.admin_client(None, &what).await?;
        let peer_url = member.peer_url.clone();
        let added = membership_call(&what, || {
            let mut client = admin.clone();
            let peer_url = peer_url.clone();
            let options = learner.then(|| etcd_client::MemberAddOptions::new().with_is_learner());
            async move { client.member_add([peer_url], options).await }
        })
        .await?;
        let id = added.member().map(etcd_client::Member::id).ok_or_else(|| {
            LocalClusterError::Membership {
                what: what.clone(),
                reason: "etcd did not return the added member".to_string(),
            }
        })?;
        let existing: Vec<(u64, String, Vec<String>)> = added
            .member_list()
            .iter()
            .map(|m| (m.id(), m.name().to_string(), m.peer_urls().to_vec()))
            .collect();
        member.initial_cluster = initial_cluster_with(&existing, id, &member);
        self.members.push(member);
        // From here on the slot exists, so whatever was spawned for it is
        // killed by `shutdown`/`Drop` like every other member.
        let mut attempt = 1;
        loop {
            self.spawn_member(index, "existing").await?;
            match self.wait_peer_serving(index, RESTART_TIMEOUT).await {
                Ok(()) => {
                    tracing::info!(member = %self.members[index].name, id = %format!("{id:x}"), "added etcd member");
                    return Ok(index);
                }
                Err(err) if err.is_port_collision() && attempt < START_ATTEMPTS => {
                    tracing::warn!(attempt, %err, "new etcd member lost a port race; moving it to fresh ports");
                    attempt += 1;
                    self.members[index].kill_and_reap();
                    let ports = free_ports(2)?;
                    let mut moved = Member::new(self.dir.path(), index, ports[0], ports[1])
                        .with_client_tls(self.tls.is_some());
                    let what = format!("moving new member {} to {}", moved.name, moved.peer_url);
                    let peer_url = moved.peer_url.clone();
                    membership_call(&what, || {
                        let mut client = admin.clone();
                        let peer_url = peer_url.clone();
                        async move { client.member_update(id, [peer_url]).await }
                    })
                    .await?;
                    moved.initial_cluster = initial_cluster_with(&existing, id, &moved);
                    self.members[index] = moved;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Remove member `i` from the cluster the way an operator does
    /// (`MemberRemove` through the other running members, the member's id
    /// found by its name), then kill and reap its process. Its slot stays, so
    /// the indexes of the other members do not change; it cannot be
    /// restarted. Removing a member that etcd no longer lists only kills its
    /// process.
    pub async fn remove_member(&mut self, i: usize) -> Result<(), LocalClusterError> {
        let members = self.members.len();
        let member = self
            .members
            .get(i)
            .ok_or(LocalClusterError::NoSuchMember { index: i, members })?;
        let what = format!("removing member {}", member.name);
        let admin = self.admin_client(Some(i), &what).await?;
        let listed = membership_call(&what, || {
            let mut client = admin.clone();
            async move { client.member_list().await }
        })
        .await?;
        let id = listed
            .members()
            .iter()
            .find(|m| m.name() == member.name || m.peer_urls().contains(&member.peer_url))
            .map(etcd_client::Member::id);
        if let Some(id) = id {
            membership_call(&what, || {
                let mut client = admin.clone();
                async move { client.member_remove(id).await }
            })
            .await?;
            tracing::info!(member = %member.name, id = %format!("{id:x}"), "removed etcd member");
        }
        // A removed etcd shuts itself down on its own; killing it here makes
        // that certain, and the mark makes `restart` refuse the slot.
        member.removed.store(true, Ordering::SeqCst);
        member.kill_and_reap();
        // If it was the leader, the others elect a new one now; a membership
        // change proposed meanwhile can be dropped and hang until etcd's own
        // request timeout, which is not safe to retry. Return once they agree.
        self.wait_until_healthy(RESTART_TIMEOUT, &what).await
    }

    /// A client for membership calls through the running members (all but
    /// `except`), requiring a leader, with deadlines.
    async fn admin_client(
        &self,
        except: Option<usize>,
        what: &str,
    ) -> Result<Client, LocalClusterError> {
        let urls: Vec<String> = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                Some(*i) != except
                    && !m.is_killed()
                    && !m.stopped.load(Ordering::SeqCst)
                    && !m.removed.load(Ordering::SeqCst)
            })
            .map(|(_, m)| m.client_url.clone())
            .collect();
        if urls.is_empty() {
            return Err(LocalClusterError::Membership {
                what: what.to_string(),
                reason: "no running member to ask".to_string(),
            });
        }
        let options = self
            .connect_options()?
            .with_connect_timeout(MEMBERSHIP_CALL_TIMEOUT)
            .with_timeout(MEMBERSHIP_CALL_TIMEOUT)
            .with_require_leader(true);
        let connect = Client::connect(urls, Some(options));
        match tokio::time::timeout(MEMBERSHIP_CALL_TIMEOUT, connect).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(err)) => Err(LocalClusterError::Membership {
                what: what.to_string(),
                reason: format!("connect: {err}"),
            }),
            Err(_) => Err(LocalClusterError::Membership {
                what: what.to_string(),
                reason: format!("connect: no answer after {MEMBERSHIP_CALL_TIMEOUT:?}"),
            }),
        }
    }

    /// Wait until member `i`'s peer port answers HTTP, which etcd does as
    /// soon as its server is set up (no quorum needed). Fails early with the
    /// member's log if it exits.
    async fn wait_peer_serving(
        &self,
        i: usize,
        timeout: Duration,
    ) -> Result<(), LocalClusterError> {
        let member = &self.members[i];
        let started = Instant::now();
        loop {
            if let Some(err) = member.exited() {
                return Err(err);
            }
            if peer_answers_http(member.peer_addr).await {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(LocalClusterError::Timeout {
                    what: format!("etcd member {}", member.name),
                    waited: started.elapsed(),
                    detail: format!(
                        "peer port {} does not answer HTTP; last lines of {}:\n{}",
                        member.peer_addr,
                        member.log_path.display(),
                        log_tail(&member.log_path, LOG_TAIL_LINES)
                    ),
                });
            }
            tokio::time::sleep(PEER_PROBE_INTERVAL).await;
        }
    }

    /// Wait until every running member (not killed, not stopped with `SIGSTOP`) sees a
    /// leader and answers a linearizable get through its own endpoint, so a
    /// test can tell "cluster recovered" from "cluster still converging".
    /// Fails early, with its log, if a member process exited on its own.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), LocalClusterError> {
        self.wait_until_healthy(timeout, "local etcd cluster").await
    }

    async fn wait_until_healthy(
        &self,
        timeout: Duration,
        what: &str,
    ) -> Result<(), LocalClusterError> {
        let started = Instant::now();
        let mut step_timeout = PROBE_FIRST_TIMEOUT;
        let options = self.connect_options()?;
        loop {
            let mut probes = Vec::new();
            for (i, member) in self.members.iter().enumerate() {
                if member.stopped.load(Ordering::SeqCst) || member.is_killed() {
                    continue;
                }
                if let Some(err) = member.exited() {
                    return Err(err);
                }
                let options = options.clone();
                probes.push(async move {
                    probe_member(&member.client_url, options, step_timeout)
                        .await
                        .map_err(|why| (i, why))
                });
            }
            let failures: Vec<(usize, String)> = futures::future::join_all(probes)
                .await
                .into_iter()
                .filter_map(Result::err)
                .collect();
            if failures.is_empty() {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                let mut detail = String::new();
                for (i, why) in failures {
                    let member = &self.members[i];
                    let _ = write!(
                        detail,
                        "member {} ({}): {why}\nlast lines of {}:\n{}\n",
                        member.name,
                        member.client_url,
                        member.log_path.display(),
                        log_tail(&member.log_path, LOG_TAIL_LINES)
                    );
                }
                return Err(LocalClusterError::Timeout {
                    what: what.to_string(),
                    waited: started.elapsed(),
                    detail,
                });
            }
            tracing::debug!(elapsed = ?started.elapsed(), ?failures, "local etcd members not healthy yet");
            step_timeout = (step_timeout * 2).min(PROBE_MAX_TIMEOUT);
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// Options for a client of this cluster: plain for an http cluster; with
    /// TLS (the CA, and the client identity when one is configured) for a
    /// [`LocalTls`] cluster. Read from the PEM files on each call, so no key
    /// material is held (or printed by `Debug`) here.
    pub fn connect_options(&self) -> Result<ConnectOptions, LocalClusterError> {
        let Some(tls) = &self.tls else {
            return Ok(ConnectOptions::new());
        };
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| LocalClusterError::Io {
                context: format!("read TLS file {}", path.display()),
                source,
            })
        };
        let mut options = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.ca_file)?));
        if let Some((cert, key)) = &tls.client_identity {
            options = options.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(ConnectOptions::new().with_tls(options))
    }

    /// Kill (SIGCONT first for stopped members) and reap every member. Safe
    /// to call more than once; [`Drop`] calls it too.
    pub fn shutdown(&mut self) {
        for member in &self.members {
            member.kill_and_reap();
        }
    }

    fn member_args(&self, i: usize, state: &str) -> Vec<OsString> {
        let m = &self.members[i];
        let advertised = match self.advertise {
            Advertise::Own => m.client_url.clone(),
            Advertise::Unresolvable => format!("http://{}.etcd.invalid:2379", m.name),
            Advertise::Shared => self.members[0].client_url.clone(),
        };
        let mut args: Vec<OsString> = vec![
            "--name".into(),
            m.name.clone().into(),
            "--data-dir".into(),
            m.data_dir.clone().into(),
            "--listen-client-urls".into(),
            m.client_url.clone().into(),
            "--advertise-client-urls".into(),
            advertised.into(),
            "--listen-peer-urls".into(),
            m.peer_url.clone().into(),
            "--initial-advertise-peer-urls".into(),
            m.peer_url.clone().into(),
            "--initial-cluster".into(),
            m.initial_cluster.clone().into(),
            "--initial-cluster-token".into(),
            self.token.clone().into(),
            "--initial-cluster-state".into(),
            state.into(),
            // Fast elections and failure detection for tests on a small box.
            "--heartbeat-interval".into(),
            "50".into(),
            "--election-timeout".into(),
            "500".into(),
            // Structured logger without the capnslog deprecation warning.
            "--logger".into(),
            "zap".into(),
            "--log-outputs".into(),
            "stderr".into(),
        ];
        if let Some(quota) = self.quota_backend_bytes {
            args.push("--quota-backend-bytes".into());
            args.push(quota.to_string().into());
        }
        if let Some(tls) = &self.tls {
            args.push("--cert-file".into());
            args.push(tls.cert_file.clone().into());
            args.push("--key-file".into());
            args.push(tls.key_file.clone().into());
            args.push("--trusted-ca-file".into());
            args.push(tls.ca_file.clone().into());
            if tls.client_cert_auth {
                args.push("--client-cert-auth".into());
            }
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }

    async fn spawn_member(&self, i: usize, state: &str) -> Result<(), LocalClusterError> {
        let member = &self.members[i];
        let io_err =
            |context: String| move |source: io::Error| LocalClusterError::Io { context, source };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log_path)
            .map_err(io_err(format!(
                "open log file {}",
                member.log_path.display()
            )))?;
        let log_err = log.try_clone().map_err(io_err(format!(
            "clone log file {}",
            member.log_path.display()
        )))?;
        let mut cmd = Command::new(&self.etcd);
        cmd.args(self.member_args(i, state))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        // etcd reads ETCD_<FLAG> variables and refuses to start when one
        // shadows a flag we pass, so drop inherited ones — except
        // ETCD_UNSUPPORTED_ARCH, which etcd needs on some architectures.
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("ETCD_") && key_text != "ETCD_UNSUPPORTED_ARCH" {
                cmd.env_remove(&key);
            }
        }
        let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe operations are allowed. It only makes the raw
        // prctl(2) and getppid(2) syscalls and builds an io::Error from a raw
        // errno value, none of which allocates or takes locks.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl; then the
                // death signal will never come, so refuse to start.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = spawn_from_long_lived_thread(cmd)
            .await
            .map_err(io_err(format!(
                "spawn {} for member {}",
                self.etcd.display(),
                member.name
            )))?;
        tracing::debug!(member = %member.name, pid = child.id(), state, "spawned etcd member");
        member.stopped.store(false, Ordering::SeqCst);
        *member.child() = Some(child);
        Ok(())
    }
}

impl Drop for LocalCluster {
    /// Never leave etcd processes behind, even when a test panics.
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One health probe of one member through its own endpoint only: it must
/// know a leader and serve a linearizable read, each step within
/// `step_timeout`. Returns why not, as text.
async fn probe_member(
    url: &str,
    options: ConnectOptions,
    step_timeout: Duration,
) -> Result<(), String> {
    let options = options
        .with_connect_timeout(step_timeout)
        .with_timeout(step_timeout)
        .with_require_leader(true);
    let mut client = tokio::time::timeout(step_timeout, Client::connect([url], Some(options)))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let status = tokio::time::timeout(step_timeout, client.status())
        .await
        .map_err(|_| "status timed out".to_string())?
        .map_err(|e| format!("status: {e}"))?;
    if status.leader() == 0 {
        return Err("no leader yet".to_string());
    }
    tokio::time::timeout(step_timeout, client.get(PROBE_KEY, None))
        .await
        .map_err(|_| "linearizable get timed out".to_string())?
        .map_err(|e| format!("linearizable get: {e}"))?;
    Ok(())
}

/// `--initial-cluster` for member `new` (etcd id `id`) joining a cluster
/// whose membership, as `MemberAdd` answered, is `existing` (id, name, peer
/// URLs). etcd matches this list against the real membership by peer URLs,
/// so it must name every member; members without a name yet (added, never
/// started) are named by their hex id.
fn initial_cluster_with(existing: &[(u64, String, Vec<String>)], id: u64, new: &Member) -> String {
    let mut entries = Vec::new();
    for (member_id, name, peer_urls) in existing {
        if *member_id == id {
            continue;
        }
        let name = if name.is_empty() {
            format!("{member_id:x}")
        } else {
            name.clone()
        };
        entries.extend(peer_urls.iter().map(|url| format!("{name}={url}")));
    }
    entries.push(format!("{}={}", new.name, new.peer_url));
    entries.join(",")
}

/// Runs one membership call with a deadline, retrying while etcd refuses it
/// for a reason that passes (see [`MEMBERSHIP_RETRY_FOR`]). Only refusals
/// that guarantee nothing was applied are retried, so a retried `MemberAdd`
/// can never add the member twice.
async fn membership_call<T, F, Fut>(what: &str, call: F) -> Result<T, LocalClusterError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let started = Instant::now();
    loop {
        let reason = match tokio::time::timeout(MEMBERSHIP_CALL_TIMEOUT, call()).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer after {MEMBERSHIP_CALL_TIMEOUT:?}"),
        };
        let passing = reason.contains("unhealthy cluster") || reason.contains("no leader");
        if !passing || started.elapsed() >= MEMBERSHIP_RETRY_FOR {
            return Err(LocalClusterError::Membership {
                what: what.to_string(),
                reason,
            });
        }
        tracing::debug!(what, %reason, "membership change refused for now; retrying");
        tokio::time::sleep(MEMBERSHIP_RETRY_INTERVAL).await;
    }
}

/// Whether an HTTP server answers on `addr` (any status), within
/// [`PEER_PROBE_TIMEOUT`]. Used on etcd peer ports, which serve plain HTTP.
async fn peer_answers_http(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await?;
        Ok::<bool, io::Error>(head.starts_with(b"HTTP/1."))
    };
    matches!(
        tokio::time::timeout(PEER_PROBE_TIMEOUT, exchange).await,
        Ok(Ok(true))
    )
}

/// `count` distinct free loopback ports. All probe sockets are held open
/// together so the kernel cannot hand out the same port twice; they are
/// closed before etcd binds, so a race with other processes remains, which
/// `start` covers by retrying.
fn free_ports(count: usize) -> Result<Vec<u16>, LocalClusterError> {
    let mut listeners = Vec::with_capacity(count);
    let mut ports = Vec::with_capacity(count);
    for _ in 0..count {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(|source| LocalClusterError::Io {
                context: "bind 127.0.0.1:0 to find a free port".to_string(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| LocalClusterError::Io {
                context: "read local address of probe socket".to_string(),
                source,
            })?
            .port();
        ports.push(port);
        listeners.push(listener);
    }
    Ok(ports)
}

/// A cluster token unique per process, time and call, so members of two
/// concurrently running test clusters can never join each other.
fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "etcdboard-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn resolve_etcd_binary(configured: Option<&Path>) -> Result<PathBuf, LocalClusterError> {
    if let Some(path) = configured {
        // A bare name ("etcd3") is looked up on PATH like the default.
        if path.components().count() == 1 && !path.exists() {
            return find_on_path(path.as_os_str()).ok_or(LocalClusterError::EtcdBinaryMissing {
                path: path.to_path_buf(),
            });
        }
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(LocalClusterError::EtcdBinaryMissing {
                path: path.to_path_buf(),
            })
        };
    }
    find_on_path("etcd".as_ref()).ok_or(LocalClusterError::EtcdNotFound)
}

fn find_on_path(name: &std::ffi::OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The last `lines` lines of a log file (reads at most its last 64 KiB), or
/// a note saying why it could not be read.
fn log_tail(path: &Path, lines: usize) -> String {
    const MAX_BYTES: u64 = 64 * 1024;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            if tail.is_empty() {
                "(log is empty)".to_string()
            } else {
                tail.join("\n")
            }
        }
        Err(err) => format!("(could not read log: {err})"),
    }
}

type SpawnJob = (Command, tokio::sync::oneshot::Sender<io::Result<Child>>);

/// Fork `cmd` from a dedicated thread that lives as long as the process.
///
/// `PR_SET_PDEATHSIG` fires when the thread that forked the child exits, not
/// the process: forking from a tokio blocking-pool thread (which exits after
/// 10 s idle) or a test thread would kill members early. If the spawner
/// thread cannot be created we fall back to forking from the current thread.
async fn spawn_from_long_lived_thread(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("etcdboard-etcd-spawner".to_string())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map_err(|err| tracing::warn!(%err, "cannot start etcd spawner thread"))
            .ok()
            .map(|_| tx)
    });
    let Some(spawner) = spawner else {
        return cmd.spawn();
    };
    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
    if let Err(mpsc::SendError((mut cmd, _))) = spawner.send((cmd, reply_tx)) {
        return cmd.spawn();
    }
    match reply_rx.await {
        Ok(result) => result,
        Err(_) => Err(io::Error::other("etcd spawner thread went away")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cluster_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LocalCluster>();
    }

    #[test]
    fn missing_binary_message_is_one_line() {
        let msg = LocalClusterError::EtcdNotFound.to_string();
        assert!(!msg.contains('\n'));
        assert!(msg.contains("apt-get install"));
    }

    #[test]
    fn only_bind_failures_are_retried() {
        let exited = |tail: &str| LocalClusterError::MemberExited {
            member: "m0".to_string(),
            status: "exit status: 1".to_string(),
            log: PathBuf::from("m0.log"),
            log_tail: tail.to_string(),
        };
        assert!(exited("listen tcp 127.0.0.1:1: bind: address already in use").is_port_collision());
        assert!(!exited("flag provided but not defined: -bogus").is_port_collision());
        assert!(!LocalClusterError::EtcdNotFound.is_port_collision());
    }

    #[test]
    fn a_joining_member_lists_every_member_by_peer_url() {
        let dir = Path::new("/tmp/x");
        let new = Member::new(dir, 3, 1000, 1001);
        let existing = vec![
            (1, "m0".to_string(), vec!["http://127.0.0.1:2".to_string()]),
            (7, String::new(), vec!["http://127.0.0.1:9".to_string()]),
            (42, String::new(), vec!["http://127.0.0.1:1001".to_string()]),
        ];
        assert_eq!(
            initial_cluster_with(&existing, 42, &new),
            "m0=http://127.0.0.1:2,7=http://127.0.0.1:9,m3=http://127.0.0.1:1001"
        );
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(10).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
    }
}
