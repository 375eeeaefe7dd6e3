//! What the core knows for `tend metrics`: each service's state, its
//! readiness and health, and counters that only grow for as long as tend
//! runs (restarts, failures by kind), unlike the `restarts` of `tend
//! status`, which a start by hand resets. The loop adds what it measures
//! (cgroups, dropped lines, connections) and writes the text.

use super::{Core, ServiceId};
use crate::ending::exit_report;
use crate::proto::{ExitKind, ServiceState};
use crate::spec::Definition;
use crate::status;

/// One service's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMetrics {
    pub name: String,
    pub state: ServiceState,
    /// Ready, as a `ready` dependency and `tend wait --ready` see it.
    pub ready: bool,
    /// A good state: what `tend status` exits 0 for.
    pub healthy: bool,
    pub restarts_total: u64,
    /// Runs that ended in failure, by kind (only kinds that happened).
    pub failures_total: Vec<(ExitKind, u64)>,
    /// The last process's exit code, 128+N for a kill by signal N, 127 when
    /// it never ran.
    pub last_exit_code: Option<i32>,
    /// Seconds since the current process started, while one lives.
    pub uptime_secs: Option<f64>,
}

impl<U: Definition> Core<U> {
    /// The figures of every live service, in order.
    pub fn metrics(&self) -> Vec<(ServiceId, ServiceMetrics)> {
        (0..self.services.len())
            .filter(|&s| !self.services[s].retired)
            .map(|service| {
                let svc = &self.services[service];
                let view = svc.view();
                let machine = &svc.machine;
                let last_exit_code = machine.last_ending().map(|(ending, _)| match ending.status() {
                    Some(status) => status.as_exit_code(),
                    None => 127,
                });
                let metrics = ServiceMetrics {
                    name: svc.spec.name.clone(),
                    state: status::state(&view),
                    ready: view.held.is_none() && !view.spawning && machine.is_ready(),
                    healthy: status::healthy(&view),
                    restarts_total: svc.restarts_total,
                    failures_total: svc.failures_by_kind.clone(),
                    last_exit_code,
                    uptime_secs: machine
                        .up_since()
                        .map(|since| self.now.saturating_sub(since).as_millis() as f64 / 1000.0),
                };
                (service, metrics)
            })
            .collect()
    }

    /// The machine counted a failure: by the kind of the run that ended.
    pub(super) fn tally_failure(&mut self, service: ServiceId) {
        let svc = &mut self.services[service];
        let Some((ending, at)) = svc.machine.last_ending() else { return };
        let kind = exit_report(ending, *at, svc.oom_killed, None).kind;
        match svc.failures_by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => svc.failures_by_kind.push((kind, 1)),
        }
    }
}
