//! portsyncd is never stopped by one bad key: keys of the wrong type in
//! every table it reads or writes (CONFIG_DB PORT, LOGGER, WARM_RESTART,
//! DEVICE_METADATA; STATE_DB PORT_TABLE, WARM_RESTART_*; APPL_DB
//! PORT_TABLE) are logged with their key, skipped, and the good ports still
//! get PortConfigDone, their STATE_DB entry and PortInitDone.

mod common;

use common::*;
use redis::Commands;

#[test]
fn wrong_type_keys_never_hold_back_port_init_done() {
    let mut bed = Bed::new();
    bed.config_port("Ethernet0", &[("lanes", "0"), ("admin_status", "up")]);
    bed.config_port("Ethernet4", &[("lanes", "4"), ("admin_status", "up")]);
    bed.config_port("Ethernet16", &[("lanes", "16"), ("admin_status", "up")]);
    let mut cfg = bed.db(CONFIG_DB);
    let mut state = bed.db(STATE_DB);
    let mut appl = bed.db(APPL_DB);
    for key in [
        "PORT|Ethernet8",
        "LOGGER|portsyncd",
        "WARM_RESTART|swss",
        "DEVICE_METADATA|localhost",
    ] {
        let () = cfg.set(key, "x").unwrap();
    }
    for key in [
        "PORT_TABLE|Ethernet0",
        "WARM_RESTART_ENABLE_TABLE|swss",
        "WARM_RESTART_TABLE|portsyncd",
    ] {
        let () = state.set(key, "x").unwrap();
    }
    let () = appl.set("PORT_TABLE:Ethernet12", "x").unwrap();

    bed.start(&[]);
    // Ethernet8 (a string) is not a port: three configured, three counted.
    assert_eq!(
        bed.appl_hash("_PORT_TABLE:PortConfigDone"),
        fvs(&[("count", "3")])
    );
    let mut orch = bed.orchagent();
    let popped = orch.drain();
    assert!(popped.contains_key("Ethernet0") && popped.contains_key("Ethernet4"));

    // Ethernet0's STATE_DB key is a string: its write is dropped, Ethernet4
    // gets its entry, and PortInitDone still comes.
    bed.add_link("Ethernet0");
    bed.add_link("Ethernet4");
    bed.add_link("Ethernet16");
    bed.wait_state("Ethernet4", &[("state", "ok")]);
    orch.wait_port_init_done();
    // A key turned bad at run time does not stop it either.
    let () = state.set("PORT_TABLE|Ethernet4", "y").unwrap();
    bed.dut_ip(&["link", "set", "dev", "Ethernet4", "mtu", "1400"]);
    bed.barrier("Ethernet16", 9000);
    let s: String = state.get("PORT_TABLE|Ethernet0").unwrap();
    assert_eq!(s, "x", "a bad key is left as it was");

    let log = bed.daemon().log();
    for key in [
        "PORT|Ethernet8",
        "PORT_TABLE|Ethernet0",
        "PORT_TABLE|Ethernet4",
        "WARM_RESTART_ENABLE_TABLE|swss",
        "DEVICE_METADATA|localhost",
        "PORT_TABLE:Ethernet12",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("unusable database entry") && l.contains(key)),
            "no report naming {key}:\n{log}"
        );
    }
    bed.stop();
}
