//! The metric families of both daemons (prometheus-client), registered with
//! the daemon's name as prefix, so every name starts with `neighsyncd_` or
//! `portsyncd_`; counters get the OpenMetrics `_total` suffix on the wire.
//!
//! | name (after the prefix)            | kind      | labels                   |
//! |------------------------------------|-----------|--------------------------|
//! | `kernel_events_total`              | counter   | `type`, `outcome`, `reason` |
//! | `redis_operations_total`           | counter   | `table`, `op`            |
//! | `redis_batches_total`              | counter   |                          |
//! | `redis_write_errors_total`         | counter   |                          |
//! | `event_to_ack_seconds`             | histogram |                          |
//! | `resyncs_total`                    | counter   | `cause`                  |
//! | `netlink_overruns_total`           | counter   |                          |
//! | `redis_reconnects_total`           | counter   |                          |
//! | `entries`                          | gauge     |                          |
//! | `warm_restart_state`               | gauge     | `state`                  |
//! | `audit_drift`                      | gauge     |                          |
//! | `audit_runs_total`                 | counter   |                          |
//! | `redis_up`, `netlink_up`           | gauge     |                          |
//! | `port_init_done`, `ports_pending`  | gauge     | (portsyncd only)         |
//! | `failed_neighbors`                 | gauge     | (neighsyncd only)        |
//! | `bad_db_entries_total`             | counter   | `db`, `table`            |
//!
//! Label values: `type` = `RTM_NEWNEIGH` | `RTM_DELNEIGH` | `RTM_NEWLINK` |
//! `RTM_DELLINK` (empty for a malformed message of unknown type);
//! `outcome` = [`Outcome`]; `reason` = the daemon's drop-reason label or
//! `""`; `table` = `NEIGH_TABLE` | `ROUTE_TABLE` | `NEIGH_FAILED_TABLE` | `PORT_TABLE` |
//! `STATE_PORT_TABLE`; `op` = `set` | `del`; `cause` = [`ResyncCause`];
//! `state` = [`WARM_STATES`]; `db` = `CONFIG_DB` | `STATE_DB` | `APPL_DB`
//! and `table` (of `bad_db_entries_total`) = the table of a Redis entry that
//! was skipped as unusable (a key of the wrong type, a garbage value;
//! [`swss::bad_entry`]).

use std::sync::Arc;
use std::time::Duration;

/// prometheus-client's counter (what [`Metrics::kernel_event_counter`]
/// returns), re-exported for callers that keep one.
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// `type`, `outcome`, `reason`.
pub type KernelEventLabels = [(&'static str, &'static str); 3];
/// `table`, `op`.
pub type RedisOpLabels = [(&'static str, &'static str); 2];
/// One label (`cause`, `state`).
pub type OneLabel = [(&'static str, &'static str); 1];
/// `db`, `table` (values read from Redis, so owned).
pub type BadEntryLabels = [(&'static str, String); 2];

/// The `outcome` of one kernel event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Handed to the writer as a change (or, during a dump, to the resync).
    Written,
    /// Passed the rules but changed nothing (same value already desired).
    Unchanged,
    /// Dropped by a rule; `reason` says which.
    Filtered,
    /// Could not be decoded; skipped.
    Malformed,
}

impl Outcome {
    /// `written`, `unchanged`, `filtered`, `malformed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Written => "written",
            Outcome::Unchanged => "unchanged",
            Outcome::Filtered => "filtered",
            Outcome::Malformed => "malformed",
        }
    }
}

/// Why a resync (re-dump of the kernel and/or re-read of Redis) ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResyncCause {
    /// ENOBUFS on the netlink socket: events were lost.
    NetlinkOverrun,
    /// Redis came back after an outage.
    RedisReconnect,
    /// A CONFIG_DB change altered the rules.
    ConfigChange,
    /// A periodic self-audit that found drift and repaired it (both
    /// daemons; every run counts in `audit_runs_total`).
    Audit,
}

impl ResyncCause {
    /// Every cause (pre-registered at 0).
    pub const ALL: [ResyncCause; 4] = [
        ResyncCause::NetlinkOverrun,
        ResyncCause::RedisReconnect,
        ResyncCause::ConfigChange,
        ResyncCause::Audit,
    ];

    /// `netlink_overrun`, `redis_reconnect`, `config_change`, `audit`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResyncCause::NetlinkOverrun => "netlink_overrun",
            ResyncCause::RedisReconnect => "redis_reconnect",
            ResyncCause::ConfigChange => "config_change",
            ResyncCause::Audit => "audit",
        }
    }
}

/// The `type` label values neighsyncd counts (pre-registered at 0).
pub const NEIGHSYNCD_EVENT_TYPES: [&str; 4] =
    ["RTM_NEWNEIGH", "RTM_DELNEIGH", "RTM_NEWLINK", "RTM_DELLINK"];
/// The `table` label values neighsyncd writes (APPL_DB; pre-registered at 0).
pub const NEIGHSYNCD_TABLES: [&str; 3] = ["NEIGH_TABLE", "ROUTE_TABLE", "NEIGH_FAILED_TABLE"];
/// The `type` label values portsyncd counts (pre-registered at 0).
pub const PORTSYNCD_EVENT_TYPES: [&str; 2] = ["RTM_NEWLINK", "RTM_DELLINK"];
/// The `table` label values portsyncd writes: APPL_DB `PORT_TABLE` and
/// STATE_DB `PORT_TABLE` (as `STATE_PORT_TABLE`); pre-registered at 0.
pub const PORTSYNCD_TABLES: [&str; 2] = ["PORT_TABLE", "STATE_PORT_TABLE"];
/// The `op` label values of `redis_operations_total`.
pub const REDIS_OPS: [&str; 2] = ["set", "del"];

/// The kernel message types and Redis tables of `daemon` whose label sets
/// are created at 0 ([`Metrics::new`]); none for an unknown name.
fn label_domain(daemon: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match daemon {
        "neighsyncd" => (&NEIGHSYNCD_EVENT_TYPES, &NEIGHSYNCD_TABLES),
        "portsyncd" => (&PORTSYNCD_EVENT_TYPES, &PORTSYNCD_TABLES),
        _ => (&[], &[]),
    }
}

/// Values of the `warm_restart_state` label (swss::WarmStart states the
/// daemons go through).
pub const WARM_STATES: [&str; 4] = ["initialized", "restored", "reconciled", "disabled"];

/// The metric families (see the module table). Cheap to clone: every
/// metric and the registry are shared.
#[derive(Debug, Clone)]
pub struct Metrics {
    daemon: &'static str,
    registry: Arc<Registry>,
    /// `<d>_kernel_events_total{type,outcome,reason}`.
    pub kernel_events: Family<KernelEventLabels, Counter>,
    /// `<d>_redis_operations_total{table,op}`: keys written (one per key).
    pub redis_operations: Family<RedisOpLabels, Counter>,
    /// `<d>_redis_batches_total`: pipelines Redis acknowledged.
    pub redis_batches: Counter,
    /// `<d>_redis_write_errors_total`: pipelines that failed.
    pub redis_write_errors: Counter,
    /// `<d>_event_to_ack_seconds`: kernel event received -> Redis
    /// acknowledged the pipeline that carried it.
    pub event_to_ack: Histogram,
    /// `<d>_resyncs_total{cause}`.
    pub resyncs: Family<OneLabel, Counter>,
    /// `<d>_netlink_overruns_total`.
    pub netlink_overruns: Counter,
    /// `<d>_redis_reconnects_total`.
    pub redis_reconnects: Counter,
    /// `<d>_entries`: neighsyncd = neighbors held, portsyncd = ports with a
    /// STATE_DB entry.
    pub entries: Gauge,
    /// `<d>_warm_restart_state{state}`: 1 for the current state.
    pub warm_restart_state: Family<OneLabel, Gauge>,
    /// `<d>_audit_drift`: entries the last audit found missing, stale or
    /// different (and repaired).
    pub audit_drift: Gauge,
    /// `<d>_audit_runs_total`.
    pub audit_runs: Counter,
    /// `<d>_redis_up`: 1 while Redis is connected.
    pub redis_up: Gauge,
    /// `<d>_netlink_up`: 1 while the netlink socket works.
    pub netlink_up: Gauge,
    /// `portsyncd_port_init_done`: 1 once PortInitDone is written
    /// (registered for portsyncd only).
    pub port_init_done: Gauge,
    /// `portsyncd_ports_pending`: ports holding back PortInitDone
    /// (registered for portsyncd only).
    pub ports_pending: Gauge,
    /// `neighsyncd_failed_neighbors`: keys published in APPL_DB
    /// `NEIGH_FAILED_TABLE` (dual-ToR failed IPv6 neighbours for nbrmgrd;
    /// registered for neighsyncd only).
    pub failed_neighbors: Gauge,
    /// `<d>_bad_db_entries_total{db,table}`: Redis entries skipped as
    /// unusable; brought up to date from [`swss::bad_entry::counts`] at
    /// each [`Metrics::encode`].
    pub bad_db_entries: Family<BadEntryLabels, Counter>,
}

/// Latency buckets: 100 µs doubling up to ~6.5 s (17 buckets).
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 17)
}

impl Metrics {
    /// The families of `daemon` (`neighsyncd`, `portsyncd`), registered in a
    /// registry with prefix `daemon`. `port_init_done` and `ports_pending`
    /// are registered only for `portsyncd`. prometheus-client leaves out a
    /// labelled family until one of its label sets exists, so the label sets
    /// dashboards query are created at 0 and exported before the first
    /// occurrence: every resync cause, every warm state, `kernel_events`
    /// for each message type of the daemon ([`NEIGHSYNCD_EVENT_TYPES`],
    /// [`PORTSYNCD_EVENT_TYPES`]) with outcomes `written` and `unchanged`,
    /// and `redis_operations` for each of its tables ([`NEIGHSYNCD_TABLES`],
    /// [`PORTSYNCD_TABLES`]) x `set` / `del`.
    pub fn new(daemon: &'static str) -> Metrics {
        let mut r = Registry::with_prefix(daemon);
        let m = Metrics {
            daemon,
            registry: Arc::new(Registry::default()),
            kernel_events: Family::default(),
            redis_operations: Family::default(),
            redis_batches: Counter::default(),
            redis_write_errors: Counter::default(),
            event_to_ack: Histogram::new(latency_buckets()),
            resyncs: Family::default(),
            netlink_overruns: Counter::default(),
            redis_reconnects: Counter::default(),
            entries: Gauge::default(),
            warm_restart_state: Family::default(),
            audit_drift: Gauge::default(),
            audit_runs: Counter::default(),
            redis_up: Gauge::default(),
            netlink_up: Gauge::default(),
            port_init_done: Gauge::default(),
            ports_pending: Gauge::default(),
            failed_neighbors: Gauge::default(),
            bad_db_entries: Family::default(),
        };
        r.register(
            "kernel_events",
            "Kernel netlink messages handled, by message type, outcome and drop reason",
            m.kernel_events.clone(),
        );
        r.register(
            "redis_operations",
            "Keys written to Redis, by table and operation",
            m.redis_operations.clone(),
        );
        r.register(
            "redis_batches",
            "Write pipelines acknowledged by Redis",
            m.redis_batches.clone(),
        );
        r.register(
            "redis_write_errors",
            "Write pipelines that failed",
            m.redis_write_errors.clone(),
        );
        r.register_with_unit(
            "event_to_ack",
            "Time from a kernel event received to Redis acknowledging the pipeline that carried it",
            Unit::Seconds,
            m.event_to_ack.clone(),
        );
        r.register("resyncs", "Resyncs, by cause", m.resyncs.clone());
        r.register(
            "netlink_overruns",
            "Netlink receive buffer overruns (ENOBUFS)",
            m.netlink_overruns.clone(),
        );
        r.register(
            "redis_reconnects",
            "Redis reconnects after a lost connection",
            m.redis_reconnects.clone(),
        );
        r.register(
            "entries",
            "Entries held (neighsyncd: neighbors; portsyncd: ports with a STATE_DB entry)",
            m.entries.clone(),
        );
        r.register(
            "warm_restart_state",
            "1 for the current warm-restart state, 0 for the others",
            m.warm_restart_state.clone(),
        );
        r.register(
            "audit_drift",
            "Entries the last self-audit found missing, stale or different",
            m.audit_drift.clone(),
        );
        r.register("audit_runs", "Self-audits run", m.audit_runs.clone());
        r.register(
            "bad_db_entries",
            "Redis entries skipped as unusable (wrong key type, garbage value), by database and table",
            m.bad_db_entries.clone(),
        );
        r.register("redis_up", "1 while Redis is connected", m.redis_up.clone());
        r.register(
            "netlink_up",
            "1 while the netlink socket works",
            m.netlink_up.clone(),
        );
        if daemon == "neighsyncd" {
            r.register(
                "failed_neighbors",
                "Keys published in APPL_DB NEIGH_FAILED_TABLE (dual-ToR failed IPv6 neighbors for nbrmgrd)",
                m.failed_neighbors.clone(),
            );
        }
        if daemon == "portsyncd" {
            r.register(
                "port_init_done",
                "1 once PortInitDone is written to APPL_DB",
                m.port_init_done.clone(),
            );
            r.register(
                "ports_pending",
                "Configured ports still holding back PortInitDone",
                m.ports_pending.clone(),
            );
        }
        for cause in ResyncCause::ALL {
            m.resyncs
                .get_or_create(&[("cause", cause.as_str())])
                .inc_by(0);
        }
        for state in WARM_STATES {
            m.warm_restart_state
                .get_or_create(&[("state", state)])
                .set(0);
        }
        let (event_types, tables) = label_domain(daemon);
        for &msg_type in event_types {
            for outcome in [Outcome::Written, Outcome::Unchanged] {
                m.kernel_events
                    .get_or_create(&[
                        ("type", msg_type),
                        ("outcome", outcome.as_str()),
                        ("reason", ""),
                    ])
                    .inc_by(0);
            }
        }
        for &table in tables {
            for op in REDIS_OPS {
                m.redis_operations
                    .get_or_create(&[("table", table), ("op", op)])
                    .inc_by(0);
            }
        }
        Metrics {
            registry: Arc::new(r),
            ..m
        }
    }

    /// Brings `bad_db_entries` up to the process-wide counts of
    /// [`swss::bad_entry`] (counters only grow there).
    fn sync_bad_entries(&self) {
        for (db, table, n) in swss::bad_entry::counts() {
            let counter = self
                .bad_db_entries
                .get_or_create(&[("db", db), ("table", table)]);
            counter.inc_by(n.saturating_sub(counter.get()));
        }
    }

    /// The daemon name (the prefix).
    pub fn daemon(&self) -> &'static str {
        self.daemon
    }

    /// The `kernel_events_total` counter of these labels (created at 0 if
    /// new): `msg_type` (`RTM_NEWNEIGH`, ...), the outcome and the drop
    /// reason (`""` unless filtered). The driver's publisher resolves each
    /// label set once ([`crate::stats::Publisher`]).
    pub fn kernel_event_counter(
        &self,
        msg_type: &'static str,
        outcome: Outcome,
        reason: &'static str,
    ) -> Counter {
        self.kernel_events
            .get_or_create(&[
                ("type", msg_type),
                ("outcome", outcome.as_str()),
                ("reason", reason),
            ])
            .clone()
    }

    /// Counts `n` keys written to `table` with `op` (`set` or `del`).
    pub fn redis_ops(&self, table: &'static str, op: &'static str, n: usize) {
        if n > 0 {
            self.redis_operations
                .get_or_create(&[("table", table), ("op", op)])
                .inc_by(n as u64);
        }
    }

    /// Records a kernel-event-to-Redis-ack latency.
    pub fn observe_event_to_ack(&self, latency: Duration) {
        self.event_to_ack.observe(latency.as_secs_f64());
    }

    /// Makes `state` (one of [`WARM_STATES`], or e.g.
    /// `swss::warm_restart::WarmStartState::as_str`) the current warm-restart
    /// state: 1 for it, 0 for the others.
    pub fn set_warm_restart_state(&self, state: &'static str) {
        for s in WARM_STATES {
            self.warm_restart_state
                .get_or_create(&[("state", s)])
                .set(i64::from(s == state));
        }
        if !WARM_STATES.contains(&state) {
            self.warm_restart_state
                .get_or_create(&[("state", state)])
                .set(1);
        }
    }

    /// The registry in OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        self.sync_bad_entries();
        let mut out = String::with_capacity(4096);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_kernel_event_counter_is_the_exported_series() {
        let m = Metrics::new("neighsyncd");
        let c = m.kernel_event_counter("RTM_DELNEIGH", Outcome::Unchanged, "");
        c.inc();
        c.inc();
        m.kernel_event_counter("RTM_DELNEIGH", Outcome::Unchanged, "")
            .inc();
        let text = m.encode();
        let line = "neighsyncd_kernel_events_total{type=\"RTM_DELNEIGH\",outcome=\"unchanged\",reason=\"\"} 3";
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }

    #[test]
    fn names_follow_the_contract() {
        let m = Metrics::new("neighsyncd");
        m.kernel_event_counter("RTM_NEWNEIGH", Outcome::Written, "")
            .inc();
        m.kernel_event_counter("RTM_NEWNEIGH", Outcome::Filtered, "no_mac")
            .inc();
        m.redis_ops("NEIGH_TABLE", "set", 3);
        m.redis_batches.inc();
        m.observe_event_to_ack(Duration::from_millis(2));
        m.resyncs
            .get_or_create(&[("cause", ResyncCause::Audit.as_str())])
            .inc();
        m.entries.set(7);
        m.set_warm_restart_state("disabled");
        m.audit_runs.inc();
        m.audit_drift.set(2);
        m.redis_up.set(1);
        let text = m.encode();
        for line in [
            "neighsyncd_kernel_events_total{type=\"RTM_NEWNEIGH\",outcome=\"written\",reason=\"\"} 1",
            "neighsyncd_kernel_events_total{type=\"RTM_NEWNEIGH\",outcome=\"filtered\",reason=\"no_mac\"} 1",
            "neighsyncd_redis_operations_total{table=\"NEIGH_TABLE\",op=\"set\"} 3",
            "neighsyncd_redis_batches_total 1",
            "neighsyncd_redis_write_errors_total 0",
            "neighsyncd_event_to_ack_seconds_count 1",
            "neighsyncd_resyncs_total{cause=\"audit\"} 1",
            "neighsyncd_resyncs_total{cause=\"netlink_overrun\"} 0",
            "neighsyncd_netlink_overruns_total 0",
            "neighsyncd_redis_reconnects_total 0",
            "neighsyncd_entries 7",
            "neighsyncd_warm_restart_state{state=\"disabled\"} 1",
            "neighsyncd_warm_restart_state{state=\"reconciled\"} 0",
            "neighsyncd_audit_drift 2",
            "neighsyncd_audit_runs_total 1",
            "neighsyncd_redis_up 1",
            "neighsyncd_netlink_up 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("port_init_done"));
        let p = Metrics::new("portsyncd").encode();
        assert!(p.contains("portsyncd_port_init_done 0"));
        assert!(p.contains("portsyncd_ports_pending 0"));
    }

    #[test]
    fn dashboard_label_sets_exist_at_zero() {
        let text = Metrics::new("neighsyncd").encode();
        for line in [
            "neighsyncd_redis_operations_total{table=\"NEIGH_TABLE\",op=\"set\"} 0",
            "neighsyncd_redis_operations_total{table=\"NEIGH_TABLE\",op=\"del\"} 0",
            "neighsyncd_redis_operations_total{table=\"ROUTE_TABLE\",op=\"del\"} 0",
            "neighsyncd_kernel_events_total{type=\"RTM_NEWNEIGH\",outcome=\"written\",reason=\"\"} 0",
            "neighsyncd_kernel_events_total{type=\"RTM_DELNEIGH\",outcome=\"unchanged\",reason=\"\"} 0",
            "neighsyncd_resyncs_total{cause=\"config_change\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("PORT_TABLE"));
        let text = Metrics::new("portsyncd").encode();
        for line in [
            "portsyncd_redis_operations_total{table=\"PORT_TABLE\",op=\"set\"} 0",
            "portsyncd_redis_operations_total{table=\"STATE_PORT_TABLE\",op=\"del\"} 0",
            "portsyncd_kernel_events_total{type=\"RTM_NEWLINK\",outcome=\"written\",reason=\"\"} 0",
            "portsyncd_resyncs_total{cause=\"redis_reconnect\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("NEIGH"));
    }

    #[test]
    fn warm_state_is_one_hot() {
        let m = Metrics::new("portsyncd");
        m.set_warm_restart_state("initialized");
        m.set_warm_restart_state("reconciled");
        let text = m.encode();
        assert!(text.contains("portsyncd_warm_restart_state{state=\"reconciled\"} 1"));
        assert!(text.contains("portsyncd_warm_restart_state{state=\"initialized\"} 0"));
    }
}
