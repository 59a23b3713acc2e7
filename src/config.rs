//! Typed configuration from flags, their `ETCDBOARD_*` environment twins, and an optional file that
//! lists many clusters. Everything is checked at start; an error names the field that is wrong.

use std::net::SocketAddr;
use std::path::PathBuf;
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
    /// Deadline for one etcd operation, e.g. `3s` or `500ms`.
    #[arg(long, env = "ETCDBOARD_ETCD_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub etcd_timeout: Duration,
    /// Page size of key listings.
    #[arg(long, env = "ETCDBOARD_PAGE_SIZE", default_value_t = 100)]
    pub page_size: usize,
    /// Largest key + value accepted in one write (etcd's `--max-request-bytes`, 1.5 MiB by default);
    /// larger writes get a 413 before etcd sees them.
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
    /// imports are exempt: they answer at once or are bounded per batch).
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
    /// How long a login lasts, e.g. `12h` or `30m`.
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

/// Parses a login lifetime: like [`parse_duration`] plus hours (`12h`), up to 7 days.
pub fn parse_session_ttl(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let secs = if let Some(h) = t.strip_suffix('h') {
        h.parse::<f64>()
            .map_err(|_| format!("`{text}` is not a duration like 12h or 30m"))?
            * 3600.0
    } else {
        parse_duration(t)?.as_secs_f64()
    };
    if !(60.0..=7.0 * 86400.0).contains(&secs) {
        return Err(format!("`{text}` must be between 1 minute and 7 days"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Default for HttpArgs {
    /// The flags' defaults (without reading `ETCDBOARD_*`), for `demo`-like callers and tests that
    /// set only what they care about.
    fn default() -> Self {
        HttpArgs {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_path: String::new(),
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
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 3s or 500ms"))?;
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

/// TLS material for one cluster, as PEM read at start.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// CA bundle to verify the servers.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key for client-cert auth.
    pub identity_pem: Option<(Vec<u8>, Secret)>,
    /// Server name to verify instead of the URL's host.
    pub server_name: Option<String>,
}

/// etcd user/password auth.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// etcd user name.
    pub username: String,
    /// Its password.
    pub password: Secret,
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

/// Normalises `--base-path`: `""`, `/`, `etcd`, `/etcd/` → `""`, `""`, `/etcd`, `/etcd`.
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
        if !(1..=10_000).contains(&http.page_size) {
            return err("--page-size must be between 1 and 10000");
        }
        Ok(Config {
            listen: http.listen,
            base_path: normalise_base_path(&http.base_path)?,
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
            access: crate::access::AccessConfig::from_args(
                &http.access,
                crate::domain::access::Role::Viewer,
            )?,
        })
    }
}

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
            }),
            (Some(user), None, Some(file)) => Some(Credentials {
                username: user.clone(),
                password: Secret(
                    std::fs::read_to_string(file)
                        .map_err(|e| {
                            ConfigError(format!("{field}.password_file: cannot read {}: {e}", file.display()))
                        })?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
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

/// TLS material of `tls:`, read now so a missing file fails at start.
fn read_tls(field: &str, tls: Option<FileTls>) -> Result<Option<TlsConfig>, ConfigError> {
    Ok(match tls {
        None => None,
        Some(t) => {
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
            let ca_pem = read(&t.ca, "ca")?;
            let identity_pem = match (read(&t.cert, "cert")?, read(&t.key, "key")?) {
                (Some(c), Some(k)) => Some((c, Secret(String::from_utf8_lossy(&k).into_owned()))),
                (None, None) => None,
                _ => return err(format!("{field}.tls: cert and key go together")),
            };
            Some(TlsConfig {
                ca_pem,
                identity_pem,
                server_name: t.server_name,
            })
        }
    })
}

/// Names a sub-field: `clusters[0].endpoints` in a file, just `--endpoints` for the flag.
fn sub(field: &str, name: &str) -> String {
    if field.starts_with("--") {
        field.to_string()
    } else {
        format!("{field}.{name}")
    }
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
        let ok = (e.starts_with("http://") || e.starts_with("https://"))
            && e.parse::<http::Uri>().is_ok_and(|u| u.host().is_some());
        if !ok {
            return err(format!(
                "{}[{i}]: `{e}` is not a client URL like http://127.0.0.1:2379",
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
        std::fs::write(&ca, "PEM").unwrap();
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

    #[test]
    fn durations_and_base_paths_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("2h").is_err());
        assert_eq!(normalise_base_path("/").unwrap(), "");
        assert!(normalise_base_path("/a b").is_err());
    }
}
