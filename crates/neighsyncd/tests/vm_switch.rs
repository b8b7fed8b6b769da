//! neighsyncd on SONiC's real link types, on a real kernel: a Vlan SVI on a
//! VLAN-aware `Bridge`, a bond `PortChannel`, an 802.1Q sub-interface, a
//! VRF master, EVPN, dual-ToR (with its `NEIGH_FAILED_TABLE` for nbrmgrd)
//! and a warm restart across all of them (docs/behavior.md b.2, b.3, c).
//! Every link is built with `ip link` (see
//! `testbed::switch::SwitchTopology`), neighbours are learned by ping or
//! added with `ip neigh`, each test has its own redis-server, and results
//! are checked through a ConsumerStateTable (orchagent's or nbrmgrd's pops)
//! and the raw ProducerStateTable keys.
//!
//! The build machines' kernel has no 8021q/bonding/vrf, so these tests are
//! `#[ignore]`d on the host and run in the VM tier: `scripts/test-vm.sh`
//! boots a Debian kernel under QEMU and runs this binary with `--ignored`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{appl_table, family, model_table, pending, start_daemon, Pending, READY};
use redis::Commands;
use swss::consumer_state::{KeyOpFieldValues, Op};
use swss::{ConsumerStateTable, DbConfig, DbConnector};
use testbed::daemon::Daemon;
use testbed::redis_server::RedisServer;
use testbed::switch::{
    enslave, lag_add_member, SwitchTopology, PORT_CHANNEL, PORT_CHANNEL_MEMBER, SUB_IF,
    SUB_IF_PARENT, VLAN, VRF, VRF_PORT,
};

/// Upper bound of every wait: the guest runs under TCG (no KVM), several
/// times slower than the host.
const DEADLINE: Duration = Duration::from_secs(30);

const CONFIG_DB: u32 = 4;
const STATE_DB: u32 = 6;

/// The log line printed once per finished kernel resync (a CONFIG_DB change
/// that flips a fact triggers one).
const RESYNCED: &str = "resynced with the kernel";

// ===== helpers =====

/// Polls `f` every 20 ms until it returns `Some`; panics after [`DEADLINE`].
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pops everything pending in APPL_DB `table` as orchagent does (batch 128,
/// merged per key).
fn drain(redis: &RedisServer, table: &str) -> BTreeMap<String, Vec<KeyOpFieldValues>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = DbConfig::load(redis.db_config_path()).unwrap();
        let db = DbConnector::new(cfg.location("APPL_DB").unwrap()).unwrap();
        let mut consumer = ConsumerStateTable::new(&db, table, 128).await.unwrap();
        consumer.drain().await.unwrap()
    })
}

/// What a consumer popped, reduced to the last op per key: `Some((neigh,
/// family))` for a SET, `None` for a DEL.
type Popped = BTreeMap<String, Option<(String, String)>>;

fn last_ops(popped: BTreeMap<String, Vec<KeyOpFieldValues>>, into: &mut Popped) {
    for (key, ops) in popped {
        let Some(last) = ops.last() else { continue };
        let v = match last.op {
            Op::Set => {
                let get = |f: &str| {
                    last.fvs
                        .iter()
                        .find(|(k, _)| k == f)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                assert_eq!(
                    last.fvs.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
                    ["neigh", "family"],
                    "{key}: field order"
                );
                Some((get("neigh"), get("family")))
            }
            Op::Del => None,
        };
        into.insert(key, v);
    }
}

/// Pops NEIGH_TABLE until every `(key, op)` of `want` has been seen as the
/// key's latest op (SET with `(mac, family)`, or DEL for `None`); returns
/// everything popped meanwhile.
fn pop_until(redis: &RedisServer, want: &[(&str, Option<(&str, &str)>)]) -> Popped {
    let mut seen = Popped::new();
    wait_for(&format!("NEIGH_TABLE pops {want:?}"), || {
        last_ops(drain(redis, "NEIGH_TABLE"), &mut seen);
        want.iter()
            .all(|(k, v)| {
                seen.get(*k)
                    .map(|o| o.as_ref().map(|(m, f)| (m.as_str(), f.as_str())))
                    == Some(*v)
            })
            .then_some(())
    });
    seen
}

fn set<'a>(mac: &'a str, family: &'a str) -> Option<(&'a str, &'a str)> {
    Some((mac, family))
}

/// APPL_DB `NEIGH_TABLE:<ifname>:*` as the consumer left it: ip -> mac.
fn appl_neighbors(redis: &RedisServer, ifname: &str) -> BTreeMap<String, String> {
    let mut c = redis.conn(0).unwrap();
    let prefix = format!("NEIGH_TABLE:{ifname}:");
    let keys: Vec<String> = c.keys(format!("{prefix}*")).unwrap();
    keys.into_iter()
        .map(|k| {
            let mac: String = c.hget(&k, "neigh").unwrap();
            (k[prefix.len()..].to_owned(), mac)
        })
        .collect()
}

/// The kernel's resolved neighbours on `ifname` (with a MAC, in a state
/// neighsyncd writes: REACHABLE, STALE, DELAY, PROBE, PERMANENT), IPv6
/// link-local ones left out: ip -> mac.
fn kernel_neighbors(topo: &SwitchTopology, ifname: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for fam in ["-4", "-6"] {
        let text = topo
            .dut()
            .ip(&[fam, "-o", "neigh", "show", "dev", ifname])
            .unwrap();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (Some(ip), Some(state)) = (words.first(), words.last()) else {
                continue;
            };
            let mac = words
                .iter()
                .position(|w| *w == "lladdr")
                .and_then(|i| words.get(i + 1));
            let written = ["REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT"].contains(state);
            if let (Some(mac), true, false) = (mac, written, ip.starts_with("fe80:")) {
                out.insert((*ip).to_owned(), (*mac).to_owned());
            }
        }
    }
    out
}

/// Nothing pending for `key` (not in KEY_SET, no state hash).
fn assert_not_pending(appl: &mut redis::Connection, key: &str) {
    let p = pending(appl, key);
    assert_eq!(
        p,
        Pending {
            state: vec![],
            in_key_set: false,
            in_del_set: false
        },
        "{key} must not be written"
    );
}

/// A redis-server, the switch topology, and neighsyncd running in the DUT
/// (started after `before_start`, past its cold-start dump).
struct Vm {
    daemon: Daemon,
    topo: SwitchTopology,
    redis: RedisServer,
}

impl Vm {
    fn start(before_start: impl FnOnce(&RedisServer, &SwitchTopology)) -> Vm {
        Vm::start_on(SwitchTopology::new().unwrap(), before_start)
    }

    /// As [`Vm::start`], on `topo` (e.g. [`SwitchTopology::vlan_only`]).
    fn start_on(
        topo: SwitchTopology,
        before_start: impl FnOnce(&RedisServer, &SwitchTopology),
    ) -> Vm {
        let redis = RedisServer::start().unwrap();
        before_start(&redis, &topo);
        let mut daemon = start_daemon(topo.dut(), &redis, &[]);
        daemon.wait_for_log(READY, DEADLINE).unwrap();
        Vm {
            daemon,
            topo,
            redis,
        }
    }

    fn appl(&self) -> redis::Connection {
        self.redis.conn(0).unwrap()
    }

    fn ip(&self, args: &[&str]) {
        self.topo.dut().ip(args).unwrap();
    }

    fn neigh_add(&self, ifname: &str, ip: &str, mac: &str) {
        self.topo.dut().neigh_replace(ifname, ip, mac).unwrap();
    }

    fn neigh_del(&self, ifname: &str, ip: &str) {
        self.ip(&["neigh", "del", ip, "dev", ifname]);
    }

    fn config_hset(&self, key: &str, field: &str, value: &str) {
        let mut c = self.redis.conn(CONFIG_DB).unwrap();
        let () = c.hset(key, field, value).unwrap();
    }

    /// Adds `marker` (a permanent IPv4 neighbour on `ifname`) and waits
    /// until its SET is pending: neighbour events are handled in kernel
    /// order, so every earlier event has been decided by then.
    fn barrier(&self, ifname: &str, ip: &str, mac: &str) {
        self.neigh_add(ifname, ip, mac);
        let key = format!("{ifname}:{ip}");
        let mut appl = self.appl();
        wait_for(&format!("marker {key} pending"), || {
            let p = pending(&mut appl, &key);
            (p.in_key_set && p.state.iter().any(|(f, v)| f == "neigh" && v == mac)).then_some(())
        });
    }

    fn resyncs(&self) -> usize {
        self.daemon.log().matches(RESYNCED).count()
    }
}

// ===== Vlan =====

/// Vlan1000 on the VLAN-aware Bridge with Ethernet0 as untagged member:
/// neighbours are keyed `Vlan1000:<ip>` (never the bridge or the member
/// port), broadcast MAC and NOARP are dropped, and deleting the Vlan
/// deletes its neighbours (and only those).
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn vlan_neighbors_keyed_by_svi_filters_and_vlan_delete() {
    let vm = Vm::start(|_, _| {});
    let mut appl = vm.appl();
    drain(&vm.redis, "NEIGH_TABLE");
    let mac = vm.topo.peer_mac(VLAN).unwrap();

    // Real ARP and ND through the bridge.
    vm.topo.ping_peer(VLAN).unwrap();
    let popped = pop_until(
        &vm.redis,
        &[
            ("Vlan1000:192.168.0.2", set(&mac, "IPv4")),
            ("Vlan1000:fc02:1000::2", set(&mac, "IPv6")),
        ],
    );
    for key in popped.keys() {
        assert!(
            key.starts_with("Vlan1000:"),
            "only Vlan1000 neighbours: {popped:?}"
        );
    }
    let stored: Vec<(String, String)> = appl.hgetall("NEIGH_TABLE:Vlan1000:192.168.0.2").unwrap();
    assert_eq!(
        stored,
        vec![
            ("neigh".into(), mac.clone()),
            ("family".into(), "IPv4".into())
        ]
    );

    // A neighbour on another interface, to check the Vlan delete is scoped.
    vm.neigh_add(PORT_CHANNEL, "10.0.1.40", "02:00:00:00:01:40");

    // Broadcast MAC and NOARP (no EVPN) are dropped.
    vm.neigh_add(VLAN, "192.168.0.77", "ff:ff:ff:ff:ff:ff");
    vm.ip(&[
        "neigh",
        "add",
        "192.168.0.78",
        "lladdr",
        "02:00:00:00:00:78",
        "dev",
        VLAN,
        "nud",
        "noarp",
    ]);
    vm.barrier(VLAN, "192.168.0.79", "02:00:00:00:00:79");
    assert_not_pending(&mut appl, "Vlan1000:192.168.0.77");
    assert_not_pending(&mut appl, "Vlan1000:192.168.0.78");
    let popped = pop_until(
        &vm.redis,
        &[
            ("Vlan1000:192.168.0.79", set("02:00:00:00:00:79", "IPv4")),
            (
                "PortChannel0001:10.0.1.40",
                set("02:00:00:00:01:40", "IPv4"),
            ),
        ],
    );
    assert_eq!(popped.len(), 2, "{popped:?}");

    // The Vlan goes: every Vlan1000 neighbour is deleted, nothing else.
    let before = appl_neighbors(&vm.redis, VLAN);
    assert_eq!(
        before.keys().cloned().collect::<BTreeSet<_>>(),
        ["192.168.0.2", "192.168.0.79", "fc02:1000::2"]
            .map(String::from)
            .into(),
    );
    vm.ip(&["link", "del", "dev", VLAN]);
    let want: Vec<(String, Option<(&str, &str)>)> = before
        .keys()
        .map(|ip| (format!("Vlan1000:{ip}"), None))
        .collect();
    let want: Vec<(&str, Option<(&str, &str)>)> =
        want.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let popped = pop_until(&vm.redis, &want);
    assert_eq!(popped.len(), want.len(), "{popped:?}");
    assert!(appl_neighbors(&vm.redis, VLAN).is_empty());
    assert_eq!(
        appl_neighbors(&vm.redis, PORT_CHANNEL),
        BTreeMap::from([("10.0.1.40".to_owned(), "02:00:00:00:01:40".to_owned())])
    );
}

// ===== IPv6 link-local per interface type =====

/// `ipv6_use_link_local_only` is looked up in the table of the interface's
/// type, under its whole name: `VLAN_INTERFACE|Vlan1000`,
/// `PORTCHANNEL_INTERFACE|PortChannel0001`, `INTERFACE|Ethernet8.10`. The
/// flag in the wrong table enables nothing.
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn ipv6_link_local_follows_the_table_of_the_interface_type() {
    let vm = Vm::start(|_, _| {});
    let mut appl = vm.appl();
    drain(&vm.redis, "NEIGH_TABLE");
    let ll = [
        (VLAN, "fe80::1000:2", "02:00:00:10:00:02"),
        (PORT_CHANNEL, "fe80::1:2", "02:00:00:00:01:02"),
        (SUB_IF, "fe80::2:2", "02:00:00:00:02:02"),
    ];
    for (ifname, ip, mac) in ll {
        vm.neigh_add(ifname, ip, mac);
    }
    vm.barrier(VLAN, "192.168.0.50", "02:00:00:00:00:50");
    for (ifname, ip, _) in ll {
        assert_not_pending(&mut appl, &format!("{ifname}:{ip}"));
    }
    drain(&vm.redis, "NEIGH_TABLE");

    // The flag in INTERFACE for the Vlan and the PortChannel: not their
    // table. INTERFACE|Ethernet8.10 (same subscription, so handled after
    // them) is the sub-interface's: its neighbour shows the two were
    // applied.
    vm.config_hset("INTERFACE|Vlan1000", "ipv6_use_link_local_only", "enable");
    vm.config_hset(
        "INTERFACE|PortChannel0001",
        "ipv6_use_link_local_only",
        "enable",
    );
    vm.config_hset(
        "INTERFACE|Ethernet8.10",
        "ipv6_use_link_local_only",
        "enable",
    );
    let popped = pop_until(
        &vm.redis,
        &[("Ethernet8.10:fe80::2:2", set("02:00:00:00:02:02", "IPv6"))],
    );
    // The resync the change triggered has finished: nothing else came.
    wait_for("a resync after the INTERFACE changes", || {
        (vm.resyncs() >= 1).then_some(())
    });
    assert_not_pending(&mut appl, "Vlan1000:fe80::1000:2");
    assert_not_pending(&mut appl, "PortChannel0001:fe80::1:2");
    assert_eq!(
        popped.keys().collect::<Vec<_>>(),
        ["Ethernet8.10:fe80::2:2"]
    );

    // The right tables.
    vm.config_hset(
        "VLAN_INTERFACE|Vlan1000",
        "ipv6_use_link_local_only",
        "enable",
    );
    vm.config_hset(
        "PORTCHANNEL_INTERFACE|PortChannel0001",
        "ipv6_use_link_local_only",
        "enable",
    );
    pop_until(
        &vm.redis,
        &[
            ("Vlan1000:fe80::1000:2", set("02:00:00:10:00:02", "IPv6")),
            (
                "PortChannel0001:fe80::1:2",
                set("02:00:00:00:01:02", "IPv6"),
            ),
        ],
    );

    // New link-local neighbours are now written directly; a link-local one
    // on the VRF port (INTERFACE|Ethernet12 not enabled) still is not.
    vm.neigh_add(VLAN, "fe80::1000:3", "02:00:00:10:00:03");
    vm.neigh_add(PORT_CHANNEL, "fe80::1:3", "02:00:00:00:01:03");
    vm.neigh_add(VRF_PORT, "fe80::3:3", "02:00:00:00:03:03");
    vm.barrier(VRF_PORT, "10.0.3.50", "02:00:00:00:03:50");
    pop_until(
        &vm.redis,
        &[
            ("Vlan1000:fe80::1000:3", set("02:00:00:10:00:03", "IPv6")),
            (
                "PortChannel0001:fe80::1:3",
                set("02:00:00:00:01:03", "IPv6"),
            ),
        ],
    );
    assert_not_pending(&mut appl, "Ethernet12:fe80::3:3");
    let stored: bool = appl.exists("NEIGH_TABLE:Ethernet12:fe80::3:3").unwrap();
    assert!(!stored);
}

// ===== PortChannel =====

/// PortChannel0001 (a bond with member Ethernet4): neighbours keyed
/// `PortChannel0001:<ip>`; APPL_DB follows the kernel when the member
/// leaves (carrier lost), when the PortChannel goes down, and when it is
/// deleted.
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn port_channel_neighbors_follow_member_removal_down_and_delete() {
    let vm = Vm::start(|_, _| {});
    drain(&vm.redis, "NEIGH_TABLE");
    let mac = vm.topo.peer_mac(PORT_CHANNEL).unwrap();

    vm.topo.ping_peer(PORT_CHANNEL).unwrap();
    vm.neigh_add(PORT_CHANNEL, "10.0.1.50", "02:00:00:00:01:50");
    let popped = pop_until(
        &vm.redis,
        &[
            ("PortChannel0001:10.0.1.2", set(&mac, "IPv4")),
            ("PortChannel0001:fc00:1::2", set(&mac, "IPv6")),
            (
                "PortChannel0001:10.0.1.50",
                set("02:00:00:00:01:50", "IPv4"),
            ),
        ],
    );
    assert!(
        popped.keys().all(|k| k.starts_with("PortChannel0001:")),
        "never the member port: {popped:?}"
    );

    // The member leaves: the bond loses its carrier, and with its last
    // member its MAC (a random one), so the kernel flushes its neighbours.
    // APPL_DB follows the kernel: exactly what the kernel dropped is DELeted.
    let before = appl_neighbors(&vm.redis, PORT_CHANNEL);
    vm.ip(&["link", "set", "dev", PORT_CHANNEL_MEMBER, "nomaster"]);
    let kernel = wait_for("kernel flush after the member left", || {
        let k = kernel_neighbors(&vm.topo, PORT_CHANNEL);
        (!k.contains_key("10.0.1.2")).then_some(k)
    });
    let mut popped = Popped::new();
    wait_for("APPL_DB equals the kernel on PortChannel0001", || {
        last_ops(drain(&vm.redis, "NEIGH_TABLE"), &mut popped);
        (appl_neighbors(&vm.redis, PORT_CHANNEL) == kernel_neighbors(&vm.topo, PORT_CHANNEL))
            .then_some(())
    });
    let dropped: Popped = before
        .keys()
        .filter(|ip| !kernel.contains_key(*ip))
        .map(|ip| (format!("PortChannel0001:{ip}"), None))
        .collect();
    assert!(dropped.contains_key("PortChannel0001:10.0.1.2"));
    assert_eq!(popped, dropped, "kernel after the member left: {kernel:?}");

    // Member back, learned again.
    lag_add_member(vm.topo.dut(), PORT_CHANNEL, PORT_CHANNEL_MEMBER).unwrap();
    vm.topo.dut().wait_carrier(PORT_CHANNEL, DEADLINE).unwrap();
    vm.topo.ping(PORT_CHANNEL, "10.0.1.2").unwrap();
    vm.neigh_add(PORT_CHANNEL, "10.0.1.50", "02:00:00:00:01:50");
    pop_until(
        &vm.redis,
        &[
            ("PortChannel0001:10.0.1.2", set(&mac, "IPv4")),
            (
                "PortChannel0001:10.0.1.50",
                set("02:00:00:00:01:50", "IPv4"),
            ),
        ],
    );

    // Admin down: the kernel drops every neighbour of the PortChannel,
    // permanent ones included.
    vm.ip(&["link", "set", "dev", PORT_CHANNEL, "down"]);
    pop_until(
        &vm.redis,
        &[
            ("PortChannel0001:10.0.1.2", None),
            ("PortChannel0001:10.0.1.50", None),
        ],
    );
    assert!(kernel_neighbors(&vm.topo, PORT_CHANNEL).is_empty());
    assert!(appl_neighbors(&vm.redis, PORT_CHANNEL).is_empty());

    // Up again, then deleted: its neighbours go with it.
    vm.ip(&["link", "set", "dev", PORT_CHANNEL, "up"]);
    vm.topo.dut().wait_carrier(PORT_CHANNEL, DEADLINE).unwrap();
    vm.topo.ping(PORT_CHANNEL, "10.0.1.2").unwrap();
    vm.neigh_add(PORT_CHANNEL, "10.0.1.51", "02:00:00:00:01:51");
    pop_until(
        &vm.redis,
        &[
            ("PortChannel0001:10.0.1.2", set(&mac, "IPv4")),
            (
                "PortChannel0001:10.0.1.51",
                set("02:00:00:00:01:51", "IPv4"),
            ),
        ],
    );
    vm.ip(&["link", "del", "dev", PORT_CHANNEL]);
    pop_until(
        &vm.redis,
        &[
            ("PortChannel0001:10.0.1.2", None),
            ("PortChannel0001:10.0.1.51", None),
        ],
    );
    assert!(appl_neighbors(&vm.redis, PORT_CHANNEL).is_empty());
}

// ===== sub-interface =====

/// Ethernet8.10 (802.1Q on Ethernet8): keyed `Ethernet8.10:<ip>`, never
/// under the parent; deleting the parent takes the sub-interface and its
/// neighbours along.
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn sub_interface_neighbors_keyed_by_sub_interface_name() {
    let vm = Vm::start(|_, _| {});
    drain(&vm.redis, "NEIGH_TABLE");
    let mac = vm.topo.peer_mac(SUB_IF).unwrap();
    vm.topo.ping_peer(SUB_IF).unwrap();
    let popped = pop_until(
        &vm.redis,
        &[
            ("Ethernet8.10:10.0.2.2", set(&mac, "IPv4")),
            ("Ethernet8.10:fc00:2::2", set(&mac, "IPv6")),
        ],
    );
    assert_eq!(popped.len(), 2, "{popped:?}");
    assert!(appl_neighbors(&vm.redis, SUB_IF_PARENT).is_empty());

    vm.ip(&["link", "del", "dev", SUB_IF_PARENT]);
    pop_until(
        &vm.redis,
        &[
            ("Ethernet8.10:10.0.2.2", None),
            ("Ethernet8.10:fc00:2::2", None),
        ],
    );
    assert!(appl_neighbors(&vm.redis, SUB_IF).is_empty());
}

// ===== VRF =====

/// Ethernet12 enslaved to Vrf1, no EVPN: the key is `Ethernet12:<ip>`; the
/// VRF never appears in a key, and ROUTE_TABLE is never touched.
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn vrf_without_evpn_keys_never_hold_the_vrf() {
    let vm = Vm::start(|_, _| {});
    let mut appl = vm.appl();
    drain(&vm.redis, "NEIGH_TABLE");
    let mac = vm.topo.peer_mac(VRF_PORT).unwrap();
    vm.topo.ping_peer(VRF_PORT).unwrap();
    vm.neigh_add(VRF_PORT, "10.0.3.5", "02:00:00:00:03:05");
    let popped = pop_until(
        &vm.redis,
        &[
            ("Ethernet12:10.0.3.2", set(&mac, "IPv4")),
            ("Ethernet12:fc00:3::2", set(&mac, "IPv6")),
            ("Ethernet12:10.0.3.5", set("02:00:00:00:03:05", "IPv4")),
        ],
    );
    let keys: Vec<String> = appl.keys("*").unwrap();
    for k in popped.keys().chain(&keys) {
        assert!(!k.contains(VRF), "VRF in a key: {k}");
    }
    let route_keys: Vec<String> = appl.keys("*ROUTE_TABLE*").unwrap();
    assert!(route_keys.is_empty(), "{route_keys:?}");
    // The kernel does know the master.
    let link = vm
        .topo
        .dut()
        .ip(&["-o", "link", "show", "dev", VRF_PORT])
        .unwrap();
    assert!(link.contains("master Vrf1"), "{link}");
}

// ===== EVPN =====

/// ROUTE_TABLE keys pending: (KEY_SET, DEL_SET).
fn route_sets(appl: &mut redis::Connection) -> (BTreeSet<String>, BTreeSet<String>) {
    (
        appl.smembers("ROUTE_TABLE_KEY_SET").unwrap(),
        appl.smembers("ROUTE_TABLE_DEL_SET").unwrap(),
    )
}

/// EVPN (`VXLAN_EVPN_NVO|nvo`): a SET on an interface whose master is a
/// `Vrf*` also deletes `ROUTE_TABLE:<vrf>:<ip>` (no prefix length);
/// NOARP+extern_learn is a SET, NOARP without it a DEL, PROBE is dropped;
/// an interface moved into the VRF at run time is seen with its new master
/// at once; interfaces without a Vrf master never touch ROUTE_TABLE.
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn evpn_vrf_route_delete_noarp_probe_and_runtime_enslave() {
    let vm = Vm::start(|redis, _| {
        let mut c = redis.conn(CONFIG_DB).unwrap();
        let () = c
            .hset("VXLAN_EVPN_NVO|nvo", "source_vtep", "vtep1")
            .unwrap();
        // The EVPN host routes orchagent would hold for these neighbours.
        let mut a = redis.conn(0).unwrap();
        for ip in ["10.0.3.5", "fc00:3::5", "10.0.1.60"] {
            let () = a
                .hset(format!("ROUTE_TABLE:Vrf1:{ip}"), "nexthop", "10.10.10.10")
                .unwrap();
        }
    });
    let mut appl = vm.appl();
    drain(&vm.redis, "NEIGH_TABLE");
    drain(&vm.redis, "ROUTE_TABLE");

    // A SET on a Vrf1 slave: ROUTE_TABLE DEL Vrf1:<ip>, then the neighbour.
    vm.neigh_add(VRF_PORT, "10.0.3.5", "02:00:00:00:03:05");
    vm.neigh_add(VRF_PORT, "fc00:3::5", "02:00:00:00:03:06");
    wait_for("ROUTE_TABLE DELs pending", || {
        let (keys, dels) = route_sets(&mut appl);
        let want: BTreeSet<String> = ["Vrf1:10.0.3.5", "Vrf1:fc00:3::5"].map(String::from).into();
        (keys == want && dels == want).then_some(())
    });
    let routes = drain(&vm.redis, "ROUTE_TABLE");
    for k in ["Vrf1:10.0.3.5", "Vrf1:fc00:3::5"] {
        assert_eq!(routes[k].last().unwrap().op, Op::Del, "{routes:?}");
        let exists: bool = appl.exists(format!("ROUTE_TABLE:{k}")).unwrap();
        assert!(!exists, "ROUTE_TABLE:{k} deleted by the consumer");
    }
    pop_until(
        &vm.redis,
        &[
            ("Ethernet12:10.0.3.5", set("02:00:00:00:03:05", "IPv4")),
            ("Ethernet12:fc00:3::5", set("02:00:00:00:03:06", "IPv6")),
        ],
    );

    // No Vrf master (PortChannel0001 has none yet): no ROUTE_TABLE op.
    vm.neigh_add(PORT_CHANNEL, "10.0.1.60", "02:00:00:00:01:60");
    pop_until(
        &vm.redis,
        &[(
            "PortChannel0001:10.0.1.60",
            set("02:00:00:00:01:60", "IPv4"),
        )],
    );
    assert_eq!(route_sets(&mut appl), Default::default());

    // NOARP + extern_learn (an EVPN-synced entry): a SET with the new MAC.
    vm.neigh_add(VRF_PORT, "10.0.3.6", "02:00:00:00:03:16");
    vm.neigh_add(VRF_PORT, "10.0.3.7", "02:00:00:00:03:17");
    vm.neigh_add(VRF_PORT, "10.0.3.8", "02:00:00:00:03:18");
    pop_until(
        &vm.redis,
        &[
            ("Ethernet12:10.0.3.6", set("02:00:00:00:03:16", "IPv4")),
            ("Ethernet12:10.0.3.7", set("02:00:00:00:03:17", "IPv4")),
            ("Ethernet12:10.0.3.8", set("02:00:00:00:03:18", "IPv4")),
        ],
    );
    drain(&vm.redis, "ROUTE_TABLE");
    vm.ip(&[
        "neigh",
        "replace",
        "10.0.3.6",
        "lladdr",
        "02:00:00:00:03:26",
        "dev",
        VRF_PORT,
        "nud",
        "noarp",
        "extern_learn",
    ]);
    // NOARP without extern_learn (moved to remote): a DEL.
    vm.ip(&[
        "neigh",
        "replace",
        "10.0.3.7",
        "lladdr",
        "02:00:00:00:03:17",
        "dev",
        VRF_PORT,
        "nud",
        "noarp",
    ]);
    // PROBE: dropped, the last written MAC stays. Nobody answers the
    // kernel's unicast probes; a 30 s retransmit time keeps the entry in
    // PROBE (rather than FAILED, a DEL) while the test looks.
    vm.topo
        .dut()
        .sysctl("net.ipv4.neigh.Ethernet12.retrans_time_ms", "30000")
        .unwrap();
    vm.ip(&[
        "neigh",
        "replace",
        "10.0.3.8",
        "lladdr",
        "02:00:00:00:03:28",
        "dev",
        VRF_PORT,
        "nud",
        "probe",
    ]);
    let state = vm
        .topo
        .dut()
        .ip(&["neigh", "show", "10.0.3.8", "dev", VRF_PORT])
        .unwrap();
    assert!(state.contains("PROBE"), "kernel state: {state}");
    let synced = vm
        .topo
        .dut()
        .ip(&["neigh", "show", "10.0.3.6", "dev", VRF_PORT])
        .unwrap();
    assert!(
        synced.contains("extern_learn") && synced.contains("NOARP"),
        "kernel state: {synced}"
    );
    vm.barrier(VRF_PORT, "10.0.3.9", "02:00:00:00:03:19");
    assert_not_pending(&mut appl, "Ethernet12:10.0.3.8");
    let popped = pop_until(
        &vm.redis,
        &[
            ("Ethernet12:10.0.3.6", set("02:00:00:00:03:26", "IPv4")),
            ("Ethernet12:10.0.3.7", None),
            ("Ethernet12:10.0.3.9", set("02:00:00:00:03:19", "IPv4")),
        ],
    );
    assert!(
        !popped.contains_key("Ethernet12:10.0.3.8"),
        "PROBE must be dropped: {popped:?}"
    );
    let probe_mac: Option<String> = appl
        .hget("NEIGH_TABLE:Ethernet12:10.0.3.8", "neigh")
        .unwrap();
    assert_eq!(probe_mac.as_deref(), Some("02:00:00:00:03:18"));
    // Only SETs delete host routes: 10.0.3.6 (extern_learn) and the marker.
    let routes = drain(&vm.redis, "ROUTE_TABLE");
    assert_eq!(
        routes.keys().cloned().collect::<BTreeSet<_>>(),
        ["Vrf1:10.0.3.6", "Vrf1:10.0.3.9"].map(String::from).into(),
    );

    // PortChannel0001 moved into Vrf1 at run time: the next SET on it
    // already deletes the Vrf1 host route.
    enslave(vm.topo.dut(), PORT_CHANNEL, VRF).unwrap();
    vm.neigh_add(PORT_CHANNEL, "10.0.1.60", "02:00:00:00:01:61");
    pop_until(
        &vm.redis,
        &[(
            "PortChannel0001:10.0.1.60",
            set("02:00:00:00:01:61", "IPv4"),
        )],
    );
    let routes = drain(&vm.redis, "ROUTE_TABLE");
    assert_eq!(
        routes.keys().collect::<Vec<_>>(),
        ["Vrf1:10.0.1.60"],
        "{routes:?}"
    );
    assert_eq!(routes["Vrf1:10.0.1.60"].last().unwrap().op, Op::Del);
    let exists: bool = appl.exists("ROUTE_TABLE:Vrf1:10.0.1.60").unwrap();
    assert!(!exists);
}

// ===== dual-ToR =====

/// Dual-ToR (`PEER_SWITCH` present) on Vlan1000: an unresolved neighbour
/// (INCOMPLETE, then FAILED) is written with MAC 00:00:00:00:00:00;
/// 169.254.0.0/16 is dropped (deletes too); deletes are still deleted.
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn dual_tor_on_vlan_zero_mac_link_local_v4_dropped_deletes_kept() {
    let vm = Vm::start(|redis, _| {
        let mut c = redis.conn(CONFIG_DB).unwrap();
        let () = c
            .hset("PEER_SWITCH|peer_tor", "address_ipv4", "10.1.0.33")
            .unwrap();
    });
    let mut appl = vm.appl();
    drain(&vm.redis, "NEIGH_TABLE");
    let zero = "00:00:00:00:00:00";

    // Nobody answers: INCOMPLETE, then FAILED -> zero MAC, not a delete.
    vm.topo.ping_unanswered(VLAN, "192.168.0.99").unwrap();
    vm.topo.ping_unanswered(VLAN, "fc02:1000::99").unwrap();
    pop_until(
        &vm.redis,
        &[
            ("Vlan1000:192.168.0.99", set(zero, "IPv4")),
            ("Vlan1000:fc02:1000::99", set(zero, "IPv6")),
        ],
    );
    let state = vm
        .topo
        .dut()
        .ip(&["neigh", "show", "192.168.0.99", "dev", VLAN])
        .unwrap();
    assert!(
        state.contains("FAILED") || state.contains("INCOMPLETE"),
        "{state}"
    );

    // 169.254.0.0/16: dropped, its delete too.
    vm.neigh_add(VLAN, "169.254.0.5", "02:00:00:00:a9:05");
    vm.barrier(VLAN, "192.168.0.60", "02:00:00:00:00:60");
    assert_not_pending(&mut appl, "Vlan1000:169.254.0.5");
    vm.neigh_del(VLAN, "169.254.0.5");
    vm.barrier(VLAN, "192.168.0.61", "02:00:00:00:00:61");
    assert_not_pending(&mut appl, "Vlan1000:169.254.0.5");

    // A resolved neighbour gets its MAC; deletes are deleted.
    let mac = vm.topo.peer_mac(VLAN).unwrap();
    vm.topo.ping(VLAN, "192.168.0.2").unwrap();
    pop_until(&vm.redis, &[("Vlan1000:192.168.0.2", set(&mac, "IPv4"))]);
    vm.neigh_del(VLAN, "192.168.0.2");
    vm.neigh_del(VLAN, "192.168.0.99");
    let popped = pop_until(
        &vm.redis,
        &[
            ("Vlan1000:192.168.0.2", None),
            ("Vlan1000:192.168.0.99", None),
        ],
    );
    assert!(!popped.contains_key("Vlan1000:169.254.0.5"));
    let keys: Vec<String> = appl.keys("NEIGH_TABLE:Vlan1000:169.254*").unwrap();
    assert!(keys.is_empty());
}

// ===== warm restart =====

const WAITING: &str = "warm start: waiting for NEIGH_RESTORE_TABLE|Flags restored=true";

fn warm_state(redis: &RedisServer) -> Option<String> {
    let mut c = redis.conn(STATE_DB).unwrap();
    c.hget("WARM_RESTART_TABLE|neighsyncd", "state").unwrap()
}

/// Warm restart (reconcile) across the switch topology: neighbours on
/// Vlan1000 (link-local enabled), PortChannel0001, Ethernet8.10 and the
/// Vrf1 port survive a restart untouched; changes made while neighsyncd
/// waits for the restore flag land exactly (and only they).
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn warm_restart_across_switch_topology_writes_exactly_the_changes() {
    let redis = RedisServer::start().unwrap();
    let topo = SwitchTopology::new().unwrap();
    let dut = topo.dut();
    let initial = [
        (VLAN, "192.168.0.10", "02:00:00:00:00:10"),
        (VLAN, "fc02:1000::10", "02:00:00:00:10:10"),
        (VLAN, "fe80::1000:10", "02:00:00:10:00:10"),
        (PORT_CHANNEL, "10.0.1.10", "02:00:00:00:01:10"),
        (PORT_CHANNEL, "fc00:1::10", "02:00:00:00:11:10"),
        (SUB_IF, "10.0.2.10", "02:00:00:00:02:10"),
        (VRF_PORT, "10.0.3.10", "02:00:00:00:03:10"),
    ];
    let mut model = BTreeMap::new();
    for (ifname, ip, mac) in initial {
        dut.neigh_replace(ifname, ip, mac).unwrap();
        model.insert(format!("{ifname}:{ip}"), mac.to_owned());
    }
    let mut config = redis.conn(CONFIG_DB).unwrap();
    let () = config
        .hset(
            "VLAN_INTERFACE|Vlan1000",
            "ipv6_use_link_local_only",
            "enable",
        )
        .unwrap();
    let () = config
        .hset("WARM_RESTART|swss", "neighsyncd_timer", 1)
        .unwrap();

    // Cold run: APPL_DB holds the model, consumed.
    let mut daemon = start_daemon(dut, &redis, &[]);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    wait_for("the cold start consumed into APPL_DB", || {
        drain(&redis, "NEIGH_TABLE");
        (appl_table(&redis) == model_table(&model)).then_some(())
    });
    assert!(daemon.sigterm().unwrap().success());

    // Warm restart; changes while it waits for the restore flag.
    let mut state = redis.conn(STATE_DB).unwrap();
    let () = state
        .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
        .unwrap();
    let _: i64 = state.del("NEIGH_RESTORE_TABLE|Flags").unwrap();
    let mut daemon = start_daemon(dut, &redis, &[]);
    daemon.wait_for_log(WAITING, DEADLINE).unwrap();
    let changes = [
        // new
        (PORT_CHANNEL, "10.0.1.11", Some("02:00:00:00:01:11")),
        (VLAN, "fe80::1000:11", Some("02:00:00:10:00:11")),
        // changed MAC
        (SUB_IF, "10.0.2.10", Some("02:00:00:00:02:20")),
        // deleted
        (VLAN, "192.168.0.10", None),
        (VRF_PORT, "10.0.3.10", None),
    ];
    for (ifname, ip, mac) in changes {
        let key = format!("{ifname}:{ip}");
        match mac {
            Some(mac) => {
                dut.neigh_replace(ifname, ip, mac).unwrap();
                model.insert(key, mac.to_owned());
            }
            None => {
                dut.ip(&["neigh", "del", ip, "dev", ifname]).unwrap();
                model.remove(&key);
            }
        }
    }
    // Link-local on PortChannel0001 is not enabled: never written.
    dut.neigh_replace(PORT_CHANNEL, "fe80::1:11", "02:00:00:00:01:12")
        .unwrap();
    // Nothing is written while waiting.
    daemon
        .wait_for_log("warm start: kernel dump cached", DEADLINE)
        .unwrap();
    let key_set: BTreeSet<String> = redis
        .conn(0)
        .unwrap()
        .smembers("NEIGH_TABLE_KEY_SET")
        .unwrap();
    assert!(key_set.is_empty(), "{key_set:?}");

    let () = state
        .hset("NEIGH_RESTORE_TABLE|Flags", "restored", "true")
        .unwrap();
    wait_for("WARM_RESTART_TABLE|neighsyncd state reconciled", || {
        (warm_state(&redis).as_deref() == Some("reconciled")).then_some(())
    });
    let mut popped = Popped::new();
    wait_for("APPL_DB equals the kernel after the reconcile", || {
        last_ops(drain(&redis, "NEIGH_TABLE"), &mut popped);
        (appl_table(&redis) == model_table(&model)).then_some(())
    });
    let want: Popped = changes
        .iter()
        .map(|(ifname, ip, mac)| {
            (
                format!("{ifname}:{ip}"),
                mac.map(|m| (m.to_owned(), family(ip).to_owned())),
            )
        })
        .collect();
    assert_eq!(popped, want, "exactly the changes are written");
    assert!(daemon.sigterm().unwrap().success());
}

// ===== NEIGH_FAILED_TABLE (dual-ToR) =====

/// APPL_DB table of the failed IPv6 neighbours of a dual-ToR, for nbrmgrd
/// (sonic-swss PR 4849; docs/behavior.md b.2 step 9a).
const FAILED_TABLE: &str = "NEIGH_FAILED_TABLE";

/// The log line of an RTM_DELLINK that deleted a known interface.
const LINK_DELETED: &str = "interface deleted; its neighbors are deleted";

/// The one field of a `NEIGH_FAILED_TABLE` SET.
fn null() -> Vec<(String, String)> {
    vec![("NULL".to_owned(), "NULL".to_owned())]
}

/// CONFIG_DB `PEER_SWITCH|peer_tor`: the switch is a dual-ToR.
fn make_dual_tor(redis: &RedisServer) {
    let mut c = redis.conn(CONFIG_DB).unwrap();
    let () = c
        .hset("PEER_SWITCH|peer_tor", "address_ipv4", "10.1.0.33")
        .unwrap();
}

/// Pops `NEIGH_FAILED_TABLE` as nbrmgrd's Consumer does until the latest
/// op of every key of `want` is its op; returns every op popped meanwhile,
/// per key, in order.
fn pop_failed_until(
    redis: &RedisServer,
    want: &[(&str, Op)],
) -> BTreeMap<String, Vec<KeyOpFieldValues>> {
    let mut seen: BTreeMap<String, Vec<KeyOpFieldValues>> = BTreeMap::new();
    wait_for(&format!("{FAILED_TABLE} pops {want:?}"), || {
        for (key, ops) in drain(redis, FAILED_TABLE) {
            seen.entry(key).or_default().extend(ops);
        }
        want.iter()
            .all(|(k, op)| seen.get(*k).and_then(|ops| ops.last()).map(|o| o.op) == Some(*op))
            .then_some(())
    });
    seen
}

/// The ops of `popped`, per key, with each SET checked to be `NULL=NULL`.
fn failed_ops(popped: &BTreeMap<String, Vec<KeyOpFieldValues>>) -> BTreeMap<&str, Vec<Op>> {
    popped
        .iter()
        .map(|(key, ops)| {
            for o in ops.iter().filter(|o| o.op == Op::Set) {
                assert_eq!(o.fvs, null(), "{key}: {ops:?}");
            }
            (key.as_str(), ops.iter().map(|o| o.op).collect())
        })
        .collect()
}

/// The keys of the consumed table (`NEIGH_FAILED_TABLE:<key>` hashes as
/// nbrmgrd left them), each checked to hold `NULL=NULL`.
fn consumed_failed(appl: &mut redis::Connection) -> BTreeSet<String> {
    let keys: Vec<String> = appl.keys(format!("{FAILED_TABLE}:*")).unwrap();
    keys.into_iter()
        .map(|k| {
            let fvs: Vec<(String, String)> = appl.hgetall(&k).unwrap();
            assert_eq!(fvs, null(), "{k}");
            k[FAILED_TABLE.len() + 1..].to_owned()
        })
        .collect()
}

/// Nothing pending in `NEIGH_FAILED_TABLE` (KEY_SET and DEL_SET empty).
fn assert_failed_idle(appl: &mut redis::Connection) {
    let keys: BTreeSet<String> = appl.smembers(format!("{FAILED_TABLE}_KEY_SET")).unwrap();
    let dels: BTreeSet<String> = appl.smembers(format!("{FAILED_TABLE}_DEL_SET")).unwrap();
    assert!(
        keys.is_empty() && dels.is_empty(),
        "{FAILED_TABLE} pending: {keys:?} {dels:?}"
    );
}

/// The kernel's NUD state of `ip` on `ifname` in the DUT (`FAILED`, ...).
fn nud_state(topo: &SwitchTopology, ifname: &str, ip: &str) -> Option<String> {
    let out = topo
        .dut()
        .ip(&["neigh", "show", ip, "dev", ifname])
        .unwrap();
    out.split_whitespace().last().map(str::to_owned)
}

/// Real failed resolutions on Vlan1000: one unanswered ping to each of
/// `ips` (concurrently), then the kernel's own probes (3 x 1 s) end each
/// in NUD_FAILED; returns once the kernel shows every one FAILED.
fn fail_resolutions(topo: &SwitchTopology, ips: &[&str]) {
    std::thread::scope(|s| {
        for ip in ips {
            s.spawn(|| topo.ping_unanswered(VLAN, ip).unwrap());
        }
    });
    for ip in ips {
        wait_for(&format!("{ip} FAILED in the kernel"), || {
            (nud_state(topo, VLAN, ip).as_deref() == Some("FAILED")).then_some(())
        });
    }
}

/// The server behind Ethernet0 (the Vlan1000 member port) takes `ip`, and
/// the DUT pings it: a real Neighbor Solicitation answered by a real
/// Neighbor Advertisement resolves the neighbour (REACHABLE).
fn resolve_on_server(topo: &SwitchTopology, ip: &str) {
    let seg = SwitchTopology::segment(VLAN).unwrap();
    topo.peer(VLAN)
        .unwrap()
        .ip(&[
            "-6",
            "addr",
            "add",
            &format!("{ip}/64"),
            "dev",
            seg.peer_if,
            "nodad",
        ])
        .unwrap();
    topo.ping(VLAN, ip).unwrap();
}

/// Dual-ToR (a real CONFIG_DB `PEER_SWITCH`) on Vlan1000, the SVI of the
/// VLAN-aware Bridge with Ethernet0 as member: real failed IPv6
/// resolutions are published to `NEIGH_FAILED_TABLE` as `Vlan1000:<ip>`
/// `NULL=NULL` for an nbrmgrd-like consumer; each new failure sends the SET
/// again (the kernel's INCOMPLETE retry in between keeps the key); a real
/// NA resolving the neighbour sends one DEL; an IPv4 failure is never
/// published (NEIGH_TABLE gets its zero MAC); deleting the Vlan DELs the
/// published keys.
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn dual_tor_vlan_failed_table_repeat_resolve_ipv4_and_vlan_delete() {
    let mut vm = Vm::start_on(SwitchTopology::vlan_only().unwrap(), |redis, _| {
        make_dual_tor(redis)
    });
    let mut appl = vm.appl();
    drain(&vm.redis, "NEIGH_TABLE");
    assert!(drain(&vm.redis, FAILED_TABLE).is_empty());
    let zero = "00:00:00:00:00:00";
    let (ip, ip98, ip97, ip4) = (
        "fc02:1000::99",
        "fc02:1000::98",
        "fc02:1000::97",
        "192.168.0.99",
    );
    let (key, key98, key97, key4) = (
        "Vlan1000:fc02:1000::99",
        "Vlan1000:fc02:1000::98",
        "Vlan1000:fc02:1000::97",
        "Vlan1000:192.168.0.99",
    );

    // 1. Real failed resolutions on the Vlan: each IPv6 one is published
    // NULL=NULL under the SVI's name; the IPv4 one is not (NEIGH_TABLE
    // writes both with the zero MAC).
    fail_resolutions(&vm.topo, &[ip, ip98, ip97, ip4]);
    let popped = pop_failed_until(
        &vm.redis,
        &[(key, Op::Set), (key98, Op::Set), (key97, Op::Set)],
    );
    let ops = failed_ops(&popped);
    assert_eq!(
        ops.keys().copied().collect::<Vec<_>>(),
        [key97, key98, key],
        "{popped:?}"
    );
    pop_until(
        &vm.redis,
        &[
            (key, set(zero, "IPv6")),
            (key98, set(zero, "IPv6")),
            (key97, set(zero, "IPv6")),
            (key4, set(zero, "IPv4")),
        ],
    );
    // Every failure above was decided before the marker.
    vm.barrier(VLAN, "192.168.0.60", "02:00:00:00:00:60");
    assert_failed_idle(&mut appl);
    assert!(drain(&vm.redis, FAILED_TABLE).is_empty());
    assert_eq!(
        consumed_failed(&mut appl),
        [key97, key98, key].map(String::from).into()
    );

    // 2. Traffic to it again: the kernel retries (INCOMPLETE: the key is
    // kept, nothing written) and fails again: a new SET, popped again.
    vm.topo.ping_unanswered(VLAN, ip).unwrap();
    let popped = pop_failed_until(&vm.redis, &[(key, Op::Set)]);
    let ops = failed_ops(&popped);
    assert_eq!(ops.keys().copied().collect::<Vec<_>>(), [key], "{popped:?}");
    assert!(ops[key].iter().all(|o| *o == Op::Set), "{popped:?}");
    assert_eq!(nud_state(&vm.topo, VLAN, ip).as_deref(), Some("FAILED"));

    // 3. The server behind Ethernet0 takes the address and answers: the
    // neighbour is REACHABLE, one DEL, and NEIGH_TABLE gets its MAC.
    resolve_on_server(&vm.topo, ip);
    let popped = pop_failed_until(&vm.redis, &[(key, Op::Del)]);
    assert_eq!(
        failed_ops(&popped),
        BTreeMap::from([(key, vec![Op::Del])]),
        "{popped:?}"
    );
    let mac = vm.topo.peer_mac(VLAN).unwrap();
    pop_until(&vm.redis, &[(key, set(&mac, "IPv6"))]);
    assert_eq!(
        consumed_failed(&mut appl),
        [key97, key98].map(String::from).into()
    );

    // 4. The Vlan goes (RTM_DELNEIGH for each neighbour, then
    // RTM_DELLINK): one DEL per published key; NEIGH_TABLE loses every
    // Vlan1000 neighbour.
    vm.ip(&["link", "del", "dev", VLAN]);
    let popped = pop_failed_until(&vm.redis, &[(key98, Op::Del), (key97, Op::Del)]);
    assert_eq!(
        failed_ops(&popped),
        BTreeMap::from([(key97, vec![Op::Del]), (key98, vec![Op::Del])]),
        "{popped:?}"
    );
    assert!(consumed_failed(&mut appl).is_empty());
    // The DELs came from the RTM_DELNEIGHs; the RTM_DELLINK after them
    // found nothing left to delete.
    let log = vm
        .daemon
        .wait_for_log(&format!("{LINK_DELETED} ifname={VLAN}"), DEADLINE)
        .unwrap();
    let link_deleted = log.find(LINK_DELETED).unwrap();
    for k in [key97, key98] {
        let clear = log
            .find(&format!("{FAILED_TABLE} key={k} op=Clear"))
            .unwrap_or_else(|| panic!("no Clear of {k} logged:\n{log}"));
        assert!(
            clear < link_deleted,
            "{k} cleared after the RTM_DELLINK:\n{log}"
        );
    }
    wait_for("no Vlan1000 neighbour left in NEIGH_TABLE", || {
        drain(&vm.redis, "NEIGH_TABLE");
        appl_neighbors(&vm.redis, VLAN).is_empty().then_some(())
    });
    assert_failed_idle(&mut appl);
}

/// Warm restart on a dual-ToR Vlan: `NEIGH_FAILED_TABLE` is written in the
/// warm window, while NEIGH_TABLE waits for the restore flag. The warm
/// start's kernel dump publishes the neighbour that is still FAILED again;
/// a neighbour failing in the window is published and a published one
/// resolving is DELeted, both popped before the reconcile, which then
/// writes exactly the NEIGH_TABLE difference (the zero MAC of the new
/// failure, the MAC of the resolved one).
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn dual_tor_vlan_failed_table_written_in_the_warm_window() {
    let redis = RedisServer::start().unwrap();
    let topo = SwitchTopology::vlan_only().unwrap();
    make_dual_tor(&redis);
    let mut config = redis.conn(CONFIG_DB).unwrap();
    let () = config
        .hset("WARM_RESTART|swss", "neighsyncd_timer", 1)
        .unwrap();
    let mut appl = redis.conn(0).unwrap();
    let zero = "00:00:00:00:00:00";
    let (ip97, ip96) = ("fc02:1000::97", "fc02:1000::96");
    let (key97, key96) = ("Vlan1000:fc02:1000::97", "Vlan1000:fc02:1000::96");

    // Cold run: a failed neighbour, published and consumed.
    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(READY, DEADLINE).unwrap();
    fail_resolutions(&topo, &[ip97]);
    pop_failed_until(&redis, &[(key97, Op::Set)]);
    pop_until(&redis, &[(key97, set(zero, "IPv6"))]);
    assert!(daemon.sigterm().unwrap().success());

    // Warm restart: the dump publishes the still-FAILED neighbour again.
    let mut state = redis.conn(STATE_DB).unwrap();
    let () = state
        .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
        .unwrap();
    let _: i64 = state.del("NEIGH_RESTORE_TABLE|Flags").unwrap();
    let mut daemon = start_daemon(topo.dut(), &redis, &[]);
    daemon.wait_for_log(WAITING, DEADLINE).unwrap();
    daemon
        .wait_for_log("warm start: kernel dump cached", DEADLINE)
        .unwrap();
    let popped = pop_failed_until(&redis, &[(key97, Op::Set)]);
    assert_eq!(
        failed_ops(&popped),
        BTreeMap::from([(key97, vec![Op::Set])])
    );

    // In the warm window: ::96 fails, ::97 resolves (the server behind
    // Ethernet0 answers). Both reach NEIGH_FAILED_TABLE now; NEIGH_TABLE
    // is not written.
    fail_resolutions(&topo, &[ip96]);
    resolve_on_server(&topo, ip97);
    let popped = pop_failed_until(&redis, &[(key96, Op::Set), (key97, Op::Del)]);
    assert_eq!(
        failed_ops(&popped),
        BTreeMap::from([(key96, vec![Op::Set]), (key97, vec![Op::Del])]),
        "{popped:?}"
    );
    assert_eq!(consumed_failed(&mut appl), [key96.to_owned()].into());
    assert_eq!(warm_state(&redis).as_deref(), Some("restored"));
    let key_set: BTreeSet<String> = appl.smembers("NEIGH_TABLE_KEY_SET").unwrap();
    assert!(
        key_set.is_empty(),
        "NEIGH_TABLE written in the warm window: {key_set:?}"
    );

    // Restored: the reconcile writes exactly the NEIGH_TABLE difference,
    // and nothing more to NEIGH_FAILED_TABLE.
    let () = state
        .hset("NEIGH_RESTORE_TABLE|Flags", "restored", "true")
        .unwrap();
    wait_for("WARM_RESTART_TABLE|neighsyncd state reconciled", || {
        (warm_state(&redis).as_deref() == Some("reconciled")).then_some(())
    });
    let mac = topo.peer_mac(VLAN).unwrap();
    let popped = pop_until(
        &redis,
        &[(key96, set(zero, "IPv6")), (key97, set(&mac, "IPv6"))],
    );
    assert_eq!(popped.len(), 2, "exactly the changes: {popped:?}");
    assert!(drain(&redis, FAILED_TABLE).is_empty());
    assert_failed_idle(&mut appl);
    assert_eq!(consumed_failed(&mut appl), [key96.to_owned()].into());
    assert!(daemon.sigterm().unwrap().success());
}
