//! A real headless Chromium driven through chromedriver (WebDriver), for tests of the pages with
//! their JavaScript.
//!
//! * Only one browser runs at a time in the whole test binary (a global semaphore): Chromium is
//!   heavy and the test machines have 2 cores. Start the browser *before* the app so the slot also
//!   covers the app's etcd cluster.
//! * chromedriver runs in its own process group; [`Browser::close`] ends the WebDriver session
//!   (which quits Chromium) and then kills that whole group. `Drop` kills the group too, so a
//!   panicking test leaves no chromedriver or Chromium behind.
//! * Missing binaries are a test failure, not a skip: a browser test that cannot run must not look
//!   like a browser test that passed.

#![allow(dead_code)]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::future::Future;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Chromium as installed by Debian's `chromium` package.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// chromedriver as installed by Debian's `chromium-driver` package.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The JSON key of a W3C WebDriver element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Where screenshots of failed browser tests go.
pub const SHOTS_DIR: &str = "/tmp/etcdboard-test-shots";
/// The longest any wait helper waits.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// One browser at a time in this test binary.
static BROWSER_SLOT: Semaphore = Semaphore::const_new(1);

/// A headless Chromium session.
pub struct Browser {
    client: Option<Client>,
    driver: Option<Child>,
    name: String,
    profile: tempfile::TempDir,
    _slot: SemaphorePermit<'static>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

fn require_binary(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "browser tests need {path} (Debian package `{package}`); it is missing. \
         Install it (apt-get install chromium chromium-driver) instead of skipping these tests."
    );
}

/// Kills a whole process group and reaps its leader.
fn kill_group(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain syscall on a process group this fixture created (process_group(0) below).
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until chromedriver answers `/status`; on failure kills it and says why (with its log).
async fn wait_for_driver(
    mut driver: Child,
    webdriver: &str,
    profile: &tempfile::TempDir,
) -> Result<Child, String> {
    let log =
        || std::fs::read_to_string(profile.path().join("chromedriver.log")).unwrap_or_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{webdriver}/status")).send().await {
            if r.status().is_success() {
                return Ok(driver);
            }
        }
        if let Ok(Some(status)) = driver.try_wait() {
            kill_group(&mut driver);
            return Err(format!(
                "chromedriver exited ({status}) before answering:\n{}",
                log()
            ));
        }
        if Instant::now() >= deadline {
            kill_group(&mut driver);
            return Err(format!(
                "chromedriver did not answer {webdriver}/status within 20 s:\n{}",
                log()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Browser {
    /// Waits for the browser slot, starts chromedriver on a free loopback port and opens a session.
    /// `name` names the screenshot taken when the test fails.
    pub async fn start(name: &str) -> Browser {
        require_binary(CHROMIUM, "chromium");
        require_binary(CHROMEDRIVER, "chromium-driver");
        let slot = BROWSER_SLOT.acquire().await.expect("browser semaphore");
        let profile = tempfile::Builder::new()
            .prefix("etcdboard-chromium-")
            .tempdir()
            .expect("profile tempdir");
        // The free port can be taken between probing and chromedriver binding it: retry.
        let mut started = None;
        for attempt in 1..=3 {
            let port = free_port();
            let log =
                std::fs::File::create(profile.path().join("chromedriver.log")).expect("driver log");
            let driver = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {CHROMEDRIVER}: {e}"));
            let webdriver = format!("http://127.0.0.1:{port}");
            match wait_for_driver(driver, &webdriver, &profile).await {
                Ok(driver) => {
                    started = Some((driver, webdriver));
                    break;
                }
                Err(why) if attempt < 3 => {
                    eprintln!("chromedriver attempt {attempt}: {why}; retrying")
                }
                Err(why) => panic!("{why}"),
            }
        }
        let (driver, webdriver) = started.expect("chromedriver started");
        let mut browser = Browser {
            client: None,
            driver: Some(driver),
            name: name.to_string(),
            profile,
            _slot: slot,
        };

        let user_data = browser.profile_dir().join("profile");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", user_data.display()),
                    "--window-size=1300,900",
                ],
            }),
        );
        let mut last_err = None;
        for _ in 0..3 {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&webdriver)
                .await
            {
                Ok(c) => {
                    browser.client = Some(c);
                    break;
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        assert!(
            browser.client.is_some(),
            "could not open a Chromium session through chromedriver: {:?}\nchromedriver log:\n{}",
            last_err,
            browser.driver_log()
        );
        browser
            .c()
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                Some(Duration::from_secs(5)),
                Some(Duration::from_secs(30)),
                Some(Duration::ZERO),
            ))
            .await
            .expect("timeouts");
        browser
    }

    fn profile_dir(&self) -> PathBuf {
        self.profile.path().to_path_buf()
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.profile_dir().join("chromedriver.log")).unwrap_or_default()
    }

    /// The WebDriver client.
    pub fn c(&self) -> &Client {
        self.client.as_ref().expect("browser session is open")
    }

    /// Runs the body of a test, catching a panic; on a panic saves a screenshot (and the page's
    /// HTML) to [`SHOTS_DIR`]. Hand the result to [`Browser::finish`].
    pub async fn attempt<F: Future<Output = ()>>(&self, body: F) -> std::thread::Result<()> {
        let result = AssertUnwindSafe(body).catch_unwind().await;
        if result.is_err() {
            self.save_evidence().await;
        }
        result
    }

    /// Closes the browser, then re-raises the panic of a failed [`Browser::attempt`].
    pub async fn finish(self, result: std::thread::Result<()>) {
        self.close().await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }

    async fn save_evidence(&self) {
        let Some(c) = self.client.as_ref() else {
            return;
        };
        let _ = std::fs::create_dir_all(SHOTS_DIR);
        let png = Path::new(SHOTS_DIR).join(format!("{}.png", self.name));
        match tokio::time::timeout(Duration::from_secs(10), c.screenshot()).await {
            Ok(Ok(bytes)) => {
                if std::fs::write(&png, bytes).is_ok() {
                    eprintln!("screenshot of the failed test: {}", png.display());
                }
            }
            other => eprintln!("could not take a screenshot: {other:?}"),
        }
        if let Ok(Ok(html)) = tokio::time::timeout(Duration::from_secs(10), c.source()).await {
            let path = Path::new(SHOTS_DIR).join(format!("{}.html", self.name));
            let _ = std::fs::write(path, html);
        }
        if let Ok(Ok(url)) = tokio::time::timeout(Duration::from_secs(5), c.current_url()).await {
            eprintln!("browser was at {url}");
        }
    }

    /// Ends the session (Chromium quits) and kills chromedriver.
    pub async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
        }
        if let Some(mut d) = self.driver.take() {
            kill_group(&mut d);
        }
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.c()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
        self.wait_js(
            "return document.readyState === 'complete' && !!document.body",
            &format!("{url} to load"),
        )
        .await;
    }

    /// Runs a script and returns its result.
    pub async fn js(&self, script: &str) -> Value {
        self.c()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs a script with arguments and returns its result.
    pub async fn js_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.c()
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls a script until it returns `true` (at most [`WAIT`]); panics naming `what` otherwise.
    pub async fn wait_js(&self, script: &str, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = match self.c().execute(script, vec![]).await {
                Ok(Value::Bool(true)) => return,
                Ok(v) => v,
                // A navigation in progress can make a script fail transiently.
                Err(e) => Value::String(e.to_string()),
            };
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what} (last result: {last})"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until an element matching `css` exists and is displayed.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(el) = self.c().find(Locator::Css(css)).await {
                if el.is_displayed().await.unwrap_or(false) {
                    return el;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for a visible `{css}`"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the visible text of the first `css` element equals `text`.
    pub async fn wait_text(&self, css: &str, text: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.c().find(Locator::Css(css)).await {
                match el.text().await {
                    Ok(t) if t == text => return el,
                    Ok(t) => last = t,
                    Err(e) => last = format!("<{e}>"),
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for `{css}` to read {text:?} (last: {last:?})"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The visible rows of the tree (or list) whose label is exactly `label`.
    async fn rows_labelled(&self, label: &str) -> Result<Vec<Element>, CmdError> {
        // One round trip: the page finds the rows, WebDriver hands back element references.
        let found = self
            .c()
            .execute(
                "return Array.from(document.querySelectorAll('.tree a.row'))\
                   .filter(r => r.getClientRects().length > 0)\
                   .filter(r => { const n = r.querySelector('.name'); return n && n.textContent === arguments[0]; });",
                vec![json!(label)],
            )
            .await?;
        Ok(found
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.get(ELEMENT_KEY).and_then(Value::as_str))
            .map(|id| Element::from_element_id(self.c().clone(), id.to_string().into()))
            .collect())
    }

    /// Waits for exactly one visible row labelled `label` and returns it.
    pub async fn row(&self, label: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            let rows = self.rows_labelled(label).await.unwrap_or_default();
            assert!(
                rows.len() <= 1,
                "{} visible rows are labelled {label:?}",
                rows.len()
            );
            if let Some(r) = rows.into_iter().next() {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for a visible tree row labelled {label:?}; visible rows: {:?}",
                self.visible_labels().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Labels of the visible rows that name a key or directory (not "load more" or gap links),
    /// in document order.
    pub async fn visible_labels(&self) -> Vec<String> {
        let v = self
            .js(
                "return Array.from(document.querySelectorAll('.tree a.row'))\
                   .filter(r => r.getClientRects().length > 0 && r.querySelector('.name'))\
                   .map(r => r.querySelector('.name').textContent);",
            )
            .await;
        serde_json::from_value(v).expect("labels")
    }

    /// Clicks the visible row labelled `label` (a real WebDriver click).
    pub async fn click_row(&self, label: &str) {
        let row = self.row(label).await;
        row.click()
            .await
            .unwrap_or_else(|e| panic!("clicking row {label:?}: {e}"));
    }

    /// Presses and releases one key (a character or a [`fantoccini::key::Key`]) on whatever has
    /// focus.
    pub async fn press(&self, key: impl Into<char>) {
        let k = key.into();
        let seq = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: k })
            .then(KeyAction::Up { value: k });
        self.c()
            .perform_actions(seq)
            .await
            .unwrap_or_else(|e| panic!("pressing {k:?}: {e}"));
    }

    /// Types text into whatever has focus, key by key.
    pub async fn type_text(&self, text: &str) {
        let mut seq = KeyActions::new("keyboard".into());
        for ch in text.chars() {
            seq = seq
                .then(KeyAction::Down { value: ch })
                .then(KeyAction::Up { value: ch });
        }
        self.c()
            .perform_actions(seq)
            .await
            .unwrap_or_else(|e| panic!("typing {text:?}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> reqwest::Url {
        self.c().current_url().await.expect("current url")
    }

    /// Text of the first element matching `css` (must exist).
    pub async fn text(&self, css: &str) -> String {
        self.c()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// `textContent` of the first element matching `css` (works for hidden elements), or `None`.
    pub async fn text_content(&self, css: &str) -> Option<String> {
        let v = self
            .js_with(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![json!(css)],
            )
            .await;
        v.as_str().map(str::to_string)
    }

    /// Whether an alert / confirm / prompt dialog is open (which would mean injected script ran).
    pub async fn alert_open(&self) -> Option<String> {
        self.c().get_alert_text().await.ok()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Fallback when `close` was not reached: killing the group takes Chromium down too.
        if let Some(mut d) = self.driver.take() {
            kill_group(&mut d);
        }
    }
}
