//! `tend wait`: a request answered once every named service is where it
//! was asked to be (ready, up, stopped, completed), at once when one of
//! them fails on the way (with why), or when its timeout passes. Decided
//! here, from the states `tend status` shows, in the turn they change: no
//! transition can slip between a look at the state and the wait, as it can
//! for a script that polls `tend status`.

use super::{Action, ConnId, Core, Phase, ServiceId};
use crate::proto::{ErrorBody, ErrorCode, ErrorReply, False, Reply, ServiceState, WaitFor};
use crate::service::State;
use crate::spec::Definition;
use crate::status;
use crate::text::format_duration;
use crate::Time;
use std::time::Duration;

/// A `wait` request not answered yet.
pub(super) struct StateWaiter {
    pub(super) conn: ConnId,
    until: WaitFor,
    services: Vec<ServiceId>,
    /// When it gives up, and the timeout asked (for the message).
    deadline: Option<(Time, Duration)>,
    /// Answer only once every service is there or failed.
    settle: bool,
}

impl StateWaiter {
    pub(super) fn deadline(&self) -> Option<Time> {
        self.deadline.map(|(at, _)| at)
    }
}

/// Where a service stands for a wait, with the words for its result.
enum Standing {
    There(String),
    NotYet(String),
    Failed(String),
}

fn word(until: WaitFor) -> &'static str {
    match until {
        WaitFor::Ready => "ready",
        WaitFor::Up => "up",
        WaitFor::Stopped => "stopped",
        WaitFor::Completed => "completed",
    }
}

impl<U: Definition> Core<U> {
    /// A `wait` request: answered in this turn's settling if it already
    /// holds (or fails), else in the turn where it does.
    pub(super) fn wait(
        &mut self,
        conn: ConnId,
        names: &[String],
        until: WaitFor,
        timeout: Option<Duration>,
        settle: bool,
    ) {
        let services = match self.resolve(names, false) {
            Ok(services) => services,
            Err(reply) => return self.out.push(Action::Reply { conn, reply: *reply, done: true }),
        };
        // Without names: every service, but for a wait to be up only those
        // wanted up (not one stopped by hand).
        let services = if names.is_empty() && until != WaitFor::Stopped {
            services.into_iter().filter(|&s| self.services[s].goal.wanted).collect()
        } else {
            services
        };
        let deadline = timeout.map(|t| (self.now.saturating_add(t), t));
        self.state_waiters.push(StateWaiter { conn, until, services, deadline, settle });
    }

    /// Where `service` stands for `until`.
    fn standing(&self, service: ServiceId, until: WaitFor) -> Standing {
        let svc = &self.services[service];
        let view = svc.view();
        let shown = status::state(&view);
        let machine = &svc.machine;
        let pid = machine.pid().map(|p| format!(" (pid {p})")).unwrap_or_default();
        let reason = status::reason(&view, self.now).map(|r| format!(": {r}")).unwrap_or_default();
        let words = format!("{}{pid}{reason}", shown.as_str());
        if svc.retired {
            return Standing::Failed("removed by a reload".into());
        }
        let settled = !view.spawning && view.held.is_none();
        let there = match until {
            WaitFor::Ready => settled && machine.is_ready(),
            WaitFor::Up => {
                settled && (matches!(machine.state(), State::Running { .. }) || machine.is_completed())
            }
            WaitFor::Stopped => matches!(
                shown,
                ServiceState::Stopped | ServiceState::Exited | ServiceState::Completed | ServiceState::Failed
            ),
            WaitFor::Completed => {
                matches!(machine.state(), State::Exited { status, .. } if machine.config.is_success(*status))
            }
        };
        if there {
            return Standing::There(format!("{}{pid}", shown.as_str()));
        }
        if until == WaitFor::Stopped {
            // Everything stops in the end, or someone starts it again: wait.
            return Standing::NotYet(words);
        }
        let failed = match shown {
            ServiceState::Failed | ServiceState::Blocked | ServiceState::Exited | ServiceState::Completed => {
                true
            }
            ServiceState::Stopped | ServiceState::Stopping => !svc.goal.wanted,
            ServiceState::Waiting
            | ServiceState::Starting
            | ServiceState::Running
            | ServiceState::Ready
            | ServiceState::Backoff
            | ServiceState::Unknown => false,
        };
        if failed {
            return Standing::Failed(words);
        }
        if self.phase != Phase::Running {
            return Standing::Failed("the supervisor is shutting down".into());
        }
        Standing::NotYet(words)
    }

    /// Answer every wait that holds, failed, or ran out of time.
    pub(super) fn answer_state_waiters(&mut self) {
        if self.state_waiters.is_empty() {
            return;
        }
        let now = self.now;
        let mut waiters = std::mem::take(&mut self.state_waiters);
        waiters.retain(|waiter| {
            let standings: Vec<(ServiceId, Standing)> =
                waiter.services.iter().map(|&s| (s, self.standing(s, waiter.until))).collect();
            let timed_out = waiter.deadline.filter(|(at, _)| *at <= now).map(|(_, t)| t);
            let failed = standings.iter().find_map(|(s, st)| match st {
                Standing::Failed(why) => Some(format!("{}: {why}", self.services[*s].spec.name)),
                _ => None,
            });
            let all_there = standings.iter().all(|(_, st)| matches!(st, Standing::There(_)));
            let settling = waiter.settle && standings.iter().any(|(_, st)| matches!(st, Standing::NotYet(_)));
            let error = match (all_there, failed, timed_out) {
                (true, _, _) => None,
                (false, Some(_), None) if settling => return true,
                (false, Some(first), _) => Some(format!("{first} (not {})", word(waiter.until))),
                (false, None, Some(timeout)) => {
                    let late: Vec<String> = standings
                        .iter()
                        .filter(|(_, st)| !matches!(st, Standing::There(_)))
                        .map(|(s, _)| self.services[*s].spec.name.clone())
                        .collect();
                    Some(format!(
                        "timed out after {}: not {} yet: {}",
                        format_duration(timeout),
                        word(waiter.until),
                        late.join(", ")
                    ))
                }
                (false, None, None) => return true,
            };
            let results = standings
                .into_iter()
                .map(|(service, standing)| {
                    let view = self.services[service].view();
                    match standing {
                        Standing::There(words) => status::result(&view, true, words),
                        Standing::NotYet(words) => {
                            status::result(&view, false, format!("not {} yet: {words}", word(waiter.until)))
                        }
                        Standing::Failed(words) => status::result(&view, false, words),
                    }
                })
                .collect();
            let reply = match error {
                None => Reply::results(results),
                Some(message) => Reply::Error(ErrorReply {
                    ok: False,
                    error: ErrorBody { code: ErrorCode::Failed, message, details: Vec::new() },
                    results: Some(results),
                }),
            };
            self.out.push(Action::Reply { conn: waiter.conn, reply, done: true });
            false
        });
        self.state_waiters = waiters;
    }
}
