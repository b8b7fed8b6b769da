//! An async rtnetlink (`NETLINK_ROUTE`) socket on tokio, and the wire decoder
//! that turns received datagrams into typed [`KernelMessage`]s.
//!
//! One [`NetlinkSocket`] per purpose: join the multicast groups
//! ([`RTNLGRP_NEIGH`], [`RTNLGRP_LINK`]), request a dump, then call
//! [`NetlinkSocket::recv`] in a loop. Each `recv` returns one *batch*: every
//! datagram that was waiting when the socket became readable (bounded by
//! [`MAX_DATAGRAMS_PER_BATCH`] and [`MAX_MESSAGES_PER_BATCH`]), so a burst of
//! kernel events, or a dump, is handed on in a few large batches and the caller can flush Redis once per batch
//! (docs/behavior.md f.3).
//!
//! Lost events are reported, never swallowed: ENOBUFS (the receive buffer
//! overflowed, multicast events were dropped by the kernel) comes back as
//! [`SocketError::Overrun`]; the caller re-dumps and reconciles
//! (docs/behavior.md f.5).

use std::io;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    parse_i32, parse_string, parse_u32, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NlaBuffer, NlasIterator, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN,
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkHeader as NlLinkHeader, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourHeader, NeighbourMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use nix::sys::socket::{getsockopt, setsockopt, sockopt, MsgFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::link::{link_event, LinkHeader};
use crate::neigh::{neigh_event, NeighHeader};
use crate::{DecodeError, LinkEvent, LinkMsgType, NeighMsgType, NeighborEvent};

/// `RTNLGRP_LINK`: RTM_NEWLINK / RTM_DELLINK notifications (portsyncd, and
/// neighsyncd's ifindex -> name map).
pub const RTNLGRP_LINK: u32 = 1;
/// `RTNLGRP_NEIGH`: RTM_NEWNEIGH / RTM_DELNEIGH notifications (neighsyncd).
pub const RTNLGRP_NEIGH: u32 = 3;

/// `RTM_NEWLINK` message type.
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_DELLINK` message type.
pub const RTM_DELLINK: u16 = 17;
/// `RTM_NEWNEIGH` message type.
pub const RTM_NEWNEIGH: u16 = 28;
/// `RTM_DELNEIGH` message type.
pub const RTM_DELNEIGH: u16 = 29;
/// `RTM_GETNEIGH` message type.
pub const RTM_GETNEIGH: u16 = 30;

/// Size of the reusable receive buffer, bytes. Kernel dump datagrams are at
/// most 32 KiB and notifications are single messages, so this never
/// truncates in practice; a truncated datagram is still detected
/// (`MSG_TRUNC`) and reported as [`DecodeError::Malformed`].
pub const RECV_BUFFER_BYTES: usize = 1 << 20;

/// Upper bound on datagrams read by one [`NetlinkSocket::recv`] call, so a
/// never-ending event storm still yields batches to the caller.
pub const MAX_DATAGRAMS_PER_BATCH: usize = 1024;

/// Upper bound (soft: checked between datagrams) on messages appended by
/// one [`NetlinkSocket::recv`] call. A 100k-neighbour dump arrives in a few
/// hundred datagrams of a few hundred messages each; without this bound it
/// would come back as one batch of 100k decoded messages, megabytes that
/// the caller's reused `Vec` would then keep for good.
pub const MAX_MESSAGES_PER_BATCH: usize = 2048;

/// The receive-buffer size SONiC's C++ daemons ask for (16 MiB,
/// `NetLink::NetLink` in netlink.cpp).
pub const DEFAULT_RCVBUF_BYTES: usize = 16 << 20;

/// One decoded netlink message, or why it could not be decoded (log it with
/// context and go on with the next one).
pub type Received = Result<KernelMessage, DecodeError>;

/// A netlink message from the kernel, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelMessage {
    /// RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH of family AF_INET or
    /// AF_INET6 (notification or dump reply).
    Neigh(NeighborEvent),
    /// RTM_NEWLINK / RTM_DELLINK, any family (AF_BRIDGE ones are bridge-port
    /// notifications; see [`crate::LinkTable`]).
    Link(LinkEvent),
    /// `NLMSG_DONE` with status 0: the dump requested with
    /// [`NetlinkSocket::request_dump`] is complete and consistent.
    DumpDone,
    /// The dump request failed or its result cannot be trusted; no
    /// [`KernelMessage::DumpDone`] follows. `errno` is positive:
    /// * from an `NLMSG_ERROR` reply to the request (e.g. `EBUSY` when a
    ///   dump is already in flight on this socket);
    /// * from an `NLMSG_DONE` carrying an error;
    /// * `EINTR` (only from [`NetlinkSocket::recv`]) when the kernel flagged a
    ///   message of this dump `NLM_F_DUMP_INTR`: the table changed during the
    ///   dump, the entries received are valid but some may be missing. Dump
    ///   again.
    DumpFailed {
        /// Positive errno value (`libc::EBUSY`, ...).
        errno: i32,
    },
    /// A message the daemons do not use; the text says which kind
    /// (`"non-IP neighbor (AF_BRIDGE FDB, ...)"`, `"ack"`, ...).
    Ignored(&'static str),
}

/// Errors of the socket itself (not of one message).
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// A system call failed; `op` names it (`"socket"`, `"bind"`,
    /// `"join group"`, `"send dump request"`, `"recv"`, ...).
    #[error("netlink socket {op}: {source}")]
    Io {
        /// The operation that failed, e.g. `"recv"`.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `recv` failed with ENOBUFS: the receive buffer overflowed and the
    /// kernel dropped notifications. The events are lost; the socket stays
    /// usable. The caller must re-dump and reconcile. Messages decoded
    /// before the overrun was seen are still in `out`.
    ///
    /// If a dump is in flight it is *not* aborted: wait for its
    /// `DumpDone`/`DumpFailed`, then request the re-dump (a request while
    /// one runs is refused with `EBUSY`). The kernel also reports ENOBUFS
    /// when the buffer is too full to queue the next part of a dump; no dump
    /// entry is lost then (the dump resumes as the caller reads), but the
    /// caller cannot tell the two cases apart.
    #[error("netlink receive buffer overrun (ENOBUFS): events were lost")]
    Overrun,
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> SocketError {
    move |source| SocketError::Io { op, source }
}

fn errno_err(op: &'static str) -> impl FnOnce(Errno) -> SocketError {
    move |e| SocketError::Io {
        op,
        source: io::Error::from(e),
    }
}

/// How to size the socket receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcvBuf {
    /// `SO_RCVBUFFORCE` (ignores `net.core.rmem_max`, needs CAP_NET_ADMIN);
    /// when that is not permitted, fall back to `SO_RCVBUF` (capped by
    /// `rmem_max`). Which one worked is logged. Bytes requested; the kernel
    /// doubles the value for its bookkeeping.
    Force(usize),
    /// Plain `SO_RCVBUF` only, as the C++ `NetLink` does (capped by
    /// `rmem_max`). Tests use it to get a really small buffer.
    Exact(usize),
    /// Leave the kernel default (`net.core.rmem_default`).
    KernelDefault,
}

/// What to dump with [`NetlinkSocket::request_dump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// `RTM_GETLINK`, AF_UNSPEC, `NLM_F_DUMP`: every link, as RTM_NEWLINK.
    Links,
    /// `RTM_GETNEIGH`, AF_UNSPEC, `NLM_F_DUMP`: every neighbor of every
    /// family (AF_BRIDGE FDB entries come back as
    /// [`KernelMessage::Ignored`]), as RTM_NEWNEIGH.
    Neighbors,
}

/// An rtnetlink route socket registered with the tokio reactor.
///
/// Not `Clone`: one reader. Must be opened inside a tokio runtime with IO
/// enabled (`AsyncFd`).
pub struct NetlinkSocket {
    /// `None` only after a failed re-registration ([`NetlinkSocket::recv`]
    /// then fails).
    fd: Option<Registration>,
    buf: Vec<u8>,
    seq: u32,
    rcvbuf_bytes: usize,
    dump_interrupted: bool,
}

impl std::fmt::Debug for NetlinkSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetlinkSocket")
            .field("fd", &self.socket().map(|s| s.as_raw_fd()))
            .field("seq", &self.seq)
            .field("rcvbuf_bytes", &self.rcvbuf_bytes)
            .finish()
    }
}

impl NetlinkSocket {
    /// Open a `NETLINK_ROUTE` socket, bind it (kernel-assigned port id),
    /// join `groups` (`RTNLGRP_*` numbers, not bitmasks) and size the
    /// receive buffer with [`RcvBuf::Force`]`(rcvbuf_bytes)`.
    ///
    /// Errors: [`SocketError::Io`] when a system call fails (joining a group,
    /// registering with tokio outside a runtime, ...).
    pub fn open(groups: &[u32], rcvbuf_bytes: usize) -> Result<Self, SocketError> {
        Self::open_with(groups, RcvBuf::Force(rcvbuf_bytes))
    }

    /// As [`NetlinkSocket::open`], choosing how the receive buffer is sized.
    pub fn open_with(groups: &[u32], rcvbuf: RcvBuf) -> Result<Self, SocketError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(io_err("socket"))?;
        match rcvbuf {
            RcvBuf::Force(n) => match setsockopt(&sock, sockopt::RcvBufForce, &n) {
                Ok(()) => tracing::info!(
                    requested = n,
                    "netlink receive buffer set with SO_RCVBUFFORCE"
                ),
                Err(e) => {
                    setsockopt(&sock, sockopt::RcvBuf, &n)
                        .map_err(errno_err("setsockopt SO_RCVBUF"))?;
                    tracing::warn!(
                        requested = n,
                        error = %e,
                        "SO_RCVBUFFORCE not permitted, used SO_RCVBUF (capped by net.core.rmem_max)"
                    );
                }
            },
            RcvBuf::Exact(n) => {
                setsockopt(&sock, sockopt::RcvBuf, &n)
                    .map_err(errno_err("setsockopt SO_RCVBUF"))?;
            }
            RcvBuf::KernelDefault => {}
        }
        let rcvbuf_bytes =
            getsockopt(&sock, sockopt::RcvBuf).map_err(errno_err("getsockopt SO_RCVBUF"))?;
        tracing::info!(rcvbuf_bytes, "netlink receive buffer effective size");
        sock.bind_auto().map_err(io_err("bind"))?;
        for g in groups {
            sock.add_membership(*g).map_err(io_err("join group"))?;
        }
        sock.set_non_blocking(true)
            .map_err(io_err("set nonblocking"))?;
        let fd = register(sock)?;
        Ok(NetlinkSocket {
            fd: Some(Registration::Active(fd)),
            buf: vec![0u8; RECV_BUFFER_BYTES],
            seq: 0,
            rcvbuf_bytes,
            dump_interrupted: false,
        })
    }

    /// Takes the socket out of the reactor (epoll) until the next
    /// [`NetlinkSocket::recv`]: arriving datagrams then queue in the kernel
    /// socket buffer without waking the thread at all. (Registered, every
    /// datagram ends an `epoll_wait`, whether or not anyone reads.) For a
    /// caller that does not want to read for a while, e.g. while its write
    /// of what it read is in flight, so that a storm is read in large
    /// batches. Cheap: one `epoll_ctl` now and one when reading resumes.
    pub fn pause(&mut self) {
        self.fd = match self.fd.take() {
            Some(Registration::Active(fd)) => Some(Registration::Paused(fd.into_inner())),
            other => other,
        };
    }

    /// Registers the socket with the reactor again after
    /// [`NetlinkSocket::pause`]; nothing to do when registered.
    fn resume(&mut self) -> Result<(), SocketError> {
        self.fd = match self.fd.take() {
            Some(Registration::Paused(sock)) => Some(Registration::Active(register(sock)?)),
            other => other,
        };
        Ok(())
    }

    /// The socket, registered or paused.
    fn socket(&self) -> Option<&Socket> {
        match self.fd.as_ref()? {
            Registration::Active(fd) => Some(fd.get_ref()),
            Registration::Paused(sock) => Some(sock),
        }
    }

    /// The effective receive buffer in bytes, as read back with
    /// `getsockopt(SO_RCVBUF)` (the kernel reports twice the requested
    /// value).
    pub fn rcvbuf_bytes(&self) -> usize {
        self.rcvbuf_bytes
    }

    /// Send a dump request (`NLM_F_REQUEST | NLM_F_DUMP`, family AF_UNSPEC).
    /// The replies arrive through [`NetlinkSocket::recv`] as
    /// `RTM_NEWLINK`/`RTM_NEWNEIGH` entries followed by
    /// [`KernelMessage::DumpDone`] (or [`KernelMessage::DumpFailed`]).
    ///
    /// Only one dump can be in flight per socket: the kernel answers a second
    /// request with `EBUSY` (as `DumpFailed { errno: EBUSY }`). Wait for
    /// `DumpDone`/`DumpFailed` before requesting the next dump. Multicast
    /// notifications keep arriving interleaved with the dump replies.
    ///
    /// Errors: [`SocketError::Io`] when the send fails.
    pub fn request_dump(&mut self, what: Dump) -> Result<(), SocketError> {
        self.seq = self.seq.wrapping_add(1);
        let inner = match what {
            Dump::Links => RouteNetlinkMessage::GetLink(LinkMessage::default()),
            Dump::Neighbors => RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
        };
        let bytes = encode(inner, NLM_F_REQUEST | NLM_F_DUMP, self.seq);
        self.dump_interrupted = false;
        let Some(sock) = self.socket() else {
            return Err(unregistered());
        };
        let sent = sock
            .send_to(&bytes, &SocketAddr::new(0, 0), 0)
            .map_err(io_err("send dump request"))?;
        if sent != bytes.len() {
            return Err(SocketError::Io {
                op: "send dump request",
                source: io::Error::new(io::ErrorKind::WriteZero, "short send"),
            });
        }
        Ok(())
    }

    /// Wait until the socket is readable, then read every datagram already
    /// queued without blocking (until `EAGAIN`, at most
    /// [`MAX_DATAGRAMS_PER_BATCH`] datagrams, and no further datagram once
    /// [`MAX_MESSAGES_PER_BATCH`] messages were appended) and append one [`Received`] per netlink
    /// message to `out` (which is not cleared). One burst gives one batch.
    ///
    /// Errors:
    /// * [`SocketError::Overrun`] on ENOBUFS: notifications were lost. The
    ///   entries already appended to `out` are valid; the socket stays
    ///   usable; the caller must re-dump.
    /// * [`SocketError::Io`] for any other receive failure.
    ///
    /// Cancel safe: a datagram is either fully decoded into `out` or still
    /// queued in the kernel.
    pub async fn recv(&mut self, out: &mut Vec<Received>) -> Result<(), SocketError> {
        let flags = (MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT).bits();
        self.resume()?;
        let Some(Registration::Active(fd)) = self.fd.as_ref() else {
            return Err(unregistered());
        };
        loop {
            let mut guard = fd.readable().await.map_err(io_err("poll"))?;
            let mut datagrams = 0usize;
            let start_len = out.len();
            while datagrams < MAX_DATAGRAMS_PER_BATCH
                && out.len() - start_len < MAX_MESSAGES_PER_BATCH
            {
                let mut slice: &mut [u8] = &mut self.buf[..];
                match guard.get_inner().recv_from(&mut slice, flags) {
                    Ok((len, from)) => {
                        datagrams += 1;
                        if from.port_number() != 0 {
                            out.push(Ok(KernelMessage::Ignored("datagram not from the kernel")));
                            continue;
                        }
                        let avail = len.min(self.buf.len());
                        if len > avail {
                            out.push(Err(DecodeError::Malformed(format!(
                                "netlink datagram of {len} bytes truncated to {avail}"
                            ))));
                        }
                        let data = self.buf.get(..avail).unwrap_or_default();
                        decode_into(data, out, &mut self.dump_interrupted);
                    }
                    Err(e) => match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
                        Errno::EINTR => continue,
                        Errno::EAGAIN => {
                            guard.clear_ready();
                            break;
                        }
                        Errno::ENOBUFS => {
                            tracing::warn!(
                                rcvbuf_bytes = self.rcvbuf_bytes,
                                "netlink overrun (ENOBUFS): kernel events were lost"
                            );
                            return Err(SocketError::Overrun);
                        }
                        _ => {
                            return Err(SocketError::Io {
                                op: "recv",
                                source: e,
                            })
                        }
                    },
                }
            }
            if datagrams > 0 {
                return Ok(());
            }
        }
    }
}

/// The socket, registered with the tokio reactor or taken out of it
/// ([`NetlinkSocket::pause`]).
enum Registration {
    Active(AsyncFd<Socket>),
    Paused(Socket),
}

/// Registers `sock` with the tokio reactor for readability.
fn register(sock: Socket) -> Result<AsyncFd<Socket>, SocketError> {
    #[allow(unsafe_code)]
    // SAFETY: `netlink_sys::Socket` owns its fd: it stays open until the
    // Socket is dropped, which only happens when the AsyncFd drops it (or
    // after `into_inner` hands it back, which deregisters it first).
    // `as_raw_fd` always returns that same fd, and this module never
    // replaces or clones the inner Socket (no get_mut, no clone).
    let registered = unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) };
    registered.map_err(|e| SocketError::Io {
        op: "register with tokio",
        source: io::Error::from(e),
    })
}

/// The error of a socket whose re-registration failed earlier.
fn unregistered() -> SocketError {
    SocketError::Io {
        op: "use",
        source: io::Error::new(
            io::ErrorKind::NotConnected,
            "netlink socket lost after a failed re-registration",
        ),
    }
}

/// Serialize one rtnetlink message with the given `nlmsg_flags` and
/// sequence number (what [`NetlinkSocket::request_dump`] sends; tests use it
/// to build kernel-like datagrams for [`decode_message`]).
pub fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut bytes = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut bytes);
    bytes
}

/// Decode one received datagram (one or more netlink messages) into one
/// [`Received`] per message. Never panics, whatever the input (fuzzed).
///
/// A message whose own length field is usable but whose content is bad
/// gives one `Err` entry and decoding goes on with the next message; a
/// length field that is impossible (shorter than a header, past the end)
/// gives one [`DecodeError::Malformed`] and ends the datagram.
///
/// `NLM_F_DUMP_INTR` turns the `NLMSG_DONE` into
/// `DumpFailed { errno: EINTR }` when both are in this datagram; across
/// datagrams only [`NetlinkSocket::recv`], which sees the whole dump, can.
pub fn decode_message(bytes: &[u8]) -> Vec<Received> {
    let mut out = Vec::new();
    let mut intr = false;
    decode_into(bytes, &mut out, &mut intr);
    out
}

/// Decode a datagram, appending to `out`. `dump_intr` remembers an
/// `NLM_F_DUMP_INTR` seen since the dump started; the `NLMSG_DONE` then
/// becomes `DumpFailed { errno: EINTR }`.
fn decode_into(bytes: &[u8], out: &mut Vec<Received>, dump_intr: &mut bool) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let nl = match NetlinkBuffer::new_checked(rest) {
            Ok(nl) => nl,
            Err(e) => {
                out.push(Err(DecodeError::Malformed(format!(
                    "netlink header at offset {}: {e}",
                    bytes.len() - rest.len()
                ))));
                return;
            }
        };
        // new_checked guarantees NETLINK_HEADER_LEN <= length <= rest.len().
        let len = nl.length() as usize;
        let payload = rest.get(NETLINK_HEADER_LEN..len).unwrap_or_default();
        let msg_type = nl.message_type();
        if nl.flags() & NLM_F_DUMP_INTR != 0 {
            *dump_intr = true;
        }
        let mut msg = decode_one(msg_type, payload, dump_intr);
        if let Ok(KernelMessage::Neigh(ev)) = &mut msg {
            ev.dump = nl.sequence_number() != 0;
        }
        out.push(msg);
        let next = len.saturating_add(3) & !3;
        rest = rest.get(next..).unwrap_or_default();
    }
}

fn decode_one(msg_type: u16, payload: &[u8], dump_intr: &mut bool) -> Received {
    match msg_type {
        RTM_NEWNEIGH => decode_neigh_wire(NeighMsgType::New, payload),
        RTM_DELNEIGH => decode_neigh_wire(NeighMsgType::Del, payload),
        RTM_GETNEIGH => decode_neigh_wire(NeighMsgType::Get, payload),
        RTM_NEWLINK => decode_link_wire(LinkMsgType::New, payload).map(KernelMessage::Link),
        RTM_DELLINK => decode_link_wire(LinkMsgType::Del, payload).map(KernelMessage::Link),
        NLMSG_DONE => {
            // The kernel may send a zero-length NLMSG_DONE payload.
            let code = match payload.get(..4) {
                None => 0,
                Some(c) => {
                    parse_i32(c).map_err(|e| DecodeError::Malformed(format!("NLMSG_DONE: {e}")))?
                }
            };
            let intr = std::mem::take(dump_intr);
            if code != 0 {
                Ok(KernelMessage::DumpFailed {
                    errno: code.saturating_abs(),
                })
            } else if intr {
                Ok(KernelMessage::DumpFailed {
                    errno: Errno::EINTR as i32,
                })
            } else {
                Ok(KernelMessage::DumpDone)
            }
        }
        NLMSG_ERROR => {
            let code = payload
                .get(..4)
                .ok_or_else(|| {
                    DecodeError::Malformed("NLMSG_ERROR shorter than its error code".into())
                })
                .and_then(|c| {
                    parse_i32(c).map_err(|e| DecodeError::Malformed(format!("NLMSG_ERROR: {e}")))
                })?;
            if code == 0 {
                Ok(KernelMessage::Ignored("ack"))
            } else {
                *dump_intr = false;
                Ok(KernelMessage::DumpFailed {
                    errno: code.saturating_abs(),
                })
            }
        }
        NLMSG_NOOP => Ok(KernelMessage::Ignored("NLMSG_NOOP")),
        NLMSG_OVERRUN => Ok(KernelMessage::Ignored("NLMSG_OVERRUN")),
        _ => Ok(KernelMessage::Ignored("message type not handled")),
    }
}

/// Size of `struct nlmsghdr`.
const NETLINK_HEADER_LEN: usize = 16;

/// The value of one attribute, borrowed from the datagram (NlaBuffer::value
/// borrows from the NlaBuffer itself, too short-lived for our use).
fn nla_value(nla: NlaBuffer<&[u8]>) -> &[u8] {
    let len = usize::from(nla.length());
    // new_checked (in NlasIterator) guarantees 4 <= length <= buffer length.
    nla.into_inner().get(4..len).unwrap_or_default()
}

const NDMSG_LEN: usize = 12;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;

fn decode_neigh_wire(msg_type: NeighMsgType, payload: &[u8]) -> Received {
    let header = NeighbourHeader::parse(payload)
        .map_err(|e| DecodeError::Malformed(format!("{}: {e}", msg_type.rtm_name())))?;
    let h = NeighHeader {
        family: u8::from(header.family),
        ifindex: header.ifindex,
        state: u16::from(header.state),
        flags: header.flags.bits(),
    };
    if h.family != crate::neigh::AF_INET && h.family != crate::neigh::AF_INET6 {
        return Ok(KernelMessage::Ignored(
            "non-IP neighbor (AF_BRIDGE FDB, ...)",
        ));
    }
    let mut dst = None;
    let mut lladdr = None;
    for nla in NlasIterator::new(payload.get(NDMSG_LEN..).unwrap_or_default()) {
        let nla = nla.map_err(|e| {
            DecodeError::Malformed(format!(
                "{} ifindex {}: attributes: {e}",
                msg_type.rtm_name(),
                h.ifindex
            ))
        })?;
        match nla.kind() {
            NDA_DST => dst = Some(nla_value(nla)),
            NDA_LLADDR => lladdr = Some(nla_value(nla)),
            _ => {}
        }
    }
    Ok(match neigh_event(msg_type, h, dst, lladdr)? {
        Some(ev) => KernelMessage::Neigh(ev),
        None => KernelMessage::Ignored("non-IP neighbor (AF_BRIDGE FDB, ...)"),
    })
}

const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;

fn decode_link_wire(msg_type: LinkMsgType, payload: &[u8]) -> Result<LinkEvent, DecodeError> {
    let header = NlLinkHeader::parse(payload)
        .map_err(|e| DecodeError::Malformed(format!("{}: {e}", msg_type.rtm_name())))?;
    let h = LinkHeader {
        family: u8::from(header.interface_family),
        ifindex: header.index,
        flags: header.flags.bits(),
    };
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        DecodeError::Malformed(format!(
            "{} ifindex {}: {what}: {e}",
            msg_type.rtm_name(),
            h.ifindex
        ))
    };
    let mut name = None;
    let mut mtu = None;
    let mut master = None;
    let mut kind = None;
    for nla in NlasIterator::new(payload.get(IFINFOMSG_LEN..).unwrap_or_default()) {
        let nla = nla.map_err(|e| bad("attributes", &e))?;
        match nla.kind() {
            IFLA_IFNAME => {
                name = Some(parse_string(nla.value()).map_err(|e| bad("IFLA_IFNAME", &e))?)
            }
            IFLA_MTU => mtu = Some(parse_u32(nla.value()).map_err(|e| bad("IFLA_MTU", &e))?),
            IFLA_MASTER => {
                master = Some(parse_u32(nla.value()).map_err(|e| bad("IFLA_MASTER", &e))?)
            }
            IFLA_LINKINFO => {
                for info in NlasIterator::new(nla.value()) {
                    let info = info.map_err(|e| bad("IFLA_LINKINFO", &e))?;
                    if info.kind() == IFLA_INFO_KIND {
                        kind = Some(
                            parse_string(info.value()).map_err(|e| bad("IFLA_INFO_KIND", &e))?,
                        );
                    }
                }
            }
            _ => {}
        }
    }
    link_event(msg_type, h, name, mtu, master, kind)
}
