//! `ports256`: portsyncd with 256 ports (issue "at the floor", item 6).
//!
//! Set-up as crates/portsyncd/tests/common: a DUT namespace and one peer
//! namespace; CONFIG_DB `PORT|Ethernet<4i>` for i < 256 (lanes, speed,
//! alias, index, mtu, admin_status). An orchagent stand-in (its own
//! connections: a SUBSCRIBE on `PORT_TABLE_CHANNEL@0`, and the pops script
//! of swss::ConsumerStateTable, batch 128, run on every message and every
//! 20 ms) consumes APPL_DB `PORT_TABLE` from before portsyncd starts to the
//! end. A second thread SUBSCRIBEs to the keyspace channels of
//! `_PORT_TABLE:PortConfigDone` and `_PORT_TABLE:PortInitDone` and
//! timestamps the producer's HSET of each.
//!
//! Phases:
//! 1. start-up: portsyncd spawned (cold start); done when the consumer has
//!    popped the 256 ports and PortConfigDone and portsyncd logged that it
//!    follows link events. Time: spawn -> PortConfigDone written.
//! 2. links come up: one `ip -batch` in the DUT creates the 256 veths
//!    (`link add Ethernet<4i> type veth peer name pEthernet<4i> netns
//!    <peer>`; a resident `ip -batch -` gets the first 255, and the last
//!    one once the 255th exists: "the last link appears" is when that
//!    command is written), a second batch sets them up, one in the peer namespace sets the peer ends
//!    up (carrier). Done when every STATE_DB `PORT_TABLE|Ethernet<4i>` says
//!    `netdev_oper_status up` and 300 ms passed without a change. Time:
//!    last link created -> PortInitDone written.
//! 3. flaps: the 256 peer ends go down (one batch; wait until STATE_DB
//!    says down for all), then up again (wait until up): 256 link flaps,
//!    each observed down and up.
//!
//! Commands are `INFO commandstats` deltas per phase minus (a) the bench's
//! own commands on its polling connection (INFO is excluded by name; every
//! HGET it sends is counted and subtracted) and (b) the consumer's: its
//! script returns how many commands it ran, and snapshots are taken with
//! the consumer paused between two pops, so the subtraction is exact.
//! What is left is portsyncd's own commands (the ones its scripts run
//! inside Redis included).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use testbed::daemon::Daemon;
use testbed::netns::NetNs;
use testbed::redis_server::RedisServer;

use crate::consumer::{Pops, Subscriber};
use crate::neigh::{ip_batch, tail};
use crate::procfs::{mib, proc_cpu, proc_rss};
use crate::{RedisStats, SCENARIO_TIMEOUT};

pub const PORTS: usize = 256;
const CONFIG_DB: u32 = 4;
const STATE_DB: u32 = 6;
/// portsyncd's log line once it follows link events.
const READY_LOG: &str = "started; following link events";
/// A phase is over when the wanted state holds and this long has passed.
const QUIET: Duration = Duration::from_millis(300);

/// Result of one ports256 run.
#[derive(Debug, Clone, Default)]
pub struct Ports {
    pub rep: usize,
    /// portsyncd's commands from spawn to the configuration consumed.
    pub startup_cmds: i64,
    /// portsyncd's commands while the links come up (phase 2).
    pub links_cmds: i64,
    /// portsyncd's commands for the 256 flaps.
    pub flap_cmds: i64,
    /// The consumer's commands over the whole run (subtracted above).
    pub consumer_cmds: i64,
    /// Spawn -> PortConfigDone written.
    pub to_config_done: Duration,
    /// Last link's command written -> PortInitDone written (`None` if
    /// PortInitDone came first, which would be a bug).
    pub to_init_done: Option<Duration>,
    /// Daemon CPU over the links phase and the flaps.
    pub links_cpu: Duration,
    pub flaps_cpu: Duration,
    pub peak_rss_kib: u64,
}

impl Ports {
    pub fn per_flap(&self) -> f64 {
        self.flap_cmds as f64 / PORTS as f64
    }
}

fn port(i: usize) -> String {
    format!("Ethernet{}", 4 * i)
}

/// The orchagent stand-in (see the module doc).
struct Orch {
    pops: Arc<Mutex<Pops>>,
    popped: Arc<Mutex<HashMap<String, Instant>>>,
    /// No pops while set (cleared by [`Orch::resume`]).
    paused: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Orch {
    fn start(redis: &RedisServer) -> anyhow::Result<Orch> {
        let pops = Arc::new(Mutex::new(Pops::new(redis, "PORT_TABLE", 128)?));
        let mut sub = Subscriber::start(redis, &["PORT_TABLE_CHANNEL@0"], false)?;
        let popped = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(true));
        let (p2, popped2, stop2, paused2) =
            (pops.clone(), popped.clone(), stop.clone(), paused.clone());
        let handle = std::thread::spawn(move || -> anyhow::Result<()> {
            while !stop2.load(Ordering::Relaxed) {
                sub.next(Duration::from_millis(20))?;
                while !paused2.load(Ordering::Relaxed) {
                    let got = {
                        let mut p = p2
                            .lock()
                            .map_err(|_| anyhow::anyhow!("consumer lock poisoned"))?;
                        p.pop()?
                    };
                    if got.is_empty() {
                        break;
                    }
                    let now = Instant::now();
                    let mut m = popped2
                        .lock()
                        .map_err(|_| anyhow::anyhow!("popped lock poisoned"))?;
                    for (k, _) in got {
                        m.entry(k).or_insert(now);
                    }
                }
            }
            Ok(())
        });
        Ok(Orch {
            pops,
            popped,
            paused,
            stop,
            handle: Some(handle),
        })
    }

    /// Starts popping (the thread starts paused).
    fn resume(&self) {
        self.paused.store(false, Ordering::Relaxed);
    }

    fn popped_count(&self) -> anyhow::Result<usize> {
        Ok(self
            .popped
            .lock()
            .map_err(|_| anyhow::anyhow!("popped lock poisoned"))?
            .len())
    }

    /// Redis counters and the consumer's command count, with the consumer
    /// paused between two pops.
    fn snapshot(&self, conn: &mut redis::Connection) -> anyhow::Result<(RedisStats, i64)> {
        let p = self
            .pops
            .lock()
            .map_err(|_| anyhow::anyhow!("consumer lock poisoned"))?;
        let s = RedisStats::read(conn)?;
        Ok((s, p.commands()))
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if self.handle.as_ref().is_some_and(JoinHandle::is_finished) {
            if let Some(h) = self.handle.take() {
                match h.join() {
                    Ok(Err(e)) => return Err(e.context("consumer thread")),
                    _ => bail!("consumer thread ended"),
                }
            }
        }
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

/// The bench's polling connection to STATE_DB, counting what it sends.
struct Poller {
    conn: redis::Connection,
    hgets: i64,
}

impl Poller {
    /// `netdev_oper_status` of every port.
    fn oper(&mut self) -> anyhow::Result<Vec<Option<String>>> {
        let mut p = redis::pipe();
        for i in 0..PORTS {
            p.cmd("HGET")
                .arg(format!("PORT_TABLE|{}", port(i)))
                .arg("netdev_oper_status");
        }
        self.hgets += PORTS as i64;
        p.query(&mut self.conn).context("HGET STATE_DB PORT_TABLE")
    }

    fn oper_one(&mut self, i: usize) -> anyhow::Result<Option<String>> {
        self.hgets += 1;
        redis::cmd("HGET")
            .arg(format!("PORT_TABLE|{}", port(i)))
            .arg("netdev_oper_status")
            .query(&mut self.conn)
            .context("HGET STATE_DB PORT_TABLE")
    }

    /// Waits until every port's `netdev_oper_status` is `want` (the last
    /// port, whose event comes last, first), then [`QUIET`].
    fn wait_all(&mut self, want: &str, daemon: &mut Daemon) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let check = |d: &mut Daemon| -> anyhow::Result<()> {
            if !d.is_running() {
                bail!("portsyncd exited; log:\n{}", tail(&d.log()));
            }
            if t0.elapsed() > SCENARIO_TIMEOUT {
                bail!(
                    "STATE_DB PORT_TABLE not all {want} within {SCENARIO_TIMEOUT:?}; log:\n{}",
                    tail(&d.log())
                );
            }
            Ok(())
        };
        while self.oper_one(PORTS - 1)?.as_deref() != Some(want) {
            check(daemon)?;
            std::thread::sleep(Duration::from_millis(5));
        }
        while !self.oper()?.iter().all(|s| s.as_deref() == Some(want)) {
            check(daemon)?;
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(QUIET);
        Ok(())
    }
}

/// Creates the 256 veths through a resident `ip -force -batch -` in the
/// DUT: the first 255, then, once the 255th exists, the last one. Returns
/// when the last command was written.
fn create_links(dut: &NetNs, peer: &NetNs) -> anyhow::Result<Instant> {
    let create = |i: usize| {
        format!(
            "link add {} type veth peer name p{} netns {}\n",
            port(i),
            port(i),
            peer.name()
        )
    };
    let mut ip = Command::new("ip")
        .args(["-n", dut.name(), "-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawn ip -batch -")?;
    let mut stdin = ip.stdin.take().context("ip stdin")?;
    let first: String = (0..PORTS - 1).map(create).collect();
    stdin
        .write_all(first.as_bytes())
        .context("write to ip -batch -")?;
    let t0 = Instant::now();
    while dut
        .ip(&["-o", "link", "show", "dev", &port(PORTS - 2)])
        .is_err()
    {
        if t0.elapsed() > SCENARIO_TIMEOUT {
            bail!("{} was not created", port(PORTS - 2));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let last = Instant::now();
    stdin
        .write_all(create(PORTS - 1).as_bytes())
        .context("write to ip -batch -")?;
    drop(stdin);
    let st = ip.wait().context("wait for ip -batch -")?;
    if !st.success() {
        bail!("ip -batch - (link add) exited with {st}");
    }
    Ok(last)
}

fn since(after: &(RedisStats, i64), before: &(RedisStats, i64), own: i64) -> i64 {
    let (_, all) = after.0.commands_since(&before.0);
    all - (after.1 - before.1) - own
}

pub fn run(bin: &Path, rep: usize) -> anyhow::Result<Ports> {
    let redis = RedisServer::start()?;
    let dut = NetNs::new("psd")?;
    let peer = NetNs::new("psp")?;
    let mut config = redis.conn(CONFIG_DB)?;
    let mut p = redis::pipe();
    for i in 0..PORTS {
        p.cmd("HSET")
            .arg(format!("PORT|{}", port(i)))
            .arg("lanes")
            .arg(format!(
                "{},{},{},{}",
                4 * i,
                4 * i + 1,
                4 * i + 2,
                4 * i + 3
            ))
            .arg("speed")
            .arg("100000")
            .arg("alias")
            .arg(format!("etp{}", i + 1))
            .arg("index")
            .arg(i)
            .arg("mtu")
            .arg("9100")
            .arg("admin_status")
            .arg("up")
            .ignore();
    }
    p.query::<()>(&mut config).context("CONFIG_DB PORT")?;

    let mut conn = redis.conn(0)?;
    let mut poll = Poller {
        conn: redis.conn(STATE_DB)?,
        hgets: 0,
    };
    let mut marks = Subscriber::start(
        &redis,
        &[
            "__keyspace@0__:_PORT_TABLE:PortConfigDone",
            "__keyspace@0__:_PORT_TABLE:PortInitDone",
        ],
        false,
    )?;
    let mut orch = Orch::start(&redis)?;
    let mut done_at: HashMap<String, Instant> = HashMap::new();
    let mut take_marks = |marks: &mut Subscriber, wait: Duration| -> anyhow::Result<()> {
        let deadline = Instant::now() + wait;
        while let Some(m) = marks.next(deadline.saturating_duration_since(Instant::now()))? {
            if let Some(name) = m.channel.rsplit(':').next() {
                done_at.entry(name.to_owned()).or_insert(m.at);
            }
        }
        Ok(())
    };

    // 1. Start-up.
    let s0 = orch.snapshot(&mut conn)?;
    let own0 = poll.hgets;
    let cfg = redis.db_config_path().to_str().context("path")?.to_owned();
    let t_spawn = Instant::now();
    let mut daemon = Daemon::start(Some(&dut), bin, &["--db-config", &cfg])?;
    let pid = daemon.pid();
    daemon.wait_for_log(READY_LOG, SCENARIO_TIMEOUT)?;
    // orchagent consumes the configuration once portsyncd has read APPL_DB
    // PORT_TABLE: entries with admin_status popped before that would
    // release the ports from PortInitDone at once (the C++ pre-check for
    // ports an earlier orchagent consumed, which portsyncd keeps).
    orch.resume();
    let t0 = Instant::now();
    while orch.popped_count()? < PORTS + 1 {
        orch.check_alive()?;
        if t0.elapsed() > SCENARIO_TIMEOUT {
            bail!("the consumer did not pop the port configuration");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(QUIET);
    let s1 = orch.snapshot(&mut conn)?;
    let own1 = poll.hgets;

    // 2. Links come up.
    let cpu0 = proc_cpu(pid)?;
    let last_link = create_links(&dut, &peer)?;
    let ups: Vec<String> = (0..PORTS)
        .map(|i| format!("link set {} up", port(i)))
        .collect();
    ip_batch(&dut, &ups)?;
    let peer_ups: Vec<String> = (0..PORTS)
        .map(|i| format!("link set p{} up", port(i)))
        .collect();
    ip_batch(&peer, &peer_ups)?;
    poll.wait_all("up", &mut daemon)?;
    orch.check_alive()?;
    let s2 = orch.snapshot(&mut conn)?;
    let own2 = poll.hgets;
    let cpu1 = proc_cpu(pid)?;
    take_marks(&mut marks, Duration::from_millis(50))?;

    // 3. Flaps.
    let downs: Vec<String> = (0..PORTS)
        .map(|i| format!("link set p{} down", port(i)))
        .collect();
    ip_batch(&peer, &downs)?;
    poll.wait_all("down", &mut daemon)?;
    ip_batch(&peer, &peer_ups)?;
    poll.wait_all("up", &mut daemon)?;
    orch.check_alive()?;
    let s3 = orch.snapshot(&mut conn)?;
    let own3 = poll.hgets;
    let cpu2 = proc_cpu(pid)?;
    let (hwm, _) = proc_rss(pid)?;
    daemon.sigterm()?;
    drop(orch);

    let Some(&cfg_done) = done_at.get("PortConfigDone") else {
        bail!("PortConfigDone was never written");
    };
    let init_done = done_at.get("PortInitDone").copied();
    if init_done.is_none() {
        bail!("PortInitDone was never written");
    }
    let out = Ports {
        rep,
        startup_cmds: since(&s1, &s0, own1 - own0),
        links_cmds: since(&s2, &s1, own2 - own1),
        flap_cmds: since(&s3, &s2, own3 - own2),
        consumer_cmds: s3.1 - s0.1,
        to_config_done: cfg_done.saturating_duration_since(t_spawn),
        to_init_done: init_done.and_then(|t| t.checked_duration_since(last_link)),
        links_cpu: cpu1.saturating_sub(cpu0),
        flaps_cpu: cpu2.saturating_sub(cpu1),
        peak_rss_kib: hwm,
    };
    eprintln!("ports256: {out:?}");
    Ok(out)
}

pub fn print(runs: &[Ports]) {
    if runs.is_empty() {
        return;
    }
    println!();
    println!(
        "portsyncd, {PORTS} ports (Redis commands are portsyncd's own: bench polls and the consumer's pops subtracted):"
    );
    println!();
    println!(
        "| rep | cmds at start-up | cmds while links come up | per link | spawn->PortConfigDone | last link->PortInitDone | cmds per link flap | daemon CPU links / flaps | peak RSS | consumer cmds (excluded) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        println!(
            "| {} | {} | {} | {:.2} | {:.1} ms | {} | {:.2} ({}) | {:.1} / {:.1} ms | {} | {} |",
            r.rep + 1,
            r.startup_cmds,
            r.links_cmds,
            r.links_cmds as f64 / PORTS as f64,
            r.to_config_done.as_secs_f64() * 1e3,
            r.to_init_done
                .map_or("before the last link".to_owned(), |d| format!(
                    "{:.1} ms",
                    d.as_secs_f64() * 1e3
                )),
            r.per_flap(),
            r.flap_cmds,
            r.links_cpu.as_secs_f64() * 1e3,
            r.flaps_cpu.as_secs_f64() * 1e3,
            mib(r.peak_rss_kib),
            r.consumer_cmds
        );
    }
}
