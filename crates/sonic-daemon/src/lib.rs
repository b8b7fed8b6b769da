//! Operational plumbing shared by the SONiC sync daemons (neighsyncd,
//! portsyncd): what an operator needs to run them like SONiC daemons.
//!
//! * [`logging`]: SONiC log-level names (EMERG ... DEBUG) on tracing levels,
//!   native syslog as swss::Logger (tag = daemon, priority from the level),
//!   journald, stderr or stdout, a live level and output that follow
//!   CONFIG_DB `LOGGER|<daemon>` `LOGLEVEL` (what `swssloglevel` sets) and
//!   `LOGOUTPUT`, and the default `LOGGER` entry written at start
//!   (logger.cpp).
//! * [`metrics`]: the Prometheus metric families of both daemons
//!   (prometheus-client, names prefixed with the daemon's name).
//! * [`health`]: netlink / Redis / last-write health behind `/healthz`.
//! * [`stats`]: a core's counters as plain data, published to [`metrics`]
//!   and [`health`] by the driver.
//! * [`http`]: the `--metrics-addr` HTTP endpoint (`/metrics`, `/healthz`).
//! * [`notify`]: systemd notify (`READY=1`, `STATUS=`, `STOPPING=1`) and
//!   the watchdog (`WATCHDOG=1` at half of `WATCHDOG_USEC` while the event
//!   loop proves it is alive).
//! * [`args`]: the command-line options both daemons share (clap).
//! * [`startup`]: database config loading, CONFIG_DB/APPL_DB/STATE_DB
//!   connections with retry, start-up steps, runtime and exit status.
//! * [`engine`]: the one driver of both daemons around their I/O-free
//!   cores (netlink reads, signals, watchdog, bounded shutdown, backoff).
//! * [`session`]: the Redis session (up / reconnecting, its epoch) and the
//!   one flush in flight (read hold, retry backoff) both cores keep.
//! * [`effects`]: what both daemons' effects share around Redis: the live
//!   session (connections, subscription forwarders) and the forwarder.
//! * [`timer`]: a core's deadlines in one table by name (`poll_timeout`
//!   is its minimum, `handle_timeout` stops and dispatches what expired).
//! * [`audit`]: the `audit` report (missing / stale / different), its text
//!   and JSON output and exit codes.
//! * `sim` and `conformance` (feature `test-support`, for tests only): the
//!   simulated-clock harness both cores are tested on, and the golden-file
//!   conformance scenarios' shared runner (`tests/conformance/`).
//!
//! A daemon builds one [`Ops`] in `main` and hands clones to its event loop.

#![warn(missing_docs)]

pub mod args;
pub mod audit;
#[cfg(feature = "test-support")]
pub mod conformance;
pub mod effects;
pub mod engine;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod session;
#[cfg(feature = "test-support")]
pub mod sim;
pub mod startup;
pub mod stats;
pub mod timer;

use std::net::SocketAddr;

use swss::{DbConnector, SwssError};

pub use args::{DbArgs, OpsArgs};
pub use health::Health;
pub use logging::{LogHandle, LogLevel, LogOutput, SonicOutput, UnknownLogLevel};
pub use metrics::Metrics;
pub use notify::{LoopTicker, Notifier};
pub use startup::DbPaths;

/// Everything operational a daemon carries: metrics, health, systemd
/// notifier and the live log level. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct Ops {
    /// Daemon name (`neighsyncd`, `portsyncd`): metric prefix, `LOGGER` key,
    /// syslog tag and journald `SYSLOG_IDENTIFIER`.
    pub daemon: &'static str,
    /// The metric families.
    pub metrics: Metrics,
    /// What `/healthz` reports.
    pub health: Health,
    /// systemd notify and watchdog.
    pub notifier: Notifier,
    /// The live log level; `None` when logging was set up elsewhere (unit
    /// tests), then CONFIG_DB `LOGGER` changes are not followed.
    pub log: Option<LogHandle>,
}

/// Why [`Ops::start_background`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// `--metrics-addr` cannot be bound (in use, not local, no permission).
    #[error("cannot listen on --metrics-addr {addr}: {source}")]
    MetricsBind {
        /// The address asked for.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
}

impl Ops {
    /// Operational state for `daemon`; `log` is the handle returned by
    /// [`logging::init`] (or `None`). The metric families are
    /// [`Metrics::new`]`(daemon)`.
    pub fn new(daemon: &'static str, log: Option<LogHandle>) -> Ops {
        let metrics = Metrics::new(daemon);
        let health = Health::new(&metrics);
        Ops {
            daemon,
            metrics,
            health,
            notifier: Notifier::new(),
            log,
        }
    }

    /// A [`stats::Publisher`] to these metrics and health, for the driver.
    pub fn publisher(&self) -> stats::Publisher {
        stats::Publisher::new(self.metrics.clone(), self.health.clone())
    }

    /// Starts the background tasks: the HTTP endpoint when `metrics_addr`
    /// is `Some` (bound before returning, so a bad address fails start-up),
    /// and the systemd watchdog task when `WATCHDOG_USEC` asks for one. Must
    /// be called inside a tokio runtime.
    ///
    /// Errors: [`OpsError::MetricsBind`].
    pub async fn start_background(&self, metrics_addr: Option<SocketAddr>) -> Result<(), OpsError> {
        if let Some(addr) = metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| OpsError::MetricsBind { addr, source })?;
            let local = listener.local_addr().unwrap_or(addr);
            tracing::info!(addr = %local, "serving /metrics and /healthz");
            tokio::spawn(http::serve(
                listener,
                self.metrics.clone(),
                self.health.clone(),
            ));
        }
        self.notifier.spawn_watchdog();
        Ok(())
    }

    /// Links the daemon's log to CONFIG_DB `LOGGER|<daemon>`, as
    /// swss::Logger::linkToDbWithOutput: writes the default fields where
    /// missing ([`logging::write_logger_defaults`]), applies the
    /// `LOGLEVEL` and `LOGOUTPUT` found there (unless given on the command
    /// line, [`logging::LoggerSync::apply`] at start) and returns the
    /// [`logging::LoggerSync`] to feed with the `LOGGER` ops of the
    /// daemon's CONFIG_DB subscription (`None` without a [`LogHandle`]; the
    /// defaults are written anyway). Subscribe after this returns, so the
    /// initial load sees the defaults; feed that initial load with
    /// `at_start` too (a value already in force is not applied again).
    /// Spawns nothing.
    ///
    /// Errors: [`SwssError`] from Redis.
    pub async fn logger_sync(
        &self,
        config: &DbConnector,
    ) -> Result<Option<logging::LoggerSync>, SwssError> {
        let mut conn = config.connect().await?;
        let sep = config.separator();
        logging::write_logger_defaults(&mut conn, sep, self.daemon).await?;
        let Some(handle) = self.log.clone() else {
            return Ok(None);
        };
        let table = swss::Table::new(logging::CFG_LOGGER_TABLE_NAME, sep).in_db("CONFIG_DB");
        let fvs = table.get(&mut conn, self.daemon).await?.unwrap_or_default();
        let mut sync = logging::LoggerSync::new(handle);
        sync.apply(&swss::KeyOp::Set(self.daemon.to_owned(), fvs), true);
        Ok(Some(sync))
    }
}
