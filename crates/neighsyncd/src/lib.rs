//! neighsyncd: keeps APPL_DB `NEIGH_TABLE` equal to the kernel's IPv4/IPv6
//! neighbour table, wire-compatible with sonic-swss neighsyncd
//! (`docs/behavior.md` section b).
//!
//! The pipeline:
//!
//! ```text
//! kernel (RTM_NEWNEIGH/RTM_DELNEIGH, dump + RTNLGRP_NEIGH)
//!   -> decode (sonic_netlink::neigh -> NeighborEvent)
//!   -> decide (sync::decide, pure; reads a context::SyncContext kept current
//!      from CONFIG_DB PEER_SWITCH, VXLAN_EVPN_NVO and the *INTERFACE tables)
//!   -> Outcome: NeighOp Set/Del (+ EVPN ROUTE_TABLE delete) or a DropReason
//!   -> warm-restart cache or writer (ProducerStateTable)
//!   -> APPL_DB NEIGH_TABLE
//! ```
//!
//! [`context`], [`sync`], [`writer`] and [`core`] do no I/O; [`daemon`]
//! carries out what the core asks for, through the shared driver
//! ([`sonic_daemon::engine`]).

#![warn(missing_docs)]

pub mod audit;
pub mod cli;
mod compact;
pub mod context;
pub mod core;
pub mod daemon;
pub mod error;
pub mod failed;
pub mod restore;
pub mod sync;
pub mod warm;
pub mod writer;
