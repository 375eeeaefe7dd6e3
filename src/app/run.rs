//! `tend run [OPTIONS] -- CMD ARG…`: tini mode.

pub use crate::supervise::run::RunOptions;

pub fn run(options: RunOptions) -> i32 {
    crate::supervise::run::run_command(options)
}
