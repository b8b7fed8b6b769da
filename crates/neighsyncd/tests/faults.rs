//! Fault tests: netlink overrun with a deliberately small receive buffer,
//! SIGKILL then cold restart. Afterwards APPL_DB (as the consumer sees it)
//! equals the kernel.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use redis::Commands;
use testbed::netns::NeighTopology;
use testbed::redis_server::RedisServer;

/// Pop everything, then the consumed `NEIGH_TABLE:*` keys (without prefix).
fn consumed_keys(redis: &RedisServer) -> BTreeSet<String> {
    consume(redis);
    let mut conn = redis.conn(0).unwrap();
    let keys: Vec<String> = conn.keys("NEIGH_TABLE:*").unwrap();
    keys.into_iter()
        .map(|k| k["NEIGH_TABLE:".len()..].to_owned())
        .collect()
}

fn ip_batch(topo: &NeighTopology, lines: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    topo.dut().ip(&["-batch", path.to_str().unwrap()]).unwrap();
}

fn neigh_lines(verb: &str, n: usize) -> (Vec<String>, BTreeSet<String>) {
    let mut lines = Vec::new();
    let mut keys = BTreeSet::new();
    for i in 0..n {
        let ip = format!("10.1.{}.{}", i / 250, i % 250 + 1);
        lines.push(format!(
            "neigh {verb} {ip} lladdr 02:00:00:00:{:02x}:{:02x} dev Ethernet0 nud permanent",
            i / 256,
            i % 256
        ));
        keys.insert(format!("Ethernet0:{ip}"));
    }
    (lines, keys)
}

#[test]
fn burst_larger_than_a_small_receive_buffer_converges() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let mut daemon = start_daemon(topo.dut(), &redis, &["--netlink-rcvbuf", "4096"]);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    let (adds, keys) = neigh_lines("add", 3000);
    ip_batch(&topo, &adds);
    wait_for("all 3000 neighbors in APPL_DB", || {
        (consumed_keys(&redis) == keys).then_some(())
    });
    // The burst really overflowed the socket and the resync repaired it.
    let log = daemon.log();
    assert!(log.contains("ENOBUFS"), "no overrun happened:\n{log}");
    assert!(log.contains("resynced with the kernel"), "{log}");
    let (dels, _) = neigh_lines("del", 3000);
    ip_batch(&topo, &dels);
    wait_for("APPL_DB empty again", || {
        consumed_keys(&redis).is_empty().then_some(())
    });
    assert!(daemon.is_running());
}

#[test]
fn sigkill_then_cold_restart_matches_the_kernel() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let add = |ip: &str, mac: &str| {
        topo.dut()
            .ip(&[
                "neigh",
                "add",
                ip,
                "lladdr",
                mac,
                "dev",
                "Ethernet0",
                "nud",
                "permanent",
            ])
            .unwrap();
    };
    add("10.0.0.10", "02:00:00:00:00:10");
    add("10.0.0.11", "02:00:00:00:00:11");
    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    let both: BTreeSet<String> = ["Ethernet0:10.0.0.10", "Ethernet0:10.0.0.11"]
        .into_iter()
        .map(String::from)
        .collect();
    wait_for("both written", || {
        (consumed_keys(&redis) == both).then_some(())
    });
    daemon.sigkill().unwrap();

    // While neighsyncd is down: one neighbour goes, one comes, one changes MAC.
    topo.dut()
        .ip(&["neigh", "del", "10.0.0.10", "dev", "Ethernet0"])
        .unwrap();
    add("10.0.0.12", "02:00:00:00:00:12");
    topo.dut()
        .ip(&[
            "neigh",
            "replace",
            "10.0.0.11",
            "lladdr",
            "02:00:00:00:01:11",
            "dev",
            "Ethernet0",
            "nud",
            "permanent",
        ])
        .unwrap();

    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    let want: BTreeSet<String> = ["Ethernet0:10.0.0.11", "Ethernet0:10.0.0.12"]
        .into_iter()
        .map(String::from)
        .collect();
    wait_for("APPL_DB equals the kernel", || {
        (consumed_keys(&redis) == want).then_some(())
    });
    let mut conn = redis.conn(0).unwrap();
    let mac: String = conn
        .hget("NEIGH_TABLE:Ethernet0:10.0.0.11", "neigh")
        .unwrap();
    assert_eq!(mac, "02:00:00:00:01:11");
}
