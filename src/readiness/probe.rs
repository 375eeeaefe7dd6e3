//! tcp and http checks as non-blocking sockets driven by the loop's
//! readiness events: connect, (for http) send a GET, read the status line.
//! The loop owns the timeout; a probe only says pending, success or failure.

use crate::unit::Check;
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Success(String),
    Failure(String),
}

enum Phase {
    Connecting,
    Sending { written: usize },
    Reading { response: Vec<u8> },
}

pub struct Probe {
    pub stream: TcpStream,
    address: SocketAddr,
    /// The HTTP request, for http checks.
    request: Option<Vec<u8>>,
    phase: Phase,
}

/// `127.0.0.1`, `::1`, `localhost`, or a name from /etc/hosts. No DNS: a
/// resolver query blocks, and this runs on the loop's thread.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host == "localhost" {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    hosts_lookup(&hosts, host).map(|ip| SocketAddr::new(ip, port)).ok_or_else(|| {
        format!(
            "cannot resolve {host}: checks take an IP address, localhost, or a name in /etc/hosts (no DNS)"
        )
    })
}

/// The address of `name` in /etc/hosts text (hosts(5)).
fn hosts_lookup(hosts: &str, name: &str) -> Option<IpAddr> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let ip = words.next()?.parse::<IpAddr>().ok()?;
        words.any(|alias| alias.eq_ignore_ascii_case(name)).then_some(ip)
    })
}

/// The longest status line read before giving up on an answer.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;

impl Probe {
    /// Start a tcp or http check (an exec check is not a probe).
    pub fn start(check: &Check) -> Result<Probe, String> {
        let (host, port, request) = match check {
            Check::Tcp { host, port } => (host, *port, None),
            Check::Http { host, port, path } => {
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: tend\r\nConnection: close\r\n\r\n"
                );
                (host, *port, Some(request.into_bytes()))
            }
            Check::Exec(_) => return Err("an exec check is not a network probe".into()),
        };
        let address = resolve(host, port)?;
        let stream = TcpStream::connect(address).map_err(|e| format!("cannot connect to {address}: {e}"))?;
        Ok(Probe { stream, address, request, phase: Phase::Connecting })
    }

    /// Advance on a readiness event.
    pub fn advance(&mut self) -> Outcome {
        loop {
            match &mut self.phase {
                Phase::Connecting => {
                    if let Ok(Some(err)) | Err(err) = self.stream.take_error() {
                        return Outcome::Failure(format!("cannot connect to {}: {}", self.address, err));
                    }
                    match self.stream.peer_addr() {
                        Ok(_) => {}
                        Err(err) if err.kind() == io::ErrorKind::NotConnected => return Outcome::Pending,
                        Err(err) => {
                            return Outcome::Failure(format!("cannot connect to {}: {err}", self.address))
                        }
                    }
                    match self.request {
                        None => return Outcome::Success(format!("connected to {}", self.address)),
                        Some(_) => self.phase = Phase::Sending { written: 0 },
                    }
                }
                Phase::Sending { written } => {
                    let request = self.request.as_deref().unwrap_or_default();
                    while *written < request.len() {
                        match self.stream.write(&request[*written..]) {
                            Ok(n) => *written += n,
                            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Outcome::Pending,
                            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                            Err(err) => return Outcome::Failure(format!("cannot send the request: {err}")),
                        }
                    }
                    self.phase = Phase::Reading { response: Vec::new() };
                }
                Phase::Reading { response } => {
                    let mut buf = [0u8; 1024];
                    loop {
                        match self.stream.read(&mut buf) {
                            Ok(0) => return status_outcome(response, true),
                            Ok(n) => {
                                response.extend_from_slice(&buf[..n]);
                                match status_outcome(response, false) {
                                    Outcome::Pending if response.len() < MAX_RESPONSE_HEAD => {}
                                    Outcome::Pending => {
                                        return Outcome::Failure("no HTTP status line".into())
                                    }
                                    done => return done,
                                }
                            }
                            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Outcome::Pending,
                            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                            Err(err) => return Outcome::Failure(format!("cannot read the answer: {err}")),
                        }
                    }
                }
            }
        }
    }
}

/// Judge an HTTP answer by its status line: 2xx is success.
fn status_outcome(response: &[u8], ended: bool) -> Outcome {
    let Some(end) = response.iter().position(|b| *b == b'\n') else {
        return if ended {
            Outcome::Failure("connection closed before an HTTP status line".into())
        } else {
            Outcome::Pending
        };
    };
    let line = String::from_utf8_lossy(&response[..end]).trim_end().to_string();
    let mut words = line.split_whitespace();
    let (Some(version), Some(code)) = (words.next(), words.next()) else {
        return Outcome::Failure(format!("not an HTTP status line: {line}"));
    };
    if !version.starts_with("HTTP/") {
        return Outcome::Failure(format!("not an HTTP status line: {line}"));
    }
    match code.parse::<u16>() {
        Ok(200..=299) => Outcome::Success(format!("HTTP {code}")),
        Ok(_) => Outcome::Failure(format!("HTTP {code}")),
        Err(_) => Outcome::Failure(format!("not an HTTP status line: {line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_etc_hosts_only() {
        let hosts = "127.0.0.1 localhost\n# 10.0.0.9 hidden\n10.1.2.3  db db.local # the database\n::1 ip6-localhost\n";
        assert_eq!(hosts_lookup(hosts, "db.local"), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(hosts_lookup(hosts, "DB"), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(hosts_lookup(hosts, "ip6-localhost"), Some("::1".parse().unwrap()));
        assert_eq!(hosts_lookup(hosts, "hidden"), None);
        assert_eq!(hosts_lookup(hosts, "nowhere"), None);
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            status_outcome(b"HTTP/1.1 204 No Content\r\n", false),
            Outcome::Success("HTTP 204".into())
        );
        assert_eq!(status_outcome(b"HTTP/1.0 503 Busy\r\n", false), Outcome::Failure("HTTP 503".into()));
        assert_eq!(status_outcome(b"HTTP/1.1 200", false), Outcome::Pending);
        assert!(matches!(status_outcome(b"SSH-2.0-x\r\n", false), Outcome::Failure(_)));
        assert!(matches!(status_outcome(b"", true), Outcome::Failure(_)));
    }

    fn drive(probe: &mut Probe) -> Outcome {
        // The test has no loop: poll until the probe decides (bounded).
        let mut poll = mio::Poll::new().unwrap();
        poll.registry()
            .register(&mut probe.stream, mio::Token(0), mio::Interest::READABLE | mio::Interest::WRITABLE)
            .unwrap();
        let mut events = mio::Events::with_capacity(4);
        for _ in 0..100 {
            poll.poll(&mut events, Some(std::time::Duration::from_millis(50))).unwrap();
            match probe.advance() {
                Outcome::Pending => {}
                done => return done,
            }
        }
        Outcome::Pending
    }

    #[test]
    fn tcp_and_http_against_a_real_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut tcp = Probe::start(&Check::Tcp { host: "127.0.0.1".into(), port }).unwrap();
        assert!(matches!(drive(&mut tcp), Outcome::Success(_)));
        drop(tcp);
        let server = std::thread::spawn(move || {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 500 Oops\r\n\r\n"] {
                let (mut conn, _) = listener.accept().unwrap();
                // Skip the queued tcp probe's connection, if it comes first.
                let mut request = [0u8; 512];
                let n = conn.read(&mut request).unwrap_or(0);
                if n == 0 {
                    let (c, _) = listener.accept().unwrap();
                    conn = c;
                    let _ = conn.read(&mut request);
                }
                conn.write_all(answer.as_bytes()).unwrap();
            }
        });
        let check = Check::Http { host: "localhost".into(), port, path: "/health".into() };
        let mut ok = Probe::start(&check).unwrap();
        assert_eq!(drive(&mut ok), Outcome::Success("HTTP 200".into()));
        let mut bad = Probe::start(&check).unwrap();
        assert_eq!(drive(&mut bad), Outcome::Failure("HTTP 500".into()));
        server.join().unwrap();
    }

    #[test]
    fn refused_connections_fail() {
        // Bind then drop: the port is (very likely) closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut probe = Probe::start(&Check::Tcp { host: "127.0.0.1".into(), port }).unwrap();
        assert!(matches!(drive(&mut probe), Outcome::Failure(_)));
    }
}
