//! README section 4, the restart policy as seen from outside: a crash loop
//! with growing delays that ends `failed` at the start limit, and the
//! on-failure / always / never policies with success_exit_codes.

mod common;
use common::*;

use std::time::Duration;

/// Unit running `sh -c` that appends a timestamp to `starts` then runs `then`.
fn counting_unit(env: &Env, then: &str, extra: &str) -> String {
    let starts = env.p("starts");
    format!("{}{extra}", sh(&format!("date +%s.%N >> {}; {then}", starts.display())))
}

fn starts(env: &Env) -> Vec<f64> {
    read(env.p("starts")).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Window to show that a restart did NOT happen: 10x the restart delay used.
const NO_RESTART_WINDOW: Duration = Duration::from_millis(500);

#[test]
fn crash_loop_backs_off_with_growing_delays_then_fails_at_start_limit() {
    let env = Env::new();
    env.unit(
        "crash",
        &counting_unit(
            &env,
            "exit 1",
            "restart: on-failure\nrestart_delay: 100ms\nrestart_delay_max: 10s\nstart_limit: {burst: 3, interval: 60s}\n",
        ),
    );
    let tend = env.up();
    tend.wait_stderr("crash: failed: start limit hit");
    let s = starts(&env);
    // More failures than burst (3) within the interval: the 4th failure fails it.
    assert_eq!(s.len(), 4, "starts: {s:?}\n{}", tend.dump());
    let gaps: Vec<f64> = s.windows(2).map(|w| w[1] - w[0]).collect();
    // Delays 100ms, 200ms, 400ms (plus spawn time).
    for (gap, want) in gaps.iter().zip([0.1, 0.2, 0.4]) {
        assert!(*gap >= want * 0.9, "gap {gap:.3}s shorter than the {want}s delay; gaps {gaps:?}");
    }
    assert!(gaps[1] > gaps[0] * 1.2 && gaps[2] > gaps[1] * 1.2, "delays do not grow: {gaps:?}");
    let err = tend.stderr();
    for msg in [
        "crash: exited with status 1",
        "crash: restarting in 100ms (restart 1)",
        "crash: restarting in 200ms (restart 2)",
        "crash: restarting in 400ms (restart 3)",
        "crash: failed: start limit hit (4 failures in 1m)",
    ] {
        assert!(err.contains(msg), "missing event {msg:?}\n{}", tend.dump());
    }
    // Failed services stay down.
    assert_stays(NO_RESTART_WINDOW, "no start after failed", || starts(&env).len() == 4);
}

#[test]
fn restart_delay_is_capped_by_restart_delay_max() {
    let env = Env::new();
    env.unit(
        "crash",
        &counting_unit(
            &env,
            "exit 1",
            "restart_delay: 50ms\nrestart_delay_max: 120ms\nstart_limit: {burst: 4, interval: 60s}\n",
        ),
    );
    let tend = env.up();
    tend.wait_stderr("crash: failed");
    let err = tend.stderr();
    for msg in [
        "restarting in 50ms",
        "restarting in 100ms",
        "restarting in 120ms (restart 3)",
        "restarting in 120ms (restart 4)",
    ] {
        assert!(err.contains(msg), "missing {msg:?}\n{}", tend.dump());
    }
    assert!(!err.contains("restarting in 200ms"), "delay not capped\n{}", tend.dump());
}

#[test]
fn on_failure_does_not_restart_a_clean_exit() {
    let env = Env::new();
    env.unit("svc", &counting_unit(&env, "exit 0", "restart: on-failure\nrestart_delay: 50ms\n"));
    let tend = env.up();
    tend.wait_stderr("svc: exited with status 0");
    assert_stays(NO_RESTART_WINDOW, "on-failure: no restart after exit 0", || starts(&env).len() == 1);
    assert!(!tend.stderr().contains("svc: restarting"), "{}", tend.dump());
}

#[test]
fn on_failure_is_the_default_and_restarts_a_failure() {
    let env = Env::new();
    // No restart key at all: on-failure by default.
    env.unit("svc", &counting_unit(&env, "exit 3", "restart_delay: 20ms\n"));
    let tend = env.up();
    tend.wait_until(T, "a second start after exit 3", || starts(&env).len() >= 2);
    assert!(tend.stderr().contains("svc: exited with status 3"), "{}", tend.dump());
}

#[test]
fn success_exit_codes_are_not_failures() {
    let env = Env::new();
    env.unit(
        "svc",
        &counting_unit(
            &env,
            "exit 3",
            "restart: on-failure\nrestart_delay: 50ms\nsuccess_exit_codes: [0, 3]\n",
        ),
    );
    let tend = env.up();
    tend.wait_stderr("svc: exited with status 3");
    assert_stays(NO_RESTART_WINDOW, "exit 3 listed as success: no restart", || starts(&env).len() == 1);
}

#[test]
fn exit_0_is_a_failure_when_not_in_success_exit_codes() {
    let env = Env::new();
    env.unit(
        "svc",
        &counting_unit(&env, "exit 0", "restart: on-failure\nrestart_delay: 20ms\nsuccess_exit_codes: [3]\n"),
    );
    let tend = env.up();
    tend.wait_until(T, "a restart after exit 0 with success_exit_codes [3]", || starts(&env).len() >= 2);
}

#[test]
fn killed_by_a_signal_is_a_failure() {
    let env = Env::new();
    env.unit("svc", &counting_unit(&env, "kill -KILL $$", "restart: on-failure\nrestart_delay: 20ms\n"));
    let tend = env.up();
    tend.wait_until(T, "a restart after SIGKILL", || starts(&env).len() >= 2);
    assert!(tend.stderr().contains("svc: killed by signal SIGKILL"), "{}", tend.dump());
}

#[test]
fn always_restarts_a_clean_exit() {
    let env = Env::new();
    env.unit("svc", &counting_unit(&env, "exit 0", "restart: always\nrestart_delay: 20ms\n"));
    let tend = env.up();
    tend.wait_until(T, "restart: always to restart after exit 0", || starts(&env).len() >= 3);
}

#[test]
fn never_does_not_restart_a_failure() {
    let env = Env::new();
    env.unit("svc", &counting_unit(&env, "exit 1", "restart: never\nrestart_delay: 50ms\n"));
    let tend = env.up();
    tend.wait_stderr("svc: exited with status 1");
    assert_stays(NO_RESTART_WINDOW, "restart: never", || starts(&env).len() == 1);
    assert!(!tend.stderr().contains("svc: restarting"), "{}", tend.dump());
}

#[test]
fn one_crashing_service_does_not_disturb_another() {
    let env = Env::new();
    env.unit(
        "crash",
        &counting_unit(&env, "exit 1", "restart_delay: 10ms\nstart_limit: {burst: 2, interval: 60s}\n"),
    );
    let pidf = env.p("steady.pid");
    env.unit("steady", &sh(&format!("{}; exec sleep 30", put("echo $$", &pidf))));
    let tend = env.up();
    let pid = env.await_pid(&tend, "steady.pid");
    tend.wait_stderr("crash: failed");
    assert!(!is_gone(pid), "the steady service died\n{}", tend.dump());
    assert_eq!(tend.stderr().matches("steady: started").count(), 1, "{}", tend.dump());
}
