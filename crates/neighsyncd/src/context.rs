//! The CONFIG_DB facts the neighbour sync rules read, cached in memory.
//!
//! The C++ neighsyncd asks Redis on the hot path: `KEYS PEER_SWITCH|*` on every
//! netlink message (docs/behavior.md f.1) and `HGETALL <TABLE>|<ifname>` on every
//! IPv6 link-local add (f.2), and it keeps VXLAN_EVPN_NVO presence as one
//! boolean that any DEL clears (f.9). Here the wiring feeds every CONFIG_DB
//! change of the five tables in [`ConfigTable`] into [`SyncContext::apply`]
//! (from a `SubscriberStateTable` per table, a.7), and the pure rules in
//! [`crate::sync`] read the cached answers without I/O.

use std::collections::{HashMap, HashSet};

use swss::FieldValues;

/// The CONFIG_DB field that enables IPv6 link-local-only mode on an interface
/// (`INTERFACE|Ethernet0` `ipv6_use_link_local_only` = `enable`).
pub const IPV6_USE_LINK_LOCAL_ONLY: &str = "ipv6_use_link_local_only";

/// The only value of [`IPV6_USE_LINK_LOCAL_ONLY`] that counts as enabled
/// (exact, case-sensitive comparison, as NeighSync::isLinkLocalEnabled).
pub const LINK_LOCAL_ENABLE: &str = "enable";

// ===== ConfigTable =====

/// A CONFIG_DB table whose content [`SyncContext`] caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigTable {
    /// `PEER_SWITCH`: any key means the switch is a dual-ToR.
    PeerSwitch,
    /// `VXLAN_EVPN_NVO`: any key means EVPN mode.
    VxlanEvpnNvo,
    /// `INTERFACE`: `ipv6_use_link_local_only` for `Ethernet*` names.
    Interface,
    /// `PORTCHANNEL_INTERFACE`: `ipv6_use_link_local_only` for `PortChannel*` names.
    PortchannelInterface,
    /// `VLAN_INTERFACE`: `ipv6_use_link_local_only` for `Vlan*` names.
    VlanInterface,
    /// `VLAN_SUB_INTERFACE` (`Ethernet0.10`, `Po1.10`): read only for the
    /// opt-in [`SyncOptions`].
    VlanSubInterface,
}

impl ConfigTable {
    /// Every table, in declaration order: the set the wiring subscribes to.
    pub const ALL: [ConfigTable; 6] = [
        ConfigTable::PeerSwitch,
        ConfigTable::VxlanEvpnNvo,
        ConfigTable::Interface,
        ConfigTable::PortchannelInterface,
        ConfigTable::VlanInterface,
        ConfigTable::VlanSubInterface,
    ];

    /// The CONFIG_DB table name (schema.h `CFG_*_TABLE_NAME`, docs/behavior.md a.8):
    /// `PEER_SWITCH`, `VXLAN_EVPN_NVO`, `INTERFACE`, `PORTCHANNEL_INTERFACE`,
    /// `VLAN_INTERFACE`, `VLAN_SUB_INTERFACE`. Keys are `<name>|<key>` in
    /// CONFIG_DB.
    pub const fn name(self) -> &'static str {
        match self {
            ConfigTable::PeerSwitch => "PEER_SWITCH",
            ConfigTable::VxlanEvpnNvo => "VXLAN_EVPN_NVO",
            ConfigTable::Interface => "INTERFACE",
            ConfigTable::PortchannelInterface => "PORTCHANNEL_INTERFACE",
            ConfigTable::VlanInterface => "VLAN_INTERFACE",
            ConfigTable::VlanSubInterface => "VLAN_SUB_INTERFACE",
        }
    }

    /// The table named `name` ([`ConfigTable::name`]); `None` for any
    /// other table.
    pub fn from_name(name: &str) -> Option<ConfigTable> {
        ConfigTable::ALL.into_iter().find(|t| t.name() == name)
    }
}

// ===== SyncOptions =====

/// Opt-in rules that no C++ neighsyncd has, asked for by SONiC users. All
/// off by default, so that what is written stays the C++'s
/// (docs/differences.md N18, N19).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// `--router-interfaces-only`: neighbours are written only on router
    /// interfaces, those with at least one key (`<ifname>` or
    /// `<ifname>|<prefix>`) in CONFIG_DB `INTERFACE`,
    /// `PORTCHANNEL_INTERFACE`, `VLAN_INTERFACE` or `VLAN_SUB_INTERFACE`.
    /// orchagent programs no other interface, so their neighbours (docker0,
    /// eth1, bridge-midplane, ...) stay pending in its NeighOrch and block
    /// warm reboot's RESTARTCHECK (sonic-swss issues 1268, 3330;
    /// sonic-buildimage 19316).
    pub router_interfaces_only: bool,
    /// `--sub-interface-link-local`: `ipv6_use_link_local_only` is also
    /// honoured on VLAN sub-interfaces (names with a `.`), read from
    /// `VLAN_SUB_INTERFACE|<ifname>` (sonic-swss issue 4708). The C++ looks
    /// a sub-interface up in the table of its parent's prefix, where it never
    /// is, so their IPv6 link-local neighbours are always dropped.
    pub sub_interface_link_local: bool,
}

// ===== SyncContext =====

/// The CONFIG_DB-derived facts the sync rules (docs/behavior.md b.2) read:
///
/// * dual-ToR: at least one `PEER_SWITCH` key exists (b.2 step 0);
/// * EVPN mode: at least one `VXLAN_EVPN_NVO` key exists. Keys are counted, so
///   deleting one NVO while another remains keeps EVPN mode on (fixes f.9,
///   where any DEL cleared a single boolean);
/// * per interface table, the interface names whose whole-name key
///   (`INTERFACE|Ethernet0`, not the address key `INTERFACE|Ethernet0|10.0.0.1/31`)
///   has `ipv6_use_link_local_only` == `enable` (b.2 step 7).
///
/// With the opt-in [`SyncOptions`], also:
///
/// * `router_interfaces_only`: the interface names with at least one key in
///   `INTERFACE`, `PORTCHANNEL_INTERFACE`, `VLAN_INTERFACE` or
///   `VLAN_SUB_INTERFACE`;
/// * `sub_interface_link_local`: the `VLAN_SUB_INTERFACE` names with
///   `ipv6_use_link_local_only` == `enable`.
///
/// It starts empty (not dual-ToR, no EVPN, no link-local interface) and is
/// kept current by [`SyncContext::apply`]; it does no I/O itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncContext {
    options: SyncOptions,
    peer_switches: HashSet<String>,
    evpn_nvos: HashSet<String>,
    link_local_interface: HashSet<String>,
    link_local_portchannel: HashSet<String>,
    link_local_vlan: HashSet<String>,
    link_local_sub: HashSet<String>,
    /// `router_interfaces_only`: the keys of each interface table...
    router_keys: HashSet<(ConfigTable, String)>,
    /// ... and how many of them each interface name has.
    router_names: HashMap<String, usize>,
}

impl SyncContext {
    /// An empty context: not dual-ToR, no EVPN NVO, link-local mode off
    /// everywhere, no opt-in rule.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty context with the opt-in rules of `options`.
    pub fn with_options(options: SyncOptions) -> Self {
        SyncContext {
            options,
            ..Self::default()
        }
    }

    /// The opt-in rules in force.
    pub fn options(&self) -> SyncOptions {
        self.options
    }

    /// Apply one CONFIG_DB change of `table`.
    ///
    /// * `key` is the key without the table name and its separator, as a
    ///   `SubscriberStateTable` reports it (`Ethernet0`, `Ethernet0|fe80::1/64`,
    ///   `nvo`, `peer_tor`).
    /// * `fvs` is `Some(current hash content)` for a SET and `None` for a DEL.
    ///   A SET carries the full content of the hash (a.7), so a SET without
    ///   `ipv6_use_link_local_only=enable` turns link-local mode off for that
    ///   interface.
    ///
    /// For `PEER_SWITCH` and `VXLAN_EVPN_NVO` every key counts, whatever its
    /// fields (the C++ tests key presence only). For the interface tables a
    /// key containing `|` (an `<ifname>|<prefix>` address key) is ignored.
    ///
    /// Returns `true` when a fact the rules read changed: dual-ToR or EVPN mode
    /// flipped, or link-local mode changed for one interface, or (with
    /// `router_interfaces_only`) an interface became or stopped being a
    /// router interface. Adding a second NVO key, for example, returns
    /// `false`; so does any `VLAN_SUB_INTERFACE` change when no opt-in rule
    /// reads it.
    pub fn apply(&mut self, table: ConfigTable, key: &str, fvs: Option<&FieldValues>) -> bool {
        match table {
            ConfigTable::PeerSwitch => presence_apply(&mut self.peer_switches, key, fvs.is_some()),
            ConfigTable::VxlanEvpnNvo => presence_apply(&mut self.evpn_nvos, key, fvs.is_some()),
            ConfigTable::Interface
            | ConfigTable::PortchannelInterface
            | ConfigTable::VlanInterface
            | ConfigTable::VlanSubInterface => {
                let router = self.options.router_interfaces_only
                    && self.apply_router_key(table, key, fvs.is_some());
                if key.contains('|') {
                    return router;
                }
                if table == ConfigTable::VlanSubInterface && !self.options.sub_interface_link_local
                {
                    return router;
                }
                let enabled = fvs.is_some_and(|fvs| {
                    fvs.iter()
                        .find(|(f, _)| f == IPV6_USE_LINK_LOCAL_ONLY)
                        .is_some_and(|(_, v)| v == LINK_LOCAL_ENABLE)
                });
                let set = self.link_local_set_mut(table);
                let link_local = if enabled {
                    set.insert(key.to_owned())
                } else {
                    set.remove(key)
                };
                router || link_local
            }
        }
    }

    /// `router_interfaces_only`: records `key` of `table` as present or
    /// gone; true when its interface name (the key up to the first `|`)
    /// became or stopped being a router interface.
    fn apply_router_key(&mut self, table: ConfigTable, key: &str, present: bool) -> bool {
        let name = key.split('|').next().unwrap_or(key);
        let entry = (table, key.to_owned());
        if present {
            if !self.router_keys.insert(entry) {
                return false;
            }
            let n = self.router_names.entry(name.to_owned()).or_insert(0);
            *n += 1;
            *n == 1
        } else {
            if !self.router_keys.remove(&entry) {
                return false;
            }
            match self.router_names.get_mut(name) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    self.router_names.remove(name);
                    true
                }
                None => false,
            }
        }
    }

    /// Forget everything known from `table`, before a fresh initial load of it
    /// (e.g. after a CONFIG_DB reconnect, when DELs may have been missed).
    pub fn reset_table(&mut self, table: ConfigTable) {
        match table {
            ConfigTable::PeerSwitch => self.peer_switches.clear(),
            ConfigTable::VxlanEvpnNvo => self.evpn_nvos.clear(),
            ConfigTable::Interface
            | ConfigTable::PortchannelInterface
            | ConfigTable::VlanInterface
            | ConfigTable::VlanSubInterface => {
                self.link_local_set_mut(table).clear();
                let gone: Vec<String> = self
                    .router_keys
                    .iter()
                    .filter(|(t, _)| *t == table)
                    .map(|(_, k)| k.clone())
                    .collect();
                for key in gone {
                    self.apply_router_key(table, &key, false);
                }
            }
        }
    }

    /// Whether neighbours of `ifname` are written: always, unless
    /// `router_interfaces_only` is on and `ifname` has no key in the
    /// CONFIG_DB interface tables ([`SyncOptions::router_interfaces_only`]).
    pub fn writes_interface(&self, ifname: &str) -> bool {
        !self.options.router_interfaces_only || self.router_names.contains_key(ifname)
    }

    /// Dual-ToR: at least one `PEER_SWITCH` key exists (b.2 step 0, without
    /// the per-message `KEYS PEER_SWITCH|*` of f.1).
    pub fn is_dual_tor(&self) -> bool {
        !self.peer_switches.is_empty()
    }

    /// EVPN mode: at least one `VXLAN_EVPN_NVO` key exists (`evpnNvoExists`,
    /// counted per key rather than one boolean, f.9).
    pub fn evpn_nvo_exists(&self) -> bool {
        !self.evpn_nvos.is_empty()
    }

    /// Whether IPv6 link-local-only mode is enabled on interface `ifname`, as
    /// NeighSync::isLinkLocalEnabled (b.2 step 7): a name starting with `Vlan`
    /// is looked up in `VLAN_INTERFACE`, else `PortChannel` in
    /// `PORTCHANNEL_INTERFACE`, else `Ethernet` in `INTERFACE`; any other name
    /// is `false`. Prefix tests are case-sensitive and the lookup uses the
    /// whole name. With [`SyncOptions::sub_interface_link_local`] a name
    /// containing `.` is looked up in `VLAN_SUB_INTERFACE` instead.
    pub fn link_local_enabled(&self, ifname: &str) -> bool {
        let set = if self.options.sub_interface_link_local && ifname.contains('.') {
            &self.link_local_sub
        } else if ifname.starts_with("Vlan") {
            &self.link_local_vlan
        } else if ifname.starts_with("PortChannel") {
            &self.link_local_portchannel
        } else if ifname.starts_with("Ethernet") {
            &self.link_local_interface
        } else {
            return false;
        };
        set.contains(ifname)
    }

    fn link_local_set_mut(&mut self, table: ConfigTable) -> &mut HashSet<String> {
        match table {
            ConfigTable::VlanInterface => &mut self.link_local_vlan,
            ConfigTable::PortchannelInterface => &mut self.link_local_portchannel,
            ConfigTable::VlanSubInterface => &mut self.link_local_sub,
            // Only called with interface tables; INTERFACE is the fallback.
            _ => &mut self.link_local_interface,
        }
    }
}

/// Insert or remove `key`; report whether the set's emptiness flipped.
fn presence_apply(set: &mut HashSet<String>, key: &str, present: bool) -> bool {
    let was_empty = set.is_empty();
    if present {
        set.insert(key.to_owned());
    } else {
        set.remove(key);
    }
    was_empty != set.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fv(pairs: &[(&str, &str)]) -> FieldValues {
        pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    fn ll_on() -> FieldValues {
        fv(&[("ipv6_use_link_local_only", "enable")])
    }

    #[test]
    fn table_names_match_config_db_schema() {
        let names: Vec<_> = ConfigTable::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "PEER_SWITCH",
                "VXLAN_EVPN_NVO",
                "INTERFACE",
                "PORTCHANNEL_INTERFACE",
                "VLAN_INTERFACE",
                "VLAN_SUB_INTERFACE"
            ]
        );
    }

    #[test]
    fn empty_context_has_no_facts() {
        let ctx = SyncContext::new();
        assert!(!ctx.is_dual_tor());
        assert!(!ctx.evpn_nvo_exists());
        assert!(!ctx.link_local_enabled("Ethernet0"));
        assert!(!ctx.link_local_enabled("Vlan1000"));
    }

    #[test]
    fn dual_tor_follows_peer_switch_keys() {
        let mut ctx = SyncContext::new();
        let fvs = fv(&[("address_ipv4", "10.1.0.33")]);
        assert!(ctx.apply(ConfigTable::PeerSwitch, "peer_tor", Some(&fvs)));
        assert!(ctx.is_dual_tor());
        // Same key again: nothing the rules read changed.
        assert!(!ctx.apply(ConfigTable::PeerSwitch, "peer_tor", Some(&fvs)));
        // Deleting an unknown key changes nothing.
        assert!(!ctx.apply(ConfigTable::PeerSwitch, "other", None));
        assert!(ctx.is_dual_tor());
        assert!(ctx.apply(ConfigTable::PeerSwitch, "peer_tor", None));
        assert!(!ctx.is_dual_tor());
    }

    #[test]
    fn evpn_counts_nvo_keys() {
        let mut ctx = SyncContext::new();
        let fvs = fv(&[("source_vtep", "vtep1")]);
        assert!(ctx.apply(ConfigTable::VxlanEvpnNvo, "nvo1", Some(&fvs)));
        assert!(!ctx.apply(ConfigTable::VxlanEvpnNvo, "nvo2", Some(&fvs)));
        assert!(ctx.evpn_nvo_exists());
        // Deleting one of two keeps EVPN mode on (the C++ turned it off, f.9).
        assert!(!ctx.apply(ConfigTable::VxlanEvpnNvo, "nvo1", None));
        assert!(ctx.evpn_nvo_exists());
        assert!(ctx.apply(ConfigTable::VxlanEvpnNvo, "nvo2", None));
        assert!(!ctx.evpn_nvo_exists());
        // A DEL of an unknown key when none exist stays off.
        assert!(!ctx.apply(ConfigTable::VxlanEvpnNvo, "nvo3", None));
        assert!(!ctx.evpn_nvo_exists());
    }

    #[test]
    fn link_local_routes_by_name_prefix() {
        let mut ctx = SyncContext::new();
        assert!(ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&ll_on())));
        assert!(ctx.apply(
            ConfigTable::PortchannelInterface,
            "PortChannel0001",
            Some(&ll_on())
        ));
        assert!(ctx.apply(ConfigTable::VlanInterface, "Vlan1000", Some(&ll_on())));
        assert!(ctx.link_local_enabled("Ethernet0"));
        assert!(ctx.link_local_enabled("PortChannel0001"));
        assert!(ctx.link_local_enabled("Vlan1000"));
        assert!(!ctx.link_local_enabled("Ethernet4"));

        // A name is only looked up in the table its prefix selects.
        assert!(ctx.apply(ConfigTable::Interface, "Vlan2000", Some(&ll_on())));
        assert!(!ctx.link_local_enabled("Vlan2000"));
        assert!(ctx.apply(ConfigTable::VlanInterface, "Ethernet8", Some(&ll_on())));
        assert!(!ctx.link_local_enabled("Ethernet8"));
        // Other names never have link-local mode, wherever they are configured.
        assert!(ctx.apply(ConfigTable::Interface, "eth0", Some(&ll_on())));
        assert!(!ctx.link_local_enabled("eth0"));
        // Prefixes are case-sensitive.
        assert!(ctx.apply(ConfigTable::Interface, "ethernet0", Some(&ll_on())));
        assert!(!ctx.link_local_enabled("ethernet0"));
        assert!(ctx.apply(ConfigTable::VlanInterface, "VLAN10", Some(&ll_on())));
        assert!(!ctx.link_local_enabled("VLAN10"));
    }

    #[test]
    fn link_local_needs_exact_enable_value() {
        let mut ctx = SyncContext::new();
        let off = fv(&[("ipv6_use_link_local_only", "disable")]);
        let upper = fv(&[("ipv6_use_link_local_only", "Enable")]);
        let other = fv(&[("NULL", "NULL")]);
        assert!(!ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&off)));
        assert!(!ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&upper)));
        assert!(!ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&other)));
        assert!(!ctx.link_local_enabled("Ethernet0"));
        let mixed = fv(&[
            ("vrf_name", "Vrf-red"),
            ("ipv6_use_link_local_only", "enable"),
        ]);
        assert!(ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&mixed)));
        assert!(ctx.link_local_enabled("Ethernet0"));
        // A SET carries the whole hash: without the field, the mode goes off.
        assert!(ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&other)));
        assert!(!ctx.link_local_enabled("Ethernet0"));
        // DEL turns it off too.
        assert!(ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&ll_on())));
        assert!(ctx.apply(ConfigTable::Interface, "Ethernet0", None));
        assert!(!ctx.link_local_enabled("Ethernet0"));
    }

    #[test]
    fn address_keys_do_not_count() {
        let mut ctx = SyncContext::new();
        assert!(!ctx.apply(
            ConfigTable::Interface,
            "Ethernet0|fe80::1/64",
            Some(&ll_on())
        ));
        assert!(!ctx.link_local_enabled("Ethernet0"));
        assert!(ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&ll_on())));
        // Deleting an address key leaves the interface key's setting alone.
        assert!(!ctx.apply(ConfigTable::Interface, "Ethernet0|fe80::1/64", None));
        assert!(ctx.link_local_enabled("Ethernet0"));
    }

    #[test]
    fn router_interfaces_follow_every_interface_table_when_opted_in() {
        let any = fv(&[("NULL", "NULL")]);
        // Off (the C++): every interface is written, no table change matters.
        let mut off = SyncContext::new();
        assert!(!off.apply(ConfigTable::Interface, "Ethernet0", Some(&any)));
        assert!(off.writes_interface("docker0"));

        let mut ctx = SyncContext::with_options(SyncOptions {
            router_interfaces_only: true,
            ..SyncOptions::default()
        });
        assert!(!ctx.writes_interface("Ethernet0"));
        assert!(!ctx.writes_interface("docker0"));
        // An address key alone makes a router interface (intfmgrd needs no
        // interface key for a plain routed port).
        assert!(ctx.apply(ConfigTable::Interface, "Ethernet0|10.0.0.0/31", Some(&any)));
        assert!(ctx.writes_interface("Ethernet0"));
        assert!(!ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&any)));
        assert!(!ctx.apply(ConfigTable::Interface, "Ethernet0|10.0.0.0/31", None));
        assert!(ctx.writes_interface("Ethernet0"));
        assert!(ctx.apply(ConfigTable::Interface, "Ethernet0", None));
        assert!(!ctx.writes_interface("Ethernet0"));
        // Every interface table counts, VLAN_SUB_INTERFACE included.
        for (table, name) in [
            (ConfigTable::VlanInterface, "Vlan1000"),
            (ConfigTable::PortchannelInterface, "PortChannel0001"),
            (ConfigTable::VlanSubInterface, "Ethernet8.10"),
        ] {
            assert!(ctx.apply(table, name, Some(&any)), "{name}");
            assert!(ctx.writes_interface(name));
        }
        ctx.reset_table(ConfigTable::VlanSubInterface);
        assert!(!ctx.writes_interface("Ethernet8.10"));
        assert!(ctx.writes_interface("Vlan1000"));
        // PEER_SWITCH and the like are not interface tables.
        assert!(ctx.apply(ConfigTable::PeerSwitch, "docker0", Some(&any)));
        assert!(!ctx.writes_interface("docker0"));
    }

    #[test]
    fn sub_interface_link_local_is_read_from_vlan_sub_interface_when_opted_in() {
        // Off (the C++): Ethernet0.10 is looked up in INTERFACE, never there.
        let mut off = SyncContext::new();
        assert!(!off.apply(
            ConfigTable::VlanSubInterface,
            "Ethernet0.10",
            Some(&ll_on())
        ));
        assert!(!off.link_local_enabled("Ethernet0.10"));

        let mut ctx = SyncContext::with_options(SyncOptions {
            sub_interface_link_local: true,
            ..SyncOptions::default()
        });
        assert!(ctx.apply(
            ConfigTable::VlanSubInterface,
            "Ethernet0.10",
            Some(&ll_on())
        ));
        assert!(ctx.apply(ConfigTable::VlanSubInterface, "Po1.20", Some(&ll_on())));
        assert!(ctx.link_local_enabled("Ethernet0.10"));
        assert!(ctx.link_local_enabled("Po1.20"));
        // The parent's own setting is not the sub-interface's.
        assert!(ctx.apply(ConfigTable::Interface, "Ethernet4", Some(&ll_on())));
        assert!(!ctx.link_local_enabled("Ethernet4.10"));
        assert!(ctx.link_local_enabled("Ethernet4"));
        assert!(ctx.apply(ConfigTable::VlanSubInterface, "Ethernet0.10", None));
        assert!(!ctx.link_local_enabled("Ethernet0.10"));
    }

    #[test]
    fn reset_table_forgets_only_that_table() {
        let mut ctx = SyncContext::new();
        let any = fv(&[("x", "y")]);
        ctx.apply(ConfigTable::PeerSwitch, "peer", Some(&any));
        ctx.apply(ConfigTable::VxlanEvpnNvo, "nvo", Some(&any));
        ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&ll_on()));
        ctx.apply(ConfigTable::VlanInterface, "Vlan1000", Some(&ll_on()));

        ctx.reset_table(ConfigTable::VxlanEvpnNvo);
        assert!(!ctx.evpn_nvo_exists());
        assert!(ctx.is_dual_tor());

        ctx.reset_table(ConfigTable::Interface);
        assert!(!ctx.link_local_enabled("Ethernet0"));
        assert!(ctx.link_local_enabled("Vlan1000"));

        ctx.reset_table(ConfigTable::PeerSwitch);
        assert!(!ctx.is_dual_tor());
        ctx.reset_table(ConfigTable::VlanInterface);
        assert!(!ctx.link_local_enabled("Vlan1000"));
    }
}
