//! Service output and tend's own messages, as lines on tend's stdout/stderr.
//!
//! Owns line framing (a line is never cut mid-way or interleaved with
//! another; a final line without newline is still printed), the `name | `
//! prefix padded to a common width, and per-service colours. The lines go
//! to tend's own stdout/stderr through [`channel`], which never blocks.
//! Must not read pipes or know about processes: the loop hands it bytes.

pub mod channel;
pub mod ring;
pub mod sink;

use channel::Channel;
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

impl Prefix {
    fn of(&self, dest: Dest) -> &[u8] {
        match dest {
            Dest::Stdout => &self.stdout,
            Dest::Stderr => &self.stderr,
        }
    }
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
    width: usize,
    colour_stdout: bool,
    colour_stderr: bool,
    stdout: Channel,
    stderr: Channel,
    tend_prefix: Prefix,
}

fn colour_wanted(fd: RawFd) -> bool {
    let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_colour && crate::sys::isatty(fd)
}

impl Output {
    /// `names` are every service name that may print (for the common width).
    pub fn new<'a>(names: impl Iterator<Item = &'a str>) -> Output {
        Output::with_channels(names, Channel::new(1, "stdout"), Channel::new(2, "stderr"))
    }

    fn with_channels<'a>(names: impl Iterator<Item = &'a str>, stdout: Channel, stderr: Channel) -> Output {
        let width = names.map(|n| n.chars().count()).max().unwrap_or(0).max(4);
        let mut output = Output {
            width,
            colour_stdout: colour_wanted(1),
            colour_stderr: colour_wanted(2),
            stdout,
            stderr,
            tend_prefix: Prefix { stdout: Vec::new(), stderr: Vec::new() },
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

    fn channel(&mut self, dest: Dest) -> &mut Channel {
        match dest {
            Dest::Stdout => &mut self.stdout,
            Dest::Stderr => &mut self.stderr,
        }
    }

    /// Frame `data` into lines and queue each complete one with `prefix`.
    pub fn push(&mut self, prefix: &Prefix, framer: &mut LineFramer, data: &[u8], dest: Dest) {
        let prefix_bytes = prefix.of(dest);
        let channel = self.channel(dest);
        if channel.discards() {
            return;
        }
        let mut rest = data;
        while let Some(at) = memchr_newline(rest) {
            let (line, tail) = rest.split_at(at + 1);
            channel.line(&[prefix_bytes, &framer.partial, line]);
            framer.partial.clear();
            rest = tail;
        }
        framer.partial.extend_from_slice(rest);
        while framer.partial.len() >= MAX_LINE {
            // An endless line: emit a full piece, keep the rest.
            channel.line(&[prefix_bytes, &framer.partial[..MAX_LINE], b"\n"]);
            framer.partial.drain(..MAX_LINE);
        }
    }

    /// The stream ended: print a final line that had no newline.
    pub fn finish(&mut self, prefix: &Prefix, framer: &mut LineFramer, dest: Dest) {
        let prefix_bytes = prefix.of(dest);
        let channel = self.channel(dest);
        if framer.partial.is_empty() || channel.discards() {
            framer.partial.clear();
            return;
        }
        channel.line(&[prefix_bytes, &framer.partial, b"\n"]);
        framer.partial.clear();
    }

    /// One of tend's own messages, to stderr.
    pub fn event(&mut self, message: &str) {
        self.stderr.line(&[&self.tend_prefix.stderr, message.as_bytes(), b"\n"]);
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.stdout.pending() + self.stderr.pending()
    }

    /// Write what tend's stdout and stderr take now, without blocking.
    pub fn flush(&mut self) {
        self.stdout.flush(&self.tend_prefix.stdout);
        self.stderr.flush(&self.tend_prefix.stderr);
    }

    /// At exit: write everything, waiting for slow readers (a bounded time).
    pub fn flush_all(&mut self) {
        self.stdout.flush_all(&self.tend_prefix.stdout);
        self.stderr.flush_all(&self.tend_prefix.stderr);
    }

    /// The descriptors to watch for writability.
    pub fn watched_fds(&self) -> Vec<RawFd> {
        [&self.stdout, &self.stderr].into_iter().filter_map(|c| c.watched_fd()).collect()
    }
}

fn memchr_newline(data: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output() -> Output {
        let mut out = Output::with_channels(
            ["web", "worker"].into_iter(),
            Channel::held("stdout"),
            Channel::held("stderr"),
        );
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
        assert_eq!(out.stdout.take_queued(), b"web    | one\n");
        out.push(&prefix, &mut framer, b"o\nthree", Dest::Stdout);
        assert_eq!(out.stdout.take_queued(), b"web    | two\n");
        out.finish(&prefix, &mut framer, Dest::Stdout);
        assert_eq!(out.stdout.take_queued(), b"web    | three\n");
    }

    #[test]
    fn endless_lines_are_split_not_dropped() {
        let mut out = output();
        let prefix = out.prefix("web", 0);
        let mut framer = LineFramer::default();
        let data = vec![b'x'; MAX_LINE + 10];
        out.push(&prefix, &mut framer, &data, Dest::Stderr);
        assert_eq!(framer.partial.len(), 10);
        assert_eq!(out.stderr.take_queued().len(), "web    | ".len() + MAX_LINE + 1);
    }

    #[test]
    fn events_use_the_tend_prefix() {
        let mut out = output();
        out.event("web: started (pid 12)");
        assert_eq!(out.stderr.take_queued(), b"tend   | web: started (pid 12)\n");
    }
}
