//! The only code that forks.
//!
//! Owns the [`ExecPlan`] (everything the child needs, computed in the parent:
//! argv/envp as C strings, credentials, rlimits, paths) and the child side:
//! a fixed, ordered list of async-signal-safe steps between fork and exec
//! ([`child`]). A failing step writes `(step, errno, index)` to a close-on-exec
//! pipe and `_exit`s; the parent reads EOF (exec succeeded) or the failure.
//! Must not reap (that is `supervise`'s job) nor decide anything.

mod child;
mod plan;
mod vfork;

pub use plan::{check_program, forget_resolved_programs, ExecPlan, ProgramChecks, Stdio};

use nix::fcntl::OFlag;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

step_codes! {
    /// The steps the child runs between fork and exec, in order. The
    /// sandbox's own steps (`sandbox::confine::ConfineStep`) are numbered
    /// from 64 on the same pipe.
    pub enum Step {
        Setsid = 1,
        Setpgid = 2,
        Tcsetpgrp = 3,
        Pdeathsig = 4,
        Stdio = 5,
        Chdir = 6,
        Rlimit = 7,
        Nice = 8,
        Umask = 9,
        Setgroups = 10,
        Setgid = 11,
        Setuid = 12,
        DropCheck = 13,
        CloseFds = 14,
        Signals = 15,
        Exec = 16,
        Cgroup = 17,
        /// Opening `stdin: {file: PATH}` as the service.
        StdinFile = 18,
    }
}

impl Step {
    /// The step's name in `status --json` (`last_exit.step`).
    pub fn name(self) -> &'static str {
        match self {
            Step::Setsid => "setsid",
            Step::Setpgid => "setpgid",
            Step::Tcsetpgrp => "tcsetpgrp",
            Step::Pdeathsig => "pdeathsig",
            Step::Stdio => "stdio",
            Step::Chdir => "chdir",
            Step::Rlimit => "rlimit",
            Step::Nice => "nice",
            Step::Umask => "umask",
            Step::Setgroups => "setgroups",
            Step::Setgid => "setgid",
            Step::Setuid => "setuid",
            Step::DropCheck => "drop_check",
            Step::CloseFds => "close_fds",
            Step::Signals => "signals",
            Step::Exec => "exec",
            Step::Cgroup => "cgroup",
            Step::StdinFile => "stdin",
        }
    }
}

/// Which step failed, as the status pipe said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedStep {
    Spawn(Step),
    Sandbox(crate::sandbox::confine::ConfineStep),
    /// A number no step has (a child built from other code): still a
    /// failure, never read as "no error".
    Unknown(u32),
}

impl FailedStep {
    /// The name in `status --json` (`last_exit.step`).
    pub fn name(self) -> &'static str {
        match self {
            FailedStep::Spawn(step) => step.name(),
            FailedStep::Sandbox(_) => "sandbox",
            FailedStep::Unknown(_) => "unknown",
        }
    }
}

/// A child step failed: which one, with which errno, on which item (the
/// rlimit index, or the exec candidate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnError {
    pub step: FailedStep,
    pub errno: i32,
    /// What the step acted on, for the message ("/usr/bin/nginx", "nofile").
    pub object: String,
    /// What to do about it, when known.
    pub hint: Option<String>,
}

impl fmt::Display for SpawnError {
    /// `cannot VERB OBJECT: reason`, as DESIGN.md asks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = tend_core::text::error_text(&io::Error::from_raw_os_error(self.errno));
        let object = &self.object;
        let step = match self.step {
            FailedStep::Spawn(step) => step,
            FailedStep::Sandbox(_) => {
                write!(f, "{object}: {reason}")?;
                if let Some(hint) = &self.hint {
                    write!(f, " ({hint})")?;
                }
                return Ok(());
            }
            FailedStep::Unknown(code) => return write!(f, "cannot start: step {code} failed: {reason}"),
        };
        match step {
            Step::Setsid => write!(f, "cannot start a new session: {reason}"),
            Step::Setpgid => write!(f, "cannot create a process group: {reason}"),
            Step::Tcsetpgrp => write!(f, "cannot take the terminal's foreground: {reason}"),
            Step::Pdeathsig => write!(f, "cannot set the parent-death signal: {reason}"),
            Step::Stdio => write!(f, "cannot set up standard input/output: {reason}"),
            Step::Chdir => write!(f, "cannot change directory to {object}: {reason}"),
            Step::Rlimit => write!(f, "cannot set rlimit {object}: {reason}"),
            Step::Nice => write!(f, "cannot set nice {object}: {reason}"),
            Step::Umask => write!(f, "cannot set umask: {reason}"),
            Step::Setgroups => write!(f, "cannot set supplementary groups {object}: {reason}"),
            Step::Setgid => write!(f, "cannot set group {object}: {reason}"),
            Step::Setuid => write!(f, "cannot set user {object}: {reason}"),
            Step::DropCheck => write!(f, "cannot drop privileges: uid 0 could be regained"),
            Step::CloseFds => write!(f, "cannot mark descriptors close-on-exec: {reason}"),
            Step::Signals => write!(f, "cannot reset signal handling: {reason}"),
            Step::Exec => write!(f, "cannot execute {object}: {reason}"),
            Step::Cgroup => write!(f, "cannot join the service's cgroup: {reason}"),
            // The child reports errno 0 for a file that opened but is not a
            // regular file (a FIFO, a device, a directory).
            Step::StdinFile if self.errno == 0 => {
                write!(f, "cannot read stdin from {object}: not a regular file")
            }
            Step::StdinFile => write!(f, "cannot open stdin file {object}: {reason}"),
        }
    }
}

/// A forked child: its pid, and the read end of its exec-status pipe
/// (close-on-exec write end in the child: EOF means exec succeeded).
#[derive(Debug)]
pub struct Child {
    pub pid: i32,
    pub exec_status: OwnedFd,
}

/// The bytes a failing child writes to the exec-status pipe.
const REPORT_LEN: usize = 12;

/// Decode what was read from the exec-status pipe after EOF: nothing means
/// exec succeeded.
pub fn decode_report(plan: &ExecPlan, bytes: &[u8]) -> Option<SpawnError> {
    if bytes.len() < REPORT_LEN {
        return None;
    }
    let word = |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let code = word(0);
    let errno = word(4) as i32;
    let index = word(8) as usize;
    if let Some(confine_step) = crate::sandbox::confine::ConfineStep::from_u32(code) {
        let object = match &plan.confine {
            Some(confine) => confine.describe_failure(confine_step, index as u32),
            None => confine_step.describe().to_string(),
        };
        let hint = confine_step.hint(errno).map(str::to_string);
        return Some(SpawnError { step: FailedStep::Sandbox(confine_step), errno, object, hint });
    }
    match Step::from_u32(code) {
        Some(step) => Some(SpawnError {
            step: FailedStep::Spawn(step),
            errno,
            object: plan.describe(step, index),
            hint: None,
        }),
        None => {
            Some(SpawnError { step: FailedStep::Unknown(code), errno, object: String::new(), hint: None })
        }
    }
}

/// Start a service's `plan`, when `by_thread`, without copying tend: from
/// the spawner thread with `CLONE_VM | CLONE_VFORK` ([`vfork`]) when it is
/// free and the plan has no sandbox; else by [`spawn`]'s fork. Returns once
/// the child exists (not once it exec'd: that is `Child::exec_status`, as
/// for a fork).
pub fn spawn_shared(plan: &Arc<ExecPlan>, by_thread: bool) -> io::Result<Child> {
    let (status_read, status_write) = status_pipe()?;
    let shared =
        if by_thread { vfork::try_spawn(plan, status_write.as_raw_fd(), crate::sys::getpid()) } else { None };
    match shared {
        Some(Ok(pid)) => {
            // The child has its own copy of the write end since the clone.
            drop(status_write);
            Ok(Child { pid, exec_status: status_read })
        }
        // Busy, sandboxed, or clone3 refused (an old kernel): fork.
        Some(Err(_)) | None => fork(plan, status_read, status_write),
    }
}

/// Non-blocking from the start, so that nothing can fail after the fork
/// (a child must be indexed by the caller once it exists). The child's
/// one 12-byte write to an empty pipe never blocks either way.
fn status_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?)
}

/// Fork and run `plan` in the child. Returns once the child exists; the
/// caller learns whether exec worked from `Child::exec_status`.
///
/// Signals are blocked around fork so that none of tend's handlers runs in
/// the child; the child resets every disposition and unblocks them just
/// before exec.
pub fn spawn(plan: &ExecPlan) -> io::Result<Child> {
    let (status_read, status_write) = status_pipe()?;
    fork(plan, status_read, status_write)
}

fn fork(plan: &ExecPlan, status_read: OwnedFd, status_write: OwnedFd) -> io::Result<Child> {
    // `private_pids`: the child is PID 1 of a new PID namespace, where its
    // parent (tend) is outside: getppid() says 0 there.
    let new_pid_namespace = plan.confine.as_ref().is_some_and(|c| c.pid_namespace());
    let parent_pid = if new_pid_namespace { 0 } else { crate::sys::getpid() };
    let extra_flags = if new_pid_namespace { crate::sys::CLONE_NEWPID } else { 0 };
    let old_mask = crate::sys::block_all_signals();
    // Into the service's v2 cgroup at clone time when we can: no write to
    // cgroup.procs afterwards, which costs an RCU grace period per join.
    let mut joined_by_clone = false;
    let mut pid = -1;
    if let Some((cgroup_dir, _)) = &plan.clone_into {
        pid = crate::sys::clone3(extra_flags, Some(*cgroup_dir));
        joined_by_clone = pid >= 0;
    }
    if !joined_by_clone && new_pid_namespace {
        // SAFETY: a fork-like clone (no CLONE_VM, no new stack: the child
        // runs on a copy of this stack); the child runs only the
        // async-signal-safe steps of `child::run` (so it takes no lock that
        // another thread, the reload thread, may have held at the clone).
        pid = unsafe {
            libc::syscall(libc::SYS_clone, libc::CLONE_NEWPID | libc::SIGCHLD, 0usize, 0usize, 0usize, 0usize)
        } as i32;
    } else if !joined_by_clone {
        // SAFETY: the child runs only the async-signal-safe steps in
        // `child::run`, which never returns. (Raw, like the two clones
        // above: nix's fork is as unsafe and adds nothing.)
        pid = unsafe { libc::fork() };
    }
    if pid == 0 {
        child::run(plan, status_write.as_raw_fd(), parent_pid, joined_by_clone);
    }
    let fork_error = io::Error::last_os_error();
    crate::sys::restore_signal_mask(&old_mask);
    drop(status_write);
    if pid < 0 {
        return Err(fork_error);
    }
    Ok(Child { pid, exec_status: status_read })
}

pub fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// A pipe whose both ends are close-on-exec and numbered 3 or above (so that
/// dup2 onto 0/1/2 in the child never overwrites one end with the other).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// Make sure descriptors 0, 1 and 2 are open (on /dev/null when closed), so
/// that no descriptor tend opens later lands on a standard stream number.
/// Raw: it asks whether a number is open, which no safe descriptor type
/// can stand for.
pub fn ensure_standard_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only inspects the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: open with a static NUL-terminated path; the lowest free
            // number is `fd` since lower ones are open.
            unsafe {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::confine::ConfineStep;

    fn report(code: u32, errno: i32, index: u32) -> Vec<u8> {
        [code, errno as u32, index].iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    #[test]
    fn every_step_code_decodes_to_its_step_and_no_two_share_one() {
        let mut codes: Vec<u32> = Step::ALL.iter().map(|s| *s as u32).collect();
        codes.extend(ConfineStep::ALL.iter().map(|s| *s as u32));
        for step in Step::ALL {
            assert_eq!(Step::from_u32(*step as u32), Some(*step));
        }
        for step in ConfineStep::ALL {
            assert_eq!(ConfineStep::from_u32(*step as u32), Some(*step));
        }
        let count = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), count, "two steps share a code");
    }

    #[test]
    fn a_report_names_its_step_and_an_unknown_code_is_still_a_failure() {
        let plan =
            ExecPlan::for_command(&["/no/such/program".into()], std::iter::empty(), false, None).unwrap();
        assert_eq!(decode_report(&plan, &[]), None, "nothing written: exec succeeded");
        let exec = decode_report(&plan, &report(Step::Exec as u32, libc::ENOENT, 0)).unwrap();
        assert_eq!(exec.step, FailedStep::Spawn(Step::Exec));
        assert_eq!(exec.to_string(), "cannot execute /no/such/program: No such file or directory");
        let unknown = decode_report(&plan, &report(999, libc::EPERM, 0)).unwrap();
        assert_eq!(unknown.step, FailedStep::Unknown(999));
        assert_eq!(unknown.step.name(), "unknown");
        assert_eq!(unknown.to_string(), "cannot start: step 999 failed: Operation not permitted");
        let sandbox = decode_report(&plan, &report(ConfineStep::Hostname as u32, libc::EPERM, 0)).unwrap();
        assert_eq!(sandbox.step, FailedStep::Sandbox(ConfineStep::Hostname));
        assert_eq!(sandbox.step.name(), "sandbox");
    }
}
