//! Answers larger than gRPC's default 4 MiB: a value on a cluster run with a raised
//! `--max-request-bytes`, and a watch that catches up on many changes at once (etcd sends up to
//! 1,000 revisions' events in one message). etcd-client refuses such messages unless told
//! otherwise, and a watch resumed from the same revision would be sent the same message again.

use std::time::{Duration, Instant};

use base64::Engine;
use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};

use crate::failure::{live_updates_ready, read_until, spawn_app_watching_member_0};
use crate::helpers::{serve_on, AppOptions, TestApp};

/// Waits (≤ `secs`) until the history of `key`, deleted at `at`, ends with its deletion: the
/// index's watch delivered the deletion.
async fn deletion_seen(app: &TestApp, key: &str, at: i64, secs: u64) {
    let started = Instant::now();
    loop {
        let (status, body) = app
            .get_json(&format!("/api/v1/clusters/test/history?key={key}"))
            .await;
        if status == 200 {
            assert_eq!(body["deleted_revision"], at, "{body}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "the index's watch never delivered the deletion of {key} at {at}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_4_mib_is_shown_watched_and_kept_in_history() {
    let etcd = LocalCluster::start(LocalClusterOptions {
        extra_args: vec!["--max-request-bytes=10485760".into()],
        ..Default::default()
    })
    .await
    .expect("start etcd");
    let app = serve_on(etcd, AppOptions::default()).await;
    app.wait_for_index().await;
    let (mut live, mut text) = live_updates_ready(&app, "/big/").await;
    let mut c = app.client().await;
    let value: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    c.put("/big/v", value.clone(), None)
        .await
        .expect("put 5 MiB");
    c.put("/big/v", value[1..].to_vec(), None)
        .await
        .expect("put it again");

    let seen = text.len();
    if let Err(e) = read_until(&mut live, &mut text, seen, &["event: change"], 10).await {
        panic!("no change event for the 5 MiB value ({e}): {text}");
    }
    let (status, body) = app.get_json("/api/v1/clusters/test/key?key=/big/v").await;
    assert_eq!(status, 200, "{}", body["error"]);
    let got = base64::engine::general_purpose::STANDARD
        .decode(body["value_b64"].as_str().unwrap())
        .unwrap();
    assert!(got == value[1..], "the value, byte for byte");
    let (status, body) = app
        .get_json("/api/v1/clusters/test/history?key=/big/v")
        .await;
    assert_eq!(status, 200, "{}", body["error"]);
    assert_eq!(body["versions"].as_array().unwrap().len(), 2);

    // The index's watch went on past the large change.
    c.put("/gone", "1", None).await.expect("put");
    let at = c.delete("/gone", None).await.expect("delete");
    deletion_seen(&app, "/gone", at.header().unwrap().revision(), 10).await;
}

/// The index's watch is on member 0; while it hangs, the others take 6 MB of changes in 60
/// revisions. When the watch resumes on another member, etcd sends them in one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_catching_up_on_more_than_4_mib_of_changes_goes_on() {
    let app = spawn_app_watching_member_0().await;
    app.wait_for_index().await;
    let (mut live, mut text) = live_updates_ready(&app, "/load/").await;
    let urls = app.etcd.client_urls();
    let mut c = etcd_client::Client::connect(&urls[1..], None)
        .await
        .expect("client");
    app.etcd.stop(0);
    let value = vec![b'x'; 10_000];
    for t in 0..60 {
        let ops: Vec<etcd_client::TxnOp> = (0..10)
            .map(|i| etcd_client::TxnOp::put(format!("/load/{t:02}/{i}"), value.clone(), None))
            .collect();
        c.txn(etcd_client::Txn::new().and_then(ops))
            .await
            .expect("txn");
    }
    c.put("/gone", "1", None).await.expect("put");
    let at = c.delete("/gone", None).await.expect("delete");
    // The watch gives member 0 up after 3 s of silence and resumes on another.
    deletion_seen(&app, "/gone", at.header().unwrap().revision(), 20).await;
    // The live updates of /load/ (also on member 0) catch up the same way.
    let seen = text.len();
    if let Err(e) = read_until(&mut live, &mut text, seen, &[r#""key":"/load/59/9""#], 20).await {
        panic!("the live updates never caught up ({e}): {}", &text[seen..]);
    }
    app.etcd.cont(0);
    // An on-call engineer sees it in the metrics.
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains(
            r#"etcdboard_etcd_watch_restarts_total{cluster="test",watch="index",reason="member"}"#
        ),
        "{metrics}"
    );
}
