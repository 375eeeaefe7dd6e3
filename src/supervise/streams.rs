//! A service's output: its stdout and stderr pipes, read without blocking,
//! each framed once ([`LineFramer`]) and fanned out to every sink: tend's
//! own output (prefixed), the log file, syslog and `logs -f` followers.
//! The history ring keeps the raw chunks (it cuts lines only when `tend
//! logs` asks, so the hot path does no per-line work for it).
//!
//! Must not block, and must not let one busy service starve the others:
//! a stream reads at most [`READS_PER_TURN`] chunks per turn.

use crate::output::file::FileSink;
use crate::output::ring::LogRing;
use crate::output::syslog::{Severity, SyslogSink};
use crate::output::{each_line, Dest, LineFramer, Output, Prefix};
use crate::sys;
use std::io;
use std::os::fd::OwnedFd;
use std::time::SystemTime;
use tend_core::ServiceId;

/// How much one stream may read per turn before the others get theirs: a
/// service that writes without pause must not starve the rest or the loop.
pub(super) const READ_CHUNK: usize = 64 * 1024;
const READS_PER_TURN: usize = 4;

/// One of a service's output pipes.
pub(crate) struct OutputStream {
    pub(super) service: ServiceId,
    pub(super) dest: Dest,
    pub(super) fd: OwnedFd,
    framer: LineFramer,
}

/// Where a service's lines go, besides tend's output.
pub(super) struct ServiceSinks {
    pub(super) prefix: Prefix,
    pub(super) history: LogRing,
    /// `log.file`, when set (boxed, as most services have none: the
    /// loop keeps one of these per service).
    pub(super) file: Option<Box<FileSink>>,
    /// `log.syslog`, when set.
    pub(super) syslog: Option<Box<SyslogSink>>,
}

/// What a turn of reading found.
pub(super) struct Read {
    /// The writer closed its end (or the pipe failed): the stream is over.
    pub(super) closed: bool,
    /// It still had data when its turn ended: read it again next turn.
    pub(super) more: bool,
}

/// Everything a line reaches, for one read.
pub(super) struct Fanout<'a> {
    pub(super) output: &'a mut Output,
    pub(super) sinks: &'a mut ServiceSinks,
    /// The service's name (syslog's tag) and its pid.
    pub(super) name: &'a str,
    pub(super) pid: u32,
    /// Lines for `logs -f` followers, when someone follows.
    pub(super) follow: Option<&'a mut Vec<u8>>,
}

impl Fanout<'_> {
    /// Whole lines (each ending with its newline) to every sink.
    fn lines(&mut self, dest: Dest, time: SystemTime, lines: &[u8]) {
        self.output.lines(&self.sinks.prefix, lines, dest);
        if let Some(file) = self.sinks.file.as_mut() {
            file.write(time, lines);
        }
        if let Some(syslog) = self.sinks.syslog.as_mut() {
            let severity = match dest {
                Dest::Stdout => Severity::Info,
                Dest::Stderr => Severity::Warning,
            };
            each_line(lines, |line| syslog.send(self.name, self.pid, severity, line));
        }
        if let Some(follow) = self.follow.as_deref_mut() {
            follow.extend_from_slice(lines);
        }
    }
}

impl OutputStream {
    pub(super) fn new(service: ServiceId, dest: Dest, fd: OwnedFd) -> OutputStream {
        OutputStream { service, dest, fd, framer: LineFramer::default() }
    }

    /// Read what the pipe holds, up to this turn's share.
    pub(super) fn read(&mut self, buffer: &mut [u8], mut to: Fanout) -> Read {
        for _ in 0..READS_PER_TURN {
            match sys::read(&self.fd, buffer) {
                Ok(0) => return Read { closed: true, more: false },
                Ok(n) => {
                    let data = &buffer[..n];
                    let now = SystemTime::now();
                    to.sinks.history.push(now, self.dest, data);
                    let dest = self.dest;
                    self.framer.feed(data, |lines| to.lines(dest, now, lines));
                    // Even after a short read, read on until EAGAIN or EOF:
                    // the writer may already have closed its end, and an
                    // edge-triggered poller reports that hang-up only once,
                    // together with the data just read.
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Read { closed: false, more: false }
                }
                Err(_) => return Read { closed: true, more: false },
            }
        }
        Read { closed: false, more: true }
    }

    /// The stream is over: its unfinished last line still goes everywhere.
    pub(super) fn finish(&mut self, mut to: Fanout) {
        if let Some(last) = self.framer.finish() {
            to.lines(self.dest, SystemTime::now(), &last);
        }
    }
}
