//! Shared infrastructure for the end-to-end tests: a temp dir with a units
//! folder, a guard around a spawned `tend` (output captured to files, killed
//! with its descendants on drop), and polling helpers with bounded timeouts.
//!
//! Rules kept here so every test file follows them:
//! - never a fixed sleep: `wait_until` polls a condition with a deadline;
//! - never `waitpid(-1)`: the only waits are `Child::wait`/`try_wait` on the
//!   tend we spawned (tests run as threads of one process);
//! - never kill a process we did not start: only the spawned tend, its
//!   process group and its descendants (found by walking /proc ppid links).

#![allow(dead_code)]

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Default bound for conditions that should hold quickly when tend works.
pub const T: Duration = Duration::from_secs(10);

/// Path of the `tend` binary under test.
pub fn tend_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tend")
}

/// Whether the tests run as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether every test must run: set in CI (`.ci/run` exports `CI=1`),
/// where a test that cannot run (not root, a program missing) must fail
/// rather than pass quietly.
pub fn must_run() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Skip `test` because `why` (it needs root, a program, a capability):
/// returns true after a notice, or fails the test in CI (see [`must_run`]).
/// Use as `if skip("name", "needs X") { return; }`.
pub fn skip(test: &str, why: &str) -> bool {
    assert!(
        !must_run(),
        "{test} cannot run here ({why}), and CI runs every test: install what it needs in .ci/run"
    );
    eprintln!("SKIPPED ({why}): {test}");
    true
}

/// Skip when not root (see [`skip`]). Use as `if skip_unless_root("name") { return; }`.
pub fn skip_unless_root(test: &str) -> bool {
    !is_root() && skip(test, "needs root")
}

/// Skip when one of `programs` is not installed (see [`skip`]).
pub fn skip_unless_installed(test: &str, programs: &[&str]) -> bool {
    match programs.iter().find(|p| !have(p)) {
        Some(missing) => skip(test, &format!("{missing} not installed")),
        None => false,
    }
}

/// Poll `cond` every few milliseconds until it is true; panic after `timeout`
/// naming what was awaited.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Check that `cond` stays true during the whole of `window` (for "this
/// must NOT happen" assertions, e.g. "no restart": a bounded observation
/// window is the only way to show something did not happen).
pub fn assert_stays(window: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < window {
        assert!(cond(), "expected to stay true for {window:?}, but it did not: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(cond(), "expected to stay true for {window:?}, but it did not: {what}");
}

/// Contents of a file, empty when it does not exist (yet).
pub fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_default()
}

/// State letter of /proc/PID/stat, None when the process does not exist.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// Fields after "(comm) " in /proc/PID/stat: [state, ppid, pgrp, session, ...].
pub fn proc_stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// A process is gone when it does not exist or is a zombie (it has ended;
/// whoever inherited it may just not have reaped it yet).
pub fn is_gone(pid: i32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// Wait until `pid` (a process started by this test, via tend) is gone. On
/// timeout, SIGKILL it so the failed test leaves nothing behind, then panic.
pub fn wait_gone(pid: i32, timeout: Duration, what: &str) {
    let start = Instant::now();
    while !is_gone(pid) {
        if start.elapsed() > timeout {
            kill(pid, libc::SIGKILL);
            panic!("process {pid} ({what}) still running after {timeout:?} (killed it now)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Send `sig` to `pid` (a negative pid is a process group), ignoring errors.
pub fn kill(pid: i32, sig: i32) {
    if !(-1..=0).contains(&pid) {
        // SAFETY: kill has no memory-safety preconditions; pid is never 0 or
        // -1 here, so it cannot hit our own group or every process.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// All descendants of `root` (children, grandchildren...) from /proc ppid links.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Some(f) = proc_stat_fields(pid) {
                if let Some(ppid) = f.get(1).and_then(|p| p.parse::<i32>().ok()) {
                    children.entry(ppid).or_default().push(pid);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(|v| v.as_slice()).unwrap_or(&[]) {
            if seen.insert(c) {
                out.push(c);
                stack.push(c);
            }
        }
    }
    out
}

/// YAML for `command: [sh, -c, SCRIPT]` as a literal block (no quoting issues).
pub fn sh(script: &str) -> String {
    let mut y = String::from("command:\n  - sh\n  - -c\n  - |\n");
    for line in script.trim().lines() {
        y.push_str("    ");
        y.push_str(line);
        y.push('\n');
    }
    y
}

/// Shell snippet writing the output of `cmd` to `path` atomically (write a
/// temp file, then rename), so a test never reads a half-written file.
pub fn put(cmd: &str, path: &Path) -> String {
    let p = path.display();
    format!("{{ {cmd} ; }} > {p}.tmp 2>&1; mv {p}.tmp {p}")
}

/// A private temp dir with `units/` inside; tend runs with it as cwd.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new().prefix("tend-e2e-").tempdir().unwrap();
        // World-writable so services running as `nobody` can report too;
        // sticky like /tmp, so that tend as root still trusts the units
        // folder in it (nobody else can swap an entry root made).
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::create_dir(dir.path().join("units")).unwrap();
        Env { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn units(&self) -> PathBuf {
        self.root().join("units")
    }

    /// Absolute path of a file in the temp dir.
    pub fn p(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// Write `units/NAME.yaml`.
    pub fn unit(&self, name: &str, yaml: &str) {
        fs::write(self.units().join(format!("{name}.yaml")), yaml).unwrap();
    }

    /// Read a report file written by a service, waiting (bounded) until it exists.
    pub fn await_file(&self, tend: &Tend, name: &str) -> String {
        let path = self.p(name);
        tend.wait_until(T, &format!("file {} to be written by a service", path.display()), || path.exists());
        read(&path)
    }

    /// Pid written by a service to file `name` (waits for it). Waits for
    /// the whole line too: `echo $$ > FILE` creates the file before it
    /// writes to it, so a reader can find it empty.
    pub fn await_pid(&self, tend: &Tend, name: &str) -> i32 {
        let path = self.p(name);
        tend.wait_until(T, &format!("a pid in {} written by a service", path.display()), || {
            read(&path).ends_with('\n')
        });
        let s = read(&path);
        s.trim().parse().unwrap_or_else(|_| panic!("file {name} holds no pid: {s:?}"))
    }

    /// Start `tend ARGS` with cwd = temp dir; `cfg` can adjust the Command.
    pub fn spawn(&self, args: &[&str], cfg: impl FnOnce(&mut Command)) -> Tend {
        let mut cmd = Command::new(tend_bin());
        // Each test's supervisor gets its own control socket: the default
        // (/run/tend/tend.sock as root) would make parallel tests collide.
        cmd.args(args)
            .current_dir(self.root())
            .env_remove("NO_COLOR")
            .env_remove("TEND_UNITS")
            .env("TEND_SOCKET", self.socket());
        cfg(&mut cmd);
        Tend::spawn(cmd, self.root(), &format!("tend {}", args.join(" ")))
    }

    /// The control socket of this test's supervisor.
    pub fn socket(&self) -> PathBuf {
        self.root().join("tend.sock")
    }

    /// `tend up --units DIR`.
    pub fn up(&self) -> Tend {
        let units = self.units();
        self.spawn(&["up", "--units", units.to_str().unwrap()], |_| {})
    }

    /// `tend check DIR`, run to completion: (exit code, stderr).
    pub fn check(&self) -> (i32, String) {
        let units = self.units();
        let mut t = self.spawn(&["check", units.to_str().unwrap()], |_| {});
        let code = t.exit_code(T);
        (code, t.stderr())
    }
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A spawned tend. stdout/stderr go to files; dropping it SIGKILLs tend,
/// its process group and all its descendants if it is still running.
pub struct Tend {
    pub child: Child,
    pub pid: i32,
    pub out_path: PathBuf,
    pub err_path: PathBuf,
    pub label: String,
    status: Option<ExitStatus>,
}

impl Tend {
    /// Spawn `cmd` in its own process group, stdin /dev/null, output to files in `dir`.
    pub fn spawn(mut cmd: Command, dir: &Path, label: &str) -> Tend {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out_path = dir.join(format!("tend-{n}.stdout"));
        let err_path = dir.join(format!("tend-{n}.stderr"));
        // Each tend gets its own control socket in its temp dir, so tests
        // running in parallel do not find each other at the default path.
        if !cmd.get_envs().any(|(k, _)| k == "TEND_SOCKET") {
            cmd.env("TEND_SOCKET", dir.join("tend.sock"));
        }
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap())
            .process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {label}: {e}"));
        let pid = child.id() as i32;
        Tend { child, pid, out_path, err_path, label: label.to_string(), status: None }
    }

    pub fn stdout(&self) -> String {
        read(&self.out_path)
    }

    pub fn stderr(&self) -> String {
        read(&self.err_path)
    }

    /// Both outputs, for panic messages.
    pub fn dump(&self) -> String {
        fn tail(s: &str) -> String {
            let lines: Vec<&str> = s.lines().collect();
            let from = lines.len().saturating_sub(40);
            lines[from..].join("\n")
        }
        format!(
            "--- {} (pid {}) stderr (last 40 lines) ---\n{}\n--- stdout (last 40 lines) ---\n{}\n---",
            self.label,
            self.pid,
            tail(&self.stderr()),
            tail(&self.stdout())
        )
    }

    pub fn signal(&self, sig: i32) {
        assert!(self.status.is_none(), "{} already exited, cannot signal it", self.label);
        kill(self.pid, sig);
    }

    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
        }
        self.status
    }

    /// Poll `cond` until true; on timeout (or if tend exits first and the
    /// condition is still false) panic with what was awaited and tend's output.
    pub fn wait_until(&self, timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        let mut exited_at: Option<Instant> = None;
        loop {
            if cond() {
                return;
            }
            if exited_at.is_none() && self.has_exited() {
                exited_at = Some(Instant::now());
            }
            // Once tend has exited, give services a short grace, then stop waiting.
            if let Some(t) = exited_at {
                if t.elapsed() > Duration::from_millis(300) {
                    panic!("{} exited before: {what}\n{}", self.label, self.dump());
                }
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for: {what}\n{}", self.dump());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether tend has exited, without reaping it (waitid with WNOWAIT).
    fn has_exited(&self) -> bool {
        if self.status.is_some() {
            return true;
        }
        // SAFETY: zeroed siginfo_t is a valid value; waitid is called on our
        // own child only, with WNOWAIT so std's Child can still reap it.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            r == 0 && info.si_pid() != 0
        }
    }

    /// Wait for stderr to contain `needle`.
    pub fn wait_stderr(&self, needle: &str) {
        self.wait_until(T, &format!("tend stderr to contain {needle:?}"), || self.stderr().contains(needle));
    }

    /// Wait for stdout to contain `needle`.
    pub fn wait_stdout(&self, needle: &str) {
        self.wait_until(T, &format!("tend stdout to contain {needle:?}"), || self.stdout().contains(needle));
    }

    /// Wait (bounded) for tend to exit; panics with its output on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.try_status() {
                return st;
            }
            if start.elapsed() > timeout {
                panic!("{} did not exit within {timeout:?}\n{}", self.label, self.dump());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Exit code; panics when tend was killed by a signal or did not exit.
    pub fn exit_code(&mut self, timeout: Duration) -> i32 {
        let st = self.wait_exit(timeout);
        match st.code() {
            Some(c) => c,
            None => panic!(
                "{} was killed by signal {:?} instead of exiting\n{}",
                self.label,
                st.signal(),
                self.dump()
            ),
        }
    }

    /// Lines of stderr (tend's own messages), after the `| ` of the prefix,
    /// for lines whose prefix name is `tend`.
    pub fn events(&self) -> Vec<String> {
        lines_of(&self.stderr(), "tend").into_iter().map(str::to_string).collect()
    }

    /// The lines service `name` printed on its stdout (tend's `NAME | LINE`).
    pub fn lines_of(&self, name: &str) -> Vec<String> {
        lines_of(&self.stdout(), name).into_iter().map(str::to_string).collect()
    }

    /// Pid from the `NAME: started (pid N)` event, waiting for it.
    pub fn started_pid(&self, name: &str) -> i32 {
        let needle = format!("{name}: started (pid ");
        self.wait_stderr(&needle);
        let s = self.stderr();
        let i = s.find(&needle).unwrap() + needle.len();
        s[i..].split(')').next().unwrap().trim().parse().unwrap()
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        if self.try_status().is_some() {
            return;
        }
        let desc = descendants(self.pid);
        kill(-self.pid, libc::SIGKILL);
        kill(self.pid, libc::SIGKILL);
        for p in desc {
            kill(p, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The `LINE`s of the `NAME | LINE` lines of `text` whose name is `name`.
pub fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.split_once(" | ").filter(|(n, _)| n.trim() == name).map(|(_, rest)| rest))
        .collect()
}

// ---- tend as a client of a test's supervisor ----

/// What a client command did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Out {
    /// Exit code, time taken and both outputs, for panic messages.
    pub fn show(&self) -> String {
        format!(
            "exit {} after {:?}\n--- client stdout ---\n{}\n--- client stderr ---\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

/// Run a prepared command to completion, bounded by `T` (killed and panics
/// past it: a client that hangs is a failure, not a stuck test).
pub fn run_cmd(cmd: Command, label: &str) -> Out {
    run_cmd_within(cmd, label, T)
}

/// [`run_cmd`] with another bound (an image build, a package build).
pub fn run_cmd_within(mut cmd: Command, label: &str, timeout: Duration) -> Out {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {label}: {e}"));
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{label}` did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    let stdout = out_t.join().unwrap();
    let stderr = err_t.join().unwrap();
    let code = status.code().unwrap_or_else(|| panic!("`{label}` killed by a signal: {status:?}\n{stderr}"));
    Out { code, stdout, stderr, took }
}

/// `tend ARGS` as a client of this test's supervisor (its `TEND_SOCKET`), bounded by `T`.
pub fn ctl(env: &Env, args: &[&str]) -> Out {
    let mut cmd = Command::new(tend_bin());
    cmd.args(args).env("TEND_SOCKET", env.socket()).env_remove("NO_COLOR");
    run_cmd(cmd, &format!("tend {}", args.join(" ")))
}

/// `tend shutdown` as a client; it must exit 0, and tend must then exit (bounded).
pub fn shutdown(env: &Env, tend: &mut Tend) {
    let out = ctl(env, &["shutdown"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    tend.wait_exit(T);
}

/// Wait until the supervisor answers on its control socket.
pub fn wait_socket(env: &Env, tend: &Tend) {
    let socket = env.socket();
    tend.wait_until(T, "the control socket to answer", || UnixStream::connect(&socket).is_ok());
}

// ---- `tend status --json` ----

/// `tend status --json [NAMES]` parsed, with the exit code (panics unless it is a JSON array).
pub fn status_json(env: &Env, names: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec!["status", "--json"];
    args.extend_from_slice(names);
    let out = ctl(env, &args);
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e})\n{}", out.show()));
    (
        out.code,
        v.as_array().unwrap_or_else(|| panic!("status --json is not an array\n{}", out.show())).clone(),
    )
}

/// `tend status --json` parsed (empty when the socket does not answer yet).
pub fn status_list(env: &Env) -> Vec<Value> {
    let out = ctl(env, &["status", "--json"]);
    serde_json::from_str::<Value>(&out.stdout).ok().and_then(|v| v.as_array().cloned()).unwrap_or_default()
}

/// The status object of service `name` in a status list.
pub fn service<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter().find(|s| s["name"] == name)
}

/// One service's status object (Null when absent or tend does not answer).
pub fn svc(env: &Env, name: &str) -> Value {
    service(&status_list(env), name).cloned().unwrap_or(Value::Null)
}

/// One service's state ("?" when absent or tend does not answer).
pub fn state(env: &Env, name: &str) -> String {
    svc(env, name)["state"].as_str().unwrap_or("?").to_string()
}

/// One service's (state, pid); ("absent", None) when it is not listed.
pub fn state_of(env: &Env, name: &str) -> (String, Option<i32>) {
    let (_, list) = status_json(env, &[]);
    match service(&list, name) {
        Some(s) => (s["state"].as_str().unwrap_or("?").to_string(), s["pid"].as_i64().map(|p| p as i32)),
        None => ("absent".to_string(), None),
    }
}

/// The pid of service `name` in a status list (panics when it has none).
pub fn pid_of(list: &[Value], name: &str) -> i32 {
    service(list, name)
        .and_then(|s| s["pid"].as_i64())
        .unwrap_or_else(|| panic!("no pid for {name} in {list:?}")) as i32
}

/// Poll `status --json` until `cond` holds for service `name`; returns it.
pub fn wait_status(env: &Env, tend: &Tend, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    tend.wait_until(T, &format!("{name}: {what}"), || {
        found = service(&status_list(env), name).filter(|s| cond(s)).cloned();
        found.is_some()
    });
    found.unwrap()
}

/// Wait until `name` shows `want` in `tend status --json`; returns its status.
pub fn wait_state(env: &Env, tend: &Tend, name: &str, want: &str) -> Value {
    wait_status(env, tend, name, &format!("to be {want}"), |s| s["state"] == want)
}

/// Wait until the supervisor answers on its socket and every service in
/// `names` is running; returns the last status list.
pub fn wait_running(env: &Env, tend: &Tend, names: &[&str]) -> Vec<Value> {
    wait_socket(env, tend);
    let mut last = Vec::new();
    tend.wait_until(T, &format!("services {names:?} to be running"), || {
        let (_, list) = status_json(env, &[]);
        let ok = names.iter().all(|n| service(&list, n).is_some_and(|s| s["state"] == "running"));
        last = list;
        ok
    });
    last
}

// ---- small tools for services ----

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to 0, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether `cmd` is installed (`command -v`).
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Nanosecond timestamp written by a service with `date +%s%N` to `file` (waits for it).
pub fn ns(env: &Env, tend: &Tend, file: &str) -> u128 {
    let s = env.await_file(tend, file);
    s.trim().parse().unwrap_or_else(|_| panic!("{file} holds no timestamp: {s:?}"))
}

/// Shell command that sends `READY=1` to NOTIFY_SOCKET from a process of the
/// service, one that is still alive when tend reads the message (tend
/// attributes it by its sender's cgroup where the service has one, else
/// by its pid; a sender that exited and was reaped before tend read its
/// message is known only by its cgroup, and a non-root tend has none):
/// `systemd-notify --ready` when installed, which waits with BARRIER=1
/// until tend has handled its READY=1, else a perl sender that stays until
/// the service stops.
pub fn notify_ready_cmd(env: &Env) -> String {
    if have("systemd-notify") {
        return "systemd-notify --ready".to_string();
    }
    let path = env.p("notify.pl");
    fs::write(
        &path,
        r#"use Socket;
my $p = $ENV{NOTIFY_SOCKET} or die "no NOTIFY_SOCKET\n";
$p =~ s/^\@/\0/;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
send($s, join("\n", @ARGV) . "\n", 0, pack_sockaddr_un($p)) or die "send: $!\n";
sleep;
"#,
    )
    .unwrap();
    format!("{{ perl {} READY=1 & }}", path.display())
}

// ---- throwaway users and groups (root only) ----

static ACCOUNT_SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A name no other test (of this run or another) uses: `tnd` + pid + a counter.
fn account_name(kind: &str) -> String {
    let n = ACCOUNT_SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("tnd{kind}{}x{n}", std::process::id())
}

/// Run an account tool (useradd, groupadd, …), retrying while another one
/// holds the lock on /etc/passwd or /etc/group (tests run in parallel).
fn account_tool(args: &[&str]) {
    let mut last = String::new();
    for _ in 0..200 {
        let out =
            Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        if out.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("`{}` failed: {last}", args.join(" "));
}

fn numeric_id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("id {args:?}: {out:?}"))
}

/// An unprivileged user made for one test (no home, no login shell), with
/// its own group; removed again on drop. Needs root.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    pub fn new() -> TestUser {
        TestUser::with_groups(&[])
    }

    /// Also a member of these (existing) groups.
    pub fn with_groups(groups: &[&str]) -> TestUser {
        let name = account_name("u");
        let list = groups.join(",");
        let mut args = vec!["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin"];
        if !groups.is_empty() {
            args.extend(["--groups", list.as_str()]);
        }
        args.push(name.as_str());
        account_tool(&args);
        let uid = numeric_id(&["-u", &name]);
        let gid = numeric_id(&["-g", &name]);
        TestUser { name, uid, gid }
    }

    /// `cmd` run as this user (setpriv: uid, gid and supplementary groups).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", &self.name, "--regid", &self.name, "--init-groups", "--", program]);
        cmd
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["--force", &self.name]).output();
    }
}

/// A group made for one test; removed on drop. Needs root.
pub struct TestGroup {
    pub name: String,
    pub gid: u32,
}

impl TestGroup {
    pub fn new() -> TestGroup {
        let name = account_name("g");
        account_tool(&["groupadd", &name]);
        let line = fs::read_to_string("/etc/group").unwrap();
        let gid = line
            .lines()
            .find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some(name.as_str())).then(|| f.nth(1).and_then(|g| g.parse().ok())).flatten()
            })
            .unwrap_or_else(|| panic!("group {name} not in /etc/group"));
        TestGroup { name, gid }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// chown a path (numeric ids).
pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// The static binary CI builds before the tests, from the same commit as
/// the binary under test (else it is stale: rebuild it).
pub fn static_tend() -> PathBuf {
    let arch = std::env::consts::ARCH;
    let path = std::env::var_os("TEND_STATIC_BIN").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/{arch}-unknown-linux-gnu/release/tend"))
    });
    assert!(path.exists(), "{} is missing: run packaging/build-static first (.ci/run does)", path.display());
    let version = |bin: &Path| {
        let out = Command::new(bin).arg("--version").output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        version(&path),
        version(Path::new(tend_bin())),
        "{} is from another commit: run packaging/build-static",
        path.display()
    );
    path
}

/// A private tmux server (its own socket in the test's dir) with one
/// session `t`, killed on drop: a real terminal to drive with keys and read
/// back (tests/completions.rs, tests/top.rs).
pub struct Tmux {
    pub socket: PathBuf,
}

impl Tmux {
    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the screen shows, as text.
    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    /// What the screen shows, with its colours and attributes as SGR escapes.
    pub fn screen_with_escapes(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-e", "-t", "t"])
    }

    /// A tmux format of the pane (`#{alternate_on}`, `#{pane_pid}`).
    pub fn display(&self, format: &str) -> String {
        self.cmd(&["display-message", "-p", "-t", "t", format]).trim().to_string()
    }

    /// Type `keys` (tmux key names: `Enter`, `C-c`, `Up`, or text).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// Wait (bounded) until the screen shows `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_screen(&format!("{needle:?} on screen"), |screen| screen.contains(needle))
    }

    /// Wait (bounded, 3 × T: the machine may be loaded) until `cond` holds for the screen.
    pub fn wait_screen(&self, what: &str, mut cond: impl FnMut(&str) -> bool) -> String {
        let bound = 3 * T;
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if cond(&screen) {
                return screen;
            }
            assert!(start.elapsed() < bound, "the terminal did not show {what} within {bound:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}
