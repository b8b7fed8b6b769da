//! neighsyncd operated as a SONiC daemon (issue 6): /metrics and /healthz
//! over HTTP, systemd notify (READY, WATCHDOG, STOPPING) on a NOTIFY_SOCKET
//! the test owns, a live log-level change through CONFIG_DB LOGGER, and the
//! periodic self-audit repairing APPL_DB. Real binary in a namespace, real
//! kernel, real redis-server.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use common::*;
use redis::Commands;
use testbed::daemon::Daemon;
use testbed::netns::{NeighTopology, NetNs};
use testbed::redis_server::RedisServer;

const METRICS_ADDR: &str = "127.0.0.1:9101";

/// A NOTIFY_SOCKET the test listens on (unix datagram, in a temp dir).
struct NotifySocket {
    sock: UnixDatagram,
    path: String,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        NotifySocket {
            sock,
            path: path.to_str().unwrap().to_owned(),
            _dir: dir,
        }
    }

    /// Reads datagrams until one has the line `want`; returns it. Fails
    /// after [`DEADLINE`] without one.
    fn wait_for(&self, want: &str) -> String {
        let mut buf = [0u8; 4096];
        loop {
            let n = self
                .sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {want} on NOTIFY_SOCKET: {e}"));
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == want) {
                return msg;
            }
        }
    }
}

fn http_get(ns: &NetNs, path: &str) -> Option<(u16, String)> {
    testbed::netns::http_get(ns, METRICS_ADDR, path)
}

fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    testbed::netns::metrics_sample(metrics, name_and_labels)
}

fn metric(ns: &NetNs, name_and_labels: &str) -> Option<f64> {
    let (status, body) = http_get(ns, "/metrics")?;
    assert_eq!(status, 200);
    sample(&body, name_and_labels)
}

fn start(
    topo: &NeighTopology,
    redis: &RedisServer,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Daemon {
    let cfg = redis.db_config_path().to_str().unwrap().to_owned();
    let mut args = vec!["--db-config", cfg.as_str(), "--metrics-addr", METRICS_ADDR];
    args.extend_from_slice(extra);
    let mut d = Daemon::start_with_env(Some(topo.dut()), Path::new(BIN), &args, env).unwrap();
    d.wait_for_log(READY, DEADLINE).unwrap();
    d
}

fn add_neigh(topo: &NeighTopology, ip: &str, mac: &str) {
    topo.dut().neigh_add("Ethernet0", ip, mac).unwrap();
}

/// Whether the daemon logged a DEBUG line about `Ethernet0:<ip>`.
fn debug_line_for(log: &str, ip: &str) -> bool {
    log.lines()
        .any(|l| l.contains("DEBUG") && l.contains(&format!("Ethernet0:{ip}")))
}

/// Adds a neighbour on Ethernet0 and waits until its SET is pending in
/// APPL_DB (the daemon has handled it).
fn add_neigh_and_wait(topo: &NeighTopology, appl: &mut redis::Connection, ip: &str, mac: &str) {
    add_neigh(topo, ip, mac);
    wait_pending_set(appl, &format!("Ethernet0:{ip}"), mac, "IPv4");
}

const WRITTEN: &str =
    r#"neighsyncd_kernel_events_total{type="RTM_NEWNEIGH",outcome="written",reason=""}"#;

#[test]
fn metrics_health_and_systemd_notify() {
    let mut redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let notify = NotifySocket::new();
    let mut daemon = start(
        &topo,
        &redis,
        &["--log-level", "DEBUG"],
        &[
            ("NOTIFY_SOCKET", notify.path.as_str()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );
    let ns = topo.dut();

    // READY=1 after the first full sync, with a STATUS line; then the
    // watchdog pings (every second for WATCHDOG_USEC=2 s).
    let ready = notify.wait_for("READY=1");
    assert!(ready.contains("STATUS=synced"), "{ready}");
    notify.wait_for("WATCHDOG=1");
    notify.wait_for("WATCHDOG=1");

    // /healthz: healthy.
    let (status, body) = wait_for("/healthz 200", || {
        http_get(ns, "/healthz").filter(|(s, _)| *s == 200)
    });
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = http_get(ns, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.ends_with("# EOF\n"));
    assert_eq!(sample(&body, "neighsyncd_redis_up"), Some(1.0));
    assert_eq!(sample(&body, "neighsyncd_netlink_up"), Some(1.0));
    assert_eq!(
        sample(&body, r#"neighsyncd_warm_restart_state{state="disabled"}"#),
        Some(1.0)
    );
    let written_before = sample(&body, WRITTEN).unwrap_or(0.0);

    // A neighbour added: the written counter moves, entries match APPL_DB.
    let mut appl = redis.conn(0).unwrap();
    add_neigh_and_wait(&topo, &mut appl, "10.0.0.50", "02:00:00:00:00:50");
    wait_for("written counter", || {
        metric(ns, WRITTEN).filter(|v| *v >= written_before + 1.0)
    });
    consume(&redis);
    let keys: Vec<String> = appl.keys("NEIGH_TABLE:*").unwrap();
    assert!(keys.contains(&"NEIGH_TABLE:Ethernet0:10.0.0.50".to_owned()));
    assert_eq!(metric(ns, "neighsyncd_entries"), Some(keys.len() as f64));
    let ops = metric(
        ns,
        r#"neighsyncd_redis_operations_total{table="NEIGH_TABLE",op="set"}"#,
    )
    .unwrap();
    assert!(ops >= 1.0);
    assert!(metric(ns, "neighsyncd_redis_batches_total").unwrap() >= 1.0);
    assert!(metric(ns, "neighsyncd_event_to_ack_seconds_count").unwrap() >= 1.0);

    // Redis down: 503 with a JSON reason; back up: 200 again.
    redis.stop().unwrap();
    let (_, body) = wait_for("/healthz 503", || {
        http_get(ns, "/healthz").filter(|(s, _)| *s == 503)
    });
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "unhealthy");
    assert!(v["reason"].as_str().unwrap().contains("redis"), "{body}");
    assert_eq!(metric(ns, "neighsyncd_redis_up"), Some(0.0));
    redis.restart().unwrap();
    wait_for("/healthz 200 after the restart", || {
        http_get(ns, "/healthz").filter(|(s, _)| *s == 200)
    });
    assert!(metric(ns, "neighsyncd_redis_reconnects_total").unwrap() >= 1.0);
    assert!(metric(ns, r#"neighsyncd_resyncs_total{cause="redis_reconnect"}"#).unwrap() >= 1.0);

    // SIGTERM: STOPPING=1, exit 0.
    let st = daemon.sigterm().unwrap();
    assert!(st.success(), "{st:?}\n{}", daemon.log());
    notify.wait_for("STOPPING=1");
}

#[test]
fn log_level_follows_config_db_logger() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let mut daemon = start(&topo, &redis, &["--log-level", "NOTICE"], &[]);
    let mut appl = redis.conn(0).unwrap();

    add_neigh_and_wait(&topo, &mut appl, "10.0.0.50", "02:00:00:00:00:50");
    assert!(
        !debug_line_for(&daemon.log(), "10.0.0.50"),
        "{}",
        daemon.log()
    );
    // The default entry was written (NOTICE), and did not change the level.
    let mut config = redis.conn(4).unwrap();
    let level: String = config.hget("LOGGER|neighsyncd", "LOGLEVEL").unwrap();
    assert_eq!(level, "NOTICE");

    // What `swssloglevel -l DEBUG -c neighsyncd` does.
    let () = config
        .hset("LOGGER|neighsyncd", "LOGLEVEL", "DEBUG")
        .unwrap();
    daemon.wait_for_log("log level changed", DEADLINE).unwrap();
    add_neigh_and_wait(&topo, &mut appl, "10.0.0.51", "02:00:00:00:00:51");
    wait_for("debug line", || {
        debug_line_for(&daemon.log(), "10.0.0.51").then_some(())
    });
    assert!(!debug_line_for(&daemon.log(), "10.0.0.50"));

    // And back: debug lines stop.
    let () = config
        .hset("LOGGER|neighsyncd", "LOGLEVEL", "NOTICE")
        .unwrap();
    wait_for("second level change", || {
        (daemon.log().matches("log level changed").count() >= 2).then_some(())
    });
    add_neigh_and_wait(&topo, &mut appl, "10.0.0.52", "02:00:00:00:00:52");
    assert!(!debug_line_for(&daemon.log(), "10.0.0.52"));
}

/// As swss::Logger::linkToDbWithOutput: a `LOGGER|neighsyncd` `LOGLEVEL`
/// already in CONFIG_DB at start is the start level, unless `--log-level`
/// is given on the command line.
#[test]
fn log_level_from_config_db_at_start_unless_given_on_the_command_line() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let mut appl = redis.conn(0).unwrap();
    let mut config = redis.conn(4).unwrap();
    let () = config
        .hset("LOGGER|neighsyncd", "LOGLEVEL", "DEBUG")
        .unwrap();

    // --log-level given: it wins over CONFIG_DB at start.
    let mut daemon = start(&topo, &redis, &["--log-level", "NOTICE"], &[]);
    add_neigh_and_wait(&topo, &mut appl, "10.0.0.60", "02:00:00:00:00:60");
    assert!(
        !debug_line_for(&daemon.log(), "10.0.0.60"),
        "{}",
        daemon.log()
    );
    assert!(!daemon.log().contains("log level changed"));
    let st = daemon.sigterm().unwrap();
    assert!(st.success(), "{st:?}\n{}", daemon.log());

    // No --log-level: CONFIG_DB's DEBUG applies from start-up on.
    let mut daemon = start(&topo, &redis, &[], &[]);
    add_neigh_and_wait(&topo, &mut appl, "10.0.0.61", "02:00:00:00:00:61");
    wait_for("debug line", || {
        debug_line_for(&daemon.log(), "10.0.0.61").then_some(())
    });
    // The preset value was kept, not overwritten by the default.
    let level: String = config.hget("LOGGER|neighsyncd", "LOGLEVEL").unwrap();
    assert_eq!(level, "DEBUG");
    let st = daemon.sigterm().unwrap();
    assert!(st.success(), "{st:?}\n{}", daemon.log());
}

#[test]
fn periodic_audit_repairs_appl_db_and_reports_drift() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let _daemon = start(&topo, &redis, &["--audit-interval", "3"], &[]);
    let ns = topo.dut();
    let mut appl = redis.conn(0).unwrap();
    add_neigh_and_wait(&topo, &mut appl, "10.0.0.50", "02:00:00:00:00:50");
    consume(&redis);
    assert!(appl
        .exists::<_, bool>("NEIGH_TABLE:Ethernet0:10.0.0.50")
        .unwrap());

    // Behind the daemon's back, atomically (one audit sees both): the
    // consumed entry deleted, a stale one added.
    let () = redis::pipe()
        .atomic()
        .del("NEIGH_TABLE:Ethernet0:10.0.0.50")
        .ignore()
        .hset_multiple(
            "NEIGH_TABLE:Ethernet0:10.9.9.9",
            &[("neigh", "02:00:00:00:09:09"), ("family", "IPv4")],
        )
        .ignore()
        .query(&mut appl)
        .unwrap();

    // The audit re-SETs the missing one and DELetes the stale one.
    wait_for_long(|| {
        let p = pending(&mut appl, "Ethernet0:10.0.0.50");
        p.in_key_set.then_some(())
    });
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.50",
        "02:00:00:00:00:50",
        "IPv4",
    );
    wait_pending_del(&mut appl, "Ethernet0:10.9.9.9");
    wait_for_long(|| metric(ns, "neighsyncd_audit_drift").filter(|v| *v == 2.0));
    assert!(metric(ns, "neighsyncd_audit_runs_total").unwrap() >= 1.0);
    assert!(metric(ns, r#"neighsyncd_resyncs_total{cause="audit"}"#).unwrap() >= 1.0);
    let popped = consume(&redis);
    assert_popped_set(&popped, "Ethernet0:10.0.0.50", "02:00:00:00:00:50", "IPv4");
    assert!(!appl
        .exists::<_, bool>("NEIGH_TABLE:Ethernet0:10.9.9.9")
        .unwrap());
}

/// Poll up to 3 audit periods (the audit runs every 3 s here).
fn wait_for_long<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE + Duration::from_secs(10),
            "timed out"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
