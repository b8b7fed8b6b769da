//! `latency`: isolated kernel event -> `NEIGH_TABLE_CHANNEL@0` publish,
//! for neighsyncd and, on the same events, its floors ([`relay`]) and the
//! C++ neighsyncd (`--cpp-neighsyncd`).
//!
//! As the C++ was measured (issues "one engine", 20): a resident `ip
//! -force -batch -` in the DUT namespace (one process, commands written to
//! its stdin), events 5-20 ms apart (uniformly random), and a thread
//! SUBSCRIBEd to `NEIGH_TABLE_CHANNEL@0` timestamping every message.
//! Latency = message read - command written. Two [`Pattern`]s:
//! * [`Pattern::NewIp`]: each event a `neigh replace` of an IPv4 address
//!   never used before (one `RTM_NEWNEIGH` of a new entry);
//! * [`Pattern::ReplaceMac`]: each event a `neigh replace` of one of 16
//!   resident neighbours with a MAC never used before (a real change).
//!
//! Fairness: one Redis, one subscriber, one `ip` process and the same
//! pacing for every [`Subject`]; the subjects take turns in blocks of
//! [`BLOCK`] events ([`ROUNDS`] rounds, the order rotating each round), so
//! that the VM's drift hits all of them alike. Only one subject runs at a
//! time: it is started (in the DUT namespace, own process), left idle
//! [`IDLE_BEFORE`], its block is run, it is stopped (SIGTERM), the block's
//! new IPs are deleted and APPL_DB is emptied (`FLUSHDB`) before the next.
//!
//! The producers PUBLISH only when a key becomes pending (neighsyncd's
//! one-key form, the C++'s scripts) or on every transaction, so after each
//! publish the bench pops the table as orchagent would (the pops script,
//! batch 128) before the next event; the messages seen between two events
//! are that event's publishes (one per flush: more than one means the event
//! was written in several flushes).

use std::io::Write;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use testbed::daemon::Daemon;
use testbed::netns::NeighTopology;
use testbed::redis_server::RedisServer;

use crate::consumer::{Pops, Subscriber};
use crate::neigh::{ip_batch, neigh_lines, neighbor, start_daemon, tail};
use crate::procfs::{ctx_switches, proc_cpu};
use crate::relay::{self, Mode};
use crate::{Args, CPP_READY, READY, SCENARIO_TIMEOUT};

/// Events per subject and pattern in one repetition: [`ROUNDS`] blocks.
const EVENTS: usize = ROUNDS * BLOCK;
/// Turns each subject takes per pattern.
const ROUNDS: usize = 8;
/// Events in one turn.
const BLOCK: usize = 50;
/// Resident neighbours ([`Pattern::ReplaceMac`] cycles over them).
const NEIGHBOURS: usize = 16;
/// Gap between two events: uniformly random in this range.
const GAP_MS: (u64, u64) = (5, 20);
/// A subject is left idle this long after its start-up before its block.
const IDLE_BEFORE: Duration = Duration::from_millis(300);
/// An event whose publish is not seen within this long counts as lost.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
const CHANNEL: &str = "NEIGH_TABLE_CHANNEL@0";

/// What each event does (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    NewIp,
    ReplaceMac,
}

impl Pattern {
    pub const ALL: [Pattern; 2] = [Pattern::NewIp, Pattern::ReplaceMac];
    pub fn name(self) -> &'static str {
        match self {
            Pattern::NewIp => "new IP",
            Pattern::ReplaceMac => "replace MAC",
        }
    }
}

/// What turns the kernel's events into publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// [`relay`] floor 1: one `PUBLISH` per `RTM_NEWNEIGH`.
    RelayPublish,
    /// [`relay`] floor 2: neighsyncd's one-key transaction.
    RelayTransaction,
    /// This workspace's neighsyncd (`--neighsyncd`).
    Ours,
    /// The C++ neighsyncd (`--cpp-neighsyncd`).
    Cpp,
}

impl Subject {
    pub fn name(self) -> &'static str {
        match self {
            Subject::RelayPublish => "floor 1: relay PUBLISH",
            Subject::RelayTransaction => "floor 2: relay MULTI/EXEC",
            Subject::Ours => "neighsyncd",
            Subject::Cpp => "C++ neighsyncd",
        }
    }
}

/// The events of one subject and pattern in one repetition.
#[derive(Debug, Clone)]
pub struct Latency {
    pub rep: usize,
    pub pattern: Pattern,
    pub subject: Subject,
    /// Event -> publish, one per event whose publish was seen.
    pub samples: Vec<Duration>,
    /// Events without a publish within [`PUBLISH_TIMEOUT`].
    pub lost: usize,
    /// Events that gave more than one `G` message.
    pub multi_publish: usize,
    /// All `G` messages seen.
    pub messages: usize,
    /// The subject's CPU time over its blocks (all threads; start-up not
    /// included).
    pub cpu: Duration,
}

impl Latency {
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.samples.clone();
        v.sort();
        v
    }

    /// The `q` quantile (nearest rank), `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let v = self.sorted();
        if v.is_empty() {
            return None;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v.get(rank - 1).copied()
    }

    pub fn max(&self) -> Option<Duration> {
        self.samples.iter().max().copied()
    }

    pub fn mean(&self) -> Option<Duration> {
        if self.samples.is_empty() {
            return None;
        }
        Some(self.samples.iter().sum::<Duration>() / self.samples.len() as u32)
    }
}

/// xorshift64*: the event gaps need no better randomness.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Rng(t | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One repetition: every subject (the C++ with `cpp`) on both patterns,
/// in alternating blocks (module docs). One [`Latency`] per pattern and
/// subject.
pub fn run(
    bin: &Path,
    cpp: Option<&Path>,
    args: &Args,
    rep: usize,
) -> anyhow::Result<Vec<Latency>> {
    let redis = RedisServer::start()?;
    let topo = NeighTopology::new(args.ports)?;
    ip_batch(topo.dut(), &neigh_lines(NEIGHBOURS, args.ports, "add"))?;
    let mut conn = redis.conn(0)?;
    let mut pops = Pops::new(&redis, "NEIGH_TABLE", 128)?;
    let mut sub = Subscriber::start(&redis, &[CHANNEL], false)?;

    let stderr = tempfile::tempfile().context("temp file for ip's stderr")?;
    let mut ip = Command::new("ip")
        .args(["-n", topo.dut().name(), "-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .context("spawn ip -batch -")?;
    let mut stdin = ip.stdin.take().context("ip stdin")?;

    let mut subjects = vec![
        Subject::RelayPublish,
        Subject::RelayTransaction,
        Subject::Ours,
    ];
    if cpp.is_some() {
        subjects.push(Subject::Cpp);
    }
    let mut out: Vec<Latency> = Vec::new();
    for pattern in Pattern::ALL {
        for &subject in &subjects {
            out.push(Latency {
                rep,
                pattern,
                subject,
                samples: Vec::new(),
                lost: 0,
                multi_publish: 0,
                messages: 0,
                cpu: Duration::ZERO,
            });
        }
    }
    let mut ev = Events {
        rng: Rng::seeded(),
        count: 0,
        ports: args.ports,
    };
    for pattern in Pattern::ALL {
        for round in 0..ROUNDS {
            for i in 0..subjects.len() {
                let subject = subjects[(i + round) % subjects.len()];
                let mut proc = match subject {
                    Subject::RelayPublish | Subject::RelayTransaction => {
                        let mode = if subject == Subject::RelayPublish {
                            Mode::Publish
                        } else {
                            Mode::Transaction
                        };
                        let exe = std::env::current_exe().context("current_exe")?;
                        let sock = redis.socket_path().to_str().context("socket path")?;
                        let mut d = Daemon::start(
                            Some(topo.dut()),
                            &exe,
                            &[relay::SUBCOMMAND, mode.arg(), sock],
                        )?;
                        d.wait_for_log(relay::READY, SCENARIO_TIMEOUT)?;
                        d
                    }
                    Subject::Ours => {
                        let mut d = start_daemon(bin, &topo, &redis, args, false)?;
                        d.wait_for_log(READY, SCENARIO_TIMEOUT)?;
                        d
                    }
                    Subject::Cpp => {
                        let path = cpp.context("C++ path")?;
                        let mut d = start_daemon(path, &topo, &redis, args, true)?;
                        d.wait_for_log(CPP_READY, SCENARIO_TIMEOUT)?;
                        d
                    }
                };
                // Let it go idle after its start-up writes; then consume them.
                std::thread::sleep(IDLE_BEFORE);
                pops.drain()?;
                while sub.next(Duration::ZERO)?.is_some() {}
                let lat = out
                    .iter_mut()
                    .find(|l| l.pattern == pattern && l.subject == subject)
                    .context("latency slot")?;
                let cpu0 = proc_cpu(proc.pid())?;
                let added = block(
                    pattern, &mut ev, &mut stdin, &mut sub, &mut pops, &mut proc, lat,
                )?;
                let cpu = proc_cpu(proc.pid())?.saturating_sub(cpu0);
                lat.cpu += cpu;
                eprintln!(
                    "latency {} round {} {}: {:.1} us CPU/event, {}",
                    pattern.name(),
                    round + 1,
                    subject.name(),
                    cpu.as_secs_f64() * 1e6 / BLOCK as f64,
                    ctx_switches(proc.pid())
                );
                proc.sigterm()?;
                if !added.is_empty() {
                    ip_batch(topo.dut(), &added)?;
                }
                redis::cmd("FLUSHDB").exec(&mut conn).context("FLUSHDB")?;
            }
        }
    }
    drop(stdin);
    let status = ip.wait().context("wait for ip -batch -")?;
    if !status.success() {
        eprintln!("latency: ip -batch - exited with {status}");
    }
    for l in &out {
        eprintln!(
            "latency {} {}: {} events, {} published, {} lost, {} with more than one publish",
            l.pattern.name(),
            l.subject.name(),
            EVENTS,
            l.samples.len(),
            l.lost,
            l.multi_publish
        );
    }
    Ok(out)
}

/// The event source: pacing and never-used addresses.
struct Events {
    rng: Rng,
    /// Events written so far (makes every IP and MAC new).
    count: usize,
    ports: usize,
}

impl Events {
    /// The next event's `ip -batch` line, and for [`Pattern::NewIp`] the
    /// line that deletes its neighbour again.
    fn next(&mut self, pattern: Pattern) -> (String, Option<String>) {
        let c = self.count;
        self.count += 1;
        let mac = format!(
            "02:01:{:02x}:{:02x}:{:02x}:{:02x}",
            (c >> 24) & 0xff,
            (c >> 16) & 0xff,
            (c >> 8) & 0xff,
            c & 0xff
        );
        match pattern {
            Pattern::ReplaceMac => {
                let k = c % NEIGHBOURS;
                let (port, ip, _) = neighbor(k, self.ports);
                let dev = NeighTopology::port_name(port);
                (
                    format!("neigh replace {ip} lladdr {mac} dev {dev} nud permanent"),
                    None,
                )
            }
            Pattern::NewIp => {
                let dev = NeighTopology::port_name(c % self.ports);
                let ip = format!("10.200.{}.{}", (c >> 8) & 0xff, c & 0xff);
                (
                    format!("neigh replace {ip} lladdr {mac} dev {dev} nud permanent"),
                    Some(format!("neigh del {ip} dev {dev}")),
                )
            }
        }
    }

    fn gap(&mut self) -> Duration {
        Duration::from_millis(self.rng.range(GAP_MS.0, GAP_MS.1))
    }
}

/// [`BLOCK`] events of `pattern` with `proc` running; samples into `out`.
/// Returns the lines that delete the neighbours it added.
fn block(
    pattern: Pattern,
    ev: &mut Events,
    stdin: &mut ChildStdin,
    sub: &mut Subscriber,
    pops: &mut Pops,
    proc: &mut Daemon,
    out: &mut Latency,
) -> anyhow::Result<Vec<String>> {
    let mut dels = Vec::new();
    let mut next_at = Instant::now();
    for _ in 0..BLOCK {
        let (line, del) = ev.next(pattern);
        dels.extend(del);
        let now = Instant::now();
        if next_at > now {
            std::thread::sleep(next_at - now);
        }
        let written = Instant::now();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .context("write to ip -batch -")?;
        next_at = written + ev.gap();
        // This event's publish.
        let mut got = 0usize;
        let deadline = written + PUBLISH_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sub.next(left)? {
                Some(m) if m.payload == "G" => {
                    out.samples.push(m.at.saturating_duration_since(written));
                    got = 1;
                    break;
                }
                Some(_) => {}
                None => break,
            }
            if !proc.is_running() {
                bail!("{} exited; log:\n{}", out.subject.name(), tail(&proc.log()));
            }
        }
        if got == 0 {
            out.lost += 1;
            continue;
        }
        // Consume as orchagent would, so the next change publishes again.
        pops.drain()?;
        // Further publishes for this event arrive before the next event.
        while let Some(m) = sub.next(next_at.saturating_duration_since(Instant::now()))? {
            if m.payload == "G" {
                got += 1;
            }
            if Instant::now() >= next_at {
                break;
            }
        }
        if got > 1 {
            out.multi_publish += 1;
            pops.drain()?;
        }
        out.messages += got;
    }
    Ok(dels)
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".to_owned(), |d| {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    })
}

pub fn print(runs: &[Latency]) {
    if runs.is_empty() {
        return;
    }
    println!();
    println!(
        "Isolated event -> NEIGH_TABLE_CHANNEL@0 publish ({EVENTS} events per row, {}-{} ms apart, \
         resident `ip -batch -`; the subjects take turns in blocks of {BLOCK} events within each \
         repetition):",
        GAP_MS.0, GAP_MS.1
    );
    println!();
    println!(
        "| rep | pattern | subject | events seen | p50 | p99 | max | mean | CPU/event | lost | events with >1 publish |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} us | {} | {} |",
            r.rep + 1,
            r.pattern.name(),
            r.subject.name(),
            r.samples.len(),
            ms(r.quantile(0.5)),
            ms(r.quantile(0.99)),
            ms(r.max()),
            ms(r.mean()),
            r.cpu.as_secs_f64() * 1e6 / EVENTS as f64,
            r.lost,
            r.multi_publish
        );
    }
}
