//! What neighsyncd writes to APPL_DB `NEIGH_FAILED_TABLE` (sonic-swss PR
//! 4849; docs/behavior.md b.2 step 9a): the failed IPv6 neighbours of a
//! dual-ToR, for nbrmgrd, which moves each one it pops to INCOMPLETE and
//! sends one Neighbor Solicitation.
//!
//! [`FailedTable`] is pure (no I/O), fed the [`FailedOp`]s of
//! [`crate::sync::decide_failed`] by the core; its pending operations go out
//! in the same flush pipeline as `NEIGH_TABLE`'s ([`Batch::failed_sets`],
//! [`Batch::failed_dels`]).
//!
//! * **Published** keys: those APPL_DB holds once everything sent lands
//!   (seeded at start-up from APPL_DB as nbrmgrd will see it). The C++
//!   DELetes a key only if the consumed hash `NEIGH_FAILED_TABLE:<key>`
//!   exists (one HGETALL per event); here the published set answers
//!   without a round trip, and a SET nbrmgrd has not popped yet is
//!   cancelled by the DEL too (docs/differences.md N17).
//! * A [`FailedOp::Publish`] always sends its SET again, also for a key
//!   already published: each FAILED event is a new failed resolution, and
//!   nbrmgrd acts on each pop. Several before one flush coalesce into one
//!   SET (as they would before one pop of the C++'s).
//! * Kernel snapshots (cold start, ENOBUFS, a CONFIG_DB change, the
//!   self-audit; [`FailedTable::begin_snapshot`]): every FAILED entry of the
//!   dump is published again; published keys the dump did not list as
//!   FAILED or INCOMPLETE (gone, resolved, no longer a dual-ToR) are
//!   DELeted at its end.

use std::collections::{BTreeMap, HashSet};

use crate::sync::{FailedOp, FAILED_FIELD};
use crate::writer::{Batch, Origin};

/// What a [`FailedTable`] snapshot or resync changed (for the log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailedCounts {
    /// Keys SET that were not published before.
    pub added: usize,
    /// Published keys DELeted.
    pub removed: usize,
}

/// APPL_DB `NEIGH_FAILED_TABLE` as neighsyncd keeps it (module docs).
/// Keys are `<ifname>:<ip>` (the `NEIGH_TABLE` key of the neighbour).
#[derive(Debug, Default)]
pub struct FailedTable {
    /// Keys APPL_DB holds once every operation sent so far lands.
    published: HashSet<String>,
    /// Operations not sent yet, per key: `true` SET, `false` DEL.
    pending: BTreeMap<String, bool>,
    /// Keys a kernel snapshot in progress listed as FAILED or INCOMPLETE
    /// (or a notification touched meanwhile).
    seen: Option<HashSet<String>>,
    /// During a snapshot: keys a notification touched since it began; a
    /// dump entry for one of them is not newer than that notification
    /// (crate::writer, "dumps and notifications") and only marks it listed.
    notified: HashSet<String>,
    counts: FailedCounts,
}

impl FailedTable {
    /// An empty table: nothing published, nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start-up: `keys` is what APPL_DB's `NEIGH_FAILED_TABLE` holds as
    /// nbrmgrd will see it (pending operations applied). Nothing is sent
    /// because of it; the start-up dump's sweep DELetes what the kernel
    /// does not confirm.
    pub fn seed(&mut self, keys: impl IntoIterator<Item = String>) {
        self.published = keys.into_iter().collect();
        self.pending.clear();
    }

    /// Applies one decided op for the neighbour `key` (`<ifname>:<ip>`),
    /// from a dump entry or a notification (`origin`). Returns whether
    /// something will be written because of it.
    pub fn apply(&mut self, key: &str, op: FailedOp, origin: Origin) -> bool {
        if self.seen.is_some() {
            match origin {
                Origin::Notification => {
                    self.notified.insert(key.to_owned());
                }
                Origin::Dump if self.notified.contains(key) => {
                    if self.is_present(key) {
                        self.mark_seen(key);
                    }
                    return false;
                }
                Origin::Dump => {}
            }
        }
        match op {
            FailedOp::Publish => {
                self.mark_seen(key);
                if !self.is_present(key) {
                    self.counts.added += 1;
                }
                self.pending.insert(key.to_owned(), true);
                true
            }
            FailedOp::Keep => {
                self.mark_seen(key);
                false
            }
            FailedOp::Clear => {
                if let Some(seen) = self.seen.as_mut() {
                    seen.remove(key);
                }
                self.clear(key)
            }
        }
    }

    /// DELetes every key of interface `ifname` (RTM_DELLINK, a rename).
    /// Returns how many.
    pub fn remove_interface(&mut self, ifname: &str) -> usize {
        let prefix = format!("{ifname}:");
        let keys: Vec<String> = self
            .present_keys()
            .filter(|k| k.starts_with(&prefix))
            .collect();
        keys.iter().filter(|k| self.clear(k)).count()
    }

    // ----- snapshots -----

    /// A kernel dump starts: from now on the keys it lists are marked
    /// (a second call starts over).
    pub fn begin_snapshot(&mut self) {
        self.seen = Some(HashSet::new());
        self.notified.clear();
        self.counts = FailedCounts::default();
    }

    /// The dump is complete: published keys it did not list as FAILED or
    /// INCOMPLETE are DELeted. Returns what the snapshot changed; nothing
    /// when no snapshot was running.
    pub fn end_snapshot(&mut self) -> FailedCounts {
        let Some(seen) = self.seen.take() else {
            return FailedCounts::default();
        };
        self.notified = HashSet::new();
        let gone: Vec<String> = self.present_keys().filter(|k| !seen.contains(k)).collect();
        for key in &gone {
            if self.clear(key) {
                self.counts.removed += 1;
            }
        }
        std::mem::take(&mut self.counts)
    }

    /// After a Redis reconnect: `appl` is what APPL_DB now holds (as
    /// nbrmgrd will see it). Keys we publish that it lacks are SET again,
    /// keys it has that we do not publish are DELeted.
    pub fn resync_from_appl(&mut self, appl: impl IntoIterator<Item = String>) -> FailedCounts {
        let present: HashSet<String> = self.present_keys().collect();
        self.published = appl.into_iter().collect();
        let published = &self.published;
        // A DEL of a key APPL_DB no longer has is moot.
        self.pending.retain(|k, set| *set || published.contains(k));
        let mut c = FailedCounts::default();
        for key in &present {
            if !self.published.contains(key) && self.pending.get(key) != Some(&true) {
                self.pending.insert(key.clone(), true);
                c.added += 1;
            }
        }
        let stale: Vec<String> = self
            .published
            .iter()
            .filter(|k| !present.contains(*k))
            .cloned()
            .collect();
        for key in stale {
            self.pending.insert(key, false);
            c.removed += 1;
        }
        c
    }

    // ----- batches -----

    /// True when an operation waits to be sent.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Number of keys published once everything pending is sent (cost:
    /// the pending operations, not the table).
    pub fn len(&self) -> usize {
        let (mut added, mut removed) = (0, 0);
        for (key, set) in &self.pending {
            match (*set, self.published.contains(key)) {
                (true, false) => added += 1,
                (false, true) => removed += 1,
                _ => {}
            }
        }
        self.published.len() + added - removed
    }

    /// True when nothing is published or pending publication.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves up to `max_keys` pending operations into `batch`
    /// ([`Batch::failed_dels`], [`Batch::failed_sets`] with `NULL=NULL`),
    /// in key order; they count as sent.
    pub fn take_into(&mut self, batch: &mut Batch, max_keys: usize) {
        while batch.failed_dels.len() + batch.failed_sets.len() < max_keys.max(1) {
            let Some((key, set)) = self.pending.pop_first() else {
                break;
            };
            if set {
                self.published.insert(key.clone());
                batch.failed_sets.push((
                    key,
                    vec![(FAILED_FIELD.0.to_owned(), FAILED_FIELD.1.to_owned())],
                ));
            } else {
                self.published.remove(&key);
                batch.failed_dels.push(key);
            }
        }
    }

    /// The pipeline of `batch` failed: its operations are pending again,
    /// unless a newer one for the same key was staged meanwhile.
    pub fn fail(&mut self, batch: &Batch) {
        for key in &batch.failed_dels {
            if !self.pending.contains_key(key) {
                self.published.remove(key);
                self.pending.insert(key.clone(), false);
            }
        }
        for (key, _) in &batch.failed_sets {
            if !self.pending.contains_key(key) {
                self.pending.insert(key.clone(), true);
            }
        }
    }

    /// Every key published once everything pending is sent, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.present_keys().collect();
        keys.sort_unstable();
        keys
    }

    // ----- internals -----

    fn is_present(&self, key: &str) -> bool {
        self.pending
            .get(key)
            .copied()
            .unwrap_or_else(|| self.published.contains(key))
    }

    fn present_keys(&self) -> impl Iterator<Item = String> + '_ {
        let pending_sets = self
            .pending
            .iter()
            .filter(|(k, set)| **set && !self.published.contains(*k))
            .map(|(k, _)| k.clone());
        self.published
            .iter()
            .filter(|k| self.pending.get(*k) != Some(&false))
            .cloned()
            .chain(pending_sets)
    }

    fn mark_seen(&mut self, key: &str) {
        if let Some(seen) = self.seen.as_mut() {
            seen.insert(key.to_owned());
        }
    }

    /// DEL `key` if present: a SET never sent is just dropped.
    fn clear(&mut self, key: &str) -> bool {
        if !self.is_present(key) {
            return false;
        }
        if self.published.contains(key) {
            self.pending.insert(key.to_owned(), false);
            true
        } else {
            self.pending.remove(key);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "Vlan1000:fc02:1000::2";

    fn flush(t: &mut FailedTable) -> (Vec<String>, Vec<String>) {
        let mut b = Batch::empty();
        t.take_into(&mut b, 1024);
        let sets = b.failed_sets.iter().map(|(k, _)| k.clone()).collect();
        (sets, b.failed_dels)
    }

    #[test]
    fn each_failed_event_sets_again_and_resolution_deletes_once() {
        let mut t = FailedTable::new();
        assert!(t.apply(K, FailedOp::Publish, Origin::Notification));
        let mut b = Batch::empty();
        t.take_into(&mut b, 10);
        assert_eq!(
            b.failed_sets,
            vec![(K.to_owned(), vec![("NULL".to_owned(), "NULL".to_owned())])]
        );
        // nbrmgrd moved it to INCOMPLETE; it failed again: a new SET.
        assert!(!t.apply(K, FailedOp::Keep, Origin::Notification));
        assert!(!t.has_pending());
        assert!(t.apply(K, FailedOp::Publish, Origin::Notification));
        assert_eq!(flush(&mut t), (vec![K.to_owned()], vec![]));
        assert!(t.apply(K, FailedOp::Clear, Origin::Notification));
        assert_eq!(flush(&mut t), (vec![], vec![K.to_owned()]));
        // Resolved again: nothing published, nothing sent.
        assert!(!t.apply(K, FailedOp::Clear, Origin::Notification));
        assert!(!t.has_pending());
        assert!(t.is_empty());
    }

    #[test]
    fn a_set_never_sent_is_cancelled_by_its_clear() {
        let mut t = FailedTable::new();
        t.apply(K, FailedOp::Publish, Origin::Notification);
        assert!(!t.apply(K, FailedOp::Clear, Origin::Notification));
        assert_eq!(flush(&mut t), (vec![], vec![]));
        // Published, SET again, then cleared before the flush: one DEL.
        t.apply(K, FailedOp::Publish, Origin::Notification);
        flush(&mut t);
        t.apply(K, FailedOp::Publish, Origin::Notification);
        t.apply(K, FailedOp::Clear, Origin::Notification);
        assert_eq!(flush(&mut t), (vec![], vec![K.to_owned()]));
    }

    #[test]
    fn a_failed_flush_is_retried_unless_superseded() {
        let mut t = FailedTable::new();
        t.apply(K, FailedOp::Publish, Origin::Notification);
        t.apply(
            "Vlan1000:fc02:1000::3",
            FailedOp::Publish,
            Origin::Notification,
        );
        let mut b = Batch::empty();
        t.take_into(&mut b, 10);
        // Meanwhile ::3 resolved.
        t.apply(
            "Vlan1000:fc02:1000::3",
            FailedOp::Clear,
            Origin::Notification,
        );
        t.fail(&b);
        assert_eq!(
            flush(&mut t),
            (vec![K.to_owned()], vec!["Vlan1000:fc02:1000::3".to_owned()])
        );
    }

    #[test]
    fn snapshot_sets_every_failed_entry_and_sweeps_the_rest() {
        let mut t = FailedTable::new();
        t.seed(["Vlan1000:fc02::a", "Vlan1000:fc02::b", "Vlan1000:fc02::c"].map(String::from));
        t.begin_snapshot();
        let d = Origin::Dump;
        t.apply("Vlan1000:fc02::a", FailedOp::Publish, d); // still failed
        t.apply("Vlan1000:fc02::b", FailedOp::Keep, d); // INCOMPLETE
        t.apply("Vlan1000:fc02::d", FailedOp::Publish, d); // new
                                                           // ::c not listed: gone while we were away.
        let c = t.end_snapshot();
        assert_eq!(
            c,
            FailedCounts {
                added: 1,
                removed: 1
            }
        );
        assert_eq!(
            flush(&mut t),
            (
                vec!["Vlan1000:fc02::a".to_owned(), "Vlan1000:fc02::d".to_owned()],
                vec!["Vlan1000:fc02::c".to_owned()]
            )
        );
        assert_eq!(
            t.keys(),
            ["Vlan1000:fc02::a", "Vlan1000:fc02::b", "Vlan1000:fc02::d"]
        );
        // No longer a dual-ToR: the rules decide nothing, the sweep clears all.
        t.begin_snapshot();
        assert_eq!(t.end_snapshot().removed, 3);
        assert!(t.is_empty());
    }

    #[test]
    fn a_dump_entry_older_than_a_notification_changes_nothing() {
        // The dump message listing ::a FAILED and ::b REACHABLE was filled
        // before ::a resolved and ::b failed, and queued after both
        // notifications.
        let mut t = FailedTable::new();
        t.seed(["Vlan1000:fc02::a".to_owned()]);
        t.begin_snapshot();
        let n = Origin::Notification;
        t.apply("Vlan1000:fc02::a", FailedOp::Clear, n);
        t.apply("Vlan1000:fc02::b", FailedOp::Publish, n);
        t.apply("Vlan1000:fc02::a", FailedOp::Publish, Origin::Dump);
        t.apply("Vlan1000:fc02::b", FailedOp::Clear, Origin::Dump);
        assert_eq!(
            t.end_snapshot().removed,
            0,
            "::b listed, ::a already cleared"
        );
        assert_eq!(
            flush(&mut t),
            (
                vec!["Vlan1000:fc02::b".to_owned()],
                vec!["Vlan1000:fc02::a".to_owned()]
            )
        );
        assert_eq!(t.keys(), ["Vlan1000:fc02::b"]);
    }

    #[test]
    fn reconnect_writes_the_difference_with_appl_db() {
        let mut t = FailedTable::new();
        t.apply(K, FailedOp::Publish, Origin::Notification);
        t.apply("Vlan1000:fc02::b", FailedOp::Publish, Origin::Notification);
        flush(&mut t);
        // Redis came back empty but for a key someone else left.
        let c = t.resync_from_appl(["Vlan1000:fc02::z".to_owned(), K.to_owned()]);
        assert_eq!(
            c,
            FailedCounts {
                added: 1,
                removed: 1
            }
        );
        assert_eq!(
            flush(&mut t),
            (
                vec!["Vlan1000:fc02::b".to_owned()],
                vec!["Vlan1000:fc02::z".to_owned()]
            )
        );
    }

    #[test]
    fn interface_removal_deletes_its_keys_only() {
        let mut t = FailedTable::new();
        t.seed(["Vlan1000:fc02::a", "Vlan2000:fc02::a", "Vlan10:fc02::a"].map(String::from));
        assert_eq!(t.remove_interface("Vlan1000"), 1);
        assert_eq!(flush(&mut t), (vec![], vec!["Vlan1000:fc02::a".to_owned()]));
    }
}
