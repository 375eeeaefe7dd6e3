//! README section "Choosing what runs": `enabled: false` (loaded and
//! checked, not started by `tend up`, started by `tend start`) and
//! `tend up NAME…` (only these and what they depend on; the others loaded
//! and stopped).

mod common;
use common::*;

#[test]
fn a_disabled_unit_is_loaded_and_checked_but_not_started() {
    let env = Env::new();
    let started = env.p("started");
    env.unit("web", "command: [sleep, '1000']\n");
    let script = format!("{}\nexec sleep 1000", put("echo yes", &started));
    env.unit("debug", &format!("{}enabled: false\n", sh(&script)));
    let tend = env.up();
    wait_running(&env, &tend, &["web"]);
    let debug = svc(&env, "debug");
    assert_eq!(debug["state"], "stopped", "{debug}");
    assert_eq!(debug["enabled"], false, "{debug}");
    assert!(svc(&env, "web").get("enabled").is_none(), "shown only when false");
    assert_stays(std::time::Duration::from_millis(300), "debug not started", || !started.exists());
    // Stopped as configured: healthy, and `tend status` (a container's
    // HEALTHCHECK) exits 0.
    assert_eq!(debug["healthy"], true, "{debug}");
    let (code, _) = status_json(&env, &[]);
    assert_eq!(code, 0);
    let out = ctl(&env, &["start", "debug"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("debug: started"), "{}", out.show());
    assert_eq!(env.await_file(&tend, "started").trim(), "yes");
}

#[test]
fn a_disabled_unit_is_still_checked() {
    let env = Env::new();
    env.unit("debug", "command: [sleep, '1']\nenabled: false\nrestart: sometimes\n");
    let (code, err) = env.check();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("debug.yaml:3:10: restart:"), "{err}");
}

/// What an enabled unit needs starts with it, enabled or not.
#[test]
fn a_disabled_dependency_starts_with_what_needs_it() {
    let env = Env::new();
    env.unit("db", "command: [sleep, '1000']\nenabled: false\n");
    env.unit("web", "command: [sleep, '1000']\ndepends_on: [db]\n");
    let tend = env.up();
    wait_running(&env, &tend, &["db", "web"]);
}

#[test]
fn up_with_names_starts_only_those_and_what_they_depend_on() {
    let env = Env::new();
    env.unit("db", "command: [sleep, '1000']\n");
    env.unit("web", "command: [sleep, '1000']\ndepends_on: [db]\n");
    env.unit("admin", "command: [sleep, '1000']\n");
    env.unit("worker", "command: [sleep, '1000']\ninstances: 3\n");
    let units = env.units();
    let tend = env.spawn(&["up", "--units", units.to_str().unwrap(), "web", "worker@2"], |_| {});
    wait_running(&env, &tend, &["db", "web", "worker@2"]);
    for name in ["admin", "worker@1", "worker@3"] {
        assert_eq!(state(&env, name), "stopped", "{name}\n{}", tend.dump());
    }
    let (code, list) = status_json(&env, &[]);
    assert_eq!(code, 0, "what `up` was not asked to start is stopped as meant: {list:?}");
    // The others are loaded: they start by hand.
    let out = ctl(&env, &["start", "admin", "worker"]);
    assert_eq!(out.code, 0, "{}", out.show());
    wait_running(&env, &tend, &["admin", "worker@1", "worker@3"]);
}

#[test]
fn up_with_an_unknown_name_starts_nothing() {
    let env = Env::new();
    let started = env.p("started");
    env.unit("web", &sh(&format!("echo yes > {}\nexec sleep 1000", started.display())));
    let units = env.units();
    let mut tend = env.spawn(&["up", "--units", units.to_str().unwrap(), "wbe"], |_| {});
    assert_eq!(tend.exit_code(T), 2, "{}", tend.dump());
    assert!(
        tend.stderr()
            .contains("tend: no service 'wbe' (did you mean 'web'?); known: web; nothing was started"),
        "{}",
        tend.dump()
    );
    assert!(!started.exists());
}

/// `tend up --detach NAME…`: the supervisor it starts in the background
/// gets the names too.
#[test]
fn up_detach_with_names_starts_only_those() {
    let env = Env::new();
    env.unit("db", "command: [sleep, '100000']\n");
    env.unit("web", "command: [sleep, '100000']\ndepends_on: [db]\n");
    env.unit("admin", "command: [sleep, '100000']\n");
    let units = env.units();
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.args(["up", "--detach", "--units", units.to_str().unwrap(), "web"])
        .env("TEND_SOCKET", env.socket())
        .current_dir(env.root());
    let out = run_cmd_within(cmd, "tend up --detach web", std::time::Duration::from_secs(30));
    let pid: Option<i32> = out
        .stderr
        .split("running in the background (pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok());
    let list = status_list(&env);
    let stop = ctl(&env, &["shutdown", "--timeout", "5s"]);
    if let Some(pid) = pid.filter(|&p| !is_gone(p)) {
        kill(pid, libc::SIGKILL);
    }
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(stop.code, 0, "{}", stop.show());
    let state = |name: &str| service(&list, name).unwrap()["state"].as_str().unwrap().to_string();
    assert_eq!(
        (state("db"), state("web"), state("admin")),
        ("running".into(), "running".into(), "stopped".into())
    );
}
