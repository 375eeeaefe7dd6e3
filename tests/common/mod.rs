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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Default bound for conditions that should hold quickly when tend works.
pub const T: Duration = Duration::from_secs(10);

pub fn tend_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tend")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Returns true (and prints a loud notice) when the test must be skipped
/// because it needs root. Use as `if skip_unless_root("name") { return; }`.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        false
    } else {
        eprintln!("SKIPPED (needs root): {test}");
        true
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
        // World-writable so services running as `nobody` can report too.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
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

    /// Pid written by a service to file `name` (waits for it).
    pub fn await_pid(&self, tend: &Tend, name: &str) -> i32 {
        let s = self.await_file(tend, name);
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
        self.stderr()
            .lines()
            .filter_map(|l| {
                let (name, rest) = l.split_once(" | ")?;
                (name.trim() == "tend").then(|| rest.to_string())
            })
            .collect()
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
