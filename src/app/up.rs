//! `tend up`: load every unit, then supervise them until told to stop.

use crate::supervise::{run_stack, StackOptions};
use std::path::PathBuf;

pub fn up(units: Option<PathBuf>) -> i32 {
    let dir = super::units_dir(units);
    let units = match super::load(&dir) {
        Ok(units) => units,
        Err(_) => {
            eprintln!("tend: nothing was started");
            return crate::exit::USAGE;
        }
    };
    if units.is_empty() {
        eprintln!("tend: no units in {} (files named NAME.yaml)", dir.display());
        return crate::exit::USAGE;
    }
    run_stack(units, StackOptions { environment: std::env::vars_os().collect() })
}
