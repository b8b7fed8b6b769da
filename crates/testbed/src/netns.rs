//! Network namespaces for tests: [`NetNs`] (one namespace, deleted on drop),
//! [`veth`] (a veth pair across two namespaces) and [`NeighTopology`] (a DUT
//! namespace with SONiC-named ports, each wired to its own peer namespace).
//!
//! Everything goes through iproute2 (`ip -n <ns> ...`, `ip netns exec`), run
//! as root. Namespace names include the pid and a per-process counter, so
//! tests running concurrently (threads or processes) never collide; link
//! names only need to be unique inside their namespace.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::sched::{setns, CloneFlags};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn check(what: &str, out: Output) -> anyhow::Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        bail!(
            "`{what}` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )
    }
}

fn run(argv: &[&str]) -> anyhow::Result<String> {
    let (prog, args) = argv.split_first().ok_or_else(|| anyhow!("empty command"))?;
    let out = Command::new(prog)
        .args(args)
        .output()
        .with_context(|| format!("spawn {prog}"))?;
    check(&argv.join(" "), out)
}

/// A network namespace named `<prefix>-<pid>-<counter>`, with `lo` up.
/// Dropping it deletes every link in it (so veth peers elsewhere go too)
/// and then the namespace.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Create the namespace (`ip netns add`) and bring `lo` up.
    ///
    /// Errors: `ip` failing (not root, name taken, ...), with its stderr.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        run(&["ip", "netns", "add", &name])?;
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace name (as given to `ip netns`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip neigh add <ip> lladdr <mac> dev <ifname> nud permanent`: a static
    /// kernel neighbor, as the integration tests create them.
    ///
    /// Errors: `ip` fails (e.g. the entry exists: use [`NetNs::neigh_replace`]).
    pub fn neigh_add(&self, ifname: &str, ip: &str, mac: &str) -> anyhow::Result<()> {
        self.neigh_permanent("add", ifname, ip, mac)
    }

    /// `ip neigh replace <ip> lladdr <mac> dev <ifname> nud permanent`:
    /// creates the neighbor or changes its MAC.
    ///
    /// Errors: `ip` fails.
    pub fn neigh_replace(&self, ifname: &str, ip: &str, mac: &str) -> anyhow::Result<()> {
        self.neigh_permanent("replace", ifname, ip, mac)
    }

    fn neigh_permanent(&self, verb: &str, ifname: &str, ip: &str, mac: &str) -> anyhow::Result<()> {
        self.ip(&[
            "neigh",
            verb,
            ip,
            "lladdr",
            mac,
            "dev",
            ifname,
            "nud",
            "permanent",
        ])
        .map(drop)
    }

    /// Run `ip -n <ns> <args...>` and return its stdout.
    ///
    /// Errors: a non-zero exit, with `ip`'s stderr in the message.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut argv = vec!["ip", "-n", &self.name];
        argv.extend_from_slice(args);
        run(&argv)
    }

    /// Run `argv` inside the namespace (`ip netns exec <ns> argv...`) and
    /// return its output whatever the exit status.
    ///
    /// Errors: only when the process cannot be spawned.
    pub fn exec(&self, argv: &[&str]) -> anyhow::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .with_context(|| format!("ip netns exec {} {}", self.name, argv.join(" ")))
    }

    /// As [`NetNs::exec`], but a non-zero exit is an error (with stderr);
    /// returns stdout.
    pub fn exec_ok(&self, argv: &[&str]) -> anyhow::Result<String> {
        let out = self.exec(argv)?;
        check(
            &format!("ip netns exec {} {}", self.name, argv.join(" ")),
            out,
        )
    }

    /// Set a sysctl inside the namespace (`sysctl -w key=value`), e.g.
    /// `net.ipv6.conf.all.disable_ipv6`.
    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.exec_ok(&["sysctl", "-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Run `f` on a fresh thread that has entered this network namespace
    /// (`setns(CLONE_NEWNET)`), and return its result. Sockets opened by
    /// `f` (netlink, ...) belong to the namespace. A tokio runtime needed
    /// by `f` must be built inside `f` (e.g. `current_thread`).
    ///
    /// Panics (in the caller) when the namespace cannot be entered or `f`
    /// panics.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        let joined = std::thread::scope(|s| {
            s.spawn(move || {
                let file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) => panic!("open {path}: {e}"),
                };
                if let Err(e) = setns(&file, CloneFlags::CLONE_NEWNET) {
                    panic!("setns {path}: {e}");
                }
                f()
            })
            .join()
        });
        match joined {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// The ifindex of `ifname` in this namespace.
    pub fn ifindex(&self, ifname: &str) -> anyhow::Result<u32> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        out.split(':')
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| anyhow!("no ifindex in `{out}`"))
    }

    /// The MAC address of `ifname`, as `ip` prints it (`aa:bb:cc:dd:ee:ff`).
    pub fn mac(&self, ifname: &str) -> anyhow::Result<String> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        let mut words = out.split_whitespace();
        while let Some(w) = words.next() {
            if w == "link/ether" {
                if let Some(mac) = words.next() {
                    return Ok(mac.to_string());
                }
            }
        }
        bail!("no link/ether in `{out}`")
    }

    /// Turns IPv6 duplicate address detection off for every link created
    /// afterwards (`net.ipv6.conf.{all,default}.accept_dad=0`), so link-local
    /// addresses are usable at once.
    ///
    /// Errors: `sysctl` failing, with its stderr.
    pub fn disable_dad(&self) -> anyhow::Result<()> {
        for key in ["all", "default"] {
            self.sysctl(&format!("net.ipv6.conf.{key}.accept_dad"), "0")?;
        }
        Ok(())
    }

    /// Polls (every 50 ms) until `ifname` has carrier (`LOWER_UP`).
    ///
    /// Errors: no carrier within `timeout`, or `ip` failing.
    pub fn wait_carrier(&self, ifname: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self
            .ip(&["link", "show", "dev", ifname])?
            .contains("LOWER_UP")
        {
            if Instant::now() > deadline {
                bail!("{ifname} in {} has no carrier after {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Names of all links in the namespace (`ip -o link show`), without the
    /// `@peer` suffix.
    pub fn links(&self) -> anyhow::Result<Vec<String>> {
        let out = self.ip(&["-o", "link", "show"])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
            .filter(|n| !n.is_empty())
            .collect())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Ok(links) = self.links() {
            for l in links.iter().filter(|l| *l != "lo") {
                let _ = self.ip(&["link", "del", "dev", l]);
            }
        }
        if let Err(e) = run(&["ip", "netns", "del", &self.name]) {
            eprintln!("testbed: cannot delete namespace {}: {e:#}", self.name);
        }
    }
}

/// Create a veth pair `a_name` (in `a`) <-> `b_name` (in `b`) and set both
/// ends up. `a` and `b` may be the same namespace.
pub fn veth(a: &NetNs, a_name: &str, b: &NetNs, b_name: &str) -> anyhow::Result<()> {
    a.ip(&[
        "link",
        "add",
        "name",
        a_name,
        "type",
        "veth",
        "peer",
        "name",
        b_name,
        "netns",
        b.name(),
    ])?;
    a.ip(&["link", "set", "dev", a_name, "up"])?;
    b.ip(&["link", "set", "dev", b_name, "up"])?;
    Ok(())
}

/// A DUT namespace with `n` ports named as SONiC names front-panel ports
/// (`Ethernet0`, `Ethernet4`, ... = `Ethernet{4*i}`; other names with
/// [`NeighTopology::with_ports`]), port `i` wired by veth to `eth0` in its
/// own peer namespace.
///
/// Addresses on link `i` (`i` < 256): DUT `10.0.<i>.1/24` and
/// `fc00:<i>::1/64`, peer `10.0.<i>.2/24` and `fc00:<i>::2/64` (hex `<i>`
/// in IPv6), all `nodad`, and DAD is off in every namespace
/// ([`NetNs::disable_dad`]), so every address is usable at once. Every
/// port has carrier when the constructor returns.
#[derive(Debug)]
pub struct NeighTopology {
    // Peers first: dropped before the DUT.
    peers: Vec<NetNs>,
    dut: NetNs,
    ports: Vec<String>,
}

/// Name of the peer-side interface in every peer namespace.
pub const PEER_IFNAME: &str = "eth0";

impl NeighTopology {
    /// Build the DUT and `n` peers (namespaces `dut-<pid>-<k>`,
    /// `peer-<pid>-<k>`), DUT ports `Ethernet0`, `Ethernet4`, ...
    ///
    /// Errors: any `ip` command failing, a port without carrier after 10 s,
    /// or `n` > 256.
    pub fn new(n: usize) -> anyhow::Result<Self> {
        let names: Vec<String> = (0..n).map(Self::port_name).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        Self::with_ports(&names)
    }

    /// As [`NeighTopology::new`] with the DUT port names given (e.g.
    /// `Vlan1000`, `PortChannel0001`: still plain veths).
    ///
    /// Errors: as [`NeighTopology::new`].
    pub fn with_ports(ports: &[&str]) -> anyhow::Result<Self> {
        let n = ports.len();
        if n > 256 {
            bail!("NeighTopology supports at most 256 ports, asked {n}");
        }
        let dut = NetNs::new("dut")?;
        dut.disable_dad()?;
        let mut topo = NeighTopology {
            peers: Vec::with_capacity(n),
            dut,
            ports: ports.iter().map(|p| (*p).to_owned()).collect(),
        };
        for (i, port) in ports.iter().enumerate() {
            let port = *port;
            let peer = NetNs::new("peer")?;
            peer.disable_dad()?;
            veth(&topo.dut, port, &peer, PEER_IFNAME)?;
            let (d4, p4) = (format!("10.0.{i}.1/24"), format!("10.0.{i}.2/24"));
            let (d6, p6) = (format!("fc00:{i:x}::1/64"), format!("fc00:{i:x}::2/64"));
            topo.dut.ip(&["addr", "add", &d4, "dev", port])?;
            topo.dut
                .ip(&["-6", "addr", "add", &d6, "dev", port, "nodad"])?;
            peer.ip(&["addr", "add", &p4, "dev", PEER_IFNAME])?;
            peer.ip(&["-6", "addr", "add", &p6, "dev", PEER_IFNAME, "nodad"])?;
            topo.peers.push(peer);
        }
        for port in ports {
            topo.dut.wait_carrier(port, Duration::from_secs(10))?;
        }
        Ok(topo)
    }

    /// The DUT port of link `i` (as given to [`NeighTopology::with_ports`],
    /// or [`NeighTopology::port_name`]). Panics if `i` is out of range.
    pub fn port(&self, i: usize) -> &str {
        &self.ports[i]
    }

    /// The default DUT port name of link `i`: `Ethernet{4*i}`.
    pub fn port_name(i: usize) -> String {
        format!("Ethernet{}", 4 * i)
    }

    /// The DUT namespace.
    pub fn dut(&self) -> &NetNs {
        &self.dut
    }

    /// The peer namespace of link `i`. Panics if `i` is out of range.
    pub fn peer(&self, i: usize) -> &NetNs {
        &self.peers[i]
    }

    /// Number of ports.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when built with zero ports.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The peer's IPv4 address on link `i` (`10.0.<i>.2`).
    pub fn peer_ip4(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, (i & 0xff) as u8, 2)
    }

    /// The peer's IPv6 address on link `i` (`fc00:<i>::2`).
    pub fn peer_ip6(i: usize) -> Ipv6Addr {
        Ipv6Addr::new(0xfc00, (i & 0xffff) as u16, 0, 0, 0, 0, 0, 2)
    }

    /// The peer's IPv4 or IPv6 address on link `i`.
    pub fn peer_ip(i: usize, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(Self::peer_ip6(i))
        } else {
            IpAddr::V4(Self::peer_ip4(i))
        }
    }

    /// The peer's MAC on link `i` (lowercase, colon separated).
    pub fn peer_mac(&self, i: usize) -> anyhow::Result<String> {
        self.peer(i).mac(PEER_IFNAME)
    }

    /// `ping -c1 -W1` the peer's IPv4 address from the DUT, so the DUT's
    /// kernel resolves it for real (ARP).
    ///
    /// Errors: ping fails (no reply), with its output.
    pub fn ping4(&self, i: usize) -> anyhow::Result<()> {
        self.ping(&["ping", "-c1", "-W1", &Self::peer_ip4(i).to_string()])
    }

    /// `ping -6 -c1 -W1` the peer's IPv6 address from the DUT (NDP).
    pub fn ping6(&self, i: usize) -> anyhow::Result<()> {
        self.ping(&["ping", "-6", "-c1", "-W1", &Self::peer_ip6(i).to_string()])
    }

    /// Runs a one-packet ping up to [`PING_ATTEMPTS`] times: right after a
    /// veth pair is created (or a peer comes back up) the first probe can be
    /// lost while the link finishes coming up on a loaded machine, which
    /// says nothing about the code under test. The error of the last
    /// attempt is returned if none answers.
    fn ping(&self, argv: &[&str]) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..PING_ATTEMPTS {
            match self.dut.exec_ok(argv) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("ping was not run")))
    }
}

/// `GET <path>` over plain HTTP/1.0 to `addr` (e.g. `127.0.0.1:9101`) from
/// inside `ns`, with a 5 s read timeout: `(status, body)`, or `None` when
/// nothing answers yet or the reply is not HTTP (a daemon still starting).
/// Used to read a daemon's `/metrics` and `/healthz`.
pub fn http_get(ns: &NetNs, addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    ns.run_in(|| {
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let (head, body) = resp.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    })
}

/// The value of the OpenMetrics sample whose line starts with
/// `name_and_labels` followed by a space (e.g. `neighsyncd_entries` or
/// `portsyncd_kernel_events_total{type="RTM_NEWLINK",...}`), from a
/// `/metrics` body.
pub fn metrics_sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// How many one-second pings [`NeighTopology::ping4`] / [`NeighTopology::ping6`]
/// try before giving up.
pub const PING_ATTEMPTS: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    /// Interface names listed in /proc/thread-self/net/dev (the calling
    /// thread's namespace).
    fn proc_links() -> Vec<String> {
        let text = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
        text.lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_string())
            .collect()
    }

    #[test]
    fn run_in_enters_the_namespace_and_drop_cleans_up() {
        let a = NetNs::new("tbt").unwrap();
        let b = NetNs::new("tbt").unwrap();
        assert_ne!(a.name(), b.name());
        veth(&a, "Ethernet0", &b, "eth0").unwrap();
        let mut inside = a.run_in(proc_links);
        inside.sort();
        assert_eq!(inside, ["Ethernet0", "lo"]);
        assert_eq!(b.links().unwrap(), ["lo", "eth0"]);
        assert!(a.ifindex("Ethernet0").unwrap() > 1);
        assert_eq!(b.mac("eth0").unwrap().len(), 17);
        let err = a
            .ip(&["link", "set", "dev", "nosuchdev", "up"])
            .unwrap_err();
        assert!(format!("{err:#}").contains("nosuchdev"), "{err:#}");
        let name = a.name().to_string();
        drop(a);
        let list = run(&["ip", "netns", "list"]).unwrap();
        assert!(!list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&name)));
        // The peer end went with the namespace's links.
        assert_eq!(b.links().unwrap(), ["lo"]);
    }

    #[test]
    fn topology_ports_addresses_and_ping() {
        let t = NeighTopology::new(2).unwrap();
        assert_eq!(t.len(), 2);
        let addrs = t
            .dut()
            .ip(&["-o", "addr", "show", "dev", "Ethernet4"])
            .unwrap();
        assert!(addrs.contains("10.0.1.1/24"), "{addrs}");
        assert!(addrs.contains("fc00:1::1/64"), "{addrs}");
        t.ping4(1).unwrap();
        t.ping6(0).unwrap();
        let neigh = t.dut().ip(&["neigh", "show", "dev", "Ethernet4"]).unwrap();
        assert!(neigh.contains(&t.peer_mac(1).unwrap()), "{neigh}");
        t.dut().sysctl("net.ipv4.conf.all.forwarding", "1").unwrap();
        let v = t
            .dut()
            .exec_ok(&["sysctl", "-n", "net.ipv4.conf.all.forwarding"])
            .unwrap();
        assert_eq!(v.trim(), "1");
    }
}
