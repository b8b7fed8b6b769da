//! The soak's 10 s samples: RSS, fds and CPU from /proc, the daemons'
//! audit and resync counters from their `/metrics`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use testbed::daemon::Daemon;
use testbed::netns::{http_get, metrics_sample, NetNs};

use super::load::{Churn, Orch};
use super::{Proc, Sample, NEIGH_METRICS, PORT_METRICS};
use crate::procfs::{proc_cpu, proc_rss};

pub(super) fn proc_now(pid: u32) -> anyhow::Result<(u64, usize, Duration)> {
    let (_, rss) = proc_rss(pid)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("/proc/{pid}/fd"))?
        .count();
    Ok((rss, fds, proc_cpu(pid)?))
}

pub(super) fn metrics(dut: &NetNs, addr: &str, d: &str) -> Proc {
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

pub(super) fn sample(
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
