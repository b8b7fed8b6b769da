//! Shared helpers of the neighsyncd integration tests: a real redis-server,
//! the real kernel in namespaces, the real binary.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use redis::Commands;
use swss::consumer_state::{KeyOpFieldValues, Op};
use swss::{ConsumerStateTable, DbConfig, DbConnector};
use testbed::daemon::Daemon;
use testbed::netns::{NeighTopology, NetNs};
use testbed::redis_server::RedisServer;

/// Upper bound for every wait (poll with a deadline, never a fixed sleep).
pub const DEADLINE: Duration = Duration::from_secs(10);

pub const BIN: &str = env!("CARGO_BIN_EXE_neighsyncd");

/// The log line printed when the start-up dump has been handed to the writer.
pub const READY: &str = "cold start: kernel dump done";

/// Poll `f` until it returns `Some`, up to [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start neighsyncd inside `ns` against `redis`, with extra args.
pub fn start_daemon(ns: &NetNs, redis: &RedisServer, extra: &[&str]) -> Daemon {
    let cfg = redis.db_config_path().to_str().unwrap().to_owned();
    let mut args = vec!["--db-config", cfg.as_str(), "--log-level", "DEBUG"];
    args.extend_from_slice(extra);
    Daemon::start(Some(ns), Path::new(BIN), &args).unwrap()
}

/// A test environment: Redis, a DUT with `ports` ports, neighsyncd running
/// (started after `before_start` ran).
pub struct Env {
    pub daemon: Daemon,
    pub topo: NeighTopology,
    pub redis: RedisServer,
}

impl Env {
    pub fn new(ports: usize, before_start: impl FnOnce(&RedisServer, &NeighTopology)) -> Env {
        let redis = RedisServer::start().unwrap();
        let topo = NeighTopology::new(ports).unwrap();
        before_start(&redis, &topo);
        let mut daemon = start_daemon(topo.dut(), &redis, &[]);
        daemon.wait_for_log(READY, DEADLINE).unwrap();
        Env {
            daemon,
            topo,
            redis,
        }
    }

    pub fn appl(&self) -> redis::Connection {
        self.redis.conn(0).unwrap()
    }

    pub fn config(&self) -> redis::Connection {
        self.redis.conn(4).unwrap()
    }

    pub fn dut_ip(&self, args: &[&str]) {
        self.topo.dut().ip(args).unwrap();
    }
}

/// The pending (not yet consumed) layout of one NEIGH_TABLE key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// `_NEIGH_TABLE:<key>` fields, in hash order.
    pub state: Vec<(String, String)>,
    pub in_key_set: bool,
    pub in_del_set: bool,
}

pub fn pending(conn: &mut redis::Connection, key: &str) -> Pending {
    let state: Vec<(String, String)> = conn.hgetall(format!("_NEIGH_TABLE:{key}")).unwrap();
    Pending {
        state,
        in_key_set: conn.sismember("NEIGH_TABLE_KEY_SET", key).unwrap(),
        in_del_set: conn.sismember("NEIGH_TABLE_DEL_SET", key).unwrap(),
    }
}

/// Wait until `key` is pending as a SET of exactly `neigh`, `family` (raw
/// layout: state hash fields in this order, key in KEY_SET).
pub fn wait_pending_set(conn: &mut redis::Connection, key: &str, mac: &str, family: &str) {
    let want = vec![
        ("neigh".to_owned(), mac.to_owned()),
        ("family".to_owned(), family.to_owned()),
    ];
    wait_for(&format!("pending SET of {key}"), || {
        let p = pending(conn, key);
        (p.in_key_set && p.state == want).then_some(())
    });
}

/// Wait until `key` is pending as a DEL (in KEY_SET and DEL_SET, no state).
pub fn wait_pending_del(conn: &mut redis::Connection, key: &str) {
    wait_for(&format!("pending DEL of {key}"), || {
        let p = pending(conn, key);
        (p.in_key_set && p.in_del_set && p.state.is_empty()).then_some(())
    });
}

/// Pop everything pending as orchagent would (ConsumerStateTable pops
/// script), merged per key.
pub fn consume(redis: &RedisServer) -> BTreeMap<String, Vec<KeyOpFieldValues>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = DbConfig::load(redis.db_config_path()).unwrap();
        let db = DbConnector::new(cfg.location("APPL_DB").unwrap()).unwrap();
        let mut consumer = ConsumerStateTable::new(&db, "NEIGH_TABLE", 128)
            .await
            .unwrap();
        consumer.drain().await.unwrap()
    })
}

/// Assert a consumed entry is exactly one SET with `neigh`, `family`.
pub fn assert_popped_set(
    popped: &BTreeMap<String, Vec<KeyOpFieldValues>>,
    key: &str,
    mac: &str,
    family: &str,
) {
    let ops = popped
        .get(key)
        .unwrap_or_else(|| panic!("{key} not popped: {popped:?}"));
    let last = ops.last().unwrap();
    assert_eq!(last.op, Op::Set, "{key}: {ops:?}");
    assert_eq!(
        last.fvs,
        vec![
            ("neigh".to_owned(), mac.to_owned()),
            ("family".to_owned(), family.to_owned())
        ]
    );
}

/// A subscription to `NEIGH_TABLE_CHANNEL@0`, made before triggering. A
/// thread holds the subscribed connection and forwards each payload.
pub struct Channel {
    rx: std::sync::mpsc::Receiver<String>,
}

impl Channel {
    pub fn subscribe(redis: &RedisServer) -> Channel {
        let mut conn = redis.conn(0).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            conn.set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            let mut ps = conn.as_pubsub();
            ps.subscribe("NEIGH_TABLE_CHANNEL@0").unwrap();
            let _ = ready_tx.send(());
            while let Ok(msg) = ps.get_message() {
                if msg.get_channel_name() != "NEIGH_TABLE_CHANNEL@0" {
                    continue;
                }
                if tx.send(msg.get_payload().unwrap_or_default()).is_err() {
                    return;
                }
            }
        });
        ready_rx.recv_timeout(DEADLINE).expect("SUBSCRIBE");
        Channel { rx }
    }

    /// The next message's payload (fails after [`DEADLINE`]).
    pub fn next_payload(&mut self) -> String {
        self.rx
            .recv_timeout(DEADLINE)
            .expect("no message on NEIGH_TABLE_CHANNEL@0")
    }
}

/// Every key in NEIGH_TABLE_KEY_SET and NEIGH_TABLE:* starts with a name,
/// never a numeric ifindex.
pub fn assert_no_numeric_ifnames(conn: &mut redis::Connection) {
    let mut keys: Vec<String> = conn.smembers("NEIGH_TABLE_KEY_SET").unwrap();
    let table: Vec<String> = conn.keys("NEIGH_TABLE:*").unwrap();
    keys.extend(table.iter().map(|k| k["NEIGH_TABLE:".len()..].to_owned()));
    for k in keys {
        let ifname = k.split(':').next().unwrap();
        assert!(
            !ifname.chars().all(|c| c.is_ascii_digit()),
            "numeric ifname in {k}"
        );
    }
}

/// The `family` field neighsyncd writes for an IP in text form.
pub fn family(ip: &str) -> &'static str {
    if ip.contains(':') {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// APPL_DB as the consumer sees it: `NEIGH_TABLE:<key>` -> (neigh, family).
pub fn appl_table(redis: &RedisServer) -> BTreeMap<String, (String, String)> {
    let mut c = redis.conn(0).unwrap();
    let keys: Vec<String> = c.keys("NEIGH_TABLE:*").unwrap();
    keys.into_iter()
        .map(|k| {
            let fvs: BTreeMap<String, String> = c.hgetall(&k).unwrap();
            (
                k["NEIGH_TABLE:".len()..].to_owned(),
                (fvs["neigh"].clone(), fvs["family"].clone()),
            )
        })
        .collect()
}

/// A model `key -> mac` in the shape of [`appl_table`].
pub fn model_table(model: &BTreeMap<String, String>) -> BTreeMap<String, (String, String)> {
    model
        .iter()
        .map(|(k, mac)| {
            let ip = k.split_once(':').unwrap().1;
            (k.clone(), (mac.clone(), family(ip).to_owned()))
        })
        .collect()
}
