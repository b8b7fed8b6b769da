//! Multi-ASIC, end to end: two real redis-servers (the host's and
//! `asic0`'s), laid out as on a multi-ASIC SONiC box
//! (`/var/run/redis/sonic-db/database_config.json` and
//! `database_global.json` for the host, `/var/run/redis0/sonic-db/` for
//! asic0, the global file including the latter by a relative path), and
//! both daemons started with `--namespace asic0` inside the ASIC's network
//! namespace: everything they write lands in asic0's Redis and nothing in
//! the host's. A namespace the global file does not list is a start-up
//! error naming the file and the namespace.

#![allow(clippy::unwrap_used)]

mod common;
mod ops_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{wait_pending_set, DEADLINE};
use ops_common::{neighsyncd_bin, portsyncd_bin, text};
use redis::Commands;
use testbed::daemon::Daemon;
use testbed::netns::NeighTopology;
use testbed::redis_server::RedisServer;

/// `<root>/redis/sonic-db/{database_config,database_global}.json` (host)
/// and `<root>/redis0/sonic-db/database_config.json` (asic0), copies of the
/// two servers' configs. Returns the host database_config.json.
fn multi_asic_layout(root: &Path, host: &RedisServer, asic0: &RedisServer) -> PathBuf {
    let host_dir = root.join("redis/sonic-db");
    let asic_dir = root.join("redis0/sonic-db");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::create_dir_all(&asic_dir).unwrap();
    std::fs::copy(host.db_config_path(), host_dir.join("database_config.json")).unwrap();
    std::fs::copy(
        asic0.db_config_path(),
        asic_dir.join("database_config.json"),
    )
    .unwrap();
    // As sonic-buildimage's database_global.json.j2 writes it.
    let global = serde_json::json!({
        "INCLUDES": [
            { "include": "database_config.json" },
            { "include": "../../redis0/sonic-db/database_config.json",
              "namespace": "asic0" }
        ],
        "VERSION": "1.0"
    });
    std::fs::write(
        host_dir.join("database_global.json"),
        serde_json::to_string_pretty(&global).unwrap(),
    )
    .unwrap();
    host_dir.join("database_config.json")
}

/// Keys in every database of `redis` (`INFO keyspace`), e.g. `db0:keys=3,...`.
fn keyspace(redis: &RedisServer) -> Vec<String> {
    let info: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(&mut redis.conn(0).unwrap())
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("db"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn namespace_asic0_writes_only_to_asic0_redis() {
    let portsyncd = portsyncd_bin();
    let host = RedisServer::start().unwrap();
    let asic0 = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_config = multi_asic_layout(dir.path(), &host, &asic0);
    let cfg = db_config.to_str().unwrap();
    // The ASIC's network namespace (asic0 on the box), with one port.
    let topo = NeighTopology::new(1).unwrap();
    let port = topo.port(0).to_owned();
    let new_port = "Ethernet8";
    let _: () = asic0
        .conn(4)
        .unwrap()
        .hset_multiple(
            format!("PORT|{new_port}"),
            &[("lanes", "8"), ("speed", "100000")],
        )
        .unwrap();
    assert!(keyspace(&host).is_empty(), "{:?}", keyspace(&host));

    let args = ["--db-config", cfg, "--namespace", "asic0"];
    let mut neigh = Daemon::start(Some(topo.dut()), &neighsyncd_bin(), &args).unwrap();
    let mut port_d = Daemon::start(Some(topo.dut()), &portsyncd, &args).unwrap();
    neigh.wait_for_log(common::READY, DEADLINE).unwrap();
    port_d
        .wait_for_log("started; following link events", DEADLINE)
        .unwrap();

    // A neighbour and a new port: APPL_DB of asic0.
    let ip = NeighTopology::peer_ip4(0).to_string();
    topo.dut()
        .neigh_add(&port, &ip, "02:00:00:00:a0:01")
        .unwrap();
    topo.dut()
        .ip(&[
            "link", "add", new_port, "type", "veth", "peer", "name", "p8",
        ])
        .unwrap();
    let mut appl = asic0.conn(0).unwrap();
    wait_pending_set(
        &mut appl,
        &format!("{port}:{ip}"),
        "02:00:00:00:a0:01",
        "IPv4",
    );
    let start = Instant::now();
    loop {
        let pending: Vec<String> = appl.smembers("PORT_TABLE_KEY_SET").unwrap();
        if pending.iter().any(|k| k == new_port) && pending.iter().any(|k| k == "PortConfigDone") {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "PORT_TABLE_KEY_SET of asic0: {pending:?}\n{}",
            port_d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let restore_count: Option<String> = asic0
        .conn(6)
        .unwrap()
        .hget("WARM_RESTART_TABLE|neighsyncd", "restore_count")
        .unwrap();
    assert_eq!(restore_count.as_deref(), Some("0"));

    // Stop both (flushing): the host's Redis never got a single key.
    assert_eq!(neigh.sigterm().unwrap().code(), Some(0), "{}", neigh.log());
    assert_eq!(
        port_d.sigterm().unwrap().code(),
        Some(0),
        "{}",
        port_d.log()
    );
    assert!(
        keyspace(&host).is_empty(),
        "the host's Redis was written: {:?}",
        keyspace(&host)
    );
    assert!(!keyspace(&asic0).is_empty());
}

#[test]
fn unknown_namespace_exits_non_zero_naming_file_and_namespace() {
    let portsyncd = portsyncd_bin();
    let host = RedisServer::start().unwrap();
    let asic0 = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_config = multi_asic_layout(dir.path(), &host, &asic0);
    let global = db_config.with_file_name("database_global.json");
    for (bin, extra) in [
        (neighsyncd_bin(), &[][..]),
        (neighsyncd_bin(), &["restore"][..]),
        (portsyncd, &[][..]),
    ] {
        let mut args = vec![
            "--db-config",
            db_config.to_str().unwrap(),
            "--namespace",
            "asic7",
        ];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(&bin)
            .args(&args)
            .args(["--log-output", "stderr"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bin:?} {args:?}: {}", text(&out));
        assert!(
            stderr.contains(global.to_str().unwrap()) && stderr.contains("asic7"),
            "{bin:?} {args:?} does not name {global:?} and asic7: {}",
            text(&out)
        );
    }
    assert!(keyspace(&host).is_empty() && keyspace(&asic0).is_empty());
}
