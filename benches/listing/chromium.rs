//! Section 9 of the listing bench: the key browser in a real headless Chromium on the bench's
//! key spaces (1M flat keys, 1,000 × 1,000 tree), timed inside the page.
//!
//! A page load counts until its first contentful paint (the server renders every expanded level,
//! so that paint shows the tree); the time until `DOMContentLoaded` (the page's scripts have run
//! and it answers clicks) and the HTML response's own time are printed beside it. A click is timed from just
//! before the script clicks the row to the first animation frame after the page shows what the
//! click asked for (a `MutationObserver` watches for it), so WebDriver's polling adds nothing.
//! Every action asks for a listing no earlier step of the bench asked for (the UI's page size and
//! these directories differ from the API series), so these are first visits, read from etcd.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support_browser::Browser;

/// What counts as "no visible wait" while browsing: the usual bound for a response that feels
/// instant (0.1 s).
pub const INSTANT_MS: f64 = 100.0;
/// The very first load, with nothing in the browser's cache, also fetches and compiles the page's
/// scripts and styles (a one-time cost that does not depend on the key space): it is held to the
/// bound for not interrupting the user's flow (1 s).
pub const FIRST_LOAD_MS: f64 = 1000.0;

/// One timed step.
pub struct Step {
    /// True for the first load into an empty browser cache (held to [`FIRST_LOAD_MS`]).
    pub cold: bool,
    pub what: String,
    pub ms: Option<f64>,
    pub error: Option<String>,
}

impl Step {
    pub fn json(&self) -> Value {
        json!({ "step": self.what, "ms": self.ms, "error": self.error, "empty_cache": self.cold })
    }

    /// The bound this step is held to.
    pub fn bound_ms(&self) -> f64 {
        if self.cold {
            FIRST_LOAD_MS
        } else {
            INSTANT_MS
        }
    }
}

/// Helpers installed in the page before each timed click.
const HELPERS: &str = r#"
window.__etb = { rows: () => Array.from(document.querySelectorAll('.tree a.row')).filter(r => r.getClientRects().length > 0) };
window.__etb.row = (label) => window.__etb.rows().find(r => { const n = r.querySelector('.name'); return n && n.textContent === label; });
window.__etb.node = (label) => { const r = window.__etb.row(label); return r ? r.closest('li.node') : null; };
window.__etb.children = (label) => { const n = window.__etb.node(label); return n ? n.querySelectorAll(':scope > ul.children > li.node').length : -1; };
"#;

/// Clicks what `click` (a JS expression giving an element) names and resolves when `done` (a JS
/// expression) holds; the elapsed time ends up in `window.__etbT`.
fn timed_click_script(click: &str, done: &str) -> String {
    format!(
        r#"{HELPERS}
window.__etbT = null;
const target = {click};
if (!target) return 'nothing to click';
const done = () => {{ try {{ return !!({done}); }} catch (e) {{ return false; }} }};
const t0 = performance.now();
const finish = () => requestAnimationFrame(() => {{ window.__etbT = performance.now() - t0; }});
const obs = new MutationObserver(() => {{ if (done()) {{ obs.disconnect(); finish(); }} }});
obs.observe(document.body, {{ childList: true, subtree: true, attributes: true, characterData: true }});
target.click();
if (done()) {{ obs.disconnect(); finish(); }}
return 'ok';"#
    )
}

async fn timed_click(b: &Browser, what: &str, click: &str, done: &str) -> Step {
    let started = b.js(&timed_click_script(click, done)).await;
    if started != json!("ok") {
        return Step {
            cold: false,
            what: what.into(),
            ms: None,
            error: Some(format!("could not start: {started}")),
        };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(ms) = b.js("return window.__etbT;").await.as_f64() {
            return Step {
                cold: false,
                what: what.into(),
                ms: Some(ms),
                error: None,
            };
        }
        if Instant::now() > deadline {
            return Step {
                cold: false,
                what: what.into(),
                ms: None,
                error: Some("not shown within 10 s".into()),
            };
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn timed_load(b: &Browser, what: &str, url: &str, shown: &str) -> Step {
    b.goto(url).await;
    let check = format!("{HELPERS} return !!({shown});");
    let ok = b.js(&check).await == json!(true);
    let timing = b
        .js("const n = performance.getEntriesByType('navigation')[0]; \
             const p = performance.getEntriesByName('first-contentful-paint')[0]; \
             return n ? [p ? p.startTime : null, n.domContentLoadedEventEnd, n.responseEnd - n.requestStart] : null;")
        .await;
    let paint = timing.get(0).and_then(Value::as_f64);
    let ready = timing.get(1).and_then(Value::as_f64);
    let html = timing.get(2).and_then(Value::as_f64);
    let detail = |x: Option<f64>| x.map_or("?".to_string(), |v| format!("{v:.1}"));
    // Without a paint entry (not every headless build reports one), the later DOMContentLoaded.
    let (shown, by) = match paint {
        Some(p) => (Some(p), "painted"),
        None => (ready, "no paint entry: scripts ready"),
    };
    Step {
        cold: false,
        what: format!(
            "{what} (HTML {} ms, scripts ready {} ms; {by})",
            detail(html),
            detail(ready)
        ),
        ms: shown.filter(|_| ok),
        error: (!ok).then(|| "the page did not show what it should".to_string()),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Runs the steps against the keys page at `keys_url` (`http://…/clusters/default/keys`). `dirs`
/// is the number of directories under `/h/`, `flat` the size of the numeric key space.
pub async fn run(keys_url: &str, dirs: u64, flat: u64) -> Result<Vec<Step>, String> {
    let b = Browser::start("listing-bench").await;
    let mut steps = Vec::new();
    let result = b
        .attempt(async {
            let d = |i: u64| format!("d{:04}/", i * dirs / 1000);
            // Page loads: the first one with an empty browser cache (scripts and styles too).
            let mut first = timed_load(
                &b,
                "open the keys page, empty browser cache",
                &format!("{keys_url}?mode=flat&key={}", flat / 4),
                &format!("window.__etb.row({})", quoted(&(flat / 4).to_string())),
            )
            .await;
            first.cold = true;
            steps.push(first);
            steps.push(
                timed_load(
                    &b,
                    "open the keys page (tree root)",
                    keys_url,
                    "window.__etb.row('/')",
                )
                .await,
            );
            let deep = format!("/h/{}k0500", d(500));
            steps.push(
                timed_load(
                    &b,
                    &format!("deep link to {deep} (3 levels + the key)"),
                    &format!("{keys_url}?key={deep}"),
                    &format!(
                        "document.querySelector('#keyview h1.key-path') && document.querySelector('#keyview h1.key-path').textContent.includes({})",
                        quoted("k0500")
                    ),
                )
                .await,
            );
            for pos in [flat / 2, flat - flat / 100] {
                let key = (pos + 1).to_string();
                steps.push(
                    timed_load(
                        &b,
                        &format!("flat mode at key {key} of {flat}"),
                        &format!("{keys_url}?mode=flat&key={key}"),
                        &format!("window.__etb.row({})", quoted(&key)),
                    )
                    .await,
                );
            }
            // Clicks on a fresh tree.
            b.goto(keys_url).await;
            steps.push(
                timed_click(
                    &b,
                    "expand / (top level)",
                    "window.__etb.row('/')",
                    "window.__etb.row('h/')",
                )
                .await,
            );
            steps.push(
                timed_click(
                    &b,
                    &format!("expand /h/ ({dirs} directories × 1,000 keys)"),
                    "window.__etb.row('h/')",
                    "window.__etb.children('h/') > 0",
                )
                .await,
            );
            let before = b
                .js(&format!("{HELPERS} return window.__etb.children('h/');"))
                .await
                .as_i64()
                .unwrap_or(0);
            steps.push(
                timed_click(
                    &b,
                    "load more in /h/",
                    "window.__etb.node('h/').querySelector(':scope > ul.children > li.more > a.more-link')",
                    &format!("window.__etb.children('h/') > {before}"),
                )
                .await,
            );
            for i in [10u64, 30, 50, 70, 90] {
                let dir = d(i);
                steps.push(
                    timed_click(
                        &b,
                        &format!("expand /h/{dir} (1,000 keys)"),
                        &format!("window.__etb.row({})", quoted(&dir)),
                        &format!("window.__etb.children({}) > 0", quoted(&dir)),
                    )
                    .await,
                );
            }
            let dir = d(50);
            steps.push(
                timed_click(
                    &b,
                    &format!("open key /h/{dir}k0042"),
                    &format!(
                        "window.__etb.node({}).querySelector(':scope > ul.children a.row.leaf[href*=\"k0042\"]')",
                        quoted(&dir)
                    ),
                    "document.querySelector('#keyview h1.key-path').textContent.includes('k0042')",
                )
                .await,
            );
        })
        .await;
    b.close().await;
    if result.is_err() {
        return Err("the browser steps panicked (screenshot in /tmp/etcdboard-test-shots)".into());
    }
    Ok(steps)
}
