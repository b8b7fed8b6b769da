//! Fuzz target: the neighbour sync rules (`neighsyncd::sync::decide` and
//! the hot-path `decide_parts`) on an arbitrary `NeighborEvent`, interface
//! and master names, and a `SyncContext` built by an arbitrary sequence of
//! CONFIG_DB changes (`SyncContext::apply` / `reset_table` of PEER_SWITCH,
//! VXLAN_EVPN_NVO and the three *INTERFACE tables, with or without
//! `ipv6_use_link_local_only=enable`).
//!
//! Must hold (rule and step numbers as in `decide`'s doc, docs/behavior.md b.2):
//!
//! 1. No panic; `decide` is `decide_parts` plus `neigh_key` (same decision,
//!    key `<ifname>:<ip>`, route key `<master>:<ip>` exactly when
//!    `route_del`).
//! 2. Shape: a write needs a known interface; a Set never carries
//!    ff:ff:ff:ff:ff:ff, has the destination's family, and has `route_del`
//!    exactly in EVPN mode with a master named `Vrf*`; a Del never has it.
//! 3. Step 11 of b.2 (item 7 of `decide`'s list: "not EVPN, NUD_NOARP
//!    without NTF_EXT_LEARNED → drop, deletes too"), the only rule that
//!    drops deletes by neighbour state: let NOARP11 = !evpn && state == NUD_NOARP && !(flags &
//!    NTF_EXT_LEARNED). Then
//!    a. a Del is never returned when NOARP11 holds;
//!    b. `Drop(NoArp)` is returned only when NOARP11 holds, and when it
//!       holds the outcome is `Drop(NoArp)` or a drop of an earlier rule
//!       (unknown interface, steps 6-8);
//!    c. cross-check with the SET path: for a Del, the same event as an
//!       RTM_NEWNEIGH (same state, flags, MAC) is not `Drop(NoArp)`;
//!    d. for a `Drop(NoArp)` of any message type, the same event as an
//!       RTM_NEWNEIGH is a drop too (the entry was never written in that
//!       state, so dropping its delete leaves nothing stale: f.10).
//! 4. A Del is only ever for a key the SET path writes: the same event as
//!    an RTM_NEWNEIGH in NUD_REACHABLE with a unicast MAC gives a Set of the
//!    same key, or (step 7, "deletes always pass") `Drop(Ipv6LinkLocal)`
//!    for an fe80::/10 destination on an interface without link-local mode.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use neighsyncd::context::{ConfigTable, SyncContext, IPV6_USE_LINK_LOCAL_ONLY};
use neighsyncd::sync::{
    decide, decide_parts, neigh_key, Decision, DropReason, Family, NeighOp, Outcome, BROADCAST_MAC,
    VRF_PREFIX,
};
use sonic_netlink::neigh::{nud, NTF_EXT_LEARNED};
use sonic_netlink::{NeighMsgType, NeighborEvent};

const NAMES: &[&str] = &[
    "Ethernet0",
    "Ethernet8",
    "PortChannel0001",
    "Vlan1000",
    "Vrf-red",
    "Vrf1",
    "vrf-red",
    "Vr",
    "Bridge",
    "eth0",
    "lo",
    "",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    /// A known prefix with arbitrary text after it.
    Prefixed(u8, String),
    Any(String),
}

impl Name {
    fn get(&self) -> String {
        match self {
            Name::Known(i) => NAMES[*i as usize % NAMES.len()].to_string(),
            Name::Prefixed(i, s) => format!("{}{s}", NAMES[*i as usize % NAMES.len()]),
            Name::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Ip {
    V4(u32),
    /// 169.254.0.0/16
    V4LinkLocal(u16),
    V6(u128),
    /// fe80::/10
    V6LinkLocal(u8, u128),
    /// ffX2::/16
    V6MulticastLinkLocal(u8, u128),
    V4Mapped(u32),
}

impl Ip {
    fn get(&self) -> IpAddr {
        match *self {
            Ip::V4(v) => IpAddr::V4(Ipv4Addr::from(v)),
            Ip::V4LinkLocal(x) => IpAddr::V4(Ipv4Addr::new(169, 254, (x >> 8) as u8, x as u8)),
            Ip::V6(v) => IpAddr::V6(Ipv6Addr::from(v)),
            Ip::V6LinkLocal(b, rest) => {
                let mut o = (rest & ((1u128 << 112) - 1)).to_be_bytes();
                o[0] = 0xfe;
                o[1] = 0x80 | (b & 0x3f);
                IpAddr::V6(o.into())
            }
            Ip::V6MulticastLinkLocal(b, rest) => {
                let mut o = rest.to_be_bytes();
                o[0] = 0xff;
                o[1] = (b & 0xf0) | 0x02;
                IpAddr::V6(o.into())
            }
            Ip::V4Mapped(v) => IpAddr::V6(Ipv4Addr::from(v).to_ipv6_mapped()),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum State {
    Known(u8),
    Any(u16),
}

const STATES: [u16; 9] = [
    nud::NONE,
    nud::INCOMPLETE,
    nud::REACHABLE,
    nud::STALE,
    nud::DELAY,
    nud::PROBE,
    nud::FAILED,
    nud::NOARP,
    nud::PERMANENT,
];

#[derive(Arbitrary, Debug)]
enum Mac {
    None,
    Broadcast,
    Zero,
    Any([u8; 6]),
}

#[derive(Arbitrary, Debug)]
enum CtxOp {
    /// `apply(table, key, Some(fields))`.
    Set {
        table: u8,
        key: Name,
        link_local: Option<String>,
        extra: Vec<(String, String)>,
    },
    /// `apply(table, key, None)`.
    Del { table: u8, key: Name },
    /// `reset_table(table)`.
    Reset { table: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    msg: u8,
    ifindex: u32,
    dst: Ip,
    mac: Mac,
    state: State,
    flags: u8,
    ifname: Option<Name>,
    master: Option<Name>,
    ctx: Vec<CtxOp>,
}

fn table(i: u8) -> ConfigTable {
    ConfigTable::ALL[i as usize % ConfigTable::ALL.len()]
}

fn build_ctx(ops: &[CtxOp]) -> SyncContext {
    let mut c = SyncContext::new();
    for op in ops.iter().take(32) {
        match op {
            CtxOp::Set {
                table: t,
                key,
                link_local,
                extra,
            } => {
                let mut fvs: Vec<(String, String)> = extra.iter().take(4).cloned().collect();
                if let Some(v) = link_local {
                    let v = if v.is_empty() { "enable" } else { v.as_str() };
                    fvs.push((IPV6_USE_LINK_LOCAL_ONLY.to_string(), v.to_string()));
                }
                c.apply(table(*t), &key.get(), Some(&fvs));
            }
            CtxOp::Del { table: t, key } => {
                c.apply(table(*t), &key.get(), None);
            }
            CtxOp::Reset { table: t } => c.reset_table(table(*t)),
        }
    }
    c
}

fn as_new(ev: &NeighborEvent) -> NeighborEvent {
    NeighborEvent {
        msg_type: NeighMsgType::New,
        ..*ev
    }
}

fn is_v6_link_local(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.octets()[0] == 0xfe && (v6.octets()[1] & 0xc0) == 0x80)
}

fuzz_target!(|input: Input| {
    let ev = NeighborEvent {
        msg_type: match input.msg % 3 {
            0 => NeighMsgType::New,
            1 => NeighMsgType::Del,
            _ => NeighMsgType::Get,
        },
        ifindex: input.ifindex,
        dst: input.dst.get(),
        lladdr: match input.mac {
            Mac::None => None,
            Mac::Broadcast => Some(BROADCAST_MAC),
            Mac::Zero => Some([0; 6]),
            Mac::Any(m) => Some(m),
        },
        state: match input.state {
            State::Known(i) => STATES[i as usize % STATES.len()],
            State::Any(s) => s,
        },
        flags: input.flags,
        dump: input.flags & 1 == 1,
    };
    let ifname = input.ifname.as_ref().map(Name::get);
    let master = input.master.as_ref().map(Name::get);
    let ctx = build_ctx(&input.ctx);
    let (ifname, master) = (ifname.as_deref(), master.as_deref());

    let out = decide(&ev, ifname, master, &ctx);
    let parts = decide_parts(&ev, ifname, master, &ctx);
    let evpn = ctx.evpn_nvo_exists();

    // 1 and 2: decide == decide_parts + keys; shape.
    match (&out, parts) {
        (Outcome::Drop(a), Decision::Drop(b)) => {
            assert_eq!(*a, b);
            if *a == DropReason::UnknownInterface {
                assert!(ifname.is_none());
            }
        }
        (Outcome::Write { op, route_del }, _) => {
            let name = ifname.expect("a write needs a known interface");
            assert_eq!(op.key(), neigh_key(name, &ev.dst));
            match (op, parts) {
                (
                    NeighOp::Set { mac, family, .. },
                    Decision::Set {
                        mac: m,
                        family: f,
                        route_del: r,
                    },
                ) => {
                    assert_eq!((*mac, *family), (m, f));
                    assert_ne!(*mac, BROADCAST_MAC);
                    assert_eq!(*family, Family::of(&ev.dst));
                    let vrf = evpn && master.is_some_and(|m| m.starts_with(VRF_PREFIX));
                    assert_eq!(r, vrf);
                    let want = master.filter(|_| vrf).map(|m| neigh_key(m, &ev.dst));
                    assert_eq!(*route_del, want);
                }
                (NeighOp::Del { .. }, Decision::Del) => assert!(route_del.is_none()),
                (op, d) => panic!("decide {op:?} but decide_parts {d:?}"),
            }
        }
        (o, d) => panic!("decide {o:?} but decide_parts {d:?}"),
    }

    // 3: step 11.
    let noarp11 = !evpn && ev.state == nud::NOARP && ev.flags & NTF_EXT_LEARNED == 0;
    let is_del = matches!(
        &out,
        Outcome::Write {
            op: NeighOp::Del { .. },
            ..
        }
    );
    if is_del {
        assert!(!noarp11, "3a: a Del in the state step 11 drops: {ev:?}");
        assert_ne!(
            decide(&as_new(&ev), ifname, master, &ctx),
            Outcome::Drop(DropReason::NoArp),
            "3c: Del while the same event as a NEWNEIGH is dropped by step 11: {ev:?}"
        );
    }
    if out == Outcome::Drop(DropReason::NoArp) {
        assert!(noarp11, "3b: NoArp outside step 11: {ev:?}");
        assert!(
            matches!(decide(&as_new(&ev), ifname, master, &ctx), Outcome::Drop(_)),
            "3d: a NOARP delete dropped although its add is written: {ev:?}"
        );
    }
    if noarp11 {
        assert!(
            matches!(
                out,
                Outcome::Drop(
                    DropReason::NoArp
                        | DropReason::UnknownInterface
                        | DropReason::LinkLocalDualTor
                        | DropReason::Ipv6LinkLocal
                        | DropReason::Ipv6MulticastLinkLocal
                )
            ),
            "3b: step 11 applies but the outcome is {out:?}: {ev:?}"
        );
    }

    // 4: a Del only for a key the SET path writes.
    if let Outcome::Write {
        op: NeighOp::Del { key },
        ..
    } = &out
    {
        let add = NeighborEvent {
            msg_type: NeighMsgType::New,
            lladdr: Some([0x02, 0, 0, 0, 0, 0x01]),
            state: nud::REACHABLE,
            ..ev
        };
        match decide(&add, ifname, master, &ctx) {
            Outcome::Write {
                op: NeighOp::Set { key: k, .. },
                ..
            } => assert_eq!(&k, key),
            Outcome::Drop(DropReason::Ipv6LinkLocal) => {
                assert!(is_v6_link_local(&ev.dst));
                assert!(!ifname.is_some_and(|n| ctx.link_local_enabled(n)));
            }
            other => panic!("4: Del of {key} but its add gives {other:?}"),
        }
    }
});
