//! A private, real rsyslogd (Debian's `rsyslog`) for the logging tests:
//! imuxsock on a socket in a temp dir (no rate limit), every message
//! written to a file with its severity, facility, program name and tag, as
//! SONiC's rsyslog template shows them. Shared by
//! `crates/sonic-daemon/tests/syslog_rsyslogd.rs` and, through `#[path]`,
//! neighsyncd's `ops_syslog.rs` / `ops_supervisord.rs`.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One line rsyslogd wrote: `%syslogseverity-text%`, `%syslogfacility-text%`,
/// `%programname%`, `%syslogtag%`, `%msg%`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `err`, `warning`, `notice`, `info`, `debug`, ...
    pub severity: String,
    /// `user`, `daemon`, ...
    pub facility: String,
    /// The program name (the tag without `[pid]` and `:`).
    pub program: String,
    /// The tag as sent (`neighsyncd:`).
    pub tag: String,
    /// The message text (leading space removed).
    pub msg: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{} {} {}",
            self.facility, self.severity, self.tag, self.msg
        )
    }
}

/// The rsyslog.conf of a private instance: imuxsock on `socket` (created,
/// unlimited rate), everything to `out` through the template above, state in
/// `workdir`. Used as is for a supervisord program too.
pub fn config(socket: &Path, out: &Path, workdir: &Path) -> String {
    format!(
        r#"global(workDirectory="{work}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" CreatePath="on" RateLimit.Interval="0")
template(name="fields" type="string"
         string="%syslogseverity-text%|%syslogfacility-text%|%programname%|%syslogtag%|%msg:::drop-last-lf%\n")
*.* action(type="omfile" file="{out}" template="fields")
"#,
        work = workdir.display(),
        sock = socket.display(),
        out = out.display()
    )
}

/// Parses the file written with [`config`]'s template.
pub fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .filter_map(|l| {
            let mut p = l.splitn(5, '|');
            Some(Line {
                severity: p.next()?.to_string(),
                facility: p.next()?.to_string(),
                program: p.next()?.to_string(),
                tag: p.next()?.to_string(),
                msg: p.next()?.trim_start().to_string(),
            })
        })
        .collect()
}

/// Reads and parses `out` (empty when it does not exist yet).
pub fn read(out: &Path) -> Vec<Line> {
    parse(&std::fs::read_to_string(out).unwrap_or_default())
}

/// Waits up to `timeout` for a line of `out` matching `pred`.
pub fn wait_for(out: &Path, timeout: Duration, pred: impl Fn(&Line) -> bool) -> Line {
    let start = Instant::now();
    loop {
        if let Some(l) = read(out).into_iter().find(|l| pred(l)) {
            return l;
        }
        assert!(
            start.elapsed() < timeout,
            "no matching syslog line within {timeout:?}; {}:\n{}",
            out.display(),
            dump(out)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The whole file, for assertion messages.
pub fn dump(out: &Path) -> String {
    std::fs::read_to_string(out).unwrap_or_default()
}

/// A running private rsyslogd; killed (it is ours: by its pid) on drop.
pub struct Rsyslogd {
    child: Child,
    dir: PathBuf,
    /// The socket it listens on (what `--syslog-socket` / `/dev/log` is).
    pub socket: PathBuf,
    /// The file it writes.
    pub out: PathBuf,
}

impl Rsyslogd {
    /// Starts `rsyslogd -n` on `<dir>/log.sock` writing `<dir>/syslog.txt`,
    /// and waits (10 s at most) for the socket. `dir` must exist. A missing
    /// rsyslogd fails the test (never a skip): scripts/test.sh installs it.
    pub fn start(dir: &Path) -> Rsyslogd {
        let socket = dir.join("log.sock");
        let out = dir.join("syslog.txt");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(&conf, config(&socket, &out, dir)).unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("rsyslogd.out")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("rsyslogd.err")).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run rsyslogd ({e}): install Debian's rsyslog (scripts/test.sh does)")
            });
        let mut r = Rsyslogd {
            child,
            dir: dir.to_path_buf(),
            socket,
            out,
        };
        let start = Instant::now();
        while !r.socket.exists() {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!(
                    "rsyslogd exited ({st}): {}",
                    std::fs::read_to_string(r.dir.join("rsyslogd.err")).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no rsyslogd socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<Line> {
        read(&self.out)
    }

    /// The lines of program `program` so far.
    pub fn lines_of(&self, program: &str) -> Vec<Line> {
        self.lines()
            .into_iter()
            .filter(|l| l.program == program)
            .collect()
    }

    /// Waits up to 10 s for a line of `program` containing `text`.
    pub fn wait_for(&self, program: &str, text: &str) -> Line {
        wait_for(&self.out, Duration::from_secs(10), |l| {
            l.program == program && l.msg.contains(text)
        })
    }

    /// The whole file, for assertion messages.
    pub fn dump(&self) -> String {
        dump(&self.out)
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
