//! neighsyncd end to end: the real binary in a DUT namespace, neighbours
//! learned for real by ARP/ND (ping) or added with `ip neigh`, a real
//! redis-server. Each test checks the raw ProducerStateTable layout and what
//! a ConsumerStateTable (orchagent's side) pops.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use redis::Commands;
use swss::consumer_state::Op;
use testbed::netns::NeighTopology;

#[test]
fn ipv4_and_ipv6_learned_by_ping_then_deleted() {
    let env = Env::new(1, |_, _| {});
    let mac = env.topo.peer_mac(0).unwrap();
    let mut appl = env.appl();
    consume(&env.redis);

    // IPv4: ARP.
    let mut chan = Channel::subscribe(&env.redis);
    env.topo.ping4(0).unwrap();
    wait_pending_set(&mut appl, "Ethernet0:10.0.0.2", &mac, "IPv4");
    assert_eq!(chan.next_payload(), "G");
    assert!(!pending(&mut appl, "Ethernet0:10.0.0.2").in_del_set);
    let popped = consume(&env.redis);
    assert_popped_set(&popped, "Ethernet0:10.0.0.2", &mac, "IPv4");
    let stored: Vec<(String, String)> = appl.hgetall("NEIGH_TABLE:Ethernet0:10.0.0.2").unwrap();
    assert_eq!(
        stored,
        vec![
            ("neigh".into(), mac.clone()),
            ("family".into(), "IPv4".into())
        ]
    );

    // IPv6: ND. The key carries the address as inet_ntop prints it.
    env.topo.ping6(0).unwrap();
    wait_pending_set(&mut appl, "Ethernet0:fc00::2", &mac, "IPv6");
    assert_eq!(chan.next_payload(), "G");
    let popped = consume(&env.redis);
    assert_popped_set(&popped, "Ethernet0:fc00::2", &mac, "IPv6");

    // Delete.
    env.dut_ip(&["neigh", "del", "10.0.0.2", "dev", "Ethernet0"]);
    wait_pending_del(&mut appl, "Ethernet0:10.0.0.2");
    assert_eq!(chan.next_payload(), "G");
    let popped = consume(&env.redis);
    assert_eq!(popped["Ethernet0:10.0.0.2"].last().unwrap().op, Op::Del);
    let exists: bool = appl.exists("NEIGH_TABLE:Ethernet0:10.0.0.2").unwrap();
    assert!(!exists, "consumer pop must wipe the consumed entry");
    assert_no_numeric_ifnames(&mut appl);
}

#[test]
fn neighbors_existing_before_start_come_from_the_dump() {
    let mut macs = Vec::new();
    let env = Env::new(2, |_, topo| {
        topo.ping4(0).unwrap();
        topo.ping6(1).unwrap();
        macs.push(topo.peer_mac(0).unwrap());
        macs.push(topo.peer_mac(1).unwrap());
    });
    let mut appl = env.appl();
    wait_pending_set(&mut appl, "Ethernet0:10.0.0.2", &macs[0], "IPv4");
    wait_pending_set(&mut appl, "Ethernet4:fc00:1::2", &macs[1], "IPv6");
    let popped = consume(&env.redis);
    assert_popped_set(&popped, "Ethernet0:10.0.0.2", &macs[0], "IPv4");
    assert_popped_set(&popped, "Ethernet4:fc00:1::2", &macs[1], "IPv6");
}

#[test]
fn ipv6_link_local_written_once_enabled_at_run_time() {
    let env = Env::new(1, |_, _| {});
    let mut appl = env.appl();
    consume(&env.redis);
    let ll = "Ethernet0:fe80::1234";
    env.dut_ip(&[
        "-6",
        "neigh",
        "add",
        "fe80::1234",
        "lladdr",
        "02:00:00:00:12:34",
        "dev",
        "Ethernet0",
        "nud",
        "permanent",
    ]);
    // A later neighbour shows the link-local one was handled (and dropped).
    env.topo
        .dut()
        .neigh_add("Ethernet0", "10.0.0.50", "02:00:00:00:00:50")
        .unwrap();
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.50",
        "02:00:00:00:00:50",
        "IPv4",
    );
    assert_eq!(pending(&mut appl, ll).state, vec![]);
    assert!(!pending(&mut appl, ll).in_key_set);

    let mut chan = Channel::subscribe(&env.redis);
    consume(&env.redis);
    let mut config = env.config();
    let () = config
        .hset("INTERFACE|Ethernet0", "ipv6_use_link_local_only", "enable")
        .unwrap();
    wait_pending_set(&mut appl, ll, "02:00:00:00:12:34", "IPv6");
    assert_eq!(chan.next_payload(), "G");
    let popped = consume(&env.redis);
    assert_popped_set(&popped, ll, "02:00:00:00:12:34", "IPv6");
    // The other neighbour was not rewritten by the resync.
    assert!(!popped.contains_key("Ethernet0:10.0.0.50"), "{popped:?}");

    // A new link-local neighbour is now written directly.
    env.dut_ip(&[
        "-6",
        "neigh",
        "add",
        "fe80::99",
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "Ethernet0",
        "nud",
        "permanent",
    ]);
    wait_pending_set(&mut appl, "Ethernet0:fe80::99", "02:00:00:00:00:99", "IPv6");
}

#[test]
fn dual_tor_unresolved_neighbor_gets_zero_mac() {
    let env = Env::new(1, |redis, _| {
        let mut config = redis.conn(4).unwrap();
        let () = config
            .hset("PEER_SWITCH|peer_tor", "address_ipv4", "10.1.0.33")
            .unwrap();
    });
    let mut appl = env.appl();
    consume(&env.redis);
    let mut chan = Channel::subscribe(&env.redis);
    // Nobody answers 10.0.0.99: the kernel goes INCOMPLETE then FAILED.
    let _ = env.topo.dut().exec(&["ping", "-c1", "-W1", "10.0.0.99"]);
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.99",
        "00:00:00:00:00:00",
        "IPv4",
    );
    assert_eq!(chan.next_payload(), "G");
    let popped = consume(&env.redis);
    assert_popped_set(&popped, "Ethernet0:10.0.0.99", "00:00:00:00:00:00", "IPv4");
}

#[test]
fn broadcast_mac_and_noarp_are_not_written() {
    let env = Env::new(1, |_, _| {});
    let mut appl = env.appl();
    consume(&env.redis);
    env.topo
        .dut()
        .neigh_add("Ethernet0", "10.0.0.77", "ff:ff:ff:ff:ff:ff")
        .unwrap();
    env.dut_ip(&[
        "neigh",
        "add",
        "10.0.0.78",
        "lladdr",
        "02:00:00:00:00:78",
        "dev",
        "Ethernet0",
        "nud",
        "noarp",
    ]);
    // Handled in order: once the marker is written the two were dropped.
    env.topo
        .dut()
        .neigh_add("Ethernet0", "10.0.0.79", "02:00:00:00:00:79")
        .unwrap();
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.79",
        "02:00:00:00:00:79",
        "IPv4",
    );
    for key in ["Ethernet0:10.0.0.77", "Ethernet0:10.0.0.78"] {
        let p = pending(&mut appl, key);
        assert!(!p.in_key_set && p.state.is_empty(), "{key}: {p:?}");
    }
    let popped = consume(&env.redis);
    assert_eq!(popped.keys().collect::<Vec<_>>(), ["Ethernet0:10.0.0.79"]);
}

#[test]
fn deleted_interface_takes_its_neighbors_along() {
    let env = Env::new(2, |_, _| {});
    let mut appl = env.appl();
    let mac0 = env.topo.peer_mac(0).unwrap();
    let mac1 = env.topo.peer_mac(1).unwrap();
    env.topo.ping4(0).unwrap();
    env.topo.ping4(1).unwrap();
    wait_pending_set(&mut appl, "Ethernet0:10.0.0.2", &mac0, "IPv4");
    wait_pending_set(&mut appl, "Ethernet4:10.0.1.2", &mac1, "IPv4");
    consume(&env.redis);

    let mut chan = Channel::subscribe(&env.redis);
    env.dut_ip(&["link", "del", "Ethernet0"]);
    wait_pending_del(&mut appl, "Ethernet0:10.0.0.2");
    assert_eq!(chan.next_payload(), "G");
    let popped = consume(&env.redis);
    assert_eq!(popped["Ethernet0:10.0.0.2"].last().unwrap().op, Op::Del);
    assert!(!popped.contains_key("Ethernet4:10.0.1.2"));
    let gone: bool = appl.exists("NEIGH_TABLE:Ethernet0:10.0.0.2").unwrap();
    assert!(!gone);
    let kept: bool = appl.exists("NEIGH_TABLE:Ethernet4:10.0.1.2").unwrap();
    assert!(kept);
    assert_no_numeric_ifnames(&mut appl);
}

#[test]
fn sigterm_exits_zero_and_logger_defaults_written() {
    let mut env = Env::new(1, |redis, _| {
        let mut config = redis.conn(4).unwrap();
        let () = config
            .hset("LOGGER|neighsyncd", "LOGLEVEL", "DEBUG")
            .unwrap();
    });
    let mut config = env.config();
    let logger: Vec<(String, String)> = config.hgetall("LOGGER|neighsyncd").unwrap();
    assert!(
        logger.contains(&("LOGLEVEL".into(), "DEBUG".into())),
        "kept: {logger:?}"
    );
    assert!(
        logger.contains(&("LOGOUTPUT".into(), "SYSLOG".into())),
        "added: {logger:?}"
    );
    let status = env.daemon.sigterm().unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{}", env.daemon.log());
}

#[test]
fn broken_or_missing_database_config_exits_nonzero_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("database_config.json");
    std::fs::write(&broken, "{ \"INSTANCES\": ").unwrap();
    let missing = dir.path().join("nope.json");
    for path in [&broken, &missing] {
        let out = Command::new(BIN)
            .args(["--db-config", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(path.to_str().unwrap()), "stderr: {stderr}");
    }
}

#[test]
fn redis_down_at_start_is_retried_then_synced() {
    let mut redis = testbed::redis_server::RedisServer::start().unwrap();
    redis.stop().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let mac = topo.peer_mac(0).unwrap();
    topo.ping4(0).unwrap();
    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon
        .wait_for_log("cannot connect to Redis", DEADLINE)
        .unwrap();
    redis.restart().unwrap();
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    let mut appl = redis.conn(0).unwrap();
    wait_pending_set(&mut appl, "Ethernet0:10.0.0.2", &mac, "IPv4");
    assert!(Path::new(BIN).exists());
}

#[test]
fn redis_restart_is_survived_and_appl_db_rewritten() {
    let env = Env::new(1, |_, _| {});
    let mac = env.topo.peer_mac(0).unwrap();
    env.topo.ping4(0).unwrap();
    let mut appl = env.appl();
    wait_pending_set(&mut appl, "Ethernet0:10.0.0.2", &mac, "IPv4");
    consume(&env.redis);
    let mut env = env;
    env.redis.restart().unwrap();
    // While Redis was away and after: a new neighbour and the old one.
    env.topo
        .dut()
        .neigh_add("Ethernet0", "10.0.0.60", "02:00:00:00:00:60")
        .unwrap();
    let mut appl = env.appl();
    wait_pending_set(&mut appl, "Ethernet0:10.0.0.2", &mac, "IPv4");
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.60",
        "02:00:00:00:00:60",
        "IPv4",
    );
    assert!(env.daemon.is_running());
    let popped = consume(&env.redis);
    assert_popped_set(&popped, "Ethernet0:10.0.0.2", &mac, "IPv4");
}
