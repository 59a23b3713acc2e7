//! Export → delete → import of 100k keys through the API, byte-exact.
//!
//! Its own module, named to sort early: it is the suite's longest test (about 85 s in a debug
//! build), and libtest starts tests in name order, so at the end of the list it would run alone
//! while the other test thread has nothing left to do.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::transfer::export_json;

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
    let (document, parsed) = export_json(&app, "/big/", 120).await;
    eprintln!(
        "export: {} bytes in {:?}",
        document.len(),
        started.elapsed()
    );
    assert_eq!(parsed["keys"].as_array().unwrap().len(), N + 1);

    // Delete the prefix the way the UI does: preview, then confirm with count and revision.
    let (_, preview) = app
        .get_json("/api/v1/clusters/test/delete-prefix?prefix=/big/")
        .await;
    assert_eq!(preview["count"], N as u64 + 1);
    let started = std::time::Instant::now();
    let resp = app
        .http
        .post(app.url("/api/v1/clusters/test/delete-prefix"))
        .json(&json!({"prefix": "/big/", "expected_count": preview["count"], "revision": preview["revision"]}))
        .send()
        .await
        .unwrap();
    eprintln!("delete of {} keys: {:?}", N + 1, started.elapsed());
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
