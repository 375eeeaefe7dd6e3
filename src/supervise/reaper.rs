//! The reaper: the only `waitpid` in tend.
//!
//! Called on every SIGCHLD, it collects every child that has ended —
//! services, checks, and orphans re-parented to tend as PID 1 or as a child
//! subreaper — until none is left. A pid enters the pid index in the same
//! function that forks it, before the loop can reap again, so no fast exit
//! is lost (Horust's two-thread design could lose one).
//!
//! Raw `waitpid` rather than nix's: nix converts the terminating signal into
//! its `Signal` enum and fails with EINVAL for real-time signals, after the
//! kernel has already consumed the child's status.

use tend_core::ExitStatus;

/// Reap every ended child; `on_reaped(pid, status)` for each.
pub fn reap_all(mut on_reaped: impl FnMut(i32, ExitStatus)) {
    while let Some((pid, status)) = crate::sys::wait_any_nohang() {
        on_reaped(pid, decode(status));
    }
}

fn decode(status: i32) -> ExitStatus {
    if libc::WIFEXITED(status) {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    } else {
        ExitStatus::Signaled { signal: libc::WTERMSIG(status), core_dumped: libc::WCOREDUMP(status) }
    }
}
