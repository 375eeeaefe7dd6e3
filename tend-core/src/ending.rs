//! How a service's run ended, and how that is told: the failure kinds of
//! `tend status --json` (`last_exit.kind`) and the words of `tend status`
//! and of tend's log.
//!
//! Pure data and pure rules, like the rest of the core: the service's
//! machine ([`crate::service::Service`]) records what happened and
//! [`crate::status`] renders what these functions say.

pub use crate::proto::ExitKind;
use crate::text::format_duration;
use crate::{ExitStatus, Time};
use std::time::Duration;

/// Why tend stopped a service that was running: it failed without exiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not ready within `start_timeout` (counted from the fork).
    StartTimeout(Duration),
    /// No `WATCHDOG=1` within `watchdog`.
    Watchdog(Duration),
    /// A oneshot ran past its `timeout`.
    Timeout(Duration),
    /// Its health check failed `failures` times in a row.
    Health { failures: u32 },
    /// It ran `runtime_max` (a planned recycle: not counted toward the
    /// start limit).
    RuntimeMax(Duration),
}

impl Failure {
    /// `start timeout after 5s`, `watchdog timeout (no WATCHDOG=1 within
    /// 30s)`, `timed out after 1s`, `health check failed (3 times)`.
    pub fn describe(&self) -> String {
        match self {
            Failure::StartTimeout(timeout) => format!("start timeout after {}", format_duration(*timeout)),
            Failure::Watchdog(timeout) => {
                format!("watchdog timeout (no WATCHDOG=1 within {})", format_duration(*timeout))
            }
            Failure::Timeout(timeout) => format!("timed out after {}", format_duration(*timeout)),
            Failure::Health { failures: 1 } => "health check failed (once)".to_string(),
            Failure::Health { failures } => format!("health check failed ({failures} times)"),
            Failure::RuntimeMax(limit) => format!("runtime_max reached ({})", format_duration(*limit)),
        }
    }

    pub fn kind(&self) -> ExitKind {
        match self {
            Failure::StartTimeout(_) => ExitKind::StartTimeout,
            Failure::Watchdog(_) => ExitKind::Watchdog,
            Failure::Timeout(_) => ExitKind::Timeout,
            Failure::Health { .. } => ExitKind::Health,
            Failure::RuntimeMax(_) => ExitKind::RuntimeMax,
        }
    }
}

/// A start that never ran the program: the fork, a step between fork and
/// exec, or the exec itself failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// Which step: `exec`, `chdir`, `setuid`, `rlimit`, `sandbox`, `cgroup`,
    /// `fork`, `pipe`, … (snake_case).
    pub step: String,
    /// The error as a name (`not_found`, `permission_denied`), when the
    /// step failed with an errno.
    pub errno: Option<String>,
    /// `cannot execute /usr/bin/nginx: No such file or directory`.
    pub message: String,
}

/// Why the last run ended (kept across states, for status and messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The process ended by itself, or after a stop that was asked.
    Exited(ExitStatus),
    /// It never ran.
    CannotStart(StartFailure),
    /// tend stopped it because it failed; `status` is how the process then
    /// ended (`None` when that is not known).
    Stopped { failure: Failure, status: Option<ExitStatus> },
}

impl Ending {
    /// The exit status of the process, when one ran and was reaped.
    pub fn status(&self) -> Option<ExitStatus> {
        match self {
            Ending::Exited(status) => Some(*status),
            Ending::Stopped { status, .. } => *status,
            Ending::CannotStart(_) => None,
        }
    }

    /// `exited with status 3`, `killed by signal SIGKILL`, the start
    /// failure, or what failed.
    pub fn describe(&self) -> String {
        match self {
            Ending::Exited(status) => status.describe(),
            Ending::CannotStart(failure) => failure.message.clone(),
            Ending::Stopped { failure, .. } => failure.describe(),
        }
    }
}

/// Why a service is `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    StartLimit {
        failures: u32,
        interval: Duration,
    },
    /// It cannot start, under `restart: never`.
    CannotStart(String),
    /// tend stopped it for failing, under `restart: never`.
    Failure(Failure),
}

impl FailReason {
    pub fn describe(&self) -> String {
        match self {
            FailReason::StartLimit { failures, interval } => {
                format!("start limit hit ({failures} failures in {})", format_duration(*interval))
            }
            FailReason::CannotStart(reason) => reason.clone(),
            FailReason::Failure(failure) => failure.describe(),
        }
    }
}

/// Everything `last_exit` says, decided here rather than in the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitReport {
    pub kind: ExitKind,
    /// How the last process ended, when one ran.
    pub status: Option<ExitStatus>,
    /// The failed step, for `exec_failed`.
    pub start_failure: Option<StartFailure>,
    /// In words: `exited with status 3`, `start timeout after 5s`, …
    pub message: String,
    /// When it ended.
    pub at: Time,
}

/// The report of a run that ended with `ending` at `at`. `oom_killed`: the
/// loop saw the OOM killer end it; `start_limit`: the service is failed on
/// its start limit (which then is what `kind` says, with the last run's
/// status kept).
pub fn exit_report(
    ending: &Ending,
    at: Time,
    oom_killed: bool,
    start_limit: Option<&FailReason>,
) -> ExitReport {
    let mut kind = match ending {
        Ending::Exited(ExitStatus::Code(_)) => ExitKind::Exited,
        Ending::Exited(ExitStatus::Signaled { .. }) => ExitKind::Killed,
        Ending::CannotStart(_) => ExitKind::ExecFailed,
        Ending::Stopped { failure, .. } => failure.kind(),
    };
    let mut message = ending.describe();
    if oom_killed && kind == ExitKind::Killed {
        kind = ExitKind::Oom;
        message = "killed by the OOM killer".to_string();
    }
    if let Some(reason @ FailReason::StartLimit { .. }) = start_limit {
        kind = ExitKind::StartLimit;
        message = format!("{}; last: {message}", reason.describe());
    }
    let start_failure = match ending {
        Ending::CannotStart(failure) => Some(failure.clone()),
        Ending::Exited(_) | Ending::Stopped { .. } => None,
    };
    ExitReport { kind, status: ending.status(), start_failure, message, at }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn report(ending: Ending) -> ExitReport {
        exit_report(&ending, ms(7), false, None)
    }

    #[test]
    fn each_ending_has_its_kind_and_words() {
        let r = report(Ending::Exited(ExitStatus::Code(3)));
        assert_eq!((r.kind.as_str(), r.message.as_str()), ("exited", "exited with status 3"));
        assert_eq!(r.status, Some(ExitStatus::Code(3)));
        let r = report(Ending::Exited(ExitStatus::Signaled { signal: 11, core_dumped: true }));
        assert_eq!(
            (r.kind.as_str(), r.message.as_str()),
            ("killed", "killed by signal SIGSEGV (core dumped)")
        );
        let failure = StartFailure {
            step: "exec".into(),
            errno: Some("not_found".into()),
            message: "cannot execute /x: No such file or directory".into(),
        };
        let r = report(Ending::CannotStart(failure.clone()));
        assert_eq!(r.kind, ExitKind::ExecFailed);
        assert_eq!(r.start_failure, Some(failure));
        assert_eq!(r.status, None);
        let stopped = |failure| Ending::Stopped { failure, status: Some(ExitStatus::Code(143)) };
        for (failure, kind, words) in [
            (Failure::StartTimeout(ms(5000)), "start_timeout", "start timeout after 5s"),
            (Failure::Watchdog(ms(500)), "watchdog", "watchdog timeout (no WATCHDOG=1 within 500ms)"),
            (Failure::Timeout(ms(1000)), "timeout", "timed out after 1s"),
            (Failure::Health { failures: 3 }, "health", "health check failed (3 times)"),
            (Failure::RuntimeMax(ms(86_400_000)), "runtime_max", "runtime_max reached (24h)"),
        ] {
            let r = report(stopped(failure));
            assert_eq!((r.kind.as_str(), r.message.as_str()), (kind, words));
            assert_eq!(r.status, Some(ExitStatus::Code(143)), "the process's own end is kept");
        }
    }

    #[test]
    fn the_oom_killer_and_the_start_limit_override_the_kind() {
        let killed = Ending::Exited(ExitStatus::Signaled { signal: 9, core_dumped: false });
        let r = exit_report(&killed, ms(1), true, None);
        assert_eq!((r.kind, r.message.as_str()), (ExitKind::Oom, "killed by the OOM killer"));
        // A process that exited with a code was not the OOM killer's.
        let r = exit_report(&Ending::Exited(ExitStatus::Code(1)), ms(1), true, None);
        assert_eq!(r.kind, ExitKind::Exited);
        let limit = FailReason::StartLimit { failures: 6, interval: Duration::from_secs(60) };
        let r = exit_report(&Ending::Exited(ExitStatus::Code(1)), ms(1), false, Some(&limit));
        assert_eq!(r.kind, ExitKind::StartLimit);
        assert_eq!(r.message, "start limit hit (6 failures in 1m); last: exited with status 1");
        assert_eq!(r.status, Some(ExitStatus::Code(1)));
        // Failed for another reason: the run's own kind.
        let never = FailReason::Failure(Failure::Health { failures: 2 });
        let ending = Ending::Stopped { failure: Failure::Health { failures: 2 }, status: None };
        assert_eq!(exit_report(&ending, ms(1), false, Some(&never)).kind, ExitKind::Health);
    }
}
