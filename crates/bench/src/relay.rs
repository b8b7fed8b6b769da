//! The latency floor: a minimal relay from the kernel's neighbour
//! notifications to `NEIGH_TABLE_CHANNEL@0`, run by the `latency` scenario
//! beside neighsyncd (in turns, on the same Redis, subscriber and events).
//!
//! One thread, no async runtime: a blocking `NETLINK_ROUTE` socket joined
//! to `RTNLGRP_NEIGH` (netlink-sys), each datagram decoded with
//! netlink-packet-route, and for every `RTM_NEWNEIGH` with a link-layer
//! address one round trip on a blocking Redis connection over the unix
//! socket, the reply read before the next `recv`:
//!
//! * [`Mode::Publish`] (floor 1): `PUBLISH NEIGH_TABLE_CHANNEL@0 G`;
//! * [`Mode::Transaction`] (floor 2, the "transaction floor"): what
//!   neighsyncd sends for one set (swss `ProducerStateTable` batch form):
//!   `MULTI; HSET _NEIGH_TABLE:<ifname>:<ip> neigh <mac> family IPv4|IPv6;
//!   SADD NEIGH_TABLE_KEY_SET <ifname>:<ip>; PUBLISH NEIGH_TABLE_CHANNEL@0 G;
//!   EXEC`, written as one pipeline.
//!
//! It runs as a subcommand of the bench binary (`bench __relay <mode>
//! <redis socket>`), started in the DUT namespace exactly as the daemons
//! are (`ip netns exec`, own process), so it pays the same process wake-up
//! as they do. It prints [`READY`] once subscribed and runs until killed.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;

use anyhow::{bail, Context};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use redis::IntoConnectionInfo;

/// The first argument that runs the relay instead of the bench.
pub const SUBCOMMAND: &str = "__relay";
/// Printed (stderr) once the relay listens.
pub const READY: &str = "relay: listening";
/// `RTNLGRP_NEIGH` (linux/rtnetlink.h): neighbour notifications.
const RTNLGRP_NEIGH: u32 = 3;
const CHANNEL: &str = "NEIGH_TABLE_CHANNEL@0";

/// What the relay sends per `RTM_NEWNEIGH` (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Floor 1: one `PUBLISH`.
    Publish,
    /// Floor 2: neighsyncd's one-key `MULTI` ... `EXEC`.
    Transaction,
}

impl Mode {
    /// The command-line word for this mode.
    pub fn arg(self) -> &'static str {
        match self {
            Mode::Publish => "publish",
            Mode::Transaction => "transaction",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Mode> {
        match s {
            "publish" => Ok(Mode::Publish),
            "transaction" => Ok(Mode::Transaction),
            _ => bail!("relay mode {s:?}: expected publish or transaction"),
        }
    }
}

/// `bench __relay <publish|transaction> <redis unix socket>`: runs until
/// killed; returns only on an error.
pub fn main(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mode = Mode::parse(&args.next().context("relay: mode missing")?)?;
    let socket = args.next().context("relay: redis socket path missing")?;
    let info = redis::ConnectionAddr::Unix(socket.clone().into()).into_connection_info()?;
    let mut conn = redis::Client::open(info)?
        .get_connection()
        .with_context(|| format!("relay: connect to {socket}"))?;

    let mut sock = Socket::new(NETLINK_ROUTE).context("relay: netlink socket")?;
    sock.bind_auto().context("relay: netlink bind")?;
    sock.add_membership(RTNLGRP_NEIGH)
        .context("relay: join RTNLGRP_NEIGH")?;
    eprintln!("{READY} ({})", mode.arg());

    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    // ifindex -> name, looked up once per interface (if_indextoname is
    // three system calls).
    let mut names: HashMap<u32, String> = HashMap::new();
    loop {
        buf.clear();
        let n = sock.recv(&mut buf, 0).context("relay: netlink recv")?;
        let mut rest = buf.get(..n).unwrap_or_default();
        while !rest.is_empty() {
            let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest) else {
                break;
            };
            let len = (msg.header.length as usize).max(16);
            rest = rest.get((len + 3) & !3..).unwrap_or_default();
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(m)) = msg.payload
            {
                match mode {
                    Mode::Publish => redis::cmd("PUBLISH")
                        .arg(CHANNEL)
                        .arg("G")
                        .exec(&mut conn)
                        .context("relay: PUBLISH")?,
                    Mode::Transaction => {
                        let Some((key, mac, family)) = entry(&m, &mut names) else {
                            continue;
                        };
                        redis::pipe()
                            .atomic()
                            .cmd("HSET")
                            .arg(format!("_NEIGH_TABLE:{key}"))
                            .arg("neigh")
                            .arg(mac)
                            .arg("family")
                            .arg(family)
                            .cmd("SADD")
                            .arg("NEIGH_TABLE_KEY_SET")
                            .arg(&key)
                            .cmd("PUBLISH")
                            .arg(CHANNEL)
                            .arg("G")
                            .exec(&mut conn)
                            .context("relay: MULTI/EXEC")?
                    }
                }
            }
        }
    }
}

/// `(<ifname>:<ip>, <mac>, IPv4|IPv6)` of a neighbour message with an IP
/// destination and a 6-byte link-layer address.
fn entry(
    m: &NeighbourMessage,
    names: &mut HashMap<u32, String>,
) -> Option<(String, String, &'static str)> {
    let mut ip = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                ip = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                ip = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => mac = Some(l),
            _ => {}
        }
    }
    let (ip, mac) = (ip?, mac?);
    let ifname = match names.entry(m.header.ifindex) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => {
            let name = nix::net::if_::if_indextoname(*e.key()).ok()?;
            e.insert(name.to_string_lossy().into_owned())
        }
    };
    let mac = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    Some((format!("{ifname}:{ip}"), mac, family))
}
