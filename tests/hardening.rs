//! Defects a field test found, each through the real binary: a failing
//! epoll_wait, tend's own environment reaching services, `check` and the
//! command, template-like unit names, a hung supervisor and the client.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

/// epoll_wait failing (strace injects EBADF into tend's calls after a
/// while): tend must not leave its loop with status 0 and its services
/// orphaned. It stops every service gracefully and exits 1 with the error.
#[test]
fn a_failed_epoll_wait_stops_every_service_and_exits_1() {
    if skip_unless_installed("a_failed_epoll_wait_stops_every_service_and_exits_1", &["strace"]) {
        return;
    }
    let env = Env::new();
    let term = env.p("term");
    // Ticks keep the loop turning, so the 40th epoll_wait comes soon, and
    // well after the trap is set.
    env.unit(
        "w",
        &format!(
            "stop_timeout: 5s\n{}",
            sh(&format!(
                "trap 'echo TERM > {}; exit 0' TERM\n{}\nwhile :; do echo tick; sleep 0.02; done",
                term.display(),
                put("echo $$", &env.p("pid"))
            ))
        ),
    );
    let mut cmd = Command::new("strace");
    cmd.args([
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=epoll_wait",
        "-e",
        "inject=epoll_wait:error=EBADF:when=40+",
    ])
    .arg(tend_bin())
    .args(["up", "--no-socket", "--units", env.units().to_str().unwrap()])
    .current_dir(env.root());
    let mut tend = Tend::spawn(cmd, env.root(), "strace tend up");
    let pid = env.await_pid(&tend, "pid");
    let code = tend.exit_code(T);
    assert_eq!(code, 1, "{}", tend.dump());
    let err = tend.stderr();
    assert!(err.contains("tend | poll failed: Bad file descriptor"), "{}", tend.dump());
    assert!(err.contains("stopping every service"), "{}", tend.dump());
    assert!(err.contains("w: stopping (SIGTERM)"), "{}", tend.dump());
    assert_eq!(read(&term).trim(), "TERM", "the service was stopped gracefully\n{}", tend.dump());
    wait_gone(pid, T, "the service");
}

/// A supervisor that accepts connections and never answers: every client
/// command gives up after `--timeout` (10 s by default for the commands that
/// do not wait on a service) and exits 3 with a message.
#[test]
fn client_commands_give_up_on_a_supervisor_that_does_not_answer() {
    let env = Env::new();
    let listener = std::os::unix::net::UnixListener::bind(env.socket()).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let commands: [&[&str]; 10] = [
        &["status"],
        &["status", "--json", "web"],
        &["signal", "HUP", "web"],
        &["logs", "web"],
        &["reload"],
        &["reopen-logs"],
        &["stop", "--no-wait", "web"],
        // Those that wait on services wait only as long as asked to.
        &["stop", "web"],
        &["restart", "--all"],
        &["shutdown"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--timeout", "300ms"]);
        let out = ctl(&env, &args);
        assert_eq!(out.code, 3, "tend {}: {}", args.join(" "), out.show());
        assert!(
            out.stderr.contains("did not answer within 300ms"),
            "tend {}: {}",
            args.join(" "),
            out.show()
        );
        assert!(out.took < Duration::from_secs(3), "tend {}: {}", args.join(" "), out.show());
    }
    // The default.
    let mut cmd = Command::new(tend_bin());
    cmd.arg("status").env("TEND_SOCKET", env.socket());
    let tend = Tend::spawn(cmd, env.root(), "tend status");
    let start = std::time::Instant::now();
    let mut tend = tend;
    let code = tend.exit_code(Duration::from_secs(30));
    let took = start.elapsed();
    assert_eq!(code, 3, "{}", tend.dump());
    assert!(tend.stderr().contains("did not answer within 10s"), "{}", tend.dump());
    assert!(took >= Duration::from_millis(9500) && took < Duration::from_secs(20), "took {took:?}");
}

/// What systemd (or tend's own settings) meant for tend does not reach
/// services: they get it only when their unit sets it, and a notify service
/// gets tend's own NOTIFY_SOCKET.
#[test]
fn tends_own_environment_does_not_leak_into_services() {
    let env = Env::new();
    let dump = |name: &str| put("env", &env.p(&format!("{name}.env")));
    env.unit("plain", &format!("restart: never\n{}", sh(&dump("plain"))));
    env.unit(
        "setter",
        &format!(
            "restart: never\nenvironment: {{LISTEN_FDS: '7', TEND_SOCKET: /mine}}\n{}",
            sh(&dump("setter"))
        ),
    );
    env.unit(
        "notifier",
        &format!(
            "type: notify\n{}",
            sh(&format!("{}\n{}\nexec sleep 100000", dump("notifier"), notify_ready_cmd(&env)))
        ),
    );
    let tend = env.spawn(&["up", "--units", env.units().to_str().unwrap()], |c| {
        c.env("NOTIFY_SOCKET", "/run/systemd/notify-for-tend")
            .env("LISTEN_FDS", "2")
            .env("LISTEN_PID", "1")
            .env("LISTEN_FDNAMES", "a:b")
            .env("WATCHDOG_USEC", "1000000")
            .env("WATCHDOG_PID", "1")
            .env("TEND_E2E_KEPT", "yes");
    });
    let vars = |name: &str| -> Vec<String> {
        env.await_file(&tend, &format!("{name}.env")).lines().map(str::to_string).collect()
    };
    let plain = vars("plain");
    for gone in [
        "NOTIFY_SOCKET=",
        "LISTEN_FDS=",
        "LISTEN_PID=",
        "LISTEN_FDNAMES=",
        "WATCHDOG_USEC=",
        "WATCHDOG_PID=",
        "TEND_SOCKET=",
    ] {
        assert!(!plain.iter().any(|l| l.starts_with(gone)), "{gone} leaked: {plain:?}");
    }
    assert!(plain.contains(&"TEND_E2E_KEPT=yes".to_string()), "the rest is inherited: {plain:?}");
    let setter = vars("setter");
    assert!(
        setter.contains(&"LISTEN_FDS=7".to_string()) && setter.contains(&"TEND_SOCKET=/mine".to_string()),
        "{setter:?}"
    );
    assert!(!setter.iter().any(|l| l.starts_with("LISTEN_PID=")), "{setter:?}");
    let notifier = vars("notifier");
    let socket = notifier.iter().find_map(|l| l.strip_prefix("NOTIFY_SOCKET=")).unwrap_or_default();
    assert!(socket.contains("tend-notify-"), "a notify service gets tend's own socket: {notifier:?}");
    assert!(!notifier.iter().any(|l| l.starts_with("WATCHDOG_USEC=")), "no watchdog was asked: {notifier:?}");
    wait_state(&env, &tend, "notifier", "ready");
}

/// `tend check` resolves each command as the spawn would and fails on one
/// that cannot run; `tend up` only warns and starts the others.
#[test]
fn check_finds_commands_that_cannot_run_and_up_warns() {
    let env = Env::new();
    env.unit("missing", "command: [/no/such/binary]\n");
    env.unit("typo", "command: [slepp, '1']\n");
    let script = env.p("not-executable");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    env.unit(
        "noexec",
        &format!("description: a script without its x bit\ncommand: ['{}']\n", script.display()),
    );
    env.unit("relative", &format!("working_dir: {}\ncommand: [./run.sh]\n", env.root().display()));
    env.unit("fine", "command: [sleep, '100003']\n");
    let (code, err) = env.check();
    assert_eq!(code, 2, "{err}");
    let u = env.units();
    for line in [
        format!("{}/missing.yaml:1:10: command: no such file '/no/such/binary'", u.display()),
        format!("{}/typo.yaml:1:10: command: 'slepp' is not in PATH (", u.display()),
        format!("{}/noexec.yaml:2:10: command: '{}' is not executable", u.display(), script.display()),
        format!("{}/relative.yaml:2:10: command: no such file './run.sh'", u.display()),
    ] {
        assert!(err.contains(&line), "missing {line:?} in:\n{err}");
    }
    assert!(!err.contains("fine.yaml"), "{err}");
    // Once it exists (relative to working_dir) and is executable, check passes for it.
    std::fs::write(env.p("run.sh"), "#!/bin/sh\nexec sleep 100004\n").unwrap();
    std::fs::set_permissions(env.p("run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (_, err) = env.check();
    assert!(!err.contains("relative.yaml"), "{err}");
    // up: warnings, and the others start.
    let mut tend = env.up();
    wait_running(&env, &tend, &["fine", "relative"]);
    tend.wait_stderr(&format!(
        "tend: warning: {}/missing.yaml:1:10: command: no such file '/no/such/binary'",
        u.display()
    ));
    wait_state(&env, &tend, "missing", "backoff");
    // reload: the same check, a warning too, and the reload goes on.
    env.unit("added", "command: [/no/such/either]\n");
    let out = ctl(&env, &["reload", "--json"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let warning = format!("{}/added.yaml:1:10: command: no such file '/no/such/either'", u.display());
    assert!(report["warnings"].as_array().is_some_and(|w| w.iter().any(|w| *w == warning)), "{}", out.show());
    assert!(out.stderr.contains(&format!("tend: warning: {warning}")), "{}", out.show());
    assert_eq!(report["started"][0], "added", "{}", out.show());
    shutdown(&env, &mut tend);
}

/// The same check uses the service's user: a root-only script is not
/// executable by `nobody`.
#[test]
fn check_judges_the_command_as_the_services_user() {
    if skip_unless_root("check_judges_the_command_as_the_services_user") {
        return;
    }
    let env = Env::new();
    let script = env.p("root-only");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    env.unit("mine", &format!("command: ['{}']\n", script.display()));
    env.unit("theirs", &format!("user: nobody\ncommand: ['{}']\n", script.display()));
    let (code, err) = env.check();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("command: '{}' is not executable by user nobody", script.display())),
        "{err}"
    );
    assert!(!err.contains("mine.yaml"), "root may run it: {err}");
}

/// `worker@.yaml` is a systemd template; tend has none yet and says so.
#[test]
fn a_template_unit_name_is_refused() {
    let env = Env::new();
    env.unit("worker@", "command: [echo, '%i']\n");
    let (code, err) = env.check();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'worker@' looks like a template unit"), "{err}");
    assert!(err.contains("hint: name the file worker.yaml"), "{err}");
}

/// `reload` goes through the loader and checks of `up` and `check`: as a
/// user who cannot use cgroups, a unit with `resources` that `up` would
/// refuse is refused by reload too (and nothing changes). That tend also
/// says once, in full, why cgroups cannot be used and what is lost.
#[test]
fn reload_refuses_what_up_refuses_and_the_cgroup_warning_says_why() {
    if skip_unless_root("reload_refuses_what_up_refuses_and_the_cgroup_warning_says_why") {
        return;
    }
    let env = Env::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = env.p("nobody");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let units = home.join("units");
    std::fs::create_dir(&units).unwrap();
    std::fs::write(units.join("a.yaml"), "command: [sleep, '100006']\n").unwrap();
    std::fs::set_permissions(&units, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = home.join("tend.sock");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", tend_bin(), "up", "--units"])
        .arg(&units)
        .arg("--socket")
        .arg(&socket)
        .current_dir(&home);
    let mut tend = Tend::spawn(cmd, env.root(), "tend up as nobody");
    let client = |args: &[&str]| {
        let mut cmd = Command::new(tend_bin());
        cmd.args(args).arg("--socket").arg(&socket);
        run_cmd(cmd, &format!("tend {}", args.join(" ")))
    };
    tend.wait_until(T, "a running", || client(&["status", "a"]).stdout.contains("running"));
    tend.wait_stderr("warning: cgroups unavailable (cannot write in /sys/fs/cgroup");
    let warning = tend.events().into_iter().find(|e| e.starts_with("warning: cgroups unavailable")).unwrap();
    assert!(!warning.contains("more)"), "every reason is named: {warning}");
    for said in ["Permission denied", "a daemon that left it survives", "`resources` are refused", "as root"]
    {
        assert!(warning.contains(said), "{said:?} in {warning}");
    }
    std::fs::write(units.join("b.yaml"), "command: [sleep, '100007']\nresources:\n  memory_max: 64M\n")
        .unwrap();
    let out = client(&["reload"]);
    assert_eq!(out.code, 2, "{}\n{}", out.show(), tend.dump());
    assert!(out.stderr.contains("b.yaml: resources: cannot be enforced on this host"), "{}", out.show());
    let status = client(&["status"]);
    assert!(!status.stdout.contains("\nb "), "nothing changed: {}", status.show());
    let out = client(&["shutdown"]);
    assert_eq!(out.code, 0, "{}", out.show());
    tend.wait_exit(T);
}

/// A reload loads the folder off the loop: while it is stuck reading (here
/// a FIFO where a unit file should be; user look-ups through NSS can block
/// the same way), tend keeps answering and supervising.
#[test]
fn a_reload_stuck_loading_does_not_stop_the_loop() {
    let env = Env::new();
    env.unit("a", "command: [sleep, '100008']\n");
    let mut tend = env.up();
    let first = pid_of(&wait_running(&env, &tend, &["a"]), "a");
    let fifo = env.units().join("slow.yaml");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0, "mkfifo");
    let mut cmd = Command::new(tend_bin());
    cmd.args(["reload", "--timeout", "60s"]).env("TEND_SOCKET", env.socket());
    let mut reload = Tend::spawn(cmd, env.root(), "tend reload");
    for _ in 0..5 {
        let out = ctl(&env, &["status", "--json"]);
        assert_eq!(out.code, 0, "{}", out.show());
        assert!(out.took < Duration::from_secs(1), "status took {:?} during the reload", out.took);
    }
    // Still supervising: a killed service comes back.
    kill(first, libc::SIGKILL);
    wait_status(&env, &tend, "a", "a new process", |s| s["state"] == "running" && s["pid"] != first);
    // The file arrives: the reload completes. (A loader that refuses a
    // FIFO outright is as good: then it has already answered, exit 2.)
    if reload.try_status().is_none() {
        std::fs::write(&fifo, "command: [sleep, '100009']\n").unwrap();
    }
    let code = reload.exit_code(T);
    match code {
        0 => {
            assert!(reload.stdout().contains("started:   slow"), "{}", reload.dump());
            wait_running(&env, &tend, &["a", "slow"]);
        }
        2 => assert!(reload.stderr().contains("slow.yaml"), "{}", reload.dump()),
        other => panic!("reload exited {other}\n{}", reload.dump()),
    }
    shutdown(&env, &mut tend);
}
