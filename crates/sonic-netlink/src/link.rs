//! RTM_NEWLINK / RTM_DELLINK decoding into [`LinkEvent`], and [`LinkTable`].
//!
//! As for neighbors, [`decode_link`] (from a `netlink_packet_route`
//! [`LinkMessage`]) and the socket's wire decoder share one set of rules
//! (`link_event`); the wire decoder only looks at `IFLA_IFNAME`,
//! `IFLA_MTU`, `IFLA_MASTER` and `IFLA_LINKINFO`/`IFLA_INFO_KIND`, so an
//! attribute it does not need (stats, AF_SPEC, ...) can never make a link
//! message undecodable.

use std::collections::HashMap;

use netlink_packet_route::link::{LinkAttribute, LinkInfo, LinkMessage};

use crate::neigh::AF_BRIDGE;
use crate::DecodeError;

/// Which rtnetlink message carried the link (dump replies arrive as `New`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkMsgType {
    /// RTM_NEWLINK
    New,
    /// RTM_DELLINK
    Del,
}

/// `ifi_flags` bits used by the daemons.
pub const IFF_UP: u32 = 0x1;
/// `ifi_flags`: operationally up (carrier and admin up).
pub const IFF_RUNNING: u32 = 0x40;

/// One kernel link message (family AF_UNSPEC, or AF_BRIDGE for bridge-port
/// notifications).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    /// RTM_NEWLINK / RTM_DELLINK (`nlmsg_type`; dump replies are `New`).
    pub msg_type: LinkMsgType,
    /// `ifi_family` (0 = AF_UNSPEC, 7 = AF_BRIDGE).
    pub family: u8,
    /// `ifi_index`
    pub ifindex: u32,
    /// `IFLA_IFNAME` (required; a message without it is a decode error).
    pub name: String,
    /// `ifi_flags` (see [`IFF_UP`], [`IFF_RUNNING`]).
    pub flags: u32,
    /// `IFLA_MTU` in bytes.
    pub mtu: Option<u32>,
    /// `IFLA_MASTER`; `None` when absent or 0.
    pub master: Option<u32>,
    /// `IFLA_LINKINFO` / `IFLA_INFO_KIND`, e.g. `veth`, `bridge`, `vrf`, `team`.
    pub kind: Option<String>,
}

impl LinkMsgType {
    /// The rtnetlink name of the message type (`RTM_NEWLINK` / `RTM_DELLINK`).
    pub fn rtm_name(self) -> &'static str {
        match self {
            LinkMsgType::New => "RTM_NEWLINK",
            LinkMsgType::Del => "RTM_DELLINK",
        }
    }
}

/// Decode a parsed rtnetlink link message into a [`LinkEvent`].
///
/// * `Err(MissingAttribute { attr: "IFLA_IFNAME", .. })`: no name.
/// * `IFLA_MASTER` absent or 0 gives `master: None`.
/// * `kind` is the `IFLA_LINKINFO` / `IFLA_INFO_KIND` string as the kernel
///   spells it (`vrf`, `team`, `bridge`, `veth`, ...).
/// * `flags` is the raw `ifi_flags`.
///
/// When an attribute occurs twice the last one wins, as libnl's `nla_parse`.
pub fn decode_link(msg_type: LinkMsgType, msg: &LinkMessage) -> Result<LinkEvent, DecodeError> {
    let mut name: Option<&str> = None;
    let mut mtu = None;
    let mut master = None;
    let mut kind = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n),
            LinkAttribute::Mtu(m) => mtu = Some(*m),
            LinkAttribute::Controller(m) => master = Some(*m),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(k) = info {
                        kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link_event(
        msg_type,
        LinkHeader {
            family: u8::from(msg.header.interface_family),
            ifindex: msg.header.index,
            flags: msg.header.flags.bits(),
        },
        name.map(str::to_owned),
        mtu,
        master,
        kind,
    )
}

/// The `ifinfomsg` fields the rules look at, raw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkHeader {
    pub family: u8,
    pub ifindex: u32,
    pub flags: u32,
}

/// The rules shared by [`decode_link`] and the wire decoder.
pub(crate) fn link_event(
    msg_type: LinkMsgType,
    h: LinkHeader,
    name: Option<String>,
    mtu: Option<u32>,
    master: Option<u32>,
    kind: Option<String>,
) -> Result<LinkEvent, DecodeError> {
    let name = name.ok_or(DecodeError::MissingAttribute {
        msg: msg_type.rtm_name(),
        ifindex: h.ifindex,
        attr: "IFLA_IFNAME",
    })?;
    Ok(LinkEvent {
        msg_type,
        family: h.family,
        ifindex: h.ifindex,
        name,
        flags: h.flags,
        mtu,
        master: master.filter(|m| *m != 0),
        kind,
    })
}

// ===== LinkTable =====

/// What one [`LinkTable::apply`] did to the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    /// A link not seen before (RTM_NEWLINK, AF_UNSPEC).
    New,
    /// The ifindex is known under another name: the link was renamed
    /// (`ip link set X name Y`). Keys built with `old` are now stale.
    Renamed {
        /// The name the table held (`IFLA_IFNAME` of an earlier message).
        old: String,
        /// The name now carried by the message.
        new: String,
    },
    /// RTM_DELLINK (AF_UNSPEC) of a known link: the netdev is gone.
    Removed {
        /// The link's last known name.
        name: String,
    },
    /// The name did not change. Master and kind may have been updated
    /// (a port joined or left a bridge/VRF/LAG), or the message was about an
    /// unknown link and changed nothing.
    Unchanged,
}

/// One entry of [`LinkTable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEntry {
    /// `IFLA_IFNAME`
    pub name: String,
    /// `IFLA_MASTER` ifindex (bridge, VRF, LAG), `None` when not enslaved.
    pub master: Option<u32>,
    /// `IFLA_INFO_KIND` (`vrf`, `bridge`, `veth`, ...), `None` for plain netdevs.
    pub kind: Option<String>,
}

/// The kernel's ifindex -> link map, kept current from RTM_NEWLINK /
/// RTM_DELLINK (dump plus `RTNLGRP_LINK`).
///
/// Replaces the C++ LinkCache (linkcache.cpp), which refreshed only on a miss
/// and so kept a renamed interface's old name (docs/behavior.md b.5, f.6): here every
/// link message updates the map at once.
///
/// AF_BRIDGE-family messages are bridge-port notifications, not netdev
/// lifecycle: they never add, rename or remove a link. An AF_BRIDGE
/// RTM_NEWLINK records the port's master (the bridge); an AF_BRIDGE
/// RTM_DELLINK means the port left the bridge and clears the master.
#[derive(Debug, Clone, Default)]
pub struct LinkTable {
    links: HashMap<u32, LinkEntry>,
}

impl LinkTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply one link event and say what changed (see [`LinkChange`]).
    pub fn apply(&mut self, ev: &LinkEvent) -> LinkChange {
        if ev.family == AF_BRIDGE {
            if let Some(entry) = self.links.get_mut(&ev.ifindex) {
                match ev.msg_type {
                    LinkMsgType::New => {
                        if ev.master.is_some() {
                            entry.master = ev.master;
                        }
                    }
                    LinkMsgType::Del => {
                        if ev.master.is_none() || entry.master == ev.master {
                            entry.master = None;
                        }
                    }
                }
            }
            return LinkChange::Unchanged;
        }
        match ev.msg_type {
            LinkMsgType::Del => match self.links.remove(&ev.ifindex) {
                Some(old) => LinkChange::Removed { name: old.name },
                None => LinkChange::Unchanged,
            },
            LinkMsgType::New => match self.links.get_mut(&ev.ifindex) {
                None => {
                    self.links.insert(
                        ev.ifindex,
                        LinkEntry {
                            name: ev.name.clone(),
                            master: ev.master,
                            kind: ev.kind.clone(),
                        },
                    );
                    LinkChange::New
                }
                Some(entry) => {
                    entry.master = ev.master;
                    if entry.kind != ev.kind {
                        entry.kind.clone_from(&ev.kind);
                    }
                    if entry.name != ev.name {
                        let old = std::mem::replace(&mut entry.name, ev.name.clone());
                        LinkChange::Renamed {
                            old,
                            new: ev.name.clone(),
                        }
                    } else {
                        LinkChange::Unchanged
                    }
                }
            },
        }
    }

    /// The name of `ifindex`, `None` when the link is unknown.
    pub fn name(&self, ifindex: u32) -> Option<&str> {
        self.links.get(&ifindex).map(|e| e.name.as_str())
    }

    /// The master ifindex of `ifindex` (bridge, VRF, LAG).
    pub fn master(&self, ifindex: u32) -> Option<u32> {
        self.links.get(&ifindex).and_then(|e| e.master)
    }

    /// The name of the master link of `ifindex` (e.g. `Vrf-red`, `Bridge`);
    /// `None` when the link is unknown, has no master, or the master is
    /// unknown. Replaces the C++ NeighSync::getIfName master lookup.
    pub fn master_name(&self, ifindex: u32) -> Option<&str> {
        self.master(ifindex).and_then(|m| self.name(m))
    }

    /// The `IFLA_INFO_KIND` of `ifindex` (`vrf`, `team`, `bridge`, ...).
    pub fn kind(&self, ifindex: u32) -> Option<&str> {
        self.links.get(&ifindex).and_then(|e| e.kind.as_deref())
    }

    /// The whole entry of `ifindex`.
    pub fn get(&self, ifindex: u32) -> Option<&LinkEntry> {
        self.links.get(&ifindex)
    }

    /// The ifindex of the link called `name` (linear scan).
    pub fn ifindex_of(&self, name: &str) -> Option<u32> {
        self.links
            .iter()
            .find(|(_, e)| e.name == name)
            .map(|(i, _)| *i)
    }

    /// All links, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &LinkEntry)> {
        self.links.iter().map(|(i, e)| (*i, e))
    }

    /// Number of known links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// True when no link is known.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Forget every link (before rebuilding from a fresh dump after an
    /// overrun).
    pub fn clear(&mut self) {
        self.links.clear();
    }
}
