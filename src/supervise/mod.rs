//! THE loop: one thread, one poller, one reaper.
//!
//! Owns the mio poller over the signal self-pipe, the services' output pipes
//! and their exec-status pipes; the pid index; the reaper (the only
//! `waitpid`); and carrying out the actions the policy returns. It sleeps
//! until the earliest deadline, or forever when none is due, so an idle tend
//! never wakes up. Must not decide policy (that is `policy`'s) nor format
//! unit errors (that is `unit`'s).

mod control;
mod leftovers;
mod readiness;
mod reaper;
pub mod run;
mod stack;
mod systemd;

pub use stack::{run_stack, SocketOptions, StackOptions};

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

/// A signal's name for messages ("SIGTERM", "SIGRTMIN+2", or the number).
pub fn signal_name(signal: i32) -> String {
    crate::unit::values::signal_name(signal)
}

/// `exited with status 3`, `killed by signal SIGKILL (core dumped)`.
pub fn describe_exit(status: crate::policy::ExitStatus) -> String {
    status.describe()
}

/// `256M`, `1.5G`, `512K`, `100B`: sizes as units write them.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, suffix) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes % size == 0 {
                format!("{}{suffix}", bytes / size)
            } else {
                format!("{value:.1}{suffix}")
            };
        }
    }
    format!("{bytes}B")
}
