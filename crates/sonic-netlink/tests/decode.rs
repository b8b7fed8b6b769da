//! Decoding of kernel messages without I/O: messages are built with
//! netlink-packet-route's types, serialized with `emit` (through
//! `socket::encode`) and fed to `decode_message` as the kernel would send
//! them; the same messages also go through `decode_neigh` / `decode_link`.

// Test helpers outside #[test] fns: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR, NLM_F_MULTIPART};
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkHeader, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourHeader, NeighbourMessage,
    NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use proptest::prelude::*;
use sonic_netlink::link::{IFF_RUNNING, IFF_UP};
use sonic_netlink::neigh::{nud, NTF_EXT_LEARNED};
use sonic_netlink::socket::encode;
use sonic_netlink::{
    decode_link, decode_message, decode_neigh, DecodeError, KernelMessage, LinkChange, LinkEvent,
    LinkMsgType, LinkTable, NeighMsgType, NeighborEvent,
};

const MAC: [u8; 6] = [0x00, 0xe0, 0xec, 0x3b, 0xd6, 0xac];

fn neigh(
    family: AddressFamily,
    ifindex: u32,
    state: u16,
    flags: u8,
    attributes: Vec<NeighbourAttribute>,
) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header = NeighbourHeader {
        family,
        ifindex,
        state: NeighbourState::from(state),
        flags: NeighbourFlags::from_bits_retain(flags),
        ..Default::default()
    };
    m.attributes = attributes;
    m
}

fn dst4(a: [u8; 4]) -> NeighbourAttribute {
    NeighbourAttribute::Destination(NeighbourAddress::Inet(Ipv4Addr::from(a)))
}

fn dst6(s: &str) -> NeighbourAttribute {
    NeighbourAttribute::Destination(NeighbourAddress::Inet6(s.parse().unwrap()))
}

fn lladdr(b: &[u8]) -> NeighbourAttribute {
    NeighbourAttribute::LinkLayerAddress(b.to_vec())
}

fn new_neigh(m: NeighbourMessage) -> Vec<u8> {
    encode(RouteNetlinkMessage::NewNeighbour(m), 0, 0)
}

fn del_neigh(m: NeighbourMessage) -> Vec<u8> {
    encode(RouteNetlinkMessage::DelNeighbour(m), 0, 0)
}

/// Decode bytes that must hold exactly one message.
fn one(bytes: &[u8]) -> Result<KernelMessage, DecodeError> {
    let mut v = decode_message(bytes);
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

fn link(
    family: AddressFamily,
    index: u32,
    flags: u32,
    attributes: Vec<LinkAttribute>,
) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header = LinkHeader {
        interface_family: family,
        index,
        flags: LinkFlags::from_bits_retain(flags),
        ..Default::default()
    };
    m.attributes = attributes;
    m
}

fn kind(k: InfoKind) -> LinkAttribute {
    LinkAttribute::LinkInfo(vec![LinkInfo::Kind(k)])
}

fn name(n: &str) -> LinkAttribute {
    LinkAttribute::IfName(n.to_string())
}

fn link_bytes(t: LinkMsgType, m: LinkMessage) -> Vec<u8> {
    let msg = match t {
        LinkMsgType::New => RouteNetlinkMessage::NewLink(m),
        LinkMsgType::Del => RouteNetlinkMessage::DelLink(m),
    };
    encode(msg, 0, 0)
}

/// Wire decoding and `decode_link` agree; returns the wire result.
fn link_both(t: LinkMsgType, m: LinkMessage) -> Result<LinkEvent, DecodeError> {
    let direct = decode_link(t, &m);
    let wire = match one(&link_bytes(t, m)) {
        Ok(KernelMessage::Link(ev)) => Ok(ev),
        Ok(other) => panic!("expected a link, got {other:?}"),
        Err(e) => Err(e),
    };
    assert_eq!(direct, wire);
    wire
}

/// Wire decoding and `decode_neigh` agree; returns the wire result.
fn neigh_both(t: NeighMsgType, m: NeighbourMessage) -> Result<Option<NeighborEvent>, DecodeError> {
    let direct = decode_neigh(t, &m);
    let bytes = match t {
        NeighMsgType::New => new_neigh(m),
        NeighMsgType::Del => del_neigh(m),
        NeighMsgType::Get => encode(RouteNetlinkMessage::GetNeighbour(m), 0, 0),
    };
    let wire = match one(&bytes) {
        Ok(KernelMessage::Neigh(ev)) => Ok(Some(ev)),
        Ok(KernelMessage::Ignored(_)) => Ok(None),
        Ok(other) => panic!("expected a neighbor, got {other:?}"),
        Err(e) => Err(e),
    };
    assert_eq!(direct, wire);
    wire
}

fn done(code: i32, flags: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&20u32.to_ne_bytes());
    b.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    b.extend_from_slice(&(flags | NLM_F_MULTIPART).to_ne_bytes());
    b.extend_from_slice(&1u32.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&code.to_ne_bytes());
    b
}

// ===== neighbors =====

#[test]
fn ipv4_neighbor_with_mac() {
    let m = neigh(
        AddressFamily::Inet,
        7,
        nud::REACHABLE,
        0,
        vec![dst4([10, 0, 0, 2]), lladdr(&MAC)],
    );
    let ev = neigh_both(NeighMsgType::New, m).unwrap().unwrap();
    assert_eq!(
        ev,
        NeighborEvent {
            dump: false,
            msg_type: NeighMsgType::New,
            ifindex: 7,
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            lladdr: Some(MAC),
            state: nud::REACHABLE,
            flags: 0,
        }
    );
}

#[test]
fn ipv6_neighbor_with_mac_and_unrelated_attributes() {
    let mut attrs = vec![
        NeighbourAttribute::Probes(3),
        dst6("fc02:1000::2"),
        lladdr(&MAC),
    ];
    attrs.push(NeighbourAttribute::Vlan(1000));
    let m = neigh(AddressFamily::Inet6, 12, nud::STALE, 0, attrs);
    let ev = neigh_both(NeighMsgType::New, m).unwrap().unwrap();
    assert_eq!(
        ev.dst,
        IpAddr::V6("fc02:1000::2".parse::<Ipv6Addr>().unwrap())
    );
    assert_eq!(ev.lladdr, Some(MAC));
    assert_eq!(ev.state, nud::STALE);
    assert_eq!(ev.ifindex, 12);
}

#[test]
fn neighbor_without_lladdr_or_empty_lladdr_has_none() {
    let m = neigh(
        AddressFamily::Inet,
        3,
        nud::INCOMPLETE,
        0,
        vec![dst4([10, 0, 0, 9])],
    );
    assert_eq!(
        neigh_both(NeighMsgType::New, m).unwrap().unwrap().lladdr,
        None
    );
    let m = neigh(
        AddressFamily::Inet6,
        3,
        nud::FAILED,
        0,
        vec![dst6("fe80::1"), lladdr(&[])],
    );
    let ev = neigh_both(NeighMsgType::New, m).unwrap().unwrap();
    assert_eq!(ev.lladdr, None);
    assert_eq!(ev.state, nud::FAILED);
}

#[test]
fn lladdr_of_4_or_8_bytes_is_an_error() {
    for len in [4usize, 8] {
        let m = neigh(
            AddressFamily::Inet,
            5,
            nud::REACHABLE,
            0,
            vec![dst4([10, 0, 0, 2]), lladdr(&vec![0xab; len])],
        );
        assert_eq!(
            neigh_both(NeighMsgType::New, m),
            Err(DecodeError::BadLladdr { ifindex: 5, len })
        );
    }
}

#[test]
fn missing_destination_is_an_error() {
    let m = neigh(
        AddressFamily::Inet6,
        9,
        nud::REACHABLE,
        0,
        vec![lladdr(&MAC)],
    );
    assert_eq!(
        neigh_both(NeighMsgType::New, m),
        Err(DecodeError::MissingAttribute {
            msg: "RTM_NEWNEIGH",
            ifindex: 9,
            attr: "NDA_DST"
        })
    );
    let m = neigh(AddressFamily::Inet, 9, nud::REACHABLE, 0, vec![]);
    assert_eq!(
        neigh_both(NeighMsgType::Del, m),
        Err(DecodeError::MissingAttribute {
            msg: "RTM_DELNEIGH",
            ifindex: 9,
            attr: "NDA_DST"
        })
    );
}

#[test]
fn destination_not_matching_family_is_an_error() {
    // 16-byte destination in an AF_INET message (raw on the wire).
    let raw16 = NeighbourAttribute::Destination(NeighbourAddress::Other(vec![0x20; 16]));
    let m = neigh(
        AddressFamily::Inet,
        4,
        nud::REACHABLE,
        0,
        vec![raw16, lladdr(&MAC)],
    );
    assert_eq!(
        neigh_both(NeighMsgType::New, m),
        Err(DecodeError::BadDestination {
            ifindex: 4,
            family: 2
        })
    );
    // 4-byte destination in an AF_INET6 message.
    let raw4 = NeighbourAttribute::Destination(NeighbourAddress::Other(vec![10, 0, 0, 1]));
    let m = neigh(AddressFamily::Inet6, 4, nud::REACHABLE, 0, vec![raw4]);
    assert_eq!(
        neigh_both(NeighMsgType::New, m),
        Err(DecodeError::BadDestination {
            ifindex: 4,
            family: 10
        })
    );
    // Typed mismatch (only reachable through decode_neigh).
    let m = neigh(
        AddressFamily::Inet,
        4,
        nud::REACHABLE,
        0,
        vec![dst6("2001:db8::1")],
    );
    assert_eq!(
        decode_neigh(NeighMsgType::New, &m),
        Err(DecodeError::BadDestination {
            ifindex: 4,
            family: 2
        })
    );
}

#[test]
fn bridge_fdb_neighbor_is_ignored() {
    let m = neigh(
        AddressFamily::Bridge,
        6,
        nud::NOARP,
        0x02,
        vec![lladdr(&MAC), NeighbourAttribute::Vlan(10)],
    );
    assert_eq!(decode_neigh(NeighMsgType::New, &m), Ok(None));
    assert!(matches!(one(&new_neigh(m)), Ok(KernelMessage::Ignored(_))));
}

#[test]
fn state_and_flags_are_raw_values() {
    let m = neigh(
        AddressFamily::Inet,
        8,
        nud::NOARP,
        NTF_EXT_LEARNED,
        vec![dst4([192, 168, 0, 1]), lladdr(&MAC)],
    );
    let ev = neigh_both(NeighMsgType::New, m).unwrap().unwrap();
    assert_eq!(ev.state, 0x40);
    assert_eq!(ev.flags, 0x10);
    // A combination the crate has no named variant for survives unchanged,
    // and so do flag bits it does not name.
    let m = neigh(
        AddressFamily::Inet,
        8,
        nud::REACHABLE | nud::NOARP,
        NTF_EXT_LEARNED | 0x02 | 0x80,
        vec![dst4([192, 168, 0, 1]), lladdr(&MAC)],
    );
    let ev = neigh_both(NeighMsgType::New, m).unwrap().unwrap();
    assert_eq!(ev.state, 0x42);
    assert_eq!(ev.flags, 0x92);
    let m = neigh(
        AddressFamily::Inet6,
        8,
        nud::PERMANENT,
        0,
        vec![dst6("::1"), lladdr(&MAC)],
    );
    assert_eq!(
        neigh_both(NeighMsgType::New, m).unwrap().unwrap().state,
        nud::PERMANENT
    );
}

#[test]
fn delneigh_and_getneigh_types() {
    let m = neigh(
        AddressFamily::Inet,
        2,
        nud::STALE,
        0,
        vec![dst4([10, 1, 1, 1]), lladdr(&MAC)],
    );
    let ev = neigh_both(NeighMsgType::Del, m.clone()).unwrap().unwrap();
    assert_eq!(ev.msg_type, NeighMsgType::Del);
    let ev = neigh_both(NeighMsgType::Get, m).unwrap().unwrap();
    assert_eq!(ev.msg_type, NeighMsgType::Get);
}

#[test]
fn last_duplicate_attribute_wins() {
    let other = [0x02, 0, 0, 0, 0, 0x01];
    let m = neigh(
        AddressFamily::Inet,
        2,
        nud::REACHABLE,
        0,
        vec![
            dst4([10, 0, 0, 1]),
            lladdr(&MAC),
            dst4([10, 0, 0, 3]),
            lladdr(&other),
        ],
    );
    let ev = neigh_both(NeighMsgType::New, m).unwrap().unwrap();
    assert_eq!(ev.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)));
    assert_eq!(ev.lladdr, Some(other));
}

// ===== links =====

#[test]
fn link_kinds_vrf_team_bridge() {
    for (k, s) in [
        (InfoKind::Vrf, "vrf"),
        (InfoKind::Team, "team"),
        (InfoKind::Bridge, "bridge"),
        (InfoKind::Veth, "veth"),
        (InfoKind::Other("weird".into()), "weird"),
    ] {
        let m = link(
            AddressFamily::Unspec,
            20,
            IFF_UP,
            vec![name("X1"), kind(k), LinkAttribute::Mtu(9100)],
        );
        let ev = link_both(LinkMsgType::New, m).unwrap();
        assert_eq!(ev.kind.as_deref(), Some(s));
        assert_eq!(ev.mtu, Some(9100));
    }
}

#[test]
fn link_fields() {
    let m = link(
        AddressFamily::Unspec,
        33,
        IFF_UP | IFF_RUNNING | 0x1000,
        vec![
            LinkAttribute::Mtu(1500),
            name("Ethernet8"),
            LinkAttribute::Controller(40),
            LinkAttribute::TxQueueLen(1000),
        ],
    );
    let ev = link_both(LinkMsgType::New, m).unwrap();
    assert_eq!(
        ev,
        LinkEvent {
            msg_type: LinkMsgType::New,
            family: 0,
            ifindex: 33,
            name: "Ethernet8".into(),
            flags: IFF_UP | IFF_RUNNING | 0x1000,
            mtu: Some(1500),
            master: Some(40),
            kind: None,
        }
    );
    // IFLA_MASTER 0 means no master.
    let m = link(
        AddressFamily::Unspec,
        33,
        0,
        vec![name("Ethernet8"), LinkAttribute::Controller(0)],
    );
    let ev = link_both(LinkMsgType::New, m).unwrap();
    assert_eq!(ev.master, None);
    assert_eq!(ev.mtu, None);
    assert_eq!(ev.flags, 0);
}

#[test]
fn bridge_family_dellink_with_master() {
    let m = link(
        AddressFamily::Bridge,
        14,
        IFF_UP,
        vec![name("Ethernet4"), LinkAttribute::Controller(50)],
    );
    let ev = link_both(LinkMsgType::Del, m).unwrap();
    assert_eq!(ev.family, 7);
    assert_eq!(ev.msg_type, LinkMsgType::Del);
    assert_eq!(ev.master, Some(50));
}

#[test]
fn link_without_ifname_is_an_error() {
    let m = link(AddressFamily::Unspec, 77, 0, vec![LinkAttribute::Mtu(1500)]);
    assert_eq!(
        link_both(LinkMsgType::New, m),
        Err(DecodeError::MissingAttribute {
            msg: "RTM_NEWLINK",
            ifindex: 77,
            attr: "IFLA_IFNAME"
        })
    );
}

// ===== control messages, datagrams =====

#[test]
fn done_and_error_messages() {
    assert_eq!(one(&done(0, 0)), Ok(KernelMessage::DumpDone));
    assert_eq!(
        one(&done(-16, 0)),
        Ok(KernelMessage::DumpFailed { errno: 16 })
    );
    // A zero-length NLMSG_DONE payload is allowed by the kernel.
    let mut short = done(0, 0);
    short.truncate(16);
    short[0] = 16;
    assert_eq!(one(&short), Ok(KernelMessage::DumpDone));

    let mut err = Vec::new();
    err.extend_from_slice(&36u32.to_ne_bytes());
    err.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
    err.extend_from_slice(&0u16.to_ne_bytes());
    err.extend_from_slice(&1u32.to_ne_bytes());
    err.extend_from_slice(&0u32.to_ne_bytes());
    err.extend_from_slice(&(-16i32).to_ne_bytes());
    err.extend_from_slice(&[0u8; 16]); // the request's header
    assert_eq!(one(&err), Ok(KernelMessage::DumpFailed { errno: 16 }));
    err[16..20].copy_from_slice(&0i32.to_ne_bytes());
    assert_eq!(one(&err), Ok(KernelMessage::Ignored("ack")));
}

#[test]
fn dump_intr_on_the_done_message_fails_the_dump() {
    // decode_message sees one datagram; the NLM_F_DUMP_INTR on the DONE
    // itself turns it into a failure.
    assert_eq!(
        one(&done(0, NLM_F_DUMP_INTR)),
        Ok(KernelMessage::DumpFailed { errno: 4 })
    );
}

#[test]
fn a_dump_datagram_holds_many_messages() {
    let mut dgram = Vec::new();
    for i in 0..100u8 {
        let m = neigh(
            AddressFamily::Inet,
            1,
            nud::REACHABLE,
            0,
            vec![dst4([10, 0, 1, i]), lladdr(&MAC)],
        );
        dgram.extend(new_neigh(m));
    }
    dgram.extend(done(0, 0));
    let out = decode_message(&dgram);
    assert_eq!(out.len(), 101);
    for (i, r) in out[..100].iter().enumerate() {
        match r {
            Ok(KernelMessage::Neigh(ev)) => {
                assert_eq!(ev.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 1, i as u8)))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(out[100], Ok(KernelMessage::DumpDone));
}

#[test]
fn a_bad_message_does_not_stop_the_next_one() {
    let good = neigh(
        AddressFamily::Inet,
        1,
        nud::REACHABLE,
        0,
        vec![dst4([10, 0, 0, 2]), lladdr(&MAC)],
    );
    // An RTM_NEWNEIGH whose payload is too short for an ndmsg.
    let mut bad = Vec::new();
    bad.extend_from_slice(&20u32.to_ne_bytes());
    bad.extend_from_slice(&28u16.to_ne_bytes());
    bad.extend_from_slice(&[0u8; 10]);
    bad.extend_from_slice(&[1, 2, 3, 4]);
    // An RTM_NEWLINK whose attribute length runs past its message.
    let mut bad_nla = link_bytes(
        LinkMsgType::New,
        link(AddressFamily::Unspec, 3, 0, vec![name("eth0")]),
    );
    bad_nla[32] = 0xff; // nla_len of IFLA_IFNAME
    let mut dgram = bad.clone();
    dgram.extend(bad_nla);
    dgram.extend(new_neigh(good.clone()));
    let out = decode_message(&dgram);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(matches!(out[0], Err(DecodeError::Malformed(_))), "{out:?}");
    assert!(matches!(out[1], Err(DecodeError::Malformed(_))), "{out:?}");
    assert!(matches!(out[2], Ok(KernelMessage::Neigh(_))), "{out:?}");
}

#[test]
fn truncated_and_garbage_bytes_are_errors() {
    let full = new_neigh(neigh(
        AddressFamily::Inet6,
        1,
        nud::REACHABLE,
        0,
        vec![dst6("fc00::2"), lladdr(&MAC)],
    ));
    for cut in 1..full.len() {
        let out = decode_message(&full[..cut]);
        assert_eq!(out.len(), 1, "cut {cut}: {out:?}");
        assert!(out[0].is_err(), "cut {cut}: {out:?}");
    }
    // Header says 8 bytes: shorter than a netlink header.
    let mut tiny = full.clone();
    tiny[0..4].copy_from_slice(&8u32.to_ne_bytes());
    assert!(matches!(
        decode_message(&tiny)[..],
        [Err(DecodeError::Malformed(_))]
    ));
    assert!(decode_message(&[]).is_empty());
}

#[test]
fn unknown_message_types_are_ignored() {
    // RTM_NEWADDR (20) with a plausible payload.
    let mut b = Vec::new();
    b.extend_from_slice(&24u32.to_ne_bytes());
    b.extend_from_slice(&20u16.to_ne_bytes());
    b.extend_from_slice(&[0u8; 18]);
    assert!(matches!(one(&b), Ok(KernelMessage::Ignored(_))));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_message(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        pos in proptest::collection::vec((0usize..200, any::<u8>()), 1..8),
        cut in 0usize..200,
    ) {
        let mut dgram = new_neigh(neigh(
            AddressFamily::Inet, 1, nud::REACHABLE, 0,
            vec![dst4([10, 0, 0, 2]), lladdr(&MAC)],
        ));
        dgram.extend(link_bytes(LinkMsgType::New, link(
            AddressFamily::Unspec, 3, 0, vec![name("Ethernet0"), kind(InfoKind::Vrf), LinkAttribute::Mtu(1500)],
        )));
        dgram.extend(done(0, 0));
        for (p, v) in pos {
            let p = p % dgram.len();
            dgram[p] = v;
        }
        let cut = cut.min(dgram.len());
        let _ = decode_message(&dgram[..dgram.len() - cut]);
    }
}

// ===== LinkTable =====

fn ev(
    t: LinkMsgType,
    family: u8,
    ifindex: u32,
    n: &str,
    master: Option<u32>,
    k: Option<&str>,
) -> LinkEvent {
    LinkEvent {
        msg_type: t,
        family,
        ifindex,
        name: n.into(),
        flags: IFF_UP,
        mtu: Some(1500),
        master,
        kind: k.map(Into::into),
    }
}

#[test]
fn link_table_new_rename_delete() {
    let mut t = LinkTable::new();
    assert_eq!(
        t.apply(&ev(LinkMsgType::New, 0, 5, "Ethernet0", None, None)),
        LinkChange::New
    );
    assert_eq!(
        t.apply(&ev(LinkMsgType::New, 0, 5, "Ethernet0", None, None)),
        LinkChange::Unchanged
    );
    assert_eq!(t.name(5), Some("Ethernet0"));
    assert_eq!(
        t.apply(&ev(LinkMsgType::New, 0, 5, "Ethernet4", None, None)),
        LinkChange::Renamed {
            old: "Ethernet0".into(),
            new: "Ethernet4".into()
        }
    );
    assert_eq!(t.name(5), Some("Ethernet4"));
    assert_eq!(t.ifindex_of("Ethernet4"), Some(5));
    assert_eq!(t.ifindex_of("Ethernet0"), None);
    assert_eq!(t.len(), 1);
    assert_eq!(
        t.apply(&ev(LinkMsgType::Del, 0, 5, "Ethernet4", None, None)),
        LinkChange::Removed {
            name: "Ethernet4".into()
        }
    );
    assert_eq!(t.name(5), None);
    assert!(t.is_empty());
    assert_eq!(
        t.apply(&ev(LinkMsgType::Del, 0, 5, "Ethernet4", None, None)),
        LinkChange::Unchanged
    );
}

#[test]
fn link_table_master_and_kind() {
    let mut t = LinkTable::new();
    t.apply(&ev(LinkMsgType::New, 0, 100, "Vrf-red", None, Some("vrf")));
    t.apply(&ev(
        LinkMsgType::New,
        0,
        101,
        "Vlan1000",
        None,
        Some("bridge"),
    ));
    t.apply(&ev(LinkMsgType::New, 0, 5, "Ethernet0", None, None));
    assert_eq!(t.master_name(5), None);
    // Enslaved to the VRF: master updated, name unchanged.
    assert_eq!(
        t.apply(&ev(LinkMsgType::New, 0, 5, "Ethernet0", Some(100), None)),
        LinkChange::Unchanged
    );
    assert_eq!(t.master_name(5), Some("Vrf-red"));
    assert_eq!(t.master(5), Some(100));
    assert_eq!(t.kind(100), Some("vrf"));
    assert_eq!(t.kind(5), None);
    // Master unknown to the table.
    t.apply(&ev(LinkMsgType::New, 0, 6, "Ethernet4", Some(999), None));
    assert_eq!(t.master(6), Some(999));
    assert_eq!(t.master_name(6), None);
    assert_eq!(t.len(), 4);
}

#[test]
fn link_table_bridge_port_notifications() {
    let mut t = LinkTable::new();
    t.apply(&ev(
        LinkMsgType::New,
        0,
        101,
        "Bridge",
        None,
        Some("bridge"),
    ));
    t.apply(&ev(LinkMsgType::New, 0, 5, "Ethernet0", None, Some("veth")));
    // AF_BRIDGE NEWLINK: the port joined the bridge; name and kind stay.
    assert_eq!(
        t.apply(&ev(LinkMsgType::New, 7, 5, "Ethernet0", Some(101), None)),
        LinkChange::Unchanged
    );
    assert_eq!(t.master_name(5), Some("Bridge"));
    assert_eq!(t.kind(5), Some("veth"));
    // AF_BRIDGE DELLINK: the port left the bridge; the link is not removed.
    assert_eq!(
        t.apply(&ev(LinkMsgType::Del, 7, 5, "Ethernet0", Some(101), None)),
        LinkChange::Unchanged
    );
    assert_eq!(t.name(5), Some("Ethernet0"));
    assert_eq!(t.master(5), None);
    // AF_BRIDGE messages never add links nor rename them.
    assert_eq!(
        t.apply(&ev(LinkMsgType::New, 7, 9, "Ethernet9", Some(101), None)),
        LinkChange::Unchanged
    );
    assert_eq!(t.name(9), None);
    assert_eq!(
        t.apply(&ev(LinkMsgType::New, 7, 5, "Other", Some(101), None)),
        LinkChange::Unchanged
    );
    assert_eq!(t.name(5), Some("Ethernet0"));
    assert_eq!(t.len(), 2);
}
