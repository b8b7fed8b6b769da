//! neighsyncd's warm start (BEHAVIOR.md b.1 step 6b, c.2, c.3), driven by
//! [`crate::daemon::Daemon`]:
//!
//! 1. Start-up ([`check`], [`restore_table`]): the WarmStart check
//!    (`neighsyncd`, docker `swss`, incr) writes `WARM_RESTART_TABLE|neighsyncd
//!    restore_count` (0 cold, +1 warm). On a warm start: state
//!    `initialized`; the NEIGH_TABLE operations no consumer popped yet are
//!    dropped ([`swss::ProducerStateTable::clear`], exact `_NEIGH_TABLE:`
//!    prefix, SCAN); APPL_DB `NEIGH_TABLE:*` is read into a
//!    [`ReconcileCache`] (every key STALE); state `restored`. The reconcile
//!    timer is CONFIG_DB `WARM_RESTART|swss neighsyncd_timer` (1..9999 s),
//!    else [`DEFAULT_RECONCILE_TIMER_SECS`].
//! 2. [`WarmRestart`] then runs inside the daemon loop. Deviation from the
//!    C++ (f.13): the netlink socket has already joined RTNLGRP_LINK and
//!    RTNLGRP_NEIGH and the dumps run at once, so nothing that happens while
//!    waiting is missed. Every decided operation goes into the cache
//!    ([`WarmRestart::offer`]), not to the writer: nothing is written.
//! 3. Restore flag: STATE_DB `NEIGH_RESTORE_TABLE|Flags restored` = `true`,
//!    followed with a keyspace subscription ([`swss::SubscriberStateTable`],
//!    whose initial load checks the current value after subscribing), not a
//!    1 s poll. Not seen within the limit (180 s by default) →
//!    [`WarmEvent::FlagTimeout`]; the daemon logs it and exits non-zero.
//! 4. The reconcile timer starts when the flag is seen (as the C++). When it
//!    fires and no dump is in flight ([`WarmRestart::start_reconcile`]): the
//!    cache gives [`ReconcileOps`] (STALE/DELETE → DEL, NEW → SET, SAME →
//!    nothing) and the writer takes over at once with a desired table equal
//!    to what APPL_DB holds after the reconcile (so a same-MAC refresh costs
//!    nothing later). Operations decided from then on go to the writer, whose
//!    flushes wait until the reconcile write is done, so nothing is lost or
//!    reordered. The reconcile is one pipeline (batched DEL, then batched SET;
//!    the C++ does one round trip per entry, f.4), then state `reconciled`.
//!
//! EVPN `ROUTE_TABLE` deletes (b.2 step 18) of operations cached during the
//! warm window are dropped: the C++ stops at step 17 (`insertToMap`) before
//! the route delete, and its reconcile writes NEIGH_TABLE only. Deletes for
//! operations decided after the reconcile are written as usual.
//!
//! Memory: the cache holds the restored table and the kernel's current
//! table (about twice APPL_DB's NEIGH_TABLE) until the reconcile.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use swss::connector::{RECONNECT_INITIAL_DELAY, RECONNECT_MAX_DELAY};
use swss::restart_assist::{
    AppRestartAssist, ReconcileCache, ReconcileOps, DEFAULT_RECONCILE_TIMER_SECS,
};
use swss::warm_restart::WarmStartState;
use swss::{DbConnector, KeyOp, ProducerStateTable, SubscriberStateTable, SwssError};
use tokio::time::Instant;

use crate::restore::{
    APP_NAME, DOCKER_NAME, NEIGH_RESTORE_FIELD, NEIGH_RESTORE_KEY, STATE_NEIGH_RESTORE_TABLE_NAME,
};
use crate::sync::NeighOp;
use crate::writer::NeighWriter;
use swss::ConsumerView;

/// How long to wait for `NEIGH_RESTORE_TABLE|Flags restored=true` before
/// giving up (the C++ exits once more than 180 whole seconds have passed).
pub const DEFAULT_RESTORE_WAIT: Duration = Duration::from_secs(180);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

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

/// Warm start only: drop the unconsumed NEIGH_TABLE operations
/// (`registerAppTable`), read APPL_DB `NEIGH_TABLE:*` into a cache
/// (`readTablesToMap`) and write state `restored`.
///
/// Errors: Redis errors.
pub async fn restore_table(
    assist: &AppRestartAssist,
    appl: &mut MultiplexedConnection,
    state: &mut MultiplexedConnection,
    producer: &ProducerStateTable,
) -> Result<ReconcileCache, SwssError> {
    assist.register_app_table(appl, producer).await?;
    let cache = AppRestartAssist::read_table_to_cache(appl, producer).await?;
    assist.set_state(state, WarmStartState::Restored).await?;
    tracing::info!(
        restored = cache.len(),
        restore_count = assist.info().restore_count,
        system_warm_reboot = assist.info().system_warm_reboot,
        timer_secs = assist.timer().as_secs(),
        "warm start: APPL_DB NEIGH_TABLE read into the reconcile cache; pending operations dropped"
    );
    Ok(cache)
}

// ===== the cache (pure) =====

/// The reconcile cache plus the kernel's current table as the decided
/// operations describe it (the last SET per key, DEL removes). Pure.
#[derive(Debug, Default)]
pub struct WarmCache {
    cache: ReconcileCache,
    present: HashMap<String, NeighOp>,
    restored: usize,
    /// Keys listed by the kernel dump in progress
    /// ([`WarmCache::begin_snapshot`]).
    listed: Option<HashSet<String>>,
}

impl WarmCache {
    /// A cache over what APPL_DB held (`restored`, all STALE).
    pub fn new(restored: ReconcileCache) -> Self {
        WarmCache {
            restored: restored.len(),
            cache: restored,
            present: HashMap::new(),
            listed: None,
        }
    }

    /// Number of keys read from APPL_DB at start.
    pub fn restored(&self) -> usize {
        self.restored
    }

    /// Number of keys the kernel holds now (as far as the ops tell).
    pub fn present(&self) -> usize {
        self.present.len()
    }

    /// One decided operation (`insertToMap`).
    pub fn insert(&mut self, op: NeighOp) {
        if let Some(listed) = self.listed.as_mut() {
            if !listed.contains(op.key()) {
                listed.insert(op.key().to_owned());
            }
        }
        let delete = matches!(op, NeighOp::Del { .. });
        self.cache.insert(op.key(), &op.fields(), delete);
        if delete {
            self.present.remove(op.key());
        } else {
            self.present.insert(op.key().to_owned(), op);
        }
    }

    /// A kernel dump starts: from now on [`WarmCache::insert`] records the
    /// keys it mentions, until [`WarmCache::end_snapshot`]. Again while one
    /// runs (the dump was restarted): forget what was recorded.
    pub fn begin_snapshot(&mut self) {
        self.listed = Some(HashSet::new());
    }

    /// The dump since [`WarmCache::begin_snapshot`] is complete (plus the
    /// events that arrived during it, inserted as they came): keys present
    /// that it did not mention are deleted. Returns how many. Without a
    /// snapshot in progress: nothing, 0.
    pub fn end_snapshot(&mut self) -> usize {
        let Some(listed) = self.listed.take() else {
            return 0;
        };
        let gone: Vec<String> = self
            .present
            .keys()
            .filter(|k| !listed.contains(k.as_str()))
            .cloned()
            .collect();
        drop(listed);
        let n = gone.len();
        for key in gone {
            self.insert(NeighOp::Del { key });
        }
        n
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
    /// RTM_DELNEIGHs were missed). Restored keys never seen again are STALE
    /// already. Returns how many keys were deleted.
    pub fn remove_interface(&mut self, ifname: &str) -> usize {
        let prefix = format!("{ifname}:");
        let keys: Vec<String> = self
            .present
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        let n = keys.len();
        for key in keys {
            self.insert(NeighOp::Del { key });
        }
        n
    }

    /// `reconcile()`: the operations to write, and the writer set up with a
    /// desired table equal to what APPL_DB holds once they are written
    /// (every key present, clean: nothing pending in the writer).
    pub fn finish(self, writer: &mut NeighWriter) -> ReconcileOps {
        let ops = self.cache.reconcile();
        let mut after = ConsumerView::new();
        for (key, op) in self.present {
            after.insert(key, op.fields());
            writer.stage(op);
        }
        writer.resync_from_appl(&after);
        ops
    }
}

// ===== the driver =====

/// What [`WarmRestart::next`] reports.
#[derive(Debug)]
pub enum WarmEvent {
    /// The restore flag was seen after `waited`; the reconcile timer runs.
    FlagSeen {
        /// Time spent waiting.
        waited: Duration,
    },
    /// The restore flag was not seen within `limit`: give up (exit non-zero).
    FlagTimeout {
        /// The limit.
        limit: Duration,
    },
    /// The reconcile timer fired: call [`WarmRestart::start_reconcile`] as
    /// soon as no dump is in flight.
    TimerFired,
    /// The reconcile write ended. On `Err` (an error reply, not a lost
    /// connection, which is retried) APPL_DB may lack some of the ops: the
    /// daemon resyncs its writer from APPL_DB.
    Written {
        /// SETs written.
        sets: usize,
        /// DELs written.
        dels: usize,
        /// The outcome.
        result: Result<(), SwssError>,
    },
}

enum Stage {
    WaitFlag(BoxFuture<Result<Duration, Duration>>),
    Timer(Instant),
    Due,
    Writing {
        fut: BoxFuture<Result<(), SwssError>>,
        sets: usize,
        dels: usize,
    },
    Done,
}

/// A warm start in progress (module docs, steps 2-4). Exists from start-up
/// until the reconcile write is done; while it exists the daemon does not
/// flush its writer.
pub struct WarmRestart {
    assist: AppRestartAssist,
    /// `Some` until the reconcile starts.
    cache: Option<WarmCache>,
    stage: Stage,
}

impl WarmRestart {
    /// Start the warm window: `restored` is the cache from
    /// [`restore_table`]; the restore-flag wait starts now (on `state`,
    /// STATE_DB), limited to `restore_wait`.
    pub fn new(
        assist: AppRestartAssist,
        restored: ReconcileCache,
        state: DbConnector,
        restore_wait: Duration,
    ) -> Self {
        WarmRestart {
            assist,
            cache: Some(WarmCache::new(restored)),
            stage: Stage::WaitFlag(Box::pin(wait_restore_flag(state, restore_wait))),
        }
    }

    /// True while decided operations are cached (before the reconcile).
    pub fn caching(&self) -> bool {
        self.cache.is_some()
    }

    /// Route one decided operation: cached (returns `None`) before the
    /// reconcile, handed back for the writer after it.
    pub fn offer(&mut self, op: NeighOp) -> Option<NeighOp> {
        match self.cache.as_mut() {
            Some(c) => {
                tracing::debug!(key = %op.key(), delete = matches!(op, NeighOp::Del { .. }),
                    "warm start: operation cached");
                c.insert(op);
                None
            }
            None => Some(op),
        }
    }

    /// A kernel dump starts while caching ([`WarmCache::begin_snapshot`]);
    /// its ops then come through [`WarmRestart::offer`]. Returns `false`
    /// (and does nothing) when no longer caching.
    pub fn begin_snapshot(&mut self) -> bool {
        match self.cache.as_mut() {
            Some(c) => {
                c.begin_snapshot();
                true
            }
            None => false,
        }
    }

    /// The dump is complete ([`WarmCache::end_snapshot`]). Returns `false`
    /// (and does nothing) when no longer caching.
    pub fn end_snapshot(&mut self) -> bool {
        let Some(c) = self.cache.as_mut() else {
            return false;
        };
        let gone = c.end_snapshot();
        tracing::info!(
            absent = gone,
            kernel = c.present(),
            restored = c.restored(),
            "warm start: kernel dump cached"
        );
        true
    }

    /// A complete kernel dump while caching, in one call
    /// ([`WarmCache::snapshot`]). Returns `false` (and does nothing) when
    /// no longer caching.
    pub fn snapshot(&mut self, ops: Vec<NeighOp>) -> bool {
        if !self.begin_snapshot() {
            return false;
        }
        for op in ops {
            self.offer(op);
        }
        self.end_snapshot()
    }

    /// Interface `ifname` removed while caching; `None` when no longer
    /// caching (the writer handles it).
    pub fn remove_interface(&mut self, ifname: &str) -> Option<usize> {
        self.cache.as_mut().map(|c| c.remove_interface(ifname))
    }

    /// True once the timer fired and the reconcile has not started.
    pub fn is_due(&self) -> bool {
        matches!(self.stage, Stage::Due)
    }

    /// The next event of the warm window. Cancel-safe (for
    /// `tokio::select!`); pending forever when nothing is left to wait for.
    pub async fn next(&mut self) -> WarmEvent {
        let (event, next) = match &mut self.stage {
            Stage::WaitFlag(fut) => match fut.await {
                Ok(waited) => {
                    let timer = self.assist.timer();
                    tracing::info!(
                        waited_ms = waited.as_millis() as u64,
                        timer_secs = timer.as_secs(),
                        "NEIGH_RESTORE_TABLE|Flags restored=true seen; reconcile timer started"
                    );
                    (
                        WarmEvent::FlagSeen { waited },
                        Stage::Timer(Instant::now() + timer),
                    )
                }
                Err(limit) => (WarmEvent::FlagTimeout { limit }, Stage::Done),
            },
            Stage::Timer(at) => {
                tokio::time::sleep_until(*at).await;
                tracing::info!("warm start: reconcile timer fired");
                (WarmEvent::TimerFired, Stage::Due)
            }
            Stage::Writing { fut, sets, dels } => {
                let result = fut.await;
                (
                    WarmEvent::Written {
                        sets: *sets,
                        dels: *dels,
                        result,
                    },
                    Stage::Done,
                )
            }
            Stage::Due | Stage::Done => std::future::pending().await,
        };
        self.stage = next;
        event
    }

    /// Reconcile (call when [`WarmRestart::is_due`] and no dump is in
    /// flight): compute the ops, hand the writer the resulting desired
    /// table ([`WarmCache::finish`]) and start the write (one pipeline,
    /// retried on connection loss, then state `reconciled`), reported by
    /// [`WarmEvent::Written`]. `conn` is the current APPL_DB connection if
    /// any; `appl` / `state` reconnect when needed. Does nothing unless due.
    pub fn start_reconcile(
        &mut self,
        writer: &mut NeighWriter,
        appl: DbConnector,
        conn: Option<MultiplexedConnection>,
        state: DbConnector,
        producer: ProducerStateTable,
    ) {
        if !self.is_due() {
            return;
        }
        let Some(cache) = self.cache.take() else {
            return;
        };
        let restored = cache.restored();
        let ops = cache.finish(writer);
        let (sets, dels) = (ops.sets.len(), ops.dels.len());
        tracing::info!(
            restored,
            sets,
            dels,
            kernel = writer.desired_len(),
            "warm start: reconciling"
        );
        let fut = write_reconcile(appl, conn, state, self.assist.clone(), producer, ops);
        self.stage = Stage::Writing {
            fut: Box::pin(fut),
            sets,
            dels,
        };
    }
}

/// [`WarmRestart::next`] on an optional driver (pending forever on `None`),
/// for a `tokio::select!` branch.
pub async fn next_event(warm: &mut Option<WarmRestart>) -> WarmEvent {
    match warm.as_mut() {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

// ===== Redis =====

/// Waits until STATE_DB `NEIGH_RESTORE_TABLE|Flags` has `restored` =
/// `true`: a keyspace subscription to the table whose initial load checks
/// the current value after subscribing. A lost subscription is rebuilt
/// (with backoff), which re-checks the value. `Ok(time waited)`, or
/// `Err(limit)` when `limit` passed first.
pub async fn wait_restore_flag(state: DbConnector, limit: Duration) -> Result<Duration, Duration> {
    let start = Instant::now();
    let wait = async {
        let mut delay = RECONNECT_INITIAL_DELAY;
        let mut logged = false;
        loop {
            let mut sub =
                match SubscriberStateTable::new(&state, STATE_NEIGH_RESTORE_TABLE_NAME).await {
                    Ok(sub) => sub,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                        "cannot subscribe to STATE_DB NEIGH_RESTORE_TABLE; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(RECONNECT_MAX_DELAY);
                        continue;
                    }
                };
            delay = RECONNECT_INITIAL_DELAY;
            if !logged {
                tracing::info!(
                    limit_secs = limit.as_secs_f64(),
                    "warm start: waiting for NEIGH_RESTORE_TABLE|Flags restored=true"
                );
                logged = true;
            }
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
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(()) => Ok(start.elapsed()),
        Err(_) => Err(limit),
    }
}

/// Writes the reconcile ops as one pipeline, retrying (with backoff, on a
/// fresh connection) while Redis is unreachable, then state `reconciled`
/// (written also when the ops failed with an error reply, since the daemon
/// then resyncs from APPL_DB). Returns the ops' outcome.
async fn write_reconcile(
    appl: DbConnector,
    mut conn: Option<MultiplexedConnection>,
    state: DbConnector,
    assist: AppRestartAssist,
    producer: ProducerStateTable,
    ops: ReconcileOps,
) -> Result<(), SwssError> {
    let mut delay = RECONNECT_INITIAL_DELAY;
    let result = loop {
        let mut c = match conn.take() {
            Some(c) => c,
            None => appl.connect_retrying().await,
        };
        match AppRestartAssist::write_reconcile(&mut c, &producer, &ops).await {
            Ok(()) => break Ok(()),
            Err(e) if e.is_connection_error() => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                    "Redis lost while writing the reconcile; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RECONNECT_MAX_DELAY);
            }
            Err(e) => break Err(e),
        }
    };
    let mut delay = RECONNECT_INITIAL_DELAY;
    loop {
        let mut s = state.connect_retrying().await;
        match assist.set_state(&mut s, WarmStartState::Reconciled).await {
            Ok(()) => break,
            Err(e) if e.is_connection_error() => {
                tracing::warn!(error = %e, "Redis lost while writing state reconciled; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RECONNECT_MAX_DELAY);
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

    fn restored(entries: &[(&str, u8)]) -> ReconcileCache {
        let mut c = ReconcileCache::new();
        for (k, m) in entries {
            c.restore(*k, set(k, *m).fields());
        }
        c
    }

    #[test]
    fn unchanged_kernel_writes_nothing_and_writer_is_clean() {
        let mut w = WarmCache::new(restored(&[
            ("Ethernet0:10.0.0.2", 1),
            ("Ethernet0:10.0.0.3", 2),
        ]));
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
        let mut w = WarmCache::new(restored(&[
            ("a:10.0.0.1", 1),
            ("a:10.0.0.2", 2),
            ("a:10.0.0.3", 3),
        ]));
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
        let mut w = WarmCache::new(restored(&[("a:10.0.0.1", 1)]));
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
        let mut w = WarmCache::new(restored(&[("a:10.0.0.1", 1), ("b:10.0.1.1", 2)]));
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
        let mut w = WarmCache::new(restored(&[("a:10.0.0.1", 1)]));
        w.insert(del("a:10.0.0.1"));
        w.insert(set("a:10.0.0.1", 1));
        w.insert(set("a:10.0.0.5", 5));
        w.insert(del("a:10.0.0.5"));
        let mut writer = NeighWriter::new();
        assert!(w.finish(&mut writer).is_empty());
        assert_eq!(writer.desired_len(), 1);
    }
}
