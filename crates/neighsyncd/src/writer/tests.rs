//! Unit and property tests of the writer against a model of the
//! ProducerStateTable / ConsumerStateTable Redis protocol (docs/behavior.md a.4,
//! a.5): `T_KEY_SET`, `T_DEL_SET`, the `_T:key` state hashes and the pops
//! script's "wipe if in DEL_SET, then HSET the state fields".

use std::collections::{BTreeSet, HashMap, HashSet};

use proptest::prelude::*;

use super::*;
use crate::compact::parse_canonical_mac;
use sonic_netlink::fmt::mac_to_string;
use swss::ConsumerView;

// ===== test drivers over the production path =====

/// One-call forms of the production sequences, for the tests.
trait Drive {
    /// After a netlink overrun: `snapshot` is every op of a fresh dump; the
    /// kernel's final word per key is staged in first-seen order between
    /// [`NeighWriter::begin_snapshot`] and [`NeighWriter::end_snapshot`].
    fn resync_from_kernel(&mut self, snapshot: impl IntoIterator<Item = NeighOp>) -> ResyncCounts;
    /// [`NeighWriter::begin_cold`] with `view`, every op of `kernel` staged,
    /// then [`NeighWriter::end_snapshot`].
    fn cold_start(
        &mut self,
        view: &ConsumerView,
        kernel: impl IntoIterator<Item = NeighOp>,
    ) -> ResyncCounts;
    /// True between `begin_snapshot` (or `begin_cold`) and `end_snapshot`.
    fn in_snapshot(&self) -> bool;
}

impl Drive for NeighWriter {
    fn resync_from_kernel(&mut self, snapshot: impl IntoIterator<Item = NeighOp>) -> ResyncCounts {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut kernel: Vec<NeighOp> = Vec::new();
        for op in snapshot {
            match index.get(op.key()) {
                Some(&i) => kernel[i] = op,
                None => {
                    index.insert(op.key().to_owned(), kernel.len());
                    kernel.push(op);
                }
            }
        }
        self.begin_snapshot();
        for op in kernel {
            self.stage(op);
        }
        self.end_snapshot()
    }

    fn cold_start(
        &mut self,
        view: &ConsumerView,
        kernel: impl IntoIterator<Item = NeighOp>,
    ) -> ResyncCounts {
        self.begin_cold(view);
        for op in kernel {
            self.stage(op);
        }
        self.end_snapshot()
    }

    fn in_snapshot(&self) -> bool {
        self.snapshot.is_some()
    }
}

// ===== model of the swss-common protocol =====

/// One EVALSHA of a pipeline, applied to the model.
type Script = Box<dyn Fn(&mut Model)>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    /// Consumed `NEIGH_TABLE:<key>` hashes.
    table: HashMap<String, FieldValues>,
    key_set: BTreeSet<String>,
    del_set: HashSet<String>,
    state: HashMap<String, FieldValues>,
    /// ROUTE_TABLE keys deleted, in order.
    route_dels: Vec<String>,
    /// Number of EVALSHA scripts run (commands on the wire).
    scripts: usize,
}

impl Model {
    /// ProducerStateTable set (single or one key of a batch).
    fn set(&mut self, key: &str, fvs: &FieldValues) {
        self.key_set.insert(key.to_owned());
        let e = self.state.entry(key.to_owned()).or_default();
        for (f, v) in fvs {
            merge_field(e, f.clone(), v.clone());
        }
    }

    /// ProducerStateTable del (single or one key of a batch).
    fn del(&mut self, key: &str) {
        self.key_set.insert(key.to_owned());
        self.del_set.insert(key.to_owned());
        self.state.remove(key);
    }

    /// consumer_state_table_pops.lua over every pending key.
    fn pop_all(&mut self) {
        for key in std::mem::take(&mut self.key_set) {
            if self.del_set.remove(&key) {
                self.table.remove(&key);
            }
            let fvs = self.state.remove(&key).unwrap_or_default();
            if !fvs.is_empty() {
                let e = self.table.entry(key).or_default();
                for (f, v) in fvs {
                    merge_field(e, f, v);
                }
            }
        }
    }

    /// Apply the first `scripts` scripts of the batch's pipeline (del, route
    /// del, set; empty parts are not sent).
    fn apply_batch(&mut self, b: &Batch, scripts: usize) {
        let mut parts: Vec<Script> = Vec::new();
        if !b.neigh_dels.is_empty() {
            let dels = b.neigh_dels.clone();
            parts.push(Box::new(move |m: &mut Model| {
                dels.iter().for_each(|k| m.del(k))
            }));
        }
        if !b.route_dels.is_empty() {
            let routes = b.route_dels.clone();
            parts.push(Box::new(move |m: &mut Model| {
                m.route_dels.extend(routes.iter().cloned())
            }));
        }
        if !b.neigh_sets.is_empty() {
            let sets = b.neigh_sets.clone();
            parts.push(Box::new(move |m: &mut Model| {
                sets.iter().for_each(|(k, f)| m.set(k, f))
            }));
        }
        for p in parts.iter().take(scripts) {
            p(self);
            self.scripts += 1;
        }
    }

    fn view(&self) -> ConsumerView {
        let pending: Vec<_> = self
            .state
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let key_set: HashSet<String> = self.key_set.iter().cloned().collect();
        ConsumerView::overlay(
            self.table.iter().map(|(k, v)| (k.clone(), v.clone())),
            pending,
            &key_set,
            &self.del_set,
        )
    }

    /// The table the consumer ends with once it pops everything.
    fn final_table(&self) -> HashMap<String, FieldValues> {
        let mut m = self.clone();
        m.pop_all();
        m.table
    }
}

fn apply_op(m: &mut Model, op: &NeighOp) {
    match op {
        NeighOp::Set { key, .. } => m.set(key, &op.fields()),
        NeighOp::Del { key } => m.del(key),
    }
}

/// Flush everything pending with no failures; returns the number of batches.
fn drain(w: &mut NeighWriter, m: &mut Model, max: usize) -> usize {
    let mut n = 0;
    while let Some(b) = w.take_batch(max) {
        m.apply_batch(&b, 3);
        w.complete(b);
        n += 1;
        assert!(n < 10_000, "writer does not converge");
    }
    assert!(!w.has_pending());
    n
}

fn desired_table(w: &NeighWriter) -> HashMap<String, FieldValues> {
    w.desired()
        .into_iter()
        .map(|(k, mac, family)| {
            (
                k.clone(),
                NeighOp::Set {
                    key: k,
                    mac,
                    family,
                }
                .fields(),
            )
        })
        .collect()
}

// ===== strategies =====

const KEYS: [&str; 6] = [
    "Ethernet0:10.0.0.1",
    "Ethernet0:10.0.0.2",
    "Ethernet4:fc00::1",
    "Ethernet4:fe80::1",
    "Vlan1000:192.168.0.10",
    // not canonical (leading zero): kept verbatim as a raw key
    "Ethernet8:::0a.b",
];
const IFNAMES: [&str; 4] = ["Ethernet0", "Ethernet4", "Vlan1000", "Ethernet8"];
const MACS: [[u8; 6]; 3] = [
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x66],
    [0, 0, 0, 0, 0, 0],
];

fn family_of(key: &str) -> Family {
    if key.matches(':').count() > 1 {
        Family::IPv6
    } else {
        Family::IPv4
    }
}

fn op_strategy() -> impl Strategy<Value = NeighOp> {
    (
        0..KEYS.len(),
        proptest::option::weighted(0.7, 0..MACS.len()),
    )
        .prop_map(|(k, mac)| {
            let key = KEYS[k].to_owned();
            match mac {
                Some(i) => NeighOp::Set {
                    family: family_of(&key),
                    key,
                    mac: MACS[i],
                },
                None => NeighOp::Del { key },
            }
        })
}

#[derive(Debug, Clone)]
enum Action {
    Stage(NeighOp, Option<String>),
    /// Take a batch of this size; apply the first `scripts` of its pipeline;
    /// complete it when `ok`, fail it otherwise.
    Flush {
        max: usize,
        scripts: usize,
        ok: bool,
    },
    Pop,
    RemoveInterface(usize),
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (op_strategy(), proptest::option::weighted(0.2, 0..2usize)).prop_map(|(op, r)| {
            Action::Stage(op, r.map(|i| format!("Vrf{i}:10.0.0.1")))
        }),
        2 => (1..5usize, 0..4usize, proptest::bool::weighted(0.7))
            .prop_map(|(max, scripts, ok)| Action::Flush { max, scripts: if ok { 3 } else { scripts }, ok }),
        1 => Just(Action::Pop),
        1 => (0..IFNAMES.len()).prop_map(Action::RemoveInterface),
    ]
}

/// Sends `b` to the model Redis: whole and acknowledged (`ok`), or only
/// its first `scripts` scripts before the connection failed.
fn write_batch(w: &mut NeighWriter, m: &mut Model, b: Batch, scripts: usize, ok: bool) {
    if ok {
        m.apply_batch(&b, 3);
        w.complete(b);
    } else {
        m.apply_batch(&b, scripts);
        w.fail(b);
    }
}

/// What applying every op one by one (C++ style, one script each) gives.
struct Reference {
    model: Model,
    desired: HashMap<String, NeighOp>,
}

impl Reference {
    fn new() -> Self {
        Reference {
            model: Model::default(),
            desired: HashMap::new(),
        }
    }

    fn apply(&mut self, op: &NeighOp) {
        apply_op(&mut self.model, op);
        match op {
            NeighOp::Set { key, .. } => {
                self.desired.insert(key.clone(), op.clone());
            }
            NeighOp::Del { key } => {
                self.desired.remove(key);
            }
        }
    }

    fn remove_interface(&mut self, ifname: &str) {
        let prefix = format!("{ifname}:");
        let mut keys: Vec<String> = self
            .desired
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        keys.sort();
        for key in keys {
            self.apply(&NeighOp::Del { key });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Coalescing is invisible to the consumer: any op sequence, cut into
    /// arbitrary batches with failures (partial pipelines) and retries,
    /// ends in the same consumer-visible table as one script per op.
    #[test]
    fn coalesced_batches_match_one_by_one(actions in proptest::collection::vec(action_strategy(), 0..60)) {
        let mut w = NeighWriter::new();
        let mut m = Model::default();
        let mut reference = Reference::new();
        let mut routes_staged: BTreeSet<String> = BTreeSet::new();
        for a in &actions {
            match a {
                Action::Stage(op, route) => {
                    reference.apply(op);
                    if w.stage_write(op.clone(), route.clone()) {
                        if let Some(r) = route {
                            routes_staged.insert(r.clone());
                        }
                    }
                }
                Action::Flush { max, scripts, ok } => {
                    if let Some(b) = w.take_batch(*max) {
                        prop_assert!(b.len() <= *max);
                        m.apply_batch(&b, *scripts);
                        if *ok { w.complete(b) } else { w.fail(b) }
                    }
                }
                Action::Pop => m.pop_all(),
                Action::RemoveInterface(i) => {
                    reference.remove_interface(IFNAMES[*i]);
                    w.remove_interface(IFNAMES[*i]);
                }
            }
        }
        drain(&mut w, &mut m, 3);
        prop_assert_eq!(m.final_table(), reference.model.final_table());
        prop_assert_eq!(desired_table(&w), reference.model.final_table());
        // Every route delete that was staged went out.
        let sent: BTreeSet<String> = m.route_dels.iter().cloned().collect();
        prop_assert_eq!(sent, routes_staged);
    }

    /// Once written, same-MAC refreshes (REACHABLE/STALE/DELAY/PROBE flaps)
    /// cost no command at all.
    #[test]
    fn same_mac_flaps_emit_nothing(
        ops in proptest::collection::vec(op_strategy(), 1..30),
        flaps in proptest::collection::vec(0..KEYS.len(), 1..50),
    ) {
        let mut w = NeighWriter::new();
        let mut m = Model::default();
        for op in ops {
            w.stage(op);
        }
        drain(&mut w, &mut m, 4);
        let scripts = m.scripts;
        let desired: HashMap<String, ([u8; 6], Family)> =
            w.desired().into_iter().map(|(k, mac, f)| (k, (mac, f))).collect();
        for i in flaps {
            let key = KEYS[i];
            match desired.get(key) {
                Some((mac, family)) => {
                    let op = NeighOp::Set { key: key.to_owned(), mac: *mac, family: *family };
                    let written = w.stage_write(op, Some("Vrf1:10.0.0.1".into()));
                    prop_assert!(!written);
                }
                None => {
                    let op = NeighOp::Del { key: key.to_owned() };
                    prop_assert!(!w.stage(op));
                }
            }
        }
        prop_assert!(w.take_batch(1024).is_none());
        prop_assert_eq!(m.scripts, scripts);
    }

    /// After a Redis reconnect: whatever APPL_DB holds (consumed and pending
    /// state left by anyone), resync_from_appl plus a flush makes the
    /// consumer-visible table equal the desired one, and the view matches
    /// what the consumer would pop.
    #[test]
    fn resync_from_appl_converges(
        before in proptest::collection::vec((op_strategy(), proptest::bool::ANY), 0..30),
        extra in proptest::collection::vec((0..4usize, 0..3usize), 0..4),
        ops in proptest::collection::vec(op_strategy(), 0..30),
        inflight in proptest::bool::ANY,
    ) {
        let mut m = Model::default();
        for (op, pop) in &before {
            apply_op(&mut m, op);
            if *pop { m.pop_all(); }
        }
        // Foreign fields in consumed hashes.
        for (k, f) in extra {
            m.table.entry(KEYS[k].to_owned()).or_default().push((format!("x{f}"), "y".into()));
        }
        let view = m.view();
        let expected_view: HashMap<String, FieldValues> = m.final_table();
        let got: HashMap<String, FieldValues> = view.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        prop_assert_eq!(got, expected_view);

        let mut w = NeighWriter::new();
        for op in ops { w.stage(op); }
        if inflight {
            // A batch lost with the connection.
            let _ = w.take_batch(2);
        }
        let counts = w.resync_from_appl(&view);
        let n_dirty = w.pending_len();
        prop_assert_eq!(counts.added + counts.changed + counts.removed, n_dirty);
        drain(&mut w, &mut m, 5);
        prop_assert_eq!(m.final_table(), desired_table(&w));
        // A second resync against the result finds nothing to do.
        let again = w.resync_from_appl(&m.view());
        prop_assert_eq!(again, ResyncCounts::default());
        prop_assert!(!w.has_pending());
    }

    /// After ENOBUFS: a fresh dump (complete kernel truth) against what was
    /// written gives exactly the kernel's table.
    #[test]
    fn resync_from_kernel_converges(
        ops in proptest::collection::vec(op_strategy(), 0..30),
        dump in proptest::collection::vec(op_strategy(), 0..30),
    ) {
        let mut w = NeighWriter::new();
        let mut m = Model::default();
        for op in ops { w.stage(op); }
        drain(&mut w, &mut m, 4);
        let mut kernel = Reference::new();
        for op in &dump { kernel.apply(op); }
        let before = desired_table(&w);
        let counts = w.resync_from_kernel(dump.clone());
        drain(&mut w, &mut m, 4);
        let after = kernel.model.final_table();
        prop_assert_eq!(m.final_table(), after.clone());
        let added = after.keys().filter(|k| !before.contains_key(*k)).count();
        let removed = before.keys().filter(|k| !after.contains_key(*k)).count();
        let changed = after.iter().filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v)).count();
        prop_assert_eq!(counts, ResyncCounts { added, changed, removed });
    }

    /// A dump fed as it arrives (mark and sweep), with batches taken,
    /// written, partly written or failed in the middle of it: APPL_DB ends
    /// equal to the kernel's final table, and a key listed with its current
    /// value costs nothing.
    #[test]
    fn streamed_snapshot_with_flushes_converges(
        ops in proptest::collection::vec(op_strategy(), 0..30),
        dump in proptest::collection::vec((op_strategy(), proptest::option::weighted(0.3, (1..4usize, 0..4usize, proptest::bool::weighted(0.7)))), 0..30),
    ) {
        let mut w = NeighWriter::new();
        let mut m = Model::default();
        for op in ops { w.stage(op); }
        drain(&mut w, &mut m, 4);
        let mut kernel = Reference::new();
        w.begin_snapshot();
        for (op, flush) in &dump {
            kernel.apply(op);
            w.stage(op.clone());
            if let Some((max, scripts, ok)) = *flush {
                if let Some(b) = w.take_batch(max) {
                    write_batch(&mut w, &mut m, b, scripts, ok);
                }
            }
        }
        w.end_snapshot();
        prop_assert!(!w.in_snapshot());
        drain(&mut w, &mut m, 4);
        prop_assert_eq!(m.final_table(), kernel.model.final_table());
        prop_assert_eq!(desired_table(&w), kernel.model.final_table());
        // The same dump again changes nothing.
        let scripts = m.scripts;
        w.begin_snapshot();
        for (key, op) in kernel.desired.clone() {
            let _ = key;
            prop_assert!(!w.stage(op));
        }
        prop_assert_eq!(w.end_snapshot(), ResyncCounts::default());
        drain(&mut w, &mut m, 4);
        prop_assert_eq!(m.scripts, scripts);
    }

    /// Cold start fed as the dump arrives, with batches written or failed
    /// in the middle and the dump restarted once: APPL_DB ends equal to
    /// the kernel, every kernel neighbour is SET at least once, APPL_DB
    /// keys the kernel does not list are deleted.
    #[test]
    fn streamed_cold_start_with_flushes_converges(
        before in proptest::collection::vec((op_strategy(), proptest::bool::ANY), 0..30),
        first in proptest::collection::vec(op_strategy(), 0..10),
        dump in proptest::collection::vec((op_strategy(), proptest::option::weighted(0.3, (1..4usize, 0..4usize, proptest::bool::weighted(0.7)))), 0..30),
    ) {
        let mut m = Model::default();
        for (op, pop) in &before {
            apply_op(&mut m, op);
            if *pop { m.pop_all(); }
        }
        m.pop_all();
        let mut w = NeighWriter::new();
        w.begin_cold(&m.view());
        // A first, interrupted dump: its entries stay staged.
        for op in &first { w.stage(op.clone()); }
        w.begin_snapshot();
        let mut kernel = Reference::new();
        let mut sets = HashSet::new();
        for (op, flush) in &dump {
            kernel.apply(op);
            w.stage(op.clone());
            if let Some((max, scripts, ok)) = *flush {
                if let Some(b) = w.take_batch(max) {
                    sets.extend(b.neigh_sets.iter().map(|(k, _)| k.clone()));
                    write_batch(&mut w, &mut m, b, scripts, ok);
                }
            }
        }
        w.end_snapshot();
        while let Some(b) = w.take_batch(3) {
            sets.extend(b.neigh_sets.iter().map(|(k, _)| k.clone()));
            m.apply_batch(&b, 3);
            w.complete(b);
        }
        let expected = kernel.model.final_table();
        prop_assert_eq!(m.final_table(), expected.clone());
        for key in expected.keys() {
            prop_assert!(sets.contains(key), "{} never SET", key);
        }
    }

    /// Cold start: APPL_DB ends equal to the kernel dump, and every kernel
    /// neighbour is SET exactly once.
    #[test]
    fn cold_start_sets_every_kernel_entry_and_deletes_stale(
        before in proptest::collection::vec((op_strategy(), proptest::bool::ANY), 0..30),
        dump in proptest::collection::vec(op_strategy(), 0..30),
    ) {
        let mut m = Model::default();
        for (op, pop) in &before {
            apply_op(&mut m, op);
            if *pop { m.pop_all(); }
        }
        m.pop_all();
        let mut kernel = Reference::new();
        for op in &dump { kernel.apply(op); }
        let mut w = NeighWriter::new();
        w.cold_start(&m.view(), dump.clone());
        let mut sets = Vec::new();
        while let Some(b) = w.take_batch(1024) {
            sets.extend(b.neigh_sets.iter().map(|(k, _)| k.clone()));
            m.apply_batch(&b, 3);
            w.complete(b);
        }
        let expected = kernel.model.final_table();
        prop_assert_eq!(m.final_table(), expected.clone());
        sets.sort();
        let mut want: Vec<String> = expected.keys().cloned().collect();
        want.sort();
        prop_assert_eq!(sets, want);
    }
}

// ===== unit tests =====

fn set(key: &str, mac: [u8; 6]) -> NeighOp {
    NeighOp::Set {
        key: key.to_owned(),
        mac,
        family: family_of(key),
    }
}

fn del(key: &str) -> NeighOp {
    NeighOp::Del {
        key: key.to_owned(),
    }
}

#[test]
fn del_then_set_in_one_burst_is_wiped_then_applied() {
    let mut w = NeighWriter::new();
    let mut m = Model::default();
    w.stage(set("Ethernet0:10.0.0.1", MACS[0]));
    drain(&mut w, &mut m, 16);
    m.pop_all();
    w.stage(del("Ethernet0:10.0.0.1"));
    w.stage(set("Ethernet0:10.0.0.1", MACS[1]));
    assert_eq!(w.pending("Ethernet0:10.0.0.1"), Some(Pending::DelThenSet));
    let b = w.take_batch(16).unwrap();
    assert_eq!(b.neigh_dels, vec!["Ethernet0:10.0.0.1".to_owned()]);
    assert_eq!(
        b.neigh_sets,
        vec![(
            "Ethernet0:10.0.0.1".to_owned(),
            vec![
                ("neigh".to_owned(), "00:11:22:33:44:66".to_owned()),
                ("family".to_owned(), "IPv4".to_owned())
            ]
        )]
    );
    m.apply_batch(&b, 3);
    w.complete(b);
    // On the wire: in DEL_SET (wipe) with the new state hash (apply).
    assert!(m.del_set.contains("Ethernet0:10.0.0.1"));
    assert_eq!(m.state["Ethernet0:10.0.0.1"][0].1, "00:11:22:33:44:66");
}

#[test]
fn set_then_del_of_unwritten_key_costs_nothing() {
    let mut w = NeighWriter::new();
    assert!(w.stage(set("Ethernet0:10.0.0.1", MACS[0])));
    assert!(!w.stage(del("Ethernet0:10.0.0.1")));
    assert!(w.take_batch(16).is_none());
    // A DEL of a key never seen costs nothing either.
    assert!(!w.stage(del("Ethernet99:10.0.0.1")));
    assert!(!w.has_pending());
}

#[test]
fn batches_are_bounded_fifo_and_one_at_a_time() {
    let mut w = NeighWriter::new();
    for i in 0..10 {
        w.stage(set(&format!("Ethernet0:10.0.0.{i}"), MACS[0]));
    }
    let b = w.take_batch(4).unwrap();
    let keys: Vec<_> = b.neigh_sets.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Ethernet0:10.0.0.0",
            "Ethernet0:10.0.0.1",
            "Ethernet0:10.0.0.2",
            "Ethernet0:10.0.0.3"
        ]
    );
    assert!(w.in_flight());
    assert!(w.take_batch(4).is_none(), "only one batch in flight");
    w.complete(b);
    let b = w.take_batch(100).unwrap();
    assert_eq!(b.neigh_sets.len(), 6);
    assert_eq!(b.neigh_sets[0].0, "Ethernet0:10.0.0.4");
}

#[test]
fn route_dels_go_before_the_sets_they_came_with() {
    let mut w = NeighWriter::new();
    w.stage_write(
        set("Ethernet0:10.0.0.1", MACS[0]),
        Some("Vrf-red:10.0.0.1".into()),
    );
    w.stage_write(
        set("Ethernet0:10.0.0.2", MACS[0]),
        Some("Vrf-red:10.0.0.2".into()),
    );
    // Only one key fits: the first route delete, no set yet.
    let b = w.take_batch(1).unwrap();
    assert_eq!(b.route_dels, ["Vrf-red:10.0.0.1"]);
    assert!(b.neigh_sets.is_empty());
    w.complete(b);
    let b = w.take_batch(2).unwrap();
    assert_eq!(b.route_dels, ["Vrf-red:10.0.0.2"]);
    assert_eq!(b.neigh_sets.len(), 1);
    w.complete(b);
    let b = w.take_batch(2).unwrap();
    assert_eq!(b.neigh_sets.len(), 1);
}

#[test]
fn failed_batch_is_retried_under_newer_ops() {
    let mut w = NeighWriter::new();
    let mut m = Model::default();
    w.stage(set("Ethernet0:10.0.0.1", MACS[0]));
    drain(&mut w, &mut m, 16);
    w.stage(del("Ethernet0:10.0.0.1"));
    let b = w.take_batch(16).unwrap();
    // Meanwhile the neighbour comes back with another MAC.
    w.stage(set("Ethernet0:10.0.0.1", MACS[1]));
    w.fail(b);
    assert_eq!(w.pending("Ethernet0:10.0.0.1"), Some(Pending::DelThenSet));
    drain(&mut w, &mut m, 16);
    assert_eq!(
        m.final_table()["Ethernet0:10.0.0.1"][0].1,
        "00:11:22:33:44:66"
    );
}

#[test]
fn remove_interface_deletes_only_that_interface() {
    let mut w = NeighWriter::new();
    let mut m = Model::default();
    w.stage(set("Ethernet0:10.0.0.1", MACS[0]));
    w.stage(set("Ethernet0:fc00::1", MACS[0]));
    w.stage(set("Ethernet4:10.0.0.1", MACS[0]));
    drain(&mut w, &mut m, 16);
    assert_eq!(w.remove_interface("Ethernet0"), 2);
    assert_eq!(w.remove_interface("Ethernet40"), 0);
    let b = w.take_batch(16).unwrap();
    let mut dels = b.neigh_dels.clone();
    dels.sort();
    assert_eq!(dels, ["Ethernet0:10.0.0.1", "Ethernet0:fc00::1"]);
    assert!(b.neigh_sets.is_empty());
}

#[test]
fn appl_entries_with_foreign_fields_are_wiped_and_rewritten() {
    let mut w = NeighWriter::new();
    w.cold_start(&ConsumerView::new(), [set("Ethernet0:10.0.0.1", MACS[0])]);
    let b = w.take_batch(16).unwrap();
    w.complete(b);
    let mut view = ConsumerView::new();
    view.insert(
        "Ethernet0:10.0.0.1",
        vec![
            ("neigh".into(), "00:11:22:33:44:55".into()),
            ("family".into(), "IPv4".into()),
            ("extra".into(), "1".into()),
        ],
    );
    // Uppercase MAC: not what we write, rewritten canonically.
    view.insert(
        "Ethernet0:10.0.0.9",
        vec![
            ("neigh".into(), "00:11:22:33:44:55".into()),
            ("family".into(), "IPv4".into()),
        ],
    );
    let counts = w.resync_from_appl(&view);
    assert_eq!(
        counts,
        ResyncCounts {
            added: 0,
            changed: 1,
            removed: 1
        }
    );
    assert_eq!(w.pending("Ethernet0:10.0.0.1"), Some(Pending::DelThenSet));
    assert_eq!(w.pending("Ethernet0:10.0.0.9"), Some(Pending::Del));
}

/// The self-audit counts only keys that were written and then changed
/// behind the writer's back; a key still waiting to be written differs from
/// APPL_DB for that reason alone, and is re-marked but not counted.
#[test]
fn audit_counts_written_keys_only() {
    let mut w = NeighWriter::new();
    w.cold_start(
        &ConsumerView::new(),
        [
            set("Ethernet0:10.0.0.1", MACS[0]),
            set("Ethernet0:10.0.0.2", MACS[0]),
        ],
    );
    let b = w.take_batch(16).unwrap();
    w.complete(b);
    // Pending, not yet written: a new MAC for .1, a new key .3.
    w.stage(set("Ethernet0:10.0.0.1", MACS[1]));
    w.stage(set("Ethernet0:10.0.0.3", MACS[1]));
    // APPL_DB holds the written .1 but lost .2 (real drift).
    let mut view = ConsumerView::new();
    view.insert(
        "Ethernet0:10.0.0.1",
        vec![
            ("neigh".into(), mac_to_string(&MACS[0])),
            ("family".into(), "IPv4".into()),
        ],
    );
    let counts = w.audit_against_appl(&view);
    assert_eq!(
        counts,
        ResyncCounts {
            added: 1,
            changed: 0,
            removed: 0
        }
    );
    for key in [
        "Ethernet0:10.0.0.1",
        "Ethernet0:10.0.0.2",
        "Ethernet0:10.0.0.3",
    ] {
        assert_eq!(w.pending(key), Some(Pending::Set), "{key}");
    }
}

/// A snapshot counts what the dump changed, not the notifications that
/// arrive while it runs (a self-audit under churn finds no drift).
#[test]
fn snapshot_counts_only_dump_changes() {
    let mut w = NeighWriter::new();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    w.cold_start(&ConsumerView::new(), [set("Ethernet0:10.0.0.1", MACS[0])]);
    let b = w.take_batch(16).unwrap();
    w.complete(b);
    w.begin_snapshot();
    let v4 = Some((MACS[1], Family::IPv4));
    // A notification changes .1 and adds .2; the dump then lists both as
    // they now are, and lists .3 that the daemon missed.
    for (host, origin) in [
        ("10.0.0.1", Origin::Notification),
        ("10.0.0.2", Origin::Notification),
        ("10.0.0.1", Origin::Dump),
        ("10.0.0.2", Origin::Dump),
        ("10.0.0.3", Origin::Dump),
    ] {
        assert!(w.stage_parts("Ethernet0", &ip(host), v4, None, origin));
    }
    assert_eq!(
        w.end_snapshot(),
        ResyncCounts {
            added: 1,
            changed: 0,
            removed: 0
        }
    );
}

/// The audit's kernel drift: a change the dump shows counts only when no
/// notification of that key follows (the kernel may queue the notification
/// after the dump entry that already shows the change).
#[test]
fn suspects_are_dump_changes_no_notification_followed() {
    let mut w = NeighWriter::new();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let v4 = |m: usize| Some((MACS[m], Family::IPv4));
    w.cold_start(
        &ConsumerView::new(),
        [
            set("Ethernet0:10.0.0.1", MACS[0]),
            set("Ethernet0:10.0.0.2", MACS[0]),
            set("Ethernet0:10.0.0.3", MACS[0]),
        ],
    );
    let b = w.take_batch(16).unwrap();
    w.complete(b);
    assert_eq!(w.take_suspects(), 0, "not tracking");
    w.begin_snapshot();
    w.track_suspects();
    // .1: the dump shows a new MAC, its notification follows.
    w.stage_parts("Ethernet0", &ip("10.0.0.1"), v4(1), None, Origin::Dump);
    // .2: the dump shows a new MAC, no notification ever comes (drift).
    w.stage_parts("Ethernet0", &ip("10.0.0.2"), v4(1), None, Origin::Dump);
    // .3 is not listed: swept at the end; its DEL notification follows.
    w.end_snapshot();
    w.stage_parts(
        "Ethernet0",
        &ip("10.0.0.1"),
        v4(1),
        None,
        Origin::Notification,
    );
    w.stage_parts(
        "Ethernet0",
        &ip("10.0.0.3"),
        None,
        None,
        Origin::Notification,
    );
    assert_eq!(w.take_suspects(), 1);
    assert_eq!(w.take_suspects(), 0, "taking stops tracking");
}

#[test]
fn a_dump_entry_older_than_a_notification_already_staged_changes_nothing() {
    // The kernel filled a dump message with MAC 1, then (on another CPU)
    // changed the neighbour to MAC 2 and queued that notification ahead of
    // the dump message; a third key was deleted the same way.
    let mut w = NeighWriter::new();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let v4 = |m: usize| Some((MACS[m], Family::IPv4));
    w.cold_start(
        &ConsumerView::new(),
        [
            set("Ethernet0:10.0.0.1", MACS[1]),
            set("Ethernet0:10.0.0.3", MACS[1]),
        ],
    );
    let b = w.take_batch(16).unwrap();
    w.complete(b);
    w.begin_snapshot();
    w.track_suspects();
    let n = Origin::Notification;
    w.stage_parts("Ethernet0", &ip("10.0.0.1"), v4(2), None, n);
    w.stage_parts("Ethernet0", &ip("10.0.0.3"), None, None, n);
    w.stage_parts("Ethernet0", &ip("10.0.0.1"), v4(1), None, Origin::Dump);
    w.stage_parts("Ethernet0", &ip("10.0.0.3"), v4(1), None, Origin::Dump);
    let c = w.end_snapshot();
    assert_eq!((c.added, c.changed, c.removed), (0, 0, 0));
    assert_eq!(w.take_suspects(), 0, "no drift");
    let b = w.take_batch(16).unwrap();
    // The notifications' values, not the dump's.
    assert_eq!(b.neigh_dels, vec!["Ethernet0:10.0.0.3".to_owned()]);
    assert_eq!(b.neigh_sets.len(), 1);
    assert_eq!(b.neigh_sets[0].0, "Ethernet0:10.0.0.1");
    assert_eq!(w.desired().len(), 1);
    assert_eq!(w.desired()[0].1, MACS[2]);
    w.complete(b);
    // The next snapshot starts afresh: its entries are newer than anything
    // notified before it began.
    w.begin_snapshot();
    assert!(w.stage_parts("Ethernet0", &ip("10.0.0.1"), v4(0), None, Origin::Dump));
    assert_eq!(w.end_snapshot().changed, 1);
}

#[test]
fn mac_text_parsing_is_exact() {
    assert_eq!(
        parse_canonical_mac("00:11:22:aa:bb:cc"),
        Some([0, 0x11, 0x22, 0xaa, 0xbb, 0xcc])
    );
    assert_eq!(parse_canonical_mac("00:11:22:AA:bb:cc"), None);
    assert_eq!(parse_canonical_mac("+a:11:22:aa:bb:cc"), None);
    assert_eq!(parse_canonical_mac("00-11-22-aa-bb-cc"), None);
    assert_eq!(parse_canonical_mac("00:11:22:aa:bb"), None);
    assert_eq!(parse_canonical_mac("00:11:22:aa:bb:cc:dd"), None);
    assert_eq!(parse_canonical_mac("0:11:22:aa:bb:cc"), None);
}

#[test]
fn keys_round_trip_byte_for_byte() {
    let mut w = NeighWriter::new();
    for key in [
        "Ethernet0:::10.0.0.1",
        "Ethernet0:fe80::2e0:ecff:fe3b:d6ac",
        "weird:010.0.0.1",
        "weird:10.0.0.1",
        "weird:10.0.0.01",
        "weird:0.0.0.0",
        "weird:255.255.255.255",
        "Vlan1000:fc02:1000::2",
    ] {
        w.stage(set(key, MACS[0]));
    }
    let b = w.take_batch(16).unwrap();
    let keys: Vec<_> = b.neigh_sets.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Ethernet0:::10.0.0.1",
            "Ethernet0:fe80::2e0:ecff:fe3b:d6ac",
            "weird:010.0.0.1",
            "weird:10.0.0.1",
            "weird:10.0.0.01",
            "weird:0.0.0.0",
            "weird:255.255.255.255",
            "Vlan1000:fc02:1000::2"
        ]
    );
}

#[test]
fn churn_while_nothing_is_taken_keeps_the_queue_bounded() {
    // Redis away (nothing is taken): a neighbour that comes and goes, or
    // flaps between two MACs, must not grow the FIFO with one cancelled
    // slot per cycle for as long as the outage lasts.
    let mut w = NeighWriter::new();
    w.stage(set("Ethernet0:10.0.0.1", [2, 0, 0, 0, 0, 1]));
    let batch = w.take_batch(16).unwrap();
    w.complete(batch);
    for i in 0..100_000u32 {
        w.stage(set("Ethernet0:10.0.0.2", [2, 0, 0, 0, 0, 2]));
        w.stage(del("Ethernet0:10.0.0.2"));
        let mac = if i % 2 == 0 { 3 } else { 1 };
        w.stage(set("Ethernet0:10.0.0.1", [2, 0, 0, 0, 0, mac]));
    }
    assert!(w.queue.len() <= 4096, "queue grew to {}", w.queue.len());
    // What is pending is still exactly the last word per key.
    assert_eq!(w.pending("Ethernet0:10.0.0.2"), None);
    assert_eq!(w.pending("Ethernet0:10.0.0.1"), None);
    let mut m = Model::default();
    assert_eq!(drain(&mut w, &mut m, 16), 0);
}

/// The parts of a key as the daemon hands them to `stage_parts`: any
/// interface name (`:` in it, or empty, included) and an address.
fn parts_strategy() -> impl Strategy<Value = (String, IpAddr, Option<([u8; 6], Family)>)> {
    let name = prop_oneof![
        Just("Ethernet0".to_owned()),
        Just("Vlan1000".to_owned()),
        Just(String::new()),
        Just("a:b".to_owned()),
        Just("fe80".to_owned()),
    ];
    let ip = prop_oneof![
        Just("10.0.0.1".parse::<IpAddr>().unwrap()),
        Just("fc00::1".parse::<IpAddr>().unwrap()),
        Just("::10.0.0.1".parse::<IpAddr>().unwrap()),
        Just("1:2:3:4:5:6:7:8".parse::<IpAddr>().unwrap()),
    ];
    (name, ip, proptest::option::weighted(0.7, 0..MACS.len())).prop_map(|(n, ip, mac)| {
        let set = mac.map(|i| (MACS[i], Family::of(&ip)));
        (n, ip, set)
    })
}

proptest! {
    /// `stage_parts` has exactly the effect of `stage_write` of the op
    /// `decide` builds from the same parts (key `<ifname>:<ip>` text):
    /// same answers, same batches, same desired table.
    #[test]
    fn stage_parts_is_stage_write_of_the_key_text(
        steps in proptest::collection::vec((parts_strategy(), proptest::bool::weighted(0.2)), 0..40),
    ) {
        let mut by_text = NeighWriter::new();
        let mut by_parts = NeighWriter::new();
        for ((ifname, ip, set), flush) in steps {
            let key = neigh_key(&ifname, &ip);
            let route = Some(format!("Vrf1:{}", sonic_netlink::fmt::ip_to_string(&ip)));
            let op = match set {
                Some((mac, family)) => NeighOp::Set { key, mac, family },
                None => NeighOp::Del { key },
            };
            let a = by_text.stage_write(op, route.clone());
            let b = by_parts.stage_parts(&ifname, &ip, set, route, Origin::Dump);
            prop_assert_eq!(a, b);
            if flush {
                let (x, y) = (by_text.take_batch(3), by_parts.take_batch(3));
                prop_assert_eq!(&x, &y);
                if let (Some(x), Some(y)) = (x, y) {
                    by_text.complete(x);
                    by_parts.complete(y);
                }
            }
        }
        prop_assert_eq!(by_text.take_batch(1000), by_parts.take_batch(1000));
        prop_assert_eq!(by_text.desired(), by_parts.desired());
    }
}

/// HSET semantics in the model: replace the field's value in place, or
/// append it.
fn merge_field(fvs: &mut FieldValues, field: String, value: String) {
    match fvs.iter_mut().find(|(f, _)| *f == field) {
        Some(slot) => slot.1 = value,
        None => fvs.push((field, value)),
    }
}
