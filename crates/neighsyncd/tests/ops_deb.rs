//! The `.deb`, as an operator gets it: built by `cargo deb` from the
//! `[package.metadata.deb]` of crates/neighsyncd/Cargo.toml, installed with
//! `dpkg --root` into a scratch root, checked against the file table of
//! docs/operator-guide.md ("From the .deb") and against the repository's
//! deploy/ files, and its systemd units run through `systemd-analyze
//! verify` (which also checks that each ExecStart binary exists in the root)
//! and `systemd-analyze security --offline=yes` with an exposure ceiling;
//! the shipped promtool unit tests pass where the package puts them.
//!
//! To stay fast, the package is made from this test build's binaries placed
//! where the metadata expects the release ones (`target/release/`), with
//! `--fast` compression and without the separate dbgsym package; the
//! metadata and asset list are the shipped ones.
//!
//! A missing `cargo deb`, `dpkg` or `systemd-analyze` fails the test.

#![allow(clippy::unwrap_used)]

mod ops_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ops_common::{neighsyncd_bin, portsyncd_bin, repo_root, run, text};

/// Highest `systemd-analyze security` exposure (0-100 scale, i.e. 2.6 as
/// printed) any shipped unit may have; raise only for a reason.
const MAX_EXPOSURE: &str = "26";

/// Builds the .deb into `out` from the test binaries; returns its path.
fn build_deb(scratch: &Path, out: &Path) -> PathBuf {
    let release = scratch.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    for bin in [neighsyncd_bin(), portsyncd_bin()] {
        let to = release.join(bin.file_name().unwrap());
        if std::fs::hard_link(&bin, &to).is_err() {
            std::fs::copy(&bin, &to).unwrap();
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "deb",
            "-p",
            "neighsyncd",
            "--no-build",
            "--locked",
            "--fast",
        ])
        .args(["--no-dbgsym", "--no-separate-debug-symbols", "--output"])
        .arg(out)
        .env("CARGO_TARGET_DIR", scratch.join("target"))
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo deb failed (install it with `cargo install cargo-deb --locked`; scripts/test.sh does): {}",
        text(&output)
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs[0].clone()
}

/// The paths of the operator guide's "From the .deb" table: each backticked
/// absolute path, a bare name after one meaning the same directory.
fn guide_paths() -> Vec<String> {
    let guide = std::fs::read_to_string(repo_root().join("docs/operator-guide.md")).unwrap();
    let table = guide
        .split("| Path | What |")
        .nth(1)
        .expect("operator guide has no `| Path | What |` table");
    let mut paths = Vec::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cell = row.split('|').nth(1).unwrap();
        let mut dir = String::new();
        for tok in cell.split('`').skip(1).step_by(2) {
            if tok.starts_with('/') {
                dir = match tok.rfind('/') {
                    Some(i) => tok[..=i].to_owned(),
                    None => unreachable!(),
                };
                paths.push(tok.to_owned());
            } else {
                paths.push(format!("{dir}{tok}"));
            }
        }
    }
    paths
}

#[test]
fn guide_table_reader() {
    let p = guide_paths();
    assert!(p.contains(&"/usr/bin/portsyncd".to_owned()), "{p:?}");
    assert!(
        p.contains(&"/lib/systemd/system/neighsyncd-restore.service".to_owned()),
        "{p:?}"
    );
    assert!(
        p.contains(&"/usr/share/doc/sonic-syncd/".to_owned()),
        "{p:?}"
    );
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{path} in the installed package: {e}"))
}

#[test]
fn deb_installs_where_the_guide_says_and_its_units_verify() {
    let scratch = tempfile::Builder::new()
        .prefix("ops-deb-")
        .tempdir()
        .unwrap();
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let deb = build_deb(scratch.path(), &out);

    // Control fields the guide relies on.
    let field = |f: &str| {
        let o = run(
            "dpkg-deb",
            &["--field", deb.to_str().unwrap(), f],
            "Debian's `dpkg`",
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    assert_eq!(field("Package"), "sonic-syncd");
    assert_eq!(field("Replaces"), "swss");
    assert!(field("Depends").contains("libc6"), "{}", field("Depends"));

    // Install into a scratch root (its dpkg database starts empty; libc6 is
    // the root's business, hence --force-depends).
    let root = scratch.path().join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let r = root.to_str().unwrap();
    let o = run(
        "dpkg",
        &[
            &format!("--root={r}"),
            "--force-depends",
            "-i",
            deb.to_str().unwrap(),
        ],
        "Debian's `dpkg`",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        "dpkg",
        &[&format!("--root={r}"), "-s", "sonic-syncd"],
        "Debian's `dpkg`",
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Status: install ok installed"),
        "{}",
        text(&o)
    );

    // Every path of the guide's table.
    let paths = guide_paths();
    assert!(paths.len() >= 9, "{paths:?}");
    for p in &paths {
        let local = root.join(p.trim_start_matches('/'));
        if let Some(dir) = p.strip_suffix("*.conf") {
            let n = std::fs::read_dir(root.join(dir.trim_start_matches('/')))
                .unwrap_or_else(|e| panic!("{dir}: {e}"))
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "conf")
                })
                .count();
            assert!(n > 0, "no {p}");
        } else if p.ends_with('/') {
            assert!(local.is_dir(), "{p} is not a directory in the package");
        } else {
            assert!(local.is_file(), "{p} is not in the package");
        }
    }
    // The docs the table promises, and the daemons run.
    for doc in [
        "operator-guide.md",
        "differences.md",
        "warm-restart.md",
        "README.md",
    ] {
        read(&root, &format!("/usr/share/doc/sonic-syncd/{doc}"));
    }
    for bin in ["neighsyncd", "portsyncd"] {
        let o = run(
            root.join("usr/bin").join(bin).to_str().unwrap(),
            &["--version"],
            "the package",
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with(bin));
    }
    // The deploy files are shipped as they are in the repository.
    for (repo, installed) in [
        (
            "deploy/systemd/neighsyncd.service",
            "/lib/systemd/system/neighsyncd.service",
        ),
        (
            "deploy/systemd/portsyncd.service",
            "/lib/systemd/system/portsyncd.service",
        ),
        (
            "deploy/systemd/neighsyncd-restore.service",
            "/lib/systemd/system/neighsyncd-restore.service",
        ),
        (
            "deploy/supervisord/neighsyncd.conf",
            "/usr/share/sonic-syncd/supervisord/neighsyncd.conf",
        ),
        (
            "deploy/supervisord/portsyncd.conf",
            "/usr/share/sonic-syncd/supervisord/portsyncd.conf",
        ),
        (
            "deploy/supervisord/restore_neighbors.conf",
            "/usr/share/sonic-syncd/supervisord/restore_neighbors.conf",
        ),
        (
            "deploy/grafana/sonic-syncd.json",
            "/usr/share/sonic-syncd/grafana/sonic-syncd.json",
        ),
        (
            "deploy/prometheus/alerts.yml",
            "/usr/share/sonic-syncd/prometheus/alerts.yml",
        ),
        (
            "deploy/prometheus/tests/alerts_test.yml",
            "/usr/share/sonic-syncd/prometheus/tests/alerts_test.yml",
        ),
    ] {
        let want = std::fs::read_to_string(repo_root().join(repo)).unwrap();
        assert_eq!(
            read(&root, installed),
            want,
            "{installed} differs from {repo}"
        );
    }

    // The operator guide's promtool commands work on the installed files.
    let prom = root.join("usr/share/sonic-syncd/prometheus");
    for args in [
        ["check", "rules", prom.join("alerts.yml").to_str().unwrap()],
        [
            "test",
            "rules",
            prom.join("tests/alerts_test.yml").to_str().unwrap(),
        ],
    ] {
        let o = run("promtool", &args, "Debian's `prometheus`");
        assert!(o.status.success(), "promtool {args:?}: {}", text(&o));
    }

    // Capabilities: only the restore unit may send raw frames.
    let unit = |name: &str| read(&root, &format!("/lib/systemd/system/{name}"));
    let setting = |text: &str, key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    let restore = unit("neighsyncd-restore.service");
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        assert!(
            setting(&restore, key)
                .iter()
                .any(|v| v.contains("CAP_NET_RAW")),
            "neighsyncd-restore.service lost CAP_NET_RAW in {key}"
        );
    }
    assert!(setting(&restore, "RestrictAddressFamilies")[0].contains("AF_PACKET"));
    for name in ["neighsyncd.service", "portsyncd.service"] {
        let u = unit(name);
        assert!(
            !u.lines()
                .any(|l| !l.starts_with('#') && l.contains("CAP_NET_RAW")),
            "{name}"
        );
        assert!(
            !setting(&u, "RestrictAddressFamilies")[0].contains("AF_PACKET"),
            "{name}"
        );
    }
    for name in [
        "neighsyncd.service",
        "portsyncd.service",
        "neighsyncd-restore.service",
    ] {
        let u = unit(name);
        for key in [
            "LimitNOFILE",
            "UMask",
            "IPAddressDeny",
            "IPAddressAllow",
            "PrivateDevices",
            "ProtectKernelTunables",
        ] {
            assert_eq!(setting(&u, key).len(), 1, "{name}: {key}");
        }
    }

    // systemd-analyze verify in the root: systemd's own units (targets the
    // ours are ordered against) copied in from the host's systemd package.
    let sys = root.join("lib/systemd/system");
    let o = run(
        "cp",
        &["-an", "/lib/systemd/system/.", sys.to_str().unwrap()],
        "coreutils",
    );
    assert!(o.status.success(), "{}", text(&o));
    let units = [
        "neighsyncd.service",
        "portsyncd.service",
        "neighsyncd-restore.service",
    ];
    let mut args = vec![format!("--root={r}"), "verify".into()];
    args.extend(units.iter().map(|u| (*u).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run("systemd-analyze", &args, "Debian's `systemd`");
    assert!(o.status.success(), "{}", text(&o));
    // Warnings (an unknown or unparsable setting) do not change the status:
    // none may be printed for our units.
    let stderr = String::from_utf8_lossy(&o.stderr);
    for u in units {
        assert!(!stderr.contains(u), "systemd-analyze verify: {stderr}");
    }
    // The binary check is real: without the binary, verify fails.
    std::fs::rename(
        root.join("usr/bin/portsyncd"),
        root.join("usr/bin/portsyncd.off"),
    )
    .unwrap();
    let o = run(
        "systemd-analyze",
        &[&format!("--root={r}"), "verify", "portsyncd.service"],
        "Debian's `systemd`",
    );
    assert!(!o.status.success(), "{}", text(&o));
    std::fs::rename(
        root.join("usr/bin/portsyncd.off"),
        root.join("usr/bin/portsyncd"),
    )
    .unwrap();

    for u in units {
        let o = run(
            "systemd-analyze",
            &[
                "security",
                "--offline=yes",
                &format!("--root={r}"),
                &format!("--threshold={MAX_EXPOSURE}"),
                "--no-pager",
                u,
            ],
            "Debian's `systemd`",
        );
        assert!(
            o.status.success(),
            "{u} above exposure {MAX_EXPOSURE}: {}",
            text(&o)
        );
    }
}
