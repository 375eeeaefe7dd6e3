//! The client subcommands: `status`, `start`, `stop`, `restart`, `signal`,
//! `logs`, `reload`, `shutdown`. Send one request, render the reply, pick the
//! exit status (0 done, 1 could not, 2 usage or invalid units, 3 no supervisor).

use crate::ctl::client::{self, Client, ConnectError};
use crate::ctl::proto::{
    Answer, CheckKind, ErrorBody, ErrorCode, ErrorReply, ExitKind, LogLine, LogsItem, ReloadReply, Request,
    ResultsReply, ScaleReply, ServiceResult, ServiceStatus, ShutdownReply, StatusReply,
};
use crate::exit;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// How long a command waits for the supervisor when `--timeout` says
/// nothing and the command does not wait on a service.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

static TIMEOUT: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();

/// `--timeout`, once, before the command runs.
pub fn set_timeout(timeout: Option<Duration>) {
    let _ = TIMEOUT.set(timeout);
}

/// The bound for a command that does not wait on a service.
pub(super) fn timeout() -> Duration {
    TIMEOUT.get().copied().flatten().unwrap_or(DEFAULT_TIMEOUT)
}

/// The bound for a command that waits on services (start, stop, restart,
/// shutdown, logs -f): none unless `--timeout` set one; the supervisor's
/// own stop_timeout and start_timeout end those waits.
pub(super) fn waiting_timeout() -> Option<Duration> {
    TIMEOUT.get().copied().flatten()
}

/// A read or write that ran into the timeout.
pub(super) fn timed_out(err: &std::io::Error) -> bool {
    matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

pub(super) fn no_answer(bound: Duration) -> i32 {
    eprintln!("tend: {}", no_answer_message(bound));
    exit::NO_SUPERVISOR
}

pub(super) fn no_answer_message(bound: Duration) -> String {
    format!(
        "the supervisor did not answer within {} (--timeout): it may be hung",
        crate::unit::values::format_duration(bound)
    )
}

pub(super) fn connect(socket: Option<PathBuf>) -> Result<Client, i32> {
    open(socket).map_err(|(message, status)| {
        eprintln!("tend: {message}");
        status
    })
}

/// Connect to the supervisor without printing anything (for `tend top`,
/// whose screen is not a place for stray lines): on failure, what to say
/// and the exit status it means.
pub(super) fn open(socket: Option<PathBuf>) -> Result<Client, (String, i32)> {
    let (path, default) = client::socket_target(socket);
    if default {
        // The default folder must be ours (or root's): in /tmp another user
        // could have made it first and answer in place of our supervisor.
        if let Some(dir) = path.parent() {
            crate::sys::paths::check_trusted_dir(dir).map_err(|why| (why, exit::FAILURE))?;
        }
    }
    match Client::connect_within(&path, timeout()) {
        Ok(client) => Ok(client),
        Err(ConnectError::Other(err)) if err.kind() == std::io::ErrorKind::TimedOut => {
            Err((no_answer_message(timeout()), exit::NO_SUPERVISOR))
        }
        Err(ConnectError::NoSupervisor(err)) => Err((
            format!(
                "no supervisor answers on {} ({}): is `tend up` running with that socket?",
                path.display(),
                tend_core::text::error_text(&err)
            ),
            exit::NO_SUPERVISOR,
        )),
        Err(ConnectError::Other(err)) => Err((
            format!("cannot connect to {}: {}", path.display(), tend_core::text::error_text(&err)),
            if err.kind() == std::io::ErrorKind::PermissionDenied {
                exit::FAILURE
            } else {
                exit::NO_SUPERVISOR
            },
        )),
    }
}

/// One request, one reply (`T`, this request's reply type, or an error);
/// transport problems become exit statuses.
pub(super) fn call<T: DeserializeOwned>(socket: Option<PathBuf>, request: Request) -> Result<Answer<T>, i32> {
    call_within(socket, request, Some(timeout()))
}

/// One request, one reply, waiting at most `bound` for it (None: as long
/// as it takes).
pub(super) fn call_within<T: DeserializeOwned>(
    socket: Option<PathBuf>,
    request: Request,
    bound: Option<Duration>,
) -> Result<Answer<T>, i32> {
    let mut client = connect(socket)?;
    client.set_timeout(bound);
    client.call(request).map_err(|err| match bound {
        Some(bound) if timed_out(&err) => no_answer(bound),
        _ => {
            eprintln!("tend: the supervisor did not answer: {err}");
            exit::NO_SUPERVISOR
        }
    })
}

pub(super) fn error_status(error: &ErrorBody) -> i32 {
    match error.code {
        ErrorCode::BadRequest
        | ErrorCode::InvalidUnits
        | ErrorCode::UnsupportedVersion
        | ErrorCode::RequestTooLarge => exit::USAGE,
        ErrorCode::PermissionDenied
        | ErrorCode::UnknownService
        | ErrorCode::Failed
        | ErrorCode::TooSlow
        | ErrorCode::ShuttingDown
        | ErrorCode::TooManyConnections
        | ErrorCode::Idle => exit::FAILURE,
    }
}

fn print_error(error: &ErrorBody) {
    eprintln!("tend: {}", error.message);
    for detail in &error.details {
        eprintln!("{detail}");
    }
}

pub(super) fn print_results(results: &[ServiceResult]) -> Result<(), i32> {
    for result in results {
        if result.ok {
            crate::emit!("{}: {}\n", result.name, result.message)?;
        } else {
            eprintln!("{}: {}", result.name, result.message);
        }
    }
    Ok(())
}

/// `3d4h`, `2h5m`, `4m10s`, `12s`.
pub(super) fn format_uptime(secs: f64) -> String {
    let secs = secs.max(0.0) as u64;
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

pub(super) fn last_exit_text(status: &ServiceStatus) -> String {
    let Some(last) = &status.last_exit else { return "-".to_string() };
    match last.kind {
        ExitKind::Exited => {
            last.code.map(|code| format!("status {code}")).unwrap_or_else(|| last.message.clone())
        }
        ExitKind::Killed => match (&last.signal, last.core_dumped) {
            (Some(signal), Some(true)) => format!("{signal} (core dumped)"),
            (Some(signal), _) => signal.clone(),
            (None, _) => last.message.clone(),
        },
        ExitKind::ExecFailed => "cannot start".to_string(),
        ExitKind::Oom => "oom".to_string(),
        ExitKind::StartLimit => "start limit".to_string(),
        ExitKind::RuntimeMax => "runtime_max".to_string(),
        // The words, and for kinds this client does not know yet too.
        ExitKind::Timeout
        | ExitKind::StartTimeout
        | ExitKind::Watchdog
        | ExitKind::Health
        | ExitKind::Unknown => last.message.clone(),
    }
}

/// The table's last column: why it is where it is; else its own STATUS=
/// text; else a failing check.
fn note(status: &ServiceStatus) -> String {
    if let Some(reason) = &status.reason {
        return format!("({reason})");
    }
    if let Some(text) = &status.status_text {
        return format!("\"{text}\"");
    }
    match &status.last_check {
        Some(check) if !check.ok => {
            let kind = match check.kind {
                CheckKind::Ready => "ready",
                CheckKind::Health => "health",
            };
            format!("({kind} check failed: {})", check.message)
        }
        _ => String::new(),
    }
}

fn render_table(services: &[ServiceStatus]) -> String {
    let headers = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST-EXIT", ""];
    let rows: Vec<[String; 7]> = services
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.state.as_str().to_string(),
                s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                s.uptime_secs.map(format_uptime).unwrap_or_else(|| "-".into()),
                s.restarts.to_string(),
                last_exit_text(s),
                note(s),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.len());
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(|c| c.as_str()).collect());
    }
    out
}

pub fn status(socket: Option<PathBuf>, names: Vec<String>, json: bool) -> i32 {
    let services = match call::<StatusReply>(socket, Request::Status { names }) {
        Ok(Ok(reply)) => reply.services,
        Ok(Err(error)) => return error_exit(&error),
        Err(code) => return code,
    };
    let shown = if json {
        crate::emit!("{}\n", serde_json::to_string_pretty(&services).expect("status serializes"))
    } else {
        crate::emit!("{}", render_table(&services))
    };
    if let Err(code) = shown {
        return code;
    }
    if services.iter().all(|s| s.healthy) {
        exit::OK
    } else {
        exit::FAILURE
    }
}

/// Print an error reply and pick the exit status.
pub(super) fn error_exit(reply: &ErrorReply) -> i32 {
    print_error(&reply.error);
    error_status(&reply.error)
}

/// `start`, `stop`, `restart`, `signal`, `reopen-logs`: the request the CLI
/// built; the reply says per service how it went. A change that waits for
/// its services has no bound unless `--timeout` gives one.
pub fn change(socket: Option<PathBuf>, request: Request) -> i32 {
    let waits = matches!(&request, Request::Start(t) | Request::Stop(t) | Request::Restart(t) if t.wait);
    // A rolling restart that stops says where and why.
    let rolling = matches!(&request, Request::Restart(t) if t.rolling);
    let bound = if waits { waiting_timeout() } else { Some(timeout()) };
    render_results(call_within::<ResultsReply>(socket, request, bound), rolling)
}

/// A reply with per-service results: print each, and pick the exit status.
/// `say_why`: when some failed, print the error's message too.
fn render_results(reply: Result<Answer<ResultsReply>, i32>, say_why: bool) -> i32 {
    match reply {
        Ok(Ok(reply)) => match print_results(&reply.results) {
            Ok(()) => exit::OK,
            Err(code) => code,
        },
        Ok(Err(ErrorReply { error, results: Some(results), .. })) => match print_results(&results) {
            Ok(()) => {
                if say_why {
                    print_error(&error);
                }
                error_status(&error)
            }
            Err(code) => code,
        },
        Ok(Err(error)) => error_exit(&error),
        Err(code) => code,
    }
}

/// `tend scale NAME N`: the pool's new size, then each instance started or
/// stopped.
pub fn scale(socket: Option<PathBuf>, name: String, instances: u32, wait: bool) -> i32 {
    let bound = if wait { waiting_timeout() } else { Some(timeout()) };
    match call_within::<ScaleReply>(socket, Request::Scale { name, instances, wait }, bound) {
        Ok(Ok(reply)) => {
            let said = if reply.from == reply.to {
                crate::emit!("{}: already {} instances\n", reply.unit, reply.to)
            } else {
                crate::emit!("{}: scaled from {} to {} instances\n", reply.unit, reply.from, reply.to)
            };
            match said.and_then(|()| print_results(&reply.results)) {
                Ok(()) => exit::OK,
                Err(code) => code,
            }
        }
        Ok(Err(ErrorReply { error, results: Some(results), .. })) => match print_results(&results) {
            Ok(()) => {
                print_error(&error);
                error_status(&error)
            }
            Err(code) => code,
        },
        Ok(Err(error)) => error_exit(&error),
        Err(code) => code,
    }
}

/// The services `names` stand for (every one when empty), as the
/// supervisor knows them now: the width of the name column comes from
/// them, fixed at the start. `Err`: the exit status (an unknown name).
pub(super) fn known_names(client: &mut Client, names: &[String]) -> Result<Vec<String>, i32> {
    match client.call::<StatusReply>(Request::Status { names: names.to_vec() }) {
        Ok(Ok(reply)) => Ok(reply.services.into_iter().map(|s| s.name).collect()),
        Ok(Err(error)) => Err(error_exit(&error)),
        Err(err) if timed_out(&err) => Err(no_answer(timeout())),
        Err(err) => {
            eprintln!("tend: the supervisor did not answer: {err}");
            Err(exit::NO_SUPERVISOR)
        }
    }
}

/// What `tend logs` asks, and how it shows it.
pub struct LogsArgs {
    pub names: Vec<String>,
    pub lines: usize,
    pub follow: bool,
    pub since: Option<std::time::SystemTime>,
    pub stream: Option<crate::ctl::proto::Stream>,
    pub timestamps: bool,
    pub json: bool,
}

pub fn logs(socket: Option<PathBuf>, args: LogsArgs) -> i32 {
    let LogsArgs { names, lines, follow, since, stream, timestamps, json } = args;
    let mut client = match connect(socket) {
        Ok(client) => client,
        Err(code) => return code,
    };
    // The name column's width, fixed from the names known now (the ones
    // asked for, or every service), so it does not grow as lines come.
    let width = if json {
        0
    } else {
        let asked_own = names.iter().any(|n| n == tend_core::OWN_LOG);
        let units: Vec<String> = names.iter().filter(|n| *n != tend_core::OWN_LOG).cloned().collect();
        let known = if asked_own && units.is_empty() {
            Vec::new()
        } else {
            match known_names(&mut client, &units) {
                Ok(known) => known,
                // `tend` and a unit named `tend`: the supervisor decides.
                Err(_) if asked_own => units,
                Err(code) => return code,
            }
        };
        let own = asked_own.then_some(tend_core::OWN_LOG.to_string());
        // At least as wide as `tend`, as in `tend up`'s own output.
        known.iter().chain(&own).map(|n| n.chars().count()).fold(4, usize::max)
    };
    let bound = if follow { waiting_timeout() } else { Some(timeout()) };
    client.set_timeout(bound);
    let since = since.map(|t| humantime::format_rfc3339_micros(t).to_string());
    if let Err(err) = client.send(Request::Logs { names, lines, follow, since, stream }) {
        eprintln!("tend: cannot send the request: {err}");
        return exit::NO_SUPERVISOR;
    }
    let stdout = std::io::stdout();
    loop {
        let log = match client.next_log() {
            Ok(Some(Ok(LogsItem::Line(log)))) => log,
            Ok(Some(Ok(LogsItem::Done))) => return exit::OK,
            Ok(Some(Err(error))) => return error_exit(&error),
            Ok(None) if follow => return exit::OK, // the supervisor exited
            Ok(None) => {
                eprintln!("tend: the supervisor closed the connection");
                return exit::NO_SUPERVISOR;
            }
            Err(err) => {
                if let (Some(bound), true) = (bound, timed_out(&err)) {
                    return no_answer(bound);
                }
                eprintln!("tend: {err}");
                return exit::NO_SUPERVISOR;
            }
        };
        let mut out = stdout.lock();
        let written = if json {
            writeln!(out, "{}", serde_json::to_string(&log).expect("log lines serialize"))
        } else {
            write_log_line(&mut out, &log, width, timestamps)
        };
        if written.and_then(|_| out.flush()).is_err() {
            // The reader went away (`tend logs -f | head`): done.
            return exit::OK;
        }
    }
}

/// `web    | GET / 200`, with the time first (`--timestamps`). A name
/// longer than the column (a unit a reload added) widens only its line.
fn write_log_line(
    out: &mut impl Write,
    log: &LogLine,
    width: usize,
    timestamps: bool,
) -> std::io::Result<()> {
    if timestamps {
        write!(out, "{} ", log.time)?;
    }
    writeln!(out, "{:<width$} | {}", log.service, log.line)
}

/// `tend metrics`: the exposition, as `GET /metrics` serves it.
pub fn metrics(socket: Option<PathBuf>) -> i32 {
    match call::<crate::ctl::proto::MetricsReply>(socket, Request::Metrics) {
        Ok(Ok(reply)) => match crate::emit!("{}", reply.text) {
            Ok(()) => exit::OK,
            Err(code) => code,
        },
        Ok(Err(error)) => error_exit(&error),
        Err(code) => code,
    }
}

pub fn reload(socket: Option<PathBuf>, json: bool) -> i32 {
    match call::<ReloadReply>(socket, Request::Reload) {
        Ok(Ok(ReloadReply { reload: report, .. })) => {
            for warning in &report.warnings {
                eprintln!("tend: warning: {warning}");
            }
            let shown = if json {
                crate::emit!("{}\n", serde_json::to_string_pretty(&report).expect("report serializes"))
            } else {
                let list =
                    |names: &[String]| if names.is_empty() { "-".to_string() } else { names.join(", ") };
                let loaded = if report.loaded.is_empty() {
                    String::new()
                } else {
                    format!("loaded:    {} (not started)\n", report.loaded.join(", "))
                };
                crate::emit!(
                    "started:   {}\nstopped:   {}\nrestarted: {}\nunchanged: {}\n{loaded}",
                    list(&report.started),
                    list(&report.stopped),
                    list(&report.restarted),
                    list(&report.unchanged)
                )
            };
            match shown {
                Ok(()) => exit::OK,
                Err(code) => code,
            }
        }
        Ok(Err(error)) => error_exit(&error),
        Err(code) => code,
    }
}

pub fn shutdown(socket: Option<PathBuf>) -> i32 {
    let mut client = match connect(socket) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let supervisor_pid = match client.call::<ShutdownReply>(Request::Shutdown) {
        Ok(Ok(reply)) => reply.pid,
        Ok(Err(error)) => return error_exit(&error),
        Err(err) if timed_out(&err) => return no_answer(timeout()),
        Err(err) => {
            eprintln!("tend: the supervisor did not answer: {err}");
            return exit::NO_SUPERVISOR;
        }
    };
    // The supervisor closes our connection when it exits.
    client.set_timeout(waiting_timeout());
    match client.wait_closed() {
        Err(err) if timed_out(&err) => {
            eprintln!(
                "tend: the supervisor did not exit within {} (--timeout)",
                crate::unit::values::format_duration(waiting_timeout().unwrap_or_default())
            );
            exit::FAILURE
        }
        Ok(()) => {
            // The connection closes as the process exits; wait for the exit
            // itself to be complete (gone, or a zombie for its parent).
            wait_exited(supervisor_pid);
            match crate::emit!("tend: supervisor stopped\n") {
                Ok(()) => exit::OK,
                Err(code) => code,
            }
        }
        Err(err) => {
            eprintln!("tend: lost the connection before the supervisor exited: {err}");
            exit::FAILURE
        }
    }
}

/// Wait (bounded) until `pid` is gone or a zombie. Only meaningful when the
/// supervisor is in our pid namespace; elsewhere the pid is simply not found.
fn wait_exited(pid: i32) {
    for _ in 0..2000 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return,
            Ok(stat) => {
                let state = stat.rfind(')').and_then(|at| stat[at + 1..].trim_start().chars().next());
                if matches!(state, Some('Z') | Some('X')) {
                    return;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, state: &str, pid: Option<i32>) -> ServiceStatus {
        let state_value = serde_json::from_value(serde_json::Value::String(state.into())).unwrap();
        ServiceStatus {
            since_secs: 75.0,
            uptime_secs: (state == "running" || state == "ready").then_some(75.0),
            restarts: 2,
            healthy: state == "running",
            ..crate::app::fixtures::service_status(name, state_value, pid)
        }
    }

    #[test]
    fn table_is_aligned() {
        let mut failed = status("worker", "failed", None);
        failed.reason = Some("start limit hit (6 failures in 1m)".into());
        let table =
            render_table(&[status("web", "running", Some(42)), status("db", "ready", Some(43)), failed]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "NAME    STATE    PID  UPTIME  RESTARTS  LAST-EXIT");
        assert_eq!(lines[1], "web     running  42   1m15s   2         -");
        assert_eq!(lines[2], "db      ready    43   1m15s   2         -", "a ready service is up too");
        assert_eq!(
            lines[3],
            "worker  failed   -    -       2         -          (start limit hit (6 failures in 1m))"
        );
    }

    #[test]
    fn last_exit_column_per_kind() {
        let with =
            |kind: &str, code: Option<i32>, signal: Option<&str>, core: Option<bool>, message: &str| {
                let mut s = status("web", "failed", None);
                s.last_exit = Some(crate::ctl::proto::LastExit {
                    kind: serde_json::from_value(serde_json::Value::String(kind.into())).unwrap(),
                    code,
                    signal: signal.map(str::to_string),
                    core_dumped: core,
                    step: None,
                    errno: None,
                    message: message.into(),
                    time: "2026-01-01T00:00:00Z".into(),
                });
                last_exit_text(&s)
            };
        assert_eq!(with("exited", Some(3), None, None, "exited with status 3"), "status 3");
        assert_eq!(with("killed", None, Some("SIGKILL"), Some(false), ""), "SIGKILL");
        assert_eq!(with("killed", None, Some("SIGSEGV"), Some(true), ""), "SIGSEGV (core dumped)");
        assert_eq!(with("exec_failed", None, None, None, "cannot execute /x"), "cannot start");
        assert_eq!(with("oom", None, Some("SIGKILL"), Some(false), ""), "oom");
        assert_eq!(with("start_limit", Some(1), None, None, "start limit hit"), "start limit");
        for words in ["start timeout after 5s", "health check failed (3 times)", "timed out after 1s"] {
            assert_eq!(with("start_timeout", None, Some("SIGTERM"), Some(false), words), words);
        }
        assert_eq!(with("a_kind_from_a_newer_tend", None, None, None, "what it says"), "what it says");
        assert_eq!(last_exit_text(&status("web", "running", Some(1))), "-");
    }

    #[test]
    fn uptimes() {
        assert_eq!(format_uptime(5.2), "5s");
        assert_eq!(format_uptime(3700.0), "1h1m");
        assert_eq!(format_uptime(90000.0), "1d1h");
    }
}
