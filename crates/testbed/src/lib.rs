//! Test support for the integration tests: real parts only.
//!
//! * [`redis_server`]: a private `redis-server` per test on a unix socket in a
//!   temp dir, with `notify-keyspace-events AKE` as SONiC runs it, plus a
//!   matching database_config.json.
//! * [`netns`]: network namespaces with veth links (a DUT namespace and peer
//!   namespaces), cleaned up on drop.
//! * [`daemon`]: start a daemon binary inside a namespace and stop it.
//! * [`switch`]: SONiC link types (Vlan on a VLAN-aware bridge, bond
//!   PortChannel, sub-interface, VRF) for the VM test tier.

#![warn(missing_docs)]

pub mod daemon;
pub mod netns;
pub mod redis_server;
pub mod switch;
