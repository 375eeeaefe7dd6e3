//! How runs end and what tend makes of it: a failing health check goes
//! through the restart policy like an exit; every `last_exit` carries its
//! kind (the README's JSON contract); the exit of a process tend stopped for
//! failing is logged like any other; `ready` services show their uptime.

mod common;
use common::*;

use serde_json::Value;
use std::time::Duration;

fn sleeper_that_records_its_starts(env: &Env) -> String {
    sh(&format!("date +%s%N >> {}\nexec sleep 100000", env.p("starts").display()))
}

fn starts(env: &Env) -> Vec<u128> {
    read(env.p("starts")).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn a_failing_health_check_under_never_leaves_the_service_failed() {
    let env = Env::new();
    env.unit(
        "web",
        &format!(
            "restart: never\nrestart_delay: 50ms\nstop_timeout: 2s\nhealth_check:\n  exec: ['false']\n  \
             interval: 100ms\n  retries: 2\n{}",
            sleeper_that_records_its_starts(&env)
        ),
    );
    let mut tend = env.up();
    let s = wait_state(&env, &tend, "web", "failed");
    assert_eq!(s["reason"], "health check failed (2 times)", "{s}");
    assert_eq!(s["last_exit"]["kind"], "health", "{s}");
    assert_eq!(s["last_exit"]["signal"], "SIGTERM", "how the process ended is kept: {s}");
    assert_eq!(s["healthy"], false, "{s}");
    assert_stays(Duration::from_millis(600), "restart: never: no second start", || {
        starts(&env).len() == 1 && state(&env, "web") == "failed"
    });
    let events = tend.events();
    let at = |needle: &str| {
        events
            .iter()
            .position(|e| e == needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{}", events.join("\n")))
    };
    let (stopping, exited, failed) = (
        at("web: health check failed 2 times in a row, stopping it"),
        at("web: killed by signal SIGTERM"),
        at("web: failed: health check failed (2 times)"),
    );
    assert!(stopping < exited && exited < failed, "{}", events.join("\n"));
    let table = ctl(&env, &["status"]);
    let row = table.stdout.lines().find(|l| l.starts_with("web ")).unwrap_or_default().to_string();
    assert!(row.contains("failed") && row.contains("health check failed (2 times)"), "{}", table.show());
    shutdown(&env, &mut tend);
}

#[test]
fn a_failing_health_check_waits_for_restart_delay_and_hits_the_start_limit() {
    let env = Env::new();
    env.unit(
        "web",
        &format!(
            "restart: always\nrestart_delay: 400ms\nstart_limit: {{burst: 1, interval: 1m}}\nstop_timeout: 2s\n\
             health_check:\n  exec: ['false']\n  interval: 100ms\n  retries: 1\n{}",
            sleeper_that_records_its_starts(&env)
        ),
    );
    let mut tend = env.up();
    let s = wait_state(&env, &tend, "web", "failed");
    assert_eq!(s["reason"], "start limit hit (2 failures in 1m)", "{s}");
    assert_eq!(s["last_exit"]["kind"], "start_limit", "{s}");
    assert_eq!(s["restarts"], 1, "{s}");
    let times = starts(&env);
    assert_eq!(times.len(), 2, "one restart, then the start limit\n{}", tend.dump());
    let gap_ms = (times[1] - times[0]) / 1_000_000;
    // One check interval, then the 400 ms restart delay (less the first
    // start's own shell start-up).
    assert!(gap_ms >= 400, "restarted {gap_ms} ms after the first start: not after restart_delay");
    assert!(tend.stderr().contains("web: restarting in 400ms (restart 1)"), "{}", tend.dump());
    shutdown(&env, &mut tend);
}

/// One unit per kind of end (but oom, tested in tests/sandbox.rs, and
/// start_limit, above), all under `restart: never`.
#[test]
fn every_last_exit_has_its_kind_and_the_fields_of_that_kind() {
    let env = Env::new();
    let never = "restart: never\nstop_timeout: 2s\n";
    env.unit("exited", &format!("{never}{}", sh("exit 3")));
    env.unit("killed", &format!("{never}{}", sh("kill -KILL $$")));
    env.unit("missing", &format!("{never}command: [/no/such/binary]\n"));
    let script = env.p("not-executable");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    env.unit("noexec", &format!("{never}command: ['{}']\n", script.display()));
    env.unit("slow", &format!("{never}type: notify\nstart_timeout: 300ms\n{}", sh("exec sleep 100000")));
    env.unit(
        "dog",
        &format!(
            "{never}type: notify\nwatchdog: 300ms\n{}",
            sh(&format!("{}\nexec sleep 100000", notify_ready_cmd(&env)))
        ),
    );
    env.unit("once", &format!("{never}type: oneshot\ntimeout: 300ms\n{}", sh("exec sleep 100000")));
    let mut tend = env.up();
    let done = ["exited", "killed", "missing", "noexec", "slow", "dog", "once"];
    let mut list = Vec::new();
    tend.wait_until(T, "every service to end", || {
        list = status_list(&env);
        done.iter()
            .all(|n| service(&list, n).is_some_and(|s| s["state"] == "exited" || s["state"] == "failed"))
    });
    let last = |name: &str| -> Value { service(&list, name).unwrap()["last_exit"].clone() };
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let e = last("exited");
    assert_eq!(
        (&e["kind"], &e["code"], &e["message"]),
        (&"exited".into(), &3.into(), &"exited with status 3".into())
    );
    assert_eq!(keys(&e), ["code", "kind", "message", "time"], "{e}");
    let k = last("killed");
    assert_eq!(
        (&k["kind"], &k["signal"], &k["core_dumped"]),
        (&"killed".into(), &"SIGKILL".into(), &false.into())
    );
    assert_eq!(keys(&k), ["core_dumped", "kind", "message", "signal", "time"], "{k}");
    let m = last("missing");
    assert_eq!(
        (&m["kind"], &m["step"], &m["errno"]),
        (&"exec_failed".into(), &"exec".into(), &"not_found".into())
    );
    assert_eq!(m["message"], "cannot execute /no/such/binary: No such file or directory", "{m}");
    assert_eq!(keys(&m), ["errno", "kind", "message", "step", "time"], "{m}");
    let n = last("noexec");
    assert_eq!((&n["kind"], &n["errno"]), (&"exec_failed".into(), &"permission_denied".into()), "{n}");
    for (name, kind, message) in [
        ("slow", "start_timeout", "start timeout after 300ms"),
        ("dog", "watchdog", "watchdog timeout (no WATCHDOG=1 within 300ms)"),
        ("once", "timeout", "timed out after 300ms"),
    ] {
        let l = last(name);
        assert_eq!((l["kind"].as_str(), l["message"].as_str()), (Some(kind), Some(message)), "{name}: {l}");
        assert_eq!(l["signal"], "SIGTERM", "{name}: how the process ended: {l}");
        let s = service(&list, name).unwrap();
        assert_eq!((&s["state"], &s["reason"]), (&"failed".into(), &message.into()), "{s}");
        // The exit line after the stop, and the failure, in tend's log.
        tend.wait_stderr(&format!("{name}: killed by signal SIGTERM"));
        tend.wait_stderr(&format!("{name}: failed: {message}"));
    }
    for (name, column) in [
        ("exited", "status 3"),
        ("killed", "SIGKILL"),
        ("missing", "cannot start"),
        ("slow", "start timeout after 300ms"),
        ("dog", "watchdog timeout"),
        ("once", "timed out after 300ms"),
    ] {
        let table = ctl(&env, &["status", name]);
        let row = table.stdout.lines().nth(1).unwrap_or_default().to_string();
        assert!(row.contains(column), "LAST-EXIT of {name} should say {column:?}: {}", table.show());
    }
    shutdown(&env, &mut tend);
}

/// UPTIME counts from the start, for every state with a process: `ready`
/// too (it used to show `-`).
#[test]
fn a_ready_service_shows_its_uptime() {
    let env = Env::new();
    env.unit(
        "db",
        &format!("type: notify\n{}", sh(&format!("{}\nexec sleep 100000", notify_ready_cmd(&env)))),
    );
    let mut tend = env.up();
    let s = wait_state(&env, &tend, "db", "ready");
    assert!(s["uptime_secs"].as_f64().is_some_and(|u| u >= 0.0), "{s}");
    let out = ctl(&env, &["status"]);
    let header = out.stdout.lines().next().unwrap_or_default().to_string();
    let row = out.stdout.lines().nth(1).unwrap_or_default().to_string();
    let col = header.find("UPTIME").unwrap();
    let uptime = row[col..].split_whitespace().next().unwrap_or_default();
    assert!(uptime.ends_with('s') && uptime != "-", "UPTIME of a ready service: {}", out.show());
    shutdown(&env, &mut tend);
}
