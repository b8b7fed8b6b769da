//! System warm reboot (docs/behavior.md c.4 with b.1 step 6b): APPL_DB keeps
//! NEIGH_TABLE, the DUT's kernel neighbor table is flushed (as a reboot
//! loses it), neighsyncd starts warm and waits for the restore flag, and the
//! real `neighsyncd restore` subcommand puts the neighbors back into the
//! kernel and probes them while the peer namespaces answer ARP/ND.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;
use redis::Commands;
use swss::consumer_state::Op;
use testbed::daemon::Daemon;
use testbed::netns::{NeighTopology, PEER_IFNAME};
use testbed::redis_server::RedisServer;

const STATE_DB: u32 = 6;
const CONFIG_DB: u32 = 4;
const WAITING: &str = "warm start: waiting for NEIGH_RESTORE_TABLE|Flags restored=true";

fn state_field(redis: &RedisServer, field: &str) -> Option<String> {
    let mut c = redis.conn(STATE_DB).unwrap();
    c.hget("WARM_RESTART_TABLE|neighsyncd", field).unwrap()
}

fn wait_state(redis: &RedisServer, want: &str) {
    wait_for(
        &format!("WARM_RESTART_TABLE|neighsyncd state {want}"),
        || (state_field(redis, "state").as_deref() == Some(want)).then_some(()),
    );
}

fn appl_keys(redis: &RedisServer) -> BTreeSet<String> {
    let mut c = redis.conn(0).unwrap();
    let keys: Vec<String> = c.keys("NEIGH_TABLE:*").unwrap();
    keys.into_iter()
        .map(|k| k["NEIGH_TABLE:".len()..].to_owned())
        .collect()
}

fn members(redis: &RedisServer, set: &str) -> BTreeSet<String> {
    let mut c = redis.conn(0).unwrap();
    c.smembers(set).unwrap()
}

/// The DUT kernel's line for `ip` on `ifname` (`ip neigh show`), or "".
fn kernel_neigh(topo: &NeighTopology, ifname: &str, ip: &str) -> String {
    topo.dut()
        .ip(&["neigh", "show", ip, "dev", ifname])
        .unwrap()
        .trim()
        .to_owned()
}

fn flush_kernel(topo: &NeighTopology) {
    topo.dut().ip(&["-4", "neigh", "flush", "all"]).unwrap();
    topo.dut().ip(&["-6", "neigh", "flush", "all"]).unwrap();
    for i in 0..topo.len() {
        let port = NeighTopology::port_name(i);
        for v6 in [false, true] {
            let ip = NeighTopology::peer_ip(i, v6).to_string();
            assert_eq!(kernel_neigh(topo, &port, &ip), "", "not flushed");
        }
    }
}

/// `neighsyncd restore` in the DUT namespace with short timers; returns its
/// log after checking it exited 0.
fn run_restore(topo: &NeighTopology, redis: &RedisServer, timeout: &str) -> String {
    let cfg = redis.db_config_path().to_str().unwrap().to_owned();
    let mut job = Daemon::start(
        Some(topo.dut()),
        Path::new(BIN),
        &[
            "--db-config",
            &cfg,
            "--log-level",
            "DEBUG",
            "restore",
            "--timeout",
            timeout,
            "--pass-interval",
            "0.5",
            "--settle",
            "0",
        ],
    )
    .unwrap();
    let status = job.wait_timeout(DEADLINE).unwrap();
    let log = job.log();
    assert!(status.success(), "restore failed ({status}):\n{log}");
    assert!(log.contains("neighsyncd restore finished"), "{log}");
    log
}

#[test]
fn system_warm_reboot_restores_the_kernel_and_reconciles() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(2).unwrap();
    let mut config = redis.conn(CONFIG_DB).unwrap();
    let () = config
        .hset("WARM_RESTART|swss", "neighsyncd_timer", 1)
        .unwrap();

    // Cold run: the peers are learned for real (ARP / ND) and consumed.
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..2 {
        topo.ping4(i).unwrap();
        topo.ping6(i).unwrap();
        let mac = topo.peer_mac(i).unwrap();
        for v6 in [false, true] {
            let key = format!(
                "{}:{}",
                NeighTopology::port_name(i),
                NeighTopology::peer_ip(i, v6)
            );
            want.insert(key, mac.clone());
        }
    }
    let all: BTreeSet<String> = want.keys().cloned().collect();
    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    wait_for("the 4 neighbors consumed into APPL_DB", || {
        consume(&redis);
        (appl_keys(&redis) == all).then_some(())
    });
    assert!(daemon.sigterm().unwrap().success());

    let mut state = redis.conn(STATE_DB).unwrap();
    let () = state
        .hset("WARM_RESTART_ENABLE_TABLE|system", "enable", "true")
        .unwrap();

    // Reboot 1: every interface comes back. The kernel table is empty.
    let _: i64 = state.del("NEIGH_RESTORE_TABLE|Flags").unwrap();
    flush_kernel(&topo);
    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(WAITING, DEADLINE).unwrap();
    assert_eq!(state_field(&redis, "state").as_deref(), Some("restored"));
    run_restore(&topo, &redis, "3");
    let flag: Option<String> = state.hget("NEIGH_RESTORE_TABLE|Flags", "restored").unwrap();
    assert_eq!(flag.as_deref(), Some("true"));
    wait_state(&redis, "reconciled");
    // Zero operations: every neighbor came back with the same MAC.
    assert!(members(&redis, "NEIGH_TABLE_KEY_SET").is_empty());
    assert_eq!(appl_keys(&redis), all);
    // The peers answered the probes: the entries are REACHABLE.
    for (key, mac) in &want {
        let (ifname, ip) = key.split_once(':').unwrap();
        wait_for(&format!("{key} REACHABLE"), || {
            let line = kernel_neigh(&topo, ifname, ip);
            (line.contains(mac.as_str()) && line.contains("REACHABLE")).then_some(())
        });
    }
    // Still zero operations after the probes were answered.
    daemon
        .wait_for_log("warm start: reconciled", DEADLINE)
        .unwrap();
    assert!(members(&redis, "NEIGH_TABLE_KEY_SET").is_empty());
    assert!(daemon.sigterm().unwrap().success());
    assert_eq!(state_field(&redis, "restore_count").as_deref(), Some("1"));

    // Reboot 2: Ethernet4's peer stays down, so its neighbors cannot be
    // restored; the restore job times out, still sets the flag, and the
    // reconcile deletes exactly those entries.
    let _: i64 = state.del("NEIGH_RESTORE_TABLE|Flags").unwrap();
    flush_kernel(&topo);
    topo.peer(1)
        .ip(&["link", "set", "dev", PEER_IFNAME, "down"])
        .unwrap();
    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(WAITING, DEADLINE).unwrap();
    let log = run_restore(&topo, &redis, "1.5");
    assert!(log.contains(r#"timed_out=["Ethernet4"]"#), "{log}");
    let flag: Option<String> = state.hget("NEIGH_RESTORE_TABLE|Flags", "restored").unwrap();
    assert_eq!(flag.as_deref(), Some("true"));
    wait_state(&redis, "reconciled");
    let down: BTreeSet<String> = all
        .iter()
        .filter(|k| k.starts_with("Ethernet4:"))
        .cloned()
        .collect();
    assert_eq!(down.len(), 2);
    assert_eq!(members(&redis, "NEIGH_TABLE_KEY_SET"), down);
    assert_eq!(members(&redis, "NEIGH_TABLE_DEL_SET"), down);
    let popped = consume(&redis);
    assert_eq!(popped.keys().cloned().collect::<BTreeSet<_>>(), down);
    for ops in popped.values() {
        assert_eq!(ops.last().unwrap().op, Op::Del, "{ops:?}");
    }
    let up: BTreeSet<String> = all.difference(&down).cloned().collect();
    assert_eq!(appl_keys(&redis), up);
    assert!(daemon.sigterm().unwrap().success());
    assert_eq!(state_field(&redis, "restore_count").as_deref(), Some("2"));
}
