//! ConsumerStateTable: pops results and notifications (docs/behavior.md a.5).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{fv, hgetall, Env};
use swss::consumer_state::merge_task;
use swss::{ConsumerStateTable, KeyOpFieldValues, Op, ProducerStateTable};

fn set(key: &str, pairs: &[(&str, &str)]) -> KeyOpFieldValues {
    KeyOpFieldValues {
        key: key.into(),
        op: Op::Set,
        fvs: fv(pairs),
    }
}

fn del(key: &str) -> KeyOpFieldValues {
    KeyOpFieldValues {
        key: key.into(),
        op: Op::Del,
        fvs: vec![],
    }
}

#[tokio::test]
async fn pops_reports_set_del_and_del_then_set() {
    let env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut conn = appl.connect().await.unwrap();
    let mut raw = env.raw(0);
    let p = ProducerStateTable::new("NEIGH_TABLE", appl.location());
    let mut c = ConsumerStateTable::new(&appl, "NEIGH_TABLE", 128)
        .await
        .unwrap();
    assert_eq!(c.initial_pending(), 0);
    assert!(!c
        .wait_for_notification(Duration::from_millis(50))
        .await
        .unwrap());

    p.set(
        &mut conn,
        "Ethernet0:10.0.0.1",
        &[("neigh", "m1"), ("family", "IPv4")],
    )
    .await
    .unwrap();
    p.set(
        &mut conn,
        "Ethernet0:10.0.0.2",
        &[("neigh", "m2"), ("family", "IPv4")],
    )
    .await
    .unwrap();
    assert!(c
        .wait_for_notification(Duration::from_secs(30))
        .await
        .unwrap());
    assert_eq!(c.sync_notifications().await.unwrap(), 2);
    let mut got = c.pops().await.unwrap();
    got.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        got,
        vec![
            set("Ethernet0:10.0.0.1", &[("neigh", "m1"), ("family", "IPv4")]),
            set("Ethernet0:10.0.0.2", &[("neigh", "m2"), ("family", "IPv4")]),
        ]
    );
    assert!(c.pops().await.unwrap().is_empty());

    // DEL, popped; then SET, popped: orchagent keeps DEL-then-SET.
    p.del(&mut conn, "Ethernet0:10.0.0.1").await.unwrap();
    let mut pending = BTreeMap::new();
    for t in c.pops().await.unwrap() {
        merge_task(&mut pending, t);
    }
    p.set(&mut conn, "Ethernet0:10.0.0.1", &[("neigh", "m3")])
        .await
        .unwrap();
    for t in c.pops().await.unwrap() {
        merge_task(&mut pending, t);
    }
    assert_eq!(
        pending["Ethernet0:10.0.0.1"],
        vec![
            del("Ethernet0:10.0.0.1"),
            set("Ethernet0:10.0.0.1", &[("neigh", "m3")])
        ]
    );
    assert_eq!(
        hgetall(&mut raw, "NEIGH_TABLE:Ethernet0:10.0.0.1"),
        fv(&[("neigh", "m3")])
    );
    assert_eq!(c.sync_notifications().await.unwrap(), 4);
}

#[tokio::test]
async fn drain_merges_several_pops_per_key() {
    let env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut conn = appl.connect().await.unwrap();
    let p = ProducerStateTable::new("PORT_TABLE", appl.location());
    let keys: Vec<String> = (0..10).map(|i| format!("Ethernet{}", i * 4)).collect();
    let entries: Vec<(String, Vec<(String, String)>)> = keys
        .iter()
        .map(|k| (k.clone(), fv(&[("mtu", "9100")])))
        .collect();
    p.batch_set(&mut conn, &entries).await.unwrap();
    p.batch_del(&mut conn, &keys[..3]).await.unwrap();

    // Started late: the pending keys are counted, and a batch of 3 needs
    // several pops.
    let mut c = ConsumerStateTable::new(&appl, "PORT_TABLE", 3)
        .await
        .unwrap();
    assert_eq!(c.initial_pending(), 10);
    let all = c.drain().await.unwrap();
    assert_eq!(all.len(), 10);
    for (i, k) in keys.iter().enumerate() {
        let want = if i < 3 {
            vec![del(k)]
        } else {
            vec![set(k, &[("mtu", "9100")])]
        };
        assert_eq!(all[k], want, "{k}");
    }
}

#[tokio::test]
async fn a_closed_subscription_is_a_connection_error() {
    let mut env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut c = ConsumerStateTable::new(&appl, "PORT_TABLE", 128)
        .await
        .unwrap();
    env.server.stop().unwrap();
    let e = c
        .wait_for_notification(Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(e.is_connection_error(), "{e}");
    let e = c.pops().await.unwrap_err();
    assert!(e.is_connection_error(), "{e}");
}
