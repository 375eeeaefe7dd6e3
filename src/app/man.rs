//! `tend man DIR`: write the manual pages into DIR: `tend.1`, one
//! `tend-SUBCOMMAND.1` per subcommand (clap_mangen, from the same clap
//! definition as `--help`).
//!
//! Generation is pure (text in, text out); only [`write`] touches the
//! filesystem, creating DIR and replacing the pages' files in it.

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;
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

/// Every page as (file name, roff text), tend.1 first.
pub fn pages() -> Vec<(String, String)> {
    let mut cmd = crate::cli::Cli::command();
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

fn main_page(cmd: clap::Command, subcommands: &[clap::Command]) -> String {
    let man = Man::new(cmd).manual(MANUAL).source(source());
    let mut out = render(
        &man,
        &[
            |m, w| m.render_title(w),
            |m, w| m.render_name_section(w),
            |m, w| m.render_synopsis_section(w),
            |m, w| m.render_description_section(w),
            |m, w| m.render_options_section(w),
        ],
    );
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
    let mut out = render(
        &man,
        &[
            |m, w| m.render_title(w),
            |m, w| m.render_name_section(w),
            |m, w| m.render_synopsis_section(w),
            |m, w| m.render_description_section(w),
            |m, w| m.render_options_section(w),
        ],
    );
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

/// Create `dir` if needed and write every page into it; print each path.
pub fn write(dir: &Path) -> i32 {
    if let Err(err) = std::fs::create_dir_all(dir) {
        eprintln!("tend: cannot create {}: {err}", dir.display());
        return crate::exit::FAILURE;
    }
    for (name, text) in pages() {
        let path = dir.join(&name);
        if let Err(err) = std::fs::write(&path, text) {
            eprintln!("tend: cannot write {}: {err}", path.display());
            return crate::exit::FAILURE;
        }
        if let Err(code) = crate::emit!("{}\n", path.display()) {
            return code;
        }
    }
    crate::exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_subcommand_plus_tend_1() {
        let names: Vec<String> = pages().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.first().map(String::as_str), Some("tend.1"));
        for sub in ["tend-up.1", "tend-status.1", "tend-signal.1", "tend-completions.1", "tend-man.1"] {
            assert!(names.iter().any(|n| n == sub), "{sub} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("__complete") || n == "tend-help.1"), "{names:?}");
    }

    #[test]
    fn subcommand_pages_have_their_own_synopsis() {
        let (_, status) = pages().into_iter().find(|(n, _)| n == "tend-status.1").unwrap();
        assert!(status.contains("\n.TH tend-status 1 "), "{status}");
        assert!(status.contains("\\fBtend status\\fR"), "{status}");
    }
}
