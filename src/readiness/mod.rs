//! Readiness and liveness: the sd_notify socket, and tcp/http probes as
//! non-blocking sockets inside the loop (never a thread, never a blocking
//! call). Exec checks are ordinary children of the one spawn path; the loop
//! runs them.
//!
//! Must not decide what a result means for the service (the policy does),
//! nor fork.

pub mod notify;
pub mod probe;
