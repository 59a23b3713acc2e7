//! What the platform team relies on: metrics, readiness, and a shutdown that neither hangs nor
//! strands browsers on a replica that is going away.

use std::net::SocketAddr;
use std::time::Duration;

use etcdboard::app::App;
use etcdboard::config::{ClusterConfig, Config, HttpArgs};
use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};

use crate::helpers::{init_logs, spawn_app, spawn_app_with, AppOptions};

/// An etcdboard whose shutdown the test triggers and waits for itself.
struct Board {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Board {
    async fn start(clusters: Vec<ClusterConfig>, shutdown_timeout: Duration) -> Board {
        init_logs();
        let http = HttpArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kube: "off".into(),
            shutdown_timeout,
            ..HttpArgs::default()
        };
        let app = App::build(Config::new(&http, clusters).unwrap())
            .await
            .unwrap();
        let addr = app.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Board {
            addr,
            stop: Some(tx),
            served,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Polls `/readyz` until it answers `want` and every cluster has been observed once (until
    /// then each is "not observed yet").
    async fn readyz_until(&self, want: u16) -> serde_json::Value {
        let http = reqwest::Client::new();
        let mut last = None;
        for _ in 0..100 {
            let resp = http.get(self.url("/readyz")).send().await.unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap();
            let observed = !body.to_string().contains("not observed yet");
            if status == want && observed {
                return body;
            }
            last = Some((status, body));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("/readyz never answered {want}; last: {last:?}");
    }
}

fn cluster(name: &str, endpoints: Vec<String>, optional: bool) -> ClusterConfig {
    ClusterConfig {
        name: name.into(),
        endpoints,
        optional,
        ..Default::default()
    }
}

async fn one_member_etcd() -> LocalCluster {
    LocalCluster::start(LocalClusterOptions {
        members: 1,
        ..Default::default()
    })
    .await
    .expect("start etcd")
}

/// A client URL nothing listens on: a cluster that is down.
fn dead_endpoint() -> String {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    drop(socket);
    format!("http://127.0.0.1:{port}")
}

/// Reads an SSE response until `until` appears or the stream ends; returns what was read and
/// whether the stream ended.
async fn read_sse(
    resp: &mut reqwest::Response,
    until: Option<&str>,
    within: Duration,
) -> (String, bool) {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if until.is_some_and(|u| text.contains(u)) {
            return (text, false);
        }
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => return (text, true),
            Ok(Err(e)) => panic!("stream failed: {e}; read so far: {text}"),
            Err(_) => panic!("nothing more within {within:?}; read so far: {text}"),
        }
    }
}

#[tokio::test]
async fn metrics_show_requests_by_route_and_etcd_calls_by_operation() {
    let app = spawn_app().await;
    let secret_key = "/payroll/ceo-salary";
    let (status, _) = app
        .get_json(&format!("/api/v1/clusters/test/key?key={secret_key}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get_text("/no/such/page/for-ceo-salary").await;
    assert_eq!(status, 404);
    let mut watch = app
        .http
        .get(app.url("/api/v1/clusters/test/watch?prefix=/payroll/"))
        .send()
        .await
        .unwrap();
    read_sse(&mut watch, Some("event: ready"), Duration::from_secs(10)).await;

    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    for line in [
        r#"etcdboard_http_requests_total{method="GET",route="/api/v1/clusters/{cluster}/key",status="404"} 1"#,
        r#"etcdboard_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"etcdboard_http_request_duration_seconds_count{method="GET",route="/api/v1/clusters/{cluster}/key",status="404"} 1"#,
        r#"etcdboard_etcd_requests_total{cluster="test",operation="get"}"#,
        r#"etcdboard_etcd_request_duration_seconds_bucket{le="#,
        "etcdboard_watches_open 1",
        "etcdboard_sse_clients 1",
        r#"etcdboard_kubernetes_state{state="off"} 1"#,
        "# EOF",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    // Paths and queries carry keys, which are attacker-controlled: never a label.
    assert!(!text.contains("salary"), "{text}");
    assert!(!text.contains("payroll"), "{text}");

    drop(watch);
    // The viewer count follows the stream's end (the server notices on its next write at the
    // latest, so poll briefly rather than assume).
    for _ in 0..50 {
        let text = app.get_text("/metrics").await.1;
        if text.contains("etcdboard_sse_clients 0") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the SSE client was never counted as gone");
}

#[tokio::test]
async fn readyz_names_unreachable_clusters_and_ignores_optional_ones() {
    let etcd = one_member_etcd().await;
    let down = dead_endpoint();

    let strict = Board::start(
        vec![
            cluster("up", etcd.client_urls(), false),
            cluster("down", vec![down.clone()], false),
        ],
        Duration::from_secs(2),
    )
    .await;
    let body = strict.readyz_until(503).await;
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["unreachable"], serde_json::json!(["down"]), "{body}");
    let down_entry = body["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "down")
        .unwrap();
    assert!(down_entry["reason"].is_string(), "{body}");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no address in the answer: {body}"
    );
    // /healthz is about the process only: it stays 200.
    let health = reqwest::get(strict.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    let lenient = Board::start(
        vec![
            cluster("up", etcd.client_urls(), false),
            cluster("lab", vec![down], true),
        ],
        Duration::from_secs(2),
    )
    .await;
    let body = lenient.readyz_until(200).await;
    assert_eq!(body["ready"], true, "{body}");
    let lab = body["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lab")
        .unwrap();
    assert_eq!(lab["reachable"], false, "{body}");
    assert_eq!(lab["optional"], true, "{body}");
}

#[tokio::test]
async fn shutdown_ends_live_streams_with_a_retry_hint_within_the_deadline() {
    let etcd = one_member_etcd().await;
    let deadline = Duration::from_secs(2);
    let mut board = Board::start(vec![cluster("test", etcd.client_urls(), false)], deadline).await;
    let http = reqwest::Client::new();
    let mut stream = http
        .get(board.url("/api/v1/clusters/test/watch?prefix=/app/"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    read_sse(&mut stream, Some("event: ready"), Duration::from_secs(10)).await;

    let asked = tokio::time::Instant::now();
    board.stop.take().unwrap().send(()).unwrap();
    let (rest, ended) = read_sse(&mut stream, None, Duration::from_secs(5)).await;
    assert!(ended, "the stream ends on shutdown: {rest}");
    assert!(
        rest.contains("retry: 500"),
        "the last thing a browser reads tells it to reconnect soon: {rest:?}"
    );

    let served = tokio::time::timeout(deadline + Duration::from_secs(3), &mut board.served)
        .await
        .expect("shutdown completes within its deadline")
        .unwrap();
    served.unwrap();
    assert!(
        asked.elapsed() < deadline + Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(board.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_stops_waiting_for_a_stuck_request_at_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let etcd = one_member_etcd().await;
    // About 90 MB of export: far more than loopback socket buffers hold (32 MiB + 4 MiB at most
    // here), so a client that stops reading keeps the request in flight as long as it likes.
    // Values of 4 KiB keep each export page (500 keys) under gRPC's 4 MiB message limit.
    let mut client = etcd_client::Client::connect(etcd.client_urls(), None)
        .await
        .unwrap();
    let value = vec![b'x'; 4 * 1024];
    for chunk in 0..160 {
        let ops: Vec<etcd_client::TxnOp> = (0..64)
            .map(|i| {
                etcd_client::TxnOp::put(format!("/big/{chunk:03}/{i:02}"), value.clone(), None)
            })
            .collect();
        client
            .txn(etcd_client::Txn::new().and_then(ops))
            .await
            .unwrap();
    }
    let deadline = Duration::from_secs(1);
    let mut board = Board::start(vec![cluster("test", etcd.client_urls(), false)], deadline).await;
    let mut slow = tokio::net::TcpStream::connect(board.addr).await.unwrap();
    slow.write_all(
        b"GET /api/v1/clusters/test/export?prefix=/big/&format=json HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let mut first = [0u8; 12];
    slow.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // Let the server fill the socket buffers, then stop reading.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let asked = tokio::time::Instant::now();
    board.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(deadline + Duration::from_secs(3), &mut board.served)
        .await
        .expect("shutdown gives up on the stuck request at its deadline")
        .unwrap()
        .unwrap();
    assert!(
        asked.elapsed() >= deadline - Duration::from_millis(100),
        "it waited for the in-flight request first ({:?})",
        asked.elapsed()
    );
    drop(slow);
}

/// Slow clients holding every request slot (bodies that never finish) do not stop the probes, and
/// a request queueing for a slot is still ended by its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_while_slow_clients_hold_every_request_slot() {
    use tokio::io::AsyncWriteExt;
    let timeout = Duration::from_secs(3);
    let app = spawn_app_with(AppOptions {
        request_timeout: timeout,
        ..AppOptions::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..260 {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        s.write_all(
            b"PUT /api/v1/clusters/test/key HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"key",
        )
        .await
        .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = std::time::Instant::now();
    let r = app
        .http
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(r.status(), 200);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "healthz waited {:?} behind the slow requests",
        asked.elapsed()
    );
    let asked = std::time::Instant::now();
    let r = app
        .http
        .get(app.url("/api/v1/clusters"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("an answer");
    assert!(
        asked.elapsed() < timeout + Duration::from_secs(1),
        "{} after {:?}",
        r.status(),
        asked.elapsed()
    );
    drop(held);
}

/// Each watched prefix is an etcd watch: a cluster has at most 100 at once, so a script opening
/// streams for ever more prefixes gets a 503, while a known prefix still gets its stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_watch_at_most_a_hundred_prefixes_per_cluster() {
    use etcdboard::web::live::MAX_TOPICS_PER_CLUSTER;
    let app = spawn_app().await;
    let open = |prefix: String| {
        let http = app.http.clone();
        let url = app.url(&format!("/api/v1/clusters/test/watch?prefix={prefix}"));
        async move { http.get(url).send().await.expect("answer") }
    };
    let mut streams = Vec::new();
    for i in 0..MAX_TOPICS_PER_CLUSTER {
        let resp = open(format!("/p{i}/")).await;
        assert_eq!(resp.status(), 200, "stream {i}");
        streams.push(resp);
    }
    let refused = open("/one-too-many/".into()).await;
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert!(
        body["error"].as_str().unwrap().contains("watched already"),
        "{body}"
    );
    let shared = open("/p0/".into()).await;
    assert_eq!(shared.status(), 200, "a prefix already watched is shared");
    drop(streams);
}

/// Sends `head` and then `chunks` of a request body on a fresh connection, `gap` apart, and
/// returns what the server answered (read until it closes the connection), or an error once
/// `within` has passed.
async fn send_paced(
    addr: SocketAddr,
    head: String,
    chunks: Vec<Vec<u8>>,
    gap: Duration,
    within: Duration,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let run = async {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut rd, mut wr) = s.into_split();
        let reader = tokio::spawn(async move {
            let mut answer = Vec::new();
            let _ = rd.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer).to_string()
        });
        wr.write_all(head.as_bytes()).await.unwrap();
        for c in chunks {
            tokio::time::sleep(gap).await;
            // The server may already have answered and closed: stop sending then.
            if wr.write_all(&c).await.is_err() || reader.is_finished() {
                break;
            }
        }
        reader.await.unwrap()
    };
    tokio::time::timeout(within, run)
        .await
        .map_err(|_| format!("no answer within {within:?}"))
}

fn import_head(len: usize) -> String {
    format!(
        "POST /api/v1/clusters/test/import?dry_run=false HTTP/1.1\r\nhost: x\r\n\
         content-type: application/json\r\nconnection: close\r\ncontent-length: {len}\r\n\r\n"
    )
}

/// An import's body may take longer than the request timeout to arrive, as long as it keeps
/// arriving: a large document over a slow link is not cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_body_that_keeps_arriving_may_take_longer_than_the_request_timeout() {
    let timeout = Duration::from_secs(2);
    let app = spawn_app_with(AppOptions {
        request_timeout: timeout,
        ..AppOptions::default()
    })
    .await;
    let keys: Vec<serde_json::Value> = (0..200)
        .map(|i| serde_json::json!({"key": format!("/slow/{i:03}"), "value": "v".repeat(1000)}))
        .collect();
    let doc =
        serde_json::to_vec(&serde_json::json!({"etcdboard_export": 1, "keys": keys})).unwrap();
    // About 200 KB in 20 chunks, 250 ms apart: 5 s in all, about 40 KB/s.
    let chunks: Vec<Vec<u8>> = doc.chunks(doc.len() / 20 + 1).map(<[u8]>::to_vec).collect();
    let started = std::time::Instant::now();
    let answer = send_paced(
        app.addr,
        import_head(doc.len()),
        chunks,
        Duration::from_millis(250),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() > timeout * 2,
        "the body took {:?}",
        started.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""created":200"#), "{answer}");
    let (_, got) = app
        .get_json("/api/v1/clusters/test/key?key=/slow/199")
        .await;
    assert_eq!(got["value"], "v".repeat(1000));
}

/// Imports may work for long, but their body must arrive within the request timeout: a client
/// that sends a few bytes of a large body and stops gets an answer and its slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_import_body_is_ended_at_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let timeout = Duration::from_secs(2);
    let app = spawn_app_with(AppOptions {
        request_timeout: timeout,
        ..AppOptions::default()
    })
    .await;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        b"POST /api/v1/clusters/test/import HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"keys",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 12];
    let read = tokio::time::timeout(timeout + Duration::from_secs(3), s.read_exact(&mut answer))
        .await
        .expect("an answer once the body is overdue");
    read.expect("read");
    let status = String::from_utf8_lossy(&answer).to_string();
    assert!(
        status.starts_with("HTTP/1.1 4") || status.starts_with("HTTP/1.1 5"),
        "{status}"
    );

    // Nor may it trickle: 20 bytes every 200 ms never stop, but never add up either.
    let chunks = vec![b" ".repeat(20); 100];
    let started = std::time::Instant::now();
    let answer = send_paced(
        app.addr,
        import_head(100_000),
        chunks,
        Duration::from_millis(200),
        timeout + Duration::from_secs(3),
    )
    .await
    .expect("an answer once the body falls behind");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(answer.contains("stopped arriving"), "{answer}");
    assert!(started.elapsed() < timeout + Duration::from_secs(2));
}
