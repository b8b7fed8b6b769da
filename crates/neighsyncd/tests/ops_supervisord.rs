//! The supervisord entries of `deploy/supervisord/` run by a real
//! supervisord (Debian `supervisor`) with SONiC's `supervisord-dependent-
//! startup` plugin, as in the swss container: the three files are used as
//! shipped, with only the binary and database_config.json paths pointed at
//! this test's build and private redis-server. supervisord runs in a DUT
//! network namespace with a private `/dev` (an overlay), where a real
//! rsyslogd (Debian `rsyslog`), run by supervisord as the container's
//! `[program:rsyslogd]`, listens on `/dev/log` and writes every line with its
//! severity and program tag to a file the test reads
//! (`crates/sonic-daemon/tests/rsyslog/mod.rs`).
//!
//! The rest of the swss container is stood in for: `swssconfig`
//! (neighsyncd and restore_neighbors wait for `swssconfig:exited`) is a
//! `sleep 1` (it loads the switch's JSON config, then exits), started once
//! portsyncd runs (in SONiC it waits for orchagent, which waits for
//! portsyncd); portsyncd waits for `rsyslogd:running` as upstream.
//!
//! Checked as an operator would see it: restore_neighbors runs once and
//! exits 0 (cold start), both daemons reach RUNNING, their log lines reach
//! rsyslog under their own program tags (`portsyncd`, `neighsyncd`,
//! `restore_neighbor`) with the priority of their level and never through
//! supervisord's relay, no line at ERR, a neighbour added meanwhile lands in
//! APPL_DB and portsyncd's port in APPL_DB/STATE_DB, `/healthz` answers on
//! the entries' `--metrics-addr`, and `supervisorctl stop` ends each daemon
//! with exit status 0 after its pending writes are flushed.

#![allow(clippy::unwrap_used)]

mod common;
mod ops_common;
#[path = "../../sonic-daemon/tests/rsyslog/mod.rs"]
mod rsyslog;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{wait_pending_set, DEADLINE};
use ops_common::{neighsyncd_bin, portsyncd_bin, repo_root, run, text};
use redis::Commands;
use testbed::daemon::Daemon;
use testbed::netns::NeighTopology;
use testbed::redis_server::RedisServer;

const DEFAULT_DB_CONFIG: &str = "/var/run/redis/sonic-db/database_config.json";
const PROGRAMS: [&str; 3] = ["portsyncd", "neighsyncd", "restore_neighbors"];

/// The file the supervised rsyslogd writes (see `rsyslog/mod.rs`).
#[derive(Clone)]
struct Syslog {
    out: PathBuf,
}

impl Syslog {
    fn all(&self) -> String {
        rsyslog::dump(&self.out)
    }

    /// Waits for a line tagged `program` containing `text`.
    fn wait_for(&self, program: &str, text: &str) -> rsyslog::Line {
        rsyslog::wait_for(&self.out, DEADLINE * 2, |l| {
            l.program == program && l.msg.contains(text)
        })
    }
}

/// The shipped entry `name`.conf with the binaries and database config
/// pointed at this test's; everything else as shipped.
fn adjusted_entry(name: &str, redis: &RedisServer, portsyncd: &Path) -> String {
    let path = repo_root().join(format!("deploy/supervisord/{name}.conf"));
    let shipped = std::fs::read_to_string(&path).unwrap();
    assert!(shipped.contains(DEFAULT_DB_CONFIG), "{path:?}");
    let neighsyncd = neighsyncd_bin();
    let bin = if name == "portsyncd" {
        ("/usr/bin/portsyncd ", portsyncd)
    } else {
        ("/usr/bin/neighsyncd ", neighsyncd.as_path())
    };
    assert!(shipped.contains(bin.0), "{path:?} does not run {}", bin.0);
    shipped
        .replace(bin.0, &format!("{} ", bin.1.display()))
        .replace(DEFAULT_DB_CONFIG, redis.db_config_path().to_str().unwrap())
}

/// `supervisorctl shutdown` when dropped, then waits (up to 20 s) for
/// supervisord to have stopped every program and exited (its pidfile gone).
struct Shutdown(std::path::PathBuf);

impl Drop for Shutdown {
    fn drop(&mut self) {
        let _ = std::process::Command::new("supervisorctl")
            .arg("-c")
            .arg(&self.0)
            .arg("shutdown")
            .output();
        let pidfile = self.0.with_file_name("supervisord.pid");
        let start = Instant::now();
        while pidfile.exists() && start.elapsed() < DEADLINE * 2 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Pops everything pending in APPL_DB `table` as orchagent does; the keys.
fn pop_all(redis: &RedisServer, table: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = swss::DbConfig::load(redis.db_config_path()).unwrap();
        let db = swss::DbConnector::new(cfg.location("APPL_DB").unwrap()).unwrap();
        let mut consumer = swss::ConsumerStateTable::new(&db, table, 128)
            .await
            .unwrap();
        consumer.drain().await.unwrap().into_keys().collect()
    })
}

/// `supervisorctl -c conf args...`.
fn supervisorctl(conf: &Path, args: &[&str]) -> String {
    let mut argv = vec!["-c", conf.to_str().unwrap()];
    argv.extend_from_slice(args);
    let out = run("supervisorctl", &argv, "Debian's `supervisor`");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The state column of `program` in `supervisorctl status`.
fn state(conf: &Path, program: &str) -> Option<String> {
    supervisorctl(conf, &["status", program])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(program))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
}

fn wait_state(conf: &Path, program: &str, want: &str, log: &dyn Fn() -> String) {
    let start = Instant::now();
    loop {
        if state(conf, program).as_deref() == Some(want) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE * 2,
            "{program} not {want}: {:?}\nstatus:\n{}\n{}",
            state(conf, program),
            supervisorctl(conf, &["status"]),
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn deploy_supervisord_entries_run_under_real_supervisord() {
    // The plugin SONiC's containers use for dependent_startup (PyPI
    // supervisord-dependent-startup, imported by Debian's python3).
    let plugin = run(
        "/usr/bin/python3",
        &["-c", "import supervisord_dependent_startup, supervisor"],
        "supervisor and supervisord-dependent-startup",
    );
    assert!(plugin.status.success(), "{}", text(&plugin));

    let portsyncd = portsyncd_bin();
    let redis = RedisServer::start().unwrap();
    let topo = NeighTopology::new(1).unwrap();
    let port = topo.port(0).to_owned();
    // portsyncd's port: its netdev appears after portsyncd started (on a cold
    // start netdevs already there are old ones, brought down and ignored).
    let new_port = "Ethernet8";
    let _: () = redis
        .conn(4)
        .unwrap()
        .hset_multiple(
            format!("PORT|{new_port}"),
            &[("alias", "etp1"), ("lanes", "0"), ("speed", "100000")],
        )
        .unwrap();

    let dir = tempfile::Builder::new()
        .prefix("ops-supervisord-")
        .tempdir()
        .unwrap();
    let t = dir.path();
    let syslog = Syslog {
        out: t.join("syslog.txt"),
    };
    // The container's rsyslogd: /dev/log in supervisord's private /dev.
    std::fs::write(
        t.join("rsyslog.conf"),
        rsyslog::config(Path::new("/dev/log"), &syslog.out, t),
    )
    .unwrap();
    std::fs::create_dir(t.join("conf.d")).unwrap();
    for name in PROGRAMS {
        std::fs::write(
            t.join(format!("conf.d/{name}.conf")),
            adjusted_entry(name, &redis, &portsyncd),
        )
        .unwrap();
    }
    let conf = t.join("supervisord.conf");
    let td = t.display();
    std::fs::write(
        &conf,
        format!(
            "; Test harness around deploy/supervisord/*.conf (the swss container's
; supervisord.conf without the other programs).
[unix_http_server]
file={td}/supervisor.sock

[supervisord]
nodaemon=true
user=root
logfile={td}/supervisord.log
pidfile={td}/supervisord.pid
childlogdir={td}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{td}/supervisor.sock

[eventlistener:dependent-startup]
command=/usr/bin/python3 -m supervisord_dependent_startup -c {td}/supervisord.conf
autostart=true
autorestart=unexpected
startretries=0
exitcodes=0,3
events=PROCESS_STATE
buffer_size=1024

[program:rsyslogd]
command=/usr/sbin/rsyslogd -n -iNONE -f {td}/rsyslog.conf
priority=2
autostart=false
autorestart=false
stdout_logfile={td}/rsyslogd.out
stderr_logfile={td}/rsyslogd.out
dependent_startup=true

[program:swssconfig]
command=/bin/sleep 1
priority=4
autostart=false
autorestart=unexpected
startretries=0
startsecs=0
dependent_startup=true
dependent_startup_wait_for=portsyncd:running

[include]
files = {td}/conf.d/*.conf
"
        ),
    )
    .unwrap();
    // Inside `ip netns exec` (its own mount namespace): /dev overlaid so that
    // the supervised rsyslogd can create /dev/log there; then supervisord in
    // the foreground.
    std::fs::create_dir(t.join("dev-upper")).unwrap();
    std::fs::create_dir(t.join("dev-work")).unwrap();
    let script = t.join("run.sh");
    std::fs::write(
        &script,
        format!(
            "set -e
mount --make-rprivate /
mount -t overlay overlay -o lowerdir=/dev,upperdir={td}/dev-upper,workdir={td}/dev-work /dev
rm -f /dev/log
exec supervisord -n -c {td}/supervisord.conf
"
        ),
    )
    .unwrap();
    let mut supervisord = Daemon::start(
        Some(topo.dut()),
        Path::new("/bin/sh"),
        &[script.to_str().unwrap()],
    )
    .unwrap();
    // On a failure, stop supervisord's children too (killing supervisord
    // alone would leave them running).
    let _shutdown = Shutdown(conf.clone());
    let sup_log = t.join("supervisord.log");
    let out_path = supervisord.log_path().to_owned();
    let log = || {
        format!(
            "supervisord.log:\n{}\noutput:\n{}",
            std::fs::read_to_string(&sup_log).unwrap_or_default(),
            std::fs::read_to_string(&out_path).unwrap_or_default()
        )
    };

    // Both daemons RUNNING; on a cold start the restore one-shot runs once
    // and exits 0.
    wait_state(&conf, "portsyncd", "RUNNING", &log);
    wait_state(&conf, "neighsyncd", "RUNNING", &log);
    wait_state(&conf, "restore_neighbors", "EXITED", &log);
    let l = std::fs::read_to_string(&sup_log).unwrap();
    assert!(
        l.contains("exited: restore_neighbors (exit status 0; expected)"),
        "{l}"
    );
    assert_eq!(
        l.matches("spawned: 'restore_neighbors'").count(),
        1,
        "restore ran more than once: {l}"
    );

    // Their log lines reach rsyslog under their own program tags, at the
    // priority of their level (what SONiC's /var/log/syslog shows).
    let skipped = syslog.wait_for(
        "restore_neighbor",
        "restore skipped: warm restart not enabled",
    );
    assert_eq!(skipped.severity, "notice", "{skipped}");
    let started = syslog.wait_for("portsyncd", "started; following link events");
    assert_eq!(started.severity, "notice", "{started}");
    let ready = syslog.wait_for("neighsyncd", common::READY);
    assert_eq!(ready.severity, "notice", "{ready}");

    // The entries' --metrics-addr: /healthz answers 200 on both.
    for addr in ["127.0.0.1:9101", "127.0.0.1:9102"] {
        let start = Instant::now();
        while testbed::netns::http_get(topo.dut(), addr, "/healthz").map(|r| r.0) != Some(200) {
            assert!(start.elapsed() < DEADLINE, "no healthy /healthz on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // Live work while supervised: a neighbour and the configured port.
    let mut appl = redis.conn(0).unwrap();
    let ip = NeighTopology::peer_ip4(0).to_string();
    topo.dut()
        .neigh_add(&port, &ip, "02:00:00:00:aa:01")
        .unwrap();
    wait_pending_set(
        &mut appl,
        &format!("{port}:{ip}"),
        "02:00:00:00:aa:01",
        "IPv4",
    );
    topo.dut()
        .ip(&[
            "link", "add", new_port, "type", "veth", "peer", "name", "p8",
        ])
        .unwrap();
    // portsyncd: PORT_TABLE and PortConfigDone for orchagent; once
    // "orchagent" (the test) consumed them, the port's STATE_DB entry.
    let mut popped = std::collections::BTreeSet::new();
    let mut state_db = redis.conn(6).unwrap();
    let start = Instant::now();
    loop {
        popped.extend(pop_all(&redis, "PORT_TABLE"));
        let s: Option<String> = state_db
            .hget(format!("PORT_TABLE|{new_port}"), "state")
            .unwrap();
        if s.as_deref() == Some("ok") {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no STATE_DB PORT_TABLE|{new_port} state=ok; popped {popped:?}; syslog:\n{}",
            syslog.all()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        popped.contains(new_port) && popped.contains("PortConfigDone"),
        "{popped:?}"
    );

    // A change made just before the stop is in APPL_DB after it: written
    // live or flushed on SIGTERM, never lost.
    let ip6 = NeighTopology::peer_ip6(0).to_string();
    topo.dut()
        .neigh_add(&port, &ip6, "02:00:00:00:aa:02")
        .unwrap();
    let out = supervisorctl(&conf, &["stop", "neighsyncd", "portsyncd"]);
    assert!(
        out.contains("neighsyncd: stopped") && out.contains("portsyncd: stopped"),
        "{out}\n{}",
        log()
    );
    wait_pending_set(
        &mut appl,
        &format!("{port}:{ip6}"),
        "02:00:00:00:aa:02",
        "IPv6",
    );
    let l = log();
    for program in ["neighsyncd", "portsyncd"] {
        assert!(
            l.contains(&format!("stopped: {program} (exit status 0)")),
            "{program} did not exit 0 on supervisorctl stop: {l}"
        );
        assert_eq!(state(&conf, program).as_deref(), Some("STOPPED"));
    }
    syslog.wait_for("neighsyncd", "flushing and exiting");
    syslog.wait_for("portsyncd", "SIGTERM: exiting");
    // Each daemon's lines under its tag (no PID), facility user, none at
    // ERR; and none relayed by supervisord from stdout/stderr (the native
    // output has them all).
    let lines = rsyslog::read(&syslog.out);
    for program in ["portsyncd", "neighsyncd", "restore_neighbor"] {
        let mine: Vec<&rsyslog::Line> = lines.iter().filter(|l| l.program == program).collect();
        assert!(!mine.is_empty(), "no {program} lines:\n{}", syslog.all());
        for l in mine {
            assert_eq!(l.tag, format!("{program}:"), "{l}");
            assert_eq!(l.facility, "user", "{l}");
            assert!(
                !["emerg", "alert", "crit", "err"].contains(&l.severity.as_str()),
                "{l}\n{}",
                syslog.all()
            );
        }
    }
    for program in PROGRAMS {
        assert!(
            !lines
                .iter()
                .any(|l| l.program == "supervisord" && l.msg.starts_with(&format!("{program} "))),
            "{program} output relayed by supervisord:\n{}",
            syslog.all()
        );
    }

    let out = supervisorctl(&conf, &["shutdown"]);
    assert!(out.contains("Shut down"), "{out}");
    let status = supervisord.wait_timeout(DEADLINE).unwrap();
    assert!(status.success(), "supervisord: {status}\n{}", log());
}
