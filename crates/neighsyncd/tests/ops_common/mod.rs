//! Helpers of the operations tests (ops_supervisord.rs, ops_multi_asic.rs,
//! ops_deb.rs): the repository root, portsyncd's binary, running an
//! external tool that must be installed.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The neighsyncd binary of this test build.
pub fn neighsyncd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_neighsyncd"))
}

/// The portsyncd binary next to neighsyncd's (another package's binary),
/// (re)built with the same profile so it is current.
pub fn portsyncd_bin() -> PathBuf {
    let neighsyncd = neighsyncd_bin();
    let bin = neighsyncd.with_file_name("portsyncd");
    let profile_dir = neighsyncd.parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "portsyncd", "--bin", "portsyncd", "--locked"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(repo_root());
    if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "cargo build -p portsyncd failed");
    assert!(bin.exists(), "{bin:?} missing after the build");
    bin
}

/// Runs `prog args...` to completion. A tool that is not installed fails the
/// test (never a skip): scripts/test.sh installs `package`.
pub fn run(prog: &str, args: &[&str], package: &str) -> Output {
    Command::new(prog).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {prog} ({e}): install {package} (scripts/test.sh does)")
    })
}

/// stdout and stderr of `out`, with its status, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
