//! The binary's command line and start-up failures (no Redis or namespace
//! needed: these fail before anything is connected).

use std::process::{Command, Output};

fn portsyncd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portsyncd"))
        .args(args)
        .output()
        .expect("run portsyncd")
}

#[test]
fn help_and_version() {
    let out = portsyncd(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--db-config",
        "--namespace",
        "--log-level",
        "--port-config-count-follows-config",
    ] {
        assert!(text.contains(opt), "--help lacks {opt}:\n{text}");
    }
    let out = portsyncd(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_option_and_bad_log_level_fail() {
    let out = portsyncd(&["--frobnicate"]);
    assert!(!out.status.success());
    let out = portsyncd(&["--log-level", "LOUD"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LOUD"));
}

#[test]
fn missing_db_config_exits_nonzero_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-database_config.json");
    let out = portsyncd(&["--db-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-database_config.json"), "{err}");
}

#[test]
fn broken_db_config_exits_nonzero_naming_the_file_and_defect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("database_config.json");
    std::fs::write(&path, "{ \"INSTANCES\": { \"redis\": { \"hostname\": ").unwrap();
    let out = portsyncd(&["--db-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("JSON"), "{err}");

    // Valid JSON, but the instance has no port.
    std::fs::write(
        &path,
        r#"{"INSTANCES": {"redis": {"hostname": "127.0.0.1"}},
            "DATABASES": {"APPL_DB": {"id": 0, "separator": ":", "instance": "redis"}}}"#,
    )
    .unwrap();
    let out = portsyncd(&["--db-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(path.to_str().unwrap()) && err.contains("port"),
        "{err}"
    );
}

#[test]
fn unknown_namespace_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("database_config.json");
    std::fs::write(
        dir.path().join("database_global.json"),
        r#"{"INCLUDES": [{"include": "database_config.json"}]}"#,
    )
    .unwrap();
    let out = portsyncd(&[
        "--db-config",
        config.to_str().unwrap(),
        "--namespace",
        "asic7",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("asic7") && err.contains("database_global.json"),
        "{err}"
    );
}
