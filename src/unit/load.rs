//! The loader: folder → files → YAML tree → validated [`UnitSpec`], or every
//! [`Diagnostic`] of every file.
//!
//! Validation walks the positioned tree from `node.rs` by hand instead of
//! deriving `Deserialize` for a struct, so that one run reports every unknown
//! key and every bad value of every file, each at its own line and column,
//! with did-you-mean hints. Messages read `key: what is wrong`, with nested
//! keys written as paths (`rlimits.nofile`, `start_limit.burst`).
//!
//! Choices the issue left open:
//! - environment: `env_file` entries first, then `environment`; a variable set
//!   twice keeps only its last value, at the position of its last definition,
//!   so `UnitSpec::environment` has each name once and no consumer needs to
//!   know which duplicate wins.
//! - a key given with no value (`nice:`) is an error, not "the default".
//! - `restart_delay` above the default `restart_delay_max` (30s) raises the
//!   default maximum to it; an explicit smaller maximum is an error.
//! - `user` as a uid without a passwd entry needs `group` too: there is no
//!   primary group to take, and silently using tend's (often root) group
//!   would hand the service more than the user asked for.
//! - integers and booleans in `command` lists and `environment` values are
//!   taken as the text the user wrote (`1.50` stays `1.50`).
//! - `type`-dependent keys (`watchdog`, `notify_fd`, `timeout`, `ready_check`)
//!   used with the wrong type are errors at the key, never silently ignored;
//!   with an invalid `type` those checks are skipped instead of guessed.
//! - `start_timeout`, `watchdog`, `timeout` and check intervals/timeouts must
//!   be above zero: leaving the key out is how to say "none".
//! - a `ready_check`'s `retries` is 1 and unused: it is tried every interval
//!   until it succeeds or `start_timeout` passes.
//! - tcp/http hosts are stored without IPv6 brackets (`[::1]:80` → `::1`);
//!   an http path keeps its query and drops its fragment.
//! - sandbox paths are absolute paths in the service's view, normalised
//!   (`/srv/data/` → `/srv/data`), never joined to the unit's folder; `..`
//!   is refused.
//! - as root, the units folder, each unit file and each env_file, and every
//!   folder above them on their real path, are checked for other writers
//!   (like sshd's StrictModes; a sticky `/tmp` on the way is fine); a
//!   symlink is judged by the file it leads to, found through the open
//!   descriptor (see `source.rs`: open once, fstat, read that).
//! - `depends_on` naming a unit whose file exists but does not parse is not
//!   "no unit": only the broken file is reported.
//! - `stdin: null` is a value (the default, written out), unlike an empty
//!   `stdin:`, which is an error like any empty key.
//! - `runtime_max` on a oneshot is an error pointing to `timeout`; a pipe's
//!   target is checked across units in `deps.rs` (unknown, a oneshot, a
//!   cycle, a consumer with a `stdin` of its own).

use super::envfile::{check_env_name, parse_env_file};
use super::node::{duplicate_keys, parse_yaml, Item, Node, Pos};
use super::source;
use super::values::{
    check_hostname, did_you_mean, format_duration, parse_capability, parse_duration, parse_http_url,
    parse_signal, parse_size, parse_tcp_address, parse_umask, printable, split_words, SYSLOG_FACILITIES,
};
use super::{
    Check, CheckSpec, Dependency, DependencyCondition, Diagnostic, FilesystemBackend, Identity, LogSpec,
    PipeTarget, ProtectProc, Rare, Resource, ResourcesSpec, RestartPolicy, Rlimit, SandboxSpec, ServiceType,
    SourcePos, StartLimit, Stdin, UnitSpec, UserDb, UserEntry, RLIM_UNLIMITED,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

// Key names, choices, integer bounds and defaults come from the table in
// `keys.rs`, which `tend schema` and tend.unit(5) are generated from.
use super::keys::{self, Key};

const DEFAULT_RESTART_DELAY: Duration = keys::RESTART_DELAY.default_duration();
const DEFAULT_RESTART_DELAY_MAX: Duration = keys::RESTART_DELAY_MAX.default_duration();
const DEFAULT_START_BURST: u32 = keys::START_LIMIT_BURST.default_integer() as u32;
const DEFAULT_START_INTERVAL: Duration = keys::START_LIMIT_INTERVAL.default_duration();
const DEFAULT_STOP_SIGNAL: i32 = match keys::STOP_SIGNAL.default {
    keys::KeyDefault::Signal(n) => n,
    _ => panic!("stop_signal has a signal default"),
};
const DEFAULT_STOP_TIMEOUT: Duration = keys::STOP_TIMEOUT.default_duration();
const DEFAULT_READY_INTERVAL: Duration = keys::READY_INTERVAL.default_duration();
const DEFAULT_HEALTH_INTERVAL: Duration = keys::HEALTH_INTERVAL.default_duration();
const DEFAULT_CHECK_TIMEOUT: Duration = keys::CHECK_TIMEOUT.default_duration();
const DEFAULT_HEALTH_RETRIES: u32 = keys::HEALTH_RETRIES.default_integer() as u32;

const RESTART_VALUES: &[&str] = keys::RESTART.choices();
const TYPE_VALUES: &[&str] = keys::SERVICE_TYPE.choices();
const CONDITION_VALUES: &[&str] = keys::DEPENDS_ON.choices();
const FILESYSTEM_VALUES: &[&str] = keys::FILESYSTEM.choices();
const PROTECT_PROC_VALUES: &[&str] = keys::PROTECT_PROC.choices();
const START_LIMIT_KEYS: &[Key] = keys::START_LIMIT.keys();
const LOG_KEYS: &[Key] = keys::LOG_KEYS;
const READY_CHECK_KEYS: &[Key] = keys::READY_CHECK.keys();
const HEALTH_CHECK_KEYS: &[Key] = keys::HEALTH_CHECK.keys();
const SANDBOX_KEYS: &[Key] = keys::SANDBOX_KEYS;
const RESOURCES_KEYS: &[Key] = keys::RESOURCES_KEYS;
const RLIMIT_PAIR_KEYS: &[&str] = &["soft", "hard"];
const HOSTNAME_MAX: usize = keys::HOSTNAME_MAX;
const MEMORY_MAX_MIN: u64 = keys::MEMORY_MAX_MIN;
const CPU_MAX_CORES: f64 = keys::CPU_MAX_CORES;

/// The bounds of an integer key, as the checker takes them.
fn bounds(key: &Key) -> (i128, i128) {
    let (min, max) = key.range();
    (min.into(), max.into())
}

/// Load and validate every unit in `dir`. Returns every unit sorted by name,
/// or every diagnostic of every file (sorted by file, line, column).
///
/// Only `NAME.yaml` and `NAME.yml` are read; hidden files, editor leftovers
/// (`x.yaml~`, `.x.yaml.swp`) and subfolders are ignored. An empty folder
/// gives `Ok(vec![])`: whether that is an error is the caller's decision.
pub fn load_dir(dir: &Path, users: &dyn UserDb) -> Result<Vec<UnitSpec>, Vec<Diagnostic>> {
    let whole_file = |file: &Path, message: String| Diagnostic {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message,
        hint: None,
    };
    let strict = runs_as_root(users);
    if strict {
        if let Some(why) = source::untrusted_dir(dir) {
            return Err(vec![whole_file(dir, why)]);
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            return Err(vec![whole_file(dir, format!("cannot read unit folder: {}", io_reason(&err)))])
        }
    };
    let mut diagnostics = Vec::new();
    // stem → files, so that `a.yaml` next to `a.yml` is caught.
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                diagnostics.push(whole_file(dir, format!("cannot read unit folder: {}", io_reason(&err))));
                continue;
            }
        };
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some((stem, ext)) = file_name.rsplit_once('.') else {
            continue;
        };
        if file_name.starts_with('.') || !matches!(ext, "yaml" | "yml") {
            continue;
        }
        // Follow symlinks: a link to a unit file is a unit, a link to a
        // folder is a folder. A broken link is reported when it is read.
        // The entry's type (d_type) answers without a stat for all but
        // links, and file systems that do not fill it in.
        let is_dir = match entry.file_type() {
            Ok(kind) if kind.is_dir() => true,
            Ok(kind) if kind.is_file() => false,
            _ => std::fs::metadata(&path).is_ok_and(|m| m.is_dir()),
        };
        if is_dir {
            continue;
        }
        files.entry(stem.to_owned()).or_default().push(path);
    }
    // Every unit that exists, parsed or not: a dependency on a broken unit
    // is reported in the broken unit, not as "no unit" in its dependents.
    let known: BTreeSet<String> = files.keys().cloned().collect();
    let mut units = Vec::new();
    let mut trusted = source::TrustedFolders::default();
    for (stem, mut paths) in files {
        tend_core::sort::sort(&mut paths);
        if paths.len() > 1 {
            let names: Vec<String> = paths
                .iter()
                .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
                .collect();
            for path in &paths {
                diagnostics.push(whole_file(
                    path,
                    format!("unit '{stem}' is defined twice: {} (remove one of them)", names.join(" and ")),
                ));
            }
            continue;
        }
        let path = &paths[0];
        let source = match source::read_in(path, users, strict, &mut trusted) {
            Ok(source) => source,
            Err(err) => {
                diagnostics.push(Diagnostic {
                    file: path.to_path_buf(),
                    line: err.line,
                    column: err.column,
                    message: err.message,
                    hint: None,
                });
                continue;
            }
        };
        match parse_unit_from(path, &source.text, users, !source.world_readable) {
            Ok(unit) => units.push(unit),
            Err(mut errors) => diagnostics.append(&mut errors),
        }
    }
    diagnostics.extend(super::deps::check(&units, &known));
    if diagnostics.is_empty() {
        tend_core::sort::sort_by(&mut units, |a, b| a.name.cmp(&b.name));
        Ok(units)
    } else {
        sort_diagnostics(&mut diagnostics);
        Err(diagnostics)
    }
}

/// An environment variable: (name, value).
type Variable = (String, String);

/// tend runs as root: files others can write must not be trusted.
fn runs_as_root(users: &dyn UserDb) -> bool {
    users.current_ids().0 == 0
}

/// Diagnostics of a file that is not world-readable: its values are not
/// quoted (whoever reads the message may not be allowed to read the file).
fn redact_private(file: &Path, diagnostics: &mut [Diagnostic]) {
    const NOTE: &str = "values are not quoted: the file is not world-readable";
    for diagnostic in diagnostics.iter_mut().filter(|d| d.file == file) {
        diagnostic.message = source::redact(&diagnostic.message);
        diagnostic.hint = Some(match diagnostic.hint.take() {
            Some(hint) => format!("{}; {NOTE}", source::redact(&hint)),
            None => NOTE.to_string(),
        });
    }
}

/// Parse one unit from its text. `file` is used for messages, for the unit
/// name (its stem) and to resolve relative paths (env_file, working_dir)
/// against its folder. Returns every problem found, sorted by position.
pub fn parse_unit(file: &Path, text: &str, users: &dyn UserDb) -> Result<UnitSpec, Vec<Diagnostic>> {
    parse_unit_from(file, text, users, false)
}

/// [`parse_unit`] for a file read from disk; `private`: it is not
/// world-readable, so its diagnostics quote none of it.
fn parse_unit_from(
    file: &Path,
    text: &str,
    users: &dyn UserDb,
    private: bool,
) -> Result<UnitSpec, Vec<Diagnostic>> {
    match parse_unit_text(file, text, users) {
        Err(mut diagnostics) if private => {
            redact_private(file, &mut diagnostics);
            Err(diagnostics)
        }
        other => other,
    }
}

fn parse_unit_text(file: &Path, text: &str, users: &dyn UserDb) -> Result<UnitSpec, Vec<Diagnostic>> {
    let mut check = Checker {
        users,
        file,
        dir: file.parent().unwrap_or(Path::new("")).to_path_buf(),
        text,
        diagnostics: Vec::new(),
        strict: runs_as_root(users),
        specifiable: Vec::new(),
    };
    let name = file.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let at_sign = name.find('@').filter(|_| valid_unit_name(&name.replace('@', "-")));
    if let Some(stem) = name.strip_suffix('@').filter(|stem| at_sign.is_some() && !stem.contains('@')) {
        check.diagnostics.push(Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!(
                "'{name}' looks like a template unit (NAME@.yaml, with %i for the instance): tend makes instances from one unit with `instances:`"
            ),
            hint: Some(format!(
                "name the file {stem}.yaml and add `instances: 4` (or a list of names: `instances: [eu, us]`); %i in command, environment, working_dir and log.file is the instance name"
            )),
        });
    } else if let Some(at) = at_sign {
        let (stem, instance) = (&name[..at], &name[at + 1..]);
        check.diagnostics.push(Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!(
                "invalid unit name '{name}': '@' is kept for instances ({name} would be instance '{instance}' of a unit '{stem}')"
            ),
            hint: Some(format!("name the file {stem}.yaml and list the instance in it: `instances: [{instance}]`")),
        });
    } else if !valid_unit_name(&name) {
        check.diagnostics.push(Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!(
                "invalid unit name '{}': it must start with a-z or 0-9 and contain only a-z, 0-9, '_', '.' and '-'",
                printable(&name)
            ),
            hint: Some(format!(
                "rename the file, e.g. to {}",
                suggested_name(&name)
            )),
        });
    }
    let root = match parse_yaml(text) {
        Ok(root) => root,
        Err(err) => {
            let pos = Pos { line: err.line, column: err.column, bytes: None };
            check.error(pos, format!("invalid YAML: {}", err.message));
            return Err(check.finish());
        }
    };
    let spec = check.unit(name, &root, users);
    let diagnostics = check.finish();
    match spec {
        Some(spec) if diagnostics.is_empty() => Ok(spec),
        _ => Err(diagnostics),
    }
}

/// Why `path` cannot be a log file: it names no file (`/`, `dir/`, `..`),
/// or a folder is there already.
fn log_file_problem(path: &Path) -> Option<String> {
    let text = path.as_os_str().to_string_lossy();
    let names_file = !text.ends_with('/')
        && path.file_name().is_some()
        && !matches!(path.components().next_back(), Some(std::path::Component::ParentDir));
    if !names_file {
        return Some(format!("{} names a folder, not a file", path.display()));
    }
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Some(format!("{} is a folder", path.display()));
    }
    None
}

/// Each name once, at the position of its last definition, with its last
/// value (a later definition wins). Linear: an env_file with 80,000
/// variables is checked in milliseconds, not seconds.
fn last_definitions(vars: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut last: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(vars.len());
    for (index, (name, _)) in vars.iter().enumerate() {
        last.insert(name.as_str(), index);
    }
    let keep: Vec<bool> =
        (0..vars.len()).map(|index| last.get(vars[index].0.as_str()) == Some(&index)).collect();
    drop(last);
    vars.into_iter().zip(keep).filter_map(|(var, keep)| keep.then_some(var)).collect()
}

/// Filesystem rules that contradict each other, which the mount namespace
/// would apply in a surprising way (or not at all): `(list, message, hint)`,
/// `list` being 0 read_only_paths, 1 read_write_paths, 2 inaccessible_paths.
fn path_rule_conflicts(sandbox: &SandboxSpec) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let root = Path::new("/");
    if sandbox.inaccessible_paths.iter().any(|p| p == root) {
        out.push((
            2,
            "sandbox.inaccessible_paths: / cannot be hidden: the service would have nothing left to run"
                .into(),
            "list what it must not see, such as /home or /root".into(),
        ));
    }
    let lists = [
        ("read_only_paths", &sandbox.read_only_paths),
        ("read_write_paths", &sandbox.read_write_paths),
        ("inaccessible_paths", &sandbox.inaccessible_paths),
    ];
    for (i, (name, paths)) in lists.iter().enumerate() {
        for (j, (other, other_paths)) in lists.iter().enumerate().skip(i + 1) {
            for path in paths.iter().filter(|p| other_paths.contains(p)) {
                out.push((
                    j,
                    format!("sandbox.{other}: {} is also in {name}", path.display()),
                    "a path gets one rule: remove it from one of the lists".into(),
                ));
            }
        }
    }
    for (i, (name, paths)) in lists.iter().take(2).enumerate() {
        for path in paths.iter() {
            let hidden_by = sandbox.inaccessible_paths.iter().find(|h| path.starts_with(h) && path != *h);
            if let Some(hidden_by) = hidden_by.filter(|h| h.as_path() != root) {
                out.push((
                    i,
                    format!(
                        "sandbox.{name}: {} is under inaccessible path {}, which hides it",
                        path.display(),
                        hidden_by.display()
                    ),
                    "hide narrower paths, or drop the rule for what is hidden anyway".into(),
                ));
            }
        }
    }
    if sandbox.filesystem == FilesystemBackend::Landlock {
        for hidden in &sandbox.inaccessible_paths {
            let under = sandbox
                .read_only_paths
                .iter()
                .chain(&sandbox.read_write_paths)
                .find(|p| hidden.starts_with(p));
            if let Some(under) = under {
                out.push((
                    2,
                    format!(
                        "sandbox.inaccessible_paths: {} is under {}, and Landlock can only grant access, not take it back",
                        hidden.display(),
                        under.display()
                    ),
                    "list narrower read_only_paths, or use filesystem: mounts (needs CAP_SYS_ADMIN)".into(),
                ));
            }
        }
    }
    out
}

/// `[a-z0-9][a-z0-9_.-]*` (`@` is kept for instances: `worker@2`).
fn valid_unit_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// A valid name close to `name`, for the hint.
fn suggested_name(name: &str) -> String {
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
    format!("{out}.yaml")
}

fn sort_diagnostics(diagnostics: &mut [Diagnostic]) {
    tend_core::sort::sort_by(diagnostics, |a, b| {
        (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
    });
}

/// An I/O error as a lowercase reason without the `(os error N)` suffix.
fn io_reason(err: &io::Error) -> String {
    source::reason(err)
}

/// The validation pass over one file: accumulates diagnostics; each check
/// returns `None` after reporting, and the unit is built only if none did.
struct Checker<'a> {
    users: &'a dyn UserDb,
    file: &'a Path,
    dir: PathBuf,
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
    /// tend runs as root: refuse env files other users can write.
    strict: bool,
    /// Values where `%i` means the instance name (command words,
    /// `environment` values, working_dir, log.file), with where they are
    /// written and the key to name: checked when the unit has `instances`.
    specifiable: Vec<(Pos, String, String)>,
}

/// A scalar written as a name or as a number, e.g. `user: www` / `user: 33`.
enum NameOrId {
    Name(String),
    Id(u32),
}

impl Checker<'_> {
    fn error(&mut self, pos: Pos, message: String) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message,
            hint: None,
        });
    }

    fn error_hint(&mut self, pos: Pos, message: String, hint: String) {
        self.error(pos, message);
        if let Some(last) = self.diagnostics.last_mut() {
            last.hint = Some(hint);
        }
    }

    fn finish(&mut self) -> Vec<Diagnostic> {
        let mut diagnostics = std::mem::take(&mut self.diagnostics);
        sort_diagnostics(&mut diagnostics);
        diagnostics
    }

    /// How a value is shown after "got": the scalar as written, or its kind.
    fn got(&self, item: &Item) -> String {
        match &item.node {
            Node::Null | Node::Seq(_) | Node::Map(_) => item.node.kind().to_owned(),
            _ => match item.scalar_text(self.text) {
                Some(text) => format!("'{}'", printable(&text)),
                None => item.node.kind().to_owned(),
            },
        }
    }

    fn expected(&mut self, key: &str, what: &str, item: &Item) {
        let got = self.got(item);
        self.error(item.pos, format!("{key}: expected {what}, got {got}"));
    }

    /// The entries of a mapping whose keys are strings; reports the others.
    fn entries<'t>(&mut self, key: &str, item: &'t Item, what: &str) -> Option<Vec<(String, Pos, &'t Item)>> {
        let Node::Map(entries) = &item.node else {
            self.expected(key, what, item);
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            match &k.node {
                Node::Str(name) => out.push((name.clone(), k.pos, v)),
                _ => {
                    let got = self.got(k);
                    // `key` is empty for the top level, which has no name.
                    let prefix = if key.is_empty() { String::new() } else { format!("{key}: ") };
                    self.error(k.pos, format!("{prefix}expected a key name, got {got}"));
                }
            }
        }
        Some(out)
    }

    fn string(&mut self, key: &str, item: &Item) -> Option<String> {
        match &item.node {
            Node::Str(s) => Some(s.clone()),
            _ => {
                self.expected(key, "a string", item);
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, item: &Item) -> Option<bool> {
        match item.node {
            Node::Bool(b) => Some(b),
            _ => {
                self.expected(key, "true or false", item);
                None
            }
        }
    }

    /// An integer in `range`; digit strings count too, because `05` is kept
    /// as a string by the YAML reader (see node.rs).
    /// An integer within the bounds the table gives `spec`.
    fn ranged(&mut self, key: &str, spec: &Key, item: &Item) -> Option<i128> {
        let (min, max) = bounds(spec);
        self.integer(key, item, min, max)
    }

    fn integer(&mut self, key: &str, item: &Item, min: i128, max: i128) -> Option<i128> {
        let value = match &item.node {
            Node::Int(i) => Some(*i),
            Node::Str(s) => s.trim().parse::<i128>().ok(),
            _ => None,
        };
        match value {
            Some(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.expected(key, &format!("an integer from {min} to {max}"), item);
                None
            }
        }
    }

    fn duration(&mut self, key: &str, item: &Item) -> Option<Duration> {
        let text = match &item.node {
            // A bare YAML number: parse_duration explains the missing unit.
            Node::Str(_) | Node::Int(_) | Node::Float(_) => item.scalar_text(self.text)?,
            _ => {
                self.expected(key, "a duration such as 10s or 250ms", item);
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(why) => {
                self.error(item.pos, format!("{key}: {why}"));
                None
            }
        }
    }

    /// A path relative to the unit file's folder, made absolute-ish by
    /// joining (no canonicalisation: the file may not exist yet).
    fn path(&mut self, key: &str, item: &Item) -> Option<PathBuf> {
        let text = self.string(key, item)?;
        if text.is_empty() {
            self.error(item.pos, format!("{key}: path is empty"));
            return None;
        }
        if text.contains('\0') {
            self.error(item.pos, format!("{key}: path contains a NUL byte"));
            return None;
        }
        Some(self.dir.join(text))
    }

    fn name_or_id(&mut self, key: &str, item: &Item, what: &str) -> Option<NameOrId> {
        let id = |v: i128| u32::try_from(v).ok().map(NameOrId::Id);
        let parsed = match &item.node {
            Node::Int(i) => id(*i),
            Node::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<i128>().ok().and_then(id)
            }
            Node::Str(s) if !s.trim().is_empty() => Some(NameOrId::Name(s.clone())),
            _ => None,
        };
        if parsed.is_none() {
            self.expected(key, &format!("a {what} name or a number from 0 to {}", u32::MAX), item);
        }
        parsed
    }

    fn group(&mut self, key: &str, item: &Item, users: &dyn UserDb) -> Option<u32> {
        match self.name_or_id(key, item, "group")? {
            NameOrId::Id(gid) => Some(gid),
            NameOrId::Name(name) => {
                let gid = users.group_by_name(&name);
                if gid.is_none() {
                    self.error(item.pos, format!("{key}: no such group '{}'", printable(&name)));
                }
                gid
            }
        }
    }

    /// Validate a whole file. Every key is checked even after an error.
    fn unit(&mut self, name: String, root: &Item, users: &dyn UserDb) -> Option<UnitSpec> {
        for (first, dup) in duplicate_keys(root) {
            let got = self.got(dup);
            self.error(dup.pos, format!("duplicate key {got} (first set on line {})", first.pos.line));
        }
        match &root.node {
            Node::Map(_) => {}
            Node::Null => {
                self.error_hint(
                    root.pos,
                    "file is empty".into(),
                    "a unit needs at least a command, e.g. command: [sleep, infinity]".into(),
                );
                return None;
            }
            _ => {
                let got = self.got(root);
                self.error(root.pos, format!("expected a mapping of keys to values, got {got}"));
                return None;
            }
        }
        let entries = self.entries("", root, "a mapping")?;
        let mut keys: BTreeMap<&str, &Item> = BTreeMap::new();
        let mut key_pos: BTreeMap<&str, Pos> = BTreeMap::new();
        for (key, pos, value) in &entries {
            match keys::find(keys::UNIT, key) {
                // First wins; duplicates were reported above.
                Some(known) => {
                    keys.entry(known.name).or_insert(value);
                    key_pos.entry(known.name).or_insert(*pos);
                }
                None => {
                    let mut message = format!("unknown key '{}'", printable(key));
                    if let Some(best) = did_you_mean(key, keys::names(keys::UNIT)) {
                        message.push_str(&format!(" (did you mean '{best}'?)"));
                    }
                    self.error(*pos, message);
                }
            }
        }

        let command_at =
            keys.get("command").map(|item| SourcePos { line: item.pos.line, column: item.pos.column });
        let command = match keys.get("command") {
            Some(item) => self.words("command", item),
            None => {
                // At the start of the document: `file:LINE:COL` keeps the
                // same shape as every other diagnostic for tools and tests.
                self.error_hint(
                    root.pos,
                    "missing required key 'command'".into(),
                    "add the program to run, e.g. command: [nginx, -g, \"daemon off;\"]".into(),
                );
                None
            }
        };
        // Every key is checked before anything is returned. A check that
        // fails has already reported, so its value falls back to the default
        // only to keep going: `parse_unit` returns the spec only when nothing
        // was reported.
        let get = |key: &str| keys.get(key).copied();
        let description = get("description").and_then(|i| self.string("description", i));
        let instances = get("instances").map(|i| self.instances(i));
        let enabled = get("enabled").and_then(|i| self.boolean("enabled", i));
        let working_dir = get("working_dir").and_then(|i| self.path("working_dir", i));
        if let (Some(item), Some(_)) = (get("working_dir"), &working_dir) {
            let text = item.scalar_text(self.text).unwrap_or_default();
            self.specifiable.push((item.pos, "working_dir".into(), text));
        }
        let environment = self.environment(get("env_file"), get("environment"));
        let clear_env = get("clear_env").and_then(|i| self.boolean("clear_env", i));
        let identity = self.identity(get("user"), get("group"), get("supplementary_groups"), users);
        let umask = get("umask").and_then(|i| self.umask(i));
        let nice = get("nice").and_then(|i| self.ranged("nice", &keys::NICE, i));
        let rlimits = get("rlimits").and_then(|i| self.rlimits(i));
        let process_group = get("process_group").and_then(|i| self.boolean("process_group", i));
        let restart = get("restart").and_then(|i| self.restart(i));
        let success_exit_codes = get("success_exit_codes").and_then(|i| self.exit_codes(i));
        let restart_delay = get("restart_delay").and_then(|i| self.duration("restart_delay", i));
        let restart_delay_max =
            get("restart_delay_max").and_then(|i| Some((i.pos, self.duration("restart_delay_max", i)?)));
        let start_limit = get("start_limit").and_then(|i| self.start_limit(i));
        let stop_signal = get("stop_signal").and_then(|i| self.signal("stop_signal", i));
        let stop_timeout = get("stop_timeout").and_then(|i| self.duration("stop_timeout", i));
        let critical = get("critical").and_then(|i| self.boolean("critical", i));
        let log = match get("log") {
            Some(item) => self.log(item),
            None => Some(LogSpec::default()),
        };
        // `None` when `type` is invalid: the checks that depend on the type
        // are then skipped rather than guessed.
        let service_type = match get("type") {
            Some(item) => self.service_type(item),
            None => Some(ServiceType::Simple),
        };
        let depends_on = get("depends_on").map(|i| self.depends_on(&name, i));
        let ready_check = get("ready_check").map(|i| self.check_spec("ready_check", i, false));
        let start_timeout = get("start_timeout").map(|i| self.positive_duration("start_timeout", i));
        let health_check = get("health_check").map(|i| self.check_spec("health_check", i, true));
        let watchdog = get("watchdog").map(|i| self.positive_duration("watchdog", i));
        let notify_fd =
            get("notify_fd").map(|i| self.ranged("notify_fd", &keys::NOTIFY_FD, i).map(|n| n as i32));
        let timeout = get("timeout").map(|i| self.positive_duration("timeout", i));
        let sandbox = match get("sandbox") {
            Some(item) => self.sandbox(item),
            None => Some(SandboxSpec::default()),
        };
        let resources = match get("resources") {
            Some(item) => self.resources(item),
            None => Some(ResourcesSpec::default()),
        };
        let stdin = match get("stdin") {
            Some(item) => self.stdin(item),
            None => Some(Stdin::Null),
        };
        let stdout_to = get("stdout").map(|i| self.pipe_to("stdout", &name, i));
        let stderr_to = get("stderr").map(|i| self.pipe_to("stderr", &name, i));
        let runtime_max = get("runtime_max").map(|i| self.positive_duration("runtime_max", i));
        if let Some(service_type) = service_type {
            let at = |key: &str| key_pos.get(key).copied().unwrap_or_default();
            let type_name = type_name(service_type);
            if ready_check.is_some() && service_type != ServiceType::Simple {
                let why = match service_type {
                    ServiceType::Notify => "a notify service says itself when it is ready",
                    _ => "a oneshot is done when it exits",
                };
                self.error_hint(
                    at("ready_check"),
                    format!("ready_check: not used with type: {type_name} ({why})"),
                    "remove ready_check, or use type: simple".into(),
                );
            }
            if watchdog.is_some() && service_type != ServiceType::Notify {
                self.error_hint(
                    at("watchdog"),
                    format!("watchdog: needs type: notify (type {type_name} cannot send WATCHDOG=1)"),
                    "set type: notify, or use a health_check".into(),
                );
            }
            if notify_fd.is_some() && service_type != ServiceType::Notify {
                self.error_hint(
                    at("notify_fd"),
                    format!("notify_fd: needs type: notify (this unit is type {type_name})"),
                    "set type: notify".into(),
                );
            }
            if runtime_max.is_some() && service_type == ServiceType::Oneshot {
                self.error_hint(
                    at("runtime_max"),
                    "runtime_max: not for type: oneshot (a oneshot runs to completion)".into(),
                    "use timeout: a oneshot still running after it is stopped and has failed".into(),
                );
            }
            if timeout.is_some() && service_type != ServiceType::Oneshot {
                self.error_hint(
                    at("timeout"),
                    format!("timeout: only for type: oneshot (this unit is type {type_name})"),
                    "use start_timeout for the time to become ready, or stop_timeout for the time to stop"
                        .into(),
                );
            }
        }
        let default_restart = match service_type {
            Some(ServiceType::Oneshot) => RestartPolicy::Never,
            _ => RestartPolicy::OnFailure,
        };
        // In a pool, `%` starts a specifier: only %i and %% exist.
        if let Some(Some(_)) = &instances {
            for (pos, key, text) in std::mem::take(&mut self.specifiable) {
                if let Err(bad) = tend_core::pool::check_specifiers(&text) {
                    self.error_hint(
                        pos,
                        format!("{key}: {}", bad.message),
                        "in a unit with instances, write %% for a literal %".into(),
                    );
                }
            }
        }
        let (environment, instance_env) = match environment {
            Some((vars, from_unit)) => (Some(vars), from_unit),
            None => (None, Vec::new()),
        };

        let restart_delay = restart_delay.unwrap_or(DEFAULT_RESTART_DELAY);
        let restart_delay_max = match restart_delay_max {
            None => DEFAULT_RESTART_DELAY_MAX.max(restart_delay),
            Some((pos, max)) => {
                if max < restart_delay {
                    self.error(
                        pos,
                        format!(
                            "restart_delay_max: {} is shorter than restart_delay {}",
                            format_duration(max),
                            format_duration(restart_delay)
                        ),
                    );
                }
                max
            }
        };

        Some(UnitSpec {
            name,
            file: self.file.to_path_buf(),
            description,
            instances: present(instances)?,
            instance: None,
            enabled: enabled.unwrap_or(true),
            instance_env,
            command: command?,
            command_at: command_at.unwrap_or_default(),
            working_dir,
            environment: environment?,
            clear_env: clear_env.unwrap_or(false),
            identity: identity?.map(Box::new),
            umask,
            nice: nice.map(|n| n as i32),
            rlimits: rlimits.unwrap_or_default(),
            process_group: process_group.unwrap_or(true),
            restart: restart.unwrap_or(default_restart),
            success_exit_codes: success_exit_codes.unwrap_or_else(|| vec![0]),
            restart_delay,
            restart_delay_max,
            start_limit: start_limit
                .unwrap_or(StartLimit { burst: DEFAULT_START_BURST, interval: DEFAULT_START_INTERVAL }),
            stop_signal: stop_signal.unwrap_or(DEFAULT_STOP_SIGNAL),
            stop_timeout: stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
            critical: critical.unwrap_or(false),
            log: log?,
            service_type: service_type?,
            depends_on: present(depends_on)?.unwrap_or_default(),
            ready_check: present(ready_check)?.map(Box::new),
            start_timeout: present(start_timeout)?,
            health_check: present(health_check)?.map(Box::new),
            watchdog: present(watchdog)?,
            notify_fd: present(notify_fd)?,
            timeout: present(timeout)?,
            sandbox: Rare::new(sandbox?),
            resources: Rare::new(resources?),
            stdin: stdin?,
            stdout_to: present(stdout_to)?.map(Box::new),
            stderr_to: present(stderr_to)?.map(Box::new),
            runtime_max: present(runtime_max)?,
        })
    }
}

/// The checks of individual keys.
impl Checker<'_> {
    /// A program and its arguments: a list, or a string split like a shell
    /// would (no expansion). `key` is `command` or a check's `exec`.
    fn words(&mut self, key: &str, item: &Item) -> Option<Vec<String>> {
        const WHAT: &str = "a list of strings or a string";
        let words = match &item.node {
            Node::Str(line) => match split_words(line) {
                Ok(words) => words,
                Err(why) => {
                    self.error(item.pos, format!("{key}: {why}"));
                    return None;
                }
            },
            Node::Seq(items) => {
                let mut words = Vec::new();
                let mut ok = true;
                for word in items {
                    match &word.node {
                        // `[sleep, 10]`: the number is an argument, as written.
                        Node::Str(_) | Node::Int(_) | Node::Float(_) | Node::Bool(_) => {
                            words.extend(word.scalar_text(self.text));
                        }
                        _ => {
                            self.expected(key, "a string in the list", word);
                            ok = false;
                        }
                    }
                }
                if !ok {
                    return None;
                }
                words
            }
            _ => {
                self.expected(key, WHAT, item);
                return None;
            }
        };
        if words.is_empty() {
            self.error_hint(
                item.pos,
                format!("{key} is empty"),
                format!("give the program and its arguments, e.g. {key}: [sleep, infinity]"),
            );
            return None;
        }
        if words[0].is_empty() {
            self.error(item.pos, format!("{key}: the program name is empty"));
            return None;
        }
        if words.iter().any(|w| w.contains('\0')) {
            self.error(item.pos, format!("{key}: an argument contains a NUL byte"));
            return None;
        }
        if key == "command" {
            match &item.node {
                Node::Seq(items) => {
                    for (word, text) in items.iter().zip(&words) {
                        self.specifiable.push((word.pos, key.into(), text.clone()));
                    }
                }
                _ => self.specifiable.push((
                    item.pos,
                    key.into(),
                    item.scalar_text(self.text).unwrap_or_default(),
                )),
            }
        }
        Some(words)
    }

    /// `env_file` entries, then `environment` entries; see the module docs
    /// for how duplicates are resolved.
    /// The variables, and the names whose values `environment:` itself
    /// gave (where `%i` is replaced in a unit with instances; an env_file's
    /// values are taken as they are).
    fn environment(
        &mut self,
        env_file: Option<&Item>,
        environment: Option<&Item>,
    ) -> Option<(Vec<Variable>, Vec<String>)> {
        let mut vars = Vec::new();
        let mut ok = true;
        if let Some(item) = env_file {
            let paths: Vec<&Item> = match &item.node {
                Node::Seq(items) => items.iter().collect(),
                _ => vec![item],
            };
            for path_item in paths {
                let Some(path) = self.path("env_file", path_item) else {
                    ok = false;
                    continue;
                };
                ok &= self.env_file(&path, path_item.pos, &mut vars);
            }
        }
        let from_file = vars.len();
        if let Some(item) = environment {
            ok &= self.environment_entries(item, &mut vars);
        }
        if !ok {
            return None;
        }
        let mut from_unit: Vec<String> =
            vars[from_file..].iter().filter(|(_, v)| v.contains('%')).map(|(n, _)| n.clone()).collect();
        tend_core::sort::sort(&mut from_unit);
        from_unit.dedup();
        Some((last_definitions(vars), from_unit))
    }

    fn env_file(&mut self, path: &Path, at: Pos, vars: &mut Vec<(String, String)>) -> bool {
        let read_by = format!("read as env_file by {}:{}", self.file.display(), at.line);
        let source = match source::read(path, self.users, self.strict) {
            Ok(source) => source,
            Err(err) if err.line == 0 && err.message.starts_with("cannot read: ") => {
                let why = err.message.trim_start_matches("cannot read: ");
                self.error(at, format!("env_file: cannot read {}: {why}", path.display()));
                return false;
            }
            Err(err) => {
                self.diagnostics.push(Diagnostic {
                    file: path.to_path_buf(),
                    line: err.line,
                    column: err.column,
                    message: err.message,
                    hint: Some(read_by),
                });
                return false;
            }
        };
        match parse_env_file(&source.text) {
            Ok(mut parsed) => {
                vars.append(&mut parsed);
                true
            }
            Err(errors) => {
                // Reported in the env file itself, where the fix goes; the
                // hint says which unit read it.
                let mut found: Vec<Diagnostic> = errors
                    .into_iter()
                    .map(|err| Diagnostic {
                        file: path.to_path_buf(),
                        line: err.line,
                        column: err.column,
                        message: err.message,
                        hint: Some(read_by.clone()),
                    })
                    .collect();
                if !source.world_readable {
                    redact_private(path, &mut found);
                }
                self.diagnostics.append(&mut found);
                false
            }
        }
    }

    fn environment_entries(&mut self, item: &Item, vars: &mut Vec<(String, String)>) -> bool {
        const WHAT: &str = "a mapping of NAME: value or a list of NAME=value";
        let mut ok = true;
        match &item.node {
            Node::Map(_) => {
                let Some(entries) = self.entries("environment", item, WHAT) else {
                    return false;
                };
                for (name, name_pos, value) in entries {
                    if let Err(why) = check_env_name(&name) {
                        self.error(name_pos, format!("environment: {why}"));
                        ok = false;
                        continue;
                    }
                    let text = match &value.node {
                        Node::Null => {
                            self.error_hint(
                                value.pos,
                                format!("environment: {name} has no value"),
                                format!("write {name}: \"\" for an empty value"),
                            );
                            ok = false;
                            continue;
                        }
                        Node::Seq(_) | Node::Map(_) => {
                            let got = self.got(value);
                            self.error(
                                value.pos,
                                format!(
                                    "environment: {name}: expected a string, number or boolean, got {got}"
                                ),
                            );
                            ok = false;
                            continue;
                        }
                        _ => value.scalar_text(self.text).unwrap_or_default(),
                    };
                    ok &= self.env_value(&name, text, value.pos, vars);
                }
            }
            Node::Seq(items) => {
                for entry in items {
                    let Node::Str(pair) = &entry.node else {
                        self.expected("environment", "NAME=value", entry);
                        ok = false;
                        continue;
                    };
                    let Some((name, value)) = pair.split_once('=') else {
                        self.expected("environment", "NAME=value", entry);
                        ok = false;
                        continue;
                    };
                    if let Err(why) = check_env_name(name) {
                        self.error(entry.pos, format!("environment: {why}"));
                        ok = false;
                        continue;
                    }
                    ok &= self.env_value(name, value.to_owned(), entry.pos, vars);
                }
            }
            _ => {
                self.expected("environment", WHAT, item);
                ok = false;
            }
        }
        ok
    }

    fn env_value(&mut self, name: &str, value: String, at: Pos, vars: &mut Vec<(String, String)>) -> bool {
        if value.contains('\0') {
            self.error(at, format!("environment: {name}: value contains a NUL byte"));
            return false;
        }
        self.specifiable.push((at, format!("environment: {name}"), value.clone()));
        vars.push((name.to_owned(), value));
        true
    }

    /// `Some(None)`: no identity keys, keep tend's credentials.
    fn identity(
        &mut self,
        user: Option<&Item>,
        group: Option<&Item>,
        supplementary: Option<&Item>,
        users: &dyn UserDb,
    ) -> Option<Option<Identity>> {
        if user.is_none() && group.is_none() && supplementary.is_none() {
            return Some(None);
        }
        let mut ok = true;
        // (uid, passwd entry if any)
        let mut resolved_user: Option<(u32, Option<UserEntry>)> = None;
        if let Some(item) = user {
            match self.name_or_id("user", item, "user") {
                Some(NameOrId::Id(uid)) => resolved_user = Some((uid, users.user_by_uid(uid))),
                Some(NameOrId::Name(name)) => match users.user_by_name(&name) {
                    Some(entry) => resolved_user = Some((entry.uid, Some(entry))),
                    None => {
                        self.error(item.pos, format!("user: no such user '{}'", printable(&name)));
                        ok = false;
                    }
                },
                None => ok = false,
            }
        }
        let gid = match group {
            Some(item) => {
                let gid = self.group("group", item, users);
                ok &= gid.is_some();
                gid
            }
            None => None,
        };
        let groups = match supplementary {
            Some(item) => match &item.node {
                Node::Seq(items) => {
                    let mut gids = Vec::new();
                    for g in items {
                        match self.group("supplementary_groups", g, users) {
                            Some(gid) => gids.push(gid),
                            None => ok = false,
                        }
                    }
                    Some(gids)
                }
                _ => {
                    self.expected("supplementary_groups", "a list of group names or numbers", item);
                    ok = false;
                    None
                }
            },
            None => None,
        };
        if !ok {
            return None;
        }
        let (current_uid, current_gid) = users.current_ids();
        let identity = match resolved_user {
            Some((uid, Some(entry))) => Identity {
                uid,
                gid: gid.unwrap_or(entry.gid),
                groups: groups.unwrap_or_else(|| users.groups_of(&entry)),
                user: Some(entry),
            },
            Some((uid, None)) => {
                let Some(gid) = gid else {
                    self.error_hint(
                        user.map(|i| i.pos).unwrap_or_default(),
                        format!(
                            "user: uid {uid} has no entry in the user database, so it has no primary group"
                        ),
                        format!("set the group too, e.g. group: {uid}"),
                    );
                    return None;
                };
                Identity { uid, gid, groups: groups.unwrap_or_default(), user: None }
            }
            None => Identity {
                uid: current_uid,
                gid: gid.unwrap_or(current_gid),
                groups: groups.unwrap_or_default(),
                user: None,
            },
        };
        Some(Some(identity))
    }

    fn umask(&mut self, item: &Item) -> Option<u32> {
        let text = match &item.node {
            Node::Str(s) => s.clone(),
            // `0` and `0o027` mean what they say; any other YAML integer was
            // read in decimal (`umask: 27`), which is almost surely a mistake.
            Node::Int(_) => {
                let text = item.scalar_text(self.text).unwrap_or_default();
                if text != "0" && !text.starts_with("0o") {
                    let got = self.got(item);
                    self.error_hint(
                        item.pos,
                        format!("umask: expected an octal string such as \"0027\", got {got}"),
                        format!("quote it: umask: \"{:0>4}\"", text),
                    );
                    return None;
                }
                text
            }
            _ => {
                self.expected("umask", "an octal string such as \"0027\"", item);
                return None;
            }
        };
        match parse_umask(&text) {
            Ok(mask) => Some(mask),
            Err(why) => {
                self.error(item.pos, format!("umask: {why}"));
                None
            }
        }
    }

    fn rlimits(&mut self, item: &Item) -> Option<Vec<Rlimit>> {
        let entries = self.entries("rlimits", item, "a mapping of resource: limit")?;
        let mut limits: Vec<Rlimit> = Vec::new();
        let mut ok = true;
        for (name, name_pos, value) in entries {
            let normal = name.to_ascii_lowercase();
            let normal = normal.strip_prefix("rlimit_").unwrap_or(&normal);
            let Some(resource) = Resource::from_name(normal) else {
                let mut message = format!("rlimits: unknown resource '{}'", printable(&name));
                if let Some(best) = did_you_mean(normal, Resource::ALL.iter().map(|r| r.name())) {
                    message.push_str(&format!(" (did you mean '{best}'?)"));
                }
                let all: Vec<&str> = Resource::ALL.iter().map(|r| r.name()).collect();
                self.error_hint(name_pos, message, format!("resources: {}", all.join(", ")));
                ok = false;
                continue;
            };
            let key = format!("rlimits.{}", resource.name());
            if limits.iter().any(|l| l.resource == resource) {
                self.error(name_pos, format!("{key}: set twice"));
                ok = false;
                continue;
            }
            let (soft, hard) = match &value.node {
                Node::Map(_) => {
                    let Some(pair) = self.entries(&key, value, "a limit or {soft: N, hard: N}") else {
                        ok = false;
                        continue;
                    };
                    let (mut soft, mut hard) = (None, None);
                    for (k, k_pos, v) in pair {
                        match k.as_str() {
                            "soft" => soft = Some((self.limit(&format!("{key}.soft"), resource, v), v.pos)),
                            "hard" => hard = Some((self.limit(&format!("{key}.hard"), resource, v), v.pos)),
                            _ => {
                                self.unknown_subkey(&key, &k, k_pos, RLIMIT_PAIR_KEYS);
                                ok = false;
                            }
                        }
                    }
                    match (soft, hard) {
                        (Some((Some(soft), _)), Some((Some(hard), hard_pos))) => {
                            if soft > hard {
                                self.error(
                                    hard_pos,
                                    format!(
                                        "{key}: soft limit {} is above hard limit {}",
                                        limit_text(soft),
                                        limit_text(hard)
                                    ),
                                );
                                ok = false;
                            }
                            (soft, hard)
                        }
                        (Some(_), Some(_)) => {
                            ok = false;
                            continue;
                        }
                        (s, _) => {
                            let missing = if s.is_none() { "soft" } else { "hard" };
                            self.error_hint(
                                value.pos,
                                format!("{key}: missing '{missing}'"),
                                "write both, e.g. {soft: 1024, hard: 4096}, or one number for both".into(),
                            );
                            ok = false;
                            continue;
                        }
                    }
                }
                _ => match self.limit(&key, resource, value) {
                    Some(n) => (n, n),
                    None => {
                        ok = false;
                        continue;
                    }
                },
            };
            limits.push(Rlimit { resource, soft, hard });
        }
        ok.then_some(limits)
    }

    /// One limit value: a number, `unlimited`/`infinity`, or for byte-sized
    /// resources a size such as `64M`.
    fn limit(&mut self, key: &str, resource: Resource, item: &Item) -> Option<u64> {
        let what = if resource.is_size() {
            "a number of bytes (e.g. 64M) or unlimited"
        } else {
            "a number or unlimited"
        };
        let parsed = match &item.node {
            Node::Int(n) => u64::try_from(*n).ok(),
            Node::Str(s) => {
                let s = s.trim();
                if s.eq_ignore_ascii_case("unlimited") || s.eq_ignore_ascii_case("infinity") {
                    Some(RLIM_UNLIMITED)
                } else if resource.is_size() {
                    match parse_size(s) {
                        Ok(n) => Some(n),
                        Err(why) => {
                            self.error(item.pos, format!("{key}: {why}"));
                            return None;
                        }
                    }
                } else {
                    s.parse::<u64>().ok()
                }
            }
            _ => None,
        };
        if parsed.is_none() {
            self.expected(key, what, item);
        }
        parsed
    }

    fn unknown_subkey(&mut self, parent: &str, key: &str, pos: Pos, known: &[&str]) {
        let mut message = format!("{parent}: unknown key '{}'", printable(key));
        if let Some(best) = did_you_mean(key, known.iter().copied()) {
            message.push_str(&format!(" (did you mean '{best}'?)"));
        }
        self.error_hint(pos, message, format!("known keys: {}", known.join(", ")));
    }

    fn restart(&mut self, item: &Item) -> Option<RestartPolicy> {
        let policy = match &item.node {
            Node::Str(s) => match s.as_str() {
                "always" => Some(RestartPolicy::Always),
                "on-failure" => Some(RestartPolicy::OnFailure),
                "never" => Some(RestartPolicy::Never),
                _ => None,
            },
            _ => None,
        };
        if policy.is_none() {
            let got = self.got(item);
            let mut message = format!("restart: expected one of {}, got {got}", RESTART_VALUES.join(", "));
            if let Node::Str(s) = &item.node {
                if let Some(best) = did_you_mean(s, RESTART_VALUES.iter().copied()) {
                    message.push_str(&format!(" (did you mean '{best}'?)"));
                }
            }
            if item.node == Node::Bool(false) {
                // `restart: false` / `no` is a common spelling from other tools.
                self.error_hint(item.pos, message, "write restart: never".into());
            } else {
                self.error(item.pos, message);
            }
        }
        policy
    }

    fn exit_codes(&mut self, item: &Item) -> Option<Vec<i32>> {
        let Node::Seq(items) = &item.node else {
            self.expected("success_exit_codes", "a list of exit codes from 0 to 255", item);
            return None;
        };
        let mut codes = Vec::new();
        let mut ok = true;
        for code in items {
            match self.integer(
                "success_exit_codes",
                code,
                keys::EXIT_STATUS_MIN.into(),
                keys::EXIT_STATUS_MAX.into(),
            ) {
                Some(n) => codes.push(n as i32),
                None => ok = false,
            }
        }
        ok.then_some(codes)
    }

    fn start_limit(&mut self, item: &Item) -> Option<StartLimit> {
        let entries = self.entries("start_limit", item, "a mapping such as {burst: 5, interval: 60s}")?;
        let mut limit = StartLimit { burst: DEFAULT_START_BURST, interval: DEFAULT_START_INTERVAL };
        let mut ok = true;
        for (key, pos, value) in entries {
            match key.as_str() {
                "burst" => match self.ranged("start_limit.burst", &keys::START_LIMIT_BURST, value) {
                    Some(n) => limit.burst = n as u32,
                    None => ok = false,
                },
                "interval" => match self.duration("start_limit.interval", value) {
                    Some(d) => limit.interval = d,
                    None => ok = false,
                },
                _ => {
                    self.unknown_subkey("start_limit", &key, pos, &keys::names(START_LIMIT_KEYS));
                    ok = false;
                }
            }
        }
        ok.then_some(limit)
    }

    fn log(&mut self, item: &Item) -> Option<LogSpec> {
        let entries = self.entries("log", item, "a mapping such as {file: web.log, max_size: 10M}")?;
        let mut log = LogSpec::default();
        let mut ok = true;
        for (key, pos, value) in entries {
            match key.as_str() {
                "file" => match self.path("log.file", value) {
                    Some(path) => match log_file_problem(&path) {
                        None if path.to_string_lossy().contains('%') => {
                            let text = value.scalar_text(self.text).unwrap_or_default();
                            self.specifiable.push((value.pos, "log.file".into(), text));
                            log.file = Some(path);
                        }
                        None => log.file = Some(path),
                        Some(why) => {
                            self.error(value.pos, format!("log.file: {why}"));
                            ok = false;
                        }
                    },
                    None => ok = false,
                },
                "max_size" => {
                    let text = value.scalar_text(self.text).unwrap_or_default();
                    match parse_size(&text) {
                        Ok(0) | Err(_) => {
                            self.expected("log.max_size", "a size such as 10M (K, M, G suffixes)", value);
                            ok = false;
                        }
                        Ok(size) => log.max_size = Some(size),
                    }
                }
                "keep" => match self.ranged("log.keep", &keys::LOG_KEEP, value) {
                    Some(n) => log.keep = n as u32,
                    None => ok = false,
                },
                "timestamps" => match self.boolean("log.timestamps", value) {
                    Some(b) => log.timestamps = b,
                    None => ok = false,
                },
                "syslog" => match self.boolean("log.syslog", value) {
                    Some(b) => log.syslog = b,
                    None => ok = false,
                },
                "syslog_facility" => match self.string("log.syslog_facility", value) {
                    Some(name) if SYSLOG_FACILITIES.contains(&name.as_str()) => log.syslog_facility = name,
                    Some(name) => {
                        let mut message =
                            format!("log.syslog_facility: unknown facility '{}'", printable(&name));
                        if let Some(best) = did_you_mean(&name, SYSLOG_FACILITIES.iter().copied()) {
                            message.push_str(&format!(" (did you mean '{best}'?)"));
                        }
                        self.error_hint(
                            value.pos,
                            message,
                            format!("known: {}", SYSLOG_FACILITIES.join(", ")),
                        );
                        ok = false;
                    }
                    None => ok = false,
                },
                _ => {
                    self.unknown_subkey("log", &key, pos, &keys::names(LOG_KEYS));
                    ok = false;
                }
            }
        }
        if log.max_size.is_some() && log.file.is_none() {
            self.error(item.pos, "log: max_size needs a file to rotate".into());
            ok = false;
        }
        ok.then_some(log)
    }

    /// `stdin`: `null`, `{file: PATH}` or `{data: TEXT}`.
    fn stdin(&mut self, item: &Item) -> Option<Stdin> {
        const WHAT: &str = "null, or a mapping such as {file: input.txt} or {data: \"text\"}";
        if item.node == Node::Null {
            // Written out (`null`, `~`): /dev/null. Left empty: an error,
            // like every key without a value.
            let written =
                item.pos.bytes.and_then(|(start, len)| self.text.get(start..start.checked_add(len)?));
            if written.is_some_and(|w| matches!(w.trim(), "null" | "Null" | "NULL" | "~")) {
                return Some(Stdin::Null);
            }
            self.expected("stdin", WHAT, item);
            return None;
        }
        let entries = self.entries("stdin", item, WHAT)?;
        let known = keys::names(keys::STDIN.keys());
        let mut found: Option<(String, Option<Stdin>)> = None;
        let mut ok = true;
        for (sub, pos, value) in entries {
            let stdin = match sub.as_str() {
                "file" => self.path("stdin.file", value).map(Stdin::File),
                "data" => match &value.node {
                    Node::Str(_) | Node::Int(_) | Node::Float(_) | Node::Bool(_) => {
                        value.scalar_text(self.text).map(Stdin::Data)
                    }
                    _ => {
                        self.expected("stdin.data", "a string", value);
                        None
                    }
                },
                _ => {
                    self.unknown_subkey("stdin", &sub, pos, &known);
                    ok = false;
                    continue;
                }
            };
            match &found {
                Some((first, _)) => {
                    self.error(
                        pos,
                        format!("stdin: {first} and {sub} are both set (it is one or the other)"),
                    );
                    ok = false;
                }
                None => found = Some((sub, stdin)),
            }
        }
        match found {
            Some((_, Some(stdin))) if ok => Some(stdin),
            Some(_) => None,
            None if !ok => None,
            None => {
                self.error_hint(
                    item.pos,
                    "stdin: needs file or data".into(),
                    "stdin: {file: input.txt}, stdin: {data: \"text\"}, or stdin: null".into(),
                );
                None
            }
        }
    }

    /// `instances: 4`, or a list of instance names: `[eu, us]`.
    fn instances(&mut self, item: &Item) -> Option<tend_core::pool::Instances> {
        use tend_core::pool::{check_instance_name, Instances, MAX_INSTANCES};
        match &item.node {
            Node::Seq(items) => {
                if items.is_empty() {
                    self.error_hint(
                        item.pos,
                        "instances: the list is empty".into(),
                        "list at least one instance name, or give a number".into(),
                    );
                    return None;
                }
                let mut names: Vec<String> = Vec::new();
                let mut ok = true;
                for entry in items {
                    let text = match &entry.node {
                        Node::Str(_) | Node::Int(_) => entry.scalar_text(self.text).unwrap_or_default(),
                        _ => {
                            self.expected("instances", "an instance name in the list", entry);
                            ok = false;
                            continue;
                        }
                    };
                    if let Err(why) = check_instance_name(&text) {
                        self.error(entry.pos, format!("instances: {}", printable(&why)));
                        ok = false;
                    } else if names.contains(&text) {
                        self.error(entry.pos, format!("instances: '{text}' is listed twice"));
                        ok = false;
                    } else {
                        names.push(text);
                    }
                }
                ok.then_some(Instances::Names(names))
            }
            _ => {
                let value = match &item.node {
                    Node::Int(i) => Some(*i),
                    Node::Str(s) => s.trim().parse::<i128>().ok(),
                    _ => None,
                };
                match value {
                    Some(n) if (1..=i128::from(MAX_INSTANCES)).contains(&n) => {
                        Some(Instances::Count(n as u32))
                    }
                    _ => {
                        let what = format!("a number from 1 to {MAX_INSTANCES}, or a list of instance names");
                        self.expected("instances", &what, item);
                        None
                    }
                }
            }
        }
    }

    /// `stdout` or `stderr`: `{to: NAME}`, the consumer its stream is piped
    /// into (that it exists, and may take it, is checked across units).
    fn pipe_to(&mut self, key: &str, own: &str, item: &Item) -> Option<PipeTarget> {
        let entries = self.entries(key, item, "a mapping such as {to: shipper}")?;
        let mut target = None;
        let mut ok = true;
        for (sub, pos, value) in entries {
            if sub != "to" {
                self.unknown_subkey(key, &sub, pos, &["to"]);
                ok = false;
                continue;
            }
            let subkey = format!("{key}.to");
            let Some(name) = self.string(&subkey, value) else {
                ok = false;
                continue;
            };
            // A unit, or one instance of a pool (`worker@2`).
            let (unit, instance) = tend_core::pool::split(&name);
            let instance_ok = instance.is_none_or(|i| tend_core::pool::check_instance_name(i).is_ok());
            if !valid_unit_name(unit) || !instance_ok {
                self.error(value.pos, format!("{subkey}: '{}' is not a unit name", printable(&name)));
                ok = false;
            } else if unit == own {
                self.error_hint(
                    value.pos,
                    format!("{subkey}: {own} cannot pipe into itself"),
                    "name the service that reads this stream".into(),
                );
                ok = false;
            } else {
                target = Some(PipeTarget {
                    name,
                    at: SourcePos { line: value.pos.line, column: value.pos.column },
                });
            }
        }
        if target.is_none() && ok {
            self.error_hint(
                item.pos,
                format!("{key}: needs to: NAME"),
                format!("e.g. {key}: {{to: shipper}}"),
            );
        }
        target.filter(|_| ok)
    }

    fn signal(&mut self, key: &str, item: &Item) -> Option<i32> {
        let text = match &item.node {
            Node::Str(_) | Node::Int(_) => item.scalar_text(self.text).unwrap_or_default(),
            _ => {
                self.expected(key, "a signal name such as SIGTERM, or a number", item);
                return None;
            }
        };
        match parse_signal(&text) {
            Ok(n) => Some(n),
            Err(why) => {
                self.error(item.pos, format!("{key}: {why}"));
                None
            }
        }
    }
}

/// An optional key's checked value: `None` when the key is absent is
/// `Some(None)`; a key that failed its check (`Some(None)`) is `None`.
fn present<T>(value: Option<Option<T>>) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(checked) => checked.map(Some),
    }
}

/// The spelling of a type in unit files.
fn type_name(t: ServiceType) -> &'static str {
    match t {
        ServiceType::Simple => "simple",
        ServiceType::Notify => "notify",
        ServiceType::Oneshot => "oneshot",
    }
}

/// `value` is one of `values`, or an error message with a suggestion.
fn one_of(key: &str, values: &[&str], item: &Item, got: String) -> Result<usize, String> {
    if let Node::Str(s) = &item.node {
        if let Some(i) = values.iter().position(|v| v == s) {
            return Ok(i);
        }
    }
    let mut message = format!("{key}: expected one of {}, got {got}", values.join(", "));
    if let Node::Str(s) = &item.node {
        if let Some(best) = did_you_mean(s, values.iter().copied()) {
            message.push_str(&format!(" (did you mean '{best}'?)"));
        }
    }
    Err(message)
}

/// The checks of the ordering, readiness, sandbox and resources keys.
impl Checker<'_> {
    fn choice(&mut self, key: &str, values: &[&str], item: &Item) -> Option<usize> {
        let got = self.got(item);
        match one_of(key, values, item, got) {
            Ok(i) => Some(i),
            Err(message) => {
                self.error(item.pos, message);
                None
            }
        }
    }

    fn service_type(&mut self, item: &Item) -> Option<ServiceType> {
        if let Node::Str(s) = &item.node {
            if s == "forking" || s == "exec" {
                let got = self.got(item);
                self.error_hint(
                    item.pos,
                    format!("type: expected one of {}, got {got}", TYPE_VALUES.join(", ")),
                    "tend supervises programs that stay in the foreground: use type: simple and the program's \
                     foreground option"
                        .into(),
                );
                return None;
            }
        }
        Some(match self.choice("type", TYPE_VALUES, item)? {
            0 => ServiceType::Simple,
            1 => ServiceType::Notify,
            _ => ServiceType::Oneshot,
        })
    }

    /// A duration that must be more than zero (leaving the key out is how
    /// to say "none").
    fn positive_duration(&mut self, key: &str, item: &Item) -> Option<Duration> {
        let d = self.duration(key, item)?;
        if d.is_zero() {
            self.error(item.pos, format!("{key}: must be longer than 0s"));
            return None;
        }
        Some(d)
    }

    /// A list of names (condition `started`) or a mapping name → condition.
    fn depends_on(&mut self, own: &str, item: &Item) -> Option<Vec<Dependency>> {
        let mut deps: Vec<Dependency> = Vec::new();
        let mut ok = true;
        match &item.node {
            Node::Seq(items) => {
                for entry in items {
                    let name = match &entry.node {
                        Node::Str(_) | Node::Int(_) => entry.scalar_text(self.text).unwrap_or_default(),
                        _ => {
                            self.expected("depends_on", "a unit name", entry);
                            ok = false;
                            continue;
                        }
                    };
                    if deps.iter().any(|d| d.name == name) {
                        self.error(entry.pos, format!("depends_on: '{}' is listed twice", printable(&name)));
                        ok = false;
                        continue;
                    }
                    ok &= self.dependency(own, name, DependencyCondition::Started, entry.pos, &mut deps);
                }
            }
            Node::Map(_) => {
                let entries =
                    self.entries("depends_on", item, "a list of unit names or a mapping of name: condition")?;
                for (name, pos, value) in entries {
                    if deps.iter().any(|d| d.name == name) {
                        continue; // a duplicate key: reported already
                    }
                    let key = format!("depends_on.{}", printable(&name));
                    let condition = match self.choice(&key, CONDITION_VALUES, value) {
                        Some(0) => DependencyCondition::Started,
                        Some(1) => DependencyCondition::Ready,
                        Some(_) => DependencyCondition::Completed,
                        None => {
                            ok = false;
                            continue;
                        }
                    };
                    ok &= self.dependency(own, name, condition, pos, &mut deps);
                }
            }
            _ => {
                self.expected("depends_on", "a list of unit names or a mapping of name: condition", item);
                return None;
            }
        }
        ok.then_some(deps)
    }

    fn dependency(
        &mut self,
        own: &str,
        name: String,
        condition: DependencyCondition,
        pos: Pos,
        deps: &mut Vec<Dependency>,
    ) -> bool {
        if name.trim().is_empty() {
            self.error(pos, "depends_on: unit name is empty".into());
            return false;
        }
        if tend_core::pool::split(&name).0 == own {
            self.error(pos, format!("depends_on: {own} cannot depend on itself"));
            return false;
        }
        deps.push(Dependency { name, condition, line: pos.line, column: pos.column });
        true
    }

    /// `ready_check` (health = false) or `health_check` (health = true).
    fn check_spec(&mut self, key: &str, item: &Item, health: bool) -> Option<CheckSpec> {
        let entries = self.entries(key, item, "a mapping such as {tcp: 127.0.0.1:5432, interval: 1s}")?;
        let known = keys::names(if health { HEALTH_CHECK_KEYS } else { READY_CHECK_KEYS });
        let mut spec = CheckSpec {
            check: Check::Exec(Vec::new()),
            interval: if health { DEFAULT_HEALTH_INTERVAL } else { DEFAULT_READY_INTERVAL },
            timeout: DEFAULT_CHECK_TIMEOUT,
            // A ready check is tried until it succeeds or start_timeout.
            retries: if health { DEFAULT_HEALTH_RETRIES } else { 1 },
        };
        let mut kind: Option<(String, Option<Check>)> = None;
        let mut ok = true;
        for (sub, pos, value) in entries {
            let subkey = format!("{key}.{sub}");
            match sub.as_str() {
                "exec" | "tcp" | "http" => {
                    let check = match sub.as_str() {
                        "exec" => self.words(&subkey, value).map(Check::Exec),
                        "tcp" => {
                            self.string(&subkey, value).and_then(|text| match parse_tcp_address(&text) {
                                Ok((host, port)) => Some(Check::Tcp { host, port }),
                                Err(why) => {
                                    self.error(value.pos, format!("{subkey}: {why}"));
                                    None
                                }
                            })
                        }
                        _ => self.string(&subkey, value).and_then(|text| match parse_http_url(&text) {
                            Ok((host, port, path)) => Some(Check::Http { host, port, path }),
                            Err(why) => {
                                self.error(value.pos, format!("{subkey}: {why}"));
                                None
                            }
                        }),
                    };
                    match &kind {
                        Some((first, _)) => {
                            self.error(
                                pos,
                                format!("{key}: {first} and {sub} are both set (a check has exactly one of exec, tcp, http)"),
                            );
                            ok = false;
                        }
                        None => kind = Some((sub.clone(), check)),
                    }
                }
                "interval" => match self.positive_duration(&subkey, value) {
                    Some(d) => spec.interval = d,
                    None => ok = false,
                },
                "timeout" => match self.positive_duration(&subkey, value) {
                    Some(d) => spec.timeout = d,
                    None => ok = false,
                },
                "retries" if health => match self.ranged(&subkey, &keys::HEALTH_RETRIES, value) {
                    Some(n) => spec.retries = n as u32,
                    None => ok = false,
                },
                "retries" => {
                    self.error_hint(
                        pos,
                        format!("{key}: retries is only for health_check"),
                        "a ready check is tried every interval until it succeeds or start_timeout passes"
                            .into(),
                    );
                    ok = false;
                }
                _ => {
                    self.unknown_subkey(key, &sub, pos, &known);
                    ok = false;
                }
            }
        }
        match kind {
            Some((_, Some(check))) => spec.check = check,
            Some((_, None)) => ok = false,
            None => {
                self.error_hint(
                    item.pos,
                    format!("{key}: needs one of exec, tcp or http"),
                    format!("e.g. {key}: {{tcp: 127.0.0.1:5432}}"),
                );
                ok = false;
            }
        }
        ok.then_some(spec)
    }

    fn sandbox(&mut self, item: &Item) -> Option<SandboxSpec> {
        let entries = self.entries("sandbox", item, "a mapping such as {no_new_privileges: true}")?;
        let mut sandbox = SandboxSpec::default();
        let mut filesystem_at = None;
        // Where each path list was written, for contradictions between them.
        let mut lists_at: [Option<Pos>; 3] = [None; 3];
        let mut ok = true;
        for (key, pos, value) in entries {
            let subkey = format!("sandbox.{key}");
            let flag = match key.as_str() {
                "no_new_privileges" => Some(&mut sandbox.no_new_privileges),
                "private_tmp" => Some(&mut sandbox.private_tmp),
                "private_network" => Some(&mut sandbox.private_network),
                "private_ipc" => Some(&mut sandbox.private_ipc),
                "private_pids" => Some(&mut sandbox.private_pids),
                _ => None,
            };
            if let Some(flag) = flag {
                match self.boolean(&subkey, value) {
                    Some(b) => *flag = b,
                    None => ok = false,
                }
                continue;
            }
            match key.as_str() {
                "capabilities" => match self.capabilities(&subkey, value) {
                    Some(caps) => sandbox.capabilities = Some(caps),
                    None => ok = false,
                },
                "read_only_paths" | "read_write_paths" | "inaccessible_paths" => {
                    let Some(paths) = self.absolute_paths(&subkey, value) else {
                        ok = false;
                        continue;
                    };
                    match key.as_str() {
                        "read_only_paths" => {
                            (sandbox.read_only_paths, lists_at[0]) = (paths, Some(value.pos))
                        }
                        "read_write_paths" => {
                            (sandbox.read_write_paths, lists_at[1]) = (paths, Some(value.pos))
                        }
                        _ => (sandbox.inaccessible_paths, lists_at[2]) = (paths, Some(value.pos)),
                    }
                }
                "hostname" => match self.hostname(&subkey, value) {
                    Some(name) => sandbox.hostname = Some(name),
                    None => ok = false,
                },
                "protect_proc" => {
                    sandbox.protect_proc = match self.choice(&subkey, PROTECT_PROC_VALUES, value) {
                        Some(0) => ProtectProc::Default,
                        Some(1) => ProtectProc::Invisible,
                        Some(2) => ProtectProc::NoAccess,
                        Some(_) => ProtectProc::Ptraceable,
                        None => {
                            ok = false;
                            continue;
                        }
                    };
                }
                "filesystem" => {
                    sandbox.filesystem = match self.choice(&subkey, FILESYSTEM_VALUES, value) {
                        Some(0) => FilesystemBackend::Auto,
                        Some(1) => FilesystemBackend::Mounts,
                        Some(_) => FilesystemBackend::Landlock,
                        None => {
                            ok = false;
                            continue;
                        }
                    };
                    filesystem_at = Some(value.pos);
                }
                _ => {
                    self.unknown_subkey("sandbox", &key, pos, &keys::names(SANDBOX_KEYS));
                    ok = false;
                }
            }
        }
        if sandbox.filesystem == FilesystemBackend::Landlock && sandbox.own_proc() {
            self.error_hint(
                filesystem_at.unwrap_or(item.pos),
                "sandbox.filesystem: landlock cannot give a /proc of the service's own (private_pids or protect_proc is set)".into(),
                "use filesystem: mounts (or auto)".into(),
            );
            ok = false;
        }
        if sandbox.filesystem == FilesystemBackend::Landlock && sandbox.private_tmp {
            self.error_hint(
                filesystem_at.unwrap_or(item.pos),
                "sandbox.filesystem: landlock cannot give a private /tmp (private_tmp is set)".into(),
                "use filesystem: mounts (or auto), or remove private_tmp".into(),
            );
            ok = false;
        }
        if ok {
            for (list, message, hint) in path_rule_conflicts(&sandbox) {
                self.error_hint(lists_at[list].unwrap_or(item.pos), message, hint);
                ok = false;
            }
        }
        ok.then_some(sandbox)
    }

    /// Capability numbers, sorted, each once. An empty list is "none at all".
    fn capabilities(&mut self, key: &str, item: &Item) -> Option<Vec<u8>> {
        let Node::Seq(items) = &item.node else {
            self.expected(key, "a list of capability names such as [NET_BIND_SERVICE]", item);
            return None;
        };
        let mut caps = Vec::new();
        let mut ok = true;
        for cap in items {
            let Node::Str(name) = &cap.node else {
                self.expected(key, "a capability name", cap);
                ok = false;
                continue;
            };
            match parse_capability(name) {
                Ok(n) => caps.push(n),
                Err(why) => {
                    self.error_hint(
                        cap.pos,
                        format!("{key}: {why}"),
                        "names as in capabilities(7), with or without CAP_, e.g. NET_BIND_SERVICE".into(),
                    );
                    ok = false;
                }
            }
        }
        tend_core::sort::sort(&mut caps);
        caps.dedup();
        ok.then_some(caps)
    }

    /// A list of absolute paths, normalised (`/srv/data/` → `/srv/data`),
    /// each once. These are not joined to the unit's folder: they name
    /// places in the service's view of the filesystem.
    fn absolute_paths(&mut self, key: &str, item: &Item) -> Option<Vec<PathBuf>> {
        let Node::Seq(items) = &item.node else {
            self.expected(key, "a list of absolute paths", item);
            return None;
        };
        let mut paths: Vec<PathBuf> = Vec::new();
        let mut ok = true;
        for entry in items {
            let Some(text) = self.string(key, entry) else {
                ok = false;
                continue;
            };
            let shown = printable(&text);
            let problem = if text.is_empty() {
                Some("path is empty".to_owned())
            } else if text.contains('\0') {
                Some(format!("'{shown}' contains a NUL byte"))
            } else if !text.starts_with('/') {
                Some(format!("'{shown}' is not an absolute path"))
            } else if Path::new(&text).components().any(|c| c == std::path::Component::ParentDir) {
                Some(format!("'{shown}' contains '..'"))
            } else {
                None
            };
            if let Some(problem) = problem {
                self.error_hint(
                    entry.pos,
                    format!("{key}: {problem}"),
                    "write the full path as the service sees it, starting with /".into(),
                );
                ok = false;
                continue;
            }
            let path: PathBuf = Path::new(&text).components().collect();
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        ok.then_some(paths)
    }

    fn hostname(&mut self, key: &str, item: &Item) -> Option<String> {
        let name = self.string(key, item)?;
        if name.len() > HOSTNAME_MAX {
            self.error(item.pos, format!("{key}: longer than {HOSTNAME_MAX} characters"));
            return None;
        }
        if let Err(why) = check_hostname(&name) {
            self.error(item.pos, format!("{key}: {why}"));
            return None;
        }
        Some(name)
    }

    fn resources(&mut self, item: &Item) -> Option<ResourcesSpec> {
        let entries =
            self.entries("resources", item, "a mapping such as {memory_max: 256M, pids_max: 200}")?;
        let mut resources = ResourcesSpec::default();
        let mut ok = true;
        for (key, pos, value) in entries {
            let subkey = format!("resources.{key}");
            match key.as_str() {
                "memory_max" => match self.memory_max(&subkey, value) {
                    Some(n) => resources.memory_max = Some(n),
                    None => ok = false,
                },
                "pids_max" => match self.ranged(&subkey, &keys::PIDS_MAX, value) {
                    Some(n) => resources.pids_max = Some(n as u64),
                    None => ok = false,
                },
                "cpu_max" => match self.cpu_max(&subkey, value) {
                    Some(n) => resources.cpu_max_millicores = Some(n),
                    None => ok = false,
                },
                "cpu_weight" => match self.ranged(&subkey, &keys::CPU_WEIGHT, value) {
                    Some(n) => resources.cpu_weight = Some(n as u32),
                    None => ok = false,
                },
                "accounting" => match self.boolean(&subkey, value) {
                    Some(b) => resources.accounting = b,
                    None => ok = false,
                },
                _ => {
                    self.unknown_subkey("resources", &key, pos, &keys::names(RESOURCES_KEYS));
                    ok = false;
                }
            }
        }
        ok.then_some(resources)
    }

    fn memory_max(&mut self, key: &str, item: &Item) -> Option<u64> {
        let text = match &item.node {
            Node::Str(_) | Node::Int(_) => item.scalar_text(self.text).unwrap_or_default(),
            _ => {
                self.expected(key, "a size such as 256M (K, M, G suffixes)", item);
                return None;
            }
        };
        match parse_size(&text) {
            Ok(n) if n >= MEMORY_MAX_MIN => Some(n),
            Ok(_) => {
                self.error(item.pos, format!("{key}: '{}' is less than the minimum of 1M", printable(&text)));
                None
            }
            Err(why) => {
                self.error(item.pos, format!("{key}: {why}"));
                None
            }
        }
    }

    /// Cores as a number (`0.5`, `2`) → thousandths of a core, at least 1.
    fn cpu_max(&mut self, key: &str, item: &Item) -> Option<u32> {
        let cores = match &item.node {
            Node::Int(n) => Some(*n as f64),
            Node::Float(f) => Some(*f),
            Node::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match cores {
            Some(c) if c.is_finite() && c > 0.0 && c <= CPU_MAX_CORES => {
                Some(((c * 1000.0).round() as u32).max(1))
            }
            _ => {
                self.expected(key, "a number of cores greater than 0, such as 0.5 or 2", item);
                None
            }
        }
    }
}

fn limit_text(n: u64) -> String {
    if n == RLIM_UNLIMITED {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
