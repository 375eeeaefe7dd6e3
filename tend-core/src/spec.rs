//! What the core knows of a service's definition: the parts that decide
//! anything. The unit loader's `UnitSpec` (main crate) implements
//! [`Definition`]; the simulation has its own units.
//!
//! The enums here are the unit file's words for restart policies, service
//! types and dependency conditions; the loader parses into them.

pub use crate::pool::Instances;
use crate::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceType {
    /// Ready once running (or once `ready_check` succeeds).
    #[default]
    Simple,
    /// Ready on `READY=1` (sd_notify) or a line on `notify_fd` (s6).
    Notify,
    /// Runs to completion; `completed` is its good final state.
    Oneshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyCondition {
    /// The dependency's process is running.
    Started,
    /// The dependency is ready (see `ServiceType`).
    Ready,
    /// The dependency (a oneshot) completed successfully.
    Completed,
}

/// The parts of a unit that decide what happens; copied so a reload can swap them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub restart: RestartPolicy,
    pub success_exit_codes: Vec<i32>,
    pub restart_delay: Duration,
    pub restart_delay_max: Duration,
    pub start_limit_burst: u32,
    pub start_limit_interval: Duration,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub process_group: bool,
    /// Readiness comes from a signal (notify, ready_check), not from exec.
    pub needs_ready_signal: bool,
    /// `type: oneshot`: runs to completion.
    pub oneshot: bool,
    pub start_timeout: Option<Duration>,
    pub watchdog: Option<Duration>,
    /// `timeout` of a oneshot.
    pub oneshot_timeout: Option<Duration>,
    /// `runtime_max`: stopped (gracefully) once it has run this long.
    pub runtime_max: Option<Duration>,
}

impl Config {
    pub fn is_success(&self, status: ExitStatus) -> bool {
        match status {
            ExitStatus::Code(code) => self.success_exit_codes.contains(&code),
            ExitStatus::Signaled { .. } => false,
        }
    }
}

/// `depends_on: {name: condition}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub condition: DependencyCondition,
}

/// When a ready or health check runs, how long it may take, and how many
/// failures in a row count (health checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckTiming {
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
}

/// A service as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub service_type: ServiceType,
    pub depends_on: Vec<Dependency>,
    /// The restart, stop and readiness rules of its life cycle: shared
    /// with the service's state machine, which runs by them.
    pub config: Arc<Config>,
    /// Its end (for good) ends the supervisor, with its exit status.
    pub critical: bool,
    pub ready_check: Option<CheckTiming>,
    pub health_check: Option<CheckTiming>,
    /// `resources.memory_max`, for the OOM message.
    pub memory_max: Option<u64>,
    /// `stdin`, as the unit says it. A pipe from a producer is not said by
    /// the consumer's unit: the core finds it in the producers' `to:`.
    pub stdin: StdinSource,
    /// `stdout: {to: NAME}`: the consumer its stdout is piped into.
    pub stdout_to: Option<String>,
    /// `stderr: {to: NAME}`.
    pub stderr_to: Option<String>,
}

/// `stdin:` in a unit file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdinSource {
    /// `/dev/null` (the default, `stdin: null`).
    #[default]
    Null,
    /// `{file: PATH}`: opened when the service starts.
    File,
    /// `{data: "..."}`: given, then end-of-file.
    Data,
}

impl Spec {
    /// The consumers this service's output is piped into (`stdout` first;
    /// once each).
    pub fn pipes_into(&self) -> impl Iterator<Item = &str> {
        let stdout = self.stdout_to.as_deref();
        let stderr = self.stderr_to.as_deref().filter(|&to| Some(to) != stdout);
        stdout.into_iter().chain(stderr)
    }
}

/// A unit definition the core can hold: it knows its name and its
/// [`Spec`]; equality is what a reload compares (any difference, even in
/// a part the core does not look at, restarts the service).
///
/// A unit is one service, or with [`instances`](Definition::instances) a
/// pool of them (`NAME@1` …); the core asks each unit for the definition
/// of each of its services ([`service`](Definition::service)) and runs
/// those.
pub trait Definition: PartialEq + Sized {
    /// The unit's name (a unit file's), or a service's full name
    /// (`worker@2`) for what [`service`](Definition::service) returned.
    fn name(&self) -> &str;
    fn spec(&self) -> Spec;
    /// `instances:`: the unit is a pool of services `NAME@INSTANCE`;
    /// `None`: it is one service, named as the unit.
    fn instances(&self) -> Option<&Instances> {
        None
    }
    /// `enabled:`: `tend up` (without names) starts it. A disabled unit is
    /// still loaded, checked, started by `tend start` and as a dependency.
    fn enabled(&self) -> bool {
        true
    }
    /// The definition of one of this unit's services: `Some(instance)` for
    /// an instance of a pool (named `NAME@INSTANCE`, its `%i` replaced),
    /// `None` for a unit that is one service. What belongs to the unit
    /// rather than to a service (`instances`, `enabled`) is left out, so
    /// that a reload that changes only those changes no running service.
    fn service(&self, instance: Option<&str>) -> Self;
}
