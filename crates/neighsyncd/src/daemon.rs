//! neighsyncd's glue: the start-up steps, then the shared
//! driver ([`engine::run`]) running [`NeighCore`] with [`NeighEffects`] (the Redis work
//! the core asks for).
//!
//! Start-up (`start`; docs/behavior.md b.1 with the fixes of f):
//! 1. database_config.json (or the namespace's entry of
//!    database_global.json); a missing or broken file is fatal and the
//!    message names the file ([`sonic_daemon::startup::StartupError::Config`]).
//! 2. Connect APPL_DB, CONFIG_DB and STATE_DB, retrying with backoff (each
//!    retry is logged).
//! 3. CONFIG_DB `LOGGER|neighsyncd`: `LOGLEVEL NOTICE` / `LOGOUTPUT SYSLOG`
//!    where missing (logger.cpp, a.2); its `LOGLEVEL` is followed live.
//! 4. WarmStart check (writes `WARM_RESTART_TABLE|neighsyncd
//!    restore_count`).
//! 5. `SCRIPT LOAD` of the ProducerStateTable scripts.
//! 6. One CONFIG_DB subscription (LOGGER, PEER_SWITCH, VXLAN_EVPN_NVO,
//!    INTERFACE, PORTCHANNEL_INTERFACE, VLAN_INTERFACE; one pattern,
//!    docs/differences.md S10) with its initial load
//!    applied to the [`SyncContext`] **before** any neighbour is handled
//!    (the C++ leaves the NVO/dump order undefined, f.9).
//! 7. Cold: APPL_DB's NEIGH_TABLE as the consumer will see it
//!    ([`read_appl_view`]) seeds the writer. Warm ([`crate::warm`]):
//!    unconsumed NEIGH_TABLE operations are dropped and APPL_DB is read
//!    into the reconcile cache.
//! 8. Netlink socket on RTNLGRP_LINK + RTNLGRP_NEIGH, receive buffer forced
//!    to 64 MiB (`SO_RCVBUFFORCE`); the core asks for the link dump, then
//!    the neighbour dump, at once.
//!
//! From then on [`crate::core`] decides everything; this module only
//! carries out its [`Action`]s.

use sonic_daemon::effects::SharedSession;
use std::time::{Duration, Instant};

use futures::future::AbortHandle;
use redis::aio::MultiplexedConnection;
use sonic_daemon::engine::{self, Effects, Io};
use sonic_daemon::logging::{SharedLogger, CFG_LOGGER_TABLE_NAME};
use sonic_daemon::startup::{step, Dbs, REDIS_RESPONSE_TIMEOUT};
use sonic_daemon::{DbPaths, Ops};
use sonic_netlink::socket::{NetlinkSocket, RcvBuf, RTNLGRP_LINK, RTNLGRP_NEIGH};
use swss::restart_assist::{AppRestartAssist, ReconcileOps};
use swss::{
    ConsumerView, DbConnector, KeyOp, MultiTableSubscriber, PatternScope, ProducerStateTable,
    SubscribeMode, SwssError,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::context::{ConfigTable, SyncContext, SyncOptions};
use crate::core::{Action, Epoch, Input, NeighCore, Setup};
pub use crate::error::DaemonError;
pub use crate::sync::{
    APP_NAME, APP_NEIGH_FAILED_TABLE_NAME, APP_NEIGH_TABLE_NAME, APP_ROUTE_TABLE_NAME,
};
use crate::warm;
use crate::writer::Batch;

/// Default netlink receive buffer, forced with `SO_RCVBUFFORCE` (bytes).
pub const DEFAULT_NETLINK_RCVBUF: usize = 64 << 20;

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
    /// The opt-in sync rules (`--router-interfaces-only`,
    /// `--sub-interface-link-local`); all off by default.
    pub sync: SyncOptions,
}

/// Runs neighsyncd until SIGTERM/SIGINT: `start`, then the engine's
/// driver ([`engine::run`]). Must run inside a tokio runtime with IO and
/// time enabled (the binary uses a current-thread runtime).
///
/// Errors: [`DaemonError`]; Redis outages after start-up are not errors.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    tune_allocator();
    engine::run(&opts.ops, start(&opts)).await
}

/// The start-up sequence (module docs). Redis being down is not an error:
/// each step retries with backoff and logs.
///
/// Errors: [`DaemonError::Common`]: the database config (names the file),
/// a Redis error reply, the netlink socket.
async fn start(opts: &Options) -> Result<(NeighCore, NeighEffects, NetlinkSocket), DaemonError> {
    let cfg = opts.db.load()?;
    let dbs = Dbs::new(&cfg, Some(REDIS_RESPONSE_TIMEOUT))?;
    let neigh = ProducerStateTable::new(APP_NEIGH_TABLE_NAME, dbs.appl.location());
    tracing::info!(db_config = %cfg.path().display(), appl = %dbs.appl.location().addr, "starting");

    // Every step runs through `step`: a Redis connection lost during
    // start-up reconnects all three databases with backoff and runs the
    // step again.
    let mut conns = dbs.connect_all().await;
    let (config_sep, state_sep) = (dbs.config.separator(), dbs.state.separator());
    opts.ops.notifier.status("starting: connected to Redis");
    let logger = step("CONFIG_DB LOGGER defaults", &dbs, &mut conns, |_| {
        opts.ops.logger_sync(&dbs.config)
    })
    .await?;
    let logger = SharedLogger::new(logger);
    let assist = step("WarmStart check", &dbs, &mut conns, |mut c| async move {
        warm::check(&mut c.state, state_sep, &mut c.config, config_sep).await
    })
    .await?;
    step("SCRIPT LOAD", &dbs, &mut conns, |mut c| {
        let p = neigh.clone();
        async move { p.load_scripts(&mut c.appl).await }
    })
    .await?;
    let (sub, initial) = step("CONFIG_DB subscription", &dbs, &mut conns, |_| {
        subscribe(&dbs.config)
    })
    .await?;
    let mut ctx = SyncContext::with_options(opts.sync);
    for (table, ops) in split_initial(initial, &logger, true) {
        for op in &ops {
            crate::core::apply_cfg(&mut ctx, table, op);
        }
    }
    tracing::info!(
        dual_tor = ctx.is_dual_tor(),
        evpn = ctx.evpn_nvo_exists(),
        router_interfaces_only = opts.sync.router_interfaces_only,
        sub_interface_link_local = opts.sync.sub_interface_link_local,
        "CONFIG_DB initial state loaded"
    );
    let failed = ProducerStateTable::new(APP_NEIGH_FAILED_TABLE_NAME, dbs.appl.location());
    let failed_keys = step(
        "reading APPL_DB NEIGH_FAILED_TABLE",
        &dbs,
        &mut conns,
        |mut c| {
            let p = failed.clone();
            async move { read_failed_keys(&mut c.appl, &p).await }
        },
    )
    .await?;
    if !failed_keys.is_empty() {
        tracing::info!(keys = failed_keys.len(), "APPL_DB NEIGH_FAILED_TABLE read");
    }
    let setup = Setup {
        ctx,
        audit_every: opts.audit_every,
        failed: failed_keys,
    };
    let core = initial_core(opts, setup, &assist, &neigh, &dbs, &mut conns).await?;
    let sock = NetlinkSocket::open_with(&[RTNLGRP_LINK, RTNLGRP_NEIGH], opts.rcvbuf)?;
    opts.ops.health.set_netlink_up(true);
    opts.ops.health.set_redis_up();
    let effects = NeighEffects {
        session: SharedSession::new(conns.appl),
        route: ProducerStateTable::new(APP_ROUTE_TABLE_NAME, dbs.appl.location()),
        failed,
        neigh,
        dbs,
        assist,
        logger,
        on_session: [None, None],
        startup_sub: Some(sub),
    };
    Ok((core, effects, sock))
}

/// Start-up step 7: the core, cold (APPL_DB's view seeds the writer) or
/// warm (APPL_DB read into the reconcile cache).
///
/// Errors: [`DaemonError::Common`] for a Redis error reply.
async fn initial_core(
    opts: &Options,
    setup: Setup,
    assist: &AppRestartAssist,
    neigh: &ProducerStateTable,
    dbs: &Dbs,
    conns: &mut sonic_daemon::startup::Conns,
) -> Result<NeighCore, DaemonError> {
    if assist.is_warm() {
        let restored = step(
            "warm start: reading APPL_DB NEIGH_TABLE",
            dbs,
            conns,
            |mut c| {
                let (a, p) = (assist.clone(), neigh.clone());
                async move { warm::restore_table(&a, &mut c.appl, &mut c.state, &p).await }
            },
        )
        .await?;
        let (timer, wait) = (assist.timer(), opts.restore_wait);
        let (cache, flag) = (restored.cache, restored.flag_set);
        Ok(NeighCore::warm(
            setup,
            cache,
            flag,
            timer,
            wait,
            Instant::now(),
        ))
    } else {
        let view = step("reading APPL_DB NEIGH_TABLE", dbs, conns, |mut c| {
            let p = neigh.clone();
            async move { read_appl_view(&mut c.appl, &p).await }
        })
        .await?;
        tracing::info!(keys = view.len(), "APPL_DB NEIGH_TABLE read");
        Ok(NeighCore::cold(setup, &view, Instant::now()))
    }
}

// ===== Redis steps =====

/// CONFIG_DB `LOGGER` and the six tables the rules read
/// ([`ConfigTable::ALL`]), on one pubsub connection with one pattern
/// (`__keyspace@<id>__:*`; Redis matches every keyspace notification of
/// every database against every pattern, so one pattern instead of seven is
/// cheaper for the whole switch, docs/differences.md S10). Returns the
/// subscriber and its initial content (table name, op).
///
/// Errors: [`SwssError`] from Redis.
async fn subscribe(config: &DbConnector) -> Result<Subscribed, SwssError> {
    let mut tables: Vec<(&str, SubscribeMode)> = ConfigTable::ALL
        .iter()
        .map(|t| (t.name(), SubscribeMode::Content))
        .collect();
    tables.push((CFG_LOGGER_TABLE_NAME, SubscribeMode::Content));
    let mut sub = MultiTableSubscriber::new(config, &tables, PatternScope::Database).await?;
    let initial = sub.drain_queued();
    Ok((sub, initial))
}

/// A subscriber with its initial content (table name, op).
type Subscribed = (MultiTableSubscriber, Vec<(String, KeyOp)>);

/// Splits a subscription's initial content: `LOGGER` ops go to `logger`
/// (`at_start`: the daemon's first load, see [`sonic_daemon::logging::LoggerSync::apply`]); the
/// others are grouped per table, every table present (an empty group
/// resets it).
fn split_initial(
    initial: Vec<(String, KeyOp)>,
    logger: &SharedLogger,
    at_start: bool,
) -> Vec<(ConfigTable, Vec<KeyOp>)> {
    let mut groups: Vec<(ConfigTable, Vec<KeyOp>)> =
        ConfigTable::ALL.iter().map(|t| (*t, Vec::new())).collect();
    for (name, op) in initial {
        let group =
            ConfigTable::from_name(&name).and_then(|t| groups.iter_mut().find(|(gt, _)| *gt == t));
        match group {
            Some((_, ops)) => ops.push(op),
            None => logger.apply(&op, at_start),
        }
    }
    groups
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

/// The keys (`<ifname>:<ip>`) of APPL_DB `NEIGH_FAILED_TABLE` as nbrmgrd
/// will see them once it has popped everything pending.
///
/// Errors: [`SwssError::Redis`], [`SwssError::UnexpectedReply`].
pub async fn read_failed_keys(
    conn: &mut MultiplexedConnection,
    producer: &ProducerStateTable,
) -> Result<Vec<String>, SwssError> {
    let view = swss::read_consumer_view(conn, producer, "APPL_DB").await?;
    Ok(view.iter().map(|(k, _)| k.to_owned()).collect())
}

/// The ProducerStateTables one flush writes to.
#[derive(Debug, Clone)]
pub struct Producers {
    /// APPL_DB `NEIGH_TABLE`.
    pub neigh: ProducerStateTable,
    /// APPL_DB `ROUTE_TABLE` (the EVPN host-route deletes).
    pub route: ProducerStateTable,
    /// APPL_DB `NEIGH_FAILED_TABLE` (dual-ToR).
    pub failed: ProducerStateTable,
}

impl Producers {
    /// The three producers of APPL_DB at `appl`.
    pub fn new(appl: &swss::DbLocation) -> Self {
        Producers {
            neigh: ProducerStateTable::new(APP_NEIGH_TABLE_NAME, appl),
            route: ProducerStateTable::new(APP_ROUTE_TABLE_NAME, appl),
            failed: ProducerStateTable::new(APP_NEIGH_FAILED_TABLE_NAME, appl),
        }
    }
}

/// Sends one batch as one pipeline: NEIGH_TABLE batch DEL, ROUTE_TABLE
/// batch DEL, NEIGH_TABLE batch SET, then NEIGH_FAILED_TABLE batch DEL and
/// batch SET (each table's batch is skipped when empty; the scripts are
/// shared, so one flush carries every table).
async fn flush_batch(
    conn: Option<MultiplexedConnection>,
    p: Producers,
    batch: &Batch,
) -> Result<(), SwssError> {
    let Some(mut conn) = conn else {
        return Err(SwssError::NotConnected);
    };
    write_batch(&mut conn, &p, batch).await
}

/// The pipeline of [`Action::Flush`] (see `flush_batch`) on any connection
/// (the conformance scenarios run it on an in-memory Redis).
///
/// Errors: as [`ProducerStateTable::flush`].
pub async fn write_batch<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    p: &Producers,
    batch: &Batch,
) -> Result<(), SwssError> {
    let mut pipe = redis::pipe();
    p.neigh.queue_batch_del(&mut pipe, &batch.neigh_dels);
    p.route.queue_batch_del(&mut pipe, &batch.route_dels);
    p.neigh.queue_batch_set(&mut pipe, &batch.neigh_sets);
    p.failed.queue_batch_del(&mut pipe, &batch.failed_dels);
    p.failed.queue_batch_set(&mut pipe, &batch.failed_sets);
    p.neigh.flush(conn, &pipe).await
}

// ===== effects =====

/// Carries out [`NeighCore`]'s actions.
pub struct NeighEffects {
    dbs: Dbs,
    neigh: ProducerStateTable,
    route: ProducerStateTable,
    failed: ProducerStateTable,
    assist: AppRestartAssist,
    /// The live session (the APPL_DB connection, `None` while
    /// reconnecting, and the CONFIG_DB subscription's forwarder), shared
    /// with the reconnect task.
    session: SharedSession<MultiplexedConnection>,
    logger: SharedLogger,
    /// The last flush and audit read on the current APPL_DB connection
    /// (the core has at most one of each in flight). Aborted on a
    /// reconnect, which drops the old connection: a write Redis has not
    /// run yet (a paused client) then never lands after the reconnect's
    /// APPL_DB read, which would make that read stale.
    on_session: [Option<AbortHandle>; 2],
    /// The start-up CONFIG_DB subscription, until [`Effects::begin`]
    /// forwards it.
    startup_sub: Option<MultiTableSubscriber>,
}

impl NeighEffects {
    /// Feeds `sub` into the core as [`Input::Config`] of `epoch`.
    fn follow(&self, sub: MultiTableSubscriber, epoch: Epoch, tx: mpsc::UnboundedSender<Input>) {
        let task = spawn_forwarder(sub, epoch, self.logger.clone(), tx);
        self.session.lock().add_forwarder(task);
    }

    fn appl(&self) -> Option<MultiplexedConnection> {
        self.session.lock().conns()
    }

    fn reconnect(&mut self, epoch: Epoch, io: &mut Io<Input>) {
        for work in self.on_session.iter_mut().filter_map(Option::take) {
            work.abort();
        }
        self.session.lock().lost();
        let (dbs, neigh, failed, session, tx) = (
            self.dbs.clone(),
            self.neigh.clone(),
            self.failed.clone(),
            self.session.clone(),
            io.sender(),
        );
        let logger = self.logger.clone();
        io.spawn(async move {
            let (appl, (sub, initial), view, failed_keys) =
                engine::retry_forever("Redis reconnect incomplete", || {
                    reconnect_once(&dbs, &neigh, &failed)
                })
                .await;
            let config = split_initial(initial, &logger, false);
            // The forwarder is a task of its own; this future is polled by
            // the driver, which hands `Reconnected` to the core in the same
            // poll, before the (current-thread) runtime can run the
            // forwarder: no change of the new session overtakes the
            // initial load it follows.
            let forwarder = spawn_forwarder(sub, epoch, logger, tx);
            session.lock().connected(appl, vec![forwarder]);
            Input::Reconnected {
                epoch,
                config,
                view,
                failed: failed_keys,
            }
        });
    }
}

impl Effects<NeighCore> for NeighEffects {
    fn begin(&mut self, io: &mut Io<Input>) {
        if let Some(sub) = self.startup_sub.take() {
            self.follow(sub, 0, io.sender());
        }
    }

    fn execute(&mut self, action: Action, io: &mut Io<Input>) {
        match action {
            Action::Flush { epoch, batch } => {
                let producers = Producers {
                    neigh: self.neigh.clone(),
                    route: self.route.clone(),
                    failed: self.failed.clone(),
                };
                let conn = self.appl();
                let task = io.spawn(async move {
                    let result = flush_batch(conn, producers, &batch).await;
                    Input::Flushed {
                        epoch,
                        batch,
                        result,
                    }
                });
                self.on_session[0] = Some(task);
            }
            Action::ReadAuditView { epoch } => {
                let (conn, neigh) = (self.appl(), self.neigh.clone());
                let task = io.spawn(async move {
                    let result = match conn {
                        Some(mut c) => read_appl_view(&mut c, &neigh).await,
                        None => Err(SwssError::NotConnected),
                    };
                    Input::AuditView { epoch, result }
                });
                self.on_session[1] = Some(task);
            }
            Action::Reconnect { epoch } => self.reconnect(epoch, io),
            Action::WatchRestoreFlag => {
                let state = self.dbs.state.clone();
                io.spawn(async move {
                    warm::wait_restore_flag(state).await;
                    Input::RestoreFlagSet
                });
            }
            Action::WriteReconcile(ops) => self.write_reconcile(ops, io),
            Action::ReleaseMemory => release_free_memory(),
        }
    }
}

impl NeighEffects {
    fn write_reconcile(&self, ops: ReconcileOps, io: &mut Io<Input>) {
        let (appl, conn, state) = (self.dbs.appl.clone(), self.appl(), self.dbs.state.clone());
        let (assist, neigh) = (self.assist.clone(), self.neigh.clone());
        io.spawn(async move {
            Input::ReconcileWritten(
                warm::write_reconcile(appl, conn, state, assist, neigh, ops).await,
            )
        });
    }
}

/// One reconnect attempt: APPL_DB connection, SCRIPT LOAD, CONFIG_DB
/// subscriptions, APPL_DB's `NEIGH_TABLE` view and `NEIGH_FAILED_TABLE`
/// keys.
async fn reconnect_once(
    dbs: &Dbs,
    neigh: &ProducerStateTable,
    failed: &ProducerStateTable,
) -> Result<(MultiplexedConnection, Subscribed, ConsumerView, Vec<String>), SwssError> {
    let mut appl = dbs.appl.connect_retrying().await;
    neigh.load_scripts(&mut appl).await?;
    let sub = subscribe(&dbs.config).await?;
    let view = read_appl_view(&mut appl, neigh).await?;
    let failed_keys = read_failed_keys(&mut appl, failed).await?;
    Ok((appl, sub, view, failed_keys))
}

/// The task feeding the subscription's changes into the core (`LOGGER`
/// ones to the log level) until it is lost (that error is fed too) or the
/// task is aborted.
fn spawn_forwarder(
    sub: MultiTableSubscriber,
    epoch: Epoch,
    logger: SharedLogger,
    tx: mpsc::UnboundedSender<Input>,
) -> JoinHandle<()> {
    sonic_daemon::effects::forward(
        sub,
        tx,
        move |(name, op)| match ConfigTable::from_name(&name) {
            Some(table) => Some(Input::Config {
                epoch,
                change: Ok((table, op)),
            }),
            None => {
                logger.apply(&op, false);
                None
            }
        },
        move |e| Input::Config {
            epoch,
            change: Err(e),
        },
    )
}

// ===== memory =====

/// glibc malloc: a fixed 128 KiB mmap threshold. By default glibc raises
/// the threshold to the size of every large block freed (up to 32 MiB), so
/// after a cold sync or a burst the next big tables come from the heap and
/// their memory is never given back. Fixed, large tables and buffers are
/// mmapped and return to the kernel when freed.
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
/// back to the kernel (`malloc_trim(0)`). Run once the start-up sync is
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
