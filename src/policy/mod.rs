//! The pure policy: what to do next, given what happened and what time it is.
//!
//! Owns the life cycle of one service ([`service`]) and the restart rules
//! (backoff, start limit). Must not touch the process or the clock: no `nix`,
//! no `libc`, no `std::process`, no threads, no `Instant::now()`. Time is an
//! argument ([`Time`]), so a 30 s backoff is tested by passing a later `now`.

pub mod ending;
pub mod reload;
pub mod service;

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
}
