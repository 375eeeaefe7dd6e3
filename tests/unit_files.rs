//! README section 1, unit files: `tend check` and `tend up` validation,
//! diagnostics with FILE:LINE:COL, and the choice of the units folder.

mod common;
use common::*;

use std::fs;

const OK_UNIT: &str = "command: [sleep, '30']\n";

/// The stderr line that names `file` with a `:LINE:` right after it.
/// `line == 0` means "any line number" (for syntax errors whose exact
/// position depends on the parser).
fn diag_line<'a>(stderr: &'a str, file: &str, line: u32) -> Option<&'a str> {
    if line == 0 {
        let needle = format!("{file}:");
        return stderr.lines().find(|l| {
            l.match_indices(&needle)
                .any(|(i, _)| l[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
        });
    }
    let needle = format!("{file}:{line}:");
    stderr.lines().find(|l| l.contains(&needle))
}

#[test]
fn check_accepts_valid_units() {
    let env = Env::new();
    env.unit("web", OK_UNIT);
    env.unit(
        "worker",
        "description: a worker\n\
         command: sh -c 'echo hi'\n\
         working_dir: /tmp\n\
         environment:\n  A: b\n\
         umask: \"0027\"\n\
         nice: 5\n\
         rlimits:\n  nofile: {soft: 100, hard: 200}\n  fsize: 64M\n  core: unlimited\n\
         process_group: true\n\
         restart: always\n\
         success_exit_codes: [0, 3]\n\
         restart_delay: 250ms\n\
         restart_delay_max: 2m\n\
         start_limit: {burst: 5, interval: 60s}\n\
         stop_signal: INT\n\
         stop_timeout: 1h\n\
         critical: false\n",
    );
    env.unit("list-env", "command: [env]\nenvironment: [A=b, C=d]\nclear_env: true\n");
    let (code, stderr) = env.check();
    assert_eq!(code, 0, "tend check of valid units should exit 0; stderr:\n{stderr}");
}

#[test]
fn check_of_an_empty_folder_says_there_are_no_units() {
    let env = Env::new();
    let units = env.units();
    let mut check = env.spawn(&["check", units.to_str().unwrap()], |_| {});
    assert_eq!(check.exit_code(T), 0, "{}", check.dump());
    assert_eq!(check.stdout(), format!("{}: no units (files named NAME.yaml)\n", units.display()));
    env.unit("web", OK_UNIT);
    let mut check = env.spawn(&["check", units.to_str().unwrap()], |_| {});
    assert_eq!(check.exit_code(T), 0, "{}", check.dump());
    assert_eq!(check.stdout(), format!("{}: 1 unit ok: web\n", units.display()));
}

#[test]
fn check_misspelled_key_names_file_line_col_and_suggests() {
    let env = Env::new();
    env.unit("web", "description: web\ncommand: [sleep, '30']\nenviroment:\n  A: b\n");
    let (code, stderr) = env.check();
    assert_eq!(code, 2, "stderr:\n{stderr}");
    let line = diag_line(&stderr, "web.yaml", 3)
        .unwrap_or_else(|| panic!("no 'web.yaml:3:' diagnostic in stderr:\n{stderr}"));
    assert!(line.contains("web.yaml:3:1:"), "column should be 1: {line}");
    assert!(line.contains("unknown key 'enviroment'"), "{line}");
    assert!(line.contains("did you mean 'environment'"), "{line}");
}

/// Each malformed unit, alone in its folder: `check` and `up` exit 2 and
/// the error names the file and the line.
#[test]
fn malformed_units_each_exit_2_with_file_and_line() {
    // (file stem, content, line the error must name, words the message must contain)
    let cases: &[(&str, &str, u32, &[&str])] = &[
        ("unknown-key", "command: ['true']\nfoo: 1\n", 2, &["foo"]),
        ("wrong-type", "command: ['true']\nnice: high\n", 2, &["nice"]),
        ("bad-restart", "command: ['true']\nrestart: sometimes\n", 2, &["sometimes"]),
        ("nice-range", "command: ['true']\nnice: 40\n", 2, &["nice"]),
        ("bad-duration", "command: ['true']\nstop_timeout: 10 parsecs\n", 2, &[]),
        ("bad-delay", "command: ['true']\nrestart_delay: soon\n", 2, &[]),
        ("bad-umask", "command: ['true']\numask: \"0999\"\n", 2, &[]),
        ("bad-signal", "command: ['true']\nstop_signal: SIGFOO\n", 2, &["SIGFOO"]),
        ("bad-rlimit", "command: ['true']\nrlimits:\n  nofiles: 10\n", 3, &["nofiles"]),
        ("bad-size", "command: ['true']\nrlimits:\n  fsize: 12Q\n", 3, &[]),
        ("no-user", "command: ['true']\nuser: tend-no-such-user\n", 2, &["tend-no-such-user"]),
        ("no-group", "command: ['true']\ngroup: tend-no-such-group\n", 2, &["tend-no-such-group"]),
        ("empty-command", "description: x\ncommand: []\n", 2, &["command"]),
        ("empty-string-command", "command: ''\n", 1, &["command"]),
        ("missing-command", "description: no command here\n", 1, &["command"]),
        ("dup-key", "command: ['true']\nnice: 1\nnice: 2\n", 3, &["nice"]),
        ("bad-yaml", "command: ['true'\nnice: 1\n", 0, &[]),
        ("bad-exit-codes", "command: ['true']\nsuccess_exit_codes: [zero]\n", 2, &[]),
        ("bad-start-limit", "command: ['true']\nstart_limit: {burst: 5, intervl: 60s}\n", 2, &["intervl"]),
        ("bad-critical", "command: ['true']\ncritical: yes\n", 2, &["critical"]),
    ];
    let mut failures = Vec::new();
    for (stem, content, line, words) in cases {
        let env = Env::new();
        env.unit(stem, content);
        let file = format!("{stem}.yaml");
        let (code, stderr) = env.check();
        if code != 2 {
            failures.push(format!("{file}: check exited {code}, want 2; stderr: {stderr:?}"));
            continue;
        }
        match diag_line(&stderr, &file, *line) {
            None => failures.push(format!("{file}: no '{file}:{line}:' in stderr: {stderr:?}")),
            Some(l) => {
                for w in *words {
                    if !l.contains(w) {
                        failures.push(format!("{file}: diagnostic lacks {w:?}: {l:?}"));
                    }
                }
            }
        }
        // `up` shares the validation: exit 2, nothing started.
        let mut up = env.up();
        let code = up.exit_code(T);
        if code != 2 {
            failures.push(format!("{file}: up exited {code}, want 2; stderr: {:?}", up.stderr()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn check_bad_service_name_is_rejected() {
    let env = Env::new();
    env.unit("Web_Upper", OK_UNIT);
    let (code, stderr) = env.check();
    assert_eq!(code, 2, "uppercase service name must be rejected; stderr:\n{stderr}");
    assert!(stderr.contains("Web_Upper.yaml"), "error should name the file:\n{stderr}");
}

#[test]
fn check_reports_all_errors_of_all_files_in_one_run() {
    let env = Env::new();
    env.unit("alpha", "command: ['true']\nenviroment: {A: b}\n");
    env.unit("beta", "command: ['true']\nrestart: sometimes\nnice: 99\n");
    env.unit("good", OK_UNIT);
    let (code, stderr) = env.check();
    assert_eq!(code, 2, "stderr:\n{stderr}");
    for (file, line) in [("alpha.yaml", 2), ("beta.yaml", 2), ("beta.yaml", 3)] {
        assert!(
            diag_line(&stderr, file, line).is_some(),
            "missing diagnostic {file}:{line}: in one run; stderr:\n{stderr}"
        );
    }
}

#[test]
fn up_with_an_invalid_unit_starts_nothing_and_exits_2() {
    let env = Env::new();
    let marker = env.p("started");
    env.unit("good", &sh(&format!("touch {}; exec sleep 30", marker.display())));
    env.unit("bad", "command: ['true']\nrestart: sometimes\n");
    let mut tend = env.up();
    let code = tend.exit_code(T);
    assert_eq!(code, 2, "{}", tend.dump());
    assert!(tend.stderr().contains("bad.yaml:2:"), "{}", tend.dump());
    assert!(!marker.exists(), "the valid service was started despite an invalid unit");
}

/// A critical one-shot service: tend up runs it and exits by itself.
fn oneshot(marker: &std::path::Path) -> String {
    format!("{}restart: never\ncritical: true\n", sh(&format!("touch {}", marker.display())))
}

#[test]
fn up_reads_units_from_tend_units_env() {
    let env = Env::new();
    let dir = env.p("elsewhere");
    fs::create_dir(&dir).unwrap();
    let marker = env.p("ran");
    fs::write(dir.join("one.yaml"), oneshot(&marker)).unwrap();
    let mut tend = env.spawn(&["up"], |c| {
        c.env("TEND_UNITS", &dir);
    });
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    assert!(marker.exists(), "unit from $TEND_UNITS did not run\n{}", tend.dump());
}

#[test]
fn up_defaults_to_units_in_cwd() {
    let env = Env::new();
    let marker = env.p("ran");
    env.unit("one", &oneshot(&marker));
    let mut tend = env.spawn(&["up"], |_| {});
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    assert!(marker.exists(), "unit from ./units did not run\n{}", tend.dump());
}

#[test]
fn up_units_flag_wins_over_env() {
    let env = Env::new();
    let dir = env.p("flag");
    fs::create_dir(&dir).unwrap();
    let good = env.p("from-flag");
    fs::write(dir.join("one.yaml"), oneshot(&good)).unwrap();
    // $TEND_UNITS points at an invalid folder: if it were used, exit 2.
    let bad = env.p("envdir");
    fs::create_dir(&bad).unwrap();
    fs::write(bad.join("x.yaml"), "nonsense: true\n").unwrap();
    let mut tend = env.spawn(&["up", "--units", dir.to_str().unwrap()], |c| {
        c.env("TEND_UNITS", &bad);
    });
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    assert!(good.exists(), "{}", tend.dump());
}
