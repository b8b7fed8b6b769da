//! An in-memory Redis for the conformance scenarios: one [`Db`] per SONiC
//! database, the few commands the daemons' writes use, and the consumers'
//! side of the producer/consumer protocol (docs/behavior.md a.4, a.5).
//!
//! The daemons' own Redis code runs against it unchanged through [`Conn`],
//! a [`redis::aio::ConnectionLike`] that executes each command on a [`Db`]
//! and records it for the transcript, so what a scenario's `expected` shows
//! is what the daemon sends, and what the consumer then pops
//! ([`Db::pop`]) follows from those commands, not from the daemon's intent.
//!
//! Commands: `MULTI` / `EXEC` (queued, then run in order), `SADD`, `SREM`,
//! `HSET`, `DEL`, `PUBLISH`, `HGET`, `HGETALL`, `HMGET`, `HEXISTS`, and
//! `EVALSHA` of the two producer scripts (single set and del, by their
//! argument layout, a.4). Anything else is an error reply, so a scenario
//! fails loudly when a daemon starts sending something new.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use swss::{ConsumerView, FieldValues, ProducerStateTable};

use super::quote;

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// A SET.
    Set(BTreeSet<String>),
    /// A HASH, fields in insertion order (as Redis lists a small hash).
    Hash(FieldValues),
}

/// One database's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Db {
    keys: BTreeMap<String, Val>,
}

/// One key the consumer popped (docs/behavior.md a.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popped {
    /// The key, without the table prefix.
    pub key: String,
    /// The fields the consumer gets; empty: the consumer sees a DEL.
    pub fvs: FieldValues,
    /// The key was in `<T>_DEL_SET`: the table entry was wiped first.
    pub wiped: bool,
    /// `<T><S><key>` existed before the pop.
    pub existed: bool,
}

impl Popped {
    /// `SET <key> f=v ...` or `DEL <key>`, with ` (after DEL)` when the
    /// entry was wiped and then set again.
    pub fn describe(&self) -> String {
        if self.fvs.is_empty() {
            format!("DEL {}", self.key)
        } else {
            let after = if self.wiped && self.existed {
                " (entry wiped first)"
            } else {
                ""
            };
            format!("SET {} {}{after}", self.key, super::format_fvs(&self.fvs))
        }
    }
}

/// The SHA1s of the producer's single set and single del scripts (taken
/// from what [`ProducerStateTable::queue_set`] / `queue_del` send).
static PRODUCER_SHAS: LazyLock<(String, String)> = LazyLock::new(|| {
    let p = ProducerStateTable::with_names("T", ':', 0);
    let mut pipe = redis::pipe();
    p.queue_set(&mut pipe, "k", &[("f", "v")]);
    p.queue_del(&mut pipe, "k");
    let sha = |cmd: Option<&Cmd>| {
        cmd.and_then(|c| args_of(c).get(1).cloned())
            .unwrap_or_default()
    };
    let mut cmds = pipe.cmd_iter();
    let set = sha(cmds.next());
    let del = sha(cmds.next());
    (set, del)
});

/// A command's arguments as text (lossy UTF-8).
pub fn args_of(cmd: &Cmd) -> Vec<String> {
    cmd.args_iter()
        .map(|a| match a {
            redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
            _ => "<cursor>".to_string(),
        })
        .collect()
}

/// A command as the transcript prints it: its words, quoted when needed,
/// the producer scripts' SHA1 shown as `<set>` / `<del>`.
pub fn render(args: &[String]) -> String {
    let (set, del) = &*PRODUCER_SHAS;
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 1 && args[0].eq_ignore_ascii_case("EVALSHA") {
                if a == set {
                    return "<set>".to_string();
                }
                if a == del {
                    return "<del>".to_string();
                }
            }
            quote(a)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Db {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hash at `key`, if it is one.
    pub fn hash(&self, key: &str) -> Option<&FieldValues> {
        match self.keys.get(key) {
            Some(Val::Hash(h)) => Some(h),
            _ => None,
        }
    }

    /// The members of the set at `key` (sorted; empty when absent).
    pub fn members(&self, key: &str) -> Vec<String> {
        match self.keys.get(key) {
            Some(Val::Set(s)) => s.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// `HSET key f v ...` (fields merged in, order of first write kept).
    /// Returns how many fields were new. Replaces a key of another type.
    pub fn hset(&mut self, key: &str, fvs: &[(String, String)]) -> usize {
        let entry = self
            .keys
            .entry(key.to_string())
            .or_insert_with(|| Val::Hash(Vec::new()));
        if !matches!(entry, Val::Hash(_)) {
            *entry = Val::Hash(Vec::new());
        }
        let Val::Hash(h) = entry else { return 0 };
        let mut added = 0;
        for (f, v) in fvs {
            match h.iter_mut().find(|(hf, _)| hf == f) {
                Some(pair) => pair.1 = v.clone(),
                None => {
                    h.push((f.clone(), v.clone()));
                    added += 1;
                }
            }
        }
        added
    }

    /// `DEL key`; true when it existed.
    pub fn del(&mut self, key: &str) -> bool {
        self.keys.remove(key).is_some()
    }

    /// `SADD key m...`; how many were new. Replaces a key of another type.
    pub fn sadd(&mut self, key: &str, members: &[String]) -> usize {
        let entry = self
            .keys
            .entry(key.to_string())
            .or_insert_with(|| Val::Set(BTreeSet::new()));
        if !matches!(entry, Val::Set(_)) {
            *entry = Val::Set(BTreeSet::new());
        }
        let Val::Set(s) = entry else { return 0 };
        members.iter().filter(|m| s.insert((*m).clone())).count()
    }

    /// `SREM key m...`; how many were there. An emptied set is removed.
    pub fn srem(&mut self, key: &str, members: &[String]) -> usize {
        let Some(Val::Set(s)) = self.keys.get_mut(key) else {
            return 0;
        };
        let n = members.iter().filter(|m| s.remove(*m)).count();
        if s.is_empty() {
            self.keys.remove(key);
        }
        n
    }

    /// Every hash whose key starts with `prefix`, as (rest of the key,
    /// fields), sorted.
    pub fn hashes_under(&self, prefix: &str) -> Vec<(String, FieldValues)> {
        self.keys
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, v)| match v {
                Val::Hash(h) => Some((k[prefix.len()..].to_string(), h.clone())),
                Val::Set(_) => None,
            })
            .collect()
    }

    /// Runs one command (module docs for the set understood).
    ///
    /// Errors: an unknown command or a wrong number of arguments, as the
    /// text of an error reply.
    pub fn exec(&mut self, args: &[String]) -> Result<Value, String> {
        let Some(name) = args.first() else {
            return Err("ERR empty command".to_string());
        };
        let rest = &args[1..];
        let arity = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!("ERR wrong number of arguments for '{name}'"))
            }
        };
        let int = |n: usize| Value::Int(n as i64);
        match name.to_ascii_uppercase().as_str() {
            "SADD" => {
                arity(rest.len() >= 2)?;
                Ok(int(self.sadd(&rest[0], &rest[1..])))
            }
            "SREM" => {
                arity(rest.len() >= 2)?;
                Ok(int(self.srem(&rest[0], &rest[1..])))
            }
            "HSET" => {
                arity(rest.len() >= 3 && rest.len() % 2 == 1)?;
                let fvs: FieldValues = rest[1..]
                    .chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect();
                Ok(int(self.hset(&rest[0], &fvs)))
            }
            "DEL" => {
                arity(!rest.is_empty())?;
                Ok(int(rest.iter().filter(|k| self.del(k)).count()))
            }
            "PUBLISH" => {
                arity(rest.len() == 2)?;
                Ok(Value::Int(0))
            }
            "HGET" => {
                arity(rest.len() == 2)?;
                Ok(self
                    .hash(&rest[0])
                    .and_then(|h| h.iter().find(|(f, _)| *f == rest[1]))
                    .map_or(Value::Nil, |(_, v)| bulk(v)))
            }
            "HGETALL" => {
                arity(rest.len() == 1)?;
                let h = self.hash(&rest[0]).cloned().unwrap_or_default();
                Ok(Value::Array(
                    h.iter().flat_map(|(f, v)| [bulk(f), bulk(v)]).collect(),
                ))
            }
            "HMGET" => {
                arity(rest.len() >= 2)?;
                let h = self.hash(&rest[0]).cloned().unwrap_or_default();
                Ok(Value::Array(
                    rest[1..]
                        .iter()
                        .map(|f| {
                            h.iter()
                                .find(|(hf, _)| hf == f)
                                .map_or(Value::Nil, |(_, v)| bulk(v))
                        })
                        .collect(),
                ))
            }
            "HEXISTS" => {
                arity(rest.len() == 2)?;
                let has = self
                    .hash(&rest[0])
                    .is_some_and(|h| h.iter().any(|(f, _)| *f == rest[1]));
                Ok(Value::Int(i64::from(has)))
            }
            "EVALSHA" => self.evalsha(rest),
            other => Err(format!("ERR the conformance Redis does not know {other:?}")),
        }
    }

    /// `EVALSHA` of a producer script (docs/behavior.md a.4 layouts).
    fn evalsha(&mut self, rest: &[String]) -> Result<Value, String> {
        let (set, del) = &*PRODUCER_SHAS;
        let bad = || "ERR malformed producer EVALSHA".to_string();
        let sha = rest.first().ok_or_else(bad)?;
        let numkeys: usize = rest.get(1).and_then(|n| n.parse().ok()).ok_or_else(bad)?;
        let keys = rest.get(2..2 + numkeys).ok_or_else(bad)?;
        let argv = &rest[2 + numkeys..];
        let (channel, key_set) = (keys.first().ok_or_else(bad)?, keys.get(1).ok_or_else(bad)?);
        let key = argv.get(1).ok_or_else(bad)?;
        let _ = channel;
        if sha == set {
            let states = &keys[2..];
            let pairs = &argv[2..];
            if pairs.len() != 2 * states.len() {
                return Err(bad());
            }
            self.sadd(key_set, std::slice::from_ref(key));
            for (i, state) in states.iter().enumerate() {
                self.hset(state, &[(pairs[2 * i].clone(), pairs[2 * i + 1].clone())]);
            }
            Ok(Value::Nil)
        } else if sha == del {
            let (state, del_set) = (keys.get(2).ok_or_else(bad)?, keys.get(3).ok_or_else(bad)?);
            self.sadd(key_set, std::slice::from_ref(key));
            self.sadd(del_set, std::slice::from_ref(key));
            self.del(state);
            Ok(Value::Nil)
        } else {
            Err("NOSCRIPT No matching script".to_string())
        }
    }

    /// The consumer pops every pending key of `producer`'s table, as
    /// swss-common's pops script (docs/behavior.md a.5): per key, sorted
    /// (SPOP's order is random), the table entry is wiped when the key is
    /// in `<T>_DEL_SET`, then the state hash is merged into it and deleted.
    pub fn pop(&mut self, producer: &ProducerStateTable) -> Vec<Popped> {
        let keys = self.members(producer.key_set_name());
        self.del(producer.key_set_name());
        let mut out = Vec::new();
        for key in keys {
            let table_key = table_key(producer, &key);
            let existed = self.exists(&table_key);
            let wiped = self.srem(producer.del_set_name(), std::slice::from_ref(&key)) == 1;
            if wiped {
                self.del(&table_key);
            }
            let state = producer.state_key(&key);
            let fvs = self.hash(&state).cloned().unwrap_or_default();
            if !fvs.is_empty() {
                self.hset(&table_key, &fvs);
            }
            self.del(&state);
            out.push(Popped {
                key,
                fvs,
                wiped,
                existed,
            });
        }
        out
    }

    /// `producer`'s table as its consumer will see it once everything
    /// pending is popped ([`ConsumerView::overlay`], as
    /// `swss::read_consumer_view` reads it).
    pub fn consumer_view(&self, producer: &ProducerStateTable) -> ConsumerView {
        let consumed = self.hashes_under(&table_key(producer, ""));
        let pending = self.hashes_under(&producer.state_key(""));
        let key_set = self.members(producer.key_set_name()).into_iter().collect();
        let del_set = self.members(producer.del_set_name()).into_iter().collect();
        ConsumerView::overlay(consumed, pending, &key_set, &del_set)
    }

    /// Operations of `producer` not yet popped: `<T>_KEY_SET`,
    /// `<T>_DEL_SET` and the state hashes are dropped (what the warm start's
    /// `ProducerStateTable::clear` does, docs/behavior.md b.1 step 3).
    /// Returns how many keys were pending.
    pub fn drop_pending(&mut self, producer: &ProducerStateTable) -> usize {
        let pending = self.members(producer.key_set_name()).len();
        self.del(producer.key_set_name());
        self.del(producer.del_set_name());
        for (rest, _) in self.hashes_under(&producer.state_key("")) {
            self.del(&producer.state_key(&rest));
        }
        pending
    }
}

/// `<T><S><key>`: the consumed table entry of `key`.
pub fn table_key(producer: &ProducerStateTable, key: &str) -> String {
    format!("{}{}{}", producer.table_name(), producer.separator(), key)
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

// ===== the connection =====

/// What the next pipeline (or command) on a [`Conn`] meets instead of an
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An error reply (`<CODE> <detail>`, e.g. `OOM command not allowed`):
    /// nothing is applied.
    ErrorReply(String),
    /// The connection is lost before the reply: nothing is applied.
    Lost,
}

impl Fault {
    /// The error the client sees.
    pub fn error(&self) -> RedisError {
        match self {
            Fault::ErrorReply(text) => {
                let (code, detail) = match text.split_once(' ') {
                    Some((c, d)) => (c.to_string(), Some(d.to_string())),
                    None => (text.clone(), None),
                };
                redis::make_extension_error(code, detail)
            }
            Fault::Lost => RedisError::from(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            )),
        }
    }

    /// How the transcript shows it.
    pub fn describe(&self) -> String {
        match self {
            Fault::ErrorReply(text) => format!("error reply {}: nothing applied", quote(text)),
            Fault::Lost => "connection lost before the reply: nothing applied".to_string(),
        }
    }
}

/// A [`redis::aio::ConnectionLike`] over a [`Db`]: every command is run
/// there and recorded in `log` as `<db name>: <command>`; a `fault` is met
/// by the next request instead (recorded too, nothing applied).
pub struct Conn<'a> {
    /// The database.
    pub db: &'a mut Db,
    /// Its name in the transcript (`APPL_DB`, `STATE_DB`, ...).
    pub name: &'static str,
    /// Where the commands are recorded.
    pub log: &'a mut Vec<String>,
    /// Met by the next request.
    pub fault: Option<Fault>,
}

impl Conn<'_> {
    fn run(&mut self, cmds: &[Vec<String>]) -> Result<Vec<Value>, RedisError> {
        for args in cmds {
            self.log.push(format!("{}: {}", self.name, render(args)));
        }
        if let Some(fault) = self.fault.take() {
            self.log
                .push(format!("{}: {}", self.name, fault.describe()));
            return Err(fault.error());
        }
        let mut replies = Vec::with_capacity(cmds.len());
        let mut queued: Option<Vec<&Vec<String>>> = None;
        for args in cmds {
            let name = args
                .first()
                .map(|s| s.to_ascii_uppercase())
                .unwrap_or_default();
            let reply = match (name.as_str(), queued.as_mut()) {
                ("MULTI", None) => {
                    queued = Some(Vec::new());
                    Value::Okay
                }
                ("EXEC", Some(_)) => {
                    let cmds = queued.take().unwrap_or_default();
                    Value::Array(cmds.into_iter().map(|a| self.exec_one(a)).collect())
                }
                (_, Some(q)) => {
                    q.push(args);
                    Value::SimpleString("QUEUED".to_string())
                }
                (_, None) => self.exec_one(args),
            };
            replies.push(reply);
        }
        Ok(replies)
    }

    fn exec_one(&mut self, args: &[String]) -> Value {
        match self.db.exec(args) {
            Ok(v) => v,
            Err(text) => {
                self.log
                    .push(format!("{}: error reply {}", self.name, quote(&text)));
                let (code, detail) = match text.split_once(' ') {
                    Some((c, d)) => (c.to_string(), Some(d.to_string())),
                    None => (text.clone(), None),
                };
                match redis::ServerError::try_from(redis::make_extension_error(code, detail)) {
                    Ok(e) => Value::ServerError(e),
                    Err(_) => Value::Nil,
                }
            }
        }
    }
}

impl redis::aio::ConnectionLike for Conn<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let result = self
            .run(&[args_of(cmd)])
            .map(|mut r| r.pop().unwrap_or(Value::Nil));
        Box::pin(async move { result })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let cmds: Vec<Vec<String>> = pipeline.cmd_iter().map(args_of).collect();
        let result = self
            .run(&cmds)
            .map(|r| r.into_iter().skip(offset).take(count).collect());
        Box::pin(async move { result })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn producer_batch_and_single_ops_pop_as_the_consumer_sees_them() {
        let p = ProducerStateTable::with_names("NEIGH_TABLE", ':', 0);
        let mut db = Db::new();
        db.hset("NEIGH_TABLE:k1", &[(s("neigh"), s("old"))]);
        let mut pipe = redis::pipe();
        p.queue_batch_del(&mut pipe, &["k1"]);
        p.queue_batch_set(&mut pipe, &[(s("k1"), vec![(s("neigh"), s("new"))])]);
        p.queue_del(&mut pipe, "k2");
        let mut log = Vec::new();
        let mut conn = Conn {
            db: &mut db,
            name: "APPL_DB",
            log: &mut log,
            fault: None,
        };
        let r = futures::executor::block_on(p.flush(&mut conn, &pipe));
        assert!(r.is_ok(), "{r:?}");
        assert!(log.contains(&s("APPL_DB: HSET _NEIGH_TABLE:k1 neigh new")));
        assert!(log.contains(&s(
            "APPL_DB: EVALSHA <del> 4 NEIGH_TABLE_CHANNEL@0 NEIGH_TABLE_KEY_SET _NEIGH_TABLE:k2 NEIGH_TABLE_DEL_SET G k2 '' ''"
        )));
        let view = db.consumer_view(&p);
        assert_eq!(view.len(), 1);
        let popped: Vec<String> = db.pop(&p).iter().map(Popped::describe).collect();
        assert_eq!(popped, ["SET k1 neigh=new (entry wiped first)", "DEL k2"]);
        assert_eq!(
            db.hash("NEIGH_TABLE:k1"),
            Some(&vec![(s("neigh"), s("new"))])
        );
        assert!(db.pop(&p).is_empty());
    }

    #[test]
    fn a_fault_applies_nothing_and_is_recorded() {
        let p = ProducerStateTable::with_names("PORT_TABLE", ':', 0);
        let mut db = Db::new();
        let mut log = Vec::new();
        let mut conn = Conn {
            db: &mut db,
            name: "APPL_DB",
            log: &mut log,
            fault: Some(Fault::ErrorReply(s("OOM command not allowed"))),
        };
        let r = futures::executor::block_on(p.set(&mut conn, "PortInitDone", &[("lanes", "0")]));
        let e = r.expect_err("the fault");
        assert!(!e.is_connection_error());
        assert_eq!(db, Db::new());
        assert_eq!(
            log.last().map(String::as_str),
            Some("APPL_DB: error reply \"OOM command not allowed\": nothing applied")
        );
    }
}
