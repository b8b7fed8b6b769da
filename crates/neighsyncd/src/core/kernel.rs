//! The kernel side of [`NeighCore`]: neighbour and link messages, dumps
//! and resyncs (docs/behavior.md b.2, b.3).

use std::time::Instant;

use sonic_daemon::engine::Step;
use sonic_daemon::metrics::{Outcome as EventOutcome, ResyncCause};
use sonic_netlink::link::{LinkChange, LinkTable};
use sonic_netlink::neigh::{NeighMsgType, AF_BRIDGE};
use sonic_netlink::socket::{Dump as DumpRequest, KernelMessage, Received};
use sonic_netlink::{LinkEvent, NeighborEvent};

use super::{DumpStage, KernelDump, NeighCore, Phase, Timer, Warm, AUDIT_GRACE};
use crate::sync::{
    decide, decide_failed, decide_parts, neigh_key, Decision, DropReason, NeighOp, Outcome,
};
use crate::warm::WarmCache;
use crate::writer::Origin;

// ===== impl NeighCore: kernel messages =====

impl NeighCore {
    pub(super) fn on_kernel(&mut self, msg: Received, now: Instant) {
        match msg {
            Ok(KernelMessage::Neigh(ev)) => self.on_neigh(&ev, now),
            Ok(KernelMessage::Link(ev)) => {
                let outcome = if self.on_link(&ev) {
                    EventOutcome::Written
                } else {
                    EventOutcome::Unchanged
                };
                self.stats.kernel_event(ev.msg_type.rtm_name(), outcome, "");
            }
            Ok(KernelMessage::DumpDone) => self.on_dump_done(now),
            Ok(KernelMessage::DumpFailed { errno }) => {
                tracing::warn!(errno, phase = ?self.phase, "netlink dump failed or interrupted; dumping again");
                if let Some(d) = self.dump_mut() {
                    d.again = true;
                }
                self.on_dump_done(now);
            }
            Ok(KernelMessage::Ignored(_)) => {}
            Err(e) => {
                tracing::warn!(error = %e, "malformed netlink message skipped");
                self.stats
                    .kernel_event(e.msg_kind(), EventOutcome::Malformed, "");
            }
        }
    }

    /// Whether decided ops go to the warm reconcile cache.
    fn caching(&self) -> bool {
        matches!(self.warm, Some(Warm::Caching { .. }))
    }

    /// The reconcile cache, while caching.
    pub(super) fn warm_cache(&mut self) -> Option<&mut WarmCache> {
        match self.warm.as_mut() {
            Some(Warm::Caching { cache, .. }) => Some(cache),
            _ => None,
        }
    }

    fn on_neigh(&mut self, ev: &NeighborEvent, now: Instant) {
        let ifname = self.links.name(ev.ifindex);
        // NEIGH_FAILED_TABLE first (b.2 step 9a), whatever the rules below
        // and the warm-start state decide.
        if let (Some(op), Some(name)) = (decide_failed(ev, ifname, &self.ctx), ifname) {
            let key = neigh_key(name, &ev.dst);
            let origin = if ev.dump {
                Origin::Dump
            } else {
                Origin::Notification
            };
            if self.failed.apply(&key, op, origin) {
                tracing::debug!(key = %key, op = ?op, "NEIGH_FAILED_TABLE");
                self.flight.staged(now);
            }
        }
        let master = if self.ctx.evpn_nvo_exists() {
            self.links.master_name(ev.ifindex)
        } else {
            None
        };
        let is_del = ev.msg_type == NeighMsgType::Del;
        let written = match (decide_parts(ev, ifname, master, &self.ctx), ifname) {
            (Decision::Drop(reason), _) => {
                // The C++ logs "Mac address is 'none' for ADD op" at NOTICE,
                // its other filters at INFO (DEBUG here: our INFO is NOTICE).
                if reason == DropReason::NoMac {
                    tracing::info!(ifindex = ev.ifindex, ifname = ifname.unwrap_or(""), ip = %ev.dst,
                        state = ev.state, reason = reason.as_str(), "neighbor dropped");
                } else {
                    tracing::debug!(ifindex = ev.ifindex, ifname = ifname.unwrap_or(""), ip = %ev.dst,
                        state = ev.state, reason = reason.as_str(), "neighbor dropped");
                }
                let msg_type = if is_del {
                    "RTM_DELNEIGH"
                } else {
                    "RTM_NEWNEIGH"
                };
                self.stats
                    .kernel_event(msg_type, EventOutcome::Filtered, reason.as_str());
                // A dump listing it must not sweep it (the warm cache keeps
                // the C++'s reconcile: such a key is deleted there too).
                if reason.keeps_entry() && !self.caching() {
                    if let Some(name) = ifname {
                        self.writer.keep_listed(name, &ev.dst);
                    }
                }
                return;
            }
            // The hot path: straight into the writer, no key text.
            (decision, Some(name)) if !self.caching() => {
                let (set, route_del) = match decision {
                    Decision::Set {
                        mac,
                        family,
                        route_del,
                    } => (
                        Some((mac, family)),
                        master.filter(|_| route_del).map(|m| neigh_key(m, &ev.dst)),
                    ),
                    _ => (None, None),
                };
                tracing::debug!(op = if set.is_some() { "SET" } else { "DEL" },
                    key = %format_args!("{name}:{}", sonic_netlink::fmt::ip_to_string(&ev.dst)),
                    mac = %set.map(|(m, _)| sonic_netlink::fmt::mac_to_string(&m)).unwrap_or_default(),
                    "neighbor");
                let origin = if ev.dump {
                    Origin::Dump
                } else {
                    Origin::Notification
                };
                self.writer
                    .stage_parts(name, &ev.dst, set, route_del, origin)
            }
            // Warm start: the reconcile cache takes text keys; the EVPN
            // route delete is dropped as the C++ does (b.2 step 17 stops
            // before step 18).
            _ => match decide(ev, ifname, master, &self.ctx) {
                Outcome::Write { op, route_del } => self.dispatch(op, route_del, ev.dump),
                Outcome::Drop(_) => return,
            },
        };
        if written {
            self.flight.staged(now);
        }
        self.neigh_events.count(&mut self.stats, is_del, written);
    }

    /// Where a decided op with a text key goes (b.2 steps 17-18): the warm
    /// cache while caching, else the writer. Returns whether something
    /// will be written because of it (while caching: always).
    fn dispatch(&mut self, op: NeighOp, route_del: Option<String>, dump: bool) -> bool {
        if let Some(cache) = self.warm_cache() {
            tracing::debug!(key = %op.key(), delete = matches!(op, NeighOp::Del { .. }),
                "warm start: operation cached");
            if dump {
                cache.insert_listed(op);
            } else {
                cache.insert(op);
            }
            return true;
        }
        self.writer.stage_write(op, route_del)
    }

    /// Returns whether neighbours were deleted because of it.
    fn on_link(&mut self, ev: &LinkEvent) -> bool {
        if let Some(fresh) = self.fresh_links.as_mut() {
            fresh.apply(ev);
        }
        match self.links.apply(ev) {
            LinkChange::Removed { name } if ev.family != AF_BRIDGE => {
                let n = self.remove_interface(&name);
                tracing::info!(ifname = %name, neighbors = n, "interface deleted; its neighbors are deleted");
                n > 0
            }
            LinkChange::Renamed { old, new } => {
                let n = self.remove_interface(&old);
                tracing::info!(old = %old, new = %new, neighbors = n, "interface renamed; resyncing");
                self.request_resync();
                n > 0
            }
            _ => false,
        }
    }

    /// DEL every key of interface `name`: in the warm cache while caching,
    /// else in the writer.
    fn remove_interface(&mut self, name: &str) -> usize {
        self.failed.remove_interface(name);
        match self.warm_cache() {
            Some(cache) => cache.remove_interface(name),
            None => self.writer.remove_interface(name),
        }
    }

    pub(super) fn on_overrun(&mut self, _now: Instant) {
        self.overruns += 1;
        self.stats.netlink_overruns += 1;
        self.stats.resync(ResyncCause::NetlinkOverrun);
        tracing::warn!(
            overruns = self.overruns,
            "netlink overrun (ENOBUFS): neighbor events lost; dumping the kernel again"
        );
        self.request_resync();
    }
}

// ===== impl NeighCore: dumps =====

impl NeighCore {
    /// Dump the kernel again: now, after the dump in flight, or once the
    /// phase allows it.
    pub(super) fn request_resync(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.phase = match self.phase {
            Phase::ColdSync(d) => Phase::ColdSync(again(d)),
            Phase::WarmCaching(d) => Phase::WarmCaching(again(d)),
            Phase::Resyncing(d) => Phase::Resyncing(again(d)),
            Phase::AuditDump { dump, appl_drift } => Phase::AuditDump {
                dump: again(dump),
                appl_drift,
            },
            Phase::Live => Phase::Resyncing(KernelDump::links()),
            Phase::RestoreWait => Phase::WarmCaching(KernelDump::links()),
            Phase::AuditGrace { appl_drift } => {
                self.timers.stop(Timer::AuditGrace);
                Phase::AuditDump {
                    dump: KernelDump::links(),
                    appl_drift,
                }
            }
            Phase::Reconciling { .. } => Phase::Reconciling {
                resync_wanted: true,
            },
            Phase::AuditRead { .. } => Phase::AuditRead {
                resync_wanted: true,
            },
        };
        if self
            .dump_mut()
            .is_some_and(|d| d.stage == DumpStage::Links && !d.again)
        {
            self.start_dump();
        }
    }

    /// Sends the link dump request of the current phase's dump.
    pub(super) fn start_dump(&mut self) {
        if let Some(d) = self.dump_mut() {
            *d = KernelDump::links();
        }
        self.fresh_links = Some(LinkTable::new());
        self.steps.push_back(Step::Dump(DumpRequest::Links));
    }

    /// Enter `phase`; entering [`Phase::Live`] from a phase where a resync
    /// was asked for meanwhile starts it at once.
    pub(super) fn enter(&mut self, phase: Phase) {
        let wanted = matches!(
            self.phase,
            Phase::Reconciling {
                resync_wanted: true
            } | Phase::AuditRead {
                resync_wanted: true
            }
        );
        self.phase = phase;
        if phase == Phase::Live && wanted {
            self.request_resync();
        }
    }

    fn on_dump_done(&mut self, now: Instant) {
        let Some(d) = self.dump_mut().copied() else {
            return;
        };
        if d.again {
            self.start_dump();
            return;
        }
        match d.stage {
            DumpStage::Links => self.links_dumped(),
            DumpStage::Neighbors => self.neighbors_dumped(now),
            DumpStage::Retry => {}
        }
    }

    /// The link table is complete: the neighbour dump follows, its entries
    /// marked as listed (mark and sweep).
    fn links_dumped(&mut self) {
        if let Some(fresh) = self.fresh_links.take() {
            self.links = fresh;
        }
        self.steps.push_back(Step::Dump(DumpRequest::Neighbors));
        if let Some(d) = self.dump_mut() {
            d.stage = DumpStage::Neighbors;
        }
        self.failed.begin_snapshot();
        match self.warm_cache() {
            Some(cache) => cache.begin_snapshot(),
            None => {
                self.writer.begin_snapshot();
                if matches!(self.phase, Phase::AuditDump { .. }) {
                    self.writer.track_suspects();
                }
            }
        }
    }

    /// The neighbour dump is complete: sweep, then the phase's next step.
    fn neighbors_dumped(&mut self, now: Instant) {
        let f = self.failed.end_snapshot();
        if f.added + f.removed > 0 {
            tracing::info!(
                published = f.added,
                deleted = f.removed,
                total = self.failed.len(),
                "kernel dump: NEIGH_FAILED_TABLE updated"
            );
        }
        if let Some(cache) = self.warm_cache() {
            let gone = cache.end_snapshot();
            tracing::info!(
                absent = gone,
                kernel = cache.present(),
                restored = cache.restored(),
                "warm start: kernel dump cached"
            );
            self.phase = Phase::RestoreWait;
            self.try_reconcile();
            return;
        }
        let c = self.writer.end_snapshot();
        match self.phase {
            Phase::ColdSync(_) => {
                tracing::info!(
                    kernel = self.writer.desired_len(),
                    added = c.added,
                    rewritten = c.changed,
                    deleted = c.removed,
                    links = self.links.len(),
                    "cold start: kernel dump done"
                );
                self.request_ready();
                self.enter(Phase::Live);
            }
            Phase::AuditDump { appl_drift, .. } => {
                // Counted once late notifications had their chance.
                self.phase = Phase::AuditGrace { appl_drift };
                self.timers.set(Timer::AuditGrace, now + AUDIT_GRACE);
            }
            _ => {
                tracing::warn!(
                    added = c.added,
                    changed = c.changed,
                    removed = c.removed,
                    overruns = self.overruns,
                    "resynced with the kernel"
                );
                self.enter(Phase::Live);
            }
        }
    }

    /// The end of a self-audit: the drift (APPL_DB's plus the kernel
    /// changes no notification followed) is exported; a drift counts as a
    /// resync with cause `audit`.
    pub(super) fn audit_finished(&mut self, appl_drift: usize) {
        let kernel_drift = self.writer.take_suspects();
        let drift = appl_drift + kernel_drift;
        self.stats.audit_done(drift);
        if drift > 0 {
            self.stats.resync(ResyncCause::Audit);
            tracing::warn!(
                drift,
                appl = appl_drift,
                kernel = kernel_drift,
                "audit: drift repaired"
            );
        } else {
            tracing::debug!("audit: APPL_DB NEIGH_TABLE matches the kernel");
        }
        self.enter(Phase::Live);
    }
}

fn again(d: KernelDump) -> KernelDump {
    KernelDump { again: true, ..d }
}
