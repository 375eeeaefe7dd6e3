//! The whole supervisor as one sans-IO state machine: [`Core::handle`]
//! takes what happened ([`Event`]) and returns what to do ([`Action`]);
//! [`Core::next_deadline`] says when to call back with [`Event::Tick`].
//!
//! Owns every service's machine, its goal (wanted up or down, held back by
//! its dependencies: [`goals`]), its checks' schedule, what the control
//! requests ask and when their answers are due ([`requests`]), reloads,
//! shutdown and tend's exit status. Knows nothing of descriptors, pids'
//! processes or time beyond the `now` it is given: the loop carries the
//! actions out and turns the kernel's news into events.
//!
//! After every event the core settles: it starts what may start, stops
//! what may stop, schedules checks, notes state changes and answers the
//! requests whose condition now holds.

mod events;
mod goals;
mod metrics;
mod pipes;
#[cfg(test)]
mod pool_tests;
mod pools;
mod requests;
mod wait;

pub use metrics::ServiceMetrics;
pub use requests::OWN_LOG;

pub use pipes::{Input, Output, PipeId, Stdio};

use crate::checks::{CheckStep, Checks, Verdict};
use crate::proto::{CheckKind, EventKind, Reply, Request, ServiceEvent, ServiceState, StatusReply};
use crate::service::{self, Service, StartFailure, State};
use crate::spec::{Definition, ServiceType, Spec};
use crate::status::{self, View, Waiting};
use crate::text::{format_bytes, signal_name};
use crate::{ExitStatus, Level, Time};
use std::time::SystemTime;

/// A service, by its place in the core (stable for the supervisor's life:
/// a unit removed by a reload keeps its place, retired).
pub type ServiceId = usize;

/// A control connection, numbered by the loop.
pub type ConnId = u64;

/// The units folder could not be loaded: nothing changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The folder, for the message.
    pub dir: String,
    /// Every `file:line:column: message`.
    pub details: Vec<String>,
}

/// What happened, as the loop tells it.
#[derive(Debug)]
pub enum Event<U> {
    /// `tend up` begins: every service is wanted up.
    Up,
    /// The loop forked `service` (its answer to [`Action::Spawn`]).
    Spawned { service: ServiceId, pid: i32 },
    /// The spawn failed: before the fork, or a step between fork and exec
    /// (then the child has been reaped).
    SpawnFailed { service: ServiceId, failure: StartFailure },
    /// `service`'s process executed its program.
    ExecConfirmed { service: ServiceId },
    /// A child was reaped (not a check's). `group_remains`: the process
    /// group or cgroup of the service whose leader it was still has
    /// members; `oom_killed`: the OOM killer ended it.
    Exited { pid: i32, status: ExitStatus, group_remains: bool, oom_killed: bool },
    /// What a leader left behind is gone too.
    GroupEmpty { service: ServiceId },
    /// An sd_notify message from a process of `service`, a notify unit:
    /// the loop attributed it by the sender's pid, and kept only a
    /// `MAINPID=` that names a process of the service.
    Notify { service: ServiceId, fields: Vec<(String, String)> },
    /// A line on `service`'s s6 readiness descriptor.
    ReadyLine { service: ServiceId },
    /// A check the core started finished (`run` as given in [`Action::StartCheck`]).
    CheckDone { service: ServiceId, run: u64, ok: bool, message: String },
    /// A control request; `wall` is the wall clock now (for dates in replies).
    Request { conn: ConnId, request: Request, wall: SystemTime },
    /// The connection went away.
    Disconnected { conn: ConnId },
    /// The units folder, read again for a reload that these connections
    /// asked for (none: SIGHUP), with the loader's warnings (a command that
    /// cannot run), which the reply carries.
    Reloaded { asked_by: Vec<ConnId>, units: Result<Vec<U>, Refused>, warnings: Vec<String> },
    /// The outcome of a signal sent for a `signal` request ([`Action::Signal`]'s `report`).
    Signalled { report: u64, service: ServiceId, error: Option<String> },
    /// SIGTERM, SIGINT or SIGQUIT.
    ShutdownSignal { signal: i32 },
    /// A signal tend catches only to say that it ignores it.
    StraySignal { signal: i32 },
    /// The poller failed: stop everything and exit 1.
    PollFailed { error: String },
    /// A deadline may have passed.
    Tick,
}

/// What the loop must do, in order.
#[derive(Debug)]
pub enum Action<U> {
    /// Fork and exec the service with these standard streams; answer with
    /// [`Event::Spawned`] (before reaping anything) or [`Event::SpawnFailed`].
    /// `restart`: the restart policy's, of the process that just ended (at
    /// once, or at the end of its delay), not a start that follows other
    /// work (tend's start, a dependency met, a request, a reload): the loop
    /// may make it another way (it finds the loop idle).
    Spawn { service: ServiceId, stdio: Stdio, restart: bool },
    /// Make the pipe into this consumer and hold both its ends until
    /// [`Action::ClosePipe`]; every spawn that names it comes after.
    OpenPipe { pipe: PipeId },
    /// No unit pipes into this consumer any more (or the shutdown began):
    /// let go of tend's ends (the processes keep their own).
    ClosePipe { pipe: PipeId },
    /// kill(2) `pid` (its process group when `group`, and what is left in
    /// the service's cgroup). With `report`, answer [`Event::Signalled`].
    Signal { service: ServiceId, pid: i32, signal: i32, group: bool, report: Option<u64> },
    /// Run the service's check of this kind; answer [`Event::CheckDone`] with `run`.
    StartCheck { service: ServiceId, run: u64, kind: CheckKind },
    /// Give up on check run `run`: kill it or close it, and report nothing.
    CancelCheck { service: ServiceId, run: u64 },
    /// A line for tend's own log.
    Log { level: Level, text: String },
    /// Send `reply` on `conn`. `done`: it answers the connection's request
    /// (its next request may come); otherwise the connection stays busy
    /// (`shutdown`: it closes when tend exits).
    Reply { conn: ConnId, reply: Reply, done: bool },
    /// Send a status reply, after adding what only the loop measures
    /// (memory, CPU, log sink errors) to each service in `services`' order.
    Status { conn: ConnId, services: Vec<ServiceId>, reply: StatusReply },
    /// Send the last `lines` of these services' output (and of tend's own
    /// log with `own`), read at or after `since`, of `stream` only if
    /// given; then end the reply, or with `follow` keep sending new lines.
    Logs {
        conn: ConnId,
        services: Vec<ServiceId>,
        own: bool,
        lines: usize,
        follow: bool,
        since: Option<SystemTime>,
        stream: Option<crate::proto::Stream>,
    },
    /// Send the metrics ([`Core::metrics`] and what the loop measures) on `conn`.
    Metrics { conn: ConnId },
    /// Reopen every log file; answer on `conn`.
    ReopenLogs { conn: ConnId },
    /// Read the units folder again; answer [`Event::Reloaded`], asked by `conn`.
    LoadUnits { conn: ConnId },
    /// A reload added this service.
    Added { service: ServiceId },
    /// A reload changed this service's definition; `old` is the one it replaced.
    Redefined { service: ServiceId, old: U },
    /// Removed by a reload and down: what the loop holds for it can go.
    Release { service: ServiceId },
    /// An event of `service`, for the followers of `events` (the loop adds the time).
    Emit { service: ServiceId, event: ServiceEvent },
    /// Send `reply` on `conn`, then `replay`, then keep sending the events
    /// of `services` (`None`: every service, those a reload adds too).
    Follow {
        conn: ConnId,
        reply: Reply,
        services: Option<Vec<ServiceId>>,
        replay: Vec<(ServiceId, ServiceEvent)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Stopping everything; `escalated` once SIGKILL was sent to all.
    ShuttingDown {
        escalated: bool,
    },
}

/// Whether a service is wanted up, and what stands between it and that.
#[derive(Debug, Clone, Default)]
struct Goal {
    /// Wanted up (by `up`, `start`, a reload) or down (by `stop`, shutdown).
    wanted: bool,
    /// Wanted up but not started yet: waiting for its dependencies.
    start_pending: bool,
    /// The pending start is a restart its machine already decided (after a
    /// crash or a restart request): once the dependencies hold, spawn it
    /// without a fresh start, which would forget past failures.
    resume: bool,
    /// Why it is not started yet.
    waiting: Option<Waiting>,
    /// Its stop was asked (after its dependents were down).
    stop_sent: bool,
}

struct Svc<U> {
    /// Its definition (for an instance, with `%i` replaced).
    unit: U,
    spec: Spec,
    /// The unit (file) it comes from: its own name, or a pool's (`worker`).
    unit_name: String,
    /// For an instance of a pool: its instance name (`2`, `eu`).
    instance: Option<String>,
    /// Its unit's `enabled:` (`tend up` starts it).
    enabled: bool,
    /// Named by `tend up NAME…` (or `up` named none).
    selected: bool,
    machine: Service,
    goal: Goal,
    checks: Checks,
    /// Removed by a reload: stopping or stopped, no longer listed.
    retired: bool,
    /// Retired and down: the loop was told to release it.
    released: bool,
    /// How many times it was forked (a restart is done when this moves).
    spawns: u64,
    /// How many times its processes were all gone after running (a stop is
    /// done when this moves).
    stops: u64,
    /// [`Action::Spawn`] was asked and not yet answered: its machine is
    /// still `Stopped`, but a process is coming.
    spawning: bool,
    /// The state as last shown, and since when.
    shown: ServiceState,
    since: Time,
    status_text: Option<String>,
    main_pid: Option<i32>,
    oom_killed: bool,
    /// Restarts its policy made since tend started (never reset).
    restarts_total: u64,
    /// Runs that ended in failure since tend started, by kind.
    failures_by_kind: Vec<(crate::proto::ExitKind, u64)>,
}

impl<U> Svc<U> {
    /// No process of it is alive, and none is being forked.
    fn is_down(&self) -> bool {
        self.machine.is_down() && !self.spawning
    }

    fn view(&self) -> View<'_> {
        View {
            name: &self.spec.name,
            pool: self.instance.as_deref().map(|instance| (self.unit_name.as_str(), instance)),
            enabled: self.enabled,
            optional: (!self.enabled || !self.selected) && !self.goal.wanted,
            machine: &self.machine,
            held: if self.goal.start_pending { self.goal.waiting.as_ref() } else { None },
            spawning: self.spawning,
            oom_killed: self.oom_killed,
            status_text: self.status_text.as_deref(),
            last_check: self.checks.last(),
            since: self.since,
        }
    }

    /// Wanted down and waiting for its dependents to stop first: left
    /// alone meanwhile (no checks, no timers), so that nothing stops it
    /// out of order.
    fn awaiting_stop(&self) -> bool {
        !self.goal.wanted && !self.goal.stop_sent
    }

    /// The check that applies in its current state, with its timing: none
    /// for a service wanted down.
    fn wanted_check(&self) -> Option<(CheckKind, crate::spec::CheckTiming)> {
        if !self.goal.wanted {
            return None;
        }
        match self.machine.state() {
            State::Running { ready: false, .. } => self.spec.ready_check.map(|t| (CheckKind::Ready, t)),
            State::Running { ready: true, .. } => self.spec.health_check.map(|t| (CheckKind::Health, t)),
            _ => None,
        }
    }

    fn check_timing(&self, kind: CheckKind) -> Option<crate::spec::CheckTiming> {
        match kind {
            CheckKind::Ready => self.spec.ready_check,
            CheckKind::Health => self.spec.health_check,
        }
    }

    fn current_check_timing(&self) -> Option<crate::spec::CheckTiming> {
        self.wanted_check().map(|(_, timing)| timing)
    }
}

/// The services of a unit: one per instance of a pool (`instances`), or
/// the unit itself.
fn services_of<U: Definition>(template: &U, instances: Option<&[String]>) -> Vec<(Option<String>, U)> {
    match instances {
        None => vec![(None, template.service(None))],
        Some(names) => names.iter().map(|i| (Some(i.clone()), template.service(Some(i)))).collect(),
    }
}

/// A unit as its file has it: one service, or a pool of instances.
struct UnitEntry<U> {
    /// A pool's definition as loaded (before `%i` is replaced), from which
    /// `tend scale` makes new instances. `None` for a unit that is one
    /// service: its service's definition is the unit's (without `enabled`,
    /// kept below), held once, by the service. Boxed: the map's nodes hold
    /// eleven entries each, mostly of units that are one service.
    template: Option<Box<U>>,
    /// Its `enabled:`.
    enabled: bool,
    /// The consumers its services pipe into (`stdout: {to: …}`), for the
    /// pipes that live as long as the unit does.
    pipes_into: Vec<String>,
    /// A pool's instances as they stand now (`tend scale` may have changed
    /// the count); `None` for a unit that is one service.
    instances: Option<Vec<String>>,
    /// `tend scale` set the count: a reload that leaves the unit's
    /// `instances:` as it was keeps the scaled count.
    scaled: bool,
}

impl<U: Definition> UnitEntry<U> {
    /// The entry of `unit` as loaded, running `instances` (a pool's; `None`
    /// for one service).
    fn new(unit: U, instances: Option<Vec<String>>, scaled: bool) -> UnitEntry<U> {
        let enabled = unit.enabled();
        let pipes_into = unit.spec().pipes_into().map(str::to_string).collect();
        let template = unit.instances().is_some().then(|| Box::new(unit));
        UnitEntry { template, enabled, pipes_into, instances, scaled }
    }

    /// The pool's `instances:` as its unit says it (`None`: not a pool).
    fn declared(&self) -> Option<&crate::spec::Instances> {
        self.template.as_ref().and_then(|t| t.instances())
    }
}

/// tend's supervisor core. `U` is the unit definition it holds (the
/// loader's `UnitSpec` in tend, a model in the simulation).
pub struct Core<U> {
    services: Vec<Svc<U>>,
    /// Every unit of the folder, by name (a pool's services are in
    /// `services`, one per instance).
    units: std::collections::BTreeMap<String, UnitEntry<U>>,
    /// `tend up NAME…`: the services asked for (with what they depend on);
    /// `None`: every enabled one.
    selection: Option<Vec<ServiceId>>,
    phase: Phase,
    /// Who depends on whom, by id.
    graph: goals::Graph,
    waiters: Vec<requests::Waiter>,
    /// Rolling restarts under way.
    rollings: Vec<pools::Rolling>,
    state_waiters: Vec<wait::StateWaiter>,
    signal_reports: Vec<requests::SignalReport>,
    next_report: u64,
    /// The exit status a critical service handed over.
    critical_exit: Option<i32>,
    /// The poller failed.
    poll_failed: bool,
    /// Signals already reported as ignored (bit N: signal N).
    ignored_reported: u128,
    /// The pipes open and needed, by consumer id, sorted.
    pipes: Vec<PipeId>,
    /// Pipes no longer needed, still open until no fork is in flight.
    closing: Vec<PipeId>,
    /// [`Event::Up`] came: pipes are opened from then on.
    up: bool,
    /// tend's pid and version, for `hello`, `status` and `shutdown`.
    pid: i32,
    version: String,
    now: Time,
    out: Vec<Action<U>>,
    /// Events of this turn, sent once it has settled.
    events: Vec<events::Pending>,
    /// Events sent since tend started.
    events_sent: u64,
}

impl<U: Definition> Core<U> {
    /// A core for these units; nothing runs until [`Event::Up`].
    pub fn new(units: Vec<U>, pid: i32, version: &str) -> Core<U> {
        let mut core = Core {
            services: Vec::new(),
            units: std::collections::BTreeMap::new(),
            selection: None,
            phase: Phase::Running,
            graph: goals::Graph::default(),
            waiters: Vec::new(),
            rollings: Vec::new(),
            state_waiters: Vec::new(),
            signal_reports: Vec::new(),
            next_report: 0,
            critical_exit: None,
            poll_failed: false,
            ignored_reported: 0,
            pipes: Vec::new(),
            closing: Vec::new(),
            up: false,
            pid,
            version: version.to_string(),
            now: Time::ZERO,
            out: Vec::new(),
            events: Vec::new(),
            events_sent: 0,
        };
        for template in units {
            let name = template.name().to_string();
            let instances = template.instances().map(|i| i.names());
            for (instance, unit) in services_of(&template, instances.as_deref()) {
                core.add(unit, name.clone(), instance, template.enabled());
            }
            core.units.insert(name, UnitEntry::new(template, instances, false));
        }
        core.rebuild_graph();
        core
    }

    /// `tend up NAME…`: start only these services (a unit's name: all its
    /// instances) and what they depend on; the others stay loaded and
    /// stopped. Before [`Event::Up`]; an unknown name is an error (nothing
    /// has started).
    pub fn select(&mut self, names: &[String]) -> Result<(), String> {
        if names.is_empty() {
            self.selection = None;
            return Ok(());
        }
        let selection = self.lookup(names)?;
        for (id, svc) in self.services.iter_mut().enumerate() {
            svc.selected = selection.contains(&id);
        }
        self.selection = Some(selection);
        Ok(())
    }

    fn add(&mut self, unit: U, unit_name: String, instance: Option<String>, enabled: bool) -> ServiceId {
        let spec = pipes::effective_spec(&unit);
        let machine = Service::new(std::sync::Arc::clone(&spec.config));
        self.services.push(Svc {
            unit,
            spec,
            unit_name,
            instance,
            enabled,
            selected: true,
            machine,
            goal: Goal::default(),
            checks: Checks::default(),
            retired: false,
            released: false,
            spawns: 0,
            stops: 0,
            spawning: false,
            shown: ServiceState::Stopped,
            since: self.now,
            status_text: None,
            main_pid: None,
            oom_killed: false,
            restarts_total: 0,
            failures_by_kind: Vec::new(),
        });
        self.services.len() - 1
    }

    /// A new service (a reload's, `tend scale`'s): one a reload or a scale
    /// removed that is still stopping comes back (its process goes on
    /// stopping, and the service starts again afterwards), so that no two
    /// services of one name (one cgroup) ever live side by side; else a
    /// new one. The loop hears [`Action::Added`] or [`Action::Redefined`].
    fn add_or_revive(
        &mut self,
        unit: U,
        unit_name: String,
        instance: Option<String>,
        enabled: bool,
    ) -> ServiceId {
        let name = unit.name();
        let retired = self.services.iter().position(|s| s.retired && !s.released && s.spec.name == name);
        match retired {
            Some(service) => {
                let svc = &mut self.services[service];
                svc.retired = false;
                svc.unit_name = unit_name;
                svc.instance = instance;
                svc.enabled = enabled;
                if svc.unit != unit {
                    self.redefine(service, unit);
                }
                service
            }
            None => {
                let service = self.add(unit, unit_name, instance, enabled);
                self.out.push(Action::Added { service });
                service
            }
        }
    }

    /// A service's new definition, from its next start on.
    fn redefine(&mut self, service: ServiceId, unit: U) {
        let spec = pipes::effective_spec(&unit);
        let svc = &mut self.services[service];
        svc.machine.reconfigure(std::sync::Arc::clone(&spec.config));
        svc.spec = spec;
        let old = std::mem::replace(&mut svc.unit, unit);
        self.out.push(Action::Redefined { service, old });
    }

    /// Take in what happened at `now`; return what to do, in order.
    pub fn handle(&mut self, now: Time, event: Event<U>) -> Vec<Action<U>> {
        self.now = self.now.max(now);
        match event {
            Event::Up => {
                self.up = true;
                self.sync_pipes();
                let chosen: Vec<ServiceId> = match &self.selection {
                    Some(services) => services.clone(),
                    None => (0..self.services.len()).filter(|&i| self.services[i].enabled).collect(),
                };
                // What they depend on comes up with them, enabled or not.
                for id in chosen {
                    self.want_up(id);
                }
            }
            Event::Spawned { service, pid } => {
                let svc = &mut self.services[service];
                svc.spawns += 1;
                svc.spawning = false;
                svc.oom_killed = false;
                svc.status_text = None;
                svc.main_pid = None;
                self.deliver(service, service::Event::Spawned { pid });
            }
            Event::SpawnFailed { service, failure } => {
                self.services[service].spawning = false;
                self.deliver(service, service::Event::SpawnFailed { failure })
            }
            Event::ExecConfirmed { service } => self.deliver(service, service::Event::ExecConfirmed),
            Event::Exited { pid, status, group_remains, oom_killed } => {
                // Not a leader: an orphan re-parented to tend, or a leftover
                // of a group. Reaped; nothing else to do.
                if let Some(service) = self.leader_of(pid) {
                    if oom_killed {
                        self.oom_killed(service);
                    }
                    self.deliver(service, service::Event::Exited { pid, status, group_remains });
                }
            }
            Event::GroupEmpty { service } => self.deliver(service, service::Event::GroupEmpty),
            Event::Notify { service, fields } => self.notify(service, fields),
            Event::ReadyLine { service } => self.deliver(service, service::Event::Ready),
            Event::CheckDone { service, run, ok, message } => {
                let timing = self.services[service].current_check_timing();
                let verdict = self.services[service].checks.result(self.now, run, ok, message, timing);
                self.check_verdict(service, verdict);
            }
            Event::Request { conn, request, wall } => self.request(conn, request, wall),
            Event::Disconnected { conn } => {
                self.waiters.retain(|w| w.conn != conn);
                // A rolling restart goes on without its client.
                for rolling in self.rollings.iter_mut().filter(|r| r.conn == Some(conn)) {
                    rolling.conn = None;
                }
                self.state_waiters.retain(|w| w.conn != conn);
                self.signal_reports.retain(|r| r.conn != conn);
            }
            Event::Reloaded { asked_by, units, warnings } => self.reloaded(asked_by, units, warnings),
            Event::Signalled { report, service, error } => self.signalled(report, service, error),
            Event::ShutdownSignal { signal } => self.shutdown_signal(signal),
            Event::StraySignal { signal } => {
                let bit = 1u128 << (signal.rem_euclid(128) as u32);
                if self.ignored_reported & bit == 0 {
                    self.ignored_reported |= bit;
                    self.log(Level::Info, format!("ignoring {}", signal_name(signal)));
                }
            }
            Event::PollFailed { error } => {
                if !self.poll_failed {
                    self.poll_failed = true;
                    self.log(Level::Warning, format!("poll failed: {error}; stopping every service"));
                    if self.phase == Phase::Running {
                        self.begin_shutdown();
                    }
                }
            }
            Event::Tick => self.tick(),
        }
        self.settle();
        std::mem::take(&mut self.out)
    }

    /// When the loop must deliver [`Event::Tick`]: the earliest deadline of
    /// any service or check, or `None` (sleep until something happens).
    pub fn next_deadline(&self) -> Option<Time> {
        self.services
            .iter()
            .flat_map(|s| {
                let left_alone = s.awaiting_stop() && matches!(s.machine.state(), State::Running { .. });
                [s.machine.deadline().filter(|_| !left_alone), s.checks.deadline()]
            })
            .flatten()
            .chain(self.state_waiters.iter().filter_map(|w| w.deadline()))
            .min()
    }

    // ---- queries for the loop ----

    /// Services in the core, retired ones included (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    pub fn unit(&self, service: ServiceId) -> &U {
        &self.services[service].unit
    }

    pub fn spec(&self, service: ServiceId) -> &Spec {
        &self.services[service].spec
    }

    /// The unit a service comes from, and its instance name when it is an
    /// instance of a pool: (`worker`, Some(`2`)); (`web`, None).
    pub fn unit_of(&self, service: ServiceId) -> (&str, Option<&str>) {
        let svc = &self.services[service];
        (&svc.unit_name, svc.instance.as_deref())
    }

    /// Wanted up (by `up`, `start`, a restart or a reload), as opposed to
    /// stopped on purpose or never started.
    pub fn is_wanted(&self, service: ServiceId) -> bool {
        self.services[service].goal.wanted
    }

    /// Not removed by a reload.
    pub fn is_live(&self, service: ServiceId) -> bool {
        !self.services[service].retired
    }

    /// The service whose leader (the process tend forked, until reaped) is `pid`.
    pub fn leader_of(&self, pid: i32) -> Option<ServiceId> {
        self.services.iter().position(|s| s.machine.pid() == Some(pid))
    }

    /// The service whose leader or `MAINPID=` is `pid`.
    pub fn main_process_of(&self, pid: i32) -> Option<ServiceId> {
        self.services.iter().position(|s| s.machine.pid() == Some(pid) || s.main_pid == Some(pid))
    }

    /// The leader's pid while one lives.
    pub fn pid(&self, service: ServiceId) -> Option<i32> {
        self.services[service].machine.pid()
    }

    /// The machine's state (for the loop's checks of what is left).
    pub fn state(&self, service: ServiceId) -> &State {
        self.services[service].machine.state()
    }

    /// Services whose leader is gone and whose process group or cgroup
    /// must be watched until empty: `(service, leader pid = process group)`.
    pub fn awaiting_group_empty(&self) -> impl Iterator<Item = (ServiceId, i32)> + '_ {
        self.services.iter().enumerate().filter_map(|(id, s)| match *s.machine.state() {
            State::Stopping { leader, leader_alive: false, .. } => Some((id, leader)),
            _ => None,
        })
    }

    /// The check run in flight for `service`, if any.
    pub fn running_check(&self, service: ServiceId) -> Option<u64> {
        self.services[service].checks.running()
    }

    /// Forks so far, all services together.
    pub fn spawns(&self) -> u64 {
        self.services.iter().map(|s| s.spawns).sum()
    }

    /// Shutting down, and every process tend started is gone: time to exit.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::ShuttingDown { .. }) && self.services.iter().all(|s| s.is_down())
    }

    pub fn shutting_down(&self) -> bool {
        self.phase != Phase::Running
    }

    /// tend's exit status: 1 after a failed poll; a critical service's
    /// status when it ended everything; 1 when a service had to be killed;
    /// else 0.
    pub fn exit_code(&self) -> i32 {
        if self.poll_failed {
            return 1;
        }
        if let Some(code) = self.critical_exit {
            return code;
        }
        if self.services.iter().any(|s| s.machine.was_killed()) {
            return 1;
        }
        0
    }

    /// The state `tend status` shows.
    pub fn shown_state(&self, service: ServiceId) -> ServiceState {
        status::state(&self.services[service].view())
    }

    /// One service's line for a reply the loop builds (reopen-logs).
    pub fn result(
        &self,
        service: ServiceId,
        ok: bool,
        message: impl Into<String>,
    ) -> crate::proto::ServiceResult {
        status::result(&self.services[service].view(), ok, message)
    }

    // ---- inside ----

    fn log(&mut self, level: Level, text: String) {
        self.out.push(Action::Log { level, text });
    }

    fn name(&self, service: ServiceId) -> &str {
        &self.services[service].spec.name
    }

    /// Hand an event to one service's machine and carry out what it says.
    fn deliver(&mut self, service: ServiceId, event: service::Event) {
        let svc = &mut self.services[service];
        let was_failed = matches!(svc.machine.state(), State::Failed { .. });
        let was_down = svc.machine.is_down();
        let failures = svc.machine.failures_total();
        // A spawn is the restart policy's when its delay ran out, or when
        // the machine says it restarts (a delay of 0) just before it.
        let mut restart = matches!(svc.machine.state(), State::Backoff { .. });
        let actions = svc.machine.handle(self.now, event);
        if !was_down && svc.machine.is_down() {
            svc.stops += 1;
        }
        for action in actions {
            restart |= matches!(action, service::Action::Notice(service::Notice::Restarting { .. }));
            self.machine_action(service, action, restart);
        }
        if self.services[service].machine.failures_total() > failures {
            self.tally_failure(service);
        }
        if !was_failed {
            self.entered_failed(service);
        }
    }

    fn machine_action(&mut self, service: ServiceId, action: service::Action, restart: bool) {
        match action {
            service::Action::Spawn => self.spawn(service, restart),
            service::Action::Signal { pid, signal, group } => {
                self.out.push(Action::Signal { service, pid, signal, group, report: None })
            }
            service::Action::Notice(notice) => {
                let text = format!("{}: {}", self.name(service), notice.describe());
                self.log(notice.level(), text);
                self.notice_event(service, &notice);
            }
            service::Action::Ended { exit_code } => {
                let svc = &self.services[service];
                if svc.spec.critical && self.phase == Phase::Running && !svc.retired {
                    let text = format!("{}: critical service ended, stopping everything", svc.spec.name);
                    self.log(Level::Warning, text);
                    self.critical_exit = Some(exit_code);
                    self.begin_shutdown();
                }
            }
        }
    }

    /// The machine wants a process. Never while going down (a restart that
    /// was pending when the shutdown began), nor for a removed unit; and
    /// never ahead of what it depends on: a restart waits, like a start,
    /// until its dependencies meet their conditions.
    fn spawn(&mut self, service: ServiceId, restart: bool) {
        let svc = &self.services[service];
        // Not while going down, not for a removed unit, not for one wanted
        // down (a restart its machine decided while it waits to be stopped).
        if self.phase != Phase::Running || svc.retired || !svc.goal.wanted || svc.spawning {
            return;
        }
        if let Err(waiting) = self.dependencies_met(service, false) {
            let goal = &mut self.services[service].goal;
            goal.start_pending = true;
            goal.resume = true;
            goal.waiting = Some(waiting);
            return;
        }
        self.services[service].spawning = true;
        let stdio = self.stdio(service);
        self.out.push(Action::Spawn { service, stdio, restart });
    }

    fn oom_killed(&mut self, service: ServiceId) {
        let svc = &mut self.services[service];
        svc.oom_killed = true;
        let limit =
            svc.spec.memory_max.map(|m| format!(" (memory_max {})", format_bytes(m))).unwrap_or_default();
        let text = format!("{}: killed by the OOM killer{limit}", svc.spec.name);
        self.log(Level::Warning, text);
    }

    fn notify(&mut self, service: ServiceId, fields: Vec<(String, String)>) {
        if self.services[service].spec.service_type != ServiceType::Notify {
            // The loop keeps these out; a message for another type means nothing.
            return;
        }
        for (key, value) in fields {
            let svc = &mut self.services[service];
            match (key.as_str(), value.as_str()) {
                ("READY", "1") => self.deliver(service, service::Event::Ready),
                ("WATCHDOG", "1") => self.deliver(service, service::Event::WatchdogPing),
                ("STATUS", _) => svc.status_text = Some(value),
                ("MAINPID", _) => svc.main_pid = value.parse().ok(),
                ("STOPPING", "1") => svc.status_text = Some("stopping".into()),
                ("RELOADING", "1") => svc.status_text = Some("reloading".into()),
                ("EXTEND_TIMEOUT_USEC", _) => {
                    if let Ok(usec) = value.parse::<u64>() {
                        let by = std::time::Duration::from_micros(usec);
                        self.deliver(service, service::Event::Extend { by });
                    }
                }
                // Other assignments (ERRNO=, FDSTORE=, …) are accepted and ignored.
                _ => {}
            }
        }
    }

    fn check_verdict(&mut self, service: ServiceId, verdict: Option<Verdict>) {
        match verdict {
            None => {}
            Some(Verdict::Ready) => self.deliver(service, service::Event::Ready),
            Some(Verdict::HealthPassed { message }) => {
                let kind = EventKind::Health { passing: true, failures: 0, retries: 0 };
                self.emit(service, kind, format!("health check passed ({message})"));
            }
            Some(verdict @ Verdict::HealthFailed { .. }) => {
                let unhealthy = verdict.is_unhealthy();
                let Verdict::HealthFailed { failures, retries, message } = verdict else { return };
                let words = format!("health check failed ({message}), {failures} of {retries} in a row");
                self.log(Level::Warning, format!("{}: {words}", self.name(service)));
                self.emit(service, EventKind::Health { passing: false, failures, retries }, words);
                if unhealthy {
                    self.deliver(service, service::Event::HealthFailed { failures });
                }
            }
        }
    }

    /// Deadlines that have passed: restart delays, stop timeouts, start
    /// and watchdog timeouts, checks that ran too long.
    fn tick(&mut self) {
        let now = self.now;
        for service in 0..self.services.len() {
            let svc = &self.services[service];
            let left_alone = svc.awaiting_stop() && matches!(svc.machine.state(), State::Running { .. });
            if !left_alone && svc.machine.deadline().is_some_and(|at| at <= now) {
                self.deliver(service, service::Event::Tick);
            }
            let svc = &mut self.services[service];
            let timing = svc.current_check_timing();
            let mut steps = Vec::new();
            let verdict = svc.checks.on_tick(now, timing, &mut steps);
            self.check_steps(service, steps);
            self.check_verdict(service, verdict);
        }
    }

    fn check_steps(&mut self, service: ServiceId, steps: Vec<CheckStep>) {
        for step in steps {
            self.out.push(match step {
                CheckStep::Start { run, kind } => Action::StartCheck { service, run, kind },
                CheckStep::Cancel { run } => Action::CancelCheck { service, run },
            });
        }
    }

    /// After every event: start what may start and stop what may stop,
    /// release what reloads removed, run due checks, note state changes,
    /// answer the requests that are now done.
    fn settle(&mut self) {
        // Rolling restarts move first: a service whose next instance is
        // about to be restarted must not start on that instance's
        // readiness in the same turn.
        loop {
            let rolled = self.advance_rollings();
            let mut reconciled = false;
            while self.reconcile() {
                reconciled = true;
            }
            if !rolled && !reconciled {
                break;
            }
        }
        self.close_pipes();
        let mut released = false;
        for service in 0..self.services.len() {
            let svc = &mut self.services[service];
            if svc.retired && !svc.released && svc.is_down() {
                svc.released = true;
                released = true;
                self.out.push(Action::Release { service });
            }
        }
        if released {
            self.rebuild_graph();
        }
        for service in 0..self.services.len() {
            let svc = &mut self.services[service];
            let wanted = svc.wanted_check();
            let mut steps = Vec::new();
            svc.checks.set(self.now, wanted, &mut steps);
            let timing = wanted.map(|(kind, _)| kind).and_then(|kind| svc.check_timing(kind));
            svc.checks.start_due(self.now, timing, &mut steps);
            self.check_steps(service, steps);
        }
        // Answering may describe why a service waits, which can find it
        // blocked: before the states are noted.
        self.answer_waiters();
        self.answer_state_waiters();
        let mut changed = Vec::new();
        for (service, svc) in self.services.iter_mut().enumerate() {
            let shown = status::state(&svc.view());
            if shown != svc.shown {
                svc.shown = shown;
                svc.since = self.now;
                changed.push(service);
            }
        }
        self.send_events(&changed);
    }

    /// Stop everything, dependents before what they depend on.
    fn begin_shutdown(&mut self) {
        self.phase = Phase::ShuttingDown { escalated: false };
        self.sync_pipes();
        for service in 0..self.services.len() {
            self.want_down(service);
        }
    }

    fn shutdown_signal(&mut self, signal: i32) {
        match self.phase {
            Phase::Running => {
                self.log(Level::Info, format!("shutting down ({})", signal_name(signal)));
                self.begin_shutdown();
            }
            // SIGQUIT asks for a graceful stop even when repeated.
            Phase::ShuttingDown { escalated: false } if signal != crate::text::SIGQUIT => {
                let text = format!("second {}: killing every service now (SIGKILL)", signal_name(signal));
                self.log(Level::Warning, text);
                self.phase = Phase::ShuttingDown { escalated: true };
                for service in 0..self.services.len() {
                    self.deliver(service, service::Event::Kill);
                }
            }
            Phase::ShuttingDown { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests;
