//! Export and import through the API: values too large to share a txn, leases, and the audit of
//! what an import wrote. The 100k-key round trip is in `bulk`.

use etcdboard::config::AccessArgs;
use etcdboard::etcd::local::{LocalCluster, LocalClusterOptions};
use serde_json::{json, Value};

use crate::helpers::{b64, serve_on, spawn_app, spawn_app_with, AppOptions, TestApp};

/// Options whose audit log goes to `path`.
fn audited(path: &std::path::Path) -> AppOptions {
    let defaults = AppOptions::default();
    AppOptions {
        access: AccessArgs {
            audit_log: Some(path.display().to_string()),
            ..defaults.access.clone()
        },
        ..defaults
    }
}

/// The audit log's lines.
fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// GETs the JSON export of `prefix` (within `secs`), checks it answered 200 and ended without an
/// error; returns the document and its parsed form.
pub(crate) async fn export_json(app: &TestApp, prefix: &str, secs: u64) -> (Vec<u8>, Value) {
    let export = app
        .http
        .get(app.url(&format!("/api/v1/clusters/test/export?prefix={prefix}")))
        .timeout(std::time::Duration::from_secs(secs))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let document = export.bytes().await.unwrap().to_vec();
    let parsed: Value = serde_json::from_slice(&document).expect("the export is JSON");
    assert!(parsed.get("error").is_none(), "{}", parsed["error"]);
    (document, parsed)
}

/// POSTs a document to the import route; returns status and JSON answer.
async fn import(app: &TestApp, document: Vec<u8>, dry_run: bool) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/clusters/test/import?dry_run={dry_run}")))
        .header("content-type", "application/json")
        .timeout(std::time::Duration::from_secs(60))
        .body(document)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// An export document (from another cluster, so no key counts as changed after it).
fn document(kvs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let keys: Vec<Value> = kvs
        .iter()
        .map(|(k, v)| json!({"key_b64": b64(k.as_bytes()), "value_b64": b64(v)}))
        .collect();
    serde_json::to_vec(&json!({"etcdboard_export": 1, "cluster": "elsewhere", "keys": keys}))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_keys_with_large_values_whose_pages_exceed_4_mib() {
    // 600 values of 16 KiB: one 500-key export page is about 8 MiB, over gRPC's default 4 MiB.
    let app = spawn_app().await;
    let kvs: Vec<(String, Vec<u8>)> = (0..600)
        .map(|i| {
            (
                format!("/large/{i:04}"),
                vec![b'a' + (i % 26) as u8; 16 * 1024],
            )
        })
        .collect();
    for chunk in kvs.chunks(64) {
        // etcd takes at most 1.5 MiB per request.
        app.put_all(chunk).await;
    }
    let (document, parsed) = export_json(&app, "/large/", 60).await;
    assert_eq!(parsed["keys"].as_array().unwrap().len(), 600);
    // The import's dry run reads the same keys back in batches: nothing to change.
    let (status, report) = import(&app, document, true).await;
    assert_eq!(status, 200);
    assert_eq!(report["unchanged"], 600, "{report}");
}

/// An export reads values a few MiB at a time, whatever the number of keys: small values in
/// growing reads, then, where the values grow to 1 MiB, a read too large (over 64 MiB) is asked
/// again in halves. The document stays byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_reads_by_size_and_splits_a_read_whose_values_grew() {
    use base64::Engine;
    let app = spawn_app().await;
    let small: Vec<(String, Vec<u8>)> = (0..112)
        .map(|i| (format!("/mix/a{i:03}"), format!("v{i}").into_bytes()))
        .collect();
    app.put_all(&small).await;
    let big: Vec<(String, Vec<u8>)> = (0..70u8)
        .map(|i| (format!("/mix/b{i:03}"), vec![b'a' + i % 26; 1024 * 1024]))
        .collect();
    for one in big.chunks(1) {
        app.put_all(one).await;
    }
    let (_, parsed) = export_json(&app, "/mix/", 60).await;
    let got: Vec<(String, Vec<u8>)> = parsed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let value = base64::engine::general_purpose::STANDARD
                .decode(e["value_b64"].as_str().unwrap())
                .unwrap();
            (e["key"].as_str().unwrap().to_string(), value)
        })
        .collect();
    assert!(
        got.iter().eq(small.iter().chain(&big)),
        "every key and value, byte for byte, in order"
    );
    // Its reads: 16, 32 and 64 keys of small values, then 70 keys holding 70 MiB (refused),
    // then 35 and 35 again in reads of about 4 MiB.
    let (_, metrics) = app.get_text("/metrics").await;
    let count = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let reads = count(r#"etcdboard_etcd_requests_total{cluster="test",operation="values_in"}"#);
    let refused = count(
        r#"etcdboard_etcd_request_errors_total{cluster="test",operation="values_in",kind="rejected"}"#,
    );
    assert_eq!(refused, 1, "one read over 64 MiB: {metrics}");
    assert!(reads >= 10, "{reads} reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_values_too_large_to_share_one_txn_imports_completely() {
    // 10 values of 200 KiB: 2 MB together, over etcd's 1.5 MiB per request.
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let app = spawn_app_with(audited(&audit)).await;
    let mut c = app.client().await;
    let kvs: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| (format!("/qimp/{i:02}"), vec![b'a' + i as u8; 200 * 1024]))
        .collect();
    for (k, v) in &kvs {
        c.put(k.as_str(), v.clone(), None).await.unwrap();
    }
    let (document, _) = export_json(&app, "/qimp/", 10).await;
    c.delete(
        "/qimp/",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await
    .unwrap();

    let (status, dry) = import(&app, document.clone(), true).await;
    assert_eq!((status, &dry["created"]), (200, &json!(10)), "{dry}");
    let (status, applied) = import(&app, document.clone(), false).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["created"], 10, "{applied}");
    assert_eq!(applied["written"], 10, "{applied}");
    assert_eq!(applied["too_large"], 0, "{applied}");

    for (k, v) in &kvs {
        let got = c.get(k.as_str(), None).await.unwrap();
        let kv = got
            .kvs()
            .first()
            .unwrap_or_else(|| panic!("{k} was not imported"));
        assert!(kv.value() == v.as_slice(), "{k} differs");
    }
    // One audit line per key, each with the revision the key was written at.
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 10, "{lines:?}");
    for l in &lines {
        assert_eq!(
            (&l["action"], &l["result"]),
            (&json!("import"), &json!("ok"))
        );
        let key = l["key"].as_str().unwrap();
        let now = c.get(key, None).await.unwrap();
        assert_eq!(
            l["new_revision"].as_i64(),
            Some(now.kvs()[0].mod_revision()),
            "{l}"
        );
    }
    let (_, again) = import(&app, document, true).await;
    assert_eq!(again["unchanged"], 10, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_key_has_no_lease_and_its_audit_line_names_the_new_revision() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let app = spawn_app_with(audited(&audit)).await;
    let mut c = app.client().await;
    let lease = c.lease_grant(600, None).await.unwrap().id();
    c.put(
        "/lease/a",
        "old",
        Some(etcd_client::PutOptions::new().with_lease(lease)),
    )
    .await
    .unwrap();

    let doc = document(&[("/lease/a", b"new".to_vec()), ("/lease/b", b"2".to_vec())]);
    let (status, applied) = import(&app, doc, false).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(
        (&applied["updated"], &applied["created"]),
        (&json!(1), &json!(1))
    );

    let got = c.get("/lease/a", None).await.unwrap();
    let kv = &got.kvs()[0];
    assert_eq!(kv.value(), b"new");
    assert_eq!(kv.lease(), 0, "the imported key kept its old lease");
    let ttl = c
        .lease_time_to_live(
            lease,
            Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
        )
        .await
        .unwrap();
    assert!(ttl.keys().is_empty(), "the lease still holds the key");

    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["result"], "ok");
        assert_eq!(l["new_revision"].as_i64(), Some(kv.mod_revision()), "{l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_too_large_for_etcd_are_reported_one_by_one_and_the_rest_imported() {
    // etcd here takes at most 256 KiB per request, less than etcdboard's 1.5 MiB: a batch etcd
    // refuses is written key by key. A 2 MB value is over etcdboard's own limit too.
    let etcd = LocalCluster::start(LocalClusterOptions {
        extra_args: vec!["--max-request-bytes=262144".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let app = serve_on(etcd, audited(&audit)).await;
    let mut c = app.client().await;
    let lease = c.lease_grant(600, None).await.unwrap().id();
    c.put(
        "/tl/small-1",
        "leased",
        Some(etcd_client::PutOptions::new().with_lease(lease)),
    )
    .await
    .unwrap();
    let doc = document(&[
        ("/tl/small-0", b"0".to_vec()),
        ("/tl/huge", vec![b'h'; 2_000_000]),
        ("/tl/small-1", b"1".to_vec()),
        ("/tl/big", vec![b'b'; 300 * 1024]),
        ("/tl/small-2", b"2".to_vec()),
    ]);
    let (status, dry) = import(&app, doc.clone(), true).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        dry["too_large"], 1,
        "etcdboard's own limit is known before writing: {dry}"
    );
    assert_eq!(dry["too_large_keys"][0]["key"], "/tl/huge");

    let (status, applied) = import(&app, doc, false).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["too_large"], 2, "{applied}");
    let listed: Vec<&str> = applied["too_large_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["/tl/huge", "/tl/big"]);
    assert_eq!(
        (&applied["created"], &applied["updated"]),
        (&json!(2), &json!(1))
    );
    for (k, v) in [
        ("/tl/small-0", "0"),
        ("/tl/small-1", "1"),
        ("/tl/small-2", "2"),
    ] {
        let got = c.get(k, None).await.unwrap();
        assert_eq!(got.kvs()[0].value(), v.as_bytes(), "{k}");
        assert_eq!(got.kvs()[0].lease(), 0, "{k} has no lease");
    }
    for k in ["/tl/huge", "/tl/big"] {
        assert_eq!(c.get(k, None).await.unwrap().kvs().len(), 0, "{k}");
    }
    let lines = audit_lines(&audit);
    let ok = lines.iter().filter(|l| l["result"] == "ok").count();
    assert_eq!(ok, 3, "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l["key"] == "/tl/big" && l["result"].as_str().unwrap().contains("too large")));
}
