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
//!   are pure ([`plan_pass`], [`apply_pass`], [`another_pass`]).
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use etherparse::{ArpEthIpv4Packet, ArpOperation, Icmpv6Type, PacketBuilder};
use futures::stream::{StreamExt, TryStreamExt};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkFlags};
use netlink_packet_route::neighbour::NeighbourState;
use netlink_packet_route::AddressFamily;
use redis::aio::MultiplexedConnection;
use swss::warm_restart::check_warm_start;
use swss::{DbConfig, DbConnector, FieldValues, SwssError, Table};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

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

// ===== NEIGH_TABLE entries (pure) =====

pub use crate::sync::{parse_mac, Family, BROADCAST_MAC};

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One valid NEIGH_TABLE entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighEntry {
    /// Interface name, from the key (`Ethernet0`, `Vlan1000`, ...).
    pub ifname: String,
    /// Neighbor IP, from the key.
    pub ip: IpAddr,
    /// Neighbor MAC, from the `neigh` field.
    pub mac: Mac,
}

/// Why a NEIGH_TABLE entry was skipped. `key` is the key without the
/// `NEIGH_TABLE:` prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The key is not `<ifname>:<ip>`.
    #[error("NEIGH_TABLE key {key:?} is not <ifname>:<ip>")]
    BadKey {
        /// The key without the `NEIGH_TABLE:` prefix.
        key: String,
    },
    /// The part after the interface is not an IP address.
    #[error("NEIGH_TABLE key {key:?}: {ip:?} is not an IP address")]
    BadIp {
        /// The key without the `NEIGH_TABLE:` prefix.
        key: String,
        /// The text after the interface name.
        ip: String,
    },
    /// `neigh` or `family` is absent.
    #[error("NEIGH_TABLE key {key:?}: field {field:?} is missing")]
    MissingField {
        /// The key without the `NEIGH_TABLE:` prefix.
        key: String,
        /// `neigh` or `family`.
        field: &'static str,
    },
    /// `neigh` is not `xx:xx:xx:xx:xx:xx`.
    #[error("NEIGH_TABLE key {key:?}: neigh {value:?} is not a MAC address")]
    BadMac {
        /// The key without the `NEIGH_TABLE:` prefix.
        key: String,
        /// The `neigh` value found.
        value: String,
    },
    /// `family` is neither `IPv4` nor `IPv6`.
    #[error("NEIGH_TABLE key {key:?}: family {value:?} is neither IPv4 nor IPv6")]
    BadFamily {
        /// The key without the `NEIGH_TABLE:` prefix.
        key: String,
        /// The `family` value found.
        value: String,
    },
    /// `family` does not match the IP in the key.
    #[error("NEIGH_TABLE key {key:?}: family {family} does not match the address")]
    FamilyMismatch {
        /// The key without the `NEIGH_TABLE:` prefix.
        key: String,
        /// The `family` field, parsed.
        family: Family,
    },
}

/// Validates one NEIGH_TABLE entry. `key` is without the `NEIGH_TABLE:`
/// prefix: `<ifname>:<ip>`, split at the first `:` so an IPv6 address keeps
/// its colons (`Ethernet0:fe80::1`). `fvs` are the hash's pairs (`neigh`,
/// `family`; others are ignored).
///
/// Returns `Ok(None)` for interface `lo` (skipped by design, as the script),
/// `Ok(Some(entry))` for a valid entry.
///
/// Errors: [`EntryError`], in the order key, fields present, family, MAC.
pub fn parse_neigh_entry(
    key: &str,
    fvs: &[(String, String)],
) -> Result<Option<NeighEntry>, EntryError> {
    let Some((ifname, ip_text)) = key.split_once(':') else {
        return Err(EntryError::BadKey {
            key: key.to_string(),
        });
    };
    if ifname.is_empty() {
        return Err(EntryError::BadKey {
            key: key.to_string(),
        });
    }
    if ifname == "lo" {
        return Ok(None);
    }
    let ip = IpAddr::from_str(ip_text).map_err(|_| EntryError::BadIp {
        key: key.to_string(),
        ip: ip_text.to_string(),
    })?;
    let field = |name: &'static str| {
        fvs.iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.as_str())
            .ok_or(EntryError::MissingField {
                key: key.to_string(),
                field: name,
            })
    };
    let neigh = field("neigh")?;
    let family_text = field("family")?;
    let family = Family::parse(family_text).ok_or_else(|| EntryError::BadFamily {
        key: key.to_string(),
        value: family_text.to_string(),
    })?;
    if family != Family::of(&ip) {
        return Err(EntryError::FamilyMismatch {
            key: key.to_string(),
            family,
        });
    }
    let mac = parse_mac(neigh).ok_or_else(|| EntryError::BadMac {
        key: key.to_string(),
        value: neigh.to_string(),
    })?;
    Ok(Some(NeighEntry {
        ifname: ifname.to_string(),
        ip,
        mac,
    }))
}

/// interface -> family -> [(ip, mac)], families in IPv4, IPv6 order.
pub type NeighborMap = BTreeMap<String, BTreeMap<Family, Vec<(IpAddr, Mac)>>>;

/// The NEIGH_TABLE as the restore job uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedNeighTable {
    /// Valid entries, grouped.
    pub map: NeighborMap,
    /// Entries skipped as malformed (already logged at warn level).
    pub skipped: Vec<EntryError>,
}

/// Groups NEIGH_TABLE entries (`(key without prefix, fvs)`) by interface and
/// family, skipping `lo` silently and malformed entries with a warning.
/// Within a family the input order is kept.
pub fn build_neighbor_map<I>(entries: I) -> ParsedNeighTable
where
    I: IntoIterator<Item = (String, FieldValues)>,
{
    let mut out = ParsedNeighTable::default();
    for (key, fvs) in entries {
        match parse_neigh_entry(&key, &fvs) {
            Ok(Some(e)) => out
                .map
                .entry(e.ifname)
                .or_default()
                .entry(Family::of(&e.ip))
                .or_default()
                .push((e.ip, e.mac)),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "skipping malformed NEIGH_TABLE entry");
                out.skipped.push(err);
            }
        }
    }
    out
}

// ===== probe packets (pure) =====

/// Why a probe frame could not be built (never expected for valid input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build probe packet: {0}")]
pub struct PacketError(String);

/// An ARP who-has for `target`: Ethernet `src_mac` -> ff:ff:ff:ff:ff:ff,
/// ethertype 0x0806, ARP request with hwsrc = `src_mac`, psrc = `src_ip`,
/// hwdst = 00:00:00:00:00:00, pdst = `target` (42 bytes, unpadded).
/// Source: the script's `Ether(src=smac, dst=bcast)/ARP(op=who-has, ...)`.
///
/// Errors: [`PacketError`] if etherparse refuses to serialize.
pub fn arp_who_has(
    src_mac: Mac,
    src_ip: Ipv4Addr,
    target: Ipv4Addr,
) -> Result<Vec<u8>, PacketError> {
    let arp = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: src_mac,
        sender_ipv4: src_ip.octets(),
        target_mac: [0; 6],
        target_ipv4: target.octets(),
    };
    let builder = PacketBuilder::ethernet2(src_mac, BROADCAST_MAC).arp(arp.to_arp_packet());
    let mut buf = Vec::with_capacity(builder.size());
    builder
        .write_to_vec(&mut buf)
        .map_err(|e| PacketError(e.to_string()))?;
    Ok(buf)
}

/// The solicited-node multicast group of `target` (ff02::1:ffXX:XXXX, the
/// low 24 bits of `target`) and its Ethernet address 33:33:ff:XX:XX:XX
/// (RFC 4291 2.7.1, RFC 2464 7).
pub fn solicited_node(target: Ipv6Addr) -> (Ipv6Addr, Mac) {
    let t = target.octets();
    let mut group = [0u8; 16];
    group[0] = 0xff;
    group[1] = 0x02;
    group[11] = 0x01;
    group[12] = 0xff;
    group[13..].copy_from_slice(&t[13..]);
    let mac = [0x33, 0x33, 0xff, t[13], t[14], t[15]];
    (Ipv6Addr::from(group), mac)
}

/// NDP option type of the Source Link-Layer Address option (RFC 4861 4.6.1).
const NDP_OPT_SOURCE_LL_ADDR: u8 = 1;

/// An ICMPv6 Neighbor Solicitation for `target`: Ethernet `src_mac` ->
/// 33:33:ff:XX:XX:XX, IPv6 `src_ip` -> ff02::1:ffXX:XXXX with hop limit 255,
/// ICMPv6 type 135 code 0 (checksum over the pseudo-header), target
/// address, and a Source Link-Layer Address option (type 1, length 1) with
/// `src_mac` (86 bytes).
/// Source: the script's `Ether/IPv6/ICMPv6ND_NS(tgt)/ICMPv6NDOptSrcLLAddr`.
///
/// Errors: [`PacketError`] if etherparse refuses to serialize.
pub fn neighbor_solicitation(
    src_mac: Mac,
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Result<Vec<u8>, PacketError> {
    let (group, group_mac) = solicited_node(target);
    let mut payload = Vec::with_capacity(24);
    payload.extend_from_slice(&target.octets());
    payload.push(NDP_OPT_SOURCE_LL_ADDR);
    payload.push(1); // length in units of 8 octets
    payload.extend_from_slice(&src_mac);
    let builder = PacketBuilder::ethernet2(src_mac, group_mac)
        .ipv6(src_ip.octets(), group.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborSolicitation);
    let mut buf = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut buf, &payload)
        .map_err(|e| PacketError(e.to_string()))?;
    Ok(buf)
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
    let kernel = Kernel { handle };
    let ctx = PassContext {
        kernel: &kernel,
        state: state.clone(),
        state_sep,
        settle: args.settle,
    };
    // Closed only after the flag is set: closing a packet socket waits for
    // an RCU grace period.
    let mut probes = None;
    let result = restore_passes(&ctx, &mut probes, parsed.map, args).await;
    netlink_task.abort();
    let (interfaces, timed_out, passes) = result?;

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

/// Reads APPL_DB NEIGH_TABLE (SCAN, then pipelined HGETALL; keys that
/// vanish in between are ignored, keys that are not hashes are reported as
/// bad entries) and groups it with [`build_neighbor_map`].
///
/// Errors: [`SwssError`] from Redis.
pub async fn read_neigh_table(
    appl: &mut MultiplexedConnection,
    sep: char,
) -> Result<ParsedNeighTable, SwssError> {
    let table = Table::new(APP_NEIGH_TABLE_NAME, sep).in_db("APPL_DB");
    let keys = table.keys(appl).await?;
    let entries = table.get_many(appl, &keys, APPL_READ_CHUNK).await?;
    Ok(build_neighbor_map(entries))
}

/// Keys per pipelined round trip when reading APPL_DB NEIGH_TABLE.
const APPL_READ_CHUNK: usize = 1000;

type PassResult = (BTreeMap<String, InterfaceReport>, Vec<String>, u32);

/// Neighbor adds (RTM_NEWNEIGH) and their probes in flight at once over all
/// interfaces of a pass, on the one rtnetlink socket and the one packet
/// socket. The kernel handles each add synchronously in `sendmsg`; this
/// only keeps the request queue full, so the job never waits for one
/// interface's round trip before starting another's.
pub const MAX_IN_FLIGHT: usize = 64;

/// How often a probe the device queue refused (`ENOBUFS`) is tried again,
/// 1 ms apart, before it counts as failed.
const PROBE_ENOBUFS_RETRIES: u32 = 100;

async fn restore_passes(
    ctx: &PassContext<'_>,
    probes: &mut Option<ProbeSocket>,
    mut pending: NeighborMap,
    args: &RestoreArgs,
) -> Result<PassResult, RestoreError> {
    let start = Instant::now();
    let mut reports: BTreeMap<String, InterfaceReport> = BTreeMap::new();
    let mut passes = 0u32;
    let mut settled = false;
    while !pending.is_empty() {
        passes += 1;
        let links = ctx.kernel.links(pending.keys()).await?;
        let members = if needs_member_check(&pending, &links) {
            Some(ctx.members().await?)
        } else {
            None
        };
        let addrs = ctx.kernel.first_addresses().await?;
        tracing::debug!(
            pass = passes,
            links = links.len(),
            addresses = addrs.len(),
            "pass: links and addresses read"
        );
        let view = PassView {
            links,
            addrs,
            members,
        };
        let mut plan = plan_pass(&pending, &view, settled);
        for (ifname, why) in &plan.not_ready {
            why.log(ifname);
        }
        if probes.is_none() && !plan.ready.is_empty() {
            match ProbeSocket::open() {
                Ok(s) => *probes = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open packet socket; retrying next pass");
                    plan.ready.clear();
                }
            }
        }
        let results = match probes.as_ref() {
            Some(sock) => run_pass(ctx, sock, &plan, &pending).await,
            None => {
                if plan.settle_now {
                    settle(ctx.settle).await;
                }
                Vec::new()
            }
        };
        settled |= plan.settle_now;
        let before = pending.len();
        let pass_restored = apply_pass(&mut pending, &mut reports, results);
        if pass_restored > 0 || pending.len() < before {
            tracing::info!(
                pass = passes,
                restored = pass_restored,
                interfaces_left = pending.len(),
                "restore pass done"
            );
        } else {
            tracing::debug!(
                pass = passes,
                interfaces_left = pending.len(),
                "restore pass done; no interface ready"
            );
        }
        if pending.is_empty() || !another_pass(start.elapsed(), args.pass_interval, args.timeout) {
            break;
        }
        tokio::time::sleep(args.pass_interval).await;
    }
    Ok((reports, pending.into_keys().collect(), passes))
}

/// Whether a pass starts after one that ended `elapsed` after the first
/// began: not when it would begin at or after `timeout` (so with a timeout
/// below the pass interval there is exactly one pass).
pub fn another_pass(elapsed: Duration, pass_interval: Duration, timeout: Duration) -> bool {
    elapsed + pass_interval < timeout
}

async fn settle(d: Duration) {
    tracing::info!(
        settle_s = d.as_secs_f64(),
        "first member interface up; settling"
    );
    tokio::time::sleep(d).await;
}

struct PassContext<'a> {
    kernel: &'a Kernel,
    state: MultiplexedConnection,
    state_sep: char,
    settle: Duration,
}

impl PassContext<'_> {
    /// One SCAN per member table (STATE_DB `VLAN_MEMBER_TABLE|*`,
    /// `LAG_MEMBER_TABLE|*`).
    async fn members(&self) -> Result<Members, RestoreError> {
        let mut conn = self.state.clone();
        let sep = self.state_sep;
        let vlan = Table::new(STATE_VLAN_MEMBER_TABLE_NAME, sep)
            .keys(&mut conn)
            .await?;
        let lag = Table::new(STATE_LAG_MEMBER_TABLE_NAME, sep)
            .keys(&mut conn)
            .await?;
        Ok(Members {
            vlan: vlan.into_iter().collect(),
            lag: lag.into_iter().collect(),
            sep,
        })
    }
}

// ===== one pass, decided without I/O =====

/// An interface as one pass's RTM_GETLINK shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// Its ifindex.
    pub ifindex: u32,
    /// IFLA_ADDRESS when it is 6 bytes.
    pub mac: Option<Mac>,
    /// `IFF_UP` and `IFF_LOWER_UP` (what `/sys/.../carrier` reading `1`
    /// means: it is unreadable while the link is admin down).
    pub carrier: bool,
}

/// STATE_DB member keys as one pass read them: `VLAN_MEMBER_TABLE` /
/// `LAG_MEMBER_TABLE` keys without the table name (`<parent>|<member>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// `VLAN_MEMBER_TABLE` keys, `<vlan>|<port>`.
    pub vlan: BTreeSet<String>,
    /// `LAG_MEMBER_TABLE` keys, `<lag>|<port>`.
    pub lag: BTreeSet<String>,
    /// STATE_DB's key separator (`|`).
    pub sep: char,
}

impl Members {
    /// Whether `keys` holds a key `<ifname><sep>...` (the script's
    /// `KEYS <table>|<ifname>|*` not empty).
    fn any(&self, keys: &BTreeSet<String>, ifname: &str) -> bool {
        let prefix = format!("{ifname}{}", self.sep);
        keys.range(prefix.clone()..)
            .next()
            .is_some_and(|k| k.starts_with(&prefix))
    }
}

/// What the kernel and STATE_DB looked like at the start of a pass.
#[derive(Debug, Clone, Default)]
pub struct PassView {
    /// The pending interfaces that exist, by name (RTM_GETLINK).
    pub links: HashMap<String, LinkState>,
    /// The first address of each family on each ifindex, in kernel dump
    /// order (one RTM_GETADDR dump of all families): IFA_LOCAL if present,
    /// else IFA_ADDRESS, link-local included (as getifaddrs / netifaces).
    pub addrs: HashMap<(u32, Family), IpAddr>,
    /// Member tables, read only when [`needs_member_check`] said so.
    pub members: Option<Members>,
}

/// Why an interface is not restored in this pass (each logged at debug
/// level, except a missing MAC: warn). It is tried again next pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// No link of that name.
    Missing,
    /// Admin down or no carrier.
    NoCarrier,
    /// `Vlan*` / `PortChannel*` without members in this STATE_DB table.
    NoMembers(&'static str),
    /// The link has no 6-byte address to send probes from.
    NoMac,
    /// No address of any family it has neighbors of.
    NoAddress,
}

impl NotReady {
    fn log(&self, ifname: &str) {
        match self {
            NotReady::Missing => tracing::debug!(ifname, "interface does not exist yet"),
            NotReady::NoCarrier => tracing::debug!(ifname, "interface carrier is down"),
            NotReady::NoMembers(table) => tracing::debug!(ifname, table, "no members yet"),
            NotReady::NoMac => {
                tracing::warn!(ifname, "interface has no Ethernet address; cannot probe")
            }
            NotReady::NoAddress => {
                tracing::debug!(ifname, "no address of its families yet; retrying next pass")
            }
        }
    }
}

/// An interface to restore in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyInterface {
    /// Its name (the NEIGH_TABLE key's).
    pub ifname: String,
    /// Its ifindex.
    pub ifindex: u32,
    /// Source MAC of the probes.
    pub mac: Mac,
    /// The families it has neighbors of and an address of (the probes'
    /// source IP), IPv4 first. Families without an address wait (debug
    /// log) for a later pass.
    pub families: Vec<(Family, IpAddr)>,
    /// A `Vlan*` / `PortChannel*` with members whose neighbors wait for
    /// the one-time settle, which this pass makes.
    pub after_settle: bool,
}

/// What one pass does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassPlan {
    /// Interfaces restored in this pass, in name order.
    pub ready: Vec<ReadyInterface>,
    /// The rest, with the reason.
    pub not_ready: Vec<(String, NotReady)>,
    /// This pass makes the one-time settle wait: the first time a
    /// `Vlan*` / `PortChannel*` interface is up with members. Only the
    /// interfaces with `after_settle` wait for it.
    pub settle_now: bool,
}

/// The member tables an interface needs members in (the script's
/// `'Vlan' in intf` / `'PortChannel' in intf`).
fn member_tables(ifname: &str) -> impl Iterator<Item = &'static str> + '_ {
    [
        ("Vlan", STATE_VLAN_MEMBER_TABLE_NAME),
        ("PortChannel", STATE_LAG_MEMBER_TABLE_NAME),
    ]
    .into_iter()
    .filter(move |(pattern, _)| ifname.contains(pattern))
    .map(|(_, table)| table)
}

/// Whether this pass must read the member tables: some pending `Vlan*` /
/// `PortChannel*` interface exists with carrier.
pub fn needs_member_check(pending: &NeighborMap, links: &HashMap<String, LinkState>) -> bool {
    pending.keys().any(|ifname| {
        member_tables(ifname).next().is_some() && links.get(ifname).is_some_and(|l| l.carrier)
    })
}

/// Decides one pass: for each pending interface, in order, it must exist,
/// have carrier, have members when it is a `Vlan*` / `PortChannel*`
/// (`view.members`; absent counts as none), have a MAC and an address of
/// at least one of its pending families. `settled` says whether the
/// one-time settle was already made.
pub fn plan_pass(pending: &NeighborMap, view: &PassView, settled: bool) -> PassPlan {
    let mut plan = PassPlan::default();
    for (ifname, families) in pending {
        let Some(link) = view.links.get(ifname) else {
            plan.not_ready.push((ifname.clone(), NotReady::Missing));
            continue;
        };
        if !link.carrier {
            plan.not_ready.push((ifname.clone(), NotReady::NoCarrier));
            continue;
        }
        let mut needs_members = false;
        let mut missing = None;
        for table in member_tables(ifname) {
            needs_members = true;
            let has = view.members.as_ref().is_some_and(|m| {
                let keys = if table == STATE_VLAN_MEMBER_TABLE_NAME {
                    &m.vlan
                } else {
                    &m.lag
                };
                m.any(keys, ifname)
            });
            if !has {
                missing = Some(table);
                break;
            }
        }
        if let Some(table) = missing {
            plan.not_ready
                .push((ifname.clone(), NotReady::NoMembers(table)));
            continue;
        }
        let after_settle = needs_members && !settled;
        plan.settle_now |= after_settle;
        let Some(mac) = link.mac else {
            plan.not_ready.push((ifname.clone(), NotReady::NoMac));
            continue;
        };
        let with_addr: Vec<(Family, IpAddr)> = families
            .keys()
            .filter_map(|f| view.addrs.get(&(link.ifindex, *f)).map(|ip| (*f, *ip)))
            .collect();
        if with_addr.is_empty() {
            plan.not_ready.push((ifname.clone(), NotReady::NoAddress));
            continue;
        }
        for f in families
            .keys()
            .filter(|f| !with_addr.iter().any(|(w, _)| w == *f))
        {
            tracing::debug!(
                ifname,
                family = %f,
                "no address of this family yet; retrying next pass"
            );
        }
        plan.ready.push(ReadyInterface {
            ifname: ifname.clone(),
            ifindex: link.ifindex,
            mac,
            families: with_addr,
            after_settle,
        });
    }
    plan
}

/// What a pass did for one family of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyResult {
    /// The interface.
    pub ifname: String,
    /// The family.
    pub family: Family,
    /// Neighbors added (or already present) and probed.
    pub restored: usize,
    /// Neighbors the kernel refused or whose probe failed (not `ENETDOWN`).
    pub failed: usize,
    /// One of this family's probes failed with `ENETDOWN`, or the
    /// interface had already reported it when one of its neighbors was due
    /// (nothing more goes to the interface in this pass): the family is not
    /// done and its counts are dropped; it is restored again next pass (an
    /// add then finds `EEXIST`, which counts as restored).
    pub net_down: bool,
}

/// Applies a pass's results: a family done (no `ENETDOWN`) leaves
/// `pending` and its counts go to `reports` (an interface gets an entry
/// once something was restored or failed on it); interfaces with no family
/// left leave `pending`. Returns the neighbors restored in this pass.
pub fn apply_pass(
    pending: &mut NeighborMap,
    reports: &mut BTreeMap<String, InterfaceReport>,
    results: Vec<FamilyResult>,
) -> usize {
    let mut restored = 0;
    for r in results {
        if r.net_down {
            tracing::info!(
                ifname = r.ifname.as_str(),
                family = %r.family,
                "ENETDOWN while probing; retrying next pass"
            );
            continue;
        }
        tracing::info!(
            ifname = r.ifname.as_str(),
            family = %r.family,
            restored = r.restored,
            failed = r.failed,
            "interface neighbors restored and probed"
        );
        restored += r.restored;
        if let Some(families) = pending.get_mut(&r.ifname) {
            families.remove(&r.family);
        }
        if r.restored > 0 || r.failed > 0 {
            let e = reports.entry(r.ifname).or_default();
            e.restored += r.restored;
            e.failed += r.failed;
        }
    }
    pending.retain(|_, families| !families.is_empty());
    restored
}

// ===== one pass, the I/O =====

/// Runs `plan`: every neighbor of every ready family is added as NUD_STALE
/// and then probed, [`MAX_IN_FLIGHT`] at a time over all interfaces; the
/// interfaces marked `after_settle` start after the one-time settle (which
/// runs alongside the others).
async fn run_pass(
    ctx: &PassContext<'_>,
    probes: &ProbeSocket,
    plan: &PassPlan,
    pending: &NeighborMap,
) -> Vec<FamilyResult> {
    let down: Vec<AtomicBool> = plan.ready.iter().map(|_| AtomicBool::new(false)).collect();
    let group = |after_settle: bool| {
        plan.ready
            .iter()
            .enumerate()
            .filter(move |(_, i)| i.after_settle == after_settle)
    };
    let now = restore_group(ctx.kernel, probes, pending, group(false), &down);
    let later = async {
        if plan.settle_now {
            settle(ctx.settle).await;
        }
        restore_group(ctx.kernel, probes, pending, group(true), &down).await
    };
    let (mut results, after_settle) = futures::future::join(now, later).await;
    results.extend(after_settle);
    results
}

/// Outcome of one neighbor.
enum Outcome {
    Restored,
    Failed,
    NetDown,
}

async fn restore_group<'a>(
    kernel: &Kernel,
    probes: &ProbeSocket,
    pending: &NeighborMap,
    ifaces: impl Iterator<Item = (usize, &'a ReadyInterface)>,
    down: &[AtomicBool],
) -> Vec<FamilyResult> {
    let mut results = Vec::new();
    let mut families = Vec::new();
    for (i, iface) in ifaces {
        for (family, src_ip) in &iface.families {
            families.push((i, iface, *family, *src_ip, results.len()));
            results.push(FamilyResult {
                ifname: iface.ifname.clone(),
                family: *family,
                restored: 0,
                failed: 0,
                net_down: false,
            });
        }
    }
    let jobs = families
        .into_iter()
        .flat_map(|(i, iface, family, src_ip, slot)| {
            pending
                .get(&iface.ifname)
                .and_then(|f| f.get(&family))
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(move |(ip, mac)| (i, iface, src_ip, *ip, *mac, slot))
        });
    let mut outcomes = futures::stream::iter(jobs)
        .map(|(i, iface, src_ip, ip, mac, slot)| async move {
            // Nothing more goes to an interface once it said ENETDOWN.
            let out = match down.get(i) {
                Some(d) if d.load(Ordering::Relaxed) => Outcome::NetDown,
                _ => restore_neighbor(kernel, probes, iface, src_ip, ip, mac).await,
            };
            if let (Outcome::NetDown, Some(d)) = (&out, down.get(i)) {
                d.store(true, Ordering::Relaxed);
            }
            (slot, out)
        })
        .buffer_unordered(MAX_IN_FLIGHT);
    while let Some((slot, out)) = outcomes.next().await {
        let Some(r) = results.get_mut(slot) else {
            continue;
        };
        match out {
            Outcome::Restored => r.restored += 1,
            Outcome::Failed => r.failed += 1,
            Outcome::NetDown => r.net_down = true,
        }
    }
    results
}

/// One neighbor: RTM_NEWNEIGH (NUD_STALE; `EEXIST` is fine), then one ARP
/// who-has / NS from the interface.
async fn restore_neighbor(
    kernel: &Kernel,
    probes: &ProbeSocket,
    iface: &ReadyInterface,
    src_ip: IpAddr,
    ip: IpAddr,
    mac: Mac,
) -> Outcome {
    let ifname = iface.ifname.as_str();
    // (The MAC text is only built when the line is logged.)
    use sonic_netlink::fmt::mac_to_string;
    match kernel.add_stale(iface.ifindex, ip, &mac).await {
        Ok(AddOutcome::Added) => {
            tracing::debug!(ifname, %ip, mac = %mac_to_string(&mac), "neighbor added as STALE");
        }
        Ok(AddOutcome::Existed) => {
            tracing::debug!(
                ifname,
                %ip,
                mac = %mac_to_string(&mac),
                "neighbor already in the kernel"
            );
        }
        Err(e) => {
            tracing::warn!(
                ifname,
                %ip,
                mac = %mac_to_string(&mac),
                error = %e,
                "kernel refused neighbor; skipped"
            );
            return Outcome::Failed;
        }
    }
    let frame = match (src_ip, ip) {
        (IpAddr::V4(s), IpAddr::V4(t)) => arp_who_has(iface.mac, s, t),
        (IpAddr::V6(s), IpAddr::V6(t)) => neighbor_solicitation(iface.mac, s, t),
        _ => Err(PacketError("source and target families differ".into())),
    };
    let sent = match frame {
        Ok(frame) => probes.send(iface.ifindex, &frame).await,
        Err(e) => Err(io::Error::other(e)),
    };
    match sent {
        Ok(()) => Outcome::Restored,
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENETDOWN as i32) => Outcome::NetDown,
        Err(e) => {
            tracing::warn!(ifname, %ip, error = %e, "cannot send probe");
            Outcome::Failed
        }
    }
}

// ===== kernel access =====

enum AddOutcome {
    Added,
    Existed,
}

struct Kernel {
    handle: rtnetlink::Handle,
}

fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

impl Kernel {
    /// The pending interfaces' links: one RTM_GETLINK by name each,
    /// [`MAX_IN_FLIGHT`] in flight on the one socket; a name the kernel
    /// does not know (`ENODEV`) is left out. Counters are left out of the
    /// replies (`RTEXT_FILTER_SKIP_STATS`, ignored by kernels that do not
    /// know it). Not one dump of every link: the client library reads a
    /// whole dump before handing out its first message, and a parsed link
    /// message holds about 13 KB, so 1,000 links would add 13 MB to the
    /// job's peak.
    ///
    /// Errors: [`RestoreError::Netlink`] for any other failure.
    async fn links<'a>(
        &self,
        names: impl Iterator<Item = &'a String>,
    ) -> Result<HashMap<String, LinkState>, RestoreError> {
        let mut replies = futures::stream::iter(names)
            .map(|name| async move { (name, self.link(name).await) })
            .buffer_unordered(MAX_IN_FLIGHT);
        let mut out = HashMap::new();
        while let Some((name, reply)) = replies.next().await {
            if let Some(link) = reply? {
                out.insert(name.clone(), link);
            }
        }
        Ok(out)
    }

    /// RTM_GETLINK by name. `None` when there is no such interface
    /// (`ENODEV`).
    async fn link(&self, ifname: &str) -> Result<Option<LinkState>, RestoreError> {
        let mut req = self.handle.link().get().match_name(ifname.to_string());
        req.message_mut()
            .attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let msg = match req.execute().try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) if netlink_errno(&e) == Some(nix::errno::Errno::ENODEV as i32) => {
                return Ok(None)
            }
            Err(source) => {
                return Err(RestoreError::Netlink {
                    context: format!("RTM_GETLINK {ifname}"),
                    source,
                })
            }
        };
        let mac = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(a) => <Mac>::try_from(a.as_slice()).ok(),
            _ => None,
        });
        let flags = msg.header.flags;
        Ok(Some(LinkState {
            ifindex: msg.header.index,
            mac,
            carrier: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
        }))
    }

    /// One RTM_GETADDR dump of all families: the first address of each
    /// family on each ifindex in kernel dump order (as getifaddrs /
    /// netifaces), link-local included: IFA_LOCAL if present, else
    /// IFA_ADDRESS.
    async fn first_addresses(&self) -> Result<HashMap<(u32, Family), IpAddr>, RestoreError> {
        let mut dump = self.handle.address().get().execute();
        let mut out = HashMap::new();
        loop {
            let msg = match dump.try_next().await {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(out),
                Err(source) => {
                    return Err(RestoreError::Netlink {
                        context: "RTM_GETADDR dump".to_string(),
                        source,
                    })
                }
            };
            let family = match msg.header.family {
                AddressFamily::Inet => Family::IPv4,
                AddressFamily::Inet6 => Family::IPv6,
                _ => continue,
            };
            let local = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let address = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = local.or(address).filter(|ip| Family::of(ip) == family) {
                out.entry((msg.header.index, family)).or_insert(ip);
            }
        }
    }

    /// RTM_NEWNEIGH with NLM_F_CREATE | NLM_F_EXCL, state NUD_STALE, lladdr
    /// `mac`. EEXIST -> [`AddOutcome::Existed`].
    async fn add_stale(
        &self,
        ifindex: u32,
        ip: IpAddr,
        mac: &Mac,
    ) -> Result<AddOutcome, rtnetlink::Error> {
        let res = self
            .handle
            .neighbours()
            .add(ifindex, ip)
            .link_layer_address(mac)
            .state(NeighbourState::Stale)
            .execute()
            .await;
        match res {
            Ok(()) => Ok(AddOutcome::Added),
            Err(e) if netlink_errno(&e) == Some(nix::errno::Errno::EEXIST as i32) => {
                Ok(AddOutcome::Existed)
            }
            Err(e) => Err(e),
        }
    }
}

/// The one AF_PACKET socket the probes go out on: `SOCK_RAW` with protocol
/// 0, so it is never on the receive path, not bound, non-blocking; each
/// frame names its interface (`sockaddr_ll`). One socket for the whole job,
/// because opening and closing a packet socket each wait for an RCU grace
/// period in the kernel (`synchronize_net` in `packet_release`), which one
/// socket per interface paid 1,000 times in a row.
struct ProbeSocket {
    fd: AsyncFd<OwnedFd>,
}

impl ProbeSocket {
    /// Errors: `socket(2)` (`EPERM` without CAP_NET_RAW), or registering it
    /// with the runtime.
    fn open() -> io::Result<Self> {
        let fd = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Packet,
            nix::sys::socket::SockType::Raw,
            nix::sys::socket::SockFlag::SOCK_NONBLOCK | nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(io::Error::from)?;
        #[allow(unsafe_code)]
        // SAFETY: the OwnedFd owns the socket: it stays open until the
        // AsyncFd drops it, `as_raw_fd` always returns that fd, and this
        // type never takes the OwnedFd out, replaces or clones it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::WRITABLE) }
            .map_err(io::Error::from)?;
        Ok(ProbeSocket { fd })
    }

    /// Sends one Ethernet frame (destination MAC and ethertype read from
    /// it) out of `ifindex`, waiting while the socket buffer is full and
    /// retrying while the device queue refuses it (`ENOBUFS`, up to
    /// [`PROBE_ENOBUFS_RETRIES`] times, 1 ms apart).
    ///
    /// Errors: the kernel's (`ENETDOWN` when the interface is down,
    /// `ENXIO` when it is gone, `ENOBUFS` after the retries), or a frame
    /// shorter than an Ethernet header.
    async fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        let (Some(dst), Some(ethertype)) = (frame.get(0..6), frame.get(12..14)) else {
            return Err(io::Error::other("frame shorter than an Ethernet header"));
        };
        let mut sll_addr = [0u8; 8];
        sll_addr[..6].copy_from_slice(dst);
        let addr = nix::libc::sockaddr_ll {
            sll_family: nix::libc::AF_PACKET as u16,
            // network byte order, as the frame carries it
            sll_protocol: u16::from_ne_bytes([ethertype[0], ethertype[1]]),
            sll_ifindex: i32::try_from(ifindex)
                .map_err(|_| io::Error::other(format!("ifindex {ifindex} out of range")))?,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr,
        };
        let addr_ptr = std::ptr::from_ref(&addr).cast();
        let addr_len = std::mem::size_of::<nix::libc::sockaddr_ll>() as u32;
        let mut enobufs = 0;
        loop {
            let mut guard = self.fd.writable().await?;
            let res = match guard
                .try_io(|fd| pnet_sys::send_to(fd.get_ref().as_raw_fd(), frame, addr_ptr, addr_len))
            {
                Ok(res) => res,
                Err(_would_block) => continue,
            };
            match res {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.raw_os_error() == Some(nix::errno::Errno::ENOBUFS as i32)
                        && enobufs < PROBE_ENOBUFS_RETRIES =>
                {
                    enobufs += 1;
                    drop(guard);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::icmpv6::Icmpv6PayloadSlice;
    use etherparse::{EtherType, LinkSlice, NetSlice, SlicedPacket, TransportSlice};

    fn fvs(pairs: &[(&str, &str)]) -> FieldValues {
        pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    const MAC: Mac = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];

    #[test]
    fn entry_ipv4_and_ipv6_keys_split_at_first_colon() {
        let e = parse_neigh_entry(
            "Ethernet0:10.0.0.1",
            &fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.ifname, "Ethernet0");
        assert_eq!(e.ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(e.mac, MAC);

        let e = parse_neigh_entry(
            "Vlan1000:fe80::2e0:ecff:fe3b:d6ac",
            &fvs(&[("family", "IPv6"), ("neigh", "AA:bb:cc:dd:ee:ff")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.ifname, "Vlan1000");
        assert_eq!(e.ip, "fe80::2e0:ecff:fe3b:d6ac".parse::<IpAddr>().unwrap());
        assert_eq!(e.mac, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
    }

    #[test]
    fn entry_lo_is_skipped_without_error() {
        assert_eq!(parse_neigh_entry("lo:10.1.1.1", &fvs(&[])), Ok(None));
    }

    #[test]
    fn entry_errors() {
        let good = fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")]);
        assert!(matches!(
            parse_neigh_entry("Ethernet0", &good),
            Err(EntryError::BadKey { .. })
        ));
        assert!(matches!(
            parse_neigh_entry(":10.0.0.1", &good),
            Err(EntryError::BadKey { .. })
        ));
        assert!(matches!(
            parse_neigh_entry("Ethernet0:10.0.0.256", &good),
            Err(EntryError::BadIp { .. })
        ));
        assert_eq!(
            parse_neigh_entry(
                "Ethernet0:10.0.0.1",
                &fvs(&[("neigh", "00:11:22:33:44:55")])
            ),
            Err(EntryError::MissingField {
                key: "Ethernet0:10.0.0.1".into(),
                field: "family"
            })
        );
        assert_eq!(
            parse_neigh_entry("Ethernet0:10.0.0.1", &fvs(&[("family", "IPv4")])),
            Err(EntryError::MissingField {
                key: "Ethernet0:10.0.0.1".into(),
                field: "neigh"
            })
        );
        assert!(matches!(
            parse_neigh_entry(
                "Ethernet0:10.0.0.1",
                &fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "ipv4")])
            ),
            Err(EntryError::BadFamily { .. })
        ));
        assert_eq!(
            parse_neigh_entry("Ethernet0:fe80::1", &good),
            Err(EntryError::FamilyMismatch {
                key: "Ethernet0:fe80::1".into(),
                family: Family::IPv4
            })
        );
        for bad in [
            "00:11:22:33:44",
            "00:11:22:33:44:55:66",
            "00:11:22:33:44:5g",
            "0:11:22:33:44:55",
            "001122334455",
            "",
        ] {
            assert!(
                matches!(
                    parse_neigh_entry(
                        "Ethernet0:10.0.0.1",
                        &fvs(&[("neigh", bad), ("family", "IPv4")])
                    ),
                    Err(EntryError::BadMac { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn map_groups_by_interface_and_family_and_counts_skips() {
        let parsed = build_neighbor_map(vec![
            (
                "Ethernet4:fc00::2".to_string(),
                fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "IPv6")]),
            ),
            (
                "Ethernet0:10.0.0.1".to_string(),
                fvs(&[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")]),
            ),
            (
                "Ethernet0:10.0.0.3".to_string(),
                fvs(&[("neigh", "00:11:22:33:44:66"), ("family", "IPv4")]),
            ),
            (
                "Ethernet4:10.0.1.1".to_string(),
                fvs(&[("neigh", "00:11:22:33:44:77"), ("family", "IPv4")]),
            ),
            (
                "lo:10.9.9.9".to_string(),
                fvs(&[("neigh", "00:11:22:33:44:77"), ("family", "IPv4")]),
            ),
            (
                "Ethernet0:10.0.0.9".to_string(),
                fvs(&[("neigh", "zz"), ("family", "IPv4")]),
            ),
            (
                "Ethernet0:10.0.0.8".to_string(),
                fvs(&[("neigh", "00:11:22:33:44:77")]),
            ),
        ]);
        assert_eq!(parsed.skipped.len(), 2);
        assert_eq!(
            parsed.map.keys().collect::<Vec<_>>(),
            ["Ethernet0", "Ethernet4"]
        );
        let e0 = &parsed.map["Ethernet0"];
        assert_eq!(e0.keys().copied().collect::<Vec<_>>(), [Family::IPv4]);
        assert_eq!(
            e0[&Family::IPv4],
            vec![
                ("10.0.0.1".parse().unwrap(), MAC),
                (
                    "10.0.0.3".parse().unwrap(),
                    [0, 0x11, 0x22, 0x33, 0x44, 0x66]
                )
            ]
        );
        let e4 = &parsed.map["Ethernet4"];
        // IPv4 first, whatever the input order
        assert_eq!(
            e4.keys().copied().collect::<Vec<_>>(),
            [Family::IPv4, Family::IPv6]
        );
    }

    // ===== pass planning (no kernel, no clock) =====

    fn link(ifindex: u32, carrier: bool) -> LinkState {
        LinkState {
            ifindex,
            mac: Some([2, 0, 0, 0, 0, ifindex as u8]),
            carrier,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `ifname` -> (IPv4 count, IPv6 count) pending neighbors.
    fn pending_of(spec: &[(&str, usize, usize)]) -> NeighborMap {
        let mut m = NeighborMap::new();
        for (ifname, v4, v6) in spec {
            let fams = m.entry(ifname.to_string()).or_default();
            for k in 0..*v4 {
                fams.entry(Family::IPv4)
                    .or_default()
                    .push((ip(&format!("10.9.0.{}", k + 1)), MAC));
            }
            for k in 0..*v6 {
                fams.entry(Family::IPv6)
                    .or_default()
                    .push((ip(&format!("fc09::{}", k + 1)), MAC));
            }
        }
        m
    }

    fn view(links: &[(&str, LinkState)]) -> PassView {
        let mut v = PassView::default();
        for (name, l) in links {
            v.links.insert(name.to_string(), *l);
            v.addrs.insert(
                (l.ifindex, Family::IPv4),
                ip(&format!("10.0.{}.1", l.ifindex)),
            );
            v.addrs.insert(
                (l.ifindex, Family::IPv6),
                ip(&format!("fc00:{}::1", l.ifindex)),
            );
        }
        v
    }

    fn ready_names(plan: &PassPlan) -> Vec<&str> {
        plan.ready.iter().map(|r| r.ifname.as_str()).collect()
    }

    #[test]
    fn plan_takes_every_up_interface_with_its_families_and_source_addresses() {
        let pending = pending_of(&[("Ethernet0", 2, 1), ("Ethernet4", 0, 3)]);
        let v = view(&[("Ethernet0", link(5, true)), ("Ethernet4", link(6, true))]);
        let plan = plan_pass(&pending, &v, false);
        assert!(plan.not_ready.is_empty(), "{plan:?}");
        assert!(!plan.settle_now);
        assert_eq!(
            plan.ready,
            vec![
                ReadyInterface {
                    ifname: "Ethernet0".into(),
                    ifindex: 5,
                    mac: [2, 0, 0, 0, 0, 5],
                    families: vec![
                        (Family::IPv4, ip("10.0.5.1")),
                        (Family::IPv6, ip("fc00:5::1"))
                    ],
                    after_settle: false,
                },
                ReadyInterface {
                    ifname: "Ethernet4".into(),
                    ifindex: 6,
                    mac: [2, 0, 0, 0, 0, 6],
                    families: vec![(Family::IPv6, ip("fc00:6::1"))],
                    after_settle: false,
                },
            ]
        );
    }

    #[test]
    fn plan_reasons_missing_down_no_mac_no_address() {
        let pending = pending_of(&[
            ("Ethernet0", 1, 0),
            ("Ethernet4", 1, 0),
            ("Ethernet8", 1, 0),
            ("Ethernet12", 1, 1),
            ("Ethernet16", 1, 1),
        ]);
        let mut v = view(&[
            ("Ethernet4", link(2, false)),
            ("Ethernet8", link(3, true)),
            ("Ethernet12", link(4, true)),
            ("Ethernet16", link(7, true)),
        ]);
        if let Some(l) = v.links.get_mut("Ethernet8") {
            l.mac = None;
        }
        v.addrs.retain(|(ifindex, _), _| *ifindex != 4);
        // only an IPv6 address on Ethernet16: its IPv4 neighbors wait
        v.addrs.remove(&(7, Family::IPv4));
        let plan = plan_pass(&pending, &v, false);
        assert_eq!(
            plan.not_ready,
            vec![
                ("Ethernet0".to_string(), NotReady::Missing),
                ("Ethernet12".to_string(), NotReady::NoAddress),
                ("Ethernet4".to_string(), NotReady::NoCarrier),
                ("Ethernet8".to_string(), NotReady::NoMac),
            ]
        );
        assert_eq!(ready_names(&plan), ["Ethernet16"]);
        assert_eq!(
            plan.ready[0].families,
            vec![(Family::IPv6, ip("fc00:7::1"))]
        );
    }

    #[test]
    fn plan_vlan_and_lag_need_members_and_the_first_ones_settle_once() {
        let pending = pending_of(&[
            ("Ethernet0", 1, 0),
            ("PortChannel0001", 1, 0),
            ("PortChannel0002", 1, 0),
            ("Vlan1000", 1, 0),
        ]);
        let mut v = view(&[
            ("Ethernet0", link(1, true)),
            ("PortChannel0001", link(2, true)),
            ("PortChannel0002", link(3, true)),
            ("Vlan1000", link(4, true)),
        ]);
        assert!(needs_member_check(&pending, &v.links));
        // not read (None) counts as no members
        let plan = plan_pass(&pending, &v, false);
        assert_eq!(ready_names(&plan), ["Ethernet0"]);
        assert!(!plan.settle_now);
        assert!(plan.not_ready.contains(&(
            "Vlan1000".into(),
            NotReady::NoMembers(STATE_VLAN_MEMBER_TABLE_NAME)
        )));

        // a member of PortChannel00011 is not one of PortChannel0001
        v.members = Some(Members {
            vlan: ["Vlan1000|Ethernet8".to_string()].into(),
            lag: [
                "PortChannel00011|Ethernet12".to_string(),
                "PortChannel0002|Ethernet16".to_string(),
            ]
            .into(),
            sep: '|',
        });
        let plan = plan_pass(&pending, &v, false);
        assert_eq!(
            ready_names(&plan),
            ["Ethernet0", "PortChannel0002", "Vlan1000"]
        );
        assert_eq!(
            plan.not_ready,
            vec![(
                "PortChannel0001".to_string(),
                NotReady::NoMembers(STATE_LAG_MEMBER_TABLE_NAME)
            )]
        );
        assert!(plan.settle_now);
        let after: Vec<bool> = plan.ready.iter().map(|r| r.after_settle).collect();
        assert_eq!(after, [false, true, true]);

        // once settled, nobody waits
        let plan = plan_pass(&pending, &v, true);
        assert!(!plan.settle_now);
        assert!(plan.ready.iter().all(|r| !r.after_settle));
    }

    #[test]
    fn member_tables_are_read_only_for_a_pending_vlan_or_lag_with_carrier() {
        let pending = pending_of(&[("Ethernet0", 1, 0), ("Vlan1000", 1, 0)]);
        let up = view(&[("Ethernet0", link(1, true)), ("Vlan1000", link(2, true))]);
        assert!(needs_member_check(&pending, &up.links));
        let down = view(&[("Ethernet0", link(1, true)), ("Vlan1000", link(2, false))]);
        assert!(!needs_member_check(&pending, &down.links));
        let missing = view(&[("Ethernet0", link(1, true))]);
        assert!(!needs_member_check(&pending, &missing.links));
        let plain = pending_of(&[("Ethernet0", 1, 0)]);
        assert!(!needs_member_check(&plain, &up.links));
    }

    fn result(
        ifname: &str,
        family: Family,
        restored: usize,
        failed: usize,
        net_down: bool,
    ) -> FamilyResult {
        FamilyResult {
            ifname: ifname.into(),
            family,
            restored,
            failed,
            net_down,
        }
    }

    #[test]
    fn apply_removes_done_families_and_keeps_enetdown_ones() {
        let mut pending = pending_of(&[
            ("Ethernet0", 2, 2),
            ("Ethernet4", 1, 0),
            ("Ethernet8", 1, 1),
        ]);
        let mut reports = BTreeMap::new();
        let restored = apply_pass(
            &mut pending,
            &mut reports,
            vec![
                result("Ethernet0", Family::IPv4, 2, 0, false),
                result("Ethernet0", Family::IPv6, 1, 0, true),
                result("Ethernet4", Family::IPv4, 0, 1, false),
                result("Ethernet8", Family::IPv4, 1, 0, false),
                result("Ethernet8", Family::IPv6, 0, 0, false),
            ],
        );
        assert_eq!(restored, 3);
        // Ethernet0 keeps IPv6 (ENETDOWN), the others are done
        assert_eq!(pending.keys().collect::<Vec<_>>(), ["Ethernet0"]);
        assert_eq!(
            pending["Ethernet0"].keys().copied().collect::<Vec<_>>(),
            [Family::IPv6]
        );
        assert_eq!(
            reports,
            BTreeMap::from([
                (
                    "Ethernet0".to_string(),
                    InterfaceReport {
                        restored: 2,
                        failed: 0
                    }
                ),
                (
                    "Ethernet4".to_string(),
                    InterfaceReport {
                        restored: 0,
                        failed: 1
                    }
                ),
                (
                    "Ethernet8".to_string(),
                    InterfaceReport {
                        restored: 1,
                        failed: 0
                    }
                ),
            ])
        );
        // next pass: the IPv6 neighbors are found (EEXIST) and counted
        let restored = apply_pass(
            &mut pending,
            &mut reports,
            vec![result("Ethernet0", Family::IPv6, 2, 0, false)],
        );
        assert_eq!(restored, 2);
        assert!(pending.is_empty());
        assert_eq!(
            reports["Ethernet0"],
            InterfaceReport {
                restored: 4,
                failed: 0
            }
        );
    }

    #[test]
    fn another_pass_only_when_it_starts_before_the_timeout() {
        let s = Duration::from_secs;
        assert!(another_pass(s(0), s(5), s(110)));
        assert!(another_pass(s(104), s(5), s(110)));
        assert!(!another_pass(s(105), s(5), s(110)));
        // timeout below the interval: one pass only
        assert!(!another_pass(Duration::ZERO, s(5), s(3)));
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(parse_seconds("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("abc").is_err());
        assert!(parse_seconds("inf").is_err());
    }

    #[test]
    fn clap_defaults_match_the_script() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: RestoreArgs,
        }
        let cli = Cli::try_parse_from(["restore"]).unwrap();
        assert_eq!(cli.args, RestoreArgs::default());
        let cli = Cli::try_parse_from([
            "restore",
            "--timeout",
            "2",
            "--pass-interval",
            "0.5",
            "--settle",
            "0",
        ])
        .unwrap();
        assert_eq!(cli.args.timeout, Duration::from_secs(2));
        assert_eq!(cli.args.pass_interval, Duration::from_millis(500));
        assert_eq!(cli.args.settle, Duration::ZERO);
    }

    #[test]
    fn arp_who_has_bytes() {
        let src: Ipv4Addr = "10.0.0.254".parse().unwrap();
        let dst: Ipv4Addr = "10.0.0.1".parse().unwrap();
        let frame = arp_who_has(MAC, src, dst).unwrap();
        assert_eq!(frame.len(), 42);
        // Ethernet: dst broadcast, src interface MAC, ethertype ARP
        assert_eq!(&frame[0..6], &BROADCAST_MAC);
        assert_eq!(&frame[6..12], &MAC);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        // ARP: htype 1, ptype 0x0800, hlen 6, plen 4, op 1 (request)
        assert_eq!(&frame[14..22], &[0, 1, 0x08, 0x00, 6, 4, 0, 1]);

        let p = SlicedPacket::from_ethernet(&frame).unwrap();
        match p.link {
            Some(LinkSlice::Ethernet2(eth)) => {
                assert_eq!(eth.ether_type(), EtherType::ARP);
                assert_eq!(eth.source(), MAC);
                assert_eq!(eth.destination(), BROADCAST_MAC);
            }
            other => panic!("unexpected link {other:?}"),
        }
        let arp = match p.net {
            Some(NetSlice::Arp(a)) => a.to_packet().try_eth_ipv4().unwrap(),
            other => panic!("unexpected net {other:?}"),
        };
        assert_eq!(arp.operation, ArpOperation::REQUEST);
        assert_eq!(arp.sender_mac, MAC);
        assert_eq!(arp.sender_ipv4_addr(), src);
        assert_eq!(arp.target_mac, [0; 6]);
        assert_eq!(arp.target_ipv4_addr(), dst);
    }

    #[test]
    fn solicited_node_group() {
        let (g, m) = solicited_node("fc00::1:2e0:ecff:fe3b:d6ac".parse().unwrap());
        assert_eq!(g, "ff02::1:ff3b:d6ac".parse::<Ipv6Addr>().unwrap());
        assert_eq!(m, [0x33, 0x33, 0xff, 0x3b, 0xd6, 0xac]);
    }

    #[test]
    fn neighbor_solicitation_bytes() {
        let src: Ipv6Addr = "fe80::211:22ff:fe33:4455".parse().unwrap();
        let target: Ipv6Addr = "fc00::aa:bbcc:ddee".parse().unwrap();
        let frame = neighbor_solicitation(MAC, src, target).unwrap();
        assert_eq!(frame.len(), 14 + 40 + 8 + 16 + 8);
        assert_eq!(&frame[0..6], &[0x33, 0x33, 0xff, 0xcc, 0xdd, 0xee]);
        assert_eq!(&frame[6..12], &MAC);
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);

        let p = SlicedPacket::from_ethernet(&frame).unwrap();
        let ip = match &p.net {
            Some(NetSlice::Ipv6(ip)) => ip.header(),
            other => panic!("unexpected net {other:?}"),
        };
        assert_eq!(ip.hop_limit(), 255);
        assert_eq!(ip.source_addr(), src);
        assert_eq!(
            ip.destination_addr(),
            "ff02::1:ffcc:ddee".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(ip.payload_length(), 32);
        let (src_o, dst_o) = (ip.source(), ip.destination());
        let icmp = match p.transport {
            Some(TransportSlice::Icmpv6(i)) => i,
            other => panic!("unexpected transport {other:?}"),
        };
        assert_eq!(icmp.icmp_type(), Icmpv6Type::NeighborSolicitation);
        assert_eq!(icmp.type_u8(), 135);
        assert_eq!(icmp.code_u8(), 0);
        assert!(icmp.is_checksum_valid(src_o, dst_o));
        assert_eq!(icmp.bytes5to8(), [0; 4]);
        let ns = match icmp.payload_slice().unwrap() {
            Icmpv6PayloadSlice::NeighborSolicitation(ns) => ns,
            other => panic!("unexpected payload {other:?}"),
        };
        let (payload, options) = ns.to_payload();
        assert_eq!(payload.target_address, target);
        // Source Link-Layer Address option: type 1, length 1 (8 octets), MAC
        assert_eq!(options, &[1, 1, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    }

    #[test]
    fn ns_checksum_detects_corruption() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let target: Ipv6Addr = "fe80::2".parse().unwrap();
        let mut frame = neighbor_solicitation(MAC, src, target).unwrap();
        let last = frame.len() - 1;
        frame[last] ^= 0x01;
        let p = SlicedPacket::from_ethernet(&frame).unwrap();
        let (s, d) = match &p.net {
            Some(NetSlice::Ipv6(ip)) => (ip.header().source(), ip.header().destination()),
            other => panic!("unexpected net {other:?}"),
        };
        match p.transport {
            Some(TransportSlice::Icmpv6(i)) => assert!(!i.is_checksum_valid(s, d)),
            other => panic!("unexpected transport {other:?}"),
        }
    }
}
