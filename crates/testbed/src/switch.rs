//! SONiC switch link types on a real kernel, for the VM test tier
//! (`scripts/test-vm.sh`): a VLAN-aware `Bridge` with `Vlan<vid>` SVIs, bond
//! `PortChannel`s, 802.1Q sub-interfaces (`Ethernet8.10`) and VRF masters,
//! all built with iproute2 (`ip link`, `bridge vlan`), no mocks.
//!
//! These need the 8021q, bonding, vrf, dummy and bridge kernel modules,
//! which the build machines' kernel lacks; the tests using this module are
//! `#[ignore]`d on the host and run inside a QEMU guest booted on a stock
//! Debian kernel. [`require_switch_kernel`] loads the modules and fails with
//! a message naming the VM tier when they are missing.
//!
//! [`SwitchTopology`] is the DUT most neighsyncd VM tests use: one peer
//! namespace per L3 interface, like a ToR with a server VLAN, an uplink LAG,
//! a sub-interface and a VRF-bound port.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use crate::netns::{veth, NetNs, PEER_IFNAME, PING_ATTEMPTS};

/// Kernel modules the VM tier needs (`modprobe`d once per process).
pub const MODULES: [&str; 6] = ["8021q", "bonding", "vrf", "dummy", "bridge", "veth"];

/// The VLAN-aware bridge every `Vlan<vid>` SVI sits on, as SONiC names it.
pub const BRIDGE: &str = "Bridge";
/// The server VLAN SVI of [`SwitchTopology`] (VLAN id [`VLAN_ID`]).
pub const VLAN: &str = "Vlan1000";
/// The VLAN id of [`VLAN`].
pub const VLAN_ID: u16 = 1000;
/// The bond of [`SwitchTopology`], with [`PORT_CHANNEL_MEMBER`] as member.
pub const PORT_CHANNEL: &str = "PortChannel0001";
/// The sub-interface of [`SwitchTopology`] (on [`SUB_IF_PARENT`], VLAN 10).
pub const SUB_IF: &str = "Ethernet8.10";
/// The VRF master of [`SwitchTopology`] (kernel table [`VRF_TABLE`]).
pub const VRF: &str = "Vrf1";
/// The kernel routing table of [`VRF`].
pub const VRF_TABLE: u32 = 1001;
/// The front-panel port that is the untagged member of [`VLAN`].
pub const VLAN_MEMBER: &str = "Ethernet0";
/// The front-panel port that is the member of [`PORT_CHANNEL`].
pub const PORT_CHANNEL_MEMBER: &str = "Ethernet4";
/// The front-panel port carrying [`SUB_IF`].
pub const SUB_IF_PARENT: &str = "Ethernet8";
/// The front-panel routed port enslaved to [`VRF`].
pub const VRF_PORT: &str = "Ethernet12";

/// Loads [`MODULES`] (once per process) and checks that each link type can
/// be created.
///
/// Errors: a module that cannot be loaded, with `modprobe`'s message and a
/// pointer to `scripts/test-vm.sh` (the host kernel of the build machines
/// has none of them).
pub fn require_switch_kernel() -> anyhow::Result<()> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    let res = LOADED.get_or_init(|| {
        for m in MODULES {
            let out = std::process::Command::new("modprobe")
                .arg(m)
                .output()
                .map_err(|e| format!("spawn modprobe {m}: {e}"))?;
            if !out.status.success() && !module_builtin(m) {
                return Err(format!(
                    "modprobe {m} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(())
    });
    res.clone().map_err(|e| {
        anyhow!(
            "{e}: this test needs a kernel with 8021q, bonding, vrf, dummy and bridge; \
             run it in the VM tier (scripts/test-vm.sh)"
        )
    })
}

/// True when `/sys/module/<m>` exists (built into the kernel or loaded).
fn module_builtin(m: &str) -> bool {
    std::path::Path::new("/sys/module").join(m).exists()
}

/// `bridge <args...>` inside `ns` (iproute2's bridge tool).
pub fn bridge_cmd(ns: &NetNs, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["bridge"];
    argv.extend_from_slice(args);
    ns.exec_ok(&argv)
}

/// Creates the VLAN-aware bridge `name` (`vlan_filtering 1`, STP off) and
/// sets it up.
pub fn vlan_aware_bridge(ns: &NetNs, name: &str) -> anyhow::Result<()> {
    ns.ip(&[
        "link",
        "add",
        name,
        "type",
        "bridge",
        "vlan_filtering",
        "1",
        "stp_state",
        "0",
    ])?;
    ns.ip(&["link", "set", "dev", name, "up"])?;
    Ok(())
}

/// Makes `port` an untagged (PVID) member of VLAN `vid` on `bridge`, the
/// way SONiC configures an access port (`bridge vlan add vid <vid> pvid
/// untagged`, VLAN 1 removed).
pub fn vlan_member_untagged(ns: &NetNs, bridge: &str, port: &str, vid: u16) -> anyhow::Result<()> {
    let vid = vid.to_string();
    ns.ip(&["link", "set", "dev", port, "master", bridge])?;
    bridge_cmd(
        ns,
        &["vlan", "add", "vid", &vid, "dev", port, "pvid", "untagged"],
    )?;
    bridge_cmd(ns, &["vlan", "del", "vid", "1", "dev", port])?;
    Ok(())
}

/// Creates the SVI `Vlan<vid>` (an 802.1Q upper of `bridge`) with the
/// bridge itself a member of `vid`, and sets it up. Returns its name.
pub fn vlan_svi(ns: &NetNs, bridge: &str, vid: u16) -> anyhow::Result<String> {
    let name = format!("Vlan{vid}");
    let v = vid.to_string();
    bridge_cmd(ns, &["vlan", "add", "vid", &v, "dev", bridge, "self"])?;
    ns.ip(&[
        "link", "add", "link", bridge, "name", &name, "type", "vlan", "id", &v,
    ])?;
    ns.ip(&["link", "set", "dev", &name, "up"])?;
    Ok(name)
}

/// Creates the bond `name` (active-backup, miimon 100, so its carrier
/// follows its members), enslaves `members` (set down first, as bonding
/// requires) and sets everything up.
pub fn port_channel(ns: &NetNs, name: &str, members: &[&str]) -> anyhow::Result<()> {
    ns.ip(&[
        "link",
        "add",
        name,
        "type",
        "bond",
        "mode",
        "active-backup",
        "miimon",
        "100",
    ])?;
    for m in members {
        lag_add_member(ns, name, m)?;
    }
    ns.ip(&["link", "set", "dev", name, "up"])?;
    Ok(())
}

/// Enslaves `member` to the bond `lag` (down, master, up).
pub fn lag_add_member(ns: &NetNs, lag: &str, member: &str) -> anyhow::Result<()> {
    ns.ip(&["link", "set", "dev", member, "down"])?;
    ns.ip(&["link", "set", "dev", member, "master", lag])?;
    ns.ip(&["link", "set", "dev", member, "up"])?;
    Ok(())
}

/// Creates the 802.1Q sub-interface `name` of `parent` with VLAN `vid` and
/// sets it up.
pub fn sub_interface(ns: &NetNs, parent: &str, name: &str, vid: u16) -> anyhow::Result<()> {
    let v = vid.to_string();
    ns.ip(&[
        "link", "add", "link", parent, "name", name, "type", "vlan", "id", &v,
    ])?;
    ns.ip(&["link", "set", "dev", name, "up"])?;
    Ok(())
}

/// Creates the VRF master `name` bound to kernel table `table` and sets it
/// up.
pub fn vrf(ns: &NetNs, name: &str, table: u32) -> anyhow::Result<()> {
    let t = table.to_string();
    ns.ip(&["link", "add", name, "type", "vrf", "table", &t])?;
    ns.ip(&["link", "set", "dev", name, "up"])?;
    Ok(())
}

/// `ip link set dev <ifname> master <master>`.
pub fn enslave(ns: &NetNs, ifname: &str, master: &str) -> anyhow::Result<()> {
    ns.ip(&["link", "set", "dev", ifname, "master", master])
        .map(drop)
}

/// Addresses of one routed segment of [`SwitchTopology`]: the DUT's L3
/// interface and the peer's, with their IPv4/IPv6 addresses (no prefix).
#[derive(Debug, Clone)]
pub struct Segment {
    /// The DUT's L3 interface (`Vlan1000`, `PortChannel0001`, ...).
    pub dut_if: &'static str,
    /// The front-panel port under it (`Ethernet0`, ...).
    pub port: &'static str,
    /// The peer's L3 interface in its namespace (`eth0` or `eth0.10`).
    pub peer_if: &'static str,
    /// DUT IPv4 address.
    pub dut4: &'static str,
    /// Peer IPv4 address.
    pub peer4: &'static str,
    /// DUT IPv6 address.
    pub dut6: &'static str,
    /// Peer IPv6 address.
    pub peer6: &'static str,
}

/// The four segments of [`SwitchTopology`], all /24 and /64.
pub const SEGMENTS: [Segment; 4] = [
    Segment {
        dut_if: VLAN,
        port: VLAN_MEMBER,
        peer_if: PEER_IFNAME,
        dut4: "192.168.0.1",
        peer4: "192.168.0.2",
        dut6: "fc02:1000::1",
        peer6: "fc02:1000::2",
    },
    Segment {
        dut_if: PORT_CHANNEL,
        port: PORT_CHANNEL_MEMBER,
        peer_if: PEER_IFNAME,
        dut4: "10.0.1.1",
        peer4: "10.0.1.2",
        dut6: "fc00:1::1",
        peer6: "fc00:1::2",
    },
    Segment {
        dut_if: SUB_IF,
        port: SUB_IF_PARENT,
        peer_if: "eth0.10",
        dut4: "10.0.2.1",
        peer4: "10.0.2.2",
        dut6: "fc00:2::1",
        peer6: "fc00:2::2",
    },
    Segment {
        dut_if: VRF_PORT,
        port: VRF_PORT,
        peer_if: PEER_IFNAME,
        dut4: "10.0.3.1",
        peer4: "10.0.3.2",
        dut6: "fc00:3::1",
        peer6: "fc00:3::2",
    },
];

/// A DUT namespace shaped like a SONiC ToR, each front-panel port wired by
/// veth to `eth0` of its own peer namespace:
///
/// | DUT L3 interface | built as | peer side |
/// |---|---|---|
/// | `Vlan1000` | 802.1Q SVI on the VLAN-aware `Bridge`; `Ethernet0` untagged member | `eth0` |
/// | `PortChannel0001` | bond (active-backup) with member `Ethernet4` | `eth0` |
/// | `Ethernet8.10` | 802.1Q sub-interface of `Ethernet8` | `eth0.10` |
/// | `Ethernet12` | routed port enslaved to `Vrf1` (table 1001) | `eth0` |
///
/// Addresses as in [`SEGMENTS`] (`nodad`, DAD off everywhere). Every L3
/// interface has carrier when the constructor returns.
#[derive(Debug)]
pub struct SwitchTopology {
    // Peers first: dropped before the DUT.
    peers: Vec<NetNs>,
    dut: NetNs,
}

impl SwitchTopology {
    /// Builds the topology (see the type doc).
    ///
    /// Errors: the kernel lacks a link type ([`require_switch_kernel`]),
    /// any `ip`/`bridge` command fails, or an interface has no carrier
    /// after 20 s.
    pub fn new() -> anyhow::Result<Self> {
        Self::build(&SEGMENTS)
    }

    /// Only the first segment: `Vlan1000` on the VLAN-aware `Bridge` with
    /// `Ethernet0` as member and its peer (no PortChannel, sub-interface
    /// or VRF), for tests about the Vlan alone; a quarter of the `ip`
    /// commands of [`SwitchTopology::new`] (each one is slow in the TCG
    /// guest). The other segments' methods fail with "no peer".
    ///
    /// Errors: as [`SwitchTopology::new`].
    pub fn vlan_only() -> anyhow::Result<Self> {
        Self::build(&SEGMENTS[..1])
    }

    fn build(segments: &[Segment]) -> anyhow::Result<Self> {
        require_switch_kernel()?;
        let dut = NetNs::new("swdut")?;
        dut.disable_dad()?;
        let mut topo = SwitchTopology {
            peers: Vec::with_capacity(segments.len()),
            dut,
        };
        for seg in segments {
            let peer = NetNs::new("swpeer")?;
            peer.disable_dad()?;
            veth(&topo.dut, seg.port, &peer, PEER_IFNAME)?;
            topo.peers.push(peer);
        }
        let dut = &topo.dut;
        vlan_aware_bridge(dut, BRIDGE)?;
        vlan_member_untagged(dut, BRIDGE, VLAN_MEMBER, VLAN_ID)?;
        vlan_svi(dut, BRIDGE, VLAN_ID)?;
        if segments.len() == SEGMENTS.len() {
            port_channel(dut, PORT_CHANNEL, &[PORT_CHANNEL_MEMBER])?;
            sub_interface(dut, SUB_IF_PARENT, SUB_IF, 10)?;
            sub_interface(&topo.peers[2], PEER_IFNAME, "eth0.10", 10)?;
            vrf(dut, VRF, VRF_TABLE)?;
            enslave(dut, VRF_PORT, VRF)?;
        }
        for (seg, peer) in segments.iter().zip(&topo.peers) {
            let (d4, p4) = (format!("{}/24", seg.dut4), format!("{}/24", seg.peer4));
            let (d6, p6) = (format!("{}/64", seg.dut6), format!("{}/64", seg.peer6));
            dut.ip(&["addr", "add", &d4, "dev", seg.dut_if])?;
            dut.ip(&["-6", "addr", "add", &d6, "dev", seg.dut_if, "nodad"])?;
            peer.ip(&["addr", "add", &p4, "dev", seg.peer_if])?;
            peer.ip(&["-6", "addr", "add", &p6, "dev", seg.peer_if, "nodad"])?;
        }
        for seg in segments {
            dut.wait_carrier(seg.dut_if, Duration::from_secs(20))?;
        }
        Ok(topo)
    }

    /// The DUT namespace.
    pub fn dut(&self) -> &NetNs {
        &self.dut
    }

    /// The segment whose DUT L3 interface is `dut_if`.
    ///
    /// Errors: no such segment.
    pub fn segment(dut_if: &str) -> anyhow::Result<&'static Segment> {
        SEGMENTS
            .iter()
            .find(|s| s.dut_if == dut_if)
            .ok_or_else(|| anyhow!("no segment {dut_if}"))
    }

    /// The peer namespace behind the DUT L3 interface `dut_if`.
    ///
    /// Errors: no such segment.
    pub fn peer(&self, dut_if: &str) -> anyhow::Result<&NetNs> {
        let i = SEGMENTS
            .iter()
            .position(|s| s.dut_if == dut_if)
            .ok_or_else(|| anyhow!("no segment {dut_if}"))?;
        self.peers
            .get(i)
            .ok_or_else(|| anyhow!("no peer for {dut_if}"))
    }

    /// The MAC the DUT learns for the peer behind `dut_if`.
    pub fn peer_mac(&self, dut_if: &str) -> anyhow::Result<String> {
        let seg = Self::segment(dut_if)?;
        self.peer(dut_if)?.mac(seg.peer_if)
    }

    /// Pings `ip` from the DUT out of `dut_if` (`ping -I <dut_if>`, which
    /// also works for a port in a VRF), so the kernel resolves it for real.
    /// Up to [`PING_ATTEMPTS`] one-second tries.
    ///
    /// Errors: no answer, with ping's output.
    pub fn ping(&self, dut_if: &str, ip: &str) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..PING_ATTEMPTS {
            match self.ping_once(dut_if, ip) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("ping was not run")))
    }

    /// One `ping -c1 -W1 -I <dut_if> <ip>` whose failure is expected (an
    /// address nobody answers, to leave an INCOMPLETE/FAILED neighbor).
    ///
    /// Errors: only when ping cannot be spawned.
    pub fn ping_unanswered(&self, dut_if: &str, ip: &str) -> anyhow::Result<()> {
        self.dut
            .exec(&["ping", "-c1", "-W1", "-I", dut_if, ip])
            .map(drop)
    }

    fn ping_once(&self, dut_if: &str, ip: &str) -> anyhow::Result<()> {
        let out = self.dut.exec(&["ping", "-c1", "-W1", "-I", dut_if, ip])?;
        if out.status.success() {
            Ok(())
        } else {
            bail!(
                "ping -I {dut_if} {ip}: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        }
    }

    /// Pings the peer behind `dut_if` on IPv4 and IPv6.
    ///
    /// Errors: as [`SwitchTopology::ping`].
    pub fn ping_peer(&self, dut_if: &str) -> anyhow::Result<()> {
        let seg = Self::segment(dut_if)?;
        self.ping(dut_if, seg.peer4)
            .and_then(|()| self.ping(dut_if, seg.peer6))
            .with_context(|| format!("ping the peer behind {dut_if}"))
    }
}
