//! `tend man DIR`: write the manual pages into DIR: `tend.1`, one
//! `tend-SUBCOMMAND.1` per subcommand (clap_mangen, from the same clap
//! definition as `--help`), and `tend.unit.5` for the unit file format
//! (from the loader's own table of keys, `unit::keys`).
//!
//! Generation is pure (text in, text out); only [`write`] touches the
//! filesystem, creating DIR and replacing the pages' files in it.

use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;
use std::io::Write;
use std::path::Path;

/// Environment variables tend reads, for the ENVIRONMENT section.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("TEND_UNITS", "The units folder, when --units is not given (tend up, tend check)."),
    ("TEND_SOCKET", "The control socket, when --socket is not given."),
    (
        "XDG_RUNTIME_DIR",
        "For a user other than root, the control socket is $XDG_RUNTIME_DIR/tend/tend.sock (else /tmp/tend-UID/tend.sock).",
    ),
    ("NO_COLOR", "When set and not empty, tend up does not colour the service prefixes."),
    ("TEND_SYSLOG_SOCKET", "The syslog socket to write to instead of /dev/log."),
];

/// Files, for the FILES section.
const FILES: &[(&str, &str)] = &[
    ("./units, /etc/tend/units", "The units folder when neither --units nor $TEND_UNITS names one: ./units when it exists, else /etc/tend/units. One NAME.yaml per service; see tend.unit(5)."),
    ("/run/tend/tend.sock", "The control socket of a supervisor run by root."),
];

/// The .TH manual name (the centre of each page's header).
const MANUAL: &str = "tend manual";

/// The .TH source (the left of each page's footer).
fn source() -> String {
    format!("tend {}", env!("CARGO_PKG_VERSION"))
}

/// Every page as (file name, roff text), tend.1 first; `cmd` is the clap
/// definition (from `cli`).
pub fn pages(mut cmd: clap::Command) -> Vec<(String, String)> {
    // Gives each subcommand its display name (`tend-status`) and bin name
    // (`tend status`), which the pages' titles and synopses use.
    cmd.build();
    let subcommands: Vec<clap::Command> =
        cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help").cloned().collect();
    let mut pages = vec![("tend.1".to_owned(), main_page(cmd.clone(), &subcommands))];
    for sub in subcommands {
        let name = format!("{}.1", sub.get_display_name().unwrap_or(sub.get_name()));
        pages.push((name, subcommand_page(sub)));
    }
    pages.push(("tend.unit.5".to_owned(), unit_page()));
    pages
}

/// One of clap_mangen's `Man::render_*_section` methods.
type Section = fn(&Man, &mut Vec<u8>) -> std::io::Result<()>;

fn render(man: &Man, parts: &[Section]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        part(man, &mut out).expect("writing to a Vec cannot fail");
    }
    out
}

/// clap_mangen's sections up to OPTIONS, which every page of tend(1) and
/// its subcommands starts with.
const HEAD: &[Section] = &[
    |m, w| m.render_title(w),
    |m, w| m.render_name_section(w),
    |m, w| m.render_synopsis_section(w),
    |m, w| m.render_description_section(w),
    |m, w| m.render_options_section(w),
];

fn main_page(cmd: clap::Command, subcommands: &[clap::Command]) -> String {
    let man = Man::new(cmd).manual(MANUAL).source(source());
    let mut out = render(&man, HEAD);
    // Not clap_mangen's section: it lists `tend-help(1)`, which has no page.
    let mut roff = Roff::new();
    roff.control("SH", ["SUBCOMMANDS"]);
    for sub in subcommands {
        let name = sub.get_display_name().unwrap_or(sub.get_name());
        roff.control("TP", []).text([bold(format!("{name}(1)"))]);
        roff.text([roman(sub.get_about().map(|a| a.to_string()).unwrap_or_default())]);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (status, meaning) in crate::exit::STATUSES {
        roff.control("TP", []).text([bold(*status)]).text([roman(*meaning)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, meaning) in ENVIRONMENT {
        roff.control("TP", []).text([bold(*name)]).text([roman(*meaning)]);
    }
    roff.control("SH", ["FILES"]);
    for (path, meaning) in FILES {
        roff.control("TP", []).text([italic(*path)]).text([roman(*meaning)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut see_also: Vec<String> =
        subcommands.iter().map(|s| format!("{}(1)", s.get_display_name().unwrap_or(s.get_name()))).collect();
    see_also.push("tend.unit(5)".into());
    roff.text([roman(see_also.join(", "))]);
    out.extend(roff.render().into_bytes());
    out.extend(render(&man, &[|m, w| m.render_version_section(w)]));
    String::from_utf8(out).expect("roff is UTF-8")
}

fn subcommand_page(sub: clap::Command) -> String {
    let has_after_help = sub.get_after_long_help().or(sub.get_after_help()).is_some();
    let man = Man::new(sub).manual(MANUAL).source(source());
    let mut out = render(&man, HEAD);
    if has_after_help {
        let mut extra = Vec::new();
        man.render_extra_section(&mut extra).expect("writing to a Vec cannot fail");
        // clap_mangen calls the after-help section EXTRA; ours are examples.
        out.extend(
            String::from_utf8(extra)
                .expect("roff is UTF-8")
                .replacen(".SH EXTRA", ".SH EXAMPLES", 1)
                .into_bytes(),
        );
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("tend(1), tend.unit(5)")]);
    out.extend(roff.render().into_bytes());
    String::from_utf8(out).expect("roff is UTF-8")
}

/// The EXAMPLE of tend.unit(5) (loaded by a test, so it stays valid).
const UNIT_EXAMPLE: &str = r#"# /etc/tend/units/web.yaml
description: front end
command: [nginx, -g, "daemon off;"]
depends_on: {app: ready}
environment: {TZ: UTC}
rlimits: {nofile: 65536}
restart: always
stop_signal: SIGQUIT
stop_timeout: 15s
ready_check: {http: "http://127.0.0.1:8080/health", interval: 1s}
health_check: {tcp: "127.0.0.1:8080", interval: 30s, retries: 3}
log: {file: /var/log/tend/web.log, max_size: 10M, keep: 5}
sandbox:
  no_new_privileges: true
  capabilities: [NET_BIND_SERVICE, SETUID, SETGID]
  private_tmp: true
  read_only_paths: [/]
  read_write_paths: [/var/log/nginx, /var/lib/nginx, /run]
resources: {memory_max: 512M, pids_max: 512}
"#;

/// tend.unit(5): every key of the table, with its kind, default and use.
fn unit_page() -> String {
    use crate::unit::keys::{Key, Value, UNIT};
    let mut roff = Roff::new();
    roff.control("TH", ["tend.unit", "5", "", source().as_str(), MANUAL]);
    roff.control("SH", ["NAME"]);
    roff.text([roman("tend.unit - the unit file format of tend")]);
    roff.control("SH", ["SYNOPSIS"]);
    roff.text([italic("UNITS"), roman("/"), italic("NAME"), roman(".yaml")]);
    roff.control("SH", ["DESCRIPTION"]);
    for paragraph in [
        "Each service tend supervises is described by one YAML file in the units folder (tend up --units DIR, else $TEND_UNITS, else ./units when it exists, else /etc/tend/units). The service's name is the file's name without .yaml or .yml, and matches [a-z0-9][a-z0-9_.@-]*.",
        "Every key but command is optional. Unknown keys, values of the wrong kind and keys that do not fit the service's type are errors: tend check, tend up and tend reload report every error of every file, each with file, line and column, and start nothing while any unit is invalid.",
        "tend schema prints a JSON Schema of this format, generated from the same table of keys as this page, for editors: start a unit file with the line # yaml-language-server: $schema=PATH.",
    ] {
        roff.control("PP", []).text([roman(paragraph)]);
    }
    roff.control("SH", ["KEYS"]);
    fn entry(roff: &mut Roff, key: &Key) {
        let kind =
            if key.nullable { format!("null, or {}", key.value.describe()) } else { key.value.describe() };
        roff.control("TP", []).text([bold(key.name), roman(" ("), italic(kind), roman(")")]);
        let mut text = key.doc.to_owned();
        if let Some(default) = key.default.describe() {
            text.push_str(&format!(" Default: {default}."));
        }
        if !key.types.is_empty() {
            text.push_str(&format!(" Only with type: {}.", key.types.join(" or ")));
        }
        if !key.requires.is_empty() {
            text.push_str(&format!(" Needs {}.", key.requires.join(", ")));
        }
        if let Value::Table { one_of, .. } = key.value {
            if !one_of.is_empty() {
                text.push_str(&format!(" Exactly one of {}.", one_of.join(", ")));
            }
        }
        roff.text([roman(text)]);
        roff.control("br", []).text([roman("Example: "), bold(format!("{}: {}", key.name, key.example))]);
        if let Value::Table { keys, .. } = key.value {
            roff.control("RS", []);
            for sub in keys {
                entry(roff, sub);
            }
            roff.control("RE", []);
        }
    }
    for key in UNIT {
        entry(&mut roff, key);
    }
    roff.control("SH", ["VALUES"]);
    for (what, text) in [
        ("Durations", "A number and a unit, ns, us, ms, s, m, h or d, repeated: 250ms, 10s, 1m30s, 1.5s. A bare number other than 0 is an error: 10 could mean seconds or milliseconds."),
        ("Sizes", "A number of bytes with an optional K, M, G or T suffix (powers of 1024, any case, optionally followed by B or iB): 4096, 512K, 64M, 1GiB."),
        ("Signals", "A name with or without SIG, in any case (SIGTERM, term), a number, or SIGRTMIN+N and SIGRTMAX-N."),
        ("Resource limits", "The resources of rlimits are nofile, nproc, core, as, cpu, data, fsize, memlock, stack, rss, msgqueue, nice, rtprio, sigpending and locks (RLIMIT_ and any case are accepted too); the byte-sized ones (core, as, data, fsize, memlock, stack, rss, msgqueue) take sizes."),
        ("Commands", "A list of strings is the argument vector as it is. One string is split into words as a POSIX shell would split them (single and double quotes, backslashes) but nothing is expanded: no variables, globs, pipes or redirections. To use a shell, say so: command: [sh, -c, \"...\"]."),
    ] {
        roff.control("TP", []).text([bold(what)]).text([roman(text)]);
    }
    roff.control("SH", ["EXAMPLE"]);
    roff.control("PP", []).control("nf", []).control("RS", ["4"]);
    for line in UNIT_EXAMPLE.lines() {
        roff.text([roman(line)]);
    }
    roff.control("RE", []).control("fi", []);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "tend(1), tend-check(1), tend-schema(1), systemd.exec(5), capabilities(7), setrlimit(2), sd_notify(3)",
    )]);
    roff.render()
}

/// Write every page into `dir/manN/` (its section's folder, as under
/// /usr/share/man), creating the folders; print each path.
pub fn write(dir: &Path, cmd: clap::Command) -> i32 {
    for (name, text) in pages(cmd) {
        let section = name.rsplit('.').next().unwrap_or("1");
        let folder = dir.join(format!("man{section}"));
        if let Err(err) = std::fs::create_dir_all(&folder) {
            crate::app::out::say_err(&format!("tend: cannot create {}: {err}", folder.display()));
            return crate::exit::FAILURE;
        }
        let path = folder.join(&name);
        if let Err(err) = std::fs::write(&path, text) {
            crate::app::out::say_err(&format!("tend: cannot write {}: {err}", path.display()));
            return crate::exit::FAILURE;
        }
        // A closed stdout (`| head`) must not stop the writing.
        let _ = writeln!(std::io::stdout(), "{}", path.display());
    }
    crate::exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_subcommand_plus_tend_1_and_tend_unit_5() {
        let names: Vec<String> = pages(<crate::cli::args::Cli as clap::CommandFactory>::command())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names.first().map(String::as_str), Some("tend.1"));
        assert_eq!(names.last().map(String::as_str), Some("tend.unit.5"));
        for sub in ["tend-up.1", "tend-status.1", "tend-signal.1", "tend-completions.1", "tend-man.1"] {
            assert!(names.iter().any(|n| n == sub), "{sub} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("__complete") || n == "tend-help.1"), "{names:?}");
    }

    #[test]
    fn the_unit_page_lists_every_key_of_the_table_and_its_example_loads() {
        let page = unit_page();
        fn all(keys: &[crate::unit::keys::Key], page: &str) {
            for key in keys {
                assert!(page.contains(&format!("\\fB{}\\fR (", key.name)), "{} missing", key.name);
                if let crate::unit::keys::Value::Table { keys, .. } = key.value {
                    all(keys, page);
                }
            }
        }
        all(crate::unit::keys::UNIT, &page);
        let example = crate::unit::testing::unit("web", UNIT_EXAMPLE.split_once('\n').unwrap().1);
        assert_eq!(example.stop_signal, 3);
    }

    #[test]
    fn subcommand_pages_have_their_own_synopsis() {
        let (_, status) = pages(<crate::cli::args::Cli as clap::CommandFactory>::command())
            .into_iter()
            .find(|(n, _)| n == "tend-status.1")
            .unwrap();
        assert!(status.contains("\n.TH tend-status 1 "), "{status}");
        assert!(status.contains("\\fBtend status\\fR"), "{status}");
    }
}
