//! [`SubscriberStateTable`]: a change feed of one table through Redis keyspace
//! notifications (BEHAVIOR.md a.7; swss-common subscriberstatetable.cpp).
//!
//! Needs `notify-keyspace-events` with at least `K`, `g` and `h` (SONiC runs
//! `AKE`). Works for any DB: CONFIG_DB/STATE_DB (`|`) and APPL_DB (`:`).

use std::collections::VecDeque;

use futures::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubStream};

use crate::connector::DbConnector;
use crate::error::SwssError;
use crate::table::{cut_fields, glob_escape, hgetall, Table};
use crate::FieldValues;

/// One change of a table entry; keys are without the `TABLE<sep>` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOp {
    /// The entry exists; the full current content (field names cut at the
    /// first `@`, as `Table::get`).
    Set(String, FieldValues),
    /// The entry is gone.
    Del(String),
}

impl KeyOp {
    /// The key the operation is about.
    pub fn key(&self) -> &str {
        match self {
            KeyOp::Set(k, _) | KeyOp::Del(k) => k,
        }
    }
}

/// Keys read per pipelined round trip of the initial load.
const LOAD_CHUNK: usize = 1000;

/// Initial content plus live changes of one table.
pub struct SubscriberStateTable {
    conn: MultiplexedConnection,
    messages: PubSubStream,
    table: Table,
    pattern: String,
    channel_prefix: String,
    queued: VecDeque<KeyOp>,
    in_progress: Option<(String, String)>,
}

// ===== impl SubscriberStateTable =====

impl SubscriberStateTable {
    /// Subscribes to `table` in the connector's DB, then loads its content.
    ///
    /// Order: `PSUBSCRIBE __keyspace@<id>__:<TABLE><sep>*` on a dedicated
    /// connection first (glob characters of the name escaped), then
    /// `SCAN MATCH <TABLE><sep>*` and pipelined `HGETALL` of the keys on a
    /// second connection ([`Table::get_many`]); non-empty entries are queued
    /// as [`KeyOp::Set`]. A change made during the load is therefore seen
    /// (possibly twice), never lost. A key that is not a hash is reported as
    /// a bad entry and left out. Deviation: the C++ uses `KEYS` for the load
    /// (BEHAVIOR.md f.20).
    ///
    /// Errors: [`SwssError::Redis`] (connect, PSUBSCRIBE, SCAN, HGETALL),
    /// [`SwssError::UnexpectedReply`].
    pub async fn new(connector: &DbConnector, table: &str) -> Result<Self, SwssError> {
        let sep = connector.separator();
        let table = connector.table(table);
        let channel_prefix = format!("__keyspace@{}__:{}{}", connector.id(), table.name(), sep);
        let pattern = format!("{}*", glob_escape(&channel_prefix));
        let mut pubsub = connector.pubsub().await?;
        pubsub.psubscribe(&pattern).await?;
        let mut conn = connector.connect().await?;
        let keys = table.keys(&mut conn).await?;
        let queued = table
            .get_many(&mut conn, &keys, LOAD_CHUNK)
            .await?
            .into_iter()
            .map(|(key, fvs)| KeyOp::Set(key, fvs))
            .collect();
        Ok(SubscriberStateTable {
            conn,
            messages: pubsub.into_on_message(),
            table,
            pattern,
            channel_prefix,
            queued,
            in_progress: None,
        })
    }

    /// The table being followed.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Initial entries not yet returned by [`SubscriberStateTable::next`].
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// The next change: first the queued initial entries, then live events.
    ///
    /// Live events (channel `__keyspace@<id>__:<TABLE><sep><key>`):
    /// * `del` gives [`KeyOp::Del`];
    /// * any other event reads `HGETALL`: a non-empty hash gives
    ///   [`KeyOp::Set`] with the full content; an empty one gives
    ///   [`KeyOp::Del`]. Deviation: the C++ drops such events, so an
    ///   `expired` key (or one removed by `rename`, eviction) was never
    ///   reported (BEHAVIOR.md f.9). An `hdel` that empties the hash is
    ///   skipped here because Redis follows it with a `del` event, which
    ///   gives the Del. In races (an event read after a later delete) a Del
    ///   may be reported twice; a Set always carries the content at the time
    ///   of reading, so the last op for a key matches Redis.
    /// * A key that is not a hash (`WRONGTYPE`) is reported as a bad entry
    ///   and skipped.
    ///
    /// Cancel-safe: if the future is dropped while reading a key, the next
    /// call reads it again, so it can be used in `tokio::select!`.
    ///
    /// Errors: [`SwssError::SubscriptionClosed`] when the subscription
    /// connection ended, [`SwssError::Redis`] when the HGETALL connection
    /// failed; both have `is_connection_error()` true. Rebuild the
    /// subscriber after either (the initial load then resyncs).
    pub async fn next(&mut self) -> Result<KeyOp, SwssError> {
        loop {
            if let Some(op) = self.queued.pop_front() {
                return Ok(op);
            }
            if let Some((key, event)) = self.in_progress.clone() {
                let full = self.table.full_key(&key);
                let res = hgetall(&mut self.conn, &full).await;
                self.in_progress = None;
                match res {
                    Ok(fvs) if !fvs.is_empty() => return Ok(KeyOp::Set(key, cut_fields(fvs))),
                    Ok(_) if event == "hdel" => continue,
                    Ok(_) => return Ok(KeyOp::Del(key)),
                    Err(e) if e.is_connection_error() => return Err(e),
                    Err(e) if e.is_wrong_type() => {
                        crate::bad_entry::report(self.table.db(), &full, "not a hash (WRONGTYPE)");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(table = self.table.name(), key = %key, event = %event, error = %e,
                            "cannot read changed entry; skipped");
                        continue;
                    }
                }
            }
            let Some(msg) = self.messages.next().await else {
                return Err(SwssError::SubscriptionClosed(format!(
                    "PSUBSCRIBE {}",
                    self.pattern
                )));
            };
            let channel = match msg.get_channel::<Vec<u8>>() {
                Ok(c) => c,
                Err(_) => continue,
            };
            let Some((key, event)) =
                parse_keyspace_event(&channel, msg.get_payload_bytes(), &self.channel_prefix)
            else {
                tracing::debug!(channel = %String::from_utf8_lossy(&channel),
                    "keyspace event outside the table; ignored");
                continue;
            };
            if event == "del" {
                return Ok(KeyOp::Del(key));
            }
            self.in_progress = Some((key, event));
        }
    }
}

/// Decodes one keyspace notification of a [`SubscriberStateTable`]:
/// `channel` is `__keyspace@<id>__:<TABLE><sep><key>`, `payload` the event
/// name (`hset`, `del`, `expired`, ...), `channel_prefix` the
/// `__keyspace@<id>__:<TABLE><sep>` part. Both are read as lossy UTF-8
/// (invalid bytes become U+FFFD) before the prefix is stripped, so the key
/// is any text after the prefix (possibly empty).
///
/// Returns `Some((key, event))`, or `None` when the channel does not start
/// with `channel_prefix` (an event of another table). Never fails otherwise.
pub fn parse_keyspace_event(
    channel: &[u8],
    payload: &[u8],
    channel_prefix: &str,
) -> Option<(String, String)> {
    let channel = String::from_utf8_lossy(channel);
    let key = channel.strip_prefix(channel_prefix)?;
    let event = String::from_utf8_lossy(payload).into_owned();
    Some((key.to_string(), event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_events_are_stripped_and_lossy() {
        let prefix = "__keyspace@4__:PORT|";
        assert_eq!(
            parse_keyspace_event(b"__keyspace@4__:PORT|Ethernet0", b"hset", prefix),
            Some(("Ethernet0".to_string(), "hset".to_string()))
        );
        assert_eq!(
            parse_keyspace_event(b"__keyspace@4__:PORT|", b"del", prefix),
            Some((String::new(), "del".to_string()))
        );
        assert_eq!(
            parse_keyspace_event(b"__keyspace@4__:PORT|a\xffb", b"h\xfe", prefix),
            Some(("a\u{fffd}b".to_string(), "h\u{fffd}".to_string()))
        );
        assert_eq!(
            parse_keyspace_event(b"__keyspace@4__:PORT_TABLE|x", b"hset", prefix),
            None
        );
        // Invalid UTF-8 inside the prefix part never matches.
        assert_eq!(
            parse_keyspace_event(b"__keyspace@4__:PO\xffRT|x", b"hset", prefix),
            None
        );
    }
}
