//! Check scheduling for one service: which check runs (the ready check
//! until the service is ready, then the health check), when the next one is
//! due, when one in flight has run too long, how failures in a row count
//! against `retries`, and what a result means for the service.
//!
//! Pure: the loop runs a check when told ([`CheckStep::Start`]), drops one
//! when told ([`CheckStep::Cancel`]), and reports each result with the run
//! number it was given, so a result that arrives after its run was given up
//! on is recognised and ignored.

use crate::proto::CheckKind;
use crate::spec::CheckTiming;
use crate::text::format_duration;
use crate::Time;

/// What the loop must do about checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckStep {
    /// Run the service's check of this kind now; report its result as run `run`.
    Start { run: u64, kind: CheckKind },
    /// Give up on run `run`: kill its process, close its socket, report nothing.
    Cancel { run: u64 },
}

/// What a result means for the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The ready check passed: the service is ready.
    Ready,
    /// A health check passed: the first since the service became ready, or
    /// the first after a failure (passing again and again says nothing new).
    HealthPassed { message: String },
    /// A health check failed, `failures` of `retries` in a row; at
    /// `retries` the service has failed (and the count starts again).
    HealthFailed { failures: u32, retries: u32, message: String },
}

impl Verdict {
    /// The health check has now failed `retries` times in a row.
    pub fn is_unhealthy(&self) -> bool {
        matches!(self, Verdict::HealthFailed { failures, retries, .. } if failures >= retries)
    }
}

/// The last result, for `tend status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub kind: CheckKind,
    pub ok: bool,
    pub message: String,
    pub at: Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Running {
    run: u64,
    timeout_at: Time,
}

/// One service's checks.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// The check that applies now (`None`: no check).
    kind: Option<CheckKind>,
    running: Option<Running>,
    next_at: Option<Time>,
    /// Failures in a row of the current kind.
    failures: u32,
    /// The last health check of this kind passed (`None`: none yet).
    passing: Option<bool>,
    last: Option<CheckRecord>,
    /// Run numbers handed out so far.
    runs: u64,
}

impl Checks {
    /// The check that should apply now: `kind` with its timing, or none.
    /// A change cancels the run in flight and starts counting afresh: the
    /// first ready check is due at once, the first health check one
    /// interval after the service became ready.
    pub fn set(&mut self, now: Time, wanted: Option<(CheckKind, CheckTiming)>, out: &mut Vec<CheckStep>) {
        let kind = wanted.map(|(kind, _)| kind);
        if kind == self.kind {
            return;
        }
        self.cancel(out);
        self.kind = kind;
        self.failures = 0;
        self.passing = None;
        self.next_at = match wanted {
            None => None,
            Some((CheckKind::Ready, _)) => Some(now),
            Some((CheckKind::Health, timing)) => Some(now.saturating_add(timing.interval)),
        };
    }

    /// Start the check when it is due and none is in flight.
    pub fn start_due(&mut self, now: Time, timing: Option<CheckTiming>, out: &mut Vec<CheckStep>) {
        let (Some(kind), Some(timing)) = (self.kind, timing) else { return };
        if self.running.is_some() || self.next_at.is_none_or(|at| at > now) {
            return;
        }
        self.next_at = None;
        self.runs += 1;
        let run = self.runs;
        self.running = Some(Running { run, timeout_at: now.saturating_add(timing.timeout) });
        out.push(CheckStep::Start { run, kind });
    }

    /// The result of run `run`. Results of runs given up on are ignored.
    pub fn result(
        &mut self,
        now: Time,
        run: u64,
        ok: bool,
        message: String,
        timing: Option<CheckTiming>,
    ) -> Option<Verdict> {
        if self.running.map(|r| r.run) != Some(run) {
            return None;
        }
        self.running = None;
        self.judge(now, ok, message, timing)
    }

    /// A run past its timeout is given up on and counts as a failure.
    pub fn on_tick(
        &mut self,
        now: Time,
        timing: Option<CheckTiming>,
        out: &mut Vec<CheckStep>,
    ) -> Option<Verdict> {
        let running = self.running?;
        if running.timeout_at > now {
            return None;
        }
        self.cancel(out);
        let timeout = timing.map(|t| t.timeout).unwrap_or_default();
        self.judge(now, false, format!("timed out after {}", format_duration(timeout)), timing)
    }

    fn judge(
        &mut self,
        now: Time,
        ok: bool,
        message: String,
        timing: Option<CheckTiming>,
    ) -> Option<Verdict> {
        let (Some(kind), Some(timing)) = (self.kind, timing) else { return None };
        self.last = Some(CheckRecord { kind, ok, message: message.clone(), at: now });
        self.next_at = Some(now.saturating_add(timing.interval));
        let was_passing = self.passing.replace(ok);
        if ok {
            self.failures = 0;
            return match kind {
                CheckKind::Ready => Some(Verdict::Ready),
                CheckKind::Health if was_passing != Some(true) => Some(Verdict::HealthPassed { message }),
                CheckKind::Health => None,
            };
        }
        self.failures += 1;
        match kind {
            // A ready check that fails is tried again; start_timeout (in
            // the service's machine) decides when waiting is over.
            CheckKind::Ready => None,
            CheckKind::Health => {
                let failures = self.failures;
                if failures >= timing.retries {
                    self.failures = 0;
                }
                Some(Verdict::HealthFailed { failures, retries: timing.retries, message })
            }
        }
    }

    fn cancel(&mut self, out: &mut Vec<CheckStep>) {
        if let Some(running) = self.running.take() {
            out.push(CheckStep::Cancel { run: running.run });
        }
    }

    /// When the loop must come back: the running check's timeout, or the next one due.
    pub fn deadline(&self) -> Option<Time> {
        match self.running {
            Some(running) => Some(running.timeout_at),
            None => self.kind.and(self.next_at),
        }
    }

    pub fn last(&self) -> Option<&CheckRecord> {
        self.last.as_ref()
    }

    /// The run in flight, if any.
    pub fn running(&self) -> Option<u64> {
        self.running.map(|r| r.run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn timing(retries: u32) -> CheckTiming {
        CheckTiming { interval: ms(500), timeout: ms(200), retries }
    }

    fn started(checks: &mut Checks, now: Time, timing: CheckTiming) -> u64 {
        let mut out = Vec::new();
        checks.start_due(now, Some(timing), &mut out);
        match out.as_slice() {
            [CheckStep::Start { run, .. }] => *run,
            other => panic!("expected one start at {now:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_ready_check_runs_at_once_and_again_after_each_failure() {
        let t = timing(3);
        let mut checks = Checks::default();
        let mut out = Vec::new();
        checks.set(ms(0), Some((CheckKind::Ready, t)), &mut out);
        assert_eq!(checks.deadline(), Some(ms(0)));
        let run = started(&mut checks, ms(0), t);
        assert_eq!(checks.deadline(), Some(ms(200)), "its timeout");
        assert_eq!(checks.result(ms(10), run, false, "refused".into(), Some(t)), None, "retried, no verdict");
        assert_eq!(checks.deadline(), Some(ms(510)));
        out.clear();
        checks.start_due(ms(509), Some(t), &mut out);
        assert!(out.is_empty(), "not due yet");
        let run = started(&mut checks, ms(510), t);
        assert_eq!(checks.result(ms(520), run, true, "ok".into(), Some(t)), Some(Verdict::Ready));
        assert_eq!(checks.last().map(|l| l.ok), Some(true));
    }

    #[test]
    fn health_failures_count_in_a_row_up_to_retries() {
        let t = timing(3);
        let mut checks = Checks::default();
        checks.set(ms(0), Some((CheckKind::Health, t)), &mut Vec::new());
        assert_eq!(checks.deadline(), Some(ms(500)), "one interval after ready");
        let mut now = ms(500);
        let mut verdicts = Vec::new();
        for ok in [false, false, true, false, false, false] {
            let run = started(&mut checks, now, t);
            verdicts.push(checks.result(now, run, ok, "x".into(), Some(t)));
            now += t.interval;
        }
        let failing = |failures| Some(Verdict::HealthFailed { failures, retries: 3, message: "x".into() });
        let passing = Some(Verdict::HealthPassed { message: "x".into() });
        assert_eq!(verdicts, vec![failing(1), failing(2), passing, failing(1), failing(2), failing(3)]);
        assert!(
            verdicts[5].as_ref().unwrap().is_unhealthy() && !verdicts[4].as_ref().unwrap().is_unhealthy()
        );
        let run = started(&mut checks, now, t);
        let next = checks.result(now, run, false, "x".into(), Some(t));
        assert_eq!(next, failing(1), "counting starts again after the verdict");
    }

    #[test]
    fn a_passing_health_check_is_news_only_the_first_time_and_after_a_failure() {
        let t = timing(3);
        let mut checks = Checks::default();
        checks.set(ms(0), Some((CheckKind::Health, t)), &mut Vec::new());
        let mut now = ms(500);
        let mut verdicts = Vec::new();
        for ok in [true, true, false, true, true] {
            let run = started(&mut checks, now, t);
            verdicts.push(checks.result(now, run, ok, "m".into(), Some(t)));
            now += t.interval;
        }
        let passing = Some(Verdict::HealthPassed { message: "m".into() });
        let failing = Some(Verdict::HealthFailed { failures: 1, retries: 3, message: "m".into() });
        assert_eq!(verdicts, vec![passing.clone(), None, failing, passing, None]);
    }

    #[test]
    fn a_check_past_its_timeout_is_cancelled_and_fails() {
        let t = timing(1);
        let mut checks = Checks::default();
        checks.set(ms(0), Some((CheckKind::Health, t)), &mut Vec::new());
        let run = started(&mut checks, ms(500), t);
        let mut out = Vec::new();
        assert_eq!(checks.on_tick(ms(699), Some(t), &mut out), None);
        let verdict = checks.on_tick(ms(700), Some(t), &mut out);
        assert!(verdict.is_some_and(|v| v.is_unhealthy()));
        assert_eq!(out, vec![CheckStep::Cancel { run }]);
        assert_eq!(checks.last().unwrap().message, "timed out after 200ms");
        assert_eq!(
            checks.result(ms(710), run, true, "late".into(), Some(t)),
            None,
            "a late result is ignored"
        );
        assert_eq!(checks.deadline(), Some(ms(1200)));
    }

    #[test]
    fn changing_the_kind_cancels_and_resets() {
        let t = timing(2);
        let mut checks = Checks::default();
        checks.set(ms(0), Some((CheckKind::Ready, t)), &mut Vec::new());
        let run = started(&mut checks, ms(0), t);
        let mut out = Vec::new();
        checks.set(ms(50), None, &mut out);
        assert_eq!(out, vec![CheckStep::Cancel { run }]);
        assert_eq!(checks.deadline(), None);
        assert_eq!(checks.result(ms(60), run, true, "late".into(), Some(t)), None);
        checks.set(ms(60), Some((CheckKind::Health, t)), &mut out);
        assert_eq!(checks.deadline(), Some(ms(560)));
    }
}
