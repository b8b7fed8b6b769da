//! The native syslog output: what swss::Logger does with `vsyslog(3)`.
//!
//! Each event becomes one datagram on the local syslog socket (`/dev/log`
//! by default; the socket and the stream fallback are the `syslog` crate's
//! [`syslog::unix_custom`]) shaped like glibc's `syslog(3)` after
//! swss::Logger's implicit `openlog` (no `LOG_PID`): `<PRI>ident: text`,
//! facility user, severity from the level ([`severity`]). The receiving
//! daemon (rsyslogd in SONiC's containers, journald under systemd) stamps
//! the time and host, so the line rsyslog writes is e.g.
//! `NOTICE neighsyncd: cold start: kernel dump done neighbors=12` and, in
//! SONiC's forwarded form, `NOTICE swss#neighsyncd: ...`: the program tag
//! and severity that loganalyzer and operators' alerts match on.
//!
//! The text is the event's message followed by its fields as
//! `key=value` ([`event_text`]); no timestamp or level of our own.
//!
//! Like glibc, a lost socket (rsyslogd restarted) is reconnected on the
//! next line. Unlike glibc, a line that cannot be delivered (no syslog
//! daemon, or one that does not take the line within [`SEND_TIMEOUT`]) is
//! written to stderr instead of being dropped, and syslog is tried again
//! after [`RETRY_AFTER`].

use std::fmt::{self, Display, Write as _};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use syslog::{Facility, LogFormat, LoggerBackend, Severity};
use tracing::field::{Field, Visit};
use tracing::{Event, Level};

/// The syslog socket when `--syslog-socket` is not given (glibc's
/// `_PATH_LOG`).
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";

/// How long one line may wait for the syslog daemon to take it before it
/// goes to stderr instead (glibc waits forever; a stuck rsyslogd must not
/// stop the daemon's event loop for longer than this per line).
pub const SEND_TIMEOUT: Duration = Duration::from_millis(500);

/// After a line could not be delivered, how long lines go straight to
/// stderr before syslog is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The syslog severity of a tracing level, as swss::Logger's priorities
/// reach syslog: ERROR -> `LOG_ERR`, WARN -> `LOG_WARNING`, INFO ->
/// `LOG_NOTICE` (SONiC's default level, which tracing's INFO stands for,
/// see [`super::SonicLevel::from_tracing`]), DEBUG and TRACE -> `LOG_DEBUG`.
pub fn severity(level: Level) -> Severity {
    match level {
        Level::ERROR => Severity::LOG_ERR,
        Level::WARN => Severity::LOG_WARNING,
        Level::INFO => Severity::LOG_NOTICE,
        _ => Severity::LOG_DEBUG,
    }
}

/// The name rsyslog prints for a severity (`%syslogseverity-text%`,
/// upper-cased as SONiC's template does): `ERR`, `WARNING`, `NOTICE`,
/// `DEBUG`, ...; also the prefix of a line that falls back to stderr.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::LOG_EMERG => "EMERG",
        Severity::LOG_ALERT => "ALERT",
        Severity::LOG_CRIT => "CRIT",
        Severity::LOG_ERR => "ERR",
        Severity::LOG_WARNING => "WARNING",
        Severity::LOG_NOTICE => "NOTICE",
        Severity::LOG_INFO => "INFO",
        Severity::LOG_DEBUG => "DEBUG",
    }
}

/// glibc `syslog(3)`'s message shape without `LOG_PID` and without the
/// timestamp (RFC 3164 lets a relay add it; rsyslogd and journald stamp
/// the receive time, which is also what they do with glibc's own stamp on
/// the local socket): `<PRI>ident: text`, PRI = facility | severity.
#[derive(Debug, Clone)]
pub struct IdentFormat {
    /// The program tag (`neighsyncd`, `portsyncd`, `restore_neighbor`).
    pub ident: String,
    /// The facility (swss::Logger: user).
    pub facility: Facility,
}

impl<T: Display> LogFormat<T> for IdentFormat {
    fn format<W: io::Write>(
        &self,
        w: &mut W,
        severity: Severity,
        message: T,
    ) -> syslog::Result<()> {
        // One write_fmt: the unix datagram backend sends it as one datagram.
        write!(
            w,
            "<{}>{}: {}",
            self.facility as u8 | severity as u8,
            self.ident,
            message
        )
        .map_err(syslog::Error::Write)
    }
}

/// An event's text: the message, then each field as ` key=value` in the
/// order given. Text values are written bare unless empty or holding
/// whitespace, `"` or `=` (then quoted and escaped as Rust's `{:?}`);
/// `%`/`?` values as formatted. Control characters in the message are kept
/// (rsyslog escapes them as `#012`).
pub fn event_text(event: &Event<'_>) -> String {
    let mut v = TextVisitor::default();
    event.record(&mut v);
    if v.fields.is_empty() {
        return v.message;
    }
    if v.message.is_empty() {
        return v.fields;
    }
    v.message.push(' ');
    v.message.push_str(&v.fields);
    v.message
}

#[derive(Default)]
struct TextVisitor {
    message: String,
    fields: String,
}

impl TextVisitor {
    fn sep(&mut self) {
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
    }
}

/// Whether a text value needs quoting to stay one `key=value` token.
fn needs_quotes(s: &str) -> bool {
    s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '"' || c == '=')
}

impl Visit for TextVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
            return;
        }
        self.sep();
        if needs_quotes(value) {
            let _ = write!(self.fields, "{}={:?}", field.name(), value);
        } else {
            let _ = write!(self.fields, "{}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        self.sep();
        let _ = write!(self.fields, "{}={:?}", field.name(), value);
    }
}

type Connection = syslog::Logger<LoggerBackend, IdentFormat>;

/// The OS error under the `syslog` crate's wrappers (`Initialization(Io(..))`
/// reads as `No such file or directory (os error 2)`).
fn describe(e: &syslog::Error) -> String {
    match e {
        syslog::Error::Initialization(inner) => match inner.downcast_ref::<syslog::Error>() {
            Some(e) => describe(e),
            None => inner.to_string(),
        },
        syslog::Error::Io(e) | syslog::Error::Write(e) => e.to_string(),
    }
}

struct State {
    conn: Option<Connection>,
    /// No syslog attempt before this instant (a line just failed).
    paused_until: Option<Instant>,
    /// The delivery problem already reported on stderr (reported once per
    /// outage).
    reported: bool,
}

/// Writes events to the syslog socket at `path` under `ident` (see the
/// module docs). Connects lazily and reconnects after an error.
pub struct SyslogWriter {
    format: IdentFormat,
    path: PathBuf,
    state: Mutex<State>,
}

impl fmt::Debug for SyslogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyslogWriter")
            .field("ident", &self.format.ident)
            .field("path", &self.path)
            .finish()
    }
}

impl SyslogWriter {
    /// A writer for `ident` (the program tag) to the socket at `path`,
    /// facility user; nothing is opened yet.
    pub fn new(ident: &str, path: &Path) -> SyslogWriter {
        SyslogWriter {
            format: IdentFormat {
                ident: ident.to_string(),
                facility: Facility::LOG_USER,
            },
            path: path.to_path_buf(),
            state: Mutex::new(State {
                conn: None,
                paused_until: None,
                reported: false,
            }),
        }
    }

    /// The socket path written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connects now instead of at the first line.
    ///
    /// Errors: the socket cannot be connected (the text names the path);
    /// the next line tries again and reports it on stderr.
    pub fn connect(&self) -> Result<(), String> {
        let conn = self.open()?;
        self.lock().conn = Some(conn);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) -> Result<Connection, String> {
        let conn = syslog::unix_custom(self.format.clone(), &self.path)
            .map_err(|e| format!("syslog socket {}: {}", self.path.display(), describe(&e)))?;
        let timeout = Some(SEND_TIMEOUT);
        let set = match &conn.backend {
            LoggerBackend::Unix(sock) => sock.set_write_timeout(timeout),
            LoggerBackend::UnixStream(sock) => sock.get_ref().set_write_timeout(timeout),
            _ => Ok(()),
        };
        set.map_err(|e| format!("syslog socket {}: {e}", self.path.display()))?;
        Ok(conn)
    }

    /// Sends one event ([`event_text`] at [`severity`] of its level).
    pub fn write_event(&self, event: &Event<'_>) {
        self.write(severity(*event.metadata().level()), &event_text(event));
    }

    /// Sends `text` at `severity`; on failure reconnects once and retries,
    /// and when that fails too writes `<SEVERITY> ident: text` to stderr.
    pub fn write(&self, severity: Severity, text: &str) {
        let mut st = self.lock();
        let now = Instant::now();
        if st.paused_until.is_some_and(|t| now < t) {
            drop(st);
            self.to_stderr(severity, text);
            return;
        }
        let mut error = None;
        for _attempt in 0..2 {
            if st.conn.is_none() {
                match self.open() {
                    Ok(c) => st.conn = Some(c),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let Some(conn) = st.conn.as_mut() else { break };
            match conn.formatter.format(&mut conn.backend, severity, text) {
                Ok(()) => {
                    st.paused_until = None;
                    st.reported = false;
                    return;
                }
                Err(e) => {
                    error = Some(format!(
                        "syslog socket {}: {}",
                        self.path.display(),
                        describe(&e)
                    ));
                    st.conn = None;
                }
            }
        }
        st.paused_until = Some(now + RETRY_AFTER);
        let report = !st.reported;
        st.reported = true;
        drop(st);
        if report {
            if let Some(e) = error {
                let _ = writeln!(
                    io::stderr(),
                    "{}: {e}; lines go to stderr until syslog takes them again",
                    self.format.ident
                );
            }
        }
        self.to_stderr(severity, text);
    }

    fn to_stderr(&self, severity: Severity, text: &str) {
        let _ = writeln!(
            io::stderr(),
            "{} {}: {text}",
            severity_name(severity),
            self.format.ident
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::sync::Arc;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    #[test]
    fn levels_map_to_swss_priorities() {
        let p = |l| Facility::LOG_USER as u8 | severity(l) as u8;
        assert_eq!(p(Level::ERROR), 11);
        assert_eq!(p(Level::WARN), 12);
        assert_eq!(p(Level::INFO), 13);
        assert_eq!(p(Level::DEBUG), 15);
        assert_eq!(p(Level::TRACE), 15);
        assert_eq!(severity_name(severity(Level::WARN)), "WARNING");
        assert_eq!(severity_name(Severity::LOG_INFO), "INFO");
    }

    #[test]
    fn the_datagram_is_pri_ident_text() {
        let f = IdentFormat {
            ident: "neighsyncd".into(),
            facility: Facility::LOG_USER,
        };
        let mut out = Vec::new();
        f.format(&mut out, Severity::LOG_ERR, "boom x=1").unwrap();
        assert_eq!(out, b"<11>neighsyncd: boom x=1");
    }

    /// Records the text of each event through [`event_text`].
    struct Texts(Arc<std::sync::Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> Layer<S> for Texts {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            self.0.lock().unwrap().push(event_text(event));
        }
    }

    #[test]
    fn fields_follow_the_message_compactly() {
        let texts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry().with(Texts(texts.clone()));
        tracing::subscriber::with_default(sub, || {
            let e = std::io::Error::other("connection refused");
            tracing::warn!(
                ifname = "Ethernet0",
                flags = 69699u32,
                up = true,
                "link change"
            );
            tracing::warn!(error = %e, empty = "", quote = "a\"b", "lost");
            tracing::info!(pending = ?["Ethernet0", "Ethernet4"], "held back");
            tracing::info!("no fields");
            tracing::info!(only = 1);
        });
        assert_eq!(
            *texts.lock().unwrap(),
            vec![
                "link change ifname=Ethernet0 flags=69699 up=true",
                "lost error=connection refused empty=\"\" quote=\"a\\\"b\"",
                "held back pending=[\"Ethernet0\", \"Ethernet4\"]",
                "no fields",
                "only=1",
            ]
        );
    }

    #[test]
    fn lines_reach_the_socket_and_come_back_after_it_is_recreated() {
        let dir = std::env::temp_dir().join(format!("sd-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let w = SyslogWriter::new("portsyncd", &path);
        // Nothing listening: connect fails and says where.
        assert!(w.connect().unwrap_err().contains("log.sock"));
        let recv = |sock: &UnixDatagram| {
            let mut buf = [0u8; 512];
            let n = sock.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        w.write(Severity::LOG_NOTICE, "first");
        assert_eq!(recv(&server), "<13>portsyncd: first");
        // The syslog daemon restarts: a new socket at the same path.
        drop(server);
        std::fs::remove_file(&path).unwrap();
        w.write(Severity::LOG_WARNING, "to stderr while it is away");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // Paused for RETRY_AFTER after the failure, then reconnected.
        std::thread::sleep(RETRY_AFTER + Duration::from_millis(50));
        w.write(Severity::LOG_ERR, "after the restart");
        assert_eq!(recv(&server), "<11>portsyncd: after the restart");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
