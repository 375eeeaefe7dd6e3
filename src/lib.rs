//! tend: a sandboxed process supervisor for Linux.
//!
//! The layout follows the architecture in DESIGN.md: every decision is the
//! pure core's (the `tend-core` crate: no system calls, no clock); `unit`
//! is pure too; `supervise` is the one event loop, an adapter between the
//! kernel and the core, and the only caller of `waitpid`; `spawn` is the
//! only code that forks; `sys` holds the few raw system calls nix lacks.
//! `cli` parses the command line and `app` wires the subcommands.

pub mod app;
pub mod cli;
pub mod ctl;
pub mod exit;
pub mod import;
pub mod metrics;
pub mod output;
pub mod readiness;
pub mod sandbox;
pub mod spawn;
pub mod supervise;
pub mod sys;
pub mod unit;
