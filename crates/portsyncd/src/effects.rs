//! portsyncd's Redis glue for the engine: carries out the core's
//! [`Action`]s (pipelines on STATE_DB `PORT_TABLE`, the PortInitDone and
//! PortConfigDone producer writes, read-backs, the reconnect) and feeds the
//! APPL_DB / STATE_DB `PORT_TABLE` subscriptions (and, with
//! `--port-config-count-follows-config`, CONFIG_DB `PORT`) to the core as
//! [`Input`]s; CONFIG_DB `LOGGER` changes, on the same CONFIG_DB
//! subscription, go to the live log level and output.
//!
//! Nothing here decides anything: every outcome goes back to
//! [`crate::core::PortCore`] through [`Io::spawn`] / [`Io::sender`].

use std::collections::BTreeMap;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use sonic_daemon::effects::{forward, SharedSession};
use sonic_daemon::engine::{retry_forever, Effects, Io};
use sonic_daemon::logging::{SharedLogger, CFG_LOGGER_TABLE_NAME};
use sonic_daemon::startup::Dbs;
use swss::subscriber_state::SubscribeMode;
use swss::{
    KeyOp, MultiTableSubscriber, PatternScope, ProducerStateTable, SubscriberStateTable, SwssError,
    Table,
};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::core::{Action, AuditReadout, Epoch, Input, PortCore, ReadBack};
use crate::sync::{
    is_port_key, port_config_done_op, port_init_done_op, APP_PORT_TABLE_NAME, CFG_PORT_TABLE_NAME,
    STATE_FIELDS, STATE_PORT_TABLE_NAME,
};
use crate::writer::StateBatch;

// ===== subscriptions =====

/// The change feeds of the running daemon.
pub struct Subs {
    /// APPL_DB `PORT_TABLE`, [`SubscribeMode::Presence`]: which ports
    /// orchagent has consumed.
    appl: SubscriberStateTable,
    /// STATE_DB `PORT_TABLE`, [`SubscribeMode::Deletions`]: only deletions
    /// matter (someone else removed an entry we skipped rewriting,
    /// [`crate::sync::PortSync::on_state_port_deleted`]).
    state: SubscriberStateTable,
    /// CONFIG_DB, one pattern for the database ([`PatternScope::Database`]):
    /// `LOGGER` ([`SubscribeMode::Content`]: the live log level and output,
    /// [`sonic_daemon::logging::LoggerSync`]) and, with `--port-config-count-follows-config`,
    /// `PORT` ([`SubscribeMode::Presence`]: which ports are configured,
    /// [`crate::sync::PortConfigCount`]).
    config: MultiTableSubscriber,
}

/// What [`subscribe_all`] hands back besides the feeds: the initial loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loads {
    /// APPL_DB `PORT_TABLE`: port key -> the hash has `admin_status`
    /// (`PortConfigDone` and `PortInitDone` left out).
    pub present: BTreeMap<String, bool>,
    /// CONFIG_DB `PORT` keys (port names, sorted), when followed; `None`
    /// without `--port-config-count-follows-config`.
    pub config_ports: Option<Vec<String>>,
    /// CONFIG_DB `LOGGER` ops (keys without the `LOGGER|` prefix), for
    /// [`sonic_daemon::logging::LoggerSync::apply`].
    pub logger: Vec<KeyOp>,
}

/// Subscribes to APPL_DB `PORT_TABLE` and returns the subscriber with its
/// initial load (port key -> has `admin_status`; `PortConfigDone` and
/// `PortInitDone` left out).
///
/// [`SubscribeMode::Presence`]: the initial load reads every entry (the
/// `admin_status` pre-check needs the fields, docs/behavior.md d.2 step 1);
/// after it only existence matters, so the HSETs of orchagent's pops (one
/// per field and port) are read as "exists" without an HGETALL.
///
/// Errors: [`SwssError`] from connect, PSUBSCRIBE, SCAN or HGETALL.
async fn subscribe_appl_ports(
    appl: &swss::DbConnector,
) -> Result<(SubscriberStateTable, BTreeMap<String, bool>), SwssError> {
    let mut sub =
        SubscriberStateTable::with_mode(appl, APP_PORT_TABLE_NAME, SubscribeMode::Presence).await?;
    let mut present = BTreeMap::new();
    while sub.queued() > 0 {
        match sub.next().await? {
            KeyOp::Set(key, fvs) => {
                if is_port_key(&key) {
                    let has_admin = fvs.iter().any(|(f, _)| f == "admin_status");
                    present.insert(key, has_admin);
                }
            }
            KeyOp::Del(key) => {
                present.remove(&key);
            }
        }
    }
    Ok((sub, present))
}

/// Subscribes to CONFIG_DB `LOGGER` and, with `follow_ports`, `PORT` in
/// [`SubscribeMode::Presence`] (one pattern for both), and returns the
/// subscriber with its initial load: the port names (`PORT|<name>` keys,
/// sorted; `None` without `follow_ports`) and the `LOGGER` ops. Live `PORT`
/// changes then carry key existence only.
///
/// Errors: [`SwssError`] from connect, PSUBSCRIBE, SCAN or HGETALL.
async fn subscribe_config(
    config: &swss::DbConnector,
    follow_ports: bool,
) -> Result<(MultiTableSubscriber, Option<Vec<String>>, Vec<KeyOp>), SwssError> {
    let mut tables = vec![(CFG_LOGGER_TABLE_NAME, SubscribeMode::Content)];
    if follow_ports {
        tables.push((CFG_PORT_TABLE_NAME, SubscribeMode::Presence));
    }
    let mut sub = MultiTableSubscriber::new(config, &tables, PatternScope::Database).await?;
    let mut names = std::collections::BTreeSet::new();
    let mut logger = Vec::new();
    for (table, op) in sub.drain_queued() {
        match (table == CFG_PORT_TABLE_NAME, op) {
            (true, KeyOp::Set(name, _)) => {
                names.insert(name);
            }
            (true, KeyOp::Del(name)) => {
                names.remove(&name);
            }
            (false, op) => logger.push(op),
        }
    }
    let ports = follow_ports.then(|| names.into_iter().collect());
    Ok((sub, ports, logger))
}

/// Subscribes to APPL_DB `PORT_TABLE` (with its initial load: port key ->
/// has `admin_status`, read in full for the pre-check, then followed by
/// existence only) and to STATE_DB `PORT_TABLE` in
/// [`SubscribeMode::Deletions`]: no initial load, and the keyspace events of
/// our own HSETs (and of portsorch's fields) are dropped without a read, so
/// a link change costs its one HSET and nothing more (docs/differences.md
/// P9). With `follow_config` (`--port-config-count-follows-config`), also
/// to CONFIG_DB `PORT` by key presence, with its initial load.
///
/// Errors: [`SwssError`] from connect, PSUBSCRIBE, SCAN or HGETALL.
pub async fn subscribe_all(dbs: &Dbs, follow_config: bool) -> Result<(Subs, Loads), SwssError> {
    let (appl, present) = subscribe_appl_ports(&dbs.appl).await?;
    let state = SubscriberStateTable::with_mode(
        &dbs.state,
        STATE_PORT_TABLE_NAME,
        SubscribeMode::Deletions,
    )
    .await?;
    let (config, config_ports, logger) = subscribe_config(&dbs.config, follow_config).await?;
    let loads = Loads {
        present,
        config_ports,
        logger,
    };
    Ok((
        Subs {
            appl,
            state,
            config,
        },
        loads,
    ))
}

// ===== effects =====

/// APPL_DB and STATE_DB connections.
type Conns = (MultiplexedConnection, MultiplexedConnection);

/// The forwarding tasks of `subs`, subscribed on session `epoch` (`LOGGER`
/// changes go to `logger`).
fn forwarders(
    subs: Subs,
    epoch: Epoch,
    logger: SharedLogger,
    tx: &UnboundedSender<Input>,
) -> Vec<JoinHandle<()>> {
    let lost = move |error| Input::SubscriptionLost { epoch, error };
    vec![
        forward(subs.appl, tx.clone(), |op| Some(Input::Appl(op)), lost),
        // SubscribeMode::Deletions never gives a Set.
        forward(
            subs.state,
            tx.clone(),
            |op| match op {
                KeyOp::Del(name) => Some(Input::StateDeleted(name)),
                KeyOp::Set(..) => None,
            },
            lost,
        ),
        // CONFIG_DB: `LOGGER` changes go to `logger` (the live log
        // level and output), `PORT` ones to the core.
        forward(
            subs.config,
            tx.clone(),
            move |(table, op)| {
                if table == CFG_LOGGER_TABLE_NAME {
                    logger.apply(&op, false);
                    None
                } else {
                    Some(Input::ConfigPort(op))
                }
            },
            lost,
        ),
    ]
}

/// Carries out [`Action`]s for [`PortCore`] (module docs).
pub struct PortEffects {
    shared: Arc<Shared>,
    /// The start-up subscriptions, until [`Effects::begin`] forwards them.
    startup_subs: Option<Subs>,
}

/// What every action's task needs.
struct Shared {
    dbs: Dbs,
    /// STATE_DB `PORT_TABLE` (keys `PORT_TABLE|<name>`).
    state_table: Table,
    /// APPL_DB `PORT_TABLE` producer (PortInitDone, PortConfigDone).
    producer: ProducerStateTable,
    /// Follow CONFIG_DB `PORT` (`--port-config-count-follows-config`):
    /// subscribe to it again on a reconnect.
    follow_config: bool,
    /// The live log level's follower (CONFIG_DB `LOGGER`).
    logger: SharedLogger,
    /// The live session, replaced by the reconnect task.
    session: SharedSession<Conns>,
}

impl PortEffects {
    /// Effects on the start-up connections `appl` and `state` of `dbs`,
    /// forwarding the start-up subscriptions `subs` once the driver runs;
    /// `follow_config`: a reconnect subscribes to CONFIG_DB `PORT` again
    /// (`--port-config-count-follows-config`, as [`subscribe_all`]);
    /// CONFIG_DB `LOGGER` changes go to `logger`.
    pub fn new(
        dbs: Dbs,
        (appl, state): (MultiplexedConnection, MultiplexedConnection),
        subs: Subs,
        producer: ProducerStateTable,
        follow_config: bool,
        logger: SharedLogger,
    ) -> Self {
        let state_table =
            Table::new(STATE_PORT_TABLE_NAME, dbs.state.separator()).in_db("STATE_DB");
        let session = SharedSession::new((appl, state));
        let shared = Shared {
            dbs,
            state_table,
            producer,
            follow_config,
            logger,
            session,
        };
        PortEffects {
            shared: Arc::new(shared),
            startup_subs: Some(subs),
        }
    }
}

impl Effects<PortCore> for PortEffects {
    fn begin(&mut self, io: &mut Io<Input>) {
        if let Some(subs) = self.startup_subs.take() {
            let tasks = forwarders(subs, 0, self.shared.logger.clone(), &io.sender());
            let mut session = self.shared.session.lock();
            for task in tasks {
                session.add_forwarder(task);
            }
        }
    }

    fn execute(&mut self, action: Action, io: &mut Io<Input>) {
        io.spawn(perform(Arc::clone(&self.shared), action, io.sender()));
    }
}

/// Carries out one action and returns its result for the core. Redis work
/// runs on the session's (APPL_DB, STATE_DB) connections; without them it
/// fails at once with a connection error. A reconnect drops the session,
/// then connects and subscribes again with one
/// [`sonic_daemon::engine::Backoff`] until it all works.
async fn perform(shared: Arc<Shared>, action: Action, tx: UnboundedSender<Input>) -> Input {
    let conns = shared.session.lock().conns().ok_or_else(not_connected);
    let table = &shared.state_table;
    match action {
        Action::FlushState { epoch, batch } => {
            let result = async {
                let (_, mut state) = conns?;
                write_batch(&mut state, table, &batch).await
            }
            .await;
            Input::Flushed {
                epoch,
                batch,
                result,
            }
        }
        Action::WritePortInitDone { epoch } => {
            let result = async {
                let (mut appl, _) = conns?;
                let (key, fvs) = port_init_done_op();
                shared.producer.set(&mut appl, &key, &fvs).await
            }
            .await;
            Input::InitDoneWritten { epoch, result }
        }
        Action::WritePortConfigCount { epoch, count } => {
            let result = async {
                let (mut appl, _) = conns?;
                let (key, fvs) = port_config_done_op(count);
                shared.producer.set(&mut appl, &key, &fvs).await
            }
            .await;
            Input::PortConfigCountWritten {
                epoch,
                count,
                result,
            }
        }
        Action::ReadStateForResync { id, names } => {
            let result = async {
                let (_, mut state) = conns?;
                read_fields(&mut state, table, &names).await
            }
            .await;
            Input::ResyncRead { id, result }
        }
        Action::ReadStateForAudit { id, names, gone } => {
            let result = async {
                let (_, mut state) = conns?;
                let fields = read_fields(&mut state, table, &names).await?;
                let exists = read_exists(&mut state, table, &gone).await?;
                Ok(AuditReadout { fields, exists })
            }
            .await;
            Input::AuditRead { id, result }
        }
        Action::Reconnect { epoch } => {
            shared.session.lock().lost();
            let (conns, subs, loads) = retry_forever(
                "cannot reconnect to Redis and subscribe to PORT_TABLE",
                || connect_and_subscribe(&shared.dbs, shared.follow_config),
            )
            .await;
            for op in &loads.logger {
                shared.logger.apply(op, false);
            }
            let tasks = forwarders(subs, epoch, shared.logger.clone(), &tx);
            shared.session.lock().connected(conns, tasks);
            Input::Reconnected {
                epoch,
                present: loads.present,
                config_ports: loads.config_ports,
            }
        }
    }
}

/// The error of an action that found no connection (a connection error,
/// so the core reconnects).
fn not_connected() -> SwssError {
    SwssError::Redis(redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "not connected to Redis",
    )))
}

/// One reconnect attempt: APPL_DB and STATE_DB connections, then the
/// subscriptions with the fresh APPL_DB load (and CONFIG_DB `PORT` load
/// with `follow_config`).
///
/// Errors: the first [`SwssError`] met.
async fn connect_and_subscribe(
    dbs: &Dbs,
    follow_config: bool,
) -> Result<((MultiplexedConnection, MultiplexedConnection), Subs, Loads), SwssError> {
    let appl = dbs.appl.connect().await?;
    let state = dbs.state.connect().await?;
    let (subs, loads) = subscribe_all(dbs, follow_config).await?;
    Ok(((appl, state), subs, loads))
}

// ===== pipelines =====

/// Writes `batch` in one pipeline: per port, `DEL PORT_TABLE|<name>` and/or
/// one `HSET PORT_TABLE|<name> state .. netdev_oper_status .. admin_status
/// .. mtu ..` (only these four fields, so fields other daemons wrote
/// survive). A key of the wrong type is reported and skipped.
///
/// Public for the conformance scenarios, which run it on an in-memory
/// Redis.
///
/// Errors: [`SwssError`] from Redis (other than `WRONGTYPE`).
pub async fn write_batch<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    table: &Table,
    batch: &StateBatch,
) -> Result<(), SwssError> {
    let mut pipe = redis::pipe();
    // The key of each command, so that one key of the wrong type is
    // reported and dropped instead of failing the whole flush.
    let mut keys: Vec<&str> = Vec::with_capacity(batch.ops.len());
    for (name, op) in &batch.ops {
        let key = table.full_key(name);
        if op.del_first {
            pipe.cmd("DEL").arg(&key);
            keys.push(name);
        }
        if let Some(fvs) = op.set.as_ref().filter(|f| !f.is_empty()) {
            let cmd = pipe.cmd("HSET").arg(&key);
            for (f, v) in fvs {
                cmd.arg(f).arg(v);
            }
            keys.push(name);
        }
        tracing::debug!(key = %key, del = op.del_first, set = ?op.set, "STATE_DB write");
    }
    table.query_per_key(conn, &mut pipe, &keys).await?;
    Ok(())
}

/// `HMGET PORT_TABLE|<name>` of [`STATE_FIELDS`] for each of `names`, in
/// one pipeline.
///
/// Errors: [`SwssError`] from Redis (other than `WRONGTYPE`).
async fn read_fields(
    conn: &mut MultiplexedConnection,
    table: &Table,
    names: &[String],
) -> Result<ReadBack, SwssError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for name in names {
        pipe.cmd("HMGET")
            .arg(table.full_key(name))
            .arg(&STATE_FIELDS[..]);
    }
    let replies = table.query_per_key(conn, &mut pipe, names).await?;
    Ok(names
        .iter()
        .zip(replies)
        .map(|(name, reply)| {
            let values = reply.and_then(|v| redis::from_redis_value(v).ok());
            (name.clone(), values)
        })
        .collect())
}

/// `HEXISTS PORT_TABLE|<name> netdev_oper_status` for each of `gone`, in
/// one pipeline (`false` also for a key that is not a hash).
///
/// Errors: [`SwssError`] from Redis (other than `WRONGTYPE`).
async fn read_exists(
    conn: &mut MultiplexedConnection,
    table: &Table,
    gone: &[String],
) -> Result<Vec<(String, bool)>, SwssError> {
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for name in gone {
        pipe.cmd("HEXISTS")
            .arg(table.full_key(name))
            .arg("netdev_oper_status");
    }
    let replies = table.query_per_key(conn, &mut pipe, gone).await?;
    Ok(gone
        .iter()
        .zip(replies)
        .map(|(name, reply)| (name.clone(), reply == Some(redis::Value::Int(1))))
        .collect())
}
