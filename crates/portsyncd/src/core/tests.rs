//! The core driven like a protocol: scripted inputs on the shared
//! simulated clock ([`sonic_daemon::sim::Sim`]), the actions it answers
//! with asserted. No root, no Redis, no kernel.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sonic_daemon::engine::{Core, Step};
use sonic_daemon::metrics::{Metrics, ResyncCause};
use sonic_daemon::stats::Publisher;
use sonic_daemon::Health;
use sonic_netlink::link::{IFF_RUNNING, IFF_UP};
use sonic_netlink::socket::{KernelMessage, Received, SocketError};
use sonic_netlink::LinkEvent;
use swss::{KeyOp, SwssError};

use super::*;
use crate::sync::fixtures::{del_link, new_link};
use crate::sync::{PortConfigCount, PortSync, SwitchType};
use crate::writer::{PendingOp, StateBatch};

const UP_RUNNING: u32 = IFF_UP | IFF_RUNNING;

// ===== the simulation =====

/// A core on the shared simulated clock ([`sonic_daemon::sim::Sim`]:
/// `at` and `fire` fire each deadline at its own instant, no-spin and
/// termination checked), with portsyncd's helpers ([`PortSim`]).
type Sim = sonic_daemon::sim::Sim<PortCore>;

/// portsyncd's helpers on [`Sim`].
trait PortSim {
    /// A cold switch configured with `config`, of which `appl` are in
    /// APPL_DB (initial load), at t0; the start-up dump is in flight.
    fn new(config: &[&str], appl: &[&str], audit_every: Option<Duration>) -> Self;
    /// As [`PortSim::new`], with `--port-config-count-follows-config`'s
    /// follower (`None`: the option is off).
    fn with_count(
        config: &[&str],
        appl: &[&str],
        audit_every: Option<Duration>,
        port_config_count: Option<PortConfigCount>,
    ) -> Self;
    /// Started and live: `links` dumped (all up), dump done, the first
    /// flush and PortInitDone (if any) acknowledged, READY sent.
    fn live(config: &[&str], appl: &[&str], links: &[&str]) -> Self;
    fn live_with_audit(
        config: &[&str],
        appl: &[&str],
        links: &[&str],
        audit_every: Option<Duration>,
    ) -> Self;
    fn kernel(&mut self, msgs: Vec<Received>, overrun: bool);
    /// The one flush the core wants now.
    fn flush(&mut self) -> StateBatch;
    fn ack(&mut self, batch: StateBatch);
    fn since_t0(&self, t: Instant) -> Duration;
}

impl PortSim for Sim {
    fn new(config: &[&str], appl: &[&str], audit_every: Option<Duration>) -> Sim {
        Sim::with_count(config, appl, audit_every, None)
    }

    fn with_count(
        config: &[&str],
        appl: &[&str],
        audit_every: Option<Duration>,
        port_config_count: Option<PortConfigCount>,
    ) -> Sim {
        let mut sync = PortSync::new(
            config.iter().map(|s| s.to_string()),
            SwitchType::Switch,
            false,
        );
        for name in appl {
            assert!(sync.on_appl_port(name, true, false).is_empty());
        }
        sync.finish_initial_load();
        let setup = Setup {
            sync,
            audit_every,
            port_config_count,
        };
        let t0 = Instant::now();
        Sim::from_core(PortCore::new(setup, t0), t0)
    }

    fn live(config: &[&str], appl: &[&str], links: &[&str]) -> Sim {
        Sim::live_with_audit(config, appl, links, None)
    }

    fn live_with_audit(
        config: &[&str],
        appl: &[&str],
        links: &[&str],
        audit_every: Option<Duration>,
    ) -> Sim {
        let mut sim = Sim::new(config, appl, audit_every);
        let mut msgs: Vec<Received> = links
            .iter()
            .enumerate()
            .map(|(i, n)| link(new_link(n, 10 + i as u32, UP_RUNNING, 9100)))
            .collect();
        msgs.push(Ok(KernelMessage::DumpDone));
        sim.kernel(msgs, false);
        for step in sim.steps() {
            match step {
                Step::Do(Action::FlushState { batch: b, .. }) => sim.ack(b),
                Step::Do(Action::WritePortInitDone { .. }) => {
                    sim.input(Input::InitDoneWritten {
                        epoch: sim.core.epoch(),
                        result: Ok(()),
                    });
                }
                other => panic!("unexpected at start-up: {other:?}"),
            }
        }
        let ready = sim.steps();
        assert!(
            matches!(ready.as_slice(), [Step::Ready(s)] if s.starts_with("synced")),
            "{ready:?}"
        );
        assert_eq!(sim.core.phase(), &Phase::Live);
        sim
    }

    fn kernel(&mut self, msgs: Vec<Received>, overrun: bool) {
        self.handle_kernel(msgs, overrun);
    }

    fn flush(&mut self) -> StateBatch {
        let steps = self.steps();
        let mut flushes: Vec<StateBatch> = steps
            .into_iter()
            .filter_map(|s| match s {
                Step::Do(Action::FlushState { batch: b, .. }) => Some(b),
                _ => None,
            })
            .collect();
        assert_eq!(flushes.len(), 1, "exactly one flush");
        flushes.remove(0)
    }

    fn ack(&mut self, batch: StateBatch) {
        self.input(Input::Flushed {
            epoch: self.core.epoch(),
            batch,
            result: Ok(()),
        });
    }

    fn since_t0(&self, t: Instant) -> Duration {
        self.since_start(t)
    }
}

// ===== inputs =====

fn link(ev: LinkEvent) -> Received {
    Ok(KernelMessage::Link(ev))
}

fn done() -> Received {
    Ok(KernelMessage::DumpDone)
}

fn lost_error() -> SwssError {
    let e = SwssError::Redis(redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset",
    )));
    assert!(e.is_connection_error());
    e
}

fn reply_error() -> SwssError {
    let e = SwssError::UnexpectedReply {
        context: "HSET PORT_TABLE|Ethernet0".to_string(),
        reply: "OOM command not allowed".to_string(),
    };
    assert!(!e.is_connection_error());
    e
}

fn fields(oper: &str, admin: &str, mtu: &str) -> Vec<(String, String)> {
    [
        ("state", "ok"),
        ("netdev_oper_status", oper),
        ("admin_status", admin),
        ("mtu", mtu),
    ]
    .iter()
    .map(|(f, v)| (f.to_string(), v.to_string()))
    .collect()
}

fn values(oper: &str, admin: &str, mtu: &str) -> Option<Vec<Option<String>>> {
    Some(
        fields(oper, admin, mtu)
            .into_iter()
            .map(|(_, v)| Some(v))
            .collect(),
    )
}

fn set_op(oper: &str, admin: &str, mtu: &str) -> PendingOp {
    PendingOp {
        del_first: false,
        set: Some(fields(oper, admin, mtu)),
    }
}

fn del_op() -> PendingOp {
    PendingOp {
        del_first: true,
        set: None,
    }
}

fn names(batch: &StateBatch) -> Vec<&str> {
    batch.ops.iter().map(|(n, _)| n.as_str()).collect()
}

fn is_dump(step: &Step<Action>) -> bool {
    matches!(step, Step::Dump(sonic_netlink::socket::Dump::Links))
}

fn present(names: &[&str]) -> BTreeMap<String, bool> {
    names.iter().map(|n| (n.to_string(), true)).collect()
}

// ===== start-up =====

#[test]
fn startup_dump_writes_then_ready_and_port_init_done() {
    let mut sim = Sim::new(
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4"],
        None,
    );
    assert!(sim.steps().is_empty(), "nothing to do before the dump");
    assert!(matches!(
        sim.core.phase(),
        Phase::StartupDump(LinkDump::InFlight { again: None })
    ));
    sim.kernel(
        vec![
            link(new_link("Ethernet0", 10, UP_RUNNING, 9100)),
            link(new_link("eth0", 2, UP_RUNNING, 1500)),
        ],
        false,
    );
    // Written as soon as it is decided, even before the dump ends.
    let batch = sim.flush();
    assert_eq!(
        batch.ops,
        vec![("Ethernet0".into(), set_op("up", "up", "9100"))]
    );
    sim.kernel(
        vec![link(new_link("Ethernet4", 11, IFF_UP, 9100)), done()],
        false,
    );
    assert_eq!(sim.core.phase(), &Phase::Live);
    // The last configured port: PortInitDone goes out; the new write waits
    // for the flush in flight.
    let steps = sim.steps();
    assert!(
        matches!(
            steps.as_slice(),
            [Step::Do(Action::WritePortInitDone { .. })]
        ),
        "{steps:?}"
    );
    sim.ack(batch);
    let batch = sim.flush();
    assert_eq!(names(&batch), ["Ethernet4"]);
    assert!(
        sim.steps().is_empty(),
        "no READY while a write is unacknowledged"
    );
    sim.ack(batch);
    let steps = sim.steps();
    assert!(
        matches!(steps.as_slice(),
            [Step::Ready(s)] if s == "synced: 2 ports in STATE_DB PORT_TABLE, 0 holding back PortInitDone"),
        "{steps:?}"
    );
    sim.input(Input::InitDoneWritten {
        epoch: sim.core.epoch(),
        result: Ok(()),
    });
    assert_eq!(sim.core.init_done(), InitDone::Written);
    assert_eq!(sim.core.stats().port_init_done, Some(true));
    assert_eq!(sim.core.stats().entries, Some(2));
    assert!(sim.steps().is_empty(), "READY once");
    let text = metrics_text(&mut sim.core);
    assert!(text.contains(
        r#"portsyncd_kernel_events_total{type="RTM_NEWLINK",outcome="filtered",reason="not_a_port"} 1"#
    ));
}

#[test]
fn flush_in_flight_coalesces_and_holds_reads_a_bounded_time() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"]);
    sim.at(1000);
    assert!(sim.core.reads_kernel(sim.now));
    sim.kernel(vec![link(new_link("Ethernet0", 10, IFF_UP, 9100))], false);
    let batch = sim.flush();
    assert_eq!(
        batch.ops,
        vec![("Ethernet0".into(), set_op("down", "up", "9100"))]
    );
    assert!(
        !sim.core.reads_kernel(sim.now),
        "kernel waits while the flush is in flight"
    );
    // Read anyway (a slow flush): staged, coalesced, nothing sent.
    sim.kernel(vec![link(new_link("Ethernet0", 10, 0, 9100))], false);
    sim.kernel(vec![link(new_link("Ethernet0", 10, 0, 1500))], false);
    assert!(sim.steps().is_empty());
    let at = sim.fire();
    assert_eq!(
        sim.since_t0(at),
        Duration::from_millis(1000) + FLUSH_READ_PAUSE
    );
    assert!(
        sim.core.reads_kernel(sim.now),
        "held at most FLUSH_READ_PAUSE"
    );
    sim.ack(batch);
    let batch = sim.flush();
    assert_eq!(
        batch.ops,
        vec![("Ethernet0".into(), set_op("down", "down", "1500"))]
    );
    sim.ack(batch);
    assert!(sim.core.writer().is_idle());
    let text = metrics_text(&mut sim.core);
    assert!(
        text.contains(r#"portsyncd_redis_operations_total{table="STATE_PORT_TABLE",op="set"} 3"#),
        "{text}"
    );
}

#[test]
fn port_waiting_for_appl_db_is_written_when_consumed() {
    let mut sim = Sim::live(
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0"],
        &["Ethernet0", "Ethernet4"],
    );
    assert_eq!(sim.core.init_done(), InitDone::Waiting);
    let text = metrics_text(&mut sim.core);
    assert!(text.contains(
        r#"portsyncd_kernel_events_total{type="RTM_NEWLINK",outcome="filtered",reason="not_in_appl_db"} 1"#
    ));
    // The initial-load markers are not ports.
    sim.input(Input::Appl(KeyOp::Set("PortInitDone".into(), Vec::new())));
    assert!(sim.steps().is_empty());
    sim.input(Input::Appl(KeyOp::Set("Ethernet4".into(), Vec::new())));
    let steps = sim.steps();
    assert!(
        matches!(steps[0], Step::Do(Action::WritePortInitDone { .. })),
        "{steps:?}"
    );
    assert!(
        matches!(&steps[1], Step::Do(Action::FlushState { batch: b, .. }) if names(b) == ["Ethernet4"]),
        "{steps:?}"
    );
}

#[test]
fn port_init_done_warning_every_interval_until_decided() {
    let mut sim = Sim::live(&["Ethernet0", "Ethernet4"], &["Ethernet0"], &["Ethernet0"]);
    let at = sim.fire();
    assert_eq!(sim.since_t0(at), INIT_DONE_WARN_INTERVAL);
    let at = sim.fire();
    assert_eq!(sim.since_t0(at), 2 * INIT_DONE_WARN_INTERVAL);
    sim.input(Input::Appl(KeyOp::Set("Ethernet4".into(), Vec::new())));
    sim.kernel(
        vec![link(new_link("Ethernet4", 11, UP_RUNNING, 9100))],
        false,
    );
    let batch = sim.flush();
    sim.ack(batch);
    assert_eq!(sim.core.init_done(), InitDone::Writing);
    assert_eq!(sim.core.poll_timeout(), None, "no warning once decided");
}

// ===== kernel faults =====

#[test]
fn overrun_mid_startup_dump_redumps_and_sweeps() {
    let mut sim = Sim::new(
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4"],
        None,
    );
    sim.kernel(
        vec![
            link(new_link("Ethernet0", 10, UP_RUNNING, 9100)),
            link(new_link("Ethernet4", 11, UP_RUNNING, 9100)),
        ],
        true,
    );
    assert!(matches!(
        sim.core.phase(),
        Phase::StartupDump(LinkDump::InFlight {
            again: Some(ResyncCause::NetlinkOverrun)
        })
    ));
    let batch = sim.flush();
    sim.ack(batch);
    // The first dump ends: a fresh one is requested (mark and sweep).
    sim.kernel(vec![done()], false);
    assert!(matches!(
        sim.core.phase(),
        Phase::Resyncing {
            why: ResyncCause::NetlinkOverrun,
            dump: LinkDump::Wanted,
            ..
        }
    ));
    // The start-up dump has ended and its writes are acknowledged: READY.
    let steps = sim.steps();
    assert!(steps.iter().any(is_dump), "{steps:?}");
    assert!(
        steps.iter().any(|s| matches!(s, Step::Ready(_))),
        "{steps:?}"
    );
    // Ethernet4 was deleted while events were lost: not in the dump.
    sim.kernel(
        vec![link(new_link("Ethernet0", 10, UP_RUNNING, 9100)), done()],
        false,
    );
    assert_eq!(sim.core.phase(), &Phase::Live);
    let batch = sim.flush();
    assert_eq!(batch.ops, vec![("Ethernet4".into(), del_op())]);
    assert_eq!(sim.core.sync().link_state("Ethernet4"), None);
    assert!(sim.core.sync().link_state("Ethernet0").is_some());
}

#[test]
fn overrun_while_live_keeps_links_announced_during_the_dump() {
    let mut sim = Sim::live(
        &["Ethernet0", "Ethernet4", "Ethernet8"],
        &["Ethernet0", "Ethernet4", "Ethernet8"],
        &["Ethernet0", "Ethernet4"],
    );
    sim.kernel(Vec::new(), true);
    let steps = sim.steps();
    assert!(steps.iter().any(is_dump), "{steps:?}");
    assert_eq!(sim.core.stats().netlink_overruns, 1);
    // Another overrun while the dump is in flight: one more dump after it.
    sim.kernel(
        vec![link(new_link("Ethernet0", 10, UP_RUNNING, 9100))],
        true,
    );
    sim.kernel(vec![done()], false);
    assert!(matches!(
        sim.core.phase(),
        Phase::Resyncing {
            dump: LinkDump::Wanted,
            ..
        }
    ));
    let steps = sim.steps();
    assert_eq!(steps.iter().filter(|s| is_dump(s)).count(), 1, "{steps:?}");
    // A notification during the second dump, then the dump without
    // Ethernet4 (deleted while events were lost) and without Ethernet8
    // (created after the dump passed it).
    sim.kernel(
        vec![link(new_link("Ethernet8", 12, UP_RUNNING, 9100))],
        false,
    );
    let batch = sim.flush();
    assert_eq!(names(&batch), ["Ethernet8"]);
    sim.ack(batch);
    sim.kernel(
        vec![link(new_link("Ethernet0", 10, UP_RUNNING, 9100)), done()],
        false,
    );
    assert_eq!(sim.core.phase(), &Phase::Live);
    let batch = sim.flush();
    assert_eq!(batch.ops, vec![("Ethernet4".into(), del_op())]);
    assert!(
        sim.core.sync().link_state("Ethernet8").is_some(),
        "announced during the dump"
    );
}

#[test]
fn port_leaving_a_bridge_stays_known_for_the_sweep() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0", "Ethernet4"]);
    // AF_BRIDGE DELLINK with a master: Ethernet4 leaves a bridge, the
    // netdev stays; a plain DELLINK of another netdev forgets it.
    let mut leave = del_link("Ethernet4", 11);
    leave.family = 7;
    leave.master = Some(30);
    sim.kernel(vec![link(leave), link(del_link("PortChannel1", 40))], false);
    let batch = sim.flush();
    assert_eq!(batch.ops, vec![("PortChannel1".into(), del_op())]);
    sim.ack(batch);
    // Events lost; the resync dump lists only Ethernet0: Ethernet4 is
    // swept (the DELLINK with a master did not forget it), PortChannel1 is
    // not deleted twice.
    sim.kernel(Vec::new(), true);
    assert!(sim.steps().iter().any(is_dump));
    sim.kernel(
        vec![link(new_link("Ethernet0", 10, UP_RUNNING, 9100)), done()],
        false,
    );
    let batch = sim.flush();
    assert_eq!(batch.ops, vec![("Ethernet4".into(), del_op())]);
}

#[test]
fn dump_failure_and_refused_request_are_retried() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"]);
    sim.kernel(Vec::new(), true);
    assert!(sim.steps().iter().any(is_dump));
    sim.kernel(vec![Ok(KernelMessage::DumpFailed { errno: 16 })], false);
    assert!(matches!(
        sim.core.phase(),
        Phase::Resyncing {
            dump: LinkDump::Wanted,
            ..
        }
    ));
    assert!(sim.steps().iter().any(is_dump), "asked again at once");
    sim.at(500);
    sim.core
        .handle_dump_request_failed(sim.now, SocketError::Overrun);
    assert!(sim.steps().is_empty(), "not spinning on a refused request");
    let at = sim.fire();
    assert_eq!(
        sim.since_t0(at),
        Duration::from_millis(500) + DUMP_RETRY_DELAY
    );
    assert!(sim.steps().iter().any(is_dump));
}

// ===== Redis faults =====

#[test]
fn redis_lost_during_flush_keeps_batch_and_writes_only_differences() {
    let mut sim = Sim::live(
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4"],
    );
    sim.kernel(
        vec![
            link(new_link("Ethernet0", 10, IFF_UP, 9100)),
            link(new_link("Ethernet4", 11, IFF_UP, 9100)),
        ],
        false,
    );
    let batch = sim.flush();
    assert_eq!(names(&batch), ["Ethernet0", "Ethernet4"]);
    sim.input(Input::Flushed {
        epoch: sim.core.epoch(),
        batch,
        result: Err(lost_error()),
    });
    assert_eq!(sim.core.redis(), Redis::Reconnecting);
    let steps = sim.steps();
    assert!(
        matches!(steps.as_slice(),
            [Step::Status(s), Step::Do(Action::Reconnect { .. })] if s == "Redis lost; reconnecting"),
        "{steps:?}"
    );
    assert_eq!(sim.core.writer().pending_len(), 2, "batch kept");
    // While away: staged, not written; another loss report is the same loss.
    sim.kernel(vec![link(new_link("Ethernet0", 10, IFF_UP, 1500))], false);
    sim.input(Input::SubscriptionLost {
        epoch: sim.core.epoch(),
        error: lost_error(),
    });
    assert!(sim.steps().is_empty());
    sim.input(Input::Reconnected {
        epoch: sim.core.epoch(),
        present: present(&["Ethernet0", "Ethernet4"]),
        config_ports: None,
    });
    assert_eq!(sim.core.redis(), Redis::ReadingBack { read: None });
    let steps = sim.steps();
    let [Step::Do(Action::ReadStateForResync { id, names: read })] = steps.as_slice() else {
        panic!("{steps:?}");
    };
    assert_eq!(read, &["Ethernet0", "Ethernet4"]);
    // The failed write of Ethernet4 had reached Redis; Ethernet0's newer
    // mtu has not.
    sim.input(Input::ResyncRead {
        id: *id,
        result: Ok(vec![
            ("Ethernet0".into(), values("down", "up", "9100")),
            ("Ethernet4".into(), values("down", "up", "9100")),
        ]),
    });
    assert_eq!(sim.core.redis(), Redis::Up);
    let steps = sim.steps();
    assert!(
        matches!(&steps[0], Step::Status(s) if s == "running"),
        "{steps:?}"
    );
    let Step::Do(Action::FlushState { batch, .. }) = &steps[1] else {
        panic!("{steps:?}");
    };
    assert_eq!(
        batch.ops,
        vec![("Ethernet0".into(), set_op("down", "up", "1500"))]
    );
    assert_eq!(sim.core.stats().redis_reconnects, 1);
}

#[test]
fn error_reply_retries_after_a_growing_delay_without_spinning() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"]);
    sim.at(100);
    sim.kernel(vec![link(new_link("Ethernet0", 10, IFF_UP, 9100))], false);
    let batch = sim.flush();
    sim.input(Input::Flushed {
        epoch: sim.core.epoch(),
        batch,
        result: Err(reply_error()),
    });
    assert_eq!(
        sim.core.redis(),
        Redis::Up,
        "an error reply is not a lost connection"
    );
    assert!(sim.steps().is_empty(), "no immediate retry");
    sim.at(150);
    sim.core.handle_timeout(sim.now);
    assert!(sim.steps().is_empty(), "not before the delay");
    let at = sim.fire();
    assert_eq!(sim.since_t0(at), Duration::from_millis(200));
    let batch = sim.flush();
    assert_eq!(
        batch.ops,
        vec![("Ethernet0".into(), set_op("down", "up", "9100"))]
    );
    sim.input(Input::Flushed {
        epoch: sim.core.epoch(),
        batch,
        result: Err(reply_error()),
    });
    let at = sim.fire();
    assert_eq!(sim.since_t0(at), Duration::from_millis(400), "doubled");
    let batch = sim.flush();
    sim.ack(batch);
    assert!(sim.core.writer().is_idle());
    assert_eq!(sim.core.stats().redis_write_errors, 2);
    // Reset after a success: the next error waits the first delay again.
    sim.kernel(
        vec![link(new_link("Ethernet0", 10, UP_RUNNING, 9100))],
        false,
    );
    let batch = sim.flush();
    sim.input(Input::Flushed {
        epoch: sim.core.epoch(),
        batch,
        result: Err(reply_error()),
    });
    let at = sim.fire();
    assert_eq!(sim.since_t0(at), Duration::from_millis(500));
}

#[test]
fn port_init_done_error_reply_is_retried_after_a_delay() {
    let mut sim = Sim::live(
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0"],
    );
    sim.at(1000);
    sim.kernel(
        vec![link(new_link("Ethernet4", 11, UP_RUNNING, 9100))],
        false,
    );
    let steps = sim.steps();
    assert!(
        matches!(steps[0], Step::Do(Action::WritePortInitDone { .. })),
        "{steps:?}"
    );
    let Some(Step::Do(Action::FlushState { batch, .. })) = steps.into_iter().nth(1) else {
        panic!("a flush");
    };
    sim.ack(batch);
    sim.input(Input::InitDoneWritten {
        epoch: sim.core.epoch(),
        result: Err(reply_error()),
    });
    let retry = sim.now + Duration::from_millis(100);
    assert_eq!(sim.core.init_done(), InitDone::Retry);
    assert_eq!(sim.core.timer(Timer::InitDoneRetry), Some(retry));
    assert_eq!(sim.core.redis(), Redis::Up);
    assert!(sim.steps().is_empty(), "no immediate retry");
    assert_eq!(sim.fire(), retry);
    let steps = sim.steps();
    assert!(
        matches!(
            steps.as_slice(),
            [Step::Do(Action::WritePortInitDone { .. })]
        ),
        "{steps:?}"
    );
    sim.input(Input::InitDoneWritten {
        epoch: sim.core.epoch(),
        result: Ok(()),
    });
    assert_eq!(sim.core.init_done(), InitDone::Written);
}

#[test]
fn port_init_done_decided_while_redis_away_is_written_after_reconnect() {
    let mut sim = Sim::live(
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0"],
    );
    sim.input(Input::SubscriptionLost {
        epoch: sim.core.epoch(),
        error: lost_error(),
    });
    let steps = sim.steps();
    assert!(
        matches!(steps.last(), Some(Step::Do(Action::Reconnect { .. }))),
        "{steps:?}"
    );
    sim.kernel(
        vec![link(new_link("Ethernet4", 11, UP_RUNNING, 9100))],
        false,
    );
    assert!(sim.steps().is_empty(), "nothing written while away");
    assert_eq!(sim.core.init_done(), InitDone::Due);
    sim.input(Input::Reconnected {
        epoch: sim.core.epoch(),
        present: present(&["Ethernet0", "Ethernet4"]),
        config_ports: None,
    });
    let steps = sim.steps();
    let [Step::Do(Action::ReadStateForResync { id, names: read })] = steps.as_slice() else {
        panic!("{steps:?}");
    };
    assert_eq!(read, &["Ethernet0", "Ethernet4"]);
    sim.input(Input::ResyncRead {
        id: *id,
        result: Ok(vec![
            ("Ethernet0".into(), values("up", "up", "9100")),
            ("Ethernet4".into(), Some(vec![None, None, None, None])),
        ]),
    });
    let steps = sim.steps();
    assert!(matches!(steps[0], Step::Status(_)), "{steps:?}");
    assert!(
        matches!(steps[1], Step::Do(Action::WritePortInitDone { .. })),
        "{steps:?}"
    );
    assert!(
        matches!(&steps[2], Step::Do(Action::FlushState { batch: b, .. }) if names(b) == ["Ethernet4"]),
        "{steps:?}"
    );
    // Lost again during the PortInitDone write: written after the next
    // reconnect.
    sim.input(Input::InitDoneWritten {
        epoch: sim.core.epoch(),
        result: Err(lost_error()),
    });
    assert_eq!(sim.core.init_done(), InitDone::Due);
    let steps = sim.steps();
    assert!(
        matches!(steps.last(), Some(Step::Do(Action::Reconnect { .. }))),
        "{steps:?}"
    );
    sim.input(Input::Reconnected {
        epoch: sim.core.epoch(),
        present: present(&["Ethernet0", "Ethernet4"]),
        config_ports: None,
    });
    // The flush of the first session is still in flight: the read waits.
    assert!(sim.steps().is_empty());
}

#[test]
fn appl_port_deleted_and_added_during_resyncs() {
    let mut sim = Sim::live(
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4", "Ethernet8"],
    );
    // During a dump resync: orchagent removes Ethernet4 and adds Ethernet8.
    sim.kernel(Vec::new(), true);
    assert!(sim.steps().iter().any(is_dump));
    sim.input(Input::Appl(KeyOp::Del("Ethernet4".into())));
    sim.input(Input::Appl(KeyOp::Set("Ethernet8".into(), Vec::new())));
    let batch = sim.flush();
    assert_eq!(
        names(&batch),
        ["Ethernet8"],
        "its netdev is known: written at once"
    );
    sim.ack(batch);
    // Ethernet4's link changes while it is not in APPL_DB: not written.
    sim.kernel(
        vec![
            link(new_link("Ethernet4", 11, IFF_UP, 9100)),
            link(new_link("Ethernet0", 10, UP_RUNNING, 9100)),
            link(new_link("Ethernet8", 12, UP_RUNNING, 9100)),
            done(),
        ],
        false,
    );
    assert_eq!(sim.core.phase(), &Phase::Live);
    assert!(sim.steps().is_empty());

    // During the resync after a reconnect: the fresh load lacks Ethernet0
    // and has Ethernet4 again.
    sim.input(Input::SubscriptionLost {
        epoch: sim.core.epoch(),
        error: lost_error(),
    });
    sim.steps();
    sim.input(Input::Reconnected {
        epoch: sim.core.epoch(),
        present: present(&["Ethernet4", "Ethernet8"]),
        config_ports: None,
    });
    let steps = sim.steps();
    let [Step::Do(Action::ReadStateForResync { id, names: read })] = steps.as_slice() else {
        panic!("{steps:?}");
    };
    assert_eq!(
        read,
        &["Ethernet4", "Ethernet8"],
        "Ethernet0 is no longer ours"
    );
    // Ethernet4 added while the read is in flight: no write overlaps it.
    sim.input(Input::Appl(KeyOp::Set("Ethernet0".into(), Vec::new())));
    assert!(sim.steps().is_empty());
    sim.input(Input::ResyncRead {
        id: *id,
        result: Ok(vec![
            ("Ethernet4".into(), values("up", "up", "9100")),
            ("Ethernet8".into(), values("up", "up", "9100")),
        ]),
    });
    let steps = sim.steps();
    let Some(Step::Do(Action::FlushState { batch, .. })) = steps.get(1) else {
        panic!("{steps:?}");
    };
    assert_eq!(
        batch.ops,
        vec![
            ("Ethernet0".into(), set_op("up", "up", "9100")),
            ("Ethernet4".into(), set_op("down", "up", "9100")),
        ]
    );
}

#[test]
fn stale_results_are_ignored() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"]);
    sim.input(Input::Reconnected {
        epoch: sim.core.epoch(),
        present: present(&["Ethernet0"]),
        config_ports: None,
    });
    assert_eq!(sim.core.redis(), Redis::Up, "no reconnect was asked for");
    sim.input(Input::ResyncRead {
        id: 7,
        result: Ok(Vec::new()),
    });
    sim.input(Input::AuditRead {
        id: 7,
        result: Ok(AuditReadout::default()),
    });
    sim.input(Input::InitDoneWritten {
        epoch: sim.core.epoch(),
        result: Ok(()),
    });
    assert!(sim.steps().is_empty());
    assert_eq!(sim.core.stats().audit_runs, 0);
}

#[test]
fn state_entry_deleted_by_someone_else_is_restored() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"]);
    sim.input(Input::StateDeleted("Ethernet0".into()));
    let batch = sim.flush();
    assert_eq!(
        batch.ops,
        vec![("Ethernet0".into(), set_op("up", "up", "9100"))]
    );
    sim.ack(batch);
    // Our own DEL after a DELLINK: nothing to restore.
    sim.kernel(vec![link(del_link("Ethernet0", 10))], false);
    let batch = sim.flush();
    assert_eq!(batch.ops, vec![("Ethernet0".into(), del_op())]);
    sim.ack(batch);
    sim.input(Input::StateDeleted("Ethernet0".into()));
    assert!(sim.steps().is_empty());
    assert_eq!(sim.core.stats().entries, Some(0));
}

// ===== shutdown =====

#[test]
fn sigterm_writes_what_is_pending_then_stops() {
    let mut sim = Sim::live(
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0"],
    );
    sim.kernel(vec![link(new_link("Ethernet0", 10, IFF_UP, 9100))], false);
    let first = sim.flush();
    sim.kernel(vec![link(new_link("Ethernet4", 11, IFF_UP, 9100))], false);
    sim.core.begin_shutdown(sim.now);
    assert_eq!(sim.core.phase(), &Phase::ShuttingDown);
    assert!(!sim.core.is_stopped(), "a flush is in flight");
    // PortInitDone was decided with Ethernet4: it is pending too.
    let steps = sim.steps();
    assert!(
        matches!(
            steps.as_slice(),
            [Step::Do(Action::WritePortInitDone { .. })]
        ),
        "{steps:?}"
    );
    sim.ack(first);
    let second = sim.flush();
    assert_eq!(names(&second), ["Ethernet4"]);
    sim.input(Input::InitDoneWritten {
        epoch: sim.core.epoch(),
        result: Ok(()),
    });
    assert!(!sim.core.is_stopped());
    sim.ack(second);
    assert!(sim.core.is_stopped());
    // A link message after the signal is not dumped for.
    sim.kernel(Vec::new(), true);
    assert!(sim.steps().is_empty());
}

#[test]
fn sigterm_while_redis_away_does_not_stop_with_writes_pending() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"]);
    sim.input(Input::SubscriptionLost {
        epoch: sim.core.epoch(),
        error: lost_error(),
    });
    sim.steps();
    sim.kernel(vec![link(new_link("Ethernet0", 10, IFF_UP, 9100))], false);
    sim.core.begin_shutdown(sim.now);
    assert!(
        !sim.core.is_stopped(),
        "the driver's shutdown limit ends it"
    );
    sim.input(Input::Reconnected {
        epoch: sim.core.epoch(),
        present: present(&["Ethernet0"]),
        config_ports: None,
    });
    let steps = sim.steps();
    let [Step::Do(Action::ReadStateForResync { id, .. })] = steps.as_slice() else {
        panic!("{steps:?}");
    };
    sim.input(Input::ResyncRead {
        id: *id,
        result: Ok(vec![("Ethernet0".into(), values("up", "up", "9100"))]),
    });
    let batch = sim.flush();
    sim.ack(batch);
    assert!(sim.core.is_stopped());
}

// ===== the self-audit =====

#[test]
fn audit_counts_and_repairs_drift_then_dumps_the_links() {
    let every = Duration::from_secs(10);
    let mut sim = Sim::live_with_audit(
        &["Ethernet0", "Ethernet4", "Ethernet8", "Ethernet12"],
        &["Ethernet0", "Ethernet4", "Ethernet8", "Ethernet12"],
        &["Ethernet0", "Ethernet4", "Ethernet12"],
        Some(every),
    );
    sim.kernel(vec![link(del_link("Ethernet12", 12))], false);
    let batch = sim.flush();
    sim.ack(batch);
    // The warning at 30 s comes after the audit at 10 s.
    let at = sim.fire();
    assert_eq!(sim.since_t0(at), every);
    assert_eq!(sim.core.audit(), Audit::Due);
    let steps = sim.steps();
    let [Step::Do(Action::ReadStateForAudit {
        id,
        names: read,
        gone,
    })] = steps.as_slice()
    else {
        panic!("{steps:?}");
    };
    assert_eq!(read, &["Ethernet0", "Ethernet4"]);
    assert_eq!(gone, &["Ethernet12", "Ethernet8"]);
    // No write overlaps the read.
    sim.kernel(vec![link(new_link("Ethernet0", 10, IFF_UP, 9100))], false);
    assert!(sim.steps().is_empty());
    sim.input(Input::AuditRead {
        id: *id,
        result: Ok(AuditReadout {
            fields: vec![
                // changed behind our back, but a write is pending: not drift
                ("Ethernet0".into(), values("up", "up", "1234")),
                ("Ethernet4".into(), values("up", "up", "1234")),
            ],
            exists: vec![("Ethernet12".into(), true), ("Ethernet8".into(), false)],
        }),
    });
    assert_eq!(sim.core.stats().audit_drift, Some(2));
    assert_eq!(sim.core.stats().audit_runs, 1);
    assert!(matches!(
        sim.core.phase(),
        Phase::Resyncing {
            why: ResyncCause::Audit,
            ..
        }
    ));
    let steps = sim.steps();
    assert!(steps.iter().any(is_dump), "{steps:?}");
    let batch = steps
        .into_iter()
        .find_map(|s| match s {
            Step::Do(Action::FlushState { batch: b, .. }) => Some(b),
            _ => None,
        })
        .expect("a flush");
    assert_eq!(
        batch.ops,
        vec![
            ("Ethernet0".into(), set_op("down", "up", "9100")),
            ("Ethernet12".into(), del_op()),
            ("Ethernet4".into(), set_op("up", "up", "9100")),
        ]
    );
    assert_eq!(sim.core.audit(), Audit::Waiting);
    assert_eq!(sim.core.timer(Timer::Audit), Some(sim.now + every));
}

#[test]
fn audit_waits_for_a_flush_and_skips_while_redis_is_away() {
    let every = Duration::from_secs(10);
    let mut sim = Sim::live_with_audit(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"], Some(every));
    sim.at(9_999);
    sim.kernel(vec![link(new_link("Ethernet0", 10, IFF_UP, 9100))], false);
    let batch = sim.flush();
    sim.fire();
    sim.fire();
    assert_eq!(sim.core.audit(), Audit::Due);
    assert!(sim.steps().is_empty(), "the flush in flight comes first");
    sim.ack(batch);
    let steps = sim.steps();
    let [Step::Do(Action::ReadStateForAudit { id, .. })] = steps.as_slice() else {
        panic!("{steps:?}");
    };
    // A connection error on the read: Redis is lost, the audit waits a
    // period.
    sim.input(Input::AuditRead {
        id: *id,
        result: Err(lost_error()),
    });
    assert_eq!(sim.core.redis(), Redis::Reconnecting);
    assert_eq!(sim.core.audit(), Audit::Waiting);
    sim.steps();
    let at = sim.fire();
    assert_eq!(sim.since_t0(at), Duration::from_millis(10_019) + every);
    assert_eq!(sim.core.audit(), Audit::Waiting);
    assert_eq!(
        sim.core.timer(Timer::Audit),
        Some(at + every),
        "skipped while Redis is away"
    );
    assert_eq!(sim.core.stats().audit_runs, 0);
}

// ===== found in review =====

#[test]
fn an_interrupted_startup_dump_after_an_overrun_does_not_send_ready() {
    let mut sim = Sim::new(
        &["Ethernet0", "Ethernet4"],
        &["Ethernet0", "Ethernet4"],
        None,
    );
    // Part of the start-up dump, then ENOBUFS: a fresh dump is wanted after it.
    sim.kernel(
        vec![link(new_link("Ethernet0", 10, UP_RUNNING, 9100))],
        true,
    );
    let b = sim.flush();
    sim.ack(b);
    // The start-up dump is interrupted (NLM_F_DUMP_INTR) before it ended.
    sim.kernel(vec![Ok(KernelMessage::DumpFailed { errno: 4 })], false);
    let steps = sim.steps();
    assert!(
        !steps.iter().any(|s| matches!(s, Step::Ready(_))),
        "READY=1 before any link dump completed (Ethernet4 never seen): {steps:?}"
    );
    assert!(steps.iter().any(is_dump), "the links are dumped again");
    sim.kernel(
        vec![
            link(new_link("Ethernet0", 10, UP_RUNNING, 9100)),
            link(new_link("Ethernet4", 11, UP_RUNNING, 9100)),
            Ok(KernelMessage::DumpDone),
        ],
        false,
    );
    let b = sim.flush();
    sim.ack(b);
    assert!(sim.steps().iter().any(|s| matches!(s, Step::Ready(_))));
}

#[test]
fn an_overrun_while_a_refused_startup_dump_waits_does_not_send_ready() {
    let mut sim = Sim::new(&["Ethernet0"], &["Ethernet0"], None);
    // The start-up dump fails at once, the re-request is refused.
    sim.kernel(vec![Ok(KernelMessage::DumpFailed { errno: 16 })], false);
    assert!(sim.steps().iter().any(is_dump));
    sim.core
        .handle_dump_request_failed(sim.now, SocketError::Overrun);
    // ENOBUFS while waiting to ask again.
    sim.kernel(Vec::new(), true);
    let steps = sim.steps();
    assert!(
        !steps.iter().any(|s| matches!(s, Step::Ready(_))),
        "READY=1 before any link dump completed: {steps:?}"
    );
}

#[test]
fn a_connection_error_of_the_old_session_after_a_reconnect_is_not_a_new_loss() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"]);
    sim.kernel(vec![link(new_link("Ethernet0", 10, IFF_UP, 9100))], false);
    let batch = sim.flush();
    // The STATE_DB pubsub connection is dropped (e.g. the client output
    // buffer limit) while the flush is in flight on the data connection.
    sim.input(Input::SubscriptionLost {
        epoch: sim.core.epoch(),
        error: lost_error(),
    });
    sim.steps();
    sim.input(Input::Reconnected {
        epoch: sim.core.epoch(),
        present: present(&["Ethernet0"]),
        config_ports: None,
    });
    assert_eq!(sim.core.redis(), Redis::ReadingBack { read: None });
    assert!(sim.steps().is_empty(), "the read waits for the old flight");
    // The old session's flush now fails (its connection was dropped).
    sim.input(Input::Flushed {
        epoch: 0,
        batch,
        result: Err(lost_error()),
    });
    let steps = sim.steps();
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::Do(Action::Reconnect { .. }))),
        "a result of the replaced session triggered a second reconnect: {steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Do(Action::ReadStateForResync { .. }))),
        "the restore goes on: {steps:?}"
    );
}

#[test]
fn a_subscription_of_the_old_session_ending_after_a_reconnect_is_not_a_new_loss() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"]);
    sim.input(Input::SubscriptionLost {
        epoch: 0,
        error: lost_error(),
    });
    let steps = sim.steps();
    assert!(
        matches!(
            steps.as_slice(),
            [Step::Status(_), Step::Do(Action::Reconnect { epoch: 1 })]
        ),
        "{steps:?}"
    );
    sim.input(Input::Reconnected {
        epoch: 1,
        present: present(&["Ethernet0"]),
        config_ports: None,
    });
    // Another of the old session's forwarders reports the same loss late
    // (its abort raced with the report).
    sim.input(Input::SubscriptionLost {
        epoch: 0,
        error: lost_error(),
    });
    assert_eq!(sim.core.redis(), Redis::ReadingBack { read: None });
    let steps = sim.steps();
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::Do(Action::Reconnect { .. }))),
        "a late report of the old session started a second reconnect: {steps:?}"
    );
    // The new session's own subscription failing is a new loss.
    sim.input(Input::SubscriptionLost {
        epoch: 1,
        error: lost_error(),
    });
    let steps = sim.steps();
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Do(Action::Reconnect { epoch: 2 }))),
        "{steps:?}"
    );
}

// ===== --port-config-count-follows-config =====

/// CONFIG_DB `PORT` keys as the subscription reports them.
fn config_set(name: &str) -> Input {
    Input::ConfigPort(KeyOp::Set(name.to_string(), Vec::new()))
}

fn config_del(name: &str) -> Input {
    Input::ConfigPort(KeyOp::Del(name.to_string()))
}

fn names_of(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The count writes among `steps`.
fn count_writes(steps: &[Step<Action>]) -> Vec<usize> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Do(Action::WritePortConfigCount { count: n, .. }) => Some(*n),
            _ => None,
        })
        .collect()
}

/// Live, following the count: three configured ports, all consumed and
/// seen, PortConfigDone count=3 written by the cold start.
fn counting() -> Sim {
    let ports = ["Ethernet0", "Ethernet4", "Ethernet8"];
    let mut sim = Sim::with_count(
        &ports,
        &ports,
        None,
        Some(PortConfigCount::new(3, names_of(&ports))),
    );
    let mut msgs: Vec<Received> = ports
        .iter()
        .enumerate()
        .map(|(i, n)| link(new_link(n, 10 + i as u32, UP_RUNNING, 9100)))
        .collect();
    msgs.push(done());
    sim.kernel(msgs, false);
    for step in sim.steps() {
        match step {
            Step::Do(Action::FlushState { batch: b, .. }) => sim.ack(b),
            Step::Do(Action::WritePortInitDone { .. }) => sim.input(Input::InitDoneWritten {
                epoch: sim.core.epoch(),
                result: Ok(()),
            }),
            other => panic!("unexpected at start-up: {other:?}"),
        }
    }
    assert!(matches!(sim.steps().as_slice(), [Step::Ready(_)]));
    sim
}

#[test]
fn breakout_and_back_keep_port_config_done_count_one_write_at_a_time() {
    let mut sim = counting();
    // A field change of a configured port is not a count change.
    sim.input(config_set("Ethernet0"));
    assert!(sim.steps().is_empty());

    // 1x100G -> 4x25G: DEL PORT|Ethernet0, then four SETs.
    sim.input(config_del("Ethernet0"));
    assert_eq!(count_writes(&sim.steps()), [2]);
    for name in ["Ethernet0", "Ethernet1", "Ethernet2", "Ethernet3"] {
        sim.input(config_set(name));
    }
    assert!(sim.steps().is_empty(), "one write in flight at a time");
    sim.input(Input::PortConfigCountWritten {
        epoch: sim.core.epoch(),
        count: 2,
        result: Ok(()),
    });
    assert_eq!(count_writes(&sim.steps()), [6], "the changes coalesce");
    sim.input(Input::PortConfigCountWritten {
        epoch: sim.core.epoch(),
        count: 6,
        result: Ok(()),
    });
    assert!(sim.steps().is_empty());
    let c = sim.core.port_config_count().expect("following");
    assert_eq!((c.count(), c.acked()), (6, 6));

    // Back to 1x: three DELs, one write.
    for name in ["Ethernet1", "Ethernet2", "Ethernet3"] {
        sim.input(config_del(name));
    }
    assert_eq!(count_writes(&sim.steps()), [3]);
    sim.input(Input::PortConfigCountWritten {
        epoch: sim.core.epoch(),
        count: 3,
        result: Ok(()),
    });
    assert!(sim.steps().is_empty());
    // Nothing else was touched: PortInitDone once, STATE_DB unchanged.
    assert_eq!(sim.core.init_done(), InitDone::Written);
    assert!(sim.core.writer().is_idle());
}

#[test]
fn without_the_option_config_changes_write_nothing() {
    let mut sim = Sim::live(&["Ethernet0"], &["Ethernet0"], &["Ethernet0"]);
    assert!(sim.core.port_config_count().is_none());
    sim.input(config_del("Ethernet0"));
    sim.input(config_set("Ethernet1"));
    sim.input(Input::PortConfigCountWritten {
        epoch: sim.core.epoch(),
        count: 1,
        result: Ok(()),
    });
    assert!(sim.steps().is_empty());
}

#[test]
fn start_up_difference_is_written_at_once() {
    // Step 7 wrote count=1; a port was added before the subscription.
    let mut sim = Sim::with_count(
        &["Ethernet0"],
        &[],
        None,
        Some(PortConfigCount::new(
            1,
            names_of(&["Ethernet0", "Ethernet4"]),
        )),
    );
    assert_eq!(count_writes(&sim.steps()), [2]);
}

#[test]
fn count_write_error_reply_is_retried_after_a_delay() {
    let mut sim = counting();
    sim.input(config_set("Ethernet12"));
    assert_eq!(count_writes(&sim.steps()), [4]);
    sim.input(Input::PortConfigCountWritten {
        epoch: sim.core.epoch(),
        count: 4,
        result: Err(reply_error()),
    });
    assert_eq!(sim.core.redis(), Redis::Up, "an error reply is no loss");
    assert!(sim.steps().is_empty(), "not at once");
    let at = sim.fire();
    assert_eq!(sim.since_t0(at), Duration::from_millis(100));
    assert_eq!(count_writes(&sim.steps()), [4]);
    sim.input(Input::PortConfigCountWritten {
        epoch: sim.core.epoch(),
        count: 4,
        result: Err(reply_error()),
    });
    let before = sim.now;
    let at = sim.fire();
    assert_eq!(at - before, Duration::from_millis(200), "the delay grows");
    // Meanwhile the port went away again: nothing left to write.
    sim.input(config_del("Ethernet12"));
    assert!(sim.steps().is_empty());
    assert_eq!(sim.core.stats().redis_write_errors, 2);
}

#[test]
fn count_write_lost_with_redis_is_decided_again_after_the_reconnect() {
    let mut sim = counting();
    sim.input(config_set("Ethernet12"));
    assert_eq!(count_writes(&sim.steps()), [4]);
    sim.input(Input::PortConfigCountWritten {
        epoch: sim.core.epoch(),
        count: 4,
        result: Err(lost_error()),
    });
    assert_eq!(sim.core.redis(), Redis::Reconnecting);
    let steps = sim.steps();
    assert!(
        matches!(steps.last(), Some(Step::Do(Action::Reconnect { .. }))),
        "{steps:?}"
    );
    // Changes while away are not written.
    sim.input(config_set("Ethernet16"));
    assert!(count_writes(&sim.steps()).is_empty());
    // The fresh CONFIG_DB load decides: 5 ports.
    sim.input(Input::Reconnected {
        epoch: sim.core.epoch(),
        present: present(&["Ethernet0", "Ethernet4", "Ethernet8"]),
        config_ports: Some(names_of(&[
            "Ethernet0",
            "Ethernet4",
            "Ethernet8",
            "Ethernet12",
            "Ethernet20",
        ])),
    });
    // STATE_DB is read back first; the count goes out once Redis is up.
    let steps = sim.steps();
    assert!(count_writes(&steps).is_empty(), "{steps:?}");
    let [Step::Do(Action::ReadStateForResync { id, .. })] = steps.as_slice() else {
        panic!("{steps:?}");
    };
    sim.input(Input::ResyncRead {
        id: *id,
        result: Ok(["Ethernet0", "Ethernet4", "Ethernet8"]
            .iter()
            .map(|n| (n.to_string(), values("up", "up", "9100")))
            .collect()),
    });
    assert_eq!(count_writes(&sim.steps()), [5]);
    sim.input(Input::PortConfigCountWritten {
        epoch: sim.core.epoch(),
        count: 5,
        result: Ok(()),
    });
    assert!(sim.steps().is_empty());
}

#[test]
fn a_count_write_of_the_old_session_failing_after_a_reconnect_is_not_a_new_loss() {
    let mut sim = counting();
    sim.input(config_set("Ethernet12"));
    assert_eq!(count_writes(&sim.steps()), [4]);
    sim.input(Input::SubscriptionLost {
        epoch: sim.core.epoch(),
        error: lost_error(),
    });
    sim.steps();
    sim.input(Input::Reconnected {
        epoch: sim.core.epoch(),
        present: present(&["Ethernet0", "Ethernet4", "Ethernet8"]),
        config_ports: Some(names_of(&[
            "Ethernet0",
            "Ethernet4",
            "Ethernet8",
            "Ethernet12",
        ])),
    });
    sim.input(Input::PortConfigCountWritten {
        epoch: 0,
        count: 4,
        result: Err(lost_error()),
    });
    let steps = sim.steps();
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::Do(Action::Reconnect { .. }))),
        "{steps:?}"
    );
    assert_ne!(sim.core.redis(), Redis::Reconnecting);
}

#[test]
fn sigterm_waits_for_a_wanted_count_write() {
    let mut sim = counting();
    sim.input(config_del("Ethernet8"));
    sim.core.begin_shutdown(sim.now);
    assert!(
        !sim.core.is_stopped(),
        "a breakout just before a warm reboot"
    );
    assert_eq!(count_writes(&sim.steps()), [2]);
    assert!(!sim.core.is_stopped(), "in flight");
    sim.input(Input::PortConfigCountWritten {
        epoch: sim.core.epoch(),
        count: 2,
        result: Ok(()),
    });
    assert!(sim.core.is_stopped());
}

/// The core's stats as the driver publishes them: `/metrics` text.
fn metrics_text(core: &mut PortCore) -> String {
    let metrics = Metrics::new("portsyncd");
    let mut publisher = Publisher::new(metrics.clone(), Health::new(&metrics));
    publisher.publish(core.stats_mut());
    metrics.encode()
}
