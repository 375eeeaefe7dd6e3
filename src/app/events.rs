//! `tend events`: follow the supervisor's events. Rendering only: what an
//! event is and when it is sent is the core's (`tend_core::proto::EventKind`).

use super::control::{connect, error_exit, known_names, timed_out, waiting_timeout};
use crate::ctl::proto::{EventLine, EventsItem, Request};
use crate::exit;
use std::io::Write;
use std::path::PathBuf;

/// `2026-11-26T13:04:05.123Z web     started (pid 4242)`: the time to the
/// millisecond, the service, what happened in words.
pub fn render(event: &EventLine, width: usize) -> String {
    let time = match humantime::parse_rfc3339(&event.time) {
        Ok(time) => humantime::format_rfc3339_millis(time).to_string(),
        Err(_) => event.time.clone(),
    };
    format!("{time} {:<width$} {}", event.event.service, event.event.message)
}

pub fn events(socket: Option<PathBuf>, names: Vec<String>, json: bool, since_start: bool) -> i32 {
    let mut client = match connect(socket) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let width = match known_names(&mut client, &names) {
        Ok(known) => known.iter().map(|n| n.chars().count()).max().unwrap_or(4),
        Err(code) => return code,
    };
    // Waiting for events is no sign of a hung supervisor: no bound, unless
    // --timeout gives one (then it is how long to follow).
    let bound = waiting_timeout();
    client.set_timeout(bound);
    if let Err(err) = client.send(Request::Events { names, since_start }) {
        eprintln!("tend: cannot send the request: {err}");
        return exit::NO_SUPERVISOR;
    }
    // Written in blocks, and flushed once no further event is already read:
    // a burst costs one write, not one per line (20 followers of a
    // crash-looping stack otherwise make 20 writes per event, on the cores
    // the supervisor needs; bench/, issue 12). Output is only left unflushed
    // while a line is waiting, so only the answers that are lines flush
    // before returning.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    loop {
        let event = match client.next_event() {
            Ok(Some(Ok(EventsItem::Event(event)))) => event,
            Ok(Some(Ok(EventsItem::Subscribed { .. }))) => continue,
            Ok(Some(Ok(EventsItem::Overflow))) => {
                if json {
                    let _ = out.write_all(crate::ctl::proto::OVERFLOW);
                }
                let _ = out.flush();
                eprintln!("tend: fell too far behind the supervisor's events, and was disconnected: events were missed");
                return exit::FAILURE;
            }
            Ok(Some(Err(error))) => {
                let _ = out.flush();
                return error_exit(&error);
            }
            // The supervisor exited: nothing more will happen.
            Ok(None) => return exit::OK,
            Err(err) => {
                if let (Some(_), true) = (bound, timed_out(&err)) {
                    // --timeout: followed for that long.
                    return exit::OK;
                }
                eprintln!("tend: {err}");
                return exit::NO_SUPERVISOR;
            }
        };
        let written = if json {
            serde_json::to_writer(&mut out, &event)
                .map_err(std::io::Error::other)
                .and_then(|()| out.write_all(b"\n"))
        } else {
            writeln!(out, "{}", render(&event, width))
        };
        let written = written.and_then(|()| if client.has_buffered_line() { Ok(()) } else { out.flush() });
        if let Err(err) = written {
            return crate::app::out::write_failed(&err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::proto::{EventKind, ServiceEvent, ServiceState};

    #[test]
    fn an_event_in_words_has_its_time_service_and_message() {
        let event = EventLine {
            time: "2026-11-26T13:04:05.123456Z".into(),
            event: ServiceEvent {
                service: "web".into(),
                kind: EventKind::Started { pid: 42 },
                state: ServiceState::Running,
                message: "started (pid 42)".into(),
            },
        };
        assert_eq!(render(&event, 6), "2026-11-26T13:04:05.123Z web    started (pid 42)");
    }
}
