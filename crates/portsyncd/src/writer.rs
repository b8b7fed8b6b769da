//! The one writer of STATE_DB `PORT_TABLE|<name>`, with no I/O: it
//! coalesces [`StateAction`]s per port, hands them out as one
//! [`StateBatch`] at a time, and takes a batch back as written
//! ([`StateWriter::complete`]) or failed ([`StateWriter::fail`]). The
//! daemon's effects turn a batch into one Redis pipeline.
//!
//! After a Redis reconnect the pending HSETs are compared with what STATE_DB
//! holds ([`StateWriter::drop_unchanged`] of the values read back), so only
//! the difference is written.

use std::collections::BTreeMap;

use swss::FieldValues;

use crate::sync::StateAction;

/// One pending STATE_DB operation for a port, coalesced: a DEL followed by
/// an HSET keeps both (other daemons' fields must go with the DEL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOp {
    /// `DEL PORT_TABLE|<name>` first.
    pub del_first: bool,
    /// Then `HSET PORT_TABLE|<name>` of these fields (in order); `None`: no
    /// HSET.
    pub set: Option<FieldValues>,
}

impl PendingOp {
    /// The operation that has the effect of `self` followed by `next`: a
    /// DEL in `next` wipes whatever came before it.
    fn then(self, next: PendingOp) -> PendingOp {
        if next.del_first {
            next
        } else {
            PendingOp {
                del_first: self.del_first,
                set: next.set.or(self.set),
            }
        }
    }

    /// True when the operation sends an HSET (fields not empty).
    pub fn sets(&self) -> bool {
        self.set.as_ref().is_some_and(|f| !f.is_empty())
    }
}

/// One pipeline's worth of writes from [`StateWriter::take_batch`]: per port
/// in name order, `DEL PORT_TABLE|<name>` when [`PendingOp::del_first`],
/// then one `HSET PORT_TABLE|<name> f1 v1 ...` when [`PendingOp::sets`].
/// Hand it back with [`StateWriter::complete`] or [`StateWriter::fail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateBatch {
    id: u64,
    /// `(port name, operation)`, sorted by name.
    pub ops: Vec<(String, PendingOp)>,
}

impl StateBatch {
    /// Number of `DEL` commands in the batch.
    pub fn dels(&self) -> usize {
        self.ops.iter().filter(|(_, op)| op.del_first).count()
    }

    /// Number of `HSET` commands in the batch.
    pub fn sets(&self) -> usize {
        self.ops.iter().filter(|(_, op)| op.sets()).count()
    }
}

/// Pending STATE_DB `PORT_TABLE` writes, coalesced per port, and the one
/// batch in flight.
#[derive(Debug, Default)]
pub struct StateWriter {
    pending: BTreeMap<String, PendingOp>,
    in_flight: Option<u64>,
    next_id: u64,
}

impl StateWriter {
    /// An empty writer.
    pub fn new() -> Self {
        StateWriter::default()
    }

    /// Stages one action on top of what is pending for its port: an HSET
    /// replaces a pending HSET (a pending DEL stays first); a DEL replaces
    /// everything pending.
    pub fn push(&mut self, action: StateAction) {
        let (name, op) = match action {
            StateAction::DelPortState { name } => (
                name,
                PendingOp {
                    del_first: true,
                    set: None,
                },
            ),
            StateAction::SetPortState { name, fields } => (
                name,
                PendingOp {
                    del_first: false,
                    set: Some(fields),
                },
            ),
        };
        self.stage(name, op);
    }

    fn stage(&mut self, name: String, op: PendingOp) {
        match self.pending.remove(&name) {
            Some(before) => self.pending.insert(name, before.then(op)),
            None => self.pending.insert(name, op),
        };
    }

    /// True when something waits to be taken.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Number of ports with a pending operation.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The pending operation of a port.
    pub fn pending(&self, name: &str) -> Option<&PendingOp> {
        self.pending.get(name)
    }

    /// The names of the pending ports, sorted.
    pub fn pending_names(&self) -> Vec<String> {
        self.pending.keys().cloned().collect()
    }

    /// True while a batch from [`StateWriter::take_batch`] has been neither
    /// completed nor failed.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// True when nothing is pending or in flight.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_none()
    }

    /// Takes everything pending as one batch. `None` when nothing is
    /// pending or a batch is already in flight.
    pub fn take_batch(&mut self) -> Option<StateBatch> {
        if self.in_flight.is_some() || self.pending.is_empty() {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight = Some(id);
        let ops = std::mem::take(&mut self.pending).into_iter().collect();
        Some(StateBatch { id, ops })
    }

    /// The pipeline of `batch` was acknowledged. A batch other than the one
    /// in flight is ignored.
    pub fn complete(&mut self, batch: &StateBatch) {
        if self.in_flight == Some(batch.id) {
            self.in_flight = None;
        }
    }

    /// The pipeline of `batch` failed (lost connection, error reply): its
    /// effect on Redis is unknown, so its operations are pending again,
    /// each followed by whatever was staged for the port meanwhile (the
    /// newer one still wins). A batch other than the one in flight is
    /// ignored.
    pub fn fail(&mut self, batch: StateBatch) {
        if self.in_flight != Some(batch.id) {
            return;
        }
        self.in_flight = None;
        for (name, op) in batch.ops {
            let newer = self.pending.remove(&name);
            let op = match newer {
                Some(newer) => op.then(newer),
                None => op,
            };
            self.pending.insert(name, op);
        }
    }

    /// The ports whose pending operation is a plain HSET (no DEL): the ones
    /// [`StateWriter::drop_unchanged`] can compare with STATE_DB. Sorted.
    pub fn plain_sets(&self) -> Vec<String> {
        self.pending
            .iter()
            .filter(|(_, op)| !op.del_first && op.set.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Drops the pending plain HSETs that STATE_DB already holds: `read`
    /// gives, per port, the values of the HSET's fields as read back in
    /// their order (`None` for an absent field); a port read as `None` (its
    /// key is not a hash) or not read is kept. Returns how many were
    /// dropped.
    pub fn drop_unchanged(&mut self, read: &[(String, Option<Vec<Option<String>>>)]) -> usize {
        let mut dropped = 0;
        for (name, values) in read {
            let Some(values) = values else { continue };
            let same = self
                .pending
                .get(name)
                .filter(|op| !op.del_first)
                .and_then(|op| op.set.as_ref())
                .is_some_and(|fvs| same_values(fvs, values));
            if same {
                self.pending.remove(name);
                dropped += 1;
            }
        }
        dropped
    }
}

/// True when `have` (values read back, in the order of `want`'s fields;
/// `None` for an absent field) holds exactly `want`'s values.
pub fn same_values(want: &FieldValues, have: &[Option<String>]) -> bool {
    want.len() == have.len()
        && want
            .iter()
            .zip(have)
            .all(|((_, w), h)| h.as_deref() == Some(w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, mtu: &str) -> StateAction {
        StateAction::SetPortState {
            name: name.to_string(),
            fields: vec![("mtu".to_string(), mtu.to_string())],
        }
    }

    fn del(name: &str) -> StateAction {
        StateAction::DelPortState {
            name: name.to_string(),
        }
    }

    fn op(del_first: bool, mtu: Option<&str>) -> PendingOp {
        PendingOp {
            del_first,
            set: mtu.map(|m| vec![("mtu".to_string(), m.to_string())]),
        }
    }

    #[test]
    fn coalesces_per_key_keeping_del_then_set() {
        let mut w = StateWriter::new();
        w.push(set("Ethernet0", "1500"));
        w.push(set("Ethernet0", "9100"));
        w.push(del("Ethernet4"));
        w.push(set("Ethernet4", "1500"));
        w.push(set("Ethernet8", "1500"));
        w.push(del("Ethernet8"));
        assert_eq!(w.pending("Ethernet0"), Some(&op(false, Some("9100"))));
        assert_eq!(w.pending("Ethernet4"), Some(&op(true, Some("1500"))));
        assert_eq!(w.pending("Ethernet8"), Some(&op(true, None)));
        let batch = w.take_batch().expect("a batch");
        assert_eq!(
            batch
                .ops
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["Ethernet0", "Ethernet4", "Ethernet8"]
        );
        assert_eq!((batch.dels(), batch.sets()), (2, 2));
        assert!(!w.has_pending() && w.in_flight() && !w.is_idle());
    }

    #[test]
    fn one_batch_in_flight_and_newer_ops_wait() {
        let mut w = StateWriter::new();
        w.push(set("Ethernet0", "1500"));
        let b = w.take_batch().expect("a batch");
        w.push(set("Ethernet0", "9100"));
        assert_eq!(w.take_batch(), None, "one batch at a time");
        w.complete(&b);
        let b2 = w.take_batch().expect("the newer op");
        assert_eq!(
            b2.ops,
            vec![("Ethernet0".to_string(), op(false, Some("9100")))]
        );
        // a stale batch is ignored
        w.complete(&b);
        assert!(w.in_flight());
        w.complete(&b2);
        assert!(w.is_idle());
        assert_eq!(w.take_batch(), None);
    }

    #[test]
    fn failed_batch_comes_back_under_newer_ops() {
        let mut w = StateWriter::new();
        w.push(del("Ethernet0"));
        w.push(set("Ethernet4", "1500"));
        w.push(set("Ethernet8", "1500"));
        let b = w.take_batch().expect("a batch");
        // meanwhile: a newer HSET for the deleted port, a DEL for another
        w.push(set("Ethernet0", "9100"));
        w.push(del("Ethernet4"));
        w.fail(b.clone());
        assert!(!w.in_flight());
        // the failed DEL stays first, the newer HSET wins
        assert_eq!(w.pending("Ethernet0"), Some(&op(true, Some("9100"))));
        // the newer DEL wipes the failed HSET
        assert_eq!(w.pending("Ethernet4"), Some(&op(true, None)));
        assert_eq!(w.pending("Ethernet8"), Some(&op(false, Some("1500"))));
        // failing it again (stale) changes nothing
        w.fail(b);
        assert_eq!(w.pending_len(), 3);
    }

    #[test]
    fn drop_unchanged_keeps_dels_differences_and_unreadable_keys() {
        let mut w = StateWriter::new();
        w.push(set("Ethernet0", "1500")); // same in STATE_DB: dropped
        w.push(set("Ethernet4", "1500")); // different: kept
        w.push(del("Ethernet8"));
        w.push(set("Ethernet8", "1500")); // DEL first: never compared
        w.push(set("Ethernet12", "1500")); // key not a hash: kept
        w.push(set("Ethernet16", "1500")); // absent field: kept
        assert_eq!(
            w.plain_sets(),
            ["Ethernet0", "Ethernet12", "Ethernet16", "Ethernet4"]
        );
        let read = vec![
            (
                "Ethernet0".to_string(),
                Some(vec![Some("1500".to_string())]),
            ),
            (
                "Ethernet4".to_string(),
                Some(vec![Some("9100".to_string())]),
            ),
            (
                "Ethernet8".to_string(),
                Some(vec![Some("1500".to_string())]),
            ),
            ("Ethernet12".to_string(), None),
            ("Ethernet16".to_string(), Some(vec![None])),
        ];
        assert_eq!(w.drop_unchanged(&read), 1);
        assert_eq!(
            w.pending_names(),
            ["Ethernet12", "Ethernet16", "Ethernet4", "Ethernet8"]
        );
    }

    #[test]
    fn same_values_compares_in_order_and_length() {
        let want = vec![
            ("state".to_string(), "ok".to_string()),
            ("mtu".to_string(), "9100".to_string()),
        ];
        let have = |v: &[Option<&str>]| -> Vec<Option<String>> {
            v.iter().map(|x| x.map(str::to_string)).collect()
        };
        assert!(same_values(&want, &have(&[Some("ok"), Some("9100")])));
        assert!(!same_values(&want, &have(&[Some("9100"), Some("ok")])));
        assert!(!same_values(&want, &have(&[Some("ok"), None])));
        assert!(!same_values(&want, &have(&[Some("ok")])));
    }
}
