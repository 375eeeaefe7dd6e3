//! README "Shell completions and man pages": `tend man DIR` writes tend(1),
//! one page per subcommand and tend.unit(5), which groff typesets without
//! a warning and man(1) shows.

mod common;

use common::*;
use std::fs;
use std::process::Command;

/// `tend man DIR` into the test's dir: the paths it printed.
fn write_pages(env: &Env) -> Vec<String> {
    let dir = env.p("man");
    let out = ctl(env, &["man", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.show());
    let printed: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    let mut on_disk: Vec<String> = ["man1", "man5"]
        .iter()
        .flat_map(|section| fs::read_dir(dir.join(section)).unwrap())
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    for page in &printed {
        let section = page.rsplit('.').next().unwrap();
        assert!(page.contains(&format!("/man{section}/")), "{page} is not in its section's folder");
    }
    on_disk.sort();
    let mut sorted = printed.clone();
    sorted.sort();
    assert_eq!(sorted, on_disk, "tend man printed other paths than it wrote");
    printed
}

#[test]
fn every_page_typesets_without_a_warning() {
    let test = "every_page_typesets_without_a_warning";
    if skip_unless_installed(test, &["groff"]) {
        return;
    }
    let env = Env::new();
    let pages = write_pages(&env);
    assert!(pages.len() >= 13, "{pages:?}");
    for page in &pages {
        // -ww: every warning; -k: UTF-8 input through preconv, as man does.
        let mut cmd = Command::new("groff");
        cmd.args(["-k", "-t", "-man", "-Tutf8", "-ww", "-z", page]);
        let out = run_cmd(cmd, &format!("groff {page}"));
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{page}\n{}", out.show());
    }
}

#[test]
fn man_shows_tend_and_each_subcommand() {
    if skip_unless_installed("man_shows_tend_and_each_subcommand", &["man"]) {
        return;
    }
    let env = Env::new();
    let pages = write_pages(&env);
    let show = |file: &str| {
        let page =
            pages.iter().find(|p| p.ends_with(&format!("/{file}"))).unwrap_or_else(|| panic!("no {file}"));
        let mut cmd = Command::new("man");
        cmd.args(["-l", page]).env("MANWIDTH", "100").env("LC_ALL", "C.UTF-8");
        let out = run_cmd(cmd, &format!("man -l {file}"));
        assert_eq!(out.code, 0, "{}", out.show());
        // Justified text has runs of spaces: compare words.
        out.stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let main = show("tend.1");
    for needle in [
        "NAME",
        "tend - A sandboxed process supervisor",
        "SYNOPSIS",
        "SUBCOMMANDS",
        "tend-status(1)",
        "EXIT STATUS",
        "No supervisor answers on the control socket.",
        "ENVIRONMENT",
        "TEND_SOCKET",
        "SEE ALSO",
        "tend.unit(5)",
    ] {
        assert!(main.contains(needle), "tend(1) lacks {needle:?}:\n{main}");
    }
    assert!(!main.contains("tend-help(1)"), "tend(1) names a page that does not exist:\n{main}");
    let logs = show("tend-logs.1");
    for needle in ["tend-logs - Print the last lines", "tend logs [-f|--follow]", "-n, --lines", "--socket"] {
        assert!(logs.contains(needle), "tend-logs(1) lacks {needle:?}:\n{logs}");
    }
    let unit = show("tend.unit.5");
    for needle in [
        "tend.unit - the unit file format of tend",
        "KEYS",
        "stop_timeout (a duration",
        "Default: 10s.",
        "watchdog (a duration above zero",
        "Only with type: notify.",
        "memory_max (a size in bytes",
        "EXAMPLE",
        "command: [nginx, -g, \"daemon off;\"]",
    ] {
        assert!(unit.contains(needle), "tend.unit(5) lacks {needle:?}:\n{unit}");
    }
    let completions = show("tend-completions.1");
    assert!(
        completions.contains("EXAMPLES") && completions.contains("tend completions bash"),
        "{completions}"
    );
}
