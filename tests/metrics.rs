//! Issue 12, metrics: `tend metrics` and `tend up --metrics-listen` serve
//! the Prometheus text format; the output passes `promtool check metrics`
//! (Debian's prometheus package; `.ci/run` installs it) and its values
//! change as services restart; the listener is served by the one loop,
//! bounded, and never holds up supervision.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `promtool check metrics` on `text`: its exit code and what it said.
fn promtool(text: &str) -> (i32, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), said)
}

/// The value of the sample `name{labels}` (labels as written, in order).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// One HTTP request to `port`, the whole answer (the server closes).
fn http(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(T)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn metrics_pass_promtool_and_change_as_services_restart() {
    if skip_unless_installed("metrics_pass_promtool_and_change_as_services_restart", &["promtool"]) {
        return;
    }
    let env = Env::new();
    let go = env.p("go");
    // Crashes once each time the test writes `go` (it takes the file away).
    env.unit(
        "crashy",
        &format!(
            "command: [sh, -c, 'while [ ! -e {0} ]; do sleep 0.01; done; rm {0}; exit 3']\nrestart_delay: 10ms\n\
             start_limit: {{burst: 1000, interval: 1m}}\n",
            go.display()
        ),
    );
    env.unit("steady", "command: [sleep, '100000']\n");
    env.unit("job", "command: ['true']\ntype: oneshot\n");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let units = env.units();
    let mut tend =
        env.spawn(&["up", "--units", units.to_str().unwrap(), "--metrics-listen", &listen], |_| {});
    wait_running(&env, &tend, &["crashy", "steady"]);
    wait_state(&env, &tend, "job", "completed");

    let out = ctl(&env, &["metrics"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let (code, said) = promtool(&out.stdout);
    assert_eq!(code, 0, "promtool check metrics: {said}\n{}", out.stdout);
    let text = out.stdout;
    assert_eq!(sample(&text, "tend_services"), Some(3.0));
    assert_eq!(sample(&text, r#"tend_service_up{service="steady"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"tend_service_state{service="steady",state="running"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"tend_service_state{service="steady",state="stopped"}"#), Some(0.0));
    assert_eq!(sample(&text, r#"tend_service_state{service="job",state="completed"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"tend_service_ready{service="job"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"tend_service_healthy{service="steady"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"tend_service_last_exit_code{service="job"}"#), Some(0.0));
    assert_eq!(sample(&text, r#"tend_service_restarts_total{service="crashy"}"#), Some(0.0));
    assert_eq!(sample(&text, r#"tend_control_connections"#), Some(1.0), "this one");
    assert!(sample(&text, r#"tend_service_uptime_seconds{service="steady"}"#).is_some_and(|s| s >= 0.0));
    let events = sample(&text, "tend_events_total").unwrap();

    // Three crashes: the counters move, and the failures are by kind.
    for n in 1..=3 {
        std::fs::write(&go, "").unwrap();
        tend.wait_until(T, "a restart", || {
            let text = ctl(&env, &["metrics"]).stdout;
            sample(&text, r#"tend_service_restarts_total{service="crashy"}"#) == Some(n as f64)
        });
        wait_state(&env, &tend, "crashy", "running");
    }
    let text = ctl(&env, &["metrics"]).stdout;
    let (code, said) = promtool(&text);
    assert_eq!(code, 0, "promtool check metrics: {said}\n{text}");
    assert_eq!(sample(&text, r#"tend_service_restarts_total{service="crashy"}"#), Some(3.0));
    assert_eq!(
        sample(&text, r#"tend_service_start_failures_total{service="crashy",kind="exited"}"#),
        Some(3.0)
    );
    assert_eq!(sample(&text, r#"tend_service_last_exit_code{service="crashy"}"#), Some(3.0));
    assert!(
        sample(&text, "tend_events_total").unwrap() >= events + 9.0,
        "exited, backoff, started each time"
    );

    // The same at GET /metrics, from the one loop.
    let answer = http(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"), "{head}");
    assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
    let (code, said) = promtool(body);
    assert_eq!(code, 0, "promtool check metrics: {said}\n{body}");
    assert_eq!(sample(body, r#"tend_service_restarts_total{service="crashy"}"#), Some(3.0));
    assert_eq!(sample(body, "tend_metrics_connections"), Some(1.0), "this one");
    shutdown(&env, &mut tend);
}

#[test]
fn the_metrics_listener_is_bounded_and_never_holds_up_the_loop() {
    let env = Env::new();
    env.unit("steady", "command: [sleep, '100000']\n");
    let port = free_port();
    let listen = format!("{port}");
    let units = env.units();
    let mut tend =
        env.spawn(&["up", "--units", units.to_str().unwrap(), "--metrics-listen", &listen], |_| {});
    wait_running(&env, &tend, &["steady"]);
    // What is not a scrape of /metrics is refused, with the reason.
    let status_line = |request: &str| http(port, request).lines().next().unwrap_or_default().to_string();
    assert_eq!(status_line("GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
    assert_eq!(status_line("DELETE /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(status_line("NOT HTTP\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    let huge = format!("GET /metrics HTTP/1.1\r\nX-Filler: {}\r\n\r\n", "x".repeat(20_000));
    assert_eq!(status_line(&huge), "HTTP/1.1 431 Request Header Fields Too Large");
    let head = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"), "no body: {head}");

    // Scrapers that connect and say nothing, and scrapers that ask and
    // never read the answer: at most 16 are kept, the next is told 503, and
    // the loop goes on supervising meanwhile.
    let silent: Vec<TcpStream> = (0..16)
        .map(|i| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            if i % 2 == 1 {
                stream.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
            }
            stream
        })
        .collect();
    tend.wait_until(T, "16 metrics connections", || {
        sample(&ctl(&env, &["metrics"]).stdout, "tend_metrics_connections") == Some(16.0)
    });
    assert_eq!(status_line("GET /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 503 Service Unavailable");
    let out = ctl(&env, &["restart", "steady"]);
    assert_eq!(out.code, 0, "supervision goes on: {}", out.show());
    drop(silent);
    tend.wait_until(T, "the silent ones closed", || {
        sample(&ctl(&env, &["metrics"]).stdout, "tend_metrics_connections") == Some(0.0)
    });
    assert_eq!(status_line("GET /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 OK");
    // One that never finishes its request is closed after 10 s, and so is
    // one that never reads its answer (nor closes).
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    let mut deaf = TcpStream::connect(("127.0.0.1", port)).unwrap();
    deaf.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    tend.wait_until(T, "both connections open", || {
        sample(&ctl(&env, &["metrics"]).stdout, "tend_metrics_connections") == Some(2.0)
    });
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest);
    assert!(closed.is_ok() && rest.is_empty(), "closed without an answer: {closed:?} {rest:?}");
    tend.wait_until(T, "the one that never read closed too", || {
        sample(&ctl(&env, &["metrics"]).stdout, "tend_metrics_connections") == Some(0.0)
    });
    let mut answer = String::new();
    deaf.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "its answer was still there to read: {answer}");
    shutdown(&env, &mut tend);
}

#[test]
fn a_metrics_address_that_cannot_be_used_stops_up_before_anything_starts() {
    let env = Env::new();
    env.unit("steady", "command: [sleep, '100000']\n");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let units = env.units();
    let mut tend =
        env.spawn(&["up", "--units", units.to_str().unwrap(), "--metrics-listen", &listen], |_| {});
    assert_eq!(tend.exit_code(T), 1);
    assert!(
        tend.stderr().contains(&format!("--metrics-listen: cannot listen on {listen}")),
        "{}",
        tend.dump()
    );
    assert!(!tend.stderr().contains("steady: started"), "{}", tend.dump());
    let out = ctl(&env, &["up", "--metrics-listen", "nowhere"]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(out.stderr.contains("'nowhere' is not PORT or HOST:PORT"), "{}", out.show());
}
