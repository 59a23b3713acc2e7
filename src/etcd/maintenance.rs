//! Maintenance actions on one member or the cluster: defragment, compact, move leadership, snapshot.
//! Each is deliberate (the UI confirms it) and logged by the caller.

use std::time::Duration;

use etcd_client::CompactionOptions;
use tokio::sync::mpsc;

use crate::etcd::gateway::{could_not_answer, rejected, short_reason, EtcdCluster, EtcdError};

/// Defragmenting a large database can take minutes.
const DEFRAG_DEADLINE: Duration = Duration::from_secs(300);

/// A snapshot being streamed: total size (when the member says) and the chunks.
pub struct SnapshotStream {
    /// Bytes in the whole snapshot.
    pub total: Option<u64>,
    /// Chunks; an `Err` ends the stream early.
    pub chunks: mpsc::Receiver<Result<Vec<u8>, String>>,
}

impl EtcdCluster {
    async fn member_url(&self, member_hex: &str) -> Result<String, EtcdError> {
        let member_hex = member_hex.to_ascii_lowercase();
        let obs = self.observe().await;
        if obs.members.is_empty() {
            // Nobody said who the members are: that is an outage, not an unknown id.
            return Err(self.unavailable(
                obs.error
                    .unwrap_or_else(|| "the member list could not be read".into()),
            ));
        }
        obs.members
            .iter()
            .find(|m| m.id == member_hex)
            .and_then(|m| m.reach_url().map(str::to_string))
            .ok_or_else(|| EtcdError::Rejected(format!("no member {member_hex} with a client URL")))
    }

    /// What a failed call to one member means: the member could not answer (503), or it refused
    /// the request (its own words).
    fn member_failure(&self, member: &str, e: &etcd_client::Error) -> EtcdError {
        if could_not_answer(e) {
            // The channel connects lazily: a connection that never opened shows up here, and
            // then the request cannot have reached the member.
            let reason = short_reason(e);
            let sent = !(reason.contains("connect error") || reason.contains("onnection refused"));
            self.member_down(member, reason, sent)
        } else {
            rejected(short_reason(e))
        }
    }

    /// Member `member` did not answer; `sent`: after the request reached it.
    fn member_down(&self, member: &str, detail: String, sent: bool) -> EtcdError {
        EtcdError::MemberUnavailable {
            cluster: self.name().to_string(),
            member: member.to_ascii_lowercase(),
            detail,
            sent,
        }
    }

    fn unavailable(&self, detail: String) -> EtcdError {
        EtcdError::Unavailable {
            cluster: self.name().to_string(),
            waited_ms: 0,
            detail,
        }
    }

    /// Defragments one member (blocks that member while it runs).
    pub async fn defragment(&self, member_hex: &str) -> Result<(), EtcdError> {
        let url = self.member_url(member_hex).await?;
        let mut c = self
            .url_client(&url, false)
            .await
            .map_err(|e| self.member_down(member_hex, e, false))?;
        tokio::time::timeout(DEFRAG_DEADLINE, c.defragment())
            .await
            .map_err(|_| {
                self.member_down(
                    member_hex,
                    "defragment did not finish in 5 minutes".into(),
                    true,
                )
            })?
            .map_err(|e| self.member_failure(member_hex, &e))?;
        Ok(())
    }

    /// Compacts history up to `revision` (physically, so the space can be defragmented).
    pub async fn compact(&self, revision: i64) -> Result<(), EtcdError> {
        self.write(|mut c, _| async move {
            c.compact(revision, Some(CompactionOptions::new().with_physical()))
                .await?;
            Ok(((), revision))
        })
        .await
        .map(|_| ())
    }

    /// Promotes learner `member_hex` to a voting member. etcd refuses while the learner has not
    /// caught up with the leader, and says so.
    pub async fn promote(&self, member_hex: &str) -> Result<(), EtcdError> {
        let id = u64::from_str_radix(member_hex, 16)
            .map_err(|_| EtcdError::Rejected(format!("`{member_hex}` is not a member id")))?;
        // An id that is not in the member list is the request's mistake (404), not etcd's.
        self.member_url(member_hex).await?;
        self.write(|mut c, _| async move {
            c.member_promote(id).await?;
            Ok(((), 0))
        })
        .await
        .map(|_| ())
    }

    /// Moves leadership to `member_hex` (asked of the current leader).
    pub async fn move_leader(&self, member_hex: &str) -> Result<(), EtcdError> {
        let target = u64::from_str_radix(member_hex, 16)
            .map_err(|_| EtcdError::Rejected(format!("`{member_hex}` is not a member id")))?;
        // An id that is not in the member list is the request's mistake (404), not etcd's.
        self.member_url(member_hex).await?;
        let obs = self.observe().await;
        let (leader, leader_url) = obs
            .members
            .iter()
            .find(|m| m.leader)
            .and_then(|m| Some((m.id.clone(), m.reach_url()?.to_string())))
            .ok_or_else(|| self.unavailable("no leader to hand over from".into()))?;
        let mut c = self
            .url_client(&leader_url, true)
            .await
            .map_err(|e| self.member_down(&leader, e, false))?;
        tokio::time::timeout(Duration::from_secs(10), c.move_leader(target))
            .await
            .map_err(|_| {
                self.member_down(&leader, "move-leader did not finish in 10 s".into(), true)
            })?
            .map_err(|e| self.member_failure(&leader, &e))?;
        Ok(())
    }

    /// Streams a snapshot of one member's database.
    pub async fn snapshot(&self, member_hex: &str) -> Result<SnapshotStream, EtcdError> {
        let url = self.member_url(member_hex).await?;
        let mut c = self
            .url_client(&url, false)
            .await
            .map_err(|e| self.member_down(member_hex, e, false))?;
        let mut stream = tokio::time::timeout(Duration::from_secs(10), c.snapshot())
            .await
            .map_err(|_| {
                self.member_down(member_hex, "snapshot did not start in 10 s".into(), true)
            })?
            .map_err(|e| self.member_failure(member_hex, &e))?;
        let first = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .map_err(|_| {
                self.member_down(member_hex, "snapshot sent nothing for 30 s".into(), true)
            })?
            .map_err(|e| rejected(short_reason(&e)))?;
        let (tx, rx) = mpsc::channel(4);
        let total = first
            .as_ref()
            .map(|r| r.blob().len() as u64 + r.remaining_bytes());
        tokio::spawn(async move {
            if let Some(r) = first {
                if tx.send(Ok(r.blob().to_vec())).await.is_err() {
                    return;
                }
            }
            loop {
                match tokio::time::timeout(Duration::from_secs(30), stream.message()).await {
                    Ok(Ok(Some(r))) => {
                        if tx.send(Ok(r.blob().to_vec())).await.is_err() {
                            return;
                        }
                    }
                    Ok(Ok(None)) => return,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(short_reason(&e))).await;
                        return;
                    }
                    Err(_) => {
                        let _ = tx.send(Err("snapshot stalled for 30 s".into())).await;
                        return;
                    }
                }
            }
        });
        Ok(SnapshotStream { total, chunks: rx })
    }
}
