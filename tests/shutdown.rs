//! README section 5, graceful-then-forceful shutdown: signals to tend stop
//! every service (whole process groups), SIGKILL after stop_timeout, the
//! second SIGINT escalates, a critical service ending stops the rest and
//! sets tend's exit status.

mod common;
use common::*;

use std::time::{Duration, Instant};

/// A service that records its pid in NAME.pid then execs sleep.
fn sleeper(env: &Env, name: &str, extra: &str) {
    let pidf = env.p(&format!("{name}.pid"));
    env.unit(name, &format!("{}{extra}", sh(&format!("{}; exec sleep 30", put("echo $$", &pidf)))));
}

fn shutdown_on(sig: i32, signame: &str) {
    let env = Env::new();
    let names = ["alpha", "beta", "gamma"];
    for n in names {
        sleeper(&env, n, "stop_timeout: 5s\n");
    }
    let mut tend = env.up();
    let pids: Vec<i32> = names.iter().map(|n| env.await_pid(&tend, &format!("{n}.pid"))).collect();
    tend.signal(sig);
    let code = tend.exit_code(T);
    for (n, pid) in names.iter().zip(&pids) {
        wait_gone(*pid, Duration::from_millis(500), n);
    }
    assert_eq!(code, 0, "clean shutdown on {signame} should exit 0\n{}", tend.dump());
    let err = tend.stderr();
    assert!(err.contains(&format!("shutting down ({signame})")), "{}", tend.dump());
    for n in names {
        assert!(err.contains(&format!("{n}: stopping (SIGTERM)")), "{}", tend.dump());
    }
}

#[test]
fn sigterm_stops_all_services_and_exits_0() {
    shutdown_on(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_stops_all_services_and_exits_0() {
    shutdown_on(libc::SIGINT, "SIGINT");
}

#[test]
fn sigquit_stops_all_services_and_exits_0() {
    shutdown_on(libc::SIGQUIT, "SIGQUIT");
}

#[test]
fn stop_signal_goes_to_the_whole_process_group() {
    let env = Env::new();
    let gc = env.p("gc.pid");
    let pidf = env.p("svc.pid");
    // The grandchild (background sleep) is in the service's group; the
    // stop signal to the group ends both at once, no SIGKILL needed.
    env.unit(
        "svc",
        &format!(
            "{}stop_timeout: 5s\n",
            sh(&format!("sleep 30 & {}; {}; wait", put("echo $!", &gc), put("echo $$", &pidf)))
        ),
    );
    let mut tend = env.up();
    let pid = env.await_pid(&tend, "svc.pid");
    let gpid = env.await_pid(&tend, "gc.pid");
    let t0 = Instant::now();
    tend.signal(libc::SIGTERM);
    let code = tend.exit_code(T);
    wait_gone(pid, Duration::from_millis(500), "service");
    wait_gone(gpid, Duration::from_millis(500), "grandchild in the service's group");
    assert!(t0.elapsed() < Duration::from_secs(4), "waited for stop_timeout: signal did not reach the group");
    assert!(!tend.stderr().contains("sending SIGKILL"), "{}", tend.dump());
    assert_eq!(code, 0, "{}", tend.dump());
}

#[test]
fn custom_stop_signal_is_sent() {
    let env = Env::new();
    let got = env.p("got");
    let ready = env.p("ready");
    env.unit(
        "svc",
        &format!(
            "{}stop_signal: USR1\nstop_timeout: 5s\n",
            sh(&format!(
                "trap '{}; exit 0' USR1; touch {}; while :; do sleep 0.02; done",
                put("echo USR1", &got),
                ready.display()
            ))
        ),
    );
    let mut tend = env.up();
    env.await_file(&tend, "ready");
    tend.signal(libc::SIGTERM);
    let code = tend.exit_code(T);
    assert_eq!(read(&got).trim(), "USR1", "service did not get its stop_signal\n{}", tend.dump());
    assert!(tend.stderr().contains("svc: stopping (SIGUSR1)"), "{}", tend.dump());
    assert_eq!(code, 0, "{}", tend.dump());
}

#[test]
fn service_ignoring_sigterm_is_killed_after_stop_timeout_with_its_group() {
    let env = Env::new();
    let gc = env.p("gc.pid");
    let pidf = env.p("svc.pid");
    let ready = env.p("ready");
    // `trap '' TERM` sets SIG_IGN, inherited by the background sleep too.
    env.unit(
        "stubborn",
        &format!(
            "{}stop_timeout: 300ms\n",
            sh(&format!(
                "trap '' TERM; sleep 30 & {}; {}; touch {}; wait $!; while :; do sleep 0.1; done",
                put("echo $!", &gc),
                put("echo $$", &pidf),
                ready.display()
            ))
        ),
    );
    let mut tend = env.up();
    env.await_file(&tend, "ready");
    let pid = env.await_pid(&tend, "svc.pid");
    let gpid = env.await_pid(&tend, "gc.pid");
    let t0 = Instant::now();
    tend.signal(libc::SIGTERM);
    let code = tend.exit_code(T);
    let took = t0.elapsed();
    wait_gone(pid, Duration::from_millis(500), "service ignoring SIGTERM");
    wait_gone(gpid, Duration::from_millis(500), "grandchild ignoring SIGTERM");
    assert!(took >= Duration::from_millis(280), "killed before stop_timeout: {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let err = tend.stderr();
    assert!(err.contains("stubborn: stopping (SIGTERM)"), "{}", tend.dump());
    assert!(err.contains("stubborn: did not stop in 300ms, sending SIGKILL"), "{}", tend.dump());
    assert_eq!(code, 1, "exit status must be 1 when a service had to be killed\n{}", tend.dump());
}

/// The leader dies on SIGTERM at once but a grandchild in its group ignores
/// it: escalation must not be decided from the leader's exit alone.
#[test]
fn grandchild_ignoring_sigterm_is_killed_after_the_leader_exits() {
    let env = Env::new();
    let gc = env.p("gc.pid");
    let pidf = env.p("svc.pid");
    env.unit(
        "svc",
        &format!(
            "{}stop_timeout: 300ms\n",
            sh(&format!(
                "(trap '' TERM; exec sleep 30) & {}; {}; wait",
                put("echo $!", &gc),
                put("echo $$", &pidf)
            ))
        ),
    );
    let mut tend = env.up();
    let pid = env.await_pid(&tend, "svc.pid");
    let gpid = env.await_pid(&tend, "gc.pid");
    tend.wait_until(T, "grandchild to exec sleep with SIGTERM ignored", || {
        read(format!("/proc/{gpid}/comm")).trim() == "sleep"
    });
    tend.signal(libc::SIGTERM);
    tend.wait_exit(T);
    wait_gone(pid, Duration::from_millis(500), "service leader");
    wait_gone(gpid, Duration::from_millis(500), "grandchild ignoring SIGTERM, after tend exited");
}

#[test]
fn second_sigint_escalates_to_sigkill_at_once() {
    let env = Env::new();
    let pidf = env.p("svc.pid");
    env.unit(
        "stubborn",
        &format!(
            "{}stop_timeout: 30s\n",
            sh(&format!("trap '' TERM INT; {}; while :; do sleep 0.05; done", put("echo $$", &pidf)))
        ),
    );
    let mut tend = env.up();
    let pid = env.await_pid(&tend, "svc.pid");
    tend.signal(libc::SIGINT);
    tend.wait_stderr("stubborn: stopping (SIGTERM)");
    let t0 = Instant::now();
    tend.signal(libc::SIGINT);
    let code = tend.exit_code(Duration::from_secs(5));
    assert!(t0.elapsed() < Duration::from_secs(3), "second SIGINT did not escalate");
    wait_gone(pid, Duration::from_millis(500), "service after escalation");
    assert_eq!(code, 1, "{}", tend.dump());
}

#[test]
fn second_sigterm_escalates_to_sigkill_at_once() {
    let env = Env::new();
    let pidf = env.p("svc.pid");
    env.unit(
        "stubborn",
        &format!(
            "{}stop_timeout: 30s\n",
            sh(&format!("trap '' TERM; {}; while :; do sleep 0.05; done", put("echo $$", &pidf)))
        ),
    );
    let mut tend = env.up();
    let pid = env.await_pid(&tend, "svc.pid");
    tend.signal(libc::SIGTERM);
    tend.wait_stderr("stubborn: stopping (SIGTERM)");
    tend.signal(libc::SIGTERM);
    let code = tend.exit_code(Duration::from_secs(5));
    wait_gone(pid, Duration::from_millis(500), "service after escalation");
    assert_eq!(code, 1, "{}", tend.dump());
}

#[test]
fn critical_service_exit_stops_the_rest_and_sets_exit_status() {
    let env = Env::new();
    sleeper(&env, "other", "stop_timeout: 5s\n");
    let other_pid = env.p("other.pid");
    // main waits until `other` runs, then exits 7 for good.
    env.unit(
        "main",
        &format!(
            "{}critical: true\nrestart: never\n",
            sh(&format!("while [ ! -e {} ]; do sleep 0.01; done; exit 7", other_pid.display()))
        ),
    );
    let mut tend = env.up();
    let pid = env.await_pid(&tend, "other.pid");
    let code = tend.exit_code(T);
    wait_gone(pid, Duration::from_millis(500), "other service after the critical one ended");
    assert_eq!(code, 7, "{}", tend.dump());
    assert!(tend.stderr().contains("other: stopping (SIGTERM)"), "{}", tend.dump());
}

#[test]
fn critical_service_killed_by_signal_gives_128_plus_n() {
    let env = Env::new();
    sleeper(&env, "other", "");
    let other_pid = env.p("other.pid");
    env.unit(
        "main",
        &format!(
            "{}critical: true\nrestart: never\n",
            sh(&format!("while [ ! -e {} ]; do sleep 0.01; done; kill -KILL $$", other_pid.display()))
        ),
    );
    let mut tend = env.up();
    let pid = env.await_pid(&tend, "other.pid");
    let code = tend.exit_code(T);
    wait_gone(pid, Duration::from_millis(500), "other service");
    assert_eq!(code, 128 + 9, "{}", tend.dump());
}

/// `success_exit_codes` is tend up's `tini -e`: a critical JVM that exits
/// 143 after SIGTERM, or is killed by SIGTERM (128+15), ends tend with 0.
#[test]
fn critical_service_exit_in_success_exit_codes_gives_0() {
    for (script, label) in [("exit 143", "exit 143"), ("kill -TERM $$", "killed by SIGTERM")] {
        let env = Env::new();
        env.unit(
            "main",
            &format!("{}critical: true\nrestart: never\nsuccess_exit_codes: [0, 143]\n", sh(script)),
        );
        let mut tend = env.up();
        let code = tend.exit_code(T);
        assert_eq!(code, 0, "{label}: a listed code must give tend exit 0\n{}", tend.dump());
        assert!(tend.stderr().contains("critical service ended"), "{}", tend.dump());
    }
    // Not listed: passed on as it is.
    let env = Env::new();
    env.unit("main", &format!("{}critical: true\nrestart: never\nsuccess_exit_codes: [0]\n", sh("exit 143")));
    let mut tend = env.up();
    assert_eq!(tend.exit_code(T), 143, "{}", tend.dump());
}

#[test]
fn critical_service_reaching_failed_stops_the_rest() {
    let env = Env::new();
    sleeper(&env, "other", "");
    let other_pid = env.p("other.pid");
    env.unit(
        "main",
        &format!(
            "{}critical: true\nrestart: on-failure\nrestart_delay: 10ms\nstart_limit: {{burst: 1, interval: 60s}}\n",
            sh(&format!("while [ ! -e {} ]; do sleep 0.01; done; exit 5", other_pid.display()))
        ),
    );
    let mut tend = env.up();
    let pid = env.await_pid(&tend, "other.pid");
    let code = tend.exit_code(T);
    wait_gone(pid, Duration::from_millis(500), "other service");
    assert!(tend.stderr().contains("main: failed"), "{}", tend.dump());
    assert_eq!(code, 5, "{}", tend.dump());
}

#[test]
fn critical_service_that_will_restart_does_not_stop_tend() {
    let env = Env::new();
    let starts = env.p("starts");
    env.unit(
        "main",
        &format!(
            "{}critical: true\nrestart: on-failure\nrestart_delay: 10ms\n",
            sh(&format!("echo x >> {}; exit 1", starts.display()))
        ),
    );
    let tend = env.up();
    tend.wait_until(T, "the critical service to be restarted", || read(&starts).lines().count() >= 2);
}
