//! Spawning without copying tend: `clone3(CLONE_VM | CLONE_VFORK)` from a
//! thread of its own, as glibc's posix_spawn does (sysdeps/unix/sysv/linux/
//! spawni.c), so that a restart copies no page table and takes no
//! copy-on-write fault, while the loop never waits for a child's exec.
//!
//! How it goes: the loop posts a job (the plan, the status pipe's write end)
//! and waits only until the child's pid is known: clone3 writes it into a
//! futex word (`CLONE_PARENT_SETTID`) before the child first runs, and the
//! child's first act is a `FUTEX_WAKE` on that word. The spawner thread
//! itself stays in clone3 until the child has exec'd or died (`CLONE_VFORK`),
//! and only then lets go of the job. A second job while one is in flight
//! (a child slow to exec: a bulk start, or a binary on a hung network file
//! system) is not queued: [`try_spawn`] returns `None` and the caller forks
//! from the loop as before, so nothing ever waits behind a hung exec.
//!
//! What the child may do, sharing tend's memory: run on its own stack (an
//! mmap'd region with a guard page below it, owned by the spawner thread),
//! read the job, which the spawner keeps alive until the vfork returns, and
//! write only its own stack, the spawner thread's errno (that thread is
//! suspended until the child is gone or exec'd) and its status pipe. Every
//! step of `child::run` is a plain system call; the identity steps use the
//! raw `setresuid`/`setresgid`/`setgroups` system calls, never glibc's
//! wrappers, whose set-id broadcast would signal tend's own threads.
//! Signals: the spawner thread blocks every signal for its whole life, so
//! the child starts with all blocked, resets every handler to SIG_DFL and
//! only then unblocks them: no handler of tend's ever runs on the child's
//! stack. It resets the plan's list of tend's non-default signals and the
//! handlers that list lacks, found once by the spawner thread (see
//! `extra_resets`), rather than querying all 64 as glibc's posix_spawn does.
//!
//! Not for sandboxed services: they stay on the fork path (`spawn::spawn`).
//! Their steps are not audited for a shared address space (the capability,
//! Landlock and mount steps go through crates and glibc wrappers), and
//! `private_pids` makes the child fork a reaper that outlives the exec: on
//! `CLONE_VM` it would keep running on tend's memory after the vfork
//! returned. Nor for exec checks and `tend run` (one child, not on a
//! restart path). x86_64 only (the trampoline below); elsewhere the fork.
//!
//! PR_SET_PDEATHSIG fires when the *thread* that created the child exits:
//! the spawner thread never exits while tend runs (its loop has no way out,
//! and a panic aborts the whole process: `panic = "abort"`).

use super::plan::ExecPlan;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The child's stack: posix_spawn uses 32 KiB plus the argv; the steps here
/// use a few KiB (no allocation, small frames). 256 KiB leaves room for any
/// frame rustc may lay out, and the guard page below catches the rest.
const STACK_SIZE: usize = 256 * 1024;
const GUARD_SIZE: usize = 4096;

/// What the child needs: the plan and where to report.
struct Job {
    plan: Arc<ExecPlan>,
    status_fd: i32,
    parent_pid: i32,
    /// Set by the spawner thread before each clone3 attempt.
    joined_by_clone: bool,
    /// The signals with a handler of tend's that the plan's
    /// `signals_to_reset` lacks (set by the spawner thread): the child
    /// resets these first, then the plan's list, before it unblocks anything.
    extra_resets: &'static [i32],
    /// The futex word the loop waits on (the pid goes there).
    pid_slot: *const AtomicI32,
}

// SAFETY: a Job moves to the spawner thread once; its plan is read by that
// thread's child only, and never changed while shared (Arc).
unsafe impl Send for Job {}

struct Shared {
    /// Futex word of the spawner thread: 1 while a job waits to be taken.
    posted: AtomicU32,
    /// Futex word of the loop: 0 until the pid (or -errno) is known.
    pid: AtomicI32,
    /// From a post until the vfork returned and the job was let go of.
    busy: AtomicBool,
    job: Mutex<Option<Job>>,
}

fn shared() -> Option<&'static Shared> {
    static SHARED: OnceLock<Option<&'static Shared>> = OnceLock::new();
    *SHARED.get_or_init(start)
}

/// `TEND_NO_VFORK` asks for no spawner thread: set to anything but empty
/// or `0` (so that `TEND_NO_VFORK=0` means what it says).
fn turned_off(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// Start the spawner thread: all signals blocked in it (it inherits the
/// mask of the thread that creates it).
fn start() -> Option<&'static Shared> {
    if !cfg!(target_arch = "x86_64") || turned_off(std::env::var_os("TEND_NO_VFORK").as_deref()) {
        return None;
    }
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        posted: AtomicU32::new(0),
        pid: AtomicI32::new(0),
        busy: AtomicBool::new(false),
        job: Mutex::new(None),
    }));
    let stack = ChildStack::new().ok()?;
    let old_mask = crate::sys::block_all_signals();
    let started = std::thread::Builder::new()
        .name("spawner".into())
        .stack_size(64 * 1024)
        .spawn(move || serve(shared, stack));
    crate::sys::restore_signal_mask(&old_mask);
    started.ok().map(|_| shared)
}

/// An mmap'd stack with a PROT_NONE guard page at its low end.
struct ChildStack {
    base: *mut u8,
}

// SAFETY: the mapping belongs to the spawner thread alone once moved there.
unsafe impl Send for ChildStack {}

impl ChildStack {
    fn new() -> io::Result<ChildStack> {
        // SAFETY: an anonymous private mapping of our own; the guard page is
        // the first page of it.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                STACK_SIZE + GUARD_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            if libc::mprotect(base, GUARD_SIZE, libc::PROT_NONE) != 0 {
                let error = io::Error::last_os_error();
                libc::munmap(base, STACK_SIZE + GUARD_SIZE);
                return Err(error);
            }
            Ok(ChildStack { base: base.cast() })
        }
    }
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT reads the word atomically; no timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake(word: *const AtomicI32) {
    // SAFETY: FUTEX_WAKE only reads the address as a key. A raw system call:
    // also called by the child (async-signal-safe, writes nothing shared but
    // the suspended spawner thread's errno on failure).
    unsafe {
        libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX);
    }
}

/// Wait (at most `millis`) while the pid word still holds 0.
fn wait_for_pid(word: &AtomicI32, millis: i64) {
    let timeout = libc::timespec { tv_sec: 0, tv_nsec: millis * 1_000_000 };
    // SAFETY: FUTEX_WAIT reads the word atomically; the timeout is local.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            0,
            &timeout as *const libc::timespec,
        );
    }
}

/// The spawner thread: take a job, clone, wait for the vfork to return.
fn serve(shared: &'static Shared, stack: ChildStack) -> ! {
    loop {
        while shared.posted.load(Ordering::Acquire) == 0 {
            futex_wait(&shared.posted, 0);
        }
        shared.posted.store(0, Ordering::Relaxed);
        let job = shared.job.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut job) = job {
            job.extra_resets = extra_resets(job.plan.signals_to_reset);
            let result = clone_job(&mut job, &stack);
            if result < 0 {
                shared.pid.store(result, Ordering::Release);
            }
            // Wakes the loop if it still waits: a failed clone, or a child
            // that died before its own wake (the pid is already there).
            futex_wake(&shared.pid);
            drop(job);
        }
        shared.busy.store(false, Ordering::Release);
    }
}

use crate::sys::CloneArgs;

/// The signals with a handler of tend's that `to_reset` (the list every
/// child resets to SIG_DFL before it unblocks anything) lacks: glibc puts
/// its SIGSETXID handler (33) in place at the first `pthread_create`, which
/// is the spawner thread's own, after the list was read. Read once, by the
/// spawner thread at its first job: every handler of tend's is in place by
/// then (std's at start, signal-hook's before the first start, glibc's at
/// the first thread). The child then resets exactly these and the list,
/// not a query-and-reset of all 64 signals as glibc's posix_spawn does:
/// about 120 fewer system calls between its clone and its exec, on every
/// restart.
fn extra_resets(to_reset: &[i32]) -> &'static [i32] {
    static EXTRA: OnceLock<Vec<i32>> = OnceLock::new();
    EXTRA.get_or_init(|| handled_beyond(crate::sys::signal_handlers(), to_reset))
}

/// The signals of `handlers` (signal, handler address; `None`: unreadable)
/// that are neither SIG_DFL nor SIG_IGN and not in `to_reset`.
fn handled_beyond(handlers: impl Iterator<Item = (i32, Option<u64>)>, to_reset: &[i32]) -> Vec<i32> {
    let plain = [Some(libc::SIG_DFL as u64), Some(libc::SIG_IGN as u64)];
    handlers
        .filter(|(signal, handler)| !plain.contains(handler) && !to_reset.contains(signal))
        .map(|(signal, _)| signal)
        .collect()
}

/// clone3 into the service's cgroup when it has a v2 one, else plainly;
/// returns the pid or -errno, once the child has exec'd or died.
fn clone_job(job: &mut Job, stack: &ChildStack) -> i32 {
    let into = job.plan.clone_into.as_ref().map(|(dir, _)| *dir);
    if let Some(dir) = into {
        job.joined_by_clone = true;
        let pid = clone_vm(job, stack, Some(dir));
        if pid >= 0 {
            return pid;
        }
    }
    job.joined_by_clone = false;
    clone_vm(job, stack, None)
}

fn clone_vm(job: &Job, stack: &ChildStack, cgroup_dir: Option<i32>) -> i32 {
    let flags = (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT_SETTID) as u64;
    let mut args = CloneArgs::new(flags, cgroup_dir);
    args.parent_tid = job.pid_slot as u64;
    // The usable part starts above the guard page (the stack grows down
    // from stack + stack_size).
    args.stack = stack.base as u64 + GUARD_SIZE as u64;
    args.stack_size = STACK_SIZE as u64;
    // SAFETY: see `clone3_on_stack`: the child runs `child_main(job)` on the
    // stack above and never returns; `job` and `args` outlive the call,
    // which returns only once the child has exec'd or exited (CLONE_VFORK).
    unsafe { clone3_on_stack(&mut args, job) }
}

/// The child: tell the loop its pid is known, then the steps of
/// `child::run`, which exec or `_exit`.
extern "C" fn child_main(job: *const Job) -> ! {
    // SAFETY: the spawner thread keeps the job alive and unchanged until
    // this process has exec'd or exited.
    let job = unsafe { &*job };
    futex_wake(job.pid_slot);
    super::child::reset_to_default(job.extra_resets);
    super::child::run(&job.plan, job.status_fd, job.parent_pid, job.joined_by_clone)
}

/// clone3 with a stack of the child's own: the child returns from the
/// system call on that stack, where no Rust frame of ours exists, so the
/// trampoline calls `child_main(job)` at once (stack top 16-byte aligned,
/// as the ABI wants before a call; rbp cleared to end backtraces). The
/// registers the kernel keeps (r12, r13) carry the argument and the entry.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_on_stack(args: &mut CloneArgs, job: &Job) -> i32 {
    let entry: extern "C" fn(*const Job) -> ! = child_main;
    let ret: i64;
    // SAFETY: the caller's contract; syscall clobbers rax, rcx and r11 only.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") job as *const Job,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret as i32
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn clone3_on_stack(_args: &mut CloneArgs, _job: &Job) -> i32 {
    -libc::ENOSYS
}

/// Spawn `plan` from the spawner thread, writing exec failures to
/// `status_fd` (the write end of the exec-status pipe, kept open by the
/// caller until this returns). `None`: not possible now (a spawn still in
/// flight, a sandboxed plan, no spawner thread): fork instead.
/// `Some(Ok(pid))` once the child exists; it may still be before its exec.
pub(super) fn try_spawn(plan: &Arc<ExecPlan>, status_fd: i32, parent_pid: i32) -> Option<io::Result<i32>> {
    if plan.confine.is_some() {
        return None;
    }
    let shared = shared()?;
    if shared.busy.swap(true, Ordering::AcqRel) {
        return None;
    }
    shared.pid.store(0, Ordering::Relaxed);
    let job = Job {
        plan: Arc::clone(plan),
        status_fd,
        parent_pid,
        joined_by_clone: false,
        extra_resets: &[],
        pid_slot: &shared.pid,
    };
    *shared.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
    shared.posted.store(1, Ordering::Release);
    // SAFETY: FUTEX_WAKE only reads the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            shared.posted.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
    // The pid is written before the child first runs; the child's wake (or
    // the spawner's, after a failure) ends the wait. The bound only guards
    // against a child stopped before its wake: its pid is there anyway.
    loop {
        let pid = shared.pid.load(Ordering::Acquire);
        if pid > 0 {
            return Some(Ok(pid));
        }
        if pid < 0 {
            return Some(Err(io::Error::from_raw_os_error(-pid)));
        }
        wait_for_pid(&shared.pid, 10);
    }
}

#[cfg(test)]
#[path = "vfork_tests.rs"]
mod tests;
