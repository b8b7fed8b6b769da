//! What both daemons' effects share around Redis: the live session they
//! and their background work hold ([`SharedSession`]: the connections,
//! `None` while reconnecting, and the subscription forwarders), and the one
//! subscription forwarder ([`forward`]).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use swss::subscriber_state::{MultiTableSubscriber, SubscriberStateTable};
use swss::SwssError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The Redis side of the current session: the connections (`None` while
/// Redis is away or being reconnected) and the tasks forwarding its
/// subscriptions. Dropping or replacing the forwarders aborts them.
#[derive(Debug)]
pub struct LiveSession<C> {
    conns: Option<C>,
    tasks: Vec<JoinHandle<()>>,
}

impl<C> Drop for LiveSession<C> {
    fn drop(&mut self) {
        self.drop_forwarders();
    }
}

impl<C: Clone> LiveSession<C> {
    /// A copy of the connections (cheap: multiplexed handles), `None`
    /// while reconnecting.
    pub fn conns(&self) -> Option<C> {
        self.conns.clone()
    }
}

impl<C> LiveSession<C> {
    /// Redis is lost: the connections and the forwarders go (a write not
    /// yet run never lands on the old connection after the reconnect).
    pub fn lost(&mut self) {
        self.conns = None;
        self.drop_forwarders();
    }

    /// Connected again: these connections and the forwarders of the new
    /// subscriptions (any older forwarder is aborted).
    pub fn connected(&mut self, conns: C, forwarders: Vec<JoinHandle<()>>) {
        self.drop_forwarders();
        self.conns = Some(conns);
        self.tasks = forwarders;
    }

    /// One more forwarder of the current session (the start-up
    /// subscriptions, forwarded once the driver runs).
    pub fn add_forwarder(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    fn drop_forwarders(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

/// A [`LiveSession`] shared by the effects and their background work (a
/// reconnect replaces its content). Cheap to clone.
#[derive(Debug)]
pub struct SharedSession<C>(Arc<Mutex<LiveSession<C>>>);

impl<C> Clone for SharedSession<C> {
    fn clone(&self) -> Self {
        SharedSession(Arc::clone(&self.0))
    }
}

impl<C> SharedSession<C> {
    /// The start-up session on `conns`, no forwarder yet.
    pub fn new(conns: C) -> Self {
        SharedSession(Arc::new(Mutex::new(LiveSession {
            conns: Some(conns),
            tasks: Vec::new(),
        })))
    }

    /// The session. A panic while it was held cannot leave it inconsistent
    /// (each use is a plain assignment or clone), so a poisoned lock is
    /// taken as is.
    pub fn lock(&self) -> MutexGuard<'_, LiveSession<C>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A swss subscription [`forward`] follows: its `next` yields the next
/// change, and every error means the subscription is gone (its connection
/// closed or failed; `is_connection_error()` is true).
pub trait Subscription: Send + 'static {
    /// One change.
    type Change: Send + 'static;
    /// The next change (cancel-safe, as the swss subscribers' `next`).
    fn next_change(&mut self) -> impl Future<Output = Result<Self::Change, SwssError>> + Send;
}

impl Subscription for SubscriberStateTable {
    type Change = swss::KeyOp;
    fn next_change(&mut self) -> impl Future<Output = Result<swss::KeyOp, SwssError>> + Send {
        self.next()
    }
}

impl Subscription for MultiTableSubscriber {
    /// `(table, op)`.
    type Change = (String, swss::KeyOp);
    fn next_change(
        &mut self,
    ) -> impl Future<Output = Result<(String, swss::KeyOp), SwssError>> + Send {
        self.next()
    }
}

/// Forwards `sub`'s changes to the core on a task of their own, both
/// daemons' subscription forwarder: each change becomes the input
/// `to_input` makes of it (`None`: handled there, e.g. a `LOGGER` change),
/// until the subscription fails, which becomes `lost(error)` and ends the
/// task; it also ends when the core is gone. The returned handle aborts it
/// (a reconnect drops the old session's forwarders).
pub fn forward<S, I>(
    mut sub: S,
    tx: mpsc::UnboundedSender<I>,
    mut to_input: impl FnMut(S::Change) -> Option<I> + Send + 'static,
    lost: impl FnOnce(SwssError) -> I + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    S: Subscription,
    I: Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match sub.next_change().await {
                Ok(change) => {
                    let Some(input) = to_input(change) else {
                        continue;
                    };
                    if tx.send(input).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // The core may be gone already; nothing else to do.
                    let _ = tx.send(lost(e));
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_lost_session_drops_its_connections_and_aborts_its_forwarders() {
        let s = SharedSession::new(7u32);
        let old = tokio::spawn(std::future::pending::<()>());
        let old_abort = old.abort_handle();
        s.lock().add_forwarder(old);
        assert_eq!(s.lock().conns(), Some(7));
        s.clone().lock().lost();
        assert_eq!(s.lock().conns(), None);
        tokio::task::yield_now().await;
        assert!(old_abort.is_finished(), "the old forwarder runs on");
        let new = tokio::spawn(std::future::pending::<()>());
        let new_abort = new.abort_handle();
        s.lock().connected(8, vec![new]);
        assert_eq!(s.lock().conns(), Some(8));
        drop(s);
        tokio::task::yield_now().await;
        assert!(new_abort.is_finished(), "dropping the session aborts");
    }
}
