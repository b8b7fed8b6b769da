//! The Redis side of [`PortCore`]: subscription changes, the results of
//! flushes, reads and reconnects, and the self-audit.

use std::collections::BTreeMap;
use std::time::Instant;

use sonic_daemon::metrics::ResyncCause;
use swss::{KeyOp, SwssError};

use super::{
    Action, Audit, AuditReadout, Epoch, InitDone, Input, PortCore, ReadBack, Redis, Timer,
    STATE_PORT_TABLE_METRIC,
};
use crate::sync::{is_port_key, StateAction, APP_PORT_TABLE_NAME};
use crate::writer::{same_values, StateBatch};

impl PortCore {
    pub(super) fn input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Appl(op) => self.appl_change(op),
            Input::StateDeleted(name) => {
                for action in self.sync.on_state_port_deleted(&name) {
                    tracing::info!(ifname = %name,
                        "STATE_DB PORT_TABLE entry deleted by someone else; restoring");
                    self.writer.push(action);
                }
            }
            Input::SubscriptionLost { epoch, error } => self.lost(now, epoch, &error),
            Input::Flushed {
                epoch,
                batch,
                result,
            } => self.flushed(now, epoch, batch, result),
            Input::InitDoneWritten { epoch, result } => self.init_done_written(now, epoch, result),
            Input::ConfigPort(op) => self.config_port_change(op),
            Input::PortConfigCountWritten {
                epoch,
                count,
                result,
            } => self.count_written(now, epoch, count, result),
            Input::Reconnected {
                epoch,
                present,
                config_ports,
            } => self.reconnected(epoch, present, config_ports),
            Input::ResyncRead { id, result } => self.resync_read(now, id, result),
            Input::AuditRead { id, result } => self.audit_read(now, id, result),
        }
    }

    /// One APPL_DB `PORT_TABLE` change. Live Sets come from a `Presence`
    /// subscription and carry no fields, so `has_admin_status` is false for
    /// them; [`crate::sync::PortSync::on_appl_port`] only looks at it
    /// during the initial load, whose Sets carry the content.
    fn appl_change(&mut self, op: KeyOp) {
        let actions = match op {
            KeyOp::Set(key, fvs) if is_port_key(&key) => {
                let has_admin = fvs.iter().any(|(f, _)| f == "admin_status");
                self.sync.on_appl_port(&key, true, has_admin)
            }
            KeyOp::Del(key) if is_port_key(&key) => self.sync.on_appl_port(&key, false, false),
            _ => Vec::new(),
        };
        for action in actions {
            self.writer.push(action);
        }
    }

    /// A flush ended: acknowledged, retried later after an error reply,
    /// or kept for after the reconnect when Redis was lost.
    fn flushed(
        &mut self,
        now: Instant,
        epoch: Epoch,
        batch: StateBatch,
        result: Result<(), SwssError>,
    ) {
        let flight = self.flight.end(&mut self.timers);
        match result {
            Ok(()) => {
                let m = &mut self.stats;
                m.redis_ops(STATE_PORT_TABLE_METRIC, "del", batch.dels());
                m.redis_ops(STATE_PORT_TABLE_METRIC, "set", batch.sets());
                m.redis_batches += 1;
                for (name, op) in &batch.ops {
                    if op.sets() {
                        self.state_entries.insert(name.clone());
                    } else {
                        self.state_entries.remove(name);
                    }
                }
                if let Some(since) = flight.and_then(|f| f.since) {
                    m.observe_event_to_ack(now.saturating_duration_since(since));
                }
                self.writer.complete(&batch);
                self.stats.write_ok();
                self.flight.succeeded();
            }
            Err(e) => {
                self.stats.redis_write_errors += 1;
                self.writer.fail(batch);
                self.flight.requeue(flight.and_then(|f| f.since));
                if e.is_connection_error() {
                    // Sent before a loss already handled (an older epoch):
                    // the keys are pending again and go out on the new
                    // session.
                    self.lost(now, epoch, &e);
                } else {
                    let delay = self.flight.retry_later(&mut self.timers, now);
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64,
                        "STATE_DB PORT_TABLE write failed; retrying");
                    self.stats.write_failed(&e);
                }
            }
        }
    }

    fn init_done_written(&mut self, now: Instant, epoch: Epoch, result: Result<(), SwssError>) {
        if self.init_done != InitDone::Writing {
            return;
        }
        match result {
            Ok(()) => {
                self.init_done = InitDone::Written;
                self.stats.redis_ops(APP_PORT_TABLE_NAME, "set", 1);
                self.stats.redis_batches += 1;
                self.stats.port_init_done = Some(true);
            }
            Err(e) => {
                self.stats.redis_write_errors += 1;
                if e.is_connection_error() {
                    self.init_done = InitDone::Due;
                    self.lost(now, epoch, &e);
                } else {
                    let delay = self.init_backoff.next_delay();
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64,
                        "cannot write PortInitDone; retrying");
                    self.stats.write_failed(&e);
                    self.init_done = InitDone::Retry;
                    self.timers.set(Timer::InitDoneRetry, now + delay);
                }
            }
        }
    }

    /// Redis is back (connected, subscribed, APPL_DB `present` loaded): the
    /// ports that vanished from APPL_DB meanwhile are forgotten, every
    /// port's state is staged again, and STATE_DB is read back before
    /// anything is written ([`Redis::ReadingBack`]). With
    /// `--port-config-count-follows-config`, `config_ports` (the fresh
    /// CONFIG_DB `PORT` keys) replace the known ones, and a count that
    /// differs from the last one written goes out once Redis is up.
    fn reconnected(
        &mut self,
        epoch: Epoch,
        present: BTreeMap<String, bool>,
        config_ports: Option<Vec<String>>,
    ) {
        if !self.session.reconnected(epoch) {
            return;
        }
        self.reload_config_ports(config_ports);
        tracing::info!("Redis is back: resyncing STATE_DB PORT_TABLE");
        self.stats.redis_reconnects += 1;
        self.stats.resync(ResyncCause::RedisReconnect);
        for action in self.sync.reload_appl(present) {
            self.writer.push(action);
        }
        for action in self.sync.rewrite_all() {
            self.writer.push(action);
        }
        self.read_back = Some(None);
    }

    /// STATE_DB as read back after a reconnect: the pending HSETs it
    /// already holds are dropped, the rest is written.
    fn resync_read(&mut self, now: Instant, id: u64, result: Result<ReadBack, SwssError>) {
        if self.redis() != (Redis::ReadingBack { read: Some(id) }) {
            return;
        }
        match result {
            Ok(read) => {
                let same = self.writer.drop_unchanged(&read);
                tracing::info!(
                    unchanged = same,
                    rewrite = self.writer.pending_len(),
                    "STATE_DB PORT_TABLE read back"
                );
                self.redis_up();
            }
            Err(e) if e.is_connection_error() => self.lost(now, self.session.epoch(), &e),
            Err(e) => {
                tracing::warn!(error = %e,
                    "cannot read STATE_DB PORT_TABLE back; writing every port");
                self.redis_up();
            }
        }
    }

    // ----- the self-audit -----

    /// The audit starts: STATE_DB is read for every port whose entry we
    /// maintain and every APPL_DB port without a netdev (ports with a
    /// write pending are left out: they are about to be written).
    pub(super) fn start_audit(&mut self, now: Instant) -> Option<Action> {
        let idle = |n: &String| self.writer.pending(n).is_none();
        let names: Vec<String> = self
            .sync
            .expected_entries()
            .into_iter()
            .map(|(n, _)| n)
            .filter(idle)
            .collect();
        let gone: Vec<String> = self
            .sync
            .ports_without_link()
            .into_iter()
            .filter(idle)
            .collect();
        if names.is_empty() && gone.is_empty() {
            self.finish_audit(now, AuditReadout::default());
            return None;
        }
        let id = self.read_id();
        self.audit = Audit::Reading { id };
        Some(Action::ReadStateForAudit { id, names, gone })
    }

    fn audit_read(&mut self, now: Instant, id: u64, result: Result<AuditReadout, SwssError>) {
        if self.audit != (Audit::Reading { id }) {
            return;
        }
        match result {
            Ok(readout) => self.finish_audit(now, readout),
            Err(e) => {
                self.schedule_audit(now);
                if e.is_connection_error() {
                    self.lost(now, self.session.epoch(), &e);
                } else {
                    tracing::warn!(error = %e, "audit: cannot read STATE_DB PORT_TABLE; skipped");
                }
            }
        }
    }

    /// The self-audit's comparison: an entry whose fields differ from the
    /// link state is rewritten; an entry of an APPL_DB port whose netdev is
    /// gone is deleted. `portsyncd_audit_drift` = entries repaired. Then
    /// the links are dumped again (the ENOBUFS resync path), so events the
    /// kernel lost are repaired too.
    fn finish_audit(&mut self, now: Instant, readout: AuditReadout) {
        self.schedule_audit(now);
        let mut repaired: Vec<String> = Vec::new();
        for (name, have) in &readout.fields {
            if self.writer.pending(name).is_some() {
                continue;
            }
            let (Some(want), Some(have)) = (self.sync.expected_fields(name), have) else {
                continue;
            };
            if !same_values(&want, have) {
                for action in self.sync.on_state_port_deleted(name) {
                    self.writer.push(action);
                }
                repaired.push(name.clone());
            }
        }
        for (name, exists) in &readout.exists {
            let stale = *exists
                && self.writer.pending(name).is_none()
                && self.sync.link_state(name).is_none()
                && self.sync.is_appl_present(name);
            if stale {
                self.writer
                    .push(StateAction::DelPortState { name: name.clone() });
                repaired.push(name.clone());
            }
        }
        if !repaired.is_empty() {
            tracing::warn!(
                drift = repaired.len(),
                ports = ?repaired,
                "audit: STATE_DB PORT_TABLE differs from the link state; repairing"
            );
        }
        self.stats.audit_done(repaired.len());
        // As neighsyncd's: a resync by the audit counts only when it found
        // drift (every run is `audit_runs_total`), so frequent audits do
        // not look like a resync storm.
        if !repaired.is_empty() {
            self.stats.resync(ResyncCause::Audit);
        }
        self.resync(ResyncCause::Audit);
    }
}
