//! README section 6, output: `NAME | line` prefixes padded to a common
//! width, stderr to stderr, the final partial line, whole lines only with
//! fast concurrent writers, colour only on a terminal without NO_COLOR.

mod common;
use common::*;

use std::process::Command;

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

/// tend's stdout is a pipe nobody reads for a while, and a service writes
/// far more than a pipe holds: the loop must not block on its own output.
/// `tend status` keeps answering while the output is stalled, and once the
/// reader drains the pipe every line arrives, whole and in order.
#[test]
fn a_stalled_stdout_does_not_block_the_loop_and_loses_nothing() {
    use std::io::Read;
    const LINES: usize = 100_000; // about 4 MB with the prefix: far above a 64 KiB pipe
    let env = Env::new();
    env.unit(
        "w",
        &format!(
            "{}restart: never\n",
            sh(&format!(
                "i=0; while [ $i -lt {LINES} ]; do echo line-$i; i=$((i+1)); done; echo done > {}",
                env.p("wrote").display()
            ))
        ),
    );
    let mut child = Command::new(tend_bin())
        .args(["up", "--units", env.units().to_str().unwrap()])
        .env("TEND_SOCKET", env.socket())
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(env.p("tend.stderr")).unwrap())
        .spawn()
        .expect("start tend");
    struct Guard(i32);
    impl Drop for Guard {
        fn drop(&mut self) {
            kill(self.0, libc::SIGKILL);
        }
    }
    let _guard = Guard(child.id() as i32);
    // Nobody reads yet: the service soon blocks on its own pipe, and tend's
    // stdout is full. The supervisor must still answer.
    wait_until(T, "the supervisor to answer while its stdout is full", || {
        ctl(&env, &["status", "--json"]).stdout.contains("\"name\": \"w\"")
    });
    for _ in 0..5 {
        let out = ctl(&env, &["status", "--json"]);
        assert!(
            out.took < std::time::Duration::from_secs(2),
            "status took {:?} with stdout stalled",
            out.took
        );
    }
    assert!(!env.p("wrote").exists(), "the pipe should have stalled the writer (test too small?)");
    // Now read everything; shut down once the writer is done.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    wait_until(T, "the writer to finish once its output is read", || env.p("wrote").exists());
    let out = ctl(&env, &["shutdown"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let text = reader.join().unwrap();
    let lines: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("w    | ")).collect();
    assert_eq!(lines.len(), LINES, "every line arrives once");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("line-{i}"), "in order and whole");
    }
    let _ = child.wait();
}
