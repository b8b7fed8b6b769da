//! neighsyncd's warm start (docs/behavior.md b.1 step 6b, c.2, c.3): the
//! cache and the Redis steps; the window's clock and phases are in
//! [`crate::core`] ([`crate::core::Phase::WarmCaching`],
//! [`crate::core::Phase::RestoreWait`], [`crate::core::Phase::Reconciling`]):
//!
//! 1. Start-up ([`check`], [`restore_table`]): the WarmStart check
//!    (`neighsyncd`, docker `swss`, incr) writes `WARM_RESTART_TABLE|neighsyncd
//!    restore_count` (0 cold, +1 warm). On a warm start: state
//!    `initialized`; the NEIGH_TABLE operations no consumer popped yet are
//!    dropped ([`swss::ProducerStateTable::clear`], exact `_NEIGH_TABLE:`
//!    prefix, SCAN); APPL_DB `NEIGH_TABLE:*` is streamed (SCAN and
//!    pipelined HGETALL, [`READ_CHUNK`] keys at a time) into a compact
//!    [`WarmCache`] with [`ReconcileCache`]'s semantics (every key STALE);
//!    state `restored`. The reconcile
//!    timer is CONFIG_DB `WARM_RESTART|swss neighsyncd_timer` (1..9999 s),
//!    else [`DEFAULT_RECONCILE_TIMER_SECS`].
//! 2. The core's warm window then runs inside the daemon loop. Deviation from the
//!    C++ (f.13): the netlink socket has already joined RTNLGRP_LINK and
//!    RTNLGRP_NEIGH and the dumps run at once, so nothing that happens while
//!    waiting is missed. Every decided operation goes into the cache
//!    ([`WarmCache::insert`]), not to the writer: nothing is written.
//! 3. Restore flag: STATE_DB `NEIGH_RESTORE_TABLE|Flags restored` = `true`,
//!    followed with a keyspace subscription ([`swss::SubscriberStateTable`],
//!    whose initial load checks the current value after subscribing), not a
//!    1 s poll ([`wait_restore_flag`]). Not seen within the limit (180 s by
//!    default): the daemon logs it and exits non-zero.
//! 4. The reconcile timer starts when the flag is seen (as the C++). When it
//!    fires and no dump is in flight ([`WarmCache::finish`], [`write_reconcile`]): the
//!    cache gives [`ReconcileOps`] (STALE/DELETE → DEL, NEW → SET, SAME →
//!    nothing) and the writer takes over at once with a desired table equal
//!    to what APPL_DB holds after the reconcile (so a same-MAC refresh costs
//!    nothing later). Operations decided from then on go to the writer, whose
//!    flushes wait until the reconcile write is done, so nothing is lost or
//!    reordered. The reconcile is written as batched DELs, then batched SETs,
//!    in pipelines of at most [`WRITE_CHUNK`] keys (the C++ does one round
//!    trip per entry, f.4), then state `reconciled`.
//!
//! EVPN `ROUTE_TABLE` deletes (b.2 step 18) of operations cached during the
//! warm window are dropped: the C++ stops at step 17 (`insertToMap`) before
//! the route delete, and its reconcile writes NEIGH_TABLE only. Deletes for
//! operations decided after the reconcile are written as usual.
//!
//! Memory: one 40-byte map entry per key holds both what APPL_DB held and
//! what the kernel holds now (MAC + family, [`WarmCache`]); the writer's
//! table (about 32 bytes per key) is built from it at the reconcile without
//! a text copy. At 100k neighbours the daemon peaks below 24 MiB.

use std::collections::hash_map::Entry as MapEntry;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use swss::connector::Backoff;
#[cfg(doc)]
use swss::restart_assist::ReconcileCache;
use swss::restart_assist::{
    AppRestartAssist, CacheState, ReconcileOps, DEFAULT_RECONCILE_TIMER_SECS, READ_CHUNK,
    WRITE_CHUNK,
};
use swss::warm_restart::WarmStartState;
use swss::{DbConnector, KeyOp, ProducerStateTable, SubscriberStateTable, SwssError, Table};

use crate::compact::{FastMap, Interner, Key, Value};
use crate::restore::{
    APP_NAME, DOCKER_NAME, NEIGH_RESTORE_FIELD, NEIGH_RESTORE_KEY, STATE_NEIGH_RESTORE_TABLE_NAME,
};
use crate::sync::NeighOp;
use crate::writer::{NeighWriter, Origin};
use swss::{ConsumerView, FieldValues};

/// How long to wait for `NEIGH_RESTORE_TABLE|Flags restored=true` before
/// giving up (the C++ exits once more than 180 whole seconds have passed).
pub const DEFAULT_RESTORE_WAIT: Duration = Duration::from_secs(180);

// ===== start-up steps =====

/// The WarmStart check for neighsyncd (`AppRestartAssist("neighsyncd",
/// "swss", 5 s)`): writes `restore_count`; on a warm start reads the timer
/// and writes state `initialized`.
///
/// Errors: as [`AppRestartAssist::new`].
pub async fn check(
    state: &mut MultiplexedConnection,
    state_sep: char,
    config: &mut MultiplexedConnection,
    config_sep: char,
) -> Result<AppRestartAssist, SwssError> {
    AppRestartAssist::new(
        state,
        state_sep,
        config,
        config_sep,
        APP_NAME,
        DOCKER_NAME,
        DEFAULT_RECONCILE_TIMER_SECS,
    )
    .await
}

/// What the warm start-up read ([`restore_table`]), for [`crate::core::NeighCore::warm`].
#[derive(Debug)]
pub struct RestoredTable {
    /// APPL_DB `NEIGH_TABLE`, every key STALE.
    pub cache: WarmCache,
    /// STATE_DB `NEIGH_RESTORE_TABLE|Flags restored` was already `true`
    /// (checked once, right after the read): the reconcile timer starts at
    /// once, as the C++'s first poll of the flag would (docs/behavior.md
    /// c.3).
    pub flag_set: bool,
}

/// Warm start only: drop the unconsumed NEIGH_TABLE operations
/// (`registerAppTable`), read APPL_DB `NEIGH_TABLE:*` into a cache
/// (`readTablesToMap`, docs/behavior.md c.2), write state `restored`, then
/// read the restore flag once (`HGET NEIGH_RESTORE_TABLE|Flags restored`).
/// The table is streamed: one SCAN of [`READ_CHUNK`] keys and one pipeline
/// of their HGETALLs at a time, each hash stored compactly
/// ([`WarmCache::restore`]) before the next SCAN
/// ([`AppRestartAssist::read_table`]); nothing holds the whole key list.
///
/// Errors: Redis errors.
pub async fn restore_table(
    assist: &AppRestartAssist,
    appl: &mut MultiplexedConnection,
    state: &mut MultiplexedConnection,
    producer: &ProducerStateTable,
) -> Result<RestoredTable, SwssError> {
    assist.register_app_table(appl, producer).await?;
    let mut cache = WarmCache::new();
    AppRestartAssist::read_table(appl, producer, READ_CHUNK, |k, fvs| cache.restore(&k, fvs))
        .await?;
    assist.set_state(state, WarmStartState::Restored).await?;
    let flag = Table::new(STATE_NEIGH_RESTORE_TABLE_NAME, assist.state_separator())
        .in_db("STATE_DB")
        .hget(state, NEIGH_RESTORE_KEY, NEIGH_RESTORE_FIELD)
        .await?;
    tracing::info!(
        restored = cache.restored(),
        restore_count = assist.info().restore_count,
        system_warm_reboot = assist.info().system_warm_reboot,
        timer_secs = assist.timer().as_secs(),
        "warm start: APPL_DB NEIGH_TABLE read into the reconcile cache; pending operations dropped"
    );
    Ok(RestoredTable {
        cache,
        flag_set: flag.as_deref() == Some("true"),
    })
}

// ===== the cache (pure) =====

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
    /// The delete transition of [`ReconcileCache::insert`]: a restored key
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
/// Semantics: exactly [`ReconcileCache`]'s (see its doc: restored and not
/// seen since STALE, last seen deleted DELETE or forgotten, last seen
/// present with every pair in the restored hash SAME, otherwise NEW;
/// docs/differences.md N13), for restored hashes of any shape and the
/// operations neighsyncd decides ([`NeighOp`]); the tests check it against
/// [`ReconcileCache`] on random sequences.
///
/// Memory: one map entry of 40 bytes per key (compact key, what APPL_DB
/// held and what was last seen, both as 6-byte MAC + family, and the
/// snapshot mark): about 5.4 MiB of table for 100k keys, where the string
/// form cost about 700 bytes per key. Restored hashes that are not exactly
/// `neigh` + `family` in canonical form are kept whole in a side map and
/// compared with the subset test, as [`ReconcileCache`] does.
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
}

impl WarmCache {
    /// An empty cache; fill it with [`WarmCache::restore`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a key read from APPL_DB at start (`readTablesToMap`,
    /// docs/behavior.md c.2): STALE, with what it held. Empty hashes are
    /// skipped as the C++ does. Again for the same key (SCAN returned it
    /// twice): the last read wins, as [`ReconcileCache::restore`].
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

    /// One decided operation (`insertToMap`, docs/behavior.md c.2, with
    /// [`ReconcileCache::insert`]'s transitions).
    pub fn insert(&mut self, op: NeighOp) {
        let snapshot = self.snapshot;
        match op {
            NeighOp::Set { key, mac, family } => {
                let key = self.ifnames.key_of(&key);
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
        self.delete_present_where(|_, e| !e.listed)
    }

    /// A complete kernel dump (plus the events that arrived during it, in
    /// order) in one call: every op is inserted, then keys seen present
    /// before but absent from it are deleted
    /// ([`WarmCache::begin_snapshot`] .. [`WarmCache::end_snapshot`]).
    /// Returns how many keys were deleted as absent.
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
    /// [`ReconcileCache::reconcile`]: STALE/DELETE → DEL, NEW → SET with the
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

    /// The state of an entry ([`ReconcileCache`]'s rules).
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

// ===== Redis =====

/// Waits until STATE_DB `NEIGH_RESTORE_TABLE|Flags` has `restored` =
/// `true`: a keyspace subscription to the table whose initial load checks
/// the current value after subscribing. A lost subscription is rebuilt
/// (with [`Backoff`]), which re-checks the value. Never gives up: the
/// daemon's core owns the limit (docs/behavior.md c.3).
pub async fn wait_restore_flag(state: DbConnector) {
    let mut backoff = Backoff::new();
    loop {
        let mut sub = match SubscriberStateTable::new(&state, STATE_NEIGH_RESTORE_TABLE_NAME).await
        {
            Ok(sub) => sub,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                    "cannot subscribe to STATE_DB NEIGH_RESTORE_TABLE; retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        backoff.reset();
        loop {
            match sub.next().await {
                Ok(KeyOp::Set(key, fvs)) if key == NEIGH_RESTORE_KEY => {
                    if fvs
                        .iter()
                        .any(|(f, v)| f == NEIGH_RESTORE_FIELD && v == "true")
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) if e.is_connection_error() => {
                    tracing::warn!(error = %e, "NEIGH_RESTORE_TABLE subscription lost; resubscribing");
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "NEIGH_RESTORE_TABLE change skipped"),
            }
        }
    }
}

/// Writes the reconcile ops in pipelines of at most [`WRITE_CHUNK`] keys
/// ([`AppRestartAssist::write_reconcile_from`]: DELs, then SETs), retrying
/// (with backoff, on a fresh connection) while Redis is unreachable and
/// resuming after the last pipeline that succeeded, then state
/// `reconciled` (written also when the ops failed with an error reply,
/// since the daemon then resyncs from APPL_DB). Returns the ops' outcome.
pub async fn write_reconcile(
    appl: DbConnector,
    mut conn: Option<MultiplexedConnection>,
    state: DbConnector,
    assist: AppRestartAssist,
    producer: ProducerStateTable,
    ops: ReconcileOps,
) -> Result<(), SwssError> {
    let mut backoff = Backoff::new();
    let mut done = 0;
    let result = loop {
        let mut c = match conn.take() {
            Some(c) => c,
            None => appl.connect_retrying().await,
        };
        match AppRestartAssist::write_reconcile_from(
            &mut c,
            &producer,
            &ops,
            WRITE_CHUNK,
            &mut done,
        )
        .await
        {
            Ok(()) => break Ok(()),
            Err(e) if e.is_connection_error() => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, written = done, retry_in_ms = delay.as_millis() as u64,
                    "Redis lost while writing the reconcile; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => break Err(e),
        }
    };
    drop(ops);
    let mut backoff = Backoff::new();
    loop {
        let mut s = state.connect_retrying().await;
        match assist.set_state(&mut s, WarmStartState::Reconciled).await {
            Ok(()) => break,
            Err(e) if e.is_connection_error() => {
                tracing::warn!(error = %e, "Redis lost while writing state reconciled; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write WARM_RESTART_TABLE|neighsyncd state reconciled");
                break;
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Family;
    use sonic_netlink::fmt::mac_to_string;
    use std::collections::HashMap;
    use swss::restart_assist::ReconcileCache;

    fn set(key: &str, last: u8) -> NeighOp {
        NeighOp::Set {
            key: key.to_owned(),
            mac: [2, 0, 0, 0, 0, last],
            family: Family::IPv4,
        }
    }

    fn del(key: &str) -> NeighOp {
        NeighOp::Del {
            key: key.to_owned(),
        }
    }

    fn restored(entries: &[(&str, u8)]) -> WarmCache {
        let mut c = WarmCache::new();
        for (k, m) in entries {
            c.restore(k, set(k, *m).fields());
        }
        c
    }

    /// The string-keyed cache this module had before (a [`ReconcileCache`]
    /// plus the present table and the listed keys as text), as the model.
    #[derive(Default)]
    struct Model {
        cache: ReconcileCache,
        present: HashMap<String, NeighOp>,
        listed: Option<std::collections::HashSet<String>>,
    }

    impl Model {
        fn insert(&mut self, op: NeighOp) {
            if let Some(listed) = self.listed.as_mut() {
                listed.insert(op.key().to_owned());
            }
            let delete = matches!(op, NeighOp::Del { .. });
            self.cache.insert(op.key(), &op.fields(), delete);
            if delete {
                self.present.remove(op.key());
            } else {
                self.present.insert(op.key().to_owned(), op);
            }
        }

        fn delete_where(&mut self, pick: impl Fn(&str) -> bool) -> usize {
            let keys: Vec<String> = self.present.keys().filter(|k| pick(k)).cloned().collect();
            for key in &keys {
                self.insert(del(key));
            }
            keys.len()
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const KEYS: &[&str] = &[
            "a:10.0.0.1",
            "a:10.0.0.2",
            "b:10.0.0.1",
            "a:fc00::1",
            "a:fc00::0001",
            "ab:10.0.0.3",
            "a:b:10.0.0.4",
            "odd",
        ];

        fn restored_fvs(shape: u8, gen: u8) -> FieldValues {
            let m = mac_to_string(&[2, 0, 0, 0, 0, gen]);
            let p = |f: &str, v: &str| (f.to_owned(), v.to_owned());
            match shape % 7 {
                0 => vec![p("neigh", &m), p("family", "IPv4")],
                1 => vec![p("family", "IPv6"), p("neigh", &m)],
                2 => vec![p("neigh", &m), p("family", "IPv4"), p("x", "y")],
                3 => vec![p("neigh", &m.to_uppercase()), p("family", "IPv4")],
                4 => vec![p("neigh", &m)],
                5 => vec![p("family", "IPv5"), p("neigh", &m)],
                _ => vec![],
            }
        }

        #[derive(Debug, Clone)]
        enum Step {
            Set(usize, u8, bool),
            Del(usize),
            Begin,
            End,
            RemoveIf(u8),
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                4 => (0..KEYS.len(), 0u8..3, any::<bool>()).prop_map(|(k, g, v6)| Step::Set(k, g, v6)),
                2 => (0..KEYS.len()).prop_map(Step::Del),
                1 => Just(Step::Begin),
                1 => Just(Step::End),
                1 => (0u8..3).prop_map(Step::RemoveIf),
            ]
        }

        proptest! {
            /// The compact cache behaves as the string-keyed one: same
            /// states, counts, reconcile ops and writer table.
            #[test]
            fn compact_cache_equals_the_string_model(
                restored in proptest::collection::vec((0..KEYS.len(), 0u8..7, 0u8..3), 0..10),
                steps in proptest::collection::vec(step(), 0..40),
            ) {
                let mut w = WarmCache::new();
                let mut m = Model::default();
                for (k, shape, gen) in &restored {
                    w.restore(KEYS[*k], restored_fvs(*shape, *gen));
                    m.cache.restore(KEYS[*k], restored_fvs(*shape, *gen));
                }
                prop_assert_eq!(w.len(), m.cache.len());
                for s in &steps {
                    match s {
                        Step::Set(k, g, v6) => {
                            let op = NeighOp::Set {
                                key: KEYS[*k].to_owned(),
                                mac: [2, 0, 0, 0, 0, *g],
                                family: if *v6 { Family::IPv6 } else { Family::IPv4 },
                            };
                            w.insert(op.clone());
                            m.insert(op);
                        }
                        Step::Del(k) => {
                            w.insert(del(KEYS[*k]));
                            m.insert(del(KEYS[*k]));
                        }
                        Step::Begin => {
                            w.begin_snapshot();
                            m.listed = Some(Default::default());
                        }
                        Step::End => {
                            let got = w.end_snapshot();
                            let want = match m.listed.take() {
                                Some(listed) => m.delete_where(|k| !listed.contains(k)),
                                None => 0,
                            };
                            prop_assert_eq!(got, want);
                        }
                        Step::RemoveIf(i) => {
                            let name = ["a", "b", "ab"][*i as usize];
                            let prefix = format!("{name}:");
                            prop_assert_eq!(
                                w.remove_interface(name),
                                m.delete_where(|k| k.starts_with(&prefix))
                            );
                        }
                    }
                    prop_assert_eq!(w.present(), m.present.len());
                }
                for k in KEYS {
                    prop_assert_eq!(w.state(k), m.cache.state(k), "state of {}", k);
                }
                prop_assert_eq!(w.len(), m.cache.len());
                let mut writer = NeighWriter::new();
                let ops = w.finish(&mut writer);
                prop_assert_eq!(ops, m.cache.reconcile());
                let mut want: Vec<_> = m
                    .present
                    .values()
                    .map(|op| match op {
                        NeighOp::Set { key, mac, family } => (key.clone(), *mac, *family),
                        NeighOp::Del { .. } => unreachable!(),
                    })
                    .collect();
                want.sort_by(|a, b| a.0.cmp(&b.0));
                let mut got = writer.desired();
                got.sort_by(|a, b| a.0.cmp(&b.0));
                prop_assert_eq!(got, want);
                prop_assert!(!writer.has_pending());
            }
        }
    }

    #[test]
    fn entry_is_40_bytes_with_its_key() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        assert_eq!(std::mem::size_of::<(Key, Entry)>(), 40);
    }

    #[test]
    fn non_canonical_restored_entries_keep_reconcile_cache_semantics() {
        let fv = |pairs: &[(&str, &str)]| -> FieldValues {
            pairs
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect()
        };
        let mut w = WarmCache::new();
        // extra field: the subset test makes the same value SAME
        w.restore(
            "a:10.0.0.1",
            fv(&[
                ("neigh", "02:00:00:00:00:01"),
                ("family", "IPv4"),
                ("x", "y"),
            ]),
        );
        // uppercase MAC: a different string, so NEW
        w.restore(
            "a:10.0.0.2",
            fv(&[("neigh", "02:00:00:00:00:0A"), ("family", "IPv4")]),
        );
        // fields in the other order: exact, SAME
        w.restore(
            "a:10.0.0.3",
            fv(&[("family", "IPv4"), ("neigh", "02:00:00:00:00:03")]),
        );
        // a key that is not `<ifname>:<ip>`, kept verbatim: STALE
        w.restore("odd", fv(&[("neigh", "02:00:00:00:00:04")]));
        // a non-canonical IP text is another key than the canonical one
        w.restore(
            "a:fc00::0001",
            fv(&[("neigh", "02:00:00:00:00:05"), ("family", "IPv6")]),
        );
        w.restore("a:10.0.0.9", vec![]);
        assert_eq!(w.restored(), 5);
        w.snapshot(vec![
            set("a:10.0.0.1", 1),
            set("a:10.0.0.2", 10),
            set("a:10.0.0.3", 3),
            NeighOp::Set {
                key: "a:fc00::1".to_owned(),
                mac: [2, 0, 0, 0, 0, 5],
                family: Family::IPv6,
            },
        ]);
        assert_eq!(w.state("a:10.0.0.1"), Some(CacheState::Same));
        assert_eq!(w.state("a:10.0.0.2"), Some(CacheState::New));
        assert_eq!(w.state("a:10.0.0.3"), Some(CacheState::Same));
        assert_eq!(w.state("odd"), Some(CacheState::Stale));
        assert_eq!(w.state("a:fc00::0001"), Some(CacheState::Stale));
        assert_eq!(w.state("a:fc00::1"), Some(CacheState::New));
        assert_eq!(w.state("a:10.0.0.9"), None);
        let mut writer = NeighWriter::new();
        let ops = w.finish(&mut writer);
        assert_eq!(ops.dels, vec!["a:fc00::0001".to_owned(), "odd".to_owned()]);
        let sets: Vec<&str> = ops.sets.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(sets, vec!["a:10.0.0.2", "a:fc00::1"]);
        assert_eq!(writer.desired_len(), 4);
        assert!(!writer.has_pending());
    }

    #[test]
    fn finish_with_a_busy_writer_resyncs_it_against_the_table() {
        let mut w = restored(&[("a:10.0.0.1", 1)]);
        w.snapshot(vec![set("a:10.0.0.1", 1), set("a:10.0.0.2", 2)]);
        let mut writer = NeighWriter::new();
        writer.stage(set("b:10.0.0.7", 7));
        let ops = w.finish(&mut writer);
        assert_eq!(ops.sets.len(), 1);
        // b:10.0.0.7 is desired but not in APPL_DB after the reconcile
        assert_eq!(writer.desired_len(), 3);
        assert_eq!(writer.pending_len(), 1);
    }

    #[test]
    fn many_keys_over_several_finish_chunks() {
        let n = 3 * FINISH_CHUNK + 7;
        let key = |i: usize| format!("Ethernet{}:10.{}.{}.1", i % 4, i / 256, i % 256);
        let mut w = WarmCache::new();
        for i in 0..n {
            w.restore(&key(i), set(&key(i), 1).fields());
        }
        let ops: Vec<NeighOp> = (0..n)
            .filter(|i| i % 100 != 0)
            .map(|i| set(&key(i), if i % 50 == 1 { 2 } else { 1 }))
            .collect();
        w.snapshot(ops);
        let mut writer = NeighWriter::new();
        let ops = w.finish(&mut writer);
        let deleted = (0..n).filter(|i| i % 100 == 0).count();
        let changed = (0..n).filter(|i| i % 50 == 1).count();
        assert_eq!(ops.dels.len(), deleted);
        assert_eq!(ops.sets.len(), changed);
        assert!(ops.sets.iter().all(|(_, f)| f[0].1 == "02:00:00:00:00:02"));
        assert_eq!(writer.desired_len(), n - deleted);
        assert!(!writer.has_pending());
        assert!(!writer.in_flight());
    }

    #[test]
    fn unchanged_kernel_writes_nothing_and_writer_is_clean() {
        let mut w = restored(&[("Ethernet0:10.0.0.2", 1), ("Ethernet0:10.0.0.3", 2)]);
        w.snapshot(vec![
            set("Ethernet0:10.0.0.2", 1),
            set("Ethernet0:10.0.0.3", 2),
        ]);
        let mut writer = NeighWriter::new();
        let ops = w.finish(&mut writer);
        assert!(ops.is_empty(), "{ops:?}");
        assert_eq!(writer.desired_len(), 2);
        assert!(!writer.has_pending());
        // A later same-MAC refresh costs nothing; a change is written.
        assert!(!writer.stage(set("Ethernet0:10.0.0.2", 1)));
        assert!(writer.stage(set("Ethernet0:10.0.0.2", 9)));
    }

    #[test]
    fn changes_deletes_and_additions_become_the_difference() {
        let mut w = restored(&[("a:10.0.0.1", 1), ("a:10.0.0.2", 2), ("a:10.0.0.3", 3)]);
        w.snapshot(vec![
            set("a:10.0.0.1", 1),
            set("a:10.0.0.2", 7),
            set("a:10.0.0.4", 4),
        ]);
        let mut writer = NeighWriter::new();
        let ops = w.finish(&mut writer);
        assert_eq!(ops.dels, vec!["a:10.0.0.3".to_owned()]);
        let sets: Vec<_> = ops
            .sets
            .iter()
            .map(|(k, f)| (k.as_str(), f[0].1.as_str()))
            .collect();
        assert_eq!(
            sets,
            vec![
                ("a:10.0.0.2", "02:00:00:00:00:07"),
                ("a:10.0.0.4", "02:00:00:00:00:04")
            ]
        );
        let desired: Vec<_> = writer
            .desired()
            .into_iter()
            .map(|(k, m, _)| (k, m[5]))
            .collect();
        assert_eq!(
            desired,
            vec![
                ("a:10.0.0.1".to_owned(), 1),
                ("a:10.0.0.2".to_owned(), 7),
                ("a:10.0.0.4".to_owned(), 4)
            ]
        );
        assert!(!writer.has_pending());
    }

    #[test]
    fn a_later_dump_deletes_keys_it_no_longer_lists() {
        let mut w = restored(&[("a:10.0.0.1", 1)]);
        w.insert(set("a:10.0.0.1", 1));
        w.insert(set("a:10.0.0.9", 9));
        // resync dump (after ENOBUFS): both gone from the kernel
        assert_eq!(w.snapshot(vec![]), 2);
        let mut writer = NeighWriter::new();
        let ops = w.finish(&mut writer);
        assert_eq!(ops.dels, vec!["a:10.0.0.1".to_owned()]);
        assert!(ops.sets.is_empty());
        assert_eq!(writer.desired_len(), 0);
    }

    #[test]
    fn removed_interface_deletes_its_keys_only() {
        let mut w = restored(&[("a:10.0.0.1", 1), ("b:10.0.1.1", 2)]);
        w.insert(set("a:10.0.0.1", 1));
        w.insert(set("b:10.0.1.1", 2));
        w.insert(set("ab:10.0.2.1", 3));
        assert_eq!(w.remove_interface("a"), 1);
        let mut writer = NeighWriter::new();
        let ops = w.finish(&mut writer);
        assert_eq!(ops.dels, vec!["a:10.0.0.1".to_owned()]);
        assert_eq!(ops.sets.len(), 1);
        assert_eq!(ops.sets[0].0, "ab:10.0.2.1");
    }

    #[test]
    fn events_in_order_last_one_wins() {
        let mut w = restored(&[("a:10.0.0.1", 1)]);
        w.insert(del("a:10.0.0.1"));
        w.insert(set("a:10.0.0.1", 1));
        w.insert(set("a:10.0.0.5", 5));
        w.insert(del("a:10.0.0.5"));
        let mut writer = NeighWriter::new();
        assert!(w.finish(&mut writer).is_empty());
        assert_eq!(writer.desired_len(), 1);
    }
}
