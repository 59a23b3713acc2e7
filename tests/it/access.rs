//! Access control against a real etcd: every route × every role, forged identity headers,
//! prefix rules, read-only, the audit log, and built-in users with the signed cookie (shared by
//! two replicas).

use std::time::Duration;

use etcdboard::config::{AccessArgs, AuthMode};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, AppOptions, TestApp};

/// Grants as a user writes them in the config file.
const GRANTS: &str = r#"
grants:
  - users: [ed]
    role: editor
  - users: [ad]
    role: admin
  - groups: [sre]
    role: admin
  - users: [team]
    role: editor
    prefixes: [/apps/team-a/]
read_only_prefixes:
  - prefix: /registry/
"#;

fn proxy_args(trusted: &str, audit: &std::path::Path) -> AccessArgs {
    AccessArgs {
        auth: AuthMode::Proxy,
        trusted_proxies: vec![trusted.into()],
        anonymous_role: Some("viewer".into()),
        audit_log: Some(audit.display().to_string()),
        ..AccessArgs::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Who is asking: `None` is anonymous; else (user, groups) in the proxy's headers.
type Who = Option<(&'static str, &'static str)>;

async fn call(
    app: &TestApp,
    who: Who,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = client().request(method, app.url(path));
    if let Some((user, groups)) = who {
        req = req
            .header("X-Auth-Request-User", user)
            .header("X-Auth-Request-Groups", groups);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Level {
    Read,
    Write,
    Admin,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_allows_exactly_the_roles_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(AppOptions {
        access: proxy_args("127.0.0.1/32", &dir.path().join("audit.log")),
        access_yaml: Some(GRANTS.into()),
        ..AppOptions::default()
    })
    .await;
    app.put_all(&[("/apps/x", "1"), ("/apps/team-a/y", "2")])
        .await;
    let export = call(
        &app,
        Some(("ad", "")),
        Method::GET,
        "/api/v1/clusters/test/export?prefix=/apps/",
        None,
    )
    .await
    .json::<Value>()
    .await
    .unwrap();

    use Level::*;
    // (method, path, body, level). `{u}` is replaced by a per-caller tag so writes do not collide.
    let routes: Vec<(Method, &str, Option<Value>, Level)> = vec![
        (Method::GET, "/", None, Read),
        (Method::GET, "/clusters", None, Read),
        (Method::GET, "/api/v1/clusters", None, Read),
        (Method::GET, "/clusters/test", None, Read),
        (Method::GET, "/clusters/test/ui/overview", None, Read),
        (Method::GET, "/clusters/test/keys", None, Read),
        (
            Method::GET,
            "/clusters/test/ui/nodes?prefix=/apps/",
            None,
            Read,
        ),
        (Method::GET, "/clusters/test/ui/key?key=/apps/x", None, Read),
        (
            Method::GET,
            "/clusters/test/history?key=/apps/x",
            None,
            Read,
        ),
        (Method::GET, "/clusters/test/leases", None, Read),
        (Method::GET, "/clusters/test/transfer", None, Read),
        (
            Method::GET,
            "/api/v1/clusters/test/keys?prefix=/",
            None,
            Read,
        ),
        (
            Method::GET,
            "/api/v1/clusters/test/key?key=/apps/x",
            None,
            Read,
        ),
        (
            Method::GET,
            "/api/v1/clusters/test/value?key=/apps/x",
            None,
            Read,
        ),
        (Method::GET, "/api/v1/clusters/test/members", None, Read),
        (Method::GET, "/api/v1/clusters/test/topology", None, Read),
        (
            Method::GET,
            "/api/v1/clusters/test/history?key=/apps/x",
            None,
            Read,
        ),
        (Method::GET, "/api/v1/clusters/test/leases", None, Read),
        (
            Method::GET,
            "/api/v1/clusters/test/leases/1234abcd",
            None,
            Read,
        ),
        (
            Method::GET,
            "/api/v1/clusters/test/export?prefix=/apps/",
            None,
            Read,
        ),
        (
            Method::GET,
            "/api/v1/clusters/test/delete-prefix?prefix=/apps/",
            None,
            Read,
        ),
        (
            Method::GET,
            "/api/v1/clusters/test/watch?prefix=/apps/",
            None,
            Read,
        ),
        (Method::GET, "/clusters/test/edit?key=/apps/x", None, Write),
        (
            Method::GET,
            "/clusters/test/ui/edit?new=1&prefix=/apps/",
            None,
            Write,
        ),
        (
            Method::PUT,
            "/api/v1/clusters/test/key",
            Some(json!({"key": "/m/{u}", "value": "v", "expected_mod_revision": 0})),
            Write,
        ),
        (
            Method::DELETE,
            "/api/v1/clusters/test/key?key=/missing/{u}&expected_mod_revision=1",
            None,
            Write,
        ),
        (
            Method::POST,
            "/api/v1/clusters/test/delete-prefix",
            Some(json!({"prefix": "/none/{u}/", "expected_count": 0})),
            Admin,
        ),
        (
            Method::POST,
            "/api/v1/clusters/test/import?dry_run=true",
            Some(export.clone()),
            Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/clusters/test/leases/1234abcd",
            None,
            Admin,
        ),
        (
            Method::POST,
            "/api/v1/clusters/test/maintenance/disarm",
            Some(json!({})),
            Admin,
        ),
        (
            Method::GET,
            "/api/v1/clusters/test/snapshot?member=ffff",
            None,
            Admin,
        ),
    ];
    // (who, tag, highest level allowed, refusal status)
    let callers: Vec<(Who, &str, Level, StatusCode)> = vec![
        (None, "anon", Read, StatusCode::UNAUTHORIZED),
        (Some(("vi", "")), "vi", Read, StatusCode::FORBIDDEN),
        (Some(("ed", "")), "ed", Write, StatusCode::FORBIDDEN),
        (Some(("ad", "")), "ad", Admin, StatusCode::FORBIDDEN),
        (
            Some(("sam", "dev,sre")),
            "sam",
            Admin,
            StatusCode::FORBIDDEN,
        ),
    ];
    let rank = |l: Level| match l {
        Read => 0,
        Write => 1,
        Admin => 2,
    };
    let mut failures = Vec::new();
    for (who, tag, max, refusal) in &callers {
        for (method, path, body, level) in &routes {
            let path = path.replace("{u}", tag);
            let body = body
                .as_ref()
                .map(|b| serde_json::from_str(&b.to_string().replace("{u}", tag)).unwrap());
            let resp = call(&app, *who, method.clone(), &path, body).await;
            let status = resp.status();
            let allowed = rank(*level) <= rank(*max);
            let ok = if allowed {
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN
            } else {
                status == *refusal
            };
            if !ok {
                let text = if path.contains("/watch") {
                    String::new()
                } else {
                    resp.text().await.unwrap_or_default()
                };
                failures.push(format!(
                    "{tag} {method} {path}: {status} (expected {}) {text:.200}",
                    if allowed {
                        "allowed".to_string()
                    } else {
                        refusal.to_string()
                    }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A method no route has reaches no handler, so it is a 405 for everyone, not a refusal that
    // sends the caller after a role. (A route that does reach a handler and that nobody
    // classified needs an unrestricted admin: `routes_are_classified_and_unknown_changes_need_admin`.)
    for (who, tag, _, _) in &callers {
        let resp = call(
            &app,
            *who,
            Method::POST,
            "/api/v1/clusters/test/keys",
            Some(json!({})),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{tag}");
        assert_eq!(resp.headers()["allow"], "GET,HEAD", "{tag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_from_an_untrusted_address_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    // The proxy is somewhere else; this test's requests come from 127.0.0.1.
    let app = spawn_app_with(AppOptions {
        access: proxy_args("10.0.0.0/8", &dir.path().join("audit.log")),
        access_yaml: Some(GRANTS.into()),
        ..AppOptions::default()
    })
    .await;
    let put = json!({"key": "/forged", "value": "x", "expected_mod_revision": 0});
    let resp = call(
        &app,
        Some(("ad", "sre")),
        Method::PUT,
        "/api/v1/clusters/test/key",
        Some(put),
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "treated as anonymous"
    );
    let resp = call(
        &app,
        Some(("ad", "sre")),
        Method::GET,
        "/clusters/test/keys",
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(
        !page.contains(">ad<"),
        "the forged name is not shown as signed in"
    );
    let (status, got) = app.get_json("/api/v1/clusters/test/key?key=/forged").await;
    assert_eq!(status, 404, "nothing was written: {got}");
    // The refusal is audited, under no name the forged headers gave.
    let lines: Vec<Value> = std::fs::read_to_string(dir.path().join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["user"], "anonymous", "{lines:?}");
    assert_eq!(lines[0]["action"], "put");
    assert!(lines[0]["result"].as_str().unwrap().starts_with("denied: "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_rules_read_only_prefixes_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let app = spawn_app_with(AppOptions {
        access: proxy_args("127.0.0.1/32", &audit),
        access_yaml: Some(GRANTS.into()),
        ..AppOptions::default()
    })
    .await;
    let put = |key: &str| json!({"key": key, "value": "secret-value", "expected_mod_revision": 0});
    let team = Some(("team", ""));
    let ok = call(
        &app,
        team,
        Method::PUT,
        "/api/v1/clusters/test/key",
        Some(put("/apps/team-a/cfg")),
    )
    .await;
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
    let denied = call(
        &app,
        team,
        Method::PUT,
        "/api/v1/clusters/test/key",
        Some(put("/apps/team-b/cfg")),
    )
    .await;
    assert_eq!(denied.status(), 403);
    let msg = denied.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("team") && msg.contains("/apps/team-b/cfg"),
        "{msg}"
    );
    // The preview tells each caller whether they could delete the prefix.
    for (who, allowed) in [(team, false), (Some(("ad", "")), true), (None, false)] {
        let preview: Value = call(
            &app,
            who,
            Method::GET,
            "/api/v1/clusters/test/delete-prefix?prefix=/apps/team-a/",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(preview["allowed"], allowed, "{who:?}: {preview}");
    }
    // The team may not delete its whole prefix (admin only), nor import.
    let dp = call(
        &app,
        team,
        Method::POST,
        "/api/v1/clusters/test/delete-prefix",
        Some(json!({"prefix": "/apps/team-a/", "expected_count": 1})),
    )
    .await;
    assert_eq!(dp.status(), 403);
    // Nor run maintenance, and the refusal says what was refused.
    let defrag = call(
        &app,
        team,
        Method::POST,
        "/api/v1/clusters/test/maintenance/defragment",
        Some(json!({"member": "1"})),
    )
    .await;
    assert_eq!(defrag.status(), 403);
    assert_eq!(
        defrag.json::<Value>().await.unwrap()["error"],
        "user `team` may not defragment members on cluster `test` (needs admin on the whole cluster)"
    );
    // /registry/ is read-only for everyone, admins included.
    let reg = call(
        &app,
        Some(("ad", "")),
        Method::PUT,
        "/api/v1/clusters/test/key",
        Some(put("/registry/pods/x")),
    )
    .await;
    assert_eq!(reg.status(), 403);
    let dp = call(
        &app,
        Some(("ad", "")),
        Method::POST,
        "/api/v1/clusters/test/delete-prefix",
        Some(json!({"prefix": "/", "expected_count": 1})),
    )
    .await;
    assert_eq!(dp.status(), 403, "deleting / would touch /registry/");
    // The key view offers no edit to the admin there, and says why.
    app.put_all(&[("/registry/pods/y", "v")]).await;
    let view = call(
        &app,
        Some(("ad", "")),
        Method::GET,
        "/clusters/test/ui/key?key=/registry/pods/y",
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!view.contains(">edit</a>"), "{view}");
    assert!(
        view.contains("read-only: keys under `/registry/` are read-only"),
        "{view}"
    );
    // Revoking a lease deletes its keys: not when one of them lies under /registry/.
    let mut etcd = app.client().await;
    let lease = etcd.lease_grant(300, None).await.unwrap().id();
    let opts = etcd_client::PutOptions::new().with_lease(lease);
    etcd.put("/registry/events/e1", "v", Some(opts.clone()))
        .await
        .unwrap();
    etcd.put("/apps/team-a/leased", "v", Some(opts))
        .await
        .unwrap();
    let revoke = call(
        &app,
        Some(("ad", "")),
        Method::DELETE,
        &format!("/api/v1/clusters/test/leases/{lease}"),
        None,
    )
    .await;
    assert_eq!(revoke.status(), 403, "{}", revoke.text().await.unwrap());
    let kept = etcd.get("/registry/events/e1", None).await.unwrap();
    assert_eq!(kept.kvs().len(), 1, "the lease's keys are still there");

    // One audit line per change, naming user, source, cluster, action, key and revisions; the
    // value never appears. Each refused change has its line too.
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "{lines:?}");
    let l = &lines[0];
    assert_eq!(l["user"], "team");
    assert_eq!(l["source"], "127.0.0.1");
    assert_eq!(l["cluster"], "test");
    assert_eq!(l["action"], "put");
    assert_eq!(l["key"], "/apps/team-a/cfg");
    assert_eq!(l["old_revision"], 0);
    assert!(l["new_revision"].as_i64().unwrap() > 0);
    assert_eq!(l["result"], "ok");
    assert!(l["time"].as_str().unwrap().ends_with('Z'));
    let refused: Vec<(&str, &str, &str)> = lines[1..]
        .iter()
        .map(|l| {
            assert_eq!(l["cluster"], "test", "{l}");
            assert_eq!(l["new_revision"], Value::Null, "{l}");
            let result = l["result"].as_str().unwrap();
            assert!(result.starts_with("denied: "), "{l}");
            (
                l["user"].as_str().unwrap(),
                l["action"].as_str().unwrap(),
                l["key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("team", "put", "/apps/team-b/cfg"),
            ("team", "delete-prefix", "/apps/team-a/"),
            ("team", "maintenance:defragment", ""),
            ("ad", "put", "/registry/pods/x"),
            ("ad", "delete-prefix", "/"),
            ("ad", "revoke-lease", "/registry/events/e1"),
        ]
    );
    assert!(
        lines[5]["result"].as_str().unwrap().contains("read-only"),
        "the line says why: {}",
        lines[5]
    );
    assert!(!std::fs::read_to_string(&audit)
        .unwrap()
        .contains("secret-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_refuses_every_change_and_hides_the_controls() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let app = spawn_app_with(AppOptions {
        access: AccessArgs {
            read_only: true,
            ..proxy_args("127.0.0.1/32", &audit)
        },
        access_yaml: Some(GRANTS.into()),
        ..AppOptions::default()
    })
    .await;
    app.put_all(&[("/apps/x", "1")]).await;
    let ad = Some(("ad", ""));
    let resp = call(
        &app,
        ad,
        Method::PUT,
        "/api/v1/clusters/test/key",
        Some(json!({"key": "/apps/y", "value": "v", "expected_mod_revision": 0})),
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("--read-only"));
    let resp = call(
        &app,
        ad,
        Method::POST,
        "/api/v1/clusters/test/maintenance/disarm",
        Some(json!({})),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let key = call(
        &app,
        ad,
        Method::GET,
        "/clusters/test/ui/key?key=/apps/x",
        None,
    )
    .await;
    assert_eq!(key.status(), 200);
    let html = key.text().await.unwrap();
    assert!(!html.contains("data-delete-key"), "no delete button");
    assert!(!html.contains(">edit</a>"), "no edit button");
    // ... and says why there is none.
    assert!(
        html.contains("read-only: etcdboard runs with --read-only"),
        "{html}"
    );
    let page = call(&app, ad, Method::GET, "/clusters/test", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("data-action=\"compact\""),
        "no maintenance controls"
    );
    assert!(page.contains("read-only"), "the page says why");
    // A scanner's POST to a path that does not exist is refused too, but it could change nothing.
    let scan = call(&app, ad, Method::POST, "/wp-login.php", Some(json!({}))).await;
    assert_eq!(scan.status(), 403);
    // The refused changes are audited, with why.
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refused: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            assert_eq!((&l["user"], &l["cluster"]), (&json!("ad"), &json!("test")));
            let result = l["result"].as_str().unwrap();
            assert!(
                result.starts_with("denied: ") && result.contains("--read-only"),
                "{l}"
            );
            (l["action"].as_str().unwrap(), l["key"].as_str().unwrap())
        })
        .collect();
    assert_eq!(refused, [("put", ""), ("maintenance:disarm", "")]);
}

/// A users file with an argon2 and a bcrypt user, and a shared session key.
fn users_setup(dir: &std::path::Path) -> AccessArgs {
    let argon = etcdboard::domain::session::PasswordHash::create("alice-pw").unwrap();
    let bcrypt = bcrypt::hash("bob-pw", 4).unwrap();
    std::fs::write(
        dir.join("users.yaml"),
        format!(
            "users:\n  - name: alice\n    password_hash: '{}'\n    groups: [sre]\n  - name: bob\n    password_hash: '{bcrypt}'\n",
            argon.as_str()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("session.key"),
        "0123456789abcdef0123456789abcdef-shared\n",
    )
    .unwrap();
    AccessArgs {
        auth: AuthMode::Users,
        users_file: Some(dir.join("users.yaml")),
        session_key_file: Some(dir.join("session.key")),
        anonymous_role: Some("none".into()),
        audit_log: Some(dir.join("audit.log").display().to_string()),
        ..AccessArgs::default()
    }
}

/// The app with [`users_setup`]'s users, the group `sre` (alice) admin everywhere.
async fn users_app(dir: &std::path::Path) -> TestApp {
    spawn_app_with(AppOptions {
        access: users_setup(dir),
        access_yaml: Some("grants:\n  - groups: [sre]\n    role: admin\n".into()),
        ..AppOptions::default()
    })
    .await
}

async fn login(app: &TestApp, user: &str, password: &str) -> reqwest::Response {
    client()
        .post(app.url("/login"))
        .header("Origin", format!("http://{}", app.addr))
        .form(&[
            ("user", user),
            ("password", password),
            ("next", &format!("{}/clusters/test/keys", app.base)),
        ])
        .send()
        .await
        .unwrap()
}

fn session_cookie(resp: &reqwest::Response) -> String {
    let set = resp
        .headers()
        .get("set-cookie")
        .expect("a cookie is set")
        .to_str()
        .unwrap()
        .to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    set.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_users_sign_in_and_any_replica_accepts_the_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let access = users_setup(dir.path());
    let app = spawn_app_with(AppOptions {
        access: access.clone(),
        access_yaml: Some(
            "grants:\n  - groups: [sre]\n    role: admin\n  - users: [bob]\n    role: viewer\n"
                .into(),
        ),
        ..AppOptions::default()
    })
    .await;

    // Nobody signed in: pages send you to the login page (and back), the API says 401.
    let page = client()
        .get(app.url("/clusters/test/keys?prefix=/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let to = page.headers()["location"].to_str().unwrap();
    assert!(
        to.starts_with("/login?next=%2Fclusters%2Ftest%2Fkeys"),
        "{to}"
    );
    let api = client()
        .get(app.url("/api/v1/clusters/test/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let listed = client()
        .get(app.url("/api/v1/clusters"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 401, "not even cluster names for strangers");

    let form = client()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("id=\"login-user\""), "{form}");
    assert!(
        !form.contains(">sign in</a>"),
        "no sign-in link on the sign-in page"
    );

    // Wrong passwords and unknown users get the same answer.
    for (u, p) in [("alice", "nope"), ("mallory", "alice-pw")] {
        let r = login(&app, u, p).await;
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("set-cookie").is_none());
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("Wrong user name or password"));
    }

    // alice (argon2, group sre → admin) signs in and is sent back where she was going.
    let r = login(&app, "alice", "alice-pw").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/clusters/test/keys");
    let alice = session_cookie(&r);
    let put = client()
        .put(app.url("/api/v1/clusters/test/key"))
        .header("Cookie", &alice)
        .json(&json!({"key": "/by/alice", "value": "v", "expected_mod_revision": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("\"user\":\"alice\""), "{audit}");

    // bob (bcrypt) is a viewer: reads, may not write.
    let bob = session_cookie(&login(&app, "bob", "bob-pw").await);
    let get = client()
        .get(app.url("/api/v1/clusters/test/key?key=/by/alice"))
        .header("Cookie", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let put = client()
        .put(app.url("/api/v1/clusters/test/key"))
        .header("Cookie", &bob)
        .json(&json!({"key": "/by/bob", "value": "v", "expected_mod_revision": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 403);
    // A method the route does not have is that, for a viewer too: not "may not write".
    let wrong = client()
        .post(app.url("/api/v1/clusters/test/keys"))
        .header("Cookie", &bob)
        .header("Origin", format!("http://{}", app.addr))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405, "{}", wrong.text().await.unwrap());

    // A tampered cookie is nobody.
    let forged = alice.replacen("=", "=x", 1);
    let r = client()
        .get(app.url("/api/v1/clusters/test/keys"))
        .header("Cookie", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A second replica with the same session key accepts alice's cookie: no session store.
    let replica = spawn_app_with(AppOptions {
        access,
        access_yaml: Some("grants:\n  - groups: [sre]\n    role: admin\n".into()),
        ..AppOptions::default()
    })
    .await;
    let r = client()
        .get(replica.url("/api/v1/clusters/test/keys"))
        .header("Cookie", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Signing out removes the cookie.
    let out = client()
        .post(app.url("/logout"))
        .header("Cookie", &alice)
        .header("Origin", format!("http://{}", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    // The login page never redirects off-site.
    let r = client()
        .post(app.url("/login"))
        .header("Origin", format!("http://{}", app.addr))
        .form(&[
            ("user", "alice"),
            ("password", "alice-pw"),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_login_form_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(AppOptions {
        access: users_setup(dir.path()),
        ..AppOptions::default()
    })
    .await;
    let r = client()
        .post(app.url("/login"))
        .header("Origin", "https://evil.example")
        .form(&[("user", "alice"), ("password", "alice-pw")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_and_bodies_are_refused_before_any_work() {
    let app = spawn_app_with(AppOptions::default()).await;
    // Headers: hyper's limit (about 400 KiB for the whole head) answers 431 or closes.
    let huge = "a".repeat(600 * 1024);
    match client()
        .get(app.url("/api/v1/clusters"))
        .header("X-Filler", huge)
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(e) => assert!(!e.is_timeout(), "refused, not hung: {e}"),
    }
    // Bodies: a write larger than etcd accepts is a 413 without reaching etcd.
    let value = "v".repeat(4 * 1024 * 1024);
    let r = client()
        .put(app.url("/api/v1/clusters/test/key"))
        .json(&json!({"key": "/big", "value": value, "expected_mod_revision": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = app.get_json("/api/v1/clusters/test/key?key=/big").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_cannot_finish_ends_at_its_deadline() {
    let app = spawn_app_with(AppOptions {
        etcd_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_millis(1500),
        ..AppOptions::default()
    })
    .await;
    app.put_all(&[("/a", "1")]).await;
    for i in 0..3 {
        app.etcd.stop(i);
    }
    let started = std::time::Instant::now();
    let r = client()
        .get(app.url("/api/v1/clusters/test/key?key=/a"))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no answer within 1.5 s"),
        "{body}"
    );
    assert!(
        took < Duration::from_secs(8),
        "ended by the request deadline, not etcd's: {took:?}"
    );
    // A page gets the error page, not the API's JSON. (After the degraded window the request
    // above opened, 1 s, so that the page too waits for quorum until its deadline.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let page = client()
        .get(app.url("/clusters/test/keys?key=/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    let content_type = page.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = page.text().await.unwrap();
    assert!(html.contains("no answer within 1.5 s"), "{html}");
    for i in 0..3 {
        app.etcd.cont(i);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_for_a_name_make_its_next_attempts_wait() {
    use etcdboard::domain::login_throttle::{FIRST_WAIT, FREE_FAILURES};
    let dir = tempfile::tempdir().unwrap();
    let app = users_app(dir.path()).await;
    for name in ["alice", "nobody-by-this-name"] {
        for i in 0..FREE_FAILURES {
            let r = login(&app, name, "guess").await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}: attempt {i}");
        }
        // The next attempt waits, even with the right password, and costs no password check;
        // unknown names are slowed the same way, so the answer does not tell which names exist.
        let r = login(&app, name, "alice-pw").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{name}");
        assert_eq!(r.headers()["retry-after"], "1");
        let body = r.text().await.unwrap();
        assert!(body.contains("Too many failed sign-ins"), "{body}");
        assert!(!body.contains("alice-pw"), "the password is not echoed");
    }
    // Another name is not slowed.
    let bob = login(&app, "bob", "bob-pw").await;
    assert_eq!(bob.status(), StatusCode::SEE_OTHER);
    // After the wait, the right password signs in and forgets the failures.
    tokio::time::sleep(FIRST_WAIT + std::time::Duration::from_millis(100)).await;
    let ok = login(&app, "alice", "alice-pw").await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    session_cookie(&ok);
    let again = login(&app, "alice", "guess").await;
    assert_eq!(
        again.status(),
        StatusCode::UNAUTHORIZED,
        "a success resets the count"
    );
}

/// The users file decides a signed-in user's groups, not the cookie: moved out of the admin
/// group, a user loses the admin's rights at the next start, though the cookie is still valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_moved_to_other_groups_gets_their_rights_whatever_the_cookie_says() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || AppOptions {
        access: users_setup(dir.path()),
        access_yaml: Some(
            "grants:\n  - groups: [sre]\n    role: admin\n  - groups: [dev]\n    role: viewer\n"
                .into(),
        ),
        ..AppOptions::default()
    };
    let app = spawn_app_with(opts()).await;
    let cookie = session_cookie(&login(&app, "alice", "alice-pw").await);
    let put = |base: String| {
        let cookie = cookie.clone();
        async move {
            client()
                .put(format!("{base}/api/v1/clusters/test/key"))
                .header("Cookie", cookie)
                .json(&json!({"key": "/moved", "value": "v", "expected_mod_revision": 0}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        put(app.url("")).await,
        StatusCode::OK,
        "an admin while in sre"
    );
    let mut moved = opts();
    let users = std::fs::read_to_string(dir.path().join("users.yaml")).unwrap();
    let users_file = dir.path().join("users-moved.yaml");
    std::fs::write(&users_file, users.replace("groups: [sre]", "groups: [dev]")).unwrap();
    moved.access.users_file = Some(users_file);
    let restarted = crate::helpers::start_replica(app.etcd.client_urls(), &moved).await;
    let base = format!("http://{}{}", restarted.addr, restarted.base);
    let status = client()
        .get(format!("{base}/api/v1/clusters/test/key?key=/moved"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK, "still signed in, as a viewer");
    assert_eq!(put(base).await, StatusCode::FORBIDDEN, "no longer an admin");
}

/// Without any way to sign in (`--auth none`), a refusal is a 403: a 401 would ask for a sign-in
/// nobody can give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sign_in_a_refusal_is_a_403_not_a_401() {
    let app = spawn_app_with(AppOptions {
        access: AccessArgs {
            read_only: true,
            anonymous_role: Some("viewer".into()),
            ..AccessArgs::default()
        },
        ..AppOptions::default()
    })
    .await;
    let resp = call(
        &app,
        None,
        Method::PUT,
        "/api/v1/clusters/test/key",
        Some(json!({"key": "/a", "value": "v", "expected_mod_revision": 0})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get("www-authenticate").is_none());
}

/// A change that fails is audited too, as `unknown` when no member answered in time: etcd may
/// still have applied it, and the audit log must not lose it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_outcome_is_unknown_is_audited_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let mut app = spawn_app_with(AppOptions {
        access: proxy_args("127.0.0.1/32", &audit),
        access_yaml: Some(GRANTS.into()),
        ..AppOptions::default()
    })
    .await;
    app.etcd.kill(1);
    app.etcd.kill(2);
    let resp = call(
        &app,
        Some(("ad", "")),
        Method::PUT,
        "/api/v1/clusters/test/key",
        Some(json!({"key": "/apps/lost", "value": "v", "expected_mod_revision": 0})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The caller is told too, so a change that goes through late is not taken for one that failed.
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("may still have been applied"),
        "{body}"
    );
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["action"], "put");
    assert_eq!(lines[0]["key"], "/apps/lost");
    assert!(
        lines[0]["result"].as_str().unwrap().starts_with("unknown:"),
        "{lines:?}"
    );
}

/// A login lasts no longer than the server that checks it allows: a replica whose
/// --session-ttl is 1 h accepts a fresh cookie signed for 12 h (during a rollout the user keeps
/// working, whichever replica answers), but not one signed in more than 1 h ago.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_lasts_no_longer_than_the_checking_servers_session_ttl() {
    use etcdboard::domain::session::{Session, SessionKey};
    let dir = tempfile::tempdir().unwrap();
    let opts = |ttl: Option<Duration>| AppOptions {
        access: AccessArgs {
            session_ttl: ttl,
            ..users_setup(dir.path())
        },
        access_yaml: Some("grants:\n  - groups: [sre]\n    role: admin\n".into()),
        ..AppOptions::default()
    };
    let app = spawn_app_with(opts(Some(Duration::from_secs(12 * 3600)))).await;
    let fresh = session_cookie(&login(&app, "alice", "alice-pw").await);
    let short = crate::helpers::start_replica(
        app.etcd.client_urls(),
        &opts(Some(Duration::from_secs(3600))),
    )
    .await;
    // The same cookie, as if alice had signed in two hours ago on the 12 h replica.
    let key =
        SessionKey::from_bytes(&std::fs::read(dir.path().join("session.key")).unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let two_hours_old = format!(
        "etcdboard_session={}",
        key.sign(&Session {
            user: "alice".into(),
            groups: vec![],
            expires: now + 10 * 3600,
            issued: Some(now - 2 * 3600),
        })
    );
    let status = |base: String, cookie: String| async move {
        client()
            .get(format!("{base}/api/v1/clusters"))
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap()
            .status()
    };
    let short_base = format!("http://{}{}", short.addr, short.base);
    assert_eq!(status(app.url(""), fresh.clone()).await, StatusCode::OK);
    assert_eq!(status(short_base.clone(), fresh).await, StatusCode::OK);
    assert_eq!(
        status(app.url(""), two_hours_old.clone()).await,
        StatusCode::OK
    );
    assert_eq!(
        status(short_base, two_hours_old).await,
        StatusCode::UNAUTHORIZED
    );
}

/// A signed-in user without any role is told so, by name, not asked to sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_user_without_a_role_is_told_to_ask_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let app = users_app(dir.path()).await;
    let cookie = session_cookie(&login(&app, "bob", "bob-pw").await);
    let resp = client()
        .get(app.url("/api/v1/clusters"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"],
        "user `bob` has no role on any cluster; ask an administrator for one"
    );
}

/// The session cookie is `Secure`, so a browser on a plain-HTTP page (not loopback) would drop
/// it and land on the sign-in form again without a word. The sign-in says why instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_on_a_plain_http_page_says_it_needs_https() {
    let dir = tempfile::tempdir().unwrap();
    let app = users_app(dir.path()).await;
    let sign_in = |origin: &'static str| {
        client()
            .post(app.url("/login"))
            .header("Origin", origin)
            .header("X-Forwarded-Host", "dash.test")
            .form(&[("user", "alice"), ("password", "alice-pw")])
            .send()
    };
    let resp = sign_in("http://dash.test:31090").await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get("set-cookie").is_none());
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("Signing in needs HTTPS: this page was opened over plain HTTP at dash.test"),
        "{page}"
    );
    let resp = sign_in("https://dash.test").await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(resp.headers().get("set-cookie").is_some());
    // The form itself warns before a password is typed, when the browser says the page is not
    // a secure context (shown by script; hidden otherwise).
    let (_, form) = app.get_text("/login").await;
    assert!(
        form.contains("id=\"insecure-context\" role=\"alert\" hidden"),
        "{form}"
    );
}

/// Many wrong passwords sent at once are throttled like ones sent one after another: each is
/// checked against the throttle again when its turn for a password check comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_sent_all_at_once_are_throttled_too() {
    use etcdboard::domain::login_throttle::FREE_FAILURES;
    let dir = tempfile::tempdir().unwrap();
    let app = users_app(dir.path()).await;
    let attempts = futures::future::join_all((0..40).map(|_| login(&app, "alice", "guess"))).await;
    let checked = attempts
        .iter()
        .filter(|r| r.status() == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = attempts
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked + throttled, 40);
    // Two password checks run at a time, so one may start before the other's failure counts.
    assert!(
        checked <= FREE_FAILURES as usize + 1,
        "{checked} passwords checked, {throttled} throttled"
    );
}

/// GET `path` as `who` (a cookie) with an optional `Authorization` header: status, the
/// `WWW-Authenticate` header and the body.
async fn get_as(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    authorization: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut req = client().get(app.url(path));
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, challenge, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_strangers_see_nothing_metrics_need_sign_in_or_the_scrape_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = "prometheus-scrape-token-0123456789";
    std::fs::write(dir.path().join("metrics.token"), format!("{token}\n")).unwrap();
    let app = spawn_app_with(AppOptions {
        access: AccessArgs {
            metrics_token_file: Some(dir.path().join("metrics.token")),
            ..users_setup(dir.path())
        },
        access_yaml: Some("grants:\n  - users: [bob]\n    role: viewer\n".into()),
        ..AppOptions::default()
    })
    .await;
    let bearer = format!("Bearer {token}");

    // A stranger: 401 with a Bearer challenge, never a redirect to the login page (a scraper
    // would follow it), and no cluster name; the same with a wrong token.
    for auth in [
        None,
        Some("Bearer not-the-token-0123456789"),
        Some("Basic Ym9iOmJvYi1wdw=="),
    ] {
        let (status, challenge, body) = get_as(&app, "/metrics", None, auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}: {body}");
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer realm=\"etcdboard metrics\"")
        );
        assert!(body.contains("metrics token"), "{body}");
        assert!(!body.contains("cluster=\"test\""), "{body}");
    }
    // The scraper with the token, and a signed-in viewer, get the metrics.
    let (status, _, body) = get_as(&app, "/metrics", None, Some(&bearer)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("etcdboard_cluster_reachable{cluster=\"test\"}"),
        "{body}"
    );
    let bob = session_cookie(&login(&app, "bob", "bob-pw").await);
    let (status, _, body) = get_as(&app, "/metrics", Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("etcdboard_http_requests_total"), "{body}");
    // Signed in without any role (alice has none here): refused like any page, 403.
    let alice = session_cookie(&login(&app, "alice", "alice-pw").await);
    let (status, challenge, body) = get_as(&app, "/metrics", Some(&alice), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(challenge, None);
    assert!(!body.contains("cluster=\"test\""), "{body}");

    // /readyz stays open for probes, but tells strangers only whether it is ready.
    let (status, _, body) = get_as(&app, "/readyz", None, None).await;
    let stranger: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        stranger.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["ready"],
        "{body}"
    );
    assert_eq!(
        status == StatusCode::OK,
        stranger["ready"] == true,
        "{status}: {body}"
    );
    for (cookie, auth) in [(None, Some(bearer.as_str())), (Some(bob.as_str()), None)] {
        let (_, _, body) = get_as(&app, "/readyz", cookie, auth).await;
        let full: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(full["clusters"][0]["name"], "test", "{body}");
    }
}

/// A snapshot download leaves one audit line when it ends, with the bytes sent; a failed one
/// (unknown member) one with the error; an action that does not exist none (nothing was tried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_downloads_are_audited_when_they_end_and_failures_too() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let app = spawn_app_with(AppOptions {
        access: proxy_args("127.0.0.1/32", &audit),
        access_yaml: Some("grants:\n  - users: [ad]\n    role: admin\n".into()),
        ..AppOptions::default()
    })
    .await;
    let ad = Some(("ad", ""));
    let mut c = app.client().await;
    let members = c.member_list().await.unwrap();
    let id = format!("{:x}", members.members()[0].id());

    let resp = call(
        &app,
        ad,
        Method::GET,
        &format!("/api/v1/clusters/test/snapshot?member={id}"),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let sent = resp.bytes().await.unwrap().len();
    let resp = call(
        &app,
        ad,
        Method::GET,
        "/api/v1/clusters/test/snapshot?member=ffff",
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = call(
        &app,
        ad,
        Method::POST,
        "/api/v1/clusters/test/maintenance/explode",
        Some(json!({})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // HEAD says what a GET would answer without making the member stream its database.
    let resp = call(
        &app,
        ad,
        Method::HEAD,
        &format!("/api/v1/clusters/test/snapshot?member={id}"),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    // The line of a finished download is written as its stream ends, just after the body.
    let want = format!("ok: {sent} bytes");
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..50 {
        lines = std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.iter().any(|l| l["result"] == want.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let snapshots: Vec<&Value> = lines
        .iter()
        .filter(|l| l["action"] == "maintenance:snapshot")
        .collect();
    assert_eq!(snapshots.len(), 2, "{lines:#?}");
    assert_eq!(snapshots[0]["key"], id.as_str());
    assert_eq!(snapshots[0]["user"], "ad");
    assert_eq!(snapshots[0]["result"], want.as_str());
    assert_eq!(snapshots[1]["key"], "ffff");
    assert!(
        snapshots[1]["result"]
            .as_str()
            .unwrap()
            .starts_with("error:"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l["action"] == "maintenance:explode"),
        "{lines:#?}"
    );
}

/// Maintenance of one member that is down names that member, not the whole cluster, and the
/// audit says it failed (no connection opened, so nothing can have been applied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_of_a_member_that_is_down_names_it_and_is_audited_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let mut app = spawn_app_with(AppOptions {
        access: proxy_args("127.0.0.1/32", &audit),
        access_yaml: Some("grants:\n  - users: [ad]\n    role: admin\n".into()),
        ..AppOptions::default()
    })
    .await;
    let mut c = app.client().await;
    let members = c.member_list().await.unwrap();
    let names = app.etcd.member_names();
    let victim = names.len() - 1;
    let id = members
        .members()
        .iter()
        .find(|m| m.name() == names[victim])
        .map(|m| format!("{:x}", m.id()))
        .unwrap();
    app.etcd.kill(victim);
    let resp = call(
        &app,
        Some(("ad", "")),
        Method::POST,
        "/api/v1/clusters/test/maintenance/defragment",
        Some(json!({ "member": id })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("member {id} of cluster `test` did not answer")),
        "{body}"
    );
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = lines
        .iter()
        .find(|l| l["action"] == "maintenance:defragment")
        .expect("an audit line");
    assert!(
        line["result"]
            .as_str()
            .unwrap()
            .starts_with("error: member "),
        "{line}"
    );
    // A request missing what the action needs is refused before anything is tried: no line.
    let resp = call(
        &app,
        Some(("ad", "")),
        Method::POST,
        "/api/v1/clusters/test/maintenance/compact",
        Some(json!({})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(!text.contains("maintenance:compact"), "{text}");
}

/// `/readyz` names only the clusters the caller may read: a user granted one cluster does not
/// learn the others' names from it (the scrape token still sees every one, tested above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_only_the_clusters_the_caller_may_read() {
    use crate::helpers::serve_config;
    use etcdboard::config::{ClusterConfig, Config, HttpArgs};
    use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};

    let dir = tempfile::tempdir().unwrap();
    let etcd = LocalCluster::start(LocalClusterOptions {
        members: 1,
        ..Default::default()
    })
    .await
    .expect("etcd");
    let http = HttpArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        kube: "off".into(),
        access: AccessArgs {
            anonymous_role: Some("none".into()),
            ..proxy_args("127.0.0.1/32", &dir.path().join("audit.log"))
        },
        ..HttpArgs::default()
    };
    let mut config = Config::new(
        &http,
        vec![
            ClusterConfig {
                name: "test".into(),
                endpoints: etcd.client_urls(),
                ..Default::default()
            },
            // Never reachable, and optional so that it does not decide readiness.
            ClusterConfig {
                name: "payments-prod".into(),
                endpoints: vec!["http://127.0.0.1:1".into()],
                optional: true,
                ..Default::default()
            },
        ],
    )
    .expect("config");
    let grants = "grants:\n  - users: [alice]\n    role: viewer\n    clusters: [test]\n  - users: [ad]\n    role: admin\n";
    let file: etcdboard::access::FileAccess = serde_yaml::from_str(grants).unwrap();
    config
        .access
        .add_file("test: access", file, &["test", "payments-prod"])
        .expect("grants");
    let server = serve_config(config).await;
    let url = format!("http://{}/readyz", server.addr);
    let names = |body: &Value| -> Vec<String> {
        body["clusters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let readyz = |user: Option<&'static str>| {
        let url = url.clone();
        async move {
            let mut req = client().get(&url);
            if let Some(user) = user {
                req = req.header("X-Auth-Request-User", user);
            }
            let body = req.send().await.unwrap().text().await.unwrap();
            serde_json::from_str::<Value>(&body).unwrap()
        }
    };
    let alice = readyz(Some("alice")).await;
    assert_eq!(names(&alice), ["test"], "{alice}");
    assert!(!alice.to_string().contains("payments-prod"), "{alice}");
    let ad = readyz(Some("ad")).await;
    assert_eq!(names(&ad), ["test", "payments-prod"], "{ad}");
    let stranger = readyz(None).await;
    assert!(
        !stranger.to_string().contains("payments-prod"),
        "{stranger}"
    );
    // /metrics names every cluster in its series: only for those who may read them all.
    let metrics = |user: &'static str| {
        let url = format!("http://{}/metrics", server.addr);
        async move {
            let resp = client()
                .get(&url)
                .header("X-Auth-Request-User", user)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let (status, body) = metrics("alice").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("may not read all"), "{body}");
    assert!(!body.contains("payments-prod"), "{body}");
    let (status, body) = metrics("ad").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("cluster=\"payments-prod\""), "{body}");
    drop(etcd);
}
