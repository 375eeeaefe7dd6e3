//! tend under systemd: the sd_notify messages tend sends its own service
//! manager (a datagram socket of the test stands in for systemd, and the
//! kernel tells it the sender's pid, as it tells systemd), the shipped unit
//! checked by `systemd-analyze verify`, and where tend puts its own process
//! and its services' cgroups with and without delegation.

mod common;

use common::*;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A socket standing in for systemd's notify socket: tend's own receiving
/// code (SO_PASSCRED, so the kernel reports each sender's pid, as it does
/// to systemd).
struct Manager {
    socket: std::os::fd::OwnedFd,
    path: PathBuf,
    /// Every message so far: (sender pid, text).
    seen: Vec<(i32, String)>,
}

impl Manager {
    fn new(env: &Env) -> Manager {
        let path = env.p("notify.sock");
        let socket = tend::notify_socket::bind(&path).unwrap();
        Manager { socket, path, seen: Vec::new() }
    }

    /// One datagram with its sender's pid, if one is waiting (else a short nap).
    fn receive(&self) -> Option<(i32, String)> {
        let mut buf = [0u8; 4096];
        match tend::notify_socket::recv_with_pid(self.socket.as_raw_fd(), &mut buf).unwrap() {
            Some((n, pid)) => Some((pid.unwrap_or(0), String::from_utf8_lossy(&buf[..n]).into_owned())),
            None => {
                std::thread::sleep(Duration::from_millis(5));
                None
            }
        }
    }

    /// Collect messages until one holds `line`; returns its index in `seen`.
    fn wait_for(&mut self, tend: &Tend, line: &str) -> usize {
        let start = Instant::now();
        loop {
            if let Some(i) = self.seen.iter().position(|(_, m)| m.lines().any(|l| l == line)) {
                return i;
            }
            if start.elapsed() > T {
                panic!("no {line:?} from tend within {T:?}; got {:?}\n{}", self.seen, tend.dump());
            }
            if let Some(m) = self.receive() {
                self.seen.push(m);
            }
        }
    }

    /// Messages arriving during `window` (none of them may hold `line`).
    fn assert_no(&mut self, window: Duration, line: &str) {
        let start = Instant::now();
        while start.elapsed() < window {
            if let Some(m) = self.receive() {
                self.seen.push(m);
            }
        }
        assert!(
            !self.seen.iter().any(|(_, m)| m.lines().any(|l| l == line)),
            "unexpected {line:?}: {:?}",
            self.seen
        );
    }

    fn lines(&self) -> Vec<String> {
        self.seen.iter().flat_map(|(_, m)| m.lines().map(str::to_string)).collect()
    }
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[test]
fn ready_status_reload_and_stopping_reach_the_manager_from_tends_own_pid() {
    let env = Env::new();
    let mut manager = Manager::new(&env);
    let go = env.p("go");
    env.unit("plain", &sh(&format!("{}\nexec sleep 600", put("env", &env.p("plain.env")))));
    // A notify service that says READY=1 only once the test lets it.
    env.unit(
        "slow",
        &format!(
            "type: notify\n{}",
            sh(&format!(
                "while [ ! -e {} ]; do sleep 0.02; done\n{}\nexec sleep 600",
                go.display(),
                notify_ready_cmd(&env)
            ))
        ),
    );
    let mut tend = env.spawn(&["up", "--units", env.units().to_str().unwrap()], |c| {
        c.env("NOTIFY_SOCKET", &manager.path);
    });
    manager.wait_for(&tend, "STATUS=starting: 1 running, 1 starting");
    // `slow` has not said it is ready: neither has tend.
    manager.assert_no(Duration::from_millis(300), "READY=1");
    std::fs::write(&go, "").unwrap();
    let ready = manager.wait_for(&tend, "READY=1");
    assert!(manager.seen[ready].1.lines().any(|l| l == "STATUS=2 running"), "{:?}", manager.seen);
    // NotifyAccess=main: every message came from tend's own pid.
    assert!(
        manager.seen.iter().all(|(pid, _)| *pid == tend.pid),
        "senders: {:?}, tend {}",
        manager.seen,
        tend.pid
    );

    // Services do not inherit tend's NOTIFY_SOCKET.
    let plain_env = env.await_file(&tend, "plain.env");
    assert!(!plain_env.contains("NOTIFY_SOCKET"), "{plain_env}");
    assert!(plain_env.contains("INVOCATION_ID") || !plain_env.contains("WATCHDOG_USEC"), "{plain_env}");

    // A reload: RELOADING=1 with MONOTONIC_USEC, then READY=1 again once
    // the new service runs.
    let before = monotonic_usec();
    env.unit("added", &sh("exec sleep 600"));
    let out = ctl(&env, &["reload"]);
    assert_eq!(out.code, 0, "{out:?}");
    let reloading = manager.wait_for(&tend, "RELOADING=1");
    let usec: u64 = manager.seen[reloading]
        .1
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC with RELOADING=1: {:?}", manager.seen[reloading]))
        .parse()
        .unwrap();
    assert!(usec >= before && usec <= monotonic_usec(), "MONOTONIC_USEC={usec}, test saw {before}..");
    let seen_before_reload = reloading + 1;
    manager.wait_for(&tend, "STATUS=3 running");
    let lines_after: Vec<String> =
        manager.seen[seen_before_reload..].iter().flat_map(|(_, m)| m.lines().map(str::to_string)).collect();
    if !lines_after.iter().any(|l| l == "READY=1") {
        // READY may come in the same datagram as the status, or just after.
        let start = Instant::now();
        while !manager.seen[seen_before_reload..].iter().any(|(_, m)| m.lines().any(|l| l == "READY=1")) {
            assert!(start.elapsed() < T, "no READY=1 after the reload: {:?}", manager.seen);
            if let Some(m) = manager.receive() {
                manager.seen.push(m);
            }
        }
    }

    // Shutdown: STOPPING=1, then tend exits cleanly.
    tend.signal(libc::SIGTERM);
    manager.wait_for(&tend, "STOPPING=1");
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    let lines = manager.lines();
    let stopping = lines.iter().position(|l| l == "STOPPING=1").unwrap();
    assert!(!lines[stopping..].iter().any(|l| l == "READY=1"), "READY after STOPPING: {lines:?}");
    assert!(lines.iter().filter(|l| *l == "READY=1").count() == 2, "{lines:?}");
}

#[test]
fn a_failed_service_does_not_hold_ready_back_and_status_names_it() {
    let env = Env::new();
    let mut manager = Manager::new(&env);
    env.unit("up", &sh("exec sleep 600"));
    env.unit("broken", "command: [/nonexistent/binary]\nrestart: never\n");
    let mut tend = env.spawn(&["up", "--units", env.units().to_str().unwrap()], |c| {
        c.env("NOTIFY_SOCKET", &manager.path);
    });
    let ready = manager.wait_for(&tend, "READY=1");
    assert!(
        manager.seen[..=ready].iter().any(|(_, m)| m.lines().any(|l| l == "STATUS=1 running, 1 failed")),
        "{:?}",
        manager.seen
    );
    tend.signal(libc::SIGTERM);
    tend.exit_code(T);
}

#[test]
fn watchdog_pings_at_half_the_period_and_only_when_asked() {
    let env = Env::new();
    let mut manager = Manager::new(&env);
    env.unit("idle", &sh("exec sleep 600"));
    let mut tend = env.spawn(&["up", "--units", env.units().to_str().unwrap()], |c| {
        c.env("NOTIFY_SOCKET", &manager.path).env("WATCHDOG_USEC", "200000");
    });
    manager.wait_for(&tend, "READY=1");
    let first = Instant::now();
    let start_count = manager.lines().iter().filter(|l| *l == "WATCHDOG=1").count();
    while manager.lines().iter().filter(|l| *l == "WATCHDOG=1").count() < start_count + 4 {
        assert!(first.elapsed() < T, "fewer than 4 WATCHDOG=1 in {T:?}: {:?}", manager.seen);
        if let Some(m) = manager.receive() {
            manager.seen.push(m);
        }
    }
    // Four more pings at a 100 ms period take about 0.4 s: not the 200 ms
    // period itself (or slower), whatever the load.
    assert!(first.elapsed() >= Duration::from_millis(250), "pings too fast: {:?}", first.elapsed());
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0);

    // WATCHDOG_PID naming another process: the watchdog is not tend's.
    let env = Env::new();
    let mut manager = Manager::new(&env);
    env.unit("idle", &sh("exec sleep 600"));
    let mut tend = env.spawn(&["up", "--units", env.units().to_str().unwrap()], |c| {
        c.env("NOTIFY_SOCKET", &manager.path).env("WATCHDOG_USEC", "100000").env("WATCHDOG_PID", "1");
    });
    manager.wait_for(&tend, "READY=1");
    manager.assert_no(Duration::from_millis(400), "WATCHDOG=1");
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0);
}

#[test]
fn without_notify_socket_nothing_is_sent_and_tend_works() {
    // The common case must not change: no socket, no warning.
    let env = Env::new();
    env.unit("a", &sh("exec sleep 600"));
    let mut tend = env.spawn(&["up", "--units", env.units().to_str().unwrap()], |c| {
        c.env_remove("NOTIFY_SOCKET");
    });
    wait_running(&env, &tend, &["a"]);
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0);
    assert!(!tend.stderr().contains("service manager"), "{}", tend.stderr());
}

/// The shipped unit, as `systemd-analyze verify` sees it, with its paths
/// pointed at the binary under test (verify checks that they exist).
#[test]
fn shipped_unit_passes_systemd_analyze_verify() {
    if skip_unless_installed("shipped_unit_passes_systemd_analyze_verify", &["systemd-analyze"]) {
        return;
    }
    let unit =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/tend.service")).unwrap();
    for key in [
        "Type=notify",
        "NotifyAccess=main",
        "Delegate=yes",
        "ExecReload=/usr/bin/tend reload",
        "ExecStartPre=/usr/bin/tend check",
        "RestartPreventExitStatus=2",
        "KillMode=mixed",
        "Documentation=man:tend(1)",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(key)), "systemd/tend.service lacks {key}");
    }
    let env = Env::new();
    let path = env.p("tend.service");
    std::fs::write(&path, unit.replace("/usr/bin/tend", tend_bin())).unwrap();
    // --man=no: the man pages are checked where the package installs them.
    let out = run_cmd(
        {
            let mut c = Command::new("systemd-analyze");
            c.args(["verify", "--man=no"]).arg(&path);
            c
        },
        "systemd-analyze verify",
    );
    assert_eq!(out.code, 0, "systemd-analyze verify failed: {out:?}");
    let complaints: Vec<&str> = out.stderr.lines().filter(|l| l.contains("tend.service")).collect();
    assert!(complaints.is_empty(), "systemd-analyze verify complained: {complaints:?}");
}

// ---- cgroups: tend's own leaf, with and without delegation ----

/// A fresh cgroup of the unified (v2) hierarchy for one test: tend is
/// started in it, alone, as systemd starts a service; removed on drop.
struct TestCgroup {
    dir: PathBuf,
}

impl TestCgroup {
    fn new(tag: &str) -> Option<TestCgroup> {
        let unified = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists())?;
        // This test's own v2 cgroup (the hierarchy may be namespaced).
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))?;
        let dir =
            unified.join(own.trim_start_matches('/')).join(format!("tend-test-{tag}-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        Some(TestCgroup { dir })
    }

    fn procs(&self, sub: &str) -> Vec<i32> {
        read(self.dir.join(sub).join("cgroup.procs"))
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `tend up` started inside `cg` (moved there before exec), with `vars`.
fn up_in(env: &Env, cg: &TestCgroup, vars: &[(&str, &str)]) -> Tend {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec {} up --units {}",
        cg.dir.display(),
        tend_bin(),
        env.units().display()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .current_dir(env.root())
        .env("TEND_SOCKET", env.socket())
        .env_remove("INVOCATION_ID");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Tend::spawn(cmd, env.root(), "tend up (in a test cgroup)")
}

fn set_xattr(dir: &Path, name: &str, value: &[u8]) {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(rc, 0, "setxattr on {}: {}", dir.display(), std::io::Error::last_os_error());
}

#[test]
fn delegated_systemd_service_moves_tend_into_a_supervisor_leaf() {
    if skip_unless_root("delegated_systemd_service_moves_tend_into_a_supervisor_leaf") {
        return;
    }
    let cg = TestCgroup::new("delegated").expect("a cgroup2 hierarchy to make a test cgroup in");
    // What systemd does for a unit with Delegate=yes.
    set_xattr(&cg.dir, "trusted.delegate", b"1");
    let env = Env::new();
    env.unit("svc", &sh("exec sleep 600"));
    let mut tend = up_in(&env, &cg, &[("INVOCATION_ID", "0123456789abcdef0123456789abcdef")]);
    let list = wait_running(&env, &tend, &["svc"]);
    let svc = pid_of(&list, "svc");
    assert_eq!(cg.procs("supervisor"), vec![tend.pid], "tend in its leaf\n{}", tend.dump());
    assert_eq!(cg.procs("svc.service"), vec![svc], "the service beside it");
    assert!(
        cg.procs("").is_empty(),
        "no process left in the delegated cgroup itself (no internal processes)"
    );
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    assert!(!cg.dir.join("svc.service").exists(), "tend removed the service's cgroup");
}

#[test]
fn undelegated_systemd_service_makes_no_cgroups() {
    if skip_unless_root("undelegated_systemd_service_makes_no_cgroups") {
        return;
    }
    let cg = TestCgroup::new("undelegated").expect("a cgroup2 hierarchy to make a test cgroup in");
    let env = Env::new();
    env.unit("svc", &sh("exec sleep 600"));
    let mut tend = up_in(&env, &cg, &[("INVOCATION_ID", "0123456789abcdef0123456789abcdef")]);
    let list = wait_running(&env, &tend, &["svc"]);
    let svc = pid_of(&list, "svc");
    let mut procs = cg.procs("");
    procs.sort();
    let mut want = vec![tend.pid, svc];
    want.sort();
    assert_eq!(procs, want, "tend and its service stay in systemd's cgroup\n{}", tend.dump());
    let subdirs: Vec<_> = std::fs::read_dir(&cg.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name())
        .collect();
    assert!(subdirs.is_empty(), "tend made cgroups in systemd's: {subdirs:?}");
    tend.wait_until(T, "the warning", || tend.stderr().contains("without Delegate=yes"));
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());

    // And a unit with limits is refused, saying why.
    env.unit("limited", "command: [sleep, '600']\nresources:\n  memory_max: 64M\n");
    let mut check = Tend::spawn(
        {
            let mut c = Command::new("sh");
            c.args([
                "-c",
                &format!(
                    "echo $$ > {}/cgroup.procs && exec {} check {}",
                    cg.dir.display(),
                    tend_bin(),
                    env.units().display()
                ),
            ])
            .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef");
            c
        },
        env.root(),
        "tend check (undelegated)",
    );
    assert_eq!(check.exit_code(T), 2, "{}", check.dump());
    assert!(check.stderr().contains("Delegate=yes"), "{}", check.stderr());
}
