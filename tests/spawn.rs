//! README section 2, spawning: every unit key observed from inside the
//! service (the service writes what it sees to a file in the temp dir), no
//! leaked descriptors, stdin from /dev/null, PDEATHSIG, and the
//! "cannot execute" message.

mod common;
use common::*;

use std::os::unix::process::CommandExt;

/// Start `tend up` with one service `svc` that runs `cmd` in sh and writes
/// its output to the file `report`; `extra` is more YAML for the unit.
/// Returns tend (still running) and the report.
fn observe(env: &Env, cmd: &str, extra: &str) -> (Tend, String) {
    let report = env.p("report");
    env.unit("svc", &format!("{}restart: never\n{extra}", sh(&put(cmd, &report))));
    let tend = env.up();
    let text = env.await_file(&tend, "report");
    (tend, text)
}

/// The value of `Key:` in a /proc/self/status dump.
fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key}: in status:\n{status}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// (soft, hard) of a /proc/self/limits line starting with `name`.
fn limit(limits: &str, name: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in limits:\n{limits}"));
    let rest: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (rest[0].to_string(), rest[1].to_string())
}

#[test]
fn command_string_is_split_like_a_shell_but_not_run_by_one() {
    let env = Env::new();
    // One string: quotes and backslashes group words; `$HOME` and `>` are
    // NOT interpreted since no shell runs it.
    env.unit("svc", "command: printf '%s|' \"a b\" c\\ d $HOME '>' x\nrestart: never\ncritical: true\n");
    let mut tend = env.up();
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    let out = tend.stdout();
    assert!(
        out.lines().any(|l| l.ends_with("| a b|c d|$HOME|>|x|")),
        "expected the literal words a b|c d|$HOME|>|x| (and the final line without newline printed)\n{}",
        tend.dump()
    );
    assert!(!env.p("x").exists(), "the command went through a shell (redirection happened)");
}

#[test]
fn command_list_is_passed_verbatim() {
    let env = Env::new();
    env.unit(
        "svc",
        "command: [printf, '<%s>\\n', 'two words', '$HOME', '*']\nrestart: never\ncritical: true\n",
    );
    let mut tend = env.up();
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    let out = tend.stdout();
    for w in ["<two words>", "<$HOME>", "<*>"] {
        assert!(out.contains(w), "missing {w}\n{}", tend.dump());
    }
}

#[test]
fn working_dir_sets_cwd() {
    let env = Env::new();
    let wd = env.p("wd");
    std::fs::create_dir(&wd).unwrap();
    let (_t, pwd) = observe(&env, "pwd -P", &format!("working_dir: {}\n", wd.display()));
    assert_eq!(pwd.trim(), wd.canonicalize().unwrap().to_str().unwrap());
}

#[test]
fn default_working_dir_is_the_supervisors_cwd() {
    let env = Env::new();
    let (_t, pwd) = observe(&env, "pwd -P", "");
    assert_eq!(pwd.trim(), env.root().canonicalize().unwrap().to_str().unwrap());
}

#[test]
fn environment_map_adds_to_inherited_environment() {
    let env = Env::new();
    let report = env.p("report");
    env.unit(
        "svc",
        &format!(
            "{}restart: never\nenvironment:\n  FOO: bar baz\n  TEND_E2E_OVERRIDE: from-unit\n",
            sh(&put("env", &report))
        ),
    );
    let tend = env.spawn(&["up", "--units", env.units().to_str().unwrap()], |c| {
        c.env("TEND_E2E_INHERITED", "yes").env("TEND_E2E_OVERRIDE", "from-tend");
    });
    let e = env.await_file(&tend, "report");
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.contains(&"FOO=bar baz"), "{e}");
    assert!(lines.contains(&"TEND_E2E_INHERITED=yes"), "inherited env missing:\n{e}");
    assert!(lines.contains(&"TEND_E2E_OVERRIDE=from-unit"), "unit should override:\n{e}");
}

#[test]
fn environment_list_of_key_value() {
    let env = Env::new();
    let (_t, e) = observe(&env, "env", "environment:\n  - FOO=1\n  - BAR=x=y\n");
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.contains(&"FOO=1"), "{e}");
    assert!(lines.contains(&"BAR=x=y"), "value may contain '=':\n{e}");
}

#[test]
fn env_file_relative_to_unit_folder_with_comments_and_quotes() {
    let env = Env::new();
    std::fs::write(
        env.units().join("svc.env"),
        "# a comment\nPLAIN=one\n\nDQ=\"two words\"\nSQ='three # not a comment'\n",
    )
    .unwrap();
    std::fs::write(env.units().join("more.env"), "SECOND=2\n").unwrap();
    let (_t, e) = observe(&env, "env", "env_file: [svc.env, more.env]\n");
    let lines: Vec<&str> = e.lines().collect();
    for want in ["PLAIN=one", "DQ=two words", "SQ=three # not a comment", "SECOND=2"] {
        assert!(lines.contains(&want), "missing {want}:\n{e}");
    }
}

#[test]
fn clear_env_gives_only_unit_environment_and_a_path() {
    let env = Env::new();
    let report = env.p("report");
    env.unit(
        "svc",
        &format!(
            "{}restart: never\nclear_env: true\nenvironment: {{ONLY: this}}\n",
            sh(&put("env", &report))
        ),
    );
    let tend = env.spawn(&["up", "--units", env.units().to_str().unwrap()], |c| {
        c.env("TEND_E2E_INHERITED", "yes");
    });
    let e = env.await_file(&tend, "report");
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.contains(&"ONLY=this"), "{e}");
    assert!(lines.iter().any(|l| l.starts_with("PATH=")), "default PATH missing:\n{e}");
    assert!(!e.contains("TEND_E2E_INHERITED"), "inherited variable leaked through clear_env:\n{e}");
}

#[test]
fn user_sets_uid_gid_groups_and_home() {
    if skip_unless_root("user_sets_uid_gid_groups_and_home") {
        return;
    }
    let env = Env::new();
    let (_t, r) = observe(
        &env,
        "id -u; id -g; id -G; echo HOME=$HOME; echo USER=$USER; echo LOGNAME=$LOGNAME; cat /proc/self/status",
        "user: nobody\n",
    );
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(&lines[..3], &["65534", "65534", "65534"], "uid, gid, groups:\n{r}");
    assert!(lines.contains(&"HOME=/nonexistent"), "{r}");
    assert!(lines.contains(&"USER=nobody"), "{r}");
    assert!(lines.contains(&"LOGNAME=nobody"), "{r}");
    assert_eq!(status_field(&r, "Uid"), "65534 65534 65534 65534", "real/effective/saved/fs uid");
    assert_eq!(status_field(&r, "Gid"), "65534 65534 65534 65534", "real/effective/saved/fs gid");
    assert_eq!(status_field(&r, "Groups"), "65534", "no root groups kept");
    assert_eq!(status_field(&r, "CapEff"), "0000000000000000", "no capabilities left");
}

#[test]
fn numeric_user_without_group_option() {
    if skip_unless_root("numeric_user_without_group_option") {
        return;
    }
    let env = Env::new();
    let (_t, r) = observe(&env, "id -u; id -g", "user: 65534\n");
    assert_eq!(r.lines().collect::<Vec<_>>(), ["65534", "65534"], "{r}");
}

#[test]
fn group_and_supplementary_groups() {
    if skip_unless_root("group_and_supplementary_groups") {
        return;
    }
    let env = Env::new();
    let (_t, r) = observe(
        &env,
        "id -u; id -g; cat /proc/self/status",
        "user: nobody\ngroup: users\nsupplementary_groups: [adm, 44]\n",
    );
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(&lines[..2], &["65534", "100"], "{r}");
    assert_eq!(status_field(&r, "Gid"), "100 100 100 100");
    let mut groups: Vec<u32> =
        status_field(&r, "Groups").split_whitespace().map(|g| g.parse().unwrap()).collect();
    groups.sort();
    assert_eq!(groups, [4, 44], "supplementary groups:\n{r}");
}

#[test]
fn umask_is_applied() {
    let env = Env::new();
    let (_t, r) = observe(&env, "umask", "umask: \"0027\"\n");
    assert_eq!(r.trim(), "0027");
}

#[test]
fn nice_is_applied() {
    let env = Env::new();
    let (_t, r) = observe(&env, "nice", "nice: 7\n");
    assert_eq!(r.trim(), "7");
}

/// Effective capability `bit` of this (test) process.
fn has_cap(bit: u32) -> bool {
    let s = read("/proc/self/status");
    let eff = s.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap_or("0").trim();
    u64::from_str_radix(eff, 16).unwrap_or(0) & (1 << bit) != 0
}

/// A negative nice needs privileges the service (nobody) does not have: it
/// must be applied before the identity change.
#[test]
fn negative_nice_for_a_non_root_service() {
    if skip_unless_root("negative_nice_for_a_non_root_service") {
        return;
    }
    const CAP_SYS_NICE: u32 = 23;
    if !has_cap(CAP_SYS_NICE) && skip("negative_nice_for_a_non_root_service", "needs CAP_SYS_NICE") {
        return;
    }
    let env = Env::new();
    let (_t, r) = observe(&env, "id -u; nice", "user: nobody\nnice: -5\n");
    assert_eq!(r.lines().collect::<Vec<_>>(), ["65534", "-5"], "{r}");
}

/// Raising a hard limit needs CAP_SYS_RESOURCE, which the service (nobody)
/// does not have: rlimits must be applied before the identity change. A
/// host that took the capability even from root (containers often do, as
/// this project's machines do) must refuse the raise with a clear reason.
#[test]
fn raised_hard_limit_for_a_non_root_service() {
    if skip_unless_root("raised_hard_limit_for_a_non_root_service") {
        return;
    }
    const CAP_SYS_RESOURCE: u32 = 24;
    let mut hard = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) };
    let raised = hard.rlim_max + 1000;
    let env = Env::new();
    let unit = format!("user: nobody\nrlimits:\n  nofile: {{soft: 1024, hard: {raised}}}\n");
    if !has_cap(CAP_SYS_RESOURCE) {
        env.unit("svc", &format!("command: ['true']\nrestart: never\n{unit}"));
        let tend = env.up();
        let s = wait_state(&env, &tend, "svc", "failed");
        assert_eq!(s["reason"], "cannot set rlimit nofile: Operation not permitted", "{s}");
        return;
    }
    let (_t, r) = observe(&env, "id -u; cat /proc/self/limits", &unit);
    assert_eq!(r.lines().next(), Some("65534"), "{r}");
    assert_eq!(limit(&r, "Max open files"), ("1024".into(), raised.to_string()), "{r}");
}

#[test]
fn rlimits_numbers_sizes_unlimited_and_soft_hard() {
    let env = Env::new();
    let (_t, r) = observe(
        &env,
        "cat /proc/self/limits",
        "rlimits:\n  nofile: {soft: 100, hard: 200}\n  fsize: 64M\n  core: unlimited\n  stack: 512K\n  nproc: 4000\n",
    );
    assert_eq!(limit(&r, "Max open files"), ("100".into(), "200".into()), "{r}");
    assert_eq!(limit(&r, "Max file size"), ("67108864".into(), "67108864".into()), "{r}");
    assert_eq!(limit(&r, "Max core file size"), ("unlimited".into(), "unlimited".into()), "{r}");
    assert_eq!(limit(&r, "Max stack size").0, "524288", "{r}");
    assert_eq!(limit(&r, "Max processes"), ("4000".into(), "4000".into()), "{r}");
}

#[test]
fn signal_mask_and_dispositions_are_reset() {
    let env = Env::new();
    let report = env.p("report");
    env.unit("svc", &format!("{}restart: never\n", sh(&put("cat /proc/self/status", &report))));
    // Start tend with SIGUSR2 and SIGRTMIN+6 blocked, and SIGHUP, SIGRTMIN+6
    // and signals 32 and 33 ignored: all are inherited by tend, and none may
    // reach the service. (32 and 33 are glibc-internal and glibc's
    // sigaction refuses them, so they need the raw syscall; a tend started
    // by glibc's posix_spawn, as `cargo test` starts test binaries, already
    // inherits them ignored.)
    let tend = env.spawn(&["up", "--units", env.units().to_str().unwrap()], |c| {
        // SAFETY: runs in the forked child before exec; sigemptyset,
        // sigaddset, sigprocmask, signal and raw rt_sigaction are
        // async-signal-safe, and the kernel sigaction struct below is the
        // x86_64/aarch64 layout {handler, flags, restorer, mask}.
        unsafe {
            c.pre_exec(|| {
                let rt = libc::SIGRTMIN() + 6;
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                libc::sigaddset(&mut set, rt);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                libc::signal(rt, libc::SIG_IGN);
                #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
                {
                    #[repr(C)]
                    struct KSigaction {
                        handler: usize,
                        flags: u64,
                        restorer: usize,
                        mask: u64,
                    }
                    let ign = KSigaction { handler: libc::SIG_IGN, flags: 0, restorer: 0, mask: 0 };
                    for sig in [32, 33] {
                        libc::syscall(
                            libc::SYS_rt_sigaction,
                            sig,
                            &ign,
                            std::ptr::null_mut::<KSigaction>(),
                            8,
                        );
                    }
                }
                Ok(())
            });
        }
    });
    let r = env.await_file(&tend, "report");
    // tend's own mask and dispositions, to tell in a failure what was inherited.
    let own = read(format!("/proc/{}/status", tend.pid));
    let own: Vec<&str> = own.lines().filter(|l| l.starts_with("Sig")).collect();
    let r = format!("{r}\n(tend itself: {own:?})");
    assert_eq!(status_field(&r, "SigBlk"), "0000000000000000", "blocked signals leaked:\n{r}");
    assert_eq!(status_field(&r, "SigIgn"), "0000000000000000", "ignored signals leaked:\n{r}");
}

#[test]
fn stdin_is_dev_null() {
    let env = Env::new();
    let (_t, r) = observe(&env, "readlink /proc/self/fd/0", "");
    assert_eq!(r.trim(), "/dev/null");
}

#[test]
fn process_group_default_makes_the_service_a_session_leader() {
    let env = Env::new();
    let (t, r) = observe(&env, "echo $$; cat /proc/$$/stat", "");
    let pid = r.lines().next().unwrap().trim().to_string();
    let stat = r.lines().nth(1).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    assert_eq!(
        (f[2], f[3]),
        (pid.as_str(), pid.as_str()),
        "pgrp and session should be the pid {pid}: {stat}"
    );
    drop(t);
}

#[test]
fn process_group_false_keeps_the_supervisors_group() {
    let env = Env::new();
    let (t, r) = observe(&env, "echo $$; cat /proc/$$/stat", "process_group: false\n");
    let pid = r.lines().next().unwrap().trim().to_string();
    let stat = r.lines().nth(1).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    assert_ne!(f[2], pid, "process_group: false, yet the service leads its own group: {stat}");
    assert_eq!(f[2], t.pid.to_string(), "service should stay in tend's group: {stat}");
}

/// No descriptor of tend leaks into a service: /proc/PID/fd holds 0, 1, 2.
///
/// Method: listing from inside is fragile (`ls` and a shell glob each open a
/// directory fd of their own while listing). So the service writes its pid
/// and then `exec`s `sleep`, which keeps the pid and every descriptor not
/// marked close-on-exec (exactly what leaks into a program) and opens none;
/// the test lists `/proc/PID/fd` of that process from outside. Several
/// services run so that tend holds pipes of the others at spawn time.
#[test]
fn no_leaked_descriptors() {
    let env = Env::new();
    for name in ["a", "b", "c"] {
        let pidf = env.p(&format!("{name}.pid"));
        env.unit(name, &sh(&format!("{}; exec sleep 30", put("echo $$", &pidf))));
    }
    let tend = env.up();
    for name in ["a", "b", "c"] {
        let pid = env.await_pid(&tend, &format!("{name}.pid"));
        // After the pid file is written, wait for the exec to sleep.
        tend.wait_until(T, "service to exec sleep", || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim() == "sleep").unwrap_or(false)
        });
        // comm changes a moment before the kernel closes close-on-exec
        // descriptors (both inside execve): a leak is one that stays, so
        // poll (bounded) for exactly 0, 1, 2 before judging.
        let list = || {
            let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|dir| dir.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
                .unwrap_or_default();
            fds.sort();
            fds
        };
        // Judge the list the poll ended on: listing again could catch
        // sleep itself starting up (it opens the locale archive a moment).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut fds = list();
        while fds != ["0", "1", "2"] && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            fds = list();
        }
        let detail: Vec<String> = fds
            .iter()
            .map(|fd| {
                let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                format!("{fd} -> {target}")
            })
            .collect();
        assert_eq!(fds, ["0", "1", "2"], "service {name} has extra descriptors: {detail:?}");
    }
}

#[test]
fn cannot_execute_missing_binary_is_reported_with_errno() {
    let env = Env::new();
    env.unit("web", "command: [/no/such/bin, --flag]\nrestart: never\n");
    let tend = env.up();
    tend.wait_stderr("web: cannot execute /no/such/bin: No such file or directory");
    assert!(
        !tend.stderr().contains("web: exited with status"),
        "an exec failure must not be reported as an exit\n{}",
        tend.dump()
    );
}

#[test]
fn cannot_execute_non_executable_file_is_permission_denied() {
    let env = Env::new();
    let f = env.p("not-exec");
    std::fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
    env.unit("web", &format!("command: [{}]\nrestart: never\n", f.display()));
    let tend = env.up();
    tend.wait_stderr(&format!("web: cannot execute {}: Permission denied", f.display()));
}

#[test]
fn cannot_execute_follows_the_restart_policy() {
    let env = Env::new();
    env.unit(
        "web",
        "command: [/no/such/bin]\nrestart: on-failure\nrestart_delay: 10ms\nstart_limit: {burst: 2, interval: 60s}\n",
    );
    let tend = env.up();
    tend.wait_stderr("web: failed");
    let n = tend.stderr().matches("web: cannot execute /no/such/bin").count();
    assert_eq!(n, 3, "burst 2: three attempts before failed\n{}", tend.dump());
}

/// When tend is not PID 1, its services die with it (PR_SET_PDEATHSIG).
#[test]
fn services_die_when_tend_is_killed() {
    let env = Env::new();
    let pidf = env.p("svc.pid");
    env.unit("svc", &sh(&format!("{}; exec sleep 30", put("echo $$", &pidf))));
    let mut tend = env.up();
    let pid = env.await_pid(&tend, "svc.pid");
    assert!(!is_gone(pid));
    // Kill only tend itself (the service leads its own group, so only
    // PDEATHSIG can stop it).
    kill(tend.pid, libc::SIGKILL);
    tend.wait_exit(T);
    wait_gone(pid, T, "service after its supervisor was SIGKILLed");
}

/// PDEATHSIG is cleared by a credential change: it must hold for a service
/// running as another user too.
#[test]
fn services_running_as_another_user_die_when_tend_is_killed() {
    if skip_unless_root("services_running_as_another_user_die_when_tend_is_killed") {
        return;
    }
    let env = Env::new();
    let pidf = env.p("svc.pid");
    env.unit("svc", &format!("{}user: nobody\n", sh(&format!("{}; exec sleep 30", put("echo $$", &pidf)))));
    let mut tend = env.up();
    let pid = env.await_pid(&tend, "svc.pid");
    kill(tend.pid, libc::SIGKILL);
    tend.wait_exit(T);
    wait_gone(pid, T, "service (user nobody) after its supervisor was SIGKILLed");
}

/// `tend up` of `env`'s units under `strace -f -e trace=CALLS -o trace`.
fn traced_up(env: &Env, calls: &str, trace: &std::path::Path) -> Tend {
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-qq", "-e", &format!("trace={calls}"), "-o"])
        .arg(trace)
        .arg(tend_bin())
        .args(["up", "--no-socket", "--units", env.units().to_str().unwrap()])
        .current_dir(env.root());
    Tend::spawn(cmd, env.root(), "strace tend up")
}

/// The pids of `name`'s `started (pid N)` lines so far, in order.
fn started_pids(tend: &Tend, name: &str) -> Vec<i32> {
    let needle = format!("{name}: started (pid ");
    tend.events().iter().filter_map(|l| l.split(&needle).nth(1)?.split(')').next()?.parse().ok()).collect()
}

/// The spawner thread for real, end to end (src/spawn/vfork.rs): a plain
/// service is started by `clone3(CLONE_VM | CLONE_VFORK)`, seen by strace,
/// and its process is what a fork would have made: the unit's user (the
/// raw set-id calls, not glibc's thread broadcast), no signal handler of
/// tend's left installed, nothing blocked. Its first start, at tend's start,
/// is forked; its crash is reaped and the restart is the spawner thread's
/// (the loop learns the pid before it can reap).
#[test]
fn a_service_started_by_the_spawner_thread_is_what_a_fork_would_make() {
    let test = "a_service_started_by_the_spawner_thread_is_what_a_fork_would_make";
    if skip_unless_root(test) || skip_unless_installed(test, &["strace"]) {
        return;
    }
    let env = Env::new();
    let trace = env.p("trace");
    let state = env.p("state");
    // The first run exits 3 (a crash); the restart sleeps, so that its
    // /proc/PID/status is read from outside, of `sleep` itself (a shell
    // installs handlers of its own).
    env.unit(
        "svc",
        &format!(
            "user: nobody\nrestart: always\nrestart_delay: 0s\n{}",
            sh(&format!(
                "if [ -e {0}/ran ]; then exec sleep 1000; fi\ntouch {0}/ran\nexit 3",
                state.display()
            ))
        ),
    );
    // nobody may pass through the test's folder and write its marker in a
    // folder of its own (the units' folder stays writable by root alone).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut tend = traced_up(&env, "clone3", &trace);
    tend.wait_until(T, "the restarted service", || started_pids(&tend, "svc").len() >= 2);
    let pid = started_pids(&tend, "svc")[1];
    // Its exec of sleep (the start is reported before the shell's exec).
    wait_until(T, "the restart to exec sleep", || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    let status = read(format!("/proc/{pid}/status"));
    assert_eq!(status_field(&status, "Uid"), "65534 65534 65534 65534", "{status}");
    assert_eq!(status_field(&status, "SigCgt"), "0000000000000000", "a handler of tend's is left\n{status}");
    assert_eq!(status_field(&status, "SigBlk"), "0000000000000000", "{status}");
    // SIGTERM to tend itself (the service's parent), not to strace.
    let tend_pid: i32 = proc_stat_fields(pid).expect("the service's stat")[1].parse().unwrap();
    kill(tend_pid, libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    let traced = read(&trace);
    let vforks = traced.lines().filter(|l| l.contains("clone3({flags=CLONE_VM|CLONE_VFORK")).count();
    assert_eq!(vforks, 1, "the restart through the spawner thread's clone3:\n{traced}\n{}", tend.dump());
}

/// Starts that follow other work of the loop's (here tend's start of two
/// services) are forked from the loop, which then never waits for the
/// spawner thread; a lone restart goes to the spawner thread
/// (the core's `Action::Spawn { restart }`).
#[test]
fn starts_at_once_are_forked_and_a_restart_goes_to_the_spawner_thread() {
    let test = "starts_at_once_are_forked_and_a_restart_goes_to_the_spawner_thread";
    if skip_unless_root(test) || skip_unless_installed(test, &["strace"]) {
        return;
    }
    let env = Env::new();
    let trace = env.p("trace");
    for name in ["one", "two"] {
        env.unit(name, "command: [sleep, \"1000\"]\nrestart: always\nrestart_delay: 0s\n");
    }
    let mut tend = traced_up(&env, "clone,clone3,fork,vfork", &trace);
    let starts = started_pids;
    tend.wait_until(T, "both services started", || {
        !starts(&tend, "one").is_empty() && !starts(&tend, "two").is_empty()
    });
    let shared = |trace: &str| trace.lines().filter(|l| l.contains("CLONE_VM|CLONE_VFORK")).count();
    // Thread creation (the spawner thread itself) is CLONE_VM|CLONE_THREAD, not VFORK.
    let at_start = read(&trace);
    assert_eq!(shared(&at_start), 0, "the two starts at once were forked:\n{at_start}\n{}", tend.dump());
    kill(starts(&tend, "one")[0], libc::SIGKILL);
    tend.wait_until(T, "the restart of one", || starts(&tend, "one").len() >= 2);
    let after = read(&trace);
    assert_eq!(shared(&after), 1, "the restart went to the spawner thread:\n{after}\n{}", tend.dump());
    let tend_pid: i32 =
        proc_stat_fields(starts(&tend, "two")[0]).expect("a service's stat")[1].parse().unwrap();
    kill(tend_pid, libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
}
