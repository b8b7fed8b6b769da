//! The CONFIG_DB `PORT` -> APPL_DB `PORT_TABLE` copy of a cold start, the
//! `PortConfigDone` / `PortInitDone` operations, and the opt-in
//! `PortConfigDone` count that follows the ports after start-up
//! (docs/behavior.md d.1; docs/differences.md P10).

use std::collections::{BTreeSet, HashSet};

use swss::FieldValues;

use super::{PORT_CONFIG_DONE, PORT_CONFIG_DONE_COUNT_FIELD, PORT_INIT_DONE};

/// The APPL_DB `PORT_TABLE` producer SETs for the CONFIG_DB port copy
/// (portsyncd.cpp handlePortConfigFromConfigDB, docs/behavior.md d.1 step 6).
///
/// `ports`: `(key, fields)` from `PORT|<key>`, in the order read. Cold: one
/// `(key, fields)` per entry with the fields verbatim (validation is
/// orchagent's job), then `(PortConfigDone, [("count", <distinct keys>)])`,
/// decimal, `0` for no ports. Warm: nothing.
pub fn port_config_ops(ports: &[(String, FieldValues)], warm: bool) -> Vec<(String, FieldValues)> {
    if warm {
        return Vec::new();
    }
    let distinct: HashSet<&str> = ports.iter().map(|(k, _)| k.as_str()).collect();
    let mut ops: Vec<(String, FieldValues)> = ports.to_vec();
    ops.push(port_config_done_op(distinct.len()));
    ops
}

/// The APPL_DB `PORT_TABLE` SET announcing PortConfigDone with `count`
/// ports: `("PortConfigDone", [("count", "<count>")])`, the count in
/// decimal, as portsyncd.cpp notifyPortConfigDone. Written by the cold-start
/// copy ([`port_config_ops`]) and, with `--port-config-count-follows-config`,
/// again whenever [`PortConfigCount`] says the number of CONFIG_DB ports
/// changed.
pub fn port_config_done_op(count: usize) -> (String, FieldValues) {
    (
        PORT_CONFIG_DONE.to_string(),
        vec![(PORT_CONFIG_DONE_COUNT_FIELD.to_string(), count.to_string())],
    )
}

// ===== PortConfigDone count after start-up (opt-in) =====

/// `--port-config-count-follows-config`: keeps APPL_DB
/// `PORT_TABLE:PortConfigDone` `count` equal to the number of CONFIG_DB
/// `PORT|<name>` keys after start-up, with no I/O.
///
/// The C++ portsyncd writes `count` once, at a cold start
/// (docs/behavior.md d.1 step 6). Dynamic port breakout later deletes and
/// adds CONFIG_DB `PORT` entries (portmgrd carries them into APPL_DB
/// `PORT_TABLE`), so the count no longer matches the port keys, and the next
/// warm start's orchagent `PortsOrch::bake()`, which requires `count ==
/// (number of PORT_TABLE:* keys) - 2` (docs/behavior.md e.2), rejects the
/// table ("Invalid port table: portCount, expecting 32, got 35";
/// sonic-swss issue 2989).
///
/// The count stays what a cold start would write now: the number of
/// distinct CONFIG_DB `PORT` keys (never the APPL_DB keys, so bake()'s check
/// still catches an APPL_DB port table that lost entries). The caller feeds
/// CONFIG_DB `PORT` key presence ([`PortConfigCount::on_config_port`],
/// [`PortConfigCount::reload`]), asks [`PortConfigCount::take_write`] for
/// the count to write (through the `PORT_TABLE` ProducerStateTable, as
/// [`port_config_done_op`]) and reports the outcome
/// ([`PortConfigCount::write_done`] / [`PortConfigCount::write_failed`]).
/// At most one write is in flight; changes meanwhile coalesce into the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfigCount {
    /// CONFIG_DB `PORT` keys (port names) known to exist.
    ports: BTreeSet<String>,
    /// The count APPL_DB holds as far as we know: the last acknowledged
    /// write (in the producer's state hash; orchagent's pop copies it into
    /// `PORT_TABLE:PortConfigDone`), or the start-up value.
    acked: usize,
    /// The count of the write in flight.
    in_flight: Option<usize>,
}

impl PortConfigCount {
    /// Starts following: `acked` is the `count` APPL_DB holds (the cold
    /// start's own PortConfigDone; on a warm start, which writes none, the
    /// count of the CONFIG_DB ports read at start-up, i.e. what the last
    /// cold start or follower wrote if the configuration did not change
    /// meanwhile, the same assumption the C++ makes); `ports` the CONFIG_DB
    /// `PORT` keys now (duplicates count once). A difference is written at
    /// once.
    pub fn new(acked: usize, ports: impl IntoIterator<Item = String>) -> Self {
        PortConfigCount {
            ports: ports.into_iter().collect(),
            acked,
            in_flight: None,
        }
    }

    /// CONFIG_DB `PORT|<name>` exists (`present`, any fields) or was
    /// deleted. Returns true when the number of ports changed.
    pub fn on_config_port(&mut self, name: &str, present: bool) -> bool {
        if present {
            self.ports.insert(name.to_string())
        } else {
            self.ports.remove(name)
        }
    }

    /// Replaces the known keys with a fresh CONFIG_DB `PORT` load (after a
    /// Redis reconnect).
    pub fn reload(&mut self, ports: impl IntoIterator<Item = String>) {
        self.ports = ports.into_iter().collect();
    }

    /// The number of CONFIG_DB ports, i.e. the count to hold in APPL_DB.
    pub fn count(&self) -> usize {
        self.ports.len()
    }

    /// The count APPL_DB holds as far as we know.
    pub fn acked(&self) -> usize {
        self.acked
    }

    /// True while a write is in flight.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// True when APPL_DB's count differs from the CONFIG_DB ports and no
    /// write is in flight (a write is wanted).
    pub fn wants_write(&self) -> bool {
        self.in_flight.is_none() && self.count() != self.acked
    }

    /// The count to write now, if any ([`PortConfigCount::wants_write`]);
    /// the write is then in flight until [`PortConfigCount::write_done`] or
    /// [`PortConfigCount::write_failed`].
    pub fn take_write(&mut self) -> Option<usize> {
        if !self.wants_write() {
            return None;
        }
        let count = self.count();
        self.in_flight = Some(count);
        Some(count)
    }

    /// The write in flight was acknowledged by Redis: APPL_DB holds its
    /// count (pending for orchagent's pop until then; a later change is
    /// written next). Ignored with no write in flight.
    pub fn write_done(&mut self) {
        if let Some(count) = self.in_flight.take() {
            self.acked = count;
        }
    }

    /// The write in flight failed: APPL_DB keeps what it had, and the count
    /// is wanted again (the caller decides when to retry).
    pub fn write_failed(&mut self) {
        self.in_flight = None;
    }
}

/// The APPL_DB `PORT_TABLE` SET announcing PortInitDone:
/// `("PortInitDone", [("lanes", "0")])`, as portsyncd.cpp main.
pub fn port_init_done_op() -> (String, FieldValues) {
    (
        PORT_INIT_DONE.to_string(),
        vec![("lanes".to_string(), "0".to_string())],
    )
}
