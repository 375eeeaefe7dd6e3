//! A unit's log file: appended, size-rotated, optionally timestamped.
//!
//! Owns the bytes after they left a service's pipe and were chosen for the
//! file: buffering, rotation, timestamps, and the file's errors (recorded,
//! reported once, retried).
//!
//! Must not block the single-threaded loop: no sleeping, no threads, no
//! blocking socket, no clock reads (the loop passes the time in), no panics on
//! I/O errors. Must not read pipes, know about processes or units, or print:
//! the caller hands it bytes and asks for errors to report.
//!
//! A log file's folder may be writable by the service's user, and tend runs
//! as root: every open (at start, after a rotation, on a retry, on
//! [`FileSink::reopen`]) goes through `FileSink::open_file`, which opens
//! the file relative to a descriptor of its folder (walked without
//! following links others could have planted, `sys::paths::open_dir`) with
//! `O_NOFOLLOW`, and keeps it only if `fstat` says it is a regular file with
//! one link; rotation renames within that same folder descriptor. So a
//! service can replace its log file with a link to `/etc/shadow` or into
//! `/etc/cron.d` and gain nothing. The file is written as root rather than
//! as the service's user: see the README's "Security model".

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::sys::paths;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tend_core::text::error_text;

use memchr::{memchr, memrchr};

/// Bytes gathered before one write(2): big blocks are what makes the file
/// path as fast as `cat > file`.
const BUFFER: usize = 256 * 1024;

/// With rotation on and the file within this many bytes of `max_size`, a
/// trailing partial line is kept in memory (up to this size) instead of
/// being written at `flush`, so that a line whose end arrives later can
/// still move whole into the next file. A longer partial line is written
/// out; if it then overflows the file, it overflows it (a line is split
/// across files never, but a file may exceed `max_size` by a line longer
/// than this). Must stay well below `BUFFER` so a full buffer frees room.
const HOLD_MAX: usize = 64 * 1024;

/// How long a failing file is left alone before opening or rotating again.
const RETRY: Duration = Duration::from_secs(1);

/// The latest time humantime can format (end of year 9999).
pub(super) const LAST_STAMP_SECS: u64 = 253_402_300_799;

/// Where and how a unit's output is written to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkConfig {
    pub path: PathBuf,
    /// Rotate before the file would grow past this many bytes.
    pub max_size: Option<u64>,
    /// Rotated files kept (`path.1` newest … `path.{keep}` oldest); 0 truncates instead.
    pub keep: u32,
    /// Start every line with an RFC 3339 UTC timestamp with microseconds.
    pub timestamps: bool,
}

/// Where the current line of the file started, for rotation at line boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// The next byte starts a line.
    LineStart,
    /// A partial line starts at this offset in `buf`: it can still move to the next file.
    Buffered(usize),
    /// A partial line has reached the file: it must be finished there.
    Written,
}

/// Which operation failed, so that only its success clears the error (a
/// write that succeeds must not hide a rotation that keeps failing, or the
/// error would be reported anew every second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failing {
    Open,
    Write,
    Rotate,
}

/// A unit's log file. See the module header for the rules it follows.
#[derive(Debug)]
pub struct FileSink {
    config: FileSinkConfig,
    /// The file's folder and name, split once (`None`: the path names no file).
    place: Option<(PathBuf, OsString)>,
    /// The folder, opened once and kept for every open and rename in it.
    dir: Option<OwnedFd>,
    file: Option<File>,
    /// Bytes in the current file on disk, counted rather than stat'ed.
    written: u64,
    buf: Vec<u8>,
    tail: Tail,
    /// Whether the input stream (before timestamps) is in the middle of a line.
    stream_mid_line: bool,
    /// Reused output of timestamping, so steady state allocates nothing.
    scratch: Vec<u8>,
    stamp: [u8; 32],
    stamp_len: usize,
    stamp_time: Option<SystemTime>,
    /// The latest time passed to `write`: the only clock this sink knows.
    now: SystemTime,
    error: Option<(Failing, String)>,
    reported: bool,
    open_failed_at: Option<SystemTime>,
    rotate_failed_at: Option<SystemTime>,
    /// Lines dropped since the file last took a write (disk full, an open
    /// that fails), reported once writing resumes.
    dropped_pending: u64,
    /// Lines dropped in all.
    dropped_total: u64,
    /// Writing resumed after this many lines were dropped: to report.
    resumed_after: Option<u64>,
    /// A failed write left part of a line in the file and it could not be
    /// cut off: the next write ends that line first.
    mid_line_on_disk: bool,
}

impl FileSink {
    /// Open (create, append) the file at once, so that a bad path shows up
    /// in `error()` before any output; a failure is retried on later writes.
    pub fn new(config: FileSinkConfig) -> FileSink {
        let mut sink = FileSink::unopened(config);
        sink.open();
        sink
    }

    fn unopened(config: FileSinkConfig) -> FileSink {
        let place = paths::split_file(&config.path);
        FileSink {
            config,
            place,
            dir: None,
            file: None,
            written: 0,
            buf: Vec::with_capacity(BUFFER),
            tail: Tail::LineStart,
            stream_mid_line: false,
            scratch: Vec::new(),
            stamp: [0; 32],
            stamp_len: 0,
            stamp_time: None,
            now: UNIX_EPOCH,
            error: None,
            reported: false,
            open_failed_at: None,
            rotate_failed_at: None,
            dropped_pending: 0,
            dropped_total: 0,
            resumed_after: None,
            mid_line_on_disk: false,
        }
    }

    /// Lines dropped in all (the file could not take them): a metric.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped_total
    }

    /// Writing resumed after lines were dropped: how many, once.
    pub fn take_resumed(&mut self) -> Option<u64> {
        self.resumed_after.take()
    }

    fn drop_lines(&mut self, data: &[u8]) {
        let lines = count_lines(data);
        self.dropped_pending += lines;
        self.dropped_total += lines;
    }

    /// Queue a chunk of one output stream, read at `time`. It may hold many
    /// lines and end mid-line. Dropped while the file is failing.
    pub fn write(&mut self, time: SystemTime, data: &[u8]) {
        self.now = time;
        if data.is_empty() {
            return;
        }
        let mid_line = self.stream_mid_line;
        self.stream_mid_line = data[data.len() - 1] != b'\n';
        if self.file.is_none() {
            // Failing: try again at most once per RETRY, else drop (memory
            // must not grow while the disk is full), counting the lines.
            if !due(self.open_failed_at, self.now) || !self.open() {
                self.drop_lines(data);
                return;
            }
        }
        if self.config.timestamps {
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            self.format_stamp(time);
            stamp_lines(&self.stamp[..self.stamp_len], mid_line, data, &mut out);
            self.append(&out);
            self.scratch = out;
        } else {
            self.append(data);
        }
    }

    /// Write out what is buffered (once per loop iteration). With rotation
    /// on, a trailing partial line may stay buffered: see `HOLD_MAX`.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.spill();
        }
    }

    /// Open the path anew (after logrotate moved the file away): what is
    /// buffered goes to the old file first, new lines to the new one.
    /// Returns the error, if the new file cannot be opened (also recorded
    /// and retried like any open failure).
    pub fn reopen(&mut self, time: SystemTime) -> Result<(), String> {
        self.now = time;
        if !self.buf.is_empty() && self.file.is_some() {
            self.write_out(self.buf.len());
        }
        self.file = None;
        // The folder is walked again too (logrotate may have moved it).
        self.dir = None;
        self.written = 0;
        if self.open() {
            Ok(())
        } else {
            Err(self.error().unwrap_or_default().to_string())
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// The current problem, the first time it is asked after it started.
    pub fn take_new_error(&mut self) -> Option<String> {
        match &self.error {
            Some((_, message)) if !self.reported => {
                self.reported = true;
                Some(message.clone())
            }
            _ => None,
        }
    }

    /// The current problem, for `tend status`; None when healthy.
    pub fn error(&self) -> Option<&str> {
        self.error.as_ref().map(|(_, message)| message.as_str())
    }

    fn fail(&mut self, kind: Failing, message: String) {
        if self.error.is_none() {
            self.reported = false;
        }
        self.error = Some((kind, message));
    }

    fn recover(&mut self, kind: Failing) {
        if matches!(self.error, Some((k, _)) if k == kind) {
            self.error = None;
            self.reported = false;
        }
    }

    /// Open the file for appending; true on success.
    fn open(&mut self) -> bool {
        match self.open_file() {
            Ok(file) => {
                // The only stat: from here on the size is counted.
                self.written = file.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(file);
                self.open_failed_at = None;
                self.recover(Failing::Open);
                true
            }
            Err(e) => {
                self.file = None;
                // Walk the folder again on the next try: it may appear, or
                // be replaced, meanwhile.
                self.dir = None;
                self.open_failed_at = Some(self.now);
                let message = format!("cannot open {}: {}", self.config.path.display(), error_text(&e));
                self.fail(Failing::Open, message);
                false
            }
        }
    }

    /// The one way the log file is opened: `openat` on the folder's
    /// descriptor (opened on first use), `O_NOFOLLOW`, and only a regular
    /// file with one link (`sys::paths::open_log_file`). Close-on-exec:
    /// services never inherit it.
    fn open_file(&mut self) -> io::Result<File> {
        let Some((_, name)) = &self.place else {
            return Err(io::Error::other("it names a folder, not a file"));
        };
        let name = name.clone();
        let dir = self.folder()?;
        paths::open_log_file(dir, &name)
    }

    /// The folder's descriptor, walked and opened on first use.
    fn folder(&mut self) -> io::Result<&OwnedFd> {
        if self.dir.is_none() {
            let Some((folder, _)) = &self.place else {
                return Err(io::Error::other("it names a folder, not a file"));
            };
            self.dir = Some(paths::open_dir(folder)?);
        }
        Ok(self.dir.as_ref().expect("just opened"))
    }

    /// Append to the logical file (disk + buffer), rotating at line
    /// boundaries when `max_size` would be exceeded.
    fn append(&mut self, mut data: &[u8]) {
        let Some(max) = self.config.max_size else {
            self.push(data);
            return;
        };
        while !data.is_empty() {
            let size = self.written + self.buf.len() as u64;
            let room = max.saturating_sub(size);
            if data.len() as u64 <= room || !due(self.rotate_failed_at, self.now) {
                self.push(data);
                return;
            }
            // `room < data.len()`, so it fits in usize.
            let room = room as usize;
            let line_begin = match self.tail {
                Tail::Written => None,
                Tail::Buffered(at) => Some(at),
                Tail::LineStart => Some(self.buf.len()),
            };
            match line_begin {
                Some(line_begin) => {
                    // Every whole line that fits goes into this file.
                    if let Some(end) = memrchr(b'\n', &data[..room]) {
                        self.push(&data[..=end]);
                        data = &data[end + 1..];
                    } else if self.written + line_begin as u64 > 0 {
                        // The current line does not fit: it starts the next file.
                        self.rotate(line_begin);
                    } else {
                        // A line longer than max_size, alone in its file.
                        data = self.push_through_newline(data);
                    }
                }
                // The file already holds the start of this line: finish it there.
                None => data = self.push_through_newline(data),
            }
        }
    }

    /// Push `data` up to and including its first newline; return the rest.
    fn push_through_newline<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let end = memchr(b'\n', data).map_or(data.len(), |at| at + 1);
        self.push(&data[..end]);
        &data[end..]
    }

    /// Copy into the buffer, writing out full blocks. No per-line work:
    /// one memrchr per call finds where a trailing partial line starts.
    fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let base = self.buf.len();
        self.tail = match memrchr(b'\n', data) {
            Some(at) if at + 1 == data.len() => Tail::LineStart,
            Some(at) => Tail::Buffered(base + at + 1),
            None if self.tail == Tail::LineStart => Tail::Buffered(base),
            None => self.tail,
        };
        let mut rest = data;
        while !rest.is_empty() {
            let room = BUFFER.saturating_sub(self.buf.len());
            if room == 0 {
                self.spill();
                continue;
            }
            let n = room.min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
    }

    /// Write out the buffer, keeping a short trailing partial line back
    /// while it may still have to move to the next file.
    fn spill(&mut self) {
        let size = self.written + self.buf.len() as u64;
        // Far from max_size, a line that will not fit is longer than
        // HOLD_MAX anyway: write it all. Holding back costs (unaligned
        // writes, ~25% throughput), so only near the end of a file.
        let near_end = self.config.max_size.is_some_and(|max| max.saturating_sub(size) < HOLD_MAX as u64);
        let hold = match self.tail {
            Tail::Buffered(at) => {
                near_end
                    && at <= self.buf.len()
                    && self.buf.len() - at <= HOLD_MAX
                    && self.written + at as u64 > 0
            }
            _ => false,
        };
        let end = match self.tail {
            Tail::Buffered(at) if hold => at,
            _ => self.buf.len(),
        };
        self.write_out(end);
    }

    /// Write `buf[..end]` to the file and remove it from the buffer. What
    /// cannot be written is dropped (and counted): the service keeps running
    /// and tend's memory stays bounded. Whole lines or nothing: after a
    /// short write (a full disk), the part of a line that got out is cut off
    /// the file again, so the next line written does not glue onto it.
    fn write_out(&mut self, end: usize) {
        if end == 0 {
            return;
        }
        if self.file.is_none() && due(self.open_failed_at, self.now) {
            self.open();
        }
        let Some(file) = &mut self.file else {
            let dropped = self.buf[..end].to_vec();
            self.drop_lines(&dropped);
            self.discard(end);
            return;
        };
        let mut result = Ok(());
        if self.mid_line_on_disk {
            let (done, ended) = write_fully(file, b"\n");
            self.written += done as u64;
            self.mid_line_on_disk = done == 0;
            result = ended;
        }
        let data = &self.buf[..end];
        let mut kept = 0;
        if result.is_ok() {
            let (done, written) = write_fully(file, data);
            kept = done;
            result = written;
            if result.is_err() && done > 0 {
                // The file ends with `done` bytes of this block: keep its
                // whole lines only.
                let whole = memrchr(b'\n', &data[..done]).map_or(0, |at| at + 1);
                if whole < done {
                    let cut = file.metadata().map(|m| m.len().saturating_sub((done - whole) as u64));
                    match cut.and_then(|size| file.set_len(size)) {
                        Ok(()) => kept = whole,
                        // Cannot cut it: end that line before the next one.
                        Err(_) => self.mid_line_on_disk = true,
                    }
                }
            }
        }
        self.written += kept as u64;
        match result {
            Ok(()) => {
                self.recover(Failing::Write);
                if self.dropped_pending > 0 {
                    self.resumed_after = Some(self.dropped_pending);
                    self.dropped_pending = 0;
                }
            }
            Err(e) => {
                let lost = self.buf[kept..end].to_vec();
                self.drop_lines(&lost);
                // Reopen on retry: it also cures a descriptor that went bad (EIO).
                self.file = None;
                self.open_failed_at = Some(self.now);
                let message = format!("cannot write {}: {}", self.config.path.display(), error_text(&e));
                self.fail(Failing::Write, message);
            }
        }
        self.discard(end);
    }

    /// Remove `buf[..end]`, which is written or dropped.
    fn discard(&mut self, end: usize) {
        self.buf.drain(..end);
        self.tail = match self.tail {
            Tail::Buffered(at) if at < end => Tail::Written,
            Tail::Buffered(at) => Tail::Buffered(at - end),
            other => other,
        };
    }

    /// Write `buf[..line_begin]` to the current file, then rotate; the rest
    /// of the buffer (a partial line) goes to the new file.
    fn rotate(&mut self, line_begin: usize) {
        self.write_out(line_begin);
        let result = if self.config.keep == 0 { self.truncate() } else { self.shift_files() };
        match result {
            Ok(()) => {
                self.rotate_failed_at = None;
                self.recover(Failing::Rotate);
            }
            Err(message) => {
                // Keep appending to the current file rather than lose lines;
                // try again after RETRY.
                self.rotate_failed_at = Some(self.now);
                self.fail(Failing::Rotate, message);
            }
        }
    }

    fn truncate(&mut self) -> Result<(), String> {
        if self.file.is_none() && !self.open() {
            return Ok(()); // Nothing to truncate; the open error is recorded.
        }
        self.written = 0;
        match &self.file {
            Some(file) => file
                .set_len(0)
                .map_err(|e| format!("cannot truncate {}: {}", self.config.path.display(), error_text(&e))),
            None => Ok(()),
        }
    }

    /// `path.{n-1}` → `path.{n}` … `path` → `path.1`, then reopen `path`,
    /// every rename relative to the folder's descriptor.
    fn shift_files(&mut self) -> Result<(), String> {
        let keep = self.config.keep;
        let Some((_, name)) = self.place.clone() else {
            return Err(format!(
                "cannot rotate {}: it names a folder, not a file",
                self.config.path.display()
            ));
        };
        let shown = self.config.path.clone();
        let dir =
            self.folder().map_err(|e| format!("cannot rotate {}: {}", shown.display(), error_text(&e)))?;
        // Shift only up to the first free slot (or the oldest kept, which is
        // overwritten): a rotation costs as many renames as there are files,
        // not `keep`.
        let mut last = 1;
        while last < keep && paths::exists_in(dir, &numbered_name(&name, last)) {
            last += 1;
        }
        let rename = |from: &OsString, to: &OsString| {
            paths::rename_in(dir, from, to).map_err(|e| {
                let folder = shown.parent().unwrap_or(Path::new(""));
                format!(
                    "cannot rename {} to {}: {}",
                    folder.join(from).display(),
                    folder.join(to).display(),
                    error_text(&e)
                )
            })
        };
        for n in (1..last).rev() {
            rename(&numbered_name(&name, n), &numbered_name(&name, n + 1))?;
        }
        rename(&name, &numbered_name(&name, 1))?;
        // The old file is complete; errors opening the new one are the
        // open path's (recorded, retried).
        self.file = None;
        self.written = 0;
        self.open();
        Ok(())
    }

    /// The timestamp prefix for `time`, formatted once per distinct time.
    fn format_stamp(&mut self, time: SystemTime) {
        if self.stamp_time == Some(time) {
            return;
        }
        // humantime panics before 1970 and cannot go past year 9999.
        let last = UNIX_EPOCH + Duration::from_secs(LAST_STAMP_SECS);
        let clamped = time.clamp(UNIX_EPOCH, last);
        let mut cursor: &mut [u8] = &mut self.stamp[..];
        let ok = write!(cursor, "{} ", humantime::format_rfc3339_micros(clamped)).is_ok();
        let left = cursor.len();
        self.stamp_len = if ok { self.stamp.len() - left } else { 0 };
        self.stamp_time = Some(time);
    }
}

impl Drop for FileSink {
    /// Whatever is still buffered, including a held partial line, is written.
    fn drop(&mut self) {
        if !self.buf.is_empty() && self.file.is_some() {
            self.write_out(self.buf.len());
        }
    }
}

/// Whether an operation that failed at `failed_at` may be tried at `now`.
/// A clock that went backwards also allows it, so a retry is never stuck.
fn due(failed_at: Option<SystemTime>, now: SystemTime) -> bool {
    match failed_at {
        None => true,
        Some(at) => now < at || at.checked_add(RETRY).is_none_or(|next| now >= next),
    }
}

/// Copy `data` into `out`, with `prefix` before each line start.
fn stamp_lines(prefix: &[u8], mut mid_line: bool, data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + prefix.len() * 4);
    let mut rest = data;
    while !rest.is_empty() {
        if !mid_line {
            out.extend_from_slice(prefix);
        }
        match memchr(b'\n', rest) {
            Some(at) => {
                out.extend_from_slice(&rest[..=at]);
                rest = &rest[at + 1..];
                mid_line = false;
            }
            None => {
                out.extend_from_slice(rest);
                break;
            }
        }
    }
}

/// write(2) until done or failed; how much got out either way.
fn write_fully(file: &mut File, data: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < data.len() {
        match file.write(&data[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

/// `name.n`.
fn numbered_name(name: &OsString, n: u32) -> OsString {
    let mut numbered = name.clone();
    numbered.push(format!(".{n}"));
    numbered
}

/// `path.n` (tests).
#[cfg(test)]
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Lines in `data`: its newlines, plus an unfinished last line.
fn count_lines(data: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', data).count() as u64;
    newlines + u64::from(data.last().is_some_and(|b| *b != b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Instant;

    fn at(secs: u64, micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)
    }

    fn config(path: &Path, max_size: Option<u64>, keep: u32, timestamps: bool) -> FileSinkConfig {
        FileSinkConfig { path: path.to_owned(), max_size, keep, timestamps }
    }

    /// xorshift64*: deterministic chunk sizes without a rand dependency.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    /// Rotated files oldest first, then the current one.
    fn files_in_order(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut n = 1;
        while numbered(path, n).exists() {
            n += 1;
        }
        let mut paths: Vec<PathBuf> = (1..n).rev().map(|i| numbered(path, i)).collect();
        paths.push(path.to_owned());
        paths.into_iter().filter(|p| p.exists()).map(|p| (p.clone(), fs::read(&p).unwrap())).collect()
    }

    #[test]
    fn appends_across_writes_and_creates_the_file_0640() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        fs::write(&path, b"old\n").unwrap();
        let mut sink = FileSink::new(config(&path, None, 0, false));
        sink.write(at(1, 0), b"one\ntw");
        sink.write(at(1, 0), b"o\n");
        sink.flush();
        assert_eq!(fs::read(&path).unwrap(), b"old\none\ntwo\n");
        assert_eq!(sink.error(), None);

        use std::os::unix::fs::PermissionsExt;
        let fresh = dir.path().join("new.log");
        drop(FileSink::new(config(&fresh, None, 0, false)));
        let mode = fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        // The umask may only remove bits.
        assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    }

    #[test]
    fn timestamps_start_every_line_even_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let mut sink = FileSink::new(config(&path, None, 0, true));
        let t1 = at(1_795_698_245, 123_456); // 2026-11-26T13:04:05.123456Z
        let t2 = at(1_795_698_246, 7);
        sink.write(t1, b"a\nb");
        sink.write(t2, b"c\nd\n\n");
        sink.write(t2, b"e\n");
        sink.flush();
        let text = String::from_utf8(fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            text,
            "2026-11-26T13:04:05.123456Z a\n\
             2026-11-26T13:04:05.123456Z bc\n\
             2026-11-26T13:04:06.000007Z d\n\
             2026-11-26T13:04:06.000007Z \n\
             2026-11-26T13:04:06.000007Z e\n"
        );
    }

    #[test]
    fn timestamps_out_of_range_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let mut sink = FileSink::new(config(&path, None, 0, true));
        sink.write(UNIX_EPOCH - Duration::from_secs(10), b"before\n");
        sink.write(UNIX_EPOCH + Duration::from_secs(LAST_STAMP_SECS + 1000), b"after\n");
        sink.flush();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "1970-01-01T00:00:00.000000Z before\n9999-12-31T23:59:59.000000Z after\n"
        );
    }

    #[test]
    fn rotation_loses_and_duplicates_no_line_and_respects_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let max = 1 << 20;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut data = Vec::with_capacity(52 << 20);
        let mut count = 0u64;
        while data.len() < 50 << 20 {
            let filler = rng.below(90) as usize;
            writeln!(data, "{count} {}", "x".repeat(filler)).unwrap();
            count += 1;
        }
        let mut sink = FileSink::new(config(&path, Some(max), 100, false));
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(200_000) as usize).min(rest.len());
            sink.write(at(1, 0), &rest[..n]);
            if rng.below(2) == 0 {
                sink.flush();
            }
            rest = &rest[n..];
        }
        sink.flush();
        drop(sink);

        let files = files_in_order(&path);
        assert!(files.len() >= 50, "only {} files", files.len());
        let mut next = 0u64;
        for (i, (name, content)) in files.iter().enumerate() {
            assert!(content.ends_with(b"\n"), "{} ends mid-line", name.display());
            if i + 1 < files.len() {
                assert!(content.len() as u64 <= max, "{} has {} bytes", name.display(), content.len());
                // Rotation happens only when a line does not fit.
                assert!(content.len() as u64 > max - 100, "{} has {} bytes", name.display(), content.len());
            }
            for line in content.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let number: u64 =
                    std::str::from_utf8(line.split(|b| *b == b' ').next().unwrap()).unwrap().parse().unwrap();
                assert_eq!(number, next, "in {}", name.display());
                next += 1;
            }
        }
        assert_eq!(next, count);
    }

    #[test]
    fn a_line_longer_than_max_size_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.log");
        let mut sink = FileSink::new(config(&path, Some(100), 10, false));
        let long = format!("{}\n", "L".repeat(250));
        sink.write(at(1, 0), b"short 1\n");
        // The long line arrives in pieces, flushed in between.
        for piece in long.as_bytes().chunks(60) {
            sink.write(at(1, 0), piece);
            sink.flush();
        }
        sink.write(at(1, 0), b"short 2\n");
        sink.flush();
        let files = files_in_order(&path);
        let contents: Vec<&[u8]> = files.iter().map(|(_, c)| c.as_slice()).collect();
        assert_eq!(contents, [b"short 1\n".as_slice(), long.as_bytes(), b"short 2\n"]);
    }

    #[test]
    fn a_partial_line_flushed_near_the_limit_still_moves_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.log");
        let mut sink = FileSink::new(config(&path, Some(100), 1, false));
        let first = format!("{}\n", "a".repeat(89));
        sink.write(at(1, 0), first.as_bytes());
        sink.write(at(1, 0), b"bbbbb");
        sink.flush(); // the loop flushes while the line is incomplete…
        sink.write(at(1, 0), b"bbbbbb\n"); // …and its end no longer fits
        sink.flush();
        assert_eq!(fs::read(numbered(&path, 1)).unwrap(), first.as_bytes());
        assert_eq!(fs::read(&path).unwrap(), b"bbbbbbbbbbb\n");
    }

    #[test]
    fn a_line_already_started_on_disk_is_finished_before_rotating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        // No rotation configured while the partial line is written…
        let mut sink = FileSink::new(config(&path, Some(20), 3, false));
        sink.write(at(1, 0), b"0123456789\n");
        // A partial line too long to hold back (beyond HOLD_MAX) reaches the disk.
        let partial = vec![b'p'; HOLD_MAX + 1];
        sink.tail = Tail::LineStart;
        sink.config.max_size = None;
        sink.write(at(1, 0), &partial);
        sink.flush();
        sink.config.max_size = Some(20);
        sink.write(at(1, 0), b"end\nnext\n");
        sink.flush();
        let files = files_in_order(&path);
        assert_eq!(files.len(), 2);
        let mut first = b"0123456789\n".to_vec();
        first.extend_from_slice(&partial);
        first.extend_from_slice(b"end\n");
        assert_eq!(files[0].1, first);
        assert_eq!(files[1].1, b"next\n");
    }

    #[test]
    fn keep_limits_the_rotated_files_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.log");
        let mut sink = FileSink::new(config(&path, Some(10), 2, false));
        for i in 0..6 {
            sink.write(at(1, 0), format!("line {i}\n").as_bytes());
        }
        sink.flush();
        assert_eq!(fs::read(&path).unwrap(), b"line 5\n");
        assert_eq!(fs::read(numbered(&path, 1)).unwrap(), b"line 4\n");
        assert_eq!(fs::read(numbered(&path, 2)).unwrap(), b"line 3\n");
        assert!(!numbered(&path, 3).exists());
    }

    #[test]
    fn keep_zero_truncates_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.log");
        let mut sink = FileSink::new(config(&path, Some(10), 0, false));
        sink.write(at(1, 0), b"aaaa\nbbbb\n");
        sink.flush();
        sink.write(at(1, 0), b"cccc\n");
        sink.flush();
        assert_eq!(fs::read(&path).unwrap(), b"cccc\n");
        assert!(!numbered(&path, 1).exists());
    }

    #[test]
    fn an_existing_oversized_file_is_rotated_on_the_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.log");
        fs::write(&path, vec![b'x'; 30]).unwrap();
        let mut sink = FileSink::new(config(&path, Some(20), 1, false));
        sink.write(at(1, 0), b"new\n");
        sink.flush();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");
        assert_eq!(fs::read(numbered(&path, 1)).unwrap().len(), 30);
    }

    #[test]
    fn disk_full_is_reported_once_counted_and_memory_stays_bounded() {
        // /dev/full: every write fails with ENOSPC. It is not a regular file,
        // so `open_file` would refuse it: the test hands the sink the open
        // descriptor itself, to drive the write path.
        let full = fs::OpenOptions::new().append(true).open("/dev/full").unwrap();
        let mut sink = FileSink::unopened(config(Path::new("/dev/full"), None, 0, false));
        sink.file = Some(full);
        let chunk = "y".repeat(99) + "\n";
        let chunk = chunk.repeat(600);
        for i in 0..200 {
            sink.write(at(10, i), chunk.as_bytes());
            sink.flush();
            assert!(sink.buf.len() <= BUFFER);
        }
        let first = sink.take_new_error().expect("the failure is reported");
        assert_eq!(first, "cannot write /dev/full: No space left on device");
        assert_eq!(sink.dropped_lines(), 200 * 600, "every line is counted as dropped");
        // A retry a second later fails again: not reported again.
        sink.write(at(12, 0), chunk.as_bytes());
        sink.flush();
        assert_eq!(sink.take_new_error(), None);
        assert!(sink.error().is_some());
        assert_eq!(sink.dropped_lines(), 201 * 600);
        assert_eq!(sink.take_resumed(), None, "nothing resumed");
    }

    #[test]
    fn lines_dropped_while_the_file_cannot_be_opened_are_reported_when_it_can() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let path = logs.join("u.log");
        let mut sink = FileSink::new(config(&path, None, 0, false));
        sink.write(at(100, 0), b"lost 1\nlost 2\n");
        sink.write(at(100, 1), b"lost 3\n");
        fs::create_dir(&logs).unwrap();
        sink.write(at(102, 0), b"kept\n");
        sink.flush();
        assert_eq!(fs::read(&path).unwrap(), b"kept\n");
        assert_eq!(sink.take_resumed(), Some(3));
        assert_eq!(sink.take_resumed(), None);
        assert_eq!(sink.dropped_lines(), 3);
    }

    #[test]
    fn reopen_follows_an_outside_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let mut sink = FileSink::new(config(&path, None, 0, false));
        sink.write(at(1, 0), b"before\n");
        sink.flush();
        fs::rename(&path, dir.path().join("r.log.old")).unwrap();
        sink.write(at(1, 0), b"still old\n");
        assert!(sink.reopen(at(1, 0)).is_ok());
        sink.write(at(1, 0), b"after\n");
        sink.flush();
        assert_eq!(fs::read(dir.path().join("r.log.old")).unwrap(), b"before\nstill old\n");
        assert_eq!(fs::read(&path).unwrap(), b"after\n");
    }

    #[test]
    fn a_planted_link_is_never_written_through_nor_rotated_into() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, b"root only\n").unwrap();
        let path = dir.path().join("web.log");
        std::os::unix::fs::symlink(&secret, &path).unwrap();
        let mut sink = FileSink::new(config(&path, Some(16), 2, false));
        let error = sink.take_new_error().expect("refused");
        assert!(error.contains("symbolic link"), "{error}");
        for _ in 0..10 {
            sink.write(at(200, 0), b"evil line\n");
            sink.flush();
        }
        assert_eq!(fs::read(&secret).unwrap(), b"root only\n");
        // The service removes its link: tend creates a regular file; then it
        // plants a link where the next rotation renames to: moved, not followed.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&secret, numbered(&path, 1)).unwrap();
        sink.write(at(202, 0), b"0123456789\n");
        sink.write(at(202, 0), b"abcdefghij\n");
        sink.flush();
        assert_eq!(fs::read(&secret).unwrap(), b"root only\n");
        assert!(fs::symlink_metadata(numbered(&path, 2)).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&path).unwrap(), b"abcdefghij\n");
    }

    #[test]
    fn open_failure_is_retried_once_a_second_and_recovery_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let path = logs.join("u.log");
        let mut sink = FileSink::new(config(&path, Some(16), 1, false));
        let message = sink.take_new_error().expect("reported");
        assert!(
            message.starts_with("cannot open ") && message.ends_with("No such file or directory"),
            "{message}"
        );
        assert_eq!(sink.take_new_error(), None);

        sink.write(at(100, 0), b"lost 1\n"); // retried: still missing
        fs::create_dir(&logs).unwrap();
        sink.write(at(100, 500_000), b"lost 2\n"); // too soon to retry
        sink.flush();
        assert!(!path.exists());
        assert!(sink.error().is_some());
        sink.write(at(101, 100_000), b"kept 1\n");
        sink.flush();
        assert_eq!(sink.error(), None);
        assert_eq!(sink.take_new_error(), None);
        assert_eq!(fs::read(&path).unwrap(), b"kept 1\n");

        // Fails anew (the directory goes away, rotation cannot reopen): reported again.
        fs::remove_dir_all(&logs).unwrap();
        sink.write(at(102, 0), b"kept 2\nlost 3\n");
        sink.flush();
        assert!(sink.take_new_error().expect("reported anew").starts_with("cannot open "));
    }

    #[test]
    fn a_clock_going_backwards_does_not_stop_retries() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let path = logs.join("u.log");
        let mut sink = FileSink::new(config(&path, None, 0, false));
        sink.write(at(1000, 0), b"lost\n");
        fs::create_dir(&logs).unwrap();
        sink.write(at(500, 0), b"kept\n");
        sink.flush();
        assert_eq!(fs::read(&path).unwrap(), b"kept\n");
    }

    /// 200 MiB of 100-byte lines in 64 KiB chunks: FileSink against plain
    /// write(2) of the same chunks. `cargo test --release -- --ignored --nocapture file_sink_throughput`
    #[test]
    #[ignore]
    fn file_sink_throughput() {
        const CHUNK: usize = 64 * 1024;
        const TOTAL: usize = 200 << 20;
        // 25 chunks hold exactly 16384 lines of 100 bytes: the pattern repeats cleanly.
        let mut pattern = Vec::with_capacity(25 * CHUNK);
        let mut n = 0;
        while pattern.len() < 25 * CHUNK {
            writeln!(pattern, "{n:099}").unwrap();
            n += 1;
        }
        let chunks = || pattern.chunks(CHUNK).cycle().take(TOTAL / CHUNK);
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let rate = |start: Instant| TOTAL as f64 / start.elapsed().as_secs_f64() / 1e9;

        for round in 0..3 {
            let path = dir.path().join("plain");
            let start = Instant::now();
            let mut file = File::create(&path).unwrap();
            for chunk in chunks() {
                file.write_all(chunk).unwrap();
            }
            drop(file);
            let plain = rate(start);
            fs::remove_file(&path).unwrap();

            let mut results = Vec::new();
            for (label, max_size, timestamps) in
                [("max_size 1 GiB", Some(1 << 30), false), ("plain", None, false), ("timestamps", None, true)]
            {
                let path = dir.path().join("sink");
                let start = Instant::now();
                let mut sink = FileSink::new(config(&path, max_size, 0, timestamps));
                for chunk in chunks() {
                    sink.write(at(1, 0), chunk);
                    sink.flush();
                }
                drop(sink);
                results.push(format!("{label}: {:.2} GB/s", rate(start)));
                assert!(fs::metadata(&path).unwrap().len() >= TOTAL as u64);
                fs::remove_file(&path).unwrap();
            }
            println!("round {round}: write(2) {plain:.2} GB/s; FileSink {}", results.join(", "));
        }
    }
}
