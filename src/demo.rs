//! `etcdboard demo`: starts a real 3-member etcd on loopback (free ports, temp dirs), seeds sample
//! data with a progress line, serves the dashboard on it, and stops every member on Ctrl-C.

use std::io::Write;

use crate::app::App;
use crate::config::{ClusterConfig, Config, DemoArgs};
use crate::etcd::local::{LocalCluster, LocalClusterOptions};
use crate::etcd::seed::seed_endpoints;

/// Runs the demo until `shutdown` resolves.
pub async fn run(
    args: &DemoArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    eprintln!("starting a 3-member etcd on 127.0.0.1 …");
    let mut cluster = LocalCluster::start(LocalClusterOptions::default()).await?;
    let endpoints = cluster.client_urls();
    eprintln!("etcd members: {}", endpoints.join(", "));
    // On a terminal one line counts up in place; in a log (a container, CI) a line per tenth.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut said = 0;
    let report = seed_endpoints(&endpoints, args.flat_keys, |done, total| {
        if terminal {
            eprint!("\rseeding sample data: {done}/{total} keys");
            let _ = std::io::stderr().flush();
        } else if done * 10 >= (said + 1) * total.max(1) {
            said = done * 10 / total.max(1);
            eprintln!("seeding sample data: {done}/{total} keys");
        }
    })
    .await;
    if terminal {
        eprintln!();
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            cluster.shutdown();
            return Err(e.into());
        }
    };
    eprintln!(
        "seeded {} keys in {:.1} s",
        report.keys,
        report.elapsed.as_secs_f64()
    );
    // The demo's members are processes on loopback, which no Kubernetes pod can be: looking for
    // a cluster to join them with would only produce a note about a missing kubeconfig. An
    // explicit `--kube PATH` is still honoured.
    let mut http = args.http.clone();
    if http.kube == "auto" {
        http.kube = "off".into();
    }
    let mut config = Config::new(
        &http,
        vec![ClusterConfig {
            name: "demo".into(),
            endpoints: endpoints.clone(),
            ..Default::default()
        }],
    )?;
    // The demo is a private sandbox on loopback: everything may be tried without signing in,
    // unless --anonymous-role says otherwise.
    config.access =
        crate::access::AccessConfig::from_args(&http.access, crate::domain::access::Role::Admin)?;
    let base = config.base_path.clone();
    let app = App::build(config).await?;
    let addr = app.local_addr()?;
    println!(
        "etcdboard demo: http://{addr}{base}/  (Ctrl-C stops the dashboard and every etcd member)"
    );
    let served = app.run_until_stopped(shutdown).await;
    cluster.shutdown();
    eprintln!("stopped the demo etcd members");
    Ok(served?)
}
