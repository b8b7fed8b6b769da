//! The core driven like a protocol: scripted inputs on the shared
//! simulated clock ([`sonic_daemon::sim::Sim`]), asserting the steps it
//! asks for. No root, no Redis, no kernel.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sonic_daemon::engine::{Core, Step};
use sonic_daemon::sim::Sim;
use sonic_netlink::neigh::{nud, NeighMsgType};
use sonic_netlink::socket::{Dump as DumpRequest, KernelMessage, Received};
use sonic_netlink::{LinkEvent, LinkMsgType, NeighborEvent};
use swss::{ConsumerView, KeyOp, SwssError};

use super::*;
use crate::context::{ConfigTable, SyncContext};
use crate::warm::WarmCache;

// ===== the harness =====

/// A core on the shared simulated clock ([`sonic_daemon::sim::Sim`]:
/// deadlines fire at their own instant, no-spin and termination checked),
/// with neighsyncd's helpers ([`NeighSim`]).
type Harness = Sim<NeighCore>;

fn setup(audit_every: Option<Duration>) -> Setup {
    Setup {
        ctx: SyncContext::new(),
        audit_every,
        failed: Vec::new(),
    }
}

/// neighsyncd's helpers on [`Harness`].
trait NeighSim {
    fn cold() -> Self;
    fn cold_with(view: ConsumerView, audit_every: Option<Duration>) -> Self;
    fn warm(flag_set: bool, cache: WarmCache) -> Self;
    /// One read of `msgs` (no overrun).
    fn kernel(&mut self, msgs: Vec<Received>);
    /// Acknowledges every flush (Ok) until none is asked for; returns the
    /// keys written (DELs as `-key`) and the other steps.
    fn pump(&mut self) -> (Vec<String>, Vec<Step<Action>>);
    /// Runs the cold start-up dump with `neighbors` on Ethernet0 and
    /// acknowledges every flush; returns the keys written and the other
    /// steps after the dump.
    fn cold_sync(&mut self, neighbors: &[&str]) -> (Vec<String>, Vec<Step<Action>>);
}

impl NeighSim for Harness {
    fn cold() -> Harness {
        Harness::cold_with(ConsumerView::new(), None)
    }

    fn cold_with(view: ConsumerView, audit_every: Option<Duration>) -> Harness {
        let start = Instant::now();
        let core = NeighCore::cold(setup(audit_every), &view, start);
        Harness::from_core(core, start)
    }

    fn warm(flag_set: bool, cache: WarmCache) -> Harness {
        let start = Instant::now();
        let core = NeighCore::warm(
            setup(None),
            cache,
            flag_set,
            Duration::from_secs(5),
            Duration::from_secs(180),
            start,
        );
        Harness::from_core(core, start)
    }

    fn kernel(&mut self, msgs: Vec<Received>) {
        self.handle_kernel(msgs, false);
    }

    fn pump(&mut self) -> (Vec<String>, Vec<Step<Action>>) {
        let mut written = Vec::new();
        let mut others = Vec::new();
        loop {
            let mut flushed = false;
            for s in self.steps() {
                match s {
                    Step::Do(Action::Flush { epoch, batch }) => {
                        written.extend(batch.neigh_dels.iter().map(|k| format!("-{k}")));
                        written.extend(batch.neigh_sets.iter().map(|(k, _)| k.clone()));
                        self.input(Input::Flushed {
                            epoch,
                            batch,
                            result: Ok(()),
                        });
                        flushed = true;
                    }
                    other => others.push(other),
                }
            }
            if !flushed {
                return (written, others);
            }
        }
    }

    fn cold_sync(&mut self, neighbors: &[&str]) -> (Vec<String>, Vec<Step<Action>>) {
        assert!(matches!(
            self.steps().as_slice(),
            [Step::Dump(DumpRequest::Links)]
        ));
        self.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
        assert!(matches!(
            self.steps().as_slice(),
            [Step::Dump(DumpRequest::Neighbors)]
        ));
        let mut msgs: Vec<Received> = neighbors.iter().map(|ip| neigh(2, ip, 1, true)).collect();
        msgs.push(Ok(KernelMessage::DumpDone));
        self.kernel(msgs);
        self.pump()
    }
}

fn link(name: &str, ifindex: u32) -> Received {
    Ok(KernelMessage::Link(LinkEvent {
        msg_type: LinkMsgType::New,
        family: 0,
        ifindex,
        name: name.to_string(),
        flags: 0,
        mtu: Some(1500),
        master: None,
        kind: None,
    }))
}

fn neigh(ifindex: u32, ip: &str, mac: u8, dump: bool) -> Received {
    let dst: IpAddr = ip.parse().expect("test address");
    Ok(KernelMessage::Neigh(NeighborEvent {
        msg_type: NeighMsgType::New,
        ifindex,
        dst,
        lladdr: Some([2, 0, 0, 0, 0, mac]),
        state: nud::REACHABLE,
        flags: 0,
        dump,
    }))
}

fn flushes(steps: &[Step<Action>]) -> usize {
    steps
        .iter()
        .filter(|s| matches!(s, Step::Do(Action::Flush { .. })))
        .count()
}

fn take_flush(steps: Vec<Step<Action>>) -> (Epoch, crate::writer::Batch) {
    steps
        .into_iter()
        .find_map(|s| match s {
            Step::Do(Action::Flush { epoch, batch }) => Some((epoch, batch)),
            _ => None,
        })
        .expect("a flush")
}

fn lost() -> SwssError {
    SwssError::NotConnected
}

// ===== cold start and live events =====

#[test]
fn cold_start_dumps_links_then_neighbors_writes_them_then_ready() {
    let mut h = Harness::cold();
    let (written, steps) = h.cold_sync(&["10.0.0.1", "10.0.0.2"]);
    assert_eq!(written, ["Ethernet0:10.0.0.1", "Ethernet0:10.0.0.2"]);
    assert_eq!(h.core.phase(), Phase::Live);
    assert!(steps.iter().any(|s| matches!(s, Step::Ready(_))));
    assert!(steps
        .iter()
        .any(|s| matches!(s, Step::Do(Action::ReleaseMemory))));
    // READY is sent once.
    h.kernel(vec![neigh(2, "10.0.0.3", 1, false)]);
    let (written, steps) = h.pump();
    assert_eq!(written, ["Ethernet0:10.0.0.3"]);
    assert!(!steps.iter().any(|s| matches!(s, Step::Ready(_))));
}

#[test]
fn isolated_event_is_flushed_at_once_and_live_events_wait_for_the_flight() {
    let mut h = Harness::cold();
    h.cold_sync(&[]);
    h.steps();
    h.at(100).kernel(vec![neigh(2, "10.0.0.9", 7, false)]);
    let (epoch, batch) = take_flush(h.steps());
    assert_eq!(batch.neigh_sets[0].0, "Ethernet0:10.0.0.9");
    // In flight: live events wait in the socket buffer...
    assert!(!h.core.reads_kernel(h.now));
    assert_eq!(
        h.core.poll_timeout(),
        Some(h.now + FLUSH_READ_PAUSE),
        "a slow flush stops holding reads back"
    );
    // ... until the flush is acknowledged.
    h.at(101).input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    assert!(h.core.reads_kernel(h.now));
    assert_eq!(flushes(&h.steps()), 0, "nothing left to write");
}

#[test]
fn a_slow_flush_stops_holding_reads_after_the_pause() {
    let mut h = Harness::cold();
    h.cold_sync(&[]);
    h.steps();
    h.at(100).kernel(vec![neigh(2, "10.0.0.9", 7, false)]);
    let _flight = take_flush(h.steps());
    h.at(100 + 19);
    assert!(!h.core.reads_kernel(h.now));
    h.at(100 + 20);
    assert!(h.core.reads_kernel(h.now));
    assert_eq!(h.core.poll_timeout(), None, "no timer left to spin on");
}

#[test]
fn a_slow_flush_during_the_neighbor_dump_keeps_the_backlog_bound() {
    let mut h = Harness::cold();
    h.steps();
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.steps();
    let dump = |from: usize, n: usize| -> Vec<Received> {
        (from..from + n)
            .map(|i| neigh(2, &format!("10.1.{}.{}", i / 256, i % 256), 1, true))
            .collect()
    };
    h.at(10).kernel(dump(0, FLUSH_MAX_KEYS));
    let (epoch, batch) = take_flush(h.steps());
    h.kernel(dump(FLUSH_MAX_KEYS, DUMP_BACKLOG_KEYS));
    assert!(
        !h.core.reads_kernel(h.now),
        "backlog reached: the dump waits"
    );
    // A flush slower than the pause still holds the dump back: reading on
    // would pile the rest of the table up pending.
    h.at(10 + 5 * FLUSH_READ_PAUSE.as_millis() as u64);
    assert!(!h.core.reads_kernel(h.now));
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    let _flight = take_flush(h.steps());
    assert!(h.core.reads_kernel(h.now), "below the backlog: read on");
}

#[test]
fn a_storm_spaces_reads_and_a_calm_read_resets_the_spacing() {
    let mut h = Harness::cold();
    h.cold_sync(&[]);
    h.steps();
    h.at(100).kernel(vec![
        neigh(2, "10.0.1.1", 1, false),
        neigh(2, "10.0.1.2", 1, false),
    ]);
    let (epoch, batch) = take_flush(h.steps());
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    assert!(!h.core.reads_kernel(h.now), "storm: the next read waits");
    h.at(101);
    assert!(h.core.reads_kernel(h.now));
    h.kernel(vec![neigh(2, "10.0.1.3", 1, false)]);
    assert!(h.core.poll_timeout().is_none_or(|t| t > h.now));
    let (epoch, batch) = take_flush(h.steps());
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    assert!(h.core.reads_kernel(h.now), "one message: no spacing");
}

// ===== faults =====

#[test]
fn overrun_mid_dump_dumps_again_and_sweeps_what_the_kernel_lost() {
    let mut view = ConsumerView::new();
    view.insert(
        "Ethernet0:10.9.9.9",
        vec![
            ("neigh".into(), "02:00:00:00:00:09".into()),
            ("family".into(), "IPv4".into()),
        ],
    );
    let mut h = Harness::cold_with(view, None);
    h.steps();
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.steps();
    let mut msgs = vec![neigh(2, "10.0.0.1", 1, true)];
    h.core.handle_kernel(h.now, &mut msgs, true);
    // The dump in flight ends first; then the dump starts again.
    h.kernel(vec![Ok(KernelMessage::DumpDone)]);
    let (first, steps) = h.pump();
    assert_eq!(first, ["Ethernet0:10.0.0.1"], "written meanwhile");
    assert!(steps
        .iter()
        .any(|s| matches!(s, Step::Dump(DumpRequest::Links))));
    assert!(matches!(h.core.phase(), Phase::ColdSync(_)));
    // Second dump: only 10.0.0.1 exists; APPL_DB's stale key goes, and
    // 10.0.0.1 is not written twice.
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.kernel(vec![
        neigh(2, "10.0.0.1", 1, true),
        Ok(KernelMessage::DumpDone),
    ]);
    let (second, _) = h.pump();
    assert_eq!(second, ["-Ethernet0:10.9.9.9"]);
    assert_eq!(h.core.phase(), Phase::Live);
}

#[test]
fn redis_lost_during_a_flush_reconnects_and_writes_the_difference() {
    let mut h = Harness::cold();
    h.cold_sync(&["10.0.0.1"]);
    h.steps();
    h.kernel(vec![neigh(2, "10.0.0.2", 2, false)]);
    let (epoch, batch) = take_flush(h.steps());
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Err(lost()),
    });
    assert_eq!(h.core.redis(), Redis::Reconnecting);
    let steps = h.steps();
    let new_epoch = steps
        .iter()
        .find_map(|s| match s {
            Step::Do(Action::Reconnect { epoch }) => Some(*epoch),
            _ => None,
        })
        .expect("a reconnect");
    assert_ne!(new_epoch, epoch);
    assert_eq!(flushes(&steps), 0, "no write while Redis is away");
    // Events keep being staged meanwhile.
    h.kernel(vec![neigh(2, "10.0.0.3", 3, false)]);
    assert_eq!(flushes(&h.steps()), 0);
    // APPL_DB kept 10.0.0.1 only: the other two are written.
    let mut view = ConsumerView::new();
    view.insert(
        "Ethernet0:10.0.0.1",
        vec![
            ("neigh".into(), "02:00:00:00:00:01".into()),
            ("family".into(), "IPv4".into()),
        ],
    );
    h.input(Input::Reconnected {
        epoch: new_epoch,
        config: Vec::new(),
        view,
        failed: Vec::new(),
    });
    let (_, batch) = take_flush(h.steps());
    let mut keys: Vec<_> = batch.neigh_sets.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["Ethernet0:10.0.0.2", "Ethernet0:10.0.0.3"]);
}

#[test]
fn an_error_reply_retries_after_a_delay_without_spinning() {
    let mut h = Harness::cold();
    h.cold_sync(&[]);
    h.steps();
    h.at(10).kernel(vec![neigh(2, "10.0.0.5", 5, false)]);
    let (epoch, batch) = take_flush(h.steps());
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Err(SwssError::InvalidArgument("ERR test".into())),
    });
    assert_eq!(h.core.redis(), Redis::Up);
    assert_eq!(flushes(&h.steps()), 0);
    assert_eq!(h.core.poll_timeout(), Some(h.now + FLUSH_ERROR_RETRY));
    h.at(10 + 99);
    assert_eq!(flushes(&h.steps()), 0);
    h.at(10 + 100);
    let (epoch, batch) = take_flush(h.steps());
    assert_eq!(batch.neigh_sets[0].0, "Ethernet0:10.0.0.5");
    // Still an error: the delay doubles (the one schedule of both daemons).
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Err(SwssError::InvalidArgument("ERR test".into())),
    });
    assert_eq!(
        h.core.poll_timeout(),
        Some(h.now + Duration::from_millis(200))
    );
    h.at(10 + 100 + 200);
    let (epoch, batch) = take_flush(h.steps());
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    // A success resets it.
    h.kernel(vec![neigh(2, "10.0.0.6", 6, false)]);
    let (epoch, batch) = take_flush(h.steps());
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Err(SwssError::InvalidArgument("ERR test".into())),
    });
    assert_eq!(h.core.poll_timeout(), Some(h.now + FLUSH_ERROR_RETRY));
}

#[test]
fn a_refused_dump_request_is_retried_after_a_second() {
    let mut h = Harness::cold();
    h.steps();
    let err = sonic_netlink::socket::SocketError::Io {
        op: "send dump request",
        source: std::io::Error::from_raw_os_error(nix::libc::ENOBUFS),
    };
    h.core.handle_dump_request_failed(h.now, err);
    assert_eq!(h.core.poll_timeout(), Some(h.now + DUMP_RETRY));
    h.at(500);
    assert!(h.steps().is_empty());
    h.at(1000);
    assert!(matches!(
        h.steps().as_slice(),
        [Step::Dump(DumpRequest::Links)]
    ));
}

#[test]
fn a_config_change_during_a_resync_dumps_once_more() {
    let mut h = Harness::cold();
    h.cold_sync(&[]);
    h.steps();
    h.core.handle_kernel(h.now, &mut Vec::new(), true);
    assert!(matches!(h.core.phase(), Phase::Resyncing(_)));
    h.steps();
    let nvo = swss::KeyOp::Set("nvo".into(), vec![("source_vtep".into(), "vtep1".into())]);
    h.input(Input::Config {
        epoch: 0,
        change: Ok((ConfigTable::VxlanEvpnNvo, nvo)),
    });
    assert!(h.core.context().evpn_nvo_exists());
    h.kernel(vec![Ok(KernelMessage::DumpDone)]);
    assert!(matches!(
        h.steps().as_slice(),
        [Step::Dump(DumpRequest::Links)]
    ));
    h.kernel(vec![Ok(KernelMessage::DumpDone)]);
    h.steps();
    h.kernel(vec![Ok(KernelMessage::DumpDone)]);
    assert_eq!(h.core.phase(), Phase::Live);
}

#[test]
fn config_changes_of_a_replaced_subscription_are_ignored() {
    let mut h = Harness::cold();
    h.cold_sync(&[]);
    h.core.redis_lost(&"test");
    let nvo = swss::KeyOp::Set("nvo".into(), vec![("source_vtep".into(), "v".into())]);
    h.input(Input::Config {
        epoch: 0,
        change: Ok((ConfigTable::VxlanEvpnNvo, nvo)),
    });
    assert!(!h.core.context().evpn_nvo_exists());
}

#[test]
fn sigterm_writes_what_is_pending_then_stops() {
    let mut h = Harness::cold();
    h.cold_sync(&[]);
    h.steps();
    h.kernel(vec![neigh(2, "10.0.0.1", 1, false)]);
    let (epoch, batch) = take_flush(h.steps());
    h.kernel(vec![neigh(2, "10.0.0.2", 2, false)]);
    h.core.begin_shutdown(h.now);
    assert!(!h.core.reads_kernel(h.now));
    assert!(!h.core.is_stopped(), "a flush is in flight");
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    assert!(!h.core.is_stopped(), "10.0.0.2 is pending");
    let (epoch, batch) = take_flush(h.steps());
    assert_eq!(batch.neigh_sets[0].0, "Ethernet0:10.0.0.2");
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    assert!(h.core.is_stopped());
}

#[test]
fn sigterm_with_redis_away_stops_at_once() {
    let mut h = Harness::cold();
    h.cold_sync(&[]);
    h.kernel(vec![neigh(2, "10.0.0.1", 1, false)]);
    h.core.redis_lost(&"test");
    h.steps();
    h.core.begin_shutdown(h.now);
    assert!(h.core.is_stopped());
    assert!(h.core.writer().has_pending());
}

// ===== warm start =====

fn restored_cache(keys: &[(&str, u8)]) -> WarmCache {
    let mut c = WarmCache::new();
    for (k, m) in keys {
        c.restore(
            k,
            vec![
                ("neigh".into(), format!("02:00:00:00:00:{m:02x}")),
                ("family".into(), "IPv4".into()),
            ],
        );
    }
    c
}

#[test]
fn warm_start_caches_waits_for_flag_and_timer_then_reconciles() {
    let cache = restored_cache(&[("Ethernet0:10.0.0.1", 1), ("Ethernet0:10.0.0.2", 2)]);
    let mut h = Harness::warm(false, cache);
    let steps = h.steps();
    assert!(steps
        .iter()
        .any(|s| matches!(s, Step::Do(Action::WatchRestoreFlag))));
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.steps();
    // 10.0.0.1 same, 10.0.0.2 gone, 10.0.0.3 new.
    h.kernel(vec![
        neigh(2, "10.0.0.1", 1, true),
        neigh(2, "10.0.0.3", 3, true),
        Ok(KernelMessage::DumpDone),
    ]);
    assert_eq!(h.core.phase(), Phase::RestoreWait);
    assert_eq!(flushes(&h.steps()), 0, "nothing written in the warm window");
    h.at(2000).input(Input::RestoreFlagSet);
    h.at(6999);
    assert_eq!(h.core.phase(), Phase::RestoreWait);
    h.at(7000);
    assert!(matches!(h.core.phase(), Phase::Reconciling { .. }));
    let ops = h
        .steps()
        .into_iter()
        .find_map(|s| match s {
            Step::Do(Action::WriteReconcile(ops)) => Some(ops),
            _ => None,
        })
        .expect("the reconcile write");
    assert_eq!(ops.dels, ["Ethernet0:10.0.0.2"]);
    assert_eq!(ops.sets.len(), 1);
    assert_eq!(ops.sets[0].0, "Ethernet0:10.0.0.3");
    // Later events go to the writer but wait for the reconcile write.
    h.kernel(vec![neigh(2, "10.0.0.4", 4, false)]);
    assert_eq!(flushes(&h.steps()), 0);
    h.input(Input::ReconcileWritten(Ok(())));
    assert_eq!(h.core.phase(), Phase::Live);
    let steps = h.steps();
    let (epoch, batch) = take_flush(steps);
    assert_eq!(batch.neigh_sets.len(), 1, "only the later event");
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    assert!(h.steps().iter().any(|s| matches!(s, Step::Ready(_))));
}

#[test]
fn warm_start_without_the_restore_flag_gives_up_at_the_limit() {
    let mut h = Harness::warm(false, WarmCache::new());
    h.steps();
    h.at(179_999);
    assert!(h.core.take_error().is_none());
    h.at(180_000);
    assert!(matches!(
        h.core.take_error(),
        Some(DaemonError::RestoreTimeout(d)) if d == Duration::from_secs(180)
    ));
}

#[test]
fn an_overrun_while_waiting_for_the_timer_dumps_into_the_cache_again() {
    let mut h = Harness::warm(true, restored_cache(&[("Ethernet0:10.0.0.1", 1)]));
    h.steps();
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.kernel(vec![Ok(KernelMessage::DumpDone)]);
    assert_eq!(h.core.phase(), Phase::RestoreWait);
    h.steps();
    h.core.handle_kernel(h.now, &mut Vec::new(), true);
    assert!(matches!(h.core.phase(), Phase::WarmCaching(_)));
    // The timer fires mid-dump: the reconcile waits for the dump's end.
    h.at(5000);
    assert!(matches!(h.core.phase(), Phase::WarmCaching(_)));
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.kernel(vec![
        neigh(2, "10.0.0.1", 1, true),
        Ok(KernelMessage::DumpDone),
    ]);
    assert!(matches!(h.core.phase(), Phase::Reconciling { .. }));
}

// ===== self-audit =====

#[test]
fn audit_reads_appl_db_repairs_drift_and_checks_the_kernel() {
    let mut h = Harness::cold_with(ConsumerView::new(), Some(Duration::from_secs(60)));
    h.cold_sync(&["10.0.0.1"]);
    h.steps();
    h.at(60_000);
    let steps = h.steps();
    let epoch = steps
        .iter()
        .find_map(|s| match s {
            Step::Do(Action::ReadAuditView { epoch }) => Some(*epoch),
            _ => None,
        })
        .expect("the audit read");
    assert!(matches!(h.core.phase(), Phase::AuditRead { .. }));
    // Flushes wait during the read.
    h.kernel(vec![neigh(2, "10.0.0.2", 2, false)]);
    assert_eq!(flushes(&h.steps()), 0);
    // Someone deleted 10.0.0.1 from APPL_DB.
    h.input(Input::AuditView {
        epoch,
        result: Ok(ConsumerView::new()),
    });
    assert!(matches!(
        h.core.phase(),
        Phase::AuditDump { appl_drift: 1, .. }
    ));
    let steps = h.steps();
    assert!(steps
        .iter()
        .any(|s| matches!(s, Step::Dump(DumpRequest::Links))));
    let (epoch, batch) = take_flush(steps);
    let mut keys: Vec<_> = batch.neigh_sets.iter().map(|(k, _)| k.clone()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["Ethernet0:10.0.0.1", "Ethernet0:10.0.0.2"]);
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.kernel(vec![
        neigh(2, "10.0.0.1", 1, true),
        neigh(2, "10.0.0.2", 2, true),
        Ok(KernelMessage::DumpDone),
    ]);
    assert!(matches!(h.core.phase(), Phase::AuditGrace { .. }));
    h.at(60_000 + 500);
    assert_eq!(h.core.phase(), Phase::Live);
    assert_eq!(h.core.stats().audit_drift, Some(1));
    assert_eq!(h.core.stats().audit_runs, 1);
}

// ===== found in review =====

#[test]
fn enobufs_with_the_last_cold_dump_reply_holds_ready_until_the_redump() {
    let mut h = Harness::cold();
    h.steps();
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.steps();
    // The end of the cold neighbour dump and ENOBUFS in the same read.
    let mut msgs = vec![neigh(2, "10.0.0.1", 1, true), Ok(KernelMessage::DumpDone)];
    h.core.handle_kernel(h.now, &mut msgs, true);
    let (_, steps) = h.pump();
    assert!(
        matches!(h.core.phase(), Phase::ColdSync(_)),
        "{:?}",
        h.core.phase()
    );
    assert!(
        !steps.iter().any(|s| matches!(s, Step::Ready(_))),
        "READY=1 while the dump that replaces the overrun one runs: {steps:?}"
    );
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.kernel(vec![
        neigh(2, "10.0.0.1", 1, true),
        Ok(KernelMessage::DumpDone),
    ]);
    let (_, steps) = h.pump();
    assert!(steps.iter().any(|s| matches!(s, Step::Ready(_))));
}

/// Warm start up to the reconcile write in flight, with 10.0.0.1 restored
/// and still in the kernel.
fn warm_until_reconciling() -> Harness {
    let mut h = Harness::warm(true, restored_cache(&[("Ethernet0:10.0.0.1", 1)]));
    h.steps();
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.steps();
    h.kernel(vec![
        neigh(2, "10.0.0.1", 1, true),
        Ok(KernelMessage::DumpDone),
    ]);
    h.at(5000);
    assert!(matches!(h.core.phase(), Phase::Reconciling { .. }));
    h.steps();
    h
}

#[test]
fn a_reconcile_error_reply_resyncs_from_appl_db_then_sends_ready() {
    let mut h = warm_until_reconciling();
    h.input(Input::ReconcileWritten(Err(SwssError::InvalidArgument(
        "OOM command not allowed".into(),
    ))));
    let epoch = h
        .steps()
        .into_iter()
        .find_map(|s| match s {
            Step::Do(Action::Reconnect { epoch }) => Some(epoch),
            _ => None,
        })
        .expect("a reconnect");
    h.input(Input::Reconnected {
        epoch,
        config: Vec::new(),
        view: ConsumerView::new(),
        failed: Vec::new(),
    });
    let (written, steps) = h.pump();
    assert_eq!(written, ["Ethernet0:10.0.0.1"]);
    assert!(
        steps.iter().any(|s| matches!(s, Step::Ready(_))),
        "APPL_DB is in sync again: READY=1 ({steps:?})"
    );
}

#[test]
fn sigterm_during_the_reconcile_write_waits_for_it_then_flushes_what_followed() {
    let mut h = warm_until_reconciling();
    h.kernel(vec![neigh(2, "10.0.0.2", 2, false)]);
    h.core.begin_shutdown(h.now);
    assert!(!h.core.is_stopped(), "the reconcile write is in flight");
    assert_eq!(flushes(&h.steps()), 0, "nothing overtakes the reconcile");
    h.input(Input::ReconcileWritten(Ok(())));
    assert!(!h.core.is_stopped(), "10.0.0.2 is pending");
    let (written, _) = h.pump();
    assert_eq!(written, ["Ethernet0:10.0.0.2"]);
    assert!(h.core.is_stopped());
}

#[test]
fn sigterm_while_caching_stops_at_once() {
    let mut h = Harness::warm(false, restored_cache(&[("Ethernet0:10.0.0.1", 1)]));
    h.steps();
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.core.begin_shutdown(h.now);
    assert!(
        h.core.is_stopped(),
        "a warm window writes nothing before its reconcile"
    );
}

// ===== NEIGH_FAILED_TABLE =====

fn failed6(ifindex: u32, ip: &str, dump: bool) -> Received {
    Ok(KernelMessage::Neigh(NeighborEvent {
        msg_type: NeighMsgType::New,
        ifindex,
        dst: ip.parse().expect("test address"),
        lladdr: None,
        state: nud::FAILED,
        flags: 0,
        dump,
    }))
}

fn dual_tor_setup(published: &[&str]) -> Setup {
    let mut s = setup(None);
    let peer = vec![("address_ipv4".to_owned(), "10.1.0.33".to_owned())];
    s.ctx
        .apply(ConfigTable::PeerSwitch, "peer_tor", Some(&peer));
    s.failed = published.iter().map(|k| (*k).to_owned()).collect();
    s
}

#[test]
fn failed_table_is_written_in_the_warm_window_while_neigh_table_waits() {
    let start = Instant::now();
    let core = NeighCore::warm(
        dual_tor_setup(&["Ethernet0:fc00::7"]),
        restored_cache(&[("Ethernet0:10.0.0.1", 1)]),
        false,
        Duration::from_secs(5),
        Duration::from_secs(180),
        start,
    );
    let mut h = Harness::from_core(core, start);
    h.steps();
    h.kernel(vec![link("Ethernet0", 2), Ok(KernelMessage::DumpDone)]);
    h.steps();
    // The dump: fc00::9 failed; fc00::7 (published before the restart)
    // is gone.
    h.kernel(vec![
        neigh(2, "10.0.0.1", 1, true),
        failed6(2, "fc00::9", true),
        Ok(KernelMessage::DumpDone),
    ]);
    assert_eq!(h.core.phase(), Phase::RestoreWait);
    let (epoch, batch) = take_flush(h.steps());
    assert!(batch.neigh_sets.is_empty() && batch.neigh_dels.is_empty());
    assert_eq!(batch.failed_dels, ["Ethernet0:fc00::7"]);
    let sets: Vec<_> = batch
        .failed_sets
        .iter()
        .map(|(k, f)| (k.as_str(), f.clone()))
        .collect();
    assert_eq!(
        sets,
        [(
            "Ethernet0:fc00::9",
            vec![("NULL".to_owned(), "NULL".to_owned())]
        )]
    );
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    // A later failure in the warm window goes out at once too; the
    // NEIGH_TABLE zero-MAC op it also makes stays in the reconcile cache.
    h.at(1000).kernel(vec![failed6(2, "fc00::a", false)]);
    let (_, batch) = take_flush(h.steps());
    assert_eq!(batch.failed_sets.len(), 1);
    assert!(batch.neigh_sets.is_empty());
    assert_eq!(
        h.core.failed().keys(),
        ["Ethernet0:fc00::9", "Ethernet0:fc00::a"]
    );
}

#[test]
fn a_failed_flush_of_failed_table_ops_is_retried_after_the_reconnect() {
    let start = Instant::now();
    let core = NeighCore::cold(dual_tor_setup(&[]), &ConsumerView::new(), start);
    let mut h = Harness::from_core(core, start);
    h.cold_sync(&[]);
    h.kernel(vec![failed6(2, "fc00::9", false)]);
    let (epoch, batch) = take_flush(h.steps());
    assert_eq!(batch.failed_sets.len(), 1);
    assert_eq!(batch.neigh_sets.len(), 1, "the zero-MAC NEIGH_TABLE SET");
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Err(lost()),
    });
    let new_epoch = h
        .steps()
        .into_iter()
        .find_map(|s| match s {
            Step::Do(Action::Reconnect { epoch }) => Some(epoch),
            _ => None,
        })
        .expect("a reconnect");
    // Redis came back empty.
    h.input(Input::Reconnected {
        epoch: new_epoch,
        config: vec![(
            ConfigTable::PeerSwitch,
            vec![KeyOp::Set(
                "peer_tor".into(),
                vec![("address_ipv4".into(), "10.1.0.33".into())],
            )],
        )],
        view: ConsumerView::new(),
        failed: Vec::new(),
    });
    let (_, batch) = take_flush(h.steps());
    assert_eq!(batch.failed_sets.len(), 1);
    assert_eq!(batch.failed_sets[0].0, "Ethernet0:fc00::9");
}

// ===== stopping and deferred resyncs =====

#[test]
fn sigterm_during_the_audit_read_drops_the_audit_and_writes_what_is_pending() {
    let mut h = Harness::cold_with(ConsumerView::new(), Some(Duration::from_secs(10)));
    h.cold_sync(&[]);
    h.at(10_000);
    let steps = h.steps();
    assert!(steps
        .iter()
        .any(|s| matches!(s, Step::Do(Action::ReadAuditView { .. }))));
    assert!(matches!(h.core.phase(), Phase::AuditRead { .. }));
    h.kernel(vec![neigh(2, "10.0.0.1", 1, false)]);
    assert_eq!(flushes(&h.steps()), 0, "flushes wait for the audit read");
    h.core.begin_shutdown(h.now);
    assert_eq!(h.core.phase(), Phase::Live, "the audit is dropped");
    let (epoch, batch) = take_flush(h.steps());
    assert_eq!(batch.neigh_sets[0].0, "Ethernet0:10.0.0.1");
    // The audit's read still answers: ignored, no dump while stopping.
    h.input(Input::AuditView {
        epoch,
        result: Ok(ConsumerView::new()),
    });
    assert!(h.steps().is_empty());
    h.input(Input::Flushed {
        epoch,
        batch,
        result: Ok(()),
    });
    assert!(h.core.is_stopped());
    assert_eq!(h.core.poll_timeout(), None, "no timer left once stopping");
}

#[test]
fn a_resync_asked_for_during_the_reconcile_write_starts_once_reconciled() {
    let mut h = warm_until_reconciling();
    let peer = vec![("address_ipv4".to_owned(), "10.1.0.33".to_owned())];
    h.input(Input::Config {
        epoch: 0,
        change: Ok((ConfigTable::PeerSwitch, KeyOp::Set("peer_tor".into(), peer))),
    });
    assert_eq!(
        h.core.phase(),
        Phase::Reconciling {
            resync_wanted: true
        }
    );
    assert!(h.steps().is_empty(), "no dump during the reconcile write");
    h.input(Input::ReconcileWritten(Ok(())));
    assert!(matches!(h.core.phase(), Phase::Resyncing(_)));
    assert!(matches!(
        h.steps().as_slice(),
        [Step::Dump(DumpRequest::Links), ..]
    ));
}
