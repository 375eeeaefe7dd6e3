//! The user and group databases as the unit loader sees them
//! ([`UserDb`]). The dynamic build asks the C library (so NSS sources,
//! LDAP, SSSD, systemd's users, work too), by nix's
//! getpw*_r/getgr*_r/getgrouplist wrappers; the static build reads
//! `/etc/passwd` and `/etc/group` itself (`sys::passwd` says why), as a
//! static glibc does for the `files` source, without linking glibc's NSS.

use crate::sys::passwd;
use crate::unit::{UserDb, UserEntry};
use nix::unistd::{Gid, Group, Uid, User};
use std::io;

/// The system's user database.
pub struct SystemUsers;

/// Built with `-C target-feature=+crt-static` (packaging/build-static):
/// the NSS branches below are then dead code, and not linked.
const STATIC_BUILD: bool = cfg!(target_feature = "crt-static");

fn files_entry(entry: passwd::PasswdEntry) -> UserEntry {
    UserEntry { name: entry.name, uid: entry.uid, gid: entry.gid, home: entry.home }
}

/// A missing or unreadable file is an empty database, as for glibc.
fn files_db(path: &str) -> Vec<u8> {
    passwd::read_db(std::path::Path::new(path)).unwrap_or_default()
}

fn entry(user: User) -> UserEntry {
    UserEntry {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir.to_string_lossy().into_owned(),
    }
}

impl UserDb for SystemUsers {
    fn user_by_name(&self, name: &str) -> Option<UserEntry> {
        if STATIC_BUILD {
            return passwd::user_by_name(&files_db(passwd::PASSWD), name).map(files_entry);
        }
        User::from_name(name).ok().flatten().map(entry)
    }

    fn user_by_uid(&self, uid: u32) -> Option<UserEntry> {
        if STATIC_BUILD {
            return passwd::user_by_uid(&files_db(passwd::PASSWD), uid).map(files_entry);
        }
        User::from_uid(Uid::from_raw(uid)).ok().flatten().map(entry)
    }

    fn group_by_name(&self, name: &str) -> Option<u32> {
        if STATIC_BUILD {
            return passwd::group_by_name(&files_db(passwd::GROUP), name);
        }
        Group::from_name(name).ok().flatten().map(|group| group.gid.as_raw())
    }

    fn groups_of(&self, user: &UserEntry) -> Vec<u32> {
        if STATIC_BUILD {
            return passwd::groups_of(&files_db(passwd::GROUP), &user.name, user.gid);
        }
        let Ok(name) = std::ffi::CString::new(user.name.as_str()) else {
            return vec![user.gid];
        };
        match nix::unistd::getgrouplist(&name, Gid::from_raw(user.gid)) {
            Ok(groups) => groups.into_iter().map(Gid::as_raw).collect(),
            Err(_) => vec![user.gid],
        }
    }

    fn current_ids(&self) -> (u32, u32) {
        (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw())
    }

    fn open_file(&self, path: &std::path::Path) -> io::Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
    }
}
