//! Bad entries against a real redis-server: a key of the wrong type (a
//! string where a hash belongs) or a garbage value is reported
//! (`swss::bad_entry`), skipped, and never stops a reader or a writer.

mod common;

use common::{bad, fv, hgetall, Env};
use redis::Commands;
use swss::consumer_view::read_consumer_view;
use swss::warm_restart::{check_warm_start, get_warm_start_timer};
use swss::{KeyOp, ProducerStateTable, SubscriberStateTable};

#[tokio::test]
async fn table_reads_and_writes_skip_wrong_type_keys() {
    let env = Env::start();
    let config = env.connector("CONFIG_DB");
    let mut conn = config.connect().await.unwrap();
    let mut raw = env.raw(4);
    let () = raw.set("BAD_T1|Ethernet0", "x").unwrap();
    let () = raw
        .hset_multiple("BAD_T1|Ethernet4", &[("mtu", "9100")])
        .unwrap();
    let t = config.table("BAD_T1");
    assert_eq!(t.db(), "CONFIG_DB");

    assert_eq!(t.get(&mut conn, "Ethernet0").await.unwrap(), None);
    assert_eq!(t.hget(&mut conn, "Ethernet0", "mtu").await.unwrap(), None);
    let keys = t.keys(&mut conn).await.unwrap();
    assert_eq!(keys, vec!["Ethernet0".to_string(), "Ethernet4".to_string()]);
    assert_eq!(
        t.get_many(&mut conn, &keys, 1).await.unwrap(),
        vec![("Ethernet4".to_string(), fv(&[("mtu", "9100")]))]
    );
    // Writes to it are dropped, not errors; the string is left as it was.
    t.set(&mut conn, "Ethernet0", &[("mtu", "1500")])
        .await
        .unwrap();
    t.hset(&mut conn, "Ethernet0", "mtu", "1500").await.unwrap();
    t.hdel(&mut conn, "Ethernet0", "mtu").await.unwrap();
    let s: String = raw.get("BAD_T1|Ethernet0").unwrap();
    assert_eq!(s, "x");
    // get, hget, get_many, set, hset, hdel: six reports.
    assert_eq!(bad("CONFIG_DB", "BAD_T1"), 6);
}

#[tokio::test]
async fn subscriber_initial_load_and_live_events_skip_wrong_type_keys() {
    let env = Env::start();
    let config = env.connector("CONFIG_DB");
    let mut raw = env.raw(4);
    let () = raw.set("BAD_T2|Ethernet0", "x").unwrap();
    let () = raw.hset("BAD_T2|Ethernet4", "mtu", "9100").unwrap();
    let mut sub = SubscriberStateTable::new(&config, "BAD_T2").await.unwrap();
    assert_eq!(sub.queued(), 1);
    assert_eq!(
        sub.next().await.unwrap(),
        KeyOp::Set("Ethernet4".into(), fv(&[("mtu", "9100")]))
    );
    assert_eq!(bad("CONFIG_DB", "BAD_T2"), 1);
    // A string written at run time is reported and skipped.
    let () = raw.set("BAD_T2|Ethernet12", "y").unwrap();
    // Later good changes still arrive.
    let () = raw.hset("BAD_T2|Ethernet8", "mtu", "1500").unwrap();
    assert_eq!(
        sub.next().await.unwrap(),
        KeyOp::Set("Ethernet8".into(), fv(&[("mtu", "1500")]))
    );
    assert_eq!(bad("CONFIG_DB", "BAD_T2"), 2);
}

#[tokio::test]
async fn warm_start_knobs_of_the_wrong_type_or_garbage_mean_cold_and_default() {
    let env = Env::start();
    let mut state = env.connector("STATE_DB").connect().await.unwrap();
    let mut config = env.connector("CONFIG_DB").connect().await.unwrap();
    let mut raw_state = env.raw(6);
    let mut raw_config = env.raw(4);

    // Knobs that are strings: not enabled; restore_count cannot be written.
    let () = raw_state
        .set("WARM_RESTART_ENABLE_TABLE|system", "x")
        .unwrap();
    let () = raw_state.set("WARM_RESTART_TABLE|badapp1", "x").unwrap();
    let info = check_warm_start(&mut state, '|', "badapp1", "swss", true)
        .await
        .unwrap();
    assert!(!info.warm);
    assert_eq!(bad("STATE_DB", "WARM_RESTART_ENABLE_TABLE"), 1);

    // Enabled, restore_count garbage: cold, and restore_count reset to 0.
    let () = raw_state.del("WARM_RESTART_ENABLE_TABLE|system").unwrap();
    let () = raw_state
        .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
        .unwrap();
    let () = raw_state
        .hset("WARM_RESTART_TABLE|badapp2", "restore_count", "lots")
        .unwrap();
    let info = check_warm_start(&mut state, '|', "badapp2", "swss", true)
        .await
        .unwrap();
    assert!(!info.warm);
    let count: String = raw_state
        .hget("WARM_RESTART_TABLE|badapp2", "restore_count")
        .unwrap();
    assert_eq!(count, "0");

    // A garbage timer is reported and gives the default (None).
    let () = raw_config
        .hset("WARM_RESTART|swss", "badapp3_timer", "abc")
        .unwrap();
    assert_eq!(
        get_warm_start_timer(&mut config, '|', "badapp3", "swss")
            .await
            .unwrap(),
        None
    );
    let () = raw_config
        .hset("WARM_RESTART|swss", "badapp3_timer", "7")
        .unwrap();
    assert_eq!(
        get_warm_start_timer(&mut config, '|', "badapp3", "swss")
            .await
            .unwrap(),
        Some(7)
    );
    assert_eq!(bad("CONFIG_DB", "WARM_RESTART"), 1);
    // restore_count garbage (badapp2) and the string WARM_RESTART_TABLE key
    // (badapp1, not writable) were both reported.
    assert!(bad("STATE_DB", "WARM_RESTART_TABLE") >= 2);
}

#[tokio::test]
async fn consumer_view_is_per_key_atomic_and_skips_wrong_type_keys() {
    let env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut conn = appl.connect().await.unwrap();
    let mut raw = env.raw(0);
    let p = ProducerStateTable::new("BAD_T3", appl.location());
    p.load_scripts(&mut conn).await.unwrap();
    // Consumed a=1; pending: a=2 (SET), b (DEL of a consumed key), c=3 (new).
    let () = raw.hset("BAD_T3:a", "neigh", "1").unwrap();
    let () = raw.hset("BAD_T3:b", "neigh", "9").unwrap();
    p.set(&mut conn, "a", &[("neigh", "2")]).await.unwrap();
    p.del(&mut conn, "b").await.unwrap();
    p.set(&mut conn, "c", &[("neigh", "3")]).await.unwrap();
    let () = raw.set("BAD_T3:d", "garbage").unwrap();
    let view = read_consumer_view(&mut conn, &p, "APPL_DB").await.unwrap();
    assert_eq!(view.len(), 2, "{view:?}");
    assert_eq!(view.get("a"), Some(&fv(&[("neigh", "2")])));
    assert_eq!(view.get("c"), Some(&fv(&[("neigh", "3")])));
    assert_eq!(bad("APPL_DB", "BAD_T3"), 1);
    assert_eq!(hgetall(&mut raw, "BAD_T3:a"), fv(&[("neigh", "1")]));
}
