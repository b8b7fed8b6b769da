//! portsyncd's I/O wiring around the pure core in [`crate::sync`]
//! (portsyncd.cpp main, linksync.cpp; docs/behavior.md d).
//!
//! Start-up, in the C++ order:
//! 1. database_config.json (or the namespace's entry of database_global.json);
//!    a missing or broken file is fatal ([`DaemonError::Config`]).
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
//!    C++ HGETALL per link message, docs/behavior.md f.15), by key existence only
//!    ([`SubscribeMode::Presence`]: no read per keyspace event). STATE_DB
//!    `PORT_TABLE` is followed for deletions only
//!    ([`SubscribeMode::Deletions`]), so our own writes cause no reads
//!    (docs/differences.md P9).
//!
//! Then one task loops over: netlink link messages (-> STATE_DB
//! `PORT_TABLE|<name>`), APPL_DB `PORT_TABLE` changes, a 30 s timer that
//! warns about the ports still holding back PortInitDone, and Redis
//! reconnects. PortInitDone (`lanes=0`) is written once.
//!
//! Faults (better than the C++, docs/behavior.md f.5, f.8):
//! * Redis loss: the link state stays in memory; reconnect with exponential
//!   backoff capped at 5 s; then a fresh APPL_DB subscription (initial load)
//!   and a rewrite of the STATE_DB entries that differ from the kernel.
//! * Netlink ENOBUFS: the links are dumped again; links missing from the dump
//!   are treated as deleted (mark and sweep), so STATE_DB equals the kernel.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use sonic_daemon::metrics::{Outcome as EventOutcome, ResyncCause};
use sonic_daemon::startup::{step, Conns, Dbs, StartupError};
use sonic_daemon::{DbPaths, LoopTicker, Ops};
use sonic_netlink::socket::{Dump, KernelMessage, NetlinkSocket, RcvBuf, Received, RTNLGRP_LINK};
use sonic_netlink::{LinkEvent, LinkMsgType};
use swss::config::ConfigError;
use swss::subscriber_state::SubscribeMode;
use swss::{
    DbConnector, FieldValues, KeyOp, ProducerStateTable, SubscriberStateTable, SwssError, Table,
};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

use crate::sync::{
    port_config_ops, port_init_done_op, PortSync, StateAction, SwitchType, APP_PORT_TABLE_NAME,
    CFG_DEVICE_METADATA_TABLE_NAME, CFG_PORT_TABLE_NAME, DEVICE_METADATA_KEY, PORT_CONFIG_DONE,
    PORT_INIT_DONE, STATE_PORT_TABLE_NAME, SWITCH_TYPE_FIELD,
};

/// The WarmStart application name and the CONFIG_DB `LOGGER|<name>` key.
pub const APP_NAME: &str = "portsyncd";
/// The WarmStart docker name (`WARM_RESTART_ENABLE_TABLE|swss`).
pub const WARM_DOCKER: &str = "swss";
/// How often the ports still holding back PortInitDone are logged (warning).
pub const INIT_DONE_WARN_INTERVAL: Duration = Duration::from_secs(30);
/// Per-command response timeout on the Redis connections: a Redis that
/// accepts the connection but stops answering is treated as lost.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// CONFIG_DB logger table (`LOGGER|<daemon>`, logger.cpp).
pub const CFG_LOGGER_TABLE_NAME: &str = sonic_daemon::logging::CFG_LOGGER_TABLE_NAME;
/// The four STATE_DB `PORT_TABLE|<name>` fields portsyncd owns.
pub const STATE_FIELDS: [&str; 4] = ["state", "netdev_oper_status", "admin_status", "mtu"];

// ===== errors =====

/// Why the daemon stopped with a failure (the binary exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// database_config.json / database_global.json missing or broken; the
    /// message names the file and the defect.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Redis error that a reconnect cannot fix (an error reply such as
    /// `WRONGTYPE`, a non-numeric `restore_count`, ...) during start-up;
    /// the C++ exits with EXIT_FAILURE on any exception (portsyncd.cpp main).
    #[error("{context}: {source}")]
    Redis {
        /// The start-up step, e.g. `WarmStart check`.
        context: &'static str,
        /// The error.
        source: SwssError,
    },
    /// The netlink socket could not be opened or read.
    #[error(transparent)]
    Netlink(#[from] sonic_netlink::socket::SocketError),
    /// A signal handler could not be installed.
    #[error("cannot install the {0} handler: {1}")]
    Signal(&'static str, std::io::Error),
}

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
}

impl From<StartupError> for DaemonError {
    fn from(e: StartupError) -> Self {
        match e {
            StartupError::Config(e) => DaemonError::Config(e),
            StartupError::Redis { context, source } => DaemonError::Redis { context, source },
        }
    }
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
async fn copy_port_config(
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
    for (index, name) in old {
        let msg = rtnetlink::LinkUnspec::new_with_index(index).down().build();
        match handle.link().set(msg).execute().await {
            Ok(()) => tracing::info!(ifname = %name, ifindex = index, "old interface brought down"),
            Err(e) => tracing::warn!(ifname = %name, ifindex = index, error = %e,
                "cannot bring old interface down"),
        }
    }
    drop(handle);
    task.abort();
}

/// Subscribes to APPL_DB `PORT_TABLE` and returns the subscriber with its
/// initial load (key -> has `admin_status`), `PortConfigDone` and
/// `PortInitDone` left out.
///
/// [`SubscribeMode::Presence`]: the initial load reads every entry (the
/// `admin_status` pre-check needs the fields, docs/behavior.md d.2 step 1);
/// after it only existence matters ([`PortSync::on_appl_port`] ignores
/// `admin_status` once the load is over), so the HSETs of orchagent's pops
/// (one per field and port) are read as "exists" without an HGETALL.
async fn subscribe_appl_ports(
    appl: &DbConnector,
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

/// The two change feeds of the main loop.
struct Subs {
    /// APPL_DB `PORT_TABLE`: which ports orchagent has consumed.
    appl: SubscriberStateTable,
    /// STATE_DB `PORT_TABLE`, [`SubscribeMode::Deletions`]: only deletions
    /// matter (someone else removed an entry we skipped rewriting,
    /// [`PortSync::on_state_port_deleted`]).
    state: SubscriberStateTable,
}

/// A change seen on one of the [`Subs`].
enum Change {
    Appl(KeyOp),
    State(KeyOp),
}

/// Subscribes to APPL_DB `PORT_TABLE` (with its initial load, see
/// [`subscribe_appl_ports`]) and to STATE_DB `PORT_TABLE` in
/// [`SubscribeMode::Deletions`]: no initial load, and the keyspace events of
/// our own HSETs (and of portsorch's fields) are dropped without a read, so
/// a link change costs its one HSET and nothing more (docs/differences.md
/// P9).
///
/// Errors: [`SwssError`] from connect, PSUBSCRIBE, SCAN or HGETALL.
async fn subscribe_all(dbs: &Dbs) -> Result<(Subs, BTreeMap<String, bool>), SwssError> {
    let (appl, present) = subscribe_appl_ports(&dbs.appl).await?;
    let state = SubscriberStateTable::with_mode(
        &dbs.state,
        STATE_PORT_TABLE_NAME,
        SubscribeMode::Deletions,
    )
    .await?;
    Ok((Subs { appl, state }, present))
}

/// True for APPL_DB `PORT_TABLE` keys naming ports (not the
/// `PortConfigDone` / `PortInitDone` markers).
fn is_port_key(key: &str) -> bool {
    key != PORT_CONFIG_DONE && key != PORT_INIT_DONE
}

// ===== STATE_DB writer =====

/// One pending STATE_DB operation for a key, coalesced: a DEL followed by
/// an HSET keeps both (other daemons' fields must go with the DEL).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingOp {
    del_first: bool,
    set: Option<FieldValues>,
}

/// The one writer of STATE_DB `PORT_TABLE|<name>`: coalesces per key,
/// flushes in one pipeline, and keeps what it could not write while Redis
/// is away.
#[derive(Debug)]
struct StateWriter {
    table: Table,
    pending: BTreeMap<String, PendingOp>,
}

impl StateWriter {
    fn new(sep: char) -> Self {
        StateWriter {
            table: Table::new(STATE_PORT_TABLE_NAME, sep).in_db("STATE_DB"),
            pending: BTreeMap::new(),
        }
    }

    fn push(&mut self, action: StateAction) {
        match action {
            StateAction::DelPortState { name } => {
                self.pending.insert(
                    name,
                    PendingOp {
                        del_first: true,
                        set: None,
                    },
                );
            }
            StateAction::SetPortState { name, fields } => {
                let op = self.pending.entry(name).or_insert(PendingOp {
                    del_first: false,
                    set: None,
                });
                op.set = Some(fields);
            }
        }
    }

    /// After a Redis reconnect: drops the pending plain HSETs whose four
    /// fields STATE_DB already holds, so only the difference is written.
    async fn drop_unchanged(&mut self, conn: &mut MultiplexedConnection) -> Result<(), SwssError> {
        let names: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, op)| !op.del_first && op.set.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.cmd("HMGET")
                .arg(self.table.full_key(name))
                .arg(&STATE_FIELDS[..]);
        }
        let replies = self.table.query_per_key(conn, &mut pipe, &names).await?;
        for (name, reply) in names.iter().zip(replies) {
            let Some(reply) = reply else { continue };
            let Ok(values) = redis::from_redis_value::<Vec<Option<String>>>(reply) else {
                continue;
            };
            let same = self
                .pending
                .get(name)
                .and_then(|op| op.set.as_ref())
                .is_some_and(|fvs| {
                    fvs.len() == values.len()
                        && fvs
                            .iter()
                            .zip(&values)
                            .all(|((_, want), have)| have.as_deref() == Some(want.as_str()))
                });
            if same {
                self.pending.remove(name);
            }
        }
        Ok(())
    }

    /// Writes everything pending in one pipeline: `DEL PORT_TABLE|<name>`
    /// and/or one `HSET PORT_TABLE|<name> state .. netdev_oper_status ..
    /// admin_status .. mtu ..` per key (only these four fields, so fields
    /// other daemons wrote survive). On error nothing is forgotten.
    async fn flush(&mut self, conn: &mut MultiplexedConnection) -> Result<(), SwssError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        // The key of each command, so that one key of the wrong type is
        // reported and dropped instead of failing the whole flush.
        let mut keys: Vec<&str> = Vec::with_capacity(self.pending.len());
        for (name, op) in &self.pending {
            let key = self.table.full_key(name);
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
        self.table.query_per_key(conn, &mut pipe, &keys).await?;
        self.pending.clear();
        Ok(())
    }
}

// ===== link tracking for resyncs =====

/// Which handled netdevs are known to exist (name -> ifindex), and the
/// bookkeeping of a re-dump after ENOBUFS.
#[derive(Debug, Default)]
struct LinkTracker {
    known: HashMap<String, u32>,
    dump_in_flight: bool,
    /// Another dump is needed once the one in flight ends.
    redump: bool,
    /// During a resync dump: names seen (dump replies and notifications).
    seen: Option<HashSet<String>>,
    overruns: u64,
}

impl LinkTracker {
    fn observe(&mut self, ev: &LinkEvent) {
        match ev.msg_type {
            LinkMsgType::New => {
                self.known.insert(ev.name.clone(), ev.ifindex);
                if let Some(seen) = self.seen.as_mut() {
                    seen.insert(ev.name.clone());
                }
            }
            // A DELLINK with a master is a port leaving a bridge or LAG.
            LinkMsgType::Del if ev.master.is_none() => {
                self.known.remove(&ev.name);
            }
            LinkMsgType::Del => {}
        }
    }

    /// At the end of a resync dump: DELLINKs for the netdevs known before
    /// that were neither in the dump nor announced during it.
    fn sweep(&mut self) -> Vec<LinkEvent> {
        let Some(seen) = self.seen.take() else {
            return Vec::new();
        };
        let gone: Vec<(String, u32)> = self
            .known
            .iter()
            .filter(|(n, _)| !seen.contains(*n))
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        gone.into_iter()
            .map(|(name, ifindex)| {
                self.known.remove(&name);
                LinkEvent {
                    msg_type: LinkMsgType::Del,
                    family: 0,
                    ifindex,
                    name,
                    flags: 0,
                    mtu: None,
                    master: None,
                    kind: None,
                }
            })
            .collect()
    }
}

// ===== the running daemon =====

/// Everything the main loop mutates, apart from the sockets it waits on.
struct Core {
    dbs: Dbs,
    /// `None` while Redis is away.
    conns: Option<Conns>,
    sync: PortSync,
    writer: StateWriter,
    producer: ProducerStateTable,
    /// APPL_DB `PORT_TABLE` port keys known to exist.
    appl_present: BTreeSet<String>,
    /// PortInitDone was decided but not yet written (Redis away).
    init_done_unwritten: bool,
    links: LinkTracker,
    // ----- operations (sonic_daemon) -----
    /// Metrics, health, systemd notify.
    ops: Ops,
    /// The start-up link dump has ended: READY=1 goes out once its
    /// STATE_DB writes are acknowledged.
    startup_dump_done: bool,
    /// When the last netlink batch was received.
    recv_at: Instant,
    /// Receive time of the oldest link event whose write is not yet
    /// acknowledged.
    unacked_since: Option<Instant>,
    /// Ports with a STATE_DB `PORT_TABLE` entry written by us.
    state_entries: HashSet<String>,
    /// Warm start (for the warm-restart state metric).
    warm: bool,
}

/// What a reconnect yields: connections, a fresh APPL_DB `PORT_TABLE`
/// subscription and its initial load (key -> has `admin_status`).
type Reconnected = Box<(Conns, Subs, BTreeMap<String, bool>)>;

type Reconnecting = Pin<Box<dyn Future<Output = Reconnected>>>;

/// Reconnects to all databases and re-subscribes APPL_DB `PORT_TABLE`,
/// retrying with backoff (100 ms doubling, capped at 5 s) until both work.
async fn reconnect(dbs: Dbs) -> Reconnected {
    let mut delay = swss::connector::RECONNECT_INITIAL_DELAY;
    loop {
        let conns = dbs.connect_all().await;
        match subscribe_all(&dbs).await {
            Ok((subs, present)) => return Box::new((conns, subs, present)),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                    "cannot subscribe to APPL_DB / STATE_DB PORT_TABLE");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(swss::connector::RECONNECT_MAX_DELAY);
    }
}

impl Core {
    fn apply_link(&mut self, ev: &LinkEvent) {
        tracing::debug!(op = ev.msg_type.rtm_name(), ifname = %ev.name, ifindex = ev.ifindex,
            flags = ev.flags, mtu = ?ev.mtu, master = ?ev.master, kind = ?ev.kind, "link message");
        self.links.observe(ev);
        let reason = self.drop_reason(ev);
        let actions = self.sync.on_link(ev);
        let outcome = if !actions.is_empty() {
            if self.unacked_since.is_none() {
                self.unacked_since = Some(self.recv_at);
            }
            EventOutcome::Written
        } else if reason.is_empty() {
            EventOutcome::Unchanged
        } else {
            EventOutcome::Filtered
        };
        self.ops
            .metrics
            .kernel_event(ev.msg_type.rtm_name(), outcome, reason);
        for action in actions {
            self.writer.push(action);
        }
    }

    /// The `reason` label [`PortSync::on_link`] would drop `ev` for (its
    /// rules, in its order), or `""` when it passes them: `not_a_port`,
    /// `team`, `master_del`, `old_interface`, `not_in_appl_db`.
    fn drop_reason(&self, ev: &LinkEvent) -> &'static str {
        if !crate::sync::HANDLED_PREFIXES
            .iter()
            .any(|p| ev.name.starts_with(p))
        {
            "not_a_port"
        } else if ev.kind.as_deref() == Some(crate::sync::TEAM_KIND) {
            "team"
        } else if ev.msg_type == LinkMsgType::Del && ev.master.is_some() {
            "master_del"
        } else if self.sync.old_interfaces().contains_key(&ev.ifindex) {
            "old_interface"
        } else if ev.msg_type == LinkMsgType::New && !self.sync.is_appl_present(&ev.name) {
            "not_in_appl_db"
        } else {
            ""
        }
    }

    /// One APPL_DB `PORT_TABLE` change. Live Sets come from a
    /// [`SubscribeMode::Presence`] subscription and carry no fields, so
    /// `has_admin_status` is false for them; [`PortSync::on_appl_port`] only
    /// looks at it during the initial load, whose Sets carry the content.
    fn apply_appl(&mut self, op: KeyOp) {
        match op {
            KeyOp::Set(key, fvs) if is_port_key(&key) => {
                let has_admin = fvs.iter().any(|(f, _)| f == "admin_status");
                self.appl_present.insert(key.clone());
                for action in self.sync.on_appl_port(&key, true, has_admin) {
                    self.writer.push(action);
                }
            }
            KeyOp::Del(key) if is_port_key(&key) => {
                self.appl_present.remove(&key);
                for action in self.sync.on_appl_port(&key, false, false) {
                    self.writer.push(action);
                }
            }
            _ => {}
        }
    }

    /// A fresh APPL_DB initial load after a reconnect: ports that vanished
    /// meanwhile are removed, present ones (re)applied.
    fn resync_appl(&mut self, present: BTreeMap<String, bool>) {
        let vanished: Vec<String> = self
            .appl_present
            .iter()
            .filter(|k| !present.contains_key(*k))
            .cloned()
            .collect();
        for key in vanished {
            self.apply_appl(KeyOp::Del(key));
        }
        for (key, has_admin) in present {
            let fvs = if has_admin {
                vec![("admin_status".to_string(), String::new())]
            } else {
                Vec::new()
            };
            self.apply_appl(KeyOp::Set(key, fvs));
        }
    }

    /// Handles one batch of netlink messages (and an overrun).
    fn handle_netlink(&mut self, nl: &mut NetlinkSocket, batch: &mut Vec<Received>, overrun: bool) {
        for received in batch.drain(..) {
            match received {
                Ok(KernelMessage::Link(ev)) => self.apply_link(&ev),
                Ok(KernelMessage::DumpDone) => {
                    self.links.dump_in_flight = false;
                    self.startup_dump_done = true;
                    if self.links.redump {
                        self.links.seen = Some(HashSet::new());
                        self.request_dump(nl);
                    } else {
                        let gone = self.links.sweep();
                        for ev in gone {
                            tracing::info!(ifname = %ev.name, "link vanished while netlink events were lost");
                            self.apply_link(&ev);
                        }
                    }
                }
                Ok(KernelMessage::DumpFailed { errno }) => {
                    tracing::warn!(errno, "link dump failed or was interrupted; dumping again");
                    self.links.dump_in_flight = false;
                    if self.links.seen.is_some() {
                        self.links.seen = Some(HashSet::new());
                    }
                    self.request_dump(nl);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable netlink message skipped");
                    let msg_type = match &e {
                        sonic_netlink::DecodeError::MissingAttribute { msg, .. } => msg,
                        _ => "",
                    };
                    self.ops
                        .metrics
                        .kernel_event(msg_type, EventOutcome::Malformed, "");
                }
            }
        }
        if overrun {
            self.links.overruns += 1;
            self.ops.metrics.netlink_overruns.inc();
            self.ops.metrics.resync(ResyncCause::NetlinkOverrun);
            tracing::warn!(
                overruns = self.links.overruns,
                "netlink receive buffer overrun: dumping links again to resync STATE_DB"
            );
            if self.links.dump_in_flight {
                self.links.redump = true;
            } else {
                self.links.seen = Some(HashSet::new());
                self.request_dump(nl);
            }
        }
    }

    fn request_dump(&mut self, nl: &mut NetlinkSocket) {
        self.links.redump = false;
        match nl.request_dump(Dump::Links) {
            Ok(()) => self.links.dump_in_flight = true,
            Err(e) => tracing::error!(error = %e, "cannot request a link dump"),
        }
    }

    fn check_port_init_done(&mut self) {
        if self.sync.take_port_init_done() {
            tracing::info!("all configured ports seen: PortInitDone");
            self.init_done_unwritten = true;
        }
    }

    /// Writes what is pending. A connection error drops the connections (the
    /// caller starts a reconnect); other errors are logged and the pending
    /// writes dropped, so one bad key cannot wedge the daemon.
    async fn flush(&mut self) -> Result<(), SwssError> {
        let Some(conns) = self.conns.as_mut() else {
            return Ok(());
        };
        let m = self.ops.metrics.clone();
        if self.init_done_unwritten {
            let (key, fvs) = port_init_done_op();
            match self.producer.set(&mut conns.appl, &key, &fvs).await {
                Ok(()) => {
                    self.init_done_unwritten = false;
                    m.redis_ops(APP_PORT_TABLE_NAME, "set", 1);
                    m.redis_batches.inc();
                    m.port_init_done.set(1);
                }
                Err(e) if e.is_connection_error() => {
                    m.redis_write_errors.inc();
                    return Err(e);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot write PortInitDone");
                    m.redis_write_errors.inc();
                    self.ops.health.write_failed(&e);
                    self.init_done_unwritten = false;
                }
            }
        }
        if self.writer.pending.is_empty() {
            return Ok(());
        }
        // (name, DEL first, HSET) of what this flush writes.
        let ops: Vec<(String, bool, bool)> = self
            .writer
            .pending
            .iter()
            .map(|(n, op)| {
                let set = op.set.as_ref().is_some_and(|f| !f.is_empty());
                (n.clone(), op.del_first, set)
            })
            .collect();
        match self.writer.flush(&mut conns.state).await {
            Ok(()) => {
                m.redis_ops(
                    STATE_PORT_TABLE_METRIC,
                    "del",
                    ops.iter().filter(|o| o.1).count(),
                );
                m.redis_ops(
                    STATE_PORT_TABLE_METRIC,
                    "set",
                    ops.iter().filter(|o| o.2).count(),
                );
                m.redis_batches.inc();
                for (name, _, set) in ops {
                    if set {
                        self.state_entries.insert(name);
                    } else {
                        self.state_entries.remove(&name);
                    }
                }
                if let Some(t) = self.unacked_since.take() {
                    m.observe_event_to_ack(t.elapsed());
                }
                self.ops.health.write_ok();
                Ok(())
            }
            Err(e) if e.is_connection_error() => {
                m.redis_write_errors.inc();
                Err(e)
            }
            Err(e) => {
                tracing::error!(error = %e, "STATE_DB PORT_TABLE write failed; dropped");
                m.redis_write_errors.inc();
                self.ops.health.write_failed(&e);
                self.writer.pending.clear();
                Ok(())
            }
        }
    }

    /// Redis is back: fresh APPL_DB presence, then every port's state,
    /// written only where STATE_DB differs.
    async fn resync_after_reconnect(
        &mut self,
        mut conns: Conns,
        present: BTreeMap<String, bool>,
    ) -> Result<(), SwssError> {
        tracing::info!("Redis is back: resyncing STATE_DB PORT_TABLE");
        self.ops.metrics.redis_reconnects.inc();
        self.ops.metrics.resync(ResyncCause::RedisReconnect);
        self.resync_appl(present);
        for action in self.sync.rewrite_all() {
            self.writer.push(action);
        }
        self.writer.drop_unchanged(&mut conns.state).await?;
        if self.init_done_unwritten {
            self.producer.load_scripts(&mut conns.appl).await?;
        }
        self.conns = Some(conns);
        self.ops.health.set_redis_up();
        self.ops.notifier.status("running");
        Ok(())
    }

    /// Sends `READY=1` (systemd notify) once the start-up link dump has
    /// ended and its STATE_DB writes are acknowledged (the first full sync;
    /// PortInitDone may still wait for orchagent). Later calls do nothing.
    fn maybe_notify_ready(&mut self) {
        if self.ops.notifier.is_ready()
            || !self.startup_dump_done
            || self.conns.is_none()
            || !self.writer.pending.is_empty()
        {
            return;
        }
        if self.warm {
            self.ops.metrics.set_warm_restart_state("reconciled");
        }
        self.ops.notifier.ready(&format!(
            "synced: {} ports in STATE_DB PORT_TABLE, {} holding back PortInitDone",
            self.state_entries.len(),
            self.sync.pending_ports().len()
        ));
    }

    /// Exports the gauges that follow the state.
    fn update_gauges(&self) {
        let m = &self.ops.metrics;
        m.entries.set(self.state_entries.len() as i64);
        m.ports_pending.set(self.sync.pending_ports().len() as i64);
    }

    /// The periodic self-audit: STATE_DB `PORT_TABLE|<port>` of every
    /// APPL_DB port is compared with the link state held in memory
    /// (missing or different entries are rewritten; an entry whose netdev
    /// is gone is deleted), then the links are dumped again (the ENOBUFS
    /// resync path, mark and sweep) so events the kernel lost are repaired
    /// too. `portsyncd_audit_drift` = entries rewritten or deleted. Skipped
    /// while Redis is away.
    ///
    /// Errors: [`SwssError`] from Redis (a connection error starts the
    /// reconnect).
    async fn audit(&mut self, nl: &mut NetlinkSocket) -> Result<(), SwssError> {
        let Some(conns) = self.conns.as_mut() else {
            return Ok(());
        };
        let before = self.writer.pending.len();
        for action in self.sync.rewrite_all() {
            self.writer.push(action);
        }
        self.writer.drop_unchanged(&mut conns.state).await?;
        // APPL_DB ports without a netdev whose STATE_DB entry still carries
        // our fields: stale.
        let gone: Vec<String> = self
            .appl_present
            .iter()
            .filter(|n| self.sync.link_state(n).is_none() && !self.writer.pending.contains_key(*n))
            .cloned()
            .collect();
        if !gone.is_empty() {
            let mut pipe = redis::pipe();
            for name in &gone {
                pipe.cmd("HEXISTS")
                    .arg(self.writer.table.full_key(name))
                    .arg("netdev_oper_status");
            }
            let exists = self
                .writer
                .table
                .query_per_key(&mut conns.state, &mut pipe, &gone)
                .await?;
            for (name, reply) in gone.into_iter().zip(exists) {
                if reply == Some(redis::Value::Int(1)) {
                    self.writer.push(StateAction::DelPortState { name });
                }
            }
        }
        let drift = self.writer.pending.len().saturating_sub(before);
        if drift > 0 {
            tracing::warn!(
                drift,
                ports = ?self.writer.pending.keys().collect::<Vec<_>>(),
                "audit: STATE_DB PORT_TABLE differs from the link state; repairing"
            );
        }
        self.ops.metrics.audit_done(drift);
        self.ops.metrics.resync(ResyncCause::Audit);
        if self.links.dump_in_flight {
            self.links.redump = true;
        } else {
            self.links.seen = Some(HashSet::new());
            self.request_dump(nl);
        }
        Ok(())
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

/// The `table` label of STATE_DB `PORT_TABLE` writes (APPL_DB's is
/// `PORT_TABLE`).
const STATE_PORT_TABLE_METRIC: &str = "STATE_PORT_TABLE";

/// Waits on an optional future; pending forever when there is none.
async fn wait_on<T>(fut: &mut Option<Pin<Box<dyn Future<Output = T>>>>) -> T {
    match fut.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Next APPL_DB or STATE_DB change; pending forever while unsubscribed.
async fn next_change(subs: &mut Option<Subs>) -> Result<Change, SwssError> {
    match subs.as_mut() {
        Some(s) => tokio::select! {
            r = s.appl.next() => r.map(Change::Appl),
            r = s.state.next() => r.map(Change::State),
        },
        None => std::future::pending().await,
    }
}

/// Runs portsyncd until SIGTERM or SIGINT (then `Ok`), or a fatal error.
///
/// Must run inside a tokio runtime with IO and time enabled (the binary uses
/// a current-thread runtime).
///
/// Errors: see [`DaemonError`]; Redis being unreachable is not an error
/// (it is retried forever, with warnings).
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|e| DaemonError::Signal("SIGTERM", e))?;
    let mut sigint =
        signal(SignalKind::interrupt()).map_err(|e| DaemonError::Signal("SIGINT", e))?;
    let notifier = opts.ops.notifier.clone();
    tokio::select! {
        r = run_until_error(opts) => r,
        _ = sigterm.recv() => {
            tracing::info!("SIGTERM: exiting");
            notifier.stopping();
            Ok(())
        }
        _ = sigint.recv() => {
            tracing::info!("SIGINT: exiting");
            notifier.stopping();
            Ok(())
        }
    }
}

async fn run_until_error(opts: Options) -> Result<(), DaemonError> {
    let cfg = opts.db.load()?;
    let dbs = Dbs::new(&cfg, Some(REDIS_RESPONSE_TIMEOUT))?;
    let config_sep = dbs.config.separator();
    let state_sep = dbs.state.separator();
    tracing::info!(config = %cfg.path().display(), "connecting to Redis");
    let mut conns = dbs.connect_all().await;

    opts.ops.notifier.status("starting: connected to Redis");
    step(
        "CONFIG_DB LOGGER defaults and subscription",
        &dbs,
        &mut conns,
        |_| opts.ops.link_logger(&dbs.config),
    )
    .await?;
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
    let mut nl = NetlinkSocket::open_with(&[RTNLGRP_LINK], opts.rcvbuf)?;
    nl.request_dump(Dump::Links)?;
    opts.ops.health.set_netlink_up(true);
    opts.ops.health.set_redis_up();

    let ports = step(
        "CONFIG_DB PORT read",
        &dbs,
        &mut conns,
        |mut c| async move { read_config_ports(&mut c.config, config_sep).await },
    )
    .await?;
    let producer = ProducerStateTable::new(APP_PORT_TABLE_NAME, dbs.appl.location());
    let ops = port_config_ops(&ports, warm.warm);
    if warm.warm {
        tracing::info!(
            ports = ports.len(),
            "warm start: APPL_DB PORT_TABLE left as is"
        );
    } else {
        step("APPL_DB PORT_TABLE copy", &dbs, &mut conns, |mut c| {
            let producer = producer.clone();
            let ops = ops.clone();
            async move { copy_port_config(&mut c.appl, &producer, &ops).await }
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

    let mut sync = PortSync::new(ports.into_iter().map(|(k, _)| k), switch_type, warm.warm);
    if sync.wants_old_interface_shutdown() {
        bring_down_old_interfaces(&mut sync).await;
    }

    let (subs, present) = step("PORT_TABLE subscriptions", &dbs, &mut conns, |_| {
        let dbs = dbs.clone();
        async move { subscribe_all(&dbs).await }
    })
    .await?;

    let mut core = Core {
        writer: StateWriter::new(state_sep),
        dbs,
        conns: Some(conns),
        sync,
        producer,
        appl_present: BTreeSet::new(),
        init_done_unwritten: false,
        links: LinkTracker {
            dump_in_flight: true,
            ..LinkTracker::default()
        },
        ops: opts.ops.clone(),
        startup_dump_done: false,
        recv_at: Instant::now(),
        unacked_since: None,
        state_entries: HashSet::new(),
        warm: warm.warm,
    };
    for (key, has_admin) in present {
        let fvs = if has_admin {
            vec![("admin_status".to_string(), String::new())]
        } else {
            Vec::new()
        };
        core.apply_appl(KeyOp::Set(key, fvs));
    }
    core.sync.finish_initial_load();
    tracing::info!(
        pending = ?core.sync.pending_ports(),
        old_interfaces = core.sync.old_interfaces().len(),
        "started; following link events"
    );
    main_loop(core, nl, subs, opts.audit_every).await
}

/// What woke the main loop.
enum Wake {
    Netlink(Result<(), sonic_netlink::socket::SocketError>),
    Change(Result<Change, SwssError>),
    Reconnected(Reconnected),
    Tick,
    Audit,
    Alive,
}

async fn main_loop(
    mut core: Core,
    mut nl: NetlinkSocket,
    subs: Subs,
    audit_every: Option<Duration>,
) -> Result<(), DaemonError> {
    let mut ticker: LoopTicker = core.ops.notifier.loop_ticker();
    let mut audit_tick = audit_every.map(|every| {
        let mut i = tokio::time::interval_at(Instant::now() + every, every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut sub = Some(subs);
    let mut reconnecting: Option<Reconnecting> = None;
    let mut batch: Vec<Received> = Vec::new();
    let start = tokio::time::Instant::now() + INIT_DONE_WARN_INTERVAL;
    let mut tick = tokio::time::interval_at(start, INIT_DONE_WARN_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        core.ops.notifier.beat();
        core.check_port_init_done();
        if let Err(e) = core.flush().await {
            lost_redis(&mut core, &mut sub, &mut reconnecting, &e);
        }
        core.maybe_notify_ready();
        core.update_gauges();
        let wake = tokio::select! {
            r = nl.recv(&mut batch) => Wake::Netlink(r),
            r = next_change(&mut sub) => Wake::Change(r),
            r = wait_on(&mut reconnecting) => Wake::Reconnected(r),
            _ = tick.tick() => Wake::Tick,
            _ = tick_opt(&mut audit_tick) => Wake::Audit,
            _ = ticker.tick() => Wake::Alive,
        };
        if matches!(wake, Wake::Netlink(_)) {
            core.recv_at = Instant::now();
        }
        match wake {
            Wake::Netlink(Ok(())) => core.handle_netlink(&mut nl, &mut batch, false),
            Wake::Netlink(Err(sonic_netlink::socket::SocketError::Overrun)) => {
                core.handle_netlink(&mut nl, &mut batch, true)
            }
            Wake::Netlink(Err(e)) => {
                core.ops.health.set_netlink_up(false);
                return Err(e.into());
            }
            Wake::Change(Ok(Change::Appl(op))) => core.apply_appl(op),
            Wake::Change(Ok(Change::State(KeyOp::Del(name)))) => {
                for action in core.sync.on_state_port_deleted(&name) {
                    tracing::info!(ifname = %name, "STATE_DB PORT_TABLE entry deleted by someone else; restoring");
                    core.writer.push(action);
                }
            }
            // Never sent in SubscribeMode::Deletions.
            Wake::Change(Ok(Change::State(KeyOp::Set(..)))) => {}
            Wake::Change(Err(e)) => lost_redis(&mut core, &mut sub, &mut reconnecting, &e),
            Wake::Reconnected(r) => {
                let (conns, new_sub, present) = *r;
                reconnecting = None;
                match core.resync_after_reconnect(conns, present).await {
                    Ok(()) => sub = Some(new_sub),
                    Err(e) => lost_redis(&mut core, &mut sub, &mut reconnecting, &e),
                }
            }
            Wake::Alive => {}
            Wake::Audit => {
                if let Err(e) = core.audit(&mut nl).await {
                    if e.is_connection_error() {
                        lost_redis(&mut core, &mut sub, &mut reconnecting, &e);
                    } else {
                        tracing::warn!(error = %e, "audit: cannot read STATE_DB PORT_TABLE; skipped");
                    }
                }
            }
            Wake::Tick => {
                if !core.sync.port_init_done_sent() {
                    tracing::warn!(pending = ?core.sync.pending_ports(),
                        "PortInitDone still held back by ports whose host interface was not seen");
                }
            }
        }
    }
}

/// Redis went away: drop the connections and the subscription and start
/// reconnecting (once).
fn lost_redis(
    core: &mut Core,
    sub: &mut Option<Subs>,
    reconnecting: &mut Option<Reconnecting>,
    e: &SwssError,
) {
    if reconnecting.is_some() {
        return;
    }
    tracing::warn!(error = %e, "lost Redis; keeping link state and reconnecting");
    core.ops.health.set_redis_down(e);
    core.ops.notifier.status("Redis lost; reconnecting");
    core.conns = None;
    *sub = None;
    *reconnecting = Some(Box::pin(reconnect(core.dbs.clone())));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, mtu: &str) -> StateAction {
        StateAction::SetPortState {
            name: name.to_string(),
            fields: vec![("mtu".to_string(), mtu.to_string())],
        }
    }

    fn del(name: &str) -> StateAction {
        StateAction::DelPortState {
            name: name.to_string(),
        }
    }

    fn link(msg_type: LinkMsgType, name: &str, ifindex: u32, master: Option<u32>) -> LinkEvent {
        LinkEvent {
            msg_type,
            family: 0,
            ifindex,
            name: name.to_string(),
            flags: 0,
            mtu: Some(1500),
            master,
            kind: None,
        }
    }

    #[test]
    fn writer_coalesces_per_key_keeping_del_then_set() {
        let mut w = StateWriter::new('|');
        w.push(set("Ethernet0", "1500"));
        w.push(set("Ethernet0", "9100"));
        w.push(del("Ethernet4"));
        w.push(set("Ethernet4", "1500"));
        w.push(set("Ethernet8", "1500"));
        w.push(del("Ethernet8"));
        let fv = |m: &str| Some(vec![("mtu".to_string(), m.to_string())]);
        assert_eq!(
            w.pending["Ethernet0"],
            PendingOp {
                del_first: false,
                set: fv("9100")
            }
        );
        assert_eq!(
            w.pending["Ethernet4"],
            PendingOp {
                del_first: true,
                set: fv("1500")
            }
        );
        assert_eq!(
            w.pending["Ethernet8"],
            PendingOp {
                del_first: true,
                set: None
            }
        );
        assert_eq!(w.table.full_key("Ethernet0"), "PORT_TABLE|Ethernet0");
    }

    #[test]
    fn tracker_sweeps_links_missing_from_a_resync_dump() {
        let mut t = LinkTracker::default();
        t.observe(&link(LinkMsgType::New, "Ethernet0", 2, None));
        t.observe(&link(LinkMsgType::New, "Ethernet4", 3, None));
        t.observe(&link(LinkMsgType::New, "Ethernet8", 4, None));
        // A port leaving a bridge is not the netdev going away.
        t.observe(&link(LinkMsgType::Del, "Ethernet8", 4, Some(9)));
        assert!(t.sweep().is_empty(), "no resync dump in progress");

        t.seen = Some(HashSet::new());
        t.observe(&link(LinkMsgType::New, "Ethernet0", 2, None));
        t.observe(&link(LinkMsgType::Del, "Ethernet4", 3, None));
        let gone = t.sweep();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].name, "Ethernet8");
        assert_eq!(gone[0].ifindex, 4);
        assert_eq!(gone[0].msg_type, LinkMsgType::Del);
        assert_eq!(gone[0].master, None);
        assert!(t.known.contains_key("Ethernet0") && t.known.len() == 1);
    }

    #[test]
    fn special_keys_are_not_ports() {
        assert!(!is_port_key("PortConfigDone"));
        assert!(!is_port_key("PortInitDone"));
        assert!(is_port_key("Ethernet0"));
    }
}
