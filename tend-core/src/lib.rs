//! tend-core: everything tend decides, as pure code.
//!
//! The supervisor's whole middle lives here, behind one sans-IO interface
//! ([`Core::handle`]`(now, event) -> actions` and [`Core::next_deadline`]),
//! as in quinn-proto or s6-supervise's action table: the life cycle of each
//! service ([`service`]), the dependency engine (start when conditions
//! hold, block and unblock, stop dependents first), check scheduling with
//! retries and their verdicts ([`checks`]), the status and completion rules
//! behind `tend status` and the waiting `start`/`stop`/`restart` ([`status`]),
//! what a reload changes ([`reload`]), and the typed control protocol
//! ([`proto`]).
//!
//! Must not touch the system: no `libc`, no `nix`, no `std::process`, no
//! threads, no clock, no files, no sockets. The crate depends on nothing
//! that could (its Cargo.toml is checked by `tests/architecture.rs` of the
//! main crate). Time is an argument ([`Time`]), so a 30 s backoff is tested
//! by passing a later `now`, and the whole core runs against a simulated
//! kernel (`tests/simulation.rs`).

pub mod checks;
pub mod ending;
pub mod pool;
pub mod proto;
pub mod reload;
pub mod service;
pub mod sort;
pub mod spec;
pub mod status;
mod supervisor;
pub mod systemd;
pub mod text;

pub use supervisor::{
    Action, ConnId, Core, Event, Input, Output, PipeId, Refused, ServiceId, ServiceMetrics, Stdio, OWN_LOG,
};

use std::time::Duration;

/// A point on the monotonic clock, as a duration since an arbitrary origin.
/// The loop reads CLOCK_MONOTONIC; tests and the simulation count from zero.
pub type Time = Duration;

/// How much a line of tend's own log matters: syslog's severity for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
}

/// How a process ended, as waitpid(2) told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signaled { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    /// The shell convention, and tend's exit status for a critical service
    /// or `tend run`: the exit code, or 128+N for a kill by signal N.
    pub fn as_exit_code(self) -> i32 {
        match self {
            ExitStatus::Code(code) => code,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
        }
    }

    /// `exited with status 3`, `killed by signal SIGKILL (core dumped)`.
    pub fn describe(self) -> String {
        match self {
            ExitStatus::Code(code) => format!("exited with status {code}"),
            ExitStatus::Signaled { signal, core_dumped } => {
                let core = if core_dumped { " (core dumped)" } else { "" };
                format!("killed by signal {}{core}", text::signal_name(signal))
            }
        }
    }

    /// The status tend exits with when this process's end ends tend (the
    /// command of `tend run`, a critical service): the shell convention,
    /// kept to 0..=255, and 0 when that code is one of `success_codes`
    /// (tini's `-e`; a unit's `success_exit_codes`). 128+N counts too, so
    /// `-e 143` also makes a kill by SIGTERM a clean stop, as in tini.
    pub fn handed_over(self, success_codes: &[i32]) -> i32 {
        let code = self.as_exit_code().rem_euclid(256);
        if success_codes.contains(&code) {
            0
        } else {
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitStatus;

    #[test]
    fn handed_over_maps_listed_codes_to_zero() {
        assert_eq!(ExitStatus::Code(143).handed_over(&[143]), 0);
        assert_eq!(ExitStatus::Code(143).handed_over(&[0]), 143);
        assert_eq!(ExitStatus::Code(0).handed_over(&[]), 0);
        assert_eq!(ExitStatus::Code(3).handed_over(&[1, 2]), 3);
    }

    #[test]
    fn handed_over_counts_128_plus_n_for_a_kill() {
        let term = ExitStatus::Signaled { signal: 15, core_dumped: false };
        assert_eq!(term.handed_over(&[]), 143);
        assert_eq!(term.handed_over(&[143]), 0);
        let kill = ExitStatus::Signaled { signal: 9, core_dumped: true };
        assert_eq!(kill.handed_over(&[143]), 137);
    }

    #[test]
    fn handed_over_inclusive_and_exclusive_for_every_code() {
        // tini's exit-code test, in the pure core: each code alone in the
        // list gives 0; every other code listed leaves it as it is.
        for code in 0..256 {
            assert_eq!(ExitStatus::Code(code).handed_over(&[code]), 0);
            let others: Vec<i32> = (0..256).filter(|&c| c != code).collect();
            assert_eq!(ExitStatus::Code(code).handed_over(&others), code);
        }
    }
}
