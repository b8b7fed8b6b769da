//! neighsyncd is never stopped by one bad key: keys of the wrong type in
//! every table it reads, present before start or created while it runs,
//! are logged with their database and key, counted in
//! `neighsyncd_bad_db_entries_total`, skipped, and everything else is
//! synced. Real binary in a namespace, real kernel, real redis-server.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;
use redis::Commands;
use testbed::daemon::Daemon;
use testbed::netns::{http_get, metrics_sample, NeighTopology};
use testbed::redis_server::RedisServer;

const METRICS_ADDR: &str = "127.0.0.1:9101";

/// Keys of the wrong type (strings) that neighsyncd reads, per DB id:
/// CONFIG_DB 4, STATE_DB 6, APPL_DB 0.
const BAD_KEYS: [(u32, &str); 13] = [
    (4, "INTERFACE|Ethernet0"),
    (4, "VLAN_INTERFACE|Vlan1000"),
    (4, "PORTCHANNEL_INTERFACE|PortChannel0001"),
    (4, "PEER_SWITCH|peer"),
    (4, "VXLAN_EVPN_NVO|nvo"),
    (4, "LOGGER|neighsyncd"),
    (4, "WARM_RESTART|swss"),
    (6, "WARM_RESTART_ENABLE_TABLE|system"),
    (6, "WARM_RESTART_ENABLE_TABLE|swss"),
    (6, "WARM_RESTART_TABLE|neighsyncd"),
    (6, "NEIGH_RESTORE_TABLE|Flags"),
    (0, "NEIGH_TABLE:Ethernet0:10.9.9.9"),
    (0, "_NEIGH_TABLE:Ethernet0:10.9.9.8"),
];

fn bad_count(metrics: &str, db: &str, table: &str) -> f64 {
    metrics_sample(
        metrics,
        &format!(r#"neighsyncd_bad_db_entries_total{{db="{db}",table="{table}"}}"#),
    )
    .unwrap_or(0.0)
}

#[test]
fn wrong_type_keys_at_start_are_reported_and_everything_else_syncs() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    for (db, key) in BAD_KEYS {
        let () = redis.conn(db).unwrap().set(key, "x").unwrap();
    }
    // The pending key whose state hash is a string is in KEY_SET.
    let mut appl = redis.conn(0).unwrap();
    let () = appl
        .sadd("NEIGH_TABLE_KEY_SET", "Ethernet0:10.9.9.8")
        .unwrap();
    topo.dut()
        .neigh_add("Ethernet0", "10.0.0.7", "02:00:00:00:00:07")
        .unwrap();

    let cfg = redis.db_config_path().to_str().unwrap().to_owned();
    let args = [
        "--db-config",
        cfg.as_str(),
        "--metrics-addr",
        METRICS_ADDR,
        "--log-level",
        "INFO",
    ];
    let mut daemon = Daemon::start(Some(topo.dut()), Path::new(BIN), &args).unwrap();
    daemon
        .wait_for_log(READY, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\n{}", daemon.log()));
    wait_pending_set(&mut appl, "Ethernet0:10.0.0.7", "02:00:00:00:00:07", "IPv4");

    // Live: one more bad key, then a neighbour: still synced.
    let () = redis
        .conn(4)
        .unwrap()
        .set("INTERFACE|Ethernet0|10.0.0.1/24", "x")
        .unwrap();
    topo.dut()
        .neigh_add("Ethernet0", "10.0.0.8", "02:00:00:00:00:08")
        .unwrap();
    wait_pending_set(&mut appl, "Ethernet0:10.0.0.8", "02:00:00:00:00:08", "IPv4");
    assert!(daemon.is_running(), "{}", daemon.log());

    let log = daemon.log();
    for key in [
        "INTERFACE|Ethernet0",
        "PEER_SWITCH|peer",
        "WARM_RESTART_ENABLE_TABLE|swss",
        "NEIGH_TABLE:Ethernet0:10.9.9.9",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("unusable database entry") && l.contains(key)),
            "no report naming {key}:\n{log}"
        );
    }
    let metrics = wait_for("bad-entry metrics", || {
        let (_, body) = http_get(topo.dut(), METRICS_ADDR, "/metrics")?;
        (bad_count(&body, "CONFIG_DB", "INTERFACE") >= 2.0).then_some(body)
    });
    for (db, table) in [
        ("CONFIG_DB", "PEER_SWITCH"),
        ("CONFIG_DB", "VXLAN_EVPN_NVO"),
        ("CONFIG_DB", "VLAN_INTERFACE"),
        ("CONFIG_DB", "PORTCHANNEL_INTERFACE"),
        ("CONFIG_DB", "LOGGER"),
        ("STATE_DB", "WARM_RESTART_ENABLE_TABLE"),
        ("STATE_DB", "WARM_RESTART_TABLE"),
        ("APPL_DB", "NEIGH_TABLE"),
        ("APPL_DB", "_NEIGH_TABLE"),
    ] {
        assert!(
            bad_count(&metrics, db, table) >= 1.0,
            "{db} {table} not counted:\n{metrics}"
        );
    }
    // The bad keys were left as they were.
    let s: String = redis.conn(4).unwrap().get("INTERFACE|Ethernet0").unwrap();
    assert_eq!(s, "x");
    let st = daemon.sigterm().unwrap();
    assert!(st.success(), "{st:?}\n{}", daemon.log());
}
