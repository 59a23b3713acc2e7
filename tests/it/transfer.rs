//! Export → delete → import of a large prefix through the API, byte-exact.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_delete_import_round_trips_100k_keys_byte_exact() {
    let app = spawn_app().await;
    const N: usize = 100_000;
    // Every tenth value is binary; keys include a non-UTF-8 one.
    let mut kvs: Vec<(Vec<u8>, Vec<u8>)> = (0..N)
        .map(|i| {
            let key = format!("/big/{i:06}").into_bytes();
            let value = if i % 10 == 0 {
                vec![0xff, 0x00, (i % 251) as u8, b'\n']
            } else {
                format!("value {i}\r\n").into_bytes()
            };
            (key, value)
        })
        .collect();
    kvs.push((b"/big/\xff\xfe".to_vec(), b"\x00\x01".to_vec()));
    app.put_all(&kvs).await;
    app.put_all(&[("/bigger", "outside")]).await;

    let started = std::time::Instant::now();
    let export = app
        .http
        .get(app.url("/api/v1/clusters/test/export?prefix=/big/"))
        .timeout(std::time::Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let document = export.bytes().await.unwrap();
    eprintln!(
        "export: {} bytes in {:?}",
        document.len(),
        started.elapsed()
    );
    let parsed: serde_json::Value = serde_json::from_slice(&document).expect("the export is JSON");
    assert_eq!(parsed["keys"].as_array().unwrap().len(), N + 1);
    assert!(parsed.get("error").is_none());

    // Delete the prefix the way the UI does: preview, then confirm with count and revision.
    let (_, preview) = app
        .get_json("/api/v1/clusters/test/delete-prefix?prefix=/big/")
        .await;
    assert_eq!(preview["count"], N as u64 + 1);
    let resp = app
        .http
        .post(app.url("/api/v1/clusters/test/delete-prefix"))
        .json(&json!({"prefix": "/big/", "expected_count": preview["count"], "revision": preview["revision"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let import = |dry: bool| {
        app.http
            .post(app.url(&format!("/api/v1/clusters/test/import?dry_run={dry}")))
            .header("content-type", "application/json")
            .timeout(std::time::Duration::from_secs(300))
            .body(document.clone())
            .send()
    };
    let dry: serde_json::Value = import(true).await.unwrap().json().await.unwrap();
    assert_eq!(dry["created"], N as u64 + 1, "{dry}");
    assert_eq!(dry["conflicts"], 0);
    let started = std::time::Instant::now();
    let applied: serde_json::Value = import(false).await.unwrap().json().await.unwrap();
    eprintln!("import of {} keys: {:?}", N + 1, started.elapsed());
    assert_eq!(applied["created"], N as u64 + 1, "{applied}");

    // Byte-exact, checked with a raw client (one read of the whole prefix is fine in a test).
    let mut c = app.client().await;
    let got = c
        .get("/big/", Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let mut want = kvs.clone();
    want.sort();
    let have: Vec<(Vec<u8>, Vec<u8>)> = got
        .kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), kv.value().to_vec()))
        .collect();
    assert_eq!(have.len(), want.len());
    assert!(
        have == want,
        "restored keys and values differ from the originals"
    );
    let outside = c.get("/bigger", None).await.unwrap();
    assert_eq!(
        outside.kvs().len(),
        1,
        "keys outside the prefix are untouched"
    );
    // A second import changes nothing.
    let again: serde_json::Value = import(true).await.unwrap().json().await.unwrap();
    assert_eq!(again["unchanged"], N as u64 + 1, "{again}");
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
    let export = app
        .http
        .get(app.url("/api/v1/clusters/test/export?prefix=/large/"))
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let document = export.bytes().await.unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&document).unwrap();
    assert!(parsed.get("error").is_none(), "{}", parsed["error"]);
    assert_eq!(parsed["keys"].as_array().unwrap().len(), 600);
    // The import's dry run reads the same keys back in batches: nothing to change.
    let resp = app
        .http
        .post(app.url("/api/v1/clusters/test/import?dry_run=true"))
        .header("content-type", "application/json")
        .body(document)
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let report: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(report["unchanged"], 600, "{report}");
}
