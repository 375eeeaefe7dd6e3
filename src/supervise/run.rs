//! `tend run`: one command as an init (tini mode).
//!
//! The same reaper and spawn path as `tend up`, with one never-restarted
//! child: every catchable signal tend gets is forwarded to the child (or its
//! process group with `-g`), rewritten first with `--rewrite`, every zombie
//! is reaped (and reported with `-v`), and tend exits with the child's
//! status (128+N when killed by signal N; 0 for a code given with `-e`). On
//! a terminal the child gets its own process group and the terminal's
//! foreground, so job control and Ctrl-C work as without tend (tini's
//! isolate_child). The child starts with the signal dispositions and mask
//! tend inherited, not the clean reset services get.
//!
//! Owns the `tend run` options and their decisions (parsing `-p` and
//! `--rewrite`, the rewrite table), kept as small pure functions. Must not
//! fork (that is `spawn`'s) nor wait outside the reaper.

use super::reaper;
use crate::spawn::{self, ExecPlan};
use crate::sys;
use std::io;
use tend_core::ExitStatus;

/// Signals forwarded to the child. Not SIGCHLD (ours), not SIGKILL/SIGSTOP
/// (cannot be caught), not the synchronous faults SIGSEGV/SIGBUS/SIGFPE/
/// SIGILL (signal-hook refuses them: they mean tend itself crashed).
fn forwarded_signals() -> Vec<i32> {
    let mut signals = vec![
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTRAP,
        libc::SIGABRT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGTERM,
        libc::SIGSTKFLT,
        libc::SIGCONT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGURG,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGWINCH,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSYS,
    ];
    signals.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    signals
}

pub struct RunOptions {
    pub command: Vec<String>,
    /// Forward signals to the child's whole process group.
    pub group: bool,
    /// Exit codes (and 128+N) that tend turns into 0 (`-e`, tini's).
    pub success_exit_codes: Vec<i32>,
    /// The signal the kernel sends tend when its parent dies (`-p`).
    pub parent_death_signal: Option<i32>,
    /// Signals passed on as another (`--rewrite`, dumb-init's).
    pub rewrites: Rewrites,
    /// 1: report reaped processes other than the child; 2: also each signal.
    pub verbosity: u8,
}

/// Can `signal` be waited for and passed on? Those are the only signals
/// `-p` and `--rewrite FROM` may name.
fn is_forwarded(signal: i32) -> bool {
    forwarded_signals().contains(&signal)
}

/// `-p SIGNAL`: a name or number tend can pass on to the child, or SIGKILL
/// (tend then dies at once; its child, whose own parent-death signal is
/// SIGKILL, with it).
pub fn parse_parent_death_signal(text: &str) -> Result<i32, String> {
    let signal = crate::unit::values::parse_signal(text)?;
    if signal == libc::SIGKILL || is_forwarded(signal) {
        Ok(signal)
    } else {
        Err(format!("{} cannot be passed on to the command", crate::unit::values::signal_name(signal)))
    }
}

/// One `--rewrite FROM:TO` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    pub from: i32,
    /// 0: do not pass FROM on at all (dumb-init's convention).
    pub to: i32,
}

/// `FROM:TO`, each a signal name or number (`15:3`, `TERM:QUIT`,
/// `SIGUSR1:0`). FROM must be a signal tend passes on; TO 0 drops it.
pub fn parse_rewrite(text: &str) -> Result<Rewrite, String> {
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not FROM:TO (for example TERM:QUIT, or 15:3)"))?;
    let from = crate::unit::values::parse_signal(from)?;
    if !is_forwarded(from) {
        return Err(format!("{} is not a signal tend passes on", crate::unit::values::signal_name(from)));
    }
    let to = if to.trim() == "0" { 0 } else { crate::unit::values::parse_signal(to)? };
    Ok(Rewrite { from, to })
}

/// The `--rewrite` table. Several rules for one signal: the last one wins,
/// as in dumb-init.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrites(pub Vec<Rewrite>);

impl Rewrites {
    /// The signal to send the child when tend receives `signal`; `None`
    /// when a rule drops it.
    pub fn forward_as(&self, signal: i32) -> Option<i32> {
        match self.0.iter().rev().find(|rule| rule.from == signal) {
            Some(rule) if rule.to == 0 => None,
            Some(rule) => Some(rule.to),
            None => Some(signal),
        }
    }
}

/// Exit status when the command could not be executed, as shells do:
/// 127 when not found, 126 otherwise.
fn exec_failure_status(errno: i32) -> i32 {
    if errno == libc::ENOENT || errno == libc::ENOTDIR {
        crate::exit::NOT_FOUND
    } else {
        crate::exit::CANNOT_EXECUTE
    }
}

pub fn run_command(options: RunOptions) -> i32 {
    spawn::ensure_standard_fds();
    match run(options) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tend: {err}");
            crate::exit::FAILURE
        }
    }
}

/// Unlike `tend up`, this loop has nothing to poll but signals, so it waits
/// for them synchronously with sigwaitinfo(2) on a blocked set, as tini
/// does: no handler, no self-pipe, no epoll, one wakeup per signal. That
/// keeps SIGTERM-to-exit on par with tini. The reaper and the spawn path are
/// the same as `tend up`'s; the child resets the mask before exec.
fn run(options: RunOptions) -> io::Result<i32> {
    let parent = sys::getppid();
    let mut waited = sys::SignalSet::empty();
    for signal in forwarded_signals().into_iter().chain([libc::SIGCHLD]) {
        waited.add(signal);
    }
    waited.block();
    // An inherited SIG_IGN on SIGCHLD would make the kernel reap the child
    // itself and lose its status (waitpid(2), NOTES); the child gets the
    // inherited disposition back.
    sys::set_default_disposition(nix::sys::signal::Signal::SIGCHLD);
    if let Some(signal) = options.parent_death_signal {
        // Blocked and waited for like any other: it reaches the child as if
        // it had been sent to tend (tini's -p).
        sys::set_parent_death_signal(signal)
            .map_err(|e| io::Error::other(format!("cannot set the parent-death signal: {e}")))?;
        // The parent may have died before the prctl: then no signal will
        // come (prctl(2)), so send it ourselves. As PID 1 of a namespace the
        // parent is outside it and getppid() stays 0.
        if sys::getppid() != parent {
            sys::signal_self(signal)?;
        }
    }
    let is_init = sys::getpid() == 1;
    let pdeathsig = if is_init {
        None
    } else {
        // Not PID 1: still collect the zombies of what the command leaves.
        let _ = sys::set_child_subreaper();
        Some(libc::SIGKILL)
    };
    // The terminal's foreground goes to the child only when tend has it now.
    let stdin = sys::standard_fd(0);
    let foreground = sys::isatty(stdin) && sys::tcgetpgrp(stdin) == Some(getpgrp());
    let mut plan = ExecPlan::for_command(&options.command, std::env::vars_os(), foreground, pdeathsig)
        .map_err(|e| io::Error::other(format!("cannot prepare the command: {}", e.0)))?;
    plan.keep_inherited_signals(sys::inherited_signals());
    let child = spawn::spawn(&plan)?;
    let child_pid = child.pid;
    // Reaped processes other than the child (tini's -w). Written straight to
    // stderr as tini does: opt-in diagnostics, not the command's output.
    let report_reaped = |pid: i32, status: ExitStatus| {
        if pid != child_pid && options.verbosity >= 1 {
            eprintln!("tend: reaped zombie process with pid={pid} ({})", status.describe());
        }
    };

    // One child and nothing else to serve: wait for its exec verdict here.
    let mut report = Vec::new();
    loop {
        let mut buf = [0u8; 64];
        match sys::read(&child.exec_status, &mut buf) {
            Ok(0) => break,
            Ok(n) => report.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                sys::wait_readable(&child.exec_status);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if let Some(error) = spawn::decode_report(&plan, &report) {
        eprintln!("tend: {error}");
        // Collect the failed child before leaving.
        loop {
            let mut gone = false;
            reaper::reap_all(|pid, status| {
                gone |= pid == child_pid;
                report_reaped(pid, status);
            });
            if gone {
                break;
            }
            waited.wait();
        }
        // Not subject to -e: this is tend failing to start the command, not
        // a status of the command's.
        let status = if error.step == spawn::FailedStep::Spawn(spawn::Step::Exec) {
            exec_failure_status(error.errno)
        } else {
            crate::exit::CANNOT_EXECUTE
        };
        return Ok(status);
    }

    loop {
        let signal = waited.wait();
        if signal == libc::SIGCHLD {
            let mut child_status = None;
            reaper::reap_all(|pid, status| {
                if pid == child_pid {
                    child_status = Some(status);
                }
                report_reaped(pid, status);
            });
            if let Some(status) = child_status {
                // Nothing is left to clean up: no destructors, no atexit
                // handlers (bench/run: SIGTERM to exit, against tini).
                sys::exit_now(status.handed_over(&options.success_exit_codes));
            }
        } else if signal > 0 {
            match options.rewrites.forward_as(signal) {
                Some(sent) => {
                    if options.verbosity >= 2 {
                        eprintln!(
                            "tend: passing {} on to pid {child_pid}{}",
                            tend_core::text::signal_name(sent),
                            if sent == signal {
                                String::new()
                            } else {
                                format!(" (received {})", tend_core::text::signal_name(signal))
                            }
                        );
                    }
                    // ESRCH (already gone) is fine: its exit is on its way.
                    let _ = sys::send_signal(child_pid, sent, options.group);
                }
                None => {
                    if options.verbosity >= 2 {
                        eprintln!("tend: dropping {} (--rewrite)", tend_core::text::signal_name(signal));
                    }
                }
            }
        }
    }
}

fn getpgrp() -> i32 {
    nix::unistd::getpgrp().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_parses_names_and_numbers() {
        assert_eq!(parse_rewrite("15:3"), Ok(Rewrite { from: 15, to: 3 }));
        assert_eq!(parse_rewrite("TERM:QUIT"), Ok(Rewrite { from: 15, to: 3 }));
        assert_eq!(parse_rewrite("SIGUSR1:SIGRTMIN+2"), Ok(Rewrite { from: 10, to: 36 }));
        assert_eq!(parse_rewrite("usr1:0"), Ok(Rewrite { from: 10, to: 0 }));
        assert_eq!(parse_rewrite("TERM:KILL"), Ok(Rewrite { from: 15, to: 9 }));
    }

    #[test]
    fn rewrite_refuses_what_tend_never_receives_or_cannot_parse() {
        assert!(parse_rewrite("TERM").unwrap_err().contains("FROM:TO"));
        assert!(parse_rewrite("KILL:TERM").unwrap_err().contains("SIGKILL"));
        assert!(parse_rewrite("CHLD:TERM").unwrap_err().contains("SIGCHLD"));
        assert!(parse_rewrite("SEGV:TERM").is_err());
        assert!(parse_rewrite("TERM:NOPE").unwrap_err().contains("unknown signal"));
        assert!(parse_rewrite("0:TERM").is_err());
        assert!(parse_rewrite("TERM:65").is_err());
    }

    #[test]
    fn forward_as_rewrites_drops_and_passes_the_rest() {
        let table = Rewrites(vec![
            Rewrite { from: 15, to: 3 },
            Rewrite { from: 10, to: 0 },
            Rewrite { from: 12, to: 1 },
            Rewrite { from: 12, to: 2 },
        ]);
        assert_eq!(table.forward_as(15), Some(3));
        assert_eq!(table.forward_as(10), None);
        assert_eq!(table.forward_as(12), Some(2), "the last rule for a signal wins");
        assert_eq!(table.forward_as(1), Some(1));
        assert_eq!(Rewrites::default().forward_as(15), Some(15));
    }

    #[test]
    fn parent_death_signal_takes_what_can_be_passed_on() {
        assert_eq!(parse_parent_death_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_parent_death_signal("USR1"), Ok(10));
        assert_eq!(parse_parent_death_signal("9"), Ok(9));
        assert_eq!(parse_parent_death_signal("SIGRTMIN+1"), Ok(35));
        assert!(parse_parent_death_signal("SIGCHLD").is_err());
        assert!(parse_parent_death_signal("SIGSTOP").is_err());
        assert!(parse_parent_death_signal("SIGSEGV").is_err());
        assert!(parse_parent_death_signal("SIGNOPE").is_err());
    }
}
