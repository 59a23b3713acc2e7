//! Reading etcd's `/metrics` (Prometheus text format) without Prometheus: the few series the
//! on-call view needs, quantiles from histogram bucket deltas between two scrapes, and the
//! thresholds etcd's own alert rules use.

use std::collections::HashMap;

/// etcd alert thresholds (from etcd's Prometheus alert rules).
pub mod thresholds {
    /// WAL fsync p99 above this is slow (seconds).
    pub const FSYNC_P99: f64 = 0.5;
    /// WAL fsync p99 above this is critical (seconds): etcd's own rule's second level.
    pub const FSYNC_P99_CRITICAL: f64 = 1.0;
    /// Backend commit p99 above this is slow (seconds).
    pub const COMMIT_P99: f64 = 0.25;
    /// Peer round-trip p99 above this is slow (seconds).
    pub const PEER_RTT_P99: f64 = 0.15;
    /// Database above this share of its quota is close to NOSPACE.
    pub const DB_QUOTA_SHARE: f64 = 0.95;
    /// Database above this share of its quota is worth acting on before it gets close: the
    /// cluster page warns from here, so that a compaction and defragmentation can be planned.
    pub const DB_QUOTA_EARLY_SHARE: f64 = 0.8;
    /// This many leader changes in 15 minutes is too many.
    pub const LEADER_CHANGES_15M: f64 = 4.0;
}

/// One scrape: histogram buckets and plain samples, by metric name (labels folded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// `(upper bound, cumulative count)` per histogram, summed over label sets, sorted by bound.
    pub buckets: HashMap<String, Vec<(f64, f64)>>,
    /// Counter/gauge values, summed over label sets.
    pub values: HashMap<String, f64>,
}

/// Parses the text format. Unknown lines are skipped; nothing here can fail.
pub fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    let mut buckets: HashMap<String, HashMap<String, f64>> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some((s, v)) => (s.trim(), v),
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if let Some(base) = name.strip_suffix("_bucket") {
            let le = labels
                .split(',')
                .find_map(|kv| kv.trim().strip_prefix("le="))
                .map(|v| v.trim_matches('"').to_string());
            if let Some(le) = le {
                *buckets
                    .entry(base.to_string())
                    .or_default()
                    .entry(le)
                    .or_default() += value;
            }
        } else {
            *scrape.values.entry(name.to_string()).or_default() += value;
        }
    }
    for (name, by_le) in buckets {
        let mut list: Vec<(f64, f64)> = by_le
            .into_iter()
            .map(|(le, c)| {
                (
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or(f64::INFINITY)
                    },
                    c,
                )
            })
            .collect();
        list.sort_by(|a, b| a.0.total_cmp(&b.0));
        scrape.buckets.insert(name, list);
    }
    scrape
}

/// The `q` quantile of a histogram over the interval between two scrapes (bucket deltas), by linear
/// interpolation inside the bucket, as PromQL's `histogram_quantile`. `None` without observations.
pub fn quantile_between(before: &Scrape, after: &Scrape, name: &str, q: f64) -> Option<f64> {
    let now = after.buckets.get(name)?;
    let old = before.buckets.get(name);
    let deltas: Vec<(f64, f64)> = now
        .iter()
        .map(|(le, c)| {
            let prev = old
                .and_then(|o| o.iter().find(|(l, _)| l == le))
                .map_or(0.0, |(_, c)| *c);
            (*le, (c - prev).max(0.0))
        })
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev_le = 0.0;
    let mut prev_count = 0.0;
    for (le, count) in &deltas {
        if *count >= rank {
            if le.is_infinite() {
                return Some(prev_le);
            }
            let in_bucket = count - prev_count;
            if in_bucket <= 0.0 {
                return Some(*le);
            }
            return Some(prev_le + (le - prev_le) * (rank - prev_count) / in_bucket);
        }
        prev_le = *le;
        prev_count = *count;
    }
    Some(prev_le)
}

/// One point of a member's chart series.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Point {
    /// Unix ms.
    pub at_ms: u64,
    /// WAL fsync p99, seconds.
    pub fsync_p99: Option<f64>,
    /// Backend commit p99, seconds.
    pub commit_p99: Option<f64>,
    /// Peer round-trip p99, seconds.
    pub peer_rtt_p99: Option<f64>,
    /// Leader changes seen (counter).
    pub leader_changes: Option<f64>,
    /// Failed proposals (counter).
    pub proposals_failed: Option<f64>,
    /// Pending proposals (gauge).
    pub proposals_pending: Option<f64>,
    /// DB size, bytes.
    pub db_size: Option<f64>,
    /// Backend quota, bytes.
    pub quota: Option<f64>,
}

/// The chart point for the interval between two scrapes.
pub fn point(before: &Scrape, after: &Scrape, at_ms: u64) -> Point {
    let v = |name: &str| after.values.get(name).copied();
    Point {
        at_ms,
        fsync_p99: quantile_between(before, after, "etcd_disk_wal_fsync_duration_seconds", 0.99),
        commit_p99: quantile_between(
            before,
            after,
            "etcd_disk_backend_commit_duration_seconds",
            0.99,
        ),
        peer_rtt_p99: quantile_between(
            before,
            after,
            "etcd_network_peer_round_trip_time_seconds",
            0.99,
        ),
        leader_changes: v("etcd_server_leader_changes_seen_total"),
        proposals_failed: v("etcd_server_proposals_failed_total"),
        proposals_pending: v("etcd_server_proposals_pending"),
        db_size: v("etcd_mvcc_db_total_size_in_bytes")
            .or_else(|| v("etcd_debugging_mvcc_db_total_size_in_bytes")),
        quota: v("etcd_server_quota_backend_bytes"),
    }
}

/// A small line chart drawn by the server: SVG polyline points in a `w` × `h` box, the y scale's
/// top value, and the y of a threshold line when it fits.
#[derive(Debug, Clone, PartialEq)]
pub struct Spark {
    /// `x,y x,y …` for `<polyline points>`.
    pub points: String,
    /// Value at the top of the box.
    pub max: f64,
    /// Threshold line y, when the threshold is within the scale.
    pub threshold_y: Option<f64>,
    /// Latest value.
    pub last: Option<f64>,
    /// The latest value is over the threshold.
    pub over: bool,
}

/// Draws `values` (oldest first; gaps allowed) scaled to include `threshold`.
pub fn spark(values: &[Option<f64>], threshold: Option<f64>, w: f64, h: f64) -> Spark {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let mut max = present.iter().copied().fold(0.0f64, f64::max);
    if let Some(t) = threshold {
        max = max.max(t * 1.1);
    }
    if max <= 0.0 {
        max = 1.0;
    }
    let n = values.len().max(2) - 1;
    let points = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .map(|(i, v)| format!("{:.1},{:.1}", w * i as f64 / n as f64, h - h * (v / max)))
        .collect::<Vec<_>>()
        .join(" ");
    let last = values.iter().rev().flatten().next().copied();
    Spark {
        points,
        max,
        threshold_y: threshold.map(|t| h - h * (t / max)),
        last,
        over: matches!((last, threshold), (Some(l), Some(t)) if l > t),
    }
}

/// The line under a chart. It names what the drawing alone does not: the value at the top of
/// the vertical scale (not the largest value seen: the scale always reaches past the dashed
/// line), what the dashed line is, and how far back the chart goes.
pub fn scale_note(
    top: f64,
    threshold: Option<f64>,
    unit: fn(f64) -> String,
    since_ms: Option<u64>,
    now_ms: u64,
) -> String {
    let mut parts = vec![if top > 0.0 {
        format!("scale 0–{}", unit(top))
    } else {
        format!("all {}", unit(0.0))
    }];
    if let Some(t) = threshold {
        parts.push(format!("dashed: etcd alerts at {}", unit(t)));
    }
    if let Some(since) = since_ms {
        parts.push(format!("last {}", span(now_ms.saturating_sub(since))));
    }
    parts.join(" · ")
}

/// "40 s", "12 min", "1 h 5 min".
fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        _ if s % 3600 < 60 => format!("{} h", s / 3600),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "# HELP x\n\
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 10\n\
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 20\n\
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 20\n\
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 20\n\
etcd_server_leader_changes_seen_total 1\n\
etcd_server_quota_backend_bytes 2.147483648e+09\n";

    const B: &str = "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 10\n\
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 20\n\
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 120\n\
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 120\n\
etcd_server_leader_changes_seen_total 2\n";

    #[test]
    fn quantiles_come_from_the_interval_between_scrapes() {
        let (a, b) = (parse(A), parse(B));
        assert_eq!(b.values["etcd_server_leader_changes_seen_total"], 2.0);
        assert_eq!(a.values["etcd_server_quota_backend_bytes"], 2147483648.0);
        // Since A, all 100 new observations fell in (0.002, 0.004]: p99 is inside that bucket.
        let p = quantile_between(&a, &b, "etcd_disk_wal_fsync_duration_seconds", 0.99).unwrap();
        assert!(p > 0.002 && p <= 0.004, "{p}");
        assert_eq!(
            quantile_between(&b, &b, "etcd_disk_wal_fsync_duration_seconds", 0.99),
            None
        );
    }

    #[test]
    fn sparks_scale_to_show_the_threshold() {
        let s = spark(&[Some(0.1), None, Some(0.6)], Some(0.5), 100.0, 20.0);
        assert!(s.over);
        assert!(s.threshold_y.is_some());
        assert_eq!(s.points.split(' ').count(), 2);
    }

    #[test]
    fn the_scale_note_says_what_the_top_and_the_dashed_line_are_and_how_far_back() {
        let ms = |v: f64| format!("{:.1} ms", v * 1000.0);
        let now = 1_000_000_000;
        // The scale reaches past the threshold: its top is not a value that was seen.
        assert_eq!(
            scale_note(0.55, Some(0.5), ms, Some(now - 12 * 60_000 - 5_000), now),
            "scale 0–550.0 ms · dashed: etcd alerts at 500.0 ms · last 12 min"
        );
        assert_eq!(
            scale_note(0.0, None, |v| format!("{v:.0}"), Some(now - 40_000), now),
            "all 0 · last 40 s"
        );
        assert_eq!(
            scale_note(2.0, None, |v| format!("{v:.0}"), Some(now - 3_900_000), now),
            "scale 0–2 · last 1 h 5 min"
        );
        assert_eq!(
            scale_note(2.0, None, |v| format!("{v:.0}"), Some(now - 3_600_000), now),
            "scale 0–2 · last 1 h"
        );
        assert_eq!(
            scale_note(2.0, None, |v| format!("{v:.0}"), None, now),
            "scale 0–2"
        );
    }
}
