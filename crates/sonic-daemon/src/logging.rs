//! Logging as a SONiC daemon: SONiC level names, native syslog (or
//! journald, stderr, stdout), a level and an output that change at run
//! time, and CONFIG_DB `LOGGER`.
//!
//! * [`LogLevel`] parses SONiC's names (EMERG, ALERT, CRIT, ERROR, WARN,
//!   NOTICE, INFO, DEBUG; what `swssloglevel -l` takes) onto tracing levels.
//!   tracing has no NOTICE, so NOTICE and INFO both mean `INFO`, which
//!   reaches syslog at priority NOTICE ([`native_syslog::severity`]).
//! * [`init`] installs the global subscriber: a reloadable level filter and
//!   one switchable output ([`output::Outputs`]): native syslog like
//!   swss::Logger's `vsyslog(3)` (ident = the daemon's name, facility user,
//!   priority from the level; [`native_syslog`]), journald (`tracing-journald`,
//!   `SYSLOG_IDENTIFIER` = the daemon's name), or plain text on stderr or
//!   stdout. [`LogOutput::Auto`] picks journald exactly when systemd
//!   connected stderr to the journal (`JOURNAL_STREAM` names stderr's device
//!   and inode, as sd_journal docs recommend), else syslog when its socket
//!   (`/dev/log`) exists and stderr is not a terminal or a file (SONiC's
//!   swss container: rsyslogd runs, supervisord gives a pipe), else stderr
//!   ([`auto_output`]).
//! * [`write_logger_defaults`] writes CONFIG_DB `LOGGER|<daemon>`
//!   `LOGLEVEL NOTICE` / `LOGOUTPUT SYSLOG` where missing
//!   (swss::Logger::linkToDbWithOutput).
//! * [`LoggerSync`] applies CONFIG_DB `LOGGER|<daemon>` `LOGLEVEL` and
//!   `LOGOUTPUT` changes to the live level and output (swss::Logger's
//!   settings thread). Each daemon adds `LOGGER` to its one CONFIG_DB
//!   subscription ([`swss::MultiTableSubscriber`], one `PSUBSCRIBE`
//!   pattern) and feeds it the `LOGGER` ops ([`crate::Ops::logger_sync`]
//!   builds it). The values already in CONFIG_DB at start are applied as
//!   the C++ does (swss::Logger::linkToDbWithOutput), except one given on
//!   the command line (`--log-level`, [`LogHandle::from_command_line`];
//!   `--log-output` other than `auto`,
//!   [`LogHandle::output_from_command_line`]): then the command line
//!   decides at start. A value changed later (also while Redis was away)
//!   is always applied.

mod logger_table;
pub mod native_syslog;
pub mod output;

pub use logger_table::{
    field_change, level_change, output_change, write_logger_defaults, LoggerSync, SharedLogger,
};

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

/// CONFIG_DB logger table (`LOGGER|<daemon>`, swss-common logger.cpp).
pub const CFG_LOGGER_TABLE_NAME: &str = "LOGGER";
/// Field holding the level name (`NOTICE`, `DEBUG`, ...).
pub const LOGLEVEL_FIELD: &str = "LOGLEVEL";
/// Field holding the output (`SYSLOG`, `STDOUT`, `STDERR`), followed as
/// the level is ([`LoggerSync`]).
pub const LOGOUTPUT_FIELD: &str = "LOGOUTPUT";
/// Defaults written where missing (logger.cpp `linkToDbWithOutput`).
pub const LOGGER_DEFAULTS: [(&str, &str); 2] =
    [(LOGLEVEL_FIELD, "NOTICE"), (LOGOUTPUT_FIELD, "SYSLOG")];

// ===== levels =====

/// SONiC's syslog-style level names, most severe first (swss::Logger::Priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SonicLevel {
    /// `EMERG` (LOG_EMERG).
    Emerg,
    /// `ALERT` (LOG_ALERT).
    Alert,
    /// `CRIT` (LOG_CRIT).
    Crit,
    /// `ERROR` (LOG_ERR).
    Error,
    /// `WARN` (LOG_WARNING).
    Warn,
    /// `NOTICE` (LOG_NOTICE), SONiC's default.
    Notice,
    /// `INFO` (LOG_INFO).
    Info,
    /// `DEBUG` (LOG_DEBUG).
    Debug,
}

impl SonicLevel {
    /// Every level, most severe first.
    pub const ALL: [SonicLevel; 8] = [
        SonicLevel::Emerg,
        SonicLevel::Alert,
        SonicLevel::Crit,
        SonicLevel::Error,
        SonicLevel::Warn,
        SonicLevel::Notice,
        SonicLevel::Info,
        SonicLevel::Debug,
    ];

    /// The CONFIG_DB spelling: `EMERG`, `ALERT`, `CRIT`, `ERROR`, `WARN`,
    /// `NOTICE`, `INFO`, `DEBUG`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SonicLevel::Emerg => "EMERG",
            SonicLevel::Alert => "ALERT",
            SonicLevel::Crit => "CRIT",
            SonicLevel::Error => "ERROR",
            SonicLevel::Warn => "WARN",
            SonicLevel::Notice => "NOTICE",
            SonicLevel::Info => "INFO",
            SonicLevel::Debug => "DEBUG",
        }
    }

    /// The tracing level it maps to: EMERG, ALERT, CRIT, ERROR -> ERROR;
    /// WARN -> WARN; NOTICE, INFO -> INFO; DEBUG -> DEBUG.
    pub const fn to_tracing(self) -> tracing::Level {
        match self {
            SonicLevel::Emerg | SonicLevel::Alert | SonicLevel::Crit | SonicLevel::Error => {
                tracing::Level::ERROR
            }
            SonicLevel::Warn => tracing::Level::WARN,
            SonicLevel::Notice | SonicLevel::Info => tracing::Level::INFO,
            SonicLevel::Debug => tracing::Level::DEBUG,
        }
    }

    /// The SONiC name for a tracing level: ERROR -> ERROR, WARN -> WARN,
    /// INFO -> NOTICE (SONiC's default, which tracing's INFO stands for),
    /// DEBUG and TRACE -> DEBUG.
    pub fn from_tracing(level: tracing::Level) -> SonicLevel {
        match level {
            tracing::Level::ERROR => SonicLevel::Error,
            tracing::Level::WARN => SonicLevel::Warn,
            tracing::Level::INFO => SonicLevel::Notice,
            _ => SonicLevel::Debug,
        }
    }
}

/// A log level, parsed from a SONiC name (case-insensitive; `ERR` and
/// `WARNING` accepted) or `TRACE`, held as the tracing level it maps to
/// ([`SonicLevel::to_tracing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLevel(pub tracing::Level);

impl LogLevel {
    /// The level when neither `--log-level` nor CONFIG_DB `LOGGER` says
    /// otherwise: SONiC's `NOTICE` (tracing `INFO`).
    pub const DEFAULT: LogLevel = LogLevel(tracing::Level::INFO);
}

/// Error for an unknown [`LogLevel`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown log level {0:?}; expected one of EMERG, ALERT, CRIT, ERROR, WARN, NOTICE, INFO, DEBUG, TRACE"
)]
pub struct UnknownLogLevel(pub String);

impl FromStr for LogLevel {
    type Err = UnknownLogLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let sonic = match upper.as_str() {
            "ERR" => Some(SonicLevel::Error),
            "WARNING" => Some(SonicLevel::Warn),
            "TRACE" => return Ok(LogLevel(tracing::Level::TRACE)),
            other => SonicLevel::ALL.into_iter().find(|l| l.as_str() == other),
        };
        sonic
            .map(|l| LogLevel(l.to_tracing()))
            .ok_or_else(|| UnknownLogLevel(s.to_string()))
    }
}

impl LogLevel {
    /// The SONiC name of this level ([`SonicLevel::from_tracing`]).
    pub fn sonic_name(self) -> &'static str {
        SonicLevel::from_tracing(self.0).as_str()
    }
}

// ===== output =====

/// Where logs go (`--log-output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    /// journald when stderr is connected to the journal, else syslog when
    /// its socket exists and stderr is not a terminal or a regular file,
    /// else stderr ([`auto_output`]).
    Auto,
    /// Native syslog on the local socket (`/dev/log`): ident = the
    /// daemon's name, facility user, priority from the level, as
    /// swss::Logger (see [`native_syslog`]).
    Syslog,
    /// The systemd journal's native protocol.
    Journald,
    /// Plain text lines on stderr.
    Stderr,
    /// Plain text lines on stdout.
    Stdout,
}

impl LogOutput {
    /// The `--log-output` spelling: `auto`, `syslog`, `journald`, `stderr`,
    /// `stdout`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogOutput::Auto => "auto",
            LogOutput::Syslog => "syslog",
            LogOutput::Journald => "journald",
            LogOutput::Stderr => "stderr",
            LogOutput::Stdout => "stdout",
        }
    }
}

/// Error for an unknown [`LogOutput`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log output {0:?}; expected auto, syslog, journald, stderr or stdout")]
pub struct UnknownLogOutput(pub String);

impl FromStr for LogOutput {
    type Err = UnknownLogOutput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(LogOutput::Auto),
            "syslog" => Ok(LogOutput::Syslog),
            "journald" | "journal" => Ok(LogOutput::Journald),
            "stderr" => Ok(LogOutput::Stderr),
            "stdout" => Ok(LogOutput::Stdout),
            _ => Err(UnknownLogOutput(s.to_string())),
        }
    }
}

/// The outputs CONFIG_DB `LOGGER|<daemon>` `LOGOUTPUT` names
/// (swss::Logger::outputStringMap): `SYSLOG`, `STDOUT`, `STDERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SonicOutput {
    /// `SYSLOG`: the system log (syslog; journald under systemd's journal).
    Syslog,
    /// `STDOUT`.
    Stdout,
    /// `STDERR`.
    Stderr,
}

impl SonicOutput {
    /// The CONFIG_DB spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            SonicOutput::Syslog => "SYSLOG",
            SonicOutput::Stdout => "STDOUT",
            SonicOutput::Stderr => "STDERR",
        }
    }
}

/// Error for an unknown `LOGOUTPUT` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log output {0:?}; expected one of SYSLOG, STDOUT, STDERR")]
pub struct UnknownSonicOutput(pub String);

impl FromStr for SonicOutput {
    type Err = UnknownSonicOutput;

    /// `SYSLOG`, `STDOUT`, `STDERR` (case-insensitive; the C++ takes the
    /// upper-case spelling only).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SYSLOG" => Ok(SonicOutput::Syslog),
            "STDOUT" => Ok(SonicOutput::Stdout),
            "STDERR" => Ok(SonicOutput::Stderr),
            _ => Err(UnknownSonicOutput(s.to_string())),
        }
    }
}

/// True when `JOURNAL_STREAM` (`<dev>:<inode>`, set by systemd when it
/// connects stdout/stderr to the journal) names the file stderr is.
pub fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // st_dev / st_ino are u64 on Linux targets, narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    match nix::sys::stat::fstat(std::io::stderr()) {
        Ok(st) => u64::from(st.st_dev) == dev && u64::from(st.st_ino) == ino,
        Err(_) => false,
    }
}

// ===== the live level and output =====

/// Changes the level and the output of the subscriber installed by
/// [`init`] at run time. Cheap to clone.
#[derive(Clone)]
pub struct LogHandle {
    daemon: &'static str,
    reload: reload::Handle<LevelFilter, Registry>,
    current: Arc<Mutex<LogLevel>>,
    from_command_line: bool,
    output: Arc<output::Switch>,
    output_from_command_line: bool,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle")
            .field("daemon", &self.daemon)
            .field("level", &self.level())
            .field("output", &self.output())
            .finish()
    }
}

impl LogHandle {
    /// The daemon's name (the `LOGGER|<daemon>` key, the syslog ident).
    pub fn daemon(&self) -> &'static str {
        self.daemon
    }

    /// True when the start level was given with `--log-level`: CONFIG_DB
    /// `LOGGER|<daemon>` `LOGLEVEL` present at start is then not applied
    /// (later changes are).
    pub fn from_command_line(&self) -> bool {
        self.from_command_line
    }

    /// True when the start output was given with `--log-output` (other
    /// than `auto`): CONFIG_DB `LOGGER|<daemon>` `LOGOUTPUT` present at
    /// start is then not applied (later changes are).
    pub fn output_from_command_line(&self) -> bool {
        self.output_from_command_line
    }

    /// The level in force.
    pub fn level(&self) -> LogLevel {
        match self.current.lock() {
            Ok(l) => *l,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Makes `level` the level in force for every later event.
    ///
    /// Errors: the subscriber is gone (process exiting); the text says so.
    pub fn set_level(&self, level: LogLevel) -> Result<(), String> {
        self.reload
            .reload(LevelFilter::from_level(level.0))
            .map_err(|e| e.to_string())?;
        match self.current.lock() {
            Ok(mut l) => *l = level,
            Err(poisoned) => *poisoned.into_inner() = level,
        }
        Ok(())
    }

    /// The output in force (never [`LogOutput::Auto`]).
    pub fn output(&self) -> LogOutput {
        self.output.get()
    }

    /// What CONFIG_DB `LOGOUTPUT` `want` would switch to
    /// ([`output::Switch::resolve`]): `SYSLOG` is the system log chosen at
    /// start (journald under systemd's journal, else syslog; syslog only
    /// where its socket exists when the start chose a text stream).
    pub fn resolve_output(&self, want: SonicOutput) -> LogOutput {
        self.output.resolve(want)
    }

    /// Makes `want` the output of every later event and returns the output
    /// now in force ([`LogHandle::resolve_output`]).
    pub fn set_output(&self, want: SonicOutput) -> LogOutput {
        let to = self.output.resolve(want);
        self.output.set(to);
        to
    }
}

/// Installs the global tracing subscriber for `daemon` with the syslog
/// socket at its default place ([`native_syslog::DEFAULT_SYSLOG_SOCKET`]);
/// see [`init_with_socket`].
pub fn init(
    daemon: &'static str,
    level: Option<LogLevel>,
    output: LogOutput,
) -> (LogHandle, LogOutput) {
    init_with_socket(
        daemon,
        level,
        output,
        std::path::Path::new(native_syslog::DEFAULT_SYSLOG_SOCKET),
    )
}

/// Installs the global tracing subscriber for `daemon` (also the syslog
/// ident and journald `SYSLOG_IDENTIFIER`): level `level` (`--log-level`;
/// `None` when not given: [`LogLevel::DEFAULT`] until CONFIG_DB `LOGGER` is
/// read, see [`LoggerSync`]), changeable through the returned handle,
/// and output `output` (`--log-output`), also changeable through the
/// handle. [`LogOutput::Auto`] is [`auto_output`]: journald when
/// [`stderr_is_journal`], else syslog when `syslog_socket`
/// (`--syslog-socket`, normally `/dev/log`) is a socket and stderr is not
/// watched ([`stderr_is_watched`]), else stderr. When journald cannot be opened, stderr is used
/// and a warning logged; when the syslog socket cannot be connected, the
/// syslog output stays chosen and each line goes to stderr until it can be
/// ([`native_syslog::SyslogWriter::write`]). Returns the handle and the
/// output actually used (never `Auto`).
///
/// If a global subscriber is already installed (tests), it is kept; the
/// handle then changes nothing visible.
pub fn init_with_socket(
    daemon: &'static str,
    level: Option<LogLevel>,
    output: LogOutput,
    syslog_socket: &std::path::Path,
) -> (LogHandle, LogOutput) {
    let from_command_line = level.is_some();
    let level = level.unwrap_or(LogLevel::DEFAULT);
    let (filter, reload) = reload::Layer::new(LevelFilter::from_level(level.0));
    let want = match output {
        LogOutput::Auto => auto_output(
            stderr_is_journal(),
            output::is_socket(syslog_socket),
            stderr_is_watched(),
        ),
        other => other,
    };
    // journald is opened whenever stderr is the journal (so that a later
    // LOGOUTPUT SYSLOG can return to it) or when asked for.
    let mut journald_error = None;
    let journald = if want == LogOutput::Journald || stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(l) => Some(
                l.with_syslog_identifier(daemon.to_string())
                    .with_priority_mappings(journald_priorities()),
            ),
            Err(e) => {
                journald_error = Some(e);
                None
            }
        }
    } else {
        None
    };
    let used = match want {
        LogOutput::Journald if journald.is_none() => LogOutput::Stderr,
        other => other,
    };
    let system = match used {
        LogOutput::Journald | LogOutput::Syslog => Some(used),
        _ if journald.is_some() => Some(LogOutput::Journald),
        _ => None,
    };
    let switch = Arc::new(output::Switch::new(used, system, syslog_socket));
    let syslog = native_syslog::SyslogWriter::new(daemon, syslog_socket);
    if used == LogOutput::Syslog {
        // Opened now; when it fails, the first line reports it on stderr.
        let _ = syslog.connect();
    }
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(output::Outputs::new(switch.clone(), journald, syslog))
        .try_init();
    if let Err(e) = installed {
        eprintln!("{daemon}: logging not initialised: {e}");
    }
    if let Some(e) = journald_error {
        tracing::warn!(error = %e, "journald unavailable; logging to stderr");
    }
    let handle = LogHandle {
        daemon,
        reload,
        current: Arc::new(Mutex::new(level)),
        from_command_line,
        output: switch,
        output_from_command_line: output != LogOutput::Auto,
    };
    (handle, used)
}

/// What [`LogOutput::Auto`] picks: journald when stderr is the journal;
/// else syslog when its socket exists and stderr is not `watched` (a
/// terminal or a regular file, where someone reads stderr: a shell, a test
/// harness, a redirect); else stderr. Supervisord (SONiC's swss container)
/// and docker give a pipe, so the daemons log natively there.
pub fn auto_output(stderr_journal: bool, syslog_socket: bool, watched: bool) -> LogOutput {
    if stderr_journal {
        LogOutput::Journald
    } else if syslog_socket && !watched {
        LogOutput::Syslog
    } else {
        LogOutput::Stderr
    }
}

/// True when stderr is a terminal or a regular file (see [`auto_output`]).
pub fn stderr_is_watched() -> bool {
    use nix::sys::stat::SFlag;
    use std::io::IsTerminal;
    let stderr = std::io::stderr();
    if stderr.is_terminal() {
        return true;
    }
    match nix::sys::stat::fstat(&stderr) {
        Ok(st) => SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG,
        Err(_) => false,
    }
}

/// journald priorities matching the syslog output's
/// ([`native_syslog::severity`]): ERROR 3, WARN 4, INFO 5 (NOTICE), DEBUG
/// and TRACE 7.
fn journald_priorities() -> tracing_journald::PriorityMappings {
    use tracing_journald::Priority;
    tracing_journald::PriorityMappings {
        error: Priority::Error,
        warn: Priority::Warning,
        info: Priority::Notice,
        debug: Priority::Debug,
        trace: Priority::Debug,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swss::KeyOp;
    use tracing::Level;

    #[test]
    fn sonic_names_map_both_ways() {
        for (name, level) in [
            ("EMERG", Level::ERROR),
            ("ALERT", Level::ERROR),
            ("CRIT", Level::ERROR),
            ("ERROR", Level::ERROR),
            ("err", Level::ERROR),
            ("WARN", Level::WARN),
            ("warning", Level::WARN),
            ("NOTICE", Level::INFO),
            ("INFO", Level::INFO),
            ("DEBUG", Level::DEBUG),
            ("debug", Level::DEBUG),
            ("trace", Level::TRACE),
        ] {
            assert_eq!(name.parse::<LogLevel>(), Ok(LogLevel(level)), "{name}");
        }
        assert!("LOUD".parse::<LogLevel>().is_err());
        assert!("".parse::<LogLevel>().is_err());
        assert_eq!(LogLevel(Level::INFO).sonic_name(), "NOTICE");
        assert_eq!(LogLevel(Level::TRACE).sonic_name(), "DEBUG");
        for l in SonicLevel::ALL {
            // Every SONiC name round-trips to a level of the same severity.
            let back = SonicLevel::from_tracing(l.to_tracing());
            assert_eq!(back.to_tracing(), l.to_tracing(), "{l:?}");
        }
    }

    #[test]
    fn log_output_names() {
        for o in [
            LogOutput::Auto,
            LogOutput::Syslog,
            LogOutput::Journald,
            LogOutput::Stderr,
            LogOutput::Stdout,
        ] {
            assert_eq!(o.as_str().parse(), Ok(o));
        }
        assert_eq!("STDERR".parse(), Ok(LogOutput::Stderr));
        assert_eq!("journal".parse(), Ok(LogOutput::Journald));
        assert!("file".parse::<LogOutput>().is_err());
        for o in [
            SonicOutput::Syslog,
            SonicOutput::Stdout,
            SonicOutput::Stderr,
        ] {
            assert_eq!(o.as_str().parse(), Ok(o));
        }
        assert_eq!("syslog".parse(), Ok(SonicOutput::Syslog));
        assert!("JOURNALD".parse::<SonicOutput>().is_err());
        assert!("".parse::<SonicOutput>().is_err());
    }

    #[test]
    fn auto_is_the_journal_then_syslog_unless_stderr_is_watched() {
        assert_eq!(auto_output(true, true, true), LogOutput::Journald);
        assert_eq!(auto_output(true, false, false), LogOutput::Journald);
        // supervisord / docker: a pipe.
        assert_eq!(auto_output(false, true, false), LogOutput::Syslog);
        // A shell or a test harness reading stderr.
        assert_eq!(auto_output(false, true, true), LogOutput::Stderr);
        // No syslog daemon.
        assert_eq!(auto_output(false, false, false), LogOutput::Stderr);
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        // The test's stderr is not the journal whatever JOURNAL_STREAM says
        // (0:0 is never a real file).
        std::env::set_var("JOURNAL_STREAM", "0:0");
        assert!(!stderr_is_journal());
        std::env::remove_var("JOURNAL_STREAM");
        assert!(!stderr_is_journal());
    }

    fn set(key: &str, level: &str) -> KeyOp {
        set2(key, level, "SYSLOG")
    }

    fn set2(key: &str, level: &str, output: &str) -> KeyOp {
        KeyOp::Set(
            key.into(),
            vec![
                ("LOGLEVEL".into(), level.into()),
                ("LOGOUTPUT".into(), output.into()),
            ],
        )
    }

    #[test]
    fn only_changes_of_our_key_are_applied() {
        let mut last = None;
        // Initial load: recorded, not applied.
        assert_eq!(
            level_change("neighsyncd", &set("neighsyncd", "NOTICE"), &mut last, false),
            None
        );
        assert_eq!(last.as_deref(), Some("NOTICE"));
        // The same value again (e.g. LOGOUTPUT changed): nothing.
        assert_eq!(
            level_change("neighsyncd", &set("neighsyncd", "NOTICE"), &mut last, true),
            None
        );
        // Another daemon's key: nothing.
        assert_eq!(
            level_change("neighsyncd", &set("portsyncd", "DEBUG"), &mut last, true),
            None
        );
        assert_eq!(
            level_change("neighsyncd", &set("neighsyncd", "DEBUG"), &mut last, true),
            Some(LogLevel(Level::DEBUG))
        );
        // Bad names are skipped but remembered.
        assert_eq!(
            level_change("neighsyncd", &set("neighsyncd", "LOUD"), &mut last, true),
            None
        );
        assert_eq!(last.as_deref(), Some("LOUD"));
        assert_eq!(
            level_change(
                "neighsyncd",
                &KeyOp::Del("neighsyncd".into()),
                &mut last,
                true
            ),
            None
        );
        assert_eq!(
            level_change("neighsyncd", &set("neighsyncd", "ERROR"), &mut last, true),
            Some(LogLevel(Level::ERROR))
        );
    }

    /// A handle on a reload layer kept alive by the caller (no global
    /// subscriber needed), with the given start level and origin; output
    /// stderr (not from the command line), syslog meaning syslog.
    fn test_handle(
        daemon: &'static str,
        level: LogLevel,
        from_command_line: bool,
    ) -> (reload::Layer<LevelFilter, Registry>, LogHandle) {
        let (layer, reload) = reload::Layer::new(LevelFilter::from_level(level.0));
        let handle = LogHandle {
            daemon,
            reload,
            current: Arc::new(Mutex::new(level)),
            from_command_line,
            output: Arc::new(output::Switch::new(
                LogOutput::Stderr,
                Some(LogOutput::Syslog),
                std::path::Path::new("/nonexistent/log.sock"),
            )),
            output_from_command_line: false,
        };
        (layer, handle)
    }

    #[test]
    fn output_changes_follow_logoutput() {
        let mut last = None;
        // Initial load with --log-output given: remembered, not applied.
        assert_eq!(
            output_change("portsyncd", &set("portsyncd", "NOTICE"), &mut last, false),
            None
        );
        assert_eq!(last.as_deref(), Some("SYSLOG"));
        assert_eq!(
            output_change(
                "portsyncd",
                &set2("portsyncd", "NOTICE", "STDOUT"),
                &mut last,
                true
            ),
            Some(SonicOutput::Stdout)
        );
        // Unknown: skipped, remembered.
        assert_eq!(
            output_change(
                "portsyncd",
                &set2("portsyncd", "NOTICE", "FILE"),
                &mut last,
                true
            ),
            None
        );
        assert_eq!(
            output_change(
                "portsyncd",
                &set2("neighsyncd", "NOTICE", "STDERR"),
                &mut last,
                true
            ),
            None
        );

        let (_layer, handle) = test_handle("portsyncd", LogLevel::DEFAULT, false);
        let mut sync = LoggerSync::new(handle.clone());
        // At start, CONFIG_DB's SYSLOG keeps auto's choice (stderr here);
        // STDOUT at start applies.
        assert_eq!(sync.apply(&set("portsyncd", "NOTICE"), true), None);
        assert_eq!(handle.output(), LogOutput::Stderr);
        let (_l, h) = test_handle("portsyncd", LogLevel::DEFAULT, false);
        LoggerSync::new(h.clone()).apply(&set2("portsyncd", "NOTICE", "STDOUT"), true);
        assert_eq!(h.output(), LogOutput::Stdout);
        // Live, SYSLOG switches to the system log.
        sync.apply(&set2("portsyncd", "NOTICE", "STDERR"), false);
        sync.apply(&set("portsyncd", "NOTICE"), false);
        assert_eq!(handle.output(), LogOutput::Syslog);
        // A level change alone leaves the output.
        sync.apply(&set("portsyncd", "DEBUG"), false);
        assert_eq!(handle.output(), LogOutput::Syslog);
        assert_eq!(handle.level(), LogLevel(Level::DEBUG));
        sync.apply(&set2("portsyncd", "DEBUG", "STDOUT"), false);
        assert_eq!(handle.output(), LogOutput::Stdout);
        assert_eq!(handle.level(), LogLevel(Level::DEBUG));
        sync.apply(&set2("portsyncd", "DEBUG", "bogus"), false);
        assert_eq!(handle.output(), LogOutput::Stdout);
        sync.apply(&set2("portsyncd", "DEBUG", "STDERR"), false);
        assert_eq!(handle.output(), LogOutput::Stderr);

        // --log-output given: the start value is not applied, later ones are.
        let (_layer2, mut handle2) = test_handle("portsyncd", LogLevel::DEFAULT, false);
        handle2.output_from_command_line = true;
        let mut sync2 = LoggerSync::new(handle2.clone());
        sync2.apply(&set("portsyncd", "NOTICE"), true);
        assert_eq!(handle2.output(), LogOutput::Stderr);
        sync2.apply(&set2("portsyncd", "NOTICE", "STDOUT"), false);
        assert_eq!(handle2.output(), LogOutput::Stdout);
        sync2.apply(&set2("portsyncd", "NOTICE", "SYSLOG"), false);
        assert_eq!(handle2.output(), LogOutput::Syslog);
    }

    #[test]
    fn logger_sync_applies_the_start_value_unless_given_on_the_command_line() {
        // No --log-level: CONFIG_DB's value at start is applied.
        let (_layer, handle) = test_handle("neighsyncd", LogLevel::DEFAULT, false);
        let mut sync = LoggerSync::new(handle.clone());
        assert_eq!(
            sync.apply(&set("neighsyncd", "DEBUG"), true),
            Some(LogLevel(Level::DEBUG))
        );
        assert_eq!(handle.level(), LogLevel(Level::DEBUG));
        // The level already in force at start: nothing to do.
        let (_layer2, handle2) = test_handle("neighsyncd", LogLevel::DEFAULT, false);
        let mut sync2 = LoggerSync::new(handle2.clone());
        assert_eq!(sync2.apply(&set("neighsyncd", "NOTICE"), true), None);
        assert_eq!(handle2.level(), LogLevel::DEFAULT);

        // --log-level ERROR: the start value is remembered, not applied.
        let (_layer3, handle3) = test_handle("neighsyncd", LogLevel(Level::ERROR), true);
        let mut sync3 = LoggerSync::new(handle3.clone());
        assert_eq!(sync3.apply(&set("neighsyncd", "DEBUG"), true), None);
        assert_eq!(handle3.level(), LogLevel(Level::ERROR));
        // The same value again later (LOGOUTPUT changed): still nothing.
        assert_eq!(sync3.apply(&set("neighsyncd", "DEBUG"), false), None);
        // A later change is applied.
        assert_eq!(
            sync3.apply(&set("neighsyncd", "WARN"), false),
            Some(LogLevel(Level::WARN))
        );
        assert_eq!(handle3.level(), LogLevel(Level::WARN));
        assert_eq!(sync3.handle().level(), LogLevel(Level::WARN));
    }

    #[test]
    fn logger_sync_ignores_other_keys_deletions_and_bad_names() {
        let (_layer, handle) = test_handle("portsyncd", LogLevel::DEFAULT, false);
        let mut sync = LoggerSync::new(handle.clone());
        assert_eq!(sync.apply(&set("neighsyncd", "DEBUG"), false), None);
        assert_eq!(sync.apply(&KeyOp::Del("portsyncd".into()), false), None);
        assert_eq!(sync.apply(&set("portsyncd", "LOUD"), false), None);
        assert_eq!(
            sync.apply(&KeyOp::Set("portsyncd".into(), Vec::new()), false),
            None
        );
        assert_eq!(handle.level(), LogLevel::DEFAULT);
        assert_eq!(
            sync.apply(&set("portsyncd", "debug"), false),
            Some(LogLevel(Level::DEBUG))
        );
        assert_eq!(handle.level(), LogLevel(Level::DEBUG));
    }

    #[test]
    fn a_level_that_cannot_be_set_is_not_reported_as_set() {
        let (layer, handle) = test_handle("neighsyncd", LogLevel::DEFAULT, false);
        drop(layer);
        let mut sync = LoggerSync::new(handle.clone());
        assert_eq!(sync.apply(&set("neighsyncd", "DEBUG"), false), None);
        assert_eq!(handle.level(), LogLevel::DEFAULT);
    }
}
