//! etcdboard behind a real nginx under a path prefix (`--base-path /etcd`), as behind a Kubernetes
//! ingress: every page, asset, fragment and API call must work through the proxy, and nothing may
//! point outside the prefix.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{b64, pct, spawn_app_with, AppOptions, TestApp};
use crate::support_browser::Browser;
use crate::support_nginx::Nginx;

const PREFIX: &str = "/etcd";

/// Attributes that carry URLs of ours.
const URL_ATTRS: &[&str] = &[
    "href",
    "src",
    "action",
    "hx-get",
    "hx-post",
    "hx-put",
    "hx-delete",
    "hx-patch",
    "hx-push-url",
    "data-children-url",
    "data-more-url",
];

async fn start() -> (TestApp, Nginx) {
    let app = spawn_app_with(AppOptions {
        base_path: PREFIX.into(),
        ..Default::default()
    })
    .await;
    etcdboard::etcd::seed::seed_endpoints(&app.etcd.client_urls(), 1000, |_, _| {})
        .await
        .expect("seed demo data");
    let nginx = Nginx::start(PREFIX, app.addr).await;
    (app, nginx)
}

/// Decodes the character references askama writes into attribute values.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `(attribute, value)` in `html` for the attribute `name` (values unescaped). Our
/// templates always quote attribute values with `"`.
fn attr_values(html: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = html[from..].find(&needle) {
        let start = from + at + needle.len();
        let Some(len) = html[start..].find('"') else {
            break;
        };
        out.push(unescape(&html[start..start + len]));
        from = start + len;
    }
    out
}

/// The values of `<option value="…">`.
fn option_values(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = html[from..].find("<option value=\"") {
        let start = from + at + "<option value=\"".len();
        let Some(len) = html[start..].find('"') else {
            break;
        };
        out.push(unescape(&html[start..start + len]));
        from = start + len;
    }
    out
}

/// All URLs in a document, tagged with the attribute they came from.
fn urls_in(html: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for name in URL_ATTRS {
        for v in attr_values(html, name) {
            out.push((*name, v));
        }
    }
    for v in option_values(html) {
        out.push(("option value", v));
    }
    out
}

/// Nothing in `html` leaves the prefix or bypasses the proxy.
fn assert_all_under_prefix(what: &str, html: &str, app: &TestApp) {
    for (attr, url) in urls_in(html) {
        let ours_rel = url.starts_with(&format!("{PREFIX}/"));
        assert!(
            ours_rel,
            "{what}: {attr}=\"{url}\" is not a path under {PREFIX}/ (it must be, behind the ingress)"
        );
    }
    for needle in ["/static/", "/clusters/", "/api/", "/ui/", "/go?"] {
        for quote in ['"', '\''] {
            let bad = format!("{quote}{needle}");
            assert!(
                !html.contains(&bad),
                "{what}: references {needle} without the {PREFIX} prefix: …{}…",
                context(html, &bad)
            );
        }
    }
    let direct = app.addr.to_string();
    assert!(
        !html.contains(&direct),
        "{what}: names the app's own address {direct}, bypassing the ingress"
    );
}

fn context<'a>(html: &'a str, needle: &str) -> &'a str {
    let at = html.find(needle).unwrap_or(0);
    let start = html[..at]
        .char_indices()
        .rev()
        .nth(80)
        .map_or(0, |(i, _)| i);
    let end = html[at..]
        .char_indices()
        .nth(120)
        .map_or(html.len(), |(i, _)| at + i);
    &html[start..end]
}

/// Fails unless `body`, fetched as `url` through the proxy, is what etcdboard itself answers.
async fn assert_unchanged_by_proxy(app: &TestApp, url: &str, body: &[u8]) {
    let direct = app
        .http
        .get(format!("http://{}{url}", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.bytes().await.unwrap().as_ref(), body, "{url}");
}

/// Fetches through nginx and returns status, content type and body.
async fn fetch(
    http: &reqwest::Client,
    nginx: &Nginx,
    path: &str,
    fragment: bool,
) -> (u16, String, Vec<u8>) {
    let mut req = http.get(nginx.url(path));
    if fragment {
        req = req.header("HX-Request", "true");
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} through nginx: {e}"));
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.bytes().await.expect("body").to_vec();
    (status, ctype, body)
}

async fn fetch_html(http: &reqwest::Client, nginx: &Nginx, path: &str, fragment: bool) -> String {
    let (status, ctype, body) = fetch(http, nginx, path, fragment).await;
    let body = String::from_utf8(body).expect("HTML is UTF-8");
    assert_eq!(status, 200, "GET {path} through nginx: {body}");
    assert!(
        ctype.starts_with("text/html"),
        "GET {path}: content type {ctype}"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_asset_and_api_call_works_through_nginx_under_a_prefix() {
    let (app, nginx) = start().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let no_redirects = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The entry point redirects within the prefix, and following it lands on the key browser.
    let resp = no_redirects.get(nginx.url("/etcd/")).send().await.unwrap();
    assert!(
        resp.status().is_redirection(),
        "GET /etcd/: {}",
        resp.status()
    );
    let location = resp.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        location.starts_with("/etcd/clusters/test/keys")
            || location.starts_with(&nginx.url("/etcd/clusters/test/keys")),
        "GET /etcd/ redirects to {location}"
    );
    for entry in ["/etcd/", "/etcd"] {
        let resp = http.get(nginx.url(entry)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "GET {entry} (following redirects)");
        let landed = resp.url().clone();
        assert_eq!(
            landed.path(),
            "/etcd/clusters/test/keys",
            "GET {entry} landed on {landed}"
        );
        assert_eq!(
            landed.port(),
            Some(nginx.addr.port()),
            "GET {entry} left the proxy: {landed}"
        );
    }

    let home_path = location
        .trim_start_matches(&format!("http://{}", nginx.addr))
        .to_string();
    let home = fetch_html(&http, &nginx, &home_path, false).await;
    assert!(home.contains("class=\"tree\""), "the key browser page");

    // Documents to inspect: the page, the fragments htmx and app.js load, a deep link with a
    // truncated value, the flat list.
    let mut docs: Vec<(String, String)> = vec![(home_path.clone(), home.clone())];
    let root_children = attr_values(&home, "data-children-url")
        .into_iter()
        .next()
        .expect("the root level has a directory with data-children-url");
    let more = attr_values(&home, "data-more-url")
        .into_iter()
        .next()
        .expect("1000 flat keys make the root level page");
    for url in [&root_children, &more] {
        let frag = fetch_html(&http, &nginx, url, true).await;
        assert!(
            frag.trim_start().starts_with("<li"),
            "fragment {url} is <li> rows: {frag}"
        );
        docs.push((url.clone(), frag));
    }
    let deep = "/etcd/clusters/test/keys?key=/big/value.txt".to_string();
    let deep_html = fetch_html(&http, &nginx, &deep, false).await;
    let load_all = attr_values(&deep_html, "hx-get")
        .into_iter()
        .find(|u| u.contains("full=1"))
        .expect("a truncated value has a load-all link");
    docs.push((deep.clone(), deep_html));
    let config_view = "/etcd/clusters/test/ui/key?key=/app/team-a/config.json".to_string();
    for url in [&load_all, &config_view] {
        let frag = fetch_html(&http, &nginx, url, true).await;
        assert!(
            frag.contains("<article class=\"key\""),
            "key view {url}: {frag}"
        );
        docs.push((url.clone(), frag));
    }
    let flat = format!(
        "/etcd/clusters/test/keys?mode=flat&prefix={}",
        pct(b"/app/")
    );
    docs.push((flat.clone(), fetch_html(&http, &nginx, &flat, false).await));
    let odd = format!(
        "/etcd/clusters/test/keys?key={}",
        pct(etcdboard::etcd::seed::NON_UTF8_KEY)
    );
    docs.push((odd.clone(), fetch_html(&http, &nginx, &odd, false).await));

    let mut checked = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for (doc, html) in &docs {
        assert_all_under_prefix(doc, html, &app);
        for (attr, url) in urls_in(html) {
            kinds.insert(attr);
            // A form's action is checked by submitting the form (below), not bare.
            if attr == "action" || !checked.insert(url.clone()) {
                continue;
            }
            let fragment = attr == "hx-get" || attr.starts_with("data-");
            let (status, ctype, body) = fetch(&http, &nginx, &url, fragment).await;
            assert_eq!(
                status,
                200,
                "{attr}=\"{url}\" (from {doc}) through nginx: {}",
                String::from_utf8_lossy(&body)
            );
            if url.starts_with("/etcd/static/") {
                let path = url.split('?').next().unwrap();
                if path.ends_with(".css") {
                    assert!(ctype.starts_with("text/css"), "{url}: {ctype}");
                } else if path.ends_with(".js") {
                    assert!(
                        ctype.starts_with("text/javascript")
                            || ctype.starts_with("application/javascript"),
                        "{url}: {ctype}"
                    );
                }
                // The proxy hands over the asset unchanged.
                assert_unchanged_by_proxy(&app, &url, &body).await;
            } else if url.starts_with("/etcd/api/v1/clusters/test/value?") {
                // A value's download: its bytes, unchanged by the proxy.
                assert_eq!(ctype, "application/octet-stream", "{url}");
                assert_unchanged_by_proxy(&app, &url, &body).await;
            } else {
                assert!(ctype.starts_with("text/html"), "{attr}=\"{url}\": {ctype}");
            }
        }
    }
    for kind in [
        "href",
        "src",
        "action",
        "hx-get",
        "hx-push-url",
        "data-children-url",
        "data-more-url",
        "option value",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} URL was checked (kinds seen: {kinds:?})"
        );
    }
    let statics: Vec<&String> = checked
        .iter()
        .filter(|u| u.starts_with("/etcd/static/"))
        .collect();
    for asset in ["app.css", "app.js", "htmx.min.js"] {
        assert!(
            statics
                .iter()
                .any(|u| u.split('?').next().unwrap().ends_with(asset)),
            "{asset} is referenced by the page: {statics:?}"
        );
    }
    eprintln!("checked {} distinct URLs through nginx", checked.len());

    // The cluster picker without JavaScript: /go only redirects to our own pages, in the prefix.
    let option = option_values(&home)
        .into_iter()
        .next()
        .expect("a picker option");
    let resp = no_redirects
        .get(nginx.url(&format!("/etcd/go?to={}", pct(option.as_bytes()))))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_redirection(),
        "/etcd/go: {}",
        resp.status()
    );
    assert_eq!(
        resp.headers()[reqwest::header::LOCATION].to_str().unwrap(),
        option
    );

    // The search form, submitted as the browser does: both buttons.
    let search = attr_values(&home, "action")
        .into_iter()
        .find(|a| a.ends_with("/keys"))
        .expect("the search form");
    let jump = format!(
        "{search}?mode=tree&q={}&go=key",
        pct(b"/app/team-a/config.json")
    );
    let html = fetch_html(&http, &nginx, &jump, false).await;
    assert!(html.contains("<article class=\"key\""), "jump: {html}");
    assert_all_under_prefix(&jump, &html, &app);
    let filter = format!("{search}?mode=tree&q={}&go=prefix", pct(b"/services/"));
    let html = fetch_html(&http, &nginx, &filter, false).await;
    assert_all_under_prefix(&filter, &html, &app);

    // The JSON API through the proxy.
    let (status, ctype, body) = fetch(&http, &nginx, "/etcd/api/v1/clusters", false).await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let clusters: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(clusters[0]["name"], json!("test"), "{clusters}");
    assert_eq!(clusters.as_array().unwrap().len(), 1);

    let (status, _, body) = fetch(
        &http,
        &nginx,
        "/etcd/api/v1/clusters/test/keys?prefix=/",
        false,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let page: Value = serde_json::from_slice(&body).unwrap();
    let items: Vec<(String, bool)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key_b64"].as_str().unwrap().to_string(),
                i["dir"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(items.contains(&(b64(b"/app/"), true)), "{page}");
    assert!(items.contains(&(b64(b"/services/"), true)), "{page}");
    assert_eq!(page["next"], Value::Null, "{page}");

    let path = format!(
        "/etcd/api/v1/clusters/test/key?key={}",
        pct(b"/app/team-b/config.json")
    );
    let (status, _, body) = fetch(&http, &nginx, &path, false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let key: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(key["key"], json!("/app/team-b/config.json"));
    assert_eq!(
        key["value"],
        json!(r#"{"service":"search","replicas":2,"index":{"shards":4,"refresh":"1s"}}"#)
    );
    let path = format!(
        "/etcd/api/v1/clusters/test/key?key={}",
        pct(etcdboard::etcd::seed::NON_UTF8_KEY)
    );
    let (status, _, body) = fetch(&http, &nginx, &path, false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let key: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        key["key_b64"],
        json!(b64(etcdboard::etcd::seed::NON_UTF8_KEY))
    );

    // Unknown paths under the prefix are the app's 404 page, still inside the prefix.
    let (status, _, body) = fetch(&http, &nginx, "/etcd/no/such/page", false).await;
    assert_eq!(status, 404);
    assert_all_under_prefix("the 404 page", &String::from_utf8_lossy(&body), &app);

    assert!(
        nginx.access_log().lines().count() >= checked.len(),
        "requests went through nginx"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_works_through_nginx_under_a_prefix() {
    let b = Browser::start("the_browser_works_through_nginx_under_a_prefix").await;
    let (app, nginx) = start().await;

    let r = b
        .attempt(async {
            b.goto(&nginx.url("/etcd/")).await;
            let landed = b.url().await;
            assert_eq!(landed.path(), "/etcd/clusters/test/keys", "landed on {landed}");
            b.js("window.__etcdboardNoReload = 'same document';").await;

            b.click_row("/").await;
            b.click_row("app/").await;
            b.click_row("team-a/").await;
            b.click_row("config.json").await;
            b.wait_text("#keyview h1.key-path", "/app/team-a/config.json").await;
            b.wait_for("#keyview .t-key").await;
            let value = b.text_content("#keyview #value-text").await.unwrap();
            assert!(value.contains("\"service\": \"checkout\""), "{value}");
            assert_eq!(
                b.js("return window.__etcdboardNoReload === 'same document';").await,
                json!(true),
                "htmx/app.js did the work in place"
            );
            let url = b.url().await;
            assert_eq!(url.path(), "/etcd/clusters/test/keys", "the pushed URL stays in the prefix: {url}");
            assert_eq!(url.port(), Some(nginx.addr.port()));

            // Load more at the root level (1000 flat keys) goes through the prefix too.
            let before = b.visible_labels().await.len();
            b.wait_for(".tree > li.more a.more-link").await.click().await.unwrap();
            b.wait_js(
                &format!(
                    "return Array.from(document.querySelectorAll('.tree a.row .name')).filter(r => r.getClientRects().length > 0).length > {before};"
                ),
                "load more to add rows",
            )
            .await;

            // No request of the page failed or left the prefix.
            let outside = b
                .js("return performance.getEntriesByType('resource').map(e => new URL(e.name))\
                       .filter(u => !u.pathname.startsWith('/etcd/')).map(u => u.href);")
                .await;
            assert_eq!(outside, json!([]), "requests outside the prefix");
            let errors = b.js("return Array.from(document.querySelectorAll('.banner.error, li.error')).map(e => e.textContent);").await;
            assert_eq!(errors, json!([]));

            // The pushed URL opens the same key through the proxy.
            b.goto(url.as_str()).await;
            b.wait_text("#keyview h1.key-path", "/app/team-a/config.json").await;
        })
        .await;
    drop((app, nginx));
    b.finish(r).await;
}

#[tokio::test]
async fn live_updates_stream_through_nginx_without_buffering() {
    let (app, nginx) = start().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut resp = http
        .get(nginx.url("/etcd/api/v1/clusters/test/watch?prefix=/sse/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut seen = String::new();
    let (needle, deadline) = (
        "event: ready",
        std::time::Instant::now() + Duration::from_secs(5),
    );
    while !seen.contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no `ready` through nginx: {seen:?}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
            .await
            .expect("a chunk within 5 s")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let mut c = app.client().await;
    c.put("/sse/x", "1", None).await.unwrap();
    let put_at = std::time::Instant::now();
    while !(seen.contains("event: change") && seen.contains("\"/sse/x\"")) {
        assert!(
            put_at.elapsed() < Duration::from_secs(3),
            "the change did not come through nginx within 3 s: {seen:?}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(3), resp.chunk())
            .await
            .expect("a chunk within 3 s (nginx must not buffer the stream)")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}
