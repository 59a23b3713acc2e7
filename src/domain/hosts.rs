//! Which host names this server answers to: the defence against DNS rebinding.
//!
//! A page on `attacker.example` can make its own name resolve to 127.0.0.1 and then read whatever
//! that address serves as if it were its own origin: the browser sends `Host: attacker.example`
//! with each request. A dashboard on a developer's loopback port, signed out and open to anonymous
//! viewers by default, would hand over every key (Kubernetes keeps its Secrets in etcd). The
//! browser always names the host it thinks it is talking to, so refusing names this server was
//! not meant to be reached as stops it.
//!
//! Always allowed, since a rebinding needs a name the attacker controls in public DNS: IP literals
//! (a user who typed an address is on that address's own origin), `localhost` with its
//! subdomains (RFC 6761: loopback only), and names of one label (`etcdboard`, which nginx sends
//! for `proxy_pass http://etcdboard` to an `upstream` block, or a Service's short name): the
//! victim's own hosts file and search domains resolve those, never the attacker's zone. Other
//! names must be listed (`--allowed-hosts`), exactly or as `*.suffix`. With no list, a server
//! listening on a loopback address allows only the above, and one listening elsewhere (a pod
//! behind an ingress, whose host names it cannot know) allows any.

use std::net::{IpAddr, SocketAddr};

/// One `--allowed-hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `etcd.example.com`: that name.
    Exact(String),
    /// `*.example.com`: any name under `example.com` (not `example.com` itself).
    Under(String),
}

/// The host names requests may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    /// `*`, or the default off loopback: any name.
    any: bool,
    patterns: Vec<Pattern>,
}

impl AllowedHosts {
    /// The policy for a server listening on `listen`, from the `--allowed-hosts` entries (empty:
    /// the default for that address). The error names the entry that is not a host name.
    pub fn new(entries: &[String], listen: SocketAddr) -> Result<Self, String> {
        let entries: Vec<&str> = entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .collect();
        let mut hosts = AllowedHosts {
            any: entries.is_empty() && !listen.ip().is_loopback(),
            patterns: Vec::new(),
        };
        for entry in entries {
            if entry == "*" {
                hosts.any = true;
                continue;
            }
            let (under, name) = match entry.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, entry),
            };
            let name = normalise(name);
            if !is_host_name(&name) {
                return Err(format!(
                    "'{entry}' is not a host name (expected e.g. etcd.example.com, \
                     *.example.com or *; no scheme, port or path)"
                ));
            }
            hosts.patterns.push(if under {
                Pattern::Under(name)
            } else {
                Pattern::Exact(name)
            });
        }
        Ok(hosts)
    }

    /// Whether a request whose `Host` header (or URI authority) is `authority` may be served.
    pub fn allows(&self, authority: &str) -> bool {
        // First, so that a server allowing any name (the default off loopback) parses nothing.
        if self.any {
            return true;
        }
        let host = normalise(host_part(authority));
        let local = host == "localhost" || host.ends_with(".localhost");
        let one_label = !host.is_empty() && !host.contains('.');
        if local || one_label || host.parse::<IpAddr>().is_ok() {
            return true;
        }
        self.patterns.iter().any(|p| match p {
            Pattern::Exact(name) => host == *name,
            Pattern::Under(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        })
    }

    /// The refusal's text for a request that named `authority`.
    pub fn refusal(&self, authority: &str) -> String {
        let host = normalise(host_part(authority));
        format!(
            "this server is not reached as '{host}': add it to --allowed-hosts \
             (ETCDBOARD_ALLOWED_HOSTS) if that is this dashboard's address. Only the names \
             listed there, localhost, names without a dot and IP addresses are served, so that \
             another site cannot point its own name at this server (DNS rebinding)"
        )
    }
}

/// The host of an authority (`name:port`, `[v6]:port`, `v6`), without port or brackets.
pub fn host_part(authority: &str) -> &str {
    let authority = authority.trim();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    // A bare IPv6 address has several colons and no port.
    if authority.matches(':').count() > 1 {
        return authority;
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Lower case, without the root's trailing dot (`Example.COM.` is `example.com`).
fn normalise(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1 to 63 characters.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    fn hosts(entries: &[&str], listen: &str) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        AllowedHosts::new(&entries, listen.parse().unwrap()).unwrap()
    }

    #[test]
    fn on_loopback_only_local_names_and_addresses_by_default() {
        let h = hosts(&[], "127.0.0.1:8080");
        for ok in [
            "localhost:8080",
            "LOCALHOST",
            "localhost.:8080",
            "app.localhost:3000",
            "127.0.0.1:8080",
            "10.1.2.3",
            "[::1]:8080",
            "::1",
            "[fe80::1]",
            "etcdboard",
            "etcdboard:8080",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for refused in [
            "attacker.example",
            "attacker.example:8080",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "etcdboard.attacker.example",
            "",
            ":8080",
        ] {
            assert!(!h.allows(refused), "{refused}");
        }
        assert!(!hosts(&[], "[::1]:8080").allows("attacker.example"));
    }

    #[test]
    fn off_loopback_any_name_by_default() {
        for listen in ["0.0.0.0:8080", "10.0.0.5:8080", "[::]:8080"] {
            assert!(hosts(&[], listen).allows("etcd.example.com"), "{listen}");
        }
    }

    #[test]
    fn listed_names_exactly_or_below_a_suffix() {
        let h = hosts(
            &["etcd.example.com", "*.dev.example.com", " "],
            "0.0.0.0:80",
        );
        assert!(h.allows("etcd.example.com"));
        assert!(h.allows("ETCD.Example.com.:443"));
        assert!(h.allows("a.dev.example.com"));
        assert!(h.allows("a.b.dev.example.com:8080"));
        assert!(!h.allows("dev.example.com"));
        assert!(!h.allows("xdev.example.com"));
        assert!(!h.allows("other.example.com"));
        assert!(!h.allows("etcd.example.com.attacker.example"));
        // Addresses and localhost stay allowed: the kubelet's probes name the pod's address.
        assert!(h.allows("10.244.1.7:8080"));
        assert!(h.allows("localhost:8080"));
        let star = hosts(&["*"], "127.0.0.1:8080");
        assert!(star.allows("anything.example"));
        // Off loopback, no list is the same as `*`.
        assert_eq!(hosts(&[], "0.0.0.0:80"), hosts(&["*"], "0.0.0.0:80"));
    }

    #[test]
    fn entries_that_are_not_host_names_are_refused_by_name() {
        for bad in [
            "https://etcd.example.com",
            "etcd.example.com:8080",
            "etcd.example.com/etcd",
            "*example.com",
            "a..b",
            "*.",
            "exa mple.com",
        ] {
            let err = AllowedHosts::new(&[bad.to_string()], loopback()).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn the_refusal_names_the_host_and_the_setting() {
        let h = hosts(&[], "127.0.0.1:8080");
        let why = h.refusal("Attacker.example:8080");
        assert!(why.contains("'attacker.example'"), "{why}");
        assert!(why.contains("--allowed-hosts"), "{why}");
        assert!(why.contains("ETCDBOARD_ALLOWED_HOSTS"), "{why}");
    }
}
