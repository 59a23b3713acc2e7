//! How long a request body that may legitimately be large (an import of hundreds of MiB) may
//! take to arrive: as long as it keeps coming, but not a trickle.
//!
//! A fixed deadline for the whole body (the request timeout) failed honest imports over slow
//! links: 200 MiB at 5 MB/s takes 40 s. No deadline at all would let a client hold a request
//! slot for ever by sending a byte now and then. So a body must (a) never pause longer than the
//! idle limit, and (b) past that first idle limit, have arrived at [`MIN_BYTES_PER_SEC`] on
//! average. For a body that stops or trickles this ends it about one idle limit after it began,
//! as the fixed deadline did; a body that keeps arriving faster than that rate is never cut.

use std::time::Duration;

/// The slowest average a long body may arrive at (after its first idle limit): 16 KiB/s.
pub const MIN_BYTES_PER_SEC: u64 = 16 * 1024;

/// The latest time, counted from the start of the body, by which its next chunk must arrive,
/// given the bytes `received` so far and when the last chunk came (`last`, from the start).
pub fn next_chunk_due(idle: Duration, received: u64, last: Duration) -> Duration {
    let paused = last + idle;
    // received ≥ rate × (t − idle)  ⇔  t ≤ idle + received / rate
    let paced = idle + Duration::from_secs_f64(received as f64 / MIN_BYTES_PER_SEC as f64);
    paused.min(paced)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(30);

    #[test]
    fn a_body_that_never_starts_is_due_within_the_idle_limit() {
        assert_eq!(next_chunk_due(IDLE, 0, Duration::ZERO), IDLE);
    }

    #[test]
    fn a_steady_body_may_take_as_long_as_it_needs() {
        // 200 MiB at 1 MiB/s: every next chunk is due one idle limit after the last.
        let mib = 1024 * 1024;
        for s in [1u64, 60, 199] {
            let last = Duration::from_secs(s);
            assert_eq!(next_chunk_due(IDLE, s * mib, last), last + IDLE, "at {s} s");
        }
    }

    #[test]
    fn a_trickle_is_ended_soon_after_the_idle_limit() {
        // A byte a second: by 40 s it is far below 16 KiB/s, so it is due at once.
        let due = next_chunk_due(IDLE, 40, Duration::from_secs(40));
        assert!(due < IDLE + Duration::from_millis(10), "{due:?}");
        // Early on it is simply the idle limit (nothing is owed yet).
        assert_eq!(
            next_chunk_due(IDLE, 1, Duration::from_secs(1)).as_secs(),
            30
        );
    }

    #[test]
    fn the_rate_is_averaged_from_the_start() {
        // 1 MiB at once, then nothing: 1 MiB pays for 64 s past the first idle limit, but the
        // pause limit ends it first.
        let due = next_chunk_due(IDLE, 1024 * 1024, Duration::from_secs(1));
        assert_eq!(due, Duration::from_secs(31));
        // 100 KiB pays for 6.25 s past the idle limit.
        let due = next_chunk_due(IDLE, 100 * 1024, Duration::from_secs(20));
        assert_eq!(due, IDLE + Duration::from_secs_f64(6.25));
    }
}
