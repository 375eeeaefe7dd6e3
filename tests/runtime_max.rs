//! `runtime_max` (README: Run limits), through the real binary: a service
//! that has run that long is stopped gracefully (stop signal, then SIGKILL
//! after stop_timeout), the restart policy decides what follows, and
//! `tend status` says why.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn a_service_is_stopped_gracefully_at_runtime_max_and_restarted() {
    let env = Env::new();
    let log = env.p("log");
    env.unit(
        "worker",
        &format!(
            r#"command: [sh, -c, 'echo "start $$" >> {0}; trap "echo term $$ >> {0}; exit 0" TERM; while :; do sleep 0.05; done']
runtime_max: 1s
restart: on-failure
restart_delay: 100ms
start_limit: {{burst: 1}}
"#,
            log.display()
        ),
    );
    let mut tend = env.up();
    let first = tend.started_pid("worker");
    let started = Instant::now();
    tend.wait_stderr("worker: runtime_max reached (ran 1s), stopping it");
    let ran = started.elapsed();
    assert!(ran >= Duration::from_millis(900), "stopped after {ran:?}\n{}", tend.dump());
    // It got its stop signal and acted on it: a graceful stop.
    tend.wait_until(T, "the first run's SIGTERM handler", || read(&log).contains(&format!("term {first}")));
    // Restarted (on-failure), and again after the next second: a planned
    // recycle never counts toward start_limit (burst 1 here).
    tend.wait_until(T, "three runs", || read(&log).lines().filter(|l| l.starts_with("start ")).count() >= 3);
    let status = svc(&env, "worker");
    assert!(status["restarts"].as_u64().unwrap() >= 2, "{status}");
    assert_ne!(status["state"], "failed", "{status}");
    assert_eq!(status["last_exit"]["kind"], "runtime_max", "{status}");
    assert_eq!(status["last_exit"]["message"], "runtime_max reached (1s)", "{status}");
    // The process itself exited 0 on SIGTERM: kept beside the kind.
    assert_eq!(status["last_exit"]["code"], 0, "{status}");
    shutdown(&env, &mut tend);
}

#[test]
fn a_service_that_ignores_its_stop_signal_is_killed_after_stop_timeout() {
    let env = Env::new();
    env.unit(
        "stubborn",
        r#"command: [sh, -c, 'trap "" TERM; while :; do sleep 0.05; done']
runtime_max: 500ms
stop_timeout: 300ms
restart: never
"#,
    );
    let mut tend = env.up();
    tend.started_pid("stubborn");
    let status = wait_state(&env, &tend, "stubborn", "failed");
    assert_eq!(status["reason"], "runtime_max reached (500ms)", "{status}");
    assert_eq!(status["last_exit"]["kind"], "runtime_max", "{status}");
    assert_eq!(status["last_exit"]["signal"], "SIGKILL", "{status}");
    let events = tend.events();
    let reached = events.iter().position(|e| e.contains("stubborn: runtime_max reached")).unwrap();
    let killed = events.iter().position(|e| e.contains("stubborn: did not stop in 300ms, sending SIGKILL"));
    assert!(killed.is_some_and(|k| k > reached), "{}", tend.dump());
    // `tend status` shows it in words too.
    let out = ctl(&env, &["status", "stubborn"]);
    assert!(out.stdout.contains("runtime_max reached (500ms)"), "{}", out.show());
    shutdown(&env, &mut tend);
}

#[test]
fn check_refuses_runtime_max_on_a_oneshot() {
    let env = Env::new();
    env.unit("job", "command: [\"true\"]\ntype: oneshot\nruntime_max: 1h\n");
    let (code, stderr) = env.check();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("job.yaml:3:1: runtime_max: not for type: oneshot (a oneshot runs to completion)"),
        "{stderr}"
    );
}
