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
    let (log, _) = sonic_daemon::logging::init(daemon::APP_NAME, cli.log_level, cli.ops.log_output);
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
        ops: sonic_daemon::Ops::new(daemon::APP_NAME, Some(log)),
        audit_every: cli.ops.audit_every(),
    };
    let metrics_addr = cli.ops.metrics_addr;
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
    let res = runtime.block_on(async {
        // /metrics, /healthz and the systemd watchdog.
        if let Err(e) = opts.ops.start_background(metrics_addr).await {
            return Err(e.to_string());
        }
        daemon::run(opts).await.map_err(|e| e.to_string())
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "portsyncd failed");
            eprintln!("portsyncd: {e}");
            ExitCode::FAILURE
        }
    }
}
