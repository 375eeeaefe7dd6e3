//! The two INI dialects `tend import` reads, each with its quirks, keeping
//! every entry's line for the notes. No crate reads both faithfully: the
//! INI crates do not do Python's continuation lines and inline comments,
//! nor systemd's backslash continuations and repeated keys.
//!
//! - supervisord: Python's configparser as supervisor sets it up: `key =
//!   value` or `key: value`, keys in lower case, `;` and `#` comment lines,
//!   inline comments after whitespace (`command = x ; note`), and values
//!   continued on following indented lines.
//! - systemd (systemd.syntax(7)): `Key=Value`, keys as written, `#` and `;`
//!   comment lines only at the start of a line (a `#` later is part of the
//!   value), a trailing backslash joining the next line with a space
//!   (comment lines in between skipped), and repeated keys kept in order.

/// One `key = value` with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
    /// The line as written (the first one, for a continued value).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    /// The last value of `key` (later lines win, as in both dialects).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// A line that is none of the above: (line, text).
pub type BadLine = (usize, String);

/// Notes for the lines that are neither a section nor an entry.
pub fn bad_line_notes(file: &std::path::Path, bad: Vec<BadLine>, expected: &str) -> Vec<super::Note> {
    bad.into_iter()
        .map(|(line, source)| super::Note {
            file: file.to_owned(),
            line,
            source,
            why: format!("not a {expected} line in a section"),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Supervisord,
    Systemd,
}

pub fn parse(text: &str, dialect: Dialect) -> (Vec<Section>, Vec<BadLine>) {
    match dialect {
        Dialect::Supervisord => parse_python(text),
        Dialect::Systemd => parse_systemd(text),
    }
}

fn header(trimmed: &str) -> Option<&str> {
    trimmed.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).map(str::trim)
}

fn parse_python(text: &str) -> (Vec<Section>, Vec<BadLine>) {
    let mut sections: Vec<Section> = Vec::new();
    let mut bad = Vec::new();
    // Blank lines seen since the last value line: kept if a continuation follows.
    let mut pending_blank = 0;
    let mut can_continue = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            pending_blank += 1;
            continue;
        }
        if trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        let value_part = strip_inline_comment(trimmed);
        let indented = raw.starts_with([' ', '\t']);
        if indented && can_continue {
            if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                for _ in 0..pending_blank {
                    entry.value.push('\n');
                }
                if !entry.value.is_empty() {
                    entry.value.push('\n');
                }
                entry.value.push_str(value_part);
                pending_blank = 0;
                continue;
            }
        }
        pending_blank = 0;
        if let Some(name) = header(trimmed) {
            sections.push(Section { name: name.to_owned(), line, entries: Vec::new() });
            can_continue = false;
            continue;
        }
        let split = trimmed.find(['=', ':']);
        match (split, sections.last_mut()) {
            (Some(at), Some(section)) if at > 0 => {
                let key = trimmed[..at].trim().to_ascii_lowercase();
                let value = strip_inline_comment(trimmed[at + 1..].trim()).to_owned();
                section.entries.push(Entry { key, value, line, source: trimmed.to_owned() });
                can_continue = true;
            }
            _ => {
                bad.push((line, trimmed.to_owned()));
                can_continue = false;
            }
        }
    }
    (sections, bad)
}

/// configparser's inline comments: `;` or `#` after whitespace.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b';' || bytes[i] == b'#') && bytes[i - 1].is_ascii_whitespace() {
            return value[..i].trim_end();
        }
    }
    value
}

fn parse_systemd(text: &str) -> (Vec<Section>, Vec<BadLine>) {
    let mut sections: Vec<Section> = Vec::new();
    let mut bad = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        // A trailing backslash joins the next line (comments in between skipped).
        let mut logical = trimmed.to_owned();
        while logical.ends_with('\\') {
            logical.pop();
            logical.push(' ');
            let mut next = None;
            for (_, raw) in lines.by_ref() {
                let t = raw.trim();
                if t.starts_with('#') || t.starts_with(';') {
                    continue;
                }
                next = Some(t);
                break;
            }
            match next {
                Some(t) => logical.push_str(t),
                None => break,
            }
        }
        let logical = logical.trim_end().to_owned();
        if let Some(name) = header(&logical) {
            sections.push(Section { name: name.to_owned(), line, entries: Vec::new() });
            continue;
        }
        match (logical.split_once('='), sections.last_mut()) {
            (Some((key, value)), Some(section)) if !key.trim().is_empty() => {
                section.entries.push(Entry {
                    key: key.trim().to_owned(),
                    value: value.trim().to_owned(),
                    line,
                    source: trimmed.to_owned(),
                });
            }
            _ => bad.push((line, trimmed.to_owned())),
        }
    }
    (sections, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_dialect_comments_continuations_and_both_separators() {
        let text = "; top comment\n[program:web]\nCommand = /usr/bin/web --port 80 ; inline\nenvironment=A=\"1\",\n    B=\"2\"\n\n    C=\"3\"\nuser: www # also inline\nurl = http://x/#frag\n[group:all]\nprograms=web\norphan line\n";
        let (sections, bad) = parse(text, Dialect::Supervisord);
        assert_eq!(sections.len(), 2);
        let web = &sections[0];
        assert_eq!((web.name.as_str(), web.line), ("program:web", 2));
        assert_eq!(web.get("command").unwrap().value, "/usr/bin/web --port 80");
        assert_eq!(web.get("command").unwrap().line, 3);
        assert_eq!(web.get("environment").unwrap().value, "A=\"1\",\nB=\"2\"\n\nC=\"3\"");
        assert_eq!(web.get("user").unwrap().value, "www");
        assert_eq!(web.get("url").unwrap().value, "http://x/#frag");
        assert_eq!(bad, vec![(12, "orphan line".to_owned())]);
    }

    #[test]
    fn systemd_dialect_continuations_repeats_and_hashes_in_values() {
        let text = "[Unit]\nDescription=A # not a comment\n\n[Service]\n# comment\nExecStart=/bin/x \\\n  --a \\\n# skipped\n  --b\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n  Key = spaced \n";
        let (sections, bad) = parse(text, Dialect::Systemd);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(sections[0].get("Description").unwrap().value, "A # not a comment");
        let service = &sections[1];
        assert_eq!(service.get("ExecStart").unwrap().value, "/bin/x  --a  --b");
        assert_eq!(service.get("ExecStart").unwrap().line, 6);
        let env: Vec<&str> =
            service.entries.iter().filter(|e| e.key == "Environment").map(|e| e.value.as_str()).collect();
        assert_eq!(env, ["A=1", "", "B=2"]);
        assert_eq!(service.get("Key").unwrap().value, "spaced");
    }
}
