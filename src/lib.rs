//! tend: a sandboxed process supervisor for Linux.
//!
//! The layout follows the architecture in DESIGN.md: `unit` and `policy` are
//! pure (no system calls, no clock); `supervise` is the one event loop and the
//! only caller of `waitpid`; `spawn` is the only code that forks; `sys` holds
//! the few raw system calls nix lacks. `app` wires them into subcommands.

pub mod app;
pub mod cli;
pub mod ctl;
pub mod exit;
pub mod import;
pub mod output;
pub mod policy;
pub mod readiness;
pub mod sandbox;
pub mod spawn;
pub mod supervise;
pub mod sys;
pub mod unit;
