//! Start-up pieces both daemons share (docs/behavior.md a.2, f.8):
//!
//! * [`DbPaths`]: where the databases are described, database_config.json
//!   or, with `--namespace`, that namespace's entry of the
//!   database_global.json next to it; [`DbPaths::load`] reads it (a missing
//!   or broken file is fatal and the error names the file).
//! * [`Dbs`] / [`Conns`]: connectors and live connections for CONFIG_DB,
//!   APPL_DB and STATE_DB, each connection retried with backoff
//!   ([`DbConnector::connect_retrying`]).
//! * [`step`]: one Redis start-up step, run again after a reconnect when
//!   the connection was lost; any other Redis error is fatal.
//! * [`runtime`] / [`exit_status`]: the binaries' current-thread tokio
//!   runtime and exit status (0 after SIGTERM/SIGINT, 1 on a fatal error).

use std::fmt::Display;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use sonic_netlink::socket::SocketError;
use swss::config::ConfigError;
use swss::{DbConfig, DbConnector, SwssError};

/// Per-command response timeout on the daemons' Redis connections
/// ([`Dbs::new`]): a Redis that accepts connections but stops answering is
/// treated as lost and reconnected to.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Name of the multi-ASIC global config, looked up next to
/// database_config.json (swss-common `SonicDBConfig`).
pub const DB_GLOBAL_CONFIG_FILE: &str = "database_global.json";

/// Where the database configuration is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbPaths {
    /// database_config.json (default
    /// `/var/run/redis/sonic-db/database_config.json`).
    pub db_config: PathBuf,
    /// Multi-ASIC namespace; `Some` (not empty) loads `db_global_config`'s
    /// entry for it.
    pub namespace: Option<String>,
    /// database_global.json, used only with `namespace`.
    pub db_global_config: PathBuf,
}

impl DbPaths {
    /// `db_config` and `namespace`, with the database_global.json in the
    /// directory of `db_config` ([`global_config_next_to`]).
    pub fn new(db_config: PathBuf, namespace: Option<String>) -> DbPaths {
        DbPaths {
            db_global_config: global_config_next_to(&db_config),
            db_config,
            namespace,
        }
    }

    /// Loads the database config: `DbConfig::load_for_namespace` of
    /// database_global.json when a namespace is set, else
    /// `DbConfig::load` of database_config.json.
    ///
    /// Errors: [`ConfigError`] naming the file (missing, unreadable, bad
    /// JSON, missing members, unknown namespace).
    pub fn load(&self) -> Result<DbConfig, ConfigError> {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => DbConfig::load_for_namespace(&self.db_global_config, ns),
            _ => DbConfig::load(&self.db_config),
        }
    }
}

/// The database_global.json in the directory of `db_config` (on SONiC both
/// live in `/var/run/redis/sonic-db/`); a bare file name gives a bare
/// `database_global.json`.
pub fn global_config_next_to(db_config: &Path) -> PathBuf {
    match db_config.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(DB_GLOBAL_CONFIG_FILE),
        _ => PathBuf::from(DB_GLOBAL_CONFIG_FILE),
    }
}

/// Why a shared start-up step failed; each daemon maps it onto its own
/// error type.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// database_config.json / database_global.json missing or broken, or a
    /// database missing from it; the message names the file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Redis error that a reconnect cannot fix (an error reply such as
    /// `WRONGTYPE`, an unsupported address); `context` names the step.
    #[error("{context}: {source}")]
    Redis {
        /// The start-up step, e.g. `WarmStart check`.
        context: &'static str,
        /// The error.
        source: SwssError,
    },
}

/// Why a daemon stops with a failure, for the reasons both daemons share
/// (the binary exits 1, as the C++ exits with EXIT_FAILURE on any
/// exception): its start-up steps, the netlink socket, the signal
/// handlers. A daemon with reasons of its own wraps it.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A start-up step: database_config.json / database_global.json
    /// missing or broken (the message names the file and the defect), or a
    /// Redis error reply that a reconnect cannot fix.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The netlink socket could not be opened, asked for a dump, or read.
    #[error(transparent)]
    Netlink(#[from] SocketError),
    /// A signal handler could not be installed.
    #[error("cannot install the {0} handler: {1}")]
    Signal(&'static str, std::io::Error),
}

impl From<ConfigError> for DaemonError {
    fn from(e: ConfigError) -> Self {
        DaemonError::Startup(StartupError::Config(e))
    }
}

/// Connection factories for CONFIG_DB, APPL_DB and STATE_DB.
#[derive(Debug, Clone)]
pub struct Dbs {
    /// CONFIG_DB (`LOGGER`, the daemon's configuration tables).
    pub config: DbConnector,
    /// APPL_DB (the tables the daemon produces).
    pub appl: DbConnector,
    /// STATE_DB (warm restart, state tables).
    pub state: DbConnector,
}

impl Dbs {
    /// The three connectors of `cfg`, each with the per-command
    /// `response_timeout` (a Redis that accepts the connection but stops
    /// answering is then treated as lost). Nothing is connected yet.
    ///
    /// Errors: [`StartupError::Config`] when `cfg` lacks one of the
    /// databases, [`StartupError::Redis`] (`preparing the Redis client`)
    /// for an address the client cannot use.
    pub fn new(cfg: &DbConfig, response_timeout: Option<Duration>) -> Result<Dbs, StartupError> {
        let make = |name: &'static str| -> Result<DbConnector, StartupError> {
            let loc = cfg.location(name)?;
            DbConnector::new(loc)
                .map(|c| c.with_response_timeout(response_timeout))
                .map_err(|source| StartupError::Redis {
                    context: "preparing the Redis client",
                    source,
                })
        };
        Ok(Dbs {
            config: make("CONFIG_DB")?,
            appl: make("APPL_DB")?,
            state: make("STATE_DB")?,
        })
    }

    /// Connects to all three (CONFIG_DB, APPL_DB, STATE_DB in that order),
    /// each retrying with backoff (100 ms doubling, capped at 5 s, every
    /// failure logged) until it succeeds.
    pub async fn connect_all(&self) -> Conns {
        Conns {
            config: self.config.connect_retrying().await,
            appl: self.appl.connect_retrying().await,
            state: self.state.connect_retrying().await,
        }
    }
}

/// Live connections to the three databases (cheap to clone: multiplexed).
#[derive(Clone)]
pub struct Conns {
    /// CONFIG_DB.
    pub config: MultiplexedConnection,
    /// APPL_DB.
    pub appl: MultiplexedConnection,
    /// STATE_DB.
    pub state: MultiplexedConnection,
}

/// Runs one start-up step `f` on clones of `conns`; when it fails with a
/// connection error (`SwssError::is_connection_error`), logs a warning,
/// reconnects all three ([`Dbs::connect_all`], with its backoff) and runs
/// it again.
///
/// Errors: any other error, as [`StartupError::Redis`] with `what` as the
/// context.
pub async fn step<T, F, Fut>(
    what: &'static str,
    dbs: &Dbs,
    conns: &mut Conns,
    mut f: F,
) -> Result<T, StartupError>
where
    F: FnMut(Conns) -> Fut,
    Fut: Future<Output = Result<T, SwssError>>,
{
    loop {
        match f(conns.clone()).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_connection_error() => {
                tracing::warn!(step = what, error = %e, "Redis connection lost during start-up; reconnecting");
                *conns = dbs.connect_all().await;
            }
            Err(source) => {
                return Err(StartupError::Redis {
                    context: what,
                    source,
                })
            }
        }
    }
}

/// The binaries' current-thread tokio runtime (IO and time enabled; one
/// thread keeps the RSS low).
///
/// Errors: the runtime cannot be built; the error is printed on stderr as
/// `<daemon>: cannot start the tokio runtime: ...` and returned as the exit
/// status 1.
pub fn runtime(daemon: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("{daemon}: cannot start the tokio runtime: {e}");
            ExitCode::FAILURE
        })
}

/// The exit status of a daemon run: 0 for `Ok` (stopped by SIGTERM or
/// SIGINT); for an error, logs it (`error`), prints `<what>: <error>` on
/// stderr and returns 1, as the C++ daemons exit with EXIT_FAILURE.
pub fn exit_status<E: Display>(what: &str, res: Result<(), E>) -> ExitCode {
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{what} failed");
            eprintln!("{what}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_config_is_looked_up_next_to_the_db_config() {
        let p = DbPaths::new("/tmp/x/db.json".into(), Some("asic1".into()));
        assert_eq!(
            p.db_global_config,
            PathBuf::from("/tmp/x/database_global.json")
        );
        assert_eq!(
            global_config_next_to(Path::new("db.json")),
            PathBuf::from("database_global.json")
        );
    }

    #[test]
    fn load_names_the_missing_file() {
        let dir = std::env::temp_dir().join(format!("sd-startup-{}", std::process::id()));
        let p = DbPaths::new(dir.join("database_config.json"), None);
        let err = p.load().unwrap_err().to_string();
        assert!(err.contains("database_config.json"), "{err}");
        let p = DbPaths::new(dir.join("database_config.json"), Some("asic0".into()));
        let err = p.load().unwrap_err().to_string();
        assert!(err.contains("database_global.json"), "{err}");
        // An empty namespace is the default one.
        let p = DbPaths::new(dir.join("database_config.json"), Some(String::new()));
        let err = p.load().unwrap_err().to_string();
        assert!(err.contains("database_config.json"), "{err}");
    }
}
