//! What acts on a pool as a whole: `tend scale` (new instances start,
//! surplus ones stop from the highest, the others are not touched) and
//! `tend restart --rolling` (one service at a time, each up again, ready
//! for one with a readiness signal, before the next; it stops at the first
//! that fails, so a pool behind a load balancer never loses more than one
//! worker to it).

use super::requests::{scale_reply, Mark, ScaleNote, WaitKind, WaitTarget, Waiter};
use super::{Action, ConnId, Core, Phase, ServiceId};
use crate::pool::{self, Instances, MAX_INSTANCES};
use crate::proto::{ErrorBody, ErrorCode, ErrorReply, EventKind, False, Reply, ServiceResult};
use crate::service::State;
use crate::spec::Definition;
use crate::status;
use crate::Level;

/// A rolling restart under way.
pub(super) struct Rolling {
    /// Who waits for the answer (`None`: it asked not to wait, or went away).
    pub(super) conn: Option<ConnId>,
    /// What was asked, for messages (`worker`).
    label: String,
    /// Still to restart, in order.
    queue: std::collections::VecDeque<ServiceId>,
    /// Being restarted now, with its counts when its restart began.
    current: Option<(ServiceId, Mark)>,
    /// Each service done so far, in order.
    results: Vec<ServiceResult>,
}

impl Rolling {
    fn involves(&self, service: ServiceId) -> bool {
        self.queue.contains(&service) || self.current.is_some_and(|(s, _)| s == service)
    }
}

impl<U: Definition> Core<U> {
    /// `tend scale NAME N`.
    pub(super) fn scale(&mut self, conn: ConnId, name: &str, target: u32, wait: bool) {
        if self.phase != Phase::Running {
            return self
                .reply(conn, Reply::error(ErrorCode::ShuttingDown, "the supervisor is shutting down"));
        }
        let refuse = |code, message: String| Reply::error(code, message);
        let Some(entry) = self.units.get(name) else {
            let reply = match self.live(name) {
                Some(_) => refuse(
                    ErrorCode::BadRequest,
                    format!("'{name}' is one instance: scale its pool, `tend scale {}`", pool::split(name).0),
                ),
                None => refuse(ErrorCode::UnknownService, self.unknown(name)),
            };
            return self.reply(conn, reply);
        };
        let (Some(current), Some(template)) = (entry.instances.clone(), entry.template.as_ref()) else {
            let message =
                format!("'{name}' has no instances: give its unit `instances:` to run it as a pool");
            return self.reply(conn, refuse(ErrorCode::BadRequest, message));
        };
        if let Some(Instances::Names(names)) = template.instances() {
            let message = format!(
                "'{name}' has named instances ({}): change `instances:` in its unit and reload",
                names.join(", ")
            );
            return self.reply(conn, refuse(ErrorCode::BadRequest, message));
        }
        if target > MAX_INSTANCES {
            let message = format!("{target} instances: at most {MAX_INSTANCES}");
            return self.reply(conn, refuse(ErrorCode::BadRequest, message));
        }
        let diff = pool::scale(&current, target);
        // An instance another service names (`depends_on: {worker@8: …}`,
        // or `stdout: {to: worker@8}`, a dependency too) cannot go: that
        // service would wait for it forever.
        for instance in &diff.remove {
            let full = pool::full_name(name, instance);
            let needed_by = self.services.iter().find(|s| {
                !s.retired && s.unit_name != name && s.spec.depends_on.iter().any(|d| d.name == full)
            });
            if let Some(dependent) = needed_by {
                let how = if dependent.spec.pipes_into().any(|to| to == full) {
                    "pipes into"
                } else {
                    "depends on"
                };
                let message = format!(
                    "{} {how} {full}: scale to {instance} or more, or change {} first",
                    dependent.spec.name, dependent.spec.name
                );
                return self.reply(conn, refuse(ErrorCode::BadRequest, message));
            }
        }
        let from = current.len() as u32;
        let enabled = entry.enabled;
        let added: Vec<(String, U)> =
            diff.add.iter().map(|instance| (instance.clone(), template.service(Some(instance)))).collect();
        let mut targets = Vec::new();
        for instance in &diff.remove {
            if let Some(service) = self.live(&pool::full_name(name, instance)) {
                // Its pool stays: its dependents do not need it. Stopped now,
                // from the highest.
                self.want_down_alone(service);
                self.services[service].retired = true;
                self.stop_alone(service);
                let mark = self.mark(service);
                targets.push(WaitTarget { service, kind: WaitKind::Stop, mark, result: None });
            }
        }
        let mut started = Vec::new();
        for (instance, unit) in added {
            started.push(self.add_or_revive(unit, name.to_string(), Some(instance), enabled));
        }
        let mut instances: Vec<String> = current
            .into_iter()
            .filter(|i| !diff.remove.contains(i))
            .chain(diff.add.iter().cloned())
            .collect();
        crate::sort::sort_by_key(&mut instances, |i| (i.parse::<u64>().ok(), i.clone()));
        if let Some(entry) = self.units.get_mut(name) {
            entry.instances = Some(instances);
            entry.scaled = true;
        }
        self.rebuild_graph();
        for service in started {
            let mark = self.mark(service);
            // Asked by hand, like `tend start`: what it depends on comes up too.
            self.want_up(service);
            targets.push(WaitTarget { service, kind: WaitKind::Start, mark, result: None });
        }
        if from != target {
            let text = format!("scaled from {from} to {target} instances");
            let touched: Vec<ServiceId> = (0..self.services.len())
                .filter(|&s| self.services[s].unit_name == name && self.services[s].instance.is_some())
                .filter(|&s| !self.services[s].retired || targets.iter().any(|t| t.service == s))
                .collect();
            for service in touched {
                self.emit(service, EventKind::Scale { instances: target }, text.clone());
            }
            self.log(Level::Info, format!("{name}: {text}"));
        }
        while self.reconcile() {}
        let note = ScaleNote { unit: name.to_string(), from, to: target };
        if !wait {
            let results = targets
                .iter()
                .map(|t| {
                    let verb = if t.kind == WaitKind::Stop { "stop requested" } else { "start requested" };
                    status::result(&self.services[t.service].view(), true, verb)
                })
                .collect();
            return self.reply(conn, scale_reply(note, results));
        }
        self.waiters.push(Waiter { conn, targets, scale: Some(note) });
    }

    /// `tend restart --rolling NAMES`: `services` one at a time.
    pub(super) fn rolling_restart(
        &mut self,
        conn: ConnId,
        names: &[String],
        services: Vec<ServiceId>,
        wait: bool,
    ) {
        if let Some(busy) = services.iter().find(|&&s| self.rollings.iter().any(|r| r.involves(s))) {
            let message = format!("a rolling restart of {} is under way", self.services[*busy].spec.name);
            return self.reply(conn, Reply::error(ErrorCode::Failed, message));
        }
        // Those not up first: restarting them takes nothing down.
        let (down, up): (Vec<ServiceId>, Vec<ServiceId>) = services
            .into_iter()
            .partition(|&s| !matches!(self.services[s].machine.state(), State::Running { .. }));
        let queue: std::collections::VecDeque<ServiceId> = down.into_iter().chain(up).collect();
        let label = names.join(", ");
        self.log(
            Level::Info,
            format!(
                "rolling restart of {label}: {} service{}, one at a time",
                queue.len(),
                plural(queue.len())
            ),
        );
        if !wait {
            let results = queue
                .iter()
                .map(|&s| status::result(&self.services[s].view(), true, "rolling restart requested"))
                .collect();
            self.reply(conn, Reply::results(results));
        }
        let conn = wait.then_some(conn);
        self.rollings.push(Rolling { conn, label, queue, current: None, results: Vec::new() });
    }

    /// Move every rolling restart on: the next service once the current one
    /// is up again; the answer once all are, or once one failed. True when
    /// it started a restart (the caller settles again).
    pub(super) fn advance_rollings(&mut self) -> bool {
        let mut progress = false;
        let mut rollings = std::mem::take(&mut self.rollings);
        rollings.retain_mut(|rolling| {
            if let Some((service, mark)) = rolling.current {
                let Some(mut result) = self.outcome(service, WaitKind::Restart, mark) else {
                    return true;
                };
                // Up again means running (ready), not run and ended, even
                // with success: only a oneshot is done by ending.
                let machine = &self.services[service].machine;
                let up = machine.is_ready() && (machine.pid().is_some() || machine.config.oneshot);
                if result.ok && !up {
                    result.ok = false;
                    result.message = format!("did not stay up: {}", result.message);
                }
                rolling.current = None;
                let ok = result.ok;
                rolling.results.push(result);
                if !ok {
                    self.rolling_failed(rolling);
                    return false;
                }
            }
            if self.phase != Phase::Running {
                self.rolling_failed(rolling);
                return false;
            }
            // Removed meanwhile (a scale, a reload): nothing to restart.
            let Some(next) =
                std::iter::from_fn(|| rolling.queue.pop_front()).find(|&s| !self.services[s].retired)
            else {
                let n = rolling.results.len();
                let text =
                    format!("rolling restart of {} done: {n} service{} restarted", rolling.label, plural(n));
                self.log(Level::Info, text);
                if let Some(conn) = rolling.conn {
                    let results = std::mem::take(&mut rolling.results);
                    self.out.push(Action::Reply { conn, reply: Reply::results(results), done: true });
                }
                return false;
            };
            rolling.current = Some((next, self.mark(next)));
            self.restart(next, true);
            // Its outcome once the start is settled (the next round).
            progress = true;
            true
        });
        // Rolling restarts begun meanwhile (none can be: requests come one
        // at a time) stay after these.
        rollings.append(&mut self.rollings);
        self.rollings = rollings;
        progress
    }

    /// The service restarted last did not come up (or the shutdown began):
    /// the rest are left as they are, and the answer says so.
    fn rolling_failed(&mut self, rolling: &mut Rolling) {
        let stopped_at =
            rolling.results.last().filter(|r| !r.ok).map(|r| (r.name.clone(), r.message.clone()));
        let why = match &stopped_at {
            Some((name, message)) => format!("stopped at {name} ({message})"),
            None => "stopped: the supervisor is shutting down".to_string(),
        };
        let left: Vec<ServiceId> = rolling.queue.drain(..).filter(|&s| !self.services[s].retired).collect();
        for &service in &left {
            let view = self.services[service].view();
            rolling.results.push(status::result(&view, false, "not restarted: the rolling restart stopped"));
        }
        let names: Vec<&str> = left.iter().map(|&s| self.services[s].spec.name.as_str()).collect();
        let not =
            if names.is_empty() { String::new() } else { format!("; not restarted: {}", names.join(", ")) };
        let message = format!("rolling restart of {} {why}{not}", rolling.label);
        self.log(Level::Warning, message.clone());
        if let Some(conn) = rolling.conn {
            let error = ErrorBody { code: ErrorCode::Failed, message, details: Vec::new() };
            let results = std::mem::take(&mut rolling.results);
            let reply = Reply::Error(ErrorReply { ok: False, error, results: Some(results) });
            self.out.push(Action::Reply { conn, reply, done: true });
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
