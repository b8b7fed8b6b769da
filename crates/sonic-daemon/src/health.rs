//! Daemon health as `/healthz` reports it: healthy when the netlink socket
//! works, Redis is connected and the last write succeeded.
//!
//! The `redis_up` / `netlink_up` gauges of [`Metrics`] follow the same
//! state, so the daemon updates both with one call.

use std::sync::{Arc, Mutex};

use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::Metrics;

#[derive(Debug)]
struct State {
    netlink_up: bool,
    redis_up: bool,
    /// `Some(reason)` when the last write failed.
    write_error: Option<String>,
    /// Why Redis is down (last error), if known.
    redis_error: Option<String>,
}

/// Shared health state (cheap to clone). Starts unhealthy ("starting")
/// until the daemon reports netlink and Redis up.
#[derive(Debug, Clone)]
pub struct Health {
    state: Arc<Mutex<State>>,
    redis_gauge: Gauge,
    netlink_gauge: Gauge,
}

impl Health {
    /// Health tied to `metrics`' `redis_up` and `netlink_up` gauges.
    pub fn new(metrics: &Metrics) -> Health {
        Health {
            state: Arc::new(Mutex::new(State {
                netlink_up: false,
                redis_up: false,
                write_error: None,
                redis_error: None,
            })),
            redis_gauge: metrics.redis_up.clone(),
            netlink_gauge: metrics.netlink_up.clone(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The netlink socket works (`true`) or failed.
    pub fn set_netlink_up(&self, up: bool) {
        self.netlink_gauge.set(i64::from(up));
        self.with(|s| s.netlink_up = up);
    }

    /// Redis is connected. Clears a previous write error: what failed is
    /// retried (or resynced) after a reconnect.
    pub fn set_redis_up(&self) {
        self.redis_gauge.set(1);
        self.with(|s| {
            s.redis_up = true;
            s.redis_error = None;
            s.write_error = None;
        });
    }

    /// Redis is lost; `reason` is the error seen.
    pub fn set_redis_down(&self, reason: impl std::fmt::Display) {
        self.redis_gauge.set(0);
        let reason = reason.to_string();
        self.with(|s| {
            s.redis_up = false;
            s.redis_error = Some(reason);
        });
    }

    /// The Redis side as a core reports it ([`crate::stats::Publisher`]).
    pub fn set_redis(&self, redis: &crate::stats::RedisHealth) {
        self.redis_gauge.set(i64::from(redis.up));
        self.with(|s| {
            s.redis_up = redis.up;
            s.redis_error.clone_from(&redis.error);
            s.write_error.clone_from(&redis.write_error);
        });
    }

    /// A write pipeline was acknowledged.
    pub fn write_ok(&self) {
        self.with(|s| s.write_error = None);
    }

    /// A write pipeline failed with `reason`.
    pub fn write_failed(&self, reason: impl std::fmt::Display) {
        let reason = reason.to_string();
        self.with(|s| s.write_error = Some(reason));
    }

    /// `Ok(())` when healthy, else why not (netlink, then Redis, then the
    /// last write), e.g. `"redis down: connection refused"`.
    pub fn check(&self) -> Result<(), String> {
        self.with(|s| {
            if !s.netlink_up {
                return Err("netlink socket not open".to_string());
            }
            if !s.redis_up {
                return Err(match &s.redis_error {
                    Some(e) => format!("redis down: {e}"),
                    None => "redis not connected yet".to_string(),
                });
            }
            if let Some(e) = &s.write_error {
                return Err(format!("last write failed: {e}"));
            }
            Ok(())
        })
    }

    /// The `/healthz` answer: HTTP status (200 or 503) and JSON body
    /// `{"status":"ok"}` or `{"status":"unhealthy","reason":"..."}`.
    pub fn report(&self) -> (u16, String) {
        match self.check() {
            Ok(()) => (200, serde_json::json!({"status": "ok"}).to_string()),
            Err(reason) => (
                503,
                serde_json::json!({"status": "unhealthy", "reason": reason}).to_string(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_when_everything_is_up() {
        let m = Metrics::new("neighsyncd");
        let h = Health::new(&m);
        assert_eq!(h.report().0, 503);
        h.set_netlink_up(true);
        assert_eq!(h.check(), Err("redis not connected yet".into()));
        h.set_redis_up();
        assert_eq!(h.report(), (200, r#"{"status":"ok"}"#.to_string()));
        h.write_failed("ERR boom");
        assert_eq!(
            h.report(),
            (
                503,
                r#"{"reason":"last write failed: ERR boom","status":"unhealthy"}"#.to_string()
            )
        );
        h.write_ok();
        h.set_redis_down("connection refused");
        assert_eq!(h.check(), Err("redis down: connection refused".into()));
        assert!(m.encode().contains("neighsyncd_redis_up 0"));
        h.set_redis_up();
        assert!(h.check().is_ok());
        assert!(m.encode().contains("neighsyncd_redis_up 1"));
        assert!(m.encode().contains("neighsyncd_netlink_up 1"));
    }
}
