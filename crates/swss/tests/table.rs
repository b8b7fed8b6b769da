//! Plain Table operations against a real redis-server (docs/behavior.md a.3).

mod common;

use common::{fv, hgetall, Env};
use redis::Commands;
use swss::Table;

#[tokio::test]
async fn set_merges_get_cuts_field_names_hget_cuts_values() {
    let env = Env::start();
    let mut conn = env.connector("STATE_DB").connect().await.unwrap();
    let mut raw = env.raw(6);
    let t = Table::new("PORT_TABLE", '|');

    t.set(&mut conn, "Ethernet0", &[("state", "ok"), ("mtu", "9100")])
        .await
        .unwrap();
    t.set(
        &mut conn,
        "Ethernet0",
        &[("mtu", "1500"), ("admin_status", "up")],
    )
    .await
    .unwrap();
    assert_eq!(
        hgetall(&mut raw, "PORT_TABLE|Ethernet0"),
        fv(&[("state", "ok"), ("mtu", "1500"), ("admin_status", "up")])
    );

    // An empty set sends nothing: no key appears.
    t.set::<_, &str, &str>(&mut conn, "Ethernet4", &[])
        .await
        .unwrap();
    assert!(!raw.exists::<_, bool>("PORT_TABLE|Ethernet4").unwrap());
    assert_eq!(t.get(&mut conn, "Ethernet4").await.unwrap(), None);

    let _: () = raw.hset("PORT_TABLE|Ethernet8", "alias@x", "a@b").unwrap();
    assert_eq!(
        t.get(&mut conn, "Ethernet8").await.unwrap(),
        Some(fv(&[("alias", "a@b")]))
    );
    assert_eq!(
        t.hget(&mut conn, "Ethernet8", "alias@x").await.unwrap(),
        Some("a".into())
    );
    assert_eq!(t.hget(&mut conn, "Ethernet8", "nope").await.unwrap(), None);
    assert_eq!(
        t.hget(&mut conn, "Ethernet99", "alias").await.unwrap(),
        None
    );

    t.hset(&mut conn, "Ethernet8", "speed", "100000")
        .await
        .unwrap();
    t.hdel(&mut conn, "Ethernet8", "alias@x").await.unwrap();
    assert_eq!(
        hgetall(&mut raw, "PORT_TABLE|Ethernet8"),
        fv(&[("speed", "100000")])
    );

    t.del(&mut conn, "Ethernet8").await.unwrap();
    assert!(!raw.exists::<_, bool>("PORT_TABLE|Ethernet8").unwrap());

    // A key of the wrong type reads as absent and is reported as a bad
    // entry (swss::bad_entry), never an error that stops the reader.
    let _: () = raw.set("PORT_TABLE|str", "x").unwrap();
    assert_eq!(t.get(&mut conn, "str").await.unwrap(), None);
    assert!(swss::bad_entry::counts()
        .iter()
        .any(|(_, table, n)| table == "PORT_TABLE" && *n >= 1));
}

#[tokio::test]
async fn keys_scans_only_this_table_and_strips_the_prefix() {
    let env = Env::start();
    let mut conn = env.connector("APPL_DB").connect().await.unwrap();
    let mut raw = env.raw(0);
    for k in [
        "PORT_TABLE:Ethernet0",
        "PORT_TABLE:Ethernet4",
        "PORT_TABLE:a:b",
        "PORT_TABLE_X:Ethernet0",
        "PORT_TABLEX",
        "_PORT_TABLE:Ethernet0",
        "PORT_TABLE",
        "T*[1]:k",
        "TA[1]:other",
        "T*[1]X:no",
    ] {
        let _: () = raw.hset(k, "f", "v").unwrap();
    }
    let t = Table::new("PORT_TABLE", ':');
    assert_eq!(
        t.keys(&mut conn).await.unwrap(),
        ["Ethernet0", "Ethernet4", "a:b"]
    );
    // Glob characters in the table name are matched literally.
    let g = Table::new("T*[1]", ':');
    assert_eq!(g.keys(&mut conn).await.unwrap(), ["k"]);
    assert!(Table::new("NONE", ':')
        .keys(&mut conn)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn keys_follows_the_scan_cursor_over_many_keys() {
    let env = Env::start();
    let mut conn = env.connector("CONFIG_DB").connect().await.unwrap();
    let mut raw = env.raw(4);
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.hset(format!("INTERFACE|Ethernet{i}"), "f", "v")
            .ignore();
        pipe.hset(format!("OTHER|Ethernet{i}"), "f", "v").ignore();
    }
    let _: () = pipe.query(&mut raw).unwrap();
    let keys = Table::new("INTERFACE", '|').keys(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 3000);
    assert!(keys.iter().all(|k| k.starts_with("Ethernet")));
}

/// A Redis busy with a long script answers `BUSY`: not a fault of the
/// request, so it counts as a connection problem (reconnect with backoff,
/// resync), as `LOADING` after a restart and `MASTERDOWN` do.
#[tokio::test]
async fn busy_redis_is_a_connection_error_not_a_bad_request() {
    let env = Env::start();
    let mut raw = env.raw(6);
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg("50")
        .query(&mut raw)
        .unwrap();
    let mut conn = env.connector("STATE_DB").connect().await.unwrap();
    let mut script_conn = env.raw(6);
    let spinner = std::thread::spawn(move || {
        // Runs until SCRIPT KILL; its own error reply is expected.
        let _: redis::RedisResult<()> = redis::cmd("EVAL")
            .arg("while true do end")
            .arg(0)
            .query(&mut script_conn);
    });
    let t = Table::new("PORT_TABLE", '|');
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let err = loop {
        match t.get(&mut conn, "Ethernet0").await {
            Err(e) => break e,
            Ok(_) => {
                assert!(std::time::Instant::now() < deadline, "Redis never got busy");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    assert!(err.to_string().contains("BUSY"), "{err}");
    assert!(err.is_connection_error(), "{err}");
    assert!(!err.is_wrong_type());
    let _: redis::RedisResult<()> = redis::cmd("SCRIPT").arg("KILL").query(&mut raw);
    spinner.join().unwrap();
    assert_eq!(t.get(&mut conn, "Ethernet0").await.unwrap(), None);
}
