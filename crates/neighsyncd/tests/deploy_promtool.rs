//! The Prometheus side of `deploy/`, checked with the real `promtool` (Debian
//! `prometheus`, installed by scripts/test.sh): the alert rules load
//! (`promtool check rules`), every alert fires on synthetic series where it
//! should and stays quiet where it should not (`promtool test rules` on
//! `deploy/prometheus/tests/alerts_test.yml`, which must cover each alert
//! both ways), and every query of the Grafana dashboard is valid PromQL
//! (parsed by promtool through a recording-rules wrapper). That the metric
//! names exist is `deploy_metrics.rs`.
//!
//! A missing promtool fails these tests: they must not pass without it.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `promtool args...`; panics (never skips) when it is not installed.
fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's `prometheus` (scripts/test.sh does)"
            )
        })
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `- alert: NAME` names of alerts.yml, in file order.
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

#[test]
fn alert_rules_pass_promtool_check() {
    let rules = std::fs::read_to_string(repo_root().join("deploy/prometheus/alerts.yml")).unwrap();
    let names = alert_names(&rules);
    assert!(names.len() >= 19, "{names:?}");
    let out = promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);
    assert!(out.status.success(), "{}", text(&out));
    // promtool read every rule the file has (none silently dropped).
    let want = format!("SUCCESS: {} rules found", names.len());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&want),
        "{}",
        text(&out)
    );
}

/// For each `alertname:` of a promtool test file, whether it has a case
/// expecting alerts (fires) and one expecting none (`exp_alerts: []`).
fn covered(tests: &str) -> BTreeMap<String, (bool, bool)> {
    let mut cover: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in tests.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname:") {
            current = Some(name.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("exp_alerts:") {
            let name = current.take().expect("exp_alerts without alertname");
            let e = cover.entry(name).or_default();
            if rest.trim() == "[]" {
                e.1 = true;
            } else {
                e.0 = true;
            }
        }
    }
    cover
}

#[test]
fn every_alert_fires_and_stays_quiet_in_promtool_unit_tests() {
    let rules = std::fs::read_to_string(repo_root().join("deploy/prometheus/alerts.yml")).unwrap();
    let tests =
        std::fs::read_to_string(repo_root().join("deploy/prometheus/tests/alerts_test.yml"))
            .unwrap();
    let cover = covered(&tests);
    for name in alert_names(&rules) {
        let (fires, quiet) = cover.get(&name).copied().unwrap_or_default();
        assert!(fires, "{name}: no promtool case where it fires");
        assert!(quiet, "{name}: no promtool case where it stays quiet");
    }
    for name in cover.keys() {
        assert!(
            alert_names(&rules).contains(name),
            "alerts_test.yml tests {name}, which alerts.yml does not define"
        );
    }
    let out = promtool(&["test", "rules", "deploy/prometheus/tests/alerts_test.yml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SUCCESS"),
        "{}",
        text(&out)
    );
}

#[test]
fn coverage_reader_sees_firing_and_quiet_cases() {
    let t = "      - eval_time: 2m\n        alertname: A\n        exp_alerts: []\n\
             \x20     - eval_time: 4m\n        alertname: A\n        exp_alerts:\n\
             \x20         - exp_labels:\n      - eval_time: 1m\n        alertname: B\n\
             \x20       exp_alerts: []\n";
    let c = covered(t);
    assert_eq!(c["A"], (true, true));
    assert_eq!(c["B"], (false, true));
}

/// Every `expr` string in the dashboard JSON.
fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// Grafana's variables replaced by what Grafana sends to Prometheus.
fn grafana_to_promql(expr: &str) -> String {
    let q = expr
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "6h")
        .replace("$instance", ".*");
    assert!(
        !q.contains('$'),
        "dashboard query uses a variable this test does not know: {expr}"
    );
    q
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let dashboard =
        std::fs::read_to_string(repo_root().join("deploy/grafana/sonic-syncd.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut all = Vec::new();
    exprs(&json, &mut all);
    assert!(all.len() >= 20, "only {} queries: {all:?}", all.len());
    // promtool parses rule expressions: one recording rule per query.
    let mut rules = String::from("groups:\n  - name: sonic-syncd-dashboard\n    rules:\n");
    for (i, e) in all.iter().enumerate() {
        let q = serde_json::to_string(&grafana_to_promql(e)).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {q}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard_rules.yml");
    std::fs::write(&path, &rules).unwrap();
    let out = promtool(&["check", "rules", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}\nrules:\n{rules}", text(&out));
    let want = format!("SUCCESS: {} rules found", all.len());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&want),
        "{}",
        text(&out)
    );
    // The wrapper itself rejects a broken query (the check is not vacuous).
    std::fs::write(
        &path,
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: \"sum(rate(neighsyncd_x_total[5m])\"\n",
    )
    .unwrap();
    let out = promtool(&["check", "rules", path.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
}
