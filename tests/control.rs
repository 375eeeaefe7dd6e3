//! Issue 3, the control plane through the real binary: `tend status` (table
//! and JSON, health exit status), start/stop/restart with their waiting
//! semantics, signal, unknown names, exit codes 0/1/2/3, shutdown, and the
//! socket itself: mode, peer credentials, hostile or stuck clients, a second
//! `tend up`, a stale socket file.

mod common;
use common::*;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// ---- helpers of this file (shared ones are in tests/common) ----

/// One raw request line → the first reply line (bounded by a read timeout).
fn raw_call(socket: &Path, line: &str) -> String {
    let mut s = UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    reply
}

trait NoneOrNull {
    fn is_none_or_null(&self) -> bool;
}

impl NoneOrNull for Option<&Value> {
    fn is_none_or_null(&self) -> bool {
        self.map(Value::is_null).unwrap_or(true)
    }
}

fn alive(pid: i32) -> bool {
    !is_gone(pid)
}

/// A service that runs until stopped, stopping quickly.
fn sleeper(env: &Env, name: &str) {
    env.unit(name, &format!("{}stop_timeout: 500ms\n", sh("exec sleep 100000")));
}

fn rfc3339_ok(s: &str) -> bool {
    humantime::parse_rfc3339_weak(s).is_ok()
        && s.len() >= 20
        && s.as_bytes()[10] == b'T'
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

// ---- status ----

#[test]
fn status_table_has_the_columns_and_exits_0_when_all_are_healthy() {
    let env = Env::new();
    sleeper(&env, "web");
    // Runs to completion successfully: a good state too.
    env.unit("job", &format!("{}restart: never\n", sh("exit 0")));
    let mut tend = env.up();
    let list = wait_running(&env, &tend, &["web"]);
    tend.wait_until(T, "job to exit", || state_of(&env, "job").0 == "exited");
    let web_pid = pid_of(&list, "web");

    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 0, "all healthy: status must exit 0\n{}\n{}", out.show(), tend.dump());
    let lines: Vec<&str> = out.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST-EXIT"], "{}", out.show());
    let web: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("{}", out.show()))
        .split_whitespace()
        .collect();
    assert_eq!(web[1], "running", "{}", out.show());
    assert_eq!(web[2], web_pid.to_string(), "{}", out.show());
    assert!(
        web[3].ends_with('s') || web[3].ends_with('m') || web[3].ends_with('h'),
        "uptime: {}",
        out.show()
    );
    assert_eq!(web[4], "0", "{}", out.show());
    assert_eq!(web[5], "-", "{}", out.show());
    let job: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("job "))
        .unwrap_or_else(|| panic!("{}", out.show()))
        .split_whitespace()
        .collect();
    assert_eq!(&job[1..3], ["exited", "-"], "{}", out.show());
    assert_eq!(job[5..].join(" "), "status 0", "{}", out.show());
    // Columns are aligned: every row's STATE starts where the header's does.
    let col = lines[0].find("STATE").unwrap();
    for l in &lines[1..] {
        assert!(
            l[col..].starts_with("running") || l[col..].starts_with("exited"),
            "misaligned:\n{}",
            out.stdout
        );
    }
    shutdown(&env, &mut tend);
}

#[test]
fn status_json_has_the_documented_fields() {
    let env = Env::new();
    sleeper(&env, "web");
    env.unit("bad", &format!("{}restart: never\n", sh("exit 3")));
    env.unit("killed", &format!("{}restart: never\n", sh("kill -KILL $$")));
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    tend.wait_until(T, "bad and killed to exit", || {
        let (_, l) = status_json(&env, &[]);
        ["bad", "killed"].iter().all(|n| service(&l, n).is_some_and(|s| s["state"] == "exited"))
    });
    let (code, list) = status_json(&env, &[]);
    assert_eq!(code, 1, "a service exited with status 3: status must exit 1\n{list:?}");
    for s in &list {
        for field in ["name", "state", "pid", "since", "restarts", "last_exit", "reason"] {
            assert!(s.get(field).is_some(), "field {field} missing in {s}");
        }
        assert!(rfc3339_ok(s["since"].as_str().unwrap_or("")), "since is not RFC 3339: {s}");
        assert!(s["restarts"].is_u64(), "{s}");
    }
    let web = service(&list, "web").unwrap();
    assert_eq!(web["state"], "running");
    assert!(web["pid"].as_i64().unwrap() > 1, "{web}");
    assert!(web["last_exit"].is_null(), "{web}");
    assert!(web["reason"].is_null(), "{web}");

    let bad = service(&list, "bad").unwrap();
    assert!(bad["pid"].is_null(), "{bad}");
    assert_eq!(bad["last_exit"]["code"], 3, "{bad}");
    assert!(bad["last_exit"].get("signal").is_none_or_null(), "{bad}");
    assert!(rfc3339_ok(bad["last_exit"]["time"].as_str().unwrap_or("")), "{bad}");
    assert!(bad["reason"].as_str().unwrap_or("").contains("status 3"), "{bad}");

    let killed = service(&list, "killed").unwrap();
    assert_eq!(killed["last_exit"]["signal"], "SIGKILL", "{killed}");
    assert!(killed["last_exit"].get("code").is_none_or_null(), "{killed}");
    assert!(rfc3339_ok(killed["last_exit"]["time"].as_str().unwrap_or("")), "{killed}");

    // Only the listed services count for the exit status.
    let (code, only_web) = status_json(&env, &["web"]);
    assert_eq!(code, 0, "{only_web:?}");
    assert_eq!(only_web.len(), 1);
    // The table shows the reason of the failed one, and exits 1 too.
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 1, "{}", out.show());
    let bad_row = out.stdout.lines().find(|l| l.starts_with("bad ")).unwrap_or_default();
    assert!(bad_row.contains("status 3"), "{}", out.show());
    shutdown(&env, &mut tend);
}

#[test]
fn status_exits_1_when_a_service_is_stopped_or_failed() {
    let env = Env::new();
    sleeper(&env, "web");
    env.unit(
        "crash",
        &format!(
            "{}restart: on-failure\nrestart_delay: 10ms\nstart_limit: {{burst: 1, interval: 60s}}\n",
            sh("exit 1")
        ),
    );
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    tend.wait_until(T, "crash to be failed", || state_of(&env, "crash").0 == "failed");
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 1, "{}", out.show());
    let row = out.stdout.lines().find(|l| l.starts_with("crash ")).unwrap_or_default();
    assert!(
        row.contains("failed") && row.contains("start limit"),
        "reason missing in the table\n{}",
        out.show()
    );
    let (_, list) = status_json(&env, &["crash"]);
    assert!(list[0]["reason"].as_str().unwrap_or("").contains("start limit"), "{list:?}");

    assert_eq!(ctl(&env, &["status", "web"]).code, 0);
    let out = ctl(&env, &["stop", "web"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = ctl(&env, &["status", "web"]);
    assert_eq!(out.code, 1, "a stopped service is not healthy\n{}", out.show());
    shutdown(&env, &mut tend);
}

// ---- start / stop / restart ----

/// A service that takes ~300 ms to stop after SIGTERM: shows that the
/// commands wait rather than merely ask.
fn slow_stopper(env: &Env, name: &str) {
    env.unit(
        name,
        &format!("{}stop_timeout: 5s\n", sh("trap 'sleep 0.3; exit 0' TERM\nwhile :; do sleep 0.05; done")),
    );
}

#[test]
fn stop_returns_once_the_process_is_gone() {
    let env = Env::new();
    slow_stopper(&env, "web");
    let mut tend = env.up();
    let pid = pid_of(&wait_running(&env, &tend, &["web"]), "web");
    let out = ctl(&env, &["stop", "web"]);
    // Checked at once, no polling: the process must already be gone.
    let gone = is_gone(pid);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    assert!(gone, "`tend stop web` returned while pid {pid} still runs\n{}", out.show());
    assert!(
        out.took >= Duration::from_millis(250),
        "stop returned before the service could have stopped: {:?}",
        out.took
    );
    assert!(out.stdout.contains("web: stopped"), "{}", out.show());
    assert_eq!(state_of(&env, "web"), ("stopped".to_string(), None));
    // Stopping it again is fine and says so.
    let out = ctl(&env, &["stop", "web"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("already stopped"), "{}", out.show());
    shutdown(&env, &mut tend);
}

#[test]
fn start_returns_once_the_service_runs() {
    let env = Env::new();
    sleeper(&env, "web");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    assert_eq!(ctl(&env, &["stop", "web"]).code, 0);
    let out = ctl(&env, &["start", "web"]);
    let (state, pid) = state_of(&env, "web");
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    assert_eq!(state, "running", "{}", out.show());
    let pid = pid.unwrap();
    assert!(alive(pid), "pid {pid} reported running is not alive");
    assert!(out.stdout.contains(&format!("web: started (pid {pid})")), "{}", out.show());
    let out = ctl(&env, &["start", "web"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("already running"), "{}", out.show());
    shutdown(&env, &mut tend);
}

#[test]
fn restart_returns_once_a_new_process_runs() {
    let env = Env::new();
    slow_stopper(&env, "web");
    let mut tend = env.up();
    let old = pid_of(&wait_running(&env, &tend, &["web"]), "web");
    let out = ctl(&env, &["restart", "web"]);
    let old_gone = is_gone(old);
    let (state, pid) = state_of(&env, "web");
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    assert!(old_gone, "old pid {old} still runs after restart returned");
    assert_eq!(state, "running", "{}", out.show());
    let new = pid.unwrap();
    assert_ne!(new, old, "restart kept the same pid");
    assert!(alive(new), "new pid {new} not alive");
    assert!(out.stdout.contains(&format!("web: restarted (pid {new})")), "{}", out.show());
    shutdown(&env, &mut tend);
}

#[test]
fn no_wait_returns_at_once() {
    let env = Env::new();
    // Takes 3 s to stop after SIGTERM.
    env.unit(
        "web",
        &format!("{}stop_timeout: 10s\n", sh("trap 'sleep 3; exit 0' TERM\nwhile :; do sleep 0.05; done")),
    );
    let tend = env.up();
    let pid = pid_of(&wait_running(&env, &tend, &["web"]), "web");
    let out = ctl(&env, &["stop", "--no-wait", "web"]);
    let still_alive = alive(pid);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.took < Duration::from_millis(1500), "--no-wait waited: {}", out.show());
    assert!(still_alive, "the service stopped before a 3 s stop could finish?");
    assert!(out.stdout.contains("stop requested"), "{}", out.show());
    assert_eq!(state_of(&env, "web").0, "stopping");
    wait_gone(pid, T, "web after stop --no-wait");
    tend.wait_until(T, "web stopped", || state_of(&env, "web").0 == "stopped");
    let out = ctl(&env, &["start", "--no-wait", "web"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("start requested"), "{}", out.show());
    tend.wait_until(T, "web running again", || state_of(&env, "web").0 == "running");
}

#[test]
fn all_acts_on_every_service() {
    let env = Env::new();
    for n in ["a", "b", "c"] {
        sleeper(&env, n);
    }
    let mut tend = env.up();
    let list = wait_running(&env, &tend, &["a", "b", "c"]);
    let first: Vec<i32> = ["a", "b", "c"].iter().map(|n| pid_of(&list, n)).collect();

    let out = ctl(&env, &["restart", "--all"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let (_, list) = status_json(&env, &[]);
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        let s = service(&list, n).unwrap();
        assert_eq!(s["state"], "running", "{s}");
        assert_ne!(pid_of(&list, n), first[i], "{n} not restarted");
        assert!(is_gone(first[i]));
    }
    let second: Vec<i32> = ["a", "b", "c"].iter().map(|n| pid_of(&list, n)).collect();

    let out = ctl(&env, &["stop", "--all"]);
    assert_eq!(out.code, 0, "{}", out.show());
    for p in &second {
        assert!(is_gone(*p), "pid {p} alive after stop --all returned");
    }
    let (code, list) = status_json(&env, &[]);
    assert_eq!(code, 1);
    assert!(list.iter().all(|s| s["state"] == "stopped"), "{list:?}");

    let out = ctl(&env, &["start", "--all"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let (code, list) = status_json(&env, &[]);
    assert_eq!(code, 0, "{list:?}");
    for n in ["a", "b", "c"] {
        assert!(alive(pid_of(&list, n)));
    }
    // --all and names together is a usage error.
    assert_eq!(ctl(&env, &["stop", "--all", "a"]).code, 2);
    shutdown(&env, &mut tend);
}

// ---- signal ----

#[test]
fn signal_is_delivered_to_the_service() {
    let env = Env::new();
    let got = env.p("got-usr1");
    env.unit(
        "web",
        &format!(
            "{}stop_timeout: 500ms\n",
            sh(&format!("trap '{}' USR1\nwhile :; do sleep 0.05; done", put("echo usr1", &got)))
        ),
    );
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    let out = ctl(&env, &["signal", "SIGUSR1", "web"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("web: sent SIGUSR1"), "{}", out.show());
    assert_eq!(env.await_file(&tend, "got-usr1").trim(), "usr1");
    // Short names and numbers work too; a bad signal is a usage error.
    assert_eq!(ctl(&env, &["signal", "USR1", "web"]).code, 0);
    let out = ctl(&env, &["signal", "SIGNOPE", "web"]);
    assert_eq!(out.code, 2, "{}", out.show());
    // A stopped service cannot be signalled.
    assert_eq!(ctl(&env, &["stop", "web"]).code, 0);
    let out = ctl(&env, &["signal", "USR1", "web"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stderr.contains("not running"), "{}", out.show());
    shutdown(&env, &mut tend);
}

// ---- unknown names ----

#[test]
fn unknown_names_exit_1_listing_the_known_ones_and_the_closest() {
    let env = Env::new();
    sleeper(&env, "web");
    sleeper(&env, "worker");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web", "worker"]);
    for args in [
        &["status", "wbe"][..],
        &["start", "wbe"],
        &["stop", "wbe"],
        &["restart", "wbe"],
        &["signal", "HUP", "wbe"],
        &["logs", "wbe"],
    ] {
        let out = ctl(&env, args);
        assert_eq!(out.code, 1, "{args:?}\n{}", out.show());
        assert!(out.stderr.contains("wbe"), "{args:?} does not name the unknown service\n{}", out.show());
        assert!(out.stderr.contains("did you mean 'web'"), "{args:?} no suggestion\n{}", out.show());
        assert!(
            out.stderr.contains("web") && out.stderr.contains("worker"),
            "{args:?} known names\n{}",
            out.show()
        );
    }
    // One unknown among known ones: nothing is done.
    let pid = pid_of(&status_json(&env, &[]).1, "web");
    assert_eq!(ctl(&env, &["stop", "web", "nope"]).code, 1);
    assert!(alive(pid), "stop web nope stopped web");
    shutdown(&env, &mut tend);
}

// ---- exit codes ----

#[test]
fn exit_codes_0_1_2_3() {
    let env = Env::new();
    // 3 before anything listens, naming the socket.
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 3, "{}", out.show());
    let sock = env.socket().display().to_string();
    assert!(out.stderr.contains(&sock), "does not name the socket\n{}", out.show());
    assert!(out.stderr.contains("tend up"), "{}", out.show());
    for args in [&["stop", "x"][..], &["reload"], &["logs"], &["shutdown"], &["signal", "HUP", "x"]] {
        let out = ctl(&env, args);
        assert_eq!(out.code, 3, "{args:?}\n{}", out.show());
        assert!(out.stderr.contains(&sock), "{args:?}\n{}", out.show());
    }
    // --socket wins over $TEND_SOCKET.
    let other = env.p("other.sock");
    let out = ctl(&env, &["status", "--socket", other.to_str().unwrap()]);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains(other.to_str().unwrap()), "{}", out.show());

    sleeper(&env, "web");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    assert_eq!(ctl(&env, &["status"]).code, 0);
    assert_eq!(ctl(&env, &["restart", "web"]).code, 0);
    assert_eq!(ctl(&env, &["stop", "nope"]).code, 1);
    // Usage errors: no names, unknown flag, unknown subcommand.
    for args in [&["stop"][..], &["start"], &["status", "--bogus"], &["frobnicate"], &["signal", "HUP"]] {
        let out = ctl(&env, args);
        assert_eq!(out.code, 2, "{args:?}\n{}", out.show());
    }
    shutdown(&env, &mut tend);
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 3, "after shutdown\n{}", out.show());
}

#[test]
fn a_failed_start_exits_1() {
    let env = Env::new();
    // Cannot be executed at all: every start fails.
    let missing = env.p("no-such-program");
    env.unit(
        "crash",
        &format!(
            "command: [{}]\nrestart: on-failure\nrestart_delay: 10ms\nstart_limit: {{burst: 1, interval: 60s}}\n",
            missing.display()
        ),
    );
    sleeper(&env, "web");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    tend.wait_until(T, "crash to be failed", || state_of(&env, "crash").0 == "failed");
    let out = ctl(&env, &["start", "crash"]);
    assert_eq!(out.code, 1, "{}\n{}", out.show(), tend.dump());
    assert!(out.stderr.contains("crash"), "{}", out.show());
    shutdown(&env, &mut tend);
}

// ---- shutdown ----

#[test]
fn shutdown_returns_only_after_tend_has_exited() {
    let env = Env::new();
    slow_stopper(&env, "a");
    slow_stopper(&env, "b");
    let mut tend = env.up();
    let list = wait_running(&env, &tend, &["a", "b"]);
    let pids = [pid_of(&list, "a"), pid_of(&list, "b")];
    let out = ctl(&env, &["shutdown"]);
    let services_gone = pids.iter().all(|p| is_gone(*p));
    let exited_now = tend.try_status().is_some() || proc_state(tend.pid) == Some('Z');
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    assert!(services_gone, "services still running when `tend shutdown` returned");
    assert!(out.took >= Duration::from_millis(250), "returned before the 300 ms stops: {}", out.show());
    if !exited_now {
        eprintln!("note: tend had closed the socket but not yet exited when `tend shutdown` returned");
    }
    let st = tend.wait_exit(Duration::from_secs(1));
    assert_eq!(st.code(), Some(0), "{}", tend.dump());
    assert!(exited_now, "tend (pid {}) was still running when `tend shutdown` returned", tend.pid);
}

// ---- the socket ----

#[test]
fn socket_mode_is_0600() {
    let env = Env::new();
    sleeper(&env, "web");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    let meta = std::fs::metadata(env.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "mode {:o}", meta.permissions().mode());
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    shutdown(&env, &mut tend);
}

#[test]
fn socket_group_gives_mode_0660_and_the_group() {
    let env = Env::new();
    sleeper(&env, "web");
    let gid = nix::unistd::getegid().as_raw();
    let units = env.units();
    let mut tend =
        env.spawn(&["up", "--units", units.to_str().unwrap(), "--socket-group", &gid.to_string()], |_| {});
    wait_running(&env, &tend, &["web"]);
    let meta = std::fs::metadata(env.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660, "mode {:o}", meta.permissions().mode());
    assert_eq!(meta.gid(), gid);
    shutdown(&env, &mut tend);
    // An unknown group is a usage error.
    let mut bad =
        env.spawn(&["up", "--units", units.to_str().unwrap(), "--socket-group", "no-such-group-xyz"], |_| {});
    assert_eq!(bad.exit_code(T), 2, "{}", bad.dump());
}

/// `tend ARGS` run as uid/gid 65534 (nobody) with no supplementary groups.
fn as_nobody(env: &Env, gid: u32, args: &[&str]) -> Out {
    as_nobody_in(env, gid, &[], args)
}

/// `tend ARGS` run as uid 65534 with primary group `gid` and the given
/// supplementary groups.
fn as_nobody_in(env: &Env, gid: u32, groups: &[u32], args: &[&str]) -> Out {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", &format!("--regid={gid}")]);
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        cmd.arg(format!("--groups={}", list.join(",")));
    }
    cmd.args(["--", tend_bin()]).args(args).env("TEND_SOCKET", env.socket());
    run_cmd(cmd, &format!("(as nobody) tend {}", args.join(" ")))
}

#[test]
fn another_non_root_user_is_refused() {
    if skip_unless_root("another_non_root_user_is_refused") {
        return;
    }
    let env = Env::new();
    sleeper(&env, "web");
    let tend = env.up();
    let pid = pid_of(&wait_running(&env, &tend, &["web"]), "web");
    // The temp dir is reachable by nobody; the 0600 socket is not writable.
    std::fs::set_permissions(env.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(&env, 65534, &["stop", "web"]);
    assert_ne!(out.code, 0, "nobody could stop web\n{}", out.show());
    assert!(out.stderr.to_lowercase().contains("permission denied"), "{}", out.show());
    assert!(alive(pid), "nobody stopped web");

    // Past the file permissions (a 0666 socket), SO_PEERCRED still refuses.
    std::fs::set_permissions(env.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&env, 65534, &["stop", "web"]);
    assert_ne!(out.code, 0, "the peer credential check let nobody in\n{}", out.show());
    assert!(out.stderr.contains("65534"), "refusal should name the uid\n{}", out.show());
    assert!(alive(pid), "nobody stopped web");
    let out = as_nobody(&env, 65534, &["status"]);
    assert_ne!(out.code, 0, "{}", out.show());
    assert!(!out.stdout.contains("web"), "status leaked to nobody\n{}", out.show());
    // The owner is still served.
    assert_eq!(ctl(&env, &["status"]).code, 0);
    std::fs::set_permissions(env.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
}

#[test]
fn socket_group_admits_its_members_and_nobody_else() {
    if skip_unless_root("socket_group_admits_its_members_and_nobody_else") {
        return;
    }
    let env = Env::new();
    sleeper(&env, "web");
    // A group that `nobody` (65534/65534) is not in: daemon (1) or any gid.
    let group = 4242u32;
    let units = env.units();
    let tend =
        env.spawn(&["up", "--units", units.to_str().unwrap(), "--socket-group", &group.to_string()], |_| {});
    let pid = pid_of(&wait_running(&env, &tend, &["web"]), "web");
    std::fs::set_permissions(env.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Not in the group: refused.
    let out = as_nobody(&env, 65534, &["stop", "web"]);
    assert_ne!(out.code, 0, "{}", out.show());
    assert!(alive(pid));
    // Even past the file mode, the peer check refuses a non-member.
    std::fs::set_permissions(env.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&env, 65534, &["stop", "web"]);
    assert_ne!(out.code, 0, "non-member admitted by the peer check\n{}", out.show());
    assert!(alive(pid));
    std::fs::set_permissions(env.socket(), std::fs::Permissions::from_mode(0o660)).unwrap();
    // A member of the group (as its gid) is served.
    let out = as_nobody(&env, group, &["status"]);
    assert_eq!(out.code, 0, "a member of the socket group was refused\n{}\n{}", out.show(), tend.dump());
    assert!(out.stdout.contains("web"), "{}", out.show());
    // A supplementary member is served too, even past a 0666 socket: the
    // peer check reads the groups the kernel took at connect (SO_PEERGROUPS).
    let out = as_nobody_in(&env, 65534, &[group], &["status"]);
    assert_eq!(out.code, 0, "a supplementary member was refused\n{}\n{}", out.show(), tend.dump());
    assert!(out.stdout.contains("web"), "{}", out.show());
    std::fs::set_permissions(env.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody_in(&env, 65534, &[group + 1, group], &["status"]);
    assert_eq!(out.code, 0, "a supplementary member was refused\n{}\n{}", out.show(), tend.dump());
    std::fs::set_permissions(env.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
}

// ---- hostile and stuck clients ----

#[test]
fn garbage_gets_an_error_reply_and_others_are_still_served() {
    let env = Env::new();
    sleeper(&env, "web");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    let sock = env.socket();
    for (line, code) in [
        ("garbage\n", "bad_request"),
        ("{\"cmd\":\"status\"}\n", "bad_request"),
        ("{\"v\":1,\"cmd\":\"fly\"}\n", "bad_request"),
        ("{\"v\":99,\"cmd\":\"status\"}\n", "unsupported_version"),
        ("\u{0}\u{1}\u{ff}{{{{\n", "bad_request"),
    ] {
        let reply = raw_call(&sock, line);
        assert!(reply.starts_with("{\"ok\":false"), "{line:?} → {reply:?}");
        let v: Value =
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{line:?} → not JSON {reply:?}: {e}"));
        assert_eq!(v["error"]["code"], code, "{line:?} → {reply}");
    }
    // After a bad line, the same connection still answers a good one.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"nonsense\n{\"v\":1,\"cmd\":\"status\"}\n").unwrap();
    let mut r = BufReader::new(s);
    let mut a = String::new();
    r.read_line(&mut a).unwrap();
    let mut b = String::new();
    r.read_line(&mut b).unwrap();
    assert!(a.starts_with("{\"ok\":false"), "{a}");
    assert!(b.starts_with("{\"ok\":true") && b.contains("\"web\""), "{b}");
    // The documented wire format works as is.
    let reply = raw_call(&sock, "{\"v\":1,\"cmd\":\"hello\"}\n");
    let v: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["pid"].as_i64(), Some(tend.pid as i64), "{reply}");
    assert_eq!(ctl(&env, &["status"]).code, 0);
    shutdown(&env, &mut tend);
}

#[test]
fn ten_megabytes_without_a_newline_is_refused_and_status_stays_prompt() {
    let env = Env::new();
    sleeper(&env, "web");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    let sock = env.socket();
    let mut big = UnixStream::connect(&sock).unwrap();
    big.set_write_timeout(Some(T)).unwrap();
    big.set_read_timeout(Some(T)).unwrap();
    let mut writer = big.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 10 * 1024 * 1024 {
            match writer.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break, // closed by the supervisor: allowed
            }
        }
        sent
    });
    // While it sends, others are answered promptly.
    for _ in 0..5 {
        let t0 = Instant::now();
        let reply = raw_call(&sock, "{\"v\":1,\"cmd\":\"status\"}\n");
        assert!(reply.starts_with("{\"ok\":true"), "{reply}");
        assert!(t0.elapsed() < Duration::from_secs(2), "status took {:?}", t0.elapsed());
    }
    let sent = sender.join().unwrap();
    let mut rest = Vec::new();
    let _ = big.read_to_end(&mut rest); // an error (reset) is a closed connection too
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.contains("request_too_large"),
        "expected request_too_large or a closed connection, got {text:?}"
    );
    eprintln!("oversized client: sent {sent} bytes before the supervisor closed; reply {:?}", text.trim());
    let t0 = Instant::now();
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    assert!(t0.elapsed() < Duration::from_secs(2), "status took {:?}", t0.elapsed());
    shutdown(&env, &mut tend);
}

#[test]
fn a_silent_or_half_sent_client_does_not_block_others() {
    let env = Env::new();
    sleeper(&env, "web");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    let sock = env.socket();
    let _silent = UnixStream::connect(&sock).unwrap();
    let mut half = UnixStream::connect(&sock).unwrap();
    half.write_all(b"{\"v\":1,\"cmd\":\"sta").unwrap();
    let mut silent_many: Vec<UnixStream> = (0..20).map(|_| UnixStream::connect(&sock).unwrap()).collect();
    for _ in 0..3 {
        let out = ctl(&env, &["status"]);
        assert_eq!(out.code, 0, "{}", out.show());
        assert!(out.took < Duration::from_secs(2), "{}", out.show());
    }
    assert_eq!(ctl(&env, &["restart", "web"]).code, 0);
    // The half-sent request completes later and is answered.
    half.set_read_timeout(Some(T)).unwrap();
    half.write_all(b"tus\"}\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&half).read_line(&mut reply).unwrap();
    assert!(reply.starts_with("{\"ok\":true"), "{reply}");
    silent_many.clear();
    shutdown(&env, &mut tend);
}

#[test]
fn a_follower_that_never_reads_does_not_block_others_and_is_dropped() {
    let env = Env::new();
    sleeper(&env, "web");
    // ~20 MB of 100-byte lines, then idle.
    let done = env.p("noisy-done");
    let trigger = env.p("noisy-go");
    env.unit(
        "noisy",
        &format!(
            "{}stop_timeout: 500ms\n",
            sh(&format!(
                "echo ready\nwhile [ ! -e {} ]; do sleep 0.01; done\nyes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456 | head -n 200000\ntouch {}\nexec sleep 100000",
                trigger.display(),
                done.display()
            ))
        ),
    );
    let mut tend = env.up();
    wait_running(&env, &tend, &["web", "noisy"]);
    tend.wait_stdout("| ready");
    let sock = env.socket();
    let mut stalled = UnixStream::connect(&sock).unwrap();
    stalled
        .write_all(b"{\"v\":1,\"cmd\":\"logs\",\"names\":[\"noisy\"],\"lines\":1,\"follow\":true}\n")
        .unwrap();
    // Its first line (history) shows it is following; then it reads no more.
    stalled.set_read_timeout(Some(T)).unwrap();
    let mut first = [0u8; 1];
    let mut line = Vec::new();
    while first[0] != b'\n' {
        stalled.read_exact(&mut first).unwrap();
        line.push(first[0]);
    }
    assert!(String::from_utf8_lossy(&line).contains("ready"), "{}", String::from_utf8_lossy(&line));
    std::fs::write(&trigger, "").unwrap();
    // Others are served while the flood goes on and the follower reads nothing.
    // Bounded by time, not by a number of calls: on a loaded machine the
    // flood takes far longer than the calls do.
    let flood = Duration::from_secs(120);
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut calls = 0;
    while !done.exists() || calls < 3 {
        let t0 = Instant::now();
        let reply = raw_call(&sock, "{\"v\":1,\"cmd\":\"status\"}\n");
        worst = worst.max(t0.elapsed());
        assert!(reply.starts_with("{\"ok\":true"), "{reply}");
        calls += 1;
        assert!(
            started.elapsed() < flood,
            "the writer did not finish in {flood:?} ({calls} calls)\n{}",
            tend.dump()
        );
        // A pause between calls leaves the CPU to the flood.
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("status during the flood: {calls} calls, worst {worst:?}");
    assert!(worst < Duration::from_secs(2), "status took {worst:?} while a follower stalled");
    let out = ctl(&env, &["restart", "web"]);
    assert_eq!(out.code, 0, "{}", out.show());
    // The stalled follower was dropped: what it can still read is bounded
    // and ends with `too_slow`, then the connection closes.
    stalled.set_read_timeout(Some(T)).unwrap();
    let mut got = Vec::new();
    let r = stalled.read_to_end(&mut got);
    assert!(r.is_ok(), "follower not closed (read: {r:?}) after reading {} bytes", got.len());
    let text = String::from_utf8_lossy(&got);
    let last = text.lines().last().unwrap_or_default();
    eprintln!("stalled follower got {} bytes before being dropped", got.len());
    assert!(last.contains("too_slow"), "last line {last:?}");
    assert!(got.len() < 20_000_000 * 3 / 2, "{} bytes: the buffer is not bounded", got.len());
    shutdown(&env, &mut tend);
}

// ---- one supervisor per socket ----

#[test]
fn a_second_tend_up_on_the_same_socket_refuses_and_names_the_pid() {
    let env = Env::new();
    sleeper(&env, "web");
    let mut first = env.up();
    let pid = pid_of(&wait_running(&env, &first, &["web"]), "web");
    let mut second = env.up();
    let code = second.exit_code(T);
    assert_ne!(code, 0, "{}", second.dump());
    assert!(
        second.stderr().contains(&format!("pid {}", first.pid)),
        "does not name the pid\n{}",
        second.dump()
    );
    assert!(alive(pid), "the second tend disturbed the first's service");
    assert!(descendants(second.pid).is_empty(), "the second tend started something");
    assert_eq!(ctl(&env, &["status"]).code, 0, "{}", first.dump());
    assert!(env.socket().exists(), "the second tend removed the first's socket");
    let (_, list) = status_json(&env, &[]);
    assert_eq!(pid_of(&list, "web"), pid);
    shutdown(&env, &mut first);
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let env = Env::new();
    {
        let l = std::os::unix::net::UnixListener::bind(env.socket()).unwrap();
        drop(l); // the file stays, nobody listens
    }
    assert!(env.socket().exists());
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 3, "a stale socket means no supervisor\n{}", out.show());
    assert!(out.stderr.contains(&env.socket().display().to_string()), "{}", out.show());
    sleeper(&env, "web");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web"]);
    assert_eq!(ctl(&env, &["status"]).code, 0, "{}", tend.dump());
    shutdown(&env, &mut tend);
    assert!(!env.socket().exists(), "tend left its socket behind");
}
