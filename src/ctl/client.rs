//! The client side: connect to a supervisor's socket, send one request,
//! read its replies. Blocking I/O is fine here: this is a short-lived command.

use super::proto::{self, Answer, Envelope, EventsItem, LogsItem, Request};
use serde::de::DeserializeOwned;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Where the control socket is when `--socket` and `$TEND_SOCKET` say nothing:
/// `/run/tend/tend.sock` for root, `$XDG_RUNTIME_DIR/tend/tend.sock`
/// otherwise, else `/tmp/tend-UID/tend.sock` (a folder tend creates 0700).
pub fn default_socket_path() -> PathBuf {
    let uid = nix::unistd::geteuid().as_raw();
    if uid == 0 {
        return PathBuf::from("/run/tend/tend.sock");
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("tend").join("tend.sock");
    }
    PathBuf::from(format!("/tmp/tend-{uid}")).join("tend.sock")
}

/// tend's runtime folder: the default socket's folder (`/run/tend`,
/// `$XDG_RUNTIME_DIR/tend` or `/tmp/tend-UID`), private to the user. A
/// non-root tend keeps its notify socket there too.
pub fn runtime_dir() -> PathBuf {
    let socket = default_socket_path();
    socket.parent().map(PathBuf::from).unwrap_or(socket)
}

/// `--socket`, else `$TEND_SOCKET`, else the default.
pub fn socket_path(explicit: Option<PathBuf>) -> PathBuf {
    socket_target(explicit).0
}

/// [`socket_path`], and whether it is the default one (in the runtime
/// folder, whose owner and mode are then checked before it is trusted).
pub fn socket_target(explicit: Option<PathBuf>) -> (PathBuf, bool) {
    match explicit.or_else(|| std::env::var_os("TEND_SOCKET").filter(|s| !s.is_empty()).map(PathBuf::from)) {
        Some(path) => (path, false),
        None => (default_socket_path(), true),
    }
}

#[derive(Debug)]
pub enum ConnectError {
    /// Nothing listens there (no file, or a stale one).
    NoSupervisor(io::Error),
    Other(io::Error),
}

pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ConnectError> {
        match UnixStream::connect(path) {
            Ok(stream) => {
                let writer = stream.try_clone().map_err(ConnectError::Other)?;
                Ok(Client { reader: BufReader::new(stream), writer })
            }
            Err(err) => match err.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    Err(ConnectError::NoSupervisor(err))
                }
                _ if err.raw_os_error() == Some(libc::ENOTSOCK) => Err(ConnectError::NoSupervisor(err)),
                _ => Err(ConnectError::Other(err)),
            },
        }
    }

    /// [`Client::connect`], but give up after `timeout` (a supervisor whose
    /// listen backlog is full because it does not accept): then `Other`
    /// with [`io::ErrorKind::TimedOut`]. Reads and writes get the same bound.
    pub fn connect_within(path: &Path, timeout: std::time::Duration) -> Result<Client, ConnectError> {
        // connect(2) on a unix socket has no timeout of its own: wait for it
        // on a thread, and leave that thread behind if it never returns.
        let (send, receive) = std::sync::mpsc::channel();
        let target = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = send.send(Client::connect(&target));
        });
        match receive.recv_timeout(timeout) {
            Ok(Ok(mut client)) => {
                client.set_timeout(Some(timeout));
                Ok(client)
            }
            Ok(Err(err)) => Err(err),
            Err(_) => Err(ConnectError::Other(io::ErrorKind::TimedOut.into())),
        }
    }

    /// A handle on this connection for another thread: shutting it down
    /// ends a read this client is blocked in (a `logs -f` with no output).
    pub fn handle(&self) -> io::Result<UnixStream> {
        self.writer.try_clone()
    }

    /// Bound every read and write (None: wait as long as it takes).
    pub fn set_timeout(&mut self, timeout: Option<std::time::Duration>) {
        let _ = self.writer.set_read_timeout(timeout);
        let _ = self.writer.set_write_timeout(timeout);
    }

    pub fn send(&mut self, request: Request) -> io::Result<()> {
        self.writer.write_all(&Envelope::new(request).encode())
    }

    /// The next reply line (without its newline); `Ok(None)` when the
    /// supervisor closed the connection.
    fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(line))
    }

    /// The next line of a `logs` reply; `Ok(None)` when the supervisor
    /// closed the connection.
    pub fn next_log(&mut self) -> io::Result<Option<Answer<LogsItem>>> {
        match self.next_line()? {
            None => Ok(None),
            Some(line) => proto::decode_logs_item(&line).map(Some).map_err(io::Error::other),
        }
    }

    /// The next line of an `events` reply (the acknowledgement, an event,
    /// or the overflow that ends it); `Ok(None)` when the supervisor closed
    /// the connection (it exited).
    /// A whole line is already read and waiting: the next `next_event`
    /// will not block.
    pub fn has_buffered_line(&self) -> bool {
        memchr::memchr(b'\n', self.reader.buffer()).is_some()
    }

    pub fn next_event(&mut self) -> io::Result<Option<Answer<EventsItem>>> {
        match self.next_line()? {
            None => Ok(None),
            Some(line) => proto::decode_events_item(&line).map(Some).map_err(io::Error::other),
        }
    }

    /// Send one request and return its reply, typed as that request's
    /// reply `T` (see the table in `proto`), or the error it got.
    pub fn call<T: DeserializeOwned>(&mut self, request: Request) -> io::Result<Answer<T>> {
        let sent = self.send(request);
        // A supervisor that refuses us (permission) answers at once and
        // closes: our write then fails, but its reply is there to read.
        let line = match (sent, self.next_line()) {
            (_, Ok(Some(line))) => line,
            (Err(err), _) => return Err(err),
            (Ok(()), Err(err)) => return Err(err),
            (Ok(()), Ok(None)) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the supervisor closed the connection",
                ))
            }
        };
        proto::decode_answer(&line).map_err(io::Error::other)
    }

    /// Block until the supervisor closes the connection (it does when it exits).
    pub fn wait_closed(&mut self) -> io::Result<()> {
        let mut sink = Vec::new();
        loop {
            sink.clear();
            if self.reader.read_until(b'\n', &mut sink)? == 0 {
                return Ok(());
            }
        }
    }
}
