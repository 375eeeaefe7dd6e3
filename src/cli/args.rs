//! The command line as clap defines it: every subcommand, flag and value,
//! in one place that the parser, the completion scripts and the man pages
//! all read. Definitions only; `cli` runs them.

use crate::ctl::proto::Target;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// `0.1.0 (commit 0123456789ab)`: the commit comes from build.rs.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TEND_COMMIT"), ")");

#[derive(Parser, Debug)]
#[command(
    name = "tend",
    version = VERSION,
    about = "A sandboxed process supervisor: PID 1 for containers, a service manager, a sandbox",
    long_about = "A sandboxed process supervisor: PID 1 for containers, a service manager, a sandbox.

As PID 1 in a container, `tend run -- CMD` reaps every zombie, forwards signals and passes the command's exit status on.

`tend up` supervises every unit in a units folder (one NAME.yaml per service, see tend.unit(5)): it starts them in dependency order, waits for readiness, restarts them by their policy with backoff and limits, and stops them gracefully, then forcefully. Each service can be sandboxed (capabilities, no_new_privs, namespaces, read-only paths, cgroup limits).

While it runs, `tend status`, `start`, `stop`, `restart`, `signal`, `logs` and `reload` control it over a local socket, for people and, with --json, for scripts.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the control socket is.
#[derive(Args, Debug, Clone)]
pub struct SocketArg {
    /// The control socket (else $TEND_SOCKET, else /run/tend/tend.sock for
    /// root, $XDG_RUNTIME_DIR/tend/tend.sock otherwise).
    #[arg(long, value_name = "PATH", global = true)]
    pub socket: Option<PathBuf>,
}

/// How long a client command waits for the supervisor.
#[derive(Args, Debug, Clone)]
pub struct TimeoutArg {
    /// Give up when the supervisor does not answer within DURATION (exit 3): default 10s, and no limit for
    /// start, stop, restart, shutdown and logs -f, which wait on services.
    #[arg(long, value_name = "DURATION", value_parser = crate::unit::values::parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// Which services a command acts on.
#[derive(Args, Debug, Clone)]
pub struct Targets {
    /// Service names.
    #[arg(value_name = "NAME", required_unless_present = "all")]
    pub names: Vec<String>,
    /// Every service.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Return at once instead of waiting until the change is done.
    #[arg(long)]
    pub no_wait: bool,
}

/// The request's target, as the protocol has it: the CLI builds requests,
/// the app layer never sees clap's types.
impl From<Targets> for Target {
    fn from(targets: Targets) -> Target {
        Target { names: targets.names, all: targets.all, wait: !targets.no_wait, rolling: false }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Supervise every unit in the units folder (or only NAMEs and what they depend on), in the foreground.
    Up {
        /// Start only these services (a unit's name: all its instances) and what they depend on; the
        /// others are loaded and stay stopped until `tend start`. Default: every unit not `enabled: false`.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// The units folder (else $TEND_UNITS, else ./units, else /etc/tend/units).
        #[arg(long, short = 'u', value_name = "DIR")]
        units: Option<PathBuf>,
        #[command(flatten)]
        socket: SocketArg,
        /// Let members of GROUP use the control socket (mode 0660).
        #[arg(long, value_name = "GROUP")]
        socket_group: Option<String>,
        /// Run without a control socket.
        #[arg(long, conflicts_with_all = ["socket", "socket_group"])]
        no_socket: bool,
        /// Also send tend's own lifecycle events to syslog (/dev/log).
        #[arg(long)]
        syslog: bool,
        /// Serve the metrics (Prometheus text format) at GET /metrics on ADDR: PORT (loopback), or HOST:PORT.
        #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Run in the background, in a session of its own, with its output appended to the log file; return once
        /// every service has started or failed to start (exit 0 only if none failed). `tend shutdown` ends it.
        #[arg(short = 'd', long, conflicts_with = "no_socket")]
        detach: bool,
        /// With --detach: where its output goes (appended). Default: tend.log beside the control socket
        /// (/run/tend/tend.log for root, $XDG_RUNTIME_DIR/tend/tend.log otherwise).
        #[arg(long, value_name = "PATH", requires = "detach")]
        log_file: Option<PathBuf>,
    },
    /// Run one command as an init: forward signals, reap zombies, pass its exit status on.
    Run {
        /// Forward signals to the command's whole process group.
        #[arg(short = 'g', long = "group")]
        group: bool,
        /// Exit 0 when the command exits with CODE (0-255; 128+N for a kill by signal N). Repeatable (tini -e).
        #[arg(short = 'e', long = "success-exit-code", value_name = "CODE")]
        success_exit_codes: Vec<u8>,
        /// Have the kernel send tend SIGNAL when tend's parent dies; tend passes it on like any other (tini -p).
        #[arg(
            short = 'p',
            long = "parent-death-signal",
            value_name = "SIGNAL",
            value_parser = crate::supervise::run::parse_parent_death_signal
        )]
        parent_death_signal: Option<i32>,
        /// Pass signal FROM on as TO (names or numbers; TO 0 drops FROM). Repeatable (dumb-init --rewrite).
        #[arg(short = 'r', long = "rewrite", value_name = "FROM:TO", value_parser = crate::supervise::run::parse_rewrite)]
        rewrite: Vec<crate::supervise::run::Rewrite>,
        /// Print each reaped process that was not the command (tini -w); twice, also each signal passed on.
        #[arg(short = 'v', long = "verbose", short_alias = 'w', action = clap::ArgAction::Count)]
        verbose: u8,
        /// Accepted for tini's -s: tend run is always a child subreaper (or PID 1).
        #[arg(short = 's', hide = true)]
        subreaper: bool,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Validate the unit files without starting anything (exit 0 or 2).
    Check {
        /// The units folder (else $TEND_UNITS, else ./units, else /etc/tend/units).
        dir: Option<PathBuf>,
        /// Also warn about missing hardening (a root service with no sandbox, …), and fail on warnings.
        #[arg(long)]
        strict: bool,
    },
    /// Show services: NAME STATE PID UPTIME RESTARTS LAST-EXIT. Exit 0 only if all are healthy.
    Status {
        names: Vec<String>,
        /// One JSON object per service, in an array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Start services, and wait until they run.
    Start {
        #[command(flatten)]
        targets: Targets,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Stop services (stop signal, then SIGKILL after stop_timeout), and wait until they are down.
    Stop {
        #[command(flatten)]
        targets: Targets,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Restart services, and wait until the new process runs (a unit's name: every instance).
    Restart {
        #[command(flatten)]
        targets: Targets,
        /// One at a time: each must be up again (ready, if it signals readiness) before the next is
        /// restarted; stops at the first that fails (exit 1). A pool never loses more than one.
        #[arg(long)]
        rolling: bool,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Change a pool's number of instances: new ones start, surplus ones stop from the highest.
    #[command(
        after_help = "E.g. tend scale worker 8. The instances that stay are not touched; a reload keeps the
new count until the unit's `instances:` itself changes."
    )]
    Scale {
        /// The pool's unit name (a unit with `instances: N`).
        #[arg(value_name = "NAME")]
        name: String,
        /// How many instances it should have.
        #[arg(value_name = "N")]
        instances: u32,
        /// Return at once instead of waiting until the new instances run and the surplus ones are down.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Send a signal to services' process groups.
    Signal {
        /// SIGHUP, HUP, 1, SIGRTMIN+2, …
        signal: String,
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Print the last lines of services' output, and follow it with -f.
    Logs {
        names: Vec<String>,
        /// Keep printing new lines as they come.
        #[arg(short, long)]
        follow: bool,
        /// How many lines per service (default 100; with --since, every line since then).
        #[arg(short = 'n', long)]
        lines: Option<usize>,
        /// Only lines since DURATION ago (10m, 1h30m) or TIME (RFC 3339 in UTC: 2026-11-26T13:04:05Z, or
        /// 2026-11-26 13:04:05).
        #[arg(long, value_name = "DURATION|TIME", value_parser = parse_since)]
        since: Option<std::time::SystemTime>,
        /// Each line with the time tend read it (RFC 3339, UTC, microseconds).
        #[arg(short = 't', long)]
        timestamps: bool,
        /// Only the service's stdout, or only its stderr.
        #[arg(long, value_name = "STREAM")]
        stream: Option<StreamArg>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// A live, full-screen view of the services: state, pid, uptime, restarts, CPU, memory; keys to act on them.
    #[command(
        after_help = "Keys: ↑/↓ or j/k select, s start, r restart, x stop (y confirms), K send a signal,
l the selected service's log lines (followed), / filter by name or state, o change the order,
Esc clear the filter or close the logs, Ctrl-Z suspend, q quit.
States, pids and restarts show as they happen (the supervisor's events); CPU, memory and uptimes every --interval.
NO_COLOR set and not empty: no colours."
    )]
    Top {
        /// How often CPU, memory and uptimes are asked for (at least 1s); states, pids and restarts show as
        /// they happen, from the supervisor's events.
        #[arg(long, short = 'd', value_name = "DURATION", default_value = "1s", value_parser = crate::unit::values::parse_duration)]
        interval: std::time::Duration,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Follow the supervisor's events as they happen: started, ready, exited, backoff, failed, stopping, stopped,
    /// health, reload, scale.
    #[command(
        after_help = "With --json, one object per line: time, service, event, state, message, and the event's own \
fields (see the JSON contract in the README). A reader that falls too far behind is disconnected with a last \
{\"event\":\"overflow\"} line (exit 1).
E.g. tend events --json --since-start web | jq -c 'select(.state == \"ready\")'"
    )]
    Events {
        /// Only these services (else every one, and those a reload adds).
        names: Vec<String>,
        /// One JSON object per event.
        #[arg(long)]
        json: bool,
        /// First say where each service is now (one `state` event each), so no transition is missed.
        #[arg(long)]
        since_start: bool,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Wait until services are ready (or up, stopped, completed): exit 0, or 1 as soon as one fails on the way or
    /// the timeout passes.
    #[command(
        after_help = "Decided by the supervisor from the states tend status shows, so no change can slip \
between a look and the wait. Without names: every service (for --ready, --up and --completed, those wanted up). \
Exit 3 when no supervisor answers.
E.g. tend up -d && tend wait --ready db web && run-tests"
    )]
    Wait {
        #[command(flatten)]
        until: WaitUntil,
        /// Give up after DURATION (exit 1; default: no limit).
        #[arg(long, value_name = "DURATION", value_parser = crate::unit::values::parse_duration)]
        timeout: Option<std::time::Duration>,
        names: Vec<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Print the supervisor's metrics in the Prometheus text format (as GET /metrics serves them).
    Metrics {
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Re-read the units folder and apply the difference (as SIGHUP does).
    Reload {
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
        #[arg(long)]
        json: bool,
    },
    /// Open every service's log file anew, after logrotate moved them away (as SIGUSR1 does).
    ReopenLogs {
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Stop every service and the supervisor; wait until it has exited.
    Shutdown {
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        timeout: TimeoutArg,
    },
    /// Print a shell completion script (subcommands, flags, and the running supervisor's service names).
    #[command(after_help = "Install it where your shell looks for completions, e.g.:
  tend completions bash > /etc/bash_completion.d/tend
  tend completions zsh  > \"${fpath[1]}/_tend\"
  tend completions fish > ~/.config/fish/completions/tend.fish")]
    Completions {
        /// The shell to write the script for.
        shell: Shell,
    },
    /// Write unit files from another tool's configuration, and print what could not be translated.
    #[command(after_help = "E.g. tend import compose docker-compose.yml -o units && tend check units
     tend import systemd /lib/systemd/system/redis-server.service
Each unit also says, in comments, where it came from and what was not translated.")]
    Import {
        /// The format of the files.
        format: crate::import::Format,
        /// The files to read (systemd: one .service file per unit).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The units folder to write into (created if missing).
        #[arg(short, long, value_name = "DIR", default_value = "units")]
        output: PathBuf,
        /// Replace unit files that exist (else nothing is written if any would be).
        #[arg(long)]
        force: bool,
    },
    /// Print a JSON Schema (draft 2020-12) of the unit file format, for editors and linters.
    #[command(after_help = "E.g. tend schema > /etc/tend/unit.schema.json, then start each unit file with
  # yaml-language-server: $schema=/etc/tend/unit.schema.json")]
    Schema,
    /// Write the manual pages into DIR/man1 (tend.1, tend-SUBCOMMAND.1) and DIR/man5 (tend.unit.5).
    #[command(after_help = "E.g. tend man /usr/local/share/man && man tend.unit")]
    Man {
        /// The manual's top folder, e.g. /usr/local/share/man (folders are created if missing).
        dir: PathBuf,
    },
    /// What the completion scripts call: one candidate per line, nothing when no supervisor answers.
    #[command(name = "__complete", hide = true)]
    Complete {
        what: Candidates,
        #[command(flatten)]
        socket: SocketArg,
    },
}

impl Command {
    /// `--timeout`, for the client commands that take it.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        match self {
            Command::Status { timeout, .. }
            | Command::Start { timeout, .. }
            | Command::Stop { timeout, .. }
            | Command::Restart { timeout, .. }
            | Command::Scale { timeout, .. }
            | Command::Signal { timeout, .. }
            | Command::Logs { timeout, .. }
            | Command::Top { timeout, .. }
            | Command::Events { timeout, .. }
            | Command::Metrics { timeout, .. }
            | Command::Reload { timeout, .. }
            | Command::ReopenLogs { timeout, .. }
            | Command::Shutdown { timeout, .. } => timeout.timeout,
            _ => None,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `tend logs --stream`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamArg {
    Stdout,
    Stderr,
}

/// What `tend wait` waits for (one of them; `--ready` when none is given).
#[derive(Args, Debug, Clone, Copy)]
#[group(multiple = false)]
pub struct WaitUntil {
    /// Until each is ready: it said so (or runs, without a readiness signal; completed, for a oneshot). The default.
    #[arg(long)]
    pub ready: bool,
    /// Until each one's process runs (ready or not), or a oneshot completed.
    #[arg(long)]
    pub up: bool,
    /// Until each is down with nothing coming: stopped, exited, completed or failed.
    #[arg(long)]
    pub stopped: bool,
    /// Until each ran to success (a oneshot that completed).
    #[arg(long)]
    pub completed: bool,
}

impl From<WaitUntil> for crate::ctl::proto::WaitFor {
    fn from(until: WaitUntil) -> Self {
        use crate::ctl::proto::WaitFor;
        if until.up {
            WaitFor::Up
        } else if until.stopped {
            WaitFor::Stopped
        } else if until.completed {
            WaitFor::Completed
        } else {
            WaitFor::Ready
        }
    }
}

/// `--metrics-listen`: `PORT` (on 127.0.0.1) or `HOST:PORT`.
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| format!("'{text}' is not PORT or HOST:PORT (127.0.0.1:9477, [::1]:9477)"))
}

/// `--since`: a duration ago, or a time (RFC 3339, UTC).
pub fn parse_since(text: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(ago) = crate::unit::values::parse_duration(text) {
        return Ok(std::time::SystemTime::now().checked_sub(ago).unwrap_or(std::time::UNIX_EPOCH));
    }
    humantime::parse_rfc3339_weak(text).map_err(|_| {
        format!("'{text}' is neither a duration (10m, 1h30m) nor a time in UTC (2026-11-26T13:04:05Z)")
    })
}

/// What `tend __complete` lists.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Candidates {
    /// The running supervisor's service names (and its pools' unit names).
    Services,
    /// The running supervisor's pools (units with instances), for `tend scale`.
    Pools,
    /// Signal names for `tend signal`.
    Signals,
}
