//! SubscriberStateTable: initial load plus live keyspace changes (BEHAVIOR.md
//! a.7), on CONFIG_DB (`|`) and APPL_DB (`:`).

mod common;

use std::time::Duration;

use common::{fv, Env};
use redis::Commands;
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
