//! argv → a subcommand. Parsing and dispatch only; the work is in `app`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "tend",
    version,
    about = "A sandboxed process supervisor: PID 1 for containers, a service manager, a sandbox",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Supervise every unit in the units folder, in the foreground.
    Up {
        /// The units folder (else $TEND_UNITS, else ./units, else /etc/tend/units).
        #[arg(long, short = 'u', value_name = "DIR")]
        units: Option<PathBuf>,
    },
    /// Run one command as an init: forward signals, reap zombies, pass its exit status on.
    Run {
        /// Forward signals to the command's whole process group.
        #[arg(short = 'g', long = "group")]
        group: bool,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Validate the unit files without starting anything (exit 0 or 2).
    Check {
        /// The units folder (else $TEND_UNITS, else ./units, else /etc/tend/units).
        dir: Option<PathBuf>,
    },
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => crate::exit::OK,
                _ => crate::exit::USAGE,
            };
        }
    };
    match cli.command {
        Command::Up { units } => crate::app::up::up(units),
        Command::Run { group, command } => crate::app::run::run(command, group),
        Command::Check { dir } => crate::app::check::check(dir),
    }
}
