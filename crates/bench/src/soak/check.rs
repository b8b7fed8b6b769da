//! The soak's end-of-run checks: APPL_DB and STATE_DB against the kernel,
//! and the daemons' own `audit` commands.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use testbed::netns::NetNs;

use super::load::config_fields;
use super::TableCheck;

pub(super) fn audit_cmd(dut: &NetNs, bin: &Path, cfg: &str) -> anyhow::Result<Option<i32>> {
    let b = bin.to_str().context("binary path")?;
    let out = dut.exec(&[b, "--db-config", cfg, "audit"])?;
    if !out.status.success() {
        eprintln!(
            "soak: {b} audit: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.status.code())
}

pub(super) type Table = BTreeMap<String, BTreeMap<String, String>>;

/// The kernel's neighbours on the DUT under neighsyncd's rules for this
/// set-up (docs/behavior.md b.2; no dual-ToR, no EVPN, no link-local
/// opt-in): on an `Ethernet*` port, not IPv6 link-local (fe80::/10) nor
/// multicast, with a MAC, in PERMANENT, REACHABLE, PROBE, STALE or DELAY
/// (NOARP only when externally learned); key `<port>:<ip>`, fields `neigh`
/// (MAC) and `family` (`IPv4` / `IPv6`).
pub fn expected_neighs(ip_neigh_show: &str) -> Table {
    const VALID: &[&str] = &["PERMANENT", "REACHABLE", "PROBE", "STALE", "DELAY"];
    let mut out = Table::new();
    for line in ip_neigh_show.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(&ip) = w.first() else { continue };
        let after = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1));
        let (Some(dev), Some(mac)) = (after("dev"), after("lladdr")) else {
            continue;
        };
        if !dev.starts_with("Ethernet") {
            continue;
        }
        let v6 = ip.contains(':');
        let lower = ip.to_ascii_lowercase();
        let link_local = v6
            && (lower.starts_with("fe8")
                || lower.starts_with("fe9")
                || lower.starts_with("fea")
                || lower.starts_with("feb"));
        let multicast = if v6 {
            lower.starts_with("ff")
        } else {
            ip.split('.')
                .next()
                .and_then(|o| o.parse::<u8>().ok())
                .is_some_and(|o| (224..240).contains(&o))
        };
        if link_local || multicast {
            continue;
        }
        let valid = w.iter().any(|x| VALID.contains(x))
            || (w.contains(&"NOARP") && w.contains(&"extern_learn"));
        if !valid {
            continue;
        }
        let fields = BTreeMap::from([
            ("neigh".to_owned(), mac.to_ascii_lowercase()),
            (
                "family".to_owned(),
                if v6 { "IPv6" } else { "IPv4" }.to_owned(),
            ),
        ]);
        out.insert(format!("{dev}:{ip}"), fields);
    }
    out
}

pub(super) fn hash_all(
    conn: &mut redis::Connection,
    pattern: &str,
    sep: char,
) -> anyhow::Result<Table> {
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(conn)?;
    let mut out = Table::new();
    for k in keys {
        let fv: BTreeMap<String, String> = redis::cmd("HGETALL").arg(&k).query(conn)?;
        let key = k.split_once(sep).map_or(k.as_str(), |(_, r)| r).to_owned();
        out.insert(key, fv);
    }
    Ok(out)
}

/// Compares `want` with `have`; only `fields` of `have` count when given.
pub(super) fn diff(want: &Table, have: &Table, fields: Option<&[&str]>) -> TableCheck {
    let mut c = TableCheck {
        expected: want.len(),
        ..TableCheck::default()
    };
    let note = |c: &mut TableCheck, s: String| {
        c.diffs += 1;
        if c.examples.len() < 5 {
            c.examples.push(s);
        }
    };
    for (k, w) in want {
        match have.get(k) {
            None => note(&mut c, format!("missing {k} {w:?}")),
            Some(h) => {
                let h: BTreeMap<String, String> = match fields {
                    Some(f) => h
                        .iter()
                        .filter(|(n, _)| f.contains(&n.as_str()))
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect(),
                    None => h.clone(),
                };
                if h != *w {
                    note(&mut c, format!("different {k}: want {w:?}, have {h:?}"));
                }
            }
        }
    }
    for k in have.keys() {
        if !want.contains_key(k) {
            note(&mut c, format!("stale {k}"));
        }
    }
    c
}

pub(super) fn neigh_check(dut: &NetNs, appl: &mut redis::Connection) -> anyhow::Result<TableCheck> {
    let kernel = expected_neighs(&dut.ip(&["neigh", "show"])?);
    let have = hash_all(appl, "NEIGH_TABLE:*", ':')?;
    Ok(diff(&kernel, &have, None))
}

/// APPL_DB `PORT_TABLE:<port>` holds the CONFIG_DB fields (extra fields
/// allowed), PortConfigDone and PortInitDone exist; STATE_DB
/// `PORT_TABLE|<port>` has portsyncd's four fields as the kernel says.
pub(super) fn port_check(
    dut: &NetNs,
    appl: &mut redis::Connection,
    state: &mut redis::Connection,
    ports: &[String],
) -> anyhow::Result<TableCheck> {
    let script: String = ports
        .iter()
        .map(|p| format!(
                "echo {p} $(cat /sys/class/net/{p}/flags) $(cat /sys/class/net/{p}/mtu) $(cat /sys/class/net/{p}/operstate);"
            ))
        .collect();
    let out = dut.exec_ok(&["sh", "-c", &script])?;
    let mut want_state = Table::new();
    for l in out.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (Some(name), Some(flags), Some(mtu), Some(oper)) =
            (w.first(), w.get(1), w.get(2), w.get(3))
        else {
            bail!("unexpected sysfs line {l:?}");
        };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16)
            .with_context(|| format!("flags {flags:?}"))?;
        let updown = |b: bool| if b { "up" } else { "down" }.to_owned();
        // sysfs `flags` is dev->flags, without IFF_RUNNING, which the
        // kernel adds for netlink when the device is up and its operstate
        // is UP or UNKNOWN (dev_get_flags, netif_oper_up).
        let admin = flags & 0x1 != 0;
        let running = admin && matches!(*oper, "up" | "unknown");
        want_state.insert(
            (*name).to_owned(),
            BTreeMap::from([
                ("state".to_owned(), "ok".to_owned()),
                ("netdev_oper_status".to_owned(), updown(running)),
                ("admin_status".to_owned(), updown(admin)),
                ("mtu".to_owned(), (*mtu).to_owned()),
            ]),
        );
    }
    let have_state = hash_all(state, "PORT_TABLE|Ethernet*", '|')?;
    let mut c = diff(
        &want_state,
        &have_state,
        Some(&["state", "netdev_oper_status", "admin_status", "mtu"]),
    );
    let appl_ports = hash_all(appl, "PORT_TABLE:*", ':')?;
    for (i, p) in ports.iter().enumerate() {
        let have = appl_ports.get(p);
        for (f, v) in config_fields(i) {
            if have.and_then(|h| h.get(f)) != Some(&v) {
                c.diffs += 1;
                if c.examples.len() < 5 {
                    c.examples.push(format!(
                        "APPL_DB PORT_TABLE:{p} {f}: want {v}, have {have:?}"
                    ));
                }
            }
        }
    }
    for k in ["PortConfigDone", "PortInitDone"] {
        if !appl_ports.contains_key(k) {
            c.diffs += 1;
            c.examples.push(format!("APPL_DB PORT_TABLE:{k} missing"));
        }
    }
    c.expected += ports.len() + 2;
    Ok(c)
}
