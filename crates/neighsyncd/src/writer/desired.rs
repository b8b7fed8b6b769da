//! The desired table of [`super::NeighWriter`]: `<ifname>:<ip>` -> MAC and
//! family, with the keys packed by shape so an entry stays small (the
//! writer keeps one per neighbour for as long as it runs).

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::compact::{FastMap, Key, Value};

/// One entry of the desired table: the value, and whether the kernel
/// snapshot in progress ([`super::NeighWriter::begin_snapshot`]) has listed the key
/// (meaningless outside a snapshot). 8 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) v: Value,
    pub(super) seen: bool,
}

/// An IPv4 neighbour key packed in 6 bytes (interface id as `u16`, the
/// address), alignment 1, so a map entry with its [`Slot`] is 14 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V4Key([u8; 6]);

/// An IPv6 neighbour key packed in 18 bytes (the address, interface id as
/// `u16`), alignment 1: 26 bytes per entry with its [`Slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V6Key([u8; 18]);

/// One integer write per key (as [`Key`]'s hash).
impl Hash for V4Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, 0, 0]));
    }
}

/// Two integer writes per key.
impl Hash for V6Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&self.0[..16]);
        state.write_u128(u128::from_le_bytes(ip));
        state.write_u16(u16::from_le_bytes([self.0[16], self.0[17]]));
    }
}

/// The desired table, split by key shape so the entries stay small: an
/// IPv4 neighbour is 14 bytes per entry ([`V4Key`] + [`Slot`]), an IPv6 one
/// 26 ([`V6Key`]), instead of 32 in one map of [`Key`]; verbatim keys (and
/// interface ids past `u16::MAX`) keep the [`Key`] form. For 75k IPv4 and
/// 25k IPv6 neighbours: about 2.7 MiB of table (hashbrown rounds to 131,072
/// and 32,768 slots) instead of 4.3 MiB.
#[derive(Debug, Default)]
pub(super) struct DesiredTable {
    v4: FastMap<V4Key, Slot>,
    v6: FastMap<V6Key, Slot>,
    other: FastMap<Key, Slot>,
}

/// Where a [`Key`] lives in the [`DesiredTable`].
enum Packed<'a> {
    V4(V4Key),
    V6(V6Key),
    Other(&'a Key),
}

impl DesiredTable {
    fn pack(key: &Key) -> Packed<'_> {
        let Key::Neigh { ifid, ip } = key else {
            return Packed::Other(key);
        };
        let Ok(id) = u16::try_from(*ifid) else {
            return Packed::Other(key);
        };
        let [i0, i1] = id.to_le_bytes();
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                Packed::V4(V4Key([i0, i1, a, b, c, d]))
            }
            IpAddr::V6(v6) => {
                let mut k = [0u8; 18];
                k[..16].copy_from_slice(&v6.octets());
                k[16] = i0;
                k[17] = i1;
                Packed::V6(V6Key(k))
            }
        }
    }

    fn unpack_v4(k: &V4Key) -> Key {
        let [i0, i1, a, b, c, d] = k.0;
        Key::Neigh {
            ifid: u32::from(u16::from_le_bytes([i0, i1])),
            ip: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        }
    }

    fn unpack_v6(k: &V6Key) -> Key {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&k.0[..16]);
        Key::Neigh {
            ifid: u32::from(u16::from_le_bytes([k.0[16], k.0[17]])),
            ip: IpAddr::V6(Ipv6Addr::from(ip)),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.other.len()
    }

    pub(super) fn get(&self, key: &Key) -> Option<&Slot> {
        match Self::pack(key) {
            Packed::V4(k) => self.v4.get(&k),
            Packed::V6(k) => self.v6.get(&k),
            Packed::Other(k) => self.other.get(k),
        }
    }

    pub(super) fn get_mut(&mut self, key: &Key) -> Option<&mut Slot> {
        match Self::pack(key) {
            Packed::V4(k) => self.v4.get_mut(&k),
            Packed::V6(k) => self.v6.get_mut(&k),
            Packed::Other(k) => self.other.get_mut(k),
        }
    }

    pub(super) fn contains_key(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }

    pub(super) fn insert(&mut self, key: Key, slot: Slot) {
        match Self::pack(&key) {
            Packed::V4(k) => {
                self.v4.insert(k, slot);
            }
            Packed::V6(k) => {
                self.v6.insert(k, slot);
            }
            Packed::Other(_) => {
                self.other.insert(key, slot);
            }
        }
    }

    pub(super) fn remove(&mut self, key: &Key) {
        match Self::pack(key) {
            Packed::V4(k) => {
                self.v4.remove(&k);
            }
            Packed::V6(k) => {
                self.v6.remove(&k);
            }
            Packed::Other(k) => {
                self.other.remove(k);
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
        self.other.clear();
    }

    pub(super) fn shrink_to_fit(&mut self) {
        self.v4.shrink_to_fit();
        self.v6.shrink_to_fit();
        self.other.shrink_to_fit();
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        self.v4
            .values_mut()
            .chain(self.v6.values_mut())
            .chain(self.other.values_mut())
    }

    /// Every entry, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Key, &Slot)> {
        self.v4
            .iter()
            .map(|(k, s)| (Self::unpack_v4(k), s))
            .chain(self.v6.iter().map(|(k, s)| (Self::unpack_v6(k), s)))
            .chain(self.other.iter().map(|(k, s)| (k.clone(), s)))
    }

    /// Every key, in no particular order.
    pub(super) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.iter().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Family;

    #[test]
    fn desired_entries_stay_small() {
        // 100k neighbours must fit the daemon's 16 MiB: keep an entry compact.
        assert!(std::mem::size_of::<Key>() <= 24);
        assert!(std::mem::size_of::<(Key, Slot)>() <= 32);
        assert_eq!(std::mem::size_of::<(V4Key, Slot)>(), 14);
        assert_eq!(std::mem::size_of::<(V6Key, Slot)>(), 26);
        let mut t = DesiredTable::default();
        let v4 = Key::Neigh {
            ifid: 7,
            ip: "10.1.2.3".parse().unwrap(),
        };
        let v6 = Key::Neigh {
            ifid: 7,
            ip: "fc00::1".parse().unwrap(),
        };
        let slot = Slot {
            v: Value {
                mac: [0, 1, 2, 3, 4, 5],
                family: Family::IPv4,
            },
            seen: false,
        };
        t.insert(v4.clone(), slot);
        t.insert(v6.clone(), slot);
        let big = Key::Neigh {
            ifid: 70_000,
            ip: "10.1.2.3".parse().unwrap(),
        };
        t.insert(big.clone(), slot);
        assert_eq!((t.v4.len(), t.v6.len(), t.other.len()), (1, 1, 1));
        let mut keys: Vec<Key> = t.keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, vec![v4.clone(), v6, big]);
        t.remove(&v4);
        assert!(!t.contains_key(&v4));
    }
}
