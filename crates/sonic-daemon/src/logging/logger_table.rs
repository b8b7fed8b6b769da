//! CONFIG_DB `LOGGER|<daemon>` (swss::Logger's table): the defaults
//! written at start ([`write_logger_defaults`]), the pure change rules
//! ([`field_change`], [`level_change`], [`output_change`]), and
//! [`LoggerSync`], fed the `LOGGER` ops of the daemon's CONFIG_DB
//! subscription. The tracing set-up
//! they act on is in the parent module ([`super::LogHandle`]).

use redis::aio::MultiplexedConnection;
use swss::{KeyOp, SwssError, Table};

use super::{
    LogHandle, LogLevel, LogOutput, SonicOutput, CFG_LOGGER_TABLE_NAME, LOGGER_DEFAULTS,
    LOGLEVEL_FIELD, LOGOUTPUT_FIELD,
};

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

/// The new value of `field` in one `LOGGER` op (pure): a `Set` of
/// `LOGGER|<daemon>` whose `field` (the last one, if repeated) differs
/// from `last_seen`; `last_seen` is updated. `None` for other keys,
/// deletions, an unchanged or absent field, and when `apply` is false (the
/// value is still remembered).
pub fn field_change(
    daemon: &str,
    op: &KeyOp,
    field: &str,
    last_seen: &mut Option<String>,
    apply: bool,
) -> Option<String> {
    let KeyOp::Set(key, fvs) = op else {
        return None;
    };
    if key != daemon {
        return None;
    }
    let value = fvs.iter().rev().find(|(f, _)| f == field)?.1.clone();
    if last_seen.as_deref() == Some(value.as_str()) {
        return None;
    }
    *last_seen = Some(value.clone());
    apply.then_some(value)
}

/// What to do with one `LOGGER` change's `LOGLEVEL` (pure, see
/// [`LoggerSync::apply`]).
///
/// `last_seen` is the `LOGLEVEL` value last seen in CONFIG_DB (updated);
/// `apply` is false for the initial load at start when `--log-level` was
/// given (the command line wins there). Returns the level to
/// apply, if any: a `Set` of `LOGGER|<daemon>` whose `LOGLEVEL` differs
/// from `last_seen` and parses. Unknown names are reported as a bad
/// CONFIG_DB entry (warning) and skipped.
pub fn level_change(
    daemon: &str,
    op: &KeyOp,
    last_seen: &mut Option<String>,
    apply: bool,
) -> Option<LogLevel> {
    let value = field_change(daemon, op, LOGLEVEL_FIELD, last_seen, apply)?;
    match value.parse::<LogLevel>() {
        Ok(level) => Some(level),
        Err(e) => {
            swss::bad_entry::report(
                "CONFIG_DB",
                &format!("{CFG_LOGGER_TABLE_NAME}|{daemon}"),
                format_args!("LOGLEVEL ignored: {e}"),
            );
            None
        }
    }
}

/// What to do with one `LOGGER` change's `LOGOUTPUT` (pure): as
/// [`level_change`] for the output (`SYSLOG`, `STDOUT`, `STDERR`). An
/// unknown value is reported as a bad CONFIG_DB entry (warning) and skipped,
/// keeping the output in force (the C++ logs an error and falls back to
/// `SYSLOG`).
pub fn output_change(
    daemon: &str,
    op: &KeyOp,
    last_seen: &mut Option<String>,
    apply: bool,
) -> Option<SonicOutput> {
    let value = field_change(daemon, op, LOGOUTPUT_FIELD, last_seen, apply)?;
    match value.parse::<SonicOutput>() {
        Ok(o) => Some(o),
        Err(e) => {
            swss::bad_entry::report(
                "CONFIG_DB",
                &format!("{CFG_LOGGER_TABLE_NAME}|{daemon}"),
                format_args!("LOGOUTPUT ignored: {e}"),
            );
            None
        }
    }
}

/// Applies CONFIG_DB `LOGGER|<daemon>` `LOGLEVEL` and `LOGOUTPUT` changes
/// to a [`LogHandle`], for a daemon that follows `LOGGER` on a CONFIG_DB
/// subscription it shares with its other tables (a [`swss::MultiTableSubscriber`] with [`CFG_LOGGER_TABLE_NAME`]
/// among its tables, one `PSUBSCRIBE` pattern for CONFIG_DB instead of one
/// more per table). Feed it every op of table `LOGGER`, in order, with
/// [`LoggerSync::apply`]; ops of other keys are ignored.
#[derive(Debug)]
pub struct LoggerSync {
    handle: LogHandle,
    last_seen: Option<String>,
    last_output: Option<String>,
}

impl LoggerSync {
    /// Nothing seen yet; changes go to `handle` (its daemon name is the
    /// `LOGGER` key followed).
    pub fn new(handle: LogHandle) -> Self {
        LoggerSync {
            handle,
            last_seen: None,
            last_output: None,
        }
    }

    /// The handle changes are applied to.
    pub fn handle(&self) -> &LogHandle {
        &self.handle
    }

    /// Applies one op of CONFIG_DB table `LOGGER` (key without the
    /// `LOGGER|` prefix, as a subscriber reports it): its `LOGLEVEL`, then
    /// its `LOGOUTPUT`. Returns the level set, if any.
    ///
    /// `at_start` is true for the ops of the initial load of the daemon's
    /// first subscription (not of a subscription rebuilt after a lost
    /// connection): those are applied only when the value did not come
    /// from the command line ([`LogHandle::from_command_line`],
    /// [`LogHandle::output_from_command_line`]), as
    /// swss::Logger::linkToDbWithOutput takes CONFIG_DB's values at start,
    /// and silently when already in force; `LOGOUTPUT SYSLOG` at start keeps
    /// the output `--log-output auto` chose (the system log, unless stderr
    /// is watched or there is no syslog socket). Later ops (including a rebuilt
    /// subscription's initial load) are applied whenever the field differs
    /// from the value last seen ([`level_change`], [`output_change`]; an
    /// unknown value is reported as a bad entry and skipped). A level
    /// change is logged at NOTICE (from, to); an output change at NOTICE
    /// on both the old output (where to look next) and the new one.
    ///
    /// Never fails: a level that cannot be set (the subscriber is gone,
    /// process exiting) is logged as a warning and `None` returned.
    pub fn apply(&mut self, op: &KeyOp, at_start: bool) -> Option<LogLevel> {
        let level = self.apply_level(op, at_start);
        self.apply_output(op, at_start);
        level
    }

    fn apply_level(&mut self, op: &KeyOp, at_start: bool) -> Option<LogLevel> {
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

    fn apply_output(&mut self, op: &KeyOp, at_start: bool) -> Option<LogOutput> {
        let apply = !(at_start && self.handle.output_from_command_line());
        let want = output_change(self.handle.daemon(), op, &mut self.last_output, apply)?;
        if at_start && want == SonicOutput::Syslog {
            // The default (written by us where missing): the output `auto`
            // chose is the system log wherever one applies; where it chose
            // stderr, someone reads stderr (or there is no syslog).
            return None;
        }
        let old = self.handle.output();
        let to = self.handle.resolve_output(want);
        if old == to {
            return None;
        }
        tracing::info!(
            to = to.as_str(),
            logoutput = want.as_str(),
            "log output changing (CONFIG_DB LOGGER LOGOUTPUT)"
        );
        self.handle.set_output(want);
        tracing::info!(
            from = old.as_str(),
            logoutput = want.as_str(),
            "log output changed (CONFIG_DB LOGGER LOGOUTPUT)"
        );
        Some(to)
    }
}

/// A [`LoggerSync`] shared by a daemon's start-up and its CONFIG_DB
/// subscription tasks (both feed it `LOGGER` ops), or nothing without a
/// [`LogHandle`]. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct SharedLogger(std::sync::Arc<std::sync::Mutex<Option<LoggerSync>>>);

impl SharedLogger {
    /// Shares `sync` ([`crate::Ops::logger_sync`]'s result).
    pub fn new(sync: Option<LoggerSync>) -> Self {
        SharedLogger(std::sync::Arc::new(std::sync::Mutex::new(sync)))
    }

    /// [`LoggerSync::apply`] of one CONFIG_DB `LOGGER` op; nothing without
    /// a `LoggerSync`.
    pub fn apply(&self, op: &KeyOp, at_start: bool) {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sync) = guard.as_mut() {
            sync.apply(op, at_start);
        }
    }
}
