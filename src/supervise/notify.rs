//! Readiness signals from the services: the sd_notify socket (made when a
//! unit first needs it) and the attribution of each message to the service
//! it came from.
//!
//! Each message is attributed to the service whose process sent it: by the
//! sender's cgroup (SCM_PIDFD, see `crate::sys::Sender`) when the service
//! has its own, which holds even for a sender that has exited since; else
//! by its pid (SCM_CREDENTIALS, which the kernel fills in): the leader (or
//! the `MAINPID=` it named), a member of its process group, or a
//! descendant a few levels down. A `MAINPID=` must name a process of the
//! service (its cgroup, its process group, or below its leader). What the
//! message says is the core's to judge.

use crate::readiness::notify::{Message, NotifySocket};
use crate::sys;
use crate::unit::{ServiceType, UnitSpec};
use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use tend_core::{Core, ServiceId};

/// Where the notify socket goes, in a place no other user can have taken
/// first: for root, `/run/tend-notify-PID.sock` when only root can write
/// `/run` (services of any user reach it there, and a private /tmp does
/// not hide it), else a fresh folder of a name nobody can guess in the
/// temp dir; for any other user, its private runtime folder (its services
/// all run as that user). Returns the socket path and a folder to remove
/// at exit, if one was made.
fn notify_socket_path() -> Result<(PathBuf, Option<PathBuf>), String> {
    let pid = sys::getpid();
    if !nix::unistd::geteuid().is_root() {
        let dir = crate::ctl::client::runtime_dir();
        sys::paths::use_private_dir(&dir)?;
        return Ok((dir.join(format!("notify-{pid}.sock")), None));
    }
    let run = std::path::Path::new("/run");
    let run_is_roots = std::fs::symlink_metadata(run).is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.is_dir() && sys::paths::others_can_write(m.uid(), m.mode(), 0).is_none()
    });
    if run_is_roots {
        return Ok((run.join(format!("tend-notify-{pid}.sock")), None));
    }
    let dir = sys::paths::make_temp_dir(&std::env::temp_dir(), &format!("tend-notify-{pid}."), 0o711)
        .map_err(|e| format!("cannot make a folder for the notify socket: {e}"))?;
    Ok((dir.join("notify.sock"), Some(dir)))
}

/// Variables a service gets from tend: `(name, value)`.
pub(super) type Env = Vec<(OsString, OsString)>;

#[derive(Default)]
pub(super) struct Notify {
    socket: Option<NotifySocket>,
}

impl Notify {
    /// NOTIFY_SOCKET (and WATCHDOG_USEC) for a notify service, binding the
    /// socket at its first use; `Some(fd)` in the answer is that new socket,
    /// for the loop to watch.
    pub(super) fn env_for(&mut self, unit: &UnitSpec) -> Result<(Env, Option<RawFd>), String> {
        if unit.service_type != ServiceType::Notify || unit.notify_fd.is_some() {
            return Ok((Vec::new(), None));
        }
        let mut new_socket = None;
        if self.socket.is_none() {
            let (path, made_dir) = notify_socket_path()?;
            let open_to_all = nix::unistd::geteuid().is_root();
            let socket = NotifySocket::bind(&path, made_dir, open_to_all)
                .map_err(|e| format!("cannot create the notify socket {}: {e}", path.display()))?;
            new_socket = Some(socket.raw_fd());
            self.socket = Some(socket);
        }
        let path = self.socket.as_ref().map(|n| n.path.clone()).unwrap_or_default();
        let mut env = vec![(OsString::from("NOTIFY_SOCKET"), path.into_os_string())];
        if let Some(watchdog) = unit.watchdog {
            env.push(("WATCHDOG_USEC".into(), watchdog.as_micros().to_string().into()));
        }
        Ok((env, new_socket))
    }

    /// The socket could not be watched: drop it, so the next notify
    /// service tries again.
    pub(super) fn forget(&mut self) {
        self.socket = None;
    }

    /// The next datagram waiting, if any.
    pub(super) fn receive_one(&self) -> Option<Message> {
        self.socket.as_ref()?.receive_one()
    }
}

/// Is `pid` a process of `service`: in its cgroup, its process group, or
/// below its leader?
pub(super) fn is_member(core: &Core<UnitSpec>, cgroup_pids: &[i32], service: ServiceId, pid: i32) -> bool {
    let Some(leader) = core.pid(service) else { return false };
    if pid == leader || cgroup_pids.contains(&pid) {
        return true;
    }
    if core.spec(service).config.process_group && sys::process_group_of(pid) == Some(leader) {
        return true;
    }
    let mut current = pid;
    for _ in 0..16 {
        match sys::parent_of(current) {
            Some(parent) if parent == leader => return true,
            Some(parent) if parent > 1 => current = parent,
            _ => return false,
        }
    }
    false
}

/// Which service does process `pid` belong to? Its leader (or the
/// `MAINPID=` it named), a member of its process group, or a descendant (a
/// few levels up the tree).
pub(super) fn service_of(core: &Core<UnitSpec>, pid: i32) -> Option<ServiceId> {
    if let Some(service) = core.main_process_of(pid) {
        return Some(service);
    }
    if let Some(pgid) = sys::process_group_of(pid) {
        if let Some(service) = core.main_process_of(pgid).filter(|&s| core.spec(s).config.process_group) {
            return Some(service);
        }
    }
    let mut current = pid;
    for _ in 0..16 {
        current = sys::parent_of(current)?;
        if current <= 1 {
            return None;
        }
        if let Some(service) = core.main_process_of(current) {
            return Some(service);
        }
    }
    None
}
