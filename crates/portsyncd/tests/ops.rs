//! portsyncd operated as a SONiC daemon (issue 6): /metrics and /healthz
//! over HTTP and systemd READY=1 / WATCHDOG=1 / STOPPING=1 on a
//! NOTIFY_SOCKET the test owns, plus the periodic self-audit restoring a
//! STATE_DB entry changed behind the daemon's back. Real binary in a
//! namespace, real veth links, real redis-server.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::net::UnixDatagram;

use common::*;
use redis::Commands;
use testbed::daemon::Daemon;
use testbed::netns::NetNs;

const METRICS_ADDR: &str = "127.0.0.1:9102";

fn http_get(ns: &NetNs, path: &str) -> Option<(u16, String)> {
    testbed::netns::http_get(ns, METRICS_ADDR, path)
}

fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    testbed::netns::metrics_sample(metrics, name_and_labels)
}

fn metric(ns: &NetNs, name_and_labels: &str) -> Option<f64> {
    sample(&http_get(ns, "/metrics")?.1, name_and_labels)
}

fn wait_some<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn recv_line(sock: &UnixDatagram, want: &str) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {want} on NOTIFY_SOCKET: {e}"));
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.lines().any(|l| l == want) {
            return msg;
        }
    }
}

#[test]
fn metrics_health_notify_and_audit() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0"), ("admin_status", "up")]);
    bed.config_port("Ethernet4", &[("lanes", "4"), ("admin_status", "up")]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&path).unwrap();
    notify.set_read_timeout(Some(DEADLINE)).unwrap();
    let cfg = bed.redis.db_config_path().to_str().unwrap().to_owned();
    let d = Daemon::start_with_env(
        Some(&bed.dut),
        env!("CARGO_BIN_EXE_portsyncd").as_ref(),
        &[
            "--db-config",
            &cfg,
            "--log-level",
            "DEBUG",
            "--metrics-addr",
            METRICS_ADDR,
            "--audit-interval",
            "2",
        ],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    )
    .unwrap();
    bed.daemon = Some(d);

    let ready = recv_line(&notify, "READY=1");
    assert!(ready.contains("STATUS=synced"), "{ready}");
    recv_line(&notify, "WATCHDOG=1");
    let ns = &bed.dut;
    let (status, body) = wait_some("/healthz", || http_get(ns, "/healthz"));
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));

    // Nothing consumed yet: both ports hold back PortInitDone; a port link
    // seen now is filtered (not in APPL_DB yet).
    bed.add_link("Ethernet0");
    let filtered = r#"portsyncd_kernel_events_total{type="RTM_NEWLINK",outcome="filtered",reason="not_in_appl_db"}"#;
    wait_some("filtered link event", || {
        metric(ns, filtered).filter(|v| *v >= 1.0)
    });
    let (_, m) = http_get(ns, "/metrics").unwrap();
    assert_eq!(sample(&m, "portsyncd_port_init_done"), Some(0.0));
    assert_eq!(sample(&m, "portsyncd_ports_pending"), Some(2.0));
    assert_eq!(
        sample(
            &m,
            r#"portsyncd_redis_operations_total{table="PORT_TABLE",op="set"}"#
        ),
        Some(3.0),
        "two ports and PortConfigDone"
    );

    // orchagent consumes; the links appear: STATE_DB entries, PortInitDone.
    let mut orch = bed.orchagent();
    orch.drain();
    bed.wait_state("Ethernet0", &[("state", "ok")]);
    bed.add_link("Ethernet4");
    bed.wait_state("Ethernet4", &[("state", "ok")]);
    wait_some("port_init_done", || {
        metric(ns, "portsyncd_port_init_done").filter(|v| *v == 1.0)
    });
    wait_some("entries", || {
        metric(ns, "portsyncd_entries").filter(|v| *v == 2.0)
    });
    assert_eq!(metric(ns, "portsyncd_ports_pending"), Some(0.0));
    assert!(
        metric(
            ns,
            r#"portsyncd_redis_operations_total{table="STATE_PORT_TABLE",op="set"}"#
        )
        .unwrap()
            >= 2.0
    );

    // Behind the daemon's back: a field of ours changed. The audit puts it
    // back and reports the drift.
    let mut state = bed.db(STATE_DB);
    let () = state.hset("PORT_TABLE|Ethernet0", "mtu", "1234").unwrap();
    wait_some("audit repair", || {
        let mtu: Option<String> = state.hget("PORT_TABLE|Ethernet0", "mtu").unwrap();
        (mtu.as_deref() != Some("1234")).then_some(())
    });
    let mtu: String = state.hget("PORT_TABLE|Ethernet0", "mtu").unwrap();
    assert_eq!(mtu, "1500");
    wait_some("audit drift", || {
        metric(ns, "portsyncd_audit_drift").filter(|v| *v == 1.0)
    });
    assert!(metric(ns, "portsyncd_audit_runs_total").unwrap() >= 1.0);

    bed.stop();
    recv_line(&notify, "STOPPING=1");
}
