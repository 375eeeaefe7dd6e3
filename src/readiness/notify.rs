//! The sd_notify protocol (sd_notify(3)): a unix datagram socket whose path
//! services get as `NOTIFY_SOCKET`. Each datagram is newline-separated
//! `KEY=VALUE` assignments. The sender's pid comes from SCM_CREDENTIALS
//! (SO_PASSCRED), which the kernel fills in and a sender cannot forge, so a
//! message is attributed to the service the process belongs to, and a
//! process outside every service is ignored.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The largest datagram read; longer ones are cut (systemd reads 4 KiB + 1).
const MAX_DATAGRAM: usize = 4096;

/// Datagrams read per turn.
pub const RECEIVE_BATCH: usize = 256;

pub struct NotifySocket {
    fd: OwnedFd,
    pub path: PathBuf,
}

/// One message: who sent it and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub pid: Option<i32>,
    pub fields: Vec<(String, String)>,
}

impl NotifySocket {
    /// Bind at `path` (replacing a stale file), non-blocking, close-on-exec,
    /// with SO_PASSCRED, and writable by every user (services may run as
    /// anyone; the credentials decide what is accepted, as with systemd's
    /// /run/systemd/notify).
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        let _ = std::fs::remove_file(path);
        let fd = crate::sys::notify_socket(path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        Ok(NotifySocket { fd, path: path.to_path_buf() })
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
    }
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
    fn receives_with_the_senders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = NotifySocket::bind(&path).unwrap();
        let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
        sender.send_to(b"READY=1\nSTATUS=up", &path).unwrap();
        let messages = socket.receive();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].pid, Some(std::process::id() as i32));
        assert_eq!(messages[0].fields[0], ("READY".into(), "1".into()));
        assert!(socket.receive().is_empty());
    }
}
