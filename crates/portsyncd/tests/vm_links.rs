//! portsyncd on SONiC's real link types, on a real kernel (docs/behavior.md d.3,
//! d.4): Ethernet ports enslaved to a bond PortChannel or a VLAN-aware
//! Bridge, Vlan SVIs, a VRF master and a dummy Loopback0, built with
//! `ip link`; a real redis-server and orchagent played by a
//! ConsumerStateTable.
//!
//! Which links portsyncd handles follows the C++ (d.3): names starting with
//! `Ethernet` or `PortChannel`; STATE_DB `PORT_TABLE|<name>` is written only
//! for names in APPL_DB `PORT_TABLE`, so PortChannel, Vlan, Bridge, VRF and
//! Loopback netdevs never get an entry, and only configured ports hold back
//! PortInitDone.
//!
//! The build machines' kernel has no bonding/8021q/vrf/dummy, so these tests
//! are `#[ignore]`d on the host and run in the VM tier
//! (`scripts/test-vm.sh`).

mod common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use redis::Commands;
use swss::consumer_state::Op;
use testbed::switch::{
    enslave, lag_add_member, port_channel, require_switch_kernel, vlan_aware_bridge,
    vlan_member_untagged, vlan_svi, vrf,
};

/// STATE_DB `PORT_TABLE|*` names.
fn state_ports(bed: &Bed) -> BTreeSet<String> {
    let keys: Vec<String> = bed.db(STATE_DB).keys("PORT_TABLE|*").expect("KEYS");
    keys.into_iter()
        .map(|k| k["PORT_TABLE|".len()..].to_string())
        .collect()
}

/// What portsyncd must write for `name`, from the kernel (read from
/// /sys/class/net inside the DUT namespace): `state ok`; `admin_status`
/// from IFF_UP; `netdev_oper_status` from IFF_RUNNING, which the kernel
/// reports (dev_get_flags) for a running link whose operstate is `up` or
/// `unknown`; `mtu`.
fn kernel_state(bed: &Bed, name: &str) -> HashMap<String, String> {
    let read = |attr: &str| {
        bed.dut
            .exec_ok(&["cat", &format!("/sys/class/net/{name}/{attr}")])
            .expect("read sysfs")
            .trim()
            .to_string()
    };
    let flags = u32::from_str_radix(read("flags").trim_start_matches("0x"), 16).expect("flags");
    let admin_up = flags & 0x1 != 0;
    let running = admin_up && matches!(read("operstate").as_str(), "up" | "unknown");
    let updown = |b: bool| if b { "up" } else { "down" };
    HashMap::from([
        ("state".to_string(), "ok".to_string()),
        (
            "netdev_oper_status".to_string(),
            updown(running).to_string(),
        ),
        ("admin_status".to_string(), updown(admin_up).to_string()),
        ("mtu".to_string(), read("mtu")),
    ])
}

/// Waits until STATE_DB `PORT_TABLE|<name>` equals the kernel's view of the
/// link, and returns it.
fn wait_state_is_kernel(bed: &Bed, name: &str) -> HashMap<String, String> {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let last = (bed.state(name), kernel_state(bed, name));
        if last.0 == last.1 {
            return last.0;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "STATE_DB PORT_TABLE|{name} {:?} != kernel {:?}",
            last.0,
            last.1
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Ethernet0 enslaved to PortChannel0001 (bond) and Ethernet4 an untagged
/// member of Vlan1000 on the VLAN-aware Bridge, Vlan1000 in Vrf1, a dummy
/// Loopback0: STATE_DB `PORT_TABLE` holds exactly the two ports, each as the
/// kernel reports it; the LAG member's carrier and admin changes are
/// mirrored; leaving the LAG or the bridge, and deleting the PortChannel,
/// Vlan, VRF and Bridge, keep the ports' entries.
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn lag_member_mirrors_the_kernel_and_switch_links_stay_out_of_state_db() {
    require_switch_kernel().expect("switch link types");
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0"), ("admin_status", "up")]);
    bed.config_port("Ethernet4", &[("lanes", "4"), ("admin_status", "up")]);
    bed.start(&[]);
    let mut orch = bed.orchagent();
    bed.add_link("Ethernet0");
    bed.add_link("Ethernet4");
    orch.drain();
    bed.wait_state("Ethernet0", &[("state", "ok")]);
    bed.wait_state("Ethernet4", &[("state", "ok")]);

    let dut = &bed.dut;
    port_channel(dut, "PortChannel0001", &["Ethernet0"]).expect("bond");
    vlan_aware_bridge(dut, "Bridge").expect("bridge");
    vlan_member_untagged(dut, "Bridge", "Ethernet4", 1000).expect("vlan member");
    vlan_svi(dut, "Bridge", 1000).expect("Vlan1000");
    vrf(dut, "Vrf1", 1001).expect("Vrf1");
    enslave(dut, "Vlan1000", "Vrf1").expect("Vlan1000 in Vrf1");
    bed.dut_ip(&["link", "add", "Loopback0", "type", "dummy"]);
    bed.dut_ip(&["link", "set", "dev", "Loopback0", "up"]);
    dut.wait_carrier("PortChannel0001", DEADLINE)
        .expect("bond carrier");
    bed.daemon()
        .wait_for_log("ifname=PortChannel0001", DEADLINE)
        .expect("PortChannel0001 seen");
    bed.barrier("Ethernet4", 9000);

    let link = bed
        .dut
        .ip(&["-o", "link", "show", "dev", "Ethernet0"])
        .expect("ip link");
    assert!(
        link.contains("SLAVE") && link.contains("master PortChannel0001"),
        "{link}"
    );
    let e0 = wait_state_is_kernel(&bed, "Ethernet0");
    assert_eq!(e0["admin_status"], "up");
    assert_eq!(e0["netdev_oper_status"], "up");
    wait_state_is_kernel(&bed, "Ethernet4");
    assert_eq!(state_ports(&bed), set_of(&["Ethernet0", "Ethernet4"]));

    // The LAG member loses carrier (its peer goes down), then gets it back.
    bed.peer_ip(&["link", "set", "dev", &Bed::peer_name("Ethernet0"), "down"]);
    bed.wait_state("Ethernet0", &[("netdev_oper_status", "down")]);
    assert_eq!(
        wait_state_is_kernel(&bed, "Ethernet0")["admin_status"],
        "up"
    );
    bed.peer_ip(&["link", "set", "dev", &Bed::peer_name("Ethernet0"), "up"]);
    bed.wait_state("Ethernet0", &[("netdev_oper_status", "up")]);
    wait_state_is_kernel(&bed, "Ethernet0");

    // Admin down and up of the member.
    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "down"]);
    bed.wait_state(
        "Ethernet0",
        &[("admin_status", "down"), ("netdev_oper_status", "down")],
    );
    wait_state_is_kernel(&bed, "Ethernet0");
    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "up"]);
    bed.wait_state(
        "Ethernet0",
        &[("admin_status", "up"), ("netdev_oper_status", "up")],
    );
    wait_state_is_kernel(&bed, "Ethernet0");
    assert_eq!(state_ports(&bed), set_of(&["Ethernet0", "Ethernet4"]));

    // Leaving the LAG, re-joining, and the LAG deleted: the member's entry
    // stays and keeps following the kernel.
    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "nomaster"]);
    bed.barrier("Ethernet4", 9100);
    wait_state_is_kernel(&bed, "Ethernet0");
    lag_add_member(&bed.dut, "PortChannel0001", "Ethernet0").expect("rejoin");
    bed.barrier("Ethernet4", 9200);
    wait_state_is_kernel(&bed, "Ethernet0");
    bed.dut_ip(&["link", "del", "dev", "PortChannel0001"]);
    bed.barrier("Ethernet4", 9300);
    let e0 = wait_state_is_kernel(&bed, "Ethernet0");
    assert_eq!(e0["state"], "ok");

    // Vlan, VRF and Bridge deleted (Ethernet4 leaves the bridge: an
    // AF_BRIDGE RTM_DELLINK with a master, which must not delete it).
    bed.dut_ip(&["link", "del", "dev", "Vlan1000"]);
    bed.dut_ip(&["link", "del", "dev", "Vrf1"]);
    bed.dut_ip(&["link", "del", "dev", "Bridge"]);
    bed.barrier("Ethernet4", 9400);
    wait_state_is_kernel(&bed, "Ethernet4");
    assert_eq!(state_ports(&bed), set_of(&["Ethernet0", "Ethernet4"]));

    // A port netdev that really goes away is deleted.
    bed.dut_ip(&["link", "del", "dev", "Ethernet0"]);
    bed.wait_state_gone("Ethernet0");
    assert_eq!(state_ports(&bed), set_of(&["Ethernet4"]));
    bed.stop();
}

/// PortInitDone waits for the configured ports only: PortChannel, Vlan,
/// Bridge, VRF and Loopback netdevs appearing (before or after) neither
/// send it early nor again; it comes once, with `lanes=0`, when the last
/// configured port's netdev appears, even while the first is a LAG member.
#[test]
#[ignore = "needs 8021q/bonding/vrf: run in the VM tier (scripts/test-vm.sh)"]
fn port_init_done_waits_for_ports_not_for_other_links() {
    require_switch_kernel().expect("switch link types");
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0"), ("admin_status", "up")]);
    bed.config_port("Ethernet4", &[("lanes", "4"), ("admin_status", "up")]);
    bed.start(&[]);
    let mut orch = bed.orchagent();
    let popped = orch.drain();
    assert_eq!(popped["PortConfigDone"][0].fvs, fvs(&[("count", "2")]));

    // Every non-port link type first; PortChannel0001 last as the barrier.
    let dut = &bed.dut;
    vlan_aware_bridge(dut, "Bridge").expect("bridge");
    vlan_svi(dut, "Bridge", 1000).expect("Vlan1000");
    vrf(dut, "Vrf1", 1001).expect("Vrf1");
    enslave(dut, "Vlan1000", "Vrf1").expect("Vlan1000 in Vrf1");
    bed.dut_ip(&["link", "add", "Loopback0", "type", "dummy"]);
    bed.dut_ip(&["link", "set", "dev", "Loopback0", "up"]);
    port_channel(dut, "PortChannel0001", &[]).expect("bond");
    bed.daemon()
        .wait_for_log("ifname=PortChannel0001", DEADLINE)
        .expect("PortChannel0001 seen");
    let no_init_done = |bed: &Bed| {
        assert!(!bed.key_set().contains("PortInitDone"));
        assert!(!bed.exists(APPL_DB, "_PORT_TABLE:PortInitDone"));
        assert!(!bed.exists(APPL_DB, "PORT_TABLE:PortInitDone"));
    };
    no_init_done(&bed);
    assert!(state_ports(&bed).is_empty());

    // The first port appears and joins the LAG: still waiting for Ethernet4.
    bed.add_link("Ethernet0");
    lag_add_member(&bed.dut, "PortChannel0001", "Ethernet0").expect("member");
    bed.wait_state("Ethernet0", &[("state", "ok")]);
    wait_state_is_kernel(&bed, "Ethernet0");
    no_init_done(&bed);

    // The last one: PortInitDone, once.
    bed.add_link("Ethernet4");
    bed.wait_state("Ethernet4", &[("state", "ok")]);
    let init_done = orch.wait_port_init_done();
    assert_eq!(init_done.len(), 1);
    assert_eq!(init_done[0].op, Op::Set);
    assert_eq!(init_done[0].fvs, fvs(&[("lanes", "0")]));

    // More non-port churn: nothing more for orchagent, no STATE_DB entries.
    bed.dut_ip(&["link", "del", "dev", "Vlan1000"]);
    bed.dut_ip(&["link", "del", "dev", "Vrf1"]);
    bed.dut_ip(&["link", "add", "Loopback1", "type", "dummy"]);
    bed.dut_ip(&["link", "set", "dev", "PortChannel0001", "down"]);
    bed.barrier("Ethernet4", 9100);
    assert!(orch.drain().is_empty());
    assert!(bed.key_set().is_empty());
    assert_eq!(state_ports(&bed), set_of(&["Ethernet0", "Ethernet4"]));
    bed.stop();
}
