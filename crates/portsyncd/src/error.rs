//! Why portsyncd stops with a failure (the binary then exits 1, as the C++
//! exits with EXIT_FAILURE, portsyncd.cpp main): only the reasons both
//! daemons share ([`sonic_daemon::startup::DaemonError`]). Used by the
//! start-up glue ([`crate::daemon`]) and the core ([`crate::core`]).

pub use sonic_daemon::startup::DaemonError;
