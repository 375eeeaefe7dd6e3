//! One file per subcommand: wiring and rendering only.

pub mod check;
pub mod completions;
pub mod control;
pub mod import;
pub mod man;
pub mod out;
pub mod run;
pub mod schema;
pub mod up;

use crate::unit::{self, Diagnostic, UnitSpec};
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

/// Load and validate the folder, printing every diagnostic to stderr. Units
/// with `resources` need cgroups: on a host where the asked controllers
/// cannot be used, that is a load error too.
pub fn load(dir: &Path) -> Result<Vec<UnitSpec>, Vec<Diagnostic>> {
    let result = unit::load_dir(dir, &crate::sys::SystemUsers).and_then(|units| {
        if !units.iter().any(|u| u.resources.is_set()) {
            return Ok(units);
        }
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
        if problems.is_empty() {
            Ok(units)
        } else {
            Err(problems)
        }
    });
    if let Err(diagnostics) = &result {
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
    result
}
