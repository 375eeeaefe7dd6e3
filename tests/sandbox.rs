//! Issue 5, sandboxing and resource control through the real binary, observed
//! from inside real services: capability sets and no_new_privs in
//! /proc/self/status, binding a privileged port with and without
//! NET_BIND_SERVICE, read-only / read-write / inaccessible paths, a private
//! /tmp, a private network with only `lo`, a private hostname, `pids_max`
//! against a fork bomb, `memory_max` against a memory hog (OOM kill reported),
//! a double-forked daemon killed by `tend stop`, StrictModes on unit files,
//! cgroup limits really written, memory/CPU use in `status --json`, and
//! nothing left mounted or in the cgroup trees after tend exits.
//!
//! Every test needs root (namespaces, cgroups, capabilities): without it,
//! each prints `SKIPPED (needs root): NAME` and returns.
//!
//! Services report on their stdout, which tend prints as `NAME | LINE`: that
//! works whatever the service's mount namespace hides (a private /tmp hides
//! the test's temp dir).

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

// ---- helpers of this file (shared ones are in tests/common) ----

/// A fresh Env whose units folder only root may write (tend, as root,
/// refuses a folder others can write, like sshd's StrictModes).
fn env() -> Env {
    let env = Env::new();
    fs::set_permissions(env.units(), fs::Permissions::from_mode(0o755)).unwrap();
    env
}

/// Write a unit and make sure its mode is 0644 whatever the umask.
fn unit(env: &Env, name: &str, yaml: &str) {
    env.unit(name, yaml);
    let path = env.units().join(format!("{name}.yaml"));
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

/// Wait until service `name` printed the line `END`; returns its lines before it.
fn report(tend: &Tend, name: &str) -> Vec<String> {
    tend.wait_until(T, &format!("{name} to print its report (a line END)"), || {
        tend.lines_of(name).iter().any(|l| l == "END")
    });
    tend.lines_of(name).into_iter().take_while(|l| l != "END").collect()
}

/// The value after `KEY ` or `KEY:` in a report, e.g. `field(&r, "CapBnd:")`.
fn field(report: &[String], key: &str) -> Option<String> {
    report.iter().find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

fn show(report: &[String]) -> String {
    report.join("\n")
}

/// A capability mask from /proc/self/status (hex).
fn cap_mask(report: &[String], key: &str) -> u64 {
    let v = field(report, key).unwrap_or_else(|| panic!("no {key} in report:\n{}", show(report)));
    u64::from_str_radix(&v, 16).unwrap_or_else(|_| panic!("{key} is not hex: {v:?}"))
}

const CAP_NET_BIND_SERVICE: u64 = 1 << 10;

/// Graceful shutdown (SIGTERM), bounded; tend must exit 0.
fn shutdown(tend: &mut Tend) {
    shutdown_with(tend, 0);
}

/// Graceful shutdown (SIGTERM), bounded; tend must exit `code` (1 when a
/// service had to be killed, see src/exit.rs).
fn shutdown_with(tend: &mut Tend, code: i32) {
    tend.signal(libc::SIGTERM);
    let st = tend.wait_exit(T);
    assert_eq!(st.code(), Some(code), "tend's exit status after SIGTERM\n{}", tend.dump());
}

/// /proc/self/status lines the capability tests look at, then END.
const CAP_REPORT: &str =
    "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status\necho END\nexec sleep 300";

// ---- cgroups: where a process's cgroups are in this test's mount namespace ----

/// One cgroup mount: (root in its hierarchy, mount point, fstype, super options).
struct CgMount {
    root: String,
    point: PathBuf,
    v2: bool,
    controllers: Vec<String>,
}

fn cgroup_mounts() -> Vec<CgMount> {
    read("/proc/self/mountinfo")
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let fstype = *right.first()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(CgMount {
                root: left.get(3)?.to_string(),
                point: PathBuf::from(left.get(4)?),
                v2: fstype == "cgroup2",
                controllers: right
                    .get(2)
                    .map(|o| o.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A process's cgroup directories from the lines of its /proc/PID/cgroup:
/// (v2 directory, [(v1 controllers, directory)]).
fn cgroup_dirs(proc_cgroup: &[String]) -> (Option<PathBuf>, Vec<(Vec<String>, PathBuf)>) {
    let mounts = cgroup_mounts();
    let mut v2 = None;
    let mut v1 = Vec::new();
    for line in proc_cgroup {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let ctrls: Vec<String> = ctrl.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect();
        let mount = if ctrl.is_empty() {
            mounts.iter().find(|m| m.v2)
        } else {
            mounts.iter().find(|m| !m.v2 && ctrls.iter().all(|c| m.controllers.contains(c)))
        };
        let Some(m) = mount else { continue };
        let rel = path.strip_prefix(m.root.as_str()).unwrap_or(path).trim_start_matches('/');
        let dir = if rel.is_empty() { m.point.clone() } else { m.point.join(rel) };
        if ctrl.is_empty() {
            v2 = Some(dir);
        } else {
            v1.push((ctrls, dir));
        }
    }
    (v2, v1)
}

// ---- capabilities and no_new_privs ----

#[test]
fn root_service_keeps_only_the_listed_capabilities_and_no_new_privs() {
    if skip_unless_root("root_service_keeps_only_the_listed_capabilities_and_no_new_privs") {
        return;
    }
    let env = env();
    unit(
        &env,
        "rootcap",
        &format!(
            "{}stop_timeout: 300ms\nsandbox:\n  no_new_privileges: true\n  capabilities: [NET_BIND_SERVICE]\n",
            sh(CAP_REPORT)
        ),
    );
    // The same service without a sandbox: full root capabilities, no NNP
    // (so the assertions above can tell the sandbox did something).
    unit(&env, "plain", &format!("{}stop_timeout: 300ms\n", sh(CAP_REPORT)));
    let mut tend = env.up();
    let r = report(&tend, "rootcap");
    let plain = report(&tend, "plain");
    let d = || format!("rootcap report:\n{}\nplain report:\n{}\n{}", show(&r), show(&plain), tend.dump());
    for key in ["CapBnd:", "CapPrm:", "CapEff:"] {
        assert_eq!(cap_mask(&r, key), CAP_NET_BIND_SERVICE, "{key} must be NET_BIND_SERVICE only\n{}", d());
    }
    assert_eq!(cap_mask(&r, "CapInh:") & !CAP_NET_BIND_SERVICE, 0, "CapInh beyond the listed one\n{}", d());
    assert_eq!(cap_mask(&r, "CapAmb:"), 0, "a root service needs no ambient capabilities\n{}", d());
    assert_eq!(field(&r, "NoNewPrivs:").as_deref(), Some("1"), "no_new_privileges: true\n{}", d());
    // Control: the unsandboxed root service has many more and no NNP.
    assert!(cap_mask(&plain, "CapEff:").count_ones() > 10, "unsandboxed root service\n{}", d());
    assert_eq!(field(&plain, "NoNewPrivs:").as_deref(), Some("0"), "{}", d());
    shutdown(&mut tend);
}

#[test]
fn non_root_service_gets_the_listed_capabilities_as_ambient() {
    if skip_unless_root("non_root_service_gets_the_listed_capabilities_as_ambient") {
        return;
    }
    let env = env();
    unit(
        &env,
        "nobodycap",
        &format!(
            "{}stop_timeout: 300ms\nuser: nobody\nsandbox:\n  capabilities: [NET_BIND_SERVICE]\n",
            sh(&format!("id -u\n{CAP_REPORT}"))
        ),
    );
    let mut tend = env.up();
    let r = report(&tend, "nobodycap");
    let d = || format!("report:\n{}\n{}", show(&r), tend.dump());
    assert_ne!(r.first().map(String::as_str), Some("0"), "the service must not run as root\n{}", d());
    for key in ["CapBnd:", "CapPrm:", "CapEff:", "CapAmb:"] {
        assert_eq!(cap_mask(&r, key), CAP_NET_BIND_SERVICE, "{key} must be NET_BIND_SERVICE only\n{}", d());
    }
    // no_new_privileges was not asked for.
    assert_eq!(field(&r, "NoNewPrivs:").as_deref(), Some("0"), "{}", d());
    shutdown(&mut tend);
}

/// Perl (perl-base is always there) binding 127.0.0.1:80 and saying how it went.
const BIND_80: &str = r#"cat /proc/sys/net/ipv4/ip_unprivileged_port_start | sed 's/^/unpriv /'
perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 80, Listen => 1, ReuseAddr => 1); print $s ? "bind bound\n" : "bind failed: $!\n"'
echo END
exec sleep 300"#;

#[test]
fn non_root_service_binds_port_80_only_with_net_bind_service() {
    if skip_unless_root("non_root_service_binds_port_80_only_with_net_bind_service") {
        return;
    }
    let env = env();
    // Each in its own network namespace: port 80 is free there whatever the
    // host (or a parallel test) listens on, and the two do not collide.
    unit(
        &env,
        "withcap",
        &format!(
            "{}stop_timeout: 300ms\nuser: nobody\nsandbox:\n  capabilities: [NET_BIND_SERVICE]\n  private_network: true\n",
            sh(BIND_80)
        ),
    );
    unit(
        &env,
        "nocap",
        &format!("{}stop_timeout: 300ms\nuser: nobody\nsandbox:\n  private_network: true\n", sh(BIND_80)),
    );
    let mut tend = env.up();
    let with = report(&tend, "withcap");
    let without = report(&tend, "nocap");
    let d = || format!("withcap:\n{}\nnocap:\n{}\n{}", show(&with), show(&without), tend.dump());
    for r in [&with, &without] {
        let start: u32 = field(r, "unpriv ").and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!(start > 80, "port 80 must be privileged in the service's namespace for this test\n{}", d());
    }
    assert_eq!(
        field(&with, "bind ").as_deref(),
        Some("bound"),
        "NET_BIND_SERVICE must allow port 80\n{}",
        d()
    );
    let denied = field(&without, "bind ").unwrap_or_default();
    assert!(
        denied.starts_with("failed") && denied.contains("Permission denied"),
        "without NET_BIND_SERVICE, nobody must not bind port 80\n{}",
        d()
    );
    shutdown(&mut tend);
}

// ---- filesystem rules ----

#[test]
fn read_only_read_write_and_inaccessible_paths_are_enforced() {
    if skip_unless_root("read_only_read_write_and_inaccessible_paths_are_enforced") {
        return;
    }
    let env = env();
    let rw = env.p("rw");
    let secret = env.p("secret");
    let secret_file = env.p("secret.txt");
    fs::create_dir(&rw).unwrap();
    fs::create_dir(&secret).unwrap();
    fs::write(secret.join("data"), "top secret\n").unwrap();
    fs::write(&secret_file, "also secret\n").unwrap();
    let etc_probe = PathBuf::from(format!("/etc/tend-sbx-probe-{}", std::process::id()));
    let ro_probe = env.p("ro-probe");
    let script = format!(
        r#"try() {{ if out=$("$@" 2>&1); then echo "ok"; else echo "err $out"; fi; }}
echo "etc $(try touch {etc})"
echo "ro $(try touch {ro})"
echo "rw $(try touch {rw}/written)"
echo "secretdir $(try cat {secret}/data)"
echo "secretls $(ls -A {secret} 2>&1 | tr '\n' ' ')"
echo "secretfile $(try cat {secret_file})"
echo END
exec sleep 300"#,
        etc = etc_probe.display(),
        ro = ro_probe.display(),
        rw = rw.display(),
        secret = secret.display(),
        secret_file = secret_file.display(),
    );
    unit(
        &env,
        "fs",
        &format!(
            "{}stop_timeout: 300ms\nsandbox:\n  read_only_paths: [/]\n  read_write_paths: [{}]\n  inaccessible_paths: [{}, {}]\n",
            sh(&script),
            rw.display(),
            secret.display(),
            secret_file.display()
        ),
    );
    // The same rules for a non-root service: the inaccessible directory
    // itself cannot be opened (mode 000 and no CAP_DAC_OVERRIDE).
    unit(
        &env,
        "fsnobody",
        &format!(
            "{}stop_timeout: 300ms\nuser: nobody\nsandbox:\n  read_only_paths: [/]\n  inaccessible_paths: [{}]\n",
            sh(&format!("echo \"ls $(ls -A {} 2>&1)\"\necho END\nexec sleep 300", secret.display())),
            secret.display()
        ),
    );
    let mut tend = env.up();
    let r = report(&tend, "fs");
    let nobody = report(&tend, "fsnobody");
    let nobody_ls = field(&nobody, "ls ").unwrap_or_default();
    assert!(
        nobody_ls.contains("Permission denied"),
        "a non-root service must not open an inaccessible directory\n{}\n{}",
        show(&nobody),
        tend.dump()
    );
    let etc_created = etc_probe.exists();
    if etc_created {
        let _ = fs::remove_file(&etc_probe);
    }
    let d = || format!("report:\n{}\n{}", show(&r), tend.dump());
    for key in ["etc ", "ro "] {
        let v = field(&r, key).unwrap_or_default();
        assert!(
            v.contains("Read-only file system"),
            "{key}: writing under a read-only path must fail with EROFS\n{}",
            d()
        );
    }
    assert!(!etc_created, "the service created {} on the host\n{}", etc_probe.display(), d());
    assert!(!ro_probe.exists(), "the service created {}\n{}", ro_probe.display(), d());
    assert_eq!(field(&r, "rw ").as_deref(), Some("ok"), "a read_write path must be writable\n{}", d());
    assert!(rw.join("written").exists(), "the write under the read_write path must reach the host\n{}", d());
    // A root service keeps CAP_DAC_OVERRIDE here, so it may open the empty
    // mode-000 directory put over an inaccessible one: what matters is that
    // nothing under it can be read or listed.
    let data = field(&r, "secretdir ").unwrap_or_default();
    assert!(
        data.starts_with("err") && !data.contains("top secret"),
        "a file under an inaccessible directory must not be readable, even by root\n{}",
        d()
    );
    let listing = field(&r, "secretls ").unwrap_or_default();
    assert!(!listing.contains("data"), "an inaccessible directory must not be listable\n{}", d());
    let file = field(&r, "secretfile ").unwrap_or_default();
    assert!(
        file.starts_with("err") && file.contains("Permission denied"),
        "an inaccessible file must not be readable, even by root\n{}",
        d()
    );
    // The rules live in the service's namespace only: the host still reads them.
    assert_eq!(read(secret.join("data")), "top secret\n");
    assert_eq!(read(&secret_file), "also secret\n");
    shutdown(&mut tend);
}

#[test]
fn private_tmp_is_private_and_empty() {
    if skip_unless_root("private_tmp_is_private_and_empty") {
        return;
    }
    let env = env();
    // Host-side markers: the temp dir itself is in /tmp; add one in /var/tmp.
    let var_marker = tempfile::Builder::new().prefix("tend-sbx-marker-").tempdir_in("/var/tmp").unwrap();
    let inside = format!("tend-sbx-inside-{}", std::process::id());
    let script = format!(
        r#"echo "tmpcount $(ls -A /tmp | wc -l)"
echo "vartmpcount $(ls -A /var/tmp | wc -l)"
if [ -e {root} ]; then echo "testdir visible"; else echo "testdir hidden"; fi
if touch /tmp/{inside} /var/tmp/{inside}; then echo "write ok"; else echo "write failed"; fi
echo END
exec sleep 300"#,
        root = env.root().display(),
    );
    unit(&env, "ptmp", &format!("{}stop_timeout: 300ms\nsandbox:\n  private_tmp: true\n", sh(&script)));
    let mut tend = env.up();
    let r = report(&tend, "ptmp");
    let d = || format!("report:\n{}\n{}", show(&r), tend.dump());
    assert!(fs::read_dir("/tmp").unwrap().count() > 0 && var_marker.path().exists(), "host markers");
    assert_eq!(field(&r, "tmpcount ").as_deref(), Some("0"), "/tmp must be empty\n{}", d());
    assert_eq!(field(&r, "vartmpcount ").as_deref(), Some("0"), "/var/tmp must be empty\n{}", d());
    assert_eq!(field(&r, "testdir ").as_deref(), Some("hidden"), "host /tmp must be hidden\n{}", d());
    assert_eq!(field(&r, "write ").as_deref(), Some("ok"), "the private /tmp must be writable\n{}", d());
    let leaked: Vec<PathBuf> = [Path::new("/tmp"), Path::new("/var/tmp")]
        .iter()
        .map(|d| d.join(&inside))
        .filter(|p| p.exists())
        .collect();
    for p in &leaked {
        let _ = fs::remove_file(p);
    }
    assert!(leaked.is_empty(), "files written in the private /tmp reached the host: {leaked:?}\n{}", d());
    shutdown(&mut tend);
}

// ---- network, hostname ----

#[test]
fn private_network_has_only_loopback_and_it_is_up() {
    if skip_unless_root("private_network_has_only_loopback_and_it_is_up") {
        return;
    }
    let env = env();
    let script = r#"echo "ifaces $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ')"
perl -MIO::Socket::INET -e '$l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 4711, Listen => 1, ReuseAddr => 1) or do { print "loopback nolisten $!\n"; exit }; $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => 4711, Timeout => 5); print $c ? "loopback up\n" : "loopback noconnect $!\n"'
echo END
exec sleep 300"#;
    unit(&env, "net", &format!("{}stop_timeout: 300ms\nsandbox:\n  private_network: true\n", sh(script)));
    let mut tend = env.up();
    let r = report(&tend, "net");
    let d = || format!("report:\n{}\n{}", show(&r), tend.dump());
    assert_eq!(field(&r, "ifaces ").as_deref(), Some("lo"), "only lo in a private network\n{}", d());
    assert_eq!(field(&r, "loopback ").as_deref(), Some("up"), "lo must be up\n{}", d());
    let host_ifaces = read("/proc/net/dev").lines().skip(2).count();
    if host_ifaces <= 1 {
        eprintln!("note: the host has only lo, so 'only lo' cannot tell the namespaces apart here");
    }
    shutdown(&mut tend);
}

#[test]
fn hostname_is_the_configured_one_and_the_host_keeps_its_own() {
    if skip_unless_root("hostname_is_the_configured_one_and_the_host_keeps_its_own") {
        return;
    }
    let host_before = read("/proc/sys/kernel/hostname").trim().to_string();
    let wanted = "tend-sbx-uts";
    assert_ne!(host_before, wanted, "pick another hostname for this test");
    let env = env();
    unit(
        &env,
        "uts",
        &format!(
            "{}stop_timeout: 300ms\nsandbox:\n  hostname: {wanted}\n",
            sh("echo \"hostname $(cat /proc/sys/kernel/hostname)\"\necho END\nexec sleep 300")
        ),
    );
    let mut tend = env.up();
    let r = report(&tend, "uts");
    let d = || format!("report:\n{}\n{}", show(&r), tend.dump());
    assert_eq!(field(&r, "hostname ").as_deref(), Some(wanted), "{}", d());
    assert_eq!(read("/proc/sys/kernel/hostname").trim(), host_before, "the host's hostname changed\n{}", d());
    shutdown(&mut tend);
}

// ---- resources ----

#[test]
fn fork_bomb_stops_at_pids_max_and_stop_kills_everything() {
    if skip_unless_root("fork_bomb_stops_at_pids_max_and_stop_kills_everything") {
        return;
    }
    let env = env();
    let script = r#"exec perl -e '$| = 1; my @k; for (1 .. 100) { my $p = fork; if (!defined $p) { print "forkerr $!\n"; last } if ($p == 0) { sleep 60; exit 0 } push @k, $p } print "forked ", scalar(@k), "\n"; print "kids @k\n"; print "END\n"; sleep 300'"#;
    unit(&env, "bomb", &format!("{}stop_timeout: 300ms\nresources:\n  pids_max: 20\n", sh(script)));
    let mut tend = env.up();
    let main = tend.started_pid("bomb");
    let r = report(&tend, "bomb");
    let kids: Vec<i32> =
        field(&r, "kids ").unwrap_or_default().split_whitespace().filter_map(|p| p.parse().ok()).collect();
    let d = || format!("report:\n{}\n{}", show(&r), tend.dump());
    let forked: usize = field(&r, "forked ").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
    assert!(forked < 20, "pids_max: 20 must stop the bomb below 20 forks, got {forked}\n{}", d());
    assert!(forked >= 10, "the service should fork up to its limit, got {forked}\n{}", d());
    assert!(
        field(&r, "forkerr ").is_some_and(|e| e.contains("Resource temporarily unavailable")),
        "fork must fail with EAGAIN at the limit\n{}",
        d()
    );
    // The host is fine: this test can still start processes.
    let ok = Command::new("true").status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "the host cannot start a process any more");
    let out = ctl(&env, &["stop", "bomb"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), d());
    for pid in kids.iter().copied().chain([main]) {
        wait_gone(pid, T, "a process of the fork bomb after tend stop");
    }
    shutdown(&mut tend);
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    if skip_unless_root("memory_hog_is_oom_killed_and_reported") {
        return;
    }
    let env = env();
    unit(
        &env,
        "hog",
        "command: [perl, -e, '$| = 1; print \"allocating\\n\"; $n = 200 * 1024 * 1024; $x = \"x\" x $n; print \"survived\\n\"; sleep 10']\n\
         restart: never\nstop_timeout: 300ms\nresources:\n  memory_max: 32M\n",
    );
    let mut tend = env.up();
    tend.wait_until(Duration::from_secs(20), "hog to be killed by the OOM killer", || {
        tend.stderr().contains("hog: killed by the OOM killer")
    });
    assert!(
        tend.stderr().contains("hog: killed by the OOM killer (memory_max 32M)"),
        "the event should name the limit\n{}",
        tend.dump()
    );
    let s = wait_status(&env, &tend, "hog", "reason to say OOM", |s| {
        s["reason"].as_str().is_some_and(|r| r.contains("killed by the OOM killer"))
    });
    assert_eq!(s["last_exit"]["signal"], "SIGKILL", "status: {s}\n{}", tend.dump());
    assert_eq!(s["last_exit"]["kind"], "oom", "status: {s}");
    assert!(tend.lines_of("hog").iter().any(|l| l == "allocating"), "{}", tend.dump());
    assert!(!tend.lines_of("hog").iter().any(|l| l == "survived"), "it got 200M under 32M\n{}", tend.dump());
    shutdown(&mut tend);
}

#[test]
fn double_forked_daemon_is_gone_after_tend_stop() {
    if skip_unless_root("double_forked_daemon_is_gone_after_tend_stop") {
        return;
    }
    let env = env();
    // The daemon leaves the process group and session (setsid in a
    // grandchild whose parent exits) and ignores SIGTERM and SIGHUP: only
    // the cgroup can find and kill it.
    let script = r#"( exec perl -MPOSIX -e '$| = 1; POSIX::setsid() or die "setsid: $!"; $SIG{TERM} = $SIG{HUP} = "IGNORE"; print "daemon $$\n"; sleep 300' & )
exec sleep 300"#;
    unit(&env, "forker", &format!("{}stop_timeout: 300ms\nresources:\n  pids_max: 50\n", sh(script)));
    let mut tend = env.up();
    let main = tend.started_pid("forker");
    tend.wait_until(T, "the daemon to report its pid", || {
        tend.lines_of("forker").iter().any(|l| l.starts_with("daemon "))
    });
    let daemon: i32 = field(&tend.lines_of("forker"), "daemon ").unwrap().parse().unwrap();
    let f = proc_stat_fields(daemon).unwrap_or_default();
    assert!(
        f.get(2).is_some_and(|pgrp| pgrp != &main.to_string()),
        "the daemon should have left the service's process group: {f:?}\n{}",
        tend.dump()
    );
    let out = ctl(&env, &["stop", "forker"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    wait_gone(main, T, "the service's main process after tend stop");
    // Bounded by T, then the helper kills it and fails the test.
    let start = Instant::now();
    while !is_gone(daemon) && start.elapsed() < T {
        std::thread::sleep(Duration::from_millis(5));
    }
    let survived = !is_gone(daemon);
    if survived {
        kill(daemon, libc::SIGKILL);
    }
    assert!(!survived, "daemon {daemon} escaped `tend stop forker` (killed it now)\n{}", tend.dump());
    // The daemon ignored SIGTERM and had to be killed: exit status 1.
    shutdown_with(&mut tend, 1);
}

#[test]
fn daemon_left_by_an_exited_service_is_gone_after_tend_stop() {
    if skip_unless_root("daemon_left_by_an_exited_service_is_gone_after_tend_stop") {
        return;
    }
    let env = env();
    // The issue's case: the service double-forks a daemon and exits 0.
    // The daemon ignores SIGTERM/SIGHUP before it forks, and the main
    // process waits (EOF on the pipe) until it has left the session, so the
    // group signal tend sends when the main exits cannot race with it.
    let script = r#"d=$(perl -MPOSIX -e '$SIG{TERM} = $SIG{HUP} = "IGNORE"; defined(my $p = fork) or die "fork: $!"; exit 0 if $p; POSIX::setsid() or die "setsid: $!"; print "$$\n"; close STDOUT; open STDOUT, ">", "/dev/null"; sleep 300')
echo "daemon $d"
exit 0"#;
    unit(
        &env,
        "leaver",
        &format!("{}restart: never\nstop_timeout: 300ms\nresources:\n  pids_max: 50\n", sh(script)),
    );
    let mut tend = env.up();
    let main = tend.started_pid("leaver");
    tend.wait_until(T, "the daemon to report its pid", || {
        tend.lines_of("leaver").iter().any(|l| l.starts_with("daemon "))
    });
    let daemon: i32 = field(&tend.lines_of("leaver"), "daemon ").unwrap().parse().unwrap();
    wait_gone(main, T, "the service's main process (it exits)");
    let out = ctl(&env, &["stop", "leaver"]);
    let start = Instant::now();
    while !is_gone(daemon) && start.elapsed() < T {
        std::thread::sleep(Duration::from_millis(5));
    }
    let survived = !is_gone(daemon);
    if survived {
        kill(daemon, libc::SIGKILL);
    }
    assert!(
        !survived,
        "daemon {daemon} of an exited service survived `tend stop leaver` (killed it now)\n{}\n{}",
        out.show(),
        tend.dump()
    );
    tend.signal(libc::SIGTERM);
    tend.wait_exit(T);
}

#[test]
fn resource_limits_are_written_to_the_services_cgroup() {
    if skip_unless_root("resource_limits_are_written_to_the_services_cgroup") {
        return;
    }
    let env = env();
    unit(
        &env,
        "limited",
        &format!(
            "{}stop_timeout: 300ms\nresources:\n  memory_max: 48M\n  pids_max: 33\n  cpu_max: 0.5\n  cpu_weight: 200\n",
            sh("cat /proc/self/cgroup\necho END\nexec sleep 300")
        ),
    );
    let mut tend = env.up();
    let r = report(&tend, "limited");
    let (v2, v1) = cgroup_dirs(&r);
    let d =
        || format!("/proc/self/cgroup of the service:\n{}\nv2 {v2:?}\nv1 {v1:?}\n{}", show(&r), tend.dump());
    // The controller's directory: v2 when the file is there, else its v1 hierarchy.
    let dir_for = |ctrl: &str, v2_file: &str| -> (bool, PathBuf) {
        if let Some(dir) = v2.as_ref().filter(|d| d.join(v2_file).exists()) {
            return (true, dir.clone());
        }
        let (_, dir) = v1
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == ctrl))
            .unwrap_or_else(|| panic!("no {ctrl} cgroup for the service\n{}", d()));
        (false, dir.clone())
    };
    let val = |p: PathBuf| read(&p).trim().to_string();
    for (ctrl, v2_file) in [("memory", "memory.max"), ("pids", "pids.max"), ("cpu", "cpu.max")] {
        let (is_v2, dir) = dir_for(ctrl, v2_file);
        assert!(
            dir.to_string_lossy().ends_with("/limited.service"),
            "{ctrl}: the service must be in its own cgroup, it is in {}\n{}",
            dir.display(),
            d()
        );
        match (ctrl, is_v2) {
            ("memory", true) => assert_eq!(val(dir.join("memory.max")), (48u64 << 20).to_string(), "{}", d()),
            ("memory", false) => {
                assert_eq!(val(dir.join("memory.limit_in_bytes")), (48u64 << 20).to_string(), "{}", d())
            }
            ("pids", _) => assert_eq!(val(dir.join("pids.max")), "33", "{}", d()),
            ("cpu", true) => {
                assert_eq!(val(dir.join("cpu.max")), "50000 100000", "{}", d());
                assert_eq!(val(dir.join("cpu.weight")), "200", "{}", d());
            }
            ("cpu", false) => {
                let quota: i64 = val(dir.join("cpu.cfs_quota_us")).parse().unwrap_or(-1);
                let period: i64 = val(dir.join("cpu.cfs_period_us")).parse().unwrap_or(0);
                assert!(
                    period > 0 && quota * 2 == period,
                    "cpu_max 0.5: quota {quota} period {period}\n{}",
                    d()
                );
                assert_eq!(val(dir.join("cpu.shares")), "2048", "cpu_weight 200\n{}", d());
            }
            _ => unreachable!(),
        }
    }
    shutdown(&mut tend);
}

#[test]
fn status_json_reports_memory_and_cpu_use() {
    if skip_unless_root("status_json_reports_memory_and_cpu_use") {
        return;
    }
    let env = env();
    // Burn some CPU (well above 20 ms), then idle.
    let script = "perl -e '$s = 0; $s += $_ for 1 .. 3000000; print \"burned\\n\"'\necho END\nexec sleep 300";
    unit(&env, "busy", &format!("{}stop_timeout: 300ms\nresources:\n  memory_max: 64M\n", sh(script)));
    let mut tend = env.up();
    report(&tend, "busy");
    let s = wait_status(&env, &tend, "busy", "memory_bytes and cpu_usec to be reported", |s| {
        s["memory_bytes"].as_u64().is_some_and(|m| m > 0)
            && s["cpu_usec"].as_u64().is_some_and(|c| c > 20_000)
    });
    let mem = s["memory_bytes"].as_u64().unwrap();
    assert!(mem < 64 << 20, "memory_bytes above memory_max: {s}");
    shutdown(&mut tend);
}

// ---- StrictModes ----

#[test]
fn world_writable_unit_file_is_refused_as_root() {
    if skip_unless_root("world_writable_unit_file_is_refused_as_root") {
        return;
    }
    let env = env();
    unit(&env, "loose", &format!("{}stop_timeout: 300ms\n", sh("echo hello\nexec sleep 300")));
    let file = env.units().join("loose.yaml");
    // Control: mode 0644 is accepted.
    let (code, err) = env.check();
    assert_eq!(code, 0, "a 0644 unit file owned by root must pass `tend check`:\n{err}");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let (code, err) = env.check();
    assert_eq!(code, 2, "`tend check` must refuse a world-writable unit file:\n{err}");
    assert!(err.contains(&file.display().to_string()), "the error must name the file:\n{err}");
    assert!(err.contains("0666"), "the error must give the mode:\n{err}");
    let mut tend = env.up();
    let code = tend.exit_code(T);
    assert_ne!(code, 0, "`tend up` must refuse it too\n{}", tend.dump());
    assert!(!tend.stderr().contains("loose: started"), "{}", tend.dump());
    assert!(!tend.stdout().contains("hello"), "{}", tend.dump());
}

// ---- nothing left behind ----

#[test]
fn nothing_stays_mounted_and_cgroups_are_removed_after_tend_exits() {
    if skip_unless_root("nothing_stays_mounted_and_cgroups_are_removed_after_tend_exits") {
        return;
    }
    let env = env();
    let rw = env.p("rw");
    let secret = env.p("secret");
    fs::create_dir(&rw).unwrap();
    fs::create_dir(&secret).unwrap();
    let root = env.root().display().to_string();
    let host_mounts_before = read("/proc/self/mountinfo");
    unit(
        &env,
        "fsrules",
        &format!(
            "{}stop_timeout: 300ms\nsandbox:\n  read_only_paths: [/]\n  read_write_paths: [{}]\n  inaccessible_paths: [{}]\n  private_network: true\n  hostname: tend-sbx-leak\nresources:\n  memory_max: 64M\n  pids_max: 50\n",
            sh("cat /proc/self/cgroup\necho END\nexec sleep 300"),
            rw.display(),
            secret.display()
        ),
    );
    unit(
        &env,
        "tmpsvc",
        &format!("{}stop_timeout: 300ms\nsandbox:\n  private_tmp: true\n", sh("echo END\nexec sleep 300")),
    );
    let mut tend = env.up();
    let r = report(&tend, "fsrules");
    report(&tend, "tmpsvc");
    let pid = tend.started_pid("fsrules");
    let tmp_pid = tend.started_pid("tmpsvc");
    let d = |t: &Tend| format!("/proc/self/cgroup of fsrules:\n{}\n{}", show(&r), t.dump());
    // While running: the rules are mounts in the services' namespaces only.
    let svc_mounts = read(format!("/proc/{pid}/mountinfo"));
    assert!(
        svc_mounts.contains(&rw.display().to_string()),
        "no mount for the rw path in the service\n{}",
        d(&tend)
    );
    assert!(
        read(format!("/proc/{tmp_pid}/mountinfo")).lines().any(|l| l.split(' ').nth(4) == Some("/tmp")),
        "no /tmp mount in the private_tmp service\n{}",
        d(&tend)
    );
    let host_now = read("/proc/self/mountinfo");
    assert!(
        !host_now.contains(&root),
        "the service's mounts leaked into tend's namespace:\n{host_now}\n{}",
        d(&tend)
    );
    let (v2, v1) = cgroup_dirs(&r);
    let mut dirs: Vec<PathBuf> = v2.into_iter().chain(v1.into_iter().map(|(_, d)| d)).collect();
    dirs.retain(|d| d.to_string_lossy().ends_with("/fsrules.service"));
    assert!(!dirs.is_empty(), "the service is in no cgroup of its own\n{}", d(&tend));
    for dir in &dirs {
        assert!(dir.is_dir(), "{} should exist while it runs\n{}", dir.display(), d(&tend));
    }
    let parents: Vec<PathBuf> = dirs.iter().filter_map(|d| d.parent().map(Path::to_path_buf)).collect();
    assert!(
        parents
            .iter()
            .all(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == format!("tend-{}", tend.pid))),
        "services' cgroups should be under tend-{}: {parents:?}",
        tend.pid
    );

    shutdown(&mut tend);
    wait_gone(pid, T, "fsrules after tend exited");
    wait_gone(tmp_pid, T, "tmpsvc after tend exited");
    let host_after = read("/proc/self/mountinfo");
    assert!(!host_after.contains(&root), "something of the test is mounted after tend exited:\n{host_after}");
    // The mounts the rules touch (/, /tmp, /var/tmp, the test's paths) are
    // exactly as before: same mounts, same flags (a read-only remount of /
    // leaking out would change the / line without adding one). Other mount
    // points are left out so that unrelated activity on the host cannot
    // make this test flaky.
    let relevant = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                let point = l.split(' ').nth(4).unwrap_or("");
                ["/", "/tmp", "/var/tmp"].contains(&point) || point.starts_with(root.as_str())
            })
            .map(|l| l.to_string())
            .collect()
    };
    assert_eq!(
        relevant(&host_after),
        relevant(&host_mounts_before),
        "the mounts of /, /tmp, /var/tmp or the test's dir changed across the run"
    );
    let left: Vec<&PathBuf> = dirs.iter().chain(parents.iter()).filter(|p| p.exists()).collect();
    assert!(left.is_empty(), "cgroup directories left after tend exited: {left:?}\n{}", tend.dump());
}

// ---- a host without cgroup2 (issue 15) ----

/// `tend up` in a private mount namespace where every cgroup2 mount is
/// unmounted: to tend, a v1-only host (older distributions and container
/// hosts). `None` (after `skip`, which fails in CI) when the host has no v1
/// hierarchy to fall back on (a pure v2 host).
fn up_without_cgroup2(env: &Env, test: &str) -> Option<Tend> {
    let v1_membership = ["freezer", "pids", "memory", "cpuacct", "cpu"];
    if !cgroup_mounts()
        .iter()
        .any(|m| !m.v2 && m.controllers.iter().any(|c| v1_membership.contains(&c.as_str())))
    {
        skip(test, "no cgroup v1 hierarchy mounted, so no v1-only host can be made here");
        return None;
    }
    // `unshare --mount` makes every mount private first, so the unmount
    // stays in the namespace; sh then execs tend (same pid).
    let script = r#"awk '$0 ~ / - cgroup2 / { print $5 }' /proc/self/mountinfo | while read -r m; do umount -l "$m" || exit 97; done
exec "$@""#;
    let units = env.units();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c", script, "sh", tend_bin(), "up", "--units", units.to_str().unwrap()])
        .current_dir(env.root())
        .env_remove("NO_COLOR")
        .env_remove("TEND_UNITS")
        .env("TEND_SOCKET", env.socket());
    Some(Tend::spawn(cmd, env.root(), "unshare --mount (cgroup2 unmounted) tend up"))
}

/// Directories called `name` under `dir`, down to `depth` levels.
fn dirs_named(dir: &Path, name: &str, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if entry.file_name().to_str() == Some(name) {
                found.push(entry.path());
            } else if depth > 0 {
                dirs_named(&entry.path(), name, depth - 1, found);
            }
        }
    }
}

/// Lines `ID:CONTROLLERS:PATH` of a service's /proc/self/cgroup report for
/// the v1 hierarchies holding `controller`.
fn v1_line<'a>(report: &'a [String], controller: &str) -> Option<&'a str> {
    report
        .iter()
        .map(String::as_str)
        .find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|x| x == controller)))
}

#[test]
fn v1_only_host_stop_and_restart_leave_no_escaped_daemon() {
    let test = "v1_only_host_stop_and_restart_leave_no_escaped_daemon";
    if skip_unless_root(test) {
        return;
    }
    let env = env();
    // Neither has `resources`: on a v1-only host membership alone (the
    // freezer) is what finds a daemon that left the process group.
    // `forker` keeps running beside its daemon; `crasher` leaves one behind
    // and exits 1 the first time, so its restart must clear it first.
    let daemon = r#"perl -MPOSIX -e '$SIG{TERM} = $SIG{HUP} = "IGNORE"; defined(my $p = fork) or die "fork: $!"; exit 0 if $p; POSIX::setsid() or die "setsid: $!"; print "$$\n"; close STDOUT; open STDOUT, ">", "/dev/null"; sleep 300'"#;
    unit(
        &env,
        "forker",
        &format!(
            "{}stop_timeout: 300ms\n",
            sh(&format!(
                "cat /proc/self/cgroup\necho END\nd=$({daemon})\necho \"daemon $d\"\nexec sleep 300"
            ))
        ),
    );
    let marker = env.p("crashed-once");
    unit(
        &env,
        "crasher",
        &format!(
            "{}restart: always\nrestart_delay: 0s\nstop_timeout: 300ms\n",
            sh(&format!(
                "if [ -e {m} ]; then echo second; exec sleep 300; fi\nd=$({daemon})\necho \"daemon $d\"\ntouch {m}\nexit 1",
                m = marker.display()
            ))
        ),
    );
    // The user's setting for what a service without limits gives up there:
    // memory and CPU figures in `status`.
    unit(
        &env,
        "counted",
        &format!(
            "{}stop_timeout: 300ms\nresources:\n  accounting: true\n",
            sh("cat /proc/self/cgroup\necho END\nexec sleep 300")
        ),
    );
    let Some(mut tend) = up_without_cgroup2(&env, test) else { return };
    let r = report(&tend, "forker");
    let main = tend.started_pid("forker");
    let d = |t: &Tend| format!("/proc/self/cgroup of forker:\n{}\n{}", show(&r), t.dump());
    let tend_mounts = read(format!("/proc/{}/mountinfo", tend.pid));
    assert!(!tend_mounts.contains(" - cgroup2 "), "tend still sees a cgroup2 mount\n{}", d(&tend));
    assert!(!tend.stderr().contains("cgroups unavailable"), "{}", d(&tend));
    // Its membership is v1: its own freezer cgroup (or the first v1
    // hierarchy tend found when there is no freezer), under tend-PID.
    let leaf = format!("/tend-{}/forker.service", tend.pid);
    let member = v1_line(&r, "freezer").or_else(|| v1_line(&r, "pids")).unwrap_or_default();
    // Only that one: no limits, so no memory or cpuacct cgroup of its own.
    for other in ["memory", "cpuacct", "pids", "cpu"].iter().filter(|c| !member.contains(*c)) {
        let line = v1_line(&r, other).unwrap_or_default();
        assert!(!line.ends_with(&leaf), "forker has no {other} limit but is in {line:?}\n{}", d(&tend));
    }
    assert!(
        member.ends_with(&leaf),
        "forker should be in {leaf} of a v1 hierarchy, is in {member:?}\n{}",
        d(&tend)
    );

    // `accounting: true`: in memory and cpuacct cgroups of its own, and
    // `status` has its figures; forker's has none.
    let counted = report(&tend, "counted");
    for c in ["memory", "cpuacct"] {
        let line = v1_line(&counted, c).unwrap_or_default();
        assert!(
            line.ends_with(&format!("/tend-{}/counted.service", tend.pid)),
            "counted asked for accounting but its {c} cgroup is {line:?}\n{}",
            tend.dump()
        );
    }
    wait_status(&env, &tend, "counted", "memory_bytes and cpu_usec of counted", |s| {
        s["memory_bytes"].as_u64().is_some_and(|m| m > 0) && s["cpu_usec"].as_u64().is_some_and(|c| c > 0)
    });
    let f = svc(&env, "forker");
    assert!(f["memory_bytes"].is_null() && f["cpu_usec"].is_null(), "forker has no accounting: {f}");

    // Stop: the daemon that left the group and ignores SIGTERM goes too.
    tend.wait_until(T, "forker's daemon to report its pid", || {
        tend.lines_of("forker").iter().any(|l| l.starts_with("daemon "))
    });
    let forker_daemon: i32 = field(&tend.lines_of("forker"), "daemon ").unwrap().parse().unwrap();
    let f = proc_stat_fields(forker_daemon).unwrap_or_default();
    assert!(f.get(2).is_some_and(|pgrp| pgrp != &main.to_string()), "the daemon left the group: {f:?}");
    let out = ctl(&env, &["stop", "forker"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), d(&tend));
    wait_gone(main, T, "forker's main process after tend stop");
    wait_gone(forker_daemon, T, "forker's escaped daemon after `tend stop forker` on a v1-only host");

    // Restart: the first crasher's daemon is gone before the second starts.
    tend.wait_until(T, "crasher to restart", || tend.lines_of("crasher").iter().any(|l| l == "second"));
    let crasher_daemon: i32 = field(&tend.lines_of("crasher"), "daemon ").unwrap().parse().unwrap();
    assert!(
        is_gone(crasher_daemon),
        "the daemon {crasher_daemon} of the crashed instance survived its restart\n{}",
        d(&tend)
    );
    let out = ctl(&env, &["stop", "counted"]);
    assert_eq!(out.code, 0, "{}\n{}", out.show(), d(&tend));
    let crasher = svc(&env, "crasher");
    let second = crasher["pid"].as_i64().unwrap_or_else(|| panic!("crasher has no pid: {crasher}")) as i32;

    // Shutdown: nothing of either service, and no cgroup directory, left.
    let tend_pid = tend.pid;
    // Killed daemons make the exit status 1 (src/exit.rs).
    tend.signal(libc::SIGTERM);
    tend.wait_exit(T);
    wait_gone(second, T, "crasher's second instance after tend exited");
    let mut left = Vec::new();
    for m in cgroup_mounts().iter().filter(|m| !m.v2) {
        dirs_named(&m.point, &format!("tend-{tend_pid}"), 4, &mut left);
    }
    assert!(left.is_empty(), "cgroup directories left after tend exited: {left:?}\n{}", tend.dump());
}
