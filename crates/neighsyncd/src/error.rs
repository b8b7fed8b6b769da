//! Why neighsyncd stops with a failure. The binary exits 1 for every
//! variant (`main.rs`); the message names what to fix.

use std::time::Duration;

use sonic_daemon::startup::StartupError;
use sonic_netlink::socket::SocketError;
use swss::config::ConfigError;

/// Why the daemon stopped with a failure (the binary exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A reason both daemons share: the database config, a Redis error
    /// reply during start-up, the netlink socket, a signal handler
    /// ([`sonic_daemon::startup::DaemonError`]).
    #[error(transparent)]
    Common(#[from] sonic_daemon::startup::DaemonError),
    /// Warm start: STATE_DB `NEIGH_RESTORE_TABLE|Flags restored=true` was
    /// not set within the limit (180 s by default, docs/behavior.md c.3).
    #[error("warm start: NEIGH_RESTORE_TABLE|Flags restored=true not set within {} s; giving up", .0.as_secs_f64())]
    RestoreTimeout(Duration),
}

impl From<ConfigError> for DaemonError {
    fn from(e: ConfigError) -> Self {
        DaemonError::Common(e.into())
    }
}

impl From<StartupError> for DaemonError {
    fn from(e: StartupError) -> Self {
        DaemonError::Common(e.into())
    }
}

impl From<SocketError> for DaemonError {
    fn from(e: SocketError) -> Self {
        DaemonError::Common(e.into())
    }
}
