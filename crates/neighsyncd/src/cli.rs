//! neighsyncd's command line (clap) and log-level names.
//!
//! `neighsyncd [--db-config PATH] [--namespace NAME] [--log-level LEVEL]
//! [COMMAND]`. Without a command the daemon runs. The C++ neighsyncd takes no
//! options; the database config override is the one docs/behavior.md a.2
//! recommends. The options are global so subcommands (`restore`, `audit`,
//! added later to [`Command`]) share them.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::restore::{parse_seconds, RestoreArgs};

/// Default database_config.json (swss-common
/// `SonicDBConfig::DEFAULT_SONIC_DB_CONFIG_FILE`).
pub const DEFAULT_DB_CONFIG: &str = swss::config::DEFAULT_DB_CONFIG_PATH;

/// Name of the multi-ASIC global config, looked up next to `--db-config`.
pub const DB_GLOBAL_CONFIG_FILE: &str = sonic_daemon::startup::DB_GLOBAL_CONFIG_FILE;

/// The parsed command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "neighsyncd",
    version,
    about = "SONiC neighsyncd: kernel neighbor table -> APPL_DB NEIGH_TABLE"
)]
pub struct Cli {
    /// `--db-config`, `--namespace` (shared with the other daemon, see
    /// [`sonic_daemon::DbArgs`]).
    #[command(flatten)]
    pub db: sonic_daemon::DbArgs,

    /// Test-only: size the netlink receive buffer with plain `SO_RCVBUF` to
    /// this many bytes (capped by `net.core.rmem_max`) instead of forcing
    /// 64 MiB with `SO_RCVBUFFORCE`, to provoke ENOBUFS.
    #[arg(long, value_name = "BYTES", hide = true, global = true)]
    pub netlink_rcvbuf: Option<usize>,

    /// `--log-level`, `--metrics-addr`, `--log-output`, `--audit-interval`
    /// (shared with the other daemon, see [`sonic_daemon::OpsArgs`]).
    #[command(flatten)]
    pub ops: sonic_daemon::OpsArgs,

    /// Test-only: on a warm start, give up waiting for
    /// `NEIGH_RESTORE_TABLE|Flags restored=true` after this many seconds
    /// (fractional allowed) instead of 180, and exit non-zero.
    #[arg(long, value_name = "SECONDS", hide = true, global = true,
          default_value = "180", value_parser = parse_seconds)]
    pub restore_flag_timeout: Duration,

    /// Write only neighbours of router interfaces: interfaces with an entry
    /// in CONFIG_DB INTERFACE, PORTCHANNEL_INTERFACE, VLAN_INTERFACE or
    /// VLAN_SUB_INTERFACE. Neighbours on other interfaces (docker0, eth1,
    /// bridge-midplane, ...) are never programmed by orchagent and would stay
    /// pending in it. Off by default (the C++ writes every interface).
    #[arg(long, global = true)]
    pub router_interfaces_only: bool,

    /// Honour `ipv6_use_link_local_only` on VLAN sub-interfaces
    /// (CONFIG_DB `VLAN_SUB_INTERFACE|<name>`): their IPv6 link-local
    /// neighbours are written when it is `enable`. Off by default (the C++
    /// never writes them).
    #[arg(long, global = true)]
    pub sub_interface_link_local: bool,

    /// What to do; the daemon runs when no command is given.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands. Running the daemon is the default (no subcommand).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the daemon (the same as giving no command).
    Run,
    /// Compare the kernel neighbours (under the sync rules) with APPL_DB
    /// NEIGH_TABLE; exit 0 consistent, 1 drift, 2 error.
    Audit(crate::audit::AuditArgs),
    /// System warm reboot: put APPL_DB's neighbors back into the kernel,
    /// probe them, then set STATE_DB `NEIGH_RESTORE_TABLE|Flags
    /// restored=true` (replaces restore_neighbors.py; on a docker warm
    /// restart only the flag is set, on a cold start nothing). Exits 0 when
    /// done (also after its timeout, flag set), 1 on an error (flag not set).
    Restore(RestoreArgs),
}

impl Cli {
    /// Where the databases are: `--db-config`, `--namespace` and the
    /// `database_global.json` in the directory of `--db-config` (on SONiC
    /// both live in `/var/run/redis/sonic-db/`).
    pub fn db_paths(&self) -> sonic_daemon::DbPaths {
        self.db.paths()
    }

    /// The opt-in sync rules the flags ask for (all off by default).
    pub fn sync_options(&self) -> crate::context::SyncOptions {
        crate::context::SyncOptions {
            router_interfaces_only: self.router_interfaces_only,
            sub_interface_link_local: self.sub_interface_link_local,
        }
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
        let cli = Cli::try_parse_from(["neighsyncd", "--log-level", "NOTICE"]).unwrap();
        assert!(cli.ops.log_level.is_some());
        assert!(Cli::try_parse_from(["neighsyncd", "--log-level", "LOUD"]).is_err());
    }

    #[test]
    fn defaults_overrides_and_subcommand_layout() {
        let cli = Cli::try_parse_from(["neighsyncd"]).unwrap();
        assert_eq!(cli.db.db_config, PathBuf::from(DEFAULT_DB_CONFIG));
        assert_eq!(cli.db.namespace, None);
        // Not given: NOTICE until CONFIG_DB LOGGER says otherwise.
        assert_eq!(cli.ops.log_level, None);
        assert_eq!(LogLevel::DEFAULT, LogLevel(Level::INFO));
        assert_eq!(cli.command, None);
        assert_eq!(cli.sync_options(), crate::context::SyncOptions::default());
        assert_eq!(
            cli.db_paths().db_global_config,
            PathBuf::from("/var/run/redis/sonic-db/database_global.json")
        );

        let cli = Cli::try_parse_from([
            "neighsyncd",
            "--db-config",
            "/tmp/x/db.json",
            "--namespace",
            "asic1",
            "--log-level",
            "DEBUG",
            "run",
        ])
        .unwrap();
        assert_eq!(cli.db.db_config, PathBuf::from("/tmp/x/db.json"));
        assert_eq!(cli.db.namespace.as_deref(), Some("asic1"));
        assert_eq!(cli.ops.log_level, Some(LogLevel(Level::DEBUG)));
        assert_eq!(cli.command, Some(Command::Run));
        assert_eq!(
            cli.db_paths().db_global_config,
            PathBuf::from("/tmp/x/database_global.json")
        );
        // Global options also after the subcommand.
        let cli = Cli::try_parse_from(["neighsyncd", "run", "--netlink-rcvbuf", "4096"]).unwrap();
        assert_eq!(cli.netlink_rcvbuf, Some(4096));
        assert_eq!(cli.restore_flag_timeout, Duration::from_secs(180));
        let cli = Cli::try_parse_from(["neighsyncd", "--restore-flag-timeout", "0.5"]).unwrap();
        assert_eq!(cli.restore_flag_timeout, Duration::from_millis(500));
    }

    #[test]
    fn restore_subcommand_takes_its_timers() {
        let cli = Cli::try_parse_from(["neighsyncd", "restore"]).unwrap();
        assert_eq!(cli.command, Some(Command::Restore(RestoreArgs::default())));
        let cli = Cli::try_parse_from([
            "neighsyncd",
            "restore",
            "--timeout",
            "3",
            "--pass-interval",
            "0.5",
            "--settle",
            "0",
            "--db-config",
            "/tmp/db.json",
        ])
        .unwrap();
        assert_eq!(
            cli.command,
            Some(Command::Restore(RestoreArgs {
                timeout: Duration::from_secs(3),
                pass_interval: Duration::from_millis(500),
                settle: Duration::ZERO,
            }))
        );
        assert_eq!(cli.db.db_config, PathBuf::from("/tmp/db.json"));
        assert!(Cli::try_parse_from(["neighsyncd", "restore", "--timeout", "x"]).is_err());
    }
}
