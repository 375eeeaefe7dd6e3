//! Issue 4, dependencies through the real binary: a mixed stack starts in
//! dependency order (each dependent sees its dependencies ready) and stops in
//! the reverse order; cycles and unknown names are rejected; a failed oneshot
//! blocks its dependents until it is fixed; `tend stop`/`tend start` follow
//! the dependency graph.

mod common;
use common::*;

use std::fs;
use std::time::Duration;

// ---- helpers of this file (shared ones are in tests/common) ----

/// `perl listen.pl PORT [MARK]`: binds 127.0.0.1:PORT, writes a `date
/// +%s%N` timestamp to MARK, then listens, accepting and closing
/// connections. The stamp comes before `listen`: a connection (a tcp ready
/// check) succeeds from `listen` on, so whatever it starts comes after
/// the stamp (stamped after `listen`, the check could win the race).
fn tcp_listener(env: &Env) -> String {
    let path = env.p("listen.pl");
    fs::write(
        &path,
        r#"use IO::Socket::INET;
my ($port, $mark) = @ARGV;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $port, ReuseAddr => 1)
    or die "bind 127.0.0.1:$port: $!\n";
if ($mark) {
    my $t = `date +%s%N`;
    open(my $f, ">", "$mark.tmp") or die "$mark: $!\n";
    print $f $t;
    close $f;
    rename("$mark.tmp", $mark) or die "$mark: $!\n";
}
$s->listen(16) or die "listen 127.0.0.1:$port: $!\n";
while (my $c = $s->accept) { close $c; }
"#,
    )
    .unwrap();
    format!("perl {}", path.display())
}

/// The line of `stderr` with a `FILE:LINE:COL:` diagnostic for `file` at
/// `line` (any column, which must be a number).
fn diag<'a>(stderr: &'a str, file: &str, line: u32) -> Option<&'a str> {
    let needle = format!("{file}:{line}:");
    stderr.lines().find(|l| {
        l.match_indices(&needle).any(|(i, _)| {
            let rest = &l[i + needle.len()..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            digits > 0 && rest[digits..].starts_with(':')
        })
    })
}

/// `NAME TIMESTAMP` lines appended by services to a shared file.
fn stamps(text: &str) -> Vec<(String, u128)> {
    text.lines()
        .filter_map(|l| {
            let (name, t) = l.split_once(' ')?;
            Some((name.to_string(), t.trim().parse().ok()?))
        })
        .collect()
}

fn stamp(list: &[(String, u128)], name: &str) -> u128 {
    list.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no '{name}' in {list:?}")).1
}

// ---- start and stop order of a mixed stack ----

#[test]
fn stack_starts_in_dependency_order_and_stops_in_reverse() {
    let env = Env::new();
    let d = env.root().display().to_string();
    let port = free_port();
    let listen = tcp_listener(&env);
    let notify = notify_ready_cmd(&env);
    let stamp_to = |file: &str| put("date +%s%N", &env.p(file));
    // Parallel start and stop are shown by a meeting, not by timing (a
    // loaded machine spreads processes started together by any amount):
    // each waits (bounded, 400 turns of 50 ms) for the others to arrive;
    // one started or stopped only after another finished never meets it.
    let wait_for =
        |cond: &str| format!("i=0; until {cond} || [ $i -ge 400 ]; do i=$((i+1)); sleep 0.05; done");
    // At start: say it is up, wait for the two others, record whether they came.
    let meet = |name: &str, others: [&str; 2]| {
        let all = others.map(|o| format!("[ -e {d}/{o}.up ]")).join(" && ");
        format!(
            "touch {d}/{name}.up\n{}\n{}",
            wait_for(&all),
            put(&format!("{all} && echo yes || echo no"), &env.p(&format!("{name}.met")))
        )
    };
    // On SIGTERM: record when the stop began; then wait for `peer`'s stop
    // to begin (or take 200 ms, without a peer); record the end.
    let trap = |name: &str, peer: Option<&str>| {
        let pause = match peer {
            Some(peer) => wait_for(&format!("grep -q \"^{peer}-begin\" {d}/stops")),
            None => "sleep 0.2".to_string(),
        };
        format!(
            "trap 'echo \"{name}-begin $(date +%s%N)\" >> {d}/stops; {pause}; \
             echo \"{name}-end $(date +%s%N)\" >> {d}/stops; exit 0' TERM"
        )
    };

    // A oneshot that takes 400 ms and leaves a file behind.
    env.unit(
        "init",
        &format!(
            "type: oneshot\n{}",
            sh(&format!(
                "{}\n{}\nsleep 0.4\ntouch {d}/init.done\n{}",
                stamp_to("init.start"),
                meet("init", ["notif", "tcpd"]),
                stamp_to("init.end")
            ))
        ),
    );
    // A notify service that says READY=1 after 400 ms.
    env.unit(
        "notif",
        &format!(
            "type: notify\nstop_timeout: 60s\n{}",
            sh(&format!(
                "{}\n{}\n{}\nsleep 0.4\n{}\n{notify}\nwhile :; do sleep 0.05; done",
                stamp_to("notif.start"),
                trap("notif", Some("tcpd")),
                meet("notif", ["init", "tcpd"]),
                stamp_to("notif.ready")
            ))
        ),
    );
    // A service that listens after 400 ms, with a tcp ready_check.
    env.unit(
        "tcpd",
        &format!(
            "ready_check:\n  tcp: 127.0.0.1:{port}\n  interval: 50ms\n  timeout: 1s\nstop_timeout: 60s\n{}",
            sh(&format!(
                "{}\n{}\n{}\nsleep 0.4\n{listen} {port} {d}/tcpd.listening &\nwhile :; do sleep 0.05; done",
                stamp_to("tcpd.start"),
                trap("tcpd", Some("notif")),
                meet("tcpd", ["init", "notif"])
            ))
        ),
    );
    // The dependent: records what it found when it started.
    let probe = format!(
        "perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(PeerAddr => \"127.0.0.1:{port}\", Timeout => 2) ? 0 : 1)'"
    );
    env.unit(
        "app",
        &format!(
            "depends_on:\n  init: completed\n  notif: ready\n  tcpd: ready\nstop_timeout: 5s\n{}",
            sh(&format!(
                "{}\n{}\n{}\n{}\n{}\nwhile :; do sleep 0.05; done",
                stamp_to("app.start"),
                trap("app", None),
                put(&format!("test -e {d}/init.done && echo yes || echo no"), &env.p("app.saw-init")),
                put(&format!("test -e {d}/notif.ready && echo yes || echo no"), &env.p("app.saw-notif")),
                put(&format!("{probe} && echo yes || echo no"), &env.p("app.saw-port")),
            ))
        ),
    );

    let mut tend = env.up();
    env.await_file(&tend, "app.saw-port");
    let t = |f: &str| ns(&env, &tend, f);
    let (init_start, notif_start, tcpd_start) = (t("init.start"), t("notif.start"), t("tcpd.start"));
    let (init_end, notif_ready, tcpd_listening, app_start) =
        (t("init.end"), t("notif.ready"), t("tcpd.listening"), t("app.start"));
    let rel = |x: u128| (x as f64 - init_start as f64) / 1e6;
    let timeline = format!(
        "ms after init's start: notif started {:.1}, tcpd started {:.1}; init done {:.1}, \
         notif READY=1 {:.1}, tcpd listening {:.1}; app started {:.1}",
        rel(notif_start),
        rel(tcpd_start),
        rel(init_end),
        rel(notif_ready),
        rel(tcpd_listening),
        rel(app_start),
    );
    // The three independent ones start together: each found the two
    // others started before it went on (one started only after another
    // completed or became ready would never have met it).
    for name in ["init", "notif", "tcpd"] {
        assert_eq!(
            env.await_file(&tend, &format!("{name}.met")).trim(),
            "yes",
            "{name} did not find the two other independent services started: not started in parallel\n{timeline}\n{}",
            tend.dump()
        );
    }
    // The dependent starts after all three met their conditions.
    assert!(app_start > init_end, "app started before init completed\n{timeline}\n{}", tend.dump());
    assert!(app_start > notif_ready, "app started before notif said READY=1\n{timeline}\n{}", tend.dump());
    assert!(app_start > tcpd_listening, "app started before tcpd listened\n{timeline}\n{}", tend.dump());
    assert_eq!(
        env.await_file(&tend, "app.saw-init").trim(),
        "yes",
        "app did not find init's file\n{timeline}"
    );
    assert_eq!(env.await_file(&tend, "app.saw-notif").trim(), "yes", "{timeline}");
    assert_eq!(
        env.await_file(&tend, "app.saw-port").trim(),
        "yes",
        "app could not connect to tcpd\n{timeline}"
    );
    // And status says where each one is.
    let list = status_list(&env);
    let st = |n: &str| {
        list.iter()
            .find(|s| s["name"] == n)
            .map(|s| s["state"].as_str().unwrap_or("?").to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        [st("init"), st("notif"), st("tcpd"), st("app")],
        ["completed", "ready", "ready", "running"],
        "{list:?}\n{}",
        tend.dump()
    );
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 0, "a completed oneshot is a good state\n{}", out.show());

    // Stop: the dependent first, then the two others, in parallel.
    tend.signal(libc::SIGTERM);
    let code = tend.exit_code(Duration::from_secs(60));
    assert_eq!(code, 0, "{}", tend.dump());
    let stops = stamps(&read(env.p("stops")));
    let show = format!("{stops:?}\n{}", tend.dump());
    for name in ["app-begin", "app-end", "notif-begin", "notif-end", "tcpd-begin", "tcpd-end"] {
        assert!(stops.iter().any(|(n, _)| n == name), "no {name} in stops: {show}");
    }
    let app_end = stamp(&stops, "app-end");
    assert!(stamp(&stops, "notif-begin") > app_end, "notif was stopped before app was down: {show}");
    assert!(stamp(&stops, "tcpd-begin") > app_end, "tcpd was stopped before app was down: {show}");
    // Each waited for the other's stop to begin: stopped one after the
    // other, the second's stop begins after the first's ended.
    assert!(
        stamp(&stops, "tcpd-begin") < stamp(&stops, "notif-end")
            && stamp(&stops, "notif-begin") < stamp(&stops, "tcpd-end"),
        "notif and tcpd (independent) were not stopped in parallel: {show}"
    );
}

// ---- rejected graphs ----

/// `tend up` on invalid units: exits 2 without starting anything.
fn up_refuses(env: &Env, marker: &str) -> String {
    let mut tend = env.up();
    let code = tend.exit_code(T);
    let stderr = tend.stderr();
    assert_eq!(code, 2, "tend up must refuse these units\n{}", tend.dump());
    assert!(!env.p(marker).exists(), "tend up started a service before refusing\n{}", tend.dump());
    stderr
}

/// A unit that leaves a file behind if it is ever started.
fn marker_unit(env: &Env, name: &str, deps: &str) -> String {
    let marker = format!("{name}.ran");
    env.unit(
        name,
        &format!("{deps}{}", sh(&format!("touch {}\nexec sleep 100000", env.p(&marker).display()))),
    );
    marker
}

#[test]
fn cycles_are_rejected_by_check_and_up() {
    let env = Env::new();
    // Line 2 in each file; the cycle is reported at a's dependency on b.
    env.unit("a", "command: [sleep, '100']\ndepends_on: [b]\n");
    env.unit("b", "command: [sleep, '100']\ndepends_on: [c]\n");
    env.unit("c", "command: [sleep, '100']\ndepends_on: [a]\n");
    let marker = marker_unit(&env, "free", "");
    for (what, stderr) in [("tend check", env.check()), ("tend up", (2, up_refuses(&env, &marker)))] {
        let (code, stderr) = stderr;
        assert_eq!(code, 2, "{what}: {stderr}");
        let line = diag(&stderr, "a.yaml", 2)
            .unwrap_or_else(|| panic!("{what}: no a.yaml:2:COL: diagnostic in:\n{stderr}"));
        assert!(line.contains("a -> b -> c -> a"), "{what}: the whole cycle must be named: {line}");
        assert_eq!(
            stderr.matches("a -> b -> c -> a").count()
                + stderr.matches("b -> c -> a -> b").count()
                + stderr.matches("c -> a -> b -> c").count(),
            1,
            "{what}: one cycle, reported once:\n{stderr}"
        );
    }
}

#[test]
fn missing_dependencies_are_rejected_by_check_and_up() {
    let env = Env::new();
    env.unit("db", "command: [sleep, '100']\n");
    // `dbb` on line 3, column 5.
    env.unit("web", "command: [sleep, '100']\ndepends_on:\n  dbb: ready\n");
    let marker = marker_unit(&env, "free", "");
    let (code, stderr) = env.check();
    assert_eq!(code, 2, "{stderr}");
    for (what, stderr) in [("tend check", stderr), ("tend up", up_refuses(&env, &marker))] {
        let line = diag(&stderr, "web.yaml", 3)
            .unwrap_or_else(|| panic!("{what}: no web.yaml:3:COL: diagnostic in:\n{stderr}"));
        assert!(line.contains("web.yaml:3:3:"), "{what}: column of the name: {line}");
        assert!(line.contains("dbb"), "{what}: {line}");
        assert!(line.contains("did you mean 'db'"), "{what}: {line}");
    }
}

#[test]
fn completed_on_a_non_oneshot_and_watchdog_without_notify_are_rejected() {
    let env = Env::new();
    env.unit("db", "command: [sleep, '100']\n");
    env.unit("web", "command: [sleep, '100']\ndepends_on:\n  db: completed\n");
    env.unit("dog", "command: [sleep, '100']\nwatchdog: 1s\n");
    let (code, stderr) = env.check();
    assert_eq!(code, 2, "{stderr}");
    let line = diag(&stderr, "web.yaml", 3).unwrap_or_else(|| panic!("no web.yaml:3: diagnostic:\n{stderr}"));
    assert!(line.contains("oneshot"), "{line}");
    let line = diag(&stderr, "dog.yaml", 2).unwrap_or_else(|| panic!("no dog.yaml:2: diagnostic:\n{stderr}"));
    assert!(line.contains("watchdog") && line.contains("notify"), "{line}");
}

// ---- a failed dependency blocks, its recovery unblocks ----

#[test]
fn failing_oneshot_blocks_dependents_until_fixed_and_started_again() {
    let env = Env::new();
    let fixed = env.p("fixed");
    let tries = env.p("migrate.tries");
    env.unit(
        "migrate",
        &format!(
            "type: oneshot\n{}",
            sh(&format!("echo x >> {}\ntest -e {}", tries.display(), fixed.display()))
        ),
    );
    let app_ran = env.p("app.ran");
    env.unit(
        "app",
        &format!(
            "depends_on:\n  migrate: completed\nstop_timeout: 1s\n{}",
            sh(&format!("touch {}\nexec sleep 100000", app_ran.display()))
        ),
    );
    let mut tend = env.up();
    let app = wait_state(&env, &tend, "app", "blocked");
    let reason = app["reason"].as_str().unwrap_or("");
    assert!(reason.contains("migrate"), "the reason must name the dependency: {app}");
    assert!(app["pid"].is_null(), "{app}");
    let migrate = svc(&env, "migrate");
    assert_ne!(migrate["state"], "completed", "{migrate}");
    assert_eq!(read(&tries).lines().count(), 1, "a oneshot restarts never by default: {migrate}");
    // Blocked, not merely slow: it stays so.
    assert_stays(Duration::from_millis(300), "app stays blocked and never runs", || {
        !app_ran.exists() && state(&env, "app") == "blocked"
    });
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 1, "a blocked service is not healthy\n{}", out.show());
    assert!(out.stdout.lines().any(|l| l.starts_with("app ") && l.contains("blocked")), "{}", out.show());

    // Fix it, start it again: the dependent follows.
    fs::write(&fixed, "").unwrap();
    let out = ctl(&env, &["start", "migrate"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    tend.wait_until(T, "app to run once migrate completed", || app_ran.exists());
    wait_state(&env, &tend, "app", "running");
    assert_eq!(state(&env, "migrate"), "completed");
    assert_eq!(read(&tries).lines().count(), 2);
    let out = ctl(&env, &["status"]);
    assert_eq!(out.code, 0, "{}", out.show());
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

// ---- stop takes dependents down first; start brings dependencies up ----

#[test]
fn stop_takes_dependents_down_first_and_start_brings_dependencies_up() {
    let env = Env::new();
    let d = env.root().display().to_string();
    let svc_unit = |name: &str, deps: &str| {
        env.unit(
            name,
            &format!(
                "{deps}stop_timeout: 5s\n{}",
                sh(&format!(
                    "trap 'echo \"{name}-begin $(date +%s%N)\" >> {d}/events; sleep 0.2; \
                     echo \"{name}-end $(date +%s%N)\" >> {d}/events; exit 0' TERM\n\
                     echo \"{name}-start $(date +%s%N)\" >> {d}/events\n\
                     while :; do sleep 0.05; done"
                ))
            ),
        )
    };
    svc_unit("db", "");
    svc_unit("app", "depends_on: [db]\n");
    svc_unit("web", "depends_on:\n  app: ready\n");
    svc_unit("other", "");
    let mut tend = env.up();
    for n in ["db", "app", "web", "other"] {
        wait_state(&env, &tend, n, "running");
    }
    let other_pid = svc(&env, "other")["pid"].as_i64();
    let events_path = env.p("events");
    // Each has set its TERM trap once it wrote its start line.
    tend.wait_until(T, "all four to record their start", || {
        let ev = read(&events_path);
        ["db", "app", "web", "other"].iter().all(|n| ev.contains(&format!("{n}-start ")))
    });

    let out = ctl(&env, &["stop", "db"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    for n in ["db", "app", "web"] {
        assert!(out.stdout.contains(&format!("{n}: stopped")), "the reply must list {n}\n{}", out.show());
        assert_eq!(state(&env, n), "stopped", "{}", out.show());
    }
    assert!(!out.stdout.contains("other"), "{}", out.show());
    let ev = stamps(&read(&events_path));
    let show = format!("{ev:?}\n{}", tend.dump());
    assert!(stamp(&ev, "app-begin") > stamp(&ev, "web-end"), "app stopped before web was down: {show}");
    assert!(stamp(&ev, "db-begin") > stamp(&ev, "app-end"), "db stopped before app was down: {show}");
    assert_eq!(state(&env, "other"), "running");
    assert_eq!(svc(&env, "other")["pid"].as_i64(), other_pid, "an unrelated service was touched");

    // Starting app starts db first, since it is down.
    let out = ctl(&env, &["start", "app"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    assert!(out.stdout.contains("app: started"), "{}", out.show());
    assert_eq!(state(&env, "db"), "running", "{}\n{}", out.show(), tend.dump());
    assert_eq!(state(&env, "app"), "running");
    // db came back first: tend's own log shows db started again, then app
    // (`depends_on: [db]` is the `started` condition, so the order of exec
    // is what counts, not which shell writes first).
    let events = tend.events();
    let nth_start = |name: &str, n: usize| {
        events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.starts_with(&format!("{name}: started (pid ")))
            .nth(n)
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("no start #{} of {name} in:\n{}", n + 1, events.join("\n")))
    };
    assert!(nth_start("db", 1) < nth_start("app", 1), "app started before db:\n{}", events.join("\n"));
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}

/// A dependency that is itself blocked blocks its dependents too, and
/// `tend start` on a service two levels above a failed oneshot answers
/// (blocked) instead of waiting forever.
#[test]
fn blocked_propagates_and_start_answers() {
    let env = Env::new();
    env.unit("c", "type: oneshot\nrestart: never\ncommand: [\"false\"]\n");
    env.unit("b", "depends_on: {c: completed}\ncommand: [sleep, \"300\"]\nstop_timeout: 300ms\n");
    env.unit("a", "depends_on: {b: started}\ncommand: [sleep, \"300\"]\nstop_timeout: 300ms\n");
    let mut tend = env.up();
    wait_state(&env, &tend, "b", "blocked");
    let a = wait_state(&env, &tend, "a", "blocked");
    assert!(a["reason"].as_str().unwrap_or("").contains("b: blocked"), "{a}");
    let out = ctl(&env, &["start", "a"]);
    assert_eq!(out.code, 1, "a blocked start is a failure, answered at once: {}", out.show());
    assert!(out.stderr.contains("blocked"), "{}", out.show());
    shutdown(&env, &mut tend);
}

/// A reload that changes a service still waiting for its dependencies does
/// not start it ahead of them.
#[test]
fn reload_of_a_waiting_service_keeps_waiting_for_its_dependencies() {
    let env = Env::new();
    // Never ready: b must keep waiting.
    env.unit("c", "type: notify\ncommand: [sleep, \"300\"]\nstop_timeout: 300ms\n");
    env.unit("b", "depends_on: {c: ready}\ncommand: [sleep, \"300\"]\nstop_timeout: 300ms\n");
    let mut tend = env.up();
    wait_state(&env, &tend, "b", "waiting");
    env.unit(
        "b",
        "depends_on: {c: ready}\ncommand: [sleep, \"300\"]\nstop_timeout: 300ms\nenvironment: {X: \"1\"}\n",
    );
    let out = ctl(&env, &["reload"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("restarted: b"), "{}", out.show());
    assert_stays(std::time::Duration::from_millis(500), "b stays waiting without a process", || {
        let (state, pid) = state_of(&env, "b");
        state == "waiting" && pid.is_none()
    });
    assert!(!tend.stderr().contains("b: started"), "{}", tend.dump());
    shutdown(&env, &mut tend);
}
