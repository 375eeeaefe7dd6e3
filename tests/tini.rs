//! tini's own inner tests (krallin/tini `test/run_inner_tests.py` and the
//! scripts it calls), ported to run `tend run` where they run `tini`, so
//! that `tend run` is held to the suite of the tool it replaces in
//! `ENTRYPOINT` lines. Written anew from what each check asserts; tini's
//! flags map as: `-e` → `-e`, `-g` → `-g`, `-p` → `-p`, `-w` → `-v` (tend
//! also accepts `-w`).
//!
//! | tini's check | here |
//! |---|---|
//! | exit codes: `-e N` over all 256 codes, inclusive and exclusive | [`exit_codes_inclusive`], [`exit_codes_exclusive`] |
//! | reaping (`reaping/stage_1.py`, `stage_2.py`), with and without `-w` | [`reaping_as_subreaper`], [`reaping_as_subreaper_reports_with_dash_v`], [`reaping_as_pid1`], [`reaping_as_pid1_reports_with_dash_v`] |
//! | signals (`signals/test.py`): TERM, USR1, USR2 give 128+N | [`signals_give_128_plus_n`] |
//! | process group (`pgroup/stage_1.py`) with `-g` | [`process_group_dash_g`] |
//! | signal configuration (`sigconf/sigconf-test.c`) | [`sigconf_child_keeps_what_tend_inherited`]; beyond tini's: [`sigconf_clean_start_gives_a_clean_child`], [`sigconf_inherited_sigchld_ignored_still_gives_the_status`], [`sigconf_tend_up_services_start_clean`] |
//! | parent-death signal (`pdeathsignal/stage_1.py`, `stage_2.py`) | [`parent_death_signal`] |
//!
//! Where a tini check cannot apply:
//! - **The three reaping targets** (`subreaper-proxy.py tini`, `tini -s`,
//!   `TINI_SUBREAPER=`): they differ only in how tini becomes a child
//!   subreaper. `tend run` always is one (or PID 1), so one target covers
//!   them; the PID 1 target (a new PID namespace) is run instead, as root.
//! - **"Zombie reaping failure test (Tini should warn)"**: tini run neither
//!   as PID 1 nor as a subreaper must warn and fail. `tend run` has no such
//!   mode: it registers as a subreaper whenever it is not PID 1.
//! - **`TINI_KILL_PROCESS_GROUP`, `TINI_VERBOSITY`**: tini's environment
//!   variables; tend takes options only (`-g`, `-v`), so the environment
//!   variant of the process-group test has no counterpart.
//! - **`MINIMAL` builds** (tini without options): tend has one build.
//!
//! tini's scripts are Python with psutil and python-prctl; these use `sh`
//! and `perl` (in every Debian base), and the C helper is built here with
//! the C compiler cargo already needs for linking (`.ci/run` installs gcc
//! when it is missing). No compiler is a failure, not a skip.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn tend_run(env: &Env, args: &[&str]) -> Tend {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    env.spawn(&all, |_| {})
}

// ------------------------------------------------------------ exit codes

/// tini: `tini -e N -- sh -c "exit N"` exits 0 for every N.
#[test]
fn exit_codes_inclusive() {
    for code in 0..256 {
        let mut cmd = Command::new(tend_bin());
        let code_arg = code.to_string();
        let script = format!("exit {code}");
        cmd.args(["run", "-e", &code_arg, "--", "sh", "-c", &script]);
        let out = run_cmd(cmd, &format!("tend run -e {code} -- sh -c 'exit {code}'"));
        assert_eq!(out.code, 0, "inclusive exit code test failed for {code}\n{}", out.show());
    }
}

/// tini: every other code given with `-e`, and no `--` (tini needs
/// POSIXLY_CORRECT for that; tend's options simply end at the command):
/// the code passes through unchanged.
#[test]
fn exit_codes_exclusive() {
    for code in 0..256 {
        let mut cmd = Command::new(tend_bin());
        cmd.arg("run");
        for other in (0..256).filter(|&c| c != code) {
            cmd.args(["-e", &other.to_string()]);
        }
        let script = format!("exit {code}");
        cmd.args(["sh", "-c", &script]);
        let out = run_cmd(cmd, &format!("tend run -e (all but {code}) sh -c 'exit {code}'"));
        assert_eq!(out.code, code, "exclusive exit code test failed for {code}\n{}", out.show());
    }
}

// ------------------------------------------------------------ reaping

/// tini's `reaping/stage_1.py` and `stage_2.py`, in perl. Stage 1 is the
/// init's child: it runs stage 2 (a shell that starts 100 `sleep`s of 1 to
/// 3 s in the background and exits at once, orphaning them), then polls
/// until the init's only descendant left is itself, checking on the way
/// that every descendant is in its process group (the init gave its child a
/// group of its own, and the orphans stay in it). Finally no process of
/// that group but itself may exist anywhere, zombies included: exit 0 when
/// so, 1 when one is left.
const REAPING_STAGE_1: &str = r#"
use strict;
use warnings;
my $me = $$;
my $init = getppid();
my $pgrp = getpgrp(0);
my $stage_2 = 'i=0; while [ $i -lt 100 ]; do sleep "$((1 + i % 2)).$((i * 37 % 10))" & i=$((i + 1)); done';
system('sh', '-c', $stage_2) == 0 or die "stage 2 failed: $?\n";

# [state, ppid, pgrp, ...] from /proc/PID/stat, after the "(comm) " field.
sub stat_of {
    my ($pid) = @_;
    open(my $f, '<', "/proc/$pid/stat") or return;
    my $line = <$f>;
    close $f;
    return unless defined $line;
    $line =~ s/^.*\) //s;
    return [split ' ', $line];
}
sub all_pids {
    opendir(my $d, '/proc') or die "cannot read /proc: $!\n";
    my @pids = grep { /^\d+$/ } readdir $d;
    closedir $d;
    return @pids;
}
sub in_group_or_reaped {
    my $pid = shift;
    my $stat = stat_of($pid);
    return 1 if !$stat || $stat->[2] == $pgrp;
    # Opened just before the reaper released it and read just after, a
    # process shows process group 0 (its pids are detached): it is gone
    # when looked up again, since its pid was detached first.
    return $stat->[2] == 0 && !stat_of($pid);
}

print "reaping test: stage 1 is pid $me, init is pid $init\n";
my $rounds = 0;
while (1) {
    my %children;
    for my $pid (all_pids()) {
        my $stat = stat_of($pid) or next;
        push @{ $children{ $stat->[1] } }, $pid;
    }
    my @descendants;
    my @todo = ($init);
    while (@todo) {
        my $parent = pop @todo;
        for my $child (@{ $children{$parent} || [] }) {
            push @descendants, $child;
            push @todo, $child;
        }
    }
    for my $pid (@descendants) {
        in_group_or_reaped($pid) or die "pid $pid has an unexpected process group\n";
    }
    last if @descendants == 1 && $descendants[0] == $me;
    die "not reaped after 60 s: @descendants\n" if ++$rounds > 600;
    select(undef, undef, undef, 0.1);
}
for my $pid (all_pids()) {
    next if $pid == $me;
    my $stat = stat_of($pid) or next;
    if ($stat->[2] == $pgrp) {
        print "not reaped: pid $pid\n";
        exit 1;
    }
}
print "all reaped\n";
exit 0;
"#;

const REAP_NOTICE: &str = "reaped zombie process with pid=";

/// Run stage 1 under `tend run [-v]`, as a subreaper or (root) as PID 1 of
/// a new PID namespace; it must exit 0, and the notices (one per orphan,
/// only with -v) must match.
fn reaping(as_pid1: bool, verbose: bool) {
    let env = Env::new();
    let stage_1 = env.p("stage_1.pl");
    std::fs::write(&stage_1, REAPING_STAGE_1).unwrap();
    let stage_1 = stage_1.to_str().unwrap();
    let mut run_args = vec!["run"];
    if verbose {
        run_args.push("-v");
    }
    run_args.extend_from_slice(&["--", "perl", stage_1]);
    let mut t = if as_pid1 {
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc", tend_bin()]).args(&run_args).current_dir(env.root());
        Tend::spawn(cmd, env.root(), "unshare --pid --fork --mount-proc tend run")
    } else {
        env.spawn(&run_args, |_| {})
    };
    let code = t.exit_code(Duration::from_secs(90));
    assert_eq!(code, 0, "reaping test failed\n{}", t.dump());
    assert!(t.stdout().contains("all reaped"), "stage 1 did not run to its end\n{}", t.dump());
    let notices = t.stderr().matches(REAP_NOTICE).count();
    if verbose {
        // Each of stage 2's 100 orphans was reaped by tend, and said so.
        assert_eq!(notices, 100, "expected one notice per orphan\n{}", t.dump());
    } else {
        assert_eq!(notices, 0, "reaping notices without -v\n{}", t.dump());
    }
}

#[test]
fn reaping_as_subreaper() {
    reaping(false, false);
}

#[test]
fn reaping_as_subreaper_reports_with_dash_v() {
    reaping(false, true);
}

#[test]
fn reaping_as_pid1() {
    if skip_unless_root("reaping_as_pid1") {
        return;
    }
    reaping(true, false);
}

#[test]
fn reaping_as_pid1_reports_with_dash_v() {
    if skip_unless_root("reaping_as_pid1_reports_with_dash_v") {
        return;
    }
    reaping(true, true);
}

// ------------------------------------------------------------ signals

/// tini's `signals/test.py`: the child puts TERM, USR1 and USR2 back to
/// their default and runs `sleep 100` (python's os.system); once the init
/// has more than one descendant, the signal sent to the init must kill the
/// child, and the init exit 128+N.
#[test]
fn signals_give_128_plus_n() {
    for (signal, name) in [(libc::SIGTERM, "TERM"), (libc::SIGUSR1, "USR1"), (libc::SIGUSR2, "USR2")] {
        let env = Env::new();
        let mut t = tend_run(&env, &["--", "sh", "-c", "trap - TERM USR1 USR2; sleep 100; exit 0"]);
        t.wait_until(T, "tend to have more than one descendant", || descendants(t.pid).len() > 1);
        let started = descendants(t.pid);
        t.signal(signal);
        let code = t.exit_code(T);
        // The orphaned `sleep 100` (tini's test leaves it behind too); we
        // started it, so we end it.
        for pid in started {
            if !is_gone(pid) {
                kill(pid, libc::SIGKILL);
            }
        }
        assert_eq!(code, 128 + signal, "signal test for SIG{name}\n{}", t.dump());
    }
}

// ------------------------------------------------------------ process group

/// tini's `pgroup/stage_1.py`, in perl: the child ignores SIGUSR1 and waits
/// for a `sleep 1000` that does not. With `-g` the USR1 sent to the init
/// reaches the whole group: the sleep dies, the child's wait returns, the
/// child exits, and so does the init.
#[test]
fn process_group_dash_g() {
    let env = Env::new();
    let stage_1 = r#"$SIG{USR1} = 'IGNORE';
        my $pid = fork() // die "fork: $!";
        if ($pid == 0) { $SIG{USR1} = 'DEFAULT'; exec('sleep', '1000') or die "exec: $!"; }
        waitpid($pid, 0);
        exit 0;"#;
    let mut t = tend_run(&env, &["-g", "--", "perl", "-e", stage_1]);
    // The forked child inherits the ignored USR1 until it sets it back to
    // the default just before exec: wait for `sleep` itself, not for the
    // fork (a USR1 in between would be ignored, and nothing would exit).
    t.wait_until(T, "the child to have exec'd sleep 1000", || {
        descendants(t.pid).iter().any(|p| read(format!("/proc/{p}/cmdline")).starts_with("sleep\u{0}1000"))
    });
    t.signal(libc::SIGUSR1);
    let code = t.exit_code(T);
    assert_eq!(code, 0, "{}", t.dump());
}

// ------------------------------------------------------------ signal configuration

/// tini's `sigconf-test.c`, extended: it ignores tini's three (SIGTTOU,
/// SIGSEGV, SIGINT) and blocks tini's three (SIGTTIN, SIGILL, SIGTERM), and
/// also ignores the ones tend or Rust's runtime change for their own use
/// (SIGPIPE, SIGBUS, SIGCHLD, SIGHUP as `nohup` does) and a real-time one,
/// and blocks SIGUSR1, SIGCHLD and a real-time one. Then it executes its
/// arguments.
const SIGCONF_C: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
    if (argc < 2) {
        fprintf(stderr, "usage: sigconf CMD ARG...\n");
        return 2;
    }
    int ignored[] = {SIGTTOU, SIGSEGV, SIGINT, SIGPIPE, SIGBUS, SIGCHLD, SIGHUP, SIGRTMIN + 2};
    int blocked[] = {SIGTTIN, SIGILL, SIGTERM, SIGUSR1, SIGCHLD, SIGRTMIN + 3};
    for (unsigned i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        if (signal(ignored[i], SIG_IGN) == SIG_ERR) {
            perror("sigconf: signal");
            return 2;
        }
    }
    sigset_t set;
    sigemptyset(&set);
    for (unsigned i = 0; i < sizeof blocked / sizeof blocked[0]; i++) {
        sigaddset(&set, blocked[i]);
    }
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        perror("sigconf: sigprocmask");
        return 2;
    }
    execvp(argv[1], argv + 1);
    perror("sigconf: exec");
    return 127;
}
"#;

/// Build the helper once per test binary, with the C compiler cargo links
/// with. A missing compiler fails the test: `.ci/run` installs gcc.
fn sigconf_helper() -> &'static Path {
    static HELPER: OnceLock<PathBuf> = OnceLock::new();
    HELPER.get_or_init(|| {
        // Built under a name of this process's own, then renamed into place:
        // a test binary running at the same time never sees half a file.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tini-sigconf");
        std::fs::create_dir_all(&dir).unwrap();
        let id = std::process::id();
        let source = dir.join(format!("sigconf.{id}.c"));
        let built = dir.join(format!("sigconf.{id}"));
        std::fs::write(&source, SIGCONF_C).unwrap();
        let compiler = ["gcc", "cc"].into_iter().find(|c| have(c)).unwrap_or_else(|| {
            panic!("no C compiler (gcc or cc) to build tini's sigconf helper: install gcc (.ci/run does)")
        });
        let out = Command::new(compiler)
            .args(["-O1", "-Wall", "-Werror", "-o"])
            .arg(&built)
            .arg(&source)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
        let _ = std::fs::remove_file(&source);
        assert!(out.status.success(), "{compiler} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let binary = dir.join("sigconf");
        std::fs::rename(&built, &binary).unwrap();
        binary
    })
}

/// The `SigIgn` and `SigBlk` masks in a `/proc/PID/status` text.
fn signal_masks(status: &str) -> (u64, u64) {
    let mask = |key: &str| {
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{status}"));
        u64::from_str_radix(line.trim(), 16).unwrap_or_else(|e| panic!("{key} {line:?}: {e}"))
    };
    (mask("SigIgn:"), mask("SigBlk:"))
}

fn bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

/// Run `sigconf ARGS…` to completion (bounded); its stdout and exit code.
fn under_sigconf(args: &[&str]) -> Out {
    let mut cmd = Command::new(sigconf_helper());
    cmd.args(args);
    run_cmd(cmd, &format!("sigconf {}", args.join(" ")))
}

/// tini: `sigconf-test tini cat /proc/self/status` must show tini's three
/// ignored signals in SigIgn and its three blocked ones in SigBlk. Beyond
/// tini: the child's state must equal, bit for bit, what the same helper
/// gives `cat` without tend in between (an init should be invisible).
#[test]
fn sigconf_child_keeps_what_tend_inherited() {
    let baseline = under_sigconf(&["cat", "/proc/self/status"]);
    assert_eq!(baseline.code, 0, "{}", baseline.show());
    let (base_ignored, base_blocked) = signal_masks(&baseline.stdout);
    let rt = |n: i32| 34 + n; // SIGRTMIN as the kernel numbers it
    for signal in [libc::SIGTTOU, libc::SIGSEGV, libc::SIGINT, libc::SIGPIPE, libc::SIGCHLD, rt(2)] {
        assert_ne!(base_ignored & bit(signal), 0, "the helper did not ignore {signal}: {base_ignored:x}");
    }
    for signal in [libc::SIGTTIN, libc::SIGILL, libc::SIGTERM, libc::SIGCHLD, rt(3)] {
        assert_ne!(base_blocked & bit(signal), 0, "the helper did not block {signal}: {base_blocked:x}");
    }

    // Both of tini's forms: options then `--`, and none.
    for args in [&["run", "--", "cat", "/proc/self/status"][..], &["run", "cat", "/proc/self/status"]] {
        let mut all = vec![tend_bin()];
        all.extend_from_slice(args);
        let out = under_sigconf(&all);
        assert_eq!(out.code, 0, "{}", out.show());
        let (ignored, blocked) = signal_masks(&out.stdout);
        for (set, signals, name) in [
            (ignored, [libc::SIGTTOU, libc::SIGSEGV, libc::SIGINT], "SigIgn"),
            (blocked, [libc::SIGTTIN, libc::SIGILL, libc::SIGTERM], "SigBlk"),
        ] {
            for signal in signals {
                assert_ne!(
                    set & bit(signal),
                    0,
                    "signal {signal} is missing in {name} ({set:016x})\n{}",
                    out.show()
                );
            }
        }
        assert_eq!(
            ignored, base_ignored,
            "SigIgn: {ignored:016x} under tend run, {base_ignored:016x} without"
        );
        assert_eq!(
            blocked, base_blocked,
            "SigBlk: {blocked:016x} under tend run, {base_blocked:016x} without"
        );
    }
}

/// Beyond tini: started with nothing ignored or blocked, the child gets
/// nothing ignored or blocked, even though Rust's runtime ignores SIGPIPE in
/// tend before `main` (a `yes | head` in the command must end by SIGPIPE).
#[test]
fn sigconf_clean_start_gives_a_clean_child() {
    let mut baseline = Command::new("cat");
    baseline.arg("/proc/self/status");
    let baseline = run_cmd(baseline, "cat /proc/self/status");
    let mut cmd = Command::new(tend_bin());
    cmd.args(["run", "cat", "/proc/self/status"]);
    let out = run_cmd(cmd, "tend run cat /proc/self/status");
    assert_eq!(out.code, 0, "{}", out.show());
    let (ignored, blocked) = signal_masks(&out.stdout);
    assert_eq!(ignored & bit(libc::SIGPIPE), 0, "SIGPIPE ignored in the child: {ignored:016x}");
    assert_eq!(
        (ignored, blocked),
        signal_masks(&baseline.stdout),
        "(SigIgn, SigBlk) with and without tend run"
    );
}

/// Beyond tini: with SIGCHLD ignored by whoever started it, tend must still
/// learn the command's status (an ignored SIGCHLD makes the kernel reap
/// children itself, waitpid(2)), and still pass signals on to it.
#[test]
fn sigconf_inherited_sigchld_ignored_still_gives_the_status() {
    let out = under_sigconf(&[tend_bin(), "run", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{}", out.show());
    let out = under_sigconf(&[tend_bin(), "run", "-e", "7", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 0, "{}", out.show());
}

/// The other side, as systemd does for its services: under `tend up` a
/// service starts clean, nothing ignored and nothing blocked, whatever tend
/// inherited; and tend up itself still reaps and stops with SIGCHLD and
/// SIGTERM blocked by its parent.
#[test]
fn sigconf_tend_up_services_start_clean() {
    let env = Env::new();
    let report = env.p("status");
    env.unit(
        "probe",
        &format!(
            "{}restart: never\ncritical: true\n",
            sh(&format!("cat /proc/self/status > {0}.tmp; mv {0}.tmp {0}", report.display()))
        ),
    );
    let units = env.units();
    let mut cmd = Command::new(sigconf_helper());
    cmd.args([tend_bin(), "up", "--no-socket", "--units", units.to_str().unwrap()]).current_dir(env.root());
    let mut t = Tend::spawn(cmd, env.root(), "sigconf tend up");
    let code = t.exit_code(T);
    assert_eq!(code, 0, "{}", t.dump());
    let (ignored, blocked) = signal_masks(&read(&report));
    assert_eq!(ignored, 0, "a service under tend up inherited ignored signals: {ignored:016x}");
    assert_eq!(blocked, 0, "a service under tend up inherited blocked signals: {blocked:016x}");
}

// ------------------------------------------------------------ parent-death signal

/// tini's `pdeathsignal/stage_1.py` and `stage_2.py`, in sh: stage 1 runs
/// `tend run -p SIGUSR1 -- stage 2` and waits; stage 2 kills stage 1 with
/// SIGKILL, and must then get SIGUSR1 from tend (the kernel signals tend
/// when its parent dies, and tend passes it on), which it records as "ok".
#[test]
fn parent_death_signal() {
    let env = Env::new();
    let (ok, tend_pid) = (env.p("ok"), env.p("tend.pid"));
    let stage_2 = format!(
        "echo $PPID > {tend_pid}; trap '{record}; exit 0' USR1; kill -KILL \"$1\"; sleep 5 & wait; exit 1",
        tend_pid = tend_pid.display(),
        record = put("echo ok", &ok),
    );
    // Stage 1 must stay tend's parent (no exec): the `; exit 3` after it
    // keeps the shell from replacing itself with tend.
    let stage_1 = format!("\"{tend}\" run -p SIGUSR1 -- sh -c \"$0\" stage_2 $$; exit 3", tend = tend_bin());
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &stage_1, &stage_2]).current_dir(env.root());
    let mut stage_1 = Tend::spawn(cmd, env.root(), "stage 1: sh -c 'tend run -p SIGUSR1 -- stage 2'");
    let status = stage_1.wait_exit(T);
    assert_eq!(status.code(), None, "stage 1 was not killed by stage 2\n{}", stage_1.dump());
    wait_until(T, "stage 2 to record SIGUSR1 from tend", || read(&ok).trim() == "ok");
    // tend then exits with its child (it was re-parented, so not to us).
    let pid: i32 = read(&tend_pid).trim().parse().expect("stage 2 wrote tend's pid");
    wait_gone(pid, T, "tend run after its child exited");
}
