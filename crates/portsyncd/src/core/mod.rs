//! portsyncd's I/O-free core: every decision of the running daemon as a
//! state machine driven by [`sonic_daemon::engine::Driver`]
//! (docs/behavior.md d.3, d.4, f.5, f.8).
//!
//! Inputs: kernel link messages ([`Core::handle_kernel`](engine::Core::handle_kernel)), APPL_DB /
//! STATE_DB `PORT_TABLE` changes and the results of the Redis work it asked
//! for ([`Input`]), the clock ([`Core::handle_timeout`](engine::Core::handle_timeout)) and SIGTERM
//! ([`Core::begin_shutdown`](engine::Core::begin_shutdown)). Outputs: [`Action`]s and link dump
//! requests from `poll_action`, its one timer from `poll_timeout`. It never
//! awaits and never reads a clock.
//!
//! Where the daemon is in its life is one [`Phase`]; the Redis session is
//! [`Redis`]; PortInitDone is [`InitDone`]; the self-audit is [`Audit`].
//! Transitions live in `kernel.rs` (link messages, dumps) and `inputs.rs`
//! (Redis results, subscriptions, the audit).
//!
//! * Writes: the rules ([`PortSync`]) decide STATE_DB `PORT_TABLE|<name>`
//!   writes, the [`StateWriter`] coalesces them per port. As soon as
//!   something is staged and no flush is in flight, everything staged goes
//!   out as one [`Action::FlushState`]; what arrives meanwhile rides the
//!   next one. While a flush is in flight the kernel's messages wait in the
//!   socket buffer, at most [`FLUSH_READ_PAUSE`].
//! * An error reply: the batch is kept and retried after a delay
//!   ([`Backoff`], 100 ms doubling to 5 s).
//! * Redis lost: never fatal. The link state stays in memory;
//!   [`Action::Reconnect`]; then the fresh APPL_DB load is applied, every
//!   port's state is staged again, STATE_DB is read back
//!   ([`Action::ReadStateForResync`]) and only the difference is written.
//! * ENOBUFS, and after each self-audit: the links are dumped again; links
//!   known before that neither the dump nor a notification lists are
//!   deleted (mark and sweep, [`Phase::Resyncing`]).
//! * SIGTERM: what is pending is written, then [`Core::is_stopped`](engine::Core::is_stopped).
//! * `--port-config-count-follows-config` (off by default): CONFIG_DB
//!   `PORT` key changes keep APPL_DB `PORT_TABLE:PortConfigDone` `count`
//!   equal to the number of configured ports after start-up
//!   ([`PortConfigCount`], [`Action::WritePortConfigCount`]; `count.rs`).

mod count;
mod inputs;
mod kernel;
mod types;
pub use sonic_daemon::session::Epoch;
pub use types::{
    Action, Audit, AuditReadout, InitDone, Input, LinkDump, Phase, ReadBack, Redis, Setup, Timer,
};
#[cfg(test)]
mod tests;

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use sonic_daemon::engine::{self, Backoff, Step};
use sonic_daemon::session::{Flight, Session};
use sonic_daemon::stats::Stats;
use sonic_daemon::timer::TimerTable;
use sonic_netlink::socket::{Received, SocketError};
use sonic_netlink::LinkTable;
use swss::SwssError;

use crate::error::DaemonError;
use crate::sync::{PortConfigCount, PortSync};
use crate::writer::StateWriter;

/// How often the ports still holding back PortInitDone are logged (warning).
pub const INIT_DONE_WARN_INTERVAL: Duration = Duration::from_secs(30);
pub use sonic_daemon::engine::FLUSH_READ_PAUSE;
/// Wait before asking again for a link dump the socket refused.
pub const DUMP_RETRY_DELAY: Duration = Duration::from_millis(100);
/// The `table` label of STATE_DB `PORT_TABLE` writes (APPL_DB's is
/// `PORT_TABLE`).
pub const STATE_PORT_TABLE_METRIC: &str = "STATE_PORT_TABLE";

/// portsyncd's core (module docs).
pub struct PortCore {
    phase: Phase,
    /// The Redis session (connected or not, its epoch).
    session: Session,
    /// After a reconnect, STATE_DB is read back before writes resume
    /// (`Some(read)`: the request in flight, `None` until sent); see
    /// [`Redis::ReadingBack`].
    read_back: Option<Option<u64>>,
    init_done: InitDone,
    audit: Audit,
    audit_every: Option<Duration>,
    sync: PortSync,
    writer: StateWriter,
    /// The netdevs known to exist, handled or not (sonic-netlink's link
    /// table, kept from every link message; for the sweep at the end of a
    /// resync dump).
    links: LinkTable,
    /// The STATE_DB flush in flight, its read hold and retry backoff
    /// ([`Timer::FlushHold`], [`Timer::FlushRetry`]).
    flight: Flight<Timer>,
    /// Every deadline ([`Timer`]).
    timers: TimerTable<Timer>,
    init_backoff: Backoff,
    next_read_id: u64,
    /// A link dump has completed (READY=1 waits for one).
    dumped: bool,
    ready_sent: bool,
    /// Ports with a STATE_DB entry written by us.
    state_entries: HashSet<String>,
    /// `--port-config-count-follows-config` (`None`: off).
    config_count: Option<PortConfigCount>,
    count_backoff: Backoff,
    overruns: u64,
    steps: VecDeque<Step<Action>>,
    /// Counters, gauges and Redis health, published by the driver.
    stats: Stats,
}

// ===== impl PortCore: set-up, writes, timers =====

impl PortCore {
    /// The core at start-up, `now`: the start-up link dump is in flight
    /// (requested by the glue before the port config was read), Redis is
    /// up.
    pub fn new(setup: Setup, now: Instant) -> Self {
        let mut timers = TimerTable::new();
        timers.set(Timer::InitDoneWarn, now + INIT_DONE_WARN_INTERVAL);
        if let Some(every) = setup.audit_every {
            timers.set(Timer::Audit, now + every);
        }
        PortCore {
            phase: Phase::StartupDump(LinkDump::InFlight { again: None }),
            session: Session::new(),
            read_back: None,
            init_done: InitDone::Waiting,
            audit: match setup.audit_every {
                Some(_) => Audit::Waiting,
                None => Audit::Off,
            },
            audit_every: setup.audit_every,
            sync: setup.sync,
            writer: StateWriter::new(),
            links: LinkTable::new(),
            flight: Flight::new(Timer::FlushHold, Timer::FlushRetry),
            timers,
            init_backoff: Backoff::new(),
            next_read_id: 0,
            dumped: false,
            ready_sent: false,
            state_entries: HashSet::new(),
            config_count: setup.port_config_count,
            count_backoff: Backoff::new(),
            overruns: 0,
            steps: VecDeque::new(),
            stats: Stats::new(),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The Redis session.
    pub fn redis(&self) -> Redis {
        match (self.session.is_up(), self.read_back) {
            (false, _) => Redis::Reconnecting,
            (true, Some(read)) => Redis::ReadingBack { read },
            (true, None) => Redis::Up,
        }
    }

    /// The current Redis session (work sent now carries it).
    pub fn epoch(&self) -> Epoch {
        self.session.epoch()
    }

    /// The counters and gauges (read-only: tests and logs; the driver
    /// publishes them).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// PortInitDone's state.
    pub fn init_done(&self) -> InitDone {
        self.init_done
    }

    /// The self-audit's state.
    pub fn audit(&self) -> Audit {
        self.audit
    }

    /// The rules' state.
    pub fn sync(&self) -> &PortSync {
        &self.sync
    }

    /// The pending and in-flight STATE_DB writes.
    pub fn writer(&self) -> &StateWriter {
        &self.writer
    }

    /// The PortConfigDone count follower (`None` without
    /// `--port-config-count-follows-config`).
    pub fn port_config_count(&self) -> Option<&PortConfigCount> {
        self.config_count.as_ref()
    }

    fn read_id(&mut self) -> u64 {
        self.next_read_id += 1;
        self.next_read_id
    }

    /// Writes are allowed at `now`: Redis up, no read of STATE_DB in flight
    /// (reads and writes never overlap, so a read sees every write before
    /// it), no flush in flight and no retry delay running ([`Flight`]).
    fn may_flush(&self, now: Instant) -> bool {
        self.redis() == Redis::Up
            && !matches!(self.audit, Audit::Reading { .. })
            && self.flight.may_send(&self.timers, now)
    }

    /// The next flush, if one may start.
    fn next_flush(&mut self, now: Instant) -> Option<Action> {
        if !self.may_flush(now) {
            return None;
        }
        let batch = self.writer.take_batch()?;
        let epoch = self.session.epoch();
        self.flight.send(&mut self.timers, now, epoch, false);
        Some(Action::FlushState { epoch, batch })
    }

    /// PortInitDone, once decided, as soon as Redis is up.
    fn next_init_done(&mut self) -> Option<Action> {
        if self.init_done == InitDone::Waiting && self.sync.take_port_init_done() {
            tracing::info!("all configured ports seen: PortInitDone");
            self.init_done = InitDone::Due;
            self.timers.stop(Timer::InitDoneWarn);
        }
        if self.init_done == InitDone::Due && self.redis() == Redis::Up {
            self.init_done = InitDone::Writing;
            return Some(Action::WritePortInitDone {
                epoch: self.session.epoch(),
            });
        }
        None
    }

    /// The read of a resync after a reconnect, or of a due audit, once no
    /// flush is in flight.
    fn next_read(&mut self, now: Instant) -> Option<Action> {
        if self.writer.in_flight() {
            return None;
        }
        if self.redis() == (Redis::ReadingBack { read: None }) {
            let names = self.writer.plain_sets();
            if names.is_empty() {
                self.redis_up();
                return None;
            }
            let id = self.read_id();
            self.read_back = Some(Some(id));
            return Some(Action::ReadStateForResync { id, names });
        }
        if self.audit == Audit::Due && self.redis() == Redis::Up {
            return self.start_audit(now);
        }
        None
    }

    /// READY=1 once the start-up dump ended and its writes are
    /// acknowledged (PortInitDone may still wait for orchagent).
    fn next_ready(&mut self) -> Option<Step<Action>> {
        if self.ready_sent || !self.dumped || self.redis() != Redis::Up || !self.writer.is_idle() {
            return None;
        }
        self.ready_sent = true;
        if self.sync.is_warm() {
            self.stats.warm_restart_state = Some("reconciled");
        }
        Some(Step::Ready(format!(
            "synced: {} ports in STATE_DB PORT_TABLE, {} holding back PortInitDone",
            self.state_entries.len(),
            self.sync.pending_count()
        )))
    }

    /// The link dump the phase wants, if any.
    fn next_dump(&mut self) -> Option<Step<Action>> {
        let dump = match &mut self.phase {
            Phase::StartupDump(d) | Phase::Resyncing { dump: d, .. } => d,
            Phase::Live | Phase::ShuttingDown => return None,
        };
        if *dump != LinkDump::Wanted {
            return None;
        }
        *dump = LinkDump::InFlight { again: None };
        Some(Step::Dump(sonic_netlink::socket::Dump::Links))
    }

    /// Redis is usable again: writes go out.
    fn redis_up(&mut self) {
        self.read_back = None;
        self.stats.redis_up();
        self.steps.push_back(Step::Status("running".to_string()));
    }

    /// Redis went away, as seen by work sent on `epoch`: keep everything,
    /// reconnect (once: a loss reported by work of an older session, or
    /// reported again, changes nothing).
    fn lost(&mut self, now: Instant, epoch: Epoch, e: &SwssError) {
        if !self.session.is_current(epoch) {
            return;
        }
        let Some(epoch) = self.session.lose() else {
            return;
        };
        tracing::warn!(error = %e, "lost Redis; keeping link state and reconnecting");
        self.stats.redis_down(e);
        self.read_back = None;
        if let Audit::Reading { .. } = self.audit {
            self.schedule_audit(now);
        }
        self.steps
            .push_back(Step::Status("Redis lost; reconnecting".to_string()));
        self.steps.push_back(Step::Do(Action::Reconnect { epoch }));
    }

    /// The next audit one period from `now` (none when audits are off or
    /// the daemon is stopping).
    fn schedule_audit(&mut self, now: Instant) {
        self.audit = match self.audit_every {
            Some(every) if self.phase != Phase::ShuttingDown => {
                self.timers.set(Timer::Audit, now + every);
                Audit::Waiting
            }
            _ => {
                self.timers.stop(Timer::Audit);
                Audit::Off
            }
        };
    }

    /// Exports the gauges that follow the state.
    fn update_gauges(&mut self) {
        self.stats.entries = Some(self.state_entries.len() as u64);
        self.stats.ports_pending = Some(self.sync.pending_count() as u64);
    }

    fn on_timeout(&mut self, now: Instant) {
        for timer in self.timers.expire(now) {
            match timer {
                Timer::InitDoneWarn => {
                    tracing::warn!(pending = ?self.sync.pending_ports(),
                        "PortInitDone still held back by ports whose host interface was not seen");
                    self.timers
                        .set(Timer::InitDoneWarn, now + INIT_DONE_WARN_INTERVAL);
                }
                Timer::FlushHold => self.flight.hold_expired(),
                // Writes only check that it is not armed.
                Timer::FlushRetry | Timer::CountRetry => {}
                Timer::InitDoneRetry => {
                    if self.init_done == InitDone::Retry {
                        self.init_done = InitDone::Due;
                    }
                }
                Timer::Audit => {
                    if self.audit == Audit::Waiting {
                        self.audit_timer(now);
                    }
                }
                Timer::DumpRetry => {
                    if let Phase::StartupDump(d) | Phase::Resyncing { dump: d, .. } =
                        &mut self.phase
                    {
                        if *d == LinkDump::Retry {
                            *d = LinkDump::Wanted;
                        }
                    }
                }
            }
        }
    }

    /// The deadline of `timer`, if armed (for tests and logs).
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// The audit period has passed: due, or skipped while Redis is away or
    /// the daemon is stopping.
    fn audit_timer(&mut self, now: Instant) {
        if self.redis() == Redis::Up && self.phase != Phase::ShuttingDown {
            self.audit = Audit::Due;
        } else {
            self.schedule_audit(now);
        }
    }
}

// ===== the engine's view =====

impl engine::Core for PortCore {
    type Input = Input;
    type Action = Action;
    type Error = DaemonError;

    fn handle_kernel(&mut self, now: Instant, msgs: &mut Vec<Received>, overrun: bool) {
        self.kernel(now, msgs, overrun);
    }

    fn handle_dump_request_failed(&mut self, now: Instant, error: SocketError) {
        self.dump_request_failed(now, &error);
    }

    fn handle_input(&mut self, now: Instant, input: Input) {
        self.input(now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.on_timeout(now);
    }

    fn begin_shutdown(&mut self, _now: Instant) {
        self.phase = Phase::ShuttingDown;
        if !matches!(self.audit, Audit::Reading { .. }) {
            self.audit = Audit::Off;
            self.timers.stop(Timer::Audit);
        }
    }

    fn poll_action(&mut self, now: Instant) -> Option<Step<Action>> {
        if let Some(step) = self.steps.pop_front() {
            return Some(step);
        }
        let next = self
            .next_dump()
            .or_else(|| self.next_init_done().map(Step::Do))
            .or_else(|| self.next_count_write().map(Step::Do))
            .or_else(|| self.next_flush(now).map(Step::Do))
            .or_else(|| self.next_read(now).map(Step::Do))
            .or_else(|| self.steps.pop_front())
            .or_else(|| self.next_ready());
        if next.is_none() {
            self.update_gauges();
        }
        next
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn reads_kernel(&self, _now: Instant) -> bool {
        !self.flight.holds_reads()
    }

    fn is_stopped(&self) -> bool {
        self.phase == Phase::ShuttingDown
            && self.writer.is_idle()
            && !matches!(self.init_done, InitDone::Due | InitDone::Writing)
            && !self.count_write_pending()
            && !matches!(self.audit, Audit::Reading { .. })
    }

    fn take_error(&mut self) -> Option<DaemonError> {
        None
    }

    fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }
}
