//! The I/O of the passes: reads each pass's view (links, addresses, member
//! tables), runs its plan (neighbor adds and probes, the settle wait) and
//! feeds the time and the results to [`Passes`], which decides.

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::stream::StreamExt;
use redis::aio::MultiplexedConnection;
use swss::Table;

use super::entries::NeighborMap;
use super::kernel::{AddOutcome, Kernel};
use super::passes::{
    needs_member_check, Action, FamilyResult, Members, PassPlan, PassTotals, PassView, Passes,
    ReadyInterface,
};
use super::probe::{probe_frame, ProbeSocket};
use super::{
    Mac, RestoreArgs, RestoreError, STATE_LAG_MEMBER_TABLE_NAME, STATE_VLAN_MEMBER_TABLE_NAME,
};

/// Neighbor adds (RTM_NEWNEIGH) and their probes in flight at once over all
/// interfaces of a pass, on the one rtnetlink socket and the one packet
/// socket. The kernel handles each add synchronously in `sendmsg`; this
/// only keeps the request queue full, so the job never waits for one
/// interface's round trip before starting another's.
pub const MAX_IN_FLIGHT: usize = 64;

/// Makes the passes over `pending` until [`Passes`] says done, on the real
/// clock. `probes` is opened by the first pass with an interface ready and
/// left to the caller, who closes it after setting the flag.
///
/// Errors: [`RestoreError`] from a link lookup, the address dump or the
/// member tables' SCAN.
pub(super) async fn restore_passes(
    ctx: &PassContext<'_>,
    probes: &mut Option<ProbeSocket>,
    pending: NeighborMap,
    args: &RestoreArgs,
) -> Result<PassTotals, RestoreError> {
    let mut passes = Passes::new(pending, args);
    loop {
        match passes.poll(Instant::now()) {
            Action::Done => return Ok(passes.finish()),
            Action::Sleep(until) => {
                tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
            }
            Action::Pass(pass) => {
                let view = ctx.view(pass, passes.pending()).await?;
                let mut plan = passes.plan(&view);
                if probes.is_none() && !plan.ready.is_empty() {
                    match ProbeSocket::open() {
                        Ok(s) => *probes = Some(s),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot open packet socket; retrying next pass");
                            plan.ready.clear();
                        }
                    }
                }
                let results = match probes.as_ref() {
                    Some(sock) => run_pass(ctx, sock, &plan, passes.pending()).await,
                    None => {
                        if plan.settle_now {
                            settle(ctx.settle).await;
                        }
                        Vec::new()
                    }
                };
                passes.finish_pass(results, Instant::now());
            }
        }
    }
}

async fn settle(d: Duration) {
    tracing::info!(
        settle_s = d.as_secs_f64(),
        "first member interface up; settling"
    );
    tokio::time::sleep(d).await;
}

pub(super) struct PassContext<'a> {
    pub(super) kernel: &'a Kernel,
    pub(super) state: MultiplexedConnection,
    pub(super) state_sep: char,
    pub(super) settle: Duration,
}

impl PassContext<'_> {
    /// One SCAN per member table (STATE_DB `VLAN_MEMBER_TABLE|*`,
    /// `LAG_MEMBER_TABLE|*`).
    async fn members(&self) -> Result<Members, RestoreError> {
        let mut conn = self.state.clone();
        let sep = self.state_sep;
        let vlan = Table::new(STATE_VLAN_MEMBER_TABLE_NAME, sep)
            .keys(&mut conn)
            .await?;
        let lag = Table::new(STATE_LAG_MEMBER_TABLE_NAME, sep)
            .keys(&mut conn)
            .await?;
        Ok(Members {
            vlan: vlan.into_iter().collect(),
            lag: lag.into_iter().collect(),
            sep,
        })
    }

    /// What pass `pass` sees: the links of the `pending` interfaces, the
    /// member tables when [`needs_member_check`] says so, the first
    /// addresses.
    ///
    /// Errors: [`RestoreError`] from rtnetlink or STATE_DB.
    async fn view(&self, pass: u32, pending: &NeighborMap) -> Result<PassView, RestoreError> {
        let links = self.kernel.links(pending.keys()).await?;
        let members = if needs_member_check(pending, &links) {
            Some(self.members().await?)
        } else {
            None
        };
        let addrs = self.kernel.first_addresses().await?;
        tracing::debug!(
            pass,
            links = links.len(),
            addresses = addrs.len(),
            "pass: links and addresses read"
        );
        Ok(PassView {
            links,
            addrs,
            members,
        })
    }
}

/// Runs `plan`: every neighbor of every ready family is added as NUD_STALE
/// and then probed, [`MAX_IN_FLIGHT`] at a time over all interfaces; the
/// interfaces marked `after_settle` start after the one-time settle (which
/// runs alongside the others).
async fn run_pass(
    ctx: &PassContext<'_>,
    probes: &ProbeSocket,
    plan: &PassPlan,
    pending: &NeighborMap,
) -> Vec<FamilyResult> {
    let down: Vec<AtomicBool> = plan.ready.iter().map(|_| AtomicBool::new(false)).collect();
    let group = |after_settle: bool| {
        plan.ready
            .iter()
            .enumerate()
            .filter(move |(_, i)| i.after_settle == after_settle)
    };
    let now = restore_group(ctx.kernel, probes, pending, group(false), &down);
    let later = async {
        if plan.settle_now {
            settle(ctx.settle).await;
        }
        restore_group(ctx.kernel, probes, pending, group(true), &down).await
    };
    let (mut results, after_settle) = futures::future::join(now, later).await;
    results.extend(after_settle);
    results
}

/// Outcome of one neighbor.
enum Outcome {
    Restored,
    Failed,
    NetDown,
}

async fn restore_group<'a>(
    kernel: &Kernel,
    probes: &ProbeSocket,
    pending: &NeighborMap,
    ifaces: impl Iterator<Item = (usize, &'a ReadyInterface)>,
    down: &[AtomicBool],
) -> Vec<FamilyResult> {
    let mut results = Vec::new();
    let mut families = Vec::new();
    for (i, iface) in ifaces {
        for (family, src_ip) in &iface.families {
            families.push((i, iface, *family, *src_ip, results.len()));
            results.push(FamilyResult {
                ifname: iface.ifname.clone(),
                family: *family,
                restored: 0,
                failed: 0,
                net_down: false,
            });
        }
    }
    let jobs = families
        .into_iter()
        .flat_map(|(i, iface, family, src_ip, slot)| {
            pending
                .get(&iface.ifname)
                .and_then(|f| f.get(&family))
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(move |(ip, mac)| (i, iface, src_ip, *ip, *mac, slot))
        });
    let mut outcomes = futures::stream::iter(jobs)
        .map(|(i, iface, src_ip, ip, mac, slot)| async move {
            // Nothing more goes to an interface once it said ENETDOWN.
            let out = match down.get(i) {
                Some(d) if d.load(Ordering::Relaxed) => Outcome::NetDown,
                _ => restore_neighbor(kernel, probes, iface, src_ip, ip, mac).await,
            };
            if let (Outcome::NetDown, Some(d)) = (&out, down.get(i)) {
                d.store(true, Ordering::Relaxed);
            }
            (slot, out)
        })
        .buffer_unordered(MAX_IN_FLIGHT);
    while let Some((slot, out)) = outcomes.next().await {
        let Some(r) = results.get_mut(slot) else {
            continue;
        };
        match out {
            Outcome::Restored => r.restored += 1,
            Outcome::Failed => r.failed += 1,
            Outcome::NetDown => r.net_down = true,
        }
    }
    results
}

/// One neighbor: RTM_NEWNEIGH (NUD_STALE; `EEXIST` is fine), then one ARP
/// who-has / NS from the interface.
async fn restore_neighbor(
    kernel: &Kernel,
    probes: &ProbeSocket,
    iface: &ReadyInterface,
    src_ip: IpAddr,
    ip: IpAddr,
    mac: Mac,
) -> Outcome {
    let ifname = iface.ifname.as_str();
    // (The MAC text is only built when the line is logged.)
    use sonic_netlink::fmt::mac_to_string;
    match kernel.add_stale(iface.ifindex, ip, &mac).await {
        Ok(AddOutcome::Added) => {
            tracing::debug!(ifname, %ip, mac = %mac_to_string(&mac), "neighbor added as STALE");
        }
        Ok(AddOutcome::Existed) => {
            tracing::debug!(
                ifname,
                %ip,
                mac = %mac_to_string(&mac),
                "neighbor already in the kernel"
            );
        }
        Err(e) => {
            tracing::warn!(
                ifname,
                %ip,
                mac = %mac_to_string(&mac),
                error = %e,
                "kernel refused neighbor; skipped"
            );
            return Outcome::Failed;
        }
    }
    let sent = match probe_frame(iface.mac, src_ip, ip) {
        Ok(frame) => probes.send(iface.ifindex, &frame).await,
        Err(e) => Err(io::Error::other(e)),
    };
    match sent {
        Ok(()) => Outcome::Restored,
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENETDOWN as i32) => Outcome::NetDown,
        Err(e) => {
            tracing::warn!(ifname, %ip, error = %e, "cannot send probe");
            Outcome::Failed
        }
    }
}
