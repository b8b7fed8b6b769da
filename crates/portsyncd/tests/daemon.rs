//! portsyncd end to end: the real binary in a network namespace with veth
//! links named `EthernetN`, a real Redis, and orchagent played by a
//! ConsumerStateTable (docs/behavior.md d, e.2, e.3).

mod common;

use common::*;
use redis::Commands;
use swss::consumer_state::Op;

/// Cold start: CONFIG_DB PORT copied verbatim through the producer protocol,
/// PortConfigDone with the count, logger defaults, restore_count 0, an
/// unknown switch_type tolerated, and no PortInitDone while no interface
/// exists.
#[test]
fn cold_start_copies_port_config_verbatim() {
    let mut bed = Bed::new();
    let e0 = [
        ("lanes", "0,1,2,3"),
        ("speed", "100000"),
        ("alias", "etp1"),
        ("mtu", "9100"),
        ("admin_status", "up"),
        ("fec", "not-a-fec-mode\u{7f}!"),
    ];
    bed.config_port("Ethernet0", &e0);
    bed.config_port("Ethernet4", &[("lanes", "4,5,6,7"), ("speed", "-12")]);
    bed.config_port("Ethernet8", &[("lanes", "")]);
    let mut cfg = bed.db(CONFIG_DB);
    let _: () = cfg
        .hset("DEVICE_METADATA|localhost", "switch_type", "spaceship")
        .unwrap();
    let _: () = cfg.hset("LOGGER|portsyncd", "LOGOUTPUT", "STDERR").unwrap();

    bed.start(&[]);

    // Raw producer state: fields verbatim and in CONFIG_DB order.
    assert_eq!(bed.appl_hash("_PORT_TABLE:Ethernet0"), fvs(&e0));
    assert_eq!(
        bed.appl_hash("_PORT_TABLE:Ethernet4"),
        fvs(&[("lanes", "4,5,6,7"), ("speed", "-12")])
    );
    assert_eq!(
        bed.appl_hash("_PORT_TABLE:Ethernet8"),
        fvs(&[("lanes", "")])
    );
    assert_eq!(
        bed.appl_hash("_PORT_TABLE:PortConfigDone"),
        fvs(&[("count", "3")])
    );
    let keys = bed.key_set();
    let want: std::collections::HashSet<String> =
        ["Ethernet0", "Ethernet4", "Ethernet8", "PortConfigDone"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    assert_eq!(keys, want);

    // Logger defaults only where missing; restore_count 0 on a cold start.
    let logger: Vec<(String, String)> = cfg.hgetall("LOGGER|portsyncd").unwrap();
    let logger: std::collections::HashMap<_, _> = logger.into_iter().collect();
    assert_eq!(logger.get("LOGLEVEL").map(String::as_str), Some("NOTICE"));
    assert_eq!(logger.get("LOGOUTPUT").map(String::as_str), Some("STDERR"));
    let rc: Option<String> = bed
        .db(STATE_DB)
        .hget("WARM_RESTART_TABLE|portsyncd", "restore_count")
        .unwrap();
    assert_eq!(rc.as_deref(), Some("0"));
    assert!(bed.daemon().log().contains("spaceship"));

    // What orchagent pops.
    let mut orch = bed.orchagent();
    let popped = orch.drain();
    let e0_ops = &popped["Ethernet0"];
    assert_eq!(e0_ops.len(), 1);
    assert_eq!(e0_ops[0].op, Op::Set);
    assert_eq!(e0_ops[0].fvs, fvs(&e0));
    assert_eq!(popped["PortConfigDone"][0].fvs, fvs(&[("count", "3")]));
    assert!(!popped.contains_key("PortInitDone"));
    assert_eq!(popped.len(), 4);
    assert_eq!(bed.appl_hash("PORT_TABLE:Ethernet0"), fvs(&e0));

    bed.stop();
}

/// PortInitDone comes only once every configured port was consumed by
/// orchagent and its host interface was seen, and only once.
#[test]
fn port_init_done_after_ports_consumed_and_seen_and_only_once() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0"), ("admin_status", "up")]);
    bed.config_port("Ethernet4", &[("lanes", "4"), ("admin_status", "up")]);
    bed.start(&[]);
    let mut orch = bed.orchagent();

    // Interface seen, config not yet consumed: no STATE_DB entry, no
    // PortInitDone.
    bed.add_link("Ethernet0");
    bed.daemon()
        .wait_for_log("ifname=Ethernet0", DEADLINE)
        .expect("link event handled");
    assert!(bed.state("Ethernet0").is_empty());
    assert!(!bed.key_set().contains("PortInitDone"));

    // Consumed: Ethernet0 gets its entry at once (no further link message
    // needed); Ethernet4 has no interface yet, so still no PortInitDone.
    let popped = orch.drain();
    assert!(popped.contains_key("Ethernet0") && popped.contains_key("Ethernet4"));
    bed.wait_state("Ethernet0", &[("state", "ok"), ("admin_status", "up")]);
    assert!(!bed.key_set().contains("PortInitDone"));
    assert!(!bed.exists(APPL_DB, "_PORT_TABLE:PortInitDone"));

    // Last interface appears: PortInitDone lanes=0.
    bed.add_link("Ethernet4");
    bed.wait_state("Ethernet4", &[("state", "ok")]);
    let init_done = orch.wait_port_init_done();
    assert_eq!(init_done.len(), 1);
    assert_eq!(init_done[0].op, Op::Set);
    assert_eq!(init_done[0].fvs, fvs(&[("lanes", "0")]));

    // Later link churn never repeats it.
    bed.dut_ip(&["link", "del", "dev", "Ethernet0"]);
    bed.wait_state_gone("Ethernet0");
    bed.add_link("Ethernet0");
    bed.wait_state("Ethernet0", &[("state", "ok")]);
    bed.barrier("Ethernet4", 9000);
    assert!(orch.drain().is_empty());
    assert!(bed.key_set().is_empty());

    bed.stop();
}

/// STATE_DB PORT_TABLE|<name> follows admin state, carrier, mtu and link
/// removal; a field written by another daemon survives link changes; an
/// entry deleted by someone else is written again.
#[test]
fn state_db_follows_link_changes() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0")]);
    bed.start(&[]);
    let mut orch = bed.orchagent();
    bed.add_link("Ethernet0");
    orch.drain();
    let first = bed.wait_state(
        "Ethernet0",
        &[
            ("state", "ok"),
            ("netdev_oper_status", "up"),
            ("admin_status", "up"),
            ("mtu", "1500"),
        ],
    );
    assert_eq!(first.len(), 4, "{first:?}");

    // portsorch's own field in the same hash.
    let _: () = bed
        .db(STATE_DB)
        .hset("PORT_TABLE|Ethernet0", "host_tx_ready", "true")
        .unwrap();

    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "down"]);
    bed.wait_state(
        "Ethernet0",
        &[("admin_status", "down"), ("netdev_oper_status", "down")],
    );
    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "up"]);
    bed.wait_state(
        "Ethernet0",
        &[("admin_status", "up"), ("netdev_oper_status", "up")],
    );

    // Carrier loss: the peer goes down.
    bed.peer_ip(&["link", "set", "dev", &Bed::peer_name("Ethernet0"), "down"]);
    bed.wait_state(
        "Ethernet0",
        &[("admin_status", "up"), ("netdev_oper_status", "down")],
    );
    bed.peer_ip(&["link", "set", "dev", &Bed::peer_name("Ethernet0"), "up"]);
    bed.wait_state("Ethernet0", &[("netdev_oper_status", "up")]);

    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "mtu", "9100"]);
    let after = bed.wait_state("Ethernet0", &[("mtu", "9100")]);
    assert_eq!(after.get("host_tx_ready").map(String::as_str), Some("true"));
    assert_eq!(after.len(), 5, "{after:?}");

    // Someone deletes the entry: it comes back without a link change.
    let _: () = bed.db(STATE_DB).del("PORT_TABLE|Ethernet0").unwrap();
    bed.wait_state(
        "Ethernet0",
        &[("state", "ok"), ("mtu", "9100"), ("admin_status", "up")],
    );

    bed.dut_ip(&["link", "del", "dev", "Ethernet0"]);
    bed.wait_state_gone("Ethernet0");

    bed.stop();
}

/// Cold start: an Ethernet interface that exists and is up before start is
/// brought admin-down, and its events are ignored from then on.
#[test]
fn old_interfaces_brought_down_and_ignored() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0")]);
    bed.config_port("Ethernet4", &[("lanes", "4")]);
    bed.add_link("Ethernet0");
    bed.dut_ip(&["link", "add", "name", "PortChannel9", "type", "bridge"]);
    bed.dut_ip(&["link", "set", "dev", "PortChannel9", "up"]);
    assert!(bed.link_flags("Ethernet0").contains(&"UP".to_string()));

    bed.start(&[]);
    assert!(
        !bed.link_flags("Ethernet0").contains(&"UP".to_string()),
        "old interface still admin up: {:?}",
        bed.link_flags("Ethernet0")
    );
    // Only Ethernet* counts as old.
    assert!(bed.link_flags("PortChannel9").contains(&"UP".to_string()));

    let mut orch = bed.orchagent();
    orch.drain();
    bed.add_link("Ethernet4");
    bed.wait_state("Ethernet4", &[("state", "ok")]);

    // Events of the old ifindex are ignored.
    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "up"]);
    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "mtu", "2000"]);
    bed.barrier("Ethernet4", 9000);
    assert!(bed.state("Ethernet0").is_empty());
    // ... so Ethernet0 still holds back PortInitDone (as the C++, f.14).
    assert!(!bed.key_set().contains("PortInitDone"));
    assert!(!orch.drain().contains_key("PortInitDone"));

    bed.stop();
}

/// A bridge named PortChannel1 with an Ethernet member: no STATE_DB entry for
/// the bridge, and the member leaving it (an AF_BRIDGE RTM_DELLINK with a
/// master) does not delete the member's entry.
#[test]
fn port_channel_bridge_and_member_leaving() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0")]);
    bed.config_port("Ethernet4", &[("lanes", "4")]);
    bed.start(&[]);
    let mut orch = bed.orchagent();
    bed.add_link("Ethernet0");
    bed.add_link("Ethernet4");
    orch.drain();
    bed.wait_state("Ethernet0", &[("state", "ok")]);
    bed.wait_state("Ethernet4", &[("state", "ok")]);

    bed.dut_ip(&["link", "add", "name", "PortChannel1", "type", "bridge"]);
    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "master", "PortChannel1"]);
    bed.dut_ip(&["link", "set", "dev", "PortChannel1", "up"]);
    bed.daemon()
        .wait_for_log("ifname=PortChannel1", DEADLINE)
        .expect("bridge seen");
    bed.barrier("Ethernet4", 9000);
    assert!(bed.state("PortChannel1").is_empty());
    assert_eq!(
        bed.state("Ethernet0").get("state").map(String::as_str),
        Some("ok")
    );

    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "nomaster"]);
    bed.barrier("Ethernet4", 9100);
    assert_eq!(
        bed.state("Ethernet0").get("state").map(String::as_str),
        Some("ok")
    );

    bed.dut_ip(&["link", "del", "dev", "PortChannel1"]);
    bed.barrier("Ethernet4", 9200);
    assert_eq!(
        bed.state("Ethernet0").get("state").map(String::as_str),
        Some("ok")
    );

    bed.stop();
}

/// Warm start (WARM_RESTART_ENABLE_TABLE|swss enable=true): no PORT_TABLE
/// copy, no PortConfigDone, nothing brought down; PortInitDone once;
/// restore_count incremented.
#[test]
fn warm_start_writes_only_port_init_done() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0"), ("admin_status", "up")]);
    bed.config_port("Ethernet4", &[("lanes", "4"), ("admin_status", "up")]);
    let mut state = bed.db(STATE_DB);
    let _: () = state
        .hset("WARM_RESTART_ENABLE_TABLE|swss", "enable", "true")
        .unwrap();
    let _: () = state
        .hset("WARM_RESTART_TABLE|portsyncd", "restore_count", "2")
        .unwrap();
    // What the previous orchagent left in APPL_DB.
    let mut appl = bed.db(APPL_DB);
    for p in ["Ethernet0", "Ethernet4"] {
        let _: () = appl
            .hset_multiple(
                format!("PORT_TABLE:{p}"),
                &[("lanes", "0"), ("admin_status", "up")],
            )
            .unwrap();
    }
    let _: () = appl
        .hset("PORT_TABLE:PortConfigDone", "count", "2")
        .unwrap();
    bed.add_link("Ethernet0");
    bed.add_link("Ethernet4");

    bed.start(&[]);
    wait_until("PortInitDone written", || {
        bed.exists(APPL_DB, "_PORT_TABLE:PortInitDone")
    });
    assert_eq!(
        bed.appl_hash("_PORT_TABLE:PortInitDone"),
        fvs(&[("lanes", "0")])
    );
    let only: std::collections::HashSet<String> =
        ["PortInitDone".to_string()].into_iter().collect();
    assert_eq!(bed.key_set(), only);
    assert!(!bed.exists(APPL_DB, "_PORT_TABLE:Ethernet0"));
    assert!(!bed.exists(APPL_DB, "_PORT_TABLE:PortConfigDone"));

    let rc: Option<String> = state
        .hget("WARM_RESTART_TABLE|portsyncd", "restore_count")
        .unwrap();
    assert_eq!(rc.as_deref(), Some("3"));
    let st: Option<String> = state.hget("WARM_RESTART_TABLE|portsyncd", "state").unwrap();
    assert_eq!(st, None, "portsyncd never writes the warm-restart state");

    // Links untouched, and their state published.
    assert!(bed.link_flags("Ethernet0").contains(&"UP".to_string()));
    bed.wait_state(
        "Ethernet0",
        &[("admin_status", "up"), ("netdev_oper_status", "up")],
    );
    bed.wait_state("Ethernet4", &[("admin_status", "up")]);

    let mut orch = bed.orchagent();
    let popped = orch.drain();
    assert_eq!(popped.keys().collect::<Vec<_>>(), vec!["PortInitDone"]);
    bed.barrier("Ethernet0", 9000);
    assert!(bed.key_set().is_empty(), "PortInitDone written twice");

    bed.stop();
}

/// Redis restarts (empty): portsyncd reconnects, resubscribes, and STATE_DB
/// ends up matching the kernel, including changes made while Redis was away.
#[test]
fn redis_restart_resyncs_state_db() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0")]);
    bed.config_port("Ethernet4", &[("lanes", "4")]);
    bed.start(&[]);
    let mut orch = bed.orchagent();
    bed.add_link("Ethernet0");
    bed.add_link("Ethernet4");
    orch.drain();
    bed.wait_state("Ethernet0", &[("state", "ok")]);
    bed.wait_state("Ethernet4", &[("state", "ok")]);
    drop(orch);

    bed.redis.stop().expect("stop redis");
    bed.daemon()
        .wait_for_log("lost Redis", DEADLINE)
        .expect("loss noticed");
    bed.dut_ip(&["link", "set", "dev", "Ethernet0", "mtu", "9000"]);
    bed.dut_ip(&["link", "del", "dev", "Ethernet4"]);
    bed.redis.restart().expect("restart redis");
    assert!(bed.daemon().is_running());

    // orchagent's state comes back (it restarts with Redis).
    let mut appl = bed.db(APPL_DB);
    let _: () = appl
        .hset("PORT_TABLE:Ethernet4", "admin_status", "up")
        .unwrap();
    let _: () = appl
        .hset("PORT_TABLE:Ethernet0", "admin_status", "up")
        .unwrap();
    bed.wait_state(
        "Ethernet0",
        &[("state", "ok"), ("mtu", "9000"), ("admin_status", "up")],
    );
    bed.barrier("Ethernet0", 9100);
    assert!(bed.state("Ethernet4").is_empty());

    bed.stop();
}

/// Netlink overrun (tiny receive buffer, daemon stopped during a burst):
/// the links are dumped again and STATE_DB matches the kernel.
#[test]
fn netlink_overrun_resyncs_from_a_dump() {
    let mut bed = Bed::new();
    for p in ["Ethernet0", "Ethernet4", "Ethernet8"] {
        bed.config_port(p, &[("lanes", "0")]);
    }
    bed.start(&["--netlink-rcvbuf", "1"]);
    let mut orch = bed.orchagent();
    for p in ["Ethernet0", "Ethernet4", "Ethernet8"] {
        bed.add_link(p);
    }
    orch.drain();
    for p in ["Ethernet0", "Ethernet4", "Ethernet8"] {
        bed.wait_state(p, &[("state", "ok")]);
    }

    bed.daemon()
        .signal(nix::sys::signal::Signal::SIGSTOP)
        .expect("SIGSTOP");
    for mtu in 1400..1460 {
        bed.dut_ip(&["link", "set", "dev", "Ethernet0", "mtu", &mtu.to_string()]);
    }
    bed.dut_ip(&["link", "set", "dev", "Ethernet4", "down"]);
    bed.dut_ip(&["link", "del", "dev", "Ethernet8"]);
    bed.daemon()
        .signal(nix::sys::signal::Signal::SIGCONT)
        .expect("SIGCONT");

    bed.wait_state("Ethernet0", &[("mtu", "1459")]);
    bed.wait_state("Ethernet4", &[("admin_status", "down")]);
    bed.wait_state_gone("Ethernet8");
    assert!(
        bed.daemon().log().contains("overrun"),
        "no overrun happened"
    );

    bed.stop();
}

/// switch_type dpu: no old-interface handling, existing links stay up.
#[test]
fn dpu_leaves_existing_interfaces_up() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0")]);
    let _: () = bed
        .db(CONFIG_DB)
        .hset("DEVICE_METADATA|localhost", "switch_type", "dpu")
        .unwrap();
    bed.add_link("Ethernet0");
    bed.start(&[]);
    assert!(bed.link_flags("Ethernet0").contains(&"UP".to_string()));
    let mut orch = bed.orchagent();
    orch.drain();
    // Not old, so its state is published and PortInitDone follows.
    bed.wait_state("Ethernet0", &[("state", "ok"), ("admin_status", "up")]);
    wait_until("PortInitDone written", || {
        bed.exists(APPL_DB, "_PORT_TABLE:PortInitDone")
    });
    bed.stop();
}

/// `--namespace NAME` takes the databases from database_global.json's entry
/// for NAME (next to `--db-config`).
#[test]
fn namespace_selects_database_global_entry() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0")]);
    let dir = bed.redis.dir().to_path_buf();
    let default_config = bed.redis.db_config_path().to_path_buf();
    let original = std::fs::read_to_string(&default_config).unwrap();
    std::fs::write(dir.join("asic0_database_config.json"), &original).unwrap();
    std::fs::write(
        dir.join("database_global.json"),
        r#"{"INCLUDES": [{"include": "database_config.json"},
                         {"include": "asic0_database_config.json", "namespace": "asic0"}]}"#,
    )
    .unwrap();
    // The --db-config file itself is unusable: only the namespace entry works.
    std::fs::write(&default_config, "not json").unwrap();
    bed.start(&["--namespace", "asic0"]);
    std::fs::write(&default_config, &original).unwrap();
    assert_eq!(
        bed.appl_hash("_PORT_TABLE:PortConfigDone"),
        fvs(&[("count", "1")])
    );
    bed.stop();
}

/// CONFIG_DB `LOGGER|portsyncd` on the daemon's one CONFIG_DB subscription
/// (what `swssloglevel -l INFO -c portsyncd` writes): applied live, and
/// again on the subscription rebuilt after a Redis restart.
#[test]
fn log_level_follows_config_db_live_and_after_a_redis_restart() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0")]);
    bed.start(&[]);
    let mut cfg = bed.db(CONFIG_DB);
    // SONiC's INFO is tracing's INFO, printed as NOTICE.
    let _: () = cfg.hset("LOGGER|portsyncd", "LOGLEVEL", "INFO").unwrap();
    bed.daemon()
        .wait_for_log(r#"from="DEBUG" to="NOTICE""#, DEADLINE)
        .expect("level changed live");

    bed.redis.stop().expect("stop redis");
    bed.daemon()
        .wait_for_log("lost Redis", DEADLINE)
        .expect("loss noticed");
    bed.redis.restart().expect("restart redis");
    bed.daemon()
        .wait_for_log("Redis is back", DEADLINE)
        .expect("reconnected");
    let mut cfg = bed.db(CONFIG_DB);
    let _: () = cfg.hset("LOGGER|portsyncd", "LOGLEVEL", "DEBUG").unwrap();
    bed.daemon()
        .wait_for_log(r#"from="NOTICE" to="DEBUG""#, DEADLINE)
        .expect("level changed after the reconnect");
    bed.stop();
}
