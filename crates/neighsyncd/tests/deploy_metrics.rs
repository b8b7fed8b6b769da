//! Every metric name used by the Grafana dashboard
//! (`deploy/grafana/sonic-syncd.json`) and the Prometheus alert rules
//! (`deploy/prometheus/alerts.yml`) is exported by the running daemons:
//! neighsyncd and portsyncd run in a namespace against a real redis-server
//! with `--metrics-addr`, their `/metrics` (OpenMetrics text) is scraped and
//! each `neighsyncd_*` / `portsyncd_*` name the files use must be a family
//! of the right type: a gauge as is, a counter as `<family>_total`, a
//! histogram as `<family>_bucket` / `_sum` / `_count`.
//!
//! portsyncd's binary belongs to another package: it is taken from the same
//! target directory, built first with `cargo build -p portsyncd`.

#![allow(clippy::unwrap_used)]

mod common;
mod ops_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use ops_common::{portsyncd_bin, repo_root};
use testbed::daemon::Daemon;
use testbed::netns::NetNs;
use testbed::redis_server::RedisServer;

const NEIGHSYNCD_ADDR: &str = "127.0.0.1:9101";
const PORTSYNCD_ADDR: &str = "127.0.0.1:9102";

/// Scrape until `/metrics` answers 200 (the daemon may still be starting).
fn scrape(ns: &NetNs, addr: &str, daemon: &mut Daemon) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((200, body)) = testbed::netns::http_get(ns, addr, "/metrics") {
            return body;
        }
        assert!(daemon.is_running(), "daemon exited; log:\n{}", daemon.log());
        assert!(
            Instant::now() < deadline,
            "no /metrics on {addr}; log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `# TYPE <family> <type>` lines of an OpenMetrics exposition.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_owned(), it.next()?.to_owned()))
        })
        .collect()
}

/// Whether a sample name used in PromQL is exported by `fams`.
fn exported(name: &str, fams: &BTreeMap<String, String>) -> bool {
    if let Some(t) = fams.get(name) {
        // Gauges (and untyped) are queried by their family name.
        return t == "gauge" || t == "unknown";
    }
    let suffixed = |suffix: &str, kinds: &[&str]| {
        name.strip_suffix(suffix)
            .and_then(|f| fams.get(f))
            .is_some_and(|t| kinds.contains(&t.as_str()))
    };
    suffixed("_total", &["counter"])
        || suffixed("_bucket", &["histogram"])
        || suffixed("_sum", &["histogram", "summary"])
        || suffixed("_count", &["histogram", "summary"])
}

/// Every `neighsyncd_*` / `portsyncd_*` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("neighsyncd_") || w.starts_with("portsyncd_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn dashboard_and_alert_metric_names_are_exported() {
    let dashboard =
        std::fs::read_to_string(repo_root().join("deploy/grafana/sonic-syncd.json")).unwrap();
    let alerts = std::fs::read_to_string(repo_root().join("deploy/prometheus/alerts.yml")).unwrap();
    // The dashboard is valid JSON.
    let _: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let used: BTreeSet<String> = metric_names(&dashboard)
        .into_iter()
        .chain(metric_names(&alerts))
        .collect();
    // The files cover the contract's core families of both daemons.
    for name in [
        "neighsyncd_kernel_events_total",
        "neighsyncd_event_to_ack_seconds_bucket",
        "neighsyncd_audit_drift",
        "neighsyncd_redis_up",
        "portsyncd_port_init_done",
        "portsyncd_ports_pending",
        "portsyncd_netlink_overruns_total",
    ] {
        assert!(used.contains(name), "{name} not used by the deploy files");
    }

    let portsyncd = portsyncd_bin();
    let redis = RedisServer::start().unwrap();
    let ns = NetNs::new("dmet").unwrap();
    let cfg = redis.db_config_path().to_str().unwrap().to_owned();
    let mut neigh = Daemon::start(
        Some(&ns),
        Path::new(common::BIN),
        &["--db-config", &cfg, "--metrics-addr", NEIGHSYNCD_ADDR],
    )
    .unwrap();
    let mut port = Daemon::start(
        Some(&ns),
        &portsyncd,
        &["--db-config", &cfg, "--metrics-addr", PORTSYNCD_ADDR],
    )
    .unwrap();

    // No kernel or Redis activity: the label sets the deploy files query
    // are pre-registered at 0 (Metrics::new). Scrape until every used name
    // is exported (the daemons may still be starting), then assert on the
    // last scrape.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut fams = families(&scrape(&ns, NEIGHSYNCD_ADDR, &mut neigh));
        let port_fams = families(&scrape(&ns, PORTSYNCD_ADDR, &mut port));
        assert!(
            fams.keys().all(|f| f.starts_with("neighsyncd_")),
            "{fams:?}"
        );
        assert!(
            port_fams.keys().all(|f| f.starts_with("portsyncd_")),
            "{port_fams:?}"
        );
        fams.extend(port_fams);
        let missing: Vec<&String> = used.iter().filter(|n| !exported(n, &fams)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "used by deploy/ but not exported: {missing:?}\nexported families: {fams:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let status = neigh.sigterm().unwrap();
    assert_eq!(status.code(), Some(0), "{}", neigh.log());
    let status = port.sigterm().unwrap();
    assert_eq!(status.code(), Some(0), "{}", port.log());
}

#[test]
fn exported_matches_openmetrics_suffixes() {
    let fams: BTreeMap<String, String> = [
        ("neighsyncd_kernel_events", "counter"),
        ("neighsyncd_event_to_ack_seconds", "histogram"),
        ("neighsyncd_entries", "gauge"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert!(exported("neighsyncd_kernel_events_total", &fams));
    assert!(!exported("neighsyncd_kernel_events", &fams));
    assert!(exported("neighsyncd_event_to_ack_seconds_bucket", &fams));
    assert!(exported("neighsyncd_event_to_ack_seconds_count", &fams));
    assert!(!exported("neighsyncd_event_to_ack_seconds", &fams));
    assert!(exported("neighsyncd_entries", &fams));
    assert!(!exported("neighsyncd_entries_total", &fams));
    assert!(!exported("neighsyncd_nonexistent", &fams));
    assert_eq!(
        metric_names(r#"rate(neighsyncd_x_total{a="b"}[5m]) / portsyncd_y up{job="neighsyncd"}"#),
        ["neighsyncd_x_total", "portsyncd_y"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    );
}
