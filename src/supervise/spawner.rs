//! Starting processes for the loop: a service (its pipes, its exec-status
//! watch, its s6 readiness pipe) or an exec check (the service's plan with
//! the check's command), each in the service's cgroup and sandbox.
//!
//! Owns each service's cgroup (made at its first start, replaced after a
//! reload changed its limits), the exec plans' shared inputs (tend's
//! environment, /dev/null, the parent-death signal), and the exec-status
//! watch of a child whose exec is not yet confirmed. The fork itself is
//! `spawn`'s; deciding when to start is the core's.

use crate::sandbox::cgroup::{CgroupManager, ServiceCgroup};
use crate::spawn::{self, ExecPlan, Stdio};
use crate::sys;
use crate::unit::UnitSpec;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use tend_core::service::StartFailure;
use tend_core::{Level, ServiceId};

/// The exec-status pipe of a child whose exec is not yet confirmed.
pub(crate) struct ExecWatch {
    pub(super) service: ServiceId,
    pub(super) pid: i32,
    pub(super) fd: OwnedFd,
    bytes: Vec<u8>,
    /// Shared with the spawner thread until its `vfork` child exec'd.
    plan: Arc<ExecPlan>,
    /// EOF was read: exec succeeded (no bytes) or failed (bytes).
    eof: bool,
}

/// What the exec-status pipe says so far.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ExecStatus {
    /// Nothing yet.
    Pending,
    /// EOF without a report: the program runs.
    Confirmed,
    /// A child step failed (known for sure once the child is reaped).
    Failed,
}

impl ExecWatch {
    /// Read what the pipe holds now.
    pub(super) fn read(&mut self) -> ExecStatus {
        let mut buf = [0u8; 64];
        while !self.eof {
            match sys::read(&self.fd, &mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.bytes.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        match (self.eof, self.bytes.is_empty()) {
            (true, true) => ExecStatus::Confirmed,
            (_, false) => ExecStatus::Failed,
            (false, true) => ExecStatus::Pending,
        }
    }

    /// The child is gone, so every write end of its pipe is closed: what it
    /// wrote, if anything, is there to read. `Some` when a step failed.
    pub(super) fn failure(mut self) -> Option<StartFailure> {
        self.read();
        let error = spawn::decode_report(&self.plan, &self.bytes)?;
        Some(StartFailure {
            step: error.step.name().to_string(),
            errno: (error.errno != 0).then(|| sys::errno_name(error.errno)),
            message: error.to_string(),
        })
    }
}

/// A service's process, just forked.
pub(super) struct Child {
    pub(super) pid: i32,
    /// The read ends of the pipes tend reads its output from (none for a
    /// stream piped into another service).
    pub(super) stdout: Option<OwnedFd>,
    pub(super) stderr: Option<OwnedFd>,
    pub(super) exec: ExecWatch,
    /// The read end of its s6 readiness pipe (`notify_fd`).
    pub(super) ready_pipe: Option<OwnedFd>,
}

/// Where a service's standard streams come from, as the loop resolved the
/// core's [`tend_core::Stdio`] with the pipes it holds.
pub(super) struct Streams {
    pub(super) stdin: StdinFrom,
    /// The write end of the pipe into a consumer; `None`: a pipe tend reads.
    pub(super) stdout: Option<i32>,
    pub(super) stderr: Option<i32>,
}

pub(super) enum StdinFrom {
    Null,
    /// The unit's `stdin: {file}`.
    File,
    /// The unit's `stdin: {data}`.
    Data,
    /// The read end of its pipe (a consumer).
    Fd(i32),
}

/// Where a service's processes go: its cgroup, and the notices said once.
#[derive(Default)]
struct Placement {
    cgroup: Option<ServiceCgroup>,
    /// A reload changed `resources`: a new cgroup at the next start.
    stale: bool,
    /// The cgroup's OOM-kill count when the current process started.
    oom_kills_at_start: Option<u64>,
    /// The sandbox notice was shown.
    sandbox_noticed: bool,
}

pub(super) struct Spawner {
    /// The environment services inherit (tend's own, read once at start).
    environment: Vec<(OsString, OsString)>,
    devnull: OwnedFd,
    pdeathsig: Option<i32>,
    cgroups: CgroupManager,
    cgroup_warning_shown: bool,
    /// Per service, by id.
    placements: Vec<Placement>,
}

/// A start that failed in tend, before or at the fork, at `step`.
fn failure(step: &str, message: String) -> StartFailure {
    StartFailure { step: step.to_string(), errno: None, message }
}

/// The same, with the errno of `error`.
fn io_failure(step: &str, error: &io::Error, message: String) -> StartFailure {
    StartFailure { step: step.to_string(), errno: error.raw_os_error().map(sys::errno_name), message }
}

impl Spawner {
    pub(super) fn new(environment: Vec<(OsString, OsString)>, pdeathsig: Option<i32>) -> io::Result<Spawner> {
        let devnull = std::fs::OpenOptions::new().read(true).open("/dev/null")?.into();
        Ok(Spawner {
            environment,
            devnull,
            pdeathsig,
            cgroups: CgroupManager::detect(),
            cgroup_warning_shown: false,
            placements: Vec::new(),
        })
    }

    /// A service was added (at start or by a reload).
    pub(super) fn add(&mut self) {
        self.placements.push(Placement::default());
    }

    /// Start the service with `extra_env` (NOTIFY_SOCKET, WATCHDOG_USEC):
    /// through the spawner thread when `by_thread` (see
    /// `spawn::spawn_shared`), else forked. One-time notices go to `notices`.
    pub(super) fn service(
        &mut self,
        service: ServiceId,
        unit: &UnitSpec,
        extra_env: &[(OsString, OsString)],
        streams: &Streams,
        by_thread: bool,
        notices: &mut Vec<(Level, String)>,
    ) -> Result<Child, StartFailure> {
        let pipe = || spawn::pipe().map_err(|e| io_failure("pipe", &e, format!("cannot create a pipe: {e}")));
        // A stream tend reads gets a pipe of its own; a piped one goes
        // straight into its consumer's pipe.
        let out = match streams.stdout {
            None => Some(pipe()?),
            Some(_) => None,
        };
        let err = match streams.stderr {
            None => Some(pipe()?),
            Some(_) => None,
        };
        // Held until the fork is done; the child has its own copy.
        let data = match (&streams.stdin, &unit.stdin) {
            (StdinFrom::Data, crate::unit::Stdin::Data(text)) => {
                Some(sys::sealed_memfd(text.as_bytes()).map_err(|e| {
                    io_failure(
                        "stdin",
                        &e,
                        format!(
                            "cannot hold its stdin data: {}",
                            tend_core::text::without_os_errors(&e.to_string())
                        ),
                    )
                })?)
            }
            _ => None,
        };
        let stdin = match (&streams.stdin, &data) {
            (StdinFrom::Fd(fd), _) => *fd,
            (_, Some(memfd)) => memfd.as_raw_fd(),
            // `File` is opened by the child; /dev/null until then.
            _ => self.devnull.as_raw_fd(),
        };
        let output = |piped: Option<i32>, own: &Option<(OwnedFd, OwnedFd)>| match (piped, own) {
            (Some(fd), _) => Stdio::Fd(fd),
            (None, Some((_, write_end))) => Stdio::Fd(write_end.as_raw_fd()),
            (None, None) => Stdio::Fd(self.devnull.as_raw_fd()),
        };
        let stdio = [Stdio::Fd(stdin), output(streams.stdout, &out), output(streams.stderr, &err)];
        let ready_pipe = match unit.notify_fd {
            Some(_) => Some(pipe()?),
            None => None,
        };
        let mut plan = ExecPlan::for_service_with(
            unit,
            &unit.command,
            self.environment.iter().cloned(),
            extra_env,
            stdio,
            self.pdeathsig,
        )
        .map_err(|e| failure("prepare", format!("cannot prepare the command: {}", e.0)))?;
        if let (Some((_, write_end)), Some(number)) = (&ready_pipe, unit.notify_fd) {
            plan.set_extra_fd(write_end.as_raw_fd(), number);
        }
        if let (StdinFrom::File, crate::unit::Stdin::File(path)) = (&streams.stdin, &unit.stdin) {
            plan.set_stdin_file(path)
                .map_err(|e| failure("prepare", format!("cannot prepare stdin: {}", e.0)))?;
        }
        // New limits after a reload: the old process is gone by now (the
        // restart stopped it, with the old cgroup), so the old cgroup can go.
        let placement = &mut self.placements[service];
        if std::mem::take(&mut placement.stale) {
            if let Some(old) = placement.cgroup.take() {
                old.remove();
            }
        }
        self.sandbox_plan(service, unit, &mut plan, notices)?;
        let placement = &mut self.placements[service];
        placement.oom_kills_at_start = placement.cgroup.as_ref().and_then(|c| c.oom_kills());
        let mut plan = Arc::new(plan);
        let child = spawn::spawn_shared(&plan, by_thread)
            .map_err(|e| io_failure("fork", &e, format!("cannot fork: {e}")))?;
        // Only when no one else holds the plan: a forked child has its own
        // copy, but a spawner-thread child reads this one until its exec
        // (the thread lets go of it then; until then argv and envp stay).
        if let Some(plan) = Arc::get_mut(&mut plan) {
            plan.forked();
        }
        drop(data);
        let ready_pipe = ready_pipe.map(|(read_end, _write_end)| read_end);
        let exec =
            ExecWatch { service, pid: child.pid, fd: child.exec_status, bytes: Vec::new(), plan, eof: false };
        // Our copies of the write ends go (dropped with the tuples): the
        // reader sees end-of-file once the service's are closed.
        let stdout = out.map(|(read_end, _write_end)| read_end);
        let stderr = err.map(|(read_end, _write_end)| read_end);
        Ok(Child { pid: child.pid, stdout, stderr, exec, ready_pipe })
    }

    /// An exec check: the service's own plan with the check's command, its
    /// output discarded, in the service's cgroup and sandbox, reaped by the
    /// one reaper.
    pub(super) fn check(
        &mut self,
        service: ServiceId,
        unit: &UnitSpec,
        argv: &[String],
        notices: &mut Vec<(Level, String)>,
    ) -> Result<i32, String> {
        let devnull = self.devnull.as_raw_fd();
        let stdio = [Stdio::Fd(devnull), Stdio::Fd(devnull), Stdio::Fd(devnull)];
        let mut plan = ExecPlan::for_service_with(
            unit,
            argv,
            self.environment.iter().cloned(),
            &[],
            stdio,
            self.pdeathsig,
        )
        .map_err(|e| format!("cannot prepare the check: {}", e.0))?;
        self.sandbox_plan(service, unit, &mut plan, notices).map_err(|failure| failure.message)?;
        let child = spawn::spawn(&plan).map_err(|e| format!("cannot fork the check: {e}"))?;
        Ok(child.pid)
    }

    /// The service's cgroup (made at its first start) and its sandbox, into `plan`.
    fn sandbox_plan(
        &mut self,
        service: ServiceId,
        unit: &UnitSpec,
        plan: &mut ExecPlan,
        notices: &mut Vec<(Level, String)>,
    ) -> Result<(), StartFailure> {
        let resources = *unit.resources;
        if self.placements[service].cgroup.is_none() {
            match self.cgroups.available() {
                Ok(()) => match self.cgroups.create(&unit.name, &resources) {
                    Ok(cgroup) => self.placements[service].cgroup = Some(cgroup),
                    Err(err) if resources.is_set() => {
                        return Err(failure("cgroup", format!("cannot create its cgroup: {err}")));
                    }
                    Err(err) => notices.push((
                        Level::Warning,
                        format!(
                            "{}: cannot create its cgroup ({err}); stopping it will use its process group only",
                            unit.name
                        ),
                    )),
                },
                Err(reason) if resources.is_set() => {
                    return Err(failure("cgroup", format!("cannot enforce resources: {reason}")))
                }
                Err(reason) => {
                    if !self.cgroup_warning_shown {
                        self.cgroup_warning_shown = true;
                        notices.push((Level::Warning, crate::sandbox::cgroup::unavailable_warning(&reason)));
                    }
                }
            }
        }
        let placement = &mut self.placements[service];
        if let Some(cgroup) = &placement.cgroup {
            plan.set_cgroup_fds(cgroup.join_fds(), cgroup.clone_into());
        }
        if unit.sandbox.is_set() {
            let uid = unit.identity.as_ref().map(|i| i.uid);
            let confine = crate::sandbox::confine::ConfinePlan::new(&unit.sandbox, uid)
                .map_err(|e| failure("sandbox", format!("cannot prepare the sandbox: {e}")))?;
            if let Some(notice) = confine.notice().filter(|_| !placement.sandbox_noticed) {
                placement.sandbox_noticed = true;
                notices.push((Level::Info, format!("{}: {notice}", unit.name)));
            }
            plan.set_confine(confine);
        }
        Ok(())
    }

    /// The service's cgroup, while it has one.
    pub(super) fn cgroup(&self, service: ServiceId) -> Option<&ServiceCgroup> {
        self.placements[service].cgroup.as_ref()
    }

    /// The service whose (v2) cgroup has the id `cgroup_id`.
    pub(super) fn service_in_cgroup(&self, cgroup_id: u64) -> Option<ServiceId> {
        self.placements.iter().position(|p| p.cgroup.as_ref().and_then(|c| c.id()) == Some(cgroup_id))
    }

    /// Nothing of the service's is left in its cgroup (true without one).
    pub(super) fn cgroup_empty(&self, service: ServiceId) -> bool {
        self.cgroup(service).is_none_or(|c| c.is_empty())
    }

    /// A SIGKILL that came with a rise of the cgroup's OOM-kill counter was
    /// the OOM killer.
    pub(super) fn oom_killed(&self, service: ServiceId, status: tend_core::ExitStatus) -> bool {
        let placement = &self.placements[service];
        let Some(cgroup) = &placement.cgroup else { return false };
        let killed = matches!(status, tend_core::ExitStatus::Signaled { signal: libc::SIGKILL, .. });
        let rose = match (cgroup.oom_kills(), placement.oom_kills_at_start) {
            (Some(now), Some(before)) => now > before,
            (Some(now), None) => now > 0,
            _ => false,
        };
        killed && rose
    }

    /// A reload changed the service's `resources`: a fresh cgroup at its
    /// next start (the old one stays until the old process is stopped).
    pub(super) fn limits_changed(&mut self, service: ServiceId) {
        self.placements[service].stale = true;
    }

    /// The service is gone for good (removed by a reload, and down).
    pub(super) fn release(&mut self, service: ServiceId) {
        if let Some(cgroup) = self.placements[service].cgroup.take() {
            cgroup.remove();
        }
    }

    /// Kill what the cgroups of supervisors that were killed still hold:
    /// `(their pid, processes killed)`.
    pub(super) fn sweep_leftovers(&mut self) -> Vec<(Option<i32>, usize)> {
        if self.cgroups.available().is_err() {
            return Vec::new();
        }
        self.cgroups.sweep_leftovers()
    }

    /// At exit: remove every cgroup tend made.
    pub(super) fn remove_cgroups(&mut self) {
        for placement in &mut self.placements {
            if let Some(cgroup) = placement.cgroup.take() {
                cgroup.remove();
            }
        }
        self.cgroups.cleanup();
    }
}
