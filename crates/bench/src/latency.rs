//! `latency`: isolated kernel event -> `NEIGH_TABLE_CHANNEL@0` publish.
//!
//! As the C++ was measured (issue "one engine"): a resident `ip -force
//! -batch -` in the DUT namespace (one process, commands written to its
//! stdin), 400 events 5-20 ms apart (uniformly random), each a
//! `neigh replace` of one of 16 neighbours with a MAC never used before (so
//! each is a real change), and a thread SUBSCRIBEd to
//! `NEIGH_TABLE_CHANNEL@0` timestamping every message. Latency = message
//! read - command written.
//!
//! The producer scripts PUBLISH only when a key becomes pending (`SADD` to
//! `NEIGH_TABLE_KEY_SET` returns 1), so after each publish the bench pops
//! the table as orchagent would (the pops script, batch 128) before the next
//! event; the messages seen between two events are that event's publishes
//! (one per flush: more than one means the event was written in several
//! flushes).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use testbed::netns::NeighTopology;
use testbed::redis_server::RedisServer;

use crate::consumer::{Pops, Subscriber};
use crate::{neigh_lines, neighbor, start_daemon, wait_scard, Args, READY, SCENARIO_TIMEOUT};

/// Events per run.
const EVENTS: usize = 400;
/// Neighbours the events cycle over.
const NEIGHBOURS: usize = 16;
/// Gap between two events: uniformly random in this range.
const GAP_MS: (u64, u64) = (5, 20);
/// An event whose publish is not seen within this long counts as lost.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
const CHANNEL: &str = "NEIGH_TABLE_CHANNEL@0";

/// Result of one latency run.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub rep: usize,
    /// Event -> publish, one per event whose publish was seen.
    pub samples: Vec<Duration>,
    /// Events without a publish within [`PUBLISH_TIMEOUT`].
    pub lost: usize,
    /// Events that gave more than one `G` message.
    pub multi_publish: usize,
    /// All `G` messages seen.
    pub messages: usize,
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

pub fn run(bin: &Path, args: &Args, rep: usize) -> anyhow::Result<Latency> {
    let redis = RedisServer::start()?;
    let topo = NeighTopology::new(args.ports)?;
    crate::ip_batch(topo.dut(), &neigh_lines(NEIGHBOURS, args.ports, "add"))?;
    let mut conn = redis.conn(0)?;
    let mut daemon = start_daemon(bin, &topo, &redis, args, false)?;
    daemon.wait_for_log(READY, SCENARIO_TIMEOUT)?;
    wait_scard(&mut conn, &mut daemon, NEIGHBOURS)?;
    let mut pops = Pops::new(&redis, "NEIGH_TABLE", 128)?;
    pops.drain()?;
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
    // Let the daemon go idle after the cold start and the pops.
    std::thread::sleep(Duration::from_millis(300));

    let mut rng = Rng::seeded();
    let mut out = Latency {
        rep,
        ..Latency::default()
    };
    let mut next_at = Instant::now();
    for e in 0..EVENTS {
        let k = e % NEIGHBOURS;
        let (port, ip_text, _) = neighbor(k, args.ports);
        // A MAC no earlier event used: 02:01:<k>:<e>.
        let mac = format!(
            "02:01:{:02x}:00:{:02x}:{:02x}",
            k & 0xff,
            (e >> 8) & 0xff,
            e & 0xff
        );
        let line = format!(
            "neigh replace {ip_text} lladdr {mac} dev {} nud permanent\n",
            NeighTopology::port_name(port)
        );
        let now = Instant::now();
        if next_at > now {
            std::thread::sleep(next_at - now);
        }
        let written = Instant::now();
        stdin
            .write_all(line.as_bytes())
            .context("write to ip -batch -")?;
        next_at = written + Duration::from_millis(rng.range(GAP_MS.0, GAP_MS.1));
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
            if !daemon.is_running() {
                bail!("neighsyncd exited; log:\n{}", crate::tail(&daemon.log()));
            }
        }
        if got == 0 {
            out.lost += 1;
            continue;
        }
        // Consume as orchagent would, so the next change publishes again.
        pops.drain()?;
        // Further publishes for this event arrive before the next event.
        let left = next_at.saturating_duration_since(Instant::now());
        let wait_until = Instant::now() + left;
        while let Some(m) = sub.next(wait_until.saturating_duration_since(Instant::now()))? {
            if m.payload == "G" {
                got += 1;
            }
            if Instant::now() >= wait_until {
                break;
            }
        }
        if got > 1 {
            out.multi_publish += 1;
            pops.drain()?;
        }
        out.messages += got;
    }
    drop(stdin);
    let status = ip.wait().context("wait for ip -batch -")?;
    if !status.success() {
        eprintln!("latency: ip -batch - exited with {status}");
    }
    eprintln!(
        "latency: daemon {}; {} events, {} published, {} lost, {} with more than one publish",
        crate::ctx_switches(daemon.pid()),
        EVENTS,
        out.samples.len(),
        out.lost,
        out.multi_publish
    );
    daemon.sigterm()?;
    Ok(out)
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
        "Isolated event -> NEIGH_TABLE_CHANNEL@0 publish ({EVENTS} events {}-{} ms apart, resident `ip -batch -`):",
        GAP_MS.0, GAP_MS.1
    );
    println!();
    println!("| rep | events seen | p50 | p99 | max | mean | lost | events with >1 publish |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.rep + 1,
            r.samples.len(),
            ms(r.quantile(0.5)),
            ms(r.quantile(0.99)),
            ms(r.max()),
            ms(r.mean()),
            r.lost,
            r.multi_publish
        );
    }
}
