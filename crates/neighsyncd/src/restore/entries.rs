//! APPL_DB `NEIGH_TABLE:<ifname>:<ip>` as the restore job reads it: each
//! entry validated (the script's fields, its `lo` skip), the valid ones
//! grouped by interface and family, the malformed ones logged and counted.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use redis::aio::MultiplexedConnection;
use swss::{FieldValues, SwssError, Table};

use super::{Mac, APP_NEIGH_TABLE_NAME};
use crate::sync::{parse_mac, Family};

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
