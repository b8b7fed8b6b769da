//! The core's vocabulary: its inputs and actions, its named states
//! ([`Phase`], [`LinkDump`], [`Redis`], [`InitDone`], [`Audit`], the
//! flight) and its timers ([`Timer`]). The transitions are in the parent
//! module and in `kernel.rs`, `inputs.rs` and `count.rs`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use sonic_daemon::metrics::ResyncCause;
use sonic_daemon::session::Epoch;
use sonic_daemon::timer::TimerName;
use swss::{KeyOp, SwssError};

#[cfg(doc)]
use super::{FLUSH_READ_PAUSE, INIT_DONE_WARN_INTERVAL};
use crate::sync::{PortConfigCount, PortSync};
use crate::writer::StateBatch;
#[cfg(doc)]
use sonic_daemon::engine::Step;
#[cfg(doc)]
use sonic_daemon::timer::TimerTable;

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
    /// A subscription of session `epoch` failed: the connection is gone
    /// (or unusable).
    SubscriptionLost {
        /// The session the subscription belongs to.
        epoch: Epoch,
        /// Why.
        error: SwssError,
    },
    /// The result of an [`Action::FlushState`], with its batch handed back.
    Flushed {
        /// The session it was sent on.
        epoch: Epoch,
        /// The batch.
        batch: StateBatch,
        /// The pipeline's outcome (a key of the wrong type is not an error:
        /// it is reported and skipped).
        result: Result<(), SwssError>,
    },
    /// The result of [`Action::WritePortInitDone`].
    InitDoneWritten {
        /// The session it was sent on.
        epoch: Epoch,
        /// The producer write's outcome.
        result: Result<(), SwssError>,
    },
    /// One change of CONFIG_DB `PORT` (a `Presence` subscription, followed
    /// only with `--port-config-count-follows-config`): `Set(name, _)` the
    /// key `PORT|<name>` exists, `Del(name)` it is gone.
    ConfigPort(KeyOp),
    /// The result of [`Action::WritePortConfigCount`] for `count`.
    PortConfigCountWritten {
        /// The session it was sent on.
        epoch: Epoch,
        /// The count that was written.
        count: usize,
        /// The producer write's outcome.
        result: Result<(), SwssError>,
    },
    /// The result of [`Action::Reconnect`]: connected again and subscribed
    /// again; `present` is the fresh APPL_DB `PORT_TABLE` load (port key ->
    /// the hash has `admin_status`, markers left out).
    Reconnected {
        /// The new session (the [`Action::Reconnect`]'s).
        epoch: Epoch,
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
    FlushState {
        /// The session.
        epoch: Epoch,
        /// What to write.
        batch: StateBatch,
    },
    /// Write APPL_DB `PORT_TABLE:PortInitDone lanes=0` through the
    /// ProducerStateTable; answer [`Input::InitDoneWritten`].
    WritePortInitDone {
        /// The session.
        epoch: Epoch,
    },
    /// Write APPL_DB `PORT_TABLE:PortConfigDone count=<n>` (decimal)
    /// through the ProducerStateTable, as the cold start does
    /// ([`crate::sync::port_config_done_op`]); answer
    /// [`Input::PortConfigCountWritten`]. Only with
    /// `--port-config-count-follows-config`.
    WritePortConfigCount {
        /// The session.
        epoch: Epoch,
        /// The number of configured ports.
        count: usize,
    },
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
    /// [`Input::Reconnected`] with this epoch; the new subscriptions
    /// report their loss with it too.
    Reconnect {
        /// The new session.
        epoch: Epoch,
    },
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

/// The Redis session as the writes see it: sonic-daemon's
/// [`Session`](sonic_daemon::session::Session) (connected or not), plus the
/// read-back after a reconnect.
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
    /// Self-audit period; `None` disables it.
    pub audit_every: Option<Duration>,
    /// `--port-config-count-follows-config`: the CONFIG_DB `PORT` keys
    /// (subscription's initial load) and the count APPL_DB holds; `None`
    /// when off (the count is then only the cold start's, as the C++).
    pub port_config_count: Option<PortConfigCount>,
}
