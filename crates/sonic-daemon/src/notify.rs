//! systemd notify (`sd_notify(3)` through the `sd-notify` crate): `READY=1`
//! once after the first full sync, `STATUS=...` lines, `STOPPING=1`, and the
//! watchdog.
//!
//! Watchdog: when `WATCHDOG_USEC` is set (and `WATCHDOG_PID`, if set, is
//! ours) a task sends `WATCHDOG=1` every half of it, but only while the
//! event loop proves it is alive: the loop calls [`Notifier::beat`] each
//! iteration and waits on a [`LoopTicker`] (a quarter of `WATCHDOG_USEC`) so
//! that an idle loop still beats. A loop that stops beating for a whole
//! half-period gets no `WATCHDOG=1` and systemd restarts the daemon. Before
//! the first beat (start-up, e.g. waiting for Redis) the task pings
//! unconditionally; start-up itself is bounded by `TimeoutStartSec` until
//! `READY=1`.
//!
//! Without `NOTIFY_SOCKET` every call does nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

/// Shared notifier (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    ready: Arc<AtomicBool>,
    heartbeat: Arc<AtomicU64>,
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

impl Notifier {
    /// A notifier; nothing is sent until asked.
    pub fn new() -> Notifier {
        Notifier::default()
    }

    /// Sends `READY=1` and `STATUS=<status>` the first time it is called;
    /// later calls only send the status. Returns true the first time.
    pub fn ready(&self, status: &str) -> bool {
        if self.ready.swap(true, Ordering::SeqCst) {
            self.status(status);
            return false;
        }
        tracing::info!(status, "ready (sd_notify READY=1)");
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
        true
    }

    /// True once [`Notifier::ready`] was called.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Sends `STATUS=<status>` (shown by `systemctl status`).
    pub fn status(&self, status: &str) {
        send(&[NotifyState::Status(status)]);
    }

    /// Sends `STOPPING=1` and a status.
    pub fn stopping(&self) {
        send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// The event loop is alive (call once per iteration).
    pub fn beat(&self) {
        self.heartbeat.fetch_add(1, Ordering::Relaxed);
    }

    /// The watchdog period asked by systemd (`WATCHDOG_USEC`), if any.
    pub fn watchdog_period() -> Option<Duration> {
        sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
    }

    /// A ticker for the event loop: fires every quarter of `WATCHDOG_USEC`
    /// so the loop beats while idle; never fires without a watchdog.
    pub fn loop_ticker(&self) -> LoopTicker {
        LoopTicker {
            interval: Self::watchdog_period().map(|p| {
                let mut i = tokio::time::interval(p / 4);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            }),
        }
    }

    /// Spawns the watchdog task when systemd asks for one (see the module
    /// docs). Must be called inside a tokio runtime.
    pub fn spawn_watchdog(&self) -> Option<tokio::task::JoinHandle<()>> {
        let period = Self::watchdog_period()? / 2;
        let heartbeat = self.heartbeat.clone();
        tracing::info!(
            every_ms = period.as_millis() as u64,
            "systemd watchdog enabled"
        );
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = 0u64;
            loop {
                tick.tick().await;
                let now = heartbeat.load(Ordering::Relaxed);
                if now == 0 || now != last {
                    send(&[NotifyState::Watchdog]);
                } else {
                    tracing::warn!(
                        "event loop did not run for a watchdog half-period; WATCHDOG=1 withheld"
                    );
                }
                last = now;
            }
        }))
    }
}

/// See [`Notifier::loop_ticker`].
#[derive(Debug)]
pub struct LoopTicker {
    interval: Option<tokio::time::Interval>,
}

impl LoopTicker {
    /// A ticker that never fires (no watchdog).
    pub fn never() -> LoopTicker {
        LoopTicker { interval: None }
    }

    /// Waits for the next tick (forever without a watchdog). Cancel-safe.
    pub async fn tick(&mut self) {
        match self.interval.as_mut() {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_sent_once() {
        let n = Notifier::new();
        assert!(!n.is_ready());
        assert!(n.ready("synced"));
        assert!(!n.ready("synced again"));
        assert!(n.is_ready());
        // Clones share the state.
        assert!(!n.clone().ready("x"));
    }
}
