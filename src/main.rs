//! The `tend` binary: parse argv, run the subcommand, exit with its status.

fn main() {
    std::process::exit(tend::cli::main());
}
