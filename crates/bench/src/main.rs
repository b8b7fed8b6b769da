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
mod neigh;
mod ports;
mod procfs;
mod relay;
mod report;
mod restore;
mod scale;
mod soak;
mod warm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;

use neigh::{burst_and_flap, cold, idle};
use procfs::mib;

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
    /// `/proc/<pid>/smaps`) at every steady-RSS sample.
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

// ===== output =====

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
