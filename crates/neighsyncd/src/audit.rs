//! `neighsyncd audit`: compares the kernel neighbour table, passed through
//! the same sync rules as the daemon ([`crate::sync::decide`] with a
//! [`SyncContext`] loaded from CONFIG_DB), with what APPL_DB `NEIGH_TABLE`
//! holds as the consumer will see it ([`read_appl_view`]: the consumed
//! `NEIGH_TABLE:<key>` hashes overlaid with the ProducerStateTable's pending
//! operations).
//!
//! Every key is one of:
//! * **missing**: the rules want it (kernel neighbour, not filtered), APPL_DB
//!   lacks it;
//! * **stale**: APPL_DB has it, the rules do not want it (no such kernel
//!   neighbour, or it is filtered now);
//! * **different**: both have it with other fields (`neigh` MAC, `family`,
//!   or extra fields), compared order-insensitively;
//! * consistent otherwise (not reported).
//!
//! The comparison ([`compare`], [`expected_table`]) is pure; [`audit`] does
//! the I/O and the daemon's periodic audit can call the same pieces. There is
//! no C++ equivalent (the C++ neighsyncd has no audit).
//!
//! The kernel is read in the current network namespace (run it with
//! `ip netns exec` or inside the swss container). An audit of a running
//! daemon can report an entry that changed between the kernel dump and the
//! APPL_DB read; such drift disappears on the next run.
//!
//! The report types, their text/JSON output and the exit codes are shared
//! with portsyncd ([`sonic_daemon::audit`]); exit codes (see
//! [`AuditReport::exit_code`]): 0 consistent, 1 drift, 2 error (database
//! config missing or broken, Redis unreachable or an error reply, netlink
//! failure).

use std::collections::BTreeMap;
use std::process::ExitCode;

use redis::aio::MultiplexedConnection;
use sonic_daemon::audit::{redis_err, sort_drift, AuditError};
use sonic_daemon::DbPaths;
use sonic_netlink::link::LinkTable;
use sonic_netlink::socket::{Dump, KernelMessage, NetlinkSocket, RcvBuf, Received, SocketError};
use sonic_netlink::NeighborEvent;
use swss::{DbConnector, FieldValues, ProducerStateTable, SwssError, Table};

use crate::context::{ConfigTable, SyncContext, SyncOptions};
use crate::daemon::{read_appl_view, DEFAULT_NETLINK_RCVBUF};
use crate::sync::APP_NEIGH_TABLE_NAME;
use crate::sync::{decide, NeighOp, Outcome};
use swss::ConsumerView;

pub use sonic_daemon::audit::{
    AuditArgs, AuditReport, Drift, DriftKind, DUMP_ATTEMPTS, EXIT_CONSISTENT, EXIT_DRIFT,
    EXIT_ERROR,
};

// ===== errors =====

// ===== comparison (pure) =====

/// Compares what the rules expect with what the database holds, key by key
/// (keys without table prefix). Two entries are equal when they hold the
/// same field/value pairs in any order. Returns the disagreements sorted by
/// kind (missing, stale, different) then key.
pub fn compare(
    expected: &BTreeMap<String, FieldValues>,
    actual: &BTreeMap<String, FieldValues>,
) -> Vec<Drift> {
    let mut drift = Vec::new();
    for (key, want) in expected {
        match actual.get(key) {
            None => drift.push(Drift {
                kind: DriftKind::Missing,
                key: key.clone(),
                expected: Some(want.clone()),
                actual: None,
            }),
            Some(have) if !same_fields(want, have) => drift.push(Drift {
                kind: DriftKind::Different,
                key: key.clone(),
                expected: Some(want.clone()),
                actual: Some(have.clone()),
            }),
            Some(_) => {}
        }
    }
    for (key, have) in actual {
        if !expected.contains_key(key) {
            drift.push(Drift {
                kind: DriftKind::Stale,
                key: key.clone(),
                expected: None,
                actual: Some(have.clone()),
            });
        }
    }
    sort_drift(&mut drift);
    drift
}

fn same_fields(a: &FieldValues, b: &FieldValues) -> bool {
    let mut a: Vec<&(String, String)> = a.iter().collect();
    let mut b: Vec<&(String, String)> = b.iter().collect();
    a.sort();
    b.sort();
    a == b
}

/// The `NEIGH_TABLE` the daemon would hold after a dump: each neighbour
/// event (in dump order) goes through [`decide`] with its interface name and
/// (in EVPN mode) master name from `links`; a Set puts
/// `[("neigh", mac), ("family", IPv4|IPv6)]` under its key, a Del removes the
/// key. Dropped events change nothing. Keys are `<ifname>:<ip>`.
pub fn expected_table<'a>(
    events: impl IntoIterator<Item = &'a NeighborEvent>,
    links: &LinkTable,
    ctx: &SyncContext,
) -> BTreeMap<String, FieldValues> {
    let mut table = BTreeMap::new();
    for ev in events {
        let ifname = links.name(ev.ifindex);
        let master = if ctx.evpn_nvo_exists() {
            links.master_name(ev.ifindex)
        } else {
            None
        };
        match decide(ev, ifname, master, ctx) {
            Outcome::Write { op, .. } => {
                let fields = op.fields();
                match op {
                    NeighOp::Set { key, .. } => {
                        table.insert(key, fields);
                    }
                    NeighOp::Del { key } => {
                        table.remove(&key);
                    }
                }
            }
            Outcome::Drop(_) => {}
        }
    }
    table
}

/// The keys of the neighbours the kernel lists in a state the rules drop
/// without change (EVPN PROBE, NOARP, no MAC, broadcast MAC:
/// [`crate::sync::DropReason::keeps_entry`]): whatever APPL_DB holds for
/// them is what the daemon keeps, so [`compare`] must accept it.
pub fn kept_keys<'a>(
    events: impl IntoIterator<Item = &'a NeighborEvent>,
    links: &LinkTable,
    ctx: &SyncContext,
) -> Vec<String> {
    let mut kept = Vec::new();
    for ev in events {
        let ifname = links.name(ev.ifindex);
        let master = if ctx.evpn_nvo_exists() {
            links.master_name(ev.ifindex)
        } else {
            None
        };
        if let (Outcome::Drop(reason), Some(name)) = (decide(ev, ifname, master, ctx), ifname) {
            if reason.keeps_entry() {
                kept.push(crate::sync::neigh_key(name, &ev.dst));
            }
        }
    }
    kept
}

/// The view as a sorted map (for [`compare`]).
pub fn view_table(view: &ConsumerView) -> BTreeMap<String, FieldValues> {
    view.iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
}

// ===== I/O =====

/// A consistent kernel snapshot: every link, then every IPv4/IPv6 neighbour,
/// dumped in the current network namespace on a socket that joins no
/// multicast group. An interrupted or failed dump, or an overrun, restarts
/// both dumps, at most [`DUMP_ATTEMPTS`] times.
///
/// Must run inside a tokio runtime with IO enabled.
///
/// Errors: [`AuditError::Netlink`], [`AuditError::Dump`].
pub async fn kernel_snapshot() -> Result<(LinkTable, Vec<NeighborEvent>), AuditError> {
    let mut sock = NetlinkSocket::open_with(&[], RcvBuf::Force(DEFAULT_NETLINK_RCVBUF))?;
    let mut last = ("link", 0);
    for _ in 0..DUMP_ATTEMPTS {
        let mut links = LinkTable::new();
        let links_done = dump(&mut sock, Dump::Links, |m| {
            if let KernelMessage::Link(ev) = m {
                links.apply(&ev);
            }
        })
        .await?;
        if let Err(errno) = links_done {
            last = ("link", errno);
            continue;
        }
        let mut neighbors = Vec::new();
        match dump(&mut sock, Dump::Neighbors, |m| {
            if let KernelMessage::Neigh(ev) = m {
                neighbors.push(ev);
            }
        })
        .await?
        {
            Err(errno) => {
                last = ("neighbor", errno);
                continue;
            }
            Ok(()) => return Ok((links, neighbors)),
        }
    }
    Err(AuditError::Dump {
        what: last.0,
        errno: last.1,
    })
}

/// One dump: `Ok(Ok(()))` when complete, `Ok(Err(errno))` when it must be
/// retried (errno 0 for an overrun).
async fn dump(
    sock: &mut NetlinkSocket,
    what: Dump,
    mut on: impl FnMut(KernelMessage),
) -> Result<Result<(), i32>, AuditError> {
    sock.request_dump(what)?;
    let mut received: Vec<Received> = Vec::new();
    let mut overrun = false;
    loop {
        match sock.recv(&mut received).await {
            Ok(()) => {}
            Err(SocketError::Overrun) => overrun = true,
            Err(e) => return Err(e.into()),
        }
        for msg in received.drain(..) {
            match msg {
                Ok(KernelMessage::DumpDone) => return Ok(if overrun { Err(0) } else { Ok(()) }),
                Ok(KernelMessage::DumpFailed { errno }) => return Ok(Err(errno)),
                Ok(m) => on(m),
                Err(e) => tracing::warn!(error = %e, "malformed netlink message skipped"),
            }
        }
    }
}

/// Loads the [`SyncContext`] with the opt-in rules of `options` from
/// CONFIG_DB: every key of `PEER_SWITCH`, `VXLAN_EVPN_NVO`, `INTERFACE`,
/// `PORTCHANNEL_INTERFACE`, `VLAN_INTERFACE` and `VLAN_SUB_INTERFACE` with
/// its fields, as the daemon's subscriptions' initial load.
///
/// Errors: [`SwssError::Redis`].
pub async fn read_context(
    conn: &mut MultiplexedConnection,
    separator: char,
    options: SyncOptions,
) -> Result<SyncContext, SwssError> {
    let mut ctx = SyncContext::with_options(options);
    for table in ConfigTable::ALL {
        let t = Table::new(table.name(), separator).in_db("CONFIG_DB");
        let keys = t.keys(conn).await?;
        for (key, fvs) in t.get_many(conn, &keys, 1000).await? {
            ctx.apply(table, &key, Some(&fvs));
        }
    }
    Ok(ctx)
}

/// Runs one audit: database config, CONFIG_DB facts, APPL_DB view (each
/// Redis connection is tried once, with swss's connect timeout), kernel
/// snapshot, [`compare`].
///
/// `options`: the daemon's opt-in rules (the same flags as the daemon).
///
/// Errors: [`AuditError`] (config, Redis, netlink).
pub async fn audit(paths: &DbPaths, options: SyncOptions) -> Result<AuditReport, AuditError> {
    let cfg = paths.load()?;
    let config_db = DbConnector::new(cfg.location("CONFIG_DB")?)
        .map_err(redis_err("preparing the CONFIG_DB client"))?;
    let appl_db = DbConnector::new(cfg.location("APPL_DB")?)
        .map_err(redis_err("preparing the APPL_DB client"))?;
    let mut config = config_db
        .connect()
        .await
        .map_err(redis_err("connecting to CONFIG_DB"))?;
    let ctx = read_context(&mut config, config_db.separator(), options)
        .await
        .map_err(redis_err("reading CONFIG_DB"))?;
    let mut appl = appl_db
        .connect()
        .await
        .map_err(redis_err("connecting to APPL_DB"))?;
    let producer = ProducerStateTable::new(APP_NEIGH_TABLE_NAME, appl_db.location());
    let (links, neighbors) = kernel_snapshot().await?;
    let view = read_appl_view(&mut appl, &producer)
        .await
        .map_err(redis_err("reading APPL_DB NEIGH_TABLE"))?;
    let mut expected = expected_table(&neighbors, &links, &ctx);
    let actual = view_table(&view);
    for key in kept_keys(&neighbors, &links, &ctx) {
        if let Some(have) = actual.get(&key) {
            expected.insert(key, have.clone());
        }
    }
    Ok(AuditReport {
        daemon: "neighsyncd",
        table: "APPL_DB NEIGH_TABLE",
        expected: expected.len(),
        actual: actual.len(),
        drift: compare(&expected, &actual),
    })
}

/// The `neighsyncd audit` command: runs [`audit`] on a current-thread
/// runtime, prints the report (text or JSON) on stdout or the error on
/// stderr, and returns the exit status (0 consistent, 1 drift, 2 error), as
/// [`sonic_daemon::audit::main`].
pub fn main(paths: DbPaths, options: SyncOptions, args: &AuditArgs) -> ExitCode {
    sonic_daemon::audit::main(
        "neighsyncd",
        args,
        async move { audit(&paths, options).await },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_netlink::link::{LinkEvent, LinkMsgType};
    use sonic_netlink::neigh::nud;
    use sonic_netlink::NeighMsgType;
    use std::net::IpAddr;

    fn fv(mac: &str, family: &str) -> FieldValues {
        vec![
            ("neigh".to_owned(), mac.to_owned()),
            ("family".to_owned(), family.to_owned()),
        ]
    }

    fn map(entries: &[(&str, FieldValues)]) -> BTreeMap<String, FieldValues> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn compare_finds_missing_stale_and_different() {
        let expected = map(&[
            ("Ethernet0:10.0.0.1", fv("02:00:00:00:00:01", "IPv4")),
            ("Ethernet0:10.0.0.2", fv("02:00:00:00:00:02", "IPv4")),
            ("Ethernet0:10.0.0.3", fv("02:00:00:00:00:03", "IPv4")),
            ("Ethernet0:fc00::4", fv("02:00:00:00:00:04", "IPv6")),
        ]);
        let actual = map(&[
            // equal, fields in the other order
            (
                "Ethernet0:10.0.0.1",
                vec![
                    ("family".to_owned(), "IPv4".to_owned()),
                    ("neigh".to_owned(), "02:00:00:00:00:01".to_owned()),
                ],
            ),
            // other MAC
            ("Ethernet0:10.0.0.3", fv("02:00:00:00:00:33", "IPv4")),
            // other family
            ("Ethernet0:fc00::4", fv("02:00:00:00:00:04", "IPv4")),
            ("Ethernet4:10.9.9.9", fv("02:00:00:00:00:99", "IPv4")),
        ]);
        let drift = compare(&expected, &actual);
        let got: Vec<(DriftKind, &str)> = drift.iter().map(|d| (d.kind, d.key.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (DriftKind::Missing, "Ethernet0:10.0.0.2"),
                (DriftKind::Stale, "Ethernet4:10.9.9.9"),
                (DriftKind::Different, "Ethernet0:10.0.0.3"),
                (DriftKind::Different, "Ethernet0:fc00::4"),
            ]
        );
        assert_eq!(drift[0].actual, None);
        assert_eq!(drift[1].expected, None);
        assert_eq!(drift[2].actual, Some(fv("02:00:00:00:00:33", "IPv4")));
    }

    #[test]
    fn extra_field_is_different_and_equal_tables_are_consistent() {
        let expected = map(&[("Ethernet0:10.0.0.1", fv("02:00:00:00:00:01", "IPv4"))]);
        let mut extra = fv("02:00:00:00:00:01", "IPv4");
        extra.push(("junk".to_owned(), "1".to_owned()));
        let actual = map(&[("Ethernet0:10.0.0.1", extra)]);
        assert_eq!(compare(&expected, &actual)[0].kind, DriftKind::Different);
        assert!(compare(&expected, &expected).is_empty());
        assert!(compare(&BTreeMap::new(), &BTreeMap::new()).is_empty());
    }

    fn link(ifindex: u32, name: &str) -> LinkEvent {
        LinkEvent {
            msg_type: LinkMsgType::New,
            family: 0,
            ifindex,
            name: name.to_owned(),
            flags: 0,
            mtu: Some(1500),
            master: None,
            kind: None,
        }
    }

    fn neigh(ifindex: u32, ip: &str, mac: Option<[u8; 6]>, state: u16) -> NeighborEvent {
        NeighborEvent {
            dump: false,
            msg_type: NeighMsgType::New,
            ifindex,
            dst: ip.parse::<IpAddr>().unwrap(),
            lladdr: mac,
            state,
            flags: 0,
        }
    }

    #[test]
    fn expected_table_applies_the_sync_rules() {
        let mut links = LinkTable::new();
        links.apply(&link(5, "Ethernet0"));
        links.apply(&link(6, "Ethernet4"));
        let mac = [2, 0, 0, 0, 0, 1];
        let events = [
            neigh(5, "10.0.0.2", Some(mac), nud::REACHABLE),
            neigh(6, "fc00::2", Some(mac), nud::STALE),
            // filtered: unknown ifindex, IPv6 link-local (mode off), NOARP,
            // broadcast MAC, incomplete (a delete)
            neigh(99, "10.0.0.3", Some(mac), nud::REACHABLE),
            neigh(5, "fe80::1", Some(mac), nud::REACHABLE),
            neigh(5, "10.0.0.4", Some(mac), nud::NOARP),
            neigh(5, "10.0.0.5", Some([0xff; 6]), nud::REACHABLE),
            neigh(5, "10.0.0.6", None, nud::INCOMPLETE),
        ];
        let ctx = SyncContext::new();
        let table = expected_table(&events, &links, &ctx);
        assert_eq!(
            table,
            map(&[
                ("Ethernet0:10.0.0.2", fv("02:00:00:00:00:01", "IPv4")),
                ("Ethernet4:fc00::2", fv("02:00:00:00:00:01", "IPv6")),
            ])
        );
        // NOARP and the broadcast MAC are states kept as APPL_DB has them;
        // the unknown interface and the link-local address are not.
        assert_eq!(
            kept_keys(&events, &links, &ctx),
            ["Ethernet0:10.0.0.4", "Ethernet0:10.0.0.5"]
        );

        // Link-local mode on Ethernet0 and dual-ToR: fe80::1 is expected and
        // the incomplete neighbour is written with a zero MAC.
        let mut ctx = SyncContext::new();
        let on = vec![("ipv6_use_link_local_only".to_owned(), "enable".to_owned())];
        ctx.apply(ConfigTable::Interface, "Ethernet0", Some(&on));
        ctx.apply(ConfigTable::PeerSwitch, "peer", Some(&Vec::new()));
        let table = expected_table(&events, &links, &ctx);
        assert_eq!(
            table.get("Ethernet0:fe80::1"),
            Some(&fv("02:00:00:00:00:01", "IPv6"))
        );
        assert_eq!(
            table.get("Ethernet0:10.0.0.6"),
            Some(&fv("00:00:00:00:00:00", "IPv4"))
        );
    }

    #[test]
    fn report_text_json_and_exit_codes() {
        let expected = map(&[("Ethernet0:10.0.0.2", fv("02:00:00:00:00:02", "IPv4"))]);
        let actual = map(&[("Ethernet0:10.9.9.9", fv("02:00:00:00:00:99", "IPv4"))]);
        let report = AuditReport {
            daemon: "neighsyncd",
            table: "APPL_DB NEIGH_TABLE",
            expected: 1,
            actual: 1,
            drift: compare(&expected, &actual),
        };
        assert_eq!(report.exit_code(), EXIT_DRIFT);
        let text = report.to_text();
        assert!(text.contains(
            "missing   Ethernet0:10.0.0.2 expected neigh=02:00:00:00:00:02 family=IPv4\n"
        ));
        assert!(text.contains("stale     Ethernet0:10.9.9.9 actual neigh=02:00:00:00:00:99"));
        assert!(
            text.ends_with("drift 2 (missing 1, stale 1, different 0); expected 1, present 1\n")
        );
        let json = report.to_json();
        assert_eq!(json["consistent"], false);
        assert_eq!(json["summary"]["missing"], 1);
        assert_eq!(json["missing"][0]["key"], "Ethernet0:10.0.0.2");
        assert_eq!(json["missing"][0]["expected"]["neigh"], "02:00:00:00:00:02");
        assert_eq!(json["stale"][0]["actual"]["family"], "IPv4");
        assert_eq!(json["different"].as_array().map(Vec::len), Some(0));

        let ok = AuditReport {
            drift: Vec::new(),
            ..report
        };
        assert_eq!(ok.exit_code(), EXIT_CONSISTENT);
        assert!(ok.to_text().contains(": consistent (missing 0"));
    }
}
