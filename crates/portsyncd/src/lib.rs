//! Rust portsyncd for SONiC, wire-compatible with sonic-swss (docs/behavior.md d).
//!
//! Pipeline:
//! 1. CONFIG_DB `PORT|*` is copied verbatim to APPL_DB `PORT_TABLE` by a
//!    ProducerStateTable, followed by `PortConfigDone` (cold start only;
//!    [`sync::port_config_ops`]).
//! 2. Kernel RTM_NEWLINK/RTM_DELLINK messages ([`sonic_netlink::LinkEvent`])
//!    and APPL_DB `PORT_TABLE:<port>` presence go through the pure state
//!    machine [`sync::PortSync`], which returns STATE_DB `PORT_TABLE|<port>`
//!    writes ([`sync::StateAction`]).
//! 3. Once every configured port has been seen, APPL_DB `PORT_TABLE:PortInitDone`
//!    is written once ([`sync::PortSync::take_port_init_done`]).
//!
//! The running daemon is [`core::PortCore`] (every decision, no I/O) on the
//! shared engine ([`sonic_daemon::engine`]), with [`effects::PortEffects`]
//! doing the Redis work and [`daemon`] the start-up; `main.rs` parses the
//! command line.

#![warn(missing_docs)]

pub mod audit;
pub mod cli;
pub mod core;
pub mod daemon;
pub mod effects;
pub mod error;
pub mod sync;
pub mod writer;
