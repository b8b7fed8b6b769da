//! The neighbour sync rules (docs/behavior.md b.2, NeighSync::onMsg) as a pure
//! function: a kernel [`NeighborEvent`] plus the cached CONFIG_DB facts in a
//! [`SyncContext`] give an [`Outcome`]: an APPL_DB `NEIGH_TABLE` write (with an
//! optional EVPN `ROUTE_TABLE` delete before it) or a [`DropReason`].
//!
//! No I/O happens here: the caller resolves interface names, decides between
//! the warm-restart cache and the writer (b.2 step 17) and talks to Redis.

use std::net::IpAddr;

use sonic_netlink::fmt::{mac_to_string, push_ip};
use sonic_netlink::neigh::{nud, NTF_EXT_LEARNED};
use sonic_netlink::{NeighMsgType, NeighborEvent};
use swss::FieldValues;

use crate::context::SyncContext;

/// The daemon's name: the WarmStart app (`WARM_RESTART_TABLE|neighsyncd`),
/// the CONFIG_DB `LOGGER|neighsyncd` key and the name in logs.
pub const APP_NAME: &str = "neighsyncd";
/// APPL_DB table holding the neighbours (keys `NEIGH_TABLE:<ifname>:<ip>`,
/// fields `neigh` then `family`).
pub const APP_NEIGH_TABLE_NAME: &str = "NEIGH_TABLE";
/// APPL_DB table of the EVPN host-route deletes (b.2 step 18; keys
/// `ROUTE_TABLE:<vrf>:<ip>`).
pub const APP_ROUTE_TABLE_NAME: &str = "ROUTE_TABLE";
/// APPL_DB table of the failed IPv6 neighbours of a dual-ToR, consumed by
/// nbrmgrd (keys `NEIGH_FAILED_TABLE:<ifname>:<ip>`, one field `NULL` =
/// `NULL`; sonic-swss PR 4849, `APP_NEIGH_FAILED_TABLE_NAME`; b.2 step 9a).
pub const APP_NEIGH_FAILED_TABLE_NAME: &str = "NEIGH_FAILED_TABLE";
/// The field/value of a `NEIGH_FAILED_TABLE` SET: `NULL` = `NULL` (swss's
/// placeholder for a key without data; nbrmgrd reads only the key).
pub const FAILED_FIELD: (&str, &str) = ("NULL", "NULL");
/// The states whose RTM_NEWNEIGH clears a `NEIGH_FAILED_TABLE` key
/// (`VALID_NEIGH_STATES` in neighsync.cpp): PERMANENT, NOARP, REACHABLE,
/// PROBE, STALE, DELAY. INCOMPLETE and NONE leave it.
pub const VALID_NEIGH_STATES: u16 =
    nud::PERMANENT | nud::NOARP | nud::REACHABLE | nud::PROBE | nud::STALE | nud::DELAY;

/// The MAC written for an unresolved neighbour on a dual-ToR (b.2 steps 12-13),
/// which orchagent turns into a tunnel route (e.1).
pub const ZERO_MAC: [u8; 6] = [0; 6];

/// ff:ff:ff:ff:ff:ff; neighbours with it are never written (b.2 step 15).
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Master-device name prefix that marks a VRF for the EVPN host-route delete
/// (`VRF_PREFIX` in neighsync.cpp; case-sensitive).
pub const VRF_PREFIX: &str = "Vrf";

// ===== Family =====

/// Address family of a neighbour, as written in the `family` field. IPv4
/// sorts first (the restore job handles it first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// AF_INET
    IPv4,
    /// AF_INET6
    IPv6,
}

impl Family {
    /// The family of an address (AF_INET for IPv4, AF_INET6 for IPv6).
    pub const fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::IPv4,
            IpAddr::V6(_) => Family::IPv6,
        }
    }

    /// `IPv4` or `IPv6` (swss `IPV4_NAME` / `IPV6_NAME`, docs/behavior.md a.8).
    pub const fn as_str(self) -> &'static str {
        match self {
            Family::IPv4 => "IPv4",
            Family::IPv6 => "IPv6",
        }
    }

    /// The family a `family` field names: exactly `IPv4` or `IPv6`; `None`
    /// for any other text.
    pub fn parse(text: &str) -> Option<Family> {
        match text {
            "IPv4" => Some(Family::IPv4),
            "IPv6" => Some(Family::IPv6),
            _ => None,
        }
    }
}

/// Parses a MAC as the `neigh` field may spell it: `xx:xx:xx:xx:xx:xx`,
/// six groups of two hex digits, any case. `None` otherwise.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut groups = text.split(':');
    for byte in mac.iter_mut() {
        let g = groups.next()?;
        if g.len() != 2 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(g, 16).ok()?;
    }
    if groups.next().is_some() {
        return None;
    }
    Some(mac)
}

// ===== NeighOp =====

/// One `NEIGH_TABLE` operation for the ProducerStateTable (or the
/// warm-restart cache).
///
/// `key` is `<ifname>:<ip>`: the kernel interface name, `:`, and the
/// destination as libnl prints it (b.4: dotted quad, or glibc `inet_ntop`
/// IPv6, never a prefix length or `%zone`), e.g. `Ethernet8:10.0.0.2`,
/// `Vlan1000:fc02:1000::2`, `Ethernet8:fe80::2e0:ecff:fe3b:d6ac` (b.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NeighOp {
    /// `set(key, [("neigh", mac), ("family", family)])`.
    Set {
        /// `<ifname>:<ip>` (see the type's docs).
        key: String,
        /// Raw MAC; [`ZERO_MAC`] for an unresolved neighbour on a dual-ToR.
        mac: [u8; 6],
        /// `IPv4` or `IPv6`: the family of the key's address.
        family: Family,
    },
    /// `del(key)`.
    Del {
        /// `<ifname>:<ip>` (see the type's docs).
        key: String,
    },
}

impl NeighOp {
    /// The `NEIGH_TABLE` key, `<ifname>:<ip>`.
    pub fn key(&self) -> &str {
        match self {
            NeighOp::Set { key, .. } | NeighOp::Del { key } => key,
        }
    }

    /// The field/values of a Set, in exactly this order (b.2 step 16):
    /// `[("neigh", "<lowercase colon MAC>"), ("family", "IPv4"|"IPv6")]`.
    /// Empty for a Del (the C++ builds the list for deletes but uses only the
    /// key; the warm-restart cache ignores fields of deletes too, c.2).
    pub fn fields(&self) -> FieldValues {
        match self {
            NeighOp::Set { mac, family, .. } => vec![
                ("neigh".to_owned(), mac_to_string(mac)),
                ("family".to_owned(), family.as_str().to_owned()),
            ],
            NeighOp::Del { .. } => Vec::new(),
        }
    }
}

// ===== Outcome =====

/// What to do with one neighbour event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Write `op` to `NEIGH_TABLE`.
    ///
    /// `route_del`, only ever present with a [`NeighOp::Set`], is the APPL_DB
    /// `ROUTE_TABLE` key `<master_name>:<ip>` (no `/32` or `/128` suffix) that
    /// must be deleted through the ROUTE_TABLE ProducerStateTable **before**
    /// the set (b.2 step 18: EVPN mode and a master device whose name starts
    /// with `Vrf`). During a warm restart the op goes to the restart-assist
    /// cache instead and `route_del` is not written (b.2 step 17).
    Write {
        /// The NEIGH_TABLE operation.
        op: NeighOp,
        /// The ROUTE_TABLE key to delete first (see above), if any.
        route_del: Option<String>,
    },
    /// Do not write anything.
    Drop(DropReason),
}

// ===== DropReason =====

/// Why an event was dropped: one variant per filter of b.2, in rule order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The ifindex has no known name. The C++ writes the decimal ifindex as
    /// the name (b.2 step 3); we drop instead (deliberate deviation, b.5/f.6).
    UnknownInterface,
    /// `--router-interfaces-only`: the interface has no key in CONFIG_DB
    /// `INTERFACE`, `PORTCHANNEL_INTERFACE`, `VLAN_INTERFACE` or
    /// `VLAN_SUB_INTERFACE`, adds and deletes (step 3a; opt-in, not in the
    /// C++).
    NotRouterInterface,
    /// IPv4 169.254.0.0/16 on a dual-ToR, adds and deletes (step 6).
    LinkLocalDualTor,
    /// IPv6 fe80::/10 add on an interface without
    /// `ipv6_use_link_local_only=enable` (step 7).
    Ipv6LinkLocal,
    /// IPv6 multicast link-local ffX2::/16, adds and deletes (step 8).
    Ipv6MulticastLinkLocal,
    /// EVPN mode, RTM_NEWNEIGH in state NUD_PROBE (step 10).
    EvpnProbe,
    /// Not EVPN mode, state NUD_NOARP without NTF_EXT_LEARNED, adds and
    /// deletes (step 11).
    NoArp,
    /// Add without a link-layer address (libnl prints `none`, step 14).
    NoMac,
    /// Add with MAC ff:ff:ff:ff:ff:ff (directed broadcast, step 15).
    BroadcastMac,
}

impl DropReason {
    /// Every reason, in rule order (e.g. to pre-register metric labels).
    pub const ALL: [DropReason; 9] = [
        DropReason::UnknownInterface,
        DropReason::NotRouterInterface,
        DropReason::LinkLocalDualTor,
        DropReason::Ipv6LinkLocal,
        DropReason::Ipv6MulticastLinkLocal,
        DropReason::EvpnProbe,
        DropReason::NoArp,
        DropReason::NoMac,
        DropReason::BroadcastMac,
    ];

    /// Whether the entry keeps what APPL_DB has: the rule drops a *state*
    /// that changes nothing (EVPN PROBE, NOARP, no MAC, broadcast MAC), not
    /// a neighbour that must not be written at all. A kernel dump that
    /// lists such an entry keeps its key instead of sweeping it (the C++,
    /// which has no resync, never deletes it either).
    pub const fn keeps_entry(self) -> bool {
        matches!(
            self,
            DropReason::EvpnProbe
                | DropReason::NoArp
                | DropReason::NoMac
                | DropReason::BroadcastMac
        )
    }

    /// A stable snake_case label (used as a Prometheus label value):
    /// `unknown_interface`, `not_router_interface`, `link_local_dual_tor`,
    /// `ipv6_link_local`,
    /// `ipv6_multicast_link_local`, `evpn_probe`, `noarp`, `no_mac`,
    /// `broadcast_mac`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownInterface => "unknown_interface",
            DropReason::NotRouterInterface => "not_router_interface",
            DropReason::LinkLocalDualTor => "link_local_dual_tor",
            DropReason::Ipv6LinkLocal => "ipv6_link_local",
            DropReason::Ipv6MulticastLinkLocal => "ipv6_multicast_link_local",
            DropReason::EvpnProbe => "evpn_probe",
            DropReason::NoArp => "noarp",
            DropReason::NoMac => "no_mac",
            DropReason::BroadcastMac => "broadcast_mac",
        }
    }
}

// ===== decide =====

/// Apply the NeighSync::onMsg rules (docs/behavior.md b.2) to one event.
///
/// * `ifname`: the current name of `ev.ifindex` (b.5), `None` when unknown.
/// * `master_name`: the name of the interface's master device (a VRF, a
///   bridge...), `None` when it has none or it is unknown. It is only read in
///   EVPN mode (b.2 step 4), so the caller may skip resolving it otherwise.
/// * `ctx`: the CONFIG_DB facts (dual-ToR, EVPN, link-local interfaces).
///
/// The rules, in order; all state tests compare the whole `ndm_state`:
/// 1. (steps 1-2) the message type and family are already typed by the
///    decoder; RTM_GETNEIGH is handled like RTM_NEWNEIGH, as the C++ does,
///    except in step 10 which names RTM_NEWNEIGH only.
/// 2. (step 3) unknown interface → [`DropReason::UnknownInterface`].
///    **Deliberate deviation**: the C++ writes the decimal ifindex as the
///    interface name (`57:10.0.0.2`), which orchagent retries forever (f.6).
///    (step 3a, opt-in `--router-interfaces-only`) an interface that is not
///    a router interface ([`SyncContext::writes_interface`]) →
///    [`DropReason::NotRouterInterface`], deletes too.
/// 3. (step 6) IPv4 169.254.0.0/16 on a dual-ToR → drop, deletes too.
/// 4. (step 7) IPv6 fe80::/10, not RTM_DELNEIGH, link-local mode off on the
///    interface → drop. Deletes always pass.
/// 5. (step 8) IPv6 ffX2::/16 → drop, deletes too.
/// 6. (step 10) EVPN, RTM_NEWNEIGH, NUD_PROBE → drop.
/// 7. (step 11) not EVPN, NUD_NOARP without NTF_EXT_LEARNED → drop, deletes
///    too.
/// 8. (step 12) dual-ToR and NUD_INCOMPLETE/NUD_FAILED → Set with
///    [`ZERO_MAC`] (Del for RTM_DELNEIGH); else RTM_DELNEIGH or
///    INCOMPLETE/FAILED → Del; else EVPN and NUD_NOARP → Del without
///    NTF_EXT_LEARNED, Set with it; else Set.
/// 9. (steps 13-15) a Set without a MAC → [`DropReason::NoMac`]; with
///    ff:ff:ff:ff:ff:ff → [`DropReason::BroadcastMac`]. The decoder only
///    yields 6-byte MACs, so the C++ crash on other lengths (f.7) cannot
///    happen.
/// 10. (step 18) a Set in EVPN mode whose master name starts with `Vrf`
///     carries `route_del = "<master>:<ip>"`.
///
/// Only the key (and the route key, when present) are allocated; see
/// [`decide_parts`] for the same decision without them.
pub fn decide(
    ev: &NeighborEvent,
    ifname: Option<&str>,
    master_name: Option<&str>,
    ctx: &SyncContext,
) -> Outcome {
    let Some(name) = ifname else {
        return Outcome::Drop(DropReason::UnknownInterface);
    };
    match decide_parts(ev, ifname, master_name, ctx) {
        Decision::Drop(reason) => Outcome::Drop(reason),
        Decision::Del => Outcome::Write {
            op: NeighOp::Del {
                key: neigh_key(name, &ev.dst),
            },
            route_del: None,
        },
        Decision::Set {
            mac,
            family,
            route_del,
        } => Outcome::Write {
            op: NeighOp::Set {
                key: neigh_key(name, &ev.dst),
                mac,
                family,
            },
            route_del: match master_name {
                Some(master) if route_del => Some(neigh_key(master, &ev.dst)),
                _ => None,
            },
        },
    }
}

// ===== Decision =====

/// [`decide`]'s answer without the key text (nothing allocated): the
/// `NEIGH_TABLE` key is `<ifname>:<ip>` of the event's interface name and
/// destination ([`neigh_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `set(<ifname>:<ip>, [("neigh", mac), ("family", family)])`.
    Set {
        /// Raw MAC; [`ZERO_MAC`] for an unresolved neighbour on a dual-ToR.
        mac: [u8; 6],
        /// `IPv4` or `IPv6`: the family of the destination.
        family: Family,
        /// The EVPN `ROUTE_TABLE` key `<master_name>:<ip>` must be deleted
        /// before the set (b.2 step 18; see [`Outcome::Write`]).
        route_del: bool,
    },
    /// `del(<ifname>:<ip>)`.
    Del,
    /// Nothing is written.
    Drop(DropReason),
}

/// The rules of [`decide`] (same arguments, same order, same result),
/// without building the key strings: [`decide`] is this plus
/// [`neigh_key`] (for the `NEIGH_TABLE` key and, when `route_del`, the
/// `ROUTE_TABLE` key from `master_name`). The daemon's hot path hands the
/// parts to the writer, which keeps keys compact anyway.
pub fn decide_parts(
    ev: &NeighborEvent,
    ifname: Option<&str>,
    master_name: Option<&str>,
    ctx: &SyncContext,
) -> Decision {
    let dual_tor = ctx.is_dual_tor();
    let evpn = ctx.evpn_nvo_exists();
    let is_del = ev.msg_type == NeighMsgType::Del;

    // Step 3.
    let Some(ifname) = ifname else {
        return Decision::Drop(DropReason::UnknownInterface);
    };
    // Step 3a (opt-in).
    if !ctx.writes_interface(ifname) {
        return Decision::Drop(DropReason::NotRouterInterface);
    }

    // Steps 6-8.
    if let Some(reason) = address_filter(&ev.dst, ifname, is_del, dual_tor, ctx) {
        return Decision::Drop(reason);
    }

    let state = ev.state;
    let ext_learned = ev.flags & NTF_EXT_LEARNED != 0;

    // Step 10: RTM_NEWNEIGH only, not RTM_GETNEIGH, as in the C++.
    if evpn && ev.msg_type == NeighMsgType::New && state == nud::PROBE {
        return Decision::Drop(DropReason::EvpnProbe);
    }

    // Step 11. This also drops RTM_DELNEIGH in state NOARP (f.10): kept as
    // the C++ does it. Such an entry was never written by this rule set
    // (a NOARP add without NTF_EXT_LEARNED is dropped too), so nothing stale
    // is left behind in the common case.
    if !evpn && state == nud::NOARP && !ext_learned {
        return Decision::Drop(DropReason::NoArp);
    }

    // Step 12.
    let unresolved = state == nud::INCOMPLETE || state == nud::FAILED;
    let (delete, use_zero_mac) = if dual_tor && unresolved {
        (is_del, true)
    } else if is_del || unresolved {
        (true, false)
    } else if evpn && state == nud::NOARP {
        (!ext_learned, false)
    } else {
        (false, false)
    };

    if delete {
        return Decision::Del;
    }

    // Steps 13-15.
    let mac = if use_zero_mac {
        ZERO_MAC
    } else {
        match ev.lladdr {
            Some(mac) => mac,
            None => return Decision::Drop(DropReason::NoMac),
        }
    };
    if mac == BROADCAST_MAC {
        return Decision::Drop(DropReason::BroadcastMac);
    }

    // Steps 16, 18.
    let route_del = evpn && master_name.is_some_and(|m| m.starts_with(VRF_PREFIX));
    Decision::Set {
        mac,
        family: Family::of(&ev.dst),
        route_del,
    }
}

// ===== NEIGH_FAILED_TABLE =====

/// What an event means for APPL_DB `NEIGH_FAILED_TABLE` ([`decide_failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailedOp {
    /// SET `NEIGH_FAILED_TABLE:<ifname>:<ip>` `NULL=NULL`, also when the key
    /// is already there: nbrmgrd acts on each pop (the neighbour goes to
    /// INCOMPLETE and one Neighbor Solicitation is sent).
    Publish,
    /// DEL the key if it is there: the neighbour resolved or is gone.
    Clear,
    /// Leave the key as it is (INCOMPLETE, NONE): a failed neighbour that
    /// nbrmgrd moved to INCOMPLETE stays listed while it resolves.
    Keep,
}

/// The `NEIGH_FAILED_TABLE` rule of NeighSync::onMsg (sonic-swss PR 4849;
/// docs/behavior.md b.2 step 9a), applied to one event, beside [`decide`]:
/// `None` when the event does not concern the table.
///
/// Only on a dual-ToR and for IPv6, after the link-local filters (steps
/// 6-8: an IPv6 link-local add on an interface without
/// `ipv6_use_link_local_only`, or a multicast link-local address, is not
/// considered) and before the EVPN PROBE and NOARP filters, whatever the
/// warm-start state:
/// * RTM_NEWNEIGH in exactly NUD_FAILED: [`FailedOp::Publish`];
/// * RTM_DELNEIGH, or RTM_NEWNEIGH/RTM_GETNEIGH with a state in
///   [`VALID_NEIGH_STATES`]: [`FailedOp::Clear`];
/// * any other RTM_NEWNEIGH/RTM_GETNEIGH (INCOMPLETE, NONE, RTM_GETNEIGH in
///   FAILED): [`FailedOp::Keep`].
///
/// An unknown interface gives `None` (N1: the C++ would use the decimal
/// ifindex as the name), and so does, with the opt-in
/// `--router-interfaces-only`, an interface that is not a router interface.
pub fn decide_failed(
    ev: &NeighborEvent,
    ifname: Option<&str>,
    ctx: &SyncContext,
) -> Option<FailedOp> {
    let ifname = ifname?;
    if !ctx.is_dual_tor() || !ev.dst.is_ipv6() || !ctx.writes_interface(ifname) {
        return None;
    }
    let is_del = ev.msg_type == NeighMsgType::Del;
    if address_filter(&ev.dst, ifname, is_del, true, ctx).is_some() {
        return None;
    }
    Some(
        if ev.msg_type == NeighMsgType::New && ev.state == nud::FAILED {
            FailedOp::Publish
        } else if is_del || ev.state & VALID_NEIGH_STATES != 0 {
            FailedOp::Clear
        } else {
            FailedOp::Keep
        },
    )
}

/// Steps 6-8 of [`decide`]: IPv4 link-local on a dual-ToR, IPv6
/// link-local (unless a delete, or the interface has
/// `ipv6_use_link_local_only`), IPv6 link-local multicast.
fn address_filter(
    dst: &IpAddr,
    ifname: &str,
    is_del: bool,
    dual_tor: bool,
    ctx: &SyncContext,
) -> Option<DropReason> {
    match dst {
        IpAddr::V4(v4) if dual_tor && v4.is_link_local() => Some(DropReason::LinkLocalDualTor),
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => {
            let o = v6.octets();
            // IN6_IS_ADDR_LINKLOCAL: fe80::/10.
            if o[0] == 0xfe && (o[1] & 0xc0) == 0x80 && !is_del && !ctx.link_local_enabled(ifname) {
                return Some(DropReason::Ipv6LinkLocal);
            }
            // IN6_IS_ADDR_MC_LINKLOCAL: ffX2::/16.
            (o[0] == 0xff && (o[1] & 0x0f) == 0x02).then_some(DropReason::Ipv6MulticastLinkLocal)
        }
    }
}

/// `<name>:<ip>` with the IP as libnl prints it (b.4): the `NEIGH_TABLE`
/// key of a neighbour (`Ethernet8:10.0.0.2`) from its interface name, or
/// the EVPN `ROUTE_TABLE` key (`Vrf-red:10.0.0.2`) from its master's name.
pub fn neigh_key(name: &str, ip: &IpAddr) -> String {
    let mut key = String::with_capacity(name.len() + 1 + 39);
    key.push_str(name);
    key.push(':');
    push_ip(&mut key, ip);
    key
}

#[cfg(test)]
mod tests;
