//! Issue 4, readiness through the real binary: sd_notify with real daemons
//! (redis-server, systemd-notify), messages from outsiders, s6 notify_fd,
//! tcp/http ready checks, start_timeout, health checks and the watchdog.

mod common;
use common::*;

use serde_json::Value;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// ---- helpers of this file (shared ones are in tests/common) ----

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// Shell loop that waits (bounded by the test's own timeouts) for `file`.
fn until_exists(file: &std::path::Path) -> String {
    format!("until [ -e {} ]; do sleep 0.02; done", file.display())
}

// ---- real daemons ----

#[test]
fn redis_server_in_notify_mode_is_ready_and_answers_ping() {
    if skip_unless_installed(
        "redis_server_in_notify_mode_is_ready_and_answers_ping",
        &["redis-server", "redis-cli"],
    ) {
        return;
    }
    let env = Env::new();
    let port = free_port();
    env.unit(
        "redis",
        &format!(
            "type: notify\nstop_timeout: 5s\ncommand: [redis-server, --supervised, systemd, --port, '{port}', \
             --bind, 127.0.0.1, --save, '', --appendonly, 'no', --dir, '{}']\n",
            env.root().display()
        ),
    );
    let mut tend = env.up();
    let redis = wait_state(&env, &tend, "redis", "ready");
    // Ready means ready: it answers at once.
    let mut ping = Command::new("redis-cli");
    ping.args(["-h", "127.0.0.1", "-p", &port.to_string(), "ping"]);
    let out = run_cmd(ping, "redis-cli ping");
    assert_eq!(
        out.stdout.trim(),
        "PONG",
        "redis reported ready but: {}\n{redis}\n{}",
        out.show(),
        tend.dump()
    );
    assert!(redis["pid"].as_i64().unwrap_or(0) > 1, "{redis}");
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

#[test]
fn systemd_notify_sets_ready_and_status_text() {
    if skip_unless_installed("systemd_notify_sets_ready_and_status_text", &["systemd-notify"]) {
        return;
    }
    let env = Env::new();
    let go = env.p("go");
    env.unit(
        "svc",
        &format!(
            "type: notify\nstop_timeout: 1s\n{}",
            sh(&format!(
                "systemd-notify --no-block --status=booting\n{}\nsystemd-notify --ready --status='serving 42 \
                 clients'\nexec sleep 100000",
                until_exists(&go)
            ))
        ),
    );
    let mut tend = env.up();
    tend.wait_until(T, "STATUS=booting to show while starting", || {
        let s = svc(&env, "svc");
        s["status_text"] == "booting" && s["state"] == "starting"
    });
    assert_stays(Duration::from_millis(300), "svc stays starting without READY=1", || {
        state(&env, "svc") == "starting"
    });
    fs::write(&go, "").unwrap();
    let s = wait_state(&env, &tend, "svc", "ready");
    assert_eq!(s["status_text"], "serving 42 clients", "{s}\n{}", tend.dump());
    tend.wait_stderr("svc: ready");
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

#[test]
fn systemd_notify_ready_returns_promptly_and_succeeds() {
    // systemd-notify (without --no-block) sends READY=1, then BARRIER=1 with
    // a pipe and waits until the manager closed it (sd_notify_barrier(3)).
    if skip_unless_installed("systemd_notify_ready_returns_promptly_and_succeeds", &["systemd-notify"]) {
        return;
    }
    let env = Env::new();
    env.unit(
        "svc",
        &format!(
            "type: notify\nstop_timeout: 1s\n{}",
            sh(&format!(
                "t0=$(date +%s%N)\nsystemd-notify --ready; rc=$?\nt1=$(date +%s%N)\n{}\nexec sleep 100000",
                put("echo $rc $(( (t1 - t0) / 1000000 ))", &env.p("result"))
            ))
        ),
    );
    let mut tend = env.up();
    wait_state(&env, &tend, "svc", "ready");
    let result = env.await_file(&tend, "result");
    let (rc, took_ms) = result.trim().split_once(' ').unwrap_or_else(|| panic!("result: {result:?}"));
    let took_ms: u64 = took_ms.parse().unwrap();
    assert!(
        rc == "0" && took_ms < 2000,
        "`systemd-notify --ready` under tend exited {rc} after {took_ms} ms (under systemd: 0, at once)\n{}",
        tend.dump()
    );
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

// ---- who may notify ----

#[test]
fn notify_message_from_outside_the_service_is_ignored() {
    let env = Env::new();
    let sock_file = env.p("notify-socket");
    env.unit(
        "svc",
        &format!(
            "type: notify\nstop_timeout: 1s\n{}",
            sh(&format!("{}\nexec sleep 100000", put("echo \"$NOTIFY_SOCKET\"", &sock_file)))
        ),
    );
    let mut tend = env.up();
    let path = env.await_file(&tend, "notify-socket").trim().to_string();
    assert!(path.starts_with('/'), "NOTIFY_SOCKET should be a socket path: {path:?}\n{}", tend.dump());
    wait_state(&env, &tend, "svc", "starting");
    // This test process is no process of the service.
    let sender = UnixDatagram::unbound().unwrap();
    sender.send_to(b"READY=1\nSTATUS=forged\n", &path).unwrap_or_else(|e| panic!("send to {path}: {e}"));
    tend.wait_stderr(&format!("ignored a notify message from pid {}", std::process::id()));
    assert_stays(Duration::from_millis(300), "svc stays starting, without the forged STATUS", || {
        let s = svc(&env, "svc");
        s["state"] == "starting" && s["status_text"] != "forged"
    });
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

/// Whether cgroup2 is mounted (tend then gives each service, as root, a
/// cgroup of its own).
fn have_cgroup2() -> bool {
    read("/proc/self/mountinfo").lines().any(|l| l.contains(" - cgroup2 "))
}

/// A READY=1 whose sender exited, and was reaped, before tend read it
/// still counts: tend asks the sender's pidfd (SCM_PIDFD) for its cgroup,
/// which the kernel keeps for an exited process (Linux 6.16), where its pid
/// leads nowhere any more. Made certain rather than likely by stopping tend
/// (SIGSTOP, as a loaded machine may deschedule it) until both senders
/// exited and their shells reaped them: a perl helper that sends and exits,
/// and `systemd-notify --no-block --ready` in a service of `nobody`, which
/// may not send as its parent shell and so sends as itself.
#[test]
fn a_ready_from_a_sender_reaped_before_tend_read_it_counts() {
    let test = "a_ready_from_a_sender_reaped_before_tend_read_it_counts";
    if skip_unless_root(test) || skip_unless_installed(test, &["systemd-notify", "perl"]) {
        return;
    }
    if !have_cgroup2() && skip(test, "cgroup2 is not mounted") {
        return;
    }
    let env = Env::new();
    let go = env.p("go");
    let sender = env.p("sender.pl");
    fs::write(
        &sender,
        r#"use Socket;
my $p = $ENV{NOTIFY_SOCKET} or die "no NOTIFY_SOCKET\n";
$p =~ s/^\@/\0/;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
send($s, "READY=1\n", 0, pack_sockaddr_un($p)) or die "send: $!\n";
"#,
    )
    .unwrap();
    let common = "type: notify\nstart_timeout: 120s\nrestart: never\nstop_timeout: 2s\n";
    // Each writes NAME.sent once its sender exited and the shell reaped it.
    let script = |name: &str, send: &str| {
        sh(&format!(
            "{}\n{send} || exit 9\ntouch {}\nexec sleep 100000",
            until_exists(&go),
            env.p(&format!("{name}.sent")).display()
        ))
    };
    env.unit("helper", &format!("{common}{}", script("helper", &format!("perl {}", sender.display()))));
    env.unit(
        "shortlived",
        &format!("{common}user: nobody\n{}", script("shortlived", "systemd-notify --no-block --ready")),
    );
    let mut tend = env.up();
    for name in ["helper", "shortlived"] {
        wait_state(&env, &tend, name, "starting");
    }
    tend.signal(libc::SIGSTOP);
    let stopped = |tend: &Tend| proc_state(tend.pid) == Some('T');
    wait_until(T, "tend to be stopped", || stopped(&tend));
    fs::write(&go, "").unwrap();
    let sent = [env.p("helper.sent"), env.p("shortlived.sent")];
    let both_sent = || sent.iter().all(|p| p.exists());
    // Bounded but generous: the services run while tend is stopped.
    wait_until(Duration::from_secs(60), "both senders to send, exit and be reaped", both_sent);
    assert!(stopped(&tend), "tend must not have run meanwhile\n{}", tend.dump());
    tend.signal(libc::SIGCONT);
    for name in ["helper", "shortlived"] {
        wait_state(&env, &tend, name, "ready");
    }
    assert!(!tend.stderr().contains("not a process of any service"), "{}", tend.dump());
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

/// A READY=1 from a process that left the service's process tree (it
/// forked, its parent exited, and it made a session of its own: its
/// parent is now tend, the subreaper) is the service's by its cgroup: no
/// pid, process group or parent of it leads to the service.
#[test]
fn a_ready_from_a_sender_that_left_the_process_tree_counts_by_its_cgroup() {
    let test = "a_ready_from_a_sender_that_left_the_process_tree_counts_by_its_cgroup";
    if skip_unless_root(test) || skip_unless_installed(test, &["perl"]) {
        return;
    }
    if !have_cgroup2() && skip(test, "cgroup2 is not mounted") {
        return;
    }
    let env = Env::new();
    let detached = env.p("detached.pl");
    fs::write(
        &detached,
        r#"use Socket; use POSIX ();
my $parent = $$;
defined(my $child = fork) or die "fork: $!\n";
exit 0 if $child;
POSIX::setsid();
for (1..6000) { last if getppid() != $parent; select(undef, undef, undef, 0.01); }
die "the parent did not exit\n" if getppid() == $parent;
my $p = $ENV{NOTIFY_SOCKET} or die "no NOTIFY_SOCKET\n";
$p =~ s/^\@/\0/;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
send($s, "READY=1\n", 0, pack_sockaddr_un($p)) or die "send: $!\n";
sleep;
"#,
    )
    .unwrap();
    env.unit(
        "detached",
        &format!(
            "type: notify\nstart_timeout: 120s\nrestart: never\nstop_timeout: 2s\n{}",
            sh(&format!("perl {}\nexec sleep 100000", detached.display()))
        ),
    );
    let mut tend = env.up();
    wait_state(&env, &tend, "detached", "ready");
    assert!(!tend.stderr().contains("not a process of any service"), "{}", tend.dump());
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

// ---- s6 notify_fd ----

#[test]
fn s6_notify_fd_line_makes_the_service_ready() {
    let env = Env::new();
    let go = env.p("go");
    env.unit(
        "svc",
        &format!(
            "type: notify\nnotify_fd: 3\nstop_timeout: 1s\n{}",
            sh(&format!(
                "{}\n{}\necho >&3\nexec sleep 100000",
                put("echo \"${NOTIFY_SOCKET:-unset}\"", &env.p("env")),
                until_exists(&go)
            ))
        ),
    );
    let mut tend = env.up();
    wait_state(&env, &tend, "svc", "starting");
    assert_eq!(env.await_file(&tend, "env").trim(), "unset", "notify_fd services get no NOTIFY_SOCKET");
    assert_stays(Duration::from_millis(300), "svc stays starting before its line", || {
        state(&env, "svc") == "starting"
    });
    fs::write(&go, "").unwrap();
    wait_state(&env, &tend, "svc", "ready");
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

// ---- ready checks ----

#[test]
fn http_ready_check_waits_for_a_2xx_answer() {
    let env = Env::new();
    let port = free_port();
    let go = env.p("go");
    let script = env.p("http.pl");
    // Answers 503 until GO exists, then 200; records the request line.
    fs::write(
        &script,
        r#"use IO::Socket::INET;
my ($port, $go, $log) = @ARGV;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $port, Listen => 16, ReuseAddr => 1)
    or die "listen 127.0.0.1:$port: $!\n";
while (my $c = $s->accept) {
    my $first = <$c>;
    if (defined $first) { open(my $f, ">>", $log); print $f $first; close $f; }
    while (my $l = <$c>) { last if $l =~ /^\r?\n$/; }
    my $status = -e $go ? "200 OK" : "503 Service Unavailable";
    print $c "HTTP/1.1 $status\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
    close $c;
}
"#,
    )
    .unwrap();
    env.unit(
        "web",
        &format!(
            "command: [perl, '{}', '{port}', '{}', '{}']\nstop_timeout: 1s\nready_check:\n  http: \
             http://127.0.0.1:{port}/health\n  interval: 100ms\n  timeout: 1s\n",
            script.display(),
            go.display(),
            env.p("requests").display()
        ),
    );
    let mut tend = env.up();
    let mut last = Value::Null;
    tend.wait_until(T, "a failed ready check (503) while starting", || {
        last = svc(&env, "web");
        last["state"] == "starting"
            && last["last_check"]["ok"] == false
            && last["last_check"]["message"].as_str().unwrap_or("").contains("503")
    });
    assert_eq!(last["last_check"]["kind"], "ready", "{last}");
    assert!(last["last_check"]["message"].as_str().unwrap_or("").contains("503"), "{last}");
    assert_stays(Duration::from_millis(300), "web stays starting while answering 503", || {
        state(&env, "web") == "starting"
    });
    fs::write(&go, "").unwrap();
    let s = wait_state(&env, &tend, "web", "ready");
    assert_eq!(s["last_check"]["ok"], true, "{s}");
    let requests = read(env.p("requests"));
    assert!(requests.starts_with("GET /health HTTP/1."), "requests: {requests:?}");
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

#[test]
fn service_never_ready_fails_at_start_timeout() {
    let env = Env::new();
    env.unit(
        "slow",
        &format!(
            "type: notify\nstart_timeout: 500ms\nrestart: never\nstop_timeout: 1s\n{}",
            sh(&format!("{}\nexec sleep 100000", put("date +%s%N", &env.p("start"))))
        ),
    );
    let mut tend = env.up();
    let s = wait_state(&env, &tend, "slow", "starting");
    let pid = s["pid"].as_i64().unwrap() as i32;
    let started = ns(&env, &tend, "start");
    let s = wait_state(&env, &tend, "slow", "failed");
    let failed_seen = now_ns();
    let reason = s["reason"].as_str().unwrap_or("");
    assert_eq!(reason, "start timeout after 500ms", "{s}\n{}", tend.dump());
    assert_eq!(s["last_exit"]["kind"], "start_timeout", "{s}");
    assert!(
        failed_seen - started >= 450_000_000,
        "failed {} ms after it started, before its start_timeout of 500ms",
        (failed_seen - started) / 1_000_000
    );
    wait_gone(pid, T, "the service that never became ready");
    tend.wait_stderr("slow: did not become ready within 500ms");
    assert_stays(Duration::from_millis(300), "restart: never: it stays failed", || {
        state(&env, "slow") == "failed"
    });
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

// ---- liveness ----

#[test]
fn health_check_failing_three_times_restarts_the_service() {
    let env = Env::new();
    let healthy = env.p("healthy");
    fs::write(&healthy, "").unwrap();
    let pids = env.p("pids");
    env.unit(
        "web",
        &format!(
            "restart_delay: 50ms\nstop_timeout: 1s\nhealth_check:\n  exec: [test, -e, '{}']\n  interval: 100ms\n  \
             timeout: 1s\n  retries: 3\n{}",
            healthy.display(),
            sh(&format!("echo $$ >> {}\nexec sleep 100000", pids.display()))
        ),
    );
    let mut tend = env.up();
    let first = tend.started_pid("web");
    tend.wait_until(T, "a passing health check", || {
        let s = svc(&env, "web");
        s["last_check"]["kind"] == "health" && s["last_check"]["ok"] == true
    });
    assert_eq!(svc(&env, "web")["restarts"], 0);
    fs::remove_file(&healthy).unwrap();
    let mut last = Value::Null;
    tend.wait_until(T, "a failing health check in status", || {
        last = svc(&env, "web");
        last["last_check"]["ok"] == false
    });
    assert_eq!(last["last_check"]["kind"], "health", "{last}");
    assert!(last["last_check"]["message"].as_str().unwrap_or("").contains("status 1"), "{last}");
    tend.wait_until(T, "a second process after the restart", || read(&pids).lines().count() >= 2);
    fs::write(&healthy, "").unwrap();
    let second: i32 = read(&pids).lines().nth(1).unwrap().trim().parse().unwrap();
    assert_ne!(second, first, "{}", tend.dump());
    wait_gone(first, T, "the unhealthy process");
    let s = wait_state(&env, &tend, "web", "running");
    assert_eq!(s["pid"].as_i64(), Some(second as i64), "{s}");
    assert!(s["restarts"].as_u64().unwrap_or(0) >= 1, "the restart is counted: {s}");
    // Three failures in a row, each logged, and only then the restart.
    let events = tend.events();
    let pos = |needle: &str| {
        events
            .iter()
            .position(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("no event {needle:?} in:\n{}", events.join("\n")))
    };
    let (one, two, three) = (pos("1 of 3 in a row"), pos("2 of 3 in a row"), pos("3 of 3 in a row"));
    let restart = pos("web: health check failed 3 times in a row, stopping it");
    assert!(one < two && two < three && three < restart, "{}", events.join("\n"));
    assert!(events[one].starts_with("web: health check failed ("), "{}", events[one]);
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

#[test]
fn watchdog_timeout_restarts_the_service() {
    let env = Env::new();
    let events = env.p("events");
    let notify = notify_ready_cmd(&env);
    env.unit(
        "dog",
        &format!(
            "type: notify\nwatchdog: 500ms\nrestart: on-failure\nrestart_delay: 50ms\nstop_timeout: 1s\n{}",
            sh(&format!(
                "echo \"start $$ $(date +%s%N) $WATCHDOG_USEC\" >> {e}\necho \"ready $$ $(date +%s%N)\" >> \
                 {e}\n{notify}\nexec sleep 100000",
                e = events.display()
            ))
        ),
    );
    let mut tend = env.up();
    let s = wait_state(&env, &tend, "dog", "ready");
    let first = s["pid"].as_i64().unwrap() as i32;
    tend.wait_until(T, "a second start after the watchdog timeout", || {
        read(&events).lines().filter(|l| l.starts_with("start ")).count() >= 2
    });
    let text = read(&events);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    let starts: Vec<&Vec<&str>> = lines.iter().filter(|l| l[0] == "start").collect();
    let ready = lines.iter().find(|l| l[0] == "ready").unwrap();
    assert_eq!(starts[0][1], first.to_string(), "{text}");
    assert_eq!(starts[0].get(3), Some(&"500000"), "WATCHDOG_USEC for watchdog: 500ms: {text}");
    let second: i32 = starts[1][1].parse().unwrap();
    assert_ne!(second, first, "{text}");
    let gap: u128 = starts[1][2].parse::<u128>().unwrap() - ready[2].parse::<u128>().unwrap();
    assert!(
        gap >= 450_000_000,
        "restarted {} ms after READY=1, before the 500ms watchdog\n{text}",
        gap / 1_000_000
    );
    wait_gone(first, T, "the process whose watchdog expired");
    tend.wait_stderr("dog: watchdog timeout");
    let s = svc(&env, "dog");
    assert!(s["restarts"].as_u64().unwrap_or(0) >= 1, "{s}");
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}
