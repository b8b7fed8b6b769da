//! [`SubscriberStateTable`]: a change feed of one table through Redis keyspace
//! notifications (docs/behavior.md a.7; swss-common subscriberstatetable.cpp).
//!
//! Needs `notify-keyspace-events` with at least `K`, `g` and `h` (SONiC runs
//! `AKE`). Works for any DB: CONFIG_DB/STATE_DB (`|`) and APPL_DB (`:`).
//!
//! Three [`SubscribeMode`]s: [`SubscribeMode::Content`] (the default, what
//! [`SubscriberStateTable::new`] gives) reads the whole hash on every event,
//! as the C++ does (docs/behavior.md a.7); [`SubscribeMode::Presence`] and
//! [`SubscribeMode::Deletions`] are for callers that only need to know that
//! an entry exists or went away, and read nothing for the events that tell
//! them that by name (docs/differences.md P9).

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

/// What a [`SubscriberStateTable`] loads at start and reads per live event.
///
/// The live event names (the payload of a keyspace notification) fall into
/// four classes for [`SubscribeMode::Presence`] and
/// [`SubscribeMode::Deletions`] ([`EventClass`]):
/// * removals, `del`, `expired`, `evicted`, `rename_from`, `move_from`:
///   the key is gone;
/// * hash writes, `hset` (also `HSETNX`/`HMSET`), `hincrby`,
///   `hincrbyfloat`: the key is a non-empty hash at that moment;
/// * `hdel`: a field went; if it was the last one Redis follows with `del`;
/// * anything else (`expire`, `persist`, `rename_to`, `restore`, `set`,
///   `hexpired`, ...): not conclusive, so one `HLEN` decides (0 = gone,
///   `WRONGTYPE` = a bad entry, reported and skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscribeMode {
    /// Initial load of every entry with its content; every live event other
    /// than `del` reads `HGETALL` and reports the full content (see
    /// [`SubscriberStateTable::next`]). Same as the C++ (a.7) apart from
    /// docs/differences.md S1, S2.
    #[default]
    Content,
    /// Key existence only. The initial load is as [`SubscribeMode::Content`]
    /// (entries with their content, so a caller can inspect what existed at
    /// subscription time); live events: removals give [`KeyOp::Del`], hash
    /// writes give [`KeyOp::Set`] with **no fields** and no read, `hdel` is
    /// skipped (the `del` that follows an emptying `hdel` gives the Del),
    /// other events read one `HLEN` (non-zero: Set with no fields, zero:
    /// Del). The last op for a key still matches Redis, since notifications
    /// arrive in the order Redis made the changes.
    Presence,
    /// Removals only. No initial load; removals give [`KeyOp::Del`]; hash
    /// writes and `hdel` are skipped without a read (so the caller's own
    /// HSETs cost nothing); other events read one `HLEN` and give a Del when
    /// it is zero. Never returns [`KeyOp::Set`].
    Deletions,
}

/// How [`SubscribeMode::Presence`] / [`SubscribeMode::Deletions`] read a
/// keyspace event name (see [`SubscribeMode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClass {
    /// The key is gone (`del`, `expired`, `evicted`, `rename_from`,
    /// `move_from`).
    Removed,
    /// The key is a non-empty hash (`hset`, `hincrby`, `hincrbyfloat`).
    HashWritten,
    /// `hdel`: a field removed; Redis sends `del` next if the hash emptied.
    FieldRemoved,
    /// Anything else: existence must be read.
    Other,
}

impl EventClass {
    /// Classifies a keyspace event name (case-sensitive, as Redis sends
    /// them). Never fails: unknown names are [`EventClass::Other`].
    pub fn of(event: &str) -> EventClass {
        match event {
            "del" | "expired" | "evicted" | "rename_from" | "move_from" => EventClass::Removed,
            "hset" | "hincrby" | "hincrbyfloat" => EventClass::HashWritten,
            "hdel" => EventClass::FieldRemoved,
            _ => EventClass::Other,
        }
    }
}

/// Initial content plus live changes of one table.
pub struct SubscriberStateTable {
    conn: MultiplexedConnection,
    messages: PubSubStream,
    table: Table,
    pattern: String,
    channel_prefix: String,
    queued: VecDeque<KeyOp>,
    in_progress: Option<(String, String)>,
    mode: SubscribeMode,
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
    /// (docs/behavior.md f.20).
    ///
    /// Errors: [`SwssError::Redis`] (connect, PSUBSCRIBE, SCAN, HGETALL),
    /// [`SwssError::UnexpectedReply`].
    pub async fn new(connector: &DbConnector, table: &str) -> Result<Self, SwssError> {
        Self::with_mode(connector, table, SubscribeMode::Content).await
    }

    /// As [`SubscriberStateTable::new`], in the given [`SubscribeMode`]:
    /// [`SubscribeMode::Content`] is exactly `new`; [`SubscribeMode::Presence`]
    /// loads the same way; [`SubscribeMode::Deletions`] only subscribes (no
    /// SCAN, no HGETALL, nothing queued).
    ///
    /// Errors: as [`SubscriberStateTable::new`] (only connect and PSUBSCRIBE
    /// for [`SubscribeMode::Deletions`]).
    pub async fn with_mode(
        connector: &DbConnector,
        table: &str,
        mode: SubscribeMode,
    ) -> Result<Self, SwssError> {
        let sep = connector.separator();
        let table = connector.table(table);
        let channel_prefix = format!("__keyspace@{}__:{}{}", connector.id(), table.name(), sep);
        let pattern = format!("{}*", glob_escape(&channel_prefix));
        let mut pubsub = connector.pubsub().await?;
        pubsub.psubscribe(&pattern).await?;
        let mut conn = connector.connect().await?;
        let queued = if mode == SubscribeMode::Deletions {
            VecDeque::new()
        } else {
            let keys = table.keys(&mut conn).await?;
            table
                .get_many(&mut conn, &keys, LOAD_CHUNK)
                .await?
                .into_iter()
                .map(|(key, fvs)| KeyOp::Set(key, fvs))
                .collect()
        };
        Ok(SubscriberStateTable {
            conn,
            messages: pubsub.into_on_message(),
            table,
            pattern,
            channel_prefix,
            queued,
            in_progress: None,
            mode,
        })
    }

    /// The mode given at construction.
    pub fn mode(&self) -> SubscribeMode {
        self.mode
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
    ///   reported (docs/behavior.md f.9). An `hdel` that empties the hash is
    ///   skipped here because Redis follows it with a `del` event, which
    ///   gives the Del. In races (an event read after a later delete) a Del
    ///   may be reported twice; a Set always carries the content at the time
    ///   of reading, so the last op for a key matches Redis.
    /// * A key that is not a hash (`WRONGTYPE`) is reported as a bad entry
    ///   and skipped.
    ///
    /// That is [`SubscribeMode::Content`]; in [`SubscribeMode::Presence`]
    /// and [`SubscribeMode::Deletions`] live events read nothing or one
    /// `HLEN` (see [`SubscribeMode`]; a Set then carries no fields).
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
                if self.mode != SubscribeMode::Content {
                    if let Some(op) = self.probe(key, &event).await? {
                        return Ok(op);
                    }
                    continue;
                }
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
            if self.mode == SubscribeMode::Content {
                if event == "del" {
                    return Ok(KeyOp::Del(key));
                }
                self.in_progress = Some((key, event));
                continue;
            }
            match EventClass::of(&event) {
                EventClass::Removed => return Ok(KeyOp::Del(key)),
                EventClass::HashWritten if self.mode == SubscribeMode::Presence => {
                    return Ok(KeyOp::Set(key, Vec::new()));
                }
                EventClass::HashWritten | EventClass::FieldRemoved => continue,
                EventClass::Other => self.in_progress = Some((key, event)),
            }
        }
    }

    /// [`SubscribeMode::Presence`] / [`SubscribeMode::Deletions`]: one
    /// `HLEN <TABLE><sep><key>` for an inconclusive event. Clears
    /// `in_progress` once the reply is in (so a dropped future reads again).
    ///
    /// Returns `Some(Del)` when the hash is empty or missing, `Some(Set)`
    /// with no fields when it is not and the mode is Presence, `None`
    /// otherwise (also for a non-hash key, reported as a bad entry, and for
    /// an error reply, logged).
    ///
    /// Errors: [`SwssError::Redis`] when the connection failed.
    async fn probe(&mut self, key: String, event: &str) -> Result<Option<KeyOp>, SwssError> {
        let full = self.table.full_key(&key);
        let res: Result<i64, SwssError> = redis::cmd("HLEN")
            .arg(&full)
            .query_async(&mut self.conn)
            .await
            .map_err(SwssError::from);
        self.in_progress = None;
        match res {
            Ok(0) => Ok(Some(KeyOp::Del(key))),
            Ok(_) if self.mode == SubscribeMode::Presence => Ok(Some(KeyOp::Set(key, Vec::new()))),
            Ok(_) => Ok(None),
            Err(e) if e.is_connection_error() => Err(e),
            Err(e) if e.is_wrong_type() => {
                crate::bad_entry::report(self.table.db(), &full, "not a hash (WRONGTYPE)");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(table = self.table.name(), key = %key, event = %event, error = %e,
                    "cannot read changed entry; skipped");
                Ok(None)
            }
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
    fn event_classes() {
        for e in ["del", "expired", "evicted", "rename_from", "move_from"] {
            assert_eq!(EventClass::of(e), EventClass::Removed, "{e}");
        }
        for e in ["hset", "hincrby", "hincrbyfloat"] {
            assert_eq!(EventClass::of(e), EventClass::HashWritten, "{e}");
        }
        assert_eq!(EventClass::of("hdel"), EventClass::FieldRemoved);
        for e in [
            "expire",
            "persist",
            "rename_to",
            "restore",
            "set",
            "DEL",
            "",
            "hexpired",
        ] {
            assert_eq!(EventClass::of(e), EventClass::Other, "{e}");
        }
        assert_eq!(SubscribeMode::default(), SubscribeMode::Content);
    }

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
