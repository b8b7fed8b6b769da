//! SubscriberStateTable: initial load plus live keyspace changes (docs/behavior.md
//! a.7), on CONFIG_DB (`|`) and APPL_DB (`:`).

mod common;

use std::time::Duration;

use common::{calls, fv, Env};
use redis::Commands;
use swss::subscriber_state::SubscribeMode;
use swss::{KeyOp, SubscriberStateTable, Table};

async fn next(s: &mut SubscriberStateTable) -> KeyOp {
    tokio::time::timeout(Duration::from_secs(30), s.next())
        .await
        .expect("an event within 30 s")
        .expect("next")
}

#[tokio::test]
async fn config_db_initial_load_then_live_changes() {
    let env = Env::start();
    let cfg = env.connector("CONFIG_DB");
    let mut raw = env.raw(4);
    let _: () = raw
        .hset("VXLAN_EVPN_NVO|nvo1", "source_vtep", "vtep1")
        .unwrap();
    let _: () = raw
        .hset("VXLAN_EVPN_NVO_X|nvo9", "source_vtep", "no")
        .unwrap();
    let _: () = raw.hset("OTHER|nvo1", "f", "v").unwrap();

    let mut s = SubscriberStateTable::new(&cfg, "VXLAN_EVPN_NVO")
        .await
        .unwrap();
    assert_eq!(s.queued(), 1);
    assert_eq!(
        next(&mut s).await,
        KeyOp::Set("nvo1".into(), fv(&[("source_vtep", "vtep1")]))
    );

    // Changes to other tables and other DBs are not reported.
    let _: () = raw.hset("VXLAN_EVPN_NVO_X|nvo9", "f", "v").unwrap();
    let mut raw0 = env.raw(0);
    let _: () = raw0.hset("VXLAN_EVPN_NVO|nvo1", "f", "v").unwrap();

    let _: () = raw
        .hset_multiple(
            "VXLAN_EVPN_NVO|nvo2",
            &[("source_vtep", "vtep2"), ("x@y", "1")],
        )
        .unwrap();
    assert_eq!(
        next(&mut s).await,
        KeyOp::Set("nvo2".into(), fv(&[("source_vtep", "vtep2"), ("x", "1")]))
    );
    let _: () = raw.hdel("VXLAN_EVPN_NVO|nvo2", "x@y").unwrap();
    assert_eq!(
        next(&mut s).await,
        KeyOp::Set("nvo2".into(), fv(&[("source_vtep", "vtep2")]))
    );
    // hdel of the last field: exactly one Del (the hdel event is skipped,
    // the del event that Redis sends next gives the Del).
    let _: () = raw.hdel("VXLAN_EVPN_NVO|nvo2", "source_vtep").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Del("nvo2".into()));
    let _: () = raw.del("VXLAN_EVPN_NVO|nvo1").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Del("nvo1".into()));

    // Expiry: the C++ drops it; we report Del.
    let _: () = raw
        .hset("VXLAN_EVPN_NVO|nvo3", "source_vtep", "vtep3")
        .unwrap();
    assert_eq!(
        next(&mut s).await,
        KeyOp::Set("nvo3".into(), fv(&[("source_vtep", "vtep3")]))
    );
    let _: () = raw.pexpire("VXLAN_EVPN_NVO|nvo3", 1).unwrap();
    assert_eq!(
        next(&mut s).await,
        KeyOp::Set("nvo3".into(), fv(&[("source_vtep", "vtep3")]))
    );
    // Let the expiry time pass, then touch the key so Redis expires it now.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!raw.exists::<_, bool>("VXLAN_EVPN_NVO|nvo3").unwrap());
    assert_eq!(next(&mut s).await, KeyOp::Del("nvo3".into()));

    // A non-hash key in the table is skipped, the feed goes on.
    let _: () = raw.set("VXLAN_EVPN_NVO|str", "x").unwrap();
    let _: () = raw.hset("VXLAN_EVPN_NVO|nvo4", "a", "b").unwrap();
    assert_eq!(
        next(&mut s).await,
        KeyOp::Set("nvo4".into(), fv(&[("a", "b")]))
    );
}

#[tokio::test]
async fn appl_db_table_with_colon_separator() {
    let env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut conn = appl.connect().await.unwrap();
    let t = Table::new("PORT_TABLE", ':');
    t.set(&mut conn, "Ethernet0", &[("admin_status", "up")])
        .await
        .unwrap();
    t.set(&mut conn, "PortConfigDone", &[("count", "1")])
        .await
        .unwrap();

    let mut s = SubscriberStateTable::new(&appl, "PORT_TABLE")
        .await
        .unwrap();
    let mut initial = vec![next(&mut s).await, next(&mut s).await];
    initial.sort_by(|a, b| a.key().cmp(b.key()));
    assert_eq!(
        initial,
        vec![
            KeyOp::Set("Ethernet0".into(), fv(&[("admin_status", "up")])),
            KeyOp::Set("PortConfigDone".into(), fv(&[("count", "1")])),
        ]
    );

    // Producer-side state hashes (_PORT_TABLE:...) and key sets are not entries.
    let p = swss::ProducerStateTable::new("PORT_TABLE", appl.location());
    p.set(&mut conn, "Ethernet4", &[("mtu", "9100")])
        .await
        .unwrap();
    // Keys with the separator inside keep it.
    t.set(&mut conn, "Ethernet4:sub", &[("mtu", "1500")])
        .await
        .unwrap();
    assert_eq!(
        next(&mut s).await,
        KeyOp::Set("Ethernet4:sub".into(), fv(&[("mtu", "1500")]))
    );
    t.del(&mut conn, "Ethernet0").await.unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Del("Ethernet0".into()));
}

#[tokio::test]
async fn a_closed_subscription_is_a_connection_error() {
    let mut env = Env::start();
    let cfg = env.connector("CONFIG_DB");
    let mut s = SubscriberStateTable::new(&cfg, "PORT").await.unwrap();
    env.server.stop().unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), s.next())
        .await
        .expect("ends within 30 s")
        .unwrap_err();
    assert!(e.is_connection_error(), "{e}");
}

#[tokio::test]
async fn presence_mode_reads_only_inconclusive_events() {
    let env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut raw = env.raw(0);
    let _: () = raw
        .hset_multiple(
            "PORT_TABLE:Ethernet0",
            &[("lanes", "0"), ("admin_status", "up")],
        )
        .unwrap();

    let mut s = SubscriberStateTable::with_mode(&appl, "PORT_TABLE", SubscribeMode::Presence)
        .await
        .unwrap();
    assert_eq!(s.mode(), SubscribeMode::Presence);
    // The initial load carries the content, as in the default mode.
    assert_eq!(s.queued(), 1);
    assert_eq!(
        next(&mut s).await,
        KeyOp::Set(
            "Ethernet0".into(),
            fv(&[("lanes", "0"), ("admin_status", "up")])
        )
    );
    let hgetall0 = calls(&mut raw, "hgetall");
    let hlen0 = calls(&mut raw, "hlen");

    // Hash writes: a Set with no fields, one per event, nothing read.
    let _: () = raw.hset("PORT_TABLE:Ethernet4", "lanes", "4").unwrap();
    let _: () = raw.hset("PORT_TABLE:Ethernet4", "speed", "100000").unwrap();
    let _: () = raw.hincr("PORT_TABLE:Ethernet4", "index", 1).unwrap();
    for _ in 0..3 {
        assert_eq!(next(&mut s).await, KeyOp::Set("Ethernet4".into(), vec![]));
    }
    // hdel of one field: nothing; of the last: exactly one Del (from `del`).
    let _: () = raw.hdel("PORT_TABLE:Ethernet0", "lanes").unwrap();
    let _: () = raw.hdel("PORT_TABLE:Ethernet0", "admin_status").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Del("Ethernet0".into()));
    let _: () = raw.del("PORT_TABLE:Ethernet4").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Del("Ethernet4".into()));
    assert_eq!(calls(&mut raw, "hgetall"), hgetall0);
    assert_eq!(calls(&mut raw, "hlen"), hlen0);

    // Inconclusive events read one HLEN: `expire` / `persist` on an
    // existing hash are a Set with no fields.
    let _: () = raw.hset("PORT_TABLE:Ethernet8", "mtu", "9100").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Set("Ethernet8".into(), vec![]));
    let _: () = raw.expire("PORT_TABLE:Ethernet8", 60).unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Set("Ethernet8".into(), vec![]));
    let _: () = raw.persist("PORT_TABLE:Ethernet8").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Set("Ethernet8".into(), vec![]));
    assert_eq!(calls(&mut raw, "hlen"), hlen0 + 2);
    // The expiry is a Del (the `expire` event's HLEN may already find the
    // key gone: then a Set is not reported, and the Del may come twice).
    let _: () = raw.pexpire("PORT_TABLE:Ethernet8", 1).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!raw.exists::<_, bool>("PORT_TABLE:Ethernet8").unwrap());
    let mut op = next(&mut s).await;
    if op == KeyOp::Set("Ethernet8".into(), vec![]) {
        op = next(&mut s).await;
    }
    assert_eq!(op, KeyOp::Del("Ethernet8".into()));
    let hlen0 = hlen0 + 3; // expire, persist, pexpire

    // RENAME: the source is gone (no read), the target read once.
    let _: () = raw.hset("PORT_TABLE:Ethernet12", "mtu", "1500").unwrap();
    let mut op = next(&mut s).await;
    if op == KeyOp::Del("Ethernet8".into()) {
        op = next(&mut s).await; // the second Del of the expiry race
    }
    assert_eq!(op, KeyOp::Set("Ethernet12".into(), vec![]));
    let _: () = raw
        .rename("PORT_TABLE:Ethernet12", "PORT_TABLE:Ethernet16")
        .unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Del("Ethernet12".into()));
    assert_eq!(next(&mut s).await, KeyOp::Set("Ethernet16".into(), vec![]));
    assert_eq!(calls(&mut raw, "hlen"), hlen0 + 1);

    // A non-hash key is a bad entry, skipped; the feed goes on.
    let _: () = raw.set("PORT_TABLE:str", "x").unwrap();
    let _: () = raw.hset("PORT_TABLE:Ethernet20", "a", "b").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Set("Ethernet20".into(), vec![]));
    assert_eq!(calls(&mut raw, "hlen"), hlen0 + 2);
    // Other tables are not reported.
    let _: () = raw.hset("PORT_TABLE_X:Ethernet0", "a", "b").unwrap();
    let _: () = raw.del("PORT_TABLE:Ethernet20").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Del("Ethernet20".into()));
    assert_eq!(calls(&mut raw, "hgetall"), hgetall0);
}

#[tokio::test]
async fn deletions_mode_reports_only_removals() {
    let env = Env::start();
    let state = env.connector("STATE_DB");
    let mut raw = env.raw(6);
    let _: () = raw.hset("PORT_TABLE|Ethernet0", "state", "ok").unwrap();
    let hgetall0 = calls(&mut raw, "hgetall");
    let scan0 = calls(&mut raw, "scan");

    let mut s = SubscriberStateTable::with_mode(&state, "PORT_TABLE", SubscribeMode::Deletions)
        .await
        .unwrap();
    // No initial load at all.
    assert_eq!(s.queued(), 0);
    assert_eq!(calls(&mut raw, "scan"), scan0);

    // Writes (our own HSETs, other daemons' fields, hdel of one field) are
    // skipped without a read; the next thing reported is the removal.
    let _: () = raw
        .hset_multiple(
            "PORT_TABLE|Ethernet0",
            &[("netdev_oper_status", "up"), ("mtu", "9100")],
        )
        .unwrap();
    let _: () = raw.hset("PORT_TABLE|Ethernet4", "state", "ok").unwrap();
    let _: () = raw.hdel("PORT_TABLE|Ethernet0", "mtu").unwrap();
    let _: () = raw.del("PORT_TABLE|Ethernet0").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Del("Ethernet0".into()));
    let hlen0 = calls(&mut raw, "hlen");
    assert_eq!(hlen0, 0);

    // hdel of the last field: one Del (Redis's `del` that follows).
    let _: () = raw.hdel("PORT_TABLE|Ethernet4", "state").unwrap();
    assert_eq!(next(&mut s).await, KeyOp::Del("Ethernet4".into()));

    // `expire` reads one HLEN (still there: nothing), the expiry is a Del
    // (twice when the HLEN already found it gone).
    let _: () = raw.hset("PORT_TABLE|Ethernet8", "state", "ok").unwrap();
    let _: () = raw.pexpire("PORT_TABLE|Ethernet8", 1).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!raw.exists::<_, bool>("PORT_TABLE|Ethernet8").unwrap());
    assert_eq!(next(&mut s).await, KeyOp::Del("Ethernet8".into()));
    assert_eq!(calls(&mut raw, "hlen"), 1);

    // RENAME away is a removal; the target (another table) is not ours.
    let _: () = raw.hset("PORT_TABLE|Ethernet12", "state", "ok").unwrap();
    let _: () = raw
        .rename("PORT_TABLE|Ethernet12", "OTHER|Ethernet12")
        .unwrap();
    let mut op = next(&mut s).await;
    if op == KeyOp::Del("Ethernet8".into()) {
        op = next(&mut s).await;
    }
    assert_eq!(op, KeyOp::Del("Ethernet12".into()));
    assert_eq!(calls(&mut raw, "hgetall"), hgetall0);
}
