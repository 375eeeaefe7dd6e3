//! Tests of the confinement plans: mountinfo parsing, submounts, mount
//! order and flags, capability masks, Landlock rules. The forking tests that
//! apply the child steps for real are `#[ignore]`d (they fork inside the test
//! process): run them alone with `--ignored --test-threads=1`; the same
//! behaviour is covered through the real binary in tests/sandbox.rs.

use super::landlock::LandlockRule;
use super::mounts::MountEntry;
use super::*;
use std::ffi::CString;
use std::os::fd::AsRawFd;

const SAMPLE: &[u8] = b"\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 24 0:6 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:3 - securityfs securityfs rw
26 22 0:5 / /dev rw,nosuid shared:4 - devtmpfs udev rw,size=1000k
27 26 0:23 / /dev/shm rw,nosuid,nodev shared:5 - tmpfs tmpfs rw
40 22 8:2 / /srv ro,noatime shared:30 - ext4 /dev/sda2 rw
41 40 0:40 / /srv/my\\040data rw shared:31 - tmpfs tmpfs rw
42 22 0:41 / /mnt/a/b rw,relatime - tmpfs tmpfs rw
43 22 0:42 / /mnt/a rw,relatime - tmpfs tmpfs rw
";

fn entries() -> Vec<MountEntry> {
    parse_mountinfo(SAMPLE)
}

#[test]
fn mountinfo_is_parsed_with_flags_and_escapes() {
    let e = entries();
    assert_eq!(e.len(), 10);
    assert_eq!(e[0].mount_point, Path::new("/"));
    assert_eq!(e[0].flags, libc::MS_RELATIME);
    assert_eq!(e[1].flags, libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME);
    assert_eq!(e[4].flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
    assert_eq!(e[6].flags, libc::MS_RDONLY | libc::MS_NOATIME);
    assert_eq!(e[7].mount_point, Path::new("/srv/my data"));
}

#[test]
fn malformed_mountinfo_lines_are_skipped() {
    let e = parse_mountinfo(b"garbage\n\n1 2 3\n22 1 8:1 / / rw - ext4 x rw\n");
    assert_eq!(e.len(), 1);
}

#[test]
fn submounts_are_found_under_a_path_and_hidden_ones_left_out() {
    let e = entries();
    let under = |p: &str| -> Vec<String> {
        submounts(&e, Path::new(p)).iter().map(|m| m.mount_point.display().to_string()).collect()
    };
    assert_eq!(under("/sys"), ["/sys/kernel/security"]);
    assert_eq!(under("/srv"), ["/srv/my data"]);
    // /mnt/a/b was mounted before /mnt/a: hidden.
    assert_eq!(under("/mnt"), ["/mnt/a"]);
    assert_eq!(
        under("/"),
        ["/proc", "/sys", "/sys/kernel/security", "/dev", "/dev/shm", "/srv", "/srv/my data", "/mnt/a"]
    );
    // Component-wise: /srvx is not under /srv.
    assert!(submounts(&parse_mountinfo(b"1 0 0:1 / /srvx rw - t s rw\n"), Path::new("/srv")).is_empty());
}

#[test]
fn the_containing_mount_is_the_longest_prefix() {
    let e = entries();
    assert_eq!(containing_mount(&e, Path::new("/srv/x")).unwrap().mount_point, Path::new("/srv"));
    assert_eq!(containing_mount(&e, Path::new("/etc")).unwrap().mount_point, Path::new("/"));
    assert_eq!(containing_mount(&e, Path::new("/dev/shm")).unwrap().mount_point, Path::new("/dev/shm"));
}

fn env(mountinfo: &[u8], has_sys_admin: bool, uid: u32) -> Environment<'_> {
    Environment { has_sys_admin, target_uid: uid, mountinfo, last_cap: 40, permitted: (1 << 41) - 1 }
}

fn no_landlock(_: &LandlockRules) -> Result<OwnedFd, String> {
    panic!("landlock must not be used here")
}

fn fake_landlock(_: &LandlockRules) -> Result<OwnedFd, String> {
    Ok(std::fs::File::open("/dev/null").unwrap().into())
}

fn describe_mounts(plan: &ConfinePlan) -> Vec<String> {
    plan.mounts
        .iter()
        .map(|m| {
            let kind = if m.flags & libc::MS_REMOUNT != 0 {
                if m.flags & libc::MS_RDONLY != 0 {
                    "ro"
                } else {
                    "rw"
                }
            } else if m.flags & libc::MS_BIND != 0 {
                "bind"
            } else if m.flags & libc::MS_PRIVATE != 0 {
                "private"
            } else {
                "new"
            };
            format!("{kind} {}", m.target.to_str().unwrap())
        })
        .collect()
}

#[test]
fn the_default_spec_is_empty() {
    let plan = ConfinePlan::build(&SandboxSpec::default(), &env(SAMPLE, true, 0), &no_landlock).unwrap();
    assert!(plan.is_empty());
    assert!(plan.notice().is_none());
}

#[test]
fn mount_rules_run_shorter_paths_first_with_submounts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let data = std::fs::canonicalize(&data).unwrap();
    let mut text = SAMPLE.to_vec();
    text.extend_from_slice(
        format!("50 22 0:50 / {} rw,nosuid - tmpfs t rw\n", data.join("sub").display()).as_bytes(),
    );
    let spec = SandboxSpec {
        read_only_paths: vec!["/".into()],
        read_write_paths: vec![data.clone()],
        filesystem: FilesystemBackend::Mounts,
        ..SandboxSpec::default()
    };
    let plan = ConfinePlan::build(&spec, &env(&text, true, 0), &no_landlock).unwrap();
    assert!(plan.unshare_mount);
    let got = describe_mounts(&plan);
    let d = data.display();
    let mut want = vec!["private /".to_string(), "ro /".to_string()];
    for sub in ["/proc", "/sys", "/sys/kernel/security", "/dev", "/dev/shm", "/srv", "/srv/my data", "/mnt/a"]
    {
        want.push(format!("ro {sub}"));
    }
    want.push(format!("ro {d}/sub"));
    want.push(format!("bind {d}"));
    want.push(format!("rw {d}"));
    want.push(format!("rw {d}/sub"));
    assert_eq!(got, want);
    // nosuid etc. are kept; /srv was read-only and stays so on a rw rule.
    let proc = plan.mounts.iter().find(|m| m.target.to_bytes() == b"/proc").unwrap();
    assert_eq!(
        proc.flags,
        libc::MS_REMOUNT
            | libc::MS_BIND
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC
            | libc::MS_RELATIME
    );
    assert!(proc.optional);
    let sub = plan.mounts.last().unwrap();
    assert_eq!(sub.flags & libc::MS_RDONLY, 0);
    assert_ne!(sub.flags & libc::MS_NOSUID, 0);
    let bind = &plan.mounts[plan.mounts.len() - 3];
    assert_eq!(bind.flags, libc::MS_BIND | libc::MS_REC);
    assert_eq!(plan.describe_failure(bind.step, bind.index), format!("cannot make {d} writable"));
    let root = &plan.mounts[1];
    assert_eq!(plan.describe_failure(root.step, root.index), "cannot make / read-only");
}

#[test]
fn private_tmp_and_inaccessible_paths_come_last() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, "x").unwrap();
    let spec = SandboxSpec {
        private_tmp: true,
        inaccessible_paths: vec![dir.clone(), file.clone(), "/does/not/exist".into()],
        filesystem: FilesystemBackend::Auto,
        ..SandboxSpec::default()
    };
    let plan = ConfinePlan::build(&spec, &env(SAMPLE, true, 0), &no_landlock).unwrap();
    let got = describe_mounts(&plan);
    // The temp dir lives under /tmp, which private_tmp replaces: its
    // inaccessible rules are pointless there and left out.
    if dir.starts_with("/tmp") {
        assert_eq!(&got[..2], ["private /", "new /tmp"]);
        assert!(got.iter().all(|m| !m.contains("secret")));
    }
    let spec = SandboxSpec {
        inaccessible_paths: vec![dir.clone(), file.clone()],
        filesystem: FilesystemBackend::Mounts,
        ..SandboxSpec::default()
    };
    let plan = ConfinePlan::build(&spec, &env(SAMPLE, true, 0), &no_landlock).unwrap();
    let got = describe_mounts(&plan);
    let (d, f) = (dir.display(), file.display());
    assert_eq!(got, ["private /".to_string(), format!("bind {f}"), format!("ro {f}"), format!("new {d}")]);
    let file_bind = &plan.mounts[1];
    assert_eq!(file_bind.source.as_deref().unwrap().to_bytes(), b"/dev/null");
    assert_ne!(plan.mounts[2].flags & libc::MS_NODEV, 0);
    let tmpfs = &plan.mounts[3];
    assert_eq!(tmpfs.data.as_deref().unwrap().to_bytes(), b"mode=000");
    assert_ne!(tmpfs.flags & libc::MS_RDONLY, 0);
    assert_eq!(plan.describe_failure(tmpfs.step, tmpfs.index), format!("cannot make {d} inaccessible"));
}

#[test]
fn a_missing_read_only_path_is_an_error() {
    let spec = SandboxSpec { read_only_paths: vec!["/no/such/dir".into()], ..SandboxSpec::default() };
    let error = ConfinePlan::build(&spec, &env(SAMPLE, true, 0), &no_landlock).unwrap_err();
    assert_eq!(error, "cannot use /no/such/dir (read_only_paths): No such file or directory");
}

#[test]
fn auto_without_sys_admin_uses_landlock_with_a_notice() {
    let spec = SandboxSpec {
        read_only_paths: vec!["/".into()],
        read_write_paths: vec!["/dev/shm".into()],
        ..SandboxSpec::default()
    };
    let plan = ConfinePlan::build(&spec, &env(SAMPLE, false, 1000), &fake_landlock).unwrap();
    assert!(!plan.unshare_mount);
    assert!(plan.mounts.is_empty());
    assert!(plan.uses_landlock());
    assert!(plan.no_new_privs, "landlock needs no_new_privs");
    assert_eq!(
        plan.notice(),
        Some("filesystem rules enforced with Landlock: no mount namespace without CAP_SYS_ADMIN")
    );
}

#[test]
fn landlock_rules_grant_read_to_read_only_and_all_to_read_write() {
    let spec = SandboxSpec::default();
    let rules = landlock_rules(&spec, &["/".into()], &["/srv".into()], &[("/home".into(), true)]);
    let error = rules.unwrap_err();
    assert!(
        error.starts_with("inaccessible path /home is under /, and Landlock can only grant access"),
        "{error}"
    );
    let rules = landlock_rules(&spec, &["/usr".into()], &["/srv".into()], &[("/home".into(), true)]).unwrap();
    assert_eq!(
        rules.rules[..2],
        [
            LandlockRule { path: "/usr".into(), writable: false },
            LandlockRule { path: "/srv".into(), writable: true },
        ]
    );
    assert!(rules.rules[2..].iter().all(|r| r.writable && r.path.starts_with("/dev")));
    let rules = landlock_rules(&spec, &["/".into()], &[], &[]).unwrap();
    assert_eq!(rules.rules[0], LandlockRule { path: "/".into(), writable: false });
    assert!(rules.rules.contains(&LandlockRule { path: "/dev/null".into(), writable: true }));
    let only_denials = landlock_rules(&spec, &[], &[], &[("/home".into(), true)]).unwrap_err();
    assert!(only_denials.contains("deny by default"), "{only_denials}");
    let tmp = SandboxSpec { private_tmp: true, ..SandboxSpec::default() };
    assert!(landlock_rules(&tmp, &["/".into()], &[], &[]).unwrap_err().contains("private_tmp"));
}

#[test]
fn landlock_without_kernel_support_is_an_error() {
    let rules = LandlockRules { rules: vec![] };
    let error = build_landlock_ruleset(&rules, 0).unwrap_err();
    assert!(error.contains("Landlock is not available on this kernel"), "{error}");
}

#[test]
fn a_real_landlock_ruleset_is_close_on_exec() {
    if landlock_abi() < 1 {
        return;
    }
    let rules = LandlockRules {
        rules: vec![
            LandlockRule { path: "/".into(), writable: false },
            LandlockRule { path: "/dev/null".into(), writable: true },
        ],
    };
    let fd = build_landlock_ruleset(&rules, landlock_abi()).unwrap();
    // SAFETY: F_GETFD on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
}

#[test]
fn capability_masks_and_names() {
    let spec = SandboxSpec { capabilities: Some(vec![10, 12]), ..SandboxSpec::default() };
    let plan = ConfinePlan::build(&spec, &env(b"", true, 33), &no_landlock).unwrap();
    let caps = plan.caps.as_ref().unwrap();
    assert_eq!(caps.keep, (1 << 10) | (1 << 12));
    assert!(caps.non_root);
    assert_eq!(caps.last_cap, 40);
    assert!(!plan.is_empty());
    assert_eq!(
        plan.describe_failure(ConfineStep::RaiseAmbient, 10),
        "cannot raise CAP_NET_BIND_SERVICE as an ambient capability"
    );
    assert_eq!(
        plan.describe_failure(ConfineStep::BoundingSet, 21),
        "cannot drop CAP_SYS_ADMIN from the bounding set"
    );
    let root = ConfinePlan::build(&spec, &env(b"", true, 0), &no_landlock).unwrap();
    assert!(!root.caps.as_ref().unwrap().non_root);
    let unknown = SandboxSpec { capabilities: Some(vec![41]), ..SandboxSpec::default() };
    assert_eq!(
        ConfinePlan::build(&unknown, &env(b"", true, 0), &no_landlock).unwrap_err(),
        "CAP_41 is not known to this kernel"
    );
}

#[test]
fn missing_capabilities_are_noticed() {
    let spec = SandboxSpec { capabilities: Some(vec![10, 24]), ..SandboxSpec::default() };
    let mut environment = env(b"", true, 0);
    environment.permitted = !(1 << 24);
    let plan = ConfinePlan::build(&spec, &environment, &no_landlock).unwrap();
    assert_eq!(
        plan.notice(),
        Some("tend does not have CAP_SYS_RESOURCE, so the service cannot have it either")
    );
}

#[test]
fn namespaces_without_sys_admin_are_noticed() {
    let spec = SandboxSpec { private_network: true, hostname: Some("box".into()), ..SandboxSpec::default() };
    let plan = ConfinePlan::build(&spec, &env(b"", false, 0), &no_landlock).unwrap();
    assert!(plan.unshare_network && plan.unshare_uts && !plan.unshare_mount && !plan.unshare_ipc);
    assert!(plan.notice().unwrap().contains("need CAP_SYS_ADMIN"));
    assert_eq!(plan.describe_failure(ConfineStep::Hostname, 0), "cannot set the hostname to box");
    assert!(ConfineStep::UnshareNetwork.hint(libc::EPERM).unwrap().contains("CAP_SYS_ADMIN"));
}

#[test]
fn steps_round_trip_through_their_numbers() {
    for &step in ConfineStep::ALL {
        assert_eq!(ConfineStep::from_u32(step as u32), Some(step));
        assert!(step.describe().starts_with("cannot "));
    }
    assert_eq!(ConfineStep::from_u32(63), None);
    assert_eq!(ConfineStep::UnshareMount.describe(), "cannot create a mount namespace");
}

// ---------------------------------------------------------------------------
// The child steps for real.

/// Fork; in the child run `steps` then exec `sh -c script` with stdout on a
/// pipe; return (exit status, output) or the step that failed.
fn run_confined(plan: &ConfinePlan, uid: Option<u32>, script: &str) -> (i32, String) {
    use std::io::Read;
    let sh = CString::new("/bin/sh").unwrap();
    let dash_c = CString::new("-c").unwrap();
    let script = CString::new(script).unwrap();
    let argv = [sh.as_ptr(), dash_c.as_ptr(), script.as_ptr(), std::ptr::null()];
    let envp = [c"PATH=/usr/bin:/bin".as_ptr(), std::ptr::null()];
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child runs only async-signal-safe calls, then execs or _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let fail = |e: ConfineError| -> ! {
            let code = e.step as i32 - 64 + 10;
            // SAFETY: write and _exit are async-signal-safe.
            unsafe {
                let bytes = e.errno.to_ne_bytes();
                libc::write(fds[1], bytes.as_ptr().cast(), 4);
                libc::_exit(code)
            }
        };
        // SAFETY: dup2/close on our own descriptors.
        unsafe {
            libc::dup2(fds[1], 1);
            libc::dup2(fds[1], 2);
        }
        enter_namespaces(plan).unwrap_or_else(|e| fail(e));
        keep_caps(plan).unwrap_or_else(|e| fail(e));
        if let Some(uid) = uid {
            // SAFETY: integer arguments.
            unsafe {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(uid, uid, uid) != 0
                    || libc::setresuid(uid, uid, uid) != 0
                {
                    libc::_exit(9);
                }
            }
        }
        apply_capabilities(plan).unwrap_or_else(|e| fail(e));
        no_new_privs(plan).unwrap_or_else(|e| fail(e));
        landlock(plan).unwrap_or_else(|e| fail(e));
        // SAFETY: NUL-terminated strings and NULL-terminated arrays.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
            libc::execve(sh.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(8);
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    // SAFETY: fds[0] is ours.
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    let mut out = Vec::new();
    file.read_to_end(&mut out).unwrap();
    let mut status = 0;
    // SAFETY: waits for our own child only.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    let code = libc::WEXITSTATUS(status);
    if (10..10 + ConfineStep::ALL.len() as i32).contains(&code) && out.len() == 4 {
        let step = ConfineStep::from_u32((code - 10 + 64) as u32).unwrap();
        let errno = i32::from_ne_bytes(out[..4].try_into().unwrap());
        panic!("child step failed: {}: errno {errno}", step.describe());
    }
    (code, String::from_utf8_lossy(&out).into_owned())
}

fn status_line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(key)).map(|l| l[key.len()..].trim()).unwrap_or("")
}

#[test]
#[ignore] // forks: run alone with --ignored --test-threads=1 (as root)
fn child_steps_for_real_as_root_with_mounts() {
    let rw = tempfile::Builder::new().tempdir_in("/var/lib").unwrap();
    let rw_path = std::fs::canonicalize(rw.path()).unwrap();
    let hidden = tempfile::Builder::new().tempdir_in("/var/lib").unwrap();
    std::fs::write(hidden.path().join("secret"), "s3cret").unwrap();
    let secret_file = tempfile::NamedTempFile::new_in("/var/lib").unwrap();
    std::fs::write(secret_file.path(), "file-secret").unwrap();
    std::fs::write("/tmp/tend-confine-host-marker", "x").unwrap();
    let spec = SandboxSpec {
        no_new_privileges: true,
        capabilities: Some(vec![10]), // NET_BIND_SERVICE
        private_tmp: true,
        read_only_paths: vec!["/".into()],
        read_write_paths: vec![rw_path.clone()],
        inaccessible_paths: vec![hidden.path().into(), secret_file.path().into()],
        private_network: true,
        hostname: Some("sandboxed".into()),
        private_ipc: true,
        private_pids: false,
        protect_proc: crate::unit::ProtectProc::Default,
        filesystem: FilesystemBackend::Mounts,
    };
    let plan = ConfinePlan::new(&spec, Some(0)).unwrap();
    let script = format!(
        "cat /proc/self/status; hostname; cat /proc/net/dev; \
         touch /x 2>&1; touch /etc/tend-x 2>&1; touch /dev/shm/tend-x 2>&1; \
         touch {rw}/ok && echo rw-ok; ls -A /tmp | wc -l; touch /tmp/t && echo tmp-ok; \
         cat {h}/secret 2>&1; ls -ld {h}; cat {f} 2>&1; grep -c ' / ' /proc/self/mountinfo",
        rw = rw_path.display(),
        h = hidden.path().display(),
        f = secret_file.path().display(),
    );
    let (code, out) = run_confined(&plan, Some(0), &script);
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert_eq!(status_line(&out, "CapBnd:"), "0000000000000400");
    assert_eq!(status_line(&out, "CapEff:"), "0000000000000400");
    assert_eq!(status_line(&out, "CapPrm:"), "0000000000000400");
    assert_eq!(status_line(&out, "CapAmb:"), "0000000000000000");
    assert_eq!(status_line(&out, "NoNewPrivs:"), "1");
    assert!(out.contains("\nsandboxed\n"));
    assert!(out.contains("lo:") && !out.contains("eth0:"), "{out}");
    assert!(out.contains("touch: cannot touch '/x': Read-only file system"), "{out}");
    assert!(out.contains("'/etc/tend-x': Read-only file system"), "{out}");
    assert!(out.contains("'/dev/shm/tend-x': Read-only file system"), "{out}");
    assert!(out.contains("rw-ok"));
    assert!(out.contains("\n0\ntmp-ok\n"), "{out}");
    assert!(!out.contains("s3cret") && !out.contains("file-secret"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    assert!(rw_path.join("ok").exists());
    assert!(!Path::new("/tmp/t").exists(), "private /tmp leaked");
    // Nothing changed in our namespace.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&rw_path.display().to_string()));
    std::fs::remove_file("/tmp/tend-confine-host-marker").unwrap();
}

#[test]
#[ignore] // forks: run alone with --ignored --test-threads=1 (as root)
fn child_steps_for_real_non_root_keeps_ambient_caps() {
    let spec = SandboxSpec { capabilities: Some(vec![10]), ..SandboxSpec::default() };
    let plan = ConfinePlan::new(&spec, Some(65534)).unwrap();
    let script = "cat /proc/self/status; id -u; \
                  python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 80)); print(\"bound-80\")' 2>&1 \
                  || echo no-python";
    let (code, out) = run_confined(&plan, Some(65534), script);
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert_eq!(status_line(&out, "CapAmb:"), "0000000000000400");
    assert_eq!(status_line(&out, "CapEff:"), "0000000000000400");
    assert_eq!(status_line(&out, "CapBnd:"), "0000000000000400");
    assert_eq!(status_line(&out, "CapInh:"), "0000000000000400");
    assert!(out.contains("\n65534\n"));
    assert!(out.contains("bound-80") || out.contains("no-python"), "{out}");
    // Without the capability the bind fails.
    let none = SandboxSpec { capabilities: Some(vec![]), ..SandboxSpec::default() };
    let plan = ConfinePlan::new(&none, Some(65534)).unwrap();
    let (_, out) = run_confined(&plan, Some(65534), script);
    println!("{out}");
    assert_eq!(status_line(&out, "CapEff:"), "0000000000000000");
    assert_eq!(status_line(&out, "CapBnd:"), "0000000000000000");
    assert!(!out.contains("bound-80"), "{out}");
}

#[test]
#[ignore] // forks: run alone with --ignored --test-threads=1 (as root)
fn child_steps_for_real_with_landlock() {
    let rw = tempfile::Builder::new().tempdir_in("/var/lib").unwrap();
    let rw_path = std::fs::canonicalize(rw.path()).unwrap();
    let spec = SandboxSpec {
        read_only_paths: vec!["/usr".into(), "/bin".into(), "/lib".into(), "/lib64".into(), "/proc".into()],
        read_write_paths: vec![rw_path.clone()],
        filesystem: FilesystemBackend::Landlock,
        ..SandboxSpec::default()
    };
    let spec = SandboxSpec {
        read_only_paths: spec.read_only_paths.into_iter().filter(|p| p.exists()).collect(),
        ..spec
    };
    let plan = ConfinePlan::new(&spec, None).unwrap();
    let script = format!(
        "grep NoNewPrivs /proc/self/status; cat /etc/hostname 2>&1; touch /usr/tend-x 2>&1; \
         touch {rw}/ok && echo rw-ok; echo hi > /dev/null && echo devnull-ok",
        rw = rw_path.display()
    );
    let (code, out) = run_confined(&plan, None, &script);
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("NoNewPrivs:\t1"));
    assert!(out.contains("/etc/hostname: Permission denied"), "{out}");
    assert!(out.contains("'/usr/tend-x': Permission denied"), "{out}");
    assert!(out.contains("rw-ok"));
    assert!(rw_path.join("ok").exists());
}

#[test]
#[ignore] // forks: run alone with --ignored --test-threads=1 (as root)
fn child_steps_for_real_unprivileged_unshare_fails_with_eperm() {
    let spec = SandboxSpec { private_network: true, ..SandboxSpec::default() };
    let plan = ConfinePlan::new(&spec, None).unwrap();
    // SAFETY: the child runs only async-signal-safe calls, then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: integer arguments; _exit is async-signal-safe.
        unsafe {
            if libc::setresuid(65534, 65534, 65534) != 0 {
                libc::_exit(1);
            }
            match enter_namespaces(&plan) {
                Err(ConfineError { step: ConfineStep::UnshareNetwork, errno: libc::EPERM, index: 0 }) => {
                    libc::_exit(0)
                }
                _ => libc::_exit(2),
            }
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child only.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(libc::WEXITSTATUS(status), 0);
    let message = format!(
        "{}: Operation not permitted ({})",
        plan.describe_failure(ConfineStep::UnshareNetwork, 0),
        ConfineStep::UnshareNetwork.hint(libc::EPERM).unwrap()
    );
    assert!(message.starts_with("cannot create a network namespace: Operation not permitted (namespaces"));
}

#[test]
fn an_own_proc_is_mounted_after_the_rules_and_before_the_hidden_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    // private_pids alone: a mount namespace with just the new /proc.
    let spec = SandboxSpec { private_pids: true, ..SandboxSpec::default() };
    let plan = ConfinePlan::build(&spec, &env(SAMPLE, true, 0), &no_landlock).unwrap();
    assert!(plan.pid_namespace() && plan.unshare_mount && !plan.is_empty());
    assert_eq!(describe_mounts(&plan), ["private /", "new /proc"]);
    assert_eq!(plan.mounts[1].fstype.as_deref().unwrap().to_bytes(), b"proc");
    assert_eq!(plan.mounts[1].flags & libc::MS_RDONLY, 0, "no rule over /proc: writable");
    assert!(plan.mounts[1].data.is_none());
    // hidepid, read-only under read_only_paths: [/], before the hidden paths.
    let spec = SandboxSpec {
        protect_proc: crate::unit::ProtectProc::Invisible,
        read_only_paths: vec!["/".into()],
        inaccessible_paths: vec![dir.clone()],
        filesystem: FilesystemBackend::Mounts,
        ..SandboxSpec::default()
    };
    let plan = ConfinePlan::build(&spec, &env(SAMPLE, true, 0), &no_landlock).unwrap();
    assert!(!plan.pid_namespace());
    let got = describe_mounts(&plan);
    let proc_at = got.iter().position(|m| m == "new /proc").unwrap();
    assert_eq!(got[proc_at + 1], format!("new {}", dir.display()));
    let proc_mount = &plan.mounts[proc_at];
    assert_eq!(proc_mount.data.as_deref().unwrap().to_bytes(), b"hidepid=invisible");
    assert_ne!(proc_mount.flags & libc::MS_RDONLY, 0);
    // Without CAP_SYS_ADMIN it is said, and Landlock cannot do it.
    let plan = ConfinePlan::build(
        &SandboxSpec { private_pids: true, ..SandboxSpec::default() },
        &env(SAMPLE, false, 0),
        &no_landlock,
    )
    .unwrap();
    assert!(plan.notice().unwrap().contains("private_pids"));
}
