//! neighsyncd's warm start (docs/behavior.md b.1 step 6b, c.2, c.3): the
//! cache and the Redis steps; the window's clock and phases are in
//! [`crate::core`] ([`crate::core::Phase::WarmCaching`],
//! [`crate::core::Phase::RestoreWait`], [`crate::core::Phase::Reconciling`]):
//!
//! 1. Start-up ([`check`], [`restore_table`]): the WarmStart check
//!    (`neighsyncd`, docker `swss`, incr) writes `WARM_RESTART_TABLE|neighsyncd
//!    restore_count` (0 cold, +1 warm). On a warm start: state
//!    `initialized`; the NEIGH_TABLE operations no consumer popped yet are
//!    dropped ([`swss::ProducerStateTable::clear`], exact `_NEIGH_TABLE:`
//!    prefix, SCAN); APPL_DB `NEIGH_TABLE:*` is streamed (SCAN and
//!    pipelined HGETALL, [`READ_CHUNK`] keys at a time) into a compact
//!    [`WarmCache`] with `ReconcileCache`'s semantics (every key STALE);
//!    state `restored`. The reconcile
//!    timer is CONFIG_DB `WARM_RESTART|swss neighsyncd_timer` (1..9999 s),
//!    else [`DEFAULT_RECONCILE_TIMER_SECS`].
//! 2. The core's warm window then runs inside the daemon loop. Deviation from the
//!    C++ (f.13): the netlink socket has already joined RTNLGRP_LINK and
//!    RTNLGRP_NEIGH and the dumps run at once, so nothing that happens while
//!    waiting is missed. Every decided operation goes into the cache
//!    ([`WarmCache::insert`]), not to the writer: nothing is written.
//! 3. Restore flag: STATE_DB `NEIGH_RESTORE_TABLE|Flags restored` = `true`,
//!    followed with a keyspace subscription ([`swss::SubscriberStateTable`],
//!    whose initial load checks the current value after subscribing), not a
//!    1 s poll ([`wait_restore_flag`]). Not seen within the limit (180 s by
//!    default): the daemon logs it and exits non-zero.
//! 4. The reconcile timer starts when the flag is seen (as the C++). When it
//!    fires and no dump is in flight ([`WarmCache::finish`], [`write_reconcile`]): the
//!    cache gives [`ReconcileOps`] (STALE/DELETE → DEL, NEW → SET, SAME →
//!    nothing) and the writer takes over at once with a desired table equal
//!    to what APPL_DB holds after the reconcile (so a same-MAC refresh costs
//!    nothing later). Operations decided from then on go to the writer, whose
//!    flushes wait until the reconcile write is done, so nothing is lost or
//!    reordered. The reconcile is written as batched DELs, then batched SETs,
//!    in pipelines of at most [`WRITE_CHUNK`] keys (the C++ does one round
//!    trip per entry, f.4), then state `reconciled`.
//!
//! EVPN `ROUTE_TABLE` deletes (b.2 step 18) of operations cached during the
//! warm window are dropped: the C++ stops at step 17 (`insertToMap`) before
//! the route delete, and its reconcile writes NEIGH_TABLE only. Deletes for
//! operations decided after the reconcile are written as usual.
//!
//! Memory: one 40-byte map entry per key holds both what APPL_DB held and
//! what the kernel holds now (MAC + family, [`WarmCache`]); the writer's
//! table (about 32 bytes per key) is built from it at the reconcile without
//! a text copy. At 100k neighbours the daemon peaks below 24 MiB.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use swss::connector::Backoff;
use swss::restart_assist::{
    AppRestartAssist, ReconcileOps, DEFAULT_RECONCILE_TIMER_SECS, READ_CHUNK, WRITE_CHUNK,
};
use swss::warm_restart::WarmStartState;
use swss::{DbConnector, KeyOp, ProducerStateTable, SubscriberStateTable, SwssError, Table};

use crate::restore::{
    APP_NAME, DOCKER_NAME, NEIGH_RESTORE_FIELD, NEIGH_RESTORE_KEY, STATE_NEIGH_RESTORE_TABLE_NAME,
};

mod cache;
pub use cache::WarmCache;

/// How long to wait for `NEIGH_RESTORE_TABLE|Flags restored=true` before
/// giving up (the C++ exits once more than 180 whole seconds have passed).
pub const DEFAULT_RESTORE_WAIT: Duration = Duration::from_secs(180);

// ===== start-up steps =====

/// The WarmStart check for neighsyncd (`AppRestartAssist("neighsyncd",
/// "swss", 5 s)`): writes `restore_count`; on a warm start reads the timer
/// and writes state `initialized`.
///
/// Errors: as [`AppRestartAssist::new`].
pub async fn check(
    state: &mut MultiplexedConnection,
    state_sep: char,
    config: &mut MultiplexedConnection,
    config_sep: char,
) -> Result<AppRestartAssist, SwssError> {
    AppRestartAssist::new(
        state,
        state_sep,
        config,
        config_sep,
        APP_NAME,
        DOCKER_NAME,
        DEFAULT_RECONCILE_TIMER_SECS,
    )
    .await
}

/// What the warm start-up read ([`restore_table`]), for [`crate::core::NeighCore::warm`].
#[derive(Debug)]
pub struct RestoredTable {
    /// APPL_DB `NEIGH_TABLE`, every key STALE.
    pub cache: WarmCache,
    /// STATE_DB `NEIGH_RESTORE_TABLE|Flags restored` was already `true`
    /// (checked once, right after the read): the reconcile timer starts at
    /// once, as the C++'s first poll of the flag would (docs/behavior.md
    /// c.3).
    pub flag_set: bool,
}

/// Warm start only: drop the unconsumed NEIGH_TABLE operations
/// (`registerAppTable`), read APPL_DB `NEIGH_TABLE:*` into a cache
/// (`readTablesToMap`, docs/behavior.md c.2), write state `restored`, then
/// read the restore flag once (`HGET NEIGH_RESTORE_TABLE|Flags restored`).
/// The table is streamed: one SCAN of [`READ_CHUNK`] keys and one pipeline
/// of their HGETALLs at a time, each hash stored compactly
/// ([`WarmCache::restore`]) before the next SCAN
/// ([`AppRestartAssist::read_table`]); nothing holds the whole key list.
///
/// Errors: Redis errors.
pub async fn restore_table(
    assist: &AppRestartAssist,
    appl: &mut MultiplexedConnection,
    state: &mut MultiplexedConnection,
    producer: &ProducerStateTable,
) -> Result<RestoredTable, SwssError> {
    assist.register_app_table(appl, producer).await?;
    let mut cache = WarmCache::new();
    AppRestartAssist::read_table(appl, producer, READ_CHUNK, |k, fvs| cache.restore(&k, fvs))
        .await?;
    assist.set_state(state, WarmStartState::Restored).await?;
    let flag = Table::new(STATE_NEIGH_RESTORE_TABLE_NAME, assist.state_separator())
        .in_db("STATE_DB")
        .hget(state, NEIGH_RESTORE_KEY, NEIGH_RESTORE_FIELD)
        .await?;
    tracing::info!(
        restored = cache.restored(),
        restore_count = assist.info().restore_count,
        system_warm_reboot = assist.info().system_warm_reboot,
        timer_secs = assist.timer().as_secs(),
        "warm start: APPL_DB NEIGH_TABLE read into the reconcile cache; pending operations dropped"
    );
    Ok(RestoredTable {
        cache,
        flag_set: flag.as_deref() == Some("true"),
    })
}

// ===== Redis =====

/// Waits until STATE_DB `NEIGH_RESTORE_TABLE|Flags` has `restored` =
/// `true`: a keyspace subscription to the table whose initial load checks
/// the current value after subscribing. A lost subscription is rebuilt
/// (with [`Backoff`]), which re-checks the value. Never gives up: the
/// daemon's core owns the limit (docs/behavior.md c.3).
pub async fn wait_restore_flag(state: DbConnector) {
    let mut backoff = Backoff::new();
    loop {
        let mut sub = match SubscriberStateTable::new(&state, STATE_NEIGH_RESTORE_TABLE_NAME).await
        {
            Ok(sub) => sub,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                    "cannot subscribe to STATE_DB NEIGH_RESTORE_TABLE; retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        backoff.reset();
        loop {
            match sub.next().await {
                Ok(KeyOp::Set(key, fvs)) if key == NEIGH_RESTORE_KEY => {
                    if fvs
                        .iter()
                        .any(|(f, v)| f == NEIGH_RESTORE_FIELD && v == "true")
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) if e.is_connection_error() => {
                    tracing::warn!(error = %e, "NEIGH_RESTORE_TABLE subscription lost; resubscribing");
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "NEIGH_RESTORE_TABLE change skipped"),
            }
        }
    }
}

/// Writes the reconcile ops in pipelines of at most [`WRITE_CHUNK`] keys
/// ([`AppRestartAssist::write_reconcile_from`]: DELs, then SETs), retrying
/// (with backoff, on a fresh connection) while Redis is unreachable and
/// resuming after the last pipeline that succeeded, then state
/// `reconciled` (written also when the ops failed with an error reply,
/// since the daemon then resyncs from APPL_DB). Returns the ops' outcome.
pub async fn write_reconcile(
    appl: DbConnector,
    mut conn: Option<MultiplexedConnection>,
    state: DbConnector,
    assist: AppRestartAssist,
    producer: ProducerStateTable,
    ops: ReconcileOps,
) -> Result<(), SwssError> {
    let mut backoff = Backoff::new();
    let mut done = 0;
    let result = loop {
        let mut c = match conn.take() {
            Some(c) => c,
            None => appl.connect_retrying().await,
        };
        match AppRestartAssist::write_reconcile_from(
            &mut c,
            &producer,
            &ops,
            WRITE_CHUNK,
            &mut done,
        )
        .await
        {
            Ok(()) => break Ok(()),
            Err(e) if e.is_connection_error() => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, written = done, retry_in_ms = delay.as_millis() as u64,
                    "Redis lost while writing the reconcile; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => break Err(e),
        }
    };
    drop(ops);
    let mut backoff = Backoff::new();
    loop {
        let mut s = state.connect_retrying().await;
        match assist.set_state(&mut s, WarmStartState::Reconciled).await {
            Ok(()) => break,
            Err(e) if e.is_connection_error() => {
                tracing::warn!(error = %e, "Redis lost while writing state reconciled; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write WARM_RESTART_TABLE|neighsyncd state reconciled");
                break;
            }
        }
    }
    result
}
