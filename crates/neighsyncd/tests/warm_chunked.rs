//! Warm start over more keys than one read chunk, against a real
//! redis-server (docs/behavior.md c.2; crates/neighsyncd/src/warm.rs):
//! APPL_DB `NEIGH_TABLE` holds 2,500 consumed entries; [`warm::restore_table`]
//! streams them (SCAN + pipelined HGETALL, 1,000 keys per chunk) into the
//! compact cache; the kernel's view then changes 10 MACs, deletes 10 keys
//! and adds 10; the reconcile ops are written in pipelines of at most 1,000
//! keys and must be exactly those 30 operations, leaving APPL_DB (once
//! popped as orchagent does) equal to the kernel's table, and the writer's
//! desired table equal to it with nothing pending.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use neighsyncd::sync::{Family, NeighOp};
use neighsyncd::warm::{self, WarmCache};
use neighsyncd::writer::NeighWriter;
use redis::Commands;
use swss::restart_assist::{AppRestartAssist, CacheState, READ_CHUNK, WRITE_CHUNK};
use swss::{ConsumerStateTable, DbConfig, DbConnector, ProducerStateTable};
use testbed::redis_server::RedisServer;

const N: usize = 2_500;

fn key(i: usize) -> String {
    if i % 4 == 3 {
        format!("Ethernet{}:fc00::{:x}", 4 * (i % 8), i + 1)
    } else {
        format!("Ethernet{}:10.0.{}.{}", 4 * (i % 8), i / 250, i % 250 + 1)
    }
}

fn family(i: usize) -> Family {
    if i % 4 == 3 {
        Family::IPv6
    } else {
        Family::IPv4
    }
}

fn mac(i: usize, gen: u8) -> [u8; 6] {
    [2, gen, 0, 0, (i >> 8) as u8, i as u8]
}

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn set(i: usize, gen: u8) -> NeighOp {
    NeighOp::Set {
        key: key(i),
        mac: mac(i, gen),
        family: family(i),
    }
}

#[test]
fn warm_start_over_several_read_chunks_reconciles_exactly() {
    const { assert!(N > 2 * READ_CHUNK && WRITE_CHUNK < N) };
    let server = RedisServer::start().unwrap();
    let cfg = DbConfig::load(server.db_config_path()).unwrap();
    let conn = |db: &str| DbConnector::new(cfg.location(db).unwrap()).unwrap();
    let (appl_db, state_db, config_db) = (conn("APPL_DB"), conn("STATE_DB"), conn("CONFIG_DB"));
    let producer = ProducerStateTable::new("NEIGH_TABLE", appl_db.location());
    let mut sync_appl = server.conn(0).unwrap();
    let mut sync_state = server.conn(6).unwrap();

    // APPL_DB as orchagent left it: consumed hashes only.
    let mut pipe = redis::pipe();
    for i in 0..N {
        let m = mac_text(&mac(i, 1));
        pipe.hset_multiple(
            format!("NEIGH_TABLE:{}", key(i)),
            &[("neigh", m.as_str()), ("family", family(i).as_str())],
        )
        .ignore();
    }
    let () = pipe.query(&mut sync_appl).unwrap();
    let () = sync_state
        .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
        .unwrap();
    let () = sync_state
        .hset("WARM_RESTART_TABLE|neighsyncd", "restore_count", "0")
        .unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ops, writer, expected) = rt.block_on(async {
        let mut state = state_db.connect().await.unwrap();
        let mut config = config_db.connect().await.unwrap();
        let mut appl = appl_db.connect().await.unwrap();
        let assist = warm::check(&mut state, '|', &mut config, '|')
            .await
            .unwrap();
        assert!(assist.is_warm());
        producer.load_scripts(&mut appl).await.unwrap();
        let restored = warm::restore_table(&assist, &mut appl, &mut state, &producer)
            .await
            .unwrap();
        assert!(!restored.flag_set);
        let mut cache: WarmCache = restored.cache;
        assert_eq!(cache.restored(), N);
        assert_eq!(cache.state(&key(0)), Some(CacheState::Stale));

        // The kernel now: 0..10 deleted, 10..20 changed, N..N+10 added.
        let mut expected: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut dump = Vec::new();
        for i in 10..N + 10 {
            let gen = if (10..20).contains(&i) { 2 } else { 1 };
            dump.push(set(i, gen));
            expected.insert(
                key(i),
                (mac_text(&mac(i, gen)), family(i).as_str().to_owned()),
            );
        }
        // The start-up dump, as the core feeds it.
        cache.begin_snapshot();
        for op in dump {
            cache.insert(op);
        }
        assert_eq!(cache.end_snapshot(), 0);
        assert_eq!(cache.present(), N);
        let mut writer = NeighWriter::new();
        let ops = cache.finish(&mut writer);
        let mut done = 0;
        AppRestartAssist::write_reconcile_from(&mut appl, &producer, &ops, 7, &mut done)
            .await
            .unwrap();
        assert_eq!(done, 30);
        (ops, writer, expected)
    });

    let want_dels: Vec<String> = {
        let mut v: Vec<String> = (0..10).map(key).collect();
        v.sort();
        v
    };
    assert_eq!(ops.dels, want_dels);
    let mut want_sets: Vec<String> = (10..20).chain(N..N + 10).map(key).collect();
    want_sets.sort();
    assert_eq!(
        ops.sets.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        want_sets
    );
    let key_set: usize = sync_appl.scard("NEIGH_TABLE_KEY_SET").unwrap();
    let del_set: usize = sync_appl.scard("NEIGH_TABLE_DEL_SET").unwrap();
    assert_eq!((key_set, del_set), (30, 10));

    // Pop as orchagent does; APPL_DB then equals the kernel's table.
    rt.block_on(async {
        let mut consumer = ConsumerStateTable::new(&appl_db, "NEIGH_TABLE", 128)
            .await
            .unwrap();
        let mut popped = 0;
        while popped < 30 {
            popped += consumer.pops().await.unwrap().len();
        }
        assert_eq!(popped, 30);
    });
    let keys: Vec<String> = sync_appl.keys("NEIGH_TABLE:*").unwrap();
    let table: BTreeMap<String, (String, String)> = keys
        .into_iter()
        .map(|k| {
            let fvs: BTreeMap<String, String> = sync_appl.hgetall(&k).unwrap();
            (
                k["NEIGH_TABLE:".len()..].to_owned(),
                (fvs["neigh"].clone(), fvs["family"].clone()),
            )
        })
        .collect();
    assert_eq!(table, expected);

    // The writer holds the same table, clean.
    assert!(!writer.has_pending());
    let desired: BTreeMap<String, (String, String)> = writer
        .desired()
        .into_iter()
        .map(|(k, m, f)| (k, (mac_text(&m), f.as_str().to_owned())))
        .collect();
    assert_eq!(desired, expected);
}

/// The streamed read calls its sink once per non-empty hash, over several
/// SCAN chunks, and leaves out empty and non-hash keys.
#[test]
fn read_table_streams_every_key_once() {
    let server = RedisServer::start().unwrap();
    let cfg = DbConfig::load(server.db_config_path()).unwrap();
    let appl_db = DbConnector::new(cfg.location("APPL_DB").unwrap()).unwrap();
    let producer = ProducerStateTable::new("NEIGH_TABLE", appl_db.location());
    let mut sync_appl = server.conn(0).unwrap();
    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.hset(format!("NEIGH_TABLE:{}", key(i)), "neigh", "x")
            .ignore();
    }
    pipe.set("NEIGH_TABLE:not-a-hash", "v").ignore();
    pipe.hset("NEIGH_TABLE_OTHER:k", "neigh", "x").ignore();
    let () = pipe.query(&mut sync_appl).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut seen = BTreeMap::new();
    let n = rt.block_on(async {
        let mut appl = appl_db.connect().await.unwrap();
        AppRestartAssist::read_table(&mut appl, &producer, 100, |k, fvs| {
            *seen.entry(k).or_insert(0) += 1;
            assert_eq!(fvs, vec![("neigh".to_owned(), "x".to_owned())]);
        })
        .await
        .unwrap()
    });
    assert_eq!(n, N);
    assert_eq!(seen.len(), N);
    assert!(seen.values().all(|c| *c == 1));
    assert!(seen.contains_key(&key(N - 1)));
}
