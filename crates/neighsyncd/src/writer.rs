//! The single owner of what neighsyncd writes to APPL_DB `NEIGH_TABLE`: a
//! pure (sans-I/O) state machine between the sync rules and the Redis
//! pipeline.
//!
//! The C++ neighsyncd writes every decided operation at once, one EVALSHA and
//! one round trip per neighbour event (docs/behavior.md b.2 step 18, f.3). Here the
//! daemon hands every decided [`NeighOp`] to a [`NeighWriter`]:
//!
//! * it keeps the **desired** table (`<ifname>:<ip>` -> MAC and family),
//!   compactly (`writer/desired.rs`): the interface name is interned and the key
//!   packed with the IP as bytes in a sorted vector, so an IPv4 entry costs
//!   14 bytes and an IPv6 one 26 (100k neighbours, a quarter IPv6: about
//!   1.7 MiB);
//! * it keeps a **dirty** set with one pending kind per key ([`Pending`]),
//!   coalescing a burst per key, last operation wins. A DEL followed by a SET
//!   in one burst stays DEL-then-SET on the wire (batch DEL, then batch SET in
//!   the same pipeline: the consumer wipes the old hash, then applies the new
//!   fields, as swss-common's ProducerStateTable del+set before a pop, a.4
//!   rule 2);
//! * a SET equal to the desired value of a clean key, or a DEL of an absent
//!   clean key, costs nothing: a neighbour flapping
//!   REACHABLE/STALE/DELAY/PROBE with the same MAC is never written again;
//! * [`NeighWriter::take_batch`] hands out a bounded [`Batch`] (FIFO in the
//!   order keys first became dirty) that the daemon sends as one pipeline of
//!   batched ProducerStateTable scripts, then reports with
//!   [`NeighWriter::complete`] or [`NeighWriter::fail`];
//! * resyncs compute differences instead of rewriting everything: against a
//!   fresh kernel dump after ENOBUFS, fed as it arrives
//!   ([`NeighWriter::begin_snapshot`] .. [`NeighWriter::end_snapshot`]), and
//!   against APPL_DB after a Redis reconnect ([`NeighWriter::resync_from_appl`]).
//!
//! **Dumps and notifications.** A dump entry and the notification of a
//! change reach the socket independently: the kernel fills a dump message,
//! and before it queues it another CPU may change a neighbour the message
//! lists and queue that change's notification first. So during a snapshot,
//! a dump entry for a key a notification touched since the snapshot began is
//! not newer than that notification (a newer change has its own
//! notification still to come): it only marks the key listed.
//!
//! EVPN `ROUTE_TABLE` host-route deletes (b.2 step 18) are kept in a separate
//! FIFO and go out in the same batch **before** the `NEIGH_TABLE` sets.
//!
//! Nothing here does I/O; the core ([`crate::core`]) drives it.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::net::IpAddr;

use swss::FieldValues;

use crate::compact::{FastMap, FastSet, Interner, Key, Value};
use crate::sync::{neigh_key, Family, NeighOp};
use desired::{DesiredTable, Slot};

/// Where a staged neighbour operation comes from. While a kernel snapshot
/// runs ([`NeighWriter::begin_snapshot`]), only dump entries count as
/// differences the dump found ([`ResyncCounts`]); a notification arriving
/// meanwhile is a change of the kernel, not a repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A reply to the dump request (or the sweep at its end).
    Dump,
    /// A multicast notification of a change (or a link event).
    Notification,
}

// ===== Pending =====

/// What is pending on the wire for one dirty key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pending {
    /// ProducerStateTable `set(key, [neigh, family])`.
    Set,
    /// ProducerStateTable `del(key)`.
    Del,
    /// `del(key)` then `set(key, ...)`: the consumer wipes the old hash, then
    /// applies the new fields (orchagent sees DEL then SET).
    DelThenSet,
}

impl Pending {
    /// The pending kind after `next` is staged on top of `self`, as if both
    /// went to a ProducerStateTable one after the other before a pop.
    fn then(self, next: Pending) -> Pending {
        match (self, next) {
            (_, Pending::Del) => Pending::Del,
            (_, Pending::DelThenSet) => Pending::DelThenSet,
            (Pending::Set, Pending::Set) => Pending::Set,
            (Pending::Del | Pending::DelThenSet, Pending::Set) => Pending::DelThenSet,
        }
    }
}

// ===== keys and values =====

/// What APPL_DB (as the consumer will see it once every pending key is
/// popped) holds for a key that is dirty, when the writer knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Known(Option<Value>),
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Dirty {
    kind: Pending,
    base: Base,
    /// Identity of this entry's slot in the FIFO queue.
    seq: u64,
}

// ===== Batch =====

/// One bounded unit of work for the Redis pipeline, from
/// [`NeighWriter::take_batch`]. Send it as **one pipeline**, in this order:
///
/// 1. `NEIGH_TABLE` batched del of [`Batch::neigh_dels`] (keys pending
///    [`Pending::Del`] or [`Pending::DelThenSet`]);
/// 2. `ROUTE_TABLE` batched del of [`Batch::route_dels`] (EVPN VRF host
///    routes `<Vrf...>:<ip>`, b.2 step 18);
/// 3. `NEIGH_TABLE` batched set of [`Batch::neigh_sets`] (fields `neigh` then
///    `family`, b.2 step 16);
/// 4. `NEIGH_FAILED_TABLE` batched del of [`Batch::failed_dels`], then
///    batched set of [`Batch::failed_sets`] (filled by
///    [`crate::failed::FailedTable::take_into`], b.2 step 9a).
///
/// Then hand it back with [`NeighWriter::complete`] (every reply was nil) or
/// [`NeighWriter::fail`] (anything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    id: u64,
    /// `NEIGH_TABLE` keys (`<ifname>:<ip>`) to delete, in FIFO order.
    pub neigh_dels: Vec<String>,
    /// `ROUTE_TABLE` keys (`<vrf>:<ip>`) to delete, before the sets.
    pub route_dels: Vec<String>,
    /// `NEIGH_TABLE` sets: key and `[("neigh", mac), ("family", family)]`.
    pub neigh_sets: Vec<(String, FieldValues)>,
    /// `NEIGH_FAILED_TABLE` keys (`<ifname>:<ip>`) to delete.
    pub failed_dels: Vec<String>,
    /// `NEIGH_FAILED_TABLE` sets: key and `[("NULL", "NULL")]`.
    pub failed_sets: Vec<(String, FieldValues)>,
    entries: Vec<Taken>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Taken {
    key: Key,
    kind: Pending,
}

impl Batch {
    /// A batch with no `NEIGH_TABLE` or `ROUTE_TABLE` work, for
    /// `NEIGH_FAILED_TABLE` operations alone (the writer ignores it in
    /// [`NeighWriter::complete`] and [`NeighWriter::fail`]).
    pub fn empty() -> Batch {
        Batch {
            id: u64::MAX,
            neigh_dels: Vec::new(),
            route_dels: Vec::new(),
            neigh_sets: Vec::new(),
            failed_dels: Vec::new(),
            failed_sets: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Number of keys in the batch (NEIGH_TABLE keys plus ROUTE_TABLE and
    /// NEIGH_FAILED_TABLE keys).
    pub fn len(&self) -> usize {
        self.entries.len() + self.route_dels.len() + self.failed_dels.len() + self.failed_sets.len()
    }

    /// True when the batch carries nothing (never returned by `take_batch`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ===== ResyncCounts =====

/// What a resync changed, for the log: keys whose desired value was added,
/// changed or removed (a kernel snapshot), or keys made dirty by kind
/// (resync_from_appl, a cold start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResyncCounts {
    /// Keys to be SET that APPL_DB (or the desired table) did not have.
    pub added: usize,
    /// Keys to be SET with a different value than before.
    pub changed: usize,
    /// Keys to be DELeted.
    pub removed: usize,
}

/// The APPL_DB content of one key, as the writer compares it.
#[derive(Debug, Clone, Copy)]
enum ApplValue {
    /// Exactly `neigh` (a MAC) and `family` (`IPv4`/`IPv6`), nothing else.
    Exact(Value),
    /// Anything else: needs a wipe (DEL) before a SET can make it exact.
    Malformed,
}

fn parse_appl(fvs: &FieldValues) -> ApplValue {
    Value::parse_exact(fvs).map_or(ApplValue::Malformed, ApplValue::Exact)
}

// ===== NeighWriter =====

/// The writer state for APPL_DB `NEIGH_TABLE` (see the module docs).
///
/// Invariants: a key that is not dirty and not in flight is **clean**: the
/// consumer-visible APPL_DB content equals the desired value (absent when
/// not desired). At most one [`Batch`] is in flight at a time.
#[derive(Debug, Default)]
pub struct NeighWriter {
    ifnames: Interner,
    desired: DesiredTable,
    dirty: FastMap<Key, Dirty>,
    queue: VecDeque<(u64, Key)>,
    route_dels: VecDeque<String>,
    route_del_set: FastSet<String>,
    next_seq: u64,
    /// The id of the batch being written.
    in_flight: Option<u64>,
    next_batch_id: u64,
    /// A kernel snapshot is being fed ([`NeighWriter::begin_snapshot`]):
    /// what it changed so far.
    snapshot: Option<ResyncCounts>,
    /// While tracked ([`NeighWriter::track_suspects`]): keys the dump
    /// changed that no notification has touched since.
    suspects: Option<FastSet<Key>>,
    /// During a snapshot: the keys a notification touched since it began.
    /// A dump entry for one of them is not newer than that notification
    /// (module docs, "dumps and notifications") and is only marked listed.
    notified: FastSet<Key>,
    /// Cold start ([`NeighWriter::begin_cold`]): what APPL_DB holds for keys
    /// not yet touched since; emptied as keys are touched, the rest is
    /// deleted by [`NeighWriter::end_snapshot`].
    cold_appl: FastMap<Key, ApplValue>,
}

impl NeighWriter {
    /// An empty writer: nothing desired, nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    // ----- staging -----

    /// Stage one decided operation (b.2 step 18), coalescing per key.
    ///
    /// Returns `true` when something will be written because of it (the key
    /// became or stayed dirty), `false` when it costs nothing: a SET equal to
    /// the desired value of a clean key, a DEL of an absent clean key, or an
    /// op that cancels a pending one (SET then DEL of a key APPL_DB does not
    /// have).
    pub fn stage(&mut self, op: NeighOp) -> bool {
        match op {
            NeighOp::Set { key, mac, family } => {
                let key = self.ifnames.key_of(&key);
                self.stage_key(key, Some(Value { mac, family }), Origin::Dump)
            }
            NeighOp::Del { key } => match self.ifnames.lookup_key(&key) {
                Some(key) => self.stage_key(key, None, Origin::Dump),
                // A name never seen has no desired entry and is not dirty.
                None => false,
            },
        }
    }

    /// [`NeighWriter::stage_write`] of the op [`crate::sync::decide`] builds
    /// for a [`crate::sync::decide_parts`] answer, without its key text: the
    /// key is `<ifname>:<ip>` ([`crate::sync::neigh_key`]), `set` is the
    /// Set's MAC and family (`None` for a Del) and `route_del` the
    /// `ROUTE_TABLE` key to delete first. Same effect and result as
    /// `stage_write` of that op. `origin` says whether a snapshot in
    /// progress counts it as a difference the dump found ([`Origin`]).
    pub fn stage_parts(
        &mut self,
        ifname: &str,
        ip: &IpAddr,
        set: Option<([u8; 6], Family)>,
        route_del: Option<String>,
        origin: Origin,
    ) -> bool {
        // The compact key `key_of` would make of the text; names that would
        // not split back at their first `:` go the text way.
        let ifid = if ifname.is_empty() || ifname.contains(':') {
            None
        } else if set.is_some() {
            self.ifnames.intern(ifname)
        } else {
            match self.ifnames.get(ifname) {
                Some(id) => Some(id),
                // A name never seen has no desired entry and is not dirty.
                None => return false,
            }
        };
        let Some(ifid) = ifid else {
            let key = neigh_key(ifname, ip);
            let op = match set {
                Some((mac, family)) => NeighOp::Set { key, mac, family },
                None => NeighOp::Del { key },
            };
            return self.stage_write(op, route_del);
        };
        let key = Key::Neigh { ifid, ip: *ip };
        let written = self.stage_key(key, set.map(|(mac, family)| Value { mac, family }), origin);
        if written {
            if let Some(route) = route_del {
                self.stage_route_del(route);
            }
        }
        written
    }

    /// Stage an [`crate::sync::Outcome::Write`]: `op`, plus the EVPN
    /// `ROUTE_TABLE` delete `route_del` (`<vrf>:<ip>`) that must precede its
    /// SET. The route delete is staged only when the SET is written (a
    /// same-MAC refresh costs nothing, route delete included: deliberate
    /// deviation from the C++, which repeats the delete on every message).
    /// Returns as [`NeighWriter::stage`].
    pub fn stage_write(&mut self, op: NeighOp, route_del: Option<String>) -> bool {
        let written = self.stage(op);
        if written {
            if let Some(route) = route_del {
                self.stage_route_del(route);
            }
        }
        written
    }

    /// Stage a `ROUTE_TABLE` delete of `route_key` (`<vrf>:<ip>`, no prefix
    /// length). Duplicates pending at the same time are sent once.
    fn stage_route_del(&mut self, route_key: String) {
        if self.route_del_set.insert(route_key.clone()) {
            self.route_dels.push_back(route_key);
        }
    }

    /// Stage a DEL for every desired key of interface `ifname` (used on
    /// RTM_DELLINK, in case its RTM_DELNEIGHs were missed). Returns how many
    /// keys were staged.
    pub fn remove_interface(&mut self, ifname: &str) -> usize {
        let id = self.ifnames.get(ifname);
        let prefix = format!("{ifname}:");
        let mut keys: Vec<Key> = self
            .desired
            .keys()
            .filter(|k| match k {
                Key::Neigh { ifid, .. } => Some(*ifid) == id,
                Key::Raw(raw) => raw.starts_with(&prefix),
            })
            .collect();
        keys.sort_unstable();
        let n = keys.len();
        for key in keys {
            self.stage_key(key, None, Origin::Notification);
        }
        n
    }

    // ----- batches -----

    /// True when something is waiting to be written.
    pub fn has_pending(&self) -> bool {
        !self.dirty.is_empty() || !self.route_dels.is_empty()
    }

    /// Number of dirty `NEIGH_TABLE` keys plus pending `ROUTE_TABLE` deletes.
    pub fn pending_len(&self) -> usize {
        self.dirty.len() + self.route_dels.len()
    }

    /// Number of keys in the desired table (what APPL_DB should hold).
    pub fn desired_len(&self) -> usize {
        self.desired.len()
    }

    /// True while a batch from [`NeighWriter::take_batch`] has been neither
    /// completed nor failed.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Take up to `max_keys` (at least 1) pending keys for one pipeline.
    ///
    /// Pending `ROUTE_TABLE` deletes come first; `NEIGH_TABLE` keys follow in
    /// the order they first became dirty, and are only taken once every
    /// pending route delete fits in the batch (so a route delete always goes
    /// out no later than the SET it was staged with). Returns `None` when
    /// nothing is pending or a batch is already in flight.
    pub fn take_batch(&mut self, max_keys: usize) -> Option<Batch> {
        if self.in_flight.is_some() || !self.has_pending() {
            return None;
        }
        let max_keys = max_keys.max(1);
        let mut batch = Batch {
            id: self.next_batch_id,
            ..Batch::empty()
        };
        self.next_batch_id += 1;
        while batch.route_dels.len() < max_keys {
            let Some(route) = self.route_dels.pop_front() else {
                break;
            };
            self.route_del_set.remove(&route);
            batch.route_dels.push(route);
        }
        if self.route_dels.is_empty() {
            while batch.len() < max_keys {
                let Some((seq, key)) = self.queue.pop_front() else {
                    break;
                };
                // One lookup: take the entry only if this slot is its own
                // (a stale slot was cancelled or re-queued).
                let (key, d) = match self.dirty.entry(key) {
                    Entry::Occupied(e) if e.get().seq == seq => e.remove_entry(),
                    _ => continue,
                };
                let value = self.desired.get(&key).map(|s| s.v);
                let text = self.ifnames.key_text(&key);
                match (d.kind, value) {
                    (Pending::Set, Some(v)) => batch.neigh_sets.push((text, v.fields())),
                    (Pending::DelThenSet, Some(v)) => {
                        batch.neigh_dels.push(text.clone());
                        batch.neigh_sets.push((text, v.fields()));
                    }
                    // A Del, or a Set kind without a value (cannot happen:
                    // staging keeps kind and desired in step).
                    _ => batch.neigh_dels.push(text),
                }
                let kind = if value.is_some() {
                    d.kind
                } else {
                    Pending::Del
                };
                batch.entries.push(Taken { key, kind });
            }
        }
        if self.queue.is_empty() {
            // Nothing stays allocated per key once a burst is written (a
            // batch regrows them: a few reallocations per thousand keys).
            self.queue.shrink_to_fit();
            if self.dirty.is_empty() {
                self.dirty.shrink_to_fit();
            }
        }
        if batch.is_empty() {
            return None;
        }
        self.in_flight = Some(batch.id);
        Some(batch)
    }

    /// The pipeline of `batch` succeeded (every script replied nil): its keys
    /// are clean unless staged again meanwhile. A batch that is not the one
    /// in flight (e.g. from before a resync) is ignored.
    pub fn complete(&mut self, batch: Batch) {
        if self.in_flight == Some(batch.id) {
            self.in_flight = None;
        }
    }

    /// The pipeline of `batch` failed (error reply, lost connection): its
    /// effects on Redis are unknown, so every key is dirty again, composed
    /// with any newer op staged meanwhile (the newer op still wins, e.g. a
    /// failed DEL followed by a newer SET becomes DEL-then-SET), and retried
    /// first. Its route deletes are put back in front. A batch that is not
    /// the one in flight is ignored.
    pub fn fail(&mut self, batch: Batch) {
        if self.in_flight != Some(batch.id) {
            return;
        }
        self.in_flight = None;
        for route in batch.route_dels.into_iter().rev() {
            if self.route_del_set.insert(route.clone()) {
                self.route_dels.push_front(route);
            }
        }
        for taken in batch.entries.into_iter().rev() {
            let seq = self.bump_seq();
            match self.dirty.get_mut(&taken.key) {
                Some(d) => {
                    d.kind = taken.kind.then(d.kind);
                    d.base = Base::Unknown;
                    d.seq = seq;
                }
                None => {
                    let kind = if self.desired.contains_key(&taken.key) {
                        taken.kind
                    } else {
                        Pending::Del
                    };
                    self.dirty.insert(
                        taken.key.clone(),
                        Dirty {
                            kind,
                            base: Base::Unknown,
                            seq,
                        },
                    );
                }
            }
            self.queue.push_front((seq, taken.key));
        }
    }

    /// The desired table: `(key, mac, family)` for every key APPL_DB should
    /// hold once everything pending is written, sorted by key text.
    #[cfg(any(test, feature = "test-support"))]
    pub fn desired(&self) -> Vec<(String, [u8; 6], Family)> {
        let mut out: Vec<_> = self
            .desired
            .iter()
            .map(|(k, s)| (self.ifnames.key_text(&k), s.v.mac, s.v.family))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The pending kind of `key` (`<ifname>:<ip>`), `None` when clean.
    #[cfg(any(test, feature = "test-support"))]
    pub fn pending(&self, key: &str) -> Option<Pending> {
        let key = self.ifnames.lookup_key(key)?;
        self.dirty.get(&key).map(|d| d.kind)
    }

    // ----- internals -----

    fn bump_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Make `key` dirty with `kind` (fresh FIFO slot).
    fn mark(&mut self, key: Key, kind: Pending, base: Base) {
        let seq = self.bump_seq();
        self.dirty.insert(key.clone(), Dirty { kind, base, seq });
        self.queue.push_back((seq, key));
        // Cancelled slots (an op back to APPL_DB's value) stay in the FIFO
        // until taken; while nothing is taken (Redis away, a long flush)
        // churn would grow it without bound. Compact once they are the
        // majority: amortized O(1) per mark.
        if self.queue.len() > 2 * self.dirty.len() + 1024 {
            let dirty = &self.dirty;
            self.queue
                .retain(|(seq, key)| dirty.get(key).is_some_and(|d| d.seq == *seq));
        }
    }

    /// The coalescing core: `new` is the key's new desired value; a change
    /// counts in the snapshot's counts when it comes from the dump.
    fn stage_key(&mut self, key: Key, new: Option<Value>, origin: Origin) -> bool {
        if self.snapshot.is_some() {
            match origin {
                Origin::Notification => {
                    self.notified.insert(key.clone());
                }
                Origin::Dump if self.notified.contains(&key) => {
                    if let Some(s) = self.desired.get_mut(&key) {
                        s.seen = true;
                    }
                    return self.dirty.contains_key(&key);
                }
                Origin::Dump => {}
            }
        }
        if !self.cold_appl.is_empty() {
            if let Some(written) = self.stage_cold(&key, new) {
                return written;
            }
        }
        // Listed by the snapshot in progress (a DEL removes the slot).
        let cur = self.desired.get_mut(&key).map(|s| {
            s.seen = true;
            s.v
        });
        if cur != new && origin == Origin::Dump {
            if let Some(c) = self.snapshot.as_mut() {
                match (cur, new) {
                    (None, Some(_)) => c.added += 1,
                    (Some(_), Some(_)) => c.changed += 1,
                    (Some(_), None) => c.removed += 1,
                    (None, None) => {}
                }
                if let Some(s) = self.suspects.as_mut() {
                    s.insert(key.clone());
                }
            }
        }
        if origin == Origin::Notification {
            if let Some(s) = self.suspects.as_mut() {
                s.remove(&key);
            }
        }
        let kind = if new.is_some() {
            Pending::Set
        } else {
            Pending::Del
        };
        match self.dirty.get_mut(&key) {
            None => {
                if cur == new {
                    return false;
                }
                // Clean: APPL_DB (or the batch in flight) holds `cur`.
                self.set_desired(&key, cur.is_some(), new);
                self.mark(key, kind, Base::Known(cur));
                true
            }
            Some(d) => {
                let next = d.kind.then(kind);
                if next != Pending::DelThenSet && d.base == Base::Known(new) {
                    // Back to what APPL_DB holds: nothing to write.
                    self.dirty.remove(&key);
                    self.set_desired(&key, cur.is_some(), new);
                    return false;
                }
                d.kind = next;
                self.set_desired(&key, cur.is_some(), new);
                true
            }
        }
    }

    /// [`NeighWriter::begin_cold`]: the first op for a key APPL_DB holds
    /// (and that is neither desired nor dirty since) is written whatever
    /// APPL_DB holds. `None` when the key is not one of those (stage as
    /// usual).
    fn stage_cold(&mut self, key: &Key, new: Option<Value>) -> Option<bool> {
        if self.desired.contains_key(key) || self.dirty.contains_key(key) {
            return None;
        }
        let appl = self.cold_appl.remove(key)?;
        let (kind, base) = match (appl, new) {
            // Rewritten even when equal: base Unknown, so a later op back to
            // APPL_DB's value does not cancel it.
            (ApplValue::Exact(_), Some(_)) => (Pending::Set, Base::Unknown),
            (ApplValue::Malformed, Some(_)) => (Pending::DelThenSet, Base::Unknown),
            (_, None) => (Pending::Del, Base::Unknown),
        };
        if let Some(c) = self.snapshot.as_mut() {
            match new {
                Some(_) => c.changed += 1,
                None => c.removed += 1,
            }
        }
        self.set_desired(key, false, new);
        self.mark(key.clone(), kind, base);
        Some(true)
    }

    /// `had`: whether the desired table holds `key` now (saves a lookup).
    fn set_desired(&mut self, key: &Key, had: bool, v: Option<Value>) {
        match (v, had) {
            (Some(v), true) => self.desired.insert(key.clone(), Slot { v, seen: true }),
            (Some(v), false) => self
                .desired
                .insert_absent(key.clone(), Slot { v, seen: true }),
            (None, true) => self.desired.remove(key),
            (None, false) => {}
        }
    }
}

mod desired;
mod resync;
#[cfg(test)]
mod tests;
