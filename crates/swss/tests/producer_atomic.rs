//! ProducerStateTable batches are atomic for consumers (docs/behavior.md
//! a.4, a.5; docs/differences.md S9): a consumer popping in a loop while the
//! producer flushes a large batch never pops a key whose state hash is not
//! complete, and a DEL-then-SET of the same keys in one flush is seen as a
//! DEL and/or the complete SET, never as a partial SET.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{hgetall, Env};
use swss::{ConsumerStateTable, DbConnector, KeyOpFieldValues, Op, ProducerStateTable};

const KEYS: usize = 5000;

fn key(i: usize) -> String {
    format!(
        "Ethernet{}:10.{}.{}.{}",
        i % 64,
        i >> 16,
        (i >> 8) & 255,
        i & 255
    )
}

/// Three fields per key, the values tagged with `round`. The last value is
/// 4 KiB long so that a batch's commands straddle Redis's 16 KiB reads of
/// the pipeline, giving the consumer many chances to run in between. As a
/// control, a plain pipeline (no transaction) of `SADD` then one `HSET` per
/// field made a consumer like this one pop a partial state hash 5 times in
/// 5,000 keys with 4 KiB values (0-2 times with 1 KiB values), checked by
/// hand. A value above 64 bytes makes Redis store the hash as a hash table,
/// whose field order is not the insertion order: fields are compared sorted
/// here (the order is checked in tests/producer.rs).
fn round_value(round: u32) -> String {
    format!("{round}{}", "x".repeat(4095))
}

fn fields(i: usize, round: u32) -> Vec<(String, String)> {
    vec![
        (
            "neigh".into(),
            format!("02:00:00:{round:02x}:{:02x}:{:02x}", i >> 8 & 255, i & 255),
        ),
        ("family".into(), "IPv4".into()),
        ("round".into(), round_value(round)),
    ]
}

/// `fvs` sorted by field.
fn sorted(fvs: &[(String, String)]) -> Vec<(String, String)> {
    let mut v = fvs.to_vec();
    v.sort();
    v
}

/// Pops with batch 16 in a loop until `done` is set and nothing is pending;
/// returns everything popped in order, and how many keys were popped while
/// the flush was still running.
async fn pop_until_done(
    appl: DbConnector,
    table: &'static str,
    done: Arc<AtomicBool>,
) -> (Vec<KeyOpFieldValues>, usize) {
    let mut c = ConsumerStateTable::new(&appl, table, 16)
        .await
        .expect("consumer");
    let mut all = Vec::new();
    let mut during = 0;
    loop {
        // Read the flag first: an empty pops after it means all was seen.
        let finished = done.load(Ordering::SeqCst);
        let popped = c.pops().await.expect("pops");
        if popped.is_empty() {
            if finished {
                return (all, during);
            }
            tokio::task::yield_now().await;
            continue;
        }
        if !finished {
            during += popped.len();
        }
        all.extend(popped);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_consumer_never_pops_a_partial_batch() {
    const TABLE: &str = "NEIGH_TABLE";
    let env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut conn = appl.connect().await.expect("connect");
    let mut raw = env.raw(0);
    let p = ProducerStateTable::new(TABLE, appl.location());

    // Round 1: 5,000 new keys with 3 fields each, one flush (5 batches).
    let entries: Vec<(String, Vec<(String, String)>)> =
        (0..KEYS).map(|i| (key(i), fields(i, 1))).collect();
    let done = Arc::new(AtomicBool::new(false));
    let consumer = tokio::spawn(pop_until_done(appl.clone(), TABLE, done.clone()));
    // Let the consumer start popping first.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    p.batch_set(&mut conn, &entries).await.expect("batch set");
    done.store(true, Ordering::SeqCst);
    let (popped, during) = consumer.await.expect("consumer task");
    eprintln!("round 1: {during} of {KEYS} keys popped while the flush ran");
    let mut seen = BTreeMap::new();
    for t in &popped {
        assert_eq!(t.op, Op::Set, "{t:?}");
        assert_eq!(t.fvs.len(), 3, "partial state hash popped: {}", t.key);
        *seen.entry(t.key.clone()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), KEYS);
    for (i, (k, fvs)) in entries.iter().enumerate() {
        assert_eq!(seen[k], 1, "{k}");
        if i % 499 == 0 {
            assert_eq!(
                sorted(&hgetall(&mut raw, &format!("{TABLE}:{k}"))),
                sorted(fvs)
            );
        }
    }

    // Round 2: DEL then SET of every key in one pipeline (as neighsyncd's
    // flush_batch sends batch DEL, then batch SET), consumer popping.
    let entries2: Vec<(String, Vec<(String, String)>)> =
        (0..KEYS).map(|i| (key(i), fields(i, 2))).collect();
    let keys: Vec<&str> = entries2.iter().map(|(k, _)| k.as_str()).collect();
    let mut pipe = redis::pipe();
    p.queue_batch_del(&mut pipe, &keys);
    p.queue_batch_set(&mut pipe, &entries2);
    let done = Arc::new(AtomicBool::new(false));
    let consumer = tokio::spawn(pop_until_done(appl.clone(), TABLE, done.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    p.flush(&mut conn, &pipe).await.expect("flush");
    done.store(true, Ordering::SeqCst);
    let (popped, during) = consumer.await.expect("consumer task");
    eprintln!("round 2: {during} pops results while the flush ran");
    let mut last: BTreeMap<String, Op> = BTreeMap::new();
    for t in &popped {
        match t.op {
            Op::Del => assert!(t.fvs.is_empty()),
            Op::Set => {
                // Never a partial hash, never round 1's values.
                assert_eq!(t.fvs.len(), 3, "partial state hash popped: {}", t.key);
                let round = t.fvs.iter().find(|(f, _)| f == "round");
                assert_eq!(round.map(|(_, v)| v), Some(&round_value(2)), "{}", t.key);
            }
        }
        last.insert(t.key.clone(), t.op);
    }
    // Every key ends consumed as SET with round 2's complete fields.
    assert_eq!(last.len(), KEYS);
    assert!(last.values().all(|op| *op == Op::Set));
    for (i, (k, fvs)) in entries2.iter().enumerate() {
        if i % 499 == 0 {
            assert_eq!(
                sorted(&hgetall(&mut raw, &format!("{TABLE}:{k}"))),
                sorted(fvs)
            );
        }
    }
    let pending: usize = redis::cmd("SCARD")
        .arg("NEIGH_TABLE_KEY_SET")
        .query(&mut raw)
        .expect("SCARD");
    assert_eq!(pending, 0);
}
