//! The `portsyncd` binary: command line, logging, a current-thread tokio
//! runtime, then [`portsyncd::daemon::run`]; `portsyncd audit` runs
//! [`portsyncd::audit::main`].
//!
//! Exit status: 0 after SIGTERM/SIGINT; 1 on a fatal error (broken database
//! config, netlink socket failure, a Redis error reply during start-up), as
//! the C++ exits with EXIT_FAILURE (portsyncd.cpp main); 2 for a bad command
//! line (clap). `portsyncd audit`: 0 consistent, 1 drift, 2 error.

use std::process::ExitCode;

use clap::Parser;
use portsyncd::cli::{Cli, Command};
use portsyncd::daemon::{self, Options};
use sonic_daemon::startup;
use sonic_daemon::LogOutput;
use sonic_netlink::socket::{RcvBuf, DEFAULT_RCVBUF_BYTES};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs where SONiC's do (syslog, or journald under
    // systemd); `audit` is a command run from a shell: stderr unless
    // --log-output says otherwise.
    let auto = match &cli.command {
        Some(Command::Audit(_)) => Some(LogOutput::Stderr),
        _ => None,
    };
    let (log, _) = cli.ops.init_logging(daemon::APP_NAME, auto);
    if let Some(Command::Audit(args)) = &cli.command {
        return portsyncd::audit::main(cli.db_paths(), args);
    }
    let opts = Options {
        db: cli.db_paths(),
        rcvbuf: match cli.netlink_rcvbuf {
            Some(n) => RcvBuf::Exact(n),
            None => RcvBuf::Force(DEFAULT_RCVBUF_BYTES),
        },
        ops: sonic_daemon::Ops::new(daemon::APP_NAME, Some(log)),
        audit_every: cli.ops.audit_every(),
        port_config_count_follows_config: cli.port_config_count_follows_config,
    };
    let runtime = match startup::runtime(daemon::APP_NAME) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let res = runtime.block_on(async {
        // /metrics, /healthz and the systemd watchdog.
        if let Err(e) = opts.ops.start_background(cli.ops.metrics_addr).await {
            return Err(e.to_string());
        }
        daemon::run(opts).await.map_err(|e| e.to_string())
    });
    startup::exit_status(daemon::APP_NAME, res)
}
