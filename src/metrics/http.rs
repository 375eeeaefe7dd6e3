//! The `GET /metrics` listener's connections, served by the one loop: no
//! thread, every socket non-blocking, a bounded number of connections, a
//! bounded request head, and a deadline by which a connection has sent its
//! request and taken its answer, or is closed.
//!
//! HTTP/1.1 as much as a scraper needs: one request per connection
//! (`Connection: close`), GET or HEAD of `/metrics` (anything else: 404 or
//! 405), parsed with httparse. Must not block and must not know about
//! services: the loop renders the body.

use std::io::{self, Read, Write};
use std::time::Duration;
use tend_core::Time;

/// Connections open at once; a further one is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 16;

/// The longest request head read; a longer one gets 431.
pub const MAX_HEAD: usize = 8 * 1024;

/// A connection must have sent its request and taken its answer within this.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// What the bytes read so far ask.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// Not a whole head yet.
    More,
    /// `GET /metrics` (`head_only` for HEAD).
    Metrics { head_only: bool },
    /// Answer this, and close.
    Refuse { status: u16, reason: &'static str, message: &'static str },
}

/// Parse what was read (at most [`MAX_HEAD`] bytes of it).
pub fn parse(input: &[u8]) -> Asked {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(input) {
        Ok(httparse::Status::Partial) if input.len() >= MAX_HEAD => Asked::Refuse {
            status: 431,
            reason: "Request Header Fields Too Large",
            message: "request head too large\n",
        },
        Ok(httparse::Status::Partial) => Asked::More,
        Ok(httparse::Status::Complete(_)) => {
            let head_only = match request.method {
                Some("GET") => false,
                Some("HEAD") => true,
                _ => {
                    return Asked::Refuse {
                        status: 405,
                        reason: "Method Not Allowed",
                        message: "only GET and HEAD\n",
                    }
                }
            };
            let path = request.path.unwrap_or("/");
            let path = path.split('?').next().unwrap_or(path);
            if path == "/metrics" {
                Asked::Metrics { head_only }
            } else {
                Asked::Refuse { status: 404, reason: "Not Found", message: "try /metrics\n" }
            }
        }
        Err(httparse::Error::TooManyHeaders) => Asked::Refuse {
            status: 431,
            reason: "Request Header Fields Too Large",
            message: "too many headers\n",
        },
        Err(_) => Asked::Refuse { status: 400, reason: "Bad Request", message: "malformed request\n" },
    }
}

/// A whole response, closing the connection after it.
pub fn response(status: u16, reason: &str, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// One scraper's connection.
pub struct HttpConn {
    pub stream: mio::net::TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    sent: usize,
    /// When it is closed, whatever it is doing.
    pub deadline: Time,
    /// Answered (the response is queued): what comes now is read and dropped.
    answered: bool,
    /// The answer is out and our side is shut: waiting for the peer's end.
    shut: bool,
    /// The peer shut its side: nothing more to read.
    peer_done: bool,
    /// Done or broken: drop it.
    pub finished: bool,
}

impl HttpConn {
    pub fn new(stream: mio::net::TcpStream, now: Time) -> HttpConn {
        HttpConn {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            deadline: now.saturating_add(DEADLINE),
            answered: false,
            shut: false,
            peer_done: false,
            finished: false,
        }
    }

    /// Read what came (up to [`MAX_HEAD`] in all) and say what it asks.
    pub fn read(&mut self) -> Asked {
        if self.answered {
            self.discard();
            return Asked::More;
        }
        let mut buf = [0u8; 4096];
        let mut ended = false;
        while self.input.len() < MAX_HEAD {
            let room = buf.len().min(MAX_HEAD - self.input.len());
            match self.stream.read(&mut buf[..room]) {
                Ok(0) => {
                    // The peer is done sending (`printf 'GET …' | nc -N`
                    // shuts its side after the request): what it sent is
                    // still answered; a request cut short is not.
                    ended = true;
                    self.peer_done = true;
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.finished = true;
                    return Asked::More;
                }
            }
        }
        let asked = parse(&self.input);
        if ended && asked == Asked::More {
            self.finished = true;
        }
        asked
    }

    /// Queue the response; it goes out as the socket takes it, then the
    /// connection closes.
    pub fn answer(&mut self, response: Vec<u8>) {
        self.answered = true;
        self.input = Vec::new();
        self.output = response;
        self.flush();
    }

    /// Read and drop what the peer still sends (the rest of a request too
    /// large to read), a bounded amount per call, until its end: closing
    /// with unread data would reset the connection, and the peer could lose
    /// the answer (the lingering close of RFC 9112, 9.6).
    fn discard(&mut self) {
        if self.peer_done {
            return;
        }
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    // Done when the answer is out too; until then it goes on
                    // being written (a peer may shut its side and still read).
                    self.peer_done = true;
                    self.finished = self.shut;
                    return;
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.finished = true;
                    return;
                }
            }
        }
    }

    /// Write what the socket takes now.
    pub fn flush(&mut self) {
        while self.sent < self.output.len() {
            match self.stream.write(&self.output[self.sent..]) {
                Ok(0) => {
                    self.finished = true;
                    return;
                }
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.finished = true;
                    return;
                }
            }
        }
        if self.answered && !self.shut {
            // All written: say so, then wait for the peer to close (within the deadline).
            self.shut = true;
            if self.stream.shutdown(std::net::Shutdown::Write).is_err() || self.peer_done {
                self.finished = true;
                return;
            }
            self.discard();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_as_a_scraper_sends_them() {
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), Asked::More);
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n"),
            Asked::Metrics { head_only: false }
        );
        assert_eq!(parse(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"), Asked::Metrics { head_only: true });
        assert!(matches!(parse(b"GET / HTTP/1.1\r\n\r\n"), Asked::Refuse { status: 404, .. }));
        assert!(matches!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Asked::Refuse { status: 405, .. }));
        assert!(matches!(parse(b"\x00\x01garbage\r\n\r\n"), Asked::Refuse { status: 400, .. }));
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert!(matches!(parse(&long), Asked::Refuse { status: 431, .. }));
        let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&many), Asked::Refuse { status: 431, .. }));
    }

    /// The receive and send buffer limits of TCP (`tcp_rmem`, `tcp_wmem`:
    /// min, default, max), to size an answer no socket can take at once.
    fn tcp_buffer_max() -> usize {
        ["/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"]
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                text.split_whitespace().nth(2).and_then(|max| max.parse().ok()).unwrap_or(8 << 20)
            })
            .sum()
    }

    /// A connected pair over loopback: (the scraper's end, tend's end).
    fn pair() -> (std::net::TcpStream, HttpConn) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, HttpConn::new(mio::net::TcpStream::from_std(server), Time::ZERO))
    }

    /// Poll `cond` every millisecond, for at most 30 s.
    fn until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "not within 30 s: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_scraper_that_never_reads_never_blocks_the_writer() {
        let (mut client, mut conn) = pair();
        client.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut asked = Asked::More;
        until("the request is read", || {
            asked = conn.read();
            asked != Asked::More
        });
        assert_eq!(asked, Asked::Metrics { head_only: false });
        // More than the kernel could buffer between the two ends, whatever
        // they are tuned to: answer() returns with most of it unsent.
        let body = vec![b'x'; tcp_buffer_max() + (1 << 20)];
        let whole = response(200, "OK", "text/plain", &body, false);
        conn.answer(whole.clone());
        assert!(conn.sent < whole.len() && !conn.finished, "the socket took it all: {}", conn.sent);
        // Nothing read: further writes take nothing and return at once.
        let stuck = conn.sent;
        conn.flush();
        conn.flush();
        assert!(conn.sent < whole.len() && !conn.finished);
        assert!(conn.sent >= stuck);
        // Once the scraper reads, the rest goes out as the socket takes it,
        // then tend's side shuts: the scraper reads the end.
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client.read_to_end(&mut got).map(|_| got)
        });
        until("the answer is out", || {
            conn.flush();
            conn.shut || conn.finished
        });
        let got = reader.join().unwrap().expect("read to the end");
        assert!(got == whole, "{} bytes of {}", got.len(), whole.len());
        // The scraper closed: tend's side is done.
        until("the close is seen", || {
            conn.read();
            conn.finished
        });
    }

    #[test]
    fn a_request_followed_by_the_end_of_its_sending_side_is_answered() {
        let (mut client, mut conn) = pair();
        client.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut asked = Asked::More;
        until("the request is read", || {
            asked = conn.read();
            asked != Asked::More || conn.finished
        });
        assert_eq!(asked, Asked::Metrics { head_only: false });
        conn.answer(response(200, "OK", "text/plain", b"abc", false));
        assert!(conn.finished, "all written, and the peer is done");
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("\r\n\r\nabc"), "{got}");

        // Cut short: no answer, the connection is done.
        let (mut client, mut conn) = pair();
        client.write_all(b"GET /metr").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        until("the end is seen", || {
            assert_eq!(conn.read(), Asked::More);
            conn.finished
        });
    }

    #[test]
    fn a_response_says_its_length_and_closes() {
        let r = response(200, "OK", "text/plain", b"abc", false);
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        );
        let head = response(200, "OK", "text/plain", b"abc", true);
        assert!(head.ends_with(b"Content-Length: 3\r\nConnection: close\r\n\r\n"));
    }
}
