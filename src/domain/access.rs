//! Who may do what: roles, grants per user/group/cluster/prefix, read-only prefixes and the global
//! read-only switch. Pure: the web layer asks [`Policy::decide`] on every route and every key.
//!
//! The model, in plain words:
//! - three roles, each including the one before: viewer (read), editor (write keys), admin
//!   (maintenance, leases, delete-prefix, import, snapshots);
//! - a grant gives a role to users and/or groups (or to every signed-in user) on some clusters
//!   (default: all) and, for writes, under some prefixes (default: everywhere);
//! - reading is per cluster: a grant of any role on a cluster lets its holder read all of it
//!   (prefix rules restrict writes, e.g. "team A may write only under `/apps/team-a/`");
//! - read-only prefixes (e.g. `/registry/`, Kubernetes' own data) refuse writes to everyone;
//! - `--read-only` refuses every change;
//! - the anonymous role applies to requests nobody signed in for, and is also every signed-in
//!   user's floor (`none` makes signing in mandatory).

use std::fmt;

/// A role; each includes the rights of the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads keys, members, topology.
    Viewer,
    /// Also writes and deletes single keys.
    Editor,
    /// Also maintenance, lease revocation, delete-prefix, import and snapshots.
    Admin,
}

impl Role {
    /// Parses `viewer`, `editor` or `admin`.
    pub fn parse(text: &str) -> Result<Role, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "`{other}` is not a role (use viewer, editor or admin)"
            )),
        }
    }

    /// The role's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller as far as rights go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name (`anonymous` when nobody signed in).
    pub user: String,
    /// Groups from the identity source.
    pub groups: Vec<String>,
    /// Whether someone signed in (proxy headers or login cookie).
    pub authenticated: bool,
}

impl Principal {
    /// Nobody signed in.
    pub fn anonymous() -> Principal {
        Principal {
            user: "anonymous".into(),
            groups: Vec::new(),
            authenticated: false,
        }
    }

    /// A signed-in user.
    pub fn user(name: impl Into<String>, groups: Vec<String>) -> Principal {
        Principal {
            user: name.into(),
            groups,
            authenticated: true,
        }
    }
}

/// One grant of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// User names it applies to.
    pub users: Vec<String>,
    /// Groups it applies to.
    pub groups: Vec<String>,
    /// Applies to every signed-in user.
    pub everyone: bool,
    /// The role given.
    pub role: Role,
    /// Clusters it applies to; empty means all.
    pub clusters: Vec<String>,
    /// Key prefixes writes are allowed under; empty means everywhere.
    pub prefixes: Vec<Vec<u8>>,
}

impl Grant {
    fn applies_to(&self, who: &Principal) -> bool {
        who.authenticated
            && (self.everyone
                || self.users.contains(&who.user)
                || self.groups.iter().any(|g| who.groups.contains(g)))
    }

    fn covers_cluster(&self, cluster: &str) -> bool {
        self.clusters.is_empty() || self.clusters.iter().any(|c| c == cluster)
    }

    fn covers_key(&self, key: &[u8]) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| key.starts_with(p))
    }

    /// Everything under `prefix` is covered (a grant prefix is a prefix of it).
    fn covers_prefix(&self, prefix: &[u8]) -> bool {
        self.covers_key(prefix)
    }

    fn unrestricted(&self) -> bool {
        self.prefixes.is_empty()
    }
}

/// A prefix nobody may write under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyPrefix {
    /// The prefix.
    pub prefix: Vec<u8>,
    /// Clusters it applies to; empty means all.
    pub clusters: Vec<String>,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Read anything of the cluster.
    Read,
    /// Write or delete one key.
    WriteKey(&'a [u8]),
    /// Delete everything under a prefix.
    DeletePrefix(&'a [u8]),
    /// Import one key (admin, and the key must be writable).
    ImportKey(&'a [u8]),
    /// A cluster-wide admin action; `changes` is false for reads like a snapshot (allowed even
    /// with `--read-only`).
    Admin {
        /// Whether it changes the cluster.
        changes: bool,
        /// What it does, for a refusal ("defragment members"; see [`action_phrase`]).
        what: &'a str,
    },
}

/// The answer to "may they?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go on.
    Allow,
    /// Refused, with a reason the user can act on.
    Deny(String),
}

impl Decision {
    /// Whether it is [`Decision::Allow`].
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// What a caller may do on one cluster, for hiding what they may not (the server still checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// May read.
    pub read: bool,
    /// May write at least some keys.
    pub write: bool,
    /// May run cluster-wide admin actions.
    pub admin: bool,
}

/// The whole access policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Role of requests nobody signed in for (and every signed-in user's floor); `None` means
    /// signing in is required.
    pub anonymous_role: Option<Role>,
    /// Refuse every change.
    pub read_only: bool,
    /// Grants from configuration.
    pub grants: Vec<Grant>,
    /// Prefixes nobody may write under.
    pub read_only_prefixes: Vec<ReadOnlyPrefix>,
    /// Whether users can sign in at all (a login page or an authenticating proxy), so that a
    /// refusal only suggests it where it is possible.
    pub sign_in: bool,
}

impl Default for Policy {
    /// Anonymous viewers, nothing else: safe to expose by default.
    fn default() -> Self {
        Policy {
            anonymous_role: Some(Role::Viewer),
            read_only: false,
            grants: Vec::new(),
            read_only_prefixes: Vec::new(),
            sign_in: false,
        }
    }
}

/// An effective grant: a configured one or the anonymous floor.
struct Effective<'a> {
    role: Role,
    grant: Option<&'a Grant>,
}

impl Effective<'_> {
    fn covers_key(&self, key: &[u8]) -> bool {
        self.grant.is_none_or(|g| g.covers_key(key))
    }
    fn covers_prefix(&self, prefix: &[u8]) -> bool {
        self.grant.is_none_or(|g| g.covers_prefix(prefix))
    }
    fn unrestricted(&self) -> bool {
        self.grant.is_none_or(Grant::unrestricted)
    }
}

/// Why grants fall short of `min` for a key or prefix: the role is missing altogether ("needs
/// editor"), or it holds only under other prefixes ("admin only under `/apps/team-b/`").
fn scope(grants: &[Effective<'_>], min: Role) -> String {
    let mut under: Vec<String> = grants
        .iter()
        .filter(|g| g.role >= min)
        .filter_map(|g| g.grant)
        .flat_map(|g| g.prefixes.iter())
        .map(|p| format!("`{}`", crate::domain::format::display_bytes(p)))
        .collect();
    under.dedup();
    if under.is_empty() {
        format!("needs {min}")
    } else {
        format!("{min} only under {}", under.join(", "))
    }
}

impl Policy {
    fn effective<'a>(&'a self, who: &Principal, cluster: &str) -> Vec<Effective<'a>> {
        let mut out: Vec<Effective<'a>> = self
            .grants
            .iter()
            .filter(|g| g.applies_to(who) && g.covers_cluster(cluster))
            .map(|g| Effective {
                role: g.role,
                grant: Some(g),
            })
            .collect();
        if let Some(role) = self.anonymous_role {
            out.push(Effective { role, grant: None });
        }
        out
    }

    fn read_only_under(&self, cluster: &str, key: &[u8]) -> Option<&ReadOnlyPrefix> {
        self.read_only_prefixes.iter().find(|r| {
            (r.clusters.is_empty() || r.clusters.iter().any(|c| c == cluster))
                && key.starts_with(&r.prefix)
        })
    }

    /// A read-only prefix inside or around `prefix` (deleting `prefix` would touch it).
    fn read_only_overlapping(&self, cluster: &str, prefix: &[u8]) -> Option<&ReadOnlyPrefix> {
        self.read_only_prefixes.iter().find(|r| {
            (r.clusters.is_empty() || r.clusters.iter().any(|c| c == cluster))
                && (prefix.starts_with(&r.prefix) || r.prefix.starts_with(prefix))
        })
    }

    fn who(&self, who: &Principal) -> String {
        if who.authenticated {
            format!("user `{}`", who.user)
        } else if self.sign_in {
            "anonymous users (sign in for more)".to_string()
        } else {
            "anonymous users (the --anonymous-role)".to_string()
        }
    }

    /// May `who` do `need` on `cluster`?
    pub fn decide(&self, who: &Principal, cluster: &str, need: Need<'_>) -> Decision {
        let grants = self.effective(who, cluster);
        if grants.is_empty() {
            return Decision::Deny(if who.authenticated {
                format!(
                    "{} has no role on cluster `{cluster}`; ask an administrator for one",
                    self.who(who)
                )
            } else {
                "sign in first: anonymous access is off".to_string()
            });
        }
        let changes = !matches!(need, Need::Read | Need::Admin { changes: false, .. });
        if changes && self.read_only {
            return Decision::Deny(
                "etcdboard runs with --read-only: nothing can be changed".to_string(),
            );
        }
        let shown = |k: &[u8]| crate::domain::format::display_bytes(k);
        match need {
            Need::Read => Decision::Allow,
            Need::WriteKey(key) | Need::ImportKey(key) => {
                let (min, verb) = if matches!(need, Need::ImportKey(_)) {
                    (Role::Admin, "import")
                } else {
                    (Role::Editor, "write")
                };
                if !grants.iter().any(|g| g.role >= min && g.covers_key(key)) {
                    return Decision::Deny(format!(
                        "{} may not {verb} `{}` on cluster `{cluster}` ({})",
                        self.who(who),
                        shown(key),
                        scope(&grants, min)
                    ));
                }
                match self.read_only_under(cluster, key) {
                    Some(r) => Decision::Deny(format!(
                        "keys under `{}` are read-only on cluster `{cluster}`",
                        shown(&r.prefix)
                    )),
                    None => Decision::Allow,
                }
            }
            Need::DeletePrefix(prefix) => {
                if !grants
                    .iter()
                    .any(|g| g.role >= Role::Admin && g.covers_prefix(prefix))
                {
                    return Decision::Deny(format!(
                        "{} may not delete everything under `{}` on cluster `{cluster}` ({})",
                        self.who(who),
                        shown(prefix),
                        scope(&grants, Role::Admin)
                    ));
                }
                match self.read_only_overlapping(cluster, prefix) {
                    Some(r) => Decision::Deny(format!(
                        "deleting `{}` would touch read-only keys under `{}`",
                        shown(prefix),
                        shown(&r.prefix)
                    )),
                    None => Decision::Allow,
                }
            }
            Need::Admin { what, .. } => {
                if grants
                    .iter()
                    .any(|g| g.role >= Role::Admin && g.unrestricted())
                {
                    Decision::Allow
                } else {
                    Decision::Deny(format!(
                        "{} may not {what} on cluster `{cluster}` (needs admin on the whole cluster)",
                        self.who(who)
                    ))
                }
            }
        }
    }

    /// The route-level check: may `who` reach a route of this level on `cluster` at all? Handlers
    /// of write routes then check the key or prefix with [`Policy::decide`]. `what` says what the
    /// route does, for a refusal of an admin route ([`action_phrase`]).
    pub fn decide_level(
        &self,
        who: &Principal,
        cluster: &str,
        level: RouteLevel,
        what: &str,
    ) -> Decision {
        match level {
            RouteLevel::Read => self.decide(who, cluster, Need::Read),
            RouteLevel::AdminRead => self.decide(
                who,
                cluster,
                Need::Admin {
                    changes: false,
                    what,
                },
            ),
            RouteLevel::Admin => self.decide(
                who,
                cluster,
                Need::Admin {
                    changes: true,
                    what,
                },
            ),
            RouteLevel::Import => {
                let write = self.decide_level(who, cluster, RouteLevel::Write, what);
                if !write.allowed() {
                    return write;
                }
                if self
                    .effective(who, cluster)
                    .iter()
                    .any(|g| g.role >= Role::Admin)
                {
                    Decision::Allow
                } else {
                    Decision::Deny(format!(
                        "{} may not import on cluster `{cluster}` (needs admin)",
                        self.who(who)
                    ))
                }
            }
            RouteLevel::Write => {
                let read = self.decide(who, cluster, Need::Read);
                if !read.allowed() {
                    return read;
                }
                if self.read_only {
                    return Decision::Deny(
                        "etcdboard runs with --read-only: nothing can be changed".to_string(),
                    );
                }
                if self.capabilities(who, cluster).write {
                    Decision::Allow
                } else {
                    Decision::Deny(format!(
                        "{} may only read cluster `{cluster}` (writing needs editor)",
                        self.who(who)
                    ))
                }
            }
        }
    }

    /// What to show `who` on `cluster`.
    pub fn capabilities(&self, who: &Principal, cluster: &str) -> Capabilities {
        let grants = self.effective(who, cluster);
        if grants.is_empty() {
            return Capabilities::default();
        }
        let top = grants.iter().map(|g| g.role).max().unwrap_or(Role::Viewer);
        Capabilities {
            read: true,
            write: !self.read_only && top >= Role::Editor,
            admin: !self.read_only
                && grants
                    .iter()
                    .any(|g| g.role >= Role::Admin && g.unrestricted()),
        }
    }

    /// Whether `who` may read at least one cluster (or sign-in is needed first).
    pub fn may_enter(&self, who: &Principal, clusters: &[&str]) -> bool {
        self.anonymous_role.is_some() || clusters.iter().any(|c| !self.effective(who, c).is_empty())
    }
}

/// The cluster-level need of a route, from its method and path (after the base path); handlers
/// then check key-level needs. Unknown mutating routes need admin: new routes are closed until
/// someone decides otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteNeed {
    /// Open to everyone: static files, health, the login page.
    Public,
    /// Needs someone who may read at least one cluster (home, cluster list).
    Enter,
    /// `/metrics`: like [`RouteNeed::Enter`], or a scraper presenting the metrics token.
    Monitoring,
    /// Needs this on this cluster (the cluster's name from the path, still percent-encoded).
    Cluster(String, RouteLevel),
}

/// Cluster-level part of a route's need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteLevel {
    /// Read.
    Read,
    /// Some write (the handler checks the key).
    Write,
    /// A cluster admin action that changes something.
    Admin,
    /// An admin read (snapshot).
    AdminRead,
    /// An import: the caller must be an admin somewhere on the cluster (the handler checks each
    /// key), known before the body (up to hundreds of MiB) is read.
    Import,
}

/// Classifies a request (method, path without the base path).
pub fn route_need(method: &str, path: &str) -> RouteNeed {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let reads = matches!(method, "GET" | "HEAD" | "OPTIONS");
    match segs.as_slice() {
        ["static", ..] | ["healthz"] | ["readyz"] | ["login"] | ["logout"] => RouteNeed::Public,
        ["metrics"] => RouteNeed::Monitoring,
        ["api", "v1", "clusters", cluster, rest @ ..] | ["clusters", cluster, rest @ ..] => {
            let cluster = (*cluster).to_string();
            let level = match (method, rest) {
                // HEAD too: axum answers it with the GET handler, which starts the snapshot.
                ("GET" | "HEAD", ["snapshot"]) => RouteLevel::AdminRead,
                _ if reads => RouteLevel::Read,
                ("PUT" | "DELETE", ["key"]) => RouteLevel::Write,
                // Key-level (prefix) checks happen in the handlers.
                ("POST", ["delete-prefix"]) => RouteLevel::Write,
                ("POST", ["import"]) => RouteLevel::Import,
                _ => RouteLevel::Admin,
            };
            RouteNeed::Cluster(cluster, level)
        }
        _ if reads => RouteNeed::Enter,
        // Any other change is unknown: refuse unless the caller is admin somewhere (checked as
        // admin on a cluster named "", which no grant names — i.e. only an unrestricted admin).
        _ => RouteNeed::Cluster(String::new(), RouteLevel::Admin),
    }
}

/// The audit action of a request the access policy refused, when it is worth a line: a change,
/// or a snapshot download (every key's value). `None` for other reads.
pub fn route_action(method: &str, path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rest = match segs.as_slice() {
        ["api", "v1", "clusters", _, rest @ ..] | ["clusters", _, rest @ ..] => rest,
        _ => &[][..],
    };
    let action = match (method, rest) {
        ("GET" | "HEAD", ["snapshot"]) => "snapshot".to_string(),
        ("GET" | "HEAD" | "OPTIONS", _) => return None,
        ("PUT", ["key"]) => "put".into(),
        ("DELETE", ["key"]) => "delete".into(),
        ("POST", ["delete-prefix"]) => "delete-prefix".into(),
        ("POST", ["import"]) => "import".into(),
        ("DELETE", ["leases", _]) => "revoke-lease".into(),
        ("POST", ["maintenance", action]) => format!("maintenance:{action}"),
        _ => format!("{method} {path}"),
    };
    Some(action)
}

/// What an action of [`route_action`] does, as a refusal names it: "user `alice` may not
/// *defragment members* on cluster `prod`".
pub fn action_phrase(action: Option<&str>) -> String {
    let Some(action) = action else {
        return "do this".into();
    };
    match action {
        "snapshot" => "download a snapshot".into(),
        "put" => "write keys".into(),
        "delete" => "delete keys".into(),
        "delete-prefix" => "delete everything under a prefix".into(),
        "import" => "import".into(),
        "revoke-lease" => "revoke leases".into(),
        "maintenance:defragment" => "defragment members".into(),
        "maintenance:move-leader" => "move the leader".into(),
        "maintenance:promote" => "promote learners".into(),
        "maintenance:compact" => "compact the history".into(),
        "maintenance:disarm" => "disarm alarms".into(),
        other => match other.strip_prefix("maintenance:") {
            Some(m) => format!("run maintenance `{m}`"),
            None => "do this".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_change_is_named_as_its_audit_lines_name_it() {
        for (method, path, want) in [
            ("PUT", "/api/v1/clusters/prod/key", Some("put")),
            ("DELETE", "/api/v1/clusters/prod/key", Some("delete")),
            (
                "POST",
                "/api/v1/clusters/prod/delete-prefix",
                Some("delete-prefix"),
            ),
            ("POST", "/api/v1/clusters/prod/import", Some("import")),
            (
                "DELETE",
                "/api/v1/clusters/prod/leases/12",
                Some("revoke-lease"),
            ),
            (
                "POST",
                "/api/v1/clusters/prod/maintenance/defragment",
                Some("maintenance:defragment"),
            ),
            ("GET", "/api/v1/clusters/prod/snapshot", Some("snapshot")),
            ("HEAD", "/api/v1/clusters/prod/snapshot", Some("snapshot")),
            (
                "POST",
                "/api/v1/clusters/prod/keys",
                Some("POST /api/v1/clusters/prod/keys"),
            ),
            ("POST", "/somewhere", Some("POST /somewhere")),
            ("GET", "/api/v1/clusters/prod/keys", None),
            ("GET", "/clusters/prod/leases", None),
            ("HEAD", "/", None),
        ] {
            assert_eq!(
                route_action(method, path).as_deref(),
                want,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn an_import_is_refused_before_its_body_to_anyone_without_an_admin_grant() {
        assert_eq!(
            route_need("POST", "/api/v1/clusters/prod/import"),
            RouteNeed::Cluster("prod".into(), RouteLevel::Import)
        );
        let p = policy();
        let alice = Principal::user("alice", Vec::new());
        let root = Principal::user("root", Vec::new());
        assert!(!p
            .decide_level(&alice, "prod", RouteLevel::Import, "import")
            .allowed());
        assert!(p
            .decide_level(&root, "prod", RouteLevel::Import, "import")
            .allowed());
    }

    #[test]
    fn a_snapshot_needs_an_admin_whatever_the_read_method() {
        for method in ["GET", "HEAD"] {
            assert_eq!(
                route_need(method, "/api/v1/clusters/prod/snapshot"),
                RouteNeed::Cluster("prod".into(), RouteLevel::AdminRead),
                "{method}"
            );
        }
    }

    fn grant(users: &[&str], role: Role, clusters: &[&str], prefixes: &[&str]) -> Grant {
        Grant {
            users: users.iter().map(|s| s.to_string()).collect(),
            groups: Vec::new(),
            everyone: false,
            role,
            clusters: clusters.iter().map(|s| s.to_string()).collect(),
            prefixes: prefixes.iter().map(|p| p.as_bytes().to_vec()).collect(),
        }
    }

    fn policy() -> Policy {
        Policy {
            anonymous_role: Some(Role::Viewer),
            read_only: false,
            sign_in: true,
            grants: vec![
                grant(&["root"], Role::Admin, &[], &[]),
                grant(&["alice"], Role::Editor, &["prod"], &["/apps/team-a/"]),
                Grant {
                    groups: vec!["sre".into()],
                    ..grant(&[], Role::Admin, &["prod"], &[])
                },
                Grant {
                    everyone: true,
                    ..grant(&[], Role::Editor, &["dev"], &[])
                },
            ],
            read_only_prefixes: vec![ReadOnlyPrefix {
                prefix: b"/registry/".to_vec(),
                clusters: Vec::new(),
            }],
        }
    }

    #[test]
    fn anonymous_users_read_but_do_not_write_by_default() {
        let p = Policy::default();
        let anon = Principal::anonymous();
        assert!(p.decide(&anon, "prod", Need::Read).allowed());
        let d = p.decide(&anon, "prod", Need::WriteKey(b"/a"));
        // No sign-in is configured by default, so the refusal names the setting instead.
        assert!(
            matches!(&d, Decision::Deny(m) if m.contains("--anonymous-role")),
            "{d:?}"
        );
        assert!(!p
            .decide(
                &anon,
                "prod",
                Need::Admin {
                    changes: false,
                    what: "x"
                }
            )
            .allowed());
    }

    #[test]
    fn refusals_name_the_prefixes_a_role_holds_under() {
        let p = policy();
        let alice = Principal::user("alice", vec![]);
        let why = |need| match p.decide(&alice, "prod", need) {
            Decision::Deny(why) => why,
            Decision::Allow => panic!("allowed"),
        };
        assert_eq!(
            why(Need::WriteKey(b"/apps/team-b/y")),
            "user `alice` may not write `/apps/team-b/y` on cluster `prod` (editor only under `/apps/team-a/`)"
        );
        // She is an editor, never an admin: the role is what she lacks, not the prefix.
        assert_eq!(
            why(Need::DeletePrefix(b"/apps/team-a/")),
            "user `alice` may not delete everything under `/apps/team-a/` on cluster `prod` (needs admin)"
        );
        assert_eq!(
            why(Need::DeletePrefix(b"/registry/")),
            "user `alice` may not delete everything under `/registry/` on cluster `prod` (needs admin)"
        );
        // Someone who may write there is told it is read-only.
        let root = Principal::user("root", vec![]);
        assert_eq!(
            p.decide(&root, "prod", Need::WriteKey(b"/registry/pods/x")),
            Decision::Deny("keys under `/registry/` are read-only on cluster `prod`".into())
        );
    }

    #[test]
    fn prefix_grants_limit_writes_not_reads() {
        let p = policy();
        let alice = Principal::user("alice", vec![]);
        assert!(p.decide(&alice, "prod", Need::Read).allowed());
        assert!(p
            .decide(&alice, "prod", Need::WriteKey(b"/apps/team-a/x"))
            .allowed());
        assert!(!p
            .decide(&alice, "prod", Need::WriteKey(b"/apps/team-b/x"))
            .allowed());
        assert!(!p
            .decide(&alice, "prod", Need::WriteKey(b"/apps/team-a"))
            .allowed());
        // Her grant is for prod only; elsewhere she is a signed-in user of the dev grant.
        assert!(!p
            .decide(&alice, "stage", Need::WriteKey(b"/apps/team-a/x"))
            .allowed());
        assert!(p
            .decide(&alice, "dev", Need::WriteKey(b"/anything"))
            .allowed());
        assert!(!p
            .decide(&alice, "prod", Need::DeletePrefix(b"/apps/team-a/"))
            .allowed());
        assert!(!p
            .decide(
                &alice,
                "prod",
                Need::Admin {
                    changes: true,
                    what: "x"
                }
            )
            .allowed());
        assert_eq!(
            p.capabilities(&alice, "prod"),
            Capabilities {
                read: true,
                write: true,
                admin: false
            }
        );
    }

    #[test]
    fn a_refused_admin_route_names_what_it_does() {
        let p = policy();
        let alice = Principal::user("alice", vec![]);
        let what = action_phrase(
            route_action("POST", "/api/v1/clusters/prod/maintenance/defragment").as_deref(),
        );
        assert_eq!(
            p.decide_level(&alice, "prod", RouteLevel::Admin, &what),
            Decision::Deny(
                "user `alice` may not defragment members on cluster `prod` (needs admin on the whole cluster)"
                    .into()
            )
        );
        for (action, phrase) in [
            (Some("snapshot"), "download a snapshot"),
            (Some("revoke-lease"), "revoke leases"),
            (Some("maintenance:compact"), "compact the history"),
            (Some("maintenance:future"), "run maintenance `future`"),
            (Some("POST /somewhere"), "do this"),
            (None, "do this"),
        ] {
            assert_eq!(action_phrase(action), phrase);
        }
    }

    #[test]
    fn groups_grant_roles_per_cluster() {
        let p = policy();
        let bob = Principal::user("bob", vec!["sre".into()]);
        assert!(p
            .decide(
                &bob,
                "prod",
                Need::Admin {
                    changes: true,
                    what: "x"
                }
            )
            .allowed());
        assert!(p
            .decide(&bob, "prod", Need::DeletePrefix(b"/apps/"))
            .allowed());
        assert!(!p.decide(&bob, "stage", Need::WriteKey(b"/x")).allowed());
        let carol = Principal::user("carol", vec!["dev".into()]);
        assert!(!p
            .decide(
                &carol,
                "prod",
                Need::Admin {
                    changes: true,
                    what: "x"
                }
            )
            .allowed());
    }

    #[test]
    fn read_only_prefixes_bind_even_admins() {
        let p = policy();
        let root = Principal::user("root", vec![]);
        assert!(p
            .decide(&root, "prod", Need::WriteKey(b"/apps/x"))
            .allowed());
        assert!(!p
            .decide(&root, "prod", Need::WriteKey(b"/registry/pods/a"))
            .allowed());
        assert!(!p
            .decide(&root, "prod", Need::ImportKey(b"/registry/pods/a"))
            .allowed());
        // Deleting a prefix that contains /registry/ (or is inside it) is refused.
        assert!(!p.decide(&root, "prod", Need::DeletePrefix(b"/")).allowed());
        assert!(!p
            .decide(&root, "prod", Need::DeletePrefix(b"/registry/pods/"))
            .allowed());
        assert!(p
            .decide(&root, "prod", Need::DeletePrefix(b"/apps/"))
            .allowed());
    }

    #[test]
    fn import_needs_admin_over_the_key() {
        let p = policy();
        let alice = Principal::user("alice", vec![]);
        assert!(!p
            .decide(&alice, "prod", Need::ImportKey(b"/apps/team-a/x"))
            .allowed());
        let root = Principal::user("root", vec![]);
        assert!(p
            .decide(&root, "prod", Need::ImportKey(b"/apps/team-a/x"))
            .allowed());
    }

    #[test]
    fn read_only_switch_refuses_every_change_but_not_reads() {
        let p = Policy {
            read_only: true,
            ..policy()
        };
        let root = Principal::user("root", vec![]);
        assert!(p.decide(&root, "prod", Need::Read).allowed());
        assert!(p
            .decide(
                &root,
                "prod",
                Need::Admin {
                    changes: false,
                    what: "x"
                }
            )
            .allowed());
        let d = p.decide(&root, "prod", Need::WriteKey(b"/a"));
        assert!(
            matches!(&d, Decision::Deny(m) if m.contains("--read-only")),
            "{d:?}"
        );
        assert!(!p
            .decide(
                &root,
                "prod",
                Need::Admin {
                    changes: true,
                    what: "x"
                }
            )
            .allowed());
        assert_eq!(
            p.capabilities(&root, "prod"),
            Capabilities {
                read: true,
                write: false,
                admin: false
            }
        );
    }

    #[test]
    fn without_anonymous_role_signing_in_is_required() {
        let p = Policy {
            anonymous_role: None,
            ..policy()
        };
        let anon = Principal::anonymous();
        assert!(!p.decide(&anon, "prod", Need::Read).allowed());
        assert!(!p.may_enter(&anon, &["prod"]));
        let dave = Principal::user("dave", vec![]);
        // dave matches only the everyone grant on dev.
        assert!(!p.decide(&dave, "prod", Need::Read).allowed());
        assert!(p.decide(&dave, "dev", Need::Read).allowed());
        assert!(p.may_enter(&dave, &["prod", "dev"]));
    }

    #[test]
    fn a_refusal_suggests_signing_in_only_where_one_can() {
        let anon = Principal::anonymous();
        let why = |p: &Policy| match p.decide(&anon, "prod", Need::WriteKey(b"/x")) {
            Decision::Deny(why) => why,
            Decision::Allow => panic!("anonymous viewers may not write"),
        };
        assert!(why(&policy()).contains("sign in for more"));
        let no_login = Policy {
            sign_in: false,
            ..policy()
        };
        let text = why(&no_login);
        assert!(!text.contains("sign in"), "{text}");
        assert!(text.contains("--anonymous-role"), "{text}");
    }

    #[test]
    fn anonymous_never_matches_grants_even_with_a_matching_name() {
        let p = Policy {
            anonymous_role: None,
            grants: vec![grant(&["anonymous"], Role::Admin, &[], &[])],
            ..Policy::default()
        };
        assert!(!p.decide(&Principal::anonymous(), "a", Need::Read).allowed());
    }

    #[test]
    fn routes_are_classified_and_unknown_changes_need_admin() {
        use RouteLevel::*;
        let c = |s: &str, l| RouteNeed::Cluster(s.to_string(), l);
        assert_eq!(route_need("GET", "/static/app.css"), RouteNeed::Public);
        assert_eq!(route_need("POST", "/login"), RouteNeed::Public);
        // Metrics name every cluster and its health: not for strangers where pages are not.
        assert_eq!(route_need("GET", "/metrics"), RouteNeed::Monitoring);
        assert_eq!(route_need("GET", "/readyz"), RouteNeed::Public);
        assert_eq!(route_need("GET", "/"), RouteNeed::Enter);
        assert_eq!(route_need("GET", "/api/v1/clusters"), RouteNeed::Enter);
        assert_eq!(route_need("GET", "/clusters/prod/keys"), c("prod", Read));
        assert_eq!(
            route_need("GET", "/api/v1/clusters/prod/keys"),
            c("prod", Read)
        );
        assert_eq!(
            route_need("PUT", "/api/v1/clusters/prod/key"),
            c("prod", Write)
        );
        assert_eq!(
            route_need("DELETE", "/api/v1/clusters/prod/key"),
            c("prod", Write)
        );
        assert_eq!(
            route_need("POST", "/api/v1/clusters/prod/delete-prefix"),
            c("prod", Write)
        );
        assert_eq!(
            route_need("POST", "/api/v1/clusters/prod/import"),
            c("prod", Import)
        );
        assert_eq!(
            route_need("POST", "/api/v1/clusters/prod/maintenance/defragment"),
            c("prod", Admin)
        );
        assert_eq!(
            route_need("DELETE", "/api/v1/clusters/prod/leases/12"),
            c("prod", Admin)
        );
        assert_eq!(
            route_need("GET", "/api/v1/clusters/prod/snapshot"),
            c("prod", AdminRead)
        );
        assert_eq!(route_need("POST", "/api/v1/whatever"), c("", Admin));
        assert_eq!(route_need("PATCH", "/clusters/prod/keys"), c("prod", Admin));
    }
}
