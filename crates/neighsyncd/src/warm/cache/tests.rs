//! The reconcile cache's tests (against swss's ReconcileCache as the
//! C++ model).

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

/// The start-up dump of a warm start: a dump entry filled before a change
/// whose notification was queued (and cached) first changes nothing.
#[test]
fn a_dump_entry_older_than_a_cached_notification_changes_nothing() {
    let mut w = restored(&[("a:10.0.0.1", 1), ("a:10.0.0.2", 2)]);
    w.begin_snapshot();
    // .1 moved to MAC 5 and .2 was deleted; the dump message listing both
    // as they were arrives after those notifications.
    w.insert(set("a:10.0.0.1", 5));
    w.insert(del("a:10.0.0.2"));
    w.insert_listed(set("a:10.0.0.1", 1));
    w.insert_listed(set("a:10.0.0.2", 2));
    w.insert_listed(set("a:10.0.0.3", 3));
    assert_eq!(w.end_snapshot(), 0);
    assert_eq!(w.state("a:10.0.0.1"), Some(CacheState::New));
    assert_eq!(w.state("a:10.0.0.2"), Some(CacheState::Delete));
    let mut writer = NeighWriter::new();
    let ops = w.finish(&mut writer);
    assert_eq!(ops.dels, vec!["a:10.0.0.2".to_owned()]);
    let sets: Vec<(&str, &str)> = ops
        .sets
        .iter()
        .map(|(k, f)| (k.as_str(), f[0].1.as_str()))
        .collect();
    assert_eq!(
        sets,
        vec![
            ("a:10.0.0.1", "02:00:00:00:00:05"),
            ("a:10.0.0.3", "02:00:00:00:00:03")
        ]
    );
}
