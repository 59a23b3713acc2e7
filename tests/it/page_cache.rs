//! The listing page cache against a real 3-member etcd: a change inside a cached page's range
//! shows on the next page once the watch delivered it, changes elsewhere keep the page, an edit
//! through the dashboard shows at once, and with the watch broken no cached page is served.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcdboard::config::ClusterConfig;
use etcdboard::domain::listing::{ListReq, Mode, Page};
use etcdboard::domain::page_cache::CacheStats;
use etcdboard::etcd::{page_cache, EtcdCluster};

use crate::helpers::{spawn_app, TestApp};

/// A gateway of its own on the test's cluster, so the test can read its cache's counters.
fn gateway(app: &TestApp) -> Arc<EtcdCluster> {
    let cfg = ClusterConfig {
        name: "cache".into(),
        endpoints: app.etcd.client_urls(),
        ..Default::default()
    };
    EtcdCluster::new(&cfg, Duration::from_secs(3)).expect("gateway")
}

fn flat(prefix: &str) -> ListReq {
    ListReq {
        prefix: prefix.as_bytes().to_vec(),
        start: prefix.as_bytes().to_vec(),
        mode: Mode::Flat,
        limit: 100,
        revision: None,
        hint: None,
    }
}

fn tree(prefix: &str) -> ListReq {
    ListReq {
        mode: Mode::Tree { sep: b"/".to_vec() },
        ..flat(prefix)
    }
}

fn keys(page: &Page) -> Vec<String> {
    page.items
        .iter()
        .map(|i| String::from_utf8_lossy(&i.key).into_owned())
        .collect()
}

fn stats(c: &EtcdCluster) -> CacheStats {
    c.index().pages().stats()
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lists `req` until a second listing is answered from the cache (the index and its watch are
/// up); returns that page.
async fn cached(c: &Arc<EtcdCluster>, req: &ListReq) -> Page {
    let started = Instant::now();
    loop {
        let before = stats(c).hits;
        let page = page_cache::list(c, req).await.expect("list");
        if stats(c).hits > before {
            return page;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the page cache never answered: {:?}",
            stats(c)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put(app: &TestApp, key: &str, value: &str) -> i64 {
    let mut c = app.client().await;
    let resp = c.put(key, value, None).await.expect("put");
    resp.header().expect("header").revision()
}

/// Waits until the cache's watch has delivered everything up to `revision`.
async fn delivered(c: &Arc<EtcdCluster>, revision: i64) {
    eventually(
        Duration::from_secs(5),
        "the watch delivers the write",
        || async { c.index().pages().seen().is_some_and(|s| s >= revision) },
    )
    .await;
}

#[tokio::test]
async fn a_change_inside_a_cached_page_shows_on_the_next_page_and_changes_elsewhere_keep_it() {
    let app = spawn_app().await;
    let pairs: Vec<(String, &str)> = (0..10)
        .map(|i| (format!("/pc/a/k{i:02}"), "v"))
        .chain([("/pc/b/x".to_string(), "v")])
        .collect();
    app.put_all(&pairs).await;
    let c = gateway(&app);
    let flat_a = flat("/pc/a/");
    let first = cached(&c, &flat_a).await;
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.cost, 0, "a hit costs etcd nothing");
    let root = tree("/pc/");
    assert_eq!(keys(&cached(&c, &root).await), ["/pc/a/", "/pc/b/"]);

    // Outside the flat page's range: a new key elsewhere, and a new value of a listed key (values
    // are not part of a listing). The flat page stays; the tree page (which covers /pc/b/) goes.
    let before = stats(&c);
    put(&app, "/pc/b/y", "new").await;
    let rev = put(&app, "/pc/a/k03", "changed value").await;
    delivered(&c, rev).await;
    let again = page_cache::list(&c, &flat_a).await.expect("list");
    let after = stats(&c);
    assert_eq!(after.hits, before.hits + 1, "{before:?} → {after:?}");
    assert_eq!(after.evicted_by_change, before.evicted_by_change + 1);
    assert_eq!(
        again.revision, first.revision,
        "the page keeps its own revision"
    );

    // Inside the range: a created key and a deleted key each show once the watch delivered them.
    put(&app, "/pc/a/k05x", "v").await;
    eventually(
        Duration::from_secs(5),
        "the created key is listed",
        || async {
            keys(&page_cache::list(&c, &flat_a).await.expect("list")).contains(&"/pc/a/k05x".into())
        },
    )
    .await;
    let mut client = app.client().await;
    client.delete("/pc/a/k00", None).await.expect("delete");
    eventually(
        Duration::from_secs(5),
        "the deleted key is gone",
        || async {
            !keys(&page_cache::list(&c, &flat_a).await.expect("list")).contains(&"/pc/a/k00".into())
        },
    )
    .await;
    // A new directory under a cached tree level.
    assert_eq!(keys(&cached(&c, &root).await), ["/pc/a/", "/pc/b/"]);
    put(&app, "/pc/c/1", "v").await;
    eventually(
        Duration::from_secs(5),
        "the new directory is listed",
        || async {
            keys(&page_cache::list(&c, &root).await.expect("list"))
                == ["/pc/a/", "/pc/b/", "/pc/c/"]
        },
    )
    .await;
    // Once seen, a change never goes back: every later page has it.
    for _ in 0..20 {
        let page = page_cache::list(&c, &flat_a).await.expect("list");
        assert!(keys(&page).contains(&"/pc/a/k05x".into()));
        assert!(!keys(&page).contains(&"/pc/a/k00".into()));
    }
    assert!(stats(&c).evicted_by_change >= after.evicted_by_change + 3);
}

#[tokio::test]
async fn an_edit_through_the_dashboard_is_on_the_very_next_page() {
    let app = spawn_app().await;
    app.put_all(&[("/ed/a", "1"), ("/ed/b", "2")]).await;
    let url = "/api/v1/clusters/test/keys?mode=flat&prefix=/ed/";
    eventually(
        Duration::from_secs(20),
        "the listing index is ready",
        || async { app.get_json(url).await.1["index"] == "ready" },
    )
    .await;
    // Whether or not the app's cache holds the page yet, the edit must show at once: the cache
    // waits for the write's own watch event.
    for round in 0..5 {
        for _ in 0..3 {
            let (status, _) = app.get_json(url).await;
            assert_eq!(status, 200);
        }
        let key = format!("/ed/new{round}");
        let resp = app
            .http
            .put(app.url("/api/v1/clusters/test/key"))
            .json(&serde_json::json!({ "key": key, "value": "x", "expected_mod_revision": 0 }))
            .send()
            .await
            .expect("put");
        assert_eq!(resp.status().as_u16(), 200);
        let (_, body) = app.get_json(url).await;
        let listed: Vec<&str> = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["key"].as_str())
            .collect();
        assert!(
            listed.contains(&key.as_str()),
            "{key} missing from {listed:?}"
        );
    }
}

#[tokio::test]
async fn with_the_watch_broken_no_cached_page_is_served() {
    let app = spawn_app().await;
    app.put_all(&[("/wb/a", "1"), ("/wb/b", "2")]).await;
    let c = gateway(&app);
    let req = flat("/wb/");
    assert_eq!(keys(&cached(&c, &req).await), ["/wb/a", "/wb/b"]);

    // Every member hung: the watch goes silent, and the cache drops its pages.
    let before = stats(&c);
    for i in 0..3 {
        app.etcd.stop(i);
    }
    eventually(Duration::from_secs(10), "the cache is dropped", || async {
        stats(&c).clears > before.clears
    })
    .await;
    // Nothing is answered from memory now: the page waits for etcd, which cannot answer.
    let hits = stats(&c).hits;
    let answer = tokio::time::timeout(Duration::from_secs(10), page_cache::list(&c, &req)).await;
    assert!(
        matches!(answer, Ok(Err(_))),
        "no member can answer, so the listing must fail, not come from memory: {answer:?}"
    );
    assert_eq!(stats(&c).hits, hits);

    // Back, and a key written at once: the first page after it already has it, and so does
    // every page after that.
    for i in 0..3 {
        app.etcd.cont(i);
    }
    let mut client = app.client().await;
    let started = Instant::now();
    loop {
        let put = tokio::time::timeout(Duration::from_secs(3), client.put("/wb/c", "3", None));
        if let Ok(Ok(_)) = put.await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "etcd never came back"
        );
    }
    let started = Instant::now();
    let mut ok = 0;
    while ok < 20 {
        match page_cache::list(&c, &req).await {
            Ok(page) if !page.stale => {
                assert_eq!(keys(&page), ["/wb/a", "/wb/b", "/wb/c"], "a stale page");
                ok += 1;
            }
            // Members still electing a leader, or the gateway still in its one-second degraded
            // window from the outage: an error, or a page read from one member's local copy and
            // marked as possibly stale, is fine (that member may not have applied the put yet).
            // An old page that claims to be current is not.
            _ => assert!(
                started.elapsed() < Duration::from_secs(30),
                "no current page 30 s after the members came back"
            ),
        }
    }
}

#[tokio::test]
async fn a_delete_through_the_gateway_is_gone_from_the_very_next_page() {
    let app = spawn_app().await;
    let pairs: Vec<(String, &str)> = (0..5).map(|i| (format!("/del/k{i}"), "v")).collect();
    app.put_all(&pairs).await;
    let c = gateway(&app);
    let req = flat("/del/");
    let mut client = app.client().await;
    for i in 0..5 {
        let key = format!("/del/k{i}");
        // The page is in the cache (a hit), then the key goes through this very gateway: the
        // next page must not have it, without waiting for anything.
        assert!(keys(&cached(&c, &req).await).contains(&key));
        let rev = client.get(key.as_str(), None).await.expect("get").kvs()[0].mod_revision();
        c.delete_cas(key.as_bytes(), rev).await.expect("delete");
        let page = page_cache::list(&c, &req).await.expect("list");
        assert!(!keys(&page).contains(&key), "{key} still listed");
    }
}

#[tokio::test]
async fn a_bulk_load_is_indexed_in_the_background_while_the_watch_keeps_up() {
    let app = spawn_app().await;
    app.put_all(&[("/bulk/0", "v")]).await;
    let c = gateway(&app);
    cached(&c, &flat("/bulk/")).await;
    let fences = |c: &EtcdCluster| {
        use etcdboard::domain::listing::FenceView;
        c.index().buckets(b"", None, usize::MAX)
    };
    assert_eq!(fences(&c).len(), 1, "a tiny key space is one bucket");

    // 20,000 creates land in one bucket: it grows to ~80x the bucket size aimed for (256).
    let pairs: Vec<(String, &str)> = (0..20_000)
        .map(|i| (format!("/bulk/k{i:05}"), "v"))
        .collect();
    app.put_all(&pairs).await;
    let last = put(&app, "/bulk/last", "v").await;
    // The watch delivers the last write promptly: re-indexing never holds it up.
    eventually(
        Duration::from_secs(1),
        "the watch delivers the write after a bulk load",
        || async { c.index().pages().seen().is_some_and(|s| s >= last) },
    )
    .await;
    // The oversized bucket is re-scanned into buckets of about the target size (a bucket is split
    // once it holds more than twice that).
    eventually(Duration::from_secs(10), "the bucket is split", || async {
        let b = fences(&c);
        b.len() >= 20_000 / 512 && b.iter().all(|(_, n)| *n <= 2 * 256)
    })
    .await;
    let total: u64 = fences(&c).iter().map(|(_, n)| n).sum();
    assert!((20_000..=20_010).contains(&total), "index counts {total}");
    // And a page deep in the new keys is exact.
    let mut req = flat("/bulk/");
    req.start = b"/bulk/k12345".to_vec();
    req.limit = 3;
    let page = page_cache::list(&c, &req).await.expect("list");
    assert_eq!(
        keys(&page),
        ["/bulk/k12345", "/bulk/k12346", "/bulk/k12347"]
    );
}
