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
//! `main.rs` holds the I/O wiring around this core.

#![warn(missing_docs)]

pub mod audit;
pub mod cli;
pub mod daemon;
pub mod sync;
