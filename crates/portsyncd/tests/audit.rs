//! `portsyncd audit` against a real redis-server and the real kernel in a
//! namespace: the daemon syncs STATE_DB, then STATE_DB is changed behind its
//! back (one entry deleted, a stale one added, one value changed); the
//! audit reports exactly those with exit status 1, 0 when consistent, 2 on
//! a broken config.

mod common;

use std::process::{Command, Output};

use common::{Bed, STATE_DB};
use redis::Commands;

const BIN: &str = env!("CARGO_BIN_EXE_portsyncd");

fn audit(bed: &Bed, cfg: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "netns",
        "exec",
        bed.dut.name(),
        BIN,
        "--db-config",
        cfg,
        "audit",
    ];
    args.extend_from_slice(extra);
    Command::new("ip")
        .args(&args)
        .output()
        .expect("ip netns exec")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit output is not JSON ({e}): stdout {:?} stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|e| e["key"].as_str().expect("key").to_owned())
        .collect()
}

#[test]
fn audit_reports_missing_stale_and_different_ports() {
    let mut bed = Bed::new();
    for p in ["Ethernet0", "Ethernet4", "Ethernet8"] {
        bed.config_port(p, &[("lanes", "0")]);
    }
    bed.start(&[]);
    let mut orch = bed.orchagent();
    bed.add_link("Ethernet0");
    bed.add_link("Ethernet4");
    orch.drain();
    bed.wait_state("Ethernet0", &[("state", "ok"), ("mtu", "1500")]);
    bed.wait_state("Ethernet4", &[("state", "ok"), ("mtu", "1500")]);
    bed.stop();
    let cfg = bed
        .redis
        .db_config_path()
        .to_str()
        .expect("utf-8")
        .to_string();

    // Ethernet8 is configured but has no netdev: not drift.
    let out = audit(&bed, &cfg, &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "portsyncd audit of STATE_DB PORT_TABLE: consistent (missing 0, stale 0, different 0); expected 2, present 2"
        ),
        "{text}"
    );

    let mut state = bed.db(STATE_DB);
    let _: () = state.del("PORT_TABLE|Ethernet0").expect("DEL");
    let _: () = state
        .hset_multiple(
            "PORT_TABLE|Ethernet12",
            &[
                ("state", "ok"),
                ("netdev_oper_status", "up"),
                ("admin_status", "up"),
                ("mtu", "9100"),
            ],
        )
        .expect("HSET");
    let _: () = state
        .hset("PORT_TABLE|Ethernet4", "mtu", "9100")
        .expect("HSET");
    // Fields of other daemons are not portsyncd's business.
    let _: () = state
        .hset("PORT_TABLE|Ethernet8", "host_tx_ready", "false")
        .expect("HSET");

    let out = audit(&bed, &cfg, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["consistent"], false);
    assert_eq!(keys(&report["missing"]), vec!["Ethernet0"]);
    assert_eq!(report["missing"][0]["expected"]["admin_status"], "up");
    assert_eq!(keys(&report["stale"]), vec!["Ethernet12"]);
    assert_eq!(keys(&report["different"]), vec!["Ethernet4"]);
    assert_eq!(report["different"][0]["expected"]["mtu"], "1500");
    assert_eq!(report["different"][0]["actual"]["mtu"], "9100");
    assert_eq!(report["drift_count"], 3);

    // The kernel changes: Ethernet4 now really has mtu 9100.
    bed.dut_ip(&["link", "set", "dev", "Ethernet4", "mtu", "9100"]);
    let report = json(&audit(&bed, &cfg, &["--json"]));
    assert!(keys(&report["different"]).is_empty(), "{report}");
    assert_eq!(report["drift_count"], 2);
}

#[test]
fn audit_exits_2_on_broken_config() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("database_config.json");
    std::fs::write(&broken, "{\"INSTANCES\": ").expect("write");
    let out = audit(&bed, broken.to_str().expect("utf-8"), &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_config.json"));
    assert!(json(&out)["error"].is_string());
}
