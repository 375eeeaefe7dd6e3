//! Answering control requests inside the loop: status, start/stop/restart
//! with their waiting semantics, signal, logs (and following them), reload,
//! shutdown. Everything here runs on the loop's thread and never blocks:
//! a request that must wait (a stop that takes 10 s) becomes a [`Waiter`]
//! that is checked after every turn.

use super::describe_exit;
use super::stack::{Phase, Slot, Stack};
use crate::ctl::proto::{
    ErrorBody, ErrorCode, False, LastExit, LogLine, ReloadReport, Reply, Request, ServiceResult,
    ServiceStatus, Target, True,
};
use crate::ctl::server::Conn;
use crate::output::Dest;
use crate::policy::ending::exit_report;
use crate::policy::service::{Config, Event, FailReason, State};
use crate::policy::ExitStatus;
use crate::sys;
use crate::unit::values::{did_you_mean, format_duration, parse_signal, signal_name};
use crate::unit::Diagnostic;
use mio::Token;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitKind {
    Start,
    Stop,
    Restart,
}

/// A start/stop/restart request waiting for its services to get there.
pub(crate) struct Waiter {
    pub(super) conn: Token,
    kind: WaitKind,
    targets: Vec<WaitTarget>,
}

struct WaitTarget {
    slot: usize,
    /// The slot's spawn count when asked: a restart is done once it moved.
    spawns_at_request: u64,
    result: Option<ServiceResult>,
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn rfc3339_micros(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
}

/// A monotonic [`crate::policy::Time`] as wall-clock time.
fn wall_time(at: crate::policy::Time) -> SystemTime {
    let ago = sys::monotonic_now().saturating_sub(at);
    SystemTime::now().checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH)
}

fn is_success(config: &Config, status: ExitStatus) -> bool {
    matches!(status, ExitStatus::Code(code) if config.success_exit_codes.contains(&code))
}

fn describe_fail(reason: &FailReason) -> String {
    reason.describe()
}

/// The state as status shows it: a service held back by its dependencies is
/// `waiting` (or `blocked`, when one of them is down for good).
pub(super) fn state_name(slot: &Slot) -> &'static str {
    match &slot.waiting {
        Some((_, true)) if slot.start_pending => "blocked",
        Some((_, false)) if slot.start_pending => "waiting",
        _ => slot.policy.state_name(),
    }
}

/// Why a service is where it is, when that needs saying.
fn reason(slot: &Slot) -> Option<String> {
    if slot.oom_killed && !matches!(slot.policy.state(), State::Running { .. }) {
        let state = match slot.policy.state() {
            State::Backoff { .. } => "; restarting",
            _ => "",
        };
        return Some(format!("killed by the OOM killer{state}"));
    }
    if slot.start_pending {
        if let Some((why, _)) = &slot.waiting {
            return Some(why.clone());
        }
    }
    let last = slot.policy.last_ending().map(|(ending, _)| ending.describe());
    match slot.policy.state() {
        State::Failed { reason, .. } => Some(describe_fail(reason)),
        State::Backoff { until } => {
            let wait = until.saturating_sub(sys::monotonic_now());
            let wait = Duration::from_millis(wait.as_millis() as u64);
            Some(format!("{}; restarting in {}", last.unwrap_or_default(), format_duration(wait)))
        }
        State::Exited { status, .. } if !is_success(&slot.policy.config, *status) => {
            Some(describe_exit(*status))
        }
        State::Stopped
        | State::Starting { .. }
        | State::Running { .. }
        | State::Stopping { .. }
        | State::Exited { .. } => None,
    }
}

fn healthy(slot: &Slot) -> bool {
    if slot.start_pending {
        return false;
    }
    match slot.policy.state() {
        State::Running { .. } => true,
        State::Exited { status, .. } => is_success(&slot.policy.config, *status),
        State::Stopped
        | State::Starting { .. }
        | State::Stopping { .. }
        | State::Backoff { .. }
        | State::Failed { .. } => false,
    }
}

pub(super) fn service_status(slot: &Slot) -> ServiceStatus {
    let failed = match slot.policy.state() {
        State::Failed { reason, .. } => Some(reason),
        _ => None,
    };
    let last_exit = slot.policy.last_ending().map(|(ending, at)| {
        let report = exit_report(ending, *at, slot.oom_killed, failed);
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
        LastExit {
            kind: report.kind.as_str().to_string(),
            code,
            signal,
            core_dumped,
            step,
            errno,
            message: report.message,
            time: rfc3339(wall_time(report.at)),
        }
    });
    let now = sys::monotonic_now();
    let uptime_secs =
        slot.policy.up_since().map(|since| now.saturating_sub(since).as_millis() as f64 / 1000.0);
    let since_secs = SystemTime::now().duration_since(slot.state_since).unwrap_or_default().as_secs_f64();
    ServiceStatus {
        name: slot.unit.name.clone(),
        state: state_name(slot).to_string(),
        pid: slot.policy.pid(),
        since: rfc3339(slot.state_since),
        since_secs: (since_secs * 1000.0).round() / 1000.0,
        uptime_secs,
        restarts: slot.policy.restarts(),
        last_exit,
        reason: reason(slot),
        healthy: healthy(slot),
        log_errors: slot
            .file_sink
            .as_ref()
            .and_then(|f| f.error())
            .into_iter()
            .chain(slot.syslog.as_ref().and_then(|s| s.error()))
            .map(str::to_string)
            .collect(),
        status_text: slot.status_text.clone(),
        memory_bytes: slot.cgroup.as_ref().and_then(|c| c.memory_current()),
        cpu_usec: slot.cgroup.as_ref().and_then(|c| c.cpu_usage_usec()),
        last_check: slot.checks.last.as_ref().map(|c| crate::ctl::proto::CheckReport {
            kind: c.kind.to_string(),
            ok: c.ok,
            message: c.message.clone(),
            time: rfc3339(c.time),
        }),
    }
}

fn ok_results(results: Vec<ServiceResult>) -> Reply {
    let failed = results.iter().filter(|r| !r.ok).count();
    if failed == 0 {
        Reply::Ok { ok: True, pid: None, version: None, services: None, results: Some(results), reload: None }
    } else {
        let names: Vec<&str> = results.iter().filter(|r| !r.ok).map(|r| r.name.as_str()).collect();
        Reply::Error {
            ok: False,
            error: ErrorBody {
                code: ErrorCode::Failed,
                message: format!("{failed} of {} failed: {}", results.len(), names.join(", ")),
                details: Vec::new(),
            },
            results: Some(results),
        }
    }
}

fn result(slot: &Slot, ok: bool, message: impl Into<String>) -> ServiceResult {
    ServiceResult {
        name: slot.unit.name.clone(),
        ok,
        message: message.into(),
        state: state_name(slot).to_string(),
        pid: slot.policy.pid(),
    }
}

/// Has a start (or the start half of a restart) finished, and how?
fn start_outcome(slot: &Slot, done_word: &str) -> Option<ServiceResult> {
    if slot.start_pending {
        return match &slot.waiting {
            Some((why, true)) => Some(result(slot, false, format!("blocked: {why}"))),
            _ => None,
        };
    }
    match slot.policy.state() {
        State::Running { pid, ready: true, .. } => {
            let word = if slot.policy.config.needs_ready_signal { "ready" } else { done_word };
            Some(result(slot, true, format!("{word} (pid {pid})")))
        }
        // Not ready yet (or a oneshot still running): wait.
        State::Running { .. } => None,
        State::Exited { status, .. } => {
            let ok = is_success(&slot.policy.config, *status);
            Some(result(slot, ok, format!("ran and {}", describe_exit(*status))))
        }
        State::Failed { reason, .. } => {
            Some(result(slot, false, format!("failed: {}", describe_fail(reason))))
        }
        State::Backoff { .. } => {
            Some(result(slot, false, format!("did not stay up: {}", reason(slot).unwrap_or_default())))
        }
        State::Stopped => Some(result(slot, false, "not started")),
        State::Starting { .. } | State::Stopping { .. } => None,
    }
}

impl Stack {
    /// Resolve names to live slots; an unknown name is an error listing the
    /// known ones and the closest.
    // The error is the reply itself, built once per request: its size does
    // not matter.
    #[allow(clippy::result_large_err)]
    fn resolve(&self, names: &[String], all: bool) -> Result<Vec<usize>, Reply> {
        let live: Vec<usize> = (0..self.slots.len()).filter(|&i| !self.slots[i].retired).collect();
        if all || names.is_empty() {
            return Ok(live);
        }
        let mut found = Vec::new();
        for name in names {
            match live.iter().find(|&&i| self.slots[i].unit.name == *name) {
                Some(&index) => {
                    if !found.contains(&index) {
                        found.push(index)
                    }
                }
                None => {
                    let known: Vec<&str> = live.iter().map(|&i| self.slots[i].unit.name.as_str()).collect();
                    let hint = did_you_mean(name, known.iter().copied())
                        .map(|n| format!(" (did you mean '{n}'?)"))
                        .unwrap_or_default();
                    return Err(Reply::error(
                        ErrorCode::UnknownService,
                        format!("no service '{name}'{hint}; known: {}", known.join(", ")),
                    ));
                }
            }
        }
        Ok(found)
    }

    /// Serve one connection for one turn: read a bounded slice of what it
    /// sent (only once what was read before is handled and its replies are
    /// taken), handle at most `REQUESTS_PER_TURN` requests, and come back
    /// next turn for the rest, after every other source had its turn.
    pub(super) fn serve_conn(&mut self, token: Token) {
        use crate::ctl::limits::{READ_PER_TURN, REQUESTS_PER_TURN};
        let now = sys::monotonic_now();
        let Some(conn) = self.conns.get_mut(&token) else { return };
        conn.flush();
        if conn.pending.is_empty() && !conn.has_pending_output() && !conn.closing && !conn.dead {
            conn.read_some(READ_PER_TURN, now);
        }
        for _ in 0..REQUESTS_PER_TURN {
            let Some(conn) = self.conns.get_mut(&token) else { return };
            let Some(frame) = conn.pending.pop_front() else { break };
            match frame {
                crate::ctl::proto::Frame::TooLarge => {
                    conn.queue(&Reply::error(
                        ErrorCode::RequestTooLarge,
                        format!("request longer than {} bytes", crate::ctl::proto::MAX_REQUEST),
                    ));
                    conn.closing = true;
                    conn.pending.clear();
                    break;
                }
                crate::ctl::proto::Frame::Line(line) => {
                    if conn.closing {
                        conn.pending.clear();
                        break;
                    }
                    if conn.busy || conn.following.is_some() {
                        conn.queue(&Reply::error(
                            ErrorCode::BadRequest,
                            "one request at a time on a connection",
                        ));
                        conn.closing = true;
                        conn.pending.clear();
                        break;
                    }
                    match crate::ctl::proto::decode_request(&line) {
                        Ok(request) => self.handle_request(token, request),
                        Err(reply) => conn.queue(&reply),
                    }
                }
            }
        }
        let Some(conn) = self.conns.get_mut(&token) else { return };
        conn.flush();
        if conn.dead {
            self.drop_conn(token);
        } else if (!conn.pending.is_empty() || conn.more_to_read)
            && !conn.closing
            && !conn.has_pending_output()
        {
            // Edge-triggered: no new event will say there is more.
            self.requeue(token);
        }
    }

    fn reply(&mut self, token: Token, reply: Reply) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.queue(&reply);
        }
    }

    fn conn(&mut self, token: Token) -> Option<&mut Conn> {
        self.conns.get_mut(&token)
    }

    fn handle_request(&mut self, token: Token, request: Request) {
        match request {
            Request::Hello => {
                let reply = Reply::Ok {
                    ok: True,
                    pid: Some(sys::getpid()),
                    version: Some(env!("CARGO_PKG_VERSION").to_string()),
                    services: None,
                    results: None,
                    reload: None,
                };
                self.reply(token, reply);
            }
            Request::Status { names } => match self.resolve(&names, false) {
                Ok(indices) => {
                    let services = indices.iter().map(|&i| service_status(&self.slots[i])).collect();
                    let reply = Reply::Ok {
                        ok: True,
                        pid: Some(sys::getpid()),
                        version: None,
                        services: Some(services),
                        results: None,
                        reload: None,
                    };
                    self.reply(token, reply);
                }
                Err(reply) => self.reply(token, reply),
            },
            Request::Start(target) => self.change(token, WaitKind::Start, target),
            Request::Stop(target) => self.change(token, WaitKind::Stop, target),
            Request::Restart(target) => self.change(token, WaitKind::Restart, target),
            Request::Signal { signal, names } => self.signal(token, &signal, &names),
            Request::Logs { names, lines, follow } => self.logs(token, &names, lines, follow),
            Request::Reload => {
                if self.phase != Phase::Running {
                    let reply = Reply::error(ErrorCode::ShuttingDown, "the supervisor is shutting down");
                    return self.reply(token, reply);
                }
                if let Some(conn) = self.conn(token) {
                    // Answered once the folder is loaded (off the loop).
                    conn.busy = true;
                }
                self.begin_reload(Some(token));
            }
            Request::ReopenLogs => {
                let results = self.reopen_logs("tend reopen-logs");
                self.reply(token, ok_results(results));
            }
            Request::Shutdown => {
                let mut reply = Reply::ok();
                if let Reply::Ok { pid, .. } = &mut reply {
                    *pid = Some(sys::getpid());
                }
                self.reply(token, reply);
                if let Some(conn) = self.conn(token) {
                    // Kept open until tend exits: its closing tells the
                    // client that the shutdown is complete.
                    conn.busy = true;
                }
                if self.phase == Phase::Running {
                    self.event("shutting down (tend shutdown)");
                    self.begin_shutdown();
                }
            }
        }
    }

    fn change(&mut self, token: Token, kind: WaitKind, target: Target) {
        if target.names.is_empty() && !target.all {
            self.reply(token, Reply::error(ErrorCode::BadRequest, "name at least one service, or --all"));
            return;
        }
        if self.phase != Phase::Running && kind != WaitKind::Stop {
            self.reply(token, Reply::error(ErrorCode::ShuttingDown, "the supervisor is shutting down"));
            return;
        }
        let indices = match self.resolve(&target.names, target.all) {
            Ok(indices) => indices,
            Err(reply) => return self.reply(token, reply),
        };
        let mut targets: Vec<WaitTarget> = Vec::new();
        let add = |targets: &mut Vec<WaitTarget>, slot: usize, spawns: u64, result: Option<ServiceResult>| {
            if !targets.iter().any(|t| t.slot == slot) {
                targets.push(WaitTarget { slot, spawns_at_request: spawns, result });
            }
        };
        for index in indices {
            let spawns_at_request = self.slots[index].spawns;
            let mut immediate = None;
            match kind {
                WaitKind::Start => {
                    if matches!(
                        self.slots[index].policy.state(),
                        State::Running { .. } | State::Starting { .. }
                    ) {
                        let pid = self.slots[index].policy.pid().unwrap_or_default();
                        immediate =
                            Some(result(&self.slots[index], true, format!("already running (pid {pid})")));
                    } else {
                        // Starts once its dependencies are met, starting
                        // those that are down first.
                        self.want_up(index);
                    }
                }
                WaitKind::Stop => {
                    // Dependents go down too, and first.
                    let dependents = self.want_down(index);
                    for dependent in dependents {
                        let spawns = self.slots[dependent].spawns;
                        add(&mut targets, dependent, spawns, None);
                    }
                    if self.slots[index].policy.is_down()
                        && !matches!(self.slots[index].policy.state(), State::Backoff { .. })
                    {
                        immediate = Some(result(&self.slots[index], true, "already stopped"));
                    }
                }
                WaitKind::Restart => self.restart_respecting_dependencies(index),
            }
            add(&mut targets, index, spawns_at_request, immediate);
        }
        self.reconcile();
        let mut waiter = Waiter { conn: token, kind, targets };
        if !target.wait {
            let results = waiter
                .targets
                .iter_mut()
                .map(|t| {
                    t.result.take().unwrap_or_else(|| {
                        let verb = match kind {
                            WaitKind::Start => "start",
                            WaitKind::Stop => "stop",
                            WaitKind::Restart => "restart",
                        };
                        result(&self.slots[t.slot], true, format!("{verb} requested"))
                    })
                })
                .collect();
            self.reply(token, ok_results(results));
            return;
        }
        if let Some(conn) = self.conn(token) {
            conn.busy = true;
        }
        self.waiters.push(waiter);
    }

    /// Restart a running service in place; start one that is down through
    /// the dependency check, like any start (a restart must not start a
    /// service before what it depends on).
    fn restart_respecting_dependencies(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.wanted = true;
        slot.stop_sent = false;
        if slot.policy.pid().is_some() || matches!(slot.policy.state(), State::Stopping { .. }) {
            slot.start_pending = false;
            self.deliver(index, Event::Restart);
        } else {
            self.want_up(index);
        }
    }

    /// Answer every waiter whose services have all got where they were asked to go.
    pub(super) fn check_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let mut done = Vec::new();
        for (position, waiter) in self.waiters.iter_mut().enumerate() {
            for target in waiter.targets.iter_mut().filter(|t| t.result.is_none()) {
                let slot = &self.slots[target.slot];
                target.result = match waiter.kind {
                    WaitKind::Start => start_outcome(slot, "started"),
                    WaitKind::Restart if slot.spawns > target.spawns_at_request || slot.start_pending => {
                        start_outcome(slot, "restarted")
                    }
                    WaitKind::Restart => match slot.policy.state() {
                        // Stopped and not started again: the shutdown began.
                        State::Stopped if self.phase != Phase::Running => {
                            Some(result(slot, false, "not restarted: shutting down"))
                        }
                        State::Failed { reason, .. } => {
                            Some(result(slot, false, format!("failed: {}", describe_fail(reason))))
                        }
                        _ => None,
                    },
                    WaitKind::Stop => {
                        let down =
                            slot.policy.is_down() && !matches!(slot.policy.state(), State::Backoff { .. });
                        down.then(|| {
                            let message = if slot.policy.was_killed() {
                                "stopped (had to be killed)"
                            } else {
                                "stopped"
                            };
                            result(slot, true, message)
                        })
                    }
                };
            }
            if waiter.targets.iter().all(|t| t.result.is_some()) {
                done.push(position);
            }
        }
        for position in done.into_iter().rev() {
            let mut waiter = self.waiters.remove(position);
            let results = waiter.targets.iter_mut().filter_map(|t| t.result.take()).collect();
            if let Some(conn) = self.conns.get_mut(&waiter.conn) {
                conn.busy = false;
                conn.queue(&ok_results(results));
            }
        }
    }

    fn signal(&mut self, token: Token, signal: &str, names: &[String]) {
        let signal = match parse_signal(signal) {
            Ok(signal) => signal,
            Err(message) => return self.reply(token, Reply::error(ErrorCode::BadRequest, message)),
        };
        if names.is_empty() {
            return self.reply(token, Reply::error(ErrorCode::BadRequest, "name at least one service"));
        }
        let indices = match self.resolve(names, false) {
            Ok(indices) => indices,
            Err(reply) => return self.reply(token, reply),
        };
        let mut results = Vec::new();
        for index in indices {
            let slot = &self.slots[index];
            let outcome = match slot.policy.pid() {
                None => result(slot, false, "not running"),
                Some(pid) => match sys::send_signal(pid, signal, slot.unit.process_group) {
                    Ok(()) => result(slot, true, format!("sent {}", signal_name(signal))),
                    Err(err) => result(slot, false, format!("cannot send {}: {err}", signal_name(signal))),
                },
            };
            results.push(outcome);
        }
        self.reply(token, ok_results(results));
    }

    fn logs(&mut self, token: Token, names: &[String], lines: usize, follow: bool) {
        let indices = match self.resolve(names, false) {
            Ok(indices) => indices,
            Err(reply) => return self.reply(token, reply),
        };
        let mut history = Vec::new();
        for &index in &indices {
            let slot = &self.slots[index];
            for line in slot.history.last_lines(lines) {
                history.push((line.time, slot.unit.name.clone(), line.dest, line.line));
            }
        }
        // One timeline across services; stable, so each service keeps its order.
        history.sort_by_key(|entry| entry.0);
        let Some(conn) = self.conns.get_mut(&token) else { return };
        for (time, service, dest, line) in history {
            conn.queue(&log_reply(&service, dest, time, &line));
        }
        if follow {
            let followed: Vec<String> = indices.iter().map(|&i| self.slots[i].unit.name.clone()).collect();
            conn.following = Some(followed);
            self.followers += 1;
        } else {
            conn.queue(&Reply::ok());
        }
    }

    pub(super) fn send_to_followers(&mut self, slot: usize, dest: Dest, lines: &[Vec<u8>]) {
        let name = self.slots[slot].unit.name.clone();
        let now = SystemTime::now();
        let encoded: Vec<Vec<u8>> =
            lines.iter().map(|line| log_reply(&name, dest, now, line).encode()).collect();
        // The output budget of all connections holds within the turn too:
        // a follower that would take it past is cut (they all get the same
        // lines, so the first to overflow is as behind as any).
        let mut total: usize = self.conns.values().map(|c| c.queued()).sum();
        for conn in self.conns.values_mut() {
            let Some(followed) = &conn.following else { continue };
            if !followed.contains(&name) {
                continue;
            }
            let before = conn.queued();
            for bytes in &encoded {
                conn.queue_bytes(bytes);
            }
            conn.flush();
            total = total - before + conn.queued();
            if total > crate::ctl::limits::TOTAL_OUTPUT {
                total -= conn.queued();
                conn.discard_output();
                conn.close_with(
                    ErrorCode::TooSlow,
                    "client fell too far behind while others did too; dropping the connection",
                );
                conn.flush();
                total += conn.queued();
            }
        }
    }

    /// Open every log file anew (SIGUSR1, `tend reopen-logs`), after
    /// logrotate moved them away. One result per service that has a file.
    pub(super) fn reopen_logs(&mut self, why: &str) -> Vec<ServiceResult> {
        let now = SystemTime::now();
        let mut results = Vec::new();
        for slot in self.slots.iter_mut().filter(|s| !s.retired) {
            let Some(file) = slot.file_sink.as_mut() else { continue };
            let path = file.path().display().to_string();
            let outcome = file.reopen(now);
            results.push(match outcome {
                Ok(()) => result(slot, true, format!("reopened {path}")),
                Err(error) => result(slot, false, error),
            });
        }
        let failed = results.iter().filter(|r| !r.ok).count();
        let failed = if failed > 0 { format!(", {failed} failed") } else { String::new() };
        let files = if results.len() == 1 { "file" } else { "files" };
        self.event(&format!("reopened {} log {files}{failed} ({why})", results.len()));
        results
    }

    /// Answer a `reload` request with what it did.
    pub(super) fn answer_reload(&mut self, token: Token, result: &Result<ReloadReport, Vec<Diagnostic>>) {
        if let Some(conn) = self.conn(token) {
            conn.busy = false;
        }
        let reply = match result {
            Ok(report) => Reply::Ok {
                ok: True,
                pid: None,
                version: None,
                services: None,
                results: None,
                reload: Some(report.clone()),
            },
            Err(diagnostics) => Reply::Error {
                ok: False,
                error: ErrorBody {
                    code: ErrorCode::InvalidUnits,
                    message: format!(
                        "{} error{} in {}: nothing was changed",
                        diagnostics.len(),
                        if diagnostics.len() == 1 { "" } else { "s" },
                        self.units_dir.display()
                    ),
                    details: diagnostics.iter().map(|d| d.to_string()).collect(),
                },
                results: None,
            },
        };
        self.reply(token, reply);
    }

    /// Apply a loaded units folder: the difference to what runs now.
    pub(super) fn apply_reload(&mut self, units: Vec<crate::unit::UnitSpec>) -> ReloadReport {
        let current: Vec<&crate::unit::UnitSpec> =
            self.slots.iter().filter(|s| !s.retired).map(|s| &s.unit).collect();
        let plan = crate::policy::reload::plan(current, &units);
        let live = |stack: &Stack, name: &str| {
            (0..stack.slots.len()).find(|&i| !stack.slots[i].retired && stack.slots[i].unit.name == name)
        };
        for name in &plan.removed {
            if let Some(index) = live(self, name) {
                // Down like at shutdown (its dependents, if any are left,
                // first); retired once marked, so it is no longer listed.
                self.want_down(index);
                self.slots[index].retired = true;
            }
        }
        for unit in units {
            if plan.changed.contains(&unit.name) {
                if let Some(index) = live(self, &unit.name) {
                    self.slots[index].policy.config = Config::from_unit(&unit);
                    if self.slots[index].unit.resources != unit.resources {
                        // New limits: a fresh cgroup at the next start (the
                        // old one stays until the old process is stopped).
                        self.slots[index].cgroup_stale = true;
                    }
                    if self.slots[index].unit.log != unit.log {
                        let (file_sink, syslog) = super::stack::sinks_for(&unit);
                        self.slots[index].file_sink = file_sink;
                        self.slots[index].syslog = syslog;
                    }
                    self.slots[index].unit = unit;
                    if self.slots[index].wanted {
                        self.restart_respecting_dependencies(index);
                    }
                }
            } else if plan.added.contains(&unit.name) {
                let index = self.add_slot(unit);
                self.want_up(index);
            }
        }
        self.refresh_prefixes();
        self.reconcile();
        ReloadReport {
            started: plan.added,
            stopped: plan.removed,
            restarted: plan.changed,
            unchanged: plan.unchanged,
            warnings: Vec::new(),
        }
    }
}

fn log_reply(service: &str, dest: Dest, time: SystemTime, line: &[u8]) -> Reply {
    Reply::Log {
        log: LogLine {
            service: service.to_string(),
            stream: match dest {
                Dest::Stdout => "stdout".into(),
                Dest::Stderr => "stderr".into(),
            },
            time: rfc3339_micros(time),
            line: String::from_utf8_lossy(line).into_owned(),
        },
    }
}

/// One line for tend's own log about a reload.
pub(super) fn describe_reload(result: &Result<ReloadReport, Vec<Diagnostic>>) -> String {
    match result {
        Ok(report) => {
            let list =
                |names: &[String]| if names.is_empty() { "none".to_string() } else { names.join(", ") };
            format!(
                "reloaded: started {}; stopped {}; restarted {}; {} unchanged",
                list(&report.started),
                list(&report.stopped),
                list(&report.restarted),
                report.unchanged.len()
            )
        }
        Err(diagnostics) => {
            let mut text = format!("reload refused, nothing changed: {} error(s)", diagnostics.len());
            for diagnostic in diagnostics {
                text.push_str("\n  ");
                text.push_str(&diagnostic.to_string());
            }
            text
        }
    }
}
