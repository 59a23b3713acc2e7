#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
#[path = "../src/etcd/local.rs"]
mod local;
#[path = "../src/etcd/seed.rs"]
mod seed;

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_cluster_lifecycle() {
    let t = Instant::now();
    let mut cluster = local::LocalCluster::start(local::LocalClusterOptions::default()).await.unwrap();
    println!("start took {:?}; urls {:?} names {:?}", t.elapsed(), cluster.client_urls(), cluster.member_names());
    let pids: Vec<u32> = (0..3).map(|i| cluster.pid(i).unwrap()).collect();
    println!("pids {pids:?}");

    let mut client = etcd_client::Client::connect(cluster.client_urls(), None).await.unwrap();
    let mut calls = 0;
    let report = seed::seed_demo(&mut client, 100_000, |done, total| { calls += 1; if calls % 200 == 0 { println!("progress {done}/{total}"); } }).await.unwrap();
    println!("seeded {} keys in {:?} ({} progress calls)", report.keys, report.elapsed, calls);

    let resp = client.get("", Some(etcd_client::GetOptions::new().with_all_keys().with_count_only())).await.unwrap();
    println!("count = {}", resp.count());
    assert_eq!(resp.count() as usize, report.keys);
    let v = client.get(seed::NON_UTF8_KEY, None).await.unwrap();
    assert_eq!(v.kvs().len(), 1);
    let v = client.get(seed::LEASED_KEY, None).await.unwrap();
    assert!(v.kvs()[0].lease() != 0);
    let v = client.get("99999", None).await.unwrap();
    assert_eq!(v.kvs()[0].value(), b"99999");

    let t = Instant::now();
    cluster.kill(1);
    assert!(cluster.pid(1).is_none());
    assert!(!std::path::Path::new(&format!("/proc/{}", pids[1])).exists());
    cluster.wait_healthy(Duration::from_secs(10)).await.unwrap();
    println!("healthy with m1 dead after {:?}", t.elapsed());
    cluster.restart(1).await.unwrap();
    println!("restart returned after {:?}", t.elapsed());
    cluster.wait_healthy(Duration::from_secs(20)).await.unwrap();
    println!("healthy after restart {:?}", t.elapsed());

    // stop/cont
    cluster.stop(2);
    let t = Instant::now();
    cluster.wait_healthy(Duration::from_secs(10)).await.unwrap();
    println!("healthy with m2 stopped {:?}", t.elapsed());
    let new_pids: Vec<u32> = (0..3).map(|i| cluster.pid(i).unwrap()).collect();
    drop(cluster); // m2 is still stopped
    for p in new_pids.iter().chain(pids.iter()) {
        assert!(!std::path::Path::new(&format!("/proc/{p}")).exists(), "pid {p} still exists");
    }
}

#[tokio::test]
async fn scratch_missing_binary() {
    let err = local::LocalCluster::start(local::LocalClusterOptions { etcd_binary: Some("/nonexistent/etcd".into()), ..Default::default() }).await.unwrap_err();
    println!("{err}");
    let err = local::LocalCluster::start(local::LocalClusterOptions { extra_args: vec!["--bogus-flag".into()], members: 1, ..Default::default() }).await.unwrap_err();
    println!("{err}");
}

#[tokio::test]
async fn scratch_panic_cleans_up() {
    let h = tokio::spawn(async {
        let c = local::LocalCluster::start(local::LocalClusterOptions { members: 1, quota_backend_bytes: Some(16 * 1024 * 1024), ..Default::default() }).await.unwrap();
        println!("single member pid {:?}", c.pid(0));
        std::fs::write("/tmp/scratch_pid", c.pid(0).unwrap().to_string()).unwrap();
        panic!("boom");
    });
    assert!(h.await.is_err());
    let pid = std::fs::read_to_string("/tmp/scratch_pid").unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[tokio::test]
async fn scratch_child_mode() {
    if std::env::var_os("SCRATCH_CHILD").is_none() { return; }
    let c = local::LocalCluster::start(local::LocalClusterOptions::default()).await.unwrap();
    let pids: Vec<String> = (0..3).map(|i| c.pid(i).unwrap().to_string()).collect();
    std::fs::write(std::env::var("SCRATCH_CHILD").unwrap(), pids.join(" ")).unwrap();
    // Also fork something from a short-lived blocking thread path
    tokio::time::sleep(Duration::from_secs(300)).await;
}

#[test]
fn scratch_abrupt_parent_death() {
    let out = std::env::temp_dir().join(format!("scratch_child_pids_{}", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "scratch_child_mode", "--nocapture"])
        .env("SCRATCH_CHILD", &out)
        .spawn().unwrap();
    let t = Instant::now();
    while !out.exists() || std::fs::read_to_string(&out).unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let pids = std::fs::read_to_string(&out).unwrap();
    println!("child etcd pids: {pids}");
    for p in pids.split(' ') { assert!(std::path::Path::new(&format!("/proc/{p}")).exists()); }
    child.kill().unwrap(); // SIGKILL: no Drop runs
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for p in pids.split(' ') {
        let gone = !std::path::Path::new(&format!("/proc/{p}")).exists()
            || std::fs::read_to_string(format!("/proc/{p}/stat")).map(|s| s.contains(") Z")).unwrap_or(true);
        assert!(gone, "etcd {p} survived its parent");
    }
    let _ = std::fs::remove_file(&out);
}

#[tokio::test]
async fn scratch_start_timing() {
    let _ = tracing_subscriber::fmt().with_env_filter("scratch_local=debug").with_test_writer().try_init();
    for _ in 0..8 {
        let t = Instant::now();
        let c = local::LocalCluster::start(local::LocalClusterOptions::default()).await.unwrap();
        println!("solo start took {:?}", t.elapsed());
        let log = std::fs::read_to_string(c.log_path(0).unwrap()).unwrap();
        for l in log.lines().filter(|l| l.contains("elected leader") || l.contains("ready to serve") || l.contains("published local member") || l.contains("became") || l.contains("starting an etcd server") || l.contains("added member")) { println!("  {}", &l[..l.len().min(200)]); }
        drop(c);
    }
}

#[tokio::test]
async fn scratch_start_logs() {
    for _ in 0..6 {
        let t = Instant::now();
        let c = local::LocalCluster::start(local::LocalClusterOptions::default()).await.unwrap();
        let el = t.elapsed();
        if el < Duration::from_millis(900) { println!("fast {el:?}"); continue; }
        println!("SLOW start took {el:?}");
        for i in 0..3 {
            let log = std::fs::read_to_string(c.log_path(i).unwrap()).unwrap();
            for l in log.lines().filter(|l| i == 0 || l.contains("\"warn\"") || l.contains("became active") || l.contains("starting an etcd") || l.contains("serving peer") || l.contains("now serving peer") || l.contains("started streaming")|| l.contains("candidate")) { println!("  m{i} {}", &l[..l.len().min(330)]); }
        }
        break;
    }
}
