//! The server side of the control socket, as pieces the loop drives:
//! binding (with the stale-socket and already-running checks), peer
//! credentials, and bounded, non-blocking client connections.
//!
//! Must not block: every socket here is non-blocking, request lines are
//! bounded ([`proto::MAX_REQUEST`]), what is read per turn is bounded
//! ([`super::limits`]) and each client's output buffer is bounded
//! ([`MAX_CLIENT_BUFFER`]); a client that falls behind is told so and
//! dropped. Must not know about services: the loop answers requests.

use super::client::Client;
use super::proto::{self, Frame, HelloReply, LineReader, Reply, Request};
use mio::net::{UnixListener, UnixStream};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most a client may have queued and unread (a `logs -f` follower that
/// stopped reading); past it, it gets a `too_slow` error and is dropped.
pub const MAX_CLIENT_BUFFER: usize = 4 * 1024 * 1024;

/// The most events a follower may have queued and unread; past it, it gets
/// `{"event":"overflow"}` and is dropped. About 7,000 events: far more than
/// a burst of a large stack, far less than a reader that stopped reading
/// would cost if kept.
pub const MAX_EVENTS_BACKLOG: usize = 1024 * 1024;

/// A follower of events is written at most once per this: a stack in a
/// crash loop makes events every turn of the loop, and a write per turn to
/// each follower wakes each one per turn (20 followers of 100 crash loops:
/// 60,000 writes a second, where the pace allows 2,000). An event after a
/// quiet spell still goes out at once; one in a burst waits at most this.
pub const EVENTS_PACE: Duration = Duration::from_millis(10);

/// ...unless this much is queued for it: then it is written at once.
pub const EVENTS_BATCH: usize = 64 * 1024;

/// What a follower of `logs -f` follows.
#[derive(Debug, Clone)]
pub struct Following {
    /// These services (by their place in the supervisor).
    pub services: Vec<usize>,
    /// tend's own log too (`tend logs -f tend`).
    pub own: bool,
    /// Only this stream.
    pub stream: Option<proto::Stream>,
}

impl Following {
    pub fn wants(&self, service: usize, stream: proto::Stream) -> bool {
        self.services.contains(&service) && self.stream.is_none_or(|s| s == stream)
    }

    pub fn wants_own(&self) -> bool {
        self.own && self.stream.is_none_or(|s| s == proto::Stream::Stderr)
    }
}

/// What a follower of `events` follows.
#[derive(Debug, Clone)]
pub struct Watch {
    /// These services (by their place in the supervisor); `None`: every
    /// one, those a reload adds too.
    pub services: Option<Vec<usize>>,
    /// When events were last written to it (see [`EVENTS_PACE`]).
    pub written_at: tend_core::Time,
    /// A follower of every service reads the one [`EventLog`]: the place in
    /// it up to which this one has been written. `None`: its events are
    /// copied into its own queue (it follows some services only, or it was
    /// cut off).
    pub cursor: Option<u64>,
    /// The last byte written from the log was not a line's end.
    mid_line: bool,
}

impl Watch {
    /// A follower of `services`; one of every service reads `log` from
    /// where it ends now.
    pub fn new(services: Option<Vec<usize>>, now: tend_core::Time, log: &EventLog) -> Watch {
        let cursor = if services.is_none() { Some(log.end()) } else { None };
        Watch { services, written_at: now, cursor, mid_line: false }
    }
}

/// The event lines for the followers of every service, written once for
/// all of them. A copy per follower made the loop write each event into as
/// many buffers as there are followers, and every page it writes after a
/// fork is a copy-on-write fault while the child has not exec'd yet: with
/// 20 followers of 100 crash-looping services that was 35 more faults per
/// restart (130 instead of 96; now about 5 more) and 1.1 MiB more resident
/// memory, and the loop's CPU time per restart 1.3-1.46 times that without
/// followers (now about 1.13; bench/, issue 12). Each follower
/// keeps only its place ([`Watch::cursor`]); what all have taken is dropped.
#[derive(Debug, Default)]
pub struct EventLog {
    bytes: Vec<u8>,
    /// Where `bytes` starts, counted from the first event ever added.
    start: u64,
}

impl EventLog {
    /// Where the next line will start.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    pub fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
    }

    /// What there is from `at` on (nothing for a place already dropped).
    fn since(&self, at: u64) -> &[u8] {
        let from = at.saturating_sub(self.start).min(self.bytes.len() as u64) as usize;
        &self.bytes[from..]
    }

    /// Drop what every follower has taken (`oldest`: the place of the one
    /// furthest behind; `None`: no follower reads the log). The pages stay
    /// the same ones while followers keep up: the buffer is emptied in
    /// place, or its head cut once it is large.
    pub fn trim(&mut self, oldest: Option<u64>) {
        let taken = oldest.map_or(self.bytes.len() as u64, |at| at.saturating_sub(self.start)) as usize;
        let taken = taken.min(self.bytes.len());
        if taken == self.bytes.len() {
            self.start += taken as u64;
            self.bytes.clear();
            self.bytes.shrink_to(EVENTS_BATCH);
        } else if taken >= EVENTS_BATCH {
            self.bytes.drain(..taken);
            self.start += taken as u64;
        }
    }
}

impl Watch {
    pub fn wants(&self, service: usize) -> bool {
        self.services.as_ref().is_none_or(|s| s.contains(&service))
    }
}

/// Who may send commands: root, the supervisor's own uid, and members of
/// the socket group.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub own_uid: u32,
    pub group: Option<u32>,
}

#[derive(Debug)]
pub enum BindError {
    /// Another supervisor answers there.
    AlreadyRunning {
        pid: Option<i32>,
    },
    Io(String),
}

pub struct Listener {
    pub listener: UnixListener,
    pub path: PathBuf,
    pub access: Access,
    /// `(device, inode)` of the socket we bound: removed at exit only if
    /// the path still names it (another tend may have bound there since).
    bound: Option<(u64, u64)>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if self.bound.is_some() && crate::sys::paths::identity(&self.path) == self.bound {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io_error(what: &str, path: &Path, err: io::Error) -> BindError {
    BindError::Io(format!("cannot {what} {}: {err}", path.display()))
}

/// Ask whoever listens at `path` who they are, without hanging on a stuck one.
fn probe(path: &Path) -> Option<Option<i32>> {
    let mut client = Client::connect(path).ok()?;
    client.set_timeout(Some(Duration::from_secs(2)));
    match client.call::<HelloReply>(Request::Hello) {
        Ok(Ok(hello)) => Some(Some(hello.pid)),
        // Something answers, just not a tend we understand: do not steal its socket.
        _ => Some(None),
    }
}

/// Prepare the folder, refuse when a live supervisor answers, replace a
/// stale socket (and nothing but a socket), bind, and set the mode (0600,
/// or 0660 with the socket group).
///
/// `private_dir`: the folder is tend's own runtime folder (the default
/// path): made 0700 (0750 for the socket group) if missing, refused if it
/// is a link, not ours or writable by others (someone may have made it to
/// serve a fake socket), and its mode and group set to what this run asks.
/// Otherwise (`--socket PATH`) the folder is made if missing, and a socket
/// group that cannot get through it is warned about.
pub fn bind(path: &Path, access: Access, private_dir: bool) -> Result<Listener, BindError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if private_dir {
            crate::sys::paths::ensure_private_dir(dir, access.group).map_err(BindError::Io)?;
        } else if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
            let mode = if access.group.is_some() { 0o750 } else { 0o700 };
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode));
            if let Some(gid) = access.group {
                let _ = std::os::unix::fs::chown(dir, None, Some(gid));
            }
        } else if let Some(gid) = access.group {
            if let Some(why) = group_cannot_enter(dir, gid) {
                eprintln!(
                    "tend: warning: --socket-group: members of group {gid} cannot reach {}: {why}",
                    path.display()
                );
            }
        }
    }
    match crate::sys::paths::is_socket(path) {
        None => {}
        Some(false) => {
            return Err(BindError::Io(format!(
                "refusing to replace {}: it is not a socket (a typo in --socket or TEND_SOCKET?)",
                path.display()
            )))
        }
        Some(true) => {
            if let Some(pid) = probe(path) {
                return Err(BindError::AlreadyRunning { pid });
            }
            // Nobody answers: a stale socket left by a supervisor that died.
            std::fs::remove_file(path).map_err(|e| io_error("remove the stale socket", path, e))?;
        }
    }
    // Create the socket with no permission for others from the start: set
    // the mode through the umask rather than after bind, so there is no
    // window in which it is open to everyone.
    let old_umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old_umask);
    let listener = bound.map_err(|e| io_error("listen on", path, e))?;
    let identity = crate::sys::paths::identity(path);
    let listener = Listener { listener, path: path.to_path_buf(), access, bound: identity };
    if let Some(gid) = access.group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| io_error("set the group of", path, e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(|e| io_error("set the mode of", path, e))?;
    }
    Ok(listener)
}

/// Why members of group `gid` cannot get through folder `dir` (no search
/// permission for them), if they cannot.
fn group_cannot_enter(dir: &Path, gid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).ok()?;
    let mode = meta.mode() & 0o7777;
    let group_in = meta.gid() == gid && mode & 0o010 != 0;
    if group_in || mode & 0o001 != 0 {
        return None;
    }
    Some(format!(
        "its folder {} is mode {mode:04o}, group {} (fix: chgrp {gid} {0} && chmod g+x {0})",
        dir.display(),
        meta.gid()
    ))
}

/// The peer's credentials (SO_PEERCRED, unix(7)) and whether they may talk.
pub fn check_peer(stream: &UnixStream, access: Access) -> Result<(), String> {
    let creds = crate::sys::peer_credentials(stream).map_err(|e| format!("cannot read credentials: {e}"))?;
    if creds.uid == 0 || creds.uid == access.own_uid {
        return Ok(());
    }
    if let Some(group) = access.group {
        let in_group = || crate::sys::peer_groups(stream).is_ok_and(|groups| groups.contains(&group));
        if creds.gid == group || in_group() {
            return Ok(());
        }
    }
    Err(format!("uid {} may not control this supervisor", creds.uid))
}

/// One connected client.
pub struct Conn {
    pub stream: UnixStream,
    reader: LineReader,
    /// Complete requests read and not handled yet (at most what one
    /// turn's read brings: see `read_some`).
    pub pending: VecDeque<Frame>,
    /// The last read stopped at its budget, not at EAGAIN: there may be
    /// more, and no new readiness event will say so.
    pub more_to_read: bool,
    /// When the client last sent a complete request (or connected).
    pub last_active: tend_core::Time,
    out: Vec<u8>,
    /// Written from `out` so far.
    sent: usize,
    /// Close once `out` is written.
    pub closing: bool,
    /// The peer hung up (or a hard error): drop it now.
    pub dead: bool,
    /// `logs -f`: what it follows.
    pub following: Option<Following>,
    /// `events`: following the supervisor's events.
    pub events: Option<Watch>,
    /// Waiting for a deferred reply (start/stop/restart/shutdown): do not
    /// read further requests until it is sent.
    pub busy: bool,
    /// The last write stopped short (the socket is full): the next goes
    /// when it becomes writable.
    write_blocked: bool,
}

impl Conn {
    pub fn new(stream: UnixStream, now: tend_core::Time) -> Conn {
        Conn {
            stream,
            reader: LineReader::new(proto::MAX_REQUEST),
            pending: VecDeque::new(),
            more_to_read: false,
            last_active: now,
            out: Vec::new(),
            sent: 0,
            closing: false,
            dead: false,
            following: None,
            events: None,
            busy: false,
            write_blocked: false,
        }
    }

    /// Read at most `budget` bytes (until EAGAIN, EOF or a request too
    /// large), queueing the complete requests in `pending`. A flood is thus
    /// read a slice per turn, never all at once.
    ///
    /// Never inlined: its 16 KiB buffer would otherwise be part of the
    /// frame of the loop's dispatch, whose stack probes touch every page of
    /// it at each event, so that the stack of an idle tend would hold it
    /// even when no client ever connects.
    #[inline(never)]
    pub fn read_some(&mut self, budget: usize, now: tend_core::Time) {
        let mut buf = [0u8; 16 * 1024];
        let mut read = 0;
        self.more_to_read = false;
        while read < budget {
            let room = buf.len().min(budget - read);
            match self.stream.read(&mut buf[..room]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => {
                    read += n;
                    let frames = self.reader.push(&buf[..n]);
                    if !frames.is_empty() {
                        self.last_active = now;
                    }
                    let too_large = frames.iter().any(|f| matches!(f, Frame::TooLarge));
                    self.pending.extend(frames);
                    if too_large {
                        return;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        self.more_to_read = true;
    }

    /// Waiting for something (a reply in progress, lines or events to
    /// follow): not idle, however long it says nothing.
    pub fn waiting(&self) -> bool {
        self.busy || self.following.is_some() || self.events.is_some()
    }

    /// Bytes queued for the client and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Drop what is queued and not yet written, except the rest of a line
    /// already partly written (so the client still gets whole lines).
    pub fn discard_output(&mut self) {
        let keep = match self.out[self.sent..].iter().position(|b| *b == b'\n') {
            Some(at) if self.sent > 0 && self.out[self.sent - 1] != b'\n' => self.sent + at + 1,
            _ => self.sent,
        };
        self.out.truncate(keep);
        self.out.shrink_to(64 * 1024);
    }

    /// Tell the client why it is closed, and close once that is out.
    pub fn close_with(&mut self, code: proto::ErrorCode, message: &str) {
        if self.closing || self.dead {
            return;
        }
        self.out.extend_from_slice(&Reply::error(code, message).encode());
        self.closing = true;
    }

    /// Queue a reply. Past the bound, the client is told it is too slow and
    /// dropped once that message is out (or at once if even that cannot fit).
    pub fn queue(&mut self, reply: &Reply) {
        self.queue_bytes(&reply.encode());
    }

    pub fn queue_bytes(&mut self, bytes: &[u8]) {
        if self.closing || self.dead {
            return;
        }
        let bound = if self.events.is_some() { MAX_EVENTS_BACKLOG } else { MAX_CLIENT_BUFFER };
        if self.out.len() - self.sent + bytes.len() > bound {
            self.cut_off(
                "client fell too far behind; dropping the connection (lines were not lost from tend's own log)",
            );
            return;
        }
        self.out.extend_from_slice(bytes);
    }

    /// The client fell too far behind: what it did not take is dropped now,
    /// not kept until it reads; it is told (a follower of events with the
    /// last line `{"event":"overflow"}`) and closed once that is out.
    pub fn cut_off(&mut self, message: &str) {
        if self.closing || self.dead {
            return;
        }
        self.discard_output();
        if self.events.is_some() {
            self.out.extend_from_slice(proto::OVERFLOW);
        } else {
            self.out.extend_from_slice(&Reply::error(proto::ErrorCode::TooSlow, message).encode());
        }
        self.closing = true;
    }

    /// Write what is queued, as far as the socket takes it.
    pub fn flush(&mut self) {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        self.write_blocked = self.sent < self.out.len();
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
            if self.closing {
                self.dead = true;
            }
        } else if self.sent > 64 * 1024 {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
    }

    pub fn has_pending_output(&self) -> bool {
        self.sent < self.out.len()
    }

    /// Bytes of `log` this follower has not taken yet.
    fn behind(&self, log: &EventLog) -> usize {
        match self.events.as_ref().and_then(|w| w.cursor) {
            Some(at) => log.end().saturating_sub(at) as usize,
            None => 0,
        }
    }

    /// Bytes waiting for the client: its own queue and what it has not
    /// taken of `log`.
    pub fn queued_with(&self, log: &EventLog) -> usize {
        self.queued() + self.behind(log)
    }

    /// Something to write: its own queue, or lines of `log`.
    pub fn has_output_with(&self, log: &EventLog) -> bool {
        self.has_pending_output() || self.behind(log) > 0
    }

    /// A follower of events with events waiting and held back by
    /// [`EVENTS_PACE`]: when they are due. `None` for everything else: a
    /// reply, lines of `logs -f`, a last line before closing, a socket that
    /// is full (its writability says when), go out as soon as they can.
    pub fn events_due(&self, log: &EventLog) -> Option<tend_core::Time> {
        let watch = self.events.as_ref()?;
        if !self.has_output_with(log) || self.closing || self.write_blocked || self.following.is_some() {
            return None;
        }
        if self.queued_with(log) >= EVENTS_BATCH {
            return Some(tend_core::Time::ZERO);
        }
        Some(watch.written_at.saturating_add(EVENTS_PACE))
    }

    /// Write what is waiting (its queue, then its part of `log`) unless it
    /// is events held back until a moment after `now`
    /// ([`Conn::events_due`]).
    pub fn flush_due(&mut self, now: tend_core::Time, log: &EventLog) {
        if !self.has_output_with(log) {
            return;
        }
        if self.events_due(log).is_some_and(|due| due > now) {
            return;
        }
        self.flush_with(log);
        if let Some(watch) = self.events.as_mut() {
            watch.written_at = now;
        }
    }

    /// Write its queue, then (once that is out) what it has not taken of
    /// `log`, as far as the socket takes them.
    pub fn flush_with(&mut self, log: &EventLog) {
        self.flush();
        if self.has_pending_output() || self.closing || self.dead {
            return;
        }
        let Some(watch) = self.events.as_mut() else { return };
        let Some(mut at) = watch.cursor else { return };
        loop {
            let rest = log.since(at);
            if rest.is_empty() {
                self.write_blocked = false;
                break;
            }
            match self.stream.write(rest) {
                Ok(0) => {
                    self.dead = true;
                    break;
                }
                Ok(n) => {
                    at += n as u64;
                    watch.mid_line = rest[n - 1] != b'\n';
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    break;
                }
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
        watch.cursor = Some(at);
    }

    /// [`Conn::cut_off`] for a follower that may be reading `log`: it leaves
    /// the log, the rest of a line half-written from it is still sent (the
    /// client gets whole lines), then the last line.
    pub fn cut_off_with(&mut self, log: &EventLog, message: &str) {
        if self.closing || self.dead {
            return;
        }
        let Some(watch) = self.events.as_mut() else { return self.cut_off(message) };
        let Some(at) = watch.cursor.take() else { return self.cut_off(message) };
        let rest_of_line = if watch.mid_line {
            let rest = log.since(at);
            let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            rest[..end].to_vec()
        } else {
            Vec::new()
        };
        // Its own queue holds nothing after its place in the log (it is
        // written first), so it goes as cut_off drops it.
        self.cut_off(message);
        let last = self.out.split_off(self.sent);
        self.out.extend_from_slice(&rest_of_line);
        self.out.extend_from_slice(&last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tend_core::Time;

    /// A follower of `services` (every one: `None`), and the peer's end.
    fn follower(
        services: Option<Vec<usize>>,
        at: Time,
        log: &EventLog,
    ) -> (Conn, std::os::unix::net::UnixStream) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut conn = Conn::new(UnixStream::from_std(ours), Time::ZERO);
        conn.events = Some(Watch::new(services, at, log));
        (conn, theirs)
    }

    fn read_all(peer: &mut std::os::unix::net::UnixStream) -> String {
        peer.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match peer.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        String::from_utf8(got).unwrap()
    }

    #[test]
    fn events_in_a_burst_are_written_once_per_pace_and_after_a_quiet_spell_at_once() {
        let t = Time::from_secs(100);
        let mut log = EventLog::default();
        let (mut conn, mut peer) = follower(None, t, &log);
        assert_eq!(conn.events_due(&log), None, "nothing waiting");
        log.push(b"started\n");
        assert_eq!(conn.events_due(&log), Some(t + EVENTS_PACE));
        conn.flush_due(t + Duration::from_millis(1), &log);
        assert_eq!(read_all(&mut peer), "", "held back within the pace");
        log.push(b"exited\n");
        conn.flush_due(t + EVENTS_PACE, &log);
        assert_eq!(read_all(&mut peer), "started\nexited\n", "both in one go");
        assert_eq!(conn.events_due(&log), None);

        // Quiet for longer than the pace: the next one is due already.
        let later = t + EVENTS_PACE * 5;
        log.push(b"ready\n");
        assert!(conn.events_due(&log).is_some_and(|due| due <= later));
        conn.flush_due(later, &log);
        assert_eq!(read_all(&mut peer), "ready\n");

        // A batch's worth waiting: at once, pace or not.
        let line = [b'x'; 1023];
        for _ in 0..(EVENTS_BATCH / 1024 + 1) {
            log.push(&line);
            log.push(b"\n");
        }
        assert_eq!(conn.events_due(&log), Some(Time::ZERO));
    }

    #[test]
    fn followers_of_every_service_share_one_log_each_from_its_place_and_it_is_trimmed() {
        let t = Time::from_secs(1);
        let mut log = EventLog::default();
        let (mut first, mut first_peer) = follower(None, t, &log);
        log.push(b"one\n");
        let (mut second, mut second_peer) = follower(None, t, &log);
        // One following a service only gets its copy in its own queue.
        let (mut some, mut some_peer) = follower(Some(vec![3]), t, &log);
        assert_eq!(some.events.as_ref().unwrap().cursor, None);
        some.queue_bytes(b"two\n");
        log.push(b"two\n");
        let later = t + EVENTS_PACE;
        for conn in [&mut first, &mut second, &mut some] {
            conn.flush_due(later, &log);
        }
        assert_eq!(read_all(&mut first_peer), "one\ntwo\n");
        assert_eq!(read_all(&mut second_peer), "two\n", "from where the log was when it came");
        assert_eq!(read_all(&mut some_peer), "two\n");
        // All taken: emptied in place.
        let oldest = [&first, &second].iter().filter_map(|c| c.events.as_ref().unwrap().cursor).min();
        log.trim(oldest);
        assert_eq!(log.bytes.len(), 0);
        assert_eq!(log.end(), 8);
        log.push(b"three\n");
        first.flush_due(later + EVENTS_PACE, &log);
        assert_eq!(read_all(&mut first_peer), "three\n");
        // The one behind keeps what it has not taken.
        log.trim(second.events.as_ref().unwrap().cursor);
        second.flush_due(later + EVENTS_PACE, &log);
        assert_eq!(read_all(&mut second_peer), "three\n");
    }

    #[test]
    fn a_follower_cut_off_halfway_through_a_line_gets_the_line_whole_then_overflow() {
        let mut log = EventLog::default();
        let (mut conn, mut peer) = follower(None, Time::ZERO, &log);
        // Fill the socket with lines until one is written only in part.
        let line = format!("{}\n", "y".repeat(4092));
        for _ in 0..200 {
            log.push(line.as_bytes());
        }
        conn.flush_with(&log);
        assert!(conn.write_blocked && conn.events.as_ref().unwrap().mid_line, "a line cut by a full socket");
        conn.cut_off_with(&log, "too slow");
        assert_eq!(conn.events.as_ref().unwrap().cursor, None, "it left the log");
        assert!(conn.closing);
        let mut got = String::new();
        while !conn.dead {
            got.push_str(&read_all(&mut peer));
            conn.flush();
        }
        got.push_str(&read_all(&mut peer));
        let (lines, last) = got.trim_end().rsplit_once('\n').unwrap();
        assert_eq!(last.as_bytes(), proto::OVERFLOW.trim_ascii_end());
        assert!(lines.split('\n').all(|l| l == line.trim_end()), "whole lines only");
    }

    #[test]
    fn replies_and_a_full_socket_are_not_paced() {
        let t = Time::from_secs(100);
        let log = EventLog::default();
        let (mut conn, _peer) = follower(Some(vec![0]), t, &log);
        conn.closing = true;
        conn.queue_bytes(b"x\n");
        assert_eq!(conn.events_due(&log), None, "a last line goes out at once");

        let (mut conn, _peer) = follower(Some(vec![0]), t, &log);
        // Fill the socket: the peer never reads.
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            conn.queue_bytes(&chunk);
            conn.flush();
            if conn.has_pending_output() {
                break;
            }
        }
        assert!(conn.has_pending_output() && !conn.closing, "the socket is full");
        assert_eq!(conn.events_due(&log), None, "its writability says when, not a timer");

        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut plain = Conn::new(ours, Time::ZERO);
        plain.queue_bytes(b"{\"ok\":true}\n");
        assert_eq!(plain.events_due(&log), None);
        plain.flush_due(t, &log);
        assert!(!plain.has_pending_output(), "a reply goes out at once");
    }
}
