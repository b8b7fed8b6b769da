//! The compact forms of `NEIGH_TABLE` keys and values that the writer
//! ([`crate::writer`]) and the warm-restart cache ([`crate::warm`]) hold
//! per neighbour: an interned interface name plus the IP instead of the key
//! text, a 6-byte MAC plus the family instead of the `neigh`/`family`
//! strings. Keys and values that do not have the exact text neighsyncd
//! writes are kept verbatim, so the text of every key round-trips byte for
//! byte.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sonic_netlink::fmt::{ipv6_to_string, mac_to_string, push_ip};
use swss::FieldValues;

use crate::sync::Family;

/// Hash maps of compact keys use foldhash (fast, not DoS-resistant: the
/// keys come from the kernel and APPL_DB, not from the network); SipHash
/// was ~5 % of the daemon's CPU in a 100k burst.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// See [`FastMap`].
pub(crate) type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// A `NEIGH_TABLE` key (`<ifname>:<ip>`), compact: interned interface name
/// plus the IP (24 bytes, no heap). Keys without the canonical shape
/// ([`canonical_split`], e.g. found in APPL_DB, written by someone else)
/// are kept verbatim. Two texts give equal keys exactly when they are equal
/// (with the same [`Interner`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Neigh { ifid: u32, ip: IpAddr },
    Raw(Box<str>),
}

/// Hashes a neighbour key as one or two integer writes (the derived impl
/// makes five or six, and the tables hash every key several times).
/// Consistent with `Eq`: the variant and every field go in.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Key::Neigh {
                ifid,
                ip: IpAddr::V4(v4),
            } => state.write_u64(u64::from(*ifid) << 32 | u64::from(u32::from(*v4))),
            Key::Neigh {
                ifid,
                ip: IpAddr::V6(v6),
            } => {
                state.write_u128(u128::from(*v6));
                // Tag 1 in the top bits keeps V6 apart from V4.
                state.write_u64(1 << 40 | u64::from(*ifid));
            }
            Key::Raw(raw) => {
                state.write_u64(2 << 40);
                raw.hash(state);
            }
        }
    }
}

/// The `neigh` and `family` fields of one key (7 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) mac: [u8; 6],
    pub(crate) family: Family,
}

impl Value {
    /// The fields as neighsyncd writes them (`neigh`, then `family`;
    /// docs/behavior.md b.2 step 16).
    pub(crate) fn fields(&self) -> FieldValues {
        vec![
            ("neigh".to_owned(), mac_to_string(&self.mac)),
            ("family".to_owned(), self.family.as_str().to_owned()),
        ]
    }

    /// `fvs` when it is exactly the two pairs [`Value::fields`] prints for
    /// some value (in either order): `neigh` = a MAC as [`mac_to_string`]
    /// prints it ([`parse_canonical_mac`]), `family` = `IPv4` or `IPv6`, nothing
    /// else. `None` for any other hash.
    pub(crate) fn parse_exact(fvs: &[(String, String)]) -> Option<Value> {
        let [(f1, v1), (f2, v2)] = fvs else {
            return None;
        };
        let (mac, family) = match (f1.as_str(), f2.as_str()) {
            ("neigh", "family") => (v1, v2),
            ("family", "neigh") => (v2, v1),
            _ => return None,
        };
        let family = match family.as_str() {
            "IPv4" => Family::IPv4,
            "IPv6" => Family::IPv6,
            _ => return None,
        };
        Some(Value {
            mac: parse_canonical_mac(mac)?,
            family,
        })
    }
}

/// The 6 bytes of `text` when it is exactly what [`mac_to_string`] prints
/// (`xx:xx:xx:xx:xx:xx`, lowercase hex digits); any other spelling counts as
/// different, so it gets rewritten canonically.
pub(crate) fn parse_canonical_mac(text: &str) -> Option<[u8; 6]> {
    let b = text.as_bytes();
    if b.len() != 17 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut mac = [0u8; 6];
    for (i, m) in mac.iter_mut().enumerate() {
        let at = i * 3;
        if i < 5 && b[at + 2] != b':' {
            return None;
        }
        *m = digit(b[at])? << 4 | digit(b[at + 1])?;
    }
    Some(mac)
}

/// Split `<ifname>:<ip>` when the IP text is exactly what
/// [`sonic_netlink::fmt::ip_to_string`] prints for it (so the key text
/// round-trips byte for byte).
pub(crate) fn canonical_split(text: &str) -> Option<(&str, IpAddr)> {
    let (ifname, ip_text) = text.split_once(':')?;
    if ifname.is_empty() {
        return None;
    }
    // std's IPv4 parser accepts only the dotted quad Display prints (no
    // leading zeros, no other radix or spelling): no need to print it back.
    if let Ok(v4) = ip_text.parse::<Ipv4Addr>() {
        return Some((ifname, IpAddr::V4(v4)));
    }
    let v6: Ipv6Addr = ip_text.parse().ok()?;
    (ipv6_to_string(&v6) == ip_text).then_some((ifname, IpAddr::V6(v6)))
}

/// Interface name interning (`Ethernet0` <-> 0, ...) and the conversions
/// between key text and [`Key`].
#[derive(Debug, Default)]
pub(crate) struct Interner {
    names: Vec<Box<str>>,
    ids: FastMap<Box<str>, u32>,
}

impl Interner {
    /// The id of `name`, interned if new; `None` only past `u32::MAX` names.
    pub(crate) fn intern(&mut self, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        let id = u32::try_from(self.names.len()).ok()?;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        Some(id)
    }

    /// The id of `name`, when it was interned.
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of `id` (empty for an id never given out).
    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    /// The compact key of `text`, interning its interface name.
    pub(crate) fn key_of(&mut self, text: &str) -> Key {
        if let Some((ifname, ip)) = canonical_split(text) {
            if let Some(ifid) = self.intern(ifname) {
                return Key::Neigh { ifid, ip };
            }
        }
        Key::Raw(text.into())
    }

    /// The compact key of `text` without interning (`None` when the
    /// interface name was never seen, so no such key can exist).
    pub(crate) fn lookup_key(&self, text: &str) -> Option<Key> {
        match canonical_split(text) {
            Some((ifname, ip)) => self.get(ifname).map(|ifid| Key::Neigh { ifid, ip }),
            None => Some(Key::Raw(text.into())),
        }
    }

    /// The text of `key` (`<ifname>:<ip>`).
    pub(crate) fn key_text(&self, key: &Key) -> String {
        match key {
            Key::Neigh { ifid, ip } => {
                let name = self.name(*ifid);
                // One allocation: `<ifname>:` + at most 39 bytes of IPv6.
                let mut s = String::with_capacity(name.len() + 1 + 39);
                s.push_str(name);
                s.push(':');
                push_ip(&mut s, ip);
                s
            }
            Key::Raw(raw) => raw.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_text_is_exact() {
        assert_eq!(
            parse_canonical_mac("00:11:22:aa:bb:cc"),
            Some([0, 0x11, 0x22, 0xaa, 0xbb, 0xcc])
        );
        for bad in [
            "00:11:22:AA:bb:cc",
            "+a:11:22:aa:bb:cc",
            "0:11:22:aa:bb:cc",
            "00:11:22:aa:bb:cc:",
            "00-11-22-aa-bb-cc",
            "00:11:22:aa:bb:c",
            "00:11:22:aa:bb:ccc",
            "",
        ] {
            assert_eq!(parse_canonical_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_round_trip() {
        let mut t = Interner::default();
        for text in [
            "Ethernet0:10.0.0.1",
            "Vlan1000:fc00::1",
            "x:010.0.0.1",
            ":1.2.3.4",
        ] {
            let k = t.key_of(text);
            assert_eq!(t.key_text(&k), text);
            assert_eq!(t.lookup_key(text), Some(k));
        }
        assert!(matches!(t.key_of("x:010.0.0.1"), Key::Raw(_)));
        assert_eq!(t.lookup_key("Ethernet9:10.0.0.1"), None);
    }
}
