//! Access settings, checked at start: the identity source (none, trusted proxy headers, built-in
//! users), the role policy (flags + the config file's `access:` section) and the audit target.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::{AccessArgs, AuthMode, ConfigError};
use crate::domain::access::{Grant, Policy, ReadOnlyPrefix, Role};
use crate::domain::scrape_token::ScrapeToken;
use crate::domain::session::{slowest_check, PasswordHash, SessionKey};

/// Everything about who may do what.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// Where identities come from.
    pub identity: Identity,
    /// Roles, grants, read-only rules.
    pub policy: Policy,
    /// Where audit lines go.
    pub audit: AuditTarget,
    /// The token that opens `/metrics` to a scraper that has not signed in.
    pub metrics_token: Option<ScrapeToken>,
}

impl Default for AccessConfig {
    /// Anonymous viewers, audit to stdout.
    fn default() -> Self {
        AccessConfig {
            identity: Identity::None,
            policy: Policy::default(),
            audit: AuditTarget::Stdout,
            metrics_token: None,
        }
    }
}

/// Where identities come from.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Nobody signs in.
    None,
    /// Headers from an authenticating proxy.
    Proxy(ProxyIdentity),
    /// Built-in users and a login page.
    Users(UsersIdentity),
}

/// Trusted-header identity.
#[derive(Debug, Clone)]
pub struct ProxyIdentity {
    /// Addresses the headers are believed from.
    pub trusted: Vec<ipnet::IpNet>,
    /// User header (lower case).
    pub user_header: String,
    /// E-mail header (lower case).
    pub email_header: String,
    /// Groups header (lower case).
    pub groups_header: String,
}

impl ProxyIdentity {
    /// Whether `addr` is one of the trusted proxies.
    pub fn trusts(&self, addr: std::net::IpAddr) -> bool {
        let addr = match addr {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(std::net::IpAddr::V4)
                .unwrap_or(addr),
            v4 => v4,
        };
        self.trusted.iter().any(|n| n.contains(&addr))
    }

    /// The header names this mode reads.
    pub fn header_names(&self) -> [&str; 3] {
        [&self.user_header, &self.email_header, &self.groups_header]
    }
}

/// One built-in user.
#[derive(Debug, Clone)]
pub struct User {
    /// Name used to sign in and in grants.
    pub name: String,
    /// Password hash.
    pub hash: PasswordHash,
    /// Groups used in grants.
    pub groups: Vec<String>,
}

/// Built-in users identity.
#[derive(Debug, Clone)]
pub struct UsersIdentity {
    /// The users.
    pub users: Vec<User>,
    /// Cookie signing key.
    pub key: SessionKey,
    /// Whether the key came from a file (replicas share sessions) or was made up at start.
    pub key_from_file: bool,
    /// Login lifetime.
    pub ttl: Duration,
    /// The users' slowest hash: unknown names are checked against it.
    pub decoy: PasswordHash,
    /// A failed sign-in answers no sooner than this after its check began (twice the slowest
    /// check measured at start), so refusals take the same time whoever was named.
    pub refusal_floor: Duration,
}

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// Standard output, beside the logs (one JSON object per line, target `audit`).
    Stdout,
    /// Appended to a file.
    File(PathBuf),
}

/// The config file's `access:` section.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileAccess {
    #[serde(default)]
    grants: Vec<FileGrant>,
    #[serde(default)]
    read_only_prefixes: Vec<FileReadOnly>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGrant {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    everyone: bool,
    role: String,
    #[serde(default)]
    clusters: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReadOnly {
    prefix: String,
    #[serde(default)]
    clusters: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<FileUser>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    password_hash: String,
    #[serde(default)]
    groups: Vec<String>,
}

fn cfg_err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

fn header_name(flag: &str, value: &Option<String>, default: &str) -> Result<String, ConfigError> {
    let name = value
        .as_deref()
        .unwrap_or(default)
        .trim()
        .to_ascii_lowercase();
    if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return cfg_err(format!("{flag}: `{name}` is not a header name"));
    }
    Ok(name)
}

impl AccessConfig {
    /// From the flags; `demo_default` is the anonymous role when the flag is absent.
    pub fn from_args(args: &AccessArgs, default_role: Role) -> Result<AccessConfig, ConfigError> {
        let anonymous_role = match args.anonymous_role.as_deref().map(str::trim) {
            None => Some(default_role),
            Some("none") => None,
            Some(r) => Some(
                Role::parse(r)
                    .map_err(|e| ConfigError(format!("--anonymous-role: {e} or none")))?,
            ),
        };
        let identity = match args.auth {
            AuthMode::None => Identity::None,
            AuthMode::Proxy => {
                if args.trusted_proxies.is_empty() {
                    return cfg_err("--trusted-proxies: required with --auth proxy (the addresses of the authenticating proxy, e.g. 10.0.0.0/8)");
                }
                let mut trusted = Vec::new();
                for t in &args.trusted_proxies {
                    let t = t.trim();
                    let net = t
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            ConfigError(format!(
                                "--trusted-proxies: `{t}` is not an address or CIDR like 10.0.0.0/8"
                            ))
                        })?;
                    trusted.push(net);
                }
                Identity::Proxy(ProxyIdentity {
                    trusted,
                    user_header: header_name(
                        "--auth-user-header",
                        &args.auth_user_header,
                        "x-auth-request-user",
                    )?,
                    email_header: header_name(
                        "--auth-email-header",
                        &args.auth_email_header,
                        "x-auth-request-email",
                    )?,
                    groups_header: header_name(
                        "--auth-groups-header",
                        &args.auth_groups_header,
                        "x-auth-request-groups",
                    )?,
                })
            }
            AuthMode::Users => {
                let Some(path) = &args.users_file else {
                    return cfg_err("--users-file: required with --auth users");
                };
                let users = load_users(path)?;
                let (key, key_from_file) = match &args.session_key_file {
                    Some(p) => {
                        let bytes = std::fs::read(p).map_err(|e| {
                            ConfigError(format!(
                                "--session-key-file: cannot read {}: {e}",
                                p.display()
                            ))
                        })?;
                        let key = SessionKey::from_bytes(&bytes).map_err(|e| {
                            ConfigError(format!("--session-key-file {}: {e}", p.display()))
                        })?;
                        (key, true)
                    }
                    None => (
                        SessionKey::random()
                            .map_err(|e| ConfigError(format!("--session-key-file: {e}")))?,
                        false,
                    ),
                };
                let hashes: Vec<PasswordHash> = users.iter().map(|u| u.hash.clone()).collect();
                let Some((decoy, took)) = slowest_check(&hashes) else {
                    return cfg_err("--users-file: lists no users");
                };
                Identity::Users(UsersIdentity {
                    users,
                    key,
                    key_from_file,
                    ttl: args.session_ttl.unwrap_or(Duration::from_secs(12 * 3600)),
                    decoy,
                    refusal_floor: took * 2,
                })
            }
        };
        let audit = match args.audit_log.as_deref().map(str::trim) {
            None | Some("") | Some("stdout") | Some("-") => AuditTarget::Stdout,
            Some(path) => AuditTarget::File(PathBuf::from(path)),
        };
        let metrics_token = match &args.metrics_token_file {
            None => None,
            Some(p) => {
                let bytes = std::fs::read(p).map_err(|e| {
                    ConfigError(format!(
                        "--metrics-token-file: cannot read {}: {e}",
                        p.display()
                    ))
                })?;
                Some(ScrapeToken::from_file_bytes(&bytes).map_err(|e| {
                    ConfigError(format!("--metrics-token-file {}: {e}", p.display()))
                })?)
            }
        };
        let sign_in = !matches!(identity, Identity::None);
        Ok(AccessConfig {
            metrics_token,
            identity,
            policy: Policy {
                anonymous_role,
                read_only: args.read_only,
                grants: Vec::new(),
                read_only_prefixes: Vec::new(),
                sign_in,
            },
            audit,
        })
    }

    /// Adds the config file's `access:` section; `field` names it in errors.
    pub fn add_file(
        &mut self,
        field: &str,
        file: FileAccess,
        clusters: &[&str],
    ) -> Result<(), ConfigError> {
        let check_clusters = |f: &str, names: &[String]| -> Result<(), ConfigError> {
            for n in names {
                if !clusters.contains(&n.as_str()) {
                    return cfg_err(format!(
                        "{f}.clusters: no cluster named `{n}` is configured"
                    ));
                }
            }
            Ok(())
        };
        for (i, g) in file.grants.into_iter().enumerate() {
            let f = format!("{field}.grants[{i}]");
            let role = Role::parse(&g.role).map_err(|e| ConfigError(format!("{f}.role: {e}")))?;
            if g.users.is_empty() && g.groups.is_empty() && !g.everyone {
                return cfg_err(format!(
                    "{f}: name users, groups, or `everyone: true` (signed-in users)"
                ));
            }
            check_clusters(&f, &g.clusters)?;
            self.policy.grants.push(Grant {
                users: g.users,
                groups: g.groups,
                everyone: g.everyone,
                role,
                clusters: g.clusters,
                prefixes: g.prefixes.into_iter().map(String::into_bytes).collect(),
            });
        }
        for (i, r) in file.read_only_prefixes.into_iter().enumerate() {
            let f = format!("{field}.read_only_prefixes[{i}]");
            if r.prefix.is_empty() {
                return cfg_err(format!(
                    "{f}.prefix: must not be empty (use --read-only for everything)"
                ));
            }
            check_clusters(&f, &r.clusters)?;
            self.policy.read_only_prefixes.push(ReadOnlyPrefix {
                prefix: r.prefix.into_bytes(),
                clusters: r.clusters,
            });
        }
        Ok(())
    }
}

fn load_users(path: &std::path::Path) -> Result<Vec<User>, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("--users-file {shown}: cannot read: {e}")))?;
    let parsed: UsersFile =
        serde_yaml::from_str(&text).map_err(|e| ConfigError(format!("{shown}: {e}")))?;
    let mut out: Vec<User> = Vec::new();
    for (i, u) in parsed.users.into_iter().enumerate() {
        let f = format!("{shown}: users[{i}]");
        if u.name.trim().is_empty() || u.name.len() > 128 || u.name.chars().any(char::is_control) {
            return cfg_err(format!("{f}.name: 1-128 printable characters"));
        }
        if out.iter().any(|o| o.name == u.name) {
            return cfg_err(format!("{f}.name: `{}` is listed twice", u.name));
        }
        let hash = PasswordHash::parse(&u.password_hash)
            .map_err(|e| ConfigError(format!("{f}.password_hash: {e}")))?;
        out.push(User {
            name: u.name,
            hash,
            groups: u.groups,
        });
    }
    if out.is_empty() {
        return cfg_err(format!("{shown}: users: at least one user is needed"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_mode_needs_trusted_addresses_and_parses_them() {
        let mut a = AccessArgs {
            auth: AuthMode::Proxy,
            ..Default::default()
        };
        let e = AccessConfig::from_args(&a, Role::Viewer)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--trusted-proxies"), "{e}");
        a.trusted_proxies = vec!["10.0.0.0/8".into(), "127.0.0.1".into()];
        let c = AccessConfig::from_args(&a, Role::Viewer).unwrap();
        let Identity::Proxy(p) = c.identity else {
            panic!("proxy")
        };
        assert!(p.trusts("10.1.2.3".parse().unwrap()));
        assert!(p.trusts("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!p.trusts("192.168.0.1".parse().unwrap()));
        assert_eq!(p.user_header, "x-auth-request-user");
        a.trusted_proxies = vec!["nonsense".into()];
        let e = AccessConfig::from_args(&a, Role::Viewer)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`nonsense`"), "{e}");
    }

    #[test]
    fn users_file_is_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.yaml");
        std::fs::write(
            &path,
            "users:\n  - name: alice\n    password_hash: hunter2\n",
        )
        .unwrap();
        let a = AccessArgs {
            auth: AuthMode::Users,
            users_file: Some(path.clone()),
            ..Default::default()
        };
        let e = AccessConfig::from_args(&a, Role::Viewer)
            .unwrap_err()
            .to_string();
        assert!(e.contains("users[0].password_hash"), "{e}");
        let hash = PasswordHash::create("pw").unwrap();
        std::fs::write(
            &path,
            format!(
                "users:\n  - name: alice\n    password_hash: '{}'\n    groups: [a]\n",
                hash.as_str()
            ),
        )
        .unwrap();
        let c = AccessConfig::from_args(&a, Role::Viewer).unwrap();
        assert!(
            matches!(&c.identity, Identity::Users(u) if !u.key_from_file && u.users[0].groups == ["a"])
        );
    }

    #[test]
    fn metrics_token_file_is_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let a = AccessArgs {
            metrics_token_file: Some(path.clone()),
            ..Default::default()
        };
        let e = AccessConfig::from_args(&a, Role::Viewer)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--metrics-token-file: cannot read"), "{e}");
        std::fs::write(&path, "short\n").unwrap();
        let e = AccessConfig::from_args(&a, Role::Viewer)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--metrics-token-file") && e.contains("at least 16"),
            "{e}"
        );
        std::fs::write(&path, "a-long-enough-scrape-token\n").unwrap();
        let c = AccessConfig::from_args(&a, Role::Viewer).unwrap();
        let token = c.metrics_token.unwrap();
        assert!(token.admits(b"Bearer a-long-enough-scrape-token"));
    }

    #[test]
    fn anonymous_role_and_grants_parse_with_field_names() {
        let a = AccessArgs {
            anonymous_role: Some("none".into()),
            ..Default::default()
        };
        let mut c = AccessConfig::from_args(&a, Role::Viewer).unwrap();
        assert_eq!(c.policy.anonymous_role, None);
        let bad: FileAccess =
            serde_yaml::from_str("grants:\n  - users: [a]\n    role: owner\n").unwrap();
        let e = c
            .add_file("f: access", bad, &["prod"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("access.grants[0].role"), "{e}");
        let bad: FileAccess = serde_yaml::from_str(
            "grants:\n  - users: [a]\n    role: admin\n    clusters: [nope]\n",
        )
        .unwrap();
        let e = c
            .add_file("f: access", bad, &["prod"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no cluster named `nope`"), "{e}");
        let good: FileAccess = serde_yaml::from_str(
            "grants:\n  - groups: [team-a]\n    role: editor\n    prefixes: [/apps/team-a/]\nread_only_prefixes:\n  - prefix: /registry/\n",
        )
        .unwrap();
        c.add_file("f: access", good, &["prod"]).unwrap();
        assert_eq!(c.policy.grants[0].prefixes, vec![b"/apps/team-a/".to_vec()]);
        assert_eq!(
            c.policy.read_only_prefixes[0].prefix,
            b"/registry/".to_vec()
        );
        let e = AccessConfig::from_args(
            &AccessArgs {
                anonymous_role: Some("root".into()),
                ..Default::default()
            },
            Role::Viewer,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--anonymous-role"), "{e}");
    }
}
