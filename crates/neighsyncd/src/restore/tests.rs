//! Unit tests of the restore job's pure parts: entries, packets, pass plans.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use etherparse::icmpv6::Icmpv6PayloadSlice;
use etherparse::{
    ArpOperation, EtherType, Icmpv6Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice,
};
use swss::FieldValues;

use super::*;

fn fvs(pairs: &[(&str, &str)]) -> FieldValues {
    pairs
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

const MAC: Mac = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];

#[test]
fn entry_ipv4_and_ipv6_keys_split_at_first_colon() {
    let e = parse_neigh_entry(
        "Ethernet0:10.0.0.1",
        &fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(e.ifname, "Ethernet0");
    assert_eq!(e.ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(e.mac, MAC);

    let e = parse_neigh_entry(
        "Vlan1000:fe80::2e0:ecff:fe3b:d6ac",
        &fvs(&[("family", "IPv6"), ("neigh", "AA:bb:cc:dd:ee:ff")]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(e.ifname, "Vlan1000");
    assert_eq!(e.ip, "fe80::2e0:ecff:fe3b:d6ac".parse::<IpAddr>().unwrap());
    assert_eq!(e.mac, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
}

#[test]
fn entry_lo_is_skipped_without_error() {
    assert_eq!(parse_neigh_entry("lo:10.1.1.1", &fvs(&[])), Ok(None));
}

#[test]
fn entry_errors() {
    let good = fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")]);
    assert!(matches!(
        parse_neigh_entry("Ethernet0", &good),
        Err(EntryError::BadKey { .. })
    ));
    assert!(matches!(
        parse_neigh_entry(":10.0.0.1", &good),
        Err(EntryError::BadKey { .. })
    ));
    assert!(matches!(
        parse_neigh_entry("Ethernet0:10.0.0.256", &good),
        Err(EntryError::BadIp { .. })
    ));
    assert_eq!(
        parse_neigh_entry(
            "Ethernet0:10.0.0.1",
            &fvs(&[("neigh", "00:11:22:33:44:55")])
        ),
        Err(EntryError::MissingField {
            key: "Ethernet0:10.0.0.1".into(),
            field: "family"
        })
    );
    assert_eq!(
        parse_neigh_entry("Ethernet0:10.0.0.1", &fvs(&[("family", "IPv4")])),
        Err(EntryError::MissingField {
            key: "Ethernet0:10.0.0.1".into(),
            field: "neigh"
        })
    );
    assert!(matches!(
        parse_neigh_entry(
            "Ethernet0:10.0.0.1",
            &fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "ipv4")])
        ),
        Err(EntryError::BadFamily { .. })
    ));
    assert_eq!(
        parse_neigh_entry("Ethernet0:fe80::1", &good),
        Err(EntryError::FamilyMismatch {
            key: "Ethernet0:fe80::1".into(),
            family: Family::IPv4
        })
    );
    for bad in [
        "00:11:22:33:44",
        "00:11:22:33:44:55:66",
        "00:11:22:33:44:5g",
        "0:11:22:33:44:55",
        "001122334455",
        "",
    ] {
        assert!(
            matches!(
                parse_neigh_entry(
                    "Ethernet0:10.0.0.1",
                    &fvs(&[("neigh", bad), ("family", "IPv4")])
                ),
                Err(EntryError::BadMac { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn map_groups_by_interface_and_family_and_counts_skips() {
    let parsed = build_neighbor_map(vec![
        (
            "Ethernet4:fc00::2".to_string(),
            fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "IPv6")]),
        ),
        (
            "Ethernet0:10.0.0.1".to_string(),
            fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")]),
        ),
        (
            "Ethernet0:10.0.0.3".to_string(),
            fvs(&[("neigh", "00:11:22:33:44:66"), ("family", "IPv4")]),
        ),
        (
            "Ethernet4:10.0.1.1".to_string(),
            fvs(&[("neigh", "00:11:22:33:44:77"), ("family", "IPv4")]),
        ),
        (
            "lo:10.9.9.9".to_string(),
            fvs(&[("neigh", "00:11:22:33:44:77"), ("family", "IPv4")]),
        ),
        (
            "Ethernet0:10.0.0.9".to_string(),
            fvs(&[("neigh", "zz"), ("family", "IPv4")]),
        ),
        (
            "Ethernet0:10.0.0.8".to_string(),
            fvs(&[("neigh", "00:11:22:33:44:77")]),
        ),
    ]);
    assert_eq!(parsed.skipped.len(), 2);
    assert_eq!(
        parsed.map.keys().collect::<Vec<_>>(),
        ["Ethernet0", "Ethernet4"]
    );
    let e0 = &parsed.map["Ethernet0"];
    assert_eq!(e0.keys().copied().collect::<Vec<_>>(), [Family::IPv4]);
    assert_eq!(
        e0[&Family::IPv4],
        vec![
            ("10.0.0.1".parse().unwrap(), MAC),
            (
                "10.0.0.3".parse().unwrap(),
                [0, 0x11, 0x22, 0x33, 0x44, 0x66]
            )
        ]
    );
    let e4 = &parsed.map["Ethernet4"];
    // IPv4 first, whatever the input order
    assert_eq!(
        e4.keys().copied().collect::<Vec<_>>(),
        [Family::IPv4, Family::IPv6]
    );
}

// ===== pass planning (no kernel, no clock) =====

fn link(ifindex: u32, carrier: bool) -> LinkState {
    LinkState {
        ifindex,
        mac: Some([2, 0, 0, 0, 0, ifindex as u8]),
        carrier,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `ifname` -> (IPv4 count, IPv6 count) pending neighbors.
fn pending_of(spec: &[(&str, usize, usize)]) -> NeighborMap {
    let mut m = NeighborMap::new();
    for (ifname, v4, v6) in spec {
        let fams = m.entry(ifname.to_string()).or_default();
        for k in 0..*v4 {
            fams.entry(Family::IPv4)
                .or_default()
                .push((ip(&format!("10.9.0.{}", k + 1)), MAC));
        }
        for k in 0..*v6 {
            fams.entry(Family::IPv6)
                .or_default()
                .push((ip(&format!("fc09::{}", k + 1)), MAC));
        }
    }
    m
}

fn view(links: &[(&str, LinkState)]) -> PassView {
    let mut v = PassView::default();
    for (name, l) in links {
        v.links.insert(name.to_string(), *l);
        v.addrs.insert(
            (l.ifindex, Family::IPv4),
            ip(&format!("10.0.{}.1", l.ifindex)),
        );
        v.addrs.insert(
            (l.ifindex, Family::IPv6),
            ip(&format!("fc00:{}::1", l.ifindex)),
        );
    }
    v
}

fn ready_names(plan: &PassPlan) -> Vec<&str> {
    plan.ready.iter().map(|r| r.ifname.as_str()).collect()
}

#[test]
fn plan_takes_every_up_interface_with_its_families_and_source_addresses() {
    let pending = pending_of(&[("Ethernet0", 2, 1), ("Ethernet4", 0, 3)]);
    let v = view(&[("Ethernet0", link(5, true)), ("Ethernet4", link(6, true))]);
    let plan = plan_pass(&pending, &v, false);
    assert!(plan.not_ready.is_empty(), "{plan:?}");
    assert!(!plan.settle_now);
    assert_eq!(
        plan.ready,
        vec![
            ReadyInterface {
                ifname: "Ethernet0".into(),
                ifindex: 5,
                mac: [2, 0, 0, 0, 0, 5],
                families: vec![
                    (Family::IPv4, ip("10.0.5.1")),
                    (Family::IPv6, ip("fc00:5::1"))
                ],
                after_settle: false,
            },
            ReadyInterface {
                ifname: "Ethernet4".into(),
                ifindex: 6,
                mac: [2, 0, 0, 0, 0, 6],
                families: vec![(Family::IPv6, ip("fc00:6::1"))],
                after_settle: false,
            },
        ]
    );
}

#[test]
fn plan_reasons_missing_down_no_mac_no_address() {
    let pending = pending_of(&[
        ("Ethernet0", 1, 0),
        ("Ethernet4", 1, 0),
        ("Ethernet8", 1, 0),
        ("Ethernet12", 1, 1),
        ("Ethernet16", 1, 1),
    ]);
    let mut v = view(&[
        ("Ethernet4", link(2, false)),
        ("Ethernet8", link(3, true)),
        ("Ethernet12", link(4, true)),
        ("Ethernet16", link(7, true)),
    ]);
    if let Some(l) = v.links.get_mut("Ethernet8") {
        l.mac = None;
    }
    v.addrs.retain(|(ifindex, _), _| *ifindex != 4);
    // only an IPv6 address on Ethernet16: its IPv4 neighbors wait
    v.addrs.remove(&(7, Family::IPv4));
    let plan = plan_pass(&pending, &v, false);
    assert_eq!(
        plan.not_ready,
        vec![
            ("Ethernet0".to_string(), NotReady::Missing),
            ("Ethernet12".to_string(), NotReady::NoAddress),
            ("Ethernet4".to_string(), NotReady::NoCarrier),
            ("Ethernet8".to_string(), NotReady::NoMac),
        ]
    );
    assert_eq!(ready_names(&plan), ["Ethernet16"]);
    assert_eq!(
        plan.ready[0].families,
        vec![(Family::IPv6, ip("fc00:7::1"))]
    );
}

#[test]
fn plan_vlan_and_lag_need_members_and_the_first_ones_settle_once() {
    let pending = pending_of(&[
        ("Ethernet0", 1, 0),
        ("PortChannel0001", 1, 0),
        ("PortChannel0002", 1, 0),
        ("Vlan1000", 1, 0),
    ]);
    let mut v = view(&[
        ("Ethernet0", link(1, true)),
        ("PortChannel0001", link(2, true)),
        ("PortChannel0002", link(3, true)),
        ("Vlan1000", link(4, true)),
    ]);
    assert!(needs_member_check(&pending, &v.links));
    // not read (None) counts as no members
    let plan = plan_pass(&pending, &v, false);
    assert_eq!(ready_names(&plan), ["Ethernet0"]);
    assert!(!plan.settle_now);
    assert!(plan.not_ready.contains(&(
        "Vlan1000".into(),
        NotReady::NoMembers(STATE_VLAN_MEMBER_TABLE_NAME)
    )));

    // a member of PortChannel00011 is not one of PortChannel0001
    v.members = Some(Members {
        vlan: ["Vlan1000|Ethernet8".to_string()].into(),
        lag: [
            "PortChannel00011|Ethernet12".to_string(),
            "PortChannel0002|Ethernet16".to_string(),
        ]
        .into(),
        sep: '|',
    });
    let plan = plan_pass(&pending, &v, false);
    assert_eq!(
        ready_names(&plan),
        ["Ethernet0", "PortChannel0002", "Vlan1000"]
    );
    assert_eq!(
        plan.not_ready,
        vec![(
            "PortChannel0001".to_string(),
            NotReady::NoMembers(STATE_LAG_MEMBER_TABLE_NAME)
        )]
    );
    assert!(plan.settle_now);
    let after: Vec<bool> = plan.ready.iter().map(|r| r.after_settle).collect();
    assert_eq!(after, [false, true, true]);

    // once settled, nobody waits
    let plan = plan_pass(&pending, &v, true);
    assert!(!plan.settle_now);
    assert!(plan.ready.iter().all(|r| !r.after_settle));
}

#[test]
fn member_tables_are_read_only_for_a_pending_vlan_or_lag_with_carrier() {
    let pending = pending_of(&[("Ethernet0", 1, 0), ("Vlan1000", 1, 0)]);
    let up = view(&[("Ethernet0", link(1, true)), ("Vlan1000", link(2, true))]);
    assert!(needs_member_check(&pending, &up.links));
    let down = view(&[("Ethernet0", link(1, true)), ("Vlan1000", link(2, false))]);
    assert!(!needs_member_check(&pending, &down.links));
    let missing = view(&[("Ethernet0", link(1, true))]);
    assert!(!needs_member_check(&pending, &missing.links));
    let plain = pending_of(&[("Ethernet0", 1, 0)]);
    assert!(!needs_member_check(&plain, &up.links));
}

fn result(
    ifname: &str,
    family: Family,
    restored: usize,
    failed: usize,
    net_down: bool,
) -> FamilyResult {
    FamilyResult {
        ifname: ifname.into(),
        family,
        restored,
        failed,
        net_down,
    }
}

#[test]
fn apply_removes_done_families_and_keeps_enetdown_ones() {
    let mut pending = pending_of(&[
        ("Ethernet0", 2, 2),
        ("Ethernet4", 1, 0),
        ("Ethernet8", 1, 1),
    ]);
    let mut reports = BTreeMap::new();
    let restored = apply_pass(
        &mut pending,
        &mut reports,
        vec![
            result("Ethernet0", Family::IPv4, 2, 0, false),
            result("Ethernet0", Family::IPv6, 1, 0, true),
            result("Ethernet4", Family::IPv4, 0, 1, false),
            result("Ethernet8", Family::IPv4, 1, 0, false),
            result("Ethernet8", Family::IPv6, 0, 0, false),
        ],
    );
    assert_eq!(restored, 3);
    // Ethernet0 keeps IPv6 (ENETDOWN), the others are done
    assert_eq!(pending.keys().collect::<Vec<_>>(), ["Ethernet0"]);
    assert_eq!(
        pending["Ethernet0"].keys().copied().collect::<Vec<_>>(),
        [Family::IPv6]
    );
    assert_eq!(
        reports,
        BTreeMap::from([
            (
                "Ethernet0".to_string(),
                InterfaceReport {
                    restored: 2,
                    failed: 0
                }
            ),
            (
                "Ethernet4".to_string(),
                InterfaceReport {
                    restored: 0,
                    failed: 1
                }
            ),
            (
                "Ethernet8".to_string(),
                InterfaceReport {
                    restored: 1,
                    failed: 0
                }
            ),
        ])
    );
    // next pass: the IPv6 neighbors are found (EEXIST) and counted
    let restored = apply_pass(
        &mut pending,
        &mut reports,
        vec![result("Ethernet0", Family::IPv6, 2, 0, false)],
    );
    assert_eq!(restored, 2);
    assert!(pending.is_empty());
    assert_eq!(
        reports["Ethernet0"],
        InterfaceReport {
            restored: 4,
            failed: 0
        }
    );
}

#[test]
fn another_pass_only_when_it_starts_before_the_timeout() {
    let s = Duration::from_secs;
    assert!(another_pass(s(0), s(5), s(110)));
    assert!(another_pass(s(104), s(5), s(110)));
    assert!(!another_pass(s(105), s(5), s(110)));
    // timeout below the interval: one pass only
    assert!(!another_pass(Duration::ZERO, s(5), s(3)));
}

#[test]
fn seconds_parse() {
    assert_eq!(parse_seconds("5"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
    assert!(parse_seconds("-1").is_err());
    assert!(parse_seconds("abc").is_err());
    assert!(parse_seconds("inf").is_err());
}

#[test]
fn clap_defaults_match_the_script() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: RestoreArgs,
    }
    let cli = Cli::try_parse_from(["restore"]).unwrap();
    assert_eq!(cli.args, RestoreArgs::default());
    let cli = Cli::try_parse_from([
        "restore",
        "--timeout",
        "2",
        "--pass-interval",
        "0.5",
        "--settle",
        "0",
    ])
    .unwrap();
    assert_eq!(cli.args.timeout, Duration::from_secs(2));
    assert_eq!(cli.args.pass_interval, Duration::from_millis(500));
    assert_eq!(cli.args.settle, Duration::ZERO);
}

#[test]
fn arp_who_has_bytes() {
    let src: Ipv4Addr = "10.0.0.254".parse().unwrap();
    let dst: Ipv4Addr = "10.0.0.1".parse().unwrap();
    let frame = arp_who_has(MAC, src, dst).unwrap();
    assert_eq!(frame.len(), 42);
    // Ethernet: dst broadcast, src interface MAC, ethertype ARP
    assert_eq!(&frame[0..6], &BROADCAST_MAC);
    assert_eq!(&frame[6..12], &MAC);
    assert_eq!(&frame[12..14], &[0x08, 0x06]);
    // ARP: htype 1, ptype 0x0800, hlen 6, plen 4, op 1 (request)
    assert_eq!(&frame[14..22], &[0, 1, 0x08, 0x00, 6, 4, 0, 1]);

    let p = SlicedPacket::from_ethernet(&frame).unwrap();
    match p.link {
        Some(LinkSlice::Ethernet2(eth)) => {
            assert_eq!(eth.ether_type(), EtherType::ARP);
            assert_eq!(eth.source(), MAC);
            assert_eq!(eth.destination(), BROADCAST_MAC);
        }
        other => panic!("unexpected link {other:?}"),
    }
    let arp = match p.net {
        Some(NetSlice::Arp(a)) => a.to_packet().try_eth_ipv4().unwrap(),
        other => panic!("unexpected net {other:?}"),
    };
    assert_eq!(arp.operation, ArpOperation::REQUEST);
    assert_eq!(arp.sender_mac, MAC);
    assert_eq!(arp.sender_ipv4_addr(), src);
    assert_eq!(arp.target_mac, [0; 6]);
    assert_eq!(arp.target_ipv4_addr(), dst);
}

#[test]
fn solicited_node_group() {
    let (g, m) = solicited_node("fc00::1:2e0:ecff:fe3b:d6ac".parse().unwrap());
    assert_eq!(g, "ff02::1:ff3b:d6ac".parse::<Ipv6Addr>().unwrap());
    assert_eq!(m, [0x33, 0x33, 0xff, 0x3b, 0xd6, 0xac]);
}

#[test]
fn neighbor_solicitation_bytes() {
    let src: Ipv6Addr = "fe80::211:22ff:fe33:4455".parse().unwrap();
    let target: Ipv6Addr = "fc00::aa:bbcc:ddee".parse().unwrap();
    let frame = neighbor_solicitation(MAC, src, target).unwrap();
    assert_eq!(frame.len(), 14 + 40 + 8 + 16 + 8);
    assert_eq!(&frame[0..6], &[0x33, 0x33, 0xff, 0xcc, 0xdd, 0xee]);
    assert_eq!(&frame[6..12], &MAC);
    assert_eq!(&frame[12..14], &[0x86, 0xdd]);

    let p = SlicedPacket::from_ethernet(&frame).unwrap();
    let ip = match &p.net {
        Some(NetSlice::Ipv6(ip)) => ip.header(),
        other => panic!("unexpected net {other:?}"),
    };
    assert_eq!(ip.hop_limit(), 255);
    assert_eq!(ip.source_addr(), src);
    assert_eq!(
        ip.destination_addr(),
        "ff02::1:ffcc:ddee".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(ip.payload_length(), 32);
    let (src_o, dst_o) = (ip.source(), ip.destination());
    let icmp = match p.transport {
        Some(TransportSlice::Icmpv6(i)) => i,
        other => panic!("unexpected transport {other:?}"),
    };
    assert_eq!(icmp.icmp_type(), Icmpv6Type::NeighborSolicitation);
    assert_eq!(icmp.type_u8(), 135);
    assert_eq!(icmp.code_u8(), 0);
    assert!(icmp.is_checksum_valid(src_o, dst_o));
    assert_eq!(icmp.bytes5to8(), [0; 4]);
    let ns = match icmp.payload_slice().unwrap() {
        Icmpv6PayloadSlice::NeighborSolicitation(ns) => ns,
        other => panic!("unexpected payload {other:?}"),
    };
    let (payload, options) = ns.to_payload();
    assert_eq!(payload.target_address, target);
    // Source Link-Layer Address option: type 1, length 1 (8 octets), MAC
    assert_eq!(options, &[1, 1, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
}

#[test]
fn ns_checksum_detects_corruption() {
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let target: Ipv6Addr = "fe80::2".parse().unwrap();
    let mut frame = neighbor_solicitation(MAC, src, target).unwrap();
    let last = frame.len() - 1;
    frame[last] ^= 0x01;
    let p = SlicedPacket::from_ethernet(&frame).unwrap();
    let (s, d) = match &p.net {
        Some(NetSlice::Ipv6(ip)) => (ip.header().source(), ip.header().destination()),
        other => panic!("unexpected net {other:?}"),
    };
    match p.transport {
        Some(TransportSlice::Icmpv6(i)) => assert!(!i.is_checksum_valid(s, d)),
        other => panic!("unexpected transport {other:?}"),
    }
}

mod sim;
