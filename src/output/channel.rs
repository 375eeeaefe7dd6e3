//! tend's own stdout and stderr, written without ever blocking the loop.
//!
//! Owns one bounded queue per stream and how it reaches its descriptor,
//! whatever that is: a pipe or terminal through a non-blocking copy of the
//! descriptor (reopened through /proc/self/fd), a socket (journald's stream,
//! a `docker logs` reader) with send(MSG_DONTWAIT), a regular file directly,
//! /dev/null not at all, anything else only after poll(2) says it can take
//! bytes. When the reader is too slow and the queue is full, whole lines are
//! dropped and counted; once the queue has drained, one line says how many
//! were lost, at the place where they are missing. Only this copy of the
//! output is dropped: the history ring, the log files and syslog are fed
//! before the lines get here.
//!
//! Must not frame lines or know about services: `Output` hands it whole
//! lines, already prefixed.

use crate::sys::{self, FdKind};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// The most bytes queued for one stream: above this, lines are dropped.
pub const QUEUE_MAX: usize = 1024 * 1024;

/// At exit, a reader that takes nothing for this long is given up on, so
/// that a stdout nobody reads cannot keep tend from exiting.
const EXIT_PATIENCE_MS: i32 = 5000;

/// After poll(2) says a pipe is writable, a write of at most PIPE_BUF bytes
/// does not block (pipe(7)); used for descriptors tend could not reopen.
const POLLED_CHUNK: usize = 4096;

enum Sink {
    /// /dev/null: nothing is formatted or written.
    Discard,
    /// A pipe or terminal, reopened non-blocking (the shared file
    /// description keeps its flags).
    Reopened(OwnedFd),
    /// A socket: send(2) with MSG_DONTWAIT.
    Socket(BorrowedFd<'static>),
    /// A regular file: writes do not wait for a reader.
    Direct(BorrowedFd<'static>),
    /// Anything else: written only when poll(2) says so, a pipe buffer at a time.
    Polled(BorrowedFd<'static>),
    /// Tests: keep everything queued.
    #[cfg(test)]
    Held,
}

/// One of tend's own output streams.
pub struct Channel {
    sink: Sink,
    queue: Vec<u8>,
    /// Lines dropped since the queue last drained.
    dropped: u64,
    /// Lines dropped in all.
    dropped_total: u64,
    /// Dropping until the queue has drained, so that the notice marks the
    /// place of the gap and no line after it jumps ahead.
    dropping: bool,
    /// "stdout" or "stderr", for the notice.
    name: &'static str,
}

impl Channel {
    pub fn new(fd: BorrowedFd<'static>, name: &'static str) -> Channel {
        let sink = match sys::fd_kind(fd) {
            FdKind::DevNull => Sink::Discard,
            FdKind::Regular => Sink::Direct(fd),
            FdKind::Socket => Sink::Socket(fd),
            FdKind::Fifo | FdKind::Terminal => match sys::reopen_nonblocking(fd) {
                Some(owned) => Sink::Reopened(owned),
                None => Sink::Polled(fd),
            },
            FdKind::Other => Sink::Polled(fd),
        };
        Channel {
            sink,
            queue: Vec::with_capacity(64 * 1024),
            dropped: 0,
            dropped_total: 0,
            dropping: false,
            name,
        }
    }

    #[cfg(test)]
    pub fn held(name: &'static str) -> Channel {
        Channel { sink: Sink::Held, queue: Vec::new(), dropped: 0, dropped_total: 0, dropping: false, name }
    }

    /// Nobody reads it (/dev/null): callers need not even format lines.
    pub fn discards(&self) -> bool {
        matches!(self.sink, Sink::Discard)
    }

    /// Queue one whole line made of `parts` (the last one ends with its
    /// newline), or drop it when the reader is too far behind.
    pub fn line(&mut self, parts: &[&[u8]]) {
        if self.discards() {
            return;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.dropping || self.queue.len() + len > QUEUE_MAX {
            self.dropping = true;
            self.dropped += 1;
            self.dropped_total += 1;
            return;
        }
        for part in parts {
            self.queue.extend_from_slice(part);
        }
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Lines dropped since tend started (for `tend metrics`).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Write what the descriptor takes now, without waiting. Once the queue
    /// has drained after lines were dropped, `notice_prefix` starts the line
    /// that says how many.
    pub fn flush(&mut self, notice_prefix: &[u8]) {
        self.write_some();
        self.note_drops(notice_prefix);
    }

    /// At exit: everything, waiting for the reader, but not forever.
    pub fn flush_all(&mut self, notice_prefix: &[u8]) {
        self.flush(notice_prefix);
        while !self.queue.is_empty() {
            let Some(fd) = self.pollable() else { return };
            if !sys::poll_writable(fd, EXIT_PATIENCE_MS) {
                self.queue.clear();
                return;
            }
            self.flush(notice_prefix);
        }
    }

    /// The descriptor to watch for writability, when writes can stall.
    pub fn watched_fd(&self) -> Option<RawFd> {
        self.pollable().map(|fd| fd.as_raw_fd())
    }

    fn pollable(&self) -> Option<BorrowedFd<'_>> {
        match &self.sink {
            Sink::Reopened(fd) => Some(fd.as_fd()),
            Sink::Socket(fd) | Sink::Polled(fd) => Some(fd.as_fd()),
            Sink::Discard | Sink::Direct(_) => None,
            #[cfg(test)]
            Sink::Held => None,
        }
    }

    fn note_drops(&mut self, notice_prefix: &[u8]) {
        if self.queue.is_empty() && self.dropped > 0 {
            let count = std::mem::take(&mut self.dropped);
            self.dropping = false;
            let plural = if count == 1 { "line" } else { "lines" };
            let notice = format!("{count} {plural} dropped: {} was not being read\n", self.name);
            self.line(&[notice_prefix, notice.as_bytes()]);
            self.write_some();
        }
    }

    /// Write until the descriptor would block. A hard error (EPIPE, EBADF)
    /// drops what is queued: nobody can read it any more.
    fn write_some(&mut self) {
        let mut sent = 0;
        while sent < self.queue.len() {
            let rest = &self.queue[sent..];
            let result = match &self.sink {
                Sink::Discard => Ok(rest.len()),
                Sink::Reopened(fd) => sys::write(fd, rest),
                Sink::Socket(fd) => sys::send_nonblocking(fd, rest),
                Sink::Direct(fd) => sys::write(fd, rest),
                Sink::Polled(fd) => {
                    if !sys::poll_writable(fd, 0) {
                        break;
                    }
                    sys::write(fd, &rest[..rest.len().min(POLLED_CHUNK)])
                }
                #[cfg(test)]
                Sink::Held => break,
            };
            match result {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => sent = self.queue.len(),
            }
        }
        self.queue.drain(..sent);
    }

    #[cfg(test)]
    pub fn take_queued(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_queue_until_full_then_whole_lines_drop_until_drained() {
        let mut channel = Channel::held("stdout");
        let line = vec![b'x'; 1000];
        let fit = QUEUE_MAX / 1001;
        for _ in 0..fit + 10 {
            channel.line(&[&line, b"\n"]);
        }
        assert_eq!(channel.pending(), fit * 1001, "only whole lines, and no more than the bound");
        assert_eq!(channel.dropped, 10);
        // Room again, but the gap is not drained yet: later lines drop too,
        // so that none of them jumps ahead of the notice.
        channel.queue.truncate(1001);
        channel.line(&[b"later\n"]);
        assert_eq!(channel.dropped, 11);
        channel.flush(b"tend | ");
        assert_eq!(channel.pending(), 1001, "no notice before the queue drained");
        channel.take_queued();
        channel.flush(b"tend | ");
        assert_eq!(channel.take_queued(), b"tend | 11 lines dropped: stdout was not being read\n");
        channel.line(&[b"after\n"]);
        assert_eq!(channel.take_queued(), b"after\n", "lines flow again after the notice");
    }
}
