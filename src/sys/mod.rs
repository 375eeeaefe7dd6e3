//! Small safe wrappers over system calls: through nix where it offers the
//! call, raw where it does not (or offers it in a form that allocates).
//!
//! Owns: the monotonic clock, prctl subreaper and parent-death signal,
//! process-group liveness, raw signal masks, the notify socket and what
//! the kernel says of a datagram's sender (SCM_CREDENTIALS, and SCM_PIDFD
//! with PIDFD_GET_INFO), the signal state tend was started with (read by a
//! constructor before `main`), and the user and group files as the static
//! build reads them (`passwd`). Must not hold policy: every function here does one system call
//! (or one look-up, or one reading of the signal table) and reports its
//! result.

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

pub mod messages;
pub mod passwd;
pub mod paths;
pub mod stack;

/// CLOCK_MONOTONIC, as the time since its origin (the core's `Time`):
/// unaffected by wall-clock changes.
pub fn monotonic_now() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    // Cannot fail for CLOCK_MONOTONIC (clock_gettime(2): EINVAL, EFAULT only).
    clock_gettime(ClockId::CLOCK_MONOTONIC).map(Duration::from).unwrap_or_default()
}

/// prctl(PR_SET_CHILD_SUBREAPER): orphans of our services come to us, not to
/// the host's init, so the one reaper sees them (prctl(2)).
pub fn set_child_subreaper() -> io::Result<()> {
    Ok(nix::sys::prctl::set_child_subreaper(true)?)
}

/// kill(2); ESRCH (nothing to signal) is not an error for a supervisor.
/// Raw: `signal` may be a real-time one (`stop_signal: SIGRTMIN+3`), which
/// nix's `Signal` cannot name.
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
    matches!(nix::sys::signal::killpg(Pid::from_raw(pgid), None), Ok(()) | Err(nix::errno::Errno::EPERM))
}

/// Block every signal in the calling thread; returns the previous mask.
/// Used around fork so that no signal handler of tend runs in a child before
/// the child has reset the dispositions.
pub fn block_all_signals() -> SigSet {
    // Cannot fail with a valid `how` (pthread_sigmask(3)).
    SigSet::all().thread_swap_mask(SigmaskHow::SIG_SETMASK).unwrap_or_else(|_| SigSet::empty())
}

/// Restore a mask saved by [`block_all_signals`].
pub fn restore_signal_mask(mask: &SigSet) {
    let _ = mask.thread_set_mask();
}

/// Empty the calling thread's signal mask (whatever tend inherited).
pub fn unblock_all_signals() {
    let _ = SigSet::empty().thread_set_mask();
}

/// Set `signal`'s disposition to SIG_IGN in tend (SIGPIPE: a closed stdout
/// must give EPIPE, not kill the supervisor; SIGTTIN, SIGTTOU). Services
/// get the default back before exec (the child resets every non-default
/// one).
pub fn ignore_signal(signal: Signal) {
    // SAFETY: SIG_IGN runs no code of ours (nix marks `signal` unsafe for
    // handlers, which must be async-signal-safe).
    let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigIgn) };
}

pub fn getpid() -> i32 {
    std::process::id() as i32
}

/// Clock ticks per second, the unit of CPU times in /proc/PID/stat
/// (sysconf(_SC_CLK_TCK), 100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks as u64,
        _ => 100,
    }
}

/// The size of a memory page, the unit of `rss` in /proc/PID/stat.
pub fn page_size() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(size)) if size > 0 => size as u64,
        _ => 4096,
    }
}

/// Is this descriptor a terminal?
pub fn isatty(fd: impl AsFd) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// The size of the terminal on `fd`, as (columns, rows): TIOCGWINSZ
/// (ioctl_tty(2)). `None` when `fd` is no terminal or it reports 0×0.
pub fn window_size(fd: impl AsFd) -> Option<(u16, u16)> {
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer,
    // which points at a local of that type; the descriptor is borrowed.
    let rc = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

/// The foreground process group of the terminal on `fd`, if any.
pub fn tcgetpgrp(fd: impl AsFd) -> Option<i32> {
    nix::unistd::tcgetpgrp(fd).ok().map(Pid::as_raw).filter(|pgrp| *pgrp > 0)
}

/// One of tend's own standard descriptors (0, 1 or 2), borrowed for good:
/// tend never closes them (`spawn::ensure_standard_fds` opens /dev/null on
/// any that was missing, first thing in `main`).
pub fn standard_fd(fd: RawFd) -> BorrowedFd<'static> {
    assert!((0..=2).contains(&fd), "not a standard descriptor: {fd}");
    // SAFETY: 0, 1 and 2 are open for the whole life of tend (see above).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn poll_one(fd: impl AsFd, events: nix::poll::PollFlags, timeout_ms: i32) -> bool {
    use nix::poll::{poll, PollFd, PollTimeout};
    let mut fds = [PollFd::new(fd.as_fd(), events)];
    let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::NONE);
    // EINTR: not ready yet, the caller tries again.
    matches!(poll(&mut fds, timeout), Ok(n) if n > 0) && fds[0].any().unwrap_or(true)
}

/// poll(2) one descriptor for writability, up to `timeout_ms` (0: do not
/// wait; -1: forever). True when a write can make progress now, or when
/// the descriptor is in error (the write then reports what is wrong).
pub fn poll_writable(fd: impl AsFd, timeout_ms: i32) -> bool {
    poll_one(fd, nix::poll::PollFlags::POLLOUT, timeout_ms)
}

/// send(2) with MSG_DONTWAIT | MSG_NOSIGNAL: a write to a socket that
/// never blocks and never raises SIGPIPE, without setting O_NONBLOCK on
/// the file description (tend shares it with whoever started it).
pub fn send_nonblocking(fd: impl AsFd, data: &[u8]) -> io::Result<usize> {
    use nix::sys::socket::MsgFlags;
    Ok(nix::sys::socket::send(fd.as_fd().as_raw_fd(), data, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL)?)
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

pub fn fd_kind(fd: impl AsFd) -> FdKind {
    use nix::sys::stat::{fstat, major, minor, SFlag};
    let Ok(st) = fstat(fd.as_fd()) else { return FdKind::Other };
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => FdKind::Regular,
        SFlag::S_IFSOCK => FdKind::Socket,
        SFlag::S_IFIFO => FdKind::Fifo,
        SFlag::S_IFCHR if major(st.st_rdev) == 1 && minor(st.st_rdev) == 3 => FdKind::DevNull,
        SFlag::S_IFCHR if isatty(fd) => FdKind::Terminal,
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
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    Ok(nix::unistd::read(fd, buf)?)
}

/// waitpid(-1, WNOHANG): the next ended child and its raw status, or `None`
/// when no child has ended (or there is no child at all). Stopped and
/// continued children are not reported (no WUNTRACED/WCONTINUED). Raw:
/// the core decodes the status word itself (`ExitStatus`), and nix's
/// `WaitStatus` would decode it first.
///
/// The only waitpid in tend. Two processes call it: tend, through its
/// reaper (`supervise/reaper.rs`), and the init of a `private_pids`
/// namespace (`spawn/child.rs`), a child of tend that forks the service
/// and reaps inside that namespace only. Async-signal-safe (no allocation;
/// errno read at once), as the latter needs after fork.
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
pub fn wait_readable(fd: impl AsFd) {
    poll_one(fd, nix::poll::PollFlags::POLLIN, -1);
}

/// The credentials of a unix socket's peer, from SO_PEERCRED (unix(7)):
/// taken by the kernel at connect time, so they cannot be forged.
#[derive(Debug, Clone, Copy)]
pub struct PeerCredentials {
    pub uid: u32,
    pub gid: u32,
}

pub fn peer_credentials(socket: impl AsFd) -> io::Result<PeerCredentials> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials as Creds};
    let creds = getsockopt(&socket, Creds)?;
    Ok(PeerCredentials { uid: creds.uid(), gid: creds.gid() })
}

/// The supplementary groups of a unix socket's peer, from SO_PEERGROUPS
/// (socket(7), Linux 4.13): taken at connect time like SO_PEERCRED. Reading
/// `/proc/PID/status` instead would look at whatever process has the pid
/// now. Raw getsockopt: nix has no SO_PEERGROUPS.
pub fn peer_groups(socket: impl AsFd) -> io::Result<Vec<u32>> {
    let fd = socket.as_fd().as_raw_fd();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `groups`.
        let rc = unsafe {
            libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERGROUPS, groups.as_mut_ptr().cast(), &mut len)
        };
        if rc == 0 {
            groups.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
            return Ok(groups);
        }
        let err = io::Error::last_os_error();
        // ERANGE: `len` says how much is needed.
        if err.raw_os_error() != Some(libc::ERANGE) || groups.len() >= 65_536 {
            return Err(err);
        }
        let wanted = (len as usize / std::mem::size_of::<libc::gid_t>()).max(groups.len() * 2);
        groups.resize(wanted, 0);
    }
}

/// Every signal but SIGKILL and SIGSTOP with its handler as the kernel
/// holds it (`SIG_DFL` 0, `SIG_IGN` 1, else a handler's address; `None`
/// if the query was refused), read with the raw rt_sigaction system call
/// (glibc's sigaction hides 32 and 33). Allocates nothing, so a child
/// between clone and exec may walk it too (`spawn::child`).
pub fn signal_handlers() -> impl Iterator<Item = (i32, Option<u64>)> {
    (1..=64).filter(|&signal| signal != libc::SIGKILL && signal != libc::SIGSTOP).map(|signal| {
        // The kernel's struct sigaction: handler first; 4 words cover it on
        // every architecture.
        let mut old = [0u64; 4];
        // SAFETY: rt_sigaction with a null new action only writes the old
        // action into our local buffer; 8 is the kernel's sigset size.
        let rc = unsafe {
            libc::syscall(libc::SYS_rt_sigaction, signal, std::ptr::null::<u8>(), old.as_mut_ptr(), 8)
        };
        (signal, (rc == 0).then_some(old[0]))
    })
}

/// Signals whose disposition in tend is not the default (handled or
/// ignored, or not readable). A child need reset only these before exec.
pub fn non_default_signals() -> Vec<i32> {
    signal_handlers().filter(|&(_, handler)| handler != Some(0)).map(|(signal, _)| signal).collect()
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
pub fn set_default_disposition(signal: Signal) {
    // SAFETY: SIG_DFL runs no code of ours.
    let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
}

/// prctl(PR_SET_PDEATHSIG): the kernel sends tend `signal` when the thread
/// that created it exits (prctl(2)). Raw: `signal` may be a real-time one.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// End tend now with `code`: stdout flushed (stderr is unbuffered), no
/// destructors, no atexit handlers, no stdio clean-up (_exit(2)). For
/// `tend run` once its child's status is known: every page of code the
/// ordinary exit path touches is a page fault, and every page mapped is
/// one more for the kernel to unmap before tend's parent hears of the exit.
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = io::stdout().flush();
    // SAFETY: _exit takes an integer and does not return; nothing of
    // tend's state is needed after it. (nix offers no `_exit`.)
    unsafe { libc::_exit(code) }
}

pub fn getppid() -> i32 {
    nix::unistd::getppid().as_raw()
}

/// Send `signal` to tend itself (kill(getpid(), signal)); raw, as
/// [`send_signal`].
pub fn signal_self(signal: i32) -> io::Result<()> {
    // SAFETY: kill with integer arguments only, aimed at ourselves.
    if unsafe { libc::kill(libc::getpid(), signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A set of signals to block and wait for synchronously (`tend run`). Raw
/// sigset calls: the set holds real-time signals, which nix's `SigSet`
/// (built from `Signal`) cannot.
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
    use nix::sys::socket::{setsockopt, sockopt::PassCred};
    let socket = std::os::unix::net::UnixDatagram::bind(path)?;
    socket.set_nonblocking(true)?;
    setsockopt(&socket, PassCred, &true)?;
    // A pidfd of the sender with each datagram (SCM_PIDFD): see
    // `recv_notify`. Raw: nix has no SO_PASSPIDFD. Kernels before 6.5
    // refuse the option (ENOPROTOOPT); credentials alone then attribute
    // the messages, so its failure is not one.
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads one int from a local, on a socket we own.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PASSPIDFD,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Ok(socket.into())
}

/// SO_PASSPIDFD and SCM_PIDFD (asm-generic/socket.h, linux/socket.h; Linux 6.5).
const SO_PASSPIDFD: libc::c_int = 76;
const SCM_PIDFD: libc::c_int = 0x04;

/// What the kernel knows of a datagram's sender, asked through the pidfd
/// it attached (SCM_PIDFD) with PIDFD_GET_INFO (Linux 6.13). Since Linux
/// 6.16 that works for a sender already gone and reaped too: the kernel
/// keeps its cgroup at exit for the pidfd (pidfs exit information).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// The sender had exited when asked.
    pub exited: bool,
    /// Its cgroup2 cgroup (the id is the inode number of the cgroup's
    /// directory): while it lives, or at its exit.
    pub cgroup_id: Option<u64>,
}

/// One datagram read by [`recv_notify`].
#[derive(Debug)]
pub struct Received {
    pub len: usize,
    /// From SCM_CREDENTIALS; `None` if the kernel attached none.
    pub pid: Option<i32>,
    /// From SCM_PIDFD; `None` on kernels without it, or when the sender is
    /// gone and the kernel kept nothing of it.
    pub sender: Option<Sender>,
    /// Descriptors sent along (SCM_RIGHTS: FDSTORE=, the pipe of
    /// BARRIER=1), closed when dropped.
    pub passed: Vec<std::os::fd::OwnedFd>,
}

/// struct pidfd_info (linux/pidfd.h), the fields of PIDFD_INFO_SIZE_VER0.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}

const PIDFD_INFO_CGROUPID: u64 = 1 << 2;
const PIDFD_INFO_EXIT: u64 = 1 << 3;
/// _IOWR(PIDFS_IOCTL_MAGIC = 0xFF, 11, struct pidfd_info).
const PIDFD_GET_INFO: u64 = (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as u64) << 16) | (0xFF << 8) | 11;

/// PIDFD_GET_INFO on `pidfd`: the cgroup and whether the process exited.
/// `None` when the kernel cannot say (before 6.13, or a reaped process
/// before 6.16).
fn pidfd_sender(pidfd: i32) -> Option<Sender> {
    let mut info = PidfdInfo { mask: PIDFD_INFO_CGROUPID | PIDFD_INFO_EXIT, ..PidfdInfo::default() };
    // SAFETY: the ioctl writes at most size_of::<PidfdInfo>() bytes (the
    // size is in the request number) into the local.
    let rc = unsafe { libc::ioctl(pidfd, PIDFD_GET_INFO as _, &mut info as *mut PidfdInfo) };
    if rc != 0 {
        return None;
    }
    Some(Sender {
        exited: info.mask & PIDFD_INFO_EXIT != 0,
        cgroup_id: (info.mask & PIDFD_INFO_CGROUPID != 0).then_some(info.cgroupid),
    })
}

/// recvmsg(2) one datagram with its SCM_CREDENTIALS; `Ok(None)` when none
/// is waiting. The pid is `None` if the kernel attached no credentials.
/// Descriptors sent along are closed.
pub fn recv_with_pid(fd: i32, buf: &mut [u8]) -> io::Result<Option<(usize, Option<i32>)>> {
    Ok(recv_notify(fd, buf)?.map(|r| (r.len, r.pid)))
}

/// recvmsg(2) one datagram with its SCM_CREDENTIALS, the descriptors sent
/// along and, on a socket made by [`notify_socket`], what its SCM_PIDFD
/// says of the sender (the pidfd itself is closed here); `Ok(None)` when
/// none is waiting. Raw: nix will not walk a truncated control buffer
/// (MSG_CTRUNC), and the descriptors that did fit in it must still be
/// closed; nor does it know SCM_PIDFD.
pub fn recv_notify(fd: i32, buf: &mut [u8]) -> io::Result<Option<Received>> {
    // Room for the ucred message, the pidfd and a few passed descriptors
    // (more than fit are released by the kernel, see unix(7) on MSG_CTRUNC).
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
    let mut sender = None;
    let mut passed = Vec::new();
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_CREDENTIALS {
                let cred: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                pid = Some(cred.pid);
            }
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == SCM_PIDFD {
                // A negative errno instead of a descriptor when the kernel
                // could not make one (a sender reaped, before Linux 6.16).
                let pidfd: libc::c_int = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                if pidfd >= 0 {
                    sender = pidfd_sender(pidfd);
                    libc::close(pidfd);
                }
            }
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                // The kernel installed these descriptors for us (close-on-
                // exec: MSG_CMSG_CLOEXEC): ours to own, and to close.
                use std::os::fd::FromRawFd;
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / std::mem::size_of::<libc::c_int>() {
                    let fd: libc::c_int = std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                    passed.push(std::os::fd::OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Some(Received { len: n as usize, pid, sender, passed }))
}

/// The process group of `pid` (getpgid(2)), if it exists.
pub fn process_group_of(pid: i32) -> Option<i32> {
    nix::unistd::getpgid(Some(Pid::from_raw(pid))).ok().map(Pid::as_raw).filter(|pgid| *pgid > 0)
}

/// The parent of `pid`, from /proc/PID/stat (proc(5), field 4).
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Give memory freed after start-up (unit parsing) back to the system:
/// glibc keeps freed heap for reuse otherwise (malloc_trim(3); not in nix);
/// and the pages of this thread's stack below the caller's frame (see
/// [`release_unused_stack`]).
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
    release_unused_stack();
}

/// Below the caller's frame, what stays untouched by this release: the
/// frames of this function and of the C library's madvise wrapper, with a
/// wide margin (the ABI's red zone is 128 bytes).
const STACK_KEPT_BELOW: usize = 16 * 1024;

/// Let the kernel take back the pages of the calling thread's stack below
/// its current frame (madvise(2) MADV_DONTNEED: they read as zeros when
/// touched again). A stack's pages stay resident once touched, and
/// start-up goes deep once: clap's parser for the whole command line is
/// one function with an 80 KB frame whose stack probes touch every page
/// of it, for any subcommand (the loop itself needs a few KB). Nothing
/// lives below the stack pointer, so nothing is lost; the range is the
/// stack's own mapping as /proc/self/maps gives it, never a neighbour.
#[inline(never)]
pub fn release_unused_stack() {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    let page = 4096usize;
    let Some(top) = sp.checked_sub(STACK_KEPT_BELOW).map(|a| a & !(page - 1)) else { return };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
    let bottom = maps.lines().find_map(|line| {
        let (start, end) = line.split_whitespace().next()?.split_once('-')?;
        let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
        (start <= sp && sp < end).then_some(start)
    });
    if let Some(bottom) = bottom.filter(|&bottom| bottom < top) {
        // SAFETY: [bottom, top) is inside the mapping of this thread's
        // stack and below the frames in use (its stack pointer is above
        // `top`); no Rust value lives there. MADV_DONTNEED on private
        // anonymous memory only drops pages, which come back zeroed.
        unsafe {
            libc::madvise(bottom as *mut libc::c_void, top - bottom, libc::MADV_DONTNEED);
        }
    }
}

/// CLONE_NEWPID (linux/sched.h).
pub const CLONE_NEWPID: u64 = libc::CLONE_NEWPID as u64;

/// The kernel's `struct clone_args` (linux/sched.h, clone3(2)).
#[repr(C)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

impl CloneArgs {
    /// `flags`, SIGCHLD at the child's exit, and with `cgroup_dir`
    /// CLONE_INTO_CGROUP into that open cgroup directory; nothing else.
    pub fn new(flags: u64, cgroup_dir: Option<i32>) -> CloneArgs {
        CloneArgs {
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
        }
    }
}

/// clone3(2) as a fork with `flags` (CLONE_NEWPID: the child is PID 1 of a
/// new PID namespace) and, with `cgroup_dir`, CLONE_INTO_CGROUP: fork
/// straight into the cgroup whose directory is open. Returns the child's
/// pid in the parent, 0 in the child, -1 when the kernel cannot (older
/// than 5.7, or the cgroup refuses): the caller then forks and joins by
/// writing cgroup.procs.
///
/// nix has no clone3. Raw clone3 skips glibc's fork handlers: sound here because the child
/// only runs async-signal-safe steps before exec, and so never takes a lock
/// another thread (the reload thread's user look-ups) may have held at the
/// fork, nor needs glibc's cached thread id.
pub fn clone3(flags: u64, cgroup_dir: Option<i32>) -> i32 {
    let args = CloneArgs::new(flags, cgroup_dir);
    // SAFETY: clone3 without CLONE_VM is a fork: the child gets a copy of
    // the address space and returns here with 0. `args` lives on our stack
    // for the duration of the call.
    let rc = unsafe {
        libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>())
    };
    rc as i32
}

/// Start `command` in a session of its own (setsid(2) in the child before
/// exec, async-signal-safe): no terminal, and no SIGHUP when the one it
/// was started from closes. For `tend up --detach`.
pub fn spawn_in_new_session(command: &mut std::process::Command) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls
    // setsid(2), which is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

/// write(2) once; how much was written.
pub fn write(fd: impl AsFd, data: &[u8]) -> io::Result<usize> {
    Ok(nix::unistd::write(fd, data)?)
}

/// A sealed, read-only-for-good memory file holding `data`, at offset 0:
/// a service's `stdin: {data: ...}`. A memfd rather than a pipe: writing
/// it never blocks whatever its size (a pipe holds 64 KiB, and the rest
/// would have to be fed from the loop), and the service reads `data`, then
/// end-of-file, like from a file. The seals (memfd_create(2), fcntl(2)
/// F_ADD_SEALS) keep the service from changing it.
pub fn sealed_memfd(data: &[u8]) -> io::Result<std::os::fd::OwnedFd> {
    use std::io::{Seek, Write};
    use std::os::fd::FromRawFd;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a static NUL-terminated name and flags.
    let fd = unsafe { libc::memfd_create(c"tend-stdin".as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and is owned by nothing else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(data)?;
    file.rewind()?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own, integer arguments only.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file.into())
}

/// A non-blocking, close-on-exec descriptor for the same pipe or terminal
/// as `fd`, opened anew through /proc/self/fd so that the file description
/// `fd` shares with other processes keeps its flags (setting O_NONBLOCK on
/// a shared terminal would surprise the shell afterwards). `None` for
/// anything else (regular files, sockets, /dev/null) or when /proc is not
/// there: the caller then writes to `fd` directly.
pub fn reopen_nonblocking(fd: BorrowedFd<'_>) -> Option<std::os::fd::OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg};
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let meta = std::fs::metadata(&proc_path).ok()?;
    let kind = meta.file_type();
    if !(kind.is_fifo() || (kind.is_char_device() && isatty(fd))) {
        return None;
    }
    let append = fcntl(fd, FcntlArg::F_GETFL).unwrap_or(0) & libc::O_APPEND;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY | append)
        .open(&proc_path)
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
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return 1024 };
    let _ = ORIGINAL_NOFILE.set((soft, hard));
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// The (soft, hard) RLIMIT_NOFILE tend started with, if it raised its own.
pub fn original_nofile() -> Option<(u64, u64)> {
    ORIGINAL_NOFILE.get().copied()
}

#[cfg(test)]
mod tests {
    use super::InheritedSignals;

    /// Resident KiB of the mapping that holds `address` (/proc/self/smaps).
    fn resident_kib_around(address: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().and_then(|r| r.split_once('-'));
            if let Some((Ok(start), Ok(end))) =
                range.map(|(a, b)| (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)))
            {
                inside = start <= address && address < end;
            } else if let Some(kib) = line.strip_prefix("Rss:").filter(|_| inside) {
                return kib.trim().trim_end_matches(" kB").parse().unwrap();
            }
        }
        panic!("no mapping holds {address:#x}");
    }

    /// Touch `depth` KiB of stack below the caller, one page at a time.
    #[inline(never)]
    fn go_deep(depth: usize) -> u8 {
        let mut page = [0u8; 4096];
        page[0] = depth as u8;
        let below = if depth > 4 { go_deep(depth - 4) } else { 0 };
        std::hint::black_box(&mut page)[0].wrapping_add(below)
    }

    /// What start-up touched deep in the stack is given back; what the
    /// frames in use hold is kept.
    #[test]
    fn the_stack_below_the_callers_frame_is_given_back() {
        let thread = std::thread::Builder::new().stack_size(4 << 20).spawn(|| {
            let kept = std::hint::black_box([7u8; 512]);
            let here = &kept as *const _ as usize;
            std::hint::black_box(go_deep(1024));
            let deep = resident_kib_around(here);
            super::release_unused_stack();
            let after = resident_kib_around(here);
            assert!(deep >= 1000, "the recursion touched 1 MiB of stack ({deep} KiB resident)");
            assert!(after < deep - 900, "{deep} KiB resident before, {after} KiB after");
            assert_eq!(std::hint::black_box(kept), [7u8; 512], "the caller's frame is intact");
            // The stack is still usable, deep again.
            std::hint::black_box(go_deep(1024));
        });
        thread.unwrap().join().unwrap();
    }

    /// The descriptors sent along with a datagram stay open as long as
    /// what `recv_notify` returned: sd_notify_barrier(3) waits for their
    /// close, which must come only after the messages before it were
    /// handled.
    #[test]
    fn passed_descriptors_stay_open_until_dropped() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = super::notify_socket(&path).unwrap();
        let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
        sender.connect(&path).unwrap();
        // As sd_notify_barrier: BARRIER=1 with one end of a pipe (here a
        // socket pair), then EOF on the other end once the receiver closed it.
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut payload = *b"BARRIER=1";
        let mut iov = libc::iovec { iov_base: payload.as_mut_ptr().cast(), iov_len: payload.len() };
        let mut control = [0u64; 4];
        // SAFETY: msghdr is plain data; the pointers set below stay valid for the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is arithmetic.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
        // SAFETY: the control buffer holds one cmsg with room for one int
        // (CMSG_SPACE(4) <= 32 bytes); sendmsg reads what msg points to.
        let sent = unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), theirs.as_raw_fd());
            libc::sendmsg(sender.as_raw_fd(), &msg, 0)
        };
        assert_eq!(sent, payload.len() as isize, "{}", std::io::Error::last_os_error());
        drop(theirs);
        let mut buf = [0u8; 64];
        let got = super::recv_notify(socket.as_raw_fd(), &mut buf).unwrap().expect("the datagram");
        assert_eq!(&buf[..got.len], b"BARRIER=1");
        assert_eq!(got.pid, Some(std::process::id() as i32));
        assert_eq!(got.passed.len(), 1);
        ours.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let open = ours.read(&mut byte).map_err(|e| e.kind());
        assert_eq!(open, Err(std::io::ErrorKind::WouldBlock), "still open while held");
        drop(got);
        assert_eq!(ours.read(&mut byte).unwrap(), 0, "closed once dropped: EOF");
    }

    #[test]
    fn ignored_signals_number_bits_from_one_and_skip_kill_and_stop() {
        let bits = |signals: &[i32]| signals.iter().fold(0u64, |set, s| set | 1 << (s - 1));
        let inherited = InheritedSignals { ignored: bits(&[1, 2, 9, 13, 19, 32, 64]), blocked: 0 };
        assert_eq!(inherited.ignored_signals(), vec![1, 2, 13, 32, 64]);
        assert_eq!(InheritedSignals::default().ignored_signals(), Vec::<i32>::new());
        assert_eq!(InheritedSignals { ignored: u64::MAX, blocked: 0 }.ignored_signals().len(), 62);
    }
}
