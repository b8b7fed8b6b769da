//! Fault tests: netlink overrun with a deliberately small receive buffer,
//! SIGKILL then cold restart, Redis killed and restarted while neighbours
//! change, SIGTERM in the middle of a burst. Afterwards APPL_DB (as the
//! consumer sees it) equals the kernel, and nothing is half written.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

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
        topo.dut().neigh_add("Ethernet0", ip, mac).unwrap();
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
        .neigh_replace("Ethernet0", "10.0.0.11", "02:00:00:00:01:11")
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

/// The kernel's permanent IPv4 neighbours on the DUT's `Ethernet0`, as
/// APPL_DB keys (`Ethernet0:<ip>`) and MACs.
fn kernel_table(topo: &NeighTopology) -> BTreeMap<String, String> {
    let out = topo
        .dut()
        .ip(&[
            "-4",
            "neigh",
            "show",
            "dev",
            "Ethernet0",
            "nud",
            "permanent",
        ])
        .unwrap();
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let at = f.iter().position(|w| *w == "lladdr")?;
            Some((format!("Ethernet0:{}", f[0]), f.get(at + 1)?.to_string()))
        })
        .collect()
}

/// Pop everything as orchagent would, then every consumed `NEIGH_TABLE:*`
/// hash (key without prefix -> fields). Panics on a hash with other fields
/// than exactly `neigh` and `family` (`IPv4`).
fn consumed_table(redis: &RedisServer) -> BTreeMap<String, String> {
    consume(redis);
    let mut conn = redis.conn(0).unwrap();
    let keys: Vec<String> = conn.keys("NEIGH_TABLE:*").unwrap();
    keys.into_iter()
        .map(|k| {
            let mut fvs: BTreeMap<String, String> = conn.hgetall(&k).unwrap();
            assert_eq!(fvs.len(), 2, "{k}: {fvs:?}");
            assert_eq!(fvs.remove("family").as_deref(), Some("IPv4"), "{k}");
            let mac = fvs
                .remove("neigh")
                .unwrap_or_else(|| panic!("{k}: no neigh"));
            (k["NEIGH_TABLE:".len()..].to_owned(), mac)
        })
        .collect()
}

/// `neigh <verb> 10.2.<i/250>.<i%250+1> [lladdr 02:00:00:<tag>:<i>] dev
/// Ethernet0 nud permanent` for `i` in `range`.
fn lines(verb: &str, range: std::ops::Range<usize>, tag: u8) -> Vec<String> {
    range
        .map(|i| {
            let ip = format!("10.2.{}.{}", i / 250, i % 250 + 1);
            if verb == "del" {
                format!("neigh del {ip} dev Ethernet0")
            } else {
                format!(
                    "neigh {verb} {ip} lladdr 02:00:00:{tag:02x}:{:02x}:{:02x} dev Ethernet0 nud permanent",
                    i / 256,
                    i % 256
                )
            }
        })
        .collect()
}

#[test]
fn redis_killed_and_restarted_while_neighbors_change() {
    let mut redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    ip_batch(&topo, &lines("add", 0..300, 1));
    let kernel = kernel_table(&topo);
    assert_eq!(kernel.len(), 300);
    wait_for("the first 300 neighbors consumed", || {
        (consumed_table(&redis) == kernel).then_some(())
    });

    // Redis dies (SIGKILL); while it is away: 100 deleted, 100 added, 50
    // change MAC.
    redis.stop().unwrap();
    ip_batch(&topo, &lines("del", 0..100, 1));
    ip_batch(&topo, &lines("add", 300..400, 1));
    ip_batch(&topo, &lines("replace", 100..150, 2));
    std::thread::sleep(Duration::from_millis(300));
    // Back, empty (no persistence, as after a crash): while the daemon
    // reconnects and resyncs, more changes arrive.
    redis.restart().unwrap();
    ip_batch(&topo, &lines("del", 150..200, 1));
    ip_batch(&topo, &lines("add", 400..450, 1));
    ip_batch(&topo, &lines("replace", 300..320, 3));

    let kernel = kernel_table(&topo);
    assert_eq!(kernel.len(), 300 - 100 + 100 - 50 + 50);
    // Nothing lost, nothing stale, every MAC the kernel's: through the
    // consumer's pops and the raw consumed keys.
    wait_for("APPL_DB equals the kernel after the Redis restart", || {
        (consumed_table(&redis) == kernel).then_some(())
    });
    let mut conn = redis.conn(0).unwrap();
    let pending: usize = conn.scard("NEIGH_TABLE_KEY_SET").unwrap();
    assert_eq!(pending, 0, "everything was popped");
    let log = daemon.log();
    assert!(log.contains("Redis reconnected"), "{log}");
    assert!(daemon.is_running());
}

/// Every pending operation in APPL_DB's raw layout is whole: each state hash
/// `_NEIGH_TABLE:<key>` has both `neigh` and `family`, and each
/// `NEIGH_TABLE_KEY_SET` member has a state hash or is in
/// `NEIGH_TABLE_DEL_SET`. Returns the number of pending keys.
fn assert_pending_whole(redis: &RedisServer) -> usize {
    let mut conn = redis.conn(0).unwrap();
    let states: Vec<String> = conn.keys("_NEIGH_TABLE:*").unwrap();
    for k in &states {
        let fvs: BTreeMap<String, String> = conn.hgetall(k).unwrap();
        assert!(
            fvs.contains_key("neigh") && fvs.contains_key("family") && fvs.len() == 2,
            "half-written state hash {k}: {fvs:?}"
        );
    }
    let key_set: BTreeSet<String> = conn.smembers("NEIGH_TABLE_KEY_SET").unwrap();
    let del_set: BTreeSet<String> = conn.smembers("NEIGH_TABLE_DEL_SET").unwrap();
    for k in &key_set {
        let state: bool = conn.exists(format!("_NEIGH_TABLE:{k}")).unwrap();
        assert!(
            state || del_set.contains(k),
            "{k} pending with neither fields nor a DEL"
        );
    }
    key_set.len()
}

#[test]
fn sigterm_in_the_middle_of_a_burst_exits_0_with_whole_operations() {
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    let burst = lines("add", 0..20_000, 1);
    let elapsed = std::thread::scope(|s| {
        let adder = s.spawn(|| ip_batch(&topo, &burst));
        // SIGTERM once the burst is being written.
        let mut conn = redis.conn(0).unwrap();
        wait_for("the first writes of the burst", || {
            let n: usize = conn.scard("NEIGH_TABLE_KEY_SET").unwrap();
            (n > 0).then_some(())
        });
        let t0 = Instant::now();
        daemon.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = daemon.wait_timeout(Duration::from_secs(10)).unwrap();
        let elapsed = t0.elapsed();
        assert_eq!(status.code(), Some(0), "{}", daemon.log());
        adder.join().unwrap();
        elapsed
    });
    // The issue asks for 2 s; SHUTDOWN_FLUSH_LIMIT is 2 s, so allow slack
    // for a loaded CI machine in the assertion and log the figure.
    eprintln!("SIGTERM to exit: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "exit took {elapsed:?}");
    let pending = assert_pending_whole(&redis);
    assert!(pending > 0 && pending <= 20_000, "{pending}");
    // What was written is what the kernel has (a prefix of the burst, in
    // any order): every popped entry is one of the burst with its MAC.
    let kernel = kernel_table(&topo);
    let appl = consumed_table(&redis);
    for (k, mac) in &appl {
        assert_eq!(kernel.get(k), Some(mac), "{k}");
    }
}
