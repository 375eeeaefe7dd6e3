//! The exit-code table: the one place that says what tend's exit statuses
//! mean ([`STATUSES`], which the man page prints).
//!
//! The command's (or a critical service's) own exit status is passed on as
//! it is, except a status listed with `tend run -e` (or in the service's
//! `success_exit_codes`), which becomes 0
//! ([`ExitStatus::handed_over`](tend_core::ExitStatus::handed_over)).

pub const OK: i32 = 0;
pub const FAILURE: i32 = 1;
pub const USAGE: i32 = 2;
pub const NO_SUPERVISOR: i32 = 3;
pub const CANNOT_EXECUTE: i32 = 126;
pub const NOT_FOUND: i32 = 127;
/// A client command's stdout was closed before it said everything:
/// 128 + SIGPIPE, what a shell shows for a command killed by it.
pub const BROKEN_PIPE: i32 = 141;

/// Each status and what it means, for `tend(1)`.
pub const STATUSES: &[(&str, &str)] = &[
    ("0", "Did what was asked; clean shutdown."),
    ("1", "Could not (a service had to be killed, a failure at run time, a service not healthy for tend status)."),
    ("2", "Usage error or invalid units: nothing was started."),
    ("3", "No supervisor answers on the control socket."),
    ("126", "tend run: the command could not be executed (permission, format)."),
    ("127", "tend run: the command was not found."),
    ("141", "A client command's standard output was closed before it was done (128 + SIGPIPE); nothing more is printed."),
    ("128+N", "tend run, or a critical service: killed by signal N. A critical service's own exit status is passed on as it is."),
];
