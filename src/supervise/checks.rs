//! The I/O of ready and health checks; when to run them and what their
//! results mean is the core's. An exec check is a child of the one spawn
//! path, reaped by the one reaper and killed when the core gives up on it;
//! a tcp or http check is a non-blocking socket in the poller.

use crate::readiness::probe;
use crate::unit::{Check, CheckSpec, UnitSpec};
use mio::Token;
use tend_core::proto::CheckKind;
use tend_core::{ExitStatus, ServiceId};

/// A tcp or http check in flight.
pub(crate) struct Probe {
    pub(super) service: ServiceId,
    pub(super) run: u64,
    pub(super) probe: probe::Probe,
}

/// A service's check in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Running {
    Exec { pid: i32, run: u64 },
    Probe { token: Token, run: u64 },
}

impl Running {
    pub(super) fn run(self) -> u64 {
        match self {
            Running::Exec { run, .. } | Running::Probe { run, .. } => run,
        }
    }
}

/// The unit's check of this kind.
pub(super) fn spec(unit: &UnitSpec, kind: CheckKind) -> Option<&CheckSpec> {
    match kind {
        CheckKind::Ready => unit.ready_check.as_deref(),
        CheckKind::Health => unit.health_check.as_deref(),
    }
}

/// What an exec check's exit says: success is status 0.
pub(super) fn exec_result(status: ExitStatus) -> (bool, String) {
    (status == ExitStatus::Code(0), status.describe())
}

/// Start a tcp or http check (not an exec one).
pub(super) fn start_probe(check: &Check) -> Result<probe::Probe, String> {
    probe::Probe::start(check)
}
