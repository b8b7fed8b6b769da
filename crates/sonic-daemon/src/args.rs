//! Command-line options shared by both daemons (clap `Args`, flattened into
//! each daemon's `Cli`; all global so subcommands accept them too):
//! [`DbArgs`] (where the databases are) and [`OpsArgs`] (logging, metrics,
//! self-audit).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::logging::{LogLevel, LogOutput};
use crate::startup::DbPaths;

/// Default `--audit-interval` in seconds.
pub const DEFAULT_AUDIT_INTERVAL_SECS: u64 = 300;

/// `--db-config`, `--namespace`: where the databases are. The C++ daemons
/// take no options; this override is the one docs/behavior.md a.2 recommends.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DbArgs {
    /// database_config.json telling where each SONiC database lives.
    #[arg(long, value_name = "PATH", default_value = swss::config::DEFAULT_DB_CONFIG_PATH, global = true)]
    pub db_config: PathBuf,

    /// Multi-ASIC namespace (e.g. `asic0`): the databases are then taken from
    /// the `database_global.json` next to `--db-config`, entry for NAME.
    #[arg(long, value_name = "NAME", global = true)]
    pub namespace: Option<String>,
}

impl DbArgs {
    /// The paths to load the database config from ([`DbPaths::new`]: the
    /// database_global.json is the one next to `--db-config`).
    pub fn paths(&self) -> DbPaths {
        DbPaths::new(self.db_config.clone(), self.namespace.clone())
    }
}

/// `--log-level`, `--metrics-addr`, `--log-output`, `--audit-interval`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct OpsArgs {
    /// Log level: SONiC names EMERG, ALERT, CRIT, ERROR, WARN, NOTICE, INFO,
    /// DEBUG (as `swssloglevel`), or tracing names error/warn/info/debug/trace;
    /// case-insensitive. Default: CONFIG_DB `LOGGER|<daemon>` `LOGLEVEL` when
    /// set at start, else NOTICE; given here, it wins over CONFIG_DB at start
    /// (later CONFIG_DB changes still apply).
    #[arg(long, value_name = "LEVEL", global = true)]
    pub log_level: Option<LogLevel>,

    /// Serve Prometheus metrics (`/metrics`, OpenMetrics text) and `/healthz`
    /// on ADDR, e.g. `127.0.0.1:9101`. Off by default; the shipped systemd
    /// units turn it on at 127.0.0.1:9101 (neighsyncd) and 127.0.0.1:9102
    /// (portsyncd). There is no authentication: a non-loopback ADDR is
    /// served but logged as a warning. At most 64 connections at once, each
    /// with 3 s to send its request.
    #[arg(long, value_name = "ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,

    /// Where logs go: `syslog` (the local syslog socket, as SONiC's C++
    /// daemons log: program tag = the daemon's name, facility user,
    /// priority from the level), `journald` (native journal fields,
    /// SYSLOG_IDENTIFIER = the daemon's name), `stderr`, `stdout`, or
    /// `auto`: journald when stderr is already connected to the journal
    /// (systemd's `JOURNAL_STREAM` matches stderr), else syslog when
    /// /dev/log exists and stderr is not a terminal or a regular file (a
    /// pipe, as under supervisord), else stderr. With `auto`, CONFIG_DB
    /// `LOGGER|<daemon>` `LOGOUTPUT` STDOUT or STDERR applies at start (SYSLOG
    /// keeps auto's choice); later changes of it apply in any case.
    #[arg(long, value_name = "OUTPUT", default_value = "auto", global = true)]
    pub log_output: LogOutput,

    /// The syslog socket of `--log-output syslog` (and of `auto`'s
    /// check). Hidden: for tests and chroots.
    #[arg(long, value_name = "PATH", default_value = crate::logging::native_syslog::DEFAULT_SYSLOG_SOCKET,
          hide = true, global = true)]
    pub syslog_socket: PathBuf,

    /// Seconds between self-audits (the kernel and Redis compared, drift
    /// repaired and exported as `<daemon>_audit_drift`); 0 disables.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_AUDIT_INTERVAL_SECS, global = true)]
    pub audit_interval: u64,
}

impl OpsArgs {
    /// Installs the global logging subscriber with these options
    /// ([`crate::logging::init_with_socket`]): `ident` is the daemon's name
    /// (syslog tag, `LOGGER|<ident>` key); `output` overrides
    /// `--log-output` when it is `auto` (e.g. a one-shot command that
    /// should log to stderr unless told otherwise). Returns the live handle
    /// and the output in use.
    pub fn init_logging(
        &self,
        ident: &'static str,
        auto: Option<LogOutput>,
    ) -> (crate::logging::LogHandle, LogOutput) {
        let output = match (self.log_output, auto) {
            (LogOutput::Auto, Some(o)) => o,
            (o, _) => o,
        };
        crate::logging::init_with_socket(ident, self.log_level, output, &self.syslog_socket)
    }

    /// `--audit-interval` as a duration; `None` when 0 (disabled).
    pub fn audit_every(&self) -> Option<Duration> {
        (self.audit_interval > 0).then(|| Duration::from_secs(self.audit_interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        ops: OpsArgs,
    }

    #[test]
    fn defaults_and_values() {
        let t = T::try_parse_from(["x"]).unwrap();
        assert_eq!(t.ops.log_level, None);
        assert_eq!(t.ops.metrics_addr, None);
        assert_eq!(t.ops.log_output, LogOutput::Auto);
        assert_eq!(t.ops.syslog_socket, PathBuf::from("/dev/log"));
        assert_eq!(t.ops.audit_every(), Some(Duration::from_secs(300)));
        let t = T::try_parse_from([
            "x",
            "--metrics-addr",
            "127.0.0.1:9101",
            "--log-output",
            "journald",
            "--audit-interval",
            "0",
            "--log-level",
            "debug",
            "--syslog-socket",
            "/tmp/x/log.sock",
        ])
        .unwrap();
        assert_eq!(t.ops.log_level, Some(LogLevel(tracing::Level::DEBUG)));
        assert_eq!(t.ops.metrics_addr, Some("127.0.0.1:9101".parse().unwrap()));
        assert_eq!(t.ops.log_output, LogOutput::Journald);
        assert_eq!(t.ops.audit_every(), None);
        assert_eq!(t.ops.syslog_socket, PathBuf::from("/tmp/x/log.sock"));
        assert!(T::try_parse_from(["x", "--metrics-addr", "nowhere"]).is_err());
        let t = T::try_parse_from(["x", "--log-output", "syslog"]).unwrap();
        assert_eq!(t.ops.log_output, LogOutput::Syslog);
        assert!(T::try_parse_from(["x", "--log-output", "file"]).is_err());
        assert!(T::try_parse_from(["x", "--log-level", "LOUD"]).is_err());
    }

    /// `--help` states what the shipped units and the endpoint do, and
    /// stays true to them.
    #[test]
    fn metrics_addr_help_matches_the_units_and_limits() {
        use clap::CommandFactory;
        let help = T::command().render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd");
        for (unit, addr) in [
            ("neighsyncd", "127.0.0.1:9101"),
            ("portsyncd", "127.0.0.1:9102"),
        ] {
            assert!(help.contains(&format!("{addr} ({unit})")), "{help}");
            let text = std::fs::read_to_string(deploy.join(format!("{unit}.service"))).unwrap();
            assert!(
                text.contains(&format!("--metrics-addr {addr}")),
                "{unit}.service"
            );
        }
        assert!(help.contains("no authentication"), "{help}");
        let limits = format!(
            "At most {} connections at once, each with {} s to send its request",
            crate::http::MAX_CONNECTIONS,
            crate::http::HEADER_TIMEOUT.as_secs()
        );
        assert!(help.contains(&limits), "{help}");
    }

    /// `--log-output` names every output and what `auto` picks; the
    /// socket override stays out of `--help`.
    #[test]
    fn log_output_help_and_the_hidden_socket() {
        use clap::CommandFactory;
        let help = T::command().render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for word in [
            "`syslog`",
            "`journald`",
            "`stderr`",
            "`stdout`",
            "/dev/log",
            "LOGOUTPUT",
        ] {
            assert!(help.contains(word), "{word}: {help}");
        }
        assert!(!help.contains("--syslog-socket"), "{help}");
    }

    #[derive(Debug, Parser)]
    struct D {
        #[command(flatten)]
        db: DbArgs,
    }

    #[test]
    fn db_args_defaults_and_paths() {
        let d = D::try_parse_from(["x"]).unwrap();
        let p = d.db.paths();
        assert_eq!(
            p.db_config,
            PathBuf::from(swss::config::DEFAULT_DB_CONFIG_PATH)
        );
        assert_eq!(p.namespace, None);
        assert_eq!(
            p.db_global_config,
            PathBuf::from("/var/run/redis/sonic-db/database_global.json")
        );
        let d = D::try_parse_from(["x", "--db-config", "/tmp/x/db.json", "--namespace", "asic1"])
            .unwrap();
        let p = d.db.paths();
        assert_eq!(p.db_config, PathBuf::from("/tmp/x/db.json"));
        assert_eq!(p.namespace.as_deref(), Some("asic1"));
        assert_eq!(
            p.db_global_config,
            PathBuf::from("/tmp/x/database_global.json")
        );
    }
}
