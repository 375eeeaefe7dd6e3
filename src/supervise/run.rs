//! `tend run`: one command as an init (tini mode).
//!
//! The same reaper and spawn path as `tend up`, with one never-restarted
//! child: every catchable signal tend gets is forwarded to the child (or its
//! process group with `-g`), every zombie is reaped, and tend exits with the
//! child's status (128+N when killed by signal N). On a terminal the child
//! gets its own process group and the terminal's foreground, so job control
//! and Ctrl-C work as without tend (tini's isolate_child).

use super::reaper;
use crate::policy::ExitStatus;
use crate::spawn::{self, ExecPlan};
use crate::sys;
use std::io;
use std::os::fd::AsRawFd;

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
    let mut waited = sys::SignalSet::empty();
    for signal in forwarded_signals().into_iter().chain([libc::SIGCHLD]) {
        waited.add(signal);
    }
    waited.block();
    let is_init = sys::getpid() == 1;
    let pdeathsig = if is_init {
        None
    } else {
        // Not PID 1: still collect the zombies of what the command leaves.
        let _ = sys::set_child_subreaper();
        Some(libc::SIGKILL)
    };
    // The terminal's foreground goes to the child only when tend has it now.
    let foreground = sys::isatty(0) && sys::tcgetpgrp(0) == Some(getpgrp());
    let plan = ExecPlan::for_command(&options.command, std::env::vars_os(), foreground, pdeathsig)
        .map_err(|e| io::Error::other(format!("cannot prepare the command: {}", e.0)))?;
    let child = spawn::spawn(&plan)?;
    let child_pid = child.pid;

    // One child and nothing else to serve: wait for its exec verdict here.
    let mut report = Vec::new();
    loop {
        let mut buf = [0u8; 64];
        match sys::read(child.exec_status.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => report.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                sys::wait_readable(child.exec_status.as_raw_fd());
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
            reaper::reap_all(|pid, _| gone |= pid == child_pid);
            if gone {
                break;
            }
            waited.wait();
        }
        let status = if error.step == spawn::Step::Exec {
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
            });
            if let Some(status) = child_status {
                return Ok(match status {
                    ExitStatus::Code(code) => code,
                    ExitStatus::Signaled { signal, .. } => 128 + signal,
                });
            }
        } else if signal > 0 {
            // ESRCH (already gone) is fine: its exit is on its way.
            let _ = sys::send_signal(child_pid, signal, options.group);
        }
    }
}

fn getpgrp() -> i32 {
    nix::unistd::getpgrp().as_raw()
}
