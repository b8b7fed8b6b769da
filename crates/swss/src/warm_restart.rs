//! WarmStart (docs/behavior.md c.1), as swss::WarmStart in sonic-swss-common's
//! warm_restart.cpp: the enable knobs, `restore_count`, the reconcile timer
//! and the `state` field that SONiC's warm-reboot tooling watches.
//!
//! STATE_DB keys (separator `|`):
//! * `WARM_RESTART_ENABLE_TABLE|system` / `|<docker>`, field `enable` =
//!   `true` when a system warm reboot / a docker warm restart is in progress;
//! * `WARM_RESTART_TABLE|<app>`, fields `restore_count` (decimal) and `state`.
//!
//! CONFIG_DB: `WARM_RESTART|<docker>`, field `<app>_timer` (seconds).

use redis::aio::ConnectionLike;

use crate::{bad_entry, SwssError, Table};

/// STATE_DB table with the enable knobs.
pub const WARM_RESTART_ENABLE_TABLE: &str = "WARM_RESTART_ENABLE_TABLE";
/// STATE_DB table with `restore_count` and `state` per app.
pub const WARM_RESTART_TABLE: &str = "WARM_RESTART_TABLE";
/// CONFIG_DB table with the per-app reconcile timers.
pub const CFG_WARM_RESTART_TABLE: &str = "WARM_RESTART";

/// Values of `WARM_RESTART_TABLE|<app> state`, as swss::WarmStart::WarmStartState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarmStartState {
    /// `initialized`: the warm start began (the app read its restore_count).
    Initialized,
    /// `restored`: the app restored its state from the databases.
    Restored,
    /// `replayed`: the restored state was replayed to the consumer.
    Replayed,
    /// `reconciled`: the app reconciled its state with the kernel/config;
    /// the warm start is over.
    Reconciled,
    /// `disabled`: warm restart not enabled (a cold start).
    Disabled,
    /// Any other value found in STATE_DB.
    Unknown,
}

impl WarmStartState {
    /// The STATE_DB spelling (`initialized`, `restored`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            WarmStartState::Initialized => "initialized",
            WarmStartState::Restored => "restored",
            WarmStartState::Replayed => "replayed",
            WarmStartState::Reconciled => "reconciled",
            WarmStartState::Disabled => "disabled",
            WarmStartState::Unknown => "unknown",
        }
    }
}

/// What `checkWarmStart` found for one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmStartInfo {
    /// A warm start is in progress for this app (system or docker knob on,
    /// and a `restore_count` existed).
    pub warm: bool,
    /// The system-level knob was on: this is a warm *reboot* (the kernel
    /// tables were lost, so neighbors must be restored into the kernel).
    pub system_warm_reboot: bool,
    /// `restore_count` as written by this check (0 on a cold start).
    pub restore_count: u64,
}

/// The STATE_DB key of an app's warm-restart entry: `WARM_RESTART_TABLE|<app>`.
pub fn warm_restart_table_key(app: &str, sep: char) -> String {
    format!("{WARM_RESTART_TABLE}{sep}{app}")
}

/// `checkWarmStart(app, docker, incr)` against STATE_DB (`conn` must be on
/// STATE_DB, whose separator is `sep`).
///
/// 1. `HGET WARM_RESTART_ENABLE_TABLE|system enable` == `true` -> enabled,
///    system warm reboot; 2. `... |<docker> enable` == `true` -> enabled.
/// 3. Not enabled: `HSET WARM_RESTART_TABLE|<app> restore_count 0`, cold.
/// 4. Enabled but `restore_count` missing or empty: warn, write 0, cold.
///    Not a number: reported as a bad entry, write 0, cold (the C++
///    throws and the daemon stops).
/// 5. Otherwise warm; with `incr`, write `restore_count + 1`.
///
/// Keys that are not hashes read as absent and are not written (reported
/// as bad entries).
///
/// Errors: Redis errors other than `WRONGTYPE`.
pub async fn check_warm_start<C: ConnectionLike + Send>(
    conn: &mut C,
    sep: char,
    app: &str,
    docker: &str,
    incr: bool,
) -> Result<WarmStartInfo, SwssError> {
    let enable = Table::new(WARM_RESTART_ENABLE_TABLE, sep).in_db("STATE_DB");
    let system = enable.hget(conn, "system", "enable").await?;
    let system_warm_reboot = system.as_deref() == Some("true");
    let docker_on = enable.hget(conn, docker, "enable").await?;
    let enabled = system_warm_reboot || docker_on.as_deref() == Some("true");
    let cold = WarmStartInfo {
        warm: false,
        system_warm_reboot: false,
        restore_count: 0,
    };
    if !enabled {
        set_restore_count(conn, sep, app, 0).await?;
        return Ok(cold);
    }
    let table = Table::new(WARM_RESTART_TABLE, sep).in_db("STATE_DB");
    let count = match table.hget(conn, app, "restore_count").await?.as_deref() {
        None | Some("") => {
            tracing::warn!(
                app,
                "warm restart enabled but restore_count is missing: cold start"
            );
            set_restore_count(conn, sep, app, 0).await?;
            return Ok(cold);
        }
        Some(c) => match c.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                bad_entry::report(
                    "STATE_DB",
                    &warm_restart_table_key(app, sep),
                    format_args!("restore_count {c:?} is not a number; cold start"),
                );
                set_restore_count(conn, sep, app, 0).await?;
                return Ok(cold);
            }
        },
    };
    let restore_count = if incr {
        let n = count.saturating_add(1);
        set_restore_count(conn, sep, app, n).await?;
        n
    } else {
        count
    };
    Ok(WarmStartInfo {
        warm: true,
        system_warm_reboot,
        restore_count,
    })
}

/// `HSET WARM_RESTART_TABLE|<app> restore_count <n>` on STATE_DB.
async fn set_restore_count<C: ConnectionLike + Send>(
    conn: &mut C,
    sep: char,
    app: &str,
    n: u64,
) -> Result<(), SwssError> {
    Table::new(WARM_RESTART_TABLE, sep)
        .in_db("STATE_DB")
        .hset(conn, app, "restore_count", &n.to_string())
        .await
}

/// `setWarmStartState(app, state)`: `HSET WARM_RESTART_TABLE|<app> state <s>`
/// on STATE_DB.
pub async fn set_warm_start_state<C: ConnectionLike + Send>(
    conn: &mut C,
    sep: char,
    app: &str,
    state: WarmStartState,
) -> Result<(), SwssError> {
    Table::new(WARM_RESTART_TABLE, sep)
        .in_db("STATE_DB")
        .hset(conn, app, "state", state.as_str())
        .await
}

/// `getWarmStartTimer(app, docker)`: `HGET WARM_RESTART|<docker> <app>_timer`
/// on CONFIG_DB, parsed by [`parse_warm_start_timer`]. `None` means "not
/// configured" (the caller uses its default); a value that does not parse
/// is reported as a bad entry and gives `None` too (the C++ silently falls
/// back to the default).
pub async fn get_warm_start_timer<C: ConnectionLike + Send>(
    conn: &mut C,
    sep: char,
    app: &str,
    docker: &str,
) -> Result<Option<u32>, SwssError> {
    let table = Table::new(CFG_WARM_RESTART_TABLE, sep).in_db("CONFIG_DB");
    let field = format!("{app}_timer");
    let Some(v) = table.hget(conn, docker, &field).await? else {
        return Ok(None);
    };
    let timer = parse_warm_start_timer(&v);
    if timer.is_none() {
        bad_entry::report(
            "CONFIG_DB",
            &table.full_key(docker),
            format_args!("{field} {v:?} is not 1..=9999 seconds; the default is used"),
        );
    }
    Ok(timer)
}

/// A `<app>_timer` value in seconds, parsed like C `strtoul(s, NULL, 0)`:
/// leading whitespace, an optional sign, `0x`/`0X` hex, a leading `0` octal,
/// otherwise decimal; parsing stops at the first non-digit. Only 1..=9999 is
/// accepted (as WarmStart::getWarmStartTimer); anything else is `None`.
pub fn parse_warm_start_timer(s: &str) -> Option<u32> {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if (t.starts_with("0x") || t.starts_with("0X"))
        && t[2..].starts_with(|c: char| c.is_ascii_hexdigit())
    {
        (16, &t[2..])
    } else if t.starts_with('0') {
        (8, t)
    } else {
        (10, t)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let digits = &digits[..end];
    if digits.is_empty() {
        return None;
    }
    // strtoul saturates at ULONG_MAX; anything that large is out of range anyway.
    let v = u64::from_str_radix(digits, radix).unwrap_or(u64::MAX);
    // a negated non-zero value wraps to a huge unsigned number: out of range
    if neg && v != 0 {
        return None;
    }
    if (1..=9999).contains(&v) {
        u32::try_from(v).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_parses_like_strtoul_base0() {
        assert_eq!(parse_warm_start_timer("5"), Some(5));
        assert_eq!(parse_warm_start_timer("  120"), Some(120));
        assert_eq!(parse_warm_start_timer("0x10"), Some(16));
        assert_eq!(parse_warm_start_timer("0X1f"), Some(31));
        assert_eq!(parse_warm_start_timer("010"), Some(8));
        assert_eq!(parse_warm_start_timer("09"), None); // octal 0, then '9' stops
        assert_eq!(parse_warm_start_timer("10s"), Some(10));
        assert_eq!(parse_warm_start_timer("+7"), Some(7));
        assert_eq!(parse_warm_start_timer("9999"), Some(9999));
        assert_eq!(parse_warm_start_timer("10000"), None);
        assert_eq!(parse_warm_start_timer("0"), None);
        assert_eq!(parse_warm_start_timer("-1"), None);
        assert_eq!(parse_warm_start_timer("abc"), None);
        assert_eq!(parse_warm_start_timer(""), None);
        assert_eq!(parse_warm_start_timer("99999999999999999999999"), None);
        assert_eq!(parse_warm_start_timer("0x"), None);
    }

    #[test]
    fn state_spelling() {
        assert_eq!(WarmStartState::Reconciled.as_str(), "reconciled");
        assert_eq!(WarmStartState::Initialized.as_str(), "initialized");
        assert_eq!(
            warm_restart_table_key("neighsyncd", '|'),
            "WARM_RESTART_TABLE|neighsyncd"
        );
    }
}
