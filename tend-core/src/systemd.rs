//! What tend tells the service manager that runs it (systemd, over the
//! sd_notify protocol, sd_notify(3)): the pure decisions. When `READY=1` is
//! due, the one-line `STATUS=`, `RELOADING=1` and `STOPPING=1`, and the
//! watchdog period asked for by `WATCHDOG_USEC`.
//!
//! Owns the [`Announcer`] state (was READY sent since the last (re)load, the
//! last STATUS sent). Must not touch sockets, the environment or the clock:
//! the loop (`supervise::systemd`) feeds it the services' states and the
//! time, and sends what it returns.
//!
//! # When READY=1 is due
//!
//! Once every listed service has *settled*: it runs (and said it is ready,
//! when it has a readiness signal), a oneshot completed, or it is down for
//! good (failed, exited under `restart: never`, blocked by a failed
//! dependency). Starting, waiting for dependencies and backoff hold it back,
//! so `After=tend.service` means "after the stack is up". A service that
//! crashes at every start holds READY back until its start limit makes it
//! `failed`; systemd's `TimeoutStartSec=` bounds that wait. A stack with a
//! failed service is still announced ready (as systemd itself goes on with a
//! failed unit), and STATUS says what failed.

use crate::proto::ServiceState;
use std::time::Duration;

/// One line sent to the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Ready,
    /// A reload begins; `MONOTONIC_USEC` is CLOCK_MONOTONIC in microseconds
    /// (systemd needs it with RELOADING=1 to order reload and READY).
    Reloading {
        monotonic_usec: u64,
    },
    Stopping,
    Status(String),
    Watchdog,
}

/// The datagram for `fields`: `KEY=VALUE` lines (sd_notify(3)).
pub fn encode(fields: &[Field]) -> String {
    let mut out = String::new();
    for field in fields {
        match field {
            Field::Ready => out.push_str("READY=1\n"),
            Field::Reloading { monotonic_usec } => {
                out.push_str(&format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\n"))
            }
            Field::Stopping => out.push_str("STOPPING=1\n"),
            // One line: a newline would end the assignment early.
            Field::Status(text) => {
                out.push_str("STATUS=");
                out.push_str(&text.replace('\n', " "));
                out.push('\n');
            }
            Field::Watchdog => out.push_str("WATCHDOG=1\n"),
        }
    }
    out
}

/// Whether a service in this state no longer holds READY back.
pub fn settled(state: ServiceState) -> bool {
    match state {
        ServiceState::Running
        | ServiceState::Ready
        | ServiceState::Completed
        | ServiceState::Exited
        | ServiceState::Failed
        | ServiceState::Blocked
        | ServiceState::Stopped => true,
        ServiceState::Starting
        | ServiceState::Waiting
        | ServiceState::Backoff
        | ServiceState::Stopping
        | ServiceState::Unknown => false,
    }
}

/// The groups STATUS counts, in the order it lists them, and the states
/// each one covers.
const GROUPS: [(&str, &[ServiceState]); 8] = [
    ("running", &[ServiceState::Running, ServiceState::Ready]),
    ("starting", &[ServiceState::Starting, ServiceState::Waiting]),
    ("restarting", &[ServiceState::Backoff]),
    ("completed", &[ServiceState::Completed]),
    ("exited", &[ServiceState::Exited]),
    ("failed", &[ServiceState::Failed, ServiceState::Blocked]),
    ("stopping", &[ServiceState::Stopping]),
    ("stopped", &[ServiceState::Stopped]),
];

/// `5 running, 1 failed`: the non-zero counts, in a fixed order.
pub fn summary(states: &[ServiceState]) -> String {
    if states.is_empty() {
        return "no services".to_string();
    }
    let mut parts = Vec::new();
    for (label, names) in GROUPS {
        let count = states.iter().filter(|s| names.contains(s)).count();
        if count > 0 {
            parts.push(format!("{count} {label}"));
        }
    }
    let known: Vec<&ServiceState> = GROUPS.iter().flat_map(|(_, names)| names.iter()).collect();
    let other = states.iter().filter(|s| !known.contains(s)).count();
    if other > 0 {
        parts.push(format!("{other} other"));
    }
    parts.join(", ")
}

/// The watchdog ping period: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// advises, when the variables are meant for this process (`WATCHDOG_PID`
/// unset or ours). `None` when there is no (usable) watchdog.
pub fn watchdog_period(
    watchdog_usec: Option<&str>,
    watchdog_pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    if let Some(pid) = watchdog_pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    let usec: u64 = watchdog_usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_micros(1)))
}

/// What has been announced so far; each method returns what to send now.
#[derive(Debug, Default)]
pub struct Announcer {
    /// READY=1 was sent since start-up or the last reload.
    ready_sent: bool,
    /// STOPPING=1 was sent: nothing but STATUS follows.
    stopping: bool,
    /// The last STATUS= sent.
    last_status: Option<String>,
}

impl Announcer {
    pub fn new() -> Announcer {
        Announcer::default()
    }

    /// After every turn of the loop, with the state of every listed service:
    /// a new STATUS when the summary changed, READY=1 once all settled.
    /// Nothing while a reload's units are still loading (`reload_in_flight`):
    /// the set that must settle is not known yet.
    pub fn turn(&mut self, states: &[ServiceState], reload_in_flight: bool) -> Vec<Field> {
        let mut fields = Vec::new();
        if reload_in_flight && !self.stopping {
            return fields;
        }
        let text = if self.stopping {
            format!("stopping: {}", summary(states))
        } else if !self.ready_sent && !states.iter().all(|&s| settled(s)) {
            format!("starting: {}", summary(states))
        } else {
            summary(states)
        };
        if self.last_status.as_deref() != Some(&text) {
            fields.push(Field::Status(text.clone()));
            self.last_status = Some(text);
        }
        if !self.stopping && !self.ready_sent && states.iter().all(|&s| settled(s)) {
            self.ready_sent = true;
            fields.push(Field::Ready);
        }
        fields
    }

    /// A reload begins (SIGHUP or `tend reload`): RELOADING=1 now; READY=1
    /// follows from [`turn`](Self::turn) once the new set has settled.
    pub fn reload_begins(&mut self, monotonic_usec: u64) -> Vec<Field> {
        if self.stopping {
            return Vec::new();
        }
        self.ready_sent = false;
        self.last_status = Some("reloading".to_string());
        vec![Field::Reloading { monotonic_usec }, Field::Status("reloading".to_string())]
    }

    /// The shutdown begins: STOPPING=1, once.
    pub fn shutdown_begins(&mut self) -> Vec<Field> {
        if self.stopping {
            return Vec::new();
        }
        self.stopping = true;
        vec![Field::Stopping]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// States by their names in `tend status` (`someday`: one this version does not know).
    fn states(names: &[&str]) -> Vec<ServiceState> {
        names
            .iter()
            .map(|n| serde_json::from_value(serde_json::Value::String(n.to_string())).unwrap())
            .collect()
    }

    #[test]
    fn summary_counts_in_a_fixed_order_and_skips_zeros() {
        assert_eq!(
            summary(&states(&["running", "failed", "ready", "running", "running", "running"])),
            "5 running, 1 failed"
        );
        assert_eq!(summary(&states(&["waiting", "starting", "backoff"])), "2 starting, 1 restarting");
        assert_eq!(summary(&states(&["blocked", "completed", "exited"])), "1 completed, 1 exited, 1 failed");
        assert_eq!(summary(&states(&[])), "no services");
        assert_eq!(summary(&states(&["running", "someday"])), "1 running, 1 other");
    }

    #[test]
    fn ready_waits_until_every_service_settled() {
        let mut a = Announcer::new();
        assert_eq!(
            a.turn(&states(&["running", "starting"]), false),
            vec![Field::Status("starting: 1 running, 1 starting".into())]
        );
        // Nothing changed: nothing to send.
        assert_eq!(a.turn(&states(&["running", "starting"]), false), vec![]);
        assert_eq!(a.turn(&states(&["running", "waiting"]), false), vec![]);
        assert_eq!(
            a.turn(&states(&["running", "ready"]), false),
            vec![Field::Status("2 running".into()), Field::Ready]
        );
        // Once only.
        assert_eq!(a.turn(&states(&["running", "ready"]), false), vec![]);
        assert_eq!(
            a.turn(&states(&["running", "backoff"]), false),
            vec![Field::Status("1 running, 1 restarting".into())]
        );
    }

    #[test]
    fn a_failed_service_settles_and_status_says_so() {
        let mut a = Announcer::new();
        a.turn(&states(&["backoff", "running"]), false);
        assert_eq!(
            a.turn(&states(&["failed", "running"]), false),
            vec![Field::Status("1 running, 1 failed".into()), Field::Ready]
        );
        let mut b = Announcer::new();
        assert_eq!(
            b.turn(&states(&["completed", "blocked", "exited", "stopped"]), false),
            vec![Field::Status("1 completed, 1 exited, 1 failed, 1 stopped".into()), Field::Ready]
        );
    }

    #[test]
    fn an_empty_stack_is_ready_at_once() {
        assert_eq!(
            Announcer::new().turn(&states(&[]), false),
            vec![Field::Status("no services".into()), Field::Ready]
        );
    }

    #[test]
    fn reload_sends_reloading_then_ready_once_settled_again() {
        let mut a = Announcer::new();
        a.turn(&states(&["running"]), false);
        assert_eq!(
            a.reload_begins(1_234_567),
            vec![Field::Reloading { monotonic_usec: 1_234_567 }, Field::Status("reloading".into())]
        );
        assert_eq!(
            a.turn(&states(&["running", "starting"]), false),
            vec![Field::Status("starting: 1 running, 1 starting".into())]
        );
        assert_eq!(
            a.turn(&states(&["running", "running"]), false),
            vec![Field::Status("2 running".into()), Field::Ready]
        );
        // While the new units load, READY=1 waits even though all settled.
        a.reload_begins(1_500_000);
        assert_eq!(a.turn(&states(&["running", "running"]), true), vec![]);
        assert_eq!(
            a.turn(&states(&["running", "running"]), false),
            vec![Field::Status("2 running".into()), Field::Ready]
        );
        // A refused reload changes nothing: READY=1 at the next turn.
        a.reload_begins(2_000_000);
        assert_eq!(
            a.turn(&states(&["running", "running"]), false),
            vec![Field::Status("2 running".into()), Field::Ready]
        );
    }

    #[test]
    fn stopping_once_then_status_only() {
        let mut a = Announcer::new();
        a.turn(&states(&["starting"]), false);
        assert_eq!(a.shutdown_begins(), vec![Field::Stopping]);
        assert_eq!(a.shutdown_begins(), vec![]);
        // Never READY once stopping, even when everything is down.
        assert_eq!(a.turn(&states(&["stopping"]), false), vec![Field::Status("stopping: 1 stopping".into())]);
        assert_eq!(a.turn(&states(&["stopped"]), false), vec![Field::Status("stopping: 1 stopped".into())]);
        assert_eq!(a.reload_begins(5), vec![]);
    }

    #[test]
    fn encode_writes_assignment_lines() {
        assert_eq!(
            encode(&[Field::Reloading { monotonic_usec: 42 }, Field::Status("a\nb".into())]),
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=a b\n"
        );
        assert_eq!(
            encode(&[Field::Ready, Field::Stopping, Field::Watchdog]),
            "READY=1\nSTOPPING=1\nWATCHDOG=1\n"
        );
    }

    #[test]
    fn watchdog_period_is_half_and_only_for_us() {
        assert_eq!(watchdog_period(Some("30000000"), None, 7), Some(Duration::from_secs(15)));
        assert_eq!(watchdog_period(Some("30000000"), Some("7"), 7), Some(Duration::from_secs(15)));
        assert_eq!(watchdog_period(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_period(Some("30000000"), Some("x"), 7), None);
        assert_eq!(watchdog_period(Some("0"), None, 7), None);
        assert_eq!(watchdog_period(Some("soon"), None, 7), None);
        assert_eq!(watchdog_period(None, None, 7), None);
        assert_eq!(watchdog_period(Some("1"), None, 7), Some(Duration::from_micros(1)));
    }

    #[test]
    fn settled_states() {
        for s in states(&["running", "ready", "completed", "exited", "failed", "blocked", "stopped"]) {
            assert!(settled(s), "{s:?}");
        }
        for s in states(&["starting", "waiting", "backoff", "stopping", "new-state"]) {
            assert!(!settled(s), "{s:?}");
        }
    }
}
