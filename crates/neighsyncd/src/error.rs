//! Why neighsyncd stops with a failure. The binary exits 1 for every
//! variant (`main.rs`); the message names what to fix.

use std::time::Duration;

use sonic_daemon::startup::StartupError;
use sonic_netlink::socket::SocketError;
use swss::config::ConfigError;
use swss::SwssError;

/// Why the daemon stopped with a failure (the binary exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// database_config.json / database_global.json missing or broken; the
    /// message names the file and the defect.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Redis error that a reconnect cannot fix (an error reply such as
    /// `WRONGTYPE`) during start-up.
    #[error("{context}: {source}")]
    Redis {
        /// The start-up step, e.g. `SCRIPT LOAD`.
        context: &'static str,
        /// The error.
        source: SwssError,
    },
    /// The netlink socket could not be opened, asked for a dump, or read.
    #[error(transparent)]
    Netlink(#[from] SocketError),
    /// A signal handler could not be installed.
    #[error("cannot install the {0} handler: {1}")]
    Signal(&'static str, std::io::Error),
    /// Warm start: STATE_DB `NEIGH_RESTORE_TABLE|Flags restored=true` was
    /// not set within the limit (180 s by default, docs/behavior.md c.3).
    #[error("warm start: NEIGH_RESTORE_TABLE|Flags restored=true not set within {} s; giving up", .0.as_secs_f64())]
    RestoreTimeout(Duration),
}

impl From<StartupError> for DaemonError {
    fn from(e: StartupError) -> Self {
        match e {
            StartupError::Config(e) => DaemonError::Config(e),
            StartupError::Redis { context, source } => DaemonError::Redis { context, source },
        }
    }
}
