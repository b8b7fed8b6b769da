//! portsyncd's rules as a state machine with no I/O (docs/behavior.md d.1–d.4).
//!
//! The wiring feeds [`PortSync`] with:
//! * kernel link messages ([`PortSync::on_link`]: RTM_NEWLINK / RTM_DELLINK,
//!   dump replies and AF_BRIDGE-family messages alike),
//! * APPL_DB `PORT_TABLE:<name>` presence ([`PortSync::on_appl_port`]), first
//!   as an initial load and then from a keyspace subscription, which replaces
//!   the C++ `HGETALL` on every link message (docs/behavior.md f.15),
//! * the "old interfaces" found at a cold start ([`PortSync::mark_old_interface`]),
//!
//! and carries out the returned [`StateAction`]s on STATE_DB `PORT_TABLE|<name>`.
//! It asks [`PortSync::take_port_init_done`] after each batch and then writes
//! APPL_DB `PORT_TABLE:PortInitDone` ([`port_init_done_op`]).
//! The CONFIG_DB `PORT|*` -> APPL_DB `PORT_TABLE` copy is [`port_config_ops`];
//! with `--port-config-count-follows-config`, [`PortConfigCount`] keeps its
//! `PortConfigDone` `count` following the CONFIG_DB ports afterwards.

use std::collections::{BTreeSet, HashMap, HashSet};

use sonic_netlink::link::{IFF_RUNNING, IFF_UP};
use sonic_netlink::{LinkEvent, LinkMsgType};
use swss::FieldValues;

mod port_config;
pub use port_config::{port_config_done_op, port_config_ops, port_init_done_op, PortConfigCount};

/// APPL_DB table portsyncd produces into with a ProducerStateTable (keys
/// `PORT_TABLE:<port>`, separator `:`), as swss `APP_PORT_TABLE_NAME`.
pub const APP_PORT_TABLE_NAME: &str = "PORT_TABLE";

/// STATE_DB table portsyncd writes link state into (keys `PORT_TABLE|<port>`,
/// separator `|`), as swss `STATE_PORT_TABLE_NAME`.
pub const STATE_PORT_TABLE_NAME: &str = "PORT_TABLE";

/// CONFIG_DB table holding the port configuration (keys `PORT|<port>`), as
/// swss `CFG_PORT_TABLE_NAME`.
pub const CFG_PORT_TABLE_NAME: &str = "PORT";

/// CONFIG_DB table and key holding `switch_type` (`DEVICE_METADATA|localhost`).
pub const CFG_DEVICE_METADATA_TABLE_NAME: &str = "DEVICE_METADATA";

/// Key in [`CFG_DEVICE_METADATA_TABLE_NAME`] that holds `switch_type`.
pub const DEVICE_METADATA_KEY: &str = "localhost";

/// Field of `DEVICE_METADATA|localhost` read by [`SwitchType::parse`].
pub const SWITCH_TYPE_FIELD: &str = "switch_type";

/// APPL_DB `PORT_TABLE` key announcing that all CONFIG_DB ports were copied;
/// its field `count` is the number of ports (decimal). Read by orchagent
/// PortsOrch (docs/behavior.md e.2).
pub const PORT_CONFIG_DONE: &str = "PortConfigDone";

/// Field of [`PORT_CONFIG_DONE`] carrying the number of ports.
pub const PORT_CONFIG_DONE_COUNT_FIELD: &str = "count";

/// APPL_DB `PORT_TABLE` key announcing that every configured port's netdev
/// exists; written once per process as `lanes=0` (docs/behavior.md d.1 step 8).
pub const PORT_INIT_DONE: &str = "PortInitDone";

/// Interface-name prefixes portsyncd handles (case-sensitive, linksync.cpp
/// LinkSync::onMsg); everything else is ignored.
pub const HANDLED_PREFIXES: [&str; 2] = ["Ethernet", "PortChannel"];

/// `IFLA_INFO_KIND` of teamd LAG netdevs, left to teamsyncd.
pub const TEAM_KIND: &str = "team";

/// The four STATE_DB `PORT_TABLE|<name>` fields portsyncd owns, in the
/// order it writes them ([`LinkState::fields`]).
pub const STATE_FIELDS: [&str; 4] = ["state", "netdev_oper_status", "admin_status", "mtu"];

/// True for APPL_DB `PORT_TABLE` keys naming ports, false for the
/// [`PORT_CONFIG_DONE`] / [`PORT_INIT_DONE`] markers.
pub fn is_port_key(key: &str) -> bool {
    key != PORT_CONFIG_DONE && key != PORT_INIT_DONE
}

// ===== drop rules =====

/// Why [`PortSync::on_link`] drops a link message; the rules are checked in
/// this order (linksync.cpp LinkSync::onMsg, docs/behavior.md d.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The name starts with neither `Ethernet` nor `PortChannel`
    /// (case-sensitive, [`HANDLED_PREFIXES`]).
    NotAPort,
    /// `IFLA_INFO_KIND` is `team` ([`TEAM_KIND`]): teamsyncd's.
    Team,
    /// RTM_DELLINK with a master: a port leaving a bridge or LAG, not the
    /// netdev going away.
    MasterDel,
    /// The ifindex was marked old at a cold start
    /// ([`PortSync::mark_old_interface`]).
    OldInterface,
    /// RTM_NEWLINK of a port orchagent has not consumed yet (no APPL_DB
    /// `PORT_TABLE:<name>`); the state is remembered and written once it
    /// appears.
    NotInApplDb,
}

impl DropReason {
    /// The `reason` label of `kernel_events_total`: `not_a_port`, `team`,
    /// `master_del`, `old_interface`, `not_in_appl_db`.
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::NotAPort => "not_a_port",
            DropReason::Team => "team",
            DropReason::MasterDel => "master_del",
            DropReason::OldInterface => "old_interface",
            DropReason::NotInApplDb => "not_in_appl_db",
        }
    }
}

/// The netdev rules that need no state: `Ok` for a name portsyncd handles
/// (starting with `Ethernet` or `PortChannel`) of a kind other than `team`
/// (`kind`: `IFLA_INFO_KIND`, `None` when absent or unknown), else the
/// first rule that drops it ([`DropReason::NotAPort`],
/// [`DropReason::Team`]). Used by [`PortSync::on_link`] and the audit.
pub fn handled(name: &str, kind: Option<&str>) -> Result<(), DropReason> {
    if !HANDLED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        Err(DropReason::NotAPort)
    } else if kind == Some(TEAM_KIND) {
        Err(DropReason::Team)
    } else {
        Ok(())
    }
}

/// What [`PortSync::on_link`] made of one link message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The STATE_DB write to carry out.
    Write(StateAction),
    /// Passed the rules, but STATE_DB already has exactly this (the last
    /// write for the port).
    Unchanged,
    /// Dropped by a rule.
    Dropped(DropReason),
}

impl LinkOutcome {
    /// The write, if any.
    pub fn into_action(self) -> Option<StateAction> {
        match self {
            LinkOutcome::Write(a) => Some(a),
            LinkOutcome::Unchanged | LinkOutcome::Dropped(_) => None,
        }
    }
}

// ===== SwitchType =====

/// `DEVICE_METADATA|localhost` `switch_type` as far as portsyncd cares: only
/// `dpu` changes its behaviour (no old-interface handling, docs/behavior.md d.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SwitchType {
    /// `switch` (the default when the field is missing), and any unknown value.
    Switch,
    /// `dpu`: SmartSwitch DPU.
    Dpu,
    /// Another value SONiC knows (`voq`, `fabric`, `chassis-packet`, `npu`,
    /// `dummy-sup`); behaves like [`SwitchType::Switch`] here.
    Other(String),
}

/// Non-`dpu`, non-`switch` values accepted by orchagent's getCfgSwitchType
/// and the sonic-device_metadata YANG model.
const KNOWN_OTHER_SWITCH_TYPES: [&str; 5] = ["voq", "fabric", "chassis-packet", "npu", "dummy-sup"];

impl SwitchType {
    /// Parses the CONFIG_DB `DEVICE_METADATA|localhost` `switch_type` value
    /// (`None` = field or key missing).
    ///
    /// Missing -> [`SwitchType::Switch`] silently, as portsyncd.cpp main.
    /// Values are compared exactly (case-sensitive), as the C++ does. An
    /// unknown value (including the empty string) -> [`SwitchType::Switch`]
    /// plus a warning text for the log, like orchagent's getCfgSwitchType
    /// ("Invalid switch type"); the C++ portsyncd only compares with `dpu`,
    /// so the behaviour is the same.
    pub fn parse(value: Option<&str>) -> (SwitchType, Option<String>) {
        match value {
            None | Some("switch") => (SwitchType::Switch, None),
            Some("dpu") => (SwitchType::Dpu, None),
            Some(v) if KNOWN_OTHER_SWITCH_TYPES.contains(&v) => {
                (SwitchType::Other(v.to_string()), None)
            }
            Some(v) => (
                SwitchType::Switch,
                Some(format!(
                    "invalid switch_type {v:?} in CONFIG_DB DEVICE_METADATA|localhost, treating it as \"switch\""
                )),
            ),
        }
    }

    /// The CONFIG_DB spelling (`switch`, `dpu`, or the known other value).
    pub fn as_str(&self) -> &str {
        match self {
            SwitchType::Switch => "switch",
            SwitchType::Dpu => "dpu",
            SwitchType::Other(v) => v,
        }
    }

    /// True for `dpu`.
    pub fn is_dpu(&self) -> bool {
        matches!(self, SwitchType::Dpu)
    }
}

// ===== StateAction =====

/// One STATE_DB write decided by [`PortSync`]; the wiring carries it out on
/// table [`STATE_PORT_TABLE_NAME`] (key `PORT_TABLE|<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateAction {
    /// `HSET PORT_TABLE|<name>` with `fields` in order; other fields of the hash
    /// (written by portsorch etc.) must be left alone, so this is a plain HSET,
    /// never a replace (docs/behavior.md e.3). `fields` is exactly
    /// `[("state","ok"), ("netdev_oper_status", up|down), ("admin_status", up|down),
    /// ("mtu", <decimal bytes>)]`, as linksync.cpp LinkSync::onMsg.
    SetPortState {
        /// Interface name, e.g. `Ethernet0`.
        name: String,
        /// The four fields, in the C++ order.
        fields: FieldValues,
    },
    /// `DEL PORT_TABLE|<name>`: the whole key goes, including fields other
    /// daemons wrote (kept for compatibility, docs/behavior.md d.3 step 7 / f.16).
    DelPortState {
        /// Interface name, e.g. `Ethernet0`.
        name: String,
    },
}

// ===== LinkState =====

/// What portsyncd publishes about one netdev.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkState {
    /// `IFF_UP` set in `ifi_flags`.
    pub admin_up: bool,
    /// `IFF_RUNNING` set in `ifi_flags`.
    pub oper_up: bool,
    /// `IFLA_MTU` in bytes.
    pub mtu: u32,
}

impl LinkState {
    /// The STATE_DB fields for this state, in the C++ order
    /// (`state`, `netdev_oper_status`, `admin_status`, `mtu`).
    pub fn fields(&self) -> FieldValues {
        let updown = |b: bool| if b { "up" } else { "down" }.to_string();
        vec![
            ("state".to_string(), "ok".to_string()),
            ("netdev_oper_status".to_string(), updown(self.oper_up)),
            ("admin_status".to_string(), updown(self.admin_up)),
            ("mtu".to_string(), self.mtu.to_string()),
        ]
    }
}

// ===== PortSync =====

/// portsyncd's link -> STATE_DB rules and the PortInitDone bookkeeping
/// (linksync.cpp LinkSync, portsyncd.cpp g_portSet), with no I/O.
///
/// Differences from the C++, none visible on the wire except in timing:
/// * APPL_DB presence is pushed in through [`PortSync::on_appl_port`]
///   instead of an `HGETALL PORT_TABLE:<name>` per link message (f.15).
/// * A STATE_DB HSET that would repeat exactly the four fields last written
///   for that port is skipped (f.15). Anything that may have removed them
///   (DELLINK, the APPL_DB entry going away) makes the next one go out again.
/// * When orchagent consumes a port (its APPL_DB entry appears) after the
///   netdev was seen, the state is written at once and the port stops holding
///   back PortInitDone; the C++ waits for the next link message for it.
#[derive(Debug, Clone)]
pub struct PortSync {
    switch_type: SwitchType,
    warm: bool,
    /// Number of distinct configured ports (PortConfigDone `count`).
    config_count: usize,
    /// g_portSet: configured ports still holding back PortInitDone.
    pending: BTreeSet<String>,
    /// Names whose APPL_DB `PORT_TABLE:<name>` exists.
    appl_present: HashSet<String>,
    /// Old-interface map (cold start only); never cleared, as the C++.
    old_ifindexes: HashMap<u32, String>,
    /// Last state seen per netdev name (removed on DELLINK).
    links: HashMap<String, LinkState>,
    /// Last state staged for STATE_DB per name (handed to the writer,
    /// which may still be writing it).
    staged: HashMap<String, LinkState>,
    /// True until [`PortSync::finish_initial_load`] or the first link message.
    initial_load: bool,
    /// PortInitDone already handed out.
    init_done_taken: bool,
}

impl PortSync {
    /// Starts the state machine.
    ///
    /// `config_ports`: the CONFIG_DB `PORT|<name>` key names (duplicates count
    /// once); they form g_portSet, the ports that must be seen before
    /// PortInitDone. `warm`: WarmStart checkWarmStart("portsyncd", "swss")
    /// said warm; then the APPL_DB `admin_status` pre-check and old-interface
    /// handling are off (docs/behavior.md d.2).
    ///
    /// The state machine starts in its initial-load phase (see
    /// [`PortSync::on_appl_port`] and [`PortSync::finish_initial_load`]).
    pub fn new(
        config_ports: impl IntoIterator<Item = String>,
        switch_type: SwitchType,
        warm: bool,
    ) -> Self {
        let pending: BTreeSet<String> = config_ports.into_iter().collect();
        PortSync {
            switch_type,
            warm,
            config_count: pending.len(),
            pending,
            appl_present: HashSet::new(),
            old_ifindexes: HashMap::new(),
            links: HashMap::new(),
            staged: HashMap::new(),
            initial_load: true,
            init_done_taken: false,
        }
    }

    /// The switch type given to [`PortSync::new`].
    pub fn switch_type(&self) -> &SwitchType {
        &self.switch_type
    }

    /// True when started warm.
    pub fn is_warm(&self) -> bool {
        self.warm
    }

    /// Number of distinct configured ports, i.e. the PortConfigDone `count`
    /// (as `g_portSet.size()` right after handlePortConfigFromConfigDB).
    pub fn port_config_done_count(&self) -> usize {
        self.config_count
    }

    /// Whether existing `Ethernet*` netdevs must be recorded as "old" and
    /// brought down before link handling starts: cold start and not a DPU
    /// (LinkSync::LinkSync, docs/behavior.md d.2 steps 2–3).
    pub fn wants_old_interface_shutdown(&self) -> bool {
        !self.warm && !self.switch_type.is_dpu()
    }

    /// Whether an existing netdev name is an old-interface candidate: it
    /// starts with `Ethernet` (case-sensitive). `PortChannel*` is not.
    pub fn is_old_candidate(name: &str) -> bool {
        name.starts_with("Ethernet")
    }

    /// Records an existing netdev (from `if_nameindex()` or a link dump taken
    /// before link handling) as "old": all later link messages for `ifindex`
    /// are ignored, for the life of the process, as the C++ does (f.14).
    ///
    /// Returns true when it was recorded, i.e. [`PortSync::wants_old_interface_shutdown`]
    /// and [`PortSync::is_old_candidate`] hold; the wiring must then bring the
    /// link down (clear IFF_UP, the effect of `ip link set "<name>" down`).
    /// Returns false (and records nothing) otherwise.
    pub fn mark_old_interface(&mut self, ifindex: u32, name: &str) -> bool {
        if !self.wants_old_interface_shutdown() || !Self::is_old_candidate(name) {
            return false;
        }
        self.old_ifindexes.insert(ifindex, name.to_string());
        true
    }

    /// The old-interface map (ifindex -> name), for logging.
    pub fn old_interfaces(&self) -> &HashMap<u32, String> {
        &self.old_ifindexes
    }

    /// Ends the initial-load phase: from now on `has_admin_status` in
    /// [`PortSync::on_appl_port`] is ignored, and PortInitDone may be handed
    /// out. The first [`PortSync::on_link`] ends it too (in the C++ the
    /// pre-check runs in the LinkSync constructor, before any link message).
    pub fn finish_initial_load(&mut self) {
        self.initial_load = false;
    }

    /// APPL_DB `PORT_TABLE:<name>` appeared or changed (`present`) or was
    /// deleted (`!present`). `has_admin_status`: the hash carries the field
    /// `admin_status`.
    ///
    /// * During the initial load on a cold start, a configured port whose
    ///   entry already has `admin_status` was consumed by an earlier orchagent
    ///   run and stops holding back PortInitDone (LinkSync::LinkSync pre-check,
    ///   docs/behavior.md d.2 step 1). Later, or when warm, `has_admin_status` is
    ///   ignored, as the C++ checks it only there.
    /// * Present, and the netdev was already seen (a NEWLINK not followed by
    ///   a DELLINK): the port stops holding back PortInitDone and its state is
    ///   written now unless identical to the last write (an improvement: the
    ///   C++ writes only on the next link message for the netdev).
    /// * Not present: nothing more is written for it until it comes back (the
    ///   C++ `HGETALL` would find nothing); its STATE_DB entry is left as is,
    ///   and the state is written again when it comes back.
    pub fn on_appl_port(
        &mut self,
        name: &str,
        present: bool,
        has_admin_status: bool,
    ) -> Vec<StateAction> {
        if !present {
            self.appl_present.remove(name);
            self.staged.remove(name);
            return Vec::new();
        }
        self.appl_present.insert(name.to_string());
        if self.initial_load && !self.warm && has_admin_status {
            self.pending.remove(name);
        }
        let Some(state) = self.links.get(name).copied() else {
            return Vec::new();
        };
        self.pending.remove(name);
        self.write_if_changed(name, state).into_iter().collect()
    }

    /// Whether APPL_DB `PORT_TABLE:<name>` is currently known to exist.
    pub fn is_appl_present(&self, name: &str) -> bool {
        self.appl_present.contains(name)
    }

    /// Applies one link message (RTM_NEWLINK/RTM_DELLINK, dump replies and
    /// AF_BRIDGE family included), in the order of LinkSync::onMsg
    /// (docs/behavior.md d.3). Ends the initial load.
    ///
    /// Dropped ([`LinkOutcome::Dropped`]), in this order: names not starting
    /// with `Ethernet` or `PortChannel` (case-sensitive); kind `team`;
    /// RTM_DELLINK with a master (a port leaving a bridge or LAG, not the
    /// netdev going away); ifindexes in the old-interface map
    /// ([`PortSync::drop_reason`]).
    ///
    /// RTM_DELLINK -> [`StateAction::DelPortState`] (no APPL_DB check, as the
    /// C++); the netdev's state is forgotten.
    ///
    /// RTM_NEWLINK -> the state (admin from IFF_UP, oper from IFF_RUNNING,
    /// mtu from IFLA_MTU) is remembered. If APPL_DB has the port: it is
    /// removed from g_portSet and [`StateAction::SetPortState`] is returned,
    /// or [`LinkOutcome::Unchanged`] when the fields equal the last ones
    /// written (so AF_BRIDGE-family NEWLINKs, which repeat the port's flags
    /// and mtu, usually cost nothing). Without the APPL_DB entry:
    /// [`DropReason::NotInApplDb`]. A NEWLINK without IFLA_MTU keeps the
    /// last mtu seen for the netdev, or uses 0 (what libnl reports for a
    /// missing IFLA_MTU) if there is none.
    pub fn on_link(&mut self, ev: &LinkEvent) -> LinkOutcome {
        self.initial_load = false;
        if let Some(reason) = self.drop_reason(ev) {
            return LinkOutcome::Dropped(reason);
        }
        let name = ev.name.as_str();
        match ev.msg_type {
            LinkMsgType::Del => {
                self.links.remove(name);
                self.staged.remove(name);
                LinkOutcome::Write(StateAction::DelPortState {
                    name: name.to_string(),
                })
            }
            LinkMsgType::New => {
                let mtu = ev
                    .mtu
                    .or_else(|| self.links.get(name).map(|s| s.mtu))
                    .unwrap_or(0);
                let state = LinkState {
                    admin_up: ev.flags & IFF_UP != 0,
                    oper_up: ev.flags & IFF_RUNNING != 0,
                    mtu,
                };
                self.links.insert(name.to_string(), state);
                if !self.appl_present.contains(name) {
                    return LinkOutcome::Dropped(DropReason::NotInApplDb);
                }
                self.pending.remove(name);
                match self.write_if_changed(name, state) {
                    Some(action) => LinkOutcome::Write(action),
                    None => LinkOutcome::Unchanged,
                }
            }
        }
    }

    /// The rule that drops `ev` before its state is looked at, in the order
    /// of [`DropReason`] ([`handled`], then master DELLINK, then old
    /// interface); `None` when it passes them. [`DropReason::NotInApplDb`]
    /// is decided by [`PortSync::on_link`] after the state is remembered.
    pub fn drop_reason(&self, ev: &LinkEvent) -> Option<DropReason> {
        if let Err(reason) = handled(&ev.name, ev.kind.as_deref()) {
            Some(reason)
        } else if ev.msg_type == LinkMsgType::Del && ev.master.is_some() {
            Some(DropReason::MasterDel)
        } else if self.old_ifindexes.contains_key(&ev.ifindex) {
            Some(DropReason::OldInterface)
        } else {
            None
        }
    }

    /// The last state seen for a netdev name (None before any NEWLINK or
    /// after its DELLINK).
    pub fn link_state(&self, name: &str) -> Option<LinkState> {
        self.links.get(name).copied()
    }

    /// Forgets what was written to STATE_DB and returns a
    /// [`StateAction::SetPortState`] for every port present in APPL_DB whose
    /// netdev is known, sorted by name. For after STATE_DB was lost or
    /// flushed (e.g. a Redis restart): STATE_DB then equals the kernel again.
    pub fn rewrite_all(&mut self) -> Vec<StateAction> {
        self.staged.clear();
        let mut names: Vec<String> = self
            .links
            .keys()
            .filter(|n| self.appl_present.contains(*n))
            .cloned()
            .collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|n| {
                let state = *self.links.get(&n)?;
                self.write_if_changed(&n, state)
            })
            .collect()
    }

    /// STATE_DB `PORT_TABLE|<name>` was deleted by someone else (seen on a
    /// STATE_DB keyspace subscription, if the wiring has one). Forgets the
    /// last write for it and returns the [`StateAction::SetPortState`] that
    /// restores it when the port is in APPL_DB and its netdev is known, so
    /// the skipped duplicates of f.15 never leave STATE_DB without the entry.
    pub fn on_state_port_deleted(&mut self, name: &str) -> Vec<StateAction> {
        self.staged.remove(name);
        match self.links.get(name).copied() {
            Some(state) if self.appl_present.contains(name) => {
                self.write_if_changed(name, state).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// A fresh APPL_DB `PORT_TABLE` initial load (after a Redis
    /// reconnect): `present` holds every port key with whether its hash
    /// has `admin_status` (ignored after the initial load). Ports that
    /// vanished meanwhile are removed as by `on_appl_port(name, false, _)`,
    /// the present ones applied as by `on_appl_port(name, true, _)`; the
    /// returned actions are theirs, in that order.
    pub fn reload_appl(
        &mut self,
        present: impl IntoIterator<Item = (String, bool)>,
    ) -> Vec<StateAction> {
        let present: HashMap<String, bool> = present.into_iter().collect();
        let mut vanished: Vec<String> = self
            .appl_present
            .iter()
            .filter(|n| !present.contains_key(*n))
            .cloned()
            .collect();
        vanished.sort();
        let mut actions = Vec::new();
        for name in vanished {
            actions.extend(self.on_appl_port(&name, false, false));
        }
        let mut present: Vec<(String, bool)> = present.into_iter().collect();
        present.sort();
        for (name, has_admin) in present {
            actions.extend(self.on_appl_port(&name, true, has_admin));
        }
        actions
    }

    /// The ports whose STATE_DB entry portsyncd maintains (in APPL_DB and
    /// their netdev known) with the fields it holds, sorted by name.
    pub fn expected_entries(&self) -> Vec<(String, FieldValues)> {
        let mut out: Vec<(String, FieldValues)> = self
            .links
            .iter()
            .filter(|(n, _)| self.appl_present.contains(*n))
            .map(|(n, s)| (n.clone(), s.fields()))
            .collect();
        out.sort();
        out
    }

    /// The fields STATE_DB `PORT_TABLE|<name>` should hold: `Some` when the
    /// port is in APPL_DB and its netdev is known.
    pub fn expected_fields(&self, name: &str) -> Option<FieldValues> {
        let state = self.links.get(name)?;
        self.appl_present.contains(name).then(|| state.fields())
    }

    /// APPL_DB ports whose netdev is not known (none seen, or deleted),
    /// sorted: their STATE_DB entry, if any, carries no current state.
    pub fn ports_without_link(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .appl_present
            .iter()
            .filter(|n| !self.links.contains_key(*n))
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// True exactly once: the first call at which the initial load is over
    /// and g_portSet is empty (all configured ports seen, or pre-consumed).
    /// The wiring calls it after each batch of messages and, on true, writes
    /// [`port_init_done_op`] to APPL_DB (portsyncd.cpp main loop; warm starts
    /// too).
    pub fn take_port_init_done(&mut self) -> bool {
        if self.init_done_taken || self.initial_load || !self.pending.is_empty() {
            return false;
        }
        self.init_done_taken = true;
        true
    }

    /// Whether [`PortSync::take_port_init_done`] already returned true
    /// (PortInitDone was handed out; the core writes it).
    #[cfg(test)]
    pub fn port_init_done_taken(&self) -> bool {
        self.init_done_taken
    }

    /// The configured ports still holding back PortInitDone, sorted by name
    /// (for the "still waiting for ..." warning).
    pub fn pending_ports(&self) -> Vec<String> {
        self.pending.iter().cloned().collect()
    }

    /// How many configured ports still hold back PortInitDone.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    fn write_if_changed(&mut self, name: &str, state: LinkState) -> Option<StateAction> {
        if self.staged.get(name) == Some(&state) {
            return None;
        }
        self.staged.insert(name.to_string(), state);
        Some(StateAction::SetPortState {
            name: name.to_string(),
            fields: state.fields(),
        })
    }
}

/// Link events for the unit tests of the rules and of the core.
#[cfg(test)]
pub(crate) mod fixtures {
    use sonic_netlink::{LinkEvent, LinkMsgType};

    /// RTM_NEWLINK of `name` with these flags and MTU (no master, no kind).
    pub(crate) fn new_link(name: &str, ifindex: u32, flags: u32, mtu: u32) -> LinkEvent {
        LinkEvent {
            msg_type: LinkMsgType::New,
            family: 0,
            ifindex,
            name: name.to_string(),
            flags,
            mtu: Some(mtu),
            master: None,
            kind: None,
        }
    }

    /// RTM_DELLINK of `name` (no master: the netdev itself is gone).
    pub(crate) fn del_link(name: &str, ifindex: u32) -> LinkEvent {
        LinkEvent {
            msg_type: LinkMsgType::Del,
            ..new_link(name, ifindex, 0, 9100)
        }
    }
}

#[cfg(test)]
mod tests;
