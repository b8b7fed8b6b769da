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
//! * Interfaces are handled concurrently within a pass. The one-time settle
//!   wait (the script's `sleep(3 * 5)` the first time a `Vlan*` /
//!   `PortChannel*` interface passes its check) delays only those interfaces.
//! * The probes are the script's (since sonic-swss PR 1158): an ARP who-has
//!   from the interface's MAC and first IPv4 address (`psrc`), an ICMPv6
//!   Neighbor Solicitation from its first IPv6 address (docs/behavior.md
//!   c.4); only the way they are sent differs (an AF_PACKET socket, not
//!   scapy).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use etherparse::{ArpEthIpv4Packet, ArpOperation, Icmpv6Type, PacketBuilder};
use futures::stream::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use netlink_packet_route::neighbour::NeighbourState;
use netlink_packet_route::AddressFamily;
use redis::aio::MultiplexedConnection;
use swss::warm_restart::check_warm_start;
use swss::{DbConfig, DbConnector, FieldValues, SwssError, Table};

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
/// [`RestoreError::Netlink`] for a failed link or address dump. In those
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
        settled: tokio::sync::OnceCell::new(),
    };
    let result = restore_passes(&ctx, parsed.map, args).await;
    netlink_task.abort();
    let (interfaces, timed_out, passes) = result?;

    set_restore_flag(&mut state, state_sep).await?;
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

async fn restore_passes(
    ctx: &PassContext<'_>,
    mut pending: NeighborMap,
    args: &RestoreArgs,
) -> Result<PassResult, RestoreError> {
    let start = Instant::now();
    let mut reports: BTreeMap<String, InterfaceReport> = BTreeMap::new();
    let mut passes = 0u32;
    while !pending.is_empty() {
        passes += 1;
        let outcomes = futures::future::join_all(
            pending
                .iter_mut()
                .map(|(ifname, families)| restore_interface(ctx, ifname, families)),
        )
        .await;
        let mut pass_restored = 0;
        for (ifname, outcome) in pending.keys().zip(outcomes) {
            let r = outcome?;
            pass_restored += r.restored;
            if r.restored > 0 || r.failed > 0 {
                let e = reports.entry(ifname.clone()).or_default();
                e.restored += r.restored;
                e.failed += r.failed;
            }
        }
        let before = pending.len();
        pending.retain(|_, families| !families.is_empty());
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
        if pending.is_empty() || start.elapsed() + args.pass_interval >= args.timeout {
            break;
        }
        tokio::time::sleep(args.pass_interval).await;
    }
    Ok((reports, pending.into_keys().collect(), passes))
}

struct PassContext<'a> {
    kernel: &'a Kernel,
    state: MultiplexedConnection,
    state_sep: char,
    settle: Duration,
    settled: tokio::sync::OnceCell<()>,
}

/// One pass over one interface: when it is up, restore every family that
/// has a source address, removing it from `families`.
async fn restore_interface(
    ctx: &PassContext<'_>,
    ifname: &str,
    families: &mut BTreeMap<Family, Vec<(IpAddr, Mac)>>,
) -> Result<InterfaceReport, RestoreError> {
    let mut report = InterfaceReport::default();
    let Some(link) = ready_link(ctx, ifname).await? else {
        return Ok(report);
    };
    let Some(src_mac) = link.mac else {
        tracing::warn!(ifname, "interface has no Ethernet address; cannot probe");
        return Ok(report);
    };
    let mut sender = match PacketSender::open(ifname, link.ifindex, src_mac) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(ifname, error = %e, "cannot open packet socket; retrying next pass");
            return Ok(report);
        }
    };
    let fams: Vec<Family> = families.keys().copied().collect();
    for family in fams {
        let Some(src_ip) = ctx
            .kernel
            .first_address(link.ifindex, family, ifname)
            .await?
        else {
            tracing::debug!(ifname, %family, "no address of this family yet; retrying next pass");
            continue;
        };
        let Some(neighbors) = families.get(&family) else {
            continue;
        };
        match restore_family(
            ctx.kernel,
            &mut sender,
            ifname,
            link.ifindex,
            src_mac,
            src_ip,
            neighbors,
        )
        .await
        {
            FamilyOutcome::Done(r) => {
                tracing::info!(
                    ifname,
                    %family,
                    restored = r.restored,
                    failed = r.failed,
                    "interface neighbors restored and probed"
                );
                report.restored += r.restored;
                report.failed += r.failed;
                families.remove(&family);
            }
            FamilyOutcome::NetDown => {
                tracing::info!(ifname, %family, "ENETDOWN while probing; retrying next pass");
                break;
            }
        }
    }
    Ok(report)
}

enum FamilyOutcome {
    Done(InterfaceReport),
    NetDown,
}

async fn restore_family(
    kernel: &Kernel,
    sender: &mut PacketSender,
    ifname: &str,
    ifindex: u32,
    src_mac: Mac,
    src_ip: IpAddr,
    neighbors: &[(IpAddr, Mac)],
) -> FamilyOutcome {
    let mut report = InterfaceReport::default();
    for (ip, mac) in neighbors {
        let mac_text = sonic_netlink::fmt::mac_to_string(mac);
        match kernel.add_stale(ifindex, *ip, mac).await {
            Ok(AddOutcome::Added) => {
                tracing::debug!(ifname, %ip, mac = %mac_text, "neighbor added as STALE")
            }
            Ok(AddOutcome::Existed) => {
                tracing::debug!(ifname, %ip, mac = %mac_text, "neighbor already in the kernel")
            }
            Err(e) => {
                tracing::warn!(ifname, %ip, mac = %mac_text, error = %e, "kernel refused neighbor; skipped");
                report.failed += 1;
                continue;
            }
        }
        let frame = match (src_ip, ip) {
            (IpAddr::V4(s), IpAddr::V4(t)) => arp_who_has(src_mac, s, *t),
            (IpAddr::V6(s), IpAddr::V6(t)) => neighbor_solicitation(src_mac, s, *t),
            _ => Err(PacketError("source and target families differ".into())),
        };
        let sent = match frame {
            Ok(frame) => sender.send(frame).await,
            Err(e) => Err(io::Error::other(e)),
        };
        match sent {
            Ok(()) => report.restored += 1,
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENETDOWN as i32) => {
                return FamilyOutcome::NetDown;
            }
            Err(e) => {
                tracing::warn!(ifname, %ip, error = %e, "cannot send probe");
                report.failed += 1;
            }
        }
    }
    FamilyOutcome::Done(report)
}

/// The link is up for restoring: carrier on and, for `Vlan*` /
/// `PortChannel*`, members in STATE_DB; then the one-time settle wait.
async fn ready_link(ctx: &PassContext<'_>, ifname: &str) -> Result<Option<LinkInfo>, RestoreError> {
    let Some(link) = ctx.kernel.link(ifname).await? else {
        tracing::debug!(ifname, "interface does not exist yet");
        return Ok(None);
    };
    if !link.carrier {
        tracing::debug!(ifname, "interface carrier is down");
        return Ok(None);
    }
    let mut needs_members = false;
    for (pattern, table) in [
        ("Vlan", STATE_VLAN_MEMBER_TABLE_NAME),
        ("PortChannel", STATE_LAG_MEMBER_TABLE_NAME),
    ] {
        if !ifname.contains(pattern) {
            continue;
        }
        needs_members = true;
        // Table named `VLAN_MEMBER_TABLE|<if>`: its keys are the members.
        let members = Table::new(&format!("{table}{}{ifname}", ctx.state_sep), ctx.state_sep);
        let mut conn = ctx.state.clone();
        if members.keys(&mut conn).await?.is_empty() {
            tracing::debug!(ifname, table, "no members yet");
            return Ok(None);
        }
    }
    if needs_members {
        ctx.settled
            .get_or_init(|| async {
                tracing::info!(
                    ifname,
                    settle_s = ctx.settle.as_secs_f64(),
                    "first member interface up; settling"
                );
                tokio::time::sleep(ctx.settle).await;
            })
            .await;
    }
    Ok(Some(link))
}

// ===== kernel access =====

struct LinkInfo {
    ifindex: u32,
    mac: Option<Mac>,
    carrier: bool,
}

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
    /// RTM_GETLINK by name. `None` when there is no such interface (ENODEV).
    /// Carrier means `IFF_UP` and `IFF_LOWER_UP` (what `/sys/.../carrier`
    /// reading `1` means: it is unreadable while the link is admin down).
    async fn link(&self, ifname: &str) -> Result<Option<LinkInfo>, RestoreError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(ifname.to_string())
            .execute();
        let msg = match links.try_next().await {
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
        let flags = msg.header.flags;
        let carrier = flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp);
        let mac = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(a) => <Mac>::try_from(a.as_slice()).ok(),
            _ => None,
        });
        Ok(Some(LinkInfo {
            ifindex: msg.header.index,
            mac,
            carrier,
        }))
    }

    /// The first address of `family` on `ifindex` in kernel dump order (as
    /// getifaddrs / netifaces), link-local included: IFA_LOCAL if present,
    /// else IFA_ADDRESS.
    async fn first_address(
        &self,
        ifindex: u32,
        family: Family,
        ifname: &str,
    ) -> Result<Option<IpAddr>, RestoreError> {
        let want = match family {
            Family::IPv4 => AddressFamily::Inet,
            Family::IPv6 => AddressFamily::Inet6,
        };
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute();
        loop {
            let msg = match addrs.try_next().await {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(None),
                Err(source) => {
                    return Err(RestoreError::Netlink {
                        context: format!("RTM_GETADDR {ifname}"),
                        source,
                    })
                }
            };
            if msg.header.family != want {
                continue;
            }
            let local = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let address = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = local.or(address).filter(|ip| Family::of(ip) == family) {
                return Ok(Some(ip));
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

/// An AF_PACKET socket bound to one interface (pnet_datalink), send only.
/// pnet's send blocks (up to its 1 s write timeout when the socket buffer
/// is full), so each send runs on tokio's blocking pool, never on the
/// runtime thread. `None` only while a send is in flight or after a send
/// task died.
struct PacketSender {
    tx: Option<Box<dyn pnet_datalink::DataLinkSender>>,
}

impl PacketSender {
    fn open(ifname: &str, ifindex: u32, mac: Mac) -> io::Result<Self> {
        let iface = pnet_datalink::NetworkInterface {
            name: ifname.to_string(),
            description: String::new(),
            index: ifindex,
            mac: Some(pnet_datalink::MacAddr::from(mac)),
            ips: Vec::new(),
            flags: 0,
        };
        let config = pnet_datalink::Config {
            promiscuous: false,
            read_buffer_size: 2048,
            write_timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        match pnet_datalink::channel(&iface, config)? {
            pnet_datalink::Channel::Ethernet(tx, _rx) => Ok(PacketSender { tx: Some(tx) }),
            _ => Err(io::Error::other(
                "pnet_datalink returned a non-Ethernet channel",
            )),
        }
    }

    /// Sends one Ethernet frame.
    ///
    /// Errors: the socket's (e.g. `ENETDOWN`), "packet larger than the send
    /// buffer", or "packet socket lost" after a send task panicked.
    async fn send(&mut self, frame: Vec<u8>) -> io::Result<()> {
        let Some(mut tx) = self.tx.take() else {
            return Err(io::Error::other("packet socket lost"));
        };
        let (tx, res) = tokio::task::spawn_blocking(move || {
            let res = tx
                .send_to(&frame, None)
                .unwrap_or_else(|| Err(io::Error::other("packet larger than the send buffer")));
            (tx, res)
        })
        .await
        .map_err(|e| io::Error::other(format!("packet send task: {e}")))?;
        self.tx = Some(tx);
        res
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
