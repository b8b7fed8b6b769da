//! Entries that cannot be used: a key of the wrong Redis type (a string or a
//! set where a hash belongs), or a field whose value is garbage.
//!
//! Policy, shared by every reader of this crate and the daemons: such an
//! entry is logged (warning, with its database, full key and the problem),
//! counted, and skipped; everything else proceeds. The C++ daemons survive
//! most of these by accident (an exception caught per key) and crash on
//! others; ours must never stop for one key (docs/differences.md).
//!
//! The count is process-wide and labelled by database and table, so the
//! daemons export it as a metric (`<daemon>_bad_db_entries_total{db,table}`)
//! without threading a handle through every reader.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Mutex;

/// Skipped entries so far, per `(database, table)`.
static COUNTS: Mutex<BTreeMap<(String, String), u64>> = Mutex::new(BTreeMap::new());

/// The table part of a full key: the text before the first `|` or `:`
/// (`PORT|Ethernet0` -> `PORT`, `_NEIGH_TABLE:Vlan1:10.0.0.1` ->
/// `_NEIGH_TABLE`), or the whole key when it has no separator.
pub fn table_of(full_key: &str) -> &str {
    full_key.split(['|', ':']).next().unwrap_or(full_key)
}

/// Logs and counts one unusable entry: `db` is the database name
/// (`CONFIG_DB`, `STATE_DB`, `APPL_DB`; empty when the reader does not know
/// it), `full_key` the Redis key, `problem` what is wrong with it (e.g.
/// `not a hash (WRONGTYPE)`, `neighsyncd_timer "abc" is not 1..=9999`).
pub fn report(db: &str, full_key: &str, problem: impl Display) {
    tracing::warn!(db, key = full_key, problem = %problem, "unusable database entry; skipped");
    let mut counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    *counts
        .entry((db.to_string(), table_of(full_key).to_string()))
        .or_insert(0) += 1;
}

/// Skipped entries so far, as `(database, table, count)`, sorted.
pub fn counts() -> Vec<(String, String, u64)> {
    let counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    counts
        .iter()
        .map(|((db, table), n)| (db.clone(), table.clone(), *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_of_keys() {
        assert_eq!(table_of("PORT|Ethernet0"), "PORT");
        assert_eq!(table_of("_NEIGH_TABLE:Vlan1:10.0.0.1"), "_NEIGH_TABLE");
        assert_eq!(table_of("NEIGH_TABLE_KEY_SET"), "NEIGH_TABLE_KEY_SET");
    }

    #[test]
    fn reports_are_counted_per_db_and_table() {
        report("CONFIG_DB", "TEST_BAD_A|x", "not a hash (WRONGTYPE)");
        report("CONFIG_DB", "TEST_BAD_A|y", "not a hash (WRONGTYPE)");
        report("STATE_DB", "TEST_BAD_A|x", "garbage");
        let mine: Vec<_> = counts()
            .into_iter()
            .filter(|(_, t, _)| t == "TEST_BAD_A")
            .collect();
        assert_eq!(
            mine,
            vec![
                ("CONFIG_DB".into(), "TEST_BAD_A".into(), 2),
                ("STATE_DB".into(), "TEST_BAD_A".into(), 1)
            ]
        );
    }
}
