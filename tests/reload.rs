//! Issue 3, reload: `tend reload` and SIGHUP re-read the units folder and
//! apply the difference (added units start, removed units stop gracefully,
//! changed units restart with the new definition, unchanged ones keep their
//! pid); an invalid folder changes nothing and the reply carries the same
//! file:line:column errors as `tend check`, with exit status 2.

mod common;
use common::*;

use serde_json::Value;
use std::time::Duration;

// ---- helpers of this file (shared ones are in tests/common) ----

/// (name, state, pid) of every service from `tend status --json`, sorted.
fn snapshot(env: &Env) -> Vec<(String, String, Option<i32>)> {
    let (_, list) = status_json(env, &[]);
    let mut list: Vec<_> = list
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
                s["pid"].as_i64().map(|p| p as i32),
            )
        })
        .collect();
    list.sort();
    list
}

fn get(snap: &[(String, String, Option<i32>)], name: &str) -> Option<(String, Option<i32>)> {
    snap.iter().find(|s| s.0 == name).map(|s| (s.1.clone(), s.2))
}

fn all_running(env: &Env, names: &[&str]) -> bool {
    let snap = snapshot(env);
    names.iter().all(|n| get(&snap, n).is_some_and(|s| s.0 == "running"))
}

/// Wait (common `wait_running`) until `names` run; then their snapshot.
fn wait_running_snapshot(env: &Env, tend: &Tend, names: &[&str]) -> Vec<(String, String, Option<i32>)> {
    wait_running(env, tend, names);
    // A `versioned` unit has set its SIGTERM trap once it wrote its version
    // (running only means exec'd: on a loaded machine the shell may not
    // have read its trap line yet, and a SIGTERM then kills it unrecorded).
    for name in names {
        let unit = read(env.units().join(format!("{name}.yaml")));
        if unit.contains(&format!("{name}.version")) {
            env.await_file(tend, &format!("{name}.version"));
        }
    }
    snapshot(env)
}

fn pid(snap: &[(String, String, Option<i32>)], name: &str) -> i32 {
    get(snap, name).and_then(|s| s.1).unwrap_or_else(|| panic!("no pid for {name}: {snap:?}"))
}

/// A long-running unit that records its version and its SIGTERM. The
/// stop timeout is generous: the trap forks `mv` after the current `sleep`
/// ends, which a loaded machine can delay by seconds, and a SIGKILL then
/// would lose the record of the SIGTERM.
fn versioned(env: &Env, name: &str, version: &str) -> String {
    let ver = env.p(&format!("{name}.version"));
    let term = env.p(&format!("{name}.term"));
    format!(
        "{}stop_timeout: 30s\n",
        sh(&format!(
            "trap '{}; exit 0' TERM\n{}\nwhile :; do sleep 0.05; done",
            put("echo term", &term),
            put(&format!("echo {version}"), &ver)
        ))
    )
}

/// keep (unchanged), gone (to remove), change (to change); returns their pids.
fn initial(env: &Env) {
    env.unit("keep", &versioned(env, "keep", "v1"));
    env.unit("gone", &versioned(env, "gone", "v1"));
    env.unit("change", &versioned(env, "change", "v1"));
}

/// Remove `gone`, change `change` to v2, add `new`.
fn edit(env: &Env) {
    std::fs::remove_file(env.units().join("gone.yaml")).unwrap();
    env.unit("change", &versioned(env, "change", "v2"));
    env.unit("new", &versioned(env, "new", "v1"));
}

/// The folder after `edit` was applied.
fn check_applied(env: &Env, tend: &Tend, before: &[(String, String, Option<i32>)]) {
    tend.wait_until(T, "change and new running, gone removed", || {
        let snap = snapshot(env);
        all_running(env, &["keep", "change", "new"])
            && get(&snap, "gone").is_none()
            && get(&snap, "change").and_then(|s| s.1) != Some(pid(before, "change"))
    });
    let after = snapshot(env);
    let names: Vec<&str> = after.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["change", "keep", "new"], "{after:?}");
    assert_eq!(pid(&after, "keep"), pid(before, "keep"), "the unchanged unit was touched");
    // Removed: stopped gracefully (it got SIGTERM and could say so).
    wait_gone(pid(before, "gone"), T, "the removed unit");
    assert_eq!(env.await_file(tend, "gone.term").trim(), "term", "removed unit was not stopped with SIGTERM");
    // Changed: a new process running the new definition.
    let new_change = pid(&after, "change");
    assert_ne!(new_change, pid(before, "change"));
    assert!(is_gone(pid(before, "change")), "the old process of the changed unit still runs");
    tend.wait_until(T, "change to run v2", || read(env.p("change.version")).trim() == "v2");
    // Running only means exec'd: the new unit's shell may not have written
    // its version yet.
    assert_eq!(env.await_file(tend, "new.version").trim(), "v1");
    assert!(!env.p("keep.term").exists(), "the unchanged unit got SIGTERM");
}

#[test]
fn reload_applies_each_kind_of_difference() {
    let env = Env::new();
    initial(&env);
    let mut tend = env.up();
    let before = wait_running_snapshot(&env, &tend, &["keep", "gone", "change"]);
    edit(&env);
    let out = ctl(&env, &["reload"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    let lines: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(lines.contains(&vec!["started:", "new"]), "{}", out.show());
    assert!(lines.contains(&vec!["stopped:", "gone"]), "{}", out.show());
    assert!(lines.contains(&vec!["restarted:", "change"]), "{}", out.show());
    assert!(lines.contains(&vec!["unchanged:", "keep"]), "{}", out.show());
    check_applied(&env, &tend, &before);
    // Reloading again with no change touches nothing.
    let snap = snapshot(&env);
    let out = ctl(&env, &["reload", "--json"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.show()));
    assert_eq!(report["started"], serde_json::json!([]), "{report}");
    assert_eq!(report["stopped"], serde_json::json!([]), "{report}");
    assert_eq!(report["restarted"], serde_json::json!([]), "{report}");
    let mut unchanged: Vec<&str> =
        report["unchanged"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    unchanged.sort();
    assert_eq!(unchanged, ["change", "keep", "new"], "{report}");
    assert_eq!(snapshot(&env), snap);
    shutdown(&env, &mut tend);
}

/// Write an invalid unit (plus other edits that must NOT be applied).
fn break_folder(env: &Env) {
    edit(env);
    env.unit("bad", "command: [sleep, '1']\nrestart: sometimes\n");
}

/// `file:line:column` diagnostics about bad.yaml in `text`.
fn diagnostics(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let Some(at) = l.find("bad.yaml:") else { return false };
            let rest = &l[at + "bad.yaml:".len()..];
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().unwrap_or("");
            let col = parts.next().unwrap_or("");
            !line.is_empty()
                && line.chars().all(|c| c.is_ascii_digit())
                && !col.is_empty()
                && col.chars().all(|c| c.is_ascii_digit())
        })
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn reload_of_an_invalid_folder_changes_nothing_and_exits_2() {
    let env = Env::new();
    initial(&env);
    let mut tend = env.up();
    let before = wait_running_snapshot(&env, &tend, &["keep", "gone", "change"]);
    break_folder(&env);
    let out = ctl(&env, &["reload"]);
    assert_eq!(out.code, 2, "{}\n{}", out.show(), tend.dump());
    let got = diagnostics(&out.stderr);
    assert!(!got.is_empty(), "no file:line:column error in the reply\n{}", out.show());
    // The same errors as `tend check`.
    let (check_code, check_err) = env.check();
    assert_eq!(check_code, 2);
    let want = diagnostics(&check_err);
    assert_eq!(got, want, "reload and check disagree\n--- check ---\n{check_err}\n{}", out.show());
    // Nothing changed, and nothing changes a moment later either.
    assert_stays(Duration::from_millis(300), "nothing changed after a refused reload", || {
        snapshot(&env) == before
    });
    assert!(!env.p("new.version").exists(), "the added unit was started");
    assert!(!env.p("gone.term").exists(), "the removed unit was stopped");
    assert_eq!(read(env.p("change.version")).trim(), "v1");
    // Once fixed, the same edits apply.
    std::fs::remove_file(env.units().join("bad.yaml")).unwrap();
    let out = ctl(&env, &["reload"]);
    assert_eq!(out.code, 0, "{}", out.show());
    check_applied(&env, &tend, &before);
    shutdown(&env, &mut tend);
}

#[test]
fn sighup_reloads_like_tend_reload() {
    let env = Env::new();
    initial(&env);
    let mut tend = env.up();
    let before = wait_running_snapshot(&env, &tend, &["keep", "gone", "change"]);
    edit(&env);
    tend.signal(libc::SIGHUP);
    check_applied(&env, &tend, &before);
    tend.wait_stderr("reloaded: started new; stopped gone; restarted change; 1 unchanged");
    shutdown(&env, &mut tend);
}

#[test]
fn sighup_with_an_invalid_folder_changes_nothing() {
    let env = Env::new();
    initial(&env);
    let mut tend = env.up();
    let before = wait_running_snapshot(&env, &tend, &["keep", "gone", "change"]);
    break_folder(&env);
    tend.signal(libc::SIGHUP);
    tend.wait_stderr("reload refused, nothing changed");
    assert!(!diagnostics(&tend.stderr()).is_empty(), "no file:line:column in tend's stderr\n{}", tend.dump());
    assert_stays(Duration::from_millis(300), "nothing changed after a refused SIGHUP", || {
        snapshot(&env) == before
    });
    assert!(!env.p("new.version").exists());
    assert!(!env.p("gone.term").exists());
    assert_eq!(tend.try_status(), None, "tend exited on a bad SIGHUP\n{}", tend.dump());
    shutdown(&env, &mut tend);
}

#[test]
fn a_removed_unit_that_ignores_sigterm_is_killed_after_its_stop_timeout() {
    let env = Env::new();
    env.unit("keep", &versioned(&env, "keep", "v1"));
    env.unit(
        "stubborn",
        &format!("{}stop_timeout: 300ms\n", sh("trap '' TERM\nwhile :; do sleep 0.05; done")),
    );
    let mut tend = env.up();
    let before = wait_running_snapshot(&env, &tend, &["keep", "stubborn"]);
    std::fs::remove_file(env.units().join("stubborn.yaml")).unwrap();
    let out = ctl(&env, &["reload"]);
    assert_eq!(out.code, 0, "{}", out.show());
    wait_gone(pid(&before, "stubborn"), Duration::from_secs(5), "the removed stubborn unit");
    tend.wait_until(T, "stubborn gone from status", || get(&snapshot(&env), "stubborn").is_none());
    assert_eq!(pid(&snapshot(&env), "keep"), pid(&before, "keep"));
    shutdown(&env, &mut tend);
}
