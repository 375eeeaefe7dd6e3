//! `tend import`: another tool's configuration → unit files.
//!
//! One translator per format (`procfile`, `compose`, `supervisord`,
//! `systemd`) turns a file's text into [`Draft`]s (a unit to write, as
//! ordered keys and values) and [`Note`]s (what it could not translate,
//! each with the source line). This module holds what they share: the
//! drafts, a small YAML writer, unit names, durations, and the final pass
//! that keeps only dependencies on units being written. Reading the files
//! and writing the units is `app::import`'s job.
//!
//! Nothing here is part of the supervisor: it never runs inside `tend up`.

pub mod compose;
pub mod ini;
pub mod procfile;
pub mod supervisord;
pub mod systemd;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The formats `tend import` reads.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Procfile (foreman, Heroku, honcho, overmind).
    Procfile,
    /// A docker-compose.yml / compose.yaml.
    Compose,
    /// A supervisord.conf.
    Supervisord,
    /// systemd .service files.
    Systemd,
}

/// A value in a unit file.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    pub fn str(s: impl Into<String>) -> Yaml {
        Yaml::Str(s.into())
    }

    pub fn words<S: AsRef<str>>(words: &[S]) -> Yaml {
        Yaml::List(words.iter().map(|w| Yaml::str(w.as_ref())).collect())
    }

    /// Flow style: `[a, b]`, `{k: v}`, strings quoted unless plainly safe.
    pub fn render(&self) -> String {
        match self {
            Yaml::Str(s) => scalar(s),
            Yaml::Int(n) => n.to_string(),
            Yaml::Float(f) => {
                let text = f.to_string();
                if text.contains('.') {
                    text
                } else {
                    format!("{text}.0")
                }
            }
            Yaml::Bool(b) => b.to_string(),
            Yaml::List(items) => {
                format!("[{}]", items.iter().map(Yaml::render).collect::<Vec<_>>().join(", "))
            }
            Yaml::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", scalar(k), v.render()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A string as a YAML scalar: bare when that cannot be read as anything
/// else (a number, a boolean, null, flow syntax, a comment), otherwise in
/// double quotes with JSON escapes, which YAML reads the same way.
fn scalar(s: &str) -> String {
    // `-x`, `--all` are plain too (a `-` starts a list item only before a
    // space); `-5` would be a number.
    let starts_well = match s.as_bytes() {
        [c, ..] if c.is_ascii_alphabetic() || *c == b'/' || *c == b'_' => true,
        // `10s`, `64M`: not numbers to YAML (but `1e3`, `0x1F`, `1.5` are).
        [c, ..] if c.is_ascii_digit() => {
            s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
                && s.bytes().any(|b| b.is_ascii_alphabetic())
                && s.parse::<f64>().is_err()
                && !["0x", "0o", "0b"].iter().any(|p| s.to_ascii_lowercase().starts_with(p))
        }
        [b'-', c, ..] if c.is_ascii_alphabetic() => true,
        [b'-', b'-', c, ..] if c.is_ascii_alphabetic() => true,
        _ => false,
    };
    let plain = starts_well
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./@+=-".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "inf" | "nan"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

/// Something in the source that was not translated (or only in part).
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub file: PathBuf,
    /// 1-based; 0 for the whole file.
    pub line: usize,
    /// The source line as written (trimmed), for the user to find it.
    pub source: String,
    pub why: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}\n  not translated: {}", self.file.display(), self.line, self.source, self.why)
    }
}

/// A dependency of a draft, kept only if the unit it names is written too.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub name: String,
    pub condition: &'static str,
    /// Where it came from, for the note when it is dropped.
    pub line: usize,
    pub source: String,
}

/// One unit to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub name: String,
    /// The file it was translated from.
    pub file: PathBuf,
    /// Comment lines for the top of the unit file (without `# `).
    pub comments: Vec<String>,
    /// Keys in the order they are written; `depends_on` is added from `deps`.
    pub entries: Vec<(&'static str, Yaml)>,
    pub deps: Vec<Dependency>,
    /// Notes about this unit (also written into it as comments).
    pub notes: Vec<Note>,
}

impl Draft {
    pub fn new(name: &str, file: &Path) -> Draft {
        Draft {
            name: name.to_owned(),
            file: file.to_owned(),
            comments: Vec::new(),
            entries: Vec::new(),
            deps: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Set `key`, replacing an earlier value.
    pub fn set(&mut self, key: &'static str, value: Yaml) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Yaml> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Set `outer.inner` (a mapping such as `sandbox` or `log`).
    pub fn set_in(&mut self, outer: &'static str, inner: &str, value: Yaml) {
        let mut entries = match self.get(outer) {
            Some(Yaml::Map(entries)) => entries.clone(),
            _ => Vec::new(),
        };
        match entries.iter_mut().find(|(k, _)| k == inner) {
            Some(entry) => entry.1 = value,
            None => entries.push((inner.to_owned(), value)),
        }
        self.set(outer, Yaml::Map(entries));
    }

    pub fn note(&mut self, line: usize, source: &str, why: impl Into<String>) {
        self.notes.push(Note {
            file: self.file.clone(),
            line,
            source: source.trim().to_owned(),
            why: why.into(),
        });
    }

    /// The unit file's text: comments (where it came from, what was not
    /// translated), then one `key: value` line per entry.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for comment in &self.comments {
            out.push_str(&format!("# {}\n", escaped(comment)));
        }
        for note in &self.notes {
            let at = format!("{}:{}", escaped(&file_name(&note.file)), note.line);
            out.push_str(&format!("# not translated ({at}): {}\n", escaped(&note.source)));
            out.push_str(&format!("#   {}\n", escaped(&note.why)));
        }
        for (key, value) in &self.entries {
            out.push_str(&format!("{key}: {}\n", value.render()));
        }
        out
    }
}

/// A source line as shown: whole, with control characters escaped, so that
/// it can drive no terminal and end no YAML comment early (a lone `\r`).
pub fn escaped(line: &str) -> String {
    line.chars()
        .flat_map(|c| if c.is_control() { c.escape_debug().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// What a translator made of one file.
#[derive(Debug, Default)]
pub struct Translation {
    pub drafts: Vec<Draft>,
    /// Notes not about one unit (a whole section, the file).
    pub notes: Vec<Note>,
}

/// Translate one file.
pub fn translate(format: Format, file: &Path, text: &str) -> Result<Translation, Note> {
    match format {
        Format::Procfile => Ok(procfile::translate(file, text)),
        Format::Compose => compose::translate(file, text),
        Format::Supervisord => Ok(supervisord::translate(file, text)),
        Format::Systemd => Ok(systemd::translate(file, text)),
    }
}

/// The final pass over every draft of an import: `depends_on` keeps the
/// units that are written too (or already exist in the output folder), in
/// the order given; the others become notes. Then `depends_on` is placed
/// after `command`.
pub fn resolve_dependencies(drafts: &mut [Draft], existing: &BTreeSet<String>) {
    // A systemd-style ordering (`after`) waits for what the dependency's
    // start means: ready for notify and checked services, completed for a
    // oneshot, started otherwise.
    let after: std::collections::BTreeMap<String, &'static str> = drafts
        .iter()
        .map(|d| {
            let condition = match d.get("type") {
                Some(Yaml::Str(t)) if t == "notify" => "ready",
                Some(Yaml::Str(t)) if t == "oneshot" => "completed",
                _ if d.get("ready_check").is_some() => "ready",
                _ => "started",
            };
            (d.name.clone(), condition)
        })
        .collect();
    for draft in drafts.iter_mut() {
        let mut kept: Vec<(String, Yaml)> = Vec::new();
        for dep in std::mem::take(&mut draft.deps) {
            if dep.name == draft.name || kept.iter().any(|(n, _)| *n == dep.name) {
                continue;
            }
            if after.contains_key(&dep.name) || existing.contains(&dep.name) {
                let condition = match dep.condition {
                    systemd::AFTER => after.get(&dep.name).copied().unwrap_or("started"),
                    other => other,
                };
                kept.push((dep.name, Yaml::str(condition)));
            } else {
                let why = format!("depends on '{}', which is not among the units written", dep.name);
                draft.note(dep.line, &dep.source, why);
            }
        }
        if kept.is_empty() {
            continue;
        }
        let value = if kept.iter().all(|(_, c)| *c == Yaml::str("started")) {
            Yaml::List(kept.into_iter().map(|(n, _)| Yaml::Str(n)).collect())
        } else {
            Yaml::Map(kept)
        };
        let at = draft.entries.iter().position(|(k, _)| *k == "command").map_or(0, |i| i + 1);
        draft.entries.insert(at, ("depends_on", value));
    }
}

/// A valid unit name (`[a-z0-9][a-z0-9_.@-]*`) from another tool's name:
/// lower case, other characters as `-`.
pub fn unit_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c) { c } else { '-' })
        .collect();
    while out.starts_with(['_', '.', '-']) {
        out.remove(0);
    }
    if out.is_empty() {
        out.push_str("service");
    }
    out
}

/// A duration in seconds as tend writes it (`90` → `1m30s`).
pub fn seconds(n: u64) -> Yaml {
    Yaml::Str(crate::unit::values::format_duration(std::time::Duration::from_secs(n)))
}

/// An absolute, normalised path for `path` relative to `base`'s folder,
/// without touching the filesystem (the unit may be written elsewhere).
pub fn absolute(base: &Path, path: &str) -> PathBuf {
    let dir = base.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let joined = dir.join(path);
    let joined = if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir().map(|cwd| cwd.join(&joined)).unwrap_or(joined)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether a command line needs a shell (pipes, variables, globs, …), as
/// opposed to words tend can run directly.
pub fn needs_shell(line: &str) -> bool {
    line.contains(['$', '|', '&', ';', '<', '>', '`', '*', '?', '(', ')', '~', '{', '}', '[', ']', '#', '\n'])
}

/// Shell builtins and keywords: a line starting with one needs the shell.
const SHELL_WORDS: &[&str] = &[
    ".", "alias", "case", "cd", "eval", "exit", "export", "for", "function", "if", "read", "return", "set",
    "shift", "source", "trap", "ulimit", "umask", "unset", "until", "wait", "while", "!", "{",
];

/// A shell command line (what a Procfile or a healthcheck's CMD-SHELL
/// holds) as tend's `command`: its words when a shell would only have
/// split them (a leading `exec` dropped: it only replaced the shell), else
/// `[sh, -c, LINE]`.
pub fn command_line(line: &str) -> Yaml {
    let line = line.trim();
    if !needs_shell(line) {
        if let Ok(mut words) = crate::unit::values::split_words(line) {
            if words.first().is_some_and(|w| w == "exec") {
                words.remove(0);
            }
            let plain = words.first().is_some_and(|w| !w.contains('=') && !SHELL_WORDS.contains(&w.as_str()));
            if plain {
                return Yaml::words(&words);
            }
        }
    }
    Yaml::words(&["sh", "-c", line])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> crate::unit::UnitSpec {
        crate::unit::testing::unit("web", text)
    }

    #[test]
    fn rendered_scalars_read_back_as_the_same_strings() {
        for s in [
            "web", "true", "no", "5", "0027", "1.5", "a: b", "#x", "-x", "--all", "-5", "-", "--", "- x", "",
            "x y", "it's", "\"q\"", "a\nb", "~", "null", "[x]", "%x", "-.5", "-inf", "10s", "1m30s", "64M",
            "1e3", "1E3", "0x1F", "0o17", "0b1", "1.5e3", "inf", "1_000", "12", "1.5s", "5min",
        ] {
            let unit = load(&format!("command: [x]\nenvironment: {{V: {}}}\n", scalar(s)));
            assert_eq!(unit.environment, vec![("V".to_owned(), s.to_owned())], "{s:?} → {}", scalar(s));
        }
    }

    #[test]
    fn a_draft_renders_as_a_loadable_unit_with_its_notes_as_comments() {
        let mut draft = Draft::new("web", Path::new("/x/Procfile"));
        draft.comments.push("from Procfile line 1".into());
        draft.set("command", Yaml::words(&["sh", "-c", "echo $PORT; sleep 1"]));
        draft.set_in("sandbox", "private_tmp", Yaml::Bool(true));
        draft.set_in("sandbox", "hostname", Yaml::str("box"));
        draft.set("stop_timeout", seconds(90));
        draft.note(3, "  foo: bar ", "no such thing");
        draft.note(4, "evil\rcommand: [rm]", "a carriage return ends no comment");
        let text = draft.render();
        assert!(
            text.starts_with(
                "# from Procfile line 1\n# not translated (Procfile:3): foo: bar\n#   no such thing\n"
            ),
            "{text}"
        );
        assert!(text.contains("evil\\rcommand"), "{text}");
        let unit = load(&text);
        assert_eq!(unit.command, ["sh", "-c", "echo $PORT; sleep 1"]);
        assert!(unit.sandbox.private_tmp);
        assert_eq!(unit.stop_timeout, std::time::Duration::from_secs(90));
    }

    #[test]
    fn dependencies_on_units_not_written_become_notes() {
        let file = Path::new("compose.yml");
        let mut web = Draft::new("web", file);
        web.set("command", Yaml::words(&["x"]));
        for (name, condition) in [("db", "ready"), ("cache", "started"), ("db", "started")] {
            web.deps.push(Dependency { name: name.into(), condition, line: 4, source: format!("{name}:") });
        }
        let mut db = Draft::new("db", file);
        db.set("command", Yaml::words(&["y"]));
        let mut drafts = vec![web, db];
        resolve_dependencies(&mut drafts, &BTreeSet::new());
        assert_eq!(drafts[0].entries[1], ("depends_on", Yaml::Map(vec![("db".into(), Yaml::str("ready"))])));
        assert_eq!(drafts[0].notes.len(), 1);
        assert!(drafts[0].notes[0].why.contains("'cache'"));
    }

    #[test]
    fn names_and_commands() {
        assert_eq!(unit_name("Web_1"), "web_1");
        assert_eq!(unit_name("my app!"), "my-app-");
        assert_eq!(unit_name("--x"), "x");
        assert_eq!(
            command_line("bundle exec puma -C config/puma.rb"),
            Yaml::words(&["bundle", "exec", "puma", "-C", "config/puma.rb"])
        );
        assert_eq!(command_line("node 'my file.js'"), Yaml::words(&["node", "my file.js"]));
        assert_eq!(command_line("bin/web -p $PORT"), Yaml::words(&["sh", "-c", "bin/web -p $PORT"]));
        assert_eq!(command_line("exec sleep 10"), Yaml::words(&["sleep", "10"]));
        assert_eq!(command_line("cd web && npm start"), Yaml::words(&["sh", "-c", "cd web && npm start"]));
        assert_eq!(
            command_line("RAILS_ENV=test rails s"),
            Yaml::words(&["sh", "-c", "RAILS_ENV=test rails s"])
        );
        assert_eq!(absolute(Path::new("/a/b/Procfile"), "../c/.env"), PathBuf::from("/a/c/.env"));
        assert_eq!(absolute(Path::new("/a/b/Procfile"), "/etc/x"), PathBuf::from("/etc/x"));
    }
}
