//! MultiTableSubscriber: several tables of one database on one pubsub
//! connection, with one pattern for the whole database (CONFIG_DB) or one
//! per table (APPL_DB); per table the same ops as a SubscriberStateTable.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{bad, calls, fv, Env};
use redis::Commands;
use swss::{
    KeyOp, MultiTableSubscriber, PatternScope, SubscribeMode, SubscriberStateTable, SwssError,
};

const WAIT: Duration = Duration::from_secs(30);

async fn next(s: &mut MultiTableSubscriber) -> (String, KeyOp) {
    tokio::time::timeout(WAIT, s.next())
        .await
        .expect("an event within 30 s")
        .expect("next")
}

fn op(table: &str, op: KeyOp) -> (String, KeyOp) {
    (table.to_string(), op)
}

fn set(key: &str, pairs: &[(&str, &str)]) -> KeyOp {
    KeyOp::Set(key.into(), fv(pairs))
}

fn del(key: &str) -> KeyOp {
    KeyOp::Del(key.into())
}

/// `PUBSUB NUMPAT`: distinct patterns subscribed by all clients.
fn numpat(raw: &mut redis::Connection) -> i64 {
    redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query(raw)
        .expect("PUBSUB NUMPAT")
}

#[tokio::test]
async fn database_scope_follows_several_config_tables_with_one_pattern() {
    let env = Env::start();
    let cfg = env.connector("CONFIG_DB");
    let mut raw = env.raw(4);
    let _: () = raw
        .hset("PEER_SWITCH|peer", "address_ipv4", "10.1.0.1")
        .unwrap();
    let _: () = raw
        .hset("INTERFACE|Ethernet0", "ipv6_use_link_local_only", "enable")
        .unwrap();
    let _: () = raw
        .hset("INTERFACE|Ethernet0|10.0.0.0/31", "NULL", "NULL")
        .unwrap();
    let _: () = raw.hset("VLAN_INTERFACE|Vlan10", "vrf", "default").unwrap();
    let _: () = raw.hset("DEL_T|a", "f", "v").unwrap();
    let _: () = raw.hset("OTHER|x", "f", "v").unwrap();

    let mut s = MultiTableSubscriber::new(
        &cfg,
        &[
            ("PEER_SWITCH", SubscribeMode::Content),
            ("INTERFACE", SubscribeMode::Content),
            ("VLAN_INTERFACE", SubscribeMode::Presence),
            ("DEL_T", SubscribeMode::Deletions),
        ],
        PatternScope::Database,
    )
    .await
    .unwrap();
    assert_eq!(s.patterns(), ["__keyspace@4__:*".to_string()]);
    assert_eq!(numpat(&mut raw), 1);
    let tables: Vec<_> = s
        .tables()
        .map(|(t, m)| (t.name().to_string(), t.separator(), m))
        .collect();
    assert_eq!(
        tables,
        vec![
            ("PEER_SWITCH".to_string(), '|', SubscribeMode::Content),
            ("INTERFACE".to_string(), '|', SubscribeMode::Content),
            ("VLAN_INTERFACE".to_string(), '|', SubscribeMode::Presence),
            ("DEL_T".to_string(), '|', SubscribeMode::Deletions),
        ]
    );

    // Initial load in table order (keys sorted within a table), content
    // also in Presence mode, nothing of the Deletions table or of others.
    assert_eq!(s.queued(), 4);
    assert_eq!(
        s.drain_queued(),
        vec![
            op("PEER_SWITCH", set("peer", &[("address_ipv4", "10.1.0.1")])),
            op(
                "INTERFACE",
                set("Ethernet0", &[("ipv6_use_link_local_only", "enable")])
            ),
            op(
                "INTERFACE",
                set("Ethernet0|10.0.0.0/31", &[("NULL", "NULL")])
            ),
            op("VLAN_INTERFACE", set("Vlan10", &[("vrf", "default")])),
        ]
    );
    assert_eq!(s.queued(), 0);

    // Other tables, the bare table name and other DBs: dropped unread.
    let hgetall0 = calls(&mut raw, "hgetall");
    let hlen0 = calls(&mut raw, "hlen");
    let _: () = raw.hset("OTHER|x", "f", "w").unwrap();
    let _: () = raw.hset("INTERFACE", "f", "w").unwrap();
    let _: () = raw.hset("INTERFACE_X|Ethernet0", "f", "w").unwrap();
    let _: () = raw.hset("XINTERFACE|Ethernet0", "f", "w").unwrap();
    let mut raw0 = env.raw(0);
    let _: () = raw0.hset("INTERFACE|Ethernet0", "f", "w").unwrap();
    // Presence: a field-less Set without a read.
    let _: () = raw.hset("VLAN_INTERFACE|Vlan20", "vrf", "red").unwrap();
    assert_eq!(next(&mut s).await, op("VLAN_INTERFACE", set("Vlan20", &[])));
    // Deletions: hash writes skipped unread, removals reported.
    let _: () = raw.hset("DEL_T|b", "f", "v").unwrap();
    let _: () = raw.del("DEL_T|a").unwrap();
    assert_eq!(next(&mut s).await, op("DEL_T", del("a")));
    assert_eq!(calls(&mut raw, "hgetall"), hgetall0);
    assert_eq!(calls(&mut raw, "hlen"), hlen0);

    // Content: the full hash (fields cut at '@'), Del on del, and one Del
    // for an hdel of the last field.
    let _: () = raw
        .hset_multiple(
            "INTERFACE|Ethernet0",
            &[("ipv6_use_link_local_only", "disable"), ("a@b", "1")],
        )
        .unwrap();
    assert_eq!(
        next(&mut s).await,
        op(
            "INTERFACE",
            set(
                "Ethernet0",
                &[("ipv6_use_link_local_only", "disable"), ("a", "1")]
            )
        )
    );
    let _: () = raw.hdel("PEER_SWITCH|peer", "address_ipv4").unwrap();
    assert_eq!(next(&mut s).await, op("PEER_SWITCH", del("peer")));
    let _: () = raw.del("INTERFACE|Ethernet0").unwrap();
    assert_eq!(next(&mut s).await, op("INTERFACE", del("Ethernet0")));
    let _: () = raw.del("VLAN_INTERFACE|Vlan10").unwrap();
    assert_eq!(next(&mut s).await, op("VLAN_INTERFACE", del("Vlan10")));
}

#[tokio::test]
async fn per_table_scope_on_appl_db() {
    let env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut raw = env.raw(0);
    let _: () = raw.hset("PORT_TABLE:Ethernet0", "mtu", "9100").unwrap();

    let mut s = MultiTableSubscriber::new(
        &appl,
        &[
            ("PORT_TABLE", SubscribeMode::Presence),
            ("NEIGH_TABLE", SubscribeMode::Content),
        ],
        PatternScope::PerTable,
    )
    .await
    .unwrap();
    assert_eq!(
        s.patterns(),
        [
            "__keyspace@0__:PORT_TABLE:*".to_string(),
            "__keyspace@0__:NEIGH_TABLE:*".to_string()
        ]
    );
    assert_eq!(numpat(&mut raw), 2);
    assert_eq!(
        next(&mut s).await,
        op("PORT_TABLE", set("Ethernet0", &[("mtu", "9100")]))
    );

    // The producer's state hashes and key sets are not entries.
    let _: () = raw.hset("_NEIGH_TABLE:Vlan10:10.0.0.1", "f", "v").unwrap();
    let _: () = raw.sadd("NEIGH_TABLE_KEY_SET", "Vlan10:10.0.0.1").unwrap();
    let _: () = raw
        .hset_multiple(
            "NEIGH_TABLE:Vlan10:10.0.0.1",
            &[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")],
        )
        .unwrap();
    assert_eq!(
        next(&mut s).await,
        op(
            "NEIGH_TABLE",
            set(
                "Vlan10:10.0.0.1",
                &[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")]
            )
        )
    );
    let _: () = raw.hset("PORT_TABLE:Ethernet4", "mtu", "1500").unwrap();
    assert_eq!(next(&mut s).await, op("PORT_TABLE", set("Ethernet4", &[])));
    let _: () = raw.del("NEIGH_TABLE:Vlan10:10.0.0.1").unwrap();
    assert_eq!(
        next(&mut s).await,
        op("NEIGH_TABLE", del("Vlan10:10.0.0.1"))
    );
}

/// The same writes seen by one SubscriberStateTable per table and by one
/// MultiTableSubscriber (both scopes): per table, the same ops in the same
/// order. Every write is made before anything is read, so each read sees
/// the final state whichever subscriber makes it.
#[tokio::test]
async fn per_table_the_same_ops_as_one_subscriber_per_table() {
    let env = Env::start();
    let cfg = env.connector("CONFIG_DB");
    let mut raw = env.raw(4);
    let _: () = raw.hset("EQ_A|k0", "f", "v0").unwrap();
    let _: () = raw.hset("EQ_B|k0", "f", "v0").unwrap();
    let _: () = raw.hset("EQ_C|k0", "f", "v0").unwrap();
    let _: () = raw.set("EQ_A|str0", "x").unwrap();
    for t in ["EQ_A", "EQ_B", "EQ_C"] {
        let _: () = raw.hset(format!("{t}|end"), "f", "v").unwrap();
    }
    let specs = [
        ("EQ_A", SubscribeMode::Content),
        ("EQ_B", SubscribeMode::Presence),
        ("EQ_C", SubscribeMode::Deletions),
    ];
    let mut singles = Vec::new();
    for (t, m) in specs {
        singles.push((
            t,
            SubscriberStateTable::with_mode(&cfg, t, m).await.unwrap(),
        ));
    }
    let mut db = MultiTableSubscriber::new(&cfg, &specs, PatternScope::Database)
        .await
        .unwrap();
    let mut per = MultiTableSubscriber::new(&cfg, &specs, PatternScope::PerTable)
        .await
        .unwrap();
    // Four patterns: three per-table (shared by the singles and `per`) and
    // the database one.
    assert_eq!(numpat(&mut raw), 4);

    for t in ["EQ_A", "EQ_B", "EQ_C"] {
        for i in 1..4 {
            let k = format!("{t}|k{i}");
            let _: () = raw.hset(&k, "f", format!("v{i}")).unwrap();
            let _: () = raw.hset(&k, "g@x", "w").unwrap();
        }
        let _: () = raw.hdel(format!("{t}|k1"), "g@x").unwrap();
        let _: () = raw.hdel(format!("{t}|k1"), "f").unwrap();
        let _: i64 = raw.hincr(format!("{t}|k2"), "n", 5).unwrap();
        let _: () = raw.expire(format!("{t}|k2"), 1000).unwrap();
        let _: () = raw.persist(format!("{t}|k2")).unwrap();
        let _: () = raw.rename(format!("{t}|k3"), format!("{t}|k4")).unwrap();
        let _: () = raw.del(format!("{t}|k0")).unwrap();
        let _: () = raw.set(format!("{t}|str1"), "y").unwrap();
        let _: () = raw.hset(format!("{t}|k5"), "f", "v5").unwrap();
        let _: () = raw.del(format!("{t}|k5")).unwrap();
        // Another table of the DB between the writes.
        let _: () = raw.hset(format!("{t}X|k0"), "f", "v").unwrap();
    }
    // Sentinels: the delete of a key that existed before subscribing is
    // exactly one `Del(end)` in every mode.
    for t in ["EQ_A", "EQ_B", "EQ_C"] {
        let _: () = raw.del(format!("{t}|end")).unwrap();
    }

    let end = del("end");
    let mut want: BTreeMap<String, Vec<KeyOp>> = BTreeMap::new();
    for (t, s) in &mut singles {
        let ops = want.entry(t.to_string()).or_default();
        loop {
            let o = tokio::time::timeout(WAIT, s.next())
                .await
                .expect("an event within 30 s")
                .expect("next");
            ops.push(o.clone());
            if o == end {
                break;
            }
        }
    }
    assert!(want["EQ_A"].len() > 10, "{want:?}");
    assert!(want["EQ_C"].iter().all(|o| matches!(o, KeyOp::Del(_))));
    for multi in [&mut db, &mut per] {
        let mut got: BTreeMap<String, Vec<KeyOp>> = BTreeMap::new();
        let mut ended = 0;
        while ended < 3 {
            let (t, o) = next(multi).await;
            if o == end {
                ended += 1;
            }
            got.entry(t).or_default().push(o);
        }
        assert_eq!(got, want);
    }
}

#[tokio::test]
async fn wrong_type_keys_are_reported_and_skipped() {
    let env = Env::start();
    let cfg = env.connector("CONFIG_DB");
    let mut raw = env.raw(4);
    let _: () = raw.set("BAD_M1|Ethernet0", "x").unwrap();
    let _: () = raw.hset("BAD_M1|Ethernet4", "mtu", "9100").unwrap();
    let mut s = MultiTableSubscriber::new(
        &cfg,
        &[
            ("BAD_M1", SubscribeMode::Content),
            ("BAD_M2", SubscribeMode::Presence),
        ],
        PatternScope::Database,
    )
    .await
    .unwrap();
    assert_eq!(
        next(&mut s).await,
        op("BAD_M1", set("Ethernet4", &[("mtu", "9100")]))
    );
    assert_eq!(bad("CONFIG_DB", "BAD_M1"), 1);
    // Live: a string in a Content table (HGETALL) and one in a Presence
    // table (HLEN after the inconclusive `set` event) are skipped.
    let _: () = raw.set("BAD_M1|Ethernet8", "y").unwrap();
    let _: () = raw.set("BAD_M2|Ethernet8", "y").unwrap();
    let _: () = raw.hset("BAD_M2|Ethernet12", "mtu", "1500").unwrap();
    assert_eq!(next(&mut s).await, op("BAD_M2", set("Ethernet12", &[])));
    assert_eq!(bad("CONFIG_DB", "BAD_M1"), 2);
    assert_eq!(bad("CONFIG_DB", "BAD_M2"), 1);
}

#[tokio::test]
async fn empty_or_overlapping_table_lists_are_rejected() {
    let env = Env::start();
    let cfg = env.connector("CONFIG_DB");
    let bad_lists: [&[(&str, SubscribeMode)]; 3] = [
        &[],
        &[
            ("PORT", SubscribeMode::Content),
            ("PORT", SubscribeMode::Deletions),
        ],
        // `A|` starts `A|B|`: a key `A|B|c` would belong to both.
        &[
            ("A", SubscribeMode::Content),
            ("A|B", SubscribeMode::Content),
        ],
    ];
    for tables in bad_lists {
        for scope in [PatternScope::Database, PatternScope::PerTable] {
            let Err(e) = MultiTableSubscriber::new(&cfg, tables, scope).await else {
                panic!("{tables:?} accepted");
            };
            assert!(matches!(e, SwssError::InvalidArgument(_)), "{e}");
            assert!(!e.is_connection_error());
        }
    }
    // Names that only share a beginning are fine.
    let s = MultiTableSubscriber::new(
        &cfg,
        &[
            ("INTERFACE", SubscribeMode::Content),
            ("INTERFACE_X", SubscribeMode::Content),
            ("VLAN_INTERFACE", SubscribeMode::Content),
        ],
        PatternScope::Database,
    )
    .await;
    assert!(s.is_ok());
}

#[tokio::test]
async fn a_closed_subscription_is_a_connection_error() {
    let mut env = Env::start();
    let cfg = env.connector("CONFIG_DB");
    let mut s = MultiTableSubscriber::new(
        &cfg,
        &[
            ("PORT", SubscribeMode::Content),
            ("LOGGER", SubscribeMode::Content),
        ],
        PatternScope::Database,
    )
    .await
    .unwrap();
    env.server.stop().unwrap();
    let e = tokio::time::timeout(WAIT, s.next())
        .await
        .expect("ends within 30 s")
        .unwrap_err();
    assert!(e.is_connection_error(), "{e}");
}
