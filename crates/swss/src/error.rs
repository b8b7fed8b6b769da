//! Errors of the swss crate.
//!
//! [`SwssError`] is what every Redis-facing call returns. The one question
//! callers usually have is "is the connection gone, so I should reconnect and
//! resync?"; [`SwssError::is_connection_error`] answers it.

use crate::config::ConfigError;

/// Any failure of the SONiC database client.
///
/// Source: the C++ throws `std::runtime_error` / `system_error` in the same
/// places (dbconnector.cpp, redispipeline.h, table.cpp); here they are values.
#[derive(Debug, thiserror::Error)]
pub enum SwssError {
    /// database_config.json / database_global.json could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The Redis client failed: I/O error, connection refused or dropped,
    /// protocol error, or an error reply from the server (e.g. `WRONGTYPE`,
    /// `NOSCRIPT` after a failed reload).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),

    /// Redis answered, but not with what the protocol expects (e.g. an
    /// EVALSHA of a ProducerStateTable script that did not return nil, or an
    /// HGETALL reply with an odd number of elements).
    #[error("unexpected reply to {context}: {reply}")]
    UnexpectedReply {
        /// The command or operation, e.g. `EVALSHA set NEIGH_TABLE`.
        context: String,
        /// The reply, in `Debug` form.
        reply: String,
    },

    /// A (P)SUBSCRIBE connection ended: Redis closed it or went away. The
    /// subscriber must be rebuilt on a new connection (and the table
    /// reloaded).
    #[error("subscription closed: {0}")]
    SubscriptionClosed(String),

    /// No connection to use: the caller's session was lost and is being
    /// re-established. A connection error.
    #[error("not connected to Redis")]
    NotConnected,

    /// The caller passed something this crate cannot send (e.g. an atomic
    /// `MULTI` pipeline to `ProducerStateTable::flush`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Error replies that mean "Redis cannot serve right now, ask again": `LOADING`
/// (the dump is still being loaded after a restart), `BUSY` (a script runs
/// past its time limit), `MASTERDOWN` (a replica lost its master). They are
/// handled as a lost connection (reconnect with backoff, log at warning),
/// not as a fault of the request.
pub const TRANSIENT_REPLIES: [&str; 3] = ["LOADING", "BUSY", "MASTERDOWN"];

impl SwssError {
    /// True when the error means the connection to Redis is gone or unusable
    /// (refused, reset, EOF, timed out, subscription closed) or Redis is not
    /// serving yet ([`TRANSIENT_REPLIES`]: still loading its dump, busy with
    /// a script, a replica without its master): the caller should reconnect
    /// (see `DbConnector::connect_retrying`) and resync. False for errors
    /// that a new connection would not fix (bad config, error replies such
    /// as `WRONGTYPE`, unexpected replies).
    pub fn is_connection_error(&self) -> bool {
        match self {
            SwssError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || e.is_unrecoverable_error()
                    || matches!(e.code(), Some(code) if TRANSIENT_REPLIES.contains(&code))
            }
            SwssError::SubscriptionClosed(_) | SwssError::NotConnected => true,
            SwssError::Config(_)
            | SwssError::UnexpectedReply { .. }
            | SwssError::InvalidArgument(_) => false,
        }
    }

    /// True for a Redis `WRONGTYPE` error reply: the command met a key of
    /// another type (e.g. `HGETALL` of a string). A problem of that one
    /// entry, not of the connection; see [`crate::bad_entry`].
    pub fn is_wrong_type(&self) -> bool {
        matches!(self, SwssError::Redis(e) if e.code() == Some("WRONGTYPE"))
    }

    /// True for a Redis `NOSCRIPT` error reply (the script cache was flushed,
    /// typically because Redis restarted).
    pub fn is_noscript(&self) -> bool {
        matches!(self, SwssError::Redis(e)
            if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript))
    }

    /// Builds [`SwssError::UnexpectedReply`] from a context and any reply.
    pub(crate) fn unexpected(context: impl Into<String>, reply: &impl std::fmt::Debug) -> Self {
        let mut text = format!("{reply:?}");
        if text.len() > 512 {
            let mut cut = 512;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        SwssError::UnexpectedReply {
            context: context.into(),
            reply: text,
        }
    }
}
