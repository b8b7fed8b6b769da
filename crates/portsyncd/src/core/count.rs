//! `--port-config-count-follows-config` in [`PortCore`]: CONFIG_DB `PORT`
//! key changes in, APPL_DB `PORT_TABLE:PortConfigDone count=<n>` writes out
//! (the rule is [`PortConfigCount`](crate::sync::PortConfigCount); without the option the core has none
//! and none of this runs).
//!
//! One write at a time, through the `PORT_TABLE` ProducerStateTable as the
//! cold start's PortConfigDone (so a pending pop of the start-up value can
//! never land after a newer count); only while Redis is up; an error reply
//! is retried after the [`Backoff`](sonic_daemon::engine::Backoff) delay, a
//! connection error waits for the reconnect, whose fresh CONFIG_DB load
//! ([`PortCore::reload_config_ports`]) decides again. SIGTERM waits for a
//! wanted or in-flight write (within the shutdown limit): a breakout just
//! before a warm reboot must reach APPL_DB.

use std::time::Instant;

use swss::{KeyOp, SwssError};

use super::{Action, Epoch, PortCore, Redis, Timer};
use crate::sync::APP_PORT_TABLE_NAME;

impl PortCore {
    /// The count write, if one is wanted and may go out now.
    pub(super) fn next_count_write(&mut self) -> Option<Action> {
        if self.redis() != Redis::Up || self.timers.is_set(Timer::CountRetry) {
            return None;
        }
        let count = self.config_count.as_mut()?.take_write()?;
        tracing::info!(count, "CONFIG_DB PORT changed: writing PortConfigDone");
        Some(Action::WritePortConfigCount {
            epoch: self.session.epoch(),
            count,
        })
    }

    /// One CONFIG_DB `PORT` change (`Input::ConfigPort`); ignored when the
    /// count is not followed.
    pub(super) fn config_port_change(&mut self, op: KeyOp) {
        let Some(c) = self.config_count.as_mut() else {
            return;
        };
        let (name, present) = match &op {
            KeyOp::Set(name, _) => (name, true),
            KeyOp::Del(name) => (name, false),
        };
        if c.on_config_port(name, present) {
            tracing::debug!(port = %name, present, ports = c.count(),
                "CONFIG_DB PORT key set changed");
        }
    }

    /// The fresh CONFIG_DB `PORT` keys of a reconnect (`None`: not
    /// followed).
    pub(super) fn reload_config_ports(&mut self, ports: Option<Vec<String>>) {
        if let (Some(c), Some(ports)) = (self.config_count.as_mut(), ports) {
            c.reload(ports);
        }
    }

    /// The result of [`Action::WritePortConfigCount`].
    pub(super) fn count_written(
        &mut self,
        now: Instant,
        epoch: Epoch,
        count: usize,
        result: Result<(), SwssError>,
    ) {
        let Some(c) = self.config_count.as_mut() else {
            return;
        };
        if !c.in_flight() {
            return;
        }
        match result {
            Ok(()) => {
                c.write_done();
                self.count_backoff.reset();
                self.stats.redis_ops(APP_PORT_TABLE_NAME, "set", 1);
                self.stats.redis_batches += 1;
            }
            Err(e) => {
                c.write_failed();
                self.stats.redis_write_errors += 1;
                if e.is_connection_error() {
                    self.lost(now, epoch, &e);
                } else {
                    let delay = self.count_backoff.next_delay();
                    tracing::error!(error = %e, count, retry_in_ms = delay.as_millis() as u64,
                        "cannot write PortConfigDone count; retrying");
                    self.stats.write_failed(&e);
                    self.timers.set(Timer::CountRetry, now + delay);
                }
            }
        }
    }

    /// A count write is in flight, or wanted and not waiting for a retry
    /// delay (SIGTERM waits for it).
    pub(super) fn count_write_pending(&self) -> bool {
        self.config_count.as_ref().is_some_and(|c| {
            c.in_flight() || (c.wants_write() && !self.timers.is_set(Timer::CountRetry))
        })
    }
}
