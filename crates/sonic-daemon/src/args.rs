//! Command-line options shared by both daemons (clap `Args`, flattened into
//! each daemon's `Cli`; all global so subcommands accept them too).

use std::net::SocketAddr;
use std::time::Duration;

use crate::logging::LogOutput;

/// Default `--audit-interval` in seconds.
pub const DEFAULT_AUDIT_INTERVAL_SECS: u64 = 300;

/// `--metrics-addr`, `--log-output`, `--audit-interval`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct OpsArgs {
    /// Serve Prometheus metrics (`/metrics`, OpenMetrics text) and `/healthz`
    /// on ADDR, e.g. `127.0.0.1:9101`. Off by default.
    #[arg(long, value_name = "ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,

    /// Where logs go: `stderr`, `journald` (native journal fields,
    /// SYSLOG_IDENTIFIER = the daemon's name), or `auto`: journald when
    /// stderr is already connected to the journal (systemd's
    /// `JOURNAL_STREAM` matches stderr), stderr otherwise.
    #[arg(long, value_name = "OUTPUT", default_value = "auto", global = true)]
    pub log_output: LogOutput,

    /// Seconds between self-audits (the kernel and Redis compared, drift
    /// repaired and exported as `<daemon>_audit_drift`); 0 disables.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_AUDIT_INTERVAL_SECS, global = true)]
    pub audit_interval: u64,
}

impl OpsArgs {
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
        assert_eq!(t.ops.metrics_addr, None);
        assert_eq!(t.ops.log_output, LogOutput::Auto);
        assert_eq!(t.ops.audit_every(), Some(Duration::from_secs(300)));
        let t = T::try_parse_from([
            "x",
            "--metrics-addr",
            "127.0.0.1:9101",
            "--log-output",
            "journald",
            "--audit-interval",
            "0",
        ])
        .unwrap();
        assert_eq!(t.ops.metrics_addr, Some("127.0.0.1:9101".parse().unwrap()));
        assert_eq!(t.ops.log_output, LogOutput::Journald);
        assert_eq!(t.ops.audit_every(), None);
        assert!(T::try_parse_from(["x", "--metrics-addr", "nowhere"]).is_err());
        assert!(T::try_parse_from(["x", "--log-output", "syslog"]).is_err());
    }
}
