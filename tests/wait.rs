//! Issue 12, `tend wait` and `tend up --detach`: a wait returns as soon as
//! the state holds and fails fast when a service fails on the way (or at
//! its timeout); `up -d` starts the supervisor in the background, in its
//! own session with its output in a log file, and returns once the stack is
//! up (0) or something failed to start (1).

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `tend` client started and left running (a wait that should not
/// return yet); killed on drop if it is still there.
struct Running(Option<std::process::Child>);

impl Running {
    fn start(env: &Env, args: &[&str]) -> Running {
        let mut cmd = Command::new(tend_bin());
        cmd.args(args).env("TEND_SOCKET", env.socket());
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        Running(Some(cmd.spawn().expect("tend runs")))
    }

    fn still_running(&mut self) -> bool {
        self.0.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Its exit code and output, once it exits (bounded).
    fn finish(mut self, within: Duration) -> (i32, String, String) {
        let mut child = self.0.take().unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < within, "still waiting after {within:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A notify service that becomes ready once `file` exists.
fn ready_when(env: &Env, name: &str, file: &str) {
    let file = env.p(file);
    env.unit(
        name,
        &format!(
            "command: [sh, -c, 'while [ ! -e {} ]; do sleep 0.01; done; echo ready >&3; exec sleep 100000']\n\
             type: notify\nnotify_fd: 3\n",
            file.display()
        ),
    );
}

#[test]
fn wait_returns_as_soon_as_every_service_is_ready() {
    let env = Env::new();
    ready_when(&env, "db", "db-go");
    env.unit("web", "command: [sleep, '100000']\ndepends_on: {db: ready}\n");
    let mut tend = env.up();
    wait_socket(&env, &tend);
    wait_state(&env, &tend, "db", "starting");
    let mut waiting = Running::start(&env, &["wait", "--ready", "db", "web"]);
    let out = ctl(&env, &["status", "web"]);
    assert!(out.stdout.contains("waiting"), "web waits for db: {}", out.show());
    assert!(waiting.still_running(), "nothing is ready yet");
    std::fs::write(env.p("db-go"), "").unwrap();
    let (code, stdout, stderr) = waiting.finish(T);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let db = pid_of(&status_list(&env), "db");
    let web = pid_of(&status_list(&env), "web");
    assert_eq!(stdout, format!("db: ready (pid {db})\nweb: running (pid {web})\n"));
    // Already there: at once. --up holds for a service that is not ready yet too.
    let out = ctl(&env, &["wait", "--ready", "web"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, format!("web: running (pid {web})\n").as_str()),
        "{}",
        out.show()
    );
    shutdown(&env, &mut tend);
}

#[test]
fn wait_fails_fast_with_the_reason_when_a_service_fails_on_the_way() {
    let env = Env::new();
    let go = env.p("go");
    // Never ready: it crashes once `go` exists, and the start limit
    // (burst 1) puts it in failed at the second crash.
    env.unit(
        "web",
        &format!(
            "command: [sh, -c, 'while [ ! -e {} ]; do sleep 0.01; done; exit 3']\ntype: notify\nnotify_fd: 3\n\
             restart: always\nrestart_delay: 10ms\nstart_limit: {{burst: 1, interval: 1m}}\n",
            go.display()
        ),
    );
    let mut tend = env.up();
    wait_socket(&env, &tend);
    wait_state(&env, &tend, "web", "starting");
    let waiting = Running::start(&env, &["wait", "--ready", "--timeout", "5m", "web"]);
    std::fs::write(&go, "").unwrap();
    let started = Instant::now();
    let (code, stdout, stderr) = waiting.finish(T);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "it did not wait for the timeout");
    assert!(stderr.contains("web: failed: start limit hit (2 failures in 1m)"), "{stderr}");
    assert_eq!(state(&env, "web"), "failed");
    shutdown(&env, &mut tend);
}

#[test]
fn wait_gives_up_at_its_timeout_and_without_a_supervisor_exits_3() {
    let env = Env::new();
    ready_when(&env, "db", "never");
    env.unit("job", "command: ['true']\ntype: oneshot\n");
    let mut tend = env.up();
    wait_socket(&env, &tend);
    let out = ctl(&env, &["wait", "--ready", "--timeout", "300ms", "db"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stderr.contains("db: not ready yet: starting (pid "), "{}", out.show());
    assert!(out.stderr.ends_with("tend: timed out after 300ms: not ready yet: db\n"), "{}", out.show());
    // A oneshot that ran to success; stopped on request.
    let out = ctl(&env, &["wait", "--completed", "--timeout", "10s", "job"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "job: completed\n"), "{}", out.show());
    let stop = ctl(&env, &["stop", "--no-wait", "db"]);
    assert_eq!(stop.code, 0, "{}", stop.show());
    let out = ctl(&env, &["wait", "--stopped", "--timeout", "10s", "db"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "db: stopped\n"), "{}", out.show());
    // Asked by name and stopped: it will not be ready by itself.
    let out = ctl(&env, &["wait", "--ready", "db"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stderr.contains("tend: db: stopped (not ready)"), "{}", out.show());
    let out = ctl(&env, &["wait", "--up", "dbb"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stderr.contains("no service 'dbb' (did you mean 'db'?)"), "{}", out.show());
    shutdown(&env, &mut tend);
    let out = ctl(&env, &["wait", "db"]);
    assert_eq!(out.code, 3, "{}", out.show());
}

/// The background supervisor `tend up -d` started, by the pid it said:
/// shut down (or killed) at the end of the test.
struct Detached<'a> {
    env: &'a Env,
    pid: i32,
}

impl Detached<'_> {
    fn from<'a>(env: &'a Env, stderr: &str) -> Detached<'a> {
        let pid = stderr
            .split("running in the background (pid ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no pid in: {stderr}"));
        Detached { env, pid }
    }
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        if is_gone(self.pid) {
            return;
        }
        let _ = ctl(self.env, &["shutdown", "--timeout", "5s"]);
        if !is_gone(self.pid) {
            let kids = descendants(self.pid);
            kill(self.pid, libc::SIGKILL);
            for kid in kids {
                kill(kid, libc::SIGKILL);
            }
        }
    }
}

fn up_detached(env: &Env) -> Out {
    let units = env.units();
    let mut cmd = Command::new(tend_bin());
    cmd.args(["up", "-d", "--units", units.to_str().unwrap()])
        .env("TEND_SOCKET", env.socket())
        .current_dir(env.root());
    run_cmd_within(cmd, "tend up -d", Duration::from_secs(30))
}

#[test]
fn up_detach_returns_once_the_stack_is_up_and_runs_in_its_own_session_with_its_log() {
    let env = Env::new();
    env.unit(
        "db",
        "command: [sh, -c, 'echo db-says-hello; sleep 0.3; echo ready >&3; exec sleep 100000']\ntype: notify\nnotify_fd: 3\n",
    );
    env.unit("web", "command: [sleep, '100000']\ndepends_on: {db: ready}\n");
    env.unit("job", "command: ['true']\ntype: oneshot\n");
    let out = up_detached(&env);
    let detached = Detached::from(&env, &out.stderr);
    assert_eq!(out.code, 0, "{}", out.show());
    // It returned once every service was up: web (after db was ready) too.
    let list = status_list(&env);
    for name in ["db", "web"] {
        let pid = pid_of(&list, name);
        assert!(
            out.stdout.contains(&format!("{name}: ")) && out.stdout.contains(&format!("(pid {pid})")),
            "{}",
            out.show()
        );
    }
    assert!(out.stdout.contains("job: completed"), "{}", out.show());
    let log = env.p("tend.log");
    assert!(out.stderr.contains(&format!("its output in {}", log.display())), "{}", out.show());
    // Its own session, no terminal; not a child of the command that started it.
    let stat = proc_stat_fields(detached.pid).expect("the supervisor runs");
    assert_eq!(stat[3], detached.pid.to_string(), "a session of its own: {stat:?}");
    assert_eq!(stat[4], "0", "no controlling terminal");
    // Its output and its services' go to the log file beside the socket.
    tend_wait(|| lines_of(&read(&log), "db").contains(&"db-says-hello"), "the log file to hold db's line");
    assert!(lines_of(&read(&log), "tend").contains(&"db: ready"), "{}", read(&log));
    let out = ctl(&env, &["shutdown"]);
    assert_eq!(out.code, 0, "{}", out.show());
    wait_gone(detached.pid, T, "the supervisor after tend shutdown");
}

/// Poll `cond` (bounded), for conditions that involve no spawned tend.
fn tend_wait(mut cond: impl FnMut() -> bool, what: &str) {
    wait_until(T, what, &mut cond);
}

#[test]
fn up_detach_exits_1_when_a_service_fails_to_start_and_2_on_invalid_units() {
    let env = Env::new();
    env.unit("ok", "command: [sleep, '100000']\n");
    env.unit("broken", "command: [/no/such/program]\nrestart: never\n");
    let out = up_detached(&env);
    let detached = Detached::from(&env, &out.stderr);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stderr.contains("broken: failed: cannot execute /no/such/program"), "{}", out.show());
    assert!(out.stdout.contains("ok: running (pid "), "{}", out.show());
    // Another one on the same socket: refused, and says why.
    let again = up_detached(&env);
    assert_eq!(again.code, 1, "{}", again.show());
    assert!(
        again.stderr.contains(&format!("another supervisor (pid {}) is already running", detached.pid)),
        "{}",
        again.show()
    );
    drop(detached);

    let env = Env::new();
    env.unit("bad", "command: [sleep, '1']\nrestart: sometimes\n");
    let out = up_detached(&env);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(out.stderr.contains("bad.yaml:2:"), "the error on this terminal: {}", out.show());
    assert!(!env.socket().exists(), "nothing was started");
}
