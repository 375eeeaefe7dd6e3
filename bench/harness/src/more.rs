//! Scenarios for the control plane, logs, readiness, sandbox and cgroups
//! (issues 3, 4 and 5), plus the two helper modes the harness binary also
//! serves as: a log writer and an sd_notify service. See ../../run.

use super::*;
use std::fs::File;
use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

// ---------------------------------------------------------------- helper modes

const LINE_LEN: usize = 100;

/// Line `i` of the writer: 10-digit sequence number, a space, 88 `x`, `\n`.
fn push_line(buf: &mut Vec<u8>, i: u64) {
    let mut d = [b'0'; 10];
    let mut x = i;
    for k in (0..10).rev() {
        d[k] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    buf.extend_from_slice(&d);
    buf.push(b' ');
    buf.extend_from_slice(&[b'x'; LINE_LEN - 12]);
    buf.push(b'\n');
}

/// `--write-lines N`: N lines of 100 bytes to fd 1 as fast as possible, in
/// 1 MiB writes (no std line buffering). Exits 0, or 1 on a write error.
pub fn write_lines(n: u64) -> ! {
    // SAFETY: fd 1 is open for the whole process; ManuallyDrop never closes it.
    let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    const CHUNK: usize = 1 << 20;
    let mut buf = Vec::with_capacity(CHUNK + LINE_LEN);
    for i in 0..n {
        push_line(&mut buf, i);
        if buf.len() + LINE_LEN > CHUNK {
            if out.write_all(&buf).is_err() {
                std::process::exit(1);
            }
            buf.clear();
        }
    }
    if out.write_all(&buf).is_err() {
        std::process::exit(1);
    }
    std::process::exit(0)
}

/// `--notify-ready`: send READY=1 to $NOTIFY_SOCKET (if set; `@` = abstract
/// name), then sleep until killed.
pub fn notify_ready() -> ! {
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET") {
        use std::os::unix::ffi::OsStrExt;
        let p = path.as_bytes();
        // SAFETY: socket/sendto on a local sockaddr_un filled from `p` (length checked above).
        unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                std::process::exit(3);
            }
            let mut sa: libc::sockaddr_un = std::mem::zeroed();
            sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
            if p.is_empty() || p.len() >= sa.sun_path.len() {
                std::process::exit(4);
            }
            for (k, &b) in p.iter().enumerate() {
                sa.sun_path[k] = b as libc::c_char;
            }
            if p[0] == b'@' {
                sa.sun_path[0] = 0;
            }
            let base = std::mem::size_of::<libc::sa_family_t>();
            let len = base + p.len() + if p[0] == b'@' { 0 } else { 1 };
            let msg = b"READY=1";
            let rc = libc::sendto(
                fd,
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
                &sa as *const libc::sockaddr_un as *const libc::sockaddr,
                len as libc::socklen_t,
            );
            if rc < 0 {
                eprintln!("notify: sendto {:?}: {}", path, std::io::Error::last_os_error());
                std::process::exit(5);
            }
            libc::close(fd);
        }
    }
    loop {
        // SAFETY: pause takes no arguments.
        unsafe { libc::pause() };
    }
}

// ---------------------------------------------------------------- helpers

fn harness_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// "NAME: rest" from a `tend | NAME: rest` line.
fn event(line: &str) -> Option<(&str, &str)> {
    let body = line.strip_prefix("tend")?.trim_start().strip_prefix("| ")?;
    let i = body.find(": ")?;
    Some((&body[..i], &body[i + 2..]))
}

impl Tend {
    /// Read lines until `f(line)` returns true: the instant that line was
    /// read. Every line is logged; `started (pid` lines record their pid.
    fn until(&mut self, timeout: Duration, mut f: impl FnMut(&str) -> bool) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (t, line) = self.next_line(left)?;
            if let Ev::Started { pid } = parse(&line) {
                self.services.push(pid);
            }
            let hit = f(&line);
            self.log.push(line);
            if hit {
                return Some(t);
            }
        }
    }

    /// Wait for `n` `started (pid` lines: instant of the last.
    fn until_started(&mut self, n: usize, timeout: Duration) -> Option<Instant> {
        let mut k = 0;
        self.until(timeout, |l| {
            if matches!(parse(l), Ev::Started { .. }) {
                k += 1;
            }
            k == n
        })
    }
}

fn fmt_opt(v: &[f64], prec: usize, unit: &str) -> String {
    fmt_stat(v, prec, unit)
}

/// Time a whole command (stdin/stdout/stderr to /dev/null): (elapsed, exit code).
fn time_cmd(prog: &Path, args: &[&str]) -> (Duration, Option<i32>) {
    let mut cmd = Command::new(prog);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let t0 = Instant::now();
    let st = cmd.status().unwrap_or_else(|e| die(&format!("spawn {}: {e}", prog.display())));
    (t0.elapsed(), st.code())
}

// ---------------------------------------------------------------- status

/// `tend status` round trip with 100 services, as a whole command.
pub fn status(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let dir = make_units(&cfg.tmp, "status", 100, SLEEP_UNIT);
    let sock = socket_of(&dir);
    let sock_s = sock.to_str().unwrap().to_string();
    let (mut t, _) = Tend::up(&cfg.tend, &dir);
    if t.until_started(100, Duration::from_secs(10)).is_none() {
        let m = t.fail("status: 100 services did not start within 10 s");
        notes.push(m);
        return;
    }
    thread::sleep(Duration::from_millis(300));
    // Once: check the answer.
    let out = Command::new(&cfg.tend).args(["status", "--socket", &sock_s]).output();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            let lines = text.lines().count();
            let running = text.lines().filter(|l| l.split_whitespace().nth(1) == Some("running")).count();
            if o.status.code() != Some(0) || lines != 101 || running != 100 {
                notes.push(format!(
                    "tend status: exit {:?}, {lines} lines, {running} `running` (expected 0, 101, 100); stderr {:?}",
                    o.status.code(),
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
        Err(e) => notes.push(format!("tend status: {e}")),
    }
    let n = (cfg.runs * 4).max(21);
    let (mut sv, mut jv, mut vv) = (vec![], vec![], vec![]);
    let mut bad = vec![];
    for i in 0..n {
        let mut order = [0, 1, 2];
        order.rotate_left(i % 3);
        for which in order {
            match which {
                0 => {
                    let (d, c) = time_cmd(&cfg.tend, &["status", "--socket", &sock_s]);
                    sv.push(ms(d));
                    if c != Some(0) {
                        bad.push(format!("status exit {c:?}"));
                    }
                }
                1 => {
                    let (d, c) = time_cmd(&cfg.tend, &["status", "--json", "--socket", &sock_s]);
                    jv.push(ms(d));
                    if c != Some(0) {
                        bad.push(format!("status --json exit {c:?}"));
                    }
                }
                _ => {
                    let (d, _) = time_cmd(&cfg.tend, &["--version"]);
                    vv.push(ms(d));
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
    if !bad.is_empty() {
        notes.push(format!("tend status: bad exits {:?}", &bad[..bad.len().min(5)]));
    }
    t.drain();
    let extra: Vec<_> = t.log.iter().filter(|l| !l.contains(": started (pid ")).cloned().collect();
    if !extra.is_empty() {
        notes.push(format!("tend lines during `tend status` runs: {:?}", &extra[..extra.len().min(5)]));
    }
    let _ = t.terminate();
    let _ = fs::remove_dir_all(&dir);
    let (sm, vm) = (median(&sv), median(&vv));
    rows.push(Row {
        figure: "`tend status` with 100 services, whole command (spawn → exit, output to /dev/null)".into(),
        tend: fmt_opt(&sv, 2, "ms"),
        reference: format!("`tend --version` (process start only): {}", fmt_opt(&vv, 2, "ms")),
        ratio: format!("{:.2}×", sm / vm),
        target: "< 5 ms".into(),
        verdict: verdict(sm < 5.0),
    });
    rows.push(Row {
        figure: "(information) `tend status --json`, the same".into(),
        tend: fmt_opt(&jv, 2, "ms"),
        reference: "—".into(),
        ratio: format!("{:.2}× `--version`", median(&jv) / vm),
        target: "—".into(),
        verdict: "—".into(),
    });
}

// ---------------------------------------------------------------- logs

/// Check that `path` holds exactly lines 0..n of the writer, each after the
/// same prefix of `prefix_len` bytes. Returns the prefix.
fn verify_lines(path: &Path, n: u64, prefix_len: usize) -> Result<String, String> {
    let f = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut line = Vec::with_capacity(256);
    let mut want = Vec::with_capacity(LINE_LEN);
    let mut prefix: Option<Vec<u8>> = None;
    for i in 0..n {
        line.clear();
        let got = r.read_until(b'\n', &mut line).map_err(|e| format!("read: {e}"))?;
        if got == 0 {
            return Err(format!("only {i} of {n} lines ({} lost)", n - i));
        }
        want.clear();
        push_line(&mut want, i);
        let ok = line.len() == prefix_len + LINE_LEN
            && line[prefix_len..] == want[..]
            && prefix.as_deref().is_none_or(|p| p == &line[..prefix_len]);
        if !ok {
            return Err(format!(
                "line {} (0-based) is {:?}, expected {:?} after the prefix{}",
                i,
                String::from_utf8_lossy(&line[..line.len().min(160)]),
                String::from_utf8_lossy(&want),
                prefix.as_ref().map(|p| format!(" {:?}", String::from_utf8_lossy(p))).unwrap_or_default()
            ));
        }
        if prefix.is_none() {
            prefix = Some(line[..prefix_len].to_vec());
        }
    }
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).map_err(|e| format!("read: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{} extra bytes after line {n}: {:?}",
            rest.len(),
            String::from_utf8_lossy(&rest[..rest.len().min(160)])
        ));
    }
    Ok(String::from_utf8_lossy(&prefix.unwrap_or_default()).into_owned())
}

fn file_size(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Length of the prefix before the first writer line in `path` (the first
/// line is `PREFIX0000000000 xxx…`), once the file holds a whole line.
fn prefix_len(path: &Path) -> Option<usize> {
    let mut f = File::open(path).ok()?;
    let mut b = [0u8; 256];
    let n = f.read(&mut b).ok()?;
    let nl = b[..n].iter().position(|&c| c == b'\n')?;
    let line = &b[..=nl];
    if line.len() < LINE_LEN {
        return None;
    }
    Some(line.len() - LINE_LEN)
}

/// Run tend up with one writer unit; stop when its `exited with status 0`
/// line was read and `out` has reached the expected size. Returns the time
/// from spawning tend, and the prefix length in `out`.
fn tend_log_run(
    cfg: &Cfg,
    dir: &Path,
    stdout: Stdio,
    out: &Path,
    bytes: u64,
    prefixed: bool,
) -> Result<(Duration, usize), String> {
    let (mut t, t0) = Tend::up_with(&cfg.tend, dir, stdout);
    let deadline = t0 + Duration::from_secs(120);
    let mut exited = false;
    let mut plen = if prefixed { None } else { Some(0) };
    let res = loop {
        let now = Instant::now();
        if now > deadline {
            break Err(t.fail(&format!(
                "not done within 120 s: {} bytes in {}",
                file_size(out),
                out.display()
            )));
        }
        // Until the writer has exited, block on tend's output (a line wakes
        // us at once): a harness polling every millisecond takes CPU from
        // the writer and its reader on a 2-core machine, which the shell
        // reference (one blocking wait) never pays. Then poll the file.
        let wait = if exited { Duration::from_millis(1) } else { Duration::from_millis(50) };
        let got = t.next_line(wait);
        if let Some((_, line)) = got {
            if let Some((_, rest)) = event(&line) {
                if rest.starts_with("exited with status 0") {
                    exited = true;
                } else if rest.starts_with("exited") || rest.starts_with("killed") {
                    t.log.push(line);
                    break Err(t.fail("the writer failed"));
                }
            }
            if let Ev::Started { pid } = parse(&line) {
                t.services.push(pid);
            }
            t.log.push(line);
        } else if now.elapsed() < Duration::from_micros(500) {
            thread::sleep(Duration::from_millis(1)); // EOF: do not spin
        }
        if plen.is_none() {
            plen = prefix_len(out);
        }
        if let Some(p) = plen {
            let want = bytes + (bytes / LINE_LEN as u64) * p as u64;
            let size = file_size(out);
            if size > want {
                break Err(
                    t.fail(&format!("{} has {size} bytes, more than the {want} expected", out.display()))
                );
            }
            if exited && size == want {
                break Ok((Instant::now() - t0, p));
            }
        }
    };
    t.drain();
    let other: Vec<_> = t
        .log
        .iter()
        .filter(|l| !(l.contains(": started (pid ") || l.contains("exited with status 0")))
        .cloned()
        .collect();
    let _ = t.terminate();
    if !other.is_empty() && res.is_ok() {
        eprintln!("harness: other tend lines: {:?}", &other[..other.len().min(5)]);
    }
    res
}

pub fn logs(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let n = cfg.log_mb * 1_000_000 / LINE_LEN as u64;
    let bytes = n * LINE_LEN as u64;
    let me = harness_exe();
    let me_s = me.to_str().unwrap();
    let unit = format!("command: [\"{me_s}\", \"--write-lines\", \"{n}\"]\nrestart: never\n");
    let dir_a = make_units(&cfg.tmp, "logfile", 0, "");
    fs::write(dir_a.join("w.yaml"), format!("{unit}log: {{file: out.log}}\n")).unwrap();
    let out_a = dir_a.join("out.log");
    let dir_b = make_units(&cfg.tmp, "logstdout", 0, "");
    fs::write(dir_b.join("w.yaml"), &unit).unwrap();
    let out_b = cfg.tmp.join("tend-stdout.out");
    let out_f = cfg.tmp.join("floor.out");
    let mbps = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    let (mut wv, mut fv, mut av, mut bv) = (vec![], vec![], vec![], vec![]);
    let mut prefix = String::new();
    let nl = n.to_string();
    for run in 0..cfg.runs {
        eprintln!("harness: log throughput ({} MB), run {}/{}", cfg.log_mb, run + 1, cfg.runs);
        // The writer alone, into /dev/null.
        let (d, c) = time_cmd(&me, &["--write-lines", &nl]);
        if c == Some(0) {
            wv.push(mbps(d));
        } else {
            notes.push(format!("writer alone: exit {c:?}"));
        }
        // Floor: writer | cat > file.
        let _ = fs::remove_file(&out_f);
        let f = File::create(&out_f).unwrap();
        let t0 = Instant::now();
        let mut w = Command::new(&me)
            .args(["--write-lines", &nl])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| die(&format!("writer: {e}")));
        let wout = w.stdout.take().unwrap();
        let cat = Command::new("cat").stdin(Stdio::from(wout)).stdout(Stdio::from(f)).status();
        let d = t0.elapsed();
        let wst = w.wait();
        match (cat, wst) {
            (Ok(c), Ok(ws)) if c.success() && ws.success() => match verify_lines(&out_f, n, 0) {
                Ok(_) => fv.push(mbps(d)),
                Err(e) => notes.push(format!("floor (writer | cat): {e}")),
            },
            (c, ws) => notes.push(format!("floor: cat {c:?}, writer {ws:?}")),
        }
        let _ = fs::remove_file(&out_f);
        thread::sleep(Duration::from_millis(200));

        // (a) into the unit's log file.
        let _ = fs::remove_file(&out_a);
        match tend_log_run(cfg, &dir_a, Stdio::null(), &out_a, bytes, false) {
            Ok((d, _)) => match verify_lines(&out_a, n, 0) {
                Ok(_) => av.push(mbps(d)),
                Err(e) => notes.push(format!("log file, run {}: {e}", run + 1)),
            },
            Err(e) => notes.push(format!("log file, run {}: {e}", run + 1)),
        }
        let _ = fs::remove_file(&out_a);
        thread::sleep(Duration::from_millis(200));

        // (b) through tend's prefixed stdout into a file.
        let _ = fs::remove_file(&out_b);
        let f = File::create(&out_b).unwrap();
        match tend_log_run(cfg, &dir_b, Stdio::from(f), &out_b, bytes, true) {
            Ok((d, p)) => match verify_lines(&out_b, n, p) {
                Ok(pf) => {
                    prefix = pf;
                    bv.push(mbps(d))
                }
                Err(e) => notes.push(format!("tend stdout, run {}: {e}", run + 1)),
            },
            Err(e) => notes.push(format!("tend stdout, run {}: {e}", run + 1)),
        }
        let _ = fs::remove_file(&out_b);
        thread::sleep(Duration::from_millis(200));
    }
    let _ = fs::remove_dir_all(&dir_a);
    let _ = fs::remove_dir_all(&dir_b);
    notes.push(format!(
        "log throughput: {n} lines of {LINE_LEN} bytes ({} MB), each numbered; every counted run had every line, in order, whole, \
         nothing else in the file (tend's stdout prefix: {prefix:?}). The writer alone into /dev/null: {}. \
         Timed from spawning `tend up` to both the `exited with status 0` line read and the file at its full size (polled every ms).",
        cfg.log_mb,
        fmt_opt(&wv, 0, "MB/s")
    ));
    let fm = median(&fv);
    for (what, v, k) in [
        ("into the unit's log file (`log: {file: out.log}`, tend's stdout → /dev/null)", &av, 0.75),
        ("through tend's prefixed stdout (`tend up > file`)", &bv, 0.5),
    ] {
        let m = median(v);
        rows.push(Row {
            figure: format!(
                "log throughput, one service writing {} MB of 100-byte lines, {what}",
                cfg.log_mb
            ),
            tend: fmt_opt(v, 0, "MB/s"),
            reference: format!("`writer | cat > file`: {}", fmt_opt(&fv, 0, "MB/s")),
            ratio: format!("{:.2}×", m / fm),
            target: format!("≥ {k}× floor, no line lost"),
            verdict: verdict(v.len() == cfg.runs && m >= k * fm),
        });
    }
}

// ---------------------------------------------------------------- readiness

/// A chain of 100 services, each `depends_on: {prev: ready}`; reference: 100
/// independent services in the same run.
pub fn chain(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let dir_c = make_units(&cfg.tmp, "chain", 0, "");
    for i in 0..100 {
        let mut body = SLEEP_UNIT.to_string();
        if i > 0 {
            body += &format!("depends_on: {{s{:03}: ready}}\n", i - 1);
        }
        fs::write(dir_c.join(format!("s{i:03}.yaml")), body).unwrap();
    }
    let dir_i = make_units(&cfg.tmp, "indep", 100, SLEEP_UNIT);
    let (mut cv, mut iv) = (vec![], vec![]);
    for run in 0..cfg.runs {
        eprintln!("harness: chain of 100, run {}/{}", run + 1, cfg.runs);
        let mut order = vec![true, false];
        if run % 2 == 1 {
            order.reverse();
        }
        for is_chain in order {
            let dir = if is_chain { &dir_c } else { &dir_i };
            let (mut t, t0) = Tend::up(&cfg.tend, dir);
            let done = if is_chain {
                let mut names = vec![];
                let r = t.until(Duration::from_secs(10), |l| match event(l) {
                    Some((name, rest)) if rest.starts_with("started (pid ") => {
                        names.push(name.to_string());
                        name == "s099"
                    }
                    _ => false,
                });
                let want: Vec<String> = (0..100).map(|i| format!("s{i:03}")).collect();
                if r.is_some() && names != want {
                    notes.push(format!("chain: started out of order: {:?}…", &names[..names.len().min(10)]));
                }
                r
            } else {
                t.until_started(100, Duration::from_secs(10))
            };
            match done {
                Some(t1) => (if is_chain { &mut cv } else { &mut iv }).push(ms(t1 - t0)),
                None => {
                    let m = t.fail(if is_chain {
                        "chain: s099 not started within 10 s"
                    } else {
                        "100 independent: not started"
                    });
                    notes.push(m);
                }
            }
            let _ = t.terminate();
            thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = fs::remove_dir_all(&dir_c);
    let _ = fs::remove_dir_all(&dir_i);
    let (cm, im) = (median(&cv), median(&iv));
    rows.push(Row {
        figure:
            "chain of 100 (`depends_on: {prev: ready}`, `sleep 1000`): `tend up` spawn → `s099: started (pid`"
                .into(),
        tend: fmt_opt(&cv, 2, "ms"),
        reference: format!("100 independent services, same tend: {}", fmt_opt(&iv, 2, "ms")),
        ratio: format!("{:.2}×", cm / im),
        target: "< 100 ms".into(),
        verdict: verdict(cm < 100.0),
    });
}

/// 100 independent `type: notify` services that send READY=1 at once.
pub fn notify(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let me = harness_exe();
    let cmd =
        format!("command: [\"{}\", \"--notify-ready\"]\nrestart: always\nstop_timeout: 1s\n", me.display());
    let dir_n = make_units(&cfg.tmp, "notify", 100, &format!("{cmd}type: notify\n"));
    let dir_s = make_units(&cfg.tmp, "notsimple", 100, &cmd);
    let (mut nv, mut sv, mut nsv) = (vec![], vec![], vec![]);
    for run in 0..cfg.runs {
        eprintln!("harness: 100 notify, run {}/{}", run + 1, cfg.runs);
        let mut order = vec![true, false];
        if run % 2 == 1 {
            order.reverse();
        }
        for is_notify in order {
            let dir = if is_notify { &dir_n } else { &dir_s };
            let (mut t, t0) = Tend::up(&cfg.tend, dir);
            if is_notify {
                let (mut k, mut started, mut last_started) = (0, 0, None);
                let r = t.until(Duration::from_secs(10), |l| {
                    match event(l) {
                        Some((_, "ready")) => k += 1,
                        Some((_, rest)) if rest.starts_with("started (pid ") => {
                            started += 1;
                            if started == 100 {
                                last_started = Some(Instant::now());
                            }
                        }
                        _ => {}
                    }
                    k == 100
                });
                match r {
                    Some(t1) => {
                        nv.push(ms(t1 - t0));
                        if let Some(s) = last_started {
                            nsv.push(ms(s - t0));
                        }
                    }
                    None => {
                        let m = t.fail(&format!("notify: {k} of 100 ready within 10 s"));
                        notes.push(m);
                    }
                }
            } else {
                match t.until_started(100, Duration::from_secs(10)) {
                    Some(t1) => sv.push(ms(t1 - t0)),
                    None => {
                        let m = t.fail("notify reference (type simple): not all started");
                        notes.push(m);
                    }
                }
            }
            let _ = t.terminate();
            thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = fs::remove_dir_all(&dir_n);
    let _ = fs::remove_dir_all(&dir_s);
    notes.push(format!(
        "100 notify: the 100th `started (pid` line was read {} after spawning tend",
        fmt_opt(&nsv, 2, "ms")
    ));
    let (nm, sm) = (median(&nv), median(&sv));
    rows.push(Row {
        figure: "100 `type: notify` services (READY=1 at once, from the harness binary): `tend up` spawn → 100th `NAME: ready`".into(),
        tend: fmt_opt(&nv, 2, "ms"),
        reference: format!("the same 100 as `type: simple`, → 100th `started`: {}", fmt_opt(&sv, 2, "ms")),
        ratio: format!("{:.2}×", nm / sm),
        target: "— (issue 4 sets none; < 100 ms as the chain)".into(),
        verdict: verdict(nm < 100.0),
    });
}

// ---------------------------------------------------------------- sandbox

fn comm(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_string())
}

fn ns(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}")).map(|p| p.display().to_string()).unwrap_or_default()
}

/// Checks, from outside, that the sandbox is in force on `pid`.
fn sandbox_facts(pid: i32) -> String {
    let p = pid.to_string();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status.lines().find(|l| l.starts_with(k)).map(|l| l[k.len()..].trim().to_string()).unwrap_or_default()
    };
    let mut diff = vec![];
    for kind in ["mnt", "net", "uts", "ipc"] {
        if ns(&p, kind) != ns("self", kind) {
            diff.push(kind);
        }
    }
    format!(
        "NoNewPrivs {}, CapBnd {}, CapEff {}, own namespaces: {}",
        field("NoNewPrivs:"),
        field("CapBnd:"),
        field("CapEff:"),
        diff.join("/")
    )
}

pub fn sandbox(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    if !is_root() {
        notes.push("sandbox row skipped: not root".into());
        rows.push(skipped_row("crash → replacement exec'd, full sandbox vs none"));
        return;
    }
    let body = "command: [\"sleep\", \"1000\"]\nrestart: always\nrestart_delay: 0s\n\
                start_limit: {burst: 100000, interval: 1s}\nstop_timeout: 1s\n";
    let dir = make_units(&cfg.tmp, "sandbox", 0, "");
    let rw = cfg.tmp.join("rw");
    fs::create_dir_all(&rw).unwrap();
    fs::write(dir.join("plain.yaml"), body).unwrap();
    fs::write(
        dir.join("boxed.yaml"),
        format!(
            "{body}sandbox:\n  no_new_privileges: true\n  capabilities: [NET_BIND_SERVICE]\n  private_tmp: true\n  \
             read_only_paths: [/]\n  read_write_paths: [{}]\n  inaccessible_paths: [/root]\n  private_network: true\n  \
             hostname: box\n  private_ipc: true\n",
            rw.display()
        ),
    )
    .unwrap();
    let (mut t, _) = Tend::up(&cfg.tend, &dir);
    let mut pids = std::collections::HashMap::new();
    let r = t.until(Duration::from_secs(10), |l| {
        if let Some((name, rest)) = event(l) {
            if let Some(p) =
                rest.strip_prefix("started (pid ").and_then(|r| r.split(')').next()?.parse::<i32>().ok())
            {
                pids.insert(name.to_string(), p);
            }
        }
        pids.len() == 2
    });
    if r.is_none() {
        let m = t.fail("sandbox: plain and boxed did not both start");
        notes.push(m);
        let _ = t.terminate();
        let _ = fs::remove_dir_all(&dir);
        return;
    }
    thread::sleep(Duration::from_millis(50));
    notes.push(format!("sandboxed service seen from outside: {}", sandbox_facts(pids["boxed"])));
    let (mut pv, mut bv) = (vec![], vec![]);
    let mut late = 0;
    for i in 0..cfg.crashes {
        let mut order = ["plain", "boxed"];
        if i % 2 == 1 {
            order.reverse();
        }
        for name in order {
            thread::sleep(Duration::from_millis(30));
            let t0 = Instant::now();
            if !kill(pids[name], libc::SIGKILL) {
                notes.push(format!("sandbox: kill {name} {} failed", pids[name]));
                break;
            }
            let mut newpid = 0;
            let r = t.until(Duration::from_secs(5), |l| match event(l) {
                Some((n, rest)) if n == name && rest.starts_with("started (pid ") => {
                    newpid = rest["started (pid ".len()..]
                        .split(')')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    true
                }
                _ => false,
            });
            let Some(mut t1) = r else {
                let m = t.fail(&format!("sandbox: {name} not replaced within 5 s"));
                notes.push(m);
                break;
            };
            // Exec'd yet? If the line came before the exec, time the exec.
            if comm(newpid).as_deref() != Some("sleep") {
                late += 1;
                let dl = Instant::now() + Duration::from_secs(2);
                while comm(newpid).as_deref() != Some("sleep") && Instant::now() < dl {
                    thread::sleep(Duration::from_micros(20));
                }
                t1 = Instant::now();
            }
            pids.insert(name.to_string(), newpid);
            (if name == "plain" { &mut pv } else { &mut bv }).push(ms(t1 - t0) * 1e3);
        }
    }
    if late > 0 {
        notes.push(format!(
            "sandbox: {late} `started` lines came before the service had exec'd (timed to the exec instead)"
        ));
    }
    notes.push(format!("sandboxed service after {} restarts: {}", bv.len(), sandbox_facts(pids["boxed"])));
    t.drain();
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
        notes.push(format!("sandbox: other tend lines: {:?}", &other[..other.len().min(5)]));
    }
    let _ = t.terminate();
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&rw);
    let (pm, bm) = (median(&pv), median(&bv));
    rows.push(Row {
        figure: "crash (SIGKILL) → replacement exec'd, full sandbox of issue 5 (`sleep 1000`, root)".into(),
        tend: fmt_opt(&bv, 0, "µs"),
        reference: format!("same unit without sandbox, same tend, interleaved: {}", fmt_opt(&pv, 0, "µs")),
        ratio: format!("{:.2}× (+{:.0} µs)", bm / pm, bm - pm),
        target: "sandbox adds < 2 ms".into(),
        verdict: verdict(bm - pm < 2000.0),
    });
}

fn skipped_row(what: &str) -> Row {
    Row {
        figure: what.into(),
        tend: "skipped: not root".into(),
        reference: "—".into(),
        ratio: "—".into(),
        target: "—".into(),
        verdict: "skipped".into(),
    }
}

// ---------------------------------------------------------------- resources

/// Directories named `name` under /sys/fs/cgroup, up to 4 levels down.
fn find_cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let p = e.path();
                if e.file_name().to_str() == Some(name) {
                    out.push(p.clone());
                }
                if depth < 4 {
                    stack.push((p, depth + 1));
                }
            }
        }
    }
    out
}

/// The limits in force on `pid`, read from its cgroups.
fn cgroup_facts(pid: i32) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut facts = vec![];
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctl, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        let read =
            |f: &str| fs::read_to_string(f).map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into());
        for c in ctl.split(',') {
            match c {
                "memory" => facts.push(format!(
                    "memory {path}: limit {}",
                    read(&format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"))
                )),
                "pids" => facts.push(format!(
                    "pids {path}: max {}",
                    read(&format!("/sys/fs/cgroup/pids{path}/pids.max"))
                )),
                "cpu" => {
                    let d = ["cpu", "cpu,cpuacct"]
                        .iter()
                        .map(|m| format!("/sys/fs/cgroup/{m}{path}"))
                        .find(|d| Path::new(d).is_dir())
                        .unwrap_or_default();
                    facts.push(format!(
                        "cpu {path}: quota {} / period {}",
                        read(&format!("{d}/cpu.cfs_quota_us")),
                        read(&format!("{d}/cpu.cfs_period_us"))
                    ))
                }
                "" => facts.push(format!("v2 {path}")),
                _ => {}
            }
        }
    }
    facts.join("; ")
}

pub fn resources(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    if !is_root() {
        notes.push("resources row skipped: not root".into());
        rows.push(skipped_row("`tend up` spawn → 100th `started`, `resources` on each"));
        return;
    }
    let dir_r = make_units(
        &cfg.tmp,
        "resources",
        100,
        &format!("{SLEEP_UNIT}resources: {{memory_max: 64M, pids_max: 100, cpu_max: 0.5}}\n"),
    );
    let dir_p = make_units(&cfg.tmp, "noresources", 100, SLEEP_UNIT);
    let (mut rv, mut pv) = (vec![], vec![]);
    let mut leftovers = vec![];
    for run in 0..cfg.runs {
        eprintln!("harness: 100 with resources, run {}/{}", run + 1, cfg.runs);
        let mut order = vec![true, false];
        if run % 2 == 1 {
            order.reverse();
        }
        for with in order {
            let (mut t, t0) = Tend::up(&cfg.tend, if with { &dir_r } else { &dir_p });
            let tpid = t.pid();
            match t.until_started(100, Duration::from_secs(10)) {
                Some(t1) => {
                    (if with { &mut rv } else { &mut pv }).push(ms(t1 - t0));
                    if with && run == 0 {
                        if let Some(&p) = t.services.first() {
                            notes.push(format!("resources: a service's cgroups: {}", cgroup_facts(p)));
                        }
                    }
                }
                None => {
                    let m = t.fail(&format!("resources={with}: not all started"));
                    notes.push(m);
                }
            }
            let (_, _, left) = t.terminate();
            if left > 0 {
                notes.push(format!("resources={with}: {left} services alive after tend exited"));
            }
            let l = find_cgroup_dirs(&format!("tend-{tpid}"));
            if !l.is_empty() {
                leftovers.push(format!("{:?}", l));
                for d in l.iter().rev() {
                    let _ = fs::remove_dir(d);
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
    if !leftovers.is_empty() {
        notes.push(format!(
            "resources: cgroup dirs left after tend exited (removed by the harness): {:?}",
            &leftovers[..leftovers.len().min(3)]
        ));
    }
    let _ = fs::remove_dir_all(&dir_r);
    let _ = fs::remove_dir_all(&dir_p);
    let (rm, pm) = (median(&rv), median(&pv));
    rows.push(Row {
        figure: format!(
            "`tend up` spawn → 100th `started (pid` line, `resources: {{memory_max: 64M, pids_max: 100, cpu_max: 0.5}}` on each (root){}",
            cfg.host_label()
        ),
        tend: fmt_opt(&rv, 2, "ms"),
        reference: format!("the same 100 without `resources`, interleaved: {}", fmt_opt(&pv, 2, "ms")),
        ratio: format!("{:.2}×", rm / pm),
        target: "< 50 ms (as without)".into(),
        verdict: verdict(rm < 50.0),
    });
}

// ---------------------------------------------------------------- pipeline

/// How one pipeline run is carried out.
#[derive(Clone, Copy)]
enum Route {
    /// `sh -c 'writer | cat > file'`: both ends in the harness's session.
    Shell,
    /// `sh -c 'setsid -w writer | setsid -w cat > file'`: each end in a
    /// session of its own, as tend starts every service (setsid), and
    /// nothing else of tend's.
    ShellSessions,
    /// Through tend: unit `w` with `stdout: {to: c}`, unit `c` running `cat`.
    Tend,
}

/// The v1 cpu hierarchy's mount point and this process's cgroup in it.
fn v1_cpu_cgroup() -> Option<(PathBuf, String)> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split(' ');
        let (fstype, options) = (post.next()?, post.nth(1)?);
        (fstype == "cgroup" && options.split(',').any(|o| o == "cpu")).then(|| pre.split(' ').nth(4))?
    })?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctl, path) = (it.next()?, it.next()?, it.next()?);
        ctl.split(',').any(|c| c == "cpu").then(|| path.to_string())
    })?;
    Some((PathBuf::from(mount), path))
}

/// The kernel groups the tasks of each session (autogroup, sched(7)) when
/// `kernel.sched_autogroup_enabled` is 1 and the tasks are in the root cpu
/// cgroup: then two processes in two sessions are two scheduling entities
/// that compete with every other session for the CPUs.
fn autogroups_apply() -> (bool, String) {
    let enabled = fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled").map(|s| s.trim() == "1");
    let cpu = v1_cpu_cgroup();
    let root = cpu.as_ref().is_some_and(|(_, path)| path == "/");
    let what = format!(
        "kernel.sched_autogroup_enabled = {}, the harness's cpu cgroup (v1) = {}",
        enabled.as_ref().map_or("?".into(), |e| (*e as u8).to_string()),
        cpu.as_ref().map_or("none (no v1 cpu hierarchy)".into(), |(_, p)| p.clone())
    );
    (enabled.unwrap_or(false) && root, what)
}

/// The harness (and so everything it starts next) in a v1 cpu cgroup of its
/// own, below its current one; moved back and removed on drop. Autogroups
/// apply only in the root cpu cgroup, so in here they do not.
struct CpuCgroup {
    dir: PathBuf,
    home: PathBuf,
}

impl CpuCgroup {
    fn enter() -> Result<CpuCgroup, String> {
        let (mount, path) = v1_cpu_cgroup().ok_or("no v1 cpu hierarchy mounted")?;
        let home = mount.join(path.trim_start_matches('/'));
        let dir = home.join(format!("tend-bench.{}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        // cgroup.procs moves every thread of the process.
        fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
            .map_err(|e| format!("join {}: {e}", dir.display()))?;
        Ok(CpuCgroup { dir, home })
    }
}

impl Drop for CpuCgroup {
    fn drop(&mut self) {
        let _ = fs::write(self.home.join("cgroup.procs"), std::process::id().to_string());
        let _ = fs::remove_dir(&self.dir);
    }
}

/// `cfg.runs` rounds of the three routes, in an order that rotates every
/// round; MB/s of the counted runs of each (every line read back), in the
/// order of [`Route`].
fn pipeline_rounds(cfg: &Cfg, dir: &Path, n: u64, label: &str, notes: &mut Vec<String>) -> [Vec<f64>; 3] {
    let bytes = n * LINE_LEN as u64;
    let me = harness_exe();
    let me_s = me.to_str().unwrap();
    let out_t = cfg.tmp.join("pipeline-tend.out");
    let out_s = cfg.tmp.join("pipeline-shell.out");
    let mbps = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    let shell = format!("'{me_s}' --write-lines {n} | cat > '{}'", out_s.display());
    let sessions = format!("setsid -w '{me_s}' --write-lines {n} | setsid -w cat > '{}'", out_s.display());
    let mut got: [Vec<f64>; 3] = Default::default();
    let routes = [Route::Shell, Route::ShellSessions, Route::Tend];
    for run in 0..cfg.runs {
        eprintln!("harness: pipeline throughput ({} MB{label}), run {}/{}", cfg.log_mb, run + 1, cfg.runs);
        for k in 0..routes.len() {
            let route = routes[(run + k) % routes.len()];
            let (out, result) = match route {
                Route::Shell | Route::ShellSessions => {
                    let script = if matches!(route, Route::Shell) { &shell } else { &sessions };
                    let _ = fs::remove_file(&out_s);
                    let result = match time_cmd(Path::new("/bin/sh"), &["-c", script]) {
                        (d, Some(0)) => Ok(d),
                        (_, c) => Err(format!("sh exited {c:?}")),
                    };
                    (&out_s, result)
                }
                Route::Tend => {
                    let _ = fs::remove_file(&out_t);
                    (&out_t, tend_log_run(cfg, dir, Stdio::null(), &out_t, bytes, false).map(|(d, _)| d))
                }
            };
            let name = ["shell", "shell, a session each", "tend"][route as usize];
            match result.and_then(|d| verify_lines(out, n, 0).map(|_| d)) {
                Ok(d) => got[route as usize].push(mbps(d)),
                Err(e) => notes.push(format!("pipeline{label}, {name}, run {}: {e}", run + 1)),
            }
            let _ = fs::remove_file(out);
            thread::sleep(Duration::from_millis(200));
        }
    }
    got
}

/// Throughput of a producer → consumer pipeline through tend (`stdout:
/// {to: c}`: tend only passes a pipe) against `producer | consumer` in a
/// shell. Producer: the harness's `--write-lines N` (1 MiB writes);
/// consumer: `cat > file`. Both timed from spawning (tend up, or sh) to the
/// file at its full size (tend: the producer's `exited with status 0` read,
/// then the file polled every ms; sh: its exit), then read back whole. An
/// information reference runs the shell's pipeline with each end in a
/// session of its own, as tend's services are; where the kernel's
/// autogroups apply, the three are measured again in a cpu cgroup of the
/// harness's own, where they do not.
pub fn pipeline(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let n = cfg.log_mb * 1_000_000 / LINE_LEN as u64;
    let me = harness_exe();
    let me_s = me.to_str().unwrap();
    let dir = make_units(&cfg.tmp, "pipeline", 0, "");
    let out_t = cfg.tmp.join("pipeline-tend.out");
    fs::write(
        dir.join("w.yaml"),
        format!("command: [\"{me_s}\", \"--write-lines\", \"{n}\"]\nstdout: {{to: c}}\nrestart: never\n"),
    )
    .unwrap();
    fs::write(dir.join("c.yaml"), format!("command: [sh, -c, 'exec cat > \"{}\"']\n", out_t.display()))
        .unwrap();
    let (apply, facts) = autogroups_apply();
    let mut sets = vec![(String::new(), pipeline_rounds(cfg, &dir, n, "", notes))];
    if apply {
        match CpuCgroup::enter() {
            Ok(cg) => {
                let label = ", in a cpu cgroup: no autogroups";
                sets.push((label.to_string(), pipeline_rounds(cfg, &dir, n, label, notes)));
                drop(cg);
            }
            Err(e) => notes.push(format!("pipeline: the rounds without autogroups are skipped: {e}")),
        }
    }
    let _ = fs::remove_dir_all(&dir);
    notes.push(format!(
        "pipeline: the same {n} numbered 100-byte lines ({} MB) from `--write-lines` to `cat > file`, through tend \
         (two units, `stdout: {{to: c}}`), through `sh -c 'writer | cat > file'`, and (information) through \
         `sh -c 'setsid -w writer | setsid -w cat > file'`, each end in a session of its own as tend's services \
         are; the order rotates every round; every counted run had every line, in order, whole. All timed from \
         spawning tend or sh, so tend's own start (the consumer forked and executing before the producer is \
         forked) is in its figure. Autogroups: {facts}{}.",
        cfg.log_mb,
        if apply { " (so they apply: the rounds are repeated in a cpu cgroup of the harness's own)" } else { "" }
    ));
    for (label, [sv, ssv, tv]) in sets {
        let (tm, sm, ssm) = (median(&tv), median(&sv), median(&ssv));
        let mb = cfg.log_mb;
        rows.push(Row {
            figure: format!("pipeline throughput, producer → consumer, {mb} MB of 100-byte lines{label}"),
            tend: fmt_opt(&tv, 0, "MB/s"),
            reference: format!("`producer | consumer` in sh: {}", fmt_opt(&sv, 0, "MB/s")),
            ratio: format!("{:.2}×", tm / sm),
            target: "≥ 0.9× the shell's, no line lost".into(),
            verdict: verdict(tv.len() == cfg.runs && tm >= 0.9 * sm),
        });
        rows.push(Row {
            figure: format!(
                "(information) the same shell pipeline with each end in a session of its own (`setsid -w`), as tend's services{label}"
            ),
            tend: fmt_opt(&ssv, 0, "MB/s"),
            reference: format!("`producer | consumer` in sh: {}", fmt_opt(&sv, 0, "MB/s")),
            ratio: format!("{:.2}×", ssm / sm),
            target: "—".into(),
            verdict: "—".into(),
        });
    }
}
