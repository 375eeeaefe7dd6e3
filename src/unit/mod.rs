//! Unit files: YAML in a folder → validated [`UnitSpec`]s, or every [`Diagnostic`].
//!
//! Owns the unit schema, its value parsers (durations, sizes, signals, rlimits,
//! users and groups, shell-like word splitting) and the error messages users see
//! for bad input. Must not touch the process: no `nix`, no `libc`, no
//! `std::process`, no threads, no clocks (a test in `tests/architecture.rs`
//! keeps it so). User and group look-ups go through the [`UserDb`] trait, which
//! `sys` implements with the C library and tests implement with a table.

use std::path::PathBuf;
use std::time::Duration;

mod deps;
mod diagnostic;
mod envfile;
pub mod keys;
mod load;
pub(crate) mod node;
mod source;
pub mod values;

#[cfg(test)]
pub(crate) use deps::start_order;
pub use diagnostic::Diagnostic;
pub use load::{load_dir, parse_unit};
#[cfg(test)]
pub use source::UNIT_FILE_LIMIT;
/// The unit file's words for these are the core's types.
pub use tend_core::spec::{DependencyCondition, Instances, RestartPolicy, ServiceType};

/// Where a value is written in its unit file (1-based line and column),
/// for messages about it after loading (`tend check` resolving the
/// command). Not part of what a unit means: any two compare equal, so a
/// unit whose lines merely moved is not "changed" on reload.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourcePos {
    pub line: usize,
    pub column: usize,
}

impl PartialEq for SourcePos {
    fn eq(&self, _: &SourcePos) -> bool {
        true
    }
}

impl Eq for SourcePos {}

/// A fully validated service definition. Everything here has been checked;
/// the spawner and the policy trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// File stem, matching `[a-z0-9][a-z0-9_.-]*`; for one of a pool's
    /// services, `STEM@INSTANCE` (see [`UnitSpec::instance`]).
    pub name: String,
    /// The unit file it came from (for messages).
    pub file: PathBuf,
    pub description: Option<String>,
    /// `instances`: the unit is a pool of services `NAME@INSTANCE`. Only in
    /// a unit as loaded: its services (`Definition::service`) have none.
    pub instances: Option<Instances>,
    /// For one of a pool's services: its instance name (`2`, `eu`).
    pub instance: Option<String>,
    /// `enabled`: `tend up` starts it (without names).
    pub enabled: bool,
    /// The names in `environment` whose values the unit's `environment:`
    /// gave with a `%` in them (an env_file's values are taken as they
    /// are): where an instance's `%i` is replaced.
    pub instance_env: Vec<String>,
    /// argv; never empty, never run through a shell.
    pub command: Vec<String>,
    /// Where `command` is written, for messages about it after loading.
    pub command_at: SourcePos,
    /// Absolute, or relative to the unit file's folder resolved at load time.
    pub working_dir: Option<PathBuf>,
    /// env_file entries (in file order), then `environment` entries; a later
    /// entry for the same key wins. Applied on top of the inherited environment
    /// unless `clear_env`.
    pub environment: Vec<(String, String)>,
    pub clear_env: bool,
    /// `None` when none of user/group/supplementary_groups is set: the service
    /// keeps tend's own credentials and nothing is changed. Boxed, as the
    /// checks below: most units leave them out, and the supervisor keeps
    /// a unit per service (its size counts a hundred times over).
    pub identity: Option<Box<Identity>>,
    pub umask: Option<u32>,
    pub nice: Option<i32>,
    pub rlimits: Vec<Rlimit>,
    pub process_group: bool,
    pub restart: RestartPolicy,
    pub success_exit_codes: Vec<i32>,
    pub restart_delay: Duration,
    pub restart_delay_max: Duration,
    pub start_limit: StartLimit,
    /// Signal number (Linux numbering).
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub critical: bool,
    /// Where the output goes besides tend's own stdout/stderr and history.
    pub log: LogSpec,
    /// `type`: how readiness and completion are judged.
    pub service_type: ServiceType,
    /// `depends_on`: what must hold before this service starts.
    pub depends_on: Vec<Dependency>,
    /// `ready_check` (type simple): ready when it first succeeds.
    pub ready_check: Option<Box<CheckSpec>>,
    /// `start_timeout`: not ready within this, the start failed.
    pub start_timeout: Option<Duration>,
    /// `health_check`: liveness while running; `retries` failures in a row restart it.
    pub health_check: Option<Box<CheckSpec>>,
    /// `watchdog` (type notify): no WATCHDOG=1 within this, it is restarted.
    pub watchdog: Option<Duration>,
    /// `notify_fd` (type notify): the s6 readiness protocol on this descriptor
    /// instead of NOTIFY_SOCKET.
    pub notify_fd: Option<i32>,
    /// `timeout` (type oneshot): killed (stop signal, then SIGKILL) past it.
    pub timeout: Option<Duration>,
    /// `sandbox`: privileges, namespaces and filesystem rules.
    pub sandbox: Rare<SandboxSpec>,
    /// `resources`: cgroup limits.
    pub resources: Rare<ResourcesSpec>,
    /// `stdin`: what it reads when no other service pipes into it.
    pub stdin: Stdin,
    /// `stdout: {to: NAME}`: its stdout goes into NAME's stdin (boxed,
    /// as the parts above).
    pub stdout_to: Option<Box<PipeTarget>>,
    /// `stderr: {to: NAME}`.
    pub stderr_to: Option<Box<PipeTarget>>,
    /// `runtime_max`: stopped (gracefully) once it has run this long.
    pub runtime_max: Option<Duration>,
}

/// A part of a unit that most units leave at its default (`sandbox`,
/// `resources`), held in a box only when set: the supervisor keeps one
/// copy of each service's unit, and these parts are most of its size (184
/// of its 870 bytes). It reads as the part itself, the default when unset,
/// and compares by value.
#[derive(Clone)]
pub struct Rare<T: 'static>(Option<Box<T>>);

/// What a [`Rare`] part is when unset.
pub trait RareDefault: PartialEq + Sized + 'static {
    fn default_ref() -> &'static Self;
}

impl<T: RareDefault> Rare<T> {
    pub fn new(value: T) -> Rare<T> {
        Rare((value != *T::default_ref()).then(|| Box::new(value)))
    }

    /// Set: not the default.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl<T> Default for Rare<T> {
    fn default() -> Rare<T> {
        Rare(None)
    }
}

impl<T: RareDefault> From<T> for Rare<T> {
    fn from(value: T) -> Rare<T> {
        Rare::new(value)
    }
}

impl<T: RareDefault> std::ops::Deref for Rare<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.0 {
            Some(value) => value,
            None => T::default_ref(),
        }
    }
}

impl<T: RareDefault> PartialEq for Rare<T> {
    fn eq(&self, other: &Rare<T>) -> bool {
        **self == **other
    }
}

impl<T: RareDefault + Eq> Eq for Rare<T> {}

impl<T: RareDefault + std::fmt::Debug> std::fmt::Debug for Rare<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl RareDefault for SandboxSpec {
    fn default_ref() -> &'static SandboxSpec {
        static DEFAULT: SandboxSpec = SandboxSpec {
            no_new_privileges: false,
            capabilities: None,
            private_tmp: false,
            read_only_paths: Vec::new(),
            read_write_paths: Vec::new(),
            inaccessible_paths: Vec::new(),
            private_network: false,
            hostname: None,
            private_ipc: false,
            private_pids: false,
            protect_proc: ProtectProc::Default,
            filesystem: FilesystemBackend::Auto,
        };
        &DEFAULT
    }
}

impl RareDefault for ResourcesSpec {
    fn default_ref() -> &'static ResourcesSpec {
        static DEFAULT: ResourcesSpec = ResourcesSpec {
            memory_max: None,
            pids_max: None,
            cpu_max_millicores: None,
            cpu_weight: None,
            accounting: false,
        };
        &DEFAULT
    }
}

/// `stdin:` of a unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Stdin {
    /// `/dev/null`.
    #[default]
    Null,
    /// A file (absolute, or relative to the unit file's folder, resolved at
    /// load time), opened by the child as the service's user at each start.
    File(PathBuf),
    /// Given, then end-of-file.
    Data(String),
}

/// The consumer a stream is piped into (`stdout: {to: NAME}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeTarget {
    pub name: String,
    /// Where `to:` is written, for errors found across units.
    pub at: SourcePos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub condition: DependencyCondition,
    /// Where it was written, for errors found across units (cycles, unknown names).
    pub line: usize,
    pub column: usize,
}

/// One way to check a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A command, run like the service (same user, environment, sandbox); exit 0 is success.
    Exec(Vec<String>),
    /// A TCP connect to `host:port`.
    Tcp { host: String, port: u16 },
    /// An HTTP GET; a 2xx answer is success. Only `http://` (no TLS).
    Http { host: String, port: u16, path: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    pub check: Check,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failures in a row that count (health checks).
    pub retries: u32,
}

/// The `sandbox:` key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxSpec {
    pub no_new_privileges: bool,
    /// The only capabilities the service may ever have (numbers, Linux
    /// numbering); `None` leaves capabilities alone.
    pub capabilities: Option<Vec<u8>>,
    pub private_tmp: bool,
    pub read_only_paths: Vec<PathBuf>,
    pub read_write_paths: Vec<PathBuf>,
    pub inaccessible_paths: Vec<PathBuf>,
    pub private_network: bool,
    pub hostname: Option<String>,
    pub private_ipc: bool,
    /// A PID namespace (and a /proc) of its own, with tend's reaper as PID 1.
    pub private_pids: bool,
    /// hidepid= on a /proc of its own.
    pub protect_proc: ProtectProc,
    /// How filesystem rules are enforced.
    pub filesystem: FilesystemBackend,
}

/// `sandbox.protect_proc`: procfs `hidepid=` (proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtectProc {
    /// The host's /proc as it is.
    #[default]
    Default,
    /// Other users' processes are not listed.
    Invisible,
    /// Listed, but their details are unreadable.
    NoAccess,
    /// Only what the service may ptrace is listed.
    Ptraceable,
}

impl ProtectProc {
    /// The `hidepid=` value, `None` for the default.
    pub fn hidepid(self) -> Option<&'static str> {
        match self {
            ProtectProc::Default => None,
            ProtectProc::Invisible => Some("invisible"),
            ProtectProc::NoAccess => Some("noaccess"),
            ProtectProc::Ptraceable => Some("ptraceable"),
        }
    }
}

impl SandboxSpec {
    /// The service gets a /proc of its own (a private PID namespace, or hidepid=).
    pub fn own_proc(&self) -> bool {
        self.private_pids || self.protect_proc != ProtectProc::Default
    }

    /// Any of the filesystem rules is set.
    pub fn has_filesystem_rules(&self) -> bool {
        self.private_tmp
            || !self.read_only_paths.is_empty()
            || !self.read_write_paths.is_empty()
            || !self.inaccessible_paths.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilesystemBackend {
    /// A mount namespace when the kernel allows it, else Landlock.
    #[default]
    Auto,
    /// A mount namespace (needs CAP_SYS_ADMIN).
    Mounts,
    /// Landlock (unprivileged; cannot give a private /tmp).
    Landlock,
}

/// The `resources:` key: cgroup limits, and whether to account memory and
/// CPU use without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourcesSpec {
    pub memory_max: Option<u64>,
    pub pids_max: Option<u64>,
    /// In thousandths of a core (`cpu_max: 0.5` is 500).
    pub cpu_max_millicores: Option<u32>,
    /// 1..=10000, cgroup v2 semantics (100 is the default weight).
    pub cpu_weight: Option<u32>,
    /// `accounting: true`: put the service in the memory and cpuacct
    /// cgroups `status` reads even when it sets no limit there (on a host
    /// without cgroup2 it otherwise joins only the one it is killed by).
    /// Best effort: never a reason to refuse the unit.
    pub accounting: bool,
}

impl ResourcesSpec {
    /// A limit is set (`accounting` is not one).
    pub fn is_set(&self) -> bool {
        self.memory_max.is_some()
            || self.pids_max.is_some()
            || self.cpu_max_millicores.is_some()
            || self.cpu_weight.is_some()
    }
}

/// The `log:` key: optional sinks for a service's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    /// Appended to; relative paths are relative to the unit file's folder.
    pub file: Option<PathBuf>,
    /// Rotate when the file would grow past this many bytes.
    pub max_size: Option<u64>,
    /// Rotated files kept (`web.log.1` … `web.log.N`).
    pub keep: u32,
    /// RFC 3339 prefix on each line in the file.
    pub timestamps: bool,
    /// Each line to the local syslog, tagged with the service name.
    pub syslog: bool,
    /// A facility name from [`values::SYSLOG_FACILITIES`].
    pub syslog_facility: String,
}

impl Default for LogSpec {
    fn default() -> LogSpec {
        LogSpec {
            file: None,
            max_size: None,
            keep: 5,
            timestamps: false,
            syslog: false,
            syslog_facility: "daemon".to_string(),
        }
    }
}

/// Credentials the service runs with, resolved from the user database at load
/// time, so that the child never looks anything up between fork and exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, set with setgroups(2) (may be empty).
    pub groups: Vec<u32>,
    /// The passwd entry when `user` named one: HOME, USER, LOGNAME come from it.
    pub user: Option<UserEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// The user and group databases, and the one way a file is opened, as the
/// loader needs them (this module makes no system call of its own).
pub trait UserDb {
    fn user_by_name(&self, name: &str) -> Option<UserEntry>;
    fn user_by_uid(&self, uid: u32) -> Option<UserEntry>;
    fn group_by_name(&self, name: &str) -> Option<u32>;
    /// Every group the user is a member of, primary group included (getgrouplist(3)).
    fn groups_of(&self, user: &UserEntry) -> Vec<u32>;
    /// tend's own (uid, gid): used when `group` is set without `user`.
    fn current_ids(&self) -> (u32, u32);
    /// Open a unit file or env_file for reading. `sys` does it without
    /// blocking (a FIFO named `web.yaml` must not hang tend) and without
    /// taking a terminal as controlling tty; the loader then `fstat`s the
    /// descriptor and reads only a regular file. Tests may keep the default.
    fn open_file(&self, path: &std::path::Path) -> std::io::Result<std::fs::File> {
        std::fs::File::open(path)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartLimit {
    pub burst: u32,
    pub interval: Duration,
}

/// One resource limit. `u64::MAX` means unlimited (RLIM_INFINITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

pub const RLIM_UNLIMITED: u64 = u64::MAX;

/// setrlimit(2) resources, named as in the unit file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Nofile,
    Nproc,
    Core,
    As,
    Cpu,
    Data,
    Fsize,
    Memlock,
    Stack,
    Rss,
    Msgqueue,
    Nice,
    Rtprio,
    Sigpending,
    Locks,
}

impl Resource {
    pub const ALL: [Resource; 15] = [
        Resource::Nofile,
        Resource::Nproc,
        Resource::Core,
        Resource::As,
        Resource::Cpu,
        Resource::Data,
        Resource::Fsize,
        Resource::Memlock,
        Resource::Stack,
        Resource::Rss,
        Resource::Msgqueue,
        Resource::Nice,
        Resource::Rtprio,
        Resource::Sigpending,
        Resource::Locks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Nofile => "nofile",
            Resource::Nproc => "nproc",
            Resource::Core => "core",
            Resource::As => "as",
            Resource::Cpu => "cpu",
            Resource::Data => "data",
            Resource::Fsize => "fsize",
            Resource::Memlock => "memlock",
            Resource::Stack => "stack",
            Resource::Rss => "rss",
            Resource::Msgqueue => "msgqueue",
            Resource::Nice => "nice",
            Resource::Rtprio => "rtprio",
            Resource::Sigpending => "sigpending",
            Resource::Locks => "locks",
        }
    }

    pub fn from_name(name: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Resources measured in bytes accept `512K`, `64M`, `1G`.
    pub fn is_size(self) -> bool {
        matches!(
            self,
            Resource::Core
                | Resource::As
                | Resource::Data
                | Resource::Fsize
                | Resource::Memlock
                | Resource::Stack
                | Resource::Rss
                | Resource::Msgqueue
        )
    }
}

/// The services a unit runs, as the supervisor runs them: one per instance
/// of a pool (`%i` replaced), or the unit itself.
pub fn services(unit: &UnitSpec) -> Vec<UnitSpec> {
    use tend_core::spec::Definition;
    match &unit.instances {
        None => vec![unit.service(None)],
        Some(instances) => instances.names().iter().map(|i| unit.service(Some(i))).collect(),
    }
}

/// What the core decides with: the spec of this unit. Equality of whole
/// units is what a reload compares (any difference restarts the service).
impl tend_core::spec::Definition for UnitSpec {
    fn name(&self) -> &str {
        &self.name
    }

    fn instances(&self) -> Option<&Instances> {
        self.instances.as_ref()
    }

    fn enabled(&self) -> bool {
        self.enabled
    }

    /// One instance: named `NAME@INSTANCE`, `%i` replaced in its command,
    /// `environment` values, working_dir and log file, and `TEND_INSTANCE`
    /// set (last, so it is always the instance's name).
    fn service(&self, instance: Option<&str>) -> UnitSpec {
        let mut unit = self.clone();
        unit.instances = None;
        unit.enabled = true;
        unit.instance_env = Vec::new();
        let Some(instance) = instance else { return unit };
        let sub = |text: &str| tend_core::pool::substitute(text, instance);
        // Only the part the unit wrote: the units folder it was joined to
        // is not the unit's text.
        let folder = self.file.parent().map(PathBuf::from).unwrap_or_default();
        let sub_path = |path: &PathBuf| match (path.strip_prefix(&folder).ok(), path.to_str()) {
            (Some(rest), _) if !folder.as_os_str().is_empty() => match rest.to_str() {
                Some(rest) => folder.join(sub(rest)),
                None => path.clone(),
            },
            (_, Some(text)) => PathBuf::from(sub(text)),
            _ => path.clone(),
        };
        unit.name = tend_core::pool::full_name(&self.name, instance);
        unit.instance = Some(instance.to_string());
        unit.command = self.command.iter().map(|word| sub(word)).collect();
        unit.working_dir = self.working_dir.as_ref().map(sub_path);
        unit.log.file = self.log.file.as_ref().map(sub_path);
        for (name, value) in unit.environment.iter_mut() {
            if self.instance_env.contains(name) {
                *value = sub(value);
            }
        }
        unit.environment.retain(|(name, _)| name != "TEND_INSTANCE");
        unit.environment.push(("TEND_INSTANCE".to_string(), instance.to_string()));
        unit
    }

    fn spec(&self) -> tend_core::spec::Spec {
        let timing = |check: &Option<Box<CheckSpec>>| {
            check.as_ref().map(|c| tend_core::spec::CheckTiming {
                interval: c.interval,
                timeout: c.timeout,
                retries: c.retries,
            })
        };
        tend_core::spec::Spec {
            name: self.name.clone(),
            service_type: self.service_type,
            depends_on: self
                .depends_on
                .iter()
                .map(|d| tend_core::spec::Dependency { name: d.name.clone(), condition: d.condition })
                .collect(),
            config: std::sync::Arc::new(tend_core::service::Config {
                restart: self.restart,
                success_exit_codes: self.success_exit_codes.clone(),
                restart_delay: self.restart_delay,
                restart_delay_max: self.restart_delay_max,
                start_limit_burst: self.start_limit.burst,
                start_limit_interval: self.start_limit.interval,
                stop_signal: self.stop_signal,
                stop_timeout: self.stop_timeout,
                process_group: self.process_group,
                needs_ready_signal: self.service_type == ServiceType::Notify || self.ready_check.is_some(),
                oneshot: self.service_type == ServiceType::Oneshot,
                start_timeout: self.start_timeout,
                watchdog: self.watchdog,
                oneshot_timeout: self.timeout,
                runtime_max: self.runtime_max,
            }),
            critical: self.critical,
            ready_check: timing(&self.ready_check),
            health_check: timing(&self.health_check),
            memory_max: self.resources.memory_max,
            stdin: match self.stdin {
                Stdin::Null => tend_core::spec::StdinSource::Null,
                Stdin::File(_) => tend_core::spec::StdinSource::File,
                Stdin::Data(_) => tend_core::spec::StdinSource::Data,
            },
            stdout_to: self.stdout_to.as_ref().map(|t| t.name.clone()),
            stderr_to: self.stderr_to.as_ref().map(|t| t.name.clone()),
        }
    }
}

/// Units for other modules' tests: parsed from YAML like real ones, with an
/// empty user database (tend's own ids are 1000).
#[cfg(test)]
pub(crate) mod testing {
    use super::{UnitSpec, UserDb, UserEntry};

    pub struct NoUsers;

    impl UserDb for NoUsers {
        fn user_by_name(&self, _: &str) -> Option<UserEntry> {
            None
        }
        fn user_by_uid(&self, _: u32) -> Option<UserEntry> {
            None
        }
        fn group_by_name(&self, _: &str) -> Option<u32> {
            None
        }
        fn groups_of(&self, _: &UserEntry) -> Vec<u32> {
            vec![]
        }
        fn current_ids(&self) -> (u32, u32) {
            (1000, 1000)
        }
    }

    /// The unit `NAME.yaml` with this text; panics on an invalid one.
    pub fn unit(name: &str, yaml: &str) -> UnitSpec {
        let file = std::path::PathBuf::from(format!("{name}.yaml"));
        super::parse_unit(&file, yaml, &NoUsers).unwrap_or_else(|e| panic!("invalid test unit: {e:?}"))
    }
}

#[cfg(test)]
mod definition_tests {
    use tend_core::spec::Definition;

    /// A reload restarts a unit whose definition differs in anything, even
    /// a part the core does not decide with.
    #[test]
    fn any_field_is_a_change_and_the_spec_follows_the_unit() {
        let unit = super::testing::unit("web", "command: [a]\nrestart: on-failure\nstop_timeout: 2s\n");
        let mut edited = unit.clone();
        edited.stop_timeout = std::time::Duration::from_secs(1);
        assert_ne!(unit, edited);
        let mut described = unit.clone();
        described.description = Some("the web".into());
        assert_ne!(unit, described, "even its description");
        let spec = unit.spec();
        assert_eq!(spec.name, "web");
        assert_eq!(spec.config.restart, super::RestartPolicy::OnFailure);
        assert_eq!(spec.config.stop_timeout, std::time::Duration::from_secs(2));
        assert!(!spec.config.needs_ready_signal && !spec.config.oneshot);
    }
}

#[cfg(test)]
mod rare_tests {
    use super::{Rare, ResourcesSpec, SandboxSpec};

    /// A part left at its default holds no box and reads as the default;
    /// one that is set reads as itself; both compare by value, so a reload
    /// sees no change between a unit without `sandbox:` and one with
    /// `sandbox: {}`.
    #[test]
    fn a_rare_part_is_boxed_only_when_set_and_reads_as_itself() {
        let unset: Rare<SandboxSpec> = Rare::new(SandboxSpec::default());
        assert!(!unset.is_set());
        assert_eq!(*unset, SandboxSpec::default());
        assert_eq!(unset, Rare::default());
        let set = Rare::new(SandboxSpec { private_tmp: true, ..SandboxSpec::default() });
        assert!(set.is_set() && set.private_tmp && !set.private_network);
        assert_ne!(set, unset);
        let limits = Rare::new(ResourcesSpec { pids_max: Some(10), ..ResourcesSpec::default() });
        assert_eq!(limits.pids_max, Some(10));
        assert_eq!(*Rare::<ResourcesSpec>::default(), ResourcesSpec::default());
        assert_eq!(std::mem::size_of::<Rare<SandboxSpec>>(), std::mem::size_of::<usize>());
    }
}
