//! Keys and values are attacker-controlled input (issue #6): markup and script in them render as
//! text in a real Chromium on every page that shows them, and no script runs. The CSP forbids
//! inline script anyway, so these tests also read the raw HTML: it must be escaped, so the pages
//! are safe without the CSP too (an old browser, a proxy that drops the header).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;

use etcdboard::domain::key::percent_encode_query;

use crate::helpers::{spawn_app_with, AppOptions, TestApp};
use crate::support_browser::Browser;

const SCRIPT: &str = "<script>window.__xss=1</script>";
const IMG: &str = r#"<img src=x onerror="window.__xss=1">"#;
const SVG: &str = r#""><svg onload=window.__xss=1>"#;
const LINK: &str = r#"<a href="javascript:window.__xss=1">click</a>"#;
const TEMPLATE: &str = "{{7*7}}";

/// Markup that must never reach a page unescaped.
const UNESCAPED: &[&str] = &[
    "<script>window.__xss",
    "<img src=x onerror",
    "<svg onload",
    "<a href=\"javascript:",
    "href=\"javascript:",
    "href='javascript:",
];

fn all_markup() -> String {
    format!("{SCRIPT}{IMG}{SVG}{LINK}{TEMPLATE}")
}

/// Seeds keys and values full of markup, straight into etcd (not through etcdboard's API).
async fn seed(app: &TestApp) -> Vec<Vec<u8>> {
    let json_value = json!({
        "html": SCRIPT, "img": IMG, "svg": SVG, "link": "javascript:window.__xss=1", "tmpl": TEMPLATE,
    })
    .to_string();
    let yaml_value = format!(
        "html: \"{}\"\nimg: '{IMG}'\nlink: javascript:window.__xss=1\ntmpl: \"{TEMPLATE}\"\n",
        SCRIPT
    );
    let mut non_utf8 = b"\xff\xfe".to_vec();
    non_utf8.extend_from_slice(SCRIPT.as_bytes());
    non_utf8.push(0);
    let kvs: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"/xss/a.html".to_vec(), all_markup().into_bytes()),
        (b"/xss/b.json".to_vec(), json_value.into_bytes()),
        (b"/xss/c.yaml".to_vec(), yaml_value.into_bytes()),
        (b"/xss/d.bin".to_vec(), non_utf8),
        (
            format!("/xss/{IMG}").into_bytes(),
            all_markup().into_bytes(),
        ),
        (
            format!("/xss/{SVG}").into_bytes(),
            all_markup().into_bytes(),
        ),
        (b"/xss/javascript:window.__xss=1".to_vec(), b"j".to_vec()),
        (
            format!("/xss/{TEMPLATE}").into_bytes(),
            TEMPLATE.as_bytes().to_vec(),
        ),
    ];
    app.put_all(&kvs).await;
    // A key with markup in its name (a `/` inside, so it is a directory level too) and a lease,
    // for the leases page.
    let mut c = app.client().await;
    let lease = c.lease_grant(600, None).await.unwrap().id();
    c.put(
        format!("/xss/{SCRIPT}"),
        all_markup(),
        Some(etcd_client::PutOptions::new().with_lease(lease)),
    )
    .await
    .unwrap();
    kvs.into_iter().map(|(k, _)| k).collect()
}

/// Reads a page's raw HTML the way any client would and checks every markup is escaped.
async fn assert_raw_html_escaped(app: &TestApp, path: &str, fragment: bool) {
    let mut req = app.http.get(app.url(path));
    if fragment {
        req = req.header("hx-request", "true");
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let html = resp.text().await.expect("body");
    for bad in UNESCAPED {
        assert!(
            !html.contains(bad),
            "{path} ({status}): the raw HTML contains unescaped `{bad}`"
        );
    }
}

/// Opens a page in the browser, lets htmx finish, and checks no script ran; returns what the page
/// shows (its text plus the values of its text fields).
async fn open_and_check(b: &Browser, app: &TestApp, path: &str) -> String {
    b.goto(&app.url(path)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        b.js("return typeof window.__xss;").await,
        json!("undefined"),
        "{path}: injected script ran"
    );
    assert!(
        b.alert_open().await.is_none(),
        "{path}: a dialog opened (injected script ran)"
    );
    let injected = b
        .js("return Array.from(document.querySelectorAll('img[src=\"x\"], svg[onload], [onerror], [onload], a[href^=\"javascript:\"]')).map(e => e.outerHTML);")
        .await;
    assert_eq!(
        injected,
        json!([]),
        "{path}: markup from the data became elements"
    );
    let shown = b
        .js("return document.body.innerText + '\\n' + Array.from(document.querySelectorAll('textarea, input')).map(e => e.value).join('\\n');")
        .await;
    shown.as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_keys_and_values_is_shown_as_text_on_every_page_and_never_runs() {
    let b =
        Browser::start("markup_in_keys_and_values_is_shown_as_text_on_every_page_and_never_runs")
            .await;
    let app = spawn_app_with(AppOptions {
        members: 1,
        ..AppOptions::default()
    })
    .await;
    seed(&app).await;
    let k = |key: &str| percent_encode_query(key.as_bytes());
    let img_key = k(&format!("/xss/{IMG}"));
    let svg_key = k(&format!("/xss/{SVG}"));
    let script_key = k(&format!("/xss/{SCRIPT}"));

    let r = b
        .attempt(async {
            // (page, texts it must show literally)
            let pages: Vec<(String, Vec<String>)> = vec![
                (
                    "/clusters/test/keys?prefix=/xss/".into(),
                    vec![IMG.into(), "<script>window.__xss=1<".into()],
                ),
                (
                    "/clusters/test/keys?mode=flat&prefix=/xss/".into(),
                    vec![
                        format!("/xss/{IMG}"),
                        format!("/xss/{SVG}"),
                        format!("/xss/{TEMPLATE}"),
                    ],
                ),
                (
                    "/clusters/test/keys?key=/xss/a.html".into(),
                    vec![SCRIPT.into(), IMG.into(), LINK.into(), TEMPLATE.into()],
                ),
                (
                    "/clusters/test/keys?key=/xss/b.json".into(),
                    vec![TEMPLATE.into(), "javascript:window.__xss=1".into()],
                ),
                (
                    "/clusters/test/keys?key=/xss/c.yaml".into(),
                    vec![SCRIPT.into(), "javascript:window.__xss=1".into()],
                ),
                ("/clusters/test/keys?key=/xss/d.bin".into(), vec![]),
                (
                    format!("/clusters/test/keys?key={img_key}"),
                    vec![format!("/xss/{IMG}"), SCRIPT.into()],
                ),
                (
                    format!("/clusters/test/keys?key={svg_key}"),
                    vec![format!("/xss/{SVG}")],
                ),
                (
                    format!("/clusters/test/keys?key={script_key}"),
                    vec![format!("/xss/{SCRIPT}")],
                ),
                (
                    format!("/clusters/test/edit?key={img_key}"),
                    vec![all_markup()],
                ),
                (
                    "/clusters/test/edit?key=/xss/b.json".into(),
                    vec![TEMPLATE.into()],
                ),
                (format!("/clusters/test/history?key={svg_key}"), vec![]),
                (
                    "/clusters/test/leases".into(),
                    vec![format!("/xss/{SCRIPT}")],
                ),
                ("/clusters/test/transfer?prefix=/xss/".into(), vec![]),
                (
                    format!(
                        "/clusters/test/keys?mode=flat&q={}",
                        k(&format!("/xss/{IMG}"))
                    ),
                    vec![],
                ),
                (
                    format!(
                        "/clusters/test/keys?mode=flat&q={}&go=prefix",
                        k(&format!("/xss/{SCRIPT}"))
                    ),
                    vec![],
                ),
                (
                    format!("/clusters/test/keys?key=/xss/missing{}", k(SCRIPT)),
                    vec![],
                ),
                (format!("/clusters/test/nope{}", k(SCRIPT)), vec![]),
                (format!("/clusters/{}/keys", k(SCRIPT)), vec![]),
                ("/clusters/test".into(), vec![]),
                ("/clusters".into(), vec![]),
            ];
            for (path, expected) in &pages {
                let shown = open_and_check(&b, &app, path).await;
                for text in expected {
                    assert!(
                        shown.contains(text.as_str()),
                        "{path}: the page does not show {text:?} literally; it shows:\n{shown}"
                    );
                }
                assert_raw_html_escaped(&app, path, false).await;
            }
            // htmx fragments, as the page fetches them.
            for path in [
                "/clusters/test/ui/nodes?prefix=/xss/".to_string(),
                "/clusters/test/ui/nodes?prefix=/xss/&mode=flat".to_string(),
                format!("/clusters/test/ui/key?key={img_key}"),
                "/clusters/test/ui/key?key=/xss/a.html".to_string(),
                "/clusters/test/ui/key?key=/xss/d.bin".to_string(),
                format!("/clusters/test/ui/edit?key={svg_key}"),
                format!("/clusters/test/ui/key?key=/xss/missing{}", k(SCRIPT)),
            ] {
                assert_raw_html_escaped(&app, &path, true).await;
            }
        })
        .await;
    b.finish(r).await;
}
