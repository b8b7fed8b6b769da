//! [`ProducerStateTable`]: the writer side of SONiC's producer/consumer
//! protocol (BEHAVIOR.md a.4; swss-common producerstatetable.cpp).
//!
//! Redis layout for table `T` in a DB with separator `S` and id `N`:
//! * `T_KEY_SET`: SET of pending keys (no table prefix);
//! * `T_DEL_SET`: SET of pending keys whose old content must be wiped first;
//! * `_T<S>key`: HASH of the pending fields of one key (the "state hash");
//! * `T_CHANNEL@N`: channel that gets the payload `G` whenever a key becomes
//!   pending (was not already in `T_KEY_SET`).
//!
//! Every operation is one `EVALSHA` of one of our Lua scripts (own text, the
//! effects and argument layouts of swss-common's; the SHA1 differs, which no
//! consumer looks at). The scripts are the same for every table (all names
//! are passed in KEYS/ARGV), so loading them once per Redis serves all
//! producers.
//!
//! Batching (BEHAVIOR.md f.3): the writer queues operations into a
//! [`redis::Pipeline`] with the `queue_*` methods and sends them with
//! [`ProducerStateTable::flush`], one round trip for the whole burst.
//!
//! Batched set: swss-common's batched script sends one `HSET` per field
//! pair; ours sends one multi-pair `HSET` per key. The data Redis holds is
//! byte-identical (the same hash with its fields in the same order, and the
//! same `SADD` -> `HSET` -> `PUBLISH` order), and so is what every consumer
//! reads. What differs is internal to Redis: two `hset` keyspace
//! notifications on a `_T<S>key` state hash become one (no SONiC component
//! subscribes to state hashes) and `INFO commandstats` counts fewer calls.
//! Measured with `bench cold100k`, alternating the two binaries: Redis CPU
//! per neighbor 8.1 -> 6.4 us (mean of 3), cold sync 1.02 -> 0.85 s.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Pipeline, Script, ServerErrorKind, Value};

use crate::config::DbLocation;
use crate::error::SwssError;
use crate::table::scan_prefix;

/// The notification payload published on `T_CHANNEL@N`.
pub const NOTIFICATION_PAYLOAD: &str = "G";

/// Most keys sent in one batched `EVALSHA`; longer batches are split into
/// several EVALSHAs (each PUBLISHes at most once). Bounds the time one script
/// blocks Redis.
pub const MAX_KEYS_PER_SCRIPT: usize = 1000;

// ----- Lua scripts (our own text; effects as BEHAVIOR.md a.4) -----

/// Single set. KEYS: channel, key set, state hash repeated n times.
/// ARGV: payload, key, f1, v1, ..., fn, vn.
const LUA_SET: &str = r#"-- sonic-syncd producer: set one key
local was_new = redis.call('SADD', KEYS[2], ARGV[2])
local pairs_n = #KEYS - 2
for i = 1, pairs_n do
    redis.call('HSET', KEYS[2 + i], ARGV[1 + 2 * i], ARGV[2 + 2 * i])
end
if was_new > 0 then
    redis.call('PUBLISH', KEYS[1], ARGV[1])
end
"#;

/// Single del. KEYS: channel, key set, state hash, del set.
/// ARGV: payload, key, '', '' (the last two unused, as in swss-common).
const LUA_DEL: &str = r#"-- sonic-syncd producer: delete one key
local was_new = redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('DEL', KEYS[3])
if was_new > 0 then
    redis.call('PUBLISH', KEYS[1], ARGV[1])
end
"#;

/// Batched set. KEYS: channel, key set, state hash prefix `_T<S>`, key1..keym.
/// ARGV: payload, then per key: pair count c, f1, v1, ..., fc, vc.
const LUA_BATCH_SET: &str = r#"-- sonic-syncd producer: set a batch of keys
local new_keys = 0
local a = 2
for k = 4, #KEYS do
    local key = KEYS[k]
    new_keys = new_keys + redis.call('SADD', KEYS[2], key)
    local state = KEYS[3] .. key
    local count = tonumber(ARGV[a])
    a = a + 1
    if count > 0 then
        -- one multi-pair HSET per key (same hash, same field order as one
        -- HSET per pair; see the module docs, "Batched set")
        redis.call('HSET', state, unpack(ARGV, a, a + 2 * count - 1))
        a = a + 2 * count
    end
end
if new_keys > 0 then
    redis.call('PUBLISH', KEYS[1], ARGV[1])
end
"#;

/// Batched del. KEYS: channel, key set, del set, state hash prefix, key1..keym.
/// ARGV: payload.
const LUA_BATCH_DEL: &str = r#"-- sonic-syncd producer: delete a batch of keys
local new_keys = 0
for k = 5, #KEYS do
    local key = KEYS[k]
    new_keys = new_keys + redis.call('SADD', KEYS[2], key)
    redis.call('SADD', KEYS[3], key)
    redis.call('DEL', KEYS[4] .. key)
end
if new_keys > 0 then
    redis.call('PUBLISH', KEYS[1], ARGV[1])
end
"#;

/// The four producer scripts with their SHA1s.
struct Scripts {
    set: Script,
    del: Script,
    batch_set: Script,
    batch_del: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    set: Script::new(LUA_SET),
    del: Script::new(LUA_DEL),
    batch_set: Script::new(LUA_BATCH_SET),
    batch_del: Script::new(LUA_BATCH_DEL),
});

const SCRIPT_SOURCES: [&str; 4] = [LUA_SET, LUA_DEL, LUA_BATCH_SET, LUA_BATCH_DEL];

/// Writer of one APPL_DB-style table through the producer/consumer protocol.
///
/// Holds only names; every call takes the connection (any
/// [`redis::aio::ConnectionLike`], normally a shared
/// [`redis::aio::MultiplexedConnection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateTable {
    table: String,
    separator: char,
    db_id: u32,
    key_set: String,
    del_set: String,
    state_prefix: String,
    channel: String,
}

// ===== impl ProducerStateTable =====

impl ProducerStateTable {
    /// A producer for table `table` (e.g. `NEIGH_TABLE`) in the DB at `loc`
    /// (its separator and id name the state hashes and the channel).
    pub fn new(table: &str, loc: &DbLocation) -> Self {
        Self::with_names(table, loc.separator, loc.id)
    }

    /// As [`ProducerStateTable::new`] from the separator and DB id directly.
    pub fn with_names(table: &str, separator: char, db_id: u32) -> Self {
        ProducerStateTable {
            table: table.to_string(),
            separator,
            db_id,
            key_set: format!("{table}_KEY_SET"),
            del_set: format!("{table}_DEL_SET"),
            state_prefix: format!("_{table}{separator}"),
            channel: format!("{table}_CHANNEL@{db_id}"),
        }
    }

    /// The table name, e.g. `NEIGH_TABLE`.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The separator, e.g. `:`.
    pub fn separator(&self) -> char {
        self.separator
    }

    /// The DB id, e.g. 0.
    pub fn db_id(&self) -> u32 {
        self.db_id
    }

    /// `T_KEY_SET`.
    pub fn key_set_name(&self) -> &str {
        &self.key_set
    }

    /// `T_DEL_SET`.
    pub fn del_set_name(&self) -> &str {
        &self.del_set
    }

    /// `T_CHANNEL@N`, e.g. `NEIGH_TABLE_CHANNEL@0`.
    pub fn channel_name(&self) -> &str {
        &self.channel
    }

    /// The state hash of `key`: `_T<S>key`, e.g. `_NEIGH_TABLE:Ethernet8:10.0.0.2`.
    pub fn state_key(&self, key: &str) -> String {
        format!("{}{}", self.state_prefix, key)
    }

    /// `SCRIPT LOAD` of the four producer scripts (the same for every
    /// table). Needed once per Redis server lifetime before the first flush;
    /// [`ProducerStateTable::flush`] also reloads them on `NOSCRIPT`.
    ///
    /// Errors: [`SwssError::Redis`]; [`SwssError::UnexpectedReply`] if Redis
    /// reports a SHA1 other than the one computed locally.
    pub async fn load_scripts<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<(), SwssError> {
        load_producer_scripts(conn).await
    }

    /// Queues a single set: `EVALSHA <set> <n+2> T_CHANNEL@N T_KEY_SET
    /// _T<S>key×n G key f1 v1 ... fn vn`. Effects when run: `SADD T_KEY_SET
    /// key`, `HSET _T<S>key fi vi` per pair in order, `PUBLISH T_CHANNEL@N G`
    /// if the key was not pending. With no pairs the consumer will see the
    /// key as a DEL. Source: `ProducerStateTable::set`.
    pub fn queue_set<F, V>(&self, pipe: &mut Pipeline, key: &str, fvs: &[(F, V)])
    where
        F: AsRef<str>,
        V: AsRef<str>,
    {
        let state = self.state_key(key);
        let cmd = pipe
            .cmd("EVALSHA")
            .arg(SCRIPTS.set.get_hash())
            .arg(fvs.len() + 2)
            .arg(&self.channel)
            .arg(&self.key_set);
        for _ in fvs {
            cmd.arg(&state);
        }
        cmd.arg(NOTIFICATION_PAYLOAD).arg(key);
        for (f, v) in fvs {
            cmd.arg(f.as_ref()).arg(v.as_ref());
        }
    }

    /// Queues a single del: `EVALSHA <del> 4 T_CHANNEL@N T_KEY_SET _T<S>key
    /// T_DEL_SET G key '' ''`. Effects: `SADD T_KEY_SET key`, `SADD T_DEL_SET
    /// key`, `DEL _T<S>key`, `PUBLISH` if the key was not pending. Source:
    /// `ProducerStateTable::del`.
    pub fn queue_del(&self, pipe: &mut Pipeline, key: &str) {
        pipe.cmd("EVALSHA")
            .arg(SCRIPTS.del.get_hash())
            .arg(4)
            .arg(&self.channel)
            .arg(&self.key_set)
            .arg(self.state_key(key))
            .arg(&self.del_set)
            .arg(NOTIFICATION_PAYLOAD)
            .arg(key)
            .arg("''")
            .arg("''");
    }

    /// Queues a batched set: `EVALSHA <bset> <m+3> T_CHANNEL@N T_KEY_SET
    /// _T<S> key1..keym G c1 f v ... cm f v ...`. Effects per key in order:
    /// `SADD T_KEY_SET key`, then `HSET _T<S>key f v` per pair; then one
    /// `PUBLISH` if any key was newly pending. Nothing is queued for an empty
    /// batch; batches above [`MAX_KEYS_PER_SCRIPT`] keys become several
    /// EVALSHAs. The same key may appear twice (applied in order). Source:
    /// `ProducerStateTable::set(const std::vector<KeyOpFieldsValuesTuple>&)`.
    pub fn queue_batch_set<K, F, V>(&self, pipe: &mut Pipeline, entries: &[(K, Vec<(F, V)>)])
    where
        K: AsRef<str>,
        F: AsRef<str>,
        V: AsRef<str>,
    {
        for chunk in entries.chunks(MAX_KEYS_PER_SCRIPT) {
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(SCRIPTS.batch_set.get_hash())
                .arg(chunk.len() + 3)
                .arg(&self.channel)
                .arg(&self.key_set)
                .arg(&self.state_prefix);
            for (k, _) in chunk {
                cmd.arg(k.as_ref());
            }
            cmd.arg(NOTIFICATION_PAYLOAD);
            for (_, fvs) in chunk {
                cmd.arg(fvs.len());
                for (f, v) in fvs {
                    cmd.arg(f.as_ref()).arg(v.as_ref());
                }
            }
        }
    }

    /// Queues a batched del: `EVALSHA <bdel> <m+4> T_CHANNEL@N T_KEY_SET
    /// T_DEL_SET _T<S> key1..keym G`. Effects per key: `SADD T_KEY_SET`,
    /// `SADD T_DEL_SET`, `DEL _T<S>key`; then one `PUBLISH` if any key was
    /// newly pending. Empty: nothing queued; long batches split as in
    /// [`ProducerStateTable::queue_batch_set`]. Source:
    /// `ProducerStateTable::del(const std::vector<std::string>&)`.
    pub fn queue_batch_del<K: AsRef<str>>(&self, pipe: &mut Pipeline, keys: &[K]) {
        for chunk in keys.chunks(MAX_KEYS_PER_SCRIPT) {
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(SCRIPTS.batch_del.get_hash())
                .arg(chunk.len() + 4)
                .arg(&self.channel)
                .arg(&self.key_set)
                .arg(&self.del_set)
                .arg(&self.state_prefix);
            for k in chunk {
                cmd.arg(k.as_ref());
            }
            cmd.arg(NOTIFICATION_PAYLOAD);
        }
    }

    /// Sends `pipe` in one round trip and checks the replies.
    ///
    /// Every reply must be nil (what the producer scripts return); `OK` and
    /// integers are also accepted so plain `HSET`/`DEL` commands may share
    /// the pipeline. An error reply is returned as [`SwssError::Redis`],
    /// any other reply as [`SwssError::UnexpectedReply`]; commands before
    /// and after it have still been executed by Redis.
    ///
    /// `NOSCRIPT` (the script cache is empty, e.g. Redis restarted or
    /// `SCRIPT FLUSH`): the scripts are loaded again and the commands from the
    /// first `NOSCRIPT` one to the end are sent once more. This is safe
    /// because the producer effects are idempotent when replayed in order:
    /// SADD of a member already present changes nothing, HSET/DEL end in the
    /// same final state when the same suffix is applied again in order. The
    /// worst case is an extra `G` message (the consumer's pops then returns
    /// nothing) or, if the consumer popped in between, the same values
    /// delivered twice, which orchagent treats as a duplicate SET. A second
    /// `NOSCRIPT` is returned as an error. The pipeline must not be atomic
    /// (`MULTI`): [`SwssError::InvalidArgument`].
    ///
    /// Since the scripts are shared, one flush may carry commands of several
    /// producers (e.g. NEIGH_TABLE and ROUTE_TABLE).
    pub async fn flush<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        pipe: &Pipeline,
    ) -> Result<(), SwssError> {
        flush_pipeline(conn, pipe).await
    }

    /// Immediate [`ProducerStateTable::queue_set`] + flush (one round trip;
    /// the C++ unbuffered behaviour).
    pub async fn set<C, F, V>(
        &self,
        conn: &mut C,
        key: &str,
        fvs: &[(F, V)],
    ) -> Result<(), SwssError>
    where
        C: ConnectionLike + Send,
        F: AsRef<str>,
        V: AsRef<str>,
    {
        let mut pipe = redis::pipe();
        self.queue_set(&mut pipe, key, fvs);
        self.flush(conn, &pipe).await
    }

    /// Immediate [`ProducerStateTable::queue_del`] + flush.
    pub async fn del<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
    ) -> Result<(), SwssError> {
        let mut pipe = redis::pipe();
        self.queue_del(&mut pipe, key);
        self.flush(conn, &pipe).await
    }

    /// Immediate [`ProducerStateTable::queue_batch_set`] + flush.
    pub async fn batch_set<C, K, F, V>(
        &self,
        conn: &mut C,
        entries: &[(K, Vec<(F, V)>)],
    ) -> Result<(), SwssError>
    where
        C: ConnectionLike + Send,
        K: AsRef<str>,
        F: AsRef<str>,
        V: AsRef<str>,
    {
        let mut pipe = redis::pipe();
        self.queue_batch_set(&mut pipe, entries);
        self.flush(conn, &pipe).await
    }

    /// Immediate [`ProducerStateTable::queue_batch_del`] + flush.
    pub async fn batch_del<C: ConnectionLike + Send, K: AsRef<str>>(
        &self,
        conn: &mut C,
        keys: &[K],
    ) -> Result<(), SwssError> {
        let mut pipe = redis::pipe();
        self.queue_batch_del(&mut pipe, keys);
        self.flush(conn, &pipe).await
    }

    /// Drops every pending operation of this table (used on warm start,
    /// BEHAVIOR.md b.1 step 3): `DEL T_KEY_SET`, `DEL` of each state hash
    /// `_T<S>*`, `DEL T_DEL_SET`. Source: `ProducerStateTable::clear`.
    ///
    /// Deviations (BEHAVIOR.md f.11, f.20): the state hashes are found with
    /// `SCAN MATCH _T<S>*` using the exact prefix **including the
    /// separator**, so other tables whose name starts with `T` (e.g.
    /// `NEIGH_TABLE_X` next to `NEIGH_TABLE`) are left alone, where the C++
    /// `KEYS _T*` would wipe theirs too. It is three steps, not one atomic
    /// script; it is meant to run before this producer writes anything.
    ///
    /// Errors: [`SwssError::Redis`], [`SwssError::UnexpectedReply`].
    pub async fn clear<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<(), SwssError> {
        let _: Value = redis::cmd("DEL")
            .arg(&self.key_set)
            .query_async(conn)
            .await?;
        let states: Vec<String> = scan_prefix(conn, &self.state_prefix)
            .await?
            .into_iter()
            .collect();
        for chunk in states.chunks(500) {
            let _: Value = redis::cmd("DEL").arg(chunk).query_async(conn).await?;
        }
        let _: Value = redis::cmd("DEL")
            .arg(&self.del_set)
            .query_async(conn)
            .await?;
        Ok(())
    }
}

// ===== free functions =====

/// `SCRIPT LOAD` of the four producer scripts, checking the returned SHA1s.
async fn load_producer_scripts<C: ConnectionLike + Send>(conn: &mut C) -> Result<(), SwssError> {
    let expected = [
        SCRIPTS.set.get_hash(),
        SCRIPTS.del.get_hash(),
        SCRIPTS.batch_set.get_hash(),
        SCRIPTS.batch_del.get_hash(),
    ];
    for (src, sha) in SCRIPT_SOURCES.iter().zip(expected) {
        let reply: Value = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(*src)
            .query_async(conn)
            .await?;
        match crate::table::value_to_string(&reply) {
            Some(got) if got == sha => {}
            _ => {
                return Err(SwssError::unexpected(
                    format!("SCRIPT LOAD (expected {sha})"),
                    &reply,
                ))
            }
        }
    }
    Ok(())
}

/// Sends a pipeline; see [`ProducerStateTable::flush`].
async fn flush_pipeline<C: ConnectionLike + Send>(
    conn: &mut C,
    pipe: &Pipeline,
) -> Result<(), SwssError> {
    if pipe.is_empty() {
        return Ok(());
    }
    if pipe.is_transaction() {
        return Err(SwssError::InvalidArgument(
            "ProducerStateTable::flush needs a non-atomic pipeline".into(),
        ));
    }
    let replies = conn.req_packed_commands(pipe, 0, pipe.len()).await?;
    let Some(first) = check_replies(&replies, pipe.len())? else {
        return Ok(());
    };
    tracing::warn!(
        commands = pipe.len() - first,
        "NOSCRIPT from Redis (script cache flushed or Redis restarted); reloading producer scripts and resending"
    );
    load_producer_scripts(conn).await?;
    let mut rest = redis::pipe();
    for cmd in pipe.cmd_iter().skip(first) {
        rest.add_command(cmd.clone());
    }
    let replies = conn.req_packed_commands(&rest, 0, rest.len()).await?;
    match check_replies(&replies, rest.len())? {
        None => Ok(()),
        Some(i) => Err(SwssError::unexpected(
            "EVALSHA after reloading the producer scripts",
            &replies.get(i),
        )),
    }
}

/// Checks pipeline replies: `Ok(None)` if all fine, `Ok(Some(i))` if the
/// only problems are `NOSCRIPT` errors, the first at index `i`; otherwise the
/// first other error.
fn check_replies(replies: &[Value], expected: usize) -> Result<Option<usize>, SwssError> {
    if replies.len() != expected {
        return Err(SwssError::unexpected(
            format!("pipeline of {expected} commands"),
            &format!("{} replies", replies.len()),
        ));
    }
    let mut first_noscript = None;
    for (i, r) in replies.iter().enumerate() {
        match r {
            Value::Nil | Value::Okay | Value::Int(_) => {}
            Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) => {
                first_noscript.get_or_insert(i);
            }
            Value::ServerError(e) => return Err(SwssError::Redis(e.clone().into())),
            other => {
                return Err(SwssError::unexpected(
                    format!("command {i} of a producer pipeline (expected nil)"),
                    other,
                ))
            }
        }
    }
    Ok(first_noscript)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pipe: &Pipeline) -> Vec<Vec<String>> {
        pipe.cmd_iter()
            .map(|c| {
                c.args_iter()
                    .map(|a| match a {
                        redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                        _ => "<cursor>".into(),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn names() {
        let p = ProducerStateTable::with_names("NEIGH_TABLE", ':', 0);
        assert_eq!(p.key_set_name(), "NEIGH_TABLE_KEY_SET");
        assert_eq!(p.del_set_name(), "NEIGH_TABLE_DEL_SET");
        assert_eq!(p.channel_name(), "NEIGH_TABLE_CHANNEL@0");
        assert_eq!(
            p.state_key("Ethernet8:10.0.0.2"),
            "_NEIGH_TABLE:Ethernet8:10.0.0.2"
        );
    }

    #[test]
    fn argument_layouts_match_swss_common() {
        let p = ProducerStateTable::with_names("T", ':', 3);
        let mut pipe = redis::pipe();
        p.queue_set(&mut pipe, "k", &[("f1", "v1"), ("f2", "v2")]);
        p.queue_del(&mut pipe, "k");
        p.queue_batch_set(&mut pipe, &[("a", vec![("f", "v")]), ("b", vec![])]);
        p.queue_batch_del(&mut pipe, &["a", "b"]);
        p.queue_batch_del::<&str>(&mut pipe, &[]);
        let a = args(&pipe);
        assert_eq!(a.len(), 4);
        let s = SCRIPTS.set.get_hash().to_string();
        assert_eq!(
            a[0],
            [
                "EVALSHA",
                &s,
                "4",
                "T_CHANNEL@3",
                "T_KEY_SET",
                "_T:k",
                "_T:k",
                "G",
                "k",
                "f1",
                "v1",
                "f2",
                "v2"
            ]
        );
        let d = SCRIPTS.del.get_hash().to_string();
        assert_eq!(
            a[1],
            [
                "EVALSHA",
                &d,
                "4",
                "T_CHANNEL@3",
                "T_KEY_SET",
                "_T:k",
                "T_DEL_SET",
                "G",
                "k",
                "''",
                "''"
            ]
        );
        let bs = SCRIPTS.batch_set.get_hash().to_string();
        assert_eq!(
            a[2],
            [
                "EVALSHA",
                &bs,
                "5",
                "T_CHANNEL@3",
                "T_KEY_SET",
                "_T:",
                "a",
                "b",
                "G",
                "1",
                "f",
                "v",
                "0"
            ]
        );
        let bd = SCRIPTS.batch_del.get_hash().to_string();
        assert_eq!(
            a[3],
            [
                "EVALSHA",
                &bd,
                "6",
                "T_CHANNEL@3",
                "T_KEY_SET",
                "T_DEL_SET",
                "_T:",
                "a",
                "b",
                "G"
            ]
        );
    }

    #[test]
    fn long_batches_are_split() {
        let p = ProducerStateTable::with_names("T", ':', 0);
        let keys: Vec<String> = (0..MAX_KEYS_PER_SCRIPT + 1)
            .map(|i| i.to_string())
            .collect();
        let mut pipe = redis::pipe();
        p.queue_batch_del(&mut pipe, &keys);
        assert_eq!(pipe.len(), 2);
    }
}
