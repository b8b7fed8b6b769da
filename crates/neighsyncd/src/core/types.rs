//! The core's vocabulary: its inputs and actions, its named states
//! ([`Phase`], [`Stopping`], the warm window, the audit clock, the flight)
//! and its timers ([`Timer`]). The transitions are in the parent module and
//! in `kernel.rs` / `inputs.rs`.

use std::time::{Duration, Instant};

use sonic_daemon::metrics::Outcome as EventOutcome;
use sonic_daemon::stats::{EventSlot, Stats};
use sonic_daemon::timer::TimerName;
use swss::restart_assist::ReconcileOps;
use swss::{ConsumerView, KeyOp, SwssError};

#[cfg(doc)]
use super::NeighCore;
#[cfg(doc)]
use super::{
    AUDIT_GRACE, DUMP_RETRY, FLUSH_ERROR_RETRY, FLUSH_READ_PAUSE, READ_COALESCE_MAX,
    READ_COALESCE_MIN,
};
use crate::context::{ConfigTable, SyncContext};
use crate::warm::WarmCache;
use crate::writer::Batch;
#[cfg(doc)]
use crate::{failed::FailedTable, writer::NeighWriter};
#[cfg(doc)]
use sonic_daemon::engine::{self, Step};
#[cfg(doc)]
use sonic_daemon::timer::TimerTable;

// ===== inputs and actions =====

pub use sonic_daemon::session::{Epoch, Redis};

/// Results of work done for the core, and CONFIG_DB changes.
#[derive(Debug)]
pub enum Input {
    /// One CONFIG_DB change of a subscribed table, or the loss of the
    /// subscription.
    Config {
        /// The session whose subscription saw it.
        epoch: Epoch,
        /// The table and the change.
        change: Result<(ConfigTable, KeyOp), SwssError>,
    },
    /// The result of an [`Action::Flush`].
    Flushed {
        /// The session it was sent on.
        epoch: Epoch,
        /// The batch, handed back.
        batch: Batch,
        /// The outcome.
        result: Result<(), SwssError>,
    },
    /// The result of an [`Action::Reconnect`]: scripts loaded, CONFIG_DB
    /// subscribed again (their initial content here) and APPL_DB's view.
    Reconnected {
        /// The new session.
        epoch: Epoch,
        /// The initial content of every subscribed table.
        config: Vec<(ConfigTable, Vec<KeyOp>)>,
        /// APPL_DB `NEIGH_TABLE` as the consumer will see it.
        view: ConsumerView,
        /// The keys (`<ifname>:<ip>`) of APPL_DB `NEIGH_FAILED_TABLE` as
        /// nbrmgrd will see them.
        failed: Vec<String>,
    },
    /// The result of an [`Action::ReadAuditView`].
    AuditView {
        /// The session it was read on.
        epoch: Epoch,
        /// The view, or why it could not be read.
        result: Result<ConsumerView, SwssError>,
    },
    /// STATE_DB `NEIGH_RESTORE_TABLE|Flags restored=true` is set.
    RestoreFlagSet,
    /// The warm reconcile write ([`Action::WriteReconcile`]) ended.
    ReconcileWritten(Result<(), SwssError>),
}

/// Redis work the core asks for ([`Step::Do`]).
#[derive(Debug)]
pub enum Action {
    /// Write one batch as one pipeline (NEIGH_TABLE batch DEL, ROUTE_TABLE
    /// batch DEL, NEIGH_TABLE batch SET, NEIGH_FAILED_TABLE batch DEL and
    /// SET); answer [`Input::Flushed`].
    Flush {
        /// The session.
        epoch: Epoch,
        /// What to write.
        batch: Batch,
    },
    /// Read APPL_DB `NEIGH_TABLE` as the consumer will see it; answer
    /// [`Input::AuditView`].
    ReadAuditView {
        /// The session.
        epoch: Epoch,
    },
    /// Redis was lost: drop the connection and the subscriptions, then
    /// reconnect with backoff until it all works; answer
    /// [`Input::Reconnected`] with this epoch.
    Reconnect {
        /// The new session.
        epoch: Epoch,
    },
    /// Warm start: follow STATE_DB `NEIGH_RESTORE_TABLE|Flags`; answer
    /// [`Input::RestoreFlagSet`] once `restored` is `true`.
    WatchRestoreFlag,
    /// Warm start: write the reconcile (DELs, then SETs, retried across a
    /// lost connection), then state `reconciled`; answer
    /// [`Input::ReconcileWritten`].
    WriteReconcile(ReconcileOps),
    /// Give free heap memory back to the kernel (after the start-up sync).
    ReleaseMemory,
}

// ===== states =====

/// Where the daemon is in its life. Flushes run in every phase except
/// the warm ones and [`Phase::AuditRead`]. SIGTERM does not change it
/// (the core's `stopping` state is apart from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Cold start: the kernel is dumped into the writer, which was seeded
    /// with APPL_DB ([`NeighWriter::begin_cold`]); READY once written.
    ColdSync(KernelDump),
    /// Warm start: the kernel is dumped into the reconcile cache; nothing
    /// is written.
    WarmCaching(KernelDump),
    /// Warm start: the cache holds the kernel's table; waiting for the
    /// restore flag, then for the reconcile timer.
    RestoreWait,
    /// Warm start: the reconcile write is in flight; decided ops go to the
    /// writer, whose flushes wait for it.
    Reconciling {
        /// A resync was asked for meanwhile: it starts once live.
        resync_wanted: bool,
    },
    /// Following the kernel's notifications.
    Live,
    /// The kernel is dumped again into the writer (mark and sweep) after
    /// ENOBUFS, a rename or a CONFIG_DB fact change.
    Resyncing(KernelDump),
    /// Self-audit: APPL_DB is being read (flushes wait).
    AuditRead {
        /// A resync was asked for meanwhile: the audit's own dump does it.
        resync_wanted: bool,
    },
    /// Self-audit: APPL_DB's drift is repaired; the kernel is dumped again.
    AuditDump {
        /// The dump.
        dump: KernelDump,
        /// Keys APPL_DB had wrong.
        appl_drift: usize,
    },
    /// Self-audit: the dump is done; the changes it showed wait
    /// [`AUDIT_GRACE`] ([`Timer::AuditGrace`]) for their notification
    /// before counting as drift.
    AuditGrace {
        /// Keys APPL_DB had wrong.
        appl_drift: usize,
    },
}

/// SIGTERM / SIGINT ([`engine::Core::begin_shutdown`]): nothing is read
/// any more, what is pending is written, then the core stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopping {
    /// Writing what is pending.
    Flushing,
    /// A flush failed with an error reply: nothing more is tried.
    GaveUp,
}

/// The periodic self-audit's schedule (the audit itself is a [`Phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuditClock {
    /// No `--audit-interval` (or stopping).
    Off,
    /// [`Timer::Audit`] is armed.
    Waiting,
    /// Due: starts once live, connected and nothing is in flight.
    Due,
}

/// A kernel dump in flight: links first, then neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelDump {
    /// Which part.
    pub stage: DumpStage,
    /// Another dump is needed when this one ends (a new request came in).
    pub again: bool,
}

/// The part of a [`KernelDump`] in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpStage {
    /// `RTM_GETLINK`; a neighbour dump follows.
    Links,
    /// `RTM_GETNEIGH`; its entries are marked as listed (mark and sweep).
    Neighbors,
    /// The socket refused the request: asked again when
    /// [`Timer::DumpRetry`] fires.
    Retry,
}

impl KernelDump {
    pub(super) fn links() -> KernelDump {
        KernelDump {
            stage: DumpStage::Links,
            again: false,
        }
    }
}

// ===== timers =====

/// The core's deadlines, one [`TimerTable`] entry each: `poll_timeout` is
/// the earliest, `handle_timeout` acts on each that expired by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A flush failed with an error reply: none before this
    /// ([`FLUSH_ERROR_RETRY`]).
    FlushRetry,
    /// Storm read spacing: no kernel read before this
    /// ([`READ_COALESCE_MIN`]..[`READ_COALESCE_MAX`]).
    ReadResume,
    /// The flush in flight stops holding live kernel reads back
    /// ([`FLUSH_READ_PAUSE`] after it was sent).
    FlushHold,
    /// The next self-audit is due (every `--audit-interval`).
    Audit,
    /// A netlink dump request the socket refused is sent again
    /// ([`DUMP_RETRY`] later).
    DumpRetry,
    /// The self-audit's grace for late notifications ends
    /// ([`AUDIT_GRACE`]).
    AuditGrace,
    /// Warm start: the restore flag did not come in time (fatal).
    RestoreFlagLimit,
    /// Warm start: the reconcile timer (`neighsyncd_timer`) fires.
    Reconcile,
}

impl TimerName for Timer {
    const ALL: &'static [Timer] = &[
        Timer::FlushRetry,
        Timer::ReadResume,
        Timer::FlushHold,
        Timer::Audit,
        Timer::DumpRetry,
        Timer::AuditGrace,
        Timer::RestoreFlagLimit,
        Timer::Reconcile,
    ];
    fn index(self) -> usize {
        self as usize
    }
}

/// The warm-start window (docs/behavior.md c.2, c.3): caching, then the
/// reconcile write. Gone once reconciled.
pub(super) enum Warm {
    /// Decided ops go to the reconcile cache; nothing is written to
    /// `NEIGH_TABLE`.
    Caching {
        /// The reconcile cache (boxed: the warm window is short-lived and
        /// the other state small).
        cache: Box<WarmCache>,
        /// Restore flag and reconcile timer.
        clock: WarmClock,
        /// The reconcile timer (`WARM_RESTART|swss neighsyncd_timer`).
        timer: Duration,
    },
    /// The reconcile write is in flight (these many SETs and DELs).
    Reconciling {
        /// SETs written.
        sets: usize,
        /// DELs written.
        dels: usize,
    },
}

/// The warm window's clock (docs/behavior.md c.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WarmClock {
    /// Waiting for the restore flag since `since`, at most `limit`
    /// ([`Timer::RestoreFlagLimit`], then fatal).
    WaitFlag { since: Instant, limit: Duration },
    /// The flag is set; waiting for [`Timer::Reconcile`].
    Timer,
    /// The timer fired: reconcile once no dump is in flight.
    Due,
}

/// READY=1 (systemd notify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ready {
    /// The start-up sync is not done.
    NotYet,
    /// Sent once nothing is pending or in flight.
    OnceWritten,
    /// Sent.
    Sent,
}

/// How the core is set up at start-up ([`NeighCore::cold`],
/// [`NeighCore::warm`]).
pub struct Setup {
    /// CONFIG_DB facts, initial load applied.
    pub ctx: SyncContext,
    /// Self-audit period; `None` disables it.
    pub audit_every: Option<Duration>,
    /// The keys (`<ifname>:<ip>`) of APPL_DB `NEIGH_FAILED_TABLE` as
    /// nbrmgrd will see them ([`FailedTable::seed`]).
    pub failed: Vec<String>,
}

/// The `kernel_events_total` label sets a neighbour event that passes the
/// rules counts under: `[RTM_NEWNEIGH, RTM_DELNEIGH]` x `[written,
/// unchanged]`, reason `""`; their [`Stats`] slots resolved once.
pub(super) struct NeighEventCounters([[EventSlot; 2]; 2]);

impl NeighEventCounters {
    pub(super) fn new(stats: &mut Stats) -> Self {
        let mut pair = |t| {
            [
                stats.event_slot((t, EventOutcome::Written, "")),
                stats.event_slot((t, EventOutcome::Unchanged, "")),
            ]
        };
        NeighEventCounters([pair("RTM_NEWNEIGH"), pair("RTM_DELNEIGH")])
    }

    /// Counts one event (`del`: RTM_DELNEIGH, else RTM_NEWNEIGH).
    pub(super) fn count(&self, stats: &mut Stats, del: bool, written: bool) {
        stats.count(self.0[usize::from(del)][usize::from(!written)]);
    }
}
