//! `--port-config-count-follows-config` end to end (issue 17 item 4;
//! sonic-swss issue 2989): the real binary in a network namespace, a real
//! Redis, dynamic port breakout played on CONFIG_DB `PORT` as the CLI does
//! it, portmgrd's APPL_DB writes played with a ProducerStateTable, and
//! orchagent played by a ConsumerStateTable. After each step the check
//! orchagent's `PortsOrch::bake()` makes on a warm start is evaluated on
//! APPL_DB (docs/behavior.md e.2).

mod common;

use std::time::{Duration, Instant};

use common::*;
use redis::Commands;
use swss::consumer_state::Op;
use swss::{DbConfig, ProducerStateTable};

const FOLLOW: &str = "--port-config-count-follows-config";

/// portmgrd's side of APPL_DB `PORT_TABLE`: it carries CONFIG_DB `PORT`
/// SETs and DELs into APPL_DB through a ProducerStateTable (cfgmgr
/// portmgr.cpp doTask), which is how a breakout reaches orchagent.
struct PortMgr {
    rt: tokio::runtime::Runtime,
    conn: redis::aio::MultiplexedConnection,
    producer: ProducerStateTable,
}

impl PortMgr {
    fn new(bed: &Bed) -> PortMgr {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cfg = DbConfig::load(bed.redis.db_config_path()).expect("db config");
        let loc = cfg.location("APPL_DB").expect("APPL_DB");
        let connector = swss::DbConnector::new(loc.clone()).expect("connector");
        let conn = rt.block_on(connector.connect()).expect("connect");
        PortMgr {
            rt,
            conn,
            producer: ProducerStateTable::new("PORT_TABLE", &loc),
        }
    }

    fn set(&mut self, name: &str, fvs: &[(&str, &str)]) {
        self.rt
            .block_on(self.producer.set(&mut self.conn, name, fvs))
            .expect("producer set");
    }

    fn del(&mut self, name: &str) {
        self.rt
            .block_on(self.producer.del(&mut self.conn, name))
            .expect("producer del");
    }
}

/// The lanes of a port in these tests: `Ethernet<N>` has lane N (breakout
/// children of Ethernet0 get 0..3).
fn lanes(name: &str) -> String {
    name.trim_start_matches("Ethernet").to_string()
}

/// Configures `name` in CONFIG_DB and, as portmgrd, in APPL_DB.
fn add_port(bed: &Bed, mgr: &mut PortMgr, name: &str, speed: &str) {
    let lanes = lanes(name);
    let fvs = [
        ("lanes", lanes.as_str()),
        ("speed", speed),
        ("admin_status", "up"),
    ];
    bed.config_port(name, &fvs);
    mgr.set(name, &fvs);
}

/// Removes `name` from CONFIG_DB and, as portmgrd, from APPL_DB.
fn del_port(bed: &Bed, mgr: &mut PortMgr, name: &str) {
    let _: () = bed
        .db(CONFIG_DB)
        .del(format!("PORT|{name}"))
        .expect("DEL PORT");
    mgr.del(name);
}

/// `config interface breakout Ethernet0 4x25G`: Ethernet0 deleted, then
/// Ethernet0..Ethernet3 added (the CLI deletes, then adds).
fn break_out(bed: &Bed, mgr: &mut PortMgr) {
    del_port(bed, mgr, "Ethernet0");
    for name in ["Ethernet0", "Ethernet1", "Ethernet2", "Ethernet3"] {
        add_port(bed, mgr, name, "25000");
    }
}

/// `config interface breakout Ethernet0 1x100G`: the children deleted,
/// Ethernet0 set again.
fn break_in(bed: &Bed, mgr: &mut PortMgr) {
    for name in ["Ethernet1", "Ethernet2", "Ethernet3"] {
        del_port(bed, mgr, name);
    }
    add_port(bed, mgr, "Ethernet0", "100000");
}

/// orchagent's `PortsOrch::bake()` check on APPL_DB as a warm start would
/// find it: `PORT_TABLE:PortConfigDone count` and a non-empty
/// `PORT_TABLE:PortInitDone` must exist, and `count` must equal the number
/// of `PORT_TABLE:*` keys minus 2. `Err` carries orchagent's message.
fn bake(bed: &Bed) -> Result<usize, String> {
    let mut appl = bed.db(APPL_DB);
    let count: Option<String> = appl
        .hget("PORT_TABLE:PortConfigDone", "count")
        .expect("HGET");
    let init: Vec<(String, String)> = appl.hgetall("PORT_TABLE:PortInitDone").expect("HGETALL");
    let keys: Vec<String> = appl.keys("PORT_TABLE:*").expect("KEYS");
    let (Some(count), false) = (count, init.is_empty()) else {
        return Err("No port table, fallback to cold start".to_string());
    };
    let count: usize = count.parse().map_err(|e| format!("count {count:?}: {e}"))?;
    let got = keys.len().saturating_sub(2);
    if count != got {
        return Err(format!(
            "Invalid port table: portCount, expecting {count}, got {got}"
        ));
    }
    Ok(count)
}

/// Pops as orchagent until `bake()` passes with `count` ports; returns the
/// PortConfigDone operations popped meanwhile.
fn wait_bake_passes(bed: &mut Bed, orch: &mut Orch, count: usize) -> Vec<Vec<(String, String)>> {
    let mut popped = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        for op in orch.drain().remove("PortConfigDone").unwrap_or_default() {
            assert_eq!(op.op, Op::Set);
            popped.push(op.fvs);
        }
        let last = bake(bed);
        if last == Ok(count) {
            return popped;
        }
        assert!(
            Instant::now() < deadline,
            "bake() never passed with {count} ports: {last:?}; popped {popped:?}; log:\n{}",
            bed.daemon().log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cold start with Ethernet0/4/8, everything consumed and every host
/// interface seen (PortInitDone), `bake()` passing with 3.
fn cold_start(bed: &mut Bed, extra: &[&str]) -> (Orch, PortMgr) {
    let mgr = PortMgr::new(bed);
    for name in ["Ethernet0", "Ethernet4", "Ethernet8"] {
        bed.config_port(
            name,
            &[
                ("lanes", &lanes(name)),
                ("speed", "100000"),
                ("admin_status", "up"),
            ],
        );
    }
    bed.start(extra);
    let mut orch = bed.orchagent();
    for name in ["Ethernet0", "Ethernet4", "Ethernet8"] {
        bed.add_link(name);
    }
    orch.wait_port_init_done();
    assert_eq!(bake(bed), Ok(3));
    (orch, mgr)
}

/// With the option, a breakout and its reversal keep `PortConfigDone
/// count` equal to the configured ports, so a warm start after either
/// passes `bake()`; each update is the cold start's producer SET again
/// (which orchagent ignores once it has seen one).
#[test]
fn breakout_keeps_port_config_done_count_with_the_option() {
    let mut bed = Bed::new();
    let (mut orch, mut mgr) = cold_start(&mut bed, &[FOLLOW]);
    assert!(bed.daemon().log().contains("following CONFIG_DB PORT"));

    break_out(&bed, &mut mgr);
    let popped = wait_bake_passes(&mut bed, &mut orch, 6);
    assert_eq!(
        popped.last(),
        Some(&fvs(&[("count", "6")])),
        "the last PortConfigDone popped: {popped:?}"
    );
    assert_eq!(
        bed.appl_hash("PORT_TABLE:PortConfigDone"),
        fvs(&[("count", "6")]),
        "the hash holds only the count"
    );

    break_in(&bed, &mut mgr);
    let popped = wait_bake_passes(&mut bed, &mut orch, 3);
    assert_eq!(popped.last(), Some(&fvs(&[("count", "3")])));

    // A field change of a configured port writes no count.
    let _: () = bed
        .db(CONFIG_DB)
        .hset("PORT|Ethernet4", "mtu", "1500")
        .expect("HSET");
    bed.barrier("Ethernet4", 1400);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!bed.key_set().contains("PortConfigDone"));
    assert!(!bed.exists(APPL_DB, "_PORT_TABLE:PortConfigDone"));

    bed.stop();
}

/// Without the option the count stays as the C++ writes it (the cold
/// start's only), so a warm start after a breakout is rejected by
/// `bake()` exactly as sonic-swss issue 2989 reports.
#[test]
fn without_the_option_the_count_stays_as_the_cpp_writes_it() {
    let mut bed = Bed::new();
    let (mut orch, mut mgr) = cold_start(&mut bed, &[]);
    assert!(!bed.daemon().log().contains("following CONFIG_DB PORT"));

    break_out(&bed, &mut mgr);
    wait_until("the breakout consumed", || {
        orch.drain();
        bed.exists(APPL_DB, "PORT_TABLE:Ethernet3") && bed.key_set().is_empty()
    });
    // The daemon is alive and handling events; give it time to (not) react.
    bed.barrier("Ethernet4", 1400);
    std::thread::sleep(Duration::from_millis(300));
    orch.drain();
    assert!(!bed.exists(APPL_DB, "_PORT_TABLE:PortConfigDone"));
    assert_eq!(
        bed.appl_hash("PORT_TABLE:PortConfigDone"),
        fvs(&[("count", "3")])
    );
    assert_eq!(
        bake(&bed),
        Err("Invalid port table: portCount, expecting 3, got 6".to_string())
    );

    bed.stop();
}

/// Warm start with the option: nothing written at start-up (the C++ writes
/// no PortConfigDone then, and orchagent's bake() is reading it), the
/// count follows a later breakout.
#[test]
fn warm_start_writes_no_count_until_the_ports_change() {
    let mut bed = Bed::new();
    let mut mgr = PortMgr::new(&bed);
    let mut appl = bed.db(APPL_DB);
    for name in ["Ethernet0", "Ethernet4", "Ethernet8"] {
        let fvs = [
            ("lanes", lanes(name)),
            ("speed", "100000".to_string()),
            ("admin_status", "up".to_string()),
        ];
        bed.config_port(
            name,
            &[
                ("lanes", &fvs[0].1),
                ("speed", "100000"),
                ("admin_status", "up"),
            ],
        );
        // What the previous orchagent left in APPL_DB.
        let _: () = appl
            .hset_multiple(format!("PORT_TABLE:{name}"), &fvs)
            .expect("HSET");
        bed.add_link(name);
    }
    let _: () = appl
        .hset("PORT_TABLE:PortConfigDone", "count", "3")
        .expect("HSET");
    let _: () = appl
        .hset("PORT_TABLE:PortInitDone", "lanes", "0")
        .expect("HSET");
    let mut state = bed.db(STATE_DB);
    let _: () = state
        .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
        .expect("HSET");
    let _: () = state
        .hset("WARM_RESTART_TABLE|portsyncd", "restore_count", "1")
        .expect("HSET");

    bed.start(&[FOLLOW]);
    assert!(bed.daemon().log().contains("warm=true"));
    let mut orch = bed.orchagent();
    orch.wait_port_init_done();
    bed.barrier("Ethernet4", 1400);
    assert!(!bed.exists(APPL_DB, "_PORT_TABLE:PortConfigDone"));
    assert_eq!(bake(&bed), Ok(3));

    break_out(&bed, &mut mgr);
    let popped = wait_bake_passes(&mut bed, &mut orch, 6);
    assert_eq!(popped.last(), Some(&fvs(&[("count", "6")])));

    bed.stop();
}
