//! The key browser in a real headless Chromium: htmx swaps, app.js behaviour, history, escaping,
//! byte-exact keys. Each test starts its own etcd + app and seeds only what it needs.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::{json, Value};

use etcdboard::domain::key::RawQuery;

use crate::helpers::{b64, pct, spawn_app, TestApp};
use crate::support_browser::Browser;

/// The page of the test cluster's key browser, with an optional query string.
fn keys_url(app: &TestApp, query: &str) -> String {
    if query.is_empty() {
        app.url("/clusters/test/keys")
    } else {
        app.url(&format!("/clusters/test/keys?{query}"))
    }
}

/// The exact bytes of parameter `name` in a URL's query.
fn query_param(url: &reqwest::Url, name: &str) -> Option<Vec<u8>> {
    RawQuery::parse(url.query()).bytes(name).map(<[u8]>::to_vec)
}

const MARK: &str = "window.__etcdboardNoReload = 'same document';";
const MARK_SURVIVED: &str = "return window.__etcdboardNoReload === 'same document';";

async fn assert_same_document(b: &Browser, what: &str) {
    assert_eq!(
        b.js(MARK_SURVIVED).await,
        json!(true),
        "{what} reloaded the page (the marker set on window is gone)"
    );
}

/// Waits until the key view shows `key` (its heading).
async fn wait_key_view(b: &Browser, key_label: &str) {
    b.wait_text("#keyview h1.key-path", key_label).await;
}

async fn value_text(b: &Browser) -> String {
    b.text_content("#keyview #value-text")
        .await
        .expect("the key view has a #value-text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expanding_the_tree_shows_children_and_opening_a_key_shows_its_value() {
    let b =
        Browser::start("expanding_the_tree_shows_children_and_opening_a_key_shows_its_value").await;
    let app = spawn_app().await;
    app.put_all(&[
        (
            "/app/team-a/config.json",
            r#"{"service":"checkout","replicas":3,"features":{"new_cart":true}}"#,
        ),
        (
            "/app/team-a/deploy.yaml",
            "kind: Deployment\nspec:\n  replicas: 3\n",
        ),
        ("/app/team-b/config.json", r#"{"service":"search"}"#),
        ("/other/x", "x"),
    ])
    .await;

    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "")).await;
            assert_eq!(b.visible_labels().await, vec!["/"], "the root level before expanding");
            b.js(MARK).await;
            let history_before = b.js("return history.length;").await;

            b.click_row("/").await;
            b.row("app/").await;
            b.row("other/").await;
            assert_eq!(b.visible_labels().await, vec!["/", "app/", "other/"]);

            b.click_row("app/").await;
            b.row("team-b/").await;
            assert_eq!(b.visible_labels().await, vec!["/", "app/", "team-a/", "team-b/", "other/"]);

            b.click_row("team-a/").await;
            b.row("deploy.yaml").await;
            assert_eq!(
                b.visible_labels().await,
                vec!["/", "app/", "team-a/", "config.json", "deploy.yaml", "team-b/", "other/"]
            );
            let expanded = b
                .js("return Array.from(document.querySelectorAll('.tree li.node[aria-expanded=\"true\"] > a.row .name')).map(n => n.textContent);")
                .await;
            assert_eq!(expanded, json!(["/", "app/", "team-a/"]));
            assert_same_document(&b, "expanding directories").await;

            b.click_row("config.json").await;
            wait_key_view(&b, "/app/team-a/config.json").await;
            b.wait_for("#keyview pre.value .t-key").await;
            assert_eq!(
                value_text(&b).await,
                "{\n  \"service\": \"checkout\",\n  \"replicas\": 3,\n  \"features\": {\n    \"new_cart\": true\n  }\n}",
                "the value is pretty-printed JSON"
            );
            let keys = b
                .js("return Array.from(document.querySelectorAll('#keyview .t-key')).map(n => n.textContent);")
                .await;
            assert_eq!(keys, json!(["\"service\"", "\"replicas\"", "\"features\"", "\"new_cart\""]));
            assert_eq!(b.text("#keyview .format").await, "JSON");

            // The row shows the selection; the rest of the tree is untouched.
            let selected = b.row("config.json").await;
            assert!(
                selected.attr("class").await.unwrap().unwrap_or_default().contains("selected"),
                "the opened key's row is selected"
            );
            b.row("deploy.yaml").await;
            assert_same_document(&b, "opening a key").await;

            // History: a new entry whose URL names the key.
            let url = b.url().await;
            assert_eq!(url.path(), "/clusters/test/keys");
            assert_eq!(
                query_param(&url, "key").as_deref(),
                Some(b"/app/team-a/config.json".as_slice()),
                "the pushed URL {url} names the key"
            );
            let history_after = b.js("return history.length;").await;
            assert_eq!(
                history_after.as_i64(),
                history_before.as_i64().map(|n| n + 1),
                "opening a key pushes one history entry"
            );

            // Back returns to the page without the key.
            b.c().back().await.expect("history back");
            b.wait_js(
                "return !new URLSearchParams(location.search).has('key') && !!document.querySelector('#keyview .placeholder');",
                "Back to show the page without a key",
            )
            .await;
            assert_eq!(b.text_content("#keyview h1.key-path").await, None);
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_the_url_pushed_for_a_key_shows_the_same_tree() {
    let b = Browser::start("reopening_the_url_pushed_for_a_key_shows_the_same_tree").await;
    let app = spawn_app().await;
    app.put_all(&[
        ("/app/team-a/config.json", r#"{"service":"checkout"}"#),
        ("/app/team-a/deploy.yaml", "kind: Deployment\n"),
        ("/app/team-b/config.json", r#"{"service":"search"}"#),
        ("/other/x", "x"),
    ])
    .await;

    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "")).await;
            b.click_row("/").await;
            b.click_row("app/").await;
            b.click_row("team-a/").await;
            b.click_row("config.json").await;
            wait_key_view(&b, "/app/team-a/config.json").await;
            let seen = b.visible_labels().await;
            assert_eq!(
                seen,
                vec![
                    "/",
                    "app/",
                    "team-a/",
                    "config.json",
                    "deploy.yaml",
                    "team-b/",
                    "other/"
                ]
            );
            let pushed = b.url().await.to_string();

            b.goto(&pushed).await;
            wait_key_view(&b, "/app/team-a/config.json").await;
            assert_eq!(
                b.text_content(".tree-pane .filter").await,
                None,
                "reopening {pushed} shows a prefix filter the user never chose"
            );
            assert_eq!(
                b.visible_labels().await,
                seen,
                "reopening {pushed} shows another tree"
            );
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_value_shows_as_hex() {
    let b = Browser::start("a_binary_value_shows_as_hex").await;
    let app = spawn_app().await;
    let blob: Vec<u8> = (0..=255u8).collect();
    app.put_all(&[(b"/bin/blob".to_vec(), blob.clone())]).await;

    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "")).await;
            b.click_row("/").await;
            b.click_row("bin/").await;
            b.click_row("blob").await;
            wait_key_view(&b, "/bin/blob").await;
            let pre = b.wait_for("#keyview pre.value.hex").await;
            let hex = pre.text().await.unwrap();
            let first = hex.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("00000000") && first.contains("00 01 02 03 04 05 06 07"),
                "first hex line: {first:?}"
            );
            assert_eq!(hex.lines().count(), 16, "256 bytes are 16 lines of 16:\n{hex}");
            assert!(hex.contains("f8 f9 fa fb fc fd fe ff"), "{hex}");
            assert_eq!(b.text("#keyview .format").await, "binary");
            let b64_copy = b
                .js("const t = document.querySelector('#keyview textarea#value-b64'); return t ? t.value : null;")
                .await;
            assert_eq!(b64_copy, json!(b64(&blob)), "the base64 copy holds the exact bytes");
        })
        .await;
    b.finish(r).await;
}

/// Captures what the page writes to the clipboard (`window.__copied`), through either of the
/// Clipboard API's writes, instead of the machine's clipboard.
const CAPTURE_CLIPBOARD: &str = r#"
window.__copied = [];
const keep = (t) => { window.__copied.push(t); return Promise.resolve(); };
Object.defineProperty(navigator.clipboard, 'writeText', { value: keep, configurable: true });
Object.defineProperty(navigator.clipboard, 'write', { configurable: true, value: async (items) => {
  for (const it of items) keep(await (await it.getType('text/plain')).text());
} });
return true;"#;

/// Clicks `button` and waits until it says `label` (its flash after a copy).
async fn copy_says(b: &Browser, button: &str, label: &str) {
    b.c()
        .find(Locator::Css(button))
        .await
        .unwrap_or_else(|e| panic!("no {button}: {e}"))
        .click()
        .await
        .unwrap();
    b.wait_text(button, label).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_value_is_not_carried_twice_and_still_copies_exactly() {
    let b = Browser::start("a_large_value_is_not_carried_twice_and_still_copies_exactly").await;
    let mut app = spawn_app().await;
    // 300 KB of every byte value (not UTF-8), and 220 KB of text: both past the 64 KiB shown.
    let blob: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let text: String = (0..8000)
        .map(|i| format!("line {i} of a long text value\n"))
        .collect();
    app.put_all(&[
        (b"/big/blob".to_vec(), blob.clone()),
        (b"/big/text".to_vec(), text.clone().into_bytes()),
    ])
    .await;

    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "key=/big/blob")).await;
            wait_key_view(&b, "/big/blob").await;
            assert_eq!(
                b.js("return document.querySelector('#value-b64') === null && !!document.querySelector('#keyview .banner.info a');")
                    .await,
                json!(true),
                "a value over 64 KiB is shown cut, without its whole base64 in the page"
            );
            let page = b.js("return document.documentElement.outerHTML.length;").await;
            assert!(
                page.as_u64().unwrap() < 900_000,
                "the page carries only the shown part (a 64 KiB hex dump): {page} characters"
            );
            assert_eq!(b.js(CAPTURE_CLIPBOARD).await, json!(true));
            let b64_btn = "#keyview button.copy[data-copy-as='base64']";
            copy_says(&b, b64_btn, "copied").await;
            assert_eq!(
                b.js("return window.__copied;").await,
                json!([b64(&blob)]),
                "copy base64 fetched and copied every byte"
            );

            // Changed behind the page: the copy refuses rather than copy bytes not shown.
            app.put_all(&[(b"/big/blob".to_vec(), b"new".to_vec())]).await;
            b.wait_js(
                "const n = document.querySelector('#keyview .live-note'); \
                 return !!n && n.textContent.includes('Changed by someone else');",
                "the live update marking the view stale",
            )
            .await;
            copy_says(&b, b64_btn, "changed since shown: reload").await;
            assert_eq!(b.js("return window.__copied.length;").await, json!(1));

            b.goto(&keys_url(&app, "key=/big/text")).await;
            wait_key_view(&b, "/big/text").await;
            assert!(
                value_text(&b).await.len() <= 64 * 1024,
                "the text is shown cut"
            );
            assert_eq!(b.js(CAPTURE_CLIPBOARD).await, json!(true));
            copy_says(&b, "#keyview button.copy[data-copy-as='text']", "copied").await;
            assert_eq!(
                b.js("return window.__copied;").await,
                json!([text]),
                "copy gave the whole text, not the part shown"
            );

            // A copy that fails says what the API said, not only its status.
            for i in 0..3 {
                app.etcd.kill(i);
            }
            b.c()
                .find(Locator::Css("#keyview button.copy[data-copy-as='text']"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            b.wait_js(
                "const t = document.querySelector(\"#keyview button.copy[data-copy-as='text']\").textContent; \
                 return t.startsWith('503: no member of cluster `test` answered');",
                "the copy button saying why",
            )
            .await;
        })
        .await;
    b.finish(r).await;
}

/// A directory that cannot be listed says what the server said (here: that no member answered),
/// not only a status code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_expand_says_why() {
    let b = Browser::start("a_failed_expand_says_why").await;
    let mut app = spawn_app().await;
    app.put_all(&[("/app/x", "1"), ("/other/y", "2")]).await;
    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "")).await;
            b.click_row("/").await;
            b.row("other/").await;
            for i in 0..3 {
                app.etcd.kill(i);
            }
            b.click_row("other/").await;
            b.wait_js(
                "const e = document.querySelector('.tree li.error .name'); \
                 return !!e && e.textContent.startsWith('could not load: 503: no member of cluster `test` answered');",
                "an error row with the server's reason",
            )
            .await;
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_link_opens_the_key_with_its_path_expanded() {
    let b = Browser::start("a_deep_link_opens_the_key_with_its_path_expanded").await;
    let app = spawn_app().await;
    app.put_all(&[
        ("/a/b/a.txt", "before"),
        ("/a/b/c.json", r#"{"deep":true}"#),
        ("/a/b/d/e", "below"),
        ("/a/z.txt", "after"),
        ("/x/y", "elsewhere"),
    ])
    .await;

    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "key=/a/b/c.json")).await;
            wait_key_view(&b, "/a/b/c.json").await;
            assert_eq!(value_text(&b).await, "{\n  \"deep\": true\n}");

            let selected = b
                .js("return Array.from(document.querySelectorAll('.tree a.row.selected .name')).map(n => n.textContent);")
                .await;
            assert_eq!(selected, json!(["c.json"]), "exactly the deep-linked row is selected");
            let sel = b.row("c.json").await;
            assert!(sel.is_displayed().await.unwrap());

            let expanded = b
                .js("return Array.from(document.querySelectorAll('.tree li.node[aria-expanded=\"true\"]'))\
                       .map(li => [li.querySelector(':scope > a.row .name').textContent, li.querySelector(':scope > ul.children').hidden]);")
                .await;
            assert_eq!(
                expanded,
                json!([["/", false], ["a/", false], ["b/", false]]),
                "every ancestor is expanded and shows its children"
            );
            assert_eq!(
                b.visible_labels().await,
                vec!["/", "a/", "b/", "a.txt", "c.json", "d/", "z.txt", "x/"]
            );

            // The server-rendered expanded levels behave like JS-expanded ones: collapse `b/`,
            // expand it again without a request for what is already there.
            b.click_row("b/").await;
            b.wait_js(
                "return Array.from(document.querySelectorAll('.tree a.row')).filter(r => r.getClientRects().length > 0).length === 5;",
                "`b/` to collapse",
            )
            .await;
            b.click_row("b/").await;
            b.row("c.json").await;
            // An unexpanded sibling directory loads on demand.
            b.click_row("x/").await;
            b.row("y").await;
        })
        .await;
    b.finish(r).await;
}

const PWNED_VALUE: &str =
    r#"<script>window.__pwned=2</script><img src=x onerror="window.__pwned=3">"#;
const XSS_IMG: &str = "/xss/<img src=x onerror=alert(1)>";
const XSS_SCRIPT: &str = "/xss/<script>window.__pwned=1</script>";

/// Nothing injected ran or became an element.
async fn assert_nothing_injected(b: &Browser, when: &str) {
    // Give a failing image load time to fire its onerror.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        b.alert_open().await,
        None,
        "{when}: an alert was opened by injected markup"
    );
    assert_eq!(
        b.js("return typeof window.__pwned;").await,
        json!("undefined"),
        "{when}: injected script ran"
    );
    let injected = b
        .js("return Array.from(document.querySelectorAll('.tree img, .tree script, #keyview img, #keyview script')).map(e => e.outerHTML);")
        .await;
    assert_eq!(injected, json!([]), "{when}: markup became elements");
    let foreign = b
        .js("return Array.from(document.querySelectorAll('script, img, iframe, object, embed'))\
               .filter(e => !(e.tagName === 'SCRIPT' && (e.getAttribute('src') || '').includes('/static/')))\
               .map(e => e.outerHTML);")
        .await;
    assert_eq!(
        foreign,
        json!([]),
        "{when}: elements other than our own scripts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_key_names_and_values_is_shown_as_text() {
    let b = Browser::start("markup_in_key_names_and_values_is_shown_as_text").await;
    let app = spawn_app().await;
    app.put_all(&[(XSS_IMG, PWNED_VALUE), (XSS_SCRIPT, PWNED_VALUE)])
        .await;

    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "")).await;
            b.click_row("/").await;
            b.click_row("xss/").await;
            // The `/` inside `</script>` makes the second key a directory level of its own.
            b.row("<img src=x onerror=alert(1)>").await;
            b.row("<script>window.__pwned=1</").await;
            assert_nothing_injected(&b, "listing the directory").await;

            b.click_row("<img src=x onerror=alert(1)>").await;
            wait_key_view(&b, XSS_IMG).await;
            assert_eq!(
                value_text(&b).await,
                PWNED_VALUE,
                "the value is shown as text"
            );
            assert_eq!(
                b.text("#keyview #value-text").await,
                PWNED_VALUE,
                "the visible value is the literal markup"
            );
            assert_nothing_injected(&b, "opening the <img> key in place").await;

            b.click_row("<script>window.__pwned=1</").await;
            b.click_row("script>").await;
            wait_key_view(&b, XSS_SCRIPT).await;
            assert_eq!(
                value_text(&b).await,
                PWNED_VALUE,
                "the value is shown as text"
            );
            assert_eq!(b.text("#keyview #value-text").await, PWNED_VALUE);
            assert_nothing_injected(&b, "opening the <script> key in place").await;

            // The same through server-rendered deep links.
            for (key, label) in [
                (XSS_IMG, "<img src=x onerror=alert(1)>"),
                (XSS_SCRIPT, "script>"),
            ] {
                b.goto(&keys_url(&app, &format!("key={}", pct(key.as_bytes()))))
                    .await;
                wait_key_view(&b, key).await;
                assert_eq!(value_text(&b).await, PWNED_VALUE);
                b.row(label).await;
                assert_nothing_injected(&b, &format!("deep link to {key}")).await;
            }

            // And as the search box's echoed value and the filter label.
            b.goto(&keys_url(
                &app,
                &format!("mode=flat&q={}&go=prefix", pct(b"/xss/<script>")),
            ))
            .await;
            b.row(XSS_SCRIPT).await;
            let echoed = b
                .js("return document.getElementById('search-input').value;")
                .await;
            assert_eq!(echoed, json!("/xss/<script>"));
            assert_nothing_injected(&b, "filtering by a markup prefix").await;
        })
        .await;
    b.finish(r).await;
}

/// Label of the focused element when it is a tree row, else a description of it.
async fn focused(b: &Browser) -> Value {
    b.js("const e = document.activeElement; if (!e) return null;\
          const n = e.matches('.tree a.row') && e.querySelector('.name');\
          return n ? n.textContent : (e.id ? '#' + e.id : e.tagName);")
        .await
}

async fn wait_focus(b: &Browser, want: &str) {
    let deadline = std::time::Instant::now() + crate::support_browser::WAIT;
    loop {
        let f = focused(b).await;
        if f == json!(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "focus is on {f}, expected {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_navigation_moves_and_opens() {
    let b = Browser::start("keyboard_navigation_moves_and_opens").await;
    let app = spawn_app().await;
    app.put_all(&[
        ("/app/x.json", r#"{"x":1}"#),
        ("/app/y.json", r#"{"y":2}"#),
        ("/zeta", "last letter"),
        ("top-level", "a sibling of / at the root"),
    ])
    .await;

    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "")).await;
            b.row("/").await;
            // On a fresh page the first `j` lands on the first row, not the one after it.
            b.press('j').await;
            wait_focus(&b, "/").await;
            // The tree has one Tab stop (roving tabindex); focus it.
            let focused_row = b
                .js("const r = document.querySelector('.tree a.row[tabindex=\"0\"]'); if (r) r.focus(); return !!r;")
                .await;
            assert_eq!(focused_row, json!(true), "a tree row is the tree's Tab stop");
            wait_focus(&b, "/").await;
            b.js(MARK).await;

            b.press(Key::Right).await; // expand `/`
            b.row("app/").await;
            wait_focus(&b, "/").await;
            b.press(Key::Right).await; // into the children
            wait_focus(&b, "app/").await;
            b.press(Key::Down).await;
            wait_focus(&b, "zeta").await;
            b.press(Key::Up).await;
            wait_focus(&b, "app/").await;
            b.press(Key::Right).await; // expand `app/`
            b.row("y.json").await;
            b.press(Key::Right).await;
            wait_focus(&b, "x.json").await;
            b.press(Key::Down).await;
            wait_focus(&b, "y.json").await;
            b.press(Key::Enter).await;
            wait_key_view(&b, "/app/y.json").await;
            assert_eq!(value_text(&b).await, "{\n  \"y\": 2\n}");
            let selected = b
                .js("return Array.from(document.querySelectorAll('.tree a.row.selected .name')).map(n => n.textContent);")
                .await;
            assert_eq!(selected, json!(["y.json"]));
            assert_eq!(query_param(&b.url().await, "key").as_deref(), Some(b"/app/y.json".as_slice()));
            assert_same_document(&b, "keyboard navigation").await;

            // `/` goes to the search box (and is not typed into it).
            b.js("document.activeElement && document.activeElement.blur();").await;
            b.press('/').await;
            wait_focus(&b, "#search-input").await;
            assert_eq!(b.js("return document.getElementById('search-input').value;").await, json!(""));
            b.type_text("/zeta").await;
            b.press(Key::Enter).await;
            wait_key_view(&b, "/zeta").await;
            assert_eq!(value_text(&b).await, "last letter");
            let url = b.url().await;
            assert_eq!(query_param(&url, "q").as_deref(), Some(b"/zeta".as_slice()), "{url}");
            let selected = b
                .js("return Array.from(document.querySelectorAll('.tree a.row.selected .name')).map(n => n.textContent);")
                .await;
            assert_eq!(selected, json!(["zeta"]), "the jumped-to key is selected in the tree");
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_utf8_key_round_trips_through_the_page() {
    let b = Browser::start("a_non_utf8_key_round_trips_through_the_page").await;
    let app = spawn_app().await;
    let key: &[u8] = b"/bin/key-\xff\xfe";
    let value = "value of a key that is not UTF-8";
    // Neighbours whose names a lossy decoding would collide with.
    app.put_all(&[
        (key.to_vec(), value.as_bytes().to_vec()),
        (
            "/bin/key-\u{fffd}\u{fffd}".as_bytes().to_vec(),
            b"lossy twin".to_vec(),
        ),
        (b"/bin/key-".to_vec(), b"prefix twin".to_vec()),
    ])
    .await;

    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "")).await;
            b.click_row("/").await;
            b.click_row("bin/").await;
            b.click_row(r"key-\xff\xfe").await;
            wait_key_view(&b, r"/bin/key-\xff\xfe").await;
            assert_eq!(value_text(&b).await, value);
            let shown_b64 = b.js("return document.querySelector('#keyview article.key').dataset.keyB64;").await;
            assert_eq!(shown_b64, json!(b64(key)), "the key view is about the exact bytes");

            let url = b.url().await;
            assert_eq!(query_param(&url, "key").as_deref(), Some(key), "the pushed URL {url} carries the exact key");

            // A fresh navigation to the pushed URL shows the same key.
            let pushed = url.to_string();
            b.goto("about:blank").await;
            b.goto(&pushed).await;
            wait_key_view(&b, r"/bin/key-\xff\xfe").await;
            assert_eq!(value_text(&b).await, value);
            let shown_b64 = b.js("return document.querySelector('#keyview article.key').dataset.keyB64;").await;
            assert_eq!(shown_b64, json!(b64(key)));
            let selected = b
                .js("return Array.from(document.querySelectorAll('.tree a.row.selected .name')).map(n => n.textContent);")
                .await;
            assert_eq!(selected, json!([r"key-\xff\xfe"]));

            // The permalink also round-trips.
            let permalink = b
                .js("return document.querySelector('#keyview a.permalink').href;")
                .await
                .as_str()
                .expect("permalink href")
                .to_string();
            b.goto(&permalink).await;
            wait_key_view(&b, r"/bin/key-\xff\xfe").await;
            assert_eq!(value_text(&b).await, value);
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_mode_pages_with_load_more() {
    let b = Browser::start("flat_mode_pages_with_load_more").await;
    let app = spawn_app().await;
    let kvs: Vec<(String, String)> = (0..250)
        .map(|i| (format!("/flat/k{i:03}"), format!("v{i}")))
        .collect();
    app.put_all(&kvs).await;
    // Outside the prefix: must never show up.
    app.put_all(&[("/flat", "no"), ("/flatter/k", "no"), ("/a", "no")])
        .await;
    let expected = |n: usize| -> Vec<String> { (0..n).map(|i| format!("/flat/k{i:03}")).collect() };

    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "mode=flat&prefix=/flat/")).await;
            b.row("/flat/k000").await;
            assert_eq!(b.visible_labels().await, expected(100));
            let leaves = b
                .c()
                .find_all(Locator::Css(".tree a.row.leaf"))
                .await
                .unwrap();
            assert_eq!(leaves.len(), 100);
            b.js(MARK).await;

            b.wait_for(".tree a.more-link")
                .await
                .click()
                .await
                .expect("click load more");
            b.row("/flat/k199").await;
            assert_eq!(b.visible_labels().await, expected(200));

            b.wait_for(".tree a.more-link")
                .await
                .click()
                .await
                .expect("click load more");
            b.row("/flat/k249").await;
            assert_eq!(b.visible_labels().await, expected(250));
            let more = b
                .c()
                .find_all(Locator::Css(".tree .more, .tree a.more-link"))
                .await
                .unwrap();
            assert!(more.is_empty(), "no load-more link after the last page");
            assert_same_document(&b, "load more").await;

            // Rows added by "load more" are live: opening one shows its value in place.
            b.click_row("/flat/k230").await;
            wait_key_view(&b, "/flat/k230").await;
            assert_eq!(value_text(&b).await, "v230");
        })
        .await;
    b.finish(r).await;
}

/// A key with a lease: its TTL counts down in the open key view, and when the lease expires the
/// view says the key is gone, naming the lease as a possible cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_keys_ttl_counts_down_and_its_expiry_is_explained() {
    let b = Browser::start("a_leased_keys_ttl_counts_down_and_its_expiry_is_explained").await;
    let app = spawn_app().await;
    let mut c = app.client().await;
    let lease = c.lease_grant(4, None).await.expect("grant").id();
    c.put(
        "/ttl/k",
        "short-lived",
        Some(etcd_client::PutOptions::new().with_lease(lease)),
    )
    .await
    .expect("put");
    let r = b
        .attempt(async {
            b.goto(&keys_url(&app, "key=/ttl/k")).await;
            wait_key_view(&b, "/ttl/k").await;
            const TTL: &str = "return document.querySelector('#keyview dd.ttl').textContent;";
            let first = b.js(TTL).await;
            tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
            let later = b.js(TTL).await;
            let secs = |v: &Value| {
                v.as_str()
                    .and_then(|t| t.strip_suffix(" s"))
                    .and_then(|n| n.parse::<i64>().ok())
            };
            assert!(
                matches!((secs(&first), secs(&later)), (Some(a), Some(z)) if z < a),
                "{first} then {later}"
            );
            b.wait_js(
                "const n = document.querySelector('#keyview .live-note'); return !!n && n.textContent.includes('its lease expired');",
                "the view to say the key went with its lease",
            )
            .await;
        })
        .await;
    b.finish(r).await;
}
