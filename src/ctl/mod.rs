//! The control plane: the protocol (shared), the server (inside the loop)
//! and the client (the `status`/`start`/… subcommands).

pub mod client;
pub mod limits;
pub mod server;

/// The protocol itself is pure, part of the core.
pub use tend_core::proto;
