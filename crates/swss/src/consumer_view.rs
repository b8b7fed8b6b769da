//! [`ConsumerView`]: what a ProducerStateTable's table will hold once the
//! consumer (orchagent) has popped everything pending, read from Redis so
//! that a pop running at the same time cannot distort it.
//!
//! The producer/consumer protocol (docs/behavior.md a.4/a.5) keeps one entry in
//! up to four places: the consumed hash `<T><S><key>`, membership of
//! `<T>_KEY_SET` and `<T>_DEL_SET`, and the state hash `_<T><S><key>`. A pop
//! moves an entry from the last three into the first, atomically. Reading
//! the places in separate steps lets a pop fall between them: the key is
//! then seen neither pending nor with its new consumed value, and looks
//! different from what was written. [`read_consumer_view`] reads all four
//! places of a key inside one script call, so every key's view is taken at
//! one instant, while Redis is blocked only for one chunk of keys at a time.

use std::collections::{HashMap, HashSet};

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use crate::error::SwssError;
use crate::producer_state::ProducerStateTable;
use crate::table::{scan_prefix, value_to_pairs};
use crate::FieldValues;

/// Keys read per script call by [`read_consumer_view`]: bounds how long one
/// call blocks Redis (about a millisecond).
pub const VIEW_CHUNK: usize = 1000;

/// Reads the four places of each key in ARGV[5..] (our own text).
/// ARGV: `<T><S>`, `_<T><S>`, `<T>_KEY_SET`, `<T>_DEL_SET`, keys...
/// Per key, four replies: the consumed hash (flat pairs, or 0 when the key
/// is not a hash), 1/0 in KEY_SET, 1/0 in DEL_SET, the state hash when in
/// KEY_SET (flat pairs; empty otherwise; 0 when not a hash).
const LUA_VIEW: &str = r#"-- sonic-syncd: per-key snapshot of a producer/consumer table
local function hash(key)
    local r = redis.pcall('HGETALL', key)
    if type(r) == 'table' and r.err then
        return 0
    end
    return r
end
local out = {}
for i = 5, #ARGV do
    local key = ARGV[i]
    local pending = redis.call('SISMEMBER', ARGV[3], key)
    out[#out + 1] = hash(ARGV[1] .. key)
    out[#out + 1] = pending
    out[#out + 1] = redis.call('SISMEMBER', ARGV[4], key)
    if pending == 1 then
        out[#out + 1] = hash(ARGV[2] .. key)
    else
        out[#out + 1] = {}
    end
end
return out
"#;

/// What the consumer's table will hold for every present key once all
/// pending keys are popped (keys without the `<T><S>` prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerView {
    entries: HashMap<String, FieldValues>,
}

// ===== impl ConsumerView =====

impl ConsumerView {
    /// An empty view (the table holds nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the view the way swss-common's pops script would leave the
    /// table (a.5): start from `consumed` (`<T><S><key>` hashes); for each
    /// key in `key_set` (`<T>_KEY_SET`): if it is in `del_set`
    /// (`<T>_DEL_SET`) the consumed hash is wiped, then the fields of its
    /// state hash (`_<T><S><key>`, from `pending`) are merged in (HSET
    /// semantics). State hashes of keys not in `key_set` are ignored, as by
    /// the pops script.
    pub fn overlay(
        consumed: impl IntoIterator<Item = (String, FieldValues)>,
        pending: impl IntoIterator<Item = (String, FieldValues)>,
        key_set: &HashSet<String>,
        del_set: &HashSet<String>,
    ) -> Self {
        let mut entries: HashMap<String, FieldValues> = consumed
            .into_iter()
            .filter(|(_, fvs)| !fvs.is_empty())
            .collect();
        let mut pending: HashMap<String, FieldValues> = pending.into_iter().collect();
        for key in key_set {
            let state = pending.remove(key).unwrap_or_default();
            let consumed = entries.remove(key).unwrap_or_default();
            if let Some(fvs) = pop_one(consumed, del_set.contains(key), state) {
                entries.insert(key.clone(), fvs);
            }
        }
        ConsumerView { entries }
    }

    /// Adds or replaces one key's content (builder for tests and tools).
    pub fn insert(&mut self, key: impl Into<String>, fvs: FieldValues) {
        self.entries.insert(key.into(), fvs);
    }

    /// The content of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&FieldValues> {
        self.entries.get(key)
    }

    /// Number of keys present.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every present key and its fields, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValues)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// One pending key popped (a.5): the consumed hash, wiped when the key is in
/// the DEL set, with the state hash's fields merged in. `None` when nothing
/// is left.
fn pop_one(mut consumed: FieldValues, deleted: bool, state: FieldValues) -> Option<FieldValues> {
    if deleted {
        consumed.clear();
    }
    for (f, v) in state {
        match consumed.iter_mut().find(|(have, _)| *have == f) {
            Some(slot) => slot.1 = v,
            None => consumed.push((f, v)),
        }
    }
    (!consumed.is_empty()).then_some(consumed)
}

/// Reads `producer`'s table as the consumer will see it once it has popped
/// everything pending ([`ConsumerView::overlay`]'s rules), each key's four
/// places at one instant (see the module doc).
///
/// Keys: `SMEMBERS <T>_KEY_SET`, then `SCAN MATCH <T><S>*`; a key present in
/// neither when its step ran is in neither place for the whole step (SCAN
/// lists every key present throughout, and a key the consumer adds to the
/// table must have been pending before), so no present key is missed. Then
/// one script call per [`VIEW_CHUNK`] keys. `db` names the database in
/// reports: a consumed or state hash that is not a hash is reported as a
/// bad entry ([`crate::bad_entry`]) and read as empty.
///
/// Errors: [`SwssError::Redis`], [`SwssError::UnexpectedReply`] for a
/// reply of the wrong shape.
pub async fn read_consumer_view<C: ConnectionLike + Send>(
    conn: &mut C,
    producer: &ProducerStateTable,
    db: &str,
) -> Result<ConsumerView, SwssError> {
    let sep = producer.separator();
    let prefix = format!("{}{}", producer.table_name(), sep);
    let state_prefix = producer.state_key("");
    let pending: Vec<String> = redis::cmd("SMEMBERS")
        .arg(producer.key_set_name())
        .query_async(conn)
        .await?;
    let mut keys: Vec<String> = scan_prefix(conn, &prefix)
        .await?
        .into_iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
        .collect();
    let listed: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let extra: Vec<String> = pending
        .into_iter()
        .filter(|k| !listed.contains(k.as_str()))
        .collect();
    drop(listed);
    keys.extend(extra);
    let script = Script::new(LUA_VIEW);
    let mut view = ConsumerView::new();
    for chunk in keys.chunks(VIEW_CHUNK) {
        let mut inv = script.prepare_invoke();
        inv.arg(&prefix)
            .arg(&state_prefix)
            .arg(producer.key_set_name())
            .arg(producer.del_set_name());
        for k in chunk {
            inv.arg(k);
        }
        let reply: Value = inv.invoke_async(conn).await?;
        for (key, fvs) in parse_view_reply(&reply, chunk, &prefix, &state_prefix, db)? {
            view.entries.insert(key, fvs);
        }
    }
    Ok(view)
}

/// Decodes the reply of the view script for the keys `chunk` (the keys
/// without prefix, in the order they were passed): what each present key
/// will hold once popped ([`ConsumerView::overlay`]'s rules), in `chunk`
/// order; keys that will be absent are left out.
///
/// Shape: an array of exactly 4 items per key: the consumed hash
/// `<prefix><key>`, integer 1 when the key is in `<T>_KEY_SET` (anything
/// else means no), integer 1 when it is in `<T>_DEL_SET` (likewise), and
/// the state hash `<state_prefix><key>` (read only when in the KEY_SET).
/// A hash is an `HGETALL`-style reply ([`crate::table::value_to_pairs`]),
/// or integer 0 for a key that is not a hash, which is reported as a bad
/// entry of `db` ([`crate::bad_entry`]) and read as empty.
///
/// Errors: [`SwssError::UnexpectedReply`] when the reply is not an array,
/// its length is not `4 * chunk.len()`, or a hash read is malformed.
pub fn parse_view_reply(
    reply: &Value,
    chunk: &[String],
    prefix: &str,
    state_prefix: &str,
    db: &str,
) -> Result<Vec<(String, FieldValues)>, SwssError> {
    let Value::Array(items) = reply else {
        return Err(SwssError::unexpected("view script", reply));
    };
    if items.len() != chunk.len() * 4 {
        return Err(SwssError::unexpected("view script", &items.len()));
    }
    let mut out = Vec::with_capacity(chunk.len());
    for (key, parts) in chunk.iter().zip(items.chunks(4)) {
        let consumed = view_hash(&parts[0], db, &format!("{prefix}{key}"))?;
        let in_key_set = parts[1] == Value::Int(1);
        let in_del_set = parts[2] == Value::Int(1);
        let entry = if in_key_set {
            let state = view_hash(&parts[3], db, &format!("{state_prefix}{key}"))?;
            pop_one(consumed, in_del_set, state)
        } else {
            (!consumed.is_empty()).then_some(consumed)
        };
        if let Some(fvs) = entry {
            out.push((key.clone(), fvs));
        }
    }
    Ok(out)
}

/// One hash of the view script's reply: pairs, or (integer 0) a key that is
/// not a hash, reported as a bad entry and read as empty.
fn view_hash(v: &Value, db: &str, full_key: &str) -> Result<FieldValues, SwssError> {
    match v {
        Value::Int(0) => {
            crate::bad_entry::report(db, full_key, "not a hash (WRONGTYPE)");
            Ok(Vec::new())
        }
        v => value_to_pairs(v, &format!("HGETALL {full_key}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fv(pairs: &[(&str, &str)]) -> FieldValues {
        pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pop_merges_or_wipes() {
        let old = fv(&[("neigh", "a"), ("family", "IPv4")]);
        let new = fv(&[("neigh", "b")]);
        assert_eq!(
            pop_one(old.clone(), false, new.clone()),
            Some(fv(&[("neigh", "b"), ("family", "IPv4")]))
        );
        assert_eq!(pop_one(old.clone(), true, new.clone()), Some(new));
        assert_eq!(pop_one(old, true, Vec::new()), None);
    }

    #[test]
    fn view_reply_four_items_per_key() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let keys = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let reply = Value::Array(vec![
            // a: consumed only
            Value::Array(vec![b("neigh"), b("1")]),
            Value::Int(0),
            Value::Int(0),
            Value::Array(vec![]),
            // b: consumed, pending DEL then SET
            Value::Array(vec![b("neigh"), b("2"), b("x"), b("y")]),
            Value::Int(1),
            Value::Int(1),
            Value::Array(vec![b("neigh"), b("3")]),
            // c: not a hash, pending DEL with nothing to set
            Value::Int(0),
            Value::Int(1),
            Value::Int(1),
            Value::Array(vec![]),
        ]);
        let got = parse_view_reply(&reply, &keys, "T:", "_T:", "APPL_DB").unwrap();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), fv(&[("neigh", "1")])),
                ("b".to_string(), fv(&[("neigh", "3")])),
            ]
        );
        let short = Value::Array(vec![Value::Nil; 11]);
        assert!(matches!(
            parse_view_reply(&short, &keys, "T:", "_T:", "APPL_DB"),
            Err(SwssError::UnexpectedReply { .. })
        ));
        assert!(parse_view_reply(&Value::Nil, &keys, "T:", "_T:", "APPL_DB").is_err());
    }

    #[test]
    fn overlay_follows_the_pops_script() {
        let consumed = vec![
            ("a".to_string(), fv(&[("neigh", "1")])),
            ("b".to_string(), fv(&[("neigh", "2")])),
        ];
        let pending = vec![
            ("b".to_string(), Vec::new()),
            ("c".to_string(), fv(&[("neigh", "3")])),
            ("d".to_string(), fv(&[("neigh", "4")])),
        ];
        let key_set: HashSet<String> = ["b", "c"].iter().map(|s| s.to_string()).collect();
        let del_set: HashSet<String> = ["b"].iter().map(|s| s.to_string()).collect();
        let v = ConsumerView::overlay(consumed, pending, &key_set, &del_set);
        assert_eq!(v.get("a"), Some(&fv(&[("neigh", "1")])));
        assert_eq!(v.get("b"), None);
        assert_eq!(v.get("c"), Some(&fv(&[("neigh", "3")])));
        assert_eq!(v.get("d"), None, "state hash without KEY_SET membership");
        assert_eq!(v.len(), 2);
    }
}
