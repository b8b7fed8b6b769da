//! ProducerStateTable: the raw Redis layout it leaves (docs/behavior.md a.4),
//! checked with plain Redis commands, plus consumption through the pops
//! script (a.5).

mod common;

use std::collections::BTreeSet;

use common::{all_keys, exists, fv, hgetall, smembers, ChannelCounter, Env};
use redis::aio::MultiplexedConnection;
use redis::Commands;
use swss::{ConsumerStateTable, DbConnector, KeyOpFieldValues, Op, ProducerStateTable};

const KEY: &str = "Ethernet8:10.0.0.2";

/// APPL_DB of a fresh redis-server: its connector, an async connection
/// and a plain synchronous connection for checking the raw layout.
struct Appl {
    env: Env,
    appl: DbConnector,
    conn: MultiplexedConnection,
    raw: redis::Connection,
}

impl Appl {
    async fn start() -> Appl {
        let env = Env::start();
        let appl = env.connector("APPL_DB");
        let conn = appl.connect().await.expect("connect APPL_DB");
        let raw = env.raw(0);
        Appl {
            env,
            appl,
            conn,
            raw,
        }
    }
}

fn set_of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn single_set_layout_publish_once_and_merge() {
    let Appl {
        env,
        appl,
        mut conn,
        mut raw,
    } = Appl::start().await;
    let mut chan = ChannelCounter::new(&env.server, "NEIGH_TABLE_CHANNEL@0").await;
    let p = ProducerStateTable::new("NEIGH_TABLE", appl.location());
    p.load_scripts(&mut conn).await.unwrap();

    p.set(
        &mut conn,
        KEY,
        &[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")],
    )
    .await
    .unwrap();
    assert_eq!(smembers(&mut raw, "NEIGH_TABLE_KEY_SET"), set_of(&[KEY]));
    assert_eq!(
        hgetall(&mut raw, "_NEIGH_TABLE:Ethernet8:10.0.0.2"),
        fv(&[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")])
    );
    assert!(!exists(&mut raw, "NEIGH_TABLE_DEL_SET"));
    assert!(!exists(&mut raw, "NEIGH_TABLE:Ethernet8:10.0.0.2"));
    assert_eq!(chan.take(&env.server).await, ["G"]);

    // Still pending: the second set merges field by field and does not publish.
    p.set(&mut conn, KEY, &[("neigh", "aa:bb:cc:dd:ee:ff")])
        .await
        .unwrap();
    assert_eq!(
        hgetall(&mut raw, "_NEIGH_TABLE:Ethernet8:10.0.0.2"),
        fv(&[("neigh", "aa:bb:cc:dd:ee:ff"), ("family", "IPv4")])
    );
    assert!(chan.take(&env.server).await.is_empty());
    assert_eq!(
        all_keys(&mut raw),
        set_of(&["NEIGH_TABLE_KEY_SET", "_NEIGH_TABLE:Ethernet8:10.0.0.2"])
    );

    // The consumer sees the merged state and writes NEIGH_TABLE:<key>.
    let mut consumer = ConsumerStateTable::new(&appl, "NEIGH_TABLE", 128)
        .await
        .unwrap();
    assert_eq!(consumer.initial_pending(), 1);
    assert_eq!(
        consumer.pops().await.unwrap(),
        vec![KeyOpFieldValues {
            key: KEY.into(),
            op: Op::Set,
            fvs: fv(&[("neigh", "aa:bb:cc:dd:ee:ff"), ("family", "IPv4")]),
        }]
    );
    assert_eq!(
        all_keys(&mut raw),
        set_of(&["NEIGH_TABLE:Ethernet8:10.0.0.2"])
    );
    assert_eq!(
        hgetall(&mut raw, "NEIGH_TABLE:Ethernet8:10.0.0.2"),
        fv(&[("neigh", "aa:bb:cc:dd:ee:ff"), ("family", "IPv4")])
    );

    // After the pop the key is new again: the next set publishes again.
    p.set(&mut conn, KEY, &[("neigh", "00:00:00:00:00:01")])
        .await
        .unwrap();
    assert_eq!(chan.take(&env.server).await, ["G"]);
}

#[tokio::test]
async fn del_then_set_before_a_pop_wipes_then_applies() {
    let Appl {
        env,
        appl,
        mut conn,
        mut raw,
    } = Appl::start().await;
    let mut chan = ChannelCounter::new(&env.server, "NEIGH_TABLE_CHANNEL@0").await;
    let p = ProducerStateTable::new("NEIGH_TABLE", appl.location());
    let mut consumer = ConsumerStateTable::new(&appl, "NEIGH_TABLE", 128)
        .await
        .unwrap();

    // Already consumed content with an extra field.
    let _: () = raw
        .hset_multiple(
            "NEIGH_TABLE:Ethernet8:10.0.0.2",
            &[("neigh", "old"), ("extra", "x")],
        )
        .unwrap();

    // No load_scripts: the first flush recovers from NOSCRIPT by itself.
    p.set(&mut conn, KEY, &[("neigh", "m1"), ("family", "IPv4")])
        .await
        .unwrap();
    p.del(&mut conn, KEY).await.unwrap();
    assert_eq!(smembers(&mut raw, "NEIGH_TABLE_KEY_SET"), set_of(&[KEY]));
    assert_eq!(smembers(&mut raw, "NEIGH_TABLE_DEL_SET"), set_of(&[KEY]));
    assert!(!exists(&mut raw, "_NEIGH_TABLE:Ethernet8:10.0.0.2"));

    p.set(&mut conn, KEY, &[("neigh", "m2"), ("family", "IPv4")])
        .await
        .unwrap();
    assert_eq!(smembers(&mut raw, "NEIGH_TABLE_DEL_SET"), set_of(&[KEY]));
    assert_eq!(
        hgetall(&mut raw, "_NEIGH_TABLE:Ethernet8:10.0.0.2"),
        fv(&[("neigh", "m2"), ("family", "IPv4")])
    );
    // Three operations on one pending key: one message.
    assert_eq!(chan.take(&env.server).await, ["G"]);
    assert_eq!(consumer.sync_notifications().await.unwrap(), 1);

    let popped = consumer.pops().await.unwrap();
    assert_eq!(popped.len(), 1);
    assert_eq!(popped[0].op, Op::Set);
    assert_eq!(popped[0].fvs, fv(&[("neigh", "m2"), ("family", "IPv4")]));
    // The old content (with "extra") was wiped before the new fields.
    assert_eq!(
        hgetall(&mut raw, "NEIGH_TABLE:Ethernet8:10.0.0.2"),
        fv(&[("neigh", "m2"), ("family", "IPv4")])
    );
    assert_eq!(
        all_keys(&mut raw),
        set_of(&["NEIGH_TABLE:Ethernet8:10.0.0.2"])
    );

    // A plain del is consumed as DEL and removes the entry.
    p.del(&mut conn, KEY).await.unwrap();
    let popped = consumer.pops().await.unwrap();
    assert_eq!(
        popped,
        vec![KeyOpFieldValues {
            key: KEY.into(),
            op: Op::Del,
            fvs: vec![]
        }]
    );
    assert!(all_keys(&mut raw).is_empty());
}

#[tokio::test]
async fn set_without_fields_only_marks_the_key_pending() {
    let Appl {
        env,
        appl,
        mut conn,
        mut raw,
    } = Appl::start().await;
    let mut chan = ChannelCounter::new(&env.server, "PORT_TABLE_CHANNEL@0").await;
    let p = ProducerStateTable::new("PORT_TABLE", appl.location());
    p.set::<_, &str, &str>(&mut conn, "Ethernet0", &[])
        .await
        .unwrap();
    assert_eq!(all_keys(&mut raw), set_of(&["PORT_TABLE_KEY_SET"]));
    assert_eq!(chan.take(&env.server).await, ["G"]);
    let mut consumer = ConsumerStateTable::new(&appl, "PORT_TABLE", 128)
        .await
        .unwrap();
    let popped = consumer.pops().await.unwrap();
    assert_eq!(popped[0].op, Op::Del);
}

#[tokio::test]
async fn batched_set_and_del_layout_and_single_publish() {
    let Appl {
        env,
        appl,
        mut conn,
        mut raw,
    } = Appl::start().await;
    let mut chan = ChannelCounter::new(&env.server, "ROUTE_TABLE_CHANNEL@0").await;
    let p = ProducerStateTable::new("ROUTE_TABLE", appl.location());
    p.load_scripts(&mut conn).await.unwrap();

    p.set(&mut conn, "10.0.0.0/24", &[("nexthop", "1.1.1.1")])
        .await
        .unwrap();
    assert_eq!(chan.take(&env.server).await, ["G"]);

    let entries: Vec<(String, Vec<(String, String)>)> = vec![
        ("10.0.0.0/24".into(), fv(&[("ifname", "Ethernet0")])),
        (
            "10.0.1.0/24".into(),
            fv(&[("nexthop", "2.2.2.2"), ("ifname", "Ethernet4")]),
        ),
        ("10.0.2.0/24".into(), vec![]),
    ];
    p.batch_set(&mut conn, &entries).await.unwrap();
    assert_eq!(
        smembers(&mut raw, "ROUTE_TABLE_KEY_SET"),
        set_of(&["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"])
    );
    assert_eq!(
        hgetall(&mut raw, "_ROUTE_TABLE:10.0.0.0/24"),
        fv(&[("nexthop", "1.1.1.1"), ("ifname", "Ethernet0")])
    );
    assert_eq!(
        hgetall(&mut raw, "_ROUTE_TABLE:10.0.1.0/24"),
        fv(&[("nexthop", "2.2.2.2"), ("ifname", "Ethernet4")])
    );
    assert!(!exists(&mut raw, "_ROUTE_TABLE:10.0.2.0/24"));
    // Two keys became pending in one script: one message.
    assert_eq!(chan.take(&env.server).await, ["G"]);

    // All keys already pending: a batch (one MULTI/EXEC) still publishes
    // once, unconditionally (docs/differences.md S9; the single-key scripts
    // above and swss-common's batched scripts would not).
    p.batch_set(&mut conn, &[("10.0.1.0/24", vec![("ifname", "Ethernet8")])])
        .await
        .unwrap();
    assert_eq!(chan.take(&env.server).await, ["G"]);
    p.batch_del(&mut conn, &["10.0.0.0/24", "10.0.1.0/24"])
        .await
        .unwrap();
    assert_eq!(chan.take(&env.server).await, ["G"]);
    assert_eq!(
        smembers(&mut raw, "ROUTE_TABLE_DEL_SET"),
        set_of(&["10.0.0.0/24", "10.0.1.0/24"])
    );
    assert!(!exists(&mut raw, "_ROUTE_TABLE:10.0.0.0/24"));
    assert!(!exists(&mut raw, "_ROUTE_TABLE:10.0.1.0/24"));

    // A batch del with one new key publishes once.
    p.batch_del(&mut conn, &["10.0.0.0/24", "10.9.0.0/24", "10.8.0.0/24"])
        .await
        .unwrap();
    assert_eq!(chan.take(&env.server).await, ["G"]);
    assert_eq!(
        smembers(&mut raw, "ROUTE_TABLE_DEL_SET"),
        set_of(&["10.0.0.0/24", "10.0.1.0/24", "10.8.0.0/24", "10.9.0.0/24"])
    );
    // Empty batches send nothing.
    p.batch_del::<_, &str>(&mut conn, &[]).await.unwrap();
    p.batch_set::<_, &str, &str, &str>(&mut conn, &[])
        .await
        .unwrap();
    assert!(chan.take(&env.server).await.is_empty());

    let mut consumer = ConsumerStateTable::new(&appl, "ROUTE_TABLE", 2)
        .await
        .unwrap();
    assert_eq!(consumer.initial_pending(), 5);
    // The batch size bounds one pops.
    assert_eq!(consumer.pops().await.unwrap().len(), 2);
    let rest = consumer.drain().await.unwrap();
    assert_eq!(rest.len(), 3);
    assert!(all_keys(&mut raw).is_empty(), "{:?}", all_keys(&mut raw));
}

#[tokio::test]
async fn one_pipeline_for_several_tables_in_order() {
    let Appl {
        env: _env,
        appl,
        mut conn,
        mut raw,
    } = Appl::start().await;
    let neigh = ProducerStateTable::new("NEIGH_TABLE", appl.location());
    let route = ProducerStateTable::new("ROUTE_TABLE", appl.location());
    let mut pipe = redis::pipe();
    neigh.queue_set(&mut pipe, "Vlan1000:10.0.0.5", &[("neigh", "m1")]);
    route.queue_del(&mut pipe, "10.0.0.5/32");
    neigh.queue_del(&mut pipe, "Vlan1000:10.0.0.5");
    neigh.queue_set(&mut pipe, "Vlan1000:10.0.0.5", &[("neigh", "m2")]);
    neigh.flush(&mut conn, &pipe).await.unwrap();
    assert_eq!(
        smembers(&mut raw, "ROUTE_TABLE_DEL_SET"),
        set_of(&["10.0.0.5/32"])
    );
    assert_eq!(
        smembers(&mut raw, "NEIGH_TABLE_DEL_SET"),
        set_of(&["Vlan1000:10.0.0.5"])
    );
    assert_eq!(
        hgetall(&mut raw, "_NEIGH_TABLE:Vlan1000:10.0.0.5"),
        fv(&[("neigh", "m2")])
    );
}

#[tokio::test]
async fn noscript_after_script_flush_is_recovered_by_resending() {
    let Appl {
        env,
        appl,
        mut conn,
        mut raw,
    } = Appl::start().await;
    let mut chan = ChannelCounter::new(&env.server, "NEIGH_TABLE_CHANNEL@0").await;
    let p = ProducerStateTable::new("NEIGH_TABLE", appl.location());
    p.load_scripts(&mut conn).await.unwrap();
    p.set(&mut conn, "a", &[("f", "1")]).await.unwrap();

    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut raw).unwrap();
    let mut pipe = redis::pipe();
    p.queue_set(&mut pipe, "a", &[("f", "2")]);
    p.queue_batch_set(&mut pipe, &[("b", vec![("f", "1")])]);
    p.queue_batch_del(&mut pipe, &["c"]);
    p.queue_del(&mut pipe, "d");
    p.flush(&mut conn, &pipe).await.unwrap();
    assert_eq!(
        smembers(&mut raw, "NEIGH_TABLE_KEY_SET"),
        set_of(&["a", "b", "c", "d"])
    );
    assert_eq!(
        smembers(&mut raw, "NEIGH_TABLE_DEL_SET"),
        set_of(&["c", "d"])
    );
    assert_eq!(hgetall(&mut raw, "_NEIGH_TABLE:a"), fv(&[("f", "2")]));
    assert_eq!(hgetall(&mut raw, "_NEIGH_TABLE:b"), fv(&[("f", "1")]));
    // The first set of "a", then the flush: the first send ran the two
    // batch transactions (one G each) while both scripts failed; the resend
    // from the set of "a" (already pending: no G) runs both transactions
    // again (one G each, unconditional: docs/differences.md S9) and the
    // del of the new key "d" (one G).
    assert_eq!(chan.take(&env.server).await, ["G"; 6]);
}

#[tokio::test]
async fn error_replies_and_lost_connections_are_reported() {
    let mut env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut conn = appl.connect().await.unwrap();
    let mut raw = env.raw(0);
    let p = ProducerStateTable::new("NEIGH_TABLE", appl.location());
    let _: () = raw.set("NEIGH_TABLE_KEY_SET", "not a set").unwrap();
    let e = p.set(&mut conn, "k", &[("f", "v")]).await.unwrap_err();
    assert!(!e.is_connection_error(), "{e}");
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");

    let mut atomic = redis::pipe();
    atomic.atomic();
    p.queue_del(&mut atomic, "k");
    let e = p.flush(&mut conn, &atomic).await.unwrap_err();
    assert!(matches!(e, swss::SwssError::InvalidArgument(_)), "{e}");

    env.server.stop().unwrap();
    let e = p.set(&mut conn, "k", &[("f", "v")]).await.unwrap_err();
    assert!(e.is_connection_error(), "{e}");

    // After a restart: new connection, empty script cache, recovered by flush.
    env.server.restart().unwrap();
    let mut conn = appl.connect_retrying().await;
    p.set(&mut conn, "k", &[("f", "v")]).await.unwrap();
    let mut raw = env.raw(0);
    assert_eq!(hgetall(&mut raw, "_NEIGH_TABLE:k"), fv(&[("f", "v")]));
}

#[tokio::test]
async fn clear_drops_pending_work_of_this_table_only() {
    let Appl {
        env: _env,
        appl,
        mut conn,
        mut raw,
    } = Appl::start().await;
    let neigh = ProducerStateTable::new("NEIGH_TABLE", appl.location());
    let other = ProducerStateTable::new("NEIGH_TABLE_X", appl.location());
    let _: () = raw
        .hset("NEIGH_TABLE:Ethernet0:10.0.0.1", "neigh", "consumed")
        .unwrap();
    neigh
        .set(&mut conn, "Ethernet0:10.0.0.1", &[("neigh", "m")])
        .await
        .unwrap();
    neigh
        .set(&mut conn, "Ethernet4:10.0.0.3", &[("neigh", "m")])
        .await
        .unwrap();
    neigh.del(&mut conn, "Ethernet8:10.0.0.5").await.unwrap();
    other.set(&mut conn, "k", &[("f", "v")]).await.unwrap();
    other.del(&mut conn, "d").await.unwrap();

    neigh.clear(&mut conn).await.unwrap();
    assert_eq!(
        all_keys(&mut raw),
        set_of(&[
            "NEIGH_TABLE:Ethernet0:10.0.0.1",
            "NEIGH_TABLE_X_KEY_SET",
            "NEIGH_TABLE_X_DEL_SET",
            "_NEIGH_TABLE_X:k",
        ])
    );
    let mut consumer = ConsumerStateTable::new(&appl, "NEIGH_TABLE", 128)
        .await
        .unwrap();
    assert!(consumer.pops().await.unwrap().is_empty());
}
