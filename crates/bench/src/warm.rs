//! `warm100k`: a container warm restart at 100k neighbours (issue "at the
//! floor", item 4; docs/warm-restart.md).
//!
//! 1. The kernel gets 100k neighbours; neighsyncd cold-syncs them (all in
//!    `NEIGH_TABLE_KEY_SET`), then is stopped (SIGTERM).
//! 2. A consumer (the pops script of swss::ConsumerStateTable, batch 128)
//!    consumes everything, so APPL_DB holds `NEIGH_TABLE:*` as orchagent
//!    leaves it.
//! 3. The kernel changes in one `ip -batch`: 1k neighbours added, 1k
//!    deleted, 1k given a new MAC.
//! 4. Warm-restart knobs: STATE_DB `WARM_RESTART_ENABLE_TABLE|swss enable
//!    true`, `NEIGH_RESTORE_TABLE|Flags restored true` (the container
//!    restart case: the restore job has already run), CONFIG_DB
//!    `WARM_RESTART|swss neighsyncd_timer` = [`TIMER_SECS`];
//!    `WARM_RESTART_TABLE|neighsyncd restore_count` exists from the cold
//!    start.
//! 5. neighsyncd starts (the clock starts at spawn); the bench polls
//!    `WARM_RESTART_TABLE|neighsyncd state` every 2 ms until `reconciled`.
//!    Figure: spawn -> reconciled minus the timer; peak RSS = VmHWM then.
//! 6. Checks: exactly 3,000 keys pending (`SCARD NEIGH_TABLE_KEY_SET`),
//!    1,000 of them deletes (`SCARD NEIGH_TABLE_DEL_SET`); after popping
//!    them, APPL_DB `NEIGH_TABLE:*` equals the kernel's permanent
//!    neighbours (key, MAC and family).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use testbed::netns::NeighTopology;
use testbed::redis_server::RedisServer;

use crate::consumer::Pops;
use crate::neigh::{
    ip_batch, neigh_lines, neighbor, overruns, scard, start_daemon, tail, wait_for, wait_scard,
};
use crate::procfs::{proc_cpu, proc_rss};
use crate::{Args, Kind, RedisStats, Row, SCENARIO_TIMEOUT};

const STATE_DB: u32 = 6;
const CONFIG_DB: u32 = 4;
/// The reconcile timer configured for the restart.
pub const TIMER_SECS: u64 = 1;
/// Neighbours added, deleted and changed while the daemon is down.
pub const CHANGES: usize = 1000;

/// What the warm restart wrote and how the result compares to the kernel.
#[derive(Debug, Clone, Default)]
pub struct WarmCheck {
    pub rep: usize,
    /// `SCARD NEIGH_TABLE_KEY_SET` after reconcile.
    pub pending: usize,
    /// `SCARD NEIGH_TABLE_DEL_SET` after reconcile.
    pub deletes: usize,
    /// Keys whose APPL_DB entry differs from the kernel after the pops
    /// (missing, extra or another MAC/family).
    pub mismatches: usize,
    /// Daemon spawn -> `state reconciled`, timer included.
    pub to_reconciled: Duration,
}

impl WarmCheck {
    pub fn exact(&self) -> bool {
        self.pending == 3 * CHANGES && self.deletes == CHANGES && self.mismatches == 0
    }
}

fn family(ip: &str) -> &'static str {
    if ip.contains(':') {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// The DUT's permanent neighbours: `<ifname>:<ip>` -> (MAC, family).
fn kernel_table(topo: &NeighTopology) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let mut out = BTreeMap::new();
    for fam in ["-4", "-6"] {
        let text = topo.dut().ip(&[fam, "neigh", "show", "nud", "permanent"])?;
        for l in text.lines() {
            // <ip> dev <ifname> lladdr <mac> PERMANENT
            let w: Vec<&str> = l.split_whitespace().collect();
            let (Some(ip), Some(dev), Some(mac)) = (
                w.first(),
                w.iter()
                    .position(|x| *x == "dev")
                    .and_then(|i| w.get(i + 1)),
                w.iter()
                    .position(|x| *x == "lladdr")
                    .and_then(|i| w.get(i + 1)),
            ) else {
                continue;
            };
            out.insert(
                format!("{dev}:{ip}"),
                ((*mac).to_owned(), family(ip).to_owned()),
            );
        }
    }
    Ok(out)
}

/// APPL_DB `NEIGH_TABLE:*` as a consumer sees it.
fn appl_table(conn: &mut redis::Connection) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("NEIGH_TABLE:*")
            .arg("COUNT")
            .arg(10_000)
            .query(conn)
            .context("SCAN NEIGH_TABLE:*")?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(1000) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("HMGET").arg(k).arg("neigh").arg("family");
        }
        let vals: Vec<(Option<String>, Option<String>)> =
            p.query(conn).context("HMGET NEIGH_TABLE")?;
        for (k, (mac, fam)) in chunk.iter().zip(vals) {
            let key = k.strip_prefix("NEIGH_TABLE:").unwrap_or(k).to_owned();
            out.insert(key, (mac.unwrap_or_default(), fam.unwrap_or_default()));
        }
    }
    Ok(out)
}

fn hget(conn: &mut redis::Connection, key: &str, field: &str) -> anyhow::Result<Option<String>> {
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query(conn)
        .with_context(|| format!("HGET {key} {field}"))
}

pub fn run(bin: &Path, args: &Args, n: usize, rep: usize) -> anyhow::Result<(Row, WarmCheck)> {
    let redis = RedisServer::start()?;
    let topo = NeighTopology::new(args.ports)?;
    ip_batch(topo.dut(), &neigh_lines(n, args.ports, "add"))?;
    let mut conn = redis.conn(0)?;
    let mut state = redis.conn(STATE_DB)?;
    let mut config = redis.conn(CONFIG_DB)?;

    // 1. Cold sync, then stop.
    let mut daemon = start_daemon(bin, &topo, &redis, args, false)?;
    wait_scard(&mut conn, &mut daemon, n)?;
    let st = daemon.sigterm()?;
    if !st.success() {
        bail!(
            "neighsyncd exited with {st} after SIGTERM; log:\n{}",
            tail(&daemon.log())
        );
    }
    drop(daemon);
    // 2. Consume everything.
    let mut pops = Pops::new(&redis, "NEIGH_TABLE", 128)?;
    let consumed = pops.drain()?;
    if consumed != n {
        bail!("the consumer popped {consumed} entries, wanted {n}");
    }
    // 3. Change the kernel: delete [0, C), new MAC for [C, 2C), add [n, n+C).
    let mut lines = Vec::with_capacity(3 * CHANGES);
    for i in 0..CHANGES {
        let (port, ip, _) = neighbor(i, args.ports);
        lines.push(format!(
            "neigh del {ip} dev {}",
            NeighTopology::port_name(port)
        ));
    }
    for i in CHANGES..2 * CHANGES {
        let (port, ip, _) = neighbor(i, args.ports);
        lines.push(format!(
            "neigh replace {ip} lladdr 02:02:00:00:{:02x}:{:02x} dev {} nud permanent",
            (i >> 8) & 0xff,
            i & 0xff,
            NeighTopology::port_name(port)
        ));
    }
    for i in n..n + CHANGES {
        let (port, ip, mac) = neighbor(i, args.ports);
        lines.push(format!(
            "neigh add {ip} lladdr {mac} dev {} nud permanent",
            NeighTopology::port_name(port)
        ));
    }
    ip_batch(topo.dut(), &lines)?;
    // 4. Knobs.
    if hget(&mut state, "WARM_RESTART_TABLE|neighsyncd", "restore_count")?.is_none() {
        bail!("WARM_RESTART_TABLE|neighsyncd restore_count missing after the cold start");
    }
    redis::cmd("HSET")
        .arg("WARM_RESTART_ENABLE_TABLE|swss")
        .arg("enable")
        .arg("true")
        .query::<()>(&mut state)?;
    redis::cmd("HSET")
        .arg("NEIGH_RESTORE_TABLE|Flags")
        .arg("restored")
        .arg("true")
        .query::<()>(&mut state)?;
    redis::cmd("HSET")
        .arg("WARM_RESTART|swss")
        .arg("neighsyncd_timer")
        .arg(TIMER_SECS)
        .query::<()>(&mut config)?;
    redis::cmd("HDEL")
        .arg("WARM_RESTART_TABLE|neighsyncd")
        .arg("state")
        .query::<()>(&mut state)?;

    // 5. Warm start.
    let before = RedisStats::read(&mut conn)?;
    let t0 = Instant::now();
    let mut daemon = start_daemon(bin, &topo, &redis, args, false)?;
    let pid = daemon.pid();
    let timeout_msg = format!("no state reconciled within {SCENARIO_TIMEOUT:?}");
    let done = wait_for(&mut daemon, t0, &timeout_msg, || {
        let s = hget(&mut state, "WARM_RESTART_TABLE|neighsyncd", "state")?;
        Ok(s.as_deref() == Some("reconciled"))
    })?;
    let to_reconciled = done - t0;
    let cpu = proc_cpu(pid)?;
    let (hwm, _) = proc_rss(pid)?;
    let after = RedisStats::read(&mut conn)?;
    // 6. Checks.
    let pending = scard(&mut conn)?;
    let deletes: usize = redis::cmd("SCARD")
        .arg("NEIGH_TABLE_DEL_SET")
        .query(&mut conn)?;
    std::thread::sleep(Duration::from_secs(1));
    let (_, rss) = proc_rss(pid)?;
    pops.drain()?;
    let kernel = kernel_table(&topo)?;
    let appl = appl_table(&mut conn)?;
    let mut mismatches = kernel
        .iter()
        .filter(|(k, v)| appl.get(*k) != Some(*v))
        .count();
    mismatches += appl.keys().filter(|k| !kernel.contains_key(*k)).count();
    if kernel.len() != n {
        eprintln!(
            "warm100k: kernel holds {} permanent neighbours, expected {n}",
            kernel.len()
        );
    }
    let (evalsha, commands) = after.commands_since(&before);
    let ov = overruns(&daemon);
    daemon.sigterm()?;
    let check = WarmCheck {
        rep,
        pending,
        deletes,
        mismatches,
        to_reconciled,
    };
    eprintln!("warm100k: {check:?}");
    let row = Row {
        name: format!("warm restart {}k", n / 1000),
        kind: Kind::Warm,
        rep,
        n,
        wall: to_reconciled.saturating_sub(Duration::from_secs(TIMER_SECS)),
        wall_what: "spawn->reconciled - timer",
        daemon_cpu: cpu,
        redis_cpu: after.cpu.saturating_sub(before.cpu),
        evalsha,
        commands,
        peak_rss_kib: hwm,
        idle_rss_kib: rss,
        steady_rss_kib: 0,
        lost: mismatches as i64,
        overruns: ov,
    };
    Ok((row, check))
}

pub fn print(checks: &[WarmCheck]) {
    if checks.is_empty() {
        return;
    }
    println!();
    println!(
        "Warm restart at 100k ({CHANGES} added, {CHANGES} deleted, {CHANGES} changed; timer {TIMER_SECS} s):"
    );
    println!();
    println!(
        "| rep | spawn->reconciled | ops pending (KEY_SET) | of which DEL (DEL_SET) | APPL_DB vs kernel mismatches |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for c in checks {
        println!(
            "| {} | {:.3} s | {} | {} | {} |",
            c.rep + 1,
            c.to_reconciled.as_secs_f64(),
            c.pending,
            c.deletes,
            c.mismatches
        );
    }
}
