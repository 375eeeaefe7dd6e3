//! README section 7, `tend run` (tini mode): exit codes and `-e`, signal
//! forwarding (to the child, or its whole group with -g) and `--rewrite`,
//! reaping orphans as PID 1 in a new PID namespace, and the options' usage
//! errors. tini's own suite, ported, is in `tini.rs`.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

fn run(env: &Env, args: &[&str]) -> Tend {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    env.spawn(&all, |_| {})
}

fn run_code(script: &str) -> (i32, Tend, Env) {
    let env = Env::new();
    let mut t = run(&env, &["--", "sh", "-c", script]);
    let code = t.exit_code(T);
    (code, t, env)
}

#[test]
fn run_exits_0() {
    let (code, t, _env) = run_code("echo ran; exit 0");
    assert_eq!(code, 0, "{}", t.dump());
    assert_eq!(t.stdout(), "ran\n", "the command did not run\n{}", t.dump());
}

#[test]
fn run_exits_42() {
    let (code, t, _env) = run_code("exit 42");
    assert_eq!(code, 42, "{}", t.dump());
}

#[test]
fn run_exits_128_plus_signal() {
    let (code, t, _env) = run_code("kill -KILL $$");
    assert_eq!(code, 128 + 9, "{}", t.dump());
}

#[test]
fn run_without_double_dash() {
    let env = Env::new();
    let mut t = run(&env, &["sh", "-c", "exit 3"]);
    assert_eq!(t.exit_code(T), 3, "{}", t.dump());
}

#[test]
fn run_passes_stdio_through() {
    let env = Env::new();
    let mut t = run(&env, &["--", "sh", "-c", "echo out-line; echo err-line >&2"]);
    assert_eq!(t.exit_code(T), 0, "{}", t.dump());
    // Inherited stdio: no prefix added.
    assert_eq!(t.stdout(), "out-line\n", "{}", t.dump());
    assert!(t.stderr().contains("err-line"), "{}", t.dump());
    assert!(!t.stderr().contains("| err-line"), "run must not prefix lines\n{}", t.dump());
}

#[test]
fn run_cannot_execute_gives_127() {
    let env = Env::new();
    let mut t = run(&env, &["--", "/no/such/bin"]);
    let code = t.exit_code(T);
    assert_eq!(code, 127, "{}", t.dump());
    assert!(t.stderr().contains("No such file or directory"), "{}", t.dump());
}

/// `sh` run with SIGINT and SIGQUIT at their defaults. A shell cannot trap
/// a signal that was ignored when it started (POSIX, "trap"), and `tend run`
/// passes on the dispositions it inherited (as tini does): started from a
/// shell's background job without job control, as CI scripts often are, the
/// whole test run inherits INT and QUIT ignored, and the traps below would
/// silently not be set.
const SH_DEFAULT_SIGNALS: [&str; 3] = ["env", "--default-signal=INT,QUIT", "sh"];

/// The child traps `sig`, writes the signal's name to `got` and exits `code`.
fn forwards(sig: i32, name: &str, code: i32) {
    let env = Env::new();
    let got = env.p("got");
    let ready = env.p("ready");
    let script = format!(
        "trap '{}; exit {code}' {name}; touch {}; while :; do sleep 0.02; done",
        put(&format!("echo {name}"), &got),
        ready.display()
    );
    let mut args = vec!["--"];
    args.extend_from_slice(&SH_DEFAULT_SIGNALS);
    args.extend_from_slice(&["-c", &script]);
    let mut t = run(&env, &args);
    env.await_file(&t, "ready");
    t.signal(sig);
    let status = t.exit_code(T);
    assert_eq!(read(&got).trim(), name, "child did not get {name}\n{}", t.dump());
    assert_eq!(status, code, "{}", t.dump());
}

#[test]
fn run_forwards_sigterm() {
    forwards(libc::SIGTERM, "TERM", 0);
}

#[test]
fn run_forwards_sigusr1() {
    forwards(libc::SIGUSR1, "USR1", 3);
}

#[test]
fn run_forwards_sighup_and_sigint() {
    forwards(libc::SIGHUP, "HUP", 4);
    forwards(libc::SIGINT, "INT", 5);
}

/// Child and a grandchild both trap USR1. With -g both get it; without,
/// only the child (which then ends the grandchild with TERM).
fn group_forwarding(dash_g: bool) {
    let env = Env::new();
    let (c_got, gc_got, gc_ready, ready) =
        (env.p("c_got"), env.p("gc_got"), env.p("gc_ready"), env.p("ready"));
    // With -g both get USR1 at once: the child waits (bounded) for the
    // grandchild's record before ending it, so the TERM cannot overtake the
    // grandchild's own USR1 trap.
    let wait_for_gc = if dash_g {
        format!(
            "i=0; while [ ! -e {} ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; ",
            gc_got.display()
        )
    } else {
        String::new()
    };
    let script = format!(
        "(trap '{}; exit 0' USR1; touch {}; while :; do sleep 0.02; done) & gc=$!; \
         trap '{}; {wait_for_gc}kill -TERM $gc 2>/dev/null; wait; exit 5' USR1; \
         while [ ! -e {} ]; do sleep 0.01; done; touch {}; \
         while :; do sleep 0.02; done",
        put("echo gc", &gc_got),
        gc_ready.display(),
        put("echo c", &c_got),
        gc_ready.display(),
        ready.display()
    );
    let mut args = vec![];
    if dash_g {
        args.push("-g");
    }
    args.extend_from_slice(&["--", "sh", "-c", &script]);
    let mut t = run(&env, &args);
    env.await_file(&t, "ready");
    t.signal(libc::SIGUSR1);
    let code = t.exit_code(T);
    assert_eq!(code, 5, "{}", t.dump());
    assert_eq!(read(&c_got).trim(), "c", "child did not get USR1\n{}", t.dump());
    if dash_g {
        assert_eq!(read(&gc_got).trim(), "gc", "-g: grandchild did not get USR1\n{}", t.dump());
    } else {
        assert!(!gc_got.exists(), "without -g the grandchild got the signal too\n{}", t.dump());
    }
}

#[test]
fn run_dash_g_signals_the_whole_group() {
    group_forwarding(true);
}

#[test]
fn run_without_dash_g_signals_only_the_child() {
    group_forwarding(false);
}

fn unshare_run(env: &Env, script: &str) -> Tend {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", tend_bin(), "run", "--", "sh", "-c", script])
        .current_dir(env.root())
        .env_remove("NO_COLOR");
    Tend::spawn(cmd, env.root(), "unshare --pid --fork --mount-proc tend run")
}

#[test]
fn run_as_pid1_propagates_exit_code() {
    if skip_unless_root("run_as_pid1_propagates_exit_code") {
        return;
    }
    let env = Env::new();
    let mut t = unshare_run(&env, "[ $PPID = 1 ] || exit 99; exit 42");
    assert_eq!(t.exit_code(T), 42, "(99 means the child's parent was not PID 1)\n{}", t.dump());
}

/// 10,000 orphans re-parented to tend as PID 1 are all reaped. perl forks
/// them and exits at once; each sleeps 50 ms and exits, becoming a zombie
/// of PID 1. The shell polls /proc for zombies or perl processes (bounded,
/// 30 s) and exits 0 when none are left, 1 otherwise.
#[test]
fn run_as_pid1_reaps_10000_orphans() {
    if skip_unless_root("run_as_pid1_reaps_10000_orphans") {
        return;
    }
    let env = Env::new();
    let script = "perl -e 'for (1..10000) { my $p = fork; die \"fork: $!\" unless defined $p; if (!$p) { select(undef,undef,undef,0.05); exit 0 } }' || exit 2; \
        i=0; while [ $i -lt 600 ]; do \
          n=$(cat /proc/[0-9]*/stat 2>/dev/null | grep -c -e ') Z ' -e '(perl)'); \
          [ \"$n\" -eq 0 ] && echo none-left > reaped && exit 0; \
          sleep 0.05; i=$((i+1)); \
        done; echo \"left: $n\" >&2; exit 1";
    let mut t = unshare_run(&env, script);
    let code = t.exit_code(Duration::from_secs(60));
    assert_eq!(code, 0, "(1: zombies or perl processes left; 2: perl failed)\n{}", t.dump());
    assert_eq!(read(env.p("reaped")).trim(), "none-left", "the script did not run to its end\n{}", t.dump());
}

/// On a terminal, the child gets its own process group and that group is
/// the terminal's foreground (so Ctrl-C and job control reach it), in the
/// same session (a new session would lose the terminal). `script` gives
/// tend a pseudo-terminal.
#[test]
fn on_a_terminal_the_child_is_the_foreground_group() {
    if skip_unless_installed("on_a_terminal_the_child_is_the_foreground_group", &["script", "ps"]) {
        return;
    }
    let inner = format!(
        "{} run -- sh -c 'echo \"ids $(ps -o pgid=,tpgid=,sid= -p $$ | tr -s \" \") me $$ tend $(ps -o sid= -p $PPID | tr -d \" \")\"'",
        tend_bin()
    );
    let out = Command::new("script").args(["-qec", &inner, "/dev/null"]).output().expect("run script");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text.lines().find(|l| l.starts_with("ids")).unwrap_or_else(|| panic!("no output: {text:?}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    // ids PGID TPGID SID me PID tend TEND_SID
    assert_eq!(words.len(), 8, "{line}");
    let (pgid, tpgid, sid, me, tend_sid) = (words[1], words[2], words[3], words[5], words[7]);
    assert_eq!(pgid, me, "the child leads its own process group: {line}");
    assert_eq!(tpgid, pgid, "its group is the terminal's foreground: {line}");
    assert_eq!(sid, tend_sid, "same session as tend (keeps the terminal): {line}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// `-e 143` also covers a kill by SIGTERM (128+15), as tini's -e does.
#[test]
fn run_dash_e_maps_a_kill_by_signal_too() {
    let env = Env::new();
    let mut t = run(&env, &["-e", "143", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(t.exit_code(T), 0, "{}", t.dump());
    let mut t = run(&env, &["-e", "143", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(t.exit_code(T), 137, "{}", t.dump());
}

/// A command that cannot be started is tend's failure, not the command's
/// status: `-e 127` does not hide it.
#[test]
fn run_dash_e_does_not_hide_a_command_that_cannot_start() {
    let env = Env::new();
    let mut t = run(&env, &["-e", "127", "--", "/no/such/bin"]);
    assert_eq!(t.exit_code(T), 127, "{}", t.dump());
}

/// The child traps QUIT, TERM and USR1, each recorded in its own file.
/// `--rewrite TERM:QUIT` (dumb-init's `15:3`) turns tend's SIGTERM into a
/// SIGQUIT for the child; `USR1:0` drops USR1.
#[test]
fn run_rewrite_passes_one_signal_on_as_another_and_drops_with_0() {
    let env = Env::new();
    let script = format!(
        "trap '{}' USR1; trap '{}; exit 3' QUIT; trap '{}; exit 4' TERM; touch {}; while :; do sleep 0.02; done",
        put("echo USR1", &env.p("usr1")),
        put("echo QUIT", &env.p("quit")),
        put("echo TERM", &env.p("term")),
        env.p("ready").display()
    );
    let mut args = vec!["--rewrite", "15:3", "-r", "SIGUSR1:0", "-vv", "--"];
    args.extend_from_slice(&SH_DEFAULT_SIGNALS);
    args.extend_from_slice(&["-c", &script]);
    let mut t = run(&env, &args);
    env.await_file(&t, "ready");
    t.signal(libc::SIGUSR1);
    t.wait_stderr("dropping SIGUSR1");
    t.signal(libc::SIGTERM);
    assert_eq!(t.exit_code(T), 3, "the child did not stop on SIGQUIT\n{}", t.dump());
    assert_eq!(read(env.p("quit")).trim(), "QUIT", "{}", t.dump());
    assert!(!env.p("term").exists(), "SIGTERM reached the child despite the rewrite\n{}", t.dump());
    assert!(!env.p("usr1").exists(), "SIGUSR1 reached the child despite USR1:0\n{}", t.dump());
    assert!(t.stderr().contains("passing SIGQUIT on to pid"), "-vv reports each signal\n{}", t.dump());
}

/// Bad option values are usage errors (exit 2) that name the problem, and
/// nothing is started.
#[test]
fn run_option_errors_are_usage_errors() {
    let env = Env::new();
    for (args, needle) in [
        (&["-e", "256", "--", "true"][..], "256"),
        (&["-p", "SIGCHLD", "--", "true"], "SIGCHLD cannot be passed on"),
        (&["-p", "SIGTREM", "--", "true"], "did you mean 'SIGTERM'"),
        (&["--rewrite", "KILL:TERM", "--", "true"], "SIGKILL is not a signal tend passes on"),
        (&["--rewrite", "TERM", "--", "true"], "FROM:TO"),
    ] {
        let mut t = run(&env, args);
        assert_eq!(t.exit_code(T), 2, "{args:?}\n{}", t.dump());
        assert!(t.stderr().contains(needle), "{args:?}: expected {needle:?}\n{}", t.dump());
    }
}

/// tini's spellings are accepted: `-s` (tend run is always a subreaper) and
/// `-w` (the same as `-v`).
#[test]
fn run_accepts_tini_s_and_w() {
    let env = Env::new();
    let mut t = run(&env, &["-s", "-w", "--", "sh", "-c", "(sleep 0.05 &); sleep 0.3; exit 5"]);
    assert_eq!(t.exit_code(T), 5, "{}", t.dump());
    assert!(t.stderr().contains("reaped zombie process with pid="), "{}", t.dump());
}
