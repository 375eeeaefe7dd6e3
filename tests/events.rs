//! Issue 12, `tend events`: the supervisor's own typed events, followed
//! through the real binary. A service that starts, becomes ready, crashes,
//! backs off and fails says so in order with the right fields; stops,
//! health checks and reloads are told; `--since-start` replays where each
//! service is; a reader that stops reading is cut off with
//! `{"event":"overflow"}` while supervision goes on.

mod common;
use common::*;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `tend events ARGS` running, its stdout lines collected as they come.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Follower {
    fn start(env: &Env, args: &[&str]) -> Follower {
        let mut cmd = Command::new(tend_bin());
        cmd.arg("events").args(args).env("TEND_SOCKET", env.socket());
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("tend events runs");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Follower { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn json(&self) -> Vec<Value> {
        self.lines().iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
    }

    fn wait_for(&self, tend: &Tend, what: &str, cond: impl Fn(&[Value]) -> bool) {
        tend.wait_until(T, what, || cond(&self.json()));
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn has(events: &[Value], service: &str, event: &str) -> bool {
    events.iter().any(|e| e["service"] == service && e["event"] == event)
}

#[test]
fn a_service_that_starts_becomes_ready_crashes_backs_off_and_fails_says_so_in_order() {
    let env = Env::new();
    let go = env.p("go");
    // Ready on its s6 descriptor, then it crashes (once `go` exists, so the
    // follower is surely there, and a moment after its readiness, which
    // tend reads at once): three runs, and the start limit (burst 2) puts
    // it in failed.
    env.unit(
        "web",
        &format!(
            "command: [sh, -c, 'echo ready >&3; while [ ! -e {} ]; do sleep 0.01; done; sleep 0.5; exit 3']\n\
             type: notify\nnotify_fd: 3\nrestart: always\nrestart_delay: 50ms\n\
             start_limit: {{burst: 2, interval: 1m}}\n",
            go.display()
        ),
    );
    let tend = env.up();
    wait_socket(&env, &tend);
    let follower = Follower::start(&env, &["--json", "--since-start"]);
    follower.wait_for(&tend, "the replay", |e| has(e, "web", "state"));
    std::fs::write(&go, "").unwrap();
    follower.wait_for(&tend, "web to fail", |e| has(e, "web", "failed"));

    let events = follower.json();
    let web: Vec<&Value> = events.iter().filter(|e| e["service"] == "web").collect();
    for e in &web {
        for field in ["time", "service", "event", "state", "message"] {
            assert!(e.get(field).is_some(), "{field} missing from {e}");
        }
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "RFC 3339 in UTC: {e}");
    }
    // The replay first: where web was when the follower came.
    assert_eq!(web[0]["event"], "state");
    assert_eq!(web[0]["replay"], true);
    // Then each run, in order. The first run may be replayed, not told.
    let words: Vec<&str> = web.iter().skip(1).map(|e| e["event"].as_str().unwrap()).collect();
    let tail = [
        "exited", "backoff", "state", "started", "ready", "exited", "backoff", "state", "started", "ready",
        "exited", "failed",
    ];
    assert!(words.ends_with(&tail), "events of web: {words:?}");
    let tail: Vec<&&Value> = web.iter().rev().take(tail.len()).rev().collect();
    // exited: the JSON contract's kind, and the code.
    assert_eq!(
        (tail[0]["kind"].as_str(), tail[0]["code"].as_i64()),
        (Some("exited"), Some(3)),
        "{}",
        tail[0]
    );
    assert_eq!(tail[0]["message"], "exited with status 3");
    // backoff: the delay, doubling.
    assert_eq!((tail[1]["delay_secs"].as_f64(), tail[1]["restarts"].as_u64()), (Some(0.05), Some(1)));
    assert_eq!(tail[1]["state"], "backoff");
    assert_eq!(tail[6]["delay_secs"].as_f64(), Some(0.1));
    // started: the pid of the new process; then ready.
    assert!(tail[3]["pid"].as_i64().unwrap() > 0);
    assert_ne!(tail[3]["pid"], tail[8]["pid"], "each run its own process");
    assert_eq!((tail[4]["state"].as_str(), tail[9]["state"].as_str()), (Some("ready"), Some("ready")));
    // failed: why, and the kind.
    assert_eq!(tail[11]["reason"], "start limit hit (3 failures in 1m)");
    assert_eq!(tail[11]["kind"], "start_limit");
    assert_eq!(tail[11]["state"], "failed");
    // The plain form says the same in words, one line per event.
    let plain = ctl(&env, &["events", "--since-start", "--timeout", "300ms", "web"]);
    assert_eq!(plain.code, 0, "{}", plain.show());
    let line = plain.stdout.lines().next().unwrap_or_default();
    assert!(line.ends_with(" web failed (start limit hit (3 failures in 1m))"), "{}", plain.show());
}

#[test]
fn stops_health_checks_and_reloads_are_told() {
    let env = Env::new();
    let healthy = env.p("healthy");
    std::fs::write(&healthy, "").unwrap();
    // Ignores SIGTERM: the stop takes SIGKILL after its stop_timeout.
    env.unit(
        "stubborn",
        "command: [sh, -c, 'trap \"\" TERM; while :; do sleep 0.05; done']\nstop_timeout: 200ms\n",
    );
    env.unit(
        "web",
        &format!(
            "command: [sleep, '100000']\nhealth_check: {{exec: [test, -e, {}], interval: 100ms, timeout: 1s, retries: 100}}\n",
            healthy.display()
        ),
    );
    env.unit("old", "command: [sleep, '100000']\n");
    let mut tend = env.up();
    wait_socket(&env, &tend);
    let follower = Follower::start(&env, &["--json", "--since-start"]);
    follower.wait_for(&tend, "web's first passing health check", |e| {
        e.iter().any(|e| e["service"] == "web" && e["event"] == "health" && e["passing"] == true)
    });
    std::fs::remove_file(&healthy).unwrap();
    follower.wait_for(&tend, "web's failing health check", |e| {
        e.iter().any(|e| e["event"] == "health" && e["passing"] == false && e["failures"] == 1)
    });
    let failing =
        follower.json().into_iter().find(|e| e["event"] == "health" && e["passing"] == false).unwrap();
    assert_eq!(failing["retries"], 100, "{failing}");
    std::fs::write(&healthy, "").unwrap();
    follower.wait_for(&tend, "web passing again", |e| {
        e.iter().filter(|e| e["service"] == "web" && e["event"] == "health" && e["passing"] == true).count()
            == 2
    });

    let out = ctl(&env, &["stop", "stubborn"]);
    assert_eq!(out.code, 0, "{}", out.show());
    follower.wait_for(&tend, "stubborn stopped", |e| has(e, "stubborn", "stopped"));
    let stubborn: Vec<Value> = follower.json().into_iter().filter(|e| e["service"] == "stubborn").collect();
    let words: Vec<&str> = stubborn.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(words.ends_with(&["stopping", "stopping", "exited", "stopped"]), "{words:?}");
    let n = stubborn.len();
    assert_eq!(stubborn[n - 4]["signal"], "SIGTERM");
    assert_eq!(stubborn[n - 3]["signal"], "SIGKILL");
    assert_eq!(stubborn[n - 3]["message"], "did not stop in 200ms, sending SIGKILL");
    assert_eq!(
        (stubborn[n - 2]["kind"].as_str(), stubborn[n - 2]["signal"].as_str()),
        (Some("killed"), Some("SIGKILL"))
    );
    assert_eq!(
        (stubborn[n - 1]["killed"].as_bool(), stubborn[n - 1]["state"].as_str()),
        (Some(true), Some("stopped"))
    );

    // A reload: one unit added, one removed, one changed; each is told,
    // and the new one's events follow (the follower asked for all).
    std::fs::remove_file(env.units().join("old.yaml")).unwrap();
    env.unit("new", "command: [sleep, '100000']\n");
    env.unit("stubborn", "command: [sleep, '100001']\n");
    let out = ctl(&env, &["reload"]);
    assert_eq!(out.code, 0, "{}", out.show());
    follower.wait_for(&tend, "new started", |e| has(e, "new", "started"));
    let change = |service: &str| {
        follower
            .json()
            .into_iter()
            .find(|e| e["service"] == service && e["event"] == "reload")
            .map(|e| e["change"].clone())
    };
    assert_eq!(change("new"), Some("added".into()));
    assert_eq!(change("old"), Some("removed".into()));
    assert_eq!(change("stubborn"), Some("changed".into()));
    assert_eq!(change("web"), None, "unchanged units are not told");
    follower.wait_for(&tend, "old stopped", |e| has(e, "old", "stopped"));
    shutdown(&env, &mut tend);
}

#[test]
fn since_start_replays_where_each_named_service_is_and_names_are_checked() {
    let env = Env::new();
    env.unit("db", "command: [sleep, '100000']\n");
    env.unit("web", "command: [sleep, '100000']\ndepends_on: {cache: ready}\n");
    env.unit("cache", "command: [/no/such/program]\nrestart: never\n");
    let tend = env.up();
    wait_socket(&env, &tend);
    wait_state(&env, &tend, "cache", "failed");
    wait_state(&env, &tend, "web", "blocked");
    let out = ctl(&env, &["events", "--json", "--since-start", "--timeout", "300ms", "db", "web"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let events: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let replay: Vec<(&str, &str)> =
        events.iter().map(|e| (e["service"].as_str().unwrap(), e["state"].as_str().unwrap())).collect();
    assert_eq!(replay, [("db", "running"), ("web", "blocked")], "{}", out.show());
    assert_eq!(events[0]["pid"].as_i64(), Some(pid_of(&status_list(&env), "db") as i64));
    assert_eq!(events[1]["reason"], "waiting for cache: failed");
    // Without --since-start, nothing until something happens.
    let out = ctl(&env, &["events", "--timeout", "200ms", "db"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.show());
    let out = ctl(&env, &["events", "wbe"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stderr.contains("no service 'wbe' (did you mean 'web'?)"), "{}", out.show());
    let env_without = Env::new();
    let out = ctl(&env_without, &["events"]);
    assert_eq!(out.code, 3, "no supervisor: {}", out.show());
}

#[test]
fn a_follower_that_stops_reading_is_cut_off_with_overflow_and_supervision_goes_on() {
    let env = Env::new();
    // Services that exit at once and are restarted at once: many events.
    for i in 0..4 {
        env.unit(
            &format!("spin-with-a-long-name-for-long-event-lines-{i}"),
            "command: ['true']\nrestart: always\nrestart_delay: 0s\nrestart_delay_max: 0s\n",
        );
    }
    env.unit("steady", "command: [sleep, '100000']\n");
    let mut tend = env.up();
    wait_socket(&env, &tend);
    wait_state(&env, &tend, "steady", "running");
    let mut stream = UnixStream::connect(env.socket()).unwrap();
    // A small receive buffer: the backlog is tend's, not the kernel's.
    let size: libc::c_int = 4096;
    // SAFETY: a valid socket and a c_int of the size given.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&stream),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    stream.write_all(b"{\"v\":1,\"cmd\":\"events\"}\n").unwrap();
    // Not reading: meanwhile tend keeps answering others.
    let status = ctl(&env, &["status", "steady"]);
    assert_eq!(status.code, 0, "{}", status.show());
    // Well past the 1 MiB backlog, tend has cut it off: the last line is
    // the overflow, and then the connection is closed.
    tend.wait_until(Duration::from_secs(60), "many restarts", || {
        status_list(&env).iter().map(|s| s["restarts"].as_u64().unwrap_or(0)).sum::<u64>() > 4000
    });
    stream.set_read_timeout(Some(T)).unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("closed by tend after the overflow line");
    let text = String::from_utf8_lossy(&all);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 10, "events came first: {} lines", lines.len());
    assert!(lines[0].starts_with("{\"ok\":true"), "{}", lines[0]);
    assert_eq!(*lines.last().unwrap(), "{\"event\":\"overflow\"}");
    for line in &lines[1..lines.len() - 1] {
        let e: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("a whole line: {line}: {e}"));
        assert!(e["service"].as_str().is_some_and(|s| s.starts_with("spin")), "{e}");
    }
    let status = ctl(&env, &["status", "steady"]);
    assert_eq!(status.code, 0, "supervision went on: {}", status.show());
    shutdown(&env, &mut tend);
}
