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

use std::collections::{BTreeMap, VecDeque};

use sonic_netlink::link::{IFF_RUNNING, IFF_UP};
use sonic_netlink::neigh::AF_BRIDGE;
use sonic_netlink::socket::{Dump, KernelMessage, Received};
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

// ===== the socket =====

/// The netlink socket's receive buffer: notifications and dump replies
/// waiting for the core to read them, and where ENOBUFS hits.
///
/// The core reads when it wants ([`crate::engine::Core::reads_kernel`]);
/// one read takes everything waiting, up to and including an overrun
/// (ENOBUFS is reported after the messages read before it, as
/// `NetlinkSocket::recv` does).
#[derive(Debug, Default)]
pub struct Socket {
    queue: VecDeque<Entry>,
    /// Overruns to report right after the replies of the next dump of
    /// that kind.
    armed: Vec<Dump>,
    /// The text of a notification the current input line queued as the
    /// echo shows it: a read of exactly that one is not shown again.
    fresh: Option<String>,
}

#[derive(Debug)]
enum Entry {
    Msg(KernelMessage, String),
    Overrun,
}

/// One read ([`Socket::read`]).
#[derive(Debug)]
pub struct Read {
    /// The messages, for [`crate::engine::Core::handle_kernel`].
    pub msgs: Vec<Received>,
    /// ENOBUFS after them.
    pub overrun: bool,
    /// Transcript lines (`netlink read: ...`); empty when the read is
    /// exactly the notification the current line echoes.
    pub shown: Vec<String>,
}

impl Socket {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new input line begins: only a read during the line that queued a
    /// notification goes unshown.
    pub fn begin_line(&mut self) {
        self.fresh = None;
    }

    /// A notification, `text` as the transcript shows it; `echoed`: the
    /// input line reads exactly so.
    pub fn notify(&mut self, msg: KernelMessage, text: String, echoed: bool) {
        self.fresh = (self.queue.is_empty() && echoed).then(|| text.clone());
        self.queue.push_back(Entry::Msg(msg, text));
    }

    /// ENOBUFS now: notifications were lost after what is queued.
    pub fn overrun(&mut self) {
        self.queue.push_back(Entry::Overrun);
    }

    /// ENOBUFS right after the replies of the next `dump`.
    pub fn overrun_after(&mut self, dump: Dump) {
        self.armed.push(dump);
    }

    /// The replies of a `dump` request, with an overrun after them if one
    /// was armed for it.
    pub fn dump_replies(&mut self, dump: Dump, replies: Vec<(KernelMessage, String)>) {
        for (msg, text) in replies {
            self.queue.push_back(Entry::Msg(msg, text));
        }
        if let Some(i) = self.armed.iter().position(|d| *d == dump) {
            self.armed.remove(i);
            self.queue.push_back(Entry::Overrun);
        }
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.queue
            .iter()
            .filter(|e| matches!(e, Entry::Msg(..)))
            .count()
    }

    /// One read: everything waiting up to and including the first
    /// overrun; `None` when nothing waits.
    pub fn read(&mut self) -> Option<Read> {
        if self.queue.is_empty() {
            return None;
        }
        let mut texts = Vec::new();
        let mut msgs = Vec::new();
        let mut overrun = false;
        while let Some(entry) = self.queue.pop_front() {
            match entry {
                Entry::Msg(m, t) => {
                    msgs.push(Ok(m));
                    texts.push(t);
                }
                Entry::Overrun => {
                    overrun = true;
                    break;
                }
            }
        }
        let fresh = self.fresh.take();
        let quiet = !overrun && texts.len() == 1 && fresh.as_deref() == Some(texts[0].as_str());
        let mut shown = Vec::new();
        if !quiet {
            shown.extend(texts.into_iter().map(|t| format!("netlink read: {t}")));
            if overrun {
                shown.push("netlink read: ENOBUFS (notifications were lost)".to_string());
            }
        }
        Some(Read {
            msgs,
            overrun,
            shown,
        })
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
