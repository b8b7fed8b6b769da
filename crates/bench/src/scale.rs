//! `scale` (issue "at the physical floor", item 4: cost linear in the
//! table size, to 1M): at each of [`SIZES`] neighbours, in one repetition
//! and in this order,
//! * the raw Redis floor for that many keys ([`floor::run`]), so that the
//!   Redis CPU can also be judged against a floor holding as many keys;
//! * a cold sync ([`cold`], exactly as `cold100k`: the kernel table is
//!   filled first, then the daemon starts);
//! * a live burst ([`burst_and_flap`], exactly as `burst100k`: the daemon
//!   runs on an empty table, then the adds arrive in one `ip -batch`).
//!
//! The curve printed per size and phase: wall time, daemon and Redis CPU
//! per neighbour, the Redis CPU over the repetition's 100k floor (as every
//! other "x floor" figure) and over the floor at the same size, entries
//! lost, ENOBUFS, peak RSS (VmHWM), RSS [`STEADY_AFTER`](crate::STEADY_AFTER)
//! after the last write, bytes of that RSS per entry and the bytes each
//! added entry cost since the size before.
//!
//! Targets ([`targets`]), comparing the largest size with the one before
//! (1M with 100k by default): daemon CPU per neighbour at most 1.2x;
//! Redis CPU per neighbour over the same-size floor at most 1.3x (the
//! cold100k target) or at most 1.2x the ratio of the size before, whichever
//! is larger; 0 lost at every size.
//!
//! The neighbours are the bench's usual ones
//! ([`neighbor`](crate::neigh::neighbor): spread over the ports, one in four
//! IPv6); the gc_thresh limits are raised for [`LARGEST`] first
//! ([`crate::raise_gc_thresholds`]).

use std::path::Path;
use std::time::Duration;

use crate::neigh::{burst_and_flap, cold};
use crate::procfs::mib;
use crate::report::{at_most, every, Line};
use crate::{floor, Args, Results, Row};

/// The table sizes measured, smallest first.
pub const SIZES: &[usize] = &[1_000, 10_000, 100_000, 1_000_000];
/// The largest of [`SIZES`] (the gc_thresh limits are raised for it).
pub const LARGEST: usize = 1_000_000;
/// Daemon CPU per neighbour at the largest size over the size before.
const CPU_GROWTH: f64 = 1.2;
/// Redis CPU per neighbour over the floor: the cold100k target.
const FLOOR_RATIO: f64 = 1.3;
/// Or: the ratio to the floor may grow this much from the size before.
const RATIO_GROWTH: f64 = 1.2;

/// One size in one repetition.
#[derive(Debug, Clone)]
pub struct Point {
    pub n: usize,
    /// The raw Redis pipeline for `n` keys.
    pub floor: Row,
    pub cold: Row,
    pub burst: Row,
}

impl Point {
    fn rep(&self) -> usize {
        self.cold.rep
    }
    /// `row`'s Redis CPU per neighbour over this size's floor.
    fn own_floor_ratio(&self, row: &Row) -> Option<f64> {
        let f = self.floor.per_n_us(self.floor.redis_cpu);
        (f > 0.0).then(|| row.per_n_us(row.redis_cpu) / f)
    }
}

/// Every size of [`SIZES`] (or `--scale-sizes`) in repetition `rep`.
pub fn run(bin: &Path, args: &Args, rep: usize) -> anyhow::Result<Vec<Point>> {
    let mut out = Vec::new();
    for &n in sizes(args) {
        eprintln!("scale: {n} neighbours");
        let floor = floor::run(args, n, rep)?;
        neigh_quiet();
        let cold = cold(bin, args, n, rep, false)?;
        neigh_quiet();
        let burst = burst_and_flap(bin, args, n, false, rep)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("live burst {n}: no row"))?;
        for r in [&floor, &cold, &burst] {
            eprintln!("done: {r:?}");
        }
        out.push(Point {
            n,
            floor,
            cold,
            burst,
        });
    }
    Ok(out)
}

/// The kernel's neighbour tables (global: every namespace shares one hash
/// table per family), entries of both from `/proc/net/stat/arp_cache` and
/// `ndisc_cache` (first column, hex, the same on every CPU line).
fn kernel_entries() -> Option<u64> {
    let mut total = 0;
    for f in ["/proc/net/stat/arp_cache", "/proc/net/stat/ndisc_cache"] {
        let text = std::fs::read_to_string(f).ok()?;
        let first = text.lines().nth(1)?.split_whitespace().next()?;
        total += u64::from_str_radix(first, 16).ok()?;
    }
    Some(total)
}

/// Wait (up to [`QUIET_LIMIT`]) until the kernel's neighbour tables stop
/// shrinking: a namespace is torn down in the background after `ip netns
/// del`, and its neighbours are deleted from the shared hash table while
/// the next scenario runs. The kernel's neighbour dump resumes each
/// message at (bucket, position in the bucket's chain, counting every
/// namespace's entries), so a deletion ahead of that position between two
/// reads makes the dump skip an entry (seen once at 1M: the daemon's dump
/// held 999,999 of 1,000,000). Other processes' neighbours can still do
/// that; the "lost" column would show it.
fn neigh_quiet() {
    let start = std::time::Instant::now();
    let mut last = kernel_entries();
    while start.elapsed() < QUIET_LIMIT {
        std::thread::sleep(Duration::from_millis(500));
        let now = kernel_entries();
        if now.is_none() || now >= last {
            return;
        }
        last = now;
    }
}

/// How long [`neigh_quiet`] waits at most.
const QUIET_LIMIT: Duration = Duration::from_secs(60);

fn sizes(args: &Args) -> &[usize] {
    if args.scale_sizes.is_empty() {
        SIZES
    } else {
        &args.scale_sizes
    }
}

fn size_name(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// Picks one phase's row of a [`Point`].
type PhaseRow = fn(&Point) -> &Row;

/// Phase name and the row of a [`Point`] it shows.
const PHASES: [(&str, PhaseRow); 2] = [("cold", |p| &p.cold), ("burst", |p| &p.burst)];

/// The curve: one line per repetition, phase and size.
pub fn print(res: &Results) {
    if res.scale.is_empty() {
        return;
    }
    println!();
    println!("Scale (cost per neighbour against the table size):");
    println!();
    println!(
        "| rep | phase | N | wall | daemon CPU/neigh | Redis CPU/neigh | x floor 100k | x floor at N | floor Redis/key at N | lost | ENOBUFS | peak RSS | RSS +3 s | RSS +3 s/entry | added RSS/added entry |"
    );
    println!("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (phase, get) in PHASES {
        let mut prev: Option<&Row> = None;
        let mut prev_rep = usize::MAX;
        for p in &res.scale {
            let r = get(p);
            if p.rep() != prev_rep {
                prev = None;
                prev_rep = p.rep();
            }
            let wall = if r.wall == Duration::MAX {
                "never".to_owned()
            } else {
                format!("{:.3} s ({})", r.wall.as_secs_f64(), r.wall_what)
            };
            let ratio = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.2}"));
            let per_entry = if r.steady_rss_kib == 0 || r.n == 0 {
                "-".to_owned()
            } else {
                format!("{:.0} B", r.steady_rss_kib as f64 * 1024.0 / r.n as f64)
            };
            let added = match prev {
                Some(q) if r.n > q.n && r.steady_rss_kib > 0 && q.steady_rss_kib > 0 => format!(
                    "{:.0} B",
                    (r.steady_rss_kib as f64 - q.steady_rss_kib as f64) * 1024.0
                        / (r.n - q.n) as f64
                ),
                _ => "-".to_owned(),
            };
            println!(
                "| {} | {phase} | {} | {wall} | {:.2} us | {:.2} us | {} | {} | {:.2} us | {} | {} | {} | {} | {per_entry} | {added} |",
                p.rep() + 1,
                size_name(p.n),
                r.per_n_us(r.daemon_cpu),
                r.per_n_us(r.redis_cpu),
                ratio(res.floor_ratio(r)),
                ratio(p.own_floor_ratio(r)),
                p.floor.per_n_us(p.floor.redis_cpu),
                r.lost,
                r.overruns,
                mib(r.peak_rss_kib),
                if r.steady_rss_kib == 0 {
                    "-".to_owned()
                } else {
                    mib(r.steady_rss_kib)
                },
            );
            prev = Some(r);
        }
    }
}

/// The scale targets for the report: the largest size against the one
/// before it, per phase, and 0 lost everywhere.
pub fn targets(res: &Results, reps: usize) -> Vec<Line> {
    let mut lines = Vec::new();
    if res.scale.is_empty() {
        return lines;
    }
    // (largest, the size before) per repetition.
    let pairs: Vec<(&Point, &Point)> = (0..reps)
        .filter_map(|rep| {
            let mut pts: Vec<&Point> = res.scale.iter().filter(|p| p.rep() == rep).collect();
            pts.sort_by_key(|p| p.n);
            let big = pts.pop()?;
            let before = pts.pop()?;
            Some((big, before))
        })
        .collect();
    if let Some((big, before)) = pairs.first() {
        let (bn, sn) = (size_name(big.n), size_name(before.n));
        for (phase, get) in PHASES {
            let growth: Vec<f64> = pairs
                .iter()
                .map(|(b, s)| {
                    let (b, s) = (get(b), get(s));
                    b.per_n_us(b.daemon_cpu) / s.per_n_us(s.daemon_cpu)
                })
                .collect();
            lines.push(at_most(
                format!("scale {phase}: daemon CPU/neighbor at {bn} <= {CPU_GROWTH}x that at {sn}"),
                "physical floor 4",
                &growth,
                CPU_GROWTH,
                |x| format!("{x:.2}x"),
            ));
            let big_ratio: Vec<f64> = pairs
                .iter()
                .map(|(b, _)| b.own_floor_ratio(get(b)).unwrap_or(f64::NAN))
                .collect();
            let before_ratio: Vec<f64> = pairs
                .iter()
                .map(|(_, s)| s.own_floor_ratio(get(s)).unwrap_or(f64::NAN))
                .collect();
            let limit = crate::report::median(&before_ratio)
                .map_or(FLOOR_RATIO, |m| (m * RATIO_GROWTH).max(FLOOR_RATIO));
            lines.push(at_most(
                format!(
                    "scale {phase}: Redis CPU/neighbor at {bn} <= {limit:.2}x the {bn} floor \
                     ({FLOOR_RATIO}x, or {RATIO_GROWTH}x the ratio at {sn} if larger)"
                ),
                "physical floor 4",
                &big_ratio,
                limit,
                |x| format!("{x:.2}x"),
            ));
        }
    }
    lines.push(every(
        "scale: 0 lost at every size, cold and burst".into(),
        "physical floor 4",
        &(0..reps)
            .filter_map(|rep| {
                let pts: Vec<&Point> = res.scale.iter().filter(|p| p.rep() == rep).collect();
                if pts.is_empty() {
                    return None;
                }
                let lost: i64 = pts.iter().map(|p| p.cold.lost + p.burst.lost).sum();
                let never = pts.iter().any(|p| p.burst.wall == Duration::MAX);
                Some((
                    lost == 0 && !never,
                    format!(
                        "{lost} lost{}",
                        if never { ", a burst never settled" } else { "" }
                    ),
                ))
            })
            .collect::<Vec<_>>(),
    ));
    lines
}
