//! Docker-level warm restart of neighsyncd (docs/behavior.md b.1 step 6b, c):
//! the real binary in a DUT namespace whose kernel keeps its neighbors
//! across the restart, a real redis-server, and a ConsumerStateTable popping
//! as orchagent does.
//!
//! Each cycle: stop neighsyncd, change the kernel (or not), delete
//! `NEIGH_RESTORE_TABLE|Flags`, start neighsyncd (WarmStart enabled through
//! `WARM_RESTART_ENABLE_TABLE|swss`), check nothing is written while it
//! waits, set the flag, wait for `WARM_RESTART_TABLE|neighsyncd state
//! reconciled`, and check exactly the difference was written.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use common::*;
use redis::Commands;
use swss::consumer_state::Op;
use testbed::daemon::Daemon;
use testbed::netns::{NeighTopology, NetNs};
use testbed::redis_server::RedisServer;

const STATE_DB: u32 = 6;
const CONFIG_DB: u32 = 4;
/// Logged once the restore-flag subscription is in place.
const WAITING: &str = "warm start: waiting for NEIGH_RESTORE_TABLE|Flags restored=true";
/// Logged when the flag is seen and the reconcile timer starts.
const TIMER_STARTED: &str = "reconcile timer started";

// ===== helpers =====

/// `(ifname, ip, mac)` of the 8 neighbors: on Ethernet0 and Ethernet4,
/// two IPv4 and two IPv6 each.
fn eight_neighbors() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for i in 0..2usize {
        let ifname = NeighTopology::port_name(i);
        for (j, host) in [10, 11].into_iter().enumerate() {
            out.push((
                ifname.clone(),
                format!("10.0.{i}.{host}"),
                format!("02:00:00:00:0{i}:{:02x}", host),
            ));
            out.push((
                ifname.clone(),
                format!("fc00:{i:x}::{host}")
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .to_string(),
                format!("02:00:00:00:1{i}:{:02x}", host + j),
            ));
        }
    }
    out
}

fn neigh_add(ns: &NetNs, ifname: &str, ip: &str, mac: &str) {
    ns.neigh_replace(ifname, ip, mac).unwrap();
}

fn neigh_del(ns: &NetNs, ifname: &str, ip: &str) {
    ns.ip(&["neigh", "del", ip, "dev", ifname]).unwrap();
}

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

fn members(redis: &RedisServer, set: &str) -> BTreeSet<String> {
    let mut c = redis.conn(0).unwrap();
    c.smembers(set).unwrap()
}

fn set_of(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Messages on `NEIGH_TABLE_CHANNEL@0`, read by a thread subscribed before
/// the daemon starts.
struct Published {
    rx: Receiver<String>,
}

static MARKER: AtomicU32 = AtomicU32::new(0);

impl Published {
    fn subscribe(redis: &RedisServer) -> Published {
        let mut conn = redis.conn(0).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            conn.set_read_timeout(Some(Duration::from_secs(120)))
                .unwrap();
            let mut ps = conn.as_pubsub();
            ps.subscribe("NEIGH_TABLE_CHANNEL@0").unwrap();
            let _ = ready_tx.send(());
            while let Ok(msg) = ps.get_message() {
                if tx.send(msg.get_payload().unwrap_or_default()).is_err() {
                    return;
                }
            }
        });
        ready_rx.recv_timeout(DEADLINE).expect("SUBSCRIBE");
        Published { rx }
    }

    /// How many `G` notifications were published so far: publish a marker
    /// and count what arrives before it (Redis keeps the order).
    fn notifications_so_far(&self, redis: &RedisServer) -> usize {
        let marker = format!("marker-{}", MARKER.fetch_add(1, Ordering::SeqCst));
        let mut c = redis.conn(0).unwrap();
        let _: i64 = c.publish("NEIGH_TABLE_CHANNEL@0", &marker).unwrap();
        let mut n = 0;
        loop {
            let msg = self.rx.recv_timeout(DEADLINE).expect("marker not received");
            if msg == marker {
                return n;
            }
            if msg == "G" {
                n += 1;
            }
        }
    }
}

/// A DUT with 2 ports and the 8 neighbors, neighsyncd run cold once so
/// APPL_DB holds them (popped by a consumer), then stopped, with warm
/// restart enabled for the swss docker and the reconcile timer configured.
struct Setup {
    redis: RedisServer,
    topo: NeighTopology,
    /// What APPL_DB should hold: key -> MAC.
    model: BTreeMap<String, String>,
}

impl Setup {
    fn new(timer_secs: u32) -> Setup {
        let redis = RedisServer::start().unwrap();
        let topo = NeighTopology::new(2).unwrap();
        let mut model = BTreeMap::new();
        for (ifname, ip, mac) in eight_neighbors() {
            neigh_add(topo.dut(), &ifname, &ip, &mac);
            model.insert(format!("{ifname}:{ip}"), mac);
        }
        let mut config = redis.conn(CONFIG_DB).unwrap();
        let () = config
            .hset("WARM_RESTART|swss", "neighsyncd_timer", timer_secs)
            .unwrap();

        let mut daemon = start_daemon(topo.dut(), &redis, &[]);
        daemon.wait_for_log(READY, DEADLINE).unwrap();
        let setup = Setup { redis, topo, model };
        wait_for("the 8 neighbors consumed into APPL_DB", || {
            consume(&setup.redis);
            (appl_table(&setup.redis) == model_table(&setup.model)).then_some(())
        });
        assert!(daemon.sigterm().unwrap().success());
        // The cold start wrote restore_count 0 (needed for a warm start).
        assert_eq!(
            state_field(&setup.redis, "restore_count").as_deref(),
            Some("0")
        );
        assert_eq!(state_field(&setup.redis, "state"), None);
        let mut state = setup.redis.conn(STATE_DB).unwrap();
        let () = state
            .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
            .unwrap();
        setup
    }

    fn dut(&self) -> &NetNs {
        self.topo.dut()
    }

    fn set_flag(&self) {
        let mut state = self.redis.conn(STATE_DB).unwrap();
        let () = state
            .hset("NEIGH_RESTORE_TABLE|Flags", "restored", "true")
            .unwrap();
    }

    /// One warm restart: delete the flag (or set it before starting when
    /// `flag_first`), start neighsyncd, run `while_waiting` while it waits
    /// for the flag, check nothing was written, set the flag, wait for
    /// `reconciled`. Returns the daemon (running), KEY_SET, DEL_SET, the
    /// number of `G` published, and what a consumer then pops.
    fn warm_cycle(&self, flag_first: bool, while_waiting: impl FnOnce(&mut Daemon)) -> Cycle {
        let count_before: u64 = state_field(&self.redis, "restore_count")
            .unwrap()
            .parse()
            .unwrap();
        let mut state = self.redis.conn(STATE_DB).unwrap();
        let _: i64 = state.del("NEIGH_RESTORE_TABLE|Flags").unwrap();
        if flag_first {
            self.set_flag();
        }
        let published = Published::subscribe(&self.redis);
        let mut daemon = start_daemon(self.dut(), &self.redis, &[]);
        daemon.wait_for_log(WAITING, DEADLINE).unwrap();
        assert_eq!(
            state_field(&self.redis, "restore_count"),
            Some((count_before + 1).to_string())
        );
        if !flag_first {
            while_waiting(&mut daemon);
            // Dump done and cached, nothing written while waiting.
            daemon
                .wait_for_log("warm start: kernel dump cached", DEADLINE)
                .unwrap();
            assert_eq!(
                state_field(&self.redis, "state").as_deref(),
                Some("restored")
            );
            assert!(members(&self.redis, "NEIGH_TABLE_KEY_SET").is_empty());
            self.set_flag();
        }
        wait_state(&self.redis, "reconciled");
        let key_set = members(&self.redis, "NEIGH_TABLE_KEY_SET");
        let del_set = members(&self.redis, "NEIGH_TABLE_DEL_SET");
        let notifications = published.notifications_so_far(&self.redis);
        let popped = consume(&self.redis);
        Cycle {
            daemon,
            key_set,
            del_set,
            notifications,
            popped,
        }
    }

    fn assert_appl_matches_model(&self) {
        assert_eq!(appl_table(&self.redis), model_table(&self.model));
    }
}

struct Cycle {
    daemon: Daemon,
    key_set: BTreeSet<String>,
    del_set: BTreeSet<String>,
    notifications: usize,
    popped: BTreeMap<String, Vec<swss::KeyOpFieldValues>>,
}

impl Cycle {
    fn stop(mut self) {
        assert!(self.daemon.sigterm().unwrap().success());
    }
}

// ===== tests =====

#[test]
fn warm_restart_cycles_write_exactly_the_difference() {
    let mut s = Setup::new(1);

    // (1) No kernel change while down: zero operations.
    let c = s.warm_cycle(false, |_| {});
    assert!(c.key_set.is_empty(), "{:?}", c.key_set);
    assert_eq!(c.notifications, 0);
    assert!(c.popped.is_empty(), "{:?}", c.popped);
    s.assert_appl_matches_model();
    // The writer took over with APPL_DB's content: a same-MAC refresh
    // costs nothing, a new neighbor is written at once.
    s.dut()
        .ip(&[
            "neigh",
            "replace",
            "10.0.0.10",
            "lladdr",
            &s.model["Ethernet0:10.0.0.10"],
            "dev",
            "Ethernet0",
            "nud",
            "reachable",
        ])
        .unwrap();
    neigh_add(s.dut(), "Ethernet0", "10.0.0.50", "02:00:00:00:00:50");
    let mut appl = s.redis.conn(0).unwrap();
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.50",
        "02:00:00:00:00:50",
        "IPv4",
    );
    assert_eq!(
        members(&s.redis, "NEIGH_TABLE_KEY_SET"),
        set_of(&["Ethernet0:10.0.0.50"])
    );
    consume(&s.redis);
    s.model
        .insert("Ethernet0:10.0.0.50".into(), "02:00:00:00:00:50".into());
    s.assert_appl_matches_model();
    c.stop();

    // (2) Neighbors deleted while down: exactly those DELs.
    neigh_del(s.dut(), "Ethernet0", "10.0.0.11");
    neigh_del(s.dut(), "Ethernet4", "fc00:1::11");
    let gone = set_of(&["Ethernet0:10.0.0.11", "Ethernet4:fc00:1::11"]);
    let c = s.warm_cycle(false, |_| {});
    assert_eq!(c.key_set, gone);
    assert_eq!(c.del_set, gone);
    assert!(c.notifications >= 1);
    assert_eq!(c.popped.keys().cloned().collect::<BTreeSet<_>>(), gone);
    for ops in c.popped.values() {
        assert_eq!(ops.last().unwrap().op, Op::Del, "{ops:?}");
    }
    for k in &gone {
        s.model.remove(k);
    }
    s.assert_appl_matches_model();
    c.stop();

    // (3) Re-added while down: exactly those SETs. The flag is already set
    // when neighsyncd starts (a stale `true`): it proceeds at once.
    let readd = [
        ("Ethernet0", "10.0.0.11", "02:00:00:00:00:0b"),
        ("Ethernet4", "fc00:1::11", "02:00:00:00:11:0c"),
    ];
    for (ifname, ip, mac) in readd {
        neigh_add(s.dut(), ifname, ip, mac);
    }
    let c = s.warm_cycle(true, |_| {});
    assert_eq!(c.key_set, gone);
    assert!(c.del_set.is_empty(), "{:?}", c.del_set);
    assert_eq!(c.popped.keys().cloned().collect::<BTreeSet<_>>(), gone);
    for (ifname, ip, mac) in readd {
        assert_popped_set(&c.popped, &format!("{ifname}:{ip}"), mac, family(ip));
        s.model.insert(format!("{ifname}:{ip}"), mac.to_owned());
    }
    s.assert_appl_matches_model();
    c.stop();

    // (5) A neighbor added (and one deleted) while neighsyncd waits for the
    // flag: seen at once (netlink joined before the wait), written only
    // after the reconcile.
    let c = s.warm_cycle(false, |d| {
        neigh_add(s.dut(), "Ethernet4", "10.0.1.60", "02:00:00:00:01:60");
        neigh_del(s.dut(), "Ethernet4", "10.0.1.10");
        d.wait_for_log(
            "warm start: operation cached key=Ethernet4:10.0.1.60",
            DEADLINE,
        )
        .unwrap();
        d.wait_for_log(
            "warm start: operation cached key=Ethernet4:10.0.1.10",
            DEADLINE,
        )
        .unwrap();
    });
    assert_eq!(
        c.key_set,
        set_of(&["Ethernet4:10.0.1.60", "Ethernet4:10.0.1.10"])
    );
    assert_eq!(c.del_set, set_of(&["Ethernet4:10.0.1.10"]));
    assert_popped_set(
        &c.popped,
        "Ethernet4:10.0.1.60",
        "02:00:00:00:01:60",
        "IPv4",
    );
    assert_eq!(c.popped["Ethernet4:10.0.1.10"].last().unwrap().op, Op::Del);
    s.model
        .insert("Ethernet4:10.0.1.60".into(), "02:00:00:00:01:60".into());
    s.model.remove("Ethernet4:10.0.1.10");
    s.assert_appl_matches_model();
    c.stop();
}

#[test]
fn changed_macs_and_deletes_wait_for_the_configured_timer() {
    let mut s = Setup::new(3);
    // (4) While down: two MACs change, two neighbors go.
    let changed = [
        ("Ethernet0", "10.0.0.10", "02:00:00:00:aa:10"),
        ("Ethernet0", "fc00::10", "02:00:00:00:aa:11"),
    ];
    let removed = [("Ethernet4", "10.0.1.11"), ("Ethernet4", "fc00:1::11")];
    for (ifname, ip, mac) in changed {
        neigh_add(s.dut(), ifname, ip, mac);
    }
    for (ifname, ip) in removed {
        neigh_del(s.dut(), ifname, ip);
    }
    let mut state = s.redis.conn(STATE_DB).unwrap();
    let _: i64 = state.del("NEIGH_RESTORE_TABLE|Flags").unwrap();
    let published = Published::subscribe(&s.redis);
    let mut daemon = start_daemon(s.dut(), &s.redis, &[]);
    daemon.wait_for_log(WAITING, DEADLINE).unwrap();
    s.set_flag();
    daemon.wait_for_log(TIMER_STARTED, DEADLINE).unwrap();
    // The timer (3 s) runs: state restored, nothing written yet.
    assert_eq!(state_field(&s.redis, "state").as_deref(), Some("restored"));
    assert!(members(&s.redis, "NEIGH_TABLE_KEY_SET").is_empty());
    assert_eq!(published.notifications_so_far(&s.redis), 0);

    wait_state(&s.redis, "reconciled");
    let changed_keys: Vec<String> = changed
        .iter()
        .map(|(i, ip, _)| format!("{i}:{ip}"))
        .collect();
    let removed_keys: BTreeSet<String> =
        removed.iter().map(|(i, ip)| format!("{i}:{ip}")).collect();
    let mut all: BTreeSet<String> = removed_keys.clone();
    all.extend(changed_keys.iter().cloned());
    assert_eq!(members(&s.redis, "NEIGH_TABLE_KEY_SET"), all);
    assert_eq!(members(&s.redis, "NEIGH_TABLE_DEL_SET"), removed_keys);
    assert!(published.notifications_so_far(&s.redis) >= 1);
    let popped = consume(&s.redis);
    for (ifname, ip, mac) in changed {
        assert_popped_set(&popped, &format!("{ifname}:{ip}"), mac, family(ip));
        s.model.insert(format!("{ifname}:{ip}"), mac.to_owned());
    }
    for k in &removed_keys {
        assert_eq!(popped[k].last().unwrap().op, Op::Del);
        s.model.remove(k);
    }
    assert_eq!(popped.len(), 4, "{popped:?}");
    s.assert_appl_matches_model();
    assert!(daemon.sigterm().unwrap().success());
}

#[test]
fn restore_flag_never_set_exits_non_zero_with_a_clear_log_line() {
    let redis = RedisServer::start().unwrap();
    let ns = NetNs::new("wrt").unwrap();
    let mut state = redis.conn(STATE_DB).unwrap();
    let () = state
        .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
        .unwrap();
    let () = state
        .hset("WARM_RESTART_TABLE|neighsyncd", "restore_count", "4")
        .unwrap();
    // Something pending that no consumer popped: dropped by the warm start.
    let mut appl = redis.conn(0).unwrap();
    let () = appl
        .hset(
            "_NEIGH_TABLE:Ethernet0:10.0.0.9",
            "neigh",
            "02:00:00:00:00:09",
        )
        .unwrap();
    let _: i64 = appl
        .sadd("NEIGH_TABLE_KEY_SET", "Ethernet0:10.0.0.9")
        .unwrap();
    // Another table whose name starts with NEIGH_TABLE is left alone.
    let () = appl.hset("_NEIGH_TABLE_X:k", "f", "v").unwrap();

    let mut daemon = start_daemon(&ns, &redis, &["--restore-flag-timeout", "1"]);
    let status = daemon.wait_timeout(DEADLINE).unwrap();
    assert!(!status.success(), "{status}");
    let log = daemon.log();
    assert!(
        log.contains("NEIGH_RESTORE_TABLE|Flags restored=true was not set in time"),
        "{log}"
    );
    assert_eq!(state_field(&redis, "restore_count").as_deref(), Some("5"));
    assert_eq!(state_field(&redis, "state").as_deref(), Some("restored"));
    let pending: bool = appl.exists("_NEIGH_TABLE:Ethernet0:10.0.0.9").unwrap();
    assert!(!pending, "unconsumed operation not dropped");
    assert!(members(&redis, "NEIGH_TABLE_KEY_SET").is_empty());
    let other: bool = appl.exists("_NEIGH_TABLE_X:k").unwrap();
    assert!(other, "another table's pending state was wiped");
}
