//! Linearizable "how far has the cluster got" rounds, shared by the reads that arrive together.
//!
//! A linearizable read costs the raft leader a round of heartbeats to a quorum (etcd's ReadIndex),
//! on the machines that also commit every write. A page "as of now" needs that once; many people
//! browsing at once would pay it once per page, and the cluster's own writers would feel it.
//!
//! So a page first asks a [`ReadBarrier`] for a *fresh point*: a revision that every write
//! completed before the page was asked for is at or below. When no round is in flight, the page's
//! own linearizable read is the round. Pages that arrive while a round is in flight wait for the
//! *next* round, which is sent after they arrived (a round that started before a page was asked
//! for could miss a write that completed just before it, so it is never shared with that page),
//! and read the snapshot at its revision from a follower: a serializable read at a fixed revision
//! is the same on every member that has applied it, and costs the leader nothing. Pages stay
//! linearizable; only their rounds are shared.
//!
//! So one etcdboard has at most one such round in flight per cluster, however many people
//! browse, and a page never waits for more than the round in flight and its own. A page asked
//! alone, or after the previous one has answered (one person clicking through), sends its round
//! at once and waits for nothing.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::time::Instant;

/// A revision every write completed before [`FreshPoint::sent`] is at or below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FreshPoint {
    /// The revision the round's linearizable read answered at.
    pub revision: i64,
    /// When the round's read was sent.
    pub sent: Instant,
}

/// Rounds sent and who runs the next one.
#[derive(Debug, Default)]
struct State {
    /// Rounds sent so far (the next one is `sent + 1`).
    sent: u64,
    /// A caller is running a round.
    running: bool,
}

/// The last round that finished, and what it found (`None`: it failed).
#[derive(Debug, Clone, Copy, Default)]
struct Finished {
    round: u64,
    found: Option<FreshPoint>,
}

/// Shares linearizable rounds between concurrent reads of one cluster (see the module docs).
#[derive(Debug)]
pub(crate) struct ReadBarrier {
    state: Mutex<State>,
    finished: watch::Sender<Finished>,
}

impl Default for ReadBarrier {
    fn default() -> ReadBarrier {
        ReadBarrier {
            state: Mutex::new(State::default()),
            finished: watch::Sender::new(Finished::default()),
        }
    }
}

impl ReadBarrier {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent counters.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh point for a read asked for now: the result of the first round sent after this call
    /// began. When no round is in flight this caller sends it, with `round` (given the moment it
    /// is sent, returning the revision a linearizable read answered at, or `None` when it failed);
    /// otherwise it waits for the round after the one in flight, which some waiting caller sends.
    /// `None` when that round failed. Callers bound the wait themselves (a timeout): a caller
    /// dropped mid-round hands the round on to the others.
    pub(crate) async fn fresh_point<F, Fut>(&self, round: F) -> Option<FreshPoint>
    where
        F: FnOnce(Instant) -> Fut,
        Fut: Future<Output = Option<i64>>,
    {
        let mut finished = self.finished.subscribe();
        let need = self.state().sent + 1;
        let mut round = Some(round);
        loop {
            let last = *finished.borrow_and_update();
            if last.round >= need {
                return last.found;
            }
            let claimed = {
                let mut s = self.state();
                !std::mem::replace(&mut s.running, true)
            };
            if claimed {
                let _release = Release(self);
                let (number, sent) = {
                    let mut s = self.state();
                    s.sent += 1;
                    (s.sent, Instant::now())
                };
                let run = round.take()?;
                let found = run(sent)
                    .await
                    .map(|revision| FreshPoint { revision, sent });
                self.finished.send_modify(|f| {
                    if number > f.round {
                        *f = Finished {
                            round: number,
                            found,
                        };
                    }
                });
                return found;
            }
            if finished.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// Lets the next caller run a round once this one is done (or dropped mid-round), and wakes the
/// waiting callers so that one of them can.
struct Release<'a>(&'a ReadBarrier);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.state().running = false;
        self.0.finished.send_modify(|_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    use std::time::Duration;

    /// Rounds that each answer the next revision (1, 2, 3 …) once `gate` lets them, counting how
    /// many were sent.
    #[derive(Clone)]
    struct Rounds {
        sent: Arc<AtomicUsize>,
        revision: Arc<AtomicI64>,
        gate: Arc<Semaphore>,
    }

    impl Rounds {
        fn new(open: bool) -> Rounds {
            Rounds {
                sent: Arc::new(AtomicUsize::new(0)),
                revision: Arc::new(AtomicI64::new(0)),
                gate: Arc::new(Semaphore::new(if open { 1_000 } else { 0 })),
            }
        }

        async fn ask(&self, barrier: &ReadBarrier) -> Option<FreshPoint> {
            barrier
                .fresh_point(|_| async {
                    self.sent.fetch_add(1, Ordering::SeqCst);
                    let permit = self.gate.acquire().await.ok()?;
                    permit.forget();
                    Some(self.revision.fetch_add(1, Ordering::SeqCst) + 1)
                })
                .await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_one_after_another_each_send_their_own_round_at_once() {
        let barrier = ReadBarrier::default();
        let rounds = Rounds::new(true);
        let start = Instant::now();
        let first = rounds.ask(&barrier).await.expect("first");
        assert_eq!(
            (first.revision, first.sent),
            (1, start),
            "an idle barrier does not wait"
        );
        let second = rounds.ask(&barrier).await.expect("second");
        assert_eq!(
            second.revision, 2,
            "a later read never reuses an earlier round"
        );
        assert_eq!(second.sent, start, "nor waits for anything");
        assert_eq!(rounds.sent.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_arriving_during_a_round_share_the_next_one_and_never_the_one_in_flight() {
        let barrier = Arc::new(ReadBarrier::default());
        let rounds = Rounds::new(false);
        let first = {
            let (b, r) = (barrier.clone(), rounds.clone());
            tokio::spawn(async move { r.ask(&b).await })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(rounds.sent.load(Ordering::SeqCst), 1);
        let waiting: Vec<_> = (0..5)
            .map(|_| {
                let (b, r) = (barrier.clone(), rounds.clone());
                tokio::spawn(async move { r.ask(&b).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(rounds.sent.load(Ordering::SeqCst), 1, "one round in flight");
        rounds.gate.add_permits(2);
        assert_eq!(first.await.expect("join").map(|p| p.revision), Some(1));
        for w in waiting {
            let point = w.await.expect("join").expect("point");
            assert_eq!(point.revision, 2, "the round sent after they arrived");
        }
        assert_eq!(
            rounds.sent.load(Ordering::SeqCst),
            2,
            "five reads, one round"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_round_fails_the_reads_waiting_for_it_and_the_next_read_tries_again() {
        let barrier = ReadBarrier::default();
        assert_eq!(barrier.fresh_point(|_| async { None }).await, None);
        let point = barrier.fresh_point(|_| async { Some(7) }).await;
        assert_eq!(point.map(|p| p.revision), Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_dropped_mid_round_hands_the_round_on() {
        let barrier = Arc::new(ReadBarrier::default());
        let stuck = Rounds::new(false);
        let runner = {
            let (b, r) = (barrier.clone(), stuck.clone());
            tokio::spawn(async move { r.ask(&b).await })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        let waiter = {
            let b = barrier.clone();
            tokio::spawn(async move { b.fresh_point(|_| async { Some(42) }).await })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        runner.abort();
        let point = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the waiter is not left hanging")
            .expect("join");
        assert_eq!(point.map(|p| p.revision), Some(42));
    }
}
