//! The restore job's rtnetlink requests: links by name, the first address
//! of each family per interface, and the NUD_STALE neighbor adds.

use std::collections::HashMap;
use std::net::IpAddr;

use futures::stream::{StreamExt, TryStreamExt};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkFlags};
use netlink_packet_route::neighbour::NeighbourState;
use netlink_packet_route::AddressFamily;

use super::passes::LinkState;
use super::{Mac, RestoreError, MAX_IN_FLIGHT};
use crate::sync::Family;

/// What [`Kernel::add_stale`] found.
pub(super) enum AddOutcome {
    /// The neighbor was created.
    Added,
    /// The kernel already had it (`EEXIST`).
    Existed,
}

/// The restore job's rtnetlink requests, on one socket.
pub(super) struct Kernel {
    /// The rtnetlink connection's handle.
    pub(super) handle: rtnetlink::Handle,
}

fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

impl Kernel {
    /// The pending interfaces' links: one RTM_GETLINK by name each,
    /// [`MAX_IN_FLIGHT`] in flight on the one socket; a name the kernel
    /// does not know (`ENODEV`) is left out. Counters are left out of the
    /// replies (`RTEXT_FILTER_SKIP_STATS`, ignored by kernels that do not
    /// know it). Not one dump of every link: the client library reads a
    /// whole dump before handing out its first message, and a parsed link
    /// message holds about 13 KB, so 1,000 links would add 13 MB to the
    /// job's peak.
    ///
    /// Errors: [`RestoreError::Netlink`] for any other failure.
    pub(super) async fn links<'a>(
        &self,
        names: impl Iterator<Item = &'a String>,
    ) -> Result<HashMap<String, LinkState>, RestoreError> {
        let mut replies = futures::stream::iter(names)
            .map(|name| async move { (name, self.link(name).await) })
            .buffer_unordered(MAX_IN_FLIGHT);
        let mut out = HashMap::new();
        while let Some((name, reply)) = replies.next().await {
            if let Some(link) = reply? {
                out.insert(name.clone(), link);
            }
        }
        Ok(out)
    }

    /// RTM_GETLINK by name. `None` when there is no such interface
    /// (`ENODEV`).
    async fn link(&self, ifname: &str) -> Result<Option<LinkState>, RestoreError> {
        let mut req = self.handle.link().get().match_name(ifname.to_string());
        req.message_mut()
            .attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let msg = match req.execute().try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) if netlink_errno(&e) == Some(nix::errno::Errno::ENODEV as i32) => {
                return Ok(None)
            }
            Err(source) => {
                return Err(RestoreError::Netlink {
                    context: format!("RTM_GETLINK {ifname}"),
                    source,
                })
            }
        };
        let mac = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(a) => <Mac>::try_from(a.as_slice()).ok(),
            _ => None,
        });
        let flags = msg.header.flags;
        Ok(Some(LinkState {
            ifindex: msg.header.index,
            mac,
            carrier: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
        }))
    }

    /// One RTM_GETADDR dump of all families: the first address of each
    /// family on each ifindex in kernel dump order (as getifaddrs /
    /// netifaces), link-local included: IFA_LOCAL if present, else
    /// IFA_ADDRESS.
    pub(super) async fn first_addresses(
        &self,
    ) -> Result<HashMap<(u32, Family), IpAddr>, RestoreError> {
        let mut dump = self.handle.address().get().execute();
        let mut out = HashMap::new();
        loop {
            let msg = match dump.try_next().await {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(out),
                Err(source) => {
                    return Err(RestoreError::Netlink {
                        context: "RTM_GETADDR dump".to_string(),
                        source,
                    })
                }
            };
            let family = match msg.header.family {
                AddressFamily::Inet => Family::IPv4,
                AddressFamily::Inet6 => Family::IPv6,
                _ => continue,
            };
            let local = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let address = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = local.or(address).filter(|ip| Family::of(ip) == family) {
                out.entry((msg.header.index, family)).or_insert(ip);
            }
        }
    }

    /// RTM_NEWNEIGH with NLM_F_CREATE | NLM_F_EXCL, state NUD_STALE, lladdr
    /// `mac`. EEXIST -> [`AddOutcome::Existed`].
    pub(super) async fn add_stale(
        &self,
        ifindex: u32,
        ip: IpAddr,
        mac: &Mac,
    ) -> Result<AddOutcome, rtnetlink::Error> {
        let res = self
            .handle
            .neighbours()
            .add(ifindex, ip)
            .link_layer_address(mac)
            .state(NeighbourState::Stale)
            .execute()
            .await;
        match res {
            Ok(()) => Ok(AddOutcome::Added),
            Err(e) if netlink_errno(&e) == Some(nix::errno::Errno::EEXIST as i32) => {
                Ok(AddOutcome::Existed)
            }
            Err(e) => Err(e),
        }
    }
}
