//! The status and completion rules: what `tend status` says of a service
//! (its state, why it is there, whether it is healthy, how its last run
//! ended) and when a waiting `start`, `restart` or `stop` is done, and how.
//!
//! Pure functions of a [`View`] of one service, the clock and the wall
//! clock's reading for the reply; the supervisor builds the view.

use crate::checks::CheckRecord;
use crate::ending::exit_report;
use crate::proto::{CheckReport, LastExit, ServiceResult, ServiceState, ServiceStatus};
use crate::service::{Service, State};
use crate::text::{format_duration, signal_name};
use crate::{ExitStatus, Time};
use std::time::{Duration, SystemTime};

/// Why a wanted service is not started yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// `waiting for db: starting, migrate: exited with status 1`.
    pub why: String,
    /// A dependency is down and will not come up by itself.
    pub blocked: bool,
}

/// One service as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub name: &'a str,
    /// An instance of a pool: (its unit's name, its instance name).
    pub pool: Option<(&'a str, &'a str)>,
    /// Its unit's `enabled:`.
    pub enabled: bool,
    /// `tend up` did not start it (`enabled: false`, or not named by `tend
    /// up NAME…`), and nothing wanted it up since: stopped is as it should be.
    pub optional: bool,
    pub machine: &'a Service,
    /// Wanted up, and held back by its dependencies: why.
    pub held: Option<&'a Waiting>,
    /// Its fork was asked for and not yet answered: a process is coming.
    pub spawning: bool,
    /// Its last process was killed by the OOM killer.
    pub oom_killed: bool,
    /// `STATUS=` from sd_notify.
    pub status_text: Option<&'a str>,
    pub last_check: Option<&'a CheckRecord>,
    /// When its state last changed name.
    pub since: Time,
}

/// Wall-clock readings for a reply: the monotonic `now` and the wall clock
/// at the same moment, so that monotonic times can be shown as dates.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: Time,
    pub wall: SystemTime,
}

impl Clock {
    /// The wall-clock time of the monotonic instant `at` (in the past).
    pub fn wall_of(&self, at: Time) -> SystemTime {
        let ago = self.now.saturating_sub(at);
        self.wall.checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The state as status shows it: a service held back by its dependencies is
/// `waiting` (or `blocked`, when one of them is down for good).
pub fn state(view: &View) -> ServiceState {
    match view.held {
        Some(Waiting { blocked: true, .. }) => ServiceState::Blocked,
        Some(Waiting { blocked: false, .. }) => ServiceState::Waiting,
        None if view.spawning => ServiceState::Starting,
        None => view.machine.state_name(),
    }
}

/// Why a service is where it is, when that needs saying.
pub fn reason(view: &View, now: Time) -> Option<String> {
    let machine = view.machine;
    if view.oom_killed && !matches!(machine.state(), State::Running { .. }) {
        let restarting = if matches!(machine.state(), State::Backoff { .. }) { "; restarting" } else { "" };
        return Some(format!("killed by the OOM killer{restarting}"));
    }
    if let Some(waiting) = view.held {
        return Some(waiting.why.clone());
    }
    let last = machine.last_ending().map(|(ending, _)| ending.describe());
    match machine.state() {
        State::Failed { reason, .. } => Some(reason.describe()),
        State::Backoff { until } => {
            let wait = until.saturating_sub(now);
            let wait = Duration::from_millis(wait.as_millis() as u64);
            Some(format!("{}; restarting in {}", last.unwrap_or_default(), format_duration(wait)))
        }
        State::Exited { status, .. } if !machine.config.is_success(*status) => Some(status.describe()),
        State::Stopped
        | State::Starting { .. }
        | State::Running { .. }
        | State::Stopping { .. }
        | State::Exited { .. } => None,
    }
}

/// Running (or ready), a run that ended with success, or stopped as
/// configured (a unit `tend up` does not start): what `tend status` exits
/// 0 for.
pub fn healthy(view: &View) -> bool {
    if view.held.is_some() || view.spawning {
        return false;
    }
    match view.machine.state() {
        State::Running { .. } => true,
        State::Exited { status, .. } => view.machine.config.is_success(*status),
        State::Stopped => view.optional,
        State::Starting { .. } | State::Stopping { .. } | State::Backoff { .. } | State::Failed { .. } => {
            false
        }
    }
}

/// `last_exit`: how its last run ended, by kind, with the details that kind has.
pub fn last_exit(view: &View, clock: Clock) -> Option<LastExit> {
    let failed = match view.machine.state() {
        State::Failed { reason, .. } => Some(reason),
        _ => None,
    };
    let (ending, at) = view.machine.last_ending()?;
    let report = exit_report(ending, *at, view.oom_killed, failed);
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
    Some(LastExit {
        kind: report.kind,
        code,
        signal,
        core_dumped,
        step,
        errno,
        message: report.message,
        time: rfc3339(clock.wall_of(report.at)),
    })
}

/// The `status` object of one service, without what only the loop can
/// measure (`memory_bytes`, `cpu_usec`, `log_errors`).
pub fn service_status(view: &View, clock: Clock) -> ServiceStatus {
    let since_secs = clock.now.saturating_sub(view.since).as_millis() as f64 / 1000.0;
    ServiceStatus {
        name: view.name.to_string(),
        unit: view.pool.map(|(unit, _)| unit.to_string()),
        instance: view.pool.map(|(_, instance)| instance.to_string()),
        enabled: view.enabled,
        state: state(view),
        pid: view.machine.pid(),
        since: rfc3339(clock.wall_of(view.since)),
        since_secs,
        uptime_secs: view
            .machine
            .up_since()
            .map(|since| clock.now.saturating_sub(since).as_millis() as f64 / 1000.0),
        restarts: view.machine.restarts(),
        last_exit: last_exit(view, clock),
        reason: reason(view, clock.now),
        healthy: healthy(view),
        log_errors: Vec::new(),
        status_text: view.status_text.map(str::to_string),
        last_check: view.last_check.map(|check| CheckReport {
            kind: check.kind,
            ok: check.ok,
            message: check.message.clone(),
            time: rfc3339(clock.wall_of(check.at)),
        }),
        memory_bytes: None,
        cpu_usec: None,
    }
}

/// One service's line in a reply to start, stop, restart, signal, reopen-logs.
pub fn result(view: &View, ok: bool, message: impl Into<String>) -> ServiceResult {
    ServiceResult {
        name: view.name.to_string(),
        ok,
        message: message.into(),
        state: state(view),
        pid: view.machine.pid(),
    }
}

/// Has a start (or the start half of a restart) finished, and how?
/// `None`: not yet. `done_word` says what succeeded ("started", "restarted").
pub fn start_outcome(view: &View, done_word: &str, now: Time) -> Option<ServiceResult> {
    if let Some(waiting) = view.held {
        return waiting.blocked.then(|| result(view, false, format!("blocked: {}", waiting.why)));
    }
    if view.spawning {
        return None;
    }
    let machine = view.machine;
    match machine.state() {
        State::Running { pid, ready: true, .. } => {
            let word = if machine.config.needs_ready_signal { "ready" } else { done_word };
            Some(result(view, true, format!("{word} (pid {pid})")))
        }
        // Not ready yet (or a oneshot still running): wait.
        State::Running { .. } => None,
        State::Exited { status, .. } => {
            let ok = machine.config.is_success(*status);
            Some(result(view, ok, format!("ran and {}", status.describe())))
        }
        State::Failed { reason, .. } => Some(result(view, false, format!("failed: {}", reason.describe()))),
        State::Backoff { .. } => {
            let why = reason(view, now).unwrap_or_default();
            Some(result(view, false, format!("did not stay up: {why}")))
        }
        State::Stopped => Some(result(view, false, "not started")),
        State::Starting { .. } | State::Stopping { .. } => None,
    }
}

/// Has a stop finished, and how? Down means no process left and no
/// restart coming.
pub fn stop_outcome(view: &View) -> Option<ServiceResult> {
    let machine = view.machine;
    let down = machine.is_down() && !view.spawning && !matches!(machine.state(), State::Backoff { .. });
    down.then(|| {
        let message = if machine.was_killed() { "stopped (had to be killed)" } else { "stopped" };
        result(view, true, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Config, Event};
    use crate::spec::RestartPolicy;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config() -> Config {
        Config {
            restart: RestartPolicy::Always,
            success_exit_codes: vec![0],
            restart_delay: ms(100),
            restart_delay_max: ms(1_000),
            start_limit_burst: 5,
            start_limit_interval: ms(10_000),
            stop_signal: 15,
            stop_timeout: ms(2_000),
            process_group: true,
            needs_ready_signal: false,
            oneshot: false,
            start_timeout: None,
            watchdog: None,
            oneshot_timeout: None,
            runtime_max: None,
        }
    }

    fn view<'a>(machine: &'a Service, held: Option<&'a Waiting>) -> View<'a> {
        View {
            name: "web",
            pool: None,
            enabled: true,
            optional: false,
            machine,
            held,
            spawning: false,
            oom_killed: false,
            status_text: None,
            last_check: None,
            since: ms(0),
        }
    }

    fn running(config: Config) -> Service {
        let mut machine = Service::new(config);
        machine.handle(ms(0), Event::Start);
        machine.handle(ms(0), Event::Spawned { pid: 42 });
        machine.handle(ms(1), Event::ExecConfirmed);
        machine
    }

    #[test]
    fn a_held_service_is_waiting_or_blocked_and_not_healthy() {
        let machine = Service::new(config());
        let waiting = Waiting { why: "waiting for db: starting".into(), blocked: false };
        let v = view(&machine, Some(&waiting));
        assert_eq!(state(&v), ServiceState::Waiting);
        assert_eq!(reason(&v, ms(0)).as_deref(), Some("waiting for db: starting"));
        assert!(!healthy(&v));
        assert_eq!(start_outcome(&v, "started", ms(0)), None, "a start waits while its dependencies come up");
        let blocked = Waiting { why: "waiting for db: failed".into(), blocked: true };
        let v = view(&machine, Some(&blocked));
        assert_eq!(state(&v), ServiceState::Blocked);
        let outcome = start_outcome(&v, "started", ms(0)).unwrap();
        assert!(!outcome.ok);
        assert_eq!(outcome.message, "blocked: waiting for db: failed");
    }

    #[test]
    fn a_ready_service_is_healthy_and_has_an_uptime() {
        let machine = running(Config { needs_ready_signal: true, ..config() });
        let v = view(&machine, None);
        assert_eq!(state(&v), ServiceState::Starting);
        assert_eq!(start_outcome(&v, "started", ms(2)), None, "not ready yet");
        let mut machine = machine;
        machine.handle(ms(500), Event::Ready);
        let v = view(&machine, None);
        let clock = Clock { now: ms(2_500), wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000) };
        let status = service_status(&v, clock);
        assert_eq!(status.state, ServiceState::Ready);
        assert_eq!(status.uptime_secs, Some(2.5));
        assert!(status.healthy);
        assert_eq!(status.since, "1970-01-01T00:16:37Z", "2.5 s before the wall clock's 1000 s");
        assert_eq!(start_outcome(&v, "started", ms(2_500)).unwrap().message, "ready (pid 42)");
    }

    #[test]
    fn backoff_says_why_and_when() {
        let mut machine = running(config());
        machine
            .handle(ms(1_000), Event::Exited { pid: 42, status: ExitStatus::Code(3), group_remains: false });
        let v = view(&machine, None);
        assert_eq!(state(&v), ServiceState::Backoff);
        assert_eq!(reason(&v, ms(1_040)).as_deref(), Some("exited with status 3; restarting in 60ms"));
        let outcome = start_outcome(&v, "started", ms(1_040)).unwrap();
        assert_eq!(outcome.message, "did not stay up: exited with status 3; restarting in 60ms");
        let last = last_exit(&v, Clock { now: ms(1_040), wall: SystemTime::UNIX_EPOCH + ms(5_000) }).unwrap();
        assert_eq!((last.kind.as_str(), last.code), ("exited", Some(3)));
        assert_eq!(stop_outcome(&v), None, "a restart is coming: not stopped");
    }

    #[test]
    fn the_oom_killer_is_named() {
        let mut machine = running(config());
        let killed = ExitStatus::Signaled { signal: 9, core_dumped: false };
        machine.handle(ms(1_000), Event::Exited { pid: 42, status: killed, group_remains: false });
        let v = View { oom_killed: true, ..view(&machine, None) };
        assert_eq!(reason(&v, ms(1_000)).as_deref(), Some("killed by the OOM killer; restarting"));
        let last = last_exit(&v, Clock { now: ms(1_000), wall: SystemTime::UNIX_EPOCH + ms(5_000) }).unwrap();
        assert_eq!(last.kind.as_str(), "oom");
    }

    #[test]
    fn a_stop_is_done_once_nothing_is_left() {
        let mut machine = running(config());
        machine.handle(ms(10), Event::Stop);
        assert_eq!(stop_outcome(&view(&machine, None)), None, "stopping");
        let term = ExitStatus::Signaled { signal: 15, core_dumped: false };
        machine.handle(ms(20), Event::Exited { pid: 42, status: term, group_remains: true });
        assert_eq!(stop_outcome(&view(&machine, None)), None, "its group is not empty yet");
        machine.handle(ms(30), Event::GroupEmpty);
        assert_eq!(stop_outcome(&view(&machine, None)).unwrap().message, "stopped");
    }
}
