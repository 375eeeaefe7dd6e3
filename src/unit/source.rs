//! Reading a unit file or an env_file: open once, `fstat` the descriptor,
//! read from it, never from the path again.
//!
//! As root ("strict"), a file is trusted only when no other user could have
//! written it or swapped it, like sshd's StrictModes: the file (found
//! through any symlinks) is owned by root and not writable by group or
//! others, and so is every folder on its real path up to `/`; a folder
//! writable by everyone with the sticky bit (`/tmp`) is allowed on the way,
//! since nobody but the owner of an entry can rename or remove it there.
//! The real path comes from the open descriptor (`/proc/self/fd`), so a
//! link swapped between two looks cannot make tend read one file and check
//! another.
//!
//! Whoever runs tend: only a regular file is read (a FIFO would block, a
//! device never ends), at most [`UNIT_FILE_LIMIT`] bytes, and invalid UTF-8
//! is reported at its line and column. Whether the file is world-readable
//! is kept: diagnostics never quote a file that is not (see
//! [`redact`]).
//!
//! The one open goes through [`UserDb::open_file`], which `sys` implements
//! with `O_NONBLOCK` (this module makes no system call of its own beyond
//! `std::fs`).

use super::UserDb;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The largest unit file or env_file read. A unit is a page of YAML; an
/// env_file with 80,000 variables is well under this; execve(2) refuses an
/// environment much larger anyway.
pub const UNIT_FILE_LIMIT: u64 = 1 << 20;

/// A file's text, and whether anyone may read it.
pub(crate) struct Source {
    pub text: String,
    pub world_readable: bool,
}

/// Why a file was not read; `line`/`column` are 0 for the whole file.
#[derive(Debug)]
pub(crate) struct ReadError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl ReadError {
    fn whole(message: String) -> ReadError {
        ReadError { message, line: 0, column: 0 }
    }
}

/// Folders [`untrusted_folders`] found safe during one load, so that the
/// 100 files of one unit folder do not each examine `/`, `/etc`, `/etc/tend`
/// and so on again. Remembering is safe within a load: a folder found owned
/// by root and not writable by others can be made writable again only by
/// root, who needs no swap to change what tend reads.
#[derive(Debug, Default)]
pub(crate) struct TrustedFolders(std::collections::HashSet<PathBuf>);

/// Read `path` as described in the module header.
pub(crate) fn read(path: &Path, users: &dyn UserDb, strict: bool) -> Result<Source, ReadError> {
    read_in(path, users, strict, &mut TrustedFolders::default())
}

/// [`read`], with the folders already found safe in this load.
pub(crate) fn read_in(
    path: &Path,
    users: &dyn UserDb,
    strict: bool,
    trusted: &mut TrustedFolders,
) -> Result<Source, ReadError> {
    let file = users.open_file(path).map_err(|e| ReadError::whole(format!("cannot read: {}", reason(&e))))?;
    let meta = file.metadata().map_err(|e| ReadError::whole(format!("cannot read: {}", reason(&e))))?;
    if let Some(kind) = not_regular(&meta) {
        return Err(ReadError::whole(format!("cannot read: it is {kind}, not a regular file")));
    }
    if meta.len() > UNIT_FILE_LIMIT {
        return Err(ReadError::whole(format!(
            "cannot read: it is {} bytes; files tend reads are limited to {} KiB",
            meta.len(),
            UNIT_FILE_LIMIT >> 10
        )));
    }
    if strict {
        if let Some(why) = untrusted_meta(path, &meta) {
            return Err(ReadError::whole(why));
        }
        let real = real_path(&file, path, &meta)
            .ok_or_else(|| ReadError::whole("refusing to load: cannot tell which file was opened".into()))?;
        if let Some(why) = untrusted_folders_in(&real, trusted) {
            return Err(ReadError::whole(why));
        }
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(UNIT_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::whole(format!("cannot read: {}", reason(&e))))?;
    if bytes.len() as u64 > UNIT_FILE_LIMIT {
        return Err(ReadError::whole(format!(
            "cannot read: it grew past {} KiB while being read",
            UNIT_FILE_LIMIT >> 10
        )));
    }
    let world_readable = meta.mode() & 0o004 != 0;
    let text = String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let (line, column) = line_column(bytes, at);
        let shown = if world_readable { format!(" (byte 0x{:02x})", bytes[at]) } else { String::new() };
        ReadError { message: format!("invalid UTF-8{shown}"), line, column }
    })?;
    Ok(Source { text, world_readable })
}

/// 1-based line and column (in characters) of byte `at`.
fn line_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

/// What a non-regular file is, for the message.
fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a folder")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// The path the open descriptor names now (`/proc/self/fd/N`), checked to
/// be that very file; without /proc, the canonical path when it is.
fn real_path(file: &File, path: &Path, meta: &Metadata) -> Option<PathBuf> {
    let same = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
    let from_proc = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok();
    if let Some(real) = from_proc.filter(|p| p.is_absolute() && same(p)) {
        return Some(real);
    }
    std::fs::canonicalize(path).ok().filter(|p| same(p))
}

/// Like sshd's StrictModes, for a file or folder root is about to trust:
/// owned by a non-root uid, or group- or world-writable. `None` when safe.
pub(crate) fn untrusted_meta(path: &Path, meta: &Metadata) -> Option<String> {
    let mode = meta.mode() & 0o7777;
    let uid = meta.uid();
    let writable = mode & 0o022 != 0;
    let shown = path.display();
    let (what, fix) = match (uid != 0, writable) {
        (false, false) => return None,
        (true, false) => (format!("owned by uid {uid}, not root"), format!("chown root {shown}")),
        (false, true) => ("writable by others".to_owned(), format!("chmod go-w {shown}")),
        (true, true) => (
            format!("owned by uid {uid}, not root, and writable by others"),
            format!("chown root {shown} && chmod go-w {shown}"),
        ),
    };
    Some(format!("refusing to load: {what} (mode {mode:04o}); fix with {fix}"))
}

/// The first folder on the way from `/` to `real` (a path without links)
/// that someone other than root could change, as a refusal; a sticky
/// folder writable by everyone is allowed (its entries are their owners').
pub(crate) fn untrusted_folders(real: &Path) -> Option<String> {
    untrusted_folders_in(real, &mut TrustedFolders::default())
}

/// [`untrusted_folders`], skipping (and adding to) the folders found safe.
fn untrusted_folders_in(real: &Path, trusted: &mut TrustedFolders) -> Option<String> {
    let mut folders: Vec<&Path> = real.ancestors().skip(1).collect();
    folders.reverse();
    for folder in folders {
        if trusted.0.contains(folder) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(folder) else {
            return Some(format!("refusing to load: cannot examine its folder {}", folder.display()));
        };
        let mode = meta.mode() & 0o7777;
        let sticky_open = meta.uid() == 0 && mode & 0o1000 != 0;
        if !sticky_open {
            if let Some(why) = untrusted_meta(folder, &meta) {
                let why = why.trim_start_matches("refusing to load: ");
                return Some(format!(
                    "refusing to load: its folder {} is {why}: whoever can write there could swap the file",
                    folder.display()
                ));
            }
        }
        trusted.0.insert(folder.to_path_buf());
    }
    None
}

/// A unit folder root is about to list: itself and every folder above it.
pub(crate) fn untrusted_dir(dir: &Path) -> Option<String> {
    let meta = std::fs::metadata(dir).ok()?;
    if let Some(why) = untrusted_meta(dir, &meta) {
        return Some(why);
    }
    let real = std::fs::canonicalize(dir).ok()?;
    untrusted_folders(&real)
}

/// An I/O error as a lowercase reason without the `(os error N)` suffix.
pub(crate) fn reason(err: &io::Error) -> String {
    let text = tend_core::text::error_text(err);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// A message with every quoted value (`'…'`) taken out: for diagnostics of
/// a file that is not world-readable, which may be read by someone who
/// could not read the file (`tend reload` over the socket, tend's log).
pub fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '\'' {
            if inside {
                out.push_str("…'");
            } else {
                out.push('\'');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    if inside {
        out.push_str("…'");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_invalid_utf8() {
        assert_eq!(line_column(b"ab\ncd\xffe", 5), (2, 3));
        assert_eq!(line_column(b"\xff", 0), (1, 1));
        assert_eq!(line_column(b"\xc3\xa9\n\xc3\xb1x\xff", 6), (2, 3));
    }

    #[test]
    fn redaction_keeps_the_words_and_drops_the_values() {
        assert_eq!(redact("expected KEY=VALUE, got 'root:$6$x:1:::'"), "expected KEY=VALUE, got '…'");
        assert_eq!(redact("unknown key 'a' (did you mean 'b'?)"), "unknown key '…' (did you mean '…'?)");
        assert_eq!(redact("no quotes"), "no quotes");
        assert_eq!(redact("dangling 'value"), "dangling '…'");
    }
}
