//! The control socket's side in the loop: connections accepted, checked
//! and read into requests; replies queued and written without blocking;
//! the output history and `logs -f` lines encoded for clients. What a
//! request asks and when it is answered is the core's.

use crate::ctl::proto::{self, ErrorCode, Frame, LogLine, LogReply, Reply, Request, Stream};
use crate::ctl::server::Conn;
use crate::output::Dest;
use std::time::SystemTime;

/// One frame the client sent: the request in it, for the core, or `None`
/// when it was answered here (malformed, too large, or sent while the
/// previous request is in progress: one request at a time, so a request
/// sent during a waiting `stop` or a `logs -f` closes the connection).
/// `false` in the second place: read no further frames.
pub(super) fn request(conn: &mut Conn, frame: Frame) -> (Option<Request>, bool) {
    match frame {
        Frame::TooLarge => {
            conn.queue(&Reply::error(
                ErrorCode::RequestTooLarge,
                format!("request longer than {} bytes", proto::MAX_REQUEST),
            ));
            conn.closing = true;
            conn.pending.clear();
            (None, false)
        }
        Frame::Line(_) if conn.closing => {
            conn.pending.clear();
            (None, false)
        }
        Frame::Line(_) if conn.waiting() => {
            conn.queue(&Reply::error(ErrorCode::BadRequest, "one request at a time on a connection"));
            conn.closing = true;
            conn.pending.clear();
            (None, false)
        }
        Frame::Line(line) => match proto::decode_request(&line) {
            Ok(request) => {
                conn.busy = true;
                (Some(request), true)
            }
            Err(reply) => {
                conn.queue(&reply);
                (None, true)
            }
        },
    }
}

/// Queue a reply; `done`: the request is answered and the next may come.
pub(super) fn reply(conn: &mut Conn, reply: &Reply, done: bool) {
    conn.queue(reply);
    if done {
        conn.busy = false;
    }
    conn.flush();
}

/// The protocol's name of a stream.
pub(super) fn stream_of(dest: Dest) -> Stream {
    match dest {
        Dest::Stdout => Stream::Stdout,
        Dest::Stderr => Stream::Stderr,
    }
}

/// One line of output as the protocol sends it.
pub(super) fn log_reply(service: &str, dest: Dest, time: SystemTime, line: &[u8]) -> Reply {
    Reply::Log(LogReply {
        log: LogLine {
            service: service.to_string(),
            stream: stream_of(dest),
            time: humantime::format_rfc3339_micros(time).to_string(),
            line: String::from_utf8_lossy(line).into_owned(),
        },
    })
}

/// One event as the protocol sends it, with its time, and its newline.
pub(super) fn event_line(event: proto::ServiceEvent, time: SystemTime) -> Vec<u8> {
    let time = humantime::format_rfc3339_micros(time).to_string();
    let mut line = serde_json::to_vec(&proto::EventLine { time, event }).expect("events always serialize");
    line.push(b'\n');
    line
}
