//! Counters as data (the shape of quinn-proto's `ConnectionStats`): a core
//! counts into a plain [`Stats`] — no atomics, locks or registry handles
//! inside it — and the driver publishes what changed to the Prometheus
//! families ([`Metrics`]) and `/healthz` ([`Health`]) with a [`Publisher`]
//! after each wake-up.
//!
//! Counters are totals since start (tests and logs read them directly);
//! gauges hold the value last set (`None`: never set, not published);
//! `event_to_ack` observations wait in [`Stats`] until published.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use crate::metrics::{Metrics, Outcome, ResyncCause};
use crate::Health;

/// `kernel_events_total` labels: `type` (`RTM_NEWNEIGH`, ...), `outcome`,
/// `reason` (`""` unless filtered).
pub type KernelEvent = (&'static str, Outcome, &'static str);

/// The Redis side of `/healthz` as the core sees it (the netlink side is
/// the driver's): connected or not and why, and the last write's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisHealth {
    /// Redis is connected.
    pub up: bool,
    /// Why Redis is down (the last error seen), if known.
    pub error: Option<String>,
    /// `Some(reason)` when the last write failed.
    pub write_error: Option<String>,
}

/// A core's counters and gauges (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    kernel_events: Vec<(KernelEvent, u64)>,
    redis_ops: Vec<((&'static str, &'static str), u64)>,
    /// `redis_batches_total`: write pipelines acknowledged.
    pub redis_batches: u64,
    /// `redis_write_errors_total`: writes that failed (any reason).
    pub redis_write_errors: u64,
    /// `redis_reconnects_total`: sessions re-established after a loss.
    pub redis_reconnects: u64,
    /// `netlink_overruns_total`: ENOBUFS on the netlink socket.
    pub netlink_overruns: u64,
    resyncs: [u64; ResyncCause::ALL.len()],
    /// `audit_runs_total`: self-audits finished.
    pub audit_runs: u64,
    /// `audit_drift`: entries the last self-audit repaired.
    pub audit_drift: Option<u64>,
    /// `entries`: entries the daemon maintains (APPL_DB `NEIGH_TABLE` keys,
    /// STATE_DB `PORT_TABLE` entries).
    pub entries: Option<u64>,
    /// `failed_neighbors` (neighsyncd): APPL_DB `NEIGH_FAILED_TABLE` keys.
    pub failed_neighbors: Option<u64>,
    /// `ports_pending` (portsyncd): ports holding back PortInitDone.
    pub ports_pending: Option<u64>,
    /// `port_init_done` (portsyncd): PortInitDone written.
    pub port_init_done: Option<bool>,
    /// `warm_restart_state`: the current warm-restart state (one of
    /// [`crate::metrics::WARM_STATES`]).
    pub warm_restart_state: Option<&'static str>,
    /// Redis health as `/healthz` reports it.
    pub redis: RedisHealth,
    /// `event_to_ack_seconds` observations not yet published.
    ack_latencies: Vec<Duration>,
}

/// The position of one `kernel_events_total` label set in [`Stats`], for a
/// caller that counts many events of it ([`Stats::count`]: one add, no
/// label comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSlot(usize);

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Everything at zero, Redis up (a core starts on a connected session).
    pub fn new() -> Self {
        Stats {
            kernel_events: Vec::new(),
            redis_ops: Vec::new(),
            redis_batches: 0,
            redis_write_errors: 0,
            redis_reconnects: 0,
            netlink_overruns: 0,
            resyncs: [0; ResyncCause::ALL.len()],
            audit_runs: 0,
            audit_drift: None,
            entries: None,
            failed_neighbors: None,
            ports_pending: None,
            port_init_done: None,
            warm_restart_state: None,
            redis: RedisHealth {
                up: true,
                error: None,
                write_error: None,
            },
            ack_latencies: Vec::new(),
        }
    }

    /// The slot of `event` (created at 0 if new).
    pub fn event_slot(&mut self, event: KernelEvent) -> EventSlot {
        match self.kernel_events.iter().position(|(e, _)| *e == event) {
            Some(i) => EventSlot(i),
            None => {
                self.kernel_events.push((event, 0));
                EventSlot(self.kernel_events.len() - 1)
            }
        }
    }

    /// Counts one event of `slot` ([`Stats::event_slot`] of this `Stats`).
    pub fn count(&mut self, slot: EventSlot) {
        if let Some((_, n)) = self.kernel_events.get_mut(slot.0) {
            *n += 1;
        }
    }

    /// Counts one kernel event: `msg_type`, its outcome and drop reason
    /// (`""` unless filtered).
    pub fn kernel_event(&mut self, msg_type: &'static str, outcome: Outcome, reason: &'static str) {
        let slot = self.event_slot((msg_type, outcome, reason));
        self.count(slot);
    }

    /// Every kernel event label set counted so far, with its total.
    pub fn kernel_events(&self) -> &[(KernelEvent, u64)] {
        &self.kernel_events
    }

    /// Counts `n` keys written to `table` with `op` (`set` or `del`).
    pub fn redis_ops(&mut self, table: &'static str, op: &'static str, n: usize) {
        if n == 0 {
            return;
        }
        match self.redis_ops.iter_mut().find(|(k, _)| *k == (table, op)) {
            Some((_, total)) => *total += n as u64,
            None => self.redis_ops.push(((table, op), n as u64)),
        }
    }

    /// Keys written to `table` with `op` so far.
    pub fn redis_op_count(&self, table: &str, op: &str) -> u64 {
        self.redis_ops
            .iter()
            .find(|((t, o), _)| *t == table && *o == op)
            .map_or(0, |(_, n)| *n)
    }

    /// Counts one resync.
    pub fn resync(&mut self, cause: ResyncCause) {
        self.resyncs[cause as usize] += 1;
    }

    /// Resyncs for `cause` so far.
    pub fn resyncs(&self, cause: ResyncCause) -> u64 {
        self.resyncs[cause as usize]
    }

    /// Records a kernel-event-to-Redis-ack latency.
    pub fn observe_event_to_ack(&mut self, latency: Duration) {
        self.ack_latencies.push(latency);
    }

    /// Records one finished self-audit that repaired `drift` entries.
    pub fn audit_done(&mut self, drift: usize) {
        self.audit_runs += 1;
        self.audit_drift = Some(drift as u64);
    }

    /// Redis is connected; clears a previous write error (what failed is
    /// retried or resynced after a reconnect).
    pub fn redis_up(&mut self) {
        self.redis = RedisHealth {
            up: true,
            error: None,
            write_error: None,
        };
    }

    /// Redis is lost; `reason` is the error seen.
    pub fn redis_down(&mut self, reason: &dyn std::fmt::Display) {
        self.redis.up = false;
        self.redis.error = Some(reason.to_string());
    }

    /// A write pipeline was acknowledged.
    pub fn write_ok(&mut self) {
        self.redis.write_error = None;
    }

    /// A write pipeline failed with `reason`.
    pub fn write_failed(&mut self, reason: &dyn std::fmt::Display) {
        self.redis.write_error = Some(reason.to_string());
    }
}

/// What a [`Publisher`] last published (counter totals with their
/// resolved Prometheus handles, gauge values).
#[derive(Debug, Default)]
struct Published {
    kernel_events: Vec<(Counter, u64)>,
    redis_ops: Vec<(Counter, u64)>,
    redis_batches: u64,
    redis_write_errors: u64,
    redis_reconnects: u64,
    netlink_overruns: u64,
    resyncs: [u64; ResyncCause::ALL.len()],
    audit_runs: u64,
    warm_restart_state: Option<&'static str>,
    redis: Option<RedisHealth>,
}

/// Publishes a core's [`Stats`] to the metric families and `/healthz`
/// (driver side): counters by their increase since the last call, gauges
/// by value, health when it changed.
#[derive(Debug)]
pub struct Publisher {
    metrics: Metrics,
    health: Health,
    last: Published,
}

impl Publisher {
    /// A publisher to `metrics` and `health` (nothing published yet).
    pub fn new(metrics: Metrics, health: Health) -> Self {
        Publisher {
            metrics,
            health,
            last: Published::default(),
        }
    }

    /// The `/healthz` state (the driver reports the netlink socket there).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Publishes what changed in `stats` since the last call and takes its
    /// pending `event_to_ack` observations.
    pub fn publish(&mut self, stats: &mut Stats) {
        self.publish_labelled(stats);
        self.publish_counters(stats);
        self.publish_gauges(stats);
        for latency in stats.ack_latencies.drain(..) {
            self.metrics.observe_event_to_ack(latency);
        }
        if self.last.redis.as_ref() != Some(&stats.redis) {
            self.health.set_redis(&stats.redis);
            self.last.redis = Some(stats.redis.clone());
        }
    }

    /// `kernel_events_total` and `redis_operations_total`, whose label
    /// sets are resolved once, in the order the core first counted them.
    fn publish_labelled(&mut self, stats: &Stats) {
        let (m, last) = (&self.metrics, &mut self.last);
        for (i, ((t, outcome, reason), total)) in stats.kernel_events.iter().enumerate() {
            if i == last.kernel_events.len() {
                let counter = m.kernel_event_counter(t, *outcome, reason);
                last.kernel_events.push((counter, 0));
            }
            let (counter, seen) = &mut last.kernel_events[i];
            add(counter, *total, seen);
        }
        for (i, ((table, op), total)) in stats.redis_ops.iter().enumerate() {
            if i == last.redis_ops.len() {
                let labels = [("table", *table), ("op", *op)];
                let counter = m.redis_operations.get_or_create(&labels).clone();
                last.redis_ops.push((counter, 0));
            }
            let (counter, seen) = &mut last.redis_ops[i];
            add(counter, *total, seen);
        }
    }

    /// The unlabelled counters and `resyncs_total`.
    fn publish_counters(&mut self, stats: &Stats) {
        let (m, last) = (&self.metrics, &mut self.last);
        add(
            &m.redis_batches,
            stats.redis_batches,
            &mut last.redis_batches,
        );
        add(
            &m.redis_write_errors,
            stats.redis_write_errors,
            &mut last.redis_write_errors,
        );
        add(
            &m.redis_reconnects,
            stats.redis_reconnects,
            &mut last.redis_reconnects,
        );
        add(
            &m.netlink_overruns,
            stats.netlink_overruns,
            &mut last.netlink_overruns,
        );
        add(&m.audit_runs, stats.audit_runs, &mut last.audit_runs);
        for cause in ResyncCause::ALL {
            let (total, seen) = (stats.resyncs(cause), &mut last.resyncs[cause as usize]);
            if total > *seen {
                let counter = m.resyncs.get_or_create(&[("cause", cause.as_str())]);
                add(&counter, total, seen);
            }
        }
    }

    /// The gauges the core has set, and the warm-restart state.
    fn publish_gauges(&mut self, stats: &Stats) {
        let m = &self.metrics;
        let gauge = |g: &prometheus_client::metrics::gauge::Gauge, v: Option<u64>| {
            if let Some(v) = v {
                g.set(i64::try_from(v).unwrap_or(i64::MAX));
            }
        };
        gauge(&m.audit_drift, stats.audit_drift);
        gauge(&m.entries, stats.entries);
        gauge(&m.failed_neighbors, stats.failed_neighbors);
        gauge(&m.ports_pending, stats.ports_pending);
        gauge(&m.port_init_done, stats.port_init_done.map(u64::from));
        if stats.warm_restart_state != self.last.warm_restart_state {
            if let Some(state) = stats.warm_restart_state {
                m.set_warm_restart_state(state);
            }
            self.last.warm_restart_state = stats.warm_restart_state;
        }
    }
}

/// Adds to `counter` what `total` grew by since `seen`, and remembers it.
fn add(counter: &Counter, total: u64, seen: &mut u64) {
    if total > *seen {
        counter.inc_by(total - *seen);
        *seen = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_since_the_last_publish_is_added() {
        let metrics = Metrics::new("neighsyncd");
        let health = Health::new(&metrics);
        health.set_netlink_up(true);
        let mut p = Publisher::new(metrics.clone(), health.clone());
        let mut s = Stats::new();
        let slot = s.event_slot(("RTM_NEWNEIGH", Outcome::Written, ""));
        s.count(slot);
        s.count(slot);
        s.kernel_event("RTM_NEWNEIGH", Outcome::Filtered, "link_local");
        s.redis_ops("NEIGH_TABLE", "set", 2);
        s.redis_batches += 1;
        s.resync(ResyncCause::Audit);
        s.entries = Some(2);
        s.observe_event_to_ack(Duration::from_millis(1));
        p.publish(&mut s);
        s.count(slot);
        s.redis_ops("NEIGH_TABLE", "set", 1);
        p.publish(&mut s);
        p.publish(&mut s);
        let text = metrics.encode();
        for line in [
            r#"neighsyncd_kernel_events_total{type="RTM_NEWNEIGH",outcome="written",reason=""} 3"#,
            r#"neighsyncd_kernel_events_total{type="RTM_NEWNEIGH",outcome="filtered",reason="link_local"} 1"#,
            r#"neighsyncd_redis_operations_total{table="NEIGH_TABLE",op="set"} 3"#,
            "neighsyncd_redis_batches_total 1",
            r#"neighsyncd_resyncs_total{cause="audit"} 1"#,
            "neighsyncd_entries 2",
            "neighsyncd_event_to_ack_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        assert_eq!(s.redis_op_count("NEIGH_TABLE", "set"), 3);

        assert!(health.check().is_ok());
        s.redis_down(&"connection refused");
        p.publish(&mut s);
        assert_eq!(health.check(), Err("redis down: connection refused".into()));
        s.redis_up();
        s.write_failed(&"ERR boom");
        p.publish(&mut s);
        assert_eq!(health.check(), Err("last write failed: ERR boom".into()));
    }
}
