//! The audit log: one JSON line per change and per maintenance action (time, user, source
//! address, cluster, action, key or prefix, old → new revision, result). Values are never logged.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::access::AuditTarget;
use crate::domain::format::display_bytes;
use crate::domain::key::b64_std;

/// Where audit lines are written.
pub struct AuditLog {
    file: Option<Mutex<AuditFile>>,
}

/// An audit file, and the path it was opened at: when the path no longer names it (moved away
/// or deleted by logrotate), the next line goes to a new file at the path, not to the old one.
struct AuditFile {
    path: PathBuf,
    file: File,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AuditFile {
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let moved = match (std::fs::metadata(&self.path), self.file.metadata()) {
            (Ok(at_path), Ok(open)) => at_path.dev() != open.dev() || at_path.ino() != open.ino(),
            _ => true,
        };
        if moved {
            self.file = open_append(&self.path)?;
            tracing::info!(path = %self.path.display(), "audit log reopened: the file was moved or removed (rotated)");
        }
        self.file.write_all(line)
    }
}

/// One audited action.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// Who (`anonymous` when nobody signed in).
    pub user: &'a str,
    /// The client address as etcdboard saw it (the proxy's, behind an ingress).
    pub source: Option<IpAddr>,
    /// Cluster name.
    pub cluster: &'a str,
    /// `put`, `delete`, `delete-prefix`, `import`, `revoke-lease`, `compact`, …
    pub action: &'a str,
    /// Key, prefix or member the action was on (bytes).
    pub key: &'a [u8],
    /// Revision the user saw (0 when not applicable).
    pub old_revision: i64,
    /// Revision after the change, when it happened.
    pub new_revision: Option<i64>,
    /// `ok`, `conflict`, `denied`, `error: …`.
    pub result: &'a str,
}

impl AuditLog {
    /// Opens the target (a file is created if missing and appended to).
    pub fn open(target: &AuditTarget) -> std::io::Result<AuditLog> {
        let file = match target {
            AuditTarget::Stdout => None,
            AuditTarget::File(path) => Some(Mutex::new(AuditFile {
                path: path.clone(),
                file: open_append(path)?,
            })),
        };
        Ok(AuditLog { file })
    }

    /// The JSON line of an entry at `now` (seconds and nanoseconds since the epoch).
    pub fn line(entry: &AuditEntry<'_>, now: (i64, i64)) -> String {
        json!({
            "time": crate::domain::k8s_proto::rfc3339(now.0, now.1, true),
            "audit": true,
            "user": entry.user,
            "source": entry.source.map(|s| s.to_string()),
            "cluster": entry.cluster,
            "action": entry.action,
            "key": display_bytes(entry.key).to_string(),
            "key_b64": b64_std(entry.key),
            "old_revision": entry.old_revision,
            "new_revision": entry.new_revision,
            "result": entry.result,
        })
        .to_string()
    }

    /// Writes one line; a failure to write is logged (the action itself already happened). A
    /// file moved or removed since (log rotation) is created again at its path.
    pub fn record(&self, entry: &AuditEntry<'_>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| (d.as_secs() as i64, i64::from(d.subsec_nanos())))
            .unwrap_or((0, 0));
        let mut line = Self::line(entry, now);
        line.push('\n');
        let written = match &self.file {
            None => std::io::stdout().lock().write_all(line.as_bytes()),
            Some(f) => match f.lock() {
                Ok(mut f) => f.write_line(line.as_bytes()),
                Err(_) => Err(std::io::Error::other("audit file lock poisoned")),
            },
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "could not write an audit line");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_everything_but_the_value() {
        let e = AuditEntry {
            user: "alice",
            source: Some("10.0.0.7".parse().unwrap()),
            cluster: "prod",
            action: "put",
            key: b"/apps/\xff",
            old_revision: 7,
            new_revision: Some(9),
            result: "ok",
        };
        let v: serde_json::Value =
            serde_json::from_str(&AuditLog::line(&e, (951_782_400, 5_000))).unwrap();
        assert_eq!(v["time"], "2000-02-29T00:00:00.000005Z");
        assert_eq!(v["user"], "alice");
        assert_eq!(v["source"], "10.0.0.7");
        assert_eq!(v["key_b64"], "L2FwcHMv/w==");
        assert_eq!(v["old_revision"], 7);
        assert_eq!(v["new_revision"], 9);
        assert!(v.get("value").is_none());
    }

    #[test]
    fn a_rotated_file_is_created_again_and_no_line_goes_to_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).unwrap();
        let entry = |user| AuditEntry {
            user,
            source: None,
            cluster: "prod",
            action: "put",
            key: b"/k",
            old_revision: 0,
            new_revision: Some(2),
            result: "ok",
        };
        let users = |p: &Path| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["user"].to_string())
                .collect()
        };
        log.record(&entry("a"));
        // logrotate's default: rename, then the program goes on.
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        log.record(&entry("b"));
        log.record(&entry("c"));
        assert_eq!(users(&dir.path().join("audit.log.1")), [r#""a""#]);
        assert_eq!(users(&path), [r#""b""#, r#""c""#]);
        // Deleted outright.
        std::fs::remove_file(&path).unwrap();
        log.record(&entry("d"));
        assert_eq!(users(&path), [r#""d""#]);
    }
}
