//! Issue 12: what followers of `tend events` cost the loop. 100 crash-looping
//! services (`false`, `restart: always`, `restart_delay: 0s`): the loop
//! restarts them as fast as it can, and its restart throughput is measured
//! with no follower and with 20 `tend events` processes following every
//! service, interleaved run by run. See ../../run.

use super::*;

/// CPU time (user + system, all threads) of `pid` so far, in seconds.
fn cpu_secs(pid: i32) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3 of stat(5), utime 14 and stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf with a constant argument.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / tick)
}

/// One `tend metrics` call: (restarts summed over every service, control
/// connections open, events sent so far).
fn scrape(tend: &Path, sock: &str) -> Option<(f64, f64, f64)> {
    let out = Command::new(tend).args(["metrics", "--socket", sock]).stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |line: &str| line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
    let mut restarts = 0.0;
    let (mut conns, mut events) = (None, None);
    for line in text.lines() {
        if line.starts_with("tend_service_restarts_total{") {
            restarts += value(line)?;
        } else if line.starts_with("tend_control_connections ") {
            conns = value(line);
        } else if line.starts_with("tend_events_total ") {
            events = value(line);
        }
    }
    Some((restarts, conns?, events?))
}

/// What one run of one side measured.
struct Sample {
    restarts_per_sec: f64,
    cpu_ms_per_restart: f64,
    events_per_sec: f64,
    /// CPU time of the followers together per restart.
    followers_cpu_ms_per_restart: f64,
    /// Followers still connected at the end of the window (none dropped by
    /// the overflow rule).
    following: usize,
}

/// One `tend up` of the 100 crash loops with `followers` followers; `None`
/// (and a note) when something did not work.
fn one_run(
    cfg: &Cfg,
    dir: &Path,
    followers: usize,
    window: Duration,
    notes: &mut Vec<String>,
) -> Option<Sample> {
    let sock = socket_of(dir);
    let sock_s = sock.to_str().unwrap().to_string();
    let _ = fs::remove_file(&sock);
    // tend's output to /dev/null: what is measured is the loop, not a reader
    // of its stderr.
    let mut tend = Command::new(&cfg.tend)
        .arg("up")
        .arg("--units")
        .arg(dir)
        .arg("--socket")
        .arg(&sock)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| die(&format!("spawn {}: {e}", cfg.tend.display())));
    let pid = tend.id() as i32;
    let mut follow: Vec<Child> = Vec::new();
    let result = (|| {
        let up = Instant::now();
        while scrape(&cfg.tend, &sock_s).is_none_or(|(r, _, _)| r < 100.0) {
            if up.elapsed() > Duration::from_secs(10) {
                notes.push("followers: the 100 crash loops did not get going within 10 s".into());
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
        for _ in 0..followers {
            let child = Command::new(&cfg.tend)
                .args(["events", "--socket", &sock_s])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| die(&format!("spawn tend events: {e}")));
            follow.push(child);
        }
        // Every follower connected (the scrape is one more connection).
        let since = Instant::now();
        while scrape(&cfg.tend, &sock_s).is_none_or(|(_, c, _)| c < (followers + 1) as f64) {
            if since.elapsed() > Duration::from_secs(10) {
                notes.push(format!("followers: {followers} `tend events` did not all connect within 10 s"));
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
        // Settle for a second, then the window.
        thread::sleep(Duration::from_secs(1));
        let (r0, _, e0) = scrape(&cfg.tend, &sock_s)?;
        let c0 = cpu_secs(pid)?;
        let f0: f64 = follow.iter().filter_map(|c| cpu_secs(c.id() as i32)).sum();
        let t0 = Instant::now();
        thread::sleep(window);
        let (r1, conns, e1) = scrape(&cfg.tend, &sock_s)?;
        let c1 = cpu_secs(pid)?;
        let f1: f64 = follow.iter().filter_map(|c| cpu_secs(c.id() as i32)).sum();
        let dt = t0.elapsed().as_secs_f64();
        let following = follow.iter_mut().map(|c| c.try_wait()).filter(|w| matches!(w, Ok(None))).count();
        let following = following.min((conns - 1.0).max(0.0) as usize);
        let restarts = r1 - r0;
        Some(Sample {
            restarts_per_sec: restarts / dt,
            cpu_ms_per_restart: (c1 - c0) * 1e3 / restarts.max(1.0),
            events_per_sec: (e1 - e0) / dt,
            followers_cpu_ms_per_restart: (f1 - f0) * 1e3 / restarts.max(1.0),
            following,
        })
    })();
    kill(pid, libc::SIGTERM);
    let pidfd = pidfd_open(pid);
    if wait_exit(pidfd, Duration::from_secs(10)).is_none() {
        notes.push("followers: tend did not exit within 10 s of SIGTERM; killed".into());
        kill(pid, libc::SIGKILL);
    }
    // SAFETY: closes the pidfd opened above, once.
    unsafe { libc::close(pidfd) };
    let _ = tend.wait();
    for mut child in follow {
        // They end with the supervisor; one that did not is killed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    thread::sleep(Duration::from_millis(50));
    reap_all();
    result
}

/// The row: restart throughput with 20 followers against none.
pub fn followers(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let body = "command: [\"false\"]\nrestart: always\nrestart_delay: 0s\n\
                start_limit: {burst: 100000000, interval: 1s}\nstop_timeout: 1s\n";
    let dir = make_units(&cfg.tmp, "followers", 100, body);
    let window = Duration::from_secs(cfg.idle_secs.clamp(2, 10));
    let (mut none, mut twenty) = (Vec::new(), Vec::new());
    for run in 0..cfg.runs {
        let order = if run % 2 == 0 { [0, 20] } else { [20, 0] };
        for n in order {
            eprintln!("harness: 100 crash loops, {n} followers, run {}/{}", run + 1, cfg.runs);
            if let Some(s) = one_run(cfg, &dir, n, window, notes) {
                if n == 0 {
                    none.push(s)
                } else {
                    twenty.push(s)
                }
            }
        }
    }
    let _ = fs::remove_dir_all(&dir);
    if none.is_empty() || twenty.is_empty() {
        notes.push("followers: no complete run".into());
        return;
    }
    let pick = |v: &[Sample], f: fn(&Sample) -> f64| v.iter().map(f).collect::<Vec<f64>>();
    let thr0 = pick(&none, |s| s.restarts_per_sec);
    let thr20 = pick(&twenty, |s| s.restarts_per_sec);
    let ratio = median(&thr20) / median(&thr0);
    let dropped: Vec<usize> = twenty.iter().map(|s| 20 - s.following).collect();
    rows.push(Row {
        figure: format!(
            "restart throughput of `tend up` with 100 crash-looping services (`false`, `restart_delay: 0s`), \
             20 `tend events` followers of every service ({} s windows)",
            window.as_secs()
        ),
        tend: fmt_stat(&thr20, 0, "restarts/s"),
        reference: format!("no follower, same units, interleaved: {}", fmt_stat(&thr0, 0, "restarts/s")),
        ratio: format!("{ratio:.3}×"),
        target: "≥ 0.90× (followers cost < 10%)".into(),
        verdict: verdict(ratio >= 0.90 && dropped.iter().all(|&d| d == 0)),
    });
    rows.push(Row {
        figure: "(information) tend's CPU time per restart (user + system, all threads), the same runs"
            .into(),
        tend: format!("20 followers: {}", fmt_stat(&pick(&twenty, |s| s.cpu_ms_per_restart), 3, "ms")),
        reference: format!("no follower: {}", fmt_stat(&pick(&none, |s| s.cpu_ms_per_restart), 3, "ms")),
        ratio: format!(
            "{:.2}×",
            median(&pick(&twenty, |s| s.cpu_ms_per_restart)) / median(&pick(&none, |s| s.cpu_ms_per_restart))
        ),
        target: "—".into(),
        verdict: "—".into(),
    });
    notes.push(format!(
        "followers: events sent per second {} with 20 followers (each follower gets every one), {} without; \
         followers cut off by the overflow rule during the windows: {dropped:?}",
        fmt_stat(&pick(&twenty, |s| s.events_per_sec), 0, "/s"),
        fmt_stat(&pick(&none, |s| s.events_per_sec), 0, "/s"),
    ));
    notes.push(format!(
        "followers: CPU time of the 20 `tend events` processes together, per restart: {}",
        fmt_stat(&pick(&twenty, |s| s.followers_cpu_ms_per_restart), 3, "ms"),
    ));
}
