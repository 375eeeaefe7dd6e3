//! Defects a field test found, each through the real binary: a failing
//! epoll_wait, tend's own environment reaching services, `check` and the
//! command, template-like unit names, a hung supervisor and the client.

mod common;
use common::*;

use std::process::Command;

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
