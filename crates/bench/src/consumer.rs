//! The Redis clients the bench runs next to the daemons: an orchagent
//! stand-in popping a producer/consumer table ([`Pops`]) and a subscriber
//! thread timestamping every message on some channels ([`Subscriber`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis::Value;
use testbed::redis_server::RedisServer;

/// swss::ConsumerStateTable's pops script (same effects: SPOP a batch of
/// pending keys; per key a pending DEL wipes `T<S>key`, the state hash's
/// fields are HSET into `T<S>key`, the state hash is deleted), which also
/// returns how many Redis commands it ran, so that the consumer's own
/// commands can be subtracted exactly from `INFO commandstats`.
/// KEYS: `T_KEY_SET`, `T<S>`, `T_DEL_SET`. ARGV: batch size, `_`.
/// Returns `{commands, {{key, {f1, v1, ...}}, ...}}`.
const LUA_POPS_COUNTED: &str = r#"-- bench consumer: pops, counting its own commands
local n = 1
local out = {}
local popped = redis.call('SPOP', KEYS[1], tonumber(ARGV[1]))
for i = 1, #popped do
    local key = popped[i]
    local target = KEYS[2] .. key
    local state = ARGV[2] .. target
    n = n + 1
    if redis.call('SREM', KEYS[3], key) == 1 then
        redis.call('DEL', target)
        n = n + 1
    end
    local fv = redis.call('HGETALL', state)
    n = n + 1
    out[#out + 1] = {key, fv}
    for j = 1, #fv, 2 do
        redis.call('HSET', target, fv[j], fv[j + 1])
        n = n + 1
    end
    redis.call('DEL', state)
    n = n + 1
end
return {n, out}
"#;

/// One popped entry: key (without table prefix) and its fields (empty: DEL).
pub type Popped = (String, Vec<(String, String)>);

/// orchagent's side of one APPL_DB producer/consumer table, on its own
/// connection to DB 0. The script is loaded in [`Pops::new`] (so no
/// `SCRIPT LOAD` happens later); [`Pops::commands`] counts every command
/// sent since: one EVALSHA per pop plus the commands run inside it.
pub struct Pops {
    conn: redis::Connection,
    sha: String,
    key_set: String,
    prefix: String,
    del_set: String,
    batch: usize,
    commands: i64,
}

impl Pops {
    /// Connects to DB 0 and loads the script. `batch`: SPOP count
    /// (orchagent's default is 128).
    pub fn new(redis: &RedisServer, table: &str, batch: usize) -> anyhow::Result<Self> {
        Self::with_conn(redis.conn(0)?, table, batch)
    }

    /// As [`Pops::new`] on a connection to DB 0 the caller made (e.g. a
    /// reconnect after a Redis restart, from a thread without the server).
    pub fn with_conn(
        mut conn: redis::Connection,
        table: &str,
        batch: usize,
    ) -> anyhow::Result<Self> {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(LUA_POPS_COUNTED)
            .query(&mut conn)
            .context("SCRIPT LOAD pops")?;
        Ok(Pops {
            conn,
            sha,
            key_set: format!("{table}_KEY_SET"),
            prefix: format!("{table}:"),
            del_set: format!("{table}_DEL_SET"),
            batch: batch.max(1),
            commands: 0,
        })
    }

    /// Pops up to `batch` pending keys.
    pub fn pop(&mut self) -> anyhow::Result<Vec<Popped>> {
        let reply: Value = redis::cmd("EVALSHA")
            .arg(&self.sha)
            .arg(3)
            .arg(&self.key_set)
            .arg(&self.prefix)
            .arg(&self.del_set)
            .arg(self.batch)
            .arg("_")
            .query(&mut self.conn)
            .context("EVALSHA pops")?;
        self.commands += 1;
        let (n, popped) = parse_pops(&reply)?;
        self.commands += n;
        Ok(popped)
    }

    /// Pops until nothing is pending; returns how many entries were popped.
    pub fn drain(&mut self) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let p = self.pop()?;
            if p.is_empty() {
                return Ok(total);
            }
            total += p.len();
        }
    }

    /// Commands this consumer made Redis run since [`Pops::new`].
    pub fn commands(&self) -> i64 {
        self.commands
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn parse_pops(reply: &Value) -> anyhow::Result<(i64, Vec<Popped>)> {
    let Value::Array(top) = reply else {
        bail!("pops: unexpected reply {reply:?}");
    };
    let (Some(Value::Int(n)), Some(items)) = (top.first(), top.get(1)) else {
        bail!("pops: unexpected reply {reply:?}");
    };
    let items: &[Value] = match items {
        Value::Array(items) => items,
        Value::Nil => &[],
        other => bail!("pops: unexpected item list {other:?}"),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            bail!("pops: unexpected item {item:?}");
        };
        let (Some(key), Some(fvs)) = (pair.first().and_then(text), pair.get(1)) else {
            bail!("pops: unexpected item {item:?}");
        };
        let flat: Vec<String> = match fvs {
            Value::Array(v) => v.iter().filter_map(text).collect(),
            _ => Vec::new(),
        };
        let fvs = flat
            .chunks_exact(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect();
        out.push((key, fvs));
    }
    Ok((*n, out))
}

/// A message seen by a [`Subscriber`]: when it was read, its channel and
/// payload.
#[derive(Debug, Clone)]
pub struct Message {
    pub at: Instant,
    pub channel: String,
    pub payload: String,
}

/// A thread on its own connection, subscribed (SUBSCRIBE or PSUBSCRIBE)
/// before [`Subscriber::start`] returns, timestamping every message as it
/// reads it. Stops when dropped.
pub struct Subscriber {
    pub rx: Receiver<Message>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Subscriber {
    /// Subscribes to `channels` on DB 0 (patterns when `pattern`).
    pub fn start(redis: &RedisServer, channels: &[&str], pattern: bool) -> anyhow::Result<Self> {
        let mut conn = redis.conn(0)?;
        let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || -> anyhow::Result<()> {
            let mut ps = conn.as_pubsub();
            let sub = channels.iter().try_for_each(|c| {
                if pattern {
                    ps.psubscribe(c)
                } else {
                    ps.subscribe(c)
                }
            });
            let sub = sub.and_then(|()| ps.set_read_timeout(Some(Duration::from_millis(50))));
            if let Err(e) = sub {
                let _ = ready_tx.send(Err(anyhow::Error::new(e).context("SUBSCRIBE")));
                return Ok(());
            }
            let _ = ready_tx.send(Ok(()));
            while !stop2.load(Ordering::Relaxed) {
                match ps.get_message() {
                    Ok(msg) => {
                        let at = Instant::now();
                        let m = Message {
                            at,
                            channel: msg.get_channel_name().to_owned(),
                            payload: msg.get_payload::<String>().unwrap_or_default(),
                        };
                        if tx.send(m).is_err() {
                            return Ok(());
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    // A signal interrupted the blocking read (seen once in
                    // `latency` with the C++ daemon running): nothing was
                    // read, the connection is intact.
                    // (redis-rs keeps the io::Error private: its text.)
                    Err(e) if e.is_io_error() && e.to_string().contains("(os error 4)") => {}
                    Err(e) => return Err(anyhow::Error::new(e).context("subscriber read")),
                }
            }
            Ok(())
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => bail!("subscriber thread did not subscribe"),
        }
        Ok(Subscriber {
            rx,
            stop,
            handle: Some(handle),
        })
    }

    /// The next message, waiting up to `timeout`; `None` on timeout.
    ///
    /// Errors: the subscriber thread ended (its error, if any).
    pub fn next(&mut self, timeout: Duration) -> anyhow::Result<Option<Message>> {
        match self.rx.recv_timeout(timeout) {
            Ok(m) => Ok(Some(m)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                let err = match self.handle.take().map(JoinHandle::join) {
                    Some(Ok(Err(e))) => e,
                    _ => anyhow::anyhow!("subscriber thread ended"),
                };
                Err(err)
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
