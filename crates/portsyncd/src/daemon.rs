//! portsyncd's start-up and its wiring onto the shared engine
//! (portsyncd.cpp main, linksync.cpp; docs/behavior.md d).
//!
//! Start-up, in the C++ order, before the engine runs:
//! 1. database_config.json (or the namespace's entry of database_global.json);
//!    a missing or broken file is fatal ([`sonic_daemon::startup::StartupError::Config`]).
//! 2. Connect CONFIG_DB, APPL_DB and STATE_DB (retrying with backoff).
//! 3. CONFIG_DB `LOGGER|portsyncd`: `LOGLEVEL NOTICE` / `LOGOUTPUT SYSLOG`
//!    where missing (logger.cpp, docs/behavior.md a.2).
//! 4. CONFIG_DB `DEVICE_METADATA|localhost` `switch_type` ([`SwitchType::parse`]).
//! 5. WarmStart check for app `portsyncd`, docker `swss`, incrementing
//!    STATE_DB `WARM_RESTART_TABLE|portsyncd restore_count` when warm.
//! 6. Netlink socket on RTNLGRP_LINK with a large receive buffer
//!    (`SO_RCVBUFFORCE`), and a link dump request, **before** the port config
//!    is read: the replies and any later change wait in the socket.
//! 7. CONFIG_DB `PORT|*` read; on a cold start copied verbatim into APPL_DB
//!    `PORT_TABLE` through a ProducerStateTable in one pipeline, followed by
//!    `PortConfigDone count=<n>` ([`port_config_ops`]).
//! 8. Cold start and not a DPU: every `Ethernet*` netdev that exists now is
//!    brought admin-down through rtnetlink (never a shell, docs/behavior.md f.17)
//!    and its ifindex is ignored from then on (LinkSync::LinkSync).
//! 9. APPL_DB `PORT_TABLE` subscription; its initial load is the
//!    `admin_status` pre-check (LinkSync::LinkSync step 1) and from then on
//!    it tells [`PortSync`] which ports orchagent has consumed (replacing the
//!    C++ HGETALL per link message, docs/behavior.md f.15), by key existence
//!    only. STATE_DB `PORT_TABLE` is followed for deletions only, so our own
//!    writes cause no reads (docs/differences.md P9; [`effects::subscribe_all`]).
//!    With `--port-config-count-follows-config`, CONFIG_DB `PORT` is
//!    followed too (key presence): its initial load is compared with the
//!    count written in step 7, and from then on APPL_DB
//!    `PORT_TABLE:PortConfigDone count` follows the number of configured
//!    ports ([`crate::sync::PortConfigCount`]).
//!
//! Then [`sonic_daemon::engine::Driver`] runs the I/O-free
//! [`PortCore`] (link messages -> STATE_DB `PORT_TABLE|<name>`, PortInitDone
//! once, the PortInitDone warning, the self-audit, Redis loss and ENOBUFS;
//! see [`crate::core`]) with [`PortEffects`] doing the Redis work. SIGTERM /
//! SIGINT write what is pending (at most [`sonic_daemon::engine::SHUTDOWN_FLUSH_LIMIT`]) and exit 0.
//! The ports still holding back PortInitDone are logged every
//! [`INIT_DONE_WARN_INTERVAL`].
//!
//! Faults (better than the C++, docs/behavior.md f.5, f.8; the decisions are
//! the core's, [`crate::core`]):
//! * Redis loss: the link state stays in memory; reconnect with exponential
//!   backoff capped at 5 s; then a fresh APPL_DB subscription (initial load)
//!   and a rewrite of the STATE_DB entries that differ from the kernel.
//! * An error reply to a write: the write is kept and retried after the same
//!   backoff (a key of the wrong type is reported and skipped, never retried).
//! * Netlink ENOBUFS: the links are dumped again; links missing from the dump
//!   are treated as deleted (mark and sweep), so STATE_DB equals the kernel.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use sonic_daemon::logging::SharedLogger;
use sonic_daemon::startup::{step, Conns, Dbs, REDIS_RESPONSE_TIMEOUT};
use sonic_daemon::{DbPaths, Ops};
use sonic_netlink::socket::{Dump, NetlinkSocket, RcvBuf, RTNLGRP_LINK};
use swss::{FieldValues, ProducerStateTable, SwssError, Table};

pub use crate::core::INIT_DONE_WARN_INTERVAL;
use crate::core::{PortCore, Setup};
use crate::effects::{self, PortEffects};
pub use crate::error::DaemonError;
use crate::sync::{
    port_config_ops, PortConfigCount, PortSync, SwitchType, APP_PORT_TABLE_NAME,
    CFG_DEVICE_METADATA_TABLE_NAME, CFG_PORT_TABLE_NAME, DEVICE_METADATA_KEY, SWITCH_TYPE_FIELD,
};

/// The WarmStart application name and the CONFIG_DB `LOGGER|<name>` key.
pub const APP_NAME: &str = "portsyncd";
/// The WarmStart docker name (`WARM_RESTART_ENABLE_TABLE|swss`).
pub const WARM_DOCKER: &str = "swss";
/// CONFIG_DB logger table (`LOGGER|<daemon>`, logger.cpp).
pub const CFG_LOGGER_TABLE_NAME: &str = sonic_daemon::logging::CFG_LOGGER_TABLE_NAME;

// ===== options =====

/// What the command line decides (see `cli.rs`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the databases are (database_config.json, or the namespace's
    /// entry of database_global.json).
    pub db: DbPaths,
    /// Netlink receive buffer sizing ([`RcvBuf::Force`] of 16 MiB by
    /// default; tests use a tiny [`RcvBuf::Exact`] to provoke ENOBUFS).
    pub rcvbuf: RcvBuf,
    /// Metrics, health, systemd notify and the live log level
    /// ([`sonic_daemon::Ops`]).
    pub ops: Ops,
    /// Self-audit period (`--audit-interval`); `None` disables it.
    pub audit_every: Option<Duration>,
    /// `--port-config-count-follows-config`: after start-up, keep APPL_DB
    /// `PORT_TABLE:PortConfigDone count` equal to the number of CONFIG_DB
    /// `PORT` keys (dynamic port breakout; [`crate::sync::PortConfigCount`]).
    /// `false` (the default): written once at a cold start, as the C++.
    pub port_config_count_follows_config: bool,
}

// ===== start-up steps =====

/// CONFIG_DB `DEVICE_METADATA|localhost switch_type`.
async fn read_switch_type(
    conn: &mut MultiplexedConnection,
    sep: char,
) -> Result<SwitchType, SwssError> {
    let table = Table::new(CFG_DEVICE_METADATA_TABLE_NAME, sep).in_db("CONFIG_DB");
    let value = table
        .hget(conn, DEVICE_METADATA_KEY, SWITCH_TYPE_FIELD)
        .await?;
    let (switch_type, warning) = SwitchType::parse(value.as_deref());
    if let Some(w) = warning {
        swss::bad_entry::report("CONFIG_DB", &table.full_key(DEVICE_METADATA_KEY), w);
    }
    Ok(switch_type)
}

/// CONFIG_DB `PORT|*`: every port with its fields in HGETALL order, keys in
/// SCAN order (sorted), read in pipelined chunks. Entries that vanished
/// between SCAN and HGETALL are skipped, so are keys that are not hashes
/// (reported as bad entries).
async fn read_config_ports(
    conn: &mut MultiplexedConnection,
    sep: char,
) -> Result<Vec<(String, FieldValues)>, SwssError> {
    let table = Table::new(CFG_PORT_TABLE_NAME, sep).in_db("CONFIG_DB");
    let keys = table.keys(conn).await?;
    table.get_many(conn, &keys, CONFIG_READ_CHUNK).await
}

/// Keys per pipelined round trip when reading CONFIG_DB `PORT`.
const CONFIG_READ_CHUNK: usize = 512;

/// Cold start: APPL_DB `PORT_TABLE` producer SETs for every port, then
/// `PortConfigDone`, all in one pipeline (batched producer script).
async fn write_port_config(
    conn: &mut MultiplexedConnection,
    producer: &ProducerStateTable,
    ops: &[(String, FieldValues)],
) -> Result<(), SwssError> {
    if ops.is_empty() {
        return Ok(());
    }
    producer.load_scripts(conn).await?;
    let mut pipe = redis::pipe();
    producer.queue_batch_set(&mut pipe, ops);
    producer.flush(conn, &pipe).await
}

/// Brings every existing `Ethernet*` netdev admin-down (clears IFF_UP via
/// RTM_SETLINK, the effect of `ip link set "<name>" down`) and records its
/// ifindex as old (LinkSync::LinkSync, docs/behavior.md d.2 step 3). Errors are
/// logged and ignored, as the C++ ignores the shell's status.
async fn bring_down_old_interfaces(sync: &mut PortSync) {
    let interfaces = match nix::net::if_::if_nameindex() {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "if_nameindex failed; no old interfaces handled");
            return;
        }
    };
    let mut old: Vec<(u32, String)> = Vec::new();
    for iface in interfaces.iter() {
        let index = iface.index();
        if index == 0 {
            break;
        }
        let name = iface.name().to_string_lossy().into_owned();
        if sync.mark_old_interface(index, &name) {
            old.push((index, name));
        }
    }
    if old.is_empty() {
        return;
    }
    let (connection, handle, _) = match rtnetlink::new_connection() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot open an rtnetlink socket; old interfaces left up");
            return;
        }
    };
    let task = tokio::spawn(connection);
    let total = old.len();
    let mut down = 0usize;
    for (index, name) in old {
        let msg = rtnetlink::LinkUnspec::new_with_index(index).down().build();
        match handle.link().set(msg).execute().await {
            Ok(()) => {
                down += 1;
                tracing::debug!(ifname = %name, ifindex = index, "old interface brought down");
            }
            Err(e) => tracing::warn!(ifname = %name, ifindex = index, error = %e,
                "cannot bring old interface down"),
        }
    }
    tracing::info!(
        down,
        of = total,
        "cold start: old Ethernet interfaces brought down"
    );
    drop(handle);
    task.abort();
}

/// Runs portsyncd until SIGTERM or SIGINT (then `Ok`, after writing what
/// is pending), or a fatal error: the start-up steps (module docs), then
/// the engine's driver ([`sonic_daemon::engine::run`]).
///
/// Must run inside a tokio runtime with IO and time enabled (the binary uses
/// a current-thread runtime).
///
/// Errors: see [`DaemonError`]; Redis being unreachable is not an error
/// (it is retried forever, with warnings).
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    sonic_daemon::engine::run(&opts.ops, start(&opts)).await
}

/// The start-up sequence (module docs, steps 1-9). Redis being down is not
/// an error: each step retries with backoff and logs.
///
/// Errors: [`sonic_daemon::startup::StartupError::Config`] (names the file), [`sonic_daemon::startup::StartupError::Redis`]
/// for an error reply, [`DaemonError::Netlink`].
async fn start(opts: &Options) -> Result<(PortCore, PortEffects, NetlinkSocket), DaemonError> {
    let cfg = opts.db.load()?;
    let dbs = Dbs::new(&cfg, Some(REDIS_RESPONSE_TIMEOUT))?;
    let config_sep = dbs.config.separator();
    let state_sep = dbs.state.separator();
    tracing::info!(config = %cfg.path().display(), "connecting to Redis");
    let mut conns = dbs.connect_all().await;

    opts.ops.notifier.status("starting: connected to Redis");
    let logger = SharedLogger::new(
        step("CONFIG_DB LOGGER defaults", &dbs, &mut conns, |_| {
            opts.ops.logger_sync(&dbs.config)
        })
        .await?,
    );
    let switch_type = step(
        "CONFIG_DB DEVICE_METADATA",
        &dbs,
        &mut conns,
        |mut c| async move { read_switch_type(&mut c.config, config_sep).await },
    )
    .await?;
    let warm = step("WarmStart check", &dbs, &mut conns, |mut c| async move {
        swss::warm_restart::check_warm_start(&mut c.state, state_sep, APP_NAME, WARM_DOCKER, true)
            .await
    })
    .await?;
    tracing::info!(
        switch_type = switch_type.as_str(),
        warm = warm.warm,
        restore_count = warm.restore_count,
        "starting"
    );
    opts.ops
        .metrics
        .set_warm_restart_state(if warm.warm { "initialized" } else { "disabled" });

    // Joined before the config is read, so no link change is missed.
    let mut sock = NetlinkSocket::open_with(&[RTNLGRP_LINK], opts.rcvbuf)?;
    sock.request_dump(Dump::Links)?;
    opts.ops.health.set_netlink_up(true);
    opts.ops.health.set_redis_up();

    let producer = ProducerStateTable::new(APP_PORT_TABLE_NAME, dbs.appl.location());
    let ports = copy_port_config(opts, &dbs, &mut conns, &producer, warm.warm).await?;
    let mut sync = PortSync::new(ports, switch_type, warm.warm);
    if sync.wants_old_interface_shutdown() {
        bring_down_old_interfaces(&mut sync).await;
    }

    let follow_config = opts.port_config_count_follows_config;
    let (subs, loads) = step("PORT_TABLE subscriptions", &dbs, &mut conns, |_| {
        let dbs = dbs.clone();
        async move { effects::subscribe_all(&dbs, follow_config).await }
    })
    .await?;
    // Step 7's count: written on a cold start, assumed on a warm one.
    let port_config_count = loads.config_ports.map(|names| {
        let count = PortConfigCount::new(sync.port_config_done_count(), names);
        tracing::info!(
            ports = count.count(),
            port_config_done_count = count.acked(),
            "following CONFIG_DB PORT: PortConfigDone count follows the configured ports"
        );
        count
    });
    // The LOGGER level and output CONFIG_DB holds at start (unless given
    // on the command line), as swss::Logger::linkToDbWithOutput.
    for op in &loads.logger {
        logger.apply(op, true);
    }
    for (key, has_admin) in loads.present {
        // No link is known yet, so nothing is written here.
        let _ = sync.on_appl_port(&key, true, has_admin);
    }
    sync.finish_initial_load();
    tracing::info!(
        pending = ?sync.pending_ports(),
        old_interfaces = sync.old_interfaces().len(),
        "started; following link events"
    );
    let setup = Setup {
        sync,
        audit_every: opts.audit_every,
        port_config_count,
    };
    let Conns { appl, state, .. } = conns;
    let effects = PortEffects::new(dbs, (appl, state), subs, producer, follow_config, logger);
    Ok((PortCore::new(setup, Instant::now()), effects, sock))
}

/// Step 7: CONFIG_DB `PORT|*`, copied to APPL_DB `PORT_TABLE` with
/// `PortConfigDone` on a cold start. Returns the configured port names.
///
/// Errors: [`sonic_daemon::startup::StartupError::Redis`] for an error reply.
async fn copy_port_config(
    opts: &Options,
    dbs: &Dbs,
    conns: &mut Conns,
    producer: &ProducerStateTable,
    warm: bool,
) -> Result<Vec<String>, DaemonError> {
    let config_sep = dbs.config.separator();
    let ports = step("CONFIG_DB PORT read", dbs, conns, |mut c| async move {
        read_config_ports(&mut c.config, config_sep).await
    })
    .await?;
    let ops = port_config_ops(&ports, warm);
    if warm {
        tracing::info!(
            ports = ports.len(),
            "warm start: APPL_DB PORT_TABLE left as is"
        );
    } else {
        step("APPL_DB PORT_TABLE copy", dbs, conns, |mut c| {
            let producer = producer.clone();
            let ops = ops.clone();
            async move { write_port_config(&mut c.appl, &producer, &ops).await }
        })
        .await?;
        if !ops.is_empty() {
            opts.ops
                .metrics
                .redis_ops(APP_PORT_TABLE_NAME, "set", ops.len());
            opts.ops.metrics.redis_batches.inc();
        }
        if ports.is_empty() {
            tracing::info!("no ports in CONFIG_DB PORT: PortConfigDone count=0");
        } else {
            tracing::info!(
                ports = ports.len(),
                "CONFIG_DB PORT copied to APPL_DB PORT_TABLE, PortConfigDone sent"
            );
        }
    }
    Ok(ports.into_iter().map(|(k, _)| k).collect())
}
