//! Editing in a real headless Chromium: the editor and its three-way conflict view, leases kept,
//! live updates, deleting a prefix, restoring a version, export and import through the page.
//! Each test starts its own etcd + app; writes made "by someone else" go straight to etcd.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::{json, Value};

use crate::helpers::{b64, spawn_app, TestApp};
use crate::support_browser::Browser;

const MARK: &str = "window.__etcdboardNoReload = 'same document';";
const MARK_SURVIVED: &str = "return window.__etcdboardNoReload === 'same document';";

fn key_url(app: &TestApp, query: &str) -> String {
    app.url(&format!("/clusters/test/keys?{query}"))
}

/// Waits until the page's live updates are connected (changes made after this are seen).
async fn wait_live(b: &Browser) {
    b.wait_js(
        "const s = document.querySelector('[data-live-status]'); return !!s && s.getAttribute('data-state') === 'on';",
        "live updates to connect",
    )
    .await;
}

/// Waits until the page's watch really delivers: the `ready` event comes before etcd has created
/// the watch, so a change made right after it could be missed. Rewrites `/other/x` (a key in a
/// collapsed directory, so nothing visible changes) until the page hears of it.
async fn wait_watching(b: &Browser, app: &TestApp) {
    wait_live(b).await;
    b.js("window.__heard = []; document.addEventListener('etcdboard:change', (e) => window.__heard.push(e.detail.key));")
        .await;
    for _ in 0..20 {
        app.put_all(&[("/other/x", "x")]).await;
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if b.js("return window.__heard.includes('/other/x');").await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("the page never heard of a change made after its live updates connected");
}

/// Waits for the editor (CodeMirror loaded) to be ready.
pub(crate) async fn wait_editor(b: &Browser) {
    b.wait_js(
        "return !!document.querySelector('#keyview article.editor[data-ready=\"true\"] .CodeMirror');",
        "the editor to open",
    )
    .await;
}

/// Presses `modifier`+`key` (e.g. Ctrl+S).
pub(crate) async fn chord(b: &Browser, modifier: Key, key: char) {
    let m: char = modifier.into();
    let seq = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: m })
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key })
        .then(KeyAction::Up { value: m });
    b.c().perform_actions(seq).await.expect("chord");
}

/// Replaces the editor's text by typing it, as a user would (select all, type).
pub(crate) async fn type_value(b: &Browser, text: &str) {
    b.js("document.querySelector('#keyview .CodeMirror').CodeMirror.focus();")
        .await;
    chord(b, Key::Control, 'a').await;
    b.press(Key::Delete).await;
    b.type_text(text).await;
    b.wait_js(
        &format!(
            "return document.querySelector('#keyview .CodeMirror').CodeMirror.getValue() === {};",
            json!(text)
        ),
        "the typed text to be in the editor",
    )
    .await;
}

pub(crate) async fn click(b: &Browser, css: &str) {
    b.wait_for(css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

async fn raw_get(app: &TestApp, key: &[u8]) -> Option<etcd_client::KeyValue> {
    let mut c = app.client().await;
    c.get(key, None).await.expect("get").kvs().first().cloned()
}

async fn api_put(app: &TestApp, body: &Value) -> (u16, Value) {
    let resp = app
        .http
        .put(app.url("/api/v1/clusters/test/key"))
        .json(body)
        .send()
        .await
        .expect("put");
    (resp.status().as_u16(), resp.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_edit_shows_the_three_way_view() {
    let b = Browser::start("a_concurrent_edit_shows_the_three_way_view").await;
    let app = spawn_app().await;
    app.put_all(&[("/conc/config.json", r#"{"replicas":1}"#)])
        .await;
    let opened_at = raw_get(&app, b"/conc/config.json")
        .await
        .unwrap()
        .mod_revision();

    let r = b
        .attempt(async {
            b.goto(&key_url(&app, "key=/conc/config.json")).await;
            b.wait_text("#keyview h1.key-path", "/conc/config.json").await;
            wait_watching(&b, &app).await;
            b.press('e').await;
            wait_editor(&b).await;
            assert_eq!(
                b.js("return document.querySelector('#keyview .CodeMirror').CodeMirror.getValue();").await,
                json!(r#"{"replicas":1}"#),
                "the editor holds the stored bytes, not the pretty-printed view"
            );
            assert_eq!(b.js("return document.querySelector('select.ed-mode').value;").await, json!("json"));
            type_value(&b, r#"{"replicas":3,"by":"me"}"#).await;

            // The second editor saves first (same CAS as the page uses).
            let (status, body) = api_put(
                &app,
                &json!({"key": "/conc/config.json", "value": r#"{"replicas":2,"by":"them"}"#, "expected_mod_revision": opened_at}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let theirs_rev = body["revision"].as_i64().unwrap();
            b.wait_js(
                "const b = document.querySelector('#keyview .ed-live .banner'); return !!b && b.textContent.includes('Changed by someone else since you opened it');",
                "the editor to say the key changed meanwhile",
            )
            .await;

            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-review .diff").await;
            let diff = b.text_content("#keyview .ed-review .diff").await.unwrap();
            assert!(diff.contains(r#"{"replicas":1}"#) && diff.contains(r#"{"replicas":3,"by":"me"}"#), "{diff}");
            chord(&b, Key::Control, 's').await;

            b.wait_for("#keyview .ed-conflict .threeway").await;
            let ways = b
                .js("return Array.from(document.querySelectorAll('#keyview .threeway .way')).map(w => [w.querySelector('figcaption').textContent, w.querySelector('pre').textContent]);")
                .await;
            let ways: Vec<(String, String)> = serde_json::from_value(ways).unwrap();
            assert_eq!(ways.len(), 3, "{ways:?}");
            assert!(ways[0].0.contains("you started from") && ways[0].0.contains(&opened_at.to_string()), "{ways:?}");
            assert_eq!(ways[0].1.trim(), r#"{"replicas":1}"#);
            assert!(ways[1].0.contains("now in etcd") && ways[1].0.contains(&theirs_rev.to_string()), "{ways:?}");
            assert_eq!(ways[1].1.trim(), r#"{"replicas":2,"by":"them"}"#);
            assert!(ways[2].0.contains("yours"), "{ways:?}");
            assert_eq!(ways[2].1.trim(), r#"{"replicas":3,"by":"me"}"#);
            let banner = b.text("#keyview .ed-conflict .banner.error").await;
            assert!(banner.contains(&format!("now at revision {theirs_rev}")), "{banner}");
            assert_eq!(
                raw_get(&app, b"/conc/config.json").await.unwrap().value_str().unwrap(),
                r#"{"replicas":2,"by":"them"}"#,
                "a refused save wrote nothing"
            );

            // Overwrite needs an explicit confirmation, then saves against their revision.
            click(&b, "#keyview [data-overwrite]").await;
            let dialog = b.wait_for("dialog.modal[open]").await;
            let text = dialog.text().await.unwrap();
            assert!(text.contains(&format!("Revision {theirs_rev}")), "{text}");
            click(&b, "dialog.modal[open] [data-modal-confirm]").await;
            b.wait_for("#keyview article.key").await;
            let kv = raw_get(&app, b"/conc/config.json").await.unwrap();
            assert_eq!(kv.value_str().unwrap(), r#"{"replicas":3,"by":"me"}"#);
            assert!(kv.mod_revision() > theirs_rev);
            b.wait_js(
                &format!("return document.querySelector('#keyview article.key').getAttribute('data-mod-revision') === '{}';", kv.mod_revision()),
                "the key view to show the saved revision",
            )
            .await;
        })
        .await;
    b.finish(r).await;
}

/// A new key made in the page: its name field reads labels like the search box does (`\\` is a
/// backslash), the key is created, and the page shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_created_from_the_page_and_its_name_reads_labels() {
    let b = Browser::start("a_new_key_is_created_from_the_page_and_its_name_reads_labels").await;
    let app = spawn_app().await;
    app.put_all(&[("/nk/existing", "x")]).await;
    let r = b
        .attempt(async {
            b.goto(&key_url(&app, "key=/nk/existing")).await;
            b.wait_text("#keyview h1.key-path", "/nk/existing").await;
            b.press('n').await;
            b.wait_for("#ed-key").await;
            wait_editor(&b).await;
            b.js("const k = document.getElementById('ed-key'); k.focus(); k.select();")
                .await;
            b.type_text("/nk/back\\\\slash").await;
            type_value(&b, "made here").await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-review:not([hidden]) .diff").await;
            chord(&b, Key::Control, 's').await;
            b.wait_text("#keyview h1.key-path", "/nk/back\\\\slash")
                .await;
            let kv = raw_get(&app, b"/nk/back\\slash").await.expect("created");
            assert_eq!(kv.value(), b"made here");
        })
        .await;
    b.finish(r).await;
}

/// A value whose lines end in CRLF keeps CRLF endings when lines are typed into it (no silent
/// mix of CRLF and LF).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_into_a_crlf_value_keeps_crlf_line_endings() {
    let b = Browser::start("typing_into_a_crlf_value_keeps_crlf_line_endings").await;
    let app = spawn_app().await;
    app.put_all(&[("/crlf/file.txt", "line1\r\nline2\r\n")])
        .await;
    let r = b
        .attempt(async {
            b.goto(&key_url(&app, "key=/crlf/file.txt")).await;
            b.wait_text("#keyview h1.key-path", "/crlf/file.txt").await;
            b.press('e').await;
            wait_editor(&b).await;
            b.js("const cm = document.querySelector('#keyview .CodeMirror').CodeMirror; cm.focus(); cm.setCursor(cm.lastLine(), 0);")
                .await;
            b.type_text("line3").await;
            b.press(Key::Enter).await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-review:not([hidden]) .diff").await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview article.key").await;
            let kv = raw_get(&app, b"/crlf/file.txt").await.expect("saved");
            assert_eq!(kv.value(), b"line1\r\nline2\r\nline3\r\n");
        })
        .await;
    b.finish(r).await;
}

/// A key deleted by someone else while it is edited: the conflict view says so, and "keep
/// editing" then saving creates the key again with the editor's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_editing_a_key_deleted_meanwhile_saves_it_again() {
    let b = Browser::start("keep_editing_a_key_deleted_meanwhile_saves_it_again").await;
    let app = spawn_app().await;
    app.put_all(&[("/gone/cfg", "old")]).await;
    let r = b
        .attempt(async {
            b.goto(&key_url(&app, "key=/gone/cfg")).await;
            b.wait_text("#keyview h1.key-path", "/gone/cfg").await;
            b.press('e').await;
            wait_editor(&b).await;
            type_value(&b, "mine").await;
            let mut c = app.client().await;
            c.delete("/gone/cfg", None).await.expect("delete");
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-review .diff").await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-conflict .threeway").await;
            click(&b, "#keyview [data-keep-editing]").await;
            b.wait_for("#keyview .ed-edit:not([hidden])").await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-review:not([hidden]) .diff").await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview article.key").await;
            b.wait_js(
                "return document.activeElement && document.activeElement.matches('#keyview h1.key-path');",
                "focus on the key's heading after saving, not lost on the page body",
            )
            .await;
            let kv = raw_get(&app, b"/gone/cfg").await.expect("created again");
            assert_eq!(kv.value_str().unwrap(), "mine");
            assert_eq!(kv.version(), 1, "a new key");
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_saves_through_the_editor_and_keeps_the_lease() {
    let b = Browser::start("an_edit_saves_through_the_editor_and_keeps_the_lease").await;
    let app = spawn_app().await;
    let mut c = app.client().await;
    let lease = c.lease_grant(300, None).await.expect("grant").id();
    c.put(
        "/svc/leader",
        "node-1",
        Some(etcd_client::PutOptions::new().with_lease(lease)),
    )
    .await
    .expect("put");

    let r = b
        .attempt(async {
            b.goto(&key_url(&app, "key=/svc/leader")).await;
            b.wait_text("#keyview h1.key-path", "/svc/leader").await;
            click(&b, "#keyview a[data-shortcut='e']").await;
            wait_editor(&b).await;
            let meta = b.text("#keyview article.editor dl.meta").await;
            assert!(meta.contains(&format!("{lease:016x}")) && meta.contains("kept"), "the editor says the lease is kept: {meta}");
            b.js(MARK).await;
            type_value(&b, "node-2").await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-review .ed-save").await;
            click(&b, "#keyview .ed-review .ed-save").await;
            b.wait_js(
                "const p = document.querySelector('#keyview article.key #value-text'); return !!p && p.textContent === 'node-2';",
                "the key view to show the saved value",
            )
            .await;
            assert_eq!(b.js(MARK_SURVIVED).await, json!(true), "saving reloaded the page");
            let kv = raw_get(&app, b"/svc/leader").await.unwrap();
            assert_eq!(kv.value(), b"node-2");
            assert_eq!(kv.lease(), lease, "the edit kept the key's lease");
            let ttl = c.lease_time_to_live(lease, None).await.expect("ttl").ttl();
            assert!(ttl > 0, "the lease is alive: {ttl}");
            assert!(
                b.text("#keyview article.key dl.meta").await.contains(&format!("{lease:016x}")),
                "the key view shows the lease"
            );
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_with_etcdctl_appears_without_reload() {
    let b = Browser::start("a_change_made_with_etcdctl_appears_without_reload").await;
    let app = spawn_app().await;
    app.put_all(&[("/live/a", "one"), ("/live/b", "two"), ("/other/x", "x")])
        .await;

    let r = b
        .attempt(async {
            b.goto(&key_url(&app, "mode=tree&key=/live/a")).await;
            b.wait_text("#keyview h1.key-path", "/live/a").await;
            b.row("b").await;
            wait_watching(&b, &app).await;
            b.js(MARK).await;

            let endpoints = app.etcd.client_urls().join(",");
            let started = Instant::now();
            for (k, v) in [("/live/a", "changed"), ("/live/c", "new sibling")] {
                let out = std::process::Command::new("etcdctl")
                    .env("ETCDCTL_API", "3")
                    .args(["--endpoints", &endpoints, "put", k, v])
                    .output()
                    .expect("run etcdctl");
                assert!(out.status.success(), "etcdctl: {}", String::from_utf8_lossy(&out.stderr));
            }
            let changed_at = raw_get(&app, b"/live/a").await.unwrap().mod_revision();

            b.wait_js(
                "const b = document.querySelector('#keyview .live-note .banner'); return !!b && b.textContent.includes('Changed by someone else at revision');",
                "the open key to say it changed",
            )
            .await;
            let banner = b.text("#keyview .live-note .banner").await;
            assert!(banner.contains(&format!("revision {changed_at}")), "{banner}");
            b.row("c").await;
            let took = started.elapsed();
            assert!(took < Duration::from_secs(3), "the change took {took:?} to appear");
            assert_eq!(b.visible_labels().await, vec!["/", "live/", "a", "b", "c", "other/"]);
            assert_eq!(
                b.js("return !!document.querySelector('.tree a.row.selected') && document.querySelector('.tree a.row.selected .name').textContent;").await,
                json!("a"),
                "the open key stays selected"
            );
            assert_eq!(b.js(MARK_SURVIVED).await, json!(true), "a live update reloaded the page");
            assert_eq!(
                b.text_content("#keyview #value-text").await.as_deref(),
                Some("one"),
                "the old value stays until the user reloads it"
            );

            // "reload" shows the new value in place.
            click(&b, "#keyview .live-note button[data-reload-view]").await;
            b.wait_js(
                "const p = document.querySelector('#keyview #value-text'); return !!p && p.textContent === 'changed';",
                "the reloaded key view",
            )
            .await;
            assert_eq!(b.js(MARK_SURVIVED).await, json!(true));

            // A deleted sibling disappears too.
            let mut c = app.client().await;
            c.delete("/live/b", None).await.expect("delete");
            b.wait_js(
                "return !Array.from(document.querySelectorAll('.tree a.row .name')).some(n => n.textContent === 'b');",
                "the deleted row to go away",
            )
            .await;
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_prefix_needs_the_typed_prefix_and_the_current_count() {
    let b = Browser::start("delete_prefix_needs_the_typed_prefix_and_the_current_count").await;
    let app = spawn_app().await;
    app.put_all(&[
        ("/del/a", "1"),
        ("/del/b", "2"),
        ("/del/c/d", "3"),
        ("/delta", "keep"),
        ("/keep/x", "keep"),
    ])
    .await;
    let count = |app: &TestApp| {
        let url = app.url("/api/v1/clusters/test/delete-prefix?prefix=/del/");
        let http = app.http.clone();
        async move {
            let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            v["count"].as_u64().unwrap()
        }
    };

    let r = b
        .attempt(async {
            b.goto(&key_url(&app, "mode=tree&prefix=/del/")).await;
            click(&b, "button[data-delete-prefix]").await;
            b.wait_for("dialog.modal[open] input[data-confirm-prefix]").await;
            let body = b.text("dialog.modal[open] .modal-body").await;
            assert!(body.contains("3 keys"), "{body}");
            assert!(body.contains("/del/a") && body.contains("/del/c/d"), "the sample lists keys: {body}");
            let confirm_disabled = "return document.querySelector('dialog.modal[open] [data-modal-confirm]').disabled;";
            assert_eq!(b.js(confirm_disabled).await, json!(true), "nothing typed yet");
            b.type_text("/del").await;
            assert_eq!(b.js(confirm_disabled).await, json!(true), "a partial prefix does not unlock it");
            b.type_text("/").await;
            assert_eq!(b.js(confirm_disabled).await, json!(false), "the exact prefix unlocks it");

            // Someone adds a key after the count was shown: the delete is refused, nothing goes.
            app.put_all(&[("/del/e", "late")]).await;
            click(&b, "dialog.modal[open] [data-modal-confirm]").await;
            b.wait_for("dialog.modal[open] .modal-error .banner").await;
            let err = b.text("dialog.modal[open] .modal-error").await;
            assert!(err.contains("4 keys now") && err.contains("you confirmed 3"), "{err}");
            assert_eq!(count(&app).await, 4, "nothing was deleted");

            click(&b, "dialog.modal[open] .modal-error button").await;
            b.wait_js(
                "const d = document.querySelector('dialog.modal[open] .modal-body'); return !!d && d.textContent.includes('4 keys');",
                "the new count",
            )
            .await;
            b.wait_js("return document.querySelector('dialog.modal[open] [data-modal-confirm]').disabled === false;", "the typed prefix to still count").await;

            // Same count, but a key changed after this preview: refused too (the preview's
            // revision travels with the request).
            app.put_all(&[("/del/a", "changed")]).await;
            click(&b, "dialog.modal[open] [data-modal-confirm]").await;
            b.wait_for("dialog.modal[open] .modal-error .banner").await;
            let err = b.text("dialog.modal[open] .modal-error").await;
            assert!(err.contains("changed since you looked"), "{err}");
            assert_eq!(count(&app).await, 4, "nothing was deleted");
            click(&b, "dialog.modal[open] .modal-error button").await;
            b.wait_js(
                "const d = document.querySelector('dialog.modal[open]'); return !!d && !d.querySelector('.modal-error .banner') && d.textContent.includes('4 keys') && !d.querySelector('[data-modal-confirm]').disabled;",
                "a fresh preview",
            )
            .await;
            click(&b, "dialog.modal[open] [data-modal-confirm]").await;
            b.wait_js("return !document.querySelector('dialog.modal[open]');", "the dialog to close").await;
            let note = b.wait_for(".tree-note .banner").await.text().await.unwrap();
            assert!(note.contains("4 keys"), "{note}");
            assert_eq!(count(&app).await, 0);
            assert!(raw_get(&app, b"/delta").await.is_some(), "a key that only shares the text prefix stays");
            assert!(raw_get(&app, b"/keep/x").await.is_some());
            b.wait_text(".tree li.empty", "no keys here").await;
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_restores_an_old_version() {
    let b = Browser::start("history_restores_an_old_version").await;
    let app = spawn_app().await;
    let mut c = app.client().await;
    let mut revs = Vec::new();
    for v in ["v1\nshared\n", "v2\nshared\n", "v3\nshared\nmore\n"] {
        revs.push(
            c.put("/h/k", v, None)
                .await
                .expect("put")
                .header()
                .unwrap()
                .revision(),
        );
    }

    let r = b
        .attempt(async {
            b.goto(&app.url("/clusters/test/history?key=/h/k")).await;
            let rows = b
                .js("return Array.from(document.querySelectorAll('table.versions tbody tr')).map(r => r.children[2].textContent.trim());")
                .await;
            assert_eq!(
                rows,
                json!([format!("{} current", revs[2]), revs[1].to_string(), revs[0].to_string()])
            );
            assert!(b.text("main.history").await.contains("created the key"));

            // Diff the first and the last version.
            b.js_with(
                "document.querySelector(`input[name=a][value='${arguments[0]}']`).click(); document.querySelector(`input[name=b][value='${arguments[1]}']`).click();",
                vec![json!(revs[0]), json!(revs[2])],
            )
            .await;
            click(&b, ".history-form button[type=submit]").await;
            b.wait_for("pre.diff").await;
            let lines = b
                .js("return Array.from(document.querySelectorAll('pre.diff .dl')).map(l => l.className.replace('dl ', '') + ':' + l.textContent.slice(1));")
                .await;
            assert_eq!(lines, json!(["del:v1", "add:v3", "same:shared", "add:more"]));

            // View and restore the first version.
            b.goto(&app.url(&format!("/clusters/test/history?key=/h/k&rev={}", revs[0]))).await;
            assert_eq!(b.text(".shown-card pre.value").await, "v1\nshared");
            click(&b, &format!(".shown-card button[data-restore='{}']", revs[0])).await;
            b.wait_for("dialog.modal[open]").await;
            click(&b, "dialog.modal[open] [data-modal-confirm]").await;
            b.wait_js("return new URLSearchParams(location.search).has('restored');", "the page to reload after the restore").await;
            assert!(b.text(".banner.info").await.contains(&format!("revision {} was saved", revs[0])));
            let kv = raw_get(&app, b"/h/k").await.unwrap();
            assert_eq!(kv.value(), b"v1\nshared\n");
            assert_eq!(kv.version(), 4);
            assert_eq!(b.js("return document.querySelectorAll('table.versions tbody tr').length;").await, json!(4));

            // After a compaction the page says older versions are gone.
            c.compact(revs[2], None).await.expect("compact");
            b.goto(&app.url("/clusters/test/history?key=/h/k")).await;
            let foot = b.text(".history-foot").await;
            assert!(foot.contains("compacted away"), "{foot}");
            assert_eq!(b.js("return document.querySelectorAll('table.versions tbody tr').length;").await, json!(2));
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_restores_a_prefix() {
    let b = Browser::start("export_then_import_restores_a_prefix").await;
    let app = spawn_app().await;
    let keys: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"/tx/a".to_vec(), b"alpha".to_vec()),
        (b"/tx/bin\xff".to_vec(), vec![0, 1, 2, 0xff, 0xfe]),
        (b"/tx/cfg.json".to_vec(), br#"{"a":1}"#.to_vec()),
        (b"/tx/crlf".to_vec(), b"line1\r\nline2\n".to_vec()),
    ];
    app.put_all(&keys).await;
    app.put_all(&[("/other/x", "stays")]).await;
    let dir = tempfile::tempdir().expect("tempdir");

    let r = b
        .attempt(async {
            b.goto(&app.url("/clusters/test/transfer?prefix=/tx/")).await;
            b.wait_js("return document.querySelector('[data-count]').textContent.startsWith('4 keys');", "the key count").await;
            click(&b, "a[data-export='json']").await;
            b.wait_for("a.export-file").await;
            let status = b.text("[data-export-status]").await;
            assert!(status.starts_with("4 of 4 keys"), "{status}");
            let exported = b
                .js("return fetch(document.querySelector('a.export-file').href).then(r => r.text());")
                .await;
            let exported = exported.as_str().expect("export text").to_string();
            let doc: Value = serde_json::from_str(&exported).expect("the export is JSON");
            assert_eq!(doc["keys"].as_array().unwrap().len(), 4);
            let file = dir.path().join("tx-export.json");
            std::fs::write(&file, &exported).unwrap();

            // Lose the prefix, then import the file through the page.
            let (_, preview) = app
                .get_json("/api/v1/clusters/test/delete-prefix?prefix=/tx/")
                .await;
            let resp: Value = app
                .http
                .post(app.url("/api/v1/clusters/test/delete-prefix"))
                .json(&json!({"prefix": "/tx/", "expected_count": 4, "revision": preview["revision"]}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(resp["deleted"], 4, "{resp}");

            b.c()
                .find(Locator::Css("input[data-import-file]"))
                .await
                .unwrap()
                .send_keys(file.to_str().unwrap())
                .await
                .unwrap();
            click(&b, "button[data-import-dry]").await;
            b.wait_for("button[data-import-apply]").await;
            let n = |name: &str| format!("const r = document.querySelector('[data-import-result] tr[data-n={name}]'); return r ? [r.children[0].textContent, r.children[1].textContent] : null;");
            assert_eq!(b.js(&n("created")).await, json!(["would create", "4"]));
            assert_eq!(b.js(&n("conflicts")).await, json!(["conflicts (left alone)", "0"]));
            for (k, _) in &keys {
                assert!(raw_get(&app, k).await.is_none(), "a dry run wrote nothing");
            }
            click(&b, "button[data-import-apply]").await;
            b.wait_js("return !!document.querySelector('[data-import-result] .banner.done');", "the import report").await;
            assert_eq!(b.js(&n("created")).await, json!(["created", "4"]));

            for (k, v) in &keys {
                let (status, body) = app
                    .get_json(&format!("/api/v1/clusters/test/key?key_b64={}", crate::helpers::b64url(k)))
                    .await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["value_b64"], json!(b64(v)), "{} restored byte-exact", String::from_utf8_lossy(k));
            }
            assert_eq!(raw_get(&app, b"/other/x").await.unwrap().value(), b"stays");
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_lease_lists_the_keys_that_vanish() {
    let b = Browser::start("revoking_a_lease_lists_the_keys_that_vanish").await;
    let app = spawn_app().await;
    let mut c = app.client().await;
    let lease = c.lease_grant(300, None).await.expect("grant").id();
    let other = c.lease_grant(300, None).await.expect("grant").id();
    let with = |id| Some(etcd_client::PutOptions::new().with_lease(id));
    c.put("/locks/a", "1", with(lease)).await.expect("put");
    c.put("/other/kept", "1", with(other)).await.expect("put");

    let r = b
        .attempt(async {
            b.goto(&app.url("/clusters/test/leases")).await;
            let row = format!("tr[data-lease='{lease:016x}']");
            let text = b.text(&row).await;
            assert!(text.contains("/locks/a") && text.contains("300 s"), "{text}");
            // A key attached after the page loaded is listed by the dialog too.
            c.put("/locks/b", "2", with(lease)).await.expect("put");
            click(&b, &format!("{row} button[data-revoke]")).await;
            b.wait_js(
                "const d = document.querySelector('dialog.modal[open]'); return !!d && d.textContent.includes('/locks/b') && !d.querySelector('[data-modal-confirm]').disabled;",
                "the dialog to list the keys attached now",
            )
            .await;
            let dialog = b.text("dialog.modal[open]").await;
            assert!(dialog.contains("These 2 keys will vanish") && dialog.contains("/locks/a"), "{dialog}");
            click(&b, "dialog.modal[open] [data-modal-confirm]").await;
            b.wait_for(".leases-note .banner").await;
            assert!(b.text(".leases-note").await.contains("2 keys deleted"));
            assert!(raw_get(&app, b"/locks/a").await.is_none());
            assert!(raw_get(&app, b"/locks/b").await.is_none());
            assert!(raw_get(&app, b"/other/kept").await.is_some(), "another lease's key stays");
            assert_eq!(
                b.js(&format!("return !!document.querySelector(\"{row}\");")).await,
                json!(false)
            );
        })
        .await;
    b.finish(r).await;
}

/// A lease that gained too many keys to list after the page loaded: the dialog says so and offers
/// no revoke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_grown_too_large_to_list_is_not_offered_for_revocation() {
    let b = Browser::start("a_lease_grown_too_large_to_list_is_not_offered_for_revocation").await;
    let app = spawn_app().await;
    let mut c = app.client().await;
    let lease = c.lease_grant(300, None).await.expect("grant").id();
    let with = Some(etcd_client::PutOptions::new().with_lease(lease));
    c.put("/events/first", "1", with).await.expect("put");

    let r = b
        .attempt(async {
            b.goto(&app.url("/clusters/test/leases")).await;
            let row = format!("tr[data-lease='{lease:016x}']");
            assert!(b.text(&row).await.contains("/events/first"));
            app.attach_unlistable_keys(lease, "/events/").await;
            click(&b, &format!("{row} button[data-revoke]")).await;
            b.wait_js(
                "const d = document.querySelector('dialog.modal[open]'); return !!d && d.textContent.includes('Too many keys');",
                "the dialog to say the keys cannot be listed",
            )
            .await;
            let dialog = b.text("dialog.modal[open]").await;
            assert!(dialog.contains(&format!("etcdctl lease revoke {lease:016x}")), "{dialog}");
            assert_eq!(
                b.js("return document.querySelector('dialog.modal[open] [data-modal-confirm]').hidden;").await,
                json!(true),
                "no revoke button"
            );
            assert!(raw_get(&app, b"/events/first").await.is_some());
            // After a reload the page says it in the row, and has no button for it.
            b.goto(&app.url("/clusters/test/leases")).await;
            assert!(b.text(&row).await.contains("too many keys to list here"));
            assert_eq!(
                b.js(&format!("return !!document.querySelector(\"{row} button[data-revoke]\");")).await,
                json!(false)
            );
        })
        .await;
    b.finish(r).await;
}

/// A deletion that takes a while (here: quorum is lost after the dialog listed the keys) says in
/// the dialog that it is still deleting and for how long, then gives the server's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_revocation_says_it_is_still_deleting_then_why_it_failed() {
    let b = Browser::start("a_slow_revocation_says_it_is_still_deleting_then_why_it_failed").await;
    let mut app = spawn_app().await;
    let mut c = app.client().await;
    let lease = c.lease_grant(300, None).await.expect("grant").id();
    let with = Some(etcd_client::PutOptions::new().with_lease(lease));
    c.put("/locks/slow", "1", with).await.expect("put");

    let r = b
        .attempt(async {
            b.goto(&app.url("/clusters/test/leases")).await;
            let row = format!("tr[data-lease='{lease:016x}']");
            click(&b, &format!("{row} button[data-revoke]")).await;
            b.wait_js(
                "const d = document.querySelector('dialog.modal[open]'); return !!d && d.textContent.includes('/locks/slow') && !d.querySelector('[data-modal-confirm]').disabled;",
                "the dialog to list the attached key",
            )
            .await;
            app.etcd.kill(1);
            app.etcd.kill(2);
            click(&b, "dialog.modal[open] [data-modal-confirm]").await;
            b.wait_js(
                "const n = document.querySelector('dialog.modal[open] [data-deleting]'); return !!n && /^Deleting 1 key in one etcd transaction… [0-9]+ s$/.test(n.textContent);",
                "the dialog to say that it is still deleting",
            )
            .await;
            b.wait_for("dialog.modal[open] .modal-error .banner").await;
            let dialog = b.text("dialog.modal[open]").await;
            assert!(dialog.contains("no member of cluster `test`"), "{dialog}");
            assert!(!dialog.contains("Deleting 1 key"), "the note goes with the wait: {dialog}");
            assert!(
                !b.js("return document.querySelector('dialog.modal[open] [data-modal-confirm]').disabled;").await.as_bool().unwrap(),
                "the confirm button can be tried again"
            );
        })
        .await;
    b.finish(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browser_windows_editing_one_key_get_the_three_way_view() {
    let b = Browser::start("two_browser_windows_editing_one_key_get_the_three_way_view").await;
    let app = spawn_app().await;
    app.put_all(&[("/two/config.json", r#"{"replicas":1}"#)])
        .await;

    let r = b
        .attempt(async {
            // Window A opens the editor and types, but does not save yet.
            let first = b.c().window().await.unwrap();
            b.goto(&key_url(&app, "key=/two/config.json")).await;
            b.wait_text("#keyview h1.key-path", "/two/config.json").await;
            b.press('e').await;
            wait_editor(&b).await;
            type_value(&b, r#"{"replicas":3,"by":"A"}"#).await;

            // Window B, a second page session, edits the same key and saves.
            let second = b.c().new_window(false).await.unwrap().handle;
            b.c().switch_to_window(second).await.unwrap();
            b.goto(&key_url(&app, "key=/two/config.json")).await;
            b.wait_text("#keyview h1.key-path", "/two/config.json").await;
            b.press('e').await;
            wait_editor(&b).await;
            type_value(&b, r#"{"replicas":2,"by":"B"}"#).await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-review .diff").await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview article.key").await;
            let saved_by_b = raw_get(&app, b"/two/config.json").await.unwrap();
            assert_eq!(saved_by_b.value_str().unwrap(), r#"{"replicas":2,"by":"B"}"#);

            // Back in window A: saving now shows what A started from, what B saved, and A's text.
            b.c().switch_to_window(first).await.unwrap();
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-review .diff").await;
            chord(&b, Key::Control, 's').await;
            b.wait_for("#keyview .ed-conflict .threeway").await;
            let ways = b
                .js("return Array.from(document.querySelectorAll('#keyview .threeway .way pre')).map(p => p.textContent.trim());")
                .await;
            let ways: Vec<String> = serde_json::from_value(ways).unwrap();
            assert_eq!(
                ways,
                vec![
                    r#"{"replicas":1}"#.to_string(),
                    r#"{"replicas":2,"by":"B"}"#.to_string(),
                    r#"{"replicas":3,"by":"A"}"#.to_string(),
                ]
            );
            let kv = raw_get(&app, b"/two/config.json").await.unwrap();
            assert_eq!(kv.value_str().unwrap(), r#"{"replicas":2,"by":"B"}"#, "A's refused save wrote nothing");
            assert_eq!(kv.mod_revision(), saved_by_b.mod_revision());
        })
        .await;
    b.finish(r).await;
}
