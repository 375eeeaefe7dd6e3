//! Confinement: namespaces, mounts, capabilities, no_new_privs and Landlock.
//!
//! Split as DESIGN.md asks: [`ConfinePlan::new`] runs in the parent before
//! fork and computes everything (capability masks and arrays, the list of
//! mount(2) calls with their C strings, the submounts read from
//! `/proc/self/mountinfo`, the Landlock ruleset fd); the child steps
//! ([`enter_namespaces`], [`keep_caps`], [`apply_capabilities`],
//! [`no_new_privs`], [`landlock`]) are raw system calls on that data:
//! async-signal-safe, no allocation, no panics. A failing child step returns
//! a [`ConfineError`] (step, errno, index); the parent turns the index back
//! into what failed with [`ConfinePlan::describe_object`] or
//! [`ConfinePlan::describe_failure`].
//!
//! # Child order (as the spawner calls it)
//!
//! `enter_namespaces` (privileged: before rlimits and the identity change) →
//! … → `keep_caps` → setgroups/setresgid/setresuid → `apply_capabilities` →
//! `no_new_privs` → close stray fds → `landlock` → … → execve.
//!
//! # Filesystem rules: two backends
//!
//! * **Mounts** (needs CAP_SYS_ADMIN): the child unshares a mount namespace,
//!   makes every mount private (nothing propagates back to tend's namespace),
//!   then, shorter paths first so that the most specific rule wins:
//!   `read_only_paths` are bind-mounted onto themselves and remounted
//!   read-only together with every submount under them (listed in the parent
//!   from `/proc/self/mountinfo`; nosuid/nodev/noexec/atime flags are kept);
//!   `read_write_paths` are re-bound on top and remounted with their original
//!   flags (writable unless the mount was read-only to begin with);
//!   `private_tmp` mounts fresh tmpfs on /tmp and /var/tmp; last,
//!   `inaccessible_paths`: a directory gets an empty read-only tmpfs of mode
//!   000 (its contents are hidden from everyone; a non-root service cannot
//!   even list it, a root one that keeps CAP_DAC_OVERRIDE sees it empty), a
//!   file gets /dev/null bound over it with `nodev`, so that opening it fails
//!   with EACCES, even for root. Everything lives in the service's own
//!   mount namespace, which dies with its last process: nothing stays mounted.
//! * **Landlock** (unprivileged): **deny by default**. Paths in
//!   `read_only_paths` get read and execute rights, paths in
//!   `read_write_paths` get every right, everything else none — including
//!   `inaccessible_paths`, which need no rule of their own. Landlock can only
//!   grant rights, never take them back, so an inaccessible path under a
//!   read-only or read-write path cannot be enforced: [`ConfinePlan::new`]
//!   refuses such a spec, and one with no read-only or read-write path at all
//!   (it would deny every file, the program included). `private_tmp` needs a
//!   mount namespace and is refused too. Character devices that almost every
//!   program writes (/dev/null, /dev/zero, /dev/full, /dev/tty and the random
//!   devices) get read and write rights, as they stay writable on a read-only
//!   bind mount. For the usual `read_only_paths: [/]` plus `read_write_paths`
//!   both backends agree.
//! * **Auto** picks Mounts when tend has CAP_SYS_ADMIN in its effective set,
//!   else Landlock, with a [`ConfinePlan::notice`].
//!
//! # Capabilities
//!
//! `capabilities: [...]` is the only set the service may ever have. After the
//! identity change the child raises its effective set to its permitted set
//! (the bounding-set drop needs CAP_SETPCAP), drops every other capability
//! from the bounding set (up to the kernel's last one, read in the parent
//! from /proc/sys/kernel/cap_last_cap), sets permitted = effective =
//! inheritable = the listed ones, clears the ambient set and, for a non-root
//! service, raises each listed one as ambient so that it survives execve (a
//! non-root web server can bind port 80). A non-root service keeps its
//! permitted set across setresuid with PR_SET_KEEPCAPS ([`keep_caps`]).
//! A listed capability that tend itself does not have cannot be given: it is
//! left out (the child intersects with its permitted set) and
//! [`ConfinePlan::notice`] says so.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::unit::{FilesystemBackend, SandboxSpec};

step_codes! {
    /// The child steps, for error reports. Numbered from 64 so that they can
    /// share a status-pipe word with the spawner's own steps.
    pub enum ConfineStep {
        UnshareMount = 64,
        UnshareNetwork = 65,
        UnshareUts = 66,
        UnshareIpc = 67,
        MountsPrivate = 68,
        ReadOnly = 69,
        ReadWrite = 70,
        PrivateTmp = 71,
        Inaccessible = 72,
        Loopback = 73,
        Hostname = 74,
        KeepCaps = 75,
        ReadCaps = 76,
        BoundingSet = 77,
        SetCaps = 78,
        ClearAmbient = 79,
        RaiseAmbient = 80,
        NoNewPrivs = 81,
        Landlock = 82,
        ProcMount = 83,
        Reaper = 84,
    }
}

impl ConfineStep {
    /// `cannot VERB OBJECT`, without the object: see
    /// [`ConfinePlan::describe_failure`] for the message with it.
    pub fn describe(self) -> &'static str {
        match self {
            ConfineStep::UnshareMount => "cannot create a mount namespace",
            ConfineStep::UnshareNetwork => "cannot create a network namespace",
            ConfineStep::UnshareUts => "cannot create a UTS namespace",
            ConfineStep::UnshareIpc => "cannot create an IPC namespace",
            ConfineStep::MountsPrivate => "cannot make the mounts private",
            ConfineStep::ReadOnly => "cannot make a path read-only",
            ConfineStep::ReadWrite => "cannot make a path writable",
            ConfineStep::PrivateTmp => "cannot mount a private temporary directory",
            ConfineStep::Inaccessible => "cannot make a path inaccessible",
            ConfineStep::Loopback => "cannot bring up the loopback interface",
            ConfineStep::Hostname => "cannot set the hostname",
            ConfineStep::KeepCaps => "cannot keep capabilities across the user change",
            ConfineStep::ReadCaps => "cannot read the capability sets",
            ConfineStep::BoundingSet => "cannot drop capabilities",
            ConfineStep::SetCaps => "cannot set the capability sets",
            ConfineStep::ClearAmbient => "cannot clear the ambient capabilities",
            ConfineStep::RaiseAmbient => "cannot raise an ambient capability",
            ConfineStep::NoNewPrivs => "cannot set no_new_privs",
            ConfineStep::Landlock => "cannot apply the landlock ruleset",
            ConfineStep::ProcMount => "cannot mount a /proc of the service's own",
            ConfineStep::Reaper => "cannot start the reaper of the service's PID namespace",
        }
    }

    /// A hint to print after the message, for failures with a usual cause.
    pub fn hint(self, errno: i32) -> Option<&'static str> {
        let namespace = matches!(
            self,
            ConfineStep::UnshareMount
                | ConfineStep::UnshareNetwork
                | ConfineStep::UnshareUts
                | ConfineStep::UnshareIpc
                | ConfineStep::MountsPrivate
                | ConfineStep::ReadOnly
                | ConfineStep::ReadWrite
                | ConfineStep::PrivateTmp
                | ConfineStep::Inaccessible
                | ConfineStep::Hostname
                | ConfineStep::ProcMount
        );
        if namespace && errno == libc::EPERM {
            Some(
                "namespaces and mounts need CAP_SYS_ADMIN (tend is unprivileged or in a container \
                 that forbids them); `filesystem: landlock` enforces path rules without privileges",
            )
        } else if matches!(self, ConfineStep::BoundingSet | ConfineStep::SetCaps) && errno == libc::EPERM {
            Some("changing capabilities needs CAP_SETPCAP")
        } else {
            None
        }
    }
}

/// A child step failed: which one, with which errno, on which object (an
/// index that [`ConfinePlan::describe_object`] turns back into a path or a
/// capability name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfineError {
    pub step: ConfineStep,
    pub errno: i32,
    pub index: u32,
}

/// One mount(2) call, prepared in the parent.
#[derive(Debug)]
struct MountOp {
    source: Option<CString>,
    target: CString,
    fstype: Option<CString>,
    flags: libc::c_ulong,
    data: Option<CString>,
    step: ConfineStep,
    /// Into `ConfinePlan::objects`.
    index: u32,
    /// A submount that may be hidden by another mount, or not copied by a
    /// recursive bind (unbindable): ENOENT, ENOTDIR and EINVAL are ignored.
    optional: bool,
}

/// `struct __user_cap_header_struct`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// What the child does with capabilities.
#[derive(Debug)]
struct CapPlan {
    /// The listed capabilities as a mask.
    keep: u64,
    /// The service runs as a uid other than 0: keep caps across setresuid
    /// and raise the listed ones as ambient.
    non_root: bool,
    /// Every capability number up to the kernel's last one.
    last_cap: u8,
}

/// `struct ifreq` with the flags member, as SIOCGIFFLAGS/SIOCSIFFLAGS use it.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct IfreqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Everything the confinement child steps need, built before fork.
#[derive(Debug)]
pub struct ConfinePlan {
    unshare_mount: bool,
    unshare_network: bool,
    unshare_uts: bool,
    unshare_ipc: bool,
    /// The child was cloned into a new PID namespace (`private_pids`): it
    /// is PID 1 there, and becomes the reaper of the service it forks.
    pid_namespace: bool,
    mounts: Vec<MountOp>,
    hostname: Option<Vec<u8>>,
    caps: Option<CapPlan>,
    no_new_privs: bool,
    /// A filled ruleset (close-on-exec), restricted onto the child.
    landlock: Option<OwnedFd>,
    /// Paths the mount indexes refer to.
    objects: Vec<String>,
    notice: Option<String>,
}

/// One line of /proc/self/mountinfo, as far as confinement cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    /// Per-mount flags to keep on a remount: MS_RDONLY, MS_NOSUID, MS_NODEV,
    /// MS_NOEXEC and the atime ones (MS_STRICTATIME when neither relatime
    /// nor noatime is set).
    pub flags: libc::c_ulong,
}

/// Unescape the octal escapes (`\040` for a space) mountinfo uses.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() {
            let digits = &field[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

fn mount_flags(options: &[u8]) -> libc::c_ulong {
    let mut flags = 0;
    let mut atime = false;
    for option in options.split(|b| *b == b',') {
        flags |= match option {
            b"ro" => libc::MS_RDONLY,
            b"nosuid" => libc::MS_NOSUID,
            b"nodev" => libc::MS_NODEV,
            b"noexec" => libc::MS_NOEXEC,
            b"nodiratime" => libc::MS_NODIRATIME,
            b"relatime" => {
                atime = true;
                libc::MS_RELATIME
            }
            b"noatime" => {
                atime = true;
                libc::MS_NOATIME
            }
            _ => 0,
        };
    }
    if !atime {
        flags |= libc::MS_STRICTATIME;
    }
    flags
}

/// Parse /proc/self/mountinfo (proc(5)): mount points and per-mount flags,
/// in the kernel's order. Malformed lines are skipped.
pub fn parse_mountinfo(text: &[u8]) -> Vec<MountEntry> {
    text.split(|b| *b == b'\n')
        .filter_map(|line| {
            // id parent major:minor root mount_point options [optional…] - fstype source super
            let mut fields = line.split(|b| *b == b' ');
            let mount_point = fields.nth(4)?;
            let options = fields.next()?;
            if !mount_point.starts_with(b"/") {
                return None;
            }
            let mount_point = PathBuf::from(OsString::from_vec(unescape(mount_point)));
            Some(MountEntry { mount_point, flags: mount_flags(options) })
        })
        .collect()
}

/// The mount whose tree holds `path`: the last entry (the topmost when
/// stacked) with the longest mount point that is an ancestor of it.
pub fn containing_mount<'a>(entries: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    let mut best: Option<&MountEntry> = None;
    for entry in entries {
        if path.starts_with(&entry.mount_point)
            && !matches!(best, Some(b) if entry.mount_point.as_os_str().len() < b.mount_point.as_os_str().len())
        {
            best = Some(entry);
        }
    }
    best
}

/// Mounts strictly under `path`, visible ones only (an entry is left out
/// when a later one is mounted on it or on one of its ancestors below
/// `path`, which hides it), each mount point once, in kernel order.
pub fn submounts<'a>(entries: &'a [MountEntry], path: &Path) -> Vec<&'a MountEntry> {
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.mount_point == path || !entry.mount_point.starts_with(path) {
            continue;
        }
        let hidden = entries[i + 1..].iter().any(|later| {
            later.mount_point != path
                && entry.mount_point.starts_with(&later.mount_point)
                && later.mount_point.starts_with(path)
        });
        if !hidden {
            out.push(entry);
        }
    }
    out
}

fn cstring(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("{} contains a NUL byte", path.display()))
}

use crate::unit::values::capability_name;

/// The highest capability number the running kernel knows.
fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse::<u8>().ok())
        .filter(|n| *n < 64)
        .unwrap_or_else(|| caps::all().into_iter().map(|c| c.index()).max().unwrap_or(40))
}

/// The Landlock ABI version of the running kernel; 0 when it has none.
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    // SAFETY: with a NULL attribute pointer, size 0 and the VERSION flag the
    // kernel only returns a number; no memory is read or written.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if version < 0 {
        0
    } else {
        version as i32
    }
}

/// The backend a spec resolves to, given whether tend holds CAP_SYS_ADMIN.
pub fn choose_backend(backend: FilesystemBackend, has_sys_admin: bool) -> FilesystemBackend {
    match backend {
        FilesystemBackend::Auto if has_sys_admin => FilesystemBackend::Mounts,
        FilesystemBackend::Auto => FilesystemBackend::Landlock,
        other => other,
    }
}

/// Make a path absolute and free of symlinks when it exists (mount follows
/// symlinks, and mountinfo lists canonical paths); keep it as written
/// otherwise.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn exists_or_err(path: &Path, key: &str) -> Result<(), String> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| format!("cannot use {} ({key}): {}", path.display(), tend_core::text::error_text(&e)))
}

/// A path rule for the mount backend: read-only or writable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathRule {
    path: PathBuf,
    writable: bool,
}

/// The filesystem rules of the mount backend, in the order the child runs
/// them, from the spec's (canonical) paths and the parent's mount table.
/// Pure, for tests: existence checks happen before.
#[derive(Debug, Default)]
struct MountPlanBuilder {
    mounts: Vec<MountOp>,
    objects: Vec<String>,
}

impl MountPlanBuilder {
    fn object(&mut self, path: &Path) -> u32 {
        let name = path.display().to_string();
        if let Some(at) = self.objects.iter().position(|o| *o == name) {
            return at as u32;
        }
        self.objects.push(name);
        (self.objects.len() - 1) as u32
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
        step: ConfineStep,
        object: &Path,
        optional: bool,
    ) -> Result<(), String> {
        let index = self.object(object);
        self.mounts.push(MountOp {
            source: source.map(cstring).transpose()?,
            target: cstring(target)?,
            fstype: fstype.map(|t| cstring(Path::new(t))).transpose()?,
            flags,
            data: data.map(|d| cstring(Path::new(d))).transpose()?,
            step,
            index,
            optional,
        });
        Ok(())
    }

    /// read_only and read_write rules, shorter paths first (the most
    /// specific wins); for each: bind onto itself unless it is a mount point
    /// already, then remount it and every submount.
    fn path_rules(&mut self, rules: &[PathRule], entries: &[MountEntry]) -> Result<(), String> {
        let mut rules = rules.to_vec();
        rules.sort_by_key(|r| (r.path.components().count(), r.writable));
        const KEEP: libc::c_ulong = libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC
            | libc::MS_NODIRATIME
            | libc::MS_RELATIME
            | libc::MS_NOATIME
            | libc::MS_STRICTATIME;
        for rule in &rules {
            let step = if rule.writable { ConfineStep::ReadWrite } else { ConfineStep::ReadOnly };
            let path = rule.path.as_path();
            let flags_for = |original: libc::c_ulong| {
                let base = libc::MS_REMOUNT | libc::MS_BIND;
                if rule.writable {
                    base | (original & (KEEP | libc::MS_RDONLY))
                } else {
                    base | libc::MS_RDONLY | (original & KEEP)
                }
            };
            let is_mount_point = entries.iter().any(|e| e.mount_point == path);
            // "/" cannot be bound onto itself (the new mount would sit above
            // the process's root, out of reach); it is a mount point anyway.
            if !is_mount_point && path != Path::new("/") {
                let bind = libc::MS_BIND | libc::MS_REC;
                self.push(Some(path), path, None, bind, None, step, path, false)?;
            }
            let original = containing_mount(entries, path).map_or(0, |e| e.flags);
            self.push(None, path, None, flags_for(original), None, step, path, false)?;
            for sub in submounts(entries, path) {
                let at = sub.mount_point.as_path();
                self.push(None, at, None, flags_for(sub.flags), None, step, at, true)?;
            }
        }
        Ok(())
    }
}

impl ConfinePlan {
    /// Build the plan in the parent. `uid` is the uid the service will run
    /// as (after the identity change), `None` for tend's own.
    pub fn new(spec: &SandboxSpec, uid: Option<u32>) -> Result<ConfinePlan, String> {
        let has_sys_admin =
            caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).unwrap_or(false);
        // SAFETY: geteuid cannot fail and has no side effect.
        let target_uid = uid.unwrap_or_else(|| unsafe { libc::geteuid() });
        let mountinfo = if spec.has_filesystem_rules() || spec.own_proc() {
            std::fs::read("/proc/self/mountinfo").unwrap_or_default()
        } else {
            Vec::new()
        };
        let landlock = |rules: &LandlockRules| build_landlock_ruleset(rules, landlock_abi());
        let permitted = caps::read(None, caps::CapSet::Permitted)
            .map(|set| set.iter().fold(0u64, |mask, cap| mask | cap.bitmask()))
            .unwrap_or(0);
        ConfinePlan::build(
            spec,
            &Environment {
                has_sys_admin,
                target_uid,
                mountinfo: &mountinfo,
                last_cap: last_cap(),
                permitted,
            },
            &landlock,
        )
    }

    fn build(
        spec: &SandboxSpec,
        env: &Environment,
        landlock: &dyn Fn(&LandlockRules) -> Result<OwnedFd, String>,
    ) -> Result<ConfinePlan, String> {
        let mut notices: Vec<String> = Vec::new();
        let backend = choose_backend(spec.filesystem, env.has_sys_admin);
        let fs_rules = spec.has_filesystem_rules();
        let own_proc = spec.own_proc();
        if own_proc && fs_rules && backend == FilesystemBackend::Landlock {
            return Err(
                "private_pids and protect_proc need a mount namespace (CAP_SYS_ADMIN), and the path \
                        rules would be enforced with Landlock: tend lacks CAP_SYS_ADMIN"
                    .into(),
            );
        }
        let mount_ns = (fs_rules && backend == FilesystemBackend::Mounts) || own_proc;
        let mut plan = ConfinePlan {
            unshare_mount: mount_ns,
            unshare_network: spec.private_network,
            unshare_uts: spec.hostname.is_some(),
            unshare_ipc: spec.private_ipc,
            pid_namespace: spec.private_pids,
            mounts: Vec::new(),
            hostname: spec.hostname.as_ref().map(|h| h.as_bytes().to_vec()),
            caps: None,
            no_new_privs: spec.no_new_privileges,
            landlock: None,
            objects: Vec::new(),
            notice: None,
        };
        if let Some(name) = &plan.hostname {
            if name.is_empty() || name.len() > 64 || name.contains(&0) {
                return Err(format!(
                    "hostname {:?} is not a valid host name",
                    spec.hostname.as_deref().unwrap_or("")
                ));
            }
        }
        let namespaces = plan.unshare_mount
            || plan.unshare_network
            || plan.unshare_uts
            || plan.unshare_ipc
            || plan.pid_namespace;
        if namespaces && !env.has_sys_admin {
            notices.push(
                "namespaces (private_network, hostname, private_ipc, private_pids, protect_proc or mount rules) \
                 need CAP_SYS_ADMIN, which tend lacks: the service will fail to start"
                    .to_string(),
            );
        }

        if fs_rules {
            let read_only: Vec<PathBuf> = spec.read_only_paths.iter().map(|p| canonical(p)).collect();
            let read_write: Vec<PathBuf> = spec.read_write_paths.iter().map(|p| canonical(p)).collect();
            for (path, key) in read_only
                .iter()
                .map(|p| (p, "read_only_paths"))
                .chain(read_write.iter().map(|p| (p, "read_write_paths")))
            {
                exists_or_err(path, key)?;
            }
            // Inaccessible paths that do not exist hide nothing.
            let inaccessible: Vec<(PathBuf, bool)> = spec
                .inaccessible_paths
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok().map(|m| (canonical(p), m.is_dir())))
                .collect();
            if backend == FilesystemBackend::Mounts {
                plan.plan_mounts(spec, &read_only, &read_write, &inaccessible, env)?;
            } else {
                if spec.filesystem == FilesystemBackend::Auto {
                    notices.push(
                        "filesystem rules enforced with Landlock: no mount namespace without CAP_SYS_ADMIN"
                            .to_string(),
                    );
                }
                let rules = landlock_rules(spec, &read_only, &read_write, &inaccessible)?;
                plan.landlock = Some(landlock(&rules)?);
                plan.no_new_privs = true;
            }
        } else if own_proc {
            plan.plan_mounts(spec, &[], &[], &[], env)?;
        }

        if let Some(listed) = &spec.capabilities {
            let mut keep = 0u64;
            for &cap in listed {
                if cap > env.last_cap || cap >= 64 {
                    return Err(format!("{} is not known to this kernel", capability_name(cap.into())));
                }
                keep |= 1 << cap;
            }
            let missing = keep & !env.permitted;
            if missing != 0 {
                let names: Vec<String> =
                    (0..64).filter(|n| missing & (1 << n) != 0).map(capability_name).collect();
                notices.push(format!(
                    "tend does not have {}, so the service cannot have it either",
                    names.join(", ")
                ));
            }
            if env.permitted & caps::Capability::CAP_SETPCAP.bitmask() == 0 {
                notices.push(
                    "capabilities need CAP_SETPCAP (to drop the bounding set), which tend lacks: \
                     the service will fail to start"
                        .to_string(),
                );
            }
            plan.caps = Some(CapPlan { keep, non_root: env.target_uid != 0, last_cap: env.last_cap });
        }

        if !notices.is_empty() {
            plan.notice = Some(notices.join("; "));
        }
        Ok(plan)
    }

    fn plan_mounts(
        &mut self,
        spec: &SandboxSpec,
        read_only: &[PathBuf],
        read_write: &[PathBuf],
        inaccessible: &[(PathBuf, bool)],
        env: &Environment,
    ) -> Result<(), String> {
        let entries = parse_mountinfo(env.mountinfo);
        let mut builder = MountPlanBuilder::default();
        let root = Path::new("/");
        builder.push(
            None,
            root,
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
            ConfineStep::MountsPrivate,
            root,
            false,
        )?;
        let rules: Vec<PathRule> = read_only
            .iter()
            .map(|p| PathRule { path: p.clone(), writable: false })
            .chain(read_write.iter().map(|p| PathRule { path: p.clone(), writable: true }))
            .collect();
        builder.path_rules(&rules, &entries)?;
        let mut tmp_dirs: Vec<PathBuf> = Vec::new();
        if spec.private_tmp {
            for dir in ["/tmp", "/var/tmp"] {
                let Ok(meta) = std::fs::metadata(dir) else { continue };
                let dir = canonical(Path::new(dir));
                if !meta.is_dir() || tmp_dirs.contains(&dir) {
                    continue;
                }
                let flags = libc::MS_NOSUID | libc::MS_NODEV;
                builder.push(
                    Some(Path::new("tmpfs")),
                    &dir,
                    Some("tmpfs"),
                    flags,
                    Some("mode=1777"),
                    ConfineStep::PrivateTmp,
                    &dir,
                    false,
                )?;
                tmp_dirs.push(dir);
            }
        }
        // A /proc of its own, after the path rules (they remount the
        // host's /proc with the rest, and this one goes on top) and before
        // the inaccessible paths (which may be under /proc). Read-only when
        // the most specific rule over /proc is a read-only one.
        if spec.own_proc() {
            let proc_path = Path::new("/proc");
            let covering = read_only
                .iter()
                .map(|p| (p, false))
                .chain(read_write.iter().map(|p| (p, true)))
                .filter(|(p, _)| proc_path.starts_with(p))
                .max_by_key(|(p, writable)| (p.components().count(), *writable));
            let mut flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            if covering.is_some_and(|(_, writable)| !writable) {
                flags |= libc::MS_RDONLY;
            }
            let data = spec.protect_proc.hidepid().map(|h| format!("hidepid={h}"));
            builder.push(
                Some(Path::new("proc")),
                proc_path,
                Some("proc"),
                flags,
                data.as_deref(),
                ConfineStep::ProcMount,
                proc_path,
                false,
            )?;
        }
        // Files first: they bind /dev/null, which a directory rule on /dev
        // would hide.
        let hidden = |path: &Path| tmp_dirs.iter().any(|t| path.starts_with(t) && path != t);
        let step = ConfineStep::Inaccessible;
        for (path, _) in inaccessible.iter().filter(|(p, dir)| !dir && !hidden(p)) {
            builder.push(Some(Path::new("/dev/null")), path, None, libc::MS_BIND, None, step, path, false)?;
            let flags = libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC;
            builder.push(None, path, None, flags, None, step, path, false)?;
        }
        for (path, _) in inaccessible.iter().filter(|(p, dir)| *dir && !hidden(p)) {
            let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            let source = Some(Path::new("tmpfs"));
            builder.push(source, path, Some("tmpfs"), flags, Some("mode=000"), step, path, false)?;
        }
        self.mounts = builder.mounts;
        self.objects = builder.objects;
        Ok(())
    }

    /// The child is cloned into a new PID namespace and reaps for the
    /// service (`private_pids`).
    pub fn pid_namespace(&self) -> bool {
        self.pid_namespace
    }

    /// Nothing to do: every sandbox key has its default.
    pub fn is_empty(&self) -> bool {
        !self.pid_namespace
            && !self.unshare_mount
            && !self.unshare_network
            && !self.unshare_uts
            && !self.unshare_ipc
            && self.mounts.is_empty()
            && self.hostname.is_none()
            && self.caps.is_none()
            && !self.no_new_privs
            && self.landlock.is_none()
    }

    /// A warning to print once when the service starts, if any.
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// Filesystem rules are enforced with Landlock (not a mount namespace).
    #[cfg(test)]
    pub fn uses_landlock(&self) -> bool {
        self.landlock.is_some()
    }

    /// What a failed step acted on: a path, a capability name, or the
    /// hostname; empty when the step has no object.
    pub fn describe_object(&self, step: ConfineStep, index: u32) -> String {
        match step {
            ConfineStep::MountsPrivate
            | ConfineStep::ReadOnly
            | ConfineStep::ReadWrite
            | ConfineStep::PrivateTmp
            | ConfineStep::ProcMount
            | ConfineStep::Inaccessible => self.objects.get(index as usize).cloned().unwrap_or_default(),
            ConfineStep::BoundingSet | ConfineStep::RaiseAmbient => capability_name(index),
            ConfineStep::Hostname => {
                self.hostname.as_ref().map(|h| String::from_utf8_lossy(h).into_owned()).unwrap_or_default()
            }
            _ => String::new(),
        }
    }

    /// `cannot VERB OBJECT` for a failed step ("cannot make /srv
    /// read-only"); the caller appends `: reason`.
    pub fn describe_failure(&self, step: ConfineStep, index: u32) -> String {
        let object = self.describe_object(step, index);
        match step {
            ConfineStep::MountsPrivate => format!("cannot make the mounts under {object} private"),
            ConfineStep::ReadOnly => format!("cannot make {object} read-only"),
            ConfineStep::ReadWrite => format!("cannot make {object} writable"),
            ConfineStep::PrivateTmp => format!("cannot mount a private {object}"),
            ConfineStep::Inaccessible => format!("cannot make {object} inaccessible"),
            ConfineStep::Hostname => format!("cannot set the hostname to {object}"),
            ConfineStep::BoundingSet => format!("cannot drop {object} from the bounding set"),
            ConfineStep::RaiseAmbient => format!("cannot raise {object} as an ambient capability"),
            other => other.describe().to_string(),
        }
    }
}

/// What the parent knows about tend and the host, as a value for tests.
struct Environment<'a> {
    has_sys_admin: bool,
    target_uid: u32,
    mountinfo: &'a [u8],
    last_cap: u8,
    /// tend's permitted capabilities, as a mask.
    permitted: u64,
}

/// Landlock rules: each path with the rights it gets (read+execute, or
/// everything), and whether it is a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockRules {
    pub rules: Vec<LandlockRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockRule {
    pub path: PathBuf,
    pub writable: bool,
}

/// Devices that stay writable on a read-only bind mount, and that most
/// programs open (`> /dev/null`): always given read-write rights under
/// Landlock.
const LANDLOCK_DEVICES: [&str; 6] =
    ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"];

/// The Landlock rules for a spec (canonical paths), or why Landlock cannot
/// enforce it.
fn landlock_rules(
    spec: &SandboxSpec,
    read_only: &[PathBuf],
    read_write: &[PathBuf],
    inaccessible: &[(PathBuf, bool)],
) -> Result<LandlockRules, String> {
    if spec.private_tmp {
        return Err(
            "private_tmp needs a mount namespace (CAP_SYS_ADMIN), which Landlock cannot replace".into()
        );
    }
    if read_only.is_empty() && read_write.is_empty() {
        return Err("with Landlock, filesystem rules deny by default: inaccessible_paths alone would deny \
                    every file; list what the service may use in read_only_paths (e.g. /)"
            .into());
    }
    for (path, _) in inaccessible {
        if let Some(parent) = read_only.iter().chain(read_write).find(|p| path.starts_with(p)) {
            return Err(format!(
                "inaccessible path {} is under {}, and Landlock can only grant access, not take it back: \
                 list narrower read_only_paths, or use the mounts backend (needs CAP_SYS_ADMIN)",
                path.display(),
                parent.display()
            ));
        }
    }
    let mut rules: Vec<LandlockRule> = read_only
        .iter()
        .map(|p| LandlockRule { path: p.clone(), writable: false })
        .chain(read_write.iter().map(|p| LandlockRule { path: p.clone(), writable: true }))
        .collect();
    for device in LANDLOCK_DEVICES {
        let device = Path::new(device);
        let covered = read_write.iter().any(|p| device.starts_with(p));
        if !covered && device.exists() {
            rules.push(LandlockRule { path: device.to_path_buf(), writable: true });
        }
    }
    Ok(LandlockRules { rules })
}

/// Create and fill a Landlock ruleset with the `landlock` crate (this
/// allocates: parent only), and hand back its close-on-exec descriptor.
fn build_landlock_ruleset(rules: &LandlockRules, abi_version: i32) -> Result<OwnedFd, String> {
    use landlock::{
        Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
        RulesetCreatedAttr, ABI,
    };
    if abi_version < 1 {
        return Err("filesystem rules need a mount namespace (CAP_SYS_ADMIN) or Landlock, \
                    and Landlock is not available on this kernel (or not enabled at boot)"
            .into());
    }
    let abi = ABI::from(abi_version);
    let error = |e: &dyn std::fmt::Display| format!("cannot build the landlock ruleset: {e}");
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| error(&e))?
        .create()
        .map_err(|e| error(&e))?;
    for rule in &rules.rules {
        let fd = PathFd::new(&rule.path).map_err(|e| error(&e))?;
        let is_dir = std::fs::metadata(&rule.path).map(|m| m.is_dir()).unwrap_or(false);
        let mut access = if rule.writable { AccessFs::from_all(abi) } else { AccessFs::from_read(abi) };
        if !is_dir {
            access &= AccessFs::from_file(abi);
        }
        ruleset = ruleset.add_rule(PathBeneath::new(fd, access)).map_err(|e| error(&e))?;
    }
    let fd: Option<OwnedFd> = ruleset.into();
    fd.ok_or_else(|| "filesystem rules need Landlock, which is not available on this kernel".to_string())
}

// ---------------------------------------------------------------------------
// Child side: async-signal-safe, no allocation.

fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn check(rc: libc::c_long, step: ConfineStep, index: u32) -> Result<(), ConfineError> {
    if rc == -1 {
        Err(ConfineError { step, errno: errno(), index })
    } else {
        Ok(())
    }
}

fn ptr_or_null(value: &Option<CString>) -> *const libc::c_char {
    value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr())
}

/// Unshare the namespaces asked for, set up the mounts, bring up the
/// loopback interface and set the hostname. Call while still privileged.
pub fn enter_namespaces(plan: &ConfinePlan) -> Result<(), ConfineError> {
    let unshares = [
        (plan.unshare_mount, libc::CLONE_NEWNS, ConfineStep::UnshareMount),
        (plan.unshare_network, libc::CLONE_NEWNET, ConfineStep::UnshareNetwork),
        (plan.unshare_uts, libc::CLONE_NEWUTS, ConfineStep::UnshareUts),
        (plan.unshare_ipc, libc::CLONE_NEWIPC, ConfineStep::UnshareIpc),
    ];
    for (wanted, flag, step) in unshares {
        if wanted {
            // SAFETY: unshare takes an integer.
            check(unsafe { libc::unshare(flag) }.into(), step, 0)?;
        }
    }
    for op in &plan.mounts {
        // SAFETY: every pointer is NULL or a NUL-terminated string owned by
        // the plan, which outlives the call.
        let rc = unsafe {
            libc::mount(
                ptr_or_null(&op.source),
                op.target.as_ptr(),
                ptr_or_null(&op.fstype),
                op.flags,
                ptr_or_null(&op.data).cast(),
            )
        };
        if rc == -1 {
            let error = errno();
            if op.optional && matches!(error, libc::ENOENT | libc::ENOTDIR | libc::EINVAL) {
                continue;
            }
            return Err(ConfineError { step: op.step, errno: error, index: op.index });
        }
    }
    if plan.unshare_network {
        loopback_up()?;
    }
    if let Some(name) = &plan.hostname {
        // SAFETY: name points to name.len() bytes owned by the plan.
        let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
        check(rc.into(), ConfineStep::Hostname, 0)?;
    }
    Ok(())
}

fn loopback_up() -> Result<(), ConfineError> {
    let step = ConfineStep::Loopback;
    // SAFETY: socket takes integers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd.into(), step, 0)?;
    let mut request = IfreqFlags { name: [0; 16], flags: 0, _pad: [0; 22] };
    request.name[..2].copy_from_slice(b"lo");
    // SAFETY: the request is a local struct laid out as struct ifreq (name,
    // then the flags member of the union, padded to its full size).
    let mut rc = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) };
    if rc != -1 {
        request.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        // SAFETY: as above.
        rc = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) };
    }
    let error = errno();
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    if rc == -1 {
        return Err(ConfineError { step, errno: error, index: 0 });
    }
    Ok(())
}

/// Before setresuid: a non-root service that keeps capabilities keeps its
/// permitted set across the uid change.
pub fn keep_caps(plan: &ConfinePlan) -> Result<(), ConfineError> {
    match &plan.caps {
        Some(caps) if caps.non_root => {
            // SAFETY: prctl with integer arguments.
            let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1 as libc::c_ulong, 0, 0, 0) };
            check(rc.into(), ConfineStep::KeepCaps, 0)
        }
        _ => Ok(()),
    }
}

fn capget(data: &mut [CapData; 2]) -> Result<(), ConfineError> {
    let mut header = CapHeader { version: CAP_VERSION_3, pid: 0 };
    // SAFETY: header and data are local; version 3 uses two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    check(rc, ConfineStep::ReadCaps, 0)
}

fn capset(data: &[CapData; 2], step: ConfineStep) -> Result<(), ConfineError> {
    let mut header = CapHeader { version: CAP_VERSION_3, pid: 0 };
    // SAFETY: header and data are local; version 3 reads two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    check(rc, step, 0)
}

fn split(mask: u64) -> [u32; 2] {
    [mask as u32, (mask >> 32) as u32]
}

/// After setresuid: bounding set, then permitted/effective/inheritable, then
/// ambient (see the module header).
pub fn apply_capabilities(plan: &ConfinePlan) -> Result<(), ConfineError> {
    let Some(caps) = &plan.caps else { return Ok(()) };
    let mut data = [CapData::default(); 2];
    capget(&mut data)?;
    // Effective = permitted, so that CAP_SETPCAP (needed for the bounding
    // set) is usable even after a uid change cleared the effective set.
    for d in &mut data {
        d.effective = d.permitted;
    }
    capset(&data, ConfineStep::SetCaps)?;
    let permitted = u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32);
    for cap in 0..=caps.last_cap {
        if caps.keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
        if present == 1 {
            // SAFETY: prctl with integer arguments.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            check(rc.into(), ConfineStep::BoundingSet, cap.into())?;
        }
    }
    let keep = caps.keep & permitted;
    let [low, high] = split(keep);
    let sets = [
        CapData { effective: low, permitted: low, inheritable: low },
        CapData { effective: high, permitted: high, inheritable: high },
    ];
    capset(&sets, ConfineStep::SetCaps)?;
    let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, clear, 0, 0, 0) };
    check(rc.into(), ConfineStep::ClearAmbient, 0)?;
    if caps.non_root {
        for cap in 0..=caps.last_cap {
            if keep & (1 << cap) == 0 {
                continue;
            }
            let raise = libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong;
            // SAFETY: prctl with integer arguments.
            let rc = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, raise, libc::c_ulong::from(cap), 0, 0) };
            check(rc.into(), ConfineStep::RaiseAmbient, cap.into())?;
        }
    }
    Ok(())
}

/// PR_SET_NO_NEW_PRIVS, when the unit asks for it or Landlock needs it.
pub fn no_new_privs(plan: &ConfinePlan) -> Result<(), ConfineError> {
    if !plan.no_new_privs {
        return Ok(());
    }
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    check(rc.into(), ConfineStep::NoNewPrivs, 0)
}

/// Restrict the child with the ruleset the parent filled. Needs
/// no_new_privs (set by [`no_new_privs`], which the plan forces on).
pub fn landlock(plan: &ConfinePlan) -> Result<(), ConfineError> {
    let Some(fd) = &plan.landlock else { return Ok(()) };
    // SAFETY: integer arguments; the descriptor is owned by the plan and
    // open in the child (close-on-exec only).
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32) };
    check(rc, ConfineStep::Landlock, 0)
}

#[cfg(test)]
#[path = "confine_tests.rs"]
mod tests;
