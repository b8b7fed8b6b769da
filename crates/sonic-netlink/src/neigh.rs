//! RTM_NEWNEIGH / RTM_DELNEIGH decoding into [`NeighborEvent`].
//!
//! Two entry points share one set of rules (`neigh_event`):
//! * [`decode_neigh`] takes a `netlink_packet_route` [`NeighbourMessage`]
//!   (what tests and tools build);
//! * the socket's wire decoder ([`crate::socket::decode_message`]) reads the
//!   `ndmsg` header and the two attributes it needs straight from the
//!   received bytes, so a 100k-entry dump costs no allocation per entry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};

use crate::DecodeError;

/// `AF_INET` as carried in `ndm_family`.
pub const AF_INET: u8 = 2;
/// `AF_INET6` as carried in `ndm_family`.
pub const AF_INET6: u8 = 10;
/// `AF_BRIDGE` as carried in `ndm_family` / `ifi_family` (FDB entries, bridge ports).
pub const AF_BRIDGE: u8 = 7;

/// NUD states (`ndm_state`), as in `<linux/neighbour.h>`.
pub mod nud {
    /// `NUD_NONE`: no state.
    pub const NONE: u16 = 0x00;
    /// `NUD_INCOMPLETE`: resolution in progress, no link-layer address yet.
    pub const INCOMPLETE: u16 = 0x01;
    /// `NUD_REACHABLE`: confirmed reachable recently.
    pub const REACHABLE: u16 = 0x02;
    /// `NUD_STALE`: the address is known but not confirmed recently.
    pub const STALE: u16 = 0x04;
    /// `NUD_DELAY`: stale and used; waiting before probing.
    pub const DELAY: u16 = 0x08;
    /// `NUD_PROBE`: being probed (unicast).
    pub const PROBE: u16 = 0x10;
    /// `NUD_FAILED`: resolution failed.
    pub const FAILED: u16 = 0x20;
    /// `NUD_NOARP`: no resolution needed (e.g. multicast, point-to-point).
    pub const NOARP: u16 = 0x40;
    /// `NUD_PERMANENT`: static entry (`ip neigh add ... nud permanent`).
    pub const PERMANENT: u16 = 0x80;
}

/// `ndm_flags` bit: the entry was learned externally (EVPN / control plane).
pub const NTF_EXT_LEARNED: u8 = 0x10;

/// Which rtnetlink message carried the neighbor (dump replies arrive as `New`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighMsgType {
    /// RTM_NEWNEIGH
    New,
    /// RTM_DELNEIGH
    Del,
    /// RTM_GETNEIGH (never sent by the kernel to listeners; accepted like the C++)
    Get,
}

/// One kernel neighbor message, validated: an AF_INET/AF_INET6 neighbor with a
/// destination that matches its family and, when present, a 6-byte MAC.
///
/// Non-IP families (AF_BRIDGE FDB entries, ...) never become a `NeighborEvent`;
/// the decoder reports them as ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborEvent {
    /// RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH (`nlmsg_type`).
    pub msg_type: NeighMsgType,
    /// `ndm_ifindex`
    pub ifindex: u32,
    /// `NDA_DST`; its variant is the family (IPv4 = AF_INET, IPv6 = AF_INET6).
    pub dst: IpAddr,
    /// `NDA_LLADDR`; `None` when absent or zero-length (libnl prints `none`).
    pub lladdr: Option<[u8; 6]>,
    /// `ndm_state`, one of the [`nud`] values (compared for equality, not bits).
    pub state: u16,
    /// `ndm_flags` (see [`NTF_EXT_LEARNED`]).
    pub flags: u8,
    /// A reply to our dump request (`nlmsg_seq` non-zero), not a multicast
    /// notification of a change (`nlmsg_seq` 0). Set by
    /// [`crate::socket::NetlinkSocket::recv`]; false from
    /// [`crate::socket::decode_message`] alone.
    pub dump: bool,
}

impl NeighMsgType {
    /// The rtnetlink name of the message type (`RTM_NEWNEIGH`, ...), for logs
    /// and [`DecodeError::MissingAttribute`].
    pub fn rtm_name(self) -> &'static str {
        match self {
            NeighMsgType::New => "RTM_NEWNEIGH",
            NeighMsgType::Del => "RTM_DELNEIGH",
            NeighMsgType::Get => "RTM_GETNEIGH",
        }
    }
}

/// Decode a parsed rtnetlink neighbor message into a [`NeighborEvent`].
///
/// * `Ok(None)`: the family is not AF_INET/AF_INET6 (AF_BRIDGE FDB entries,
///   ...). neighsyncd drops those (docs/behavior.md b.2 step 2).
/// * `Err(MissingAttribute { attr: "NDA_DST", .. })`: no destination.
/// * `Err(BadDestination)`: `NDA_DST` is not an address of the header's
///   family (4 bytes for AF_INET, 16 for AF_INET6).
/// * `Err(BadLladdr)`: `NDA_LLADDR` present with a length other than 0 or 6
///   (the C++ neighsyncd crashes on those, docs/behavior.md f.7). A zero-length or
///   absent lladdr gives `lladdr: None` (libnl prints `none`).
///
/// `ndm_state` and `ndm_flags` are kept as the raw kernel values. When an
/// attribute occurs twice the last one wins, as libnl's `nla_parse`.
pub fn decode_neigh(
    msg_type: NeighMsgType,
    msg: &NeighbourMessage,
) -> Result<Option<NeighborEvent>, DecodeError> {
    let mut dst: Option<&NeighbourAddress> = None;
    let mut lladdr: Option<&[u8]> = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(a) => dst = Some(a),
            NeighbourAttribute::LinkLayerAddress(l) => lladdr = Some(l),
            _ => {}
        }
    }
    let v4: [u8; 4];
    let v6: [u8; 16];
    let dst_bytes: Option<&[u8]> = match dst {
        None => None,
        Some(NeighbourAddress::Inet(a)) => {
            v4 = a.octets();
            Some(&v4)
        }
        Some(NeighbourAddress::Inet6(a)) => {
            v6 = a.octets();
            Some(&v6)
        }
        Some(NeighbourAddress::Other(raw)) => Some(raw),
        // `NeighbourAddress` is non_exhaustive: a future variant is not an
        // address we can check against the family.
        Some(_) => Some(&[]),
    };
    neigh_event(
        msg_type,
        NeighHeader {
            family: u8::from(msg.header.family),
            ifindex: msg.header.ifindex,
            state: u16::from(msg.header.state),
            flags: msg.header.flags.bits(),
        },
        dst_bytes,
        lladdr,
    )
}

/// The `ndmsg` fields the rules look at, raw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NeighHeader {
    pub family: u8,
    pub ifindex: u32,
    pub state: u16,
    pub flags: u8,
}

/// The validation rules shared by [`decode_neigh`] and the wire decoder.
/// `dst` / `lladdr` are the raw attribute payloads (last occurrence).
pub(crate) fn neigh_event(
    msg_type: NeighMsgType,
    h: NeighHeader,
    dst: Option<&[u8]>,
    lladdr: Option<&[u8]>,
) -> Result<Option<NeighborEvent>, DecodeError> {
    if h.family != AF_INET && h.family != AF_INET6 {
        return Ok(None);
    }
    let dst = dst.ok_or(DecodeError::MissingAttribute {
        msg: msg_type.rtm_name(),
        ifindex: h.ifindex,
        attr: "NDA_DST",
    })?;
    let bad_dst = || DecodeError::BadDestination {
        ifindex: h.ifindex,
        family: h.family,
    };
    let dst = if h.family == AF_INET {
        let o: [u8; 4] = dst.try_into().map_err(|_| bad_dst())?;
        IpAddr::V4(Ipv4Addr::from(o))
    } else {
        let o: [u8; 16] = dst.try_into().map_err(|_| bad_dst())?;
        IpAddr::V6(Ipv6Addr::from(o))
    };
    let lladdr = match lladdr {
        None | Some([]) => None,
        Some(l) => Some(<[u8; 6]>::try_from(l).map_err(|_| DecodeError::BadLladdr {
            ifindex: h.ifindex,
            len: l.len(),
        })?),
    };
    Ok(Some(NeighborEvent {
        msg_type,
        ifindex: h.ifindex,
        dst,
        lladdr,
        state: h.state,
        flags: h.flags,
        dump: false,
    }))
}
