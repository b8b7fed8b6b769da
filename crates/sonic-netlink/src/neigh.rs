//! RTM_NEWNEIGH / RTM_DELNEIGH decoding into [`NeighborEvent`].

use std::net::IpAddr;

/// NUD states (`ndm_state`), as in `<linux/neighbour.h>`.
pub mod nud {
    pub const NONE: u16 = 0x00;
    pub const INCOMPLETE: u16 = 0x01;
    pub const REACHABLE: u16 = 0x02;
    pub const STALE: u16 = 0x04;
    pub const DELAY: u16 = 0x08;
    pub const PROBE: u16 = 0x10;
    pub const FAILED: u16 = 0x20;
    pub const NOARP: u16 = 0x40;
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
}
