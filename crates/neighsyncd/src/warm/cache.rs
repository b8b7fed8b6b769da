//! The warm-restart reconcile cache, pure (no I/O): what APPL_DB held at
//! start and what the kernel holds now, per key ([`WarmCache`]; the
//! parent module's docs give the rules).

use std::collections::hash_map::Entry as MapEntry;

use swss::restart_assist::{CacheState, ReconcileOps};
use swss::{ConsumerView, FieldValues};

use crate::compact::{FastMap, FastSet, Interner, Key, Value};
use crate::sync::NeighOp;
use crate::writer::{NeighWriter, Origin};

/// Keys staged into the writer between two drains in [`WarmCache::finish`].
const FINISH_CHUNK: usize = 1024;

/// What APPL_DB held for a key at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restored {
    /// Nothing.
    No,
    /// Exactly `neigh` and `family` ([`Value::parse_exact`]).
    Exact(Value),
    /// Any other non-empty hash: kept whole in [`WarmCache`]'s `raw` map.
    Raw,
}

/// What was last seen of a key since the restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Unseen,
    /// Last seen set (the kernel holds it now).
    Present(Value),
    Deleted,
}

/// One cached key (15 bytes; 40 with its key in the map).
#[derive(Debug, Clone, Copy)]
struct Entry {
    restored: Restored,
    seen: Seen,
    /// Mentioned by an operation since [`WarmCache::begin_snapshot`].
    listed: bool,
}

impl Entry {
    /// The delete transition of `ReconcileCache::insert`: a restored key
    /// becomes DELETE; `false` when the entry is to be forgotten (never in
    /// APPL_DB).
    fn delete(&mut self) -> bool {
        self.seen = Seen::Deleted;
        self.restored != Restored::No
    }
}

/// The reconcile cache of the warm start (docs/behavior.md c.2) plus the
/// kernel's current table as the decided operations describe it (the last
/// SET per key, DEL removes). Pure.
///
/// Semantics: exactly `ReconcileCache`'s (see its doc: restored and not
/// seen since STALE, last seen deleted DELETE or forgotten, last seen
/// present with every pair in the restored hash SAME, otherwise NEW;
/// docs/differences.md N13), for restored hashes of any shape and the
/// operations neighsyncd decides ([`NeighOp`]); the tests check it against
/// `ReconcileCache` on random sequences.
///
/// Memory: one map entry of 40 bytes per key (compact key, what APPL_DB
/// held and what was last seen, both as 6-byte MAC + family, and the
/// snapshot mark): about 5.4 MiB of table for 100k keys, where the string
/// form cost about 700 bytes per key. Restored hashes that are not exactly
/// `neigh` + `family` in canonical form are kept whole in a side map and
/// compared with the subset test, as `ReconcileCache` does.
#[derive(Debug, Default)]
pub struct WarmCache {
    ifnames: Interner,
    entries: FastMap<Key, Entry>,
    /// What APPL_DB held for the keys whose entry says [`Restored::Raw`].
    raw: FastMap<Key, FieldValues>,
    restored: usize,
    present: usize,
    /// A kernel dump is in progress ([`WarmCache::begin_snapshot`]).
    snapshot: bool,
    /// During a snapshot: the keys a notification touched since it began
    /// ([`WarmCache::insert_listed`]).
    notified: FastSet<Key>,
}

impl WarmCache {
    /// An empty cache; fill it with [`WarmCache::restore`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a key read from APPL_DB at start (`readTablesToMap`,
    /// docs/behavior.md c.2): STALE, with what it held. Empty hashes are
    /// skipped as the C++ does. Again for the same key (SCAN returned it
    /// twice): the last read wins, as `ReconcileCache::restore`.
    pub fn restore(&mut self, key: &str, fvs: FieldValues) {
        if fvs.is_empty() {
            return;
        }
        let key = self.ifnames.key_of(key);
        let restored = match Value::parse_exact(&fvs) {
            Some(v) => {
                self.raw.remove(&key);
                Restored::Exact(v)
            }
            None => {
                self.raw.insert(key.clone(), fvs);
                Restored::Raw
            }
        };
        let entry = Entry {
            restored,
            seen: Seen::Unseen,
            listed: false,
        };
        if let Some(old) = self.entries.insert(key, entry) {
            if matches!(old.seen, Seen::Present(_)) {
                self.present -= 1;
            }
        } else {
            self.restored += 1;
        }
    }

    /// Number of keys read from APPL_DB at start.
    pub fn restored(&self) -> usize {
        self.restored
    }

    /// Number of keys the kernel holds now (as far as the ops tell).
    pub fn present(&self) -> usize {
        self.present
    }

    /// Number of cached keys (every state).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The state of a cached key, if any (for tests and logs).
    pub fn state(&self, key: &str) -> Option<CacheState> {
        let key = self.ifnames.lookup_key(key)?;
        let e = self.entries.get(&key)?;
        Some(self.state_of(&key, e))
    }

    /// One decided operation from a notification (`insertToMap`,
    /// docs/behavior.md c.2, with `ReconcileCache::insert`'s transitions).
    pub fn insert(&mut self, op: NeighOp) {
        self.insert_op(op, true);
    }

    /// One decided operation from a dump entry: as [`WarmCache::insert`],
    /// except that during a snapshot a key a notification touched since it
    /// began is only marked listed (the dump entry is not newer than that
    /// notification: [`crate::writer`], "dumps and notifications").
    pub fn insert_listed(&mut self, op: NeighOp) {
        if self.snapshot {
            if let Some(key) = self.ifnames.lookup_key(op.key()) {
                if self.notified.contains(&key) {
                    if let Some(e) = self.entries.get_mut(&key) {
                        e.listed = true;
                    }
                    return;
                }
            }
        }
        self.insert_op(op, false);
    }

    fn insert_op(&mut self, op: NeighOp, notification: bool) {
        let snapshot = self.snapshot;
        match op {
            NeighOp::Set { key, mac, family } => {
                let key = self.ifnames.key_of(&key);
                if notification && snapshot {
                    self.notified.insert(key.clone());
                }
                let seen = Seen::Present(Value { mac, family });
                match self.entries.entry(key) {
                    MapEntry::Occupied(o) => {
                        let e = o.into_mut();
                        if !matches!(e.seen, Seen::Present(_)) {
                            self.present += 1;
                        }
                        e.seen = seen;
                        e.listed |= snapshot;
                    }
                    MapEntry::Vacant(v) => {
                        v.insert(Entry {
                            restored: Restored::No,
                            seen,
                            listed: snapshot,
                        });
                        self.present += 1;
                    }
                }
            }
            NeighOp::Del { key } => {
                // A name never seen: no entry can exist.
                let Some(key) = self.ifnames.lookup_key(&key) else {
                    return;
                };
                if notification && snapshot {
                    self.notified.insert(key.clone());
                }
                if let MapEntry::Occupied(mut o) = self.entries.entry(key) {
                    let e = o.get_mut();
                    if matches!(e.seen, Seen::Present(_)) {
                        self.present -= 1;
                    }
                    e.listed |= snapshot;
                    if !e.delete() {
                        o.remove();
                    }
                }
            }
        }
    }

    /// A kernel dump starts: from now on [`WarmCache::insert`] marks the
    /// keys it mentions, until [`WarmCache::end_snapshot`]. Again while one
    /// runs (the dump was restarted): forget what was marked.
    pub fn begin_snapshot(&mut self) {
        for e in self.entries.values_mut() {
            e.listed = false;
        }
        self.notified.clear();
        self.snapshot = true;
    }

    /// The dump since [`WarmCache::begin_snapshot`] is complete (plus the
    /// events that arrived during it, inserted as they came): keys present
    /// that it did not mention are deleted. Returns how many. Without a
    /// snapshot in progress: nothing, 0.
    pub fn end_snapshot(&mut self) -> usize {
        if !std::mem::take(&mut self.snapshot) {
            return 0;
        }
        self.notified = FastSet::default();
        self.delete_present_where(|_, e| !e.listed)
    }

    /// A complete kernel dump (plus the events that arrived during it, in
    /// order) in one call: every op is inserted, then keys seen present
    /// before but absent from it are deleted
    /// ([`WarmCache::begin_snapshot`] .. [`WarmCache::end_snapshot`]).
    /// Returns how many keys were deleted as absent.
    #[cfg(test)]
    pub fn snapshot(&mut self, ops: Vec<NeighOp>) -> usize {
        self.begin_snapshot();
        for op in ops {
            self.insert(op);
        }
        self.end_snapshot()
    }

    /// The interface `ifname` is gone: delete its keys (in case its
    /// RTM_DELNEIGHs were missed): the present keys whose text starts with
    /// `<ifname>:`. Restored keys never seen again are STALE already.
    /// Returns how many keys were deleted.
    pub fn remove_interface(&mut self, ifname: &str) -> usize {
        let id = self.ifnames.get(ifname);
        let prefix = format!("{ifname}:");
        self.delete_present_where(|k, _| match k {
            Key::Neigh { ifid, .. } => Some(*ifid) == id,
            Key::Raw(raw) => raw.starts_with(&prefix),
        })
    }

    /// Apply a DEL to every present key for which `pick` is true (in one
    /// pass, no list of keys). Returns how many.
    fn delete_present_where(&mut self, mut pick: impl FnMut(&Key, &Entry) -> bool) -> usize {
        let mut n = 0;
        let snapshot = self.snapshot;
        let raw = &mut self.raw;
        self.entries.retain(|k, e| {
            if !matches!(e.seen, Seen::Present(_)) || !pick(k, e) {
                return true;
            }
            n += 1;
            e.listed |= snapshot;
            let keep = e.delete();
            if !keep {
                raw.remove(k);
            }
            keep
        });
        self.present -= n;
        n
    }

    /// `reconcile()` (docs/behavior.md c.2): the operations to write (as
    /// `ReconcileCache::reconcile`: STALE/DELETE → DEL, NEW → SET with the
    /// last fields seen, SAME → nothing; both lists sorted by key), and the
    /// writer set up with a desired table equal to what APPL_DB holds once
    /// they are written (every present key, clean: nothing pending).
    ///
    /// `writer` is expected as the daemon's is during the warm window:
    /// nothing desired, pending or in flight. Then the present keys are
    /// staged in chunks of `FINISH_CHUNK` and each chunk is marked
    /// written at once ([`NeighWriter::take_batch`] +
    /// [`NeighWriter::complete`]), so no text copy of the table is made.
    /// Otherwise (defensive) the writer is resynced against a text view of
    /// the table ([`NeighWriter::resync_from_appl`]), as before.
    pub fn finish(self, writer: &mut NeighWriter) -> ReconcileOps {
        let mut ops = ReconcileOps::default();
        for (k, e) in &self.entries {
            match (self.state_of(k, e), e.seen) {
                (CacheState::Same, _) => {}
                (CacheState::Stale | CacheState::Delete, _) => {
                    ops.dels.push(self.ifnames.key_text(k))
                }
                (CacheState::New, Seen::Present(v)) => {
                    ops.sets.push((self.ifnames.key_text(k), v.fields()))
                }
                (CacheState::New, _) => {}
            }
        }
        ops.sets.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        ops.dels.sort_unstable();

        let fresh = writer.desired_len() == 0 && !writer.has_pending() && !writer.in_flight();
        let mut view = (!fresh).then(ConsumerView::new);
        let mut staged = 0;
        for (k, e) in &self.entries {
            let Seen::Present(v) = e.seen else { continue };
            match (k, view.as_mut()) {
                (Key::Neigh { ifid, ip }, None) => {
                    let name = self.ifnames.name(*ifid);
                    writer.stage_parts(name, ip, Some((v.mac, v.family)), None, Origin::Dump);
                }
                (_, view) => {
                    let key = self.ifnames.key_text(k);
                    if let Some(view) = view {
                        view.insert(key.clone(), v.fields());
                    }
                    writer.stage(NeighOp::Set {
                        key,
                        mac: v.mac,
                        family: v.family,
                    });
                }
            }
            staged += 1;
            if fresh && staged % FINISH_CHUNK == 0 {
                mark_written(writer);
            }
        }
        match view {
            None => mark_written(writer),
            Some(view) => {
                writer.resync_from_appl(&view);
            }
        }
        ops
    }

    /// The state of an entry (`ReconcileCache`'s rules).
    fn state_of(&self, key: &Key, e: &Entry) -> CacheState {
        match (e.seen, e.restored) {
            (Seen::Unseen, _) => CacheState::Stale,
            (Seen::Deleted, _) => CacheState::Delete,
            (Seen::Present(now), Restored::Exact(old)) if now == old => CacheState::Same,
            (Seen::Present(now), Restored::Raw) => match self.raw.get(key) {
                Some(old) if now.fields().iter().all(|p| old.contains(p)) => CacheState::Same,
                _ => CacheState::New,
            },
            (Seen::Present(_), _) => CacheState::New,
        }
    }
}

/// Takes every pending batch of `writer` and reports it written (the
/// reconcile write makes APPL_DB hold it; see [`WarmCache::finish`]).
fn mark_written(writer: &mut NeighWriter) {
    while let Some(batch) = writer.take_batch(FINISH_CHUNK) {
        writer.complete(batch);
    }
}

#[cfg(test)]
mod tests;
