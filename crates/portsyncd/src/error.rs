//! Why portsyncd stops with a failure (the binary then exits 1, as the C++
//! exits with EXIT_FAILURE, portsyncd.cpp main). Shared by the start-up
//! glue ([`crate::daemon`]) and the core ([`crate::core`]).

use sonic_daemon::startup::StartupError;
use swss::config::ConfigError;
use swss::SwssError;

/// Why the daemon stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// database_config.json / database_global.json missing or broken; the
    /// message names the file and the defect.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Redis error that a reconnect cannot fix (an error reply such as
    /// `WRONGTYPE`, a non-numeric `restore_count`, ...) during start-up;
    /// the C++ exits with EXIT_FAILURE on any exception (portsyncd.cpp main).
    #[error("{context}: {source}")]
    Redis {
        /// The start-up step, e.g. `WarmStart check`.
        context: &'static str,
        /// The error.
        source: SwssError,
    },
    /// The netlink socket could not be opened or read.
    #[error(transparent)]
    Netlink(#[from] sonic_netlink::socket::SocketError),
    /// A signal handler could not be installed.
    #[error("cannot install the {0} handler: {1}")]
    Signal(&'static str, std::io::Error),
}

impl From<StartupError> for DaemonError {
    fn from(e: StartupError) -> Self {
        match e {
            StartupError::Config(e) => DaemonError::Config(e),
            StartupError::Redis { context, source } => DaemonError::Redis { context, source },
        }
    }
}
