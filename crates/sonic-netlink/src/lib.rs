//! The kernel side shared by neighsyncd and portsyncd.
//!
//! * [`socket`]: an rtnetlink route socket (multicast groups, dumps, large
//!   receive buffer through `SO_RCVBUFFORCE`, ENOBUFS reported as an overrun).
//! * [`neigh`]: RTM_NEWNEIGH / RTM_DELNEIGH -> typed, validated [`NeighborEvent`].
//! * [`link`]: RTM_NEWLINK / RTM_DELLINK -> typed [`LinkEvent`], and the
//!   ifindex -> name map ([`LinkTable`]) kept current from those events.
//! * [`fmt`]: IP and MAC text exactly as libnl's `nl_addr2str` (glibc
//!   `inet_ntop`) prints it, which is what goes into APPL_DB keys.
//!
//! Nothing here knows about Redis or SONiC tables.

#![warn(missing_docs)]

pub mod fmt;
pub mod link;
pub mod neigh;
pub mod socket;

pub use link::{decode_link, LinkChange, LinkEntry, LinkEvent, LinkMsgType, LinkTable};
pub use neigh::{decode_neigh, NeighMsgType, NeighborEvent};
pub use socket::{
    decode_message, Dump, KernelMessage, NetlinkSocket, RcvBuf, Received, SocketError,
    RTNLGRP_LINK, RTNLGRP_NEIGH,
};

/// Errors from decoding one netlink message. The message is logged with this
/// context and skipped; kernel input never stops a daemon.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// A required attribute (e.g. `NDA_DST`, `IFLA_IFNAME`) is absent.
    #[error("{msg} ifindex {ifindex}: missing attribute {attr}")]
    MissingAttribute {
        /// The message kind, e.g. `neighbor` or `link`.
        msg: &'static str,
        /// `ndm_ifindex` / `ifi_index` of the message.
        ifindex: u32,
        /// The attribute's name, e.g. `NDA_DST`.
        attr: &'static str,
    },
    /// `NDA_LLADDR` present but not 6 bytes (SONiC neighbors are Ethernet).
    #[error("neighbor ifindex {ifindex}: link-layer address has {len} bytes, expected 6")]
    BadLladdr {
        /// `ndm_ifindex` of the message.
        ifindex: u32,
        /// The length found, in bytes.
        len: usize,
    },
    /// `NDA_DST` length does not match the family (4 bytes for AF_INET, 16 for AF_INET6).
    #[error("neighbor ifindex {ifindex}: destination address does not match family {family}")]
    BadDestination {
        /// `ndm_ifindex` of the message.
        ifindex: u32,
        /// `ndm_family` (2 = AF_INET, 10 = AF_INET6).
        family: u8,
    },
    /// Anything else the decoder rejects (bad name encoding, truncated payload, ...).
    #[error("{0}")]
    Malformed(String),
}

impl DecodeError {
    /// The kind of message that could not be decoded when the decoder
    /// knows it ([`DecodeError::MissingAttribute`]'s `msg`), else `""`:
    /// the `type` label of the daemons' `kernel_events_total{outcome="malformed"}`.
    pub fn msg_kind(&self) -> &'static str {
        match self {
            DecodeError::MissingAttribute { msg, .. } => msg,
            _ => "",
        }
    }
}
