//! The socket against the real kernel, in fresh network namespaces.
//!
//! Each test builds its own topology and opens its sockets inside the DUT
//! namespace (`NetNs::run_in` plus a current-thread tokio runtime).

// Test helpers outside #[test] fns: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::Duration;

use sonic_netlink::link::IFF_UP;
use sonic_netlink::neigh::nud;
use sonic_netlink::{
    Dump, KernelMessage, NeighMsgType, NeighborEvent, NetlinkSocket, RcvBuf, SocketError,
    RTNLGRP_LINK, RTNLGRP_NEIGH,
};
use testbed::netns::{NeighTopology, NetNs};

/// Upper bound for an expected kernel message to arrive: only hit when the
/// behaviour is broken (the test then fails instead of hanging).
const WAIT: Duration = Duration::from_secs(20);

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Receive until `done` says so; returns every message received. Decode
/// errors fail the test (the kernel sends well-formed messages).
async fn collect(
    sock: &mut NetlinkSocket,
    mut done: impl FnMut(&KernelMessage) -> bool,
) -> Vec<KernelMessage> {
    let mut all = Vec::new();
    let mut batch = Vec::new();
    let fut = async {
        loop {
            batch.clear();
            sock.recv(&mut batch).await.unwrap();
            for r in batch.drain(..) {
                let m = r.unwrap();
                let stop = done(&m);
                all.push(m);
                if stop {
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(WAIT, fut).await.is_err() {
        panic!("expected message not received within {WAIT:?}; got {all:?}");
    }
    all
}

fn neigh_for(m: &KernelMessage, dst: IpAddr) -> Option<&NeighborEvent> {
    match m {
        KernelMessage::Neigh(ev) if ev.dst == dst => Some(ev),
        _ => None,
    }
}

fn parse_mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// `ip -n <ns> -batch -` with `lines` on stdin.
fn ip_batch(ns: &NetNs, lines: &str) {
    let mut child = Command::new("ip")
        .args(["-n", ns.name(), "-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn many_neighbors(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "neigh add 10.1.{}.{} lladdr 02:00:00:00:{:02x}:{:02x} dev Ethernet0 nud permanent\n",
                i / 250,
                i % 250 + 1,
                i / 256,
                i % 256
            )
        })
        .collect()
}

#[test]
fn link_dump_sees_ports_with_their_ifindex() {
    let topo = NeighTopology::new(2).unwrap();
    let eth0 = topo.dut().ifindex("Ethernet0").unwrap();
    let eth4 = topo.dut().ifindex("Ethernet4").unwrap();
    let msgs = topo.dut().run_in(|| {
        block_on(async {
            let mut sock = NetlinkSocket::open(&[], 1 << 20).unwrap();
            sock.request_dump(Dump::Links).unwrap();
            collect(&mut sock, |m| *m == KernelMessage::DumpDone).await
        })
    });
    let links: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            KernelMessage::Link(l) => Some(l),
            _ => None,
        })
        .collect();
    let e0 = links.iter().find(|l| l.name == "Ethernet0").unwrap();
    assert_eq!(e0.ifindex, eth0);
    assert_eq!(e0.kind.as_deref(), Some("veth"));
    assert_eq!(e0.flags & IFF_UP, IFF_UP);
    assert_eq!(e0.mtu, Some(1500));
    assert_eq!(e0.master, None);
    let e4 = links.iter().find(|l| l.name == "Ethernet4").unwrap();
    assert_eq!(e4.ifindex, eth4);
    assert!(links.iter().any(|l| l.name == "lo"));
    // Nothing of another namespace.
    assert_eq!(links.len(), 3, "{links:?}");
}

#[test]
fn link_notifications_for_bridge_enslave_and_delete() {
    let ns = NetNs::new("lnk").unwrap();
    let msgs = ns.run_in(|| {
        block_on(async {
            let mut sock = NetlinkSocket::open(&[RTNLGRP_LINK], 1 << 20).unwrap();
            ns.ip(&["link", "add", "name", "Bridge", "type", "bridge"])
                .unwrap();
            ns.ip(&[
                "link", "add", "name", "Ethernet0", "type", "veth", "peer", "name", "p0",
            ])
            .unwrap();
            ns.ip(&["link", "set", "dev", "Ethernet0", "master", "Bridge"])
                .unwrap();
            ns.ip(&["link", "set", "dev", "Ethernet0", "nomaster"])
                .unwrap();
            ns.ip(&["link", "del", "dev", "p0"]).unwrap();
            collect(&mut sock, |m| {
                matches!(m, KernelMessage::Link(l)
                    if l.name == "Ethernet0" && l.msg_type == sonic_netlink::LinkMsgType::Del && l.family == 0)
            })
            .await
        })
    });
    let links: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            KernelMessage::Link(l) => Some(l.clone()),
            _ => None,
        })
        .collect();
    let bridge = links.iter().find(|l| l.name == "Bridge").unwrap();
    assert_eq!(bridge.kind.as_deref(), Some("bridge"));
    // The port was seen with the bridge as master, including as an
    // AF_BRIDGE port notification.
    assert!(links
        .iter()
        .any(|l| l.name == "Ethernet0" && l.master == Some(bridge.ifindex) && l.family == 0));
    assert!(links
        .iter()
        .any(|l| l.name == "Ethernet0" && l.master == Some(bridge.ifindex) && l.family == 7));
    // Feeding everything through a LinkTable leaves no Ethernet0.
    let mut table = sonic_netlink::LinkTable::new();
    for l in &links {
        table.apply(l);
    }
    assert_eq!(table.ifindex_of("Ethernet0"), None);
    assert_eq!(table.kind(bridge.ifindex), Some("bridge"));
}

#[test]
fn neighbor_add_and_delete_notifications() {
    let topo = NeighTopology::new(1).unwrap();
    let dut = topo.dut();
    let ifindex = dut.ifindex("Ethernet0").unwrap();
    let v4: IpAddr = "10.0.0.77".parse().unwrap();
    let v6: IpAddr = "fc00:0::77".parse().unwrap();
    let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    dut.run_in(|| {
        block_on(async {
            let mut sock = NetlinkSocket::open(&[RTNLGRP_NEIGH], 1 << 20).unwrap();
            for dst in [v4, v6] {
                let d = dst.to_string();
                dut.neigh_add("Ethernet0", &d, "02:11:22:33:44:55").unwrap();
                let msgs = collect(&mut sock, |m| neigh_for(m, dst).is_some()).await;
                let ev = neigh_for(msgs.last().unwrap(), dst).unwrap();
                assert_eq!(ev.msg_type, NeighMsgType::New);
                assert_eq!(ev.ifindex, ifindex);
                assert_eq!(ev.lladdr, Some(mac));
                assert_eq!(ev.state, nud::PERMANENT);
                assert!(!ev.dump, "a notification, not a dump reply");

                dut.ip(&["neigh", "del", &d, "dev", "Ethernet0"]).unwrap();
                let msgs = collect(&mut sock, |m| {
                    neigh_for(m, dst).is_some_and(|e| e.msg_type == NeighMsgType::Del)
                })
                .await;
                let ev = neigh_for(msgs.last().unwrap(), dst).unwrap();
                assert_eq!(ev.ifindex, ifindex);
            }
        })
    });
}

#[test]
fn neighbors_learned_by_ping() {
    let topo = NeighTopology::new(2).unwrap();
    let peer_mac = parse_mac(&topo.peer_mac(1).unwrap());
    let ifindex = topo.dut().ifindex("Ethernet4").unwrap();
    topo.dut().run_in(|| {
        block_on(async {
            let mut sock = NetlinkSocket::open(&[RTNLGRP_NEIGH], 1 << 20).unwrap();
            for v6 in [false, true] {
                let dst = NeighTopology::peer_ip(1, v6);
                if v6 {
                    topo.ping6(1).unwrap();
                } else {
                    topo.ping4(1).unwrap();
                }
                let msgs = collect(&mut sock, |m| {
                    neigh_for(m, dst).is_some_and(|e| e.state == nud::REACHABLE)
                })
                .await;
                let ev = neigh_for(msgs.last().unwrap(), dst).unwrap();
                assert_eq!(ev.lladdr, Some(peer_mac));
                assert_eq!(ev.ifindex, ifindex);
                assert_eq!(ev.msg_type, NeighMsgType::New);
            }
        })
    });
}

#[test]
fn neighbor_dump_ends_with_dump_done() {
    let topo = NeighTopology::new(1).unwrap();
    let dut = topo.dut();
    ip_batch(dut, &many_neighbors(300));
    let msgs = dut.run_in(|| {
        block_on(async {
            let mut sock = NetlinkSocket::open(&[], 1 << 20).unwrap();
            sock.request_dump(Dump::Neighbors).unwrap();
            collect(&mut sock, |m| *m == KernelMessage::DumpDone).await
        })
    });
    let ours: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            KernelMessage::Neigh(ev) if ev.state == nud::PERMANENT => Some(ev),
            _ => None,
        })
        .collect();
    assert_eq!(ours.len(), 300);
    assert!(ours.iter().all(|e| e.msg_type == NeighMsgType::New));
    assert!(
        ours.iter().all(|e| e.dump),
        "dump replies are flagged as such"
    );
    assert!(ours
        .iter()
        .any(|e| e.dst == IpAddr::V4(Ipv4Addr::new(10, 1, 1, 50))
            && e.lladdr == Some([2, 0, 0, 0, 1, 0x2b])));
    assert_eq!(msgs.last(), Some(&KernelMessage::DumpDone));
}

#[test]
fn a_second_dump_while_one_is_in_flight_is_refused() {
    let topo = NeighTopology::new(1).unwrap();
    let dut = topo.dut();
    // Enough entries that the dump needs several datagrams.
    ip_batch(dut, &many_neighbors(2000));
    let msgs = dut.run_in(|| {
        block_on(async {
            let mut sock = NetlinkSocket::open(&[], 1 << 20).unwrap();
            sock.request_dump(Dump::Neighbors).unwrap();
            sock.request_dump(Dump::Links).unwrap();
            let mut msgs = collect(&mut sock, |m| *m == KernelMessage::DumpDone).await;
            // The refused request did not break the socket: dump again.
            sock.request_dump(Dump::Links).unwrap();
            msgs.extend(collect(&mut sock, |m| *m == KernelMessage::DumpDone).await);
            msgs
        })
    });
    assert!(msgs.contains(&KernelMessage::DumpFailed { errno: 16 }));
    let neighbors = msgs
        .iter()
        .filter(|m| matches!(m, KernelMessage::Neigh(e) if e.state == nud::PERMANENT))
        .count();
    assert_eq!(neighbors, 2000);
    assert!(msgs
        .iter()
        .any(|m| matches!(m, KernelMessage::Link(l) if l.name == "Ethernet0")));
}

#[test]
fn receive_buffer_force_and_exact() {
    let ns = NetNs::new("rcvbuf").unwrap();
    let (forced, exact) = ns.run_in(|| {
        block_on(async {
            let forced = NetlinkSocket::open(&[RTNLGRP_NEIGH], 16 << 20).unwrap();
            let exact = NetlinkSocket::open_with(&[RTNLGRP_NEIGH], RcvBuf::Exact(4096)).unwrap();
            (forced.rcvbuf_bytes(), exact.rcvbuf_bytes())
        })
    });
    // Root may exceed net.core.rmem_max with SO_RCVBUFFORCE; the kernel
    // reports twice the requested size.
    assert_eq!(forced, 32 << 20);
    assert_eq!(exact, 8192);
}

#[test]
fn small_buffer_flooded_reports_overrun_and_stays_usable() {
    let topo = NeighTopology::new(1).unwrap();
    let dut = topo.dut();
    let (overrun, dumped) = dut.run_in(|| {
        block_on(async {
            let mut sock = NetlinkSocket::open_with(&[RTNLGRP_NEIGH], RcvBuf::Exact(4096)).unwrap();
            // 5000 notifications while nobody reads.
            ip_batch(dut, &many_neighbors(5000));
            let mut overrun = false;
            let mut batch = Vec::new();
            for _ in 0..100 {
                match tokio::time::timeout(WAIT, sock.recv(&mut batch)).await {
                    Err(_) => panic!("no data and no overrun"),
                    Ok(Err(SocketError::Overrun)) => {
                        overrun = true;
                        break;
                    }
                    Ok(Err(e)) => panic!("{e}"),
                    Ok(Ok(())) => {}
                }
            }
            // The socket still serves a complete dump (notifications still
            // queued from the flood come first; they name the same entries).
            // With a buffer this small the kernel may report ENOBUFS again
            // while it cannot queue the next part of the dump; the dump goes
            // on when we read.
            sock.request_dump(Dump::Neighbors).unwrap();
            let mut dumped: HashSet<IpAddr> = HashSet::new();
            let drain = async {
                loop {
                    batch.clear();
                    match sock.recv(&mut batch).await {
                        Ok(()) | Err(SocketError::Overrun) => {}
                        Err(e) => panic!("{e}"),
                    }
                    for m in batch.drain(..) {
                        match m.unwrap() {
                            KernelMessage::Neigh(e) if e.state == nud::PERMANENT => {
                                dumped.insert(e.dst);
                            }
                            KernelMessage::DumpDone => return,
                            _ => {}
                        }
                    }
                }
            };
            tokio::time::timeout(WAIT, drain).await.unwrap();
            (overrun, dumped.len())
        })
    });
    assert!(overrun, "flooding an 8 KiB buffer must report an overrun");
    assert_eq!(dumped, 5000);
}
