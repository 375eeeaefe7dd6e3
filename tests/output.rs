//! README section 6, output: `NAME | line` prefixes padded to a common
//! width, stderr to stderr, the final partial line, whole lines only with
//! fast concurrent writers, colour only on a terminal without NO_COLOR.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

#[test]
fn lines_are_prefixed_with_names_padded_to_a_common_width() {
    let env = Env::new();
    env.unit("web", &format!("{}restart: never\n", sh("echo 'GET / 200'")));
    env.unit("worker", &format!("{}restart: never\n", sh("echo hello")));
    let mut tend = env.up();
    tend.wait_stdout("| GET / 200");
    tend.wait_stdout("| hello");
    let out = tend.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"web    | GET / 200"), "{}", tend.dump());
    assert!(lines.contains(&"worker | hello"), "{}", tend.dump());
    // tend's own messages use the same width, under the name `tend`.
    let err = tend.stderr();
    assert!(err.lines().any(|l| l.starts_with("tend   | web: started (pid ")), "{}", tend.dump());
    tend.signal(libc::SIGTERM);
    tend.wait_exit(T);
}

#[test]
fn width_is_at_least_four() {
    let env = Env::new();
    env.unit("a", &format!("{}restart: never\n", sh("echo x")));
    let mut tend = env.up();
    tend.wait_stdout("| x");
    assert!(tend.stdout().lines().any(|l| l == "a    | x"), "{}", tend.dump());
    assert!(tend.stderr().lines().any(|l| l.starts_with("tend | a: started (pid ")), "{}", tend.dump());
    tend.signal(libc::SIGTERM);
    tend.wait_exit(T);
}

#[test]
fn service_stderr_goes_to_tend_stderr() {
    let env = Env::new();
    env.unit("web", &format!("{}restart: never\n", sh("echo to-err >&2; echo to-out")));
    let tend = env.up();
    tend.wait_stderr("| to-err");
    tend.wait_stdout("| to-out");
    assert!(tend.stderr().lines().any(|l| l == "web  | to-err"), "{}", tend.dump());
    assert!(!tend.stdout().contains("to-err"), "stderr line went to stdout\n{}", tend.dump());
    assert!(!tend.stderr().contains("to-out"), "stdout line went to stderr\n{}", tend.dump());
}

#[test]
fn final_line_without_newline_is_printed() {
    let env = Env::new();
    env.unit("web", &format!("{}restart: never\n", sh("printf 'first\\nno newline at end'")));
    let tend = env.up();
    tend.wait_stderr("web: exited with status 0");
    tend.wait_stdout("| no newline at end");
    let out = tend.stdout();
    assert!(out.lines().any(|l| l == "web  | first"), "{}", tend.dump());
    assert!(out.lines().any(|l| l == "web  | no newline at end"), "{}", tend.dump());
}

/// Two services write long lines as fast as they can; every line of tend's
/// stdout must be one whole line of one service, and none may be lost.
#[test]
fn fast_writers_are_never_interleaved_mid_line_nor_lost() {
    const N: usize = 3000;
    const LEN: usize = 1000;
    let env = Env::new();
    for (name, ch) in [("aaaa", 'A'), ("bbbb", 'B')] {
        let line: String = std::iter::repeat_n(ch, LEN).collect();
        env.unit(name, &format!("{}restart: never\n", sh(&format!("yes {line} | head -n {N}"))));
    }
    let tend = env.up();
    tend.wait_stderr("aaaa: exited");
    tend.wait_stderr("bbbb: exited");
    let a: String = "A".repeat(LEN);
    let b: String = "B".repeat(LEN);
    let want_a = format!("aaaa | {a}");
    let want_b = format!("bbbb | {b}");
    tend.wait_until(T, "all lines of both writers on stdout", || {
        tend.stdout().lines().filter(|l| l.len() > 100).count() >= 2 * N
    });
    let out = tend.stdout();
    let (mut na, mut nb) = (0, 0);
    for (i, l) in out.lines().enumerate() {
        if *l == want_a {
            na += 1;
        } else if *l == want_b {
            nb += 1;
        } else {
            panic!("line {i} is not a whole line of one service: {:?}...", &l[..l.len().min(120)]);
        }
    }
    assert_eq!((na, nb), (N, N), "lines lost");
}

fn assert_no_escape_codes(tend: &Tend) {
    assert!(!tend.stdout().contains('\x1b'), "escape code on stdout\n{}", tend.dump());
    assert!(!tend.stderr().contains('\x1b'), "escape code on stderr\n{}", tend.dump());
}

#[test]
fn no_colour_when_output_is_not_a_terminal() {
    let env = Env::new();
    env.unit("web", &format!("{}restart: never\ncritical: true\n", sh("echo hi; echo err >&2")));
    // NO_COLOR is removed from tend's environment by Env::spawn.
    let mut tend = env.up();
    tend.exit_code(T);
    assert!(tend.stdout().contains("| hi"), "{}", tend.dump());
    assert_no_escape_codes(&tend);
}

/// Run `tend up` on a pseudo-terminal (util-linux `script`); returns the
/// terminal output. The unit is critical so tend exits by itself.
fn up_on_a_terminal(no_color: bool) -> (Tend, String, Env) {
    let env = Env::new();
    env.unit("web", &format!("{}restart: never\ncritical: true\n", sh("echo hello-tty")));
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c"])
        .arg(format!("{} up --units {}", tend_bin(), env.units().display()))
        .arg("/dev/null")
        .current_dir(env.root())
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let mut t = Tend::spawn(cmd, env.root(), "script -c 'tend up' (on a pty)");
    let code = t.exit_code(T);
    assert_eq!(code, 0, "{}", t.dump());
    let out = t.stdout();
    assert!(out.contains("hello-tty"), "{}", t.dump());
    (t, out, env)
}

#[test]
fn colour_on_a_terminal() {
    let (_t, out, _env) = up_on_a_terminal(false);
    assert!(out.contains("\x1b["), "no colour on a terminal: {out:?}");
}

#[test]
fn no_colour_on_a_terminal_with_no_color() {
    let (_t, out, _env) = up_on_a_terminal(true);
    assert!(!out.contains('\x1b'), "escape codes despite NO_COLOR: {out:?}");
}

/// What tend's stdout is connected to in the stalled-reader tests.
enum Stalled {
    Pipe,
    Socket,
}

/// tend's stdout is a pipe or a socket (journald's stream, a `docker logs`
/// reader) that nobody reads for a while, and a service writes far more
/// than it holds. The loop must not block on its own output: `tend status`
/// answers at once, the service is not held up, its log file and `tend
/// logs` get every line. Only tend's stdout loses whole lines, and once the
/// reader reads again it sees a notice saying how many, then new lines.
fn stalled_stdout(kind: Stalled) {
    use std::io::Read;
    use std::os::fd::OwnedFd;
    const LINES: usize = 300_000; // about 4.5 MB with the prefix: far above any buffer
    let env = Env::new();
    let log = env.p("w.log");
    env.unit(
        "w",
        &format!(
            "log:\n  file: {}\n{}",
            log.display(),
            sh(&format!(
                "seq 1 {LINES}; echo burst-done; i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.05; done"
            ))
        ),
    );
    let mut cmd = Command::new(tend_bin());
    cmd.args(["up", "--units", env.units().to_str().unwrap()])
        .env("TEND_SOCKET", env.socket())
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stderr(std::fs::File::create(env.p("tend.stderr")).unwrap());
    let mut reader: Box<dyn Read + Send> = match kind {
        Stalled::Pipe => {
            cmd.stdout(std::process::Stdio::piped());
            Box::new(std::io::empty())
        }
        Stalled::Socket => {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            cmd.stdout(std::process::Stdio::from(OwnedFd::from(theirs)));
            Box::new(ours)
        }
    };
    let mut child = cmd.spawn().expect("start tend");
    drop(cmd); // our copy of the socket's other end
    if let Some(pipe) = child.stdout.take() {
        reader = Box::new(pipe);
    }
    struct Guard(i32);
    impl Drop for Guard {
        fn drop(&mut self) {
            for pid in descendants(self.0) {
                kill(pid, libc::SIGKILL);
            }
            kill(self.0, libc::SIGKILL);
        }
    }
    let _guard = Guard(child.id() as i32);
    // Nobody reads: the service must still get everything out, into its
    // log file, and the supervisor must answer at once.
    wait_until(T, "the whole burst in the log file", || read(&log).contains("burst-done"));
    for _ in 0..5 {
        let out = ctl(&env, &["status", "--json"]);
        assert_eq!(out.code, 0, "{}", out.show());
        assert!(out.took < Duration::from_secs(1), "status took {:?} with stdout stalled", out.took);
    }
    let text = read(&log);
    let numbered: Vec<&str> = text.lines().take(LINES).collect();
    assert_eq!(numbered.len(), LINES, "the log file has every line");
    assert!(numbered.iter().enumerate().all(|(i, l)| *l == (i + 1).to_string()), "in order and whole");
    let logs = ctl(&env, &["logs", "-n", "1000", "w"]);
    assert!(logs.stdout.contains("w    | burst-done"), "tend logs has the latest lines\n{}", logs.show());
    // Now read: a notice for the lines that were dropped, then new lines.
    let (send, receive) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if send.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut seen = String::new();
    wait_until(T, "the dropped-lines notice and a new line after it", || {
        while let Ok(chunk) = receive.try_recv() {
            seen.push_str(&chunk);
        }
        seen.find("lines dropped: stdout was not being read")
            .is_some_and(|at| seen[at..].lines().any(|l| l.starts_with("w    | tick-")))
    });
    // Whole lines only, each a service line or one of tend's.
    let complete = &seen[..seen.rfind('\n').unwrap() + 1];
    for line in complete.lines() {
        assert!(line.starts_with("w    | ") || line.starts_with("tend | "), "not a whole line: {line:?}");
    }
    let notice = complete.lines().find(|l| l.contains("lines dropped")).unwrap();
    let count: u64 = notice.trim_start_matches("tend | ").split(' ').next().unwrap().parse().unwrap();
    let shown = complete.lines().filter(|l| l.starts_with("w    | ")).count() as u64;
    assert!(count > 0 && count <= LINES as u64 + 1, "{notice}");
    assert!(shown + count >= LINES as u64, "every line was either shown or counted: {shown} + {count}");
    let out = ctl(&env, &["shutdown"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let _ = child.wait();
}

#[test]
fn a_stalled_stdout_pipe_blocks_nothing_and_drops_only_its_own_copy() {
    stalled_stdout(Stalled::Pipe);
}

#[test]
fn a_stalled_stdout_socket_blocks_nothing_and_drops_only_its_own_copy() {
    stalled_stdout(Stalled::Socket);
}
