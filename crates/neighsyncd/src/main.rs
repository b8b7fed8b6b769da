//! The `neighsyncd` binary: command line, logging, a current-thread tokio
//! runtime (one thread keeps RSS low), then [`neighsyncd::daemon::run`];
//! `neighsyncd restore` runs [`neighsyncd::restore::run`], `neighsyncd
//! audit` [`neighsyncd::audit::main`].
//!
//! Exit status: 0 after SIGTERM/SIGINT; 1 on a fatal error (missing or
//! broken database config, netlink socket failure, a Redis error reply
//! during start-up, a warm start whose restore flag never came); 2 for a bad
//! command line (clap). Redis being down is not fatal: the daemon retries
//! and logs. `neighsyncd restore`: 0 when done (flag set, or nothing to do
//! on a cold start), 1 on an error (flag not set).
//!
//! Logs: the daemon under the syslog tag `neighsyncd`, the restore under
//! `restore_neighbor` (as restore_neighbors.py), `audit` on stderr
//! (`--log-output` overrides each).

use std::process::ExitCode;

use clap::Parser;
use neighsyncd::cli::{Cli, Command};
use neighsyncd::daemon::{self, Options, DEFAULT_NETLINK_RCVBUF};
use neighsyncd::restore::{self, RestoreArgs};
use sonic_daemon::startup;
use sonic_daemon::LogOutput;
use sonic_netlink::socket::RcvBuf;

/// The syslog tag of `neighsyncd restore`: restore_neighbors.py's
/// `SYSLOG_IDENTIFIER`, so its lines are found where the script's were.
const RESTORE_IDENT: &str = "restore_neighbor";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon and the restore log where SONiC's do (syslog, or journald
    // under systemd); `audit` is a command run from a shell: stderr unless
    // --log-output says otherwise.
    let (ident, auto) = match &cli.command {
        Some(Command::Audit(_)) => (daemon::APP_NAME, Some(LogOutput::Stderr)),
        Some(Command::Restore(_)) => (RESTORE_IDENT, None),
        None | Some(Command::Run) => (daemon::APP_NAME, None),
    };
    let (log, _) = cli.ops.init_logging(ident, auto);
    if let Some(Command::Audit(args)) = &cli.command {
        return neighsyncd::audit::main(cli.db_paths(), cli.sync_options(), args);
    }
    let opts = Options {
        db: cli.db_paths(),
        rcvbuf: match cli.netlink_rcvbuf {
            Some(n) => RcvBuf::Exact(n),
            None => RcvBuf::Force(DEFAULT_NETLINK_RCVBUF),
        },
        restore_wait: cli.restore_flag_timeout,
        ops: sonic_daemon::Ops::new(daemon::APP_NAME, Some(log)),
        audit_every: cli.ops.audit_every(),
        sync: cli.sync_options(),
    };
    let runtime = match startup::runtime(daemon::APP_NAME) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match &cli.command {
        None | Some(Command::Run) => {
            let res = runtime.block_on(async {
                // /metrics, /healthz and the systemd watchdog.
                if let Err(e) = opts.ops.start_background(cli.ops.metrics_addr).await {
                    return Err(e.to_string());
                }
                daemon::run(opts).await.map_err(|e| e.to_string())
            });
            startup::exit_status(daemon::APP_NAME, res)
        }
        Some(Command::Restore(args)) => run_restore(&runtime, &opts, args),
        Some(Command::Audit(_)) => ExitCode::FAILURE, // handled above
    }
}

/// `neighsyncd restore`: [`restore::run`] once, its report summarised in
/// the log.
fn run_restore(runtime: &tokio::runtime::Runtime, opts: &Options, args: &RestoreArgs) -> ExitCode {
    let cfg = match opts.db.load() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "neighsyncd restore failed");
            eprintln!("neighsyncd restore: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(restore::run(&cfg, args)) {
        Ok(report) => {
            tracing::info!(
                mode = ?report.mode,
                flag_set = report.flag_set,
                restored = report.total_restored(),
                failed = report.interfaces.values().map(|r| r.failed).sum::<usize>(),
                interfaces = report.interfaces.len(),
                timed_out = ?report.timed_out,
                skipped_malformed = report.skipped_malformed,
                passes = report.passes,
                "neighsyncd restore finished"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "neighsyncd restore failed; NEIGH_RESTORE_TABLE flag not set");
            eprintln!("neighsyncd restore: {e}");
            ExitCode::FAILURE
        }
    }
}
