//! The native syslog output against a real rsyslogd (private instance, see
//! `rsyslog/mod.rs`) and CONFIG_DB `LOGGER` on a real redis-server: each
//! line arrives with the program tag (no PID, as swss::Logger's syslog(3)),
//! facility user and the priority of its level, with no timestamp or level
//! of our own in the text; DEBUG lines appear only after `LOGLEVEL DEBUG`;
//! `LOGOUTPUT` moves the lines off syslog and back while running; an unknown
//! `LOGOUTPUT` is a warning; a restarted rsyslogd gets the lines again.
//! One test: the process has one global subscriber.

#![allow(clippy::unwrap_used)]

mod rsyslog;

use std::time::{Duration, Instant};

use redis::Commands;
use sonic_daemon::logging::{self, LogLevel, LogOutput, CFG_LOGGER_TABLE_NAME};
use sonic_daemon::Ops;
use swss::{DbConfig, DbConnector, MultiTableSubscriber, PatternScope, SubscribeMode};
use testbed::redis_server::RedisServer;

const IDENT: &str = "testsyncd";

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_reach_rsyslog_with_tag_and_priority_and_follow_logger() {
    let dir = tempfile::Builder::new()
        .prefix("syslog-rsyslogd-")
        .tempdir()
        .unwrap();
    let rs = rsyslog::Rsyslogd::start(dir.path());
    // As `--log-output syslog --syslog-socket <rs>` (`auto` would also
    // depend on what this test's stderr is, see logging::auto_output).
    let (handle, used) =
        logging::init_with_socket(IDENT, None, LogOutput::Syslog, rs.socket.as_path());
    assert_eq!(used, LogOutput::Syslog);
    assert_eq!(handle.output(), LogOutput::Syslog);

    // 1. One line per level at NOTICE (the default): priorities as
    //    swss::Logger's, DEBUG filtered.
    tracing::error!(code = 7, "an error line");
    tracing::warn!(
        key = "PORT|Ethernet0",
        problem = "not a hash",
        "a warning line"
    );
    tracing::info!(ifname = "Ethernet0", flags = 69699u32, "a notice line");
    tracing::debug!("a debug line at NOTICE");
    let last = rs.wait_for(IDENT, "a notice line");
    let mine = rs.lines_of(IDENT);
    let by_text = |t: &str| mine.iter().find(|l| l.msg.contains(t)).cloned();
    let err = by_text("an error line").expect("error line");
    assert_eq!(
        (
            err.severity.as_str(),
            err.facility.as_str(),
            err.tag.as_str()
        ),
        ("err", "user", "testsyncd:"),
        "{err}"
    );
    // The text is ours alone: message then key=value, no time, no level.
    assert_eq!(err.msg, "an error line code=7");
    let warn = by_text("a warning line").expect("warning line");
    assert_eq!(warn.severity, "warning");
    assert_eq!(
        warn.msg,
        "a warning line key=PORT|Ethernet0 problem=\"not a hash\""
    );
    assert_eq!(last.severity, "notice");
    assert_eq!(last.msg, "a notice line ifname=Ethernet0 flags=69699");
    assert!(by_text("a debug line").is_none(), "{}", rs.dump());

    // 2. CONFIG_DB LOGGER, followed as the daemons do (defaults written).
    let server = RedisServer::start().unwrap();
    let config = DbConfig::load(server.db_config_path()).unwrap();
    let cfg = DbConnector::new(config.location("CONFIG_DB").unwrap()).unwrap();
    let mut raw = server.conn(4).unwrap();
    let ops = Ops::new(IDENT, Some(handle.clone()));
    let mut sync = ops.logger_sync(&cfg).await.unwrap().unwrap();
    let mut sub = MultiTableSubscriber::new(
        &cfg,
        &[(CFG_LOGGER_TABLE_NAME, SubscribeMode::Content)],
        PatternScope::Database,
    )
    .await
    .unwrap();
    let follower = tokio::spawn(async move {
        while let Ok((_, op)) = sub.next().await {
            sync.apply(&op, false);
        }
    });
    let out: String = raw.hget("LOGGER|testsyncd", "LOGOUTPUT").unwrap();
    assert_eq!(out, "SYSLOG");
    // What `swssloglevel -l DEBUG -c testsyncd` does.
    let _: () = raw.hset("LOGGER|testsyncd", "LOGLEVEL", "DEBUG").unwrap();
    let changed = rs.wait_for(IDENT, "log level changed");
    assert_eq!(changed.severity, "notice");
    assert!(changed.msg.contains("from=NOTICE to=DEBUG"), "{changed}");
    assert_eq!(handle.level(), LogLevel(tracing::Level::DEBUG));
    tracing::debug!(ip = "10.0.0.2", "a debug line at DEBUG");
    let dbg = rs.wait_for(IDENT, "a debug line at DEBUG");
    assert_eq!(dbg.severity, "debug", "{dbg}");

    // 3. LOGOUTPUT STDERR: announced on syslog, then nothing more there.
    let _: () = raw.hset("LOGGER|testsyncd", "LOGOUTPUT", "STDERR").unwrap();
    let moving = rs.wait_for(IDENT, "log output changing");
    assert!(moving.msg.contains("to=stderr"), "{moving}");
    wait_until("output stderr", || handle.output() == LogOutput::Stderr);
    tracing::warn!("a line while on stderr");
    // 4. An unknown value: a warning (on stderr now), the output kept.
    let _: () = raw.hset("LOGGER|testsyncd", "LOGOUTPUT", "FILE").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handle.output(), LogOutput::Stderr);
    // 5. Back to SYSLOG: the change is the first line seen there again.
    let _: () = raw.hset("LOGGER|testsyncd", "LOGOUTPUT", "SYSLOG").unwrap();
    let back = rs.wait_for(IDENT, "log output changed");
    assert!(back.msg.contains("from=stderr"), "{back}");
    assert_eq!(handle.output(), LogOutput::Syslog);
    let all = rs.dump();
    assert!(!all.contains("a line while on stderr"), "{all}");
    assert!(!all.contains("LOGOUTPUT ignored"), "{all}");
    // An unknown value while on syslog: a warning naming the entry.
    let _: () = raw.hset("LOGGER|testsyncd", "LOGOUTPUT", "FILE").unwrap();
    let bad = rs.wait_for(IDENT, "LOGOUTPUT ignored");
    assert_eq!(bad.severity, "warning", "{bad}");
    assert!(bad.msg.contains("LOGGER|testsyncd"), "{bad}");
    assert_eq!(handle.output(), LogOutput::Syslog);

    // 6. rsyslogd restarts (a new socket at the same path): lines reach the
    //    new one once the writer retries.
    drop(rs);
    std::fs::remove_file(dir.path().join("log.sock")).ok();
    tracing::warn!("a line while rsyslogd is away");
    let rs = rsyslog::Rsyslogd::start(dir.path());
    let start = Instant::now();
    loop {
        tracing::info!("a line after the restart");
        if rs
            .lines_of(IDENT)
            .iter()
            .any(|l| l.msg == "a line after the restart")
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{}", rs.dump());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every line of ours carried the tag without a PID, facility user.
    for l in rs.lines_of(IDENT) {
        assert_eq!(
            (l.tag.as_str(), l.facility.as_str()),
            ("testsyncd:", "user")
        );
    }
    follower.abort();
}
