//! The control protocol, shared by client and server: typed, framed,
//! versioned, bounded.
//!
//! Framing: one JSON object per line (`\n`), UTF-8, at most
//! [`MAX_REQUEST`] bytes per request line. A request carries `"v": 1`; a
//! server answers a request of another version with `unsupported_version`.
//! Every request gets exactly one reply line (`"ok": true|false`), except
//! `logs`, which first sends zero or more `{"log": …}` lines, and with
//! `follow` keeps sending them until the client goes away.
//!
//! ```text
//! → {"v":1,"cmd":"status","names":["web"]}
//! ← {"ok":true,"services":[{"name":"web","state":"running","pid":42,…}]}
//! → {"v":1,"cmd":"stop","names":["nope"]}
//! ← {"ok":false,"error":{"code":"unknown_service","message":"no service 'nope' (known: web, db)"}}
//! ```
//!
//! Each request has its own reply type (the table above [`HelloReply`]);
//! states, failure kinds, check kinds and stream names are enums.
//!
//! Must not touch sockets: the loop's server and the client move the bytes.

use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

/// The longest request line a server accepts; a longer one gets
/// `request_too_large` and the connection is closed.
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(flatten)]
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Who is there: the supervisor's pid and version.
    Hello,
    Status {
        #[serde(default)]
        names: Vec<String>,
    },
    Start(Target),
    Stop(Target),
    Restart(Target),
    Signal {
        signal: String,
        names: Vec<String>,
    },
    Logs {
        #[serde(default)]
        names: Vec<String>,
        #[serde(default = "default_lines")]
        lines: usize,
        #[serde(default)]
        follow: bool,
        /// Only lines read at or after this time (RFC 3339, UTC).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        /// Only lines of this stream.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<Stream>,
    },
    Reload,
    /// Change the number of instances of a pool: new ones start, surplus
    /// ones stop (from the highest); the others are not touched.
    Scale {
        /// The pool's unit name (`worker`).
        name: String,
        instances: u32,
        /// Reply once the new instances run and the surplus ones are down
        /// (the default), or at once.
        #[serde(default = "yes")]
        wait: bool,
    },
    /// Open every service's log file anew (after logrotate), as SIGUSR1 does.
    ReopenLogs,
    Shutdown,
    /// Follow the supervisor's events (of these services; none: every
    /// one, and those a reload adds). `since_start`: first one `state`
    /// event per service, saying where it is now, so that no transition
    /// can fall between a look at the state and the subscription.
    Events {
        #[serde(default)]
        names: Vec<String>,
        #[serde(default)]
        since_start: bool,
    },
    /// Answer once every named service (none: every one wanted up, or
    /// every one for `stopped`) is where `until` says, at once when one
    /// fails on the way, or when `timeout_ms` has passed.
    Wait {
        #[serde(default)]
        names: Vec<String>,
        #[serde(default)]
        until: WaitFor,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// Answer only once every service got there or failed (a failure
        /// does not answer early): `tend up --detach` reports them all.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        settle: bool,
    },
    /// The supervisor's state in the Prometheus text format.
    Metrics,
}

/// What a `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// Ready: it said so (or it runs, for a service without a readiness
    /// signal; it completed, for a oneshot).
    #[default]
    Ready,
    /// Its process runs (ready or not), or a oneshot completed.
    Up,
    /// Down, and nothing coming: stopped, exited, completed or failed.
    Stopped,
    /// It ran to success: a oneshot `completed` (or a service that exited
    /// with a success code and is not restarted).
    Completed,
}

impl WaitFor {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitFor::Ready => "ready",
            WaitFor::Up => "up",
            WaitFor::Stopped => "stopped",
            WaitFor::Completed => "completed",
        }
    }
}

fn default_lines() -> usize {
    100
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub all: bool,
    /// Reply once the change is done (the default), or at once.
    #[serde(default = "yes")]
    pub wait: bool,
    /// `restart` only: one service at a time, each up again (ready, for
    /// one with a readiness signal) before the next; stops at the first
    /// that fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rolling: bool,
}

impl Target {
    /// These services (`wait`, not rolling).
    pub fn names(names: Vec<String>) -> Target {
        Target { names, all: false, wait: true, rolling: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    RequestTooLarge,
    UnsupportedVersion,
    PermissionDenied,
    UnknownService,
    InvalidUnits,
    Failed,
    TooSlow,
    ShuttingDown,
    /// The supervisor has as many connections as it takes (or too few
    /// descriptors left): try again later.
    TooManyConnections,
    /// No complete request came for a while: the connection is closed.
    Idle,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// For `invalid_units`: every `file:line:column: message`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// A service's state as `tend status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Not running and not wanted (never started, or stopped on request).
    Stopped,
    /// Wanted up, held back until its dependencies meet their conditions.
    Waiting,
    /// Wanted up, held back by a dependency that is down for good.
    Blocked,
    /// Forked and not yet ready.
    Starting,
    /// Running (ready at once: it has no readiness signal).
    Running,
    /// Running, and it said it is ready.
    Ready,
    /// Being stopped.
    Stopping,
    /// Ended, and not to be restarted.
    Exited,
    /// A oneshot that ran to success.
    Completed,
    /// Waiting for its restart delay.
    Backoff,
    /// Hit its start limit, or failed under `restart: never`.
    Failed,
    /// A state this client does not know (a newer supervisor).
    #[serde(other)]
    Unknown,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Stopped => "stopped",
            ServiceState::Waiting => "waiting",
            ServiceState::Blocked => "blocked",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Ready => "ready",
            ServiceState::Stopping => "stopping",
            ServiceState::Exited => "exited",
            ServiceState::Completed => "completed",
            ServiceState::Backoff => "backoff",
            ServiceState::Failed => "failed",
            ServiceState::Unknown => "unknown",
        }
    }
}

/// What ended a service's last run (`last_exit.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitKind {
    /// Exited by itself, with a code.
    Exited,
    /// Killed by a signal (not by the OOM killer).
    Killed,
    /// Never ran: fork, a child step or exec failed.
    ExecFailed,
    /// Killed by the kernel's OOM killer (its cgroup's memory limit).
    Oom,
    /// A oneshot ran past its `timeout`.
    Timeout,
    /// Not ready within `start_timeout`.
    StartTimeout,
    /// No `WATCHDOG=1` in time.
    Watchdog,
    /// Its health check kept failing.
    Health,
    /// It ran `runtime_max`: tend stopped it.
    RuntimeMax,
    /// Too many failures in a row: it is `failed` until started by hand.
    StartLimit,
    /// A kind this client does not know (a newer supervisor).
    #[serde(other)]
    Unknown,
}

impl ExitKind {
    /// The JSON contract's word.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitKind::Exited => "exited",
            ExitKind::Killed => "killed",
            ExitKind::ExecFailed => "exec_failed",
            ExitKind::Oom => "oom",
            ExitKind::Timeout => "timeout",
            ExitKind::StartTimeout => "start_timeout",
            ExitKind::Watchdog => "watchdog",
            ExitKind::Health => "health",
            ExitKind::RuntimeMax => "runtime_max",
            ExitKind::StartLimit => "start_limit",
            ExitKind::Unknown => "unknown",
        }
    }
}

/// Which check a result is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The ready check, run until it first succeeds.
    Ready,
    /// The health check, run while the service is up.
    Health,
}

/// Which of a service's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a service's last run ended: `kind` says what happened, for scripts;
/// `message` says it in words. See the README's JSON contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    pub kind: ExitKind,
    /// The exit code, when the last process exited by itself.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<i32>,
    /// The signal that ended the last process (`SIGKILL`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signal: Option<String>,
    /// With `signal`: whether it dumped core.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub core_dumped: Option<bool>,
    /// For exec_failed: the step that failed (`exec`, `chdir`, `setuid`, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<String>,
    /// For exec_failed: the error (`not_found`, `permission_denied`, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub errno: Option<String>,
    /// In words: `exited with status 3`, `start timeout after 5s`, …
    pub message: String,
    /// RFC 3339.
    pub time: String,
}

/// One service in `status`: the stable, documented object of `--json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// For an instance of a pool (`worker@2`): its unit's name (`worker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// For an instance of a pool: its instance name (`2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The unit's `enabled:`; shown only when false (`tend up` does not
    /// start it by itself).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    pub state: ServiceState,
    pub pid: Option<i32>,
    /// When it entered this state (RFC 3339).
    pub since: String,
    /// Seconds since `since`.
    pub since_secs: f64,
    /// Seconds since its process was started, while one lives (the
    /// table's UPTIME), whatever the state is called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<f64>,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    /// Why it is failed, in backoff, waiting or blocked, or exited badly.
    pub reason: Option<String>,
    /// A good state: running, or exited successfully after running to completion.
    pub healthy: bool,
    /// Problems with its log sinks (a file that cannot be written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_errors: Vec<String>,
    /// The service's own `STATUS=` text (sd_notify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// The last ready or health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<CheckReport>,
    /// Memory in use by the service's cgroup, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// CPU time used by the service's cgroup, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usec: Option<u64>,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub kind: CheckKind,
    pub ok: bool,
    pub message: String,
    /// RFC 3339.
    pub time: String,
}

/// The result of start/stop/restart/signal/reopen-logs for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceResult {
    pub name: String,
    pub ok: bool,
    /// "started", "stopped", "restarted", "already running", "sent SIGHUP", or the failure.
    pub message: String,
    pub state: ServiceState,
    pub pid: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReloadReport {
    pub started: Vec<String>,
    /// New services not started: their unit has `enabled: false`, or
    /// `tend up` named the services to run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: Vec<String>,
    /// Problems that did not stop the reload (a command that cannot run),
    /// each `file:line:column: message`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub service: String,
    pub stream: Stream,
    /// RFC 3339 with microseconds.
    pub time: String,
    pub line: String,
}

// ---- replies: one type per request ----
//
// | request                                        | reply            |
// |------------------------------------------------|------------------|
// | hello                                          | [`HelloReply`]   |
// | status                                         | [`StatusReply`]  |
// | start, stop, restart, signal, reopen_logs      | [`ResultsReply`] |
// | reload                                         | [`ReloadReply`]  |
// | scale                                          | [`ScaleReply`]   |
// | shutdown                                       | [`ShutdownReply`] (the connection closes when tend has exited) |
// | logs                                           | [`LogReply`]s, then [`DoneReply`] (none with `follow`) |
// | wait                                           | [`ResultsReply`] (or a `failed` error with every result) |
// | metrics                                        | [`MetricsReply`] |
// | events                                         | [`EventsReply`], then [`EventLine`]s until the client goes away, or a last [`OVERFLOW`] |
//
// Any request may be answered with an [`ErrorReply`] instead; start, stop,
// restart, signal and reopen_logs then carry every service's result too.

/// `hello`: who is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloReply {
    pub ok: True,
    pub pid: i32,
    pub version: String,
}

/// `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReply {
    pub ok: True,
    pub pid: i32,
    pub services: Vec<ServiceStatus>,
}

/// `start`, `stop`, `restart`, `signal`, `reopen_logs` when every service did as asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultsReply {
    pub ok: True,
    pub results: Vec<ServiceResult>,
}

/// `reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReply {
    pub ok: True,
    pub reload: ReloadReport,
}

/// `scale`: the pool's size before and after, and how each instance
/// started or stopped went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleReply {
    pub ok: True,
    pub unit: String,
    pub from: u32,
    pub to: u32,
    pub results: Vec<ServiceResult>,
}

/// `shutdown`: the shutdown has begun; the connection closes when tend exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownReply {
    pub ok: True,
    pub pid: i32,
}

/// The end of a `logs` reply without `follow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneReply {
    pub ok: True,
}

/// One line of output in a `logs` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogReply {
    pub log: LogLine,
}

/// `metrics`: the exposition, as `GET /metrics` serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsReply {
    pub ok: True,
    /// Prometheus text format 0.0.4.
    pub text: String,
}

/// `events`: the subscription holds; [`EventLine`]s follow, one per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsReply {
    pub ok: True,
    pub pid: i32,
}

/// The last line a follower of `events` gets when it fell too far behind
/// (it is then disconnected): it missed events, and must look again.
pub const OVERFLOW: &[u8] = b"{\"event\":\"overflow\"}\n";

/// One event, as `events` sends it and `tend events --json` prints it:
/// `{"time":…,"service":"web","event":"started","pid":42,"state":"running","message":"started (pid 42)"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    /// When tend saw it (RFC 3339 with microseconds).
    pub time: String,
    #[serde(flatten)]
    pub event: ServiceEvent,
}

/// One event of one service, as the core emits it (the loop adds the time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub service: String,
    /// `event` and the fields of its kind.
    #[serde(flatten)]
    pub kind: EventKind,
    /// The service's state once the event was handled (`tend status`'s word).
    pub state: ServiceState,
    /// In words, as tend's own log says it (after `NAME: `).
    pub message: String,
}

/// What happened to a service (`event`), with what each kind says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// Where the service is: the replay of `since_start` (`replay: true`),
    /// or a change of state that no other event tells (`waiting`,
    /// `blocked`, `starting`).
    State {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replay: bool,
    },
    /// Its program is running (exec confirmed).
    Started { pid: i32 },
    /// It said it is ready (READY=1, its notify_fd, its ready_check).
    Ready,
    /// Its process ended (or never ran: `kind` `exec_failed`).
    Exited(ExitDetail),
    /// A restart is coming after `delay_secs` (its `restarts`-th since it was last started by hand).
    Backoff { delay_secs: f64, restarts: u32 },
    /// Down for good until started by hand: `reason` in words, `kind` as in `last_exit`.
    Failed { reason: String, kind: ExitKind },
    /// tend signalled it to stop (or, past its stop_timeout, killed it).
    Stopping { signal: String },
    /// A stop is done; `killed` when it took SIGKILL.
    Stopped { killed: bool },
    /// A health check passed (after failing, or the first one), or failed
    /// (`failures` of `retries` in a row).
    Health {
        passing: bool,
        #[serde(default, skip_serializing_if = "is_zero")]
        failures: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        retries: u32,
    },
    /// A reload added, removed or changed the unit.
    Reload { change: ReloadChange },
    /// Its number of instances changed.
    Scale { instances: u32 },
    /// An event this client does not know (a newer supervisor).
    #[serde(other)]
    Unknown,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl EventKind {
    /// The `event` word.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::State { .. } => "state",
            EventKind::Started { .. } => "started",
            EventKind::Ready => "ready",
            EventKind::Exited(_) => "exited",
            EventKind::Backoff { .. } => "backoff",
            EventKind::Failed { .. } => "failed",
            EventKind::Stopping { .. } => "stopping",
            EventKind::Stopped { .. } => "stopped",
            EventKind::Health { .. } => "health",
            EventKind::Reload { .. } => "reload",
            EventKind::Scale { .. } => "scale",
            EventKind::Unknown => "unknown",
        }
    }
}

/// How a process ended, in an `exited` event: `last_exit` without its
/// `message` and `time` (the event has both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitDetail {
    pub kind: ExitKind,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub core_dumped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub errno: Option<String>,
}

/// What a reload did to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadChange {
    Added,
    Removed,
    Changed,
    #[serde(other)]
    Unknown,
}

/// One line of an `events` reply.
#[derive(Debug, Clone, PartialEq)]
pub enum EventsItem {
    /// The subscription holds (the first line).
    Subscribed {
        pid: i32,
    },
    Event(EventLine),
    /// The client fell behind and was disconnected.
    Overflow,
}

/// Read one line of an `events` reply.
pub fn decode_events_item(line: &[u8]) -> Result<Answer<EventsItem>, String> {
    let malformed = |e: serde_json::Error| format!("malformed reply from the supervisor: {e}");
    let value: serde_json::Value = serde_json::from_slice(line).map_err(malformed)?;
    if value.get("ok").is_some() {
        return Ok(decode_answer::<EventsReply>(line)?.map(|r| EventsItem::Subscribed { pid: r.pid }));
    }
    if value.get("event").and_then(|e| e.as_str()) == Some("overflow") && value.get("service").is_none() {
        return Ok(Ok(EventsItem::Overflow));
    }
    serde_json::from_value(value).map(|e| Ok(EventsItem::Event(e))).map_err(malformed)
}

/// A request that failed, or some of whose services did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub ok: False,
    pub error: ErrorBody,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub results: Option<Vec<ServiceResult>>,
}

/// A reply line as the server sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Hello(HelloReply),
    Status(StatusReply),
    Results(ResultsReply),
    Reload(ReloadReply),
    Scale(ScaleReply),
    Shutdown(ShutdownReply),
    Log(LogReply),
    Done(DoneReply),
    Events(EventsReply),
    Metrics(MetricsReply),
    Error(ErrorReply),
}

/// What a client reads: the reply it expects for its request, or an error.
pub type Answer<T> = Result<T, ErrorReply>;

/// `true` as a type, so that `ok` says which of [`Answer`]'s sides a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct True;
/// `false` as a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct False;

macro_rules! bool_literal {
    ($ty:ident, $value:expr) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bool($value)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if bool::deserialize(d)? == $value {
                    Ok($ty)
                } else {
                    Err(serde::de::Error::custom(concat!("expected ", stringify!($value))))
                }
            }
        }
    };
}
bool_literal!(True, true);
bool_literal!(False, false);

impl Reply {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply::Error(ErrorReply::new(code, message))
    }

    /// Per-service results: all done as asked, or a `failed` error that
    /// names those that were not (and carries every result).
    pub fn results(results: Vec<ServiceResult>) -> Reply {
        let failed: Vec<&str> = results.iter().filter(|r| !r.ok).map(|r| r.name.as_str()).collect();
        if failed.is_empty() {
            return Reply::Results(ResultsReply { ok: True, results });
        }
        let message = format!("{} of {} failed: {}", failed.len(), results.len(), failed.join(", "));
        Reply::Error(ErrorReply {
            ok: False,
            error: ErrorBody { code: ErrorCode::Failed, message, details: Vec::new() },
            results: Some(results),
        })
    }

    /// One line, with its newline.
    pub fn encode(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("replies always serialize");
        line.push(b'\n');
        line
    }

    /// Whether this is the last reply to its request (a `logs` line is not).
    pub fn is_final(&self) -> bool {
        !matches!(self, Reply::Log(_) | Reply::Events(_))
    }
}

impl ErrorReply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            ok: False,
            error: ErrorBody { code, message: message.into(), details: Vec::new() },
            results: None,
        }
    }
}

/// Read one reply line as the answer to a request whose reply is `T`.
pub fn decode_answer<T: serde::de::DeserializeOwned>(line: &[u8]) -> Result<Answer<T>, String> {
    let malformed = |e: serde_json::Error| format!("malformed reply from the supervisor: {e}");
    let value: serde_json::Value = serde_json::from_slice(line).map_err(malformed)?;
    if value.get("ok") == Some(&serde_json::Value::Bool(false)) {
        return serde_json::from_value(value).map(Err).map_err(malformed);
    }
    serde_json::from_value(value).map(Ok).map_err(malformed)
}

/// One line of a `logs` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogsItem {
    Line(LogLine),
    Done,
}

/// Read one line of a `logs` reply.
pub fn decode_logs_item(line: &[u8]) -> Result<Answer<LogsItem>, String> {
    let malformed = |e: serde_json::Error| format!("malformed reply from the supervisor: {e}");
    let value: serde_json::Value = serde_json::from_slice(line).map_err(malformed)?;
    if value.get("log").is_some() {
        let reply: LogReply = serde_json::from_value(value).map_err(malformed)?;
        return Ok(Ok(LogsItem::Line(reply.log)));
    }
    Ok(decode_answer::<DoneReply>(line)?.map(|_| LogsItem::Done))
}

impl Envelope {
    pub fn new(request: Request) -> Envelope {
        Envelope { v: VERSION, request }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("requests always serialize");
        line.push(b'\n');
        line
    }
}

/// Decode one request line; the error is the reply to send.
// The error is the reply itself, built once per request: its size does not matter.
#[allow(clippy::result_large_err)]
pub fn decode_request(line: &[u8]) -> Result<Request, Reply> {
    // Check the version first, so that a newer client gets a clear answer
    // rather than a complaint about fields this server does not know.
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| Reply::error(ErrorCode::BadRequest, format!("request is not valid JSON: {e}")))?;
    match value.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(Reply::error(
                ErrorCode::UnsupportedVersion,
                format!("protocol version {v} is not supported (this supervisor speaks {VERSION})"),
            ))
        }
        None => return Err(Reply::error(ErrorCode::BadRequest, "request has no protocol version \"v\"")),
    }
    let envelope: Envelope = serde_json::from_value(value)
        .map_err(|e| Reply::error(ErrorCode::BadRequest, format!("invalid request: {e}")))?;
    Ok(envelope.request)
}

/// Splits a byte stream into request lines, refusing to buffer more than
/// `limit` bytes of a line without its newline.
#[derive(Debug)]
pub struct LineReader {
    buffer: Vec<u8>,
    limit: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Line(Vec<u8>),
    TooLarge,
}

impl LineReader {
    pub fn new(limit: usize) -> LineReader {
        LineReader { buffer: Vec::new(), limit }
    }

    /// Add bytes; return the complete lines now available (without the
    /// newline), or `TooLarge` once a line exceeds the limit.
    pub fn push(&mut self, data: &[u8]) -> Vec<Frame> {
        self.buffer.extend_from_slice(data);
        let mut frames = Vec::new();
        while let Some(at) = self.buffer.iter().position(|b| *b == b'\n') {
            if at > self.limit {
                frames.push(Frame::TooLarge);
                self.buffer.clear();
                return frames;
            }
            let mut line: Vec<u8> = self.buffer.drain(..=at).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if !line.iter().all(|b| b.is_ascii_whitespace()) {
                frames.push(Frame::Line(line));
            }
        }
        if self.buffer.len() > self.limit {
            frames.push(Frame::TooLarge);
            self.buffer.clear();
        }
        frames
    }

    /// Bytes of an unfinished line held.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let requests = vec![
            Request::Hello,
            Request::Status { names: vec!["web".into()] },
            Request::Start(Target::names(vec!["a".into()])),
            Request::Stop(Target { names: vec![], all: true, wait: false, rolling: false }),
            Request::Restart(Target { names: vec!["b".into()], all: false, wait: true, rolling: true }),
            Request::Scale { name: "worker".into(), instances: 8, wait: true },
            Request::Signal { signal: "SIGUSR1".into(), names: vec!["web".into()] },
            Request::Logs { names: vec![], lines: 5, follow: true, since: None, stream: None },
            Request::Logs {
                names: vec!["tend".into()],
                lines: 5,
                follow: false,
                since: Some("2026-11-26T13:04:05Z".into()),
                stream: Some(Stream::Stderr),
            },
            Request::Wait {
                names: vec!["db".into()],
                until: WaitFor::Completed,
                timeout_ms: Some(500),
                settle: true,
            },
            Request::Metrics,
            Request::Reload,
            Request::Shutdown,
        ];
        for request in requests {
            let line = Envelope::new(request.clone()).encode();
            assert_eq!(*line.last().unwrap(), b'\n');
            assert_eq!(decode_request(&line[..line.len() - 1]).unwrap(), request);
        }
    }

    #[test]
    fn wire_format_is_as_documented() {
        let line = Envelope::new(Request::Status { names: vec!["web".into()] }).encode();
        assert_eq!(line, b"{\"v\":1,\"cmd\":\"status\",\"names\":[\"web\"]}\n");
        assert_eq!(
            decode_request(br#"{"v":1,"cmd":"logs"}"#).unwrap(),
            Request::Logs { names: vec![], lines: 100, follow: false, since: None, stream: None }
        );
        assert_eq!(
            decode_request(br#"{"v":1,"cmd":"start","names":["x"]}"#).unwrap(),
            Request::Start(Target::names(vec!["x".into()]))
        );
        assert_eq!(
            decode_request(br#"{"v":1,"cmd":"restart","names":["worker"],"rolling":true}"#).unwrap(),
            Request::Restart(Target { rolling: true, ..Target::names(vec!["worker".into()]) })
        );
        assert_eq!(
            Envelope::new(Request::Scale { name: "worker".into(), instances: 8, wait: true }).encode(),
            b"{\"v\":1,\"cmd\":\"scale\",\"name\":\"worker\",\"instances\":8,\"wait\":true}\n"
        );
        assert_eq!(
            Envelope::new(Request::Restart(Target::names(vec!["a".into()]))).encode(),
            b"{\"v\":1,\"cmd\":\"restart\",\"names\":[\"a\"],\"all\":false,\"wait\":true}\n",
            "no `rolling` unless asked: an older supervisor would refuse the field"
        );
    }

    fn error_code(reply: Reply) -> ErrorCode {
        match reply {
            Reply::Error(ErrorReply { error, .. }) => error.code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_requests_get_typed_errors() {
        assert_eq!(error_code(decode_request(b"garbage").unwrap_err()), ErrorCode::BadRequest);
        assert_eq!(error_code(decode_request(br#"{"cmd":"status"}"#).unwrap_err()), ErrorCode::BadRequest);
        assert_eq!(
            error_code(decode_request(br#"{"v":2,"cmd":"status"}"#).unwrap_err()),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(error_code(decode_request(br#"{"v":1,"cmd":"fly"}"#).unwrap_err()), ErrorCode::BadRequest);
        assert_eq!(
            error_code(decode_request(br#"{"v":1,"cmd":"status","bogus":1}"#).unwrap_err()),
            ErrorCode::BadRequest
        );
        assert_eq!(
            error_code(decode_request(br#"{"v":1,"cmd":"signal","names":["a"]}"#).unwrap_err()),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn replies_are_typed_and_their_wire_format_is_as_documented() {
        let hello = Reply::Hello(HelloReply { ok: True, pid: 7, version: "1.0".into() });
        assert_eq!(hello.encode(), b"{\"ok\":true,\"pid\":7,\"version\":\"1.0\"}\n");
        let answer: Answer<HelloReply> = decode_answer(&hello.encode()).unwrap();
        assert_eq!(answer.unwrap().pid, 7);
        let err = Reply::error(ErrorCode::UnknownService, "no service 'x'");
        let line = err.encode();
        assert!(String::from_utf8(line.clone()).unwrap().starts_with("{\"ok\":false"));
        let answer: Answer<HelloReply> = decode_answer(&line).unwrap();
        assert_eq!(answer.unwrap_err().error.code, ErrorCode::UnknownService);
        assert!(decode_answer::<StatusReply>(&hello.encode()).is_err(), "a hello is not a status reply");
        let result = |ok| ServiceResult {
            name: "a".into(),
            ok,
            message: "m".into(),
            state: ServiceState::Running,
            pid: Some(3),
        };
        assert_eq!(
            Reply::results(vec![result(true)]).encode(),
            b"{\"ok\":true,\"results\":[{\"name\":\"a\",\"ok\":true,\"message\":\"m\",\"state\":\"running\",\"pid\":3}]}\n"
        );
        match decode_answer::<ResultsReply>(&Reply::results(vec![result(true), result(false)]).encode()) {
            Ok(Err(ErrorReply { error, results: Some(results), .. })) => {
                assert_eq!((error.code, error.message.as_str()), (ErrorCode::Failed, "1 of 2 failed: a"));
                assert_eq!(results.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        let log = Reply::Log(LogReply {
            log: LogLine { service: "a".into(), stream: Stream::Stderr, time: "t".into(), line: "x".into() },
        });
        assert_eq!(
            log.encode(),
            b"{\"log\":{\"service\":\"a\",\"stream\":\"stderr\",\"time\":\"t\",\"line\":\"x\"}}\n"
        );
        assert!(matches!(decode_logs_item(&log.encode()), Ok(Ok(LogsItem::Line(_)))));
        let done = Reply::Done(DoneReply { ok: True });
        assert_eq!(decode_logs_item(&done.encode()), Ok(Ok(LogsItem::Done)));
    }

    #[test]
    fn events_wire_format_is_as_documented() {
        let line = EventLine {
            time: "2026-11-26T13:04:05.123456Z".into(),
            event: ServiceEvent {
                service: "web".into(),
                kind: EventKind::Exited(ExitDetail {
                    kind: ExitKind::Killed,
                    code: None,
                    signal: Some("SIGKILL".into()),
                    core_dumped: Some(false),
                    step: None,
                    errno: None,
                }),
                state: ServiceState::Backoff,
                message: "killed by signal SIGKILL".into(),
            },
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"time":"2026-11-26T13:04:05.123456Z","service":"web","event":"exited","kind":"killed","signal":"SIGKILL","core_dumped":false,"state":"backoff","message":"killed by signal SIGKILL"}"#
        );
        assert_eq!(decode_events_item(text.as_bytes()), Ok(Ok(EventsItem::Event(line))));
        let started =
            r#"{"time":"t","service":"a","event":"started","pid":42,"state":"running","message":"m"}"#;
        match decode_events_item(started.as_bytes()) {
            Ok(Ok(EventsItem::Event(e))) => assert_eq!(e.event.kind, EventKind::Started { pid: 42 }),
            other => panic!("{other:?}"),
        }
        assert_eq!(decode_events_item(&OVERFLOW[..OVERFLOW.len() - 1]), Ok(Ok(EventsItem::Overflow)));
        let ack = Reply::Events(EventsReply { ok: True, pid: 9 }).encode();
        assert_eq!(decode_events_item(&ack), Ok(Ok(EventsItem::Subscribed { pid: 9 })));
        let newer =
            r#"{"time":"t","service":"a","event":"hibernated","depth":3,"state":"stopped","message":"m"}"#;
        match decode_events_item(newer.as_bytes()) {
            Ok(Ok(EventsItem::Event(e))) => assert_eq!(e.event.kind, EventKind::Unknown),
            other => panic!("{other:?}"),
        }
        let error = Reply::error(ErrorCode::UnknownService, "no service 'x'").encode();
        assert!(matches!(decode_events_item(&error), Ok(Err(_))));
        assert_eq!(
            decode_request(br#"{"v":1,"cmd":"wait","names":["db"]}"#).unwrap(),
            Request::Wait {
                names: vec!["db".into()],
                until: WaitFor::Ready,
                timeout_ms: None,
                settle: false
            }
        );
        assert_eq!(
            Envelope::new(Request::Wait {
                names: vec![],
                until: WaitFor::Up,
                timeout_ms: Some(5000),
                settle: false
            })
            .encode(),
            b"{\"v\":1,\"cmd\":\"wait\",\"names\":[],\"until\":\"up\",\"timeout_ms\":5000}\n"
        );
        assert_eq!(
            decode_request(br#"{"v":1,"cmd":"events","names":["web"],"since_start":true}"#).unwrap(),
            Request::Events { names: vec!["web".into()], since_start: true }
        );
    }

    #[test]
    fn unknown_states_and_kinds_from_a_newer_supervisor_still_decode() {
        let state: ServiceState = serde_json::from_str("\"hibernating\"").unwrap();
        assert_eq!(state, ServiceState::Unknown);
        let kind: ExitKind = serde_json::from_str("\"cosmic_ray\"").unwrap();
        assert_eq!(kind, ExitKind::Unknown);
        assert_eq!(serde_json::to_string(&ExitKind::StartTimeout).unwrap(), "\"start_timeout\"");
        assert_eq!(serde_json::to_string(&ServiceState::Ready).unwrap(), "\"ready\"");
    }

    #[test]
    fn line_reader_frames_and_bounds() {
        let mut reader = LineReader::new(10);
        assert_eq!(reader.push(b"ab"), vec![]);
        assert_eq!(
            reader.push(b"c\r\nde\n\n"),
            vec![Frame::Line(b"abc".to_vec()), Frame::Line(b"de".to_vec())]
        );
        assert_eq!(reader.push(b"0123456789X"), vec![Frame::TooLarge]);
        assert_eq!(reader.pending(), 0);
        let mut reader = LineReader::new(4);
        assert_eq!(reader.push(b"0123456\n"), vec![Frame::TooLarge]);
    }
}
