//! Property: any sequence of producer set/del (single or batched, flushed in
//! pipelines of any length), with full consumer drains in between, leaves
//! APPL_DB exactly as applying the operations one by one to a model, and
//! publishes one `G` per single operation whose key became pending and one
//! per non-empty batch (docs/differences.md S9).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Env;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use swss::{ConsumerStateTable, DbConnector, Op, ProducerStateTable, Table};

#[derive(Debug, Clone)]
enum Step {
    Set(usize, Vec<(usize, u8)>),
    Del(usize),
    BatchSet(Vec<(usize, Vec<(usize, u8)>)>),
    BatchDel(Vec<usize>),
    /// Send what is queued.
    Flush,
    /// Flush, then drain the consumer.
    Pop,
}

const KEYS: [&str; 4] = [
    "Ethernet0:10.0.0.1",
    "Ethernet0:fe80::1",
    "Vlan1000:10.0.0.9",
    "k",
];
const FIELDS: [&str; 3] = ["neigh", "family", "x@y"];

fn fields() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((0..FIELDS.len(), 0u8..3), 1..4)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..KEYS.len(), fields()).prop_map(|(k, f)| Step::Set(k, f)),
        2 => (0..KEYS.len()).prop_map(Step::Del),
        2 => prop::collection::vec((0..KEYS.len(), fields()), 0..4).prop_map(Step::BatchSet),
        1 => prop::collection::vec(0..KEYS.len(), 0..4).prop_map(Step::BatchDel),
        1 => Just(Step::Flush),
        1 => Just(Step::Pop),
    ]
}

fn pairs(f: &[(usize, u8)]) -> Vec<(String, String)> {
    f.iter()
        .map(|(i, v)| (FIELDS[*i].to_string(), format!("v{v}")))
        .collect()
}

/// The model: the consumed table content, per key, in field order.
type Model = BTreeMap<String, Vec<(String, String)>>;

fn model_set(m: &mut Model, key: &str, fvs: &[(String, String)]) {
    let e = m.entry(key.to_string()).or_default();
    for (f, v) in fvs {
        match e.iter_mut().find(|(ef, _)| ef == f) {
            Some(slot) => slot.1 = v.clone(),
            None => e.push((f.clone(), v.clone())),
        }
    }
}

struct Case {
    conn: redis::aio::MultiplexedConnection,
    p: ProducerStateTable,
    consumer: ConsumerStateTable,
    table: Table,
    pipe: redis::Pipeline,
    model: Model,
    /// Keys that became pending since the last drain.
    pending: BTreeSet<String>,
    expected_notifications: u64,
}

impl Case {
    fn touch(&mut self, key: &str) {
        self.pending.insert(key.to_string());
    }

    async fn flush(&mut self) -> Result<(), TestCaseError> {
        self.p
            .flush(&mut self.conn, &self.pipe)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        self.pipe = redis::pipe();
        Ok(())
    }

    async fn drain(&mut self) -> Result<(), TestCaseError> {
        self.flush().await?;
        let popped = self
            .consumer
            .drain()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let popped_keys: BTreeSet<String> = popped.keys().cloned().collect();
        prop_assert_eq!(&popped_keys, &self.pending);
        for (key, ops) in &popped {
            // One pops per key between drains: a single op.
            prop_assert_eq!(ops.len(), 1);
            let op = &ops[0];
            match self.model.get(key) {
                None => prop_assert_eq!(op.op, Op::Del),
                Some(_) => prop_assert_eq!(op.op, Op::Set),
            }
        }
        self.pending.clear();
        // Compare the consumed table with the model (field names as stored).
        for key in KEYS {
            let got: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(self.table.full_key(key))
                .query_async(&mut self.conn)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let want = self.model.get(key).cloned().unwrap_or_default();
            prop_assert_eq!(got, want, "key {}", key);
        }
        Ok(())
    }
}

async fn run(connector: &DbConnector, table: &str, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let fail = |e: swss::SwssError| TestCaseError::fail(e.to_string());
    let mut conn = connector.connect().await.map_err(fail)?;
    // Scripts loaded first, as the daemons do at start-up: this model
    // counts one `G` per script that adds a key and per batch, which a
    // NOSCRIPT replay would change (replayed batch transactions publish
    // again, docs/differences.md S9); the replay has its own test in
    // producer.rs.
    ProducerStateTable::load_scripts(
        &ProducerStateTable::new(table, connector.location()),
        &mut conn,
    )
    .await
    .map_err(fail)?;
    let consumer = ConsumerStateTable::new(connector, table, 2)
        .await
        .map_err(fail)?;
    let mut c = Case {
        conn,
        p: ProducerStateTable::new(table, connector.location()),
        consumer,
        table: Table::new(table, connector.separator()),
        pipe: redis::pipe(),
        model: Model::new(),
        pending: BTreeSet::new(),
        expected_notifications: 0,
    };
    for s in steps {
        match s {
            Step::Set(k, f) => {
                let fvs = pairs(&f);
                c.p.queue_set(&mut c.pipe, KEYS[k], &fvs);
                if !c.pending.contains(KEYS[k]) {
                    c.expected_notifications += 1;
                }
                c.touch(KEYS[k]);
                model_set(&mut c.model, KEYS[k], &fvs);
            }
            Step::Del(k) => {
                c.p.queue_del(&mut c.pipe, KEYS[k]);
                if !c.pending.contains(KEYS[k]) {
                    c.expected_notifications += 1;
                }
                c.touch(KEYS[k]);
                c.model.remove(KEYS[k]);
            }
            Step::BatchSet(entries) => {
                let entries: Vec<(String, Vec<(String, String)>)> = entries
                    .iter()
                    .map(|(k, f)| (KEYS[*k].to_string(), pairs(f)))
                    .collect();
                c.p.queue_batch_set(&mut c.pipe, &entries);
                // A non-empty batch publishes once, even if every key was
                // pending already (docs/differences.md S9).
                if !entries.is_empty() {
                    c.expected_notifications += 1;
                }
                for (k, fvs) in &entries {
                    c.touch(k);
                    model_set(&mut c.model, k, fvs);
                }
            }
            Step::BatchDel(keys) => {
                let keys: Vec<&str> = keys.iter().map(|k| KEYS[*k]).collect();
                c.p.queue_batch_del(&mut c.pipe, &keys);
                if !keys.is_empty() {
                    c.expected_notifications += 1;
                }
                for k in keys {
                    c.touch(k);
                    c.model.remove(k);
                }
            }
            Step::Flush => c.flush().await?,
            Step::Pop => c.drain().await?,
        }
    }
    c.drain().await?;
    let got = c.consumer.sync_notifications().await.map_err(fail)?;
    prop_assert_eq!(got, c.expected_notifications);
    Ok(())
}

#[test]
fn producer_then_pops_equals_the_model() {
    let env = Env::start();
    let connector = env.connector("APPL_DB");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::cell::Cell::new(0u32);
    runner
        .run(&prop::collection::vec(step(), 0..40), |steps| {
            n.set(n.get() + 1);
            // A fresh table per case keeps cases independent on one server.
            let table = format!("NEIGH_TABLE_P{}", n.get());
            rt.block_on(run(&connector, &table, steps))
        })
        .unwrap();
}
