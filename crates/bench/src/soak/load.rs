//! The soak's load: CONFIG_DB ports and link set-up, link flap storms,
//! the neighbour churn and the orchagent stand-in (see the module doc of
//! [`super`]).

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
use testbed::netns::NetNs;
use testbed::redis_server::RedisServer;

use super::{CHURN_IPS, CHURN_PER_SEC, STATE_DB, STORM_ROUNDS, TICK};
use crate::consumer::Pops;
use crate::neigh::{ip_batch, tail};
use crate::SCENARIO_TIMEOUT;

pub(super) fn seed_config(config: &mut redis::Connection, ports: &[String]) -> anyhow::Result<()> {
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
pub(super) fn config_fields(i: usize) -> Vec<(&'static str, String)> {
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

pub(super) fn link_lines(ports: &[String], prefix: &str, updown: &str) -> Vec<String> {
    ports
        .iter()
        .map(|p| format!("link set {prefix}{p} {updown}"))
        .collect()
}

pub(super) fn wait_ports_up(
    redis: &RedisServer,
    ports: &[String],
    d: &mut Daemon,
) -> anyhow::Result<()> {
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

pub(super) fn flap_storm(dut: &NetNs, ports: &[String]) -> anyhow::Result<()> {
    let (down, up) = (link_lines(ports, "", "down"), link_lines(ports, "", "up"));
    for _ in 0..STORM_ROUNDS {
        ip_batch(dut, &down)?;
        std::thread::sleep(Duration::from_millis(100));
        ip_batch(dut, &up)?;
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

// ===== churn =====

/// xorshift64*: the churn's pseudo-random choices (fixed seed, so every
/// run writes the same sequence).
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Churn address `k`: (port index, IP text). One in four is IPv6.
pub(super) fn churn_ip(k: usize, ports: usize) -> (usize, String) {
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
pub(super) struct Churn {
    pub(super) ops: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

pub(super) fn spawn_ip(dut: &str) -> anyhow::Result<Child> {
    Command::new("ip")
        .args(["-n", dut, "-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn ip -force -batch -")
}

impl Churn {
    pub(super) fn start(dut: &NetNs, ports: &[String]) -> anyhow::Result<Churn> {
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

    pub(super) fn check(&self) -> anyhow::Result<()> {
        if self.handle.as_ref().is_some_and(JoinHandle::is_finished) {
            bail!("the churn thread ended early");
        }
        Ok(())
    }

    /// Stops the churn once `ip` has applied every line; returns how many
    /// commands were written.
    pub(super) fn stop(mut self) -> anyhow::Result<u64> {
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

pub(super) fn connect(socket: &Path, db: i64) -> anyhow::Result<redis::Connection> {
    let info = redis::ConnectionAddr::Unix(socket.to_path_buf()).into_connection_info()?;
    let settings = info.redis_settings().clone().set_db(db);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(conn)
}

/// The orchagent stand-in: pops NEIGH_TABLE and PORT_TABLE, reconnecting
/// after Redis restarts.
pub(super) struct Orch {
    pub(super) popped: Arc<AtomicU64>,
    reconnects: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Orch {
    pub(super) fn start(socket: PathBuf) -> Orch {
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

    pub(super) fn check(&self) -> anyhow::Result<()> {
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
