//! APPL_DB `NEIGH_FAILED_TABLE` (sonic-swss PR 4849; docs/behavior.md b.2
//! step 9a) end to end: the real binary, a real redis-server, and failed
//! resolutions made by the real kernel (a ping nobody answers ends in
//! NUD_FAILED). An nbrmgrd-like consumer pops the table with the
//! ConsumerStateTable protocol and does what nbrmgrd does with a SET: moves
//! the neighbour to INCOMPLETE and solicits it once.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use redis::Commands;
use swss::consumer_state::{KeyOpFieldValues, Op};
use swss::{ConsumerStateTable, DbConfig, DbConnector};
use testbed::netns::NeighTopology;
use testbed::redis_server::RedisServer;

const TABLE: &str = "NEIGH_FAILED_TABLE";

fn null() -> Vec<(String, String)> {
    vec![("NULL".to_owned(), "NULL".to_owned())]
}

/// CONFIG_DB `PEER_SWITCH|peer_tor`: the switch is a dual-ToR.
fn make_dual_tor(redis: &RedisServer) {
    let mut config = redis.conn(4).unwrap();
    let () = config
        .hset("PEER_SWITCH|peer_tor", "address_ipv4", "10.1.0.33")
        .unwrap();
}

/// Pop everything pending in `NEIGH_FAILED_TABLE` as nbrmgrd's Consumer
/// does, merged per key.
fn pop_failed(redis: &RedisServer) -> BTreeMap<String, Vec<KeyOpFieldValues>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = DbConfig::load(redis.db_config_path()).unwrap();
        let db = DbConnector::new(cfg.location("APPL_DB").unwrap()).unwrap();
        let mut consumer = ConsumerStateTable::new(&db, TABLE, 128).await.unwrap();
        consumer.drain().await.unwrap()
    })
}

/// Pops until `key` has been popped with `op`; returns every op popped for
/// it on the way, in order.
fn pop_until(redis: &RedisServer, key: &str, op: Op) -> Vec<KeyOpFieldValues> {
    let mut seen = Vec::new();
    wait_for(&format!("{op:?} of {key} popped from {TABLE}"), || {
        let mut popped = pop_failed(redis);
        let ops = popped.remove(key).unwrap_or_default();
        assert!(popped.is_empty(), "other keys popped: {popped:?}");
        let done = ops.last().is_some_and(|o| o.op == op);
        seen.extend(ops);
        done.then_some(())
    });
    seen
}

/// The raw pending layout: `_NEIGH_FAILED_TABLE:<key>` fields and whether
/// the key is in the KEY_SET / DEL_SET.
fn pending_failed(conn: &mut redis::Connection, key: &str) -> (Vec<(String, String)>, bool, bool) {
    let state: Vec<(String, String)> = conn.hgetall(format!("_{TABLE}:{key}")).unwrap();
    let in_keys: bool = conn.sismember(format!("{TABLE}_KEY_SET"), key).unwrap();
    let in_dels: bool = conn.sismember(format!("{TABLE}_DEL_SET"), key).unwrap();
    (state, in_keys, in_dels)
}

/// Every key of the consumed table (`NEIGH_FAILED_TABLE:<key>` hashes).
fn consumed_keys(conn: &mut redis::Connection) -> Vec<String> {
    let mut keys: Vec<String> = conn.keys(format!("{TABLE}:*")).unwrap();
    keys.sort();
    keys
}

/// The kernel's NUD state of `ip` on `dev` in the DUT (`FAILED`, ...).
fn kernel_state(topo: &NeighTopology, dev: &str, ip: &str) -> Option<String> {
    let out = topo
        .dut()
        .ip(&["-6", "neigh", "show", ip, "dev", dev])
        .unwrap();
    out.split_whitespace().last().map(str::to_owned)
}

/// A resolution nobody answers: one ping, then the kernel's own probes
/// (3 x 1 s for IPv6) end in NUD_FAILED.
fn fail_resolution(topo: &NeighTopology, dev: &str, ip: &str) {
    let _ = topo
        .dut()
        .exec(&["ping", "-6", "-c1", "-W1", "-I", dev, ip]);
    let start = Instant::now();
    while kernel_state(topo, dev, ip).as_deref() != Some("FAILED") {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{ip} never reached FAILED: {:?}",
            kernel_state(topo, dev, ip)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What nbrmgrd does with a popped SET (NbrMgr::processKernelFailedNeighbor):
/// a FAILED neighbour is moved to INCOMPLETE.
fn nbrmgrd_moves_to_incomplete(topo: &NeighTopology, dev: &str, ip: &str) {
    topo.dut()
        .ip(&[
            "-6",
            "neigh",
            "replace",
            ip,
            "dev",
            dev,
            "nud",
            "incomplete",
        ])
        .unwrap();
}

#[test]
fn dual_tor_failed_ipv6_is_published_each_time_and_deleted_once_resolved() {
    let env = Env::new(1, |redis, _| make_dual_tor(redis));
    let mut appl = env.appl();
    let (dev, ip) = ("Ethernet0", "fc00::99");
    let key = format!("{dev}:{ip}");

    // 1. A real failed resolution: SET NULL=NULL, popped by nbrmgrd.
    fail_resolution(&env.topo, dev, ip);
    wait_for("pending SET in NEIGH_FAILED_TABLE", || {
        let (state, in_keys, in_dels) = pending_failed(&mut appl, &key);
        (state == null() && in_keys && !in_dels).then_some(())
    });
    let ops = pop_until(&env.redis, &key, Op::Set);
    assert_eq!(ops.last().unwrap().fvs, null());
    assert_eq!(consumed_keys(&mut appl), [format!("{TABLE}:{key}")]);
    // NEIGH_TABLE keeps its own dual-ToR rule: the zero MAC.
    wait_pending_set(&mut appl, &key, "00:00:00:00:00:00", "IPv6");

    // 2. Traffic to it again: the kernel retries from FAILED and fails
    // again: a new SET, popped again.
    let _ = env
        .topo
        .dut()
        .exec(&["ping", "-6", "-c1", "-W1", "-I", dev, ip]);
    let ops = pop_until(&env.redis, &key, Op::Set);
    assert!(
        ops.iter().all(|o| o.op == Op::Set && o.fvs == null()),
        "{ops:?}"
    );

    // 3. nbrmgrd moves it to INCOMPLETE: the key stays (nothing written).
    nbrmgrd_moves_to_incomplete(&env.topo, dev, ip);
    env.dut_ip(&[
        "-6",
        "neigh",
        "add",
        "fc00::55",
        "lladdr",
        "02:00:00:00:00:55",
        "dev",
        dev,
    ]);
    wait_pending_set(&mut appl, "Ethernet0:fc00::55", "02:00:00:00:00:55", "IPv6");
    assert_eq!(
        kernel_state(&env.topo, dev, ip).as_deref(),
        Some("INCOMPLETE")
    );
    assert!(pop_failed(&env.redis).is_empty());
    assert_eq!(consumed_keys(&mut appl), [format!("{TABLE}:{key}")]);

    // 4. Its answer arrives (the NA nbrmgrd's solicitation asked for):
    // REACHABLE, one DEL, and the consumed hash is gone once popped.
    env.dut_ip(&[
        "-6",
        "neigh",
        "replace",
        ip,
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        dev,
        "nud",
        "reachable",
    ]);
    let ops = pop_until(&env.redis, &key, Op::Del);
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert!(consumed_keys(&mut appl).is_empty());
    wait_pending_set(&mut appl, &key, "02:00:00:00:00:99", "IPv6");

    // 5. IPv4 failures never reach the table (NEIGH_TABLE still gets its
    // zero MAC).
    let _ = env.topo.dut().exec(&["ping", "-c1", "-W1", "10.0.0.99"]);
    wait_pending_set(
        &mut appl,
        "Ethernet0:10.0.0.99",
        "00:00:00:00:00:00",
        "IPv4",
    );
    let keys: Vec<String> = appl.smembers(format!("{TABLE}_KEY_SET")).unwrap();
    assert!(keys.is_empty(), "{keys:?}");

    // 6. A failed neighbour deleted from the kernel: DEL.
    fail_resolution(&env.topo, dev, "fc00::98");
    pop_until(&env.redis, "Ethernet0:fc00::98", Op::Set);
    env.dut_ip(&["-6", "neigh", "del", "fc00::98", "dev", dev]);
    pop_until(&env.redis, "Ethernet0:fc00::98", Op::Del);
    assert!(consumed_keys(&mut appl).is_empty());
}

#[test]
fn not_dual_tor_writes_nothing_and_peer_switch_toggles_the_table() {
    let env = Env::new(1, |_, _| {});
    let mut appl = env.appl();
    let mut config = env.config();
    let (dev, ip) = ("Ethernet0", "fc00::97");
    let key = format!("{dev}:{ip}");

    fail_resolution(&env.topo, dev, ip);
    // A later change as a barrier: everything before it was handled.
    env.dut_ip(&[
        "-6",
        "neigh",
        "add",
        "fc00::55",
        "lladdr",
        "02:00:00:00:00:55",
        "dev",
        dev,
    ]);
    wait_pending_set(&mut appl, "Ethernet0:fc00::55", "02:00:00:00:00:55", "IPv6");
    let keys: Vec<String> = appl.keys(format!("*{TABLE}*")).unwrap();
    assert!(keys.is_empty(), "not a dual-ToR, yet {keys:?}");

    // Becoming a dual-ToR dumps the kernel again: the FAILED entry is
    // published at once.
    let () = config
        .hset("PEER_SWITCH|peer_tor", "address_ipv4", "10.1.0.33")
        .unwrap();
    pop_until(&env.redis, &key, Op::Set);
    // No longer a dual-ToR: what was published is deleted.
    let () = config.del("PEER_SWITCH|peer_tor").unwrap();
    pop_until(&env.redis, &key, Op::Del);
    assert!(consumed_keys(&mut appl).is_empty());
}

#[test]
fn cold_start_republishes_failed_and_deletes_stale_keys() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    make_dual_tor(&redis);
    let mut appl = redis.conn(0).unwrap();
    // Left by an earlier run (consumed by nbrmgrd): its neighbour is gone.
    let () = appl
        .hset(format!("{TABLE}:Ethernet0:fc00::77"), "NULL", "NULL")
        .unwrap();
    // Failed while the daemon was down.
    fail_resolution(&topo, "Ethernet0", "fc00::96");

    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    let popped = wait_for("both keys pending", || {
        let p = pop_failed(&redis);
        (p.len() == 2).then_some(p)
    });
    assert_eq!(popped["Ethernet0:fc00::96"].last().unwrap().op, Op::Set);
    assert_eq!(popped["Ethernet0:fc00::77"].last().unwrap().op, Op::Del);
    assert_eq!(
        consumed_keys(&mut appl),
        [format!("{TABLE}:Ethernet0:fc00::96")]
    );

    // A Redis restart loses every database (CONFIG_DB is loaded again, as
    // config reload would): the published key is written again.
    let mut redis = redis;
    redis.restart().unwrap();
    make_dual_tor(&redis);
    let mut appl = redis.conn(0).unwrap();
    wait_for("re-published after the Redis restart", || {
        let (state, in_keys, _) = pending_failed(&mut appl, "Ethernet0:fc00::96");
        (state == null() && in_keys).then_some(())
    });
}
