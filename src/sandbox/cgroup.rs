//! The cgroup manager: one cgroup per service under tend's own, limits written
//! to the files of `/sys/fs/cgroup` directly (no crate), joined by the child
//! before exec, and killed as a whole on stop.
//!
//! # Choosing a hierarchy, per controller
//!
//! * **Membership and killing** use the v2 (unified) hierarchy whenever cgroup2
//!   is mounted and tend may write there: `cgroup.procs`, `cgroup.kill` and
//!   `cgroup.events` work without any controller. Without v2, a v1 hierarchy:
//!   the freezer when there is one (freeze, kill, thaw), else pids, memory, cpu
//!   (kill until empty).
//! * **Limits** (memory, pids, cpu) use v2 when the controller is usable there:
//!   listed in tend's `cgroup.controllers` and either already enabled in its
//!   `cgroup.subtree_control` or enable-able because tend is alone in its
//!   cgroup. Otherwise the controller's v1 hierarchy. Otherwise `supports`
//!   says what is missing.
//!
//! # Joining
//!
//! The child joins before exec, so that no process of the service ever runs
//! outside its cgroups: into v2 at clone time (clone3 `CLONE_INTO_CGROUP`),
//! into v1 by writing `0` to each hierarchy's `tasks` ([`join_file`] says why
//! not `cgroup.procs`: an RCU grace period per join). [`v1_joins`] decides
//! which v1 hierarchies a service joins.
//!
//! # Where the cgroups go (v2)
//!
//! * tend alone in a non-root cgroup `OWN` (a container's PID 1 with its own
//!   cgroup namespace, a systemd service with `Delegate=yes`): tend moves itself
//!   into the leaf `OWN/supervisor` (the "no internal processes" rule), enables
//!   the controllers in `OWN/cgroup.subtree_control`, and services are
//!   `OWN/NAME.service`.
//! * otherwise (tend shares its cgroup, or sits in the real root as on the
//!   hybrid CI host): services are `OWN/tend-PID/NAME.service`; controllers are
//!   used only if `OWN` already hands them down. The root's `subtree_control`
//!   is never touched.
//!
//! v1 hierarchies always get `OWN_V1/tend-PID/NAME.service`, so two tend
//! instances in the same cgroup never share (or kill) each other's services.
//! The `.service` suffix keeps a unit called `cgroup.procs` or `supervisor`
//! from colliding with a cgroup file or with tend's own leaf.
//!
//! Nothing is written by [`CgroupManager::detect`]: directories are made on the
//! first [`CgroupManager::create`], so `tend check` can ask [`supports`]
//! without side effects.
//!
//! [`supports`]: CgroupManager::supports

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::unit::ResourcesSpec;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

mod layout;
#[cfg(test)]
mod tests;

pub use layout::{parse_layout, Layout};

/// The controllers tend sets limits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where one controller's limits are written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    V2,
    /// Index into `Layout::v1`.
    V1(usize),
    /// Why it cannot be used.
    Missing(String),
}

/// Which hierarchy holds membership (and is used to kill and to list pids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    V2,
    V1(usize),
}

/// The v2 part of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct V2Plan {
    /// tend's own cgroup.
    own: PathBuf,
    /// Parent of the services' cgroups: `own` when delegated, else `own/tend-PID`.
    base: PathBuf,
    /// tend is alone in `own` and moves itself into `own/supervisor`.
    delegate: bool,
}

/// Facts read from the file system by [`CgroupManager::detect`]; tests make
/// them up.
#[derive(Debug, Clone)]
pub struct Probe {
    pub pid: i32,
    /// `cgroup.controllers` of tend's v2 cgroup.
    pub v2_controllers: Vec<String>,
    /// `cgroup.subtree_control` of tend's v2 cgroup.
    pub v2_subtree: Vec<String>,
    /// `cgroup.procs` of tend's v2 cgroup.
    pub v2_procs: Vec<i32>,
    /// tend's v2 cgroup is the real root (no `cgroup.type`).
    pub v2_is_root: bool,
    /// tend may make directories in its v2 cgroup.
    pub v2_writable: Result<(), String>,
    /// The same for each of `Layout::v1`, in order.
    pub v1_writable: Vec<Result<(), String>>,
    /// tend runs as a systemd unit (`INVOCATION_ID` is set).
    pub under_systemd: bool,
    /// systemd marked tend's v2 cgroup as delegated (`Delegate=yes` sets
    /// the `trusted.delegate` or `user.delegate` extended attribute).
    pub v2_delegated: bool,
}

impl Default for Probe {
    fn default() -> Probe {
        Probe {
            pid: 0,
            v2_controllers: Vec::new(),
            v2_subtree: Vec::new(),
            v2_procs: Vec::new(),
            v2_is_root: false,
            v2_writable: Err("not mounted".to_string()),
            v1_writable: Vec::new(),
            under_systemd: false,
            v2_delegated: false,
        }
    }
}

/// What to do, decided from a [`Layout`] and a [`Probe`] without system calls.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    v2: Option<V2Plan>,
    /// Controllers usable in the services' v2 cgroups.
    v2_controllers: Vec<Controller>,
    member: Result<Member, String>,
    backends: [Backend; 3],
    /// v1 hierarchies every service joins, in order.
    v1_join: Vec<usize>,
    /// v1 hierarchy read for CPU use when there is no v2 membership.
    v1_cpuacct: Option<usize>,
}

fn plan(layout: &Layout, probe: &Probe) -> Plan {
    if probe.under_systemd && !probe.v2_delegated {
        // systemd owns every cgroup of a unit without Delegate=yes
        // (systemd.resource-control(5), "Delegate="): it may move or remove
        // what it did not make. Make none; stops use process groups.
        let own = layout.unified.as_ref().map(|u| format!(" ({})", u.own.display())).unwrap_or_default();
        let why = format!(
            "tend runs as a systemd service without Delegate=yes, so its cgroup{own} belongs to systemd \
             (add Delegate=yes to the unit)"
        );
        return Plan {
            v2: None,
            v2_controllers: Vec::new(),
            member: Err(why.clone()),
            backends: [Backend::Missing(why.clone()), Backend::Missing(why.clone()), Backend::Missing(why)],
            v1_join: Vec::new(),
            v1_cpuacct: None,
        };
    }
    let v1_ok = |i: usize| probe.v1_writable.get(i).is_some_and(|w| w.is_ok());
    let v1_with = |c: &str| layout.v1.iter().position(|h| h.has(c));

    // v2: membership, and the controllers it can give services.
    let mut v2 = None;
    let mut v2_controllers = Vec::new();
    let mut v2_why: [String; 3] = Default::default();
    let mut member_why = Vec::new();
    match &layout.unified {
        None => {
            member_why.push("no cgroup2 file system mounted".to_string());
            for why in v2_why.iter_mut() {
                *why = "no cgroup2 file system mounted".to_string();
            }
        }
        Some(u) => match &probe.v2_writable {
            Err(e) => {
                let why = format!("cannot write in {}: {e}", u.own.display());
                member_why.push(why.clone());
                for w in v2_why.iter_mut() {
                    *w = why.clone();
                }
            }
            Ok(()) => {
                let delegate = !probe.v2_is_root && probe.v2_procs == [probe.pid];
                let base = if delegate { u.own.clone() } else { u.own.join(format!("tend-{}", probe.pid)) };
                for c in Controller::ALL {
                    let listed = probe.v2_controllers.iter().any(|x| x == c.name());
                    let handed_down = probe.v2_subtree.iter().any(|x| x == c.name());
                    if listed && (delegate || handed_down) {
                        v2_controllers.push(c);
                    } else if !listed {
                        v2_why[c.index()] = format!(
                            "not in {} (it lists: {})",
                            u.own.join("cgroup.controllers").display(),
                            if probe.v2_controllers.is_empty() {
                                "none".to_string()
                            } else {
                                probe.v2_controllers.join(" ")
                            }
                        );
                    } else {
                        v2_why[c.index()] = format!(
                            "not enabled in {}, and tend shares that cgroup with other processes \
                             (give tend a cgroup of its own, e.g. a systemd service with Delegate=yes)",
                            u.own.join("cgroup.subtree_control").display()
                        );
                    }
                }
                v2 = Some(V2Plan { own: u.own.clone(), base, delegate });
            }
        },
    }

    let backend = |c: Controller| -> Backend {
        if v2_controllers.contains(&c) {
            return Backend::V2;
        }
        let v1 = match v1_with(c.name()) {
            Some(i) if v1_ok(i) => return Backend::V1(i),
            Some(i) => format!(
                "cannot write in {}: {}",
                layout.v1[i].own.display(),
                probe.v1_writable.get(i).and_then(|w| w.clone().err()).unwrap_or_default()
            ),
            None => format!("no v1 {} hierarchy mounted", c.name()),
        };
        Backend::Missing(format!("v2: {}; v1: {v1}", v2_why[c.index()]))
    };
    let backends = [backend(Controller::Memory), backend(Controller::Pids), backend(Controller::Cpu)];

    let member = if v2.is_some() {
        Ok(Member::V2)
    } else {
        let mut found = None;
        for c in ["freezer", "pids", "memory", "cpuacct", "cpu"] {
            match v1_with(c) {
                Some(i) if v1_ok(i) => {
                    found = Some(i);
                    break;
                }
                Some(i) => member_why.push(format!(
                    "cannot write in {}: {}",
                    layout.v1[i].own.display(),
                    probe.v1_writable.get(i).and_then(|w| w.clone().err()).unwrap_or_default()
                )),
                None => {}
            }
        }
        if found.is_none() && layout.v1.is_empty() {
            member_why.push("no v1 hierarchy mounted".to_string());
        }
        member_why.extend(layout.skipped.iter().cloned());
        member_why.dedup();
        found.map(Member::V1).ok_or_else(|| member_why.join("; "))
    };

    let mut v1_join = Vec::new();
    if let Ok(Member::V1(i)) = member {
        v1_join.push(i);
    }
    for b in &backends {
        if let Backend::V1(i) = b {
            if !v1_join.contains(i) {
                v1_join.push(*i);
            }
        }
    }
    let mut v1_cpuacct = None;
    if v2.is_none() {
        if let Some(i) = v1_with("cpuacct").filter(|&i| v1_ok(i)) {
            if !v1_join.contains(&i) {
                v1_join.push(i);
            }
            v1_cpuacct = Some(i);
        }
    }
    Plan { v2, v2_controllers, member, backends, v1_join, v1_cpuacct }
}

// ---- joining (pure, tested) ----

/// The file a service's child writes `0` to, before exec, to join one of its
/// cgroups.
///
/// * v1: `tasks`, which moves the writing thread alone. The child is
///   single-threaded (just forked), so that is the whole process, and every
///   process it starts inherits the cgroup, as with `cgroup.procs`. The
///   difference is the cost: for `cgroup.procs` (or any pid other than 0)
///   the kernel takes `cgroup_threadgroup_rwsem` for writing, and unless
///   someone took it within the last grace period, that waits for an RCU
///   grace period (`percpu_down_write` → `rcu_sync_enter`): a median of 7-11
///   ms per join (3-24 ms) on this 2-vCPU VM, 17 ms per restart on a v1-only host
///   (`ONLY=v1join bench/run` measures it). "0" written to
///   `tasks` migrates only `current`, which cannot exit or exec under the
///   kernel's hands, so `cgroup_procs_write_start` skips that lock
///   ("cgroup: Optimize single thread migration": Linux 6.0, backported in
///   2022 to the long-term kernels then maintained): 30-40 µs for the first join, about
///   10 µs for each further one, for a new cgroup as for one kept across
///   restarts. Older kernels take the lock either way.
/// * v2: `cgroup.procs` (its `cgroup.threads` only moves threads within one
///   threaded subtree). It is the fallback only: services are cloned
///   straight into their v2 cgroup (clone3 `CLONE_INTO_CGROUP`), which takes
///   no such lock either.
pub fn join_file(v2: bool) -> &'static str {
    if v2 {
        "cgroup.procs"
    } else {
        "tasks"
    }
}

/// The v1 hierarchies (indexes into `Layout::v1`, in `plan.v1_join` order)
/// a service with these limits joins:
///
/// * the membership hierarchy when there is no v2: it is how a stop finds,
///   and kills, every process of the service;
/// * the hierarchy of each controller whose limit the unit sets, when that
///   controller is on v1;
/// * the memory and cpuacct hierarchies that `status` reads (`memory_bytes`,
///   `cpu_usec`) when it sets a limit (it makes v1 cgroups anyway; each
///   further join costs about 10 µs) or asks for `accounting`.
///
/// No other: each one is a cgroup to make at the first start (a memory
/// cgroup costs 40 µs) and a write in the child between fork and exec, on
/// the path of every restart. So a service without limits on a host
/// without cgroup2 joins the membership hierarchy alone, and `status` has
/// no memory or CPU figure for it unless it sets `accounting: true`.
fn v1_joins(plan: &Plan, res: &ResourcesSpec) -> Vec<usize> {
    let mut wanted = Vec::new();
    if let Ok(Member::V1(i)) = plan.member {
        wanted.push(i);
    }
    let limited = [
        (Controller::Memory, res.memory_max.is_some()),
        (Controller::Pids, res.pids_max.is_some()),
        (Controller::Cpu, res.cpu_max_millicores.is_some() || res.cpu_weight.is_some()),
    ];
    for (c, set) in limited {
        if let (true, Backend::V1(i)) = (set, &plan.backends[c.index()]) {
            wanted.push(*i);
        }
    }
    if res.is_set() || res.accounting {
        if let Backend::V1(i) = plan.backends[Controller::Memory.index()] {
            wanted.push(i);
        }
        wanted.extend(plan.v1_cpuacct);
    }
    plan.v1_join.iter().copied().filter(|i| wanted.contains(i)).collect()
}

// ---- values written to the files (pure, tested) ----

/// v2 `memory.max` / `pids.max`.
pub fn max_value(limit: Option<u64>) -> String {
    limit.map_or_else(|| "max".to_string(), |n| n.to_string())
}

/// The CFS period tend uses, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// CFS quota per period for a share of CPUs (the kernel refuses under 1 ms).
pub fn cpu_quota_us(millicores: u32) -> u64 {
    (u64::from(millicores) * CPU_PERIOD_US / 1000).max(1000)
}

/// v2 `cpu.max`: `QUOTA PERIOD`.
pub fn cpu_max_value(millicores: Option<u32>) -> String {
    match millicores {
        Some(m) => format!("{} {CPU_PERIOD_US}", cpu_quota_us(m)),
        None => format!("max {CPU_PERIOD_US}"),
    }
}

/// v1 `cpu.shares` for a v2 weight (1..=10000, default 100 → 1024).
pub fn weight_to_shares(weight: u32) -> u64 {
    (u64::from(weight) * 1024 / 100).clamp(2, 262_144)
}

/// v1 `memory.limit_in_bytes`.
pub fn v1_memory_limit(limit: Option<u64>) -> String {
    limit.map_or_else(|| "-1".to_string(), |n| n.to_string())
}

/// The number after `key ` in a flat keyed file (`cpu.stat`, `memory.events`, …).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

fn parse_pids(text: &str) -> Vec<i32> {
    text.split_ascii_whitespace().filter_map(|p| p.parse().ok()).collect()
}

// ---- file helpers ----

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let result = OpenOptions::new().write(true).open(path).and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|e| io::Error::new(e.kind(), format!("cannot write {value:?} to {}: {e}", path.display())))
}

fn mkdir(path: &Path) -> io::Result<bool> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))),
    }
}

fn read_words(path: &Path) -> Vec<String> {
    fs::read_to_string(path).unwrap_or_default().split_ascii_whitespace().map(str::to_string).collect()
}

fn writable(dir: &Path) -> Result<(), String> {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).map_err(|e| io::Error::from(e).to_string())
}

/// systemd's mark of a delegated cgroup: `trusted.delegate` (set since
/// systemd 251) or `user.delegate` (252, readable without privileges) = "1".
/// Raw getxattr: nix has none.
fn delegated(dir: &Path) -> bool {
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else { return false };
    ["trusted.delegate", "user.delegate"].iter().any(|name| {
        let name = CString::new(*name).expect("no NUL");
        let mut value = [0u8; 8];
        let (path, name, buf, len) = (path.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len());
        // SAFETY: both strings are NUL-terminated; the kernel writes at most
        // `len` bytes into the buffer.
        let n = unsafe { libc::getxattr(path, name, buf, len) };
        n > 0 && value[0] == b'1'
    })
}

fn check_name(service: &str) -> io::Result<()> {
    if service.is_empty() || service.starts_with('.') || service.contains('/') || service.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{service:?}: not usable as a cgroup name"),
        ));
    }
    Ok(())
}

/// The cgroup manager of one tend process.
#[derive(Debug)]
pub struct CgroupManager {
    layout: Layout,
    plan: Plan,
    pid: i32,
    /// Directories made on the first `create` (`None`: not yet).
    setup: Option<Result<(), String>>,
    /// tend moved itself into `own/supervisor`.
    moved_self: bool,
    /// Controllers tend enabled in a `subtree_control` (to undo at cleanup).
    enabled_in: Vec<(PathBuf, Controller)>,
    /// Every service created (for cleanup), with the v1 hierarchies
    /// (indices into `layout.v1`) where its leaf may exist: those it joined
    /// since this tend made its `tend-PID` folders. Only tend makes leaves
    /// there, so a leaf cannot exist elsewhere, and a start or the cleanup
    /// need not try to remove it: that was one failed rmdir (a path walk
    /// through cgroupfs) per hierarchy not joined, four per start on a
    /// v1-only or hybrid host.
    services: std::collections::HashMap<String, Vec<usize>>,
    /// A `tend-PID` v1 folder was there before this tend made it (an
    /// earlier tend with the same pid, such as PID 1 of a container
    /// restarted in the same cgroup): its leaves are not known, so every
    /// start and the cleanup try to remove what they do not use.
    inherited_v1_base: bool,
}

impl CgroupManager {
    /// Look at `/proc/self/cgroup`, `/proc/self/mountinfo` and tend's cgroup
    /// files. Writes nothing.
    pub fn detect() -> CgroupManager {
        let cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        CgroupManager::detect_with(&cgroup, &mountinfo)
    }

    /// [`detect`](Self::detect) with given texts of `/proc/self/cgroup` and
    /// `/proc/self/mountinfo` (tests hide hierarchies this way to exercise
    /// the v1 paths on a hybrid host). Reads tend's cgroup files; writes nothing.
    pub fn detect_with(proc_cgroup: &str, mountinfo: &str) -> CgroupManager {
        let layout = parse_layout(proc_cgroup, mountinfo);
        let pid = std::process::id() as i32;
        let mut probe = Probe { pid, v2_writable: Err("not mounted".into()), ..Probe::default() };
        if let Some(u) = &layout.unified {
            probe.v2_controllers = read_words(&u.own.join("cgroup.controllers"));
            probe.v2_subtree = read_words(&u.own.join("cgroup.subtree_control"));
            probe.v2_procs = parse_pids(&fs::read_to_string(u.own.join("cgroup.procs")).unwrap_or_default());
            probe.v2_is_root = layout::is_v2_root(&u.own);
            probe.v2_writable = writable(&u.own);
            probe.v2_delegated = delegated(&u.own);
        }
        probe.under_systemd = std::env::var_os("INVOCATION_ID").is_some_and(|v| !v.is_empty());
        probe.v1_writable = layout.v1.iter().map(|h| writable(&h.own)).collect();
        CgroupManager::from_parts(layout, &probe)
    }

    /// The manager for a layout and probe (tests).
    pub fn from_parts(layout: Layout, probe: &Probe) -> CgroupManager {
        let plan = plan(&layout, probe);
        CgroupManager {
            layout,
            plan,
            pid: probe.pid,
            setup: None,
            moved_self: false,
            enabled_in: Vec::new(),
            services: std::collections::HashMap::new(),
            inherited_v1_base: false,
        }
    }

    /// Can services get a cgroup at all (for kill-on-stop)? If not, why.
    pub fn available(&self) -> Result<(), String> {
        self.plan.member.as_ref().map(|_| ())?;
        match &self.setup {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// Can these limits be enforced? `Err` names each missing controller and why.
    pub fn supports(&self, resources: &ResourcesSpec) -> Result<(), String> {
        let mut wanted = Vec::new();
        if resources.memory_max.is_some() {
            wanted.push(("memory_max", Controller::Memory));
        }
        if resources.pids_max.is_some() {
            wanted.push(("pids_max", Controller::Pids));
        }
        if resources.cpu_max_millicores.is_some() {
            wanted.push(("cpu_max", Controller::Cpu));
        }
        if resources.cpu_weight.is_some() {
            wanted.push(("cpu_weight", Controller::Cpu));
        }
        let mut missing = Vec::new();
        for (key, c) in wanted {
            if let Backend::Missing(why) = &self.plan.backends[c.index()] {
                missing.push(format!("{key} needs the {} controller ({why})", c.name()));
            }
        }
        if missing.is_empty() {
            self.available()
        } else {
            Err(missing.join("; "))
        }
    }

    /// Short text for the tests: `v2 (memory, pids, cpu)`,
    /// `hybrid: v2 membership, v1 memory/pids/cpu`, …
    #[cfg(test)]
    pub fn describe(&self) -> String {
        let member = match &self.plan.member {
            Err(why) => return format!("unavailable: {why}"),
            Ok(m) => *m,
        };
        let on = |pred: &dyn Fn(&Backend) -> bool| -> Vec<&'static str> {
            Controller::ALL
                .iter()
                .filter(|c| pred(&self.plan.backends[c.index()]))
                .map(|c| c.name())
                .collect()
        };
        let v2 = on(&|b| *b == Backend::V2);
        let v1 = on(&|b| matches!(b, Backend::V1(_)));
        let missing = on(&|b| matches!(b, Backend::Missing(_)));
        let mut text = match member {
            Member::V2 if v1.is_empty() => {
                if v2.is_empty() {
                    "v2 (membership only, no controller)".to_string()
                } else {
                    format!("v2 ({})", v2.join(", "))
                }
            }
            Member::V2 => {
                let mut t = "hybrid: v2 membership".to_string();
                if !v2.is_empty() {
                    t += &format!(", v2 {}", v2.join("/"));
                }
                t + &format!(", v1 {}", v1.join("/"))
            }
            Member::V1(i) => {
                let by = if self.layout.v1[i].has("freezer") { "freezer" } else { "kill-until-empty" };
                format!(
                    "v1 ({by} membership; {})",
                    if v1.is_empty() { "no controller".into() } else { v1.join(", ") }
                )
            }
        };
        if !missing.is_empty() {
            text += &format!("; no {}", missing.join("/"));
        }
        text
    }

    /// Kill what supervisors that died without cleaning up (SIGKILL, an
    /// OOM kill) left in their cgroups, and remove those cgroups: a
    /// `tend-PID` sub-tree whose owner is no longer a process of the
    /// cgroup it sits in (dead, or its pid now another process's), and,
    /// when this tend has its cgroup to itself (delegated), every
    /// `NAME.service` of it still holding processes (the services of a
    /// previous tend in the same cgroup). Returns, per dead supervisor
    /// (`None` when its pid is not known), how many processes were killed.
    /// Processes of another pid namespace (listed as 0) are left alone.
    /// Runs at start, before any service.
    pub fn sweep_leftovers(&self) -> Vec<(Option<i32>, usize)> {
        let mut found: Vec<(Option<i32>, usize)> = Vec::new();
        let mut add = |owner: Option<i32>, killed: usize| match found.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, n)) => *n += killed,
            None => found.push((owner, killed)),
        };
        let mut parents: Vec<(PathBuf, bool)> =
            self.layout.v1.iter().map(|h| (h.own.clone(), false)).collect();
        if let Some(v2) = &self.plan.v2 {
            parents.push((v2.own.clone(), true));
        }
        for (parent, v2) in parents {
            let Ok(entries) = fs::read_dir(&parent) else { continue };
            let mut owners = parse_pids(&fs::read_to_string(parent.join("cgroup.procs")).unwrap_or_default());
            owners.extend(parse_pids(
                &fs::read_to_string(parent.join("supervisor/cgroup.procs")).unwrap_or_default(),
            ));
            let delegated = v2 && self.plan.v2.as_ref().is_some_and(|p| p.delegate);
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let dir = entry.path();
                if delegated && name.ends_with(".service") && dir.is_dir() {
                    let killed = kill_leftovers(&dir, v2);
                    if killed > 0 {
                        add(None, killed);
                    }
                    continue;
                }
                let Some(pid) = name.strip_prefix("tend-").and_then(|p| p.parse::<i32>().ok()) else {
                    continue;
                };
                if pid == self.pid || owners.contains(&pid) {
                    continue;
                }
                if let Ok(children) = fs::read_dir(&dir) {
                    for child in children.flatten() {
                        if child.path().is_dir() {
                            let killed = kill_leftovers(&child.path(), v2);
                            if killed > 0 {
                                add(Some(pid), killed);
                            }
                            let _ = fs::remove_dir(child.path());
                        }
                    }
                }
                let _ = fs::remove_dir(&dir);
            }
        }
        found
    }

    /// Remove `tend-PID` sub-trees of supervisors that are gone, where
    /// empty (rmdir fails on a cgroup that still has processes): what
    /// [`sweep_leftovers`](Self::sweep_leftovers) could not remove.
    fn sweep_stale(&self) {
        let mut parents: Vec<PathBuf> = self.layout.v1.iter().map(|h| h.own.clone()).collect();
        if let Some(v2) = &self.plan.v2 {
            parents.push(v2.own.clone());
        }
        for parent in parents {
            let Ok(entries) = fs::read_dir(&parent) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) =
                    name.to_str().and_then(|n| n.strip_prefix("tend-")).and_then(|p| p.parse::<i32>().ok())
                else {
                    continue;
                };
                if pid == self.pid || std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    continue;
                }
                let dir = entry.path();
                if let Ok(children) = fs::read_dir(&dir) {
                    for child in children.flatten() {
                        if child.path().is_dir() {
                            let _ = fs::remove_dir(child.path());
                        }
                    }
                }
                let _ = fs::remove_dir(&dir);
            }
        }
    }

    fn v1_base(&self, i: usize) -> PathBuf {
        self.layout.v1[i].own.join(format!("tend-{}", self.pid))
    }

    /// Make tend's own directories, once.
    fn ensure_setup(&mut self) -> io::Result<()> {
        if let Some(done) = &self.setup {
            return done.clone().map_err(io::Error::other);
        }
        let result = self.do_setup();
        self.setup = Some(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        result
    }

    fn do_setup(&mut self) -> io::Result<()> {
        self.plan.member.clone().map_err(io::Error::other)?;
        self.sweep_stale();
        if let Some(v2) = self.plan.v2.clone() {
            if v2.delegate {
                let leaf = v2.own.join("supervisor");
                let moved =
                    mkdir(&leaf).and_then(|_| write_file(&leaf.join("cgroup.procs"), &self.pid.to_string()));
                match moved {
                    Ok(()) => self.moved_self = true,
                    Err(_) => {
                        // Could not leave our cgroup: services go in a sub-tree of
                        // it, with only the controllers it already hands down.
                        let _ = fs::remove_dir(&leaf);
                        let subtree = read_words(&v2.own.join("cgroup.subtree_control"));
                        let base = v2.own.join(format!("tend-{}", self.pid));
                        self.plan.v2 = Some(V2Plan { own: v2.own.clone(), base, delegate: false });
                        self.demote(
                            |c| !subtree.iter().any(|s| s == c.name()),
                            "not handed down to tend's cgroup",
                        );
                    }
                }
            }
            let v2 = self.plan.v2.clone().expect("v2 plan");
            if !v2.delegate {
                mkdir(&v2.base)?;
            }
            let on = read_words(&v2.base.join("cgroup.subtree_control"));
            let mut failed = Vec::new();
            for c in self.plan.v2_controllers.clone() {
                if on.iter().any(|s| s == c.name()) {
                    continue;
                }
                match write_file(&v2.base.join("cgroup.subtree_control"), &format!("+{}", c.name())) {
                    Ok(()) => self.enabled_in.push((v2.base.clone(), c)),
                    Err(e) => failed.push((c, e.to_string())),
                }
            }
            for (c, why) in failed {
                self.demote(|x| x == c, &why);
            }
        }
        for i in self.plan.v1_join.clone() {
            if !mkdir(&self.v1_base(i))? {
                self.inherited_v1_base = true;
            }
        }
        Ok(())
    }

    /// Stop using v2 for the controllers matching `which`: their v1 hierarchy
    /// if there is one, else missing.
    fn demote(&mut self, which: impl Fn(Controller) -> bool, why: &str) {
        for c in self.plan.v2_controllers.clone() {
            if !which(c) {
                continue;
            }
            self.plan.v2_controllers.retain(|&x| x != c);
            let v1 = self.layout.v1.iter().position(|h| h.has(c.name()));
            self.plan.backends[c.index()] = match v1 {
                Some(i) if writable(&self.layout.v1[i].own).is_ok() => {
                    if !self.plan.v1_join.contains(&i) {
                        self.plan.v1_join.push(i);
                    }
                    Backend::V1(i)
                }
                _ => Backend::Missing(format!("v2: {why}; v1: no usable {} hierarchy", c.name())),
            };
        }
    }

    /// Create (or re-use, resetting its limits) the service's cgroup(s), write
    /// the limits, and open the files the child will join through
    /// ([`join_file`]: v1 `tasks`, v2 `cgroup.procs`).
    pub fn create(&mut self, service: &str, resources: &ResourcesSpec) -> io::Result<ServiceCgroup> {
        check_name(service)?;
        self.ensure_setup()?;
        if let Err(why) = self.supports(resources) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, why));
        }
        let joins = v1_joins(&self.plan, resources);
        self.remove_unused_v1_leaves(service, &joins);
        let mut made = Vec::new();
        let result = self.build(service, resources, &joins, &mut made);
        // Whether or not the build got that far: a leaf in any of them may
        // exist now (a superset only costs a failed rmdir later).
        let may_exist = self.services.entry(service.to_string()).or_default();
        for i in joins {
            if !may_exist.contains(&i) {
                may_exist.push(i);
            }
        }
        if result.is_err() {
            for dir in made.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
        }
        result
    }

    /// A v1 cgroup an earlier definition of this service used (with
    /// limits) and this one (`joins`) does not: remove it, so that no old
    /// limit lingers (it is empty: the old process is gone before a new
    /// start). Only where such a leaf may exist ([`Self::services`]).
    fn remove_unused_v1_leaves(&mut self, service: &str, joins: &[usize]) {
        let leaf = format!("{service}.service");
        let stale: Vec<usize> = match (self.inherited_v1_base, self.services.get(service)) {
            (true, _) => self.plan.v1_join.iter().copied().filter(|i| !joins.contains(i)).collect(),
            (false, Some(may_exist)) => may_exist.iter().copied().filter(|i| !joins.contains(i)).collect(),
            (false, None) => return,
        };
        let mut kept = Vec::new();
        for i in stale {
            match fs::remove_dir(self.v1_base(i).join(&leaf)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // Still there (not empty, or refused): try again next time.
                Err(_) => kept.push(i),
            }
        }
        if let Some(may_exist) = self.services.get_mut(service) {
            may_exist.retain(|i| joins.contains(i) || kept.contains(i));
        }
    }

    fn build(
        &self,
        service: &str,
        res: &ResourcesSpec,
        joins: &[usize],
        made: &mut Vec<PathBuf>,
    ) -> io::Result<ServiceCgroup> {
        let leaf = format!("{service}.service");
        let open = |dir: &Path, file: &str| -> io::Result<File> {
            let path = dir.join(file);
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))
        };
        let mut cg = ServiceCgroup {
            dirs: Vec::new(),
            member: PathBuf::new(),
            member_v2: false,
            freezer: false,
            memory: None,
            cpu: None,
            joins: Vec::new(),
            v2_dir: None,
            events: None,
            v2_id: None,
        };
        let uses = |c: Controller, b: &Backend| self.plan.backends[c.index()] == *b;

        for &i in self.plan.v1_join.iter().filter(|i| joins.contains(i)) {
            let dir = self.v1_base(i).join(&leaf);
            if mkdir(&dir)? {
                made.push(dir.clone());
            }
            let b = Backend::V1(i);
            if uses(Controller::Memory, &b) {
                write_file(&dir.join("memory.limit_in_bytes"), &v1_memory_limit(res.memory_max))?;
                write_file(&dir.join("memory.oom_control"), "0")?;
                cg.memory = Some((dir.clone(), false));
            }
            if uses(Controller::Pids, &b) {
                write_file(&dir.join("pids.max"), &max_value(res.pids_max))?;
            }
            if uses(Controller::Cpu, &b) {
                write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                let quota = res.cpu_max_millicores.map_or(-1, |m| cpu_quota_us(m) as i64);
                write_file(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                write_file(
                    &dir.join("cpu.shares"),
                    &weight_to_shares(res.cpu_weight.unwrap_or(100)).to_string(),
                )?;
            }
            if self.plan.v1_cpuacct == Some(i) {
                cg.cpu = Some((dir.clone(), false));
            }
            if self.plan.member == Ok(Member::V1(i)) {
                cg.member = dir.clone();
                cg.freezer = self.layout.v1[i].has("freezer");
            }
            cg.joins.push(open(&dir, join_file(false))?);
            cg.dirs.push(dir);
        }

        if let Some(v2) = &self.plan.v2 {
            let dir = v2.base.join(&leaf);
            if mkdir(&dir)? {
                made.push(dir.clone());
            }
            if uses(Controller::Memory, &Backend::V2) {
                write_file(&dir.join("memory.max"), &max_value(res.memory_max))?;
                cg.memory = Some((dir.clone(), true));
            }
            if uses(Controller::Pids, &Backend::V2) {
                write_file(&dir.join("pids.max"), &max_value(res.pids_max))?;
            }
            if uses(Controller::Cpu, &Backend::V2) {
                write_file(&dir.join("cpu.max"), &cpu_max_value(res.cpu_max_millicores))?;
                write_file(&dir.join("cpu.weight"), &res.cpu_weight.unwrap_or(100).to_string())?;
            }
            // cpu.stat (usage_usec) is a core file: there without the controller.
            cg.cpu = Some((dir.clone(), true));
            cg.member = dir.clone();
            cg.member_v2 = true;
            cg.joins.push(open(&dir, join_file(true))?);
            let dir_file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(&dir)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", dir.display())))?;
            use std::os::unix::fs::MetadataExt;
            cg.v2_id = dir_file.metadata().ok().map(|m| m.ino());
            cg.v2_dir = Some((dir_file, cg.joins.len() - 1));
            let events = dir.join("cgroup.events");
            cg.events =
                Some(OpenOptions::new().read(true).custom_flags(libc::O_CLOEXEC).open(&events).map_err(
                    |e| io::Error::new(e.kind(), format!("cannot open {}: {e}", events.display())),
                )?);
            cg.dirs.push(dir);
        }
        Ok(cg)
    }

    /// Remove tend's own sub-tree (best effort; cgroups still holding
    /// processes stay).
    pub fn cleanup(&mut self) {
        if self.setup.is_none() {
            return;
        }
        let leaf = |s: &String| format!("{s}.service");
        if let Some(v2) = &self.plan.v2 {
            for s in self.services.keys() {
                let _ = fs::remove_dir(v2.base.join(leaf(s)));
            }
        }
        for &i in &self.plan.v1_join {
            let base = self.v1_base(i);
            for (s, may_exist) in &self.services {
                if may_exist.contains(&i) || self.inherited_v1_base {
                    let _ = fs::remove_dir(base.join(leaf(s)));
                }
            }
            let _ = fs::remove_dir(base);
        }
        if let Some(v2) = &self.plan.v2 {
            for (dir, c) in self.enabled_in.drain(..) {
                let _ = write_file(&dir.join("cgroup.subtree_control"), &format!("-{}", c.name()));
            }
            if self.moved_self {
                if write_file(&v2.own.join("cgroup.procs"), &self.pid.to_string()).is_ok() {
                    let _ = fs::remove_dir(v2.own.join("supervisor"));
                    self.moved_self = false;
                }
            } else {
                let _ = fs::remove_dir(&v2.base);
            }
        }
        self.services.clear();
        self.inherited_v1_base = false;
        self.setup = None;
    }
}

/// One service's cgroup: a directory in each hierarchy in use.
#[derive(Debug)]
pub struct ServiceCgroup {
    /// Every directory (v1 ones, then v2).
    dirs: Vec<PathBuf>,
    /// Where membership is read and killing is done.
    member: PathBuf,
    member_v2: bool,
    /// `member` is a v1 freezer cgroup.
    freezer: bool,
    /// Directory with the memory files; `true` for v2.
    memory: Option<(PathBuf, bool)>,
    /// v2 directory (`cpu.stat`) or v1 cpuacct directory; `true` for v2.
    cpu: Option<(PathBuf, bool)>,
    /// The [`join_file`] of each directory, open for writing, close-on-exec.
    joins: Vec<File>,
    /// The v2 directory itself, for clone3(CLONE_INTO_CGROUP), and the
    /// index of its `cgroup.procs` in `joins`.
    v2_dir: Option<(File, usize)>,
    /// The v2 directory's `cgroup.events`, held open: read again from
    /// offset 0 (pread) after every reap of one of its processes, one
    /// system call instead of an open, fstat, two reads and a close on the
    /// restart path.
    events: Option<File>,
    /// The v2 cgroup's id: its directory's inode number (what the kernel
    /// reports as a process's cgroup id, e.g. for a pidfd).
    v2_id: Option<u64>,
}

/// SIGKILL every process in the cgroup `dir` (v2: `cgroup.kill` when the
/// kernel has it), until it is empty or `KILL_BUDGET` passed; how many
/// processes it held. A cgroup listing a process of another pid namespace
/// (as 0) is left alone: it is not ours to judge.
fn kill_leftovers(dir: &Path, v2: bool) -> usize {
    let me = std::process::id() as i32;
    let procs = dir.join("cgroup.procs");
    let first = parse_pids(&fs::read_to_string(&procs).unwrap_or_default());
    if first.is_empty() || first.contains(&0) {
        return 0;
    }
    let mut seen: Vec<i32> = Vec::new();
    if v2 {
        let _ = write_file(&dir.join("cgroup.kill"), "1");
    }
    let deadline = Instant::now() + KILL_BUDGET;
    loop {
        let pids = parse_pids(&fs::read_to_string(&procs).unwrap_or_default());
        if pids.is_empty() || pids.contains(&0) || Instant::now() >= deadline {
            break;
        }
        for &pid in pids.iter().filter(|&&p| p > 1 && p != me) {
            if !seen.contains(&pid) {
                seen.push(pid);
            }
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for pid in first {
        if !seen.contains(&pid) {
            seen.push(pid);
        }
    }
    seen.len()
}

/// How long `kill_all` may take at most, in the worst case.
const KILL_BUDGET: Duration = Duration::from_millis(100);

impl ServiceCgroup {
    /// The id of the v2 cgroup, if the service has one.
    pub fn id(&self) -> Option<u64> {
        self.v2_id
    }

    /// The directories (v1 ones, then v2).
    #[cfg(test)]
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Descriptors the child writes `"0"` to (one `write(2)` each, before
    /// exec) to join: one per hierarchy in use.
    pub fn join_fds(&self) -> Vec<RawFd> {
        self.joins.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// For clone3(CLONE_INTO_CGROUP): the v2 directory's descriptor, and the
    /// join descriptors still to write in the child when the clone
    /// puts it there (the v1 ones).
    pub fn clone_into(&self) -> Option<(RawFd, Vec<RawFd>)> {
        let (dir, index) = self.v2_dir.as_ref()?;
        let rest =
            self.joins.iter().enumerate().filter(|(i, _)| i != index).map(|(_, f)| f.as_raw_fd()).collect();
        Some((dir.as_raw_fd(), rest))
    }

    /// SIGKILL every process in it: v2 `cgroup.kill`; else freeze, kill, thaw;
    /// else kill until empty. Bounded (about 100 ms at worst).
    pub fn kill_all(&self) -> io::Result<()> {
        if self.member_v2 {
            match write_file(&self.member.join("cgroup.kill"), "1") {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                Err(_) => {} // before Linux 5.14
            }
            let frozen = write_file(&self.member.join("cgroup.freeze"), "1").is_ok();
            let result = self.kill_until_empty(&mut Vec::new());
            if frozen {
                let _ = write_file(&self.member.join("cgroup.freeze"), "0");
            }
            return result;
        }
        let mut done = Vec::new();
        if self.freezer {
            let state = self.member.join("freezer.state");
            if write_file(&state, "FROZEN").is_ok() {
                let deadline = Instant::now() + KILL_BUDGET / 2;
                while fs::read_to_string(&state).is_ok_and(|s| s.trim() != "FROZEN")
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                self.kill_listed(&mut done);
                // Killed frozen tasks die once thawed.
                write_file(&state, "THAWED")?;
            }
        }
        self.kill_until_empty(&mut done)
    }

    /// SIGKILL each listed pid not yet in `done`; how many were new.
    fn kill_listed(&self, done: &mut Vec<i32>) -> usize {
        let me = std::process::id() as i32;
        let mut new = 0;
        for pid in self.pids() {
            if pid <= 0 || pid == me || done.contains(&pid) {
                continue;
            }
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            done.push(pid);
            new += 1;
        }
        new
    }

    fn kill_until_empty(&self, done: &mut Vec<i32>) -> io::Result<()> {
        let deadline = Instant::now() + KILL_BUDGET;
        loop {
            if self.kill_listed(done) == 0 {
                if self.is_empty() || Instant::now() >= deadline {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(1));
            } else if Instant::now() >= deadline {
                return Ok(());
            }
        }
    }

    /// No process left in it (v2 `populated 0`; v1 `cgroup.procs` empty).
    pub fn is_empty(&self) -> bool {
        if let Some(events) = &self.events {
            // "populated 0\nfrozen 0\n": the whole file fits.
            let mut buf = [0u8; 256];
            match events.read_at(&mut buf, 0) {
                Ok(n) => keyed_value(&String::from_utf8_lossy(&buf[..n]), "populated") == Some(0),
                Err(_) => true,
            }
        } else {
            self.pids().is_empty()
        }
    }

    /// Pids in it now.
    pub fn pids(&self) -> Vec<i32> {
        parse_pids(&fs::read_to_string(self.member.join("cgroup.procs")).unwrap_or_default())
    }

    /// Bytes of memory charged (v2 `memory.current`, v1 `memory.usage_in_bytes`).
    pub fn memory_current(&self) -> Option<u64> {
        let (dir, v2) = self.memory.as_ref()?;
        let file = if *v2 { "memory.current" } else { "memory.usage_in_bytes" };
        fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
    }

    /// CPU time used, in microseconds (v2 `cpu.stat`, v1 `cpuacct.usage`).
    pub fn cpu_usage_usec(&self) -> Option<u64> {
        let (dir, v2) = self.cpu.as_ref()?;
        if *v2 {
            keyed_value(&fs::read_to_string(dir.join("cpu.stat")).ok()?, "usage_usec")
        } else {
            fs::read_to_string(dir.join("cpuacct.usage")).ok()?.trim().parse::<u64>().ok().map(|ns| ns / 1000)
        }
    }

    /// OOM kills in it so far (v2 `memory.events`, v1 `memory.oom_control`).
    pub fn oom_kills(&self) -> Option<u64> {
        let (dir, v2) = self.memory.as_ref()?;
        let file = if *v2 { "memory.events" } else { "memory.oom_control" };
        keyed_value(&fs::read_to_string(dir.join(file)).ok()?, "oom_kill")
    }

    /// Close the join descriptors and remove the directories (best effort:
    /// one still holding processes stays).
    pub fn remove(self) {
        drop(self.joins);
        drop(self.events);
        drop(self.v2_dir);
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// What tend says once when cgroups cannot be used at all: every reason
/// (`cannot write in A, B: Permission denied`), what the user loses, and
/// what to do about it.
pub fn unavailable_warning(reason: &str) -> String {
    // "cannot write in X: Permission denied (os error 13); cannot write in
    // Y: …": the same error for many folders is said once.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for part in reason.split("; ").filter(|p| !p.is_empty()) {
        let part = &tend_core::text::without_os_errors(part);
        let (what, why) = part.rsplit_once(": ").unwrap_or((part, ""));
        let (verb, object) = match what.rsplit_once(' ') {
            Some((verb, object)) if object.starts_with('/') => (verb, object),
            _ => (what, ""),
        };
        let key = format!("{verb}\u{0}{why}");
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, objects)) => objects.push(object.to_string()),
            None => groups.push((key, vec![object.to_string()])),
        }
    }
    let reasons: Vec<String> = groups
        .into_iter()
        .map(|(key, objects)| {
            let (verb, why) = key.split_once('\u{0}').unwrap_or((&key, ""));
            let objects: Vec<String> = objects.into_iter().filter(|o| !o.is_empty()).collect();
            let what =
                if objects.is_empty() { verb.to_string() } else { format!("{verb} {}", objects.join(", ")) };
            if why.is_empty() {
                what
            } else {
                format!("{what}: {why}")
            }
        })
        .collect();
    format!(
        "warning: cgroups unavailable ({}). Falling back to process groups: stopping a service reaches only \
         its process group (a daemon that left it survives), no memory or CPU use is reported, and units with \
         `resources` are refused. To use cgroups, run tend as root or in a delegated cgroup (systemd: Delegate=yes).",
        reasons.join("; ")
    )
}
