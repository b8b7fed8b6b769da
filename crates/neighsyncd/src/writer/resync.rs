//! [`NeighWriter`]'s resyncs: the kernel dump's mark and sweep, the
//! comparison with APPL_DB after a reconnect or during the self-audit, and
//! the cold start (docs/behavior.md b.1, f.5, f.8).

use std::net::IpAddr;

use swss::ConsumerView;

use super::*;

impl NeighWriter {
    // ----- resyncs -----

    /// A kernel dump, fed as it arrives (mark and sweep): call this when
    /// the neighbour dump is requested, stage every op decided from then on
    /// as usual ([`NeighWriter::stage`], dump entries and live events alike,
    /// in arrival order; they are written as usual meanwhile), then
    /// [`NeighWriter::end_snapshot`] at its `NLMSG_DONE`. The desired keys
    /// the dump did not list are DELeted then. Calling it again while a
    /// snapshot runs (the dump was restarted) forgets which keys were
    /// listed and keeps the counts.
    pub fn begin_snapshot(&mut self) {
        for slot in self.desired.values_mut() {
            slot.seen = false;
        }
        self.desired.hold();
        self.notified.clear();
        if self.snapshot.is_none() {
            self.snapshot = Some(ResyncCounts::default());
        }
    }

    /// From now until [`NeighWriter::take_suspects`], remember the keys a
    /// dump changes ([`Origin::Dump`], the sweep at its end included) and
    /// forget each one a notification touches. For the self-audit: the
    /// kernel generates a dump entry and queues the notification of the
    /// same change independently, so a dump can show a change a moment
    /// before its notification arrives; only a change no notification
    /// follows is drift.
    /// Tracking again (the dump was restarted) keeps what was found.
    pub fn track_suspects(&mut self) {
        self.suspects.get_or_insert_with(FastSet::default);
    }

    /// How many keys a dump changed since [`NeighWriter::track_suspects`]
    /// that no notification touched; stops tracking. 0 when not tracking.
    pub fn take_suspects(&mut self) -> usize {
        self.suspects.take().map_or(0, |s| s.len())
    }

    /// During a snapshot: the kernel lists neighbour `<ifname>:<ip>`, but
    /// the rules dropped the entry as a state that changes nothing
    /// ([`crate::sync::DropReason::keeps_entry`], e.g. EVPN PROBE): the key
    /// keeps what it has and is not swept. After [`NeighWriter::begin_cold`]
    /// a key APPL_DB holds exactly is kept as it is (nothing written).
    /// Nothing happens outside a snapshot.
    pub fn keep_listed(&mut self, ifname: &str, ip: &IpAddr) {
        if self.snapshot.is_none() {
            return;
        }
        let Some(key) = self.ifnames.lookup_key(&neigh_key(ifname, ip)) else {
            return;
        };
        if let Some(slot) = self.desired.get_mut(&key) {
            slot.seen = true;
            return;
        }
        if let Some(ApplValue::Exact(v)) = self.cold_appl.get(&key).copied() {
            self.cold_appl.remove(&key);
            if !self.dirty.contains_key(&key) {
                self.desired.insert(key, Slot { v, seen: true });
            }
        }
    }

    /// The dump fed since [`NeighWriter::begin_snapshot`] is complete (the
    /// kernel's whole truth): every desired key it did not list (SET) is
    /// staged DEL, in key order; after [`NeighWriter::begin_cold`], so is
    /// every APPL_DB key never touched since. Returns the keys whose desired
    /// value was added, changed and removed since `begin_snapshot` by the
    /// dump ([`Origin::Dump`]; each change counted as staged: a key changed
    /// twice counts twice; after `begin_cold`, a key APPL_DB held counts as
    /// changed when rewritten and removed when deleted). Notifications staged meanwhile
    /// are not counted. Without a
    /// snapshot in progress: nothing, zero counts.
    pub fn end_snapshot(&mut self) -> ResyncCounts {
        if self.snapshot.is_none() {
            return ResyncCounts::default();
        }
        let mut gone: Vec<Key> = self
            .desired
            .iter()
            .filter(|(_, s)| !s.seen)
            .map(|(k, _)| k)
            .collect();
        gone.sort_unstable();
        for key in gone {
            self.stage_key(key, None, Origin::Dump);
        }
        let mut extra: Vec<Key> = self.cold_appl.drain().map(|(k, _)| k).collect();
        self.cold_appl.shrink_to_fit();
        extra.sort_unstable();
        let mut counts = self.snapshot.take().unwrap_or_default();
        self.notified = FastSet::default();
        // The table has its size for a while: no spare capacity.
        self.desired.shrink_to_fit();
        counts.removed += extra.len();
        for key in extra {
            // Not desired, not dirty (untouched since begin_cold).
            self.mark(key, Pending::Del, Base::Unknown);
        }
        counts
    }

    /// After a Redis reconnect: `view` is what APPL_DB holds
    /// ([`ConsumerView::overlay`]). Every pending op and any batch in flight are
    /// forgotten, then exactly the keys that differ from the desired table
    /// are made dirty: SET for missing or different ones, DEL-then-SET for
    /// present ones with other fields than exactly `neigh` and `family`, DEL
    /// for keys not desired. Pending route deletes are kept. Returns how many
    /// keys will be added, changed and removed.
    pub fn resync_from_appl(&mut self, view: &ConsumerView) -> ResyncCounts {
        self.resync_appl_inner(view, true)
    }

    /// The self-audit's comparison: as [`NeighWriter::resync_from_appl`],
    /// but the counts are drift only: keys that were pending (staged, not
    /// yet written) differ from APPL_DB because their write has not gone
    /// out, not because APPL_DB drifted, so they are re-marked but not
    /// counted.
    pub fn audit_against_appl(&mut self, view: &ConsumerView) -> ResyncCounts {
        self.resync_appl_inner(view, false)
    }

    /// Cold start, fed as the start-up dump arrives: forget everything
    /// (desired, pending, in flight), remember `view` (APPL_DB,
    /// [`ConsumerView::overlay`]) and [`NeighWriter::begin_snapshot`]. Until
    /// [`NeighWriter::end_snapshot`], the first op staged for a key that
    /// APPL_DB holds is written whatever it holds (a SET, as the C++ does at
    /// start-up, docs/behavior.md b.1; a DEL-then-SET when APPL_DB holds other
    /// fields for it; a DEL for a DEL); keys APPL_DB lacks are staged as
    /// usual. `end_snapshot` then DELetes the APPL_DB keys the kernel never
    /// listed, so entries removed while the daemon was down do not linger.
    /// Counts: `added` = keys APPL_DB lacks, `changed` = keys it has
    /// (rewritten), `removed` = keys deleted.
    pub fn begin_cold(&mut self, view: &ConsumerView) {
        self.desired.clear();
        self.desired.shrink_to_fit();
        self.dirty.clear();
        self.queue.clear();
        self.in_flight = None;
        self.cold_appl.clear();
        self.cold_appl.reserve(view.len());
        for (text, fvs) in view.iter() {
            let key = self.ifnames.key_of(text);
            self.cold_appl.insert(key, parse_appl(fvs));
        }
        self.snapshot = None;
        self.begin_snapshot();
    }

    /// `count_pending`: whether keys pending before the call are counted.
    fn resync_appl_inner(&mut self, view: &ConsumerView, count_pending: bool) -> ResyncCounts {
        let mut order: Vec<Key> = self.desired.keys().collect();
        order.sort_unstable();
        let was_pending = if count_pending {
            FastMap::default()
        } else {
            std::mem::take(&mut self.dirty)
        };
        let counted = |key: &Key| count_pending || !was_pending.contains_key(key);
        self.dirty.clear();
        self.queue.clear();
        // A cold start in progress: the fresh view supersedes the old one
        // (keys it has that are not desired are DELeted below).
        self.cold_appl.clear();
        self.cold_appl.shrink_to_fit();
        self.dirty.reserve(order.len() + view.len());
        self.queue.reserve(order.len() + view.len());
        self.in_flight = None;
        let mut counts = ResyncCounts::default();
        let mut appl: FastMap<Key, ApplValue> =
            FastMap::with_capacity_and_hasher(view.len(), Default::default());
        let mut extra: Vec<Key> = Vec::new();
        for (text, fvs) in view.iter() {
            let key = self.ifnames.key_of(text);
            if !self.desired.contains_key(&key) {
                extra.push(key.clone());
            }
            appl.insert(key, parse_appl(fvs));
        }
        extra.sort_unstable();
        for key in extra {
            counts.removed += usize::from(counted(&key));
            self.mark(key, Pending::Del, Base::Unknown);
        }
        for key in order {
            let Some(want) = self.desired.get(&key).map(|s| s.v) else {
                continue;
            };
            let n = usize::from(counted(&key));
            match appl.get(&key) {
                None => {
                    counts.added += n;
                    self.mark(key, Pending::Set, Base::Known(None));
                }
                Some(ApplValue::Exact(have)) if *have == want => {}
                Some(ApplValue::Exact(have)) => {
                    let have = *have;
                    counts.changed += n;
                    self.mark(key, Pending::Set, Base::Known(Some(have)));
                }
                Some(ApplValue::Malformed) => {
                    counts.changed += n;
                    self.mark(key, Pending::DelThenSet, Base::Unknown);
                }
            }
        }
        counts
    }
}
