//! `neighsyncd restore`: put APPL_DB's neighbors back into the kernel after a
//! system warm reboot, then tell neighsyncd it may reconcile.
//!
//! Replaces sonic-swss `neighsyncd/restore_neighbors.py` (docs/behavior.md c.4),
//! which the supervisor runs once in the swss container:
//!
//! 1. `checkWarmStart("neighsyncd", "swss", incr = false)` (c.1); this writes
//!    `WARM_RESTART_TABLE|neighsyncd restore_count 0` on a cold start.
//! 2. Cold start: nothing else (no `NEIGH_RESTORE_TABLE` write).
//! 3. Docker-level warm restart (the kernel kept its neighbors):
//!    `HSET NEIGH_RESTORE_TABLE|Flags restored true` in STATE_DB.
//! 4. System warm reboot (the kernel table is empty): read APPL_DB
//!    `NEIGH_TABLE:<ifname>:<ip>` (`neigh` = MAC, `family` = `IPv4`/`IPv6`);
//!    then, in passes every [`RestoreArgs::pass_interval`] until everything
//!    is restored or [`RestoreArgs::timeout`] has passed, for every interface
//!    that is up: add each neighbor as NUD_STALE (RTM_NEWNEIGH, `NLM_F_EXCL`)
//!    and send one ARP who-has / ICMPv6 Neighbor Solicitation so that live
//!    neighbors answer and become NUD_REACHABLE. Finally set the flag above,
//!    also after a timeout.
//!
//! Deliberate differences from the Python script (the wire format and keys
//! are the same):
//! * A malformed NEIGH_TABLE entry (key without `<ifname>:<ip>`, bad IP,
//!   missing or bad `neigh` MAC, missing or unknown `family`, family not
//!   matching the IP) is logged and skipped; the rest is restored and the
//!   flag is set. The script raises, exits 1 without the flag, and neighsyncd
//!   then stalls for 180 s before exiting itself (c.3).
//! * A neighbor the kernel refuses (any error but `EEXIST`) and a probe that
//!   fails with anything but `ENETDOWN` are logged and counted in
//!   [`InterfaceReport::failed`]; the script raises and never sets the flag.
//! * Keys are listed with `SCAN`, not `KEYS`; carrier is read from the link's
//!   `IFF_LOWER_UP` through rtnetlink (namespace-correct), not from `/sys`.
//! * A pass reads the kernel once: the pending interfaces' links (one
//!   RTM_GETLINK by name each, pipelined) and one RTM_GETADDR dump of all
//!   families (the first address per interface and family is taken in
//!   dump order, as netifaces does), plus one `SCAN` per STATE_DB member
//!   table when a `Vlan*` / `PortChannel*` interface is up. The script asks
//!   per interface, one after the other, and its getifaddrs dumps every
//!   address of every interface each time: O(interfaces^2). The decisions
//!   are pure ([`Passes`], [`plan_pass`], [`apply_pass`], [`another_pass`]).
//! * Interfaces are handled concurrently within a pass: the neighbors of
//!   every ready interface are added and probed [`MAX_IN_FLIGHT`] at a time
//!   on one rtnetlink socket, each probe once its add is acknowledged, and
//!   every probe goes out on one AF_PACKET socket for the whole job (one
//!   socket per interface costs two RCU grace periods each, to open and to
//!   close it: 19 s at 1,000 interfaces, docs/benchmarks.md). After an
//!   `ENETDOWN`, nothing more goes to that interface in the pass, and the
//!   families it hit are retried next pass. A probe the device queue
//!   refuses (`ENOBUFS`) is tried again, 1 ms apart, before it counts as
//!   failed. The one-time settle wait (the script's `sleep(3 * 5)` the first
//!   time a `Vlan*` / `PortChannel*` interface passes its check) delays only
//!   those interfaces; the others go on meanwhile.
//! * The probes are the script's (since sonic-swss PR 1158): an ARP who-has
//!   from the interface's MAC and first IPv4 address (`psrc`), an ICMPv6
//!   Neighbor Solicitation from its first IPv6 address (docs/behavior.md
//!   c.4); only the way they are sent differs (an AF_PACKET socket, not
//!   scapy).
//!
//! Files: this one has the entry point [`run`] (the WarmStart check, the
//! flag) and the job's types; `entries.rs` reads and validates NEIGH_TABLE;
//! `passes.rs` decides the passes without I/O or a clock ([`Passes`], fed
//! the time and each pass's view and results); `driver.rs` does a pass's
//! I/O on the real clock; `kernel.rs` holds the rtnetlink requests and
//! `probe.rs` the probe frames and their AF_PACKET socket.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use swss::warm_restart::check_warm_start;
use swss::{DbConfig, DbConnector, SwssError, Table};

mod driver;
mod entries;
mod kernel;
mod passes;
mod probe;
#[cfg(test)]
mod tests;

pub use driver::MAX_IN_FLIGHT;
pub use entries::{
    build_neighbor_map, parse_neigh_entry, read_neigh_table, EntryError, NeighEntry, NeighborMap,
    ParsedNeighTable,
};
pub use passes::{
    another_pass, apply_pass, needs_member_check, plan_pass, Action, FamilyResult, LinkState,
    Members, NotReady, PassPlan, PassTotals, PassView, Passes, ReadyInterface,
};
pub use probe::{arp_who_has, neighbor_solicitation, probe_frame, solicited_node, PacketError};

pub use crate::sync::{parse_mac, Family, BROADCAST_MAC};
pub use crate::sync::{APP_NAME, APP_NEIGH_TABLE_NAME};
/// Docker whose enable knob is read (`WARM_RESTART_ENABLE_TABLE|swss`).
pub const DOCKER_NAME: &str = "swss";
/// STATE_DB table of the restore flag (as `STATE_NEIGH_RESTORE_TABLE_NAME`).
pub const STATE_NEIGH_RESTORE_TABLE_NAME: &str = "NEIGH_RESTORE_TABLE";
/// Key of the restore flag: `NEIGH_RESTORE_TABLE|Flags`.
pub const NEIGH_RESTORE_KEY: &str = "Flags";
/// Field of the restore flag; neighsyncd waits for it to be `true`.
pub const NEIGH_RESTORE_FIELD: &str = "restored";
/// STATE_DB VLAN members, keys `VLAN_MEMBER_TABLE|<vlan>|<port>`.
pub const STATE_VLAN_MEMBER_TABLE_NAME: &str = "VLAN_MEMBER_TABLE";
/// STATE_DB LAG members, keys `LAG_MEMBER_TABLE|<lag>|<port>`.
pub const STATE_LAG_MEMBER_TABLE_NAME: &str = "LAG_MEMBER_TABLE";

/// Default of `--timeout` (the script's `DEF_TIME_OUT`, 110 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(110);
/// Default of `--pass-interval` (the script's `CHECK_INTERVAL`, 5 s).
pub const DEFAULT_PASS_INTERVAL: Duration = Duration::from_secs(5);
/// Default of `--settle` (the script's `3 * CHECK_INTERVAL`, 15 s).
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(15);

/// A MAC address, 6 bytes.
pub type Mac = [u8; 6];

// ===== command line =====

/// Options of `neighsyncd restore`. All durations are given in seconds and
/// may be fractional (`--timeout 0.5`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RestoreArgs {
    /// Give up waiting for interfaces after this many seconds, then set the
    /// restore flag anyway. No pass starts once the next one would begin at
    /// or after the timeout (so with a timeout below the pass interval there
    /// is exactly one pass).
    #[arg(long, value_name = "SECONDS", default_value = "110", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Seconds between two passes over the interfaces not yet restored.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub pass_interval: Duration,
    /// Seconds to wait once, the first time a `Vlan*` / `PortChannel*`
    /// interface is found up with members.
    #[arg(long, value_name = "SECONDS", default_value = "15", value_parser = parse_seconds)]
    pub settle: Duration,
}

impl Default for RestoreArgs {
    fn default() -> Self {
        RestoreArgs {
            timeout: DEFAULT_TIMEOUT,
            pass_interval: DEFAULT_PASS_INTERVAL,
            settle: DEFAULT_SETTLE,
        }
    }
}

/// Parses a non-negative, finite number of seconds (`5`, `0.25`).
///
/// Errors: a message naming the text when it is not such a number.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?} is not a non-negative number of seconds"))
}

// ===== report =====

/// What kind of start the WarmStart check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMode {
    /// Warm restart not enabled (or no `restore_count`): only
    /// `restore_count 0` was written.
    Cold,
    /// Docker-level warm restart: the kernel kept its table; the flag was set.
    DockerWarmRestart,
    /// System warm reboot: neighbors were restored into the kernel.
    SystemWarmReboot,
}

/// Per-interface outcome of a system warm reboot restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceReport {
    /// Neighbors now in the kernel: added as NUD_STALE, or already present
    /// (`EEXIST`), with their probe sent.
    pub restored: usize,
    /// Neighbors the kernel refused (error other than `EEXIST`) or whose
    /// probe failed with an error other than `ENETDOWN`; logged.
    pub failed: usize,
}

/// Result of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Which path was taken.
    pub mode: RestoreMode,
    /// Whether `NEIGH_RESTORE_TABLE|Flags restored` was set to `true`
    /// (false only on a cold start).
    pub flag_set: bool,
    /// Per interface that was handled (at least one family done).
    pub interfaces: BTreeMap<String, InterfaceReport>,
    /// Interfaces with neighbors still not restored at the timeout (down, no
    /// members, no address of a family, or `ENETDOWN`), sorted.
    pub timed_out: Vec<String>,
    /// NEIGH_TABLE entries skipped as malformed.
    pub skipped_malformed: usize,
    /// Passes made over the interfaces.
    pub passes: u32,
}

impl RestoreReport {
    fn new(mode: RestoreMode, flag_set: bool) -> Self {
        RestoreReport {
            mode,
            flag_set,
            interfaces: BTreeMap::new(),
            timed_out: Vec::new(),
            skipped_malformed: 0,
            passes: 0,
        }
    }

    /// Neighbors restored over all interfaces.
    pub fn total_restored(&self) -> usize {
        self.interfaces.values().map(|r| r.restored).sum()
    }
}

// ===== errors =====

/// Failures that stop the job (the flag is then not set).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// database_config.json or Redis failed.
    #[error(transparent)]
    Swss(#[from] SwssError),
    /// The rtnetlink socket could not be opened.
    #[error("cannot open rtnetlink socket: {0}")]
    NetlinkSocket(#[source] io::Error),
    /// A netlink request failed (other than the cases handled per neighbor).
    #[error("netlink {context}: {source}")]
    Netlink {
        /// The request, e.g. `RTM_GETLINK Ethernet0`.
        context: String,
        /// What rtnetlink reported.
        #[source]
        source: rtnetlink::Error,
    },
}

// ===== the job =====

/// Runs the restore job once (docs/behavior.md c.4) against the databases of
/// `cfg`, in the caller's network namespace. Must be called inside a tokio
/// runtime (any flavor).
///
/// STATE_DB: reads `WARM_RESTART_ENABLE_TABLE|system` / `|swss`, reads and
/// may write `WARM_RESTART_TABLE|neighsyncd restore_count`, reads
/// `VLAN_MEMBER_TABLE|<if>|*` / `LAG_MEMBER_TABLE|<if>|*`, writes
/// `NEIGH_RESTORE_TABLE|Flags restored true` (not on a cold start).
/// APPL_DB: reads `NEIGH_TABLE:*` (SCAN + HGETALL). Kernel: RTM_GETLINK,
/// RTM_GETADDR, RTM_NEWNEIGH (NUD_STALE), and ARP / NS frames on AF_PACKET.
///
/// Errors: [`RestoreError::Swss`] (config, Redis), [`RestoreError::NetlinkSocket`],
/// [`RestoreError::Netlink`] for a failed link lookup or address dump. In those
/// cases the flag is not set (as the script's exit 1). Per-neighbor kernel
/// errors and malformed entries do not fail the job (see the module docs).
pub async fn run(cfg: &DbConfig, args: &RestoreArgs) -> Result<RestoreReport, RestoreError> {
    let state_conn = DbConnector::new(cfg.location("STATE_DB").map_err(SwssError::from)?)?;
    let state_sep = state_conn.separator();
    let mut state = state_conn.connect().await?;

    let info = check_warm_start(&mut state, state_sep, APP_NAME, DOCKER_NAME, false).await?;
    if !info.warm {
        tracing::info!("restore skipped: warm restart not enabled");
        return Ok(RestoreReport::new(RestoreMode::Cold, false));
    }
    if !info.system_warm_reboot {
        set_restore_flag(&mut state, state_sep).await?;
        tracing::info!("restore done: docker warm restart, kernel neighbors kept");
        return Ok(RestoreReport::new(RestoreMode::DockerWarmRestart, true));
    }

    let appl_conn = DbConnector::new(cfg.location("APPL_DB").map_err(SwssError::from)?)?;
    let mut appl = appl_conn.connect().await?;
    let parsed = read_neigh_table(&mut appl, appl_conn.separator()).await?;
    let total: usize = parsed
        .map
        .values()
        .flat_map(|f| f.values())
        .map(Vec::len)
        .sum();
    tracing::info!(
        neighbors = total,
        interfaces = parsed.map.len(),
        skipped = parsed.skipped.len(),
        "system warm reboot: restoring neighbors into the kernel"
    );

    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(RestoreError::NetlinkSocket)?;
    let netlink_task = tokio::spawn(connection);
    let kernel = kernel::Kernel { handle };
    let ctx = driver::PassContext {
        kernel: &kernel,
        state: state.clone(),
        state_sep,
        settle: args.settle,
    };
    // Closed only after the flag is set: closing a packet socket waits for
    // an RCU grace period.
    let mut probes = None;
    let result = driver::restore_passes(&ctx, &mut probes, parsed.map, args).await;
    netlink_task.abort();
    let PassTotals {
        interfaces,
        timed_out,
        passes,
    } = result?;

    set_restore_flag(&mut state, state_sep).await?;
    drop(probes);
    let report = RestoreReport {
        mode: RestoreMode::SystemWarmReboot,
        flag_set: true,
        interfaces,
        timed_out,
        skipped_malformed: parsed.skipped.len(),
        passes,
    };
    if report.timed_out.is_empty() {
        tracing::info!(restored = report.total_restored(), passes, "restore done");
    } else {
        tracing::warn!(
            restored = report.total_restored(),
            passes,
            timed_out = ?report.timed_out,
            "restore timed out; flag set anyway"
        );
    }
    Ok(report)
}

/// `HSET NEIGH_RESTORE_TABLE|Flags restored true` (STATE_DB), as the script's
/// `set_statedb_neigh_restore_done`.
///
/// Errors: [`SwssError::Redis`].
pub async fn set_restore_flag(
    state: &mut MultiplexedConnection,
    sep: char,
) -> Result<(), SwssError> {
    Table::new(STATE_NEIGH_RESTORE_TABLE_NAME, sep)
        .in_db("STATE_DB")
        .hset(state, NEIGH_RESTORE_KEY, NEIGH_RESTORE_FIELD, "true")
        .await
}
