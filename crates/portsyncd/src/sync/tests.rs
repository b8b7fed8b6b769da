//! The rules' unit and property tests (crate::sync).

use super::fixtures::{del_link, new_link};
use super::*;
use proptest::prelude::*;

const AF_BRIDGE: u8 = 7;

impl PortSync {
    /// [`PortSync::on_link`] as the list of actions (at most one).
    fn link_actions(&mut self, ev: &LinkEvent) -> Vec<StateAction> {
        self.on_link(ev).into_action().into_iter().collect()
    }
}

fn fv(pairs: &[(&str, &str)]) -> FieldValues {
    pairs
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

fn set(name: &str, oper: &str, admin: &str, mtu: &str) -> StateAction {
    StateAction::SetPortState {
        name: name.to_string(),
        fields: fv(&[
            ("state", "ok"),
            ("netdev_oper_status", oper),
            ("admin_status", admin),
            ("mtu", mtu),
        ]),
    }
}

fn del(name: &str) -> StateAction {
    StateAction::DelPortState {
        name: name.to_string(),
    }
}

fn ports(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Cold switch with the given configured ports, all already in APPL_DB
/// (without admin_status), initial load finished.
fn running(names: &[&str]) -> PortSync {
    let mut ps = PortSync::new(ports(names), SwitchType::Switch, false);
    for n in names {
        assert!(ps.on_appl_port(n, true, false).is_empty());
    }
    ps.finish_initial_load();
    ps
}

const UP_RUNNING: u32 = IFF_UP | IFF_RUNNING;

#[test]
fn newlink_for_present_port_writes_exact_fields_in_order() {
    let mut ps = running(&["Ethernet0"]);
    let acts = ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
    assert_eq!(acts, vec![set("Ethernet0", "up", "up", "9100")]);
    let StateAction::SetPortState { fields, .. } = &acts[0] else {
        panic!("expected a set");
    };
    let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        ["state", "netdev_oper_status", "admin_status", "mtu"]
    );
}

#[test]
fn admin_oper_and_mtu_changes_write_and_repeats_do_not() {
    let mut ps = running(&["Ethernet0"]);
    let e = |flags, mtu| new_link("Ethernet0", 10, flags, mtu);
    assert_eq!(
        ps.link_actions(&e(UP_RUNNING, 9100)),
        vec![set("Ethernet0", "up", "up", "9100")]
    );
    assert!(
        ps.link_actions(&e(UP_RUNNING, 9100)).is_empty(),
        "identical repeat"
    );
    // carrier lost: IFF_RUNNING off
    assert_eq!(
        ps.link_actions(&e(IFF_UP, 9100)),
        vec![set("Ethernet0", "down", "up", "9100")]
    );
    // admin down
    assert_eq!(
        ps.link_actions(&e(0, 9100)),
        vec![set("Ethernet0", "down", "down", "9100")]
    );
    assert!(ps.link_actions(&e(0, 9100)).is_empty());
    // admin up again, carrier back
    assert_eq!(
        ps.link_actions(&e(UP_RUNNING, 9100)),
        vec![set("Ethernet0", "up", "up", "9100")]
    );
    // mtu change
    assert_eq!(
        ps.link_actions(&e(UP_RUNNING, 1500)),
        vec![set("Ethernet0", "up", "up", "1500")]
    );
    // flags other than UP/RUNNING do not matter
    assert!(ps.link_actions(&e(UP_RUNNING | 0x1000, 1500)).is_empty());
}

#[test]
fn missing_mtu_keeps_last_known_mtu() {
    let mut ps = running(&["Ethernet0"]);
    ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
    let mut ev = new_link("Ethernet0", 10, IFF_UP, 0);
    ev.mtu = None;
    assert_eq!(
        ps.link_actions(&ev),
        vec![set("Ethernet0", "down", "up", "9100")]
    );
    ps.link_actions(&del_link("Ethernet0", 10));
    assert_eq!(
        ps.link_actions(&ev),
        vec![set("Ethernet0", "down", "up", "0")]
    );
}

#[test]
fn port_not_yet_in_appl_db_is_written_when_consumed() {
    let mut ps = PortSync::new(ports(&["Ethernet0"]), SwitchType::Switch, false);
    ps.finish_initial_load();
    assert!(ps
        .link_actions(&new_link("Ethernet0", 10, IFF_UP, 9100))
        .is_empty());
    assert!(!ps.take_port_init_done());
    assert_eq!(ps.pending_ports(), ports(&["Ethernet0"]));
    // link changes while not consumed: only the latest state counts
    assert!(ps
        .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
        .is_empty());
    assert_eq!(
        ps.on_appl_port("Ethernet0", true, true),
        vec![set("Ethernet0", "up", "up", "9100")]
    );
    assert!(ps.pending_ports().is_empty());
    assert!(ps.take_port_init_done());
    // another APPL_DB change for the same port: nothing new to write
    assert!(ps.on_appl_port("Ethernet0", true, true).is_empty());
}

#[test]
fn appl_port_before_any_link_writes_nothing_and_keeps_pending() {
    let mut ps = PortSync::new(ports(&["Ethernet0"]), SwitchType::Switch, false);
    ps.finish_initial_load();
    // after the initial load, admin_status does not release the port
    assert!(ps.on_appl_port("Ethernet0", true, true).is_empty());
    assert_eq!(ps.pending_ports(), ports(&["Ethernet0"]));
    assert!(!ps.take_port_init_done());
    assert_eq!(
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100)),
        vec![set("Ethernet0", "up", "up", "9100")]
    );
    assert!(ps.take_port_init_done());
}

#[test]
fn appl_entry_removed_stops_writes_and_return_rewrites() {
    let mut ps = running(&["Ethernet0"]);
    ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
    assert!(ps.on_appl_port("Ethernet0", false, false).is_empty());
    assert!(!ps.is_appl_present("Ethernet0"));
    assert!(ps
        .link_actions(&new_link("Ethernet0", 10, IFF_UP, 9100))
        .is_empty());
    assert!(ps
        .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
        .is_empty());
    // back: written again even though it equals the last write
    assert_eq!(
        ps.on_appl_port("Ethernet0", true, false),
        vec![set("Ethernet0", "up", "up", "9100")]
    );
}

#[test]
fn dellink_deletes_and_next_newlink_writes_again() {
    let mut ps = running(&["Ethernet0"]);
    ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
    assert_eq!(
        ps.link_actions(&del_link("Ethernet0", 10)),
        vec![del("Ethernet0")]
    );
    assert_eq!(ps.link_state("Ethernet0"), None);
    // a consumption event now has no netdev to report
    assert!(ps.on_appl_port("Ethernet0", true, false).is_empty());
    // netdev re-created (new ifindex), same state as before: written again
    assert_eq!(
        ps.link_actions(&new_link("Ethernet0", 11, UP_RUNNING, 9100)),
        vec![set("Ethernet0", "up", "up", "9100")]
    );
}

#[test]
fn dellink_deletes_even_without_appl_entry() {
    let mut ps = running(&[]);
    assert_eq!(
        ps.link_actions(&del_link("PortChannel5", 30)),
        vec![del("PortChannel5")]
    );
}

#[test]
fn team_kind_is_ignored() {
    let mut ps = running(&["PortChannel1"]);
    let mut ev = new_link("PortChannel1", 20, UP_RUNNING, 9100);
    ev.kind = Some("team".to_string());
    assert!(ps.link_actions(&ev).is_empty());
    ev.msg_type = LinkMsgType::Del;
    assert!(ps.link_actions(&ev).is_empty());
    assert_eq!(ps.pending_ports(), ports(&["PortChannel1"]));
}

#[test]
fn dellink_with_master_is_ignored() {
    let mut ps = running(&["Ethernet0"]);
    ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
    // Ethernet0 leaves bridge/LAG PortChannel1 (ifindex 20): AF_BRIDGE del
    let mut ev = del_link("Ethernet0", 10);
    ev.family = AF_BRIDGE;
    ev.master = Some(20);
    assert!(ps.link_actions(&ev).is_empty());
    // same as AF_UNSPEC
    ev.family = 0;
    assert!(ps.link_actions(&ev).is_empty());
    assert!(ps.link_state("Ethernet0").is_some());
    // the entry was not deleted, so a repeat of the state is still a no-op
    assert!(ps
        .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
        .is_empty());
}

#[test]
fn af_bridge_newlink_goes_through_the_same_path_without_extra_writes() {
    let mut ps = running(&["Ethernet0"]);
    assert_eq!(
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
            .len(),
        1
    );
    let mut ev = new_link("Ethernet0", 10, UP_RUNNING, 9100);
    ev.family = AF_BRIDGE;
    ev.master = Some(20);
    assert!(ps.link_actions(&ev).is_empty());
    ev.flags = IFF_UP;
    assert_eq!(
        ps.link_actions(&ev),
        vec![set("Ethernet0", "down", "up", "9100")]
    );
}

#[test]
fn portchannel_bridge_without_appl_entry_writes_nothing() {
    let mut ps = running(&["Ethernet0"]);
    let mut ev = new_link("PortChannel1", 20, UP_RUNNING, 9100);
    ev.kind = Some("bridge".to_string());
    assert!(ps.link_actions(&ev).is_empty());
    ev.family = AF_BRIDGE;
    assert!(ps.link_actions(&ev).is_empty());
}

#[test]
fn other_names_are_ignored() {
    let mut ps = running(&[]);
    for name in [
        "eth0",
        "ethernet0",
        "Bridge",
        "lo",
        "portchannel1",
        "Vlan1000",
        "xEthernet0",
    ] {
        assert!(ps.on_appl_port(name, true, false).is_empty());
        assert!(
            ps.link_actions(&new_link(name, 5, UP_RUNNING, 1500))
                .is_empty(),
            "{name}"
        );
        assert!(ps.link_actions(&del_link(name, 5)).is_empty(), "{name}");
    }
}

#[test]
fn drop_reasons_follow_the_rule_order() {
    let mut ps = running(&["Ethernet0"]);
    assert!(ps.mark_old_interface(99, "Ethernet8"));
    let dropped = |r| LinkOutcome::Dropped(r);
    assert_eq!(
        ps.on_link(&new_link("eth0", 5, UP_RUNNING, 1500)),
        dropped(DropReason::NotAPort)
    );
    // the name rule comes before the kind rule
    let mut ev = new_link("eth1", 6, UP_RUNNING, 1500);
    ev.kind = Some("team".to_string());
    assert_eq!(ps.on_link(&ev), dropped(DropReason::NotAPort));
    ev.name = "PortChannel1".to_string();
    assert_eq!(ps.on_link(&ev), dropped(DropReason::Team));
    let mut ev = del_link("Ethernet0", 10);
    ev.master = Some(20);
    assert_eq!(ps.on_link(&ev), dropped(DropReason::MasterDel));
    // a master DELLINK of an old ifindex: the master rule comes first
    ev.ifindex = 99;
    assert_eq!(ps.on_link(&ev), dropped(DropReason::MasterDel));
    assert_eq!(
        ps.on_link(&new_link("Ethernet8", 99, UP_RUNNING, 1500)),
        dropped(DropReason::OldInterface)
    );
    assert_eq!(
        ps.on_link(&new_link("Ethernet4", 11, UP_RUNNING, 1500)),
        dropped(DropReason::NotInApplDb)
    );
    assert_eq!(
        ps.on_link(&new_link("Ethernet0", 10, UP_RUNNING, 1500)),
        LinkOutcome::Write(set("Ethernet0", "up", "up", "1500"))
    );
    assert_eq!(
        ps.on_link(&new_link("Ethernet0", 10, UP_RUNNING, 1500)),
        LinkOutcome::Unchanged
    );
    let labels: Vec<&str> = [
        DropReason::NotAPort,
        DropReason::Team,
        DropReason::MasterDel,
        DropReason::OldInterface,
        DropReason::NotInApplDb,
    ]
    .iter()
    .map(|r| r.label())
    .collect();
    assert_eq!(
        labels,
        [
            "not_a_port",
            "team",
            "master_del",
            "old_interface",
            "not_in_appl_db"
        ]
    );
    assert_eq!(handled("PortChannel1", Some("bond")), Ok(()));
    assert_eq!(handled("Ethernet0", None), Ok(()));
    assert_eq!(handled("ethernet0", None), Err(DropReason::NotAPort));
}

#[test]
fn reload_appl_removes_vanished_ports_and_applies_present_ones() {
    let mut ps = running(&["Ethernet0", "Ethernet4", "Ethernet8"]);
    ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
    ps.link_actions(&new_link("Ethernet4", 11, UP_RUNNING, 9100));
    ps.link_actions(&new_link("Ethernet12", 13, UP_RUNNING, 9100));
    // Ethernet4 vanished from APPL_DB, Ethernet12 appeared (its netdev
    // is known, so it is written), Ethernet0 unchanged.
    let acts = ps.reload_appl([
        ("Ethernet0".to_string(), true),
        ("Ethernet8".to_string(), false),
        ("Ethernet12".to_string(), false),
    ]);
    assert_eq!(acts, vec![set("Ethernet12", "up", "up", "9100")]);
    assert!(!ps.is_appl_present("Ethernet4"));
    assert!(ps.is_appl_present("Ethernet8"));
    assert_eq!(
        ps.expected_entries()
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["Ethernet0", "Ethernet12"]
    );
    assert_eq!(ps.ports_without_link(), ports(&["Ethernet8"]));
    assert_eq!(ps.expected_fields("Ethernet4"), None);
    assert_eq!(
        ps.expected_fields("Ethernet0"),
        Some(
            LinkState {
                admin_up: true,
                oper_up: true,
                mtu: 9100
            }
            .fields()
        )
    );
    // Ethernet4 is back: its state is written again.
    assert_eq!(
        ps.reload_appl([
            ("Ethernet0".to_string(), true),
            ("Ethernet4".to_string(), false),
        ]),
        vec![set("Ethernet4", "up", "up", "9100")]
    );
}

#[test]
fn port_keys_exclude_the_markers() {
    assert!(!is_port_key("PortConfigDone"));
    assert!(!is_port_key("PortInitDone"));
    assert!(is_port_key("Ethernet0"));
    let names: Vec<String> = LinkState {
        admin_up: false,
        oper_up: false,
        mtu: 1,
    }
    .fields()
    .into_iter()
    .map(|(f, _)| f)
    .collect();
    assert_eq!(names, STATE_FIELDS);
}

#[test]
fn old_interfaces_are_ignored_forever_on_cold_switch() {
    let mut ps = PortSync::new(ports(&["Ethernet0"]), SwitchType::Switch, false);
    assert!(ps.wants_old_interface_shutdown());
    assert!(ps.mark_old_interface(10, "Ethernet0"));
    assert!(!ps.mark_old_interface(20, "PortChannel1"));
    assert!(!ps.mark_old_interface(1, "lo"));
    assert_eq!(ps.old_interfaces().len(), 1);
    ps.on_appl_port("Ethernet0", true, false);
    ps.finish_initial_load();
    assert!(ps
        .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
        .is_empty());
    assert!(ps.link_actions(&del_link("Ethernet0", 10)).is_empty());
    assert!(
        !ps.take_port_init_done(),
        "old ifindex never releases the port"
    );
    // re-created under a new ifindex: handled
    assert_eq!(
        ps.link_actions(&new_link("Ethernet0", 11, UP_RUNNING, 9100)),
        vec![set("Ethernet0", "up", "up", "9100")]
    );
    assert!(ps.take_port_init_done());
}

#[test]
fn cold_dpu_and_warm_have_no_old_interfaces() {
    for (st, warm) in [
        (SwitchType::Dpu, false),
        (SwitchType::Switch, true),
        (SwitchType::Dpu, true),
    ] {
        let mut ps = PortSync::new(ports(&["Ethernet0"]), st, warm);
        assert!(!ps.wants_old_interface_shutdown());
        assert!(!ps.mark_old_interface(10, "Ethernet0"));
        ps.on_appl_port("Ethernet0", true, false);
        assert_eq!(
            ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
                .len(),
            1
        );
        assert!(ps.take_port_init_done());
    }
    let (other, _) = SwitchType::parse(Some("voq"));
    assert!(PortSync::new(ports(&[]), other, false).wants_old_interface_shutdown());
}

#[test]
fn port_init_done_exactly_once() {
    let mut ps = running(&["Ethernet0", "Ethernet4"]);
    assert!(!ps.take_port_init_done());
    ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
    assert!(!ps.take_port_init_done());
    assert_eq!(ps.pending_ports(), ports(&["Ethernet4"]));
    ps.link_actions(&new_link("Ethernet4", 11, UP_RUNNING, 9100));
    assert!(ps.take_port_init_done());
    assert!(ps.port_init_done_taken());
    assert!(!ps.take_port_init_done());
    ps.link_actions(&del_link("Ethernet4", 11));
    ps.link_actions(&new_link("Ethernet4", 12, UP_RUNNING, 9100));
    assert!(!ps.take_port_init_done());
}

#[test]
fn port_init_done_with_zero_ports_after_first_link_message() {
    let mut ps = PortSync::new(Vec::new(), SwitchType::Switch, false);
    assert_eq!(ps.port_config_done_count(), 0);
    assert!(!ps.take_port_init_done(), "not during the initial load");
    // the dump reply for lo ends the initial load
    assert!(ps
        .link_actions(&new_link("lo", 1, UP_RUNNING, 65536))
        .is_empty());
    assert!(ps.take_port_init_done());
    assert!(!ps.take_port_init_done());
}

#[test]
fn pre_consumed_port_with_admin_status_releases_on_cold_start() {
    let mut ps = PortSync::new(
        ports(&["Ethernet0", "Ethernet4", "Ethernet8"]),
        SwitchType::Switch,
        false,
    );
    ps.on_appl_port("Ethernet0", true, true);
    ps.on_appl_port("Ethernet4", true, false); // consumed without admin_status
    ps.finish_initial_load();
    assert_eq!(ps.pending_ports(), ports(&["Ethernet4", "Ethernet8"]));
    ps.link_actions(&new_link("Ethernet4", 11, UP_RUNNING, 9100));
    // Ethernet8 gets admin_status now: too late for the pre-check
    ps.on_appl_port("Ethernet8", true, true);
    assert_eq!(ps.pending_ports(), ports(&["Ethernet8"]));
    assert!(!ps.take_port_init_done());
}

#[test]
fn pre_check_is_off_on_warm_start() {
    let mut ps = PortSync::new(ports(&["Ethernet0"]), SwitchType::Switch, true);
    ps.on_appl_port("Ethernet0", true, true);
    ps.finish_initial_load();
    assert_eq!(ps.pending_ports(), ports(&["Ethernet0"]));
    assert!(!ps.take_port_init_done());
    assert_eq!(
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100)),
        vec![set("Ethernet0", "up", "up", "9100")]
    );
    assert!(ps.take_port_init_done());
    assert!(!ps.take_port_init_done());
}

#[test]
fn warm_start_has_no_config_ops() {
    let cfg = vec![("Ethernet0".to_string(), fv(&[("lanes", "0,1")]))];
    assert!(port_config_ops(&cfg, true).is_empty());
    assert!(port_config_ops(&[], true).is_empty());
}

#[test]
fn port_config_ops_copy_verbatim_and_count_distinct() {
    let cfg = vec![
        (
            "Ethernet0".to_string(),
            fv(&[("lanes", "0,1,2,3"), ("speed", "100000"), ("alias", "etp1")]),
        ),
        (
            "Ethernet4".to_string(),
            fv(&[
                ("speed", "not-a-number"),
                ("", "\u{0}garbage"),
                ("lanes", ""),
            ]),
        ),
        ("Ethernet0".to_string(), fv(&[("mtu", "9100")])),
    ];
    let ops = port_config_ops(&cfg, false);
    assert_eq!(&ops[..3], &cfg[..]);
    assert_eq!(
        ops[3],
        ("PortConfigDone".to_string(), fv(&[("count", "2")]))
    );
    assert_eq!(ops.len(), 4);
    assert_eq!(
        port_config_ops(&[], false),
        vec![("PortConfigDone".to_string(), fv(&[("count", "0")]))]
    );
    let ps = PortSync::new(
        cfg.iter().map(|(k, _)| k.clone()),
        SwitchType::Switch,
        false,
    );
    assert_eq!(ps.port_config_done_count(), 2);
    assert_eq!(
        port_init_done_op(),
        ("PortInitDone".to_string(), fv(&[("lanes", "0")]))
    );
}

#[test]
fn port_config_count_follows_the_config_ports() {
    // Cold start wrote count=3 for these three; nothing to write.
    let mut c = PortConfigCount::new(3, ports(&["Ethernet0", "Ethernet4", "Ethernet8"]));
    assert_eq!((c.count(), c.acked()), (3, 3));
    assert!(!c.wants_write());
    assert_eq!(c.take_write(), None);
    // A field change of an existing port is no change of the count.
    assert!(!c.on_config_port("Ethernet0", true));
    assert_eq!(c.take_write(), None);

    // Breakout of Ethernet0 into four: DEL, then four SETs (Ethernet0
    // again among them). Each change counts; one write in flight, the
    // rest coalesce into the next.
    assert!(c.on_config_port("Ethernet0", false));
    assert_eq!(c.take_write(), Some(2));
    assert!(c.in_flight());
    for name in ["Ethernet0", "Ethernet1", "Ethernet2", "Ethernet3"] {
        assert!(c.on_config_port(name, true));
        assert_eq!(c.take_write(), None, "one write at a time");
    }
    assert!(!c.wants_write());
    c.write_done();
    assert_eq!(c.acked(), 2);
    assert_eq!(c.take_write(), Some(6));
    c.write_done();
    assert_eq!((c.count(), c.acked()), (6, 6));
    assert_eq!(c.take_write(), None);
    c.write_done(); // nothing in flight: no effect
    assert_eq!(c.acked(), 6);

    // Back to 1x: three deletions, a failed write, wanted again.
    for name in ["Ethernet1", "Ethernet2", "Ethernet3"] {
        assert!(c.on_config_port(name, false));
    }
    assert!(!c.on_config_port("Ethernet1", false), "already gone");
    assert_eq!(c.take_write(), Some(3));
    c.write_failed();
    assert_eq!(c.acked(), 6);
    assert!(c.wants_write());
    assert_eq!(c.take_write(), Some(3));
    c.write_done();
    assert_eq!(c.acked(), 3);

    // A change undone before the write goes out writes nothing.
    assert!(c.on_config_port("Ethernet12", true));
    assert!(c.on_config_port("Ethernet12", false));
    assert_eq!(c.take_write(), None);

    // Reload (after a reconnect) replaces the keys.
    c.reload(ports(&["Ethernet0", "Ethernet4"]));
    assert_eq!(c.take_write(), Some(2));
    assert_eq!(
        port_config_done_op(2),
        ("PortConfigDone".to_string(), fv(&[("count", "2")]))
    );
}

#[test]
fn port_config_count_start_up_difference_is_written_at_once() {
    // The CONFIG_DB load at subscription time already differs from the
    // count the start-up copy wrote (a port added in between); the
    // duplicate key counts once.
    let mut c = PortConfigCount::new(
        2,
        ports(&["Ethernet0", "Ethernet4", "Ethernet8", "Ethernet0"]),
    );
    assert_eq!(c.count(), 3);
    assert!(c.wants_write());
    assert_eq!(c.take_write(), Some(3));
    // An empty configuration is a count of 0, as the C++'s cold start.
    let mut c = PortConfigCount::new(1, ports(&[]));
    assert_eq!(c.take_write(), Some(0));
}

#[test]
fn pending_ports_sorted() {
    let ps = PortSync::new(
        ports(&["Ethernet8", "Ethernet0", "PortChannel2", "Ethernet4"]),
        SwitchType::Switch,
        false,
    );
    assert_eq!(
        ps.pending_ports(),
        ports(&["Ethernet0", "Ethernet4", "Ethernet8", "PortChannel2"])
    );
}

#[test]
fn switch_type_parsing() {
    assert_eq!(SwitchType::parse(None), (SwitchType::Switch, None));
    assert_eq!(
        SwitchType::parse(Some("switch")),
        (SwitchType::Switch, None)
    );
    assert_eq!(SwitchType::parse(Some("dpu")), (SwitchType::Dpu, None));
    for v in ["voq", "fabric", "chassis-packet", "npu", "dummy-sup"] {
        let (st, w) = SwitchType::parse(Some(v));
        assert_eq!(st, SwitchType::Other(v.to_string()));
        assert_eq!(st.as_str(), v);
        assert!(!st.is_dpu());
        assert_eq!(w, None);
    }
    for v in ["DPU", "", "leaf", "dpu "] {
        let (st, w) = SwitchType::parse(Some(v));
        assert_eq!(st, SwitchType::Switch, "{v:?}");
        assert!(
            w.is_some_and(|w| w.contains("invalid switch_type")),
            "{v:?}"
        );
    }
    assert!(SwitchType::parse(Some("dpu")).0.is_dpu());
}

#[test]
fn rewrite_all_repeats_current_state_of_present_ports() {
    let mut ps = running(&["Ethernet0", "Ethernet4"]);
    ps.link_actions(&new_link("Ethernet4", 11, IFF_UP, 1500));
    ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
    ps.link_actions(&new_link("Ethernet8", 12, UP_RUNNING, 9100)); // not in APPL_DB
    assert_eq!(
        ps.rewrite_all(),
        vec![
            set("Ethernet0", "up", "up", "9100"),
            set("Ethernet4", "down", "up", "1500")
        ]
    );
    assert!(ps
        .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
        .is_empty());
}

#[test]
fn external_state_delete_is_restored() {
    let mut ps = running(&["Ethernet0"]);
    ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
    assert_eq!(
        ps.on_state_port_deleted("Ethernet0"),
        vec![set("Ethernet0", "up", "up", "9100")]
    );
    assert!(ps
        .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
        .is_empty());
    // our own DELLINK: nothing to restore
    ps.link_actions(&del_link("Ethernet0", 10));
    assert!(ps.on_state_port_deleted("Ethernet0").is_empty());
    // not in APPL_DB: nothing to restore
    assert!(ps.on_state_port_deleted("PortChannel1").is_empty());
}

// ===== property test =====

#[derive(Debug, Clone)]
enum Input {
    Link(LinkEvent),
    Appl {
        name: String,
        present: bool,
        admin: bool,
    },
}

const NAMES: [&str; 5] = [
    "Ethernet0",
    "Ethernet4",
    "PortChannel1",
    "eth0",
    "Ethernet8",
];
const OLD_IFINDEX: u32 = 99;

fn link_strategy() -> impl Strategy<Value = LinkEvent> {
    (
        any::<bool>(),
        prop_oneof![Just(0u8), Just(AF_BRIDGE)],
        prop_oneof![Just(10u32), Just(11), Just(12), Just(OLD_IFINDEX)],
        0..NAMES.len(),
        0u32..0x80,
        prop_oneof![Just(None), Just(Some(1500u32)), Just(Some(9100))],
        prop_oneof![Just(None), Just(Some(20u32))],
        prop_oneof![
            Just(None),
            Just(Some("team".to_string())),
            Just(Some("bridge".to_string()))
        ],
    )
        .prop_map(
            |(del, family, ifindex, n, flags, mtu, master, kind)| LinkEvent {
                msg_type: if del {
                    LinkMsgType::Del
                } else {
                    LinkMsgType::New
                },
                family,
                ifindex,
                name: NAMES[n].to_string(),
                flags,
                mtu,
                master,
                kind,
            },
        )
}

fn input_strategy() -> impl Strategy<Value = Input> {
    prop_oneof![
        3 => link_strategy().prop_map(Input::Link),
        1 => (0..NAMES.len(), any::<bool>(), any::<bool>()).prop_map(|(n, present, admin)| Input::Appl {
            name: NAMES[n].to_string(),
            present,
            admin,
        }),
    ]
}

/// Whether the C++ LinkSync::onMsg would act on the event (d.3 steps 1-5).
fn counts(ev: &LinkEvent, old: bool) -> bool {
    (ev.name.starts_with("Ethernet") || ev.name.starts_with("PortChannel"))
        && ev.kind.as_deref() != Some("team")
        && !(ev.msg_type == LinkMsgType::Del && ev.master.is_some())
        && !(old && ev.ifindex == OLD_IFINDEX)
}

proptest! {
    #[test]
    fn state_db_converges_without_duplicate_writes(
        inputs in proptest::collection::vec(input_strategy(), 0..60),
        warm in any::<bool>(),
    ) {
        let mut ps = PortSync::new(ports(&["Ethernet0", "Ethernet4", "PortChannel1"]), SwitchType::Switch, warm);
        // recorded on cold starts only
        let old = ps.mark_old_interface(OLD_IFINDEX, "Ethernet8");
        prop_assert_eq!(old, !warm);
        // STATE_DB as the actions leave it, per name
        let mut state_db: HashMap<String, FieldValues> = HashMap::new();
        // the last Set emitted since the last Del / APPL_DB removal
        let mut last_set: HashMap<String, FieldValues> = HashMap::new();
        // reference: latest netdev state per name (None after a DELLINK)
        let mut netdev: HashMap<String, Option<LinkState>> = HashMap::new();
        let mut present: HashSet<String> = HashSet::new();
        let mut init_done = 0;

        let apply = |acts: Vec<StateAction>,
                         state_db: &mut HashMap<String, FieldValues>,
                         last_set: &mut HashMap<String, FieldValues>|
         -> Result<usize, TestCaseError> {
            let n = acts.len();
            for a in acts {
                match a {
                    StateAction::SetPortState { name, fields } => {
                        prop_assert_ne!(last_set.get(&name), Some(&fields), "duplicate write for {}", name);
                        last_set.insert(name.clone(), fields.clone());
                        state_db.insert(name, fields);
                    }
                    StateAction::DelPortState { name } => {
                        last_set.remove(&name);
                        state_db.remove(&name);
                    }
                }
            }
            Ok(n)
        };

        for input in &inputs {
            match input {
                Input::Link(ev) => {
                    let outcome = ps.on_link(ev);
                    let passed = !matches!(
                        outcome,
                        LinkOutcome::Dropped(r) if r != DropReason::NotInApplDb
                    );
                    prop_assert_eq!(passed, counts(ev, old));
                    let acts: Vec<StateAction> = outcome.into_action().into_iter().collect();
                    if counts(ev, old) {
                        let prev_mtu = netdev.get(&ev.name).copied().flatten().map(|s| s.mtu);
                        let st = match ev.msg_type {
                            LinkMsgType::Del => None,
                            LinkMsgType::New => Some(LinkState {
                                admin_up: ev.flags & IFF_UP != 0,
                                oper_up: ev.flags & IFF_RUNNING != 0,
                                mtu: ev.mtu.or(prev_mtu).unwrap_or(0),
                            }),
                        };
                        netdev.insert(ev.name.clone(), st);
                    } else {
                        prop_assert!(acts.is_empty());
                    }
                    apply(acts, &mut state_db, &mut last_set)?;
                }
                Input::Appl { name, present: p, admin } => {
                    if *p { present.insert(name.clone()); } else {
                        present.remove(name);
                        last_set.remove(name);
                    }
                    let acts = ps.on_appl_port(name, *p, *admin);
                    apply(acts, &mut state_db, &mut last_set)?;
                }
            }
            if ps.take_port_init_done() { init_done += 1; }
        }
        ps.finish_initial_load();
        if ps.take_port_init_done() { init_done += 1; }
        prop_assert!(init_done <= 1);
        prop_assert_eq!(init_done == 1, ps.pending_ports().is_empty());

        // Convergence: every port in APPL_DB shows its netdev's latest state.
        for (name, st) in &netdev {
            if !present.contains(name) { continue; }
            match st {
                Some(st) => prop_assert_eq!(state_db.get(name), Some(&st.fields()), "{}", name),
                None => prop_assert_eq!(state_db.get(name), None, "{}", name),
            }
        }

        // Replaying the final state: the first replay may only touch
        // nothing (already converged), the second certainly writes nothing.
        let replay: Vec<LinkEvent> = netdev
            .iter()
            .filter_map(|(name, st)| {
                st.map(|st| {
                    let flags = (u32::from(st.admin_up) * IFF_UP) | (u32::from(st.oper_up) * IFF_RUNNING);
                    new_link(name, 10, flags, st.mtu)
                })
            })
            .collect();
        for _ in 0..2 {
            for ev in &replay {
                prop_assert_eq!(ps.link_actions(ev), Vec::new());
            }
            for name in present.clone() {
                prop_assert_eq!(ps.on_appl_port(&name, true, false), Vec::new());
            }
        }
        prop_assert!(!ps.take_port_init_done() || init_done == 0);
    }
}
