//! `tend check [DIR] [--strict]`: validate without starting anything, and
//! warn about risky combinations.

use crate::unit::UnitSpec;
use std::path::{Path, PathBuf};

/// Capabilities that are close to full root (capabilities(7)).
const RISKY_CAPABILITIES: &[(caps::Capability, &str)] = &[
    (caps::Capability::CAP_SYS_ADMIN, "SYS_ADMIN is close to full root"),
    (caps::Capability::CAP_SYS_PTRACE, "SYS_PTRACE can read and change other processes"),
    (caps::Capability::CAP_SYS_MODULE, "SYS_MODULE can load kernel code"),
    (caps::Capability::CAP_SYS_RAWIO, "SYS_RAWIO gives raw device access"),
    (caps::Capability::CAP_DAC_OVERRIDE, "DAC_OVERRIDE ignores file permissions"),
    (caps::Capability::CAP_NET_ADMIN, "NET_ADMIN can reconfigure the host's network"),
];

/// Warnings for one unit. `strict` adds the ones about missing hardening;
/// `socket` is the control socket the supervisor would listen on (a root
/// service that can reach it can stop everything).
pub fn warnings(unit: &UnitSpec, tend_uid: u32, strict: bool, socket: Option<&Path>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(caps) = &unit.sandbox.capabilities {
        for (cap, why) in RISKY_CAPABILITIES {
            if caps.contains(&cap.index()) {
                out.push(format!("sandbox.capabilities lists {cap}: {why}"));
            }
        }
    }
    let runs_as_root = unit.identity.as_ref().map(|i| i.uid).unwrap_or(tend_uid) == 0;
    if !unit.sandbox.read_write_paths.is_empty() && unit.sandbox.read_only_paths.is_empty() {
        out.push("sandbox.read_write_paths without read_only_paths changes nothing".into());
    }
    if let (Some(out_to), Some(err_to)) = (&unit.stdout_to, &unit.stderr_to) {
        let has_sinks = unit.log.file.is_some() || unit.log.syslog;
        if has_sinks {
            let to = if out_to.name == err_to.name {
                out_to.name.clone()
            } else {
                format!("{} and {}", out_to.name, err_to.name)
            };
            out.push(format!(
                "log: nothing reaches its log file or syslog: stdout and stderr both go to {to} (tend reads neither)"
            ));
        }
    }
    if strict {
        let sandboxed = unit.sandbox.is_set();
        if runs_as_root && !sandboxed {
            out.push("runs as root with no sandbox settings (set user, or sandbox: capabilities, read_only_paths, …)".into());
        }
        if runs_as_root && unit.sandbox.capabilities.is_none() && sandboxed {
            out.push(
                "runs as root with every capability (list the ones it needs in sandbox.capabilities)".into(),
            );
        }
        if !runs_as_root && !unit.sandbox.no_new_privileges {
            out.push("sandbox.no_new_privileges is off: setuid programs can still raise privileges".into());
        }
        out.extend(proc_and_root_warnings(unit, runs_as_root, socket));
    }
    out
}

/// What a sandbox does not stop (`--strict`): a neighbour of the same user
/// through /proc, and what a root service can still do to tend and to the
/// other services.
fn proc_and_root_warnings(unit: &UnitSpec, runs_as_root: bool, socket: Option<&Path>) -> Vec<String> {
    let sandbox = &unit.sandbox;
    let mut out = Vec::new();
    let path_rules = !sandbox.read_only_paths.is_empty() || !sandbox.inaccessible_paths.is_empty();
    if path_rules && !sandbox.private_pids {
        out.push(
            "sandbox: path rules without private_pids: a process of the same user outside the sandbox (another \
             service, a login) opens the whole filesystem to it through /proc/PID/root (protect_proc hides only \
             other users' processes); set sandbox.private_pids: true"
                .into(),
        );
    }
    if !runs_as_root {
        return out;
    }
    let hidden = |path: &Path| sandbox.inaccessible_paths.iter().any(|h| path.starts_with(h));
    if let Some(socket) = socket {
        let folder = socket.parent().unwrap_or(socket);
        if !hidden(socket) {
            out.push(format!(
                "runs as root and can reach the control socket {} (it could `tend shutdown`): list {} in \
                 sandbox.inaccessible_paths, or run it as another user",
                socket.display(),
                folder.display()
            ));
        }
    }
    let cgroups = Path::new("/sys/fs/cgroup");
    let read_only = sandbox
        .read_only_paths
        .iter()
        .filter(|p| cgroups.starts_with(p))
        .max_by_key(|p| p.components().count());
    let writable_again = sandbox.read_write_paths.iter().any(|p| {
        cgroups.starts_with(p) && read_only.is_some_and(|ro| p.components().count() > ro.components().count())
    });
    if (read_only.is_none() || writable_again) && !hidden(cgroups) {
        out.push(
            "runs as root without a read-only /sys/fs/cgroup (read_only_paths: [/]): it can leave its cgroup or \
             raise another service's limits"
                .into(),
        );
    }
    out
}

/// Warnings that look at the host (`--strict` only): a log file whose
/// folder someone other than root can change.
pub fn host_warnings(unit: &UnitSpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(folder) = unit.log.file.as_deref().and_then(crate::sys::paths::split_file).map(|(f, _)| f) {
        if let Ok(meta) = std::fs::metadata(&folder) {
            use std::os::unix::fs::MetadataExt;
            if let Some(who) = crate::sys::paths::others_can_write(meta.uid(), meta.mode(), 0) {
                out.push(format!(
                    "log.file: its folder {} is {who}: whoever that is can delete or replace the log files \
                     (tend, as root, never follows a link there nor writes outside it)",
                    folder.display()
                ));
            }
        }
    }
    out
}

/// The line `check` ends with: `DIR: 2 units ok: db, web`, or for an
/// empty folder what `up` would say of it (it is no error for `check`: a
/// package installs the folder empty).
fn summary(dir: &std::path::Path, units: &[UnitSpec]) -> String {
    if units.is_empty() {
        return format!("{}: no units (files named NAME.yaml)", dir.display());
    }
    // A pool says how many services it runs: `worker (4 instances)`.
    let names: Vec<String> = units
        .iter()
        .map(|u| match &u.instances {
            None => u.name.clone(),
            Some(instances) => {
                let n = instances.len();
                format!("{} ({n} instance{})", u.name, if n == 1 { "" } else { "s" })
            }
        })
        .collect();
    let plural = if units.len() == 1 { "" } else { "s" };
    format!("{}: {} unit{plural} ok: {}", dir.display(), units.len(), names.join(", "))
}

pub fn check(dir: Option<PathBuf>, strict: bool) -> i32 {
    let dir = super::units_dir(dir);
    match super::load(&dir) {
        // A command that cannot run fails `check` (`up` only warns).
        Ok(loaded) if !loaded.warnings.is_empty() => {
            super::print_errors(&loaded.warnings);
            crate::exit::USAGE
        }
        Ok(super::Loaded { units, .. }) => {
            let tend_uid = nix::unistd::geteuid().as_raw();
            let socket = crate::ctl::client::socket_path(None);
            let mut warned = 0;
            for unit in &units {
                let mut all = warnings(unit, tend_uid, strict, Some(&socket));
                if strict {
                    all.extend(host_warnings(unit));
                }
                for warning in all {
                    eprintln!("{}: warning: {warning}", unit.file.display());
                    warned += 1;
                }
            }
            if let Err(code) = crate::emit!("{}\n", summary(&dir, &units)) {
                return code;
            }
            if strict && warned > 0 {
                eprintln!("tend: {warned} warning{} (--strict)", if warned == 1 { "" } else { "s" });
                return crate::exit::USAGE;
            }
            crate::exit::OK
        }
        Err(_) => crate::exit::USAGE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(yaml: &str) -> UnitSpec {
        crate::unit::testing::unit("web", yaml)
    }

    #[test]
    fn the_summary_names_the_units_or_says_there_are_none() {
        let dir = std::path::Path::new("/etc/tend/units");
        assert_eq!(summary(dir, &[]), "/etc/tend/units: no units (files named NAME.yaml)");
        assert_eq!(summary(dir, &[unit("command: x\n")]), "/etc/tend/units: 1 unit ok: web");
        let db = crate::unit::testing::unit("db", "command: x\n");
        assert_eq!(summary(dir, &[db, unit("command: x\n")]), "/etc/tend/units: 2 units ok: db, web");
    }

    #[test]
    fn sys_admin_is_always_a_warning() {
        let w = warnings(&unit("command: x\nsandbox:\n  capabilities: [SYS_ADMIN]\n"), 0, false, None);
        assert_eq!(w, ["sandbox.capabilities lists CAP_SYS_ADMIN: SYS_ADMIN is close to full root"]);
    }

    #[test]
    fn a_bare_root_service_is_a_warning_only_when_strict() {
        let bare = unit("command: x\n");
        assert!(warnings(&bare, 0, false, None).is_empty());
        assert_eq!(warnings(&bare, 0, true, None).len(), 2, "{:?}", warnings(&bare, 0, true, None));
        assert!(warnings(&bare, 1000, true, None).iter().all(|w| !w.contains("runs as root")));
    }

    #[test]
    fn a_log_file_nothing_reaches_is_a_warning() {
        let both = unit(
            "command: x
stdout: {to: s}
stderr: {to: s}
log: {file: x.log}
",
        );
        assert_eq!(
            warnings(&both, 1000, false, None),
            ["log: nothing reaches its log file or syslog: stdout and stderr both go to s (tend reads neither)"]
        );
        let one = unit(
            "command: x
stdout: {to: s}
log: {file: x.log}
",
        );
        assert!(warnings(&one, 1000, false, None).is_empty(), "stderr still reaches it");
    }
}

#[cfg(test)]
mod strict_tests {
    use super::*;

    fn unit(yaml: &str) -> UnitSpec {
        crate::unit::testing::unit("web", yaml)
    }

    fn has(warnings: &[String], needle: &str) -> bool {
        warnings.iter().any(|w| w.contains(needle))
    }

    #[test]
    fn path_rules_without_a_pid_namespace_are_open_through_proc() {
        let rules = unit("command: x\nuser: 1000\ngroup: 1000\nsandbox:\n  no_new_privileges: true\n  read_only_paths: [/]\n");
        assert!(has(&warnings(&rules, 0, true, None), "/proc/PID/root"));
        let jailed = unit(
            "command: x\nuser: 1000\ngroup: 1000\nsandbox:\n  no_new_privileges: true\n  read_only_paths: [/]\n  private_pids: true\n",
        );
        assert!(!has(&warnings(&jailed, 0, true, None), "/proc/PID/root"));
        assert!(!has(&warnings(&rules, 0, false, None), "/proc/PID/root"), "only with --strict");
    }

    #[test]
    fn a_root_service_that_can_reach_the_socket_or_the_cgroups_is_told_so() {
        let socket = Path::new("/run/tend/tend.sock");
        let open = unit("command: x\nsandbox:\n  capabilities: []\n");
        let w = warnings(&open, 0, true, Some(socket));
        assert!(has(&w, "can reach the control socket /run/tend/tend.sock"), "{w:?}");
        assert!(has(&w, "without a read-only /sys/fs/cgroup"), "{w:?}");
        let closed = unit(
            "command: x\nsandbox:\n  capabilities: []\n  read_only_paths: [/]\n  inaccessible_paths: [/run/tend]\n  private_pids: true\n",
        );
        let w = warnings(&closed, 0, true, Some(socket));
        assert!(!has(&w, "control socket") && !has(&w, "/sys/fs/cgroup"), "{w:?}");
        // Not root: neither applies.
        let user = unit("command: x\nuser: 1000\ngroup: 1000\nsandbox:\n  no_new_privileges: true\n");
        assert!(warnings(&user, 0, true, Some(socket)).is_empty());
    }
}
