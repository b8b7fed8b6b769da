//! `soak`: neighsyncd and portsyncd side by side for a long time under
//! everything at once (issue "at the physical floor", item 5). Not in the
//! default scenario list (30 min); run it by name: `bench soak`
//! (`--soak-minutes N`, `--soak-out DIR`).
//!
//! Set-up: a DUT namespace and one peer namespace; CONFIG_DB `PORT|<port>`
//! for `--ports` ports (`Ethernet0`, `Ethernet4`, ...; lanes, speed, alias,
//! index, mtu, admin_status, as `ports256`); portsyncd is started first
//! (`--audit-interval 30`, `--metrics-addr 127.0.0.1:9102`), then the
//! orchagent stand-in, then the veths `<port>` <-> `p<port>` are created
//! and set up on both ends (portsyncd brings down and then ignores the
//! `Ethernet*` netdevs that exist when it cold-starts, d.2, so the ports
//! appear after it, as syncd creates them on a switch); once STATE_DB says
//! every port is up, neighsyncd starts (`--audit-interval 30`,
//! `--metrics-addr 127.0.0.1:9101`, plus `--extra`).
//!
//! For the whole run:
//! * **churn**: [`CHURN_PER_SEC`] neighbour changes per second, written in
//!   ticks of 10 ms to a resident `ip -force -batch -` in the DUT (errors,
//!   e.g. on a port that is down, do not stop it): over a fixed set of
//!   [`CHURN_IPS`] addresses spread over the ports (one in four IPv6),
//!   85 % `neigh replace <ip> lladdr <random MAC> dev <port> nud permanent`,
//!   15 % `neigh del <ip> dev <port>`;
//! * **orchagent**: a thread popping APPL_DB `NEIGH_TABLE` and `PORT_TABLE`
//!   (swss::ConsumerStateTable's pops script, batches of 128; every 5 ms
//!   when idle), reconnecting (and reloading its script) after a Redis
//!   restart;
//! * **Redis restart** every 5 min: `SAVE`, SIGKILL, a new redis-server on
//!   the same socket loading that snapshot
//!   ([`RedisServer::restart_keeping_data`]): writes after the snapshot are
//!   lost, both daemons must reconnect and repair the difference;
//! * **link flap storm** every 7 min: [`STORM_ROUNDS`] times every DUT port
//!   `ip link set down`, 100 ms, `up`, 100 ms (the kernel flushes the
//!   ports' neighbours, permanent ones included, at each down);
//! * the daemons' own self-audits every 30 s.
//!
//! Events are offset by 5 s from the 10 s sample grid (restarts at 5:05,
//! 10:05, ...; flaps at 7:05, 14:05, ...). With `--soak-minutes` below 10
//! (development runs) the periods scale down to 1 min (restarts) and 1.4 min
//! (flaps), and the reference instant (below) is a quarter of the run.
//!
//! Every 10 s, for each daemon: VmRSS, open fds (`/proc/<pid>/fd`), CPU over
//! the interval (`/proc/<pid>/task/*/schedstat`), and from its `/metrics`:
//! `<d>_audit_drift` (entries the last audit repaired), `<d>_audit_runs_total`,
//! `<d>_resyncs_total{cause="audit"}` and `{cause="redis_reconnect"}`;
//! neighsyncd's `neighsyncd_entries`. The samples go to `soak.csv` and
//! RSS and fds over time to `soak.svg` (both in `--soak-out`).
//!
//! At the end the churn stops; once settled (compared every second, up to
//! [`SETTLE_MAX`]), APPL_DB `NEIGH_TABLE:*` (what orchagent consumed) must
//! equal the kernel's neighbours under the sync rules ([`expected_neighs`]),
//! APPL_DB `PORT_TABLE:<port>` must hold the CONFIG_DB fields (and
//! `PortConfigDone`, `PortInitDone` exist), and STATE_DB `PORT_TABLE|<port>`
//! must say `state ok` and the kernel's `netdev_oper_status` (IFF_RUNNING:
//! up with operstate UP or UNKNOWN, from sysfs), `admin_status` (IFF_UP) and
//! `mtu`. The daemons' own `audit` commands are
//! run as well and their exit codes printed.
//!
//! PASS: for each daemon, every RSS sample from the reference instant
//! (5 min) on within 1 MiB of the RSS at that instant, every fd count
//! within 2; audit drift 0 in every sample and no audit resync; both tables
//! equal the kernel at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis::IntoConnectionInfo;
use testbed::daemon::Daemon;
use testbed::netns::{http_get, metrics_sample, NetNs};
use testbed::redis_server::RedisServer;

use crate::consumer::Pops;
use crate::{ip_batch, proc_cpu, proc_rss, tail, Args, READY, SCENARIO_TIMEOUT};

/// Neighbour changes per second written by the churn.
pub const CHURN_PER_SEC: u64 = 1500;
/// The fixed set of addresses the churn works on.
pub const CHURN_IPS: usize = 1024;
/// Down/up rounds per link flap storm.
pub const STORM_ROUNDS: usize = 5;
/// The end-of-run comparison is retried every second up to this long.
pub const SETTLE_MAX: Duration = Duration::from_secs(20);
/// Sample period.
const SAMPLE: Duration = Duration::from_secs(10);
/// Events are this far off the sample grid.
const EVENT_OFFSET: Duration = Duration::from_secs(5);
/// Churn tick.
const TICK: Duration = Duration::from_millis(10);
/// PASS bounds after the reference instant.
pub const RSS_BOUND_KIB: u64 = 1024;
pub const FD_BOUND: usize = 2;
const NEIGH_METRICS: &str = "127.0.0.1:9101";
const PORT_METRICS: &str = "127.0.0.1:9102";
/// portsyncd's log line once it follows link events.
const PORT_READY: &str = "started; following link events";
const CONFIG_DB: u32 = 4;
const STATE_DB: u32 = 6;

/// One daemon at one sample.
#[derive(Debug, Clone, Default)]
pub struct Proc {
    pub rss_kib: u64,
    pub fds: usize,
    /// CPU over the interval since the previous sample, percent of one core.
    pub cpu_pct: f64,
    /// `<d>_audit_drift` (None: /metrics did not answer).
    pub drift: Option<f64>,
    pub audit_runs: Option<f64>,
    pub audit_resyncs: Option<f64>,
    pub reconnect_resyncs: Option<f64>,
}

/// One row of soak.csv.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the churn started.
    pub t: f64,
    pub neigh: Proc,
    pub port: Proc,
    /// `neighsyncd_entries`.
    pub entries: Option<f64>,
    /// Churn commands written so far.
    pub churn_ops: u64,
    /// NEIGH_TABLE entries popped by the consumer so far.
    pub popped: u64,
}

/// The end-of-run comparison of one table with the kernel.
#[derive(Debug, Clone, Default)]
pub struct TableCheck {
    /// Entries expected (from the kernel).
    pub expected: usize,
    /// Keys missing, stale or different.
    pub diffs: usize,
    /// The first few differences, as text.
    pub examples: Vec<String>,
    /// From the churn's end to the first equal comparison.
    pub settled_after: Option<Duration>,
}

impl TableCheck {
    pub fn ok(&self) -> bool {
        self.diffs == 0
    }
}

/// One soak run.
#[derive(Debug, Clone, Default)]
pub struct Soak {
    pub rep: usize,
    pub minutes: u64,
    pub samples: Vec<Sample>,
    /// (seconds since start, what): Redis restarts and flap storms.
    pub events: Vec<(f64, &'static str)>,
    /// Seconds of the reference instant.
    pub reference_s: f64,
    pub restart_period_s: f64,
    pub flap_period_s: f64,
    /// Longest Redis restart (SAVE to PING answered).
    pub max_restart: Duration,
    pub neigh_table: TableCheck,
    pub port_table: TableCheck,
    /// Exit codes of `neighsyncd audit` / `portsyncd audit` at the end.
    pub neigh_audit_exit: Option<i32>,
    pub port_audit_exit: Option<i32>,
    /// Audit counters read after the end-of-run comparison.
    pub final_neigh: Proc,
    pub final_port: Proc,
    pub csv: PathBuf,
    pub svg: PathBuf,
}

/// Which daemon a figure is about.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    Neigh,
    Port,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Neigh => "neighsyncd",
            Which::Port => "portsyncd",
        }
    }
    fn of(self, s: &Sample) -> &Proc {
        match self {
            Which::Neigh => &s.neigh,
            Which::Port => &s.port,
        }
    }
}

impl Soak {
    /// The sample at the reference instant (the first at or after it).
    fn reference(&self) -> Option<&Sample> {
        self.samples.iter().find(|s| s.t >= self.reference_s - 0.5)
    }

    /// (value at the reference, largest |value - it| after) of `f`.
    fn deviation(&self, f: impl Fn(&Sample) -> f64) -> Option<(f64, f64)> {
        let r = self.reference()?;
        let base = f(r);
        let dev = self
            .samples
            .iter()
            .filter(|s| s.t >= r.t)
            .map(|s| (f(s) - base).abs())
            .fold(0.0, f64::max);
        Some((base, dev))
    }

    /// (RSS KiB at the reference, largest deviation KiB after).
    pub fn rss_dev(&self, w: Which) -> Option<(f64, f64)> {
        self.deviation(|s| w.of(s).rss_kib as f64)
    }

    /// (fds at the reference, largest deviation after).
    pub fn fd_dev(&self, w: Which) -> Option<(f64, f64)> {
        self.deviation(|s| w.of(s).fds as f64)
    }

    /// Largest audit drift seen (samples and the final read); None if no
    /// sample had it.
    pub fn max_drift(&self, w: Which) -> Option<f64> {
        let fin = match w {
            Which::Neigh => &self.final_neigh,
            Which::Port => &self.final_port,
        };
        self.samples
            .iter()
            .map(|s| w.of(s))
            .chain(std::iter::once(fin))
            .filter_map(|p| p.drift)
            .reduce(f64::max)
    }

    fn final_of(&self, w: Which) -> &Proc {
        match w {
            Which::Neigh => &self.final_neigh,
            Which::Port => &self.final_port,
        }
    }

    /// Audits run and audit resyncs at the end.
    pub fn audits(&self, w: Which) -> (f64, f64) {
        let f = self.final_of(w);
        (
            f.audit_runs.unwrap_or(f64::NAN),
            f.audit_resyncs.unwrap_or(f64::NAN),
        )
    }

    /// True when the drift target holds for `w`.
    pub fn drift_ok(&self, w: Which) -> bool {
        let (runs, resyncs) = self.audits(w);
        self.max_drift(w) == Some(0.0) && resyncs == 0.0 && runs >= 1.0
    }

    /// Mean CPU over the run, percent of one core.
    pub fn mean_cpu(&self, w: Which) -> f64 {
        let v: Vec<f64> = self
            .samples
            .iter()
            .skip(1)
            .map(|s| w.of(s).cpu_pct)
            .collect();
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }

    /// Churn commands per second over the run.
    pub fn churn_rate(&self) -> f64 {
        match self.samples.last() {
            Some(s) if s.t > 0.0 => s.churn_ops as f64 / s.t,
            _ => 0.0,
        }
    }
}

// ===== the run =====

pub fn run(bin: &Path, port_bin: &Path, args: &Args, rep: usize) -> anyhow::Result<Soak> {
    let minutes = args.soak_minutes.max(1);
    let total = Duration::from_secs(minutes * 60);
    let short = minutes < 10;
    let (restart_every, flap_every, reference) = if short {
        (Duration::from_secs(60), Duration::from_secs(84), total / 4)
    } else {
        (
            Duration::from_secs(300),
            Duration::from_secs(420),
            Duration::from_secs(300),
        )
    };
    let out_dir = args
        .soak_out
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/soak"));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("mkdir {}", out_dir.display()))?;
    let out_dir = out_dir.canonicalize().unwrap_or(out_dir);
    let ports: Vec<String> = (0..args.ports.max(1))
        .map(|i| format!("Ethernet{}", 4 * i))
        .collect();

    let mut redis = RedisServer::start()?;
    let socket = redis.socket_path().to_path_buf();
    let dut = NetNs::new("soakd")?;
    let peer = NetNs::new("soakp")?;
    seed_config(&mut redis.conn(CONFIG_DB)?, &ports)?;
    let cfg = redis.db_config_path().to_str().context("path")?.to_owned();

    // portsyncd, then orchagent, then the ports.
    let mut port_d = Daemon::start(
        Some(&dut),
        port_bin,
        &[
            "--db-config",
            &cfg,
            "--metrics-addr",
            PORT_METRICS,
            "--audit-interval",
            "30",
        ],
    )?;
    port_d.wait_for_log(PORT_READY, SCENARIO_TIMEOUT)?;
    let orch = Orch::start(socket.clone());
    let adds: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "link add {p} type veth peer name p{p} netns {}",
                peer.name()
            )
        })
        .collect();
    ip_batch(&dut, &adds)?;
    ip_batch(&dut, &link_lines(&ports, "", "up"))?;
    ip_batch(&peer, &link_lines(&ports, "p", "up"))?;
    wait_ports_up(&redis, &ports, &mut port_d)?;

    let mut argv: Vec<&str> = vec![
        "--db-config",
        &cfg,
        "--metrics-addr",
        NEIGH_METRICS,
        "--audit-interval",
        "30",
    ];
    argv.extend(args.extra.iter().map(String::as_str));
    let mut neigh_d = Daemon::start(Some(&dut), bin, &argv)?;
    neigh_d.wait_for_log(READY, SCENARIO_TIMEOUT)?;

    let churn = Churn::start(&dut, &ports)?;
    let start = Instant::now();
    let mut soak = Soak {
        rep,
        minutes,
        reference_s: reference.as_secs_f64(),
        restart_period_s: restart_every.as_secs_f64(),
        flap_period_s: flap_every.as_secs_f64(),
        ..Soak::default()
    };
    let mut prev: Option<(Instant, Duration, Duration)> = None;
    let mut next_sample = Duration::ZERO;
    let mut next_restart = restart_every + EVENT_OFFSET;
    let mut next_flap = flap_every + EVENT_OFFSET;
    loop {
        let now = start.elapsed();
        if now >= next_sample {
            let s = sample(&dut, &neigh_d, &port_d, &churn, &orch, start, &mut prev)?;
            eprintln!(
                "soak {:>6.0} s: neighsyncd {} KiB {} fds {:.1} % drift {:?}; portsyncd {} KiB {} fds {:.1} % drift {:?}; entries {:?}; churn {} popped {}",
                s.t,
                s.neigh.rss_kib,
                s.neigh.fds,
                s.neigh.cpu_pct,
                s.neigh.drift,
                s.port.rss_kib,
                s.port.fds,
                s.port.cpu_pct,
                s.port.drift,
                s.entries,
                s.churn_ops,
                s.popped
            );
            soak.samples.push(s);
            next_sample += SAMPLE;
            if now >= total {
                break;
            }
        }
        if now >= next_restart {
            let t = start.elapsed();
            redis.restart_keeping_data()?;
            let took = start.elapsed() - t;
            soak.max_restart = soak.max_restart.max(took);
            eprintln!(
                "soak {:>6.0} s: Redis restarted ({took:?})",
                t.as_secs_f64()
            );
            soak.events.push((t.as_secs_f64(), "redis restart"));
            next_restart += restart_every;
        }
        if now >= next_flap {
            let t = start.elapsed();
            flap_storm(&dut, &ports)?;
            eprintln!(
                "soak {:>6.0} s: link flap storm ({STORM_ROUNDS} rounds, {:?})",
                t.as_secs_f64(),
                start.elapsed() - t
            );
            soak.events.push((t.as_secs_f64(), "link flaps"));
            next_flap += flap_every;
        }
        for (d, name) in [(&mut neigh_d, "neighsyncd"), (&mut port_d, "portsyncd")] {
            if !d.is_running() {
                bail!("{name} exited during the soak; log:\n{}", tail(&d.log()));
            }
        }
        churn.check()?;
        let wake = next_sample.min(next_restart).min(next_flap);
        std::thread::sleep(
            wake.saturating_sub(start.elapsed())
                .min(Duration::from_secs(1)),
        );
    }

    // The end: churn stops, the tables settle, then compared.
    let ops = churn.stop()?;
    let churn_end = Instant::now();
    eprintln!("soak: churn stopped after {ops} commands");
    let mut conn = redis.conn(0)?;
    let mut state = redis.conn(STATE_DB)?;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let n = neigh_check(&dut, &mut conn)?;
        let p = port_check(&dut, &mut conn, &mut state, &ports)?;
        let done = n.ok() && p.ok();
        let timed_out = churn_end.elapsed() >= SETTLE_MAX;
        if done || timed_out {
            let after = done.then(|| churn_end.elapsed());
            soak.neigh_table = TableCheck {
                settled_after: after,
                ..n
            };
            soak.port_table = TableCheck {
                settled_after: after,
                ..p
            };
            break;
        }
    }
    orch.check()?;
    soak.neigh_audit_exit = audit_cmd(&dut, bin, &cfg)?;
    soak.port_audit_exit = audit_cmd(&dut, port_bin, &cfg)?;
    soak.final_neigh = metrics(&dut, NEIGH_METRICS, "neighsyncd");
    soak.final_port = metrics(&dut, PORT_METRICS, "portsyncd");
    let neigh_log = neigh_d.log();
    let port_log = port_d.log();
    neigh_d.sigterm()?;
    port_d.sigterm()?;
    drop(orch);
    for (name, log) in [("neighsyncd", &neigh_log), ("portsyncd", &port_log)] {
        let drift: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("drift"))
            .take(10)
            .collect();
        if !drift.is_empty() {
            eprintln!("soak: {name} logged drift:\n{}", drift.join("\n"));
        }
    }

    soak.csv = out_dir.join("soak.csv");
    soak.svg = out_dir.join("soak.svg");
    std::fs::write(&soak.csv, csv(&soak)).with_context(|| format!("{}", soak.csv.display()))?;
    std::fs::write(&soak.svg, svg(&soak)).with_context(|| format!("{}", soak.svg.display()))?;
    eprintln!(
        "soak: samples in {}, plot in {}",
        soak.csv.display(),
        soak.svg.display()
    );
    Ok(soak)
}

fn seed_config(config: &mut redis::Connection, ports: &[String]) -> anyhow::Result<()> {
    let mut p = redis::pipe();
    for (i, port) in ports.iter().enumerate() {
        p.cmd("HSET").arg(format!("PORT|{port}"));
        for (f, v) in config_fields(i) {
            p.arg(f).arg(v);
        }
        p.ignore();
    }
    p.query::<()>(config).context("CONFIG_DB PORT")
}

/// CONFIG_DB `PORT|Ethernet<4i>` fields (as `ports256`).
fn config_fields(i: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            "lanes",
            format!("{},{},{},{}", 4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3),
        ),
        ("speed", "100000".into()),
        ("alias", format!("etp{}", i + 1)),
        ("index", i.to_string()),
        ("mtu", "9100".into()),
        ("admin_status", "up".into()),
    ]
}

fn link_lines(ports: &[String], prefix: &str, updown: &str) -> Vec<String> {
    ports
        .iter()
        .map(|p| format!("link set {prefix}{p} {updown}"))
        .collect()
}

fn wait_ports_up(redis: &RedisServer, ports: &[String], d: &mut Daemon) -> anyhow::Result<()> {
    let mut state = redis.conn(STATE_DB)?;
    let t0 = Instant::now();
    loop {
        let mut all = true;
        for p in ports {
            let s: Option<String> = redis::cmd("HGET")
                .arg(format!("PORT_TABLE|{p}"))
                .arg("netdev_oper_status")
                .query(&mut state)?;
            all &= s.as_deref() == Some("up");
        }
        if all {
            return Ok(());
        }
        if !d.is_running() || t0.elapsed() > SCENARIO_TIMEOUT {
            bail!(
                "STATE_DB ports not all up; portsyncd log:\n{}",
                tail(&d.log())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn flap_storm(dut: &NetNs, ports: &[String]) -> anyhow::Result<()> {
    let (down, up) = (link_lines(ports, "", "down"), link_lines(ports, "", "up"));
    for _ in 0..STORM_ROUNDS {
        ip_batch(dut, &down)?;
        std::thread::sleep(Duration::from_millis(100));
        ip_batch(dut, &up)?;
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn audit_cmd(dut: &NetNs, bin: &Path, cfg: &str) -> anyhow::Result<Option<i32>> {
    let b = bin.to_str().context("binary path")?;
    let out = dut.exec(&[b, "--db-config", cfg, "audit"])?;
    if !out.status.success() {
        eprintln!(
            "soak: {b} audit: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.status.code())
}

// ===== sampling =====

fn proc_now(pid: u32) -> anyhow::Result<(u64, usize, Duration)> {
    let (_, rss) = proc_rss(pid)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("/proc/{pid}/fd"))?
        .count();
    Ok((rss, fds, proc_cpu(pid)?))
}

fn metrics(dut: &NetNs, addr: &str, d: &str) -> Proc {
    let body = http_get(dut, addr, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let get = |name: &str| metrics_sample(&body, name);
    Proc {
        drift: get(&format!("{d}_audit_drift")),
        audit_runs: get(&format!("{d}_audit_runs_total")),
        audit_resyncs: get(&format!("{d}_resyncs_total{{cause=\"audit\"}}")),
        reconnect_resyncs: get(&format!("{d}_resyncs_total{{cause=\"redis_reconnect\"}}")),
        ..Proc::default()
    }
}

fn sample(
    dut: &NetNs,
    neigh: &Daemon,
    port: &Daemon,
    churn: &Churn,
    orch: &Orch,
    start: Instant,
    prev: &mut Option<(Instant, Duration, Duration)>,
) -> anyhow::Result<Sample> {
    let now = Instant::now();
    let (nr, nf, nc) = proc_now(neigh.pid())?;
    let (pr, pf, pc) = proc_now(port.pid())?;
    let pct = |cpu: Duration, before: Duration, since: Instant| {
        let wall = now.duration_since(since).as_secs_f64();
        if wall > 0.0 {
            cpu.saturating_sub(before).as_secs_f64() / wall * 100.0
        } else {
            0.0
        }
    };
    let (ncpu, pcpu) = match *prev {
        Some((at, n0, p0)) => (pct(nc, n0, at), pct(pc, p0, at)),
        None => (0.0, 0.0),
    };
    *prev = Some((now, nc, pc));
    let nm = metrics(dut, NEIGH_METRICS, "neighsyncd");
    let pm = metrics(dut, PORT_METRICS, "portsyncd");
    let entries = http_get(dut, NEIGH_METRICS, "/metrics")
        .and_then(|(_, b)| metrics_sample(&b, "neighsyncd_entries"));
    Ok(Sample {
        t: now.duration_since(start).as_secs_f64(),
        neigh: Proc {
            rss_kib: nr,
            fds: nf,
            cpu_pct: ncpu,
            ..nm
        },
        port: Proc {
            rss_kib: pr,
            fds: pf,
            cpu_pct: pcpu,
            ..pm
        },
        entries,
        churn_ops: churn.ops.load(Ordering::Relaxed),
        popped: orch.popped.load(Ordering::Relaxed),
    })
}

// ===== churn =====

/// xorshift64*: the churn's pseudo-random choices (fixed seed, so every
/// run writes the same sequence).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Churn address `k`: (port index, IP text). One in four is IPv6.
fn churn_ip(k: usize, ports: usize) -> (usize, String) {
    let port = k % ports;
    let j = k / ports;
    let ip = if k % 4 == 3 {
        format!("fc00:{port:x}::{:x}", 0x100 + j)
    } else {
        format!("10.{}.{}.{}", 200 + port % 50, j / 200, 10 + j % 200)
    };
    (port, ip)
}

/// The churn thread (see the module doc) feeding a resident
/// `ip -force -batch -`.
struct Churn {
    ops: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

fn spawn_ip(dut: &str) -> anyhow::Result<Child> {
    Command::new("ip")
        .args(["-n", dut, "-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn ip -force -batch -")
}

impl Churn {
    fn start(dut: &NetNs, ports: &[String]) -> anyhow::Result<Churn> {
        let ops = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ops2, stop2) = (ops.clone(), stop.clone());
        let dut = dut.name().to_owned();
        let ports = ports.to_vec();
        let mut ip = spawn_ip(&dut)?;
        let handle = std::thread::spawn(move || -> anyhow::Result<()> {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let per_tick = CHURN_PER_SEC * TICK.as_millis() as u64 / 1000;
            let t0 = Instant::now();
            let mut tick = 0u32;
            let mut text = String::new();
            while !stop2.load(Ordering::Relaxed) {
                text.clear();
                for _ in 0..per_tick {
                    let r = rng.next();
                    let k = (r % CHURN_IPS as u64) as usize;
                    let (p, addr) = churn_ip(k, ports.len());
                    let dev = &ports[p];
                    if (r >> 32) % 100 < 15 {
                        let _ = writeln!(text, "neigh del {addr} dev {dev}");
                    } else {
                        let m = r >> 16;
                        let _ = writeln!(
                            text,
                            "neigh replace {addr} lladdr 02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} dev {dev} nud permanent",
                            m & 0xff,
                            (m >> 8) & 0xff,
                            (m >> 16) & 0xff,
                            (m >> 24) & 0xff,
                            (m >> 32) & 0xff
                        );
                    }
                }
                let written = ip
                    .stdin
                    .as_mut()
                    .context("ip stdin")?
                    .write_all(text.as_bytes());
                if written.is_err() {
                    // ip died: start another one (the lines are lost).
                    let _ = ip.wait();
                    ip = spawn_ip(&dut)?;
                    continue;
                }
                ops2.fetch_add(per_tick, Ordering::Relaxed);
                tick += 1;
                let due = TICK * tick;
                std::thread::sleep(due.saturating_sub(t0.elapsed()));
            }
            drop(ip.stdin.take());
            let st = ip.wait().context("wait for ip -batch -")?;
            // -force: ip goes on after a failed command and exits 1 at the
            // end if any failed (deletes of absent entries do).
            if st.code().is_none() {
                bail!("ip -batch - killed: {st}");
            }
            Ok(())
        });
        Ok(Churn {
            ops,
            stop,
            handle: Some(handle),
        })
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.handle.as_ref().is_some_and(JoinHandle::is_finished) {
            bail!("the churn thread ended early");
        }
        Ok(())
    }

    /// Stops the churn once `ip` has applied every line; returns how many
    /// commands were written.
    fn stop(mut self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            match h.join() {
                Ok(r) => r?,
                Err(_) => bail!("the churn thread panicked"),
            }
        }
        Ok(self.ops.load(Ordering::Relaxed))
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ===== orchagent =====

fn connect(socket: &Path, db: i64) -> anyhow::Result<redis::Connection> {
    let info = redis::ConnectionAddr::Unix(socket.to_path_buf()).into_connection_info()?;
    let settings = info.redis_settings().clone().set_db(db);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(conn)
}

/// The orchagent stand-in: pops NEIGH_TABLE and PORT_TABLE, reconnecting
/// after Redis restarts.
struct Orch {
    popped: Arc<AtomicU64>,
    reconnects: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Orch {
    fn start(socket: PathBuf) -> Orch {
        let popped = Arc::new(AtomicU64::new(0));
        let reconnects = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (popped2, rec2, stop2) = (popped.clone(), reconnects.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut tables: Option<(Pops, Pops)> = None;
            while !stop2.load(Ordering::Relaxed) {
                let Some((neigh, port)) = tables.as_mut() else {
                    let made = connect(&socket, 0)
                        .and_then(|c| Pops::with_conn(c, "NEIGH_TABLE", 128))
                        .and_then(|n| {
                            let c = connect(&socket, 0)?;
                            Ok((n, Pops::with_conn(c, "PORT_TABLE", 128)?))
                        });
                    match made {
                        Ok(t) => {
                            rec2.fetch_add(1, Ordering::Relaxed);
                            tables = Some(t);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                    continue;
                };
                let got = neigh.pop().and_then(|n| Ok((n.len(), port.pop()?.len())));
                match got {
                    Ok((0, 0)) => std::thread::sleep(Duration::from_millis(5)),
                    Ok((n, _)) => {
                        popped2.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(_) => {
                        tables = None;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        });
        Orch {
            popped,
            reconnects,
            stop,
            handle: Some(handle),
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.handle.as_ref().is_some_and(JoinHandle::is_finished) {
            bail!("the consumer thread ended");
        }
        eprintln!(
            "soak: consumer popped {} NEIGH_TABLE entries, connected {} times",
            self.popped.load(Ordering::Relaxed),
            self.reconnects.load(Ordering::Relaxed)
        );
        Ok(())
    }
}

impl Drop for Orch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ===== end-of-run comparison =====

type Table = BTreeMap<String, BTreeMap<String, String>>;

/// The kernel's neighbours on the DUT under neighsyncd's rules for this
/// set-up (docs/behavior.md b.2; no dual-ToR, no EVPN, no link-local
/// opt-in): on an `Ethernet*` port, not IPv6 link-local (fe80::/10) nor
/// multicast, with a MAC, in PERMANENT, REACHABLE, PROBE, STALE or DELAY
/// (NOARP only when externally learned); key `<port>:<ip>`, fields `neigh`
/// (MAC) and `family` (`IPv4` / `IPv6`).
pub fn expected_neighs(ip_neigh_show: &str) -> Table {
    const VALID: &[&str] = &["PERMANENT", "REACHABLE", "PROBE", "STALE", "DELAY"];
    let mut out = Table::new();
    for line in ip_neigh_show.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(&ip) = w.first() else { continue };
        let after = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1));
        let (Some(dev), Some(mac)) = (after("dev"), after("lladdr")) else {
            continue;
        };
        if !dev.starts_with("Ethernet") {
            continue;
        }
        let v6 = ip.contains(':');
        let lower = ip.to_ascii_lowercase();
        let link_local = v6
            && (lower.starts_with("fe8")
                || lower.starts_with("fe9")
                || lower.starts_with("fea")
                || lower.starts_with("feb"));
        let multicast = if v6 {
            lower.starts_with("ff")
        } else {
            ip.split('.')
                .next()
                .and_then(|o| o.parse::<u8>().ok())
                .is_some_and(|o| (224..240).contains(&o))
        };
        if link_local || multicast {
            continue;
        }
        let valid = w.iter().any(|x| VALID.contains(x))
            || (w.contains(&"NOARP") && w.contains(&"extern_learn"));
        if !valid {
            continue;
        }
        let fields = BTreeMap::from([
            ("neigh".to_owned(), mac.to_ascii_lowercase()),
            (
                "family".to_owned(),
                if v6 { "IPv6" } else { "IPv4" }.to_owned(),
            ),
        ]);
        out.insert(format!("{dev}:{ip}"), fields);
    }
    out
}

fn hash_all(conn: &mut redis::Connection, pattern: &str, sep: char) -> anyhow::Result<Table> {
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(conn)?;
    let mut out = Table::new();
    for k in keys {
        let fv: BTreeMap<String, String> = redis::cmd("HGETALL").arg(&k).query(conn)?;
        let key = k.split_once(sep).map_or(k.as_str(), |(_, r)| r).to_owned();
        out.insert(key, fv);
    }
    Ok(out)
}

/// Compares `want` with `have`; only `fields` of `have` count when given.
fn diff(want: &Table, have: &Table, fields: Option<&[&str]>) -> TableCheck {
    let mut c = TableCheck {
        expected: want.len(),
        ..TableCheck::default()
    };
    let note = |c: &mut TableCheck, s: String| {
        c.diffs += 1;
        if c.examples.len() < 5 {
            c.examples.push(s);
        }
    };
    for (k, w) in want {
        match have.get(k) {
            None => note(&mut c, format!("missing {k} {w:?}")),
            Some(h) => {
                let h: BTreeMap<String, String> = match fields {
                    Some(f) => h
                        .iter()
                        .filter(|(n, _)| f.contains(&n.as_str()))
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect(),
                    None => h.clone(),
                };
                if h != *w {
                    note(&mut c, format!("different {k}: want {w:?}, have {h:?}"));
                }
            }
        }
    }
    for k in have.keys() {
        if !want.contains_key(k) {
            note(&mut c, format!("stale {k}"));
        }
    }
    c
}

fn neigh_check(dut: &NetNs, appl: &mut redis::Connection) -> anyhow::Result<TableCheck> {
    let kernel = expected_neighs(&dut.ip(&["neigh", "show"])?);
    let have = hash_all(appl, "NEIGH_TABLE:*", ':')?;
    Ok(diff(&kernel, &have, None))
}

/// APPL_DB `PORT_TABLE:<port>` holds the CONFIG_DB fields (extra fields
/// allowed), PortConfigDone and PortInitDone exist; STATE_DB
/// `PORT_TABLE|<port>` has portsyncd's four fields as the kernel says.
fn port_check(
    dut: &NetNs,
    appl: &mut redis::Connection,
    state: &mut redis::Connection,
    ports: &[String],
) -> anyhow::Result<TableCheck> {
    let script: String = ports
        .iter()
        .map(|p| format!(
                "echo {p} $(cat /sys/class/net/{p}/flags) $(cat /sys/class/net/{p}/mtu) $(cat /sys/class/net/{p}/operstate);"
            ))
        .collect();
    let out = dut.exec_ok(&["sh", "-c", &script])?;
    let mut want_state = Table::new();
    for l in out.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (Some(name), Some(flags), Some(mtu), Some(oper)) =
            (w.first(), w.get(1), w.get(2), w.get(3))
        else {
            bail!("unexpected sysfs line {l:?}");
        };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16)
            .with_context(|| format!("flags {flags:?}"))?;
        let updown = |b: bool| if b { "up" } else { "down" }.to_owned();
        // sysfs `flags` is dev->flags, without IFF_RUNNING, which the
        // kernel adds for netlink when the device is up and its operstate
        // is UP or UNKNOWN (dev_get_flags, netif_oper_up).
        let admin = flags & 0x1 != 0;
        let running = admin && matches!(*oper, "up" | "unknown");
        want_state.insert(
            (*name).to_owned(),
            BTreeMap::from([
                ("state".to_owned(), "ok".to_owned()),
                ("netdev_oper_status".to_owned(), updown(running)),
                ("admin_status".to_owned(), updown(admin)),
                ("mtu".to_owned(), (*mtu).to_owned()),
            ]),
        );
    }
    let have_state = hash_all(state, "PORT_TABLE|Ethernet*", '|')?;
    let mut c = diff(
        &want_state,
        &have_state,
        Some(&["state", "netdev_oper_status", "admin_status", "mtu"]),
    );
    let appl_ports = hash_all(appl, "PORT_TABLE:*", ':')?;
    for (i, p) in ports.iter().enumerate() {
        let have = appl_ports.get(p);
        for (f, v) in config_fields(i) {
            if have.and_then(|h| h.get(f)) != Some(&v) {
                c.diffs += 1;
                if c.examples.len() < 5 {
                    c.examples.push(format!(
                        "APPL_DB PORT_TABLE:{p} {f}: want {v}, have {have:?}"
                    ));
                }
            }
        }
    }
    for k in ["PortConfigDone", "PortInitDone"] {
        if !appl_ports.contains_key(k) {
            c.diffs += 1;
            c.examples.push(format!("APPL_DB PORT_TABLE:{k} missing"));
        }
    }
    c.expected += ports.len() + 2;
    Ok(c)
}

// ===== output =====

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x}"))
}

/// soak.csv: one line per sample.
pub fn csv(s: &Soak) -> String {
    let mut out = String::from(
        "t_s,neigh_rss_kib,neigh_fds,neigh_cpu_pct,neigh_audit_drift,neigh_audit_runs,neigh_audit_resyncs,neigh_reconnect_resyncs,neigh_entries,port_rss_kib,port_fds,port_cpu_pct,port_audit_drift,port_audit_runs,port_audit_resyncs,port_reconnect_resyncs,churn_ops,popped,events\n",
    );
    let mut prev_t = f64::NEG_INFINITY;
    for x in &s.samples {
        let ev: Vec<&str> = s
            .events
            .iter()
            .filter(|(t, _)| *t > prev_t && *t <= x.t)
            .map(|(_, e)| *e)
            .collect();
        prev_t = x.t;
        let _ = writeln!(
            out,
            "{:.1},{},{},{:.2},{},{},{},{},{},{},{},{:.2},{},{},{},{},{},{},{}",
            x.t,
            x.neigh.rss_kib,
            x.neigh.fds,
            x.neigh.cpu_pct,
            opt(x.neigh.drift),
            opt(x.neigh.audit_runs),
            opt(x.neigh.audit_resyncs),
            opt(x.neigh.reconnect_resyncs),
            opt(x.entries),
            x.port.rss_kib,
            x.port.fds,
            x.port.cpu_pct,
            opt(x.port.drift),
            opt(x.port.audit_runs),
            opt(x.port.audit_resyncs),
            opt(x.port.reconnect_resyncs),
            x.churn_ops,
            x.popped,
            ev.join(";")
        );
    }
    out
}

/// soak.svg: two panels over time (minutes), RSS (MiB) and open fds, one
/// line per daemon, the ±bound band around each daemon's value at the
/// reference instant, and a vertical mark per Redis restart and flap storm.
pub fn svg(s: &Soak) -> String {
    const W: f64 = 900.0;
    const PANEL_H: f64 = 240.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 150.0;
    const TOP: f64 = 40.0;
    const GAP: f64 = 60.0;
    let colors = [(Which::Neigh, "#1f77b4"), (Which::Port, "#d62728")];
    let t_max = s.samples.last().map_or(1.0, |x| x.t.max(1.0)) / 60.0;
    let plot_w = W - LEFT - RIGHT;
    let h = TOP + 2.0 * PANEL_H + GAP + 50.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{LEFT}" y="22" font-size="15">soak, {} min: RSS and open fds of neighsyncd and portsyncd (sampled every 10 s)</text>"#,
        s.minutes
    );
    type Get = fn(&Proc) -> f64;
    let panels: [(&str, Get, f64); 2] = [
        (
            "RSS (MiB)",
            |p| p.rss_kib as f64 / 1024.0,
            RSS_BOUND_KIB as f64 / 1024.0,
        ),
        ("open fds", |p| p.fds as f64, FD_BOUND as f64),
    ];
    for (pi, (label, get, bound)) in panels.iter().enumerate() {
        let y0 = TOP + pi as f64 * (PANEL_H + GAP);
        let vals: Vec<f64> = s
            .samples
            .iter()
            .flat_map(|x| [get(&x.neigh), get(&x.port)])
            .collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min) - bound;
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max) + bound;
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo.floor().max(0.0), hi.ceil())
        } else {
            (0.0, 1.0)
        };
        let x_of = |t_min: f64| LEFT + t_min / t_max * plot_w;
        let y_of = |v: f64| y0 + PANEL_H - (v - lo) / (hi - lo) * PANEL_H;
        let _ = writeln!(
            o,
            r##"<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#444"/>"##
        );
        let _ = writeln!(
            o,
            r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{label}</text>"#,
            y0 + PANEL_H / 2.0,
            y0 + PANEL_H / 2.0
        );
        // y ticks
        let step = nice_step(hi - lo);
        let mut v = (lo / step).ceil() * step;
        while v <= hi + 1e-9 {
            let y = y_of(v);
            let _ = writeln!(
                o,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                trim_num(v)
            );
            v += step;
        }
        // x ticks
        let xstep = nice_step(t_max);
        let mut t = 0.0;
        while t <= t_max + 1e-9 {
            let x = x_of(t);
            let _ = writeln!(
                o,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#444"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                y0 + PANEL_H,
                y0 + PANEL_H + 5.0,
                y0 + PANEL_H + 18.0,
                trim_num(t)
            );
            t += xstep;
        }
        // events
        for (t, what) in &s.events {
            let x = x_of(t / 60.0);
            let (c, dash) = if *what == "redis restart" {
                ("#888", "4,3")
            } else {
                ("#ff7f0e", "2,2")
            };
            let _ = writeln!(
                o,
                r#"<line x1="{x:.1}" x2="{x:.1}" y1="{y0}" y2="{}" stroke="{c}" stroke-dasharray="{dash}"/>"#,
                y0 + PANEL_H
            );
        }
        // reference and bands
        if let Some(r) = s.reference() {
            let x = x_of(r.t / 60.0);
            let _ = writeln!(
                o,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y0}" y2="{}" stroke="#2ca02c"/>"##,
                y0 + PANEL_H
            );
            for (w, c) in colors {
                let base = get(w.of(r));
                let (ya, yb) = (y_of(base + bound), y_of(base - bound));
                let _ = writeln!(
                    o,
                    r#"<rect x="{x:.1}" y="{ya:.1}" width="{:.1}" height="{:.1}" fill="{c}" fill-opacity="0.08"/>"#,
                    LEFT + plot_w - x,
                    yb - ya
                );
            }
        }
        for (w, c) in colors {
            let pts: Vec<String> = s
                .samples
                .iter()
                .map(|x| format!("{:.1},{:.1}", x_of(x.t / 60.0), y_of(get(w.of(x)))))
                .collect();
            let _ = writeln!(
                o,
                r#"<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{}"/>"#,
                pts.join(" ")
            );
        }
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">minutes since the churn started</text>"#,
        LEFT + plot_w / 2.0,
        h - 12.0
    );
    // legend
    let lx = LEFT + plot_w + 12.0;
    let legend = [
        ("neighsyncd", "#1f77b4", ""),
        ("portsyncd", "#d62728", ""),
        ("Redis restart", "#888", "4,3"),
        ("link flap storm", "#ff7f0e", "2,2"),
        ("reference (band: PASS bound)", "#2ca02c", ""),
    ];
    for (i, (name, c, dash)) in legend.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 20.0;
        let _ = writeln!(
            o,
            r#"<line x1="{lx}" x2="{}" y1="{y}" y2="{y}" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}" font-size="11">{name}</text>"#,
            lx + 18.0,
            lx + 22.0,
            y + 4.0
        );
    }
    o.push_str("</svg>\n");
    o
}

/// 1, 2 or 5 times a power of ten, giving 4-10 ticks over `span`.
fn nice_step(span: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / 6.0;
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.0
    } else if m < 7.5 {
        5.0
    } else {
        10.0
    }
}

fn trim_num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The summary table.
pub fn print(runs: &[Soak]) {
    if runs.is_empty() {
        return;
    }
    println!();
    println!("Soak (churn {CHURN_PER_SEC}/s over {CHURN_IPS} addresses, Redis restart and link flap storms, audits every 30 s):");
    println!();
    println!("| rep | minutes | daemon | RSS at reference | max RSS deviation after | fds at reference | max fd deviation after | mean CPU | audits run | max drift | audit resyncs | Redis reconnect resyncs |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in runs {
        for w in [Which::Neigh, Which::Port] {
            let (rb, rd) = s.rss_dev(w).unwrap_or((f64::NAN, f64::NAN));
            let (fb, fd) = s.fd_dev(w).unwrap_or((f64::NAN, f64::NAN));
            let (runs_n, resyncs) = s.audits(w);
            println!(
                "| {} | {} | {} | {:.2} MiB | {:.0} KiB | {fb:.0} | {fd:.0} | {:.1} % | {runs_n:.0} | {} | {resyncs:.0} | {} |",
                s.rep + 1,
                s.minutes,
                w.name(),
                rb / 1024.0,
                rd,
                s.mean_cpu(w),
                s.max_drift(w).map_or("-".to_owned(), |d| format!("{d:.0}")),
                opt(s.final_of(w).reconnect_resyncs),
            );
        }
    }
    for s in runs {
        println!();
        println!(
            "rep {}: reference at {:.0} s; Redis restarted every {:.0} s ({} times, longest {:.0} ms), flap storms every {:.0} s ({} times); churn {:.0} commands/s",
            s.rep + 1,
            s.reference_s,
            s.restart_period_s,
            s.events.iter().filter(|e| e.1 == "redis restart").count(),
            s.max_restart.as_secs_f64() * 1e3,
            s.flap_period_s,
            s.events.iter().filter(|e| e.1 == "link flaps").count(),
            s.churn_rate()
        );
        for (name, c) in [
            ("NEIGH_TABLE", &s.neigh_table),
            ("PORT_TABLE/STATE_DB", &s.port_table),
        ] {
            println!(
                "  end: {name}: {} expected, {} differences{}{}",
                c.expected,
                c.diffs,
                c.settled_after.map_or(String::new(), |d| format!(
                    ", equal {:.1} s after the churn",
                    d.as_secs_f64()
                )),
                if c.examples.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.examples.join("; "))
                }
            );
        }
        println!(
            "  end: `neighsyncd audit` exit {:?}, `portsyncd audit` exit {:?}",
            s.neigh_audit_exit, s.port_audit_exit
        );
        println!("  samples: {}; plot: {}", s.csv.display(), s.svg.display());
    }
}

/// The report's lines: (target, per repetition (holds, figure)).
pub fn targets(runs: &[Soak]) -> Vec<(String, Vec<(bool, String)>)> {
    if runs.is_empty() {
        return Vec::new();
    }
    let both = |f: &dyn Fn(&Soak, Which) -> (bool, String)| -> Vec<(bool, String)> {
        runs.iter()
            .map(|s| {
                let (a, fa) = f(s, Which::Neigh);
                let (b, fb) = f(s, Which::Port);
                (a && b, format!("{fa} / {fb}"))
            })
            .collect()
    };
    vec![
        (
            "soak: RSS after the reference (5 min) within 1 MiB of its value then (neighsyncd / portsyncd)".into(),
            both(&|s, w| match s.rss_dev(w) {
                Some((_, d)) => (d <= RSS_BOUND_KIB as f64, format!("{d:.0} KiB")),
                None => (false, "no sample".into()),
            }),
        ),
        (
            "soak: open fds after the reference within 2 of the count then (neighsyncd / portsyncd)".into(),
            both(&|s, w| match s.fd_dev(w) {
                Some((_, d)) => (d <= FD_BOUND as f64, format!("{d:.0}")),
                None => (false, "no sample".into()),
            }),
        ),
        (
            "soak: audit drift 0 in every sample, no audit resync (neighsyncd / portsyncd)".into(),
            both(&|s, w| {
                let (runs_n, resyncs) = s.audits(w);
                (
                    s.drift_ok(w),
                    format!(
                        "drift {}, {resyncs:.0} resyncs in {runs_n:.0} audits",
                        s.max_drift(w).map_or("?".to_owned(), |d| format!("{d:.0}"))
                    ),
                )
            }),
        ),
        (
            "soak: at the end APPL_DB NEIGH_TABLE = kernel; PORT_TABLE and STATE_DB = kernel".into(),
            runs.iter()
                .map(|s| {
                    (
                        s.neigh_table.ok() && s.port_table.ok(),
                        format!(
                            "{} / {} differences",
                            s.neigh_table.diffs, s.port_table.diffs
                        ),
                    )
                })
                .collect(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_neighbours_under_the_sync_rules() {
        let show = "\
10.200.0.10 dev Ethernet0 lladdr 02:AA:bb:cc:dd:ee PERMANENT
fc00::103 dev Ethernet4 lladdr 02:00:00:00:00:01 router STALE
10.200.0.11 dev Ethernet0 FAILED
10.200.0.12 dev Ethernet0 lladdr 02:00:00:00:00:02 NOARP
fe80::1 dev Ethernet0 lladdr 02:00:00:00:00:03 REACHABLE
ff02::16 dev Ethernet0 lladdr 33:33:00:00:00:16 NOARP
10.9.9.9 dev eth0 lladdr 02:00:00:00:00:04 REACHABLE
";
        let t = expected_neighs(show);
        assert_eq!(
            t.keys().collect::<Vec<_>>(),
            ["Ethernet0:10.200.0.10", "Ethernet4:fc00::103"]
        );
        assert_eq!(t["Ethernet0:10.200.0.10"]["neigh"], "02:aa:bb:cc:dd:ee");
        assert_eq!(t["Ethernet4:fc00::103"]["family"], "IPv6");
    }

    #[test]
    fn deviation_is_measured_from_the_reference_sample() {
        let mk = |t: f64, rss: u64, fds: usize| Sample {
            t,
            neigh: Proc {
                rss_kib: rss,
                fds,
                ..Proc::default()
            },
            ..Sample::default()
        };
        let s = Soak {
            reference_s: 20.0,
            samples: vec![
                mk(0.0, 100, 5),
                mk(10.0, 9000, 9),
                mk(20.0, 5000, 7),
                mk(30.0, 5600, 6),
            ],
            ..Soak::default()
        };
        assert_eq!(s.rss_dev(Which::Neigh), Some((5000.0, 600.0)));
        assert_eq!(s.fd_dev(Which::Neigh), Some((7.0, 1.0)));
    }

    #[test]
    fn svg_has_a_line_per_daemon_per_panel() {
        let s = Soak {
            minutes: 2,
            reference_s: 30.0,
            samples: (0..13)
                .map(|i| Sample {
                    t: i as f64 * 10.0,
                    ..Sample::default()
                })
                .collect(),
            events: vec![(65.0, "redis restart"), (89.0, "link flaps")],
            ..Soak::default()
        };
        let svg = svg(&s);
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
