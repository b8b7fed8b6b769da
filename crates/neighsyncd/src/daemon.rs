//! neighsyncd's I/O wiring around the pure core ([`crate::sync::decide`],
//! [`crate::context::SyncContext`], [`crate::writer::NeighWriter`]).
//!
//! Start-up ([`Daemon::start`], one function; docs/behavior.md b.1 with the fixes
//! of f):
//! 1. database_config.json (or the namespace's entry of
//!    database_global.json); a missing or broken file is fatal and the
//!    message names the file ([`DaemonError::Config`]).
//! 2. Connect APPL_DB, CONFIG_DB and STATE_DB, retrying with backoff (each
//!    retry is logged).
//! 3. CONFIG_DB `LOGGER|neighsyncd`: `LOGLEVEL NOTICE` / `LOGOUTPUT SYSLOG`
//!    where missing (logger.cpp, a.2).
//! 4. `SCRIPT LOAD` of the ProducerStateTable scripts.
//! 5. CONFIG_DB subscriptions (PEER_SWITCH, VXLAN_EVPN_NVO, INTERFACE,
//!    PORTCHANNEL_INTERFACE, VLAN_INTERFACE) with their initial loads
//!    applied to the [`SyncContext`] **before** any neighbour is handled
//!    (the C++ leaves the NVO/dump order undefined, f.9).
//! 6. WarmStart check (writes `WARM_RESTART_TABLE|neighsyncd
//!    restore_count`). Cold: APPL_DB's NEIGH_TABLE as the consumer will see
//!    it ([`read_appl_view`]). Warm ([`crate::warm`]): unconsumed NEIGH_TABLE
//!    operations are dropped, APPL_DB is read into the reconcile cache, and
//!    every decided op goes to that cache until the restore flag and the
//!    reconcile timer let it write the difference.
//! 7. Netlink socket on RTNLGRP_LINK + RTNLGRP_NEIGH, receive buffer forced
//!    to 64 MiB (`SO_RCVBUFFORCE`); link dump, then neighbour dump, fed
//!    into the writer as it arrives ([`NeighWriter::begin_cold`], written
//!    meanwhile): every kernel neighbour is SET once (as the C++); at the
//!    end of the dump ([`NeighWriter::end_snapshot`]) APPL_DB keys the
//!    kernel no longer has are DELeted (after a SIGKILL + restart APPL_DB
//!    equals the kernel).
//!
//! Then one loop on a current-thread runtime: netlink batches, CONFIG_DB
//! changes, the Redis flush in flight, a Redis reconnect, signals.
//!
//! * Writes: every decided op goes through [`Daemon::dispatch`] into the
//!   writer (or, during a warm start, the reconcile cache). As soon as
//!   no flush is in flight the writer's next batch goes out as one pipeline
//!   (NEIGH_TABLE batch DEL, ROUTE_TABLE batch DEL, NEIGH_TABLE batch SET);
//!   what arrives meanwhile is coalesced into the next one.
//! * ENOBUFS: warn, count, dump links then neighbours again, fed into the
//!   writer as it arrives between [`NeighWriter::begin_snapshot`] and
//!   [`NeighWriter::end_snapshot`] (mark and sweep: only the difference is
//!   written, desired keys the dump did not list are DELeted at its end).
//! * A CONFIG_DB change that flips a fact the rules read (dual-ToR, EVPN,
//!   link-local mode of an interface) takes effect for later messages at
//!   once (no Redis round trip per message) and also triggers the same
//!   kernel resync, so neighbours that were dropped (or written) under the
//!   old facts are brought in line. Deviation: the C++ only applies new
//!   facts to later messages.
//! * Redis loss: never exit. The desired table stays in memory; reconnect
//!   with exponential backoff capped at 5 s; then reload the scripts,
//!   re-subscribe CONFIG_DB with a fresh initial load, read APPL_DB and
//!   [`NeighWriter::resync_from_appl`], and flush the difference.
//! * RTM_DELLINK (not AF_BRIDGE): the interface's neighbours are DELeted
//!   (in case the RTM_DELNEIGHs were missed); a rename deletes the keys under
//!   the old name and resyncs from the kernel.
//! * SIGTERM / SIGINT: flush what is pending for at most
//!   [`SHUTDOWN_FLUSH_LIMIT`], then return `Ok` (exit 0).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use sonic_daemon::metrics::{Outcome as EventOutcome, ResyncCause};
use sonic_daemon::startup::{step, Dbs, StartupError};
use sonic_daemon::{DbPaths, LoopTicker, Ops};
use sonic_netlink::link::LinkChange;
use sonic_netlink::link::LinkTable;
use sonic_netlink::neigh::AF_BRIDGE;
use sonic_netlink::socket::{
    Dump, KernelMessage, NetlinkSocket, RcvBuf, Received, SocketError, RTNLGRP_LINK, RTNLGRP_NEIGH,
};
use sonic_netlink::{LinkEvent, NeighborEvent};
use swss::config::ConfigError;
use swss::{DbConnector, KeyOp, ProducerStateTable, SubscriberStateTable, SwssError};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::context::{ConfigTable, SyncContext};
use crate::sync::{decide, decide_parts, neigh_key, Decision, NeighOp, Outcome};
use crate::warm::{self, WarmEvent, WarmRestart};
use crate::writer::{Batch, NeighWriter, Origin};
use swss::ConsumerView;

/// The CONFIG_DB `LOGGER|<name>` key and the daemon's name in logs.
pub const APP_NAME: &str = "neighsyncd";
/// APPL_DB table neighsyncd produces.
pub const APP_NEIGH_TABLE_NAME: &str = "NEIGH_TABLE";
/// APPL_DB table of the EVPN host-route deletes (b.2 step 18).
pub const APP_ROUTE_TABLE_NAME: &str = "ROUTE_TABLE";
/// CONFIG_DB logger table (`LOGGER|<daemon>`, logger.cpp).
pub const CFG_LOGGER_TABLE_NAME: &str = sonic_daemon::logging::CFG_LOGGER_TABLE_NAME;
/// Default netlink receive buffer, forced with `SO_RCVBUFFORCE` (bytes).
pub const DEFAULT_NETLINK_RCVBUF: usize = 64 << 20;
/// Largest number of keys per flush (one pipeline; the producer splits it
/// into transactions of at most `swss::producer_state::MAX_KEYS_PER_BATCH`).
/// Measured with `bench cold100k` (3 runs each): 1024 gives 0.84-0.91 s and
/// 13 MiB peak RSS, 2048 gave 0.85-1.04 s and 14 MiB, 8192 gave 0.96-1.13 s
/// and 18-20 MiB (Redis CPU per key grows with the script's size).
pub const FLUSH_MAX_KEYS: usize = 1024;
/// Dump backpressure: while a neighbour dump runs and a flush is in
/// flight, the netlink socket is not read once this many keys wait in the
/// writer (the rest of the dump waits in the kernel, which generates it as
/// it is read). Two flushes' worth keeps Redis busy without the whole
/// table piling up pending.
pub const DUMP_BACKLOG_KEYS: usize = 2 * FLUSH_MAX_KEYS;
/// While a flush is in flight, live kernel events wait in the socket buffer
/// ([`Daemon::reading_kernel`]); a flush slower than this (Redis busy or
/// hanging) no longer holds them back, so the socket buffer cannot overflow
/// behind a stalled Redis. A 1024-key flush normally takes a few
/// milliseconds.
pub const FLUSH_READ_PAUSE: Duration = Duration::from_millis(20);
/// Read spacing in an event storm. A read that returns more than one
/// kernel message while no dump runs means events arrive faster than they
/// are handled: the next read waits (the socket out of epoll, so arriving
/// datagrams do not wake the thread; [`NetlinkSocket::pause`]), first
/// [`READ_COALESCE_MIN`], doubling while the storm lasts up to
/// [`READ_COALESCE_MAX`]; a read of one message (or none pending) resets it
/// to no wait. So an isolated event is read and flushed at once, and a
/// storm costs a few reads and flushes per millisecond instead of one per
/// event (each wake-up of the thread costs more than handling an event).
/// The flush of what was read is never held back.
pub const READ_COALESCE_MIN: Duration = Duration::from_millis(1);
/// See [`READ_COALESCE_MIN`].
pub const READ_COALESCE_MAX: Duration = Duration::from_millis(4);
/// After the self-audit's kernel dump: how long a change the dump showed
/// may wait for its notification before it counts as drift
/// ([`NeighWriter::track_suspects`]). The kernel queues the notification of
/// a change on its own, possibly after the dump entry that already shows
/// it (by microseconds, more on a loaded CPU).
pub const AUDIT_GRACE: Duration = Duration::from_millis(500);
/// How long SIGTERM/SIGINT may spend flushing what is pending.
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(2);
/// Per-command response timeout on the Redis connections: a Redis that
/// accepts connections but stops answering is treated as lost.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before retrying a flush that failed with an error reply (not a
/// lost connection), so a persistent error does not spin.
pub const FLUSH_ERROR_RETRY: Duration = Duration::from_secs(1);

// ===== errors =====

/// Why the daemon stopped with a failure (the binary exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// database_config.json / database_global.json missing or broken; the
    /// message names the file and the defect.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Redis error that a reconnect cannot fix (an error reply such as
    /// `WRONGTYPE`) during start-up.
    #[error("{context}: {source}")]
    Redis {
        /// The start-up step, e.g. `SCRIPT LOAD`.
        context: &'static str,
        /// The error.
        source: SwssError,
    },
    /// The netlink socket could not be opened, asked for a dump, or read.
    #[error(transparent)]
    Netlink(#[from] SocketError),
    /// A signal handler could not be installed.
    #[error("cannot install the {0} handler: {1}")]
    Signal(&'static str, std::io::Error),
    /// Warm start: STATE_DB `NEIGH_RESTORE_TABLE|Flags restored=true` was
    /// not set within the limit (180 s by default, docs/behavior.md c.3).
    #[error("warm start: NEIGH_RESTORE_TABLE|Flags restored=true not set within {} s; giving up", .0.as_secs_f64())]
    RestoreTimeout(Duration),
}

// ===== options =====

/// What the command line decides (see `cli.rs`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the databases are (database_config.json, or the namespace's
    /// entry of database_global.json).
    pub db: DbPaths,
    /// Netlink receive buffer sizing: [`RcvBuf::Force`] of
    /// [`DEFAULT_NETLINK_RCVBUF`] by default; tests use a tiny
    /// [`RcvBuf::Exact`] to provoke ENOBUFS.
    pub rcvbuf: RcvBuf,
    /// Warm start: how long to wait for `NEIGH_RESTORE_TABLE|Flags
    /// restored=true` ([`warm::DEFAULT_RESTORE_WAIT`], 180 s; tests shorten
    /// it).
    pub restore_wait: Duration,
    /// Metrics, health, systemd notify and the live log level
    /// ([`sonic_daemon::Ops`]).
    pub ops: Ops,
    /// Self-audit period (`--audit-interval`); `None` disables it.
    pub audit_every: Option<Duration>,
}

impl From<StartupError> for DaemonError {
    fn from(e: StartupError) -> Self {
        match e {
            StartupError::Config(e) => DaemonError::Config(e),
            StartupError::Redis { context, source } => DaemonError::Redis { context, source },
        }
    }
}

/// Runs neighsyncd until SIGTERM/SIGINT: [`Daemon::start`] then
/// [`Daemon::run`]. Must run inside a tokio runtime with IO and time
/// enabled (the binary uses a current-thread runtime).
///
/// Errors: [`DaemonError`]; Redis outages after start-up are not errors.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    tune_allocator();
    let mut signals = Signals::install()?;
    let daemon = tokio::select! {
        d = Daemon::start(opts) => d?,
        name = signals.recv() => {
            tracing::info!(signal = name, "stopped during start-up");
            sonic_daemon::Notifier::new().stopping();
            return Ok(());
        }
    };
    daemon.run(signals).await
}

/// glibc malloc: a fixed 128 KiB mmap threshold. By default glibc raises
/// the threshold to the size of every large block freed (up to 32 MiB), so
/// after a cold sync or a burst the next big tables come from the heap and
/// their memory is never given back (idle RSS stayed at ~30 MiB after a
/// 100k cold sync). Fixed, large tables and buffers are mmapped and return
/// to the kernel when freed.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(unsafe_code)]
        // SAFETY: mallopt only sets a malloc tunable; it is called before
        // any other thread exists here and takes plain integers.
        let ok = unsafe { nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 128 * 1024) };
        if ok != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused");
        }
    }
}

/// glibc malloc: give the free memory at the top of and inside the heap
/// back to the kernel (`malloc_trim(0)`). Called once the start-up sync is
/// written: its transient tables (dump backlog, batches, APPL_DB view) are
/// freed by then, but glibc keeps freed heap pages resident.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(unsafe_code)]
        // SAFETY: malloc_trim only returns free heap memory to the kernel;
        // it takes a plain integer and touches no memory of ours.
        unsafe {
            nix::libc::malloc_trim(0);
        }
    }
}

/// SIGTERM and SIGINT handlers, installed before anything else so a stop
/// request during start-up (e.g. while waiting for Redis) also exits 0.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs both handlers.
    ///
    /// Errors: [`DaemonError::Signal`].
    pub fn install() -> Result<Self, DaemonError> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(|e| DaemonError::Signal("SIGTERM", e))?,
            int: signal(SignalKind::interrupt()).map_err(|e| DaemonError::Signal("SIGINT", e))?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

// ===== connections =====

/// One CONFIG_DB change (or the loss of its subscription), tagged with the
/// subscription generation so that messages of replaced subscriptions are
/// ignored.
type CfgEvent = (u64, ConfigTable, Result<KeyOp, SwssError>);

/// The result of a reconnect: APPL_DB connection (scripts loaded), fresh
/// subscriptions with their initial content, and APPL_DB's view.
struct Reconnected {
    appl: MultiplexedConnection,
    subs: Vec<(ConfigTable, SubscriberStateTable, Vec<KeyOp>)>,
    view: ConsumerView,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

// ===== Redis steps =====

/// Subscribes to one CONFIG_DB table and returns the subscriber with its
/// initial content.
async fn subscribe(
    config: &DbConnector,
    table: ConfigTable,
) -> Result<(SubscriberStateTable, Vec<KeyOp>), SwssError> {
    let mut sub = SubscriberStateTable::new(config, table.name()).await?;
    let mut initial = Vec::with_capacity(sub.queued());
    while sub.queued() > 0 {
        initial.push(sub.next().await?);
    }
    Ok((sub, initial))
}

/// All five CONFIG_DB subscriptions with their initial content.
async fn subscribe_all(
    config: &DbConnector,
) -> Result<Vec<(ConfigTable, SubscriberStateTable, Vec<KeyOp>)>, SwssError> {
    let mut out = Vec::with_capacity(ConfigTable::ALL.len());
    for table in ConfigTable::ALL {
        let (sub, initial) = subscribe(config, table).await?;
        out.push((table, sub, initial));
    }
    Ok(out)
}

/// Reads APPL_DB `NEIGH_TABLE` as orchagent will see it once it has popped
/// everything pending, each key at one instant even while orchagent pops
/// ([`swss::read_consumer_view`]).
///
/// Errors: [`SwssError::Redis`], [`SwssError::UnexpectedReply`].
pub async fn read_appl_view(
    conn: &mut MultiplexedConnection,
    producer: &ProducerStateTable,
) -> Result<ConsumerView, SwssError> {
    swss::read_consumer_view(conn, producer, "APPL_DB").await
}

/// Reconnects everything a Redis outage broke, retrying with backoff
/// (100 ms doubling, capped at 5 s) until every step works: APPL_DB
/// connection, SCRIPT LOAD, CONFIG_DB subscriptions, APPL_DB view.
async fn reconnect(dbs: Dbs, producer: ProducerStateTable) -> Reconnected {
    let mut delay = swss::connector::RECONNECT_INITIAL_DELAY;
    loop {
        let mut appl = dbs.appl.connect_retrying().await;
        let res = async {
            producer.load_scripts(&mut appl).await?;
            let subs = subscribe_all(&dbs.config).await?;
            let view = read_appl_view(&mut appl, &producer).await?;
            Ok::<_, SwssError>((subs, view))
        }
        .await;
        match res {
            Ok((subs, view)) => return Reconnected { appl, subs, view },
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                    "Redis reconnect incomplete; retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(swss::connector::RECONNECT_MAX_DELAY);
    }
}

/// Sends one writer batch as one pipeline: NEIGH_TABLE batch DEL, then
/// ROUTE_TABLE batch DEL, then NEIGH_TABLE batch SET (the scripts are
/// shared, so one flush carries both tables).
async fn flush_batch(
    mut conn: MultiplexedConnection,
    neigh: ProducerStateTable,
    route: ProducerStateTable,
    batch: Batch,
) -> (Batch, Result<(), SwssError>) {
    let mut pipe = redis::pipe();
    neigh.queue_batch_del(&mut pipe, &batch.neigh_dels);
    route.queue_batch_del(&mut pipe, &batch.route_dels);
    neigh.queue_batch_set(&mut pipe, &batch.neigh_sets);
    let res = neigh.flush(&mut conn, &pipe).await;
    (batch, res)
}

// ===== the daemon =====

/// Which dump is running and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No dump in flight.
    Idle,
    /// Link dump in flight; a neighbour dump follows.
    Links,
    /// Neighbour dump in flight; its ops go to the writer (or warm cache)
    /// as a snapshot (mark and sweep).
    Neighbors,
}

/// What the current dump is for.
enum DumpPurpose {
    /// Start-up: the writer is in [`NeighWriter::begin_cold`] mode.
    Cold,
    /// After ENOBUFS, a rename or a CONFIG_DB fact change.
    Resync,
}

/// The running daemon: built by [`Daemon::start`], driven by
/// [`Daemon::run`].
pub struct Daemon {
    dbs: Dbs,
    neigh: ProducerStateTable,
    route: ProducerStateTable,
    /// APPL_DB connection; `None` while Redis is away.
    appl: Option<MultiplexedConnection>,
    ctx: SyncContext,
    links: LinkTable,
    /// A link table being rebuilt by a resync link dump.
    fresh_links: Option<LinkTable>,
    writer: NeighWriter,
    sock: NetlinkSocket,
    phase: Phase,
    purpose: Option<DumpPurpose>,
    /// Another dump is needed once the one in flight ends.
    redump: bool,
    cfg_tx: mpsc::UnboundedSender<CfgEvent>,
    cfg_rx: mpsc::UnboundedReceiver<CfgEvent>,
    cfg_generation: u64,
    cfg_tasks: Vec<JoinHandle<()>>,
    flushing: Option<BoxFuture<(Batch, Result<(), SwssError>)>>,
    /// When the flush in flight was sent.
    flush_sent_at: Instant,
    /// No kernel read before this instant ([`READ_COALESCE_MIN`]).
    read_resume_at: Option<Instant>,
    /// The current storm read spacing (zero when calm).
    read_window: Duration,
    reconnecting: Option<BoxFuture<Reconnected>>,
    /// No flush before this instant (after an error reply).
    flush_not_before: Option<Instant>,
    /// ENOBUFS overruns seen.
    overruns: u64,
    /// A warm start in progress (until its reconcile write is done).
    warm: Option<WarmRestart>,
    // ----- operations (sonic_daemon) -----
    /// Metrics, health, systemd notify.
    ops: Ops,
    /// Wakes the loop so it beats for the systemd watchdog while idle.
    ticker: LoopTicker,
    /// Send READY=1 once nothing is pending or in flight (set after the
    /// cold start's dump, or the warm start's reconcile write).
    ready_on_flush: bool,
    /// When the last netlink batch was received.
    recv_at: Instant,
    /// Receive time of the oldest kernel event staged but not yet taken
    /// into a batch.
    unacked_since: Option<Instant>,
    /// Receive time of the oldest kernel event in the batch in flight.
    batch_since: Option<Instant>,
    /// Self-audit period; `None` when disabled.
    audit_every: Option<Duration>,
    /// The self-audit's APPL_DB read in flight.
    auditing: Option<BoxFuture<Result<ConsumerView, SwssError>>>,
    /// An audit is due (starts once no flush or dump is in flight).
    audit_due: bool,
    /// Drift found by the audit's APPL_DB comparison, until its kernel
    /// resync is done.
    audit_appl_drift: Option<usize>,
    /// The audit's kernel dump is done: its drift is counted at this
    /// instant ([`AUDIT_GRACE`]).
    audit_grace_until: Option<Instant>,
    /// `kernel_events_total` of neighbour events written or unchanged,
    /// resolved once (one atomic add per event instead of a label lookup).
    neigh_events: NeighEventCounters,
}

/// The `kernel_events_total` counters a neighbour event that passes the
/// rules increments: `[RTM_NEWNEIGH, RTM_DELNEIGH]` x
/// `[written, unchanged]`, reason `""`.
struct NeighEventCounters([[sonic_daemon::metrics::Counter; 2]; 2]);

impl NeighEventCounters {
    fn new(m: &sonic_daemon::metrics::Metrics) -> Self {
        let pair = |t| {
            [
                m.kernel_event_counter(t, EventOutcome::Written, ""),
                m.kernel_event_counter(t, EventOutcome::Unchanged, ""),
            ]
        };
        NeighEventCounters([pair("RTM_NEWNEIGH"), pair("RTM_DELNEIGH")])
    }

    /// Counts one event (`del`: RTM_DELNEIGH, else RTM_NEWNEIGH).
    fn count(&self, del: bool, written: bool) {
        self.0[usize::from(del)][usize::from(!written)].inc();
    }
}

impl Daemon {
    /// The start-up sequence (module docs, steps 1-7; the dumps' replies are
    /// handled by [`Daemon::run`]). Redis being down is not an error: each
    /// step retries with backoff and logs.
    ///
    /// Errors: [`DaemonError::Config`] (names the file),
    /// [`DaemonError::Redis`] for an error reply, [`DaemonError::Netlink`].
    pub async fn start(opts: Options) -> Result<Daemon, DaemonError> {
        let cfg = opts.db.load()?;
        let dbs = Dbs::new(&cfg, Some(REDIS_RESPONSE_TIMEOUT))?;
        let neigh = ProducerStateTable::new(APP_NEIGH_TABLE_NAME, dbs.appl.location());
        let route = ProducerStateTable::new(APP_ROUTE_TABLE_NAME, dbs.appl.location());
        tracing::info!(db_config = %cfg.path().display(), appl = %dbs.appl.location().addr, "starting");

        // Every step runs through `step`: a Redis connection lost during
        // start-up (e.g. the database container restarting) reconnects all
        // three databases with backoff and runs the step again.
        let mut conns = dbs.connect_all().await;
        let config_sep = dbs.config.separator();
        let state_sep = dbs.state.separator();
        opts.ops.notifier.status("starting: connected to Redis");
        step(
            "CONFIG_DB LOGGER defaults and subscription",
            &dbs,
            &mut conns,
            |_| opts.ops.link_logger(&dbs.config),
        )
        .await?;
        let assist = step("WarmStart check", &dbs, &mut conns, |mut c| async move {
            warm::check(&mut c.state, state_sep, &mut c.config, config_sep).await
        })
        .await?;
        step("SCRIPT LOAD", &dbs, &mut conns, |mut c| {
            let p = neigh.clone();
            async move { p.load_scripts(&mut c.appl).await }
        })
        .await?;

        let mut ctx = SyncContext::new();
        let subs = step("CONFIG_DB subscriptions", &dbs, &mut conns, |_| {
            subscribe_all(&dbs.config)
        })
        .await?;
        let (cfg_tx, cfg_rx) = mpsc::unbounded_channel();
        let mut daemon_subs = Vec::new();
        for (table, sub, initial) in subs {
            for op in initial {
                apply_cfg(&mut ctx, table, &op);
            }
            daemon_subs.push((table, sub));
        }
        tracing::info!(
            dual_tor = ctx.is_dual_tor(),
            evpn = ctx.evpn_nvo_exists(),
            "CONFIG_DB initial state loaded"
        );

        let (purpose, warm, cold_view) = if assist.is_warm() {
            let restored = step(
                "warm start: reading APPL_DB NEIGH_TABLE",
                &dbs,
                &mut conns,
                |mut c| {
                    let (a, p) = (assist.clone(), neigh.clone());
                    async move { warm::restore_table(&a, &mut c.appl, &mut c.state, &p).await }
                },
            )
            .await?;
            let w = WarmRestart::new(assist, restored, dbs.state.clone(), opts.restore_wait);
            opts.ops.metrics.set_warm_restart_state("restored");
            (None, Some(w), None)
        } else {
            let view = step("reading APPL_DB NEIGH_TABLE", &dbs, &mut conns, |mut c| {
                let p = neigh.clone();
                async move { read_appl_view(&mut c.appl, &p).await }
            })
            .await?;
            tracing::info!(keys = view.len(), "APPL_DB NEIGH_TABLE read");
            opts.ops.metrics.set_warm_restart_state("disabled");
            (Some(DumpPurpose::Cold), None, Some(view))
        };
        let appl = conns.appl;

        let mut sock = NetlinkSocket::open_with(&[RTNLGRP_LINK, RTNLGRP_NEIGH], opts.rcvbuf)?;
        sock.request_dump(Dump::Links)?;
        opts.ops.health.set_netlink_up(true);
        opts.ops.health.set_redis_up();

        let mut daemon = Daemon {
            dbs,
            neigh,
            route,
            appl: Some(appl),
            ctx,
            links: LinkTable::new(),
            fresh_links: None,
            writer: NeighWriter::new(),
            sock,
            phase: Phase::Links,
            purpose,
            redump: false,
            cfg_tx,
            cfg_rx,
            cfg_generation: 0,
            cfg_tasks: Vec::new(),
            flushing: None,
            flush_sent_at: Instant::now(),
            read_resume_at: None,
            read_window: Duration::ZERO,
            reconnecting: None,
            flush_not_before: None,
            overruns: 0,
            warm,
            ticker: opts.ops.notifier.loop_ticker(),
            neigh_events: NeighEventCounters::new(&opts.ops.metrics),
            ops: opts.ops,
            ready_on_flush: false,
            recv_at: Instant::now(),
            unacked_since: None,
            batch_since: None,
            audit_every: opts.audit_every,
            auditing: None,
            audit_due: false,
            audit_appl_drift: None,
            audit_grace_until: None,
        };
        if let Some(view) = cold_view {
            daemon.writer.begin_cold(&view);
        }
        daemon.spawn_subscriptions(daemon_subs);
        Ok(daemon)
    }

    /// The event loop (module docs). Returns `Ok` after SIGTERM/SIGINT once
    /// what is pending is flushed (at most [`SHUTDOWN_FLUSH_LIMIT`]).
    ///
    /// Errors: [`DaemonError::Netlink`] when the
    /// socket fails for a reason other than an overrun.
    pub async fn run(mut self, mut signals: Signals) -> Result<(), DaemonError> {
        let mut received: Vec<Received> = Vec::new();
        let mut audit_tick = self.audit_every.map(|every| {
            let mut i = tokio::time::interval_at(Instant::now() + every, every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        loop {
            self.ops.notifier.beat();
            self.maybe_start_audit();
            self.maybe_flush();
            self.maybe_notify_ready();
            self.ops
                .metrics
                .entries
                .set(self.writer.desired_len() as i64);
            let flush_wait = self.flush_not_before;
            let audit_grace = self.audit_grace_until;
            let reading = self.reading_kernel();
            if !reading {
                // Not even woken by arriving datagrams until reading resumes.
                self.sock.pause();
            }
            // While a flush holds the kernel events back: when to stop.
            let read_pause_end = (!reading).then(|| self.read_pause_end()).flatten();
            tokio::select! {
                name = signals.recv() => {
                    tracing::info!(signal = name, "flushing and exiting");
                    self.ops.notifier.stopping();
                    break;
                }
                res = self.sock.recv(&mut received), if reading => {
                    self.recv_at = Instant::now();
                    match res {
                        Ok(()) => {}
                        Err(SocketError::Overrun) => self.on_overrun(),
                        Err(e) => {
                            self.ops.health.set_netlink_up(false);
                            return Err(DaemonError::Netlink(e));
                        }
                    }
                    self.space_reads(received.len());
                    for msg in received.drain(..) {
                        self.on_kernel(msg)?;
                    }
                }
                Some((generation, table, res)) = self.cfg_rx.recv() => {
                    if generation == self.cfg_generation {
                        self.on_config(table, res);
                    }
                }
                (batch, res) = poll_opt(&mut self.flushing), if self.flushing.is_some() => {
                    self.flushing = None;
                    self.on_flushed(batch, res);
                }
                rec = poll_opt(&mut self.reconnecting), if self.reconnecting.is_some() => {
                    self.reconnecting = None;
                    self.on_reconnected(rec);
                }
                _ = tokio::time::sleep_until(flush_wait.unwrap_or_else(Instant::now)), if flush_wait.is_some() => {
                    self.flush_not_before = None;
                }
                _ = tokio::time::sleep_until(read_pause_end.unwrap_or_else(Instant::now)), if read_pause_end.is_some() => {}
                ev = warm::next_event(&mut self.warm), if self.warm.is_some() => {
                    self.on_warm(ev)?;
                }
                res = poll_opt(&mut self.auditing), if self.auditing.is_some() => {
                    self.auditing = None;
                    self.on_audit_read(res);
                }
                _ = tokio::time::sleep_until(audit_grace.unwrap_or_else(Instant::now)), if audit_grace.is_some() => {
                    self.on_audit_grace_end();
                }
                _ = tick_opt(&mut audit_tick) => self.audit_due = true,
                _ = self.ticker.tick() => {}
            }
        }
        self.shutdown().await;
        Ok(())
    }

    // ----- the seam: where decided ops go -----

    /// The single place where decided operations go (b.2 steps 17-18):
    /// while a warm start is caching, to its reconcile cache
    /// ([`WarmRestart::offer`]), else to the writer. During a neighbour dump
    /// too: the writer (or cache) is in snapshot mode and sweeps at the end.
    ///
    /// Returns whether something will be written because of it (during a
    /// warm start: always true, the reconcile decides).
    fn dispatch(&mut self, op: NeighOp, route_del: Option<String>) -> bool {
        // Warm start: cached until the reconcile; the EVPN route delete is
        // dropped as the C++ does (b.2 step 17 stops before step 18).
        let op = match self.warm.as_mut() {
            Some(w) => match w.offer(op) {
                Some(op) => op,
                None => return true,
            },
            None => op,
        };
        match &op {
            NeighOp::Set { key, mac, family } => {
                tracing::debug!(op = "SET", key = %key, mac = %sonic_netlink::fmt::mac_to_string(mac),
                    family = family.as_str(), "neighbor")
            }
            NeighOp::Del { key } => tracing::debug!(op = "DEL", key = %key, "neighbor"),
        }
        let written = self.writer.stage_write(op, route_del);
        if written && self.unacked_since.is_none() {
            self.unacked_since = Some(self.recv_at);
        }
        written
    }

    // ----- kernel -----

    /// Whether the loop reads the netlink socket now. Batching comes from
    /// back-pressure, not from waiting: with no flush in flight every event
    /// is read (and flushed) at once; while a flush is in flight live events
    /// wait in the socket buffer and are all read in one wake-up when it
    /// ends, to ride the next flush together. A neighbour dump keeps being
    /// read during a flush until [`DUMP_BACKLOG_KEYS`] wait in the writer
    /// (the kernel generates the rest as it is read), so Redis and the dump
    /// work in parallel.
    /// A flush that takes longer than [`FLUSH_READ_PAUSE`] stops holding
    /// live events back. In a storm, reads are also spaced
    /// ([`READ_COALESCE_MIN`]).
    fn reading_kernel(&self) -> bool {
        let now = Instant::now();
        let flush_allows = self.flushing.is_none()
            || now >= self.flush_sent_at + FLUSH_READ_PAUSE
            || (self.phase == Phase::Neighbors && self.writer.pending_len() < DUMP_BACKLOG_KEYS);
        flush_allows && self.read_resume_at.is_none_or(|t| now >= t)
    }

    /// Storm read spacing ([`READ_COALESCE_MIN`]) after a read of
    /// `messages` kernel messages.
    fn space_reads(&mut self, messages: usize) {
        self.read_window = if messages > 1 && self.phase == Phase::Idle {
            (self.read_window * 2).clamp(READ_COALESCE_MIN, READ_COALESCE_MAX)
        } else {
            Duration::ZERO
        };
        self.read_resume_at =
            (!self.read_window.is_zero()).then_some(self.recv_at + self.read_window);
    }

    /// When reading may resume while [`Self::reading_kernel`] is false:
    /// the later of the storm spacing and the slow-flush limit (`None`:
    /// only the end of the flush in flight resumes it).
    fn read_pause_end(&self) -> Option<Instant> {
        let flush_end = self
            .flushing
            .is_some()
            .then_some(self.flush_sent_at + FLUSH_READ_PAUSE);
        match (flush_end, self.read_resume_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_kernel(&mut self, msg: Received) -> Result<(), DaemonError> {
        match msg {
            Ok(KernelMessage::Neigh(ev)) => self.on_neigh(&ev),
            Ok(KernelMessage::Link(ev)) => {
                let outcome = if self.on_link(&ev) {
                    EventOutcome::Written
                } else {
                    EventOutcome::Unchanged
                };
                self.ops
                    .metrics
                    .kernel_event(ev.msg_type.rtm_name(), outcome, "");
            }
            Ok(KernelMessage::DumpDone) => self.on_dump_done()?,
            Ok(KernelMessage::DumpFailed { errno }) => {
                tracing::warn!(errno, phase = ?self.phase, "netlink dump failed or interrupted; dumping again");
                self.redump = true;
                self.on_dump_done()?;
            }
            Ok(KernelMessage::Ignored(_)) => {}
            Err(e) => {
                tracing::warn!(error = %e, "malformed netlink message skipped");
                self.ops
                    .metrics
                    .kernel_event(malformed_type(&e), EventOutcome::Malformed, "");
            }
        }
        Ok(())
    }

    fn on_neigh(&mut self, ev: &NeighborEvent) {
        let ifname = self.links.name(ev.ifindex);
        let master = if self.ctx.evpn_nvo_exists() {
            self.links.master_name(ev.ifindex)
        } else {
            None
        };
        let is_del = ev.msg_type == sonic_netlink::neigh::NeighMsgType::Del;
        let msg_type = if is_del {
            "RTM_DELNEIGH"
        } else {
            "RTM_NEWNEIGH"
        };
        let written = match (decide_parts(ev, ifname, master, &self.ctx), ifname) {
            (Decision::Drop(reason), _) => {
                tracing::debug!(ifindex = ev.ifindex, ifname = ifname.unwrap_or(""), ip = %ev.dst,
                    state = ev.state, reason = reason.as_str(), "neighbor dropped");
                self.ops
                    .metrics
                    .kernel_event(msg_type, EventOutcome::Filtered, reason.as_str());
                return;
            }
            // The hot path: straight into the writer, no key text (what
            // `dispatch` does with the op `decide` would build).
            (decision, Some(name)) if self.warm.is_none() => {
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
                match set {
                    Some((mac, family)) => tracing::debug!(op = "SET",
                        key = %format_args!("{name}:{}", sonic_netlink::fmt::ip_to_string(&ev.dst)),
                        mac = %sonic_netlink::fmt::mac_to_string(&mac), family = family.as_str(), "neighbor"),
                    None => tracing::debug!(op = "DEL",
                        key = %format_args!("{name}:{}", sonic_netlink::fmt::ip_to_string(&ev.dst)),
                        "neighbor"),
                }
                let origin = if ev.dump {
                    Origin::Dump
                } else {
                    Origin::Notification
                };
                let written = self
                    .writer
                    .stage_parts(name, &ev.dst, set, route_del, origin);
                if written && self.unacked_since.is_none() {
                    self.unacked_since = Some(self.recv_at);
                }
                written
            }
            // Warm start (the reconcile cache takes text keys).
            _ => match decide(ev, ifname, master, &self.ctx) {
                Outcome::Write { op, route_del } => self.dispatch(op, route_del),
                // Not reached: decide_parts dropped it above.
                Outcome::Drop(_) => return,
            },
        };
        self.neigh_events.count(is_del, written);
    }

    /// Returns whether neighbors were deleted because of it.
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
        if let Some(n) = self.warm.as_mut().and_then(|w| w.remove_interface(name)) {
            return n;
        }
        self.writer.remove_interface(name)
    }

    fn on_overrun(&mut self) {
        self.overruns += 1;
        self.ops.metrics.netlink_overruns.inc();
        self.ops.metrics.resync(ResyncCause::NetlinkOverrun);
        tracing::warn!(
            overruns = self.overruns,
            rcvbuf_bytes = self.sock.rcvbuf_bytes(),
            "netlink overrun (ENOBUFS): neighbor events lost; dumping the kernel again"
        );
        self.request_resync();
    }

    /// Start a resync dump now, or after the dump in flight.
    fn request_resync(&mut self) {
        if self.phase != Phase::Idle {
            self.redump = true;
            return;
        }
        self.purpose = Some(DumpPurpose::Resync);
        self.start_dump();
    }

    fn start_dump(&mut self) {
        self.redump = false;
        self.fresh_links = Some(LinkTable::new());
        match self.sock.request_dump(Dump::Links) {
            Ok(()) => self.phase = Phase::Links,
            Err(e) => {
                tracing::error!(error = %e, "cannot request a link dump; will retry on the next event");
                self.phase = Phase::Idle;
                self.redump = true;
            }
        }
    }

    fn on_dump_done(&mut self) -> Result<(), DaemonError> {
        match self.phase {
            Phase::Idle => {}
            Phase::Links if self.redump => self.start_dump(),
            Phase::Links => {
                if let Some(fresh) = self.fresh_links.take() {
                    self.links = fresh;
                }
                self.sock.request_dump(Dump::Neighbors)?;
                self.phase = Phase::Neighbors;
                // Mark and sweep: the dump's ops (and live events meanwhile)
                // go where they always go, marked as listed.
                match self.warm.as_mut().filter(|w| w.caching()) {
                    Some(w) => {
                        w.begin_snapshot();
                    }
                    None => {
                        self.writer.begin_snapshot();
                        if self.audit_appl_drift.is_some() {
                            self.writer.track_suspects();
                        }
                    }
                }
            }
            Phase::Neighbors if self.redump => self.start_dump(),
            Phase::Neighbors => {
                self.phase = Phase::Idle;
                if let Some(w) = self.warm.as_mut().filter(|w| w.caching()) {
                    // Warm start: the dump went to the cache; route deletes
                    // were dropped (b.2 step 17).
                    self.purpose = None;
                    w.end_snapshot();
                    if self.redump {
                        self.request_resync();
                    } else {
                        self.try_reconcile();
                    }
                    return Ok(());
                }
                let c = self.writer.end_snapshot();
                match self.purpose.take() {
                    Some(DumpPurpose::Cold) => {
                        tracing::info!(
                            kernel = self.writer.desired_len(),
                            added = c.added,
                            rewritten = c.changed,
                            deleted = c.removed,
                            links = self.links.len(),
                            "cold start: kernel dump done"
                        );
                        self.request_ready();
                    }
                    Some(DumpPurpose::Resync) | None => {
                        if self.audit_appl_drift.is_some() {
                            // Counted once late notifications had their chance.
                            self.audit_grace_until = Some(Instant::now() + AUDIT_GRACE);
                        } else {
                            tracing::warn!(
                                added = c.added,
                                changed = c.changed,
                                removed = c.removed,
                                overruns = self.overruns,
                                "resynced with the kernel"
                            );
                        }
                    }
                }
                if self.redump {
                    self.request_resync();
                }
            }
        }
        Ok(())
    }

    // ----- warm start -----

    fn on_warm(&mut self, ev: WarmEvent) -> Result<(), DaemonError> {
        match ev {
            WarmEvent::FlagSeen { .. } => {}
            WarmEvent::FlagTimeout { limit } => {
                tracing::error!(
                    limit_secs = limit.as_secs_f64(),
                    "warm start: NEIGH_RESTORE_TABLE|Flags restored=true was not set in time \
                     (did `neighsyncd restore` run?); exiting"
                );
                return Err(DaemonError::RestoreTimeout(limit));
            }
            WarmEvent::TimerFired => self.try_reconcile(),
            WarmEvent::Written { sets, dels, result } => {
                self.warm = None;
                match result {
                    Ok(()) => {
                        tracing::info!(
                            sets,
                            dels,
                            "warm start: reconciled (WARM_RESTART_TABLE|neighsyncd state reconciled)"
                        );
                        self.ops.metrics.set_warm_restart_state("reconciled");
                        self.request_ready();
                    }
                    Err(e) => {
                        tracing::error!(error = %e, sets, dels,
                            "warm start: reconcile write failed; resyncing from APPL_DB");
                        self.redis_lost();
                    }
                }
            }
        }
        Ok(())
    }

    /// Reconcile once the timer fired and no dump is in flight (the dump's
    /// end calls this again).
    fn try_reconcile(&mut self) {
        if self.phase != Phase::Idle {
            return;
        }
        if let Some(w) = self.warm.as_mut() {
            w.start_reconcile(
                &mut self.writer,
                self.dbs.appl.clone(),
                self.appl.clone(),
                self.dbs.state.clone(),
                self.neigh.clone(),
            );
        }
    }

    // ----- CONFIG_DB -----

    fn spawn_subscriptions(&mut self, subs: Vec<(ConfigTable, SubscriberStateTable)>) {
        for t in self.cfg_tasks.drain(..) {
            t.abort();
        }
        self.cfg_generation += 1;
        let generation = self.cfg_generation;
        for (table, mut sub) in subs {
            let tx = self.cfg_tx.clone();
            self.cfg_tasks.push(tokio::spawn(async move {
                loop {
                    let res = sub.next().await;
                    let lost = matches!(&res, Err(e) if e.is_connection_error());
                    if tx.send((generation, table, res)).is_err() || lost {
                        return;
                    }
                }
            }));
        }
    }

    fn on_config(&mut self, table: ConfigTable, res: Result<KeyOp, SwssError>) {
        match res {
            Ok(op) => {
                if apply_cfg(&mut self.ctx, table, &op) {
                    tracing::info!(
                        table = table.name(),
                        key = op.key(),
                        dual_tor = self.ctx.is_dual_tor(),
                        evpn = self.ctx.evpn_nvo_exists(),
                        "CONFIG_DB change affects neighbors; resyncing"
                    );
                    self.ops.metrics.resync(ResyncCause::ConfigChange);
                    self.request_resync();
                }
            }
            Err(e) if e.is_connection_error() => {
                tracing::warn!(table = table.name(), error = %e, "CONFIG_DB subscription lost");
                self.redis_lost();
                self.ops.health.set_redis_down(&e);
            }
            Err(e) => tracing::warn!(table = table.name(), error = %e, "CONFIG_DB change skipped"),
        }
    }

    // ----- Redis -----

    fn maybe_flush(&mut self) {
        // During a warm start nothing is flushed until the reconcile write
        // is done (later ops queue up behind it in the writer).
        // The self-audit's APPL_DB read runs with no write in flight.
        if self.flushing.is_some()
            || self.flush_not_before.is_some()
            || self.warm.is_some()
            || self.auditing.is_some()
        {
            return;
        }
        let Some(conn) = self.appl.clone() else {
            return;
        };
        let Some(batch) = self.writer.take_batch(FLUSH_MAX_KEYS) else {
            return;
        };
        self.batch_since = self.unacked_since.take();
        if self.writer.has_pending() {
            // What did not fit waits for the next batch.
            self.unacked_since = self.batch_since;
        }
        tracing::debug!(
            dels = batch.neigh_dels.len(),
            route_dels = batch.route_dels.len(),
            sets = batch.neigh_sets.len(),
            "flushing"
        );
        self.flush_sent_at = Instant::now();
        self.flushing = Some(Box::pin(flush_batch(
            conn,
            self.neigh.clone(),
            self.route.clone(),
            batch,
        )));
    }

    fn on_flushed(&mut self, batch: Batch, res: Result<(), SwssError>) {
        let since = self.batch_since.take();
        let m = &self.ops.metrics;
        match &res {
            Ok(()) => {
                m.redis_ops(APP_NEIGH_TABLE_NAME, "del", batch.neigh_dels.len());
                m.redis_ops(APP_ROUTE_TABLE_NAME, "del", batch.route_dels.len());
                m.redis_ops(APP_NEIGH_TABLE_NAME, "set", batch.neigh_sets.len());
                m.redis_batches.inc();
                if let Some(t) = since {
                    m.observe_event_to_ack(t.elapsed());
                }
                self.ops.health.write_ok();
            }
            Err(e) => {
                m.redis_write_errors.inc();
                self.ops.health.write_failed(e);
                // The keys are written again with the next batches.
                self.unacked_since = match (self.unacked_since, since) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        match res {
            Ok(()) => self.writer.complete(batch),
            Err(e) if e.is_connection_error() => {
                tracing::warn!(error = %e, keys = batch.len(), "Redis lost while writing; keeping the state in memory");
                self.writer.fail(batch);
                self.redis_lost();
                self.ops.health.set_redis_down(&e);
            }
            Err(e) => {
                tracing::error!(error = %e, keys = batch.len(), "APPL_DB write failed; retrying");
                self.writer.fail(batch);
                self.flush_not_before = Some(Instant::now() + FLUSH_ERROR_RETRY);
            }
        }
    }

    fn redis_lost(&mut self) {
        self.appl = None;
        self.auditing = None;
        self.audit_appl_drift = None;
        self.audit_grace_until = None;
        self.writer.take_suspects();
        self.ops.health.set_redis_down("connection lost");
        self.ops.notifier.status("Redis lost; reconnecting");
        for t in self.cfg_tasks.drain(..) {
            t.abort();
        }
        self.cfg_generation += 1;
        if self.reconnecting.is_none() {
            self.reconnecting = Some(Box::pin(reconnect(self.dbs.clone(), self.neigh.clone())));
        }
    }

    fn on_reconnected(&mut self, rec: Reconnected) {
        let before = self.ctx.clone();
        self.ops.metrics.redis_reconnects.inc();
        self.ops.metrics.resync(ResyncCause::RedisReconnect);
        self.ops.health.set_redis_up();
        self.ops
            .notifier
            .status(&format!("running: {} neighbors", self.writer.desired_len()));
        let mut subs = Vec::new();
        for (table, sub, initial) in rec.subs {
            self.ctx.reset_table(table);
            for op in initial {
                apply_cfg(&mut self.ctx, table, &op);
            }
            subs.push((table, sub));
        }
        self.spawn_subscriptions(subs);
        // A flush may still be in flight on the old connection: its result
        // no longer matters, the resync below recomputes everything.
        self.flushing = None;
        if self.warm.as_ref().is_some_and(|w| w.caching()) {
            // The writer is empty until the reconcile: comparing APPL_DB
            // with it would delete everything.
            tracing::info!("Redis reconnected during the warm start; still caching");
        } else {
            let c = self.writer.resync_from_appl(&rec.view);
            tracing::info!(
                added = c.added,
                changed = c.changed,
                removed = c.removed,
                "Redis reconnected; writing the difference to APPL_DB"
            );
        }
        self.appl = Some(rec.appl);
        if self.ctx != before {
            self.request_resync();
        }
    }

    // ----- operations: READY, self-audit -----

    /// Ask for `READY=1` (systemd notify) once everything the start-up
    /// sync staged is acknowledged by Redis ([`Self::maybe_notify_ready`]).
    /// Called after the cold start's kernel dump and after the warm start's
    /// reconcile write; later calls change nothing.
    fn request_ready(&mut self) {
        if !self.ops.notifier.is_ready() {
            self.ready_on_flush = true;
        }
    }

    /// Sends `READY=1` and a `STATUS=` line when [`Self::request_ready`] was
    /// called and nothing is pending, in flight or being flushed.
    fn maybe_notify_ready(&mut self) {
        if self.ready_on_flush
            && self.flushing.is_none()
            && !self.writer.has_pending()
            && !self.writer.in_flight()
        {
            self.ready_on_flush = false;
            release_free_memory();
            self.ops.notifier.ready(&format!(
                "synced: {} neighbors in APPL_DB NEIGH_TABLE",
                self.writer.desired_len()
            ));
        }
    }

    /// Starts a due self-audit once nothing is written or dumped and no
    /// warm start runs: APPL_DB `NEIGH_TABLE` is read ([`read_appl_view`];
    /// flushes wait meanwhile), then [`Self::on_audit_read`].
    fn maybe_start_audit(&mut self) {
        if !self.audit_due
            || self.auditing.is_some()
            || self.audit_appl_drift.is_some()
            || self.flushing.is_some()
            || self.phase != Phase::Idle
            || self.warm.is_some()
        {
            return;
        }
        let Some(mut conn) = self.appl.clone() else {
            return;
        };
        self.audit_due = false;
        let producer = self.neigh.clone();
        self.auditing = Some(Box::pin(async move {
            read_appl_view(&mut conn, &producer).await
        }));
    }

    /// The audit's APPL_DB view: keys that were written and now differ from
    /// the desired table are drift, made dirty again
    /// ([`NeighWriter::audit_against_appl`]; keys still waiting to be
    /// written are not drift). Then the kernel is dumped again as a check;
    /// the sum of both repairs becomes `neighsyncd_audit_drift`
    /// ([`Self::audit_finished`]).
    fn on_audit_read(&mut self, res: Result<ConsumerView, SwssError>) {
        match res {
            Ok(view) => {
                let c = self.writer.audit_against_appl(&view);
                self.audit_appl_drift = Some(c.added + c.changed + c.removed);
                if c.added + c.changed + c.removed > 0 {
                    tracing::warn!(
                        missing = c.added,
                        different = c.changed,
                        stale = c.removed,
                        "audit: APPL_DB NEIGH_TABLE differs from the kernel; repairing"
                    );
                }
                self.request_resync();
            }
            Err(e) if e.is_connection_error() => {
                tracing::warn!(error = %e, "audit: Redis lost while reading APPL_DB");
                self.redis_lost();
                self.ops.health.set_redis_down(&e);
            }
            Err(e) => tracing::warn!(error = %e, "audit: cannot read APPL_DB NEIGH_TABLE; skipped"),
        }
    }

    /// [`AUDIT_GRACE`] after the audit's kernel dump (later if another dump
    /// runs by then): the dump's changes that no notification followed are
    /// the kernel drift.
    fn on_audit_grace_end(&mut self) {
        if self.phase != Phase::Idle {
            self.audit_grace_until = Some(Instant::now() + AUDIT_GRACE);
            return;
        }
        self.audit_grace_until = None;
        let kernel_drift = self.writer.take_suspects();
        if let Some(appl_drift) = self.audit_appl_drift.take() {
            self.audit_finished(appl_drift, kernel_drift);
        }
    }

    /// The end of a self-audit: `drift` is exported; a drift is a resync
    /// with cause `audit` (a clean audit is not).
    fn audit_finished(&mut self, appl_drift: usize, kernel_drift: usize) {
        let drift = appl_drift + kernel_drift;
        self.ops.metrics.audit_done(drift);
        if drift > 0 {
            self.ops.metrics.resync(ResyncCause::Audit);
            tracing::warn!(
                drift,
                appl = appl_drift,
                kernel = kernel_drift,
                "audit: drift repaired"
            );
        } else {
            tracing::debug!("audit: APPL_DB NEIGH_TABLE matches the kernel");
        }
    }

    async fn shutdown(&mut self) {
        let deadline = Instant::now() + SHUTDOWN_FLUSH_LIMIT;
        self.flush_not_before = None;
        loop {
            self.maybe_flush();
            let Some(fut) = self.flushing.as_mut() else {
                break;
            };
            match tokio::time::timeout_at(deadline, fut).await {
                Ok((batch, res)) => {
                    self.flushing = None;
                    self.on_flushed(batch, res);
                    if self.appl.is_none() || self.flush_not_before.is_some() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if self.writer.has_pending() || self.writer.in_flight() {
            tracing::warn!(
                pending = self.writer.pending_len(),
                "exiting with unwritten neighbor changes"
            );
        }
        for t in self.cfg_tasks.drain(..) {
            t.abort();
        }
        tracing::info!(overruns = self.overruns, "neighsyncd stopped");
    }
}

/// Await the future in `slot`, or never complete when there is none (for
/// `tokio::select!` branches on optional work).
async fn poll_opt<T>(slot: &mut Option<BoxFuture<T>>) -> T {
    match slot.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Wait for the next tick of an optional interval; never without one.
async fn tick_opt(interval: &mut Option<tokio::time::Interval>) {
    match interval.as_mut() {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The `type` label of a message that could not be decoded, when the
/// decoder knows it (`RTM_NEWNEIGH`, ...); empty otherwise.
fn malformed_type(e: &sonic_netlink::DecodeError) -> &'static str {
    match e {
        sonic_netlink::DecodeError::MissingAttribute { msg, .. } => msg,
        _ => "",
    }
}

/// Apply one CONFIG_DB change to the context; true when a fact changed.
fn apply_cfg(ctx: &mut SyncContext, table: ConfigTable, op: &KeyOp) -> bool {
    match op {
        KeyOp::Set(key, fvs) => ctx.apply(table, key, Some(fvs)),
        KeyOp::Del(key) => ctx.apply(table, key, None),
    }
}
