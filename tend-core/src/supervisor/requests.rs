//! Control requests: what each asks of the services, and when its answer
//! is due. A `start`, `stop` or `restart` that waits becomes a [`Waiter`],
//! answered once every service it names got where it was asked to go; a
//! `signal` waits for the loop to report each kill.

use super::{Action, ConnId, Core, Phase, Refused, ServiceId};
use crate::proto::{
    ErrorBody, ErrorCode, ErrorReply, EventKind, False, HelloReply, ReloadChange, ReloadReply, ReloadReport,
    Reply, Request, ScaleReply, ServiceResult, ShutdownReply, StatusReply, Target, True,
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
pub(super) enum WaitKind {
    Start,
    Stop,
    Restart,
}

/// A start/stop/restart (or scale) request waiting for its services to get there.
pub(super) struct Waiter {
    pub(super) conn: ConnId,
    pub(super) targets: Vec<WaitTarget>,
    /// A `scale`: answered with [`ScaleReply`](crate::proto::ScaleReply).
    pub(super) scale: Option<ScaleNote>,
}

/// What a scale changed, for its reply.
pub(super) struct ScaleNote {
    pub(super) unit: String,
    pub(super) from: u32,
    pub(super) to: u32,
}

/// A service's spawn and stop counts at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    pub(super) spawns: u64,
    pub(super) stops: u64,
}

pub(super) struct WaitTarget {
    pub(super) service: ServiceId,
    /// Where it was asked to go.
    pub(super) kind: WaitKind,
    /// The service's counts when asked: a restart is done once its spawns
    /// moved, a stop once its stops did (or it is down).
    pub(super) mark: Mark,
    pub(super) result: Option<ServiceResult>,
}

/// A `signal` request waiting for the loop to say how each kill went.
pub(super) struct SignalReport {
    pub(super) conn: ConnId,
    report: u64,
    signal: i32,
    /// Per service asked: its result once known.
    results: Vec<(ServiceId, Option<ServiceResult>)>,
}

/// The reply to a scale, once its services got there: every result, and an
/// error naming those that did not.
pub(super) fn scale_reply(note: ScaleNote, results: Vec<ServiceResult>) -> Reply {
    match Reply::results(results) {
        Reply::Results(done) => Reply::Scale(ScaleReply {
            ok: True,
            unit: note.unit,
            from: note.from,
            to: note.to,
            results: done.results,
        }),
        failed => failed,
    }
}

impl<U: Definition> Core<U> {
    pub(super) fn reply(&mut self, conn: ConnId, reply: Reply) {
        self.out.push(Action::Reply { conn, reply, done: true });
    }

    /// Resolve names to live services; an unknown name is an error (the
    /// reply) listing the known ones and the closest. No names (or `all`):
    /// every one.
    pub(super) fn resolve(&self, names: &[String], all: bool) -> Result<Vec<ServiceId>, Box<Reply>> {
        if all || names.is_empty() {
            return Ok((0..self.services.len()).filter(|&i| !self.services[i].retired).collect());
        }
        self.lookup(names).map_err(|message| Box::new(Reply::error(ErrorCode::UnknownService, message)))
    }

    /// The live services these names name: a service's full name names it
    /// (`web`, `worker@2`), a pool's unit name every instance (`worker`).
    /// An unknown name is an error that lists the known names and the
    /// closest one.
    pub(super) fn lookup(&self, names: &[String]) -> Result<Vec<ServiceId>, String> {
        let mut found = Vec::new();
        for name in names {
            let services = match (self.live(name), self.pool(name)) {
                (Some(service), _) => vec![service],
                (None, Some(instances)) => instances.to_vec(),
                (None, None) => return Err(self.unknown(name)),
            };
            for service in services {
                if !found.contains(&service) {
                    found.push(service);
                }
            }
        }
        Ok(found)
    }

    /// `no service 'wrker' (did you mean 'worker'?); known: db, web, worker (4 instances)`.
    pub(super) fn unknown(&self, name: &str) -> String {
        let live = (0..self.services.len()).filter(|&i| !self.services[i].retired);
        let candidates: Vec<&str> = self
            .units
            .keys()
            .map(String::as_str)
            .chain(live.map(|i| self.services[i].spec.name.as_str()))
            .collect();
        let hint = did_you_mean(name, candidates.iter().copied())
            .map(|n| format!(" (did you mean '{n}'?)"))
            .unwrap_or_default();
        let known: Vec<String> = self
            .units
            .iter()
            .map(|(unit, entry)| match &entry.instances {
                None => unit.clone(),
                Some(instances) => {
                    let n = instances.len();
                    format!("{unit} ({n} instance{})", if n == 1 { "" } else { "s" })
                }
            })
            .collect();
        format!("no service '{name}'{hint}; known: {}", known.join(", "))
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
                Err(reply) => self.reply(conn, *reply),
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
            Request::Scale { name, instances, wait } => self.scale(conn, &name, instances, wait),
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
                Err(reply) => return self.reply(conn, *reply),
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
            Err(reply) => return self.reply(conn, *reply),
        };
        if target.rolling {
            if kind != WaitKind::Restart {
                return self.reply(conn, Reply::error(ErrorCode::BadRequest, "rolling is for restart only"));
            }
            return self.rolling_restart(conn, &target.names, services, target.wait);
        }
        let mut targets: Vec<WaitTarget> = Vec::new();
        let add = |targets: &mut Vec<WaitTarget>, service, mark, result| {
            if !targets.iter().any(|t: &WaitTarget| t.service == service) {
                targets.push(WaitTarget { service, kind, mark, result });
            }
        };
        for service in services {
            let mark = self.mark(service);
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
                        let mark = self.mark(dependent);
                        add(&mut targets, dependent, mark, None);
                    }
                    let svc = &self.services[service];
                    if svc.is_down() && !matches!(svc.machine.state(), State::Backoff { .. }) {
                        immediate =
                            Some(status::result(&self.services[service].view(), true, "already stopped"));
                    }
                }
                WaitKind::Restart => self.restart(service, true),
            }
            add(&mut targets, service, mark, immediate);
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
        self.waiters.push(Waiter { conn, targets, scale: None });
    }

    /// Its spawn and stop counts now.
    pub(super) fn mark(&self, service: ServiceId) -> Mark {
        let svc = &self.services[service];
        Mark { spawns: svc.spawns, stops: svc.stops }
    }

    /// Has `service` got where a request of `kind` asked it to go? `None`:
    /// not yet. `mark`: its counts when asked.
    pub(super) fn outcome(&self, service: ServiceId, kind: WaitKind, mark: Mark) -> Option<ServiceResult> {
        let svc = &self.services[service];
        let view = svc.view();
        match kind {
            WaitKind::Start => status::start_outcome(&view, "started", self.now),
            WaitKind::Restart if svc.spawns > mark.spawns || svc.goal.start_pending => {
                status::start_outcome(&view, "restarted", self.now)
            }
            WaitKind::Restart => match svc.machine.state() {
                State::Failed { reason, .. } => {
                    Some(status::result(&view, false, format!("failed: {}", reason.describe())))
                }
                // Down and not started again: the shutdown began.
                _ if self.phase != Phase::Running && svc.is_down() => {
                    Some(status::result(&view, false, "not restarted: shutting down"))
                }
                _ => None,
            },
            // Stopped, and started again since (a later request).
            WaitKind::Stop if svc.stops > mark.stops && !svc.is_down() => {
                Some(status::result(&view, true, "stopped (started again since)"))
            }
            WaitKind::Stop => status::stop_outcome(&view),
        }
    }

    /// Answer every waiter whose services have all got where they were asked to go.
    pub(super) fn answer_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let held: Vec<ServiceId> = self
            .waiters
            .iter()
            .flat_map(|w| w.targets.iter().filter(|t| t.result.is_none()).map(|t| t.service))
            .filter(|&s| self.services[s].goal.start_pending)
            .collect();
        for service in held {
            self.describe_waiting(service);
        }
        let mut waiters = std::mem::take(&mut self.waiters);
        for waiter in &mut waiters {
            for target in waiter.targets.iter_mut().filter(|t| t.result.is_none()) {
                target.result = self.outcome(target.service, target.kind, target.mark);
            }
        }
        waiters.retain_mut(|waiter| {
            if !waiter.targets.iter().all(|t| t.result.is_some()) {
                return true;
            }
            let results: Vec<ServiceResult> =
                waiter.targets.iter_mut().filter_map(|t| t.result.take()).collect();
            let reply = match waiter.scale.take() {
                Some(note) => scale_reply(note, results),
                None => Reply::results(results),
            };
            self.out.push(Action::Reply { conn: waiter.conn, reply, done: true });
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
            Err(reply) => return self.reply(conn, *reply),
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
        // What each unit of the folder runs: its services, a pool's
        // instances by its `instances:` (or by the count `tend scale` set,
        // while `instances:` stays as it was).
        let mut entries = std::collections::BTreeMap::new();
        let mut services: Vec<(String, Option<String>, U)> = Vec::new();
        for template in units {
            let name = template.name().to_string();
            let old = self.units.get(&name);
            let kept = old.filter(|old| old.scaled && old.declared() == template.instances());
            let instances = match (template.instances(), kept) {
                (None, _) => None,
                (Some(_), Some(old)) => old.instances.clone(),
                (Some(new), None) => Some(new.names()),
            };
            for (instance, unit) in super::services_of(&template, instances.as_deref()) {
                services.push((name.clone(), instance, unit));
            }
            let scaled = kept.is_some();
            entries.insert(name, super::UnitEntry::new(template, instances, scaled));
        }
        let mut plan = crate::reload::plan(
            self.services.iter().filter(|s| !s.retired).map(|s| &s.unit),
            services.iter().map(|(_, _, unit)| unit),
        );
        let fed_before = self.fed_names();
        // Before anything changes: which units had services wanted up.
        let mut in_use: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
        for svc in self.services.iter().filter(|s| !s.retired) {
            *in_use.entry(svc.unit_name.clone()).or_default() |= svc.goal.wanted;
        }
        for name in &plan.removed {
            if let Some(service) = self.live(name) {
                let svc = &self.services[service];
                // An instance its pool no longer has leaves alone (the
                // pool's dependents do not need it); a unit gone from the
                // folder goes down like at shutdown (its dependents, if any
                // are left, first). Retired once marked: no longer listed.
                let pool_stays = svc.instance.is_some()
                    && entries.get(&svc.unit_name).is_some_and(|e| e.instances.is_some());
                let kind = EventKind::Reload { change: ReloadChange::Removed };
                self.emit(service, kind, "removed by a reload".to_string());
                if pool_stays {
                    self.want_down_alone(service);
                } else {
                    self.want_down(service);
                }
                self.services[service].retired = true;
            }
        }
        let old_units = std::mem::replace(&mut self.units, entries);
        for svc in self.services.iter_mut() {
            if let Some(entry) = self.units.get(&svc.unit_name) {
                svc.enabled = entry.enabled;
            }
        }
        // New units and new definitions (their dependencies may change): the
        // graph as the folder has it now, before anything starts by it.
        let mut changed = Vec::new();
        let mut added = Vec::new();
        for (unit_name, instance, unit) in services {
            let name = unit.name().to_string();
            if plan.changed.contains(&name) {
                if let Some(service) = self.live(&name) {
                    self.redefine(service, unit);
                    let kind = EventKind::Reload { change: ReloadChange::Changed };
                    self.emit(service, kind, "changed by a reload".to_string());
                    changed.push(service);
                }
            } else if plan.added.contains(&name) {
                let enabled = self.units.get(&unit_name).is_none_or(|e| e.enabled);
                let service = self.add_or_revive(unit, unit_name, instance, enabled);
                let kind = EventKind::Reload { change: ReloadChange::Added };
                self.emit(service, kind, "added by a reload".to_string());
                added.push(service);
            }
        }
        self.rebuild_graph();
        // A unit whose stdin became a pipe, or stopped being one (another
        // unit's `to:` changed), restarts to get its new stdin, though its
        // own file did not change.
        let fed_after = self.fed_names();
        let refed: Vec<String> = plan
            .unchanged
            .iter()
            .filter(|name| fed_before.contains(*name) != fed_after.contains(*name))
            .cloned()
            .collect();
        for name in refed {
            if let Some(service) = self.live(&name) {
                plan.unchanged.retain(|n| *n != name);
                plan.changed.push(name);
                changed.push(service);
            }
        }
        crate::sort::sort(&mut plan.changed);
        for service in changed {
            if self.services[service].goal.wanted {
                self.restart(service, false);
            }
        }
        // A new service starts when `tend up` would have started it (its
        // unit is enabled, and `up` named no services), except a new
        // instance of a pool nobody wants up (stopped on purpose).
        let mut loaded = Vec::new();
        let mut started = Vec::new();
        for service in added {
            let svc = &self.services[service];
            let start = self.selection.is_none()
                && svc.enabled
                && match (old_units.contains_key(&svc.unit_name), in_use.get(&svc.unit_name)) {
                    (true, Some(&wanted)) => wanted,
                    _ => true,
                };
            if start {
                started.push(svc.spec.name.clone());
                self.want_up_alone(service);
            } else {
                loaded.push(svc.spec.name.clone());
                // Stopped as `tend up` would have left it.
                self.services[service].selected = self.selection.is_none();
            }
        }
        crate::sort::sort(&mut started);
        crate::sort::sort(&mut loaded);
        let report = ReloadReport {
            started,
            loaded,
            stopped: plan.removed,
            restarted: plan.changed,
            unchanged: plan.unchanged,
            warnings,
        };
        let list = |names: &[String]| if names.is_empty() { "none".to_string() } else { names.join(", ") };
        let not_started = if report.loaded.is_empty() {
            String::new()
        } else {
            format!("; loaded, not started: {}", report.loaded.join(", "))
        };
        let text = format!(
            "reloaded: started {}; stopped {}; restarted {}; {} unchanged{not_started}",
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
