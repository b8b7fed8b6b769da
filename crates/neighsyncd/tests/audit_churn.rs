//! The periodic self-audit under steady churn with an orchagent-like
//! consumer popping all the time: no false drift, no resync, and the table
//! orchagent ends with equals the kernel's. (Real drift is caught: see
//! `ops.rs` periodic_audit_repairs_appl_db_and_reports_drift.)

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use swss::{ConsumerStateTable, DbConfig, DbConnector};
use testbed::daemon::Daemon;
use testbed::netns::{http_get, metrics_sample, NeighTopology};
use testbed::redis_server::RedisServer;

const METRICS_ADDR: &str = "127.0.0.1:9101";
const NEIGHBORS: usize = 40;
const CHURN: Duration = Duration::from_secs(8);

fn metric(topo: &NeighTopology, name: &str) -> Option<f64> {
    let (_, body) = http_get(topo.dut(), METRICS_ADDR, "/metrics")?;
    metrics_sample(&body, name)
}

/// Pops NEIGH_TABLE continuously (batches of 16, as fast as it can) until
/// `stop`, merging what it popped into a table.
fn busy_consumer(redis: &RedisServer, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let cfg = DbConfig::load(redis.db_config_path()).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let db = DbConnector::new(cfg.location("APPL_DB").unwrap()).unwrap();
            let mut consumer = ConsumerStateTable::new(&db, "NEIGH_TABLE", 16)
                .await
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                if consumer.pops().await.unwrap().is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
    })
}

#[test]
fn audit_under_churn_with_a_busy_consumer_finds_no_drift() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let cfg = redis.db_config_path().to_str().unwrap().to_owned();
    let args = [
        "--db-config",
        cfg.as_str(),
        "--metrics-addr",
        METRICS_ADDR,
        "--audit-interval",
        "1",
        "--log-level",
        "INFO",
    ];
    let mut daemon = Daemon::start(Some(topo.dut()), Path::new(BIN), &args).unwrap();
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = busy_consumer(&redis, stop.clone());

    let ip = |i: usize| format!("10.0.{}.{}", i / 200, 10 + i % 200);
    let start = Instant::now();
    let mut round = 0usize;
    while start.elapsed() < CHURN {
        round += 1;
        for i in 0..NEIGHBORS {
            let mac = format!("02:00:00:00:{:02x}:{:02x}", round % 256, i);
            topo.dut().neigh_replace("Ethernet0", &ip(i), &mac).unwrap();
        }
    }
    // Two audits that start after the last change: by then the last
    // round is written (an audit in progress holds flushes back for a
    // moment, so the count reached during the churn proves nothing).
    let after_churn = metric(&topo, "neighsyncd_audit_runs_total").unwrap_or(0.0);
    let audits = wait_for("audits to run", || {
        metric(&topo, "neighsyncd_audit_runs_total")
            .filter(|n| *n >= 4.0 && *n >= after_churn + 2.0)
    });
    stop.store(true, Ordering::Relaxed);
    consumer.join().unwrap();

    let log = daemon.log();
    assert_eq!(
        metric(&topo, r#"neighsyncd_resyncs_total{cause="audit"}"#),
        Some(0.0),
        "{audits} audits:\n{log}"
    );
    assert!(!log.contains("audit: drift repaired"), "{log}");
    // What orchagent ends with is the kernel's table.
    let popped = consume(&redis);
    let mut appl = redis.conn(0).unwrap();
    let last_mac = |i: usize| format!("02:00:00:00:{:02x}:{:02x}", round % 256, i);
    for i in 0..NEIGHBORS {
        let key = format!("Ethernet0:{}", ip(i));
        let have: Vec<(String, String)> =
            redis::Commands::hgetall(&mut appl, format!("NEIGH_TABLE:{key}")).unwrap();
        assert_eq!(
            have,
            vec![
                ("neigh".to_owned(), last_mac(i)),
                ("family".to_owned(), "IPv4".to_owned())
            ],
            "{key} (popped at the end: {:?})",
            popped.get(&key)
        );
    }
    let st = daemon.sigterm().unwrap();
    assert!(st.success(), "{st:?}\n{}", daemon.log());
}
