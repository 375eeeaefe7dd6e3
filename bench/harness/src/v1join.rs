//! Issue 15's probe: what one join of a v1 cgroup costs a freshly forked
//! child, by file (`cgroup.procs` or `tasks`) and by whether the cgroup is
//! new or kept across joins. Each sample waits IDLE first, so that no other
//! cgroup writer on the machine recently took the kernel's threadgroup lock
//! (whose write side then waits for an RCU grace period). See ../../run.

use super::*;

/// A v1 hierarchy to probe (freezer first, as tend's membership), and the
/// directory this process is in there.
fn v1_hierarchy() -> Option<(String, PathBuf)> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    for want in ["freezer", "pids", "memory", "cpuacct"] {
        for l in mountinfo.lines() {
            let (left, right) = l.split_once(" - ")?;
            let right: Vec<&str> = right.split(' ').collect();
            if right.first() != Some(&"cgroup")
                || !right.get(2).is_some_and(|o| o.split(',').any(|x| x == want))
            {
                continue;
            }
            let left: Vec<&str> = left.split(' ').collect();
            let (root, point) = (left.get(3)?, left.get(4)?);
            let path = own.lines().find_map(|c| {
                let mut p = c.splitn(3, ':');
                let (_, ctl, path) = (p.next()?, p.next()?, p.next()?);
                ctl.split(',').any(|x| x == want).then(|| path.to_string())
            })?;
            let rel = path.strip_prefix(root).unwrap_or(&path).trim_start_matches('/').to_string();
            return Some((want.to_string(), Path::new(point).join(rel)));
        }
    }
    None
}

/// Fork a child that writes "0" to `fd` and reports how long the write took (µs).
fn one_join(fd: i32) -> Option<f64> {
    let mut p = [0i32; 2];
    // SAFETY: pipe2 into a local array; the child only calls
    // async-signal-safe functions (clock_gettime, write, _exit).
    unsafe {
        if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return None;
        }
        let pid = libc::fork();
        if pid == 0 {
            let mut a = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            let mut b = a;
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut a);
            let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut b);
            let ns: i64 =
                if ok { (b.tv_sec - a.tv_sec) * 1_000_000_000 + (b.tv_nsec - a.tv_nsec) } else { -1 };
            libc::write(p[1], (&ns as *const i64).cast(), 8);
            libc::_exit(0);
        }
        libc::close(p[1]);
        let mut ns: i64 = -1;
        let n = libc::read(p[0], (&mut ns as *mut i64).cast(), 8);
        libc::close(p[0]);
        if pid > 0 {
            let mut st = 0;
            libc::waitpid(pid, &mut st, 0);
        }
        (n == 8 && ns >= 0).then(|| ns as f64 / 1e3)
    }
}

pub fn v1join(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    if !more::is_root() {
        notes.push("v1 join rows skipped: not root".into());
        return;
    }
    let Some((controller, own)) = v1_hierarchy() else {
        notes.push("v1 join rows skipped: no v1 hierarchy (freezer, pids, memory, cpuacct) mounted".into());
        return;
    };
    let base = own.join(format!("tend-bench-{}", std::process::id()));
    if let Err(e) = fs::create_dir(&base) {
        notes.push(format!("v1 join rows skipped: cannot create {}: {e}", base.display()));
        return;
    }
    let samples = cfg.crashes.clamp(5, 41);
    let idle = Duration::from_millis(100);
    for file in ["cgroup.procs", "tasks"] {
        let (mut kept, mut fresh) = (vec![], vec![]);
        let keep_dir = base.join("kept");
        let _ = fs::create_dir(&keep_dir);
        for i in 0..samples {
            for new in [false, true] {
                let dir = if new { base.join(format!("fresh{i}")) } else { keep_dir.clone() };
                if new && fs::create_dir(&dir).is_err() {
                    continue;
                }
                thread::sleep(idle);
                let path = CString::new(dir.join(file).to_str().unwrap()).unwrap();
                // SAFETY: open with a NUL-terminated path.
                let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
                if fd >= 0 {
                    if let Some(us) = one_join(fd) {
                        (if new { &mut fresh } else { &mut kept }).push(us);
                    }
                    // SAFETY: closing the descriptor just opened.
                    unsafe { libc::close(fd) };
                }
                if new {
                    let _ = fs::remove_dir(&dir);
                }
            }
        }
        let _ = fs::remove_dir(&keep_dir);
        rows.push(Row {
            figure: format!(
                "(information) one v1 join: a just-forked child writes `0` to `{file}` of a {controller} cgroup, after {} ms without cgroup writes{}",
                idle.as_millis(),
                cfg.host_label()
            ),
            tend: format!("cgroup kept across joins: {}", fmt_stat(&kept, 1, "µs")),
            reference: format!("a new cgroup each time: {}", fmt_stat(&fresh, 1, "µs")),
            ratio: "—".into(),
            target: "—".into(),
            verdict: if file == "tasks" { "tend's way".into() } else { "—".into() },
        });
    }
    let _ = fs::remove_dir(&base);
}
