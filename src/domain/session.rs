//! Built-in users: password hashes (argon2 or bcrypt) and the signed session cookie.
//!
//! The cookie carries the user, their groups and an expiry, signed with HMAC-SHA256 under a key
//! every replica shares (`--session-key-file`), so any replica accepts it and no session store
//! is needed. Signing out removes the cookie from the browser; a stolen cookie stays valid until
//! it expires (keep `--session-ttl` short where that matters).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A password hash as stored in the users file.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

impl PasswordHash {
    /// Accepts argon2 PHC strings (`$argon2id$…`) and bcrypt hashes (`$2a$`, `$2b$`, `$2y$`).
    pub fn parse(text: &str) -> Result<PasswordHash, String> {
        let t = text.trim();
        if t.starts_with("$argon2") {
            let parsed = argon2::PasswordHash::new(t)
                .map_err(|e| format!("not a valid argon2 hash: {e}"))?;
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return Err("not a valid argon2 hash: salt or hash missing".into());
            }
            return Ok(PasswordHash(t.to_string()));
        }
        let bcrypt_like = ["$2a$", "$2b$", "$2y$"].iter().any(|p| t.starts_with(p));
        if bcrypt_like && t.len() == 60 {
            return Ok(PasswordHash(t.to_string()));
        }
        Err("must be an argon2 (`$argon2id$…`) or bcrypt (`$2b$…`) hash; make one with `etcdboard hash-password`".into())
    }

    /// Whether `password` matches. Slow on purpose (run it off the async threads).
    pub fn verify(&self, password: &str) -> bool {
        if self.0.starts_with("$argon2") {
            use argon2::PasswordVerifier;
            match argon2::PasswordHash::new(&self.0) {
                Ok(parsed) => argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            }
        } else {
            bcrypt::verify(password, &self.0).unwrap_or(false)
        }
    }

    /// A new argon2id hash of `password` with a random salt.
    pub fn create(password: &str) -> Result<PasswordHash, String> {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let mut salt_bytes = [0u8; 16];
        getrandom::getrandom(&mut salt_bytes).map_err(|e| format!("no randomness: {e}"))?;
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
        let hash = argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| e.to_string())?;
        Ok(PasswordHash(hash.to_string()))
    }

    /// What decides how long a check takes: the algorithm and its cost parameters, without
    /// salt and digest (`$argon2id$v=19$m=19456,t=2,p=1`, `$2b$10`).
    pub fn cost_class(&self) -> String {
        if self.0.starts_with("$argon2") {
            if let Ok(p) = argon2::PasswordHash::new(&self.0) {
                let version = p.version.map(|v| format!("$v={v}")).unwrap_or_default();
                return format!("${}{version}${}", p.algorithm, p.params);
            }
        }
        // bcrypt: `$2b$10$` then salt and digest.
        match self.0.match_indices('$').nth(2) {
            Some((at, _)) => self.0[..at].to_string(),
            None => self.0.clone(),
        }
    }

    /// The stored text (for writing a users file).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The hash among `hashes` whose check takes longest, and how long it took: one timed check per
/// cost class. Unknown user names are checked against it, and failed sign-ins are padded to
/// twice its time, so that neither the hash kinds in a users file nor its names show in how long
/// a refusal takes.
pub fn slowest_check(hashes: &[PasswordHash]) -> Option<(PasswordHash, std::time::Duration)> {
    let mut seen = std::collections::HashSet::new();
    hashes
        .iter()
        .filter(|h| seen.insert(h.cost_class()))
        .map(|h| {
            let started = std::time::Instant::now();
            h.verify("not the password: a timing probe");
            (h.clone(), started.elapsed())
        })
        .max_by_key(|(_, took)| *took)
}

/// What a session cookie says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// User name.
    #[serde(rename = "u")]
    pub user: String,
    /// Their groups at sign-in.
    #[serde(rename = "g", default)]
    pub groups: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    #[serde(rename = "e")]
    pub expires: u64,
    /// Sign-in time, seconds since the Unix epoch (absent in cookies signed before it was kept).
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<u64>,
}

impl Session {
    /// Whether a server whose sessions last `ttl_secs` accepts this session at `now`: it has not
    /// expired, and it was signed in at most `ttl_secs` ago. A replica with a shorter TTL thus
    /// accepts a fresh cookie from a longer-lived one, for its own TTL. (A cookie without a
    /// sign-in time is accepted while it has no more than `ttl_secs` left.)
    pub fn accepted(&self, now: u64, ttl_secs: u64) -> bool {
        let within_ttl = match self.issued {
            Some(issued) => now < issued.saturating_add(ttl_secs),
            None => self.expires <= now.saturating_add(ttl_secs),
        };
        self.expires > now && within_ttl
    }
}

/// Why a browser on the page `origin` (its `Origin` header, `scheme://host[:port]`) would drop
/// a `Secure` cookie, or `None` when it keeps it: browsers keep them on `https://` pages and on
/// loopback (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`), which they treat as secure
/// even over plain HTTP.
pub fn insecure_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    if scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => rest.split(':').next().unwrap_or(rest),
    }
    .to_ascii_lowercase();
    // `localhost.` is localhost too (a fully qualified name).
    let host = host.strip_suffix('.').map(str::to_string).unwrap_or(host);
    let loopback = host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then_some(host)
}

/// The key sessions are signed with (at least 32 bytes).
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(***)")
    }
}

impl SessionKey {
    /// Shortest key accepted.
    pub const MIN_LEN: usize = 32;

    /// A key from file contents (surrounding whitespace ignored).
    pub fn from_bytes(bytes: &[u8]) -> Result<SessionKey, String> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < Self::MIN_LEN {
            return Err(format!(
                "is {} bytes; use at least {} random bytes (e.g. `head -c 48 /dev/urandom | base64`)",
                trimmed.len(),
                Self::MIN_LEN
            ));
        }
        Ok(SessionKey(trimmed.to_vec()))
    }

    /// A random key (sessions then survive neither a restart nor a switch of replica).
    pub fn random() -> Result<SessionKey, String> {
        let mut k = vec![0u8; 48];
        getrandom::getrandom(&mut k).map_err(|e| format!("no randomness: {e}"))?;
        Ok(SessionKey(k))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        #[allow(clippy::expect_used)]
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }

    /// The cookie value for `session`: `payload.signature`, both base64url.
    pub fn sign(&self, session: &Session) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// The session in a cookie value, if the signature is ours and it has not expired at `now`.
    pub fn verify(&self, value: &str, now: u64) -> Option<Session> {
        let (payload, sig) = value.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&sig).ok()?;
        let session: Session =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (session.expires > now).then_some(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_and_bcrypt_hashes_verify() {
        let h = PasswordHash::create("correct horse").unwrap();
        let h = PasswordHash::parse(h.as_str()).unwrap();
        assert!(h.verify("correct horse"));
        assert!(!h.verify("correct horse "));
        let b = bcrypt::hash("battery", 4).unwrap();
        let b = PasswordHash::parse(&b).unwrap();
        assert!(b.verify("battery"));
        assert!(!b.verify("Battery"));
        assert!(PasswordHash::parse("plaintext").is_err());
        assert!(PasswordHash::parse("$argon2id$garbage").is_err());
        assert!(!format!("{h:?}").contains("argon2"));
    }

    #[test]
    fn sessions_round_trip_and_refuse_tampering_and_expiry() {
        let key = SessionKey::from_bytes(&[7u8; 40]).unwrap();
        let s = Session {
            user: "alice".into(),
            groups: vec!["team-a".into()],
            expires: 1000,
            issued: Some(900),
        };
        let v = key.sign(&s);
        assert_eq!(key.verify(&v, 999), Some(s.clone()));
        assert_eq!(key.verify(&v, 1000), None, "expired");
        // Another key (another deployment) does not accept it.
        let other = SessionKey::from_bytes(&[8u8; 40]).unwrap();
        assert_eq!(other.verify(&v, 0), None);
        // A forged payload with the old signature is refused.
        let (_, sig) = v.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"u":"root","g":[],"e":99999}"#);
        assert_eq!(key.verify(&format!("{forged}.{sig}"), 0), None);
        for junk in ["", ".", "a.b", "....", "%%%.%%%"] {
            assert_eq!(key.verify(junk, 0), None);
        }
        assert!(SessionKey::from_bytes(b"short").is_err());
        // A cookie from before the sign-in time was kept still verifies.
        let old = URL_SAFE_NO_PAD.encode(br#"{"u":"alice","g":[],"e":1000}"#);
        let mut mac = key.mac();
        mac.update(old.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let read = key
            .verify(&format!("{old}.{sig}"), 0)
            .expect("an old cookie");
        assert_eq!(read.issued, None);
    }

    #[test]
    fn hashes_are_timed_once_per_cost_class_and_the_slowest_is_kept() {
        let argon_a = PasswordHash::create("a").unwrap();
        let argon_b = PasswordHash::create("b").unwrap();
        assert_eq!(argon_a.cost_class(), argon_b.cost_class());
        assert_eq!(argon_a.cost_class(), "$argon2id$v=19$m=19456,t=2,p=1");
        let cheap = PasswordHash::parse(&bcrypt::hash("c", 4).unwrap()).unwrap();
        let dear = PasswordHash::parse(&bcrypt::hash("d", 9).unwrap()).unwrap();
        assert!(
            cheap.cost_class().ends_with("$04"),
            "{}",
            cheap.cost_class()
        );
        assert!(dear.cost_class().ends_with("$09"), "{}", dear.cost_class());
        // bcrypt at cost 9 (512 rounds of its key setup) takes far longer than at cost 4 (16).
        let (slowest, took) = slowest_check(&[cheap.clone(), dear.clone()]).unwrap();
        assert_eq!(slowest, dear);
        assert!(took > std::time::Duration::ZERO);
        assert_eq!(slowest_check(&[]), None);
    }

    #[test]
    fn a_shorter_ttl_accepts_a_fresh_cookie_for_its_own_ttl() {
        // Signed in at 10,000 on a replica with 12 h sessions.
        let s = Session {
            user: "alice".into(),
            groups: vec![],
            expires: 10_000 + 12 * 3600,
            issued: Some(10_000),
        };
        let hour = 3600;
        assert!(s.accepted(10_300, hour), "5 minutes old, 1 h TTL");
        assert!(!s.accepted(10_000 + hour, hour), "1 h old, 1 h TTL");
        assert!(s.accepted(10_000 + 11 * hour, 12 * hour));
        assert!(!s.accepted(10_000 + 12 * hour, 24 * hour), "expired");
        // Without a sign-in time: only while no more than the TTL is left.
        let old = Session { issued: None, ..s };
        assert!(!old.accepted(10_300, hour));
        assert!(old.accepted(10_000 + 11 * hour + 1, hour));
    }

    #[test]
    fn secure_cookies_are_dropped_on_plain_http_pages_except_loopback() {
        for kept in [
            "https://dash.example",
            "https://dash.example:8443",
            "http://localhost:8080",
            "http://app.localhost",
            "http://127.0.0.1:31080",
            "http://127.8.0.1",
            "http://[::1]:8080",
            "http://localhost.:8080",
        ] {
            assert_eq!(insecure_origin(kept), None, "{kept}");
        }
        assert_eq!(
            insecure_origin("http://dash.test:31090"),
            Some("dash.test".into())
        );
        assert_eq!(
            insecure_origin("http://10.0.0.5:30080"),
            Some("10.0.0.5".into())
        );
        assert_eq!(
            insecure_origin("HTTP://Dash.Test"),
            Some("dash.test".into())
        );
        assert_eq!(insecure_origin("null"), None, "not a page's origin");
    }
}
