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
//! equal the kernel's neighbours under the sync rules
//! ([`expected_neighs`](check::expected_neighs)), APPL_DB
//! `PORT_TABLE:<port>` must hold the CONFIG_DB fields (and
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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use testbed::daemon::Daemon;
use testbed::netns::NetNs;
use testbed::redis_server::RedisServer;

use crate::neigh::{ip_batch, tail};
use crate::{Args, READY, SCENARIO_TIMEOUT};

mod check;
mod load;
mod plot;
mod sample;

pub use plot::{csv, svg};

use check::{audit_cmd, neigh_check, port_check};
use load::{flap_storm, link_lines, seed_config, wait_ports_up, Churn, Orch};
use plot::opt;
use sample::{metrics, sample};

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
mod tests;
