//! `portsyncd audit`: compares the kernel links with STATE_DB
//! `PORT_TABLE|<name>` under portsyncd's rules (linksync.cpp
//! LinkSync::onMsg, docs/behavior.md d.3).
//!
//! The ports audited are the consumed APPL_DB `PORT_TABLE:<name>` keys
//! (the ones orchagent has; `PortConfigDone` and `PortInitDone` excluded).
//! For each whose netdev exists (name starting with `Ethernet` or
//! `PortChannel`, kind not `team`), the expected STATE_DB fields are
//! [`LinkState::fields`]: `state=ok`, `netdev_oper_status` (IFF_RUNNING),
//! `admin_status` (IFF_UP), `mtu`. Only these four fields are compared;
//! fields other daemons write into the same hash are ignored.
//!
//! * **missing**: an APPL_DB port with a netdev, but STATE_DB has none of
//!   the four fields for it;
//! * **stale**: a STATE_DB `PORT_TABLE|Ethernet*`/`PortChannel*` entry
//!   carrying portsyncd's `state` field whose netdev does not exist (or is a
//!   team netdev): portsyncd deletes the key on RTM_DELLINK;
//! * **different**: one of the four fields differs (or is absent).
//!
//! A configured port whose netdev does not exist yet and has no STATE_DB
//! entry is not drift: it is what holds back PortInitDone. Netdevs that a
//! cold start marked "old" (brought down and ignored, d.2) are audited like
//! any other; on a switch they are replaced by syncd within seconds.
//!
//! The comparison ([`expected_states`], [`compare`]) is pure; [`audit`]
//! does the I/O. The C++ portsyncd has no audit. The report types, their
//! text/JSON output and the exit codes (0 consistent, 1 drift, 2 error) are
//! shared with neighsyncd ([`sonic_daemon::audit`]).

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use sonic_daemon::audit::{redis_err, sort_drift, AuditError};
use sonic_daemon::DbPaths;
use sonic_netlink::link::{LinkEvent, LinkMsgType, IFF_RUNNING, IFF_UP};
use sonic_netlink::socket::{
    Dump, KernelMessage, NetlinkSocket, RcvBuf, Received, SocketError, DEFAULT_RCVBUF_BYTES,
};
use swss::{DbConnector, FieldValues, Table};

use crate::sync::{
    handled, is_port_key, LinkState, APP_PORT_TABLE_NAME, STATE_FIELDS, STATE_PORT_TABLE_NAME,
};

pub use sonic_daemon::audit::{
    AuditArgs, AuditReport, Drift, DriftKind, DUMP_ATTEMPTS, EXIT_CONSISTENT, EXIT_DRIFT,
    EXIT_ERROR,
};

/// The STATE_DB field portsyncd always writes (`state=ok`); an entry with it
/// was written by portsyncd.
pub const STATE_FIELD: &str = "state";

// ===== errors =====

// ===== comparison (pure) =====

/// The kernel's handled netdevs by name with their [`LinkState`], from a
/// link dump (RTM_NEWLINK, family AF_UNSPEC; AF_BRIDGE-family messages and
/// netdevs the daemon's rules drop ([`handled`]) are skipped; a missing
/// IFLA_MTU counts as 0 as in
/// [`crate::sync::PortSync::on_link`]).
pub fn kernel_ports<'a>(
    links: impl IntoIterator<Item = &'a LinkEvent>,
) -> BTreeMap<String, LinkState> {
    links
        .into_iter()
        .filter(|l| l.msg_type == LinkMsgType::New && l.family == 0)
        .filter(|l| handled(&l.name, l.kind.as_deref()).is_ok())
        .map(|l| {
            (
                l.name.clone(),
                LinkState {
                    admin_up: l.flags & IFF_UP != 0,
                    oper_up: l.flags & IFF_RUNNING != 0,
                    mtu: l.mtu.unwrap_or(0),
                },
            )
        })
        .collect()
}

/// The STATE_DB fields expected per port: every APPL_DB port (the
/// `PortConfigDone`/`PortInitDone` keys are ignored) whose netdev is in
/// `kernel` gets [`LinkState::fields`].
pub fn expected_states(
    appl_ports: &BTreeSet<String>,
    kernel: &BTreeMap<String, LinkState>,
) -> BTreeMap<String, FieldValues> {
    appl_ports
        .iter()
        .filter(|p| is_port_key(p))
        .filter_map(|p| kernel.get(p).map(|s| (p.clone(), s.fields())))
        .collect()
}

/// portsyncd's fields of one STATE_DB hash, in [`STATE_FIELDS`] order
/// (absent ones left out).
pub fn own_fields(fvs: &FieldValues) -> FieldValues {
    STATE_FIELDS
        .iter()
        .filter_map(|f| {
            fvs.iter()
                .find(|(k, _)| k == f)
                .map(|(k, v)| (k.clone(), v.clone()))
        })
        .collect()
}

/// The disagreements (module docs) between `expected`
/// ([`expected_states`]), the kernel's handled netdev names and STATE_DB
/// `PORT_TABLE` (`state`: name -> every field of the hash). Sorted by kind
/// (missing, stale, different) then name.
pub fn compare(
    expected: &BTreeMap<String, FieldValues>,
    kernel: &BTreeMap<String, LinkState>,
    state: &BTreeMap<String, FieldValues>,
) -> Vec<Drift> {
    let mut drift = Vec::new();
    for (name, want) in expected {
        let have = state.get(name).map(own_fields).unwrap_or_default();
        if have.is_empty() {
            drift.push(Drift {
                kind: DriftKind::Missing,
                key: name.clone(),
                expected: Some(want.clone()),
                actual: None,
            });
        } else if &have != want {
            drift.push(Drift {
                kind: DriftKind::Different,
                key: name.clone(),
                expected: Some(want.clone()),
                actual: Some(have),
            });
        }
    }
    for (name, fvs) in state {
        let portsyncd_wrote = fvs.iter().any(|(f, _)| f == STATE_FIELD);
        if portsyncd_wrote && handled(name, None).is_ok() && !kernel.contains_key(name) {
            drift.push(Drift {
                kind: DriftKind::Stale,
                key: name.clone(),
                expected: None,
                actual: Some(own_fields(fvs)),
            });
        }
    }
    sort_drift(&mut drift);
    drift
}

/// Number of STATE_DB entries portsyncd wrote (handled name, `state` field).
pub fn state_entries(state: &BTreeMap<String, FieldValues>) -> usize {
    state
        .iter()
        .filter(|(n, fvs)| handled(n, None).is_ok() && fvs.iter().any(|(f, _)| f == STATE_FIELD))
        .count()
}

// ===== I/O =====

/// Every link of the current network namespace (a link dump on a socket
/// that joins no multicast group), retried after an interrupted or failed
/// dump or an overrun, at most [`DUMP_ATTEMPTS`] times.
///
/// Errors: [`AuditError::Netlink`], [`AuditError::Dump`].
pub async fn kernel_links() -> Result<Vec<LinkEvent>, AuditError> {
    let mut sock = NetlinkSocket::open_with(&[], RcvBuf::Force(DEFAULT_RCVBUF_BYTES))?;
    let mut last = 0;
    'attempt: for _ in 0..DUMP_ATTEMPTS {
        sock.request_dump(Dump::Links)?;
        let mut links = Vec::new();
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
                    Ok(KernelMessage::Link(ev)) => links.push(ev),
                    Ok(KernelMessage::DumpDone) if !overrun => return Ok(links),
                    Ok(KernelMessage::DumpDone) => {
                        last = 0;
                        continue 'attempt;
                    }
                    Ok(KernelMessage::DumpFailed { errno }) => {
                        last = errno;
                        continue 'attempt;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "malformed netlink message skipped"),
                }
            }
        }
    }
    Err(AuditError::Dump {
        what: "link",
        errno: last,
    })
}

/// Runs one audit: database config, APPL_DB `PORT_TABLE` keys, STATE_DB
/// `PORT_TABLE` entries (each Redis connection is tried once, with swss's
/// connect timeout), kernel links, [`compare`].
///
/// Errors: [`AuditError`] (config, Redis, netlink).
pub async fn audit(paths: &DbPaths) -> Result<AuditReport, AuditError> {
    let cfg = paths.load()?;
    let appl_db = DbConnector::new(cfg.location("APPL_DB")?)
        .map_err(redis_err("preparing the APPL_DB client"))?;
    let state_db = DbConnector::new(cfg.location("STATE_DB")?)
        .map_err(redis_err("preparing the STATE_DB client"))?;
    let mut appl = appl_db
        .connect()
        .await
        .map_err(redis_err("connecting to APPL_DB"))?;
    let mut state_conn = state_db
        .connect()
        .await
        .map_err(redis_err("connecting to STATE_DB"))?;
    let links = kernel_links().await?;
    let appl_ports: BTreeSet<String> = Table::new(APP_PORT_TABLE_NAME, appl_db.separator())
        .keys(&mut appl)
        .await
        .map_err(redis_err("reading APPL_DB PORT_TABLE"))?
        .into_iter()
        .collect();
    let state_table = Table::new(STATE_PORT_TABLE_NAME, state_db.separator());
    let mut state = BTreeMap::new();
    for name in state_table
        .keys(&mut state_conn)
        .await
        .map_err(redis_err("reading STATE_DB PORT_TABLE"))?
    {
        if let Some(fvs) = state_table
            .get(&mut state_conn, &name)
            .await
            .map_err(redis_err("reading STATE_DB PORT_TABLE"))?
        {
            state.insert(name, fvs);
        }
    }
    let kernel = kernel_ports(&links);
    let expected = expected_states(&appl_ports, &kernel);
    Ok(AuditReport {
        daemon: "portsyncd",
        table: "STATE_DB PORT_TABLE",
        expected: expected.len(),
        actual: state_entries(&state),
        drift: compare(&expected, &kernel, &state),
    })
}

/// The `portsyncd audit` command: runs [`audit`] on a current-thread
/// runtime, prints the report (text or JSON) on stdout or the error on
/// stderr, and returns the exit status (0 consistent, 1 drift, 2 error), as
/// [`sonic_daemon::audit::main`].
pub fn main(paths: DbPaths, args: &AuditArgs) -> ExitCode {
    sonic_daemon::audit::main("portsyncd", args, async move { audit(&paths).await })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, flags: u32, mtu: u32, kind: Option<&str>) -> LinkEvent {
        LinkEvent {
            msg_type: LinkMsgType::New,
            family: 0,
            ifindex: 1,
            name: name.to_owned(),
            flags,
            mtu: Some(mtu),
            master: None,
            kind: kind.map(str::to_owned),
        }
    }

    fn fvs(pairs: &[(&str, &str)]) -> FieldValues {
        pairs
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn up(mtu: &str) -> FieldValues {
        fvs(&[
            ("state", "ok"),
            ("netdev_oper_status", "up"),
            ("admin_status", "up"),
            ("mtu", mtu),
        ])
    }

    #[test]
    fn kernel_ports_keeps_handled_non_team_links() {
        let mut bridge_msg = link("Ethernet8", IFF_UP, 1500, None);
        bridge_msg.family = 7;
        let links = [
            link("Ethernet0", IFF_UP | IFF_RUNNING, 9100, None),
            link("PortChannel1", IFF_UP, 1500, Some("bond")),
            link("PortChannel2", IFF_UP, 1500, Some("team")),
            link("eth0", IFF_UP, 1500, None),
            link("ethernet4", IFF_UP, 1500, None),
            bridge_msg,
        ];
        let k = kernel_ports(&links);
        assert_eq!(
            k.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["Ethernet0", "PortChannel1"]
        );
        assert_eq!(
            k["Ethernet0"],
            LinkState {
                admin_up: true,
                oper_up: true,
                mtu: 9100
            }
        );
        assert!(!k["PortChannel1"].oper_up);
    }

    #[test]
    fn compare_finds_missing_stale_and_different() {
        let links = [
            link("Ethernet0", IFF_UP | IFF_RUNNING, 9100, None),
            link("Ethernet4", IFF_UP | IFF_RUNNING, 9100, None),
            link("Ethernet8", IFF_UP, 1500, None),
            link("Ethernet12", IFF_UP | IFF_RUNNING, 9100, None),
        ];
        let kernel = kernel_ports(&links);
        let appl: BTreeSet<String> = [
            "Ethernet0",
            "Ethernet4",
            "Ethernet8",
            "Ethernet12",
            "Ethernet16", // no netdev yet: not drift
            "PortConfigDone",
            "PortInitDone",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let expected = expected_states(&appl, &kernel);
        assert_eq!(expected.len(), 4);
        let mut state = BTreeMap::new();
        // equal, with extra fields from portsorch
        let mut e0 = up("9100");
        e0.push(("speed".to_owned(), "100000".to_owned()));
        state.insert("Ethernet0".to_owned(), e0);
        // Ethernet4 missing (only portsorch's fields)
        state.insert("Ethernet4".to_owned(), fvs(&[("speed", "100000")]));
        // Ethernet8 different: oper status up, kernel says down
        state.insert("Ethernet8".to_owned(), up("1500"));
        // Ethernet12 different: mtu field absent
        state.insert(
            "Ethernet12".to_owned(),
            fvs(&[
                ("state", "ok"),
                ("netdev_oper_status", "up"),
                ("admin_status", "up"),
            ]),
        );
        // stale: no netdev
        state.insert("Ethernet99".to_owned(), up("9100"));
        // not portsyncd's: no `state` field, or an unhandled name
        state.insert("Ethernet98".to_owned(), fvs(&[("speed", "1")]));
        state.insert("Vlan1000".to_owned(), up("9100"));
        let drift = compare(&expected, &kernel, &state);
        let got: Vec<(DriftKind, &str)> = drift.iter().map(|d| (d.kind, d.key.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (DriftKind::Missing, "Ethernet4"),
                (DriftKind::Stale, "Ethernet99"),
                (DriftKind::Different, "Ethernet12"),
                (DriftKind::Different, "Ethernet8"),
            ]
        );
        let e8 = &drift[3];
        assert_eq!(
            e8.expected,
            Some(fvs(&[
                ("state", "ok"),
                ("netdev_oper_status", "down"),
                ("admin_status", "up"),
                ("mtu", "1500")
            ]))
        );
        assert_eq!(e8.actual, Some(up("1500")));
        assert_eq!(state_entries(&state), 4);
    }

    #[test]
    fn consistent_report_and_json() {
        let kernel = kernel_ports(&[link("Ethernet0", IFF_UP | IFF_RUNNING, 9100, None)]);
        let appl: BTreeSet<String> = ["Ethernet0".to_owned()].into();
        let expected = expected_states(&appl, &kernel);
        let mut state = BTreeMap::new();
        state.insert("Ethernet0".to_owned(), up("9100"));
        let report = AuditReport {
            daemon: "portsyncd",
            table: "STATE_DB PORT_TABLE",
            expected: expected.len(),
            actual: state_entries(&state),
            drift: compare(&expected, &kernel, &state),
        };
        assert_eq!(report.exit_code(), EXIT_CONSISTENT);
        assert!(report.to_text().ends_with(
            "portsyncd audit of STATE_DB PORT_TABLE: consistent (missing 0, stale 0, different 0); expected 1, present 1\n"
        ));
        state.insert("Ethernet4".to_owned(), up("9100"));
        let report = AuditReport {
            drift: compare(&expected, &kernel, &state),
            ..report
        };
        assert_eq!(report.exit_code(), EXIT_DRIFT);
        let json = report.to_json();
        assert_eq!(json["consistent"], false);
        assert_eq!(json["summary"]["stale"], 1);
        assert_eq!(json["stale"][0]["key"], "Ethernet4");
        assert_eq!(json["stale"][0]["actual"]["mtu"], "9100");
        assert!(report
            .to_text()
            .starts_with("stale     Ethernet4 actual state=ok"));
    }
}
