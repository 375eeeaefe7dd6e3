//! Pure part of cgroup detection: where the hierarchies are mounted and where
//! tend sits in each, computed from the texts of `/proc/self/cgroup` and
//! `/proc/self/mountinfo`. No system calls here, so every layout (pure v2,
//! hybrid, v1 only, nothing) is unit-tested with sample texts.

use std::path::{Path, PathBuf};

/// The cgroup v2 (unified) hierarchy, as seen by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unified {
    /// Where cgroup2 is mounted (e.g. `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).
    pub mount: PathBuf,
    /// tend's own cgroup directory (mount point + path from `/proc/self/cgroup`).
    pub own: PathBuf,
    /// The path from `/proc/self/cgroup` (`/` at the root).
    pub own_path: String,
}

/// One v1 hierarchy (one mount of the `cgroup` file system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Controllers bound to it (`memory`, `cpu`, `cpuacct`, …); `name=…` excluded.
    pub controllers: Vec<String>,
    pub mount: PathBuf,
    /// tend's own cgroup directory in it.
    pub own: PathBuf,
}

impl V1Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// What is mounted and where tend is, plus why a mounted hierarchy was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub unified: Option<Unified>,
    pub v1: Vec<V1Hierarchy>,
    /// Hierarchies that are mounted but cannot be used (tend's cgroup is
    /// outside the mounted sub-tree, …), for messages.
    pub skipped: Vec<String>,
}

impl Layout {
    /// The v1 hierarchy holding `controller`.
    #[cfg(test)]
    pub fn v1_with(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }
}

/// One line of `/proc/self/cgroup`: `ID:CONTROLLERS:PATH`.
struct Membership<'a> {
    controllers: Vec<&'a str>,
    path: &'a str,
}

fn parse_proc_cgroup(text: &str) -> Vec<Membership<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let controllers = controllers.split(',').filter(|c| !c.is_empty()).collect();
            Some(Membership { controllers, path })
        })
        .collect()
}

/// One line of `/proc/self/mountinfo`, the fields we use.
struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    super_options: Vec<String>,
}

/// Undo the octal escapes of mountinfo (`\040` for a space, …).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            if left.len() < 5 {
                return None;
            }
            let mut right = right.split(' ');
            let fstype = right.next()?.to_string();
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("").split(',').map(str::to_string).collect();
            Some(Mount {
                root: unescape(left[3]),
                point: PathBuf::from(unescape(left[4])),
                fstype,
                super_options,
            })
        })
        .collect()
}

/// `mount point + (path - mount root)`, or `None` when `path` lies outside the
/// mounted sub-tree (a bind mount of another part of the hierarchy).
fn locate(mount: &Mount, path: &str) -> Option<PathBuf> {
    let root = mount.root.trim_end_matches('/');
    let rest = if root.is_empty() {
        path
    } else if path == root {
        ""
    } else {
        path.strip_prefix(root).filter(|r| r.starts_with('/'))?
    };
    let rest = rest.trim_start_matches('/');
    if rest.split('/').any(|c| c == "..") {
        return None;
    }
    Some(if rest.is_empty() { mount.point.clone() } else { mount.point.join(rest) })
}

/// Options of a v1 `cgroup` mount that are not controllers.
fn is_controller_option(option: &str) -> bool {
    !(option.is_empty()
        || option.contains('=')
        || matches!(
            option,
            "rw" | "ro"
                | "xattr"
                | "noprefix"
                | "clone_children"
                | "cpuset_v2_mode"
                | "none"
                | "all"
                | "favordynmods"
                | "nofavordynmods"
        ))
}

/// The layout from the texts of `/proc/self/cgroup` and `/proc/self/mountinfo`.
pub fn parse_layout(proc_cgroup: &str, mountinfo: &str) -> Layout {
    let members = parse_proc_cgroup(proc_cgroup);
    let mounts = parse_mountinfo(mountinfo);
    let mut layout = Layout::default();

    if let Some(m) = members.iter().find(|m| m.controllers.is_empty()) {
        let mut found = false;
        for mount in mounts.iter().filter(|mount| mount.fstype == "cgroup2") {
            if let Some(own) = locate(mount, m.path) {
                layout.unified =
                    Some(Unified { mount: mount.point.clone(), own, own_path: m.path.to_string() });
                found = true;
                break;
            }
        }
        if !found {
            if let Some(mount) = mounts.iter().find(|mount| mount.fstype == "cgroup2") {
                layout.skipped.push(format!(
                    "cgroup2 at {}: tend's cgroup {} is outside the mounted sub-tree {}",
                    mount.point.display(),
                    m.path,
                    mount.root
                ));
            }
        }
    }

    for mount in mounts.iter().filter(|mount| mount.fstype == "cgroup") {
        let controllers: Vec<String> =
            mount.super_options.iter().filter(|o| is_controller_option(o)).cloned().collect();
        if controllers.is_empty() {
            continue; // a named hierarchy (name=systemd): no controller to use
        }
        if layout.v1.iter().any(|h| h.controllers == controllers) {
            continue; // the same hierarchy mounted twice: the first one serves
        }
        let Some(member) = members.iter().find(|m| {
            !m.controllers.is_empty() && m.controllers.iter().all(|c| controllers.iter().any(|o| o == c))
        }) else {
            continue;
        };
        match locate(mount, member.path) {
            Some(own) => layout.v1.push(V1Hierarchy { controllers, mount: mount.point.clone(), own }),
            None => layout.skipped.push(format!(
                "v1 {} at {}: tend's cgroup {} is outside the mounted sub-tree {}",
                controllers.join(","),
                mount.point.display(),
                member.path,
                mount.root
            )),
        }
    }
    layout
}

/// Whether `dir` is the real root of its hierarchy (v2: the root has no
/// `cgroup.type`). Tests pass a fake file system, so the check is separate.
pub fn is_v2_root(dir: &Path) -> bool {
    !dir.join("cgroup.type").exists()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// This CI host's layout (also used by the manager's tests).
    pub(crate) const HYBRID_CGROUP: &str =
        "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
4:memory:/process_api/1ac9\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    pub(crate) const HYBRID_MOUNTINFO: &str = "\
23 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_host() {
        let l = parse_layout(HYBRID_CGROUP, HYBRID_MOUNTINFO);
        let u = l.unified.as_ref().unwrap();
        assert_eq!(u.mount, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(u.own, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(u.own_path, "/");
        assert_eq!(l.v1_with("memory").unwrap().own, Path::new("/sys/fs/cgroup/memory/process_api/1ac9"));
        assert_eq!(l.v1_with("pids").unwrap().own, Path::new("/sys/fs/cgroup/pids"));
        assert_eq!(l.v1_with("cpu").unwrap().mount, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(l.v1_with("cpuacct").unwrap().mount, Path::new("/sys/fs/cgroup/cpuacct"));
        assert_eq!(l.v1_with("freezer").unwrap().mount, Path::new("/sys/fs/cgroup/freezer"));
        assert!(l.v1.iter().all(|h| !h.controllers.iter().any(|c| c.contains("systemd"))));
        assert_eq!(l.v1.len(), 8);
        assert!(l.skipped.is_empty());
    }

    #[test]
    fn pure_v2_host() {
        let l = parse_layout(
            "0::/system.slice/tend.service\n",
            "24 1 0:22 / /sys rw - sysfs sysfs rw\n\
             30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
        );
        let u = l.unified.unwrap();
        assert_eq!(u.own, Path::new("/sys/fs/cgroup/system.slice/tend.service"));
        assert_eq!(u.own_path, "/system.slice/tend.service");
        assert!(l.v1.is_empty());
    }

    #[test]
    fn container_with_cgroup_namespace() {
        // Docker with a private cgroup namespace: tend sees itself at `/`.
        let l = parse_layout(
            "0::/\n",
            "700 690 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate\n",
        );
        assert_eq!(l.unified.unwrap().own, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn bind_mounted_sub_tree() {
        // The host's sub-tree /docker/abc is mounted at /sys/fs/cgroup.
        let l = parse_layout(
            "0::/docker/abc/web\n",
            "700 690 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup rw\n",
        );
        assert_eq!(l.unified.unwrap().own, Path::new("/sys/fs/cgroup/web"));
        let l =
            parse_layout("0::/other\n", "700 690 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup rw\n");
        assert!(l.unified.is_none());
        assert_eq!(l.skipped.len(), 1, "{:?}", l.skipped);
        let l = parse_layout(
            "0::/docker/abcdef\n",
            "700 690 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup rw\n",
        );
        assert!(l.unified.is_none());
    }

    #[test]
    fn v1_only_host_with_co_mounted_controllers() {
        let l = parse_layout(
            "11:cpu,cpuacct:/user.slice\n10:memory:/user.slice/user-0.slice\n3:pids:/user.slice\n\
             2:freezer:/\n1:name=systemd:/user.slice/session-1.scope\n",
            "25 18 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n\
             26 25 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd\n\
             29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             30 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             31 25 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
             32 25 0:29 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n",
        );
        assert!(l.unified.is_none());
        assert_eq!(l.v1.len(), 4);
        let cpu = l.v1_with("cpu").unwrap();
        assert_eq!(cpu.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(cpu.own, Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice"));
        assert_eq!(l.v1_with("cpuacct").unwrap().mount, cpu.mount);
        assert_eq!(
            l.v1_with("memory").unwrap().own,
            Path::new("/sys/fs/cgroup/memory/user.slice/user-0.slice")
        );
        assert_eq!(l.v1_with("freezer").unwrap().own, Path::new("/sys/fs/cgroup/freezer"));
    }

    #[test]
    fn nothing_mounted() {
        let l = parse_layout("0::/\n", "23 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n");
        assert_eq!(l, Layout::default());
        let l = parse_layout("", "");
        assert_eq!(l, Layout::default());
    }

    #[test]
    fn escaped_mount_points() {
        let l = parse_layout("0::/a b\n", "41 31 0:38 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n");
        assert_eq!(l.unified.unwrap().own, Path::new("/mnt/cg two/a b"));
    }
}
