//! neighsyncd's golden-file conformance scenarios
//! (`tests/conformance/neighsyncd/<NN>-<name>/{input,expected}` at the
//! repository root; grammar and output format in
//! `tests/conformance/README.md`).
//!
//! The runner plays the daemon's world around the I/O-free
//! [`NeighCore`] on a simulated clock ([`Sim`]): a kernel (links and
//! neighbours, answering dump requests from its tables, notifications
//! queued in a socket buffer the core reads when it wants), Redis (an
//! in-memory APPL_DB / STATE_DB / CONFIG_DB the daemon's own write code runs
//! against, with scripted faults), the consumers (orchagent and nbrmgrd pop
//! what the producers wrote) and the clock. It does what the engine's
//! driver and the daemon's effects do with each step the core asks for,
//! and writes the transcript.
//!
//! Regenerate the expected files after an intended change:
//! `CONFORMANCE_BLESS=1 cargo test -p neighsyncd --test conformance`.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use neighsyncd::context::{ConfigTable, SyncContext, SyncOptions};
use neighsyncd::core::{apply_cfg, Action, Epoch, Input, NeighCore, Setup, Timer};
use neighsyncd::daemon::{write_batch, Producers};
use neighsyncd::warm::{WarmCache, DEFAULT_RESTORE_WAIT};
use neighsyncd::writer::Batch;
use sonic_daemon::conformance::kernel::{number, Links, Socket};
use sonic_daemon::conformance::redis::{Conn, Db, Fault};
use sonic_daemon::conformance::{
    block_on, describe_outcomes, format_fvs, format_ms, kernel_event_counts, parse_duration,
    plural, quote, run_all, set_or_del, Line, Scenario, ScriptError, Transcript, Words,
};
use sonic_daemon::engine::{Core, Step};
use sonic_daemon::sim::Sim;
use sonic_daemon::timer::TimerName;
use sonic_netlink::neigh::{nud, NTF_EXT_LEARNED};
use sonic_netlink::socket::{Dump, KernelMessage};
use sonic_netlink::{NeighMsgType, NeighborEvent};
use swss::restart_assist::{AppRestartAssist, ReconcileOps, WRITE_CHUNK};
use swss::warm_restart::{parse_warm_start_timer, set_warm_start_state, WarmStartState};
use swss::{KeyOp, ProducerStateTable, SwssError};

const ROOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/conformance/neighsyncd"
);

#[test]
fn conformance() {
    run_all(Path::new(ROOT), run);
}

/// Runs one scenario: every line in order, then the end state.
fn run(scenario: &Scenario) -> Result<String, ScriptError> {
    let mut world = World::new();
    for line in &scenario.lines {
        world.t.echo(line);
        if line.directive.is_empty() {
            continue;
        }
        world.directive(line).map_err(|e| scenario.error(line, e))?;
        world.settle().map_err(|e| scenario.error(line, e))?;
    }
    world.finish().map_err(|e| ScriptError {
        file: scenario.input.clone(),
        line: 0,
        message: e,
    })?;
    Ok(world.t.finish())
}

// ===== the kernel =====

#[derive(Debug, Clone, Copy)]
struct Neigh {
    lladdr: Option<[u8; 6]>,
    state: u16,
    flags: u8,
}

/// The kernel's links and neighbours, as dumps list them.
#[derive(Debug, Default)]
struct Kernel {
    links: Links,
    neighs: BTreeMap<(u32, IpAddr), Neigh>,
}

const STATES: [(&str, u16); 9] = [
    ("NONE", nud::NONE),
    ("INCOMPLETE", nud::INCOMPLETE),
    ("REACHABLE", nud::REACHABLE),
    ("STALE", nud::STALE),
    ("DELAY", nud::DELAY),
    ("PROBE", nud::PROBE),
    ("FAILED", nud::FAILED),
    ("NOARP", nud::NOARP),
    ("PERMANENT", nud::PERMANENT),
];

fn state_name(state: u16) -> String {
    STATES
        .iter()
        .find(|(_, s)| *s == state)
        .map_or_else(|| format!("0x{state:02x}"), |(n, _)| n.to_string())
}

fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    neighsyncd::sync::parse_mac(text).ok_or_else(|| format!("bad MAC {text:?}"))
}

fn mac_text(mac: &[u8; 6]) -> String {
    sonic_netlink::fmt::mac_to_string(mac)
}

impl Kernel {
    /// A kernel message written as in the input grammar.
    fn parse(&self, words: &mut Words) -> Result<KernelMessage, String> {
        let kind = words.expect("a message type")?;
        match kind.as_str() {
            "RTM_NEWLINK" | "RTM_DELLINK" => {
                Ok(KernelMessage::Link(self.links.parse(&kind, words)?))
            }
            "RTM_NEWNEIGH" | "RTM_DELNEIGH" => self.parse_neigh(&kind, words),
            other => Err(format!("unknown kernel message {other:?}")),
        }
    }

    fn parse_neigh(&self, kind: &str, w: &mut Words) -> Result<KernelMessage, String> {
        let dev = w.expect("an interface")?;
        let ifindex = if dev == "ifindex" {
            number(&w.expect("an ifindex")?)?
        } else {
            self.links
                .ifindex_of(&dev)
                .ok_or_else(|| format!("unknown interface {dev:?} (write `ifindex N`)"))?
        };
        let ip_text = w.expect("an address")?;
        let dst: IpAddr = ip_text
            .parse()
            .map_err(|_| format!("bad address {ip_text:?}"))?;
        let is_del = kind == "RTM_DELNEIGH";
        let known = self.neighs.get(&(ifindex, dst)).copied();
        let (mut lladdr, mut state, mut flags) = (None, None, 0u8);
        while let Some(word) = w.next() {
            match word.as_str() {
                "lladdr" => lladdr = Some(parse_mac(&w.expect("a MAC")?)?),
                "ext_learned" => flags |= NTF_EXT_LEARNED,
                s => match STATES.iter().find(|(n, _)| *n == s) {
                    Some((_, v)) => state = Some(*v),
                    None => return Err(format!("unexpected {s:?} in a neighbour message")),
                },
            }
        }
        if is_del && state.is_none() {
            // A delete without a state carries the kernel's last one.
            let k = known.ok_or("RTM_DELNEIGH of an unknown neighbour needs its state")?;
            state = Some(k.state);
            lladdr = lladdr.or(k.lladdr);
            flags |= k.flags;
        }
        let state = state.ok_or("missing the state (REACHABLE, STALE, ...)")?;
        Ok(KernelMessage::Neigh(NeighborEvent {
            msg_type: if is_del {
                NeighMsgType::Del
            } else {
                NeighMsgType::New
            },
            ifindex,
            dst,
            lladdr,
            state,
            flags,
            dump: false,
        }))
    }

    /// The kernel's tables after `msg` (a deleted link takes its
    /// neighbours with it).
    fn apply(&mut self, msg: &KernelMessage) {
        match msg {
            KernelMessage::Link(ev) => {
                let removed = self.links.apply(ev);
                if removed.is_some() {
                    self.neighs.retain(|(i, _), _| *i != ev.ifindex);
                }
            }
            KernelMessage::Neigh(ev) => match ev.msg_type {
                NeighMsgType::Del => {
                    self.neighs.remove(&(ev.ifindex, ev.dst));
                }
                _ if self.links.contains(ev.ifindex) => {
                    self.neighs.insert(
                        (ev.ifindex, ev.dst),
                        Neigh {
                            lladdr: ev.lladdr,
                            state: ev.state,
                            flags: ev.flags,
                        },
                    );
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// A message as the transcript shows it.
    fn render(&self, msg: &KernelMessage) -> String {
        match msg {
            KernelMessage::Link(ev) => self.links.render(ev),
            KernelMessage::Neigh(ev) => {
                let mut s = format!(
                    "{} {} {}",
                    ev.msg_type.rtm_name(),
                    self.links.name_of(ev.ifindex),
                    sonic_netlink::fmt::ip_to_string(&ev.dst)
                );
                if let Some(mac) = &ev.lladdr {
                    s.push_str(&format!(" lladdr {}", mac_text(mac)));
                }
                s.push(' ');
                s.push_str(&state_name(ev.state));
                if ev.flags & NTF_EXT_LEARNED != 0 {
                    s.push_str(" ext_learned");
                }
                if ev.dump {
                    s.push_str(" (dump)");
                }
                s
            }
            KernelMessage::DumpDone => "DONE (end of the dump)".to_string(),
            other => format!("{other:?}"),
        }
    }

    /// The replies to a dump request.
    fn dump(&self, what: Dump) -> Vec<KernelMessage> {
        let mut out: Vec<KernelMessage> = match what {
            Dump::Links => self
                .links
                .dump()
                .into_iter()
                .map(KernelMessage::Link)
                .collect(),
            Dump::Neighbors => self
                .neighs
                .iter()
                .map(|((i, ip), n)| {
                    KernelMessage::Neigh(NeighborEvent {
                        msg_type: NeighMsgType::New,
                        ifindex: *i,
                        dst: *ip,
                        lladdr: n.lladdr,
                        state: n.state,
                        flags: n.flags,
                        dump: true,
                    })
                })
                .collect(),
        };
        out.push(KernelMessage::DumpDone);
        out
    }
}

// ===== Redis work in flight =====

/// A request of the core that Redis has not answered yet.
#[derive(Debug)]
enum Work {
    Flush { epoch: Epoch, batch: Batch },
    AuditRead { epoch: Epoch },
    Reconnect { epoch: Epoch },
    Reconcile(ReconcileOps),
}

// ===== the world =====

struct World {
    t: Transcript,
    options: SyncOptions,
    audit_every: Option<Duration>,
    sim: Option<Sim<NeighCore>>,
    kernel: Kernel,
    /// Notifications and dump replies not read yet.
    socket: Socket,
    appl: Db,
    state: Db,
    config: Db,
    producers: Producers,
    up: bool,
    hold: bool,
    /// Met by the next requests, in order.
    fail_next: VecDeque<Fault>,
    work: VecDeque<Work>,
    /// The session whose CONFIG_DB subscription is alive.
    epoch: Epoch,
    subscribed: bool,
    watching_flag: bool,
    consumers_hold: bool,
    shutting_down: bool,
    stopped_shown: bool,
}

impl World {
    fn new() -> World {
        World {
            t: Transcript::new(),
            options: SyncOptions::default(),
            audit_every: None,
            sim: None,
            kernel: Kernel::default(),
            socket: Socket::new(),
            appl: Db::new(),
            state: Db::new(),
            config: Db::new(),
            producers: Producers {
                neigh: ProducerStateTable::with_names("NEIGH_TABLE", ':', 0),
                route: ProducerStateTable::with_names("ROUTE_TABLE", ':', 0),
                failed: ProducerStateTable::with_names("NEIGH_FAILED_TABLE", ':', 0),
            },
            up: true,
            hold: false,
            fail_next: VecDeque::new(),
            work: VecDeque::new(),
            epoch: 0,
            subscribed: true,
            watching_flag: false,
            consumers_hold: false,
            shutting_down: false,
            stopped_shown: false,
        }
    }

    fn sim(&mut self) -> Result<&mut Sim<NeighCore>, String> {
        self.sim
            .as_mut()
            .ok_or_else(|| "the daemon is not started (`start cold` or `start warm`)".to_string())
    }

    fn started(&self) -> bool {
        self.sim.is_some()
    }

    // ----- directives -----

    fn directive(&mut self, line: &Line) -> Result<(), String> {
        self.socket.begin_line();
        let mut w = Words::new(&line.directive)?;
        let Some(first) = w.peek().map(str::to_string) else {
            return Ok(());
        };
        match first.as_str() {
            s if s.starts_with("RTM_") => self.kernel_message(&mut w, true, &line.directive),
            "lost" => {
                w.next();
                self.kernel_message(&mut w, false, "")
            }
            "ENOBUFS" => {
                w.next();
                self.enobufs(&mut w)
            }
            "option" => {
                w.next();
                self.option(&mut w)
            }
            "config" => {
                w.next();
                self.config_change(&mut w)
            }
            "appl" => {
                w.next();
                self.appl_change(&mut w)
            }
            "state" => {
                w.next();
                self.state_change(&mut w)
            }
            "start" => {
                w.next();
                self.start(&mut w)
            }
            "redis" => {
                w.next();
                self.redis(&mut w)
            }
            "consumers" => {
                w.next();
                match w.expect("hold or pop")?.as_str() {
                    "hold" => self.consumers_hold = true,
                    "pop" => {
                        self.consumers_hold = false;
                        self.pop_all();
                    }
                    other => return Err(format!("consumers {other:?}: expected hold or pop")),
                }
                w.end()
            }
            "time" => {
                w.next();
                let step = w.expect("+<duration>")?;
                w.end()?;
                let d = step
                    .strip_prefix('+')
                    .ok_or("time takes +<duration>")
                    .and_then(|d| parse_duration(d).map_err(|_| "time takes +<duration>"))?;
                self.advance(d)
            }
            "signal" => {
                w.next();
                let sig = w.expect("SIGTERM")?;
                if sig != "SIGTERM" && sig != "SIGINT" {
                    return Err(format!("unknown signal {sig:?}"));
                }
                w.end()?;
                let sim = self.sim()?;
                let now = sim.now;
                sim.core.begin_shutdown(now);
                self.shutting_down = true;
                Ok(())
            }
            "show" => {
                w.next();
                w.end()?;
                self.show();
                Ok(())
            }
            other => Err(format!("unknown directive {other:?}")),
        }
    }

    fn kernel_message(&mut self, w: &mut Words, notify: bool, line: &str) -> Result<(), String> {
        let msg = self.kernel.parse(w)?;
        w.end()?;
        let text = self.kernel.render(&msg);
        self.kernel.apply(&msg);
        if notify && self.started() {
            let echoed = text == line;
            self.socket.notify(msg, text, echoed);
        }
        Ok(())
    }

    /// `ENOBUFS` (now) or `ENOBUFS during RTM_GETLINK|RTM_GETNEIGH` (right
    /// after the replies of the next such dump).
    fn enobufs(&mut self, w: &mut Words) -> Result<(), String> {
        if w.eat("during") {
            let dump = match w.expect("RTM_GETLINK or RTM_GETNEIGH")?.as_str() {
                "RTM_GETLINK" => Dump::Links,
                "RTM_GETNEIGH" => Dump::Neighbors,
                other => {
                    return Err(format!(
                        "ENOBUFS during {other:?}: expected RTM_GETLINK or RTM_GETNEIGH"
                    ))
                }
            };
            w.end()?;
            self.socket.overrun_after(dump);
            return Ok(());
        }
        w.end()?;
        if !self.started() {
            return Err("ENOBUFS before start: write `ENOBUFS during RTM_GETNEIGH`".to_string());
        }
        self.socket.overrun();
        Ok(())
    }

    fn option(&mut self, w: &mut Words) -> Result<(), String> {
        if self.started() {
            return Err("options are set before `start`".to_string());
        }
        match w.expect("an option")?.as_str() {
            "router-interfaces-only" => self.options.router_interfaces_only = true,
            "sub-interface-link-local" => self.options.sub_interface_link_local = true,
            "audit-interval" => {
                self.audit_every = Some(parse_duration(&w.expect("a duration")?)?);
            }
            other => return Err(format!("unknown option {other:?}")),
        }
        w.end()
    }

    /// `config set|del <TABLE>|<key> [f=v ...]`.
    fn config_change(&mut self, w: &mut Words) -> Result<(), String> {
        let (op, key, fvs) = set_or_del(w, '|')?;
        let (table, rest) = key.split_once('|').ok_or("expected <TABLE>|<key>")?;
        if op == "set" {
            self.config.hset(&key, &fvs);
        } else {
            self.config.del(&key);
        }
        let Some(table) = ConfigTable::from_name(table) else {
            return Ok(());
        };
        if !self.started() || !self.up || !self.subscribed {
            return Ok(());
        }
        let change = match self.config.hash(&key) {
            Some(content) => KeyOp::Set(rest.to_string(), content.clone()),
            None => KeyOp::Del(rest.to_string()),
        };
        let epoch = self.epoch;
        self.sim()?.input(Input::Config {
            epoch,
            change: Ok((table, change)),
        });
        Ok(())
    }

    /// `appl set|del <TABLE>:<key> [f=v ...]`: APPL_DB as its consumer
    /// left it (written by someone else than the daemon).
    fn appl_change(&mut self, w: &mut Words) -> Result<(), String> {
        let (op, key, fvs) = set_or_del(w, ':')?;
        if op == "set" {
            self.appl.hset(&key, &fvs);
        } else {
            self.appl.del(&key);
        }
        Ok(())
    }

    /// `state set|del <TABLE>|<key> [f=v ...]`.
    fn state_change(&mut self, w: &mut Words) -> Result<(), String> {
        let (op, key, fvs) = set_or_del(w, '|')?;
        if op == "set" {
            self.state.hset(&key, &fvs);
        } else {
            self.state.del(&key);
        }
        if self.watching_flag && self.restore_flag_set() {
            self.watching_flag = false;
            self.t
                .out("STATE_DB: NEIGH_RESTORE_TABLE|Flags restored=true seen");
            self.sim()?.input(Input::RestoreFlagSet);
        }
        Ok(())
    }

    fn restore_flag_set(&self) -> bool {
        self.state
            .hash("NEIGH_RESTORE_TABLE|Flags")
            .is_some_and(|h| h.iter().any(|(f, v)| f == "restored" && v == "true"))
    }

    fn start(&mut self, w: &mut Words) -> Result<(), String> {
        if self.started() {
            return Err("already started".to_string());
        }
        let mode = w.expect("cold or warm")?;
        w.end()?;
        let mut ctx = SyncContext::with_options(self.options);
        for table in ConfigTable::ALL {
            for (key, fvs) in self.config.hashes_under(&format!("{}|", table.name())) {
                apply_cfg(&mut ctx, table, &KeyOp::Set(key, fvs));
            }
        }
        let failed: Vec<String> = sorted_keys(&self.appl.consumer_view(&self.producers.failed));
        let setup = Setup {
            ctx: ctx.clone(),
            audit_every: self.audit_every,
            failed: failed.clone(),
        };
        let facts = format!(
            "dual-ToR {}, EVPN {}",
            yes(ctx.is_dual_tor()),
            yes(ctx.evpn_nvo_exists())
        );
        let start = Instant::now();
        let core = match mode.as_str() {
            "cold" => {
                let view = self.appl.consumer_view(&self.producers.neigh);
                self.t.out(format!(
                    "neighsyncd: cold start ({facts}); APPL_DB NEIGH_TABLE holds {}, NEIGH_FAILED_TABLE {}",
                    plural(view.len(), "key"),
                    plural(failed.len(), "key")
                ));
                NeighCore::cold(setup, &view, start)
            }
            "warm" => {
                let dropped = self.appl.drop_pending(&self.producers.neigh);
                let mut cache = WarmCache::new();
                let table = self
                    .appl
                    .hashes_under(&format!("{}:", self.producers.neigh.table_name()));
                for (key, fvs) in &table {
                    cache.restore(key, fvs.clone());
                }
                let timer = self
                    .config
                    .hash("WARM_RESTART|swss")
                    .and_then(|h| h.iter().find(|(f, _)| f == "neighsyncd_timer"))
                    .and_then(|(_, v)| parse_warm_start_timer(v))
                    .unwrap_or(swss::restart_assist::DEFAULT_RECONCILE_TIMER_SECS);
                let timer = Duration::from_secs(u64::from(timer));
                let flag = self.restore_flag_set();
                self.t.out(format!(
                    "neighsyncd: warm start ({facts}); {dropped} NEIGH_TABLE operations not yet consumed dropped; \
                     APPL_DB NEIGH_TABLE read into the reconcile cache ({}); state restored; \
                     reconcile timer {}; restore flag {}",
                    plural(table.len(), "key"),
                    format_ms(timer),
                    if flag { "set" } else { "not set" }
                ));
                NeighCore::warm(setup, cache, flag, timer, DEFAULT_RESTORE_WAIT, start)
            }
            other => return Err(format!("start {other:?}: expected cold or warm")),
        };
        self.sim = Some(Sim::from_core(core, start));
        Ok(())
    }

    fn redis(&mut self, w: &mut Words) -> Result<(), String> {
        match w.expect("a Redis directive")?.as_str() {
            "down" => {
                self.up = false;
                self.t.out("Redis: down (connections refused)");
                if self.started() && self.subscribed {
                    self.subscribed = false;
                    let epoch = self.epoch;
                    self.t.out("CONFIG_DB subscription: connection lost");
                    self.sim()?.input(Input::Config {
                        epoch,
                        change: Err(lost()),
                    });
                }
            }
            "up" => {
                self.up = true;
                self.t.out("Redis: up");
            }
            "hold" => self.hold = true,
            "release" => self.hold = false,
            "fail-next" => {
                self.fail_next
                    .push_back(match w.expect("error or lost")?.as_str() {
                        "error" => Fault::ErrorReply(w.expect("the error text")?),
                        "lost" => Fault::Lost,
                        other => {
                            return Err(format!("fail-next {other:?}: expected error or lost"))
                        }
                    });
            }
            other => return Err(format!("unknown Redis directive {other:?}")),
        }
        w.end()
    }

    // ----- the driver's loop -----

    /// Does what the driver and the effects would until nothing moves:
    /// take the core's steps, answer Redis work, let the core read the
    /// socket.
    fn settle(&mut self) -> Result<(), String> {
        if !self.started() {
            return Ok(());
        }
        for _ in 0..10_000 {
            let steps = self.sim()?.steps();
            let mut moved = !steps.is_empty();
            for step in steps {
                self.step(step)?;
            }
            moved |= self.answer()?;
            moved |= self.read()?;
            if let Some(e) = self.sim()?.core.take_error() {
                self.t
                    .out(format!("neighsyncd: fatal: {e} (exits with status 1)"));
                self.shutting_down = true;
                self.stopped_shown = true;
            }
            if !moved {
                if self.shutting_down && !self.stopped_shown && self.sim()?.core.is_stopped() {
                    self.stopped_shown = true;
                    self.t.out("neighsyncd: stopped (exit 0)");
                }
                return Ok(());
            }
        }
        Err("the daemon never settles (10000 rounds)".to_string())
    }

    /// The core reads the socket when it wants to (one read takes
    /// everything waiting).
    fn read(&mut self) -> Result<bool, String> {
        if self.shutting_down || self.socket.is_empty() {
            return Ok(false);
        }
        let sim = self.sim()?;
        if !sim.core.reads_kernel(sim.now) {
            return Ok(false);
        }
        let Some(read) = self.socket.read() else {
            return Ok(false);
        };
        for line in &read.shown {
            self.t.out(line);
        }
        let before = kernel_event_counts(self.sim()?.core.stats());
        self.sim()?.handle_kernel(read.msgs, read.overrun);
        let after = kernel_event_counts(self.sim()?.core.stats());
        if let Some(o) = describe_outcomes(&before, &after) {
            self.t.out(format!("outcome: {o}"));
        }
        Ok(true)
    }

    fn step(&mut self, step: Step<Action>) -> Result<(), String> {
        match step {
            Step::Dump(what) => {
                let name = match what {
                    Dump::Links => "RTM_GETLINK",
                    Dump::Neighbors => "RTM_GETNEIGH",
                };
                self.t.out(format!("netlink: dump request {name}"));
                let replies = self
                    .kernel
                    .dump(what)
                    .into_iter()
                    .map(|m| {
                        let text = self.kernel.render(&m);
                        (m, text)
                    })
                    .collect();
                self.socket.dump_replies(what, replies);
            }
            Step::Ready(status) => self
                .t
                .out(format!("systemd: READY=1 STATUS={}", quote(&status))),
            Step::Status(status) => self.t.out(format!("systemd: STATUS={}", quote(&status))),
            Step::Do(Action::Flush { epoch, batch }) => {
                if self.hold {
                    self.t.out(format!(
                        "APPL_DB: flush of {} sent; Redis holds the reply",
                        plural(batch.len(), "key")
                    ));
                }
                self.work.push_back(Work::Flush { epoch, batch });
            }
            Step::Do(Action::ReadAuditView { epoch }) => {
                self.work.push_back(Work::AuditRead { epoch });
            }
            Step::Do(Action::Reconnect { epoch }) => {
                self.t
                    .out(format!("Redis: reconnecting (new session {epoch})"));
                self.work.push_back(Work::Reconnect { epoch });
            }
            Step::Do(Action::WatchRestoreFlag) => {
                self.t
                    .out("STATE_DB: waiting for NEIGH_RESTORE_TABLE|Flags restored=true");
                if self.restore_flag_set() {
                    self.t
                        .out("STATE_DB: NEIGH_RESTORE_TABLE|Flags restored=true seen");
                    self.sim()?.input(Input::RestoreFlagSet);
                } else {
                    self.watching_flag = true;
                }
            }
            Step::Do(Action::WriteReconcile(ops)) => {
                self.t.out(format!(
                    "warm reconcile: {} DELs, {} SETs",
                    ops.dels.len(),
                    ops.sets.len()
                ));
                self.work.push_back(Work::Reconcile(ops));
            }
            // malloc_trim: nothing a consumer sees.
            Step::Do(Action::ReleaseMemory) => {}
        }
        Ok(())
    }

    /// Answers the oldest Redis work, if Redis answers now.
    fn answer(&mut self) -> Result<bool, String> {
        if self.hold {
            return Ok(false);
        }
        let waits = match self.work.front() {
            None => return Ok(false),
            // These wait for Redis to come back (the effects retry).
            Some(Work::Reconnect { .. } | Work::Reconcile(_)) => !self.up,
            Some(_) => false,
        };
        if waits {
            return Ok(false);
        }
        let Some(work) = self.work.pop_front() else {
            return Ok(false);
        };
        match work {
            Work::Flush { epoch, batch } => {
                let result = if self.up {
                    let fault = self.fail_next.pop_front();
                    let result =
                        self.on_appl(fault, |conn, p| block_on(write_batch(conn, p, &batch)));
                    if result.is_ok() {
                        self.pop_all();
                    }
                    result
                } else {
                    self.t.out(format!(
                        "APPL_DB: not connected: flush of {} fails",
                        plural(batch.len(), "key")
                    ));
                    Err(SwssError::NotConnected)
                };
                self.sim()?.input(Input::Flushed {
                    epoch,
                    batch,
                    result,
                });
            }
            Work::AuditRead { epoch } => {
                let result = if self.up {
                    let view = self.appl.consumer_view(&self.producers.neigh);
                    self.t.out(format!(
                        "APPL_DB: NEIGH_TABLE read as orchagent will see it ({})",
                        plural(view.len(), "key")
                    ));
                    Ok(view)
                } else {
                    Err(SwssError::NotConnected)
                };
                self.sim()?.input(Input::AuditView { epoch, result });
            }
            Work::Reconnect { epoch } => {
                let config: Vec<(ConfigTable, Vec<KeyOp>)> = ConfigTable::ALL
                    .iter()
                    .map(|t| {
                        let ops = self
                            .config
                            .hashes_under(&format!("{}|", t.name()))
                            .into_iter()
                            .map(|(k, fvs)| KeyOp::Set(k, fvs))
                            .collect();
                        (*t, ops)
                    })
                    .collect();
                let view = self.appl.consumer_view(&self.producers.neigh);
                let failed = sorted_keys(&self.appl.consumer_view(&self.producers.failed));
                self.t.out(format!(
                    "Redis: reconnected (session {epoch}): CONFIG_DB subscribed again; APPL_DB NEIGH_TABLE read ({}), NEIGH_FAILED_TABLE ({})",
                    plural(view.len(), "key"),
                    plural(failed.len(), "key")
                ));
                self.epoch = epoch;
                self.subscribed = true;
                self.sim()?.input(Input::Reconnected {
                    epoch,
                    config,
                    view,
                    failed,
                });
            }
            Work::Reconcile(ops) => {
                let mut done = 0;
                let result = loop {
                    let fault = self.fail_next.pop_front();
                    let r = self.on_appl(fault, |conn, p| {
                        block_on(AppRestartAssist::write_reconcile_from(
                            conn,
                            &p.neigh,
                            &ops,
                            WRITE_CHUNK,
                            &mut done,
                        ))
                    });
                    match r {
                        Err(e) if e.is_connection_error() => {
                            self.t.out("warm reconcile: Redis lost; written again");
                        }
                        other => break other,
                    }
                };
                let mut log = Vec::new();
                let mut conn = Conn {
                    db: &mut self.state,
                    name: "STATE_DB",
                    log: &mut log,
                    fault: None,
                };
                let state = block_on(set_warm_start_state(
                    &mut conn,
                    '|',
                    "neighsyncd",
                    WarmStartState::Reconciled,
                ));
                for l in log {
                    self.t.out(l);
                }
                if let Err(e) = state {
                    return Err(format!("STATE_DB write failed: {e}"));
                }
                self.pop_all();
                self.sim()?.input(Input::ReconcileWritten(result));
            }
        }
        Ok(true)
    }

    /// Runs `f` on an APPL_DB connection of the in-memory Redis (meeting
    /// `fault` first) and writes the commands it sent to the transcript.
    fn on_appl<T>(
        &mut self,
        fault: Option<Fault>,
        f: impl FnOnce(&mut Conn<'_>, &Producers) -> T,
    ) -> T {
        let mut log = Vec::new();
        let result = {
            let mut conn = Conn {
                db: &mut self.appl,
                name: "APPL_DB",
                log: &mut log,
                fault,
            };
            f(&mut conn, &self.producers)
        };
        for l in log {
            self.t.out(l);
        }
        result
    }

    /// The consumers pop what is pending (unless held).
    fn pop_all(&mut self) {
        if self.consumers_hold {
            return;
        }
        // In the order the flush writes them (each consumer pops its own
        // table; no order holds between tables, a.5).
        let tables = [
            ("orchagent", self.producers.route.clone()),
            ("orchagent", self.producers.neigh.clone()),
            ("nbrmgrd", self.producers.failed.clone()),
        ];
        for (consumer, p) in tables {
            for popped in self.appl.pop(&p) {
                self.t.out(format!(
                    "{consumer} pops {}: {}",
                    p.table_name(),
                    popped.describe()
                ));
            }
        }
    }

    fn advance(&mut self, d: Duration) -> Result<(), String> {
        let target = self.sim()?.now + d;
        loop {
            let sim = self.sim()?;
            let Some(deadline) = sim.next_deadline().filter(|t| *t <= target) else {
                break;
            };
            let names: Vec<String> = Timer::ALL
                .iter()
                .filter(|t| sim.core.timer(**t) == Some(deadline))
                .map(|t| format!("{t:?}"))
                .collect();
            let at = sim.fire_until(target).unwrap_or(deadline);
            let ms = format_ms(sim.since_start(at));
            self.t
                .out(format!("t={ms}: timer {} expires", names.join(", ")));
            self.settle()?;
        }
        let sim = self.sim()?;
        sim.advance_to(target);
        let ms = format_ms(sim.elapsed());
        self.t.out(format!("t={ms}"));
        Ok(())
    }

    /// What orchagent and nbrmgrd will see once they popped everything.
    fn show(&mut self) {
        let tables = [
            self.producers.neigh.clone(),
            self.producers.route.clone(),
            self.producers.failed.clone(),
        ];
        for (i, p) in tables.iter().enumerate() {
            let view = self.appl.consumer_view(p);
            if i > 0 && view.is_empty() {
                continue;
            }
            self.t.out(format!(
                "APPL_DB {}: {}",
                p.table_name(),
                plural(view.len(), "key")
            ));
            let mut entries: Vec<(&str, &swss::FieldValues)> = view.iter().collect();
            entries.sort();
            for (k, fvs) in entries {
                self.t.out(format!("  {k} {}", format_fvs(fvs)));
            }
        }
    }

    /// The end: what is left in flight, then the tables.
    fn finish(&mut self) -> Result<(), String> {
        self.settle()?;
        self.t.header("");
        let at = match &self.sim {
            Some(sim) => format_ms(sim.elapsed()),
            None => "0ms".to_string(),
        };
        self.t.header(format!("== end at t={at}"));
        if !self.socket.is_empty() {
            self.t.out(format!(
                "netlink: {} not read",
                plural(self.socket.len(), "message")
            ));
        }
        if !self.work.is_empty() {
            self.t.out(format!(
                "Redis: {} not answered",
                plural(self.work.len(), "request")
            ));
        }
        self.show();
        Ok(())
    }
}

fn sorted_keys(view: &swss::ConsumerView) -> Vec<String> {
    let mut keys: Vec<String> = view.iter().map(|(k, _)| k.to_string()).collect();
    keys.sort();
    keys
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn lost() -> SwssError {
    SwssError::Redis(redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset by peer",
    )))
}
