//! Test fixtures shared by the client-side tests (`control`, `top`).
//!
//! Owns: a `ServiceStatus` as the supervisor would send it, with every
//! optional field empty. Each test sets what it looks at.

use crate::ctl::proto::{ServiceState, ServiceStatus};

/// A service named `name` in `state` with `pid`, in a status reply:
/// no uptime, no restarts, not healthy, nothing measured.
pub(crate) fn service_status(name: &str, state: ServiceState, pid: Option<i32>) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        unit: None,
        instance: None,
        enabled: true,
        state,
        pid,
        since: "2026-01-01T00:00:00Z".into(),
        since_secs: 5.0,
        uptime_secs: None,
        restarts: 0,
        last_exit: None,
        reason: None,
        healthy: false,
        log_errors: vec![],
        status_text: None,
        last_check: None,
        memory_bytes: None,
        cpu_usec: None,
    }
}
