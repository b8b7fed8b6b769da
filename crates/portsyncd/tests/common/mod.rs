//! Shared test bed for portsyncd's integration tests: a private Redis, a DUT
//! namespace holding `EthernetN` veth ends (peers in a second namespace, so
//! carrier can be dropped by downing the peer), the real binary running in
//! the DUT namespace, and an "orchagent" popping APPL_DB PORT_TABLE.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use redis::Commands;
use swss::consumer_state::KeyOpFieldValues;
use swss::{ConsumerStateTable, DbConfig, DbConnector};
use testbed::daemon::Daemon;
use testbed::netns::{veth, NetNs};
use testbed::redis_server::RedisServer;

/// APPL_DB, CONFIG_DB, STATE_DB ids of the testbed's database_config.json.
pub const APPL_DB: u32 = 0;
pub const CONFIG_DB: u32 = 4;
pub const STATE_DB: u32 = 6;

/// Upper bound for anything the daemon should do promptly.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Logged by the daemon once start-up is over (subscriptions in place).
pub const READY_LOG: &str = "started; following link events";

/// Polls `f` every 20 ms until it returns true; panics after [`DEADLINE`].
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Bed {
    pub redis: RedisServer,
    pub dut: NetNs,
    pub peer: NetNs,
    pub daemon: Option<Daemon>,
}

impl Bed {
    pub fn new() -> Bed {
        Bed {
            redis: RedisServer::start().expect("redis-server"),
            dut: NetNs::new("psd").expect("dut namespace"),
            peer: NetNs::new("psp").expect("peer namespace"),
            daemon: None,
        }
    }

    pub fn db(&self, id: u32) -> redis::Connection {
        self.redis.conn(id).expect("redis connection")
    }

    /// CONFIG_DB `PORT|<name>` with the fields in this order.
    pub fn config_port(&self, name: &str, fvs: &[(&str, &str)]) {
        let _: () = self
            .db(CONFIG_DB)
            .hset_multiple(format!("PORT|{name}"), fvs)
            .expect("HSET PORT");
    }

    /// Peer-side name of DUT port `name` (`p<name>`, in the peer namespace).
    pub fn peer_name(name: &str) -> String {
        format!("p{name}")
    }

    /// veth `name` in the DUT <-> `p<name>` in the peer namespace, both up.
    pub fn add_link(&self, name: &str) {
        veth(&self.dut, name, &self.peer, &Self::peer_name(name)).expect("veth");
    }

    pub fn dut_ip(&self, args: &[&str]) {
        self.dut.ip(args).expect("ip in dut");
    }

    pub fn peer_ip(&self, args: &[&str]) {
        self.peer.ip(args).expect("ip in peer");
    }

    /// `ifi_flags` names of a DUT link, e.g. `["BROADCAST", "MULTICAST", "UP"]`.
    pub fn link_flags(&self, name: &str) -> Vec<String> {
        let out = self
            .dut
            .ip(&["-o", "link", "show", "dev", name])
            .expect("ip link show");
        let inner = out
            .split_once('<')
            .and_then(|(_, r)| r.split_once('>'))
            .map(|(f, _)| f.to_string())
            .unwrap_or_default();
        inner.split(',').map(str::to_string).collect()
    }

    /// Starts portsyncd in the DUT namespace and waits until it is ready.
    pub fn start(&mut self, extra: &[&str]) {
        let config = self
            .redis
            .db_config_path()
            .to_str()
            .expect("utf-8 path")
            .to_string();
        let mut args = vec!["--db-config", config.as_str(), "--log-level", "DEBUG"];
        args.extend_from_slice(extra);
        let mut d = Daemon::start(
            Some(&self.dut),
            env!("CARGO_BIN_EXE_portsyncd").as_ref(),
            &args,
        )
        .expect("start portsyncd");
        d.wait_for_log(READY_LOG, DEADLINE)
            .expect("portsyncd ready");
        self.daemon = Some(d);
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("daemon started")
    }

    /// SIGTERM: the daemon must exit with status 0.
    pub fn stop(&mut self) {
        let mut d = self.daemon.take().expect("daemon started");
        let status = d.sigterm().expect("portsyncd exits on SIGTERM");
        assert_eq!(
            status.code(),
            Some(0),
            "exit status after SIGTERM; log:\n{}",
            d.log()
        );
    }

    /// STATE_DB `PORT_TABLE|<name>` (empty when missing).
    pub fn state(&self, name: &str) -> HashMap<String, String> {
        self.db(STATE_DB)
            .hgetall(format!("PORT_TABLE|{name}"))
            .expect("HGETALL")
    }

    /// Waits until STATE_DB `PORT_TABLE|<name>` has all of `want`.
    pub fn wait_state(&self, name: &str, want: &[(&str, &str)]) -> HashMap<String, String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let last = self.state(name);
            if want
                .iter()
                .all(|(f, v)| last.get(*f).map(String::as_str) == Some(*v))
            {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "STATE_DB PORT_TABLE|{name} never had {want:?}; last {last:?}; log:\n{}",
                self.daemon.as_ref().map(|d| d.log()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_state_gone(&self, name: &str) {
        wait_until(&format!("STATE_DB PORT_TABLE|{name} removed"), || {
            self.state(name).is_empty()
        });
    }

    /// Raw APPL_DB hash (in Redis order).
    pub fn appl_hash(&self, key: &str) -> Vec<(String, String)> {
        self.db(APPL_DB).hgetall(key).expect("HGETALL")
    }

    pub fn key_set(&self) -> HashSet<String> {
        self.db(APPL_DB)
            .smembers("PORT_TABLE_KEY_SET")
            .expect("SMEMBERS")
    }

    pub fn exists(&self, db: u32, key: &str) -> bool {
        self.db(db).exists(key).expect("EXISTS")
    }

    /// Changes a link's mtu (on `name` in the DUT) and waits until STATE_DB
    /// shows it: a barrier proving every earlier link event was handled.
    pub fn barrier(&self, name: &str, mtu: u32) {
        let m = mtu.to_string();
        self.dut_ip(&["link", "set", "dev", name, "mtu", &m]);
        self.wait_state(name, &[("mtu", &m)]);
    }

    pub fn orchagent(&self) -> Orch {
        Orch::new(&self.redis)
    }
}

/// orchagent's side of APPL_DB PORT_TABLE: a ConsumerStateTable whose pops
/// create `PORT_TABLE:<name>`.
pub struct Orch {
    rt: tokio::runtime::Runtime,
    consumer: ConsumerStateTable,
}

impl Orch {
    fn new(redis: &RedisServer) -> Orch {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cfg = DbConfig::load(redis.db_config_path()).expect("db config");
        let connector =
            DbConnector::new(cfg.location("APPL_DB").expect("APPL_DB")).expect("connector");
        let consumer = rt
            .block_on(ConsumerStateTable::new(&connector, "PORT_TABLE", 128))
            .expect("consumer");
        Orch { rt, consumer }
    }

    /// Pops everything pending, merged per key as orchagent does.
    pub fn drain(&mut self) -> BTreeMap<String, Vec<KeyOpFieldValues>> {
        self.rt.block_on(self.consumer.drain()).expect("pops")
    }

    /// Pops until `PortInitDone` has been popped (up to [`DEADLINE`]) and
    /// returns its operations (what else was popped meanwhile is dropped).
    pub fn wait_port_init_done(&mut self) -> Vec<KeyOpFieldValues> {
        let mut init_done = Vec::new();
        wait_until("PortInitDone popped", || {
            if let Some(ops) = self.drain().get("PortInitDone") {
                init_done.extend(ops.iter().cloned());
            }
            !init_done.is_empty()
        });
        init_done
    }
}

pub fn fvs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}
