//! The kernel side of [`PortCore`]: link messages through the rules, and
//! the link dumps of [`Phase::StartupDump`] and [`Phase::Resyncing`] (mark
//! and sweep).

use std::collections::HashSet;
use std::time::Instant;

use sonic_daemon::metrics::{Outcome as EventOutcome, ResyncCause};
use sonic_netlink::link::{IFF_RUNNING, IFF_UP};
use sonic_netlink::socket::{KernelMessage, Received, SocketError};
use sonic_netlink::{LinkEvent, LinkMsgType};

use super::{LinkDump, Phase, PortCore, Timer, DUMP_RETRY_DELAY};
use crate::sync::{LinkOutcome, HANDLED_PREFIXES};

impl PortCore {
    /// One wake-up's kernel messages, then the overrun (if any).
    pub(super) fn kernel(&mut self, now: Instant, msgs: &mut Vec<Received>, overrun: bool) {
        for received in msgs.drain(..) {
            match received {
                Ok(KernelMessage::Link(ev)) => self.apply_link(now, &ev),
                Ok(KernelMessage::DumpDone) => self.dump_done(now),
                Ok(KernelMessage::DumpFailed { errno }) => self.dump_failed(errno),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable netlink message skipped");
                    self.stats
                        .kernel_event(e.msg_kind(), EventOutcome::Malformed, "");
                }
            }
        }
        if overrun {
            self.overruns += 1;
            self.stats.netlink_overruns += 1;
            self.stats.resync(ResyncCause::NetlinkOverrun);
            tracing::warn!(
                overruns = self.overruns,
                "netlink receive buffer overrun: dumping links again to resync STATE_DB"
            );
            self.resync(ResyncCause::NetlinkOverrun);
        }
    }

    /// One link message (a notification, a dump reply or a swept link):
    /// the bookkeeping of known links, then the rules.
    pub(super) fn apply_link(&mut self, now: Instant, ev: &LinkEvent) {
        // NOTICE for Ethernet*/PortChannel* with the flags, as linksync.cpp
        // (sonic-swss PR 3427: offline debugging); other netdevs at DEBUG.
        macro_rules! link_message {
            ($level:ident) => {
                tracing::$level!(op = ev.msg_type.rtm_name(), ifname = %ev.name,
                    ifindex = ev.ifindex, admin = ev.flags & IFF_UP != 0,
                    oper = ev.flags & IFF_RUNNING != 0, flags = ev.flags, mtu = ?ev.mtu,
                    master = ?ev.master, kind = ?ev.kind, "link message")
            };
        }
        if HANDLED_PREFIXES.iter().any(|p| ev.name.starts_with(p)) {
            link_message!(info);
        } else {
            link_message!(debug);
        }
        self.observe(ev);
        let (outcome, reason) = match self.sync.on_link(ev) {
            LinkOutcome::Write(action) => {
                self.flight.staged(now);
                self.writer.push(action);
                (EventOutcome::Written, "")
            }
            LinkOutcome::Unchanged => (EventOutcome::Unchanged, ""),
            LinkOutcome::Dropped(r) => (EventOutcome::Filtered, r.label()),
        };
        self.stats
            .kernel_event(ev.msg_type.rtm_name(), outcome, reason);
    }

    /// Which netdevs exist ([`LinkTable::apply`](sonic_netlink::LinkTable::apply): RTM_NEWLINK adds or
    /// renames, RTM_DELLINK removes; AF_BRIDGE messages, a port joining or
    /// leaving a bridge, only change its master); a RTM_NEWLINK marks the
    /// name seen during a resync.
    fn observe(&mut self, ev: &LinkEvent) {
        self.links.apply(ev);
        if ev.msg_type == LinkMsgType::New {
            if let Phase::Resyncing { seen, .. } = &mut self.phase {
                seen.insert(ev.name.clone());
            }
        }
    }

    /// Events were lost (or the audit wants the kernel compared): dump the
    /// links again, mark and sweep. A dump in flight is followed by a fresh
    /// one; a dump not yet sent starts over with nothing marked.
    pub(super) fn resync(&mut self, why: ResyncCause) {
        match &mut self.phase {
            Phase::StartupDump(LinkDump::InFlight { again })
            | Phase::Resyncing {
                dump: LinkDump::InFlight { again },
                ..
            } => *again = Some(why),
            Phase::StartupDump(dump) | Phase::Resyncing { dump, .. } => {
                let dump = *dump;
                self.phase = Phase::Resyncing {
                    why,
                    dump,
                    seen: HashSet::new(),
                };
            }
            Phase::Live => {
                self.phase = Phase::Resyncing {
                    why,
                    dump: LinkDump::Wanted,
                    seen: HashSet::new(),
                }
            }
            Phase::ShuttingDown => {}
        }
    }

    /// `NLMSG_DONE` of the link dump: the start-up dump ends; a resync
    /// sweeps the links it did not see; either starts a fresh resync when
    /// one was asked for meanwhile.
    fn dump_done(&mut self, now: Instant) {
        let phase = std::mem::replace(&mut self.phase, Phase::Live);
        match phase {
            Phase::StartupDump(LinkDump::InFlight { again: Some(why) })
            | Phase::Resyncing {
                dump: LinkDump::InFlight { again: Some(why) },
                ..
            } => {
                // Every link the kernel had was listed (READY may go out);
                // the events lost meanwhile are for the fresh dump.
                self.dumped = true;
                self.phase = Phase::Resyncing {
                    why,
                    dump: LinkDump::Wanted,
                    seen: HashSet::new(),
                };
            }
            Phase::StartupDump(LinkDump::InFlight { again: None }) => self.dumped = true,
            Phase::Resyncing {
                dump: LinkDump::InFlight { again: None },
                seen,
                ..
            } => {
                self.dumped = true;
                self.sweep(now, &seen);
            }
            // No dump of ours in flight: not ours to end.
            other => self.phase = other,
        }
    }

    /// The netdevs known before a resync dump that neither the dump nor a
    /// notification listed are gone: each goes through the rules as a
    /// RTM_DELLINK.
    fn sweep(&mut self, now: Instant, seen: &HashSet<String>) {
        let mut gone: Vec<(String, u32)> = self
            .links
            .iter()
            .filter(|(_, e)| !seen.contains(&e.name))
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        gone.sort();
        for (name, ifindex) in gone {
            tracing::info!(ifname = %name, "link vanished while netlink events were lost");
            let ev = LinkEvent {
                msg_type: LinkMsgType::Del,
                family: 0,
                ifindex,
                name,
                flags: 0,
                mtu: None,
                master: None,
                kind: None,
            };
            self.apply_link(now, &ev);
        }
    }

    /// `NLMSG_ERROR` for the dump, or an interrupted dump: ask again (a
    /// resync starts over with nothing marked).
    fn dump_failed(&mut self, errno: i32) {
        tracing::warn!(errno, "link dump failed or was interrupted; dumping again");
        match &mut self.phase {
            Phase::StartupDump(LinkDump::InFlight { again: None }) => {
                self.phase = Phase::StartupDump(LinkDump::Wanted);
            }
            Phase::StartupDump(LinkDump::InFlight { again: Some(why) }) => {
                self.phase = Phase::Resyncing {
                    why: *why,
                    dump: LinkDump::Wanted,
                    seen: HashSet::new(),
                };
            }
            Phase::Resyncing {
                why,
                dump: dump @ LinkDump::InFlight { .. },
                seen,
            } => {
                if let LinkDump::InFlight { again: Some(again) } = *dump {
                    *why = again;
                }
                *dump = LinkDump::Wanted;
                seen.clear();
            }
            _ => {}
        }
    }

    /// The socket refused the dump request: ask again after
    /// [`DUMP_RETRY_DELAY`].
    pub(super) fn dump_request_failed(&mut self, now: Instant, error: &SocketError) {
        tracing::warn!(error = %error, retry_in_ms = DUMP_RETRY_DELAY.as_millis() as u64,
            "link dump request refused");
        if let Phase::StartupDump(d) | Phase::Resyncing { dump: d, .. } = &mut self.phase {
            if matches!(d, LinkDump::InFlight { .. }) {
                *d = LinkDump::Retry;
                self.timers.set(Timer::DumpRetry, now + DUMP_RETRY_DELAY);
            }
        }
    }
}
