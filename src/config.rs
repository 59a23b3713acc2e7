//! Typed configuration from flags, their `ETCDBOARD_*` environment twins, and an optional file that
//! lists many clusters. Everything is checked at start; an error names the field that is wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// Command line of the `etcdboard` binary.
#[derive(Debug, Parser)]
#[command(
    name = "etcdboard",
    version,
    about = "A web dashboard for etcd clusters on Kubernetes"
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log format: human-readable text or one JSON object per line.
    #[arg(
        long,
        env = "ETCDBOARD_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard for the configured etcd clusters.
    Serve(ServeArgs),
    /// Start a local 3-member etcd on loopback, seed sample data and serve the dashboard on it.
    Demo(DemoArgs),
    /// Read a password from standard input and print its argon2id hash for `--users-file`.
    HashPassword,
}

/// Flags shared by `serve` and `demo`.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Address to listen on.
    #[arg(long, env = "ETCDBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve under this path prefix (e.g. `/etcd` behind an ingress that does not strip it).
    #[arg(long, env = "ETCDBOARD_BASE_PATH", default_value = "")]
    pub base_path: String,
    /// Host names this dashboard is reached as (`etcd.example.com`, `*.example.com`, or `*` for
    /// any); requests naming another host get a 403, which stops DNS rebinding. localhost and IP
    /// addresses are always allowed. Default: only those on a loopback `--listen`, any name
    /// otherwise.
    #[arg(long, env = "ETCDBOARD_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Deadline for one etcd operation, e.g. `3s` or `500ms`.
    #[arg(long, env = "ETCDBOARD_ETCD_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub etcd_timeout: Duration,
    /// Page size of key listings (1-1000, the API's largest page).
    #[arg(long, env = "ETCDBOARD_PAGE_SIZE", default_value_t = 100)]
    pub page_size: usize,
    /// Largest key + value accepted in one write (etcd's `--max-request-bytes`, 1.5 MiB by default);
    /// larger writes get a 413 before etcd sees them. 1 KiB to 10 MiB.
    #[arg(long, env = "ETCDBOARD_MAX_VALUE_BYTES", default_value_t = crate::domain::edit::DEFAULT_MAX_VALUE_BYTES)]
    pub max_value_bytes: usize,
    /// Allow deleting the empty prefix (every key of a cluster). Off by default.
    #[arg(long, env = "ETCDBOARD_ALLOW_DELETE_ALL", default_value_t = false)]
    pub allow_delete_all: bool,
    /// Kubernetes: `auto` (in-cluster service account, else $KUBECONFIG / ~/.kube/config), `off`,
    /// or a kubeconfig path.
    #[arg(long, env = "ETCDBOARD_KUBE", default_value = "auto")]
    pub kube: String,
    /// How often each member's `/metrics` is scraped for the cluster page's charts.
    #[arg(long, env = "ETCDBOARD_METRICS_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub metrics_interval: Duration,
    /// On SIGTERM or Ctrl-C, how long in-flight requests may take to finish before the server
    /// stops anyway (live-update streams are closed at once with a reconnect hint).
    #[arg(long, env = "ETCDBOARD_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// How long a request may take to start its answer before it gets a 503 (streams and
    /// imports, maintenance, prefix deletions and lease revocations are exempt: they answer at
    /// once or are bounded by their own etcd deadlines).
    #[arg(long, env = "ETCDBOARD_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Identity, roles and audit.
    #[command(flatten)]
    pub access: AccessArgs,
}

/// How users are identified and what anonymous users may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum AuthMode {
    /// Nobody signs in; everyone has `--anonymous-role`.
    #[default]
    None,
    /// An authenticating proxy (oauth2-proxy, nginx `auth_request`) in front sets user and group
    /// headers; they are believed only from `--trusted-proxies`.
    Proxy,
    /// Built-in users from `--users-file`, with a login page and a signed cookie.
    Users,
}

/// Identity, roles and audit flags.
#[derive(Debug, Clone, Args, Default)]
pub struct AccessArgs {
    /// Who users are: `none`, `proxy` (trusted headers) or `users` (login page).
    #[arg(long, env = "ETCDBOARD_AUTH", value_enum, default_value = "none")]
    pub auth: AuthMode,
    /// Addresses (CIDRs) of the authenticating proxy; identity headers from anywhere else are
    /// ignored and logged.
    #[arg(long, env = "ETCDBOARD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Header naming the user (from the trusted proxy).
    #[arg(
        long,
        env = "ETCDBOARD_AUTH_USER_HEADER",
        default_value = "X-Auth-Request-User"
    )]
    pub auth_user_header: Option<String>,
    /// Header with the user's e-mail, used as the name when the user header is absent.
    #[arg(
        long,
        env = "ETCDBOARD_AUTH_EMAIL_HEADER",
        default_value = "X-Auth-Request-Email"
    )]
    pub auth_email_header: Option<String>,
    /// Header with the user's groups, comma-separated.
    #[arg(
        long,
        env = "ETCDBOARD_AUTH_GROUPS_HEADER",
        default_value = "X-Auth-Request-Groups"
    )]
    pub auth_groups_header: Option<String>,
    /// YAML file of built-in users: `users: [{name, password_hash, groups}]` (argon2 or bcrypt
    /// hashes; make one with `etcdboard hash-password`).
    #[arg(long, env = "ETCDBOARD_USERS_FILE")]
    pub users_file: Option<PathBuf>,
    /// File holding the key that signs login cookies (≥ 32 bytes). Give every replica the same
    /// file (a Secret); without it a random key is used and sessions end at restart.
    #[arg(long, env = "ETCDBOARD_SESSION_KEY_FILE")]
    pub session_key_file: Option<PathBuf>,
    /// How long a login lasts, from 1 minute to 7 days, e.g. `12h`, `90m` or `7d`.
    #[arg(long, env = "ETCDBOARD_SESSION_TTL", default_value = "12h", value_parser = parse_session_ttl)]
    pub session_ttl: Option<Duration>,
    /// Role of users nobody signed in for: `none` (sign-in required), `viewer`, `editor` or
    /// `admin`. Default `viewer` (read-only); `demo` defaults to `admin`.
    #[arg(long, env = "ETCDBOARD_ANONYMOUS_ROLE")]
    pub anonymous_role: Option<String>,
    /// Refuse every change (keys, leases, maintenance), whoever asks.
    #[arg(long, env = "ETCDBOARD_READ_ONLY", default_value_t = false)]
    pub read_only: bool,
    /// Where audit lines (one JSON object per change) go: `stdout` or a file path (appended).
    #[arg(long, env = "ETCDBOARD_AUDIT_LOG", default_value = "stdout")]
    pub audit_log: Option<String>,
    /// File holding a bearer token (≥ 16 characters) that lets a scraper that cannot sign in,
    /// like Prometheus, read `/metrics` and `/readyz`'s details. Without it they are open to
    /// whoever may see the pages.
    #[arg(long, env = "ETCDBOARD_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
}

/// Parses a login lifetime: a number with `s`, `m`, `h` or `d` (`90m`, `12h`, `7d`; a bare number
/// is seconds), from 1 minute up to 7 days.
pub fn parse_session_ttl(text: &str) -> Result<Duration, String> {
    let (value, unit) = split_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration like 12h, 90m or 7d"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use s, m, h or d)"
            ))
        }
    };
    // Also keeps NaN and infinity (from a very long number) away from `from_secs_f64`.
    if !(60.0..=MAX_SESSION_TTL_SECS).contains(&secs) {
        return Err(format!("`{text}` must be between 1 minute and 7 days"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Longest login: a stolen cookie stays good this long.
const MAX_SESSION_TTL_SECS: f64 = 7.0 * 86400.0;

/// Splits `90m` into 90 and `m` (a bare number into it and `s`); `None` when there is no number.
fn split_duration(text: &str) -> Option<(f64, &str)> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    num.parse().ok().map(|value| (value, unit))
}

impl Default for HttpArgs {
    /// The flags' defaults (without reading `ETCDBOARD_*`), for `demo`-like callers and tests that
    /// set only what they care about.
    fn default() -> Self {
        HttpArgs {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_path: String::new(),
            allowed_hosts: Vec::new(),
            etcd_timeout: Duration::from_secs(3),
            page_size: 100,
            max_value_bytes: crate::domain::edit::DEFAULT_MAX_VALUE_BYTES,
            allow_delete_all: false,
            kube: "auto".into(),
            metrics_interval: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            access: AccessArgs::default(),
        }
    }
}

/// `etcdboard serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// HTTP settings.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Client URLs of one cluster, named `default` (comma-separated).
    #[arg(long, env = "ETCDBOARD_ENDPOINTS", value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// A YAML or TOML file listing clusters (name, endpoints, TLS files, credentials from env/file).
    #[arg(long, env = "ETCDBOARD_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `etcdboard demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// HTTP settings.
    #[command(flatten)]
    pub http: HttpArgs,
    /// How many flat numeric keys (`1`…`N`, like the field report's write test) to seed.
    #[arg(long, env = "ETCDBOARD_DEMO_FLAT_KEYS", default_value_t = 100_000)]
    pub flat_keys: usize,
}

/// Parses `3s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (value, unit) = split_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration like 3s or 500ms"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use ms, s or m)")),
    };
    if !(secs > 0.0 && secs < 3600.0) {
        return Err(format!("`{text}` must be between 0 and 1 hour"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A secret read from env or a file; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it (the etcd client).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// TLS material for one cluster, as PEM read at start (and again when its files change: see
/// [`TlsConfig::reread`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// CA bundle to verify the servers.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key for client-cert auth.
    pub identity_pem: Option<(Vec<u8>, Secret)>,
    /// Server name to verify instead of the URL's host.
    pub server_name: Option<String>,
    /// Where the PEM was read from, to read it again.
    pub files: TlsFiles,
}

/// The files of a `tls:` block, and the configuration field that named them (for messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `clusters[0]` or `discovery[1]`.
    pub field: String,
    /// `tls.ca`.
    pub ca: Option<PathBuf>,
    /// `tls.cert`.
    pub cert: Option<PathBuf>,
    /// `tls.key`.
    pub key: Option<PathBuf>,
}

impl TlsConfig {
    /// Reads the same files again, with the checks made at start: certificate rotation (a
    /// Kubernetes Secret mounted as files, cert-manager, `kubeadm certs renew`) replaces them
    /// while the server runs. An error names the field and file, as at start.
    pub fn reread(&self) -> Result<TlsConfig, ConfigError> {
        let f = &self.files;
        load_tls(
            &f.field,
            FileTls {
                ca: f.ca.clone(),
                cert: f.cert.clone(),
                key: f.key.clone(),
                server_name: self.server_name.clone(),
            },
        )
    }
}

/// etcd user/password auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// etcd user name.
    pub username: String,
    /// Its password.
    pub password: Secret,
    /// The file it was read from (`password_file`), to read it again; `None` for `password_env`.
    pub password_file: Option<PathBuf>,
    /// The configuration field (`clusters[0]`), for messages.
    pub field: String,
}

impl Credentials {
    /// Reads `password_file` again (a rotated Secret), as at start; the same credentials when
    /// the password came from the environment.
    pub fn reread(&self) -> Result<Credentials, ConfigError> {
        let Some(file) = &self.password_file else {
            return Ok(self.clone());
        };
        Ok(Credentials {
            password: read_password_file(&self.field, file)?,
            ..self.clone()
        })
    }
}

/// A password from its file: the first line's content, without the line end.
fn read_password_file(field: &str, file: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigError(format!(
            "{field}.password_file: cannot read {}: {e}",
            file.display()
        ))
    })?;
    Ok(Secret(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// One etcd cluster etcdboard may talk to. Nothing else is ever dialled.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Name used in URLs (`[A-Za-z0-9._-]+`).
    pub name: String,
    /// Client URLs of its members.
    pub endpoints: Vec<String>,
    /// TLS settings, when the endpoints are https.
    pub tls: Option<TlsConfig>,
    /// Credentials, when etcd auth is enabled.
    pub credentials: Option<Credentials>,
    /// Tree separator shown by default.
    pub separator: String,
    /// Whether `/readyz` may report ready while this cluster is unreachable (a lab cluster must
    /// not take the dashboard of the production ones out of service).
    pub optional: bool,
    /// Where its pods are in Kubernetes (`kubernetes: {namespace, selector}`); when set, the
    /// topology uses exactly those pods and no discovery.
    pub kubernetes: Option<crate::domain::topology::KubeTarget>,
}

impl Default for ClusterConfig {
    /// No name, no endpoints (both must be set), plain HTTP, no auth, `/` separator.
    fn default() -> Self {
        ClusterConfig {
            name: String::new(),
            endpoints: Vec::new(),
            tls: None,
            credentials: None,
            separator: "/".into(),
            optional: false,
            kubernetes: None,
        }
    }
}

/// One `discovery:` rule: etcd clusters found in Kubernetes in these namespaces through these
/// sources may be browsed, with these credentials (never read from Secrets, never guessed).
#[derive(Debug, Clone)]
pub struct DiscoveryRule {
    /// Namespaces and sources it covers.
    pub matcher: crate::domain::discovery::RuleMatch,
    /// TLS settings; with them the pods are dialled over https.
    pub tls: Option<TlsConfig>,
    /// etcd credentials.
    pub credentials: Option<Credentials>,
    /// Tree separator of the clusters it covers.
    pub separator: String,
}

/// The whole server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Path prefix, `""` or `/something` without a trailing slash.
    pub base_path: String,
    /// Host names requests may name (DNS rebinding).
    pub allowed_hosts: crate::domain::hosts::AllowedHosts,
    /// Deadline for one etcd operation.
    pub etcd_timeout: Duration,
    /// Listing page size.
    pub page_size: usize,
    /// Largest key + value accepted in one write.
    pub max_value_bytes: usize,
    /// Whether deleting the empty prefix is allowed.
    pub allow_delete_all: bool,
    /// Metrics scrape interval.
    pub metrics_interval: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How long a request may take to start its answer.
    pub request_timeout: Duration,
    /// `--kube`: `auto`, `off` or a kubeconfig path.
    pub kube: String,
    /// Configured clusters, in the order given.
    pub clusters: Vec<ClusterConfig>,
    /// `discovery:` rules: which clusters found in Kubernetes may be browsed, and with what
    /// credentials. Empty: discovered clusters are only listed, never dialled.
    pub discovery: Vec<DiscoveryRule>,
    /// Identity, roles, audit.
    pub access: crate::access::AccessConfig,
}

/// A configuration error; its text names the field.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Normalises `--base-path`: `""`, `/`, `etcd`, `/etcd/` → `""`, `""`, `/etcd`, `/etcd`; refuses
/// anything that is not a clean prefix (`.`, `..` or empty segments, characters URLs would escape).
pub fn normalise_base_path(raw: &str) -> Result<String, ConfigError> {
    let trimmed = raw.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~/".contains(c))
    {
        return err(format!(
            "--base-path `{raw}` may only contain letters, digits, `-._~` and `/`"
        ));
    }
    // Browsers and proxies resolve `.`, `..` and `//` before the request reaches us, so such a
    // prefix would never match the URLs etcdboard itself writes into its pages.
    for segment in trimmed.split('/') {
        match segment {
            "" => {
                return err(format!(
                "--base-path `{raw}` has an empty segment (`//`); give a clean prefix like /etcd"
            ))
            }
            "." | ".." => {
                return err(format!(
                    "--base-path `{raw}` has a `{segment}` segment; give a clean prefix like /etcd"
                ))
            }
            _ => {}
        }
    }
    Ok(format!("/{trimmed}"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    clusters: Vec<FileCluster>,
    #[serde(default)]
    access: Option<crate::access::FileAccess>,
    #[serde(default)]
    discovery: Vec<FileDiscovery>,
}

/// One entry of `discovery:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDiscovery {
    namespaces: Vec<String>,
    #[serde(default)]
    sources: Option<Vec<String>>,
    #[serde(default)]
    tls: Option<FileTls>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    separator: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCluster {
    name: String,
    endpoints: Vec<String>,
    #[serde(default)]
    tls: Option<FileTls>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    kubernetes: Option<FileKube>,
}

/// `kubernetes:` of a cluster: the namespace and label selector of its pods.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKube {
    namespace: String,
    #[serde(default)]
    selector: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    #[serde(default)]
    ca: Option<PathBuf>,
    #[serde(default)]
    cert: Option<PathBuf>,
    #[serde(default)]
    key: Option<PathBuf>,
    #[serde(default)]
    server_name: Option<String>,
}

impl Config {
    /// Builds the configuration of `serve` from its flags (and the file they name).
    pub fn from_serve(args: &ServeArgs) -> Result<Config, ConfigError> {
        let mut clusters = Vec::new();
        if !args.endpoints.is_empty() {
            let endpoints: Vec<String> = args
                .endpoints
                .iter()
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect();
            clusters.push(check_cluster(
                "--endpoints",
                ClusterConfig {
                    name: "default".into(),
                    endpoints,
                    ..Default::default()
                },
            )?);
        }
        let mut file_access = None;
        let mut discovery = Vec::new();
        if let Some(path) = &args.config {
            let (more, access, rules) = load_file(path)?;
            clusters.extend(more);
            file_access = access.map(|a| (format!("{}: access", path.display()), a));
            discovery = rules;
        }
        // Discovery rules alone are a configuration too: every cluster may come from Kubernetes.
        if clusters.is_empty() && discovery.is_empty() {
            return err("no cluster configured: pass --endpoints URL,URL,… or --config FILE");
        }
        let mut config = Config::new(&args.http, clusters)?;
        config.discovery = discovery;
        if let Some((field, access)) = file_access {
            let names: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
            let mut merged = config.access.clone();
            merged.add_file(&field, access, &names)?;
            config.access = merged;
        }
        Ok(config)
    }

    /// Builds a configuration from HTTP flags and already-known clusters (used by `demo` and tests).
    pub fn new(http: &HttpArgs, clusters: Vec<ClusterConfig>) -> Result<Config, ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for c in &clusters {
            if !seen.insert(c.name.clone()) {
                return err(format!("cluster name `{}` is used twice", c.name));
            }
        }
        let max_page = crate::web::common::MAX_LIMIT;
        if !(1..=max_page).contains(&http.page_size) {
            return err(format!(
                "--page-size: {} must be between 1 and {max_page} (the largest page the API serves)",
                http.page_size
            ));
        }
        if !(MIN_VALUE_BYTES..=MAX_VALUE_BYTES).contains(&http.max_value_bytes) {
            return err(format!(
                "--max-value-bytes: {} must be between {MIN_VALUE_BYTES} and {MAX_VALUE_BYTES} (etcd's --max-request-bytes: {} by default, at most 10 MiB recommended)",
                http.max_value_bytes,
                crate::domain::edit::DEFAULT_MAX_VALUE_BYTES
            ));
        }
        let access = crate::access::AccessConfig::from_args(
            &http.access,
            crate::domain::access::Role::Viewer,
        )?;
        if matches!(access.identity, crate::access::Identity::None)
            && access.policy.anonymous_role.is_none()
        {
            return err(
                "--anonymous-role none needs a way to sign in: with --auth none nobody can, so every request would be refused; use --auth proxy or --auth users, or give anonymous users a role (viewer, editor or admin)",
            );
        }
        Ok(Config {
            listen: http.listen,
            base_path: normalise_base_path(&http.base_path)?,
            allowed_hosts: crate::domain::hosts::AllowedHosts::new(
                &http.allowed_hosts,
                http.listen,
            )
            .map_err(|e| ConfigError(format!("--allowed-hosts: {e}")))?,
            etcd_timeout: http.etcd_timeout,
            page_size: http.page_size,
            max_value_bytes: http.max_value_bytes,
            allow_delete_all: http.allow_delete_all,
            metrics_interval: http.metrics_interval,
            shutdown_timeout: http.shutdown_timeout,
            request_timeout: http.request_timeout,
            kube: http.kube.clone(),
            clusters,
            discovery: Vec::new(),
            access,
        })
    }
}

/// Smallest `--max-value-bytes`: a write costs its value, three times its key and
/// [`crate::domain::edit::REQUEST_OVERHEAD`] bytes, so below 1 KiB even small edits would get a 413.
const MIN_VALUE_BYTES: usize = 1024;

/// Largest `--max-value-bytes`: etcd warns above 10 MiB of `--max-request-bytes` (its recommended
/// maximum), and request bodies of twice this size are buffered in memory.
const MAX_VALUE_BYTES: usize = 10 * 1024 * 1024;

type FileParts = (
    Vec<ClusterConfig>,
    Option<crate::access::FileAccess>,
    Vec<DiscoveryRule>,
);

fn load_file(path: &std::path::Path) -> Result<FileParts, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("--config {shown}: cannot read: {e}")))?;
    let parsed: FileConfig = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).map_err(|e| ConfigError(format!("{shown}: {e}")))?,
        _ => serde_yaml::from_str(&text).map_err(|e| ConfigError(format!("{shown}: {e}")))?,
    };
    let mut out = Vec::new();
    let access = parsed.access;
    for (i, fc) in parsed.clusters.into_iter().enumerate() {
        let field = format!("{shown}: clusters[{i}]");
        let credentials =
            read_credentials(&field, &fc.username, &fc.password_env, &fc.password_file)?;
        let tls = read_tls(&field, fc.tls)?;
        out.push(check_cluster(
            &field,
            ClusterConfig {
                name: fc.name,
                endpoints: fc.endpoints,
                tls,
                credentials,
                separator: fc.separator.unwrap_or_else(|| "/".into()),
                optional: fc.optional,
                kubernetes: match &fc.kubernetes {
                    None => None,
                    Some(k) => Some(
                        crate::domain::topology::KubeTarget::parse(&k.namespace, &k.selector)
                            .map_err(|(part, why)| {
                                ConfigError(format!("{field}.kubernetes.{part}: {why}"))
                            })?,
                    ),
                },
            },
        )?);
    }
    let mut rules = Vec::new();
    for (i, fd) in parsed.discovery.into_iter().enumerate() {
        rules.push(read_discovery_rule(
            &format!("{shown}: discovery[{i}]"),
            fd,
        )?);
    }
    Ok((out, access, rules))
}

/// One `discovery:` entry: namespaces are required (discovery never covers everything by
/// accident; `*` says so explicitly), sources default to all.
fn read_discovery_rule(field: &str, fd: FileDiscovery) -> Result<DiscoveryRule, ConfigError> {
    use crate::domain::discovery::{DiscoverySource, NamespaceGlob, RuleMatch};
    if fd.namespaces.is_empty() {
        return err(format!(
            "{field}.namespaces: at least one namespace pattern is required (`*` for all)"
        ));
    }
    let namespaces = fd
        .namespaces
        .iter()
        .enumerate()
        .map(|(j, n)| {
            NamespaceGlob::parse(n)
                .map_err(|e| ConfigError(format!("{field}.namespaces[{j}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sources = match &fd.sources {
        None => DiscoverySource::ALL.to_vec(),
        Some(list) if list.is_empty() => {
            return err(format!(
                "{field}.sources: empty (leave it out for every source)"
            ))
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(j, s)| {
                DiscoverySource::parse(s)
                    .map_err(|e| ConfigError(format!("{field}.sources[{j}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let separator = fd.separator.unwrap_or_else(|| "/".into());
    if separator.is_empty() {
        return err(format!("{field}.separator: must not be empty"));
    }
    let credentials = read_credentials(field, &fd.username, &fd.password_env, &fd.password_file)?;
    let tls = read_tls(field, fd.tls)?;
    // A discovered cluster is dialled at whatever IP its pods have: a password may only go to
    // a server that proves, with a certificate from the configured CA, that it is etcd.
    if credentials.is_some() && tls.as_ref().is_none_or(|t| t.ca_pem.is_none()) {
        return err(format!(
            "{field}: username and password need tls.ca, so they are only sent to servers with a certificate from that CA"
        ));
    }
    Ok(DiscoveryRule {
        matcher: RuleMatch {
            namespaces,
            sources,
        },
        credentials,
        tls,
        separator,
    })
}

/// etcd credentials from `username` + `password_env` or `password_file` (never the file itself).
fn read_credentials(
    field: &str,
    username: &Option<String>,
    password_env: &Option<String>,
    password_file: &Option<PathBuf>,
) -> Result<Option<Credentials>, ConfigError> {
    Ok(match (username, password_env, password_file) {
        (None, None, None) => None,
            (Some(user), Some(var), None) => Some(Credentials {
                username: user.clone(),
                password: Secret(std::env::var(var).map_err(|_| {
                    ConfigError(format!("{field}.password_env: environment variable `{var}` is not set"))
                })?),
                password_file: None,
                field: field.to_string(),
            }),
            (Some(user), None, Some(file)) => Some(Credentials {
                username: user.clone(),
                password: read_password_file(field, file)?,
                password_file: Some(file.clone()),
                field: field.to_string(),
            }),
            (None, _, _) => return err(format!("{field}.username: required with a password")),
            (Some(_), None, None) => {
                return err(format!(
                    "{field}: username needs password_env or password_file (passwords never go on the command line or in this file)"
                ))
            }
            (Some(_), Some(_), Some(_)) => {
                return err(format!("{field}: give password_env or password_file, not both"))
            }
    })
}

/// TLS material of `tls:`, read and checked now so a missing or wrong file fails at start (not at
/// the first request, with a handshake error that does not name the file).
fn read_tls(field: &str, tls: Option<FileTls>) -> Result<Option<TlsConfig>, ConfigError> {
    tls.map(|t| load_tls(field, t)).transpose()
}

/// Reads and checks the files of one `tls:` block.
fn load_tls(field: &str, t: FileTls) -> Result<TlsConfig, ConfigError> {
    let read = |p: &Option<PathBuf>, name: &str| -> Result<Option<Vec<u8>>, ConfigError> {
        match p {
            None => Ok(None),
            Some(p) => std::fs::read(p).map(Some).map_err(|e| {
                ConfigError(format!(
                    "{field}.tls.{name}: cannot read {}: {e}",
                    p.display()
                ))
            }),
        }
    };
    let checked = |p: &Option<PathBuf>, name: &str, kind: PemKind| {
        let bytes = read(p, name)?;
        if let (Some(p), Some(b)) = (p, &bytes) {
            check_pem(b, kind).map_err(|why| {
                ConfigError(format!("{field}.tls.{name}: {}: {why}", p.display()))
            })?;
        }
        Ok::<_, ConfigError>(bytes)
    };
    let ca_pem = checked(&t.ca, "ca", PemKind::Certificate)?;
    let identity_pem = match (
        checked(&t.cert, "cert", PemKind::Certificate)?,
        checked(&t.key, "key", PemKind::PrivateKey)?,
    ) {
        (Some(c), Some(k)) => Some((c, Secret(String::from_utf8_lossy(&k).into_owned()))),
        (None, None) => None,
        _ => return err(format!("{field}.tls: cert and key go together")),
    };
    Ok(TlsConfig {
        ca_pem,
        identity_pem,
        server_name: t.server_name,
        files: TlsFiles {
            field: field.to_string(),
            ca: t.ca,
            cert: t.cert,
            key: t.key,
        },
    })
}

/// What a `tls:` file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PemKind {
    /// `ca` and `cert`: at least one `CERTIFICATE` block.
    Certificate,
    /// `key`: an unencrypted private key (PKCS#8, PKCS#1 or SEC1).
    PrivateKey,
}

/// PEM labels of the private keys the TLS stack reads.
const KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

/// Checks that `bytes` is PEM holding a block of `kind`, and that no block is damaged. The reason
/// names block labels and line numbers only, never the file's content (it may be a key).
fn check_pem(bytes: &[u8], kind: PemKind) -> Result<(), String> {
    let blocks = pem_blocks(bytes)?;
    let has = |f: &dyn Fn(&PemBlock) -> bool| blocks.iter().any(f);
    let is_cert = |b: &PemBlock| b.label == "CERTIFICATE";
    let is_key = |b: &PemBlock| KEY_LABELS.contains(&b.label.as_str()) && !b.encrypted;
    let is_locked_key = |b: &PemBlock| {
        b.label == "ENCRYPTED PRIVATE KEY"
            || (KEY_LABELS.contains(&b.label.as_str()) && b.encrypted)
    };
    match kind {
        PemKind::Certificate if has(&is_cert) => Ok(()),
        PemKind::Certificate if has(&is_key) || has(&is_locked_key) => Err(
            "holds a private key, not a certificate (`-----BEGIN CERTIFICATE-----`); are the files mixed up?".into(),
        ),
        PemKind::Certificate => Err(
            "is not a PEM certificate (no `-----BEGIN CERTIFICATE-----` block)".into(),
        ),
        PemKind::PrivateKey if has(&is_key) => Ok(()),
        PemKind::PrivateKey if has(&is_locked_key) => Err(
            "the private key is encrypted, which the TLS client cannot use; decrypt it (`openssl pkey`) into a file only etcdboard can read".into(),
        ),
        PemKind::PrivateKey if has(&is_cert) => Err(
            "holds a certificate, not a private key (`-----BEGIN PRIVATE KEY-----`); are cert and key swapped?".into(),
        ),
        PemKind::PrivateKey => Err(
            "is not a PEM private key (no `-----BEGIN PRIVATE KEY-----` block)".into(),
        ),
    }
}

/// One `-----BEGIN label-----` … `-----END label-----` block.
#[derive(Debug)]
struct PemBlock {
    label: String,
    /// Has RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`): an old-style encrypted key.
    encrypted: bool,
}

/// The blocks of a PEM file; an error for a block without its END line or whose body is not
/// base64 DER (the TLS stack would refuse the whole file). Not UTF-8 (e.g. DER): no blocks.
fn pem_blocks(bytes: &[u8]) -> Result<Vec<PemBlock>, String> {
    use base64::Engine as _;
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(Vec::new());
    };
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let at = n + 1;
        let end = format!("-----END {label}-----");
        let (mut body, mut encrypted, mut closed) = (String::new(), false, false);
        for (_, line) in lines.by_ref() {
            let line = line.trim();
            if line == end {
                closed = true;
                break;
            }
            if line.contains(':') {
                encrypted = true;
            } else {
                body.push_str(line);
            }
        }
        if !closed {
            return Err(format!(
                "the {label} block of line {at} has no `{end}` line"
            ));
        }
        if !encrypted {
            let der = base64::engine::general_purpose::STANDARD
                .decode(&body)
                .map_err(|_| format!("the {label} block of line {at} is not base64"))?;
            // Every certificate and key is an ASN.1 SEQUENCE.
            if der.first() != Some(&0x30) {
                return Err(format!("the {label} block of line {at} holds no DER data"));
            }
        }
        blocks.push(PemBlock {
            label: label.to_string(),
            encrypted,
        });
    }
    Ok(blocks)
}

/// Names a sub-field: `clusters[0].endpoints` in a file, just `--endpoints` for the flag.
fn sub(field: &str, name: &str) -> String {
    if field.starts_with("--") {
        field.to_string()
    } else {
        format!("{field}.{name}")
    }
}

/// A client URL is scheme, host and an optional port, nothing else: the etcd client would drop
/// a path or query silently, and endpoints are shown to every viewer (`/api/v1/clusters`), so a
/// password in them would be too. The reason never repeats such a password.
fn check_endpoint(e: &str) -> Result<(), String> {
    let not_url = || format!("`{e}` is not a client URL like http://127.0.0.1:2379");
    let rest = e
        .strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"))
        .ok_or_else(not_url)?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some(at) = authority.rfind('@') {
        let scheme = &e[..e.len() - rest.len()];
        return Err(format!(
            "`{scheme}***@{}` has a user name or password, which every viewer would see; give them as username and password_env (or password_file) in the config file instead",
            &rest[at + 1..]
        ));
    }
    let uri = e.parse::<http::Uri>().map_err(|_| not_url())?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(not_url());
    }
    if !matches!(&rest[authority_end..], "" | "/") {
        return Err(format!(
            "`{e}` has a path, query or fragment; a client URL is only scheme, host and port, like http://127.0.0.1:2379"
        ));
    }
    // After an IPv6 literal's `]`, else after the last `:`; `http::Uri` reads 99999 as no port.
    let port = match authority.rfind(']') {
        Some(i) => &authority[i + 1..],
        None => authority.rfind(':').map_or("", |i| &authority[i..]),
    };
    if let Some(port) = port.strip_prefix(':') {
        let ok = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !ok {
            return Err(format!("`{e}`: port `{port}` is not between 1 and 65535"));
        }
    } else if !port.is_empty() {
        return Err(not_url());
    }
    Ok(())
}

fn check_cluster(field: &str, c: ClusterConfig) -> Result<ClusterConfig, ConfigError> {
    if !crate::domain::discovery::is_cluster_name(&c.name) {
        return err(format!(
            "{}: `{}` must be 1-63 characters of letters, digits, `-`, `.` or `_`",
            sub(field, "name"),
            c.name
        ));
    }
    if c.endpoints.is_empty() {
        return err(format!(
            "{field}.endpoints: at least one client URL is required"
        ));
    }
    for (i, e) in c.endpoints.iter().enumerate() {
        check_endpoint(e)
            .map_err(|why| ConfigError(format!("{}[{i}]: {why}", sub(field, "endpoints"))))?;
        // TLS settings only apply to https:// endpoints; with http:// every request would fail.
        if c.tls.is_some() && e.starts_with("http://") {
            return err(format!(
                "{}[{i}]: `{e}` is plain http but the cluster has tls settings; use https:// (or drop tls)",
                sub(field, "endpoints")
            ));
        }
    }
    if c.separator.is_empty() {
        return err(format!("{}: must not be empty", sub(field, "separator")));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> HttpArgs {
        HttpArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            base_path: "etcd/".into(),
            max_value_bytes: 1024,
            kube: "off".into(),
            ..HttpArgs::default()
        }
    }

    #[test]
    fn endpoints_flag_makes_the_default_cluster() {
        let args = ServeArgs {
            http: http(),
            endpoints: vec!["http://127.0.0.1:2379".into()],
            config: None,
        };
        let c = Config::from_serve(&args).unwrap();
        assert_eq!(c.clusters[0].name, "default");
        assert_eq!(c.base_path, "/etcd");
    }

    #[test]
    fn bad_config_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "clusters:\n  - name: a\n    endpoints: [http://x:1]\n  - name: b\n    endpoints: [ftp://nope]\n").unwrap();
        let args = ServeArgs {
            http: http(),
            endpoints: vec![],
            config: Some(path),
        };
        let e = Config::from_serve(&args).unwrap_err().to_string();
        assert!(e.contains("clusters[1].endpoints[0]"), "{e}");

        let path = dir.path().join("d.toml");
        std::fs::write(
            &path,
            "[[clusters]]\nname = \"a\"\nendpoints = [\"http://x:1\"]\nusername = \"root\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            http: http(),
            endpoints: vec![],
            config: Some(path),
        };
        let e = Config::from_serve(&args).unwrap_err().to_string();
        assert!(
            e.contains("clusters[0]") && e.contains("password_env"),
            "{e}"
        );
    }

    #[test]
    fn allowed_hosts_are_checked_at_start() {
        let args = |hosts: &[&str]| ServeArgs {
            http: HttpArgs {
                allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
                ..http()
            },
            endpoints: vec!["http://127.0.0.1:2379".into()],
            config: None,
        };
        let e = Config::from_serve(&args(&["etcd.example.com", "https://etcd.example.com"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--allowed-hosts") && e.contains("'https://etcd.example.com'"),
            "{e}"
        );
        let c = Config::from_serve(&args(&["etcd.example.com"])).unwrap();
        assert!(c.allowed_hosts.allows("etcd.example.com:8080"));
        assert!(!c.allowed_hosts.allows("attacker.example"));
        // The default follows --listen: loopback here.
        let c = Config::from_serve(&args(&[])).unwrap();
        assert!(!c.allowed_hosts.allows("etcd.example.com"));
        assert!(c.allowed_hosts.allows("localhost:8080"));
    }

    #[test]
    fn passwords_come_from_env_and_are_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "clusters:\n  - name: a\n    endpoints: [http://x:1]\n    username: root\n    password_file: PW\n".replace("PW", &dir.path().join("pw").display().to_string())).unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let args = ServeArgs {
            http: http(),
            endpoints: vec![],
            config: Some(path),
        };
        let c = Config::from_serve(&args).unwrap();
        let creds = c.clusters[0].credentials.as_ref().unwrap();
        assert_eq!(creds.password.expose(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn a_kubernetes_selector_is_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "clusters:\n  - name: a\n    endpoints: [http://x:1]\n    kubernetes: {namespace: etcd, selector: \"app=etcd,release=x\"}\n  - name: b\n    endpoints: [http://x:1]\n    kubernetes: {namespace: etcd, selector: \"app in etcd\"}\n").unwrap();
        let args = ServeArgs {
            http: http(),
            endpoints: vec![],
            config: Some(path.clone()),
        };
        let e = Config::from_serve(&args).unwrap_err().to_string();
        assert!(e.contains("clusters[1].kubernetes.selector"), "{e}");
        std::fs::write(&path, "clusters:\n  - name: a\n    endpoints: [http://x:1]\n    kubernetes: {namespace: etcd, selector: \"app=etcd,release=x\"}\n").unwrap();
        let c = Config::from_serve(&args).unwrap();
        let k = c.clusters[0].kubernetes.as_ref().unwrap();
        assert_eq!(
            (k.namespace.as_str(), k.selector.as_str()),
            ("etcd", "app=etcd,release=x")
        );
    }

    #[test]
    fn clusters_are_required_unless_marked_optional() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "clusters:\n  - name: a\n    endpoints: [http://x:1]\n  - name: lab\n    endpoints: [http://y:1]\n    optional: true\n").unwrap();
        let args = ServeArgs {
            http: http(),
            endpoints: vec!["http://z:1".into()],
            config: Some(path),
        };
        let c = Config::from_serve(&args).unwrap();
        let optional: Vec<(&str, bool)> = c
            .clusters
            .iter()
            .map(|c| (c.name.as_str(), c.optional))
            .collect();
        assert_eq!(optional, [("default", false), ("a", false), ("lab", true)]);
    }

    #[test]
    fn discovery_rules_are_read_and_checked_at_start() {
        use crate::domain::discovery::DiscoverySource;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, pem("CERTIFICATE")).unwrap();
        std::fs::write(
            &path,
            format!(
                "discovery:\n  - namespaces: [prod-*]\n    sources: [etcd-operator, kubeadm]\n    tls: {{ca: {}}}\n    username: root\n    password_file: {}\n    separator: \":\"\n  - namespaces: [\"*\"]\n",
                ca.display(),
                pw.display()
            ),
        )
        .unwrap();
        let args = ServeArgs {
            http: http(),
            endpoints: vec![],
            config: Some(path.clone()),
        };
        // Rules alone are enough: every cluster may come from Kubernetes.
        let c = Config::from_serve(&args).unwrap();
        assert!(c.clusters.is_empty());
        let [first, second] = c.discovery.as_slice() else {
            panic!("two rules: {:?}", c.discovery)
        };
        assert!(first
            .matcher
            .matches("prod-a", DiscoverySource::EtcdOperator));
        assert!(!first
            .matcher
            .matches("prod-a", DiscoverySource::Statefulset));
        assert_eq!(first.separator, ":");
        assert_eq!(
            first.credentials.as_ref().unwrap().password.expose(),
            "s3cret"
        );
        assert!(second.matcher.matches("anything", DiscoverySource::Druid));
        assert!(second.credentials.is_none() && second.tls.is_none());

        for (yaml, want) in [
            (
                "discovery:\n  - namespaces: []\n",
                "discovery[0].namespaces",
            ),
            (
                "discovery:\n  - namespaces: [Prod]\n",
                "discovery[0].namespaces[0]",
            ),
            (
                "discovery:\n  - namespaces: [a]\n    sources: [helm]\n",
                "discovery[0].sources[0]",
            ),
            (
                "discovery:\n  - namespaces: [a]\n    username: root\n",
                "password_env",
            ),
            ("discovery:\n  - sources: [druid]\n", "namespaces"),
            (
                &format!(
                    "discovery:\n  - namespaces: [a]\n    username: root\n    password_file: {}\n",
                    pw.display()
                ),
                "need tls.ca",
            ),
        ] {
            std::fs::write(&path, yaml).unwrap();
            let e = Config::from_serve(&args).unwrap_err().to_string();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }

    /// A PEM block around the smallest DER SEQUENCE: what [`check_pem`] looks at, not a usable
    /// certificate or key.
    fn pem(label: &str) -> String {
        format!("-----BEGIN {label}-----\nMAMCAQE=\n-----END {label}-----\n")
    }

    /// `Config::from_serve` of one cluster file; the error text.
    fn file_error(dir: &std::path::Path, yaml: &str) -> String {
        let path = dir.join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        let args = ServeArgs {
            http: http(),
            endpoints: vec![],
            config: Some(path),
        };
        match Config::from_serve(&args) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_session_ttl_may_be_any_unit_up_to_seven_days() {
        for (text, secs) in [
            ("90m", 5400),
            ("61m", 3660),
            ("3600s", 3600),
            ("3600", 3600),
            ("2h", 7200),
            ("1.5h", 5400),
            ("7d", 7 * 86400),
            ("168h", 7 * 86400),
            ("1m", 60),
        ] {
            assert_eq!(
                parse_session_ttl(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for (text, want) in [
            ("0", "between 1 minute and 7 days"),
            ("0h", "between 1 minute and 7 days"),
            ("30s", "between 1 minute and 7 days"),
            ("8d", "between 1 minute and 7 days"),
            ("169h", "between 1 minute and 7 days"),
            (&"9".repeat(400), "between 1 minute and 7 days"),
            ("12x", "unknown unit `x`"),
            ("", "not a duration"),
            ("-1h", "not a duration"),
        ] {
            let e = parse_session_ttl(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        // Through the flag as clap reads it (and its ETCDBOARD_SESSION_TTL twin, same parser).
        let cli = Cli::try_parse_from(["etcdboard", "serve", "--session-ttl", "90m"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(
            serve.http.access.session_ttl,
            Some(Duration::from_secs(5400))
        );
        let e = Cli::try_parse_from(["etcdboard", "serve", "--session-ttl", "8d"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--session-ttl") && e.contains("7 days"), "{e}");
    }

    #[test]
    fn tls_files_must_hold_pem_of_the_right_kind() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = |name: &str, text: &str| {
            let p = d.join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        let ca = file("ca.crt", &pem("CERTIFICATE"));
        let cert = file("client.crt", &pem("CERTIFICATE"));
        let key = file("client.key", &pem("PRIVATE KEY"));
        let rsa = file("rsa.key", &pem("RSA PRIVATE KEY"));
        let both = file("both.pem", &(pem("CERTIFICATE") + &pem("EC PRIVATE KEY")));
        let hostname = file("hostname", "etcd-0\n");
        let der = d.join("ca.der");
        std::fs::write(&der, [0x30, 0x03, 0x02, 0x01, 0x01]).unwrap();
        let der = der.display().to_string();
        let locked = file("locked.key", &pem("ENCRYPTED PRIVATE KEY"));
        let legacy = file(
            "legacy.key",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMAMCAQE=\n-----END RSA PRIVATE KEY-----\n",
        );
        let cut = file("cut.crt", "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n");
        let garbled = file(
            "garbled.crt",
            &(pem("CERTIFICATE")
                + "-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n"),
        );
        let cluster = |tls: &str| {
            format!("clusters:\n  - name: a\n    endpoints: [https://x:1]\n    tls: {{{tls}}}\n")
        };
        for tls in [
            format!("ca: {ca}, cert: {cert}, key: {key}"),
            format!("ca: {both}, cert: {both}, key: {both}"),
            format!("cert: {cert}, key: {rsa}"),
            format!("ca: {ca}"),
        ] {
            let e = file_error(d, &cluster(&tls));
            assert_eq!(e, "", "{tls}");
        }
        for (tls, want) in [
            (
                format!("ca: {ca}, cert: {hostname}, key: {key}"),
                "clusters[0].tls.cert: <host>: is not a PEM certificate",
            ),
            (
                format!("ca: {hostname}"),
                "clusters[0].tls.ca: <host>: is not a PEM certificate",
            ),
            (
                format!("ca: {der}"),
                "clusters[0].tls.ca: <der>: is not a PEM certificate",
            ),
            (
                format!("cert: {cert}, key: {hostname}"),
                "clusters[0].tls.key: <host>: is not a PEM private key",
            ),
            (
                format!("cert: {key}, key: {cert}"),
                "clusters[0].tls.cert: <key>: holds a private key, not a certificate",
            ),
            (
                format!("cert: {cert}, key: {cert}"),
                "clusters[0].tls.key: <cert>: holds a certificate, not a private key",
            ),
            (
                format!("cert: {cert}, key: {locked}"),
                "the private key is encrypted",
            ),
            (
                format!("cert: {cert}, key: {legacy}"),
                "the private key is encrypted",
            ),
            (
                format!("ca: {cut}"),
                "the CERTIFICATE block of line 1 has no `-----END CERTIFICATE-----` line",
            ),
            (
                format!("ca: {garbled}"),
                "the CERTIFICATE block of line 4 is not base64",
            ),
        ] {
            let want = want
                .replace("<host>", &hostname)
                .replace("<der>", &der)
                .replace("<key>", &key)
                .replace("<cert>", &cert);
            let e = file_error(d, &cluster(&tls));
            assert!(e.contains(&want), "{tls}: {e}");
            assert!(
                !e.contains("MAMCAQE"),
                "{tls}: the message shows the file: {e}"
            );
        }
        // Discovery rules read their TLS files the same way.
        let e = file_error(
            d,
            &format!("discovery:\n  - namespaces: [a]\n    tls: {{ca: {hostname}}}\n"),
        );
        assert!(e.contains("discovery[0].tls.ca"), "{e}");
        // TLS settings on a plain http:// endpoint would make every request fail.
        let e = file_error(
            d,
            &format!(
                "clusters:\n  - name: a\n    endpoints: [http://x:1]\n    tls: {{ca: {ca}}}\n"
            ),
        );
        assert!(
            e.contains("clusters[0].endpoints[0]") && e.contains("plain http"),
            "{e}"
        );
    }

    #[test]
    fn an_endpoint_is_only_scheme_host_and_port() {
        for good in [
            "http://127.0.0.1:2379",
            "https://etcd-0.etcd.svc:2379/",
            "http://[::1]:2379",
            "http://[::1]",
            "https://etcd.example",
            "http://h:65535",
        ] {
            assert_eq!(check_endpoint(good), Ok(()), "{good}");
        }
        for (bad, want) in [
            ("ftp://x", "is not a client URL"),
            ("http://", "is not a client URL"),
            ("http://:2379", "is not a client URL"),
            ("http://h:99999", "port `99999` is not between 1 and 65535"),
            ("http://h:0", "port `0`"),
            ("http://h:", "port ``"),
            ("http://h:+1", "port `+1`"),
            ("http://[::1]:70000", "port `70000`"),
            ("http://h:2379/x?y", "has a path, query or fragment"),
            ("http://h:2379/v3", "has a path, query or fragment"),
            ("http://h:2379?y", "has a path, query or fragment"),
            ("http://h:2379#top", "has a path, query or fragment"),
            (
                "http://user:pass@h:2379",
                "`http://***@h:2379` has a user name or password",
            ),
            ("https://user@h:2379", "username and password_env"),
            ("http://@h:2379", "`http://***@h:2379`"),
        ] {
            let e = check_endpoint(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
            assert!(!e.contains("pass@") && !e.contains("user@"), "{bad}: {e}");
        }
        // ... with the field named, in a file and for the flag.
        let dir = tempfile::tempdir().unwrap();
        let e = file_error(
            dir.path(),
            "clusters:\n  - name: a\n    endpoints: [http://x:1, \"http://root:s3cret@x:2\"]\n",
        );
        assert!(
            e.contains("clusters[0].endpoints[1]: `http://***@x:2`"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        let args = ServeArgs {
            http: http(),
            endpoints: vec!["http://h:99999".into()],
            config: None,
        };
        let e = Config::from_serve(&args).unwrap_err().to_string();
        assert!(e.starts_with("configuration: --endpoints[0]: "), "{e}");
    }

    #[test]
    fn page_size_and_max_value_bytes_stay_within_what_api_and_etcd_take() {
        let with = |page_size: usize, max_value_bytes: usize| {
            let http = HttpArgs {
                page_size,
                max_value_bytes,
                ..http()
            };
            Config::new(&http, vec![])
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(with(1, 1024), Ok(()));
        assert_eq!(with(1000, 10 * 1024 * 1024), Ok(()));
        assert_eq!(
            with(100, crate::domain::edit::DEFAULT_MAX_VALUE_BYTES),
            Ok(())
        );
        for (page_size, max_value_bytes, want) in [
            (5000, 1024, "--page-size: 5000 must be between 1 and 1000"),
            (1001, 1024, "--page-size: 1001"),
            (0, 1024, "--page-size: 0"),
            (
                100,
                0,
                "--max-value-bytes: 0 must be between 1024 and 10485760",
            ),
            (100, 1023, "--max-value-bytes: 1023"),
            (100, 10 * 1024 * 1024 + 1, "--max-value-bytes: 10485761"),
        ] {
            let e = with(page_size, max_value_bytes).unwrap_err();
            assert!(e.contains(want), "{page_size} {max_value_bytes}: {e}");
        }
    }

    #[test]
    fn no_sign_in_and_no_anonymous_role_is_refused() {
        let with = |auth: AuthMode, role: &str| {
            let mut http = http();
            http.access.auth = auth;
            http.access.anonymous_role = Some(role.into());
            http.access.trusted_proxies = vec!["10.0.0.0/8".into()];
            Config::new(&http, vec![])
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let e = with(AuthMode::None, "none").unwrap_err();
        assert!(
            e.contains("--anonymous-role none") && e.contains("--auth none"),
            "{e}"
        );
        assert_eq!(with(AuthMode::None, "viewer"), Ok(()));
        assert_eq!(with(AuthMode::Proxy, "none"), Ok(()));
    }

    #[test]
    fn a_base_path_must_be_a_clean_prefix() {
        for (raw, want) in [
            ("", ""),
            ("/", ""),
            ("etcd", "/etcd"),
            ("/etcd/", "/etcd"),
            ("/tools/etcd.v2~x", "/tools/etcd.v2~x"),
            ("/a/.../b", "/a/.../b"),
        ] {
            assert_eq!(normalise_base_path(raw).unwrap(), want, "{raw}");
        }
        for (raw, want) in [
            ("/etcd/../x", "has a `..` segment"),
            ("..", "has a `..` segment"),
            ("/./etcd", "has a `.` segment"),
            ("/etcd//x", "has an empty segment"),
            ("/a b", "may only contain"),
            ("/etcd%2F", "may only contain"),
            ("/etcd?x", "may only contain"),
        ] {
            let e = normalise_base_path(raw).unwrap_err().to_string();
            assert!(
                e.contains(&format!("--base-path `{raw}`")) && e.contains(want),
                "{raw}: {e}"
            );
        }
    }

    #[test]
    fn durations_and_base_paths_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("2h").is_err());
        assert_eq!(normalise_base_path("/").unwrap(), "");
        assert!(normalise_base_path("/a b").is_err());
    }
}
