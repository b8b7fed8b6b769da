//! [`ConsumerStateTable`]: orchagent's side of the producer/consumer protocol
//! (docs/behavior.md a.5; swss-common consumerstatetable.cpp and
//! consumer_state_table_pops.lua). Used by tests and tools to prove that what
//! [`crate::ProducerStateTable`] writes is consumed as the real orchagent
//! would consume it.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{Script, Value};

use crate::connector::DbConnector;
use crate::error::SwssError;
use crate::producer_state::NOTIFICATION_PAYLOAD;
use crate::table::{value_to_pairs, value_to_string};
use crate::FieldValues;

/// orchagent's default pops batch size (`-b`, and swss-common's
/// `TableConsumable::DEFAULT_POP_BATCH_SIZE`).
pub const DEFAULT_POP_BATCH_SIZE: usize = 128;

/// The pops script: the effects of swss-common's
/// consumer_state_table_pops.lua (our own text).
/// KEYS: `T_KEY_SET`, `T<S>`, `T_DEL_SET`. ARGV: batch size, state prefix `_`.
const LUA_POPS: &str = r#"-- sonic-syncd consumer: pop a batch of pending keys
if redis.replicate_commands ~= nil then
    redis.replicate_commands()
end
local out = {}
local popped = redis.call('SPOP', KEYS[1], tonumber(ARGV[1]))
for i = 1, #popped do
    local key = popped[i]
    local target = KEYS[2] .. key
    local state = ARGV[2] .. target
    if redis.call('SREM', KEYS[3], key) == 1 then
        redis.call('DEL', target)
    end
    local fv = redis.call('HGETALL', state)
    out[#out + 1] = {key, fv}
    for j = 1, #fv, 2 do
        redis.call('HSET', target, fv[j], fv[j + 1])
    end
    redis.call('DEL', state)
end
return out
"#;

/// A consumed operation: SET when the popped state hash had fields, DEL when
/// it was empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `SET`: apply these fields.
    Set,
    /// `DEL`: remove the key.
    Del,
}

impl Op {
    /// `"SET"` or `"DEL"` as swss-common spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Set => crate::SET_COMMAND,
            Op::Del => crate::DEL_COMMAND,
        }
    }
}

/// One popped entry (swss-common `KeyOpFieldsValuesTuple`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOpFieldValues {
    /// The key without table prefix, e.g. `Ethernet8:10.0.0.2`.
    pub key: String,
    /// [`Op::Set`] if `fvs` is non-empty, else [`Op::Del`].
    pub op: Op,
    /// The fields in state-hash order (empty for DEL).
    pub fvs: FieldValues,
}

/// Consumer of one producer/consumer table, as orchagent's
/// `swss::ConsumerStateTable`.
pub struct ConsumerStateTable {
    conn: MultiplexedConnection,
    messages: PubSubStream,
    script: Script,
    key_set: String,
    del_set: String,
    table_prefix: String,
    channel: String,
    batch: usize,
    notifications: u64,
    unseen: u64,
    initial_pending: u64,
    barrier_seq: u64,
}

// ===== impl ConsumerStateTable =====

impl ConsumerStateTable {
    /// Connects, loads the pops script, `SUBSCRIBE T_CHANNEL@N` on a
    /// dedicated connection, then reads `SCARD T_KEY_SET` (keys already
    /// pending, see [`ConsumerStateTable::initial_pending`]). Subscribing
    /// before the SCARD means nothing is missed (the C++ uses
    /// WATCH/MULTI for the same purpose). `batch` is the SPOP count (0 is
    /// taken as 1).
    ///
    /// Errors: [`SwssError::Redis`] (connect, SCRIPT LOAD, SUBSCRIBE).
    pub async fn new(
        connector: &DbConnector,
        table: &str,
        batch: usize,
    ) -> Result<Self, SwssError> {
        let mut conn = connector.connect().await?;
        let script = Script::new(LUA_POPS);
        script.load_async(&mut conn).await?;
        let channel = format!("{table}_CHANNEL@{}", connector.id());
        let mut pubsub = connector.pubsub().await?;
        pubsub.subscribe(&channel).await?;
        let key_set = format!("{table}_KEY_SET");
        let initial: u64 = redis::cmd("SCARD")
            .arg(&key_set)
            .query_async(&mut conn)
            .await?;
        Ok(ConsumerStateTable {
            conn,
            messages: pubsub.into_on_message(),
            script,
            key_set,
            del_set: format!("{table}_DEL_SET"),
            table_prefix: format!("{table}{}", connector.separator()),
            channel,
            batch: batch.max(1),
            notifications: 0,
            unseen: 0,
            initial_pending: initial,
            barrier_seq: 0,
        })
    }

    /// Pops up to `batch` pending keys: `EVALSHA <pops> 3 T_KEY_SET T<S>
    /// T_DEL_SET <batch> _`. Per key (in SPOP order, i.e. random): a pending
    /// DEL wipes `T<S>key`, the state hash's fields are HSET into `T<S>key`,
    /// the state hash is deleted. Empty result when nothing is pending.
    /// The script is reloaded automatically on `NOSCRIPT`.
    ///
    /// Errors: [`SwssError::Redis`], [`SwssError::UnexpectedReply`].
    pub async fn pops(&mut self) -> Result<Vec<KeyOpFieldValues>, SwssError> {
        let reply: Value = self
            .script
            .key(&self.key_set)
            .key(&self.table_prefix)
            .key(&self.del_set)
            .arg(self.batch)
            .arg("_")
            .invoke_async(&mut self.conn)
            .await?;
        parse_pops(&reply)
    }

    /// Pops until nothing is pending and merges the results per key the way
    /// orchagent's Consumer does (orch.cpp `ConsumerBase::addToSyncInternal`,
    /// see [`merge_task`]). Each value is `[Del]`, `[Set]` or `[Del, Set]`.
    ///
    /// Errors: as [`ConsumerStateTable::pops`].
    pub async fn drain(&mut self) -> Result<BTreeMap<String, Vec<KeyOpFieldValues>>, SwssError> {
        let mut out = BTreeMap::new();
        loop {
            let popped = self.pops().await?;
            if popped.is_empty() {
                return Ok(out);
            }
            for entry in popped {
                merge_task(&mut out, entry);
            }
        }
    }

    /// Waits up to `timeout` for a `G` message on `T_CHANNEL@N`. Returns true
    /// at once if one arrived since the last call, false on timeout.
    ///
    /// Errors: [`SwssError::SubscriptionClosed`] if the subscription ended.
    pub async fn wait_for_notification(&mut self, timeout: Duration) -> Result<bool, SwssError> {
        self.take_buffered()?;
        if self.unseen > 0 {
            self.unseen = 0;
            return Ok(true);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.messages.next()).await {
                Err(_) => return Ok(false),
                Ok(None) => return Err(self.closed()),
                Ok(Some(msg)) => {
                    if self.count(&msg) {
                        self.unseen = 0;
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Makes [`ConsumerStateTable::notifications`] exact: publishes a unique
    /// marker on `T_CHANNEL@N` and reads messages until it comes back. Every
    /// `G` published before this call (by any client) has then been
    /// counted, since Redis delivers a channel's messages in order. Returns
    /// the count.
    ///
    /// Errors: [`SwssError::Redis`], [`SwssError::SubscriptionClosed`].
    pub async fn sync_notifications(&mut self) -> Result<u64, SwssError> {
        self.barrier_seq += 1;
        let marker = format!(
            "sonic-syncd-barrier-{}-{}",
            std::process::id(),
            self.barrier_seq
        );
        let _: Value = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(&marker)
            .query_async(&mut self.conn)
            .await?;
        loop {
            match self.messages.next().await {
                None => return Err(self.closed()),
                Some(msg) => {
                    if msg.get_payload_bytes() == marker.as_bytes() {
                        return Ok(self.notifications);
                    }
                    self.count(&msg);
                }
            }
        }
    }

    /// `G` messages received so far (including ones buffered but not yet
    /// looked at). Use [`ConsumerStateTable::sync_notifications`] for an
    /// exact count.
    pub fn notifications(&mut self) -> u64 {
        // A closed subscription shows up in the next wait/sync call.
        let _ = self.take_buffered();
        self.notifications
    }

    /// `SCARD T_KEY_SET` at construction: keys pending before we subscribed.
    pub fn initial_pending(&self) -> u64 {
        self.initial_pending
    }

    /// `T_CHANNEL@N`.
    pub fn channel_name(&self) -> &str {
        &self.channel
    }

    /// Counts messages already received without waiting.
    fn take_buffered(&mut self) -> Result<(), SwssError> {
        loop {
            match self.messages.next().now_or_never() {
                None => return Ok(()),
                Some(None) => return Err(self.closed()),
                Some(Some(msg)) => {
                    self.count(&msg);
                }
            }
        }
    }

    /// Counts one message; true if it was a `G`.
    fn count(&mut self, msg: &redis::Msg) -> bool {
        if msg.get_payload_bytes() == NOTIFICATION_PAYLOAD.as_bytes() {
            self.notifications += 1;
            self.unseen += 1;
            true
        } else {
            false
        }
    }

    fn closed(&self) -> SwssError {
        SwssError::SubscriptionClosed(format!("SUBSCRIBE {}", self.channel))
    }
}

/// Decodes the reply of the pops script ([`ConsumerStateTable::pops`]).
///
/// Shape: nil (nothing popped) or an array of 2-element arrays
/// `[key, [f1, v1, f2, v2, ...]]`. The key is any string-like reply
/// (bulk/simple/verbatim string, `OK`, integer; bulk text is read as lossy
/// UTF-8); the fields are an `HGETALL`-style reply as read by
/// [`crate::table::value_to_pairs`] (flat array of even length, RESP3 map,
/// or nil). Non-empty fields give [`Op::Set`], empty ones [`Op::Del`].
/// Entries keep the reply's order.
///
/// Errors: [`SwssError::UnexpectedReply`] for any other shape (a non-array
/// reply, an entry that is not a pair, a key or field that is not a
/// string, an odd-length field array).
pub fn parse_pops(reply: &Value) -> Result<Vec<KeyOpFieldValues>, SwssError> {
    let context = "consumer pops";
    let items = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(SwssError::unexpected(context, other)),
    };
    items
        .iter()
        .map(|item| match item {
            Value::Array(pair) if pair.len() == 2 => {
                let key = value_to_string(&pair[0])
                    .ok_or_else(|| SwssError::unexpected(context, item))?;
                let fvs = value_to_pairs(&pair[1], context)?;
                let op = if fvs.is_empty() { Op::Del } else { Op::Set };
                Ok(KeyOpFieldValues { key, op, fvs })
            }
            other => Err(SwssError::unexpected(context, other)),
        })
        .collect()
}

/// Adds one popped task to a per-key pending map as orchagent's Consumer
/// does (orch.cpp `ConsumerBase::addToSyncInternal`): a DEL replaces
/// everything pending for the key; a SET after a pending SET merges fields
/// (a field already pending takes the new value in place, new fields are
/// appended); a SET after a pending DEL is kept as DEL-then-SET.
pub fn merge_task(pending: &mut BTreeMap<String, Vec<KeyOpFieldValues>>, task: KeyOpFieldValues) {
    let entry = pending.entry(task.key.clone()).or_default();
    match task.op {
        Op::Del => {
            entry.clear();
            entry.push(task);
        }
        Op::Set => match entry.last_mut() {
            Some(last) if last.op == Op::Set => {
                for (f, v) in task.fvs {
                    match last.fvs.iter_mut().find(|(lf, _)| *lf == f) {
                        Some(slot) => slot.1 = v,
                        None => last.fvs.push((f, v)),
                    }
                }
            }
            _ => entry.push(task),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, fvs: &[(&str, &str)]) -> KeyOpFieldValues {
        KeyOpFieldValues {
            key: key.into(),
            op: Op::Set,
            fvs: fvs
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn del(key: &str) -> KeyOpFieldValues {
        KeyOpFieldValues {
            key: key.into(),
            op: Op::Del,
            fvs: vec![],
        }
    }

    #[test]
    fn merge_follows_orchagent() {
        let mut m = BTreeMap::new();
        merge_task(&mut m, set("a", &[("x", "1"), ("y", "1")]));
        merge_task(&mut m, set("a", &[("y", "2"), ("z", "2")]));
        assert_eq!(
            m["a"],
            vec![set("a", &[("x", "1"), ("y", "2"), ("z", "2")])]
        );
        merge_task(&mut m, del("a"));
        assert_eq!(m["a"], vec![del("a")]);
        merge_task(&mut m, set("a", &[("x", "3")]));
        merge_task(&mut m, set("a", &[("w", "3")]));
        assert_eq!(m["a"], vec![del("a"), set("a", &[("x", "3"), ("w", "3")])]);
    }

    #[test]
    fn parse_pops_reply() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![
            Value::Array(vec![b("k1"), Value::Array(vec![b("f"), b("v")])]),
            Value::Array(vec![b("k2"), Value::Array(vec![])]),
        ]);
        let got = parse_pops(&reply).unwrap();
        assert_eq!(got, vec![set("k1", &[("f", "v")]), del("k2")]);
        assert!(parse_pops(&Value::Array(vec![b("x")])).is_err());
    }
}
