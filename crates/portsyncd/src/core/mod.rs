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
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use sonic_daemon::engine::{self, Backoff, Step};
use sonic_daemon::metrics::{Metrics, ResyncCause};
use sonic_daemon::timer::{TimerName, TimerTable};
use sonic_daemon::Health;
use sonic_netlink::socket::{Received, SocketError};
use swss::{KeyOp, SwssError};

use crate::error::DaemonError;
use crate::sync::{PortConfigCount, PortSync};
use crate::writer::{StateBatch, StateWriter};

/// How often the ports still holding back PortInitDone are logged (warning).
pub const INIT_DONE_WARN_INTERVAL: Duration = Duration::from_secs(30);
pub use sonic_daemon::engine::FLUSH_READ_PAUSE;
/// Wait before asking again for a link dump the socket refused.
pub const DUMP_RETRY_DELAY: Duration = Duration::from_millis(100);
/// The `table` label of STATE_DB `PORT_TABLE` writes (APPL_DB's is
/// `PORT_TABLE`).
pub const STATE_PORT_TABLE_METRIC: &str = "STATE_PORT_TABLE";

// ===== inputs and actions =====

/// STATE_DB `PORT_TABLE|<name>` as read back: per port, the values of the
/// fields asked for in their order (`None` for an absent field), or `None`
/// when the key is not a hash (reported as a bad entry by the reader).
pub type ReadBack = Vec<(String, Option<Vec<Option<String>>>)>;

/// What [`Action::ReadStateForAudit`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReadout {
    /// `HMGET PORT_TABLE|<name>` of [`crate::sync::STATE_FIELDS`] per port
    /// of `names`.
    pub fields: ReadBack,
    /// `HEXISTS PORT_TABLE|<name> netdev_oper_status` per port of `gone`
    /// (`false` also for a key that is not a hash).
    pub exists: Vec<(String, bool)>,
}

/// Results of work done for the core, and the subscriptions' changes.
#[derive(Debug)]
pub enum Input {
    /// One change of APPL_DB `PORT_TABLE` (a `Presence` subscription: live
    /// Sets carry no fields).
    Appl(KeyOp),
    /// STATE_DB `PORT_TABLE|<name>` was deleted (by anyone, us included).
    StateDeleted(String),
    /// A subscription failed: the connection is gone (or unusable).
    SubscriptionLost(SwssError),
    /// The result of an [`Action::FlushState`], with its batch handed back.
    Flushed {
        /// The batch.
        batch: StateBatch,
        /// The pipeline's outcome (a key of the wrong type is not an error:
        /// it is reported and skipped).
        result: Result<(), SwssError>,
    },
    /// The result of [`Action::WritePortInitDone`].
    InitDoneWritten(Result<(), SwssError>),
    /// One change of CONFIG_DB `PORT` (a `Presence` subscription, followed
    /// only with `--port-config-count-follows-config`): `Set(name, _)` the
    /// key `PORT|<name>` exists, `Del(name)` it is gone.
    ConfigPort(KeyOp),
    /// The result of [`Action::WritePortConfigCount`] for `count`.
    PortConfigCountWritten {
        /// The count that was written.
        count: usize,
        /// The producer write's outcome.
        result: Result<(), SwssError>,
    },
    /// The result of [`Action::Reconnect`]: connected again and subscribed
    /// again; `present` is the fresh APPL_DB `PORT_TABLE` load (port key ->
    /// the hash has `admin_status`, markers left out).
    Reconnected {
        /// The load.
        present: BTreeMap<String, bool>,
        /// The fresh CONFIG_DB `PORT` keys (port names), when they are
        /// followed (`--port-config-count-follows-config`); `None` otherwise.
        config_ports: Option<Vec<String>>,
    },
    /// The result of an [`Action::ReadStateForResync`].
    ResyncRead {
        /// The request's id.
        id: u64,
        /// The values, or why they could not be read.
        result: Result<ReadBack, SwssError>,
    },
    /// The result of an [`Action::ReadStateForAudit`].
    AuditRead {
        /// The request's id.
        id: u64,
        /// What was read, or why it could not be.
        result: Result<AuditReadout, SwssError>,
    },
}

/// Redis work the core asks for ([`Step::Do`]).
#[derive(Debug)]
pub enum Action {
    /// Write `batch` as one pipeline on STATE_DB (per port: `DEL`, then
    /// `HSET` of the four fields); answer [`Input::Flushed`].
    FlushState(StateBatch),
    /// Write APPL_DB `PORT_TABLE:PortInitDone lanes=0` through the
    /// ProducerStateTable; answer [`Input::InitDoneWritten`].
    WritePortInitDone,
    /// Write APPL_DB `PORT_TABLE:PortConfigDone count=<n>` (decimal)
    /// through the ProducerStateTable, as the cold start does
    /// ([`crate::sync::port_config_done_op`]); answer
    /// [`Input::PortConfigCountWritten`]. Only with
    /// `--port-config-count-follows-config`.
    WritePortConfigCount(usize),
    /// Read back `HMGET PORT_TABLE|<name>` of the four fields for `names`;
    /// answer [`Input::ResyncRead`].
    ReadStateForResync {
        /// Request id, echoed.
        id: u64,
        /// Port names.
        names: Vec<String>,
    },
    /// Read `HMGET PORT_TABLE|<name>` of the four fields for `names` and
    /// `HEXISTS PORT_TABLE|<name> netdev_oper_status` for `gone`; answer
    /// [`Input::AuditRead`].
    ReadStateForAudit {
        /// Request id, echoed.
        id: u64,
        /// Ports whose entry should hold their link state.
        names: Vec<String>,
        /// APPL_DB ports without a netdev.
        gone: Vec<String>,
    },
    /// Redis was lost: drop the connections and subscriptions, reconnect
    /// and subscribe again with backoff until it all works; answer
    /// [`Input::Reconnected`].
    Reconnect,
}

// ===== states =====

/// Where the daemon is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The start-up link dump (requested before the config was read) is
    /// being read; READY=1 goes out once it ended and was written.
    StartupDump(LinkDump),
    /// Following the kernel's link notifications.
    Live,
    /// The links are dumped again to repair lost events: known links
    /// neither the dump nor a notification lists (`seen`) are deleted at
    /// its end.
    Resyncing {
        /// Why (ENOBUFS, or the self-audit).
        why: ResyncCause,
        /// The dump.
        dump: LinkDump,
        /// Links announced by RTM_NEWLINK since the resync began.
        seen: HashSet<String>,
    },
    /// SIGTERM: writing what is pending; the kernel is no longer read.
    ShuttingDown,
}

/// The link dump of a [`Phase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkDump {
    /// To be requested.
    Wanted,
    /// The socket refused the request: wanted again when
    /// [`Timer::DumpRetry`] fires.
    Retry,
    /// Requested; its replies are being read.
    InFlight {
        /// Another resync was asked for meanwhile (and why): a fresh dump
        /// follows this one.
        again: Option<ResyncCause>,
    },
}

/// The Redis session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redis {
    /// Connected; writes go out.
    Up,
    /// Lost; [`Action::Reconnect`] is running.
    Reconnecting,
    /// Connected again; STATE_DB is read back (request `read`, once no
    /// flush is in flight) so only the difference is written. Writes wait.
    ReadingBack {
        /// The id of the [`Action::ReadStateForResync`] in flight.
        read: Option<u64>,
    },
}

/// APPL_DB `PORT_TABLE:PortInitDone` (written once per process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitDone {
    /// Configured ports still hold it back.
    Waiting,
    /// Decided; written as soon as Redis is up.
    Due,
    /// [`Action::WritePortInitDone`] in flight.
    Writing,
    /// The write got an error reply: due again when
    /// [`Timer::InitDoneRetry`] fires.
    Retry,
    /// Written.
    Written,
}

/// The periodic self-audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    /// No `--audit-interval`.
    Off,
    /// The next one starts when [`Timer::Audit`] fires.
    Waiting,
    /// Starts once Redis is up and no flush is in flight.
    Due,
    /// [`Action::ReadStateForAudit`] in flight (writes wait).
    Reading {
        /// The request id.
        id: u64,
    },
}

/// A flush in flight.
#[derive(Debug, Clone, Copy)]
struct Flight {
    /// The Redis session it was sent on ([`PortCore`]'s `session`).
    session: u64,
    /// Receive time of the oldest kernel event in it.
    since: Option<Instant>,
    /// Still holding kernel reads back (until [`Timer::FlushHold`],
    /// [`FLUSH_READ_PAUSE`] after it was sent).
    holds_reads: bool,
}

// ===== timers =====

/// The core's deadlines, one [`TimerTable`] entry each: `poll_timeout` is
/// the earliest, `handle_timeout` acts on each that expired by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The next "PortInitDone still held back" warning
    /// ([`INIT_DONE_WARN_INTERVAL`]).
    InitDoneWarn,
    /// The flush in flight stops holding kernel reads back
    /// ([`FLUSH_READ_PAUSE`] after it was sent).
    FlushHold,
    /// A flush got an error reply: none before this (backoff).
    FlushRetry,
    /// The PortInitDone write got an error reply: tried again (backoff).
    InitDoneRetry,
    /// The PortConfigDone count write got an error reply: none before
    /// this (backoff).
    CountRetry,
    /// The next self-audit (every `--audit-interval`).
    Audit,
    /// A link dump request the socket refused is wanted again.
    DumpRetry,
}

impl TimerName for Timer {
    const ALL: &'static [Timer] = &[
        Timer::InitDoneWarn,
        Timer::FlushHold,
        Timer::FlushRetry,
        Timer::InitDoneRetry,
        Timer::CountRetry,
        Timer::Audit,
        Timer::DumpRetry,
    ];
    fn index(self) -> usize {
        self as usize
    }
}

/// How the core is set up at start-up.
pub struct Setup {
    /// The rules, with the APPL_DB initial load applied and
    /// [`PortSync::finish_initial_load`] called.
    pub sync: PortSync,
    /// Metric families.
    pub metrics: Metrics,
    /// `/healthz` state.
    pub health: Health,
    /// Self-audit period; `None` disables it.
    pub audit_every: Option<Duration>,
    /// `--port-config-count-follows-config`: the CONFIG_DB `PORT` keys
    /// (subscription's initial load) and the count APPL_DB holds; `None`
    /// when off (the count is then only the cold start's, as the C++).
    pub port_config_count: Option<PortConfigCount>,
}

/// portsyncd's core (module docs).
pub struct PortCore {
    phase: Phase,
    redis: Redis,
    init_done: InitDone,
    audit: Audit,
    audit_every: Option<Duration>,
    sync: PortSync,
    writer: StateWriter,
    /// Handled-or-not netdev names known to exist -> ifindex (for the sweep
    /// at the end of a resync dump).
    known: HashMap<String, u32>,
    flight: Option<Flight>,
    /// Every deadline ([`Timer`]).
    timers: TimerTable<Timer>,
    flush_backoff: Backoff,
    init_backoff: Backoff,
    /// Receive time of the oldest staged kernel event not yet in a batch.
    unacked_since: Option<Instant>,
    next_read_id: u64,
    /// The Redis session: incremented when Redis is lost, so that a
    /// connection error of work sent on an older session (reported after
    /// the reconnect) does not count as a new loss.
    session: u64,
    /// The session the PortInitDone write in flight was sent on.
    init_session: u64,
    /// A link dump has completed (READY=1 waits for one).
    dumped: bool,
    ready_sent: bool,
    /// Ports with a STATE_DB entry written by us.
    state_entries: HashSet<String>,
    /// `--port-config-count-follows-config` (`None`: off).
    config_count: Option<PortConfigCount>,
    count_backoff: Backoff,
    /// The session the PortConfigDone count write in flight was sent on.
    count_session: u64,
    overruns: u64,
    steps: VecDeque<Step<Action>>,
    metrics: Metrics,
    health: Health,
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
            redis: Redis::Up,
            init_done: InitDone::Waiting,
            audit: match setup.audit_every {
                Some(_) => Audit::Waiting,
                None => Audit::Off,
            },
            audit_every: setup.audit_every,
            sync: setup.sync,
            writer: StateWriter::new(),
            known: HashMap::new(),
            flight: None,
            timers,
            flush_backoff: Backoff::new(),
            init_backoff: Backoff::new(),
            unacked_since: None,
            next_read_id: 0,
            session: 0,
            init_session: 0,
            dumped: false,
            ready_sent: false,
            state_entries: HashSet::new(),
            config_count: setup.port_config_count,
            count_backoff: Backoff::new(),
            count_session: 0,
            overruns: 0,
            steps: VecDeque::new(),
            metrics: setup.metrics,
            health: setup.health,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The Redis session.
    pub fn redis(&self) -> Redis {
        self.redis
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

    /// Writes are allowed: Redis up, no read of STATE_DB in flight (reads
    /// and writes never overlap, so a read sees every write before it), no
    /// retry delay running.
    fn may_flush(&self) -> bool {
        self.redis == Redis::Up
            && !matches!(self.audit, Audit::Reading { .. })
            && !self.timers.is_set(Timer::FlushRetry)
    }

    /// The next flush, if one may start.
    fn next_flush(&mut self, now: Instant) -> Option<Action> {
        if !self.may_flush() {
            return None;
        }
        let batch = self.writer.take_batch()?;
        self.flight = Some(Flight {
            session: self.session,
            since: self.unacked_since.take(),
            holds_reads: true,
        });
        self.timers.set(Timer::FlushHold, now + FLUSH_READ_PAUSE);
        Some(Action::FlushState(batch))
    }

    /// PortInitDone, once decided, as soon as Redis is up.
    fn next_init_done(&mut self) -> Option<Action> {
        if self.init_done == InitDone::Waiting && self.sync.take_port_init_done() {
            tracing::info!("all configured ports seen: PortInitDone");
            self.init_done = InitDone::Due;
            self.timers.stop(Timer::InitDoneWarn);
        }
        if self.init_done == InitDone::Due && self.redis == Redis::Up {
            self.init_done = InitDone::Writing;
            self.init_session = self.session;
            return Some(Action::WritePortInitDone);
        }
        None
    }

    /// The read of a resync after a reconnect, or of a due audit, once no
    /// flush is in flight.
    fn next_read(&mut self, now: Instant) -> Option<Action> {
        if self.writer.in_flight() {
            return None;
        }
        if self.redis == (Redis::ReadingBack { read: None }) {
            let names = self.writer.plain_sets();
            if names.is_empty() {
                self.redis_up();
                return None;
            }
            let id = self.read_id();
            self.redis = Redis::ReadingBack { read: Some(id) };
            return Some(Action::ReadStateForResync { id, names });
        }
        if self.audit == Audit::Due && self.redis == Redis::Up {
            return self.start_audit(now);
        }
        None
    }

    /// READY=1 once the start-up dump ended and its writes are
    /// acknowledged (PortInitDone may still wait for orchagent).
    fn next_ready(&mut self) -> Option<Step<Action>> {
        if self.ready_sent || !self.dumped || self.redis != Redis::Up || !self.writer.is_idle() {
            return None;
        }
        self.ready_sent = true;
        if self.sync.is_warm() {
            self.metrics.set_warm_restart_state("reconciled");
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
        self.redis = Redis::Up;
        self.health.set_redis_up();
        self.steps.push_back(Step::Status("running".to_string()));
    }

    /// Redis went away: keep everything, reconnect (once).
    fn lost(&mut self, now: Instant, e: &SwssError) {
        if self.redis == Redis::Reconnecting {
            return;
        }
        tracing::warn!(error = %e, "lost Redis; keeping link state and reconnecting");
        self.health.set_redis_down(e);
        self.redis = Redis::Reconnecting;
        self.session += 1;
        if let Audit::Reading { .. } = self.audit {
            self.schedule_audit(now);
        }
        self.steps
            .push_back(Step::Status("Redis lost; reconnecting".to_string()));
        self.steps.push_back(Step::Do(Action::Reconnect));
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
    fn update_gauges(&self) {
        self.metrics.entries.set(self.state_entries.len() as i64);
        self.metrics
            .ports_pending
            .set(self.sync.pending_count() as i64);
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
                Timer::FlushHold => {
                    if let Some(f) = self.flight.as_mut() {
                        f.holds_reads = false;
                    }
                }
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
        if self.redis == Redis::Up && self.phase != Phase::ShuttingDown {
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
        !self.flight.is_some_and(|f| f.holds_reads)
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
}
