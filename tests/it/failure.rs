//! Failure behaviour against a real cluster: members killed (SIGKILL), hung (SIGSTOP), quorum lost.
//! Pages must never fail because one member died, never hang, and say when data may be stale.

use std::time::{Duration, Instant};

use crate::helpers::spawn_app;

async fn seed(app: &crate::helpers::TestApp, n: usize) {
    let kvs: Vec<(String, String)> = (0..n)
        .map(|i| (format!("/k/{i:05}"), format!("v{i}")))
        .collect();
    app.put_all(&kvs).await;
}

#[tokio::test]
async fn killing_a_member_mid_listing_fails_no_request() {
    let mut app = spawn_app().await;
    seed(&app, 2000).await;
    let http = app.http.clone();
    let base = app.url("/api/v1/clusters/test");
    let browse = tokio::spawn(async move {
        let mut ok = 0;
        let deadline = Instant::now() + Duration::from_secs(4);
        while Instant::now() < deadline {
            let mut after: Option<String> = None;
            loop {
                let url = match &after {
                    Some(a) => format!("{base}/keys?mode=flat&prefix=/k/&limit=200&after={a}"),
                    None => format!("{base}/keys?mode=flat&prefix=/k/&limit=200"),
                };
                let resp = http.get(&url).send().await.expect("request");
                let status = resp.status().as_u16();
                let body: serde_json::Value = resp.json().await.expect("json");
                assert_eq!(
                    status, 200,
                    "a listing request failed while a member died: {body}"
                );
                let got = http
                    .get(format!("{base}/key?key=/k/00042"))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(got.status().as_u16(), 200);
                ok += 2;
                match body["next"].as_str() {
                    Some(n) => after = Some(n.to_string()),
                    None => break,
                }
            }
        }
        ok
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Member 0 is the one the gateway prefers first.
    app.etcd.kill(0);
    let ok = browse.await.expect("browser task");
    assert!(ok > 20, "only {ok} requests ran");
}

#[tokio::test]
async fn a_hung_member_does_not_hang_pages() {
    let app = spawn_app().await;
    seed(&app, 100).await;
    // Member 0 is the one the gateway asks first. Hang it while it is a follower: the other two
    // keep a leader, so answers stay fresh. (Hanging the leader is the next test: there is a real
    // moment without a leader then.)
    make_follower(&app, 0).await;
    let (status, _) = app.get_json("/api/v1/clusters/test/keys?prefix=/k/").await;
    assert_eq!(status, 200);
    app.etcd.stop(0);
    for path in [
        "/api/v1/clusters/test/keys?prefix=/k/&mode=flat",
        "/api/v1/clusters/test/key?key=/k/00001",
    ] {
        let started = Instant::now();
        let (status, body) = app.get_json(path).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            body["stale"], false,
            "two healthy members still have quorum"
        );
        assert!(took < Duration::from_millis(1500), "{path} took {took:?}");
    }
    let started = Instant::now();
    let (status, _) = app.get_text("/clusters/test/keys?key=/k/00001").await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_millis(1500));
    app.etcd.cont(0);
}

/// Moves leadership away from member `i` if it has it.
async fn make_follower(app: &crate::helpers::TestApp, i: usize) {
    make_follower_of(&app.etcd.client_urls(), i).await;
}

/// Starts etcd with member 0 a follower, then etcdboard: its reads and watches start on member 0
/// (they keep off the leader).
pub(crate) async fn spawn_app_watching_member_0() -> crate::helpers::TestApp {
    let etcd = etcdboard::etcd::local::LocalCluster::start(Default::default())
        .await
        .expect("start etcd");
    make_follower_of(&etcd.client_urls(), 0).await;
    crate::helpers::serve_on(etcd, Default::default()).await
}

/// Moves leadership away from the member at `urls[i]` if it has it.
async fn make_follower_of(urls: &[String], i: usize) {
    let mut c = etcd_client::Client::connect([urls[i].as_str()], None)
        .await
        .unwrap();
    let status = c.status().await.unwrap();
    let me = status.header().unwrap().member_id();
    if status.leader() == me {
        let other = c
            .member_list()
            .await
            .unwrap()
            .members()
            .iter()
            .map(|m| m.id())
            .find(|id| *id != me)
            .unwrap();
        c.move_leader(other).await.unwrap();
    }
    for _ in 0..50 {
        let s = c.status().await.unwrap();
        if s.leader() != me && s.leader() != 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("member {i} kept the leadership");
}

/// Gives member `i` the leadership.
async fn make_leader(app: &crate::helpers::TestApp, i: usize) {
    make_leader_of(&app.etcd.client_urls(), i).await;
}

/// Gives the member at `urls[i]` the leadership.
async fn make_leader_of(urls: &[String], i: usize) {
    let id_of = |s: &etcd_client::StatusResponse| s.header().unwrap().member_id();
    let mut target = etcd_client::Client::connect([urls[i].as_str()], None)
        .await
        .unwrap();
    let status = target.status().await.unwrap();
    let me = id_of(&status);
    if status.leader() != me {
        for url in urls {
            let mut c = etcd_client::Client::connect([url.as_str()], None)
                .await
                .unwrap();
            if id_of(&c.status().await.unwrap()) == status.leader() {
                c.move_leader(me).await.unwrap();
            }
        }
    }
    for _ in 0..50 {
        if target.status().await.unwrap().leader() == me {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("member {i} never became the leader");
}

/// Range and Txn requests member `url` has answered, from its own `/metrics`.
async fn reads_answered(url: &str) -> u64 {
    grpc_count(url, "grpc_server_handled_total{", &["Range", "Txn"]).await
}

/// The sum of member `url`'s gRPC counter `metric` over `methods`, from its own `/metrics`.
async fn grpc_count(url: &str, metric: &str, methods: &[&str]) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(metric))
        .filter(|l| {
            methods
                .iter()
                .any(|m| l.contains(&format!("grpc_method=\"{m}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Opens the live-updates stream of `prefix` and reads it (≤ 10 s) until it says it is ready:
/// the stream and what it sent so far.
pub(crate) async fn live_updates_ready(
    app: &crate::helpers::TestApp,
    prefix: &str,
) -> (reqwest::Response, String) {
    let mut resp = app
        .http
        .get(app.url(&format!("/api/v1/clusters/test/watch?prefix={prefix}")))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the stream opens");
    let mut text = String::new();
    if let Err(e) = read_until(&mut resp, &mut text, 0, &["event: ready"], 10).await {
        panic!("not ready ({e}): {text}");
    }
    (resp, text)
}

/// Reads the stream `resp` into `text` until what came after `text[..from]` holds one of
/// `needles`, for at most `secs` seconds; what ended the stream or the wait otherwise.
pub(crate) async fn read_until(
    resp: &mut reqwest::Response,
    text: &mut String,
    from: usize,
    needles: &[&str],
    secs: u64,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !needles.iter().any(|n| text[from..].contains(n)) {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            other => return Err(format!("{other:?}")),
        }
    }
    Ok(())
}

#[tokio::test]
async fn watches_keep_off_the_leader() {
    // A watch of the whole key space streams every write to etcdboard. From the leader that is
    // work on the write path, and a busy etcdboard falling behind makes the leader buffer and
    // catch it up: the index watch and live updates open on a follower.
    let etcd = etcdboard::etcd::local::LocalCluster::start(Default::default())
        .await
        .expect("start etcd");
    let urls = etcd.client_urls();
    make_leader_of(&urls, 0).await;
    let app = crate::helpers::serve_on(etcd, Default::default()).await;
    app.wait_for_index().await;
    let _live = live_updates_ready(&app, "/lw/").await;
    let mut opened = Vec::new();
    for u in &urls {
        opened.push(grpc_count(u, "grpc_server_started_total{", &["Watch"]).await);
    }
    assert_eq!(opened[0], 0, "watches opened on the leader: {opened:?}");
    assert!(
        opened[1] + opened[2] >= 2,
        "the index watch and the live watch: {opened:?}"
    );
}

#[tokio::test]
async fn browsing_reads_keep_off_the_leader() {
    // The leader and one follower commit every write: pages, key views and the listing index
    // read from the other follower, so the cluster's writers never queue behind a browser.
    let app = spawn_app().await;
    seed(&app, 300).await;
    app.wait_for_index().await;
    // Member 0 is the one the gateway asked first so far. Make it the leader, and wait for the
    // gateway's next look at who leads (every 5 s, started by a read).
    make_leader(&app, 0).await;
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let (status, _) = app.get_json("/api/v1/clusters/test/keys?limit=1").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let urls = app.etcd.client_urls();
    let mut before = Vec::new();
    for u in &urls {
        before.push(reads_answered(u).await);
    }
    for i in 0..60 {
        for path in [
            format!(
                "/api/v1/clusters/test/keys?mode=flat&limit=10&start=/k/{:05}",
                i * 4
            ),
            format!(
                "/api/v1/clusters/test/keys?mode=tree&prefix=/k/&limit=5&start=/k/{:05}",
                i * 4 + 1
            ),
            format!("/api/v1/clusters/test/key?key=/k/{:05}", i * 4 + 2),
        ] {
            let (status, body) = app.get_json(&path).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }
    let mut answered = Vec::new();
    for (u, b) in urls.iter().zip(&before) {
        answered.push(reads_answered(u).await - b);
    }
    let followers: u64 = answered[1..].iter().sum();
    assert!(
        followers >= 180,
        "the followers answered too few reads: {answered:?}"
    );
    // The per-member health probes of the cluster view may read from the leader now and then.
    assert!(answered[0] <= 5, "the leader answered reads: {answered:?}");
}

/// Watch streams open on member `url` now (started, not yet ended), from its own `/metrics`.
async fn watches_open_on(url: &str) -> u64 {
    let started = grpc_count(url, "grpc_server_started_total{", &["Watch"]).await;
    started.saturating_sub(grpc_count(url, "grpc_server_handled_total{", &["Watch"]).await)
}

#[tokio::test]
async fn watches_move_off_a_member_that_becomes_the_leader() {
    let app = spawn_app_watching_member_0().await;
    app.wait_for_index().await;
    let (mut resp, mut text) = live_updates_ready(&app, "/lm/").await;
    let urls = app.etcd.client_urls();
    assert!(
        watches_open_on(&urls[0]).await >= 2,
        "the index watch and the live watch start on member 0"
    );
    make_leader(&app, 0).await;
    // Reads make etcdboard ask who leads (at most every 5 s); watches look at every tick.
    let deadline = Instant::now() + Duration::from_secs(15);
    while watches_open_on(&urls[0]).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the watches stayed on the leader"
        );
        let (status, _) = app.get_json("/api/v1/clusters/test/keys?limit=1").await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Live updates go on from where they were, and nothing was said to the viewer.
    let mut other = etcd_client::Client::connect([urls[1].clone()], None)
        .await
        .expect("connect");
    other.put("/lm/k", "v", None).await.expect("put");
    let seen = text.len();
    if let Err(e) = read_until(&mut resp, &mut text, 0, &["/lm/k"], 5).await {
        panic!("the change did not arrive ({e}): {text}");
    }
    assert!(
        !text[seen..].contains("event: paused"),
        "the move was shown to the viewer: {text}"
    );
}

#[tokio::test]
async fn a_hung_leader_costs_no_hang_and_no_error() {
    let app = spawn_app().await;
    seed(&app, 100).await;
    let urls = app.etcd.client_urls();
    let mut leader = None;
    for (i, u) in urls.iter().enumerate() {
        let mut c = etcd_client::Client::connect([u.as_str()], None)
            .await
            .unwrap();
        let s = c.status().await.unwrap();
        if s.leader() == s.header().unwrap().member_id() {
            leader = Some(i);
        }
    }
    let leader = leader.expect("a leader");
    app.etcd.stop(leader);
    // Until the others elect a new leader there is none: an answer may be marked stale, but it
    // comes within 2 s and is never an error.
    for path in [
        "/api/v1/clusters/test/keys?prefix=/k/&mode=flat",
        "/api/v1/clusters/test/key?key=/k/00001",
    ] {
        let started = Instant::now();
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    app.etcd.cont(leader);
}

#[tokio::test]
async fn with_quorum_lost_pages_answer_within_two_seconds_and_say_data_may_be_stale() {
    let mut app = spawn_app().await;
    seed(&app, 300).await;
    let lease = app
        .client()
        .await
        .lease_grant(600, None)
        .await
        .unwrap()
        .id();
    app.put_all_leased(&[("/leased/a", "v")], Some(lease)).await;
    let (status, _) = app.get_json("/api/v1/clusters/test/keys?prefix=/k/").await;
    assert_eq!(status, 200);
    app.etcd.kill(1);
    app.etcd.kill(2);
    for path in [
        "/api/v1/clusters/test/keys?prefix=/k/&mode=flat&limit=50",
        "/api/v1/clusters/test/keys?mode=tree",
        "/api/v1/clusters/test/key?key=/k/00007",
    ] {
        let started = Instant::now();
        let (status, body) = app.get_json(path).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            body["stale"], true,
            "{path}: answered without quorum must be marked stale: {body}"
        );
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    let (_, body) = app.get_json("/api/v1/clusters/test/key?key=/k/00007").await;
    assert_eq!(body["value"], "v7");
    let started = Instant::now();
    let (status, html) = app.get_text("/clusters/test/keys?key=/k/00007").await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "page took {:?}",
        started.elapsed()
    );
    assert!(
        html.contains("No quorum"),
        "the page says plainly that data may be stale"
    );
    // History is read from the survivor's local copy, and says so.
    let (status, history) = app.get_text("/clusters/test/history?key=/k/00007").await;
    assert_eq!(status, 200, "{history}");
    assert!(history.contains("No quorum"), "{history}");
    let (_, history) = app
        .get_json("/api/v1/clusters/test/history?key=/k/00007")
        .await;
    assert_eq!(history["stale"], true, "{history}");
    // A write cannot happen; the answer names the cause (no leader), not the dead members'
    // connection errors.
    let put = app
        .http
        .put(app.url("/api/v1/clusters/test/key"))
        .json(&serde_json::json!({"key": "/k/new", "value": "v", "expected_mod_revision": 0}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 503);
    let body: serde_json::Value = put.json().await.expect("json");
    assert!(
        body["error"].as_str().unwrap().contains("no leader"),
        "{body}"
    );
    // Leases: a lease's TTL and keys are the leader's to tell; the answer says so, in time.
    let started = Instant::now();
    let (status, body) = app.get_json("/api/v1/clusters/test/leases").await;
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("no quorum") && error.contains("lists 1 lease"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Quorum back: answers are fresh again.
    app.etcd.restart(1).await.expect("restart");
    app.etcd
        .wait_healthy(Duration::from_secs(10))
        .await
        .expect("healthy");
    let mut fresh = false;
    for _ in 0..40 {
        let (_, body) = app.get_json("/api/v1/clusters/test/key?key=/k/00007").await;
        if body["stale"] == false {
            fresh = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fresh, "answers are fresh once quorum is back");
}

/// The watch behind the page cache runs on a member that survives (member 0) and keeps
/// answering its progress requests without quorum. A page cached before quorum was lost must still
/// not be served as current once no member can prove the watch is.
#[tokio::test]
async fn with_quorum_lost_a_cached_page_is_not_served_as_current() {
    let mut app = spawn_app().await;
    seed(&app, 300).await;
    let path = "/api/v1/clusters/test/keys?prefix=/k/&mode=flat&limit=20";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 200, "{body}");
        if body["index"] == "ready" {
            break;
        }
        assert!(Instant::now() < deadline, "index not ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Asked twice more: the page is now in the cache.
    for _ in 0..2 {
        let (_, body) = app.get_json(path).await;
        assert_eq!(body["stale"], false, "{body}");
    }
    app.etcd.kill(1);
    app.etcd.kill(2);
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = app.get_json(path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["stale"],
        true,
        "{:?} after quorum was lost a cached page still claims to be current: {body}",
        killed.elapsed()
    );
    assert_eq!(body["items"].as_array().map(Vec::len), Some(20), "{body}");
}

#[tokio::test]
async fn with_every_member_down_requests_fail_fast_with_a_clear_error() {
    let mut app = spawn_app().await;
    for i in 0..3 {
        app.etcd.kill(i);
    }
    let started = Instant::now();
    let (status, body) = app.get_json("/api/v1/clusters/test/keys").await;
    assert_eq!(status, 503, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("no member of cluster `test` answered"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let (status, html) = app.get_text("/clusters/test/keys").await;
    assert_eq!(status, 503);
    assert!(
        html.contains("no member of cluster"),
        "an error page, not a bare 500"
    );
}

/// Live updates say so when no member can keep a watch (quorum lost: every member refuses
/// without a leader), instead of "connecting…" for ever, and go on once quorum is back.
#[tokio::test]
async fn live_updates_say_they_are_paused_while_quorum_is_lost() {
    let mut app = spawn_app().await;
    app.put_all(&[("/w/a", "1")]).await;
    app.etcd.kill(1);
    app.etcd.kill(2);
    let mut resp = app
        .http
        .get(app.url("/api/v1/clusters/test/watch?prefix=/w/"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    if let Err(e) = read_until(&mut resp, &mut text, 0, &["event: paused"], 20).await {
        panic!("no `paused` event ({e}); read so far: {text}");
    }
    // (A `ready` may come first: the survivor believes in its leader until an election times out.)
    let seen = text.len();
    app.etcd.restart(1).await.expect("restart");
    let again = ["event: resumed", "event: ready"];
    if let Err(e) = read_until(&mut resp, &mut text, seen, &again, 30).await {
        panic!("not ready again ({e}); read so far: {text}");
    }
}

/// With two of three members hung (SIGSTOP: their connections neither answer nor fail), a deep
/// link, which reads the key and every tree level, still answers within 2 s: the first failed
/// linearizable read makes the page's later reads go straight to a member's local copy.
#[tokio::test]
async fn with_two_members_hung_a_deep_link_answers_within_two_seconds() {
    let app = spawn_app().await;
    seed(&app, 300).await;
    app.put_all(&[("/deep/a/b/c/key", "v")]).await;
    let (status, _) = app
        .get_text("/clusters/test/keys?key=/deep/a/b/c/key")
        .await;
    assert_eq!(status, 200);
    app.etcd.stop(1);
    app.etcd.stop(2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for target in ["/deep/a/b/c/key", "/k/00007"] {
        let started = Instant::now();
        let (status, html) = app
            .get_text(&format!("/clusters/test/keys?key={target}"))
            .await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("No quorum"), "marked stale");
        assert!(took < Duration::from_secs(2), "{target} took {took:?}");
    }
    app.etcd.cont(1);
    app.etcd.cont(2);
}

/// The listing index's watch resumes on another member when its member hangs (SIGSTOP: the stream
/// neither ends nor answers), from where it stopped: a key created and deleted meanwhile is still
/// seen deleted, so its history is found.
#[tokio::test]
async fn the_index_watch_moves_off_a_hung_member_without_missing_a_change() {
    let app = spawn_app_watching_member_0().await;
    app.wait_for_index().await;
    // The index watches from member 0, a follower.
    app.etcd.stop(0);
    let urls = app.etcd.client_urls();
    let mut other = etcd_client::Client::connect([urls[1].clone()], None)
        .await
        .expect("connect");
    // Writes through the others may still fail for a moment after member 0 stopped.
    let mut at = 0;
    for _ in 0..50 {
        let written = async {
            other.put("/hung/k", "v", None).await?;
            other.delete("/hung/k", None).await
        }
        .await;
        match written {
            Ok(deleted) => {
                at = deleted.header().unwrap().revision();
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert!(at > 0, "the other members took no write");
    let mut seen = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, body) = app
            .get_json("/api/v1/clusters/test/history?key=/hung/k")
            .await;
        if status == 200 {
            seen = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.etcd.cont(0);
    assert_eq!(seen["deleted_revision"], at, "{seen}");
}

/// Live updates move off a hung member too: a change made through another member arrives within
/// seconds, not when the member comes back.
#[tokio::test]
async fn live_updates_move_off_a_hung_member() {
    let app = spawn_app_watching_member_0().await;
    let (mut resp, mut text) = live_updates_ready(&app, "/lh/").await;
    // The live watch starts on member 0, a follower.
    app.etcd.stop(0);
    let urls = app.etcd.client_urls();
    let mut other = etcd_client::Client::connect([urls[1].clone()], None)
        .await
        .expect("connect");
    let mut written = false;
    for _ in 0..50 {
        if other.put("/lh/k", "v", None).await.is_ok() {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(written, "the other members took no write");
    // A stuck watch is left after 3 s of silence; the gRPC connection itself notices much later.
    if let Err(e) = read_until(&mut resp, &mut text, 0, &["/lh/k"], 6).await {
        app.etcd.cont(0);
        panic!("the change did not arrive ({e}): {text}");
    }
    app.etcd.cont(0);
}
