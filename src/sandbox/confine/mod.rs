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

mod child;
mod landlock;
mod mounts;
mod step;

pub(crate) use child::{apply_capabilities, enter_namespaces, keep_caps, landlock, no_new_privs};
pub(crate) use step::{ConfineError, ConfineStep};

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::unit::values::capability_name;
use crate::unit::{FilesystemBackend, SandboxSpec};
use landlock::{build_landlock_ruleset, landlock_abi, landlock_rules, LandlockRules};
#[cfg(test)]
use mounts::{containing_mount, submounts};
use mounts::{parse_mountinfo, MountOp, MountPlanBuilder, PathRule};

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

/// The highest capability number the running kernel knows.
fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse::<u8>().ok())
        .filter(|n| *n < 64)
        .unwrap_or_else(|| caps::all().into_iter().map(|c| c.index()).max().unwrap_or(40))
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

impl ConfinePlan {
    /// Build the plan in the parent. `uid` is the uid the service will run
    /// as (after the identity change), `None` for tend's own.
    pub fn new(spec: &SandboxSpec, uid: Option<u32>) -> Result<ConfinePlan, String> {
        let has_sys_admin =
            caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).unwrap_or(false);
        let target_uid = uid.unwrap_or_else(|| nix::unistd::geteuid().as_raw());
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

// `*_tests.rs`: test code, which forks and waits in the test process (the
// checks of one waiter and one fork site leave such files out).
#[cfg(test)]
mod confine_tests;
