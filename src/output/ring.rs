//! The in-memory history of one service's output, for `tend logs`.
//!
//! Keeps the chunks as they were read from the pipes (one allocation per
//! read, no per-line work on the hot path) and cuts them into lines only
//! when someone asks. Bounded by a line count (the last `capacity` complete
//! lines are always there) and by bytes (so a service printing huge lines
//! cannot make tend grow without bound).

use super::Dest;
use std::collections::VecDeque;
use std::time::SystemTime;

pub const DEFAULT_LINES: usize = 1000;
/// The most bytes kept per service, whatever the line count.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

struct Chunk {
    time: SystemTime,
    dest: Dest,
    data: Box<[u8]>,
    newlines: usize,
    /// The stream's previous chunk ended without a newline.
    continues_line: bool,
}

pub struct LogRing {
    chunks: VecDeque<Chunk>,
    capacity: usize,
    newlines: usize,
    bytes: usize,
    /// Per stream: did the last chunk end mid-line?
    open_line: [bool; 2],
}

/// One line from the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    pub time: SystemTime,
    pub dest: Dest,
    pub line: Vec<u8>,
}

fn stream_index(dest: Dest) -> usize {
    match dest {
        Dest::Stdout => 0,
        Dest::Stderr => 1,
    }
}

impl LogRing {
    pub fn new(capacity: usize) -> LogRing {
        LogRing { chunks: VecDeque::new(), capacity, newlines: 0, bytes: 0, open_line: [false; 2] }
    }

    pub fn push(&mut self, time: SystemTime, dest: Dest, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let newlines = memchr::memchr_iter(b'\n', data).count();
        let index = stream_index(dest);
        let continues_line = self.open_line[index];
        self.open_line[index] = data.last() != Some(&b'\n');
        self.newlines += newlines;
        self.bytes += data.len();
        self.chunks.push_back(Chunk { time, dest, data: data.into(), newlines, continues_line });
        // Drop whole chunks from the front while what is left still holds
        // `capacity` whole lines (and always within the byte bound). The
        // slack of 2 covers a line per stream whose start goes with the
        // dropped chunk.
        while let Some(front) = self.chunks.front() {
            let over_lines = self.newlines - front.newlines >= self.capacity + 2;
            let over_bytes = self.bytes > MAX_BYTES && self.chunks.len() > 1;
            if !(over_lines || over_bytes) {
                break;
            }
            self.newlines -= front.newlines;
            self.bytes -= front.data.len();
            self.chunks.pop_front();
        }
    }

    /// The last `count` lines (both streams, in the order they were read).
    /// A final line without a newline yet is included.
    pub fn last_lines(&self, count: usize) -> Vec<HistoryLine> {
        let mut lines: Vec<HistoryLine> = Vec::new();
        // Per stream: the line being assembled, and whether its start was
        // dropped from the ring (then it is skipped, not shown cut).
        let mut partial: [Option<HistoryLine>; 2] = [None, None];
        let mut seen = [false; 2];
        for chunk in &self.chunks {
            let index = stream_index(chunk.dest);
            let mut data: &[u8] = &chunk.data;
            if !seen[index] {
                seen[index] = true;
                if chunk.continues_line {
                    match memchr::memchr(b'\n', data) {
                        Some(at) => data = &data[at + 1..],
                        None => continue,
                    }
                }
            }
            while !data.is_empty() {
                match memchr::memchr(b'\n', data) {
                    Some(at) => {
                        let mut line = partial[index].take().unwrap_or(HistoryLine {
                            time: chunk.time,
                            dest: chunk.dest,
                            line: Vec::new(),
                        });
                        line.line.extend_from_slice(&data[..at]);
                        lines.push(line);
                        data = &data[at + 1..];
                    }
                    None => {
                        partial[index]
                            .get_or_insert_with(|| HistoryLine {
                                time: chunk.time,
                                dest: chunk.dest,
                                line: Vec::new(),
                            })
                            .line
                            .extend_from_slice(data);
                        data = &[];
                    }
                }
            }
        }
        lines.extend(partial.into_iter().flatten());
        // Whole chunks are dropped, so more than `capacity` lines may be
        // held; the answer is the same whatever the chunking was.
        let skip = lines.len().saturating_sub(count.min(self.capacity));
        lines.drain(..skip);
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[HistoryLine]) -> Vec<String> {
        lines.iter().map(|l| String::from_utf8_lossy(&l.line).into_owned()).collect()
    }

    #[test]
    fn keeps_the_last_lines_across_chunks() {
        let mut ring = LogRing::new(3);
        let t = SystemTime::UNIX_EPOCH;
        ring.push(t, Dest::Stdout, b"a\nb\nc");
        ring.push(t, Dest::Stdout, b"d\ne\n");
        ring.push(t, Dest::Stdout, b"f\n");
        assert_eq!(texts(&ring.last_lines(3)), ["cd", "e", "f"]);
        assert_eq!(texts(&ring.last_lines(2)), ["e", "f"]);
        assert_eq!(texts(&ring.last_lines(10)), ["cd", "e", "f"], "never more than the capacity");
    }

    #[test]
    fn a_line_whose_start_was_dropped_is_skipped_not_cut() {
        let mut ring = LogRing::new(1);
        let t = SystemTime::UNIX_EPOCH;
        ring.push(t, Dest::Stdout, b"one\ntw");
        ring.push(t, Dest::Stdout, b"o\nthree\nfour\n");
        // The first chunk was dropped, and with it the start of "two": what
        // is left shows whole lines only ("o" is never shown as a line).
        assert_eq!(texts(&ring.last_lines(5)), ["four"]);
        assert_eq!(ring.chunks.len(), 1);
    }

    #[test]
    fn streams_are_framed_separately() {
        let mut ring = LogRing::new(10);
        let t = SystemTime::UNIX_EPOCH;
        ring.push(t, Dest::Stdout, b"out-");
        ring.push(t, Dest::Stderr, b"err\n");
        ring.push(t, Dest::Stdout, b"line\nlast");
        let lines = ring.last_lines(10);
        assert_eq!(texts(&lines), ["err", "out-line", "last"]);
        assert_eq!(lines[0].dest, Dest::Stderr);
    }

    #[test]
    fn bytes_are_bounded() {
        let mut ring = LogRing::new(1_000_000);
        let t = SystemTime::UNIX_EPOCH;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..200 {
            ring.push(t, Dest::Stdout, &chunk);
        }
        assert!(ring.bytes <= MAX_BYTES);
    }
}
