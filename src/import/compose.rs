//! docker-compose.yml / compose.yaml → units, one per service that has a
//! command (or entrypoint): tend runs it on this host, so what only makes
//! sense for a container (image, build, ports, volumes, networks) is
//! reported, not guessed. Compose's own defaults are kept: no restart
//! unless `restart` says so, a 10s stop grace period, and healthchecks of
//! interval 30s, timeout 30s, 3 retries.
//!
//! `depends_on` conditions map to tend's: service_started → started,
//! service_healthy → ready (the dependency's healthcheck becomes its
//! ready_check as well as its health_check), service_completed_successfully
//! → completed (the dependency becomes a oneshot).
//!
//! Parsed with the loader's positioned YAML reader (serde-saphyr), so each
//! note names the line it is about.

use super::{absolute, command_line, unit_name, Dependency, Draft, Note, Translation, Yaml};
use crate::unit::node::{parse_yaml, Item, Node};
use crate::unit::values::{parse_duration, parse_size, split_words};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// compose's healthcheck defaults.
const HEALTH_INTERVAL: &str = "30s";
const HEALTH_TIMEOUT: &str = "30s";
const HEALTH_RETRIES: i64 = 3;

/// Service keys with no tend equivalent, and why.
const CONTAINER_ONLY: &[(&str, &str)] = &[
    ("image", "tend runs the command on this host: there is no image (install the program here)"),
    ("build", "tend runs the command on this host: there is nothing to build"),
    ("ports", "no port mapping: the service listens on this host's ports directly"),
    ("expose", "no port mapping: the service listens on this host's ports directly"),
    ("volumes", "no volumes: the service sees this host's files (see sandbox paths)"),
    ("networks", "no container networks: the service uses this host's network"),
    ("container_name", "the unit's name is the service's name"),
    ("labels", "no labels"),
    ("logging", "tend keeps each service's output (see log)"),
    ("cap_add", "list the capabilities the service may have in sandbox.capabilities"),
    ("cap_drop", "list the capabilities the service may have in sandbox.capabilities"),
    ("privileged", "no privileged mode"),
    ("read_only", "a container's root file system: consider sandbox.read_only_paths"),
    ("tmpfs", "consider sandbox.private_tmp"),
    ("init", "tend itself reaps orphans"),
    ("deploy", "swarm deployment settings (resources.limits and replicas are read)"),
    ("profiles", "tend up starts every unit"),
];

pub fn translate(file: &Path, text: &str) -> Result<Translation, Note> {
    let lines: Vec<&str> = text.lines().collect();
    let source = |line: usize| lines.get(line.wrapping_sub(1)).map_or("", |l| l.trim()).to_owned();
    let note = |item: &Item, why: &str| Note {
        file: file.to_owned(),
        line: item.pos.line,
        source: source(item.pos.line),
        why: why.to_owned(),
    };
    let root = parse_yaml(text).map_err(|e| Note {
        file: file.to_owned(),
        line: e.line,
        source: source(e.line),
        why: format!("not YAML: {}", e.message),
    })?;
    let Node::Map(top) = &root.node else {
        return Err(note(&root, "a compose file is a mapping with services"));
    };
    let mut out = Translation::default();
    let mut services: Vec<(String, &Item, &Item)> = Vec::new();
    for (key, value) in top {
        match key_name(key).as_deref() {
            Some("services") => match &value.node {
                Node::Map(entries) => {
                    for (name, service) in entries {
                        match key_name(name) {
                            Some(n) => services.push((n, name, service)),
                            None => out.notes.push(note(name, "a service name")),
                        }
                    }
                }
                _ => out.notes.push(note(value, "services is a mapping")),
            },
            // Obsolete or informational.
            Some("version") | Some("name") => {}
            Some(other) if other.starts_with("x-") => {}
            Some(other) => out.notes.push(note(key, &format!("top-level {other}: no tend equivalent"))),
            None => out.notes.push(note(key, "not a key")),
        }
    }
    // How others depend on each service decides its type and ready_check.
    let mut wanted: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for (_, _, service) in &services {
        for (name, condition, _) in depends_on(service) {
            wanted.entry(name).or_default().insert(condition);
        }
    }
    let ctx = Context { file, source: &source };
    for (name, name_item, service) in services {
        let conditions = wanted.get(&name).cloned().unwrap_or_default();
        match ctx.service(&name, name_item, service, &conditions) {
            Ok(draft) => out.drafts.push(draft),
            Err(skipped) => out.notes.push(skipped),
        }
    }
    Ok(out)
}

/// Double every `%` in the strings of `value` (lists and map values).
fn escape_percent(value: &mut Yaml) {
    match value {
        Yaml::Str(s) => *s = s.replace('%', "%%"),
        Yaml::List(items) => items.iter_mut().for_each(escape_percent),
        Yaml::Map(entries) => entries.iter_mut().for_each(|(_, v)| escape_percent(v)),
        Yaml::Int(_) | Yaml::Float(_) | Yaml::Bool(_) => {}
    }
}

fn key_name(item: &Item) -> Option<String> {
    match &item.node {
        Node::Str(s) => Some(s.clone()),
        Node::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A scalar as text, compose's `$$` (a literal `$`) unescaped.
fn scalar(item: &Item) -> Option<String> {
    match &item.node {
        Node::Str(s) => Some(s.replace("$$", "$")),
        Node::Int(i) => Some(i.to_string()),
        Node::Float(f) => Some(f.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether compose would substitute a variable in this value (a `$` that
/// is not part of `$$`).
fn interpolated(item: &Item) -> bool {
    match &item.node {
        Node::Str(s) => s.replace("$$", "").contains('$'),
        Node::Seq(items) => items.iter().any(interpolated),
        _ => false,
    }
}

fn entries(item: &Item) -> Vec<(String, &Item, &Item)> {
    match &item.node {
        Node::Map(entries) => entries.iter().filter_map(|(k, v)| key_name(k).map(|n| (n, k, v))).collect(),
        _ => Vec::new(),
    }
}

fn get<'a>(item: &'a Item, key: &str) -> Option<&'a Item> {
    entries(item).into_iter().find(|(n, _, _)| n == key).map(|(_, _, v)| v)
}

/// (dependency, tend condition, the item) of a service's depends_on.
fn depends_on(service: &Item) -> Vec<(String, &'static str, &Item)> {
    let Some(deps) = get(service, "depends_on") else { return Vec::new() };
    match &deps.node {
        Node::Seq(items) => items.iter().filter_map(|i| scalar(i).map(|n| (n, "started", i))).collect(),
        Node::Map(_) => entries(deps)
            .into_iter()
            .map(|(name, key, spec)| {
                let condition = get(spec, "condition").and_then(scalar);
                let tend = match condition.as_deref() {
                    Some("service_healthy") => "ready",
                    Some("service_completed_successfully") => "completed",
                    _ => "started",
                };
                (name, tend, key)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A compose duration (Go's: `1m30s`, `500ms`, `1.5s`, `10us`, `10µs`) as tend's.
fn duration(text: &str) -> Option<String> {
    let text = text.trim().replace('µ', "u");
    parse_duration(&text).ok().map(crate::unit::values::format_duration)
}

struct Context<'a> {
    file: &'a Path,
    source: &'a dyn Fn(usize) -> String,
}

impl Context<'_> {
    fn note(&self, draft: &mut Draft, item: &Item, why: impl Into<String>) {
        draft.note(item.pos.line, &(self.source)(item.pos.line), why);
    }

    fn service(
        &self,
        name: &str,
        name_item: &Item,
        service: &Item,
        wanted: &BTreeSet<&'static str>,
    ) -> Result<Draft, Note> {
        let unit = unit_name(name);
        let mut draft = Draft::new(&unit, self.file);
        draft
            .comments
            .push(format!("Imported from {} service {name} by tend import compose.", self.file.display()));
        let skip = |why: String| Note {
            file: self.file.to_owned(),
            line: name_item.pos.line,
            source: (self.source)(name_item.pos.line),
            why,
        };
        // entrypoint + command; a string is split like compose splits it (no shell).
        let words = |item: &Item| -> Result<Vec<String>, String> {
            match &item.node {
                Node::Str(s) => split_words(s),
                Node::Seq(items) => {
                    items.iter().map(|i| scalar(i).ok_or("a list of strings".to_owned())).collect()
                }
                _ => Err("a string or a list".into()),
            }
        };
        let entrypoint = get(service, "entrypoint").map(words).transpose();
        let command = get(service, "command").map(words).transpose();
        let argv = match (entrypoint, command) {
            (Ok(e), Ok(c)) => [e.unwrap_or_default(), c.unwrap_or_default()].concat(),
            (Err(why), _) | (_, Err(why)) => {
                return Err(skip(format!("{name}: its command is not understood: {why}")))
            }
        };
        if argv.is_empty() {
            return Err(skip(format!(
                "{name}: no command or entrypoint; the image's own command is not known to tend, so no unit is written"
            )));
        }
        for at in [get(service, "entrypoint"), get(service, "command")].into_iter().flatten() {
            if interpolated(at) {
                self.note(
                    &mut draft,
                    at,
                    "compose substitutes ${VARIABLES}; tend passes the text as written",
                );
            }
        }
        draft.set("command", Yaml::words(&argv));
        if wanted.contains("completed") {
            draft.set("type", Yaml::str("oneshot"));
        }
        for (key, key_item, value) in entries(service) {
            self.key(&mut draft, &key, key_item, value, wanted);
        }
        if draft.get("restart").is_none() {
            // compose's default is not to restart.
            draft.set("restart", Yaml::str("never"));
        }
        if draft.get("instances").is_some() {
            // In a pool `%` starts a specifier (`%i`), and any other one is
            // an error: compose's text is literal, so every `%` is doubled
            // where tend expands them (`date +%s` → `date +%%s`).
            for (key, value) in &mut draft.entries {
                if matches!(*key, "command" | "environment" | "working_dir") {
                    escape_percent(value);
                }
            }
        }
        for (dep, condition, item) in depends_on(service) {
            draft.deps.push(Dependency {
                name: unit_name(&dep),
                condition,
                line: item.pos.line,
                source: (self.source)(item.pos.line),
            });
        }
        Ok(draft)
    }

    fn key(
        &self,
        draft: &mut Draft,
        key: &str,
        key_item: &Item,
        value: &Item,
        wanted: &BTreeSet<&'static str>,
    ) {
        let text = scalar(value);
        match key {
            "command" | "entrypoint" | "depends_on" => {}
            "environment" => self.environment(draft, value),
            "env_file" => self.env_file(draft, value),
            "working_dir" => match text {
                Some(dir) => draft.set("working_dir", Yaml::str(dir)),
                None => self.note(draft, value, "working_dir is a path"),
            },
            "user" => match text.as_deref().map(|u| u.split_once(':').unwrap_or((u, ""))) {
                Some((user, group)) => {
                    draft.set("user", Yaml::str(user));
                    if !group.is_empty() {
                        draft.set("group", Yaml::str(group));
                    }
                }
                None => self.note(draft, value, "user is a name or uid[:gid]"),
            },
            "restart" => {
                let policy = match text.as_deref() {
                    Some("no") | Some("false") => Some("never"),
                    Some("always") | Some("unless-stopped") => Some("always"),
                    Some(p) if p.starts_with("on-failure") => Some("on-failure"),
                    _ => None,
                };
                match policy {
                    Some(policy) => draft.set("restart", Yaml::str(policy)),
                    None => self.note(draft, value, "restart is no, always, on-failure or unless-stopped"),
                }
                if text.as_deref().is_some_and(|p| p.starts_with("on-failure:")) {
                    self.note(
                        draft,
                        value,
                        "a maximum number of restarts: tend's start_limit counts failures within an interval",
                    );
                }
            }
            "stop_signal" => match text {
                Some(signal) if crate::unit::values::parse_signal(&signal).is_ok() => {
                    draft.set("stop_signal", Yaml::str(signal))
                }
                _ => self.note(draft, value, "not a signal"),
            },
            "stop_grace_period" => match text.as_deref().and_then(duration) {
                Some(d) => draft.set("stop_timeout", Yaml::Str(d)),
                None => self.note(draft, value, "not a duration"),
            },
            "healthcheck" => self.healthcheck(draft, value, wanted),
            "ulimits" => {
                for (resource, item, limit) in entries(value) {
                    let limit = match &limit.node {
                        Node::Map(_) => {
                            match (get(limit, "soft").and_then(scalar), get(limit, "hard").and_then(scalar)) {
                                (Some(s), Some(h)) => Yaml::Map(vec![
                                    ("soft".into(), Yaml::Str(s)),
                                    ("hard".into(), Yaml::Str(h)),
                                ]),
                                _ => {
                                    self.note(draft, item, "a limit is a number or {soft, hard}");
                                    continue;
                                }
                            }
                        }
                        _ => match scalar(limit) {
                            Some(n) => Yaml::Str(n),
                            None => continue,
                        },
                    };
                    if crate::unit::Resource::from_name(&resource).is_some() {
                        let mut all = match draft.get("rlimits") {
                            Some(Yaml::Map(m)) => m.clone(),
                            _ => Vec::new(),
                        };
                        all.push((resource, limit));
                        draft.set("rlimits", Yaml::Map(all));
                    } else {
                        self.note(draft, item, format!("no resource limit called {resource} in tend"));
                    }
                }
            }
            "hostname" => match text {
                Some(host) => draft.set_in("sandbox", "hostname", Yaml::str(host)),
                None => self.note(draft, value, "not a host name"),
            },
            "network_mode" if text.as_deref() == Some("none") => {
                draft.set_in("sandbox", "private_network", Yaml::Bool(true))
            }
            "network_mode" if text.as_deref() == Some("host") => {}
            "mem_limit" => self.size(draft, value, "memory_max"),
            "pids_limit" => match &value.node {
                Node::Int(n) if *n > 0 => draft.set_in("resources", "pids_max", Yaml::Int(*n as i64)),
                _ => self.note(
                    draft,
                    value,
                    "pids_limit is a positive number (-1, no limit, is tend's default)",
                ),
            },
            "cpus" => match text.as_deref().and_then(|t| t.parse::<f64>().ok()) {
                Some(cores) if cores > 0.0 => draft.set_in("resources", "cpu_max", Yaml::Float(cores)),
                _ => self.note(draft, value, "cpus is a number above 0"),
            },
            // compose's replicas are tend's instances (`%i` and
            // TEND_INSTANCE tell them apart); none is `enabled: false`.
            "scale" => self.replicas(draft, value),
            "deploy" => {
                if let Some(replicas) = get(value, "replicas") {
                    self.replicas(draft, replicas);
                }
                let limits = get(value, "resources").and_then(|r| get(r, "limits"));
                if let Some(limits) = limits {
                    if let Some(memory) = get(limits, "memory") {
                        self.size(draft, memory, "memory_max");
                    }
                    if let Some(cpus) =
                        get(limits, "cpus").and_then(scalar).and_then(|c| c.parse::<f64>().ok())
                    {
                        draft.set_in("resources", "cpu_max", Yaml::Float(cpus));
                    }
                    if let Some(Node::Int(n)) = get(limits, "pids").map(|p| &p.node) {
                        draft.set_in("resources", "pids_max", Yaml::Int(*n as i64));
                    }
                }
                let others: Vec<_> = entries(value)
                    .into_iter()
                    .filter(|(k, _, _)| k != "resources" && k != "replicas")
                    .collect();
                if !others.is_empty() {
                    self.note(
                        draft,
                        key_item,
                        "swarm deployment settings other than resources.limits and replicas",
                    );
                }
            }
            _ => {
                let why = CONTAINER_ONLY
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or("no tend equivalent", |(_, why)| why);
                self.note(draft, key_item, why);
            }
        }
    }

    /// `scale: N`, `deploy.replicas: N`: N instances of the unit.
    fn replicas(&self, draft: &mut Draft, value: &Item) {
        let max = i64::from(tend_core::pool::MAX_INSTANCES);
        match value.node {
            Node::Int(0) => draft.set("enabled", Yaml::Bool(false)),
            Node::Int(1) => {}
            Node::Int(n) if (2..=i128::from(max)).contains(&n) => draft.set("instances", Yaml::Int(n as i64)),
            _ => self.note(draft, value, format!("replicas: a number from 0 to {max}")),
        }
    }

    fn size(&self, draft: &mut Draft, value: &Item, key: &str) {
        match scalar(value).filter(|t| parse_size(t).is_ok()) {
            Some(size) => draft.set_in("resources", key, Yaml::Str(size)),
            None => self.note(draft, value, "not a size"),
        }
    }

    fn environment(&self, draft: &mut Draft, value: &Item) {
        let mut vars: Vec<(String, Yaml)> = Vec::new();
        let mut add = |draft: &mut Draft, name: String, val: Option<String>, at: &Item| match val {
            Some(v) => {
                if interpolated(at) {
                    self.note(draft, at, "compose substitutes ${VARIABLES}; tend passes the text as written");
                }
                vars.push((name, Yaml::Str(v)));
            }
            None => self.note(
                draft,
                at,
                format!("{name} without a value takes it from compose's own environment; set it here"),
            ),
        };
        match &value.node {
            Node::Map(_) => {
                for (name, _, v) in entries(value) {
                    let val = match &v.node {
                        Node::Null => None,
                        _ => scalar(v),
                    };
                    add(draft, name, val, v);
                }
            }
            Node::Seq(items) => {
                for item in items {
                    let Some(pair) = scalar(item) else { continue };
                    match pair.split_once('=') {
                        Some((k, v)) => add(draft, k.to_owned(), Some(v.to_owned()), item),
                        None => add(draft, pair, None, item),
                    }
                }
            }
            _ => self.note(draft, value, "environment is a mapping or a list"),
        }
        if !vars.is_empty() {
            draft.set("environment", Yaml::Map(vars));
        }
    }

    fn env_file(&self, draft: &mut Draft, value: &Item) {
        let items: Vec<&Item> = match &value.node {
            Node::Seq(items) => items.iter().collect(),
            _ => vec![value],
        };
        let mut files = Vec::new();
        for item in items {
            let (path, required) = match &item.node {
                Node::Map(_) => (
                    get(item, "path").and_then(scalar),
                    get(item, "required").map(|r| r.node != Node::Bool(false)).unwrap_or(true),
                ),
                _ => (scalar(item), true),
            };
            let Some(path) = path else { continue };
            let path = absolute(self.file, &path);
            if path.is_file() {
                files.push(Yaml::str(path.display().to_string()));
            } else if required {
                self.note(
                    draft,
                    item,
                    format!(
                        "{} does not exist (tend reads env files when it loads the unit)",
                        path.display()
                    ),
                );
            }
        }
        match files.len() {
            0 => {}
            1 => draft.set("env_file", files.remove(0)),
            _ => draft.set("env_file", Yaml::List(files)),
        }
    }

    fn healthcheck(&self, draft: &mut Draft, value: &Item, wanted: &BTreeSet<&'static str>) {
        if get(value, "disable").is_some_and(|d| d.node == Node::Bool(true)) {
            return;
        }
        let Some(test) = get(value, "test") else { return };
        let exec = match &test.node {
            Node::Str(line) => Some(command_line(&line.replace("$$", "$"))),
            Node::Seq(items) => {
                let words: Vec<String> = items.iter().filter_map(scalar).collect();
                match words.split_first() {
                    Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(Yaml::words(rest)),
                    Some((kind, [line])) if kind == "CMD-SHELL" => Some(command_line(line)),
                    Some((kind, _)) if kind == "NONE" => return,
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(exec) = exec else {
            self.note(draft, test, "test is [CMD, …], [CMD-SHELL, line] or a line");
            return;
        };
        let time = |key: &str, default: &str| -> Yaml {
            match get(value, key).and_then(scalar) {
                Some(text) => match duration(&text) {
                    Some(d) if d != "0s" => Yaml::Str(d),
                    _ => Yaml::str(default),
                },
                None => Yaml::str(default),
            }
        };
        let interval = time("interval", HEALTH_INTERVAL);
        let timeout = time("timeout", HEALTH_TIMEOUT);
        let retries = match get(value, "retries").map(|r| &r.node) {
            Some(Node::Int(n)) if *n >= 1 => *n as i64,
            _ => HEALTH_RETRIES,
        };
        if get(value, "start_period").is_some() {
            self.note(
                draft,
                get(value, "start_period").expect("just seen"),
                "tend checks health only once the service is ready (with a ready_check, after it passed)",
            );
        }
        draft.set(
            "health_check",
            Yaml::Map(vec![
                ("exec".into(), exec.clone()),
                ("interval".into(), interval.clone()),
                ("timeout".into(), timeout.clone()),
                ("retries".into(), Yaml::Int(retries)),
            ]),
        );
        // Someone waits for it to be healthy: the first success makes it ready.
        if wanted.contains("ready") && draft.get("type").is_none() {
            let ready_interval =
                match get(value, "start_interval").and_then(scalar).and_then(|t| duration(&t)) {
                    Some(d) => Yaml::Str(d),
                    None => interval,
                };
            draft.set(
                "ready_check",
                Yaml::Map(vec![
                    ("exec".into(), exec),
                    ("interval".into(), ready_interval),
                    ("timeout".into(), timeout),
                ]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// compose's replicas are instances; none is `enabled: false`.
    #[test]
    fn replicas_are_instances() {
        let text = "services:\n  worker:\n    command: work\n    deploy: {replicas: 4}\n  batch:\n    command: run\n    scale: 3\n  spare:\n    command: idle\n    scale: 0\n  one:\n    command: x\n    scale: 1\n";
        let out = translate(Path::new("c.yml"), text).unwrap();
        let get =
            |name: &str, key: &str| out.drafts.iter().find(|d| d.name == name).unwrap().get(key).cloned();
        assert_eq!(get("worker", "instances"), Some(Yaml::Int(4)));
        assert_eq!(get("batch", "instances"), Some(Yaml::Int(3)));
        assert_eq!(get("spare", "enabled"), Some(Yaml::Bool(false)));
        assert_eq!((get("one", "instances"), get("one", "enabled")), (None, None));
        assert!(out.notes.is_empty() && out.drafts.iter().all(|d| d.notes.is_empty()), "{:?}", out.notes);
    }

    /// compose's text is literal: in a pool, where `%` starts a specifier,
    /// each `%` is doubled; outside a pool it is kept as written.
    #[test]
    fn a_percent_in_a_pool_is_escaped() {
        let text = "services:\n  worker:\n    command: date +%s\n    working_dir: /srv/100%\n    environment: {FMT: \"%d\"}\n    scale: 2\n  one:\n    command: date +%s\n";
        let out = translate(Path::new("c.yml"), text).unwrap();
        let get =
            |name: &str, key: &str| out.drafts.iter().find(|d| d.name == name).unwrap().get(key).cloned();
        assert_eq!(get("worker", "command"), Some(Yaml::words(&["date", "+%%s"])));
        assert_eq!(get("worker", "working_dir"), Some(Yaml::str("/srv/100%%")));
        assert_eq!(get("worker", "environment"), Some(Yaml::Map(vec![("FMT".into(), Yaml::str("%%d"))])));
        assert_eq!(get("one", "command"), Some(Yaml::words(&["date", "+%s"])));
    }

    #[test]
    fn go_durations() {
        assert_eq!(duration("1m30s").as_deref(), Some("1m30s"));
        assert_eq!(duration("1500ms").as_deref(), Some("1.5s"));
        assert_eq!(duration("10µs").as_deref(), Some("10us"));
        assert_eq!(duration("soon"), None);
    }

    #[test]
    fn a_service_without_a_command_is_reported_not_written() {
        let out = translate(Path::new("c.yml"), "services:\n  cache:\n    image: redis:7\n").unwrap();
        assert!(out.drafts.is_empty());
        assert_eq!(out.notes.len(), 1);
        assert_eq!((out.notes[0].line, out.notes[0].source.as_str()), (2, "cache:"));
    }

    #[test]
    fn conditions_shape_the_dependencies() {
        let text = "services:\n  db:\n    command: postgres\n    healthcheck:\n      test: [CMD, pg_isready]\n  migrate:\n    command: [rake, db:migrate]\n    depends_on:\n      db: {condition: service_healthy}\n  web:\n    command: puma\n    depends_on:\n      db: {condition: service_healthy}\n      migrate: {condition: service_completed_successfully}\n";
        let out = translate(Path::new("c.yml"), text).unwrap();
        let db = &out.drafts[0];
        assert!(db.get("ready_check").is_some() && db.get("health_check").is_some());
        assert_eq!(out.drafts[1].get("type"), Some(&Yaml::str("oneshot")));
        let conditions: Vec<_> = out.drafts[2].deps.iter().map(|d| (d.name.as_str(), d.condition)).collect();
        assert_eq!(conditions, [("db", "ready"), ("migrate", "completed")]);
        assert_eq!(out.drafts[2].get("restart"), Some(&Yaml::str("never")));
    }
}
