//! etcd with client-certificate TLS and etcd with user/password auth, reached by the real
//! `etcdboard` binary configured through a YAML file exactly as a user writes it (issue #6).
//!
//! The TLS cluster has 3 members (what production runs; it costs the same start time as the
//! plain clusters of the other tests). The auth cluster has 1 member: auth is a cluster-wide
//! setting and one member shows it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};
use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};
use serde_json::Value;

use crate::helpers::{b64, init_logs};
use crate::support_browser::Browser;
use crate::support_tls::{make_pki, Served, SERVER_DNS};

/// The etcd timeout given to etcdboard here: errors must come well within it (plus page work).
const ETCD_TIMEOUT: &str = "2s";
/// The longest any answer may take with that timeout (never a hang).
const ANSWER_WITHIN: Duration = Duration::from_secs(6);

async fn get(url: &str) -> (u16, Value, Duration) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http");
    let started = Instant::now();
    let resp = http.get(url).send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, started.elapsed())
}

fn endpoints_yaml(etcd: &LocalCluster) -> String {
    format!("[{}]", etcd.client_urls().join(", "))
}

/// Writes `keys`, adds user `root` (etcd's `root` role) with `password`, runs `more` (more users
/// and roles) and turns etcd's auth on; returns a client signed in as root.
async fn enable_auth(
    etcd: &LocalCluster,
    keys: &[(&str, &str)],
    password: &str,
    more: impl AsyncFnOnce(&mut Client),
) -> Client {
    let mut c = Client::connect(etcd.client_urls(), None).await.unwrap();
    for (k, v) in keys {
        c.put(*k, *v, None).await.unwrap();
    }
    c.user_add("root", password, None).await.unwrap();
    c.user_grant_role("root", "root").await.unwrap();
    more(&mut c).await;
    c.auth_enable().await.unwrap();
    Client::connect(
        etcd.client_urls(),
        Some(ConnectOptions::new().with_user("root", password)),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cert_tls_etcd_is_browsed_through_a_config_file_and_bad_tls_settings_fail_clearly()
{
    init_logs();
    let pki = make_pki();
    let etcd = LocalCluster::start(LocalClusterOptions {
        members: 3,
        tls: Some(pki.etcd_tls()),
        ..Default::default()
    })
    .await
    .expect("start a TLS etcd");
    assert!(etcd
        .client_urls()
        .iter()
        .all(|u| u.starts_with("https://127.0.0.1:")));

    // Without a client certificate etcd refuses the connection: client-cert auth is really on.
    let ca_only = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(2))
        .with_tls(etcd_client::TlsOptions::new().ca_certificate(
            etcd_client::Certificate::from_pem(std::fs::read(pki.path("ca.crt")).unwrap()),
        ));
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        let mut c = Client::connect(etcd.client_urls(), Some(ca_only)).await?;
        c.get("x", None).await
    })
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "etcd answered a client without a certificate"
    );

    let mut direct = Client::connect(etcd.client_urls(), Some(etcd.connect_options().unwrap()))
        .await
        .expect("direct TLS client");
    direct.put("/tls/a", "alpha", None).await.unwrap();
    direct.put("/tls/b/c", "gamma", None).await.unwrap();

    let f = |name: &str| pki.path(name).display().to_string();
    let endpoints = endpoints_yaml(&etcd);
    let yaml = format!(
        "clusters:
  - name: tls
    endpoints: {endpoints}
    tls:
      ca: {ca}
      cert: {cert}
      key: {key}
  - name: tls-by-name
    endpoints: {endpoints}
    tls:
      ca: {ca}
      cert: {cert}
      key: {key}
      server_name: {SERVER_DNS}
  - name: wrong-name
    endpoints: {endpoints}
    tls:
      ca: {ca}
      cert: {cert}
      key: {key}
      server_name: not-this-server.example
  - name: wrong-ca
    endpoints: {endpoints}
    tls:
      ca: {other_ca}
      cert: {cert}
      key: {key}
  - name: no-client-cert
    endpoints: {endpoints}
    tls:
      ca: {ca}
",
        ca = f("ca.crt"),
        cert = f("client.crt"),
        key = f("client.key"),
        other_ca = f("other-ca.crt"),
    );
    let served = Served::start(&yaml, ETCD_TIMEOUT, &[("ETCDBOARD_METRICS_INTERVAL", "1s")]).await;

    // The members' /metrics (on their https client URLs, behind client-cert auth too) feed the
    // cluster page's charts: a line per member in the DB size chart.
    for cluster in ["tls", "tls-by-name"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, page, _) =
                get(&format!("{}/clusters/{cluster}/ui/overview", served.url)).await;
            assert_eq!(status, 200, "{cluster}: {page}");
            let page = page.as_str().unwrap_or_default().to_string();
            let chart = page
                .split("<figure class=\"chart\">")
                .find(|f| f.trim_start().starts_with("<figcaption>DB size <"))
                .unwrap_or_default();
            let lines = chart[..chart.find("</figure>").unwrap_or(chart.len())]
                .matches("<polyline class=\"series")
                .count();
            if lines == 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{cluster}: the DB size chart has {lines} member lines after 20 s:\n{chart}\nlog:\n{}",
                served.log_text()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    for cluster in ["tls", "tls-by-name"] {
        let (status, body, took) = get(&format!(
            "{}/api/v1/clusters/{cluster}/keys?prefix=/tls/&mode=tree",
            served.url
        ))
        .await;
        assert_eq!(
            status,
            200,
            "{cluster}: {body}\nlog:\n{}",
            served.log_text()
        );
        assert!(took < ANSWER_WITHIN, "{cluster}: listing took {took:?}");
        let items: Vec<(String, bool)> = body["items"]
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
        assert_eq!(
            items,
            vec![(b64(b"/tls/a"), false), (b64(b"/tls/b/"), true)],
            "{cluster}"
        );
        let (status, body, _) = get(&format!(
            "{}/api/v1/clusters/{cluster}/key?key=/tls/b/c",
            served.url
        ))
        .await;
        assert_eq!(status, 200, "{cluster}: {body}");
        assert_eq!(body["value"], "gamma", "{cluster}");
        // The HTML pages too.
        let (status, page, _) = get(&format!(
            "{}/clusters/{cluster}/keys?key=/tls/a",
            served.url
        ))
        .await;
        assert_eq!(status, 200, "{cluster}: {page}");
        assert!(
            page.as_str().unwrap_or_default().contains("alpha"),
            "{cluster}"
        );
    }

    let secrets: Vec<String> = pki
        .key_material("client.key")
        .into_iter()
        .chain(pki.key_material("server.key"))
        .chain(pki.key_material("ca.key"))
        .collect();
    assert!(!secrets.is_empty());
    // What a user must be told for each broken setting (the answer names the problem, fast).
    let expectations: [(&str, &[&str]); 3] = [
        ("wrong-name", &["tls", "certificate", "tls.server_name"]),
        ("wrong-ca", &["tls", "certificate", "tls.ca"]),
        ("no-client-cert", &["tls", "tls.cert"]),
    ];
    for (cluster, hints) in expectations {
        for path in [
            format!("/api/v1/clusters/{cluster}/keys?prefix=/tls/"),
            format!("/api/v1/clusters/{cluster}/key?key=/tls/a"),
            format!("/clusters/{cluster}/keys"),
        ] {
            let (status, body, took) = get(&format!("{}{path}", served.url)).await;
            let text = body.to_string();
            assert!(
                (500..600).contains(&status),
                "{path} with a broken TLS setting: {status} {text}"
            );
            assert!(took < ANSWER_WITHIN, "{path}: took {took:?} (a hang)");
            let lower = text.to_lowercase();
            assert!(
                hints.iter().all(|h| lower.contains(&h.to_lowercase())),
                "{path}: the error does not say what is wrong (expected all of {hints:?}): {text}"
            );
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "{path}: the answer shows key material"
                );
            }
            assert!(!text.contains("PRIVATE KEY"), "{path}: {text}");
        }
    }
    let log = served.log_text();
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "the log shows key material");
    }
    assert!(!log.contains("PRIVATE KEY"), "the log shows a private key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_with_auth_is_read_with_a_password_from_a_file_or_env_and_a_wrong_one_fails_clearly(
) {
    init_logs();
    // Three members: etcd's default "simple" auth tokens are known only to the member that
    // issued them, so this also shows every member gets its own authenticated client.
    let etcd = LocalCluster::start(LocalClusterOptions::default())
        .await
        .expect("start etcd");
    assert_eq!(etcd.client_urls().len(), 3);
    const PASSWORD: &str = "c0rrect-h0rse-Battery-St4ple";
    const WRONG: &str = "Tr0ub4dor-and-3-wrong";
    enable_auth(&etcd, &[("/auth/a", "alpha")], PASSWORD, async |_| {}).await;
    // Auth is really on: an anonymous read is refused now.
    let anonymous = Client::connect(etcd.client_urls(), None)
        .await
        .unwrap()
        .get("/auth/a", None)
        .await;
    assert!(anonymous.is_err(), "etcd still serves anonymous reads");

    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("password");
    std::fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, WRONG).unwrap();
    let endpoints = endpoints_yaml(&etcd);
    let yaml = format!(
        "clusters:
  - name: from-file
    endpoints: {endpoints}
    username: root
    password_file: {pw}
  - name: from-env
    endpoints: {endpoints}
    username: root
    password_env: ETCDBOARD_TEST_ROOT_PASSWORD
  - name: wrong-password
    endpoints: {endpoints}
    username: root
    password_file: {wrong}
  - name: no-password
    endpoints: {endpoints}
",
        pw = pw_file.display(),
        wrong = wrong_file.display(),
    );
    let served = Served::start(
        &yaml,
        ETCD_TIMEOUT,
        &[("ETCDBOARD_TEST_ROOT_PASSWORD", PASSWORD)],
    )
    .await;

    let mut bodies = Vec::new();
    for cluster in ["from-file", "from-env"] {
        let (status, body, _) = get(&format!(
            "{}/api/v1/clusters/{cluster}/keys?prefix=/auth/&mode=flat",
            served.url
        ))
        .await;
        assert_eq!(
            status,
            200,
            "{cluster}: {body}\nlog:\n{}",
            served.log_text()
        );
        assert_eq!(body["items"][0]["key"], "/auth/a", "{cluster}: {body}");
        let (status, body, _) = get(&format!(
            "{}/api/v1/clusters/{cluster}/key?key=/auth/a",
            served.url
        ))
        .await;
        assert_eq!(status, 200, "{cluster}: {body}");
        assert_eq!(body["value"], "alpha");
        bodies.push(body.to_string());
        // Each member is asked for its own status with a client authenticated on that member.
        // The first authentication can miss the status deadline on a loaded machine (etcd checks
        // the password with bcrypt), and so can the first member list (its answer then has no
        // members and says why in `error`), so the members get a few seconds to be listed and
        // all report healthy.
        let waited = std::time::Instant::now();
        loop {
            let (status, body, _) =
                get(&format!("{}/api/v1/clusters/{cluster}/members", served.url)).await;
            assert_eq!(status, 200, "{cluster}: {body}");
            let members = body["members"].as_array().expect("members");
            assert!(
                members.len() == 3 || (members.is_empty() && body["error"].is_string()),
                "{cluster}: {body}"
            );
            bodies.push(body.to_string());
            if members.len() == 3 && members.iter().all(|m| m["healthy"] == true) {
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(15),
                "{cluster}: not every member healthy: {body:#}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    for (cluster, hint) in [
        ("wrong-password", "authentication failed"),
        ("no-password", "user name is empty"),
    ] {
        for path in [
            format!("/api/v1/clusters/{cluster}/keys?prefix=/auth/"),
            format!("/api/v1/clusters/{cluster}/key?key=/auth/a"),
            format!("/clusters/{cluster}/keys"),
            format!("/clusters/{cluster}"),
        ] {
            let (status, body, took) = get(&format!("{}{path}", served.url)).await;
            let text = body.to_string();
            assert!(took < ANSWER_WITHIN, "{path}: took {took:?}");
            if path.starts_with("/clusters/") && !path.ends_with("/keys") {
                // The cluster page shows member state rather than failing as a whole.
                bodies.push(text);
                continue;
            }
            assert!((400..600).contains(&status), "{path}: {status} {text}");
            assert!(
                text.to_lowercase().contains(hint)
                    || (cluster == "no-password"
                        && text.to_lowercase().contains("permission denied")),
                "{path}: the error does not say `{hint}`: {text}"
            );
            bodies.push(text);
        }
    }
    // A wrong password is not tried again and again: each try costs etcd a bcrypt check, and
    // etcdboard's background work would try several times a second (about 6/s before).
    let refusals = || {
        (0..3)
            .filter_map(|i| etcd.log_path(i))
            .map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .matches("invalid password")
                    .count()
            })
            .sum::<usize>()
    };
    let before = refusals();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let tries = refusals() - before;
    assert!(
        tries <= 2,
        "etcd refused the wrong password {tries} times in 12 s"
    );
    let (_, body, took) = get(&format!(
        "{}/api/v1/clusters/wrong-password/keys?prefix=/auth/",
        served.url
    ))
    .await;
    assert!(took < ANSWER_WITHIN, "{took:?}");
    let text = body["error"].as_str().unwrap_or_default();
    assert!(
        text.contains("authentication failed")
            && text.contains("etcd refused the username and password etcdboard signs in with"),
        "{body}"
    );
    let log = served.log_text();
    for secret in [PASSWORD, WRONG] {
        assert!(!log.contains(secret), "the log shows a password");
        for b in &bodies {
            assert!(!b.contains(secret), "an answer shows a password: {b}");
        }
    }
}

/// Replaces `path` with `content` at once, as a Kubernetes Secret volume or cert-manager does.
fn replace_file(path: &std::path::Path, content: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls `url` until its status satisfies `want` (at most `within`); returns the last answer.
async fn status_until(
    url: &str,
    want: impl Fn(u16) -> bool,
    within: Duration,
    what: &str,
    served: &Served,
) -> (u16, Value) {
    let deadline = Instant::now() + within;
    loop {
        let (status, body, took) = get(url).await;
        assert!(took < ANSWER_WITHIN, "{url}: took {took:?} (a hang)");
        if want(status) {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {status} {body} after {within:?}\nlog:\n{}",
            served.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Certificates are rotated on disk while etcdboard runs (a Secret volume, cert-manager,
/// `kubeadm certs renew`): it reads the files again and makes new connections with them, keeps
/// the previous ones while the files are unusable, and never needs a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_tls_files_are_used_without_a_restart() {
    init_logs();
    let pki = make_pki();
    let etcd = LocalCluster::start(LocalClusterOptions {
        members: 1,
        tls: Some(pki.etcd_tls()),
        ..Default::default()
    })
    .await
    .expect("start a TLS etcd");
    let mut direct = Client::connect(etcd.client_urls(), Some(etcd.connect_options().unwrap()))
        .await
        .expect("direct TLS client");
    direct.put("/rot/a", "alpha", None).await.unwrap();

    // The files etcdboard reads, as mounted from a Secret.
    let mount = tempfile::tempdir().unwrap();
    let file = |name: &str| mount.path().join(name);
    let good_ca = std::fs::read(pki.path("ca.crt")).unwrap();
    for name in ["ca.crt", "client.crt", "client.key"] {
        std::fs::copy(pki.path(name), file(name)).unwrap();
    }
    let yaml = format!(
        "clusters:\n  - name: rot\n    endpoints: {}\n    tls:\n      ca: {}\n      cert: {}\n      key: {}\n",
        endpoints_yaml(&etcd),
        file("ca.crt").display(),
        file("client.crt").display(),
        file("client.key").display(),
    );
    let served = Served::start(&yaml, ETCD_TIMEOUT, &[]).await;
    let url = format!("{}/api/v1/clusters/rot/key?key=/rot/a", served.url);
    let within = Duration::from_secs(30);
    let (_, body) = status_until(&url, |s| s == 200, within, "at start", &served).await;
    assert_eq!(body["value"], "alpha");

    // A file that is not PEM (a rotation gone wrong): logged, and the previous material kept.
    replace_file(&file("ca.crt"), b"not a certificate\n");
    let deadline = Instant::now() + within;
    while !served
        .log_text()
        .contains("cannot be used; keeping the previous ones")
    {
        assert!(
            Instant::now() < deadline,
            "no warning:\n{}",
            served.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(served.log_text().contains("rot.tls.ca") || served.log_text().contains("tls.ca"));
    let (status, body, _) = get(&url).await;
    assert_eq!(status, 200, "{body}");

    // A CA that did not sign etcd's certificate: new connections use it (and so fail, saying
    // why) — the connections made before are not kept.
    replace_file(
        &file("ca.crt"),
        &std::fs::read(pki.path("other-ca.crt")).unwrap(),
    );
    let (_, body) = status_until(&url, |s| s >= 500, within, "with the other CA", &served).await;
    assert!(
        body.to_string().to_lowercase().contains("certificate"),
        "{body}"
    );
    let log = served.log_text();
    assert!(
        log.contains("TLS or password files changed; new connections use them")
            && log.contains("changed=ca"),
        "{log}"
    );

    // The right CA again: answered again, without a restart.
    replace_file(&file("ca.crt"), &good_ca);
    let (_, body) = status_until(&url, |s| s == 200, within, "with the CA back", &served).await;
    assert_eq!(body["value"], "alpha");
    let log = served.log_text();
    for s in pki.key_material("client.key") {
        assert!(!log.contains(s.as_str()), "the log shows key material");
    }
}

/// The etcd password is rotated: written to the password file (a rotated Secret) and changed in
/// etcd. etcdboard reads the file again and authenticates with the new password, without a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_password_file_is_used_without_a_restart() {
    init_logs();
    let etcd = LocalCluster::start(LocalClusterOptions {
        members: 1,
        ..Default::default()
    })
    .await
    .expect("start etcd");
    const OLD: &str = "first-Passw0rd-of-root";
    const NEW: &str = "second-Passw0rd-of-root";
    let mut root = enable_auth(&etcd, &[("/pw/a", "alpha")], OLD, async |_| {}).await;

    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("password");
    std::fs::write(&pw_file, format!("{OLD}\n")).unwrap();
    let yaml = format!(
        "clusters:\n  - name: pw\n    endpoints: {}\n    username: root\n    password_file: {}\n",
        endpoints_yaml(&etcd),
        pw_file.display(),
    );
    let served = Served::start(&yaml, ETCD_TIMEOUT, &[]).await;
    let url = format!("{}/api/v1/clusters/pw/key?key=/pw/a", served.url);
    let within = Duration::from_secs(30);
    let (_, body) = status_until(&url, |s| s == 200, within, "at start", &served).await;
    assert_eq!(body["value"], "alpha");

    // Rotate: the file first (the Secret), then etcd (as root, with the old password).
    replace_file(&pw_file, format!("{NEW}\n").as_bytes());
    root.user_change_password("root", NEW).await.unwrap();
    let (_, body) = status_until(&url, |s| s == 200, within, "after the rotation", &served).await;
    assert_eq!(body["value"], "alpha");
    // Answered with the new password, not an old session: etcd refuses the old one now.
    let old = Client::connect(
        etcd.client_urls(),
        Some(ConnectOptions::new().with_user("root", OLD)),
    )
    .await;
    assert!(old.is_err(), "etcd still accepts the old password");
    let log = served.log_text();
    assert!(
        log.contains("TLS or password files changed; new connections use them")
            && log.contains("changed=password"),
        "{log}"
    );
    for secret in [OLD, NEW] {
        assert!(!log.contains(secret), "the log shows a password");
    }
    // Every later call keeps working (the old connections are gone, not just lucky).
    for _ in 0..5 {
        let (status, body, _) = get(&url).await;
        assert_eq!(status, 200, "{body}");
    }
}

/// etcd's auth tokens expire (`--auth-token-ttl`, 5 minutes by default; a JWT after its `ttl`
/// whether used or not, as in the Bitnami chart): a page after a quiet spell is answered with a
/// new token, not "invalid auth token" from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_auth_token_is_renewed() {
    init_logs();
    let mut etcd = LocalCluster::start(LocalClusterOptions {
        members: 1,
        extra_args: vec!["--auth-token-ttl=2".into()],
        ..Default::default()
    })
    .await
    .expect("start etcd");
    const PASSWORD: &str = "short-lived-T0kens";
    enable_auth(&etcd, &[("/ttl/a", "alpha")], PASSWORD, async |_| {}).await;
    let yaml = format!(
        "clusters:\n  - name: ttl\n    endpoints: {}\n    username: root\n    password_env: ETCDBOARD_TEST_TTL_PASSWORD\n",
        endpoints_yaml(&etcd),
    );
    let served = Served::start(
        &yaml,
        ETCD_TIMEOUT,
        &[("ETCDBOARD_TEST_TTL_PASSWORD", PASSWORD)],
    )
    .await;
    let url = format!("{}/api/v1/clusters/ttl/key?key=/ttl/a", served.url);
    let (_, body) = status_until(
        &url,
        |s| s == 200,
        Duration::from_secs(30),
        "at start",
        &served,
    )
    .await;
    assert_eq!(body["value"], "alpha");
    for quiet in 0..2 {
        // Longer than the token's life with nothing asked.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (status, body, took) = get(&url).await;
        assert_eq!(
            status,
            200,
            "after quiet spell {quiet}: {body}\nlog:\n{}",
            served.log_text()
        );
        assert!(took < ANSWER_WITHIN, "took {took:?}");
    }

    // A restarted member has forgotten every token: live updates (a watch, which etcd checks
    // when it is created) come back with a new one.
    let mut live = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/clusters/ttl/watch?prefix=/ttl/",
            served.url
        ))
        .timeout(Duration::from_secs(90))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let mut text = String::new();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while !text.contains("event: ready") {
            match live.chunk().await {
                Ok(Some(bytes)) => text.push_str(&String::from_utf8_lossy(&bytes)),
                other => panic!("stream ended ({other:?}); read so far: {text}"),
            }
        }
    })
    .await;
    assert!(ready.is_ok(), "not ready; read so far: {text}");
    etcd.restart(0).await.expect("restart");
    let mut root = Client::connect(
        etcd.client_urls(),
        Some(ConnectOptions::new().with_user("root", PASSWORD)),
    )
    .await
    .unwrap();
    // Written until the stream shows it (the watch may come back after the first put).
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut n = 0;
    loop {
        n += 1;
        let key = format!("/ttl/after-restart-{n}");
        root.put(key.as_str(), "v", None).await.unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(3), async {
            while !text.contains(&b64(key.as_bytes())) && !text.contains(&key) {
                match live.chunk().await {
                    Ok(Some(bytes)) => text.push_str(&String::from_utf8_lossy(&bytes)),
                    other => panic!("stream ended ({other:?}); read so far: {text}"),
                }
            }
        })
        .await;
        if seen.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no change seen after the restart; read so far: {text}\nlog:\n{}",
            served.log_text()
        );
    }
}

/// etcdboard signs in as an etcd user whose etcd roles cover only `/app/` (etcd's own RBAC, as a
/// platform team grants a dashboard): what it may read browses normally, the levels it may not
/// list show the way to an opened key and say why, and what etcd refuses is a 403 that says it
/// was etcd's roles, not a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_user_limited_to_a_prefix_browses_that_prefix_and_is_told_why_not_the_rest() {
    init_logs();
    let etcd = LocalCluster::start(LocalClusterOptions {
        members: 1,
        ..Default::default()
    })
    .await
    .expect("start etcd");
    let keys = [("/app/a", "1"), ("/app/b/c", "2"), ("/other/x", "3")];
    enable_auth(&etcd, &keys, "root-Passw0rd", async |c| {
        c.role_add("app-read").await.unwrap();
        c.role_grant_permission(
            "app-read",
            etcd_client::Permission::read("/app/").with_prefix(),
        )
        .await
        .unwrap();
        c.user_add("dash", "dash-Passw0rd", None).await.unwrap();
        c.user_grant_role("dash", "app-read").await.unwrap();
    })
    .await;
    let yaml = format!(
        "clusters:\n  - name: r\n    endpoints: {}\n    username: dash\n    password_env: ETCDBOARD_TEST_DASH_PASSWORD\n",
        endpoints_yaml(&etcd),
    );
    let served = Served::start(
        &yaml,
        ETCD_TIMEOUT,
        &[("ETCDBOARD_TEST_DASH_PASSWORD", "dash-Passw0rd")],
    )
    .await;
    let url = |path: &str| format!("{}{path}", served.url);

    // The prefix it may read, as anywhere else.
    let (status, body) = status_until(
        &url("/api/v1/clusters/r/keys?prefix=/app/&mode=tree"),
        |s| s == 200,
        Duration::from_secs(30),
        "the readable prefix",
        &served,
    )
    .await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["/app/a", "/app/b/"]);
    // What etcd refuses: 403, saying it is etcd's roles.
    for path in [
        "/api/v1/clusters/r/keys?mode=tree",
        "/api/v1/clusters/r/key?key=/other/x",
    ] {
        let (status, body, took) = get(&url(path)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(took < ANSWER_WITHIN);
        let msg = body["error"].as_str().unwrap();
        assert!(
            msg.contains("permission denied") && msg.contains("etcd user etcdboard signs in as"),
            "{path}: {msg}"
        );
    }

    // The key browser's top level: a page that says why, with the search box, not an error page.
    let (status, page, _) = get(&url("/clusters/r/keys")).await;
    assert_eq!(status, 200, "{page}");
    let page = page.as_str().unwrap().to_string();
    assert!(page.contains(r#"class="empty denied""#), "{page}");
    assert!(page.contains("list the top level"), "{page}");
    assert!(page.contains(r#"id="search-input""#));
    // A deep link into the readable prefix: the way to it through the levels it may not list.
    let (status, page, _) = get(&url("/clusters/r/keys?key=/app/b/c")).await;
    assert_eq!(status, 200, "{page}");
    let page = page.as_str().unwrap().to_string();
    for shown in [
        r#"<span class="name">/</span>"#,
        r#"<span class="name">app/</span>"#,
        r#"<span class="name">a</span>"#,
        r#"<span class="name">b/</span>"#,
        r#"<span class="name">c</span>"#,
        r#"id="key-path">/app/b/c</h1>"#,
    ] {
        assert!(page.contains(shown), "{shown} missing:\n{page}");
    }
    assert!(!page.contains("other/"), "a level it may not list leaked");
    assert_eq!(
        page.matches("the rest of").count(),
        2,
        "the top level and `/` say they are partial:\n{page}"
    );
    // Expanding a directory it may not list: the fragment says why.
    let resp = reqwest::Client::new()
        .get(url("/clusters/r/ui/nodes?prefix=/other/&mode=tree"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("etcd roles"));
    // The listing index needs every key: the page says it lists without one, and why.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page, _) = get(&url("/clusters/r/keys?prefix=/app/")).await;
        if page
            .as_str()
            .unwrap()
            .contains("no index: the etcd user may not read every key")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no index note:\n{page}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Said once in the log, not again at every retry (it is retried every 5 minutes).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let log = served.log_text();
    assert_eq!(
        log.matches("no fence index: the etcd user may not read every key")
            .count(),
        1,
        "{log}"
    );
    assert!(!log.contains("fence index lost"), "{log}");

    // Live updates: a prefix it may read streams; the whole key space is refused once, said so,
    // and the stream ends instead of asking etcd again and again.
    let (text, ended) = read_stream(
        &url("/api/v1/clusters/r/watch?prefix=/app/"),
        Duration::from_secs(3),
    )
    .await;
    assert!(text.contains("event: ready") && !ended, "{text}");
    let (text, ended) = read_stream(
        &url("/api/v1/clusters/r/watch?prefix="),
        Duration::from_secs(5),
    )
    .await;
    assert!(ended, "the refused stream is still open after 5 s:\n{text}");
    assert!(
        text.contains("event: denied") && text.contains("permission denied"),
        "{text}"
    );
    assert!(!text.contains("event: paused"), "{text}");
    let (_, metrics, _) = get(&url("/metrics")).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        !metrics.contains(r#"watch_restarts_total{cluster="r",watch="live""#),
        "a refused watch is not retried:\n{metrics}"
    );
    // The page says so, and does not reconnect (a browser would, 3 s after the stream ended).
    let b = Browser::start("a_prefix_limited_etcd_user_is_told_live_updates_are_not_allowed").await;
    let result = b
        .attempt(async {
            b.goto(&url("/clusters/r/keys")).await;
            b.wait_text("[data-live-status]", "not allowed").await;
            tokio::time::sleep(Duration::from_secs(4)).await;
            assert_eq!(b.text("[data-live-status]").await, "not allowed");
            b.goto(&url("/clusters/r/keys?prefix=/app/")).await;
            b.wait_text("[data-live-status]", "live").await;
        })
        .await;
    b.finish(result).await;
}

/// Reads a server-sent-events stream for up to `within`; returns what came and whether the server
/// ended it.
async fn read_stream(url: &str, within: Duration) -> (String, bool) {
    let mut resp = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), 200, "{url}");
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return (text, false),
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => return (text, true),
            Ok(Err(e)) => panic!("{url}: {e}"),
        }
    }
}
