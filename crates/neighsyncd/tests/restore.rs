//! `neighsyncd restore` against a real redis-server and the real kernel in
//! network namespaces: a DUT namespace with Ethernet0 / Ethernet4, each a veth
//! to its own peer namespace whose end (`eth0`) answers ARP and NS.
//!
//! The job runs inside the DUT namespace on a thread that entered it
//! (`setns`) with a current_thread tokio runtime, so its rtnetlink and
//! AF_PACKET sockets belong to that namespace.

use std::time::{Duration, Instant};

use neighsyncd::restore::{run, RestoreArgs, RestoreMode, RestoreReport};
use swss::DbConfig;
use testbed::netns::{NeighTopology, PEER_IFNAME};
use testbed::redis_server::RedisServer;

const APPL_DB: u32 = 0;
const STATE_DB: u32 = 6;

// ===== namespaces =====

/// One peer: the far end (`eth0` in its own namespace) of DUT port `port`.
struct Peer {
    port: String,
    mac: String,
    v4: String,
    v6: String,
}

/// DUT namespace with Ethernet0 (10.0.0.1/24, fc00::1/64) and Ethernet4
/// (10.0.1.1/24, fc00:1::1/64), and two peers (.2 / ::2), from
/// [`NeighTopology`] (DAD off, carrier up). Removed on drop.
struct Topology {
    net: NeighTopology,
    peers: Vec<Peer>,
}

impl Topology {
    fn new() -> Topology {
        Topology::with_ports(["Ethernet0", "Ethernet4"])
    }

    /// As [`Topology::new`] with other DUT port names (veths all the same;
    /// the restore job treats `Vlan*` / `PortChannel*` names specially).
    fn with_ports(ports: [&str; 2]) -> Topology {
        let net = NeighTopology::with_ports(&ports).expect("namespaces");
        let peers = (0..ports.len())
            .map(|i| Peer {
                port: net.port(i).to_owned(),
                mac: net.peer_mac(i).expect("peer MAC"),
                v4: NeighTopology::peer_ip4(i).to_string(),
                v6: NeighTopology::peer_ip6(i).to_string(),
            })
            .collect();
        Topology { net, peers }
    }

    /// `ip -n <dut> args...`, panicking with `ip`'s stderr on failure.
    fn dut_ip(&self, args: &[&str]) -> String {
        self.net.dut().ip(args).expect("ip in the DUT")
    }

    /// `ip neigh show to <ip> dev <port>` in the DUT: `(lladdr, state)`.
    fn dut_neigh(&self, port: &str, addr: &str) -> Option<(String, String)> {
        let out = self.dut_ip(&["neigh", "show", "to", addr, "dev", port]);
        let line = out.lines().find(|l| !l.trim().is_empty())?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let mac = words
            .iter()
            .position(|w| *w == "lladdr")
            .and_then(|i| words.get(i + 1))
            .map(|m| m.to_string())
            .unwrap_or_default();
        let state = words.last().map(|s| s.to_string()).unwrap_or_default();
        Some((mac, state))
    }

    /// Polls for up to 10 s until the DUT has `addr` on `port` with `mac`
    /// and state REACHABLE; returns the last seen entry.
    fn wait_reachable(&self, port: &str, addr: &str, mac: &str) -> Option<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.dut_neigh(port, addr);
            if seen
                .as_ref()
                .is_some_and(|(m, s)| m == mac && s == "REACHABLE")
                || Instant::now() > deadline
            {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs the restore job inside the DUT namespace (a thread that
    /// entered it, with a current_thread runtime).
    fn run_restore(&self, cfg: &DbConfig, args: &RestoreArgs) -> RestoreReport {
        self.net.dut().run_in(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(run(cfg, args)).expect("restore failed")
        })
    }
}

/// The reachable entry `wait_reachable` should see for `peer`.
fn reachable(peer: &Peer) -> Option<(String, String)> {
    Some((peer.mac.clone(), "REACHABLE".to_string()))
}

// ===== redis =====

fn hset(conn: &mut redis::Connection, key: &str, field: &str, value: &str) {
    let _: i64 = redis::cmd("HSET")
        .arg(key)
        .arg(field)
        .arg(value)
        .query(conn)
        .expect("HSET");
}

fn hget(conn: &mut redis::Connection, key: &str, field: &str) -> Option<String> {
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query(conn)
        .expect("HGET")
}

fn neigh_entry(appl: &mut redis::Connection, port: &str, addr: &str, mac: &str, family: &str) {
    let key = format!("NEIGH_TABLE:{port}:{addr}");
    let _: i64 = redis::cmd("HSET")
        .arg(&key)
        .arg("neigh")
        .arg(mac)
        .arg("family")
        .arg(family)
        .query(appl)
        .expect("HSET");
}

/// NEIGH_TABLE entries for both peers, IPv4 and IPv6, with their real MACs.
fn peer_entries(topo: &Topology, appl: &mut redis::Connection) {
    for p in &topo.peers {
        neigh_entry(appl, &p.port, &p.v4, &p.mac, "IPv4");
        neigh_entry(appl, &p.port, &p.v6, &p.mac, "IPv6");
    }
}

fn enable_system_warm_reboot(state: &mut redis::Connection) {
    hset(state, "WARM_RESTART_ENABLE_TABLE|system", "enable", "true");
    hset(state, "WARM_RESTART_TABLE|neighsyncd", "restore_count", "1");
}

fn flag(state: &mut redis::Connection) -> Option<String> {
    hget(state, "NEIGH_RESTORE_TABLE|Flags", "restored")
}

fn fast_args() -> RestoreArgs {
    RestoreArgs {
        timeout: Duration::from_secs(3),
        pass_interval: Duration::from_millis(200),
        settle: Duration::ZERO,
    }
}

fn setup() -> (RedisServer, DbConfig, redis::Connection, redis::Connection) {
    let server = RedisServer::start().expect("redis-server");
    let cfg = DbConfig::load(server.db_config_path()).expect("database_config.json");
    let appl = server.conn(APPL_DB).expect("APPL_DB");
    let state = server.conn(STATE_DB).expect("STATE_DB");
    (server, cfg, appl, state)
}

// ===== tests =====

#[test]
fn warm_restart_disabled_writes_restore_count_zero_and_no_flag() {
    let (_server, cfg, mut appl, mut state) = setup();
    let topo = Topology::new();
    peer_entries(&topo, &mut appl);
    // a stale count from an earlier warm restart is reset
    hset(
        &mut state,
        "WARM_RESTART_TABLE|neighsyncd",
        "restore_count",
        "4",
    );

    let report = topo.run_restore(&cfg, &fast_args());

    assert_eq!(report.mode, RestoreMode::Cold);
    assert!(!report.flag_set);
    assert_eq!(
        hget(&mut state, "WARM_RESTART_TABLE|neighsyncd", "restore_count").as_deref(),
        Some("0")
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg("NEIGH_RESTORE_TABLE|Flags")
        .query(&mut state)
        .unwrap();
    assert_eq!(exists, 0);
    assert_eq!(topo.dut_neigh("Ethernet0", "10.0.0.2"), None);
}

#[test]
fn docker_warm_restart_sets_flag_and_leaves_kernel_alone() {
    let (_server, cfg, mut appl, mut state) = setup();
    let topo = Topology::new();
    peer_entries(&topo, &mut appl);
    hset(
        &mut state,
        "WARM_RESTART_ENABLE_TABLE|swss",
        "enable",
        "true",
    );
    hset(
        &mut state,
        "WARM_RESTART_TABLE|neighsyncd",
        "restore_count",
        "2",
    );

    let report = topo.run_restore(&cfg, &fast_args());

    assert_eq!(report.mode, RestoreMode::DockerWarmRestart);
    assert_eq!(flag(&mut state).as_deref(), Some("true"));
    // incr = false: the count is not touched
    assert_eq!(
        hget(&mut state, "WARM_RESTART_TABLE|neighsyncd", "restore_count").as_deref(),
        Some("2")
    );
    for p in &topo.peers {
        assert_eq!(topo.dut_neigh(&p.port, &p.v4), None, "{} added", &p.v4);
        assert_eq!(topo.dut_neigh(&p.port, &p.v6), None, "{} added", &p.v6);
    }
    assert_eq!(report.total_restored(), 0);
}

#[test]
fn system_warm_reboot_restores_neighbors_and_they_become_reachable() {
    let (_server, cfg, mut appl, mut state) = setup();
    let topo = Topology::new();
    peer_entries(&topo, &mut appl);
    enable_system_warm_reboot(&mut state);
    // the DUT learns its neighbors, then loses them as in a reboot
    for p in &topo.peers {
        topo.dut_ip(&[
            "neigh",
            "replace",
            &p.v4,
            "lladdr",
            &p.mac,
            "dev",
            &p.port,
            "nud",
            "reachable",
        ]);
    }
    topo.dut_ip(&["neigh", "flush", "all"]);
    for p in &topo.peers {
        assert_eq!(topo.dut_neigh(&p.port, &p.v4), None);
        assert_eq!(topo.dut_neigh(&p.port, &p.v6), None);
    }

    let report = topo.run_restore(&cfg, &fast_args());

    assert_eq!(report.mode, RestoreMode::SystemWarmReboot);
    assert!(report.flag_set);
    assert_eq!(flag(&mut state).as_deref(), Some("true"));
    assert!(report.timed_out.is_empty(), "{report:?}");
    assert_eq!(report.skipped_malformed, 0);
    for p in &topo.peers {
        let r = &report.interfaces[p.port.as_str()];
        assert_eq!((r.restored, r.failed), (2, 0), "{}: {report:?}", &p.port);
        for addr in [&p.v4, &p.v6] {
            let seen = topo.wait_reachable(&p.port, addr, &p.mac);
            assert_eq!(seen, reachable(p), "{} {addr}", &p.port);
        }
    }
    assert_eq!(
        hget(&mut state, "WARM_RESTART_TABLE|neighsyncd", "restore_count").as_deref(),
        Some("1")
    );
}

#[test]
fn interface_without_carrier_times_out_and_flag_is_still_set() {
    let (_server, cfg, mut appl, mut state) = setup();
    let topo = Topology::new();
    peer_entries(&topo, &mut appl);
    enable_system_warm_reboot(&mut state);
    // peer end down: the DUT's Ethernet4 is admin up but has no carrier
    topo.net
        .peer(1)
        .ip(&["link", "set", PEER_IFNAME, "down"])
        .expect("peer down");
    let deadline = Instant::now() + Duration::from_secs(10);
    while topo
        .dut_ip(&["link", "show", "Ethernet4"])
        .contains("LOWER_UP")
    {
        assert!(Instant::now() < deadline, "Ethernet4 kept its carrier");
        std::thread::sleep(Duration::from_millis(50));
    }
    let args = RestoreArgs {
        timeout: Duration::from_millis(1500),
        ..fast_args()
    };

    let report = topo.run_restore(&cfg, &args);

    assert!(report.flag_set);
    assert_eq!(flag(&mut state).as_deref(), Some("true"));
    assert_eq!(report.timed_out, vec!["Ethernet4".to_string()]);
    assert!(report.passes > 1, "retried in several passes: {report:?}");
    assert!(!report.interfaces.contains_key("Ethernet4"));
    assert_eq!(report.interfaces["Ethernet0"].restored, 2);
    let p1 = &topo.peers[1];
    assert_eq!(topo.dut_neigh("Ethernet4", &p1.v4), None);
    assert_eq!(topo.dut_neigh("Ethernet4", &p1.v6), None);
    let p0 = &topo.peers[0];
    assert_eq!(
        topo.wait_reachable("Ethernet0", &p0.v4, &p0.mac),
        reachable(p0)
    );
}

#[test]
fn admin_down_interface_is_not_restored() {
    let (_server, cfg, mut appl, mut state) = setup();
    let topo = Topology::new();
    peer_entries(&topo, &mut appl);
    enable_system_warm_reboot(&mut state);
    topo.dut_ip(&["link", "set", "Ethernet4", "down"]);
    let args = RestoreArgs {
        timeout: Duration::from_millis(800),
        ..fast_args()
    };

    let report = topo.run_restore(&cfg, &args);

    assert_eq!(flag(&mut state).as_deref(), Some("true"));
    assert_eq!(report.timed_out, vec!["Ethernet4".to_string()]);
    assert_eq!(topo.dut_neigh("Ethernet4", &topo.peers[1].v4), None);
    assert_eq!(report.interfaces["Ethernet0"].restored, 2);
}

#[test]
fn malformed_entries_are_skipped_and_the_rest_restored() {
    let (_server, cfg, mut appl, mut state) = setup();
    let topo = Topology::new();
    peer_entries(&topo, &mut appl);
    enable_system_warm_reboot(&mut state);
    // bad MAC
    neigh_entry(
        &mut appl,
        "Ethernet0",
        "10.0.0.77",
        "00:11:22:33:44",
        "IPv4",
    );
    // family missing
    hset(
        &mut appl,
        "NEIGH_TABLE:Ethernet0:10.0.0.78",
        "neigh",
        "00:11:22:33:44:78",
    );
    // lo is skipped by design, not counted as malformed
    neigh_entry(&mut appl, "lo", "127.0.0.5", "00:00:00:00:00:00", "IPv4");

    let report = topo.run_restore(&cfg, &fast_args());

    assert_eq!(report.skipped_malformed, 2);
    assert!(report.flag_set);
    assert_eq!(flag(&mut state).as_deref(), Some("true"));
    assert!(report.timed_out.is_empty(), "{report:?}");
    assert_eq!(report.total_restored(), 4);
    assert_eq!(topo.dut_neigh("Ethernet0", "10.0.0.77"), None);
    assert_eq!(topo.dut_neigh("Ethernet0", "10.0.0.78"), None);
    for p in &topo.peers {
        assert_eq!(topo.wait_reachable(&p.port, &p.v6, &p.mac), reachable(p));
    }
}

#[test]
fn existing_kernel_neighbor_is_kept_and_counted() {
    let (_server, cfg, mut appl, mut state) = setup();
    let topo = Topology::new();
    peer_entries(&topo, &mut appl);
    enable_system_warm_reboot(&mut state);
    let p0 = &topo.peers[0];
    // already learned (EEXIST on add): not an error
    topo.dut_ip(&[
        "neigh", "add", &p0.v4, "lladdr", &p0.mac, "dev", &p0.port, "nud", "stale",
    ]);

    let report = topo.run_restore(&cfg, &fast_args());

    assert!(report.timed_out.is_empty(), "{report:?}");
    assert_eq!(report.interfaces["Ethernet0"].restored, 2);
    assert_eq!(report.interfaces["Ethernet0"].failed, 0);
    assert_eq!(
        topo.wait_reachable(&p0.port, &p0.v4, &p0.mac),
        reachable(p0)
    );
}

#[test]
fn vlan_and_portchannel_wait_for_members_in_state_db() {
    let (_server, cfg, mut appl, mut state) = setup();
    let topo = Topology::with_ports(["Vlan1000", "PortChannel0001"]);
    peer_entries(&topo, &mut appl);
    enable_system_warm_reboot(&mut state);
    // Vlan1000 has a member; PortChannel0001 has none (a member of another
    // LAG whose name shares the prefix does not count)
    hset(
        &mut state,
        "VLAN_MEMBER_TABLE|Vlan1000|Ethernet8",
        "tagging_mode",
        "untagged",
    );
    hset(
        &mut state,
        "LAG_MEMBER_TABLE|PortChannel00011|Ethernet12",
        "status",
        "enabled",
    );
    // an interface that does not exist at all
    neigh_entry(
        &mut appl,
        "Ethernet96",
        "10.9.0.2",
        "02:00:00:aa:09:02",
        "IPv4",
    );
    let args = RestoreArgs {
        timeout: Duration::from_millis(1500),
        settle: Duration::from_millis(300),
        ..fast_args()
    };

    let report = topo.run_restore(&cfg, &args);

    assert_eq!(flag(&mut state).as_deref(), Some("true"));
    assert_eq!(
        report.timed_out,
        vec!["Ethernet96".to_string(), "PortChannel0001".to_string()]
    );
    assert_eq!(report.interfaces["Vlan1000"].restored, 2);
    assert!(!report.interfaces.contains_key("PortChannel0001"));
    let (vlan, lag) = (&topo.peers[0], &topo.peers[1]);
    assert_eq!(
        topo.wait_reachable("Vlan1000", &vlan.v6, &vlan.mac),
        reachable(vlan)
    );
    assert_eq!(topo.dut_neigh("PortChannel0001", &lag.v4), None);
    assert_eq!(topo.dut_neigh("PortChannel0001", &lag.v6), None);
}
