//! `bench`: measures the release `neighsyncd` and `portsyncd` against a
//! real `redis-server` and the real kernel (network namespaces with veth
//! ports), and prints the figures with the targets next to them.
//!
//! Scenarios (all by default, or name them on the command line):
//! * `floor`: the raw Redis pipeline for the cold100k keys (see
//!   [`floor`]); every Redis CPU figure is printed as a ratio to the floor
//!   of the same repetition (run automatically when a scenario that writes
//!   neighbours is selected).
//! * `idle`: start with an empty kernel table; RSS once the start-up dump
//!   is done (+1 s) and [`STEADY_AFTER`] after it.
//! * `cold1k`, `cold10k`, `cold100k`: the kernel table is filled first
//!   (`ip -batch`, `neigh add <ip> lladdr <mac> dev <port> nud permanent`,
//!   spread over the ports, 1 in 4 IPv6); time from process spawn to
//!   `SCARD NEIGH_TABLE_KEY_SET` = N (no consumer runs, so every written
//!   key stays pending there); RSS 1 s and [`STEADY_AFTER`] after the last
//!   write.
//! * With `--cpp-neighsyncd PATH`, `idle` and `cold100k` also run the C++
//!   neighsyncd right after ours, in the same repetition, and the memory
//!   targets compare with its figures.
//! * `burst100k`: the daemon runs on an empty table; 100k adds arrive in
//!   one `ip -batch`; lost = kernel count - APPL_DB count once settled; the
//!   time is from the end of the burst to the last entry written.
//! * `flap100k`: after `burst100k` on the same daemon: every entry changes
//!   NUD state (REACHABLE / STALE) with the same MAC; Redis commands are
//!   counted from `INFO commandstats` up to a sentinel neighbour added after
//!   the flaps (its own cost, measured just before, is subtracted).
//! * `latency`: isolated event -> publish, neighsyncd between its floors
//!   ([`relay`]) and, with `--cpp-neighsyncd`, the C++ ([`latency`]).
//! * `warm100k`: warm restart at 100k with 1k added, deleted and changed
//!   ([`warm`]).
//! * `ports256`: portsyncd with 256 ports ([`ports`]).
//! * `restore4`, `restore1000`: `neighsyncd restore` of 32k neighbours
//!   over 4 and over 1,000 interfaces after a system warm reboot
//!   ([`restore`]); `restore1000` brings `restore4` along (its target is a
//!   ratio to it).
//! * `soak` (only when named; 30 min): both daemons under churn, Redis
//!   restarts, link flap storms and audits, sampled every 10 s ([`soak`]).
//! * `scale` (not run by default: named only): cold sync and live burst at
//!   1k, 10k, 100k and 1M neighbours, the per-neighbour cost curve
//!   ([`scale`]).
//!
//! Figures: wall time, daemon CPU per neighbour (`/proc/<pid>/task/*/
//! schedstat`, ns on CPU; falls back to `/proc/<pid>/stat` utime+stime),
//! Redis CPU per neighbour (`INFO cpu` used_cpu_sys + used_cpu_user),
//! EVALSHA and all Redis commands per neighbour (`INFO commandstats`; the
//! commands run inside the scripts count too; the bench's own INFO/SCARD
//! polls are excluded), peak RSS (VmHWM), idle RSS (VmRSS once settled),
//! RSS +3 s (VmRSS [`STEADY_AFTER`] after the last write; `--smaps` prints
//! where it goes), entries lost. The last table holds every target with PASS/FAIL
//! ([`report`]).

mod consumer;
mod floor;
mod latency;
mod ports;
mod relay;
mod report;
mod restore;
mod scale;
mod soak;
mod warm;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use testbed::daemon::Daemon;
use testbed::netns::{NeighTopology, NetNs};
use testbed::redis_server::RedisServer;

/// The log line neighsyncd prints when the start-up dump is done.
const READY: &str = "cold start: kernel dump done";
/// Commands the bench itself sends (excluded from the command counts).
const OWN_COMMANDS: &[&str] = &["info", "scard", "ping"];
/// How often completion is polled.
const POLL: Duration = Duration::from_millis(2);
/// Give up waiting for a scenario after this long.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// A burst is settled when APPL_DB has not changed for this long.
const SETTLE: Duration = Duration::from_secs(5);
/// The steady RSS is sampled this long after the last write (after the
/// start-up dump on an empty table), as the C++ was measured.
const STEADY_AFTER: Duration = Duration::from_secs(3);
/// What the C++ neighsyncd prints once its dump request is sent
/// (`neighsyncd.cpp`, `cout << ... << endl`, so flushed).
const CPP_READY: &str = "Listens to neigh messages...";

/// Every scenario, in the order they run.
const ALL: &[&str] = &[
    "floor",
    "idle",
    "cold1k",
    "cold10k",
    "cold100k",
    "burst100k",
    "flap100k",
    "latency",
    "warm100k",
    "ports256",
    "restore4",
    "restore1000",
];
/// Scenarios run only when named (too long for the default run), after
/// those of [`ALL`].
const NAMED_ONLY: &[&str] = &["soak", "scale"];
/// Scenarios whose Redis CPU is printed as a ratio to the floor.
const WRITERS: &[&str] = &[
    "cold1k",
    "cold10k",
    "cold100k",
    "burst100k",
    "flap100k",
    "warm100k",
    "scale",
];

#[derive(Parser, Debug)]
#[command(about = "neighsyncd/portsyncd benchmark against a real redis-server and kernel")]
struct Args {
    /// Scenarios to run: floor, idle, cold1k, cold10k, cold100k, burst100k,
    /// flap100k (implies burst100k), latency, warm100k, ports256, restore4,
    /// restore1000 (implies restore4). Default: all. floor is added when a
    /// scenario writing neighbours is named. `soak` and `scale` (1k..1M)
    /// run only when named.
    scenarios: Vec<String>,
    /// Path of the neighsyncd binary (default: next to this binary, built
    /// first with `cargo build --release -p neighsyncd` when run by cargo).
    #[arg(long)]
    neighsyncd: Option<PathBuf>,
    /// Path of the portsyncd binary (default: as for neighsyncd).
    #[arg(long)]
    portsyncd: Option<PathBuf>,
    /// Number of DUT ports the neighbours are spread over.
    #[arg(long, default_value_t = 4)]
    ports: usize,
    /// Run every scenario this many times.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// What to print as the source of binaries given with --neighsyncd /
    /// --portsyncd (e.g. the commit they were built from).
    #[arg(long)]
    commit: Option<String>,
    /// Extra arguments for neighsyncd (e.g. `--extra=--log-level=DEBUG`).
    #[arg(long, allow_hyphen_values = true)]
    extra: Vec<String>,
    /// The C++ neighsyncd to compare memory with (a binary that takes
    /// `--db-config PATH` first, like the anchor's `bin/neighsyncd`
    /// wrapper): `idle` and `cold100k` then also run it, right after ours in
    /// the same repetition, and the memory targets use its figures;
    /// `latency` runs it in turns with ours and the floors.
    #[arg(long)]
    cpp_neighsyncd: Option<PathBuf>,
    /// Print where the daemon's RSS goes (per mapping, from
    /// /proc/<pid>/smaps) at every steady-RSS sample.
    #[arg(long)]
    smaps: bool,
    /// Length of the `soak` scenario in minutes (below 10, its Redis
    /// restart and flap periods shrink to 1 and 1.4 min).
    #[arg(long, default_value_t = 30)]
    soak_minutes: u64,
    /// Where `soak` writes soak.csv and soak.svg (default: target/soak in
    /// the workspace).
    #[arg(long)]
    soak_out: Option<PathBuf>,
    /// The table sizes `scale` runs, comma-separated, smallest first
    /// (default 1000,10000,100000,1000000).
    #[arg(long, value_delimiter = ',')]
    scale_sizes: Vec<usize>,
}

/// What a [`Row`] measured.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Kind {
    #[default]
    Idle,
    Cold,
    Burst,
    Flap,
    Floor,
    Warm,
    Restore,
    /// The C++ neighsyncd on an empty table (`--cpp-neighsyncd`).
    CppIdle,
    /// The C++ neighsyncd's cold sync (`--cpp-neighsyncd`).
    CppCold,
}

/// One row of the table.
#[derive(Debug, Default, Clone)]
struct Row {
    name: String,
    kind: Kind,
    /// Repetition (0-based).
    rep: usize,
    n: usize,
    wall: Duration,
    /// What `wall` measures.
    wall_what: &'static str,
    daemon_cpu: Duration,
    redis_cpu: Duration,
    evalsha: i64,
    commands: i64,
    peak_rss_kib: u64,
    idle_rss_kib: u64,
    /// VmRSS [`STEADY_AFTER`] after the last write (idle, cold and live
    /// burst; 0 elsewhere).
    steady_rss_kib: u64,
    lost: i64,
    overruns: usize,
}

impl Row {
    fn per_n_us(&self, d: Duration) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        d.as_secs_f64() * 1e6 / self.n as f64
    }
    fn per_n(&self, c: i64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        c as f64 / self.n as f64
    }
}

/// Everything one bench run measured.
#[derive(Debug, Default)]
struct Results {
    rows: Vec<Row>,
    latency: Vec<latency::Latency>,
    warm: Vec<warm::WarmCheck>,
    ports: Vec<ports::Ports>,
    restore: Vec<restore::RestoreRun>,
    soak: Vec<soak::Soak>,
    scale: Vec<scale::Point>,
}

impl Results {
    /// The floor's Redis CPU per key in repetition `rep`.
    fn floor_us(&self, rep: usize) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.kind == Kind::Floor && r.rep == rep)
            .map(|r| r.per_n_us(r.redis_cpu))
    }
    /// `row`'s Redis CPU per neighbour over the floor of its repetition.
    fn floor_ratio(&self, row: &Row) -> Option<f64> {
        let f = self.floor_us(row.rep)?;
        (f > 0.0 && row.n > 0).then(|| row.per_n_us(row.redis_cpu) / f)
    }
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(relay::SUBCOMMAND) {
        return relay::main(std::env::args().skip(2));
    }
    let args = Args::parse();
    let mut scenarios: Vec<String> = if args.scenarios.is_empty() {
        ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    for s in &scenarios {
        if !ALL.contains(&s.as_str()) && !NAMED_ONLY.contains(&s.as_str()) {
            bail!(
                "unknown scenario {s:?}; known: {}, {}",
                ALL.join(", "),
                NAMED_ONLY.join(", ")
            );
        }
    }
    if scenarios.iter().any(|s| WRITERS.contains(&s.as_str()))
        && !scenarios.iter().any(|s| s == "floor")
    {
        scenarios.insert(0, "floor".to_owned());
    }
    if scenarios.iter().any(|s| s == "restore1000") {
        scenarios.push("restore4".to_owned());
    }
    // In the order of ALL, then NAMED_ONLY.
    scenarios.sort_by_key(|s| {
        ALL.iter()
            .chain(NAMED_ONLY)
            .position(|a| a == s)
            .unwrap_or(usize::MAX)
    });
    scenarios.dedup();
    let wants_neigh = scenarios.iter().any(|s| s != "floor" && s != "ports256");
    let wants_ports = scenarios.iter().any(|s| s == "ports256" || s == "soak");
    let bin = if wants_neigh {
        daemon_path("neighsyncd", args.neighsyncd.as_ref())?
    } else {
        PathBuf::new()
    };
    let port_bin = if wants_ports {
        daemon_path("portsyncd", args.portsyncd.as_ref())?
    } else {
        PathBuf::new()
    };
    raise_gc_thresholds(if scenarios.iter().any(|s| s == "scale") {
        scale::LARGEST
    } else {
        100_000
    })?;
    let commit = if args.neighsyncd.is_some() || args.portsyncd.is_some() {
        args.commit
            .clone()
            .unwrap_or_else(|| "given binaries (unknown source; see --commit)".to_owned())
    } else {
        source_commit()
    };
    if wants_neigh {
        eprintln!("neighsyncd: {}", bin.display());
    }
    if let Some(cpp) = &args.cpp_neighsyncd {
        eprintln!("C++ neighsyncd: {}", cpp.display());
    }
    if wants_ports {
        eprintln!("portsyncd: {}", port_bin.display());
    }
    let mut res = Results::default();
    for rep in 0..args.repeat {
        for s in &scenarios {
            eprintln!("== repetition {}: {s}", rep + 1);
            let r = match s.as_str() {
                "floor" => vec![floor::run(&args, 100_000, rep)?],
                "idle" => {
                    let mut r = vec![idle(&bin, &args, rep, false)?];
                    if let Some(cpp) = &args.cpp_neighsyncd {
                        r.push(idle(cpp, &args, rep, true)?);
                    }
                    r
                }
                "cold1k" => vec![cold(&bin, &args, 1_000, rep, false)?],
                "cold10k" => vec![cold(&bin, &args, 10_000, rep, false)?],
                "cold100k" => {
                    let mut r = vec![cold(&bin, &args, 100_000, rep, false)?];
                    if let Some(cpp) = &args.cpp_neighsyncd {
                        r.push(cold(cpp, &args, 100_000, rep, true)?);
                    }
                    r
                }
                "burst100k" if scenarios.iter().any(|s| s == "flap100k") => continue,
                "burst100k" => burst_and_flap(&bin, &args, 100_000, false, rep)?,
                "flap100k" => burst_and_flap(&bin, &args, 100_000, true, rep)?,
                "latency" => {
                    let cpp = args.cpp_neighsyncd.as_deref();
                    res.latency.extend(latency::run(&bin, cpp, &args, rep)?);
                    continue;
                }
                "warm100k" => {
                    let (row, check) = warm::run(&bin, &args, 100_000, rep)?;
                    res.warm.push(check);
                    vec![row]
                }
                "ports256" => {
                    res.ports.push(ports::run(&port_bin, rep)?);
                    continue;
                }
                "restore4" | "restore1000" => {
                    let n = if s == "restore4" {
                        restore::FEW
                    } else {
                        restore::MANY
                    };
                    let (row, run) = restore::run(&bin, n, rep, &args)?;
                    res.restore.push(run);
                    vec![row]
                }
                "soak" => {
                    res.soak.push(soak::run(&bin, &port_bin, &args, rep)?);
                    continue;
                }
                "scale" => {
                    res.scale.extend(scale::run(&bin, &args, rep)?);
                    continue;
                }
                _ => continue,
            };
            for row in &r {
                eprintln!("done: {row:?}");
            }
            res.rows.extend(r);
        }
    }
    println!("Daemon binaries built from: {commit}");
    if let Some(cpp) = &args.cpp_neighsyncd {
        println!("C++ neighsyncd: {}", cpp.display());
    }
    println!();
    print_table(&res);
    latency::print(&res.latency);
    warm::print(&res.warm);
    ports::print(&res.ports);
    restore::print(&res.restore);
    soak::print(&res.soak);
    scale::print(&res);
    report::print(&res, args.repeat);
    Ok(())
}

// ===== set-up =====

/// The release binary `name`: `over` if given, else next to this binary,
/// built first with `cargo build --release -p <name>` when run by cargo.
fn daemon_path(name: &str, over: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = over {
        return Ok(p.clone());
    }
    if let Ok(cargo) = std::env::var("CARGO") {
        let st = Command::new(cargo)
            .args(["build", "--release", "-p", name, "--bin", name])
            .status()
            .with_context(|| format!("cargo build --release -p {name}"))?;
        if !st.success() {
            bail!("building {name} failed: {st}");
        }
    }
    let exe = std::env::current_exe().context("current_exe")?;
    let dir = exe.parent().context("binary dir")?;
    let p = dir.join(name);
    if !p.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p {name}` or pass --{name}",
            p.display()
        );
    }
    Ok(p)
}

/// The git commit of the daemons' sources (this bench's workspace), with
/// the daemon paths that differ from it in the working tree.
fn source_commit() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown (no git)".to_owned();
    };
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "crates/neighsyncd/src",
        "crates/portsyncd/src",
        "crates/swss/src",
        "crates/sonic-netlink/src",
        "crates/sonic-daemon/src",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .unwrap_or_default();
    let dirty: Vec<&str> = dirty.lines().filter_map(|l| l.get(3..)).collect();
    if dirty.is_empty() {
        head
    } else {
        format!("{head} + uncommitted changes in {}", dirty.join(", "))
    }
}

/// Raise the neighbour table limits (global on this machine) so that
/// `entries` neighbours fit with room to spare (and 100k with the limits
/// used so far: 256 Ki, 512 Ki, 1 Mi); only raises. Below gc_thresh1 the
/// kernel collects nothing; gc_thresh3 is the hard limit (an add beyond it
/// fails, and `ip -batch` stops there without `-force`).
fn raise_gc_thresholds(entries: usize) -> anyhow::Result<()> {
    let e = entries as u64;
    for fam in ["ipv4", "ipv6"] {
        for (k, want) in [
            ("gc_thresh1", (e + e / 4).max(262_144)),
            ("gc_thresh2", (e + e / 2).max(524_288)),
            ("gc_thresh3", (2 * e).max(1_048_576)),
        ] {
            let path = format!("/proc/sys/net/{fam}/neigh/default/{k}");
            let cur: u64 = std::fs::read_to_string(&path)
                .with_context(|| format!("read {path}"))?
                .trim()
                .parse()
                .with_context(|| format!("parse {path}"))?;
            if cur < want {
                std::fs::write(&path, want.to_string()).with_context(|| format!("write {path}"))?;
            }
        }
    }
    Ok(())
}

/// Neighbour `i`: port index, IP text, MAC text. One in four is IPv6.
fn neighbor(i: usize, ports: usize) -> (usize, String, String) {
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

fn neigh_lines(n: usize, ports: usize, verb: &str) -> Vec<String> {
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

fn ip_batch(ns: &NetNs, lines: &[String]) -> anyhow::Result<()> {
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
fn kernel_count(topo: &NeighTopology) -> anyhow::Result<usize> {
    let mut n = 0;
    for fam in ["-4", "-6"] {
        let out = topo.dut().ip(&[fam, "neigh", "show", "nud", "permanent"])?;
        n += out.lines().filter(|l| !l.trim().is_empty()).count();
    }
    Ok(n)
}

/// neighsyncd (`cpp`: the C++ one, which gets no `--extra` arguments) in
/// the DUT namespace on `redis`.
fn start_daemon(
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

// ===== measurements =====

/// CPU time of every thread of `pid`.
fn proc_cpu(pid: u32) -> anyhow::Result<Duration> {
    let mut ns: u64 = 0;
    let mut found = false;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                if let Some(v) = s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    ns += v;
                    found = true;
                }
            }
        }
    }
    if found {
        return Ok(Duration::from_nanos(ns));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(") ").context("stat format")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

/// The context-switch lines of /proc/<pid>/status (diagnostics).
fn ctx_switches(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// (VmHWM, VmRSS) in KiB.
fn proc_rss(pid: u32) -> anyhow::Result<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let get = |k: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((get("VmHWM:"), get("VmRSS:")))
}

/// Redis CPU and command counters at one instant.
#[derive(Debug, Clone, Default)]
struct RedisStats {
    cpu: Duration,
    calls: HashMap<String, i64>,
}

impl RedisStats {
    fn read(conn: &mut redis::Connection) -> anyhow::Result<Self> {
        let cpu_text: String = redis::cmd("INFO").arg("cpu").query(conn)?;
        let mut cpu = 0.0f64;
        for l in cpu_text.lines() {
            if let Some(v) = l
                .strip_prefix("used_cpu_sys:")
                .or_else(|| l.strip_prefix("used_cpu_user:"))
            {
                cpu += v.trim().parse::<f64>().unwrap_or(0.0);
            }
        }
        let cs: String = redis::cmd("INFO").arg("commandstats").query(conn)?;
        let mut calls = HashMap::new();
        for l in cs.lines() {
            let Some(rest) = l.strip_prefix("cmdstat_") else {
                continue;
            };
            let Some((name, fields)) = rest.split_once(':') else {
                continue;
            };
            let n = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            calls.insert(name.to_owned(), n);
        }
        Ok(RedisStats {
            cpu: Duration::from_secs_f64(cpu),
            calls,
        })
    }

    /// (EVALSHA calls, all calls except the bench's own) since `before`.
    fn commands_since(&self, before: &RedisStats) -> (i64, i64) {
        let mut evalsha = 0;
        let mut all = 0;
        for (name, n) in &self.calls {
            let d = n - before.calls.get(name).copied().unwrap_or(0);
            if OWN_COMMANDS.contains(&name.as_str()) {
                continue;
            }
            if name == "evalsha" {
                evalsha += d;
            }
            all += d;
        }
        (evalsha, all)
    }
}

fn scard(conn: &mut redis::Connection) -> anyhow::Result<usize> {
    Ok(redis::cmd("SCARD").arg("NEIGH_TABLE_KEY_SET").query(conn)?)
}

/// Poll until `SCARD NEIGH_TABLE_KEY_SET` >= `want`; returns the instant it
/// was seen.
fn wait_scard(
    conn: &mut redis::Connection,
    daemon: &mut Daemon,
    want: usize,
) -> anyhow::Result<Instant> {
    let start = Instant::now();
    loop {
        if scard(conn)? >= want {
            return Ok(Instant::now());
        }
        if !daemon.is_running() {
            bail!("neighsyncd exited; log:\n{}", tail(&daemon.log()));
        }
        if start.elapsed() > SCENARIO_TIMEOUT {
            bail!(
                "APPL_DB did not reach {want} keys; log:\n{}",
                tail(&daemon.log())
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Poll until `SCARD NEIGH_TABLE_KEY_SET` >= `want` (returns the instant
/// and true), or until it has not changed for [`SETTLE`] since the first
/// key, or [`SCENARIO_TIMEOUT`] passed (the instant of the last change and
/// false: the caller counts what is missing as lost).
fn settle_scard(
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

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn overruns(daemon: &Daemon) -> usize {
    daemon.log().matches("netlink overrun (ENOBUFS)").count()
}

// ===== scenarios =====

fn idle(bin: &Path, args: &Args, rep: usize, cpp: bool) -> anyhow::Result<Row> {
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
fn steady_rss(
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

/// RSS per mapping kind of `pid` (/proc/<pid>/smaps): the executable's
/// segments by permission, each shared library, heap, stack and anonymous
/// mappings; largest first.
fn smaps_summary(pid: u32) -> String {
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

fn cold(bin: &Path, args: &Args, n: usize, rep: usize, cpp: bool) -> anyhow::Result<Row> {
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
fn burst_and_flap(
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

// ===== output =====

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn print_table(res: &Results) {
    if res.rows.is_empty() {
        return;
    }
    println!(
        "| rep | scenario | N | wall | daemon CPU/neigh | Redis CPU/neigh | x floor | EVALSHA/neigh | Redis cmds/neigh | peak RSS | idle RSS | RSS +3 s | lost | ENOBUFS |"
    );
    println!("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &res.rows {
        let wall = if r.wall == Duration::MAX {
            "never".to_owned()
        } else {
            format!("{:.3} s ({})", r.wall.as_secs_f64(), r.wall_what)
        };
        let (d, rc, e, c) = if r.n == 0 {
            ("-".into(), "-".into(), "-".into(), "-".into())
        } else {
            (
                if r.kind == Kind::Floor {
                    "-".to_owned()
                } else {
                    format!("{:.2} us", r.per_n_us(r.daemon_cpu))
                },
                format!("{:.2} us", r.per_n_us(r.redis_cpu)),
                format!("{:.4}", r.per_n(r.evalsha)),
                format!("{:.4} ({})", r.per_n(r.commands), r.commands),
            )
        };
        let ratio = match r.kind {
            Kind::Idle | Kind::CppIdle | Kind::Flap | Kind::Restore => "-".to_owned(),
            _ => res
                .floor_ratio(r)
                .map_or("-".to_owned(), |x| format!("{x:.2}")),
        };
        let rss = |kib: u64| {
            if r.kind == Kind::Floor || kib == 0 {
                "-".to_owned()
            } else {
                mib(kib)
            }
        };
        let steady = if r.steady_rss_kib == 0 {
            "-".to_owned()
        } else {
            mib(r.steady_rss_kib)
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.rep + 1,
            r.name,
            r.n,
            wall,
            d,
            rc,
            ratio,
            e,
            c,
            rss(r.peak_rss_kib),
            rss(r.idle_rss_kib),
            steady,
            if r.n == 0 {
                "-".to_owned()
            } else {
                r.lost.to_string()
            },
            if r.kind == Kind::Floor {
                "-".to_owned()
            } else {
                r.overruns.to_string()
            }
        );
    }
}
