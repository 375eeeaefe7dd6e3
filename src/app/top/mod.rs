//! `tend top`: a live, full-screen view of a running supervisor.
//!
//! The view itself (rows, order, filter, selection, keys, the stop and
//! signal questions) is pure, in [`model`]; drawing is [`render`]. This
//! file is the thin terminal part: it owns the terminal (raw mode and the
//! alternate screen, given back on every way out: `q`, Ctrl-C, SIGTERM,
//! SIGHUP, SIGINT, SIGQUIT, a panic, a lost terminal; Ctrl-Z and SIGTSTP
//! give it back while suspended) and the threads that feed the view, each
//! sending [`Msg`]s down one channel to the one loop that updates the
//! model and draws:
//!
//! - the keyboard (blocking reads of standard input, decoded by [`input`]),
//! - signals (signal-hook's iterator; SIGWINCH redraws at the new size),
//! - the supervisor's events (`events --since-start`): every change of
//!   state, pid, restarts or reason shows as it happens,
//! - the `status` poll, once a second (`--interval`) on one kept
//!   connection, for what changes without an event (uptime, CPU, memory)
//!   and what no event carries; nothing polls faster,
//! - the log pane's `logs -f` connection, closed when the pane closes or
//!   follows another service,
//! - one thread per start, restart, stop or signal, which waits for the
//!   supervisor's answer so that the screen never does.
//!
//! When the supervisor goes away, the last rows stay on screen, dimmed,
//! under a line that says so, and the poll and the events keep trying
//! once a second: when a supervisor answers again (restarted with
//! `tend up`), the view carries on. `q` quits at any time.
//!
//! Must not print outside the screen while it owns the terminal.

pub mod input;
pub mod model;
pub mod procfs;
pub mod render;
pub mod screen;

use crate::app::control;
use crate::ctl::client::Client;
use crate::ctl::proto::{
    Answer, ErrorCode, EventsItem, LogsItem, Request, ResultsReply, ServiceEvent, StatusReply, Target,
};
use crate::exit;
use input::{Decoder, Typed};
use model::{Action, Command, LogEntry, Model};
use nix::sys::termios::{self, SetArg, Termios};
use std::io;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shortest `--interval`: the status poll never asks more often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// How long to wait before connecting again to a supervisor that went away.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// How long one status request may take before the supervisor counts as
/// not answering: `--timeout`, else 5 s.
fn answer_within() -> Duration {
    control::waiting_timeout().unwrap_or(Duration::from_secs(5))
}

/// How long the first frame waits for the events to be followed.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(1);

/// Lines of a service's history the log pane starts with.
const LOG_HISTORY: usize = 200;

/// What the feeding threads tell the loop.
enum Msg {
    Input(Typed),
    /// The keyboard cannot be read any more (the terminal went away).
    InputGone(String),
    Signal(i32),
    /// A status reply: when it was asked for, when it came.
    Status(Box<StatusReply>, Instant, Instant),
    Lost(String),
    /// The events are followed (subscribed, or the supervisor has none).
    Following,
    /// One of the supervisor's events (its time, as the supervisor says it).
    Event(Box<ServiceEvent>, String, Instant),
    Log {
        generation: u64,
        service: String,
        entry: LogEntry,
    },
    LogEnded {
        generation: u64,
        service: String,
    },
    Outcome {
        ok: bool,
        text: String,
    },
}

pub fn top(socket: Option<PathBuf>, interval: Duration) -> i32 {
    if interval < MIN_INTERVAL {
        eprintln!("tend: top --interval: at least 1s (states show at once from the events; the status poll is for CPU, memory and uptimes)");
        return exit::USAGE;
    }
    if !crate::sys::isatty(std::io::stdin()) || !crate::sys::isatty(std::io::stdout()) {
        eprintln!(
            "tend: top needs a terminal on standard input and output (for scripts: tend status --json)"
        );
        return exit::USAGE;
    }
    // The first answer before the screen is taken: without a supervisor,
    // say so as every client command does.
    let within = answer_within();
    let asked = Instant::now();
    let first = control::open(socket.clone()).and_then(|mut client| {
        client.set_timeout(Some(within));
        match client.call::<StatusReply>(Request::Status { names: Vec::new() }) {
            Ok(Ok(reply)) => Ok((client, reply)),
            Ok(Err(error)) => Err((error.error.message, exit::FAILURE)),
            Err(err) if control::timed_out(&err) => {
                Err((control::no_answer_message(within), exit::NO_SUPERVISOR))
            }
            Err(err) => Err((format!("the supervisor did not answer: {err}"), exit::NO_SUPERVISOR)),
        }
    });
    let (client, mut reply) = match first {
        Ok(first) => first,
        Err((message, status)) => {
            eprintln!("tend: {message}");
            return status;
        }
    };
    let mut model = Model::new();
    procfs::fill(&mut reply);
    model.apply_status(reply, asked, Instant::now());
    let palette = render::Palette { colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) };

    install_panic_hook();
    if let Err(err) = enter() {
        leave();
        eprintln!("tend: cannot set up the terminal: {err}");
        return exit::FAILURE;
    }
    let (sender, receiver) = mpsc::channel();
    let status = match start_feeds(socket.clone(), client, interval, &sender) {
        Ok(()) => {
            let feeds = Feeds { socket, sender, receiver, logs: None, log_generation: 0 };
            run(&mut model, palette, feeds)
        }
        Err(err) => Err(err),
    };
    leave();
    match status {
        Ok(status) => status,
        Err(err) => {
            eprintln!("tend: top: {err}");
            exit::FAILURE
        }
    }
}

// ------------------------------------------------------------ the terminal

/// Whether the terminal is ours (raw, alternate screen) and must be given back.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The terminal's modes before raw mode, to give back.
static SAVED_MODES: Mutex<Option<Termios>> = Mutex::new(None);

/// Raw mode (cfmakeraw(3): no echo, no line editing, Ctrl-C and Ctrl-Z as
/// bytes, no output processing), the alternate screen (xterm's 1049: the
/// shell's screen comes back as it was) and the cursor hidden (DECTCEM).
fn enter() -> io::Result<()> {
    ACTIVE.store(true, Ordering::SeqCst);
    let stdin = io::stdin();
    let modes = termios::tcgetattr(stdin.as_fd())?;
    let mut raw = modes.clone();
    termios::cfmakeraw(&mut raw);
    *SAVED_MODES.lock().unwrap_or_else(|e| e.into_inner()) = Some(modes);
    termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
    screen::write_all("\x1b[?1049h\x1b[?25l")
}

/// Give the terminal back as it was; does nothing when it is not ours.
/// Errors are ignored: a terminal that went away needs nothing back.
fn leave() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = screen::write_all("\x1b[0m\x1b[?1049l\x1b[?25h");
        if let Some(modes) = SAVED_MODES.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &modes);
        }
    }
}

/// The release build aborts on a panic (`panic = "abort"`): no destructor
/// runs, so the hook gives the terminal back before the message and the abort.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave();
        previous(info);
    }));
}

type Screen = screen::Terminal;

/// A blank screen, and a terminal that draws all of it next.
fn blank_screen() -> io::Result<Screen> {
    screen::Terminal::blank()
}

/// Draw the view at the terminal's size now (80×24 when it cannot say).
fn draw(terminal: &mut Screen, model: &Model, palette: render::Palette) -> io::Result<()> {
    let (width, height) = crate::sys::window_size(io::stdout()).unwrap_or((80, 24));
    let mut frame = screen::Buffer::new(width, height);
    render::draw(&mut frame, model, Instant::now(), palette);
    terminal.draw(frame)
}

/// Ctrl-Z or SIGTSTP: give the terminal back, stop until `fg`, take it again.
fn suspend(screen: &mut Screen) -> io::Result<()> {
    leave();
    // SIGSTOP, not SIGTSTP: our SIGTSTP is caught (it brings us here).
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    enter()?;
    *screen = blank_screen()?;
    Ok(())
}

// ------------------------------------------------------------ the feeds

struct Feeds {
    socket: Option<PathBuf>,
    sender: Sender<Msg>,
    receiver: Receiver<Msg>,
    /// The log pane's connection.
    logs: Option<LogFeed>,
    /// Counts the log pane's connections: lines of an earlier one are dropped.
    log_generation: u64,
}

/// One `logs -f` connection of the log pane.
struct LogFeed {
    generation: u64,
    /// `Some(None)` while connecting, `Some(handle)` once connected (to end
    /// it from here), `None` once ended.
    connection: Arc<Mutex<Option<Option<UnixStream>>>>,
}

impl LogFeed {
    /// End the connection, or keep it from being made.
    fn end(&self) {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Some(stream)) = connection.take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// The log pane's thread: connect, ask for `service`'s recent lines and
/// follow them, until the connection ends (or is ended from the loop).
fn follow(
    socket: Option<PathBuf>,
    service: &str,
    generation: u64,
    slot: &Mutex<Option<Option<UnixStream>>>,
    sender: &Sender<Msg>,
) {
    let Ok(mut client) = control::open(socket) else { return };
    {
        let mut connection = slot.lock().unwrap_or_else(|e| e.into_inner());
        // Ended while connecting: the pane moved on.
        let (Some(waiting), Ok(handle)) = (connection.as_mut(), client.handle()) else { return };
        *waiting = Some(handle);
    }
    // Following has no end of its own: no timeout.
    client.set_timeout(None);
    let request = Request::Logs {
        names: vec![service.to_string()],
        lines: LOG_HISTORY,
        follow: true,
        since: None,
        stream: None,
    };
    if client.send(request).is_err() {
        return;
    }
    while let Ok(Some(Ok(LogsItem::Line(line)))) = client.next_log() {
        let entry = LogEntry { stream: line.stream, text: line.line };
        if sender.send(Msg::Log { generation, service: service.to_string(), entry }).is_err() {
            return;
        }
    }
}

/// The keyboard, signal, status and events threads.
fn start_feeds(
    socket: Option<PathBuf>,
    client: Client,
    interval: Duration,
    sender: &Sender<Msg>,
) -> io::Result<()> {
    let keys = sender.clone();
    std::thread::Builder::new().name("keys".into()).spawn(move || {
        let mut decoder = Decoder::default();
        let mut bytes = [0u8; 256];
        loop {
            let typed = match nix::unistd::read(io::stdin().as_fd(), &mut bytes) {
                Ok(0) => Err("end of input".to_string()),
                Ok(n) => Ok(decoder.feed(&bytes[..n])),
                Err(nix::errno::Errno::EINTR) => Ok(Vec::new()),
                Err(err) => Err(err.desc().to_lowercase()),
            };
            match typed {
                Ok(typed) => {
                    if typed.into_iter().any(|key| keys.send(Msg::Input(key)).is_err()) {
                        return;
                    }
                }
                Err(why) => {
                    let _ = keys.send(Msg::InputGone(why));
                    return;
                }
            }
        }
    })?;

    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP, SIGWINCH};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGWINCH])?;
    let signalled = sender.clone();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for signal in signals.forever() {
            if signalled.send(Msg::Signal(signal)).is_err() {
                return;
            }
        }
    })?;

    let (polled, events_socket) = (sender.clone(), socket.clone());
    let (refresh, refreshed) = mpsc::channel();
    std::thread::Builder::new()
        .name("status".into())
        .spawn(move || poll_status(socket, Some(client), interval, refreshed, polled))?;
    let followed = sender.clone();
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || follow_events(events_socket, refresh, followed))?;
    Ok(())
}

/// Ask for `status` every `interval` (and when the events connection was
/// made again: the supervisor may be a new one), on one connection kept
/// open, opened again when it breaks.
fn poll_status(
    socket: Option<PathBuf>,
    mut client: Option<Client>,
    interval: Duration,
    refreshed: Receiver<()>,
    sender: Sender<Msg>,
) {
    loop {
        let asked = Instant::now();
        let mut answer = None;
        // A kept connection may have broken (the supervisor restarted):
        // one fresh attempt before saying it is gone.
        for _ in 0..2 {
            let mut current = match client.take() {
                Some(current) => current,
                None => match control::open(socket.clone()) {
                    Ok(fresh) => fresh,
                    Err((message, _)) => {
                        answer = Some(Err(message));
                        break;
                    }
                },
            };
            current.set_timeout(Some(answer_within()));
            match current.call::<StatusReply>(Request::Status { names: Vec::new() }) {
                Ok(Ok(reply)) => {
                    client = Some(current);
                    answer = Some(Ok(reply));
                    break;
                }
                Ok(Err(error)) => answer = Some(Err(error.error.message)),
                Err(err) if control::timed_out(&err) => {
                    answer = Some(Err(control::no_answer_message(answer_within())));
                    break;
                }
                Err(err) => answer = Some(Err(tend_core::text::without_os_errors(&err.to_string()))),
            }
        }
        let msg = match answer {
            Some(Ok(mut reply)) => {
                procfs::fill(&mut reply);
                Msg::Status(Box::new(reply), asked, Instant::now())
            }
            Some(Err(why)) => Msg::Lost(why),
            None => Msg::Lost("no answer".into()),
        };
        if sender.send(msg).is_err() {
            return;
        }
        let next = if client.is_some() { interval } else { RETRY_EVERY };
        match refreshed.recv_timeout(next.saturating_sub(asked.elapsed())) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(next.saturating_sub(asked.elapsed())),
        }
    }
}

/// Follow the supervisor's events, replayed from where each service is
/// (`since_start`) at every new connection, so that nothing is missed
/// across a reconnection or an overflow. A supervisor without events (an
/// older tend) leaves the view to the status poll.
fn follow_events(socket: Option<PathBuf>, refresh: Sender<()>, sender: Sender<Msg>) {
    let mut first = true;
    loop {
        let started = Instant::now();
        match control::open(socket.clone()) {
            Err((why, _)) => {
                if sender.send(Msg::Lost(why)).is_err() {
                    return;
                }
            }
            Ok(mut client) => {
                client.set_timeout(None);
                if client.send(Request::Events { names: Vec::new(), since_start: true }).is_ok() {
                    loop {
                        match client.next_event() {
                            Ok(Some(Ok(EventsItem::Event(line)))) => {
                                let msg = Msg::Event(Box::new(line.event), line.time, Instant::now());
                                if sender.send(msg).is_err() {
                                    return;
                                }
                            }
                            Ok(Some(Ok(EventsItem::Subscribed { .. }))) => {
                                // Connected again: the rows may be another
                                // supervisor's; the status poll looks now.
                                // The first time too: the replay gives each
                                // service's events since its last start, not
                                // the restarts counted before the subscription.
                                let _ = refresh.send(());
                                if first && sender.send(Msg::Following).is_err() {
                                    return;
                                }
                                first = false;
                            }
                            // Fell behind: again, with a fresh replay.
                            Ok(Some(Ok(EventsItem::Overflow))) => break,
                            Ok(Some(Err(error))) if error.error.code == ErrorCode::BadRequest => {
                                let _ = sender.send(Msg::Following);
                                return;
                            }
                            Ok(Some(Err(_))) | Ok(None) | Err(_) => break,
                        }
                    }
                }
            }
        }
        std::thread::sleep(RETRY_EVERY.saturating_sub(started.elapsed()));
    }
}

impl Feeds {
    /// Follow `service`'s log lines (ending the pane's previous connection).
    /// The connection is made on the pane's thread: a supervisor slow to
    /// accept must not freeze the screen.
    fn follow_logs(&mut self, service: Option<String>) {
        if let Some(previous) = self.logs.take() {
            previous.end();
        }
        let Some(service) = service else { return };
        self.log_generation += 1;
        let feed = LogFeed { generation: self.log_generation, connection: Arc::new(Mutex::new(Some(None))) };
        let (generation, slot) = (feed.generation, feed.connection.clone());
        let (socket, sender) = (self.socket.clone(), self.sender.clone());
        self.logs = Some(feed);
        let spawned = std::thread::Builder::new().name("logs".into()).spawn(move || {
            follow(socket, &service, generation, &slot, &sender);
            let _ = sender.send(Msg::LogEnded { generation, service });
        });
        if spawned.is_err() {
            self.logs = None;
        }
    }

    /// Send `command` for `name` and report its answer when it comes.
    fn send(&self, command: Command, name: String) {
        let target = |name: String| Target::names(vec![name]);
        let request = match command {
            Command::Start => Request::Start(target(name)),
            Command::Restart => Request::Restart(target(name)),
            Command::Stop => Request::Stop(target(name)),
            Command::Signal(signal) => Request::Signal { signal, names: vec![name] },
        };
        let socket = self.socket.clone();
        let sender = self.sender.clone();
        let spawned = std::thread::Builder::new().name("request".into()).spawn(move || {
            let (ok, text) = match control::open(socket) {
                Err((message, _)) => (false, message),
                // The supervisor's own stop and start timeouts bound the wait.
                Ok(mut client) => match client.call::<ResultsReply>(request) {
                    Ok(answer) => model::outcome(answer as Answer<ResultsReply>),
                    Err(err) => (
                        false,
                        format!("no answer: {}", tend_core::text::without_os_errors(&err.to_string())),
                    ),
                },
            };
            let _ = sender.send(Msg::Outcome { ok, text });
        });
        if let Err(err) = spawned {
            let _ = self.sender.send(Msg::Outcome { ok: false, text: format!("cannot send: {err}") });
        }
    }
}

// ------------------------------------------------------------ the loop

/// Redraw, wait for news, apply all of it, redraw: until a way out.
fn run(model: &mut Model, palette: render::Palette, mut feeds: Feeds) -> io::Result<i32> {
    let mut terminal = blank_screen()?;
    // The first frame waits until the events are followed (at most
    // FIRST_FRAME_WAIT): from the moment the table shows, what happens is
    // shown as it happens (a crash just before the subscription would
    // otherwise come back in the replay without its restart count).
    let until = Instant::now() + FIRST_FRAME_WAIT;
    loop {
        match feeds.receiver.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Msg::Following) => break,
            Ok(msg) => {
                if let Some(status) = handle(msg, model, &mut feeds, &mut terminal)? {
                    return Ok(status);
                }
            }
            Err(_) => break,
        }
    }
    loop {
        draw(&mut terminal, model, palette)?;
        if std::env::var_os("TEND_TOP_TEST_PANIC").is_some() {
            // How tests/top.rs checks that a panic gives the terminal back,
            // in the release build too, where a panic aborts.
            panic!("TEND_TOP_TEST_PANIC is set");
        }
        let Ok(first) = feeds.receiver.recv() else { return Ok(exit::FAILURE) };
        let mut next = Some(first);
        while let Some(msg) = next {
            if let Some(status) = handle(msg, model, &mut feeds, &mut terminal)? {
                return Ok(status);
            }
            next = feeds.receiver.try_recv().ok();
        }
    }
}

/// Apply one message; `Some(status)` to quit with.
fn handle(msg: Msg, model: &mut Model, feeds: &mut Feeds, terminal: &mut Screen) -> io::Result<Option<i32>> {
    let action = match msg {
        Msg::Input(Typed::Key(key)) => model.handle_key(key),
        Msg::Input(Typed::Suspend) => {
            suspend(terminal)?;
            None
        }
        Msg::Input(Typed::Redraw) => {
            *terminal = blank_screen()?;
            None
        }
        Msg::InputGone(why) => return Err(io::Error::other(format!("cannot read the keyboard: {why}"))),
        Msg::Signal(signal) if signal == signal_hook::consts::SIGTSTP => {
            suspend(terminal)?;
            None
        }
        // The next frame is drawn at the new size.
        Msg::Signal(signal) if signal == signal_hook::consts::SIGWINCH => None,
        Msg::Signal(signal) => return Ok(Some(128 + signal)),
        Msg::Status(reply, asked, at) => model.apply_status(*reply, asked, at),
        Msg::Event(event, time, at) => model.apply_event(*event, &time, at),
        Msg::Following => None,
        Msg::Lost(why) => {
            model.apply_lost(why, Instant::now());
            None
        }
        Msg::Log { generation, service, entry } => {
            if feeds.logs.as_ref().is_some_and(|feed| feed.generation == generation) {
                model.apply_log(&service, entry);
            }
            None
        }
        Msg::LogEnded { generation, service } => {
            if feeds.logs.as_ref().is_some_and(|feed| feed.generation == generation) {
                model.log_ended(&service);
            }
            None
        }
        Msg::Outcome { ok, text } => {
            model.apply_outcome(ok, text);
            None
        }
    };
    match action {
        None => {}
        Some(Action::Quit) => return Ok(Some(exit::OK)),
        Some(Action::Send { command, name }) => feeds.send(command, name),
        Some(Action::FollowLogs(service)) => feeds.follow_logs(service),
    }
    Ok(None)
}
