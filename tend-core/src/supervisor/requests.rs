//! Control requests: what each asks of the services, and when its answer
//! is due. A `start`, `stop` or `restart` that waits becomes a [`Waiter`],
//! answered once every service it names got where it was asked to go; a
//! `signal` waits for the loop to report each kill.

use super::{Action, ConnId, Core, Phase, Refused, ServiceId};
use crate::proto::{
    ErrorBody, ErrorCode, ErrorReply, EventKind, False, HelloReply, ReloadChange, ReloadReply, ReloadReport,
    Reply, Request, ServiceResult, ShutdownReply, StatusReply, Target, True,
};
use crate::service::State;
use crate::spec::Definition;
use crate::status::{self, Clock};
use crate::text::{did_you_mean, parse_signal, signal_name};
use crate::Level;
use std::time::SystemTime;

/// The name of tend's own log in `logs` (its lines, as `tend up` prints
/// them after `tend | `).
pub const OWN_LOG: &str = "tend";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitKind {
    Start,
    Stop,
    Restart,
}

/// A start/stop/restart request waiting for its services to get there.
pub(super) struct Waiter {
    pub(super) conn: ConnId,
    kind: WaitKind,
    targets: Vec<WaitTarget>,
}

struct WaitTarget {
    service: ServiceId,
    /// The service's spawn count when asked: a restart is done once it moved.
    spawns_at_request: u64,
    result: Option<ServiceResult>,
}

/// A `signal` request waiting for the loop to say how each kill went.
pub(super) struct SignalReport {
    pub(super) conn: ConnId,
    report: u64,
    signal: i32,
    /// Per service asked: its result once known.
    results: Vec<(ServiceId, Option<ServiceResult>)>,
}

impl<U: Definition> Core<U> {
    fn reply(&mut self, conn: ConnId, reply: Reply) {
        self.out.push(Action::Reply { conn, reply, done: true });
    }

    /// Resolve names to live services; an unknown name is an error listing
    /// the known ones and the closest. No names (or `all`): every one.
    pub(super) fn resolve(&self, names: &[String], all: bool) -> Result<Vec<ServiceId>, Reply> {
        let live: Vec<ServiceId> = (0..self.services.len()).filter(|&i| !self.services[i].retired).collect();
        if all || names.is_empty() {
            return Ok(live);
        }
        let mut found = Vec::new();
        for name in names {
            match live.iter().find(|&&i| self.services[i].spec.name == *name) {
                Some(&service) => {
                    if !found.contains(&service) {
                        found.push(service)
                    }
                }
                None => {
                    let known: Vec<&str> =
                        live.iter().map(|&i| self.services[i].spec.name.as_str()).collect();
                    let hint = did_you_mean(name, known.iter().copied())
                        .map(|n| format!(" (did you mean '{n}'?)"))
                        .unwrap_or_default();
                    return Err(Reply::error(
                        ErrorCode::UnknownService,
                        format!("no service '{name}'{hint}; known: {}", known.join(", ")),
                    ));
                }
            }
        }
        Ok(found)
    }

    pub(super) fn request(&mut self, conn: ConnId, request: Request, wall: SystemTime) {
        match request {
            Request::Hello => {
                let version = self.version.clone();
                self.reply(conn, Reply::Hello(HelloReply { ok: True, pid: self.pid, version }));
            }
            Request::Status { names } => match self.resolve(&names, false) {
                Ok(services) => {
                    for &service in &services {
                        self.describe_waiting(service);
                    }
                    let clock = Clock { now: self.now, wall };
                    let statuses = services
                        .iter()
                        .map(|&i| status::service_status(&self.services[i].view(), clock))
                        .collect();
                    let reply = StatusReply { ok: True, pid: self.pid, services: statuses };
                    self.out.push(Action::Status { conn, services, reply });
                }
                Err(reply) => self.reply(conn, reply),
            },
            Request::Start(target) => self.change(conn, WaitKind::Start, target),
            Request::Stop(target) => self.change(conn, WaitKind::Stop, target),
            Request::Restart(target) => self.change(conn, WaitKind::Restart, target),
            Request::Signal { signal, names } => self.signal(conn, &signal, &names),
            Request::Logs { names, lines, follow, since, stream } => {
                self.logs(conn, names, lines, follow, since, stream)
            }
            Request::Wait { names, until, timeout_ms, settle } => {
                self.wait(conn, &names, until, timeout_ms.map(std::time::Duration::from_millis), settle)
            }
            Request::Metrics => self.out.push(Action::Metrics { conn }),
            Request::Reload if self.phase != Phase::Running => {
                self.reply(conn, Reply::error(ErrorCode::ShuttingDown, "the supervisor is shutting down"))
            }
            // Answered once the folder is loaded (off the loop).
            Request::Reload => self.out.push(Action::LoadUnits { conn }),
            Request::ReopenLogs => self.out.push(Action::ReopenLogs { conn }),
            Request::Events { names, since_start } => self.follow(conn, &names, since_start),
            Request::Shutdown => {
                // The connection stays open until tend exits: its closing
                // tells the client that the shutdown is complete.
                let reply = Reply::Shutdown(ShutdownReply { ok: True, pid: self.pid });
                self.out.push(Action::Reply { conn, reply, done: false });
                if self.phase == Phase::Running {
                    self.log(Level::Info, "shutting down (tend shutdown)".to_string());
                    self.begin_shutdown();
                }
            }
        }
    }

    /// `logs`: the services named, and `tend` for tend's own log (unless a
    /// unit has that name); no name: every service.
    fn logs(
        &mut self,
        conn: ConnId,
        mut names: Vec<String>,
        lines: usize,
        follow: bool,
        since: Option<String>,
        stream: Option<crate::proto::Stream>,
    ) {
        let since = match since.as_deref().map(humantime::parse_rfc3339_weak) {
            None => None,
            Some(Ok(time)) => Some(time),
            Some(Err(err)) => {
                let message = format!("since: not a time (RFC 3339, UTC: 2026-11-26T13:04:05Z): {err}");
                return self.reply(conn, Reply::error(ErrorCode::BadRequest, message));
            }
        };
        let own = names.iter().any(|n| n == OWN_LOG) && self.live(OWN_LOG).is_none();
        if own {
            names.retain(|n| n != OWN_LOG);
        }
        let services = if own && names.is_empty() {
            Vec::new()
        } else {
            match self.resolve(&names, false) {
                Ok(services) => services,
                Err(reply) => return self.reply(conn, reply),
            }
        };
        self.out.push(Action::Logs { conn, services, own, lines, follow, since, stream });
    }

    fn change(&mut self, conn: ConnId, kind: WaitKind, target: Target) {
        if target.names.is_empty() && !target.all {
            return self
                .reply(conn, Reply::error(ErrorCode::BadRequest, "name at least one service, or --all"));
        }
        if self.phase != Phase::Running && kind != WaitKind::Stop {
            return self
                .reply(conn, Reply::error(ErrorCode::ShuttingDown, "the supervisor is shutting down"));
        }
        let services = match self.resolve(&target.names, target.all) {
            Ok(services) => services,
            Err(reply) => return self.reply(conn, reply),
        };
        let mut targets: Vec<WaitTarget> = Vec::new();
        let add = |targets: &mut Vec<WaitTarget>, service, spawns_at_request, result| {
            if !targets.iter().any(|t: &WaitTarget| t.service == service) {
                targets.push(WaitTarget { service, spawns_at_request, result });
            }
        };
        for service in services {
            let spawns_at_request = self.services[service].spawns;
            let mut immediate = None;
            match kind {
                WaitKind::Start => {
                    let machine = &self.services[service].machine;
                    if matches!(machine.state(), State::Running { .. } | State::Starting { .. }) {
                        let pid = machine.pid().unwrap_or_default();
                        let view = self.services[service].view();
                        immediate = Some(status::result(&view, true, format!("already running (pid {pid})")));
                    } else {
                        // Starts once its dependencies are met, starting
                        // those that are down first.
                        self.want_up(service);
                    }
                }
                WaitKind::Stop => {
                    // Dependents go down too, and first.
                    for dependent in self.want_down(service) {
                        let spawns = self.services[dependent].spawns;
                        add(&mut targets, dependent, spawns, None);
                    }
                    let svc = &self.services[service];
                    if svc.is_down() && !matches!(svc.machine.state(), State::Backoff { .. }) {
                        immediate =
                            Some(status::result(&self.services[service].view(), true, "already stopped"));
                    }
                }
                WaitKind::Restart => self.restart(service, true),
            }
            add(&mut targets, service, spawns_at_request, immediate);
        }
        while self.reconcile() {}
        if !target.wait {
            let verb = match kind {
                WaitKind::Start => "start",
                WaitKind::Stop => "stop",
                WaitKind::Restart => "restart",
            };
            let results = targets
                .into_iter()
                .map(|t| {
                    t.result.unwrap_or_else(|| {
                        status::result(&self.services[t.service].view(), true, format!("{verb} requested"))
                    })
                })
                .collect();
            return self.reply(conn, Reply::results(results));
        }
        self.waiters.push(Waiter { conn, kind, targets });
    }

    /// Answer every waiter whose services have all got where they were asked to go.
    pub(super) fn answer_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let now = self.now;
        let shutting_down = self.phase != Phase::Running;
        let held: Vec<ServiceId> = self
            .waiters
            .iter()
            .flat_map(|w| w.targets.iter().filter(|t| t.result.is_none()).map(|t| t.service))
            .filter(|&s| self.services[s].goal.start_pending)
            .collect();
        for service in held {
            self.describe_waiting(service);
        }
        for waiter in &mut self.waiters {
            for target in waiter.targets.iter_mut().filter(|t| t.result.is_none()) {
                let svc = &self.services[target.service];
                let view = svc.view();
                target.result = match waiter.kind {
                    WaitKind::Start => status::start_outcome(&view, "started", now),
                    WaitKind::Restart if svc.spawns > target.spawns_at_request || svc.goal.start_pending => {
                        status::start_outcome(&view, "restarted", now)
                    }
                    WaitKind::Restart => match svc.machine.state() {
                        State::Failed { reason, .. } => {
                            Some(status::result(&view, false, format!("failed: {}", reason.describe())))
                        }
                        // Down and not started again: the shutdown began.
                        _ if shutting_down && svc.is_down() => {
                            Some(status::result(&view, false, "not restarted: shutting down"))
                        }
                        _ => None,
                    },
                    WaitKind::Stop => status::stop_outcome(&view),
                };
            }
        }
        let mut waiters = std::mem::take(&mut self.waiters);
        waiters.retain_mut(|waiter| {
            if !waiter.targets.iter().all(|t| t.result.is_some()) {
                return true;
            }
            let results = waiter.targets.iter_mut().filter_map(|t| t.result.take()).collect();
            self.out.push(Action::Reply { conn: waiter.conn, reply: Reply::results(results), done: true });
            false
        });
        self.waiters = waiters;
    }

    fn signal(&mut self, conn: ConnId, signal: &str, names: &[String]) {
        let signal = match parse_signal(signal) {
            Ok(signal) => signal,
            Err(message) => return self.reply(conn, Reply::error(ErrorCode::BadRequest, message)),
        };
        if names.is_empty() {
            return self.reply(conn, Reply::error(ErrorCode::BadRequest, "name at least one service"));
        }
        let services = match self.resolve(names, false) {
            Ok(services) => services,
            Err(reply) => return self.reply(conn, reply),
        };
        self.next_report += 1;
        let report = self.next_report;
        let mut results = Vec::new();
        for service in services {
            let svc = &self.services[service];
            match svc.machine.pid() {
                None => results.push((service, Some(status::result(&svc.view(), false, "not running")))),
                Some(pid) => {
                    let group = svc.spec.config.process_group;
                    results.push((service, None));
                    self.out.push(Action::Signal { service, pid, signal, group, report: Some(report) });
                }
            }
        }
        self.signal_reports.push(SignalReport { conn, report, signal, results });
        self.finish_signal_reports();
    }

    pub(super) fn signalled(&mut self, report: u64, service: ServiceId, error: Option<String>) {
        let view = self.services[service].view();
        if let Some(pending) = self.signal_reports.iter_mut().find(|r| r.report == report) {
            let name = signal_name(pending.signal);
            let result = match error {
                None => status::result(&view, true, format!("sent {name}")),
                Some(error) => status::result(&view, false, format!("cannot send {name}: {error}")),
            };
            if let Some(slot) = pending.results.iter_mut().find(|(s, r)| *s == service && r.is_none()) {
                slot.1 = Some(result);
            }
        }
        self.finish_signal_reports();
    }

    fn finish_signal_reports(&mut self) {
        let mut reports = std::mem::take(&mut self.signal_reports);
        reports.retain_mut(|pending| {
            if !pending.results.iter().all(|(_, r)| r.is_some()) {
                return true;
            }
            let results = pending.results.iter_mut().filter_map(|(_, r)| r.take()).collect();
            self.out.push(Action::Reply { conn: pending.conn, reply: Reply::results(results), done: true });
            false
        });
        self.signal_reports = reports;
    }

    /// Apply a reload: nothing changes unless every unit is valid; then
    /// new units start, removed ones stop (as at shutdown), changed ones
    /// restart with their new definition, the others are left alone.
    pub(super) fn reloaded(
        &mut self,
        asked_by: Vec<ConnId>,
        units: Result<Vec<U>, Refused>,
        warnings: Vec<String>,
    ) {
        if self.phase != Phase::Running {
            // Shutting down: nothing starts any more.
            for conn in asked_by {
                self.reply(conn, Reply::error(ErrorCode::ShuttingDown, "the supervisor is shutting down"));
            }
            return;
        }
        let units = match units {
            Ok(units) => units,
            Err(refused) => {
                let n = refused.details.len();
                let mut text = format!("reload refused, nothing changed: {n} error(s)");
                for detail in &refused.details {
                    text.push_str("\n  ");
                    text.push_str(detail);
                }
                self.log(Level::Warning, text);
                let message = format!(
                    "{n} error{} in {}: nothing was changed",
                    if n == 1 { "" } else { "s" },
                    refused.dir
                );
                for conn in asked_by {
                    let error = ErrorBody {
                        code: ErrorCode::InvalidUnits,
                        message: message.clone(),
                        details: refused.details.clone(),
                    };
                    self.reply(conn, Reply::Error(ErrorReply { ok: False, error, results: None }));
                }
                return;
            }
        };
        let plan = crate::reload::plan(self.services.iter().filter(|s| !s.retired).map(|s| &s.unit), &units);
        for name in &plan.removed {
            if let Some(service) = self.live(name) {
                let kind = EventKind::Reload { change: ReloadChange::Removed };
                self.emit(service, kind, "removed by a reload".to_string());
                // Down like at shutdown (its dependents, if any are left,
                // first); retired once marked, so it is no longer listed.
                self.want_down(service);
                self.services[service].retired = true;
            }
        }
        // New units and new definitions (their dependencies may change): the
        // graph as the folder has it now, before anything starts by it.
        let mut changed = Vec::new();
        for unit in units {
            let name = unit.name().to_string();
            if plan.changed.contains(&name) {
                if let Some(service) = self.live(&name) {
                    let spec = unit.spec();
                    let svc = &mut self.services[service];
                    svc.machine.reconfigure(spec.config.clone());
                    svc.spec = spec;
                    let old = std::mem::replace(&mut svc.unit, unit);
                    self.out.push(Action::Redefined { service, old });
                    let kind = EventKind::Reload { change: ReloadChange::Changed };
                    self.emit(service, kind, "changed by a reload".to_string());
                    changed.push(service);
                }
            } else if plan.added.contains(&name) {
                let service = self.add(unit);
                self.out.push(Action::Added { service });
                let kind = EventKind::Reload { change: ReloadChange::Added };
                self.emit(service, kind, "added by a reload".to_string());
                changed.push(service);
            }
        }
        self.rebuild_graph();
        for service in changed {
            if plan.added.contains(&self.services[service].spec.name) {
                self.want_up_alone(service);
            } else if self.services[service].goal.wanted {
                self.restart(service, false);
            }
        }
        let report = ReloadReport {
            started: plan.added,
            stopped: plan.removed,
            restarted: plan.changed,
            unchanged: plan.unchanged,
            warnings,
        };
        let list = |names: &[String]| if names.is_empty() { "none".to_string() } else { names.join(", ") };
        let text = format!(
            "reloaded: started {}; stopped {}; restarted {}; {} unchanged",
            list(&report.started),
            list(&report.stopped),
            list(&report.restarted),
            report.unchanged.len()
        );
        self.log(Level::Info, text);
        for conn in asked_by {
            self.reply(conn, Reply::Reload(ReloadReply { ok: True, reload: report.clone() }));
        }
    }
}
