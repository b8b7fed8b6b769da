//! Logging as a SONiC daemon: SONiC level names, tracing to stderr or
//! journald, a level that can change at run time, and CONFIG_DB `LOGGER`.
//!
//! * [`LogLevel`] parses SONiC's names (EMERG, ALERT, CRIT, ERROR, WARN,
//!   NOTICE, INFO, DEBUG; what `swssloglevel -l` takes) onto tracing levels.
//!   tracing has no NOTICE, so NOTICE and INFO both mean `INFO`.
//! * [`init`] installs the global subscriber: a reloadable level filter and
//!   one output, stderr (plain text) or journald (`tracing-journald`,
//!   `SYSLOG_IDENTIFIER` = the daemon's name). [`LogOutput::Auto`] picks
//!   journald exactly when systemd connected stderr to the journal
//!   (`JOURNAL_STREAM` names stderr's device and inode, as sd_journal docs
//!   recommend); under supervisord (SONiC's swss container) it is stderr.
//! * [`write_logger_defaults`] writes CONFIG_DB `LOGGER|<daemon>`
//!   `LOGLEVEL NOTICE` / `LOGOUTPUT SYSLOG` where missing
//!   (swss::Logger::linkToDbWithOutput).
//! * [`LoggerFollower`] follows CONFIG_DB `LOGGER|<daemon>` `LOGLEVEL` and
//!   applies each change to the live level (swss::Logger's settings thread).
//!   The value already in CONFIG_DB at start is applied as the C++ does
//!   (swss::Logger::linkToDbWithOutput), unless `--log-level` was given on
//!   the command line ([`LogHandle::from_command_line`]): then the command
//!   line decides the start level. A value changed later (also while Redis
//!   was away) is always applied.
//! * [`LoggerSync`] is the same rules without a subscription of their own:
//!   a daemon that follows other CONFIG_DB tables adds `LOGGER` to that
//!   subscription ([`swss::MultiTableSubscriber`]) and feeds it the
//!   `LOGGER` ops, saving Redis one `PSUBSCRIBE` pattern.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use redis::aio::MultiplexedConnection;
use swss::{DbConnector, KeyOp, SubscriberStateTable, SwssError, Table};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

/// CONFIG_DB logger table (`LOGGER|<daemon>`, swss-common logger.cpp).
pub const CFG_LOGGER_TABLE_NAME: &str = "LOGGER";
/// Field holding the level name (`NOTICE`, `DEBUG`, ...).
pub const LOGLEVEL_FIELD: &str = "LOGLEVEL";
/// Field holding the output (`SYSLOG`, `STDOUT`, `STDERR`); written as a
/// default only, the output is chosen by `--log-output`.
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
    /// journald when stderr is connected to the journal, else stderr.
    Auto,
    /// Plain text lines on stderr.
    Stderr,
    /// The systemd journal's native protocol.
    Journald,
}

/// Error for an unknown [`LogOutput`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log output {0:?}; expected auto, stderr or journald")]
pub struct UnknownLogOutput(pub String);

impl FromStr for LogOutput {
    type Err = UnknownLogOutput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(LogOutput::Auto),
            "stderr" => Ok(LogOutput::Stderr),
            "journald" | "journal" => Ok(LogOutput::Journald),
            _ => Err(UnknownLogOutput(s.to_string())),
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

// ===== the live level =====

/// Changes the level of the subscriber installed by [`init`] at run time.
/// Cheap to clone.
#[derive(Clone)]
pub struct LogHandle {
    daemon: &'static str,
    reload: reload::Handle<LevelFilter, Registry>,
    current: Arc<Mutex<LogLevel>>,
    from_command_line: bool,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle")
            .field("daemon", &self.daemon)
            .field("level", &self.level())
            .finish()
    }
}

impl LogHandle {
    /// The daemon's name (the `LOGGER|<daemon>` key).
    pub fn daemon(&self) -> &'static str {
        self.daemon
    }

    /// True when the start level was given with `--log-level`: CONFIG_DB
    /// `LOGGER|<daemon>` `LOGLEVEL` present at start is then not applied
    /// (later changes are).
    pub fn from_command_line(&self) -> bool {
        self.from_command_line
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
}

/// Installs the global tracing subscriber for `daemon`: level `level`
/// (`--log-level`; `None` when not given: [`LogLevel::DEFAULT`] until
/// CONFIG_DB `LOGGER` is read, see [`LoggerFollower`]), changeable through
/// the returned handle, and output `output`
/// ([`LogOutput::Auto`] resolved by [`stderr_is_journal`]). When journald
/// cannot be reached, stderr is used and a warning logged. Returns the
/// handle and the output actually used ([`LogOutput::Stderr`] or
/// [`LogOutput::Journald`]).
///
/// If a global subscriber is already installed (tests), it is kept; the
/// handle then changes nothing visible.
pub fn init(
    daemon: &'static str,
    level: Option<LogLevel>,
    output: LogOutput,
) -> (LogHandle, LogOutput) {
    let from_command_line = level.is_some();
    let level = level.unwrap_or(LogLevel::DEFAULT);
    let (filter, reload) = reload::Layer::new(LevelFilter::from_level(level.0));
    let want_journald = match output {
        LogOutput::Auto => stderr_is_journal(),
        LogOutput::Stderr => false,
        LogOutput::Journald => true,
    };
    let mut journald_error = None;
    let journald = if want_journald {
        match tracing_journald::layer() {
            Ok(l) => Some(l.with_syslog_identifier(daemon.to_string())),
            Err(e) => {
                journald_error = Some(e);
                None
            }
        }
    } else {
        None
    };
    let used = if journald.is_some() {
        LogOutput::Journald
    } else {
        LogOutput::Stderr
    };
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match journald {
        Some(layer) => registry.with(layer).try_init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false),
            )
            .try_init(),
    };
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
    };
    (handle, used)
}

// ===== CONFIG_DB LOGGER =====

/// CONFIG_DB `LOGGER|<daemon>`: writes `LOGLEVEL NOTICE` and
/// `LOGOUTPUT SYSLOG` only where missing, keeping values already there (as
/// swss::Logger::linkToDbWithOutput). `sep` is CONFIG_DB's separator (`|`).
///
/// Errors: [`SwssError::Redis`].
pub async fn write_logger_defaults(
    conn: &mut MultiplexedConnection,
    sep: char,
    daemon: &str,
) -> Result<(), SwssError> {
    let table = Table::new(CFG_LOGGER_TABLE_NAME, sep).in_db("CONFIG_DB");
    let mut missing: Vec<(&str, &str)> = Vec::new();
    for (field, default) in LOGGER_DEFAULTS {
        if table.hget(conn, daemon, field).await?.is_none() {
            missing.push((field, default));
        }
    }
    table.set(conn, daemon, &missing).await
}

/// What to do with one `LOGGER` change (pure, see [`LoggerFollower`]).
///
/// `last_seen` is the `LOGLEVEL` value last seen in CONFIG_DB (updated);
/// `apply` is false for the initial load at start when `--log-level` was
/// given (the command line wins there). Returns the level to
/// apply, if any: a `Set` of `LOGGER|<daemon>` whose `LOGLEVEL` differs
/// from `last_seen` and parses. Unknown names are logged and skipped.
pub fn level_change(
    daemon: &str,
    op: &KeyOp,
    last_seen: &mut Option<String>,
    apply: bool,
) -> Option<LogLevel> {
    let KeyOp::Set(key, fvs) = op else {
        return None;
    };
    if key != daemon {
        return None;
    }
    let value = fvs
        .iter()
        .rev()
        .find(|(f, _)| f == LOGLEVEL_FIELD)?
        .1
        .clone();
    if last_seen.as_deref() == Some(value.as_str()) {
        return None;
    }
    *last_seen = Some(value.clone());
    if !apply {
        return None;
    }
    match value.parse::<LogLevel>() {
        Ok(level) => Some(level),
        Err(e) => {
            swss::bad_entry::report(
                "CONFIG_DB",
                &format!("{CFG_LOGGER_TABLE_NAME}|{key}"),
                format_args!("LOGLEVEL ignored: {e}"),
            );
            None
        }
    }
}

/// Applies CONFIG_DB `LOGGER|<daemon>` `LOGLEVEL` changes to a [`LogHandle`]:
/// the state [`LoggerFollower`] keeps, for a daemon that follows `LOGGER`
/// on a CONFIG_DB subscription it shares with its other tables (a
/// [`swss::MultiTableSubscriber`] with [`CFG_LOGGER_TABLE_NAME`] among its
/// tables, one `PSUBSCRIBE` pattern for CONFIG_DB instead of one more per
/// table). Feed it every op of table `LOGGER`, in order, with
/// [`LoggerSync::apply`]; ops of other keys are ignored.
#[derive(Debug)]
pub struct LoggerSync {
    handle: LogHandle,
    last_seen: Option<String>,
}

impl LoggerSync {
    /// Nothing seen yet; changes go to `handle` (its daemon name is the
    /// `LOGGER` key followed).
    pub fn new(handle: LogHandle) -> Self {
        LoggerSync {
            handle,
            last_seen: None,
        }
    }

    /// The handle changes are applied to.
    pub fn handle(&self) -> &LogHandle {
        &self.handle
    }

    /// Applies one op of CONFIG_DB table `LOGGER` (key without the
    /// `LOGGER|` prefix, as a subscriber reports it) and returns the level
    /// set, if any.
    ///
    /// `at_start` is true for the ops of the initial load of the daemon's
    /// first subscription (not of a subscription rebuilt after a lost
    /// connection): those are applied only when the level did not come
    /// from `--log-level` ([`LogHandle::from_command_line`]), as
    /// swss::Logger::linkToDbWithOutput takes CONFIG_DB's level at start,
    /// and silently when the level is already in force. Later ops
    /// (including a rebuilt subscription's initial load) are applied
    /// whenever `LOGLEVEL` differs from the value last seen
    /// ([`level_change`]; an unknown name is reported as a bad entry and
    /// skipped). A change is logged at INFO (from, to).
    ///
    /// Never fails: a level that cannot be set (the subscriber is gone,
    /// process exiting) is logged as a warning and `None` returned.
    pub fn apply(&mut self, op: &KeyOp, at_start: bool) -> Option<LogLevel> {
        let apply = !(at_start && self.handle.from_command_line());
        let level = level_change(self.handle.daemon(), op, &mut self.last_seen, apply)?;
        let old = self.handle.level();
        if at_start && old == level {
            return None;
        }
        match self.handle.set_level(level) {
            Ok(()) => {
                tracing::info!(
                    from = old.sonic_name(),
                    to = level.sonic_name(),
                    "log level changed (CONFIG_DB LOGGER LOGLEVEL)"
                );
                Some(level)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot change the log level");
                None
            }
        }
    }
}

/// Follows CONFIG_DB `LOGGER|<daemon>` `LOGLEVEL` and applies changes to a
/// [`LogHandle`]: built by [`LoggerFollower::subscribe`] (the subscription
/// exists on return), run by [`LoggerFollower::spawn`]. The value found by
/// the first subscription's initial load is applied unless the level came
/// from `--log-level` ([`LogHandle::from_command_line`]), as
/// swss::Logger::linkToDbWithOutput takes CONFIG_DB's level at start. A lost
/// subscription is rebuilt with backoff (100 ms doubling, capped at 5 s);
/// its initial load then applies a value changed meanwhile.
///
/// It holds its own subscription (one more `PSUBSCRIBE` pattern, matched by
/// Redis against every keyspace notification); a daemon that already
/// follows CONFIG_DB tables can instead add `LOGGER` to that subscription
/// and feed a [`LoggerSync`] (the same rules).
pub struct LoggerFollower {
    config: DbConnector,
    sync: LoggerSync,
    sub: SubscriberStateTable,
}

impl LoggerFollower {
    /// Subscribes to CONFIG_DB `LOGGER`.
    ///
    /// Errors: [`SwssError`] (connection errors included).
    pub async fn subscribe(config: &DbConnector, handle: LogHandle) -> Result<Self, SwssError> {
        let sub = SubscriberStateTable::new(config, CFG_LOGGER_TABLE_NAME).await?;
        Ok(LoggerFollower {
            config: config.clone(),
            sync: LoggerSync::new(handle),
            sub,
        })
    }

    /// Runs the follower as a task (until the runtime ends).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let LoggerFollower {
            config,
            mut sync,
            mut sub,
        } = self;
        let mut first = true;
        loop {
            let mut initial = sub.queued();
            loop {
                let op = match sub.next().await {
                    Ok(op) => op,
                    Err(e) if e.is_connection_error() => {
                        tracing::debug!(error = %e, "CONFIG_DB LOGGER subscription lost");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "CONFIG_DB LOGGER change skipped");
                        continue;
                    }
                };
                let at_start = first && initial > 0;
                initial = initial.saturating_sub(1);
                sync.apply(&op, at_start);
            }
            first = false;
            let mut backoff = swss::connector::Backoff::new();
            sub = loop {
                tokio::time::sleep(backoff.next_delay()).await;
                match SubscriberStateTable::new(&config, CFG_LOGGER_TABLE_NAME).await {
                    Ok(s) => break s,
                    Err(e) => {
                        tracing::debug!(error = %e, "CONFIG_DB LOGGER resubscribe failed; retrying");
                    }
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!("auto".parse(), Ok(LogOutput::Auto));
        assert_eq!("STDERR".parse(), Ok(LogOutput::Stderr));
        assert_eq!("journald".parse(), Ok(LogOutput::Journald));
        assert!("syslog".parse::<LogOutput>().is_err());
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
        KeyOp::Set(
            key.into(),
            vec![
                ("LOGLEVEL".into(), level.into()),
                ("LOGOUTPUT".into(), "SYSLOG".into()),
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
    /// subscriber needed), with the given start level and origin.
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
        };
        (layer, handle)
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
