//! Slowing down password guessing: after a few failed sign-ins for one user name, each further
//! attempt for that name must wait, twice as long each time, up to a cap.
//!
//! Keyed by the user name as typed (known or not, so the answer never tells which names exist):
//! behind an ingress every request comes from the proxy's address, so an address key would lock
//! everybody out together. A correct password after the wait resets the name. Waits are short
//! enough that a user someone else is guessing for gets in after at most [`MAX_WAIT`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Failed attempts allowed before waits begin.
pub const FREE_FAILURES: u32 = 5;
/// The first wait; it doubles with every further failure.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// A name's failures are forgotten this long after its last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most names remembered; past it the least recently failed are forgotten first.
pub const MAX_NAMES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// When the next attempt may be made.
    fn next_allowed(&self) -> Instant {
        if self.count < FREE_FAILURES {
            return self.last;
        }
        let doublings = (self.count - FREE_FAILURES).min(16);
        let wait = FIRST_WAIT
            .checked_mul(1u32 << doublings)
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT);
        self.last + wait
    }
}

/// Failed sign-ins by user name.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    names: HashMap<String, Failures>,
}

impl LoginThrottle {
    /// `Err(wait)` when an attempt for `name` must wait that much longer; `Ok` otherwise.
    pub fn check(&self, name: &str, now: Instant) -> Result<(), Duration> {
        match self.names.get(name) {
            Some(f) if now.saturating_duration_since(f.last) < FORGET_AFTER => {
                let at = f.next_allowed();
                if now < at {
                    Err(at - now)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// An attempt for `name` failed.
    pub fn failed(&mut self, name: &str, now: Instant) {
        self.names
            .retain(|_, f| now.saturating_duration_since(f.last) < FORGET_AFTER);
        if self.names.len() >= MAX_NAMES && !self.names.contains_key(name) {
            if let Some(oldest) = self
                .names
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(k, _)| k.clone())
            {
                self.names.remove(&oldest);
            }
        }
        let f = self.names.entry(name.to_string()).or_insert(Failures {
            count: 0,
            last: now,
        });
        f.count = f.count.saturating_add(1);
        f.last = now;
    }

    /// `name` signed in: its failures are forgotten.
    pub fn succeeded(&mut self, name: &str) {
        self.names.remove(name);
    }

    /// Names with failures remembered (for tests).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no failures are remembered.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail_n(t: &mut LoginThrottle, name: &str, n: u32, at: Instant) {
        for _ in 0..n {
            t.failed(name, at);
        }
    }

    #[test]
    fn a_few_failures_are_free_then_waits_double_up_to_the_cap() {
        let mut t = LoginThrottle::default();
        let t0 = Instant::now();
        fail_n(&mut t, "alice", FREE_FAILURES - 1, t0);
        assert_eq!(t.check("alice", t0), Ok(()));
        t.failed("alice", t0);
        assert_eq!(t.check("alice", t0), Err(FIRST_WAIT));
        let later = t0 + FIRST_WAIT;
        assert_eq!(t.check("alice", later), Ok(()));
        t.failed("alice", later);
        assert_eq!(t.check("alice", later), Err(FIRST_WAIT * 2));
        fail_n(&mut t, "alice", 20, later);
        assert_eq!(t.check("alice", later), Err(MAX_WAIT));
        assert_eq!(t.check("alice", later + MAX_WAIT), Ok(()));
    }

    #[test]
    fn names_are_apart_and_success_or_time_forgets() {
        let mut t = LoginThrottle::default();
        let t0 = Instant::now();
        fail_n(&mut t, "alice", FREE_FAILURES + 2, t0);
        assert!(t.check("alice", t0).is_err());
        assert_eq!(t.check("bob", t0), Ok(()), "other names are not slowed");
        t.succeeded("alice");
        assert_eq!(t.check("alice", t0), Ok(()));
        fail_n(&mut t, "carol", FREE_FAILURES + 2, t0);
        assert_eq!(t.check("carol", t0 + FORGET_AFTER), Ok(()));
        t.failed("dave", t0 + FORGET_AFTER);
        assert_eq!(
            t.len(),
            1,
            "carol's failures were dropped on the next write"
        );
    }

    #[test]
    fn memory_is_bounded_by_evicting_the_oldest() {
        let mut t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..MAX_NAMES + 10 {
            t.failed(&format!("user{i}"), t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(t.len(), MAX_NAMES);
        assert!(t.names.contains_key(&format!("user{}", MAX_NAMES + 9)));
        assert!(!t.names.contains_key("user0"));
    }
}
