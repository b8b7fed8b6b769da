//! portsyncd's command line (clap) and log-level names.
//!
//! `portsyncd [--db-config PATH] [--namespace NAME] [--log-level LEVEL]
//! [--port-config-count-follows-config]`.
//! The C++ portsyncd takes no options besides `-h` (portsyncd.cpp main,
//! docs/behavior.md d.1 step 1); the database config override is the one
//! docs/behavior.md a.2 recommends. The options are global so that subcommands
//! (a later `audit`) can share them.

use clap::Parser;

/// Default database_config.json (swss-common
/// `SonicDBConfig::DEFAULT_SONIC_DB_CONFIG_FILE`).
pub const DEFAULT_DB_CONFIG: &str = swss::config::DEFAULT_DB_CONFIG_PATH;

/// Name of the multi-ASIC global config, looked up next to `--db-config`.
pub const DB_GLOBAL_CONFIG_FILE: &str = sonic_daemon::startup::DB_GLOBAL_CONFIG_FILE;

/// The parsed command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "portsyncd",
    version,
    about = "SONiC portsyncd: CONFIG_DB PORT -> APPL_DB PORT_TABLE, \
             PortConfigDone/PortInitDone, host interface state -> STATE_DB PORT_TABLE"
)]
pub struct Cli {
    /// `--db-config`, `--namespace` (shared with the other daemon, see
    /// [`sonic_daemon::DbArgs`]).
    #[command(flatten)]
    pub db: sonic_daemon::DbArgs,

    /// Test-only: size the netlink receive buffer with plain `SO_RCVBUF` to
    /// this many bytes (capped by `net.core.rmem_max`) instead of forcing
    /// 16 MiB, to provoke ENOBUFS.
    #[arg(long, value_name = "BYTES", hide = true, global = true)]
    pub netlink_rcvbuf: Option<usize>,

    /// Keep APPL_DB PORT_TABLE:PortConfigDone `count` equal to the number of
    /// CONFIG_DB PORT entries after start-up, so that a warm reboot after
    /// dynamic port breakout passes orchagent's port count check
    /// (sonic-swss issue 2989). Off: the count is written once, at a cold
    /// start, as the C++ portsyncd does.
    #[arg(long)]
    pub port_config_count_follows_config: bool,

    /// `--log-level`, `--metrics-addr`, `--log-output`, `--audit-interval`
    /// (shared with the other daemon, see [`sonic_daemon::OpsArgs`]).
    #[command(flatten)]
    pub ops: sonic_daemon::OpsArgs,

    /// What to do; the daemon runs when no command is given.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands. Running the daemon is the default (no subcommand).
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Compare the kernel links with STATE_DB PORT_TABLE for the ports in
    /// APPL_DB; exit 0 consistent, 1 drift, 2 error.
    Audit(crate::audit::AuditArgs),
}

impl Cli {
    /// Where the databases are: `--db-config`, `--namespace` and the
    /// `database_global.json` in the directory of `--db-config` (on SONiC
    /// both live in `/var/run/redis/sonic-db/`).
    pub fn db_paths(&self) -> sonic_daemon::DbPaths {
        self.db.paths()
    }
}

/// Log levels (SONiC names) come from the shared ops crate.
pub use sonic_daemon::logging::{LogLevel, UnknownLogLevel};

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use tracing::Level;

    /// The names themselves are tested with the shared mapping
    /// (sonic_daemon::logging); here only that the CLI uses it.
    #[test]
    fn log_level_takes_sonic_names_and_rejects_others() {
        let cli = Cli::try_parse_from(["portsyncd", "--log-level", "NOTICE"]).unwrap();
        assert!(cli.ops.log_level.is_some());
        assert!(Cli::try_parse_from(["portsyncd", "--log-level", "LOUD"]).is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let cli = Cli::try_parse_from(["portsyncd"]).unwrap();
        assert_eq!(cli.db.db_config, PathBuf::from(DEFAULT_DB_CONFIG));
        assert_eq!(cli.db.namespace, None);
        // Not given: NOTICE until CONFIG_DB LOGGER says otherwise.
        assert_eq!(cli.ops.log_level, None);
        // Off unless asked for: the count is the C++'s.
        assert!(!cli.port_config_count_follows_config);
        assert_eq!(LogLevel::DEFAULT, LogLevel(Level::INFO));
        assert_eq!(
            cli.db_paths().db_global_config,
            PathBuf::from("/var/run/redis/sonic-db/database_global.json")
        );

        let cli = Cli::try_parse_from([
            "portsyncd",
            "--db-config",
            "/tmp/x/db.json",
            "--namespace",
            "asic1",
            "--log-level",
            "DEBUG",
        ])
        .unwrap();
        assert_eq!(cli.db.db_config, PathBuf::from("/tmp/x/db.json"));
        assert!(!cli.port_config_count_follows_config);
        assert_eq!(cli.db.namespace.as_deref(), Some("asic1"));
        assert_eq!(cli.ops.log_level, Some(LogLevel(Level::DEBUG)));
        assert_eq!(
            cli.db_paths().db_global_config,
            PathBuf::from("/tmp/x/database_global.json")
        );
    }

    #[test]
    fn port_config_count_follows_config_is_a_flag() {
        let cli = Cli::try_parse_from(["portsyncd", "--port-config-count-follows-config"]).unwrap();
        assert!(cli.port_config_count_follows_config);
        assert!(
            Cli::try_parse_from(["portsyncd", "--port-config-count-follows-config", "yes"])
                .is_err()
        );
    }

    #[test]
    fn bad_options_are_rejected() {
        assert!(Cli::try_parse_from(["portsyncd", "--log-level", "LOUD"]).is_err());
        assert!(Cli::try_parse_from(["portsyncd", "-x"]).is_err());
        assert!(Cli::try_parse_from(["portsyncd", "extra"]).is_err());
    }
}
