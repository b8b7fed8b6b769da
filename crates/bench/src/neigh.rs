//! The neighbour scenarios (`idle`, `cold*`, `burst100k`, `flap100k`) and
//! the helpers the other scenarios share with them: the bench's neighbours,
//! `ip -batch`, neighsyncd start-up, `SCARD NEIGH_TABLE_KEY_SET` polls.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use testbed::daemon::Daemon;
use testbed::netns::{NeighTopology, NetNs};
use testbed::redis_server::RedisServer;

use crate::procfs::{ctx_switches, proc_cpu, proc_rss};
use crate::{
    Args, Kind, RedisStats, Row, CPP_READY, POLL, READY, SCENARIO_TIMEOUT, SETTLE, STEADY_AFTER,
};

/// Neighbour `i`: port index, IP text, MAC text. One in four is IPv6.
pub(crate) fn neighbor(i: usize, ports: usize) -> (usize, String, String) {
    let port = i % ports;
    let ip = if i % 4 == 3 {
        format!("fc01:{port:x}::{:x}:{:x}", i >> 16, i & 0xffff)
    } else {
        format!("10.{}.{}.{}", 100 + (i >> 16), (i >> 8) & 0xff, i & 0xff)
    };
    let mac = format!(
        "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
        (i >> 24) & 0xff,
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    );
    (port, ip, mac)
}

pub(crate) fn neigh_lines(n: usize, ports: usize, verb: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let (port, ip, mac) = neighbor(i, ports);
            let nud = match verb {
                "flap" if i % 2 == 0 => "reachable",
                "flap" => "stale",
                _ => "permanent",
            };
            let verb = if verb == "flap" { "change" } else { verb };
            format!(
                "neigh {verb} {ip} lladdr {mac} dev {} nud {nud}",
                NeighTopology::port_name(port)
            )
        })
        .collect()
}

pub(crate) fn ip_batch(ns: &NetNs, lines: &[String]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("batch");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for l in lines {
        writeln!(f, "{l}")?;
    }
    f.flush()?;
    drop(f);
    let path = path.to_str().context("temp path")?;
    ns.ip(&["-force", "-batch", path])?;
    Ok(())
}

/// Permanent neighbours in the DUT's kernel table (both families).
pub(crate) fn kernel_count(topo: &NeighTopology) -> anyhow::Result<usize> {
    let mut n = 0;
    for fam in ["-4", "-6"] {
        let out = topo.dut().ip(&[fam, "neigh", "show", "nud", "permanent"])?;
        n += out.lines().filter(|l| !l.trim().is_empty()).count();
    }
    Ok(n)
}

/// neighsyncd (`cpp`: the C++ one, which gets no `--extra` arguments) in
/// the DUT namespace on `redis`.
pub(crate) fn start_daemon(
    bin: &Path,
    topo: &NeighTopology,
    redis: &RedisServer,
    args: &Args,
    cpp: bool,
) -> anyhow::Result<Daemon> {
    let cfg = redis.db_config_path().to_str().context("path")?.to_owned();
    let mut argv: Vec<&str> = vec!["--db-config", &cfg];
    if !cpp {
        argv.extend(args.extra.iter().map(String::as_str));
    }
    Daemon::start(Some(topo.dut()), bin, &argv)
}

pub(crate) fn scard(conn: &mut redis::Connection) -> anyhow::Result<usize> {
    Ok(redis::cmd("SCARD").arg("NEIGH_TABLE_KEY_SET").query(conn)?)
}

/// Poll until `SCARD NEIGH_TABLE_KEY_SET` >= `want`; returns the instant it
/// was seen.
pub(crate) fn wait_scard(
    conn: &mut redis::Connection,
    daemon: &mut Daemon,
    want: usize,
) -> anyhow::Result<Instant> {
    let start = Instant::now();
    wait_for(
        daemon,
        start,
        &format!("APPL_DB did not reach {want} keys"),
        || Ok(scard(conn)? >= want),
    )
}

/// Poll `done` every [`POLL`] until it is true; returns the instant it was
/// seen. Fails when neighsyncd exits, or when [`SCENARIO_TIMEOUT`] passed
/// since `start` (with `timeout_msg`), each with the end of its log.
pub(crate) fn wait_for(
    daemon: &mut Daemon,
    start: Instant,
    timeout_msg: &str,
    mut done: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<Instant> {
    loop {
        if done()? {
            return Ok(Instant::now());
        }
        if !daemon.is_running() {
            bail!("neighsyncd exited; log:\n{}", tail(&daemon.log()));
        }
        if start.elapsed() > SCENARIO_TIMEOUT {
            bail!("{timeout_msg}; log:\n{}", tail(&daemon.log()));
        }
        std::thread::sleep(POLL);
    }
}

/// Poll until `SCARD NEIGH_TABLE_KEY_SET` >= `want` (returns the instant
/// and true), or until it has not changed for [`SETTLE`] since the first
/// key, or [`SCENARIO_TIMEOUT`] passed (the instant of the last change and
/// false: the caller counts what is missing as lost).
pub(crate) fn settle_scard(
    conn: &mut redis::Connection,
    daemon: &mut Daemon,
    want: usize,
) -> anyhow::Result<(Instant, bool)> {
    let start = Instant::now();
    let mut last = 0;
    let mut last_change = start;
    loop {
        let c = scard(conn)?;
        if c >= want {
            return Ok((Instant::now(), true));
        }
        if c != last {
            last = c;
            last_change = Instant::now();
        }
        if (c > 0 && last_change.elapsed() > SETTLE) || start.elapsed() > SCENARIO_TIMEOUT {
            eprintln!("APPL_DB settled at {c} of {want} keys");
            return Ok((last_change, false));
        }
        if !daemon.is_running() {
            bail!("neighsyncd exited; log:\n{}", tail(&daemon.log()));
        }
        std::thread::sleep(POLL);
    }
}

pub(crate) fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

pub(crate) fn overruns(daemon: &Daemon) -> usize {
    daemon.log().matches("netlink overrun (ENOBUFS)").count()
}

// ===== scenarios =====

pub(crate) fn idle(bin: &Path, args: &Args, rep: usize, cpp: bool) -> anyhow::Result<Row> {
    let redis = RedisServer::start()?;
    let topo = NeighTopology::new(args.ports)?;
    let t0 = Instant::now();
    let mut daemon = start_daemon(bin, &topo, &redis, args, cpp)?;
    daemon.wait_for_log(if cpp { CPP_READY } else { READY }, SCENARIO_TIMEOUT)?;
    let wall = t0.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let (_, rss) = proc_rss(daemon.pid())?;
    let (hwm, steady) = steady_rss(&daemon, args, Duration::from_secs(1), "idle")?;
    let cpu = proc_cpu(daemon.pid())?;
    daemon.sigterm()?;
    Ok(Row {
        name: if cpp {
            "C++ idle (empty table)".into()
        } else {
            "idle (empty table)".into()
        },
        kind: if cpp { Kind::CppIdle } else { Kind::Idle },
        rep,
        n: 0,
        wall,
        wall_what: "spawn->ready",
        daemon_cpu: cpu,
        peak_rss_kib: hwm,
        idle_rss_kib: rss,
        steady_rss_kib: steady,
        ..Row::default()
    })
}

/// Sleep until [`STEADY_AFTER`] after the last write (`since` of it has
/// passed already), then (VmHWM, VmRSS); with `--smaps`, print where the
/// RSS goes.
pub(crate) fn steady_rss(
    daemon: &Daemon,
    args: &Args,
    since: Duration,
    what: &str,
) -> anyhow::Result<(u64, u64)> {
    std::thread::sleep(STEADY_AFTER.saturating_sub(since));
    let r = proc_rss(daemon.pid())?;
    if args.smaps {
        eprintln!("smaps {what}: {}", smaps_summary(daemon.pid()));
    }
    Ok(r)
}

/// RSS per mapping kind of `pid` (`/proc/<pid>/smaps`): the executable's
/// segments by permission, each shared library, heap, stack and anonymous
/// mappings; largest first.
pub(crate) fn smaps_summary(pid: u32) -> String {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return "unreadable".to_owned();
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let mut by: Vec<(String, u64)> = Vec::new();
    let mut label = String::new();
    let mut total = 0;
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.first()
            .is_some_and(|a| a.contains('-') && !a.ends_with(':'))
        {
            let perms = f.get(1).copied().unwrap_or("");
            let path = f.get(5).copied().unwrap_or("");
            label = if path.is_empty() {
                format!("anon {perms}")
            } else if Path::new(path) == exe {
                format!("exe {perms}")
            } else if path.starts_with('[') {
                path.to_owned()
            } else {
                let name = Path::new(path)
                    .file_name()
                    .map_or(path.into(), |n| n.to_string_lossy());
                format!("{name} {perms}")
            };
        } else if let Some(kib) = l
            .strip_prefix("Rss:")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
        {
            total += kib;
            match by.iter_mut().find(|(k, _)| *k == label) {
                Some((_, v)) => *v += kib,
                None => by.push((label.clone(), kib)),
            }
        }
    }
    by.retain(|(_, v)| *v > 0);
    by.sort_by_key(|b| std::cmp::Reverse(b.1));
    let parts: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("total {total} KiB: {}", parts.join(", "))
}

pub(crate) fn cold(
    bin: &Path,
    args: &Args,
    n: usize,
    rep: usize,
    cpp: bool,
) -> anyhow::Result<Row> {
    let redis = RedisServer::start()?;
    let topo = NeighTopology::new(args.ports)?;
    ip_batch(topo.dut(), &neigh_lines(n, args.ports, "add"))?;
    let kernel = kernel_count(&topo)?;
    if kernel != n {
        bail!("kernel holds {kernel} permanent neighbours, wanted {n}");
    }
    let mut conn = redis.conn(0)?;
    let before = RedisStats::read(&mut conn)?;
    let t0 = Instant::now();
    let mut daemon = start_daemon(bin, &topo, &redis, args, cpp)?;
    let (done, all) = settle_scard(&mut conn, &mut daemon, n)?;
    let wall = if all { done - t0 } else { Duration::MAX };
    let cpu = proc_cpu(daemon.pid())?;
    let after = RedisStats::read(&mut conn)?;
    std::thread::sleep(Duration::from_secs(1));
    let (_, rss) = proc_rss(daemon.pid())?;
    let (hwm, steady) = steady_rss(
        &daemon,
        args,
        done.elapsed(),
        &format!("{}cold {}k", if cpp { "C++ " } else { "" }, n / 1000),
    )?;
    let written = scard(&mut conn)?;
    let (evalsha, commands) = after.commands_since(&before);
    let ov = overruns(&daemon);
    daemon.sigterm()?;
    Ok(Row {
        name: format!("{}cold sync {}k", if cpp { "C++ " } else { "" }, n / 1000),
        kind: if cpp { Kind::CppCold } else { Kind::Cold },
        rep,
        n,
        wall,
        wall_what: "spawn->all",
        daemon_cpu: cpu,
        redis_cpu: after.cpu.saturating_sub(before.cpu),
        evalsha,
        commands,
        peak_rss_kib: hwm,
        idle_rss_kib: rss,
        steady_rss_kib: steady,
        lost: kernel as i64 - written as i64,
        overruns: ov,
    })
}

/// The live burst; with `flap`, then the same-MAC flaps on the same daemon.
pub(crate) fn burst_and_flap(
    bin: &Path,
    args: &Args,
    n: usize,
    flap: bool,
    rep: usize,
) -> anyhow::Result<Vec<Row>> {
    let redis = RedisServer::start()?;
    let topo = NeighTopology::new(args.ports)?;
    let mut conn = redis.conn(0)?;
    let mut daemon = start_daemon(bin, &topo, &redis, args, false)?;
    daemon.wait_for_log(READY, SCENARIO_TIMEOUT)?;
    std::thread::sleep(Duration::from_millis(500));
    let adds = neigh_lines(n, args.ports, "add");
    let pid = daemon.pid();
    let cpu0 = proc_cpu(pid)?;
    let before = RedisStats::read(&mut conn)?;
    let burst_start = Instant::now();
    ip_batch(topo.dut(), &adds)?;
    let burst_end = Instant::now();
    // Settle: all written, or no change for SETTLE.
    let mut last = scard(&mut conn)?;
    let mut last_change = Instant::now();
    let mut all_at = None;
    loop {
        let c = scard(&mut conn)?;
        if c != last {
            last = c;
            last_change = Instant::now();
        }
        if c >= n {
            all_at = Some(Instant::now());
            break;
        }
        if last_change.elapsed() > SETTLE || burst_end.elapsed() > SCENARIO_TIMEOUT {
            break;
        }
        if !daemon.is_running() {
            bail!("neighsyncd exited; log:\n{}", tail(&daemon.log()));
        }
        std::thread::sleep(POLL);
    }
    let cpu1 = proc_cpu(pid)?;
    let after = RedisStats::read(&mut conn)?;
    let kernel = kernel_count(&topo)?;
    std::thread::sleep(Duration::from_secs(1));
    let written = scard(&mut conn)?;
    let (_, rss) = proc_rss(pid)?;
    let last_write = all_at.unwrap_or(last_change);
    let (hwm, steady) = steady_rss(
        &daemon,
        args,
        last_write.elapsed(),
        &format!("burst {}k", n / 1000),
    )?;
    let (evalsha, commands) = after.commands_since(&before);
    let mut rows = vec![Row {
        name: format!("live burst {}k", n / 1000),
        kind: Kind::Burst,
        rep,
        n,
        wall: all_at.map_or(Duration::MAX, |t| t - burst_end),
        wall_what: "burst end->all",
        daemon_cpu: cpu1.saturating_sub(cpu0),
        redis_cpu: after.cpu.saturating_sub(before.cpu),
        evalsha,
        commands,
        peak_rss_kib: hwm,
        idle_rss_kib: rss,
        steady_rss_kib: steady,
        lost: kernel as i64 - written as i64,
        overruns: overruns(&daemon),
    }];
    eprintln!(
        "burst: ip -batch took {:?}, all written {:?} after it",
        burst_end - burst_start,
        last_write - burst_end
    );
    if flap {
        // Calibrate: the cost of one sentinel neighbour.
        let s0 = RedisStats::read(&mut conn)?;
        topo.dut().ip(&[
            "neigh",
            "add",
            "10.250.0.1",
            "lladdr",
            "02:ff:00:00:00:01",
            "dev",
            "Ethernet0",
            "nud",
            "permanent",
        ])?;
        wait_scard(&mut conn, &mut daemon, written + 1)?;
        let s1 = RedisStats::read(&mut conn)?;
        let (sent_eval, sent_all) = s1.commands_since(&s0);
        let ov0 = overruns(&daemon);
        let lines = neigh_lines(n, args.ports, "flap");
        let cpu0 = proc_cpu(pid)?;
        let s2 = RedisStats::read(&mut conn)?;
        let t0 = Instant::now();
        ip_batch(topo.dut(), &lines)?;
        let flap_end = Instant::now();
        topo.dut().ip(&[
            "neigh",
            "add",
            "10.250.0.2",
            "lladdr",
            "02:ff:00:00:00:02",
            "dev",
            "Ethernet0",
            "nud",
            "permanent",
        ])?;
        let done = wait_scard(&mut conn, &mut daemon, written + 2)?;
        let cpu1 = proc_cpu(pid)?;
        let s3 = RedisStats::read(&mut conn)?;
        let (e, a) = s3.commands_since(&s2);
        let (hwm, rss) = proc_rss(pid)?;
        eprintln!(
            "flaps: ip -batch took {:?}, sentinel written {:?} after it; daemon {}",
            flap_end - t0,
            done - flap_end,
            ctx_switches(pid)
        );
        rows.push(Row {
            name: format!("same-MAC flaps {}k", n / 1000),
            kind: Kind::Flap,
            rep,
            n,
            wall: done - flap_end,
            wall_what: "flaps end->seen",
            daemon_cpu: cpu1.saturating_sub(cpu0),
            redis_cpu: s3.cpu.saturating_sub(s2.cpu),
            evalsha: e - sent_eval,
            commands: a - sent_all,
            peak_rss_kib: hwm,
            idle_rss_kib: rss,
            steady_rss_kib: 0,
            lost: 0,
            overruns: overruns(&daemon) - ov0,
        });
    }
    daemon.sigterm()?;
    Ok(rows)
}
