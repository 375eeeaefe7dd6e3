//! The supervisor's events (`tend events`): what each machine notice, state
//! change, check verdict and reload means as a typed event, and the replay
//! of where every service is for a follower that asks `since_start`.
//!
//! Events are collected while an event is handled and sent once it has
//! settled, each with the service's state at that moment: a follower that
//! applies every event's `state` sees exactly what `tend status` would
//! (the simulation checks it after every step). A change of state that no
//! other event tells (waiting, blocked, a fork under way) is a `state`
//! event of its own.

use super::{Action, ConnId, Core, ServiceId};
use crate::ending::{exit_report, Ending, FailReason};
use crate::proto::{EventKind, EventsReply, ExitDetail, ExitKind, Reply, ServiceEvent, True};
use crate::service::{Notice, State};
use crate::spec::Definition;
use crate::status;
use crate::text::signal_name;
use crate::ExitStatus;

/// An event waiting for the end of the turn (its state is filled in then).
pub(super) struct Pending {
    service: ServiceId,
    kind: EventKind,
    message: String,
}

/// How a run ended, as an `exited` event says it.
fn exit_detail(ending: &Ending, oom_killed: bool) -> (ExitDetail, String) {
    let report = exit_report(ending, Default::default(), oom_killed, None);
    let (code, signal, core_dumped) = match report.status {
        Some(ExitStatus::Code(code)) => (Some(code), None, None),
        Some(ExitStatus::Signaled { signal, core_dumped }) => {
            (None, Some(signal_name(signal)), Some(core_dumped))
        }
        None => (None, None, None),
    };
    let (step, errno) = match report.start_failure {
        Some(failure) => (Some(failure.step), failure.errno),
        None => (None, None),
    };
    (ExitDetail { kind: report.kind, code, signal, core_dumped, step, errno }, report.message)
}

impl<U: Definition> Core<U> {
    /// Note an event of `service`; it goes out when the turn has settled.
    pub(super) fn emit(&mut self, service: ServiceId, kind: EventKind, message: String) {
        self.events.push(Pending { service, kind, message });
    }

    /// The event a machine's notice is, if it is one. Notices that only
    /// explain what follows (not ready in time, …) are told by the
    /// `stopping` and `exited` events after them; `failed` comes from the
    /// state (see [`Core::entered_failed`]).
    pub(super) fn notice_event(&mut self, service: ServiceId, notice: &Notice) {
        let kind = match notice {
            Notice::Started { pid } => EventKind::Started { pid: *pid },
            Notice::Ready => EventKind::Ready,
            Notice::Exited { .. } | Notice::CannotStart { .. } => {
                let svc = &self.services[service];
                let Some((ending, _)) = svc.machine.last_ending() else { return };
                let (detail, message) = exit_detail(ending, svc.oom_killed);
                return self.emit(service, EventKind::Exited(detail), message);
            }
            Notice::Restarting { delay, restarts } => {
                self.services[service].restarts_total += 1;
                EventKind::Backoff { delay_secs: delay.as_secs_f64(), restarts: *restarts }
            }
            Notice::Stopping { signal } | Notice::LeftoversAfterExit { signal } => {
                EventKind::Stopping { signal: signal_name(*signal) }
            }
            Notice::KillAfterTimeout { .. } => {
                EventKind::Stopping { signal: signal_name(crate::service::SIGKILL) }
            }
            Notice::Stopped { killed, .. } => EventKind::Stopped { killed: *killed },
            Notice::NotReadyInTime { .. }
            | Notice::WatchdogExpired { .. }
            | Notice::TimedOut { .. }
            | Notice::RuntimeMaxReached { .. }
            | Notice::Unhealthy { .. }
            | Notice::Failed { .. }
            | Notice::StartLimitHit { .. } => return,
        };
        self.emit(service, kind, notice.describe());
    }

    /// After a machine's transition: it is `failed` now and was not before.
    pub(super) fn entered_failed(&mut self, service: ServiceId) {
        let svc = &self.services[service];
        let State::Failed { reason, .. } = svc.machine.state() else { return };
        let kind = match (reason, svc.machine.last_ending()) {
            (FailReason::StartLimit { .. }, _) => ExitKind::StartLimit,
            (_, Some((ending, _))) => exit_detail(ending, svc.oom_killed).0.kind,
            (_, None) => ExitKind::ExecFailed,
        };
        let reason = reason.describe();
        let message = format!("failed: {reason}");
        self.emit(service, EventKind::Failed { reason, kind }, message);
    }

    /// At the end of a turn: every noted event goes out with its service's
    /// state, and a service whose state changed without an event gets a
    /// `state` event.
    pub(super) fn send_events(&mut self, changed: &[ServiceId]) {
        for &service in changed {
            if !self.events.iter().any(|e| e.service == service) {
                self.describe_waiting(service);
                let (kind, message) = self.state_event(service, false);
                self.emit(service, kind, message);
            }
        }
        for Pending { service, kind, message } in std::mem::take(&mut self.events) {
            self.events_sent += 1;
            let svc = &self.services[service];
            let event = ServiceEvent { service: svc.spec.name.clone(), kind, state: svc.shown, message };
            self.out.push(Action::Emit { service, event });
        }
    }

    /// Where `service` is, as a `state` event.
    fn state_event(&self, service: ServiceId, replay: bool) -> (EventKind, String) {
        let svc = &self.services[service];
        let view = svc.view();
        let state = status::state(&view);
        let reason = status::reason(&view, self.now);
        let pid = svc.machine.pid();
        let mut message = state.as_str().to_string();
        if let Some(pid) = pid {
            message.push_str(&format!(" (pid {pid})"));
        }
        if let Some(reason) = &reason {
            message.push_str(&format!(" ({reason})"));
        }
        (EventKind::State { pid, reason, replay }, message)
    }

    /// An `events` request: follow these services (none: all), after a
    /// replay of where each one is when `since_start`.
    pub(super) fn follow(&mut self, conn: ConnId, names: &[String], since_start: bool) {
        let services = match self.resolve(names, false) {
            Ok(services) => services,
            Err(reply) => return self.out.push(Action::Reply { conn, reply: *reply, done: true }),
        };
        let mut replay = Vec::new();
        if since_start {
            for &service in &services {
                self.describe_waiting(service);
                let (kind, message) = self.state_event(service, true);
                let svc = &self.services[service];
                let event = ServiceEvent {
                    service: svc.spec.name.clone(),
                    kind,
                    state: status::state(&svc.view()),
                    message,
                };
                replay.push((service, event));
            }
        }
        let reply = Reply::Events(EventsReply { ok: True, pid: self.pid });
        let services = if names.is_empty() { None } else { Some(services) };
        self.out.push(Action::Follow { conn, reply, services, replay });
    }

    /// Events sent since tend started.
    pub fn events_sent(&self) -> u64 {
        self.events_sent
    }
}
