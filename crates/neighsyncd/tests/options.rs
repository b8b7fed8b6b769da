//! The opt-in rules (off by default, docs/differences.md N18, N19), end to
//! end: the real binary with the flag, a real redis-server, the real
//! kernel's neighbours in a namespace.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use redis::Commands;
use swss::consumer_state::Op;
use testbed::netns::NeighTopology;
use testbed::redis_server::RedisServer;

/// Redis, a DUT with `ports`, CONFIG_DB prepared by `config`, neighsyncd
/// started with `flags` (after the start-up dump).
fn env_with(
    ports: &[&str],
    flags: &[&str],
    config: impl FnOnce(&mut redis::Connection),
) -> (RedisServer, NeighTopology, testbed::daemon::Daemon) {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::with_ports(ports).unwrap();
    config(&mut redis.conn(4).unwrap());
    let mut daemon = start_daemon(topo.dut(), &redis, flags);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    (redis, topo, daemon)
}

fn neigh_add(topo: &NeighTopology, dev: &str, ip: &str, mac: &str) {
    let v6 = if ip.contains(':') { "-6" } else { "-4" };
    topo.dut()
        .ip(&[
            v6,
            "neigh",
            "add",
            ip,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ])
        .unwrap();
}

/// Pops NEIGH_TABLE until `key` was popped with `op`; returns all popped.
fn pop_until(redis: &RedisServer, key: &str, op: Op) -> BTreeMap<String, Vec<Op>> {
    let mut all: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    wait_for(&format!("{op:?} of {key}"), || {
        for (k, ops) in consume(redis) {
            all.entry(k)
                .or_default()
                .extend(ops.into_iter().map(|o| o.op));
        }
        (all.get(key).and_then(|ops| ops.last()) == Some(&op)).then_some(())
    });
    all
}

#[test]
fn router_interfaces_only_writes_neighbours_of_configured_interfaces() {
    let ports = ["Ethernet0", "Ethernet4", "docker0"];
    let (redis, topo, _daemon) = env_with(&ports, &["--router-interfaces-only"], |c| {
        let () = c
            .hset("INTERFACE|Ethernet0|10.0.0.1/24", "NULL", "NULL")
            .unwrap();
    });
    neigh_add(&topo, "docker0", "10.0.2.9", "02:00:00:00:02:09");
    neigh_add(&topo, "Ethernet4", "10.0.1.9", "02:00:00:00:01:09");
    neigh_add(&topo, "Ethernet0", "10.0.0.9", "02:00:00:00:00:09");
    // Ethernet0's neighbour comes last: once it is popped, the others were
    // handled, and dropped.
    let popped = pop_until(&redis, "Ethernet0:10.0.0.9", Op::Set);
    assert_eq!(popped.keys().collect::<Vec<_>>(), ["Ethernet0:10.0.0.9"]);

    // Ethernet4 becomes a router interface: its neighbour is written; the
    // management-style docker0 never is.
    let mut config = redis.conn(4).unwrap();
    let () = config.hset("INTERFACE|Ethernet4", "NULL", "NULL").unwrap();
    let popped = pop_until(&redis, "Ethernet4:10.0.1.9", Op::Set);
    assert!(!popped.contains_key("docker0:10.0.2.9"), "{popped:?}");

    // Ethernet0 stops being one: its neighbour is deleted from APPL_DB.
    let () = config.del("INTERFACE|Ethernet0|10.0.0.1/24").unwrap();
    pop_until(&redis, "Ethernet0:10.0.0.9", Op::Del);
    let table = appl_table(&redis);
    assert_eq!(table.keys().collect::<Vec<_>>(), ["Ethernet4:10.0.1.9"]);
}

#[test]
fn without_the_flag_every_interface_is_written_as_the_cpp_does() {
    let (redis, topo, _daemon) = env_with(&["Ethernet0", "docker0"], &[], |_| {});
    neigh_add(&topo, "docker0", "10.0.1.9", "02:00:00:00:01:09");
    neigh_add(&topo, "Ethernet0", "10.0.0.9", "02:00:00:00:00:09");
    let popped = pop_until(&redis, "Ethernet0:10.0.0.9", Op::Set);
    assert!(popped.contains_key("docker0:10.0.1.9"), "{popped:?}");
}

#[test]
fn sub_interface_link_local_follows_vlan_sub_interface_when_opted_in() {
    // A veth named as SONiC names a VLAN sub-interface: the rule reads the
    // name and CONFIG_DB only (the VM tier has real 802.1Q sub-interfaces).
    let enable = |c: &mut redis::Connection| {
        let () = c
            .hset(
                "VLAN_SUB_INTERFACE|Ethernet0.10",
                "ipv6_use_link_local_only",
                "enable",
            )
            .unwrap();
    };
    for (flags, written) in [
        (&["--sub-interface-link-local"][..], true),
        (&[][..], false),
    ] {
        let (redis, topo, _daemon) = env_with(&["Ethernet0.10"], flags, enable);
        neigh_add(&topo, "Ethernet0.10", "fe80::99", "02:00:00:00:00:99");
        neigh_add(&topo, "Ethernet0.10", "10.0.0.9", "02:00:00:00:00:09");
        let popped = pop_until(&redis, "Ethernet0.10:10.0.0.9", Op::Set);
        assert_eq!(
            popped.contains_key("Ethernet0.10:fe80::99"),
            written,
            "flags {flags:?}: {popped:?}"
        );
        if written {
            // Turned off at run time: the resync deletes it.
            let mut config = redis.conn(4).unwrap();
            let () = config
                .hset(
                    "VLAN_SUB_INTERFACE|Ethernet0.10",
                    "ipv6_use_link_local_only",
                    "disable",
                )
                .unwrap();
            pop_until(&redis, "Ethernet0.10:fe80::99", Op::Del);
        }
    }
}
