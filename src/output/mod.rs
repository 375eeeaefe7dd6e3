//! Service output and tend's own messages, as lines on tend's stdout/stderr.
//!
//! Owns line framing, once per stream for every sink ([`LineFramer`]: a
//! line is never cut mid-way or interleaved with another; a final line
//! without newline is still printed), the `name | `
//! prefix padded to a common width, and per-service colours. The lines go
//! to tend's own stdout/stderr through [`channel`], which never blocks.
//! Must not read pipes or know about processes: the loop hands it bytes.

pub mod channel;
pub mod file;
pub mod ring;
pub mod syslog;

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

/// Splits a byte stream into whole lines: the one framer of a service's
/// output stream. Each piece it hands on is one or more whole lines, each
/// ending with its newline, so that every sink (tend's output, the log
/// file, syslog, `logs -f` followers) gets the same lines and the file
/// gets them in blocks, with no per-line work. An incomplete tail waits for
/// the next read; a line longer than [`MAX_LINE`] is handed on in pieces
/// (each ended with a newline) rather than held without bound.
#[derive(Debug, Default)]
pub struct LineFramer {
    partial: Vec<u8>,
}

impl LineFramer {
    /// Frame `data`: `each` is called with pieces made of whole lines.
    pub fn feed(&mut self, data: &[u8], mut each: impl FnMut(&[u8])) {
        let mut rest = data;
        if !self.partial.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(at) => {
                    self.partial.extend_from_slice(&rest[..=at]);
                    each(&self.partial);
                    self.partial.clear();
                    rest = &rest[at + 1..];
                }
                None => {
                    self.partial.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        if let Some(last) = memchr::memrchr(b'\n', rest) {
            each(&rest[..=last]);
            rest = &rest[last + 1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= MAX_LINE {
            // An endless line: hand on a full piece, keep the rest.
            let mut piece = self.partial.drain(..MAX_LINE).collect::<Vec<u8>>();
            piece.push(b'\n');
            each(&piece);
        }
    }

    /// The stream ended: its unfinished last line, with a newline added.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.partial.is_empty() {
            return None;
        }
        let mut last = std::mem::take(&mut self.partial);
        last.push(b'\n');
        Some(last)
    }
}

/// Each line of a piece of whole lines, without its newline.
pub fn each_line(lines: &[u8], mut each: impl FnMut(&[u8])) {
    for line in lines.strip_suffix(b"\n").unwrap_or(lines).split(|b| *b == b'\n') {
        each(line);
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

fn colour_wanted(fd: std::os::fd::BorrowedFd<'static>) -> bool {
    let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_colour && crate::sys::isatty(fd)
}

impl Output {
    /// `names` are every service name that may print (for the common width).
    pub fn new<'a>(names: impl Iterator<Item = &'a str>) -> Output {
        Output::with_channels(
            names,
            Channel::new(crate::sys::standard_fd(1), "stdout"),
            Channel::new(crate::sys::standard_fd(2), "stderr"),
        )
    }

    fn with_channels<'a>(names: impl Iterator<Item = &'a str>, stdout: Channel, stderr: Channel) -> Output {
        let width = names.map(|n| n.chars().count()).max().unwrap_or(0).max(4);
        let mut output = Output {
            width,
            colour_stdout: colour_wanted(crate::sys::standard_fd(1)),
            colour_stderr: colour_wanted(crate::sys::standard_fd(2)),
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

    /// Queue each of these whole lines (see [`LineFramer`]) with `prefix`.
    pub fn lines(&mut self, prefix: &Prefix, lines: &[u8], dest: Dest) {
        let prefix_bytes = prefix.of(dest);
        let channel = self.channel(dest);
        if channel.discards() {
            return;
        }
        let mut rest = lines;
        while let Some(at) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(at + 1);
            channel.line(&[prefix_bytes, line]);
            rest = tail;
        }
    }

    /// One of tend's own messages, to stderr.
    pub fn event(&mut self, message: &str) {
        self.stderr.line(&[&self.tend_prefix.stderr, message.as_bytes(), b"\n"]);
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.stdout.pending() + self.stderr.pending()
    }

    /// Lines dropped from this stream since tend started (its reader was too slow).
    pub fn dropped_lines(&self, dest: Dest) -> u64 {
        match dest {
            Dest::Stdout => self.stdout.dropped_total(),
            Dest::Stderr => self.stderr.dropped_total(),
        }
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

    fn framed(framer: &mut LineFramer, data: &[u8]) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        framer.feed(data, |piece| pieces.push(piece.to_vec()));
        pieces
    }

    #[test]
    fn the_framer_hands_on_whole_lines_and_keeps_the_tail() {
        let mut framer = LineFramer::default();
        assert_eq!(framed(&mut framer, b"one\ntw"), vec![b"one\n".to_vec()]);
        assert_eq!(framed(&mut framer, b"o\nthree\nfo"), vec![b"two\n".to_vec(), b"three\n".to_vec()]);
        assert_eq!(framed(&mut framer, b"ur"), Vec::<Vec<u8>>::new());
        assert_eq!(framed(&mut framer, b"\n5\n6\n"), vec![b"four\n".to_vec(), b"5\n6\n".to_vec()]);
        assert_eq!(framer.finish(), None);
        framed(&mut framer, b"last");
        assert_eq!(framer.finish(), Some(b"last\n".to_vec()));
        let mut lines = Vec::new();
        each_line(b"a\n\nb\n", |line| lines.push(line.to_vec()));
        assert_eq!(lines, vec![b"a".to_vec(), b"".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn lines_get_the_padded_prefix() {
        let mut out = output();
        let prefix = out.prefix("web", 0);
        out.lines(&prefix, b"one\ntwo\n", Dest::Stdout);
        assert_eq!(out.stdout.take_queued(), b"web    | one\nweb    | two\n");
    }

    #[test]
    fn endless_lines_are_split_not_dropped() {
        let mut framer = LineFramer::default();
        let data = vec![b'x'; MAX_LINE + 10];
        let pieces = framed(&mut framer, &data);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].len(), MAX_LINE + 1);
        assert_eq!(framer.partial.len(), 10);
    }

    #[test]
    fn events_use_the_tend_prefix() {
        let mut out = output();
        out.event("web: started (pid 12)");
        assert_eq!(out.stderr.take_queued(), b"tend   | web: started (pid 12)\n");
    }
}
