//! The probes: an ARP who-has / ICMPv6 Neighbor Solicitation per restored
//! neighbor (the script's packets since sonic-swss PR 1158), built as bytes
//! and sent on one AF_PACKET socket.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use etherparse::{ArpEthIpv4Packet, ArpOperation, Icmpv6Type, PacketBuilder};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::Mac;
use crate::sync::BROADCAST_MAC;

/// Why a probe frame could not be built (never expected for valid input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build probe packet: {0}")]
pub struct PacketError(String);

/// An ARP who-has for `target`: Ethernet `src_mac` -> ff:ff:ff:ff:ff:ff,
/// ethertype 0x0806, ARP request with hwsrc = `src_mac`, psrc = `src_ip`,
/// hwdst = 00:00:00:00:00:00, pdst = `target` (42 bytes, unpadded).
/// Source: the script's `Ether(src=smac, dst=bcast)/ARP(op=who-has, ...)`.
///
/// Errors: [`PacketError`] if etherparse refuses to serialize.
pub fn arp_who_has(
    src_mac: Mac,
    src_ip: Ipv4Addr,
    target: Ipv4Addr,
) -> Result<Vec<u8>, PacketError> {
    let arp = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: src_mac,
        sender_ipv4: src_ip.octets(),
        target_mac: [0; 6],
        target_ipv4: target.octets(),
    };
    let builder = PacketBuilder::ethernet2(src_mac, BROADCAST_MAC).arp(arp.to_arp_packet());
    let mut buf = Vec::with_capacity(builder.size());
    builder
        .write_to_vec(&mut buf)
        .map_err(|e| PacketError(e.to_string()))?;
    Ok(buf)
}

/// The solicited-node multicast group of `target` (ff02::1:ffXX:XXXX, the
/// low 24 bits of `target`) and its Ethernet address 33:33:ff:XX:XX:XX
/// (RFC 4291 2.7.1, RFC 2464 7).
pub fn solicited_node(target: Ipv6Addr) -> (Ipv6Addr, Mac) {
    let t = target.octets();
    let mut group = [0u8; 16];
    group[0] = 0xff;
    group[1] = 0x02;
    group[11] = 0x01;
    group[12] = 0xff;
    group[13..].copy_from_slice(&t[13..]);
    let mac = [0x33, 0x33, 0xff, t[13], t[14], t[15]];
    (Ipv6Addr::from(group), mac)
}

/// NDP option type of the Source Link-Layer Address option (RFC 4861 4.6.1).
const NDP_OPT_SOURCE_LL_ADDR: u8 = 1;

/// An ICMPv6 Neighbor Solicitation for `target`: Ethernet `src_mac` ->
/// 33:33:ff:XX:XX:XX, IPv6 `src_ip` -> ff02::1:ffXX:XXXX with hop limit 255,
/// ICMPv6 type 135 code 0 (checksum over the pseudo-header), target
/// address, and a Source Link-Layer Address option (type 1, length 1) with
/// `src_mac` (86 bytes).
/// Source: the script's `Ether/IPv6/ICMPv6ND_NS(tgt)/ICMPv6NDOptSrcLLAddr`.
///
/// Errors: [`PacketError`] if etherparse refuses to serialize.
pub fn neighbor_solicitation(
    src_mac: Mac,
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Result<Vec<u8>, PacketError> {
    let (group, group_mac) = solicited_node(target);
    let mut payload = Vec::with_capacity(24);
    payload.extend_from_slice(&target.octets());
    payload.push(NDP_OPT_SOURCE_LL_ADDR);
    payload.push(1); // length in units of 8 octets
    payload.extend_from_slice(&src_mac);
    let builder = PacketBuilder::ethernet2(src_mac, group_mac)
        .ipv6(src_ip.octets(), group.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborSolicitation);
    let mut buf = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut buf, &payload)
        .map_err(|e| PacketError(e.to_string()))?;
    Ok(buf)
}

/// How often a probe the device queue refused (`ENOBUFS`) is tried again,
/// 1 ms apart, before it counts as failed.
const PROBE_ENOBUFS_RETRIES: u32 = 100;

/// The probe for neighbor `target` from an interface with `src_mac` and
/// `src_ip`: [`arp_who_has`] for IPv4, [`neighbor_solicitation`] for IPv6.
///
/// Errors: [`PacketError`] when `src_ip` and `target` are of different
/// families, or the frame cannot be built.
pub fn probe_frame(src_mac: Mac, src_ip: IpAddr, target: IpAddr) -> Result<Vec<u8>, PacketError> {
    match (src_ip, target) {
        (IpAddr::V4(s), IpAddr::V4(t)) => arp_who_has(src_mac, s, t),
        (IpAddr::V6(s), IpAddr::V6(t)) => neighbor_solicitation(src_mac, s, t),
        _ => Err(PacketError("source and target families differ".into())),
    }
}

/// The one AF_PACKET socket the probes go out on: `SOCK_RAW` with protocol
/// 0, so it is never on the receive path, not bound, non-blocking; each
/// frame names its interface (`sockaddr_ll`). One socket for the whole job,
/// because opening and closing a packet socket each wait for an RCU grace
/// period in the kernel (`synchronize_net` in `packet_release`), which one
/// socket per interface paid 1,000 times in a row.
pub(super) struct ProbeSocket {
    fd: AsyncFd<OwnedFd>,
}

impl ProbeSocket {
    /// Errors: `socket(2)` (`EPERM` without CAP_NET_RAW), or registering it
    /// with the runtime.
    pub(super) fn open() -> io::Result<Self> {
        let fd = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Packet,
            nix::sys::socket::SockType::Raw,
            nix::sys::socket::SockFlag::SOCK_NONBLOCK | nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(io::Error::from)?;
        #[allow(unsafe_code)]
        // SAFETY: the OwnedFd owns the socket: it stays open until the
        // AsyncFd drops it, `as_raw_fd` always returns that fd, and this
        // type never takes the OwnedFd out, replaces or clones it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::WRITABLE) }
            .map_err(io::Error::from)?;
        Ok(ProbeSocket { fd })
    }

    /// Sends one Ethernet frame (destination MAC and ethertype read from
    /// it) out of `ifindex`, waiting while the socket buffer is full and
    /// retrying while the device queue refuses it (`ENOBUFS`, up to
    /// [`PROBE_ENOBUFS_RETRIES`] times, 1 ms apart).
    ///
    /// Errors: the kernel's (`ENETDOWN` when the interface is down,
    /// `ENXIO` when it is gone, `ENOBUFS` after the retries), or a frame
    /// shorter than an Ethernet header.
    pub(super) async fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        let (Some(dst), Some(ethertype)) = (frame.get(0..6), frame.get(12..14)) else {
            return Err(io::Error::other("frame shorter than an Ethernet header"));
        };
        let mut sll_addr = [0u8; 8];
        sll_addr[..6].copy_from_slice(dst);
        let addr = nix::libc::sockaddr_ll {
            sll_family: nix::libc::AF_PACKET as u16,
            // network byte order, as the frame carries it
            sll_protocol: u16::from_ne_bytes([ethertype[0], ethertype[1]]),
            sll_ifindex: i32::try_from(ifindex)
                .map_err(|_| io::Error::other(format!("ifindex {ifindex} out of range")))?,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr,
        };
        let addr_ptr = std::ptr::from_ref(&addr).cast();
        let addr_len = std::mem::size_of::<nix::libc::sockaddr_ll>() as u32;
        let mut enobufs = 0;
        loop {
            let mut guard = self.fd.writable().await?;
            let res = match guard
                .try_io(|fd| pnet_sys::send_to(fd.get_ref().as_raw_fd(), frame, addr_ptr, addr_len))
            {
                Ok(res) => res,
                Err(_would_block) => continue,
            };
            match res {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.raw_os_error() == Some(nix::errno::Errno::ENOBUFS as i32)
                        && enobufs < PROBE_ENOBUFS_RETRIES =>
                {
                    enobufs += 1;
                    drop(guard);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
