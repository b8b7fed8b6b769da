//! CONFIG_DB `LOGGER` against a real redis-server, as the daemons follow
//! it: [`Ops::logger_sync`] writes the defaults and applies the start
//! value, then a [`LoggerSync`] is fed from a CONFIG_DB subscription shared
//! with other tables (one pattern). One test: the process has one global
//! subscriber and so one live handle.

use std::time::{Duration, Instant};

use redis::Commands;
use sonic_daemon::logging::{self, LogLevel, LogOutput, LoggerSync, CFG_LOGGER_TABLE_NAME};
use sonic_daemon::Ops;
use swss::{DbConfig, DbConnector, KeyOp, MultiTableSubscriber, PatternScope, SubscribeMode};
use testbed::redis_server::RedisServer;
use tracing::Level;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn logger_level_follows_config_db_alone_or_on_a_shared_subscription() {
    let server = RedisServer::start().expect("start redis-server");
    let config = DbConfig::load(server.db_config_path()).expect("db config");
    let cfg =
        DbConnector::new(config.location("CONFIG_DB").expect("CONFIG_DB")).expect("connector");
    let mut raw = server.conn(4).expect("raw connection");
    let (handle, _) = logging::init("testsyncd", None, LogOutput::Stderr);
    assert_eq!(handle.level(), LogLevel::DEFAULT);

    // 1. The value CONFIG_DB holds at start is in force once logger_sync
    //    returns (swss::Logger::linkToDbWithOutput), before any
    //    subscription; the missing LOGOUTPUT default is written.
    let _: () = raw
        .hset("LOGGER|testsyncd", "LOGLEVEL", "ERROR")
        .expect("HSET");
    let ops = Ops::new("testsyncd", Some(handle.clone()));
    let mut sync: LoggerSync = ops
        .logger_sync(&cfg)
        .await
        .expect("logger_sync")
        .expect("a LoggerSync with a handle");
    assert_eq!(handle.level(), LogLevel(Level::ERROR));
    let out: String = raw.hget("LOGGER|testsyncd", "LOGOUTPUT").expect("HGET");
    assert_eq!(out, "SYSLOG");

    // 2. One Database-scope subscription carries LOGGER and another table.
    let mut sub = MultiTableSubscriber::new(
        &cfg,
        &[
            ("PEER_SWITCH", SubscribeMode::Content),
            (CFG_LOGGER_TABLE_NAME, SubscribeMode::Content),
        ],
        PatternScope::Database,
    )
    .await
    .expect("subscribe");
    // One pattern for both tables.
    let start = Instant::now();
    loop {
        let numpat: i64 = redis::cmd("PUBSUB")
            .arg("NUMPAT")
            .query(&mut raw)
            .expect("PUBSUB NUMPAT");
        if numpat == 1 {
            break;
        }
        assert!(start.elapsed() < WAIT, "{numpat} patterns");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The initial load at start: the value already in force, nothing
    // changes.
    for (table, op) in sub.drain_queued() {
        assert_eq!(table, CFG_LOGGER_TABLE_NAME);
        assert_eq!(sync.apply(&op, true), None);
    }
    assert_eq!(handle.level(), LogLevel(Level::ERROR));

    // Live changes of another daemon's key, of another table, then ours.
    let _: () = raw
        .hset("LOGGER|otherd", "LOGLEVEL", "DEBUG")
        .expect("HSET");
    let _: () = raw.hset("PEER_SWITCH|peer", "f", "v").expect("HSET");
    let _: () = raw
        .hset("LOGGER|testsyncd", "LOGLEVEL", "WARN")
        .expect("HSET");
    let mut seen = Vec::new();
    loop {
        let (table, op) = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("an event within 30 s")
            .expect("next");
        seen.push((table.clone(), op.key().to_string()));
        if table == CFG_LOGGER_TABLE_NAME {
            if let Some(level) = sync.apply(&op, false) {
                assert_eq!(level, LogLevel(Level::WARN));
                break;
            }
        }
    }
    assert_eq!(
        seen,
        vec![
            ("LOGGER".to_string(), "otherd".to_string()),
            ("PEER_SWITCH".to_string(), "peer".to_string()),
            ("LOGGER".to_string(), "testsyncd".to_string()),
        ]
    );
    assert_eq!(handle.level(), LogLevel(Level::WARN));
    assert_eq!(sub.drain_queued(), Vec::<(String, KeyOp)>::new());
}
