//! [`ProducerStateTable`]: the writer side of SONiC's producer/consumer
//! protocol (docs/behavior.md a.4; swss-common producerstatetable.cpp).
//!
//! Redis layout for table `T` in a DB with separator `S` and id `N`:
//! * `T_KEY_SET`: SET of pending keys (no table prefix);
//! * `T_DEL_SET`: SET of pending keys whose old content must be wiped first;
//! * `_T<S>key`: HASH of the pending fields of one key (the "state hash");
//! * `T_CHANNEL@N`: channel that gets the payload `G` when keys become
//!   pending.
//!
//! Single operations ([`ProducerStateTable::queue_set`],
//! [`ProducerStateTable::queue_del`]) are one `EVALSHA` of one of our Lua
//! scripts (own text, the effects and argument layouts of swss-common's; the
//! SHA1 differs, which no consumer looks at; docs/differences.md S4). The
//! scripts are the same for every table (all names are passed in
//! KEYS/ARGV), so loading them once per Redis serves all producers.
//!
//! Batching (docs/behavior.md f.3): the writer queues operations into a
//! [`redis::Pipeline`] with the `queue_*` methods and sends them with
//! [`ProducerStateTable::flush`], one round trip for the whole burst.
//!
//! Batched operations (docs/differences.md S8, S9): a batch of up to
//! [`MAX_KEYS_PER_BATCH`] keys is one `MULTI` ... `EXEC` transaction of
//! plain commands instead of one `EVALSHA`:
//!
//! ```text
//! set: MULTI; HSET _T<S>k1 f v ...; ...; HSET _T<S>km f v ...;
//!      SADD T_KEY_SET k1 ... km; PUBLISH T_CHANNEL@N G; EXEC
//! del: MULTI; SADD T_KEY_SET k1 ... km; SADD T_DEL_SET k1 ... km;
//!      DEL _T<S>k1 ... _T<S>km; PUBLISH T_CHANNEL@N G; EXEC
//! ```
//!
//! What Redis holds afterwards is byte-identical to swss-common's batched
//! scripts (the same sets, the same state hashes with their fields in the
//! same order), and the transaction is as atomic as a script: no consumer
//! pops script runs between `MULTI` and `EXEC`, so a consumer never sees a
//! key in `T_KEY_SET` whose state hash is incomplete, nor a deleted key
//! outside `T_DEL_SET` (docs/behavior.md a.5). Differences: the `PUBLISH`
//! is unconditional (a transaction cannot test the `SADD` result), so a
//! batch whose keys were all pending already sends one extra `G` (the
//! consumer's pops then finds nothing new; harmless, docs/differences.md
//! S9); the keyspace notifications are one `sadd` per batch instead of one
//! per key, after the `hset` events (S9). Measured with `bench cold100k
//! burst100k`, alternating the two binaries: see docs/benchmarks.md
//! ("Producer batches as MULTI/EXEC"). Lua's per-`redis.call` overhead was
//! half the cost of the batched script.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Pipeline, Script, ServerErrorKind, Value};

use crate::config::DbLocation;
use crate::error::SwssError;
use crate::table::scan_prefix;

/// The notification payload published on `T_CHANNEL@N`.
pub const NOTIFICATION_PAYLOAD: &str = "G";

/// Most keys in one batched `MULTI` ... `EXEC` transaction; longer batches
/// are split into several transactions (each with its own `PUBLISH`).
/// Bounds the time one `EXEC` blocks Redis: 1,000 keys of two fields is
/// about 2 ms of Redis CPU on the benchmark machine (docs/benchmarks.md),
/// less than the batched script it replaced. The queued commands are parsed
/// while other clients are served; only `EXEC` runs without interruption.
pub const MAX_KEYS_PER_BATCH: usize = 1000;

/// The former name of [`MAX_KEYS_PER_BATCH`] (batches were one script each);
/// kept so callers that chunk with it keep compiling.
pub const MAX_KEYS_PER_SCRIPT: usize = MAX_KEYS_PER_BATCH;

// ----- Lua scripts (our own text; effects as docs/behavior.md a.4) -----

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

/// The two producer scripts with their SHA1s.
struct Scripts {
    set: Script,
    del: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    set: Script::new(LUA_SET),
    del: Script::new(LUA_DEL),
});

const SCRIPT_SOURCES: [&str; 2] = [LUA_SET, LUA_DEL];

/// The state hash name `_T<S>key` as one command argument, written without
/// an intermediate `String`.
struct StateKey<'a>(&'a str, &'a str);

impl redis::ToRedisArgs for StateKey<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write as _;
        let mut w = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = w.write_all(self.0.as_bytes());
        let _ = w.write_all(self.1.as_bytes());
    }
}

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

    /// `SCRIPT LOAD` of the two producer scripts (single set and del; the
    /// same for every table; batches use no script). Needed once per Redis server lifetime before the first flush;
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

    /// Queues a batched set as one transaction per [`MAX_KEYS_PER_BATCH`]
    /// keys:
    ///
    /// ```text
    /// MULTI
    /// HSET _T<S>key1 f v ... (its pairs in order; none for a key without pairs)
    /// ...
    /// HSET _T<S>keym f v ...
    /// SADD T_KEY_SET key1 ... keym
    /// PUBLISH T_CHANNEL@N G
    /// EXEC
    /// ```
    ///
    /// The end state is that of swss-common's batched script (per key `SADD
    /// T_KEY_SET key` and `HSET _T<S>key f v` per pair, docs/behavior.md
    /// a.4); a key without pairs only becomes pending (the consumer sees a
    /// DEL). The same key may appear twice (its HSETs apply in order). The
    /// transaction makes the batch atomic for consumers; the `PUBLISH` is
    /// sent even when every key was already pending (docs/differences.md
    /// S9). Nothing is queued for an empty batch. Source:
    /// `ProducerStateTable::set(const std::vector<KeyOpFieldsValuesTuple>&)`.
    pub fn queue_batch_set<K, F, V>(&self, pipe: &mut Pipeline, entries: &[(K, Vec<(F, V)>)])
    where
        K: AsRef<str>,
        F: AsRef<str>,
        V: AsRef<str>,
    {
        for chunk in entries.chunks(MAX_KEYS_PER_BATCH) {
            pipe.cmd("MULTI");
            for (k, fvs) in chunk {
                if fvs.is_empty() {
                    continue;
                }
                let (k, prefix) = (k.as_ref(), self.state_prefix.as_str());
                // Sized up front: one allocation per buffer for each key.
                let data = fvs.iter().fold(4 + prefix.len() + k.len(), |n, (f, v)| {
                    n + f.as_ref().len() + v.as_ref().len()
                });
                let mut cmd = redis::Cmd::with_capacity(2 + 2 * fvs.len(), data);
                cmd.arg("HSET").arg(StateKey(prefix, k));
                for (f, v) in fvs {
                    cmd.arg(f.as_ref()).arg(v.as_ref());
                }
                pipe.add_command(cmd);
            }
            let sadd = pipe.cmd("SADD").arg(&self.key_set);
            for (k, _) in chunk {
                sadd.arg(k.as_ref());
            }
            self.queue_publish_exec(pipe);
        }
    }

    /// Queues a batched del as one transaction per [`MAX_KEYS_PER_BATCH`]
    /// keys:
    ///
    /// ```text
    /// MULTI
    /// SADD T_KEY_SET key1 ... keym
    /// SADD T_DEL_SET key1 ... keym
    /// DEL _T<S>key1 ... _T<S>keym
    /// PUBLISH T_CHANNEL@N G
    /// EXEC
    /// ```
    ///
    /// The end state is that of swss-common's batched del script (per key
    /// `SADD T_KEY_SET`, `SADD T_DEL_SET`, `DEL _T<S>key`, docs/behavior.md
    /// a.4). A batched set of the same key queued after it in the same
    /// pipeline runs after this `EXEC`: the consumer sees DEL, then SET
    /// (rule 2 of a.4). The `PUBLISH` is unconditional as in
    /// [`ProducerStateTable::queue_batch_set`]. Empty: nothing queued.
    /// Source: `ProducerStateTable::del(const std::vector<std::string>&)`.
    pub fn queue_batch_del<K: AsRef<str>>(&self, pipe: &mut Pipeline, keys: &[K]) {
        for chunk in keys.chunks(MAX_KEYS_PER_BATCH) {
            pipe.cmd("MULTI");
            let sadd = pipe.cmd("SADD").arg(&self.key_set);
            for k in chunk {
                sadd.arg(k.as_ref());
            }
            let sadd = pipe.cmd("SADD").arg(&self.del_set);
            for k in chunk {
                sadd.arg(k.as_ref());
            }
            let del = pipe.cmd("DEL");
            for k in chunk {
                del.arg(StateKey(&self.state_prefix, k.as_ref()));
            }
            self.queue_publish_exec(pipe);
        }
    }

    /// The end of a batch transaction: `PUBLISH T_CHANNEL@N G`, `EXEC`.
    fn queue_publish_exec(&self, pipe: &mut Pipeline) {
        pipe.cmd("PUBLISH")
            .arg(&self.channel)
            .arg(NOTIFICATION_PAYLOAD);
        pipe.cmd("EXEC");
    }

    /// Sends `pipe` in one round trip and checks the replies.
    ///
    /// Replies expected (anything else is an error):
    /// * outside a transaction: nil (what the producer scripts return), `OK`
    ///   or an integer (so plain `HSET`/`DEL` commands may share the
    ///   pipeline);
    /// * `MULTI`: `OK`; a command queued after it: `QUEUED`;
    /// * `EXEC`: an array of nil, `OK` or integers (the batch transactions of
    ///   [`ProducerStateTable::queue_batch_set`] and
    ///   [`ProducerStateTable::queue_batch_del`]).
    ///
    /// An error reply (also one inside the `EXEC` array, or a command
    /// refused while queueing, after which Redis discards that transaction
    /// with `EXECABORT`) is returned as [`SwssError::Redis`], any other
    /// reply as [`SwssError::UnexpectedReply`] (an `EXEC` replying nil, i.e.
    /// a transaction aborted by a `WATCH`, included). Commands before and
    /// after it (other transactions included) have still been executed.
    ///
    /// `NOSCRIPT` (the script cache is empty, e.g. Redis restarted or
    /// `SCRIPT FLUSH`) on a single set or del: the scripts are loaded again
    /// and the commands from the first `NOSCRIPT` one to the end are sent
    /// once more (that point is never inside a transaction, since queued
    /// commands reply `QUEUED`). This is safe because the producer effects
    /// are idempotent when replayed in order: SADD of a member already
    /// present changes nothing, HSET/DEL end in the same final state when
    /// the same suffix is applied again in order. The worst case is extra
    /// `G` messages (a replayed batch transaction publishes again; the
    /// consumer's pops then returns nothing) or, if the consumer popped in
    /// between, the same values delivered twice, which orchagent treats as a
    /// duplicate SET or DEL. A second `NOSCRIPT` is returned as an error.
    /// The pipeline itself must not be atomic ([`Pipeline::atomic`] would
    /// nest `MULTI`): [`SwssError::InvalidArgument`].
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
    /// docs/behavior.md b.1 step 3): `DEL T_KEY_SET`, `DEL` of each state hash
    /// `_T<S>*`, `DEL T_DEL_SET`. Source: `ProducerStateTable::clear`.
    ///
    /// Deviations (docs/behavior.md f.11, f.20): the state hashes are found with
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

/// `SCRIPT LOAD` of the two producer scripts, checking the returned SHA1s.
async fn load_producer_scripts<C: ConnectionLike + Send>(conn: &mut C) -> Result<(), SwssError> {
    let expected = [SCRIPTS.set.get_hash(), SCRIPTS.del.get_hash()];
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
    let Some(first) = check_replies(pipe, &replies)? else {
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
    match check_replies(&rest, &replies)? {
        None => Ok(()),
        Some(i) => Err(SwssError::unexpected(
            "EVALSHA after reloading the producer scripts",
            &replies.get(i),
        )),
    }
}

/// Whether `cmd`'s name (its first argument) is `name` (ASCII upper case).
fn is_command(cmd: &redis::Cmd, name: &str) -> bool {
    matches!(
        cmd.args_iter().next(),
        Some(redis::Arg::Simple(n)) if n.eq_ignore_ascii_case(name.as_bytes())
    )
}

/// Checks the replies to `pipe` (see [`ProducerStateTable::flush`]):
/// `Ok(None)` if all fine, `Ok(Some(i))` if the only problems are
/// `NOSCRIPT` errors outside transactions, the first at index `i`;
/// otherwise the first other error.
fn check_replies(pipe: &Pipeline, replies: &[Value]) -> Result<Option<usize>, SwssError> {
    if replies.len() != pipe.len() {
        return Err(SwssError::unexpected(
            format!("pipeline of {} commands", pipe.len()),
            &format!("{} replies", replies.len()),
        ));
    }
    let mut first_noscript = None;
    let mut in_multi = false;
    for (i, (cmd, r)) in pipe.cmd_iter().zip(replies).enumerate() {
        if let Value::ServerError(e) = r {
            if !in_multi && e.kind() == Some(ServerErrorKind::NoScript) {
                first_noscript.get_or_insert(i);
                continue;
            }
            return Err(SwssError::Redis(e.clone().into()));
        }
        if is_command(cmd, "MULTI") {
            in_multi = true;
            if !matches!(r, Value::Okay) {
                return Err(SwssError::unexpected(format!("MULTI (command {i})"), r));
            }
        } else if is_command(cmd, "EXEC") {
            in_multi = false;
            let Value::Array(items) = r else {
                return Err(SwssError::unexpected(
                    format!("EXEC (command {i}; nil means aborted)"),
                    r,
                ));
            };
            for item in items {
                match item {
                    Value::Nil | Value::Okay | Value::Int(_) => {}
                    Value::ServerError(e) => return Err(SwssError::Redis(e.clone().into())),
                    other => {
                        return Err(SwssError::unexpected(
                            format!("a command inside EXEC (command {i}) of a producer pipeline"),
                            other,
                        ))
                    }
                }
            }
        } else if in_multi {
            if !matches!(r, Value::SimpleString(s) if s == "QUEUED") {
                return Err(SwssError::unexpected(
                    format!("command {i} of a producer transaction (expected QUEUED)"),
                    r,
                ));
            }
        } else if !matches!(r, Value::Nil | Value::Okay | Value::Int(_)) {
            return Err(SwssError::unexpected(
                format!("command {i} of a producer pipeline (expected nil)"),
                r,
            ));
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
        assert_eq!(a.len(), 2 + 5 + 6);
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
        // The batches are transactions of plain commands (module docs).
        let bs: Vec<&[&str]> = vec![
            &["MULTI"],
            &["HSET", "_T:a", "f", "v"],
            &["SADD", "T_KEY_SET", "a", "b"],
            &["PUBLISH", "T_CHANNEL@3", "G"],
            &["EXEC"],
        ];
        assert_eq!(a[2..7], bs);
        let bd: Vec<&[&str]> = vec![
            &["MULTI"],
            &["SADD", "T_KEY_SET", "a", "b"],
            &["SADD", "T_DEL_SET", "a", "b"],
            &["DEL", "_T:a", "_T:b"],
            &["PUBLISH", "T_CHANNEL@3", "G"],
            &["EXEC"],
        ];
        assert_eq!(a[7..], bd);
    }

    #[test]
    fn long_batches_are_split() {
        let p = ProducerStateTable::with_names("T", ':', 0);
        let keys: Vec<String> = (0..MAX_KEYS_PER_BATCH + 1).map(|i| i.to_string()).collect();
        let mut pipe = redis::pipe();
        p.queue_batch_del(&mut pipe, &keys);
        let a = args(&pipe);
        // Two transactions of 6 commands: 1000 keys, then 1.
        assert_eq!(a.len(), 12);
        assert_eq!(a[1].len(), 2 + MAX_KEYS_PER_BATCH);
        assert_eq!(a[7], ["SADD", "T_KEY_SET", "1000"]);
        let entries: Vec<(String, Vec<(&str, &str)>)> =
            keys.iter().map(|k| (k.clone(), vec![("f", "v")])).collect();
        let mut pipe = redis::pipe();
        p.queue_batch_set(&mut pipe, &entries);
        // MULTI, 1000 HSET, SADD, PUBLISH, EXEC; then the same for 1 key.
        assert_eq!(pipe.len(), (MAX_KEYS_PER_BATCH + 4) + 5);
    }

    /// A server error reply as the parser builds it.
    fn err(text: &str) -> Value {
        match redis::parse_redis_value(format!("-{text}\r\n").as_bytes()) {
            Ok(v @ Value::ServerError(_)) => v,
            other => panic!("parse -{text}: {other:?}"),
        }
    }

    #[test]
    fn transaction_replies_are_checked() {
        let p = ProducerStateTable::with_names("T", ':', 0);
        let mut pipe = redis::pipe();
        p.queue_del(&mut pipe, "x");
        p.queue_batch_set(&mut pipe, &[("a", vec![("f", "v")])]);
        let queued = || Value::SimpleString("QUEUED".into());
        let good = vec![
            Value::Nil,
            Value::Okay,
            queued(),
            queued(),
            queued(),
            Value::Array(vec![Value::Int(1), Value::Int(1), Value::Int(0)]),
        ];
        assert_eq!(check_replies(&pipe, &good).ok(), Some(None));

        // NOSCRIPT on the single del: resend from command 0.
        let mut r = good.clone();
        r[0] = err("NOSCRIPT No matching script.");
        assert_eq!(check_replies(&pipe, &r).ok(), Some(Some(0)));

        // An error inside EXEC, a refused queued command, an aborted EXEC,
        // a missing QUEUED, a wrong count.
        let mut r = good.clone();
        r[5] = Value::Array(vec![Value::Int(1), err("WRONGTYPE x"), Value::Int(0)]);
        assert!(matches!(check_replies(&pipe, &r), Err(SwssError::Redis(_))));
        let mut r = good.clone();
        r[2] = err("OOM command not allowed");
        assert!(matches!(check_replies(&pipe, &r), Err(SwssError::Redis(_))));
        let mut r = good.clone();
        r[5] = Value::Nil;
        assert!(matches!(
            check_replies(&pipe, &r),
            Err(SwssError::UnexpectedReply { .. })
        ));
        let mut r = good.clone();
        r[3] = Value::Int(1);
        assert!(matches!(
            check_replies(&pipe, &r),
            Err(SwssError::UnexpectedReply { .. })
        ));
        assert!(check_replies(&pipe, &good[..5]).is_err());
    }
}
