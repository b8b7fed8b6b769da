//! The passes on a simulated clock: [`Passes`] driven the way the real
//! driver drives it, against a made-up world of interfaces that come up at
//! given times, so what a user sees of the job's timing (which passes run,
//! which neighbors are re-probed, when it gives up) is checked in
//! microseconds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::super::*;

const MAC: Mac = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn args(pass_interval: Duration, timeout: Duration) -> RestoreArgs {
    RestoreArgs {
        timeout,
        pass_interval,
        settle: s(15),
    }
}

/// `ifname` -> (IPv4 count, IPv6 count) neighbors in NEIGH_TABLE.
fn table(spec: &[(&str, usize, usize)]) -> NeighborMap {
    let mut m = NeighborMap::new();
    for (n, (ifname, v4, v6)) in spec.iter().enumerate() {
        let fams = m.entry(ifname.to_string()).or_default();
        for k in 0..*v4 {
            let ip: IpAddr = format!("10.{n}.0.{}", k + 1).parse().unwrap();
            fams.entry(Family::IPv4).or_default().push((ip, MAC));
        }
        for k in 0..*v6 {
            let ip: IpAddr = format!("fc00:{n}::{}", k + 1).parse().unwrap();
            fams.entry(Family::IPv6).or_default().push((ip, MAC));
        }
    }
    m
}

/// The kernel and STATE_DB as the passes see them, and what each pass did.
#[derive(Default)]
struct World {
    /// When each interface gets carrier (and, for a `Vlan*`, its members);
    /// absent: never.
    up_at: HashMap<String, Duration>,
    /// (interface, family, pass): that pass's probes of the family fail
    /// with `ENETDOWN`.
    net_down: BTreeSet<(String, Family, u32)>,
    /// How long a pass takes, the settle apart.
    pass_takes: Duration,
    /// The settle wait (`RestoreArgs::settle`).
    settle: Duration,
    /// Per pass: when it started (from the first), and its plan.
    passes: Vec<(Duration, PassPlan)>,
    /// Probes sent per interface, over all passes.
    probes: BTreeMap<String, usize>,
}

impl World {
    fn up(mut self, ifname: &str, at: Duration) -> Self {
        self.up_at.insert(ifname.to_string(), at);
        self
    }

    fn view(&self, t: Duration, pending: &NeighborMap) -> PassView {
        let mut v = PassView::default();
        let mut vlan = BTreeSet::new();
        for (i, ifname) in pending.keys().enumerate() {
            let ifindex = i as u32 + 2;
            let carrier = self.up_at.get(ifname).is_some_and(|at| *at <= t);
            v.links.insert(
                ifname.clone(),
                LinkState {
                    ifindex,
                    mac: Some([2, 0, 0, 0, 0, ifindex as u8]),
                    carrier,
                },
            );
            v.addrs.insert(
                (ifindex, Family::IPv4),
                format!("10.200.{i}.1").parse().unwrap(),
            );
            v.addrs.insert(
                (ifindex, Family::IPv6),
                format!("fc99:{i}::1").parse().unwrap(),
            );
            if carrier {
                vlan.insert(format!("{ifname}|Ethernet0"));
            }
        }
        if needs_member_check(pending, &v.links) {
            v.members = Some(Members {
                vlan,
                lag: BTreeSet::new(),
                sep: '|',
            });
        }
        v
    }

    /// Adds and probes every pending neighbor of the plan's families.
    fn run(&mut self, pass: u32, plan: &PassPlan, pending: &NeighborMap) -> Vec<FamilyResult> {
        let mut out = Vec::new();
        for iface in &plan.ready {
            for (family, _) in &iface.families {
                let n = pending[&iface.ifname][family].len();
                let net_down = self
                    .net_down
                    .contains(&(iface.ifname.clone(), *family, pass));
                *self.probes.entry(iface.ifname.clone()).or_default() += n;
                out.push(FamilyResult {
                    ifname: iface.ifname.clone(),
                    family: *family,
                    restored: if net_down { 0 } else { n },
                    failed: 0,
                    net_down,
                });
            }
        }
        out
    }

    /// Drives `passes` as the real driver does, the clock jumping to each
    /// deadline; returns the totals.
    fn drive(&mut self, mut passes: Passes) -> PassTotals {
        let t0 = Instant::now();
        let mut now = t0;
        for _ in 0..10_000 {
            match passes.poll(now) {
                Action::Done => {
                    assert_eq!(passes.poll(now + s(3600)), Action::Done);
                    return passes.finish();
                }
                Action::Sleep(until) => {
                    assert!(until > now, "sleep must move the clock");
                    // woken early: the same deadline again, no pass
                    assert_eq!(passes.poll(now), Action::Sleep(until));
                    now = until;
                }
                Action::Pass(n) => {
                    assert_eq!(n as usize, self.passes.len() + 1);
                    let view = self.view(now - t0, passes.pending());
                    let plan = passes.plan(&view);
                    // polled mid-pass: the same pass, not a new one
                    assert_eq!(passes.poll(now), Action::Pass(n));
                    let results = self.run(n, &plan, passes.pending());
                    let start = now - t0;
                    now += self.pass_takes;
                    if plan.settle_now {
                        now += self.settle;
                    }
                    self.passes.push((start, plan));
                    passes.finish_pass(results, now);
                }
            }
        }
        panic!("the passes never finished");
    }

    /// When each pass started, from the first.
    fn starts(&self) -> Vec<Duration> {
        self.passes.iter().map(|(start, _)| *start).collect()
    }
}

fn report(restored: usize) -> InterfaceReport {
    InterfaceReport {
        restored,
        failed: 0,
    }
}

#[test]
fn everything_up_is_restored_in_one_pass_and_the_job_is_done() {
    let pending = table(&[("Ethernet0", 3, 2), ("Ethernet4", 0, 4)]);
    let mut w = World::default().up("Ethernet0", s(0)).up("Ethernet4", s(0));
    let totals = w.drive(Passes::new(pending, &RestoreArgs::default()));
    assert_eq!(totals.passes, 1);
    assert!(totals.timed_out.is_empty());
    assert_eq!(
        totals.interfaces,
        BTreeMap::from([
            ("Ethernet0".to_string(), report(5)),
            ("Ethernet4".to_string(), report(4)),
        ])
    );
}

#[test]
fn nothing_to_restore_is_done_without_a_pass() {
    let mut w = World::default();
    let totals = w.drive(Passes::new(NeighborMap::new(), &RestoreArgs::default()));
    assert_eq!(totals, PassTotals::default());
    assert!(w.passes.is_empty());
}

#[test]
fn a_late_interface_is_retried_every_interval_and_the_others_are_not_reprobed() {
    let pending = table(&[("Ethernet0", 2, 2), ("Ethernet4", 1, 1)]);
    let mut w = World {
        pass_takes: Duration::from_millis(100),
        ..World::default()
    }
    .up("Ethernet0", s(0))
    .up("Ethernet4", s(12));
    let totals = w.drive(Passes::new(pending, &RestoreArgs::default()));
    // the next pass starts 5 s after the previous one ended
    assert_eq!(
        w.starts(),
        [0, 5100, 10200, 15300].map(Duration::from_millis)
    );
    let waiting: Vec<_> = w.passes.iter().map(|(_, p)| p.not_ready.clone()).collect();
    assert_eq!(
        waiting,
        [
            vec![("Ethernet4".to_string(), NotReady::NoCarrier)],
            vec![("Ethernet4".to_string(), NotReady::NoCarrier)],
            vec![("Ethernet4".to_string(), NotReady::NoCarrier)],
            vec![],
        ]
    );
    assert_eq!(totals.passes, 4);
    assert!(totals.timed_out.is_empty());
    // each neighbor probed once: Ethernet0 only in the first pass
    assert_eq!(
        w.probes,
        BTreeMap::from([("Ethernet0".to_string(), 4), ("Ethernet4".to_string(), 2)])
    );
    assert_eq!(totals.interfaces["Ethernet0"], report(4));
    assert_eq!(totals.interfaces["Ethernet4"], report(2));
}

#[test]
fn an_interface_never_up_gives_up_at_the_timeout_with_the_rest_restored() {
    let pending = table(&[("Ethernet0", 1, 1), ("Ethernet8", 2, 0)]);
    let mut w = World::default().up("Ethernet0", s(0));
    let totals = w.drive(Passes::new(pending, &RestoreArgs::default()));
    // defaults: a pass every 5 s, none starting at or after 110 s
    let expected: Vec<Duration> = (0..22).map(|k| s(5 * k)).collect();
    assert_eq!(w.starts(), expected);
    assert_eq!(totals.passes, 22);
    assert_eq!(totals.timed_out, ["Ethernet8"]);
    assert_eq!(
        totals.interfaces,
        BTreeMap::from([("Ethernet0".to_string(), report(2))])
    );
}

#[test]
fn slow_passes_still_start_none_at_or_after_the_timeout() {
    let pending = table(&[("Ethernet8", 1, 0)]);
    let mut w = World {
        pass_takes: s(1),
        ..World::default()
    };
    let totals = w.drive(Passes::new(pending, &args(s(5), s(110))));
    let starts = w.starts();
    // a pass every 6 s (1 s pass + 5 s interval): 0, 6, ..., 108
    assert_eq!(starts.len(), 19);
    assert_eq!(starts.last(), Some(&s(108)));
    assert_eq!(totals.timed_out, ["Ethernet8"]);
}

#[test]
fn a_timeout_below_the_interval_makes_exactly_one_pass() {
    let pending = table(&[("Ethernet0", 1, 0), ("Ethernet4", 1, 0)]);
    let mut w = World::default().up("Ethernet0", s(0)).up("Ethernet4", s(1));
    let totals = w.drive(Passes::new(pending, &args(s(5), s(3))));
    assert_eq!(totals.passes, 1);
    assert_eq!(totals.timed_out, ["Ethernet4"]);
}

#[test]
fn a_family_hit_by_enetdown_is_probed_again_next_pass_and_counted_once() {
    let pending = table(&[("Ethernet0", 2, 3)]);
    let mut w = World::default().up("Ethernet0", s(0));
    w.net_down
        .insert(("Ethernet0".to_string(), Family::IPv6, 1));
    let totals = w.drive(Passes::new(pending, &RestoreArgs::default()));
    assert_eq!(totals.passes, 2);
    assert_eq!(w.starts(), [s(0), s(5)]);
    // pass 2 probes only the IPv6 family again
    assert_eq!(
        w.passes[1].1.ready[0]
            .families
            .iter()
            .map(|f| f.0)
            .collect::<Vec<_>>(),
        [Family::IPv6]
    );
    assert_eq!(w.probes["Ethernet0"], 2 + 3 + 3);
    assert_eq!(totals.interfaces["Ethernet0"], report(5));
    assert!(totals.timed_out.is_empty());
}

#[test]
fn the_settle_wait_is_made_once_and_delays_the_next_pass() {
    let pending = table(&[("Ethernet0", 1, 0), ("Vlan1000", 1, 0), ("Vlan2000", 1, 0)]);
    let mut w = World {
        settle: s(15),
        ..World::default()
    }
    .up("Ethernet0", s(0))
    .up("Vlan1000", s(0))
    .up("Vlan2000", s(30));
    let totals = w.drive(Passes::new(pending, &RestoreArgs::default()));
    let settles: Vec<bool> = w.passes.iter().map(|(_, p)| p.settle_now).collect();
    // pass 1 settles for Vlan1000 (15 s), pass 2 starts 5 s after it ended;
    // Vlan2000, up at 30 s, is restored by pass 4 at 30 s without a settle
    assert_eq!(w.starts(), [s(0), s(20), s(25), s(30)]);
    assert_eq!(settles, [true, false, false, false]);
    assert!(w.passes[3].1.ready.iter().all(|r| !r.after_settle));
    assert!(totals.timed_out.is_empty());
    assert_eq!(totals.interfaces.len(), 3);
}
