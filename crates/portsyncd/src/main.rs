//! The `portsyncd` binary: command line, logging, a current-thread tokio
//! runtime, then [`portsyncd::daemon::run`].
//!
//! Exit status: 0 after SIGTERM/SIGINT; 1 on a fatal error (broken database
//! config, netlink socket failure, a Redis error reply during start-up), as
//! the C++ exits with EXIT_FAILURE (portsyncd.cpp main); 2 for a bad command
//! line (clap).

use std::process::ExitCode;

use clap::Parser;
use portsyncd::cli::Cli;
use portsyncd::daemon::{self, Options};
use sonic_netlink::socket::{RcvBuf, DEFAULT_RCVBUF_BYTES};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(cli.log_level.0)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if let Some(portsyncd::cli::Command::Audit(args)) = &cli.command {
        return portsyncd::audit::main(
            portsyncd::audit::AuditOptions {
                db_config: cli.db_config.clone(),
                namespace: cli.namespace.clone(),
                db_global_config: cli.db_global_config(),
            },
            args,
        );
    }
    let opts = Options {
        db_global_config: cli.db_global_config(),
        db_config: cli.db_config,
        namespace: cli.namespace,
        rcvbuf: match cli.netlink_rcvbuf {
            Some(n) => RcvBuf::Exact(n),
            None => RcvBuf::Force(DEFAULT_RCVBUF_BYTES),
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portsyncd: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "portsyncd failed");
            eprintln!("portsyncd: {e}");
            ExitCode::FAILURE
        }
    }
}
