//! [`Daemon`]: a daemon binary started inside a network namespace, with its
//! stdout and stderr captured to a log file in a temp dir.
//!
//! Tests find binaries with `env!("CARGO_BIN_EXE_neighsyncd")` and pass the
//! path. The process is killed (SIGKILL) when the value is dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::netns::NetNs;

/// How often [`Daemon::wait_for_log`] and [`Daemon::sigterm`] poll.
const POLL: Duration = Duration::from_millis(20);

/// How long [`Daemon::sigterm`] waits for the process to exit.
pub const SIGTERM_TIMEOUT: Duration = Duration::from_secs(10);

/// A running daemon process (see the module doc).
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    status: Option<ExitStatus>,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Start `bin args...` inside `ns` (`ip netns exec <ns> bin args...`;
    /// `ip` execs the binary, so [`Daemon::pid`] is the daemon's pid), or in
    /// the current namespace when `ns` is `None`. stdout and stderr both go
    /// to `<tempdir>/daemon.log`. The environment is inherited.
    ///
    /// Errors: the temp dir or the process cannot be created.
    pub fn start(ns: Option<&NetNs>, bin: &Path, args: &[&str]) -> anyhow::Result<Self> {
        Self::start_with_env(ns, bin, args, &[])
    }

    /// As [`Daemon::start`], with extra environment variables (e.g.
    /// `("RUST_LOG", "debug")`).
    pub fn start_with_env(
        ns: Option<&NetNs>,
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("testbed-daemon-")
            .tempdir()
            .context("create temp dir")?;
        let log_path = dir.path().join("daemon.log");
        let log = File::create(&log_path).with_context(|| format!("create {log_path:?}"))?;
        let log2 = log.try_clone().context("dup log file")?;
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.name()]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd.spawn().with_context(|| format!("spawn {bin:?}"))?;
        Ok(Daemon {
            child,
            status: None,
            log_path,
            _dir: dir,
        })
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Path of the log file (stdout and stderr interleaved).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The log so far (lossy UTF-8; empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The exit status if the process has exited (reaps it).
    pub fn try_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait().context("wait for daemon")?;
        }
        Ok(self.status)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_status(), Ok(None))
    }

    /// Wait until the log contains `pattern` (plain substring) and return
    /// the log.
    ///
    /// Errors: `timeout` elapsed, or the process exited without printing
    /// it; the message includes the log.
    pub fn wait_for_log(&mut self, pattern: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(pattern) {
                return Ok(log);
            }
            if let Some(st) = self.try_status()? {
                // It may have printed the pattern just before exiting.
                let log = self.log();
                if log.contains(pattern) {
                    return Ok(log);
                }
                bail!("daemon exited ({st}) without logging {pattern:?}; log:\n{log}");
            }
            if Instant::now() >= deadline {
                bail!("{pattern:?} not logged within {timeout:?}; log:\n{log}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Wait for the process to exit, up to `timeout`.
    ///
    /// Errors: still running after `timeout` (it is left running).
    pub fn wait_timeout(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_status()? {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                bail!(
                    "daemon still running after {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Send `sig` to the daemon (no-op if it already exited).
    pub fn signal(&mut self, sig: Signal) -> anyhow::Result<()> {
        if self.try_status()?.is_some() {
            return Ok(());
        }
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        kill(Pid::from_raw(pid), sig).with_context(|| format!("kill -{sig} {pid}"))
    }

    /// SIGTERM, then wait up to [`SIGTERM_TIMEOUT`] for the exit status.
    ///
    /// Errors: the process does not exit in time (then it is still running;
    /// dropping the Daemon kills it).
    pub fn sigterm(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        self.wait_timeout(SIGTERM_TIMEOUT)
    }

    /// SIGKILL and reap.
    pub fn sigkill(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGKILL)?;
        self.wait_timeout(SIGTERM_TIMEOUT)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.try_status() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn start_in_namespace_log_and_sigterm() {
        let ns = NetNs::new("tbd").unwrap();
        let mut d = Daemon::start(
            Some(&ns),
            Path::new("/bin/sh"),
            &["-c", "echo ready; ip -o link show; exec sleep 30"],
        )
        .unwrap();
        let log = d.wait_for_log("ready", Duration::from_secs(10)).unwrap();
        assert!(log.starts_with("ready"));
        // Inside the namespace: only lo.
        let log = d.wait_for_log("1: lo", Duration::from_secs(10)).unwrap();
        assert!(!log.contains("2: "), "{log}");
        assert!(d.is_running());
        let st = d.sigterm().unwrap();
        assert_eq!(st.signal(), Some(15));
        assert!(!d.is_running());
    }

    #[test]
    fn wait_for_log_reports_exit_with_the_log() {
        let mut d = Daemon::start_with_env(
            None,
            Path::new("/bin/sh"),
            &["-c", "echo \"$GREETING\" >&2; exit 3"],
            &[("GREETING", "bye")],
        )
        .unwrap();
        let err = d
            .wait_for_log("never printed", Duration::from_secs(10))
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("bye"), "{msg}");
        assert_eq!(d.try_status().unwrap().and_then(|s| s.code()), Some(3));
    }
}
