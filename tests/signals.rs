//! Signals sent to `tend up`: a stray signal never takes the supervisor
//! down, SIGUSR1 (and `tend reopen-logs`) reopen the log files after an
//! external logrotate moved them.

mod common;
use common::*;

use std::fs;

/// Every catchable signal whose default would terminate or stop tend, and
/// that tend does not act on, as a `kill` would send it.
fn stray_signals() -> Vec<i32> {
    let mut signals = vec![
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGSTKFLT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ];
    signals.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    signals
}

#[test]
fn stray_signals_change_nothing_and_are_logged_once() {
    let env = Env::new();
    env.unit("a", "command: [sleep, '100001']\n");
    env.unit("b", "command: [sleep, '100002']\n");
    let tend = env.up();
    let before = wait_running(&env, &tend, &["a", "b"]);
    let (a, b) = (pid_of(&before, "a"), pid_of(&before, "b"));
    // USR1 reopens the (no) log files; every other one is only logged.
    let mut all = vec![libc::SIGUSR1];
    all.extend(stray_signals());
    for &signal in &all {
        tend.signal(signal);
    }
    // Twice: still one line.
    tend.signal(libc::SIGUSR2);
    tend.signal(libc::SIGRTMIN());
    tend.wait_stderr("reopened 0 log files (SIGUSR1)");
    // TTIN and TTOU are ignored outright (see supervise::ignored_signals).
    for name in ["SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR", "SIGXCPU", "SIGXFSZ"]
        .into_iter()
        .chain(["SIGSTKFLT", "SIGTSTP", "SIGRTMIN", "SIGRTMIN+1", "SIGRTMAX-1", "SIGRTMAX"])
    {
        tend.wait_stderr(&format!("tend | ignoring {name}\n"));
    }
    let events = tend.events();
    for name in ["SIGUSR2", "SIGRTMIN"] {
        let lines = events.iter().filter(|e| **e == format!("ignoring {name}")).count();
        assert_eq!(lines, 1, "one line per signal number:\n{}", events.join("\n"));
    }
    // Nothing changed: the supervisor, both services (same pids) and the socket.
    let mut tend = tend;
    assert!(tend.try_status().is_none(), "tend exited\n{}", tend.dump());
    assert!(env.socket().exists(), "the socket is gone");
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    let after = wait_running(&env, &tend, &["a", "b"]);
    assert_eq!((pid_of(&after, "a"), pid_of(&after, "b")), (a, b), "{}", tend.dump());
    assert_eq!((proc_state(a), proc_state(b)), (Some('S'), Some('S')), "both sleep, neither is stopped");
    shutdown(&env, &mut tend);
}

/// A service printing `line-N` without end, into `log.file`.
fn counter_unit(env: &Env) {
    env.unit(
        "w",
        &format!(
            "log:\n  file: {}\n{}",
            env.p("w.log").display(),
            sh("i=0; while :; do echo line-$i; i=$((i+1)); sleep 0.02; done")
        ),
    );
}

fn numbers(text: &str) -> Vec<u64> {
    text.lines().map(|l| l.strip_prefix("line-").and_then(|n| n.parse().ok()).expect(l)).collect()
}

/// `old` then `new` are one run of consecutive numbers: nothing lost,
/// nothing twice, and nothing went to the moved file after the switch.
fn assert_contiguous(old: &[u64], new: &[u64]) {
    let all: Vec<u64> = old.iter().chain(new).copied().collect();
    for pair in all.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "a gap or a repeat across the reopen: {old:?} then {new:?}");
    }
}

#[test]
fn sigusr1_and_reopen_logs_reopen_files_moved_by_logrotate() {
    let env = Env::new();
    counter_unit(&env);
    let mut tend = env.up();
    let log = env.p("w.log");
    tend.wait_until(T, "lines in w.log", || read(&log).lines().count() >= 5);

    // logrotate's `create` + `postrotate kill -USR1`.
    fs::rename(&log, env.p("w.log.1")).unwrap();
    tend.signal(libc::SIGUSR1);
    tend.wait_until(T, "a new w.log with lines", || read(&log).lines().count() >= 5);
    let old = numbers(&read(env.p("w.log.1")));
    let new = numbers(&read(&log));
    assert_contiguous(&old, &new);
    tend.wait_stderr("reopened 1 log file (SIGUSR1)");

    // The same over the control socket.
    fs::rename(&log, env.p("w.log.2")).unwrap();
    let out = ctl(&env, &["reopen-logs"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(out.stdout.trim(), format!("w: reopened {}", log.display()), "{}", out.show());
    tend.wait_until(T, "a third w.log with lines", || read(&log).lines().count() >= 5);
    let moved = numbers(&read(env.p("w.log.2")));
    assert!(moved.starts_with(&new), "w.log.2 is the file that was w.log: {new:?} / {moved:?}");
    assert_contiguous(&old, &moved);
    assert_contiguous(&moved, &numbers(&read(&log)));
    shutdown(&env, &mut tend);
}

#[test]
fn reopen_logs_reports_a_file_it_cannot_open() {
    let env = Env::new();
    counter_unit(&env);
    let mut tend = env.up();
    let log = env.p("w.log");
    tend.wait_until(T, "lines in w.log", || !read(&log).is_empty());
    // The path is now a folder: the reopen fails, and says so.
    fs::rename(&log, env.p("w.log.1")).unwrap();
    fs::create_dir(&log).unwrap();
    let out = ctl(&env, &["reopen-logs"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stderr.contains(&format!("w: cannot open {}", log.display())), "{}", out.show());
    tend.wait_stderr("reopened 1 log file, 1 failed (tend reopen-logs)");
    let status = svc(&env, "w");
    assert_eq!(status["state"], "running", "{status}");
    assert!(status["log_errors"][0].as_str().unwrap_or("").contains("cannot open"), "{status}");
    shutdown(&env, &mut tend);
}
