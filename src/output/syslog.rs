//! Lines to the local syslog daemon: RFC 3164 framing over a non-blocking
//! datagram socket of tend's own. Must not block the loop: a message that
//! cannot go out at once is dropped and counted.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::file::LAST_STAMP_SECS;

/// Syslog severities (RFC 5424 numbering). tend sends two; the tests
/// format the others too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    #[cfg(test)]
    Emerg = 0,
    #[cfg(test)]
    Err = 3,
    Warning = 4,
    #[cfg(test)]
    Notice = 5,
    Info = 6,
    #[cfg(test)]
    Debug = 7,
}

/// Syslog facilities (RFC 3164 section 4.1.1; the values of syslog.h:
/// the code times 8, ready to add a severity to).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Facility {
    LOG_KERN = 0,
    LOG_USER = 1 << 3,
    LOG_MAIL = 2 << 3,
    LOG_DAEMON = 3 << 3,
    LOG_AUTH = 4 << 3,
    LOG_SYSLOG = 5 << 3,
    LOG_LPR = 6 << 3,
    LOG_NEWS = 7 << 3,
    LOG_UUCP = 8 << 3,
    LOG_CRON = 9 << 3,
    LOG_AUTHPRIV = 10 << 3,
    LOG_FTP = 11 << 3,
    LOG_LOCAL0 = 16 << 3,
    LOG_LOCAL1 = 17 << 3,
    LOG_LOCAL2 = 18 << 3,
    LOG_LOCAL3 = 19 << 3,
    LOG_LOCAL4 = 20 << 3,
    LOG_LOCAL5 = 21 << 3,
    LOG_LOCAL6 = 22 << 3,
    LOG_LOCAL7 = 23 << 3,
}

/// `<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE`, RFC 3164 as glibc's syslog(3)
/// sends it to /dev/log (no hostname: the local daemon adds its own). The
/// time is UTC, as the syslog crate tend used before wrote it; daemons
/// reading /dev/log (rsyslog's imuxsock, journald) stamp messages with their
/// own receive time anyway. Written by hand: that crate re-parsed its time
/// format for every message and brought in `time` and `hostname`.
pub fn format_3164(
    out: &mut Vec<u8>,
    facility: Facility,
    severity: Severity,
    time: SystemTime,
    tag: &str,
    pid: u32,
    message: &[u8],
) {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // humantime: `2026-12-01T23:38:05Z` (clamped to what it can format).
    let last = UNIX_EPOCH + Duration::from_secs(LAST_STAMP_SECS);
    let stamp = humantime::format_rfc3339_seconds(time.clamp(UNIX_EPOCH, last)).to_string();
    let month: usize = stamp.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = stamp.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    let clock = stamp.get(11..19).unwrap_or("00:00:00");
    let priority = facility as u32 + severity as u32;
    let _ = write!(
        out,
        "<{priority}>{} {day:>2} {clock} {tag}[{pid}]: {}",
        MONTHS.get(month.wrapping_sub(1)).unwrap_or(&"Jan"),
        Lossy(message)
    );
}

const FACILITIES: [(&str, Facility); 20] = [
    ("kern", Facility::LOG_KERN),
    ("user", Facility::LOG_USER),
    ("mail", Facility::LOG_MAIL),
    ("daemon", Facility::LOG_DAEMON),
    ("auth", Facility::LOG_AUTH),
    ("syslog", Facility::LOG_SYSLOG),
    ("lpr", Facility::LOG_LPR),
    ("news", Facility::LOG_NEWS),
    ("uucp", Facility::LOG_UUCP),
    ("cron", Facility::LOG_CRON),
    ("authpriv", Facility::LOG_AUTHPRIV),
    ("ftp", Facility::LOG_FTP),
    ("local0", Facility::LOG_LOCAL0),
    ("local1", Facility::LOG_LOCAL1),
    ("local2", Facility::LOG_LOCAL2),
    ("local3", Facility::LOG_LOCAL3),
    ("local4", Facility::LOG_LOCAL4),
    ("local5", Facility::LOG_LOCAL5),
    ("local6", Facility::LOG_LOCAL6),
    ("local7", Facility::LOG_LOCAL7),
];

/// A facility by its usual name (`daemon`, `local3`, …).
pub fn parse_facility(name: &str) -> Result<Facility, String> {
    match FACILITIES.iter().find(|(known, _)| *known == name) {
        Some((_, facility)) => Ok(*facility),
        None => {
            let names: Vec<&str> = FACILITIES.iter().map(|(known, _)| *known).collect();
            Err(format!("unknown syslog facility `{name}`: expected one of {}", names.join(", ")))
        }
    }
}

/// Lines to the local syslog daemon over a non-blocking datagram socket of
/// our own: the syslog crate only formats (its transport blocks and never
/// reconnects). Messages that cannot go out at once are dropped and counted.
///
/// A SOCK_STREAM `/dev/log` is not supported: connecting fails with
/// EPROTOTYPE, which `error()` reports, and every message counts as dropped.
#[derive(Debug)]
pub struct SyslogSink {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    connected: bool,
    facility: Facility,
    datagram: Vec<u8>,
    dropped: u64,
    problem: Option<String>,
    last_errno: Option<i32>,
}

impl SyslogSink {
    /// Nothing is connected yet: the first `send` does it.
    pub fn new(socket: PathBuf, facility: Facility) -> SyslogSink {
        SyslogSink {
            path: socket,
            socket: None,
            connected: false,
            facility,
            datagram: Vec::with_capacity(1024),
            dropped: 0,
            problem: None,
            last_errno: None,
        }
    }

    /// One line (without its newline) as `<PRI>timestamp tag[pid]: message`.
    pub fn send(&mut self, tag: &str, pid: u32, severity: Severity, message: &[u8]) {
        self.datagram.clear();
        format_3164(&mut self.datagram, self.facility, severity, SystemTime::now(), tag, pid, message);
        // A daemon that restarted left our connection dead: reconnect and
        // try once more, so a restart loses nothing.
        for _ in 0..2 {
            if !self.connect() {
                break;
            }
            let Some(socket) = &self.socket else { break };
            match socket.send(&self.datagram) {
                Ok(_) => {
                    self.problem = None;
                    return;
                }
                // Its queue is full, or the message is too big: the daemon is alive.
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || matches!(e.raw_os_error(), Some(libc::EMSGSIZE | libc::ENOBUFS)) =>
                {
                    self.set_problem(&e);
                    break;
                }
                Err(e) => {
                    // ECONNREFUSED, ENOTCONN, ENOENT…: the daemon is gone.
                    self.socket = None;
                    self.connected = false;
                    self.set_problem(&e);
                }
            }
        }
        self.dropped += 1;
    }

    /// Messages dropped because no daemon listened or its queue was full: a metric.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Why messages are being dropped, for `tend status`; None when the last send worked.
    pub fn error(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Connect if needed. While no daemon listens this costs one connect(2)
    /// per message (the unconnected socket is kept): cheap enough to try on
    /// every send, and a returning daemon is found at once.
    fn connect(&mut self) -> bool {
        if self.connected {
            return true;
        }
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound().and_then(|socket| {
                socket.set_nonblocking(true)?;
                Ok(socket)
            });
            match socket {
                Ok(socket) => self.socket = Some(socket),
                Err(e) => {
                    self.set_problem(&e);
                    return false;
                }
            }
        }
        let Some(socket) = &self.socket else { return false };
        match socket.connect(&self.path) {
            Ok(()) => {
                self.connected = true;
                true
            }
            Err(e) => {
                self.set_problem(&e);
                false
            }
        }
    }

    fn set_problem(&mut self, error: &io::Error) {
        // Formatting only on a change of errno keeps a dead daemon from
        // costing an allocation per message.
        let code = error.raw_os_error();
        if self.problem.is_some() && self.last_errno == code {
            return;
        }
        self.last_errno = code;
        let why = if code == Some(libc::EPROTOTYPE) {
            "it is a stream socket (unsupported)".to_owned()
        } else {
            tend_core::text::error_text(error)
        };
        self.problem = Some(format!("cannot send to syslog at {}: {why}", self.path.display()));
    }
}

/// A message shown as UTF-8, invalid bytes as U+FFFD, without allocating.
struct Lossy<'a>(&'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;
    use std::time::Instant;

    #[test]
    fn rfc3164_line_as_glibc_sends_it() {
        let mut out = Vec::new();
        let time = UNIX_EPOCH + Duration::from_secs(1_764_630_245); // 2025-12-01T23:04:05Z
        format_3164(&mut out, Facility::LOG_LOCAL3, Severity::Warning, time, "web", 42, b"GET / 500\xff");
        assert_eq!(String::from_utf8(out).unwrap(), "<156>Dec  1 23:04:05 web[42]: GET / 500\u{FFFD}");
        let mut out = Vec::new();
        let time = UNIX_EPOCH + Duration::from_secs(1_768_435_200); // 2026-01-15T00:00:00Z
        format_3164(&mut out, Facility::LOG_KERN, Severity::Emerg, time, "t", 1, b"");
        assert_eq!(String::from_utf8(out).unwrap(), "<0>Jan 15 00:00:00 t[1]: ");
    }

    fn listener(dir: &Path) -> (PathBuf, UnixDatagram) {
        let path = dir.join("log");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (path, socket)
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn syslog_messages_carry_priority_tag_pid_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let (path, daemon) = listener(dir.path());
        let mut sink = SyslogSink::new(path, parse_facility("local3").unwrap());
        sink.send("web", 4242, Severity::Err, b"disk on fire");
        sink.send("web", 4242, Severity::Info, b"all good");
        sink.send("worker", 7, Severity::Debug, b"bad \xff byte");
        let expected = [
            (19 * 8 + 3, "web[4242]: disk on fire"),
            (19 * 8 + 6, "web[4242]: all good"),
            (19 * 8 + 7, "worker[7]: bad \u{FFFD} byte"),
        ];
        for (pri, tail) in expected {
            let got = receive(&daemon);
            assert!(got.starts_with(&format!("<{pri}>")), "{got}");
            assert!(got.ends_with(tail), "{got}");
            assert!(!got.contains('\n'), "{got}");
        }
        assert_eq!(sink.dropped(), 0);
        assert_eq!(sink.error(), None);
    }

    #[test]
    fn syslog_without_a_daemon_drops_and_counts_then_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut sink = SyslogSink::new(path.clone(), Facility::LOG_DAEMON);
        let start = Instant::now();
        for _ in 0..1000 {
            sink.send("web", 1, Severity::Notice, b"nobody hears");
        }
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(sink.dropped(), 1000);
        assert!(sink.error().unwrap().ends_with("No such file or directory"), "{:?}", sink.error());

        let (_, daemon) = listener(dir.path());
        sink.send("web", 1, Severity::Notice, b"heard");
        assert!(receive(&daemon).ends_with("web[1]: heard"));
        assert_eq!(sink.dropped(), 1000);
        assert_eq!(sink.error(), None);
    }

    #[test]
    fn syslog_survives_a_daemon_restart_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let (path, daemon) = listener(dir.path());
        let mut sink = SyslogSink::new(path.clone(), Facility::LOG_USER);
        sink.send("web", 1, Severity::Info, b"before");
        assert!(receive(&daemon).ends_with("before"));
        drop(daemon);
        fs::remove_file(&path).unwrap();
        let (_, daemon) = listener(dir.path());
        sink.send("web", 1, Severity::Info, b"after");
        assert!(receive(&daemon).ends_with("after"));
        assert_eq!(sink.dropped(), 0);
    }

    #[test]
    fn syslog_full_queue_drops_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let (path, daemon) = listener(dir.path());
        let mut sink = SyslogSink::new(path, Facility::LOG_USER);
        let start = Instant::now();
        for _ in 0..10_000 {
            sink.send("web", 1, Severity::Info, &[b'z'; 1000]);
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(sink.dropped() > 0);
        // The daemon reads a message: the socket was kept, sending works again.
        receive(&daemon);
        while daemon.set_nonblocking(true).is_ok() && daemon.recv(&mut [0u8; 2048]).is_ok() {}
        let dropped = sink.dropped();
        sink.send("web", 1, Severity::Info, b"fits again");
        assert_eq!(sink.dropped(), dropped);
    }

    #[test]
    fn a_stream_socket_is_reported_and_counted_as_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let _daemon = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut sink = SyslogSink::new(path, Facility::LOG_USER);
        sink.send("web", 1, Severity::Info, b"x");
        assert_eq!(sink.dropped(), 1);
        assert!(sink.error().unwrap().contains("stream socket"), "{:?}", sink.error());
    }

    #[test]
    fn facilities_parse_by_name() {
        assert_eq!(parse_facility("kern").unwrap() as u32, 0);
        assert_eq!(parse_facility("daemon").unwrap() as u32, 3 * 8);
        assert_eq!(parse_facility("authpriv").unwrap() as u32, 10 * 8);
        assert_eq!(parse_facility("local7").unwrap() as u32, 23 * 8);
        let error = parse_facility("local8").unwrap_err();
        assert!(
            error.starts_with("unknown syslog facility `local8`: expected one of kern, user,"),
            "{error}"
        );
        assert!(parse_facility("LOCAL0").is_err());
    }
}
