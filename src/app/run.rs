//! `tend run [-g] -- CMD ARG…`: tini mode.

use crate::supervise::run::{run_command, RunOptions};

pub fn run(command: Vec<String>, group: bool) -> i32 {
    run_command(RunOptions { command, group })
}
