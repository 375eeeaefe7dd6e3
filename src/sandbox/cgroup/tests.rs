//! Pure tests of the plan and the values, then real tests on this machine.
//!
//! The real ones need root and touch /sys/fs/cgroup; run them with
//! `cargo test --lib sandbox::cgroup -- --ignored --test-threads=1`.
//! They remove every cgroup they make (also when they fail), and kill only
//! the processes they start.

use super::*;

fn res(memory: Option<u64>, pids: Option<u64>, cpu: Option<u32>, weight: Option<u32>) -> ResourcesSpec {
    ResourcesSpec {
        memory_max: memory,
        pids_max: pids,
        cpu_max_millicores: cpu,
        cpu_weight: weight,
        accounting: false,
    }
}

fn all_limits() -> ResourcesSpec {
    res(Some(64 << 20), Some(20), Some(500), Some(200))
}

use super::layout::tests::{HYBRID_CGROUP, HYBRID_MOUNTINFO};
const V2_MOUNTINFO: &str =
    "30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn probe_all_writable(layout: &Layout) -> Probe {
    Probe {
        pid: 77,
        v2_writable: Ok(()),
        v1_writable: layout.v1.iter().map(|_| Ok(())).collect(),
        ..Probe::default()
    }
}

/// The warning names every reason (grouped by error) and what is lost.
#[test]
fn the_unavailable_warning_names_every_reason_and_what_is_lost() {
    let reason = "cannot write in /sys/fs/cgroup/unified: Permission denied (os error 13); \
                  cannot write in /sys/fs/cgroup/pids: Permission denied (os error 13); \
                  no cgroup2 file system mounted";
    let warning = unavailable_warning(reason);
    assert!(
        warning.starts_with(
            "warning: cgroups unavailable (cannot write in /sys/fs/cgroup/unified, /sys/fs/cgroup/pids: \
             Permission denied; no cgroup2 file system mounted). Falling back to process groups: "
        ),
        "{warning}"
    );
    for lost in
        ["a daemon that left it survives", "no memory or CPU use", "`resources` are refused", "Delegate=yes"]
    {
        assert!(warning.contains(lost), "{lost}: {warning}");
    }
}

#[test]
fn hybrid_host_uses_v2_for_membership_and_v1_for_limits() {
    let layout = parse_layout(HYBRID_CGROUP, HYBRID_MOUNTINFO);
    let probe = Probe {
        v2_controllers: words("hugetlb"),
        v2_procs: vec![1, 5, 77],
        v2_is_root: true,
        ..probe_all_writable(&layout)
    };
    let m = CgroupManager::from_parts(layout.clone(), &probe);
    let v2 = m.plan.v2.as_ref().unwrap();
    assert_eq!(v2.base, Path::new("/sys/fs/cgroup/unified/tend-77"));
    assert!(!v2.delegate);
    assert_eq!(m.plan.member, Ok(Member::V2));
    let idx = |c: &str| layout.v1.iter().position(|h| h.has(c)).unwrap();
    assert_eq!(
        m.plan.backends,
        [Backend::V1(idx("memory")), Backend::V1(idx("pids")), Backend::V1(idx("cpu"))]
    );
    assert_eq!(m.plan.v1_join, vec![idx("memory"), idx("pids"), idx("cpu")]);
    assert_eq!(m.plan.v1_cpuacct, None, "cpu use comes from the v2 cpu.stat");
    assert_eq!(m.describe(), "hybrid: v2 membership, v1 memory/pids/cpu");
    assert_eq!(m.available(), Ok(()));
    assert_eq!(m.supports(&all_limits()), Ok(()));
    assert_eq!(m.v1_base(idx("memory")), Path::new("/sys/fs/cgroup/memory/process_api/1ac9/tend-77"));
}

#[test]
fn pure_v2_alone_in_its_cgroup_delegates() {
    let layout = parse_layout("0::/system.slice/tend.service\n", V2_MOUNTINFO);
    let probe = Probe {
        v2_controllers: words("cpuset cpu io memory pids"),
        v2_procs: vec![77],
        ..probe_all_writable(&layout)
    };
    let m = CgroupManager::from_parts(layout, &probe);
    let v2 = m.plan.v2.as_ref().unwrap();
    assert!(v2.delegate);
    assert_eq!(v2.base, Path::new("/sys/fs/cgroup/system.slice/tend.service"));
    assert_eq!(m.plan.backends, [Backend::V2, Backend::V2, Backend::V2]);
    assert!(m.plan.v1_join.is_empty());
    assert_eq!(m.describe(), "v2 (memory, pids, cpu)");
    assert_eq!(m.supports(&all_limits()), Ok(()));
}

#[test]
fn systemd_service_with_delegate_yes_moves_into_supervisor() {
    let layout = parse_layout("0::/system.slice/tend.service\n", V2_MOUNTINFO);
    let probe = Probe {
        v2_controllers: words("cpu memory pids"),
        v2_procs: vec![77],
        under_systemd: true,
        v2_delegated: true,
        ..probe_all_writable(&layout)
    };
    let m = CgroupManager::from_parts(layout, &probe);
    let v2 = m.plan.v2.as_ref().unwrap();
    assert!(v2.delegate);
    assert_eq!(v2.base, Path::new("/sys/fs/cgroup/system.slice/tend.service"));
    assert_eq!(m.supports(&all_limits()), Ok(()));
}

#[test]
fn systemd_service_without_delegation_makes_no_cgroup() {
    // Alone and writable as root, but the cgroup is systemd's.
    let proc_cgroup = "9:name=systemd:/system.slice/tend.service\n8:pids:/system.slice/tend.service\n\
                       4:memory:/system.slice/tend.service\n0::/system.slice/tend.service\n";
    let layout = parse_layout(proc_cgroup, HYBRID_MOUNTINFO);
    let probe =
        Probe { v2_procs: vec![77], under_systemd: true, v2_delegated: false, ..probe_all_writable(&layout) };
    let m = CgroupManager::from_parts(layout, &probe);
    assert_eq!(m.plan.v2, None);
    assert!(m.plan.v1_join.is_empty(), "no v1 cgroup either: {:?}", m.plan.v1_join);
    let err = m.available().unwrap_err();
    assert!(err.contains("without Delegate=yes"), "{err}");
    assert!(err.contains("/sys/fs/cgroup/unified/system.slice/tend.service"), "{err}");
    let err = m.supports(&res(Some(1 << 20), None, None, None)).unwrap_err();
    assert!(err.contains("memory_max needs the memory controller") && err.contains("Delegate=yes"), "{err}");
    assert!(m.describe().starts_with("unavailable: tend runs as a systemd service"), "{}", m.describe());
}

#[test]
fn pure_v2_sharing_its_cgroup_gives_membership_only() {
    let layout = parse_layout("0::/user.slice/user-0.slice/session-1.scope\n", V2_MOUNTINFO);
    let probe = Probe {
        v2_controllers: words("cpu memory pids"),
        v2_procs: vec![12, 77],
        ..probe_all_writable(&layout)
    };
    let m = CgroupManager::from_parts(layout, &probe);
    assert_eq!(
        m.plan.v2.as_ref().unwrap().base,
        Path::new("/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope/tend-77")
    );
    assert_eq!(m.available(), Ok(()));
    assert_eq!(m.supports(&ResourcesSpec::default()), Ok(()));
    let err = m.supports(&res(Some(1 << 20), None, None, None)).unwrap_err();
    assert!(err.contains("memory_max needs the memory controller"), "{err}");
    assert!(err.contains("Delegate=yes"), "{err}");
    assert!(err.contains("no v1 memory hierarchy"), "{err}");
    assert_eq!(m.describe(), "v2 (membership only, no controller); no memory/pids/cpu");
}

#[test]
fn pure_v2_root_uses_what_the_root_hands_down() {
    let layout = parse_layout("0::/\n", V2_MOUNTINFO);
    let probe = Probe {
        v2_controllers: words("cpu memory pids"),
        v2_subtree: words("memory pids"),
        v2_procs: vec![1, 2, 77],
        v2_is_root: true,
        ..probe_all_writable(&layout)
    };
    let m = CgroupManager::from_parts(layout, &probe);
    assert_eq!(m.plan.v2.as_ref().unwrap().base, Path::new("/sys/fs/cgroup/tend-77"));
    assert_eq!(m.plan.v2_controllers, vec![Controller::Memory, Controller::Pids]);
    assert_eq!(m.describe(), "v2 (memory, pids); no cpu");
    assert!(m.supports(&res(None, None, Some(500), None)).unwrap_err().contains("cpu_max"));
    assert!(m.supports(&res(None, None, None, Some(50))).unwrap_err().contains("cpu_weight"));
    assert_eq!(m.supports(&res(Some(1), Some(1), None, None)), Ok(()));
}

#[test]
fn v1_only_host_uses_the_freezer() {
    let layout = parse_layout(
        "11:cpu,cpuacct:/\n10:memory:/\n3:pids:/\n2:freezer:/\n1:name=systemd:/\n",
        "29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
         30 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
         31 25 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
         32 25 0:29 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n",
    );
    let m = CgroupManager::from_parts(layout.clone(), &probe_all_writable(&layout));
    let idx = |c: &str| layout.v1.iter().position(|h| h.has(c)).unwrap();
    assert_eq!(m.plan.member, Ok(Member::V1(idx("freezer"))));
    assert_eq!(m.plan.v1_join, vec![idx("freezer"), idx("memory"), idx("pids"), idx("cpu")]);
    assert_eq!(m.plan.v1_cpuacct, Some(idx("cpuacct")));
    assert_eq!(m.describe(), "v1 (freezer membership; memory, pids, cpu)");
    assert_eq!(m.supports(&all_limits()), Ok(()));
}

#[test]
fn v1_only_without_freezer_kills_until_empty() {
    let layout =
        parse_layout("4:memory:/\n", "30 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
    let m = CgroupManager::from_parts(layout.clone(), &probe_all_writable(&layout));
    assert_eq!(m.plan.member, Ok(Member::V1(0)));
    assert_eq!(m.describe(), "v1 (kill-until-empty membership; memory); no pids/cpu");
}

/// This machine's layout with cgroup2 unmounted (the issue-15 host): v1 only,
/// every controller in a hierarchy of its own.
fn this_host_without_cgroup2() -> (Layout, CgroupManager) {
    let mountinfo: String =
        HYBRID_MOUNTINFO.lines().filter(|l| !l.contains(" - cgroup2 ")).map(|l| format!("{l}\n")).collect();
    let layout = parse_layout(HYBRID_CGROUP, &mountinfo);
    let m = CgroupManager::from_parts(layout.clone(), &probe_all_writable(&layout));
    (layout, m)
}

fn hierarchy_names(layout: &Layout, joins: &[usize]) -> Vec<String> {
    joins.iter().map(|&i| layout.v1[i].controllers.join(",")).collect()
}

#[test]
fn v1_only_service_without_limits_joins_only_the_hierarchy_that_stops_it() {
    let (layout, m) = this_host_without_cgroup2();
    assert_eq!(m.describe(), "v1 (freezer membership; memory, pids, cpu)");
    // Every further hierarchy is a cgroup to make and a write before exec.
    let joins = v1_joins(&m.plan, &ResourcesSpec::default());
    assert_eq!(hierarchy_names(&layout, &joins), ["freezer"]);
    // `accounting: true` adds what `status` reads, and still no pids or cpu.
    let accounting = ResourcesSpec { accounting: true, ..ResourcesSpec::default() };
    assert_eq!(hierarchy_names(&layout, &v1_joins(&m.plan, &accounting)), ["freezer", "memory", "cpuacct"]);
}

#[test]
fn v1_only_service_joins_the_hierarchies_of_the_limits_it_sets() {
    let (layout, m) = this_host_without_cgroup2();
    let names = |r: ResourcesSpec| hierarchy_names(&layout, &v1_joins(&m.plan, &r));
    assert_eq!(names(res(None, Some(10), None, None)), ["freezer", "memory", "pids", "cpuacct"]);
    assert_eq!(names(res(None, None, None, Some(50))), ["freezer", "memory", "cpu", "cpuacct"]);
    assert_eq!(names(res(None, None, Some(500), None)), ["freezer", "memory", "cpu", "cpuacct"]);
    assert_eq!(names(all_limits()), ["freezer", "memory", "pids", "cpu", "cpuacct"]);
}

#[test]
fn hybrid_service_joins_v1_only_for_limits() {
    let layout = parse_layout(HYBRID_CGROUP, HYBRID_MOUNTINFO);
    let probe = Probe { v2_procs: vec![1, 77], v2_is_root: true, ..probe_all_writable(&layout) };
    let m = CgroupManager::from_parts(layout.clone(), &probe);
    let names = |r: ResourcesSpec| hierarchy_names(&layout, &v1_joins(&m.plan, &r));
    // Membership is v2, at clone time: no v1 write at all.
    assert!(names(ResourcesSpec::default()).is_empty());
    // cpu_usec is v2's; memory_bytes needs the v1 memory cgroup.
    assert_eq!(names(ResourcesSpec { accounting: true, ..ResourcesSpec::default() }), ["memory"]);
    // cpu_usec comes from v2's cpu.stat: no cpuacct; memory for memory_bytes.
    assert_eq!(names(res(None, Some(10), None, None)), ["memory", "pids"]);
    assert_eq!(names(res(Some(1 << 20), None, None, None)), ["memory"]);
    assert_eq!(names(all_limits()), ["memory", "pids", "cpu"]);
}

#[test]
fn v1_only_without_freezer_joins_its_membership_hierarchy() {
    let layout = parse_layout(
        "3:pids:/\n4:memory:/\n",
        "31 25 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
         30 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
    );
    let m = CgroupManager::from_parts(layout.clone(), &probe_all_writable(&layout));
    assert_eq!(hierarchy_names(&layout, &v1_joins(&m.plan, &ResourcesSpec::default())), ["pids"]);
}

#[test]
fn join_through_tasks_on_v1_and_cgroup_procs_on_v2() {
    // v1: `tasks` with "0" moves the writer alone and skips the threadgroup
    // lock (no RCU grace period); v2 `cgroup.threads` could not cross domains.
    assert_eq!(join_file(false), "tasks");
    assert_eq!(join_file(true), "cgroup.procs");
}

#[test]
fn nothing_mounted_is_unavailable() {
    let layout = parse_layout("0::/\n", "23 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n");
    let m = CgroupManager::from_parts(layout.clone(), &probe_all_writable(&layout));
    let err = m.available().unwrap_err();
    assert_eq!(err, "no cgroup2 file system mounted; no v1 hierarchy mounted");
    assert!(m.supports(&ResourcesSpec::default()).is_err());
    assert!(m.supports(&res(Some(1), None, None, None)).unwrap_err().contains("memory_max"));
    assert!(m.describe().starts_with("unavailable: "));
}

#[test]
fn read_only_cgroup_file_system_is_unavailable() {
    let layout = parse_layout("0::/\n", V2_MOUNTINFO);
    let probe = Probe {
        pid: 1,
        v2_controllers: words("memory pids cpu"),
        v2_procs: vec![1],
        v2_writable: Err("Read-only file system (os error 30)".into()),
        ..Probe::default()
    };
    let m = CgroupManager::from_parts(layout, &probe);
    let err = m.available().unwrap_err();
    assert!(err.contains("cannot write in /sys/fs/cgroup: Read-only file system"), "{err}");
}

#[test]
fn values() {
    assert_eq!(max_value(None), "max");
    assert_eq!(max_value(Some(67108864)), "67108864");
    assert_eq!(cpu_max_value(Some(500)), "50000 100000");
    assert_eq!(cpu_max_value(Some(2000)), "200000 100000");
    assert_eq!(cpu_max_value(Some(1)), "1000 100000");
    assert_eq!(cpu_max_value(None), "max 100000");
    assert_eq!(cpu_quota_us(500), 50_000);
    assert_eq!(v1_memory_limit(None), "-1");
    assert_eq!(v1_memory_limit(Some(4096)), "4096");
    assert_eq!(weight_to_shares(100), 1024);
    assert_eq!(weight_to_shares(1), 10);
    assert_eq!(weight_to_shares(10000), 102_400);
    assert_eq!(weight_to_shares(0), 2);
    assert_eq!(weight_to_shares(u32::MAX), 262_144);
    let events = "populated 1\nfrozen 0\n";
    assert_eq!(keyed_value(events, "populated"), Some(1));
    assert_eq!(keyed_value("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n", "oom_kill"), Some(1));
    assert_eq!(keyed_value("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n", "oom_kill"), Some(4));
    assert_eq!(keyed_value("usage_usec 1234\nuser_usec 1000\n", "usage_usec"), Some(1234));
    assert_eq!(keyed_value("", "oom_kill"), None);
    assert_eq!(parse_pids("12\n13\n"), vec![12, 13]);
}

#[test]
fn bad_names_are_refused_before_touching_anything() {
    let layout = parse_layout("0::/\n", "");
    let mut m = CgroupManager::from_parts(layout, &Probe::default());
    for name in ["", "..", "a/b", ".hidden"] {
        assert_eq!(
            m.create(name, &ResourcesSpec::default()).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}

// ---- real tests: root, this machine ----

mod real {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};

    /// Cleans up the manager's cgroups even when the test panics.
    struct Manager(CgroupManager);
    impl Drop for Manager {
        fn drop(&mut self) {
            self.0.cleanup();
        }
    }

    /// Kills and reaps the test's own child when the test ends.
    struct Owned(Child);
    impl Drop for Owned {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Likewise for the service's cgroup: kill what the test started in it, rmdir.
    struct Service(Option<ServiceCgroup>);
    impl Drop for Service {
        fn drop(&mut self) {
            if let Some(cg) = self.0.take() {
                let _ = cg.kill_all();
                let deadline = Instant::now() + Duration::from_secs(2);
                while !cg.is_empty() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                cg.remove();
            }
        }
    }
    impl std::ops::Deref for Service {
        type Target = ServiceCgroup;
        fn deref(&self) -> &ServiceCgroup {
            self.0.as_ref().unwrap()
        }
    }

    /// The host as it is, or with hierarchies hidden to exercise other paths.
    #[derive(Clone, Copy, Debug)]
    enum Host {
        AsIs,
        /// No cgroup2: v1 membership through the freezer.
        V1Freezer,
        /// No cgroup2, no freezer: v1 membership, kill until empty.
        V1Plain,
    }

    fn detect(host: Host) -> Manager {
        let cgroup = fs::read_to_string("/proc/self/cgroup").unwrap();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let hide: &[&str] = match host {
            Host::AsIs => &[],
            Host::V1Freezer => &[" - cgroup2 "],
            Host::V1Plain => &[" - cgroup2 ", ",freezer"],
        };
        let mountinfo: String = mountinfo
            .lines()
            .filter(|l| !hide.iter().any(|h| l.contains(h)))
            .map(|l| format!("{l}\n"))
            .collect();
        let m = CgroupManager::detect_with(&cgroup, &mountinfo);
        eprintln!("{host:?}: {}", m.describe());
        Manager(m)
    }

    fn need_root() {
        assert!(nix::unistd::geteuid().is_root(), "needs root; run with --ignored --test-threads=1");
    }

    fn spawn_in(cg: &ServiceCgroup, argv: &[&str]) -> Owned {
        let fds = cg.join_fds();
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: only write(2) on descriptors opened by the parent.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &fds {
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Owned(cmd.spawn().expect("spawn"))
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn name(tag: &str) -> String {
        format!("cgtest-{tag}-{}", std::process::id())
    }

    #[test]
    #[ignore = "needs root; touches /sys/fs/cgroup; run with --ignored --test-threads=1"]
    fn limits_membership_kill_and_remove() {
        need_root();
        let m = Manager(CgroupManager::detect());
        eprintln!("cgroups: {}", m.0.describe());
        drop(m);
        for host in [Host::AsIs, Host::V1Freezer, Host::V1Plain] {
            limits_membership_kill_and_remove_on(host);
        }
    }

    fn limits_membership_kill_and_remove_on(host: Host) {
        let mut m = detect(host);
        m.0.available().expect("available");
        let limits = res(Some(64 << 20), Some(20), Some(500), None);
        m.0.supports(&limits).expect("supports");
        let service = name("limits");
        let cg = Service(Some(m.0.create(&service, &limits).expect("create")));
        eprintln!("{:?}", *cg);
        let leaf = format!("/tend-{}/{service}.service", std::process::id());

        let child = spawn_in(&cg, &["sleep", "60"]);
        let pid = child.0.id() as i32;
        let membership = read(Path::new(&format!("/proc/{pid}/cgroup")));
        eprintln!("{membership}");
        let mut seen = Vec::new();
        for line in membership.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
            if path.ends_with(&leaf) {
                seen.push(if controllers.is_empty() { "unified" } else { controllers });
            }
        }
        let layout = &m.0.layout;
        let mut expected = Vec::new();
        if layout.unified.is_some() {
            expected.push("unified");
        }
        if let Ok(Member::V1(i)) = m.0.plan.member {
            expected.push(if layout.v1[i].has("freezer") { "freezer" } else { "pids" });
            assert_eq!(layout.v1[i].has("freezer"), matches!(host, Host::V1Freezer));
        }
        if let Some(i) = m.0.plan.v1_cpuacct {
            assert!(layout.v1[i].has("cpuacct"));
            expected.push("cpuacct");
        }
        for c in ["memory", "pids", "cpu"] {
            if m.0.plan.backends[Controller::ALL.iter().position(|x| x.name() == c).unwrap()] != Backend::V2 {
                expected.push(c);
            }
        }
        for e in &expected {
            assert!(seen.iter().any(|s| s.split(',').any(|x| x == *e)), "{e} not in {seen:?}");
        }
        assert!(cg.pids().contains(&pid), "{:?}", cg.pids());
        assert!(!cg.is_empty());

        // The limit files.
        let mut checked = 0;
        for dir in cg.dirs() {
            let has = |f: &str| dir.join(f).exists();
            if has("memory.limit_in_bytes") {
                assert_eq!(read(&dir.join("memory.limit_in_bytes")), (64u64 << 20).to_string());
                assert!(read(&dir.join("memory.oom_control")).contains("oom_kill_disable 0"));
                checked += 1;
            }
            if has("memory.max") {
                assert_eq!(read(&dir.join("memory.max")), (64u64 << 20).to_string());
                checked += 1;
            }
            if has("pids.max") {
                assert_eq!(read(&dir.join("pids.max")), "20");
                checked += 1;
            }
            if has("cpu.cfs_quota_us") {
                assert_eq!(read(&dir.join("cpu.cfs_quota_us")), "50000");
                assert_eq!(read(&dir.join("cpu.cfs_period_us")), "100000");
                assert_eq!(read(&dir.join("cpu.shares")), "1024");
                checked += 1;
            }
            if has("cpu.max") {
                assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
                checked += 1;
            }
        }
        assert_eq!(checked, 3, "one memory, one pids and one cpu limit in {:?}", cg.dirs());
        assert!(cg.memory_current().is_some_and(|b| b > 0), "{:?}", cg.memory_current());
        assert!(cg.cpu_usage_usec().is_some(), "cpu usage");
        assert_eq!(cg.oom_kills(), Some(0));

        // Kill: the process dies, the cgroup empties.
        let mut child = child;
        cg.kill_all().expect("kill_all");
        let status = child.0.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        wait_until("empty cgroup", || cg.is_empty());
        assert!(cg.pids().is_empty());

        let dirs = cg.dirs().to_vec();
        let mut cg = cg;
        cg.0.take().unwrap().remove();
        for d in &dirs {
            assert!(!d.exists(), "{} left behind", d.display());
        }
        let bases: Vec<PathBuf> = dirs.iter().map(|d| d.parent().unwrap().to_path_buf()).collect();
        m.0.cleanup();
        for b in &bases {
            assert!(!b.exists(), "{} left behind", b.display());
        }
    }

    #[test]
    #[ignore = "needs root; touches /sys/fs/cgroup; run with --ignored --test-threads=1"]
    fn escaped_daemon_is_killed_and_pids_max_holds() {
        need_root();
        for host in [Host::AsIs, Host::V1Freezer, Host::V1Plain] {
            escaped_daemon_on(host);
        }
    }

    fn escaped_daemon_on(host: Host) {
        let mut m = detect(host);
        let cg =
            Service(Some(m.0.create(&name("escape"), &res(None, Some(10), None, None)).expect("create")));
        // A daemon leaves the process group and the parent exits; then a fork
        // burst runs into pids.max.
        let mut child = spawn_in(
            &cg,
            &[
                "sh",
                "-c",
                "setsid sleep 61 & i=0; while [ $i -lt 30 ]; do sleep 62 & i=$((i+1)); done; exit 0",
            ],
        );
        child.0.wait().expect("wait");
        wait_until("the burst to settle", || cg.pids().len() >= 9);
        std::thread::sleep(Duration::from_millis(100));
        let n = cg.pids().len();
        eprintln!("{n} processes with pids_max 10");
        assert!((1..=10).contains(&n), "{n} processes with pids_max 10");
        cg.kill_all().expect("kill_all");
        wait_until("empty cgroup", || cg.is_empty());
    }

    #[test]
    #[ignore = "needs root; touches /sys/fs/cgroup; run with --ignored --test-threads=1"]
    fn memory_hog_is_oom_killed_and_counted() {
        need_root();
        let mut m = Manager(CgroupManager::detect());
        let cg =
            Service(Some(m.0.create(&name("oom"), &res(Some(32 << 20), None, None, None)).expect("create")));
        assert_eq!(cg.oom_kills(), Some(0));
        // `tail` keeps a whole newline-free input in memory.
        let mut child = spawn_in(&cg, &["sh", "-c", "head -c 300000000 /dev/zero | tail > /dev/null"]);
        let status = child.0.wait().expect("wait");
        assert!(!status.success());
        wait_until("the oom_kill counter", || cg.oom_kills().is_some_and(|n| n >= 1));
    }

    #[test]
    #[ignore = "needs root; touches /sys/fs/cgroup; run with --ignored --test-threads=1"]
    fn cpu_max_throttles() {
        need_root();
        let mut m = Manager(CgroupManager::detect());
        let cg = Service(Some(m.0.create(&name("cpu"), &res(None, None, Some(250), None)).expect("create")));
        let start = cg.cpu_usage_usec().expect("cpu usage");
        let _child = spawn_in(&cg, &["sh", "-c", "while :; do :; done"]);
        std::thread::sleep(Duration::from_millis(1000));
        let used = cg.cpu_usage_usec().unwrap() - start;
        eprintln!("{used} µs of CPU in 1 s with cpu_max 0.25");
        assert!((100_000..450_000).contains(&used), "{used} µs of CPU in 1 s with cpu_max 0.25");
    }

    #[test]
    #[ignore = "needs root; touches /sys/fs/cgroup; run with --ignored --test-threads=1"]
    fn re_create_resets_limits() {
        need_root();
        for host in [Host::AsIs, Host::V1Freezer] {
            re_create_resets_limits_on(host);
        }
    }

    fn re_create_resets_limits_on(host: Host) {
        let mut m = detect(host);
        let service = name("reuse");
        let first =
            m.0.create(&service, &res(Some(64 << 20), Some(20), Some(500), Some(300))).expect("create");
        let dirs = first.dirs().to_vec();
        drop(first);
        let again = Service(Some(m.0.create(&service, &ResourcesSpec::default()).expect("re-create")));
        // Without limits a service joins only what membership needs (v2
        // when mounted); the v1 cgroups of the earlier definition, with
        // their limits, are gone.
        assert!(again.dirs().iter().all(|d| dirs.contains(d)), "{:?} not within {dirs:?}", again.dirs());
        for dir in dirs.iter().filter(|d| !again.dirs().contains(d)) {
            assert!(!dir.exists(), "{} left with its old limits", dir.display());
        }
        for dir in again.dirs() {
            for (file, want) in [
                ("pids.max", "max"),
                ("cpu.cfs_quota_us", "-1"),
                ("cpu.shares", "1024"),
                ("memory.max", "max"),
                ("cpu.max", "max 100000"),
            ] {
                if dir.join(file).exists() {
                    assert_eq!(read(&dir.join(file)), want, "{}", dir.join(file).display());
                }
            }
            if dir.join("memory.limit_in_bytes").exists() {
                assert!(read(&dir.join("memory.limit_in_bytes")).parse::<u64>().unwrap() > 1 << 60);
            }
        }
    }

    /// A `tend-PID` folder left by an earlier tend with the same pid (PID 1
    /// of a container restarted in its cgroup) may hold a leaf with old
    /// limits: tend does not know its leaves, so a start without limits
    /// still removes them. (Leaves of its own making are tracked, and a
    /// start no longer tries to remove a leaf that cannot exist.)
    #[test]
    #[ignore = "needs root; touches /sys/fs/cgroup; run with --ignored --test-threads=1"]
    fn a_leaf_in_an_inherited_base_is_removed_at_start() {
        need_root();
        let probe = CgroupManager::detect();
        // A hierarchy that a service without limits does not join.
        let Some(i) = probe
            .plan
            .v1_join
            .iter()
            .copied()
            .find(|&i| probe.plan.member != Ok(Member::V1(i)) && probe.layout.v1[i].has("pids"))
        else {
            panic!("this host has no v1 pids hierarchy beside the membership one: {}", probe.describe());
        };
        let service = name("inherit");
        let base = probe.v1_base(i);
        let stale = base.join(format!("{service}.service"));
        fs::create_dir(&base).expect("make the earlier tend's base");
        fs::create_dir(&stale).expect("make the earlier tend's leaf");
        write_file(&stale.join("pids.max"), "5").expect("its old limit");

        let mut m = Manager(CgroupManager::detect());
        let _cg = Service(Some(m.0.create(&service, &ResourcesSpec::default()).expect("create")));
        let stale_left = stale.exists();
        let _ = fs::remove_dir(&stale);
        assert!(!stale_left, "{} left with its old limit", stale.display());
    }
}

mod delegated {
    use super::*;

    /// The delegated v2 path on this host: the test process alone in a
    /// non-root v2 cgroup moves itself into `supervisor`, services become its
    /// siblings, and cleanup moves it back.
    #[test]
    #[ignore = "needs root; touches /sys/fs/cgroup; run with --ignored --test-threads=1"]
    fn alone_in_a_v2_cgroup_moves_into_supervisor() {
        assert!(nix::unistd::geteuid().is_root(), "needs root");
        let m = CgroupManager::detect();
        let Some(u) = m.layout.unified.clone() else { return };
        let pid = std::process::id();
        let own = u.own.join(format!("cgtest-own-{pid}"));
        let home = u.own.join("cgroup.procs");
        fs::create_dir(&own).unwrap();
        write_file(&own.join("cgroup.procs"), &pid.to_string()).unwrap();
        let result = std::panic::catch_unwind(|| {
            let mut m = CgroupManager::detect();
            assert!(m.plan.v2.as_ref().unwrap().delegate, "{:?}", m.plan);
            let cg = m.create("svc", &ResourcesSpec::default()).unwrap();
            assert_eq!(cg.member, own.join("svc.service"));
            let mine = fs::read_to_string("/proc/self/cgroup").unwrap();
            assert!(mine
                .contains(&format!("0::{}/cgtest-own-{pid}/supervisor", u.own_path.trim_end_matches('/'))));
            assert!(cg.is_empty());
            cg.remove();
            m.cleanup();
            assert!(!own.join("supervisor").exists());
            assert!(!own.join("svc.service").exists());
        });
        // Home again, whatever happened.
        let _ = fs::read_dir(&own).map(|d| {
            for e in d.flatten() {
                if e.path().is_dir() {
                    let _ = write_file(&home, &pid.to_string());
                    let _ = fs::remove_dir(e.path());
                }
            }
        });
        let _ = write_file(&home, &pid.to_string());
        fs::remove_dir(&own).unwrap();
        result.unwrap();
    }
}
