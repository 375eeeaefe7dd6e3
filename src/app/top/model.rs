//! `tend top`'s view, pure: the rows (from `status` replies), their order
//! and filter, the selection, what each key does, the stop confirmation and
//! the signal question, the log pane's lines, and what each cell says.
//!
//! No terminal, socket or clock here: time comes in as an argument, and
//! what a key asks for comes back as an [`Action`] for the terminal layer
//! (`top/mod.rs`) to carry out. Must not draw (that is `render.rs`).

use crate::app::control::{format_uptime, last_exit_text};
use crate::ctl::proto::{
    Answer, EventKind, LastExit, ReloadChange, ResultsReply, ServiceEvent, ServiceState, ServiceStatus,
    StatusReply, Stream,
};
use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// A key press, as the view understands it (the terminal layer translates
/// its own key events into these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Esc,
    Backspace,
    Char(char),
    /// Ctrl-C: quits from any mode.
    Interrupt,
}

/// A control request for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start,
    Restart,
    Stop,
    /// The signal's name (`SIGHUP`), already checked.
    Signal(String),
}

impl Command {
    /// `restarting`, for the message shown while it runs.
    fn doing(&self) -> String {
        match self {
            Command::Start => "starting".into(),
            Command::Restart => "restarting".into(),
            Command::Stop => "stopping".into(),
            Command::Signal(signal) => format!("sending {signal} to"),
        }
    }
}

/// What the terminal layer is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Send `command` for the service `name`.
    Send {
        command: Command,
        name: String,
    },
    /// Show this service's recent log lines and follow them; `None`: stop.
    FollowLogs(Option<String>),
}

/// The order of the rows (`o` cycles through them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By name, numbers in names by value (`worker@2` before `worker@10`).
    Name,
    /// The troubled first: failed, blocked, backoff, …, stopped last.
    State,
    /// Busiest first.
    Cpu,
    /// Largest first.
    Memory,
    /// Most restarted first.
    Restarts,
    /// Most recently (re)started first.
    Uptime,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::State => "state",
            Sort::Cpu => "cpu",
            Sort::Memory => "memory",
            Sort::Restarts => "restarts",
            Sort::Uptime => "uptime",
        }
    }

    fn next(self) -> Sort {
        match self {
            Sort::Name => Sort::State,
            Sort::State => Sort::Cpu,
            Sort::Cpu => Sort::Memory,
            Sort::Memory => Sort::Restarts,
            Sort::Restarts => Sort::Uptime,
            Sort::Uptime => Sort::Name,
        }
    }
}

/// What keys mean right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing the filter after `/`.
    Filter,
    /// `x` was pressed on this service: `y` stops it, anything else does not.
    ConfirmStop(String),
    /// `K` was pressed on this service: which signal?
    AskSignal {
        name: String,
        text: String,
    },
}

/// One service's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub status: ServiceStatus,
    /// Since the previous reply, when both had CPU figures.
    pub cpu_percent: Option<f64>,
    /// When `status.uptime_secs` was true (it counts on from there).
    pub uptime_at: Instant,
    /// When an event last changed the row: a status reply asked for
    /// before that is older than what the row shows.
    pub event_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub tone: Tone,
}

/// Whether the supervisor answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connected,
    /// It stopped answering (why); the rows are the last ones seen.
    Lost(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: Stream,
    pub text: String,
}

/// The log pane: one service's recent lines, followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPane {
    pub service: String,
    pub lines: VecDeque<LogEntry>,
    /// Its `logs -f` connection is open (false once it ended: reopened
    /// when the supervisor answers again).
    pub following: bool,
}

/// Lines the log pane keeps (a terminal shows fewer).
pub const LOG_LINES: usize = 500;

/// The whole view.
#[derive(Debug)]
pub struct Model {
    rows: Vec<Row>,
    /// The previous CPU reading of each service: (µs, when).
    samples: HashMap<String, (u64, Instant)>,
    /// When the supervisor stopped answering (uptimes stop there).
    lost_at: Option<Instant>,
    pub sort: Sort,
    pub filter: String,
    pub mode: Mode,
    /// Index into [`Model::visible`].
    selected: usize,
    /// The selected service, so that the selection stays on it when rows
    /// move (re-sorted, filtered, a service added).
    selected_name: Option<String>,
    pub logs: Option<LogPane>,
    pub message: Option<Message>,
    pub link: Link,
    pub supervisor_pid: Option<i32>,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    pub fn new() -> Model {
        Model {
            rows: Vec::new(),
            samples: HashMap::new(),
            lost_at: None,
            sort: Sort::Name,
            filter: String::new(),
            mode: Mode::Normal,
            selected: 0,
            selected_name: None,
            logs: None,
            message: None,
            link: Link::Connected,
            supervisor_pid: None,
        }
    }

    // ------------------------------------------------------------ rows

    /// The rows shown: filtered, then sorted.
    pub fn visible(&self) -> Vec<&Row> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&Row> =
            self.rows.iter().filter(|row| matches_filter(&row.status, &needle)).collect();
        tend_core::sort::sort_by(&mut rows, |a, b| compare(self.sort, a, b));
        rows
    }

    /// Every service known, shown or not.
    pub fn total(&self) -> usize {
        self.rows.len()
    }

    /// The selected row's index in [`Model::visible`] (0 when there are none).
    pub fn selected_index(&self) -> usize {
        self.selected
    }

    /// The selected service's name.
    pub fn selected(&self) -> Option<String> {
        self.visible().get(self.selected).map(|row| row.status.name.clone())
    }

    /// How long `row`'s process has run at `now`: its uptime when last
    /// told plus the time since (until the supervisor stopped answering).
    pub fn uptime(&self, row: &Row, now: Instant) -> Option<f64> {
        let until = match (&self.link, self.lost_at) {
            (Link::Lost(_), Some(lost)) => lost.min(now),
            _ => now,
        };
        let since = until.saturating_duration_since(row.uptime_at);
        row.status.uptime_secs.map(|secs| secs + since.as_secs_f64())
    }

    /// A `status` reply, asked for at `asked` and arrived at `at`. A row an
    /// event changed after `asked` keeps what the event said (the reply
    /// may predate it) and takes only the reply's CPU and memory figures.
    pub fn apply_status(&mut self, reply: StatusReply, asked: Instant, at: Instant) -> Option<Action> {
        let mut samples = HashMap::new();
        let mut previous: HashMap<String, Row> =
            std::mem::take(&mut self.rows).into_iter().map(|row| (row.status.name.clone(), row)).collect();
        self.rows = reply
            .services
            .into_iter()
            .map(|status| {
                let cpu_percent = status.cpu_usec.and_then(|usec| {
                    samples.insert(status.name.clone(), (usec, at));
                    let (before, then) = self.samples.get(&status.name)?;
                    cpu_percent(*before, *then, usec, at)
                });
                match previous.remove(&status.name) {
                    Some(mut newer) if newer.event_at.is_some_and(|event| event > asked) => {
                        newer.status.cpu_usec = status.cpu_usec;
                        newer.status.memory_bytes = status.memory_bytes;
                        newer.cpu_percent = cpu_percent;
                        newer
                    }
                    _ => Row { status, cpu_percent, uptime_at: at, event_at: None },
                }
            })
            .collect();
        self.samples = samples;
        self.supervisor_pid = Some(reply.pid);
        self.reselect();
        self.answered()
    }

    /// The supervisor answered (a reply or an event). If it had stopped,
    /// say it is back, and have a log pane whose stream ended follow again.
    fn answered(&mut self) -> Option<Action> {
        if let Link::Lost(_) = self.link {
            self.link = Link::Connected;
            self.lost_at = None;
            self.say(Tone::Info, "the supervisor answers again");
        }
        match &mut self.logs {
            Some(pane) if !pane.following => {
                pane.following = true;
                pane.lines.clear();
                Some(Action::FollowLogs(Some(pane.service.clone())))
            }
            _ => None,
        }
    }

    /// An event of the supervisor's, arrived at `at`: the row shows it at
    /// once (state, pid, uptime, restarts, reason, last exit); the next
    /// status reply fills in the rest. A service the view does not know
    /// yet (a reload added it) appears with the next reply.
    pub fn apply_event(&mut self, event: ServiceEvent, time: &str, at: Instant) -> Option<Action> {
        let answered = self.answered();
        if let EventKind::Reload { change: ReloadChange::Removed } = event.kind {
            self.rows.retain(|row| row.status.name != event.service);
            self.reselect();
            return answered;
        }
        let Some(row) = self.rows.iter_mut().find(|row| row.status.name == event.service) else {
            return answered;
        };
        let status = &mut row.status;
        status.state = event.state;
        row.event_at = Some(at);
        match event.kind {
            EventKind::State { pid, reason, .. } => {
                status.pid = pid;
                status.reason = reason;
            }
            EventKind::Started { pid } => {
                status.pid = Some(pid);
                status.uptime_secs = Some(0.0);
                row.uptime_at = at;
                status.reason = None;
            }
            EventKind::Ready => status.reason = None,
            EventKind::Exited(detail) => {
                status.pid = None;
                status.uptime_secs = None;
                status.healthy = false;
                status.last_exit = Some(LastExit {
                    kind: detail.kind,
                    code: detail.code,
                    signal: detail.signal,
                    core_dumped: detail.core_dumped,
                    step: detail.step,
                    errno: detail.errno,
                    message: event.message,
                    time: time.to_string(),
                });
            }
            EventKind::Backoff { restarts, .. } => {
                status.restarts = restarts;
                let exit =
                    status.last_exit.as_ref().map(|last| format!("{}; ", last.message)).unwrap_or_default();
                status.reason = Some(format!("{exit}{}", event.message));
            }
            EventKind::Failed { reason, .. } => {
                status.pid = None;
                status.uptime_secs = None;
                status.reason = Some(reason);
            }
            EventKind::Stopped { .. } => {
                status.pid = None;
                status.uptime_secs = None;
                status.reason = None;
            }
            EventKind::Stopping { .. }
            | EventKind::Health { .. }
            | EventKind::Reload { .. }
            | EventKind::Scale { .. }
            | EventKind::Unknown => {}
        }
        status.healthy =
            matches!(status.state, ServiceState::Running | ServiceState::Ready | ServiceState::Completed);
        self.reselect();
        answered
    }

    /// The supervisor stopped answering (noticed at `at`); the rows stay as
    /// last seen, their uptimes stop counting.
    pub fn apply_lost(&mut self, why: String, at: Instant) {
        // The first word on it stays (the status poll and the events
        // connection may each say it their way).
        if let Link::Lost(_) = self.link {
            return;
        }
        self.lost_at = Some(at);
        self.say(Tone::Error, why.clone());
        self.link = Link::Lost(why);
        self.samples.clear();
        for row in &mut self.rows {
            row.cpu_percent = None;
        }
    }

    /// A line of `service`'s output.
    pub fn apply_log(&mut self, service: &str, entry: LogEntry) {
        if let Some(pane) = self.logs.as_mut().filter(|pane| pane.service == service) {
            if pane.lines.len() == LOG_LINES {
                pane.lines.pop_front();
            }
            pane.lines.push_back(entry);
        }
    }

    /// `service`'s log stream ended.
    pub fn log_ended(&mut self, service: &str) {
        if let Some(pane) = self.logs.as_mut().filter(|pane| pane.service == service) {
            pane.following = false;
        }
    }

    /// A request finished: what it said.
    pub fn apply_outcome(&mut self, ok: bool, text: String) {
        self.say(if ok { Tone::Info } else { Tone::Error }, text);
    }

    fn say(&mut self, tone: Tone, text: impl Into<String>) {
        self.message = Some(Message { text: text.into(), tone });
    }

    /// Keep the selection on the same service after the rows changed; if
    /// it is gone, on the row now at its place.
    fn reselect(&mut self) {
        let names: Vec<String> = self.visible().iter().map(|row| row.status.name.clone()).collect();
        if names.is_empty() {
            self.selected = 0;
            return;
        }
        if let Some(at) = self.selected_name.as_ref().and_then(|name| names.iter().position(|n| n == name)) {
            self.selected = at;
        } else {
            self.selected = self.selected.min(names.len() - 1);
            self.selected_name = Some(names[self.selected].clone());
        }
    }

    /// Move the selection by `delta` rows (clamped); a log pane follows it.
    fn move_selection(&mut self, delta: isize) -> Option<Action> {
        let count = self.visible().len();
        if count == 0 {
            return None;
        }
        let at = (self.selected as isize + delta).clamp(0, count as isize - 1) as usize;
        self.selected = at;
        self.selected_name = self.selected();
        self.logs_follow_selection()
    }

    fn logs_follow_selection(&mut self) -> Option<Action> {
        let name = self.selected()?;
        let pane = self.logs.as_mut()?;
        if pane.service == name {
            return None;
        }
        *pane = LogPane { service: name.clone(), lines: VecDeque::new(), following: true };
        Some(Action::FollowLogs(Some(name)))
    }

    // ------------------------------------------------------------ keys

    /// What `key` does in the current mode.
    pub fn handle_key(&mut self, key: Key) -> Option<Action> {
        if key == Key::Interrupt {
            return Some(Action::Quit);
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(key),
            Mode::Filter => self.filter_key(key),
            Mode::ConfirmStop(name) => {
                if matches!(key, Key::Char('y') | Key::Char('Y')) {
                    self.send(Command::Stop, name)
                } else {
                    self.say(Tone::Info, format!("{name}: not stopped"));
                    None
                }
            }
            Mode::AskSignal { name, text } => self.signal_key(key, name, text),
        }
    }

    fn normal_key(&mut self, key: Key) -> Option<Action> {
        match key {
            Key::Up | Key::Char('k') => self.move_selection(-1),
            Key::Down | Key::Char('j') => self.move_selection(1),
            Key::PageUp => self.move_selection(-10),
            Key::PageDown => self.move_selection(10),
            Key::Home | Key::Char('g') => self.move_selection(isize::MIN / 2),
            Key::End | Key::Char('G') => self.move_selection(isize::MAX / 2),
            Key::Char('q') => Some(Action::Quit),
            Key::Char('s') => {
                let name = self.selected_or_say()?;
                self.send(Command::Start, name)
            }
            Key::Char('r') => {
                let name = self.selected_or_say()?;
                self.send(Command::Restart, name)
            }
            Key::Char('x') => {
                self.mode = Mode::ConfirmStop(self.selected_or_say()?);
                None
            }
            Key::Char('K') => {
                self.mode = Mode::AskSignal { name: self.selected_or_say()?, text: String::new() };
                None
            }
            Key::Char('l') => {
                if self.logs.take().is_some() {
                    return Some(Action::FollowLogs(None));
                }
                let name = self.selected()?;
                self.logs = Some(LogPane { service: name.clone(), lines: VecDeque::new(), following: true });
                Some(Action::FollowLogs(Some(name)))
            }
            Key::Char('/') => {
                self.mode = Mode::Filter;
                None
            }
            Key::Char('o') => {
                self.sort = self.sort.next();
                self.reselect();
                None
            }
            Key::Esc if !self.filter.is_empty() => {
                self.set_filter(String::new());
                self.logs_follow_selection()
            }
            Key::Esc if self.logs.is_some() => {
                self.logs = None;
                Some(Action::FollowLogs(None))
            }
            _ => None,
        }
    }

    /// The selected service, or a message that there is none.
    fn selected_or_say(&mut self) -> Option<String> {
        let name = self.selected();
        if name.is_none() {
            self.say(Tone::Error, "no service selected");
        }
        name
    }

    fn send(&mut self, command: Command, name: String) -> Option<Action> {
        if let Link::Lost(_) = self.link {
            self.say(Tone::Error, "the supervisor does not answer: nothing sent");
            return None;
        }
        self.say(Tone::Info, format!("{} {name}…", command.doing()));
        Some(Action::Send { command, name })
    }

    fn filter_key(&mut self, key: Key) -> Option<Action> {
        match key {
            Key::Char(c) if !c.is_control() => {
                let mut filter = self.filter.clone();
                filter.push(c);
                self.set_filter(filter);
                self.mode = Mode::Filter;
                self.logs_follow_selection()
            }
            Key::Backspace => {
                let mut filter = self.filter.clone();
                filter.pop();
                self.set_filter(filter);
                self.mode = Mode::Filter;
                self.logs_follow_selection()
            }
            Key::Esc => {
                self.set_filter(String::new());
                self.logs_follow_selection()
            }
            Key::Enter => self.logs_follow_selection(),
            Key::Up | Key::Down => {
                self.mode = Mode::Filter;
                self.move_selection(if key == Key::Up { -1 } else { 1 })
            }
            _ => {
                self.mode = Mode::Filter;
                None
            }
        }
    }

    /// A new filter: the selection stays on its service if it still shows,
    /// else goes to the first row that does.
    fn set_filter(&mut self, filter: String) {
        self.filter = filter;
        let first = {
            let visible = self.visible();
            let kept = self
                .selected_name
                .as_ref()
                .is_some_and(|name| visible.iter().any(|r| &r.status.name == name));
            (!kept).then(|| visible.first().map(|row| row.status.name.clone()))
        };
        if let Some(first) = first {
            self.selected = 0;
            if first.is_some() {
                self.selected_name = first;
            }
        }
        self.reselect();
    }

    fn signal_key(&mut self, key: Key, name: String, mut text: String) -> Option<Action> {
        match key {
            Key::Char(c) if (c.is_ascii_alphanumeric() || c == '+' || c == '-') && text.len() < 16 => {
                text.push(c);
            }
            Key::Backspace => {
                text.pop();
            }
            Key::Esc => {
                self.say(Tone::Info, format!("{name}: no signal sent"));
                return None;
            }
            Key::Enter if text.is_empty() => {
                self.say(Tone::Info, format!("{name}: no signal sent"));
                return None;
            }
            Key::Enter => match tend_core::text::parse_signal(&text) {
                Ok(signal) => return self.send(Command::Signal(tend_core::text::signal_name(signal)), name),
                Err(why) => self.say(Tone::Error, why),
            },
            _ => {}
        }
        self.mode = Mode::AskSignal { name, text };
        None
    }

    // ------------------------------------------------------------ words

    /// The prompt or message for the line above the footer.
    pub fn prompt(&self) -> Option<String> {
        match &self.mode {
            Mode::Normal => None,
            Mode::Filter => Some(format!("filter (name or state): {}▏", self.filter)),
            Mode::ConfirmStop(name) => Some(format!("stop {name}? y stops it, any other key does not")),
            Mode::AskSignal { name, text } => {
                Some(format!("signal to send to {name} (HUP, USR1, 9, …): {text}▏"))
            }
        }
    }

    /// The footer: the keys, as (key, what it does).
    pub fn footer(&self) -> Vec<(&'static str, &'static str)> {
        match self.mode {
            Mode::Normal => vec![
                ("↑↓/jk", "select"),
                ("s", "start"),
                ("r", "restart"),
                ("x", "stop"),
                ("K", "signal"),
                ("l", "logs"),
                ("/", "filter"),
                ("o", "sort"),
                ("q", "quit"),
            ],
            Mode::Filter => vec![("Enter", "keep filter"), ("Esc", "clear filter"), ("↑↓", "select")],
            Mode::ConfirmStop(_) => vec![("y", "stop"), ("any other key", "cancel")],
            Mode::AskSignal { .. } => vec![("Enter", "send"), ("Esc", "cancel")],
        }
    }

    /// The title line: how many services in which state (left), and the
    /// order and filter (right, kept whole when the line is short).
    pub fn title(&self) -> (String, String) {
        let mut counts: Vec<(ServiceState, usize)> = Vec::new();
        for row in &self.rows {
            match counts.iter_mut().find(|(state, _)| *state == row.status.state) {
                Some((_, n)) => *n += 1,
                None => counts.push((row.status.state, 1)),
            }
        }
        tend_core::sort::sort_by_key(&mut counts, |(state, _)| state_rank(*state));
        let states: Vec<String> = counts.iter().map(|(state, n)| format!("{n} {}", state.as_str())).collect();
        let mut left =
            format!("tend top  {} service{}", self.rows.len(), if self.rows.len() == 1 { "" } else { "s" });
        if !states.is_empty() {
            left.push_str(&format!(": {}", states.join(", ")));
        }
        let mut right = format!("sort: {}", self.sort.as_str());
        if !self.filter.is_empty() {
            right = format!("filter: {} ({} shown)  {right}", self.filter, self.visible().len());
        }
        (left, right)
    }

    /// What the line above the footer says when no prompt is up: the last
    /// message, else the selected service's whole reason (the table cuts it).
    pub fn detail(&self) -> Option<Message> {
        if let Some(message) = &self.message {
            return Some(message.clone());
        }
        let rows = self.visible();
        let row = rows.get(self.selected)?;
        let status = &row.status;
        let text = status
            .reason
            .clone()
            .or_else(|| status.last_exit.as_ref().map(|last| format!("last exit: {}", last.message)))?;
        Some(Message { text: format!("{}: {text}", status.name), tone: Tone::Info })
    }
}

/// What a finished start, restart, stop or signal says, and whether it
/// did as asked: `web: restarted (pid 4242)`.
pub fn outcome(answer: Answer<ResultsReply>) -> (bool, String) {
    let results = |results: &[crate::ctl::proto::ServiceResult]| -> Vec<String> {
        results.iter().map(|result| format!("{}: {}", result.name, result.message)).collect()
    };
    match answer {
        Ok(reply) => (true, results(&reply.results).join("; ")),
        Err(error) => match error.results.as_deref() {
            Some(done) if !done.is_empty() => (false, results(done).join("; ")),
            _ => (false, error.error.message),
        },
    }
}

/// CPU use between two readings of a cgroup's CPU time, in percent of one
/// CPU; `None` when the counter went back (a new cgroup) or no time passed.
pub fn cpu_percent(before_usec: u64, then: Instant, now_usec: u64, now: Instant) -> Option<f64> {
    let wall = now.checked_duration_since(then)?.as_micros() as f64;
    if wall <= 0.0 || now_usec < before_usec {
        return None;
    }
    Some((now_usec - before_usec) as f64 * 100.0 / wall)
}

fn matches_filter(status: &ServiceStatus, needle_lowercase: &str) -> bool {
    needle_lowercase.is_empty()
        || status.name.to_lowercase().contains(needle_lowercase)
        || status.state.as_str().contains(needle_lowercase)
}

/// The troubled states first.
fn state_rank(state: ServiceState) -> u8 {
    match state {
        ServiceState::Failed => 0,
        ServiceState::Blocked => 1,
        ServiceState::Backoff => 2,
        ServiceState::Exited => 3,
        ServiceState::Unknown => 4,
        ServiceState::Waiting => 5,
        ServiceState::Starting => 6,
        ServiceState::Stopping => 7,
        ServiceState::Running => 8,
        ServiceState::Ready => 9,
        ServiceState::Completed => 10,
        ServiceState::Stopped => 11,
    }
}

fn compare(sort: Sort, a: &Row, b: &Row) -> Ordering {
    let by_name = || natural_cmp(&a.status.name, &b.status.name);
    let descending = |x: Option<f64>, y: Option<f64>| {
        y.unwrap_or(-1.0).partial_cmp(&x.unwrap_or(-1.0)).unwrap_or(Ordering::Equal)
    };
    let first = match sort {
        Sort::Name => Ordering::Equal,
        Sort::State => state_rank(a.status.state).cmp(&state_rank(b.status.state)),
        Sort::Cpu => descending(a.cpu_percent, b.cpu_percent),
        Sort::Memory => {
            descending(a.status.memory_bytes.map(|m| m as f64), b.status.memory_bytes.map(|m| m as f64))
        }
        Sort::Restarts => b.status.restarts.cmp(&a.status.restarts),
        // Shortest uptime first; services without a process last.
        Sort::Uptime => {
            let key = |row: &Row| row.status.uptime_secs.unwrap_or(f64::INFINITY);
            key(a).partial_cmp(&key(b)).unwrap_or(Ordering::Equal)
        }
    };
    first.then_with(by_name)
}

/// Names compared with their digit runs as numbers: `worker@2` before
/// `worker@10`, so that a pool's instances sit together and in order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (run(a), run(b));
                let (da, db) = (&a[..na], &b[..nb]);
                // Compare by value: strip leading zeros, then length, then digits.
                let strip = |d: &[u8]| -> usize { d.iter().take_while(|c| **c == b'0').count() };
                let (va, vb) = (&da[strip(da)..], &db[strip(db)..]);
                let order = va.len().cmp(&vb.len()).then_with(|| va.cmp(vb)).then_with(|| na.cmp(&nb));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

// ------------------------------------------------------------ cells

/// The table's columns.
pub const HEADERS: [&str; 8] =
    ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "CPU%", "MEM", "LAST EXIT / REASON"];

/// One row's cells, in [`HEADERS`] order.
pub fn cells(model: &Model, row: &Row, now: Instant) -> [String; 8] {
    let status = &row.status;
    let dash = || "-".to_string();
    [
        status.name.clone(),
        status.state.as_str().to_string(),
        status.pid.map(|pid| pid.to_string()).unwrap_or_else(dash),
        model.uptime(row, now).map(format_uptime).unwrap_or_else(dash),
        status.restarts.to_string(),
        // Figures of a service with a process; a finished one's cgroup may linger.
        row.cpu_percent.filter(|_| status.pid.is_some()).map(format_percent).unwrap_or_else(dash),
        status.memory_bytes.filter(|_| status.pid.is_some()).map(format_memory).unwrap_or_else(dash),
        last_column(status),
    ]
}

/// Why it is where it is, else how its last run ended, else its own
/// `STATUS=` text.
fn last_column(status: &ServiceStatus) -> String {
    if let Some(reason) = &status.reason {
        return reason.clone();
    }
    if status.last_exit.is_some() {
        return last_exit_text(status);
    }
    status.status_text.as_ref().map(|text| format!("\"{text}\"")).unwrap_or_default()
}

/// `0.0`, `12.5`, `250` (several CPUs).
pub fn format_percent(percent: f64) -> String {
    if percent >= 100.0 {
        format!("{percent:.0}")
    } else {
        format!("{percent:.1}")
    }
}

/// `812K`, `12.4M`, `1.5G`: htop's binary units, at most 5 characters.
pub fn format_memory(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, suffix) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if value >= 100.0 {
                format!("{value:.0}{suffix}")
            } else {
                format!("{value:.1}{suffix}")
            };
        }
    }
    format!("{bytes}B")
}

/// How a state looks: the colour the terminal layer gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateLook {
    /// Up and well (green).
    Good,
    /// On its way somewhere (yellow).
    Changing,
    /// Down against its wish (red).
    Bad,
    /// Down by choice (dim).
    Idle,
}

pub fn state_look(status: &ServiceStatus) -> StateLook {
    match status.state {
        ServiceState::Running | ServiceState::Ready | ServiceState::Completed => StateLook::Good,
        ServiceState::Starting | ServiceState::Stopping | ServiceState::Waiting => StateLook::Changing,
        ServiceState::Failed | ServiceState::Blocked | ServiceState::Backoff => StateLook::Bad,
        ServiceState::Exited if !status.healthy => StateLook::Bad,
        ServiceState::Exited | ServiceState::Stopped | ServiceState::Unknown => StateLook::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::proto::{ExitDetail, ExitKind, True};
    use std::time::Duration;

    fn status(name: &str, state: ServiceState, pid: Option<i32>) -> ServiceStatus {
        let up = matches!(state, ServiceState::Running | ServiceState::Ready);
        ServiceStatus {
            uptime_secs: up.then_some(65.0),
            healthy: up,
            ..crate::app::fixtures::service_status(name, state, pid)
        }
    }

    fn reply(services: Vec<ServiceStatus>) -> StatusReply {
        StatusReply { ok: True, pid: 1, services }
    }

    fn stack() -> Vec<ServiceStatus> {
        vec![
            status("web", ServiceState::Running, Some(30)),
            status("worker@10", ServiceState::Running, Some(12)),
            status("db", ServiceState::Ready, Some(10)),
            status("worker@2", ServiceState::Backoff, None),
            status("clock", ServiceState::Failed, None),
        ]
    }

    fn names(model: &Model) -> Vec<String> {
        model.visible().iter().map(|row| row.status.name.clone()).collect()
    }

    fn loaded() -> (Model, Instant) {
        let mut model = Model::new();
        let t0 = Instant::now();
        assert_eq!(model.apply_status(reply(stack()), t0, t0), None);
        (model, t0)
    }

    #[test]
    fn rows_sorted_by_name_numbers_by_value_first_selected() {
        let (model, _) = loaded();
        assert_eq!(names(&model), ["clock", "db", "web", "worker@2", "worker@10"]);
        assert_eq!(model.selected().as_deref(), Some("clock"), "the first row is selected at start");
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("a10", "a2"), Ordering::Greater);
        assert_eq!(natural_cmp("a02", "a2"), Ordering::Greater, "equal values: the longer spelling after");
        assert_eq!(natural_cmp("w@1", "w@1"), Ordering::Equal);
        assert_eq!(natural_cmp("w", "w@1"), Ordering::Less);
        assert_eq!(natural_cmp("db", "clock"), Ordering::Greater);
        assert_eq!(natural_cmp("x99999999999999999999999", "x100000000000000000000000"), Ordering::Less);
    }

    #[test]
    fn selection_moves_clamps_and_stays_on_its_service() {
        let (mut model, t0) = loaded();
        assert_eq!(model.handle_key(Key::Char('k')), None);
        assert_eq!(model.selected().as_deref(), Some("clock"), "no row above the first");
        model.handle_key(Key::Down);
        model.handle_key(Key::Char('j'));
        assert_eq!(model.selected().as_deref(), Some("web"));
        model.handle_key(Key::End);
        assert_eq!(model.selected().as_deref(), Some("worker@10"));
        model.handle_key(Key::Char('j'));
        assert_eq!(model.selected().as_deref(), Some("worker@10"), "no row below the last");
        model.handle_key(Key::Home);
        model.handle_key(Key::Down);
        assert_eq!(model.selected().as_deref(), Some("db"));
        // A new service sorted before it: the selection stays on db.
        let mut services = stack();
        services.push(status("cache", ServiceState::Running, Some(50)));
        model.apply_status(reply(services), t0 + Duration::from_secs(1), t0 + Duration::from_secs(1));
        assert_eq!(model.selected().as_deref(), Some("db"));
        assert_eq!(model.selected_index(), 2);
        // db removed (a reload): the row at its place is selected.
        let mut services: Vec<ServiceStatus> = stack().into_iter().filter(|s| s.name != "db").collect();
        services.push(status("cache", ServiceState::Running, Some(50)));
        model.apply_status(reply(services), t0 + Duration::from_secs(2), t0 + Duration::from_secs(2));
        assert_eq!(model.selected().as_deref(), Some("web"));
    }

    #[test]
    fn keys_ask_for_requests_on_the_selected_service() {
        let (mut model, _) = loaded();
        model.handle_key(Key::Down);
        assert_eq!(
            model.handle_key(Key::Char('s')),
            Some(Action::Send { command: Command::Start, name: "db".into() })
        );
        assert_eq!(model.message.as_ref().unwrap().text, "starting db…");
        assert_eq!(
            model.handle_key(Key::Char('r')),
            Some(Action::Send { command: Command::Restart, name: "db".into() })
        );
        assert_eq!(model.handle_key(Key::Char('q')), Some(Action::Quit));
        assert_eq!(model.handle_key(Key::Interrupt), Some(Action::Quit));
    }

    #[test]
    fn stop_asks_for_y() {
        let (mut model, _) = loaded();
        model.handle_key(Key::Down);
        assert_eq!(model.handle_key(Key::Char('x')), None, "nothing stops yet");
        assert_eq!(model.mode, Mode::ConfirmStop("db".into()));
        assert!(model.prompt().unwrap().starts_with("stop db? y"));
        assert_eq!(model.handle_key(Key::Char('n')), None);
        assert_eq!(model.mode, Mode::Normal);
        assert_eq!(model.message.as_ref().unwrap().text, "db: not stopped");
        // Any other key cancels, q included (it does not quit from the question).
        model.handle_key(Key::Char('x'));
        assert_eq!(model.handle_key(Key::Char('q')), None);
        assert_eq!(model.mode, Mode::Normal);
        model.handle_key(Key::Char('x'));
        assert_eq!(
            model.handle_key(Key::Char('y')),
            Some(Action::Send { command: Command::Stop, name: "db".into() })
        );
        assert_eq!(model.mode, Mode::Normal);
        // Ctrl-C quits from the question too.
        model.handle_key(Key::Char('x'));
        assert_eq!(model.handle_key(Key::Interrupt), Some(Action::Quit));
    }

    #[test]
    fn signal_asks_which_and_checks_it() {
        let (mut model, _) = loaded();
        model.handle_key(Key::Char('j'));
        model.handle_key(Key::Char('j'));
        assert_eq!(model.handle_key(Key::Char('K')), None);
        for c in "hpu".chars() {
            model.handle_key(Key::Char(c));
        }
        assert_eq!(model.mode, Mode::AskSignal { name: "web".into(), text: "hpu".into() });
        assert_eq!(model.handle_key(Key::Enter), None, "not a signal");
        assert!(model.message.as_ref().unwrap().text.contains("did you mean 'SIGHUP'"));
        assert_eq!(model.message.as_ref().unwrap().tone, Tone::Error);
        model.handle_key(Key::Backspace);
        model.handle_key(Key::Backspace);
        model.handle_key(Key::Char('u'));
        model.handle_key(Key::Char('p'));
        assert_eq!(
            model.handle_key(Key::Enter),
            Some(Action::Send { command: Command::Signal("SIGHUP".into()), name: "web".into() })
        );
        assert_eq!(model.message.as_ref().unwrap().text, "sending SIGHUP to web…");
        model.handle_key(Key::Char('K'));
        model.handle_key(Key::Char('9'));
        assert_eq!(
            model.handle_key(Key::Enter),
            Some(Action::Send { command: Command::Signal("SIGKILL".into()), name: "web".into() })
        );
        model.handle_key(Key::Char('K'));
        assert_eq!(model.handle_key(Key::Esc), None);
        assert_eq!(model.mode, Mode::Normal);
        assert_eq!(model.handle_key(Key::Char('q')), Some(Action::Quit), "back to normal keys");
    }

    #[test]
    fn filter_narrows_by_name_or_state_as_typed() {
        let (mut model, _) = loaded();
        model.handle_key(Key::Char('/'));
        for c in "work".chars() {
            assert_eq!(model.handle_key(Key::Char(c)), None);
        }
        assert_eq!(names(&model), ["worker@2", "worker@10"]);
        assert_eq!(model.selected().as_deref(), Some("worker@2"));
        model.handle_key(Key::Enter);
        assert_eq!(model.mode, Mode::Normal);
        assert_eq!(model.title().1, "filter: work (2 shown)  sort: name");
        // q quits in normal mode, but is text while filtering.
        model.handle_key(Key::Char('/'));
        model.handle_key(Key::Backspace);
        model.handle_key(Key::Backspace);
        model.handle_key(Key::Backspace);
        model.handle_key(Key::Backspace);
        model.handle_key(Key::Char('F'));
        model.handle_key(Key::Char('a'));
        assert_eq!(names(&model), ["clock"], "by state, case-insensitively");
        model.handle_key(Key::Char('q'));
        assert!(names(&model).is_empty());
        assert_eq!(model.selected(), None);
        assert_eq!(model.handle_key(Key::Esc), None);
        assert_eq!(model.filter, "");
        assert_eq!(names(&model).len(), 5);
        // No selection: a request says so instead.
        model.handle_key(Key::Char('/'));
        model.handle_key(Key::Char('z'));
        model.handle_key(Key::Enter);
        assert_eq!(model.handle_key(Key::Char('r')), None);
        assert_eq!(model.message.as_ref().unwrap().text, "no service selected");
        assert_eq!(model.handle_key(Key::Esc), None, "Esc clears the filter in normal mode too");
        assert_eq!(names(&model).len(), 5);
    }

    #[test]
    fn sort_cycles() {
        let (mut model, t0) = loaded();
        model.handle_key(Key::Char('o'));
        assert_eq!(model.sort, Sort::State);
        assert_eq!(names(&model), ["clock", "worker@2", "web", "worker@10", "db"]);
        assert_eq!(model.selected().as_deref(), Some("clock"));
        let mut services = stack();
        services[0].restarts = 3;
        services[3].restarts = 7;
        services[0].memory_bytes = Some(10 << 20);
        services[1].memory_bytes = Some(20 << 20);
        model.apply_status(reply(services), t0, t0);
        model.handle_key(Key::Char('o'));
        model.handle_key(Key::Char('o'));
        assert_eq!(model.sort, Sort::Memory);
        assert_eq!(names(&model)[..2], ["worker@10", "web"]);
        model.handle_key(Key::Char('o'));
        assert_eq!(names(&model)[..2], ["worker@2", "web"]);
        for _ in 0..2 {
            model.handle_key(Key::Char('o'));
        }
        assert_eq!(model.sort, Sort::Name);
    }

    #[test]
    fn cpu_percent_from_two_readings() {
        let t0 = Instant::now();
        let mut model = Model::new();
        let mut services = stack();
        services[0].cpu_usec = Some(1_000_000);
        model.apply_status(reply(services.clone()), t0, t0);
        let web =
            |model: &Model| model.visible().iter().find(|r| r.status.name == "web").unwrap().cpu_percent;
        assert_eq!(web(&model), None, "one reading is not a rate");
        services[0].cpu_usec = Some(1_250_000);
        model.apply_status(reply(services.clone()), t0 + Duration::from_secs(1), t0 + Duration::from_secs(1));
        assert_eq!(web(&model), Some(25.0));
        services[0].cpu_usec = Some(10);
        model.apply_status(reply(services.clone()), t0 + Duration::from_secs(2), t0 + Duration::from_secs(2));
        assert_eq!(web(&model), None, "the counter went back: a new cgroup");
        assert_eq!(cpu_percent(0, t0, 2_000_000, t0 + Duration::from_secs(1)), Some(200.0));
        assert_eq!(cpu_percent(0, t0, 5, t0), None);
    }

    #[test]
    fn cells_of_a_row() {
        let t0 = Instant::now();
        let mut model = Model::new();
        let mut services = stack();
        services[0].memory_bytes = Some(12_900_000);
        services[0].restarts = 2;
        services[3].reason = Some("exited with status 1; restarting in 400ms".into());
        services[4].last_exit = Some(LastExit {
            kind: crate::ctl::proto::ExitKind::StartLimit,
            code: Some(1),
            signal: None,
            core_dumped: None,
            step: None,
            errno: None,
            message: "start limit hit".into(),
            time: "2026-01-01T00:00:00Z".into(),
        });
        model.apply_status(reply(services), t0, t0);
        let rows = model.visible();
        let web = rows.iter().find(|r| r.status.name == "web").unwrap();
        assert_eq!(
            cells(&model, web, t0 + Duration::from_secs(10)),
            ["web", "running", "30", "1m15s", "2", "-", "12.3M", ""].map(String::from),
            "the uptime counts on from the reply"
        );
        let worker = rows.iter().find(|r| r.status.name == "worker@2").unwrap();
        assert_eq!(cells(&model, worker, t0)[7], "exited with status 1; restarting in 400ms");
        assert_eq!(cells(&model, worker, t0)[3], "-");
        let clock = rows.iter().find(|r| r.status.name == "clock").unwrap();
        assert_eq!(cells(&model, clock, t0)[7], "start limit");
        assert_eq!(state_look(&clock.status), StateLook::Bad);
        assert_eq!(state_look(&web.status), StateLook::Good);
        assert_eq!(model.detail().unwrap().text, "clock: last exit: start limit hit");
    }

    #[test]
    fn formats() {
        assert_eq!(format_memory(512), "512B");
        assert_eq!(format_memory(812 * 1024), "812K");
        assert_eq!(format_memory(12_900_000), "12.3M");
        assert_eq!(format_memory(3 << 30), "3.0G");
        assert_eq!(format_percent(0.04), "0.0");
        assert_eq!(format_percent(99.94), "99.9");
        assert_eq!(format_percent(250.4), "250");
    }

    #[test]
    fn log_pane_follows_the_selection_and_keeps_the_last_lines() {
        let (mut model, t0) = loaded();
        assert_eq!(model.handle_key(Key::Char('l')), Some(Action::FollowLogs(Some("clock".into()))));
        let line = |text: &str| LogEntry { stream: Stream::Stdout, text: text.into() };
        model.apply_log("clock", line("tick 1"));
        model.apply_log("web", line("not shown"));
        assert_eq!(model.logs.as_ref().unwrap().lines, [line("tick 1")]);
        assert_eq!(model.handle_key(Key::Down), Some(Action::FollowLogs(Some("db".into()))));
        assert!(model.logs.as_ref().unwrap().lines.is_empty(), "another service's lines");
        for n in 0..LOG_LINES + 10 {
            model.apply_log("db", line(&n.to_string()));
        }
        let pane = model.logs.as_ref().unwrap();
        assert_eq!(pane.lines.len(), LOG_LINES);
        assert_eq!(pane.lines.back().unwrap().text, (LOG_LINES + 9).to_string());
        // The supervisor goes away and comes back: the pane follows again.
        model.log_ended("db");
        model.apply_lost("connection refused".into(), t0 + Duration::from_secs(1));
        assert_eq!(model.message.as_ref().unwrap().text, "connection refused");
        let db = model.visible()[1].clone();
        assert_eq!(model.uptime(&db, t0 + Duration::from_secs(30)), Some(66.0), "stops counting when lost");
        assert_eq!(
            model.handle_key(Key::Char('r')),
            None,
            "nothing is sent while the supervisor does not answer"
        );
        assert_eq!(model.apply_status(reply(stack()), t0, t0), Some(Action::FollowLogs(Some("db".into()))));
        assert_eq!(model.link, Link::Connected);
        assert_eq!(model.message.as_ref().unwrap().text, "the supervisor answers again");
        // Filtering moves the selection: the pane follows as it is typed.
        model.handle_key(Key::Char('/'));
        assert_eq!(model.handle_key(Key::Char('w')), Some(Action::FollowLogs(Some("web".into()))));
        assert_eq!(model.handle_key(Key::Char('e')), None, "still web");
        assert_eq!(model.handle_key(Key::Esc), None, "the filter cleared, web stays selected");
        assert_eq!(model.selected().as_deref(), Some("web"));
        assert_eq!(model.handle_key(Key::Char('l')), Some(Action::FollowLogs(None)));
        assert_eq!(model.logs, None);
        assert_eq!(model.handle_key(Key::Esc), None, "nothing to close");
    }

    fn event(service: &str, kind: EventKind, state: ServiceState, message: &str) -> ServiceEvent {
        ServiceEvent { service: service.into(), kind, state, message: message.into() }
    }

    #[test]
    fn events_show_at_once_and_an_older_reply_does_not_undo_them() {
        let (mut model, t0) = loaded();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let web = |model: &Model| -> Row {
            model.visible().into_iter().find(|r| r.status.name == "web").cloned().unwrap()
        };
        // web restarted: stopping, stopped, started with a new pid.
        model.apply_event(
            event(
                "web",
                EventKind::Stopping { signal: "SIGTERM".into() },
                ServiceState::Stopping,
                "stopping (SIGTERM)",
            ),
            "t",
            at(10),
        );
        assert_eq!(web(&model).status.state, ServiceState::Stopping);
        model.apply_event(
            event("web", EventKind::Stopped { killed: false }, ServiceState::Stopped, "stopped"),
            "t",
            at(10),
        );
        assert_eq!((web(&model).status.pid, web(&model).status.uptime_secs), (None, None));
        model.apply_event(
            event("web", EventKind::Started { pid: 31 }, ServiceState::Running, "started (pid 31)"),
            "t",
            at(11),
        );
        let row = web(&model);
        assert_eq!((row.status.state, row.status.pid), (ServiceState::Running, Some(31)));
        assert_eq!(model.uptime(&row, at(13)), Some(2.0), "a new process: its uptime from the event");
        // A reply asked for before the event (at 9 s) still says pid 30:
        // the row keeps what the event said, and takes the reply's figures.
        let mut services = stack();
        services[0].memory_bytes = Some(1 << 20);
        model.apply_status(reply(services.clone()), at(9), at(12));
        let row = web(&model);
        assert_eq!((row.status.pid, row.status.memory_bytes), (Some(31), Some(1 << 20)));
        // One asked for after it is the truth.
        services[0].pid = Some(31);
        services[0].uptime_secs = Some(1.5);
        model.apply_status(reply(services), at(12), at(12));
        let row = web(&model);
        assert_eq!((row.status.pid, row.event_at), (Some(31), None));
        assert_eq!(model.uptime(&row, at(13)), Some(2.5));
    }

    #[test]
    fn crashes_backoff_and_failures_from_events() {
        let (mut model, t0) = loaded();
        let detail = ExitDetail {
            kind: ExitKind::Exited,
            code: Some(3),
            signal: None,
            core_dumped: None,
            step: None,
            errno: None,
        };
        model.apply_event(
            event("web", EventKind::Exited(detail), ServiceState::Backoff, "exited with status 3"),
            "2026-01-01T00:00:09Z",
            t0,
        );
        model.apply_event(
            event(
                "web",
                EventKind::Backoff { delay_secs: 0.5, restarts: 4 },
                ServiceState::Backoff,
                "restarting in 500ms (restart 4)",
            ),
            "t",
            t0,
        );
        let rows = model.visible();
        let web = rows.iter().find(|r| r.status.name == "web").unwrap();
        let shown = cells(&model, web, t0);
        assert_eq!(shown[1..5], ["backoff", "-", "-", "4"].map(String::from));
        assert_eq!(shown[7], "exited with status 3; restarting in 500ms (restart 4)");
        assert_eq!(web.status.last_exit.as_ref().unwrap().time, "2026-01-01T00:00:09Z");
        assert_eq!(state_look(&web.status), StateLook::Bad);
        model.apply_event(
            event(
                "web",
                EventKind::Failed { reason: "start limit hit".into(), kind: ExitKind::StartLimit },
                ServiceState::Failed,
                "failed",
            ),
            "t",
            t0,
        );
        let rows = model.visible();
        assert_eq!(
            cells(&model, rows.iter().find(|r| r.status.name == "web").unwrap(), t0)[7],
            "start limit hit"
        );
        // A reload removed db; an event of a service not shown yet waits for the next reply.
        model.apply_event(
            event(
                "db",
                EventKind::Reload { change: ReloadChange::Removed },
                ServiceState::Stopped,
                "removed",
            ),
            "t",
            t0,
        );
        model.apply_event(
            event("new", EventKind::Started { pid: 5 }, ServiceState::Running, "started (pid 5)"),
            "t",
            t0,
        );
        assert_eq!(names(&model), ["clock", "web", "worker@2", "worker@10"]);
    }

    #[test]
    fn outcomes_in_words() {
        use crate::ctl::proto::{ErrorCode, ErrorReply, ServiceResult};
        let result = |ok: bool, message: &str| ServiceResult {
            name: "web".into(),
            ok,
            message: message.into(),
            state: ServiceState::Running,
            pid: Some(7),
        };
        let done = ResultsReply { ok: True, results: vec![result(true, "restarted (pid 7)")] };
        assert_eq!(outcome(Ok(done)), (true, "web: restarted (pid 7)".into()));
        let mut failed = ErrorReply::new(ErrorCode::Failed, "1 of 1 failed: web");
        failed.results = Some(vec![result(false, "did not stay up: exited with status 1")]);
        assert_eq!(outcome(Err(failed)), (false, "web: did not stay up: exited with status 1".into()));
        let unknown = ErrorReply::new(ErrorCode::UnknownService, "no service 'web' (known: db)");
        assert_eq!(outcome(Err(unknown)), (false, "no service 'web' (known: db)".into()));
    }

    #[test]
    fn title_counts_states() {
        let (model, _) = loaded();
        assert_eq!(
            model.title(),
            ("tend top  5 services: 1 failed, 1 backoff, 2 running, 1 ready".into(), "sort: name".into())
        );
    }
}
