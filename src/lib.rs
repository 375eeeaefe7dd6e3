//! tend: a sandboxed process supervisor for Linux.
//!
//! The layout follows the architecture in DESIGN.md: every decision is the
//! pure core's (the `tend-core` crate: no system calls, no clock); `unit`
//! is pure too; `supervise` is the one event loop, an adapter between the
//! kernel and the core, and the only caller of `waitpid`; `spawn` is the
//! only code that forks; `sys` holds the few raw system calls nix lacks.
//! `cli` parses the command line and `app` wires the subcommands.
//!
//! The binary is this library's only user (besides the fuzz target): every
//! module is private to the crate, so that rustc reports what nothing uses.

// Before the modules: macro_rules! is in scope in what follows it.
/// An enum of the steps a child reports failing, by the number it writes
/// on the status pipe, with `ALL` and `from_u32` made from the same list:
/// a step added to the enum is decoded, there is no second list to forget.
macro_rules! step_codes {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:expr,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name { $($(#[$vmeta])* $variant = $code,)* }

        impl $name {
            /// Every step, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The step with this number (as written on the status pipe).
            pub fn from_u32(value: u32) -> Option<$name> {
                Self::ALL.iter().copied().find(|step| *step as u32 == value)
            }
        }
    };
}

pub(crate) mod app;
pub mod cli;
pub(crate) mod ctl;
pub(crate) mod exit;
pub(crate) mod import;
pub(crate) mod metrics;
pub(crate) mod output;
pub(crate) mod readiness;
pub(crate) mod sandbox;
pub(crate) mod spawn;
pub(crate) mod supervise;
pub(crate) mod sys;
pub(crate) mod unit;

/// For `tests/schema.rs`: the loader's table of keys and its samples.
#[doc(hidden)]
pub use unit::keys;
/// For the fuzz target (`fuzz/`): the unit parser and its user database.
pub use unit::{parse_unit, UserDb, UserEntry};

/// For `tests/systemd.rs`: tend's own notify-socket code, as the listener
/// that plays systemd.
#[doc(hidden)]
pub mod notify_socket {
    pub use crate::sys::{notify_socket as bind, recv_with_pid};
}
