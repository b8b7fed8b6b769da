//! Adversarial end-to-end cases: interface renamed with neighbours, MAC
//! change, neighbour on an interface without an address, add/del bursts of
//! one key, PEER_SWITCH added at run time with unresolved neighbours.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use redis::Commands;
use swss::consumer_state::Op;

fn neigh_add(env: &Env, ip: &str, mac: &str, dev: &str, nud: &str) {
    env.dut_ip(&[
        "neigh", "replace", ip, "lladdr", mac, "dev", dev, "nud", nud,
    ]);
}

fn consumed_keys(appl: &mut redis::Connection) -> Vec<String> {
    let mut keys: Vec<String> = appl.keys("NEIGH_TABLE:*").unwrap();
    keys.sort();
    keys
}

#[test]
fn renamed_interface_moves_its_neighbors_to_the_new_name() {
    let env = Env::new(1, |_, _| {});
    let mut appl = env.appl();
    neigh_add(
        &env,
        "10.0.0.50",
        "02:00:00:00:00:50",
        "Ethernet0",
        "permanent",
    );
    neigh_add(
        &env,
        "fc00::50",
        "02:00:00:00:00:51",
        "Ethernet0",
        "permanent",
    );
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.50",
        "02:00:00:00:00:50",
        "IPv4",
    );
    wait_pending_set(&mut appl, "Ethernet0:fc00::50", "02:00:00:00:00:51", "IPv6");
    consume(&env.redis);

    // Renamed while up (the kernel keeps the neighbours).
    env.dut_ip(&["link", "set", "Ethernet0", "name", "Ethernet96"]);
    wait_pending_set(
        &mut appl,
        "Ethernet96:10.0.0.50",
        "02:00:00:00:00:50",
        "IPv4",
    );
    wait_pending_set(
        &mut appl,
        "Ethernet96:fc00::50",
        "02:00:00:00:00:51",
        "IPv6",
    );
    wait_for("old keys deleted", || {
        let a = pending(&mut appl, "Ethernet0:10.0.0.50");
        let b = pending(&mut appl, "Ethernet0:fc00::50");
        (a.in_del_set && b.in_del_set).then_some(())
    });
    consume(&env.redis);
    assert_eq!(
        consumed_keys(&mut appl),
        [
            "NEIGH_TABLE:Ethernet96:10.0.0.50",
            "NEIGH_TABLE:Ethernet96:fc00::50"
        ]
    );
    // And back: later changes under the new name are followed.
    env.dut_ip(&["neigh", "del", "10.0.0.50", "dev", "Ethernet96"]);
    wait_pending_del(&mut appl, "Ethernet96:10.0.0.50");
    consume(&env.redis);
    assert_eq!(
        consumed_keys(&mut appl),
        ["NEIGH_TABLE:Ethernet96:fc00::50"]
    );
}

#[test]
fn mac_change_is_a_set_with_the_new_mac() {
    let env = Env::new(1, |_, _| {});
    let mut appl = env.appl();
    neigh_add(
        &env,
        "10.0.0.60",
        "02:00:00:00:00:60",
        "Ethernet0",
        "reachable",
    );
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.60",
        "02:00:00:00:00:60",
        "IPv4",
    );
    consume(&env.redis);
    neigh_add(
        &env,
        "10.0.0.60",
        "02:00:00:00:00:61",
        "Ethernet0",
        "reachable",
    );
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.60",
        "02:00:00:00:00:61",
        "IPv4",
    );
    assert!(!pending(&mut appl, "Ethernet0:10.0.0.60").in_del_set);
    let popped = consume(&env.redis);
    assert_popped_set(&popped, "Ethernet0:10.0.0.60", "02:00:00:00:00:61", "IPv4");
}

#[test]
fn neighbor_on_an_interface_without_an_address_is_written() {
    let env = Env::new(2, |_, topo| {
        topo.dut()
            .ip(&["addr", "flush", "dev", "Ethernet4"])
            .unwrap();
    });
    let mut appl = env.appl();
    neigh_add(
        &env,
        "192.0.2.7",
        "02:00:00:00:00:07",
        "Ethernet4",
        "permanent",
    );
    wait_pending_set(
        &mut appl,
        "Ethernet4:192.0.2.7",
        "02:00:00:00:00:07",
        "IPv4",
    );
}

#[test]
fn add_del_burst_of_one_key_ends_absent_or_present_as_the_kernel() {
    let env = Env::new(1, |_, _| {});
    let mut appl = env.appl();
    consume(&env.redis);
    let mut script = String::new();
    for i in 0..200 {
        script.push_str(&format!(
            "neigh replace 10.0.0.70 lladdr 02:00:00:00:01:{:02x} dev Ethernet0 nud permanent\n",
            i % 256
        ));
        script.push_str("neigh del 10.0.0.70 dev Ethernet0\n");
    }
    script
        .push_str("neigh replace 10.0.0.71 lladdr 02:00:00:00:00:71 dev Ethernet0 nud permanent\n");
    let path = std::env::temp_dir().join(format!("rv-burst-{}", std::process::id()));
    std::fs::write(&path, script).unwrap();
    env.dut_ip(&["-batch", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.71",
        "02:00:00:00:00:71",
        "IPv4",
    );
    let mut seen = std::collections::BTreeMap::new();
    wait_for("converged", || {
        for (k, v) in consume(&env.redis) {
            seen.insert(k, v);
        }
        let keys = consumed_keys(&mut appl);
        (keys == ["NEIGH_TABLE:Ethernet0:10.0.0.71"]).then_some(())
    });
    if let Some(ops) = seen.get("Ethernet0:10.0.0.70") {
        assert_eq!(ops.last().unwrap().op, Op::Del, "{ops:?}");
    }
}

#[test]
fn peer_switch_added_at_run_time_writes_failed_neighbors_with_zero_mac() {
    let env = Env::new(1, |_, _| {});
    let mut appl = env.appl();
    let mut config = env.config();
    consume(&env.redis);
    // Nobody answers: INCOMPLETE then FAILED, not written (not dual-ToR).
    let _ = env.topo.dut().exec(&["ping", "-c1", "-W1", "10.0.0.99"]);
    wait_for("FAILED in the kernel", || {
        let out = env
            .topo
            .dut()
            .ip(&["neigh", "show", "10.0.0.99", "dev", "Ethernet0"])
            .unwrap();
        out.contains("FAILED").then_some(())
    });
    assert!(!pending(&mut appl, "Ethernet0:10.0.0.99").in_key_set);
    let () = config
        .hset("PEER_SWITCH|peer_tor", "address_ipv4", "10.1.0.33")
        .unwrap();
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.99",
        "00:00:00:00:00:00",
        "IPv4",
    );
    consume(&env.redis);
    // And removed again: the zero-MAC entry goes.
    let () = config.del("PEER_SWITCH|peer_tor").unwrap();
    wait_pending_del(&mut appl, "Ethernet0:10.0.0.99");
    consume(&env.redis);
    assert!(consumed_keys(&mut appl).is_empty());
}

fn count_lines(log: &str, parts: &[&str]) -> usize {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

/// A write in flight while the CONFIG_DB subscription is lost (Redis
/// itself stays up, e.g. a pubsub client killed for its output buffer):
/// the reconnect's APPL_DB read must not be taken before that write lands,
/// or a DEL staged meanwhile is forgotten and APPL_DB keeps the SET.
#[test]
fn delete_staged_behind_a_slow_write_survives_a_subscription_loss() {
    let env = Env::new(1, |_, _| {});
    let mut appl = env.appl();
    let key = "Ethernet0:10.0.0.80";
    consume(&env.redis);
    let flushes = count_lines(&env.daemon.log(), &["flushing"]);
    let reconnects = count_lines(&env.daemon.log(), &["Redis reconnected"]);

    // Writes stall in Redis (reads go on).
    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(4000)
        .arg("WRITE")
        .query(&mut appl)
        .unwrap();
    neigh_add(
        &env,
        "10.0.0.80",
        "02:00:00:00:00:80",
        "Ethernet0",
        "permanent",
    );
    wait_for("SET in flight", || {
        (count_lines(&env.daemon.log(), &["flushing"]) > flushes).then_some(())
    });
    env.dut_ip(&["neigh", "del", "10.0.0.80", "dev", "Ethernet0"]);
    wait_for("DEL staged", || {
        (count_lines(&env.daemon.log(), &["DEL", key]) > 0).then_some(())
    });
    // The CONFIG_DB subscriptions drop; Redis stays up.
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut appl)
        .unwrap();
    wait_for("reconnected", || {
        (count_lines(&env.daemon.log(), &["Redis reconnected"]) > reconnects).then_some(())
    });
    // A marker staged after the reconnect: once it is written, so is
    // everything the reconnect found to repair.
    neigh_add(
        &env,
        "10.0.0.81",
        "02:00:00:00:00:81",
        "Ethernet0",
        "permanent",
    );
    wait_for("marker written", || {
        let p = pending(&mut appl, "Ethernet0:10.0.0.81");
        let done: bool = appl.exists("NEIGH_TABLE:Ethernet0:10.0.0.81").unwrap();
        (p.in_key_set || done).then_some(())
    });
    consume(&env.redis);
    assert_eq!(
        consumed_keys(&mut appl),
        ["NEIGH_TABLE:Ethernet0:10.0.0.81"],
        "the kernel no longer has {key}"
    );
}
