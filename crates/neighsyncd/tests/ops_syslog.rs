//! The daemons' logs as SONiC reads them: the real binaries log to a real,
//! private rsyslogd (`crates/sonic-daemon/tests/rsyslog/mod.rs`: imuxsock
//! on a temp socket, given with the hidden `--syslog-socket`, and
//! `--log-output syslog`: `auto` keeps stderr when it is a file, as here;
//! ops_supervisord.rs runs `auto` under supervisord's pipe), and
//! each line is checked as loganalyzer and operators' filters see it:
//! program tag (`neighsyncd`, `portsyncd`, `restore_neighbor`, no PID),
//! facility user, severity from the level.
//!
//! * neighsyncd's life: a wrong-type CONFIG_DB key is a warning; DEBUG lines
//!   are absent at NOTICE and present after `LOGGER|neighsyncd LOGLEVEL
//!   DEBUG` (what `swssloglevel -l DEBUG -c neighsyncd` writes); `LOGOUTPUT
//!   STDERR` moves the lines to stderr and `SYSLOG` brings them back, live;
//!   a Redis restart and SIGTERM; no ERR line anywhere.
//! * A system warm reboot (restore with per-interface summaries at NOTICE,
//!   per-neighbour lines only at DEBUG) and a docker warm restart: no ERR.
//! * portsyncd: each Ethernet* link change at NOTICE with its flags (as
//!   linksync.cpp), other netdevs not at NOTICE; a Redis restart and SIGTERM
//!   without ERR; a fatal configuration error of either daemon at ERR.

#![allow(clippy::unwrap_used)]

mod common;
mod ops_common;
#[path = "../../sonic-daemon/tests/rsyslog/mod.rs"]
mod rsyslog;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use redis::Commands;
use rsyslog::{Line, Rsyslogd};
use testbed::daemon::Daemon;
use testbed::netns::{NeighTopology, NetNs};
use testbed::redis_server::RedisServer;

const STATE_DB: u32 = 6;
const CONFIG_DB: u32 = 4;
const WAITING: &str = "warm start: waiting for NEIGH_RESTORE_TABLE|Flags restored=true";

fn private_rsyslogd() -> (tempfile::TempDir, Rsyslogd) {
    let dir = tempfile::Builder::new()
        .prefix("ops-syslog-")
        .tempdir()
        .unwrap();
    let rs = Rsyslogd::start(dir.path());
    (dir, rs)
}

/// `bin --db-config <redis> --log-output syslog --syslog-socket <rs>
/// extra...` in `ns`.
fn start(bin: &Path, ns: &NetNs, redis: &RedisServer, rs: &Rsyslogd, extra: &[&str]) -> Daemon {
    let cfg = redis.db_config_path().to_str().unwrap().to_owned();
    let sock = rs.socket.to_str().unwrap().to_owned();
    let mut args = vec![
        "--db-config",
        cfg.as_str(),
        "--log-output",
        "syslog",
        "--syslog-socket",
        sock.as_str(),
    ];
    args.extend_from_slice(extra);
    Daemon::start(Some(ns), bin, &args).unwrap()
}

/// Every line of `program`: the tag without a PID, facility user; none at
/// ERR or worse.
fn assert_tagged_and_no_err(rs: &Rsyslogd, program: &str) -> Vec<Line> {
    let lines = rs.lines_of(program);
    assert!(!lines.is_empty(), "no {program} lines:\n{}", rs.dump());
    for l in &lines {
        assert_eq!(l.tag, format!("{program}:"), "{l}");
        assert_eq!(l.facility, "user", "{l}");
        assert!(
            !["emerg", "alert", "crit", "err"].contains(&l.severity.as_str()),
            "{program} logged at {}: {l}\n{}",
            l.severity,
            rs.dump()
        );
    }
    lines
}

fn state_field(redis: &RedisServer, field: &str) -> Option<String> {
    let mut c = redis.conn(STATE_DB).unwrap();
    c.hget("WARM_RESTART_TABLE|neighsyncd", field).unwrap()
}

fn wait_state(redis: &RedisServer, want: &str) {
    wait_for(
        &format!("WARM_RESTART_TABLE|neighsyncd state {want}"),
        || (state_field(redis, "state").as_deref() == Some(want)).then_some(()),
    );
}

#[test]
fn neighsyncd_logs_to_rsyslog_by_level_and_follows_logger_live() {
    let (_dir, rs) = private_rsyslogd();
    let mut redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    // A wrong-type key: reported at warning, everything else proceeds.
    let () = redis
        .conn(CONFIG_DB)
        .unwrap()
        .set("INTERFACE|Ethernet0", "x")
        .unwrap();
    let mut d = start(Path::new(BIN), topo.dut(), &redis, &rs, &[]);
    let ready = rs.wait_for("neighsyncd", READY);
    assert_eq!(ready.severity, "notice", "{ready}");
    // The text is the message and its fields: no time or level of ours.
    assert!(ready.msg.starts_with(READY), "{ready}");
    let bad = rs.wait_for("neighsyncd", "unusable database entry");
    assert_eq!(bad.severity, "warning", "{bad}");
    assert!(bad.msg.contains("key=INTERFACE|Ethernet0"), "{bad}");
    // Nothing of it on stderr.
    assert!(!d.log().contains(READY), "{}", d.log());

    // At NOTICE (the default): a neighbour is written, no DEBUG line.
    let mut appl = redis.conn(0).unwrap();
    let add = |ip: &str, mac: &str, appl: &mut redis::Connection| {
        topo.dut().neigh_add("Ethernet0", ip, mac).unwrap();
        wait_pending_set(appl, &format!("Ethernet0:{ip}"), mac, "IPv4");
    };
    add("10.0.0.11", "02:00:00:00:00:11", &mut appl);
    let debug_of = |ip: &str| {
        rs.lines_of("neighsyncd")
            .into_iter()
            .find(|l| l.msg.contains(&format!("Ethernet0:{ip}")))
    };
    assert_eq!(debug_of("10.0.0.11"), None, "{}", rs.dump());
    assert!(
        rs.lines_of("neighsyncd")
            .iter()
            .all(|l| l.severity != "debug"),
        "{}",
        rs.dump()
    );

    // swssloglevel -l DEBUG -c neighsyncd.
    let mut config = redis.conn(CONFIG_DB).unwrap();
    let () = config
        .hset("LOGGER|neighsyncd", "LOGLEVEL", "DEBUG")
        .unwrap();
    let changed = rs.wait_for("neighsyncd", "log level changed");
    assert!(changed.msg.contains("to=DEBUG"), "{changed}");
    add("10.0.0.12", "02:00:00:00:00:12", &mut appl);
    let dbg = wait_for("a DEBUG line of 10.0.0.12", || debug_of("10.0.0.12"));
    assert_eq!(dbg.severity, "debug", "{dbg}");

    // LOGOUTPUT STDERR, live: announced on syslog, then lines on stderr.
    let () = config
        .hset("LOGGER|neighsyncd", "LOGOUTPUT", "STDERR")
        .unwrap();
    let moving = rs.wait_for("neighsyncd", "log output changing");
    assert!(moving.msg.contains("to=stderr"), "{moving}");
    add("10.0.0.13", "02:00:00:00:00:13", &mut appl);
    d.wait_for_log("Ethernet0:10.0.0.13", DEADLINE).unwrap();
    assert_eq!(debug_of("10.0.0.13"), None, "{}", rs.dump());
    // ... and back to SYSLOG.
    let () = config
        .hset("LOGGER|neighsyncd", "LOGOUTPUT", "SYSLOG")
        .unwrap();
    let back = rs.wait_for("neighsyncd", "log output changed");
    assert!(back.msg.contains("from=stderr"), "{back}");
    add("10.0.0.14", "02:00:00:00:00:14", &mut appl);
    wait_for("a DEBUG line of 10.0.0.14", || debug_of("10.0.0.14"));
    let () = config
        .hset("LOGGER|neighsyncd", "LOGLEVEL", "NOTICE")
        .unwrap();
    rs.wait_for("neighsyncd", "to=NOTICE");

    // Redis restarts: warnings while it is away, no error.
    redis.restart().unwrap();
    let mut appl = redis.conn(0).unwrap();
    add("10.0.0.15", "02:00:00:00:00:15", &mut appl);

    // SIGTERM: exit 0, its last lines at NOTICE.
    assert!(d.sigterm().unwrap().success(), "{}", d.log());
    let bye = rs.wait_for("neighsyncd", "flushing and exiting");
    assert_eq!(bye.severity, "notice", "{bye}");
    assert_tagged_and_no_err(&rs, "neighsyncd");
}

/// `neighsyncd restore` (syslog, tag `restore_neighbor`) in the DUT; exits 0.
fn run_restore(topo: &NeighTopology, redis: &RedisServer, rs: &Rsyslogd, extra: &[&str]) {
    let mut args = vec!["restore", "--timeout", "3", "--pass-interval", "0.5"];
    args.extend_from_slice(&["--settle", "0"]);
    args.extend_from_slice(extra);
    let mut job = start(Path::new(BIN), topo.dut(), redis, rs, &args);
    let status = job.wait_timeout(DEADLINE).unwrap();
    assert!(
        status.success(),
        "restore failed ({status}):\n{}",
        job.log()
    );
}

#[test]
fn warm_reboot_restore_and_warm_restart_log_summaries_and_no_errors() {
    let (_dir, rs) = private_rsyslogd();
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(2).unwrap();
    let mut config = redis.conn(CONFIG_DB).unwrap();
    let () = config
        .hset("WARM_RESTART|swss", "neighsyncd_timer", 1)
        .unwrap();
    // Cold run: the peers learned for real, consumed as orchagent does.
    let mut all = BTreeSet::new();
    for i in 0..2 {
        topo.ping4(i).unwrap();
        topo.ping6(i).unwrap();
        for v6 in [false, true] {
            all.insert(format!(
                "{}:{}",
                NeighTopology::port_name(i),
                NeighTopology::peer_ip(i, v6)
            ));
        }
    }
    let mut d = start(Path::new(BIN), topo.dut(), &redis, &rs, &[]);
    rs.wait_for("neighsyncd", READY);
    wait_for("the 4 neighbours consumed", || {
        consume(&redis);
        let mut c = redis.conn(0).unwrap();
        let keys: Vec<String> = c.keys("NEIGH_TABLE:*").unwrap();
        let keys: BTreeSet<String> = keys
            .into_iter()
            .map(|k| k.trim_start_matches("NEIGH_TABLE:").to_owned())
            .collect();
        (keys == all).then_some(())
    });
    assert!(d.sigterm().unwrap().success());

    // System warm reboot: empty kernel table, restore at NOTICE.
    let mut state = redis.conn(STATE_DB).unwrap();
    let () = state
        .hset("WARM_RESTART_ENABLE_TABLE|system", "enable", "true")
        .unwrap();
    let _: i64 = state.del("NEIGH_RESTORE_TABLE|Flags").unwrap();
    topo.dut().ip(&["-4", "neigh", "flush", "all"]).unwrap();
    topo.dut().ip(&["-6", "neigh", "flush", "all"]).unwrap();
    let mut d = start(Path::new(BIN), topo.dut(), &redis, &rs, &[]);
    rs.wait_for("neighsyncd", WAITING);
    run_restore(&topo, &redis, &rs, &[]);
    wait_state(&redis, "reconciled");
    rs.wait_for("neighsyncd", "warm start: reconciled");
    let restore = assert_tagged_and_no_err(&rs, "restore_neighbor");
    // A summary per interface and family at NOTICE; no line per neighbour.
    let summaries: Vec<&Line> = restore
        .iter()
        .filter(|l| l.msg.starts_with("interface neighbors restored and probed"))
        .collect();
    assert_eq!(summaries.len(), 4, "{}", rs.dump());
    for s in &summaries {
        assert_eq!(s.severity, "notice", "{s}");
        assert!(s.msg.contains("restored=1 failed=0"), "{s}");
    }
    assert!(
        restore
            .iter()
            .any(|l| l.msg.starts_with("restore pass done") && l.msg.contains("restored=4")),
        "{}",
        rs.dump()
    );
    let finished = rs.wait_for("restore_neighbor", "neighsyncd restore finished");
    assert_eq!(finished.severity, "notice");
    assert!(
        !restore.iter().any(|l| l.msg.contains("added as STALE")),
        "{}",
        rs.dump()
    );
    assert!(d.sigterm().unwrap().success());

    // Again with the restore at DEBUG: one line per neighbour, at debug.
    let _: i64 = state.del("NEIGH_RESTORE_TABLE|Flags").unwrap();
    topo.dut().ip(&["-4", "neigh", "flush", "all"]).unwrap();
    topo.dut().ip(&["-6", "neigh", "flush", "all"]).unwrap();
    let mut d = start(Path::new(BIN), topo.dut(), &redis, &rs, &[]);
    wait_state(&redis, "restored");
    run_restore(&topo, &redis, &rs, &["--log-level", "DEBUG"]);
    wait_state(&redis, "reconciled");
    let added: Vec<Line> = rs
        .lines_of("restore_neighbor")
        .into_iter()
        .filter(|l| l.msg.contains("added as STALE"))
        .collect();
    assert_eq!(added.len(), 4, "{}", rs.dump());
    assert!(added.iter().all(|l| l.severity == "debug"), "{added:?}");
    assert!(d.sigterm().unwrap().success());

    // Docker warm restart: the kernel keeps its table, the restore only
    // sets the flag.
    let () = state
        .hset("WARM_RESTART_ENABLE_TABLE|system", "enable", "false")
        .unwrap();
    let () = state
        .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
        .unwrap();
    let _: i64 = state.del("NEIGH_RESTORE_TABLE|Flags").unwrap();
    let mut d = start(Path::new(BIN), topo.dut(), &redis, &rs, &[]);
    wait_state(&redis, "restored");
    run_restore(&topo, &redis, &rs, &[]);
    rs.wait_for("restore_neighbor", "docker warm restart");
    wait_state(&redis, "reconciled");
    assert!(d.sigterm().unwrap().success());
    assert_tagged_and_no_err(&rs, "neighsyncd");
    assert_tagged_and_no_err(&rs, "restore_neighbor");
}

#[test]
fn portsyncd_link_changes_at_notice_and_fatal_errors_at_err() {
    let (_dir, rs) = private_rsyslogd();
    let mut redis = RedisServer::start().unwrap();
    let ns = NetNs::new("psyslog").unwrap();
    let () = redis
        .conn(CONFIG_DB)
        .unwrap()
        .hset_multiple(
            "PORT|Ethernet8",
            &[("alias", "etp1"), ("lanes", "0"), ("speed", "100000")],
        )
        .unwrap();
    let portsyncd = ops_common::portsyncd_bin();
    let mut d = start(&portsyncd, &ns, &redis, &rs, &[]);
    rs.wait_for("portsyncd", "started; following link events");
    ns.ip(&[
        "link",
        "add",
        "Ethernet8",
        "type",
        "veth",
        "peer",
        "name",
        "p8",
    ])
    .unwrap();
    ns.ip(&["link", "set", "Ethernet8", "up"]).unwrap();
    // As linksync.cpp: NOTICE, with the flags (and admin/oper from them).
    let up = rsyslog::wait_for(&rs.out, Duration::from_secs(10), |l| {
        l.program == "portsyncd"
            && l.msg.starts_with("link message")
            && l.msg.contains("ifname=Ethernet8")
            && l.msg.contains("admin=true")
    });
    assert_eq!(up.severity, "notice", "{up}");
    assert!(
        up.msg.contains("op=RTM_NEWLINK") && up.msg.contains("flags="),
        "{up}"
    );
    // Not a port (p8): not at NOTICE.
    assert!(
        !rs.lines_of("portsyncd")
            .iter()
            .any(|l| l.msg.contains("ifname=p8")),
        "{}",
        rs.dump()
    );
    // Redis restarts: warnings while it is away, no error.
    redis.restart().unwrap();
    let back = rs.wait_for("portsyncd", "Redis is back");
    assert_eq!(back.severity, "notice", "{back}");
    assert!(d.sigterm().unwrap().success(), "{}", d.log());
    rs.wait_for("portsyncd", "SIGTERM: exiting");
    assert_tagged_and_no_err(&rs, "portsyncd");

    // A fatal configuration error: exit 1, at ERR, naming the file.
    let sock = rs.socket.to_str().unwrap().to_owned();
    for (program, bin) in [
        ("portsyncd", portsyncd.as_path()),
        ("neighsyncd", Path::new(BIN)),
    ] {
        let mut d = Daemon::start(
            Some(&ns),
            bin,
            &[
                "--db-config",
                "/nonexistent/database_config.json",
                "--log-output",
                "syslog",
                "--syslog-socket",
                &sock,
            ],
        )
        .unwrap();
        let status = d.wait_timeout(DEADLINE).unwrap();
        assert_eq!(status.code(), Some(1), "{}", d.log());
        let fatal = rsyslog::wait_for(&rs.out, Duration::from_secs(10), |l| {
            l.program == program && l.severity == "err"
        });
        assert!(
            fatal.msg.contains("/nonexistent/database_config.json"),
            "{fatal}"
        );
        // Also on stderr for the supervisor's log.
        assert!(d.log().contains("/nonexistent/database_config.json"));
    }
}
