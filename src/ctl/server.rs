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

/// What a follower of `events` follows.
#[derive(Debug, Clone)]
pub struct Watch {
    /// These services (by their place in the supervisor); `None`: every
    /// one, those a reload adds too.
    pub services: Option<Vec<usize>>,
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
    /// `logs -f`: the services followed (by their place in the supervisor).
    pub following: Option<Vec<usize>>,
    /// `events`: following the supervisor's events.
    pub events: Option<Watch>,
    /// Waiting for a deferred reply (start/stop/restart/shutdown): do not
    /// read further requests until it is sent.
    pub busy: bool,
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
        }
    }

    /// Read at most `budget` bytes (until EAGAIN, EOF or a request too
    /// large), queueing the complete requests in `pending`. A flood is thus
    /// read a slice per turn, never all at once.
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
}
