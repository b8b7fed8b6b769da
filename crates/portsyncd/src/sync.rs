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

// ===== CONFIG_DB PORT copy =====

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
mod tests {
    use super::fixtures::{del_link, new_link};
    use super::*;
    use proptest::prelude::*;

    const AF_BRIDGE: u8 = 7;

    impl PortSync {
        /// [`PortSync::on_link`] as the list of actions (at most one).
        fn link_actions(&mut self, ev: &LinkEvent) -> Vec<StateAction> {
            self.on_link(ev).into_action().into_iter().collect()
        }
    }

    fn fv(pairs: &[(&str, &str)]) -> FieldValues {
        pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    fn set(name: &str, oper: &str, admin: &str, mtu: &str) -> StateAction {
        StateAction::SetPortState {
            name: name.to_string(),
            fields: fv(&[
                ("state", "ok"),
                ("netdev_oper_status", oper),
                ("admin_status", admin),
                ("mtu", mtu),
            ]),
        }
    }

    fn del(name: &str) -> StateAction {
        StateAction::DelPortState {
            name: name.to_string(),
        }
    }

    fn ports(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Cold switch with the given configured ports, all already in APPL_DB
    /// (without admin_status), initial load finished.
    fn running(names: &[&str]) -> PortSync {
        let mut ps = PortSync::new(ports(names), SwitchType::Switch, false);
        for n in names {
            assert!(ps.on_appl_port(n, true, false).is_empty());
        }
        ps.finish_initial_load();
        ps
    }

    const UP_RUNNING: u32 = IFF_UP | IFF_RUNNING;

    #[test]
    fn newlink_for_present_port_writes_exact_fields_in_order() {
        let mut ps = running(&["Ethernet0"]);
        let acts = ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
        assert_eq!(acts, vec![set("Ethernet0", "up", "up", "9100")]);
        let StateAction::SetPortState { fields, .. } = &acts[0] else {
            panic!("expected a set");
        };
        let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            ["state", "netdev_oper_status", "admin_status", "mtu"]
        );
    }

    #[test]
    fn admin_oper_and_mtu_changes_write_and_repeats_do_not() {
        let mut ps = running(&["Ethernet0"]);
        let e = |flags, mtu| new_link("Ethernet0", 10, flags, mtu);
        assert_eq!(
            ps.link_actions(&e(UP_RUNNING, 9100)),
            vec![set("Ethernet0", "up", "up", "9100")]
        );
        assert!(
            ps.link_actions(&e(UP_RUNNING, 9100)).is_empty(),
            "identical repeat"
        );
        // carrier lost: IFF_RUNNING off
        assert_eq!(
            ps.link_actions(&e(IFF_UP, 9100)),
            vec![set("Ethernet0", "down", "up", "9100")]
        );
        // admin down
        assert_eq!(
            ps.link_actions(&e(0, 9100)),
            vec![set("Ethernet0", "down", "down", "9100")]
        );
        assert!(ps.link_actions(&e(0, 9100)).is_empty());
        // admin up again, carrier back
        assert_eq!(
            ps.link_actions(&e(UP_RUNNING, 9100)),
            vec![set("Ethernet0", "up", "up", "9100")]
        );
        // mtu change
        assert_eq!(
            ps.link_actions(&e(UP_RUNNING, 1500)),
            vec![set("Ethernet0", "up", "up", "1500")]
        );
        // flags other than UP/RUNNING do not matter
        assert!(ps.link_actions(&e(UP_RUNNING | 0x1000, 1500)).is_empty());
    }

    #[test]
    fn missing_mtu_keeps_last_known_mtu() {
        let mut ps = running(&["Ethernet0"]);
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
        let mut ev = new_link("Ethernet0", 10, IFF_UP, 0);
        ev.mtu = None;
        assert_eq!(
            ps.link_actions(&ev),
            vec![set("Ethernet0", "down", "up", "9100")]
        );
        ps.link_actions(&del_link("Ethernet0", 10));
        assert_eq!(
            ps.link_actions(&ev),
            vec![set("Ethernet0", "down", "up", "0")]
        );
    }

    #[test]
    fn port_not_yet_in_appl_db_is_written_when_consumed() {
        let mut ps = PortSync::new(ports(&["Ethernet0"]), SwitchType::Switch, false);
        ps.finish_initial_load();
        assert!(ps
            .link_actions(&new_link("Ethernet0", 10, IFF_UP, 9100))
            .is_empty());
        assert!(!ps.take_port_init_done());
        assert_eq!(ps.pending_ports(), ports(&["Ethernet0"]));
        // link changes while not consumed: only the latest state counts
        assert!(ps
            .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
            .is_empty());
        assert_eq!(
            ps.on_appl_port("Ethernet0", true, true),
            vec![set("Ethernet0", "up", "up", "9100")]
        );
        assert!(ps.pending_ports().is_empty());
        assert!(ps.take_port_init_done());
        // another APPL_DB change for the same port: nothing new to write
        assert!(ps.on_appl_port("Ethernet0", true, true).is_empty());
    }

    #[test]
    fn appl_port_before_any_link_writes_nothing_and_keeps_pending() {
        let mut ps = PortSync::new(ports(&["Ethernet0"]), SwitchType::Switch, false);
        ps.finish_initial_load();
        // after the initial load, admin_status does not release the port
        assert!(ps.on_appl_port("Ethernet0", true, true).is_empty());
        assert_eq!(ps.pending_ports(), ports(&["Ethernet0"]));
        assert!(!ps.take_port_init_done());
        assert_eq!(
            ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100)),
            vec![set("Ethernet0", "up", "up", "9100")]
        );
        assert!(ps.take_port_init_done());
    }

    #[test]
    fn appl_entry_removed_stops_writes_and_return_rewrites() {
        let mut ps = running(&["Ethernet0"]);
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
        assert!(ps.on_appl_port("Ethernet0", false, false).is_empty());
        assert!(!ps.is_appl_present("Ethernet0"));
        assert!(ps
            .link_actions(&new_link("Ethernet0", 10, IFF_UP, 9100))
            .is_empty());
        assert!(ps
            .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
            .is_empty());
        // back: written again even though it equals the last write
        assert_eq!(
            ps.on_appl_port("Ethernet0", true, false),
            vec![set("Ethernet0", "up", "up", "9100")]
        );
    }

    #[test]
    fn dellink_deletes_and_next_newlink_writes_again() {
        let mut ps = running(&["Ethernet0"]);
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
        assert_eq!(
            ps.link_actions(&del_link("Ethernet0", 10)),
            vec![del("Ethernet0")]
        );
        assert_eq!(ps.link_state("Ethernet0"), None);
        // a consumption event now has no netdev to report
        assert!(ps.on_appl_port("Ethernet0", true, false).is_empty());
        // netdev re-created (new ifindex), same state as before: written again
        assert_eq!(
            ps.link_actions(&new_link("Ethernet0", 11, UP_RUNNING, 9100)),
            vec![set("Ethernet0", "up", "up", "9100")]
        );
    }

    #[test]
    fn dellink_deletes_even_without_appl_entry() {
        let mut ps = running(&[]);
        assert_eq!(
            ps.link_actions(&del_link("PortChannel5", 30)),
            vec![del("PortChannel5")]
        );
    }

    #[test]
    fn team_kind_is_ignored() {
        let mut ps = running(&["PortChannel1"]);
        let mut ev = new_link("PortChannel1", 20, UP_RUNNING, 9100);
        ev.kind = Some("team".to_string());
        assert!(ps.link_actions(&ev).is_empty());
        ev.msg_type = LinkMsgType::Del;
        assert!(ps.link_actions(&ev).is_empty());
        assert_eq!(ps.pending_ports(), ports(&["PortChannel1"]));
    }

    #[test]
    fn dellink_with_master_is_ignored() {
        let mut ps = running(&["Ethernet0"]);
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
        // Ethernet0 leaves bridge/LAG PortChannel1 (ifindex 20): AF_BRIDGE del
        let mut ev = del_link("Ethernet0", 10);
        ev.family = AF_BRIDGE;
        ev.master = Some(20);
        assert!(ps.link_actions(&ev).is_empty());
        // same as AF_UNSPEC
        ev.family = 0;
        assert!(ps.link_actions(&ev).is_empty());
        assert!(ps.link_state("Ethernet0").is_some());
        // the entry was not deleted, so a repeat of the state is still a no-op
        assert!(ps
            .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
            .is_empty());
    }

    #[test]
    fn af_bridge_newlink_goes_through_the_same_path_without_extra_writes() {
        let mut ps = running(&["Ethernet0"]);
        assert_eq!(
            ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
                .len(),
            1
        );
        let mut ev = new_link("Ethernet0", 10, UP_RUNNING, 9100);
        ev.family = AF_BRIDGE;
        ev.master = Some(20);
        assert!(ps.link_actions(&ev).is_empty());
        ev.flags = IFF_UP;
        assert_eq!(
            ps.link_actions(&ev),
            vec![set("Ethernet0", "down", "up", "9100")]
        );
    }

    #[test]
    fn portchannel_bridge_without_appl_entry_writes_nothing() {
        let mut ps = running(&["Ethernet0"]);
        let mut ev = new_link("PortChannel1", 20, UP_RUNNING, 9100);
        ev.kind = Some("bridge".to_string());
        assert!(ps.link_actions(&ev).is_empty());
        ev.family = AF_BRIDGE;
        assert!(ps.link_actions(&ev).is_empty());
    }

    #[test]
    fn other_names_are_ignored() {
        let mut ps = running(&[]);
        for name in [
            "eth0",
            "ethernet0",
            "Bridge",
            "lo",
            "portchannel1",
            "Vlan1000",
            "xEthernet0",
        ] {
            assert!(ps.on_appl_port(name, true, false).is_empty());
            assert!(
                ps.link_actions(&new_link(name, 5, UP_RUNNING, 1500))
                    .is_empty(),
                "{name}"
            );
            assert!(ps.link_actions(&del_link(name, 5)).is_empty(), "{name}");
        }
    }

    #[test]
    fn drop_reasons_follow_the_rule_order() {
        let mut ps = running(&["Ethernet0"]);
        assert!(ps.mark_old_interface(99, "Ethernet8"));
        let dropped = |r| LinkOutcome::Dropped(r);
        assert_eq!(
            ps.on_link(&new_link("eth0", 5, UP_RUNNING, 1500)),
            dropped(DropReason::NotAPort)
        );
        // the name rule comes before the kind rule
        let mut ev = new_link("eth1", 6, UP_RUNNING, 1500);
        ev.kind = Some("team".to_string());
        assert_eq!(ps.on_link(&ev), dropped(DropReason::NotAPort));
        ev.name = "PortChannel1".to_string();
        assert_eq!(ps.on_link(&ev), dropped(DropReason::Team));
        let mut ev = del_link("Ethernet0", 10);
        ev.master = Some(20);
        assert_eq!(ps.on_link(&ev), dropped(DropReason::MasterDel));
        // a master DELLINK of an old ifindex: the master rule comes first
        ev.ifindex = 99;
        assert_eq!(ps.on_link(&ev), dropped(DropReason::MasterDel));
        assert_eq!(
            ps.on_link(&new_link("Ethernet8", 99, UP_RUNNING, 1500)),
            dropped(DropReason::OldInterface)
        );
        assert_eq!(
            ps.on_link(&new_link("Ethernet4", 11, UP_RUNNING, 1500)),
            dropped(DropReason::NotInApplDb)
        );
        assert_eq!(
            ps.on_link(&new_link("Ethernet0", 10, UP_RUNNING, 1500)),
            LinkOutcome::Write(set("Ethernet0", "up", "up", "1500"))
        );
        assert_eq!(
            ps.on_link(&new_link("Ethernet0", 10, UP_RUNNING, 1500)),
            LinkOutcome::Unchanged
        );
        let labels: Vec<&str> = [
            DropReason::NotAPort,
            DropReason::Team,
            DropReason::MasterDel,
            DropReason::OldInterface,
            DropReason::NotInApplDb,
        ]
        .iter()
        .map(|r| r.label())
        .collect();
        assert_eq!(
            labels,
            [
                "not_a_port",
                "team",
                "master_del",
                "old_interface",
                "not_in_appl_db"
            ]
        );
        assert_eq!(handled("PortChannel1", Some("bond")), Ok(()));
        assert_eq!(handled("Ethernet0", None), Ok(()));
        assert_eq!(handled("ethernet0", None), Err(DropReason::NotAPort));
    }

    #[test]
    fn reload_appl_removes_vanished_ports_and_applies_present_ones() {
        let mut ps = running(&["Ethernet0", "Ethernet4", "Ethernet8"]);
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
        ps.link_actions(&new_link("Ethernet4", 11, UP_RUNNING, 9100));
        ps.link_actions(&new_link("Ethernet12", 13, UP_RUNNING, 9100));
        // Ethernet4 vanished from APPL_DB, Ethernet12 appeared (its netdev
        // is known, so it is written), Ethernet0 unchanged.
        let acts = ps.reload_appl([
            ("Ethernet0".to_string(), true),
            ("Ethernet8".to_string(), false),
            ("Ethernet12".to_string(), false),
        ]);
        assert_eq!(acts, vec![set("Ethernet12", "up", "up", "9100")]);
        assert!(!ps.is_appl_present("Ethernet4"));
        assert!(ps.is_appl_present("Ethernet8"));
        assert_eq!(
            ps.expected_entries()
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["Ethernet0", "Ethernet12"]
        );
        assert_eq!(ps.ports_without_link(), ports(&["Ethernet8"]));
        assert_eq!(ps.expected_fields("Ethernet4"), None);
        assert_eq!(
            ps.expected_fields("Ethernet0"),
            Some(
                LinkState {
                    admin_up: true,
                    oper_up: true,
                    mtu: 9100
                }
                .fields()
            )
        );
        // Ethernet4 is back: its state is written again.
        assert_eq!(
            ps.reload_appl([
                ("Ethernet0".to_string(), true),
                ("Ethernet4".to_string(), false),
            ]),
            vec![set("Ethernet4", "up", "up", "9100")]
        );
    }

    #[test]
    fn port_keys_exclude_the_markers() {
        assert!(!is_port_key("PortConfigDone"));
        assert!(!is_port_key("PortInitDone"));
        assert!(is_port_key("Ethernet0"));
        let names: Vec<String> = LinkState {
            admin_up: false,
            oper_up: false,
            mtu: 1,
        }
        .fields()
        .into_iter()
        .map(|(f, _)| f)
        .collect();
        assert_eq!(names, STATE_FIELDS);
    }

    #[test]
    fn old_interfaces_are_ignored_forever_on_cold_switch() {
        let mut ps = PortSync::new(ports(&["Ethernet0"]), SwitchType::Switch, false);
        assert!(ps.wants_old_interface_shutdown());
        assert!(ps.mark_old_interface(10, "Ethernet0"));
        assert!(!ps.mark_old_interface(20, "PortChannel1"));
        assert!(!ps.mark_old_interface(1, "lo"));
        assert_eq!(ps.old_interfaces().len(), 1);
        ps.on_appl_port("Ethernet0", true, false);
        ps.finish_initial_load();
        assert!(ps
            .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
            .is_empty());
        assert!(ps.link_actions(&del_link("Ethernet0", 10)).is_empty());
        assert!(
            !ps.take_port_init_done(),
            "old ifindex never releases the port"
        );
        // re-created under a new ifindex: handled
        assert_eq!(
            ps.link_actions(&new_link("Ethernet0", 11, UP_RUNNING, 9100)),
            vec![set("Ethernet0", "up", "up", "9100")]
        );
        assert!(ps.take_port_init_done());
    }

    #[test]
    fn cold_dpu_and_warm_have_no_old_interfaces() {
        for (st, warm) in [
            (SwitchType::Dpu, false),
            (SwitchType::Switch, true),
            (SwitchType::Dpu, true),
        ] {
            let mut ps = PortSync::new(ports(&["Ethernet0"]), st, warm);
            assert!(!ps.wants_old_interface_shutdown());
            assert!(!ps.mark_old_interface(10, "Ethernet0"));
            ps.on_appl_port("Ethernet0", true, false);
            assert_eq!(
                ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
                    .len(),
                1
            );
            assert!(ps.take_port_init_done());
        }
        let (other, _) = SwitchType::parse(Some("voq"));
        assert!(PortSync::new(ports(&[]), other, false).wants_old_interface_shutdown());
    }

    #[test]
    fn port_init_done_exactly_once() {
        let mut ps = running(&["Ethernet0", "Ethernet4"]);
        assert!(!ps.take_port_init_done());
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
        assert!(!ps.take_port_init_done());
        assert_eq!(ps.pending_ports(), ports(&["Ethernet4"]));
        ps.link_actions(&new_link("Ethernet4", 11, UP_RUNNING, 9100));
        assert!(ps.take_port_init_done());
        assert!(ps.port_init_done_taken());
        assert!(!ps.take_port_init_done());
        ps.link_actions(&del_link("Ethernet4", 11));
        ps.link_actions(&new_link("Ethernet4", 12, UP_RUNNING, 9100));
        assert!(!ps.take_port_init_done());
    }

    #[test]
    fn port_init_done_with_zero_ports_after_first_link_message() {
        let mut ps = PortSync::new(Vec::new(), SwitchType::Switch, false);
        assert_eq!(ps.port_config_done_count(), 0);
        assert!(!ps.take_port_init_done(), "not during the initial load");
        // the dump reply for lo ends the initial load
        assert!(ps
            .link_actions(&new_link("lo", 1, UP_RUNNING, 65536))
            .is_empty());
        assert!(ps.take_port_init_done());
        assert!(!ps.take_port_init_done());
    }

    #[test]
    fn pre_consumed_port_with_admin_status_releases_on_cold_start() {
        let mut ps = PortSync::new(
            ports(&["Ethernet0", "Ethernet4", "Ethernet8"]),
            SwitchType::Switch,
            false,
        );
        ps.on_appl_port("Ethernet0", true, true);
        ps.on_appl_port("Ethernet4", true, false); // consumed without admin_status
        ps.finish_initial_load();
        assert_eq!(ps.pending_ports(), ports(&["Ethernet4", "Ethernet8"]));
        ps.link_actions(&new_link("Ethernet4", 11, UP_RUNNING, 9100));
        // Ethernet8 gets admin_status now: too late for the pre-check
        ps.on_appl_port("Ethernet8", true, true);
        assert_eq!(ps.pending_ports(), ports(&["Ethernet8"]));
        assert!(!ps.take_port_init_done());
    }

    #[test]
    fn pre_check_is_off_on_warm_start() {
        let mut ps = PortSync::new(ports(&["Ethernet0"]), SwitchType::Switch, true);
        ps.on_appl_port("Ethernet0", true, true);
        ps.finish_initial_load();
        assert_eq!(ps.pending_ports(), ports(&["Ethernet0"]));
        assert!(!ps.take_port_init_done());
        assert_eq!(
            ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100)),
            vec![set("Ethernet0", "up", "up", "9100")]
        );
        assert!(ps.take_port_init_done());
        assert!(!ps.take_port_init_done());
    }

    #[test]
    fn warm_start_has_no_config_ops() {
        let cfg = vec![("Ethernet0".to_string(), fv(&[("lanes", "0,1")]))];
        assert!(port_config_ops(&cfg, true).is_empty());
        assert!(port_config_ops(&[], true).is_empty());
    }

    #[test]
    fn port_config_ops_copy_verbatim_and_count_distinct() {
        let cfg = vec![
            (
                "Ethernet0".to_string(),
                fv(&[("lanes", "0,1,2,3"), ("speed", "100000"), ("alias", "etp1")]),
            ),
            (
                "Ethernet4".to_string(),
                fv(&[
                    ("speed", "not-a-number"),
                    ("", "\u{0}garbage"),
                    ("lanes", ""),
                ]),
            ),
            ("Ethernet0".to_string(), fv(&[("mtu", "9100")])),
        ];
        let ops = port_config_ops(&cfg, false);
        assert_eq!(&ops[..3], &cfg[..]);
        assert_eq!(
            ops[3],
            ("PortConfigDone".to_string(), fv(&[("count", "2")]))
        );
        assert_eq!(ops.len(), 4);
        assert_eq!(
            port_config_ops(&[], false),
            vec![("PortConfigDone".to_string(), fv(&[("count", "0")]))]
        );
        let ps = PortSync::new(
            cfg.iter().map(|(k, _)| k.clone()),
            SwitchType::Switch,
            false,
        );
        assert_eq!(ps.port_config_done_count(), 2);
        assert_eq!(
            port_init_done_op(),
            ("PortInitDone".to_string(), fv(&[("lanes", "0")]))
        );
    }

    #[test]
    fn port_config_count_follows_the_config_ports() {
        // Cold start wrote count=3 for these three; nothing to write.
        let mut c = PortConfigCount::new(3, ports(&["Ethernet0", "Ethernet4", "Ethernet8"]));
        assert_eq!((c.count(), c.acked()), (3, 3));
        assert!(!c.wants_write());
        assert_eq!(c.take_write(), None);
        // A field change of an existing port is no change of the count.
        assert!(!c.on_config_port("Ethernet0", true));
        assert_eq!(c.take_write(), None);

        // Breakout of Ethernet0 into four: DEL, then four SETs (Ethernet0
        // again among them). Each change counts; one write in flight, the
        // rest coalesce into the next.
        assert!(c.on_config_port("Ethernet0", false));
        assert_eq!(c.take_write(), Some(2));
        assert!(c.in_flight());
        for name in ["Ethernet0", "Ethernet1", "Ethernet2", "Ethernet3"] {
            assert!(c.on_config_port(name, true));
            assert_eq!(c.take_write(), None, "one write at a time");
        }
        assert!(!c.wants_write());
        c.write_done();
        assert_eq!(c.acked(), 2);
        assert_eq!(c.take_write(), Some(6));
        c.write_done();
        assert_eq!((c.count(), c.acked()), (6, 6));
        assert_eq!(c.take_write(), None);
        c.write_done(); // nothing in flight: no effect
        assert_eq!(c.acked(), 6);

        // Back to 1x: three deletions, a failed write, wanted again.
        for name in ["Ethernet1", "Ethernet2", "Ethernet3"] {
            assert!(c.on_config_port(name, false));
        }
        assert!(!c.on_config_port("Ethernet1", false), "already gone");
        assert_eq!(c.take_write(), Some(3));
        c.write_failed();
        assert_eq!(c.acked(), 6);
        assert!(c.wants_write());
        assert_eq!(c.take_write(), Some(3));
        c.write_done();
        assert_eq!(c.acked(), 3);

        // A change undone before the write goes out writes nothing.
        assert!(c.on_config_port("Ethernet12", true));
        assert!(c.on_config_port("Ethernet12", false));
        assert_eq!(c.take_write(), None);

        // Reload (after a reconnect) replaces the keys.
        c.reload(ports(&["Ethernet0", "Ethernet4"]));
        assert_eq!(c.take_write(), Some(2));
        assert_eq!(
            port_config_done_op(2),
            ("PortConfigDone".to_string(), fv(&[("count", "2")]))
        );
    }

    #[test]
    fn port_config_count_start_up_difference_is_written_at_once() {
        // The CONFIG_DB load at subscription time already differs from the
        // count the start-up copy wrote (a port added in between); the
        // duplicate key counts once.
        let mut c = PortConfigCount::new(
            2,
            ports(&["Ethernet0", "Ethernet4", "Ethernet8", "Ethernet0"]),
        );
        assert_eq!(c.count(), 3);
        assert!(c.wants_write());
        assert_eq!(c.take_write(), Some(3));
        // An empty configuration is a count of 0, as the C++'s cold start.
        let mut c = PortConfigCount::new(1, ports(&[]));
        assert_eq!(c.take_write(), Some(0));
    }

    #[test]
    fn pending_ports_sorted() {
        let ps = PortSync::new(
            ports(&["Ethernet8", "Ethernet0", "PortChannel2", "Ethernet4"]),
            SwitchType::Switch,
            false,
        );
        assert_eq!(
            ps.pending_ports(),
            ports(&["Ethernet0", "Ethernet4", "Ethernet8", "PortChannel2"])
        );
    }

    #[test]
    fn switch_type_parsing() {
        assert_eq!(SwitchType::parse(None), (SwitchType::Switch, None));
        assert_eq!(
            SwitchType::parse(Some("switch")),
            (SwitchType::Switch, None)
        );
        assert_eq!(SwitchType::parse(Some("dpu")), (SwitchType::Dpu, None));
        for v in ["voq", "fabric", "chassis-packet", "npu", "dummy-sup"] {
            let (st, w) = SwitchType::parse(Some(v));
            assert_eq!(st, SwitchType::Other(v.to_string()));
            assert_eq!(st.as_str(), v);
            assert!(!st.is_dpu());
            assert_eq!(w, None);
        }
        for v in ["DPU", "", "leaf", "dpu "] {
            let (st, w) = SwitchType::parse(Some(v));
            assert_eq!(st, SwitchType::Switch, "{v:?}");
            assert!(
                w.is_some_and(|w| w.contains("invalid switch_type")),
                "{v:?}"
            );
        }
        assert!(SwitchType::parse(Some("dpu")).0.is_dpu());
    }

    #[test]
    fn rewrite_all_repeats_current_state_of_present_ports() {
        let mut ps = running(&["Ethernet0", "Ethernet4"]);
        ps.link_actions(&new_link("Ethernet4", 11, IFF_UP, 1500));
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
        ps.link_actions(&new_link("Ethernet8", 12, UP_RUNNING, 9100)); // not in APPL_DB
        assert_eq!(
            ps.rewrite_all(),
            vec![
                set("Ethernet0", "up", "up", "9100"),
                set("Ethernet4", "down", "up", "1500")
            ]
        );
        assert!(ps
            .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
            .is_empty());
    }

    #[test]
    fn external_state_delete_is_restored() {
        let mut ps = running(&["Ethernet0"]);
        ps.link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100));
        assert_eq!(
            ps.on_state_port_deleted("Ethernet0"),
            vec![set("Ethernet0", "up", "up", "9100")]
        );
        assert!(ps
            .link_actions(&new_link("Ethernet0", 10, UP_RUNNING, 9100))
            .is_empty());
        // our own DELLINK: nothing to restore
        ps.link_actions(&del_link("Ethernet0", 10));
        assert!(ps.on_state_port_deleted("Ethernet0").is_empty());
        // not in APPL_DB: nothing to restore
        assert!(ps.on_state_port_deleted("PortChannel1").is_empty());
    }

    // ===== property test =====

    #[derive(Debug, Clone)]
    enum Input {
        Link(LinkEvent),
        Appl {
            name: String,
            present: bool,
            admin: bool,
        },
    }

    const NAMES: [&str; 5] = [
        "Ethernet0",
        "Ethernet4",
        "PortChannel1",
        "eth0",
        "Ethernet8",
    ];
    const OLD_IFINDEX: u32 = 99;

    fn link_strategy() -> impl Strategy<Value = LinkEvent> {
        (
            any::<bool>(),
            prop_oneof![Just(0u8), Just(AF_BRIDGE)],
            prop_oneof![Just(10u32), Just(11), Just(12), Just(OLD_IFINDEX)],
            0..NAMES.len(),
            0u32..0x80,
            prop_oneof![Just(None), Just(Some(1500u32)), Just(Some(9100))],
            prop_oneof![Just(None), Just(Some(20u32))],
            prop_oneof![
                Just(None),
                Just(Some("team".to_string())),
                Just(Some("bridge".to_string()))
            ],
        )
            .prop_map(
                |(del, family, ifindex, n, flags, mtu, master, kind)| LinkEvent {
                    msg_type: if del {
                        LinkMsgType::Del
                    } else {
                        LinkMsgType::New
                    },
                    family,
                    ifindex,
                    name: NAMES[n].to_string(),
                    flags,
                    mtu,
                    master,
                    kind,
                },
            )
    }

    fn input_strategy() -> impl Strategy<Value = Input> {
        prop_oneof![
            3 => link_strategy().prop_map(Input::Link),
            1 => (0..NAMES.len(), any::<bool>(), any::<bool>()).prop_map(|(n, present, admin)| Input::Appl {
                name: NAMES[n].to_string(),
                present,
                admin,
            }),
        ]
    }

    /// Whether the C++ LinkSync::onMsg would act on the event (d.3 steps 1-5).
    fn counts(ev: &LinkEvent, old: bool) -> bool {
        (ev.name.starts_with("Ethernet") || ev.name.starts_with("PortChannel"))
            && ev.kind.as_deref() != Some("team")
            && !(ev.msg_type == LinkMsgType::Del && ev.master.is_some())
            && !(old && ev.ifindex == OLD_IFINDEX)
    }

    proptest! {
        #[test]
        fn state_db_converges_without_duplicate_writes(
            inputs in proptest::collection::vec(input_strategy(), 0..60),
            warm in any::<bool>(),
        ) {
            let mut ps = PortSync::new(ports(&["Ethernet0", "Ethernet4", "PortChannel1"]), SwitchType::Switch, warm);
            // recorded on cold starts only
            let old = ps.mark_old_interface(OLD_IFINDEX, "Ethernet8");
            prop_assert_eq!(old, !warm);
            // STATE_DB as the actions leave it, per name
            let mut state_db: HashMap<String, FieldValues> = HashMap::new();
            // the last Set emitted since the last Del / APPL_DB removal
            let mut last_set: HashMap<String, FieldValues> = HashMap::new();
            // reference: latest netdev state per name (None after a DELLINK)
            let mut netdev: HashMap<String, Option<LinkState>> = HashMap::new();
            let mut present: HashSet<String> = HashSet::new();
            let mut init_done = 0;

            let apply = |acts: Vec<StateAction>,
                             state_db: &mut HashMap<String, FieldValues>,
                             last_set: &mut HashMap<String, FieldValues>|
             -> Result<usize, TestCaseError> {
                let n = acts.len();
                for a in acts {
                    match a {
                        StateAction::SetPortState { name, fields } => {
                            prop_assert_ne!(last_set.get(&name), Some(&fields), "duplicate write for {}", name);
                            last_set.insert(name.clone(), fields.clone());
                            state_db.insert(name, fields);
                        }
                        StateAction::DelPortState { name } => {
                            last_set.remove(&name);
                            state_db.remove(&name);
                        }
                    }
                }
                Ok(n)
            };

            for input in &inputs {
                match input {
                    Input::Link(ev) => {
                        let outcome = ps.on_link(ev);
                        let passed = !matches!(
                            outcome,
                            LinkOutcome::Dropped(r) if r != DropReason::NotInApplDb
                        );
                        prop_assert_eq!(passed, counts(ev, old));
                        let acts: Vec<StateAction> = outcome.into_action().into_iter().collect();
                        if counts(ev, old) {
                            let prev_mtu = netdev.get(&ev.name).copied().flatten().map(|s| s.mtu);
                            let st = match ev.msg_type {
                                LinkMsgType::Del => None,
                                LinkMsgType::New => Some(LinkState {
                                    admin_up: ev.flags & IFF_UP != 0,
                                    oper_up: ev.flags & IFF_RUNNING != 0,
                                    mtu: ev.mtu.or(prev_mtu).unwrap_or(0),
                                }),
                            };
                            netdev.insert(ev.name.clone(), st);
                        } else {
                            prop_assert!(acts.is_empty());
                        }
                        apply(acts, &mut state_db, &mut last_set)?;
                    }
                    Input::Appl { name, present: p, admin } => {
                        if *p { present.insert(name.clone()); } else {
                            present.remove(name);
                            last_set.remove(name);
                        }
                        let acts = ps.on_appl_port(name, *p, *admin);
                        apply(acts, &mut state_db, &mut last_set)?;
                    }
                }
                if ps.take_port_init_done() { init_done += 1; }
            }
            ps.finish_initial_load();
            if ps.take_port_init_done() { init_done += 1; }
            prop_assert!(init_done <= 1);
            prop_assert_eq!(init_done == 1, ps.pending_ports().is_empty());

            // Convergence: every port in APPL_DB shows its netdev's latest state.
            for (name, st) in &netdev {
                if !present.contains(name) { continue; }
                match st {
                    Some(st) => prop_assert_eq!(state_db.get(name), Some(&st.fields()), "{}", name),
                    None => prop_assert_eq!(state_db.get(name), None, "{}", name),
                }
            }

            // Replaying the final state: the first replay may only touch
            // nothing (already converged), the second certainly writes nothing.
            let replay: Vec<LinkEvent> = netdev
                .iter()
                .filter_map(|(name, st)| {
                    st.map(|st| {
                        let flags = (u32::from(st.admin_up) * IFF_UP) | (u32::from(st.oper_up) * IFF_RUNNING);
                        new_link(name, 10, flags, st.mtu)
                    })
                })
                .collect();
            for _ in 0..2 {
                for ev in &replay {
                    prop_assert_eq!(ps.link_actions(ev), Vec::new());
                }
                for name in present.clone() {
                    prop_assert_eq!(ps.on_appl_port(&name, true, false), Vec::new());
                }
            }
            prop_assert!(!ps.take_port_init_done() || init_done == 0);
        }
    }
}
