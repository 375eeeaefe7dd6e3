//! Service output and tend's own messages, as lines on tend's stdout/stderr.
//!
//! Owns line framing (a line is never cut mid-way or interleaved with
//! another; a final line without newline is still printed), the `name | `
//! prefix padded to a common width, per-service colours, and the buffered,
//! blocking-safe writes to tend's own stdout/stderr. Must not read pipes or
//! know about processes: the loop hands it bytes.

pub mod ring;
pub mod sink;

use std::io;
use std::os::fd::RawFd;

/// A line longer than this is emitted in pieces (each a full output line)
/// rather than held in memory without bound.
pub const MAX_LINE: usize = 256 * 1024;

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Which of tend's streams a line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    Stderr,
}

/// The rendered prefix of one source, for both destinations.
#[derive(Debug, Clone)]
pub struct Prefix {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Splits a byte stream into lines, keeping an incomplete tail between reads.
#[derive(Debug, Default)]
pub struct LineFramer {
    partial: Vec<u8>,
}

impl LineFramer {
    /// Call `each` with every complete line in `data` (without its newline),
    /// joined with what was left over from before. Over-long lines come out
    /// in [`MAX_LINE`] pieces.
    pub fn lines(&mut self, data: &[u8], mut each: impl FnMut(&[u8])) {
        let mut rest = data;
        while let Some(at) = memchr_newline(rest) {
            if self.partial.is_empty() {
                each(&rest[..at]);
            } else {
                self.partial.extend_from_slice(&rest[..at]);
                each(&self.partial);
                self.partial.clear();
            }
            rest = &rest[at + 1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= MAX_LINE {
            each(&self.partial[..MAX_LINE]);
            self.partial.drain(..MAX_LINE);
        }
    }

    /// The unfinished last line, if any (at end of stream).
    pub fn take_partial(&mut self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then(|| std::mem::take(&mut self.partial))
    }
}

pub struct Output {
    /// tend's stdout / stderr is /dev/null: nobody reads it, so lines going
    /// there are not formatted at all (the history, sinks and followers
    /// still get everything).
    discard_stdout: bool,
    discard_stderr: bool,
    width: usize,
    colour_stdout: bool,
    colour_stderr: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    tend_prefix: Prefix,
    /// Where each of tend's streams is written.
    stdout_writer: Writer,
    stderr_writer: Writer,
}

/// Above this much queued output, the loop stops reading services' pipes
/// until tend's own stdout/stderr drain: back-pressure reaches the services
/// through their pipes, nothing is dropped, and the loop never blocks.
pub const HIGH_WATER: usize = 1024 * 1024;

/// One of tend's own streams. A pipe or terminal is reopened non-blocking
/// (through /proc/self/fd, so the file description tend shares with its
/// parent keeps its flags) and watched for writability; anything else (a
/// regular file, which never blocks for long, or a socket /proc cannot
/// reopen) is written directly.
struct Writer {
    fd: RawFd,
    reopened: Option<std::os::fd::OwnedFd>,
}

impl Writer {
    fn new(fd: RawFd) -> Writer {
        match crate::sys::reopen_nonblocking(fd) {
            Some(owned) => {
                use std::os::fd::AsRawFd;
                Writer { fd: owned.as_raw_fd(), reopened: Some(owned) }
            }
            None => Writer { fd, reopened: None },
        }
    }

    /// Write what the descriptor takes now; keep the rest. On a hard error
    /// (EPIPE, EBADF) the buffer is dropped: nobody can read it any more.
    fn write_some(&self, buffer: &mut Vec<u8>) {
        if self.reopened.is_none() {
            let _ = crate::sys::write_all(self.fd, buffer);
            buffer.clear();
            return;
        }
        let mut sent = 0;
        while sent < buffer.len() {
            match crate::sys::write(self.fd, &buffer[sent..]) {
                Ok(n) => sent += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    sent = buffer.len();
                }
            }
        }
        buffer.drain(..sent);
    }

    /// At exit: everything, waiting as long as the reader needs.
    fn write_everything(&self, buffer: &mut Vec<u8>) {
        let _ = crate::sys::write_all(self.fd, buffer);
        buffer.clear();
    }
}

fn colour_wanted(fd: RawFd) -> bool {
    let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_colour && crate::sys::isatty(fd)
}

impl Output {
    /// `names` are every service name that may print (for the common width).
    pub fn new<'a>(names: impl Iterator<Item = &'a str>) -> Output {
        let width = names.map(|n| n.chars().count()).max().unwrap_or(0).max(4);
        let mut output = Output {
            discard_stdout: crate::sys::is_dev_null(1),
            discard_stderr: crate::sys::is_dev_null(2),
            width,
            colour_stdout: colour_wanted(1),
            colour_stderr: colour_wanted(2),
            stdout: Vec::with_capacity(64 * 1024),
            stderr: Vec::with_capacity(4096),
            tend_prefix: Prefix { stdout: Vec::new(), stderr: Vec::new() },
            stdout_writer: Writer::new(1),
            stderr_writer: Writer::new(2),
        };
        output.tend_prefix = output.render_prefix("tend", None);
        output
    }

    /// Pad to the longest of `names` from now on (after a reload).
    pub fn set_width<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        self.width = names.map(|n| n.chars().count()).max().unwrap_or(0).max(4);
        self.tend_prefix = self.render_prefix("tend", None);
    }

    /// The prefix of service number `index` named `name`.
    pub fn prefix(&self, name: &str, index: usize) -> Prefix {
        self.render_prefix(name, Some(COLOURS[index % COLOURS.len()]))
    }

    fn render_prefix(&self, name: &str, colour: Option<&str>) -> Prefix {
        let plain = format!("{name:<width$} | ", width = self.width);
        let coloured = match colour {
            Some(code) => format!("\x1b[{code}m{name:<width$} |\x1b[0m ", width = self.width),
            None => format!("\x1b[1m{name:<width$} |\x1b[0m ", width = self.width),
        };
        let pick = |on: bool| if on { coloured.clone().into_bytes() } else { plain.clone().into_bytes() };
        Prefix { stdout: pick(self.colour_stdout), stderr: pick(self.colour_stderr) }
    }

    fn buffer(&mut self, dest: Dest) -> &mut Vec<u8> {
        match dest {
            Dest::Stdout => &mut self.stdout,
            Dest::Stderr => &mut self.stderr,
        }
    }

    /// Frame `data` into lines and queue each complete one with `prefix`.
    pub fn push(&mut self, prefix: &Prefix, framer: &mut LineFramer, data: &[u8], dest: Dest) {
        if self.discards(dest) {
            return;
        }
        let prefix_bytes = match dest {
            Dest::Stdout => &prefix.stdout,
            Dest::Stderr => &prefix.stderr,
        };
        let buffer = self.buffer(dest);
        let mut rest = data;
        while let Some(at) = memchr_newline(rest) {
            let (line, tail) = rest.split_at(at + 1);
            buffer.extend_from_slice(prefix_bytes);
            if !framer.partial.is_empty() {
                buffer.append(&mut framer.partial);
            }
            buffer.extend_from_slice(line);
            rest = tail;
        }
        framer.partial.extend_from_slice(rest);
        while framer.partial.len() >= MAX_LINE {
            // An endless line: emit a full piece, keep the rest.
            buffer.extend_from_slice(prefix_bytes);
            buffer.extend_from_slice(&framer.partial[..MAX_LINE]);
            buffer.push(b'\n');
            framer.partial.drain(..MAX_LINE);
        }
    }

    fn discards(&self, dest: Dest) -> bool {
        match dest {
            Dest::Stdout => self.discard_stdout,
            Dest::Stderr => self.discard_stderr,
        }
    }

    /// The stream ended: print a final line that had no newline.
    pub fn finish(&mut self, prefix: &Prefix, framer: &mut LineFramer, dest: Dest) {
        if self.discards(dest) {
            return;
        }
        if framer.partial.is_empty() {
            return;
        }
        let prefix_bytes = match dest {
            Dest::Stdout => prefix.stdout.clone(),
            Dest::Stderr => prefix.stderr.clone(),
        };
        let buffer = self.buffer(dest);
        buffer.extend_from_slice(&prefix_bytes);
        buffer.append(&mut framer.partial);
        buffer.push(b'\n');
    }

    /// One of tend's own messages, to stderr.
    pub fn event(&mut self, message: &str) {
        self.stderr.extend_from_slice(&self.tend_prefix.stderr);
        self.stderr.extend_from_slice(message.as_bytes());
        self.stderr.push(b'\n');
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.stdout.len() + self.stderr.len()
    }

    /// So much is queued that the loop should stop reading services.
    pub fn is_full(&self) -> bool {
        self.pending() >= HIGH_WATER
    }

    /// Write what tend's stdout and stderr take now, without blocking (for
    /// pipes and terminals; see [`Writer`]).
    pub fn flush(&mut self) {
        if !self.stdout.is_empty() {
            self.stdout_writer.write_some(&mut self.stdout);
        }
        if !self.stderr.is_empty() {
            self.stderr_writer.write_some(&mut self.stderr);
        }
    }

    /// At exit: write everything, waiting for the readers.
    pub fn flush_all(&mut self) {
        self.stdout_writer.write_everything(&mut self.stdout);
        self.stderr_writer.write_everything(&mut self.stderr);
    }

    /// The descriptors to watch for writability (the non-blocking ones).
    pub fn watched_fds(&self) -> Vec<RawFd> {
        [&self.stdout_writer, &self.stderr_writer]
            .into_iter()
            .filter(|w| w.reopened.is_some())
            .map(|w| w.fd)
            .collect()
    }
}

fn memchr_newline(data: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output() -> Output {
        let mut out = Output::new(["web", "worker"].into_iter());
        out.discard_stdout = false;
        out.discard_stderr = false;
        out.colour_stdout = false;
        out.colour_stderr = false;
        out.tend_prefix = out.render_prefix("tend", None);
        out
    }

    #[test]
    fn lines_get_the_padded_prefix_and_partial_lines_wait() {
        let mut out = output();
        let prefix = out.prefix("web", 0);
        let mut framer = LineFramer::default();
        out.push(&prefix, &mut framer, b"one\ntw", Dest::Stdout);
        assert_eq!(out.stdout, b"web    | one\n");
        out.push(&prefix, &mut framer, b"o\nthree", Dest::Stdout);
        assert_eq!(out.stdout, b"web    | one\nweb    | two\n");
        out.finish(&prefix, &mut framer, Dest::Stdout);
        assert_eq!(out.stdout, b"web    | one\nweb    | two\nweb    | three\n");
    }

    #[test]
    fn endless_lines_are_split_not_dropped() {
        let mut out = output();
        let prefix = out.prefix("web", 0);
        let mut framer = LineFramer::default();
        let data = vec![b'x'; MAX_LINE + 10];
        out.push(&prefix, &mut framer, &data, Dest::Stderr);
        assert_eq!(framer.partial.len(), 10);
        assert_eq!(out.stderr.len(), "web    | ".len() + MAX_LINE + 1);
    }

    #[test]
    fn events_use_the_tend_prefix() {
        let mut out = output();
        out.event("web: started (pid 12)");
        assert_eq!(out.stderr, b"tend   | web: started (pid 12)\n");
    }
}
