//! One etcd watch stream on one member, with the silence check both watches need.
//!
//! A member that hangs (SIGSTOP, a frozen VM, a one-way partition) neither ends a watch stream
//! nor answers on it. Both the fence index's watch ([`crate::etcd::index`]) and the live-update
//! watch ([`crate::etcd::watch`]) therefore ask etcd for progress now and then, and give the
//! member up when nothing at all has come back for a while; they then resume on the next member
//! from the revision after the last change they delivered. This is that shared part: open the
//! stream within a deadline, tick, ask for progress, and say when the member went silent.

use std::time::{Duration, Instant};

use etcd_client::{WatchOptions, WatchRequestSender, WatchResponse, WatchResponseStream};

use crate::etcd::gateway::{short_reason, too_large, EtcdCluster, MAX_ANSWER_BYTES};

/// A watch stream on one member.
pub(crate) struct MemberWatch {
    requests: WatchRequestSender,
    responses: WatchResponseStream,
    progress: tokio::time::Interval,
    heard: Instant,
    silent_for: Duration,
}

/// What happened next on a [`MemberWatch`].
pub(crate) enum WatchNext {
    /// etcd answered: events, a progress answer, the watch's creation, cancellation or
    /// compaction.
    Response(WatchResponse),
    /// A progress period passed (and a progress request was sent): time for the caller's own
    /// periodic checks.
    Tick,
    /// Nothing came back for the silence limit (the member hangs or is cut off), said in words.
    Silent(String),
    /// The stream failed or ended, and why.
    Ended(String),
    /// etcd sent a message larger than [`MAX_ANSWER_BYTES`]. It would send the same again from the
    /// same revision, so the caller must start from a later one.
    TooLarge(String),
}

impl MemberWatch {
    /// Opens a watch of `key` (with `opts`) on member `member` of `cluster`, giving up after
    /// `within`. Progress is asked every `progress_every`; after `silent_for` without any answer
    /// the watch reports [`WatchNext::Silent`].
    pub(crate) async fn open(
        cluster: &EtcdCluster,
        member: usize,
        key: Vec<u8>,
        opts: WatchOptions,
        within: Duration,
        (progress_every, silent_for): (Duration, Duration),
    ) -> Result<MemberWatch, String> {
        let client = cluster.client(member, false).await?;
        let mut watches = client
            .watch_client()
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        let stream = match tokio::time::timeout(within, watches.watch(key, Some(opts))).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(short_reason(&e)),
            Err(_) => return Err(format!("no answer after {} s", within.as_secs())),
        };
        let (requests, responses) = stream.split();
        let mut progress = tokio::time::interval(progress_every);
        progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(MemberWatch {
            requests,
            responses,
            progress,
            heard: Instant::now(),
            silent_for,
        })
    }

    /// Waits for the next answer or tick. Cancel-safe: it may be raced against other futures.
    pub(crate) async fn next(&mut self) -> WatchNext {
        tokio::select! {
            msg = self.responses.message() => match msg {
                Ok(Some(resp)) => {
                    self.heard = Instant::now();
                    WatchNext::Response(resp)
                }
                Ok(None) => WatchNext::Ended("watch stream ended".into()),
                Err(e) if too_large(&e) => WatchNext::TooLarge(short_reason(&e)),
                Err(e) => WatchNext::Ended(short_reason(&e)),
            },
            _ = self.progress.tick() => {
                if self.heard.elapsed() > self.silent_for {
                    return WatchNext::Silent(format!("no answer for {} s", self.silent_for.as_secs()));
                }
                // A full request channel means the stream is stuck; silence then ends it.
                let period = self.progress.period();
                let _ = tokio::time::timeout(period, self.requests.request_progress()).await;
                WatchNext::Tick
            }
        }
    }
}
