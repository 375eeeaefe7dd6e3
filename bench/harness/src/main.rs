//! Benchmark harness for `tend` (see ../../run for how to run it and what each
//! figure means). Every time here is taken with `Instant` (CLOCK_MONOTONIC).
//!
//! The harness makes itself a child subreaper, so services that a killed or
//! misbehaving `tend` leaves behind come back to it and are killed and reaped
//! here (by pid, never by name).

use std::ffi::{CStr, CString};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::thread;
use std::time::{Duration, Instant};

mod followers;
mod more;
mod pool;
mod v1join;

// ---------------------------------------------------------------- utilities

fn die(msg: &str) -> ! {
    eprintln!("harness: {msg}");
    std::process::exit(2)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::INFINITY, f64::min)
}
fn max(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
}

/// "median (min–max, n=N)" with `prec` decimals.
fn fmt_stat(v: &[f64], prec: usize, unit: &str) -> String {
    if v.is_empty() {
        return "no data".into();
    }
    format!("**{:.p$} {u}** ({:.p$}–{:.p$}, n={})", median(v), min(v), max(v), v.len(), p = prec, u = unit)
}

fn pidfd_open(pid: i32) -> i32 {
    // SAFETY: pidfd_open with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        die(&format!("pidfd_open({pid}): {}", std::io::Error::last_os_error()));
    }
    fd
}

/// Wait until `pid` has exited (is a zombie or gone), without reaping it.
/// Returns the instant the harness saw it, or None on timeout.
fn wait_exit(pidfd: i32, timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one local pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
        let now = Instant::now();
        if rc > 0 {
            return Some(now);
        }
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if now >= deadline {
            return None;
        }
    }
}

fn kill(pid: i32, sig: i32) -> bool {
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// (state, ppid, comm) from /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(char, i32, String)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let mut rest = s[close + 2..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid, comm))
}

fn alive(pid: i32) -> bool {
    matches!(proc_stat(pid), Some((st, _, _)) if st != 'Z' && st != 'X')
}

/// Pids whose parent is `ppid`.
fn children_of(ppid: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                if let Some((_, pp, comm)) = proc_stat(pid) {
                    if pp == ppid {
                        out.push((pid, comm));
                    }
                }
            }
        }
    }
    out
}

/// Field `key` (in kB or count) from /proc/PID/status.
fn status_field(path: &str, key: &str) -> Option<u64> {
    let s = fs::read_to_string(path).ok()?;
    for line in s.lines() {
        if let Some(v) = line.strip_prefix(key) {
            return v.trim_start_matches(':').split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// Voluntary + nonvoluntary context switches over every thread of `pid`,
/// and the number of threads.
fn ctxt_switches(pid: i32) -> (u64, usize) {
    let mut total = 0;
    let mut threads = 0;
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            let p = format!("{}/status", e.path().display());
            total += status_field(&p, "voluntary_ctxt_switches").unwrap_or(0)
                + status_field(&p, "nonvoluntary_ctxt_switches").unwrap_or(0);
            threads += 1;
        }
    }
    (total, threads)
}

/// Reap every child of the harness that has exited (orphans handed to us as
/// subreaper). Only called when no `Child` handle is outstanding.
fn reap_all() {
    loop {
        let mut st = 0;
        // SAFETY: waitpid writes the status into a local; the harness is the reaper of its own children (subreaper), single-threaded here.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

/// Kill (SIGKILL) the listed pids that are still alive and are ours
/// (children of the harness or of `parent`), then reap.
fn kill_leftovers(pids: &[i32], parent: Option<i32>) -> usize {
    let me = std::process::id() as i32;
    let mut n = 0;
    for &p in pids {
        if let Some((st, pp, _)) = proc_stat(p) {
            if st != 'Z' && (pp == me || Some(pp) == parent) {
                kill(p, libc::SIGKILL);
                n += 1;
            }
        }
    }
    n
}

// ---------------------------------------------------------------- tend up

struct Tend {
    child: Child,
    pidfd: i32,
    stderr: std::process::ChildStderr,
    buf: Vec<u8>,
    pending: std::collections::VecDeque<(Instant, String)>,
    last_killed_line: Option<Instant>,
    log: Vec<String>,
    services: Vec<i32>,
}

enum Ev {
    Started { pid: i32 },
    Other,
}

fn parse(line: &str) -> Ev {
    let body = match line.find("| ") {
        Some(i) => &line[i + 2..],
        None => return Ev::Other,
    };
    if let Some(i) = body.find(": started (pid ") {
        let rest = &body[i + ": started (pid ".len()..];
        if let Some(pid) = rest.split(')').next().and_then(|s| s.trim().parse().ok()) {
            return Ev::Started { pid };
        }
    }
    Ev::Other
}

impl Tend {
    /// Spawn `tend up --units DIR --socket DIR.sock`; returns the instant
    /// just before spawn. (A private socket: never the default one, which
    /// another `tend up` on this machine may own.)
    fn up(tend: &Path, dir: &Path) -> (Tend, Instant) {
        Tend::up_with(tend, dir, Stdio::null())
    }

    /// The same, with tend's stdout sent to `stdout`.
    fn up_with(tend: &Path, dir: &Path, stdout: Stdio) -> (Tend, Instant) {
        let mut cmd = Command::new(tend);
        cmd.arg("up").arg("--units").arg(dir).arg("--socket").arg(socket_of(dir));
        Tend::start(cmd, stdout)
    }

    /// This harness as the least supervisor process (`--minimal-supervisor`),
    /// read like tend.
    fn minimal(session: bool) -> (Tend, Instant) {
        let exe = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
        let mut cmd = Command::new(exe);
        cmd.arg("--minimal-supervisor").arg(if session { "setsid" } else { "plain" });
        Tend::start(cmd, Stdio::null())
    }

    fn start(mut cmd: Command, stdout: Stdio) -> (Tend, Instant) {
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped());
        cmd.process_group(0);
        let t0 = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| die(&format!("spawn {}: {e}", cmd.get_program().to_string_lossy())));
        let stderr = child.stderr.take().unwrap();
        let pidfd = pidfd_open(child.id() as i32);
        (
            Tend {
                child,
                pidfd,
                stderr,
                buf: Vec::new(),
                pending: Default::default(),
                last_killed_line: None,
                log: Vec::new(),
                services: Vec::new(),
            },
            t0,
        )
    }

    /// Next line of tend's stderr, read directly by this thread (no hop
    /// through another thread): (instant the read returned, line).
    fn next_line(&mut self, timeout: Duration) -> Option<(Instant, String)> {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.pending.pop_front() {
                return Some(l);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut pfd = libc::pollfd { fd: self.stderr.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: poll on one local pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
            if rc <= 0 {
                continue;
            }
            let mut chunk = [0u8; 65536];
            let n = match self.stderr.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => n,
            };
            let now = Instant::now();
            self.buf.extend_from_slice(&chunk[..n]);
            while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                self.pending.push_back((now, String::from_utf8_lossy(&line).trim_end().to_string()));
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Next `started (pid N)` line: (instant read, pid).
    fn next_started(&mut self, timeout: Duration) -> Option<(Instant, i32)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some((t, line)) => {
                    if line.contains("killed by signal") {
                        self.last_killed_line = Some(t);
                    }
                    let ev = parse(&line);
                    self.log.push(line);
                    if let Ev::Started { pid } = ev {
                        self.services.push(pid);
                        return Some((t, pid));
                    }
                }
                None => return None,
            }
        }
    }

    fn drain(&mut self) {
        while let Some((_, line)) = self.next_line(Duration::from_millis(1)) {
            self.log.push(line);
        }
    }

    fn fail(&mut self, what: &str) -> String {
        self.drain();
        let tail: Vec<_> = self.log.iter().rev().take(5).rev().cloned().collect();
        format!("{what}; last tend lines: {tail:?}")
    }

    /// SIGTERM, wait for exit; returns (time to exit, exit status, services
    /// still alive right after). Always cleans up.
    fn terminate(mut self) -> (Option<Duration>, String, usize) {
        let t0 = Instant::now();
        kill(self.pid(), libc::SIGTERM);
        let t1 = wait_exit(self.pidfd, Duration::from_secs(10));
        let dt = t1.map(|t| t - t0);
        let left = self.services.iter().filter(|&&p| alive(p)).count();
        self.finish(dt.is_none());
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!("{s}"),
            _ => "?".into(),
        };
        (dt, status, left)
    }

    /// Kill tend (if needed) and every service it reported; reap.
    fn finish(&mut self, force: bool) {
        if force {
            kill(self.pid(), libc::SIGKILL);
        }
        let _ = self.child.wait();
        // SAFETY: closes the pidfd this struct owns, once.
        unsafe { libc::close(self.pidfd) };
        self.drain();
        // Services are orphans of the harness (subreaper) once tend is gone.
        let s = self.services.clone();
        kill_leftovers(&s, None);
        thread::sleep(Duration::from_millis(20));
        reap_all();
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.finish(true);
        }
    }
}

/// The control socket used for the units folder `dir`.
fn socket_of(dir: &Path) -> PathBuf {
    dir.with_extension("sock")
}

fn make_units(root: &Path, name: &str, n: usize, body: &str) -> PathBuf {
    let dir = root.join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        fs::write(dir.join(format!("s{i:03}.yaml")), body).unwrap();
    }
    dir
}

// ---------------------------------------------------------------- raw spawn

/// fork + execv + wait for exec confirmation on a close-on-exec pipe (EOF
/// means exec succeeded). argv is prepared before fork. Returns the pid.
fn raw_spawn(path: &CStr, argv: &[*const libc::c_char]) -> i32 {
    raw_spawn_with(path, argv, false)
}

/// `raw_spawn`, the child in a session of its own first (`setsid`, as tend
/// starts a service) when `session`.
fn raw_spawn_with(path: &CStr, argv: &[*const libc::c_char], session: bool) -> i32 {
    // SAFETY: argv is NULL-terminated and prepared before fork; the child only calls async-signal-safe functions (setsid, execv, write, _exit).
    unsafe {
        let mut fds = [0i32; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            die("pipe2");
        }
        let pid = libc::fork();
        if pid == 0 {
            libc::close(fds[0]);
            if session {
                libc::setsid();
            }
            libc::execv(path.as_ptr(), argv.as_ptr());
            let e = *libc::__errno_location();
            libc::write(fds[1], &e as *const i32 as *const libc::c_void, 4);
            libc::_exit(127);
        }
        libc::close(fds[1]);
        let mut e = 0i32;
        let n = loop {
            let n = libc::read(fds[0], &mut e as *mut i32 as *mut libc::c_void, 4);
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            break n;
        };
        libc::close(fds[0]);
        if n != 0 {
            die(&format!("raw spawn: exec failed errno {e}"));
        }
        pid
    }
}

/// The least a supervisor process can do for one `restart: always`
/// service (the crash figure's last information rows): block in `waitpid`
/// on the one child (no signal handler, no event loop, no bookkeeping),
/// then the very raw spawn the reference times (`session`: with a `setsid`
/// in the child first, as tend starts a service), then one line on stderr
/// as tend writes it. What is left between this and the raw spawn is the
/// relay itself: the dying process, a sleeping supervisor woken, its reader
/// woken by the line, and how the scheduler places the four.
fn minimal_supervisor(session: bool) -> ! {
    use std::io::Write;
    let sleep = which("sleep");
    let arg1 = CString::new("1000").unwrap();
    let argv = [sleep.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let say = |text: String| {
        // One write per event, as tend's.
        let _ = std::io::stderr().write_all(text.as_bytes());
    };
    let mut pid = raw_spawn_with(&sleep, &argv, session);
    say(format!("min  | crash: started (pid {pid})\n"));
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child, status into a local.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            continue;
        }
        say("min  | crash: killed by signal SIGKILL\nmin  | crash: restarting in 0s\n".into());
        pid = raw_spawn_with(&sleep, &argv, session);
        say(format!("min  | crash: started (pid {pid})\n"));
    }
}

fn which(prog: &str) -> CString {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(prog);
        if p.is_file() {
            return CString::new(p.to_str().unwrap()).unwrap();
        }
    }
    die(&format!("{prog} not found in PATH"))
}

// ---------------------------------------------------------------- scenarios

struct Row {
    figure: String,
    tend: String,
    reference: String,
    ratio: String,
    target: String,
    verdict: String,
}

fn verdict(ok: bool) -> String {
    if ok {
        "met".into()
    } else {
        "**missed**".into()
    }
}

struct Cfg {
    tend: PathBuf,
    tini: Option<PathBuf>,
    runs: usize,
    idle_secs: u64,
    crashes: usize,
    log_mb: u64,
    tmp: PathBuf,
    /// Run as on a host without cgroup2 (`--host v1`; bench/run puts the
    /// harness in a mount namespace where cgroup2 is unmounted): the rows say
    /// so and take issue 15's targets.
    v1_host: bool,
}

impl Cfg {
    /// Suffix for the figures of a `--host v1` run.
    fn host_label(&self) -> &'static str {
        if self.v1_host {
            ", **v1-only host** (no cgroup2 mounted)"
        } else {
            ""
        }
    }
}

/// The cgroup2 mount points this process sees.
fn cgroup2_mounts() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

const SLEEP_UNIT: &str = "command: [\"sleep\", \"1000\"]\nrestart: always\nstop_timeout: 1s\n";

/// Scenario A: 100 services. Per run: start time, idle wakeups, RSS, SIGTERM
/// time; interleaved with the plain spawn loop.
fn hundred(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let dir = make_units(&cfg.tmp, "hundred", 100, SLEEP_UNIT);
    let sleep = which("sleep");
    let (mut start, mut first, mut loopref, mut wake, mut rss, mut stop) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut threads = 0;
    let mut statuses = vec![];
    for run in 0..cfg.runs {
        eprintln!("harness: 100 services, run {}/{}", run + 1, cfg.runs);
        // Reference: plain loop spawning 100 sleeps (std Command, which
        // waits for each exec), timed from just before the first spawn.
        let t0 = Instant::now();
        let mut kids = Vec::with_capacity(100);
        for _ in 0..100 {
            let c = Command::new(sleep.to_str().unwrap())
                .arg("1000")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| die(&format!("spawn sleep: {e}")));
            kids.push(c);
        }
        loopref.push(ms(t0.elapsed()));
        for k in kids.iter_mut() {
            let _ = k.kill();
            let _ = k.wait();
        }
        thread::sleep(Duration::from_millis(100));

        // tend up with 100 units.
        let (mut t, t0) = Tend::up(&cfg.tend, &dir);
        let mut ok = true;
        for i in 0..100 {
            match t.next_started(Duration::from_secs(10)) {
                Some((t1, _)) => {
                    if i == 0 {
                        first.push(ms(t1 - t0));
                    }
                    if i == 99 {
                        start.push(ms(t1 - t0));
                    }
                }
                None => {
                    let m = t.fail(&format!("only {i} of 100 services started within 10 s"));
                    notes.push(m);
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        // Idle: let it settle, then count context switches over idle_secs.
        thread::sleep(Duration::from_millis(500));
        let (c0, _) = ctxt_switches(t.pid());
        let w0 = Instant::now();
        thread::sleep(Duration::from_secs(cfg.idle_secs));
        let (c1, th) = ctxt_switches(t.pid());
        let el = w0.elapsed().as_secs_f64();
        threads = th;
        wake.push((c1 - c0) as f64 / el);
        if let Some(kb) = status_field(&format!("/proc/{}/status", t.pid()), "VmRSS") {
            rss.push(kb as f64 / 1024.0);
        }
        t.drain();
        let extra: Vec<_> = t.log.iter().filter(|l| !l.contains(": started (pid ")).cloned().collect();
        if !extra.is_empty() {
            notes.push(format!("unexpected tend lines while idle: {:?}", &extra[..extra.len().min(5)]));
        }
        let n_services = t.services.len();
        let (dt, status, left) = t.terminate();
        match dt {
            Some(d) => stop.push(ms(d)),
            None => notes.push("tend up did not exit within 10 s of SIGTERM (killed)".into()),
        }
        statuses.push(status);
        if left > 0 {
            notes.push(format!(
                "{left} of {n_services} services still running right after tend up exited on SIGTERM"
            ));
        }
    }
    let _ = fs::remove_dir_all(&dir);
    statuses.dedup();
    notes.push(format!(
        "tend up: {threads} thread(s); exit status after SIGTERM: {}; first service started {} after spawn",
        statuses.join(", "),
        fmt_stat(&first, 2, "ms")
    ));

    let wm = median(&wake);
    rows.push(Row {
        figure: format!(
            "wakeups/s of tend, 100 idle services ({} s window, all threads){}",
            cfg.idle_secs,
            cfg.host_label()
        ),
        tend: fmt_stat(&wake, 2, "/s"),
        reference: "—".into(),
        ratio: "—".into(),
        target: "0".into(),
        verdict: verdict(wm == 0.0),
    });
    let rm = median(&rss);
    rows.push(Row {
        figure: format!("RSS of tend with 100 services (VmRSS){}", cfg.host_label()),
        tend: fmt_stat(&rss, 2, "MiB"),
        reference: "—".into(),
        ratio: "—".into(),
        target: "< 4 MiB".into(),
        verdict: verdict(rm < 4.0),
    });
    let (sm, lm) = (median(&start), median(&loopref));
    let (target, met) = if cfg.v1_host {
        ("≤ 1.2× loop (issue 15)", sm <= 1.2 * lm)
    } else {
        ("≤ 2× loop and < 50 ms", sm <= 2.0 * lm && sm < 50.0)
    };
    rows.push(Row {
        figure: format!("`tend up` spawn → 100th `started (pid` line{}", cfg.host_label()),
        tend: fmt_stat(&start, 2, "ms"),
        reference: format!(
            "loop of 100 std `Command::spawn` (`sleep 1000`): {}",
            fmt_stat(&loopref, 2, "ms")
        ),
        ratio: format!("{:.2}×", sm / lm),
        target: target.into(),
        verdict: verdict(met),
    });
    let stm = median(&stop);
    rows.push(Row {
        figure: format!("SIGTERM → `tend up` exited, 100 `sleep` services{}", cfg.host_label()),
        tend: fmt_stat(&stop, 2, "ms"),
        reference: "—".into(),
        ratio: "—".into(),
        target: "< 50 ms".into(),
        verdict: verdict(stm < 50.0),
    });
}

/// Scenario B: crash → replacement exec'd, restart_delay 0.
/// A least supervisor process: it, its service's current start, the samples.
type LeastSupervisor = (Tend, Option<(Instant, i32)>, Vec<f64>);

fn crash(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let body = "command: [\"sleep\", \"1000\"]\nrestart: always\nrestart_delay: 0s\n\
                start_limit: {burst: 100000, interval: 1s}\nstop_timeout: 1s\n";
    let dir = make_units(&cfg.tmp, "crash", 1, body);
    let sleep = which("sleep");
    let arg1 = CString::new("1000").unwrap();
    let argv = [sleep.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let (mut tendv, mut rawv, mut kwsv, mut killedv) = (vec![], vec![], vec![], vec![]);
    // The least supervisor process, without and with a session per service.
    let mut least: Vec<LeastSupervisor> = [false, true]
        .into_iter()
        .map(|session| {
            let (mut m, _) = Tend::minimal(session);
            let first = m.next_started(Duration::from_secs(10));
            (m, first, Vec::new())
        })
        .collect();
    let (mut t, _) = Tend::up(&cfg.tend, &dir);
    let mut cur = match t.next_started(Duration::from_secs(10)) {
        Some((_, p)) => p,
        None => {
            let m = t.fail("crash unit never started");
            notes.push(m);
            return;
        }
    };
    let me = std::process::id() as i32;
    for i in 0..cfg.crashes {
        thread::sleep(Duration::from_millis(30));
        // Reference 1: one raw spawn of the same program.
        let t0 = Instant::now();
        let p = raw_spawn(&sleep, &argv);
        rawv.push(ms(t0.elapsed()) * 1e3);
        // Reference 2 (information): the harness itself does kill → waitpid →
        // raw spawn, of a `sleep` that has run as long as tend's service
        // (so that it dies as slowly: a just-exec'd one has less to tear down).
        thread::sleep(Duration::from_millis(30));
        let t0 = Instant::now();
        kill(p, libc::SIGKILL);
        let mut st = 0;
        // SAFETY: waits for our own child `p`, status into a local.
        unsafe { libc::waitpid(p, &mut st, 0) };
        let p2 = raw_spawn(&sleep, &argv);
        kwsv.push(ms(t0.elapsed()) * 1e3);
        kill(p2, libc::SIGKILL);
        // SAFETY: waits for our own child `p2`, status into a local.
        unsafe { libc::waitpid(p2, &mut st, 0) };
        thread::sleep(Duration::from_millis(30));

        // tend: SIGKILL the service at T0, next `started (pid` at T1.
        let t0 = Instant::now();
        if !kill(cur, libc::SIGKILL) {
            notes.push(format!("crash {i}: kill({cur}) failed"));
            break;
        }
        match t.next_started(Duration::from_secs(5)) {
            Some((t1, p)) => {
                tendv.push(ms(t1 - t0) * 1e3);
                if let Some(k) = t.last_killed_line.take() {
                    killedv.push(ms(k.saturating_duration_since(t0)) * 1e3);
                }
                cur = p;
            }
            None => {
                let m = t.fail(&format!("crash {i}: no replacement within 5 s"));
                notes.push(m);
                break;
            }
        }

        // References 3 and 4 (information): the least supervisor process.
        for (m, current, samples) in &mut least {
            let Some((_, pid)) = *current else { continue };
            thread::sleep(Duration::from_millis(30));
            let t0 = Instant::now();
            kill(pid, libc::SIGKILL);
            *current = m.next_started(Duration::from_secs(5));
            if let Some((t1, _)) = *current {
                samples.push(ms(t1 - t0) * 1e3);
            }
        }
    }
    let least: Vec<Vec<f64>> = least
        .into_iter()
        .map(|(m, _, samples)| {
            let _ = m.terminate();
            samples
        })
        .collect();
    for samples in &least {
        if samples.len() != tendv.len() {
            notes.push(format!(
                "crash loop: a least supervisor gave {} samples of {}",
                samples.len(),
                tendv.len()
            ));
        }
    }
    let _ = me;
    t.drain();
    let kills = t.log.iter().filter(|l| l.contains("killed by signal SIGKILL")).count();
    let restarts = t.log.iter().filter(|l| l.contains("restarting in 0")).count();
    if kills != tendv.len() || restarts != tendv.len() {
        notes.push(format!(
            "crash loop: {} replacements but {kills} `killed by signal SIGKILL` and {restarts} `restarting in 0…` lines",
            tendv.len()
        ));
    }
    let other: Vec<_> = t
        .log
        .iter()
        .filter(|l| {
            !(l.contains(": started (pid ")
                || l.contains("killed by signal SIGKILL")
                || l.contains("restarting in 0"))
        })
        .cloned()
        .collect();
    if !other.is_empty() {
        notes.push(format!("crash loop: other tend lines: {:?}", &other[..other.len().min(5)]));
    }
    let _ = t.terminate();
    let _ = fs::remove_dir_all(&dir);
    notes.push(format!(
        "crash loop: the `killed by signal SIGKILL` line (written by tend after it forked the replacement) was read {} after the SIGKILL",
        fmt_stat(&killedv, 0, "µs")
    ));

    let (tm, rm) = (median(&tendv), median(&rawv));
    rows.push(Row {
        figure: format!("crash (SIGKILL) → replacement exec'd, `restart_delay: 0s`{}", cfg.host_label()),
        tend: fmt_stat(&tendv, 0, "µs"),
        reference: format!("one raw fork+exec+exec-confirmation of `sleep`: {}", fmt_stat(&rawv, 0, "µs")),
        ratio: format!("{:.2}×", tm / rm),
        target: "≤ 1.5× raw spawn".into(),
        verdict: verdict(tm <= 1.5 * rm),
    });
    rows.push(Row {
        figure: "(information) the same crash→replacement done by the harness itself".into(),
        tend: "—".into(),
        reference: format!("kill -9 → waitpid → raw spawn, in-process: {}", fmt_stat(&kwsv, 0, "µs")),
        ratio: format!("tend is {:.2}× this", tm / median(&kwsv)),
        target: "—".into(),
        verdict: "—".into(),
    });
    for (samples, how) in least.iter().zip(["", ", the service in a session of its own (`setsid`, as tend)"])
    {
        if samples.is_empty() {
            continue;
        }
        rows.push(Row {
            figure: format!("(information) the same crash→replacement through the least supervisor process{how}"),
            tend: "—".into(),
            reference: format!(
                "this harness as a supervisor: blocks in waitpid, then the raw spawn above, then the `started` line: {} ({:.2}× the raw spawn)",
                fmt_stat(samples, 0, "µs"),
                median(samples) / rm
            ),
            ratio: format!("tend is {:.2}× this", tm / median(samples)),
            target: "—".into(),
            verdict: "—".into(),
        });
    }
}

/// Run a whole command under a timeout, its stdout piped to us; returns
/// (elapsed, exit code, elapsed until the line `forked` appeared on stdout).
fn timed_run(argv: &[&str], timeout: Duration) -> (Option<Duration>, Option<i32>, Option<Duration>) {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    cmd.process_group(0);
    let t0 = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| die(&format!("spawn {}: {e}", argv[0])));
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        while let Ok(n) = r.read_line(&mut line) {
            if n == 0 {
                break;
            }
            if line.trim() == "forked" {
                let _ = tx.send(Instant::now());
            }
            line.clear();
        }
    });
    let pidfd = pidfd_open(child.id() as i32);
    let t1 = wait_exit(pidfd, timeout);
    // SAFETY: closes the pidfd opened above, once.
    unsafe { libc::close(pidfd) };
    if t1.is_none() {
        // Kill the whole process group (unshare + its PID namespace).
        // SAFETY: kill with integer arguments; the group is the one we started.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    }
    let st = child.wait().ok().and_then(|s| s.code());
    let forked = rx.recv_timeout(Duration::from_millis(500)).ok().map(|t| t - t0);
    reap_all();
    (t1.map(|t| t - t0), st, forked)
}

/// Then wait (polling /proc of the new namespace every ms) until only PID 1,
/// sh and the poller are left: no orphan and no zombie.
const POLL: &str = "echo forked; perl -e 'while (1) { opendir my $d, \"/proc\" or die; \
my $n = grep { /^[0-9]+$/ } readdir $d; closedir $d; last if $n <= 3; select(undef,undef,undef,0.001) }'";

/// The brief's workload: 10,000 children that each exit 50 ms after their
/// fork; their parent exits at once, so they exit as orphans spread over the
/// fork phase.
const ORPHANS_SPREAD: &str = "perl -e 'for (1..10000) { my $p = fork; defined $p or die \"fork: $!\"; \
if (!$p) { select(undef,undef,undef,0.05); exit 0 } }'";

/// Burst: 10,000 children block reading a pipe whose last writer is their
/// parent; the parent exits after the last fork, and all 10,000 orphans exit
/// at once: the reaper alone is timed after `forked`.
const ORPHANS_BURST: &str = "perl -e 'pipe(my $r, my $w) or die; for (1..10000) { my $p = fork; \
defined $p or die \"fork: $!\"; if (!$p) { close $w; sysread($r, my $b, 1); exit 0 } }'";

/// Scenario C: 10,000 orphans reaped by PID 1 of a new PID namespace.
fn orphans(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let tend = cfg.tend.to_str().unwrap();
    for (label, work) in [("spread", ORPHANS_SPREAD), ("burst", ORPHANS_BURST)] {
        let script = format!("{work} && {POLL}");
        let (mut tv, mut iv, mut ttail, mut itail) = (vec![], vec![], vec![], vec![]);
        for run in 0..cfg.runs {
            eprintln!("harness: 10,000 orphans ({label}), run {}/{}", run + 1, cfg.runs);
            let mut order: Vec<bool> = vec![true, false];
            if run % 2 == 1 {
                order.reverse();
            }
            for is_tend in order {
                let init: Vec<&str> = if is_tend {
                    vec![tend, "run", "--"]
                } else {
                    match &cfg.tini {
                        Some(t) => vec![t.to_str().unwrap(), "--"],
                        None => continue,
                    }
                };
                let mut argv = vec!["unshare", "--pid", "--fork", "--mount-proc"];
                argv.extend(init);
                argv.extend(["sh", "-c", script.as_str()]);
                let (d, code, forked) = timed_run(&argv, Duration::from_secs(60));
                let who = if is_tend { "tend run" } else { "tini" };
                match (d, code, forked) {
                    (Some(d), Some(0), Some(f)) => {
                        (if is_tend { &mut tv } else { &mut iv }).push(ms(d));
                        (if is_tend { &mut ttail } else { &mut itail }).push(ms(d - f));
                    }
                    _ => notes.push(format!(
                        "orphans ({label}) under {who}: elapsed {d:?}, exit code {code:?} (expected 0), `forked` seen at {forked:?}"
                    )),
                }
            }
            thread::sleep(Duration::from_millis(200));
        }
        let what = if label == "spread" {
            "10,000 orphans (each exits 50 ms after its fork)"
        } else {
            "10,000 orphans exiting at once (burst; information)"
        };
        for (part, t, i) in [("whole command", &tv, &iv), ("after last fork → init exited", &ttail, &itail)]
        {
            let tm = median(t);
            let (reference, ratio, ok) = if cfg.tini.is_some() {
                let im = median(i);
                (
                    format!("`tini --` as PID 1: {}", fmt_stat(i, 1, "ms")),
                    format!("{:.2}×", tm / im),
                    tm <= im,
                )
            } else {
                ("tini not installed: skipped".into(), "—".into(), true)
            };
            rows.push(Row {
                figure: format!("{what} reaped by PID 1 of `unshare --pid --fork --mount-proc`: {part}"),
                tend: fmt_stat(t, 1, "ms"),
                reference,
                ratio,
                target: "no slower than tini".into(),
                verdict: if cfg.tini.is_some() { verdict(ok) } else { "tini skipped".into() },
            });
        }
    }
}

/// Spawn `argv`, wait until its child `sleep` has exec'd, SIGTERM it at T0,
/// wait for it to exit at T1. Returns (T1-T0, exit code, sleep left alive).
fn sigterm_one(argv: &[&str]) -> Result<(Duration, Option<i32>, bool), String> {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("spawn {}: {e}", argv[0]))?;
    let pid = child.id() as i32;
    let pidfd = pidfd_open(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut grandchild = None;
    while Instant::now() < deadline {
        if let Some((p, _)) = children_of(pid).into_iter().find(|(_, c)| c == "sleep") {
            grandchild = Some(p);
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let res = match grandchild {
        None => Err(format!("{}: no `sleep` child appeared within 5 s", argv[0])),
        Some(gc) => {
            thread::sleep(Duration::from_millis(50));
            let t0 = Instant::now();
            kill(pid, libc::SIGTERM);
            match wait_exit(pidfd, Duration::from_secs(10)) {
                Some(t1) => {
                    let left = alive(gc);
                    Ok((t1 - t0, left, gc))
                }
                None => Err(format!("{}: did not exit within 10 s of SIGTERM", argv[0])),
            }
        }
    };
    // SAFETY: closes the pidfd opened above, once.
    unsafe { libc::close(pidfd) };
    if res.is_err() {
        // SAFETY: kill with integer arguments; the group is the one we started.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let code = child.wait().ok().map(|s| {
        use std::os::unix::process::ExitStatusExt;
        s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
    });
    match res {
        Ok((d, left, gc)) => {
            if left {
                kill(gc, libc::SIGKILL);
            }
            thread::sleep(Duration::from_millis(10));
            reap_all();
            Ok((d, code, left))
        }
        Err(e) => {
            reap_all();
            Err(e)
        }
    }
}

fn sigterm_run(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let tend = cfg.tend.to_str().unwrap();
    let runs = cfg.runs * 3;
    let (mut tv, mut iv) = (vec![], vec![]);
    let (mut tcodes, mut icodes) = (vec![], vec![]);
    for run in 0..runs {
        let mut order = vec![true, false];
        if run % 2 == 1 {
            order.reverse();
        }
        for is_tend in order {
            let argv: Vec<&str> = if is_tend {
                vec![tend, "run", "--", "sleep", "1000"]
            } else {
                match &cfg.tini {
                    Some(t) => vec![t.to_str().unwrap(), "-s", "--", "sleep", "1000"],
                    None => continue,
                }
            };
            let who = if is_tend { "tend run" } else { "tini" };
            match sigterm_one(&argv) {
                Ok((d, code, left)) => {
                    if left {
                        notes.push(format!("{who}: `sleep` still alive after it exited on SIGTERM"));
                    }
                    if is_tend {
                        tv.push(ms(d) * 1e3);
                        tcodes.push(code);
                    } else {
                        iv.push(ms(d) * 1e3);
                        icodes.push(code);
                    }
                }
                Err(e) => notes.push(e),
            }
        }
    }
    tcodes.sort();
    tcodes.dedup();
    icodes.sort();
    icodes.dedup();
    notes.push(format!(
        "exit code after SIGTERM: tend run {tcodes:?}, tini {icodes:?} (143 = 128+SIGTERM passed on)"
    ));
    let tm = median(&tv);
    let (reference, ratio, ok) = if cfg.tini.is_some() {
        let im = median(&iv);
        (format!("`tini -s -- sleep 1000`: {}", fmt_stat(&iv, 0, "µs")), format!("{:.2}×", tm / im), tm <= im)
    } else {
        ("tini not installed: skipped".into(), "—".into(), true)
    };
    rows.push(Row {
        figure: "SIGTERM → exit of `tend run -- sleep 1000`".into(),
        tend: fmt_stat(&tv, 0, "µs"),
        reference,
        ratio,
        target: "no slower than tini".into(),
        verdict: if cfg.tini.is_some() { verdict(ok) } else { "tini skipped".into() },
    });
}

fn main() {
    // Helper modes: the harness binary is also the log writer and the
    // sd_notify service of the scenarios in more.rs.
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("--write-lines") => more::write_lines(
            argv.get(2).and_then(|s| s.parse().ok()).unwrap_or_else(|| die("--write-lines N")),
        ),
        Some("--notify-ready") => more::notify_ready(),
        Some("--minimal-supervisor") => minimal_supervisor(argv.get(2).is_some_and(|a| a == "setsid")),
        _ => {}
    }
    let mut args = std::env::args().skip(1);
    let mut tend = None;
    let mut tini = None;
    let mut runs = 5;
    let mut idle_secs = 10;
    let mut crashes = 25;
    let mut log_mb = 200;
    let mut only: Option<String> = None;
    let mut v1_host = false;
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| die(&format!("{a} needs a value")));
        match a.as_str() {
            "--tend" => tend = Some(PathBuf::from(val())),
            "--tini" => tini = Some(PathBuf::from(val())),
            "--runs" => runs = val().parse().unwrap_or_else(|_| die("--runs N")),
            "--idle-secs" => idle_secs = val().parse().unwrap_or_else(|_| die("--idle-secs N")),
            "--crashes" => crashes = val().parse().unwrap_or_else(|_| die("--crashes N")),
            "--log-mb" => log_mb = val().parse().unwrap_or_else(|_| die("--log-mb N")),
            "--only" => only = Some(val()),
            "--host" => match val().as_str() {
                "v1" => v1_host = true,
                "as-is" => v1_host = false,
                other => die(&format!("--host v1|as-is, not {other}")),
            },
            _ => die(&format!("unknown argument {a}")),
        }
    }
    let tend = tend.unwrap_or_else(|| die("--tend PATH is required"));
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        die("cannot become a child subreaper");
    }
    let tmp = std::env::temp_dir().join(format!("tend-bench.{}", std::process::id()));
    fs::create_dir_all(&tmp).unwrap();
    if v1_host && !cgroup2_mounts().is_empty() {
        die(&format!(
            "--host v1, but cgroup2 is mounted at {:?}: run it through bench/run with CGROUP2=off",
            cgroup2_mounts()
        ));
    }
    let cfg = Cfg { tend, tini, runs, idle_secs, crashes, log_mb, tmp: tmp.clone(), v1_host };

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let want = |s: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == s));
    if want("hundred") {
        hundred(&cfg, &mut rows, &mut notes);
    }
    if want("crash") {
        crash(&cfg, &mut rows, &mut notes);
    }
    if want("orphans") {
        orphans(&cfg, &mut rows, &mut notes);
    }
    if want("sigterm") {
        sigterm_run(&cfg, &mut rows, &mut notes);
    }
    if want("status") {
        more::status(&cfg, &mut rows, &mut notes);
    }
    if want("logs") {
        more::logs(&cfg, &mut rows, &mut notes);
    }
    if want("pipeline") {
        more::pipeline(&cfg, &mut rows, &mut notes);
    }
    if want("chain") {
        more::chain(&cfg, &mut rows, &mut notes);
    }
    if want("notify") {
        more::notify(&cfg, &mut rows, &mut notes);
    }
    if want("sandbox") {
        more::sandbox(&cfg, &mut rows, &mut notes);
    }
    if want("resources") {
        more::resources(&cfg, &mut rows, &mut notes);
    }
    if want("pool") {
        pool::pool(&cfg, &mut rows, &mut notes);
    }
    if want("followers") {
        followers::followers(&cfg, &mut rows, &mut notes);
    }
    if want("v1join") {
        v1join::v1join(&cfg, &mut rows, &mut notes);
    }
    let _ = fs::remove_dir_all(&tmp);
    reap_all();

    println!("Median **bold** (min–max, n = samples); tend and its reference interleaved in the same run.\n");
    println!("| figure | tend | reference in the same run | tend / ref | target | verdict |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.figure, r.tend, r.reference, r.ratio, r.target, r.verdict
        );
    }
    if !notes.is_empty() {
        println!("\nNotes:");
        for n in &notes {
            println!("- {n}");
        }
    }
}
