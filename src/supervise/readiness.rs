//! Readiness, liveness and dependencies, on the loop's thread.
//!
//! - sd_notify: one datagram socket for all services; each message is
//!   attributed by its sender's pid (SCM_CREDENTIALS) to the service whose
//!   process it is (the leader, its process group, or a descendant), and
//!   ignored otherwise.
//! - s6 readiness: a pipe on the service's `notify_fd`; a line means ready.
//! - ready/health checks: exec checks are children of the one spawn path,
//!   reaped by the one reaper and killed at their timeout; tcp/http checks
//!   are non-blocking sockets in the poller.
//! - dependencies: a service starts once every dependency meets its
//!   condition; on stop, dependents go first.

use super::stack::{Phase, Stack};
use crate::policy::service::{Event, State};
use crate::policy::{ExitStatus, Time};
use crate::readiness::notify::NotifySocket;
use crate::readiness::probe::{Outcome, Probe};
use crate::spawn::{self, ExecPlan, Stdio};
use crate::sys;
use crate::unit::values::format_duration;
use crate::unit::{Check, CheckSpec, DependencyCondition};
use mio::Token;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckPhase {
    /// Not checking.
    Idle,
    /// Running the ready_check until it first succeeds.
    Ready,
    /// Running the health_check while the service is up.
    Health,
}

pub(crate) enum RunningCheck {
    Exec { pid: i32 },
    Probe { token: Token, probe: Box<Probe> },
}

/// The last check result, for `tend status`.
#[derive(Debug, Clone)]
pub(crate) struct CheckResult {
    pub ok: bool,
    pub message: String,
    pub time: SystemTime,
    pub kind: &'static str,
}

pub(crate) struct Checks {
    pub phase: CheckPhase,
    pub running: Option<(RunningCheck, Time)>,
    pub next_at: Option<Time>,
    pub failures: u32,
    pub last: Option<CheckResult>,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks { phase: CheckPhase::Idle, running: None, next_at: None, failures: 0, last: None }
    }
}

impl Checks {
    /// The next time the loop must look at this service's checks.
    pub fn deadline(&self) -> Option<Time> {
        match &self.running {
            Some((_, timeout_at)) => Some(*timeout_at),
            None => self.next_at,
        }
    }
}

/// Where the notify socket goes, in a place no other user can have taken
/// first: for root, `/run/tend-notify-PID.sock` when only root can write
/// `/run` (services of any user reach it there, and a private /tmp does
/// not hide it), else a fresh folder of a name nobody can guess in the
/// temp dir; for any other user, its private runtime folder (its services
/// all run as that user). Returns the socket path and a folder to remove
/// at exit, if one was made.
fn notify_socket_path() -> Result<(PathBuf, Option<PathBuf>), String> {
    let pid = sys::getpid();
    if !nix::unistd::geteuid().is_root() {
        let dir = crate::ctl::client::runtime_dir();
        sys::paths::use_private_dir(&dir)?;
        return Ok((dir.join(format!("notify-{pid}.sock")), None));
    }
    let run = std::path::Path::new("/run");
    let run_is_roots = std::fs::symlink_metadata(run).is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.is_dir() && sys::paths::others_can_write(m.uid(), m.mode(), 0).is_none()
    });
    if run_is_roots {
        return Ok((run.join(format!("tend-notify-{pid}.sock")), None));
    }
    let dir = sys::paths::make_temp_dir(&std::env::temp_dir(), &format!("tend-notify-{pid}."), 0o711)
        .map_err(|e| format!("cannot make a folder for the notify socket: {e}"))?;
    Ok((dir.join("notify.sock"), Some(dir)))
}

/// How a dependency stands for its dependent.
enum DepState {
    Met,
    /// Not yet; the text says what it is doing.
    Waiting(String),
    /// Down and not coming up by itself.
    Down(String),
}

impl Stack {
    // ---- dependencies ----

    fn live_slot(&self, name: &str) -> Option<usize> {
        (0..self.slots.len()).find(|&i| !self.slots[i].retired && self.slots[i].unit.name == name)
    }

    /// Live services that depend on `index`.
    fn dependents(&self, index: usize) -> Vec<usize> {
        let name = &self.slots[index].unit.name;
        (0..self.slots.len())
            .filter(|&i| {
                !self.slots[i].retired && self.slots[i].unit.depends_on.iter().any(|d| &d.name == name)
            })
            .collect()
    }

    fn dep_state(&self, index: usize, condition: DependencyCondition) -> DepState {
        let slot = &self.slots[index];
        let policy = &slot.policy;
        let name = policy.state_name();
        let met = match condition {
            DependencyCondition::Started => {
                matches!(policy.state(), State::Running { .. }) || policy.is_completed()
            }
            DependencyCondition::Ready => policy.is_ready(),
            DependencyCondition::Completed => policy.is_completed(),
        };
        if met {
            return DepState::Met;
        }
        match policy.state() {
            State::Starting { .. }
            | State::Running { .. }
            | State::Stopping { .. }
            | State::Backoff { .. } => DepState::Waiting(name.to_string()),
            // A dependency that is itself blocked blocks us too.
            State::Stopped if slot.start_pending && slot.waiting.as_ref().is_some_and(|w| w.1) => {
                DepState::Down("blocked".into())
            }
            State::Stopped if slot.start_pending => DepState::Waiting("waiting".into()),
            State::Stopped => DepState::Down("stopped".into()),
            State::Failed { .. } => DepState::Down("failed".into()),
            State::Exited { status, .. } => DepState::Down(super::describe_exit(*status)),
        }
    }

    /// Want `index` up, and what it depends on when that is down.
    pub(super) fn want_up(&mut self, index: usize) {
        let mut stack = vec![index];
        let mut seen = vec![false; self.slots.len()];
        while let Some(i) = stack.pop() {
            if seen[i] || self.slots[i].retired {
                continue;
            }
            seen[i] = true;
            let slot = &mut self.slots[i];
            slot.wanted = true;
            slot.stop_sent = false;
            let down = match slot.policy.state() {
                State::Stopped | State::Failed { .. } => true,
                State::Exited { .. } => i == index || !slot.policy.is_completed(),
                State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Backoff { .. } => false,
            };
            if down || i == index && matches!(slot.policy.state(), State::Stopping { .. }) {
                slot.start_pending = true;
            }
            let deps: Vec<String> = slot.unit.depends_on.iter().map(|d| d.name.clone()).collect();
            for dep in deps {
                if let Some(d) = self.live_slot(&dep) {
                    let dep_slot = &self.slots[d];
                    let dep_down = !dep_slot.wanted
                        || matches!(dep_slot.policy.state(), State::Stopped | State::Failed { .. })
                        || matches!(dep_slot.policy.state(), State::Exited { .. })
                            && !dep_slot.policy.is_completed();
                    if dep_down {
                        stack.push(d);
                    }
                }
            }
        }
    }

    /// Want `index` down, and everything that depends on it (first).
    /// Returns the dependents that were brought down with it.
    pub(super) fn want_down(&mut self, index: usize) -> Vec<usize> {
        let mut stack = vec![index];
        let mut seen = vec![false; self.slots.len()];
        let mut also = Vec::new();
        while let Some(i) = stack.pop() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            if i != index && self.slots[i].wanted {
                also.push(i);
            }
            let slot = &mut self.slots[i];
            slot.wanted = false;
            slot.start_pending = false;
            slot.waiting = None;
            slot.stop_sent = false;
            stack.extend(self.dependents(i));
        }
        also
    }

    /// Start what may start, stop what may stop. Called once per turn.
    pub(super) fn reconcile(&mut self) {
        let running = self.phase == Phase::Running;
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.retired && slot.wanted {
                continue;
            }
            if slot.wanted && slot.start_pending && running {
                if matches!(slot.policy.state(), State::Stopping { .. }) {
                    continue;
                }
                let mut waiting = Vec::new();
                let mut blocked = false;
                for dep in &slot.unit.depends_on {
                    let Some(d) = self.live_slot(&dep.name) else {
                        waiting.push(format!("{}: removed", dep.name));
                        blocked = true;
                        continue;
                    };
                    match self.dep_state(d, dep.condition) {
                        DepState::Met => {}
                        DepState::Waiting(what) => waiting.push(format!("{}: {what}", dep.name)),
                        DepState::Down(what) => {
                            waiting.push(format!("{}: {what}", dep.name));
                            blocked = true;
                        }
                    }
                }
                if waiting.is_empty() {
                    let slot = &mut self.slots[index];
                    slot.start_pending = false;
                    slot.waiting = None;
                    self.deliver(index, Event::Start);
                } else {
                    self.slots[index].waiting =
                        Some((format!("waiting for {}", waiting.join(", ")), blocked));
                }
            } else if !slot.wanted && !slot.stop_sent {
                let idle = matches!(
                    slot.policy.state(),
                    State::Stopped | State::Exited { .. } | State::Failed { .. }
                );
                if idle {
                    self.slots[index].stop_sent = true;
                    continue;
                }
                // Dependents first: stop this one only once they are down.
                let dependents_down = self.dependents(index).iter().all(|&d| self.slots[d].policy.is_down());
                if dependents_down {
                    self.slots[index].stop_sent = true;
                    self.deliver(index, Event::Stop);
                }
            }
        }
    }

    // ---- sd_notify ----

    /// NOTIFY_SOCKET (and WATCHDOG_USEC) for a notify service.
    pub(super) fn readiness_env(&mut self, index: usize) -> Result<Vec<(OsString, OsString)>, String> {
        let unit = &self.slots[index].unit;
        if unit.service_type != crate::unit::ServiceType::Notify || unit.notify_fd.is_some() {
            return Ok(Vec::new());
        }
        let watchdog = unit.watchdog;
        if self.notify.is_none() {
            let (path, made_dir) = notify_socket_path()?;
            let open_to_all = nix::unistd::geteuid().is_root();
            let socket = NotifySocket::bind(&path, made_dir, open_to_all)
                .map_err(|e| format!("cannot create the notify socket {}: {e}", path.display()))?;
            self.registry_register(socket.raw_fd(), super::stack::NOTIFY_TOKEN)
                .map_err(|e| format!("cannot watch the notify socket: {e}"))?;
            self.notify = Some(socket);
        }
        let path = self.notify.as_ref().map(|n| n.path.clone()).unwrap_or_default();
        let mut env = vec![(OsString::from("NOTIFY_SOCKET"), path.into_os_string())];
        if let Some(watchdog) = watchdog {
            env.push(("WATCHDOG_USEC".into(), watchdog.as_micros().to_string().into()));
        }
        Ok(env)
    }

    /// Which service does process `pid` belong to? Its leader, a member of
    /// its process group, or a descendant (a few levels up the tree).
    fn service_of(&self, pid: i32) -> Option<usize> {
        let leader_of = |p: i32| {
            (0..self.slots.len())
                .find(|&i| self.slots[i].policy.pid() == Some(p) || self.slots[i].main_pid == Some(p))
        };
        if let Some(index) = leader_of(pid) {
            return Some(index);
        }
        if let Some(pgid) = sys::process_group_of(pid) {
            if let Some(index) = leader_of(pgid).filter(|&i| self.slots[i].unit.process_group) {
                return Some(index);
            }
        }
        let mut current = pid;
        for _ in 0..16 {
            current = sys::parent_of(current)?;
            if current <= 1 {
                return None;
            }
            if let Some(index) = leader_of(current) {
                return Some(index);
            }
        }
        None
    }

    pub(super) fn read_notify(&mut self) {
        let Some(socket) = self.notify.as_ref() else { return };
        let messages = socket.receive();
        if messages.len() == crate::readiness::notify::RECEIVE_BATCH {
            // More may be waiting, and no new edge will say so: next turn.
            self.requeue(super::stack::NOTIFY_TOKEN);
        }
        for message in messages {
            let Some((pid, index)) = message.pid.and_then(|pid| Some((pid, self.service_of(pid)?))) else {
                let who =
                    message.pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "an unknown sender".into());
                self.ignored_notify(format!(
                    "ignored a notify message from {who}: not a process of any service"
                ));
                continue;
            };
            if self.slots[index].unit.service_type != crate::unit::ServiceType::Notify {
                let name = self.slots[index].unit.name.clone();
                self.ignored_notify(format!("{name}: ignored a notify message: the unit is not type notify"));
                continue;
            }
            for (key, value) in message.fields {
                self.apply_notify(index, pid, &key, &value);
            }
        }
    }

    /// A line about an ignored notify message, within the throttle's budget.
    fn ignored_notify(&mut self, text: String) {
        match self.notify_throttle.admit(sys::monotonic_now()) {
            Some(0) => self.event(&text),
            Some(more) => self.event(&format!("{text} ({more} more ignored without a message)")),
            None => {}
        }
    }

    /// Is `pid` a process of service `index`: in its cgroup, its process
    /// group, or below its leader?
    fn is_member(&self, index: usize, pid: i32) -> bool {
        let slot = &self.slots[index];
        let Some(leader) = slot.policy.pid() else { return false };
        if pid == leader || slot.cgroup.as_ref().is_some_and(|c| c.pids().contains(&pid)) {
            return true;
        }
        if slot.unit.process_group && sys::process_group_of(pid) == Some(leader) {
            return true;
        }
        let mut current = pid;
        for _ in 0..16 {
            match sys::parent_of(current) {
                Some(parent) if parent == leader => return true,
                Some(parent) if parent > 1 => current = parent,
                _ => return false,
            }
        }
        false
    }

    fn apply_notify(&mut self, index: usize, sender: i32, key: &str, value: &str) {
        match key {
            "READY" if value == "1" => self.deliver(index, Event::Ready),
            "WATCHDOG" if value == "1" => self.deliver(index, Event::WatchdogPing),
            "STATUS" => self.slots[index].status_text = Some(value.to_string()),
            "MAINPID" => {
                let verdict = match value.parse::<i32>() {
                    Ok(candidate) => crate::readiness::notify::main_pid_acceptable(
                        candidate,
                        self.is_member(index, candidate),
                    )
                    .map(|()| candidate),
                    Err(_) => Err("not a number"),
                };
                match verdict {
                    Ok(candidate) => self.slots[index].main_pid = Some(candidate),
                    Err(why) => {
                        let name = self.slots[index].unit.name.clone();
                        let shown = crate::unit::values::printable(value);
                        self.ignored_notify(format!(
                            "{name}: ignored MAINPID={shown} from pid {sender}: {why}"
                        ));
                    }
                }
            }
            "STOPPING" if value == "1" => self.slots[index].status_text = Some("stopping".into()),
            "RELOADING" if value == "1" => self.slots[index].status_text = Some("reloading".into()),
            "EXTEND_TIMEOUT_USEC" => {
                if let Ok(usec) = value.parse::<u64>() {
                    self.deliver(index, Event::Extend { by: Duration::from_micros(usec) });
                }
            }
            // Other assignments (ERRNO=, FDSTORE=, …) are accepted and ignored.
            _ => {}
        }
    }

    // ---- s6 readiness (notify_fd) ----

    pub(super) fn watch_readiness_pipe(&mut self, index: usize, read_end: OwnedFd) {
        if spawn::set_nonblocking(&read_end).is_err() {
            return;
        }
        let token = self.token();
        if self.registry_register(read_end.as_raw_fd(), token).is_ok() {
            self.check_tokens.insert(token, index);
            if let Some((old, _)) = self.slots[index].readiness_pipe.replace((token, read_end)) {
                self.check_tokens.remove(&old);
            }
        }
    }

    fn read_readiness_pipe(&mut self, index: usize) {
        let Some((_, fd)) = self.slots[index].readiness_pipe.as_ref() else { return };
        let mut buf = [0u8; 512];
        let mut ready = false;
        let mut closed = false;
        loop {
            match sys::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => ready |= buf[..n].contains(&b'\n'),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if ready || closed {
            if let Some((token, fd)) = self.slots[index].readiness_pipe.take() {
                self.check_tokens.remove(&token);
                self.registry_deregister(fd.as_raw_fd());
            }
        }
        if ready {
            self.deliver(index, Event::Ready);
        }
    }

    // ---- ready and health checks ----

    /// What each service should be checking now; start checks that are due.
    pub(super) fn run_checks(&mut self) {
        let now = sys::monotonic_now();
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            let wanted = match slot.policy.state() {
                State::Running { ready: false, .. } if slot.unit.ready_check.is_some() => CheckPhase::Ready,
                State::Running { ready: true, .. } if slot.unit.health_check.is_some() => CheckPhase::Health,
                _ => CheckPhase::Idle,
            };
            if wanted != slot.checks.phase {
                self.cancel_check(index);
                let spec_interval = self.check_spec(index, wanted).map(|s| s.interval);
                let checks = &mut self.slots[index].checks;
                checks.phase = wanted;
                checks.failures = 0;
                checks.next_at = match wanted {
                    CheckPhase::Idle => None,
                    // The first ready check right away; the first health
                    // check one interval after the service became ready.
                    CheckPhase::Ready => Some(now),
                    CheckPhase::Health => spec_interval.map(|i| now.saturating_add(i)),
                };
            }
            let checks = &self.slots[index].checks;
            if checks.running.is_none() && checks.next_at.is_some_and(|at| at <= now) {
                self.start_check(index, now);
            }
        }
    }

    fn check_spec(&self, index: usize, phase: CheckPhase) -> Option<&CheckSpec> {
        let unit = &self.slots[index].unit;
        match phase {
            CheckPhase::Idle => None,
            CheckPhase::Ready => unit.ready_check.as_ref(),
            CheckPhase::Health => unit.health_check.as_ref(),
        }
    }

    fn start_check(&mut self, index: usize, now: Time) {
        let phase = self.slots[index].checks.phase;
        let Some(spec) = self.check_spec(index, phase).cloned() else { return };
        self.slots[index].checks.next_at = None;
        let timeout_at = now.saturating_add(spec.timeout);
        let started = match &spec.check {
            Check::Exec(argv) => self.spawn_exec_check(index, argv).map(|pid| RunningCheck::Exec { pid }),
            Check::Tcp { .. } | Check::Http { .. } => match Probe::start(&spec.check) {
                Ok(mut probe) => {
                    let token = self.token();
                    match self.register_probe(&mut probe, token) {
                        Ok(()) => {
                            self.check_tokens.insert(token, index);
                            Ok(RunningCheck::Probe { token, probe: Box::new(probe) })
                        }
                        Err(err) => Err(format!("cannot watch the probe: {err}")),
                    }
                }
                Err(message) => Err(message),
            },
        };
        match started {
            Ok(running) => self.slots[index].checks.running = Some((running, timeout_at)),
            Err(message) => self.check_result(index, false, message),
        }
    }

    /// An exec check: the service's own plan with the check's command, its
    /// output discarded, reaped by the one reaper.
    fn spawn_exec_check(&mut self, index: usize, argv: &[String]) -> Result<i32, String> {
        let devnull = self.devnull_fd();
        let stdio = [Stdio::Fd(devnull), Stdio::Fd(devnull), Stdio::Fd(devnull)];
        let unit = &self.slots[index].unit;
        let mut plan = ExecPlan::for_service_with(
            unit,
            argv,
            self.environment_iter(),
            &[],
            stdio,
            self.pdeathsig_value(),
        )
        .map_err(|e| format!("cannot prepare the check: {}", e.0))?;
        // Same cgroup and sandbox as the service.
        self.sandbox_plan(index, &mut plan).map_err(|failure| failure.message)?;
        let child = spawn::spawn(&plan).map_err(|e| format!("cannot fork the check: {e}"))?;
        self.check_pids.insert(child.pid, index);
        Ok(child.pid)
    }

    pub(super) fn check_event(&mut self, index: usize, token: Token) {
        if self.slots[index].readiness_pipe.as_ref().is_some_and(|(t, _)| *t == token) {
            self.read_readiness_pipe(index);
            return;
        }
        let outcome = match self.slots[index].checks.running.as_mut() {
            Some((RunningCheck::Probe { token: t, probe }, _)) if *t == token => probe.advance(),
            _ => return,
        };
        match outcome {
            Outcome::Pending => {}
            Outcome::Success(message) => {
                self.cancel_check(index);
                self.check_result(index, true, message);
            }
            Outcome::Failure(message) => {
                self.cancel_check(index);
                self.check_result(index, false, message);
            }
        }
    }

    pub(super) fn check_exited(&mut self, index: usize, pid: i32, status: ExitStatus) {
        let ours =
            matches!(self.slots[index].checks.running, Some((RunningCheck::Exec { pid: p }, _)) if p == pid);
        if !ours {
            return; // a check we gave up on (timed out or cancelled)
        }
        self.slots[index].checks.running = None;
        match status {
            ExitStatus::Code(0) => self.check_result(index, true, "exited with status 0".into()),
            other => self.check_result(index, false, super::describe_exit(other)),
        }
    }

    /// A check ran past its timeout, or the next one is due.
    pub(super) fn check_deadline(&mut self, index: usize, now: Time) {
        let timed_out = self.slots[index].checks.running.as_ref().is_some_and(|(_, at)| *at <= now);
        if timed_out {
            let phase = self.slots[index].checks.phase;
            let timeout = self.check_spec(index, phase).map(|s| s.timeout).unwrap_or_default();
            self.cancel_check(index);
            self.check_result(index, false, format!("timed out after {}", format_duration(timeout)));
        }
        // A due check starts in `run_checks`, at the top of the next turn.
    }

    /// Drop the check in flight: kill an exec check's process group, close a probe.
    fn cancel_check(&mut self, index: usize) {
        match self.slots[index].checks.running.take() {
            Some((RunningCheck::Exec { pid }, _)) => {
                // Still in check_pids: the reaper collects it, then it is ignored.
                let group = self.slots[index].unit.process_group;
                let _ = sys::send_signal(pid, libc::SIGKILL, group);
            }
            Some((RunningCheck::Probe { token, mut probe }, _)) => {
                self.check_tokens.remove(&token);
                self.deregister_probe(&mut probe);
            }
            None => {}
        }
    }

    fn check_result(&mut self, index: usize, ok: bool, message: String) {
        let phase = self.slots[index].checks.phase;
        let Some(spec) = self.check_spec(index, phase).cloned() else { return };
        let now = sys::monotonic_now();
        let kind = if phase == CheckPhase::Health { "health" } else { "ready" };
        let checks = &mut self.slots[index].checks;
        checks.last = Some(CheckResult { ok, message: message.clone(), time: SystemTime::now(), kind });
        checks.next_at = Some(now.saturating_add(spec.interval));
        if ok {
            checks.failures = 0;
            if phase == CheckPhase::Ready {
                self.deliver(index, Event::Ready);
            }
            return;
        }
        checks.failures += 1;
        if phase == CheckPhase::Health {
            let failures = checks.failures;
            let name = self.slots[index].unit.name.clone();
            self.event(&format!(
                "{name}: health check failed ({message}), {failures} of {} in a row",
                spec.retries
            ));
            if failures >= spec.retries {
                self.slots[index].checks.failures = 0;
                self.deliver(index, Event::HealthFailed { failures });
            }
        }
    }
}
