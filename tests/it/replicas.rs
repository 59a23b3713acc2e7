//! etcdboard as deployed: several stateless replicas behind nginx (round-robin, as an ingress
//! spreads requests), a login that any replica honours, and an authenticating proxy in front
//! whose identity headers etcdboard trusts.

use std::time::Duration;

use etcdboard::config::{AccessArgs, AuthMode};
use fantoccini::key::Key;
use serde_json::{json, Value};

use crate::browser_edit::{chord, click, type_value, wait_editor};
use crate::helpers::{spawn_app_with, start_replica, AppOptions};
use crate::support_browser::Browser;
use crate::support_nginx::{Nginx, NginxOptions};

/// Built-in users (alice: argon2, admin through her group) with a session key both replicas share.
fn shared_login(dir: &std::path::Path) -> AppOptions {
    let hash = etcdboard::domain::session::PasswordHash::create("alice-pw").unwrap();
    std::fs::write(
        dir.join("users.yaml"),
        format!(
            "users:\n  - name: alice\n    password_hash: '{}'\n    groups: [sre]\n",
            hash.as_str()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("session.key"),
        "a-session-key-both-replicas-mount-from-a-secret\n",
    )
    .unwrap();
    AppOptions {
        base_path: "/etcd".into(),
        access: AccessArgs {
            auth: AuthMode::Users,
            users_file: Some(dir.join("users.yaml")),
            session_key_file: Some(dir.join("session.key")),
            anonymous_role: Some("none".into()),
            audit_log: Some(dir.join("audit.log").display().to_string()),
            ..AccessArgs::default()
        },
        access_yaml: Some("grants:\n  - groups: [sre]\n    role: admin\n".into()),
        ..AppOptions::default()
    }
}

/// Edits the open key in the editor to `{"replicas":N}`, reviews, saves, and waits until the
/// key view shows it.
async fn edit_and_save(b: &Browser, n: u32) {
    b.press('e').await;
    wait_editor(b).await;
    type_value(b, &format!(r#"{{"replicas":{n}}}"#)).await;
    chord(b, Key::Control, 's').await;
    b.wait_for("#keyview .ed-review .diff").await;
    chord(b, Key::Control, 's').await;
    b.wait_js(
        &format!("const a = document.querySelector('#keyview article.key'); return !!a && a.textContent.includes('\"replicas\": {n}');"),
        "the saved value to show",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_nginx_behave_as_one() {
    let b = Browser::start("two_replicas_behind_nginx_behave_as_one").await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(shared_login(dir.path())).await;
    let second = start_replica(app.etcd.client_urls(), &shared_login(dir.path())).await;
    let nginx = Nginx::start_with("/etcd", &[app.addr, second.addr], NginxOptions::default()).await;
    app.put_all(&[("/shared/config.json", r#"{"replicas":1}"#)])
        .await;

    let r = b
        .attempt(async {
            // A deep link sends a stranger to the login page, then back to the key.
            b.goto(&nginx.url("/etcd/clusters/test/keys?key=/shared/config.json"))
                .await;
            b.wait_for("#login-user")
                .await
                .send_keys("alice")
                .await
                .unwrap();
            assert_eq!(b.url().await.path(), "/etcd/login");
            b.wait_for("#login-password")
                .await
                .send_keys("alice-pw")
                .await
                .unwrap();
            click(&b, ".login-form button[type=submit]").await;
            b.wait_text("#keyview h1.key-path", "/shared/config.json")
                .await;
            assert_eq!(b.text(".account .user").await, "alice");

            // Edit and save; the page's requests alternate between the replicas.
            edit_and_save(&b, 5).await;
            // Reload a few pages: every one is served signed in, whichever replica answers.
            for _ in 0..4 {
                b.goto(&nginx.url("/etcd/clusters/test/keys?key=/shared/config.json"))
                    .await;
                b.wait_text("#keyview h1.key-path", "/shared/config.json")
                    .await;
                assert_eq!(b.text(".account .user").await, "alice");
            }
            // Signing out on one replica ends the session for the browser on all of them.
            click(&b, ".account form.logout button").await;
            b.wait_for("#login-user").await;
            b.goto(&nginx.url("/etcd/clusters/test/keys")).await;
            b.wait_for("#login-user").await;
        })
        .await;

    let mut c = app.client().await;
    let stored = c.get("/shared/config.json", None).await.unwrap();
    let stored = stored.kvs()[0].value_str().unwrap().to_string();
    let log = nginx.access_log();
    drop((second, nginx));
    b.finish(r).await;

    assert_eq!(stored, r#"{"replicas":5}"#);
    let upstreams: std::collections::HashSet<&str> = log
        .lines()
        .filter_map(|l| l.split("upstream=").nth(1))
        .collect();
    assert_eq!(upstreams.len(), 2, "both replicas served requests:\n{log}");
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(
        audit.contains("\"user\":\"alice\"") && audit.contains("/shared/config.json"),
        "{audit}"
    );
}

/// A hand-written nginx `location` with a bare `proxy_pass` sends the upstream's name as `Host`,
/// so the browser's `Origin` never matches it. The browser's own `Sec-Fetch-Site: same-origin`
/// still lets the user sign in and save; a request without it is refused with a page that says
/// what the proxy must pass on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_that_does_not_pass_host_the_browser_still_signs_in_and_saves() {
    let b = Browser::start("behind_a_proxy_that_does_not_pass_host").await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(shared_login(dir.path())).await;
    let nginx = Nginx::start_with(
        "/etcd",
        &[app.addr],
        NginxOptions {
            bare_proxy_pass: true,
            ..NginxOptions::default()
        },
    )
    .await;
    app.put_all(&[("/bare/config.json", r#"{"replicas":1}"#)])
        .await;

    let r = b
        .attempt(async {
            b.goto(&nginx.url("/etcd/clusters/test/keys?key=/bare/config.json"))
                .await;
            b.wait_for("#login-user")
                .await
                .send_keys("alice")
                .await
                .unwrap();
            b.wait_for("#login-password")
                .await
                .send_keys("alice-pw")
                .await
                .unwrap();
            click(&b, ".login-form button[type=submit]").await;
            b.wait_text("#keyview h1.key-path", "/bare/config.json")
                .await;
            edit_and_save(&b, 3).await;
        })
        .await;
    let mut c = app.client().await;
    let stored = c.get("/bare/config.json", None).await.unwrap();
    let stored = stored.kvs()[0].value_str().unwrap().to_string();

    // Without the browser's word (an old browser), the mismatch is refused, and the page says
    // what to fix in the proxy.
    let http = reqwest::Client::new();
    let resp = http
        .post(nginx.url("/etcd/login"))
        .header("origin", nginx.url("").trim_end_matches('/'))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=alice&password=alice-pw")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let page = resp.text().await.unwrap();
    drop(nginx);
    b.finish(r).await;

    assert_eq!(stored, r#"{"replicas":3}"#);
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("<html"), "an error page, not JSON: {page}");
    assert!(page.contains("must pass the Host header"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticating_proxy_in_front_names_the_user() {
    let dir = tempfile::tempdir().unwrap();
    // nginx checks the password and passes the user on; a header the client sends is replaced.
    std::fs::write(
        dir.path().join("htpasswd"),
        "alice:{PLAIN}alice-pw\nbob:{PLAIN}bob-pw\n",
    )
    .unwrap();
    let app = spawn_app_with(AppOptions {
        base_path: "/etcd".into(),
        access: AccessArgs {
            auth: AuthMode::Proxy,
            trusted_proxies: vec!["127.0.0.1/32".into()],
            anonymous_role: Some("none".into()),
            audit_log: Some(dir.path().join("audit.log").display().to_string()),
            ..AccessArgs::default()
        },
        access_yaml: Some(
            "grants:\n  - users: [alice]\n    role: editor\n  - users: [bob]\n    role: viewer\n"
                .into(),
        ),
        ..AppOptions::default()
    })
    .await;
    let extra = format!(
        "            auth_basic \"etcdboard\";\n            auth_basic_user_file {}/htpasswd;\n            proxy_set_header X-Auth-Request-User $remote_user;\n            proxy_set_header X-Auth-Request-Groups \"\";\n",
        dir.path().display()
    );
    let nginx = Nginx::start_with(
        "/etcd",
        &[app.addr],
        NginxOptions {
            location_extra: &extra,
            ..NginxOptions::default()
        },
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let put = |user: &str, pw: &str, key: &str| {
        http.put(nginx.url("/etcd/api/v1/clusters/test/key"))
            .basic_auth(user, Some(pw))
            .header("X-Auth-Request-User", "root")
            .json(&json!({"key": key, "value": "v", "expected_mod_revision": 0}))
            .send()
    };
    let r = put("alice", "alice-pw", "/by/alice").await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = put("bob", "bob-pw", "/by/bob").await.unwrap();
    assert_eq!(r.status(), 403, "bob is a viewer, whatever header he sends");
    let r = put("bob", "wrong", "/by/bob").await.unwrap();
    assert_eq!(r.status(), 401, "nginx refuses a wrong password");
    let page = http
        .get(nginx.url("/etcd/clusters/test/keys"))
        .basic_auth("bob", Some("bob-pw"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">bob<"), "the page names the user");
    assert!(
        !page.contains("new-key"),
        "a viewer is not offered to create keys"
    );
    let audit: Vec<Value> = std::fs::read_to_string(dir.path().join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["user"], "alice");
    assert_eq!(audit[0]["key"], "/by/alice");
    assert_eq!(audit[0]["result"], "ok");
    // Bob's refused write is recorded under the name nginx checked, not the header he sent.
    assert_eq!(audit[1]["user"], "bob");
    assert!(audit[1]["result"].as_str().unwrap().starts_with("denied: "));
}
