//! One file per subcommand: wiring and rendering only.

pub mod check;
pub mod control;
pub mod events;
#[cfg(test)]
mod fixtures;
pub mod import;
pub mod out;
pub mod run;
pub mod schema;
pub mod top;
pub mod up;
pub mod users;
pub mod wait;

use crate::unit::{self, Diagnostic, UnitSpec};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `--units DIR`, else `$TEND_UNITS`, else `./units` when it exists, else
/// `/etc/tend/units`.
pub fn units_dir(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir;
    }
    if let Some(dir) = std::env::var_os("TEND_UNITS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("units");
    if local.is_dir() {
        return local;
    }
    PathBuf::from("/etc/tend/units")
}

/// What loading a units folder gives: the units, and the problems that do
/// not stop `tend up` (a command that cannot be found or run): errors for
/// `tend check`, warnings for `up` and `reload`.
pub struct Loaded {
    pub units: Vec<UnitSpec>,
    pub warnings: Vec<Diagnostic>,
}

/// Variables meant for tend itself, which its services must not inherit:
/// systemd's notification socket, socket activation and watchdog (for
/// tend, not for them), and tend's own settings. A service gets one only
/// when its unit sets it (and a `type: notify` service gets tend's own
/// NOTIFY_SOCKET and WATCHDOG_USEC).
pub const NOT_INHERITED: [&str; 9] = [
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "TEND_SOCKET",
    "TEND_UNITS",
    "TEND_SYSLOG_SOCKET",
];

/// The environment services inherit: tend's own, read once, without
/// [`NOT_INHERITED`].
pub fn services_environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os().filter(|(key, _)| !NOT_INHERITED.iter().any(|n| key == n)).collect()
}

/// The one loader of `check`, `up` and `reload`, with one set of checks:
/// every unit parsed and validated; `resources` refused where the asked
/// controllers cannot be used; each command resolved as its spawn would
/// (the unit's PATH, working directory and user). Prints nothing: a reload
/// runs it on a thread of its own, so that user look-ups (NSS can block on
/// LDAP) never stall the loop.
pub fn load_units(dir: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let units = unit::load_dir(dir, &users::SystemUsers)?;
    if units.iter().any(|u| u.resources.is_set()) {
        let cgroups = crate::sandbox::cgroup::CgroupManager::detect();
        let problems: Vec<Diagnostic> = units
            .iter()
            .filter(|u| u.resources.is_set())
            .filter_map(|unit| {
                let reason = cgroups.available().and_then(|()| cgroups.supports(&unit.resources)).err()?;
                Some(Diagnostic {
                    file: unit.file.clone(),
                    line: 0,
                    column: 0,
                    message: format!("resources: cannot be enforced on this host: {reason}"),
                    hint: Some(
                        "remove `resources`, or run tend where it can manage cgroups (as root, or in a delegated cgroup)"
                            .into(),
                    ),
                })
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
    }
    let environment = services_environment();
    let mut checks = crate::spawn::ProgramChecks::default();
    let warnings = units
        .iter()
        .filter_map(|unit| {
            // Each instance of a pool: `%i` may be in its program or its working_dir.
            let problem = unit::services(unit).into_iter().find_map(|service| {
                crate::spawn::check_program(&service, environment.iter().cloned(), &mut checks).err()
            })?;
            Some(Diagnostic {
                file: unit.file.clone(),
                line: unit.command_at.line,
                column: unit.command_at.column,
                message: format!("command: {problem}"),
                hint: None,
            })
        })
        .collect();
    Ok(Loaded { units, warnings })
}

/// [`load_units`], printing every error to stderr.
pub fn load(dir: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let result = load_units(dir);
    if let Err(diagnostics) = &result {
        print_errors(diagnostics);
    }
    result
}

/// Every diagnostic, then how many in how many files.
pub fn print_errors(diagnostics: &[Diagnostic]) {
    for diagnostic in diagnostics {
        eprintln!("{diagnostic}");
    }
    let files: std::collections::BTreeSet<_> = diagnostics.iter().map(|d| &d.file).collect();
    eprintln!(
        "tend: {} error{} in {} file{}",
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" },
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    );
}
