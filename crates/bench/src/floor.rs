//! `floor`: the raw Redis cost of what the producer writes (issue "at the
//! floor", item 1). The same 100k neighbour keys and fields as `cold100k`,
//! written by the bench itself in batches of 1,000, one plain pipeline per
//! batch (one in flight at a time, as the daemon flushes): per key
//! `HSET _NEIGH_TABLE:<key> neigh <mac> family <IPv4|IPv6>`, then one
//! multi-member `SADD NEIGH_TABLE_KEY_SET <keys>` and one
//! `PUBLISH NEIGH_TABLE_CHANNEL@0 G`. Its Redis CPU per key is the divisor
//! of every "x floor" figure of the same repetition.

use std::time::Instant;

use anyhow::Context;
use testbed::redis_server::RedisServer;

use crate::neigh::{neighbor, scard};
use crate::{Args, Kind, RedisStats, Row};

/// Keys per pipeline.
const BATCH: usize = 1000;

pub fn run(args: &Args, n: usize, rep: usize) -> anyhow::Result<Row> {
    let redis = RedisServer::start()?;
    let mut conn = redis.conn(0)?;
    // (key, mac, family), built before the clock starts.
    let keys: Vec<(String, String, &str)> = (0..n)
        .map(|i| {
            let (port, ip, mac) = neighbor(i, args.ports);
            let fam = if ip.contains(':') { "IPv6" } else { "IPv4" };
            (
                format!("{}:{ip}", testbed::netns::NeighTopology::port_name(port)),
                mac,
                fam,
            )
        })
        .collect();
    let before = RedisStats::read(&mut conn)?;
    let t0 = Instant::now();
    for chunk in keys.chunks(BATCH) {
        let mut p = redis::pipe();
        for (key, mac, fam) in chunk {
            p.cmd("HSET")
                .arg(format!("_NEIGH_TABLE:{key}"))
                .arg("neigh")
                .arg(mac)
                .arg("family")
                .arg(*fam)
                .ignore();
        }
        let sadd = p.cmd("SADD").arg("NEIGH_TABLE_KEY_SET");
        for (key, _, _) in chunk {
            sadd.arg(key);
        }
        sadd.ignore();
        p.cmd("PUBLISH")
            .arg("NEIGH_TABLE_CHANNEL@0")
            .arg("G")
            .ignore();
        p.query::<()>(&mut conn).context("floor pipeline")?;
    }
    let wall = t0.elapsed();
    let after = RedisStats::read(&mut conn)?;
    let written = scard(&mut conn)?;
    let (evalsha, commands) = after.commands_since(&before);
    Ok(Row {
        name: format!("floor: raw pipeline {}k", n / 1000),
        kind: Kind::Floor,
        rep,
        n,
        wall,
        wall_what: "first->last reply",
        redis_cpu: after.cpu.saturating_sub(before.cpu),
        evalsha,
        commands,
        lost: n as i64 - written as i64,
        ..Row::default()
    })
}
