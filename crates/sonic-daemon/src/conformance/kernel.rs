//! The kernel's links for the conformance scenarios: the link messages of
//! the input grammar, the table they build (what a link dump lists) and how
//! the transcript shows a message.
//!
//! ```text
//! RTM_NEWLINK <name> [ifindex <n>] [up] [running] [mtu <n>] [master <name|n>] [kind <kind>] [bridge]
//! RTM_DELLINK <name> [ifindex <n>] [master <name|n>] [bridge]
//! ```
//!
//! `ifindex` may be left out for a link the table knows by that name; a
//! new ifindex under a known name, or a known ifindex under a new name, is
//! what the kernel sends for a re-created or renamed link. `bridge` makes
//! it an AF_BRIDGE message (a bridge port's notification), which changes
//! only the port's master in the table.

use std::collections::BTreeMap;

use sonic_netlink::link::{IFF_RUNNING, IFF_UP};
use sonic_netlink::neigh::AF_BRIDGE;
use sonic_netlink::{LinkEvent, LinkMsgType};

use super::Words;

/// One link as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `IFLA_IFNAME`.
    pub name: String,
    /// `ifi_flags` (IFF_UP, IFF_RUNNING).
    pub flags: u32,
    /// `IFLA_MTU`.
    pub mtu: Option<u32>,
    /// `IFLA_MASTER`.
    pub master: Option<u32>,
    /// `IFLA_INFO_KIND`.
    pub kind: Option<String>,
}

/// The kernel's link table, by ifindex.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    links: BTreeMap<u32, Link>,
}

impl Links {
    /// No link.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ifindex of the link named `name`.
    pub fn ifindex_of(&self, name: &str) -> Option<u32> {
        self.links
            .iter()
            .find(|(_, l)| l.name == name)
            .map(|(i, _)| *i)
    }

    /// The name of `ifindex`, or `ifindex <n>` when there is no such link.
    pub fn name_of(&self, ifindex: u32) -> String {
        self.links
            .get(&ifindex)
            .map_or_else(|| format!("ifindex {ifindex}"), |l| l.name.clone())
    }

    /// Whether `ifindex` exists.
    pub fn contains(&self, ifindex: u32) -> bool {
        self.links.contains_key(&ifindex)
    }

    /// The link `ifindex`, if it exists.
    pub fn get(&self, ifindex: u32) -> Option<&Link> {
        self.links.get(&ifindex)
    }

    /// Every link, by ifindex.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Link)> {
        self.links.iter().map(|(i, l)| (*i, l))
    }

    /// Parses the rest of a `RTM_NEWLINK` / `RTM_DELLINK` line (`kind` is
    /// the message type already taken from `w`).
    ///
    /// Errors: an unknown word, a missing value, no ifindex for a new name.
    pub fn parse(&self, kind: &str, w: &mut Words) -> Result<LinkEvent, String> {
        let msg_type = match kind {
            "RTM_NEWLINK" => LinkMsgType::New,
            "RTM_DELLINK" => LinkMsgType::Del,
            other => return Err(format!("not a link message: {other:?}")),
        };
        let name = w.expect("an interface name")?;
        let mut ev = LinkEvent {
            msg_type,
            family: 0,
            ifindex: 0,
            name: name.clone(),
            flags: 0,
            mtu: None,
            master: None,
            kind: None,
        };
        let mut ifindex = None;
        while let Some(word) = w.next() {
            match word.as_str() {
                "ifindex" => ifindex = Some(number(&w.expect("an ifindex")?)?),
                "up" => ev.flags |= IFF_UP,
                "running" => ev.flags |= IFF_RUNNING,
                "mtu" => ev.mtu = Some(number(&w.expect("an mtu")?)?),
                "master" => {
                    let m = w.expect("a master")?;
                    let index = self
                        .ifindex_of(&m)
                        .or_else(|| m.parse().ok())
                        .ok_or_else(|| format!("unknown master {m:?}"))?;
                    ev.master = Some(index);
                }
                "kind" => ev.kind = Some(w.expect("a kind")?),
                "bridge" => ev.family = AF_BRIDGE,
                other => return Err(format!("unexpected {other:?} in a link message")),
            }
        }
        ev.ifindex = ifindex
            .or_else(|| self.ifindex_of(&name))
            .ok_or_else(|| format!("{name} is a new link: give its ifindex"))?;
        Ok(ev)
    }

    /// The table after `ev`; returns the link a RTM_DELLINK removed.
    pub fn apply(&mut self, ev: &LinkEvent) -> Option<Link> {
        if ev.family == AF_BRIDGE {
            if let Some(l) = self.links.get_mut(&ev.ifindex) {
                l.master = match ev.msg_type {
                    LinkMsgType::New => ev.master,
                    LinkMsgType::Del => None,
                };
            }
            return None;
        }
        match ev.msg_type {
            LinkMsgType::New => {
                // A re-created link may come back under a new ifindex.
                self.links
                    .retain(|i, l| *i == ev.ifindex || l.name != ev.name);
                self.links.insert(
                    ev.ifindex,
                    Link {
                        name: ev.name.clone(),
                        flags: ev.flags,
                        mtu: ev.mtu,
                        master: ev.master,
                        kind: ev.kind.clone(),
                    },
                );
                None
            }
            LinkMsgType::Del => self.links.remove(&ev.ifindex),
        }
    }

    /// Clears IFF_UP of `ifindex` (`ip link set <name> down`); returns the
    /// RTM_NEWLINK the kernel then sends.
    pub fn set_down(&mut self, ifindex: u32) -> Option<LinkEvent> {
        let l = self.links.get_mut(&ifindex)?;
        l.flags &= !IFF_UP;
        let l = l.clone();
        Some(self.event(ifindex, &l))
    }

    fn event(&self, ifindex: u32, l: &Link) -> LinkEvent {
        LinkEvent {
            msg_type: LinkMsgType::New,
            family: 0,
            ifindex,
            name: l.name.clone(),
            flags: l.flags,
            mtu: l.mtu,
            master: l.master,
            kind: l.kind.clone(),
        }
    }

    /// The replies of a link dump: one RTM_NEWLINK per link, by ifindex.
    pub fn dump(&self) -> Vec<LinkEvent> {
        self.links.iter().map(|(i, l)| self.event(*i, l)).collect()
    }

    /// A link message as the transcript shows it (the input grammar).
    pub fn render(&self, ev: &LinkEvent) -> String {
        let mut s = format!(
            "{} {} ifindex {}",
            ev.msg_type.rtm_name(),
            ev.name,
            ev.ifindex
        );
        if ev.flags & IFF_UP != 0 {
            s.push_str(" up");
        }
        if ev.flags & IFF_RUNNING != 0 {
            s.push_str(" running");
        }
        if let Some(m) = ev.mtu {
            s.push_str(&format!(" mtu {m}"));
        }
        if let Some(m) = ev.master {
            s.push_str(&format!(" master {}", self.name_of(m)));
        }
        if let Some(k) = &ev.kind {
            s.push_str(&format!(" kind {k}"));
        }
        if ev.family == AF_BRIDGE {
            s.push_str(" bridge");
        }
        s
    }
}

/// A decimal `u32`.
///
/// Errors: anything else.
pub fn number(text: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("expected a number, found {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_apply_render_and_dump() {
        let mut links = Links::new();
        let mut w = Words::new("Vrf1 ifindex 10 up kind vrf").expect("words");
        let vrf = links.parse("RTM_NEWLINK", &mut w).expect("parse");
        links.apply(&vrf);
        let mut w = Words::new("Vlan100 ifindex 11 up running mtu 9100 master Vrf1").expect("w");
        let vlan = links.parse("RTM_NEWLINK", &mut w).expect("parse");
        assert_eq!(vlan.master, Some(10));
        links.apply(&vlan);
        assert_eq!(
            links.render(&vlan),
            "RTM_NEWLINK Vlan100 ifindex 11 up running mtu 9100 master Vrf1"
        );
        let mut w = Words::new("Vlan100").expect("w");
        let del = links.parse("RTM_DELLINK", &mut w).expect("ifindex known");
        assert_eq!(del.ifindex, 11);
        let mut w = Words::new("Ethernet0 up").expect("w");
        assert!(links.parse("RTM_NEWLINK", &mut w).is_err());
        assert_eq!(links.dump().len(), 2);
        assert_eq!(links.set_down(10).map(|e| e.flags), Some(0));
        assert!(links.apply(&del).is_some());
        assert_eq!(links.dump().len(), 1);
    }
}
