//! `tend up`: many services on one loop, and the control socket beside them.

use super::{describe_exit, reaper, signal_name, ACTED_ON_SIGNALS, SHUTDOWN_SIGNALS};
use crate::ctl::server::{self, Access, Conn, Listener};
use crate::output::ring::{LogRing, DEFAULT_LINES};
use crate::output::sink::{self, FileSink, FileSinkConfig, Severity, SyslogSink};
use crate::output::{Dest, LineFramer, Output, Prefix};
use crate::policy::service::{Action, Config, Event, Notice, Service, StartFailure};
use crate::policy::ExitStatus;
use crate::spawn::{self, ExecPlan, SpawnError, Stdio};
use crate::sys;
use crate::unit::values::format_duration;
use crate::unit::{Diagnostic, UnitSpec};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub(super) const SIGNAL_TOKEN: Token = Token(0);
pub(super) const LISTENER_TOKEN: Token = Token(1);
pub(super) const NOTIFY_TOKEN: Token = Token(2);
/// tend's own stdout/stderr became writable again.
const OUTPUT_TOKEN: Token = Token(3);
/// The reload thread has loaded the units folder.
const RELOAD_TOKEN: Token = Token(4);
const FIRST_DYNAMIC_TOKEN: usize = 16;

/// How much one stream may read per turn before the others get theirs: a
/// service that writes without pause must not starve the rest or the loop.
const READ_CHUNK: usize = 64 * 1024;
const READS_PER_TURN: usize = 4;

/// Flush tend's own output once this much is queued.
const FLUSH_AT: usize = 256 * 1024;

pub struct SocketOptions {
    pub path: PathBuf,
    pub group: Option<u32>,
    /// The path is the default one, in tend's own runtime folder (checked
    /// and fixed as a private folder).
    pub private_dir: bool,
}

/// Loads the units folder for a reload: the same loader, with the same
/// checks, as `up` and `check` (`app::load_units`): the units, and warnings
/// (a command that cannot run), or every error. It runs on a thread of its
/// own, so it may block (user look-ups through NSS, a slow disk).
pub type LoadUnits = fn(&Path) -> Result<(Vec<UnitSpec>, Vec<Diagnostic>), Vec<Diagnostic>>;

pub struct StackOptions {
    /// The environment services inherit (tend's own, read once at start,
    /// without what is meant for tend itself).
    pub environment: Vec<(OsString, OsString)>,
    /// How `reload` and SIGHUP load the units folder.
    pub load_units: LoadUnits,
    /// Where the units came from, for `reload`.
    pub units_dir: PathBuf,
    /// The control socket; `None` runs without one.
    pub socket: Option<SocketOptions>,
    /// Send tend's own lifecycle events to syslog too.
    pub syslog_events: bool,
}

/// Where syslog lines go: `/dev/log`, or `$TEND_SYSLOG_SOCKET` (tests).
pub fn syslog_socket() -> PathBuf {
    std::env::var_os("TEND_SYSLOG_SOCKET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| "/dev/log".into())
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

pub(super) struct Slot {
    pub(super) unit: UnitSpec,
    pub(super) policy: Service,
    prefix: Prefix,
    exec: Option<ExecWatch>,
    /// Removed by a reload: stopping or stopped, no longer listed.
    pub(super) retired: bool,
    pub(super) history: LogRing,
    /// How many times it was forked (a restart is done when this moves).
    pub(super) spawns: u64,
    /// When the state last changed name, in wall-clock time, and that name.
    pub(super) state_since: SystemTime,
    state_name: &'static str,
    /// `log.file`, when set.
    pub(super) file_sink: Option<FileSink>,
    /// `log.syslog`, when set.
    pub(super) syslog: Option<SyslogSink>,
    /// Wanted up (by `up`, `start`, a reload) or down (by `stop`, shutdown).
    pub(super) wanted: bool,
    /// Wanted up but not started yet: waiting for its dependencies.
    pub(super) start_pending: bool,
    /// Why it is not started yet, and whether a dependency is down for good.
    pub(super) waiting: Option<(String, bool)>,
    /// Its stop was asked (after its dependents were down).
    pub(super) stop_sent: bool,
    /// `STATUS=` from sd_notify.
    pub(super) status_text: Option<String>,
    /// `MAINPID=` from sd_notify.
    pub(super) main_pid: Option<i32>,
    /// The s6 readiness pipe's read end (notify_fd), while not yet ready.
    pub(super) readiness_pipe: Option<(Token, OwnedFd)>,
    /// Ready and health checks.
    pub(super) checks: super::readiness::Checks,
    /// Its cgroup(s), made at its first start.
    pub(super) cgroup: Option<crate::sandbox::cgroup::ServiceCgroup>,
    /// The cgroup's OOM-kill count when the current process started.
    oom_kills_at_start: Option<u64>,
    /// The last process was killed by the OOM killer.
    pub(super) oom_killed: bool,
    /// The sandbox notice was shown.
    sandbox_noticed: bool,
    /// A reload changed `resources`: a new cgroup at the next start.
    pub(super) cgroup_stale: bool,
    /// Retired and down: its history, sinks and cgroup were released.
    released: bool,
}

pub(super) fn sinks_for(unit: &UnitSpec) -> (Option<FileSink>, Option<SyslogSink>) {
    let file = unit.log.file.as_ref().map(|path| {
        FileSink::new(FileSinkConfig {
            path: path.clone(),
            max_size: unit.log.max_size,
            keep: unit.log.keep,
            timestamps: unit.log.timestamps,
        })
    });
    let syslog = unit.log.syslog.then(|| {
        // The loader accepted only known names.
        let facility = sink::parse_facility(&unit.log.syslog_facility).unwrap_or(sink::Facility::LOG_DAEMON);
        SyslogSink::new(syslog_socket(), facility)
    });
    (file, syslog)
}

struct Stream {
    slot: usize,
    fd: OwnedFd,
    dest: Dest,
    framer: LineFramer,
    /// Lines for `logs -f` followers (only fed while someone follows).
    follow_framer: LineFramer,
    /// Lines for syslog (only fed when the unit sends there).
    syslog_framer: LineFramer,
    /// The unfinished last line, held back from the log file so that
    /// stdout and stderr never mix within a line there.
    file_tail: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Running,
    /// Stopping everything; `escalated` once SIGKILL was sent to all.
    ShuttingDown {
        escalated: bool,
    },
}

pub(super) struct Stack {
    poll: Poll,
    signals: Signals,
    pub(super) slots: Vec<Slot>,
    /// Leader pid → slot.
    pids: HashMap<i32, usize>,
    streams: HashMap<Token, Stream>,
    exec_tokens: HashMap<Token, usize>,
    next_token: usize,
    /// Streams that still had data when their turn ended.
    busy: Vec<Token>,
    pub(super) output: Output,
    environment: Vec<(OsString, OsString)>,
    devnull: OwnedFd,
    pdeathsig: Option<i32>,
    pub(super) phase: Phase,
    /// The exit status a critical service handed over.
    critical_exit: Option<i32>,
    read_buffer: Vec<u8>,
    pub(super) units_dir: PathBuf,
    pub(super) listener: Option<Listener>,
    pub(super) conns: HashMap<Token, Conn>,
    pub(super) waiters: Vec<super::control::Waiter>,
    pub(super) followers: usize,
    /// tend's own events to syslog (`tend up --syslog`).
    event_syslog: Option<SyslogSink>,
    /// The sd_notify socket, made when a unit first needs it.
    pub(super) notify: Option<crate::readiness::notify::NotifySocket>,
    /// Lines about ignored notify messages (any user can send them).
    pub(super) notify_throttle: crate::readiness::notify::Throttle,
    /// Lines about refused control connections.
    refusal_throttle: crate::readiness::notify::Throttle,
    /// tend's RLIMIT_NOFILE soft limit (raised to the hard one at start).
    fd_limit: u64,
    /// Where this tend's record of process groups is (without cgroups).
    record_dir: Option<PathBuf>,
    /// Exec checks in flight: pid → slot.
    pub(super) check_pids: HashMap<i32, usize>,
    /// tcp/http probes and s6 readiness pipes: token → slot.
    pub(super) check_tokens: HashMap<Token, usize>,
    /// Per-service cgroups (when the host lets us).
    cgroups: crate::sandbox::cgroup::CgroupManager,
    cgroup_warning_shown: bool,
    /// The service manager tend runs under (`NOTIFY_SOCKET`), told what the
    /// stack does.
    pub(super) systemd: Option<super::systemd::Notifier>,
    /// Signals already reported as ignored (bit N: signal N), so that a
    /// flood of one signal costs one line.
    ignored_reported: u128,
    /// epoll_wait failed: shutting down without the poller.
    poll_error: Option<String>,
    load_units: LoadUnits,
    /// A reload loading the folder on its thread, and who asked for it
    /// (a control connection, or `None` for SIGHUP).
    reloading: Option<Reloading>,
    /// Reloads asked while one was loading: they load again afterwards
    /// (the folder may have changed since the first one read it).
    reload_queued: Vec<Option<Token>>,
    waker: std::sync::Arc<mio::Waker>,
}

type Loaded = Result<(Vec<UnitSpec>, Vec<Diagnostic>), Vec<Diagnostic>>;

struct Reloading {
    done: std::sync::mpsc::Receiver<Loaded>,
    asked_by: Vec<Option<Token>>,
}

/// Supervise `units` until a shutdown signal or a critical service ends.
/// Returns tend's exit status.
pub fn run_stack(units: Vec<UnitSpec>, options: StackOptions) -> i32 {
    match Stack::new(units, options) {
        Ok(mut stack) => stack.run(),
        Err(err) => {
            eprintln!("tend: {err}");
            crate::exit::FAILURE
        }
    }
}

impl Stack {
    fn new(units: Vec<UnitSpec>, options: StackOptions) -> io::Result<Stack> {
        spawn::ensure_standard_fds();
        let fd_limit = sys::raise_nofile_limit();
        sys::ignore_sigpipe();
        sys::ignore_signal(libc::SIGTTIN);
        sys::ignore_signal(libc::SIGTTOU);
        // A mask inherited from whoever started tend (a shell, a runtime, a
        // program that blocked SIGCHLD or SIGTERM before exec) would keep
        // the signal handlers from ever running: no reaping, no shutdown.
        sys::unblock_all_signals();
        let poll = Poll::new()?;
        let listener = match &options.socket {
            None => None,
            Some(socket) => {
                // SAFETY-free: geteuid cannot fail.
                let own_uid = nix::unistd::geteuid().as_raw();
                match server::bind(&socket.path, Access { own_uid, group: socket.group }, socket.private_dir)
                {
                    Ok(mut listener) => {
                        poll.registry().register(
                            &mut listener.listener,
                            LISTENER_TOKEN,
                            Interest::READABLE,
                        )?;
                        Some(listener)
                    }
                    Err(server::BindError::AlreadyRunning { pid }) => {
                        let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                        return Err(io::Error::other(format!(
                            "another supervisor{who} is already running on {}; not starting",
                            socket.path.display()
                        )));
                    }
                    Err(server::BindError::Io(message)) => return Err(io::Error::other(message)),
                }
            }
        };
        let mut signals = Signals::new(
            SHUTDOWN_SIGNALS.iter().copied().chain(ACTED_ON_SIGNALS).chain(super::ignored_signals()),
        )?;
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
        let systemd = super::systemd::from_environment();
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), RELOAD_TOKEN)?);
        let devnull = std::fs::OpenOptions::new().read(true).open("/dev/null")?.into();
        let mut stack = Stack {
            poll,
            signals,
            slots: Vec::new(),
            pids: HashMap::new(),
            streams: HashMap::new(),
            exec_tokens: HashMap::new(),
            next_token: FIRST_DYNAMIC_TOKEN,
            busy: Vec::new(),
            output,
            environment: options.environment,
            systemd,
            devnull,
            pdeathsig,
            phase: Phase::Running,
            critical_exit: None,
            read_buffer: vec![0; READ_CHUNK],
            units_dir: options.units_dir,
            listener,
            conns: HashMap::new(),
            waiters: Vec::new(),
            followers: 0,
            notify: None,
            notify_throttle: crate::readiness::notify::Throttle::new(5, Duration::from_secs(10)),
            refusal_throttle: crate::readiness::notify::Throttle::new(5, Duration::from_secs(10)),
            fd_limit,
            record_dir: None,
            cgroups: crate::sandbox::cgroup::CgroupManager::detect(),
            cgroup_warning_shown: false,
            ignored_reported: 0,
            poll_error: None,
            load_units: options.load_units,
            reloading: None,
            reload_queued: Vec::new(),
            waker,
            check_pids: HashMap::new(),
            check_tokens: HashMap::new(),
            event_syslog: options
                .syslog_events
                .then(|| SyslogSink::new(syslog_socket(), sink::Facility::LOG_DAEMON)),
        };
        for fd in stack.output.watched_fds() {
            // Without the watch, output still goes out at every turn.
            let _ = stack.poll.registry().register(&mut SourceFd(&fd), OUTPUT_TOKEN, Interest::WRITABLE);
        }
        for unit in units {
            stack.add_slot(unit);
        }
        Ok(stack)
    }

    pub(super) fn add_slot(&mut self, unit: UnitSpec) -> usize {
        let index = self.slots.len();
        let (file_sink, syslog) = sinks_for(&unit);
        self.slots.push(Slot {
            file_sink,
            syslog,
            prefix: self.output.prefix(&unit.name, index),
            policy: Service::new(Config::from_unit(&unit)),
            unit,
            exec: None,
            retired: false,
            history: LogRing::new(DEFAULT_LINES),
            spawns: 0,
            state_since: SystemTime::now(),
            state_name: "stopped",
            wanted: false,
            start_pending: false,
            waiting: None,
            stop_sent: false,
            status_text: None,
            main_pid: None,
            readiness_pipe: None,
            checks: Default::default(),
            cgroup: None,
            oom_kills_at_start: None,
            oom_killed: false,
            sandbox_noticed: false,
            cgroup_stale: false,
            released: false,
        });
        index
    }

    /// Re-render every prefix for the current set of names (after a reload).
    pub(super) fn refresh_prefixes(&mut self) {
        let names: Vec<String> =
            self.slots.iter().filter(|s| !s.retired).map(|s| s.unit.name.clone()).collect();
        self.output.set_width(names.iter().map(|n| n.as_str()));
        for index in 0..self.slots.len() {
            let prefix = self.output.prefix(&self.slots[index].unit.name, index);
            self.slots[index].prefix = prefix;
        }
    }

    fn run(&mut self) -> i32 {
        self.kill_leftovers();
        for index in 0..self.slots.len() {
            self.want_up(index);
        }
        let mut events = Events::with_capacity(256);
        let mut trimmed_at_spawns = u64::MAX;
        loop {
            self.after_events();
            if self.finished() {
                break;
            }
            let timeout = if self.busy.is_empty() { self.next_timeout() } else { Some(Duration::ZERO) };
            // About to sleep with nothing due after spawning: give back what
            // start-up used (unit parsing, exec plans), once per burst.
            let spawns: u64 = self.slots.iter().map(|s| s.spawns).sum();
            if timeout.is_none() && spawns != trimmed_at_spawns {
                sys::release_free_memory();
                trimmed_at_spawns = spawns;
            }
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if err.kind() != io::ErrorKind::Interrupted {
                    self.without_poller(err, timeout);
                }
                continue;
            }
            for event in events.iter() {
                self.dispatch(event.token());
            }
            let busy = std::mem::take(&mut self.busy);
            for token in busy {
                self.dispatch(token);
            }
            self.fire_deadlines();
        }
        self.drain_streams();
        for slot in &mut self.slots {
            if let Some(cgroup) = slot.cgroup.take() {
                cgroup.remove();
            }
        }
        self.cgroups.cleanup();
        if let Some(dir) = &self.record_dir {
            let _ = std::fs::remove_file(super::leftovers::record_path(dir, sys::getpid()));
        }
        self.output.flush_all();
        self.close_control();
        self.exit_status()
    }

    /// epoll_wait failed (it should not: EBADF, EFAULT, EINVAL): leaving
    /// the loop would orphan every service, or, as PID 1, leave them
    /// running. Stop everything instead, looking at signals, children and
    /// deadlines by hand every few milliseconds, and exit 1.
    fn without_poller(&mut self, err: io::Error, timeout: Option<Duration>) {
        if self.poll_error.is_none() {
            self.event(&format!("poll failed: {err}; stopping every service"));
            self.poll_error = Some(err.to_string());
            if self.phase == Phase::Running {
                self.begin_shutdown();
            }
        }
        std::thread::sleep(timeout.unwrap_or(Duration::MAX).min(Duration::from_millis(10)));
        self.handle_signals();
        self.reap();
        self.fire_deadlines();
    }

    /// Once per turn: answer the waiters whose condition now holds, write
    /// to clients and to tend's own output.
    fn after_events(&mut self) {
        self.reconcile();
        self.release_retired();
        self.run_checks();
        self.note_state_changes();
        self.announce();
        self.check_waiters();
        self.enforce_output_budget();
        self.flush_conns();
        self.expire_idle_conns(sys::monotonic_now());
        self.flush_sinks();
        self.output.flush();
    }

    /// Tell the service manager (if any) what changed this turn.
    fn announce(&mut self) {
        let Some(systemd) = self.systemd.as_mut() else { return };
        let states: Vec<&str> =
            self.slots.iter().filter(|s| !s.retired).map(super::control::state_name).collect();
        // While the reload thread loads the folder, nothing has changed yet:
        // READY=1 waits until its result is applied and has settled.
        systemd.turn(&states, self.reloading.is_some());
    }

    /// A unit removed by a reload keeps its slot (indices stay valid) but
    /// not what it holds: once down, its history, sinks and cgroup go.
    fn release_retired(&mut self) {
        for slot in &mut self.slots {
            if slot.retired && !slot.released && slot.policy.is_down() {
                slot.released = true;
                slot.history = LogRing::new(1);
                slot.file_sink = None;
                slot.syslog = None;
                if let Some(cgroup) = slot.cgroup.take() {
                    cgroup.remove();
                }
            }
        }
    }

    /// Write out the log files, and report a sink that started failing
    /// (once: the sink says so only when a failure begins).
    fn flush_sinks(&mut self) {
        for index in 0..self.slots.len() {
            let Some(file) = self.slots[index].file_sink.as_mut() else { continue };
            file.flush();
            let error = file.take_new_error();
            let resumed = file.take_resumed();
            let name = self.slots[index].unit.name.clone();
            if let Some(error) = error {
                self.event(&format!("{name}: {error} (the service keeps running)"));
            }
            if let Some(lines) = resumed {
                self.event(&format!(
                    "{name}: writing its log file again; {lines} lines were dropped meanwhile"
                ));
            }
        }
    }

    /// One of tend's own messages: to stderr, and to syslog with `--syslog`.
    pub(super) fn event(&mut self, message: &str) {
        self.output.event(message);
        if let Some(syslog) = self.event_syslog.as_mut() {
            let severity =
                if message.contains("failed") || message.contains("cannot") || message.contains("SIGKILL") {
                    Severity::Warning
                } else {
                    Severity::Info
                };
            syslog.send("tend", sys::getpid() as u32, severity, message.as_bytes());
        }
    }

    fn dispatch(&mut self, token: Token) {
        if token == SIGNAL_TOKEN {
            self.handle_signals();
        } else if token == LISTENER_TOKEN {
            self.accept_clients();
        } else if token == OUTPUT_TOKEN {
            self.output.flush();
        } else if token == RELOAD_TOKEN {
            self.finish_reload();
        } else if token == NOTIFY_TOKEN {
            self.read_notify();
        } else if let Some(&slot) = self.check_tokens.get(&token) {
            self.check_event(slot, token);
        } else if let Some(&slot) = self.exec_tokens.get(&token) {
            self.read_exec_status(slot);
        } else if self.streams.contains_key(&token) {
            self.read_stream(token);
        } else if self.conns.contains_key(&token) {
            self.serve_conn(token);
        }
    }

    fn finished(&self) -> bool {
        matches!(self.phase, Phase::ShuttingDown { .. }) && self.slots.iter().all(|s| s.policy.is_down())
    }

    fn exit_status(&self) -> i32 {
        if let Some(err) = &self.poll_error {
            eprintln!("tend: exiting after a failed poll: {err}");
            return crate::exit::FAILURE;
        }
        if let Some(code) = self.critical_exit {
            return code;
        }
        if self.slots.iter().any(|s| s.policy.was_killed()) {
            return crate::exit::FAILURE;
        }
        crate::exit::OK
    }

    /// Sleep until the earliest deadline; `None` (forever) when none is due.
    fn next_timeout(&self) -> Option<Duration> {
        let systemd = self.systemd.as_ref().and_then(|s| s.deadline());
        let earliest = self
            .slots
            .iter()
            .flat_map(|s| [s.policy.deadline(), s.checks.deadline()])
            .flatten()
            .chain(self.idle_deadline())
            .chain(systemd)
            .min()?;
        let now = sys::monotonic_now();
        // Round up to the next millisecond (epoll's resolution): waking a
        // little early would cost a second, useless wakeup.
        let wait = earliest.saturating_sub(now);
        Some(Duration::from_millis(wait.as_nanos().div_ceil(1_000_000) as u64))
    }

    fn fire_deadlines(&mut self) {
        let now = sys::monotonic_now();
        if let Some(systemd) = self.systemd.as_mut().filter(|s| s.deadline().is_some_and(|at| at <= now)) {
            systemd.fire(now);
        }
        for index in 0..self.slots.len() {
            if self.slots[index].policy.deadline().is_some_and(|at| at <= now) {
                self.deliver(index, Event::Tick);
            }
            if self.slots[index].checks.deadline().is_some_and(|at| at <= now) {
                self.check_deadline(index, now);
            }
        }
    }

    /// Record when each service's state changed name (for `status`).
    fn note_state_changes(&mut self) {
        let now = SystemTime::now();
        for slot in &mut self.slots {
            let name = slot.policy.state_name();
            if name != slot.state_name {
                slot.state_name = name;
                slot.state_since = now;
            }
        }
    }

    // ---- reload ----

    /// Load the units folder on a thread of its own; `finish_reload`
    /// applies it once loaded. `asked_by`: the control connection waiting
    /// for the reply, `None` for SIGHUP.
    pub(super) fn begin_reload(&mut self, asked_by: Option<Token>) {
        if self.reloading.is_some() {
            self.reload_queued.push(asked_by);
            return;
        }
        if let Some(systemd) = self.systemd.as_mut() {
            systemd.reload_begins();
        }
        let (send, done) = std::sync::mpsc::channel();
        let (dir, load, waker) = (self.units_dir.clone(), self.load_units, self.waker.clone());
        let spawned = std::thread::Builder::new().name("tend-reload".into()).spawn(move || {
            // Signals are the loop's: none may interrupt a look-up here.
            sys::block_all_signals();
            let _ = send.send(load(&dir));
            let _ = waker.wake();
        });
        if let Err(err) = spawned {
            // No thread (EAGAIN): load here, as the loop's own work.
            self.event(&format!("cannot start a thread to load the units ({err}); loading on the loop"));
            let loaded = (self.load_units)(&self.units_dir);
            self.apply_loaded(loaded, vec![asked_by]);
            return;
        }
        self.reloading = Some(Reloading { done, asked_by: vec![asked_by] });
    }

    /// The reload thread is done (or woke us for nothing): apply what it
    /// loaded, answer who asked, and start the reloads asked meanwhile.
    fn finish_reload(&mut self) {
        let Some(reloading) = self.reloading.as_ref() else { return };
        let loaded = match reloading.done.try_recv() {
            Ok(loaded) => loaded,
            Err(std::sync::mpsc::TryRecvError::Empty) => return,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Err(vec![Diagnostic {
                file: self.units_dir.clone(),
                line: 0,
                column: 0,
                message: "the reload thread ended without a result".into(),
                hint: None,
            }]),
        };
        let asked_by = self.reloading.take().map(|r| r.asked_by).unwrap_or_default();
        self.apply_loaded(loaded, asked_by);
        let queued = std::mem::take(&mut self.reload_queued);
        if !queued.is_empty() {
            self.begin_reload(queued[0]);
            if let Some(reloading) = self.reloading.as_mut() {
                reloading.asked_by.extend(queued[1..].iter().copied());
            } else {
                self.reload_queued.extend(queued[1..].iter().copied());
            }
        }
    }

    fn apply_loaded(&mut self, loaded: Loaded, asked_by: Vec<Option<Token>>) {
        if self.phase != Phase::Running {
            // Shutting down: nothing starts any more.
            for token in asked_by.into_iter().flatten() {
                if let Some(conn) = self.conns.get_mut(&token) {
                    conn.busy = false;
                    conn.queue(&crate::ctl::proto::Reply::error(
                        crate::ctl::proto::ErrorCode::ShuttingDown,
                        "the supervisor is shutting down",
                    ));
                }
            }
            return;
        }
        let result = loaded.map(|(units, warnings)| {
            for warning in &warnings {
                self.event(&format!("warning: {warning}"));
            }
            let mut report = self.apply_reload(units);
            report.warnings = warnings.iter().map(|w| w.to_string()).collect();
            report
        });
        self.event(&super::control::describe_reload(&result));
        for token in asked_by.into_iter().flatten() {
            self.answer_reload(token, &result);
        }
    }

    // ---- signals and the reaper ----

    fn handle_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            match signal {
                libc::SIGCHLD => self.reap(),
                libc::SIGHUP => self.begin_reload(None),
                libc::SIGUSR1 => {
                    self.reopen_logs("SIGUSR1");
                }
                signal if SHUTDOWN_SIGNALS.contains(&signal) => self.shutdown_signal(signal),
                signal => {
                    let bit = 1u128 << (signal as u32 % 128);
                    if self.ignored_reported & bit == 0 {
                        self.ignored_reported |= bit;
                        self.event(&format!("ignoring {}", signal_name(signal)));
                    }
                }
            }
        }
    }

    fn reap(&mut self) {
        let mut reaped = Vec::new();
        reaper::reap_all(|pid, status| reaped.push((pid, status)));
        for (pid, status) in reaped {
            self.on_reaped(pid, status);
        }
        self.check_groups();
    }

    /// Leaders gone but groups not yet empty: check them again.
    fn check_groups(&mut self) {
        for index in 0..self.slots.len() {
            if let crate::policy::service::State::Stopping { leader, leader_alive: false, .. } =
                *self.slots[index].policy.state()
            {
                let cgroup_empty = self.slots[index].cgroup.as_ref().is_none_or(|c| c.is_empty());
                if !sys::group_has_members(leader) && cgroup_empty {
                    self.deliver(index, Event::GroupEmpty);
                }
            }
        }
    }

    fn on_reaped(&mut self, pid: i32, status: ExitStatus) {
        if let Some(index) = self.check_pids.remove(&pid) {
            self.check_exited(index, pid, status);
            return;
        }
        let Some(index) = self.pids.remove(&pid) else {
            // An orphan re-parented to us, or a leftover of a group: reaped,
            // nothing else to do.
            return;
        };
        if self.slots[index].exec.as_ref().is_some_and(|w| w.pid == pid) {
            // The child is gone, so every write end of its status pipe is
            // closed: what it wrote, if anything, is there to read now.
            self.drain_exec_status(index);
            if let Some(Err(error)) = self.finish_exec_watch(index) {
                let failure = StartFailure {
                    step: error.step.name().to_string(),
                    errno: (error.errno != 0).then(|| sys::errno_name(error.errno)),
                    message: error.to_string(),
                };
                self.deliver(index, Event::SpawnFailed { failure });
                return;
            }
        }
        let group_remains = self.slots[index].unit.process_group
            && (sys::group_has_members(pid)
                || self.slots[index].cgroup.as_ref().is_some_and(|c| !c.is_empty()));
        self.note_oom(index, status);
        self.deliver(index, Event::Exited { pid, status, group_remains });
    }

    /// A SIGKILL that came with a rise of the cgroup's OOM-kill counter was
    /// the OOM killer.
    fn note_oom(&mut self, index: usize, status: ExitStatus) {
        let slot = &mut self.slots[index];
        let Some(cgroup) = &slot.cgroup else { return };
        let killed = matches!(status, ExitStatus::Signaled { signal: libc::SIGKILL, .. });
        let rose = match (cgroup.oom_kills(), slot.oom_kills_at_start) {
            (Some(now), Some(before)) => now > before,
            (Some(now), None) => now > 0,
            _ => false,
        };
        if killed && rose {
            slot.oom_killed = true;
            let limit = slot
                .unit
                .resources
                .memory_max
                .map(|m| format!(" (memory_max {})", crate::supervise::format_bytes(m)))
                .unwrap_or_default();
            let message = format!("{}: killed by the OOM killer{limit}", slot.unit.name);
            self.event(&message);
        }
    }

    fn shutdown_signal(&mut self, signal: i32) {
        match self.phase {
            Phase::Running => {
                self.event(&format!("shutting down ({})", signal_name(signal)));
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

    /// Stop everything, dependents before what they depend on.
    pub(super) fn begin_shutdown(&mut self) {
        self.phase = Phase::ShuttingDown { escalated: false };
        if let Some(systemd) = self.systemd.as_mut() {
            systemd.shutdown_begins();
        }
        for index in 0..self.slots.len() {
            self.want_down(index);
        }
        self.reconcile();
    }

    // ---- the policy and its actions ----

    pub(super) fn deliver(&mut self, index: usize, event: Event) {
        let now = sys::monotonic_now();
        let actions = self.slots[index].policy.handle(now, event);
        for action in actions {
            self.execute(index, action);
        }
    }

    fn execute(&mut self, index: usize, action: Action) {
        match action {
            Action::Spawn => {
                if matches!(self.phase, Phase::ShuttingDown { .. }) || self.slots[index].retired {
                    // Never start anything while going down (a restart that
                    // was pending when the shutdown began), nor a removed unit.
                    return;
                }
                self.spawn_service(index);
            }
            Action::Signal { pid, signal, group } => {
                if let Err(err) = sys::send_signal(pid, signal, group) {
                    let name = &self.slots[index].unit.name;
                    self.output.event(&format!("{name}: cannot send {}: {err}", signal_name(signal)));
                }
                // Processes that left the process group (a double-forked
                // daemon) are still in the service's cgroup: they get the
                // same signal, and SIGKILL ends the whole cgroup.
                if let (true, Some(cgroup)) = (group, &self.slots[index].cgroup) {
                    if signal == libc::SIGKILL {
                        if let Err(err) = cgroup.kill_all() {
                            let name = &self.slots[index].unit.name;
                            self.output.event(&format!("{name}: cannot kill its cgroup: {err}"));
                        }
                    } else {
                        // Members of the process group already got it:
                        // a second SIGTERM can mean "stop now" to a daemon.
                        for member in cgroup.pids() {
                            if sys::process_group_of(member) != Some(pid) {
                                let _ = sys::send_signal(member, signal, false);
                            }
                        }
                    }
                }
            }
            Action::Notice(notice) => {
                let text = describe_notice(&notice);
                let name = &self.slots[index].unit.name;
                let message = format!("{name}: {text}");
                self.event(&message);
            }
            Action::Ended { exit_code } => {
                if self.slots[index].unit.critical
                    && self.phase == Phase::Running
                    && !self.slots[index].retired
                {
                    let message = format!(
                        "{}: critical service ended, stopping everything",
                        self.slots[index].unit.name
                    );
                    self.event(&message);
                    self.critical_exit = Some(exit_code);
                    self.begin_shutdown();
                }
            }
        }
    }

    fn spawn_service(&mut self, index: usize) {
        match self.try_spawn(index) {
            Ok(pid) => {
                self.slots[index].spawns += 1;
                if self.slots[index].cgroup.is_none() && self.pdeathsig.is_some() {
                    self.record_groups(index, pid);
                }
                self.deliver(index, Event::Spawned { pid });
            }
            Err(failure) => self.deliver(index, Event::SpawnFailed { failure }),
        }
    }

    /// Before anything starts: kill what a supervisor that was killed left
    /// (its cgroups; without cgroups, the process groups it recorded), so
    /// that no service runs twice, and say so.
    fn kill_leftovers(&mut self) {
        let mut found: Vec<(Option<i32>, usize)> = Vec::new();
        if self.cgroups.available().is_ok() {
            found.extend(self.cgroups.sweep_leftovers());
        }
        if self.pdeathsig.is_some() {
            let dir = crate::ctl::client::runtime_dir();
            found.extend(super::leftovers::sweep(&dir).into_iter().map(|(pid, n)| (Some(pid), n)));
        }
        for (pid, killed) in found {
            let whose = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            let plural = if killed == 1 { "" } else { "es" };
            self.event(&format!("killed {killed} process{plural} left by a previous tend{whose}"));
        }
    }

    /// A service started without a cgroup: record its process group (and
    /// those of the others), so that the next tend can kill them if this
    /// one is killed (see `leftovers`).
    fn record_groups(&mut self, index: usize, pid: i32) {
        let dir = crate::ctl::client::runtime_dir();
        let entries = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.cgroup.is_none())
            .filter_map(|(i, slot)| {
                let pid = if i == index { Some(pid) } else { slot.policy.pid() }?;
                Some((pid, sys::process_start_time(pid)?, slot.unit.process_group))
            })
            .collect();
        let Some(tend_start) = sys::process_start_time(sys::getpid()) else { return };
        let record = super::leftovers::Record { tend_pid: sys::getpid(), tend_start, entries };
        super::leftovers::write_record(&dir, &record);
        self.record_dir = Some(dir);
    }

    /// Fork the service; on success its pid is in the index and its pipes
    /// are registered before the loop can reap again.
    fn try_spawn(&mut self, index: usize) -> Result<i32, StartFailure> {
        let pipe = || spawn::pipe().map_err(|e| io_failure("pipe", &e, format!("cannot create a pipe: {e}")));
        let (out_read, out_write) = pipe()?;
        let (err_read, err_write) = pipe()?;
        let stdio = [
            Stdio::Fd(self.devnull.as_raw_fd()),
            Stdio::Fd(out_write.as_raw_fd()),
            Stdio::Fd(err_write.as_raw_fd()),
        ];
        let extra_env = self.readiness_env(index).map_err(|message| failure("notify_socket", message))?;
        let readiness_pipe = match self.slots[index].unit.notify_fd {
            Some(_) => Some(pipe()?),
            None => None,
        };
        let unit = &self.slots[index].unit;
        let mut plan = ExecPlan::for_service_with(
            unit,
            &unit.command,
            self.environment.iter().cloned(),
            &extra_env,
            stdio,
            self.pdeathsig,
        )
        .map_err(|e| failure("prepare", format!("cannot prepare the command: {}", e.0)))?;
        if let (Some((_, write_end)), Some(number)) = (&readiness_pipe, unit.notify_fd) {
            plan.set_extra_fd(write_end.as_raw_fd(), number);
        }
        // New limits after a reload: the old process is gone by now (the
        // restart stopped it, with the old cgroup), so the old cgroup can go.
        if self.slots[index].cgroup_stale {
            self.slots[index].cgroup_stale = false;
            if let Some(old) = self.slots[index].cgroup.take() {
                old.remove();
            }
        }
        self.sandbox_plan(index, &mut plan)?;
        self.slots[index].oom_kills_at_start = self.slots[index].cgroup.as_ref().and_then(|c| c.oom_kills());
        let child = spawn::spawn(&plan).map_err(|e| io_failure("fork", &e, format!("cannot fork: {e}")))?;
        drop(out_write);
        drop(err_write);
        self.pids.insert(child.pid, index);
        self.slots[index].oom_killed = false;
        self.slots[index].status_text = None;
        self.slots[index].main_pid = None;
        if let Some((read_end, write_end)) = readiness_pipe {
            drop(write_end);
            self.watch_readiness_pipe(index, read_end);
        }
        for (fd, dest) in [(out_read, Dest::Stdout), (err_read, Dest::Stderr)] {
            self.add_stream(index, fd, dest);
        }
        let token = self.token();
        match self.poll.registry().register(
            &mut SourceFd(&child.exec_status.as_raw_fd()),
            token,
            Interest::READABLE,
        ) {
            Ok(()) => {
                self.exec_tokens.insert(token, index);
            }
            Err(err) => {
                // Without the watch we learn the outcome at reap time.
                self.output.event(&format!("cannot watch an exec-status pipe: {err}"));
            }
        }
        self.slots[index].exec = Some(ExecWatch {
            pid: child.pid,
            token,
            fd: child.exec_status,
            bytes: Vec::new(),
            plan,
            eof: false,
        });
        Ok(child.pid)
    }

    /// The service's cgroup (made at its first start) and its sandbox, into
    /// `plan`. Exec checks get the same, as they run like the service.
    pub(super) fn sandbox_plan(&mut self, index: usize, plan: &mut ExecPlan) -> Result<(), StartFailure> {
        let unit = &self.slots[index].unit;
        let resources = unit.resources;
        if self.slots[index].cgroup.is_none() {
            match self.cgroups.available() {
                Ok(()) => match self.cgroups.create(&unit.name, &resources) {
                    Ok(cgroup) => self.slots[index].cgroup = Some(cgroup),
                    Err(err) if resources.is_set() => {
                        return Err(failure("cgroup", format!("cannot create its cgroup: {err}")));
                    }
                    Err(err) => {
                        let name = unit.name.clone();
                        self.event(&format!(
                            "{name}: cannot create its cgroup ({err}); stopping it will use its process group only"
                        ));
                    }
                },
                Err(reason) if resources.is_set() => {
                    return Err(failure("cgroup", format!("cannot enforce resources: {reason}")))
                }
                Err(reason) => {
                    if !self.cgroup_warning_shown {
                        self.cgroup_warning_shown = true;
                        let warning = crate::sandbox::cgroup::unavailable_warning(&reason);
                        self.event(&warning);
                    }
                }
            }
        }
        let slot = &mut self.slots[index];
        if let Some(cgroup) = &slot.cgroup {
            plan.set_cgroup_fds(cgroup.join_fds(), cgroup.clone_into());
        }
        let unit = &slot.unit;
        if unit.sandbox != crate::unit::SandboxSpec::default() {
            let uid = unit.identity.as_ref().map(|i| i.uid);
            let confine = crate::sandbox::confine::ConfinePlan::new(&unit.sandbox, uid)
                .map_err(|e| failure("sandbox", format!("cannot prepare the sandbox: {e}")))?;
            if let Some(notice) = confine.notice().filter(|_| !slot.sandbox_noticed) {
                let message = format!("{}: {notice}", unit.name);
                slot.sandbox_noticed = true;
                self.event(&message);
            }
            plan.set_confine(confine);
        }
        Ok(())
    }

    pub(super) fn registry_register(&self, fd: i32, token: Token) -> io::Result<()> {
        self.poll.registry().register(&mut SourceFd(&fd), token, Interest::READABLE)
    }

    pub(super) fn registry_deregister(&self, fd: i32) {
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
    }

    pub(super) fn register_probe(
        &self,
        probe: &mut crate::readiness::probe::Probe,
        token: Token,
    ) -> io::Result<()> {
        self.poll.registry().register(&mut probe.stream, token, Interest::READABLE | Interest::WRITABLE)
    }

    pub(super) fn deregister_probe(&self, probe: &mut crate::readiness::probe::Probe) {
        let _ = self.poll.registry().deregister(&mut probe.stream);
    }

    pub(super) fn devnull_fd(&self) -> i32 {
        self.devnull.as_raw_fd()
    }

    pub(super) fn environment_iter(&self) -> impl Iterator<Item = (OsString, OsString)> + '_ {
        self.environment.iter().cloned()
    }

    pub(super) fn pdeathsig_value(&self) -> Option<i32> {
        self.pdeathsig
    }

    /// Handle `token` again next turn without waiting for a new event.
    pub(super) fn requeue(&mut self, token: Token) {
        if !self.busy.contains(&token) {
            self.busy.push(token);
        }
    }

    pub(super) fn token(&mut self) -> Token {
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
        if let Err(err) =
            self.poll.registry().register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
        {
            self.output.event(&format!("cannot read service output: {err}"));
            return;
        }
        self.streams.insert(
            token,
            Stream {
                slot,
                fd,
                dest,
                framer: LineFramer::default(),
                follow_framer: LineFramer::default(),
                syslog_framer: LineFramer::default(),
                file_tail: Vec::new(),
            },
        );
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

    /// Read a service's pipe: every line goes to the history ring, the log
    /// file, syslog and `logs -f` followers, whatever tend's own stdout is
    /// doing (a slow reader there costs only that copy; see `output::channel`).
    fn read_stream(&mut self, token: Token) {
        let Some(stream) = self.streams.get_mut(&token) else { return };
        let slot = &mut self.slots[stream.slot];
        let mut closed = false;
        let mut more = true;
        let mut follow_lines: Vec<Vec<u8>> = Vec::new();
        for _ in 0..READS_PER_TURN {
            match sys::read(stream.fd.as_raw_fd(), &mut self.read_buffer) {
                Ok(0) => {
                    closed = true;
                    more = false;
                    break;
                }
                Ok(n) => {
                    let data = &self.read_buffer[..n];
                    let now = SystemTime::now();
                    self.output.push(&slot.prefix, &mut stream.framer, data, stream.dest);
                    slot.history.push(now, stream.dest, data);
                    if self.followers > 0 {
                        stream.follow_framer.lines(data, |line| follow_lines.push(line.to_vec()));
                    }
                    if let Some(file) = slot.file_sink.as_mut() {
                        write_whole_lines(file, &mut stream.file_tail, now, data);
                    }
                    if let Some(syslog) = slot.syslog.as_mut() {
                        let severity = match stream.dest {
                            Dest::Stdout => Severity::Info,
                            Dest::Stderr => Severity::Warning,
                        };
                        let pid = slot.policy.pid().unwrap_or(0) as u32;
                        let tag = &slot.unit.name;
                        stream.syslog_framer.lines(data, |line| syslog.send(tag, pid, severity, line));
                    }
                    // Even after a short read, read on until EAGAIN or EOF:
                    // the writer may already have closed its end, and an
                    // edge-triggered poller reports that hang-up only once,
                    // together with the data just read.
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
        let (slot_index, dest) = (stream.slot, stream.dest);
        if closed {
            let mut stream = self.streams.remove(&token).expect("stream present");
            self.finish_stream(&mut stream);
            if self.followers > 0 {
                if let Some(last) = stream.follow_framer.take_partial() {
                    follow_lines.push(last);
                }
            }
            let _ = self.poll.registry().deregister(&mut SourceFd(&stream.fd.as_raw_fd()));
        } else if more {
            self.busy.push(token);
        }
        if !follow_lines.is_empty() {
            self.send_to_followers(slot_index, dest, &follow_lines);
        }
        if self.output.pending() >= FLUSH_AT {
            self.output.flush();
        }
    }

    /// A stream ended: its unfinished last line still goes everywhere.
    fn finish_stream(&mut self, stream: &mut Stream) {
        let slot = &mut self.slots[stream.slot];
        self.output.finish(&slot.prefix, &mut stream.framer, stream.dest);
        if !stream.file_tail.is_empty() {
            if let Some(file) = slot.file_sink.as_mut() {
                stream.file_tail.push(b'\n');
                file.write(SystemTime::now(), &stream.file_tail);
            }
            stream.file_tail.clear();
        }
        if let (Some(syslog), Some(last)) = (slot.syslog.as_mut(), stream.syslog_framer.take_partial()) {
            let severity = if stream.dest == Dest::Stderr { Severity::Warning } else { Severity::Info };
            syslog.send(&slot.unit.name, 0, severity, &last);
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
                self.output.flush();
                self.read_stream(token);
                if !self.busy.contains(&token) {
                    break;
                }
                self.busy.retain(|t| *t != token);
            }
            if let Some(mut stream) = self.streams.remove(&token) {
                self.finish_stream(&mut stream);
            }
        }
    }

    // ---- control connections (the requests are in `control`) ----

    /// Accept the connections waiting (a bounded number per turn), each
    /// only within the limits of `ctl::limits`.
    fn accept_clients(&mut self) {
        let now = sys::monotonic_now();
        for _ in 0..64 {
            let Some(listener) = self.listener.as_ref() else { return };
            let access = listener.access;
            match listener.listener.accept() {
                Ok((stream, _)) => {
                    let fd = stream.as_raw_fd() as u64;
                    let mut conn = Conn::new(stream, now);
                    if let Err(reason) = server::check_peer(&conn.stream, access) {
                        conn.queue(&crate::ctl::proto::Reply::error(
                            crate::ctl::proto::ErrorCode::PermissionDenied,
                            reason,
                        ));
                        conn.closing = true;
                    } else {
                        use crate::ctl::limits::{admit, idle_longest, Admission};
                        let idle = idle_longest(
                            self.conns
                                .iter()
                                .map(|(t, c)| (*t, c.last_active, c.busy || c.following.is_some())),
                        );
                        match admit(self.conns.len(), fd, self.fd_limit, idle) {
                            Admission::Accept => {}
                            Admission::AcceptClosing(old) => {
                                if let Some(old_conn) = self.conns.get_mut(&old) {
                                    old_conn.close_with(
                                        crate::ctl::proto::ErrorCode::TooManyConnections,
                                        "closed to make room: too many connections, and this one was idle",
                                    );
                                    old_conn.flush();
                                }
                                self.drop_conn(old);
                            }
                            Admission::Refuse(why) => {
                                // Told at once, best effort, and closed: it is not kept.
                                conn.close_with(crate::ctl::proto::ErrorCode::TooManyConnections, &why);
                                conn.flush();
                                if self.refusal_throttle.admit(now).is_some() {
                                    self.output.event(&format!("refused a control connection: {why}"));
                                }
                                continue;
                            }
                        }
                    }
                    let token = self.token();
                    if self
                        .poll
                        .registry()
                        .register(&mut conn.stream, token, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        self.conns.insert(token, conn);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // EMFILE and friends: say so, and try again on the next event.
                    if self.refusal_throttle.admit(now).is_some() {
                        self.output.event(&format!("cannot accept a control connection: {err}"));
                    }
                    return;
                }
            }
        }
        // More may be waiting: next turn, after the others.
        self.requeue(LISTENER_TOKEN);
    }

    /// Close connections that sent no complete request for
    /// `IDLE_TIMEOUT` while waiting for nothing; drop those that were
    /// closing and could not even take their last reply in that time.
    fn expire_idle_conns(&mut self, now: crate::policy::Time) {
        let mut dead = Vec::new();
        for (token, conn) in self.conns.iter_mut() {
            let waiting = conn.busy || conn.following.is_some();
            if crate::ctl::limits::idle_deadline(conn.last_active, waiting).is_none_or(|at| at > now) {
                continue;
            }
            if conn.closing {
                dead.push(*token);
            } else {
                let secs = crate::ctl::limits::IDLE_TIMEOUT.as_secs();
                conn.close_with(
                    crate::ctl::proto::ErrorCode::Idle,
                    &format!("no request within {secs}s: closing the connection"),
                );
                conn.last_active = now;
                conn.flush();
            }
        }
        for token in dead {
            self.drop_conn(token);
        }
    }

    /// The output queued for all connections fits `TOTAL_OUTPUT`: the
    /// biggest backlogs (followers that stopped reading) are cut first.
    fn enforce_output_budget(&mut self) {
        let queued: Vec<(Token, usize)> = self.conns.iter().map(|(t, c)| (*t, c.queued())).collect();
        for token in crate::ctl::limits::over_budget(&queued, crate::ctl::limits::TOTAL_OUTPUT) {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.discard_output();
                conn.close_with(
                    crate::ctl::proto::ErrorCode::TooSlow,
                    "client fell too far behind while others did too; dropping the connection",
                );
                conn.flush();
            }
        }
    }

    /// The earliest time a connection goes idle.
    fn idle_deadline(&self) -> Option<crate::policy::Time> {
        self.conns
            .values()
            .filter_map(|c| crate::ctl::limits::idle_deadline(c.last_active, c.busy || c.following.is_some()))
            .min()
    }

    fn flush_conns(&mut self) {
        let mut dead = Vec::new();
        for (token, conn) in self.conns.iter_mut() {
            if conn.has_pending_output() {
                conn.flush();
            }
            if conn.dead {
                dead.push(*token);
            }
        }
        for token in dead {
            self.drop_conn(token);
        }
    }

    pub(super) fn drop_conn(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            if conn.following.is_some() {
                self.followers -= 1;
            }
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
        self.waiters.retain(|w| w.conn != token);
    }

    /// At exit: what is queued goes out as far as it can without blocking;
    /// closing the connections tells `tend shutdown` we are gone.
    fn close_control(&mut self) {
        for conn in self.conns.values_mut() {
            conn.flush();
        }
        self.conns.clear();
        self.listener = None;
    }
}

/// A start that failed in tend, before or at the fork, at `step`.
fn failure(step: &str, message: String) -> StartFailure {
    StartFailure { step: step.to_string(), errno: None, message }
}

/// The same, with the errno of `error`.
fn io_failure(step: &str, error: &io::Error, message: String) -> StartFailure {
    StartFailure { step: step.to_string(), errno: error.raw_os_error().map(sys::errno_name), message }
}

/// Give the log file only whole lines of one stream: the unfinished tail
/// waits in `tail` (so stdout and stderr never mix within a line), up to
/// the longest line tend keeps whole.
fn write_whole_lines(file: &mut FileSink, tail: &mut Vec<u8>, time: SystemTime, data: &[u8]) {
    match memchr::memrchr(b'\n', data) {
        Some(last) => {
            if !tail.is_empty() {
                file.write(time, tail);
                tail.clear();
            }
            file.write(time, &data[..=last]);
            tail.extend_from_slice(&data[last + 1..]);
        }
        None => tail.extend_from_slice(data),
    }
    if tail.len() >= crate::output::MAX_LINE {
        tail.push(b'\n');
        file.write(time, tail);
        tail.clear();
    }
}

fn describe_notice(notice: &Notice) -> String {
    match notice {
        Notice::Started { pid } => format!("started (pid {pid})"),
        Notice::Ready => "ready".to_string(),
        Notice::NotReadyInTime { timeout } => {
            format!("did not become ready within {}, stopping it", format_duration(*timeout))
        }
        Notice::WatchdogExpired { timeout } => {
            format!("watchdog timeout: no WATCHDOG=1 within {}, stopping it", format_duration(*timeout))
        }
        Notice::TimedOut { timeout } => format!("timed out after {}, stopping it", format_duration(*timeout)),
        Notice::Unhealthy { failures } => {
            format!(
                "health check failed {failures} time{} in a row, stopping it",
                if *failures == 1 { "" } else { "s" }
            )
        }
        Notice::Failed { failure } => format!("failed: {}", failure.describe()),
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
