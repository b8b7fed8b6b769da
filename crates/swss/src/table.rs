//! [`Table`]: plain `TABLE<sep>key` hashes (BEHAVIOR.md a.3, table.cpp).
//!
//! Every method takes the connection to use, so one
//! [`redis::aio::MultiplexedConnection`] can serve all tables of a DB (the
//! C++ opens one connection per Table, BEHAVIOR.md f.18).
//!
//! Text: keys, fields and values are Rust `String`s. Redis data that is not
//! UTF-8 is converted lossily (U+FFFD); SONiC writes only text here.

use std::collections::BTreeSet;

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::SwssError;
use crate::FieldValues;

/// A SONiC table: hashes named `<name><separator><key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    name: String,
    separator: char,
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

    /// `HGETALL TABLE<sep>key`. `None` when the hash is empty or missing.
    /// Field names are cut at the first `@` (as `Table::get`); values are
    /// kept whole. Pairs come in Redis order (insertion order for small
    /// hashes).
    ///
    /// Errors: [`SwssError::Redis`] (I/O or error reply, e.g. `WRONGTYPE`),
    /// [`SwssError::UnexpectedReply`] for a malformed reply.
    pub async fn get<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
    ) -> Result<Option<FieldValues>, SwssError> {
        let full = self.full_key(key);
        let fvs = hgetall(conn, &full).await?;
        if fvs.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            fvs.into_iter()
                .map(|(f, v)| (cut_at(&f).to_string(), v))
                .collect(),
        ))
    }

    /// One multi-pair `HSET TABLE<sep>key f1 v1 f2 v2 ...`, merging into the
    /// existing hash (fields not listed are kept). Nothing is sent when
    /// `fvs` is empty. Source: `Table::set`.
    ///
    /// Errors: [`SwssError::Redis`].
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
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.full_key(key));
        for (f, v) in fvs {
            cmd.arg(f.as_ref()).arg(v.as_ref());
        }
        let _: Value = cmd.query_async(conn).await?;
        Ok(())
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

    /// `HGET TABLE<sep>key field`. `None` for a missing field or key; the
    /// value is cut at the first `@` (as `Table::hget`).
    ///
    /// Errors: [`SwssError::Redis`], [`SwssError::UnexpectedReply`].
    pub async fn hget<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, SwssError> {
        let full = self.full_key(key);
        let v: Value = redis::cmd("HGET")
            .arg(&full)
            .arg(field)
            .query_async(conn)
            .await?;
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
    /// Errors: [`SwssError::Redis`].
    pub async fn hset<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
        field: &str,
        value: &str,
    ) -> Result<(), SwssError> {
        let _: Value = redis::cmd("HSET")
            .arg(self.full_key(key))
            .arg(field)
            .arg(value)
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// `HDEL TABLE<sep>key field`. Source: `Table::hdel`.
    ///
    /// Errors: [`SwssError::Redis`].
    pub async fn hdel<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        key: &str,
        field: &str,
    ) -> Result<(), SwssError> {
        let _: Value = redis::cmd("HDEL")
            .arg(self.full_key(key))
            .arg(field)
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// All keys of the table, without the `TABLE<sep>` prefix, sorted and
    /// without duplicates.
    ///
    /// Deviation: the C++ `Table::getKeys` runs `KEYS TABLE<sep>*`, which
    /// blocks Redis for O(keyspace) (BEHAVIOR.md f.20). This uses
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

/// A bulk/simple string reply as text (lossy UTF-8); `None` for other types.
pub(crate) fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// Decodes an `HGETALL`-style reply (flat array of field, value, ... or a
/// RESP3 map) into pairs, in reply order.
pub(crate) fn value_to_pairs(v: &Value, context: &str) -> Result<FieldValues, SwssError> {
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
        let (next, batch) = match &reply {
            Value::Array(parts) if parts.len() == 2 => {
                let next = value_to_string(&parts[0]).and_then(|s| s.parse::<u64>().ok());
                match (next, &parts[1]) {
                    (Some(n), Value::Array(b)) => (n, b),
                    _ => return Err(SwssError::unexpected(context, &reply)),
                }
            }
            _ => return Err(SwssError::unexpected(context, &reply)),
        };
        for k in batch {
            match value_to_string(k) {
                Some(k) => {
                    keys.insert(k);
                }
                None => return Err(SwssError::unexpected(context, &reply)),
            }
        }
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
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
