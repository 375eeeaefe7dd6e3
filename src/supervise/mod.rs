//! THE loop: one thread, one poller, one reaper, and the adapter between
//! the kernel and the core.
//!
//! It turns what the kernel says (a signal, a reaped child, bytes on a
//! pipe, a datagram, a client's request, a deadline) into core events,
//! carries out the actions the core returns (fork, kill, run a check,
//! reply, log), and sleeps until the core's next deadline, or forever when
//! none is due, so an idle tend never wakes up. Every decision is the
//! core's (`tend_core`): this module must not decide policy, only do I/O.
//!
//! Its parts: the registry of event sources ([`sources`]: one slab of typed
//! entries, one per token), the spawner ([`spawner`]), services' output
//! ([`streams`]), readiness messages ([`notify`]), the I/O of checks
//! ([`checks`]), control connections ([`control`]), what tend tells the
//! service manager that runs it ([`systemd`]) and the reaper, the only
//! `waitpid` ([`reaper`]). None of them imports this file.

mod checks;
mod control;
mod leftovers;
mod notify;
mod reaper;
pub mod run;
mod sources;
mod spawner;
mod streams;
mod systemd;

use crate::ctl::limits;
use crate::ctl::proto::{ErrorCode, Reply, StatusReply};
use crate::ctl::server::{self, Access, Conn, Listener};
use crate::metrics::{
    self,
    http::{self, HttpConn},
};
use crate::output::file::{FileSink, FileSinkConfig};
use crate::output::ring::{HistoryLine, LogRing, DEFAULT_LINES};
use crate::output::syslog::{self, Severity, SyslogSink};
use crate::output::{Dest, Output};
use crate::readiness::notify::Throttle;
use crate::sys;
use crate::unit::{Diagnostic, UnitSpec};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::Signal;
use signal_hook_mio::v1_0::Signals;
use sources::{Kind, Source, Sources};
use spawner::{ExecStatus, Spawner, StdinFrom, Streams};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime};
use streams::{Fanout, OutputStream, ServiceSinks};
use tend_core::proto::CheckKind;
use tend_core::{
    Action, ConnId, Core, Event, ExitStatus, Input, Level, Output as Piped, PipeId, Refused, ServiceId, Stdio,
};

/// The signals that end a supervisor: SIGTERM, SIGINT, SIGQUIT.
pub const SHUTDOWN_SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT];

/// Signals `tend up` acts on besides those: SIGCHLD (reap), SIGHUP
/// (reload), SIGUSR1 (reopen the log files, as nginx, rsyslog and
/// logrotate's `postrotate` expect).
pub const ACTED_ON_SIGNALS: [i32; 3] = [libc::SIGCHLD, libc::SIGHUP, libc::SIGUSR1];

/// Signals `tend up` catches only to say once that it ignores them: every
/// other catchable signal whose default action would terminate or stop it
/// (signal(7)), real-time ones included. A stray `kill -USR2` must not take
/// every service down with the supervisor.
///
/// Left alone: SIGPIPE (set to SIG_IGN, so a closed stdout gives EPIPE);
/// SIGTTIN and SIGTTOU (set to SIG_IGN: with a handler, a write of a
/// background tend to a terminal under `stty tostop` would be restarted and
/// stopped again forever, tty_check_change in the kernel); and the
/// synchronous faults SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS and
/// SIGABRT, which mean tend itself crashed: a handler that returns would
/// run the faulting instruction again.
pub fn ignored_signals() -> Vec<i32> {
    let mut signals = vec![
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGSTKFLT,
        libc::SIGTSTP,
    ];
    signals.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    signals
}

/// Starts between two trims of the heap (see `run`).
const TRIM_AFTER_SPAWNS: u64 = 32;

/// Flush tend's own output once this much is queued.
const FLUSH_AT: usize = 256 * 1024;

/// Connections accepted from one listener in one loop turn: a flood of
/// connects cannot hold up the other sources.
const ACCEPTS_PER_TURN: usize = 64;

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
pub type LoadUnits = fn(&Path) -> Loaded;

/// What loading the units folder gave: the units and warnings, or every error.
pub type Loaded = Result<(Vec<UnitSpec>, Vec<Diagnostic>), Vec<Diagnostic>>;

pub struct UpOptions {
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
    /// `tend up NAME…`: start only these (and what they depend on); empty:
    /// every enabled unit.
    pub only: Vec<String>,
    /// Serve `GET /metrics` here (`--metrics-listen`).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Where syslog lines go: `/dev/log`, or `$TEND_SYSLOG_SOCKET` (tests).
pub fn syslog_socket() -> PathBuf {
    std::env::var_os("TEND_SYSLOG_SOCKET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| "/dev/log".into())
}

fn sinks_for(unit: &UnitSpec) -> (Option<Box<FileSink>>, Option<Box<SyslogSink>>) {
    let file = unit.log.file.as_ref().map(|path| {
        Box::new(FileSink::new(FileSinkConfig {
            path: path.clone(),
            max_size: unit.log.max_size,
            keep: unit.log.keep,
            timestamps: unit.log.timestamps,
        }))
    });
    let syslog = unit.log.syslog.then(|| {
        // The loader accepted only known names.
        let facility =
            syslog::parse_facility(&unit.log.syslog_facility).unwrap_or(syslog::Facility::LOG_DAEMON);
        Box::new(SyslogSink::new(syslog_socket(), facility))
    });
    (file, syslog)
}

/// The loop's side of one service: its output's sinks and the sources
/// that are its.
struct ServiceIo {
    sinks: ServiceSinks,
    /// Its exec-status watch, until the exec is confirmed.
    exec: Option<Token>,
    /// Its s6 readiness pipe, until ready.
    ready_pipe: Option<Token>,
    /// Its check in flight.
    check: Option<checks::Running>,
}

/// A `logs` request, as the core passed it on.
struct LogsRequest {
    conn: ConnId,
    services: Vec<ServiceId>,
    own: bool,
    lines: usize,
    follow: bool,
    since: Option<SystemTime>,
    stream: Option<tend_core::proto::Stream>,
}

/// A reload loading the folder on its thread, and who asked for it.
struct Reloading {
    done: mpsc::Receiver<Loaded>,
    asked_by: Vec<ConnId>,
}

/// Supervise `units` until a shutdown signal or a critical service ends.
/// Returns tend's exit status.
pub fn run_up(units: Vec<UnitSpec>, options: UpOptions) -> i32 {
    match Supervisor::new(units, options) {
        Ok(mut supervisor) => supervisor.run(),
        Err(err) => {
            eprintln!("tend: {err}");
            // `tend up NAME…` with a name no unit has: a usage error.
            if err.kind() == io::ErrorKind::InvalidInput {
                crate::exit::USAGE
            } else {
                crate::exit::FAILURE
            }
        }
    }
}

struct Supervisor {
    core: Core<UnitSpec>,
    poll: Poll,
    sources: Sources,
    signals: Signals,
    /// Per service, by id.
    io: Vec<ServiceIo>,
    /// The pipes between services, by consumer: (read end, write end), both
    /// held from the core's `OpenPipe` to its `ClosePipe`, so that neither
    /// side's restart loses what the pipe holds or ends the consumer's input.
    pipes: HashMap<PipeId, (OwnedFd, OwnedFd)>,
    spawner: Spawner,
    notify: notify::Notify,
    /// Exec checks not yet reaped: pid → service (a check given up on stays
    /// until reaped, and its end is then ignored).
    check_pids: HashMap<i32, ServiceId>,
    output: Output,
    /// tend's own events to syslog (`tend up --syslog`).
    event_syslog: Option<SyslogSink>,
    units_dir: PathBuf,
    load_units: LoadUnits,
    /// A reload loading the folder on its thread.
    reloading: Option<Reloading>,
    /// Reloads asked while one was loading (`None`: SIGHUP): they load
    /// again afterwards (the folder may have changed since the first read).
    reload_queued: Vec<Option<ConnId>>,
    /// Wakes the loop when the reload thread is done.
    waker: Arc<mio::Waker>,
    listener: Option<Listener>,
    /// `--metrics-listen`: the HTTP listener for `GET /metrics`.
    metrics_listener: Option<mio::net::TcpListener>,
    /// tend's own log (`tend logs tend`).
    own_log: LogRing,
    /// Connections following `logs -f`.
    followers: usize,
    /// Connections following `events`.
    event_followers: usize,
    /// The event lines the followers of every service read, each from its place.
    events_log: server::EventLog,
    /// Lines about ignored notify messages (any user can send them).
    notify_throttle: Throttle,
    /// Lines about refused control connections.
    refusal_throttle: Throttle,
    /// tend's RLIMIT_NOFILE soft limit (raised to the hard one at start).
    fd_limit: u64,
    /// The service manager tend runs under (`NOTIFY_SOCKET`), told what the
    /// stack does.
    systemd: Option<systemd::Notifier>,
    /// Not PID 1: a subreaper whose services die with it (PDEATHSIG).
    subreaper: bool,
    /// Where this tend's record of process groups is (without cgroups).
    record_dir: Option<PathBuf>,
    /// Sources that still had data when their turn ended.
    busy: Vec<Token>,
    /// A reload was applied since the heap was last trimmed.
    reloaded: bool,
    /// Where services' output is read into: allocated at the first read
    /// (64 KiB; a stack of services that print nothing never needs it).
    read_buffer: Vec<u8>,
    /// epoll_wait failed: shutting down without the poller.
    poll_error: Option<String>,
    /// Services were added (a reload, `tend scale`): the prefix width is
    /// set again at the end of the turn.
    prefixes_stale: bool,
}

impl Supervisor {
    fn new(units: Vec<UnitSpec>, options: UpOptions) -> io::Result<Supervisor> {
        let mut core = Core::new(units, sys::getpid(), env!("CARGO_PKG_VERSION"));
        // Before anything is touched (the socket, the signals).
        core.select(&options.only).map_err(|why| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{why}; nothing was started"))
        })?;
        crate::spawn::ensure_standard_fds();
        let fd_limit = sys::raise_nofile_limit();
        for signal in [Signal::SIGPIPE, Signal::SIGTTIN, Signal::SIGTTOU] {
            sys::ignore_signal(signal);
        }
        // A mask inherited from whoever started tend (a shell, a runtime, a
        // program that blocked SIGCHLD or SIGTERM before exec) would keep
        // the signal handlers from ever running: no reaping, no shutdown.
        sys::unblock_all_signals();
        let poll = Poll::new()?;
        let mut sources = Sources::default();
        let listener = match &options.socket {
            None => None,
            Some(socket) => {
                let own_uid = nix::unistd::geteuid().as_raw();
                match server::bind(&socket.path, Access { own_uid, group: socket.group }, socket.private_dir)
                {
                    Ok(mut listener) => {
                        let token = sources.insert(Source::Listener);
                        poll.registry().register(&mut listener.listener, token, Interest::READABLE)?;
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
        let mut signals =
            Signals::new(SHUTDOWN_SIGNALS.iter().copied().chain(ACTED_ON_SIGNALS).chain(ignored_signals()))?;
        let token = sources.insert(Source::Signals);
        poll.registry().register(&mut signals, token, Interest::READABLE)?;
        let pdeathsig = if sys::getpid() == 1 {
            None
        } else {
            // Orphans of our services come to us, so the reaper sees them
            // and process-group stops can finish.
            if let Err(err) = sys::set_child_subreaper() {
                eprintln!("tend: warning: cannot become a child subreaper: {err}");
            }
            Some(libc::SIGKILL)
        };
        let metrics_listener = match options.metrics_listen {
            None => None,
            Some(addr) => {
                let mut listener = mio::net::TcpListener::bind(addr).map_err(|err| {
                    io::Error::other(format!("--metrics-listen: cannot listen on {addr}: {err}"))
                })?;
                let token = sources.insert(Source::MetricsListener);
                poll.registry().register(&mut listener, token, Interest::READABLE)?;
                Some(listener)
            }
        };
        // Every service's name (a pool's instances: `worker@12`) sets the prefix width.
        let output = Output::new((0..core.len()).map(|s| core.spec(s).name.as_str()));
        let token = sources.insert(Source::TendOutput);
        for fd in output.watched_fds() {
            // Without the watch, output still goes out at every turn.
            let _ = poll.registry().register(&mut SourceFd(&fd), token, Interest::WRITABLE);
        }
        let token = sources.insert(Source::Reload);
        let waker = Arc::new(mio::Waker::new(poll.registry(), token)?);
        let mut supervisor = Supervisor {
            core,
            poll,
            sources,
            signals,
            io: Vec::new(),
            pipes: HashMap::new(),
            spawner: Spawner::new(options.environment, pdeathsig)?,
            subreaper: pdeathsig.is_some(),
            record_dir: None,
            notify: notify::Notify::default(),
            check_pids: HashMap::new(),
            output,
            event_syslog: options
                .syslog_events
                .then(|| SyslogSink::new(syslog_socket(), syslog::Facility::LOG_DAEMON)),
            units_dir: options.units_dir,
            load_units: options.load_units,
            reloading: None,
            reload_queued: Vec::new(),
            waker,
            listener,
            metrics_listener,
            own_log: LogRing::new(DEFAULT_LINES),
            followers: 0,
            event_followers: 0,
            events_log: server::EventLog::default(),
            notify_throttle: Throttle::new(5, Duration::from_secs(10)),
            refusal_throttle: Throttle::new(5, Duration::from_secs(10)),
            fd_limit,
            systemd: systemd::from_environment(),
            busy: Vec::new(),
            reloaded: false,
            read_buffer: Vec::new(),
            poll_error: None,
            prefixes_stale: false,
        };
        for service in 0..supervisor.core.len() {
            supervisor.added(service);
        }
        Ok(supervisor)
    }

    fn run(&mut self) -> i32 {
        self.kill_leftovers();
        // Before the first fork, give back what loading the units used:
        // every fork copies the page tables of the heap's touched pages,
        // freed or not, and each page the loop writes after a fork faults
        // once more (copy-on-write) while a child still shares it.
        sys::release_free_memory();
        self.feed(Event::Up);
        let mut events = Events::with_capacity(256);
        let mut trimmed_at_spawns: Option<u64> = None;
        loop {
            self.flush();
            if self.core.finished() {
                break;
            }
            let timeout = if self.busy.is_empty() { self.next_timeout() } else { Some(Duration::ZERO) };
            // About to sleep with nothing due after a burst of starts (start-up,
            // a reload, many restarts): give back what it used (unit parsing,
            // exec plans). Not after each single restart: malloc_trim is a
            // system call on the restart path, for little to give back.
            let spawns = self.core.spawns();
            let burst = match trimmed_at_spawns {
                None => spawns > 0,
                Some(at) => spawns >= at + TRIM_AFTER_SPAWNS || std::mem::take(&mut self.reloaded),
            };
            if timeout.is_none() && burst {
                sys::release_free_memory();
                trimmed_at_spawns = Some(spawns);
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
            for token in std::mem::take(&mut self.busy) {
                self.dispatch(token);
            }
            self.fire_deadlines();
        }
        self.drain_streams();
        self.spawner.remove_cgroups();
        if let Some(dir) = &self.record_dir {
            let _ = std::fs::remove_file(leftovers::record_path(dir, sys::getpid()));
        }
        self.output.flush_all();
        self.close_control();
        if let Some(err) = &self.poll_error {
            eprintln!("tend: exiting after a failed poll: {err}");
        }
        self.core.exit_code()
    }

    /// Hand the core an event and carry out what it says, in order.
    fn feed(&mut self, event: Event<UnitSpec>) {
        let actions = self.core.handle(sys::monotonic_now(), event);
        for action in actions {
            self.execute(action);
        }
    }

    fn execute(&mut self, action: Action<UnitSpec>) {
        match action {
            Action::Spawn { service, stdio, restart } => self.spawn(service, stdio, restart),
            Action::OpenPipe { pipe } => {
                if let Err(err) = self.pipe_ends(pipe) {
                    // Tried again at the spawn that needs it.
                    let name = self.core.spec(pipe).name.clone();
                    self.log(Level::Warning, &format!("cannot create the pipe into {name}: {err}"));
                }
            }
            Action::ClosePipe { pipe } => {
                self.pipes.remove(&pipe);
            }
            Action::Signal { service, pid, signal, group, report } => {
                let result = self.send_signal(service, pid, signal, group, report.is_none());
                if let Some(report) = report {
                    let error = result.err().map(|e| tend_core::text::error_text(&e));
                    self.feed(Event::Signalled { report, service, error });
                }
            }
            Action::StartCheck { service, run, kind } => self.start_check(service, run, kind),
            Action::CancelCheck { service, run } => self.cancel_check(service, run),
            Action::Log { level, text } => self.log(level, &text),
            Action::Reply { conn, reply, done } => self.reply(conn, &reply, done),
            Action::Status { conn, services, reply } => self.status(conn, services, reply),
            Action::Logs { conn, services, own, lines, follow, since, stream } => {
                self.logs(LogsRequest { conn, services, own, lines, follow, since, stream })
            }
            Action::Metrics { conn } => {
                let text = self.metrics_text();
                let reply =
                    Reply::Metrics(tend_core::proto::MetricsReply { ok: tend_core::proto::True, text });
                self.reply(conn, &reply, true);
            }
            Action::ReopenLogs { conn } => {
                let results = self.reopen_logs("tend reopen-logs");
                self.reply(conn, &Reply::results(results), true);
            }
            Action::LoadUnits { conn } => self.begin_reload(Some(conn)),
            Action::Added { service } => {
                self.added(service);
                self.prefixes_stale = true;
            }
            Action::Redefined { service, old } => {
                let unit = self.core.unit(service);
                if unit.resources != old.resources {
                    self.spawner.limits_changed(service);
                }
                if unit.log != old.log {
                    let (file, syslog) = sinks_for(unit);
                    self.io[service].sinks.file = file;
                    self.io[service].sinks.syslog = syslog;
                }
            }
            Action::Emit { service, event } => self.send_event(service, event),
            Action::Follow { conn, reply, services, replay } => {
                self.follow_events(conn, reply, services, replay)
            }
            Action::Release { service } => {
                // Removed by a reload and down: keep the place (ids stay
                // valid), not what it holds.
                let sinks = &mut self.io[service].sinks;
                sinks.history = LogRing::new(1);
                sinks.file = None;
                sinks.syslog = None;
                self.spawner.release(service);
            }
        }
    }

    /// One of tend's own messages: to stderr, and to syslog with `--syslog`.
    fn log(&mut self, level: Level, message: &str) {
        self.output.event(message);
        // Kept for `tend logs tend`, one line each (a message of several
        // lines, a refused reload's, stays one entry per line).
        let now = SystemTime::now();
        let mut line = Vec::with_capacity(message.len() + 1);
        line.extend_from_slice(message.as_bytes());
        line.push(b'\n');
        self.own_log.push(now, Dest::Stderr, &line);
        if self.followers > 0 {
            self.send_to_followers(None, Dest::Stderr, &line);
        }
        if let Some(syslog) = self.event_syslog.as_mut() {
            let severity = match level {
                Level::Info => Severity::Info,
                Level::Warning => Severity::Warning,
            };
            syslog.send("tend", sys::getpid() as u32, severity, message.as_bytes());
        }
    }

    fn added(&mut self, service: ServiceId) {
        debug_assert_eq!(service, self.io.len());
        let unit = self.core.unit(service);
        let (file, syslog) = sinks_for(unit);
        let prefix = self.output.prefix(&unit.name, service);
        self.io.push(ServiceIo {
            sinks: ServiceSinks { prefix, history: LogRing::new(DEFAULT_LINES), file, syslog },
            exec: None,
            ready_pipe: None,
            check: None,
        });
        self.spawner.add();
    }

    fn dispatch(&mut self, token: Token) {
        match self.sources.kind(token) {
            Some(Kind::Signals) => self.handle_signals(),
            Some(Kind::Listener) => self.accept(),
            Some(Kind::TendOutput) => self.output.flush(),
            Some(Kind::Reload) => self.finish_reload(),
            Some(Kind::Notify) => self.read_notify(token),
            Some(Kind::Output) => self.read_stream(token),
            Some(Kind::ExecStatus) => self.read_exec_status(token),
            Some(Kind::Probe) => self.advance_probe(token),
            Some(Kind::ReadyPipe) => self.read_ready_pipe(token),
            Some(Kind::Conn) => self.serve(token),
            Some(Kind::MetricsListener) => self.accept_metrics(),
            Some(Kind::MetricsConn) => self.serve_metrics(token),
            None => {}
        }
    }

    fn register(&mut self, fd: i32, source: Source, interest: Interest) -> io::Result<Token> {
        let token = self.sources.insert(source);
        if let Err(err) = self.poll.registry().register(&mut SourceFd(&fd), token, interest) {
            self.sources.remove(token);
            return Err(err);
        }
        Ok(token)
    }

    /// Stop watching `token` and forget it.
    fn unregister(&mut self, token: Token) -> Option<Source> {
        let source = self.sources.remove(token)?;
        let fd = match &source {
            Source::Output(stream) => Some(stream.fd.as_raw_fd()),
            Source::ExecStatus(watch) => Some(watch.fd.as_raw_fd()),
            Source::ReadyPipe { fd, .. } => Some(fd.as_raw_fd()),
            Source::Probe(probe) => Some(probe.probe.stream.as_raw_fd()),
            Source::Conn(conn) => Some(conn.stream.as_raw_fd()),
            Source::MetricsConn(conn) => Some(conn.stream.as_raw_fd()),
            Source::Signals
            | Source::Listener
            | Source::Notify
            | Source::TendOutput
            | Source::Reload
            | Source::MetricsListener => None,
        };
        if let Some(fd) = fd {
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        self.busy.retain(|t| *t != token);
        Some(source)
    }

    /// Tell the service manager (if any) what changed this turn.
    fn announce(&mut self) {
        let Some(systemd) = self.systemd.as_mut() else { return };
        if self.core.shutting_down() {
            systemd.shutdown_begins();
        }
        let states: Vec<tend_core::proto::ServiceState> = (0..self.core.len())
            .filter(|&s| self.core.is_live(s))
            .map(|s| self.core.shown_state(s))
            .collect();
        // While the reload thread loads the folder, nothing has changed yet:
        // READY=1 waits until its result is applied and has settled.
        systemd.turn(&states, self.reloading.is_some());
    }

    /// Once per turn: write to clients (within their budget, closing the
    /// idle), to the log files and to tend's own output.
    fn flush(&mut self) {
        if std::mem::take(&mut self.prefixes_stale) {
            self.refresh_prefixes();
        }
        self.announce();
        self.enforce_output_budget();
        self.flush_conns();
        self.expire_idle_conns(sys::monotonic_now());
        self.expire_scrapes(sys::monotonic_now());
        for service in 0..self.io.len() {
            let Some(file) = self.io[service].sinks.file.as_mut() else { continue };
            file.flush();
            // A sink that started failing says so once, and once when it works again.
            let error = file.take_new_error();
            let resumed = file.take_resumed();
            let name = self.core.spec(service).name.clone();
            if let Some(error) = error {
                self.log(Level::Warning, &format!("{name}: {error} (the service keeps running)"));
            }
            if let Some(lines) = resumed {
                let text =
                    format!("{name}: writing its log file again; {lines} lines were dropped meanwhile");
                self.log(Level::Info, &text);
            }
        }
        self.output.flush();
    }

    /// Sleep until the core's next deadline or a connection's idle
    /// timeout; `None` (forever) when none is due.
    fn next_timeout(&self) -> Option<Duration> {
        let idle =
            self.sources.conns().filter_map(|(_, c)| limits::idle_deadline(c.last_active, c.waiting())).min();
        let systemd = self.systemd.as_ref().and_then(|s| s.deadline());
        let scrapes = self.sources.metrics_conns().map(|(_, c)| c.deadline).min();
        let events = self.sources.conns().filter_map(|(_, c)| c.events_due(&self.events_log)).min();
        let earliest = self
            .core
            .next_deadline()
            .into_iter()
            .chain(idle)
            .chain(systemd)
            .chain(scrapes)
            .chain(events)
            .min()?;
        let wait = earliest.saturating_sub(sys::monotonic_now());
        // Round up to the next millisecond (epoll's resolution): waking a
        // little early would cost a second, useless wakeup.
        Some(Duration::from_millis(wait.as_nanos().div_ceil(1_000_000) as u64))
    }

    fn fire_deadlines(&mut self) {
        let now = sys::monotonic_now();
        if let Some(systemd) = self.systemd.as_mut().filter(|s| s.deadline().is_some_and(|at| at <= now)) {
            systemd.fire(now);
        }
        if self.core.next_deadline().is_some_and(|at| at <= sys::monotonic_now()) {
            self.feed(Event::Tick);
        }
    }

    /// epoll_wait failed (it should not: EBADF, EFAULT, EINVAL): leaving
    /// the loop would orphan every service, or, as PID 1, leave them
    /// running. Stop everything instead, looking at signals, children and
    /// deadlines by hand every few milliseconds, and exit 1.
    fn without_poller(&mut self, err: io::Error, timeout: Option<Duration>) {
        if self.poll_error.is_none() {
            self.poll_error = Some(err.to_string());
            self.feed(Event::PollFailed { error: err.to_string() });
        }
        std::thread::sleep(timeout.unwrap_or(Duration::MAX).min(Duration::from_millis(10)));
        self.handle_signals();
        self.reap();
        self.fire_deadlines();
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
                signal if SHUTDOWN_SIGNALS.contains(&signal) => self.feed(Event::ShutdownSignal { signal }),
                signal => self.feed(Event::StraySignal { signal }),
            }
        }
    }

    fn reap(&mut self) {
        // The datagrams already waiting are read before the exits are
        // handled, as systemd orders its notify source before SIGCHLD: what
        // a process said just before it exited (READY=1, MAINPID=, STATUS=)
        // counts for the run it came from, never for the next one after a
        // quick restart, and a leader that sent it is still a zombie, known
        // by its pid. One batch at most: a flood cannot hold up reaping.
        for token in self.sources.tokens(Kind::Notify) {
            self.read_notify(token);
        }
        let mut reaped = Vec::new();
        reaper::reap_all(|pid, status| reaped.push((pid, status)));
        for (pid, status) in reaped {
            self.reaped(pid, status);
        }
        // Leaders gone but groups not yet empty: look at them again.
        let awaiting: Vec<(ServiceId, i32)> = self.core.awaiting_group_empty().collect();
        for (service, leader) in awaiting {
            if !sys::group_has_members(leader) && self.spawner.cgroup_empty(service) {
                self.feed(Event::GroupEmpty { service });
            }
        }
    }

    fn reaped(&mut self, pid: i32, status: ExitStatus) {
        if let Some(service) = self.check_pids.remove(&pid) {
            let ours =
                matches!(self.io[service].check, Some(checks::Running::Exec { pid: p, .. }) if p == pid);
            if let (true, Some(running)) = (ours, self.io[service].check.take()) {
                let (ok, message) = checks::exec_result(status);
                self.feed(Event::CheckDone { service, run: running.run(), ok, message });
            }
            // Else a check given up on (timed out or cancelled): reaped, ignored.
            return;
        }
        // An orphan re-parented to us, or a leftover of a group: reaped,
        // nothing else to do.
        let Some(service) = self.core.leader_of(pid) else { return };
        let watched =
            |source: Option<&mut Source>| matches!(source, Some(Source::ExecStatus(w)) if w.pid == pid);
        if let Some(token) = self.io[service].exec.filter(|&t| watched(self.sources.get_mut(t))) {
            self.io[service].exec = None;
            if let Some(Source::ExecStatus(watch)) = self.unregister(token) {
                if let Some(failure) = watch.failure() {
                    if failure.step == crate::spawn::Step::Exec.name() {
                        // Moved or removed since it was found: search again.
                        crate::spawn::forget_resolved_programs();
                    }
                    self.feed(Event::SpawnFailed { service, failure });
                    return;
                }
            }
        }
        let group_remains = self.core.spec(service).config.process_group
            && (sys::group_has_members(pid) || !self.spawner.cgroup_empty(service));
        let oom_killed = self.spawner.oom_killed(service, status);
        self.feed(Event::Exited { pid, status, group_remains, oom_killed });
    }

    /// Signal a service's process (its group, and what is left in its
    /// cgroup: processes that left the group, as a double-forked daemon
    /// does, get the same signal, and SIGKILL ends the whole cgroup).
    /// `fan_out`: for a stop; a `tend signal` goes to the group only.
    fn send_signal(
        &mut self,
        service: ServiceId,
        pid: i32,
        signal: i32,
        group: bool,
        fan_out: bool,
    ) -> io::Result<()> {
        let result = sys::send_signal(pid, signal, group);
        if !fan_out {
            return result;
        }
        let name = self.core.spec(service).name.clone();
        if let Err(err) = &result {
            let text = format!("{name}: cannot send {}: {err}", tend_core::text::signal_name(signal));
            self.log(Level::Warning, &text);
        }
        if let (true, Some(cgroup)) = (group, self.spawner.cgroup(service)) {
            if signal == libc::SIGKILL {
                if let Err(err) = cgroup.kill_all() {
                    self.log(Level::Warning, &format!("{name}: cannot kill its cgroup: {err}"));
                }
            } else {
                // Members of the process group already got it: a second
                // SIGTERM can mean "stop now" to a daemon.
                for member in cgroup.pids() {
                    if sys::process_group_of(member) != Some(pid) {
                        let _ = sys::send_signal(member, signal, false);
                    }
                }
            }
        }
        result
    }

    // ---- starting services ----

    /// The ends of the pipe into `consumer`, made now if the core's
    /// `OpenPipe` could not make it. Both ends stay blocking: tend never
    /// reads or writes them, the services do.
    fn pipe_ends(&mut self, consumer: PipeId) -> io::Result<(i32, i32)> {
        if let Some((read_end, write_end)) = self.pipes.get(&consumer) {
            return Ok((read_end.as_raw_fd(), write_end.as_raw_fd()));
        }
        let (read_end, write_end) = crate::spawn::pipe()?;
        let ends = (read_end.as_raw_fd(), write_end.as_raw_fd());
        self.pipes.insert(consumer, (read_end, write_end));
        Ok(ends)
    }

    /// The descriptors behind the core's choice of standard streams.
    fn streams(&mut self, stdio: Stdio) -> Result<Streams, tend_core::service::StartFailure> {
        let mut ends = |pipe: PipeId| {
            self.pipe_ends(pipe).map_err(|err| {
                let name = &self.core.spec(pipe).name;
                tend_core::service::StartFailure {
                    step: "pipe".into(),
                    errno: err.raw_os_error().map(sys::errno_name),
                    message: format!(
                        "cannot create the pipe into {name}: {}",
                        tend_core::text::without_os_errors(&err.to_string())
                    ),
                }
            })
        };
        let stdin = match stdio.stdin {
            Input::Null => StdinFrom::Null,
            Input::File => StdinFrom::File,
            Input::Data => StdinFrom::Data,
            Input::Pipe(pipe) => StdinFrom::Fd(ends(pipe)?.0),
        };
        let mut output = |to: Piped| match to {
            Piped::Tend => Ok(None),
            Piped::Pipe(pipe) => ends(pipe).map(|(_, write_end)| Some(write_end)),
        };
        Ok(Streams { stdin, stdout: output(stdio.stdout)?, stderr: output(stdio.stderr)? })
    }

    /// Start the service; its pid goes to the core (`Spawned`) before the
    /// loop can reap again, with its pipes already watched.
    ///
    /// How, measured on 2 vCPUs (README, "Against the least supervisor
    /// process"): the restart policy's restart (`restart`) finds the loop
    /// idle and cold, and the spawner thread spares it the page-table copy
    /// and the copy-on-write faults of a fork (crash to replacement 1.2 ms
    /// against 1.45 ms forked). Every other start follows other work of the
    /// loop's (tend's start, a dependency met, a request, a reload), where a
    /// fork costs less than waking the spawner thread and waiting for its
    /// pid: 100 starts at once 79-92 ms forked against 103-144 ms, a chain
    /// of 100 dependencies 89-94 ms against 121-142 ms.
    fn spawn(&mut self, service: ServiceId, stdio: Stdio, restart: bool) {
        let mut notices = Vec::new();
        let result =
            self.streams(stdio).and_then(|streams| self.try_spawn(service, &streams, restart, &mut notices));
        for (level, text) in notices {
            self.log(level, &text);
        }
        match result {
            Ok(pid) => {
                if self.spawner.cgroup(service).is_none() && self.subreaper {
                    self.record_groups(service, pid);
                }
                self.feed(Event::Spawned { service, pid })
            }
            Err(failure) => self.feed(Event::SpawnFailed { service, failure }),
        }
    }

    /// Before anything starts: kill what a supervisor that was killed left
    /// (its cgroups; without cgroups, the process groups it recorded), so
    /// that no service runs twice, and say so.
    fn kill_leftovers(&mut self) {
        let mut found: Vec<(Option<i32>, usize)> = self.spawner.sweep_leftovers();
        if self.subreaper {
            let dir = crate::ctl::client::runtime_dir();
            found.extend(leftovers::sweep(&dir).into_iter().map(|(pid, n)| (Some(pid), n)));
        }
        for (pid, killed) in found {
            let whose = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            let plural = if killed == 1 { "" } else { "es" };
            self.log(
                Level::Warning,
                &format!("killed {killed} process{plural} left by a previous tend{whose}"),
            );
        }
    }

    /// A service started without a cgroup: record its process group (and
    /// those of the others), so that the next tend can kill them if this
    /// one is killed (see `leftovers`).
    fn record_groups(&mut self, service: ServiceId, pid: i32) {
        let dir = crate::ctl::client::runtime_dir();
        let entries = (0..self.core.len())
            .filter(|&i| self.spawner.cgroup(i).is_none())
            .filter_map(|i| {
                let pid = if i == service { Some(pid) } else { self.core.pid(i) }?;
                Some((pid, sys::process_start_time(pid)?, self.core.spec(i).config.process_group))
            })
            .collect();
        let Some(tend_start) = sys::process_start_time(sys::getpid()) else { return };
        let record = leftovers::Record { tend_pid: sys::getpid(), tend_start, entries };
        leftovers::write_record(&dir, &record);
        self.record_dir = Some(dir);
    }

    fn try_spawn(
        &mut self,
        service: ServiceId,
        streams: &Streams,
        by_thread: bool,
        notices: &mut Vec<(Level, String)>,
    ) -> Result<i32, tend_core::service::StartFailure> {
        let unit = self.core.unit(service);
        let (extra_env, new_socket) = self.notify.env_for(unit).map_err(|message| {
            tend_core::service::StartFailure { step: "notify_socket".into(), errno: None, message }
        })?;
        if let Some(fd) = new_socket {
            if let Err(err) = self.register(fd, Source::Notify, Interest::READABLE) {
                self.notify.forget();
                return Err(tend_core::service::StartFailure {
                    step: "notify_socket".into(),
                    errno: None,
                    message: format!("cannot watch the notify socket: {err}"),
                });
            }
        }
        let unit = self.core.unit(service);
        let child = self.spawner.service(service, unit, &extra_env, streams, by_thread, notices)?;
        let pid = child.pid;
        if let Some(read_end) = child.ready_pipe {
            if crate::spawn::set_nonblocking(&read_end).is_ok() {
                let fd = read_end.as_raw_fd();
                if let Ok(token) =
                    self.register(fd, Source::ReadyPipe { service, fd: read_end }, Interest::READABLE)
                {
                    if let Some(old) = self.io[service].ready_pipe.replace(token) {
                        self.unregister(old);
                    }
                }
            }
        }
        let own_pipes = [(child.stdout, Dest::Stdout), (child.stderr, Dest::Stderr)];
        for (fd, dest) in own_pipes.into_iter().filter_map(|(fd, dest)| Some((fd?, dest))) {
            if let Err(err) = crate::spawn::set_nonblocking(&fd) {
                notices.push((Level::Warning, format!("cannot read service output: {err}")));
                continue;
            }
            let raw = fd.as_raw_fd();
            if let Err(err) =
                self.register(raw, Source::Output(OutputStream::new(service, dest, fd)), Interest::READABLE)
            {
                notices.push((Level::Warning, format!("cannot read service output: {err}")));
            }
        }
        let fd = child.exec.fd.as_raw_fd();
        match self.register(fd, Source::ExecStatus(Box::new(child.exec)), Interest::READABLE) {
            Ok(token) => self.io[service].exec = Some(token),
            // Without the watch the exec is confirmed by... nothing: the
            // child's end is known at its reap. (The watch only fails when
            // epoll cannot take another descriptor.)
            Err(err) => notices.push((Level::Warning, format!("cannot watch an exec-status pipe: {err}"))),
        }
        Ok(pid)
    }

    fn read_exec_status(&mut self, token: Token) {
        let Some(Source::ExecStatus(watch)) = self.sources.get_mut(token) else { return };
        let service = watch.service;
        // With a failure report, wait for the reap: the core hears of the
        // failure once the child is gone.
        if watch.read() == ExecStatus::Confirmed {
            self.unregister(token);
            self.io[service].exec = None;
            self.feed(Event::ExecConfirmed { service });
        }
    }

    // ---- output ----

    /// Read a service's pipe: every line goes to the history ring, the log
    /// file, syslog and `logs -f` followers, whatever tend's own stdout is
    /// doing (a slow reader there costs only that copy; see `output::channel`).
    fn read_stream(&mut self, token: Token) {
        let Some(service) = self.sources.output_service(token) else { return };
        let followed = self.followers > 0 && self.is_followed(service);
        let Some(Source::Output(stream)) = self.sources.get_mut(token) else { return };
        if self.read_buffer.is_empty() {
            self.read_buffer = vec![0; streams::READ_CHUNK];
        }
        let dest = stream.dest;
        let mut follow = Vec::new();
        let fanout = Fanout {
            output: &mut self.output,
            sinks: &mut self.io[service].sinks,
            name: &self.core.spec(service).name,
            pid: self.core.pid(service).unwrap_or(0) as u32,
            follow: followed.then_some(&mut follow),
        };
        let read = stream.read(&mut self.read_buffer, fanout);
        if read.closed {
            self.finish_stream(token, &mut follow);
        } else if read.more {
            self.busy.push(token);
        }
        if !follow.is_empty() {
            self.send_to_followers(Some(service), dest, &follow);
        }
        if self.output.pending() >= FLUSH_AT {
            self.output.flush();
        }
    }

    /// A stream ended: its unfinished last line still goes everywhere.
    fn finish_stream(&mut self, token: Token, follow: &mut Vec<u8>) {
        let Some(Source::Output(mut stream)) = self.unregister(token) else { return };
        let service = stream.service;
        let fanout = Fanout {
            output: &mut self.output,
            sinks: &mut self.io[service].sinks,
            name: &self.core.spec(service).name,
            pid: self.core.pid(service).unwrap_or(0) as u32,
            follow: (self.followers > 0).then_some(follow),
        };
        stream.finish(fanout);
    }

    /// Before exiting: print whatever the services left in their pipes.
    fn drain_streams(&mut self) {
        for token in self.sources.tokens(Kind::Output) {
            for _ in 0..64 {
                if self.sources.kind(token) != Some(Kind::Output) {
                    break;
                }
                self.output.flush();
                self.read_stream(token);
                if !self.busy.contains(&token) {
                    break;
                }
                self.busy.retain(|t| *t != token);
            }
            if self.sources.kind(token) == Some(Kind::Output) {
                self.finish_stream(token, &mut Vec::new());
            }
        }
    }

    // ---- readiness ----

    fn read_notify(&mut self, token: Token) {
        for _ in 0..crate::readiness::notify::RECEIVE_BATCH {
            let Some(message) = self.notify.receive_one() else { return };
            self.handle_notify(message);
        }
        // A full batch: more may be waiting, and no new edge will say so.
        self.busy.push(token);
    }

    /// Attribute one message to its service and hand it to the core; its
    /// passed descriptors are closed only then (see `Message::passed`).
    fn handle_notify(&mut self, message: crate::readiness::notify::Message) {
        // The sender's cgroup first: the kernel's record, which holds for a
        // sender that has exited and been reaped before tend read its
        // message (`systemd-notify --no-block --ready` without the
        // privilege to send as its parent, a helper that sends and exits)
        // or that left the service's process tree; then its pid, for a
        // service without a cgroup of its own or a kernel without SCM_PIDFD.
        let by_cgroup =
            message.sender.and_then(|s| s.cgroup_id).and_then(|id| self.spawner.service_in_cgroup(id));
        let Some((pid, service)) = message
            .pid
            .and_then(|pid| Some((pid, by_cgroup.or_else(|| notify::service_of(&self.core, pid))?)))
        else {
            let who = message.pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "an unknown sender".into());
            let exited = if message.sender.is_some_and(|s| s.exited) {
                " (it had exited before tend read the message, and was in no service's cgroup)"
            } else {
                ""
            };
            self.ignored_notify(format!(
                "ignored a notify message from {who}: not a process of any service{exited}"
            ));
            return;
        };
        let name = self.core.spec(service).name.clone();
        if self.core.spec(service).service_type != crate::unit::ServiceType::Notify {
            self.ignored_notify(format!("{name}: ignored a notify message: the unit is not type notify"));
            return;
        }
        let mut fields = Vec::with_capacity(message.fields.len());
        for (key, value) in message.fields {
            if key != "MAINPID" {
                fields.push((key, value));
                continue;
            }
            let cgroup_pids = self.spawner.cgroup(service).map(|c| c.pids()).unwrap_or_default();
            let verdict = match value.parse::<i32>() {
                Ok(candidate) => crate::readiness::notify::main_pid_acceptable(
                    candidate,
                    notify::is_member(&self.core, &cgroup_pids, service, candidate),
                ),
                Err(_) => Err("not a number"),
            };
            match verdict {
                Ok(()) => fields.push((key, value)),
                Err(why) => {
                    let shown = crate::unit::values::printable(&value);
                    self.ignored_notify(format!("{name}: ignored MAINPID={shown} from pid {pid}: {why}"));
                }
            }
        }
        self.feed(Event::Notify { service, fields });
        // Now the barrier's pipe (if any) may close.
        drop(message.passed);
    }

    /// A line about an ignored notify message, within the throttle's budget
    /// (anyone can send them).
    fn ignored_notify(&mut self, text: String) {
        match self.notify_throttle.admit(sys::monotonic_now()) {
            Some(0) => self.log(Level::Info, &text),
            Some(more) => self.log(Level::Info, &format!("{text} ({more} more ignored without a message)")),
            None => {}
        }
    }

    /// s6 readiness: a line on the service's `notify_fd` means ready.
    fn read_ready_pipe(&mut self, token: Token) {
        let Some(Source::ReadyPipe { service, fd }) = self.sources.get_mut(token) else { return };
        let service = *service;
        let mut buf = [0u8; 512];
        let (mut ready, mut closed) = (false, false);
        loop {
            match sys::read(&*fd, &mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => ready |= buf[..n].contains(&b'\n'),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if ready || closed {
            self.unregister(token);
            if self.io[service].ready_pipe == Some(token) {
                self.io[service].ready_pipe = None;
            }
        }
        if ready {
            self.feed(Event::ReadyLine { service });
        }
    }

    // ---- checks ----

    fn start_check(&mut self, service: ServiceId, run: u64, kind: CheckKind) {
        let unit = self.core.unit(service);
        let Some(spec) = checks::spec(unit, kind).cloned() else { return };
        let started = match &spec.check {
            crate::unit::Check::Exec(argv) => {
                let mut notices = Vec::new();
                let unit = self.core.unit(service);
                let pid = self.spawner.check(service, unit, argv, &mut notices);
                for (level, text) in notices {
                    self.log(level, &text);
                }
                pid.map(|pid| {
                    self.check_pids.insert(pid, service);
                    checks::Running::Exec { pid, run }
                })
            }
            check @ (crate::unit::Check::Tcp { .. } | crate::unit::Check::Http { .. }) => {
                match checks::start_probe(check) {
                    Ok(probe) => {
                        let token = self.sources.insert(Source::Probe(Box::new(checks::Probe {
                            service,
                            run,
                            probe,
                        })));
                        let Some(Source::Probe(probe)) = self.sources.get_mut(token) else { return };
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        match self.poll.registry().register(&mut probe.probe.stream, token, interest) {
                            Ok(()) => Ok(checks::Running::Probe { token, run }),
                            Err(err) => {
                                self.sources.remove(token);
                                Err(format!("cannot watch the probe: {err}"))
                            }
                        }
                    }
                    Err(message) => Err(message),
                }
            }
        };
        match started {
            Ok(running) => self.io[service].check = Some(running),
            Err(message) => self.feed(Event::CheckDone { service, run, ok: false, message }),
        }
    }

    /// Drop the check in flight: kill an exec check's process (group), close a probe.
    fn cancel_check(&mut self, service: ServiceId, run: u64) {
        match self.io[service].check {
            Some(checks::Running::Exec { pid, run: r }) if r == run => {
                // Still in check_pids: the reaper collects it, then it is ignored.
                let group = self.core.spec(service).config.process_group;
                let _ = sys::send_signal(pid, libc::SIGKILL, group);
            }
            Some(checks::Running::Probe { token, run: r }) if r == run => {
                self.unregister(token);
            }
            _ => return,
        }
        self.io[service].check = None;
    }

    fn advance_probe(&mut self, token: Token) {
        let Some(Source::Probe(probe)) = self.sources.get_mut(token) else { return };
        let (service, run) = (probe.service, probe.run);
        let (ok, message) = match probe.probe.advance() {
            crate::readiness::probe::Outcome::Pending => return,
            crate::readiness::probe::Outcome::Success(message) => (true, message),
            crate::readiness::probe::Outcome::Failure(message) => (false, message),
        };
        self.unregister(token);
        if self.io[service].check == Some(checks::Running::Probe { token, run }) {
            self.io[service].check = None;
        }
        self.feed(Event::CheckDone { service, run, ok, message });
    }

    // ---- control connections ----

    /// Accept what waits on one listener (at most `ACCEPTS_PER_TURN` a
    /// turn, then the listener comes back after the other sources): each
    /// stream goes to `admit`, which says what to keep of it, and what is
    /// kept is registered with the poller. `what` names the kind of
    /// connection in the warning when accept itself fails.
    fn accept_from<S: AsRawFd>(
        &mut self,
        kind: Kind,
        what: &str,
        accept: fn(&Self) -> Option<io::Result<S>>,
        mut admit: impl FnMut(&mut Self, S, Duration) -> Option<Source>,
    ) {
        let now = sys::monotonic_now();
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(accepted) = accept(self) else { return };
            match accepted {
                Ok(stream) => {
                    let fd = stream.as_raw_fd();
                    if let Some(source) = admit(self, stream, now) {
                        // Not registered: dropped, which closes it.
                        let _ = self.register(fd, source, Interest::READABLE | Interest::WRITABLE);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // EMFILE and friends: say so, and try again on the next event.
                    if self.refusal_throttle.admit(now).is_some() {
                        self.log(Level::Warning, &format!("cannot accept a {what} connection: {err}"));
                    }
                    return;
                }
            }
        }
        // More may be waiting: next turn, after the others.
        if let Some(&token) = self.sources.tokens(kind).first() {
            self.busy.push(token);
        }
    }

    /// Accept the control connections waiting, each only within the
    /// limits of `ctl::limits`.
    fn accept(&mut self) {
        let accept = |me: &Self| me.listener.as_ref().map(|l| l.listener.accept().map(|(stream, _)| stream));
        self.accept_from(Kind::Listener, "control", accept, Self::admit_control);
    }

    /// A control connection just accepted: kept (a `Source::Conn`), or told
    /// why not and dropped.
    fn admit_control(&mut self, stream: mio::net::UnixStream, now: Duration) -> Option<Source> {
        let access = self.listener.as_ref()?.access;
        let fd = stream.as_raw_fd() as u64;
        let mut conn = Conn::new(stream, now);
        if let Err(reason) = server::check_peer(&conn.stream, access) {
            conn.queue(&Reply::error(ErrorCode::PermissionDenied, reason));
            conn.closing = true;
        } else {
            let idle =
                limits::idle_longest(self.sources.conns().map(|(t, c)| (t, c.last_active, c.waiting())));
            match limits::admit(self.sources.conn_count(), fd, self.fd_limit, idle) {
                limits::Admission::Accept => {}
                limits::Admission::AcceptClosing(old) => {
                    if let Some(old_conn) = self.sources.conn_mut(old) {
                        old_conn.close_with(
                            ErrorCode::TooManyConnections,
                            "closed to make room: too many connections, and this one was idle",
                        );
                        old_conn.flush();
                    }
                    self.drop_conn(old);
                }
                limits::Admission::Refuse(why) => {
                    // Told at once, best effort, and closed: it is not kept.
                    conn.close_with(ErrorCode::TooManyConnections, &why);
                    conn.flush();
                    if self.refusal_throttle.admit(now).is_some() {
                        self.log(Level::Warning, &format!("refused a control connection: {why}"));
                    }
                    return None;
                }
            }
        }
        Some(Source::Conn(Box::new(conn)))
    }

    /// Serve one connection for one turn: read a bounded slice of what it
    /// sent (only once what was read before is handled and its replies are
    /// taken), hand at most `REQUESTS_PER_TURN` requests to the core, and
    /// come back next turn for the rest, after every other source had its turn.
    fn serve(&mut self, token: Token) {
        let now = sys::monotonic_now();
        let Some(conn) = self.sources.conn_mut(token) else { return };
        conn.flush();
        if conn.pending.is_empty() && !conn.has_pending_output() && !conn.closing && !conn.dead {
            conn.read_some(limits::READ_PER_TURN, now);
        }
        for _ in 0..limits::REQUESTS_PER_TURN {
            let Some(conn) = self.sources.conn_mut(token) else { return };
            let Some(frame) = conn.pending.pop_front() else { break };
            let (request, more) = control::request(conn, frame);
            if let Some(request) = request {
                self.feed(Event::Request { conn: token.0 as ConnId, request, wall: SystemTime::now() });
            }
            if !more {
                break;
            }
        }
        let Some(conn) = self.sources.conn_mut(token) else { return };
        conn.flush();
        if conn.dead {
            self.drop_conn(token);
        } else if (!conn.pending.is_empty() || conn.more_to_read)
            && !conn.closing
            && !conn.has_pending_output()
        {
            // Edge-triggered: no new event will say there is more.
            self.busy.push(token);
        }
    }

    /// Close connections that sent no complete request for
    /// `IDLE_TIMEOUT` while waiting for nothing; drop those that were
    /// closing and could not even take their last reply in that time.
    fn expire_idle_conns(&mut self, now: tend_core::Time) {
        let mut dead = Vec::new();
        for (token, conn) in self.sources.conns_mut() {
            let waiting = conn.waiting();
            if limits::idle_deadline(conn.last_active, waiting).is_none_or(|at| at > now) {
                continue;
            }
            if conn.closing {
                dead.push(token);
            } else {
                let secs = limits::IDLE_TIMEOUT.as_secs();
                conn.close_with(
                    ErrorCode::Idle,
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
        let log = &self.events_log;
        let queued: Vec<(Token, usize)> =
            self.sources.conns().map(|(t, c)| (t, c.queued_with(log))).collect();
        for token in limits::over_budget(&queued, limits::TOTAL_OUTPUT) {
            if let Some(conn) = self.sources.conn_mut(token) {
                conn.cut_off_with(
                    &self.events_log,
                    "client fell too far behind while others did too; dropping the connection",
                );
                conn.flush();
            }
        }
    }

    fn flush_conns(&mut self) {
        let mut dead = Vec::new();
        let now = sys::monotonic_now();
        let mut oldest: Option<u64> = None;
        for (token, conn) in self.sources.conns_mut() {
            conn.flush_due(now, &self.events_log);
            if conn.dead {
                dead.push(token);
            } else if let Some(at) = conn.events.as_ref().and_then(|w| w.cursor) {
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
            }
        }
        self.events_log.trim(oldest);
        for token in dead {
            self.drop_conn(token);
        }
    }

    fn drop_conn(&mut self, token: Token) {
        if let Some(Source::Conn(conn)) = self.unregister(token) {
            if conn.following.is_some() {
                self.followers -= 1;
            }
            if conn.events.is_some() {
                self.event_followers -= 1;
            }
            self.feed(Event::Disconnected { conn: token.0 as ConnId });
        }
    }

    fn reply(&mut self, conn: ConnId, reply: &Reply, done: bool) {
        if let Some(conn) = self.sources.conn_mut(Token(conn as usize)) {
            control::reply(conn, reply, done);
        }
    }

    /// A status reply, with what only the loop can measure.
    fn status(&mut self, conn: ConnId, services: Vec<ServiceId>, mut reply: StatusReply) {
        for (status, &service) in reply.services.iter_mut().zip(&services) {
            let sinks = &self.io[service].sinks;
            status.log_errors = sinks
                .file
                .as_ref()
                .and_then(|f| f.error())
                .into_iter()
                .chain(sinks.syslog.as_ref().and_then(|s| s.error()))
                .map(str::to_string)
                .collect();
            if let Some(cgroup) = self.spawner.cgroup(service) {
                status.memory_bytes = cgroup.memory_current();
                status.cpu_usec = cgroup.cpu_usage_usec();
            }
        }
        self.reply(conn, &Reply::Status(reply), true);
    }

    /// The last `lines` of each service's output (and of tend's own log
    /// with `own`), read at or after `since`, of `stream` only if given, on
    /// one timeline; then the end of the reply, or (`follow`) new lines as
    /// they come.
    fn logs(&mut self, request: LogsRequest) {
        let LogsRequest { conn, services, own, lines, follow, since, stream } = request;
        let pick = |ring: &LogRing| -> Vec<HistoryLine> {
            let filtered = stream.is_some() || since.is_some();
            let mut kept: Vec<HistoryLine> = ring
                .last_lines(if filtered { usize::MAX } else { lines })
                .into_iter()
                .filter(|l| stream.is_none_or(|s| s == control::stream_of(l.dest)))
                .filter(|l| since.is_none_or(|t| l.time >= t))
                .collect();
            kept.drain(..kept.len().saturating_sub(lines));
            kept
        };
        let mut history = Vec::new();
        for &service in &services {
            for line in pick(&self.io[service].sinks.history) {
                history.push((line.time, Some(service), line.dest, line.line));
            }
        }
        if own {
            for line in pick(&self.own_log) {
                history.push((line.time, None, line.dest, line.line));
            }
        }
        // Stable, so each service keeps its order.
        tend_core::sort::sort_by_key(&mut history, |entry| entry.0);
        let replies: Vec<Reply> = history
            .into_iter()
            .map(|(time, service, dest, line)| {
                let name = service.map_or(tend_core::OWN_LOG, |s| self.core.spec(s).name.as_str());
                control::log_reply(name, dest, time, &line)
            })
            .collect();
        let Some(connection) = self.sources.conn_mut(Token(conn as usize)) else { return };
        for reply in &replies {
            connection.queue(reply);
        }
        if follow {
            connection.following = Some(server::Following { services, own, stream });
            self.followers += 1;
            connection.flush();
        } else {
            control::reply(
                connection,
                &Reply::Done(tend_core::proto::DoneReply { ok: tend_core::proto::True }),
                true,
            );
        }
    }

    /// Someone follows this service's output and still takes lines (a
    /// follower found too slow is cut off and waits to be dropped).
    fn is_followed(&mut self, service: ServiceId) -> bool {
        self.sources.conns_mut().any(|(_, conn)| {
            !conn.closing && conn.following.as_ref().is_some_and(|f| f.services.contains(&service))
        })
    }

    /// Lines of `service` (`None`: tend's own log) to the followers that want them.
    fn send_to_followers(&mut self, service: Option<ServiceId>, dest: Dest, lines: &[u8]) {
        let now = SystemTime::now();
        let name = service.map_or(tend_core::OWN_LOG, |s| self.core.spec(s).name.as_str());
        let stream = control::stream_of(dest);
        let mut encoded = Vec::new();
        crate::output::each_line(lines, |line| {
            encoded.push(control::log_reply(name, dest, now, line).encode())
        });
        // The output budget of all connections holds within the turn too:
        // a follower that would take it past is cut (they all get the same
        // lines, so the first to overflow is as behind as any).
        let mut total: usize = self.sources.conns().map(|(_, c)| c.queued()).sum();
        for (_, conn) in self.sources.conns_mut() {
            let wants = conn.following.as_ref().is_some_and(|f| match service {
                Some(service) => f.wants(service, stream),
                None => f.wants_own(),
            });
            if !wants {
                continue;
            }
            let before = conn.queued();
            for bytes in &encoded {
                conn.queue_bytes(bytes);
            }
            conn.flush();
            total = total - before + conn.queued();
            if total > limits::TOTAL_OUTPUT {
                total -= conn.queued();
                conn.cut_off("client fell too far behind while others did too; dropping the connection");
                conn.flush();
                total += conn.queued();
            }
        }
    }

    // ---- GET /metrics ----

    /// The exposition: the core's figures and what the loop measures.
    fn metrics_text(&self) -> String {
        let services: Vec<(tend_core::ServiceMetrics, metrics::Measured)> = self
            .core
            .metrics()
            .into_iter()
            .map(|(service, figures)| {
                let sinks = &self.io[service].sinks;
                let cgroup = self.spawner.cgroup(service);
                let measured = metrics::Measured {
                    cpu_usec: cgroup.and_then(|c| c.cpu_usage_usec()),
                    memory_bytes: cgroup.and_then(|c| c.memory_current()),
                    file_dropped: sinks.file.as_ref().map(|f| f.dropped_lines()),
                    syslog_dropped: sinks.syslog.as_ref().map(|s| s.dropped()),
                };
                (figures, measured)
            })
            .collect();
        let tend = metrics::Supervisor {
            version: env!("CARGO_PKG_VERSION").to_string(),
            events_total: self.core.events_sent(),
            stdout_dropped: self.output.dropped_lines(Dest::Stdout),
            stderr_dropped: self.output.dropped_lines(Dest::Stderr),
            control_connections: self.sources.conn_count(),
            metrics_connections: self.sources.metrics_conns().count(),
        };
        metrics::render(&tend, &services)
    }

    /// Accept scrapers; past `http::MAX_CONNECTIONS` open, a new one is told
    /// 503 and closed.
    fn accept_metrics(&mut self) {
        let accept = |me: &Self| me.metrics_listener.as_ref().map(|l| l.accept().map(|(stream, _)| stream));
        let admit = |me: &mut Self, stream: mio::net::TcpStream, now: Duration| {
            let mut conn = HttpConn::new(stream, now);
            if me.sources.metrics_conns().count() >= http::MAX_CONNECTIONS {
                // What it sent is taken first: closing on unread data would
                // reset the connection before it reads why. Not kept: it
                // closes as it goes out of scope.
                let _ = conn.read();
                let body = b"too many connections\n";
                conn.answer(http::response(503, "Service Unavailable", "text/plain", body, false));
                return None;
            }
            Some(Source::MetricsConn(Box::new(conn)))
        };
        self.accept_from(Kind::MetricsListener, "metrics", accept, admit);
    }

    /// Read a scraper's request, answer it, write the answer as the socket
    /// takes it; then close.
    fn serve_metrics(&mut self, token: Token) {
        let Some(Source::MetricsConn(conn)) = self.sources.get_mut(token) else { return };
        conn.flush();
        let asked = conn.read();
        let response = match asked {
            http::Asked::More => None,
            http::Asked::Metrics { head_only } => {
                let body = self.metrics_text();
                Some(http::response(200, "OK", metrics::CONTENT_TYPE, body.as_bytes(), head_only))
            }
            http::Asked::Refuse { status, reason, message } => {
                Some(http::response(status, reason, "text/plain", message.as_bytes(), false))
            }
        };
        let Some(Source::MetricsConn(conn)) = self.sources.get_mut(token) else { return };
        if let Some(response) = response {
            conn.answer(response);
        }
        if conn.finished {
            self.unregister(token);
        }
    }

    /// Close scrapers past their deadline (a request never finished, an
    /// answer never taken).
    fn expire_scrapes(&mut self, now: tend_core::Time) {
        let late: Vec<Token> =
            self.sources.metrics_conns().filter(|(_, c)| c.deadline <= now).map(|(t, _)| t).collect();
        for token in late {
            self.unregister(token);
        }
    }

    /// An `events` request: the acknowledgement, the replay, and from now
    /// on every event of `services` (all: `None`). All within this turn, so
    /// no event falls between the replay and the subscription.
    fn follow_events(
        &mut self,
        conn: ConnId,
        reply: Reply,
        services: Option<Vec<ServiceId>>,
        replay: Vec<(ServiceId, tend_core::proto::ServiceEvent)>,
    ) {
        let now = SystemTime::now();
        let Some(connection) = self.sources.conn_mut(Token(conn as usize)) else { return };
        control::reply(connection, &reply, false);
        connection.events = Some(server::Watch::new(services, sys::monotonic_now(), &self.events_log));
        for (_, event) in replay {
            connection.queue_bytes(&control::event_line(event, now));
        }
        connection.flush();
        self.event_followers += 1;
    }

    /// One event, to every follower that wants it, with the service's state
    /// as it is now (a turn the loop ran while carrying out this one's
    /// actions may have moved it on). Queued only: written once per turn,
    /// so a burst costs each follower one write, not one per event. A
    /// follower that fell too far behind is cut off with
    /// `{"event":"overflow"}` (see `Conn::queue_bytes`).
    fn send_event(&mut self, service: ServiceId, mut event: tend_core::proto::ServiceEvent) {
        if self.event_followers == 0 {
            return;
        }
        event.state = self.core.shown_state(service);
        let line = control::event_line(event, SystemTime::now());
        let mut shared = false;
        for (_, conn) in self.sources.conns_mut() {
            match conn.events.as_ref() {
                Some(watch) if watch.cursor.is_some() => shared = true,
                Some(watch) if watch.wants(service) => conn.queue_bytes(&line),
                _ => {}
            }
        }
        if !shared {
            return;
        }
        self.events_log.push(&line);
        let log = &self.events_log;
        for (_, conn) in self.sources.conns_mut() {
            if conn.events.as_ref().is_some_and(|w| w.cursor.is_some())
                && conn.queued_with(log) > server::MAX_EVENTS_BACKLOG
            {
                conn.cut_off_with(log, "client fell too far behind; dropping the connection");
            }
        }
    }

    /// Open every log file anew (SIGUSR1, `tend reopen-logs`), after
    /// logrotate moved them away. One result per service that has a file.
    fn reopen_logs(&mut self, why: &str) -> Vec<tend_core::proto::ServiceResult> {
        let now = SystemTime::now();
        let mut results = Vec::new();
        for service in 0..self.io.len() {
            if !self.core.is_live(service) {
                continue;
            }
            let Some(file) = self.io[service].sinks.file.as_mut() else { continue };
            let path = file.path().display().to_string();
            results.push(match file.reopen(now) {
                Ok(()) => self.core.result(service, true, format!("reopened {path}")),
                Err(error) => self.core.result(service, false, error),
            });
        }
        let failed = results.iter().filter(|r| !r.ok).count();
        let failed = if failed > 0 { format!(", {failed} failed") } else { String::new() };
        let files = if results.len() == 1 { "file" } else { "files" };
        self.log(Level::Info, &format!("reopened {} log {files}{failed} ({why})", results.len()));
        results
    }

    /// Load the units folder on a thread of its own; `finish_reload` hands
    /// it to the core once loaded. `asked_by`: the control connection
    /// waiting for the reply, `None` for SIGHUP.
    fn begin_reload(&mut self, asked_by: Option<ConnId>) {
        if self.reloading.is_some() {
            self.reload_queued.push(asked_by);
            return;
        }
        if let Some(systemd) = self.systemd.as_mut() {
            systemd.reload_begins();
        }
        let (send, done) = mpsc::channel();
        let (dir, load, waker) = (self.units_dir.clone(), self.load_units, self.waker.clone());
        let spawned = std::thread::Builder::new().name("tend-reload".into()).spawn(move || {
            // Signals are the loop's: none may interrupt a look-up here.
            sys::block_all_signals();
            let _ = send.send(load(&dir));
            let _ = waker.wake();
        });
        if let Err(err) = spawned {
            // No thread (EAGAIN): load here, as the loop's own work.
            self.log(
                Level::Warning,
                &format!("cannot start a thread to load the units ({err}); loading on the loop"),
            );
            let loaded = (self.load_units)(&self.units_dir);
            self.apply_loaded(loaded, asked_by.into_iter().collect());
            return;
        }
        self.reloading = Some(Reloading { done, asked_by: asked_by.into_iter().collect() });
    }

    /// The reload thread is done (or woke us for nothing): hand what it
    /// loaded to the core, and start the reloads asked meanwhile.
    fn finish_reload(&mut self) {
        let Some(reloading) = self.reloading.as_ref() else { return };
        let loaded = match reloading.done.try_recv() {
            Ok(loaded) => loaded,
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => Err(vec![Diagnostic {
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
        if let Some((&first, rest)) = queued.split_first() {
            self.begin_reload(first);
            let rest = rest.iter().copied();
            match self.reloading.as_mut() {
                Some(reloading) => reloading.asked_by.extend(rest.flatten()),
                None => self.reload_queued.extend(rest),
            }
        }
    }

    /// Give the core what was loaded.
    fn apply_loaded(&mut self, loaded: Loaded, asked_by: Vec<ConnId>) {
        // A reload is also how a user says "look for the programs again"
        // (one installed earlier in PATH since).
        crate::spawn::forget_resolved_programs();
        let mut warned = Vec::new();
        let units = match loaded {
            Ok((units, warnings)) => {
                if !self.core.shutting_down() {
                    for warning in &warnings {
                        self.log(Level::Warning, &format!("warning: {warning}"));
                    }
                }
                warned = warnings.iter().map(|w| w.to_string()).collect();
                Ok(units)
            }
            Err(diagnostics) => Err(Refused {
                dir: self.units_dir.display().to_string(),
                details: diagnostics.iter().map(|d| d.to_string()).collect(),
            }),
        };
        self.feed(Event::Reloaded { asked_by, units, warnings: warned });
        // A reload may have freed much: trim the heap at the next chance.
        self.reloaded = true;
        self.refresh_prefixes();
    }

    /// New names, new widths (a reload, a scale): render every prefix again.
    fn refresh_prefixes(&mut self) {
        let names: Vec<String> = (0..self.core.len())
            .filter(|&s| self.core.is_live(s))
            .map(|s| self.core.spec(s).name.clone())
            .collect();
        self.output.set_width(names.iter().map(|n| n.as_str()));
        for service in 0..self.io.len() {
            self.io[service].sinks.prefix = self.output.prefix(&self.core.spec(service).name, service);
        }
    }

    /// At exit: what is queued goes out as far as it can without blocking;
    /// closing the connections tells `tend shutdown` we are gone.
    fn close_control(&mut self) {
        for token in self.sources.tokens(Kind::Conn) {
            if let Some(Source::Conn(mut conn)) = self.unregister(token) {
                conn.flush_with(&self.events_log);
            }
        }
        self.listener = None;
    }
}
