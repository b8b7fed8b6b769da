//! A Rust-native subset of sonic-swss-common: where each SONiC database lives
//! and the Redis protocols the SONiC daemons speak over it.
//!
//! Everything written here is byte-compatible with sonic-swss-common, so the
//! real orchagent (a `swss::ConsumerStateTable` in C++) consumes it unchanged.
//! See `docs/behavior.md` section a.

#![warn(missing_docs)]

pub mod bad_entry;
pub mod config;
pub mod connector;
pub mod consumer_state;
pub mod consumer_view;
pub mod error;
pub mod producer_state;
pub mod restart_assist;
pub mod subscriber_state;
pub mod table;
pub mod warm_restart;

pub use config::{ConfigError, DbConfig, DbLocation, RedisAddr};
pub use connector::DbConnector;
pub use consumer_state::{ConsumerStateTable, KeyOpFieldValues, Op};
pub use consumer_view::{read_consumer_view, ConsumerView};
pub use error::SwssError;
pub use producer_state::ProducerStateTable;
pub use subscriber_state::{
    KeyOp, MultiTableSubscriber, PatternScope, SubscribeMode, SubscriberStateTable,
};
pub use table::Table;

/// Field/value pairs of one hash, in the order they are written (e.g.
/// `[("neigh", "00:11:22:33:44:55"), ("family", "IPv4")]`).
pub type FieldValues = Vec<(String, String)>;

/// Operation strings as swss-common spells them.
pub const SET_COMMAND: &str = "SET";
/// See [`SET_COMMAND`].
pub const DEL_COMMAND: &str = "DEL";
