//! Issue 9: the privilege boundaries a penetration test crossed, each attack
//! reproduced through the real binary as the report describes it (see
//! /work/shared/reviews/security-bf80c9e.md), with throwaway unprivileged
//! users made for the test and removed after it.
//!
//! Every test needs root (it creates users and runs services as them):
//! without it, each prints `SKIPPED (needs root): NAME` and returns.

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// An Env whose units folder only root may write (tend, as root, refuses
/// anything else), with the unit files 0644.
fn env() -> Env {
    let env = Env::new();
    fs::set_permissions(env.units(), fs::Permissions::from_mode(0o755)).unwrap();
    env
}

fn unit(env: &Env, name: &str, yaml: &str) {
    env.unit(name, yaml);
    let path = env.units().join(format!("{name}.yaml"));
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

/// A folder `name` in the Env owned by `user`, mode 0755: the usual
/// `/var/log/app` that belongs to the service's account.
fn user_folder(env: &Env, name: &str, user: &TestUser) -> std::path::PathBuf {
    let dir = env.p(name);
    fs::create_dir(&dir).unwrap();
    chown(&dir, user.uid, user.gid);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A root-only folder holding a root-only file: what the attacks aim at.
fn root_only(env: &Env) -> std::path::PathBuf {
    let dir = env.p("rootonly");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let shadow = dir.join("shadow");
    fs::write(&shadow, "root:$y$SECRETHASH:19000:0:99999:7:::\n").unwrap();
    fs::set_permissions(&shadow, fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

/// `ln -s TARGET LINK` run as `user` (the service's account plants it).
fn plant_link(user: &TestUser, target: &Path, link: &Path) {
    let out = user.command("ln").args(["-s"]).arg(target).arg(link).output().unwrap();
    assert!(out.status.success(), "ln -s as {}: {out:?}", user.name);
}

// ---- D1: log files and symbolic links ----

#[test]
fn a_service_cannot_make_root_write_through_a_link_in_its_log_folder() {
    if skip_unless_root("a_service_cannot_make_root_write_through_a_link_in_its_log_folder") {
        return;
    }
    let user = TestUser::new();
    let env = env();
    let logs = user_folder(&env, "logs", &user);
    let rootonly = root_only(&env);
    let shadow = rootonly.join("shadow");
    let before = fs::read(&shadow).unwrap();
    // Append: web.log is a link to the root-only file.
    plant_link(&user, &shadow, &logs.join("web.log"));
    // Create: other.log is a dangling link into the root-only folder.
    plant_link(&user, &rootonly.join("cron-evil"), &logs.join("other.log"));
    // Truncate: keep 0 truncates in place after max_size.
    fs::copy(&shadow, rootonly.join("shadow2")).unwrap();
    plant_link(&user, &rootonly.join("shadow2"), &logs.join("trunc.log"));
    let service = |file: &str, extra: &str, script: &str| {
        format!(
            "{}user: {}\nstop_timeout: 300ms\nlog:\n  file: {}\n{extra}",
            sh(script),
            user.name,
            logs.join(file).display()
        )
    };
    unit(
        &env,
        "web",
        &service("web.log", "", "echo 'evil::0:0:appended by service output:/root:/bin/sh'\nexec sleep 300"),
    );
    unit(&env, "other", &service("other.log", "", "echo '* * * * * root id > /tmp/pwned'\nexec sleep 300"));
    unit(
        &env,
        "trunc",
        &service(
            "trunc.log",
            "  max_size: 1K\n  keep: 0\n",
            "i=0; while [ $i -lt 50 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done\necho END\nexec sleep 300",
        ),
    );
    let tend = env.up();
    // Once tend printed a line on its stdout it has also handed it to the
    // log file sink (the sink is flushed first in the same turn).
    tend.wait_stdout("appended by service output");
    tend.wait_stdout("root id > /tmp/pwned");
    tend.wait_until(T, "trunc to print END", || tend.lines_of("trunc").iter().any(|l| l == "END"));
    assert_eq!(
        fs::read(&shadow).unwrap(),
        before,
        "root appended service output to the link's target\n{}",
        tend.dump()
    );
    assert!(!rootonly.join("cron-evil").exists(), "root created the dangling link's target\n{}", tend.dump());
    assert_eq!(
        fs::read(rootonly.join("shadow2")).unwrap(),
        before,
        "root truncated or overwrote the link's target\n{}",
        tend.dump()
    );
    tend.wait_stderr("web.log: it is a symbolic link");
    assert!(
        tend.stderr().contains("(the service keeps running)"),
        "the refusal should be reported as a log error\n{}",
        tend.dump()
    );
    assert_eq!(state(&env, "web"), "running", "{}", tend.dump());
    // `check --strict` says the folder is the service's to change.
    let mut check = env.spawn(&["check", "--strict", env.units().to_str().unwrap()], |_| {});
    assert_eq!(check.exit_code(T), 2, "{}", check.dump());
    let expected = format!("log.file: its folder {} is owned by uid {}", logs.display(), user.uid);
    assert!(check.stderr().contains(&expected), "{}", check.dump());
}

#[test]
fn a_service_racing_the_rotation_cannot_get_its_lines_into_a_root_file() {
    if skip_unless_root("a_service_racing_the_rotation_cannot_get_its_lines_into_a_root_file") {
        return;
    }
    let user = TestUser::new();
    let env = env();
    let logs = user_folder(&env, "logs", &user);
    let rootonly = root_only(&env);
    let shadow = rootonly.join("shadow");
    let before = fs::read(&shadow).unwrap();
    let link = logs.join("web.log");
    // No planting in advance: the service keeps trying to put a link where
    // tend reopens after each rotation, while it writes fast enough to
    // rotate every few milliseconds.
    let script = format!(
        "(while :; do ln -s {} {} 2>/dev/null; done) &\nwhile :; do echo RACED-LINE-0123456789012345678901234567890123456789; done",
        shadow.display(),
        link.display()
    );
    unit(
        &env,
        "racer",
        &format!(
            "{}user: {}\nstop_timeout: 300ms\nlog:\n  file: {}\n  max_size: 4K\n  keep: 2\n",
            sh(&script),
            user.name,
            link.display()
        ),
    );
    let tend = env.up();
    // About 600 rotations' worth of lines (the report's attack won within 5 s).
    tend.wait_until(Duration::from_secs(60), "50,000 lines from the racer", || {
        fs::metadata(&tend.out_path).map(|m| m.len()).unwrap_or(0) > 50_000 * 60
    });
    assert_eq!(
        fs::read(&shadow).unwrap(),
        before,
        "the race got service lines into a root-only file\n{}",
        tend.dump()
    );
}
