//! Shared helpers for the swss integration tests: a private redis-server and
//! raw (non-swss) views of what is in it.
#![allow(dead_code)]

use std::collections::BTreeSet;

use futures::StreamExt;
use redis::aio::PubSubStream;
use redis::Commands;
use swss::{DbConfig, DbConnector};
use testbed::redis_server::RedisServer;

/// A server plus its database_config.json, parsed.
pub struct Env {
    pub server: RedisServer,
    pub config: DbConfig,
}

impl Env {
    pub fn start() -> Env {
        let server = RedisServer::start().expect("start redis-server");
        let config = DbConfig::load(server.db_config_path()).expect("load db config");
        Env { server, config }
    }

    pub fn connector(&self, db: &str) -> DbConnector {
        DbConnector::new(self.config.location(db).expect("location")).expect("connector")
    }

    pub fn raw(&self, db_id: u32) -> redis::Connection {
        self.server.conn(db_id).expect("raw connection")
    }
}

pub fn fv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

pub fn smembers(conn: &mut redis::Connection, key: &str) -> BTreeSet<String> {
    conn.smembers(key).expect("SMEMBERS")
}

/// HGETALL in Redis order (insertion order for small hashes).
pub fn hgetall(conn: &mut redis::Connection, key: &str) -> Vec<(String, String)> {
    let flat: Vec<String> = redis::cmd("HGETALL").arg(key).query(conn).expect("HGETALL");
    flat.chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect()
}

pub fn exists(conn: &mut redis::Connection, key: &str) -> bool {
    conn.exists(key).expect("EXISTS")
}

/// All keys of a DB, sorted (test DBs are tiny).
pub fn all_keys(conn: &mut redis::Connection) -> BTreeSet<String> {
    conn.keys("*").expect("KEYS")
}

/// A raw SUBSCRIBE on one channel, independent of the swss code.
pub struct ChannelCounter {
    stream: PubSubStream,
    channel: String,
    seq: u64,
}

impl ChannelCounter {
    pub async fn new(server: &RedisServer, channel: &str) -> ChannelCounter {
        let client = redis::Client::open(redis::ConnectionAddr::Unix(
            server.socket_path().to_path_buf(),
        ))
        .expect("client");
        let mut ps = client.get_async_pubsub().await.expect("pubsub");
        ps.subscribe(channel).await.expect("SUBSCRIBE");
        ChannelCounter {
            stream: ps.into_on_message(),
            channel: channel.to_string(),
            seq: 0,
        }
    }

    /// Payloads received since the last call: publishes a marker from a new
    /// connection and collects messages until the marker comes back (Redis
    /// delivers a channel's messages in order).
    pub async fn take(&mut self, server: &RedisServer) -> Vec<String> {
        self.seq += 1;
        let marker = format!("marker-{}", self.seq);
        let mut c = server.conn(0).expect("conn");
        let _: i64 = c.publish(&self.channel, &marker).expect("PUBLISH");
        let mut got = Vec::new();
        loop {
            let msg = self.stream.next().await.expect("subscription open");
            let payload: String = msg.get_payload().expect("payload");
            if payload == marker {
                return got;
            }
            got.push(payload);
        }
    }
}

/// `INFO commandstats` calls of one command (0 when never called).
pub fn calls(raw: &mut redis::Connection, cmd: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(raw)
        .expect("INFO");
    let prefix = format!("cmdstat_{cmd}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map(|n| n.parse().expect("calls"))
        .unwrap_or(0)
}

/// The process-wide count of bad entries of `table` in `db`
/// (`swss::bad_entry`).
pub fn bad(db: &str, table: &str) -> u64 {
    swss::bad_entry::counts()
        .into_iter()
        .find(|(d, t, _)| d == db && t == table)
        .map_or(0, |(_, _, n)| n)
}
