//! The output in force and the layer that writes to it.
//!
//! One [`Outputs`] layer holds every output a daemon can switch to: native
//! syslog ([`super::native_syslog::SyslogWriter`]), journald (`tracing-journald`,
//! when it could be opened) and plain text on stderr or stdout (tracing's
//! `fmt` layer on a writer that picks the stream per line). Span callbacks
//! go to all of them, so a switch never leaves one without a span it needs;
//! each event goes to the one named by the shared [`Switch`], which CONFIG_DB
//! `LOGGER|<daemon>` `LOGOUTPUT` changes at run time (see
//! [`super::LogHandle::set_output`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::span;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format};
use tracing_subscriber::fmt::{self, MakeWriter};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::native_syslog::SyslogWriter;
use super::{LogOutput, SonicOutput};

/// The output in force (never [`LogOutput::Auto`]) and what CONFIG_DB's
/// `SYSLOG` means for this process.
#[derive(Debug)]
pub struct Switch {
    current: AtomicU8,
    /// The system log chosen at start: journald or syslog; `None` when
    /// the start chose stderr/stdout (then `SYSLOG` means syslog when its
    /// socket exists at the time of the change).
    system: Option<LogOutput>,
    syslog_socket: PathBuf,
}

const fn code(o: LogOutput) -> u8 {
    match o {
        LogOutput::Auto | LogOutput::Stderr => 0,
        LogOutput::Stdout => 1,
        LogOutput::Syslog => 2,
        LogOutput::Journald => 3,
    }
}

const fn from_code(c: u8) -> LogOutput {
    match c {
        1 => LogOutput::Stdout,
        2 => LogOutput::Syslog,
        3 => LogOutput::Journald,
        _ => LogOutput::Stderr,
    }
}

/// True when `path` exists and is a unix socket (what a syslog daemon
/// listening there leaves).
pub fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

impl Switch {
    /// Starts on `current` (resolved, not `Auto`); `system` as for the
    /// field; `syslog_socket` is the syslog daemon's socket.
    pub fn new(current: LogOutput, system: Option<LogOutput>, syslog_socket: &Path) -> Switch {
        Switch {
            current: AtomicU8::new(code(current)),
            system,
            syslog_socket: syslog_socket.to_path_buf(),
        }
    }

    /// The output in force.
    pub fn get(&self) -> LogOutput {
        from_code(self.current.load(Ordering::Relaxed))
    }

    /// Makes `output` (resolved, not `Auto`) the output of every later
    /// event.
    pub fn set(&self, output: LogOutput) {
        self.current.store(code(output), Ordering::Relaxed);
    }

    /// What CONFIG_DB `LOGOUTPUT` `want` means here: `STDOUT`/`STDERR`
    /// themselves; `SYSLOG` the system log chosen at start (journald
    /// under systemd's journal, else syslog), or, when the start chose a
    /// text stream, syslog if its socket exists now and stderr if not.
    pub fn resolve(&self, want: SonicOutput) -> LogOutput {
        match want {
            SonicOutput::Stdout => LogOutput::Stdout,
            SonicOutput::Stderr => LogOutput::Stderr,
            SonicOutput::Syslog => match self.system {
                Some(o) => o,
                None if is_socket(&self.syslog_socket) => LogOutput::Syslog,
                None => LogOutput::Stderr,
            },
        }
    }
}

/// The text writer: stdout when the switch says so, else stderr (so an
/// event that reaches the text layer while another output is current,
/// which [`Outputs`] never does, still lands somewhere visible).
#[derive(Debug, Clone)]
pub struct StdStreams {
    switch: std::sync::Arc<Switch>,
}

/// One line's stream (see [`StdStreams`]).
pub enum StdStream {
    /// Standard output.
    Out(io::Stdout),
    /// Standard error.
    Err(io::Stderr),
}

impl io::Write for StdStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            StdStream::Out(s) => s.write(buf),
            StdStream::Err(s) => s.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            StdStream::Out(s) => s.write_all(buf),
            StdStream::Err(s) => s.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            StdStream::Out(s) => s.flush(),
            StdStream::Err(s) => s.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for StdStreams {
    type Writer = StdStream;

    fn make_writer(&'a self) -> StdStream {
        match self.switch.get() {
            LogOutput::Stdout => StdStream::Out(io::stdout()),
            _ => StdStream::Err(io::stderr()),
        }
    }
}

type TextLayer<S> = fmt::Layer<S, DefaultFields, Format, StdStreams>;

/// The output layer (see the module docs).
pub struct Outputs<S> {
    switch: std::sync::Arc<Switch>,
    text: TextLayer<S>,
    journald: Option<tracing_journald::Layer>,
    syslog: SyslogWriter,
}

impl<S> Outputs<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    /// The layer over `switch`: text as tracing's `fmt` layer (no colours),
    /// `journald` if opened, `syslog` for the native syslog output.
    pub fn new(
        switch: std::sync::Arc<Switch>,
        journald: Option<tracing_journald::Layer>,
        syslog: SyslogWriter,
    ) -> Self {
        let text = fmt::layer()
            .with_writer(StdStreams {
                switch: switch.clone(),
            })
            .with_ansi(false);
        Outputs {
            switch,
            text,
            journald,
            syslog,
        }
    }
}

impl<S> Layer<S> for Outputs<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.text.on_new_span(attrs, id, ctx.clone());
        if let Some(j) = &self.journald {
            j.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, span: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.text.on_record(span, values, ctx.clone());
        if let Some(j) = &self.journald {
            j.on_record(span, values, ctx);
        }
    }

    fn on_follows_from(&self, span: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.text.on_follows_from(span, follows, ctx.clone());
        if let Some(j) = &self.journald {
            j.on_follows_from(span, follows, ctx);
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.text.on_enter(id, ctx.clone());
        if let Some(j) = &self.journald {
            j.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.text.on_exit(id, ctx.clone());
        if let Some(j) = &self.journald {
            j.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.text.on_close(id.clone(), ctx.clone());
        if let Some(j) = &self.journald {
            j.on_close(id, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        match (self.switch.get(), &self.journald) {
            (LogOutput::Syslog, _) => self.syslog.write_event(event),
            (LogOutput::Journald, Some(j)) => j.on_event(event, ctx),
            _ => self.text.on_event(event, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_means_the_system_log_chosen_at_start() {
        let nowhere = Path::new("/nonexistent/log.sock");
        let s = Switch::new(LogOutput::Journald, Some(LogOutput::Journald), nowhere);
        assert_eq!(s.resolve(SonicOutput::Syslog), LogOutput::Journald);
        assert_eq!(s.resolve(SonicOutput::Stderr), LogOutput::Stderr);
        assert_eq!(s.resolve(SonicOutput::Stdout), LogOutput::Stdout);
        let s = Switch::new(LogOutput::Syslog, Some(LogOutput::Syslog), nowhere);
        assert_eq!(s.resolve(SonicOutput::Syslog), LogOutput::Syslog);
        // Started on stderr: SYSLOG is syslog only where a socket exists.
        let s = Switch::new(LogOutput::Stderr, None, nowhere);
        assert_eq!(s.resolve(SonicOutput::Syslog), LogOutput::Stderr);
        assert_eq!(s.get(), LogOutput::Stderr);
        s.set(LogOutput::Stdout);
        assert_eq!(s.get(), LogOutput::Stdout);
        let dir = std::env::temp_dir().join(format!("sd-switch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("log.sock");
        let _server = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        let s = Switch::new(LogOutput::Stderr, None, &sock);
        assert_eq!(s.resolve(SonicOutput::Syslog), LogOutput::Syslog);
        // A plain file is not a syslog socket.
        std::fs::write(dir.join("file"), "").unwrap();
        assert!(!is_socket(&dir.join("file")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
