//! [`ReconcileCache`]: the reconcile rules of AppRestartAssist on string
//! keys, as a reference (test support, feature `test-support`): neighsyncd
//! reconciles with its compact `WarmCache`, whose tests and fuzz target
//! compare it with this one on random sequences.

use std::collections::HashMap;

use redis::aio::ConnectionLike;

use super::{AppRestartAssist, CacheState, ReconcileOps, READ_CHUNK};
use crate::producer_state::ProducerStateTable;
use crate::{FieldValues, SwssError};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Not seen since the restart.
    Unseen,
    /// Last seen present with these fields.
    Present(FieldValues),
    /// Last seen deleted.
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// What APPL_DB held at restart, if anything.
    restored: Option<FieldValues>,
    seen: Seen,
}

impl Entry {
    fn state(&self) -> CacheState {
        match (&self.seen, &self.restored) {
            (Seen::Unseen, _) => CacheState::Stale,
            (Seen::Deleted, _) => CacheState::Delete,
            (Seen::Present(now), Some(old)) if now.iter().all(|p| old.contains(p)) => {
                CacheState::Same
            }
            (Seen::Present(_), _) => CacheState::New,
        }
    }
}

/// The per-table cache of AppRestartAssist (`appTableCacheMap[table]`).
///
/// Each key remembers what APPL_DB held at restart and what was last seen
/// since; its [`CacheState`] follows from the two:
/// * restored and not seen since: STALE (DEL at reconcile);
/// * last seen deleted: DELETE (DEL at reconcile, only if it was restored);
/// * last seen present with fields that APPL_DB already holds (every pair
///   contained in the restored hash, the C++ subset test): SAME (nothing);
/// * otherwise NEW (SET with the last fields seen).
///
/// This gives the C++ transitions (`AppRestartAssist::insertToMap`, c.2) on
/// every sequence the C++ gets right, and fixes two it gets wrong, both
/// deliberate:
/// * the C++ compares a new value with the *last value seen*, not with what
///   APPL_DB holds: restored A, then B, then deleted, then B again ends as
///   SAME and APPL_DB keeps the stale A. Here it is NEW and B is written.
/// * a key that was not in APPL_DB and is then deleted is forgotten instead
///   of producing a DEL for a key that was never written (f.12), and a key
///   that changes and changes back writes nothing.
///
/// The subset test is kept: a restored entry with extra fields counts as SAME.
#[derive(Debug, Clone, Default)]
pub struct ReconcileCache {
    entries: HashMap<String, Entry>,
}

impl ReconcileCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a key read from APPL_DB at start (`readTablesToMap`): STALE.
    /// Empty hashes are skipped as the C++ does.
    pub fn restore(&mut self, key: impl Into<String>, fvs: FieldValues) {
        if fvs.is_empty() {
            return;
        }
        self.entries.insert(
            key.into(),
            Entry {
                restored: Some(fvs),
                seen: Seen::Unseen,
            },
        );
    }

    /// Record one operation decided while the reconcile timer runs
    /// (`insertToMap`). See the type's doc for the resulting states.
    pub fn insert(&mut self, key: &str, fvs: &[(String, String)], delete: bool) {
        if delete {
            match self.entries.get_mut(key) {
                Some(e) if e.restored.is_some() => e.seen = Seen::Deleted,
                Some(_) => {
                    self.entries.remove(key);
                }
                None => {}
            }
            return;
        }
        let seen = Seen::Present(fvs.to_vec());
        match self.entries.get_mut(key) {
            Some(e) => e.seen = seen,
            None => {
                self.entries.insert(
                    key.to_owned(),
                    Entry {
                        restored: None,
                        seen,
                    },
                );
            }
        }
    }

    /// The state of a cached key, if any (for tests and logs).
    pub fn state(&self, key: &str) -> Option<CacheState> {
        self.entries.get(key).map(Entry::state)
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Consume the cache and return what to write (`reconcile()`): SAME
    /// writes nothing, STALE and DELETE become DEL, NEW becomes SET.
    pub fn reconcile(self) -> ReconcileOps {
        let mut ops = ReconcileOps::default();
        for (key, e) in self.entries {
            match (e.state(), e.seen) {
                (CacheState::Same, _) => {}
                (CacheState::Stale | CacheState::Delete, _) => ops.dels.push(key),
                (CacheState::New, Seen::Present(fvs)) => ops.sets.push((key, fvs)),
                (CacheState::New, _) => {}
            }
        }
        ops.sets.sort_by(|a, b| a.0.cmp(&b.0));
        ops.dels.sort();
        ops
    }
}

impl AppRestartAssist {
    /// `readTablesToMap` for `producer`'s table into a new
    /// [`ReconcileCache`] (every entry STALE): [`AppRestartAssist::read_table`]
    /// with [`READ_CHUNK`] and [`ReconcileCache::restore`] as the sink. Does
    /// not write the state; call [`AppRestartAssist::set_state`] with
    /// `restored` after.
    ///
    /// Errors: Redis errors.
    pub async fn read_table_to_cache<C: ConnectionLike + Send>(
        appl: &mut C,
        producer: &ProducerStateTable,
    ) -> Result<ReconcileCache, SwssError> {
        let mut cache = ReconcileCache::new();
        Self::read_table(appl, producer, READ_CHUNK, |k, fvs| cache.restore(k, fvs)).await?;
        Ok(cache)
    }
}
