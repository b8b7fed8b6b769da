//! The one driver both daemons run: an I/O-free [`Core`] decides, the
//! [`Driver`] waits and carries out (docs/engine.md).
//!
//! ```text
//! kernel  --NetlinkSocket::recv-->  core.handle_kernel(now, msgs, overrun)
//! Redis   --Io::spawn results---->  core.handle_input(now, input)
//! clock   --core.poll_timeout()-->  core.handle_timeout(now)
//! signals --SIGTERM / SIGINT----->  core.begin_shutdown(now)
//!         <--core.poll_action()---  Step::Dump | Ready | Status | Do(action)
//! ```
//!
//! The core never awaits and never reads a clock: every input carries
//! `now`, and the one timer it wants is [`Core::poll_timeout`]. The driver
//! owns the netlink socket, the systemd notifier and watchdog beat, the
//! signal handlers and the bounded shutdown; everything Redis is done by the
//! daemon's [`Effects`], whose work reports back through [`Io::spawn`]
//! (futures the driver polls itself) or [`Io::sender`] (tasks that yield
//! many inputs, such as a subscription). Retries of that work use one [`Backoff`].
//!
//! So batching needs no sleep: the core flushes as soon as something is
//! staged and no flush is in flight, and tells the driver through
//! [`Core::reads_kernel`] when to leave events in the socket buffer (they
//! are then all read in one wake-up and ride the next flush together).

use std::future::Future;
use std::time::{Duration, Instant};

use futures::future::{AbortHandle, Abortable, LocalBoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use sonic_netlink::socket::{Dump, NetlinkSocket, Received, SocketError};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::notify::{LoopTicker, Notifier};
use crate::startup::DaemonError;
use crate::stats::{Publisher, Stats};

pub use swss::connector::Backoff;

/// While a flush is in flight, kernel messages wait in the socket buffer
/// and are then read in one wake-up, to ride the next flush together
/// ([`Core::reads_kernel`]); a flush slower than this (Redis busy or
/// hanging) no longer holds them back, so the socket buffer cannot
/// overflow behind a stalled Redis. Both daemons' cores use it.
pub const FLUSH_READ_PAUSE: Duration = Duration::from_millis(20);
/// How long SIGTERM/SIGINT may spend writing what is pending before the
/// daemon exits (both daemons; the C++ exits at once, losing it).
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// Capacity, in messages, the driver's receive batch keeps between reads
/// (20 KiB); a dump's batch of up to
/// [`sonic_netlink::socket::MAX_MESSAGES_PER_BATCH`] grows it for one read.
const RECEIVED_KEEP: usize = 256;

// ===== the core's side =====

/// What a core asks the driver to do next ([`Core::poll_action`]).
#[derive(Debug)]
pub enum Step<A> {
    /// Send a netlink dump request. A failed request comes back as
    /// [`Core::handle_dump_request_failed`]; the replies through
    /// [`Core::handle_kernel`].
    Dump(Dump),
    /// systemd `READY=1` with this `STATUS=` line (sent once).
    Ready(String),
    /// systemd `STATUS=` line.
    Status(String),
    /// Daemon-specific work, carried out by [`Effects::execute`].
    Do(A),
}

/// A daemon's logic with no I/O inside (the shape of quinn-proto's
/// `Connection`): inputs in, [`Step`]s out, one timer. Deterministic given
/// its inputs and their `now`, so it is tested with a simulated clock.
pub trait Core {
    /// Results of work done for the core (Redis replies, CONFIG_DB changes,
    /// a finished reconnect, ...).
    type Input: Send + 'static;
    /// Daemon-specific effects ([`Step::Do`]).
    type Action;
    /// Why the daemon stops with a failure.
    type Error: From<SocketError>;

    /// Kernel messages read in one wake-up (`overrun`: the socket reported
    /// ENOBUFS after them: events were lost). Drains `msgs`.
    fn handle_kernel(&mut self, now: Instant, msgs: &mut Vec<Received>, overrun: bool);
    /// The dump request of a [`Step::Dump`] could not be sent.
    fn handle_dump_request_failed(&mut self, now: Instant, error: SocketError);
    /// One result of background work.
    fn handle_input(&mut self, now: Instant, input: Self::Input);
    /// Called when [`Core::poll_timeout`] has passed (possibly late, never
    /// early). Must move the deadline it reported, or the driver spins:
    /// both cores keep their deadlines in a [`crate::timer::TimerTable`],
    /// whose `expire` stops what it hands out.
    fn handle_timeout(&mut self, now: Instant);
    /// SIGTERM / SIGINT: write what is pending, then report
    /// [`Core::is_stopped`]. The driver stops reading the kernel.
    fn begin_shutdown(&mut self, now: Instant);

    /// The next thing to do, until `None`.
    fn poll_action(&mut self, now: Instant) -> Option<Step<Self::Action>>;
    /// The earliest instant the core wants [`Core::handle_timeout`] at.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether the driver reads the netlink socket now (else the datagrams
    /// wait in the socket buffer, not even waking the thread).
    fn reads_kernel(&self, now: Instant) -> bool;
    /// After [`Core::begin_shutdown`]: nothing pending or in flight.
    fn is_stopped(&self) -> bool;
    /// A fatal error: the driver stops and returns it.
    fn take_error(&mut self) -> Option<Self::Error>;
    /// The core's counters, gauges and Redis health; the driver publishes
    /// what changed after each wake-up ([`Publisher::publish`]).
    fn stats_mut(&mut self) -> &mut Stats;
    /// Logs what stays unwritten when the driver returned (default:
    /// nothing).
    fn log_exit(&self) {}
}

/// Carries out a core's [`Step::Do`] actions: the daemon's Redis glue.
pub trait Effects<C: Core> {
    /// Starts `action`. Its outcome (if any) comes back later as
    /// [`Core::handle_input`] through `io`; nothing here may block.
    fn execute(&mut self, action: C::Action, io: &mut Io<C::Input>);
    /// Called once before the driver runs: starts forwarding the start-up
    /// subscriptions (session 0) through [`Io::sender`] (default: none).
    fn begin(&mut self, _io: &mut Io<C::Input>) {}
}

// ===== the driver's side =====

/// What [`Effects::execute`] may use: the way back to the core (the
/// driver keeps the netlink socket).
pub struct Io<I> {
    /// The daemon's netlink socket, read and asked for dumps by the driver.
    sock: NetlinkSocket,
    tx: mpsc::UnboundedSender<I>,
    /// Work in progress, polled by the driver itself (no task hop between
    /// a Redis reply and the core).
    work: FuturesUnordered<Abortable<LocalBoxFuture<'static, I>>>,
}

impl<I: Send + 'static> Io<I> {
    /// Starts `work`; its output becomes one [`Core::handle_input`]. The
    /// driver polls it on its own thread, between its other waits.
    /// [`AbortHandle::abort`] drops the future (and whatever connection it
    /// holds) and its result never arrives.
    pub fn spawn<F>(&mut self, work: F) -> AbortHandle
    where
        F: Future<Output = I> + 'static,
    {
        let (handle, registration) = AbortHandle::new_pair();
        let work: LocalBoxFuture<'static, I> = Box::pin(work);
        self.work.push(Abortable::new(work, registration));
        handle
    }

    /// A sender for long-running work that yields many inputs (a
    /// subscription task).
    pub fn sender(&self) -> mpsc::UnboundedSender<I> {
        self.tx.clone()
    }
}

/// SIGTERM and SIGINT handlers. Install them first thing, so that a stop
/// request during start-up (e.g. while Redis is away) also exits 0.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs both handlers.
    ///
    /// Errors: [`DaemonError::Signal`] naming the handler that could not
    /// be installed (`SIGTERM` or `SIGINT`), with the OS error.
    pub fn install() -> Result<Self, DaemonError> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(|e| DaemonError::Signal("SIGTERM", e))?,
            int: signal(SignalKind::interrupt()).map_err(|e| DaemonError::Signal("SIGINT", e))?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Runs a [`Core`] with its [`Effects`] until SIGTERM/SIGINT (then the
/// core gets [`Driver::shutdown_limit`] to write what is pending) or a
/// fatal error.
pub struct Driver<C: Core> {
    io: Io<C::Input>,
    rx: mpsc::UnboundedReceiver<C::Input>,
    notifier: Notifier,
    /// Metrics and `/healthz`, fed from [`Core::stats_mut`].
    publisher: Publisher,
    /// How long the shutdown may take at most.
    pub shutdown_limit: Duration,
}

impl<C: Core> Driver<C> {
    /// A driver around an open netlink socket (dumps already requested at
    /// start-up are read by [`Driver::run`]), publishing the core's stats
    /// with `publisher`.
    pub fn new(
        sock: NetlinkSocket,
        notifier: Notifier,
        publisher: Publisher,
        limit: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Driver {
            io: Io {
                sock,
                tx,
                work: FuturesUnordered::new(),
            },
            rx,
            notifier,
            publisher,
            shutdown_limit: limit,
        }
    }

    /// The way back to the core, for work started before [`Driver::run`]
    /// (the start-up subscriptions).
    pub fn io(&mut self) -> &mut Io<C::Input> {
        &mut self.io
    }

    /// The loop. Returns `Ok` after a signal once the core is stopped or
    /// the shutdown limit passed.
    ///
    /// Errors: [`Core::take_error`], or the netlink socket failing for a
    /// reason other than an overrun (converted with `From<SocketError>`).
    pub async fn run<E: Effects<C>>(
        mut self,
        core: &mut C,
        effects: &mut E,
        mut signals: Signals,
    ) -> Result<(), C::Error> {
        let mut ticker: LoopTicker = self.notifier.loop_ticker();
        let mut received: Vec<Received> = Vec::new();
        let mut deadline: Option<Instant> = None;
        loop {
            self.notifier.beat();
            let now = Instant::now();
            self.execute_all(core, effects, now);
            self.publisher.publish(core.stats_mut());
            if let Some(e) = core.take_error() {
                return Err(e);
            }
            if let Some(end) = deadline {
                if core.is_stopped() || now >= end {
                    return Ok(());
                }
            }
            let reading = deadline.is_none() && core.reads_kernel(now);
            if !reading {
                self.io.sock.pause();
            }
            let timeout = earliest(core.poll_timeout(), deadline);
            tokio::select! {
                name = signals.recv(), if deadline.is_none() => {
                    tracing::info!("{name}: exiting");
                    self.notifier.stopping();
                    let now = Instant::now();
                    deadline = Some(now + self.shutdown_limit);
                    core.begin_shutdown(now);
                }
                res = self.io.sock.recv(&mut received), if reading => {
                    let overrun = match res {
                        Ok(()) => false,
                        Err(SocketError::Overrun) => true,
                        Err(e) => {
                            self.publisher.health().set_netlink_up(false);
                            return Err(e.into());
                        }
                    };
                    core.handle_kernel(Instant::now(), &mut received, overrun);
                    // A dump's batches need thousands of slots, an event a
                    // few: the buffer is sized again for every batch rather
                    // than keeping a dump's for good (80 bytes a message;
                    // a regrowth costs far less than decoding the batch).
                    received.clear();
                    received.shrink_to(RECEIVED_KEEP);
                }
                Some(input) = self.rx.recv() => core.handle_input(Instant::now(), input),
                Some(done) = self.io.work.next(), if !self.io.work.is_empty() => {
                    // An aborted piece of work has no result.
                    if let Ok(input) = done {
                        core.handle_input(Instant::now(), input);
                    }
                }
                _ = sleep_until(timeout), if timeout.is_some() => {
                    let now = Instant::now();
                    if core.poll_timeout().is_some_and(|t| t <= now) {
                        core.handle_timeout(now);
                    }
                }
                _ = ticker.tick() => {}
            }
        }
    }

    /// Carries out every step the core has ready.
    fn execute_all<E: Effects<C>>(&mut self, core: &mut C, effects: &mut E, now: Instant) {
        while let Some(step) = core.poll_action(now) {
            match step {
                Step::Dump(what) => {
                    if let Err(e) = self.io.sock.request_dump(what) {
                        tracing::error!(error = %e, dump = ?what, "cannot request a netlink dump");
                        core.handle_dump_request_failed(now, e);
                    }
                }
                Step::Ready(status) => {
                    self.notifier.ready(&status);
                }
                Step::Status(status) => self.notifier.status(&status),
                Step::Do(action) => effects.execute(action, &mut self.io),
            }
        }
    }
}

/// Runs a daemon: SIGTERM/SIGINT handlers first (a stop request during
/// start-up exits `Ok` at once), then `start` (the daemon's start-up steps,
/// which hand over its core, effects and netlink socket), then the
/// [`Driver`] publishing to `ops`' metrics and health, with
/// [`SHUTDOWN_FLUSH_LIMIT`]; [`Core::log_exit`] once it returned. Both
/// daemons' `run`. Must run inside a tokio runtime with IO and time
/// enabled (the binaries use a current-thread runtime).
///
/// Errors: a signal handler that cannot be installed, `start`'s error, or
/// the driver's ([`Driver::run`]).
pub async fn run<C, E, F>(ops: &crate::Ops, start: F) -> Result<(), C::Error>
where
    C: Core,
    C::Error: From<DaemonError>,
    E: Effects<C>,
    F: Future<Output = Result<(C, E, NetlinkSocket), C::Error>>,
{
    let mut signals = Signals::install()?;
    let (mut core, mut effects, sock) = tokio::select! {
        started = start => started?,
        name = signals.recv() => {
            tracing::info!(signal = name, "stopped during start-up");
            ops.notifier.stopping();
            return Ok(());
        }
    };
    let mut driver = Driver::new(
        sock,
        ops.notifier.clone(),
        ops.publisher(),
        SHUTDOWN_FLUSH_LIMIT,
    );
    effects.begin(driver.io());
    let res = driver.run(&mut core, &mut effects, signals).await;
    core.log_exit();
    res
}

/// The earlier of two optional instants.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Sleeps until `at` (pending forever on `None`).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// Retries `attempt` with [`Backoff`] until it succeeds; each failure is
/// logged as a warning with `what` and the delay. For background work
/// that must not give up (a reconnect, the warm-restart state write).
pub async fn retry_forever<T, E, F, Fut>(what: &str, mut attempt: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new();
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what}; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}
