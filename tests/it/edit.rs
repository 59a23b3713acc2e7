//! The write API (CAS put / delete, delete-prefix, history, leases, cross-site refusal) against a
//! real 3-member etcd. Every outcome is checked against etcd itself through a raw client, never
//! only through the API that made the change.

use std::time::Duration;

use etcd_client::{GetOptions, LeaseTimeToLiveOptions, PutOptions};
use serde_json::{json, Value};

use crate::helpers::{b64, b64url, pct, spawn_app, TestApp};

const KEY_PATH: &str = "/api/v1/clusters/test/key";
const PREFIX_PATH: &str = "/api/v1/clusters/test/delete-prefix";

/// PUT a JSON body to the key endpoint the way a script does (JSON, no Origin).
async fn put(app: &TestApp, body: &Value) -> (u16, Value) {
    let resp = app
        .http
        .put(app.url(KEY_PATH))
        .json(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// DELETE the key endpoint with a query string.
async fn delete(app: &TestApp, query: &str) -> (u16, Value) {
    let resp = app
        .http
        .delete(app.url(&format!("{KEY_PATH}?{query}")))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// POST to delete-prefix.
async fn delete_prefix(app: &TestApp, body: &Value) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(PREFIX_PATH))
        .json(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// The preview of deleting a prefix (text prefix).
async fn preview(app: &TestApp, prefix: &str) -> Value {
    let (status, body) = app
        .get_json(&format!("{PREFIX_PATH}?prefix={}", pct(prefix.as_bytes())))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The key as etcd has it (linearizable read), or `None`.
async fn raw_get(c: &mut etcd_client::Client, key: &[u8]) -> Option<etcd_client::KeyValue> {
    c.get(key, None)
        .await
        .expect("raw get")
        .kvs()
        .first()
        .cloned()
}

/// The cluster's current revision.
async fn raw_revision(c: &mut etcd_client::Client) -> i64 {
    c.get("\0", None)
        .await
        .expect("raw get")
        .header()
        .expect("header")
        .revision()
}

/// Every key under a prefix with its value and mod_revision, in key order.
async fn raw_prefix(c: &mut etcd_client::Client, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    c.get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .expect("raw range")
        .kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), kv.value().to_vec(), kv.mod_revision()))
        .collect()
}

/// Whether a lease exists (asked of the leader: `LeaseTimeToLive` is forwarded to it, while
/// etcd 3.4 answers `LeaseLeases` from the member's own, possibly lagging, lessor).
async fn lease_alive(c: &mut etcd_client::Client, id: i64) -> bool {
    c.lease_time_to_live(id, None).await.expect("ttl").ttl() > 0
}

/// Ids of the leases that exist, once the member asked has caught up with `want` (within 3 s).
async fn live_leases_settled(c: &mut etcd_client::Client, want: &[i64]) -> Vec<i64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let listed: Vec<i64> = c
            .leases()
            .await
            .expect("leases")
            .leases()
            .iter()
            .map(|l| l.id())
            .collect();
        let mut ids = Vec::new();
        for id in listed {
            if lease_alive(c, id).await {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        if ids == want || tokio::time::Instant::now() > deadline {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rev_of(body: &Value) -> i64 {
    body["mod_revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no mod_revision in {body}"))
}

#[derive(Debug)]
struct Editor {
    /// The value this editor saved (the counter it wrote), if it got through.
    saved: Option<u64>,
    conflicts: u32,
    attempts: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_editors_of_one_counter_lose_no_update() {
    const EDITORS: u64 = 50;
    const ATTEMPTS: u32 = 30;
    let app = spawn_app().await;
    let (status, body) = put(
        &app,
        &json!({"key": "counter", "value": "0", "expected_mod_revision": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let get_url = app.url(&format!("{KEY_PATH}?key=counter"));
    let put_url = app.url(KEY_PATH);
    let mut tasks = Vec::new();
    for i in 0..EDITORS {
        let http = app.http.clone();
        let (get_url, put_url) = (get_url.clone(), put_url.clone());
        tasks.push(tokio::spawn(async move {
            let mut me = Editor {
                saved: None,
                conflicts: 0,
                attempts: 0,
            };
            while me.attempts < ATTEMPTS {
                me.attempts += 1;
                let resp = http.get(&get_url).send().await.expect("get");
                assert_eq!(resp.status().as_u16(), 200);
                let seen: Value = resp.json().await.expect("json");
                let n: u64 = seen["value"]
                    .as_str()
                    .expect("text value")
                    .parse()
                    .expect("an integer");
                let rev = rev_of(&seen);
                let resp = http
                    .put(&put_url)
                    .json(&json!({
                        "key": "counter",
                        "value": (n + 1).to_string(),
                        "expected_mod_revision": rev,
                    }))
                    .send()
                    .await
                    .expect("put");
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.expect("json");
                match status {
                    200 => {
                        assert!(rev_of(&body) > rev, "{body}");
                        assert_eq!(body["revision"], body["mod_revision"], "{body}");
                        me.saved = Some(n + 1);
                        return me;
                    }
                    409 => {
                        let current = &body["current"];
                        assert!(current.is_object(), "a 409 carries the key: {body}");
                        assert_eq!(current["key"], "counter");
                        assert!(
                            rev_of(current) > rev,
                            "the conflict shows a newer version than the one edited: {body}"
                        );
                        assert!(body["error"].is_string(), "{body}");
                        assert!(body["revision"].as_i64().unwrap() >= rev_of(current));
                        me.conflicts += 1;
                        // A little jitter so the editors do not retry in lockstep.
                        let pause = (i * 7 + u64::from(me.attempts) * 13) % 25;
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
            }
            me
        }));
    }
    let mut editors = Vec::new();
    for t in tasks {
        editors.push(t.await.expect("editor task"));
    }

    let mut saved: Vec<u64> = editors.iter().filter_map(|e| e.saved).collect();
    saved.sort_unstable();
    let successes = saved.len() as u64;
    let conflicts: u32 = editors.iter().map(|e| e.conflicts).sum();
    let exhausted = editors
        .iter()
        .filter(|e| e.saved.is_none() && e.attempts == ATTEMPTS)
        .count() as u64;
    assert_eq!(
        successes + exhausted,
        EDITORS,
        "every editor saved or ran out of attempts: {editors:?}"
    );
    assert!(successes >= 1);
    assert!(
        conflicts > 0,
        "50 concurrent editors must have collided at least once"
    );
    // Each save wrote the successor of the value it read: no two saves wrote the same number.
    assert_eq!(
        saved,
        (1..=successes).collect::<Vec<_>>(),
        "each successful save incremented a value no other save had incremented"
    );

    let mut c = app.client().await;
    let kv = raw_get(&mut c, b"counter").await.expect("counter exists");
    assert_eq!(kv.value_str().unwrap(), successes.to_string());
    assert_eq!(kv.version() as u64, successes + 1);
    eprintln!("counter: {successes} saves, {exhausted} gave up, {conflicts} conflicts");
}

#[tokio::test]
async fn editing_a_leased_key_keeps_its_lease() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let lease = c.lease_grant(300, None).await.expect("grant").id();
    c.put("/leased/k", "v1", Some(PutOptions::new().with_lease(lease)))
        .await
        .expect("put");
    let rev1 = raw_get(&mut c, b"/leased/k").await.unwrap().mod_revision();

    // An edit that says nothing about the lease keeps it.
    let (status, body) = put(
        &app,
        &json!({"key": "/leased/k", "value": "v2", "expected_mod_revision": rev1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rev2 = rev_of(&body);
    let kv = raw_get(&mut c, b"/leased/k").await.unwrap();
    assert_eq!(kv.value(), b"v2");
    assert_eq!(kv.mod_revision(), rev2);
    assert_eq!(kv.lease(), lease, "the edit kept the key's lease");
    let ttl = c
        .lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .expect("ttl");
    assert!(ttl.ttl() > 0 && ttl.ttl() <= 300, "ttl {}", ttl.ttl());
    assert_eq!(ttl.keys(), [b"/leased/k".to_vec()]);
    let (status, seen) = app.get_json(&format!("{KEY_PATH}?key=/leased/k")).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["lease"], lease);
    let api_ttl = seen["ttl"].as_i64().expect("ttl");
    assert!((1..=300).contains(&api_ttl), "ttl {api_ttl}");

    // `ttl` grants a new lease of at most that many seconds.
    let (status, body) = put(
        &app,
        &json!({"key": "/leased/k", "value": "v3", "expected_mod_revision": rev2, "ttl": 60}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rev3 = rev_of(&body);
    let kv = raw_get(&mut c, b"/leased/k").await.unwrap();
    let new_lease = kv.lease();
    assert_eq!(kv.value(), b"v3");
    assert_ne!(new_lease, 0);
    assert_ne!(new_lease, lease, "a ttl means a new lease");
    let ttl = c.lease_time_to_live(new_lease, None).await.expect("ttl");
    assert_eq!(ttl.granted_ttl(), 60);
    assert!(ttl.ttl() > 0 && ttl.ttl() <= 60, "ttl {}", ttl.ttl());
    let (_, seen) = app.get_json(&format!("{KEY_PATH}?key=/leased/k")).await;
    assert_eq!(seen["lease"], new_lease);
    let api_ttl = seen["ttl"].as_i64().expect("ttl");
    assert!((1..=60).contains(&api_ttl), "ttl {api_ttl}");

    // A refused edit with a ttl leaves no lease behind.
    let mut leases_before = vec![lease, new_lease];
    leases_before.sort_unstable();
    assert_eq!(
        live_leases_settled(&mut c, &leases_before).await,
        leases_before
    );
    let (status, body) = put(
        &app,
        &json!({"key": "/leased/k", "value": "nope", "expected_mod_revision": rev2, "ttl": 60}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        live_leases_settled(&mut c, &leases_before).await,
        leases_before,
        "the lease granted for the refused edit was given back"
    );
    let kv = raw_get(&mut c, b"/leased/k").await.unwrap();
    assert_eq!((kv.value(), kv.lease()), (&b"v3"[..], new_lease));

    // `lease: 0` detaches: the key becomes permanent and survives its old lease.
    let (status, body) = put(
        &app,
        &json!({"key": "/leased/k", "value": "v4", "expected_mod_revision": rev3, "lease": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rev4 = rev_of(&body);
    let kv = raw_get(&mut c, b"/leased/k").await.unwrap();
    assert_eq!((kv.value(), kv.lease()), (&b"v4"[..], 0));
    let (_, seen) = app.get_json(&format!("{KEY_PATH}?key=/leased/k")).await;
    assert_eq!(seen["lease"], 0);
    assert!(seen["ttl"].is_null(), "{seen}");
    c.lease_revoke(new_lease).await.expect("revoke");
    assert!(raw_get(&mut c, b"/leased/k").await.is_some());

    // `lease: id` attaches an existing lease.
    let (status, body) = put(
        &app,
        &json!({"key": "/leased/k", "value": "v5", "expected_mod_revision": rev4, "lease": lease}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(raw_get(&mut c, b"/leased/k").await.unwrap().lease(), lease);
}

#[tokio::test]
async fn a_binary_value_edit_round_trips_byte_exact() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let key: &[u8] = b"/bin/\xff\x00\xfe\x80 k";
    let value: Vec<u8> = (0u8..=255).rev().collect();

    // key_b64 in the standard alphabet (as the API returns it), value_b64 in base64url.
    let (status, body) = put(
        &app,
        &json!({"key_b64": b64(key), "value_b64": b64url(&value), "expected_mod_revision": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rev1 = rev_of(&body);
    let kv = raw_get(&mut c, key).await.expect("created");
    assert_eq!(kv.key(), key);
    assert_eq!(kv.value(), value.as_slice());
    assert_eq!(kv.version(), 1);
    assert_eq!(kv.mod_revision(), rev1);
    let created = kv.create_revision();

    let value2: Vec<u8> = vec![0xff, 0x00, 0xc3, 0x28, b'\n', b'\r', 0x00];
    let (status, body) = put(
        &app,
        &json!({"key_b64": b64url(key), "value_b64": b64(&value2), "expected_mod_revision": rev1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rev2 = rev_of(&body);
    let kv = raw_get(&mut c, key).await.expect("still there");
    assert_eq!(kv.value(), value2.as_slice());
    assert_eq!(kv.version(), 2, "the edit incremented the version");
    assert_eq!(kv.create_revision(), created);
    assert_eq!(kv.mod_revision(), rev2);
    // Only that one key exists under the prefix: no mangled twin was written.
    assert_eq!(raw_prefix(&mut c, b"/bin/").await.len(), 1);

    let (status, seen) = app
        .get_json(&format!("{KEY_PATH}?key_b64={}", b64url(key)))
        .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["key_b64"], b64(key));
    assert_eq!(seen["value_b64"], b64(&value2));
    assert!(seen.get("value").is_none(), "{seen}");

    // The empty value is a value too.
    let (status, body) = put(
        &app,
        &json!({"key_b64": b64(key), "value_b64": "", "expected_mod_revision": rev2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let kv = raw_get(&mut c, key).await.expect("still there");
    assert_eq!(kv.value(), b"");
    assert_eq!(kv.version(), 3);
}

#[tokio::test]
async fn creating_requires_absence_and_a_stale_edit_is_refused_with_the_current_value() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    c.put("/cfg/a", "original", None).await.expect("put");
    let m0 = raw_get(&mut c, b"/cfg/a").await.unwrap().mod_revision();

    // Creating over an existing key.
    let (status, body) = put(
        &app,
        &json!({"key": "/cfg/a", "value": "mine", "expected_mod_revision": 0}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(body["current"]["value"], "original");
    assert_eq!(body["current"]["value_b64"], b64(b"original"));
    assert_eq!(body["current"]["mod_revision"], m0);
    assert!(body["revision"].as_i64().unwrap() >= m0, "{body}");
    let kv = raw_get(&mut c, b"/cfg/a").await.unwrap();
    assert_eq!((kv.value(), kv.mod_revision()), (&b"original"[..], m0));

    // Someone else saves; my edit started from m0.
    c.put("/cfg/a", "theirs", None).await.expect("put");
    let m1 = raw_get(&mut c, b"/cfg/a").await.unwrap().mod_revision();
    let (status, body) = put(
        &app,
        &json!({"key": "/cfg/a", "value": "mine", "expected_mod_revision": m0}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["current"]["value_b64"], b64(b"theirs"));
    assert_eq!(body["current"]["mod_revision"], m1);
    assert_eq!(body["current"]["version"], 2);
    let kv = raw_get(&mut c, b"/cfg/a").await.unwrap();
    assert_eq!(
        (kv.value(), kv.mod_revision(), kv.version()),
        (&b"theirs"[..], m1, 2)
    );

    // Editing a key that no longer exists: 409 with `current: null`, nothing created.
    let (status, body) = put(
        &app,
        &json!({"key": "/cfg/gone", "value": "x", "expected_mod_revision": m1}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["current"].is_null(), "{body}");
    assert!(
        body.get("current").is_some(),
        "`current` is present: {body}"
    );
    assert!(raw_get(&mut c, b"/cfg/gone").await.is_none());

    // Malformed bodies are 400s and write nothing.
    let revision = raw_revision(&mut c).await;
    for bad in [
        json!({"key": "/cfg/b", "value": "x"}),
        json!({"key": "/cfg/b", "value": "x", "expected_mod_revision": -1}),
        json!({"key": "/cfg/b", "value": "x", "expected_mod_revision": 0, "extra": 1}),
        json!({"key": "", "value": "x", "expected_mod_revision": 0}),
        json!({"key": "/cfg/b", "key_b64": "L2NmZy9i", "value": "x", "expected_mod_revision": 0}),
        json!({"key": "/cfg/b", "value_b64": "%%%", "expected_mod_revision": 0}),
        json!({"key": "/cfg/b", "value": "x", "expected_mod_revision": 0, "ttl": 5, "lease": 0}),
        json!({"key": "/cfg/b", "value": "x", "expected_mod_revision": 0, "ttl": 0}),
    ] {
        let (status, body) = put(&app, &bad).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let resp = app
        .http
        .put(app.url(KEY_PATH))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(raw_revision(&mut c).await, revision, "nothing was written");

    // Creating an absent key works.
    let (status, body) = put(
        &app,
        &json!({"key": "/cfg/b", "value": "new", "expected_mod_revision": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let kv = raw_get(&mut c, b"/cfg/b").await.unwrap();
    assert_eq!((kv.value(), kv.version()), (&b"new"[..], 1));
    assert_eq!(kv.mod_revision(), rev_of(&body));
}

#[tokio::test]
async fn deleting_needs_the_current_revision() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    c.put("/del/a", "1", None).await.expect("put");
    let old = raw_get(&mut c, b"/del/a").await.unwrap().mod_revision();
    c.put("/del/a", "2", None).await.expect("put");
    let now = raw_get(&mut c, b"/del/a").await.unwrap().mod_revision();

    let (status, body) = delete(&app, &format!("key=/del/a&expected_mod_revision={old}")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["current"]["value"], "2");
    assert_eq!(body["current"]["mod_revision"], now);
    let kv = raw_get(&mut c, b"/del/a").await.expect("still there");
    assert_eq!((kv.value(), kv.mod_revision()), (&b"2"[..], now));

    // No revision, or a nonsensical one, is a 400.
    for q in [
        "key=/del/a".to_string(),
        "key=/del/a&expected_mod_revision=0".to_string(),
        "key=/del/a&expected_mod_revision=abc".to_string(),
        format!("expected_mod_revision={now}"),
    ] {
        let (status, body) = delete(&app, &q).await;
        assert_eq!(status, 400, "{q}: {body}");
    }
    assert!(raw_get(&mut c, b"/del/a").await.is_some());

    let (status, body) = delete(
        &app,
        &format!("key_b64={}&expected_mod_revision={now}", b64url(b"/del/a")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["revision"].as_i64().unwrap() > now, "{body}");
    assert!(raw_get(&mut c, b"/del/a").await.is_none(), "deleted");

    // Deleting it again (from the same stale view) is a conflict with nothing there.
    let (status, body) = delete(&app, &format!("key=/del/a&expected_mod_revision={now}")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["current"].is_null(), "{body}");
}

/// Without quorum the preview still answers, from a member's own copy and marked stale, as
/// quickly as a page does (the count's long budget is not spent waiting for quorum), and the
/// deletion is refused before anything is sent.
#[tokio::test]
async fn without_quorum_the_prefix_preview_is_stale_at_once_and_nothing_is_deleted() {
    let mut app = spawn_app().await;
    app.put_all(&[("/nq/a", "1"), ("/nq/b", "2")]).await;
    let before = preview(&app, "/nq/").await;
    assert_eq!(before["stale"], false, "{before}");
    app.etcd.kill(1);
    app.etcd.kill(2);

    let started = std::time::Instant::now();
    let seen = preview(&app, "/nq/").await;
    let took = started.elapsed();
    assert_eq!(seen["stale"], true, "{seen}");
    assert_eq!(seen["count"], 2, "{seen}");
    assert!(
        took < Duration::from_secs(5),
        "a page's budget, not the count's three etcd timeouts: {took:?}"
    );
    let (status, body) = delete_prefix(
        &app,
        &json!({"prefix": "/nq/", "expected_count": 2, "revision": seen["revision"]}),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nothing is deleted"),
        "{body}"
    );
    // The surviving member's own copy still has both keys.
    let mut c = etcd_client::Client::connect([app.etcd.client_urls()[0].clone()], None)
        .await
        .expect("client");
    let left = c
        .get(
            "/nq/",
            Some(GetOptions::new().with_prefix().with_serializable()),
        )
        .await
        .expect("serializable read");
    assert_eq!(left.count(), 2);
}

#[tokio::test]
async fn delete_prefix_refuses_when_the_count_changed() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    app.put_all(&[
        ("/p/a", "1"),
        ("/p/b", "2"),
        ("/p/c/d", "3"),
        ("/pother", "outside"),
        ("/p", "the prefix without its slash"),
        ("/q/x", "outside"),
    ])
    .await;

    let seen = preview(&app, "/p/").await;
    assert_eq!(seen["count"], 3, "{seen}");
    assert_eq!(seen["allowed"], true);
    let sample: Vec<&str> = seen["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(sample, ["/p/a", "/p/b", "/p/c/d"]);
    assert_eq!(seen["sample"][0]["key_b64"], b64(b"/p/a"));

    // A key is added after the preview: the old count is refused, nothing is deleted.
    c.put("/p/new", "4", None).await.expect("put");
    let (status, body) = delete_prefix(
        &app,
        &json!({"prefix": "/p/", "expected_count": 3, "revision": seen["revision"]}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["count"], 4, "{body}");
    assert!(body["error"].is_string());
    assert_eq!(raw_prefix(&mut c, b"/p/").await.len(), 4, "nothing deleted");

    // Preview again and confirm the new count.
    let seen = preview(&app, "/p/").await;
    assert_eq!(seen["count"], 4, "{seen}");
    let (status, body) = delete_prefix(
        &app,
        &json!({"prefix_b64": b64url(b"/p/"), "expected_count": 4, "revision": seen["revision"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], 4, "{body}");
    assert!(body["revision"].as_i64().unwrap() > 0);
    assert!(raw_prefix(&mut c, b"/p/").await.is_empty());
    // Keys that merely share the bytes before the prefix survive.
    let left: Vec<Vec<u8>> = raw_prefix(&mut c, b"/")
        .await
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(
        left,
        [b"/p".to_vec(), b"/pother".to_vec(), b"/q/x".to_vec()]
    );

    // The empty prefix (every key) is refused, and the preview says so.
    let seen = preview(&app, "").await;
    assert_eq!(seen["allowed"], false, "{seen}");
    assert_eq!(seen["count"], 3, "{seen}");
    let (status, body) = delete_prefix(&app, &json!({"prefix": "", "expected_count": 3})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].is_string());
    let (status, _) = delete_prefix(&app, &json!({"prefix_b64": "", "expected_count": 3})).await;
    assert_eq!(status, 403);
    assert_eq!(raw_prefix(&mut c, b"").await.len(), 3, "nothing deleted");

    // A body without the count, or without the revision it was read at, is a 400.
    let (status, body) = delete_prefix(&app, &json!({"prefix": "/q/"})).await;
    assert_eq!(status, 400, "{body}");
    // A revision from the future was seen by nobody: it would let every change through.
    let (status, body) = delete_prefix(
        &app,
        &json!({"prefix": "/q/", "expected_count": 1, "revision": 1_000_000_000_000i64}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    for revision in [json!(null), json!(0), json!(-3)] {
        let (status, body) = delete_prefix(
            &app,
            &json!({"prefix": "/q/", "expected_count": 1, "revision": revision}),
        )
        .await;
        assert_eq!(status, 400, "{revision}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("revision"),
            "{body}"
        );
    }
    assert_eq!(raw_prefix(&mut c, b"/q/").await.len(), 1);
}

#[tokio::test]
async fn delete_prefix_refuses_when_a_key_changed_after_the_preview() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    app.put_all(&[("/r/a", "1"), ("/r/b", "2"), ("/s/x", "outside")])
        .await;
    let seen = preview(&app, "/r/").await;
    assert_eq!(seen["count"], 2, "{seen}");

    // Someone changes a key the user was shown (the count stays 2). The UI sends back the
    // preview's revision, which is what makes this detectable.
    c.put("/r/a", "changed", None).await.expect("put");
    let (status, body) = delete_prefix(
        &app,
        &json!({"prefix": "/r/", "expected_count": 2, "revision": seen["revision"]}),
    )
    .await;
    assert_eq!(
        status, 409,
        "a key under the prefix changed since the preview: {body}"
    );
    assert_eq!(raw_prefix(&mut c, b"/r/").await.len(), 2, "nothing deleted");

    // Same for a swap: one key deleted and another created, so the count is unchanged.
    let seen = preview(&app, "/r/").await;
    assert_eq!(seen["count"], 2, "{seen}");
    c.delete("/r/b", None).await.expect("delete");
    c.put("/r/z", "new", None).await.expect("put");
    let (status, body) = delete_prefix(
        &app,
        &json!({"prefix": "/r/", "expected_count": 2, "revision": seen["revision"]}),
    )
    .await;
    assert_eq!(status, 409, "a key was created since the preview: {body}");
    assert_eq!(raw_prefix(&mut c, b"/r/").await.len(), 2, "nothing deleted");
    assert_eq!(raw_prefix(&mut c, b"/s/").await.len(), 1);
}

#[tokio::test]
async fn history_lists_versions_and_a_restore_is_a_cas_put() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let mut revs = Vec::new();
    let mut expected = 0;
    for v in 1..=5 {
        let (status, body) = put(
            &app,
            &json!({"key": "/h/k", "value": format!("v{v}"), "expected_mod_revision": expected}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        expected = rev_of(&body);
        revs.push(expected);
        // An unrelated write between versions, so revisions are not consecutive.
        c.put("/h/other", format!("{v}"), None).await.expect("put");
    }

    let (status, h) = app.get_json("/api/v1/clusters/test/history?key=/h/k").await;
    assert_eq!(status, 200, "{h}");
    let versions = h["versions"].as_array().unwrap();
    let values: Vec<&str> = versions
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["v5", "v4", "v3", "v2", "v1"], "newest first");
    let mods: Vec<i64> = versions.iter().map(rev_of).collect();
    assert_eq!(mods, revs.iter().rev().copied().collect::<Vec<_>>());
    let nums: Vec<i64> = versions
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(nums, [5, 4, 3, 2, 1]);
    assert!(versions
        .iter()
        .all(|v| v["create_revision"] == revs[0] && v["key"] == "/h/k"));
    assert_eq!(h["compacted"], false);
    assert!(h["older"].is_null(), "{h}");

    // Paging with `limit` and `before`.
    let mut paged = Vec::new();
    let mut query = "key=/h/k&limit=2".to_string();
    for _ in 0..5 {
        let (status, page) = app
            .get_json(&format!("/api/v1/clusters/test/history?{query}"))
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page["versions"].as_array().unwrap().len() <= 2);
        paged.extend(
            page["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["value"].as_str().unwrap().to_string()),
        );
        match page["older"].as_i64() {
            Some(older) => query = format!("key=/h/k&limit=2&before={older}"),
            None => break,
        }
    }
    assert_eq!(paged, ["v5", "v4", "v3", "v2", "v1"]);

    // Restore version 2: a CAS put of its value against the current revision.
    let v2 = versions.iter().find(|v| v["version"] == 2).unwrap();
    let (status, body) = put(
        &app,
        &json!({"key": "/h/k", "value_b64": v2["value_b64"], "expected_mod_revision": revs[2]}),
    )
    .await;
    assert_eq!(
        status, 409,
        "a restore from a stale view is refused: {body}"
    );
    let (status, body) = put(
        &app,
        &json!({"key": "/h/k", "value_b64": v2["value_b64"], "expected_mod_revision": revs[4]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r6 = rev_of(&body);
    let kv = raw_get(&mut c, b"/h/k").await.unwrap();
    assert_eq!((kv.value(), kv.version()), (&b"v2"[..], 6));
    let (_, seen) = app.get_json(&format!("{KEY_PATH}?key=/h/k")).await;
    assert_eq!(seen["value"], "v2");

    // Compact past v3: history shows what is retained and says the rest was compacted.
    c.compact(revs[3], None).await.expect("compact");
    let (status, h) = app.get_json("/api/v1/clusters/test/history?key=/h/k").await;
    assert_eq!(status, 200, "{h}");
    let mods: Vec<i64> = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(rev_of)
        .collect();
    assert_eq!(mods, [r6, revs[4], revs[3]], "{h}");
    assert_eq!(h["compacted"], true, "{h}");
    assert!(h["older"].is_null(), "{h}");

    // Asking for a compacted range directly says so too.
    let (status, h) = app
        .get_json(&format!(
            "/api/v1/clusters/test/history?key=/h/k&before={}",
            revs[1]
        ))
        .await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["versions"], json!([]));
    assert_eq!(h["compacted"], true);

    // A revision from the future is a 400 at once, not a cluster that does not answer.
    let asked = std::time::Instant::now();
    let (status, h) = app
        .get_json(&format!(
            "/api/v1/clusters/test/history?key=/h/k&before={}",
            r6 + 1_000_000
        ))
        .await;
    assert_eq!(status, 400, "{h}");
    assert!(
        h["error"]
            .as_str()
            .unwrap()
            .contains("newer than the cluster's current revision"),
        "{h}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );

    // A key that never existed is a 404; bad parameters are 400s.
    let (status, _) = app
        .get_json("/api/v1/clusters/test/history?key=/h/none")
        .await;
    assert_eq!(status, 404);
    for q in [
        "key=/h/k&limit=0",
        "key=/h/k&limit=201",
        "key=/h/k&before=0",
        "limit=2",
    ] {
        let (status, body) = app
            .get_json(&format!("/api/v1/clusters/test/history?{q}"))
            .await;
        assert_eq!(status, 400, "{q}: {body}");
    }
}

#[tokio::test]
async fn leases_list_their_keys_and_revoking_deletes_them() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let a = c.lease_grant(300, None).await.expect("grant").id();
    let b = c.lease_grant(120, None).await.expect("grant").id();
    let empty = c.lease_grant(60, None).await.expect("grant").id();
    for (k, l) in [("/l/1", a), ("/l/2", a), ("/l/3", b)] {
        c.put(k, "v", Some(PutOptions::new().with_lease(l)))
            .await
            .expect("put");
    }
    c.put(
        b"/l/\xff".to_vec(),
        "v",
        Some(PutOptions::new().with_lease(a)),
    )
    .await
    .expect("put");
    c.put("/l/4", "permanent", None).await.expect("put");

    let (status, list) = app.get_json("/api/v1/clusters/test/leases").await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap().clone();
    let ids: Vec<i64> = list.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    let mut want = vec![a, b, empty];
    want.sort_unstable();
    assert_eq!(ids, want, "every lease, by id");
    let find = |id: i64| list.iter().find(|l| l["id"] == id).unwrap().clone();

    let la = find(a);
    assert_eq!(la["id_hex"], format!("{a:016x}"));
    assert_eq!(la["granted_ttl"], 300);
    let ttl = la["ttl"].as_i64().unwrap();
    assert!((1..=300).contains(&ttl), "ttl {ttl}");
    let keys: Vec<String> = la["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_b64"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = [&b"/l/1"[..], b"/l/2", b"/l/\xff"]
        .iter()
        .map(|k| b64(k))
        .collect();
    assert_eq!(keys, want, "in byte order");
    assert_eq!(la["key_count"], 3);
    let texts: Vec<&Value> = la["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["key"])
        .collect();
    assert!(texts.contains(&&json!("/l/1")));
    assert!(
        texts.contains(&&Value::Null),
        "a non-UTF-8 key has no text form: {la}"
    );
    let lb = find(b);
    assert_eq!(lb["granted_ttl"], 120);
    assert_eq!(
        lb["keys"],
        json!([{"key": "/l/3", "key_b64": b64(b"/l/3")}])
    );
    assert_eq!(find(empty)["keys"], json!([]));

    // Revoking lease a deletes exactly its keys.
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/clusters/test/leases/{a}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["deleted_keys"], 3, "{body}");
    let left: Vec<Vec<u8>> = raw_prefix(&mut c, b"/l/")
        .await
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(left, [b"/l/3".to_vec(), b"/l/4".to_vec()]);
    assert!(!lease_alive(&mut c, a).await);

    // Revoking by hex id (as `id_hex` shows it, with 0x) works too.
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/clusters/test/leases/0x{b:x}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(raw_get(&mut c, b"/l/3").await.is_none());
    assert!(
        raw_get(&mut c, b"/l/4").await.is_some(),
        "unleased key kept"
    );

    // A revoked lease is gone: 404; garbage is a 400.
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/clusters/test/leases/{a}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = app
        .http
        .delete(app.url("/api/v1/clusters/test/leases/not-a-lease"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    let (_, list) = app.get_json("/api/v1/clusters/test/leases").await;
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [empty]);
}

#[tokio::test]
async fn a_lease_with_too_many_keys_to_list_is_shown_and_not_revoked_blind() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let big = c.lease_grant(600, None).await.expect("grant").id();
    let small = c.lease_grant(600, None).await.expect("grant").id();
    let attached = app.attach_unlistable_keys(big, "/big/").await;
    for k in ["/small/a", "/small/b"] {
        c.put(k, "v", Some(PutOptions::new().with_lease(small)))
            .await
            .expect("put");
    }
    let medium = c.lease_grant(600, None).await.expect("grant").id();
    let medium_keys: Vec<(String, &str)> =
        (0..25).map(|i| (format!("/medium/{i:02}"), "v")).collect();
    app.put_all_leased(&medium_keys, Some(medium)).await;

    let (status, list) = app.get_json("/api/v1/clusters/test/leases?keys=1").await;
    assert_eq!(status, 200, "the other leases are still listed: {list}");
    let find = |id: i64| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == id)
            .unwrap()
            .clone()
    };
    let lb = find(big);
    assert_eq!(lb["key_count"], Value::Null, "{lb}");
    assert_eq!(lb["keys"], json!([]));
    assert!(
        lb["ttl"].as_i64().unwrap() > 0,
        "its TTL is still read: {lb}"
    );
    let ls = find(small);
    assert_eq!(ls["key_count"], 2, "{ls}");
    assert_eq!(ls["keys"].as_array().unwrap().len(), 1, "keys=1: {ls}");
    let lm = find(medium);
    assert_eq!(lm["key_count"], 25, "{lm}");
    assert_eq!(
        lm["keys"],
        json!([{"key": "/medium/00", "key_b64": b64(b"/medium/00")}])
    );

    // One lease: all its keys by default, or the first N.
    let (status, one) = app
        .get_json(&format!("/api/v1/clusters/test/leases/0x{small:x}"))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["key_count"], 2);
    let keys: Vec<&str> = one["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["/small/a", "/small/b"]);
    let (status, one) = app
        .get_json(&format!("/api/v1/clusters/test/leases/{big}?keys=5"))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["key_count"], Value::Null, "{one}");
    for q in ["keys=10001", "keys=-1", "keys=x"] {
        let (status, body) = app
            .get_json(&format!("/api/v1/clusters/test/leases?{q}"))
            .await;
        assert_eq!(status, 400, "{q}: {body}");
    }
    let (status, _) = app
        .get_json(&format!("/api/v1/clusters/test/leases/{:x}", big ^ 1))
        .await;
    assert_eq!(status, 404, "a lease that does not exist");

    // Revoking it would delete keys nobody could see or check: refused, nothing deleted.
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/clusters/test/leases/{big}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let body: Value = resp.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("too many keys") && msg.contains(&format!("etcdctl lease revoke {big:x}")),
        "{msg}"
    );
    assert!(lease_alive(&mut c, big).await);
    let left = c
        .get(
            "/big/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap()
        .count();
    assert_eq!(left, i64::from(attached));

    // The page shows both; only the listable one has a revoke button.
    let (status, page) = app.get_text("/clusters/test/leases").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("too many keys to list here"), "{page}");
    assert!(page.contains(&format!("etcdctl lease revoke {big:016x}")));
    assert!(!page.contains(&format!("data-lease-hex=\"{big:016x}\"")));
    assert!(page.contains(&format!("data-lease-hex=\"{small:016x}\"")));
    // A lease's first 20 keys, then how many more.
    assert!(page.contains("/medium/19") && !page.contains("/medium/20"));
    assert!(page.contains("… and 5 more"), "{page}");
}

#[tokio::test]
async fn a_value_over_the_limit_is_refused_with_413_before_etcd() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let limit = etcdboard::domain::edit::DEFAULT_MAX_VALUE_BYTES;
    let before = raw_revision(&mut c).await;
    let big = "x".repeat(2 * 1024 * 1024);
    for body in [
        json!({"key": "/big", "value": big, "expected_mod_revision": 0}),
        json!({"key": "/big", "value_b64": b64(big.as_bytes()), "expected_mod_revision": 0}),
    ] {
        let (status, body) = put(&app, &body).await;
        assert_eq!(status, 413, "{body}");
        let msg = body["error"].as_str().expect("a JSON error");
        assert!(
            msg.contains(&limit.to_string()),
            "mentions the limit: {msg}"
        );
    }
    assert!(raw_get(&mut c, b"/big").await.is_none());
    assert_eq!(raw_revision(&mut c).await, before, "etcd saw no write");

    // One byte over counts too (key and value together).
    let (status, _) = put(
        &app,
        &json!({"key": "/big", "value": "y".repeat(limit - 3), "expected_mod_revision": 0}),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(raw_revision(&mut c).await, before);
}

#[tokio::test]
async fn a_value_just_under_the_limit_is_saved() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let limit = etcdboard::domain::edit::DEFAULT_MAX_VALUE_BYTES;
    // 1 KiB under the limit: accepted by etcdboard's check, and must be by etcd too.
    let value = "z".repeat(limit - 1024);
    let (status, body) = put(
        &app,
        &json!({"key": "/big", "value": value, "expected_mod_revision": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let kv = raw_get(&mut c, b"/big").await.expect("saved");
    assert_eq!(kv.value().len(), value.len());
}

#[tokio::test]
async fn a_value_exactly_at_the_limit_is_saved() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let limit = etcdboard::domain::edit::DEFAULT_MAX_VALUE_BYTES;
    // The limit is etcd's request limit: the largest write whose request fits is saved, one byte
    // more is a 413 from etcdboard — never a 502 from etcd.
    let fits = limit - etcdboard::domain::edit::request_size("/big".len(), 0);
    let value = "z".repeat(fits);
    let (status, body) = put(
        &app,
        &json!({"key": "/big", "value": value, "expected_mod_revision": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let kv = raw_get(&mut c, b"/big").await.expect("saved");
    assert_eq!(kv.value().len(), value.len());
    let (status, body) = put(
        &app,
        &json!({"key": "/big2", "value": "z".repeat(fits + 1), "expected_mod_revision": 0}),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(raw_get(&mut c, b"/big2").await.is_none());
}

#[tokio::test]
async fn cross_site_writes_are_refused_and_scripts_are_not() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    c.put("/x/a", "v0", None).await.expect("put");
    let rev = raw_get(&mut c, b"/x/a").await.unwrap().mod_revision();
    let body = json!({"key": "/x/a", "value": "pwned", "expected_mod_revision": rev});
    let text = body.to_string();
    let same_origin = format!("http://{}", app.addr);

    let refused: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "foreign Origin",
            app.http
                .put(app.url(KEY_PATH))
                .header("origin", "http://evil.example")
                .json(&body),
        ),
        (
            "Origin null",
            app.http
                .put(app.url(KEY_PATH))
                .header("origin", "null")
                .json(&body),
        ),
        (
            "Sec-Fetch-Site: cross-site",
            app.http
                .put(app.url(KEY_PATH))
                .header("sec-fetch-site", "cross-site")
                .json(&body),
        ),
        (
            "Sec-Fetch-Site: same-site",
            app.http
                .put(app.url(KEY_PATH))
                .header("sec-fetch-site", "same-site")
                .header("origin", same_origin.as_str())
                .json(&body),
        ),
        (
            "form-encoded body",
            app.http
                .put(app.url(KEY_PATH))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(text.clone()),
        ),
        (
            "text/plain body (what a cross-site form can send without preflight)",
            app.http
                .put(app.url(KEY_PATH))
                .header("content-type", "text/plain")
                .body(text.clone()),
        ),
        (
            "no content type",
            app.http.put(app.url(KEY_PATH)).body(text.clone()),
        ),
        (
            "cross-site DELETE",
            app.http
                .delete(app.url(&format!("{KEY_PATH}?key=/x/a&expected_mod_revision={rev}")))
                .header("origin", "http://evil.example"),
        ),
        (
            "cross-site delete-prefix",
            app.http
                .post(app.url(PREFIX_PATH))
                .header("sec-fetch-site", "cross-site")
                .json(&json!({"prefix": "/x/", "expected_count": 1})),
        ),
    ];
    for (what, req) in refused {
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), 403, "{what}");
        let err: Value = resp.json().await.expect("json error");
        assert!(err["error"].is_string(), "{what}: {err}");
    }
    let kv = raw_get(&mut c, b"/x/a").await.expect("untouched");
    assert_eq!((kv.value(), kv.mod_revision()), (&b"v0"[..], rev));

    // Reads are never blocked, whatever the headers say.
    let resp = app
        .http
        .get(app.url(&format!("{KEY_PATH}?key=/x/a")))
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // A same-origin page may write.
    let resp = app
        .http
        .put(app.url(KEY_PATH))
        .header("origin", same_origin.as_str())
        .header("sec-fetch-site", "same-origin")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body2: Value = resp.json().await.unwrap();
    let rev2 = rev_of(&body2);
    assert_eq!(raw_get(&mut c, b"/x/a").await.unwrap().value(), b"pwned");

    // So may a script: JSON, no Origin.
    let (status, body3) = put(
        &app,
        &json!({"key": "/x/a", "value": "script", "expected_mod_revision": rev2}),
    )
    .await;
    assert_eq!(status, 200, "{body3}");
    assert_eq!(raw_get(&mut c, b"/x/a").await.unwrap().value(), b"script");
    let resp = app
        .http
        .put(app.url(KEY_PATH))
        .header("content-type", "application/json; charset=utf-8")
        .body(
            json!({"key": "/x/a", "value": "charset", "expected_mod_revision": rev_of(&body3)})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn get_never_mutates() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let lease = c.lease_grant(300, None).await.expect("grant").id();
    c.put("/x/a", "1", Some(PutOptions::new().with_lease(lease)))
        .await
        .expect("put");
    c.put("/x/b", "2", None).await.expect("put");
    let rev_a = raw_get(&mut c, b"/x/a").await.unwrap().mod_revision();
    let before = raw_prefix(&mut c, b"").await;
    let revision = raw_revision(&mut c).await;

    let write_ish = format!("value=zzz&value_b64=eno&expected_mod_revision={rev_a}&expected_count=2&ttl=5&lease=0&method=DELETE&_method=PUT");
    let gets = [
        format!("/api/v1/clusters/test/key?key=/x/a&{write_ish}"),
        format!("/api/v1/clusters/test/delete-prefix?prefix=/x/&{write_ish}"),
        format!("/api/v1/clusters/test/delete-prefix?prefix=&{write_ish}"),
        format!("/api/v1/clusters/test/history?key=/x/a&{write_ish}"),
        format!("/api/v1/clusters/test/leases?id={lease}&revoke=1&{write_ish}"),
        format!("/api/v1/clusters/test/leases/{lease}?{write_ish}"),
        format!("/api/v1/clusters/test/keys?prefix=/x/&{write_ish}"),
        format!("/api/v1/clusters?{write_ish}"),
        format!("/clusters/test/keys?prefix=/x/&{write_ish}"),
        format!("/clusters/test/ui/key?key=/x/a&{write_ish}"),
        format!("/clusters/test/ui/nodes?prefix=/x/&{write_ish}"),
        format!("/clusters/test?{write_ish}"),
        format!("/go?key=/x/a&{write_ish}"),
        format!("/?{write_ish}"),
        format!("/clusters?{write_ish}"),
        format!("/healthz?{write_ish}"),
        format!("/static/app.js?{write_ish}"),
    ];
    for path in &gets {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let resp = app
                .http
                .request(method.clone(), app.url(path))
                .send()
                .await
                .expect("request");
            let status = resp.status().as_u16();
            assert!(status < 500, "{method} {path} answered {status}");
        }
    }
    // Overriding the method by header does nothing either.
    let resp = app
        .http
        .get(app.url(&format!(
            "{KEY_PATH}?key=/x/a&expected_mod_revision={rev_a}"
        )))
        .header("x-http-method-override", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    assert_eq!(raw_revision(&mut c).await, revision, "no write happened");
    assert_eq!(raw_prefix(&mut c, b"").await, before);
    assert!(
        lease_alive(&mut c, lease).await,
        "the lease was not revoked"
    );
    let kv = raw_get(&mut c, b"/x/a").await.expect("still there");
    assert_eq!(kv.lease(), lease);
}

/// A new key under a directory whose name is not UTF-8: the editor keeps the directory's bytes
/// (its input takes the rest of the key), instead of a lossy text copy of them.
#[tokio::test]
async fn a_new_key_under_a_non_utf8_directory_keeps_its_bytes() {
    let app = spawn_app().await;
    let (status, html) = app
        .get_text("/clusters/test/ui/edit?new=1&prefix=/app/%FF/")
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!(
            "data-prefix-b64=\"{}\"",
            crate::helpers::b64(b"/app/\xff/")
        )),
        "{html}"
    );
    assert!(
        !html.contains('\u{fffd}'),
        "no replacement character: {html}"
    );
}

/// A key deleted while etcdboard watches keeps its history: the versions before the deletion,
/// through the API, the history page and a link from the key view.
#[tokio::test]
async fn a_deleted_key_still_shows_its_history() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    // The listing index (and its watch) starts with the first listing.
    app.wait_for_index().await;
    for v in ["v1", "v2"] {
        c.put("/gone/k", v, None).await.expect("put");
    }
    let deleted = c.delete("/gone/k", None).await.expect("delete");
    let at = deleted.header().unwrap().revision();
    let mut history = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, body) = app
            .get_json("/api/v1/clusters/test/history?key=/gone/k")
            .await;
        if status == 200 {
            history = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(history["deleted_revision"], at, "{history}");
    let values: Vec<&str> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["v2", "v1"]);
    let (status, page) = app.get_text("/clusters/test/history?key=/gone/k").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page.matches("data-restore=").count(),
        2,
        "both versions listed: {page}"
    );
    let (_, view) = app.get_text("/clusters/test/ui/key?key=/gone/k").await;
    assert!(
        view.contains(&format!("It was deleted at revision {at}")),
        "{view}"
    );
    assert!(view.contains(&format!("before={}", at - 1)), "{view}");
    // A key never seen deleted is still a 404 that says how to read it anyway.
    let (status, body) = app
        .get_json("/api/v1/clusters/test/history?key=/never")
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("before="),
        "{body}"
    );
}

/// A key deleted and created again: its history leads on from the new life's creation into the
/// earlier one, through the deletion etcdboard saw.
#[tokio::test]
async fn a_recreated_keys_history_leads_on_into_its_earlier_life() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    app.wait_for_index().await;
    for v in ["v1", "v2"] {
        c.put("/relife/k", v, None).await.expect("put");
    }
    let deleted = c.delete("/relife/k", None).await.expect("delete");
    let at = deleted.header().unwrap().revision();
    for v in ["v3", "v4"] {
        c.put("/relife/k", v, None).await.expect("put");
    }
    let values = |body: &serde_json::Value| -> Vec<String> {
        body["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["value"].as_str().unwrap().to_string())
            .collect()
    };
    // The index's watch sees the deletion and the re-creation within moments.
    let mut newest = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, body) = app
            .get_json("/api/v1/clusters/test/history?key=/relife/k")
            .await;
        assert_eq!(status, 200, "{body}");
        if body["older"] == at - 1 {
            newest = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(values(&newest), ["v4", "v3"], "{newest}");
    let (_, earlier) = app
        .get_json(&format!(
            "/api/v1/clusters/test/history?key=/relife/k&before={}",
            at - 1
        ))
        .await;
    assert_eq!(values(&earlier), ["v2", "v1"], "{earlier}");
    assert!(earlier["older"].is_null(), "{earlier}");
}

/// The history page's diff of two versions: changed lines, and, when only the line endings
/// differ (which lines cannot show), a sentence saying so.
#[tokio::test]
async fn the_history_diff_shows_changed_lines_and_says_when_only_line_endings_differ() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let mut revs = Vec::new();
    for v in ["x\r\ny\r\n", "x\ny\n", "x\nz\n"] {
        let put = c.put("/diff/k", v, None).await.expect("put");
        revs.push(put.header().unwrap().revision());
    }
    let diff = |a: i64, b: i64| {
        let app = &app;
        async move {
            let (status, html) = app
                .get_text(&format!("/clusters/test/history?key=/diff/k&a={a}&b={b}"))
                .await;
            assert_eq!(status, 200, "{html}");
            html
        }
    };
    let html = diff(revs[0], revs[1]).await;
    assert!(
        html.contains(&format!(
            "The versions differ only in line endings: revision {} has CRLF (\\r\\n) line endings, revision {} LF (\\n) line endings.",
            revs[0], revs[1]
        )),
        "{html}"
    );
    let html = diff(revs[1], revs[2]).await;
    assert!(!html.contains("differ only"), "{html}");
    assert!(
        html.contains("<span class=\"dl del\"><span class=\"sign\">-</span>y</span>")
            && html.contains("<span class=\"dl add\"><span class=\"sign\">+</span>z</span>"),
        "{html}"
    );
}

/// A put that names a lease etcd does not have is the request's mistake: 400, not 502.
#[tokio::test]
async fn a_put_with_a_lease_that_does_not_exist_is_a_400() {
    let app = spawn_app().await;
    let (status, body) = put(
        &app,
        &json!({"key": "/nolease", "value": "v", "expected_mod_revision": 0, "lease": 12345}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("lease not found"),
        "{body}"
    );
}
