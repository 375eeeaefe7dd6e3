//! systemd .service files → units (systemd.service(5), systemd.exec(5),
//! systemd.resource-control(5), systemd.kill(5)).
//!
//! What maps: the command (prefixes and `%` specifiers handled), Type
//! (forking only where the command can be told to stay in the foreground),
//! User/Group, the environment, limits, restart and stop settings, the
//! sandbox settings tend has (NoNewPrivileges, capabilities, PrivateTmp,
//! PrivateNetwork, PrivateIPC, ProtectSystem, ProtectHome, the path lists)
//! and cgroup limits. ExecStartPre commands become a oneshot unit
//! `NAME-pre` that NAME depends on. Ordering (After=, Requires=, Wants=)
//! becomes depends_on for the units imported together; its condition
//! follows the dependency's type, as systemd's start jobs do (ready for
//! notify, completed for oneshot, started otherwise).
//!
//! Everything else is reported with its line: systemd has many more
//! hardening knobs than tend, and silently dropping one would make the
//! import look safer than it is.

use super::ini::{self, Dialect, Entry, Section};
use super::{absolute, unit_name, Dependency, Draft, Note, Translation, Yaml};
use crate::unit::values::{capability_names, format_duration, parse_signal, quote_word, split_words};
use std::path::Path;
use std::time::Duration;

/// A condition resolved later from the dependency's type (see
/// `super::resolve_dependencies`).
pub const AFTER: &str = "after";

pub fn translate(file: &Path, text: &str) -> Translation {
    let mut out = Translation::default();
    let stem = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (name, suffix) = stem.rsplit_once('.').unwrap_or((stem.as_str(), ""));
    let whole =
        |why: &str| Note { file: file.to_owned(), line: 0, source: stem.clone(), why: why.to_owned() };
    if suffix != "service" {
        out.notes.push(whole("only .service units are imported"));
        return out;
    }
    if name.ends_with('@') {
        out.notes
            .push(whole("a template (NAME@.service) is not imported: write one unit with `instances:` (a count or the instance names), where %i is the instance name as in systemd"));
        return out;
    }
    let (sections, bad) = ini::parse(text, Dialect::Systemd);
    out.notes.extend(ini::bad_line_notes(file, bad, "`Key=Value`"));
    let empty = Section { name: String::new(), line: 0, entries: Vec::new() };
    let find = |n: &str| sections.iter().find(|s| s.name == n).unwrap_or(&empty);
    let unit = unit_name(name);
    let mut draft = Draft::new(&unit, file);
    draft.comments.push(format!("Imported from {} by tend import systemd.", file.display()));
    let ctx = Ctx { unit: stem.clone() };
    let service = find("Service");
    let Some(pre) = ctx.service(&mut draft, service) else {
        out.notes.append(&mut draft.notes);
        return out;
    };
    ctx.unit_section(&mut draft, find("Unit"));
    for section in &sections {
        if !matches!(section.name.as_str(), "Unit" | "Service") {
            let why = match section.name.as_str() {
                "Install" => "tend up starts every unit in its folder: there is nothing to enable",
                _ => "no tend equivalent",
            };
            draft.note(section.line, &format!("[{}]", section.name), why);
        }
    }
    if let Some(mut pre) = pre {
        pre.deps = draft.deps.clone();
        draft.deps.push(Dependency {
            name: pre.name.clone(),
            condition: "completed",
            line: 0,
            source: String::new(),
        });
        out.drafts.push(pre);
    }
    // The description first, as people write units.
    if let Some(at) = draft.entries.iter().position(|(k, _)| *k == "description") {
        let entry = draft.entries.remove(at);
        draft.entries.insert(0, entry);
    }
    out.drafts.push(draft);
    out
}

/// Parse a systemd time span (systemd.time(7)): `5` (seconds), `5s`,
/// `1min 30s`, `100ms`, `2h`; `None` for `infinity` (and 0, "no limit").
pub fn timespan(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text == "infinity" {
        return Ok(None);
    }
    if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
        let secs: u64 = text.parse().map_err(|_| format!("'{text}' is too large"))?;
        return Ok((secs > 0).then(|| Duration::from_secs(secs)));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.trim().is_empty() {
        rest = rest.trim_start();
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().map_err(|_| format!("'{text}' is not a time span"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "usec" | "us" | "µs" => 1e-6,
            "msec" | "ms" => 1e-3,
            "" | "seconds" | "second" | "sec" | "s" => 1.0,
            "minutes" | "minute" | "min" | "m" => 60.0,
            "hours" | "hour" | "hr" | "h" => 3600.0,
            "days" | "day" | "d" => 86400.0,
            "weeks" | "week" | "w" => 604800.0,
            "months" | "month" | "M" => 2_629_800.0,
            "years" | "year" | "y" => 31_557_600.0,
            _ => return Err(format!("'{text}': unknown unit '{unit}'")),
        };
        total += Duration::from_secs_f64(number * scale);
    }
    Ok((!total.is_zero()).then_some(total))
}

/// A command line of ExecStart= and friends: its prefixes and its words,
/// `%` specifiers expanded; `Err` with the reason when tend cannot run it.
pub struct Exec {
    pub ignore_failure: bool,
    pub words: Vec<String>,
}

struct Ctx {
    /// The unit's file name (`redis-server.service`), for %n, %N, %p.
    unit: String,
}

impl Ctx {
    fn exec(&self, entry: &Entry) -> Result<Exec, String> {
        let mut line = entry.value.trim();
        let mut ignore_failure = false;
        loop {
            match line.chars().next() {
                Some('-') => ignore_failure = true,
                Some(':') | Some('+') | Some('!') => {}
                Some('@') => return Err("`@` (a separate argv[0]) is not supported".into()),
                _ => break,
            }
            line = &line[1..];
        }
        let expanded = self.specifiers(line)?;
        if expanded.contains('$') {
            return Err(
                "systemd substitutes $VARIABLES in commands; tend does not: write the values out".into()
            );
        }
        let words = split_words(&expanded)?;
        if words.is_empty() {
            return Err("an empty command".into());
        }
        Ok(Exec { ignore_failure, words })
    }

    /// systemd.unit(5) specifiers that do not depend on the machine.
    fn specifiers(&self, text: &str) -> Result<String, String> {
        let name = self.unit.rsplit_once('.').map_or(self.unit.as_str(), |(n, _)| n);
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('n') => out.push_str(&self.unit),
                Some('N') | Some('p') => out.push_str(name),
                Some('t') => out.push_str("/run"),
                Some(other) => return Err(format!("the specifier %{other} is not expanded by tend")),
                None => return Err("a `%` at the end".into()),
            }
        }
        Ok(out)
    }

    fn unit_section(&self, draft: &mut Draft, section: &Section) {
        let mut burst = None;
        let mut interval = None;
        for entry in &section.entries {
            match entry.key.as_str() {
                "Description" => draft.set("description", Yaml::str(entry.value.clone())),
                "After" | "Requires" | "Wants" | "BindsTo" | "Requisite" => {
                    let mut others = Vec::new();
                    for target in entry.value.split_whitespace() {
                        match target.strip_suffix(".service") {
                            Some(other) if !other.ends_with('@') => draft.deps.push(Dependency {
                                name: unit_name(other),
                                condition: AFTER,
                                line: entry.line,
                                source: entry.source.clone(),
                            }),
                            _ => others.push(target),
                        }
                    }
                    if !others.is_empty() {
                        let why = format!("{}: tend orders only the services it runs", others.join(", "));
                        draft.note(entry.line, &entry.source, why);
                    }
                }
                "StartLimitBurst" => match entry.value.trim().parse::<i64>() {
                    Ok(n) if n >= 1 => burst = Some(n),
                    _ => draft.note(entry.line, &entry.source, "StartLimitBurst is a number of at least 1"),
                },
                "StartLimitIntervalSec" | "StartLimitInterval" => match timespan(&entry.value) {
                    Ok(Some(d)) => interval = Some(d),
                    _ => {
                        draft.note(entry.line, &entry.source, "tend's start limit needs an interval above 0")
                    }
                },
                "Documentation" => draft.comments.push(format!("Documentation: {}", entry.value)),
                _ => draft.note(entry.line, &entry.source, "no tend equivalent"),
            }
        }
        if burst.is_some() || interval.is_some() {
            let mut limit = Vec::new();
            if let Some(n) = burst {
                limit.push(("burst".into(), Yaml::Int(n)));
            }
            if let Some(d) = interval {
                limit.push(("interval".into(), Yaml::Str(format_duration(d))));
            }
            draft.set("start_limit", Yaml::Map(limit));
        }
    }

    /// The [Service] section; `Some(pre)` when ExecStartPre gives a unit.
    /// `None` when no unit can be written (the reason is in draft.notes).
    fn service(&self, draft: &mut Draft, section: &Section) -> Option<Option<Draft>> {
        let last = |key: &str| section.get(key);
        let service_type = last("Type").map_or("simple", |e| e.value.trim());
        let starts: Vec<&Entry> =
            section.entries.iter().filter(|e| e.key == "ExecStart" && !e.value.is_empty()).collect();
        let Some(first) = starts.first() else {
            draft.note(section.line, "[Service]", "no ExecStart: nothing to run");
            return None;
        };
        let mut words = match self.exec(first) {
            Ok(exec) => exec.words,
            Err(why) => {
                draft.note(first.line, &first.source, why);
                return None;
            }
        };
        if starts.len() > 1 {
            if service_type != "oneshot" {
                draft.note(
                    starts[1].line,
                    &starts[1].source,
                    "more than one ExecStart (systemd allows it only for oneshot)",
                );
                return None;
            }
            // A oneshot's commands run one after the other; stop at a failure.
            let mut lines = vec![words.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" ")];
            for entry in &starts[1..] {
                match self.exec(entry) {
                    Ok(exec) => {
                        lines.push(exec.words.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" "))
                    }
                    Err(why) => {
                        draft.note(entry.line, &entry.source, why);
                        return None;
                    }
                }
            }
            words = vec!["sh".into(), "-c".into(), lines.join(" && ")];
        }
        match service_type {
            "simple" | "exec" => {}
            "notify" | "notify-reload" => draft.set("type", Yaml::str("notify")),
            "oneshot" => draft.set("type", Yaml::str("oneshot")),
            "forking" => {
                let entry = last("Type").expect("Type=forking was read");
                // nginx -g 'daemon on; …' has a foreground switch in the same place.
                if let Some(arg) = words.iter_mut().find(|w| w.contains("daemon on;")) {
                    *arg = arg.replace("daemon on;", "daemon off;");
                    draft.comments.push(
                        "Type=forking: the command's `daemon on;` was made `daemon off;` so that it stays in the foreground."
                            .into(),
                    );
                } else {
                    draft.note(
                        entry.line,
                        &entry.source,
                        "the command forks into the background and exits, which tend would take for the service ending: give it its foreground option",
                    );
                }
            }
            other => draft.note(
                last("Type").map_or(0, |e| e.line),
                last("Type").map_or("", |e| e.source.as_str()),
                format!("Type={other}: run as type simple"),
            ),
        }
        draft.set("command", Yaml::words(&words));
        let mut environment: Vec<(String, Yaml)> = Vec::new();
        let mut env_files: Vec<Yaml> = Vec::new();
        let mut rlimits: Vec<(String, Yaml)> = Vec::new();
        let mut bounding: Option<Vec<String>> = None;
        let mut ambient: Option<Vec<String>> = None;
        let mut paths: [(&str, Vec<Yaml>); 3] = [
            ("read_only_paths", Vec::new()),
            ("read_write_paths", Vec::new()),
            ("inaccessible_paths", Vec::new()),
        ];
        let mut pre_lines: Vec<&Entry> = Vec::new();
        let mut restart = "never";
        for entry in &section.entries {
            let value = entry.value.trim();
            let flag = || matches!(value, "yes" | "true" | "on" | "1");
            let note = |draft: &mut Draft, why: &str| draft.note(entry.line, &entry.source, why.to_owned());
            match entry.key.as_str() {
                "Type" | "ExecStart" => {}
                "ExecStartPre" => pre_lines.push(entry),
                "User" => draft.set("user", Yaml::str(value)),
                "Group" => draft.set("group", Yaml::str(value)),
                "SupplementaryGroups" => {
                    draft.set("supplementary_groups", Yaml::words(&value.split_whitespace().collect::<Vec<_>>()))
                }
                "WorkingDirectory" => {
                    let dir = value.trim_start_matches('-');
                    if dir.starts_with('/') {
                        draft.set("working_dir", Yaml::str(dir));
                    } else {
                        note(draft, "only an absolute WorkingDirectory is translated");
                    }
                }
                "Environment" if value.is_empty() => environment.clear(),
                "Environment" => match split_words(value) {
                    Ok(pairs) => {
                        for pair in pairs {
                            match pair.split_once('=') {
                                Some((k, v)) => {
                                    environment.retain(|(n, _)| n != k);
                                    environment.push((k.to_owned(), Yaml::str(v)));
                                }
                                None => note(draft, "an assignment without ="),
                            }
                        }
                    }
                    Err(why) => note(draft, &why),
                },
                "EnvironmentFile" if value.is_empty() => env_files.clear(),
                "EnvironmentFile" => {
                    let optional = value.starts_with('-');
                    let path = absolute(Path::new("/"), value.trim_start_matches('-'));
                    if path.is_file() {
                        env_files.push(Yaml::str(path.display().to_string()));
                    } else if optional {
                        note(draft, "optional, and missing on this machine: left out");
                    } else {
                        note(draft, "missing on this machine (tend reads env files when it loads the unit)");
                    }
                }
                "UMask" => draft.set("umask", Yaml::str(value)),
                "Nice" => match value.parse::<i64>() {
                    Ok(n) => draft.set("nice", Yaml::Int(n)),
                    Err(_) => note(draft, "Nice is a number"),
                },
                key if key.starts_with("Limit") => match rlimit(&key[5..], value) {
                    Ok((resource, limit)) => {
                        rlimits.retain(|(r, _)| *r != resource);
                        rlimits.push((resource, limit));
                    }
                    Err(why) => note(draft, &why),
                },
                "Restart" => {
                    restart = match value {
                        "no" => "never",
                        "always" => "always",
                        "on-failure" => "on-failure",
                        "on-abnormal" | "on-abort" | "on-watchdog" => {
                            note(draft, "tend's on-failure also restarts after an unclean exit status");
                            "on-failure"
                        }
                        _ => {
                            note(draft, "no tend equivalent (tend restarts always, on-failure or never)");
                            restart
                        }
                    }
                }
                "RestartSec" => match timespan(value) {
                    Ok(d) => draft.set("restart_delay", Yaml::Str(format_duration(d.unwrap_or_default()))),
                    Err(why) => note(draft, &why),
                },
                "TimeoutStartSec" | "TimeoutStopSec" | "TimeoutSec" => match timespan(value) {
                    Ok(Some(d)) => {
                        if entry.key != "TimeoutStopSec" && service_type.starts_with("notify") {
                            draft.set("start_timeout", Yaml::Str(format_duration(d)));
                        }
                        if entry.key != "TimeoutStartSec" {
                            draft.set("stop_timeout", Yaml::Str(format_duration(d)));
                        }
                    }
                    Ok(None) if entry.key == "TimeoutStartSec" => {}
                    Ok(None) => note(draft, "no stop time limit: tend always has one; set stop_timeout to as long as the service may need"),
                    Err(why) => note(draft, &why),
                },
                "KillSignal" => match parse_signal(value) {
                    Ok(_) => draft.set("stop_signal", Yaml::str(value)),
                    Err(why) => note(draft, &why),
                },
                "KillMode" if matches!(value, "control-group" | "mixed") => {}
                "WatchdogSec" => match (timespan(value), service_type.starts_with("notify")) {
                    (Ok(Some(d)), true) => draft.set("watchdog", Yaml::Str(format_duration(d))),
                    (Ok(None), _) => {}
                    _ => note(draft, "a watchdog needs Type=notify"),
                },
                "SuccessExitStatus" => {
                    let mut codes = vec![Yaml::Int(0)];
                    for word in value.split_whitespace() {
                        match word.parse::<i64>() {
                            Ok(n) if (0..=255).contains(&n) => codes.push(Yaml::Int(n)),
                            _ => note(draft, &format!("{word}: only exit statuses count as success in tend")),
                        }
                    }
                    draft.set("success_exit_codes", Yaml::List(codes));
                }
                "NoNewPrivileges" => draft.set_in("sandbox", "no_new_privileges", Yaml::Bool(flag())),
                "PrivateTmp" => draft.set_in("sandbox", "private_tmp", Yaml::Bool(flag())),
                "PrivateNetwork" => draft.set_in("sandbox", "private_network", Yaml::Bool(flag())),
                "PrivateIPC" => draft.set_in("sandbox", "private_ipc", Yaml::Bool(flag())),
                "ProtectSystem" => {
                    let list: &[&str] = match value {
                        "strict" => &["/"],
                        "full" => &["/usr", "/boot", "/efi", "/etc"],
                        "yes" | "true" => &["/usr", "/boot", "/efi"],
                        _ => &[],
                    };
                    let existing: Vec<&str> = list.iter().copied().filter(|p| Path::new(p).exists()).collect();
                    paths[0].1.retain(|p| !matches!(p, Yaml::Str(s) if ["/", "/usr", "/boot", "/efi", "/etc"].contains(&s.as_str())));
                    paths[0].1.extend(existing.iter().map(|p| Yaml::str(*p)));
                }
                "ProtectHome" => {
                    let home: Vec<Yaml> =
                        ["/home", "/root", "/run/user"].iter().filter(|p| Path::new(p).exists()).map(|p| Yaml::str(*p)).collect();
                    match value {
                        "yes" | "true" => paths[2].1.extend(home),
                        "read-only" => paths[0].1.extend(home),
                        "no" | "false" => {}
                        _ => note(draft, "ProtectHome=tmpfs: consider inaccessible_paths"),
                    }
                }
                "ReadOnlyPaths" | "ReadOnlyDirectories" | "ReadWritePaths" | "ReadWriteDirectories" | "InaccessiblePaths"
                | "InaccessibleDirectories" => {
                    let slot = if entry.key.starts_with("ReadOnly") {
                        0
                    } else if entry.key.starts_with("ReadWrite") {
                        1
                    } else {
                        2
                    };
                    if value.is_empty() {
                        paths[slot].1.clear();
                    }
                    for word in value.split_whitespace() {
                        let optional = word.starts_with('-');
                        let path = word.trim_start_matches(['-', '+']);
                        if Path::new(path).exists() {
                            paths[slot].1.push(Yaml::str(path));
                        } else if optional {
                            note(draft, &format!("{path}: optional, and missing on this machine: left out"));
                        } else {
                            note(draft, &format!("{path}: missing on this machine"));
                        }
                    }
                }
                "CapabilityBoundingSet" => bounding = Some(capability_set(bounding.take(), value)),
                "AmbientCapabilities" => ambient = Some(capability_set(ambient.take(), value)),
                "MemoryMax" | "MemoryLimit" => match value {
                    "infinity" => {}
                    v if v.ends_with('%') => note(draft, "a share of memory: write a size"),
                    v => match crate::unit::values::parse_size(v) {
                        Ok(_) => draft.set_in("resources", "memory_max", Yaml::str(v)),
                        Err(why) => note(draft, &why),
                    },
                },
                "TasksMax" => match value.parse::<i64>() {
                    Ok(n) if n >= 1 => draft.set_in("resources", "pids_max", Yaml::Int(n)),
                    _ if value == "infinity" => {}
                    _ => note(draft, "TasksMax as a number is translated"),
                },
                "CPUQuota" => match value.strip_suffix('%').and_then(|p| p.trim().parse::<f64>().ok()) {
                    Some(percent) if percent > 0.0 => draft.set_in("resources", "cpu_max", Yaml::Float(percent / 100.0)),
                    _ => note(draft, "CPUQuota is a percentage above 0"),
                },
                "CPUWeight" => match value.parse::<i64>() {
                    Ok(n) if (1..=10_000).contains(&n) => draft.set_in("resources", "cpu_weight", Yaml::Int(n)),
                    _ => note(draft, "CPUWeight from 1 to 10000 is translated"),
                },
                "NotifyAccess" if matches!(value, "main" | "all" | "exec") => {}
                "PIDFile" => note(draft, "tend follows the process itself: no PID file"),
                "ExecReload" => note(draft, "tend reload re-reads unit files; to signal the service, use tend signal (e.g. tend signal HUP NAME)"),
                "ExecStop" | "ExecStopPost" => note(draft, "tend stops a service with stop_signal, then SIGKILL after stop_timeout"),
                "RuntimeDirectory" | "StateDirectory" | "CacheDirectory" | "LogsDirectory" | "ConfigurationDirectory" => {
                    note(draft, "tend creates no directories: create it (owned by the service's user) before the service starts")
                }
                "StandardOutput" | "StandardError" | "SyslogIdentifier" => {
                    note(draft, "tend captures stdout and stderr itself (see log)")
                }
                _ => note(draft, "no tend equivalent"),
            }
        }
        draft.set("restart", Yaml::str(restart));
        if !environment.is_empty() {
            draft.set("environment", Yaml::Map(environment));
        }
        match env_files.len() {
            0 => {}
            1 => draft.set("env_file", env_files.remove(0)),
            _ => draft.set("env_file", Yaml::List(env_files)),
        }
        if !rlimits.is_empty() {
            draft.set("rlimits", Yaml::Map(rlimits));
        }
        // tend's capabilities: what a root service keeps (its bounding set),
        // or what a service of another user is given (its ambient set).
        if let Some(caps) = ambient.or(bounding) {
            draft.set_in("sandbox", "capabilities", Yaml::words(&caps));
        }
        for (key, list) in paths {
            if !list.is_empty() {
                draft.set_in("sandbox", key, Yaml::List(list));
            }
        }
        Some(self.pre_unit(draft, &pre_lines))
    }

    /// ExecStartPre lines → a oneshot `NAME-pre` run as the service would be.
    fn pre_unit(&self, draft: &mut Draft, lines: &[&Entry]) -> Option<Draft> {
        if lines.is_empty() {
            return None;
        }
        let mut commands = Vec::new();
        for entry in lines {
            match self.exec(entry) {
                Ok(exec) => {
                    let line = exec.words.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" ");
                    commands.push(if exec.ignore_failure { format!("{{ {line} || true; }}") } else { line });
                }
                Err(why) => {
                    draft.note(entry.line, &entry.source, why);
                    return None;
                }
            }
        }
        let mut pre = Draft::new(&format!("{}-pre", draft.name), &draft.file);
        pre.comments.push(format!(
            "ExecStartPre of {}, imported from {} by tend import systemd.",
            draft.name,
            draft.file.display()
        ));
        let command = if commands.len() == 1 && !lines[0].value.trim_start().starts_with('-') {
            match self.exec(lines[0]) {
                Ok(exec) => Yaml::words(&exec.words),
                Err(_) => unreachable!("parsed above"),
            }
        } else {
            Yaml::words(&["sh", "-c", &commands.join(" && ")])
        };
        pre.set("command", command);
        pre.set("type", Yaml::str("oneshot"));
        for key in
            ["working_dir", "environment", "env_file", "user", "group", "supplementary_groups", "umask"]
        {
            if let Some(value) = draft.get(key) {
                pre.entries.push((key, value.clone()));
            }
        }
        Some(pre)
    }
}

/// `CAP_A CAP_B`, `~CAP_C` (all but), empty (none) on top of `before`.
fn capability_set(before: Option<Vec<String>>, value: &str) -> Vec<String> {
    if value.is_empty() {
        return Vec::new();
    }
    let (invert, list) = match value.strip_prefix('~') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let named: Vec<String> =
        list.split_whitespace().map(|c| c.trim_start_matches("CAP_").to_ascii_uppercase()).collect();
    if invert {
        let all = before.unwrap_or_else(capability_names);
        all.into_iter().filter(|c| !named.contains(c)).collect()
    } else {
        let mut all = before.unwrap_or_default();
        for c in named {
            if !all.contains(&c) {
                all.push(c);
            }
        }
        all
    }
}

/// `LimitNOFILE=65535`, `=1024:4096`, `=infinity`, `LimitCPU=1h` → (resource, limit).
fn rlimit(name: &str, value: &str) -> Result<(String, Yaml), String> {
    let resource = name.to_ascii_lowercase();
    if crate::unit::Resource::from_name(&resource).is_none() {
        return Err(format!("tend has no limit {resource}"));
    }
    let one = |v: &str| -> Result<Yaml, String> {
        let v = v.trim();
        if v == "infinity" {
            return Ok(Yaml::str("unlimited"));
        }
        if resource == "cpu" {
            return match timespan(v)? {
                Some(d) => Ok(Yaml::Int(d.as_secs().max(1) as i64)),
                None => Ok(Yaml::Int(0)),
            };
        }
        if v.chars().all(|c| c.is_ascii_digit()) {
            return v.parse::<i64>().map(Yaml::Int).map_err(|_| format!("'{v}' is too large"));
        }
        crate::unit::values::parse_size(v).map(|_| Yaml::str(v))
    };
    let limit = match value.split_once(':') {
        Some((soft, hard)) => Yaml::Map(vec![("soft".into(), one(soft)?), ("hard".into(), one(hard)?)]),
        None => one(value)?,
    };
    Ok((resource, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spans() {
        assert_eq!(timespan("5").unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(timespan("1min 30s").unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(timespan("100ms").unwrap(), Some(Duration::from_millis(100)));
        assert_eq!(timespan("0").unwrap(), None);
        assert_eq!(timespan("infinity").unwrap(), None);
        assert!(timespan("5 fortnights").is_err());
    }

    #[test]
    fn capability_sets() {
        assert_eq!(capability_set(None, ""), Vec::<String>::new());
        assert_eq!(capability_set(None, "CAP_SETUID CAP_SETGID"), ["SETUID", "SETGID"]);
        let all_but = capability_set(None, "~CAP_SYS_ADMIN");
        assert_eq!(all_but.len(), capability_names().len() - 1);
        assert!(!all_but.contains(&"SYS_ADMIN".to_owned()));
    }

    #[test]
    fn limits() {
        assert_eq!(rlimit("NOFILE", "65535").unwrap(), ("nofile".into(), Yaml::Int(65535)));
        assert_eq!(
            rlimit("NOFILE", "1024:infinity").unwrap().1,
            Yaml::Map(vec![("soft".into(), Yaml::Int(1024)), ("hard".into(), Yaml::str("unlimited"))])
        );
        assert_eq!(rlimit("CPU", "1h").unwrap().1, Yaml::Int(3600));
        assert!(rlimit("RTTIME", "5").is_err());
    }

    #[test]
    fn exec_prefixes_and_specifiers() {
        let ctx = Ctx { unit: "web.service".into() };
        let entry = |v: &str| Entry { key: "ExecStart".into(), value: v.into(), line: 1, source: v.into() };
        let exec = ctx.exec(&entry("-/usr/bin/web --name %N --unit %n --pct 100%%")).unwrap();
        assert!(exec.ignore_failure);
        assert_eq!(exec.words, ["/usr/bin/web", "--name", "web", "--unit", "web.service", "--pct", "100%"]);
        assert!(ctx.exec(&entry("/usr/bin/web $OPTIONS")).is_err());
        assert!(ctx.exec(&entry("/usr/bin/web %i")).is_err());
    }
}
