//! The JSON API against a real 3-member etcd.

use std::time::Duration;

use crate::helpers::{b64, b64url, pct, spawn_app};

fn keys_of(items: &[(String, bool)]) -> Vec<(Vec<u8>, bool)> {
    use base64::Engine;
    items
        .iter()
        .map(|(k, d)| {
            (
                base64::engine::general_purpose::STANDARD
                    .decode(k)
                    .expect("b64"),
                *d,
            )
        })
        .collect()
}

#[tokio::test]
async fn tree_and_flat_listings_show_keys_without_slash_double_slashes_and_empty_segments() {
    let app = spawn_app().await;
    let keys: Vec<&[u8]> = vec![
        b"noslash", b"top", b"/a/", b"/a/b", b"/a/b/c", b"/a//c", b"//x", b"/z",
    ];
    app.put_all(&keys.iter().map(|k| (*k, b"v")).collect::<Vec<_>>())
        .await;

    let root = keys_of(&app.list_all("mode=tree").await);
    assert_eq!(
        root,
        vec![
            (b"/".to_vec(), true),
            (b"noslash".to_vec(), false),
            (b"top".to_vec(), false)
        ]
    );

    let slash = keys_of(&app.list_all("mode=tree&prefix=/").await);
    assert_eq!(
        slash,
        vec![
            (b"//".to_vec(), true),
            (b"/a/".to_vec(), true),
            (b"/z".to_vec(), false)
        ]
    );

    let a = keys_of(&app.list_all("mode=tree&prefix=/a/").await);
    assert_eq!(
        a,
        vec![
            (b"/a/".to_vec(), false),
            (b"/a//".to_vec(), true),
            (b"/a/b".to_vec(), false),
            (b"/a/b/".to_vec(), true)
        ]
    );

    let mut sorted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    sorted.sort();
    let flat: Vec<Vec<u8>> = keys_of(&app.list_all("mode=flat&limit=3").await)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(flat, sorted);
}

#[tokio::test]
async fn non_utf8_keys_and_values_round_trip_byte_exact() {
    let app = spawn_app().await;
    let key: &[u8] = b"/bin/\xff\x00\xfe key";
    let value: Vec<u8> = (0u8..=255).collect();
    app.put_all(&[(key, value.as_slice())]).await;

    let (status, page) = app
        .get_json(&format!(
            "/api/v1/clusters/test/keys?mode=flat&prefix_b64={}",
            b64url(b"/bin/")
        ))
        .await;
    assert_eq!(status, 200);
    let item = &page["items"][0];
    assert!(
        item["key"].is_null(),
        "a non-UTF-8 key has no text form: {item}"
    );
    assert_eq!(item["key_b64"], b64(key));

    for query in [
        format!("key_b64={}", b64url(key)),
        format!("key={}", pct(key)),
        format!(
            "key_b64={}",
            b64(key).replace('+', "%2B").replace('/', "%2F")
        ),
    ] {
        let (status, body) = app
            .get_json(&format!("/api/v1/clusters/test/key?{query}"))
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["key_b64"], b64(key));
        assert_eq!(body["value_b64"], b64(&value));
        assert!(
            body.get("value").is_none(),
            "binary values have no text form"
        );
    }
}

/// A value downloads as its exact bytes, named after the key; the key view links to it.
#[tokio::test]
async fn a_value_downloads_byte_exact_from_the_key_view() {
    let app = spawn_app().await;
    let key: &[u8] = b"/certs/\xff/ca.pem";
    let value: Vec<u8> = (0u8..=255).rev().collect();
    app.put_all(&[(key, value.as_slice())]).await;

    let (status, page) = app
        .get_text(&format!("/clusters/test/ui/key?key={}", pct(key)))
        .await;
    assert_eq!(status, 200, "{page}");
    let href = page
        .split("class=\"btn small download\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a download link")
        .replace("&#38;", "&");
    let resp = app.http.get(app.url(&href)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"ca.pem\""
    );
    let (_, meta) = app
        .get_json(&format!("/api/v1/clusters/test/key?key={}", pct(key)))
        .await;
    assert_eq!(
        headers["x-etcd-mod-revision"].to_str().unwrap(),
        meta["mod_revision"].to_string()
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), value.as_slice());

    let resp = app
        .http
        .get(app.url("/api/v1/clusters/test/value?key=/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn utf8_values_come_back_as_text_with_metadata_and_lease_ttl() {
    let app = spawn_app().await;
    let mut c = app.client().await;
    let lease = c.lease_grant(120, None).await.expect("lease").id();
    c.put(
        "/svc/web",
        "{\"port\": 80}",
        Some(etcd_client::PutOptions::new().with_lease(lease)),
    )
    .await
    .expect("put");
    c.put(
        "/svc/web",
        "{\"port\": 81}",
        Some(etcd_client::PutOptions::new().with_lease(lease)),
    )
    .await
    .expect("put");
    let (status, body) = app.get_json("/api/v1/clusters/test/key?key=/svc/web").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], "{\"port\": 81}");
    assert_eq!(body["version"], 2);
    assert!(body["mod_revision"].as_i64().unwrap() > body["create_revision"].as_i64().unwrap());
    assert_eq!(body["lease"], lease);
    let ttl = body["ttl"].as_i64().expect("ttl");
    assert!((100..=120).contains(&ttl), "ttl {ttl}");
    assert_eq!(body["stale"], false);
}

#[tokio::test]
async fn pages_of_one_listing_are_read_at_one_revision_while_writes_happen() {
    let app = spawn_app().await;
    let original: Vec<(String, String)> = (0..350)
        .map(|i| (format!("/p/{i:03}"), "v".to_string()))
        .collect();
    app.put_all(&original).await;
    let mut c = app.client().await;

    let (_, first) = app
        .get_json("/api/v1/clusters/test/keys?mode=flat&prefix=/p/&limit=100")
        .await;
    let revision = first["revision"].as_i64().expect("revision");
    let mut seen: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    let mut after = first["next"].as_str().expect("next").to_string();
    let mut n = 0;
    loop {
        // Someone writes between pages: new keys, deleted keys, changed keys.
        c.put(format!("/p/{n:03}x"), "new", None).await.unwrap();
        c.delete(format!("/p/{:03}", 340 - n), None).await.unwrap();
        n += 1;
        let (status, page) = app
            .get_json(&format!(
                "/api/v1/clusters/test/keys?mode=flat&prefix=/p/&limit=100&after={after}"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            page["revision"], revision,
            "every page is read at the first page's revision"
        );
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["key"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    let expected: Vec<String> = original.into_iter().map(|(k, _)| k).collect();
    assert_eq!(seen, expected);
}

/// Kubernetes compacts every 5 minutes, so a page left open that long asks for its next page at
/// a revision etcd no longer has. The API says so (410); the page goes on from the same key at
/// the current revision and says what that means.
#[tokio::test]
async fn load_more_after_the_listings_revision_was_compacted_goes_on_from_there() {
    let app = spawn_app().await;
    let keys: Vec<(String, String)> = (0..250)
        .map(|i| (format!("/p/{i:03}"), "v".to_string()))
        .collect();
    app.put_all(&keys).await;
    let (status, first) = app
        .get_text("/clusters/test/ui/nodes?mode=flat&prefix=/p/")
        .await;
    assert_eq!(status, 200, "{first}");
    assert!(
        first.contains("/p/099") && !first.contains("/p/100"),
        "{first}"
    );
    let more = first
        .split("data-more-url=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a load-more link")
        .replace("&#38;", "&");
    let (_, api_first) = app
        .get_json("/api/v1/clusters/test/keys?mode=flat&prefix=/p/&limit=100")
        .await;
    let api_next = api_first["next"].as_str().unwrap().to_string();

    let mut c = app.client().await;
    c.delete("/p/150", None).await.unwrap();
    let now = c.put("/other", "1", None).await.unwrap();
    let now = now.header().unwrap().revision();
    c.compact(now, None).await.unwrap();

    let (status, body) = app
        .get_json(&format!(
            "/api/v1/clusters/test/keys?mode=flat&prefix=/p/&limit=100&after={api_next}"
        ))
        .await;
    assert_eq!(status, 410, "{body}");
    let (status, next) = app.get_text(&more).await;
    assert_eq!(status, 200, "{next}");
    assert!(
        next.contains("has been compacted") && next.contains(&format!("at revision {now}")),
        "{next}"
    );
    assert!(next.contains("/p/100") && next.contains("/p/199"), "{next}");
    assert!(
        !next.contains("/p/150"),
        "read at the current revision: {next}"
    );
    assert!(next.contains("data-more-url"), "and it goes on: {next}");
}

#[tokio::test]
async fn the_indexed_listing_stays_exact_as_keys_come_and_go() {
    let app = spawn_app().await;
    let keys: Vec<(String, String)> = (0..3000)
        .map(|i| (format!("/d{:02}/k{:04}", i % 37, i), "v".into()))
        .collect();
    app.put_all(&keys).await;
    app.wait_for_index().await;
    // Changes after the index was built reach it through the watch.
    let more: Vec<(String, String)> = (0..1500)
        .map(|i| (format!("/d05/new{i:04}"), "v".into()))
        .collect();
    app.put_all(&more).await;
    let mut c = app.client().await;
    c.delete(
        "/d07/",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut all: Vec<String> = keys
        .iter()
        .chain(more.iter())
        .map(|(k, _)| k.clone())
        .filter(|k| !k.starts_with("/d07/"))
        .collect();
    all.sort();
    let flat: Vec<String> = keys_of(&app.list_all("mode=flat&limit=97").await)
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .collect();
    assert_eq!(flat, all);
    let dirs: Vec<String> = keys_of(&app.list_all("mode=tree&prefix=/&limit=5").await)
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .collect();
    let expected: Vec<String> = (0..37)
        .filter(|d| *d != 7)
        .map(|d| format!("/d{d:02}/"))
        .collect();
    assert_eq!(dirs, expected);
}

#[tokio::test]
async fn jumping_to_a_key_starts_the_listing_there() {
    let app = spawn_app().await;
    app.put_all(
        &(1..=500)
            .map(|n| (n.to_string(), n.to_string()))
            .collect::<Vec<_>>(),
    )
    .await;
    let (_, body) = app
        .get_json("/api/v1/clusters/test/keys?mode=flat&start=250&limit=3")
        .await;
    let keys: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["250", "251", "252"]);
    let (_, body) = app
        .get_json(&format!(
            "/api/v1/clusters/test/keys?mode=flat&start_b64={}&limit=2",
            b64url(b"499")
        ))
        .await;
    let keys: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["499", "5"]);
}

#[tokio::test]
async fn errors_are_json_with_the_right_status() {
    let app = spawn_app().await;
    app.put_all(&[("a", "1")]).await;
    let cases = [
        ("/api/v1/clusters/test/key?key=missing", 404),
        ("/api/v1/clusters/nope/keys", 404),
        ("/api/v1/clusters/nope/key?key=a", 404),
        ("/api/v1/clusters/test/key", 400),
        ("/api/v1/clusters/test/key?key_b64=***", 400),
        ("/api/v1/clusters/test/keys?after=not-a-cursor", 400),
        ("/api/v1/clusters/test/keys?mode=sideways", 400),
        ("/api/v1/clusters/test/keys?limit=0", 400),
    ];
    for (path, want) in cases {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    let (status, html) = app.get_text("/clusters/nope/keys").await;
    assert_eq!(status, 404);
    assert!(
        html.contains("<html") && html.contains("no cluster named"),
        "{html}"
    );
}

#[tokio::test]
async fn the_cluster_list_names_configured_clusters_only() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/v1/clusters").await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["name"], "test");
    assert_eq!(body[0]["endpoints"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn pages_escape_markup_in_keys_and_values() {
    let app = spawn_app().await;
    app.put_all(&[(
        "/xss/<img src=x onerror=alert(1)>",
        "<script>alert(2)</script>",
    )])
    .await;
    let (status, html) = app
        .get_text("/clusters/test/keys?key=/xss/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
        .await;
    assert_eq!(status, 200);
    // askama writes `<` as `&#60;`; either entity form is text to the browser.
    let html = html.replace("&#60;", "&lt;").replace("&#62;", "&gt;");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "key shown as text: {html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "value shown as text"
    );
    assert!(!html.contains("<img src=x") && !html.contains("<script>alert"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    app.put_all(&[("/a", "1")]).await;
    for path in [
        "/clusters/test/keys",
        "/clusters/test",
        "/api/v1/clusters/test/keys",
        "/static/app.js",
        "/clusters/nope/keys",
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
    let (_, html) = app.get_text("/clusters/test/keys").await;
    assert!(
        !html.contains("<script>") && !html.contains(" onclick=") && !html.contains(" style=\""),
        "no inline script or style"
    );
}

/// The anchors of tree listings are one-key ranges `[k, k\0)`; the gateway asks etcd only to count
/// them and answers with the start key when it exists, at the revision asked for.
#[tokio::test]
async fn one_key_ranges_are_answered_from_a_count_at_the_pinned_revision() {
    use etcdboard::domain::key::key_after;
    use etcdboard::domain::listing::{RangeReq, RangeSource};
    let app = spawn_app().await;
    app.put_all(&[("/one/a", "v"), ("/one/b", "v")]).await;
    let cfg = etcdboard::config::ClusterConfig {
        name: "ranges".into(),
        endpoints: app.etcd.client_urls(),
        ..Default::default()
    };
    let gw = etcdboard::etcd::EtcdCluster::new(&cfg, Duration::from_secs(3)).expect("gateway");
    let one = |k: &[u8]| RangeReq {
        start: k.to_vec(),
        end: Some(key_after(k)),
        limit: 1,
    };
    let reqs = vec![
        one(b"/one/a"),
        one(b"/one/ab"),
        one(b"/one/b"),
        RangeReq {
            start: b"/one/".to_vec(),
            end: Some(b"/one0".to_vec()),
            limit: 1,
        },
    ];
    let before = gw.ranges(reqs.clone(), None).await.expect("ranges");
    let keys: Vec<(Vec<Vec<u8>>, u64)> = before
        .responses
        .iter()
        .map(|r| (r.keys.clone(), r.count))
        .collect();
    assert_eq!(
        keys,
        vec![
            (vec![b"/one/a".to_vec()], 1),
            (vec![], 0),
            (vec![b"/one/b".to_vec()], 1),
            (vec![b"/one/a".to_vec()], 2),
        ]
    );
    let mut c = app.client().await;
    c.delete("/one/a", None).await.expect("delete");
    let now = gw.ranges(reqs.clone(), None).await.expect("ranges");
    assert!(now.responses[0].keys.is_empty() && now.responses[0].count == 0);
    let then = gw
        .ranges(reqs, Some(before.revision))
        .await
        .expect("ranges at the old revision");
    assert_eq!(then.responses[0].keys, vec![b"/one/a".to_vec()]);
    assert_eq!(then.revision, before.revision);
}

/// A deep link shows every level on the way to the key, each starting where the key can be seen:
/// from the start when the key is on the level's first page, else from the key behind an
/// "earlier entries" link, whether the first page was read to find out or the index showed it.
#[tokio::test]
async fn a_deep_link_lists_each_level_where_the_key_can_be_seen() {
    let app = spawn_app().await;
    let keys: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("/deep/k{i:04}"), "v".into()))
        .collect();
    app.put_all(&keys).await;
    app.wait_for_index().await;
    let names = |html: &str| -> Vec<String> {
        html.split("<span class=\"name\">")
            .skip(1)
            .filter_map(|s| s.split('<').next())
            .map(str::to_string)
            .collect()
    };
    // k0800: 800 keys before it, which the index shows; k0150: past the first page of 100, which
    // only the first page shows; k0050: on the first page.
    for (target, gap, first) in [
        ("k0800", true, "k0800"),
        ("k0150", true, "k0150"),
        ("k0050", false, "k0000"),
    ] {
        let (status, html) = app
            .get_text(&format!("/clusters/test/keys?key=/deep/{target}"))
            .await;
        assert_eq!(status, 200, "{target}");
        let shown = names(&html);
        let level: Vec<&String> = shown.iter().filter(|n| n.starts_with('k')).collect();
        assert_eq!(level.first().map(|s| s.as_str()), Some(first), "{target}");
        assert_eq!(level.len(), 100, "{target}: one page of the level");
        let from: usize = first[1..].parse().expect("number");
        let expected: Vec<String> = (from..from + 100).map(|i| format!("k{i:04}")).collect();
        assert!(
            level.iter().zip(&expected).all(|(a, b)| *a == b),
            "{target}: {level:?}"
        );
        assert_eq!(
            html.contains("earlier entries"),
            gap,
            "{target}: gap link shown only when the level does not start at its beginning"
        );
        assert_eq!(
            shown[..2],
            ["/", "deep/"],
            "{target}: the levels above, expanded"
        );
    }
}

/// Jumping to a key that does not exist shows where it would be: in a short level, among all its
/// siblings, not behind an "earlier entries" link.
#[tokio::test]
async fn jumping_to_a_missing_key_shows_its_whole_short_level() {
    let app = spawn_app().await;
    app.put_all(&[("/miss/a", "1"), ("/miss/c", "2"), ("/miss/d", "3")])
        .await;
    let (status, html) = app
        .get_text("/clusters/test/keys?mode=tree&q=/miss/b&go=key")
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("No key /miss/b"), "{html}");
    for name in ["a", "c", "d"] {
        assert!(
            html.contains(&format!("<span class=\"name\">{name}</span>")),
            "{name} in {html}"
        );
    }
    assert!(!html.contains("earlier entries"), "{html}");
}

/// Jumping to a directory (typed with or without its trailing separator) opens it in the tree,
/// its row selected, instead of saying there is no such key.
#[tokio::test]
async fn jumping_to_a_directory_opens_it() {
    let app = spawn_app().await;
    let mut pairs = vec![
        ("/jd/app/k1".to_string(), "1".to_string()),
        ("/jd/app/k2".to_string(), "2".to_string()),
        ("/jd/app.bak".to_string(), "3".to_string()),
    ];
    pairs.extend((0..150).map(|i| (format!("/jd/big/{i:03}"), "v".to_string())));
    app.put_all(&pairs).await;
    for (url, dir, children) in [
        (
            "/clusters/test/keys?mode=tree&q=/jd/app&go=key",
            "/jd/app/",
            ["k1", "k2"],
        ),
        (
            "/clusters/test/keys?key=%2Fjd%2Fapp%2F",
            "/jd/app/",
            ["k1", "k2"],
        ),
        (
            "/clusters/test/keys?q=/jd/big&go=key",
            "/jd/big/",
            ["000", "099"],
        ),
    ] {
        let (status, html) = app.get_text(url).await;
        assert_eq!(status, 200, "{url}: {html}");
        assert!(
            html.contains(&format!("{dir} is a directory")),
            "{url}: {html}"
        );
        assert!(!html.contains("No such key"), "{url}: {html}");
        assert!(!html.contains("No key "), "{url}: {html}");
        assert!(!html.contains("earlier entries"), "{url}: {html}");
        assert!(
            html.contains("class=\"row dir selected\""),
            "{url}: the directory's row is selected: {html}"
        );
        for name in children {
            assert!(
                html.contains(&format!("<span class=\"name\">{name}</span>")),
                "{url}: {name} in {html}"
            );
        }
        // Its "flat" tab lists the directory's keys (a prefix filter), not a missing key.
        assert!(
            html.contains(&format!(
                "<a class=\"tab\" href=\"/clusters/test/keys?mode=flat&#38;prefix={dir}\">flat</a>"
            )),
            "{url}: {html}"
        );
    }
    // A name that is neither a key nor a directory still says so.
    let (_, html) = app
        .get_text("/clusters/test/keys?mode=tree&q=/jd/ap&go=key")
        .await;
    assert!(html.contains("No key /jd/ap"), "{html}");
    assert!(!html.contains("is a directory"), "{html}");
}

/// A deep link expands at most 32 levels, so a key of thousands of separators cannot fan one
/// request out into thousands of listings.
#[tokio::test]
async fn a_key_thousands_of_levels_deep_opens_in_a_tree_of_its_last_levels() {
    let app = spawn_app().await;
    let key = format!("{}leaf", "/".repeat(5_000));
    app.put_all(&[(key.clone(), "deep".to_string())]).await;
    let (status, html) = app
        .get_text(&format!(
            "/clusters/test/keys?key={}",
            key.replace('/', "%2F")
        ))
        .await;
    assert_eq!(status, 200, "{html}");
    let expanded = html.matches("aria-expanded=\"true\"").count();
    assert_eq!(
        expanded, 31,
        "the 32 levels above the key: 31 expanded directories in the tree"
    );
    assert!(
        html.contains("<span class=\"name\">leaf</span>"),
        "the key's row"
    );
    assert!(html.contains("deep"), "the key's value");
}

/// On a deep link, the levels above the key show the way to it with a few neighbours each (and
/// "load more"); the key's own level shows a full page.
#[tokio::test]
async fn a_deep_link_shows_a_few_neighbours_on_each_level_above_the_key() {
    let app = spawn_app().await;
    let keys: Vec<(String, String)> = (0..200)
        .flat_map(|d| (0..150).map(move |k| (format!("/anc/d{d:04}/k{k:04}"), "v".to_string())))
        .collect();
    app.put_all(&keys).await;
    app.wait_for_index().await;
    let (status, html) = app
        .get_text("/clusters/test/keys?key=/anc/d0010/k0003")
        .await;
    assert_eq!(status, 200);
    let names: Vec<String> = html
        .split("<span class=\"name\">")
        .skip(1)
        .filter_map(|s| s.split('<').next())
        .map(str::to_string)
        .collect();
    let dirs: Vec<&String> = names.iter().filter(|n| n.starts_with('d')).collect();
    let expected: Vec<String> = (0..20).map(|d| format!("d{d:04}/")).collect();
    assert_eq!(dirs, expected.iter().collect::<Vec<_>>(), "the level above");
    let level: Vec<&String> = names.iter().filter(|n| n.starts_with('k')).collect();
    assert_eq!(level.len(), 100, "the key's own level: a full page");
    assert_eq!(level[3], "k0003");
    assert_eq!(
        html.matches("class=\"row more-link\"").count(),
        2,
        "both long levels go on behind a link"
    );
}

/// Text between `start` and the next `end` in `html`, with tags dropped and character references
/// decoded: what a browser shows there.
fn shown_between(html: &str, start: &str, end: &str) -> Option<String> {
    let from = html.find(start)? + start.len();
    let inner = &html[from..from + html[from..].find(end)?];
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';')?;
        out.push(match &rest[1..end] {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            n => {
                let code = match n.strip_prefix("#x").or_else(|| n.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => n.strip_prefix('#')?.parse().ok()?,
                };
                char::from_u32(code)?
            }
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Keys whose old labels were the same (`\u{0}` for a byte, a literal `\n` for a newline) now
/// have labels of their own, and each label typed into the search box opens its own key again,
/// with the box refilled with that same label.
#[tokio::test]
async fn keys_that_looked_alike_have_their_own_labels_which_the_search_box_opens() {
    let app = spawn_app().await;
    let keys: [&[u8]; 6] = [
        b"/odd/bin-\xff\x00\x01",
        b"/odd/bin-\\xff\\u{0}\\u{1}",
        b"/odd/bin-\\xff\\x00\\x01",
        b"/odd/nl\nline",
        b"/odd/nl\\nline",
        "/odd/é 中 <b>".as_bytes(),
    ];
    app.put_all(&keys.map(|k| (k, b"v"))).await;

    let (status, listing) = app
        .get_text("/clusters/test/keys?mode=flat&prefix=/odd/")
        .await;
    assert_eq!(status, 200, "{listing}");
    let mut rows: Vec<String> = listing
        .split("<span class=\"name\">")
        .skip(1)
        .filter_map(|s| shown_between(s, "", "</span>"))
        .collect();
    rows.sort();
    rows.dedup();
    assert_eq!(
        rows.len(),
        keys.len(),
        "every key has its own label: {rows:?}"
    );
    assert!(
        rows.contains(&r"/odd/bin-\xff\x00\x01".to_string()),
        "{rows:?}"
    );
    assert!(rows.contains(&r"/odd/nl\\nline".to_string()), "{rows:?}");
    assert!(rows.contains(&"/odd/é 中 <b>".to_string()), "{rows:?}");

    for key in keys {
        let (_, view) = app
            .get_text(&format!("/clusters/test/ui/key?key={}", pct(key)))
            .await;
        let label = shown_between(&view, "id=\"key-path\">", "</h1>").expect("key label");
        assert!(rows.contains(&label), "{label:?} in {rows:?}");
        let (status, page) = app
            .get_text(&format!(
                "/clusters/test/keys?mode=tree&q={}&go=key",
                pct(label.as_bytes())
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains(&format!("data-key-b64=\"{}\"", b64(key))),
            "the label {label:?} opens {key:?}"
        );
        let refill = shown_between(&page, "id=\"search-input\" name=\"q\" value=\"", "\"")
            .expect("search box");
        assert_eq!(
            refill, label,
            "the search box is refilled with the same label"
        );
    }
}

/// The JSON view re-indents the stored text but shows every token as written: duplicate keys,
/// escapes and number spellings are not normalised away.
#[tokio::test]
async fn a_json_value_is_shown_with_its_tokens_as_stored() {
    let app = spawn_app().await;
    let stored =
        r#"{"a":1,"a":2,"e":"caf\u00e9","n":[1.0,1e2,123456789012345678901234567890],"o":{}}"#;
    app.put_all(&[("/qa/json", stored)]).await;
    let (status, view) = app.get_text("/clusters/test/ui/key?key=/qa/json").await;
    assert_eq!(status, 200, "{view}");
    assert!(
        view.contains("<span class=\"format\">JSON</span>"),
        "{view}"
    );
    assert_eq!(
        shown_between(&view, "id=\"value-text\">", "</pre>").as_deref(),
        Some(
            "{\n  \"a\": 1,\n  \"a\": 2,\n  \"e\": \"caf\\u00e9\",\n  \"n\": [\n    1.0,\n    1e2,\n    123456789012345678901234567890\n  ],\n  \"o\": {}\n}"
        )
    );
}

/// Text a browser would show with invisible or missing characters is shown as bytes, and says
/// why; CRLF text stays text and says so; plain text is not called YAML.
#[tokio::test]
async fn values_are_labelled_for_what_they_hold() {
    let app = spawn_app().await;
    app.put_all(&[
        ("/qa/ctrl", "bell\x07 esc\x1b[31mred"),
        ("/qa/crlf", "line1\r\nline2\r\n"),
        ("/qa/plain", "hello world\nsecond line"),
        ("/qa/stream", "a: 1\n---\nb: 2\n"),
    ])
    .await;
    let view = |key: &'static str| {
        let app = &app;
        async move {
            let (status, html) = app
                .get_text(&format!("/clusters/test/ui/key?key={key}"))
                .await;
            assert_eq!(status, 200, "{html}");
            (
                shown_between(&html, "<span class=\"format\">", "</span>").unwrap_or_default(),
                shown_between(&html, "<span class=\"format-note\">", "</span>"),
                html,
            )
        }
    };
    let (format, note, html) = view("/qa/ctrl").await;
    assert_eq!(format, "binary");
    assert_eq!(note.as_deref(), Some("UTF-8 text with control characters"));
    assert!(html.contains("62 65 6c 6c 07 20 65 73"), "hex dump: {html}");

    let (format, note, html) = view("/qa/crlf").await;
    assert_eq!(format, "text");
    assert_eq!(note.as_deref(), Some("CRLF line endings"));
    assert!(
        html.contains(&b64(b"line1\r\nline2\r\n")),
        "exact bytes to copy"
    );

    let (format, note, _) = view("/qa/plain").await;
    assert_eq!((format.as_str(), note), ("text", None));
    let (format, _, _) = view("/qa/stream").await;
    assert_eq!(format, "YAML");
}

/// Without JavaScript the copy and delete buttons would do nothing, so they are marked to be
/// hidden then; with it, the copy buttons point at the exact bytes of the key and the value.
#[tokio::test]
async fn the_key_view_buttons_need_javascript_and_copy_exact_bytes() {
    let app = spawn_app().await;
    let key = "/qa/copy\tme".as_bytes();
    app.put_all(&[(key, "exact\r\ntext")]).await;
    let (status, view) = app
        .get_text(&format!("/clusters/test/ui/key?key={}", pct(key)))
        .await;
    assert_eq!(status, 200, "{view}");
    let buttons: Vec<&str> = view
        .split("<button")
        .skip(1)
        .filter_map(|b| b.split('>').next())
        .collect();
    assert!(
        buttons.len() >= 4,
        "copy, copy base64, copy, delete: {buttons:?}"
    );
    for b in &buttons {
        assert!(b.contains("js-only"), "a button that needs JavaScript: {b}");
    }
    assert!(view.contains(r##"data-copy-target="#key-path" data-copy-decode="#key-b64""##));
    assert!(view.contains(r##"data-copy-target="#value-text" data-copy-decode="#value-b64""##));
    assert_eq!(
        shown_between(
            &view,
            "id=\"key-b64\" class=\"sr-only\" readonly tabindex=\"-1\" aria-hidden=\"true\">",
            "</textarea>"
        ),
        Some(b64(key))
    );
    assert_eq!(
        shown_between(
            &view,
            "id=\"value-b64\" class=\"sr-only\" readonly tabindex=\"-1\" aria-hidden=\"true\">",
            "</textarea>"
        ),
        Some(b64(b"exact\r\ntext"))
    );
}

/// Errors that axum itself produces (unknown API route, wrong method, body over the limit) have
/// the API's `{"error": …}` shape too.
#[tokio::test]
async fn every_api_error_is_json_even_those_the_router_makes() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/v1/clusters/test/nonsense").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string(), "{body}");
    let resp = app
        .http
        .patch(app.url("/api/v1/clusters/test/key"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.headers().contains_key("allow"));
    let body: serde_json::Value = resp.json().await.expect("a JSON body");
    assert!(body["error"].as_str().unwrap().contains("PATCH"), "{body}");
    // From a page (Origin, no JSON content type) as well: what is wrong is the method, not how a
    // write is sent.
    let resp = app
        .http
        .post(app.url("/api/v1/clusters/test/members"))
        .header("Origin", format!("http://{}", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET,HEAD");
    let body: serde_json::Value = resp.json().await.expect("a JSON body");
    assert!(body["error"].as_str().unwrap().contains("POST"), "{body}");
    let resp = app
        .http
        .put(app.url("/api/v1/clusters/test/key"))
        .header("content-type", "application/json")
        .body(vec![b' '; 8 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.expect("a JSON body");
    assert!(
        body["error"].as_str().unwrap().contains("larger than"),
        "{body}"
    );
    // An extractor's rejection (a cluster name that is not UTF-8) says what was wrong, as JSON.
    let (status, body) = app.get_json("/api/v1/clusters/%FF/keys").await;
    assert_eq!(status, 400);
    let error = body["error"].as_str().expect("an error text");
    assert!(error.contains("UTF-8") || error.contains("utf-8"), "{body}");
    // Pages keep their error page.
    let (status, html) = app.get_text("/clusters/test/nonsense").await;
    assert_eq!(status, 404);
    assert!(html.contains("<html"), "{html}");
    let (status, html) = app.get_text("/clusters/%FF/keys").await;
    assert_eq!(status, 400);
    assert!(html.contains("<html"), "{html}");
}
