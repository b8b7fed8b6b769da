//! The shared driver with a toy core: actions are carried out and their
//! results come back as inputs, the core's one timer fires no earlier than
//! asked, a fatal error stops the driver, and SIGTERM lets the core finish
//! what is pending, bounded by the shutdown limit.
//!
//! Its own test binary: it raises SIGTERM in its own process.

use std::time::{Duration, Instant};

use sonic_daemon::engine::{Core, Driver, Effects, Io, Signals, Step};
use sonic_daemon::stats::{Publisher, Stats};
use sonic_daemon::{Health, Metrics, Notifier};
use sonic_netlink::socket::{NetlinkSocket, RcvBuf, Received, SocketError};

#[derive(Debug)]
enum Fatal {
    Netlink,
    Toy,
}

impl From<SocketError> for Fatal {
    fn from(_: SocketError) -> Self {
        Fatal::Netlink
    }
}

/// Asks for `work` jobs at start; each takes 50 ms in the background. A
/// timer at +100 ms records when it fired. On SIGTERM it asks for one more
/// job and is stopped once every job came back (or never, `stubborn`).
#[derive(Default)]
struct Toy {
    started: Option<Instant>,
    queued: Vec<u32>,
    done: Vec<u32>,
    timer: Option<Instant>,
    fired_at: Option<Instant>,
    shutdown: bool,
    stubborn: bool,
    fail_after: Option<usize>,
    error: Option<Fatal>,
    stats: Stats,
}

impl Core for Toy {
    type Input = u32;
    type Action = u32;
    type Error = Fatal;

    fn handle_kernel(&mut self, _: Instant, msgs: &mut Vec<Received>, _: bool) {
        msgs.clear();
    }
    fn handle_dump_request_failed(&mut self, _: Instant, _: SocketError) {}
    fn handle_input(&mut self, _: Instant, input: u32) {
        self.done.push(input);
        self.stats.redis_batches += 1;
        if self.fail_after == Some(self.done.len()) {
            self.error = Some(Fatal::Toy);
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.fired_at = Some(now);
        self.timer = None;
    }
    fn begin_shutdown(&mut self, _: Instant) {
        self.shutdown = true;
        self.queued.push(99);
    }
    fn poll_action(&mut self, now: Instant) -> Option<Step<u32>> {
        if self.started.is_none() {
            self.started = Some(now);
            self.timer = Some(now + Duration::from_millis(100));
        }
        self.queued.pop().map(Step::Do)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }
    fn reads_kernel(&self, _: Instant) -> bool {
        true
    }
    fn is_stopped(&self) -> bool {
        !self.stubborn && self.done.contains(&99)
    }
    fn take_error(&mut self) -> Option<Fatal> {
        self.error.take()
    }
    fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }
}

struct ToyEffects;

impl Effects<Toy> for ToyEffects {
    fn execute(&mut self, job: u32, io: &mut Io<u32>) {
        io.spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            job
        });
    }
}

fn driver(limit: Duration) -> Driver<Toy> {
    driver_to(limit, &Metrics::new("toy"))
}

/// A driver publishing the core's stats to `metrics`.
fn driver_to(limit: Duration, metrics: &Metrics) -> Driver<Toy> {
    let sock = NetlinkSocket::open_with(&[], RcvBuf::KernelDefault).expect("netlink socket");
    let publisher = Publisher::new(metrics.clone(), Health::new(metrics));
    Driver::new(sock, Notifier::new(), publisher, limit)
}

fn sigterm_after(delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).expect("raise SIGTERM");
    });
}

#[tokio::test(flavor = "current_thread")]
async fn driver_runs_actions_timer_and_a_bounded_shutdown() {
    // Work, timer, then SIGTERM: the job asked for at shutdown is waited for.
    let mut toy = Toy {
        queued: vec![1, 2],
        ..Toy::default()
    };
    let signals = Signals::install().expect("signal handlers");
    sigterm_after(Duration::from_millis(300));
    let t0 = Instant::now();
    let metrics = Metrics::new("toy");
    let res = driver_to(Duration::from_secs(5), &metrics)
        .run(&mut toy, &mut ToyEffects, signals)
        .await;
    assert!(res.is_ok());
    let mut done = toy.done.clone();
    done.sort_unstable();
    assert_eq!(done, [1, 2, 99], "every job's result came back");
    assert!(
        metrics.encode().contains("toy_redis_batches_total 3"),
        "the core's counters reached the metrics: {}",
        metrics.encode()
    );
    let fired = toy.fired_at.expect("the timer fired") - toy.started.expect("started");
    assert!(fired >= Duration::from_millis(100), "not early: {fired:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "stopped once idle");

    // A core that never stops is cut off at the shutdown limit.
    let mut stubborn = Toy {
        stubborn: true,
        ..Toy::default()
    };
    let signals = Signals::install().expect("signal handlers");
    sigterm_after(Duration::from_millis(100));
    let t0 = Instant::now();
    let res = driver(Duration::from_millis(400))
        .run(&mut stubborn, &mut ToyEffects, signals)
        .await;
    assert!(res.is_ok());
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "bounded by the limit: {took:?}"
    );

    // A fatal error from the core ends the run with that error.
    let mut failing = Toy {
        queued: vec![7],
        fail_after: Some(1),
        ..Toy::default()
    };
    let signals = Signals::install().expect("signal handlers");
    let res = driver(Duration::from_secs(5))
        .run(&mut failing, &mut ToyEffects, signals)
        .await;
    assert!(matches!(res, Err(Fatal::Toy)));
}
