//! Pages "as of now" under many browsers: they share the linearizable rounds (the raft leader's
//! heartbeats) that make them current, and still show every write completed before they were
//! asked for.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{spawn_app, TestApp};

/// etcdboard's own count of `operation`'s etcd calls, from `/metrics`.
async fn etcd_calls(app: &TestApp, operation: &str) -> u64 {
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    let series =
        format!(r#"etcdboard_etcd_requests_total{{cluster="test",operation="{operation}"}} "#);
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// Loops over flat pages of `/c/` at varied starts and sizes (few of them asked twice, so the page
/// cache answers few) until `stop`, counting the pages answered.
async fn browse(app: Arc<TestApp>, seed: u64, stop: Arc<AtomicBool>, pages: Arc<AtomicU64>) {
    let mut x = seed;
    while !stop.load(Ordering::Relaxed) {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let start = (x >> 33) % 300;
        let limit = 5 + (x >> 20) % 40;
        let path = format!(
            "/api/v1/clusters/test/keys?prefix=/c/&mode=flat&limit={limit}&start=/c/{start:04}"
        );
        let (status, body) = app.get_json(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        pages.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn pages_share_their_quorum_rounds_and_still_show_every_write_made_before_them() {
    let app = Arc::new(spawn_app().await);
    let kvs: Vec<(String, String)> = (0..300)
        .map(|i| (format!("/c/{i:04}"), "v".into()))
        .collect();
    app.put_all(&kvs).await;
    let mut raw = app.client().await;
    let rounds_before = etcd_calls(&app, "fresh_point").await;

    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(AtomicU64::new(0));
    let browsers: Vec<_> = (0..8)
        .map(|i| tokio::spawn(browse(app.clone(), i + 1, stop.clone(), pages.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another client's write, completed before the page is asked for: on the page, every time,
    // and not marked stale. Each under its own prefix, so no cached page can answer.
    for i in 0..40 {
        let key = format!("/w/{i:02}/k");
        let put = raw.put(key.as_str(), "v", None).await.expect("put");
        let written = put.header().expect("header").revision();
        let path = format!("/api/v1/clusters/test/keys?prefix=/w/{i:02}/&mode=flat");
        let (status, body) = app.get_json(&path).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stale"], false, "{body}");
        assert_eq!(
            body["items"][0]["key"],
            key.as_str(),
            "write {i} missing: {body}"
        );
        assert!(
            body["revision"].as_i64().expect("revision") >= written,
            "{body}"
        );
    }

    stop.store(true, Ordering::Relaxed);
    for b in browsers {
        b.await.expect("a browser failed");
    }
    let pages = pages.load(Ordering::Relaxed) + 40;
    let rounds = etcd_calls(&app, "fresh_point").await - rounds_before;
    assert!(rounds > 0, "pages as of now take a fresh point first");
    // One round in flight at a time; the pages asked meanwhile share the next one (about three
    // pages a round here).
    assert!(
        rounds * 3 <= pages * 2,
        "{pages} pages took {rounds} linearizable rounds: they should share them"
    );
}
