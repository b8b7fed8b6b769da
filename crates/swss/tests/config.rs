//! database_config.json / database_global.json parsing and DbConnector
//! against a real redis-server (docs/behavior.md a.1, a.2).

mod common;

use std::path::{Path, PathBuf};

use redis::Commands;
use swss::config::ConfigError;
use swss::{DbConfig, DbConnector, RedisAddr};
use testbed::redis_server::RedisServer;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write");
    p
}

const GOOD: &str = r#"{
    "INSTANCES": {
        "redis": {"hostname": "127.0.0.1", "port": 6379, "unix_socket_path": "/var/run/redis/redis.sock"},
        "redis_chassis": {"hostname": "redis_chassis.server", "port": 6380}
    },
    "DATABASES": {
        "APPL_DB": {"id": 0, "separator": ":", "instance": "redis"},
        "CONFIG_DB": {"id": 4, "separator": "|", "instance": "redis"},
        "STATE_DB": {"id": 6, "separator": "|", "instance": "redis"},
        "CHASSIS_APP_DB": {"id": 12, "separator": "|", "instance": "redis_chassis"},
        "WEIRD_DB": {"id": 20, "separator": "/", "instance": "redis"},
        "ORPHAN_DB": {"id": 21, "separator": ":", "instance": "nowhere"}
    },
    "VERSION": "1.0"
}"#;

fn err_text(r: Result<DbConfig, ConfigError>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn good_file_resolves_names_ids_separators_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "database_config.json", GOOD);
    let c = DbConfig::load(&p).unwrap();

    let appl = c.location("APPL_DB").unwrap();
    assert_eq!(
        (appl.name.as_str(), appl.id, appl.separator),
        ("APPL_DB", 0, ':')
    );
    assert_eq!(
        appl.addr,
        RedisAddr::Unix("/var/run/redis/redis.sock".into())
    );
    let cfg = c.location("CONFIG_DB").unwrap();
    assert_eq!((cfg.id, cfg.separator), (4, '|'));
    let state = c.location("STATE_DB").unwrap();
    assert_eq!((state.id, state.separator), (6, '|'));
    // No unix_socket_path: TCP to hostname:port.
    let chassis = c.location("CHASSIS_APP_DB").unwrap();
    assert_eq!(
        chassis.addr,
        RedisAddr::Tcp {
            host: "redis_chassis.server".into(),
            port: 6380
        }
    );
    assert_eq!(
        c.tcp_location("APPL_DB").unwrap().addr,
        RedisAddr::Tcp {
            host: "127.0.0.1".into(),
            port: 6379
        }
    );
}

#[test]
fn lookup_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "database_config.json", GOOD);
    let c = DbConfig::load(&p).unwrap();
    let shown = p.display().to_string();

    let e = c.location("NO_SUCH_DB").unwrap_err().to_string();
    assert!(
        e.contains(&shown) && e.contains("unknown database \"NO_SUCH_DB\""),
        "{e}"
    );
    let e = c.location("WEIRD_DB").unwrap_err().to_string();
    assert!(e.contains(&shown) && e.contains("separator \"/\""), "{e}");
    let e = c.location("ORPHAN_DB").unwrap_err().to_string();
    assert!(e.contains("unknown instance \"nowhere\""), "{e}");
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let e = err_text(DbConfig::load(Path::new(
        "/nonexistent/dir/database_config.json",
    )));
    assert!(
        e.contains("cannot read database config /nonexistent/dir/database_config.json"),
        "{e}"
    );
}

#[test]
fn bad_json_reports_line_and_column() {
    let e = err_text(DbConfig::from_json(
        "{\n  \"INSTANCES\": {,\n}",
        Path::new("/etc/db.json"),
    ));
    assert!(
        e.contains("invalid JSON in database config /etc/db.json:2:"),
        "{e}"
    );
}

#[test]
fn each_missing_member_is_named() {
    let cases = [
        (
            r#"{"DATABASES": {}}"#,
            "the top level is missing \"INSTANCES\"",
        ),
        (
            r#"{"INSTANCES": {}}"#,
            "the top level is missing \"DATABASES\"",
        ),
        (
            r#"{"INSTANCES": {"redis": {"port": 1}}, "DATABASES": {}}"#,
            "instance \"redis\" is missing \"hostname\"",
        ),
        (
            r#"{"INSTANCES": {"redis": {"hostname": "h"}}, "DATABASES": {}}"#,
            "instance \"redis\" is missing \"port\"",
        ),
        (
            r#"{"INSTANCES": {}, "DATABASES": {"APPL_DB": {"separator": ":", "instance": "redis"}}}"#,
            "database \"APPL_DB\" is missing \"id\"",
        ),
        (
            r#"{"INSTANCES": {}, "DATABASES": {"APPL_DB": {"id": 0, "instance": "redis"}}}"#,
            "database \"APPL_DB\" is missing \"separator\"",
        ),
        (
            r#"{"INSTANCES": {}, "DATABASES": {"APPL_DB": {"id": 0, "separator": ":"}}}"#,
            "database \"APPL_DB\" is missing \"instance\"",
        ),
        (
            r#"{"INSTANCES": {"redis": {"hostname": "h", "port": "6379"}}, "DATABASES": {}}"#,
            "instance \"redis\": \"port\" must be an integer in 0..=65535, got \"6379\"",
        ),
        (
            r#"{"INSTANCES": {}, "DATABASES": {"APPL_DB": {"id": -1, "separator": ":", "instance": "r"}}}"#,
            "database \"APPL_DB\": \"id\" must be an integer",
        ),
    ];
    for (text, want) in cases {
        let e = err_text(DbConfig::from_json(text, Path::new("/f.json")));
        assert!(
            e.contains("/f.json") && e.contains(want),
            "for {text}\n got {e}\nwant {want}"
        );
    }
}

#[test]
fn global_file_selects_the_namespace_include_relative_to_its_dir() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("run/redis/sonic-db");
    write(
        dir.path(),
        "run/redis/sonic-db/database_config.json",
        &GOOD.replace("/var/run/redis/redis.sock", "/default.sock"),
    );
    write(
        dir.path(),
        "run/redis0/sonic-db/database_config.json",
        &GOOD.replace("/var/run/redis/redis.sock", "/asic0.sock"),
    );
    let global = write(
        &base,
        "database_global.json",
        r#"{"INCLUDES": [
            {"include": "database_config.json"},
            {"namespace": "asic0", "include": "../../redis0/sonic-db/database_config.json"},
            {"container_name": "dpu0", "include": "nope.json"}
        ], "VERSION": "1.0"}"#,
    );
    let d = DbConfig::load_for_namespace(&global, "").unwrap();
    assert_eq!(
        d.location("APPL_DB").unwrap().addr,
        RedisAddr::Unix("/default.sock".into())
    );
    let a = DbConfig::load_for_namespace(&global, "asic0").unwrap();
    assert_eq!(
        a.location("APPL_DB").unwrap().addr,
        RedisAddr::Unix("/asic0.sock".into())
    );

    let e = DbConfig::load_for_namespace(&global, "asic9")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no entry for namespace \"asic9\"") && e.contains("database_global.json"),
        "{e}"
    );

    let bad = write(
        &base,
        "bad_global.json",
        r#"{"INCLUDES": [{"namespace": "asic1"}]}"#,
    );
    let e = DbConfig::load_for_namespace(&bad, "asic1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("INCLUDES[0] is missing \"include\""), "{e}");
    let missing = write(
        &base,
        "missing_global.json",
        r#"{"INCLUDES": [{"include": "gone.json"}]}"#,
    );
    let e = DbConfig::load_for_namespace(&missing, "")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot read database config") && e.contains("gone.json"),
        "{e}"
    );
}

#[test]
fn testbed_config_has_the_sonic_databases() {
    let server = RedisServer::start().unwrap();
    let c = DbConfig::load(server.db_config_path()).unwrap();
    for (name, id, sep) in [
        ("APPL_DB", 0, ':'),
        ("CONFIG_DB", 4, '|'),
        ("STATE_DB", 6, '|'),
    ] {
        let l = c.location(name).unwrap();
        assert_eq!((l.id, l.separator), (id, sep), "{name}");
        assert_eq!(l.addr, RedisAddr::Unix(server.socket_path().to_path_buf()));
    }
    let g = DbConfig::load_for_namespace(server.db_global_config_path(), "").unwrap();
    assert_eq!(
        g.location("STATE_DB").unwrap(),
        c.location("STATE_DB").unwrap()
    );
}

#[tokio::test]
async fn connector_selects_the_db_over_unix_and_tcp() {
    let server = RedisServer::start_tcp().unwrap();
    let c = DbConfig::load(server.db_config_path()).unwrap();

    let unix = DbConnector::new(c.location("CONFIG_DB").unwrap()).unwrap();
    let mut conn = unix.connect().await.unwrap();
    let _: () = redis::AsyncCommands::hset(&mut conn, "PORT|Ethernet0", "mtu", "9100")
        .await
        .unwrap();
    let mut raw4 = server.conn(4).unwrap();
    let mtu: String = raw4.hget("PORT|Ethernet0", "mtu").unwrap();
    assert_eq!(mtu, "9100");
    let mut raw0 = server.conn(0).unwrap();
    assert!(!raw0.exists::<_, bool>("PORT|Ethernet0").unwrap());

    let loc = c.tcp_location("STATE_DB").unwrap();
    assert!(matches!(loc.addr, RedisAddr::Tcp { port, .. } if Some(port) == server.tcp_port()));
    let tcp = DbConnector::new(loc).unwrap();
    assert_eq!((tcp.id(), tcp.separator()), (6, '|'));
    let mut conn = tcp.connect().await.unwrap();
    let _: () = redis::AsyncCommands::set(&mut conn, "x", "1")
        .await
        .unwrap();
    let mut raw6 = server.conn(6).unwrap();
    assert_eq!(raw6.get::<_, String>("x").unwrap(), "1");
}

#[tokio::test]
async fn connect_errors_are_connection_errors_and_retrying_waits_for_the_server() {
    let mut server = RedisServer::start().unwrap();
    let c = DbConfig::load(server.db_config_path()).unwrap();
    let connector = DbConnector::new(c.location("APPL_DB").unwrap()).unwrap();
    server.stop().unwrap();

    let e = connector.connect().await.unwrap_err();
    assert!(e.is_connection_error(), "{e}");
    let e = connector.pubsub().await.err().expect("pubsub must fail");
    assert!(e.is_connection_error(), "{e}");

    let task = tokio::spawn({
        let connector = connector.clone();
        async move { connector.connect_retrying().await }
    });
    // Let a few attempts fail first (the task runs while this one sleeps).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(!task.is_finished());
    server.restart().unwrap();
    let mut conn = task.await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
}
