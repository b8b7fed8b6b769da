//! The Redis side of [`NeighCore`]: flush results, CONFIG_DB changes,
//! reconnects, the self-audit's APPL_DB view and the warm start
//! (docs/behavior.md b.1, c.2, c.3).

use std::time::Instant;

use sonic_daemon::engine::Step;
use sonic_daemon::metrics::ResyncCause;
use swss::{ConsumerView, KeyOp, SwssError};

use super::{log_flag_seen, Action, Epoch, NeighCore, Phase, Stopping, Timer, Warm, WarmClock};
use crate::context::{ConfigTable, SyncContext};
use crate::error::DaemonError;
use crate::sync::{APP_NEIGH_FAILED_TABLE_NAME, APP_NEIGH_TABLE_NAME, APP_ROUTE_TABLE_NAME};
use crate::writer::Batch;

// ===== impl NeighCore: Redis =====

impl NeighCore {
    pub(super) fn on_flushed(
        &mut self,
        epoch: Epoch,
        batch: Batch,
        result: Result<(), SwssError>,
        now: Instant,
    ) {
        if !self.session.is_current(epoch) {
            // Sent on a lost session: the reconnect's resync recomputed
            // everything.
            return;
        }
        let since = self.flight.end(&mut self.timers).and_then(|f| f.since);
        let m = &mut self.stats;
        match result {
            Ok(()) => {
                m.redis_ops(APP_NEIGH_TABLE_NAME, "del", batch.neigh_dels.len());
                m.redis_ops(APP_ROUTE_TABLE_NAME, "del", batch.route_dels.len());
                m.redis_ops(APP_NEIGH_TABLE_NAME, "set", batch.neigh_sets.len());
                m.redis_ops(APP_NEIGH_FAILED_TABLE_NAME, "del", batch.failed_dels.len());
                m.redis_ops(APP_NEIGH_FAILED_TABLE_NAME, "set", batch.failed_sets.len());
                m.redis_batches += 1;
                if let Some(t) = since {
                    m.observe_event_to_ack(now.saturating_duration_since(t));
                }
                self.stats.write_ok();
                self.flight.succeeded();
                self.writer.complete(batch);
            }
            Err(e) => {
                m.redis_write_errors += 1;
                self.stats.write_failed(&e);
                // The keys are written again with the next batches.
                self.flight.requeue(since);
                let keys = batch.len();
                self.failed.fail(&batch);
                self.writer.fail(batch);
                if e.is_connection_error() {
                    tracing::warn!(error = %e, keys, "Redis lost while writing; keeping the state in memory");
                    self.redis_lost(&e);
                } else if self.stopping.is_some() {
                    tracing::error!(error = %e, keys, "APPL_DB write failed while stopping");
                    self.stopping = Some(Stopping::GaveUp);
                } else {
                    let delay = self.flight.retry_later(&mut self.timers, now);
                    tracing::error!(error = %e, keys, retry_in_ms = delay.as_millis() as u64,
                        "APPL_DB write failed; retrying");
                }
            }
        }
    }

    /// Redis is gone: a new session is started ([`Action::Reconnect`]);
    /// an audit in progress is dropped.
    pub(super) fn redis_lost(&mut self, reason: &dyn std::fmt::Display) {
        self.stats.redis_down(reason);
        let Some(epoch) = self.session.lose() else {
            return;
        };
        self.flight.end(&mut self.timers);
        self.timers.stop(Timer::AuditGrace);
        match self.phase {
            Phase::AuditRead { .. } | Phase::AuditGrace { .. } => {
                self.writer.take_suspects();
                self.enter(Phase::Live);
            }
            Phase::AuditDump { dump, .. } => {
                self.writer.take_suspects();
                self.phase = Phase::Resyncing(dump);
            }
            _ => {}
        }
        if self.stopping.is_some() {
            return;
        }
        self.steps
            .push_back(Step::Status("Redis lost; reconnecting".to_string()));
        self.act(Action::Reconnect { epoch });
    }

    pub(super) fn on_reconnected(
        &mut self,
        epoch: Epoch,
        config: Vec<(ConfigTable, Vec<KeyOp>)>,
        view: ConsumerView,
        failed: Vec<String>,
        _now: Instant,
    ) {
        if !self.session.reconnected(epoch) {
            return;
        }
        self.stats.redis_reconnects += 1;
        self.stats.resync(ResyncCause::RedisReconnect);
        self.stats.redis_up();
        self.steps.push_back(Step::Status(format!(
            "running: {} neighbors",
            self.writer.desired_len()
        )));
        let before = self.ctx.clone();
        for (table, initial) in config {
            self.ctx.reset_table(table);
            for op in &initial {
                apply_cfg(&mut self.ctx, table, op);
            }
        }
        let f = self.failed.resync_from_appl(failed);
        if f.added + f.removed > 0 {
            tracing::info!(
                added = f.added,
                removed = f.removed,
                "Redis reconnected; writing the difference to APPL_DB NEIGH_FAILED_TABLE"
            );
        }
        if matches!(self.warm, Some(Warm::Caching { .. })) {
            // The writer is empty until the reconcile: comparing APPL_DB
            // with it would delete everything.
            tracing::info!("Redis reconnected during the warm start; still caching");
        } else {
            let c = self.writer.resync_from_appl(&view);
            tracing::info!(
                added = c.added,
                changed = c.changed,
                removed = c.removed,
                "Redis reconnected; writing the difference to APPL_DB"
            );
        }
        if self.ctx != before {
            self.request_resync();
        }
    }

    pub(super) fn on_config(
        &mut self,
        change: Result<(ConfigTable, KeyOp), SwssError>,
        _now: Instant,
    ) {
        match change {
            Ok((table, op)) => {
                if apply_cfg(&mut self.ctx, table, &op) {
                    tracing::info!(
                        table = table.name(),
                        key = op.key(),
                        dual_tor = self.ctx.is_dual_tor(),
                        evpn = self.ctx.evpn_nvo_exists(),
                        "CONFIG_DB change affects neighbors; resyncing"
                    );
                    self.stats.resync(ResyncCause::ConfigChange);
                    self.request_resync();
                }
            }
            Err(e) if e.is_connection_error() => {
                tracing::warn!(error = %e, "CONFIG_DB subscription lost");
                self.redis_lost(&e);
            }
            Err(e) => tracing::warn!(error = %e, "CONFIG_DB change skipped"),
        }
    }

    /// The audit's APPL_DB view: keys that were written and now differ
    /// from the desired table are drift, made dirty again
    /// ([`crate::writer::NeighWriter::audit_against_appl`]); then the
    /// kernel is dumped again as a check.
    pub(super) fn on_audit_view(
        &mut self,
        epoch: Epoch,
        result: Result<ConsumerView, SwssError>,
        _now: Instant,
    ) {
        if !self.session.is_current(epoch) || !matches!(self.phase, Phase::AuditRead { .. }) {
            return;
        }
        match result {
            Ok(view) => {
                let c = self.writer.audit_against_appl(&view);
                let appl_drift = c.added + c.changed + c.removed;
                if appl_drift > 0 {
                    tracing::warn!(
                        missing = c.added,
                        different = c.changed,
                        stale = c.removed,
                        "audit: APPL_DB NEIGH_TABLE differs from the kernel; repairing"
                    );
                }
                self.phase = Phase::AuditDump {
                    dump: super::KernelDump::links(),
                    appl_drift,
                };
                self.start_dump();
            }
            Err(e) if e.is_connection_error() => {
                tracing::warn!(error = %e, "audit: Redis lost while reading APPL_DB");
                self.redis_lost(&e);
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit: cannot read APPL_DB NEIGH_TABLE; skipped");
                self.enter(Phase::Live);
            }
        }
    }
}

// ===== impl NeighCore: warm start =====

impl NeighCore {
    pub(super) fn on_restore_flag(&mut self, now: Instant) {
        let Some(Warm::Caching { clock, timer, .. }) = self.warm.as_mut() else {
            return;
        };
        if let WarmClock::WaitFlag { since, .. } = *clock {
            log_flag_seen(now.saturating_duration_since(since), *timer);
            *clock = WarmClock::Timer;
            let at = now + *timer;
            self.timers.stop(Timer::RestoreFlagLimit);
            self.timers.set(Timer::Reconcile, at);
        }
    }

    /// [`Timer::RestoreFlagLimit`]: the restore flag never came (fatal).
    pub(super) fn restore_flag_limit(&mut self) {
        let Some(Warm::Caching {
            clock: WarmClock::WaitFlag { limit, .. },
            ..
        }) = self.warm
        else {
            return;
        };
        tracing::error!(
            limit_secs = limit.as_secs_f64(),
            "warm start: NEIGH_RESTORE_TABLE|Flags restored=true was not set in time \
             (did `neighsyncd restore` run?); exiting"
        );
        self.error = Some(DaemonError::RestoreTimeout(limit));
        self.warm = None;
    }

    /// [`Timer::Reconcile`]: reconcile once the cache is complete.
    pub(super) fn reconcile_timer_fired(&mut self) {
        if let Some(Warm::Caching { clock, .. }) = self.warm.as_mut() {
            if *clock == WarmClock::Timer {
                tracing::info!("warm start: reconcile timer fired");
                *clock = WarmClock::Due;
                self.try_reconcile();
            }
        }
    }

    /// Reconcile once the timer fired and the cache holds a complete dump
    /// ([`Phase::RestoreWait`]): the cache gives the ops to write and hands
    /// the writer the table APPL_DB holds once they are written. Not while
    /// stopping (the warm window then ends with the process).
    pub(super) fn try_reconcile(&mut self) {
        if self.phase != Phase::RestoreWait || self.stopping.is_some() {
            return;
        }
        let Some(Warm::Caching {
            clock: WarmClock::Due,
            ..
        }) = self.warm
        else {
            return;
        };
        let Some(Warm::Caching { cache, .. }) = self.warm.take() else {
            return;
        };
        let restored = cache.restored();
        let ops = cache.finish(&mut self.writer);
        tracing::info!(
            restored,
            sets = ops.sets.len(),
            dels = ops.dels.len(),
            kernel = self.writer.desired_len(),
            "warm start: reconciling"
        );
        self.warm = Some(Warm::Reconciling {
            sets: ops.sets.len(),
            dels: ops.dels.len(),
        });
        self.phase = Phase::Reconciling {
            resync_wanted: false,
        };
        self.act(Action::WriteReconcile(ops));
    }

    /// The reconcile write ended (also while shutting down, which waits
    /// for it). An error reply means APPL_DB may lack some of the ops:
    /// resync from it as after a lost connection. Either way the writer
    /// takes over and READY=1 follows once it has written what is pending.
    pub(super) fn on_reconciled(&mut self, result: Result<(), SwssError>, _now: Instant) {
        let Some(Warm::Reconciling { sets, dels }) = self.warm else {
            return;
        };
        self.warm = None;
        match result {
            Ok(()) => {
                tracing::info!(
                    sets,
                    dels,
                    "warm start: reconciled (WARM_RESTART_TABLE|neighsyncd state reconciled)"
                );
                self.stats.warm_restart_state = Some("reconciled");
            }
            Err(e) => {
                tracing::error!(error = %e, sets, dels,
                    "warm start: reconcile write failed; resyncing from APPL_DB");
                self.redis_lost(&e);
            }
        }
        self.request_ready();
        if matches!(self.phase, Phase::Reconciling { .. }) {
            self.enter(Phase::Live);
        }
    }
}

/// Applies one CONFIG_DB change to `ctx`; true when a fact the rules read
/// changed (then the kernel is dumped again).
pub fn apply_cfg(ctx: &mut SyncContext, table: ConfigTable, op: &KeyOp) -> bool {
    match op {
        KeyOp::Set(key, fvs) => ctx.apply(table, key, Some(fvs)),
        KeyOp::Del(key) => ctx.apply(table, key, None),
    }
}
