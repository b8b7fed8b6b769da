//! What both cores keep about Redis, once: the session ([`Session`]: up or
//! reconnecting, and which connection a result belongs to) and the one
//! flush in flight ([`Flight`]: its read hold, the retry backoff after an
//! error reply, and the age of the oldest kernel event not yet
//! acknowledged).
//!
//! Nothing here reads the clock or does I/O: instants come from the core,
//! and the flight's deadlines live in the core's [`TimerTable`] under the
//! names the core gives it ([`Flight::new`]).

use std::time::{Duration, Instant};

use swss::connector::Backoff;

use crate::engine::FLUSH_READ_PAUSE;
use crate::timer::{TimerName, TimerTable};

/// Which Redis session a request or its result belongs to. It changes each
/// time Redis is lost, so a result of work sent on a lost connection
/// (reported after the reconnect began) is recognised as stale.
pub type Epoch = u64;

/// Whether Redis is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redis {
    /// Connected; writes go out.
    Up,
    /// Lost; the core's reconnect action is running.
    Reconnecting,
}

/// The Redis session of a core: [`Redis`] plus the current [`Epoch`]. A
/// core starts connected on epoch 0 (start-up connected before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    state: Redis,
    epoch: Epoch,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    /// Connected, epoch 0.
    pub fn new() -> Self {
        Session {
            state: Redis::Up,
            epoch: 0,
        }
    }

    /// Up or reconnecting.
    pub fn state(&self) -> Redis {
        self.state
    }

    /// Whether Redis is usable.
    pub fn is_up(&self) -> bool {
        self.state == Redis::Up
    }

    /// The current session; work sent now carries it.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Whether a result of work sent on `epoch` belongs to this session.
    pub fn is_current(&self, epoch: Epoch) -> bool {
        epoch == self.epoch
    }

    /// Redis was lost. Returns the new session's epoch (the reconnect to
    /// ask for) the first time; `None` while already reconnecting (one
    /// loss, however many results report it).
    pub fn lose(&mut self) -> Option<Epoch> {
        if self.state == Redis::Reconnecting {
            return None;
        }
        self.state = Redis::Reconnecting;
        self.epoch += 1;
        Some(self.epoch)
    }

    /// The reconnect of `epoch` finished. Returns whether it is this
    /// session's (it is then up); a stale or repeated one changes nothing.
    pub fn reconnected(&mut self, epoch: Epoch) -> bool {
        if epoch != self.epoch || self.state == Redis::Up {
            return false;
        }
        self.state = Redis::Up;
        true
    }
}

/// A flush in flight ([`Flight::in_flight`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// The session it was sent on.
    pub epoch: Epoch,
    /// Receive time of the oldest kernel event in it (`None` when it
    /// carries none, e.g. a resync's writes).
    pub since: Option<Instant>,
    /// Still holding live kernel reads back ([`FLUSH_READ_PAUSE`] after it
    /// was sent).
    pub holds_reads: bool,
}

/// The one flush a core has in flight at a time (both daemons write one
/// pipeline, then the next with everything staged meanwhile).
///
/// * [`Flight::send`] arms the core's *hold* timer [`FLUSH_READ_PAUSE`]
///   ahead: until it fires ([`Flight::hold_expired`]) or the flush lands,
///   [`Flight::holds_reads`] says to leave kernel messages in the socket
///   buffer, so they ride the next flush together.
/// * An error reply: [`Flight::retry_later`] arms the *retry* timer on the
///   one backoff schedule (100 ms doubling to 5 s, [`Backoff`]); no flush
///   goes out before it ([`Flight::may_send`]). A success resets it.
/// * `unacked_since`: the receive time of the oldest staged kernel event
///   not yet acknowledged, for the `event_to_ack` latency.
#[derive(Debug, Clone)]
pub struct Flight<T: TimerName> {
    in_flight: Option<InFlight>,
    unacked_since: Option<Instant>,
    backoff: Backoff,
    hold: T,
    retry: T,
}

impl<T: TimerName> Flight<T> {
    /// Nothing in flight; `hold` and `retry` are the names of the core's
    /// timers the flight arms.
    pub fn new(hold: T, retry: T) -> Self {
        Flight {
            in_flight: None,
            unacked_since: None,
            backoff: Backoff::new(),
            hold,
            retry,
        }
    }

    /// The flush in flight, if any.
    pub fn in_flight(&self) -> Option<&InFlight> {
        self.in_flight.as_ref()
    }

    /// Whether a flush is in flight.
    pub fn is_flying(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether live kernel reads wait for the flush in flight.
    pub fn holds_reads(&self) -> bool {
        self.in_flight.is_some_and(|f| f.holds_reads)
    }

    /// A kernel event received at `now` was staged (the oldest one counts).
    pub fn staged(&mut self, now: Instant) {
        self.unacked_since.get_or_insert(now);
    }

    /// Whether the retry delay after an error reply has passed (or none
    /// runs) at `now`.
    pub fn retry_allows(&self, timers: &TimerTable<T>, now: Instant) -> bool {
        timers.get(self.retry).is_none_or(|t| now >= t)
    }

    /// Whether a flush may go out at `now`: nothing in flight and no
    /// retry delay running. (Whether Redis is up is the session's.)
    pub fn may_send(&self, timers: &TimerTable<T>, now: Instant) -> bool {
        self.in_flight.is_none() && self.retry_allows(timers, now)
    }

    /// A flush goes out at `now` on `epoch`. `rest_pending`: staged events
    /// did not all fit, so the oldest age stays with what waits as well.
    pub fn send(
        &mut self,
        timers: &mut TimerTable<T>,
        now: Instant,
        epoch: Epoch,
        rest_pending: bool,
    ) {
        timers.stop(self.retry);
        let since = if rest_pending {
            self.unacked_since
        } else {
            self.unacked_since.take()
        };
        self.in_flight = Some(InFlight {
            epoch,
            since,
            holds_reads: true,
        });
        timers.set(self.hold, now + FLUSH_READ_PAUSE);
    }

    /// The hold timer fired: reads no longer wait for this flush.
    pub fn hold_expired(&mut self) {
        if let Some(f) = self.in_flight.as_mut() {
            f.holds_reads = false;
        }
    }

    /// The flush in flight is over (answered, or its session lost);
    /// returns it.
    pub fn end(&mut self, timers: &mut TimerTable<T>) -> Option<InFlight> {
        timers.stop(self.hold);
        self.in_flight.take()
    }

    /// A flush was acknowledged: the retry schedule starts over.
    pub fn succeeded(&mut self) {
        self.backoff.reset();
    }

    /// A flush that carried events since `since` failed: its keys are
    /// staged again, so their age is kept.
    pub fn requeue(&mut self, since: Option<Instant>) {
        self.unacked_since = crate::engine::earliest(self.unacked_since, since);
    }

    /// An error reply at `now`: no flush before the next backoff delay,
    /// which is returned (for the log).
    pub fn retry_later(&mut self, timers: &mut TimerTable<T>, now: Instant) -> Duration {
        let delay = self.backoff.next_delay();
        timers.set(self.retry, now + delay);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum T {
        Hold,
        Retry,
    }
    impl TimerName for T {
        const ALL: &'static [T] = &[T::Hold, T::Retry];
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn a_session_is_lost_once_and_only_its_own_reconnect_ends_the_loss() {
        let mut s = Session::new();
        assert!(s.is_up() && s.is_current(0));
        assert_eq!(s.lose(), Some(1));
        assert_eq!(s.lose(), None, "a second report of the same loss");
        assert!(!s.reconnected(0), "a stale reconnect");
        assert_eq!(s.state(), Redis::Reconnecting);
        assert!(s.reconnected(1));
        assert!(!s.reconnected(1), "repeated");
        assert!(s.is_up() && !s.is_current(0) && s.is_current(1));
    }

    #[test]
    fn a_flight_holds_reads_until_its_timer_and_backs_off_after_errors() {
        let t0 = Instant::now();
        let mut timers = TimerTable::new();
        let mut f = Flight::new(T::Hold, T::Retry);
        f.staged(t0);
        f.staged(t0 + Duration::from_millis(1));
        assert!(f.may_send(&timers, t0));
        f.send(&mut timers, t0, 3, false);
        assert!(f.holds_reads() && !f.may_send(&timers, t0));
        assert_eq!(timers.get(T::Hold), Some(t0 + FLUSH_READ_PAUSE));
        f.hold_expired();
        assert!(!f.holds_reads() && f.is_flying());
        let ended = f.end(&mut timers).expect("in flight");
        assert_eq!((ended.epoch, ended.since), (3, Some(t0)));
        assert_eq!(timers.get(T::Hold), None);

        // Two error replies: 100 ms, then 200 ms; the keys keep their age.
        f.requeue(ended.since);
        assert_eq!(f.retry_later(&mut timers, t0), Duration::from_millis(100));
        assert!(!f.may_send(&timers, t0 + Duration::from_millis(99)));
        assert!(f.may_send(&timers, t0 + Duration::from_millis(100)));
        assert_eq!(f.retry_later(&mut timers, t0), Duration::from_millis(200));
        f.send(&mut timers, t0 + Duration::from_millis(200), 3, true);
        assert_eq!(timers.get(T::Retry), None, "sending ends the retry wait");
        let again = f.end(&mut timers).expect("in flight");
        assert_eq!(again.since, Some(t0));
        f.succeeded();
        assert_eq!(f.retry_later(&mut timers, t0), Duration::from_millis(100));
    }
}
