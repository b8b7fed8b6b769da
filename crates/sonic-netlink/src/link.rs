//! RTM_NEWLINK / RTM_DELLINK decoding into [`LinkEvent`], and [`LinkTable`].

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
