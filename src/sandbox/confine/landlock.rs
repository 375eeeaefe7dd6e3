//! The Landlock backend: the rules a spec asks for, and the ruleset filled
//! in the parent (the child only restricts itself with it).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::unit::SandboxSpec;

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
pub(super) fn landlock_rules(
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
pub(super) fn build_landlock_ruleset(rules: &LandlockRules, abi_version: i32) -> Result<OwnedFd, String> {
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
