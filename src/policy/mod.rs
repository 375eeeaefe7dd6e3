//! The pure policy: what to do next, given what happened and what time it is.
//!
//! Owns the life cycle of one service ([`service`]) and the restart rules
//! (backoff, start limit). Must not touch the process or the clock: no `nix`,
//! no `libc`, no `std::process`, no threads, no `Instant::now()`. Time is an
//! argument ([`Time`]), so a 30 s backoff is tested by passing a later `now`.

pub mod ending;
pub mod reload;
pub mod service;
pub mod systemd;

use std::time::Duration;

/// A point on the monotonic clock, as a duration since an arbitrary origin.
/// The loop reads CLOCK_MONOTONIC; tests count from zero.
pub type Time = Duration;

/// How a process ended, as waitpid(2) told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signaled { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    /// The shell convention: the exit code, or 128+N for a kill by signal N.
    pub fn as_exit_code(self) -> i32 {
        match self {
            ExitStatus::Code(code) => code,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
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
