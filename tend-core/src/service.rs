//! The life cycle of one service as a pure state machine.
//!
//! `Service::handle(now, event)` returns the actions the loop must carry out;
//! `Service::deadline()` says when the loop must call back with
//! [`Event::Tick`]. Every `(state, event)` pair is matched explicitly, without
//! a catch-all arm, so that adding a state or an event makes the compiler list
//! every pair that needs a decision (the s6-supervise action table, as types).
//!
//! A service's processes are its leader (the pid tend forked) and, when it has
//! its own process group, everything left in that group. A stop is complete
//! only when both are gone: the loop reports `group_remains` with the leader's
//! exit and [`Event::GroupEmpty`] once the group has no member left.

pub use crate::ending::{Ending, FailReason, Failure, StartFailure};
use crate::proto::ServiceState;
pub use crate::spec::Config;
use crate::spec::RestartPolicy;
use crate::{ExitStatus, Level, Time};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// SIGKILL and SIGCONT in Linux numbering (kept here so that policy needs no libc).
pub const SIGKILL: i32 = 9;
pub const SIGCONT: i32 = 18;

/// After this long running, a crash is no longer "quick": the restart delay
/// goes back to its first value.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

/// What to do once a stop has completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// Stay down (a stop was asked).
    StayDown,
    /// Start again (a restart was asked).
    Start,
    /// The leader ended on its own and we are clearing what it left in its
    /// group; afterwards apply the restart policy to this exit.
    Decide { status: ExitStatus, ran_for: Duration },
    /// We stopped it because it failed (not ready in time, watchdog, oneshot
    /// timeout, health check) after running `ran_for`: a failure like an
    /// exit, through the same restart policy, backoff and start limit.
    Fail { failure: Failure, ran_for: Duration },
}

/// What a running service's deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Not ready within `start_timeout` (counted from the fork).
    StartTimeout,
    /// No `WATCHDOG=1` within `watchdog`.
    Watchdog,
    /// A oneshot ran past its `timeout`.
    OneshotTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Never started, or stopped on request.
    Stopped,
    /// Forked; exec not yet confirmed.
    Starting { pid: i32, since: Time },
    /// Exec confirmed. `since` is when it was forked. `ready` once it said
    /// so (or at once, for a service with no readiness signal); `timer` is
    /// the deadline that applies now, if any.
    Running { pid: i32, since: Time, ready: bool, timer: Option<(Time, Timer)> },
    /// Signalled to stop. `leader` is the pid tend forked (and the process
    /// group id when the service has its own group); `leader_alive` until it
    /// is reaped; `kill_at` is when to send SIGKILL (`None` once it was sent).
    Stopping { leader: i32, leader_alive: bool, kill_at: Option<Time>, killed: bool, then: Then },
    /// Ended and not to be restarted.
    Exited { status: ExitStatus, at: Time },
    /// Waiting for the restart delay.
    Backoff { until: Time },
    /// Hit the start limit, or cannot start and will not retry.
    Failed { reason: FailReason, at: Time },
}

impl State {
    /// The state's name in `tend status`, before the readiness and
    /// completion nuances of [`Service::state_name`].
    pub fn name(&self) -> ServiceState {
        match self {
            State::Stopped => ServiceState::Stopped,
            State::Starting { .. } => ServiceState::Starting,
            State::Running { .. } => ServiceState::Running,
            State::Stopping { .. } => ServiceState::Stopping,
            State::Exited { .. } => ServiceState::Exited,
            State::Backoff { .. } => ServiceState::Backoff,
            State::Failed { .. } => ServiceState::Failed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The service said it is ready (READY=1, a line on notify_fd, or its
    /// ready_check succeeded).
    Ready,
    /// `WATCHDOG=1`.
    WatchdogPing,
    /// Its health check failed `failures` (its `retries`) times in a row.
    HealthFailed { failures: u32 },
    /// EXTEND_TIMEOUT_USEC: push the current deadline to at least now + `by`.
    Extend { by: Duration },
    /// Start asked (at `up`, or by hand). From `failed`, forgets past failures.
    Start,
    /// Stop asked (by hand or at shutdown).
    Stop,
    /// Restart asked: stop if running, then start.
    Restart,
    /// Escalate a stop to SIGKILL at once (second SIGINT/SIGTERM to tend).
    Kill,
    /// The loop forked the leader.
    Spawned { pid: i32 },
    /// The leader's execve succeeded.
    ExecConfirmed,
    /// Fork failed, or a child step failed and the child has been reaped.
    SpawnFailed { failure: StartFailure },
    /// The leader was reaped. `group_remains`: its process group still has members.
    Exited { pid: i32, status: ExitStatus, group_remains: bool },
    /// The process group of a leader that already exited has no member left.
    GroupEmpty,
    /// A deadline may have passed.
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fork and exec the service now; answer with Spawned or SpawnFailed.
    Spawn,
    /// kill(2): to `-pid` when `group`, else to `pid`.
    Signal { pid: i32, signal: i32, group: bool },
    /// Something a person should read.
    Notice(Notice),
    /// The service ended for good (exited or failed, no restart coming):
    /// what a `critical` service hands to tend's exit status.
    Ended { exit_code: i32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Started {
        pid: i32,
    },
    Ready,
    NotReadyInTime {
        timeout: Duration,
    },
    WatchdogExpired {
        timeout: Duration,
    },
    TimedOut {
        timeout: Duration,
    },
    RuntimeMaxReached {
        limit: Duration,
    },
    Unhealthy {
        failures: u32,
    },
    Exited {
        status: ExitStatus,
    },
    /// Stopped for `failure`, and not restarted (`restart: never`).
    Failed {
        failure: Failure,
    },
    CannotStart {
        reason: String,
    },
    Restarting {
        delay: Duration,
        restarts: u32,
    },
    StartLimitHit {
        failures: u32,
        interval: Duration,
    },
    Stopping {
        signal: i32,
    },
    LeftoversAfterExit {
        signal: i32,
    },
    KillAfterTimeout {
        timeout: Duration,
    },
    Stopped {
        status: Option<ExitStatus>,
        killed: bool,
    },
}

impl Notice {
    /// The notice in words, after `NAME: ` in tend's log.
    pub fn describe(&self) -> String {
        use crate::text::{format_duration, signal_name};
        match self {
            Notice::Started { pid } => format!("started (pid {pid})"),
            Notice::Ready => "ready".to_string(),
            Notice::NotReadyInTime { timeout } => {
                format!("did not become ready within {}, stopping it", format_duration(*timeout))
            }
            Notice::WatchdogExpired { timeout } => {
                format!("watchdog timeout: no WATCHDOG=1 within {}, stopping it", format_duration(*timeout))
            }
            Notice::TimedOut { timeout } => {
                format!("timed out after {}, stopping it", format_duration(*timeout))
            }
            Notice::RuntimeMaxReached { limit } => {
                format!("runtime_max reached (ran {}), stopping it", format_duration(*limit))
            }
            Notice::Unhealthy { failures } => {
                format!(
                    "health check failed {failures} time{} in a row, stopping it",
                    if *failures == 1 { "" } else { "s" }
                )
            }
            Notice::Failed { failure } => format!("failed: {}", failure.describe()),
            Notice::Exited { status } => status.describe(),
            Notice::CannotStart { reason } => reason.clone(),
            Notice::Restarting { delay, restarts } => {
                format!("restarting in {} (restart {restarts})", format_duration(*delay))
            }
            Notice::StartLimitHit { failures, interval } => {
                format!("failed: start limit hit ({failures} failures in {})", format_duration(*interval))
            }
            Notice::Stopping { signal } => format!("stopping ({})", signal_name(*signal)),
            Notice::LeftoversAfterExit { signal } => {
                format!("processes left in its group, sending {}", signal_name(*signal))
            }
            Notice::KillAfterTimeout { timeout } => {
                format!("did not stop in {}, sending SIGKILL", format_duration(*timeout))
            }
            Notice::Stopped { killed: true, .. } => "stopped (killed)".to_string(),
            Notice::Stopped { .. } => "stopped".to_string(),
        }
    }

    /// How much it matters (syslog's severity for tend's own log).
    pub fn level(&self) -> Level {
        match self {
            Notice::NotReadyInTime { .. }
            | Notice::WatchdogExpired { .. }
            | Notice::TimedOut { .. }
            | Notice::Unhealthy { .. }
            | Notice::Failed { .. }
            | Notice::CannotStart { .. }
            | Notice::StartLimitHit { .. }
            | Notice::KillAfterTimeout { .. }
            | Notice::Stopped { killed: true, .. }
            | Notice::Exited { status: ExitStatus::Signaled { .. } } => Level::Warning,
            Notice::Started { .. }
            | Notice::RuntimeMaxReached { .. }
            | Notice::Ready
            | Notice::Exited { status: ExitStatus::Code(_) }
            | Notice::Restarting { .. }
            | Notice::Stopping { .. }
            | Notice::LeftoversAfterExit { .. }
            | Notice::Stopped { killed: false, .. } => Level::Info,
        }
    }
}

/// One service's policy state.
#[derive(Debug, Clone)]
pub struct Service {
    /// Shared with the core's [`Spec`](crate::spec::Spec) of the service:
    /// one copy of its rules, not one each.
    pub config: Arc<Config>,
    state: State,
    /// The delay the next quick failure waits.
    next_delay: Duration,
    /// Times of recent failures, for the start limit.
    failures: VecDeque<Time>,
    /// Restarts done by the policy since the last manual start.
    restarts: u32,
    /// Last way a run ended (kept across states for status).
    last_ending: Option<(Ending, Time)>,
    /// The last stop needed SIGKILL.
    was_killed: bool,
    /// When the current process was forked.
    started_at: Option<Time>,
    /// Runs that ended in failure since tend started (never reset).
    failures_total: u64,
}

impl Service {
    pub fn new(config: impl Into<Arc<Config>>) -> Service {
        let config = config.into();
        let next_delay = config.restart_delay;
        Service {
            config,
            state: State::Stopped,
            next_delay,
            failures: VecDeque::new(),
            restarts: 0,
            last_ending: None,
            was_killed: false,
            started_at: None,
            failures_total: 0,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// A reload changed the unit: its rules from now on. The next restart
    /// delay is brought within the new bounds.
    pub fn reconfigure(&mut self, config: impl Into<Arc<Config>>) {
        let config = config.into();
        let max = config.restart_delay_max.max(config.restart_delay);
        self.next_delay = self.next_delay.clamp(config.restart_delay, max);
        self.config = config;
    }

    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    pub fn last_ending(&self) -> Option<&(Ending, Time)> {
        self.last_ending.as_ref()
    }

    /// Since when its process has been up (forked), while one lives: the
    /// UPTIME of `tend status`, whatever the state is called.
    pub fn up_since(&self) -> Option<Time> {
        self.pid().and(self.started_at)
    }

    /// Runs that ended in failure since tend started: an exit the policy
    /// counts as failed, a stop for failing, a start that never ran.
    pub fn failures_total(&self) -> u64 {
        self.failures_total
    }

    /// True when its last stop had to use SIGKILL.
    pub fn was_killed(&self) -> bool {
        self.was_killed
    }

    /// The state as `tend status` names it: a started service not yet ready
    /// is `starting`; one that signalled readiness is `ready`; one with no
    /// readiness signal is `running`; a oneshot that succeeded is `completed`.
    pub fn state_name(&self) -> ServiceState {
        match &self.state {
            State::Running { ready: false, .. } if !self.config.oneshot => ServiceState::Starting,
            State::Running { ready: true, .. } if self.config.needs_ready_signal => ServiceState::Ready,
            State::Exited { status, .. } if self.config.oneshot && self.config.is_success(*status) => {
                ServiceState::Completed
            }
            other => other.name(),
        }
    }

    /// Ready, as a dependency with condition `ready` needs it.
    pub fn is_ready(&self) -> bool {
        match &self.state {
            State::Running { ready, .. } => *ready,
            State::Exited { status, .. } => self.config.oneshot && self.config.is_success(*status),
            _ => false,
        }
    }

    /// A oneshot that ran to success.
    pub fn is_completed(&self) -> bool {
        matches!(&self.state, State::Exited { status, .. } if self.config.oneshot && self.config.is_success(*status))
    }

    /// The leader's pid while one lives.
    pub fn pid(&self) -> Option<i32> {
        match self.state {
            State::Starting { pid, .. } | State::Running { pid, .. } => Some(pid),
            State::Stopping { leader, leader_alive, .. } => leader_alive.then_some(leader),
            State::Stopped | State::Exited { .. } | State::Backoff { .. } | State::Failed { .. } => None,
        }
    }

    /// No process of this service is alive. In `Backoff` a restart is still
    /// coming; the loop suppresses it once a shutdown has begun, so "every
    /// service is down" is the right test for "tend may exit" then.
    pub fn is_down(&self) -> bool {
        match self.state {
            State::Stopped | State::Exited { .. } | State::Failed { .. } | State::Backoff { .. } => true,
            State::Starting { .. } | State::Running { .. } | State::Stopping { .. } => false,
        }
    }

    /// When the loop must deliver [`Event::Tick`] next.
    pub fn deadline(&self) -> Option<Time> {
        match self.state {
            State::Backoff { until, .. } => Some(until),
            State::Stopping { kill_at, .. } => kill_at,
            State::Running { timer, since, .. } => {
                let runtime = self.runtime_deadline(since);
                match (timer.map(|(at, _)| at), runtime) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::Stopped | State::Starting { .. } | State::Exited { .. } | State::Failed { .. } => None,
        }
    }

    /// When a process forked at `since` reaches `runtime_max`, if it has one.
    fn runtime_deadline(&self, since: Time) -> Option<Time> {
        self.config.runtime_max.map(|limit| since.saturating_add(limit))
    }

    /// `runtime_max` is due at `now`, and comes before the running
    /// deadline (start timeout, watchdog), if that is due too.
    fn runtime_due(&self, now: Time, since: Time, timer: Option<(Time, Timer)>) -> bool {
        match self.runtime_deadline(since) {
            Some(at) => at <= now && timer.is_none_or(|(other, _)| at <= other),
            None => false,
        }
    }

    pub fn handle(&mut self, now: Time, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        let state = std::mem::replace(&mut self.state, State::Stopped);
        self.state = self.transition(now, state, event, &mut actions);
        actions
    }

    fn transition(&mut self, now: Time, state: State, event: Event, out: &mut Vec<Action>) -> State {
        use Event as E;
        use State as S;
        match (state, event) {
            // ---- start / restart from a state with no process ----
            (S::Stopped | S::Exited { .. } | S::Failed { .. } | S::Backoff { .. }, E::Start | E::Restart) => {
                self.forget_failures();
                out.push(Action::Spawn);
                S::Stopped
            }
            (s @ (S::Starting { .. } | S::Running { .. }), E::Start) => s,
            (S::Starting { pid, .. } | S::Running { pid, .. }, E::Restart) => {
                self.begin_stop(now, pid, Then::Start, out)
            }
            (S::Stopping { leader, leader_alive, kill_at, killed, then: _ }, E::Start | E::Restart) => {
                // Start again once the stop is complete; a pending policy
                // decision is overridden by the request.
                S::Stopping { leader, leader_alive, kill_at, killed, then: Then::Start }
            }

            // ---- stop ----
            (S::Stopped, E::Stop) => S::Stopped,
            (s @ (S::Exited { .. } | S::Failed { .. }), E::Stop) => s,
            (S::Backoff { .. }, E::Stop) => {
                out.push(Action::Notice(Notice::Stopped { status: None, killed: false }));
                S::Stopped
            }
            (S::Starting { pid, .. } | S::Running { pid, .. }, E::Stop) => {
                self.begin_stop(now, pid, Then::StayDown, out)
            }
            (S::Stopping { leader, leader_alive, kill_at, killed, then: _ }, E::Stop) => {
                S::Stopping { leader, leader_alive, kill_at, killed, then: Then::StayDown }
            }

            // ---- kill at once (second SIGINT/SIGTERM to tend) ----
            (S::Starting { pid, .. } | S::Running { pid, .. }, E::Kill) => {
                self.kill_now(pid, out);
                S::Stopping {
                    leader: pid,
                    leader_alive: true,
                    kill_at: None,
                    killed: true,
                    then: Then::StayDown,
                }
            }
            (S::Stopping { leader, leader_alive, kill_at, killed, then }, E::Kill) => {
                if kill_at.is_some() || !killed {
                    self.kill_now(leader, out);
                }
                let then = match then {
                    Then::Start | Then::StayDown => Then::StayDown,
                    decide @ (Then::Decide { .. } | Then::Fail { .. }) => decide,
                };
                S::Stopping { leader, leader_alive, kill_at: None, killed: true, then }
            }
            (S::Backoff { .. }, E::Kill) => S::Stopped,
            (s @ (S::Stopped | S::Exited { .. } | S::Failed { .. }), E::Kill) => s,

            // ---- spawn results ----
            (S::Stopped, E::Spawned { pid }) => {
                self.started_at = Some(now);
                S::Starting { pid, since: now }
            }
            (S::Stopped | S::Starting { .. }, E::SpawnFailed { failure }) => {
                self.after_spawn_failure(now, failure, out)
            }
            (S::Starting { pid, since }, E::ExecConfirmed) => {
                out.push(Action::Notice(Notice::Started { pid }));
                self.running(now, pid, since, false, out)
            }
            (S::Starting { pid, since }, E::Ready) => {
                // The readiness message was handled before the exec
                // confirmation in the same turn: it did exec.
                out.push(Action::Notice(Notice::Started { pid }));
                self.running(now, pid, since, true, out)
            }
            (S::Running { pid, since, ready: false, .. }, E::Ready) if !self.config.oneshot => {
                self.running(now, pid, since, true, out)
            }
            (S::Running { pid, since, ready: true, timer: Some((_, Timer::Watchdog)) }, E::WatchdogPing) => {
                let at = now.saturating_add(self.config.watchdog.unwrap_or_default());
                S::Running { pid, since, ready: true, timer: Some((at, Timer::Watchdog)) }
            }
            (S::Running { pid, since, ready, timer: Some((at, timer)) }, E::Extend { by }) => {
                S::Running { pid, since, ready, timer: Some((at.max(now.saturating_add(by)), timer)) }
            }
            (S::Stopping { leader, leader_alive, kill_at: Some(at), killed, then }, E::Extend { by }) => {
                S::Stopping {
                    leader,
                    leader_alive,
                    kill_at: Some(at.max(now.saturating_add(by))),
                    killed,
                    then,
                }
            }
            (
                s @ (S::Stopped
                | S::Starting { .. }
                | S::Running { timer: None, .. }
                | S::Stopping { kill_at: None, .. }
                | S::Exited { .. }
                | S::Failed { .. }
                | S::Backoff { .. }),
                E::Extend { .. },
            ) => s,
            (S::Running { pid, since, .. }, E::HealthFailed { failures }) => {
                // A failure like an exit: stopped, then the restart policy.
                out.push(Action::Notice(Notice::Unhealthy { failures }));
                let failure = Failure::Health { failures };
                self.begin_stop(now, pid, Then::Fail { failure, ran_for: now.saturating_sub(since) }, out)
            }
            (S::Stopping { killed, then, leader_alive: true, .. }, E::SpawnFailed { failure }) => {
                // The child failed before exec while we were stopping it.
                self.last_ending = Some((Ending::CannotStart(failure), now));
                self.finish_stop(now, None, killed, then, out)
            }

            // ---- the leader exits ----
            (S::Starting { pid, since }, E::Exited { pid: exited, status, group_remains })
                if pid == exited =>
            {
                // Reaped before the exec confirmation was read: it did exec (a
                // failed child step arrives as SpawnFailed instead), so it ran.
                out.push(Action::Notice(Notice::Started { pid }));
                self.leader_exited(now, pid, since, status, group_remains, out)
            }
            (S::Running { pid, since, .. }, E::Exited { pid: exited, status, group_remains })
                if pid == exited =>
            {
                self.leader_exited(now, pid, since, status, group_remains, out)
            }
            (
                S::Stopping { leader, leader_alive: true, kill_at, killed, then },
                E::Exited { pid: exited, status, group_remains },
            ) if leader == exited => {
                match &then {
                    // Recorded and told when the leader exited by itself.
                    Then::Decide { .. } => {}
                    Then::Fail { failure, .. } => {
                        let failure = failure.clone();
                        self.last_ending = Some((Ending::Stopped { failure, status: Some(status) }, now));
                        out.push(Action::Notice(Notice::Exited { status }));
                    }
                    Then::StayDown | Then::Start => {
                        self.last_ending = Some((Ending::Exited(status), now));
                        out.push(Action::Notice(Notice::Exited { status }));
                    }
                }
                if group_remains && self.config.process_group {
                    S::Stopping { leader, leader_alive: false, kill_at, killed, then }
                } else {
                    self.finish_stop(now, Some(status), killed, then, out)
                }
            }
            (S::Stopping { leader_alive: false, killed, then, .. }, E::GroupEmpty) => {
                let status = self.last_ending.as_ref().and_then(|(ending, _)| ending.status());
                self.finish_stop(now, status, killed, then, out)
            }

            // ---- deadlines ----
            (S::Backoff { until }, E::Tick) => {
                if now >= until {
                    out.push(Action::Spawn);
                    S::Stopped
                } else {
                    S::Backoff { until }
                }
            }
            (S::Stopping { leader, leader_alive, kill_at: Some(at), killed, then }, E::Tick) => {
                if now >= at {
                    out.push(Action::Notice(Notice::KillAfterTimeout { timeout: self.config.stop_timeout }));
                    self.kill_now(leader, out);
                    S::Stopping { leader, leader_alive, kill_at: None, killed: true, then }
                } else {
                    S::Stopping { leader, leader_alive, kill_at: Some(at), killed, then }
                }
            }

            (S::Running { pid, since, timer, .. }, E::Tick) if self.runtime_due(now, since, timer) => {
                // Planned, not a crash: stopped gracefully, and the restart
                // policy decides (see `fail`).
                let limit = self.config.runtime_max.unwrap_or_default();
                out.push(Action::Notice(Notice::RuntimeMaxReached { limit }));
                let failure = Failure::RuntimeMax(limit);
                self.begin_stop(now, pid, Then::Fail { failure, ran_for: now.saturating_sub(since) }, out)
            }
            (S::Running { pid, since, ready, timer: Some((at, timer)) }, E::Tick) => {
                if now < at {
                    return S::Running { pid, since, ready, timer: Some((at, timer)) };
                }
                let (notice, failure) = match timer {
                    Timer::StartTimeout => {
                        let timeout = self.config.start_timeout.unwrap_or_default();
                        (Notice::NotReadyInTime { timeout }, Failure::StartTimeout(timeout))
                    }
                    Timer::Watchdog => {
                        let timeout = self.config.watchdog.unwrap_or_default();
                        (Notice::WatchdogExpired { timeout }, Failure::Watchdog(timeout))
                    }
                    Timer::OneshotTimeout => {
                        let timeout = self.config.oneshot_timeout.unwrap_or_default();
                        (Notice::TimedOut { timeout }, Failure::Timeout(timeout))
                    }
                };
                out.push(Action::Notice(notice));
                self.begin_stop(now, pid, Then::Fail { failure, ran_for: now.saturating_sub(since) }, out)
            }

            // ---- everything else changes nothing ----
            // Spelled out per state, so that a new state or event is a compile
            // error here until someone decides what it means.
            (
                s @ S::Stopped,
                E::ExecConfirmed
                | E::Exited { .. }
                | E::GroupEmpty
                | E::Tick
                | E::Ready
                | E::WatchdogPing
                | E::HealthFailed { .. },
            ) => s,
            (
                s @ S::Starting { .. },
                E::Spawned { .. }
                | E::Exited { .. }
                | E::GroupEmpty
                | E::Tick
                | E::WatchdogPing
                | E::HealthFailed { .. },
            ) => s,
            (
                s @ S::Running { .. },
                E::Spawned { .. }
                | E::ExecConfirmed
                | E::SpawnFailed { .. }
                | E::Exited { .. }
                | E::GroupEmpty
                | E::Tick
                | E::Ready
                | E::WatchdogPing,
            ) => s,
            (
                s @ S::Stopping { .. },
                E::Ready
                | E::WatchdogPing
                | E::HealthFailed { .. }
                | E::Spawned { .. }
                | E::ExecConfirmed
                | E::SpawnFailed { .. }
                | E::Exited { .. }
                | E::GroupEmpty
                | E::Tick,
            ) => s,
            (
                s @ (S::Exited { .. } | S::Failed { .. } | S::Backoff { .. }),
                E::Spawned { .. }
                | E::ExecConfirmed
                | E::SpawnFailed { .. }
                | E::Exited { .. }
                | E::GroupEmpty,
            ) => s,
            (s @ (S::Exited { .. } | S::Failed { .. }), E::Tick) => s,
            (
                s @ (S::Exited { .. } | S::Failed { .. } | S::Backoff { .. }),
                E::Ready | E::WatchdogPing | E::HealthFailed { .. },
            ) => s,
        }
    }

    fn signal_action(&self, pid: i32, signal: i32) -> Action {
        Action::Signal { pid, signal, group: self.config.process_group }
    }

    fn kill_now(&mut self, leader: i32, out: &mut Vec<Action>) {
        out.push(self.signal_action(leader, SIGKILL));
    }

    /// Send the stop signal (and SIGCONT, so that a stopped process can act on
    /// it, as systemd does) and arm the SIGKILL deadline.
    fn begin_stop(&mut self, now: Time, pid: i32, then: Then, out: &mut Vec<Action>) -> State {
        let signal = self.config.stop_signal;
        out.push(Action::Notice(Notice::Stopping { signal }));
        out.push(self.signal_action(pid, signal));
        if signal != SIGKILL && signal != SIGCONT {
            out.push(self.signal_action(pid, SIGCONT));
        }
        let killed = signal == SIGKILL;
        let kill_at = if killed { None } else { Some(now.saturating_add(self.config.stop_timeout)) };
        stopping(pid, true, kill_at, killed, then)
    }

    /// The leader ended on its own. Clear what it left in its group first,
    /// then decide on a restart.
    fn leader_exited(
        &mut self,
        now: Time,
        pid: i32,
        since: Time,
        status: ExitStatus,
        group_remains: bool,
        out: &mut Vec<Action>,
    ) -> State {
        self.last_ending = Some((Ending::Exited(status), now));
        out.push(Action::Notice(Notice::Exited { status }));
        let ran_for = now.saturating_sub(since);
        if group_remains && self.config.process_group {
            let signal = self.config.stop_signal;
            out.push(Action::Notice(Notice::LeftoversAfterExit { signal }));
            out.push(self.signal_action(pid, signal));
            if signal != SIGKILL && signal != SIGCONT {
                out.push(self.signal_action(pid, SIGCONT));
            }
            let killed = signal == SIGKILL;
            let kill_at = if killed { None } else { Some(now.saturating_add(self.config.stop_timeout)) };
            return stopping(pid, false, kill_at, killed, Then::Decide { status, ran_for });
        }
        self.decide(now, status, ran_for, out)
    }

    /// A stop (asked, or clearing leftovers) is complete.
    fn finish_stop(
        &mut self,
        now: Time,
        status: Option<ExitStatus>,
        killed: bool,
        then: Then,
        out: &mut Vec<Action>,
    ) -> State {
        self.was_killed = killed;
        match then {
            Then::StayDown => {
                out.push(Action::Notice(Notice::Stopped { status, killed }));
                State::Stopped
            }
            Then::Start => {
                out.push(Action::Notice(Notice::Stopped { status, killed }));
                out.push(Action::Spawn);
                State::Stopped
            }
            Then::Decide { status, ran_for } => self.decide(now, status, ran_for, out),
            Then::Fail { failure, ran_for } => self.after_failure(now, failure, ran_for, out),
        }
    }

    /// Enter `Running`, with the deadline that applies: a oneshot's
    /// `timeout`, else `start_timeout` until ready, else the watchdog.
    fn running(&mut self, now: Time, pid: i32, since: Time, signalled: bool, out: &mut Vec<Action>) -> State {
        let config = &self.config;
        let ready = !config.oneshot && (signalled || !config.needs_ready_signal);
        if signalled && ready {
            out.push(Action::Notice(Notice::Ready));
        }
        let timer = if config.oneshot {
            config.oneshot_timeout.map(|t| (since.saturating_add(t), Timer::OneshotTimeout))
        } else if !ready {
            config.start_timeout.map(|t| (since.saturating_add(t), Timer::StartTimeout))
        } else {
            config.watchdog.map(|t| (now.saturating_add(t), Timer::Watchdog))
        };
        State::Running { pid, since, ready, timer }
    }

    /// We stopped it for failing (not ready in time, watchdog, timeout,
    /// health check).
    fn after_failure(
        &mut self,
        now: Time,
        failure: Failure,
        ran_for: Duration,
        out: &mut Vec<Action>,
    ) -> State {
        self.failures_total += 1;
        let recorded =
            matches!(&self.last_ending, Some((Ending::Stopped { failure: f, .. }, _)) if *f == failure);
        if !recorded {
            let status = None;
            self.last_ending = Some((Ending::Stopped { failure: failure.clone(), status }, now));
        }
        self.fail(now, FailReason::Failure(failure), 1, ran_for, out)
    }

    /// Apply the restart policy to a run that ended with `status` after `ran_for`.
    fn decide(&mut self, now: Time, status: ExitStatus, ran_for: Duration, out: &mut Vec<Action>) -> State {
        let success = self.config.is_success(status);
        if !success {
            self.failures_total += 1;
        }
        let restart = match self.config.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Never => false,
        };
        if ran_for >= BACKOFF_RESET_AFTER {
            self.next_delay = self.config.restart_delay;
        }
        if !restart {
            out.push(Action::Ended { exit_code: status.handed_over(&self.config.success_exit_codes) });
            return State::Exited { status, at: now };
        }
        if !success {
            if let Some(failed) = self.count_failure(now, out) {
                return failed;
            }
        }
        self.schedule_restart(now, out)
    }

    fn after_spawn_failure(&mut self, now: Time, failure: StartFailure, out: &mut Vec<Action>) -> State {
        self.failures_total += 1;
        let reason = failure.message.clone();
        out.push(Action::Notice(Notice::CannotStart { reason: reason.clone() }));
        self.last_ending = Some((Ending::CannotStart(failure), now));
        self.fail(now, FailReason::CannotStart(reason), 127, Duration::ZERO, out)
    }

    /// A failure without an exit status to judge (cannot start, stopped
    /// for failing) after running `ran_for`: count it and restart with the
    /// backoff, unless `restart: never`, when the service is failed with
    /// `reason` and ends with `exit_code`.
    fn fail(
        &mut self,
        now: Time,
        reason: FailReason,
        exit_code: i32,
        ran_for: Duration,
        out: &mut Vec<Action>,
    ) -> State {
        // `runtime_max` is a planned recycle: never counted toward the start
        // limit, and the restart waits the first delay.
        let planned = matches!(reason, FailReason::Failure(Failure::RuntimeMax(_)));
        if ran_for >= BACKOFF_RESET_AFTER || planned {
            self.next_delay = self.config.restart_delay;
        }
        match self.config.restart {
            RestartPolicy::Always | RestartPolicy::OnFailure if planned => self.schedule_restart(now, out),
            RestartPolicy::Never => {
                if let FailReason::Failure(failure) = &reason {
                    out.push(Action::Notice(Notice::Failed { failure: failure.clone() }));
                }
                out.push(Action::Ended { exit_code });
                State::Failed { reason, at: now }
            }
            RestartPolicy::Always | RestartPolicy::OnFailure => {
                if let Some(failed) = self.count_failure(now, out) {
                    return failed;
                }
                self.schedule_restart(now, out)
            }
        }
    }

    /// Record a failure; `Some(Failed)` when it exceeds the start limit.
    fn count_failure(&mut self, now: Time, out: &mut Vec<Action>) -> Option<State> {
        let interval = self.config.start_limit_interval;
        while let Some(&oldest) = self.failures.front() {
            if now.saturating_sub(oldest) >= interval {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        self.failures.push_back(now);
        let failures = self.failures.len() as u32;
        if failures > self.config.start_limit_burst {
            out.push(Action::Notice(Notice::StartLimitHit { failures, interval }));
            let exit_code = match &self.last_ending {
                Some((Ending::Exited(status), _)) => status.handed_over(&self.config.success_exit_codes),
                Some((Ending::Stopped { .. }, _)) => 1,
                Some((Ending::CannotStart(_), _)) | None => 127,
            };
            out.push(Action::Ended { exit_code });
            return Some(State::Failed { reason: FailReason::StartLimit { failures, interval }, at: now });
        }
        None
    }

    /// Restart after the current delay, and grow the delay for next time.
    fn schedule_restart(&mut self, now: Time, out: &mut Vec<Action>) -> State {
        let delay = self.next_delay;
        self.next_delay =
            delay.saturating_mul(2).min(self.config.restart_delay_max).max(self.config.restart_delay);
        self.restarts += 1;
        out.push(Action::Notice(Notice::Restarting { delay, restarts: self.restarts }));
        if delay.is_zero() {
            out.push(Action::Spawn);
            State::Stopped
        } else {
            State::Backoff { until: now.saturating_add(delay) }
        }
    }

    fn forget_failures(&mut self) {
        self.failures.clear();
        self.next_delay = self.config.restart_delay;
        self.restarts = 0;
    }
}

fn stopping(leader: i32, leader_alive: bool, kill_at: Option<Time>, killed: bool, then: Then) -> State {
    State::Stopping { leader, leader_alive, kill_at, killed, then }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
