//! The sync rules' unit and property tests (crate::sync).

use super::*;
use crate::context::ConfigTable;
use proptest::prelude::*;
use sonic_netlink::fmt::ip_to_string;

const MAC: [u8; 6] = [0x00, 0xe0, 0xec, 0x3b, 0xd6, 0xac];

fn ev(msg_type: NeighMsgType, dst: &str, lladdr: Option<[u8; 6]>, state: u16) -> NeighborEvent {
    NeighborEvent {
        dump: false,
        msg_type,
        ifindex: 7,
        dst: dst.parse().unwrap(),
        lladdr,
        state,
        flags: 0,
    }
}

fn new(dst: &str, state: u16) -> NeighborEvent {
    ev(NeighMsgType::New, dst, Some(MAC), state)
}

fn del(dst: &str, state: u16) -> NeighborEvent {
    ev(NeighMsgType::Del, dst, Some(MAC), state)
}

fn ext(mut e: NeighborEvent) -> NeighborEvent {
    e.flags |= NTF_EXT_LEARNED;
    e
}

fn fv(pairs: &[(&str, &str)]) -> FieldValues {
    pairs
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

fn ctx(dual_tor: bool, evpn: bool) -> SyncContext {
    let mut c = SyncContext::new();
    let any = fv(&[("k", "v")]);
    if dual_tor {
        c.apply(ConfigTable::PeerSwitch, "peer", Some(&any));
    }
    if evpn {
        c.apply(ConfigTable::VxlanEvpnNvo, "nvo", Some(&any));
    }
    c
}

fn plain() -> SyncContext {
    ctx(false, false)
}

fn on(e: &NeighborEvent, c: &SyncContext) -> Outcome {
    decide(e, Some("Ethernet8"), None, c)
}

fn set(key: &str, mac: [u8; 6], family: Family) -> Outcome {
    Outcome::Write {
        op: NeighOp::Set {
            key: key.to_owned(),
            mac,
            family,
        },
        route_del: None,
    }
}

fn delete(key: &str) -> Outcome {
    Outcome::Write {
        op: NeighOp::Del {
            key: key.to_owned(),
        },
        route_del: None,
    }
}

fn dropped(r: DropReason) -> Outcome {
    Outcome::Drop(r)
}

// ----- NEIGH_FAILED_TABLE (b.2 step 9a) -----

fn failed(e: &NeighborEvent, c: &SyncContext) -> Option<FailedOp> {
    decide_failed(e, Some("Vlan1000"), c)
}

#[test]
fn failed_ipv6_on_dual_tor_is_published_and_valid_states_clear_it() {
    let c = ctx(true, false);
    let no_mac = |t, s| ev(t, "fc02:1000::2", None, s);
    assert_eq!(
        failed(&no_mac(NeighMsgType::New, nud::FAILED), &c),
        Some(FailedOp::Publish)
    );
    for s in [
        nud::REACHABLE,
        nud::STALE,
        nud::DELAY,
        nud::PROBE,
        nud::PERMANENT,
        nud::NOARP,
    ] {
        assert_eq!(
            failed(&new("fc02:1000::2", s), &c),
            Some(FailedOp::Clear),
            "state {s:#x}"
        );
    }
    // A delete clears whatever its state, FAILED included.
    assert_eq!(
        failed(&no_mac(NeighMsgType::Del, nud::FAILED), &c),
        Some(FailedOp::Clear)
    );
    // INCOMPLETE (nbrmgrd's own move) and NONE leave the key.
    assert_eq!(
        failed(&no_mac(NeighMsgType::New, nud::INCOMPLETE), &c),
        Some(FailedOp::Keep)
    );
    assert_eq!(
        failed(&no_mac(NeighMsgType::New, nud::NONE), &c),
        Some(FailedOp::Keep)
    );
    // RTM_GETNEIGH in FAILED: upstream publishes on RTM_NEWNEIGH only.
    assert_eq!(
        failed(&no_mac(NeighMsgType::Get, nud::FAILED), &c),
        Some(FailedOp::Keep)
    );
}

#[test]
fn failed_table_is_dual_tor_ipv6_only_and_after_the_link_local_filters() {
    let dual = ctx(true, false);
    let fail6 = ev(NeighMsgType::New, "fc02:1000::2", None, nud::FAILED);
    assert_eq!(failed(&fail6, &plain()), None, "not a dual-ToR");
    let fail4 = ev(NeighMsgType::New, "192.168.0.2", None, nud::FAILED);
    assert_eq!(failed(&fail4, &dual), None, "IPv4");
    assert_eq!(
        decide_failed(&fail6, None, &dual),
        None,
        "unknown interface"
    );
    // Link-local without ipv6_use_link_local_only: filtered before.
    let ll = ev(NeighMsgType::New, "fe80::2", None, nud::FAILED);
    assert_eq!(failed(&ll, &dual), None);
    // ... but its delete passes the filter, as in the C++.
    let ll_del = ev(NeighMsgType::Del, "fe80::2", None, nud::FAILED);
    assert_eq!(failed(&ll_del, &dual), Some(FailedOp::Clear));
    let mc = ev(NeighMsgType::New, "ff02::1", None, nud::FAILED);
    assert_eq!(failed(&mc, &dual), None);
    // Before the EVPN PROBE and NOARP filters: both still clear.
    let evpn = ctx(true, true);
    assert_eq!(
        failed(&new("fc02:1000::2", nud::PROBE), &evpn),
        Some(FailedOp::Clear)
    );
    assert_eq!(
        failed(&new("fc02:1000::2", nud::NOARP), &dual),
        Some(FailedOp::Clear)
    );
}

// ----- opt-in rules -----

#[test]
fn router_interfaces_only_drops_other_interfaces_adds_and_deletes() {
    use crate::context::SyncOptions;
    let mut c = SyncContext::with_options(SyncOptions {
        router_interfaces_only: true,
        ..SyncOptions::default()
    });
    c.apply(ConfigTable::PeerSwitch, "peer", Some(&fv(&[("k", "v")])));
    c.apply(
        ConfigTable::Interface,
        "Ethernet8|10.0.0.0/31",
        Some(&Vec::new()),
    );
    let reach = new("10.0.0.2", nud::REACHABLE);
    assert_eq!(on(&reach, &c), set("Ethernet8:10.0.0.2", MAC, Family::IPv4));
    let on_docker = |e: &NeighborEvent| decide(e, Some("docker0"), None, &c);
    assert_eq!(on_docker(&reach), dropped(DropReason::NotRouterInterface));
    assert_eq!(
        on_docker(&del("10.0.0.2", nud::REACHABLE)),
        dropped(DropReason::NotRouterInterface)
    );
    let failed6 = ev(NeighMsgType::New, "fc02::2", None, nud::FAILED);
    assert_eq!(decide_failed(&failed6, Some("docker0"), &c), None);
    assert_eq!(
        decide_failed(&failed6, Some("Ethernet8"), &c),
        Some(FailedOp::Publish)
    );
}

// ----- keys and fields -----

#[test]
fn ipv4_set_key_and_fields() {
    let out = on(&new("10.0.0.2", nud::REACHABLE), &plain());
    assert_eq!(out, set("Ethernet8:10.0.0.2", MAC, Family::IPv4));
    let Outcome::Write { op, .. } = out else {
        panic!("not a write")
    };
    assert_eq!(op.key(), "Ethernet8:10.0.0.2");
    assert_eq!(
        op.fields(),
        fv(&[("neigh", "00:e0:ec:3b:d6:ac"), ("family", "IPv4")])
    );
}

#[test]
fn ipv6_key_text_and_field_order() {
    let out = decide(
        &new("fc02:1000::2", nud::REACHABLE),
        Some("Vlan1000"),
        None,
        &plain(),
    );
    let Outcome::Write { op, route_del } = out else {
        panic!("not a write: {out:?}")
    };
    assert_eq!(route_del, None);
    assert_eq!(op.key(), "Vlan1000:fc02:1000::2");
    assert_eq!(
        op.fields(),
        fv(&[("neigh", "00:e0:ec:3b:d6:ac"), ("family", "IPv6")])
    );

    let mut c = plain();
    c.apply(
        ConfigTable::Interface,
        "Ethernet8",
        Some(&fv(&[("ipv6_use_link_local_only", "enable")])),
    );
    assert_eq!(
        on(&new("FE80::2E0:ECFF:FE3B:D6AC", nud::STALE), &c),
        set("Ethernet8:fe80::2e0:ecff:fe3b:d6ac", MAC, Family::IPv6)
    );
    // IPv4-compatible addresses print as glibc does.
    assert_eq!(
        on(&new("::10.0.0.1", nud::REACHABLE), &plain()),
        set("Ethernet8:::10.0.0.1", MAC, Family::IPv6)
    );
}

#[test]
fn mac_text_is_lowercase() {
    let e = ev(
        NeighMsgType::New,
        "10.0.0.2",
        Some([0xAA, 0xBB, 0xCC, 0x0D, 0x0E, 0x0F]),
        nud::REACHABLE,
    );
    let Outcome::Write { op, .. } = on(&e, &plain()) else {
        panic!("not a write")
    };
    assert_eq!(op.fields()[0].1, "aa:bb:cc:0d:0e:0f");
}

#[test]
fn del_fields_are_empty_and_key_is_the_same() {
    let out = on(&del("10.0.0.2", nud::REACHABLE), &plain());
    assert_eq!(out, delete("Ethernet8:10.0.0.2"));
    let Outcome::Write { op, .. } = out else {
        panic!("not a write")
    };
    assert!(op.fields().is_empty());
}

#[test]
fn family_and_reason_labels() {
    assert_eq!(Family::IPv4.as_str(), "IPv4");
    assert_eq!(Family::IPv6.as_str(), "IPv6");
    let labels: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        labels,
        [
            "unknown_interface",
            "not_router_interface",
            "link_local_dual_tor",
            "ipv6_link_local",
            "ipv6_multicast_link_local",
            "evpn_probe",
            "noarp",
            "no_mac",
            "broadcast_mac"
        ]
    );
}

// ----- states -----

#[test]
fn resolved_states_are_set() {
    for state in [
        nud::PERMANENT,
        nud::NONE,
        nud::STALE,
        nud::DELAY,
        nud::REACHABLE,
        nud::PROBE,
    ] {
        assert_eq!(
            on(&new("10.0.0.2", state), &plain()),
            set("Ethernet8:10.0.0.2", MAC, Family::IPv4),
            "state {state:#x}"
        );
    }
    // Equality tests: a combined value is not INCOMPLETE, so it is a Set.
    assert_eq!(
        on(&new("10.0.0.2", nud::INCOMPLETE | nud::REACHABLE), &plain()),
        set("Ethernet8:10.0.0.2", MAC, Family::IPv4)
    );
}

#[test]
fn get_neigh_is_handled_like_new() {
    let e = ev(NeighMsgType::Get, "10.0.0.2", Some(MAC), nud::REACHABLE);
    assert_eq!(
        on(&e, &plain()),
        set("Ethernet8:10.0.0.2", MAC, Family::IPv4)
    );
}

#[test]
fn unresolved_is_deleted_without_dual_tor() {
    for state in [nud::INCOMPLETE, nud::FAILED] {
        assert_eq!(
            on(&new("10.0.0.2", state), &plain()),
            delete("Ethernet8:10.0.0.2")
        );
        // Even without a MAC: deletes skip the MAC checks.
        let e = ev(NeighMsgType::New, "10.0.0.2", None, state);
        assert_eq!(on(&e, &plain()), delete("Ethernet8:10.0.0.2"));
    }
}

#[test]
fn unresolved_on_dual_tor_is_zero_mac() {
    let c = ctx(true, false);
    for state in [nud::INCOMPLETE, nud::FAILED] {
        assert_eq!(
            on(&new("192.168.0.2", state), &c),
            set("Ethernet8:192.168.0.2", ZERO_MAC, Family::IPv4)
        );
        // The kernel's (missing or broadcast) lladdr is not consulted.
        for lladdr in [None, Some(BROADCAST_MAC)] {
            let e = ev(NeighMsgType::New, "fc02:1000::2", lladdr, state);
            let out = decide(&e, Some("Vlan1000"), None, &c);
            assert_eq!(out, set("Vlan1000:fc02:1000::2", ZERO_MAC, Family::IPv6));
            let Outcome::Write { op, .. } = out else {
                panic!("not a write")
            };
            assert_eq!(op.fields()[0].1, "00:00:00:00:00:00");
        }
        // RTM_DELNEIGH in that state is a delete.
        assert_eq!(
            on(&del("192.168.0.2", state), &c),
            delete("Ethernet8:192.168.0.2")
        );
    }
    // Resolved states on dual-ToR are ordinary.
    assert_eq!(
        on(&new("192.168.0.2", nud::REACHABLE), &c),
        set("Ethernet8:192.168.0.2", MAC, Family::IPv4)
    );
}

// ----- step 3: unknown interface -----

#[test]
fn unknown_interface_is_dropped_first() {
    for e in [
        new("10.0.0.2", nud::REACHABLE),
        del("10.0.0.2", nud::REACHABLE),
        new("169.254.0.1", nud::REACHABLE),
        ev(NeighMsgType::New, "10.0.0.2", None, nud::REACHABLE),
    ] {
        assert_eq!(
            decide(&e, None, Some("Vrf-red"), &ctx(true, true)),
            dropped(DropReason::UnknownInterface)
        );
    }
}

// ----- step 6: IPv4 link-local on dual-ToR -----

#[test]
fn ipv4_link_local_on_dual_tor_is_dropped_adds_and_deletes() {
    let c = ctx(true, false);
    for e in [
        new("169.254.0.1", nud::REACHABLE),
        new("169.254.255.254", nud::PERMANENT),
        del("169.254.0.1", nud::REACHABLE),
        // Before the dual-ToR zero-MAC rule.
        new("169.254.0.1", nud::INCOMPLETE),
    ] {
        assert_eq!(on(&e, &c), dropped(DropReason::LinkLocalDualTor));
    }
    // Neighbouring ranges are not link-local.
    assert_eq!(
        on(&new("169.253.0.1", nud::REACHABLE), &c),
        set("Ethernet8:169.253.0.1", MAC, Family::IPv4)
    );
    assert_eq!(
        on(&new("169.255.0.1", nud::REACHABLE), &c),
        set("Ethernet8:169.255.0.1", MAC, Family::IPv4)
    );
    // Not dual-ToR: written.
    assert_eq!(
        on(&new("169.254.0.1", nud::REACHABLE), &plain()),
        set("Ethernet8:169.254.0.1", MAC, Family::IPv4)
    );
    assert_eq!(
        on(&del("169.254.0.1", nud::REACHABLE), &plain()),
        delete("Ethernet8:169.254.0.1")
    );
}

// ----- step 7: IPv6 link-local -----

fn ll_ctx(table: ConfigTable, key: &str) -> SyncContext {
    let mut c = plain();
    c.apply(
        table,
        key,
        Some(&fv(&[("ipv6_use_link_local_only", "enable")])),
    );
    c
}

#[test]
fn ipv6_link_local_needs_link_local_mode() {
    let e = new("fe80::1", nud::REACHABLE);
    let cases = [
        (ConfigTable::Interface, "Ethernet0"),
        (ConfigTable::PortchannelInterface, "PortChannel0001"),
        (ConfigTable::VlanInterface, "Vlan1000"),
    ];
    for (table, name) in cases {
        // Off without configuration.
        assert_eq!(
            decide(&e, Some(name), None, &plain()),
            dropped(DropReason::Ipv6LinkLocal),
            "{name}"
        );
        // On when the whole-name key has the field.
        let c = ll_ctx(table, name);
        assert_eq!(
            decide(&e, Some(name), None, &c),
            set(&format!("{name}:fe80::1"), MAC, Family::IPv6)
        );
        // An address key does not count.
        let c = ll_ctx(table, &format!("{name}|fe80::1/64"));
        assert_eq!(
            decide(&e, Some(name), None, &c),
            dropped(DropReason::Ipv6LinkLocal)
        );
    }
    // Other names never have link-local mode.
    let c = ll_ctx(ConfigTable::Interface, "eth0");
    assert_eq!(
        decide(&e, Some("eth0"), None, &c),
        dropped(DropReason::Ipv6LinkLocal)
    );
    // The whole fe80::/10 range counts; fec0:: does not.
    let c = plain();
    assert_eq!(
        on(&new("febf::1", nud::REACHABLE), &c),
        dropped(DropReason::Ipv6LinkLocal)
    );
    assert_eq!(
        on(&new("fec0::1", nud::REACHABLE), &c),
        set("Ethernet8:fec0::1", MAC, Family::IPv6)
    );
}

#[test]
fn ipv6_link_local_delete_always_passes() {
    assert_eq!(
        on(&del("fe80::1", nud::REACHABLE), &plain()),
        delete("Ethernet8:fe80::1")
    );
    assert_eq!(
        decide(&del("fe80::1", nud::STALE), Some("lo"), None, &plain()),
        delete("lo:fe80::1")
    );
}

#[test]
fn ipv6_link_local_filter_comes_before_later_rules() {
    // Ahead of the EVPN PROBE and NOARP filters, and of the missing-MAC check.
    assert_eq!(
        on(&new("fe80::1", nud::PROBE), &ctx(false, true)),
        dropped(DropReason::Ipv6LinkLocal)
    );
    assert_eq!(
        on(&new("fe80::1", nud::NOARP), &plain()),
        dropped(DropReason::Ipv6LinkLocal)
    );
    let e = ev(NeighMsgType::New, "fe80::1", None, nud::REACHABLE);
    assert_eq!(on(&e, &plain()), dropped(DropReason::Ipv6LinkLocal));
}

// ----- step 8: IPv6 multicast link-local -----

#[test]
fn ipv6_multicast_link_local_is_dropped() {
    let c = plain();
    for ip in ["ff02::1", "ff12::1:ff00:2", "ff32::5"] {
        assert_eq!(
            on(&new(ip, nud::NOARP), &c),
            dropped(DropReason::Ipv6MulticastLinkLocal),
            "{ip}"
        );
        assert_eq!(
            on(&del(ip, nud::REACHABLE), &c),
            dropped(DropReason::Ipv6MulticastLinkLocal),
            "{ip}"
        );
    }
    // Other multicast scopes are not this filter's business.
    assert_eq!(
        on(&new("ff05::2", nud::REACHABLE), &c),
        set("Ethernet8:ff05::2", MAC, Family::IPv6)
    );
}

// ----- step 10: EVPN PROBE -----

#[test]
fn evpn_drops_new_probe_only() {
    let c = ctx(false, true);
    assert_eq!(
        on(&new("10.0.0.2", nud::PROBE), &c),
        dropped(DropReason::EvpnProbe)
    );
    // RTM_GETNEIGH is not RTM_NEWNEIGH for this rule (as the C++).
    let e = ev(NeighMsgType::Get, "10.0.0.2", Some(MAC), nud::PROBE);
    assert_eq!(on(&e, &c), set("Ethernet8:10.0.0.2", MAC, Family::IPv4));
    assert_eq!(
        on(&del("10.0.0.2", nud::PROBE), &c),
        delete("Ethernet8:10.0.0.2")
    );
    // Outside EVPN, PROBE is an ordinary Set.
    assert_eq!(
        on(&new("10.0.0.2", nud::PROBE), &plain()),
        set("Ethernet8:10.0.0.2", MAC, Family::IPv4)
    );
}

// ----- steps 11-12: NOARP -----

#[test]
fn noarp_without_evpn() {
    let c = plain();
    assert_eq!(
        on(&new("10.0.0.2", nud::NOARP), &c),
        dropped(DropReason::NoArp)
    );
    // f.10: deletes in NOARP state are dropped too, as in the C++.
    assert_eq!(
        on(&del("10.0.0.2", nud::NOARP), &c),
        dropped(DropReason::NoArp)
    );
    // Before the dual-ToR rules and the MAC checks.
    let e = ev(NeighMsgType::New, "10.0.0.2", None, nud::NOARP);
    assert_eq!(on(&e, &ctx(true, false)), dropped(DropReason::NoArp));
    // NTF_EXT_LEARNED makes it an ordinary Set (or Del).
    assert_eq!(
        on(&ext(new("10.0.0.2", nud::NOARP)), &c),
        set("Ethernet8:10.0.0.2", MAC, Family::IPv4)
    );
    assert_eq!(
        on(&ext(del("10.0.0.2", nud::NOARP)), &c),
        delete("Ethernet8:10.0.0.2")
    );
    // Other flag bits do not count as NTF_EXT_LEARNED.
    let mut e = new("10.0.0.2", nud::NOARP);
    e.flags = !NTF_EXT_LEARNED;
    assert_eq!(on(&e, &c), dropped(DropReason::NoArp));
}

#[test]
fn noarp_with_evpn() {
    let c = ctx(false, true);
    // Moved to remote: delete (even with no MAC).
    assert_eq!(
        on(&new("10.0.0.2", nud::NOARP), &c),
        delete("Ethernet8:10.0.0.2")
    );
    let e = ev(NeighMsgType::New, "10.0.0.2", None, nud::NOARP);
    assert_eq!(on(&e, &c), delete("Ethernet8:10.0.0.2"));
    // EVPN-synced: kept as a Set.
    assert_eq!(
        on(&ext(new("10.0.0.2", nud::NOARP)), &c),
        set("Ethernet8:10.0.0.2", MAC, Family::IPv4)
    );
    // ... and still subject to the MAC checks.
    let e = ext(ev(NeighMsgType::New, "10.0.0.2", None, nud::NOARP));
    assert_eq!(on(&e, &c), dropped(DropReason::NoMac));
    let e = ext(ev(
        NeighMsgType::New,
        "10.0.0.2",
        Some(BROADCAST_MAC),
        nud::NOARP,
    ));
    assert_eq!(on(&e, &c), dropped(DropReason::BroadcastMac));
    // Deletes are deletes.
    assert_eq!(
        on(&del("10.0.0.2", nud::NOARP), &c),
        delete("Ethernet8:10.0.0.2")
    );
    assert_eq!(
        on(&ext(del("10.0.0.2", nud::NOARP)), &c),
        delete("Ethernet8:10.0.0.2")
    );
}

// ----- steps 13-15: MAC -----

#[test]
fn missing_mac_drops_adds_only() {
    let e = ev(NeighMsgType::New, "10.0.0.2", None, nud::REACHABLE);
    assert_eq!(on(&e, &plain()), dropped(DropReason::NoMac));
    let e = ev(NeighMsgType::Del, "10.0.0.2", None, nud::REACHABLE);
    assert_eq!(on(&e, &plain()), delete("Ethernet8:10.0.0.2"));
}

#[test]
fn broadcast_mac_drops_adds_only() {
    let e = ev(
        NeighMsgType::New,
        "10.0.0.255",
        Some(BROADCAST_MAC),
        nud::PERMANENT,
    );
    assert_eq!(on(&e, &plain()), dropped(DropReason::BroadcastMac));
    let e = ev(
        NeighMsgType::Del,
        "10.0.0.255",
        Some(BROADCAST_MAC),
        nud::PERMANENT,
    );
    assert_eq!(on(&e, &plain()), delete("Ethernet8:10.0.0.255"));
    // Almost-broadcast is a normal MAC.
    let near = [0xff, 0xff, 0xff, 0xff, 0xff, 0xfe];
    let e = ev(NeighMsgType::New, "10.0.0.3", Some(near), nud::PERMANENT);
    assert_eq!(
        on(&e, &plain()),
        set("Ethernet8:10.0.0.3", near, Family::IPv4)
    );
}

// ----- step 18: EVPN host-route delete -----

#[test]
fn evpn_vrf_master_deletes_host_route_first() {
    let c = ctx(false, true);
    let out = decide(
        &new("10.0.0.2", nud::REACHABLE),
        Some("Vlan100"),
        Some("Vrf-red"),
        &c,
    );
    assert_eq!(
        out,
        Outcome::Write {
            op: NeighOp::Set {
                key: "Vlan100:10.0.0.2".into(),
                mac: MAC,
                family: Family::IPv4
            },
            route_del: Some("Vrf-red:10.0.0.2".into()),
        }
    );
    let out = decide(
        &new("2001:db8::5", nud::REACHABLE),
        Some("Vlan100"),
        Some("Vrf-red"),
        &c,
    );
    let Outcome::Write { route_del, .. } = out else {
        panic!("not a write")
    };
    assert_eq!(route_del.as_deref(), Some("Vrf-red:2001:db8::5"));

    // EVPN-synced NOARP entries get it too.
    let out = decide(
        &ext(new("10.0.0.2", nud::NOARP)),
        Some("Vlan100"),
        Some("Vrf1"),
        &c,
    );
    let Outcome::Write { route_del, .. } = out else {
        panic!("not a write")
    };
    assert_eq!(route_del.as_deref(), Some("Vrf1:10.0.0.2"));
}

#[test]
fn no_host_route_delete_otherwise() {
    let evpn = ctx(false, true);
    let e = new("10.0.0.2", nud::REACHABLE);
    let want = set("Vlan100:10.0.0.2", MAC, Family::IPv4);
    // Not a VRF master, no master, case differs, empty name.
    for master in [Some("Bridge"), None, Some("vrf-red"), Some(""), Some("Vr")] {
        assert_eq!(
            decide(&e, Some("Vlan100"), master, &evpn),
            want,
            "{master:?}"
        );
    }
    // EVPN off: the master is ignored.
    assert_eq!(decide(&e, Some("Vlan100"), Some("Vrf-red"), &plain()), want);
    // Deletes never carry it.
    assert_eq!(
        decide(
            &del("10.0.0.2", nud::REACHABLE),
            Some("Vlan100"),
            Some("Vrf-red"),
            &evpn
        ),
        delete("Vlan100:10.0.0.2")
    );
}

#[test]
fn evpn_count_semantics_reach_the_rules() {
    let mut c = plain();
    let any = fv(&[("source_vtep", "vtep")]);
    c.apply(ConfigTable::VxlanEvpnNvo, "nvo1", Some(&any));
    c.apply(ConfigTable::VxlanEvpnNvo, "nvo2", Some(&any));
    c.apply(ConfigTable::VxlanEvpnNvo, "nvo1", None);
    assert_eq!(
        on(&new("10.0.0.2", nud::PROBE), &c),
        dropped(DropReason::EvpnProbe)
    );
    c.apply(ConfigTable::VxlanEvpnNvo, "nvo2", None);
    assert_eq!(
        on(&new("10.0.0.2", nud::PROBE), &c),
        set("Ethernet8:10.0.0.2", MAC, Family::IPv4)
    );
}

// ----- properties -----

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<std::net::Ipv4Addr>().prop_map(IpAddr::V4),
        any::<std::net::Ipv6Addr>().prop_map(IpAddr::V6),
        // Special ranges the rules look at.
        any::<u16>().prop_map(|x| IpAddr::V4(std::net::Ipv4Addr::new(
            169,
            254,
            (x >> 8) as u8,
            x as u8
        ))),
        (any::<u8>(), any::<u128>()).prop_map(|(b, rest)| {
            let mut o = (rest & ((1u128 << 112) - 1)).to_be_bytes();
            o[0] = 0xfe;
            o[1] = 0x80 | (b & 0x3f);
            IpAddr::V6(o.into())
        }),
        (any::<u8>(), any::<u128>()).prop_map(|(b, rest)| {
            let mut o = rest.to_be_bytes();
            o[0] = 0xff;
            o[1] = (b & 0xf0) | 0x02;
            IpAddr::V6(o.into())
        }),
        // IPv4-compatible / mapped IPv6 (special text forms).
        any::<u32>().prop_map(|v| IpAddr::V6(std::net::Ipv6Addr::from(v as u128))),
        any::<u32>().prop_map(|v| IpAddr::V6(std::net::Ipv4Addr::from(v).to_ipv6_mapped())),
    ]
}

fn arb_event() -> impl Strategy<Value = NeighborEvent> {
    let msg = prop_oneof![
        Just(NeighMsgType::New),
        Just(NeighMsgType::Del),
        Just(NeighMsgType::Get)
    ];
    let mac = prop_oneof![
        Just(None),
        Just(Some(BROADCAST_MAC)),
        Just(Some(ZERO_MAC)),
        any::<[u8; 6]>().prop_map(Some),
    ];
    let state = prop_oneof![
        prop::sample::select(vec![
            nud::NONE,
            nud::INCOMPLETE,
            nud::REACHABLE,
            nud::STALE,
            nud::DELAY,
            nud::PROBE,
            nud::FAILED,
            nud::NOARP,
            nud::PERMANENT,
        ]),
        any::<u16>(),
    ];
    (msg, any::<u32>(), arb_ip(), mac, state, any::<u8>()).prop_map(
        |(msg_type, ifindex, dst, lladdr, state, flags)| NeighborEvent {
            dump: false,
            msg_type,
            ifindex,
            dst,
            lladdr,
            state,
            flags,
        },
    )
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Ethernet0".to_owned(),
            "PortChannel0001".to_owned(),
            "Vlan1000".to_owned(),
            "eth0".to_owned(),
            "Vrf-red".to_owned(),
            "Bridge".to_owned(),
        ]),
        "[A-Za-z][A-Za-z0-9._-]{0,14}",
    ]
}

fn arb_ctx() -> impl Strategy<Value = SyncContext> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((0usize..3, arb_name(), any::<bool>()), 0..4),
    )
        .prop_map(|(dual, evpn, ll)| {
            let mut c = ctx(dual, evpn);
            let tables = [
                ConfigTable::Interface,
                ConfigTable::PortchannelInterface,
                ConfigTable::VlanInterface,
            ];
            for (t, name, on) in ll {
                let value = if on { "enable" } else { "disable" };
                c.apply(
                    tables[t],
                    &name,
                    Some(&fv(&[("ipv6_use_link_local_only", value)])),
                );
            }
            c
        })
}

proptest! {
    #[test]
    fn decide_is_total_and_keys_round_trip(
        e in arb_event(),
        ifname in prop::option::weighted(0.9, arb_name()),
        master in prop::option::of(arb_name()),
        c in arb_ctx(),
    ) {
        let out = decide(&e, ifname.as_deref(), master.as_deref(), &c);
        match &out {
            Outcome::Write { op, route_del } => {
                let ifname = ifname.as_deref();
                prop_assert!(ifname.is_some());
                let ifname = ifname.unwrap_or_default();
                let key = op.key();
                let (name, ip) = key.split_once(':').unwrap_or(("", ""));
                prop_assert_eq!(name, ifname);
                prop_assert_eq!(ip.parse::<IpAddr>().ok(), Some(e.dst));
                prop_assert_eq!(ip, ip_to_string(&e.dst));
                match op {
                    NeighOp::Set { mac, family, .. } => {
                        prop_assert_ne!(*mac, BROADCAST_MAC);
                        prop_assert_eq!(*family, Family::of(&e.dst));
                        prop_assert_eq!(op.fields().len(), 2);
                        match route_del {
                            Some(r) => {
                                prop_assert!(c.evpn_nvo_exists());
                                let m = master.as_deref().unwrap_or_default();
                                prop_assert!(m.starts_with("Vrf"));
                                prop_assert_eq!(r, &format!("{m}:{ip}"));
                            }
                            None => prop_assert!(
                                !c.evpn_nvo_exists()
                                    || !master.as_deref().unwrap_or_default().starts_with("Vrf")
                            ),
                        }
                    }
                    NeighOp::Del { .. } => prop_assert!(route_del.is_none()),
                }
            }
            Outcome::Drop(DropReason::UnknownInterface) => prop_assert!(ifname.is_none()),
            Outcome::Drop(_) => {}
        }
    }
}
