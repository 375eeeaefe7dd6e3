//! The mount backend's plan: /proc/self/mountinfo parsed, and the mount(2)
//! calls the child will make, built in the parent. Pure but for nothing:
//! the caller reads mountinfo and checks paths.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::ConfineStep;

/// One mount(2) call, prepared in the parent.
#[derive(Debug)]
pub(super) struct MountOp {
    pub(super) source: Option<CString>,
    pub(super) target: CString,
    pub(super) fstype: Option<CString>,
    pub(super) flags: libc::c_ulong,
    pub(super) data: Option<CString>,
    pub(super) step: ConfineStep,
    /// Into `ConfinePlan::objects`.
    pub(super) index: u32,
    /// A submount that may be hidden by another mount, or not copied by a
    /// recursive bind (unbindable): ENOENT, ENOTDIR and EINVAL are ignored.
    pub(super) optional: bool,
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

/// A path rule for the mount backend: read-only or writable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PathRule {
    pub(super) path: PathBuf,
    pub(super) writable: bool,
}

/// The filesystem rules of the mount backend, in the order the child runs
/// them, from the spec's (canonical) paths and the parent's mount table.
/// Pure, for tests: existence checks happen before.
#[derive(Debug, Default)]
pub(super) struct MountPlanBuilder {
    pub(super) mounts: Vec<MountOp>,
    pub(super) objects: Vec<String>,
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
    pub(super) fn push(
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
    pub(super) fn path_rules(&mut self, rules: &[PathRule], entries: &[MountEntry]) -> Result<(), String> {
        let mut rules = rules.to_vec();
        tend_core::sort::sort_by_key(&mut rules, |r| (r.path.components().count(), r.writable));
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
