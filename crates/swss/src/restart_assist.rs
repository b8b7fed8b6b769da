//! AppRestartAssist: the warm-restart reconcile engine (docs/behavior.md c.2), as
//! swss::AppRestartAssist in sonic-swss's `warmrestart/warmRestartAssist.cpp`
//! (sonic-swss, not sonic-swss-common: the daemons link it from there).
//!
//! The reconcile rules are pure: each key's [`CacheState`] follows from
//! what APPL_DB held before the restart and what the daemon decided while
//! the reconcile timer ran, and the difference to write is a
//! [`ReconcileOps`]. `ReconcileCache` (test support, feature
//! `test-support`) keeps them on string keys as the reference; neighsyncd's
//! compact `WarmCache` applies the same rules in production. The Redis side
//! (the WarmStart check, dropping unconsumed operations, reading the table,
//! writing the difference in chunks, the `state` field) is
//! [`AppRestartAssist`], built on [`crate::ProducerStateTable`] and
//! [`crate::warm_restart`].

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::producer_state::{ProducerStateTable, MAX_KEYS_PER_SCRIPT};
use crate::table::{cut_fields, glob_escape, parse_scan_reply, value_to_pairs, Table};
use crate::warm_restart::{
    check_warm_start, get_warm_start_timer, set_warm_start_state, WarmStartInfo, WarmStartState,
};
use crate::{FieldValues, SwssError};

/// Default reconcile timer in seconds when `WARM_RESTART|swss <app>_timer`
/// is not configured (AppRestartAssist's default of 5 s).
pub const DEFAULT_RECONCILE_TIMER_SECS: u32 = 5;

/// The state of one cached key, as AppRestartAssist's `cache-state` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheState {
    /// Restored from APPL_DB and not (yet) seen again: deleted at reconcile.
    Stale,
    /// Seen again with the same fields: nothing is written.
    Same,
    /// Unknown before, or seen with different fields: SET at reconcile.
    New,
    /// Restored and then deleted: DEL at reconcile.
    Delete,
}

impl CacheState {
    /// The C++ spelling: `STALE`, `SAME`, `NEW`, `DELETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheState::Stale => "STALE",
            CacheState::Same => "SAME",
            CacheState::New => "NEW",
            CacheState::Delete => "DELETE",
        }
    }
}

/// The reconcile output: what to write to bring APPL_DB from what it held at
/// restart to what the kernel holds now. Keys are without the table prefix
/// (e.g. `Ethernet0:10.0.0.2`); both lists are sorted by key so that the
/// batch written is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileOps {
    /// ProducerStateTable `set(key, fvs)`; fields in insertion order.
    pub sets: Vec<(String, FieldValues)>,
    /// ProducerStateTable `del(key)`.
    pub dels: Vec<String>,
}

impl ReconcileOps {
    /// True when reconcile writes nothing (nothing changed while down).
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty() && self.dels.is_empty()
    }
}

#[cfg(any(test, feature = "test-support"))]
mod reconcile_cache;
#[cfg(any(test, feature = "test-support"))]
pub use reconcile_cache::ReconcileCache;

// ===== Redis glue =====

/// Largest timer accepted as a default (the C++ constructor throws above it).
pub const MAX_RECONCILE_TIMER_SECS: u32 = 9999;

/// Keys asked per `SCAN` (its COUNT) and so read per pipelined `HGETALL`
/// round trip in `AppRestartAssist::read_table_to_cache`.
pub const READ_CHUNK: usize = 1000;

/// Largest number of keys per pipeline (one batched script) in
/// [`AppRestartAssist::write_reconcile`].
pub const WRITE_CHUNK: usize = 1000;

/// The Redis side of AppRestartAssist (warmRestartAssist.cpp, docs/behavior.md
/// c.2) for one app and one table: the WarmStart check at construction,
/// `registerAppTable`'s clear, `readTablesToMap` and `reconcile`'s write.
/// The cache itself is the pure `ReconcileCache`.
///
/// STATE_DB keys written: `WARM_RESTART_TABLE|<app>` fields `restore_count`
/// (always, by the check) and `state` (`initialized`, `restored`,
/// `reconciled`; only on a warm start).
#[derive(Debug, Clone)]
pub struct AppRestartAssist {
    app: String,
    state_sep: char,
    info: WarmStartInfo,
    timer: Duration,
}

impl AppRestartAssist {
    /// The constructor of AppRestartAssist(`app`, `docker`,
    /// `default_timer_secs`): runs `checkWarmStart(app, docker, incr=true)`
    /// on STATE_DB (`state`, separator `state_sep`), which writes
    /// `restore_count` (0 on a cold start, +1 on a warm one). On a warm start
    /// the reconcile timer is CONFIG_DB `WARM_RESTART|<docker> <app>_timer`
    /// when configured (1..=9999 s), else `default_timer_secs` (0 meaning
    /// [`DEFAULT_RECONCILE_TIMER_SECS`]), and state `initialized` is written.
    /// A cold start writes no state.
    ///
    /// Errors: [`SwssError::InvalidArgument`] when `default_timer_secs` >
    /// [`MAX_RECONCILE_TIMER_SECS`] (the C++ throws); Redis errors;
    /// [`SwssError::UnexpectedReply`] for a non-numeric `restore_count`.
    #[allow(clippy::too_many_arguments)]
    pub async fn new<S, C>(
        state: &mut S,
        state_sep: char,
        config: &mut C,
        config_sep: char,
        app: &str,
        docker: &str,
        default_timer_secs: u32,
    ) -> Result<Self, SwssError>
    where
        S: ConnectionLike + Send,
        C: ConnectionLike + Send,
    {
        if default_timer_secs > MAX_RECONCILE_TIMER_SECS {
            return Err(SwssError::InvalidArgument(format!(
                "default reconcile timer {default_timer_secs} s above {MAX_RECONCILE_TIMER_SECS}"
            )));
        }
        let info = check_warm_start(state, state_sep, app, docker, true).await?;
        let mut secs = if default_timer_secs == 0 {
            DEFAULT_RECONCILE_TIMER_SECS
        } else {
            default_timer_secs
        };
        if info.warm {
            if let Some(configured) = get_warm_start_timer(config, config_sep, app, docker).await? {
                secs = configured;
            }
            set_warm_start_state(state, state_sep, app, WarmStartState::Initialized).await?;
        }
        Ok(AppRestartAssist {
            app: app.to_owned(),
            state_sep,
            info,
            timer: Duration::from_secs(u64::from(secs)),
        })
    }

    /// True when a warm start is in progress (`isWarmStartInProgress`).
    pub fn is_warm(&self) -> bool {
        self.info.warm
    }

    /// What the WarmStart check found (system warm reboot, `restore_count`).
    pub fn info(&self) -> WarmStartInfo {
        self.info
    }

    /// The reconcile timer (seconds granularity).
    pub fn timer(&self) -> Duration {
        self.timer
    }

    /// STATE_DB's key separator, as given to [`AppRestartAssist::new`].
    pub fn state_separator(&self) -> char {
        self.state_sep
    }

    /// The app name (`WARM_RESTART_TABLE|<app>`).
    pub fn app(&self) -> &str {
        &self.app
    }

    /// `setWarmStartState(app, state)` on STATE_DB.
    ///
    /// Errors: Redis errors.
    pub async fn set_state<S: ConnectionLike + Send>(
        &self,
        state: &mut S,
        value: WarmStartState,
    ) -> Result<(), SwssError> {
        set_warm_start_state(state, self.state_sep, &self.app, value).await
    }

    /// `registerAppTable`: on a warm start, drop the operations of
    /// `producer`'s table that no consumer popped yet
    /// ([`ProducerStateTable::clear`], exact `_<TABLE><sep>` prefix with
    /// SCAN, docs/behavior.md f.11). Nothing on a cold start.
    ///
    /// Errors: Redis errors.
    pub async fn register_app_table<C: ConnectionLike + Send>(
        &self,
        appl: &mut C,
        producer: &ProducerStateTable,
    ) -> Result<(), SwssError> {
        if self.info.warm {
            producer.clear(appl).await?;
        }
        Ok(())
    }

    /// `readTablesToMap` for `producer`'s table, streamed (docs/behavior.md c.2;
    /// deviation: the C++ uses `KEYS` and holds every key, f.20): one
    /// `SCAN <cursor> MATCH <TABLE><sep>* COUNT <chunk>` at a time, then one
    /// pipeline of `HGETALL` for the keys that SCAN returned, then
    /// `sink(key, fields)` for each non-empty hash (key without the
    /// `<TABLE><sep>` prefix; field names cut at `@` as [`Table::get`]),
    /// before the next SCAN. Memory: one SCAN reply and its hashes (about
    /// `chunk` keys; SCAN's COUNT is a hint, a reply may hold a few more),
    /// never the whole key list. A key that is not a hash is reported as a
    /// bad APPL_DB entry and left out; a key that vanished between SCAN and
    /// HGETALL is left out. SCAN may return a key twice (the table was
    /// rehashed during the scan): the sink then sees it twice, with what
    /// APPL_DB held at each read (the caller keeps the last, as
    /// `ReconcileCache::restore` does). Returns the number of sink calls.
    ///
    /// Errors: Redis errors, [`SwssError::UnexpectedReply`] for a malformed
    /// SCAN or HGETALL reply.
    pub async fn read_table<C, F>(
        appl: &mut C,
        producer: &ProducerStateTable,
        chunk: usize,
        mut sink: F,
    ) -> Result<usize, SwssError>
    where
        C: ConnectionLike + Send,
        F: FnMut(String, FieldValues),
    {
        let table = Table::new(producer.table_name(), producer.separator()).in_db("APPL_DB");
        let prefix = format!("{}{}", producer.table_name(), producer.separator());
        let pattern = format!("{}*", glob_escape(&prefix));
        let context = format!("SCAN MATCH {pattern}");
        let mut cursor: u64 = 0;
        let mut restored = 0;
        loop {
            let reply: redis::Value = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(chunk.max(1))
                .query_async(appl)
                .await?;
            let (next, found) = parse_scan_reply(&reply, &context)?;
            drop(reply);
            let keys: Vec<String> = found
                .into_iter()
                .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
                .collect();
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("HGETALL").arg(table.full_key(k));
                }
                let replies = table.query_per_key(appl, &mut pipe, &keys).await?;
                for (k, reply) in keys.into_iter().zip(replies) {
                    let Some(v) = reply else { continue };
                    let fvs = value_to_pairs(&v, &format!("HGETALL {}{k}", prefix))?;
                    if !fvs.is_empty() {
                        sink(k, cut_fields(fvs));
                        restored += 1;
                    }
                }
            }
            if next == 0 {
                return Ok(restored);
            }
            cursor = next;
        }
    }

    /// Sends `reconcile()`'s writes in pipelines of at most
    /// [`WRITE_CHUNK`] keys each ([`AppRestartAssist::write_reconcile_from`]
    /// from the start; nothing is sent when `ops` is empty). Does not write
    /// the state; write `reconciled` after it succeeded.
    ///
    /// Errors: as [`ProducerStateTable::flush`].
    pub async fn write_reconcile<C: ConnectionLike + Send>(
        appl: &mut C,
        producer: &ProducerStateTable,
        ops: &ReconcileOps,
    ) -> Result<(), SwssError> {
        let mut done = 0;
        Self::write_reconcile_from(appl, producer, ops, WRITE_CHUNK, &mut done).await
    }

    /// Sends `reconcile()`'s writes (docs/behavior.md c.2 `reconcile()`;
    /// deviation f.4: batched, not one round trip per entry) in bounded
    /// pipelines, each one batched ProducerStateTable script of at most
    /// `chunk` keys (at least 1): first every DEL of [`ReconcileOps::dels`]
    /// (STALE and DELETE), then every SET of [`ReconcileOps::sets`] (NEW),
    /// each in list order. `done` counts the ops already written (DELs
    /// first, then SETs) and is advanced after each pipeline that
    /// succeeded, so a call after an error resumes where the last one
    /// stopped (the failed pipeline is sent again; a batched script either
    /// ran or did not). A key is in at most one of the lists, so the order
    /// between the pipelines does not matter to the consumer. Nothing is
    /// sent once `done` covers `ops`.
    ///
    /// Errors: as [`ProducerStateTable::flush`]; `done` then counts what was
    /// written before.
    pub async fn write_reconcile_from<C: ConnectionLike + Send>(
        appl: &mut C,
        producer: &ProducerStateTable,
        ops: &ReconcileOps,
        chunk: usize,
        done: &mut usize,
    ) -> Result<(), SwssError> {
        let chunk = chunk.clamp(1, MAX_KEYS_PER_SCRIPT);
        let total = ops.dels.len() + ops.sets.len();
        while *done < total {
            let mut pipe = redis::pipe();
            let n = if *done < ops.dels.len() {
                let part = &ops.dels[*done..ops.dels.len().min(*done + chunk)];
                producer.queue_batch_del(&mut pipe, part);
                part.len()
            } else {
                let from = *done - ops.dels.len();
                let part = &ops.sets[from..ops.sets.len().min(from + chunk)];
                producer.queue_batch_set(&mut pipe, part);
                part.len()
            };
            producer.flush(appl, &pipe).await?;
            *done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fv(mac: &str) -> FieldValues {
        vec![
            ("neigh".to_owned(), mac.to_owned()),
            ("family".to_owned(), "IPv4".to_owned()),
        ]
    }

    const A: &str = "00:00:00:00:00:0a";
    const B: &str = "00:00:00:00:00:0b";

    #[test]
    fn restored_and_untouched_is_deleted() {
        let mut c = ReconcileCache::new();
        c.restore("Ethernet0:10.0.0.2", fv(A));
        assert_eq!(c.state("Ethernet0:10.0.0.2"), Some(CacheState::Stale));
        let ops = c.reconcile();
        assert_eq!(ops.dels, vec!["Ethernet0:10.0.0.2".to_owned()]);
        assert!(ops.sets.is_empty());
    }

    #[test]
    fn restored_then_same_writes_nothing() {
        let mut c = ReconcileCache::new();
        c.restore("k", fv(A));
        c.insert("k", &fv(A), false);
        assert_eq!(c.state("k"), Some(CacheState::Same));
        assert!(c.reconcile().is_empty());
    }

    #[test]
    fn restored_then_changed_is_set_with_new_fields() {
        let mut c = ReconcileCache::new();
        c.restore("k", fv(A));
        c.insert("k", &fv(B), false);
        assert_eq!(c.state("k"), Some(CacheState::New));
        c.insert("k", &fv(B), false);
        assert_eq!(c.state("k"), Some(CacheState::New));
        let ops = c.clone().reconcile();
        assert_eq!(ops.sets, vec![("k".to_owned(), fv(B))]);
        assert!(ops.dels.is_empty());
        // changed back to what APPL_DB holds: nothing to write
        c.insert("k", &fv(A), false);
        assert_eq!(c.state("k"), Some(CacheState::Same));
        assert!(c.reconcile().is_empty());
    }

    #[test]
    fn changed_deleted_and_readded_compares_with_appl_db_not_last_seen() {
        // The C++ ends this sequence as SAME and leaves A in APPL_DB.
        let mut c = ReconcileCache::new();
        c.restore("k", fv(A));
        c.insert("k", &fv(B), false);
        c.insert("k", &[], true);
        c.insert("k", &fv(B), false);
        assert_eq!(c.state("k"), Some(CacheState::New));
        assert_eq!(c.reconcile().sets, vec![("k".to_owned(), fv(B))]);
    }

    #[test]
    fn restored_then_deleted_is_del_and_readd_same_is_same() {
        let mut c = ReconcileCache::new();
        c.restore("k", fv(A));
        c.insert("k", &[], true);
        assert_eq!(c.state("k"), Some(CacheState::Delete));
        assert_eq!(c.clone().reconcile().dels, vec!["k".to_owned()]);
        c.insert("k", &fv(A), false);
        assert_eq!(c.state("k"), Some(CacheState::Same));
        assert!(c.reconcile().is_empty());
    }

    #[test]
    fn restored_deleted_readded_with_other_mac_is_set() {
        let mut c = ReconcileCache::new();
        c.restore("k", fv(A));
        c.insert("k", &[], true);
        c.insert("k", &fv(B), false);
        assert_eq!(c.state("k"), Some(CacheState::New));
        assert_eq!(c.reconcile().sets, vec![("k".to_owned(), fv(B))]);
    }

    #[test]
    fn unknown_key_is_new_and_new_then_deleted_writes_nothing() {
        let mut c = ReconcileCache::new();
        c.insert("k", &fv(A), false);
        assert_eq!(c.state("k"), Some(CacheState::New));
        c.insert("k", &[], true);
        assert_eq!(c.state("k"), None);
        assert!(c.reconcile().is_empty());
    }

    #[test]
    fn delete_of_unknown_key_is_ignored() {
        let mut c = ReconcileCache::new();
        c.insert("k", &[], true);
        assert!(c.is_empty());
    }

    #[test]
    fn restored_entry_with_extra_fields_counts_as_same() {
        let mut c = ReconcileCache::new();
        let mut extra = fv(A);
        extra.push(("extra".to_owned(), "x".to_owned()));
        c.restore("k", extra);
        c.insert("k", &fv(A), false);
        assert_eq!(c.state("k"), Some(CacheState::Same));
    }

    #[test]
    fn empty_restored_hash_is_skipped() {
        let mut c = ReconcileCache::new();
        c.restore("k", vec![]);
        assert!(c.is_empty());
    }

    #[test]
    fn output_is_sorted() {
        let mut c = ReconcileCache::new();
        for k in ["c", "a", "b"] {
            c.restore(format!("old-{k}"), fv(A));
            c.insert(&format!("new-{k}"), &fv(B), false);
        }
        let ops = c.reconcile();
        assert_eq!(ops.dels, vec!["old-a", "old-b", "old-c"]);
        let keys: Vec<_> = ops.sets.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["new-a", "new-b", "new-c"]);
    }

    /// The Redis glue against a real redis-server.
    #[test]
    fn app_restart_assist_against_redis() {
        use crate::{DbConfig, DbConnector};
        use redis::Commands;
        let server = testbed::redis_server::RedisServer::start().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cfg = DbConfig::load(server.db_config_path()).unwrap();
        let conn = |db: &str| DbConnector::new(cfg.location(db).unwrap()).unwrap();
        let (appl_db, state_db, config_db) = (conn("APPL_DB"), conn("STATE_DB"), conn("CONFIG_DB"));
        let producer = ProducerStateTable::new("NEIGH_TABLE", appl_db.location());
        let mut sync_state = server.conn(6).unwrap();
        let mut sync_appl = server.conn(0).unwrap();
        let state_of = |c: &mut redis::Connection, f: &str| -> Option<String> {
            c.hget("WARM_RESTART_TABLE|neighsyncd", f).unwrap()
        };
        rt.block_on(async {
            let mut state = state_db.connect().await.unwrap();
            let mut config = config_db.connect().await.unwrap();
            let mut appl = appl_db.connect().await.unwrap();
            let new = |s: &mut redis::aio::MultiplexedConnection,
                       c: &mut redis::aio::MultiplexedConnection,
                       t: u32| {
                let (mut s, mut c) = (s.clone(), c.clone());
                async move {
                    AppRestartAssist::new(&mut s, '|', &mut c, '|', "neighsyncd", "swss", t).await
                }
            };
            // Cold: restore_count 0, no state, default timer.
            let a = new(&mut state, &mut config, 0).await.unwrap();
            assert!(!a.is_warm());
            assert_eq!(a.timer(), Duration::from_secs(5));
            assert_eq!(
                state_of(&mut sync_state, "restore_count").as_deref(),
                Some("0")
            );
            assert_eq!(state_of(&mut sync_state, "state"), None);
            assert!(matches!(
                new(&mut state, &mut config, 10_000).await,
                Err(SwssError::InvalidArgument(_))
            ));

            // Warm: +1, initialized, configured timer parsed as strtoul.
            let () = sync_state
                .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
                .unwrap();
            let mut sync_config = server.conn(4).unwrap();
            let () = sync_config
                .hset("WARM_RESTART|swss", "neighsyncd_timer", "0x10")
                .unwrap();
            let a = new(&mut state, &mut config, 0).await.unwrap();
            assert!(a.is_warm());
            assert_eq!(a.timer(), Duration::from_secs(16));
            assert_eq!(
                state_of(&mut sync_state, "restore_count").as_deref(),
                Some("1")
            );
            assert_eq!(
                state_of(&mut sync_state, "state").as_deref(),
                Some("initialized")
            );

            // registerAppTable drops NEIGH_TABLE's pending operations only.
            let () = sync_appl
                .hset(
                    "NEIGH_TABLE:Ethernet0:10.0.0.2",
                    "neigh",
                    "02:00:00:00:00:02",
                )
                .unwrap();
            let () = sync_appl
                .hset(
                    "NEIGH_TABLE:Ethernet0:10.0.0.3",
                    "neigh",
                    "02:00:00:00:00:03",
                )
                .unwrap();
            producer
                .set(&mut appl, "Ethernet0:10.0.0.9", &[("neigh", "x")])
                .await
                .unwrap();
            let () = sync_appl.hset("_NEIGH_TABLE_X:k", "f", "v").unwrap();
            a.register_app_table(&mut appl, &producer).await.unwrap();
            let pending: Vec<String> = sync_appl.keys("_NEIGH_TABLE*").unwrap();
            assert_eq!(pending, vec!["_NEIGH_TABLE_X:k".to_owned()]);
            let n: usize = sync_appl.scard("NEIGH_TABLE_KEY_SET").unwrap();
            assert_eq!(n, 0);

            // readTablesToMap: every consumed key, STALE.
            let mut cache = AppRestartAssist::read_table_to_cache(&mut appl, &producer)
                .await
                .unwrap();
            assert_eq!(cache.len(), 2);
            assert_eq!(cache.state("Ethernet0:10.0.0.2"), Some(CacheState::Stale));
            a.set_state(&mut state, WarmStartState::Restored)
                .await
                .unwrap();
            assert_eq!(
                state_of(&mut sync_state, "state").as_deref(),
                Some("restored")
            );

            // reconcile: one DEL (10.0.0.3 not seen), one SET (new key).
            cache.insert(
                "Ethernet0:10.0.0.2",
                &[("neigh".to_owned(), "02:00:00:00:00:02".to_owned())],
                false,
            );
            cache.insert("Ethernet0:10.0.0.4", &fv(A), false);
            let ops = cache.reconcile();
            AppRestartAssist::write_reconcile(&mut appl, &producer, &ops)
                .await
                .unwrap();
            let mut keys: Vec<String> = sync_appl.smembers("NEIGH_TABLE_KEY_SET").unwrap();
            keys.sort();
            assert_eq!(keys, vec!["Ethernet0:10.0.0.3", "Ethernet0:10.0.0.4"]);
            let dels: Vec<String> = sync_appl.smembers("NEIGH_TABLE_DEL_SET").unwrap();
            assert_eq!(dels, vec!["Ethernet0:10.0.0.3"]);
            let set: Vec<(String, String)> = sync_appl
                .hgetall("_NEIGH_TABLE:Ethernet0:10.0.0.4")
                .unwrap();
            assert_eq!(set, fv(A));
        });
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        #[derive(Debug, Clone)]
        enum Op {
            Set(u8, bool),
            Del(u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u8..6, any::<bool>()).prop_map(|(k, m)| Op::Set(k, m)),
                (0u8..6).prop_map(Op::Del),
            ]
        }

        proptest! {
            /// Applying the reconcile output to the restored table gives
            /// exactly the state the events describe (what the kernel holds).
            #[test]
            fn reconcile_brings_db_to_kernel_state(
                restored in proptest::collection::btree_map(0u8..6, any::<bool>(), 0..6),
                ops in proptest::collection::vec(op(), 0..30),
            ) {
                let mac = |b: bool| if b { fv(B) } else { fv(A) };
                let mut c = ReconcileCache::new();
                let mut db: BTreeMap<String, FieldValues> = BTreeMap::new();
                for (k, m) in &restored {
                    c.restore(k.to_string(), mac(*m));
                    db.insert(k.to_string(), mac(*m));
                }
                // the kernel's view: restored entries are gone unless seen again
                let mut kernel: BTreeMap<String, FieldValues> = BTreeMap::new();
                for o in &ops {
                    match o {
                        Op::Set(k, m) => {
                            c.insert(&k.to_string(), &mac(*m), false);
                            kernel.insert(k.to_string(), mac(*m));
                        }
                        Op::Del(k) => {
                            c.insert(&k.to_string(), &[], true);
                            kernel.remove(&k.to_string());
                        }
                    }
                }
                let out = c.reconcile();
                for k in &out.dels {
                    prop_assert!(db.remove(k).is_some(), "DEL of a key APPL_DB never held: {}", k);
                }
                for (k, f) in out.sets {
                    db.insert(k, f);
                }
                prop_assert_eq!(db, kernel);
            }
        }
    }
}
