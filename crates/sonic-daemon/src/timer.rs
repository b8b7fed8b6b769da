//! A core's deadlines in one table, by name (the shape of quinn-proto's
//! `TimerTable`): [`crate::engine::Core::poll_timeout`] is the table's
//! earliest deadline, and [`crate::engine::Core::handle_timeout`] takes every
//! expired timer out of it ([`TimerTable::expire`]) and acts on each by
//! name. A timer that fired is stopped before it is acted on, so the
//! deadline the core reported always moves and the driver cannot spin on
//! it; a timer re-armed by its handler is re-armed explicitly.
//!
//! Nothing here reads the clock: instants come from the caller.

use std::fmt::Debug;
use std::time::Instant;

/// The names of a core's timers: a fieldless enum listing every variant in
/// [`TimerName::ALL`], each at its own position ([`TimerName::index`]).
pub trait TimerName: Copy + Eq + Debug + 'static {
    /// Every timer, in the order [`TimerTable::expire`] hands out timers
    /// that expire at the same instant.
    const ALL: &'static [Self];
    /// The position of `self` in [`TimerName::ALL`].
    fn index(self) -> usize;
}

/// One optional deadline per timer name (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerTable<T: TimerName> {
    at: Vec<Option<Instant>>,
    _names: std::marker::PhantomData<T>,
}

impl<T: TimerName> Default for TimerTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: TimerName> TimerTable<T> {
    /// Every timer stopped.
    pub fn new() -> Self {
        TimerTable {
            at: vec![None; T::ALL.len()],
            _names: std::marker::PhantomData,
        }
    }

    /// Arms `timer` for `at` (replacing an earlier deadline).
    pub fn set(&mut self, timer: T, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    /// Arms `timer` for `at` unless it is already armed.
    pub fn set_if_unset(&mut self, timer: T, at: Instant) {
        self.at[timer.index()].get_or_insert(at);
    }

    /// Stops `timer` (nothing if it is not armed).
    pub fn stop(&mut self, timer: T) {
        self.at[timer.index()] = None;
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: T) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// Whether `timer` is armed.
    pub fn is_set(&self, timer: T) -> bool {
        self.at[timer.index()].is_some()
    }

    /// The earliest deadline of all armed timers.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// Stops every timer whose deadline is at or before `now` and returns
    /// them, earliest first (ties in [`TimerName::ALL`] order).
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let mut due: Vec<(Instant, T)> = T::ALL
            .iter()
            .filter_map(|&t| self.at[t.index()].filter(|&at| at <= now).map(|at| (at, t)))
            .collect();
        due.sort_by_key(|(at, _)| *at);
        for (_, t) in &due {
            self.stop(*t);
        }
        due.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum T {
        A,
        B,
        C,
    }

    impl TimerName for T {
        const ALL: &'static [T] = &[T::A, T::B, T::C];
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn next_is_the_earliest_and_expire_stops_what_fired() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t: TimerTable<T> = TimerTable::new();
        assert_eq!(t.next(), None);
        t.set(T::C, ms(10));
        t.set(T::A, ms(30));
        t.set(T::B, ms(10));
        assert_eq!(t.next(), Some(ms(10)));
        assert!(t.expire(ms(9)).is_empty());
        // Both due at 10: in declaration order; A stays.
        assert_eq!(t.expire(ms(10)), [T::B, T::C]);
        assert_eq!(t.next(), Some(ms(30)));
        assert!(!t.is_set(T::B));
        t.set_if_unset(T::A, ms(50));
        assert_eq!(t.get(T::A), Some(ms(30)));
        t.stop(T::A);
        assert_eq!(t.next(), None);
        // Late: everything past due fires, earliest first.
        t.set(T::C, ms(5));
        t.set(T::A, ms(7));
        assert_eq!(t.expire(ms(100)), [T::C, T::A]);
    }
}
