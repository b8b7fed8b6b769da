//! `neighsyncd audit` against a real redis-server and the real kernel in a
//! namespace: the daemon syncs, then APPL_DB is changed behind its back
//! (one entry deleted, one stale entry added); the audit reports exactly
//! those with exit status 1, 0 when consistent, 2 on a broken config or
//! an unreachable Redis.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::{consume, wait_pending_set, Env, BIN};
use redis::Commands;
use testbed::netns::{NeighTopology, NetNs};

/// Runs `neighsyncd --db-config <cfg> audit [extra]` inside `ns`.
fn audit(ns: &NetNs, cfg: &str, extra: &[&str]) -> Output {
    let mut args = vec!["netns", "exec", ns.name(), BIN, "--db-config", cfg, "audit"];
    args.extend_from_slice(extra);
    Command::new("ip").args(&args).output().unwrap()
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
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn audit_reports_missing_and_stale_entries_with_exit_codes() {
    let mut env = Env::new(2, |_, _| {});
    let mut appl = env.appl();
    let macs = [env.topo.peer_mac(0).unwrap(), env.topo.peer_mac(1).unwrap()];
    env.topo.ping4(0).unwrap();
    env.topo.ping6(1).unwrap();
    let k0 = format!(
        "{}:{}",
        NeighTopology::port_name(0),
        NeighTopology::peer_ip4(0)
    );
    let k1 = format!(
        "{}:{}",
        NeighTopology::port_name(1),
        NeighTopology::peer_ip6(1)
    );
    wait_pending_set(&mut appl, &k0, &macs[0], "IPv4");
    wait_pending_set(&mut appl, &k1, &macs[1], "IPv6");
    // orchagent consumes; then the daemon is stopped so nothing repairs.
    consume(&env.redis);
    let status = env.daemon.sigterm().unwrap();
    assert_eq!(status.code(), Some(0));
    let cfg = env.redis.db_config_path().to_str().unwrap().to_owned();
    let dut = env.topo.dut();

    // Consistent: exit 0, text summary.
    let out = audit(dut, &cfg, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(": consistent (missing 0, stale 0, different 0)"),
        "{text}"
    );
    let report = json(&audit(dut, &cfg, &["--json"]));
    assert_eq!(report["consistent"], true);
    assert!(report["expected"].as_u64().unwrap() >= 2, "{report}");

    // Behind the daemon's back: one entry deleted, one stale one added,
    // and one with another MAC.
    let stale = format!("{}:10.99.99.99", NeighTopology::port_name(0));
    let _: () = appl.del(format!("NEIGH_TABLE:{k0}")).unwrap();
    let _: () = appl
        .hset_multiple(
            format!("NEIGH_TABLE:{stale}"),
            &[("neigh", "02:00:00:00:99:99"), ("family", "IPv4")],
        )
        .unwrap();
    let _: () = appl
        .hset(format!("NEIGH_TABLE:{k1}"), "neigh", "02:00:00:00:11:11")
        .unwrap();

    let out = audit(dut, &cfg, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["consistent"], false);
    assert_eq!(keys(&report["missing"]), vec![k0.clone()]);
    assert_eq!(report["missing"][0]["expected"]["neigh"], macs[0].as_str());
    assert_eq!(keys(&report["stale"]), vec![stale.clone()]);
    assert_eq!(report["stale"][0]["actual"]["neigh"], "02:00:00:00:99:99");
    assert_eq!(keys(&report["different"]), vec![k1.clone()]);
    assert_eq!(
        report["different"][0]["expected"]["neigh"],
        macs[1].as_str()
    );
    assert_eq!(
        report["different"][0]["actual"]["neigh"],
        "02:00:00:00:11:11"
    );
    assert_eq!(report["drift_count"], 3);

    let out = audit(dut, &cfg, &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("missing   {k0} expected neigh={}", macs[0])),
        "{text}"
    );
    assert!(
        text.contains(&format!("stale     {stale} actual")),
        "{text}"
    );
    assert!(
        text.contains("drift 3 (missing 1, stale 1, different 1)"),
        "{text}"
    );

    // A pending SET (not consumed yet) counts as present: write what the
    // producer would and the audit is consistent again.
    let _: () = appl.del(format!("NEIGH_TABLE:{stale}")).unwrap();
    let _: () = appl
        .hset(format!("NEIGH_TABLE:{k1}"), "neigh", macs[1].as_str())
        .unwrap();
    let _: () = appl
        .hset_multiple(
            format!("_NEIGH_TABLE:{k0}"),
            &[("neigh", macs[0].as_str()), ("family", "IPv4")],
        )
        .unwrap();
    let _: () = appl.sadd("NEIGH_TABLE_KEY_SET", &k0).unwrap();
    let out = audit(dut, &cfg, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", json(&out));
}

#[test]
fn audit_exits_2_on_broken_config_or_unreachable_redis() {
    let ns = NetNs::new("aud").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("database_config.json");
    std::fs::write(&broken, "{ not json").unwrap();
    let out = audit(&ns, broken.to_str().unwrap(), &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database_config.json"), "{err}");
    assert!(json(&out)["error"].is_string());

    let missing = dir.path().join("absent.json");
    let out = audit(&ns, missing.to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(2));

    // A valid config whose Redis socket does not exist.
    let gone = dir.path().join("gone.sock");
    let cfg = serde_json::json!({
        "INSTANCES": {"redis": {"hostname": "127.0.0.1", "port": 1, "unix_socket_path": gone}},
        "DATABASES": {
            "APPL_DB": {"id": 0, "separator": ":", "instance": "redis"},
            "CONFIG_DB": {"id": 4, "separator": "|", "instance": "redis"},
            "STATE_DB": {"id": 6, "separator": "|", "instance": "redis"}
        },
        "VERSION": "1.0"
    });
    let path = dir.path().join("unreachable.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    let out = audit(&ns, path.to_str().unwrap(), &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("connecting to CONFIG_DB"));
}
