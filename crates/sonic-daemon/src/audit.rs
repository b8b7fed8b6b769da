//! The report of a daemon's `audit` subcommand and of its periodic
//! self-audit: what the kernel (under the daemon's rules) implies compared
//! with what Redis holds, key by key. Each daemon keeps its comparison
//! (which entries, which fields); this module holds what both share:
//!
//! * [`DriftKind`] / [`Drift`]: one disagreement, **missing** (expected,
//!   absent from Redis), **stale** (in Redis, not expected) or
//!   **different** (both, other fields);
//! * [`AuditReport`]: the counts and every drift, printed as text
//!   ([`AuditReport::to_text`]) or JSON ([`AuditReport::to_json`]);
//! * the exit status ([`EXIT_CONSISTENT`] 0, [`EXIT_DRIFT`] 1,
//!   [`EXIT_ERROR`] 2) and [`main`], which runs an audit on a
//!   current-thread runtime and prints the outcome;
//! * [`AuditArgs`], the `audit` subcommand's options (`--json`).
//!
//! There is no C++ equivalent (the C++ daemons have no audit).

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use swss::FieldValues;

/// Exit status when the kernel and the database agree.
pub const EXIT_CONSISTENT: u8 = 0;
/// Exit status when at least one entry is missing, stale or different.
pub const EXIT_DRIFT: u8 = 1;
/// Exit status when the audit could not run (database config, Redis,
/// netlink).
pub const EXIT_ERROR: u8 = 2;

/// How many times an audit's kernel dump is retried after an interrupted or
/// failed dump (`NLM_F_DUMP_INTR`, EBUSY) or an overrun, before giving up.
pub const DUMP_ATTEMPTS: usize = 5;

/// Options of the `audit` subcommand (the global `--db-config`,
/// `--namespace` come from the main command line).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct AuditArgs {
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The kind of one disagreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DriftKind {
    /// Expected from the kernel, absent from the database.
    Missing,
    /// In the database, not expected from the kernel.
    Stale,
    /// In both, with other fields.
    Different,
}

impl DriftKind {
    /// `missing`, `stale` or `different` (text and JSON spelling).
    pub const fn as_str(self) -> &'static str {
        match self {
            DriftKind::Missing => "missing",
            DriftKind::Stale => "stale",
            DriftKind::Different => "different",
        }
    }
}

/// One disagreement between the kernel and the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Which kind.
    pub kind: DriftKind,
    /// The key without table prefix, e.g. `Ethernet0:10.0.0.2` (neighsyncd,
    /// APPL_DB `NEIGH_TABLE:<key>`) or `Ethernet0` (portsyncd, STATE_DB
    /// `PORT_TABLE|<key>`).
    pub key: String,
    /// The fields the rules want (`None` for [`DriftKind::Stale`]).
    pub expected: Option<FieldValues>,
    /// The fields the database holds (`None` for [`DriftKind::Missing`]).
    pub actual: Option<FieldValues>,
}

/// Sorts disagreements by kind (missing, stale, different), then key: the
/// order of [`AuditReport::drift`].
pub fn sort_drift(drift: &mut [Drift]) {
    drift.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
}

/// The result of one audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// The daemon's name, e.g. `neighsyncd`.
    pub daemon: &'static str,
    /// What was compared, e.g. `APPL_DB NEIGH_TABLE`.
    pub table: &'static str,
    /// Number of entries the kernel + rules expect.
    pub expected: usize,
    /// Number of entries the database holds.
    pub actual: usize,
    /// Every disagreement, sorted by kind then key ([`sort_drift`]).
    pub drift: Vec<Drift>,
}

impl AuditReport {
    /// True when nothing is missing, stale or different.
    pub fn is_consistent(&self) -> bool {
        self.drift.is_empty()
    }

    /// Number of disagreements of `kind`.
    pub fn count(&self, kind: DriftKind) -> usize {
        self.drift.iter().filter(|d| d.kind == kind).count()
    }

    /// [`EXIT_CONSISTENT`] or [`EXIT_DRIFT`].
    pub fn exit_code(&self) -> u8 {
        if self.is_consistent() {
            EXIT_CONSISTENT
        } else {
            EXIT_DRIFT
        }
    }

    /// One line per disagreement, then a summary line:
    ///
    /// ```text
    /// missing   Ethernet0:10.0.0.2 expected neigh=02:00:00:00:00:01 family=IPv4
    /// stale     Ethernet0:10.9.9.9 actual neigh=02:00:00:00:00:99 family=IPv4
    /// different Ethernet0:10.0.0.3 expected neigh=... family=IPv4 actual neigh=... family=IPv4
    /// neighsyncd audit of APPL_DB NEIGH_TABLE: drift 3 (missing 1, stale 1, different 1); expected 5, present 5
    /// ```
    ///
    /// (`consistent` instead of `drift N` when there is none).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for d in &self.drift {
            out.push_str(&format!("{:<9} {}", d.kind.as_str(), d.key));
            if let Some(e) = &d.expected {
                out.push_str(" expected ");
                out.push_str(&fields_text(e));
            }
            if let Some(a) = &d.actual {
                out.push_str(" actual ");
                out.push_str(&fields_text(a));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "{} audit of {}: {} (missing {}, stale {}, different {}); expected {}, present {}\n",
            self.daemon,
            self.table,
            if self.is_consistent() {
                "consistent".to_string()
            } else {
                format!("drift {}", self.drift.len())
            },
            self.count(DriftKind::Missing),
            self.count(DriftKind::Stale),
            self.count(DriftKind::Different),
            self.expected,
            self.actual,
        ));
        out
    }

    /// The report as JSON:
    ///
    /// ```json
    /// {"daemon":"neighsyncd","table":"APPL_DB NEIGH_TABLE","consistent":false,
    ///  "expected":5,"actual":5,"drift_count":2,
    ///  "summary":{"missing":1,"stale":1,"different":0},
    ///  "missing":[{"key":"Ethernet0:10.0.0.2","expected":{"neigh":"..","family":"IPv4"}}],
    ///  "stale":[{"key":"Ethernet0:10.9.9.9","actual":{"neigh":"..","family":"IPv4"}}],
    ///  "different":[{"key":"..","expected":{..},"actual":{..}}]}
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        let list = |kind: DriftKind| -> serde_json::Value {
            self.drift
                .iter()
                .filter(|d| d.kind == kind)
                .map(|d| {
                    let mut o = serde_json::Map::new();
                    o.insert("key".into(), d.key.clone().into());
                    if let Some(e) = &d.expected {
                        o.insert("expected".into(), fields_json(e));
                    }
                    if let Some(a) = &d.actual {
                        o.insert("actual".into(), fields_json(a));
                    }
                    serde_json::Value::Object(o)
                })
                .collect()
        };
        serde_json::json!({
            "daemon": self.daemon,
            "table": self.table,
            "consistent": self.is_consistent(),
            "expected": self.expected,
            "actual": self.actual,
            "drift_count": self.drift.len(),
            "summary": {
                "missing": self.count(DriftKind::Missing),
                "stale": self.count(DriftKind::Stale),
                "different": self.count(DriftKind::Different),
            },
            "missing": list(DriftKind::Missing),
            "stale": list(DriftKind::Stale),
            "different": list(DriftKind::Different),
        })
    }
}

fn fields_text(fvs: &FieldValues) -> String {
    fvs.iter()
        .map(|(f, v)| format!("{f}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn fields_json(fvs: &FieldValues) -> serde_json::Value {
    serde_json::Value::Object(
        fvs.iter()
            .map(|(f, v)| (f.clone(), serde_json::Value::from(v.clone())))
            .collect(),
    )
}

/// Why an audit could not run (exit status [`EXIT_ERROR`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// database_config.json / database_global.json missing or broken.
    #[error(transparent)]
    Config(#[from] swss::config::ConfigError),
    /// Redis unreachable (one connection attempt, no retry) or an error
    /// reply; `context` names the step.
    #[error("{context}: {source}")]
    Redis {
        /// The step, e.g. `reading APPL_DB NEIGH_TABLE`.
        context: &'static str,
        /// The error.
        source: swss::SwssError,
    },
    /// The netlink socket could not be opened, asked for a dump, or read.
    #[error(transparent)]
    Netlink(#[from] sonic_netlink::socket::SocketError),
    /// The kernel dump kept failing ([`DUMP_ATTEMPTS`] times).
    #[error("kernel {what} dump failed {DUMP_ATTEMPTS} times (last errno {errno})")]
    Dump {
        /// `link` or `neighbor`.
        what: &'static str,
        /// Positive errno of the last failure (0 for an overrun).
        errno: i32,
    },
}

/// `map_err` for a Redis step of an audit: [`AuditError::Redis`] with
/// `context`.
pub fn redis_err(context: &'static str) -> impl FnOnce(swss::SwssError) -> AuditError {
    move |source| AuditError::Redis { context, source }
}

/// The `<daemon> audit` command: runs `audit` on a current-thread runtime,
/// prints the report on stdout (text, or JSON with `--json`) or the error
/// on stderr (and, with `--json`, `{"daemon":..,"error":..}` on stdout),
/// and returns the exit status: [`EXIT_CONSISTENT`], [`EXIT_DRIFT`] or
/// [`EXIT_ERROR`] (also when the runtime cannot start).
pub fn main<F, E>(daemon: &str, args: &AuditArgs, audit: F) -> ExitCode
where
    F: Future<Output = Result<AuditReport, E>>,
    E: Display,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{daemon} audit: cannot start the tokio runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(audit) {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::from(report.exit_code())
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"daemon": daemon, "error": e.to_string()})
                );
            }
            eprintln!("{daemon} audit: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fv(mac: &str, family: &str) -> FieldValues {
        vec![
            ("neigh".to_owned(), mac.to_owned()),
            ("family".to_owned(), family.to_owned()),
        ]
    }

    fn report(drift: Vec<Drift>) -> AuditReport {
        AuditReport {
            daemon: "neighsyncd",
            table: "APPL_DB NEIGH_TABLE",
            expected: 1,
            actual: 1,
            drift,
        }
    }

    #[test]
    fn report_text_json_and_exit_codes() {
        let mut drift = vec![
            Drift {
                kind: DriftKind::Stale,
                key: "Ethernet0:10.9.9.9".into(),
                expected: None,
                actual: Some(fv("02:00:00:00:00:99", "IPv4")),
            },
            Drift {
                kind: DriftKind::Missing,
                key: "Ethernet0:10.0.0.2".into(),
                expected: Some(fv("02:00:00:00:00:02", "IPv4")),
                actual: None,
            },
        ];
        sort_drift(&mut drift);
        assert_eq!(drift[0].kind, DriftKind::Missing);
        let report = report(drift);
        assert_eq!(report.exit_code(), EXIT_DRIFT);
        assert_eq!(report.count(DriftKind::Stale), 1);
        let text = report.to_text();
        assert!(text.starts_with(
            "missing   Ethernet0:10.0.0.2 expected neigh=02:00:00:00:00:02 family=IPv4\n"
        ));
        assert!(text.contains("stale     Ethernet0:10.9.9.9 actual neigh=02:00:00:00:00:99"));
        assert!(text.ends_with(
            "neighsyncd audit of APPL_DB NEIGH_TABLE: drift 2 (missing 1, stale 1, different 0); expected 1, present 1\n"
        ));
        let json = report.to_json();
        assert_eq!(json["daemon"], "neighsyncd");
        assert_eq!(json["consistent"], false);
        assert_eq!(json["drift_count"], 2);
        assert_eq!(json["summary"]["missing"], 1);
        assert_eq!(json["missing"][0]["key"], "Ethernet0:10.0.0.2");
        assert_eq!(json["missing"][0]["expected"]["neigh"], "02:00:00:00:00:02");
        assert!(json["missing"][0].get("actual").is_none());
        assert_eq!(json["stale"][0]["actual"]["family"], "IPv4");
        assert_eq!(json["different"].as_array().map(Vec::len), Some(0));

        let ok = AuditReport {
            drift: Vec::new(),
            ..report
        };
        assert_eq!(ok.exit_code(), EXIT_CONSISTENT);
        assert!(ok.to_text().contains(": consistent (missing 0"));
    }

    #[test]
    fn audit_args_parse() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: AuditArgs,
        }
        assert!(T::try_parse_from(["t", "--json"]).unwrap().a.json);
        assert!(!T::try_parse_from(["t"]).unwrap().a.json);
    }
}
