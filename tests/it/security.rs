//! No open proxy, no leaked dial errors, keys byte-exact through the API (issue #6).
//!
//! etcdkeeper dials whatever address a request names, with the server's client certificate, and
//! returns the raw dial error: a proxy and a port scanner. These tests point every way a request
//! can carry an address (query, path, headers, cookies, JSON bodies) at a listener that must never
//! see a connection, on every route of the router, and check that error bodies name no such
//! address. None of them writes through etcdboard's API except as a probe (data is written with a
//! raw etcd client), so they do not depend on the role a request gets.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use etcdboard::config::{ClusterConfig, Config, HttpArgs};
use etcdboard::domain::key::percent_encode_query;

use crate::helpers::{
    b64, b64url, init_logs, pct, serve_config, spawn_app_with, AppOptions, TestApp,
};

/// A TCP listener that must never be connected to; it counts every connection it accepts.
struct Tripwire {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Tripwire {
    async fn start() -> Tripwire {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind tripwire");
        let addr = listener.local_addr().expect("tripwire addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                eprintln!("tripwire {addr}: connection from {peer}");
                drop(stream);
            }
        });
        let trip = Tripwire {
            addr,
            accepted,
            task,
        };
        trip.self_test().await;
        trip
    }

    /// Every spelling of the tripwire's address a request might use.
    fn spellings(&self) -> Vec<String> {
        let a = self.addr;
        let port = a.port();
        vec![
            a.to_string(),
            format!("http://{a}"),
            format!("https://{a}"),
            format!("http://localhost:{port}"),
            format!("localhost:{port}"),
        ]
    }

    /// Substrings that would show the tripwire's address in a body.
    fn needles(&self) -> Vec<String> {
        let port = self.addr.port();
        vec![self.addr.to_string(), format!("localhost:{port}")]
    }

    /// Waits a little for connections still in flight, then the count.
    async fn hits_after_grace(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(700)).await;
        self.accepted.load(Ordering::SeqCst)
    }

    /// Proves the tripwire counts (one connection of our own), then starts the count from zero.
    async fn self_test(&self) {
        drop(
            tokio::net::TcpStream::connect(self.addr)
                .await
                .expect("connect to tripwire"),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.accepted.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "the tripwire does not count connections"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.accepted.store(0, Ordering::SeqCst);
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One route of the router, with the smallest input that gets it past parameter checks.
/// `{cluster}` is replaced by the cluster under test.
struct Route {
    method: Method,
    /// The path template exactly as in `src/app.rs` (`{action}`, `{id}`, `{*path}` included).
    template: &'static str,
    /// A concrete path for the template.
    path: &'static str,
    /// Query the route needs (without the probe parameters).
    query: &'static str,
    /// JSON body (probe fields are added to it).
    body: Option<Value>,
}

fn r(method: Method, template: &'static str, path: &'static str, query: &'static str) -> Route {
    Route {
        method,
        template,
        path,
        query,
        body: None,
    }
}

fn with_body(mut route: Route, body: Value) -> Route {
    route.body = Some(body);
    route
}

/// Every route of `src/app.rs`, with each method it allows.
fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(M::GET, "/", "/", ""),
        r(M::GET, "/go", "/go", "to=/clusters/test/keys?mode=tree"),
        r(M::GET, "/clusters", "/clusters", ""),
        r(M::GET, "/clusters/{cluster}", "/clusters/{cluster}", ""),
        r(
            M::GET,
            "/clusters/{cluster}/ui/overview",
            "/clusters/{cluster}/ui/overview",
            "",
        ),
        r(
            M::GET,
            "/clusters/{cluster}/keys",
            "/clusters/{cluster}/keys",
            "key=/ssrf/a&prefix=/ssrf/&q=/ssrf/",
        ),
        r(
            M::GET,
            "/clusters/{cluster}/ui/nodes",
            "/clusters/{cluster}/ui/nodes",
            "prefix=/ssrf/",
        ),
        r(
            M::GET,
            "/clusters/{cluster}/ui/key",
            "/clusters/{cluster}/ui/key",
            "key=/ssrf/a",
        ),
        r(
            M::GET,
            "/clusters/{cluster}/ui/edit",
            "/clusters/{cluster}/ui/edit",
            "key=/ssrf/a",
        ),
        r(
            M::GET,
            "/clusters/{cluster}/edit",
            "/clusters/{cluster}/edit",
            "key=/ssrf/a",
        ),
        r(
            M::GET,
            "/clusters/{cluster}/history",
            "/clusters/{cluster}/history",
            "key=/ssrf/a",
        ),
        r(
            M::GET,
            "/clusters/{cluster}/leases",
            "/clusters/{cluster}/leases",
            "",
        ),
        r(
            M::GET,
            "/clusters/{cluster}/transfer",
            "/clusters/{cluster}/transfer",
            "prefix=/ssrf/",
        ),
        r(M::GET, "/api/v1/clusters", "/api/v1/clusters", ""),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/keys",
            "/api/v1/clusters/{cluster}/keys",
            "prefix=/ssrf/",
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/members",
            "/api/v1/clusters/{cluster}/members",
            "",
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/topology",
            "/api/v1/clusters/{cluster}/topology",
            "",
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/snapshot",
            "/api/v1/clusters/{cluster}/snapshot",
            "member=PROBE",
        ),
        with_body(
            r(
                M::POST,
                "/api/v1/clusters/{cluster}/maintenance/{action}",
                "/api/v1/clusters/{cluster}/maintenance/defragment",
                "",
            ),
            json!({"member": "PROBE"}),
        ),
        with_body(
            r(
                M::POST,
                "/api/v1/clusters/{cluster}/maintenance/{action}",
                "/api/v1/clusters/{cluster}/maintenance/move-leader",
                "",
            ),
            json!({"member": "PROBE"}),
        ),
        with_body(
            r(
                M::POST,
                "/api/v1/clusters/{cluster}/maintenance/{action}",
                "/api/v1/clusters/{cluster}/maintenance/disarm",
                "",
            ),
            json!({}),
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/key",
            "/api/v1/clusters/{cluster}/key",
            "key=/ssrf/a",
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/value",
            "/api/v1/clusters/{cluster}/value",
            "key=/ssrf/a",
        ),
        with_body(
            r(
                M::PUT,
                "/api/v1/clusters/{cluster}/key",
                "/api/v1/clusters/{cluster}/key",
                "",
            ),
            json!({"key": "/ssrf/put", "value": "v", "expected_mod_revision": 0}),
        ),
        r(
            M::DELETE,
            "/api/v1/clusters/{cluster}/key",
            "/api/v1/clusters/{cluster}/key",
            "key=/ssrf/none&expected_mod_revision=1",
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/delete-prefix",
            "/api/v1/clusters/{cluster}/delete-prefix",
            "prefix=/ssrf/",
        ),
        with_body(
            r(
                M::POST,
                "/api/v1/clusters/{cluster}/delete-prefix",
                "/api/v1/clusters/{cluster}/delete-prefix",
                "",
            ),
            json!({"prefix": "/ssrf-none/", "expected_count": 0, "revision": 1}),
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/history",
            "/api/v1/clusters/{cluster}/history",
            "key=/ssrf/a",
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/watch",
            "/api/v1/clusters/{cluster}/watch",
            "prefix=/ssrf/",
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/export",
            "/api/v1/clusters/{cluster}/export",
            "prefix=/ssrf/",
        ),
        with_body(
            r(
                M::POST,
                "/api/v1/clusters/{cluster}/import",
                "/api/v1/clusters/{cluster}/import",
                "dry_run=true",
            ),
            json!({"revision": 1, "prefix_b64": "", "items": [], "keys": []}),
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/leases",
            "/api/v1/clusters/{cluster}/leases",
            "",
        ),
        r(
            M::GET,
            "/api/v1/clusters/{cluster}/leases/{id}",
            "/api/v1/clusters/{cluster}/leases/1",
            "keys=5",
        ),
        r(
            M::DELETE,
            "/api/v1/clusters/{cluster}/leases/{id}",
            "/api/v1/clusters/{cluster}/leases/1",
            "",
        ),
        r(M::GET, "/static/{*path}", "/static/app.js", ""),
        r(M::GET, "/healthz", "/healthz", ""),
        r(M::GET, "/readyz", "/readyz", ""),
        r(M::GET, "/metrics", "/metrics", ""),
        r(M::GET, "/login", "/login", "next=/clusters/test/keys"),
        with_body(
            r(M::POST, "/login", "/login", ""),
            json!({"username": "PROBE", "password": "not-a-password"}),
        ),
        r(M::POST, "/logout", "/logout", ""),
    ]
}

/// Every path template the router of `src/app.rs` declares (`&p("…")`), read from the source so
/// that a route added later without a probe here makes the SSRF test fail.
fn declared_routes() -> BTreeSet<String> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/app.rs"))
        .expect("read src/app.rs");
    let mut out = BTreeSet::new();
    let mut rest = src.as_str();
    while let Some(at) = rest.find("p(\"") {
        rest = &rest[at + 3..];
        if let Some(end) = rest.find('"') {
            out.insert(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// The probe parameters: every name a proxy-style dashboard might read an address from.
const PROBE_PARAMS: &[&str] = &[
    "endpoint",
    "endpoints",
    "host",
    "url",
    "addr",
    "address",
    "cluster",
    "target",
    "server",
    "peer",
    "member",
];

/// Headers that name a host.
const PROBE_HEADERS: &[&str] = &[
    "host",
    "x-forwarded-host",
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
    "x-etcd-endpoint",
    "x-etcd-endpoints",
    "origin",
    "referer",
];

/// What one probe request got back.
struct Answer {
    what: String,
    status: u16,
    body: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// The route's own body with `"PROBE"` values replaced by the probe address.
fn fill_probe(body: &Value, probe: &str) -> Value {
    let mut b = body.clone();
    if let Value::Object(map) = &mut b {
        for v in map.values_mut() {
            if v == "PROBE" {
                *v = json!(probe);
            }
        }
    }
    b
}

/// [`fill_probe`], plus probe fields (every name in [`PROBE_PARAMS`], nested ones too).
fn probe_body(body: &Value, probe: &str) -> Value {
    let mut b = fill_probe(body, probe);
    if let Value::Object(map) = &mut b {
        for name in PROBE_PARAMS {
            map.entry(name.to_string()).or_insert(json!(probe));
        }
        map.insert("endpoints".into(), json!([probe]));
        map.insert(
            "tls".into(),
            json!({"server_name": probe, "ca": "/etc/passwd"}),
        );
        map.insert(
            "cluster_config".into(),
            json!({"name": "x", "endpoints": [probe]}),
        );
    }
    b
}

/// Sends one request and collects the answer; a streaming answer (watch) is read for a moment.
async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(String, String)],
    body: Option<&Value>,
    what: String,
) -> Answer {
    let mut req = http.request(method.clone(), url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = tokio::time::timeout(Duration::from_secs(15), req.send())
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 15 s"))
        .unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
    let status = resp.status().as_u16();
    let streaming = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let body = if streaming {
        // An event stream never ends: take what comes within a moment.
        let mut resp = resp;
        let mut text = String::new();
        let _ = tokio::time::timeout(Duration::from_millis(300), async {
            while let Ok(Some(chunk)) = resp.chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await;
        text
    } else {
        let bytes = tokio::time::timeout(Duration::from_secs(15), resp.bytes())
            .await
            .unwrap_or_else(|_| panic!("{what}: body not finished within 15 s"))
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Answer { what, status, body }
}

/// Runs every probe of every route against `cluster`, returning every answer.
async fn probe_all_routes(
    base_url: &str,
    cluster: &str,
    trip: &Tripwire,
    http: &reqwest::Client,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    let spellings = trip.spellings();
    for route in routes() {
        let path = route.path.replace("{cluster}", cluster);
        for probe in &spellings {
            let enc = percent_encode_query(probe.as_bytes());
            let mut query = route.query.replace("PROBE", &enc);
            for name in PROBE_PARAMS {
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(&format!(
                    "{name}={enc}&{name}_b64={}",
                    b64url(probe.as_bytes())
                ));
            }
            let url = format!("{base_url}{path}?{query}");
            let body = route.body.as_ref().map(|b| probe_body(b, probe));
            answers.push(
                send(
                    http,
                    route.method.clone(),
                    &url,
                    &[],
                    body.as_ref(),
                    format!("{} {url}", route.method),
                )
                .await,
            );
        }
        // Headers one at a time (each alone is the whole story a proxy would believe), then all
        // at once, with cookies.
        let probe = &spellings[0];
        let plain_query = route
            .query
            .replace("PROBE", &percent_encode_query(probe.as_bytes()));
        let url = if plain_query.is_empty() {
            format!("{base_url}{path}")
        } else {
            format!("{base_url}{path}?{plain_query}")
        };
        let body = route.body.as_ref().map(|b| fill_probe(b, probe));
        let header_value = |name: &str| -> String {
            match name {
                "origin" => format!("http://{probe}"),
                "referer" => format!("http://{probe}/clusters/x/keys"),
                "forwarded" => format!("for=127.0.0.1;host=\"{probe}\";proto=http"),
                "x-forwarded-for" | "x-real-ip" => trip.addr.ip().to_string(),
                _ => probe.clone(),
            }
        };
        let cookie = format!(
            "endpoint={probe}; endpoints={probe}; etcd={probe}; cluster={}; host={probe}",
            percent_encode_query(probe.as_bytes())
        );
        let mut all: Vec<(String, String)> = PROBE_HEADERS
            .iter()
            .map(|h| (h.to_string(), header_value(h)))
            .collect();
        all.push(("cookie".into(), cookie.clone()));
        let mut sets: Vec<Vec<(String, String)>> = PROBE_HEADERS
            .iter()
            .map(|h| vec![(h.to_string(), header_value(h))])
            .collect();
        sets.push(vec![("cookie".into(), cookie)]);
        sets.push(all);
        for headers in sets {
            let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
            answers.push(
                send(
                    http,
                    route.method.clone(),
                    &url,
                    &headers,
                    body.as_ref(),
                    format!("{} {url} with {names:?}", route.method),
                )
                .await,
            );
        }
    }
    answers
}

/// Fails listing every answer whose error body shows one of `needles`.
fn assert_no_error_body_names(answers: &[Answer], needles: &[String]) {
    let leaks: Vec<String> = answers
        .iter()
        .filter(|a| a.status >= 400)
        .filter(|a| needles.iter().any(|n| a.body.contains(n.as_str())))
        .map(|a| {
            format!(
                "{} -> {}: {}",
                a.what,
                a.status,
                a.body.chars().take(300).collect::<String>()
            )
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{} error bodies name the probe address {needles:?}:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_parameter_header_cookie_or_body_makes_etcdboard_dial_an_address() {
    let trip = Tripwire::start().await;
    let app = spawn_app_with(AppOptions {
        members: 1,
        ..AppOptions::default()
    })
    .await;
    app.put_all(&[("/ssrf/a", "a"), ("/ssrf/b", "b")]).await;

    let declared = declared_routes();
    let probed: BTreeSet<String> = routes().iter().map(|r| r.template.to_string()).collect();
    let missing: Vec<&String> = declared.difference(&probed).collect();
    assert!(
        missing.is_empty(),
        "routes of src/app.rs without an SSRF probe here: {missing:?}"
    );

    let http = client();
    let base_url = app.url("");
    let answers = probe_all_routes(&base_url, "test", &trip, &http).await;
    assert!(answers.len() > 500, "only {} probes ran", answers.len());

    // The cluster is healthy: no probe makes etcdboard fail towards etcd (a 5xx would mean it
    // tried to reach something other than its configured members).
    let failed: Vec<String> = answers
        .iter()
        .filter(|a| a.status >= 500)
        .map(|a| {
            format!(
                "{} -> {}: {}",
                a.what,
                a.status,
                a.body.chars().take(200).collect::<String>()
            )
        })
        .collect();
    assert!(failed.is_empty(), "server errors:\n{}", failed.join("\n"));
    assert_no_error_body_names(&answers, &trip.needles());
    assert_eq!(
        trip.hits_after_grace().await,
        0,
        "etcdboard connected to an address named by a request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_names_that_look_like_addresses_are_unknown_clusters() {
    let trip = Tripwire::start().await;
    let app = spawn_app_with(AppOptions {
        members: 1,
        ..AppOptions::default()
    })
    .await;
    let http = client();
    let base_url = app.url("");
    let mut answers = Vec::new();
    let mut names: Vec<String> = trip
        .spellings()
        .iter()
        .map(|s| percent_encode_query(s.as_bytes()).replace('/', "%2F"))
        .collect();
    names.push("nope".into());
    names.push("test%00".into());
    names.push("TEST".into());
    for name in &names {
        for route in routes().iter().filter(|r| r.template.contains("{cluster}")) {
            let path = route.path.replace("{cluster}", name);
            let url = format!("{base_url}{path}?{}", route.query.replace("PROBE", "1"));
            let a = send(
                &http,
                route.method.clone(),
                &url,
                &[],
                route.body.as_ref(),
                format!("{} {url}", route.method),
            )
            .await;
            // A write may be refused by policy before the cluster is looked up; it must never
            // get further than that.
            let refused_first = route.method != Method::GET && matches!(a.status, 401 | 403);
            assert!(
                a.status == 404 || refused_first,
                "{} -> {} (expected 404): {}",
                a.what,
                a.status,
                a.body
            );
            answers.push(a);
        }
    }
    assert_no_error_body_names(&answers, &trip.needles());
    assert_eq!(trip.hits_after_grace().await, 0);
}

/// Loopback addresses with a port, as they appear in a text (`127.0.0.1:2379`).
fn addresses_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("127.") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_digit() || bytes[end] == b'.' || bytes[end] == b':')
        {
            end += 1;
        }
        let found = text[start..end].trim_end_matches([':', '.']);
        if found.contains(':') {
            out.insert(found.to_string());
        }
        i = end.max(start + 1);
    }
    out
}

/// Loopback ports held by a socket that is bound but never listens: a connection to one is
/// refused, and no other test (or process) can take the port while the guard lives, so a
/// "dead" member cannot come alive under the test.
struct DeadPorts {
    fds: Vec<libc::c_int>,
    ports: Vec<u16>,
}

impl Drop for DeadPorts {
    fn drop(&mut self) {
        for fd in &self.fds {
            // SAFETY: closing descriptors this guard opened and nobody else uses.
            unsafe { libc::close(*fd) };
        }
    }
}

fn dead_ports(n: usize) -> DeadPorts {
    let mut held = DeadPorts {
        fds: Vec::new(),
        ports: Vec::new(),
    };
    for _ in 0..n {
        // SAFETY: plain socket calls on a fresh descriptor with correctly sized addresses.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0, "socket");
            held.fds.push(fd);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            addr.sin_port = 0;
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let rc = libc::bind(fd, (&raw const addr).cast(), len);
            assert_eq!(rc, 0, "bind");
            let mut bound: libc::sockaddr_in = std::mem::zeroed();
            let mut blen = len;
            let rc = libc::getsockname(fd, (&raw mut bound).cast(), &mut blen);
            assert_eq!(rc, 0, "getsockname");
            held.ports.push(u16::from_be(bound.sin_port));
        }
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_members_are_all_dead_answers_with_errors_that_name_no_other_host() {
    init_logs();
    let trip = Tripwire::start().await;
    let dead = dead_ports(2);
    let configured: Vec<String> = dead
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let mut endpoints: Vec<String> = configured.iter().map(|a| format!("http://{a}")).collect();
    // A name that does not resolve: its resolver error must not be shown raw either.
    endpoints.push("http://etcd-member.invalid:2379".into());
    let http_args = HttpArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        etcd_timeout: Duration::from_secs(2),
        kube: "off".into(),
        ..HttpArgs::default()
    };
    let config = Config::new(
        &http_args,
        vec![ClusterConfig {
            name: "dead".into(),
            endpoints,
            ..Default::default()
        }],
    )
    .expect("config");
    let replica = serve_config(config).await;
    let addr = replica.addr;

    let http = client();
    let base_url = format!("http://{addr}");
    let started = Instant::now();
    let mut answers = Vec::new();
    for route in routes() {
        let path = route.path.replace("{cluster}", "dead");
        let enc = percent_encode_query(trip.addr.to_string().as_bytes());
        let url = format!(
            "{base_url}{path}?{}&endpoint={enc}",
            route.query.replace("PROBE", "1")
        );
        let t = Instant::now();
        let a = send(
            &http,
            route.method.clone(),
            &url,
            &[("x-etcd-endpoint".into(), trip.addr.to_string())],
            route.body.as_ref(),
            format!("{} {url}", route.method),
        )
        .await;
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "{} took {:?} with every member dead",
            a.what,
            t.elapsed()
        );
        answers.push(a);
    }
    drop(replica);
    eprintln!(
        "{} routes answered in {:?}",
        answers.len(),
        started.elapsed()
    );

    assert!(
        answers
            .iter()
            .any(|a| a.status == 503 && a.what.contains("/api/v1/clusters/dead/keys")),
        "listing keys of a dead cluster is a 503"
    );
    // Raw dial errors look like these; etcdboard shows its own short reasons instead.
    const RAW: &[&str] = &[
        "os error",
        "failed to lookup address",
        "Name or service not known",
        "error trying to connect",
        "hyper::Error",
        "tonic::transport",
    ];
    let mut problems = Vec::new();
    for a in &answers {
        for raw in RAW {
            if a.body.contains(raw) {
                problems.push(format!(
                    "{} -> {}: raw dial error `{raw}`: {}",
                    a.what,
                    a.status,
                    a.body.chars().take(300).collect::<String>()
                ));
            }
        }
        for found in addresses_in(&a.body) {
            if !configured.contains(&found) {
                problems.push(format!(
                    "{} -> {}: names {found}, which is not configured",
                    a.what, a.status
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_no_error_body_names(&answers, &trip.needles());
    assert_eq!(trip.hits_after_grace().await, 0);
}

/// A tiny deterministic generator (xorshift), so a failure can be reproduced from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random keys and values rich in the bytes URLs, query parsers and HTML treat specially.
fn random_bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
    const SPECIAL: &[u8] = b"\x00\xff/%+?#& =\n\r\t\"'<>\\;:@";
    let len = 1 + rng.below(max_len);
    (0..len)
        .map(|_| match rng.below(4) {
            0 => SPECIAL[rng.below(SPECIAL.len())],
            1 => 0x80 + rng.below(0x80) as u8,
            _ => rng.next() as u8,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_random_byte_keys_read_back_byte_exact_through_every_key_encoding() {
    let app: TestApp = spawn_app_with(AppOptions {
        members: 1,
        ..AppOptions::default()
    })
    .await;
    let seed = std::env::var("SECURITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_e7cd_b0a2_d001u64);
    eprintln!("random keys from seed {seed} (set SECURITY_SEED to repeat)");
    let mut rng = Rng(seed);
    let prefix: &[u8] = b"/rt/";
    let mut keys: BTreeSet<Vec<u8>> = [
        &b"%"[..],
        b"+",
        b"?#",
        b" a b\n",
        b"\xff\x00",
        b"%2F",
        b"%zz",
        b"a=b&c=d",
        b"key_b64=AAAA",
        b"\xc3\x28",
        b"\xed\xa0\x80",
        b"/",
        b"//",
    ]
    .iter()
    .map(|k| [prefix, k].concat())
    .collect();
    while keys.len() < 300 {
        keys.insert([prefix, &random_bytes(&mut rng, 24)].concat());
    }
    // Keys outside any readable prefix too: a lone 0x00, 0xff…, and plain random bytes.
    let mut outside: BTreeSet<Vec<u8>> = [vec![0u8], vec![0xff, 0xff], b"\x00/x".to_vec()].into();
    while outside.len() < 30 {
        outside.insert(random_bytes(&mut rng, 16));
    }
    outside.retain(|k| !k.starts_with(prefix));
    let kvs: Vec<(Vec<u8>, Vec<u8>)> = keys
        .iter()
        .chain(outside.iter())
        .map(|k| (k.clone(), random_bytes(&mut rng, 64)))
        .collect();
    app.put_all(&kvs).await;

    let std_b64 = |k: &[u8]| percent_encode_query(b64(k).as_bytes());
    for (key, value) in &kvs {
        let encodings = [
            format!("key={}", pct(key)),
            format!("key={}", percent_encode_query(key)),
            format!("key_b64={}", b64url(key)),
            format!("key_b64={}", std_b64(key)),
        ];
        for query in encodings {
            let (status, body) = app
                .get_json(&format!("/api/v1/clusters/test/key?{query}"))
                .await;
            assert_eq!(status, 200, "{query} ({key:?}): {body}");
            assert_eq!(
                body["key_b64"],
                json!(b64(key)),
                "{query}: the key read back differs"
            );
            assert_eq!(
                body["value_b64"],
                json!(b64(value)),
                "{query}: the value read back differs"
            );
            match std::str::from_utf8(key) {
                Ok(text) => assert_eq!(body["key"], json!(text), "{query}"),
                Err(_) => assert!(
                    body["key"].is_null(),
                    "{query}: a non-UTF-8 key has no text"
                ),
            }
        }
    }

    // The flat listing under the prefix gives back exactly the keys written, in byte order.
    let listed = app
        .list_all(&format!("mode=flat&limit=37&prefix={}", pct(prefix)))
        .await;
    let expected: Vec<(String, bool)> = keys.iter().map(|k| (b64(k), false)).collect();
    assert_eq!(
        listed, expected,
        "the flat listing of /rt/ is not byte-exact"
    );

    // Garbage where a cursor or a base64 key goes is a 400, never a key nobody asked for.
    let mut garbage_rng = Rng(seed ^ 0x00ff_00ff);
    for _ in 0..60 {
        let junk = pct(&random_bytes(&mut garbage_rng, 30));
        let (status, body) = app
            .get_json(&format!(
                "/api/v1/clusters/test/keys?prefix=/rt/&after={junk}"
            ))
            .await;
        assert_eq!(status, 400, "after={junk}: {body}");
        let (status, body) = app
            .get_json(&format!("/api/v1/clusters/test/key?key_b64={junk}"))
            .await;
        assert!(
            status == 400 || status == 404,
            "key_b64={junk} gave {status}: {body}"
        );
    }
}

/// One request with `Host: host`; status and body.
async fn as_host(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    host: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let mut req = http.request(method, url).header("host", host);
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// DNS rebinding: a page on `attacker.example` points its own name at this server's loopback
/// address and reads what it serves as its own origin; its requests say `Host: attacker.example`.
/// They get a 403 before anything reads or writes a cluster, on every kind of route. localhost,
/// addresses and the names given in `--allowed-hosts` are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_naming_a_host_this_server_is_not_reached_as_are_refused() {
    let app = spawn_app_with(AppOptions {
        members: 1,
        ..AppOptions::default()
    })
    .await;
    app.put_all(&[("/hidden/secret", "s3cret-value")]).await;
    let http = client();
    let port = app.addr.port();
    let key_url = app.url("/api/v1/clusters/test/key?key=/hidden/secret");
    let write =
        json!({"key": "/hidden/secret", "value": "overwritten", "expected_mod_revision": 0});

    for host in [
        "attacker.example".to_string(),
        format!("attacker.example:{port}"),
        format!("localhost.attacker.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
    ] {
        let (status, body) = as_host(&http, Method::GET, &key_url, &host, None).await;
        assert_eq!(status, 403, "{host}: {body}");
        assert!(!body.contains("s3cret"), "{host}: {body}");
        let error: Value = serde_json::from_str(&body).expect("API errors are JSON");
        assert!(
            error["error"]
                .as_str()
                .unwrap_or("")
                .contains("--allowed-hosts"),
            "{host}: {body}"
        );
        for path in [
            "/",
            "/clusters/test/keys?key=/hidden/secret",
            "/clusters/test/ui/nodes?prefix=/hidden/",
            "/api/v1/clusters",
            "/static/app.js",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            let (status, body) = as_host(&http, Method::GET, &app.url(path), &host, None).await;
            assert_eq!(status, 403, "{host} {path}: {body}");
            assert!(
                !body.contains("s3cret") && !body.contains("hidden") && !body.contains("test"),
                "{host} {path}: {body}"
            );
        }
        let (status, body) = as_host(
            &http,
            Method::PUT,
            &app.url("/api/v1/clusters/test/key"),
            &host,
            Some(&write),
        )
        .await;
        assert_eq!(status, 403, "{host}: {body}");
    }
    let (status, body) = app
        .get_json("/api/v1/clusters/test/key?key=/hidden/secret")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["value"], "s3cret-value",
        "a refused write changed the key"
    );

    // The names a loopback server is reached as (one label: nginx's name for an `upstream`).
    for host in [
        format!("localhost:{port}"),
        "etcdboard".to_string(),
        format!("app.localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = as_host(&http, Method::GET, &key_url, &host, None).await;
        assert_eq!(status, 200, "{host}: {body}");
        assert!(body.contains("s3cret-value"), "{host}: {body}");
    }

    // Named hosts, exactly or below a suffix, on a server that lists them.
    let named = spawn_app_with(AppOptions {
        members: 1,
        allowed_hosts: vec!["etcd.example.com".into(), "*.corp.example".into()],
        ..AppOptions::default()
    })
    .await;
    named.put_all(&[("/hidden/secret", "s3cret-value")]).await;
    let key_url = named.url("/api/v1/clusters/test/key?key=/hidden/secret");
    for host in [
        "etcd.example.com",
        "ETCD.example.com:443",
        "a.corp.example:8080",
    ] {
        let (status, body) = as_host(&http, Method::GET, &key_url, host, None).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    for host in ["corp.example", "example.com", "attacker.example"] {
        let (status, body) = as_host(&http, Method::GET, &key_url, host, None).await;
        assert_eq!(status, 403, "{host}: {body}");
    }
}
