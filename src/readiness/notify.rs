//! The sd_notify protocol (sd_notify(3)): a unix datagram socket whose path
//! services get as `NOTIFY_SOCKET`. Each datagram is newline-separated
//! `KEY=VALUE` assignments. The sender's pid comes from SCM_CREDENTIALS
//! (SO_PASSCRED), which the kernel fills in and a sender cannot forge, so a
//! message is attributed to the service the process belongs to, and a
//! process outside every service is ignored. Where the kernel has it, the
//! sender's pidfd (SCM_PIDFD) adds its cgroup, known even once the sender
//! has exited (see `crate::sys::Sender`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tend_core::Time;

/// The largest datagram read; longer ones are cut (systemd reads 4 KiB + 1).
const MAX_DATAGRAM: usize = 4096;

/// Datagrams read per turn.
pub const RECEIVE_BATCH: usize = 256;

pub struct NotifySocket {
    fd: OwnedFd,
    pub path: PathBuf,
    /// A folder made for the socket alone, removed with it.
    dir: Option<PathBuf>,
}

/// One message: who sent it and what it says.
#[derive(Debug)]
pub struct Message {
    pub pid: Option<i32>,
    pub sender: Option<crate::sys::Sender>,
    pub fields: Vec<(String, String)>,
    /// Descriptors sent along (FDSTORE=, the pipe of systemd-notify's
    /// BARRIER=1): tend keeps none (keeping them would let any local user
    /// exhaust its descriptors), but closes them only when the message is
    /// dropped, once it and every message before it were handled: that
    /// close is what sd_notify_barrier(3) waits for, and its promise is
    /// that the earlier messages were processed. A `systemd-notify
    /// --ready` that sends as itself thus lives until its READY=1 was
    /// attributed by its pid.
    pub passed: Vec<OwnedFd>,
}

impl NotifySocket {
    /// Bind at `path` (replacing a stale file: the caller chose a place
    /// only tend's user can write), non-blocking, close-on-exec, with
    /// SO_PASSCRED. `open_to_all`: writable by every user (root's services
    /// may run as anyone; the credentials decide what is accepted, as with
    /// systemd's /run/systemd/notify), else by tend's user only. The mode
    /// comes from the umask at bind, never from a chmod by path.
    pub fn bind(path: &Path, dir: Option<PathBuf>, open_to_all: bool) -> io::Result<NotifySocket> {
        let _ = std::fs::remove_file(path);
        let mask = if open_to_all { 0o111 } else { 0o177 };
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        let fd = crate::sys::notify_socket(path);
        nix::sys::stat::umask(old);
        Ok(NotifySocket { fd: fd?, path: path.to_path_buf(), dir })
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The next datagram waiting, if any. The caller handles each before
    /// reading the next (see [`Message::passed`]), and reads at most
    /// [`RECEIVE_BATCH`] per turn (a flood must not hold the loop: it
    /// comes back for more after a full batch, since the poller is
    /// edge-triggered).
    pub fn receive_one(&self) -> Option<Message> {
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            match crate::sys::recv_notify(self.fd.as_raw_fd(), &mut buf) {
                Ok(Some(got)) => {
                    return Some(Message {
                        pid: got.pid,
                        sender: got.sender,
                        fields: parse(&buf[..got.len]),
                        passed: got.passed,
                    })
                }
                Ok(None) => return None,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// The datagrams waiting now, at most [`RECEIVE_BATCH`], for tests.
    #[cfg(test)]
    fn receive(&self) -> Vec<Message> {
        std::iter::from_fn(|| self.receive_one()).take(RECEIVE_BATCH).collect()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A budget for log lines about ignored messages: any local user can send
/// datagrams to the notify socket, and each must not become a line of
/// tend's log. At most `per_window` lines per `window`; the rest are
/// counted, and the count is said with the next line shown. Pure: time is
/// an argument.
#[derive(Debug, Clone)]
pub struct Throttle {
    per_window: u32,
    window: Duration,
    started: Option<Time>,
    shown: u32,
    suppressed: u64,
}

impl Throttle {
    pub fn new(per_window: u32, window: Duration) -> Throttle {
        Throttle { per_window, window, started: None, shown: 0, suppressed: 0 }
    }

    /// May a line be shown at `now`? `Some(n)`: yes, and `n` were
    /// suppressed before it; `None`: no (it is counted).
    pub fn admit(&mut self, now: Time) -> Option<u64> {
        let expired =
            self.started.is_none_or(|start| now.saturating_sub(start) >= self.window || now < start);
        if expired {
            self.started = Some(now);
            self.shown = 0;
        }
        if self.shown < self.per_window {
            self.shown += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// Whether a service's `MAINPID=` may be taken, as systemd decides for a
/// sender without privileges: only a process of the service itself (its
/// cgroup, its process group, or below its leader), never init. The sender
/// is already known to be a process of the service. Pure: the caller finds
/// out membership.
pub fn main_pid_acceptable(candidate: i32, candidate_is_member: bool) -> Result<(), &'static str> {
    if candidate <= 1 {
        return Err("not a valid pid");
    }
    if !candidate_is_member {
        return Err("not a process of this service");
    }
    Ok(())
}

/// `READY=1\nSTATUS=Processing\n` → [(READY, 1), (STATUS, Processing)].
pub fn parse(datagram: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(datagram)
        .split('\n')
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            (!key.is_empty()).then(|| (key.to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_assignments() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=Processing requests\n\nBAD\nMAINPID=42"),
            vec![
                ("READY".to_string(), "1".to_string()),
                ("STATUS".to_string(), "Processing requests".to_string()),
                ("MAINPID".to_string(), "42".to_string()),
            ]
        );
    }

    #[test]
    fn the_throttle_shows_a_few_lines_per_window_and_counts_the_rest() {
        let mut t = Throttle::new(3, Duration::from_secs(10));
        let at = |s: u64| Time::new(s, 0);
        assert_eq!(t.admit(at(100)), Some(0));
        assert_eq!(t.admit(at(101)), Some(0));
        assert_eq!(t.admit(at(102)), Some(0));
        for _ in 0..1000 {
            assert_eq!(t.admit(at(103)), None);
        }
        assert_eq!(t.admit(at(110)), Some(1000), "the next window says how many were not shown");
        assert_eq!(t.admit(at(111)), Some(0));
        // A clock that went backwards starts a new window.
        assert_eq!(t.admit(at(50)), Some(0));
    }

    #[test]
    fn main_pid_only_for_a_process_of_the_service() {
        assert_eq!(main_pid_acceptable(12, true), Ok(()));
        assert!(main_pid_acceptable(4242, false).is_err(), "another service's pid");
        assert!(main_pid_acceptable(1, true).is_err());
        assert!(main_pid_acceptable(-5, true).is_err());
    }

    #[test]
    fn receives_with_the_senders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = NotifySocket::bind(&path, None, false).unwrap();
        let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
        sender.send_to(b"READY=1\nSTATUS=up", &path).unwrap();
        let messages = socket.receive();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].pid, Some(std::process::id() as i32));
        assert_eq!(messages[0].fields[0], ("READY".into(), "1".into()));
        assert!(socket.receive().is_empty());
    }

    /// Our own cgroup2 directory: where cgroup2 is mounted (mountinfo
    /// field 5, the root of the mount being the hierarchy's root) and the
    /// `0::PATH` line of /proc/self/cgroup.
    fn own_cgroup2_dir() -> Option<PathBuf> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = mountinfo.lines().find_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            (l.contains(" - cgroup2 ") && fields.get(3) == Some(&"/")).then(|| fields[4].to_string())
        })?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
        Some(Path::new(&mount).join(path.trim_start_matches('/')))
    }

    /// The kernel facts the attribution by cgroup rests on: a pidfd comes
    /// with each datagram, and it tells the sender's cgroup even once the
    /// sender has exited and been reaped (Linux 6.16).
    #[test]
    fn an_exited_senders_cgroup_is_still_known() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = NotifySocket::bind(&path, None, false).unwrap();
        let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
        sender.send_to(b"READY=1", &path).unwrap();
        let live = socket.receive()[0].sender;
        let in_ci = std::env::var_os("CI").is_some();
        let Some(live) = live else {
            assert!(!in_ci, "no SCM_PIDFD or PIDFD_GET_INFO (Linux 6.13) on this kernel");
            eprintln!("SKIPPED (kernel without SCM_PIDFD or PIDFD_GET_INFO): an_exited_senders_cgroup_is_still_known");
            return;
        };
        assert!(!live.exited && live.cgroup_id.is_some(), "{live:?}");
        // The id is the inode number of our cgroup2 directory, which is
        // how tend knows a service's cgroup by its id.
        if let Some(dir) = own_cgroup2_dir() {
            use std::os::unix::fs::MetadataExt;
            let ino = std::fs::metadata(&dir).unwrap().ino();
            assert_eq!(live.cgroup_id, Some(ino), "{}", dir.display());
        } else {
            assert!(!in_ci, "cgroup2 is not mounted");
        }
        // A child (in our cgroup) sends, exits and is reaped before the read.
        let status = std::process::Command::new("perl")
            .args(["-MSocket", "-e"])
            .arg("socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die; send($s, 'READY=1', 0, pack_sockaddr_un($ARGV[0])) or die")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let messages = socket.receive();
        assert_eq!(messages.len(), 1);
        let Some(gone) = messages[0].sender else {
            assert!(!in_ci, "the kernel kept nothing of an exited sender (before Linux 6.16)");
            eprintln!("SKIPPED (kernel before 6.16): an_exited_senders_cgroup_is_still_known");
            return;
        };
        assert!(gone.exited, "{gone:?}");
        assert_eq!(gone.cgroup_id, live.cgroup_id, "the child was in our cgroup");
    }
}
