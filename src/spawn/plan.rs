//! The parent side of a spawn: everything the child will need, computed and
//! allocated before fork, so that the child allocates nothing.

use super::Step;
use crate::unit::{Resource, UnitSpec};
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The default PATH a service gets when it inherits none (systemd's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where one of the child's standard streams comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// Keep tend's own descriptor.
    Inherit,
    /// dup2 this descriptor (owned by the caller, open across the fork).
    Fd(i32),
}

/// Why a plan could not be made (before any fork).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

/// How the child's process group and terminal are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Stay in tend's process group.
    Inherit,
    /// setsid(): own session and process group (services).
    NewSession,
    /// setpgid(0, 0), and take the terminal's foreground when stdin is one
    /// (`tend run` on a terminal: a new session would lose the terminal).
    NewGroup { foreground: bool },
}

pub struct ExecPlan {
    pub(super) candidates: Vec<CString>,
    /// The name as written, for messages when no candidate exists.
    pub(super) program: String,
    pub(super) _argv: Vec<CString>,
    pub(super) argv_ptrs: Vec<*const libc::c_char>,
    pub(super) _envp: Vec<CString>,
    pub(super) envp_ptrs: Vec<*const libc::c_char>,
    pub(super) grouping: Grouping,
    pub(super) stdin: Stdio,
    pub(super) stdout: Stdio,
    pub(super) stderr: Stdio,
    pub(super) cwd: Option<CString>,
    pub(super) rlimits: Vec<(libc::__rlimit_resource_t, libc::rlimit, Resource)>,
    pub(super) nice: Option<i32>,
    pub(super) umask: Option<libc::mode_t>,
    pub(super) groups: Option<Vec<libc::gid_t>>,
    pub(super) gid: Option<libc::gid_t>,
    pub(super) uid: Option<libc::uid_t>,
    pub(super) pdeathsig: Option<i32>,
    /// Signals not at their default disposition in tend: the child resets these.
    pub(super) signals_to_reset: &'static [i32],
    /// Then sets these to SIG_IGN (`tend run`: what tend inherited ignored).
    pub(super) signals_to_ignore: Vec<i32>,
    /// And blocks these (kernel sigset: bit N-1 for signal N); empty for services.
    pub(super) signal_mask: u64,
    /// One more descriptor for the service: `(ours, its number)` (s6 notify_fd).
    pub(super) extra_fd: Option<(i32, i32)>,
    /// The sandbox: namespaces, mounts, capabilities, no_new_privs, Landlock.
    pub(super) confine: Option<crate::sandbox::confine::ConfinePlan>,
    /// `cgroup.procs` files the child joins (writes "0" to) first thing.
    pub(super) cgroup_fds: Vec<i32>,
    /// clone3(CLONE_INTO_CGROUP) into this v2 directory, writing only
    /// these `cgroup.procs` in the child; `cgroup_fds` is the fallback.
    pub(super) clone_into: Option<(i32, Vec<i32>)>,
    pub(super) keeps_setuid: bool,
    /// `stdin: {file: PATH}`: opened by the child as the service, once its
    /// identity and sandbox are in place, onto descriptor 0.
    pub(super) stdin_file: Option<CString>,
}

// SAFETY: the raw pointers in `argv_ptrs`/`envp_ptrs` point into the
// plan's own CStrings (heap data that moves with it and is never changed
// after `assemble`); nothing else in a plan is tied to a thread. Shared
// read-only with the spawner thread (`spawn::vfork`).
unsafe impl Send for ExecPlan {}
// SAFETY: as above: no interior mutability; `&ExecPlan` only reads.
unsafe impl Sync for ExecPlan {}

/// tend's signal dispositions are set once, before the first spawn; read
/// them once.
fn signals_to_reset() -> &'static [i32] {
    static SIGNALS: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();
    SIGNALS.get_or_init(crate::sys::non_default_signals)
}

impl std::fmt::Debug for ExecPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecPlan").field("program", &self.program).finish_non_exhaustive()
    }
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString, PlanError> {
    CString::new(bytes).map_err(|_| PlanError(format!("{what} contains a NUL byte")))
}

fn resource_id(resource: Resource) -> libc::__rlimit_resource_t {
    match resource {
        Resource::Nofile => libc::RLIMIT_NOFILE,
        Resource::Nproc => libc::RLIMIT_NPROC,
        Resource::Core => libc::RLIMIT_CORE,
        Resource::As => libc::RLIMIT_AS,
        Resource::Cpu => libc::RLIMIT_CPU,
        Resource::Data => libc::RLIMIT_DATA,
        Resource::Fsize => libc::RLIMIT_FSIZE,
        Resource::Memlock => libc::RLIMIT_MEMLOCK,
        Resource::Stack => libc::RLIMIT_STACK,
        Resource::Rss => libc::RLIMIT_RSS,
        Resource::Msgqueue => libc::RLIMIT_MSGQUEUE,
        Resource::Nice => libc::RLIMIT_NICE,
        Resource::Rtprio => libc::RLIMIT_RTPRIO,
        Resource::Sigpending => libc::RLIMIT_SIGPENDING,
        Resource::Locks => libc::RLIMIT_LOCKS,
    }
}

fn rlim(value: u64) -> libc::rlim_t {
    if value == crate::unit::RLIM_UNLIMITED {
        libc::RLIM_INFINITY
    } else {
        value as libc::rlim_t
    }
}

/// The program candidates execve will try, in order: the path itself when it
/// has a slash, else each `PATH` entry (an empty entry is the current
/// directory, as execvp(3) does).
fn candidates(program: &str, path: Option<&OsStr>) -> Result<Vec<CString>, PlanError> {
    if program.contains('/') {
        return Ok(vec![cstring(program.as_bytes(), "command")?]);
    }
    let path = path.map(|p| p.as_bytes().to_vec()).unwrap_or_else(|| DEFAULT_PATH.as_bytes().to_vec());
    let mut out: Vec<CString> = Vec::new();
    for dir in path.split(|b| *b == b':') {
        let mut full = if dir.is_empty() { b".".to_vec() } else { dir.to_vec() };
        full.push(b'/');
        full.extend_from_slice(program.as_bytes());
        let full = cstring(&full, "command")?;
        if !out.contains(&full) {
            out.push(full);
        }
    }
    // Found before with this PATH: that one first, and no search (a stat of
    // each PATH entry, 8 on a typical PATH, on every restart). The rest of
    // PATH stays behind it, in order, so that a program removed since is
    // still looked for as execvp(3) would; a failed exec or a reload
    // forgets what was found ([`forget_resolved_programs`]).
    let key = (program.as_bytes().to_vec(), path.clone());
    let mut resolved = resolved_programs();
    if let Some(index) = resolved.get(&key).and_then(|found| out.iter().position(|c| c == found)) {
        let found = out.remove(index);
        out.insert(0, found);
        return Ok(out);
    }
    // Resolve in the parent (DESIGN: plan, then fork): the first candidate
    // that is an executable file is the one execvp would run, and the child
    // then makes one execve instead of one per PATH entry. When none is,
    // the child still tries them all, so the error it reports is the one
    // execve gives (EACCES over ENOENT, as execvp(3) does).
    let executable = out.iter().position(|candidate| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(OsStr::from_bytes(candidate.as_bytes()))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    if let Some(index) = executable {
        if resolved.len() >= RESOLVED_MAX {
            resolved.clear();
        }
        resolved.insert(key, out[index].clone());
        return Ok(vec![out.swap_remove(index)]);
    }
    Ok(out)
}

/// At most this many programs remembered (each unit and exec check has
/// one; a reload starts afresh): memory stays bounded whatever the units.
const RESOLVED_MAX: usize = 4096;

type Resolved = std::collections::HashMap<(Vec<u8>, Vec<u8>), CString>;

/// Where each `(program, PATH)` was found by the last search.
fn resolved_programs() -> std::sync::MutexGuard<'static, Resolved> {
    static RESOLVED: std::sync::OnceLock<std::sync::Mutex<Resolved>> = std::sync::OnceLock::new();
    let lock = RESOLVED.get_or_init(Default::default);
    lock.lock().unwrap_or_else(|e| e.into_inner())
}

/// Search PATH afresh at the next spawns: after a reload (a program may
/// have been installed earlier in PATH) and after an exec failed.
pub fn forget_resolved_programs() {
    resolved_programs().clear();
}

/// The environment a service gets: the inherited one (unless
/// `clear_env`), HOME/USER/LOGNAME of its user, its unit's variables, then
/// `extra_env`, and a default PATH when none is set.
fn service_environment(
    unit: &UnitSpec,
    inherited_env: impl Iterator<Item = (OsString, OsString)>,
    extra_env: &[(OsString, OsString)],
) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> = BTreeMap::new();
    if !unit.clear_env {
        env.extend(inherited_env);
    }
    if let Some(user) = unit.identity.as_ref().and_then(|id| id.user.as_ref()) {
        env.insert("HOME".into(), user.home.clone().into());
        env.insert("USER".into(), user.name.clone().into());
        env.insert("LOGNAME".into(), user.name.clone().into());
    }
    for (key, value) in &unit.environment {
        env.insert(key.into(), value.into());
    }
    env.extend(extra_env.iter().cloned());
    env.entry("PATH".into()).or_insert_with(|| DEFAULT_PATH.into());
    env
}

/// What [`check_program`] found for each (program, PATH, working
/// directory, user) of one load, and tend's own ids: a unit folder of 100
/// services running the same program makes one search, not 100 (each is a
/// stat of every PATH entry, and reading tend's groups is three system
/// calls). Made afresh for each load: a program may be installed since.
#[derive(Debug, Default)]
pub struct ProgramChecks {
    own_ids: Option<(u32, u32, Vec<u32>)>,
    found: std::collections::HashMap<ProgramQuery, Result<(), String>>,
}

/// Everything a [`check_program`] answer depends on.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ProgramQuery {
    program: String,
    path: Vec<u8>,
    working_dir: Option<std::path::PathBuf>,
    /// uid, gid, groups and user name of the unit's identity (`None`: tend's own).
    identity: Option<(u32, u32, Vec<u32>, Option<String>)>,
}

impl ProgramChecks {
    /// How many searches were made (tests).
    #[cfg(test)]
    fn searches(&self) -> usize {
        self.found.len()
    }
}

/// Would the spawn find the unit's program and may its user run it? The
/// same search as the spawn (the unit's PATH; a relative path from its
/// working directory) and the permission bits for its uid and groups. For
/// `tend check` (an error) and `tend up` (a warning); the sandbox's mounts
/// are not taken into account. Returns the problem in words; the same
/// question asked again in one load is answered from `checks`.
pub fn check_program(
    unit: &UnitSpec,
    inherited_env: impl Iterator<Item = (OsString, OsString)>,
    checks: &mut ProgramChecks,
) -> Result<(), String> {
    let program = unit.command.first().map(String::as_str).unwrap_or_default();
    let env = service_environment(unit, inherited_env, &[]);
    let path = env.get(OsStr::new("PATH")).map(|p| p.as_bytes().to_vec()).unwrap_or_default();
    let query = ProgramQuery {
        program: program.to_owned(),
        path,
        working_dir: unit.working_dir.clone(),
        identity: unit
            .identity
            .as_ref()
            .map(|id| (id.uid, id.gid, id.groups.clone(), id.user.as_ref().map(|u| u.name.clone()))),
    };
    if let Some(answer) = checks.found.get(&query) {
        return answer.clone();
    }
    let (uid, gid, groups) = match &unit.identity {
        Some(id) => (id.uid, id.gid, id.groups.clone()),
        None => checks
            .own_ids
            .get_or_insert_with(|| {
                (
                    nix::unistd::geteuid().as_raw(),
                    nix::unistd::getegid().as_raw(),
                    nix::unistd::getgroups().unwrap_or_default().into_iter().map(|g| g.as_raw()).collect(),
                )
            })
            .clone(),
    };
    let who = match unit.identity.as_ref().and_then(|id| id.user.as_ref()) {
        Some(user) => format!(" by user {}", user.name),
        None if unit.identity.is_some() => format!(" by uid {uid}"),
        None => String::new(),
    };
    let answer = search_program(program, &query.path, unit.working_dir.as_deref(), (uid, gid, &groups), &who);
    checks.found.insert(query, answer.clone());
    answer
}

/// The search of [`check_program`].
fn search_program(
    program: &str,
    path: &[u8],
    working_dir: Option<&std::path::Path>,
    (uid, gid, groups): (u32, u32, &[u32]),
    who: &str,
) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        path.split(|b| *b == b':')
            .map(|dir| {
                if dir.is_empty() {
                    Path::new(".").join(program)
                } else {
                    Path::new(OsStr::from_bytes(dir)).join(program)
                }
            })
            .collect()
    };
    let mut problem = None;
    for candidate in &candidates {
        // The child enters working_dir before exec: relative paths start there.
        let full = match working_dir {
            Some(dir) if candidate.is_relative() => dir.join(candidate),
            _ => candidate.clone(),
        };
        let shown = candidate.display();
        match std::fs::metadata(&full) {
            Ok(meta) if meta.is_dir() => {
                problem.get_or_insert(format!("'{shown}' is a directory"));
            }
            Ok(meta) if !meta.is_file() => {
                problem.get_or_insert(format!("'{shown}' is not a regular file"));
            }
            Ok(meta) => {
                let mode = meta.mode();
                let bits = if mode & 0o111 == 0 {
                    0
                } else if uid == 0 {
                    // Root may run any file with an execute bit (path_resolution(7)).
                    0o111
                } else if meta.uid() == uid {
                    mode & 0o100
                } else if meta.gid() == gid || groups.contains(&meta.gid()) {
                    mode & 0o010
                } else {
                    mode & 0o001
                };
                if bits != 0 {
                    return Ok(());
                }
                problem.get_or_insert(format!("'{shown}' is not executable{who}"));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) if err.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(err) => {
                let reason = tend_core::text::error_text(&err);
                problem.get_or_insert(format!("cannot use '{shown}': {reason}"));
            }
        }
    }
    Err(problem.unwrap_or_else(|| {
        if program.contains('/') {
            format!("no such file '{program}'")
        } else {
            format!("'{program}' is not in PATH ({})", String::from_utf8_lossy(path))
        }
    }))
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

impl ExecPlan {
    fn assemble(
        argv: &[String],
        env: BTreeMap<OsString, OsString>,
        grouping: Grouping,
        stdio: [Stdio; 3],
    ) -> Result<ExecPlan, PlanError> {
        let program = argv.first().ok_or_else(|| PlanError("command is empty".into()))?.clone();
        let candidates = candidates(&program, env.get(OsStr::new("PATH")).map(|p| p.as_os_str()))?;
        let argv: Vec<CString> =
            argv.iter().map(|a| cstring(a.as_bytes(), "argument")).collect::<Result<_, _>>()?;
        let envp: Vec<CString> = env
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(&kv, "environment")
            })
            .collect::<Result<_, _>>()?;
        Ok(ExecPlan {
            candidates,
            program,
            argv_ptrs: null_terminated(&argv),
            _argv: argv,
            envp_ptrs: null_terminated(&envp),
            _envp: envp,
            grouping,
            stdin: stdio[0],
            stdout: stdio[1],
            stderr: stdio[2],
            cwd: None,
            rlimits: Vec::new(),
            nice: None,
            umask: None,
            groups: None,
            gid: None,
            uid: None,
            pdeathsig: None,
            signals_to_reset: signals_to_reset(),
            signals_to_ignore: Vec::new(),
            signal_mask: 0,
            extra_fd: None,
            confine: None,
            cgroup_fds: Vec::new(),
            clone_into: None,
            keeps_setuid: false,
            stdin_file: None,
        })
    }

    /// A service's plan with another command (an exec check runs like its
    /// service: same user, environment, limits and sandbox) and variables
    /// tend adds whatever `clear_env` says (NOTIFY_SOCKET, WATCHDOG_USEC).
    pub fn for_service_with(
        unit: &UnitSpec,
        command: &[String],
        inherited_env: impl Iterator<Item = (OsString, OsString)>,
        extra_env: &[(OsString, OsString)],
        stdio: [Stdio; 3],
        pdeathsig: Option<i32>,
    ) -> Result<ExecPlan, PlanError> {
        let env = service_environment(unit, inherited_env, extra_env);
        let grouping = if unit.process_group { Grouping::NewSession } else { Grouping::Inherit };
        let mut plan = ExecPlan::assemble(command, env, grouping, stdio)?;
        plan.cwd = match &unit.working_dir {
            Some(dir) => Some(cstring(dir.as_os_str().as_bytes(), "working_dir")?),
            None => None,
        };
        plan.rlimits = unit
            .rlimits
            .iter()
            .map(|r| {
                (
                    resource_id(r.resource),
                    libc::rlimit { rlim_cur: rlim(r.soft), rlim_max: rlim(r.hard) },
                    r.resource,
                )
            })
            .collect();
        // tend raised its own descriptor limit; the service gets the one tend
        // started with (unless its unit says otherwise).
        if let Some((soft, _)) = crate::sys::original_nofile() {
            if !unit.rlimits.iter().any(|r| r.resource == Resource::Nofile) {
                let now = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE);
                if let Some((_, hard)) = now.ok().filter(|(current, _)| soft < *current) {
                    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                    plan.rlimits.push((resource_id(Resource::Nofile), limit, Resource::Nofile));
                }
            }
        }
        plan.nice = unit.nice;
        plan.umask = unit.umask.map(|m| m as libc::mode_t);
        let setuid = caps::Capability::CAP_SETUID.index();
        plan.keeps_setuid = unit.sandbox.capabilities.as_ref().is_some_and(|caps| caps.contains(&setuid));
        if let Some(identity) = &unit.identity {
            plan.groups = Some(identity.groups.clone());
            plan.gid = Some(identity.gid);
            plan.uid = Some(identity.uid);
        }
        plan.pdeathsig = pdeathsig;
        Ok(plan)
    }

    /// The plan for `tend run`: stdio inherited, own process group, the
    /// terminal's foreground when stdin is a terminal.
    pub fn for_command(
        argv: &[String],
        env: impl Iterator<Item = (OsString, OsString)>,
        foreground: bool,
        pdeathsig: Option<i32>,
    ) -> Result<ExecPlan, PlanError> {
        let env: BTreeMap<OsString, OsString> = env.collect();
        let mut plan = ExecPlan::assemble(argv, env, Grouping::NewGroup { foreground }, [Stdio::Inherit; 3])?;
        plan.pdeathsig = pdeathsig;
        Ok(plan)
    }

    /// Start the child with the signal state tend itself inherited (the
    /// ignored signals and the mask), as an init should be invisible: under
    /// `nohup`, or from a shell that starts a job with SIGINT ignored, the
    /// command behaves as it would without tend (tini's restore_signals).
    /// Without this the child gets the clean state services get: every
    /// signal at its default, none blocked.
    pub fn keep_inherited_signals(&mut self, inherited: crate::sys::InheritedSignals) {
        self.signals_to_ignore = inherited.ignored_signals();
        self.signal_mask = inherited.blocked;
    }

    /// What a failing step acted on, for its message.
    pub(super) fn describe(&self, step: Step, index: usize) -> String {
        match step {
            // A program found nowhere on PATH (index out of range) is named
            // as the user wrote it.
            Step::Exec => match self.candidates.get(index) {
                Some(path) => path.to_string_lossy().into_owned(),
                None => self.program.clone(),
            },
            Step::Chdir => self.cwd.as_ref().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default(),
            Step::Rlimit => self.rlimits.get(index).map(|r| r.2.name().to_string()).unwrap_or_default(),
            Step::Nice => self.nice.map(|n| n.to_string()).unwrap_or_default(),
            Step::Setgroups => format!("{:?}", self.groups.clone().unwrap_or_default()),
            Step::Setgid => self.gid.map(|g| g.to_string()).unwrap_or_default(),
            Step::Setuid => self.uid.map(|u| u.to_string()).unwrap_or_default(),
            Step::Cgroup => String::new(),
            Step::StdinFile => {
                self.stdin_file.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
            }
            Step::Setsid
            | Step::Setpgid
            | Step::Tcsetpgrp
            | Step::Pdeathsig
            | Step::Stdio
            | Step::Umask
            | Step::DropCheck
            | Step::CloseFds
            | Step::Signals => String::new(),
        }
    }

    /// Confine the service (the plan was built in the parent).
    pub fn set_confine(&mut self, confine: crate::sandbox::confine::ConfinePlan) {
        if !confine.is_empty() {
            self.confine = Some(confine);
        }
    }

    /// Join these cgroups (open `cgroup.procs` descriptors) before anything else.
    pub fn set_cgroup_fds(&mut self, fds: Vec<i32>, clone_into: Option<(i32, Vec<i32>)>) {
        self.cgroup_fds = fds;
        self.clone_into = clone_into;
    }

    /// The child was forked (a copy of this memory is its own): what only
    /// its execve needed goes, the rest stays for [`decode_report`]'s
    /// messages until the exec is confirmed. A plan lives that long, and a
    /// burst of starts (`tend up`) holds a hundred at once: their
    /// environment blocks (each variable one allocation), freed later
    /// amid what lives on, would leave the heap fragmented for good.
    ///
    /// [`decode_report`]: super::decode_report
    pub fn forked(&mut self) {
        self._argv = Vec::new();
        self.argv_ptrs = Vec::new();
        self._envp = Vec::new();
        self.envp_ptrs = Vec::new();
    }

    /// Read standard input from this file, opened in the child as the
    /// service (see `child::open_stdin_file`).
    pub fn set_stdin_file(&mut self, path: &std::path::Path) -> Result<(), PlanError> {
        // The child opens it after entering working_dir: a path relative to
        // tend's folder (units given as a relative folder) is made absolute
        // here, without resolving links (those are the service's to follow).
        let path = std::path::absolute(path).map_err(|e| PlanError(format!("stdin file: {e}")))?;
        self.stdin_file = Some(cstring(path.as_os_str().as_bytes(), "stdin file")?);
        Ok(())
    }

    /// Give the service descriptor `ours` as number `theirs` (kept open across exec).
    pub fn set_extra_fd(&mut self, ours: i32, theirs: i32) {
        self.extra_fd = Some((ours, theirs));
    }

    /// The sandbox keeps CAP_SETUID (7): getting uid 0 back is then allowed.
    pub(super) fn keeps_setuid(&self) -> bool {
        self.keeps_setuid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn executable(path: &std::path::Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_found_program_is_tried_first_without_a_search_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (early, late) = (dir.path().join("early"), dir.path().join("late"));
        std::fs::create_dir(&early).unwrap();
        std::fs::create_dir(&late).unwrap();
        let program = "tend-plan-test-program";
        executable(&late.join(program));
        let path = OsString::from(format!("{}:{}", early.display(), late.display()));
        let c = |p: &std::path::Path| CString::new(p.join(program).into_os_string().into_vec()).unwrap();
        assert_eq!(candidates(program, Some(&path)).unwrap(), [c(&late)]);
        // Installed earlier in PATH since: the one found is still tried
        // first, the rest of PATH after it.
        executable(&early.join(program));
        assert_eq!(candidates(program, Some(&path)).unwrap(), [c(&late), c(&early)]);
        // A reload or a failed exec: searched again, as execvp(3) would.
        forget_resolved_programs();
        assert_eq!(candidates(program, Some(&path)).unwrap(), [c(&early)]);
    }

    #[test]
    fn one_load_searches_each_program_once_and_answers_alike() {
        use crate::unit::testing::unit;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        executable(&bin.join("found"));
        let env = |path: &std::path::Path| vec![(OsString::from("PATH"), path.as_os_str().to_owned())];
        let mut checks = ProgramChecks::default();
        let found = unit("a", "command: [found, x]\n");
        let missing = unit("b", "command: [missing]\n");
        for _ in 0..3 {
            assert_eq!(check_program(&found, env(&bin).into_iter(), &mut checks), Ok(()));
            let err = check_program(&missing, env(&bin).into_iter(), &mut checks).unwrap_err();
            assert!(err.starts_with("'missing' is not in PATH ("), "{err}");
        }
        assert_eq!(checks.searches(), 2);
        // Another PATH is another question.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(check_program(&found, env(&empty).into_iter(), &mut checks).is_err());
        // So is another working directory, for a relative program.
        let relative = unit("c", &format!("command: [./found]\nworking_dir: {}\n", bin.display()));
        assert_eq!(check_program(&relative, env(&empty).into_iter(), &mut checks), Ok(()));
        let elsewhere = unit("d", &format!("command: [./found]\nworking_dir: {}\n", empty.display()));
        assert!(check_program(&elsewhere, env(&empty).into_iter(), &mut checks).is_err());
        assert_eq!(checks.searches(), 5);
    }
}
