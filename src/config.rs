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
        }
    }
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
    /// `--kube`: `auto`, `off` or a kubeconfig path.
    pub kube: String,
    /// Configured clusters, in the order given.
    pub clusters: Vec<ClusterConfig>,
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
    clusters: Vec<FileCluster>,
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
                    tls: None,
                    credentials: None,
                    separator: "/".into(),
                },
            )?);
        }
        if let Some(path) = &args.config {
            clusters.extend(load_file(path)?);
        }
        if clusters.is_empty() {
            return err("no cluster configured: pass --endpoints URL,URL,… or --config FILE");
        }
        Config::new(&args.http, clusters)
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
            kube: http.kube.clone(),
            clusters,
        })
    }
}

fn load_file(path: &std::path::Path) -> Result<Vec<ClusterConfig>, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("--config {shown}: cannot read: {e}")))?;
    let parsed: FileConfig = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).map_err(|e| ConfigError(format!("{shown}: {e}")))?,
        _ => serde_yaml::from_str(&text).map_err(|e| ConfigError(format!("{shown}: {e}")))?,
    };
    let mut out = Vec::new();
    for (i, fc) in parsed.clusters.into_iter().enumerate() {
        let field = format!("{shown}: clusters[{i}]");
        let credentials = match (&fc.username, &fc.password_env, &fc.password_file) {
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
        };
        let tls = match fc.tls {
            None => None,
            Some(t) => {
                let read =
                    |p: &Option<PathBuf>, name: &str| -> Result<Option<Vec<u8>>, ConfigError> {
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
                    (Some(c), Some(k)) => {
                        Some((c, Secret(String::from_utf8_lossy(&k).into_owned())))
                    }
                    (None, None) => None,
                    _ => return err(format!("{field}.tls: cert and key go together")),
                };
                Some(TlsConfig {
                    ca_pem,
                    identity_pem,
                    server_name: t.server_name,
                })
            }
        };
        out.push(check_cluster(
            &field,
            ClusterConfig {
                name: fc.name,
                endpoints: fc.endpoints,
                tls,
                credentials,
                separator: fc.separator.unwrap_or_else(|| "/".into()),
            },
        )?);
    }
    Ok(out)
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
    if c.name.is_empty()
        || c.name.len() > 63
        || !c
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-._".contains(ch))
    {
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
    fn durations_and_base_paths_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("2h").is_err());
        assert_eq!(normalise_base_path("/").unwrap(), "");
        assert!(normalise_base_path("/a b").is_err());
    }
}
