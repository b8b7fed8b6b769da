//! [`SubscriberStateTable`]: a change feed of one table through Redis keyspace
//! notifications (docs/behavior.md a.7; swss-common subscriberstatetable.cpp),
//! and [`MultiTableSubscriber`]: the same for several tables of one database
//! on one pubsub connection, with one pattern for the whole database or one
//! per table ([`PatternScope`]). Both run the same code.
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

/// Which `PSUBSCRIBE` patterns a [`MultiTableSubscriber`] uses.
///
/// Redis matches every keyspace notification (`notify-keyspace-events
/// AKE`: two per written key, one `__keyspace@<db>__:<key>`, one
/// `__keyevent@<db>__:<event>`) of every database against every distinct
/// pattern of every client, whether it matches or not. Measured on the
/// bench VM (redis 7.0.15, 100k pipelined HSETs into another DB, idle
/// subscribers): about 15 ns of Redis CPU per pattern and notification,
/// 0.03 us per pattern per HSET; neighsyncd's six per-table CONFIG_DB and
/// LOGGER patterns added about 0.15 us to every NEIGH_TABLE key written
/// (8 % of the raw cost). Fewer patterns make every write by anyone
/// cheaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternScope {
    /// One pattern for the whole database, `__keyspace@<id>__:*`. Events of
    /// keys outside the followed tables also reach the client and are
    /// dropped there (one prefix comparison per table). For quiet databases
    /// such as CONFIG_DB.
    Database,
    /// One pattern per table, `__keyspace@<id>__:<TABLE><sep>*` (glob
    /// characters of the name escaped): only the tables' events reach the
    /// client. For busy databases (APPL_DB, STATE_DB), where the other
    /// tables' traffic would cost more than the patterns.
    PerTable,
}

/// One table a [`Feed`] follows.
struct Followed {
    table: Table,
    /// `<TABLE><sep>`: what a key of the table starts with.
    prefix: String,
    mode: SubscribeMode,
}

/// The implementation shared by [`SubscriberStateTable`] (one table) and
/// [`MultiTableSubscriber`] (several tables of one database): one pubsub
/// connection with its patterns, one connection for the reads, the queued
/// initial load, and the event being read. Ops carry the index of their
/// table in `tables`.
struct Feed {
    conn: MultiplexedConnection,
    messages: PubSubStream,
    patterns: Vec<String>,
    /// `__keyspace@<id>__:`, stripped from every channel.
    keyspace_prefix: String,
    tables: Vec<Followed>,
    queued: VecDeque<(usize, KeyOp)>,
    /// (table index, key, event) of the event whose read is under way.
    in_progress: Option<(usize, String, String)>,
}

impl Feed {
    /// Subscribes, then loads; see [`MultiTableSubscriber::new`].
    ///
    /// Errors: [`SwssError::InvalidArgument`] for no table or overlapping
    /// tables (checked before connecting), else as
    /// [`SubscriberStateTable::new`].
    async fn open(
        connector: &DbConnector,
        tables: &[(&str, SubscribeMode)],
        scope: PatternScope,
    ) -> Result<Feed, SwssError> {
        let sep = connector.separator();
        let followed: Vec<Followed> = tables
            .iter()
            .map(|&(name, mode)| Followed {
                table: connector.table(name),
                prefix: format!("{name}{sep}"),
                mode,
            })
            .collect();
        check_tables(&followed)?;
        let keyspace_prefix = format!("__keyspace@{}__:", connector.id());
        let patterns: Vec<String> = match scope {
            PatternScope::Database => vec![format!("{}*", glob_escape(&keyspace_prefix))],
            PatternScope::PerTable => followed
                .iter()
                .map(|f| {
                    format!(
                        "{}{}*",
                        glob_escape(&keyspace_prefix),
                        glob_escape(&f.prefix)
                    )
                })
                .collect(),
        };
        let mut pubsub = connector.pubsub().await?;
        // One command: Redis registers every pattern before it replies.
        pubsub.psubscribe(&patterns).await?;
        let mut conn = connector.connect().await?;
        let mut queued = VecDeque::new();
        for (i, f) in followed.iter().enumerate() {
            if f.mode == SubscribeMode::Deletions {
                continue;
            }
            let keys = f.table.keys(&mut conn).await?;
            let entries = f.table.get_many(&mut conn, &keys, LOAD_CHUNK).await?;
            queued.extend(
                entries
                    .into_iter()
                    .map(|(key, fvs)| (i, KeyOp::Set(key, fvs))),
            );
        }
        Ok(Feed {
            conn,
            messages: pubsub.into_on_message(),
            patterns,
            keyspace_prefix,
            tables: followed,
            queued,
            in_progress: None,
        })
    }

    /// The next change and the index of its table; see
    /// [`SubscriberStateTable::next`] (same rules, per table mode).
    async fn next(&mut self) -> Result<(usize, KeyOp), SwssError> {
        loop {
            if let Some(op) = self.queued.pop_front() {
                return Ok(op);
            }
            if let Some((idx, key, event)) = self.in_progress.clone() {
                if let Some(op) = self.read(idx, key, &event).await? {
                    return Ok((idx, op));
                }
                continue;
            }
            let Some(msg) = self.messages.next().await else {
                return Err(SwssError::SubscriptionClosed(format!(
                    "PSUBSCRIBE {}",
                    self.patterns.join(" ")
                )));
            };
            let channel = match msg.get_channel::<Vec<u8>>() {
                Ok(c) => c,
                Err(_) => continue,
            };
            let Some((idx, key, event)) = self.route(&channel, msg.get_payload_bytes()) else {
                continue;
            };
            let mode = self
                .tables
                .get(idx)
                .map_or(SubscribeMode::Content, |f| f.mode);
            if mode == SubscribeMode::Content {
                if event == "del" {
                    return Ok((idx, KeyOp::Del(key)));
                }
                self.in_progress = Some((idx, key, event));
                continue;
            }
            match EventClass::of(&event) {
                EventClass::Removed => return Ok((idx, KeyOp::Del(key))),
                EventClass::HashWritten if mode == SubscribeMode::Presence => {
                    return Ok((idx, KeyOp::Set(key, Vec::new())));
                }
                EventClass::HashWritten | EventClass::FieldRemoved => continue,
                EventClass::Other => self.in_progress = Some((idx, key, event)),
            }
        }
    }

    /// The table, key and event of one notification: the channel is
    /// `__keyspace@<id>__:<TABLE><sep><key>` (read as lossy UTF-8 by
    /// [`parse_keyspace_event`]). `None` for a key of no followed table
    /// (every other key of the DB with [`PatternScope::Database`]).
    fn route(&self, channel: &[u8], payload: &[u8]) -> Option<(usize, String, String)> {
        let (mut key, event) = parse_keyspace_event(channel, payload, &self.keyspace_prefix)?;
        let Some(idx) = self.tables.iter().position(|f| key.starts_with(&f.prefix)) else {
            tracing::trace!(key = %key, "keyspace event outside the tables; ignored");
            return None;
        };
        let cut = self.tables.get(idx).map_or(0, |f| f.prefix.len());
        key.replace_range(..cut, "");
        Some((idx, key, event))
    }

    /// Reads the entry behind a live event (`in_progress`), cleared once the
    /// reply is in, so a dropped future reads again. [`SubscribeMode::Content`]:
    /// `HGETALL`, a non-empty hash gives `Set` with the content, an empty
    /// one `Del` (nothing for `hdel`, whose `del` follows). Otherwise one
    /// `HLEN`: zero gives `Del`, non-zero a field-less `Set` in
    /// [`SubscribeMode::Presence`] and nothing in [`SubscribeMode::Deletions`].
    /// A non-hash key is reported as a bad entry and gives nothing; another
    /// error reply is logged and gives nothing.
    ///
    /// Errors: [`SwssError::Redis`] when the connection failed.
    async fn read(
        &mut self,
        idx: usize,
        key: String,
        event: &str,
    ) -> Result<Option<KeyOp>, SwssError> {
        let Some(f) = self.tables.get(idx) else {
            self.in_progress = None;
            return Ok(None);
        };
        let full = f.table.full_key(&key);
        let res = if f.mode == SubscribeMode::Content {
            hgetall(&mut self.conn, &full).await.map(|fvs| {
                if !fvs.is_empty() {
                    Some(KeyOp::Set(key.clone(), cut_fields(fvs)))
                } else if event == "hdel" {
                    None
                } else {
                    Some(KeyOp::Del(key.clone()))
                }
            })
        } else {
            redis::cmd("HLEN")
                .arg(&full)
                .query_async::<i64>(&mut self.conn)
                .await
                .map_err(SwssError::from)
                .map(|len| match len {
                    0 => Some(KeyOp::Del(key.clone())),
                    _ if f.mode == SubscribeMode::Presence => {
                        Some(KeyOp::Set(key.clone(), Vec::new()))
                    }
                    _ => None,
                })
        };
        self.in_progress = None;
        match res {
            Ok(op) => Ok(op),
            Err(e) if e.is_connection_error() => Err(e),
            Err(e) if e.is_wrong_type() => {
                crate::bad_entry::report(f.table.db(), &full, "not a hash (WRONGTYPE)");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(table = f.table.name(), key = %key, event = %event, error = %e,
                    "cannot read changed entry; skipped");
                Ok(None)
            }
        }
    }
}

/// Rejects an empty table list and tables of which one's `<TABLE><sep>`
/// starts another's (the same name twice, or a name containing the
/// separator): a key of both would be ambiguous.
///
/// Errors: [`SwssError::InvalidArgument`].
fn check_tables(tables: &[Followed]) -> Result<(), SwssError> {
    if tables.is_empty() {
        return Err(SwssError::InvalidArgument(
            "subscription to no table".to_string(),
        ));
    }
    for (i, a) in tables.iter().enumerate() {
        for b in tables.iter().skip(i + 1) {
            if a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix) {
                return Err(SwssError::InvalidArgument(format!(
                    "tables {:?} and {:?} overlap in one subscription",
                    a.table.name(),
                    b.table.name()
                )));
            }
        }
    }
    Ok(())
}

// ===== SubscriberStateTable =====

/// Initial content plus live changes of one table.
pub struct SubscriberStateTable {
    feed: Feed,
}

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
    /// Several tables of one database are cheaper for Redis on one
    /// [`MultiTableSubscriber`] (see [`PatternScope`]).
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
        let feed = Feed::open(connector, &[(table, mode)], PatternScope::PerTable).await?;
        Ok(SubscriberStateTable { feed })
    }

    /// The mode given at construction.
    pub fn mode(&self) -> SubscribeMode {
        self.followed().mode
    }

    /// The table being followed.
    pub fn table(&self) -> &Table {
        &self.followed().table
    }

    fn followed(&self) -> &Followed {
        // Feed::open never returns a feed without its one table.
        &self.feed.tables[0]
    }

    /// Initial entries not yet returned by [`SubscriberStateTable::next`].
    pub fn queued(&self) -> usize {
        self.feed.queued.len()
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
        self.feed.next().await.map(|(_, op)| op)
    }
}

// ===== MultiTableSubscriber =====

/// Initial content plus live changes of several tables of one database, on
/// one pubsub connection with one pattern ([`PatternScope::Database`]) or
/// one per table ([`PatternScope::PerTable`]), and one connection for the
/// reads. Each table has its own [`SubscribeMode`]; per table, the ops are
/// exactly those a [`SubscriberStateTable`] of that table and mode gives
/// (same code).
pub struct MultiTableSubscriber {
    feed: Feed,
}

impl MultiTableSubscriber {
    /// Subscribes to `tables` (name and mode each) of the connector's DB,
    /// then loads them.
    ///
    /// Order: one `PSUBSCRIBE` of every pattern of `scope` on a dedicated
    /// connection, then for each table in order that is not
    /// [`SubscribeMode::Deletions`], `SCAN MATCH <TABLE><sep>*` and
    /// pipelined `HGETALL` on a second connection, its non-empty entries
    /// queued as [`KeyOp::Set`] (as [`SubscriberStateTable::new`]: a change
    /// during the load is seen, possibly twice, never lost; a non-hash key
    /// is reported as a bad entry and left out).
    ///
    /// Errors: [`SwssError::InvalidArgument`] for an empty `tables`, or two
    /// tables of which one's `<TABLE><sep>` starts the other's (a name
    /// twice; checked before connecting); [`SwssError::Redis`] (connect,
    /// PSUBSCRIBE, SCAN, HGETALL), [`SwssError::UnexpectedReply`].
    pub async fn new(
        connector: &DbConnector,
        tables: &[(&str, SubscribeMode)],
        scope: PatternScope,
    ) -> Result<Self, SwssError> {
        let feed = Feed::open(connector, tables, scope).await?;
        Ok(MultiTableSubscriber { feed })
    }

    /// The `PSUBSCRIBE` patterns in force, e.g. `["__keyspace@4__:*"]`.
    pub fn patterns(&self) -> &[String] {
        &self.feed.patterns
    }

    /// The tables followed with their modes, in the order given.
    pub fn tables(&self) -> impl Iterator<Item = (&Table, SubscribeMode)> {
        self.feed.tables.iter().map(|f| (&f.table, f.mode))
    }

    /// Initial entries (of all tables) not yet returned by
    /// [`MultiTableSubscriber::next`].
    pub fn queued(&self) -> usize {
        self.feed.queued.len()
    }

    /// Takes every queued initial entry at once, in load order (tables in
    /// the order given), as `(table name, Set)`; no I/O. Afterwards
    /// [`MultiTableSubscriber::next`] gives live changes only.
    pub fn drain_queued(&mut self) -> Vec<(String, KeyOp)> {
        let tables = &self.feed.tables;
        self.feed
            .queued
            .drain(..)
            .map(|(idx, op)| (table_name(tables, idx), op))
            .collect()
    }

    /// The next change as `(table name, op)`: first the queued initial
    /// entries, then live events, read per the table's mode exactly as
    /// [`SubscriberStateTable::next`] does (bad entries reported and
    /// skipped, cancel-safe). Events of keys of other tables (which reach
    /// the client with [`PatternScope::Database`]) are dropped without a
    /// read.
    ///
    /// Errors: as [`SubscriberStateTable::next`]
    /// ([`SwssError::SubscriptionClosed`], [`SwssError::Redis`]; rebuild the
    /// subscriber after either).
    pub async fn next(&mut self) -> Result<(String, KeyOp), SwssError> {
        let (idx, op) = self.feed.next().await?;
        Ok((table_name(&self.feed.tables, idx), op))
    }
}

/// The name of `tables[idx]` (empty for an index out of range, which
/// [`Feed`] never produces).
fn table_name(tables: &[Followed], idx: usize) -> String {
    tables
        .get(idx)
        .map_or_else(String::new, |f| f.table.name().to_string())
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
