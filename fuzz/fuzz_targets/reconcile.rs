//! Fuzz target: the warm-restart reconcile engine
//! (`swss::restart_assist::ReconcileCache`) on an arbitrary sequence of
//! `restore` and `insert` (set or delete) operations, then `reconcile()`.
//!
//! A model written from the doc comments runs alongside: `restore(k, fvs)`
//! records what APPL_DB held (`fvs` a hash: distinct field names) and makes
//! the key STALE; an empty hash is skipped; `insert` records the last
//! operation seen. Must hold:
//!
//! 1. No panic.
//! 2. `state(k)` of every key is the documented one: restored and not seen
//!    since → STALE; last seen deleted → DELETE if restored, forgotten
//!    (`None`) if not; last seen present with every pair contained in the
//!    restored hash → SAME; otherwise NEW. `len()` counts the known keys.
//! 3. `reconcile()`: `dels` and `sets` are sorted by key, without
//!    duplicates, disjoint; a DEL only for a restored key (STALE or
//!    DELETE; never a key that was never written, f.12); a SET only for a
//!    NEW key, with the fields last inserted for it.
//! 4. Applying the DELs, then the SETs (HSET: fields merged into the
//!    existing hash), to the restored table gives exactly the table the
//!    operations describe: a key whose last operation is a set with `fvs`
//!    holds the restored hash (if any) with `fvs` HSET into it (so for a
//!    SAME key the restored hash, whose extra fields the documented subset
//!    test keeps); a key last deleted, or restored and never seen again, is
//!    absent; no other key exists. (An empty hash is an absent key.)
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use swss::restart_assist::{CacheState, ReconcileCache};
use swss::FieldValues;

const KEYS: &[&str] = &[
    "Ethernet0:10.0.0.2",
    "Ethernet0:10.0.0.3",
    "Vlan1000:fc02::2",
    "k",
    "",
];
const FIELDS: &[&str] = &["neigh", "family", "extra"];
const VALUES: &[&str] = &["00:00:00:00:00:0a", "00:00:00:00:00:0b", "IPv4", "IPv6", ""];

#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8),
    Any(String),
}

impl Key {
    fn get(&self) -> String {
        match self {
            Key::Known(i) => KEYS[*i as usize % KEYS.len()].to_string(),
            Key::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Text {
    Field(u8),
    Value(u8),
    Any(String),
}

impl Text {
    fn get(&self) -> String {
        match self {
            Text::Field(i) => FIELDS[*i as usize % FIELDS.len()].to_string(),
            Text::Value(i) => VALUES[*i as usize % VALUES.len()].to_string(),
            Text::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum CacheOp {
    Restore(Key, Vec<(Text, Text)>),
    Insert(Key, Vec<(Text, Text)>, bool),
}

/// The model of one key.
#[derive(Debug, Clone, Default)]
struct Model {
    /// What APPL_DB held, if restored.
    restored: Option<FieldValues>,
    /// Last operation seen since: `Some(Some(fvs))` set, `Some(None)` deleted.
    last: Option<Option<FieldValues>>,
    /// Forgotten (a delete of a key that was not restored).
    gone: bool,
}

type Hash = BTreeMap<String, String>;

/// HSET semantics: later pairs win.
fn hset(into: &mut Hash, fvs: &[(String, String)]) {
    for (f, v) in fvs {
        into.insert(f.clone(), v.clone());
    }
}

fn fields(raw: &[(Text, Text)]) -> FieldValues {
    raw.iter()
        .take(6)
        .map(|(f, v)| (f.get(), v.get()))
        .collect()
}

fuzz_target!(|ops: Vec<CacheOp>| {
    let mut cache = ReconcileCache::new();
    let mut model: BTreeMap<String, Model> = BTreeMap::new();
    for op in ops.iter().take(64) {
        match op {
            CacheOp::Restore(k, raw) => {
                // A Redis hash: distinct field names (the first one kept).
                let mut seen = BTreeSet::new();
                let fvs: FieldValues = fields(raw)
                    .into_iter()
                    .filter(|(f, _)| seen.insert(f.clone()))
                    .collect();
                let key = k.get();
                cache.restore(key.clone(), fvs.clone());
                if !fvs.is_empty() {
                    model.insert(
                        key,
                        Model {
                            restored: Some(fvs),
                            last: None,
                            gone: false,
                        },
                    );
                }
            }
            CacheOp::Insert(k, raw, delete) => {
                let key = k.get();
                let fvs = fields(raw);
                cache.insert(&key, &fvs, *delete);
                let m = model.entry(key).or_default();
                if *delete {
                    if m.restored.is_some() {
                        m.last = Some(None);
                    } else {
                        *m = Model {
                            gone: true,
                            ..Model::default()
                        };
                    }
                } else {
                    m.last = Some(Some(fvs));
                    m.gone = false;
                }
            }
        }
    }

    // 2. Documented states.
    let mut known = 0;
    let mut want_state = BTreeMap::new();
    for (k, m) in &model {
        let want = match (&m.last, &m.restored) {
            _ if m.gone => None,
            (None, Some(_)) => Some(CacheState::Stale),
            (None, None) => None,
            (Some(None), Some(_)) => Some(CacheState::Delete),
            (Some(None), None) => None,
            (Some(Some(now)), Some(old)) if now.iter().all(|p| old.contains(p)) => {
                Some(CacheState::Same)
            }
            (Some(Some(_)), _) => Some(CacheState::New),
        };
        assert_eq!(cache.state(k), want, "state of {k:?}: {m:?}");
        known += usize::from(want.is_some());
        want_state.insert(k.clone(), want);
    }
    assert_eq!(cache.len(), known);
    assert_eq!(cache.is_empty(), known == 0);

    // 3. The reconcile output.
    let out = cache.reconcile();
    assert!(
        out.dels.windows(2).all(|w| w[0] < w[1]),
        "dels not sorted/unique: {out:?}"
    );
    assert!(
        out.sets.windows(2).all(|w| w[0].0 < w[1].0),
        "sets not sorted/unique: {out:?}"
    );
    let dels: BTreeSet<&String> = out.dels.iter().collect();
    for k in &out.dels {
        assert!(
            matches!(
                want_state.get(k),
                Some(Some(CacheState::Stale | CacheState::Delete))
            ),
            "DEL of {k:?}, which is not STALE/DELETE"
        );
        assert!(model[k].restored.is_some(), "DEL of never-written {k:?}");
    }
    for (k, fvs) in &out.sets {
        assert!(!dels.contains(k), "{k:?} both set and deleted");
        assert_eq!(
            want_state.get(k),
            Some(&Some(CacheState::New)),
            "SET of {k:?}"
        );
        assert_eq!(
            model[k].last.as_ref(),
            Some(&Some(fvs.clone())),
            "SET fields of {k:?}"
        );
    }
    // Every STALE/DELETE key is deleted and every NEW key set.
    for (k, s) in &want_state {
        match s {
            Some(CacheState::Stale | CacheState::Delete) => assert!(dels.contains(k)),
            Some(CacheState::New) => assert!(out.sets.iter().any(|(sk, _)| sk == k)),
            _ => {}
        }
    }

    // 4. Applying DELs then SETs to the restored table.
    let mut table: BTreeMap<String, Hash> = BTreeMap::new();
    for (k, m) in &model {
        if let Some(r) = &m.restored {
            let mut h = Hash::new();
            hset(&mut h, r);
            table.insert(k.clone(), h);
        }
    }
    for k in &out.dels {
        table.remove(k);
    }
    for (k, fvs) in &out.sets {
        hset(table.entry(k.clone()).or_default(), fvs);
    }
    table.retain(|_, h| !h.is_empty());
    let mut want: BTreeMap<String, Hash> = BTreeMap::new();
    for (k, m) in &model {
        if let Some(Some(fvs)) = &m.last {
            let mut h = Hash::new();
            if let Some(r) = &m.restored {
                hset(&mut h, r);
            }
            hset(&mut h, fvs);
            if !h.is_empty() {
                want.insert(k.clone(), h);
            }
        }
    }
    assert_eq!(table, want, "table after reconcile; ops {ops:?}");
});
