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

impl V4Key {
    /// The bytes as one integer, for a comparison in one instruction.
    fn int(&self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        u64::from_be_bytes([0, 0, a, b, c, d, e, f])
    }
}

impl V6Key {
    /// The bytes as two integers, for a comparison in two instructions.
    fn ints(&self) -> (u128, u16) {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&self.0[..16]);
        (
            u128::from_be_bytes(ip),
            u16::from_be_bytes([self.0[16], self.0[17]]),
        )
    }
}

/// The byte order (as the derived impl), on integers: the sorted map's
/// binary search compares keys at every step.
impl Ord for V4Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.int().cmp(&other.int())
    }
}

impl PartialOrd for V4Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// As for [`V4Key`].
impl Ord for V6Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.ints().cmp(&other.ints())
    }
}

impl PartialOrd for V6Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

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
/// interface ids past `u16::MAX`) keep the [`Key`] form. The packed shapes
/// live in a [`SortedMap`] (a sorted vector plus a small hash map of recent
/// changes) rather than a hash map, which would round up to a power of two
/// of slots with one control byte each: for 75k IPv4 and 25k IPv6
/// neighbours about 1.7 MiB of table instead of 2.7 MiB (hash maps of
/// 131,072 and 32,768 slots).
#[derive(Debug, Default)]
pub(super) struct DesiredTable {
    v4: SortedMap<V4Key>,
    v6: SortedMap<V6Key>,
    other: FastMap<Key, Slot>,
}

/// A map from a small packed key to a [`Slot`], for the bulk of the table:
/// a vector sorted by key (`base`, exactly its length in memory: 14 bytes
/// per IPv4 entry) plus a hash map of the changes since it was last
/// rebuilt (`delta`: an entry added, or a `base` entry removed). `delta`
/// is folded into `base` once it holds a sixteenth as many keys (at least
/// [`SortedMap::MIN_DELTA`]), so a change costs a lookup plus an amortized
/// copy of about 16 entries; a lookup is one hash probe plus a binary
/// search.
///
/// Invariants: `base` is sorted and has no duplicate keys; a key in
/// `delta` with `Some` is not in `base`, with `None` (removed) it is.
#[derive(Debug)]
struct SortedMap<K> {
    base: Vec<(K, Slot)>,
    delta: FastMap<K, Option<Slot>>,
    /// Number of live keys.
    len: usize,
    /// No folds until [`SortedMap::compact`] (a dump is being fed: its
    /// changes stay in the hash map, where lookups are cheapest).
    held: bool,
}

impl<K> Default for SortedMap<K> {
    fn default() -> Self {
        SortedMap {
            base: Vec::new(),
            delta: FastMap::default(),
            len: 0,
            held: false,
        }
    }
}

impl<K: Ord + Hash + Copy> SortedMap<K> {
    /// `delta` is folded into `base` past this many keys even when `base`
    /// is small.
    const MIN_DELTA: usize = 1024;

    fn find(&self, k: &K) -> Option<usize> {
        self.base.binary_search_by(|(b, _)| b.cmp(k)).ok()
    }

    fn get(&self, k: &K) -> Option<&Slot> {
        match self.delta.get(k) {
            Some(d) => d.as_ref(),
            None => self.find(k).map(|i| &self.base[i].1),
        }
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut Slot> {
        if self.delta.contains_key(k) {
            return self.delta.get_mut(k).and_then(|d| d.as_mut());
        }
        let i = self.find(k)?;
        Some(&mut self.base[i].1)
    }

    fn insert(&mut self, k: K, slot: Slot) {
        match self.delta.get_mut(&k) {
            Some(Some(d)) => {
                *d = slot;
                return;
            }
            Some(None) => {
                // Removed from `base` since the last fold: back in place.
                self.delta.remove(&k);
                self.len += 1;
            }
            None => {}
        }
        if let Some(i) = self.find(&k) {
            self.base[i].1 = slot;
            return;
        }
        self.delta.insert(k, Some(slot));
        self.len += 1;
        self.maybe_fold();
    }

    /// [`SortedMap::insert`] of a key known to be absent.
    fn insert_absent(&mut self, k: K, slot: Slot) {
        debug_assert!(self.get(&k).is_none());
        match self.delta.get(&k) {
            // Removed from `base`: back in place.
            Some(None) => self.insert(k, slot),
            _ => {
                self.delta.insert(k, Some(slot));
                self.len += 1;
                self.maybe_fold();
            }
        }
    }

    fn remove(&mut self, k: &K) {
        match self.delta.get(k) {
            Some(None) => {}
            Some(Some(_)) => {
                // Added since the last fold: not in `base`.
                self.delta.remove(k);
                self.len -= 1;
            }
            None => {
                if self.find(k).is_some() {
                    self.delta.insert(*k, None);
                    self.len -= 1;
                    self.maybe_fold();
                }
            }
        }
    }

    fn clear(&mut self) {
        self.base = Vec::new();
        self.delta = FastMap::default();
        self.len = 0;
    }

    fn maybe_fold(&mut self) {
        if !self.held && self.delta.len() > (self.base.len() / 16).max(Self::MIN_DELTA) {
            self.fold();
            // Kept for the next changes (sized for about as many).
            self.delta.clear();
        }
    }

    /// Folds `delta` into `base`, frees `delta` and ends a hold.
    fn compact(&mut self) {
        self.fold();
        self.delta = FastMap::default();
        self.held = false;
    }

    /// Rebuilds `base` with the changes of `delta` (emptied; its capacity
    /// stays). The new vector is allocated at its exact size.
    fn fold(&mut self) {
        if self.delta.is_empty() {
            self.base.shrink_to_fit();
            return;
        }
        let mut changes: Vec<(K, Option<Slot>)> = self.delta.drain().collect();
        changes.sort_unstable_by_key(|c| c.0);
        let mut out = Vec::with_capacity(self.len);
        let mut old = std::mem::take(&mut self.base).into_iter().peekable();
        for (k, change) in changes {
            while let Some(e) = old.next_if(|(b, _)| *b < k) {
                out.push(e);
            }
            match change {
                Some(slot) => out.push((k, slot)),
                // Removed: drop the `base` entry.
                None => {
                    old.next_if(|(b, _)| *b == k);
                }
            }
        }
        out.extend(old);
        self.base = out;
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        // Removed `base` entries too: harmless, they are not read.
        self.base
            .iter_mut()
            .map(|(_, s)| s)
            .chain(self.delta.values_mut().filter_map(|d| d.as_mut()))
    }

    /// Every live entry, in no particular order.
    fn iter(&self) -> impl Iterator<Item = (&K, &Slot)> {
        let removed = |k: &K| matches!(self.delta.get(k), Some(None));
        self.base
            .iter()
            .filter(move |(k, _)| !removed(k))
            .map(|(k, s)| (k, s))
            .chain(
                self.delta
                    .iter()
                    .filter_map(|(k, d)| d.as_ref().map(|s| (k, s))),
            )
    }
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
        self.v4.len + self.v6.len + self.other.len()
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

    /// [`DesiredTable::insert`] of a key the table does not hold (one
    /// lookup fewer).
    pub(super) fn insert_absent(&mut self, key: Key, slot: Slot) {
        match Self::pack(&key) {
            Packed::V4(k) => self.v4.insert_absent(k, slot),
            Packed::V6(k) => self.v6.insert_absent(k, slot),
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

    /// A kernel dump is being fed: changes stay in the hash maps (fast
    /// lookups while every key is touched) until
    /// [`DesiredTable::shrink_to_fit`] at its end.
    pub(super) fn hold(&mut self) {
        self.v4.held = true;
        self.v6.held = true;
    }

    /// Gives the spare capacity back (folds the recent changes into the
    /// sorted vectors): after a cold start or a dump, when the table has
    /// its size for a while.
    pub(super) fn shrink_to_fit(&mut self) {
        self.v4.compact();
        self.v6.compact();
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
        assert_eq!((t.v4.len, t.v6.len, t.other.len()), (1, 1, 1));
        let mut keys: Vec<Key> = t.keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, vec![v4.clone(), v6, big]);
        t.remove(&v4);
        assert!(!t.contains_key(&v4));
    }

    /// The sorted map behaves as a hash map under any sequence of
    /// inserts, removals and folds, around and past the fold threshold.
    #[test]
    fn sorted_map_is_a_map() {
        use proptest::prelude::*;
        use std::collections::HashMap;
        let op = (0u8..4, 0u16..3000, any::<u8>());
        proptest!(ProptestConfig::with_cases(64), |(ops in proptest::collection::vec(op, 0..6000))| {
            let mut m: SortedMap<V4Key> = SortedMap::default();
            let mut model: HashMap<V4Key, u8> = HashMap::new();
            for (what, k, b) in ops {
                let [x, y] = k.to_le_bytes();
                let key = V4Key([0, 0, 10, 0, x, y]);
                let slot = Slot {
                    v: Value { mac: [b; 6], family: Family::IPv4 },
                    seen: false,
                };
                match what {
                    0 => {
                        m.insert(key, slot);
                        model.insert(key, b);
                    }
                    1 => {
                        if model.insert(key, b).is_none() {
                            m.insert_absent(key, slot);
                        } else {
                            m.insert(key, slot);
                        }
                    }
                    2 => {
                        m.remove(&key);
                        model.remove(&key);
                    }
                    _ => {
                        if let Some(s) = m.get_mut(&key) {
                            s.seen = true;
                        }
                        if b == 0 {
                            m.compact();
                        } else if b == 1 {
                            m.held = true;
                        }
                    }
                }
                prop_assert_eq!(m.get(&key).map(|s| s.v.mac[0]), model.get(&key).copied());
                prop_assert_eq!(m.len, model.len());
            }
            let mut got: Vec<(V4Key, u8)> = m.iter().map(|(k, s)| (*k, s.v.mac[0])).collect();
            got.sort_unstable();
            let mut want: Vec<(V4Key, u8)> = model.into_iter().collect();
            want.sort_unstable();
            prop_assert!(got == want, "{} entries listed, {} in the model", got.len(), want.len());
        });
    }
}
