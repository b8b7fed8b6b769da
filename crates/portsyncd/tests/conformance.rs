//! portsyncd's golden-file conformance scenarios
//! (`tests/conformance/portsyncd/<NN>-<name>/{input,expected}` at the
//! repository root; grammar and output format in
//! `tests/conformance/README.md`).
//!
//! The runner plays the daemon's world around the I/O-free [`PortCore`]
//! on a simulated clock ([`Sim`]): the start-up steps of `daemon.rs` (link
//! dump requested first, CONFIG_DB `PORT` copied to APPL_DB `PORT_TABLE`
//! with PortConfigDone, old `Ethernet*` netdevs brought down, the APPL_DB
//! `PORT_TABLE` subscription's initial load), a kernel (links, answering
//! dump requests, notifications queued in a socket buffer the core reads
//! when it wants), Redis (an in-memory APPL_DB / STATE_DB / CONFIG_DB the
//! daemon's own write code runs against, with scripted faults), orchagent
//! (pops APPL_DB `PORT_TABLE`; its pops reach portsyncd's subscription)
//! and the clock.
//!
//! Regenerate the expected files after an intended change:
//! `CONFORMANCE_BLESS=1 cargo test -p portsyncd --test conformance`.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use portsyncd::core::{Action, AuditReadout, Epoch, Input, PortCore, ReadBack, Setup, Timer};
use portsyncd::effects::write_batch;
use portsyncd::sync::{
    is_port_key, port_config_done_op, port_config_ops, port_init_done_op, PortConfigCount,
    PortSync, SwitchType, STATE_FIELDS,
};
use portsyncd::writer::StateBatch;
use sonic_daemon::conformance::kernel::{Links, Socket};
use sonic_daemon::conformance::redis::{Conn, Db, Fault, Popped};
use sonic_daemon::conformance::{
    block_on, describe_outcomes, format_fvs, format_ms, kernel_event_counts, parse_duration,
    plural, quote, run_all, set_or_del, Line, Scenario, ScriptError, Transcript, Words,
};
use sonic_daemon::engine::{Core, Step};
use sonic_daemon::sim::Sim;
use sonic_daemon::timer::TimerName;
use sonic_netlink::socket::{Dump, KernelMessage};
use swss::{FieldValues, KeyOp, ProducerStateTable, SwssError, Table};

const ROOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/conformance/portsyncd"
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

/// A request of the core that Redis has not answered yet.
#[derive(Debug)]
enum Work {
    Flush(Epoch, StateBatch),
    InitDone(Epoch),
    Count(Epoch, usize),
    ResyncRead {
        id: u64,
        names: Vec<String>,
    },
    AuditRead {
        id: u64,
        names: Vec<String>,
        gone: Vec<String>,
    },
    Reconnect(Epoch),
}

struct World {
    t: Transcript,
    audit_every: Option<Duration>,
    follow_config: bool,
    sim: Option<Sim<PortCore>>,
    links: Links,
    /// Notifications and dump replies not read yet.
    socket: Socket,
    appl: Db,
    state: Db,
    config: Db,
    producer: ProducerStateTable,
    state_table: Table,
    up: bool,
    hold: bool,
    /// Met by the next requests, in order.
    fail_next: VecDeque<Fault>,
    work: VecDeque<Work>,
    /// The subscriptions (APPL_DB and STATE_DB `PORT_TABLE`, CONFIG_DB
    /// `PORT`) are alive.
    subscribed: bool,
    consumers_hold: bool,
    shutting_down: bool,
    stopped_shown: bool,
}

impl World {
    fn new() -> World {
        World {
            t: Transcript::new(),
            audit_every: None,
            follow_config: false,
            sim: None,
            links: Links::new(),
            socket: Socket::new(),
            appl: Db::new(),
            state: Db::new(),
            config: Db::new(),
            producer: ProducerStateTable::with_names("PORT_TABLE", ':', 0),
            state_table: Table::new("PORT_TABLE", '|').in_db("STATE_DB"),
            up: true,
            hold: false,
            fail_next: VecDeque::new(),
            work: VecDeque::new(),
            subscribed: true,
            consumers_hold: false,
            shutting_down: false,
            stopped_shown: false,
        }
    }

    fn sim(&mut self) -> Result<&mut Sim<PortCore>, String> {
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
        let Some(first) = w.next() else {
            return Ok(());
        };
        match first.as_str() {
            "RTM_NEWLINK" | "RTM_DELLINK" => {
                let ev = self.links.parse(&first, &mut w)?;
                let text = self.links.render(&ev);
                self.links.apply(&ev);
                if self.started() {
                    let echoed = text == line.directive;
                    self.socket.notify(KernelMessage::Link(ev), text, echoed);
                }
                Ok(())
            }
            "lost" => {
                let kind = w.expect("a link message")?;
                let ev = self.links.parse(&kind, &mut w)?;
                self.links.apply(&ev);
                Ok(())
            }
            "ENOBUFS" => {
                if w.eat("during") {
                    let what = w.expect("RTM_GETLINK")?;
                    if what != "RTM_GETLINK" {
                        return Err(format!("ENOBUFS during {what:?}: expected RTM_GETLINK"));
                    }
                    w.end()?;
                    self.socket.overrun_after(Dump::Links);
                    return Ok(());
                }
                w.end()?;
                if !self.started() {
                    return Err(
                        "ENOBUFS before start: write `ENOBUFS during RTM_GETLINK`".to_string()
                    );
                }
                self.socket.overrun();
                Ok(())
            }
            "option" => self.option(&mut w),
            "config" => self.config_change(&mut w),
            "appl" => self.appl_change(&mut w),
            "state" => self.state_change(&mut w),
            "start" => self.start(&mut w),
            "redis" => self.redis(&mut w),
            "consumers" => {
                match w.expect("hold or pop")?.as_str() {
                    "hold" => self.consumers_hold = true,
                    "pop" => {
                        self.consumers_hold = false;
                        self.pop_all()?;
                    }
                    other => return Err(format!("consumers {other:?}: expected hold or pop")),
                }
                w.end()
            }
            "time" => {
                let step = w.expect("+<duration>")?;
                w.end()?;
                let d = step
                    .strip_prefix('+')
                    .ok_or("time takes +<duration>")
                    .and_then(|d| parse_duration(d).map_err(|_| "time takes +<duration>"))?;
                self.advance(d)
            }
            "signal" => {
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
                w.end()?;
                self.show();
                Ok(())
            }
            other => Err(format!("unknown directive {other:?}")),
        }
    }

    fn option(&mut self, w: &mut Words) -> Result<(), String> {
        if self.started() {
            return Err("options are set before `start`".to_string());
        }
        match w.expect("an option")?.as_str() {
            "port-config-count-follows-config" => self.follow_config = true,
            "audit-interval" => {
                self.audit_every = Some(parse_duration(&w.expect("a duration")?)?);
            }
            other => return Err(format!("unknown option {other:?}")),
        }
        w.end()
    }

    /// `config set|del <TABLE>|<key> [f=v ...]`; after start, a CONFIG_DB
    /// `PORT` key appearing or going reaches the daemon only with
    /// `--port-config-count-follows-config`.
    fn config_change(&mut self, w: &mut Words) -> Result<(), String> {
        let (op, key, fvs) = set_or_del(w, '|')?;
        let existed = self.config.exists(&key);
        if op == "set" {
            self.config.hset(&key, &fvs);
        } else {
            self.config.del(&key);
        }
        let Some(port) = key.strip_prefix("PORT|") else {
            return Ok(());
        };
        if !self.started() || !self.follow_config || !self.up || !self.subscribed {
            return Ok(());
        }
        let change = if op == "set" {
            if existed {
                return Ok(());
            }
            KeyOp::Set(port.to_string(), Vec::new())
        } else {
            KeyOp::Del(port.to_string())
        };
        self.sim()?.input(Input::ConfigPort(change));
        Ok(())
    }

    /// `appl set|del PORT_TABLE:<key> [f=v ...]`: APPL_DB as orchagent
    /// left it; after start the daemon's subscription sees it.
    fn appl_change(&mut self, w: &mut Words) -> Result<(), String> {
        let (op, key, fvs) = set_or_del(w, ':')?;
        let existed = self.appl.exists(&key);
        if op == "set" {
            self.appl.hset(&key, &fvs);
        } else {
            self.appl.del(&key);
        }
        let Some(port) = key.strip_prefix("PORT_TABLE:") else {
            return Ok(());
        };
        if !self.started() || !self.up || !self.subscribed {
            return Ok(());
        }
        let change = if op == "set" {
            KeyOp::Set(port.to_string(), Vec::new())
        } else if existed {
            KeyOp::Del(port.to_string())
        } else {
            return Ok(());
        };
        self.sim()?.input(Input::Appl(change));
        Ok(())
    }

    /// `state set|del PORT_TABLE|<name> [f=v ...]`: someone else writes
    /// STATE_DB; the daemon's subscription sees deletions only.
    fn state_change(&mut self, w: &mut Words) -> Result<(), String> {
        let (op, key, fvs) = set_or_del(w, '|')?;
        let existed = self.state.exists(&key);
        if op == "set" {
            self.state.hset(&key, &fvs);
            return Ok(());
        }
        self.state.del(&key);
        if let Some(name) = key.strip_prefix("PORT_TABLE|") {
            if existed && self.started() && self.up && self.subscribed {
                self.sim()?.input(Input::StateDeleted(name.to_string()));
            }
        }
        Ok(())
    }

    /// The start-up of `daemon.rs` (`start`), then the core.
    fn start(&mut self, w: &mut Words) -> Result<(), String> {
        if self.started() {
            return Err("already started".to_string());
        }
        let mode = w.expect("cold or warm")?;
        w.end()?;
        let warm = match mode.as_str() {
            "cold" => false,
            "warm" => true,
            other => return Err(format!("start {other:?}: expected cold or warm")),
        };
        let (switch_type, _) = SwitchType::parse(
            self.config
                .hash("DEVICE_METADATA|localhost")
                .and_then(|h| h.iter().find(|(f, _)| f == "switch_type"))
                .map(|(_, v)| v.as_str()),
        );
        self.t.out(format!(
            "portsyncd: {mode} start (switch_type {})",
            switch_type.as_str()
        ));
        // Step 6: the link dump is asked for before the config is read.
        self.t.out("netlink: dump request RTM_GETLINK");
        self.queue_dump();
        // Step 7: CONFIG_DB PORT, copied on a cold start.
        let ports: Vec<(String, FieldValues)> = self.config.hashes_under("PORT|");
        let ops = port_config_ops(&ports, warm);
        if warm {
            self.t.out(format!(
                "CONFIG_DB: {} in PORT; warm start: APPL_DB PORT_TABLE left as is",
                plural(ports.len(), "port")
            ));
        } else {
            self.t.out(format!(
                "CONFIG_DB: {} in PORT, copied to APPL_DB PORT_TABLE with PortConfigDone",
                plural(ports.len(), "port")
            ));
            let p = self.producer.clone();
            let result = self.on_db(Which::Appl, None, |conn| {
                let mut pipe = redis::pipe();
                p.queue_batch_set(&mut pipe, &ops);
                block_on(p.flush(conn, &pipe))
            });
            result.map_err(|e| format!("start-up copy failed: {e}"))?;
        }
        let mut sync = PortSync::new(ports.iter().map(|(k, _)| k.clone()), switch_type, warm);
        // Step 8: old Ethernet netdevs go down and are ignored from now on.
        if sync.wants_old_interface_shutdown() {
            let old: Vec<(u32, String)> = self
                .links
                .iter()
                .map(|(i, l)| (i, l.name.clone()))
                .collect();
            for (ifindex, name) in old {
                if sync.mark_old_interface(ifindex, &name) {
                    self.t.out(format!(
                        "netlink: RTM_SETLINK {name} ifindex {ifindex} down (old interface, ignored from now on)"
                    ));
                    if let Some(ev) = self.links.set_down(ifindex) {
                        let text = self.links.render(&ev);
                        self.socket.notify(KernelMessage::Link(ev), text, false);
                    }
                }
            }
        }
        // Step 9: the subscriptions and their initial loads.
        let present = self.appl_ports();
        for (key, has_admin) in &present {
            let _ = sync.on_appl_port(key, true, *has_admin);
        }
        let count = self.follow_config.then(|| {
            PortConfigCount::new(
                sync.port_config_done_count(),
                ports.iter().map(|(k, _)| k.clone()),
            )
        });
        sync.finish_initial_load();
        self.t.out(format!(
            "APPL_DB: PORT_TABLE subscribed: {} consumed by orchagent{}; PortInitDone waits for {}",
            plural(present.len(), "port"),
            if present.values().any(|a| *a) && !warm {
                " (those with admin_status count as seen)"
            } else {
                ""
            },
            if sync.pending_count() == 0 {
                "nothing".to_string()
            } else {
                sync.pending_ports().join(" ")
            }
        ));
        let setup = Setup {
            sync,
            audit_every: self.audit_every,
            port_config_count: count,
        };
        let now = Instant::now();
        self.sim = Some(Sim::from_core(PortCore::new(setup, now), now));
        // orchagent consumes the copy once portsyncd has subscribed (an
        // earlier consumer shows as APPL_DB content before `start`).
        self.pop_all()
    }

    /// APPL_DB `PORT_TABLE` ports and whether each has `admin_status` (the
    /// subscription's initial load).
    fn appl_ports(&self) -> BTreeMap<String, bool> {
        self.appl
            .hashes_under("PORT_TABLE:")
            .into_iter()
            .filter(|(k, _)| is_port_key(k))
            .map(|(k, fvs)| {
                let admin = fvs.iter().any(|(f, _)| f == "admin_status");
                (k, admin)
            })
            .collect()
    }

    fn queue_dump(&mut self) {
        let mut replies: Vec<(KernelMessage, String)> = self
            .links
            .dump()
            .into_iter()
            .map(|ev| {
                let text = format!("{} (dump)", self.links.render(&ev));
                (KernelMessage::Link(ev), text)
            })
            .collect();
        replies.push((
            KernelMessage::DumpDone,
            "DONE (end of the dump)".to_string(),
        ));
        self.socket.dump_replies(Dump::Links, replies);
    }

    fn redis(&mut self, w: &mut Words) -> Result<(), String> {
        match w.expect("a Redis directive")?.as_str() {
            "down" => {
                self.up = false;
                self.t.out("Redis: down (connections refused)");
                if self.started() && self.subscribed {
                    self.subscribed = false;
                    self.t.out("subscriptions: connection lost");
                    // The subscriptions are the current session's (a
                    // reconnect renews them).
                    let sim = self.sim()?;
                    let epoch = sim.core.epoch();
                    sim.input(Input::SubscriptionLost {
                        epoch,
                        error: lost(),
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

    fn settle(&mut self) -> Result<(), String> {
        if !self.started() {
            return Ok(());
        }
        for _ in 0..10_000 {
            let steps = self.sim()?.steps();
            let mut moved = !steps.is_empty();
            for step in steps {
                self.step(step);
            }
            moved |= self.answer()?;
            moved |= self.read()?;
            if let Some(e) = self.sim()?.core.take_error() {
                self.t
                    .out(format!("portsyncd: fatal: {e} (exits with status 1)"));
                self.shutting_down = true;
                self.stopped_shown = true;
            }
            if !moved {
                if self.shutting_down && !self.stopped_shown && self.sim()?.core.is_stopped() {
                    self.stopped_shown = true;
                    self.t.out("portsyncd: stopped (exit 0)");
                }
                return Ok(());
            }
        }
        Err("the daemon never settles (10000 rounds)".to_string())
    }

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

    fn step(&mut self, step: Step<Action>) {
        match step {
            Step::Dump(Dump::Links) => {
                self.t.out("netlink: dump request RTM_GETLINK");
                self.queue_dump();
            }
            Step::Dump(other) => self.t.out(format!("netlink: dump request {other:?}")),
            Step::Ready(status) => self
                .t
                .out(format!("systemd: READY=1 STATUS={}", quote(&status))),
            Step::Status(status) => self.t.out(format!("systemd: STATUS={}", quote(&status))),
            Step::Do(action) => {
                let work = match action {
                    Action::FlushState { epoch, batch } => Work::Flush(epoch, batch),
                    Action::WritePortInitDone { epoch } => Work::InitDone(epoch),
                    Action::WritePortConfigCount { epoch, count } => Work::Count(epoch, count),
                    Action::ReadStateForResync { id, names } => Work::ResyncRead { id, names },
                    Action::ReadStateForAudit { id, names, gone } => {
                        Work::AuditRead { id, names, gone }
                    }
                    Action::Reconnect { epoch } => {
                        self.t.out("Redis: reconnecting");
                        Work::Reconnect(epoch)
                    }
                };
                if self.hold && !matches!(work, Work::Reconnect(_)) {
                    let what = match &work {
                        Work::Flush(_, b) => {
                            format!("STATE_DB write of {}", plural(b.ops.len(), "port"))
                        }
                        Work::InitDone(_) => "PortInitDone write".to_string(),
                        Work::Count(..) => "PortConfigDone count write".to_string(),
                        Work::ResyncRead { .. } | Work::AuditRead { .. } => {
                            "STATE_DB read".to_string()
                        }
                        Work::Reconnect(_) => "reconnect".to_string(),
                    };
                    self.t.out(format!("Redis holds the reply to the {what}"));
                }
                self.work.push_back(work);
            }
        }
    }

    /// Answers the oldest Redis work, if Redis answers now.
    fn answer(&mut self) -> Result<bool, String> {
        if self.hold {
            return Ok(false);
        }
        if matches!(self.work.front(), Some(Work::Reconnect(_))) && !self.up {
            return Ok(false);
        }
        let Some(work) = self.work.pop_front() else {
            return Ok(false);
        };
        let fault = if self.up {
            self.fail_next.pop_front()
        } else {
            Some(Fault::Lost)
        };
        match work {
            Work::Flush(epoch, batch) => {
                let existed: Vec<String> = batch
                    .ops
                    .iter()
                    .filter(|(name, op)| {
                        op.del_first && self.state.exists(&self.state_table.full_key(name))
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                let table = self.state_table.clone();
                let result = self.on_db(Which::State, fault, |conn| {
                    block_on(write_batch(conn, &table, &batch))
                });
                let ok = result.is_ok();
                self.sim()?.input(Input::Flushed {
                    epoch,
                    batch,
                    result,
                });
                if ok && self.subscribed {
                    // The keyspace `del` events of the pipeline reach the
                    // STATE_DB subscription after its reply.
                    for name in existed {
                        self.sim()?.input(Input::StateDeleted(name));
                    }
                }
            }
            Work::InitDone(epoch) => {
                let p = self.producer.clone();
                let (key, fvs) = port_init_done_op();
                let result =
                    self.on_db(Which::Appl, fault, |conn| block_on(p.set(conn, &key, &fvs)));
                let ok = result.is_ok();
                self.sim()?.input(Input::InitDoneWritten { epoch, result });
                if ok {
                    self.pop_all()?;
                }
            }
            Work::Count(epoch, count) => {
                let p = self.producer.clone();
                let (key, fvs) = port_config_done_op(count);
                let result =
                    self.on_db(Which::Appl, fault, |conn| block_on(p.set(conn, &key, &fvs)));
                let ok = result.is_ok();
                self.sim()?.input(Input::PortConfigCountWritten {
                    epoch,
                    count,
                    result,
                });
                if ok {
                    self.pop_all()?;
                }
            }
            Work::ResyncRead { id, names } => {
                let result = self.read_fields(&names, fault.is_some());
                self.sim()?.input(Input::ResyncRead { id, result });
            }
            Work::AuditRead { id, names, gone } => {
                let result = self.read_fields(&names, fault.is_some()).map(|fields| {
                    let exists =
                        gone.iter()
                            .map(|name| {
                                let key = self.state_table.full_key(name);
                                self.t
                                    .out(format!("STATE_DB: HEXISTS {key} netdev_oper_status"));
                                let has = self.state.hash(&key).is_some_and(|h| {
                                    h.iter().any(|(f, _)| f == "netdev_oper_status")
                                });
                                (name.clone(), has)
                            })
                            .collect();
                    AuditReadout { fields, exists }
                });
                self.sim()?.input(Input::AuditRead { id, result });
            }
            Work::Reconnect(epoch) => {
                let present = self.appl_ports();
                let config_ports = self.follow_config.then(|| {
                    self.config
                        .hashes_under("PORT|")
                        .into_iter()
                        .map(|(k, _)| k)
                        .collect::<Vec<_>>()
                });
                self.t.out(format!(
                    "Redis: reconnected; subscribed again; APPL_DB PORT_TABLE holds {}",
                    plural(present.len(), "port")
                ));
                self.subscribed = true;
                self.sim()?.input(Input::Reconnected {
                    epoch,
                    present,
                    config_ports,
                });
            }
        }
        Ok(true)
    }

    /// `HMGET PORT_TABLE|<name> state netdev_oper_status admin_status mtu`
    /// for each name, as `effects.rs` reads them back.
    fn read_fields(&mut self, names: &[String], fails: bool) -> Result<ReadBack, SwssError> {
        for name in names {
            self.t.out(format!(
                "STATE_DB: HMGET {} {}",
                self.state_table.full_key(name),
                STATE_FIELDS.join(" ")
            ));
        }
        if fails {
            self.t.out("STATE_DB: connection lost before the reply");
            return Err(lost());
        }
        Ok(names
            .iter()
            .map(|name| {
                let h = self.state.hash(&self.state_table.full_key(name));
                let values = h.map(|h| {
                    STATE_FIELDS
                        .iter()
                        .map(|f| h.iter().find(|(hf, _)| hf == f).map(|(_, v)| v.clone()))
                        .collect()
                });
                (name.clone(), Some(values.unwrap_or_else(|| vec![None; 4])))
            })
            .collect())
    }

    /// Runs `f` on a connection to APPL_DB or STATE_DB of the in-memory
    /// Redis (meeting `fault` first) and writes what it sent.
    fn on_db<T>(
        &mut self,
        which: Which,
        fault: Option<Fault>,
        f: impl FnOnce(&mut Conn<'_>) -> T,
    ) -> T {
        let mut log = Vec::new();
        let result = {
            let (db, name) = match which {
                Which::Appl => (&mut self.appl, "APPL_DB"),
                Which::State => (&mut self.state, "STATE_DB"),
            };
            let mut conn = Conn {
                db,
                name,
                log: &mut log,
                fault,
            };
            f(&mut conn)
        };
        for l in log {
            self.t.out(l);
        }
        result
    }

    /// orchagent pops APPL_DB `PORT_TABLE` (unless held); what it pops
    /// reaches portsyncd's APPL_DB subscription.
    fn pop_all(&mut self) -> Result<(), String> {
        if self.consumers_hold {
            return Ok(());
        }
        let popped: Vec<Popped> = self.appl.pop(&self.producer);
        for p in &popped {
            self.t
                .out(format!("orchagent pops PORT_TABLE: {}", p.describe()));
        }
        if !self.started() || !self.subscribed {
            return Ok(());
        }
        for p in popped {
            if p.wiped && p.existed {
                self.sim()?.input(Input::Appl(KeyOp::Del(p.key.clone())));
            }
            if !p.fvs.is_empty() {
                self.sim()?
                    .input(Input::Appl(KeyOp::Set(p.key, Vec::new())));
            }
        }
        Ok(())
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

    /// APPL_DB `PORT_TABLE` as orchagent will see it, and STATE_DB
    /// `PORT_TABLE`.
    fn show(&mut self) {
        let view = self.appl.consumer_view(&self.producer);
        let mut entries: Vec<(&str, &FieldValues)> = view.iter().collect();
        entries.sort();
        self.t.out(format!(
            "APPL_DB PORT_TABLE: {}",
            plural(entries.len(), "key")
        ));
        for (k, fvs) in entries {
            self.t.out(format!("  {k} {}", format_fvs(fvs)));
        }
        let state = self.state.hashes_under("PORT_TABLE|");
        self.t.out(format!(
            "STATE_DB PORT_TABLE: {}",
            plural(state.len(), "key")
        ));
        for (k, fvs) in state {
            self.t.out(format!("  {k} {}", format_fvs(&fvs)));
        }
    }

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

#[derive(Debug, Clone, Copy)]
enum Which {
    Appl,
    State,
}

fn lost() -> SwssError {
    SwssError::Redis(redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset by peer",
    )))
}
