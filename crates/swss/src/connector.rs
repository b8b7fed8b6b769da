//! [`DbConnector`]: connections to one named SONiC database (docs/behavior.md a.2).
//!
//! Source: swss-common dbconnector.cpp `DBConnector`. Differences: connections
//! are async ([`redis::aio::MultiplexedConnection`], which may be shared by
//! all tables of a DB, unlike the C++ which opens one per Table), and
//! [`DbConnector::connect_retrying`] adds the reconnect logic the C++ lacks
//! (docs/behavior.md f.8).

use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use crate::config::{DbLocation, RedisAddr};
use crate::error::SwssError;

/// First delay of [`DbConnector::connect_retrying`].
pub const RECONNECT_INITIAL_DELAY: Duration = Duration::from_millis(100);
/// Largest delay of [`DbConnector::connect_retrying`].
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(5);
/// Exponential backoff for retrying Redis work: [`RECONNECT_INITIAL_DELAY`]
/// (100 ms), doubling, capped at [`RECONNECT_MAX_DELAY`] (5 s). The one
/// retry schedule of both daemons (the C++ has none, docs/behavior.md f.8).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// A schedule whose first delay is [`RECONNECT_INITIAL_DELAY`].
    pub fn new() -> Self {
        Backoff {
            next: RECONNECT_INITIAL_DELAY,
        }
    }

    /// The delay before the next attempt; doubles the one after it (up to
    /// [`RECONNECT_MAX_DELAY`]).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(RECONNECT_MAX_DELAY);
        d
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = RECONNECT_INITIAL_DELAY;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// Time allowed for one connect attempt (socket connect plus handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A factory of connections to one database: its address plus `SELECT <id>`.
#[derive(Debug, Clone)]
pub struct DbConnector {
    loc: DbLocation,
    client: Client,
    response_timeout: Option<Duration>,
}

// ===== impl DbConnector =====

impl DbConnector {
    /// Prepares connections to `loc` (nothing is connected yet).
    ///
    /// Errors: [`SwssError::Redis`] if the address kind is unsupported.
    pub fn new(loc: DbLocation) -> Result<Self, SwssError> {
        let addr = match &loc.addr {
            RedisAddr::Unix(p) => ConnectionAddr::Unix(p.clone()),
            RedisAddr::Tcp { host, port } => ConnectionAddr::Tcp(host.clone(), *port),
        };
        let info: ConnectionInfo = addr.into_connection_info()?;
        let redis = info.redis_settings().clone().set_db(i64::from(loc.id));
        let info = info.set_redis_settings(redis);
        let client = Client::open(info)?;
        Ok(DbConnector {
            loc,
            client,
            response_timeout: None,
        })
    }

    /// Sets a per-command response timeout for connections made afterwards.
    /// The default is none (blocking, as the daemons' C++ timeout 0); a
    /// vanished server is still noticed because its socket closes.
    pub fn with_response_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Where this database lives.
    pub fn location(&self) -> &DbLocation {
        &self.loc
    }

    /// The numeric DB id, e.g. 0 for APPL_DB.
    pub fn id(&self) -> u32 {
        self.loc.id
    }

    /// The table/key separator, `:` or `|`.
    pub fn separator(&self) -> char {
        self.loc.separator
    }

    /// The table `name` of this database, with its separator and the
    /// database name for bad-entry reports.
    pub fn table(&self, name: &str) -> crate::Table {
        crate::Table::new(name, self.loc.separator).in_db(&self.loc.name)
    }

    /// Opens a new connection and selects the DB (`SELECT <id>` is sent by
    /// the client during the handshake).
    ///
    /// Errors: [`SwssError::Redis`] (refused, missing socket, timeout after
    /// [`CONNECT_TIMEOUT`]); these have `is_connection_error()` true.
    pub async fn connect(&self) -> Result<MultiplexedConnection, SwssError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(self.response_timeout);
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// Connects, retrying forever with exponential backoff: 100 ms, doubling,
    /// capped at 5 s. Each failed attempt logs a warning with the address,
    /// DB and error.
    pub async fn connect_retrying(&self) -> MultiplexedConnection {
        let mut backoff = Backoff::new();
        let mut attempt: u64 = 1;
        loop {
            match self.connect().await {
                Ok(c) => {
                    if attempt > 1 {
                        tracing::info!(addr = %self.loc.addr, db = %self.loc.name, attempt, "connected to Redis");
                    }
                    return c;
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        addr = %self.loc.addr,
                        db = %self.loc.name,
                        id = self.loc.id,
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %e,
                        "cannot connect to Redis"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
            attempt += 1;
        }
    }

    /// Opens a dedicated connection for `SUBSCRIBE`/`PSUBSCRIBE` (a
    /// connection in subscribe mode cannot run other commands).
    ///
    /// Errors: as [`DbConnector::connect`].
    pub async fn pubsub(&self) -> Result<PubSub, SwssError> {
        let fut = self.client.get_async_pubsub();
        match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(SwssError::Redis(redis::RedisError::from(
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("pubsub connect to {} timed out", self.loc.addr),
                ),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let got: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), RECONNECT_INITIAL_DELAY);
    }
}
