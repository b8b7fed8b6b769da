//! The passes, decided without I/O or a clock: what one pass restores
//! ([`plan_pass`]), what its results leave pending ([`apply_pass`]), and
//! when the next pass starts or the job is over ([`Passes`], fed with the
//! time by its driver).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::entries::NeighborMap;
use super::{
    InterfaceReport, Mac, RestoreArgs, STATE_LAG_MEMBER_TABLE_NAME, STATE_VLAN_MEMBER_TABLE_NAME,
};
use crate::sync::Family;

/// An interface as one pass's RTM_GETLINK shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// Its ifindex.
    pub ifindex: u32,
    /// IFLA_ADDRESS when it is 6 bytes.
    pub mac: Option<Mac>,
    /// `IFF_UP` and `IFF_LOWER_UP` (what `/sys/.../carrier` reading `1`
    /// means: it is unreadable while the link is admin down).
    pub carrier: bool,
}

/// STATE_DB member keys as one pass read them: `VLAN_MEMBER_TABLE` /
/// `LAG_MEMBER_TABLE` keys without the table name (`<parent>|<member>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// `VLAN_MEMBER_TABLE` keys, `<vlan>|<port>`.
    pub vlan: BTreeSet<String>,
    /// `LAG_MEMBER_TABLE` keys, `<lag>|<port>`.
    pub lag: BTreeSet<String>,
    /// STATE_DB's key separator (`|`).
    pub sep: char,
}

impl Members {
    /// Whether `keys` holds a key `<ifname><sep>...` (the script's
    /// `KEYS <table>|<ifname>|*` not empty).
    fn any(&self, keys: &BTreeSet<String>, ifname: &str) -> bool {
        let prefix = format!("{ifname}{}", self.sep);
        keys.range(prefix.clone()..)
            .next()
            .is_some_and(|k| k.starts_with(&prefix))
    }
}

/// What the kernel and STATE_DB looked like at the start of a pass.
#[derive(Debug, Clone, Default)]
pub struct PassView {
    /// The pending interfaces that exist, by name (RTM_GETLINK).
    pub links: HashMap<String, LinkState>,
    /// The first address of each family on each ifindex, in kernel dump
    /// order (one RTM_GETADDR dump of all families): IFA_LOCAL if present,
    /// else IFA_ADDRESS, link-local included (as getifaddrs / netifaces).
    pub addrs: HashMap<(u32, Family), IpAddr>,
    /// Member tables, read only when [`needs_member_check`] said so.
    pub members: Option<Members>,
}

/// Why an interface is not restored in this pass (each logged at debug
/// level, except a missing MAC: warn). It is tried again next pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// No link of that name.
    Missing,
    /// Admin down or no carrier.
    NoCarrier,
    /// `Vlan*` / `PortChannel*` without members in this STATE_DB table.
    NoMembers(&'static str),
    /// The link has no 6-byte address to send probes from.
    NoMac,
    /// No address of any family it has neighbors of.
    NoAddress,
}

impl NotReady {
    fn log(&self, ifname: &str) {
        match self {
            NotReady::Missing => tracing::debug!(ifname, "interface does not exist yet"),
            NotReady::NoCarrier => tracing::debug!(ifname, "interface carrier is down"),
            NotReady::NoMembers(table) => tracing::debug!(ifname, table, "no members yet"),
            NotReady::NoMac => {
                tracing::warn!(ifname, "interface has no Ethernet address; cannot probe")
            }
            NotReady::NoAddress => {
                tracing::debug!(ifname, "no address of its families yet; retrying next pass")
            }
        }
    }
}

/// An interface to restore in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyInterface {
    /// Its name (the NEIGH_TABLE key's).
    pub ifname: String,
    /// Its ifindex.
    pub ifindex: u32,
    /// Source MAC of the probes.
    pub mac: Mac,
    /// The families it has neighbors of and an address of (the probes'
    /// source IP), IPv4 first. Families without an address wait (debug
    /// log) for a later pass.
    pub families: Vec<(Family, IpAddr)>,
    /// A `Vlan*` / `PortChannel*` with members whose neighbors wait for
    /// the one-time settle, which this pass makes.
    pub after_settle: bool,
}

/// What one pass does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassPlan {
    /// Interfaces restored in this pass, in name order.
    pub ready: Vec<ReadyInterface>,
    /// The rest, with the reason.
    pub not_ready: Vec<(String, NotReady)>,
    /// This pass makes the one-time settle wait: the first time a
    /// `Vlan*` / `PortChannel*` interface is up with members. Only the
    /// interfaces with `after_settle` wait for it.
    pub settle_now: bool,
}

/// The member tables an interface needs members in (the script's
/// `'Vlan' in intf` / `'PortChannel' in intf`).
fn member_tables(ifname: &str) -> impl Iterator<Item = &'static str> + '_ {
    [
        ("Vlan", STATE_VLAN_MEMBER_TABLE_NAME),
        ("PortChannel", STATE_LAG_MEMBER_TABLE_NAME),
    ]
    .into_iter()
    .filter(move |(pattern, _)| ifname.contains(pattern))
    .map(|(_, table)| table)
}

/// Whether this pass must read the member tables: some pending `Vlan*` /
/// `PortChannel*` interface exists with carrier.
pub fn needs_member_check(pending: &NeighborMap, links: &HashMap<String, LinkState>) -> bool {
    pending.keys().any(|ifname| {
        member_tables(ifname).next().is_some() && links.get(ifname).is_some_and(|l| l.carrier)
    })
}

/// Decides one pass: for each pending interface, in order, it must exist,
/// have carrier, have members when it is a `Vlan*` / `PortChannel*`
/// (`view.members`; absent counts as none), have a MAC and an address of
/// at least one of its pending families. `settled` says whether the
/// one-time settle was already made.
pub fn plan_pass(pending: &NeighborMap, view: &PassView, settled: bool) -> PassPlan {
    let mut plan = PassPlan::default();
    for (ifname, families) in pending {
        let Some(link) = view.links.get(ifname) else {
            plan.not_ready.push((ifname.clone(), NotReady::Missing));
            continue;
        };
        if !link.carrier {
            plan.not_ready.push((ifname.clone(), NotReady::NoCarrier));
            continue;
        }
        let mut needs_members = false;
        let mut missing = None;
        for table in member_tables(ifname) {
            needs_members = true;
            let has = view.members.as_ref().is_some_and(|m| {
                let keys = if table == STATE_VLAN_MEMBER_TABLE_NAME {
                    &m.vlan
                } else {
                    &m.lag
                };
                m.any(keys, ifname)
            });
            if !has {
                missing = Some(table);
                break;
            }
        }
        if let Some(table) = missing {
            plan.not_ready
                .push((ifname.clone(), NotReady::NoMembers(table)));
            continue;
        }
        let after_settle = needs_members && !settled;
        plan.settle_now |= after_settle;
        let Some(mac) = link.mac else {
            plan.not_ready.push((ifname.clone(), NotReady::NoMac));
            continue;
        };
        let with_addr: Vec<(Family, IpAddr)> = families
            .keys()
            .filter_map(|f| view.addrs.get(&(link.ifindex, *f)).map(|ip| (*f, *ip)))
            .collect();
        if with_addr.is_empty() {
            plan.not_ready.push((ifname.clone(), NotReady::NoAddress));
            continue;
        }
        for f in families
            .keys()
            .filter(|f| !with_addr.iter().any(|(w, _)| w == *f))
        {
            tracing::debug!(
                ifname,
                family = %f,
                "no address of this family yet; retrying next pass"
            );
        }
        plan.ready.push(ReadyInterface {
            ifname: ifname.clone(),
            ifindex: link.ifindex,
            mac,
            families: with_addr,
            after_settle,
        });
    }
    plan
}

/// What a pass did for one family of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyResult {
    /// The interface.
    pub ifname: String,
    /// The family.
    pub family: Family,
    /// Neighbors added (or already present) and probed.
    pub restored: usize,
    /// Neighbors the kernel refused or whose probe failed (not `ENETDOWN`).
    pub failed: usize,
    /// One of this family's probes failed with `ENETDOWN`, or the
    /// interface had already reported it when one of its neighbors was due
    /// (nothing more goes to the interface in this pass): the family is not
    /// done and its counts are dropped; it is restored again next pass (an
    /// add then finds `EEXIST`, which counts as restored).
    pub net_down: bool,
}

/// Applies a pass's results: a family done (no `ENETDOWN`) leaves
/// `pending` and its counts go to `reports` (an interface gets an entry
/// once something was restored or failed on it); interfaces with no family
/// left leave `pending`. Returns the neighbors restored in this pass.
pub fn apply_pass(
    pending: &mut NeighborMap,
    reports: &mut BTreeMap<String, InterfaceReport>,
    results: Vec<FamilyResult>,
) -> usize {
    let mut restored = 0;
    for r in results {
        if r.net_down {
            tracing::info!(
                ifname = r.ifname.as_str(),
                family = %r.family,
                "ENETDOWN while probing; retrying next pass"
            );
            continue;
        }
        tracing::info!(
            ifname = r.ifname.as_str(),
            family = %r.family,
            restored = r.restored,
            failed = r.failed,
            "interface neighbors restored and probed"
        );
        restored += r.restored;
        if let Some(families) = pending.get_mut(&r.ifname) {
            families.remove(&r.family);
        }
        if r.restored > 0 || r.failed > 0 {
            let e = reports.entry(r.ifname).or_default();
            e.restored += r.restored;
            e.failed += r.failed;
        }
    }
    pending.retain(|_, families| !families.is_empty());
    restored
}

/// Whether a pass starts after one that ended `elapsed` after the first
/// began: not when it would begin at or after `timeout` (so with a timeout
/// below the pass interval there is exactly one pass).
pub fn another_pass(elapsed: Duration, pass_interval: Duration, timeout: Duration) -> bool {
    elapsed + pass_interval < timeout
}

// ===== the passes over time =====

/// What the driver does next, from [`Passes::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Make pass number `n` (from 1): read its [`PassView`] for
    /// [`Passes::pending`], take its plan from [`Passes::plan`], run it
    /// (adds, probes, the settle wait) and hand the results to
    /// [`Passes::finish_pass`]. Polling again before that returns the same
    /// pass.
    Pass(u32),
    /// No pass before this instant; poll again then.
    Sleep(Instant),
    /// The restore is over: every neighbor was handled, or no pass may
    /// start before the timeout. [`Passes::finish`] gives the outcome.
    Done,
}

/// Where [`Passes`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No pass made yet: the first poll starts one and the timeout clock.
    Start,
    /// A pass is under way; `settle_now` is its plan's.
    InPass {
        /// The pass makes the one-time settle wait.
        settle_now: bool,
    },
    /// Between two passes: the next one starts at `next`.
    Between {
        /// When the next pass starts.
        next: Instant,
    },
    /// Nothing more to do.
    Done,
}

/// What the passes achieved, from [`Passes::finish`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassTotals {
    /// Per interface with at least one neighbor restored or failed.
    pub interfaces: BTreeMap<String, InterfaceReport>,
    /// Interfaces with neighbors still pending at the end (only after the
    /// timeout), sorted.
    pub timed_out: Vec<String>,
    /// Passes made.
    pub passes: u32,
}

/// The restore passes of a system warm reboot (docs/behavior.md c.4) as a
/// machine: values in (the time, each pass's [`PassView`] and
/// [`FamilyResult`]s), decisions out ([`Action`], [`PassPlan`]). It reads
/// no clock and does no I/O.
///
/// The first pass starts at the first [`poll`](Passes::poll); after a pass
/// that leaves neighbors pending, the next one starts
/// [`RestoreArgs::pass_interval`] after it ended, unless it would start at
/// or after [`RestoreArgs::timeout`] from the first ([`another_pass`]): then
/// the job gives up and those interfaces are reported as timed out. The
/// one-time settle is made by the first pass whose plan asks for it.
#[derive(Debug, Clone)]
pub struct Passes {
    /// Neighbors not yet restored (families done leave it).
    pending: NeighborMap,
    /// Counts per interface so far.
    reports: BTreeMap<String, InterfaceReport>,
    /// Passes started.
    passes: u32,
    /// The one-time settle was made.
    settled: bool,
    /// When the first pass started.
    started: Option<Instant>,
    /// [`RestoreArgs::pass_interval`].
    pass_interval: Duration,
    /// [`RestoreArgs::timeout`].
    timeout: Duration,
    /// Where the job is.
    state: State,
}

impl Passes {
    /// The passes over `pending` (APPL_DB's neighbors), timed by `args`
    /// (its `settle` is the driver's).
    pub fn new(pending: NeighborMap, args: &RestoreArgs) -> Self {
        Passes {
            pending,
            reports: BTreeMap::new(),
            passes: 0,
            settled: false,
            started: None,
            pass_interval: args.pass_interval,
            timeout: args.timeout,
            state: State::Start,
        }
    }

    /// The neighbors still to restore, by interface and family.
    pub fn pending(&self) -> &NeighborMap {
        &self.pending
    }

    /// What to do at `now`: start a pass, sleep, or stop. With nothing
    /// pending at the start it stops at once, with no pass.
    pub fn poll(&mut self, now: Instant) -> Action {
        match self.state {
            State::Start if self.pending.is_empty() => {
                self.state = State::Done;
                Action::Done
            }
            State::Start => {
                self.started = Some(now);
                self.begin_pass()
            }
            State::Between { next } if now >= next => self.begin_pass(),
            State::Between { next } => Action::Sleep(next),
            State::InPass { .. } => Action::Pass(self.passes),
            State::Done => Action::Done,
        }
    }

    fn begin_pass(&mut self) -> Action {
        self.passes += 1;
        self.state = State::InPass { settle_now: false };
        Action::Pass(self.passes)
    }

    /// Decides the pass under way from what it read ([`plan_pass`]) and
    /// logs why the other interfaces wait.
    pub fn plan(&mut self, view: &PassView) -> PassPlan {
        let plan = plan_pass(&self.pending, view, self.settled);
        for (ifname, why) in &plan.not_ready {
            why.log(ifname);
        }
        if let State::InPass { settle_now } = &mut self.state {
            *settle_now = plan.settle_now;
        }
        plan
    }

    /// Ends the pass under way at `now` with its results ([`apply_pass`]):
    /// its settle counts as made, and the job is done when nothing is
    /// pending or no further pass may start. Returns the neighbors the pass
    /// restored.
    pub fn finish_pass(&mut self, results: Vec<FamilyResult>, now: Instant) -> usize {
        if let State::InPass { settle_now } = self.state {
            self.settled |= settle_now;
        }
        let before = self.pending.len();
        let restored = apply_pass(&mut self.pending, &mut self.reports, results);
        if restored > 0 || self.pending.len() < before {
            tracing::info!(
                pass = self.passes,
                restored,
                interfaces_left = self.pending.len(),
                "restore pass done"
            );
        } else {
            tracing::debug!(
                pass = self.passes,
                interfaces_left = self.pending.len(),
                "restore pass done; no interface ready"
            );
        }
        let elapsed = self
            .started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        let next = now.checked_add(self.pass_interval);
        self.state = match next {
            Some(next)
                if !self.pending.is_empty()
                    && another_pass(elapsed, self.pass_interval, self.timeout) =>
            {
                State::Between { next }
            }
            _ => State::Done,
        };
        restored
    }

    /// The outcome so far: counts per interface, the interfaces still
    /// pending (all timed out once [`Action::Done`]), the passes made.
    pub fn finish(self) -> PassTotals {
        PassTotals {
            interfaces: self.reports,
            timed_out: self.pending.into_keys().collect(),
            passes: self.passes,
        }
    }
}
