//! `tend up`: many services on one loop.

use super::{describe_exit, reaper, signal_name, SHUTDOWN_SIGNALS};
use crate::output::{Dest, LineFramer, Output, Prefix};
use crate::policy::service::{Action, Config, Event, Notice, Service, State};
use crate::policy::{ExitStatus, Time};
use crate::spawn::{self, ExecPlan, SpawnError, Stdio};
use crate::sys;
use crate::unit::values::format_duration;
use crate::unit::UnitSpec;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

const SIGNAL_TOKEN: Token = Token(0);
const FIRST_DYNAMIC_TOKEN: usize = 16;

/// How much one stream may read per turn before the others get theirs: a
/// service that writes without pause must not starve the rest or the loop.
const READ_CHUNK: usize = 64 * 1024;
const READS_PER_TURN: usize = 4;

/// Flush tend's own output once this much is queued.
const FLUSH_AT: usize = 256 * 1024;

pub struct StackOptions {
    /// The environment services inherit (tend's own, read once at start).
    pub environment: Vec<(OsString, OsString)>,
}

/// The exec-status pipe of a child whose exec is not yet confirmed.
struct ExecWatch {
    pid: i32,
    token: Token,
    fd: OwnedFd,
    bytes: Vec<u8>,
    plan: ExecPlan,
    /// EOF was read: exec succeeded (no bytes) or failed (bytes).
    eof: bool,
}

struct Slot {
    unit: UnitSpec,
    policy: Service,
    prefix: Prefix,
    exec: Option<ExecWatch>,
}

struct Stream {
    slot: usize,
    fd: OwnedFd,
    dest: Dest,
    framer: LineFramer,
}

enum Phase {
    Running,
    /// Stopping everything; `escalated` once SIGKILL was sent to all.
    ShuttingDown { escalated: bool },
}

struct Stack {
    poll: Poll,
    signals: Signals,
    slots: Vec<Slot>,
    /// Leader pid → slot.
    pids: HashMap<i32, usize>,
    streams: HashMap<Token, Stream>,
    exec_tokens: HashMap<Token, usize>,
    next_token: usize,
    /// Streams that still had data when their turn ended.
    busy: Vec<Token>,
    output: Output,
    environment: Vec<(OsString, OsString)>,
    devnull: OwnedFd,
    pdeathsig: Option<i32>,
    phase: Phase,
    /// The exit status a critical service handed over.
    critical_exit: Option<i32>,
    read_buffer: Vec<u8>,
}

/// Supervise `units` until a shutdown signal or a critical service ends.
/// Returns tend's exit status.
pub fn run_stack(units: Vec<UnitSpec>, options: StackOptions) -> i32 {
    match Stack::new(units, options) {
        Ok(mut stack) => stack.run(),
        Err(err) => {
            eprintln!("tend: cannot start the supervisor: {err}");
            1
        }
    }
}

impl Stack {
    fn new(units: Vec<UnitSpec>, options: StackOptions) -> io::Result<Stack> {
        spawn::ensure_standard_fds();
        sys::ignore_sigpipe();
        let poll = Poll::new()?;
        let mut signals = Signals::new(SHUTDOWN_SIGNALS.iter().copied().chain([libc::SIGCHLD, libc::SIGHUP]))?;
        poll.registry().register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
        let is_init = sys::getpid() == 1;
        let pdeathsig = if is_init {
            None
        } else {
            // Orphans of our services come to us, so the reaper sees them
            // and process-group stops can finish.
            if let Err(err) = sys::set_child_subreaper() {
                eprintln!("tend: warning: cannot become a child subreaper: {err}");
            }
            Some(libc::SIGKILL)
        };
        let output = Output::new(units.iter().map(|u| u.name.as_str()));
        let slots = units
            .into_iter()
            .enumerate()
            .map(|(index, unit)| Slot {
                prefix: output.prefix(&unit.name, index),
                policy: Service::new(Config::from_unit(&unit)),
                unit,
                exec: None,
            })
            .collect();
        let devnull = std::fs::OpenOptions::new().read(true).open("/dev/null")?.into();
        Ok(Stack {
            poll,
            signals,
            slots,
            pids: HashMap::new(),
            streams: HashMap::new(),
            exec_tokens: HashMap::new(),
            next_token: FIRST_DYNAMIC_TOKEN,
            busy: Vec::new(),
            output,
            environment: options.environment,
            devnull,
            pdeathsig,
            phase: Phase::Running,
            critical_exit: None,
            read_buffer: vec![0; READ_CHUNK],
        })
    }

    fn run(&mut self) -> i32 {
        for index in 0..self.slots.len() {
            self.deliver(index, Event::Start);
        }
        let mut events = Events::with_capacity(256);
        loop {
            self.output.flush();
            if self.finished() {
                break;
            }
            let timeout = if self.busy.is_empty() { self.next_timeout() } else { Some(Duration::ZERO) };
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if err.kind() != io::ErrorKind::Interrupted {
                    eprintln!("tend: poll failed: {err}");
                    break;
                }
                continue;
            }
            for event in events.iter() {
                self.dispatch(event.token());
            }
            let busy = std::mem::take(&mut self.busy);
            for token in busy {
                self.read_stream(token);
            }
            self.fire_deadlines();
        }
        self.drain_streams();
        self.output.flush();
        self.exit_status()
    }

    fn dispatch(&mut self, token: Token) {
        if token == SIGNAL_TOKEN {
            self.handle_signals();
        } else if let Some(&slot) = self.exec_tokens.get(&token) {
            self.read_exec_status(slot);
        } else if self.streams.contains_key(&token) {
            self.read_stream(token);
        }
    }

    fn finished(&self) -> bool {
        matches!(self.phase, Phase::ShuttingDown { .. }) && self.slots.iter().all(|s| s.policy.is_down())
    }

    fn exit_status(&self) -> i32 {
        if let Some(code) = self.critical_exit {
            return code;
        }
        if self.slots.iter().any(|s| s.policy.was_killed()) {
            return 1;
        }
        0
    }

    /// Sleep until the earliest deadline; `None` (forever) when none is due.
    fn next_timeout(&self) -> Option<Duration> {
        let earliest = self.slots.iter().filter_map(|s| s.policy.deadline()).min()?;
        let now = sys::monotonic_now();
        // Round up to the next millisecond: epoll's resolution. Waking a
        // little early would cost a second, useless wakeup.
        let wait = earliest.saturating_sub(now);
        Some(Duration::from_millis(wait.as_nanos().div_ceil(1_000_000) as u64))
    }

    fn fire_deadlines(&mut self) {
        let now = sys::monotonic_now();
        for index in 0..self.slots.len() {
            if self.slots[index].policy.deadline().is_some_and(|at| at <= now) {
                self.deliver(index, Event::Tick);
            }
        }
    }

    // ---- signals and the reaper ----

    fn handle_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            match signal {
                libc::SIGCHLD => self.reap(),
                libc::SIGHUP => {
                    self.output.event("reload is not available yet: ignoring SIGHUP");
                }
                _ => self.shutdown_signal(signal),
            }
        }
    }

    fn reap(&mut self) {
        let mut reaped = Vec::new();
        reaper::reap_all(|pid, status| reaped.push((pid, status)));
        for (pid, status) in reaped {
            self.on_reaped(pid, status);
        }
        // Leaders gone but groups not yet empty: check them again.
        for index in 0..self.slots.len() {
            if let State::Stopping { leader, leader_alive: false, .. } = *self.slots[index].policy.state() {
                if !sys::group_has_members(leader) {
                    self.deliver(index, Event::GroupEmpty);
                }
            }
        }
    }

    fn on_reaped(&mut self, pid: i32, status: ExitStatus) {
        let Some(index) = self.pids.remove(&pid) else {
            // An orphan re-parented to us, or a leftover of a group: reaped,
            // nothing else to do.
            return;
        };
        if self.slots[index].exec.as_ref().is_some_and(|w| w.pid == pid) {
            // The child is gone, so every write end of its status pipe is
            // closed: what it wrote, if anything, is there to read now.
            self.drain_exec_status(index);
            match self.finish_exec_watch(index) {
                Some(Err(error)) => {
                    self.deliver(index, Event::SpawnFailed { reason: error.to_string() });
                    return;
                }
                Some(Ok(())) | None => {}
            }
        }
        let group_remains = self.slots[index].unit.process_group && sys::group_has_members(pid);
        self.deliver(index, Event::Exited { pid, status, group_remains });
    }

    fn shutdown_signal(&mut self, signal: i32) {
        match self.phase {
            Phase::Running => {
                self.output.event(&format!("shutting down ({})", signal_name(signal)));
                self.begin_shutdown();
            }
            Phase::ShuttingDown { escalated: false } if signal != libc::SIGQUIT => {
                self.output
                    .event(&format!("second {}: killing every service now (SIGKILL)", signal_name(signal)));
                self.phase = Phase::ShuttingDown { escalated: true };
                for index in 0..self.slots.len() {
                    self.deliver(index, Event::Kill);
                }
            }
            Phase::ShuttingDown { .. } => {}
        }
    }

    fn begin_shutdown(&mut self) {
        self.phase = Phase::ShuttingDown { escalated: false };
        for index in 0..self.slots.len() {
            self.deliver(index, Event::Stop);
        }
    }

    // ---- the policy and its actions ----

    fn deliver(&mut self, index: usize, event: Event) {
        let now = sys::monotonic_now();
        let actions = self.slots[index].policy.handle(now, event);
        for action in actions {
            self.execute(index, now, action);
        }
    }

    fn execute(&mut self, index: usize, now: Time, action: Action) {
        let _ = now;
        match action {
            Action::Spawn => {
                if matches!(self.phase, Phase::ShuttingDown { .. }) {
                    // Never start anything while going down (a restart that
                    // was pending when the shutdown began).
                    return;
                }
                self.spawn_service(index);
            }
            Action::Signal { pid, signal, group } => {
                if let Err(err) = sys::send_signal(pid, signal, group) {
                    let name = &self.slots[index].unit.name;
                    self.output.event(&format!("{name}: cannot send {}: {err}", signal_name(signal)));
                }
            }
            Action::Notice(notice) => {
                let text = describe_notice(&notice);
                let name = &self.slots[index].unit.name;
                self.output.event(&format!("{name}: {text}"));
            }
            Action::Ended { exit_code } => {
                if self.slots[index].unit.critical && matches!(self.phase, Phase::Running) {
                    let name = &self.slots[index].unit.name;
                    self.output.event(&format!("{name}: critical service ended, stopping everything"));
                    self.critical_exit = Some(exit_code);
                    self.begin_shutdown();
                }
            }
        }
    }

    fn spawn_service(&mut self, index: usize) {
        match self.try_spawn(index) {
            Ok(pid) => self.deliver(index, Event::Spawned { pid }),
            Err(reason) => self.deliver(index, Event::SpawnFailed { reason }),
        }
    }

    /// Fork the service; on success its pid is in the index and its pipes
    /// are registered before the loop can reap again.
    fn try_spawn(&mut self, index: usize) -> Result<i32, String> {
        let (out_read, out_write) = spawn::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let (err_read, err_write) = spawn::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let stdio =
            [Stdio::Fd(self.devnull.as_raw_fd()), Stdio::Fd(out_write.as_raw_fd()), Stdio::Fd(err_write.as_raw_fd())];
        let plan = ExecPlan::for_service(&self.slots[index].unit, self.environment.iter().cloned(), stdio, self.pdeathsig)
            .map_err(|e| format!("cannot prepare the command: {}", e.0))?;
        let child = spawn::spawn(&plan).map_err(|e| format!("cannot fork: {e}"))?;
        drop(out_write);
        drop(err_write);
        self.pids.insert(child.pid, index);
        for (fd, dest) in [(out_read, Dest::Stdout), (err_read, Dest::Stderr)] {
            self.add_stream(index, fd, dest);
        }
        let token = self.token();
        match self.poll.registry().register(&mut SourceFd(&child.exec_status.as_raw_fd()), token, Interest::READABLE) {
            Ok(()) => {
                self.exec_tokens.insert(token, index);
            }
            Err(err) => {
                // Without the watch we learn the outcome at reap time.
                self.output.event(&format!("cannot watch an exec-status pipe: {err}"));
            }
        }
        self.slots[index].exec =
            Some(ExecWatch { pid: child.pid, token, fd: child.exec_status, bytes: Vec::new(), plan, eof: false });
        Ok(child.pid)
    }

    fn token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        token
    }

    fn add_stream(&mut self, slot: usize, fd: OwnedFd, dest: Dest) {
        if let Err(err) = spawn::set_nonblocking(&fd) {
            self.output.event(&format!("cannot read service output: {err}"));
            return;
        }
        let token = self.token();
        if let Err(err) = self.poll.registry().register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE) {
            self.output.event(&format!("cannot read service output: {err}"));
            return;
        }
        self.streams.insert(token, Stream { slot, fd, dest, framer: LineFramer::default() });
    }

    // ---- exec status ----

    fn read_exec_status(&mut self, index: usize) {
        self.drain_exec_status(index);
        let eof_without_error = self.slots[index].exec.as_ref().is_some_and(|w| w.eof && w.bytes.is_empty());
        if eof_without_error {
            self.finish_exec_watch(index);
            self.deliver(index, Event::ExecConfirmed);
        }
        // With an error report, wait for the reap: the policy hears of the
        // failure once the child is gone.
    }

    fn drain_exec_status(&mut self, index: usize) {
        let Some(watch) = self.slots[index].exec.as_mut() else { return };
        let mut buf = [0u8; 64];
        while !watch.eof {
            match sys::read(watch.fd.as_raw_fd(), &mut buf) {
                Ok(0) => watch.eof = true,
                Ok(n) => watch.bytes.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    /// Stop watching; `Some(Err)` when the child reported a failed step.
    fn finish_exec_watch(&mut self, index: usize) -> Option<Result<(), SpawnError>> {
        let watch = self.slots[index].exec.take()?;
        let _ = self.poll.registry().deregister(&mut SourceFd(&watch.fd.as_raw_fd()));
        self.exec_tokens.remove(&watch.token);
        match spawn::decode_report(&watch.plan, &watch.bytes) {
            Some(error) => Some(Err(error)),
            None => Some(Ok(())),
        }
    }

    // ---- output ----

    fn read_stream(&mut self, token: Token) {
        let Some(stream) = self.streams.get_mut(&token) else { return };
        let prefix = &self.slots[stream.slot].prefix;
        let mut closed = false;
        let mut more = true;
        for _ in 0..READS_PER_TURN {
            match sys::read(stream.fd.as_raw_fd(), &mut self.read_buffer) {
                Ok(0) => {
                    closed = true;
                    more = false;
                    break;
                }
                Ok(n) => {
                    self.output.push(prefix, &mut stream.framer, &self.read_buffer[..n], stream.dest);
                    if n < self.read_buffer.len() {
                        // A short read: the pipe is (nearly certainly) empty.
                        // The next readiness event tells us otherwise.
                        more = false;
                        break;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    more = false;
                    break;
                }
                Err(_) => {
                    closed = true;
                    more = false;
                    break;
                }
            }
        }
        if closed {
            let mut stream = self.streams.remove(&token).expect("stream present");
            let prefix = &self.slots[stream.slot].prefix;
            self.output.finish(prefix, &mut stream.framer, stream.dest);
            let _ = self.poll.registry().deregister(&mut SourceFd(&stream.fd.as_raw_fd()));
        } else if more {
            self.busy.push(token);
        }
        if self.output.pending() >= FLUSH_AT {
            self.output.flush();
        }
    }

    /// Before exiting: print whatever the services left in their pipes.
    fn drain_streams(&mut self) {
        let tokens: Vec<Token> = self.streams.keys().copied().collect();
        for token in tokens {
            for _ in 0..64 {
                if !self.streams.contains_key(&token) {
                    break;
                }
                self.read_stream(token);
                if !self.busy.contains(&token) {
                    break;
                }
                self.busy.retain(|t| *t != token);
            }
            if let Some(mut stream) = self.streams.remove(&token) {
                let prefix = &self.slots[stream.slot].prefix;
                self.output.finish(prefix, &mut stream.framer, stream.dest);
            }
        }
    }
}

fn describe_notice(notice: &Notice) -> String {
    match notice {
        Notice::Started { pid } => format!("started (pid {pid})"),
        Notice::Exited { status } => describe_exit(*status),
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
