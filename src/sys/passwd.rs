//! The user and group files, `/etc/passwd` and `/etc/group`, read and
//! parsed by tend itself: the user database of the static build.
//!
//! Why not getpwnam(3) there: a static glibc still reads
//! `/etc/nsswitch.conf` and `dlopen`s the host's `libnss_*.so.2` for every
//! source but `files`, modules built for another glibc than the one linked
//! in (glibc's own warning: "Using 'getpwnam' in statically linked
//! applications requires at runtime the shared libraries from the glibc
//! version used for linking"); and the NSS, `dlopen` and iconv code it
//! drags in is about 0.2 MB of a 3 MB binary. The dynamic build keeps
//! glibc's look-ups (LDAP, SSSD and systemd's users work there).
//!
//! Owns: the `files` format as glibc's nss_files reads it (passwd(5),
//! group(5)) and the one read of each file. Must not touch: the loader's
//! rules about which user or group a unit may name (unit::load).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

/// One line of the passwd file, as much of it as tend uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// The whole of a user or group file; `None` when it is missing, unreadable
/// or not a regular file (a FIFO there must not hang tend: O_NONBLOCK, then
/// `fstat` of the descriptor). A missing file is an empty database, as for
/// glibc.
pub fn read_db(path: &Path) -> Option<Vec<u8>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = Vec::new();
    file.read_to_end(&mut text).ok()?;
    Some(text)
}

/// The entries of a database, as nss_files sees them: one per line,
/// leading blanks skipped, empty lines and `#` comments ignored, fields
/// split at `:`. Entries named `+…` or `-…` are NIS compat markers that
/// nss_files never matches: left out too.
fn entries(db: &[u8]) -> impl Iterator<Item = Vec<&[u8]>> {
    db.split(|&b| b == b'\n').filter_map(|line| {
        let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
        let line = &line[start..];
        if line[0] == b'#' || line[0] == b'+' || line[0] == b'-' {
            return None;
        }
        Some(line.split(|&b| b == b':').collect())
    })
}

/// A numeric field: decimal digits only, within u32 (nss_files drops the
/// line otherwise).
fn number(field: &[u8]) -> Option<u32> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).into_owned()
}

/// name:password:uid:gid[:gecos:home:shell]; a line without a valid uid
/// and gid is no entry (nss_files skips it and reads on).
fn passwd_entry(fields: &[&[u8]]) -> Option<PasswdEntry> {
    let (name, uid, gid) = (fields.first()?, fields.get(2)?, fields.get(3)?);
    if name.is_empty() {
        return None;
    }
    Some(PasswdEntry {
        name: text(name),
        uid: number(uid)?,
        gid: number(gid)?,
        home: fields.get(5).map_or_else(String::new, |home| text(home)),
    })
}

/// The first entry named `name` (getpwnam(3)).
pub fn user_by_name(passwd: &[u8], name: &str) -> Option<PasswdEntry> {
    entries(passwd).filter(|fields| fields[0] == name.as_bytes()).find_map(|fields| passwd_entry(&fields))
}

/// The first entry with `uid` (getpwuid(3)).
pub fn user_by_uid(passwd: &[u8], uid: u32) -> Option<PasswdEntry> {
    entries(passwd).filter_map(|fields| passwd_entry(&fields)).find(|entry| entry.uid == uid)
}

/// name:password:gid[:member,member…]. Members are split at commas, each
/// without its leading blanks but with any trailing ones (`a ,b` lists
/// `a ` and `b`), as glibc's parse_list (nss/nss_files/files-parse.c) does.
fn group_entry<'a>(fields: &[&'a [u8]]) -> Option<(&'a [u8], u32, impl Iterator<Item = &'a [u8]>)> {
    let (name, gid) = (*fields.first()?, fields.get(2)?);
    if name.is_empty() {
        return None;
    }
    let members = fields.get(3).copied().unwrap_or_default();
    let members =
        members.split(|&b| b == b',').map(|member| member.trim_ascii_start()).filter(|m| !m.is_empty());
    Some((name, number(gid)?, members))
}

/// The gid of the first group named `name` (getgrnam(3)).
pub fn group_by_name(group: &[u8], name: &str) -> Option<u32> {
    entries(group)
        .filter(|fields| fields[0] == name.as_bytes())
        .find_map(|fields| group_entry(&fields).map(|(_, gid, _)| gid))
}

/// getgrouplist(3): `gid` first, then every group that lists `user` as a
/// member, in file order, each gid once. One deliberate difference from
/// glibc: its getgrouplist (files-initgroups.c) parses every line of the
/// file, so the members of a commented-out group line, or of a `+`/`-` NIS
/// compat line, get that group, while its getgrnam skips those lines; here
/// such lines are skipped for both.
pub fn groups_of(group: &[u8], user: &str, gid: u32) -> Vec<u32> {
    let mut groups = vec![gid];
    for fields in entries(group) {
        let Some((_, group_gid, mut members)) = group_entry(&fields) else {
            continue;
        };
        if !groups.contains(&group_gid) && members.any(|member| member == user.as_bytes()) {
            groups.push(group_gid);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_FILE: &[u8] = b"\
# comment line
root:x:0:0:root:/root:/bin/bash

   indented:x:5:6:gecos:/home/indented:/bin/sh
short:x:7
nogid:x:8:
badnum:x:12a:1:::
toobig:x:4294967296:1::/:
+nisuser::::::
-excluded:x:9:9::/:
minimal:x:10:11
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
alice:x:2000:2000:second alice:/home/other:/bin/sh
uidtwin:x:1000:50::/twin:
crlf:x:20:20::/home/crlf:/bin/sh\r
nonl:x:30:31::/no/newline:/bin/sh";

    const GROUP_FILE: &[u8] = b"\
root:x:0:
# staff:x:99:alice
adm:x:4:syslog,alice
users:x:100:
alice:x:1000:alice
wheel:x:10: bob , alice,carol,	dave\r
sudo:x:27:alicex,xalice
dup:x:4:alice
  spaced:x:200:alice
bad:x:oops:alice
+nis:x:300:alice
nomembers:x:400
";

    fn user(name: &str, uid: u32, gid: u32, home: &str) -> Option<PasswdEntry> {
        Some(PasswdEntry { name: name.into(), uid, gid, home: home.into() })
    }

    #[test]
    fn users_by_name_first_match_wins_and_bad_lines_are_skipped() {
        assert_eq!(user_by_name(PASSWD_FILE, "root"), user("root", 0, 0, "/root"));
        assert_eq!(user_by_name(PASSWD_FILE, "alice"), user("alice", 1000, 1000, "/home/alice"));
        assert_eq!(user_by_name(PASSWD_FILE, "indented"), user("indented", 5, 6, "/home/indented"));
        assert_eq!(user_by_name(PASSWD_FILE, "minimal"), user("minimal", 10, 11, ""));
        assert_eq!(user_by_name(PASSWD_FILE, "crlf"), user("crlf", 20, 20, "/home/crlf"));
        assert_eq!(user_by_name(PASSWD_FILE, "nonl"), user("nonl", 30, 31, "/no/newline"));
        for missing in ["short", "nogid", "badnum", "toobig", "nobody", "", "# comment line", "Alice"] {
            assert_eq!(user_by_name(PASSWD_FILE, missing), None, "{missing:?}");
        }
        // NIS compat markers are never entries, by either name.
        for compat in ["+nisuser", "nisuser", "-excluded", "excluded"] {
            assert_eq!(user_by_name(PASSWD_FILE, compat), None, "{compat:?}");
        }
    }

    #[test]
    fn users_by_uid_first_match_wins() {
        assert_eq!(user_by_uid(PASSWD_FILE, 0), user("root", 0, 0, "/root"));
        assert_eq!(user_by_uid(PASSWD_FILE, 1000), user("alice", 1000, 1000, "/home/alice"));
        assert_eq!(user_by_uid(PASSWD_FILE, 2000), user("alice", 2000, 2000, "/home/other"));
        assert_eq!(user_by_uid(PASSWD_FILE, 9), None, "-excluded is no entry");
        assert_eq!(user_by_uid(PASSWD_FILE, 12), None);
        assert_eq!(user_by_uid(PASSWD_FILE, 65534), None);
    }

    #[test]
    fn groups_by_name() {
        assert_eq!(group_by_name(GROUP_FILE, "root"), Some(0));
        assert_eq!(group_by_name(GROUP_FILE, "adm"), Some(4));
        assert_eq!(group_by_name(GROUP_FILE, "spaced"), Some(200));
        assert_eq!(group_by_name(GROUP_FILE, "nomembers"), Some(400));
        for missing in ["staff", "bad", "+nis", "nis", "nobody", ""] {
            assert_eq!(group_by_name(GROUP_FILE, missing), None, "{missing:?}");
        }
    }

    #[test]
    fn group_list_is_the_primary_group_then_memberships_in_file_order() {
        // adm, wheel, spaced; not the commented staff, not sudo (only
        // look-alike names), not the line with a bad gid nor the NIS
        // marker, dup's gid 4 only once, the primary group 1000 only once
        // although alice is listed in it.
        assert_eq!(groups_of(GROUP_FILE, "alice", 1000), [1000, 4, 10, 200]);
        // Members lose their leading blanks, not their trailing ones.
        assert_eq!(groups_of(GROUP_FILE, "bob", 100), [100]);
        assert_eq!(groups_of(GROUP_FILE, "bob ", 100), [100, 10]);
        assert_eq!(groups_of(GROUP_FILE, "carol", 100), [100, 10]);
        assert_eq!(groups_of(GROUP_FILE, "dave", 100), [100]);
        assert_eq!(groups_of(GROUP_FILE, "dave\r", 100), [100, 10]);
        assert_eq!(groups_of(GROUP_FILE, "carol", 10), [10]);
        assert_eq!(groups_of(GROUP_FILE, "nobody", 65534), [65534]);
        assert_eq!(groups_of(b"", "alice", 7), [7]);
    }

    #[test]
    fn names_are_compared_as_bytes() {
        let passwd = b"caf\xc3\xa9:x:1:2::/h\xffome:\n";
        assert_eq!(user_by_name(passwd, "caf\u{e9}"), user("caf\u{e9}", 1, 2, "/h\u{fffd}ome"));
        assert_eq!(user_by_name(passwd, "cafe"), None);
    }

    #[test]
    fn the_files_are_read_only_when_regular() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, "a:x:1:2::/:\n").unwrap();
        assert_eq!(read_db(&path).as_deref(), Some(&b"a:x:1:2::/:\n"[..]));
        assert_eq!(read_db(&dir.path().join("missing")), None);
        assert_eq!(read_db(dir.path()), None, "a directory");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(read_db(&fifo), None, "a FIFO, without waiting for a writer");
    }
}
