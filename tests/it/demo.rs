//! `etcdboard demo`, the README's first command, as a user runs it: the binary starts its own
//! 3-member etcd, seeds the sample data, serves the dashboard, and on Ctrl-C (SIGINT) stops every
//! member it started, exits 0 and says nothing alarming on the way out.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the demo if the test fails before it stopped it.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GETs `url` and parses the JSON answer.
async fn get_json(http: &reqwest::Client, url: String) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

fn reachable(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(300)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_seeded_data_and_ctrl_c_stops_every_member_quietly() {
    // Port 0: the demo binds a free port itself and prints it (no race with other tests' ports).
    let mut child = Command::new(env!("CARGO_BIN_EXE_etcdboard"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etcdboard demo");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut demo = Running(child);
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    for pipe in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(lines_tx);

    // Up: the URL line comes after the members and the seeding.
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let url = loop {
        let line = lines_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no URL line within 90 s; output:\n{}", log.join("\n")));
        log.push(line.clone());
        if let Some(rest) = line.strip_prefix("etcdboard demo: ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    let members: Vec<String> = log
        .iter()
        .find_map(|l| l.strip_prefix("etcd members: "))
        .expect("the demo names its members")
        .split(", ")
        .map(str::to_string)
        .collect();
    assert_eq!(members.len(), 3, "{log:?}");
    // Not a terminal: progress as a line per tenth, not hundreds of carriage returns.
    let progress: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("seeding sample data"))
        .collect();
    assert!(
        (5..=11).contains(&progress.len()) && !progress.iter().any(|l| l.contains('\r')),
        "{progress:?}"
    );
    assert!(
        progress
            .last()
            .is_some_and(|l| l.ends_with("100025/100025 keys")),
        "{progress:?}"
    );
    assert!(members.iter().all(|m| m.starts_with("http://127.0.0.1:")));
    assert!(
        log.iter()
            .any(|l| l.starts_with("seeded ") && l.contains(" keys in ")),
        "{log:?}"
    );

    // Serving: the keys page and the 100,000 flat numeric keys.
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{url}clusters/demo/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let flat = get_json(
        &http,
        format!("{url}api/v1/clusters/demo/keys?mode=flat&start=99999&limit=3"),
    )
    .await;
    assert_eq!(flat["items"][0]["key"], "99999", "{flat}");
    assert_eq!(flat["stale"], false, "{flat}");
    let last = get_json(&http, format!("{url}api/v1/clusters/demo/key?key=100000")).await;
    assert_eq!(last["value"], "100000", "{last}");
    assert!(members.iter().all(|m| reachable(m)));
    // The cluster page: healthy, and no note about a Kubernetes the demo never runs in.
    let cluster = http
        .get(format!("{url}clusters/demo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cluster.contains("3/3 members"), "{cluster}");
    assert!(!cluster.contains("Kubernetes:"), "{cluster}");

    // The listing index is built and its watch is running (it used to complain when the members
    // went away under it).
    let ready = Instant::now();
    loop {
        let body = get_json(&http, format!("{url}api/v1/clusters/demo/keys?limit=1")).await;
        if body["index"] == "ready" {
            break;
        }
        assert!(ready.elapsed() < Duration::from_secs(30), "index: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Ctrl-C: exit 0 within the shutdown budget, every member gone, no warning on the way out.
    // SAFETY: kill(2) with a pid this test spawned and still owns.
    let pid = demo.0.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let stopped = Instant::now();
    let before_stop = log.len();
    let status = loop {
        if let Some(s) = demo.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "the demo did not exit within 20 s of Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    log.extend(lines_rx.iter());
    // (A warning while starting, e.g. a member retried after losing a port race to another test,
    // is not what this checks.)
    let on_the_way_out = &log[before_stop..];
    assert!(
        status.success(),
        "exit status {status}; output:\n{}",
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l == "stopped the demo etcd members"),
        "{log:?}"
    );
    for m in &members {
        assert!(
            !reachable(m),
            "member {m} still answers after the demo exited"
        );
    }
    let alarming: Vec<&String> = on_the_way_out
        .iter()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        alarming.is_empty(),
        "warnings on a clean Ctrl-C: {alarming:#?}"
    );
}
