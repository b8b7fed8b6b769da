//! [`Table`]: plain `TABLE<sep>key` hashes (docs/behavior.md a.3, table.cpp).
//!
//! Every method takes the connection to use, so one
//! [`redis::aio::MultiplexedConnection`] can serve all tables of a DB (the
//! C++ opens one connection per Table, docs/behavior.md f.18).
//!
//! Text: keys, fields and values are Rust `String`s. Redis data that is not
//! UTF-8 is converted lossily (U+FFFD); SONiC writes only text here.

use std::collections::BTreeSet;

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::SwssError;
use crate::FieldValues;

/// A SONiC table: hashes named `<name><separator><key>`.
///
/// Reads are tolerant of bad entries: a key of another Redis type than a
/// hash (`WRONGTYPE`) is reported through [`crate::bad_entry::report`] and
/// read as absent, so one stray key never stops a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    name: String,
    separator: char,
    db: String,
}

// ===== impl Table =====

impl Table {
    /// A table `name` in a DB whose separator is `separator` (`:` for
    /// APPL_DB, `|` for CONFIG_DB/STATE_DB; take it from
    /// `DbConnector::separator`).
    pub fn new(name: &str, separator: char) -> Self {
        Table {
            name: name.to_string(),
            separator,
            db: String::new(),
        }
    }

    /// The same table, naming its database (e.g. `CONFIG_DB`) in reports
    /// of bad entries. [`crate::DbConnector::table`] sets it.
    pub fn in_db(mut self, db: &str) -> Self {
        self.db = db.to_string();
        self
    }

    /// The database name given to [`Table::in_db`], or empty.
    pub fn db(&self) -> &str {
        &self.db
    }

    /// The outcome of a write to `full_key`: a `WRONGTYPE` error reply is
    /// reported as a bad entry and the write dropped (`Ok`); other errors
    /// are returned.
    fn written(
        &self,
        full_key: &str,
        res: Result<Value, redis::RedisError>,
    ) -> Result<(), SwssError> {
        match res.map_err(SwssError::from) {
            Ok(_) => Ok(()),
            Err(e) if e.is_wrong_type() => {
                crate::bad_entry::report(&self.db, full_key, "not a hash (WRONGTYPE); not written");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Reports `full_key` as a bad entry when `e` is a `WRONGTYPE` error
    /// and returns `Ok(None)`; other errors are returned.
    fn skip_wrong_type<T>(&self, full_key: &str, e: SwssError) -> Result<Option<T>, SwssError> {
        if e.is_wrong_type() {
            crate::bad_entry::report(&self.db, full_key, "not a hash (WRONGTYPE)");
            Ok(None)
        } else {
            Err(e)
        }
    }

    /// The table name, e.g. `PORT_TABLE`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The separator, `:` or `|`.
    pub fn separator(&self) -> char {
        self.separator
    }

    /// `TABLE<sep>key`, or just `TABLE` for an empty key (as
    /// `TableBase::getKeyName`).
    pub fn full_key(&self, key: &str) -> String {
        if key.is_empty() {
            self.name.clone()
        } else {
            format!("{}{}{}", self.name, self.separator, key)
        }
    }

    /// `HGETALL TABLE<sep>key`. `None` when the hash is empty or missing,
    /// or when the key is not a hash (reported as a bad entry). Field names
    /// are cut at the first `@` (as `Table::get`); values are kept whole.
    /// Pairs come in Redis order (insertion order for small hashes).
    ///
    /// Errors: [`SwssError::Redis`] (I/O or an error reply other than
    /// `WRONGTYPE`), [`SwssError::UnexpectedReply`] for a malformed reply.
    pub async fn get<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
    ) -> Result<Option<FieldValues>, SwssError> {
        let full = self.full_key(key);
        match hgetall(conn, &full).await {
            Ok(fvs) if fvs.is_empty() => Ok(None),
            Ok(fvs) => Ok(Some(cut_fields(fvs))),
            Err(e) => self.skip_wrong_type(&full, e),
        }
    }

    /// [`Table::get`] of many keys in pipelined round trips of at most
    /// `chunk` keys: `(key, fields)` of each non-empty hash, in `keys`
    /// order. Keys that are missing, empty or not hashes (reported as bad
    /// entries) are left out.
    ///
    /// Errors: [`SwssError::Redis`] (I/O or an error reply other than
    /// `WRONGTYPE`), [`SwssError::UnexpectedReply`].
    pub async fn get_many<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        keys: &[String],
        chunk: usize,
    ) -> Result<Vec<(String, FieldValues)>, SwssError> {
        let mut out = Vec::with_capacity(keys.len());
        for part in keys.chunks(chunk.max(1)) {
            let mut pipe = redis::pipe();
            for k in part {
                pipe.cmd("HGETALL").arg(self.full_key(k));
            }
            let replies = self.query_per_key(conn, &mut pipe, part).await?;
            for (k, reply) in part.iter().zip(replies) {
                let Some(v) = reply else { continue };
                let fvs = value_to_pairs(&v, &format!("HGETALL {}", self.full_key(k)))?;
                if !fvs.is_empty() {
                    out.push((k.clone(), cut_fields(fvs)));
                }
            }
        }
        Ok(out)
    }

    /// Sends `pipe`, whose i-th command is about this table's `keys[i]`
    /// (one command per key, none marked `ignore`), and returns each
    /// command's reply in order: `None` where the command met a key that is
    /// not a hash (reported as a bad entry, nothing done for it), so the
    /// other keys' commands count.
    ///
    /// Errors: [`SwssError::Redis`] (I/O, or an error reply other than
    /// `WRONGTYPE`), [`SwssError::UnexpectedReply`] when the number of
    /// replies is not `keys.len()`.
    pub async fn query_per_key<C: ConnectionLike + Send, K: AsRef<str>>(
        &self,
        conn: &mut C,
        pipe: &mut redis::Pipeline,
        keys: &[K],
    ) -> Result<Vec<Option<Value>>, SwssError> {
        pipe.ignore_errors();
        let replies: Vec<Value> = pipe.query_async(conn).await?;
        if replies.len() != keys.len() {
            return Err(SwssError::unexpected(
                format!("pipeline of {} commands on {}", keys.len(), self.name),
                &replies.len(),
            ));
        }
        keys.iter()
            .zip(replies)
            .map(|(k, reply)| match reply {
                Value::ServerError(e) => {
                    let full = self.full_key(k.as_ref());
                    self.skip_wrong_type(&full, redis::RedisError::from(e).into())
                }
                v => Ok(Some(v)),
            })
            .collect()
    }

    /// One multi-pair `HSET TABLE<sep>key f1 v1 f2 v2 ...`, merging into the
    /// existing hash (fields not listed are kept). Nothing is sent when
    /// `fvs` is empty. Source: `Table::set`.
    ///
    /// A key that is not a hash is reported as a bad entry and not written.
    ///
    /// Errors: [`SwssError::Redis`] (other than `WRONGTYPE`).
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
        if fvs.is_empty() {
            return Ok(());
        }
        let full = self.full_key(key);
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&full);
        for (f, v) in fvs {
            cmd.arg(f.as_ref()).arg(v.as_ref());
        }
        let res: Result<Value, redis::RedisError> = cmd.query_async(conn).await;
        self.written(&full, res)
    }

    /// `DEL TABLE<sep>key`. Source: `Table::del`.
    ///
    /// Errors: [`SwssError::Redis`].
    pub async fn del<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
    ) -> Result<(), SwssError> {
        let _: Value = redis::cmd("DEL")
            .arg(self.full_key(key))
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// `HGET TABLE<sep>key field`. `None` for a missing field or key, or a
    /// key that is not a hash (reported as a bad entry); the value is cut at
    /// the first `@` (as `Table::hget`).
    ///
    /// Errors: [`SwssError::Redis`] (other than `WRONGTYPE`),
    /// [`SwssError::UnexpectedReply`].
    pub async fn hget<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, SwssError> {
        let full = self.full_key(key);
        let res: Result<Value, redis::RedisError> = redis::cmd("HGET")
            .arg(&full)
            .arg(field)
            .query_async(conn)
            .await;
        let v = match res {
            Ok(v) => v,
            Err(e) => return self.skip_wrong_type(&full, e.into()),
        };
        match v {
            Value::Nil => Ok(None),
            other => match value_to_string(&other) {
                Some(s) => Ok(Some(cut_at(&s).to_string())),
                None => Err(SwssError::unexpected(
                    format!("HGET {full} {field}"),
                    &other,
                )),
            },
        }
    }

    /// `HSET TABLE<sep>key field value`. Source: `Table::hset`.
    ///
    /// A key that is not a hash is reported as a bad entry and not written.
    ///
    /// Errors: [`SwssError::Redis`] (other than `WRONGTYPE`).
    pub async fn hset<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
        field: &str,
        value: &str,
    ) -> Result<(), SwssError> {
        let full = self.full_key(key);
        let res: Result<Value, redis::RedisError> = redis::cmd("HSET")
            .arg(&full)
            .arg(field)
            .arg(value)
            .query_async(conn)
            .await;
        self.written(&full, res)
    }

    /// `HDEL TABLE<sep>key field`. Source: `Table::hdel`.
    ///
    /// A key that is not a hash is reported as a bad entry and not written.
    ///
    /// Errors: [`SwssError::Redis`] (other than `WRONGTYPE`).
    pub async fn hdel<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
        field: &str,
    ) -> Result<(), SwssError> {
        let full = self.full_key(key);
        let res: Result<Value, redis::RedisError> = redis::cmd("HDEL")
            .arg(&full)
            .arg(field)
            .query_async(conn)
            .await;
        self.written(&full, res)
    }

    /// All keys of the table, without the `TABLE<sep>` prefix, sorted and
    /// without duplicates.
    ///
    /// Deviation: the C++ `Table::getKeys` runs `KEYS TABLE<sep>*`, which
    /// blocks Redis for O(keyspace) (docs/behavior.md f.20). This uses
    /// `SCAN MATCH TABLE<sep>* COUNT 1000` (glob characters in the table name
    /// escaped). SCAN is not a snapshot: a key added or removed during the
    /// scan may or may not be listed; keys present for the whole scan are.
    ///
    /// Errors: [`SwssError::Redis`], [`SwssError::UnexpectedReply`].
    pub async fn keys<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<Vec<String>, SwssError> {
        let prefix = format!("{}{}", self.name, self.separator);
        let found = scan_prefix(conn, &prefix).await?;
        Ok(found
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }
}

// ===== helpers shared by the crate =====

/// The text up to the first `@` (swss-common cuts field names in `get` and
/// values in `hget` there).
fn cut_at(s: &str) -> &str {
    s.split('@').next().unwrap_or(s)
}

/// [`cut_at`] applied to every field name.
pub(crate) fn cut_fields(fvs: FieldValues) -> FieldValues {
    fvs.into_iter()
        .map(|(f, v)| match f.find('@') {
            Some(i) => (f[..i].to_string(), v),
            None => (f, v),
        })
        .collect()
}

/// Escapes the Redis glob characters `* ? [ ] \` with a backslash so the
/// text matches itself in a `SCAN MATCH` / `KEYS` / `PSUBSCRIBE` pattern.
pub fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A string-like reply as text: a bulk string (lossy UTF-8, invalid bytes
/// become U+FFFD), a simple or verbatim string, `OK`, or an integer (its
/// decimal text). `None` for every other type (nil, arrays, maps, sets,
/// doubles, booleans, errors, ...).
pub fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// Decodes an `HGETALL`-style reply into pairs, in reply order.
///
/// Shapes: nil (no pairs), a flat array `[f1, v1, f2, v2, ...]` of even
/// length, or a RESP3 map; every field and value must be string-like as
/// [`value_to_string`] reads it. Field names are not cut at `@` and
/// duplicates are kept.
///
/// Errors: [`SwssError::UnexpectedReply`] (naming `context`, e.g.
/// `HGETALL PORT|Ethernet0`) for an odd-length array, a field or value
/// that is not string-like, or any other reply type.
pub fn value_to_pairs(v: &Value, context: &str) -> Result<FieldValues, SwssError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(SwssError::unexpected(context, v));
            }
            items
                .chunks(2)
                .map(
                    |pair| match (value_to_string(&pair[0]), value_to_string(&pair[1])) {
                        (Some(f), Some(val)) => Ok((f, val)),
                        _ => Err(SwssError::unexpected(context, v)),
                    },
                )
                .collect()
        }
        Value::Map(pairs) => pairs
            .iter()
            .map(
                |(f, val)| match (value_to_string(f), value_to_string(val)) {
                    (Some(f), Some(val)) => Ok((f, val)),
                    _ => Err(SwssError::unexpected(context, v)),
                },
            )
            .collect(),
        _ => Err(SwssError::unexpected(context, v)),
    }
}

/// `HGETALL <full_key>` as pairs in Redis order (no `@` cutting).
pub(crate) async fn hgetall<C: ConnectionLike + Send>(
    conn: &mut C,
    full_key: &str,
) -> Result<FieldValues, SwssError> {
    let v: Value = redis::cmd("HGETALL")
        .arg(full_key)
        .query_async(conn)
        .await?;
    value_to_pairs(&v, &format!("HGETALL {full_key}"))
}

/// All keys starting with `prefix` (taken literally), found with
/// `SCAN 0 MATCH <escaped prefix>* COUNT 1000` until the cursor returns to 0.
/// Sorted, without duplicates.
pub(crate) async fn scan_prefix<C: ConnectionLike + Send>(
    conn: &mut C,
    prefix: &str,
) -> Result<BTreeSet<String>, SwssError> {
    let pattern = format!("{}*", glob_escape(prefix));
    let mut cursor: u64 = 0;
    let mut keys = BTreeSet::new();
    loop {
        let reply: Value = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        let context = format!("SCAN MATCH {pattern}");
        let (next, batch) = parse_scan_reply(&reply, &context)?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// Decodes one `SCAN` reply: `[cursor, [key, ...]]`, the cursor a
/// string-like reply holding a decimal `u64` (0 when the scan is complete),
/// the keys string-like ([`value_to_string`]). Returns the next cursor and
/// the keys in reply order.
///
/// Errors: [`SwssError::UnexpectedReply`] (naming `context`) for any other
/// shape: not a 2-element array, a cursor that is not a decimal `u64`, a
/// key list that is not an array, or a key that is not string-like.
pub fn parse_scan_reply(reply: &Value, context: &str) -> Result<(u64, Vec<String>), SwssError> {
    let (next, batch) = match reply {
        Value::Array(parts) if parts.len() == 2 => {
            let next = value_to_string(&parts[0]).and_then(|s| s.parse::<u64>().ok());
            match (next, &parts[1]) {
                (Some(n), Value::Array(b)) => (n, b),
                _ => return Err(SwssError::unexpected(context, reply)),
            }
        }
        _ => return Err(SwssError::unexpected(context, reply)),
    };
    let keys = batch
        .iter()
        .map(|k| value_to_string(k).ok_or_else(|| SwssError::unexpected(context, reply)))
        .collect::<Result<Vec<String>, SwssError>>()?;
    Ok((next, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_key_and_cut() {
        let t = Table::new("PORT", '|');
        assert_eq!(t.full_key("Ethernet0"), "PORT|Ethernet0");
        assert_eq!(t.full_key(""), "PORT");
        assert_eq!(cut_at("a@b@c"), "a");
        assert_eq!(cut_at("@x"), "");
        assert_eq!(cut_at("abc"), "abc");
    }

    #[test]
    fn glob_escape_escapes_specials_only() {
        assert_eq!(glob_escape(r"A*B?C[D]E\F|G:H"), r"A\*B\?C\[D\]E\\F|G:H");
    }

    #[test]
    fn scan_replies() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![b("17"), Value::Array(vec![b("a"), b("b")])]);
        assert_eq!(
            parse_scan_reply(&reply, "x").unwrap(),
            (17, vec!["a".to_string(), "b".to_string()])
        );
        let reply = Value::Array(vec![Value::Int(0), Value::Array(vec![])]);
        assert_eq!(parse_scan_reply(&reply, "x").unwrap(), (0, vec![]));
        for bad in [
            Value::Nil,
            Value::Array(vec![b("0")]),
            Value::Array(vec![b("-1"), Value::Array(vec![])]),
            Value::Array(vec![b("0"), b("a")]),
            Value::Array(vec![b("0"), Value::Array(vec![Value::Nil])]),
        ] {
            assert!(matches!(
                parse_scan_reply(&bad, "x"),
                Err(SwssError::UnexpectedReply { .. })
            ));
        }
    }

    #[test]
    fn pairs_reject_odd_arrays() {
        let v = Value::Array(vec![Value::BulkString(b"a".to_vec())]);
        assert!(value_to_pairs(&v, "x").is_err());
        let v = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"1".to_vec()),
        ]);
        assert_eq!(
            value_to_pairs(&v, "x").unwrap(),
            vec![("a".into(), "1".into())]
        );
    }
}
