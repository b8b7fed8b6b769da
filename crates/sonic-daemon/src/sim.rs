//! A simulated clock around any [`Core`] (test support, feature
//! `test-support`): the one harness both cores' tests and the conformance
//! scenarios drive them with, instead of the [`crate::engine::Driver`].
//!
//! Time only moves when the test says so, and then the way the driver
//! moves it: from deadline to deadline. [`Sim::advance_to`] fires every
//! deadline the core reports ([`Core::poll_timeout`]) up to the target, in
//! order, each at its own instant (never late, never early), and takes the
//! core's steps between two firings as the driver would between two
//! wake-ups. Two properties of the engine's contract are checked on every
//! call, so a test cannot pass on a core the driver would hang on:
//!
//! * **no spin**: after [`Core::handle_timeout`] at `t`, the core must not
//!   report a deadline at or before `t` again (the driver would wake up at
//!   once, forever);
//! * **termination**: [`Core::poll_action`] must run dry
//!   ([`MAX_STEPS`] steps at most without an input in between), and one
//!   advance may fire at most [`MAX_FIRINGS`] deadlines.
//!
//! A violation panics with what the core reported.
//!
//! ```text
//! let mut sim = Sim::from_core(core, t0);
//! sim.input(..);                // as the driver hands a result over
//! let steps = sim.steps();      // everything the core asks for now
//! sim.at(1000);                 // 1 s after t0, firing what is due
//! let t = sim.fire();           // jump to the next deadline and fire it
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sonic_netlink::socket::Received;

use crate::engine::{Core, Step};

/// Most steps one [`Sim::steps`] may collect before the core counts as
/// never running dry.
pub const MAX_STEPS: usize = 10_000;

/// Most deadlines one [`Sim::advance_to`] may fire before the core counts
/// as re-arming its timers without end.
pub const MAX_FIRINGS: usize = 100_000;

/// A core on a simulated clock (module docs). The fields are public so a
/// test reads the core and the clock directly (`sim.core.phase()`,
/// `sim.now`); move the clock only through [`Sim::advance_to`] and its
/// variants, which fire what is due.
pub struct Sim<C: Core> {
    /// The core under test.
    pub core: C,
    /// The instant the simulation started (offsets of [`Sim::at`] are from
    /// it).
    pub start: Instant,
    /// The simulated current instant.
    pub now: Instant,
    /// Steps the core produced between two firings of one advance, handed
    /// out first by the next [`Sim::steps`].
    queued: VecDeque<Step<C::Action>>,
}

impl<C: Core> Sim<C> {
    /// `core`, created at `start`; the clock reads `start`.
    pub fn from_core(core: C, start: Instant) -> Self {
        Sim {
            core,
            start,
            now: start,
            queued: VecDeque::new(),
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(self.start)
    }

    /// `t` as time since the start (zero for an earlier instant).
    pub fn since_start(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// Kernel messages read in one wake-up, `overrun` when the socket
    /// reported ENOBUFS after them ([`Core::handle_kernel`]). The core must
    /// take every message.
    pub fn handle_kernel(&mut self, mut msgs: Vec<Received>, overrun: bool) {
        self.core.handle_kernel(self.now, &mut msgs, overrun);
        assert!(
            msgs.is_empty(),
            "handle_kernel left {} messages undrained",
            msgs.len()
        );
    }

    /// One result of background work ([`Core::handle_input`]).
    pub fn input(&mut self, input: C::Input) {
        self.core.handle_input(self.now, input);
    }

    /// Everything the core asks for now: the steps queued by the last
    /// advance, then [`Core::poll_action`] until it runs dry.
    ///
    /// Panics when the core yields more than [`MAX_STEPS`] steps.
    pub fn steps(&mut self) -> Vec<Step<C::Action>> {
        let mut out: Vec<Step<C::Action>> = self.queued.drain(..).collect();
        let mut polled = 0usize;
        while let Some(step) = self.core.poll_action(self.now) {
            out.push(step);
            polled += 1;
            assert!(
                polled <= MAX_STEPS,
                "poll_action never runs dry ({MAX_STEPS} steps without an input)"
            );
        }
        out
    }

    /// The core's next deadline ([`Core::poll_timeout`]).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    /// Fires the core's next deadline if it is at or before `until`: the
    /// clock moves to it (or stays, for a deadline already past) and
    /// [`Core::handle_timeout`] runs there. Returns the instant it fired
    /// at; `None` (nothing done) when no deadline is due by `until`.
    ///
    /// Panics when the core then reports a deadline at or before that
    /// instant again (the driver would spin on it).
    pub fn fire_until(&mut self, until: Instant) -> Option<Instant> {
        let deadline = self.core.poll_timeout().filter(|t| *t <= until)?;
        let at = deadline.max(self.now);
        self.now = at;
        self.core.handle_timeout(at);
        if let Some(next) = self.core.poll_timeout() {
            assert!(
                next > at,
                "expired deadline reported again after handle_timeout at +{:?}: +{:?} (the driver would spin)",
                self.since_start(at),
                self.since_start(next)
            );
        }
        Some(at)
    }

    /// Jumps to the core's next deadline and fires it
    /// ([`Sim::fire_until`]); returns the instant.
    ///
    /// Panics when the core has no deadline.
    pub fn fire(&mut self) -> Instant {
        let Some(deadline) = self.core.poll_timeout() else {
            panic!("fire: the core has no deadline");
        };
        match self.fire_until(deadline.max(self.now)) {
            Some(at) => at,
            None => panic!("fire: the deadline did not fire"),
        }
    }

    /// Moves the clock to `t`, firing every deadline up to it in order
    /// ([`Sim::fire_until`]). Between two firings the core's steps are
    /// taken (as the driver takes them after each wake-up) and kept for
    /// the next [`Sim::steps`]; the steps after the last firing are left
    /// to the caller. An instant before [`Sim::now`] leaves the clock
    /// where it is.
    ///
    /// Panics after [`MAX_FIRINGS`] firings, or as [`Sim::fire_until`].
    pub fn advance_to(&mut self, t: Instant) -> &mut Self {
        let mut fired = 0usize;
        while self.fire_until(t).is_some() {
            fired += 1;
            assert!(
                fired <= MAX_FIRINGS,
                "more than {MAX_FIRINGS} deadlines fired before +{:?}: timers re-armed without end",
                self.since_start(t)
            );
            if self.core.poll_timeout().is_some_and(|next| next <= t) {
                while let Some(step) = self.core.poll_action(self.now) {
                    self.queued.push_back(step);
                    assert!(
                        self.queued.len() <= MAX_STEPS,
                        "poll_action never runs dry ({MAX_STEPS} steps queued)"
                    );
                }
            }
        }
        self.now = self.now.max(t);
        self
    }

    /// [`Sim::advance_to`] `d` from now.
    pub fn advance(&mut self, d: Duration) -> &mut Self {
        self.advance_to(self.now + d)
    }

    /// [`Sim::advance_to`] `ms` milliseconds after the start.
    pub fn at(&mut self, ms: u64) -> &mut Self {
        self.advance_to(self.start + Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::{TimerName, TimerTable};
    use sonic_netlink::socket::SocketError;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum T {
        Tick,
    }

    impl TimerName for T {
        const ALL: &'static [T] = &[T::Tick];
        fn index(self) -> usize {
            self as usize
        }
    }

    /// Ticks every `period`; each tick is one action.
    struct Ticker {
        timers: TimerTable<T>,
        period: Duration,
        ticks: Vec<Instant>,
        pending: usize,
        /// Bug switch: do not re-arm past `now` (the driver would spin).
        spin: bool,
        stats: crate::stats::Stats,
    }

    #[derive(Debug)]
    struct NoError;
    impl From<SocketError> for NoError {
        fn from(_: SocketError) -> Self {
            NoError
        }
    }

    impl Core for Ticker {
        type Input = ();
        type Action = Instant;
        type Error = NoError;
        fn handle_kernel(&mut self, _: Instant, msgs: &mut Vec<Received>, _: bool) {
            msgs.clear();
        }
        fn handle_dump_request_failed(&mut self, _: Instant, _: SocketError) {}
        fn handle_input(&mut self, _: Instant, _: ()) {}
        fn handle_timeout(&mut self, now: Instant) {
            for t in self.timers.expire(now) {
                match t {
                    T::Tick => {
                        self.ticks.push(now);
                        self.pending += 1;
                        let next = if self.spin { now } else { now + self.period };
                        self.timers.set(T::Tick, next);
                    }
                }
            }
        }
        fn begin_shutdown(&mut self, _: Instant) {}
        fn poll_action(&mut self, now: Instant) -> Option<Step<Instant>> {
            if self.pending == 0 {
                return None;
            }
            self.pending -= 1;
            Some(Step::Do(now))
        }
        fn poll_timeout(&self) -> Option<Instant> {
            self.timers.next()
        }
        fn reads_kernel(&self, _: Instant) -> bool {
            true
        }
        fn is_stopped(&self) -> bool {
            true
        }
        fn take_error(&mut self) -> Option<NoError> {
            None
        }
        fn stats_mut(&mut self) -> &mut crate::stats::Stats {
            &mut self.stats
        }
    }

    fn ticker(t0: Instant, spin: bool) -> Ticker {
        let mut timers = TimerTable::new();
        timers.set(T::Tick, t0 + Duration::from_millis(10));
        Ticker {
            timers,
            period: Duration::from_millis(10),
            ticks: Vec::new(),
            pending: 0,
            spin,
            stats: crate::stats::Stats::new(),
        }
    }

    #[test]
    fn advance_fires_each_deadline_at_its_own_instant() {
        let t0 = Instant::now();
        let mut sim = Sim::from_core(ticker(t0, false), t0);
        sim.at(35);
        let ms: Vec<u128> = sim
            .core
            .ticks
            .iter()
            .map(|t| (*t - t0).as_millis())
            .collect();
        assert_eq!(ms, [10, 20, 30]);
        assert_eq!(sim.elapsed(), Duration::from_millis(35));
        // The steps of the firings before the last were taken in between,
        // each at its instant; the last one's is polled now.
        let steps: Vec<u128> = sim
            .steps()
            .into_iter()
            .map(|s| match s {
                Step::Do(t) => (t - t0).as_millis(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(steps, [10, 20, 35]);
        let at = sim.fire();
        assert_eq!(sim.since_start(at), Duration::from_millis(40));
    }

    #[test]
    #[should_panic(expected = "the driver would spin")]
    fn a_deadline_reported_again_after_firing_panics() {
        let t0 = Instant::now();
        let mut sim = Sim::from_core(ticker(t0, true), t0);
        sim.at(10);
    }
}
