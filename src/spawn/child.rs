//! The child between fork and exec: a fixed, ordered list of steps.
//!
//! Everything here must be async-signal-safe (signal-safety(7)): raw system
//! calls on data the parent prepared, no allocation, no locks, no logging, no
//! user-database look-ups, no panics that unwind. A service's child may
//! share tend's memory (`vfork`, see `spawn::vfork`): then it writes nothing
//! but its own stack, the suspended spawner thread's errno and its status
//! pipe, so every step is a plain system call (raw where glibc's wrapper
//! keeps state: set-id broadcast, cancellation). The order follows DESIGN.md:
//! rlimits and nice come before the identity change, since raising a hard
//! limit or lowering nice needs privileges the service will not have.

use super::plan::{ExecPlan, Grouping, Stdio};
use super::Step;

/// Report `(step, errno, index)` on the status pipe and exit 127.
fn fail(status_fd: i32, step: Step, errno: i32, index: u32) -> ! {
    fail_code(status_fd, step as u32, errno, index)
}

/// A sandbox step failed: its own step number (64 and up) goes on the pipe.
fn fail_confine(status_fd: i32, error: crate::sandbox::confine::ConfineError) -> ! {
    fail_code(status_fd, error.step as u32, error.errno, error.index)
}

fn fail_code(status_fd: i32, code: u32, errno: i32, index: u32) -> ! {
    let mut report = [0u8; super::REPORT_LEN];
    report[0..4].copy_from_slice(&code.to_ne_bytes());
    report[4..8].copy_from_slice(&errno.to_ne_bytes());
    report[8..12].copy_from_slice(&index.to_ne_bytes());
    // SAFETY: write and _exit are async-signal-safe; report is a local
    // buffer. The raw write: glibc's is a cancellation point, which touches
    // the calling thread's descriptor (shared memory in a `vfork` child).
    unsafe {
        libc::syscall(libc::SYS_write, status_fd, report.as_ptr(), report.len());
        libc::_exit(127)
    }
}

/// A raw system call's result as the `step!` macro wants it (-1 on error).
fn raw(rc: libc::c_long) -> i32 {
    rc as i32
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Run `call`; on -1, fail with `step`.
macro_rules! step {
    ($fd:expr, $step:expr, $index:expr, $call:expr) => {
        // SAFETY: each call below is an async-signal-safe system call whose
        // pointer arguments point into the plan, which the parent keeps alive
        // (a forked child has its own copy of the address space; a `vfork`
        // child reads the spawner thread's, kept until it exec'd or died).
        if unsafe { $call } == -1 {
            fail($fd, $step, errno(), $index);
        }
    };
}

fn dup_onto(status_fd: i32, source: Stdio, target: i32) {
    match source {
        Stdio::Inherit => {}
        // dup2 onto itself would keep close-on-exec: clear it instead.
        Stdio::Fd(fd) if fd == target => {
            step!(status_fd, Step::Stdio, 0, libc::fcntl(fd, libc::F_SETFD, 0));
        }
        Stdio::Fd(fd) => {
            step!(status_fd, Step::Stdio, 0, libc::dup2(fd, target));
        }
    }
}

fn set_pdeathsig(status_fd: i32, signal: i32, parent_pid: i32) {
    step!(
        status_fd,
        Step::Pdeathsig,
        0,
        libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0)
    );
    // The parent may have died before the prctl: then no signal will come
    // (prctl(2)), and we were re-parented already.
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent_pid {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(127) }
    }
}

pub(super) fn run(plan: &ExecPlan, status_fd: i32, parent_pid: i32, joined_by_clone: bool) -> ! {
    let mut fd = status_fd;

    // 1. Session and process group.
    match plan.grouping {
        Grouping::Inherit => {}
        Grouping::NewSession => step!(fd, Step::Setsid, 0, libc::setsid()),
        Grouping::NewGroup { foreground } => {
            step!(fd, Step::Setpgid, 0, libc::setpgid(0, 0));
            if foreground {
                // Signals are still blocked (spawn blocked them before fork),
                // so SIGTTOU cannot stop us while we are in the background.
                // SAFETY: getpid cannot fail.
                let me = unsafe { libc::getpid() };
                step!(fd, Step::Tcsetpgrp, 0, libc::tcsetpgrp(0, me));
            }
        }
    }

    // 2. Parent-death signal, early to cover the set-up window.
    if let Some(signal) = plan.pdeathsig {
        set_pdeathsig(fd, signal, parent_pid);
    }

    // 3. Standard streams.
    dup_onto(fd, plan.stdin, 0);
    dup_onto(fd, plan.stdout, 1);
    dup_onto(fd, plan.stderr, 2);

    // 4. Join the service's cgroups, before anything that could fork or
    // allocate on its behalf: from here on every process of the service is
    // inside its limits. "0" is the writer itself (cgroup.procs, v1 and v2).
    let joins: &[i32] = match (&plan.clone_into, joined_by_clone) {
        (Some((_, rest)), true) => rest,
        _ => &plan.cgroup_fds,
    };
    for &cgroup_fd in joins {
        step!(fd, Step::Cgroup, 0, raw(libc::syscall(libc::SYS_write, cgroup_fd, b"0".as_ptr(), 1)));
    }

    // 5. Namespaces and mounts, while still privileged.
    if let Some(confine) = &plan.confine {
        if let Err(error) = crate::sandbox::confine::enter_namespaces(confine) {
            fail_confine(fd, error);
        }
    }

    // 6. Working directory: after the mounts, so that the directory we are
    // in is the one the sandbox shows (a cwd taken before a read-only
    // remount would still point at the writable mount).
    if let Some(cwd) = &plan.cwd {
        step!(fd, Step::Chdir, 0, libc::chdir(cwd.as_ptr()));
    }

    // 7. Resource limits and nice, while still privileged.
    for (index, (resource, limit, _)) in plan.rlimits.iter().enumerate() {
        step!(fd, Step::Rlimit, index as u32, libc::setrlimit(*resource, limit));
    }
    if let Some(nice) = plan.nice {
        step!(fd, Step::Nice, 0, libc::setpriority(libc::PRIO_PROCESS, 0, nice));
    }
    if let Some(mask) = plan.umask {
        // umask(2) cannot fail.
        // SAFETY: umask takes an integer.
        unsafe { libc::umask(mask) };
    }

    // 8. Keep capabilities across the uid change when the sandbox lists some.
    if let Some(confine) = &plan.confine {
        if let Err(error) = crate::sandbox::confine::keep_caps(confine) {
            fail_confine(fd, error);
        }
    }

    // 9. Identity: groups, then gid, then uid (after setuid we could no
    // longer change the groups). The raw system calls, never glibc's
    // wrappers: in a process glibc knows to have threads, those broadcast
    // the change to every thread (SIGSETXID, nptl's __nptl_setxid), which
    // in a `vfork` child sharing tend's memory would signal tend's own
    // threads and wait on them. The kernel's calls change this process only.
    if let Some(groups) = &plan.groups {
        step!(fd, Step::Setgroups, 0, raw(libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr())));
    }
    if let Some(gid) = plan.gid {
        step!(fd, Step::Setgid, 0, raw(libc::syscall(libc::SYS_setresgid, gid, gid, gid)));
    }
    if let Some(uid) = plan.uid {
        step!(fd, Step::Setuid, 0, raw(libc::syscall(libc::SYS_setresuid, uid, uid, uid)));
    }

    // 10. Capabilities: the bounding set, then what the service holds.
    if let Some(confine) = &plan.confine {
        if let Err(error) = crate::sandbox::confine::apply_capabilities(confine) {
            fail_confine(fd, error);
        }
    }
    if let Some(uid) = plan.uid {
        // A non-root service must not be able to get root back (unless its
        // sandbox deliberately keeps CAP_SETUID).
        // SAFETY: setresuid takes integers.
        if uid != 0 && !plan.keeps_setuid() && unsafe { libc::syscall(libc::SYS_setresuid, 0, 0, 0) } == 0 {
            fail(fd, Step::DropCheck, 0, 0);
        }
    }

    // 11. The credential change cleared the parent-death signal: set it again.
    if let Some(signal) = plan.pdeathsig {
        if plan.uid.is_some() || plan.gid.is_some() {
            set_pdeathsig(fd, signal, parent_pid);
        }
    }

    // 11b. `stdin: {file: PATH}`, opened now: as the service's user, in its
    // mount namespace, so that the kernel checks the service's own rights
    // (a link the service planted to a file it may not read gains it
    // nothing), and anew at every start.
    if let Some(path) = &plan.stdin_file {
        open_stdin_file(fd, path);
    }

    if let Some(confine) = &plan.confine {
        if let Err(error) = crate::sandbox::confine::no_new_privs(confine) {
            fail_confine(fd, error);
        }
    }

    // 12. No descriptor of tend's may reach the service. Mark, never close:
    // closing would also close the status pipe and hide exec failures.
    close_stray_fds(fd);

    // 13. Landlock last among the restrictions: it needs no_new_privs, and
    // nothing after it opens files.
    if let Some(confine) = &plan.confine {
        if let Err(error) = crate::sandbox::confine::landlock(confine) {
            fail_confine(fd, error);
        }
    }

    // The one descriptor above 2 the service is meant to have (notify_fd),
    // put in place last: earlier steps still use descriptors (cgroup.procs,
    // the Landlock ruleset) whose numbers it might take. dup2's copy is not
    // close-on-exec.
    if let Some((ours, theirs)) = plan.extra_fd {
        if fd == theirs {
            // The status pipe sits where the service wants its descriptor:
            // move the pipe out of the way first.
            // SAFETY: fcntl duplicates a descriptor we own.
            let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, theirs + 1) };
            if moved == -1 {
                fail(fd, Step::Stdio, errno(), 0);
            }
            fd = moved;
        }
        dup_onto(fd, Stdio::Fd(ours), theirs);
    }

    // 13b. `private_pids`: this process is PID 1 of the service's PID
    // namespace. It forks the service (PID 2) and stays as its reaper;
    // only the service goes on to exec.
    if plan.confine.as_ref().is_some_and(|c| c.pid_namespace()) {
        reaper(fd, matches!(plan.grouping, Grouping::NewSession));
    }

    // 14. Default dispositions and an empty mask: neither tend's handlers nor
    // its blocked set may leak into the service. `tend run` then puts back
    // what tend itself inherited (planned in the parent).
    reset_signals(fd, plan.signals_to_reset, &plan.signals_to_ignore, plan.signal_mask);

    // 15. Exec, trying each PATH candidate as execvp(3) does.
    let mut denied: Option<u32> = None;
    let last = plan.candidates.len() as u32;
    for (index, path) in plan.candidates.iter().enumerate() {
        // SAFETY: path, argv and envp are NUL-terminated C strings and
        // NULL-terminated pointer arrays owned by the plan.
        unsafe {
            libc::execve(path.as_ptr(), plan.argv_ptrs.as_ptr(), plan.envp_ptrs.as_ptr());
        }
        let error = errno();
        match error {
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            libc::EACCES => denied = denied.or(Some(index as u32)),
            _ => fail(fd, Step::Exec, error, index as u32),
        }
    }
    match denied {
        Some(index) => fail(fd, Step::Exec, libc::EACCES, index),
        None if last == 1 => fail(fd, Step::Exec, libc::ENOENT, 0),
        None => fail(fd, Step::Exec, libc::ENOENT, u32::MAX),
    }
}

/// PID 1 of a `private_pids` namespace: fork the service and return in it;
/// in the parent, never return: close every descriptor (the status pipe
/// included, so that tend sees the service's exec), become non-dumpable
/// (this process is a copy of tend's memory, and runs as the service's
/// user: the service must not read it through /proc/1/mem), then forward
/// every signal to the service (its process group with `own_group`), reap
/// every orphan of the namespace, and exit with the service's status
/// (128+N when signal N killed it: PID 1 of a namespace cannot be killed
/// by its own signal). When it exits, the kernel ends whatever is left in
/// the namespace. All signals are still blocked (spawn blocked them before
/// the fork), so none is lost before the loop waits for them.
fn reaper(status_fd: i32, own_group: bool) {
    let flags = libc::SIGCHLD as libc::c_long;
    // SAFETY: a fork-like clone (see spawn::spawn); the child returns to
    // the remaining async-signal-safe steps.
    let service = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    let service = service as i32;
    if service < 0 {
        fail_confine(
            status_fd,
            crate::sandbox::confine::ConfineError {
                step: crate::sandbox::confine::ConfineStep::Reaper,
                errno: errno(),
                index: 0,
            },
        );
    }
    if service == 0 {
        if own_group {
            // Its own group: tend's group signals reach the reaper once,
            // and it forwards them once.
            step!(status_fd, Step::Setpgid, 0, libc::setpgid(0, 0));
        }
        return;
    }
    // SAFETY: close_range and prctl take integers; every call below is a
    // raw system call on local data.
    unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0);
    }
    // The reaping below is not a second waiter in tend: this process is a
    // child of tend, PID 1 of the service's namespace, reaping only there,
    // through the same `sys::wait_any_nohang` as tend's reaper (the one
    // file that calls waitpid; it is async-signal-safe).
    let target = if own_group { -service } else { service };
    // SAFETY: sigset_t is plain data; sigfillset initialises it.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigfillset(&mut all) };
    loop {
        // SAFETY: sigwaitinfo reads the set; no siginfo buffer.
        let signal = unsafe { libc::sigwaitinfo(&all, std::ptr::null_mut()) };
        if signal == libc::SIGCHLD {
            while let Some((pid, status)) = crate::sys::wait_any_nohang() {
                if pid == service {
                    // Plain arithmetic, no allocation: safe after fork.
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        let signal = libc::WTERMSIG(status);
                        tend_core::ExitStatus::Signaled { signal, core_dumped: false }.as_exit_code()
                    };
                    // SAFETY: _exit is async-signal-safe.
                    unsafe { libc::_exit(code) };
                }
            }
        } else if signal > 0 {
            // SAFETY: kill with integer arguments; the target is in this
            // namespace (never 0 or -1: service > 1 here).
            unsafe { libc::kill(target, signal) };
        }
    }
}

/// Open `path` onto descriptor 0. Without blocking (a FIFO opened for
/// reading would wait for a writer), then only a regular file is taken: a
/// FIFO, a device or a directory fails the start with errno 0 ("not a
/// regular file"); the descriptor is made blocking again for the service.
fn open_stdin_file(status_fd: i32, path: &std::ffi::CStr) {
    let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: open with a NUL-terminated path the parent prepared.
    // Raw: glibc's open is a cancellation point (see `fail_code`).
    let file = unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags) } as i32;
    if file == -1 {
        fail(status_fd, Step::StdinFile, errno(), 0);
    }
    // SAFETY: a zeroed `struct stat` is valid plain data for fstat to fill.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    step!(status_fd, Step::StdinFile, 0, libc::fstat(file, &mut stat));
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        fail(status_fd, Step::StdinFile, 0, 1);
    }
    step!(status_fd, Step::StdinFile, 0, libc::fcntl(file, libc::F_SETFL, libc::O_RDONLY));
    step!(status_fd, Step::StdinFile, 0, libc::dup2(file, 0));
    // SAFETY: close a descriptor this process opened (close-on-exec anyway);
    // raw, as open above.
    unsafe { libc::syscall(libc::SYS_close, file) };
}

fn close_stray_fds(status_fd: i32) {
    // close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11): marks 3.. as
    // close-on-exec in one call.
    // SAFETY: raw syscall with integer arguments.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if rc == 0 {
        return;
    }
    // Older kernels: mark each descriptor up to the soft limit (capped).
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into a local struct.
    let top = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(65536) as i32
    } else {
        1024
    };
    for fd in 3..top {
        if fd == status_fd {
            continue;
        }
        // SAFETY: fcntl on a number that may or may not be open; EBADF is fine.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// `signals` back to SIG_DFL: the handlers of tend's that the plan's list
/// lacks, for a child sharing tend's memory (`vfork`), which must never run
/// one of them (they write to tend's self-pipe and memory); `reset_signals`
/// then applies the plan. All signals are blocked while this runs (the
/// spawner thread blocks them all).
pub(super) fn reset_to_default(signals: &[i32]) {
    let default_action = [0u64; 4];
    for &signal in signals {
        // SAFETY: as in `reset_signals`: a local SIG_DFL action.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default_action.as_ptr(),
                std::ptr::null_mut::<u8>(),
                8,
            );
        }
    }
}

fn reset_signals(status_fd: i32, signals_to_reset: &[i32], signals_to_ignore: &[i32], mask: u64) {
    // The raw rt_sigaction system call rather than sigaction(3): glibc's
    // wrapper refuses signals 32 and 33 (reserved for its threads) with
    // EINVAL, and an ignored 32/33 inherited by tend (glibc's posix_spawn
    // leaves them ignored) would otherwise pass on to every service.
    // A kernel `struct sigaction` is the handler, the flags, the restorer
    // and the mask; all zero is SIG_DFL with no flags and an empty mask on
    // every architecture, and SIG_IGN is handler 1. 4 words cover its size
    // everywhere.
    let default_action = [0u64; 4];
    let ignore_action = [libc::SIG_IGN as u64, 0, 0, 0];
    for (signals, action) in [(signals_to_reset, &default_action), (signals_to_ignore, &ignore_action)] {
        for &signal in signals {
            // SAFETY: rt_sigaction reads the action from a local buffer;
            // the last argument is the kernel's sigset size (8 bytes).
            unsafe {
                libc::syscall(libc::SYS_rt_sigaction, signal, action.as_ptr(), std::ptr::null_mut::<u8>(), 8);
            }
        }
    }
    // The raw rt_sigprocmask for the same reason: glibc's sigprocmask drops
    // 32 and 33 from the set. SIGKILL and SIGSTOP are dropped by the kernel.
    // SAFETY: rt_sigprocmask reads an 8-byte set from a local variable.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8,
        )
    };
    if rc == -1 {
        fail(status_fd, Step::Signals, errno(), 0);
    }
}
