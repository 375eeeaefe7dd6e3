//! The sd_notify protocol (sd_notify(3)): a unix datagram socket whose path
//! services get as `NOTIFY_SOCKET`. Each datagram is newline-separated
//! `KEY=VALUE` assignments. The sender's pid comes from SCM_CREDENTIALS
//! (SO_PASSCRED), which the kernel fills in and a sender cannot forge, so a
//! message is attributed to the service the process belongs to, and a
//! process outside every service is ignored.

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub pid: Option<i32>,
    pub fields: Vec<(String, String)>,
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

    /// The datagrams waiting now, at most [`RECEIVE_BATCH`] (a flood must
    /// not hold the loop: the caller comes back for more when it got a full
    /// batch, since the poller is edge-triggered).
    pub fn receive(&self) -> Vec<Message> {
        let mut messages = Vec::new();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for _ in 0..RECEIVE_BATCH {
            match crate::sys::recv_with_pid(self.fd.as_raw_fd(), &mut buf) {
                Ok(Some((len, pid))) => messages.push(Message { pid, fields: parse(&buf[..len]) }),
                Ok(None) => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        messages
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
}
