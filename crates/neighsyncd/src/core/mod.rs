//! neighsyncd's I/O-free core: every decision the daemon makes, as a
//! state machine driven by [`sonic_daemon::engine::Driver`]
//! (docs/engine.md; docs/behavior.md b, c).
//!
//! Inputs: kernel messages (`handle_kernel`), results of the
//! Redis work it asked for and CONFIG_DB changes ([`Input`]), the clock
//! (`handle_timeout`) and SIGTERM (`begin_shutdown`).
//! Outputs: [`Action`]s (flush a batch, read APPL_DB, reconnect, write the
//! warm reconcile, ...) and netlink dump requests, from `poll_action`; its
//! one timer from `poll_timeout`. It never awaits and never reads a clock.
//!
//! Where the daemon is in its life is one [`Phase`]; the Redis session
//! and the flush in flight are sonic-daemon's [`Session`] and [`Flight`],
//! as portsyncd's. Every transition is in
//! `kernel.rs` (dumps, links, neighbours) or `inputs.rs` (Redis, CONFIG_DB,
//! warm start, audit).
//!
//! * Writes: every decided op goes to the writer ([`NeighWriter`]) or,
//!   while a warm start caches, to the reconcile cache ([`WarmCache`]). As
//!   soon as no flush is in flight the writer's next batch goes out as one
//!   [`Action::Flush`]; what arrives meanwhile is coalesced into the next.
//! * Reading the kernel (`reads_kernel`): while a flush is in
//!   flight live events wait in the socket buffer (at most
//!   [`FLUSH_READ_PAUSE`]); a neighbour dump keeps being read until
//!   [`DUMP_BACKLOG_KEYS`] wait, and then not before the flight lands,
//!   however long it takes. In a storm reads are spaced
//!   ([`READ_COALESCE_MIN`] doubling to [`READ_COALESCE_MAX`]).
//! * ENOBUFS, an interface rename, a CONFIG_DB fact change: the kernel is
//!   dumped again, mark and sweep ([`Phase::Resyncing`]).
//! * Redis lost: never fatal. The desired table stays in memory;
//!   [`Action::Reconnect`]; then [`NeighWriter::resync_from_appl`] and the
//!   difference is written.
//! * SIGTERM: what is pending is flushed, then `is_stopped`.

mod inputs;
pub use inputs::apply_cfg;
mod kernel;
mod types;
pub use types::{
    Action, DumpStage, Epoch, Input, KernelDump, Phase, Redis, Setup, Stopping, Timer,
};
use types::{AuditClock, NeighEventCounters, Ready, Warm, WarmClock};
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sonic_daemon::engine::{self, Step};
use sonic_daemon::session::{Flight, Session};
use sonic_daemon::stats::Stats;
use sonic_daemon::timer::TimerTable;
use sonic_netlink::link::LinkTable;
use sonic_netlink::socket::{Received, SocketError};
use swss::ConsumerView;

use crate::context::SyncContext;
use crate::error::DaemonError;
use crate::failed::FailedTable;
use crate::warm::WarmCache;
use crate::writer::{Batch, NeighWriter};

/// Largest number of keys per flush (one pipeline; the producer splits it
/// into transactions of at most `swss::producer_state::MAX_KEYS_PER_BATCH`).
/// Redis CPU per key grows with the transaction's size beyond this
/// (docs/performance.md).
pub const FLUSH_MAX_KEYS: usize = 1024;
/// Dump backpressure: while a neighbour dump runs and a flush is in
/// flight, the netlink socket is not read once this many keys wait in the
/// writer (the rest of the dump waits in the kernel, which generates it as
/// it is read). Two flushes' worth keeps Redis busy without the whole
/// table piling up pending. The bound holds for the whole flight, not only
/// its first [`FLUSH_READ_PAUSE`]: a flush slower than that would otherwise
/// let the rest of the dump be read in at once (1M neighbours: about
/// 150 MiB pending, and every writer lookup a cache miss). Notifications
/// arriving meanwhile wait in the socket buffer; should it overflow, the
/// ENOBUFS starts the dump again.
pub const DUMP_BACKLOG_KEYS: usize = 2 * FLUSH_MAX_KEYS;
pub use sonic_daemon::engine::FLUSH_READ_PAUSE;
/// Read spacing in an event storm. A read that returns more than one
/// kernel message while no dump runs means events arrive faster than they
/// are handled: the next read waits (the socket out of epoll), first
/// [`READ_COALESCE_MIN`], doubling while the storm lasts up to
/// [`READ_COALESCE_MAX`]; a read of one message resets it to no wait. An
/// isolated event is read and flushed at once. The flush of what was read
/// is never held back.
pub const READ_COALESCE_MIN: Duration = Duration::from_millis(1);
/// See [`READ_COALESCE_MIN`].
pub const READ_COALESCE_MAX: Duration = Duration::from_millis(4);
/// After the self-audit's kernel dump: how long a change the dump showed
/// may wait for its notification before it counts as drift
/// ([`NeighWriter::track_suspects`]).
pub const AUDIT_GRACE: Duration = Duration::from_millis(500);
/// The first wait before retrying a flush that failed with an error reply
/// (not a lost connection); it doubles up to 5 s while the replies stay
/// errors, as portsyncd's (`swss::connector::Backoff`, the one retry
/// schedule of both daemons).
pub const FLUSH_ERROR_RETRY: Duration = swss::connector::RECONNECT_INITIAL_DELAY;
/// Wait before re-sending a netlink dump request the socket refused.
pub const DUMP_RETRY: Duration = Duration::from_secs(1);

/// neighsyncd's core (module docs).
pub struct NeighCore {
    phase: Phase,
    /// The Redis session (up / reconnecting, its epoch).
    session: Session,
    ctx: SyncContext,
    links: LinkTable,
    /// A link table being rebuilt by a link dump.
    fresh_links: Option<LinkTable>,
    writer: NeighWriter,
    /// APPL_DB `NEIGH_FAILED_TABLE` (dual-ToR), written in every phase.
    failed: FailedTable,
    warm: Option<Warm>,
    /// The flush in flight, its read hold and retry backoff
    /// ([`Timer::FlushHold`], [`Timer::FlushRetry`]).
    flight: Flight<Timer>,
    /// SIGTERM came ([`Stopping`]).
    stopping: Option<Stopping>,
    /// Every deadline ([`Timer`]).
    timers: TimerTable<Timer>,
    /// The current storm read spacing (zero when calm).
    read_window: Duration,
    audit_every: Option<Duration>,
    audit: AuditClock,
    ready: Ready,
    overruns: u64,
    error: Option<DaemonError>,
    steps: VecDeque<Step<Action>>,
    /// Counters, gauges and Redis health, published by the driver.
    stats: Stats,
    neigh_events: NeighEventCounters,
}

// ===== impl NeighCore: set-up, flushing, READY =====

impl NeighCore {
    fn new(
        mut setup: Setup,
        phase: Phase,
        warm: Option<Warm>,
        warm_state: &'static str,
        now: Instant,
    ) -> Self {
        let setup_failed = std::mem::take(&mut setup.failed);
        let mut stats = Stats::new();
        stats.warm_restart_state = Some(warm_state);
        let mut core = NeighCore {
            phase,
            session: Session::new(),
            ctx: setup.ctx,
            links: LinkTable::new(),
            fresh_links: Some(LinkTable::new()),
            writer: NeighWriter::new(),
            failed: FailedTable::new(),
            warm,
            flight: Flight::new(Timer::FlushHold, Timer::FlushRetry),
            stopping: None,
            timers: TimerTable::new(),
            read_window: Duration::ZERO,
            audit_every: setup.audit_every,
            audit: AuditClock::Off,
            ready: Ready::NotYet,
            overruns: 0,
            error: None,
            steps: VecDeque::new(),
            neigh_events: NeighEventCounters::new(&mut stats),
            stats,
        };
        core.failed.seed(setup_failed);
        if let Some(every) = core.audit_every {
            core.timers.set(Timer::Audit, now + every);
            core.audit = AuditClock::Waiting;
        }
        core.steps
            .push_back(Step::Dump(sonic_netlink::socket::Dump::Links));
        core
    }

    /// Cold start: APPL_DB's `view` seeds the writer
    /// ([`NeighWriter::begin_cold`]); the kernel dump follows at once. The
    /// Redis session is epoch 0.
    pub fn cold(setup: Setup, view: &ConsumerView, now: Instant) -> Self {
        let mut core = NeighCore::new(
            setup,
            Phase::ColdSync(KernelDump::links()),
            None,
            "disabled",
            now,
        );
        core.writer.begin_cold(view);
        core
    }

    /// Warm start: `cache` holds APPL_DB as restored; the kernel dump goes
    /// into it. `flag_set`: the restore flag was already set when APPL_DB
    /// was read (the reconcile `timer` starts now); otherwise it is
    /// watched for at most `restore_wait`.
    pub fn warm(
        setup: Setup,
        cache: WarmCache,
        flag_set: bool,
        timer: Duration,
        restore_wait: Duration,
        now: Instant,
    ) -> Self {
        tracing::info!(
            limit_secs = restore_wait.as_secs_f64(),
            "warm start: waiting for NEIGH_RESTORE_TABLE|Flags restored=true"
        );
        let clock = if flag_set {
            log_flag_seen(Duration::ZERO, timer);
            WarmClock::Timer
        } else {
            WarmClock::WaitFlag {
                since: now,
                limit: restore_wait,
            }
        };
        let window = Warm::Caching {
            cache: Box::new(cache),
            clock,
            timer,
        };
        let mut core = NeighCore::new(
            setup,
            Phase::WarmCaching(KernelDump::links()),
            Some(window),
            "restored",
            now,
        );
        if flag_set {
            core.timers.set(Timer::Reconcile, now + timer);
        } else {
            core.timers.set(Timer::RestoreFlagLimit, now + restore_wait);
        }
        if !flag_set {
            core.act(Action::WatchRestoreFlag);
        }
        core
    }

    /// The phase (for tests and logs).
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The Redis session state.
    pub fn redis(&self) -> Redis {
        self.session.state()
    }

    /// The deadline of `timer`, if armed (for tests and logs).
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// The counters and gauges (read-only: tests and logs; the driver
    /// publishes them).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The writer (read-only: tests and the exit report).
    pub fn writer(&self) -> &NeighWriter {
        &self.writer
    }

    /// What is published in APPL_DB `NEIGH_FAILED_TABLE` (read-only).
    pub fn failed(&self) -> &FailedTable {
        &self.failed
    }

    /// The CONFIG_DB facts.
    pub fn context(&self) -> &SyncContext {
        &self.ctx
    }

    fn act(&mut self, action: Action) {
        self.steps.push_back(Step::Do(action));
    }

    /// Whether a batch may go out now: connected, nothing in flight, no
    /// error reply waiting out its retry delay.
    fn may_flush(&self, now: Instant) -> bool {
        self.session.is_up()
            && self.stopping != Some(Stopping::GaveUp)
            && self.flight.may_send(&self.timers, now)
    }

    /// Whether the writer's `NEIGH_TABLE` work may go out (not in the warm
    /// phases, nor while the self-audit reads APPL_DB). `NEIGH_FAILED_TABLE`
    /// work goes out in every phase, warm start included, as the C++'s.
    fn may_flush_neigh(&self) -> bool {
        let phase_allows = !matches!(
            self.phase,
            Phase::WarmCaching(_)
                | Phase::RestoreWait
                | Phase::Reconciling { .. }
                | Phase::AuditRead { .. }
        );
        phase_allows && self.warm.is_none()
    }

    /// Sends the next batch (the writer's, plus `NEIGH_FAILED_TABLE`
    /// operations in the room left) when nothing is in flight.
    fn maybe_flush(&mut self, now: Instant) {
        if !self.may_flush(now) {
            return;
        }
        let mut batch = if self.may_flush_neigh() {
            self.writer.take_batch(FLUSH_MAX_KEYS)
        } else {
            None
        };
        if self.failed.has_pending() {
            let b = batch.get_or_insert_with(Batch::empty);
            let room = FLUSH_MAX_KEYS.saturating_sub(b.len());
            self.failed.take_into(b, room);
        }
        let Some(batch) = batch.filter(|b| !b.is_empty()) else {
            return;
        };
        // What did not fit waits for the next batch.
        let rest_pending = self.writer.has_pending() || self.failed.has_pending();
        tracing::debug!(
            dels = batch.neigh_dels.len(),
            route_dels = batch.route_dels.len(),
            sets = batch.neigh_sets.len(),
            failed_dels = batch.failed_dels.len(),
            failed_sets = batch.failed_sets.len(),
            "flushing"
        );
        let epoch = self.session.epoch();
        self.flight.send(&mut self.timers, now, epoch, rest_pending);
        self.act(Action::Flush { epoch, batch });
    }

    /// READY=1 once asked for ([`Self::request_ready`]), connected, and
    /// nothing is pending or in flight.
    fn maybe_ready(&mut self) {
        if self.ready == Ready::OnceWritten
            && self.session.is_up()
            && !self.flight.is_flying()
            && !self.writer.has_pending()
            && !self.writer.in_flight()
            && !self.failed.has_pending()
        {
            self.ready = Ready::Sent;
            self.act(Action::ReleaseMemory);
            self.steps.push_back(Step::Ready(format!(
                "synced: {} neighbors in APPL_DB NEIGH_TABLE",
                self.writer.desired_len()
            )));
        }
    }

    /// Ask for READY=1 once what the start-up sync staged is written.
    fn request_ready(&mut self) {
        if self.ready == Ready::NotYet {
            self.ready = Ready::OnceWritten;
        }
    }

    /// Starts a due self-audit when live, connected and nothing is in
    /// flight: APPL_DB is read (flushes wait meanwhile).
    fn maybe_start_audit(&mut self) {
        if self.audit == AuditClock::Due
            && self.phase == Phase::Live
            && self.session.is_up()
            && !self.flight.is_flying()
        {
            self.audit = AuditClock::Waiting;
            self.phase = Phase::AuditRead {
                resync_wanted: false,
            };
            self.act(Action::ReadAuditView {
                epoch: self.session.epoch(),
            });
        }
    }

    /// Storm read spacing after a read of `messages` kernel messages at
    /// `now` ([`READ_COALESCE_MIN`]).
    fn space_reads(&mut self, messages: usize, now: Instant) {
        let dumping = matches!(
            self.phase,
            Phase::ColdSync(_)
                | Phase::WarmCaching(_)
                | Phase::Resyncing(_)
                | Phase::AuditDump { .. }
        );
        self.read_window = if messages > 1 && !dumping {
            (self.read_window * 2).clamp(READ_COALESCE_MIN, READ_COALESCE_MAX)
        } else {
            Duration::ZERO
        };
        if self.read_window.is_zero() {
            self.timers.stop(Timer::ReadResume);
        } else {
            self.timers.set(Timer::ReadResume, now + self.read_window);
        }
    }

    /// Whether a neighbour dump is being read.
    fn dumping_neighbors(&self) -> bool {
        match self.phase {
            Phase::ColdSync(d)
            | Phase::WarmCaching(d)
            | Phase::Resyncing(d)
            | Phase::AuditDump { dump: d, .. } => d.stage == DumpStage::Neighbors,
            _ => false,
        }
    }

    /// The dump of the current phase, if one is in flight.
    fn dump_mut(&mut self) -> Option<&mut KernelDump> {
        match &mut self.phase {
            Phase::ColdSync(d)
            | Phase::WarmCaching(d)
            | Phase::Resyncing(d)
            | Phase::AuditDump { dump: d, .. } => Some(d),
            _ => None,
        }
    }
}

fn log_flag_seen(waited: Duration, timer: Duration) {
    tracing::info!(
        waited_ms = waited.as_millis() as u64,
        timer_secs = timer.as_secs(),
        "NEIGH_RESTORE_TABLE|Flags restored=true seen; reconcile timer started"
    );
}

// ===== impl Core for NeighCore =====

impl engine::Core for NeighCore {
    type Input = Input;
    type Action = Action;
    type Error = DaemonError;

    fn handle_kernel(&mut self, now: Instant, msgs: &mut Vec<Received>, overrun: bool) {
        self.space_reads(msgs.len(), now);
        // The overrun first: events were lost before these messages were
        // read, so a dump that ends among them must not count as complete
        // (it starts again instead).
        if overrun {
            self.on_overrun(now);
        }
        for msg in msgs.drain(..) {
            self.on_kernel(msg, now);
        }
    }

    fn handle_dump_request_failed(&mut self, now: Instant, _error: SocketError) {
        if let Some(d) = self.dump_mut() {
            d.stage = DumpStage::Retry;
            self.timers.set(Timer::DumpRetry, now + DUMP_RETRY);
        }
    }

    fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Config { epoch, change } if self.session.is_current(epoch) => {
                self.on_config(change, now)
            }
            Input::Config { .. } => {}
            Input::Flushed {
                epoch,
                batch,
                result,
            } => self.on_flushed(epoch, batch, result, now),
            Input::Reconnected {
                epoch,
                config,
                view,
                failed,
            } => self.on_reconnected(epoch, config, view, failed, now),
            Input::AuditView { epoch, result } => self.on_audit_view(epoch, result, now),
            Input::RestoreFlagSet => self.on_restore_flag(now),
            Input::ReconcileWritten(result) => self.on_reconciled(result, now),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.expire(now) {
            match timer {
                // Their deadlines are only ever compared with `now`.
                Timer::FlushRetry | Timer::ReadResume => {}
                Timer::FlushHold => self.flight.hold_expired(),
                Timer::Audit => {
                    if let Some(every) = self.audit_every {
                        self.audit = AuditClock::Due;
                        self.timers.set(Timer::Audit, now + every);
                    }
                }
                Timer::DumpRetry => {
                    if self.dump_mut().is_some_and(|d| d.stage == DumpStage::Retry) {
                        self.start_dump();
                    }
                }
                Timer::AuditGrace => {
                    if let Phase::AuditGrace { appl_drift } = self.phase {
                        self.audit_finished(appl_drift);
                    }
                }
                Timer::RestoreFlagLimit => self.restore_flag_limit(),
                Timer::Reconcile => self.reconcile_timer_fired(),
            }
        }
    }

    fn begin_shutdown(&mut self, _now: Instant) {
        tracing::info!(
            pending = self.writer.pending_len(),
            in_flight = self.flight.is_flying(),
            "flushing and exiting"
        );
        self.stopping = Some(Stopping::Flushing);
        // An audit in progress is dropped (its APPL_DB read is ignored);
        // a dump in progress is never finished (nothing is read).
        match self.phase {
            Phase::AuditRead { .. } | Phase::AuditGrace { .. } => self.phase = Phase::Live,
            Phase::AuditDump { .. } => {
                self.writer.take_suspects();
                self.phase = Phase::Live;
            }
            _ => {}
        }
        for timer in [
            Timer::FlushRetry,
            Timer::ReadResume,
            Timer::Audit,
            Timer::AuditGrace,
            Timer::DumpRetry,
            Timer::Reconcile,
        ] {
            self.timers.stop(timer);
        }
        self.audit = AuditClock::Off;
    }

    fn poll_action(&mut self, now: Instant) -> Option<Step<Action>> {
        if self.steps.is_empty() {
            self.maybe_start_audit();
            self.maybe_flush(now);
            self.maybe_ready();
            self.stats.entries = Some(self.writer.desired_len() as u64);
            self.stats.failed_neighbors = Some(self.failed.len() as u64);
        }
        self.steps.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn reads_kernel(&self, now: Instant) -> bool {
        if self.stopping.is_some() {
            return false;
        }
        let flush_allows = match self.flight.in_flight() {
            None => true,
            Some(_) if self.dumping_neighbors() => self.writer.pending_len() < DUMP_BACKLOG_KEYS,
            Some(f) => !f.holds_reads,
        };
        flush_allows && self.timers.get(Timer::ReadResume).is_none_or(|t| now >= t)
    }

    fn is_stopped(&self) -> bool {
        // A warm window still caching has written nothing to NEIGH_TABLE
        // and writes nothing there; a reconcile write in flight is waited
        // for (bounded by the driver), then what was staged behind it is
        // flushed.
        let (caching, reconciling) = match self.warm {
            Some(Warm::Caching { .. }) => (true, false),
            Some(Warm::Reconciling { .. }) => (false, true),
            None => (false, false),
        };
        let pending = (self.writer.has_pending() && !caching) || self.failed.has_pending();
        !self.flight.is_flying()
            && !reconciling
            && (!pending || !self.session.is_up() || self.stopping == Some(Stopping::GaveUp))
    }

    fn take_error(&mut self) -> Option<DaemonError> {
        self.error.take()
    }

    fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    fn log_exit(&self) {
        if self.writer.has_pending() || self.writer.in_flight() {
            tracing::warn!(
                pending = self.writer.pending_len(),
                "exiting with unwritten neighbor changes"
            );
        }
        tracing::info!(overruns = self.overruns, "neighsyncd stopped");
    }
}
