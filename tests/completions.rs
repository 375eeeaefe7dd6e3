//! README "Shell completions": the scripts from `tend completions SHELL`,
//! loaded into real bash, fish and zsh, complete subcommands, flags, signal
//! names and the running supervisor's service names; without a supervisor
//! `tend __complete` prints nothing, says nothing and returns at once.
//!
//! bash is driven through its completion function with COMP_WORDS set, as
//! bash itself calls it; fish through `complete -C`, its own non-interactive
//! completion query; zsh, whose completion only runs inside the line
//! editor, in a real terminal under tmux with a Tab key press.

mod common;

use common::*;
use std::fs;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A supervisor with services `db`, `web` and `worker`, answering on its socket.
fn three_services(env: &Env) -> Tend {
    for name in ["db", "web", "worker"] {
        env.unit(name, "command: [sleep, infinity]\n");
    }
    let tend = env.up();
    wait_socket(env, &tend);
    wait_running(env, &tend, &["db", "web", "worker"]);
    tend
}

/// `tend completions SHELL` written to a file in the test's dir.
fn script(env: &Env, shell: &str, file: &str) -> PathBuf {
    let out = ctl(env, &["completions", shell]);
    assert_eq!(out.code, 0, "{}", out.show());
    let path = env.p(file);
    fs::write(&path, out.stdout).unwrap();
    path
}

/// The folder of the tend under test, first on PATH (zsh and fish call `tend`).
fn path_with_tend() -> String {
    let dir = Path::new(tend_bin()).parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

/// What bash's completion gives for each line (words separated by spaces; a
/// trailing space means "complete a new, empty word"), one result per line.
fn bash_complete(env: &Env, lines: &[&str], extra_env: &[(&str, &str)]) -> Vec<String> {
    let script = script(env, "bash", "tend.bash");
    let mut program = format!(
        r#"source {}
complete -p tend
t() {{
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMPREPLY=()
    _tend_names tend "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
    echo "${{COMPREPLY[*]}}"
}}
"#,
        script.display()
    );
    for line in lines {
        let mut words: Vec<String> = line.split(' ').map(|w| format!("'{w}'")).collect();
        if line.ends_with(' ') {
            words.pop();
            words.push("''".into());
        }
        program.push_str(&format!("t {}\n", words.join(" ")));
    }
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-c", &program]).env("TEND_SOCKET", env.socket());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    // COMP_WORDS[0] is `tend` as typed: the one on PATH.
    cmd.env("PATH", path_with_tend());
    let out = run_cmd(cmd, "bash completion");
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stderr.is_empty(), "completion printed errors\n{}", out.show());
    let mut results: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    let registration = results.remove(0);
    assert!(registration.contains("-F _tend_names") && registration.ends_with(" tend"), "{registration}");
    assert_eq!(results.len(), lines.len(), "{}", out.show());
    results
}

#[test]
fn bash_completes_subcommands_flags_signals_and_service_names() {
    let env = Env::new();
    let mut tend = three_services(&env);
    let lines = [
        "tend st",
        "tend stop ",
        "tend stop w",
        "tend restart db ",
        "tend logs -n 5 w",
        "tend stop --",
        "tend signal ",
        "tend signal SIGUS",
        "tend signal SIGHUP ",
        "tend check ",
        "tend completions ",
        "tend to",
    ];
    let got = bash_complete(&env, &lines, &[]);
    let want = [
        "status start stop",
        "db web worker",
        "web worker",
        "db web worker",
        "web worker",
        "--all --no-wait --socket --help --version",
        "",
        "SIGUSR1 SIGUSR2",
        "db web worker",
        "",
        "-h -V --help --version bash zsh fish",
        "top",
    ];
    for ((line, got), want) in lines.iter().zip(&got).zip(want) {
        if line == &"tend signal " {
            assert!(
                got.starts_with("SIGHUP SIGINT SIGQUIT") && got.contains("SIGRTMAX"),
                "{line:?} → {got:?}"
            );
        } else if line == &"tend stop --" {
            // Only long flags, among them these (others may be added).
            let words: Vec<&str> = got.split(' ').collect();
            assert!(words.iter().all(|w| w.starts_with("--")), "{line:?} → {got:?}");
            for flag in ["--all", "--no-wait", "--socket", "--help"] {
                assert!(words.contains(&flag), "{line:?} → {got:?}");
            }
        } else if line == &"tend check " {
            // A folder argument: clap leaves it to bash's file completion.
            assert!(!got.contains("web"), "{line:?} → {got:?}");
        } else {
            assert_eq!(got, want, "completing {line:?}");
        }
    }
    shutdown(&env, &mut tend);
}

#[test]
fn bash_passes_the_socket_on_the_line_to_the_name_query() {
    let env = Env::new();
    let mut tend = three_services(&env);
    let socket = env.socket().display().to_string();
    let lines = [format!("tend stop --socket {socket} w"), format!("tend --socket={socket} status d")];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    // No TEND_SOCKET pointing at it: only the flag on the line can find it.
    let got = bash_complete(&env, &lines, &[("TEND_SOCKET", "/nonexistent/tend.sock")]);
    assert_eq!(got, ["web worker", "db"]);
    shutdown(&env, &mut tend);
}

#[test]
fn without_a_supervisor_name_completion_is_empty_silent_and_prompt() {
    let env = Env::new();
    // No socket file at all.
    let out = ctl(&env, &["__complete", "services", "--socket", "/nonexistent/tend.sock"]);
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "", ""), "{}", out.show());
    // A socket that accepts connections but never answers: the query gives
    // up after its short timeout (run_cmd fails the test if it hangs).
    let listener = UnixListener::bind(env.p("mute.sock")).unwrap();
    let out = ctl(&env, &["__complete", "services", "--socket", env.p("mute.sock").to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "", ""), "{}", out.show());
    drop(listener);
    // And the bash completion of a name position then offers nothing
    // (not file names, not flags).
    let got = bash_complete(&env, &["tend stop "], &[]);
    assert_eq!(got, [""]);
}

#[test]
fn fish_completes_subcommands_flags_signals_and_service_names() {
    if skip_unless_installed("fish_completes_subcommands_flags_signals_and_service_names", &["fish"]) {
        return;
    }
    let env = Env::new();
    let mut tend = three_services(&env);
    let script = script(&env, "fish", "tend.fish");
    let queries = [
        "tend st",
        "tend stop ",
        "tend signal TERM w",
        "tend signal SIGUS",
        "tend logs -n 5 ",
        "tend stop --a",
    ];
    let mut program = format!("source {}\n", script.display());
    for q in queries {
        program.push_str(&format!("echo (complete -C '{q}' | cut -f1)\n"));
    }
    let mut cmd = Command::new("fish");
    cmd.args(["--no-config", "-c", &program])
        .env("TEND_SOCKET", env.socket())
        .env("PATH", path_with_tend())
        .env("HOME", env.root());
    let out = run_cmd(cmd, "fish completion");
    assert_eq!(out.code, 0, "{}", out.show());
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        got,
        ["start status stop", "db web worker", "web worker", "SIGUSR1 SIGUSR2", "db web worker", "--all"],
        "{}",
        out.show()
    );
    shutdown(&env, &mut tend);
}

#[test]
fn zsh_completes_service_names_and_signals_in_a_real_terminal() {
    let test = "zsh_completes_service_names_and_signals_in_a_real_terminal";
    if skip_unless_installed(test, &["zsh", "tmux"]) {
        return;
    }
    let env = Env::new();
    let mut tend = three_services(&env);
    let fpath = env.p("zfunc");
    fs::create_dir(&fpath).unwrap();
    fs::copy(script(&env, "zsh", "tend.zsh"), fpath.join("_tend")).unwrap();
    let tmux = Tmux { socket: env.p("tmux.sock") };
    let shell = format!(
        "env -i HOME={home} TERM=xterm PATH={path} TEND_SOCKET={socket} zsh -f",
        home = env.root().display(),
        path = path_with_tend(),
        socket = env.socket().display()
    );
    tmux.cmd(&["new-session", "-d", "-s", "t", "-x", "160", "-y", "40", &shell]);
    tmux.cmd(&[
        "send-keys",
        "-t",
        "t",
        &format!("fpath=({} $fpath); autoload -U compinit; compinit -u; PS1='ready> '", fpath.display()),
        "Enter",
    ]);
    tmux.wait_for("ready> ");
    tmux.cmd(&["send-keys", "-t", "t", "clear", "Enter"]);
    // Subcommands with their descriptions.
    tmux.cmd(&["send-keys", "-t", "t", "tend st", "Tab"]);
    let screen = tmux.wait_for("stop");
    assert!(screen.contains("status") && screen.contains("start"), "{screen}");
    // Service names: a list of all three.
    tmux.cmd(&["send-keys", "-t", "t", "C-u", "clear", "Enter"]);
    tmux.cmd(&["send-keys", "-t", "t", "tend stop ", "Tab"]);
    let screen = tmux.wait_for("worker");
    assert!(screen.contains("db") && screen.contains("web"), "{screen}");
    // One candidate left: zsh completes it on the line.
    tmux.cmd(&["send-keys", "-t", "t", "C-u", "clear", "Enter"]);
    tmux.cmd(&["send-keys", "-t", "t", "tend restart wor", "Tab"]);
    tmux.wait_for("tend restart worker");
    // The signal of `tend signal`.
    tmux.cmd(&["send-keys", "-t", "t", "C-u", "clear", "Enter"]);
    tmux.cmd(&["send-keys", "-t", "t", "tend signal SIGUS", "Tab"]);
    // zsh first inserts what all candidates share, then lists them.
    tmux.wait_for("tend signal SIGUSR");
    tmux.cmd(&["send-keys", "-t", "t", "Tab"]);
    let screen = tmux.wait_for("SIGUSR2");
    assert!(screen.contains("SIGUSR1"), "{screen}");
    drop(tmux);
    shutdown(&env, &mut tend);
}

/// `tend scale` completes pools only, then nothing (a number); other
/// commands offer a pool's unit name before its instances.
#[test]
fn pools_complete_by_their_unit_name() {
    let env = Env::new();
    env.unit("web", "command: [sleep, infinity]\n");
    env.unit("pool", "command: [sleep, infinity]\ninstances: 2\n");
    let mut tend = env.up();
    wait_running(&env, &tend, &["web", "pool@1", "pool@2"]);
    let lines = ["tend scale ", "tend scale pool ", "tend stop p", "tend restart --rolling "];
    let got = bash_complete(&env, &lines, &[]);
    assert_eq!(got[0], "pool");
    // The count: no names (clap's flags, as for any argument it cannot list).
    assert!(got[1].split(' ').all(|w| w.starts_with('-')), "{:?}", got[1]);
    assert_eq!(got[2..], ["pool pool@1 pool@2", "pool pool@1 pool@2 web"]);
    if !skip_unless_installed("pools_complete_by_their_unit_name (fish)", &["fish"]) {
        let script = script(&env, "fish", "tend.fish");
        let mut program = format!("source {}\n", script.display());
        for q in ["tend scale ", "tend scale pool "] {
            program.push_str(&format!("echo (complete -C '{q}' | cut -f1)\n"));
        }
        let mut cmd = Command::new("fish");
        cmd.args(["--no-config", "-c", &program])
            .env("TEND_SOCKET", env.socket())
            .env("PATH", path_with_tend())
            .env("HOME", env.root());
        let out = run_cmd(cmd, "fish completion");
        assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["pool", ""], "{}", out.show());
    }
    shutdown(&env, &mut tend);
}
