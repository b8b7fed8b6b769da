//! The `neighsyncd` binary: command line, logging, a current-thread tokio
//! runtime (one thread keeps RSS low), then [`neighsyncd::daemon::run`].
//!
//! Exit status: 0 after SIGTERM/SIGINT; 1 on a fatal error (missing or
//! broken database config, netlink socket failure, a Redis error reply
//! during start-up); 2 for a bad command line (clap). Redis being down is
//! not fatal: the daemon retries and logs.

use std::process::ExitCode;

use clap::Parser;
use neighsyncd::cli::{Cli, Command};
use neighsyncd::daemon::{self, Options, DEFAULT_NETLINK_RCVBUF};
use sonic_netlink::socket::RcvBuf;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(cli.log_level.0)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match cli.command {
        None | Some(Command::Run) => run_daemon(&cli),
        Some(Command::Audit(ref args)) => neighsyncd::audit::main(
            neighsyncd::audit::AuditOptions {
                db_config: cli.db_config.clone(),
                namespace: cli.namespace.clone(),
                db_global_config: cli.db_global_config(),
            },
            args,
        ),
    }
}

fn run_daemon(cli: &Cli) -> ExitCode {
    let opts = Options {
        db_global_config: cli.db_global_config(),
        db_config: cli.db_config.clone(),
        namespace: cli.namespace.clone(),
        rcvbuf: match cli.netlink_rcvbuf {
            Some(n) => RcvBuf::Exact(n),
            None => RcvBuf::Force(DEFAULT_NETLINK_RCVBUF),
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("neighsyncd: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "neighsyncd failed");
            eprintln!("neighsyncd: {e}");
            ExitCode::FAILURE
        }
    }
}
