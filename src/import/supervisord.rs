//! supervisord.conf → units: one unit per process of each `[program:x]`
//! (`numprocs` of them, named by `process_name`), with supervisord's
//! defaults in mind (autorestart=unexpected, exitcodes=0, stopwaitsecs=10,
//! stdout_logfile=AUTO), its `%(name)s` expansions, and its
//! `environment=KEY="value",…` syntax. supervisord runs commands without a
//! shell (shlex-split), as tend does.

use super::ini::{self, Dialect, Entry, Section};
use super::{absolute, seconds, unit_name, Draft, Note, Translation, Yaml};
use crate::unit::values::split_words;
use std::path::Path;

pub fn translate(file: &Path, text: &str) -> Translation {
    let mut out = Translation::default();
    let (sections, bad) = ini::parse(text, Dialect::Supervisord);
    out.notes.extend(ini::bad_line_notes(file, bad, "`key = value`"));
    for section in &sections {
        let note = |why: &str| Note {
            file: file.to_owned(),
            line: section.line,
            source: format!("[{}]", section.name),
            why: why.to_owned(),
        };
        match section.name.split_once(':') {
            Some(("program", name)) => program(file, section, name.trim(), &mut out),
            Some(("group", _)) => {
                out.notes.push(note("groups: tend has no groups; each program is a unit of its own"))
            }
            Some(("eventlistener", _)) => out.notes.push(note("event listeners: tend has no event protocol")),
            Some(("fcgi-program", _)) => {
                out.notes.push(note("FastCGI programs: tend does not open sockets for services"))
            }
            Some(("rpcinterface", _)) => out.notes.push(note("supervisord's RPC interface")),
            _ if section.name == "include" => {
                let files = section.get("files").map_or("", |e| e.value.as_str());
                out.notes.push(note(&format!("includes are not followed: import those files too ({files})")));
            }
            _ => out.notes.push(note("supervisord's own settings: tend up and its flags cover these")),
        }
    }
    out
}

/// Values `%(name)s` can take in one process's settings.
struct Expansions<'a> {
    program: &'a str,
    process: u32,
    numprocs: u32,
    here: String,
}

impl Expansions<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "program_name" | "group_name" => Some(self.program.to_owned()),
            "process_num" => Some(self.process.to_string()),
            "numprocs" => Some(self.numprocs.to_string()),
            "here" => Some(self.here.clone()),
            _ => name.strip_prefix("ENV_").and_then(|var| std::env::var(var).ok()),
        }
    }

    /// Python's `%(name)FORMAT` for FORMAT `s`, `d`, `0Nd`, `Nd`; `%%` is `%`.
    fn expand(&self, value: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = value;
        while let Some(at) = rest.find('%') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('%') {
                out.push('%');
                rest = after;
                continue;
            }
            let Some(inner) = rest.strip_prefix('(') else {
                return Err("a '%' that starts no %(name)s".into());
            };
            let Some(close) = inner.find(')') else {
                return Err("an unclosed %(".into());
            };
            let name = &inner[..close];
            let after = &inner[close + 1..];
            let spec_len =
                after.find(|c: char| c.is_ascii_alphabetic()).ok_or("a %(name) without a format")? + 1;
            let spec = &after[..spec_len];
            rest = &after[spec_len..];
            let value = self.get(name).ok_or_else(|| format!("%({name}) is not known here"))?;
            out.push_str(&match spec.as_bytes()[spec.len() - 1] {
                b's' => value,
                b'd' => {
                    let width: usize = spec[..spec.len() - 1].trim_start_matches('0').parse().unwrap_or(0);
                    let n: i64 = value.parse().map_err(|_| format!("%({name})d is not a number"))?;
                    if spec.starts_with('0') {
                        format!("{n:0width$}")
                    } else {
                        format!("{n:width$}")
                    }
                }
                _ => return Err(format!("format %({name}){spec} is not supported")),
            });
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// supervisord's `KEY="value",KEY2='v',KEY3=plain` (values may hold commas
/// inside quotes; newlines between pairs are fine).
pub fn environment_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_owned();
        if key.is_empty() || key.contains([',', '"', '\'']) {
            return Err(format!("'{key}' is not a variable name"));
        }
        let mut value = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => value.push(c),
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == ',' || c == '\n' => break,
                None => value.push(c),
            }
            chars.next();
        }
        if quote.is_some() {
            return Err(format!("the value of {key} has no closing quote"));
        }
        pairs.push((key, value.trim().to_owned()));
    }
}

/// `50MB`, `1KB`, `0` (supervisord's byte sizes) → tend's `50M`; None for 0.
fn byte_size(text: &str) -> Option<Result<String, String>> {
    let upper = text.trim().to_ascii_uppercase();
    let (number, unit) = match upper.strip_suffix("KB").map(|n| (n, "K")) {
        Some(pair) => pair,
        None => match upper.strip_suffix("MB").map(|n| (n, "M")) {
            Some(pair) => pair,
            None => upper.strip_suffix("GB").map_or((upper.as_str(), ""), |n| (n, "G")),
        },
    };
    match number.trim().parse::<u64>() {
        Ok(0) => None,
        Ok(n) => Some(Ok(format!("{n}{unit}"))),
        Err(_) => Some(Err(format!("'{text}' is not a size"))),
    }
}

/// Keys a `[program:x]` may have that are read below.
const READ: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "directory",
    "user",
    "umask",
    "environment",
    "autostart",
    "autorestart",
    "exitcodes",
    "startsecs",
    "startretries",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stderr_logfile",
    "stdout_syslog",
    "priority",
];

fn program(file: &Path, section: &Section, name: &str, out: &mut Translation) {
    let get = |key: &str| section.get(key);
    let int = |key: &str, default: u32| -> Result<u32, &Entry> {
        match get(key) {
            Some(entry) => entry.value.trim().parse().map_err(|_| entry),
            None => Ok(default),
        }
    };
    let header = format!("[{}]", section.name);
    let whole = |why: String| Note { file: file.to_owned(), line: section.line, source: header.clone(), why };
    let (numprocs, start) = match (int("numprocs", 1), int("numprocs_start", 0)) {
        (Ok(n), Ok(s)) if n >= 1 => (n, s),
        _ => {
            out.notes.push(whole("numprocs / numprocs_start are not numbers (numprocs at least 1)".into()));
            return;
        }
    };
    let Some(command) = get("command") else {
        out.notes.push(whole("no command".into()));
        return;
    };
    let here = absolute(file, ".").display().to_string();
    let process_name = get("process_name").map_or("%(program_name)s", |e| e.value.as_str());
    if numprocs > 1 && !process_name.contains("%(process_num)") {
        out.notes.push(whole(format!(
            "numprocs={numprocs} needs process_name with %(process_num)s (supervisord refuses it too)"
        )));
        return;
    }
    for process in start..start + numprocs {
        let vars = Expansions { program: name, process, numprocs, here: here.clone() };
        let unit = match vars.expand(process_name) {
            Ok(expanded) => unit_name(&expanded),
            Err(why) => {
                out.notes.push(whole(format!("process_name: {why}")));
                return;
            }
        };
        let mut draft = Draft::new(&unit, file);
        draft.comments.push(format!(
            "Imported from {} [{}]{} by tend import supervisord.",
            file.display(),
            section.name,
            if numprocs > 1 { format!(", process {process}") } else { String::new() }
        ));
        let expand = |draft: &mut Draft, entry: &Entry| match vars.expand(&entry.value) {
            Ok(value) => Some(value),
            Err(why) => {
                draft.note(entry.line, &entry.source, why);
                None
            }
        };
        let Some(line) = expand(&mut draft, command) else {
            out.notes.append(&mut draft.notes);
            continue;
        };
        match split_words(&line) {
            Ok(words) if !words.is_empty() => draft.set("command", Yaml::words(&words)),
            _ => {
                out.notes.push(Note {
                    file: file.to_owned(),
                    line: command.line,
                    source: command.source.clone(),
                    why: "the command does not split into words (unbalanced quotes?)".into(),
                });
                continue;
            }
        }
        if let Some(entry) = get("directory") {
            if let Some(dir) = expand(&mut draft, entry) {
                draft.set("working_dir", Yaml::str(absolute(file, &dir).display().to_string()));
            }
        }
        if let Some(entry) = get("environment") {
            match expand(&mut draft, entry).map(|text| environment_pairs(&text)) {
                Some(Ok(pairs)) => draft.set(
                    "environment",
                    Yaml::Map(pairs.into_iter().map(|(k, v)| (k, Yaml::Str(v))).collect()),
                ),
                Some(Err(why)) => draft.note(entry.line, &entry.source, why),
                None => {}
            }
        }
        if let Some(entry) = get("user") {
            if let Some(user) = expand(&mut draft, entry) {
                draft.set("user", Yaml::str(user));
            }
        }
        if let Some(entry) = get("umask") {
            draft.set("umask", Yaml::str(entry.value.trim()));
        }
        if let Some(entry) = get("autorestart") {
            let policy = match entry.value.trim().to_ascii_lowercase().as_str() {
                "true" => Some("always"),
                "false" => Some("never"),
                "unexpected" => Some("on-failure"),
                _ => None,
            };
            match policy {
                Some(policy) => draft.set("restart", Yaml::str(policy)),
                None => draft.note(entry.line, &entry.source, "autorestart is true, false or unexpected"),
            }
        } else {
            // supervisord's default, unexpected, is tend's on-failure default too.
        }
        if let Some(entry) = get("exitcodes") {
            let codes: Result<Vec<Yaml>, _> =
                entry.value.split(',').map(|c| c.trim().parse::<i64>().map(Yaml::Int)).collect();
            match codes {
                Ok(codes) if codes != [Yaml::Int(0)] => draft.set("success_exit_codes", Yaml::List(codes)),
                Ok(_) => {}
                Err(_) => draft.note(entry.line, &entry.source, "exitcodes is a list of numbers"),
            }
        }
        if let Some(entry) = get("stopsignal") {
            let name = entry.value.trim().to_ascii_uppercase();
            let name = if name.starts_with("SIG") { name } else { format!("SIG{name}") };
            match crate::unit::values::parse_signal(&name) {
                Ok(_) => draft.set("stop_signal", Yaml::Str(name)),
                Err(why) => draft.note(entry.line, &entry.source, why),
            }
        }
        if let Some(entry) = get("stopwaitsecs") {
            match entry.value.trim().parse::<u64>() {
                Ok(n) => draft.set("stop_timeout", seconds(n)),
                Err(_) => draft.note(entry.line, &entry.source, "stopwaitsecs is a number of seconds"),
            }
        }
        if let Some(entry) = get("startretries") {
            match entry.value.trim().parse::<i64>() {
                Ok(n) if n >= 1 => {
                    draft.set("start_limit", Yaml::Map(vec![("burst".into(), Yaml::Int(n))]));
                    draft.comments.push(format!(
                        "start_limit.burst from startretries={n}: tend counts failures within start_limit.interval (60s), not in a row."
                    ));
                }
                Ok(_) => draft.set("restart", Yaml::str("never")),
                Err(_) => draft.note(entry.line, &entry.source, "startretries is a number"),
            }
        }
        if let Some(entry) = get("startsecs") {
            if entry.value.trim() != "0" {
                draft.note(
                    entry.line,
                    &entry.source,
                    "tend counts a start as done when the process runs (or its ready_check passes), not after a number of seconds; add a ready_check if the program needs time to come up",
                );
            }
        }
        if let Some(entry) = get("autostart") {
            if entry.value.trim().eq_ignore_ascii_case("false") {
                draft.note(
                    entry.line,
                    &entry.source,
                    "tend up starts every unit; leave this unit out of the folder to keep it down",
                );
            }
        }
        if let Some(entry) = get("priority") {
            draft.note(
                entry.line,
                &entry.source,
                "tend starts units in parallel, ordered only by depends_on",
            );
        }
        if let Some(entry) = get("redirect_stderr").filter(|e| e.value.trim().eq_ignore_ascii_case("true")) {
            draft.note(
                entry.line,
                &entry.source,
                "tend keeps stderr apart from stdout (both go to log.file)",
            );
        }
        log(&mut draft, section, &vars);
        for entry in section.entries.iter().filter(|e| !READ.contains(&e.key.as_str())) {
            draft.note(entry.line, &entry.source, "no tend equivalent");
        }
        out.drafts.push(draft);
    }
}

/// stdout_logfile (and its rotation) → log.
fn log(draft: &mut Draft, section: &Section, vars: &Expansions) {
    let stdout = section.get("stdout_logfile");
    let path = stdout
        .map(|e| e.value.trim())
        .filter(|v| !v.eq_ignore_ascii_case("AUTO") && !v.eq_ignore_ascii_case("NONE"));
    if let (Some(path), Some(entry)) = (path, stdout) {
        if path.eq_ignore_ascii_case("syslog") {
            draft.set_in("log", "syslog", Yaml::Bool(true));
        } else {
            match vars.expand(path) {
                Ok(path) => {
                    let file = absolute(&draft.file, &path);
                    draft.set_in("log", "file", Yaml::str(file.display().to_string()));
                    // supervisord's defaults: 50MB, 10 backups.
                    let max = section.get("stdout_logfile_maxbytes").map_or("50MB", |e| e.value.as_str());
                    match byte_size(max) {
                        Some(Ok(size)) => draft.set_in("log", "max_size", Yaml::Str(size)),
                        Some(Err(why)) => {
                            let e = section.get("stdout_logfile_maxbytes").expect("not the default");
                            draft.note(e.line, &e.source, why)
                        }
                        None => {}
                    }
                    let keep = section.get("stdout_logfile_backups").map_or("10", |e| e.value.as_str());
                    if let Ok(keep) = keep.trim().parse::<i64>() {
                        draft.set_in("log", "keep", Yaml::Int(keep.min(1000)));
                    }
                }
                Err(why) => draft.note(entry.line, &entry.source, why),
            }
        }
    }
    if let Some(entry) = section.get("stdout_syslog").filter(|e| e.value.trim().eq_ignore_ascii_case("true"))
    {
        let _ = entry;
        draft.set_in("log", "syslog", Yaml::Bool(true));
    }
    if let Some(entry) = section.get("stderr_logfile") {
        let same = stdout.is_some_and(|s| s.value.trim() == entry.value.trim());
        let auto = entry.value.trim().eq_ignore_ascii_case("AUTO")
            || entry.value.trim().eq_ignore_ascii_case("NONE");
        if !same && !auto {
            draft.note(entry.line, &entry.source, "tend writes stdout and stderr to the one log.file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Expansions<'static> {
        Expansions { program: "worker", process: 3, numprocs: 4, here: "/etc/supervisor".into() }
    }

    #[test]
    fn python_style_expansions() {
        let v = vars();
        assert_eq!(v.expand("%(program_name)s_%(process_num)02d").unwrap(), "worker_03");
        assert_eq!(v.expand("%(here)s/x %% %(numprocs)d").unwrap(), "/etc/supervisor/x % 4");
        assert!(v.expand("%(nope)s").is_err());
        assert!(v.expand("100%").is_err());
    }

    #[test]
    fn environment_pairs_with_quotes_commas_and_newlines() {
        let pairs = environment_pairs("A=\"1,2\",B='x y',\nC=plain, D=\"\"").unwrap();
        let want = [("A", "1,2"), ("B", "x y"), ("C", "plain"), ("D", "")];
        assert_eq!(pairs, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert!(environment_pairs("A=\"open").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(byte_size("50MB"), Some(Ok("50M".into())));
        assert_eq!(byte_size("1kb"), Some(Ok("1K".into())));
        assert_eq!(byte_size("0"), None);
        assert!(matches!(byte_size("lots"), Some(Err(_))));
    }

    #[test]
    fn numprocs_gives_one_unit_per_process() {
        let text = "[program:worker]\ncommand=/usr/bin/worker --id %(process_num)d\nprocess_name=%(program_name)s_%(process_num)02d\nnumprocs=3\nnumprocs_start=1\nautorestart=true\nstopsignal=QUIT\nstopwaitsecs=30\nstartsecs=5\n";
        let out = translate(Path::new("/etc/supervisor/conf.d/w.conf"), text);
        let names: Vec<&str> = out.drafts.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["worker_01", "worker_02", "worker_03"]);
        let second = &out.drafts[1];
        assert_eq!(second.get("command"), Some(&Yaml::words(&["/usr/bin/worker", "--id", "2"])));
        assert_eq!(second.get("restart"), Some(&Yaml::str("always")));
        assert_eq!(second.get("stop_signal"), Some(&Yaml::str("SIGQUIT")));
        assert_eq!(second.get("stop_timeout"), Some(&Yaml::str("30s")));
        assert_eq!(second.notes.len(), 1, "{:?}", second.notes);
        assert_eq!(second.notes[0].line, 9);
    }
}
