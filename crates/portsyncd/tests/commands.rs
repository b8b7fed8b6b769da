//! What portsyncd sends to Redis (issue "at the floor", item 6): orchagent's
//! field-by-field pops into APPL_DB `PORT_TABLE` and portsyncd's own STATE_DB
//! writes cause no reads (docs/differences.md P9), and a link flap costs at
//! most its two HSETs. Counted with `INFO commandstats` on a private Redis,
//! the test's own commands subtracted. Real binary, real veth links.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use redis::Commands;

/// `INFO commandstats` as command -> calls.
fn commandstats(conn: &mut redis::Connection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(conn)
        .expect("INFO");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls = rest.split(',').next()?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// Counts Redis commands with the test's own ones (INFO, and the HGETs it
/// reports through [`Counter::hget`]) left out.
struct Counter {
    conn: redis::Connection,
    base: BTreeMap<String, u64>,
    own_hgets: u64,
    own_hsets: u64,
}

impl Counter {
    fn new(bed: &Bed) -> Counter {
        let mut conn = bed.db(STATE_DB);
        let base = commandstats(&mut conn);
        Counter {
            conn,
            base,
            own_hgets: 0,
            own_hsets: 0,
        }
    }

    fn hget(&mut self, key: &str, field: &str) -> Option<String> {
        self.own_hgets += 1;
        self.conn.hget(key, field).expect("HGET")
    }

    /// Waits until STATE_DB `PORT_TABLE|<name>` `netdev_oper_status` is `want`.
    fn wait_oper(&mut self, name: &str, want: &str) {
        let key = format!("PORT_TABLE|{name}");
        wait_until(&format!("{key} netdev_oper_status {want}"), || {
            self.hget(&key, "netdev_oper_status").as_deref() == Some(want)
        });
    }

    /// Commands since [`Counter::new`] that were not the test's own, per
    /// command name (zeros left out).
    fn theirs(&mut self) -> BTreeMap<String, u64> {
        let now = commandstats(&mut self.conn);
        now.into_iter()
            .filter_map(|(name, calls)| {
                let mut n = calls - self.base.get(&name).copied().unwrap_or(0);
                match name.as_str() {
                    "info" => n = 0,
                    "hget" => n -= self.own_hgets,
                    "hset" => n -= self.own_hsets,
                    _ => {}
                }
                (n > 0).then_some((name, n))
            })
            .collect()
    }
}

/// orchagent's pops write `PORT_TABLE:<port>` one HSET per field; portsyncd
/// learns that the ports exist without reading them, and a carrier flap
/// costs two HSETs (down, up) of the four fields and nothing else: no
/// HGETALL / HLEN in reaction to its own writes.
#[test]
fn pops_and_link_flaps_cause_no_reads() {
    let mut bed = Bed::new();
    let ports = ["Ethernet0", "Ethernet4"];
    for (i, p) in ports.iter().enumerate() {
        let lane = i.to_string();
        bed.config_port(p, &[("lanes", lane.as_str()), ("admin_status", "up")]);
    }
    bed.start(&["--audit-interval", "0"]);

    // What the pops script does per key: one HSET per field (a.5).
    let mut counter = Counter::new(&bed);
    let mut appl = bed.db(APPL_DB);
    for p in ports {
        for (f, v) in [("lanes", "0"), ("speed", "100000"), ("admin_status", "up")] {
            let _: () = appl.hset(format!("PORT_TABLE:{p}"), f, v).unwrap();
            counter.own_hsets += 1;
        }
    }
    // The links: the entries are written because the ports are known to be
    // in APPL_DB (no read of APPL_DB needed).
    for p in ports {
        bed.add_link(p);
    }
    for p in ports {
        counter.wait_oper(p, "up");
    }
    let theirs = counter.theirs();
    for read in ["hgetall", "hlen", "hmget", "exists", "scan"] {
        assert_eq!(theirs.get(read), None, "{read} sent: {theirs:?}");
    }

    // Carrier flaps: peer down, then up.
    std::thread::sleep(Duration::from_millis(200));
    let mut counter = Counter::new(&bed);
    for _ in 0..3 {
        bed.peer_ip(&["link", "set", "dev", &Bed::peer_name("Ethernet0"), "down"]);
        counter.wait_oper("Ethernet0", "down");
        bed.peer_ip(&["link", "set", "dev", &Bed::peer_name("Ethernet0"), "up"]);
        counter.wait_oper("Ethernet0", "up");
    }
    // Anything a write would trigger has had time to happen.
    std::thread::sleep(Duration::from_millis(300));
    let theirs = counter.theirs();
    assert_eq!(
        theirs,
        BTreeMap::from([("hset".to_string(), 6)]),
        "3 flaps: one HSET per change, nothing else"
    );
    let state = bed.state("Ethernet0");
    assert_eq!(state.len(), 4, "{state:?}");

    bed.stop();
}
