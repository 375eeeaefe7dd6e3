//! Small safe wrappers over the few system calls nix does not offer (or offers
//! in a form that allocates), and the user database behind `unit::UserDb`.
//!
//! Owns: the monotonic clock, prctl subreaper and parent-death signal,
//! process-group liveness, raw signal masks, the signal state tend was
//! started with (read by a constructor before `main`), and getpw*/getgr*
//! look-ups. Must not hold policy: every function here does one system call
//! (or one look-up, or one reading of the signal table) and reports its
//! result.

use crate::unit::{UserDb, UserEntry};
use std::io;
use std::time::Duration;

pub mod paths;

/// CLOCK_MONOTONIC, as the time since its origin (the core's `Time`):
/// unaffected by wall-clock changes.
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid pointer given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// prctl(PR_SET_CHILD_SUBREAPER): orphans of our services come to us, not to
/// the host's init, so the one reaper sees them (prctl(2)).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// kill(2); ESRCH (nothing to signal) is not an error for a supervisor.
pub fn send_signal(pid: i32, signal: i32, group: bool) -> io::Result<()> {
    let target = if group { -pid } else { pid };
    // Never kill(-1) or kill(0): that would hit far more than one service.
    if pid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: kill with integer arguments only.
    let rc = unsafe { libc::kill(target, signal) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Does the process group `pgid` still have a member? kill(-pgid, 0) answers
/// without sending anything (kill(2): "If sig is 0, no signal is sent").
pub fn group_has_members(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Block every signal in the calling thread; returns the previous mask.
/// Used around fork so that no signal handler of tend runs in a child before
/// the child has reset the dispositions.
pub fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask fill and read
    // the valid pointers given.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Restore a mask saved by [`block_all_signals`].
pub fn restore_signal_mask(mask: &libc::sigset_t) {
    // SAFETY: mask points to a sigset_t obtained from pthread_sigmask.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
    }
}

/// Empty the calling thread's signal mask (whatever tend inherited).
pub fn unblock_all_signals() {
    // SAFETY: sigset_t is plain data; sigemptyset/pthread_sigmask fill and
    // read the valid pointer given.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// Ignore SIGPIPE in tend itself: a closed stdout must give EPIPE, not kill
/// the supervisor. Services get the default back before exec.
pub fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN for SIGPIPE has no memory effects.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Set `signal`'s disposition to SIG_IGN in tend. Services get the
/// default back before exec (the child resets every non-default one).
pub fn ignore_signal(signal: i32) {
    // SAFETY: installing SIG_IGN has no memory effects; an invalid number
    // is refused with EINVAL and changes nothing.
    unsafe {
        libc::signal(signal, libc::SIG_IGN);
    }
}

pub fn getpid() -> i32 {
    std::process::id() as i32
}

/// Clock ticks per second, the unit of CPU times in /proc/PID/stat
/// (sysconf(_SC_CLK_TCK), 100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// The size of a memory page, the unit of `rss` in /proc/PID/stat.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// Is this file descriptor a terminal?
pub fn isatty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// The foreground process group of the terminal on `fd`, if any.
pub fn tcgetpgrp(fd: i32) -> Option<i32> {
    // SAFETY: tcgetpgrp only inspects the descriptor.
    let pgrp = unsafe { libc::tcgetpgrp(fd) };
    (pgrp > 0).then_some(pgrp)
}

/// Give the terminal's foreground to `pgrp`, with SIGTTOU blocked so that a
/// background caller is not stopped by it (tcsetpgrp(3)).
pub fn tcsetpgrp(fd: i32, pgrp: i32) -> io::Result<()> {
    let old = block_all_signals();
    // SAFETY: tcsetpgrp with integer arguments.
    let rc = unsafe { libc::tcsetpgrp(fd, pgrp) };
    let result = if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
    restore_signal_mask(&old);
    result
}

/// The user database through the C library (so NSS sources work too).
pub struct SystemUsers;

fn cstr_to_string(ptr: *const libc::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: getpw*_r filled ptr with a NUL-terminated string in our buffer.
    unsafe { std::ffi::CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

fn lookup_passwd(
    by: impl Fn(&mut libc::passwd, &mut [libc::c_char], &mut *mut libc::passwd) -> libc::c_int,
) -> Option<UserEntry> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: passwd is plain data, filled by getpw*_r below.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = by(&mut pwd, &mut buf, &mut result);
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        return Some(UserEntry {
            name: cstr_to_string(pwd.pw_name),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home: cstr_to_string(pwd.pw_dir),
        });
    }
}

impl UserDb for SystemUsers {
    fn user_by_name(&self, name: &str) -> Option<UserEntry> {
        let cname = std::ffi::CString::new(name).ok()?;
        lookup_passwd(|pwd, buf, result| {
            // SAFETY: all pointers are valid for the call; buf.len() is its size.
            unsafe { libc::getpwnam_r(cname.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), result) }
        })
    }

    fn user_by_uid(&self, uid: u32) -> Option<UserEntry> {
        lookup_passwd(|pwd, buf, result| {
            // SAFETY: all pointers are valid for the call; buf.len() is its size.
            unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), result) }
        })
    }

    fn group_by_name(&self, name: &str) -> Option<u32> {
        let cname = std::ffi::CString::new(name).ok()?;
        let mut buf = vec![0 as libc::c_char; 4096];
        loop {
            // SAFETY: group is plain data, filled by getgrnam_r.
            let mut grp: libc::group = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::group = std::ptr::null_mut();
            // SAFETY: all pointers are valid for the call; buf.len() is its size.
            let rc = unsafe {
                libc::getgrnam_r(cname.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut result)
            };
            if rc == libc::ERANGE && buf.len() < (1 << 22) {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            if rc != 0 || result.is_null() {
                return None;
            }
            return Some(grp.gr_gid);
        }
    }

    fn groups_of(&self, user: &UserEntry) -> Vec<u32> {
        let Ok(cname) = std::ffi::CString::new(user.name.as_str()) else {
            return vec![user.gid];
        };
        let mut groups: Vec<libc::gid_t> = vec![0; 64];
        loop {
            let mut count = groups.len() as libc::c_int;
            // SAFETY: groups has room for `count` gids; getgrouplist updates count.
            let rc = unsafe { libc::getgrouplist(cname.as_ptr(), user.gid, groups.as_mut_ptr(), &mut count) };
            if rc >= 0 {
                groups.truncate(count.max(0) as usize);
                return groups;
            }
            if groups.len() >= 65536 {
                return vec![user.gid];
            }
            let wanted = (count.max(0) as usize).max(groups.len() * 2);
            groups.resize(wanted, 0);
        }
    }

    fn current_ids(&self) -> (u32, u32) {
        // SAFETY: getuid/getgid cannot fail.
        unsafe { (libc::getuid(), libc::getgid()) }
    }

    fn open_file(&self, path: &std::path::Path) -> io::Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
    }
}

/// poll(2) one descriptor for writability, up to `timeout_ms` (0: do not
/// wait; -1: forever). True when a write can make progress now, or when
/// the descriptor is in error (the write then reports what is wrong).
pub fn poll_writable(fd: i32, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: poll on one valid pollfd; EINTR just returns 0 (try again).
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    n > 0 && pfd.revents != 0
}

/// send(2) with MSG_DONTWAIT | MSG_NOSIGNAL: a write to a socket that
/// never blocks and never raises SIGPIPE, without setting O_NONBLOCK on
/// the file description (tend shares it with whoever started it).
pub fn send_nonblocking(fd: i32, data: &[u8]) -> io::Result<usize> {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: send from a valid slice of `data.len()` bytes.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// What a descriptor is, as far as writing to it without blocking goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// The null device (character device 1:3, mem(4)).
    DevNull,
    /// A regular file: a write never waits for a reader.
    Regular,
    Socket,
    Fifo,
    Terminal,
    /// Another character device, or a descriptor fstat cannot read.
    Other,
}

pub fn fd_kind(fd: i32) -> FdKind {
    // SAFETY: fstat writes into a local stat buffer.
    let st = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return FdKind::Other;
        }
        st
    };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FdKind::Regular,
        libc::S_IFSOCK => FdKind::Socket,
        libc::S_IFIFO => FdKind::Fifo,
        libc::S_IFCHR if libc::major(st.st_rdev) == 1 && libc::minor(st.st_rdev) == 3 => FdKind::DevNull,
        libc::S_IFCHR if isatty(fd) => FdKind::Terminal,
        _ => FdKind::Other,
    }
}

/// An errno as a name for scripts (`last_exit.errno` in `status --json`):
/// `not_found`, `permission_denied`, … (`errno_N` for the rare rest).
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::ENOENT => "not_found",
        libc::EACCES => "permission_denied",
        libc::EPERM => "operation_not_permitted",
        libc::ENOEXEC => "exec_format_error",
        libc::ENOTDIR => "not_a_directory",
        libc::EISDIR => "is_a_directory",
        libc::ELOOP => "too_many_symlinks",
        libc::ENAMETOOLONG => "name_too_long",
        libc::E2BIG => "argument_list_too_long",
        libc::ETXTBSY => "text_file_busy",
        libc::ENOMEM => "out_of_memory",
        libc::EAGAIN => "resource_unavailable",
        libc::EMFILE => "too_many_open_files",
        libc::ENFILE => "too_many_open_files_in_system",
        libc::EINVAL => "invalid_argument",
        libc::EBUSY => "busy",
        libc::ENOSPC => "no_space",
        libc::EROFS => "read_only_file_system",
        libc::ELIBBAD => "bad_shared_library",
        libc::ENOSYS => "not_supported",
        _ => return format!("errno_{errno}"),
    };
    name.to_string()
}

/// read(2) into `buf`; `Ok(0)` is end of file.
pub fn read(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: read into a valid, writable slice of `buf.len()` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// waitpid(-1, WNOHANG): the next ended child and its raw status, or `None`
/// when no child has ended (or there is no child at all). Stopped and
/// continued children are not reported (no WUNTRACED/WCONTINUED).
pub fn wait_any_nohang() -> Option<(i32, i32)> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local integer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            return Some((pid, status));
        }
        if pid == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None;
    }
}

/// Block until `fd` is readable (or has hung up).
pub fn wait_readable(fd: i32) {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: poll on one valid pollfd; EINTR just returns early.
    unsafe { libc::poll(&mut pfd, 1, -1) };
}

/// The credentials of a unix socket's peer, from SO_PEERCRED (unix(7)):
/// taken by the kernel at connect time, so they cannot be forged.
#[derive(Debug, Clone, Copy)]
pub struct PeerCredentials {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

pub fn peer_credentials(fd: i32) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the local ucred.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials { pid: cred.pid, uid: cred.uid, gid: cred.gid })
}

/// Is `gid` among the supplementary groups of process `pid`? (The `Groups:`
/// line of /proc/PID/status, proc(5).)
pub fn process_in_group(pid: i32, gid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .is_some_and(|groups| groups.split_whitespace().any(|g| g.parse() == Ok(gid)))
}

/// Signals whose disposition in tend is not the default (handled or
/// ignored), read with the raw rt_sigaction system call (glibc's sigaction
/// hides 32 and 33). A child need reset only these before exec.
pub fn non_default_signals() -> Vec<i32> {
    let mut signals = Vec::new();
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // The kernel's struct sigaction: handler first; 4 words cover it on
        // every architecture.
        let mut old = [0u64; 4];
        // SAFETY: rt_sigaction with a null new action only writes the old
        // action into our local buffer; 8 is the kernel's sigset size.
        let rc = unsafe {
            libc::syscall(libc::SYS_rt_sigaction, signal, std::ptr::null::<u8>(), old.as_mut_ptr(), 8)
        };
        if rc != 0 || old[0] != 0 {
            signals.push(signal);
        }
    }
    signals
}

/// The signal state tend was started with: which signals were ignored
/// (SIG_IGN) and which were blocked, one bit per signal (bit N-1 for signal
/// N, as the kernel's sigset and `/proc/PID/status` number them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InheritedSignals {
    pub ignored: u64,
    pub blocked: u64,
}

impl InheritedSignals {
    /// The ignored signals as numbers (never SIGKILL or SIGSTOP, which
    /// cannot be ignored).
    pub fn ignored_signals(&self) -> Vec<i32> {
        (1..=64)
            .filter(|&signal| signal != libc::SIGKILL && signal != libc::SIGSTOP)
            .filter(|&signal| self.ignored & (1u64 << (signal - 1)) != 0)
            .collect()
    }
}

static INHERITED_IGNORED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static INHERITED_BLOCKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What tend inherited, as [`capture_inherited_signals`] read it before main.
pub fn inherited_signals() -> InheritedSignals {
    use std::sync::atomic::Ordering::Relaxed;
    InheritedSignals { ignored: INHERITED_IGNORED.load(Relaxed), blocked: INHERITED_BLOCKED.load(Relaxed) }
}

/// Read the signal state tend was exec'd with, before Rust's runtime
/// changes it: std ignores SIGPIPE and installs SIGSEGV/SIGBUS handlers
/// before `main` runs, so by then an inherited SIGPIPE disposition is lost.
/// Run from `.init_array`, as the dynamic loader (or a static binary's
/// start-up code) calls constructors before `main`; std itself reads argv
/// this way. Raw system calls only: glibc's wrappers hide signals 32 and 33.
extern "C" fn capture_inherited_signals() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut ignored = 0u64;
    for signal in 1..=64i64 {
        // The kernel's struct sigaction: handler first; 4 words cover it on
        // every architecture. After execve a disposition is SIG_DFL (0) or
        // SIG_IGN (1): handlers do not survive exec (execve(2)).
        let mut old = [0u64; 4];
        // SAFETY: rt_sigaction with a null new action only writes the old
        // action into our local buffer; 8 is the kernel's sigset size.
        let rc = unsafe {
            libc::syscall(libc::SYS_rt_sigaction, signal, std::ptr::null::<u8>(), old.as_mut_ptr(), 8)
        };
        if rc == 0 && old[0] == libc::SIG_IGN as u64 {
            ignored |= 1 << (signal - 1);
        }
    }
    let mut blocked = 0u64;
    // SAFETY: rt_sigprocmask with a null new set only writes the current
    // mask into our local 8-byte set.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut blocked as *mut u64,
            8,
        )
    };
    if rc != 0 {
        blocked = 0;
    }
    INHERITED_IGNORED.store(ignored, Relaxed);
    INHERITED_BLOCKED.store(blocked, Relaxed);
}

/// Registers [`capture_inherited_signals`] as a constructor. `#[used]` keeps
/// it in the rlib, and the linker keeps every `.init_array` entry.
#[used]
#[link_section = ".init_array"]
static CAPTURE_INHERITED_SIGNALS: extern "C" fn() = capture_inherited_signals;

/// Put `signal` back to its default disposition in tend itself.
pub fn set_default_disposition(signal: i32) {
    // SAFETY: installing SIG_DFL has no memory effects.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// prctl(PR_SET_PDEATHSIG): the kernel sends tend `signal` when the thread
/// that created it exits (prctl(2)).
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn getppid() -> i32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() }
}

/// Send `signal` to tend itself (kill(getpid(), signal)).
pub fn signal_self(signal: i32) -> io::Result<()> {
    // SAFETY: kill with integer arguments only, aimed at ourselves.
    if unsafe { libc::kill(libc::getpid(), signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A set of signals to block and wait for synchronously (`tend run`).
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    pub fn empty() -> SignalSet {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            SignalSet(set)
        }
    }

    pub fn add(&mut self, signal: i32) {
        // SAFETY: sigaddset on an initialised set; an invalid number is
        // refused with EINVAL and changes nothing.
        unsafe {
            libc::sigaddset(&mut self.0, signal);
        }
    }

    /// Block these signals in the calling thread (they stay pending until
    /// waited for).
    pub fn block(&self) {
        // SAFETY: pthread_sigmask reads the initialised set.
        unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut());
        }
    }

    /// sigwaitinfo(2): the next pending signal of the set (0 after EINTR).
    pub fn wait(&self) -> i32 {
        // SAFETY: sigwaitinfo reads the set; we pass no siginfo buffer.
        let signal = unsafe { libc::sigwaitinfo(&self.0, std::ptr::null_mut()) };
        signal.max(0)
    }
}

/// A unix datagram socket bound at `path`: non-blocking, close-on-exec,
/// with SO_PASSCRED so each datagram carries its sender's credentials.
pub fn notify_socket(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: socket() with constant arguments.
    let fd = unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is owned by nothing else.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads one int from a local.
    let rc = unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_PASSCRED, (&one as *const libc::c_int).cast(), 4)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "socket path too long"));
    }
    for (slot, byte) in addr.sun_path.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: bind reads `len` bytes of the local sockaddr_un.
    let rc = unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

/// recvmsg(2) one datagram with its SCM_CREDENTIALS; `Ok(None)` when none
/// is waiting. The pid is `None` if the kernel attached no credentials.
pub fn recv_with_pid(fd: i32, buf: &mut [u8]) -> io::Result<Option<(usize, Option<i32>)>> {
    // Room for the ucred message and a few passed descriptors (more than
    // fit are released by the kernel, see unix(7) on MSG_CTRUNC).
    let mut control = [0u64; 32];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is plain data; the pointers set below stay valid for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg writes at most the sizes given into buf and control.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(err) };
    }
    let mut pid = None;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_CREDENTIALS {
                let cred: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                pid = Some(cred.pid);
            }
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                // Descriptors sent along (FDSTORE=, systemd-notify's
                // BARRIER=1 pipe): we keep none. Closing them is what the
                // sender waits for, and keeping them would let any local
                // user exhaust tend's descriptors.
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / std::mem::size_of::<libc::c_int>() {
                    let fd: libc::c_int = std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                    libc::close(fd);
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Some((n as usize, pid)))
}

/// The process group of `pid` (getpgid(2)), if it exists.
pub fn process_group_of(pid: i32) -> Option<i32> {
    // SAFETY: getpgid with an integer argument.
    let pgid = unsafe { libc::getpgid(pid) };
    (pgid > 0).then_some(pgid)
}

/// The parent of `pid`, from /proc/PID/stat (proc(5), field 4).
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Give memory freed after start-up (unit parsing) back to the system:
/// glibc keeps freed heap for reuse otherwise (malloc_trim(3)).
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// clone3(2) with CLONE_INTO_CGROUP: fork straight into the cgroup whose
/// directory `cgroup_dir` is open. Returns the child's pid in the parent,
/// 0 in the child, -1 when the kernel cannot (older than 5.7, or the
/// cgroup refuses): the caller then forks and joins by writing cgroup.procs.
///
/// Raw clone3 skips glibc's fork handlers: sound here because the child
/// only runs async-signal-safe steps before exec, and so never takes a lock
/// another thread (the reload thread's user look-ups) may have held at the
/// fork, nor needs glibc's cached thread id.
pub fn clone_into_cgroup(cgroup_dir: i32) -> i32 {
    clone3(0, Some(cgroup_dir))
}

/// CLONE_NEWPID (linux/sched.h).
pub const CLONE_NEWPID: u64 = libc::CLONE_NEWPID as u64;

/// clone3(2) as a fork with `flags` (CLONE_NEWPID: the child is PID 1 of a
/// new PID namespace) and, with `cgroup_dir`, CLONE_INTO_CGROUP. -1 when
/// the kernel cannot (the caller falls back as for [`clone_into_cgroup`]).
pub fn clone3(flags: u64, cgroup_dir: Option<i32>) -> i32 {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: flags | if cgroup_dir.is_some() { CLONE_INTO_CGROUP } else { 0 },
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup_dir.unwrap_or(0) as u64,
    };
    // SAFETY: clone3 without CLONE_VM is a fork: the child gets a copy of
    // the address space and returns here with 0. `args` lives on our stack
    // for the duration of the call.
    let rc = unsafe {
        libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>())
    };
    rc as i32
}

/// write(2) once; how much was written.
pub fn write(fd: i32, data: &[u8]) -> io::Result<usize> {
    // SAFETY: write from a valid slice of `data.len()` bytes.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A non-blocking, close-on-exec descriptor for the same pipe or terminal
/// as `fd`, opened anew through /proc/self/fd so that the file description
/// `fd` shares with other processes keeps its flags (setting O_NONBLOCK on
/// a shared terminal would surprise the shell afterwards). `None` for
/// anything else (regular files, sockets, /dev/null) or when /proc is not
/// there: the caller then writes to `fd` directly.
pub fn reopen_nonblocking(fd: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let meta = std::fs::metadata(format!("/proc/self/fd/{fd}")).ok()?;
    let kind = meta.file_type();
    if !(kind.is_fifo() || (kind.is_char_device() && isatty(fd))) {
        return None;
    }
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let append = unsafe { libc::fcntl(fd, libc::F_GETFL) } & libc::O_APPEND;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY | append)
        .open(format!("/proc/self/fd/{fd}"))
        .ok()?;
    Some(file.into())
}

/// The fields of /proc/PID/stat after `(comm) `: state is index 0, the
/// process group 2, the start time (clock ticks after boot) 19 (proc(5)).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// When `pid` started (clock ticks after boot, proc(5) field 22), if it
/// exists and has not ended (a zombie has): with the pid, it names one
/// process for good.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    if fields.first().is_some_and(|state| state == "Z" || state == "X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Every process visible, by process group: `pgid → [(pid, start time)]`.
pub fn processes_by_group() -> std::collections::HashMap<i32, Vec<(i32, u64)>> {
    let mut groups: std::collections::HashMap<i32, Vec<(i32, u64)>> = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return groups };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Some(fields) = stat_fields(pid) else { continue };
        // A zombie has ended already: nothing to kill.
        if fields.first().is_some_and(|state| state == "Z" || state == "X") {
            continue;
        }
        let (Some(pgid), Some(start)) =
            (fields.get(2).and_then(|g| g.parse().ok()), fields.get(19).and_then(|s| s.parse().ok()))
        else {
            continue;
        };
        groups.entry(pgid).or_default().push((pid, start));
    }
    groups
}

/// tend's RLIMIT_NOFILE as it started, before [`raise_nofile_limit`].
static ORIGINAL_NOFILE: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// Raise tend's RLIMIT_NOFILE soft limit to the hard one (as systemd does
/// for itself): connections, pipes and cgroup files of many services must
/// not run out at a default of 1024. Returns the soft limit now in force.
/// Services get the original soft limit back ([`original_nofile`]): many
/// programs still use select(2), which breaks above 1024.
pub fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    let _ = ORIGINAL_NOFILE.set((limit.rlim_cur, limit.rlim_max));
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads a local struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}

/// The (soft, hard) RLIMIT_NOFILE tend started with, if it raised its own.
pub fn original_nofile() -> Option<(u64, u64)> {
    ORIGINAL_NOFILE.get().copied()
}

#[cfg(test)]
mod tests {
    use super::InheritedSignals;

    #[test]
    fn ignored_signals_number_bits_from_one_and_skip_kill_and_stop() {
        let bits = |signals: &[i32]| signals.iter().fold(0u64, |set, s| set | 1 << (s - 1));
        let inherited = InheritedSignals { ignored: bits(&[1, 2, 9, 13, 19, 32, 64]), blocked: 0 };
        assert_eq!(inherited.ignored_signals(), vec![1, 2, 13, 32, 64]);
        assert_eq!(InheritedSignals::default().ignored_signals(), Vec::<i32>::new());
        assert_eq!(InheritedSignals { ignored: u64::MAX, blocked: 0 }.ignored_signals().len(), 62);
    }
}
