//! Opening paths that another user may be able to change, as root.
//!
//! Owns the rules for every file and folder tend opens on behalf of a
//! service or a unit: a folder is walked one component at a time with
//! `openat(O_NOFOLLOW)` from `/`, and a symbolic link is followed only where
//! nobody but root (or tend's own user) could have put it; the file at the
//! end is opened relative to the folder's descriptor, never by its path
//! again, and `fstat` of that descriptor decides what it is. This is the
//! `openat` discipline of s6-log's and systemd's `chase()` with
//! `CHASE_SAFE`, reduced to what tend needs.
//!
//! Must not decide policy (what to open, what to do on refusal) nor print:
//! callers get an [`io::Error`] whose text says what was refused and why.

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Symbolic links followed in one walk, as the kernel's own limit (40).
const MAX_LINKS: usize = 40;

/// tend's effective uid: the one other owner, besides root, trusted.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Why a folder's entries could be changed by someone other than root and
/// `me`: owned by another uid, or writable by its group or by everyone.
/// `None` when only root (or `me`) can change it. Pure: tests call it with
/// made-up modes.
pub fn others_can_write(uid: u32, mode: u32, me: u32) -> Option<String> {
    let owner_ok = uid == 0 || uid == me;
    let group_writable = mode & 0o020 != 0;
    let world_writable = mode & 0o002 != 0;
    match (owner_ok, group_writable, world_writable) {
        (true, false, false) => None,
        (false, _, _) => Some(format!("owned by uid {uid}")),
        (true, _, true) => Some(format!("writable by everyone (mode {:04o})", mode & 0o7777)),
        (true, true, false) => Some(format!("writable by its group (mode {:04o})", mode & 0o7777)),
    }
}

/// A world-writable folder with the sticky bit (`/tmp`): others may add
/// entries, but not rename or remove one they do not own.
pub fn is_sticky(mode: u32) -> bool {
    mode & 0o1000 != 0
}

fn kind(st: &FileStat) -> u32 {
    st.st_mode & libc::S_IFMT
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

fn errno(err: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(err as i32)
}

/// Open the folder `path` for `*at` calls (an `O_PATH` descriptor), walking
/// it one component at a time without following symbolic links, except a
/// link whose containing folder only root (or tend's user) can change, or a
/// link owned by root (or tend's user) in a sticky folder: only those can
/// have been placed by someone tend trusts. A relative path starts at the
/// current directory.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let me = euid();
    let start = if path.is_absolute() { "/" } else { "." };
    let mut current =
        nix::fcntl::open(start, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(errno)?;
    let mut current_path = PathBuf::from(start);
    let mut current_stat = nix::sys::stat::fstat(&current).map_err(errno)?;
    // The components still to walk, first at the end (pop from the back).
    let mut rest: Vec<OsString> = Vec::new();
    push_components(&mut rest, path);
    let mut links = 0;
    while let Some(name) = rest.pop() {
        if name == "/" {
            current =
                nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                    .map_err(errno)?;
            current_stat = nix::sys::stat::fstat(&current).map_err(errno)?;
            current_path = PathBuf::from("/");
            continue;
        }
        let next = nix::fcntl::openat(
            &current,
            name.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            io::Error::new(errno(e).kind(), format!("{}: {}", current_path.join(&name).display(), reason(e)))
        })?;
        let st = nix::sys::stat::fstat(&next).map_err(errno)?;
        let here = current_path.join(&name);
        if kind(&st) == libc::S_IFLNK {
            let folder_trusted = others_can_write(current_stat.st_uid, current_stat.st_mode, me).is_none();
            let link_owner_trusted = st.st_uid == 0 || st.st_uid == me;
            let sticky_ok = is_sticky(current_stat.st_mode) && link_owner_trusted;
            if !(folder_trusted || sticky_ok) {
                let why = others_can_write(current_stat.st_uid, current_stat.st_mode, me).unwrap_or_default();
                return Err(refused(format!(
                    "refusing to follow the symbolic link {}: its folder is {why}",
                    here.display()
                )));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = nix::fcntl::readlinkat(&current, name.as_os_str()).map_err(errno)?;
            // A relative target continues from the folder holding the link.
            push_components(&mut rest, Path::new(&target));
            continue;
        }
        if kind(&st) != libc::S_IFDIR {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a folder", here.display()),
            ));
        }
        current = next;
        current_stat = st;
        current_path = if name == ".." {
            current_path.parent().map(Path::to_path_buf).unwrap_or(current_path)
        } else {
            here
        };
    }
    Ok(current)
}

/// Queue `path`'s components so that the first is popped first.
fn push_components(rest: &mut Vec<OsString>, path: &Path) {
    let mut parts: Vec<OsString> = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir => parts.push(OsString::from("/")),
            Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => parts.push(OsString::from("..")),
            Component::Normal(name) => parts.push(name.to_os_string()),
        }
    }
    rest.extend(parts.into_iter().rev());
}

/// The error text without the errno name nix prefixes.
fn reason(err: nix::errno::Errno) -> String {
    tend_core::text::error_text(&io::Error::from_raw_os_error(err as i32))
}

/// Split a file path into its folder and its name; `None` when it names no
/// file (`/`, `..`, a path ending in `/`).
pub fn split_file(path: &Path) -> Option<(PathBuf, OsString)> {
    if path.as_os_str().as_bytes().ends_with(b"/") {
        return None;
    }
    let name = path.file_name()?.to_os_string();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some((parent, name))
}

/// Open (create, append) the log file `name` in the folder `dir` as a
/// service's log: never through a symbolic link (`O_NOFOLLOW`), never
/// blocking (`O_NONBLOCK`: a FIFO planted there cannot stall the loop), and
/// only a regular file with one link (a hard link to a file elsewhere would
/// let root append to it). Created with mode 0640.
pub fn open_log_file(dir: &OwnedFd, name: &OsStr) -> io::Result<File> {
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(dir, name, flags, Mode::from_bits_truncate(0o640)).map_err(|e| {
        if e == nix::errno::Errno::ELOOP {
            refused("it is a symbolic link (tend never follows links to log files)".into())
        } else if e == nix::errno::Errno::ENXIO {
            refused("it is not a regular file".into())
        } else {
            errno(e)
        }
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(errno)?;
    if kind(&st) != libc::S_IFREG {
        return Err(refused("it is not a regular file".into()));
    }
    if st.st_nlink > 1 {
        return Err(refused(format!(
            "it has {} hard links (a log file must have one: tend would append to every copy)",
            st.st_nlink
        )));
    }
    Ok(File::from(fd))
}

/// Rename `from` to `to` within the folder `dir` (rename(2) never follows
/// a link: a planted one is moved, not its target). A missing `from` is no
/// error: a gap in the rotated files.
pub fn rename_in(dir: &OwnedFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
    match nix::fcntl::renameat(dir.as_fd(), from, dir.as_fd(), to) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(errno(e)),
    }
}

/// Whether `name` exists in `dir` (as anything, links not followed).
pub fn exists_in(dir: &OwnedFd, name: &OsStr) -> bool {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn who_can_write() {
        assert_eq!(others_can_write(0, 0o755, 1000), None);
        assert_eq!(others_can_write(1000, 0o700, 1000), None);
        assert_eq!(others_can_write(1001, 0o755, 1000).unwrap(), "owned by uid 1001");
        assert_eq!(others_can_write(0, 0o775, 1000).unwrap(), "writable by its group (mode 0775)");
        assert_eq!(others_can_write(0, 0o1777, 1000).unwrap(), "writable by everyone (mode 1777)");
        assert!(is_sticky(0o1777) && !is_sticky(0o777));
    }

    #[test]
    fn split_names_a_file_or_nothing() {
        assert_eq!(split_file(Path::new("/var/log/a.log")), Some(("/var/log".into(), "a.log".into())));
        assert_eq!(split_file(Path::new("a.log")), Some((".".into(), "a.log".into())));
        assert_eq!(split_file(Path::new("/")), None);
        assert_eq!(split_file(Path::new("/var/log/")), None);
        assert_eq!(split_file(Path::new("/var/..")), None);
    }

    #[test]
    fn a_log_file_is_never_opened_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "secret\n").unwrap();
        symlink(&target, dir.path().join("web.log")).unwrap();
        symlink(dir.path().join("missing"), dir.path().join("dangling.log")).unwrap();
        let fd = open_dir(dir.path()).unwrap();
        let err = open_log_file(&fd, OsStr::new("web.log")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(open_log_file(&fd, OsStr::new("dangling.log")).is_err());
        assert!(!dir.path().join("missing").exists(), "a dangling link must not create its target");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret\n");
        // A hard link to another file is refused too.
        std::fs::hard_link(&target, dir.path().join("hard.log")).unwrap();
        let err = open_log_file(&fd, OsStr::new("hard.log")).unwrap_err();
        assert!(err.to_string().contains("hard links"), "{err}");
        // A FIFO does not block and is refused.
        nix::unistd::mkfifo(&dir.path().join("fifo.log"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(open_log_file(&fd, OsStr::new("fifo.log")).is_err());
        // A plain new file is fine.
        open_log_file(&fd, OsStr::new("new.log")).unwrap();
    }

    #[test]
    fn links_in_folders_others_can_write_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        symlink(&real, open.join("link")).unwrap();
        // Trusted folder: followed.
        assert!(open_dir(&open.join("link")).is_ok());
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = open_dir(&open.join("link")).unwrap_err();
        assert!(err.to_string().contains("refusing to follow the symbolic link"), "{err}");
        // A link owned by us in a sticky world-writable folder is fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(open_dir(&open.join("link")).is_ok());
        // Plain folders below such a folder are fine.
        assert!(open_dir(&real).is_ok());
        let err = open_dir(&dir.path().join("nothing")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }
}

/// What to do with a folder that is to be tend's private one (the runtime
/// folder holding the control socket and, for a non-root tend, the notify
/// socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateDir {
    /// As it should be.
    Ok,
    /// Ours, but its mode or group is not the one wanted: set them.
    Fix { mode: u32, gid: Option<u32> },
    /// Not ours to trust: why.
    Refuse(String),
}

/// Judge a private folder from its `lstat`: it must be a real folder owned
/// by `me`, writable by nobody else; its mode should be 0700, or 0750 with
/// group `group` (the socket group). Pure: tests call it with made-up stats.
pub fn judge_private_dir(
    kind: u32,
    uid: u32,
    gid: u32,
    mode: u32,
    me: u32,
    group: Option<u32>,
) -> PrivateDir {
    if kind == libc::S_IFLNK {
        return PrivateDir::Refuse("it is a symbolic link".into());
    }
    if kind != libc::S_IFDIR {
        return PrivateDir::Refuse("it is not a folder".into());
    }
    if uid != me {
        return PrivateDir::Refuse(format!(
            "it is owned by uid {uid}, not by uid {me}: another user may have made it to answer in tend's place"
        ));
    }
    let mode = mode & 0o7777;
    if mode & 0o022 != 0 {
        return PrivateDir::Refuse(format!(
            "it is writable by others (mode {mode:04o}): another user may have put a socket there"
        ));
    }
    let wanted = if group.is_some() { 0o750 } else { 0o700 };
    let group_ok = group.is_none_or(|g| g == gid);
    if mode == wanted && group_ok {
        PrivateDir::Ok
    } else {
        PrivateDir::Fix { mode: wanted, gid: group.filter(|g| *g != gid) }
    }
}

/// Make the private folder `dir` (its parents as needed) or check the one
/// that is there: see [`judge_private_dir`]. The mode and group are set
/// through a descriptor opened with `O_NOFOLLOW`, never by path. Only the
/// control socket's owner sets them (`group` is its socket group); other
/// users of the folder ([`use_private_dir`]) leave them as they are.
pub fn ensure_private_dir(dir: &Path, group: Option<u32>) -> Result<(), String> {
    private_dir(dir, group, true)
}

/// [`ensure_private_dir`] without changing the mode or group of a folder
/// that is there (a `--socket-group` run made it 0750 on purpose).
pub fn use_private_dir(dir: &Path) -> Result<(), String> {
    private_dir(dir, None, false)
}

fn private_dir(dir: &Path, group: Option<u32>, fix: bool) -> Result<(), String> {
    let shown = dir.display();
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
    match nix::unistd::mkdir(dir, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(format!("cannot create {shown}: {}", reason(e))),
    }
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => {
            let link = nix::sys::stat::lstat(dir).is_ok_and(|st| kind(&st) == libc::S_IFLNK);
            let what = if link { "a symbolic link" } else { "not a folder" };
            format!("refusing to use {shown}: it is {what}; remove it, or set XDG_RUNTIME_DIR")
        }
        e => format!("cannot open {shown}: {}", reason(e)),
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| format!("cannot examine {shown}: {}", reason(e)))?;
    match judge_private_dir(kind(&st), st.st_uid, st.st_gid, st.st_mode, euid(), group) {
        PrivateDir::Ok => Ok(()),
        PrivateDir::Fix { .. } if !fix => Ok(()),
        PrivateDir::Fix { mode, gid } => {
            if let Some(gid) = gid {
                nix::unistd::fchown(&fd, None, Some(nix::unistd::Gid::from_raw(gid)))
                    .map_err(|e| format!("cannot set the group of {shown}: {}", reason(e)))?;
            }
            nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode))
                .map_err(|e| format!("cannot set the mode of {shown}: {}", reason(e)))
        }
        PrivateDir::Refuse(why) => {
            Err(format!("refusing to use {shown}: {why}; remove it, or set XDG_RUNTIME_DIR"))
        }
    }
}

/// A client's check of the folder of the default socket before it talks
/// to whatever listens there: a real folder owned by root or by the user,
/// writable by nobody else. (It does not fix anything.)
pub fn check_trusted_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    let st = match nix::sys::stat::lstat(dir) {
        Ok(st) => st,
        // Nothing there: nobody answers, which the connect reports.
        Err(_) => return Ok(()),
    };
    let me = euid();
    let why = if kind(&st) == libc::S_IFLNK {
        Some("it is a symbolic link".to_string())
    } else if kind(&st) != libc::S_IFDIR {
        Some("it is not a folder".to_string())
    } else {
        others_can_write(st.st_uid, st.st_mode, me)
    };
    match why {
        None => Ok(()),
        Some(why) => Err(format!(
            "refusing to talk to the socket in {shown}: it is {why}, so another user could answer in place of \
             your supervisor; remove it, or set XDG_RUNTIME_DIR",
            why = why.trim_start_matches("it is ")
        )),
    }
}

/// A fresh folder with a name nobody could guess (mkdtemp(3)), mode `mode`:
/// a place for a socket in a folder others can write, such as /tmp.
pub fn make_temp_dir(base: &Path, prefix: &str, mode: u32) -> io::Result<PathBuf> {
    let template = base.join(format!("{prefix}XXXXXX"));
    let dir = nix::unistd::mkdtemp(&template).map_err(errno)?;
    let fd = nix::fcntl::open(
        &dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(errno)?;
    Ok(dir)
}

/// `(device, inode)` of what is at `path` now, links not followed.
pub fn identity(path: &Path) -> Option<(u64, u64)> {
    nix::sys::stat::lstat(path).ok().map(|st| (st.st_dev, st.st_ino))
}

/// Whether `path` is a socket (links not followed); `None` when nothing is there.
pub fn is_socket(path: &Path) -> Option<bool> {
    nix::sys::stat::lstat(path).ok().map(|st| kind(&st) == libc::S_IFSOCK)
}

#[cfg(test)]
mod private_dir_tests {
    use super::*;

    #[test]
    fn a_private_folder_is_ours_and_closed() {
        let d = libc::S_IFDIR;
        assert_eq!(judge_private_dir(d, 1000, 1000, 0o700, 1000, None), PrivateDir::Ok);
        assert_eq!(judge_private_dir(d, 1000, 50, 0o750, 1000, Some(50)), PrivateDir::Ok);
        // Left by a run with a socket group, or without one: fixed.
        assert_eq!(
            judge_private_dir(d, 0, 0, 0o700, 0, Some(50)),
            PrivateDir::Fix { mode: 0o750, gid: Some(50) }
        );
        assert_eq!(judge_private_dir(d, 0, 50, 0o750, 0, None), PrivateDir::Fix { mode: 0o700, gid: None });
        // Someone else's, open to others, or a link: refused.
        for verdict in [
            judge_private_dir(d, 1002, 1002, 0o700, 1000, None),
            judge_private_dir(d, 1000, 1000, 0o777, 1000, None),
            judge_private_dir(d, 1000, 1000, 0o770, 1000, None),
            judge_private_dir(libc::S_IFLNK, 1000, 1000, 0o777, 1000, None),
            judge_private_dir(libc::S_IFREG, 1000, 1000, 0o600, 1000, None),
        ] {
            assert!(matches!(verdict, PrivateDir::Refuse(_)), "{verdict:?}");
        }
    }

    #[test]
    fn ensure_makes_or_checks() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b/tend");
        ensure_private_dir(&dir, None).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_private_dir(&dir, None).unwrap_err();
        assert!(err.contains("writable by others"), "{err}");
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(ensure_private_dir(&link, None).unwrap_err().contains("symbolic link"));
        assert!(check_trusted_dir(&link).is_err());
        assert!(check_trusted_dir(&dir).is_err());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_trusted_dir(&dir).is_ok());
    }
}
