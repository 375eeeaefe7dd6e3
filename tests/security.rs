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

// ---- D2: check a unit by path, then read it again ----

#[test]
fn a_unit_linked_into_a_users_folder_cannot_be_swapped_between_check_and_read() {
    if skip_unless_root("a_unit_linked_into_a_users_folder_cannot_be_swapped_between_check_and_read") {
        return;
    }
    let user = TestUser::new();
    let env = env();
    let trusted = env.p("rootcfg");
    fs::create_dir(&trusted).unwrap();
    let benign = trusted.join("benign.yaml");
    fs::write(&benign, "command: [\"true\"]\nbogus_benign: 1\n").unwrap();
    fs::set_permissions(&benign, fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = user_folder(&env, "cfg", &user);
    let pwned = env.p("pwned");
    // The user's own, valid unit: it would run `id` as root.
    let evil = format!("command: [\"sh\", \"-c\", \"id > {}\"]\nrestart: never\n", pwned.display());
    let evil_src = cfg.join("evil.src");
    fs::write(&evil_src, evil).unwrap();
    chown(&evil_src, user.uid, user.gid);
    std::os::unix::fs::symlink(cfg.join("web.yaml"), env.units().join("web.yaml")).unwrap();
    // The attacker keeps swapping web.yaml between a link to the root-owned
    // benign file (which passes the owner check) and its own file.
    let swap = format!(
        "chdir '{}' or die; while (1) {{ symlink('{}', 'l.tmp'); rename('l.tmp', 'web.yaml'); link('evil.src', 'e.tmp'); rename('e.tmp', 'web.yaml'); }}",
        cfg.display(),
        benign.display()
    );
    let mut swapper_cmd = user.command("perl");
    swapper_cmd.args(["-e", &swap]);
    let swapper = Tend::spawn(swapper_cmd, env.root(), "the swapping attacker");
    swapper.wait_until(T, "the swap to run", || cfg.join("web.yaml").exists());
    let mut loaded = 0;
    for _ in 0..300 {
        let out = run_cmd(
            {
                let mut c = std::process::Command::new(tend_bin());
                c.args(["check", env.units().to_str().unwrap()]);
                c
            },
            "tend check",
        );
        if out.code == 0 {
            loaded += 1;
        }
    }
    assert_eq!(loaded, 0, "tend check loaded the attacker's unit {loaded} times out of 300");
    // `up` too: it must never run the attacker's command.
    for _ in 0..5 {
        let mut up = env.spawn(&["up", "--no-socket", "--units", env.units().to_str().unwrap()], |_| {});
        assert_eq!(up.exit_code(T), 2, "{}", up.dump());
    }
    assert!(!pwned.exists(), "root ran the attacker's command");
    drop(swapper);
}

// ---- D10: FIFOs and huge files as units ----

#[test]
fn a_fifo_or_a_huge_file_as_a_unit_neither_hangs_nor_floods() {
    if skip_unless_root("a_fifo_or_a_huge_file_as_a_unit_neither_hangs_nor_floods") {
        return;
    }
    let env = env();
    unit(&env, "a", &format!("{}stop_timeout: 300ms\n", sh("exec sleep 300")));
    let mut tend = env.up();
    wait_running(&env, &tend, &["a"]);
    let fifo = env.units().join("b.yaml");
    nix_mkfifo(&fifo);
    // `reload` answers (an error) and the supervisor stays responsive.
    let out = ctl(&env, &["reload"]);
    assert_eq!(out.code, 2, "{}\n{}", out.show(), tend.dump());
    assert!(out.stderr.contains("it is a FIFO, not a regular file"), "{}", out.show());
    assert_eq!(state(&env, "a"), "running", "{}", tend.dump());
    // `check` returns too.
    let (code, err) = env.check();
    assert_eq!(code, 2);
    assert!(err.contains("b.yaml: cannot read: it is a FIFO"), "{err}");
    fs::remove_file(&fifo).unwrap();
    // 50 MB: refused without reading it, and not echoed.
    fs::write(env.units().join("big.yaml"), vec![b'x'; 50 << 20]).unwrap();
    fs::set_permissions(env.units().join("big.yaml"), fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = env.check();
    assert_eq!(code, 2);
    assert!(err.contains("big.yaml: cannot read: it is 52428800 bytes"), "{err}");
    assert!(err.len() < 1000, "the error echoed the file: {} bytes", err.len());
    shutdown(&env, &mut tend);
}

fn nix_mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

// ---- D11: diagnostics must not quote what the requester cannot read ----

#[test]
fn reload_errors_do_not_show_a_socket_group_member_a_root_only_file() {
    if skip_unless_root("reload_errors_do_not_show_a_socket_group_member_a_root_only_file") {
        return;
    }
    let group = TestGroup::new();
    let operator = TestUser::with_groups(&[&group.name]);
    let env = env();
    let rootonly = root_only(&env);
    unit(&env, "a", &format!("{}stop_timeout: 300ms\n", sh("exec sleep 300")));
    let socket = env.p("run/tend.sock");
    let mut tend =
        env.spawn(&["up", "--units", env.units().to_str().unwrap(), "--socket-group", &group.name], |c| {
            c.env("TEND_SOCKET", &socket);
        });
    tend.wait_until(T, "the socket", || socket.exists());
    // The admin's mistake: an env_file pointing at a root-only file; and a
    // unit that is a link to it.
    unit(
        &env,
        "b",
        &format!("command: [sleep, \"100111\"]\nenv_file: {}\n", rootonly.join("shadow").display()),
    );
    std::os::unix::fs::symlink(rootonly.join("shadow"), env.units().join("c.yaml")).unwrap();
    let mut cmd = operator.command(tend_bin());
    cmd.args(["reload", "--socket"]).arg(&socket);
    let out = run_cmd(cmd, "tend reload as a socket-group member");
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(out.stderr.contains("shadow:1:1: expected KEY=VALUE"), "{}", out.show());
    assert!(
        !out.stderr.contains("SECRETHASH"),
        "a root-only file's content went to a socket-group member:\n{}",
        out.show()
    );
    assert!(!tend.stderr().contains("SECRETHASH"), "nor into tend's log\n{}", tend.dump());
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.args(["shutdown", "--socket"]).arg(&socket);
    run_cmd(cmd, "tend shutdown");
    tend.wait_exit(T);
}

// ---- D16: what `check` passed and only the start refused ----

#[test]
fn check_refuses_what_would_only_fail_at_start() {
    if skip_unless_root("check_refuses_what_would_only_fail_at_start") {
        return;
    }
    let env = env();
    let env_file = env.p("nul.env");
    fs::write(&env_file, "A=x\0y\n").unwrap();
    unit(&env, "nul", &format!("command: [\"true\"]\nenv_file: {}\n", env_file.display()));
    unit(&env, "logroot", "command: [\"true\"]\nlog:\n  file: /\n");
    unit(
        &env,
        "rules",
        "command: [\"true\"]\nsandbox:\n  read_only_paths: [/]\n  read_write_paths: [/]\n  inaccessible_paths: [/]\n",
    );
    fs::write(env.units().join("utf.yaml"), b"command: [\"true\"]\ndescription: caf\xe9\n").unwrap();
    fs::set_permissions(env.units().join("utf.yaml"), fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = env.check();
    assert_eq!(code, 2, "{err}");
    let u = env.units();
    for expected in [
        format!("{}:1:3: A: the value contains a NUL byte", env_file.display()),
        format!("{}:3:9: log.file: / names a folder, not a file", u.join("logroot.yaml").display()),
        format!("{}:5:23: sandbox.inaccessible_paths: / cannot be hidden", u.join("rules.yaml").display()),
        "sandbox.read_write_paths: / is also in read_only_paths".to_string(),
        format!("{}:2:17: invalid UTF-8 (byte 0xe9)", u.join("utf.yaml").display()),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
}

// ---- D4: a non-root tend and a folder someone else made ----

/// Removes a path (file or folder tree) on drop, as root.
struct RemoveOnDrop(Vec<std::path::PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_dir_all(path).or_else(|_| fs::remove_file(path));
        }
    }
}

/// `tend ARGS` run as `user` with the default socket (no XDG_RUNTIME_DIR,
/// no TEND_SOCKET: the `/tmp/tend-UID` case).
fn as_user(user: &TestUser, args: &[&str]) -> Out {
    let mut cmd = user.command(tend_bin());
    cmd.args(args).env_remove("XDG_RUNTIME_DIR").env_remove("TEND_SOCKET").env_remove("NO_COLOR");
    run_cmd(cmd, &format!("tend {} as {}", args.join(" "), user.name))
}

/// A fake supervisor: answers every request with a made-up success.
const FAKE_SERVER: &str = r#"
use IO::Socket::UNIX;
my ($path, $log) = @ARGV;
unlink $path;
my $server = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $path, Listen => 5) or die "listen: $!";
chmod 0777, $path;
while (my $c = $server->accept) {
    my $line = <$c>;
    open(my $l, '>>', $log); print $l $line; close $l;
    print $c '{"ok":true,"pid":4242,"services":[{"name":"sleeper","state":"running","pid":4242,"since":"2026-01-01T00:00:00Z","since_secs":1,"restarts":0,"last_exit":null,"reason":null,"healthy":true}],"results":[{"name":"sleeper","ok":true,"message":"stopped (fake)","state":"stopped","pid":null}]}' . "\n";
    close $c;
}
"#;

#[test]
fn a_runtime_folder_another_user_made_is_refused_by_up_and_by_clients() {
    if skip_unless_root("a_runtime_folder_another_user_made_is_refused_by_up_and_by_clients") {
        return;
    }
    let victim = TestUser::new();
    let attacker = TestUser::new();
    let env = env();
    unit(&env, "sleeper", &format!("{}stop_timeout: 300ms\n", sh("exec sleep 300")));
    let dir = std::path::PathBuf::from(format!("/tmp/tend-{}", victim.uid));
    let _cleanup = RemoveOnDrop(vec![dir.clone()]);
    let out = attacker.command("mkdir").args(["-m", "777"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let socket = dir.join("tend.sock");
    let log = env.p("fake.log");
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    let mut fake_cmd = attacker.command("perl");
    fake_cmd.args(["-e", FAKE_SERVER]).arg(&socket).arg(&log);
    let fake = Tend::spawn(fake_cmd, env.root(), "the attacker's fake supervisor");
    fake.wait_until(T, "the fake socket", || socket.exists());
    // The victim's client does not talk to it.
    let out = as_user(&victim, &["stop", "sleeper"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(!out.stdout.contains("stopped (fake)"), "the client believed a fake supervisor:\n{}", out.show());
    assert!(
        out.stderr.contains(&format!("refusing to talk to the socket in {}", dir.display())),
        "{}",
        out.show()
    );
    assert!(out.stderr.contains(&format!("owned by uid {}", attacker.uid)), "{}", out.show());
    assert_eq!(read(&log), "", "the fake supervisor got the victim's request");
    let out = as_user(&victim, &["status"]);
    assert_eq!(out.code, 1, "{}", out.show());
    // The victim's supervisor does not start in it.
    let out = as_user(&victim, &["up", "--units", env.units().to_str().unwrap()]);
    assert_ne!(out.code, 0, "{}", out.show());
    assert!(
        out.stderr.contains(&format!(
            "refusing to use {}: it is owned by uid {}",
            dir.display(),
            attacker.uid
        )),
        "{}",
        out.show()
    );
    drop(fake);
}

#[test]
fn squatted_notify_socket_names_do_not_stop_a_non_root_notify_service() {
    if skip_unless_root("squatted_notify_socket_names_do_not_stop_a_non_root_notify_service") {
        return;
    }
    let victim = TestUser::new();
    let attacker = TestUser::new();
    let env = env();
    unit(
        &env,
        "ready",
        &format!(
            "{}type: notify\nstart_timeout: 5s\nstop_timeout: 300ms\nrestart: never\n",
            sh(&format!("{}\nexec sleep 300", notify_ready_cmd(&env)))
        ),
    );
    // The next 3,000 pids' worth of the old names, made by another user.
    let next: i32 = read("/proc/sys/kernel/ns_last_pid").trim().parse().unwrap();
    let squat = format!(
        "for my $p ({}..{}) {{ open(my $f, '>', \"/tmp/tend-notify-$p.sock\"); }}",
        next + 1,
        next + 3000
    );
    let names: Vec<std::path::PathBuf> =
        (next + 1..=next + 3000).map(|p| format!("/tmp/tend-notify-{p}.sock").into()).collect();
    let mut cleanup = RemoveOnDrop(names);
    cleanup.0.push(format!("/tmp/tend-{}", victim.uid).into());
    let out = attacker.command("perl").args(["-e", &squat]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut cmd = victim.command(tend_bin());
    cmd.args(["up", "--units", env.units().to_str().unwrap()])
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("TEND_SOCKET")
        .current_dir(env.root());
    let tend = Tend::spawn(cmd, env.root(), "tend up as the victim");
    tend.wait_stderr("ready: ready");
    assert!(!tend.stderr().contains("Address already in use"), "{}", tend.dump());
    drop(tend);
    drop(cleanup);
}

// ---- D7: --socket and files that are not our socket ----

#[test]
fn socket_path_never_deletes_a_file_nor_another_supervisors_socket() {
    if skip_unless_root("socket_path_never_deletes_a_file_nor_another_supervisors_socket") {
        return;
    }
    let env = env();
    unit(&env, "a", &format!("{}stop_timeout: 300ms\n", sh("exec sleep 300")));
    let units = env.units();
    let precious = env.p("precious.txt");
    fs::write(&precious, "precious data\n").unwrap();
    let mut up = env.spawn(&["up", "--units", units.to_str().unwrap()], |c| {
        c.env("TEND_SOCKET", &precious);
    });
    assert_ne!(up.exit_code(T), 0, "{}", up.dump());
    assert!(up.stderr().contains("it is not a socket"), "{}", up.dump());
    assert_eq!(read(&precious), "precious data\n");
    // A's socket is removed (a tmp cleaner), B binds the same path; A's exit
    // must leave B's socket alone.
    let socket = env.p("t.sock");
    let spawn = |label: &str| {
        let mut cmd = std::process::Command::new(tend_bin());
        cmd.args(["up", "--units", units.to_str().unwrap()])
            .env("TEND_SOCKET", &socket)
            .current_dir(env.root());
        Tend::spawn(cmd, env.root(), label)
    };
    let mut a = spawn("tend A");
    a.wait_until(T, "A's socket", || socket.exists());
    fs::remove_file(&socket).unwrap();
    let mut b = spawn("tend B");
    b.wait_until(T, "B's socket", || socket.exists());
    a.signal(libc::SIGTERM);
    a.wait_exit(T);
    assert!(socket.exists(), "A removed B's socket on exit\n{}", a.dump());
    let status_of_b = || {
        let mut status = std::process::Command::new(tend_bin());
        status.args(["status"]).env("TEND_SOCKET", &socket);
        run_cmd(status, "tend status (B)")
    };
    // B answers there (its service may still be starting: polled).
    b.wait_until(T, "B to answer `tend status` on its socket", || status_of_b().code == 0);
    b.signal(libc::SIGTERM);
    b.wait_exit(T);
    assert!(!socket.exists(), "B removes its own socket");
}

// ---- D14: --socket-group and a folder that keeps the group out ----

#[test]
fn socket_group_gets_through_the_runtime_folder_or_is_told_why_not() {
    if skip_unless_root("socket_group_gets_through_the_runtime_folder_or_is_told_why_not") {
        return;
    }
    let group = TestGroup::new();
    let owner = TestUser::with_groups(&[&group.name]);
    let member = TestUser::with_groups(&[&group.name]);
    let env = env();
    unit(&env, "a", &format!("{}stop_timeout: 300ms\n", sh("exec sleep 300")));
    // The default folder, left 0700 by an earlier run without the flag:
    // tend (its owner) opens it to the group.
    let dir = std::path::PathBuf::from(format!("/tmp/tend-{}", owner.uid));
    let _cleanup = RemoveOnDrop(vec![dir.clone()]);
    let out = owner.command("mkdir").args(["-m", "700"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut cmd = owner.command(tend_bin());
    cmd.args(["up", "--units", env.units().to_str().unwrap(), "--socket-group", &group.name])
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("TEND_SOCKET")
        .current_dir(env.root());
    let tend = Tend::spawn(cmd, env.root(), "tend up as the owner, default socket");
    let socket = dir.join("tend.sock");
    let member_status = || {
        let mut status = member.command(tend_bin());
        status.args(["status", "--socket"]).arg(&socket);
        run_cmd(status, "tend status as a group member")
    };
    // Polled: the socket gets its group mode just after it appears, and
    // the service is `starting` for a moment.
    tend.wait_until(T, "a group member's `tend status` to succeed", || member_status().code == 0);
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(&dir).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.gid()), (0o750, group.gid), "{}", tend.dump());
    drop(tend);
    // An explicit path whose folder keeps the group out: a warning.
    let closed = env.p("closed");
    fs::create_dir(&closed).unwrap();
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
    let sock = closed.join("tend.sock");
    let mut tend =
        env.spawn(&["up", "--units", env.units().to_str().unwrap(), "--socket-group", &group.name], |c| {
            c.env("TEND_SOCKET", &sock);
        });
    // Waited for to its end: the start of the line can be read before the
    // rest of it (it failed so under load, cut after "members of group ").
    tend.wait_stderr(&format!("its folder {} is mode 0700", closed.display()));
    assert!(tend.stderr().contains("--socket-group: members of group"), "{}", tend.dump());
    tend.signal(libc::SIGTERM);
    tend.wait_exit(T);
}

// ---- D8 and D9: the notify socket ----

/// Perl: send argv[0] (with `\n` for newlines) to NOTIFY_SOCKET, then stay a moment.
const NOTIFY_SEND: &str = r#"
use Socket;
my $p = $ENV{NOTIFY_SOCKET} or die "no NOTIFY_SOCKET\n";
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
my $m = $ARGV[0]; $m =~ s/\\n/\n/g;
send($s, $m, 0, pack_sockaddr_un($p)) or die "send: $!\n";
sleep 2;
"#;

#[test]
fn one_service_cannot_take_over_anothers_notifications_with_mainpid() {
    if skip_unless_root("one_service_cannot_take_over_anothers_notifications_with_mainpid") {
        return;
    }
    let env = env();
    let send = env.p("send.pl");
    fs::write(&send, NOTIFY_SEND).unwrap();
    let bbb_pid = env.p("bbb.pid");
    let sent = env.p("aaa.sent");
    let aaa = format!(
        "while [ ! -s {p} ]; do sleep 0.01; done\nperl {send} \"READY=1\\nMAINPID=$(cat {p})\"\ntouch {sent}\nexec sleep 300",
        p = bbb_pid.display(),
        send = send.display(),
        sent = sent.display()
    );
    let bbb = format!(
        "echo $$ > {p}\nwhile [ ! -e {sent} ]; do sleep 0.01; done\nperl {send} \"READY=1\\nSTATUS=bbb-marker\"\nexec sleep 300",
        p = bbb_pid.display(),
        send = send.display(),
        sent = sent.display()
    );
    unit(&env, "aaa", &format!("{}type: notify\nstop_timeout: 300ms\n", sh(&aaa)));
    unit(&env, "bbb", &format!("{}type: notify\nstart_timeout: 4s\nstop_timeout: 300ms\n", sh(&bbb)));
    let mut tend = env.up();
    tend.wait_stderr("bbb: ready");
    tend.wait_stderr("aaa: ignored MAINPID=");
    assert!(tend.stderr().contains("not a process of this service"), "{}", tend.dump());
    let bbb_status = svc(&env, "bbb");
    assert_eq!(bbb_status["state"], "ready", "{bbb_status}\n{}", tend.dump());
    assert_eq!(bbb_status["status_text"], "bbb-marker", "{bbb_status}");
    assert_ne!(svc(&env, "aaa")["status_text"], "bbb-marker");
    shutdown(&env, &mut tend);
}

#[test]
fn a_flood_of_stray_notify_datagrams_costs_a_few_log_lines() {
    if skip_unless_root("a_flood_of_stray_notify_datagrams_costs_a_few_log_lines") {
        return;
    }
    let user = TestUser::new();
    let env = env();
    let path_file = env.p("notify-path");
    unit(
        &env,
        "n",
        &format!(
            "{}type: notify\nstop_timeout: 300ms\n",
            sh(&format!("{}\nexec sleep 300", put("echo $NOTIFY_SOCKET", &path_file)))
        ),
    );
    let mut tend = env.up();
    let socket = env.await_file(&tend, "notify-path").trim().to_string();
    let flood = format!(
        "use Socket; socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die; my $a = pack_sockaddr_un('{socket}'); \
         for (1..20000) {{ send($s, \"READY=1\", 0, $a); }} print \"done\\n\";"
    );
    let out = user.command("perl").args(["-e", &flood]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("done"), "{out:?}");
    // Once tend answers a request, it has read what was queued before it.
    wait_socket(&env, &tend);
    tend.wait_until(T, "the flood to be read", || {
        let (_, list) = status_json(&env, &[]);
        !list.is_empty() && tend.stderr().contains("ignored a notify message")
    });
    let lines = tend.stderr().lines().filter(|l| l.contains("ignored a notify message")).count();
    assert!(lines <= 10, "{lines} log lines for a flood of stray datagrams\n{}", tend.dump());
    shutdown(&env, &mut tend);
}

// ---- D13: a client whose stdout is closed or full ----

/// Run `tend ARGS` (client of `env`) with stdout on `stdout`; (status, stderr).
fn with_stdout(env: &Env, args: &[&str], stdout: std::process::Stdio) -> (i32, String) {
    let out = std::process::Command::new(tend_bin())
        .args(args)
        .env("TEND_SOCKET", env.socket())
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A pipe whose reader is already gone: writing to it gives EPIPE.
fn broken_pipe() -> std::process::Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    use std::os::fd::FromRawFd;
    // SAFETY: both descriptors were just made and are owned here only.
    let (read, write) =
        unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    std::process::Stdio::from(write)
}

#[test]
fn clients_exit_with_a_status_not_a_panic_when_stdout_is_closed_or_full() {
    if skip_unless_root("clients_exit_with_a_status_not_a_panic_when_stdout_is_closed_or_full") {
        return;
    }
    let env = env();
    unit(&env, "a", &format!("{}stop_timeout: 300ms\n", sh("exec sleep 300")));
    let mut tend = env.up();
    wait_running(&env, &tend, &["a"]);
    let units = env.units();
    let full = || std::process::Stdio::from(fs::OpenOptions::new().write(true).open("/dev/full").unwrap());
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["restart", "a"],
        vec!["signal", "CONT", "a"],
        vec!["reload"],
        vec!["check", units.to_str().unwrap()],
    ] {
        let (code, err) = with_stdout(&env, &args, full());
        assert_eq!(code, 1, "tend {args:?} > /dev/full: {err}");
        assert!(err.contains("cannot write to standard output: No space left on device"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let (code, err) = with_stdout(&env, &args, broken_pipe());
        assert_eq!(code, 141, "tend {args:?} | (closed): {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    shutdown(&env, &mut tend);
}

// ---- D5: one control client must not stall the loop ----

/// `VmHWM` or `VmRSS` of a process, in KiB.
fn vm_kib(pid: i32, key: &str) -> u64 {
    read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().strip_suffix(" kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} for pid {pid}"))
}

/// Perl: connect to ARGV[0] and write "x\n" lines as fast as tend takes
/// them, reconnecting when closed, for ARGV[1] seconds; never read.
const FLOODER: &str = r#"
use IO::Socket::UNIX;
$SIG{PIPE} = 'IGNORE';
my ($path, $secs) = @ARGV;
my $end = time + $secs;
my $chunk = "x\n" x 65536;
my ($sent, $said) = (0, 0);
while (time < $end) {
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path) or next;
    $s->blocking(0);
    while (time < $end) {
        my $n = syswrite($s, $chunk);
        if (!defined $n) { last unless $!{EAGAIN}; select(undef, undef, undef, 0.001); next; }
        $sent += $n;
        if (!$said && $sent > 65536) { $| = 1; print "flooding\n"; $said = 1; }
    }
}
"#;

/// `tend up` with `units`, stdout to /dev/null, through `sh -c` (for ulimit).
fn up_via_sh(env: &Env, prefix: &str) -> Tend {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prefix} exec {} up --units {} > /dev/null", tend_bin(), env.units().display()))
        .env("TEND_SOCKET", env.socket())
        .current_dir(env.root());
    Tend::spawn(cmd, env.root(), "tend up (via sh)")
}

#[test]
fn a_pipelined_flood_neither_delays_a_restart_nor_grows_memory() {
    if skip_unless_root("a_pipelined_flood_neither_delays_a_restart_nor_grows_memory") {
        return;
    }
    let env = env();
    let started = env.p("started");
    unit(
        &env,
        "victim",
        &format!(
            "{}restart: always\nrestart_delay: 100ms\nstop_timeout: 300ms\n",
            sh(&format!("{}\nexec sleep 300", put("date +%s%N", &started)))
        ),
    );
    let tend = up_via_sh(&env, "");
    wait_running(&env, &tend, &["victim"]);
    let first = env.await_file(&tend, "started");
    let flood = env.p("flood.pl");
    fs::write(&flood, FLOODER).unwrap();
    let flooders: Vec<Tend> = (0..2)
        .map(|i| {
            let mut cmd = std::process::Command::new("perl");
            cmd.arg(&flood).arg(env.socket()).arg("8");
            Tend::spawn(cmd, env.root(), &format!("flooder {i}"))
        })
        .collect();
    // Let the flood build up, then crash the service.
    let pid = pid_of(&status_list(&env), "victim");
    for flooder in &flooders {
        flooder.wait_until(T, "the flood to be under way", || flooder.stdout().contains("flooding"));
    }
    let killed_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    kill(pid, libc::SIGKILL);
    tend.wait_until(Duration::from_secs(30), "the victim to be started again", || {
        let now = read(&started);
        !now.is_empty() && now != first
    });
    let restarted_at: u128 = read(&started).trim().parse().unwrap();
    let took = Duration::from_nanos((restarted_at - killed_at) as u64);
    assert!(
        took < Duration::from_secs(1),
        "the restart took {took:?} during the flood (restart_delay 100ms)"
    );
    let peak = vm_kib(tend.pid, "VmHWM");
    assert!(peak < 64 * 1024, "tend's peak RSS was {peak} KiB during the flood");
    // And it still answers.
    // It answers (exit 0 once every service is up again: polled).
    tend.wait_until(T, "`tend status` to answer 0", || ctl(&env, &["status"]).code == 0);
    drop(flooders);
}

/// Perl: open ARGV[1] connections to ARGV[0], say how many, and hold them.
const HOLDER: &str = r#"
use IO::Socket::UNIX;
my ($path, $n) = @ARGV;
my @held;
for (1..$n) { my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path); push @held, $s if $s; }
$| = 1;
print scalar(@held), " connected\n";
sleep 300;
"#;

#[test]
fn idle_connections_cannot_take_the_descriptors_a_restart_needs() {
    if skip_unless_root("idle_connections_cannot_take_the_descriptors_a_restart_needs") {
        return;
    }
    let env = env();
    unit(
        &env,
        "victim",
        &format!("{}restart: always\nrestart_delay: 100ms\nstop_timeout: 300ms\n", sh("exec sleep 300")),
    );
    // The default systemd soft limit, as hard limit too: nothing to raise.
    let tend = up_via_sh(&env, "ulimit -n 1024;");
    wait_running(&env, &tend, &["victim"]);
    let holder = env.p("hold.pl");
    fs::write(&holder, HOLDER).unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "ulimit -n 4096; exec perl {} {} 1100",
        holder.display(),
        env.socket().display()
    ));
    let held = Tend::spawn(cmd, env.root(), "1100 idle connections");
    held.wait_until(T, "the holder to connect", || held.stdout().contains("connected"));
    let pid = pid_of(&status_list(&env), "victim");
    kill(pid, libc::SIGKILL);
    tend.wait_until(T, "the victim to run again with a new pid", || {
        let (state, new) = state_of(&env, "victim");
        state == "running" && new.is_some_and(|p| p != pid)
    });
    assert!(!tend.stderr().contains("Too many open files"), "{}", tend.dump());
    // People still get through: the longest-idle connection makes room
    // (the status calls above did too).
    // It answers (exit 0 once every service is up again: polled).
    tend.wait_until(T, "`tend status` to answer 0", || ctl(&env, &["status"]).code == 0);
    let fds = fs::read_dir(format!("/proc/{}/fd", tend.pid)).unwrap().count();
    assert!(fds < 1024 - 100, "tend holds {fds} descriptors under a limit of 1024\n{}", tend.dump());
    drop(held);
}

#[test]
fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    if skip_unless_root("a_connection_that_sends_nothing_is_closed_after_the_idle_timeout") {
        return;
    }
    let env = env();
    unit(&env, "a", &format!("{}stop_timeout: 300ms\n", sh("exec sleep 300")));
    let mut tend = env.up();
    wait_socket(&env, &tend);
    use std::io::Read;
    let mut silent = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = String::new();
    silent.read_to_string(&mut got).unwrap();
    assert!(got.contains("\"code\":\"idle\""), "{got}");
    shutdown(&env, &mut tend);
}

/// Perl: ARGV[1] connections that ask to follow every log and never read.
const FOLLOWERS: &str = r#"
use IO::Socket::UNIX; use Socket;
my ($path, $n) = @ARGV;
my @held;
for (1..$n) {
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path) or next;
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
    print $s '{"v":1,"cmd":"logs","follow":true,"lines":0}' . "\n";
    push @held, $s;
}
$| = 1;
print scalar(@held), " following\n";
sleep 300;
"#;

#[test]
fn followers_that_stop_reading_cost_bounded_memory() {
    if skip_unless_root("followers_that_stop_reading_cost_bounded_memory") {
        return;
    }
    let env = env();
    unit(
        &env,
        "chatty",
        &format!("{}stop_timeout: 300ms\n", sh("while :; do echo 0123456789012345678901234567890123456789012345678901234567890123456789; done")),
    );
    let tend = up_via_sh(&env, "");
    wait_running(&env, &tend, &["chatty"]);
    let script = env.p("followers.pl");
    fs::write(&script, FOLLOWERS).unwrap();
    let mut cmd = std::process::Command::new("perl");
    cmd.arg(&script).arg(env.socket()).arg("150");
    let followers = Tend::spawn(cmd, env.root(), "150 followers that never read");
    followers.wait_until(T, "the followers to connect", || followers.stdout().contains("following"));
    let mut peak = 0;
    assert_stays(Duration::from_secs(4), "tend's RSS under 96 MiB", || {
        peak = peak.max(vm_kib(tend.pid, "VmRSS"));
        peak < 96 * 1024
    });
    eprintln!("tend's RSS with 150 followers that never read: at most {peak} KiB");
    // It answers (exit 0 once every service is up again: polled).
    tend.wait_until(T, "`tend status` to answer 0", || ctl(&env, &["status"]).code == 0);
    drop(followers);
}

// ---- D6: kill -9 of tend, and what it leaves ----

/// Start `tend up` for `env`, wait for the pid files, SIGKILL tend only
/// (not its group), and return the pids that survived it.
fn kill_tend_and_collect_survivors(tend: &mut Tend, env: &Env, files: &[&str]) -> Vec<i32> {
    let pids: Vec<i32> = files.iter().map(|f| env.await_pid(tend, f)).collect();
    kill(tend.pid, libc::SIGKILL);
    tend.wait_exit(T);
    // None of these gets the parent-death signal: grandchildren, a daemon
    // in its own session, a program with file capabilities (exec clears it).
    pids.into_iter().filter(|p| !is_gone(*p)).collect()
}

#[test]
fn the_next_tend_kills_what_a_killed_tend_left_in_its_cgroups() {
    if skip_unless_root("the_next_tend_kills_what_a_killed_tend_left_in_its_cgroups") {
        return;
    }
    let env = env();
    let capsleep = env.p("capsleep");
    fs::copy("/bin/sleep", &capsleep).unwrap();
    let setcap = std::process::Command::new("setcap").arg("cap_net_raw+ep").arg(&capsleep).output();
    let with_caps = setcap.as_ref().is_ok_and(|o| o.status.success());
    if !with_caps && std::env::var_os("CI").is_some() {
        panic!("setcap failed (libcap2-bin): {setcap:?}");
    }
    let p = |name: &str| env.p(name).display().to_string();
    unit(
        &env,
        "kids",
        &format!(
            "{}stop_timeout: 300ms\n",
            sh(&format!("sleep 100013 & echo $! > {}\nsleep 100014 & echo $! > {}\nwait", p("k1"), p("k2")))
        ),
    );
    unit(
        &env,
        "daemon",
        &format!(
            "{}stop_timeout: 300ms\n",
            sh(&format!(
                "setsid sh -c 'echo $$ > {}; exec sleep 100015' < /dev/null > /dev/null 2>&1 &\nexec sleep 100016",
                p("d1")
            ))
        ),
    );
    let mut files = vec!["k1", "k2", "d1"];
    if with_caps {
        unit(
            &env,
            "cap",
            &format!(
                "{}user: nobody\nstop_timeout: 300ms\n",
                sh(&format!("echo $$ > {}\nexec {} 100120", p("c1"), capsleep.display()))
            ),
        );
        files.push("c1");
    }
    let mut first = env.up();
    let survivors = kill_tend_and_collect_survivors(&mut first, &env, &files);
    assert!(survivors.len() >= 3, "the attack needs survivors: {survivors:?}");
    let old_pid = first.pid;
    for f in &files {
        fs::remove_file(env.p(f)).unwrap();
    }
    let mut second = env.up();
    second.wait_stderr(&format!("left by a previous tend (pid {old_pid})"));
    let line = second.stderr().lines().find(|l| l.contains("left by a previous tend")).unwrap().to_string();
    let killed: usize =
        line.split("killed ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(killed >= survivors.len(), "{line} but {} survived: {survivors:?}", survivors.len());
    for pid in &survivors {
        wait_gone(*pid, T, "a process left by the killed tend");
    }
    // And each service runs once: the new copies, nothing of the old ones.
    for f in &files {
        env.await_pid(&second, f);
    }
    shutdown(&env, &mut second);
}

#[test]
fn without_cgroups_the_next_tend_kills_the_process_groups_a_killed_tend_left() {
    if skip_unless_root("without_cgroups_the_next_tend_kills_the_process_groups_a_killed_tend_left") {
        return;
    }
    // A tend that is not root has no cgroups here: process groups only.
    let user = TestUser::new();
    let env = env();
    let _cleanup = RemoveOnDrop(vec![format!("/tmp/tend-{}", user.uid).into()]);
    let p = |name: &str| env.p(name).display().to_string();
    unit(
        &env,
        "kids",
        &format!(
            "{}stop_timeout: 300ms\n",
            sh(&format!("sleep 100013 & echo $! > {}\nsleep 100014 & echo $! > {}\nwait", p("k1"), p("k2")))
        ),
    );
    let spawn = || {
        let mut cmd = user.command(tend_bin());
        cmd.args(["up", "--units", env.units().to_str().unwrap()])
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("TEND_SOCKET")
            .current_dir(env.root());
        Tend::spawn(cmd, env.root(), "tend up as a user")
    };
    let mut first = spawn();
    let leader = first.started_pid("kids");
    let survivors = kill_tend_and_collect_survivors(&mut first, &env, &["k1", "k2"]);
    assert_eq!(survivors.len(), 2, "grandchildren survive a killed tend: {survivors:?}");
    // The leader itself gets the parent-death signal.
    wait_gone(leader, T, "the service's leader after tend was killed");
    let old_pid = first.pid;
    fs::remove_file(env.p("k1")).unwrap();
    fs::remove_file(env.p("k2")).unwrap();
    let second = spawn();
    second.wait_stderr(&format!("left by a previous tend (pid {old_pid})"));
    let line = second.stderr().lines().find(|l| l.contains("left by a previous tend")).unwrap().to_string();
    assert!(line.contains("killed 2 processes"), "{line}");
    for pid in &survivors {
        wait_gone(*pid, T, "a process left by the killed tend");
    }
    env.await_pid(&second, "k1");
    drop(second);
}

// ---- D3: the sandbox and /proc ----

/// The report's attack: from inside a sandbox with `read_only_paths: [/]`
/// and `inaccessible_paths`, go through /proc/PID/root of a process of the
/// same user outside the sandbox. Prints `via PID` lines when it works.
fn proc_root_attack(hidden: &Path, ro_file: &Path) -> String {
    format!(
        "echo \"direct: $(cat {hidden} 2>&1)\"\n\
         for p in /proc/[0-9]*; do\n\
           if cat $p/root{hidden} >/dev/null 2>&1; then\n\
             echo \"via $p: $(cat $p/root{hidden})\"\n\
             echo pwned-through-proc >> $p/root{ro} && echo \"via $p: wrote\"\n\
             break\n\
           fi\n\
         done\n\
         echo \"pids: $(ls -d /proc/[0-9]* | wc -l) self: $$\"\n\
         echo END\n\
         exec sleep 300",
        hidden = hidden.display(),
        ro = ro_file.display()
    )
}

#[test]
fn private_pids_stops_a_same_user_neighbour_from_opening_the_sandbox_through_proc() {
    if skip_unless_root("private_pids_stops_a_same_user_neighbour_from_opening_the_sandbox_through_proc") {
        return;
    }
    let user = TestUser::new();
    let env = env();
    let secret_dir = env.p("secret");
    fs::create_dir(&secret_dir).unwrap();
    let hidden = secret_dir.join("hidden.txt");
    fs::write(&hidden, "hidden\n").unwrap();
    chown(&hidden, user.uid, user.gid);
    let ro_file = env.p("userfile");
    let ro_exposed = env.p("userfile-exposed");
    for file in [&ro_file, &ro_exposed] {
        fs::write(file, "original\n").unwrap();
        chown(file, user.uid, user.gid);
    }
    let sandbox = |extra: &str| {
        format!(
            "user: {}\nstop_timeout: 300ms\nsandbox:\n  no_new_privileges: true\n  capabilities: []\n  read_only_paths: [/]\n  inaccessible_paths: [{}]\n{extra}",
            user.name,
            secret_dir.display()
        )
    };
    let attack = proc_root_attack(&hidden, &ro_file);
    let attack_exposed = proc_root_attack(&hidden, &ro_exposed);
    unit(&env, "neighbor", &format!("{}user: {}\nstop_timeout: 300ms\n", sh("exec sleep 300"), user.name));
    // What the README warns about: the rules alone do not stop it…
    unit(
        &env,
        "exposed",
        &format!(
            "{}{}",
            sh(&format!("while [ ! -e {} ]; do sleep 0.05; done\n{attack_exposed}", env.p("go").display())),
            sandbox("")
        ),
    );
    // …and private_pids does.
    unit(
        &env,
        "jailed",
        &format!(
            "{}{}",
            sh(&format!("while [ ! -e {} ]; do sleep 0.05; done\n{attack}", env.p("go").display())),
            sandbox("  private_pids: true\n")
        ),
    );
    let mut tend = env.up();
    wait_running(&env, &tend, &["neighbor", "exposed", "jailed"]);
    fs::write(env.p("go"), "").unwrap();
    let report = |name: &str| -> Vec<String> {
        tend.wait_until(T, &format!("{name} to report"), || tend.lines_of(name).iter().any(|l| l == "END"));
        tend.lines_of(name)
    };
    let jailed = report("jailed");
    assert!(jailed.iter().any(|l| l.starts_with("direct: cat:")), "{jailed:?}");
    assert!(
        !jailed.iter().any(|l| l.starts_with("via ")),
        "the sandbox was opened through /proc: {jailed:?}"
    );
    assert!(jailed.iter().any(|l| l.ends_with("self: 2")), "the service's main process is PID 2: {jailed:?}");
    assert_eq!(read(&ro_file), "original\n");
    let exposed = report("exposed");
    assert!(
        exposed.iter().any(|l| l.starts_with("via ") && l.ends_with(": hidden")),
        "without private_pids a same-user neighbour exposes the hidden file (the caveat the README states): {exposed:?}"
    );
    // check --strict warns about the exposed one, not the jailed one.
    let mut check = env.spawn(&["check", "--strict", env.units().to_str().unwrap()], |_| {});
    check.exit_code(T);
    let warnings = check.stderr();
    assert!(
        warnings.lines().any(|l| l.contains("exposed.yaml") && l.contains("/proc/PID/root")),
        "{warnings}"
    );
    assert!(
        !warnings.lines().any(|l| l.contains("jailed.yaml") && l.contains("/proc/PID/root")),
        "{warnings}"
    );
    shutdown(&env, &mut tend);
}

#[test]
fn a_private_pid_namespace_reaps_forwards_signals_and_ends_with_its_service() {
    if skip_unless_root("a_private_pid_namespace_reaps_forwards_signals_and_ends_with_its_service") {
        return;
    }
    let env = env();
    // Orphans that exit (reaped by PID 1 of the namespace: no zombie), a
    // daemon that would outlive the service, and a plain `sleep` as main
    // process (no signal handler: SIGTERM reaches it through the reaper).
    let script = "for i in 1 2 3 4 5; do (sh -c 'sleep 0.01' &) ; done\n\
                  setsid sleep 100777 < /dev/null > /dev/null 2>&1 &\n\
                  n=0; while [ $n -lt 200 ]; do z=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == \"Z\"' | wc -l); [ $z -eq 0 ] && break; n=$((n+1)); sleep 0.02; done\n\
                  echo \"zombies: $z\"\n\
                  echo END\n\
                  exec sleep 300";
    unit(&env, "ns", &format!("{}stop_timeout: 60s\nsandbox:\n  private_pids: true\n", sh(script)));
    unit(&env, "code", &format!("{}restart: never\nsandbox:\n  private_pids: true\n", sh("exit 3")));
    let mut tend = env.up();
    tend.wait_until(T, "ns to report", || tend.lines_of("ns").iter().any(|l| l == "END"));
    assert!(tend.lines_of("ns").iter().any(|l| l == "zombies: 0"), "{:?}", tend.lines_of("ns"));
    tend.wait_stderr("code: exited with status 3");
    let leader = tend.started_pid("ns");
    // The daemon was forked before END, but it may not have exec'd `sleep`
    // yet (it may still be `sh` or `setsid`): poll for it.
    let find_daemon = || {
        descendants(leader)
            .into_iter()
            .find(|p| read(format!("/proc/{p}/cmdline")).starts_with("sleep\u{0}100777"))
    };
    let mut daemon = None;
    tend.wait_until(T, "the daemon in the namespace", || {
        daemon = find_daemon();
        daemon.is_some()
    });
    let daemon = daemon.expect("the daemon in the namespace");
    // A stop_timeout of 60s: stopped well before, so SIGTERM reached `sleep`.
    let out = ctl(&env, &["stop", "ns"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    assert!(!tend.stderr().contains("did not stop in 60s"), "{}", tend.dump());
    wait_gone(daemon, T, "the daemon in the namespace after its service stopped");
    shutdown(&env, &mut tend);
}

#[test]
fn protect_proc_invisible_hides_other_users_processes() {
    if skip_unless_root("protect_proc_invisible_hides_other_users_processes") {
        return;
    }
    let user = TestUser::new();
    let other = TestUser::new();
    let env = env();
    unit(&env, "other", &format!("{}user: {}\nstop_timeout: 300ms\n", sh("exec sleep 300"), other.name));
    unit(&env, "mine", &format!("{}user: {}\nstop_timeout: 300ms\n", sh("exec sleep 300"), user.name));
    let pids = env.p("pids");
    let script = format!("while [ ! -s {p} ]; do sleep 0.05; done\nfor p in $(cat {p}); do [ -d /proc/$p ] && echo \"sees $p\" || echo \"hidden $p\"; done\necho END\nexec sleep 300", p = pids.display());
    unit(
        &env,
        "watcher",
        &format!(
            "{}user: {}\nstop_timeout: 300ms\nsandbox:\n  protect_proc: invisible\n",
            sh(&script),
            user.name
        ),
    );
    let mut tend = env.up();
    let list = wait_running(&env, &tend, &["other", "mine", "watcher"]);
    let (other_pid, mine_pid) = (pid_of(&list, "other"), pid_of(&list, "mine"));
    fs::write(&pids, format!("{} {} {}", tend.pid, other_pid, mine_pid)).unwrap();
    tend.wait_until(T, "watcher to report", || tend.lines_of("watcher").iter().any(|l| l == "END"));
    let seen = tend.lines_of("watcher");
    assert!(seen.contains(&format!("hidden {}", tend.pid)), "root's tend is visible: {seen:?}");
    assert!(seen.contains(&format!("hidden {other_pid}")), "another user's service is visible: {seen:?}");
    assert!(seen.contains(&format!("sees {mine_pid}")), "its own user's processes stay visible: {seen:?}");
    shutdown(&env, &mut tend);
}
