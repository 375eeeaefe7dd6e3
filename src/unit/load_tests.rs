//! Tests of the loader: every key, every error class, exact positions and
//! messages, `load_dir` over real folders, and a never-panics property.

use super::*;
use crate::unit::{
    Check, CheckSpec, Dependency, DependencyCondition, FilesystemBackend, Identity, Resource, ResourcesSpec,
    RestartPolicy, Rlimit, SandboxSpec, ServiceType, StartLimit, UserDb, UserEntry,
};
use proptest::prelude::*;
use std::fs;
use std::time::Duration;

/// A user database from a table, so tests do not depend on the host's.
pub(crate) struct FakeUsers {
    users: Vec<UserEntry>,
    groups: Vec<(&'static str, u32, Vec<&'static str>)>,
    current: (u32, u32),
}

impl FakeUsers {
    pub(crate) fn new() -> FakeUsers {
        let user =
            |name: &str, uid, gid| UserEntry { name: name.into(), uid, gid, home: format!("/home/{name}") };
        FakeUsers {
            users: vec![
                user("root", 0, 0),
                user("www", 33, 33),
                user("nginx", 101, 101),
                user("nobody", 65534, 65534),
            ],
            groups: vec![
                ("root", 0, vec![]),
                ("nogroup", 65534, vec![]),
                ("www", 33, vec![]),
                ("nginx", 101, vec![]),
                ("adm", 4, vec!["nginx"]),
                ("ssl", 110, vec!["nginx", "www"]),
            ],
            current: (1000, 1000),
        }
    }
}

impl UserDb for FakeUsers {
    fn user_by_name(&self, name: &str) -> Option<UserEntry> {
        self.users.iter().find(|u| u.name == name).cloned()
    }
    fn user_by_uid(&self, uid: u32) -> Option<UserEntry> {
        self.users.iter().find(|u| u.uid == uid).cloned()
    }
    fn group_by_name(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|g| g.0 == name).map(|g| g.1)
    }
    fn groups_of(&self, user: &UserEntry) -> Vec<u32> {
        let mut gids = vec![user.gid];
        for (_, gid, members) in &self.groups {
            if members.contains(&user.name.as_str()) && *gid != user.gid {
                gids.push(*gid);
            }
        }
        gids
    }
    fn current_ids(&self) -> (u32, u32) {
        self.current
    }
}

fn parse(text: &str) -> Result<UnitSpec, Vec<Diagnostic>> {
    parse_unit(Path::new("web.yaml"), text, &FakeUsers::new())
}

fn ok(text: &str) -> UnitSpec {
    match parse(text) {
        Ok(spec) => spec,
        Err(errors) => panic!("unexpected errors: {}", render(&errors)),
    }
}

fn render(errors: &[Diagnostic]) -> String {
    errors
        .iter()
        .map(|d| {
            let mut s = d.to_string();
            if let Some(at) = s.find("\n  hint:") {
                s.truncate(at);
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every diagnostic as `file:line:col: message` (hints left out), one a line.
fn errors(text: &str) -> String {
    match parse(text) {
        Ok(spec) => panic!("expected errors, got {spec:?}"),
        Err(errors) => render(&errors),
    }
}

#[test]
fn minimal_unit_gets_the_defaults() {
    let spec = ok("command: [nginx, -g, 'daemon off;']\n");
    assert_eq!(
        spec,
        UnitSpec {
            name: "web".into(),
            file: PathBuf::from("web.yaml"),
            description: None,
            instances: None,
            instance: None,
            enabled: true,
            instance_env: vec![],
            command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            command_at: Default::default(),
            working_dir: None,
            environment: vec![],
            clear_env: false,
            identity: None,
            umask: None,
            nice: None,
            rlimits: vec![],
            process_group: true,
            restart: RestartPolicy::OnFailure,
            success_exit_codes: vec![0],
            restart_delay: Duration::from_millis(100),
            restart_delay_max: Duration::from_secs(30),
            start_limit: StartLimit { burst: 5, interval: Duration::from_secs(60) },
            stop_signal: 15,
            stop_timeout: Duration::from_secs(10),
            critical: false,
            log: Default::default(),
            service_type: Default::default(),
            depends_on: vec![],
            ready_check: None,
            start_timeout: None,
            health_check: None,
            watchdog: None,
            notify_fd: None,
            timeout: None,
            sandbox: Default::default(),
            resources: Default::default(),
            stdin: crate::unit::Stdin::Null,
            stdout_to: None,
            stderr_to: None,
            runtime_max: None,
        }
    );
}

#[test]
fn every_key_set() {
    let spec = ok(r#"
description: the web server
command: nginx -g "daemon off;"
working_dir: /srv/www
environment:
  PORT: 8080
  DEBUG: false
  RATIO: 1.50
  NAME: web
clear_env: true
user: nginx
group: www
supplementary_groups: [adm, 110]
umask: "0027"
nice: -5
rlimits:
  nofile: 4096
  core: unlimited
  memlock: {soft: 64M, hard: 1G}
  nproc: {soft: 10, hard: infinity}
process_group: false
restart: always
success_exit_codes: [0, 143]
restart_delay: 250ms
restart_delay_max: 1m30s
start_limit: {burst: 3, interval: 2m}
stop_signal: SIGQUIT
stop_timeout: 1.5s
critical: true
"#);
    assert_eq!(spec.description.as_deref(), Some("the web server"));
    assert_eq!(spec.command, ["nginx", "-g", "daemon off;"]);
    assert_eq!(spec.working_dir, Some(PathBuf::from("/srv/www")));
    let env: Vec<(&str, &str)> = spec.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env, [("PORT", "8080"), ("DEBUG", "false"), ("RATIO", "1.50"), ("NAME", "web")]);
    assert!(spec.clear_env);
    assert_eq!(
        spec.identity.as_deref(),
        Some(&Identity {
            uid: 101,
            gid: 33,
            groups: vec![4, 110],
            user: FakeUsers::new().user_by_name("nginx"),
        })
    );
    assert_eq!(spec.umask, Some(0o027));
    assert_eq!(spec.nice, Some(-5));
    assert_eq!(
        spec.rlimits,
        [
            Rlimit { resource: Resource::Nofile, soft: 4096, hard: 4096 },
            Rlimit { resource: Resource::Core, soft: RLIM_UNLIMITED, hard: RLIM_UNLIMITED },
            Rlimit { resource: Resource::Memlock, soft: 64 << 20, hard: 1 << 30 },
            Rlimit { resource: Resource::Nproc, soft: 10, hard: RLIM_UNLIMITED },
        ]
    );
    assert!(!spec.process_group);
    assert_eq!(spec.restart, RestartPolicy::Always);
    assert_eq!(spec.success_exit_codes, [0, 143]);
    assert_eq!(spec.restart_delay, Duration::from_millis(250));
    assert_eq!(spec.restart_delay_max, Duration::from_secs(90));
    assert_eq!(spec.start_limit, StartLimit { burst: 3, interval: Duration::from_secs(120) });
    assert_eq!(spec.stop_signal, 3);
    assert_eq!(spec.stop_timeout, Duration::from_millis(1500));
    assert!(spec.critical);
}

#[test]
fn unknown_key_with_suggestion() {
    assert_eq!(
        errors("command: [x]\nenviroment:\n  A: 1\n"),
        "web.yaml:2:1: unknown key 'enviroment' (did you mean 'environment'?)"
    );
    assert_eq!(errors("command: [x]\nbanana: 1\n"), "web.yaml:2:1: unknown key 'banana'");
}

#[test]
fn all_errors_of_a_file_are_reported() {
    let text = "\
restart: sometimes
stop_timeout: 10
enviroment: {}
critical: yes
nice: 40
user: ngnix
stop_signal: SIGTREM
";
    assert_eq!(
        errors(text),
        "\
web.yaml:1:1: missing required key 'command'
web.yaml:1:10: restart: expected one of always, on-failure, never, got 'sometimes'
web.yaml:2:15: stop_timeout: invalid duration '10': missing unit (write 10s)
web.yaml:3:1: unknown key 'enviroment' (did you mean 'environment'?)
web.yaml:4:11: critical: expected true or false, got 'yes'
web.yaml:5:7: nice: expected an integer from -20 to 19, got '40'
web.yaml:6:7: user: no such user 'ngnix'
web.yaml:7:14: stop_signal: unknown signal 'SIGTREM' (did you mean 'SIGTERM'?)"
    );
}

#[test]
fn missing_command_has_a_hint() {
    let errors = parse("description: x\n").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].column), (1, 1));
    assert_eq!(errors[0].message, "missing required key 'command'");
    assert!(errors[0].hint.as_deref().unwrap().contains("command: ["));
}

#[test]
fn yaml_syntax_errors() {
    assert_eq!(errors("command: [a, b\n"), "web.yaml:1:10: invalid YAML: unclosed bracket '['");
    assert_eq!(errors("command: 'a\n"), "web.yaml:1:10: invalid YAML: unclosed quote");
    assert!(errors("a: b: c\n").starts_with("web.yaml:1:5: invalid YAML: "));
    assert!(errors("command: x\n---\ncommand: y\n").starts_with("web.yaml:3:1: invalid YAML: "));
    assert!(errors("command: *nothing\n").starts_with("web.yaml:1:10: invalid YAML: "));
}

#[test]
fn duplicate_keys_are_rejected() {
    assert_eq!(
        errors("command: [a]\nnice: 1\ncommand: [b]\nenvironment: {A: 1, A: 2}\n"),
        "\
web.yaml:3:1: duplicate key 'command' (first set on line 1)
web.yaml:4:21: duplicate key 'A' (first set on line 4)"
    );
}

#[test]
fn empty_and_non_mapping_files() {
    assert_eq!(errors(""), "web.yaml:1:1: file is empty");
    assert_eq!(errors("# only a comment\n"), "web.yaml:2:1: file is empty");
    assert_eq!(errors("- command\n"), "web.yaml:1:1: expected a mapping of keys to values, got a list");
    assert_eq!(errors("hello\n"), "web.yaml:1:1: expected a mapping of keys to values, got 'hello'");
}

#[test]
fn unit_names() {
    let users = FakeUsers::new();
    for good in ["web", "0x", "a_b.c-d"] {
        let file = PathBuf::from(format!("/u/{good}.yaml"));
        assert!(parse_unit(&file, "command: x\n", &users).is_ok(), "{good}");
    }
    for bad in ["Web", "_x", "-x", "a b", "é", ".x"] {
        let file = PathBuf::from(format!("/u/{bad}.yaml"));
        let errors = parse_unit(&file, "command: x\n", &users).unwrap_err();
        assert!(errors[0].message.starts_with(&format!("invalid unit name '{bad}'")), "{bad}: {errors:?}");
    }
    let errors = parse_unit(Path::new("Web.yaml"), "command: x\n", &users).unwrap_err();
    assert_eq!(errors[0].hint.as_deref(), Some("rename the file, e.g. to web.yaml"));
    // `@` is kept for instances: `getty@tty1` is instance tty1 of `getty`.
    let errors = parse_unit(Path::new("/u/getty@tty1.yaml"), "command: x\n", &users).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].message,
        "invalid unit name 'getty@tty1': '@' is kept for instances (getty@tty1 would be instance 'tty1' of a unit 'getty')"
    );
    assert_eq!(
        errors[0].hint.as_deref(),
        Some("name the file getty.yaml and list the instance in it: `instances: [tty1]`")
    );
}

/// `worker@.yaml` is a systemd template: the error points to `instances:`,
/// tend's way to run instances of one unit.
#[test]
fn a_template_name_is_an_error_that_says_so() {
    let users = FakeUsers::new();
    let errors = parse_unit(Path::new("/u/worker@.yaml"), "command: [work, '%i']\n", &users).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.starts_with("'worker@' looks like a template unit"), "{errors:?}");
    assert!(errors[0].message.contains("with `instances:`"), "{errors:?}");
    assert_eq!(
        errors[0].hint.as_deref(),
        Some("name the file worker.yaml and add `instances: 4` (or a list of names: `instances: [eu, us]`); %i in command, environment, working_dir and log.file is the instance name")
    );
}

fn instances_of(yaml: &str) -> Vec<UnitSpec> {
    let unit = parse_unit(Path::new("/u/worker.yaml"), yaml, &FakeUsers::new())
        .unwrap_or_else(|e| panic!("{}", render(&e)));
    crate::unit::services(&unit)
}

/// `instances: N` makes N services `NAME@1` …, each with `%i` replaced
/// where the unit wrote it (command, `environment`, working_dir, log.file),
/// `%%` as a literal `%`, and TEND_INSTANCE set.
#[test]
fn instances_expand_into_services_with_their_specifiers_replaced() {
    let services = instances_of(
        "command: [work, --id, '%i', '100%%']\ninstances: 3\nworking_dir: data/%i\nenvironment: {SHARD: 's-%i', TEND_INSTANCE: x}\nlog: {file: 'logs/w-%i.log'}\n",
    );
    assert_eq!(services.len(), 3);
    let two = &services[1];
    assert_eq!(two.name, "worker@2");
    assert_eq!(two.instance.as_deref(), Some("2"));
    assert_eq!(two.command, ["work", "--id", "2", "100%"]);
    assert_eq!(two.working_dir.as_deref(), Some(Path::new("/u/data/2")));
    assert_eq!(two.log.file.as_deref(), Some(Path::new("/u/logs/w-2.log")));
    assert_eq!(
        two.environment,
        [("SHARD".to_string(), "s-2".to_string()), ("TEND_INSTANCE".to_string(), "2".to_string())],
        "TEND_INSTANCE is always the instance's name"
    );
    assert!(two.instances.is_none() && two.instance_env.is_empty(), "unit-level keys stay with the unit");
    let named = instances_of("command: [work, '%i']\ninstances: [eu, us-east.1]\n");
    let names: Vec<&str> = named.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["worker@eu", "worker@us-east.1"]);
    assert_eq!(named[1].command, ["work", "us-east.1"]);
}

/// An env_file's values are taken as they are (a password may hold `%`);
/// a unit without `instances` keeps every `%` as written.
#[test]
fn env_files_and_units_without_instances_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("w.env"), "PASSWORD=50%off%i\n").unwrap();
    let file = dir.path().join("worker.yaml");
    let unit = parse_unit(&file, "command: [w]\ninstances: 2\nenv_file: w.env\n", &FakeUsers::new()).unwrap();
    let services = crate::unit::services(&unit);
    assert_eq!(services[0].environment[0], ("PASSWORD".to_string(), "50%off%i".to_string()));
    let plain = ok("command: [date, +%s]\nenvironment: {A: '%i'}\n");
    assert_eq!(plain.command, ["date", "+%s"]);
    assert_eq!(crate::unit::services(&plain)[0].environment, [("A".to_string(), "%i".to_string())]);
}

#[test]
fn instance_errors() {
    let e = |yaml: &str| render(&parse_unit(Path::new("worker.yaml"), yaml, &FakeUsers::new()).unwrap_err());
    assert_eq!(
        e("command: [date, +%s]\ninstances: 2\n"),
        "worker.yaml:1:17: command: unknown specifier '%s': only %i (the instance name) and %% (a literal %) are replaced"
    );
    assert!(e("command: [w]\ninstances: 2\nenvironment: {A: '5%'}\n")
        .starts_with("worker.yaml:3:18: environment: A: a lone '%'"));
    assert_eq!(
        e("command: [w]\ninstances: 0\n"),
        "worker.yaml:2:12: instances: expected a number from 1 to 1000, or a list of instance names, got '0'"
    );
    assert!(e("command: [w]\ninstances: 1001\n").contains("from 1 to 1000"));
    assert_eq!(e("command: [w]\ninstances: []\n"), "worker.yaml:2:12: instances: the list is empty");
    assert_eq!(e("command: [w]\ninstances: [eu, eu]\n"), "worker.yaml:2:17: instances: 'eu' is listed twice");
    assert!(e("command: [w]\ninstances: [EU]\n")
        .starts_with("worker.yaml:2:13: instances: invalid instance name 'EU'"));
    assert!(
        e("command: [w]\nenabled: maybe\n").starts_with("worker.yaml:2:10: enabled: expected true or false")
    );
}

/// `depends_on` may name a pool (every instance) or one instance of it.
#[test]
fn dependencies_on_a_pool_and_on_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| fs::write(dir.path().join(name), text).unwrap();
    write("worker.yaml", "command: [w]\ninstances: 3\n");
    write("web.yaml", "command: [w]\n");
    write("lb.yaml", "command: [lb]\ndepends_on: {worker: ready, worker@3: started}\n");
    assert!(load_dir(dir.path(), &FakeUsers::new()).is_ok());
    write("lb.yaml", "command: [lb]\ndepends_on: [worker@4, web@1]\n");
    let errors = render(&load_dir(dir.path(), &FakeUsers::new()).unwrap_err());
    let d = dir.path().display();
    assert_eq!(
        errors,
        format!(
            "{d}/lb.yaml:2:14: depends_on: 'worker' has no instance '4' (it has worker@1 … worker@3)\n\
             {d}/lb.yaml:2:24: depends_on: 'web' has no instances, so there is no 'web@1'"
        )
    );
    write("lb.yaml", "command: [lb]\n");
    write("worker.yaml", "command: [w]\ninstances: 3\ndepends_on: [worker@1]\n");
    let errors = render(&load_dir(dir.path(), &FakeUsers::new()).unwrap_err());
    assert!(errors.contains("worker cannot depend on itself"), "{errors}");
}

#[test]
fn the_command_position_is_kept_but_is_not_part_of_the_definition() {
    let spec = ok("description: x\ncommand: [sleep, 10]\n");
    assert_eq!((spec.command_at.line, spec.command_at.column), (2, 10));
    let moved = ok("command: [sleep, 10]\ndescription: x\n");
    assert_eq!(moved.command_at.line, 1);
    assert_eq!(spec, moved, "moving a line does not change the unit");
}

#[test]
fn command_forms() {
    assert_eq!(ok("command: sleep 10\n").command, ["sleep", "10"]);
    assert_eq!(ok("command: [sleep, 10]\n").command, ["sleep", "10"]);
    assert_eq!(ok("command: [echo, 1.50, true]\n").command, ["echo", "1.50", "true"]);
    assert_eq!(
        ok(r#"command: sh -c 'echo "$HOME"' x\ y "a \"q\"""#).command,
        ["sh", "-c", "echo \"$HOME\"", "x y", "a \"q\""]
    );
    assert_eq!(ok("command: >-\n  a\n  b\n").command, ["a", "b"], "folded scalars are split too");
}

#[test]
fn command_errors() {
    assert_eq!(errors("command: []\n"), "web.yaml:1:10: command is empty");
    assert_eq!(errors("command: ''\n"), "web.yaml:1:10: command is empty");
    assert_eq!(errors("command: '   '\n"), "web.yaml:1:10: command is empty");
    assert_eq!(
        errors("command:\n"),
        "web.yaml:1:8: command: expected a list of strings or a string, got nothing"
    );
    assert_eq!(
        errors("command: {a: 1}\n"),
        "web.yaml:1:10: command: expected a list of strings or a string, got a mapping"
    );
    assert_eq!(
        errors("command: 5\n"),
        "web.yaml:1:10: command: expected a list of strings or a string, got '5'"
    );
    assert_eq!(
        errors("command: [a, [b]]\n"),
        "web.yaml:1:14: command: expected a string in the list, got a list"
    );
    assert_eq!(errors("command: \"echo 'oops\"\n"), "web.yaml:1:10: command: unterminated single quote");
    assert_eq!(errors("command: ['', x]\n"), "web.yaml:1:10: command: the program name is empty");
}

#[test]
fn working_dir_is_resolved_against_the_unit_folder() {
    let users = FakeUsers::new();
    let spec =
        parse_unit(Path::new("/etc/tend/web.yaml"), "command: x\nworking_dir: data\n", &users).unwrap();
    assert_eq!(spec.working_dir, Some(PathBuf::from("/etc/tend/data")));
    let spec =
        parse_unit(Path::new("/etc/tend/web.yaml"), "command: x\nworking_dir: /srv\n", &users).unwrap();
    assert_eq!(spec.working_dir, Some(PathBuf::from("/srv")));
    assert_eq!(errors("command: x\nworking_dir: ''\n"), "web.yaml:2:14: working_dir: path is empty");
    assert_eq!(
        errors("command: x\nworking_dir: [a]\n"),
        "web.yaml:2:14: working_dir: expected a string, got a list"
    );
}

#[test]
fn environment_forms_and_errors() {
    let env = ok("command: x\nenvironment: [A=1, B=x=y, C=]\n").environment;
    assert_eq!(
        env,
        [("A".to_string(), "1".to_string()), ("B".into(), "x=y".into()), ("C".into(), "".into())]
    );
    assert_eq!(
        errors("command: x\nenvironment:\n  A: [1]\n  B:\n  C=D: x\n  E: {x: 1}\n"),
        "\
web.yaml:3:6: environment: A: expected a string, number or boolean, got a list
web.yaml:4:4: environment: B has no value
web.yaml:5:3: environment: invalid variable name 'C=D': it contains '='
web.yaml:6:6: environment: E: expected a string, number or boolean, got a mapping"
    );
    assert_eq!(
        errors("command: x\nenvironment: [NOEQUALS, '=x', 5]\n"),
        "\
web.yaml:2:15: environment: expected NAME=value, got 'NOEQUALS'
web.yaml:2:25: environment: variable name is empty
web.yaml:2:31: environment: expected NAME=value, got '5'"
    );
    assert_eq!(
        errors("command: x\nenvironment: A=1\n"),
        "web.yaml:2:14: environment: expected a mapping of NAME: value or a list of NAME=value, got 'A=1'"
    );
}

#[test]
fn env_files_come_first_and_later_entries_win() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.env"), "# base\nA=1\nB='two'\nexport C=3\n").unwrap();
    fs::write(dir.path().join("b.env"), "B=\"from b\"\n").unwrap();
    let unit = dir.path().join("web.yaml");
    let text = "command: x\nenv_file: [a.env, b.env]\nenvironment:\n  C: override\n  D: 4\n";
    let spec = parse_unit(&unit, text, &FakeUsers::new()).unwrap();
    let env: Vec<(&str, &str)> = spec.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env, [("A", "1"), ("B", "from b"), ("C", "override"), ("D", "4")]);

    let spec = parse_unit(&unit, "command: x\nenv_file: a.env\n", &FakeUsers::new()).unwrap();
    assert_eq!(spec.environment.len(), 3);
}

#[test]
fn env_file_errors_name_the_env_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.env");
    fs::write(&bad, "OK=1\nthis is wrong\nX='open\n").unwrap();
    let unit = dir.path().join("web.yaml");
    let text = "command: x\nenv_file: [bad.env, missing.env]\n";
    let errors = parse_unit(&unit, text, &FakeUsers::new()).unwrap_err();
    let d = dir.path().display();
    assert_eq!(
        render(&errors),
        format!(
            "\
{d}/bad.env:2:1: expected KEY=VALUE, got 'this is wrong'
{d}/bad.env:3:3: unterminated single quote
{d}/web.yaml:2:21: env_file: cannot read {d}/missing.env: no such file or directory"
        )
    );
    assert_eq!(errors[0].hint, Some(format!("read as env_file by {d}/web.yaml:2")));
}

#[test]
fn identity_resolution() {
    let id = |text: &str| ok(&format!("command: x\n{text}")).identity.map(|id| *id);
    let users = FakeUsers::new();
    // By name: primary group and the user's groups from the database.
    assert_eq!(
        id("user: nginx\n"),
        Some(Identity { uid: 101, gid: 101, groups: vec![101, 4, 110], user: users.user_by_name("nginx") })
    );
    // A uid with a passwd entry is that user.
    assert_eq!(id("user: 33\n"), id("user: www\n"));
    assert_eq!(id("user: '33'\n"), id("user: www\n"));
    // A uid without one: no entry, no default groups; group required.
    assert_eq!(
        id("user: 5000\ngroup: 5000\n"),
        Some(Identity { uid: 5000, gid: 5000, groups: vec![], user: None })
    );
    // Group alone: tend's uid, that group.
    assert_eq!(id("group: ssl\n"), Some(Identity { uid: 1000, gid: 110, groups: vec![], user: None }));
    assert_eq!(
        id("supplementary_groups: [adm]\n"),
        Some(Identity { uid: 1000, gid: 1000, groups: vec![4], user: None })
    );
    // An explicit empty list drops the database's groups.
    assert_eq!(id("user: nginx\nsupplementary_groups: []\n").unwrap().groups, Vec::<u32>::new());
    assert_eq!(id(""), None);
}

#[test]
fn identity_errors() {
    assert_eq!(
        errors("command: x\nuser: ngnix\ngroup: wheel\nsupplementary_groups: [adm, nobody, -1]\n"),
        "\
web.yaml:2:7: user: no such user 'ngnix'
web.yaml:3:8: group: no such group 'wheel'
web.yaml:4:29: supplementary_groups: no such group 'nobody'
web.yaml:4:37: supplementary_groups: expected a group name or a number from 0 to 4294967295, got '-1'"
    );
    assert_eq!(
        errors("command: x\nuser: 5000\n"),
        "web.yaml:2:7: user: uid 5000 has no entry in the user database, so it has no primary group"
    );
    assert_eq!(
        errors("command: x\nuser: [a]\nsupplementary_groups: adm\n"),
        "\
web.yaml:2:7: user: expected a user name or a number from 0 to 4294967295, got a list
web.yaml:3:23: supplementary_groups: expected a list of group names or numbers, got 'adm'"
    );
}

#[test]
fn umask_values() {
    let umask = |v: &str| ok(&format!("command: x\numask: {v}\n")).umask;
    assert_eq!(umask("\"0027\""), Some(0o027));
    assert_eq!(umask("0027"), Some(0o027), "leading zero keeps it a string");
    assert_eq!(umask("'077'"), Some(0o077));
    assert_eq!(umask("0o22"), Some(0o022));
    assert_eq!(umask("0"), Some(0));
    assert_eq!(
        errors("command: x\numask: 27\n"),
        "web.yaml:2:8: umask: expected an octal string such as \"0027\", got '27'"
    );
    let e = parse("command: x\numask: 27\n").unwrap_err();
    assert_eq!(e[0].hint.as_deref(), Some("quote it: umask: \"0027\""));
    assert_eq!(
        errors("command: x\numask: '0999'\n"),
        "web.yaml:2:8: umask: invalid umask '0999': expected an octal number from 0000 to 0777"
    );
    assert_eq!(
        errors("command: x\numask: true\n"),
        "web.yaml:2:8: umask: expected an octal string such as \"0027\", got 'true'"
    );
}

#[test]
fn nice_values() {
    assert_eq!(ok("command: x\nnice: 19\n").nice, Some(19));
    assert_eq!(ok("command: x\nnice: -20\n").nice, Some(-20));
    assert_eq!(
        errors("command: x\nnice: -21\n"),
        "web.yaml:2:7: nice: expected an integer from -20 to 19, got '-21'"
    );
    assert_eq!(
        errors("command: x\nnice: high\n"),
        "web.yaml:2:7: nice: expected an integer from -20 to 19, got 'high'"
    );
}

#[test]
fn rlimit_errors() {
    let text = "\
command: x
rlimits:
  nofiles: 10
  nofile: {soft: 2048, hard: 1024}
  core: {soft: 1}
  stack: 12X
  cpu: 1G
  as: {soft: 1, hard: 2, max: 3}
  data: -1
";
    assert_eq!(
        errors(text),
        "\
web.yaml:3:3: rlimits: unknown resource 'nofiles' (did you mean 'nofile'?)
web.yaml:4:30: rlimits.nofile: soft limit 2048 is above hard limit 1024
web.yaml:5:9: rlimits.core: missing 'hard'
web.yaml:6:10: rlimits.stack: invalid size '12X': expected a number of bytes with an optional K, M, G or T suffix, e.g. 64M
web.yaml:7:8: rlimits.cpu: expected a number or unlimited, got '1G'
web.yaml:8:26: rlimits.as: unknown key 'max'
web.yaml:9:9: rlimits.data: expected a number of bytes (e.g. 64M) or unlimited, got '-1'"
    );
    assert_eq!(
        errors("command: x\nrlimits: [nofile]\n"),
        "web.yaml:2:10: rlimits: expected a mapping of resource: limit, got a list"
    );
    assert_eq!(
        errors("command: x\nrlimits: {nofile: 1, NOFILE: 2}\n"),
        "web.yaml:2:22: rlimits.nofile: set twice"
    );
    let spec = ok("command: x\nrlimits: {RLIMIT_NOFILE: 8}\n");
    assert_eq!(spec.rlimits[0].resource, Resource::Nofile);
}

#[test]
fn restart_values() {
    let restart = |v: &str| ok(&format!("command: x\nrestart: {v}\n")).restart;
    assert_eq!(restart("always"), RestartPolicy::Always);
    assert_eq!(restart("on-failure"), RestartPolicy::OnFailure);
    assert_eq!(restart("never"), RestartPolicy::Never);
    assert_eq!(
        errors("command: x\nrestart: on_failure\n"),
        "web.yaml:2:10: restart: expected one of always, on-failure, never, got 'on_failure' (did you mean 'on-failure'?)"
    );
    assert_eq!(
        errors("command: x\nrestart: false\n"),
        "web.yaml:2:10: restart: expected one of always, on-failure, never, got 'false'"
    );
}

#[test]
fn exit_codes() {
    assert_eq!(ok("command: x\nsuccess_exit_codes: [0, 2, 255]\n").success_exit_codes, [0, 2, 255]);
    assert_eq!(
        errors("command: x\nsuccess_exit_codes: [0, 256, x]\n"),
        "\
web.yaml:2:25: success_exit_codes: expected an integer from 0 to 255, got '256'
web.yaml:2:30: success_exit_codes: expected an integer from 0 to 255, got 'x'"
    );
    assert_eq!(
        errors("command: x\nsuccess_exit_codes: 0\n"),
        "web.yaml:2:21: success_exit_codes: expected a list of exit codes from 0 to 255, got '0'"
    );
}

#[test]
fn restart_delays() {
    let spec = ok("command: x\nrestart_delay: 1m\n");
    assert_eq!(spec.restart_delay_max, Duration::from_secs(60), "raised to the delay");
    let spec = ok("command: x\nrestart_delay: 0\nrestart_delay_max: 0s\n");
    assert_eq!(spec.restart_delay, Duration::ZERO);
    assert_eq!(
        errors("command: x\nrestart_delay: 10s\nrestart_delay_max: 5s\n"),
        "web.yaml:3:20: restart_delay_max: 5s is shorter than restart_delay 10s"
    );
    assert_eq!(
        errors("command: x\nrestart_delay: 1.5\n"),
        "web.yaml:2:16: restart_delay: invalid duration '1.5': missing unit (write 1.5s)"
    );
    assert_eq!(
        errors("command: x\nstop_timeout: true\n"),
        "web.yaml:2:15: stop_timeout: expected a duration such as 10s or 250ms, got 'true'"
    );
}

#[test]
fn start_limits() {
    assert_eq!(
        ok("command: x\nstart_limit: {burst: 2}\n").start_limit,
        StartLimit { burst: 2, interval: Duration::from_secs(60) }
    );
    assert_eq!(
        ok("command: x\nstart_limit: {interval: 10s}\n").start_limit,
        StartLimit { burst: 5, interval: Duration::from_secs(10) }
    );
    assert_eq!(
        errors("command: x\nstart_limit:\n  burst: 0\n  intervall: 5s\n"),
        "\
web.yaml:3:10: start_limit.burst: expected an integer from 1 to 4294967295, got '0'
web.yaml:4:3: start_limit: unknown key 'intervall' (did you mean 'interval'?)"
    );
    assert_eq!(
        errors("command: x\nstart_limit: 5\n"),
        "web.yaml:2:14: start_limit: expected a mapping such as {burst: 5, interval: 60s}, got '5'"
    );
}

#[test]
fn stop_signals() {
    let sig = |v: &str| ok(&format!("command: x\nstop_signal: {v}\n")).stop_signal;
    assert_eq!(sig("SIGINT"), 2);
    assert_eq!(sig("quit"), 3);
    assert_eq!(sig("9"), 9);
    assert_eq!(sig("SIGRTMIN+3"), 37);
    assert_eq!(
        errors("command: x\nstop_signal: 0\n"),
        "web.yaml:2:14: stop_signal: invalid signal '0': signal numbers go from 1 to 64"
    );
    assert_eq!(
        errors("command: x\nstop_signal: [TERM]\n"),
        "web.yaml:2:14: stop_signal: expected a signal name such as SIGTERM, or a number, got a list"
    );
}

#[test]
fn booleans_must_be_real() {
    assert!(ok("command: x\ncritical: True\n").critical);
    for (key, col) in [("critical", 11), ("clear_env", 12), ("process_group", 16)] {
        for word in ["yes", "on", "1", "'true'"] {
            let shown = word.trim_matches('\'');
            assert_eq!(
                errors(&format!("command: x\n{key}: {word}\n")),
                format!("web.yaml:2:{col}: {key}: expected true or false, got '{shown}'")
            );
        }
    }
}

#[test]
fn description_must_be_text() {
    assert_eq!(
        ok("command: x\ndescription: |\n  two\n  lines\n").description.as_deref(),
        Some("two\nlines\n")
    );
    assert_eq!(
        errors("command: x\ndescription: [a]\n"),
        "web.yaml:2:14: description: expected a string, got a list"
    );
}

#[test]
fn non_string_keys() {
    assert_eq!(errors("command: x\n5: y\n"), "web.yaml:2:1: expected a key name, got '5'");
}

#[test]
fn control_characters_are_escaped_in_messages() {
    assert_eq!(errors("command: x\n\"a\\u001b[31m\": 1\n"), "web.yaml:2:1: unknown key 'a\\u{1b}[31m'");
}

#[test]
fn unit_keys_are_all_handled() {
    // Every documented key is accepted (no "unknown key" for any of them).
    for key in keys::names(keys::UNIT) {
        if key == "command" {
            continue;
        }
        let text = format!("command: x\n{key}: [[]]\n");
        let errors = parse(&text).unwrap_err();
        assert!(errors.iter().all(|d| !d.message.contains("unknown key")), "{key}: {errors:?}");
    }
}

// ---------------------------------------------------------------- load_dir

#[test]
fn load_dir_loads_sorted_units_and_ignores_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| fs::write(dir.path().join(name), text).unwrap();
    write("web.yaml", "command: nginx\n");
    write("db.yml", "command: postgres\n");
    write("api.yaml", "command: api\n");
    write("web.yaml~", "not: [valid\n");
    write(".web.yaml.swp", "junk");
    write(".hidden.yaml", "junk: [\n");
    write("README.md", "# units\n");
    fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    fs::write(dir.path().join("sub.yaml/x.yaml"), "junk: [\n").unwrap();
    let units = load_dir(dir.path(), &FakeUsers::new()).unwrap();
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["api", "db", "web"]);
    assert_eq!(units[1].file, dir.path().join("db.yml"));
}

#[test]
fn load_dir_reports_every_error_of_every_file_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| fs::write(dir.path().join(name), text).unwrap();
    write("web.yaml", "command: nginx\nrestart: sometimes\nenviroment: {}\n");
    write("api.yaml", "command: [api\n");
    write("good.yaml", "command: ok\n");
    write("Bad.yaml", "command: x\n");
    write("twice.yaml", "command: a\n");
    write("twice.yml", "command: b\n");
    write("empty.yaml", "");
    let errors = load_dir(dir.path(), &FakeUsers::new()).unwrap_err();
    let d = dir.path().display();
    assert_eq!(
        render(&errors),
        format!(
            "\
{d}/Bad.yaml: invalid unit name 'Bad': it must start with a-z or 0-9 and contain only a-z, 0-9, '_', '.' and '-'
{d}/api.yaml:1:10: invalid YAML: unclosed bracket '['
{d}/empty.yaml:1:1: file is empty
{d}/twice.yaml: unit 'twice' is defined twice: twice.yaml and twice.yml (remove one of them)
{d}/twice.yml: unit 'twice' is defined twice: twice.yaml and twice.yml (remove one of them)
{d}/web.yaml:2:10: restart: expected one of always, on-failure, never, got 'sometimes'
{d}/web.yaml:3:1: unknown key 'enviroment' (did you mean 'environment'?)"
        )
    );
}

#[test]
fn load_dir_of_an_empty_or_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load_dir(dir.path(), &FakeUsers::new()), Ok(vec![]));
    let missing = dir.path().join("nope");
    let errors = load_dir(&missing, &FakeUsers::new()).unwrap_err();
    assert_eq!(
        render(&errors),
        format!("{}: cannot read unit folder: no such file or directory", missing.display())
    );
    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    let errors = load_dir(&file, &FakeUsers::new()).unwrap_err();
    assert_eq!(errors[0].file, file);
    assert_eq!(errors[0].message, "cannot read unit folder: not a directory");
}

#[test]
fn load_dir_reports_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("bin.yaml"), [0xff, 0xfe, 0x00]).unwrap();
    std::os::unix::fs::symlink("/nonexistent/x", dir.path().join("dangling.yaml")).unwrap();
    let errors = load_dir(dir.path(), &FakeUsers::new()).unwrap_err();
    let messages: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages, ["invalid UTF-8 (byte 0xff)", "cannot read: no such file or directory"]);
    // Invalid UTF-8 is reported where it is.
    assert_eq!((errors[0].line, errors[0].column), (1, 1));
    fs::write(dir.path().join("bin.yaml"), b"command: x\ndescription: caf\xe9\n").unwrap();
    let errors = load_dir(dir.path(), &FakeUsers::new()).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        format!("{}:2:17: invalid UTF-8 (byte 0xe9)", dir.path().join("bin.yaml").display())
    );
}

#[test]
fn load_dir_refuses_what_is_not_a_regular_file_or_too_big() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("big.yaml"), vec![b'x'; (crate::unit::UNIT_FILE_LIMIT + 1) as usize]).unwrap();
    let errors = load_dir(dir.path(), &FakeUsers::new()).unwrap_err();
    assert_eq!(
        errors[0].message,
        "cannot read: it is 1048577 bytes; files tend reads are limited to 1024 KiB"
    );
    fs::remove_file(dir.path().join("big.yaml")).unwrap();
    // A value echoed in an error is a short excerpt, never the whole of it.
    fs::write(dir.path().join("long.yaml"), "x".repeat(100_000)).unwrap();
    let errors = load_dir(dir.path(), &FakeUsers::new()).unwrap_err();
    assert!(errors[0].message.len() < 200, "{}", errors[0].message);
    assert!(errors[0].message.contains("xxx…'"), "{}", errors[0].message);
}

#[test]
fn files_that_are_not_world_readable_are_not_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.env");
    fs::write(&secret, "root:$6$abcdefgh$SECRETHASH:19000:0:99999:7:::\n").unwrap();
    chmod(&secret, 0o600);
    fs::write(dir.path().join("b.yaml"), format!("command: x\nenv_file: {}\n", secret.display())).unwrap();
    let errors = load_dir(dir.path(), &FakeUsers::new()).unwrap_err();
    let text = render(&errors);
    assert!(!text.contains("SECRET"), "{text}");
    assert_eq!(errors[0].message, "expected KEY=VALUE, got '…'");
    assert!(errors[0].hint.as_deref().unwrap().contains("not world-readable"), "{errors:?}");
    // World-readable: quoted (as an excerpt).
    chmod(&secret, 0o644);
    let text = render(&load_dir(dir.path(), &FakeUsers::new()).unwrap_err());
    assert!(text.contains("SECRETHASH"), "{text}");
    // A unit file that is not world-readable is not quoted either.
    let unit = dir.path().join("b.yaml");
    fs::write(&unit, "command: x\nroot:$6$abcdefgh$SECRETHASH: 1\n").unwrap();
    chmod(&unit, 0o600);
    let text = render(&load_dir(dir.path(), &FakeUsers::new()).unwrap_err());
    assert!(!text.contains("SECRET"), "{text}");
    assert!(text.contains("unknown key '…'"), "{text}");
}

proptest! {
    #[test]
    fn parse_unit_never_panics(text in "\\PC*") {
        let _ = parse(&text);
    }

    #[test]
    fn parse_unit_never_panics_on_yamlish_text(
        lines in proptest::collection::vec(
            (proptest::sample::select(keys::names(keys::UNIT)), "[ -~]{0,20}"),
            0..8,
        )
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        if let Err(errors) = parse(&text) {
            // Every problem of the text says where it is.
            for d in errors {
                prop_assert!(d.line > 0, "{d}");
            }
        }
    }
}

#[test]
fn log_sinks() {
    let unit = ok("command: x\nlog:\n  file: logs/web.log\n  max_size: 10M\n  keep: 3\n  timestamps: true\n  syslog: true\n  syslog_facility: local3\n");
    assert_eq!(unit.log.file.as_deref(), Some(std::path::Path::new("logs/web.log")));
    assert_eq!(unit.log.max_size, Some(10 * 1024 * 1024));
    assert_eq!(unit.log.keep, 3);
    assert!(unit.log.timestamps && unit.log.syslog);
    assert_eq!(unit.log.syslog_facility, "local3");
    assert_eq!(ok("command: x\n").log, crate::unit::LogSpec::default());
}

#[test]
fn log_sink_errors() {
    assert_eq!(
        errors("command: x\nlog:\n  fiel: a.log\n"),
        "web.yaml:3:3: log: unknown key 'fiel' (did you mean 'file'?)"
    );
    assert!(errors("command: x\nlog:\n  syslog_facility: deamon\n").contains("(did you mean 'daemon'?)"));
    assert!(errors("command: x\nlog:\n  max_size: 10M\n").contains("log: max_size needs a file to rotate"));
    assert!(errors("command: x\nlog:\n  file: a\n  max_size: lots\n")
        .contains("web.yaml:4:13: log.max_size: expected a size"));
    // Caught by `check`, not at start (issue 9).
    assert_eq!(
        errors("command: x\nlog:\n  file: /\n"),
        "web.yaml:3:9: log.file: / names a folder, not a file"
    );
    assert!(errors("command: x\nlog:\n  file: /var/log/\n").contains("names a folder, not a file"));
    assert_eq!(errors("command: x\nlog:\n  file: /tmp\n"), "web.yaml:3:9: log.file: /tmp is a folder");
}

// ---------------------------------------------------------------- ordering and readiness

#[test]
fn service_types() {
    assert_eq!(ok("command: x\n").service_type, ServiceType::Simple);
    assert_eq!(ok("command: x\ntype: notify\n").service_type, ServiceType::Notify);
    let oneshot = ok("command: x\ntype: oneshot\n");
    assert_eq!(oneshot.service_type, ServiceType::Oneshot);
    assert_eq!(oneshot.restart, RestartPolicy::Never, "a oneshot is not restarted by default");
    assert_eq!(ok("command: x\ntype: oneshot\nrestart: on-failure\n").restart, RestartPolicy::OnFailure);
    assert!(ok("command: x\ntype: oneshot\ncritical: true\n").critical);
    assert_eq!(
        errors("command: x\ntype: notfy\n"),
        "web.yaml:2:7: type: expected one of simple, notify, oneshot, got 'notfy' (did you mean 'notify'?)"
    );
    let e = parse("command: x\ntype: forking\n").unwrap_err();
    assert_eq!(render(&e), "web.yaml:2:7: type: expected one of simple, notify, oneshot, got 'forking'");
    assert!(e[0].hint.as_deref().unwrap().contains("foreground"));
    // An invalid type does not also make the type-dependent keys errors.
    assert_eq!(
        errors("command: x\ntype: 5\nwatchdog: 10s\n"),
        "web.yaml:2:7: type: expected one of simple, notify, oneshot, got '5'"
    );
}

#[test]
fn depends_on_forms() {
    let spec = ok("command: x\ndepends_on: [db, cache]\n");
    assert_eq!(
        spec.depends_on,
        [
            Dependency { name: "db".into(), condition: DependencyCondition::Started, line: 2, column: 14 },
            Dependency { name: "cache".into(), condition: DependencyCondition::Started, line: 2, column: 18 },
        ]
    );
    let spec = ok("command: x\ndepends_on:\n  db: ready\n  migrate: completed\n  cache: started\n");
    assert_eq!(
        spec.depends_on,
        [
            Dependency { name: "db".into(), condition: DependencyCondition::Ready, line: 3, column: 3 },
            Dependency {
                name: "migrate".into(),
                condition: DependencyCondition::Completed,
                line: 4,
                column: 3
            },
            Dependency { name: "cache".into(), condition: DependencyCondition::Started, line: 5, column: 3 },
        ]
    );
    let spec = ok("command: x\ndepends_on:\n  - db\n  - 0x\n");
    let names: Vec<&str> = spec.depends_on.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["db", "0x"]);
    assert_eq!((spec.depends_on[1].line, spec.depends_on[1].column), (4, 5));
    assert_eq!(ok("command: x\ndepends_on: []\n").depends_on, []);
}

#[test]
fn depends_on_errors() {
    assert_eq!(
        errors("command: x\ndepends_on: [db, web]\n"),
        "web.yaml:2:18: depends_on: web cannot depend on itself"
    );
    assert_eq!(
        errors("command: x\ndepends_on:\n  web: ready\n"),
        "web.yaml:3:3: depends_on: web cannot depend on itself"
    );
    assert_eq!(
        errors("command: x\ndepends_on: [db, db]\n"),
        "web.yaml:2:18: depends_on: 'db' is listed twice"
    );
    assert_eq!(
        errors("command: x\ndepends_on:\n  db: redy\n"),
        "web.yaml:3:7: depends_on.db: expected one of started, ready, completed, got 'redy' (did you mean 'ready'?)"
    );
    assert_eq!(
        errors("command: x\ndepends_on:\n  db:\n"),
        "web.yaml:3:5: depends_on.db: expected one of started, ready, completed, got nothing"
    );
    assert_eq!(
        errors("command: x\ndepends_on: db\n"),
        "web.yaml:2:13: depends_on: expected a list of unit names or a mapping of name: condition, got 'db'"
    );
    assert_eq!(
        errors("command: x\ndepends_on: [[a]]\n"),
        "web.yaml:2:14: depends_on: expected a unit name, got a list"
    );
    assert_eq!(errors("command: x\ndepends_on: ['']\n"), "web.yaml:2:14: depends_on: unit name is empty");
    assert_eq!(
        errors("command: x\ndepends_on: {db: ready, db: started}\n"),
        "web.yaml:2:25: duplicate key 'db' (first set on line 2)"
    );
}

#[test]
fn checks_of_every_kind() {
    let spec = ok("command: x\nready_check:\n  exec: [\"pg_isready\", \"-h\", \"127.0.0.1\"]\n");
    assert_eq!(
        spec.ready_check.as_deref(),
        Some(&CheckSpec {
            check: Check::Exec(vec!["pg_isready".into(), "-h".into(), "127.0.0.1".into()]),
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(2),
            retries: 1,
        })
    );
    let spec = ok("command: x\nready_check: {exec: pg_isready -q, interval: 1s, timeout: 250ms}\n");
    let check = spec.ready_check.unwrap();
    assert_eq!(check.check, Check::Exec(vec!["pg_isready".into(), "-q".into()]));
    assert_eq!((check.interval, check.timeout), (Duration::from_secs(1), Duration::from_millis(250)));
    let tcp =
        |text: &str| ok(&format!("command: x\nready_check:\n  tcp: \"{text}\"\n")).ready_check.unwrap().check;
    assert_eq!(tcp("127.0.0.1:5432"), Check::Tcp { host: "127.0.0.1".into(), port: 5432 });
    assert_eq!(tcp("localhost:6379"), Check::Tcp { host: "localhost".into(), port: 6379 });
    assert_eq!(tcp("[::1]:80"), Check::Tcp { host: "::1".into(), port: 80 });
    assert_eq!(
        ok("command: x\nready_check: {tcp: 127.0.0.1:5432}\n").ready_check.unwrap().check,
        tcp("127.0.0.1:5432")
    );
    let http =
        |text: &str| ok(&format!("command: x\nhealth_check:\n  http: {text}\n")).health_check.unwrap().check;
    let h = |host: &str, port, path: &str| Check::Http { host: host.into(), port, path: path.into() };
    assert_eq!(http("http://127.0.0.1:8080/health"), h("127.0.0.1", 8080, "/health"));
    assert_eq!(http("http://localhost"), h("localhost", 80, "/"));
    assert_eq!(http("http://localhost/"), h("localhost", 80, "/"));
    assert_eq!(http("HTTP://web.local/a/b?x=1#top"), h("web.local", 80, "/a/b?x=1"));
    assert_eq!(http("http://[::1]:8080/up"), h("::1", 8080, "/up"));
    assert_eq!(http("http://localhost?ready"), h("localhost", 80, "/?ready"));
    let health = ok("command: x\nhealth_check:\n  tcp: localhost:80\n").health_check.unwrap();
    assert_eq!(
        (health.interval, health.timeout, health.retries),
        (Duration::from_secs(10), Duration::from_secs(2), 3)
    );
    let health = ok("command: x\nhealth_check: {tcp: localhost:80, retries: 1, interval: 30s}\n")
        .health_check
        .unwrap();
    assert_eq!((health.interval, health.retries), (Duration::from_secs(30), 1));
}

#[test]
fn check_errors() {
    assert_eq!(
        errors("command: x\nhealth_check:\n  http: https://example.com/\n"),
        "web.yaml:3:9: health_check.http: https is not supported, use a tcp check or exec with curl"
    );
    assert_eq!(
        errors("command: x\nready_check:\n  interval: 1s\n"),
        "web.yaml:3:3: ready_check: needs one of exec, tcp or http"
    );
    assert_eq!(
        errors("command: x\nready_check:\n  tcp: a:1\n  http: http://a/\n"),
        "web.yaml:4:3: ready_check: tcp and http are both set (a check has exactly one of exec, tcp, http)"
    );
    assert_eq!(
        errors("command: x\nready_check:\n  tcp: a:1\n  retries: 3\n"),
        "web.yaml:4:3: ready_check: retries is only for health_check"
    );
    assert_eq!(
        errors("command: x\nhealth_check:\n  tcp: a:1\n  retries: 0\n"),
        "web.yaml:4:12: health_check.retries: expected an integer from 1 to 4294967295, got '0'"
    );
    assert_eq!(
        errors("command: x\nhealth_check:\n  tcp: a:1\n  intervl: 1s\n"),
        "web.yaml:4:3: health_check: unknown key 'intervl' (did you mean 'interval'?)"
    );
    assert_eq!(
        errors("command: x\nready_check:\n  tcp: a:1\n  interval: 0s\n"),
        "web.yaml:4:13: ready_check.interval: must be longer than 0s"
    );
    assert_eq!(
        errors("command: x\nready_check:\n  tcp: a:1\n  timeout: 2\n"),
        "web.yaml:4:12: ready_check.timeout: invalid duration '2': missing unit (write 2s)"
    );
    assert_eq!(errors("command: x\nready_check: {exec: []}\n"), "web.yaml:2:21: ready_check.exec is empty");
    assert_eq!(errors("command: x\nready_check: tcp\n"), "web.yaml:2:14: ready_check: expected a mapping such as {tcp: 127.0.0.1:5432, interval: 1s}, got 'tcp'");
    let tcp_error = |text: &str| errors(&format!("command: x\nready_check:\n  tcp: \"{text}\"\n"));
    assert_eq!(
        tcp_error("127.0.0.1"),
        "web.yaml:3:8: ready_check.tcp: invalid address '127.0.0.1': expected host:port, e.g. 127.0.0.1:5432"
    );
    assert_eq!(
        tcp_error("db:0"),
        "web.yaml:3:8: ready_check.tcp: invalid address 'db:0': the port must be from 1 to 65535"
    );
    assert_eq!(
        tcp_error("db:70000"),
        "web.yaml:3:8: ready_check.tcp: invalid address 'db:70000': the port must be from 1 to 65535"
    );
    assert_eq!(tcp_error("db:"), "web.yaml:3:8: ready_check.tcp: invalid address 'db:': the port is missing");
    assert_eq!(
        tcp_error("::1:80"),
        "web.yaml:3:8: ready_check.tcp: invalid address '::1:80': expected host:port, e.g. 127.0.0.1:5432"
    );
    assert_eq!(
        tcp_error("[::1]"),
        "web.yaml:3:8: ready_check.tcp: invalid address '[::1]': expected host:port, e.g. 127.0.0.1:5432"
    );
    assert_eq!(
        tcp_error("[zz]:80"),
        "web.yaml:3:8: ready_check.tcp: invalid address '[zz]:80': 'zz' is not an IPv6 address"
    );
    assert_eq!(tcp_error("a b:80"), "web.yaml:3:8: ready_check.tcp: invalid address 'a b:80': invalid host name 'a b': ' ' is not allowed (letters, digits, '-' and '.' only)");
    assert!(tcp_error("http://a:80").contains("not a URL"));
    let http_error = |text: &str| errors(&format!("command: x\nready_check:\n  http: \"{text}\"\n"));
    assert_eq!(http_error("localhost:8080/health"), "web.yaml:3:9: ready_check.http: invalid URL 'localhost:8080/health': expected http://host[:port]/path");
    assert_eq!(
        http_error("http://"),
        "web.yaml:3:9: ready_check.http: invalid URL 'http://': the host is missing"
    );
    assert_eq!(http_error("http://u:p@a/"), "web.yaml:3:9: ready_check.http: invalid URL 'http://u:p@a/': user names and passwords are not supported");
    assert_eq!(
        http_error("http://a:x/"),
        "web.yaml:3:9: ready_check.http: invalid address 'http://a:x/': the port must be from 1 to 65535"
    );
    assert_eq!(http_error("http://a/b c"), "web.yaml:3:9: ready_check.http: invalid URL 'http://a/b c': the path contains spaces or control characters");
}

#[test]
fn type_dependent_keys() {
    let spec = ok("command: x\ntype: notify\nwatchdog: 30s\nnotify_fd: 3\nstart_timeout: 1m\n");
    assert_eq!(spec.watchdog, Some(Duration::from_secs(30)));
    assert_eq!(spec.notify_fd, Some(3));
    assert_eq!(spec.start_timeout, Some(Duration::from_secs(60)));
    assert_eq!(ok("command: x\ntype: oneshot\ntimeout: 5m\n").timeout, Some(Duration::from_secs(300)));
    assert_eq!(
        ok("command: x\nstart_timeout: 30s\nready_check: {tcp: 'a:1'}\n").start_timeout,
        Some(Duration::from_secs(30))
    );
    assert_eq!(ok("command: x\ntype: notify\nnotify_fd: 1023\n").notify_fd, Some(1023));
    assert_eq!(
        errors("command: x\nwatchdog: 30s\n"),
        "web.yaml:2:1: watchdog: needs type: notify (type simple cannot send WATCHDOG=1)"
    );
    assert_eq!(
        errors("command: x\ntype: oneshot\nnotify_fd: 3\n"),
        "web.yaml:3:1: notify_fd: needs type: notify (this unit is type oneshot)"
    );
    assert_eq!(
        errors("command: x\ntype: notify\nnotify_fd: 2\n"),
        "web.yaml:3:12: notify_fd: expected an integer from 3 to 1023, got '2'"
    );
    assert_eq!(
        errors("command: x\ntype: notify\nnotify_fd: 1024\n"),
        "web.yaml:3:12: notify_fd: expected an integer from 3 to 1023, got '1024'"
    );
    let e = parse("command: x\ntimeout: 10s\n").unwrap_err();
    assert_eq!(render(&e), "web.yaml:2:1: timeout: only for type: oneshot (this unit is type simple)");
    assert!(e[0].hint.as_deref().unwrap().contains("start_timeout"));
    assert!(e[0].hint.as_deref().unwrap().contains("stop_timeout"));
    assert_eq!(
        errors("command: x\ntype: notify\nready_check: {tcp: 'a:1'}\n"),
        "web.yaml:3:1: ready_check: not used with type: notify (a notify service says itself when it is ready)"
    );
    assert_eq!(
        errors("command: x\ntype: oneshot\nready_check: {tcp: 'a:1'}\n"),
        "web.yaml:3:1: ready_check: not used with type: oneshot (a oneshot is done when it exits)"
    );
    assert_eq!(
        errors("command: x\nstart_timeout: 0\n"),
        "web.yaml:2:16: start_timeout: must be longer than 0s"
    );
    assert_eq!(
        errors("command: x\ntype: notify\nwatchdog: soon\n"),
        "web.yaml:3:11: watchdog: invalid duration 'soon': expected a number before each unit, e.g. 1m30s"
    );
    // health checks are allowed with every type
    assert!(ok("command: x\ntype: notify\nhealth_check: {tcp: 'a:1'}\n").health_check.is_some());
}

// ---------------------------------------------------------------- sandbox and resources

#[test]
fn sandbox_every_key() {
    let spec = ok("\
command: x
sandbox:
  no_new_privileges: true
  capabilities: [NET_BIND_SERVICE, cap_chown, Cap_Net_Bind_Service, CAP_BPF]
  private_tmp: true
  read_only_paths: [/]
  read_write_paths: [/srv/data/, /var//lib/x, /srv/data]
  inaccessible_paths: [/root, /home]
  private_network: true
  hostname: sandbox
  private_ipc: true
  private_pids: true
  protect_proc: invisible
  filesystem: mounts
");
    assert_eq!(
        *spec.sandbox,
        SandboxSpec {
            no_new_privileges: true,
            capabilities: Some(vec![0, 10, 39]),
            private_tmp: true,
            read_only_paths: vec!["/".into()],
            read_write_paths: vec!["/srv/data".into(), "/var/lib/x".into()],
            inaccessible_paths: vec!["/root".into(), "/home".into()],
            private_network: true,
            hostname: Some("sandbox".into()),
            private_ipc: true,
            private_pids: true,
            protect_proc: crate::unit::ProtectProc::Invisible,
            filesystem: FilesystemBackend::Mounts,
        }
    );
    assert!(errors("command: x\nsandbox:\n  protect_proc: hidden\n").contains(
        "sandbox.protect_proc: expected one of default, invisible, noaccess, ptraceable, got 'hidden'"
    ));
    assert!(errors("command: x\nsandbox:\n  filesystem: landlock\n  private_pids: true\n")
        .contains("landlock cannot give a /proc of the service's own"));
    assert_eq!(*ok("command: x\n").sandbox, SandboxSpec::default());
    assert!(!ok("command: x\n").sandbox.is_set() && !ok("command: x\nsandbox: {}\n").sandbox.is_set());
    assert_eq!(ok("command: x\nsandbox: {capabilities: []}\n").sandbox.capabilities, Some(vec![]));
    assert_eq!(ok("command: x\nsandbox: {}\n").sandbox.capabilities, None);
    assert_eq!(
        ok("command: x\nsandbox: {filesystem: landlock, read_only_paths: [/]}\n").sandbox.filesystem,
        FilesystemBackend::Landlock
    );
    assert_eq!(
        ok("command: x\nsandbox: {filesystem: auto, private_tmp: true}\n").sandbox.filesystem,
        FilesystemBackend::Auto
    );
    // A read_write path outside every read_only path is pointless but allowed.
    assert_eq!(
        ok("command: x\nsandbox: {read_only_paths: [/usr], read_write_paths: [/srv]}\n")
            .sandbox
            .read_write_paths,
        [PathBuf::from("/srv")]
    );
    assert_eq!(
        ok("command: x\nsandbox: {hostname: a-1.example.com}\n").sandbox.hostname.as_deref(),
        Some("a-1.example.com")
    );
}

#[test]
fn sandbox_errors() {
    assert_eq!(
        errors("command: x\nsandbox:\n  capabilities: [NET_BIND_SERVIC, CAP_SYS_ADMN, bogus]\n"),
        "\
web.yaml:3:18: sandbox.capabilities: unknown capability 'NET_BIND_SERVIC' (did you mean 'NET_BIND_SERVICE'?)
web.yaml:3:35: sandbox.capabilities: unknown capability 'CAP_SYS_ADMN' (did you mean 'SYS_ADMIN'?)
web.yaml:3:49: sandbox.capabilities: unknown capability 'bogus'"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  capabilities: NET_ADMIN\n"),
        "web.yaml:3:17: sandbox.capabilities: expected a list of capability names such as [NET_BIND_SERVICE], got 'NET_ADMIN'"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  read_only_paths: [data, /a/../b, '']\n"),
        "\
web.yaml:3:21: sandbox.read_only_paths: 'data' is not an absolute path
web.yaml:3:27: sandbox.read_only_paths: '/a/../b' contains '..'
web.yaml:3:36: sandbox.read_only_paths: path is empty"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  inaccessible_paths: /root\n"),
        "web.yaml:3:23: sandbox.inaccessible_paths: expected a list of absolute paths, got '/root'"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  filesystem: landlock\n  private_tmp: true\n"),
        "web.yaml:3:15: sandbox.filesystem: landlock cannot give a private /tmp (private_tmp is set)"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  filesystem: landlok\n"),
        "web.yaml:3:15: sandbox.filesystem: expected one of auto, mounts, landlock, got 'landlok' (did you mean 'landlock'?)"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  private_tmp: yes\n"),
        "web.yaml:3:16: sandbox.private_tmp: expected true or false, got 'yes'"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  privat_network: true\n"),
        "web.yaml:3:3: sandbox: unknown key 'privat_network' (did you mean 'private_network'?)"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  hostname: bad_name\n"),
        "web.yaml:3:13: sandbox.hostname: invalid host name 'bad_name': '_' is not allowed (letters, digits, '-' and '.' only)"
    );
    assert_eq!(
        errors(&format!("command: x\nsandbox:\n  hostname: {}\n", "a".repeat(65))),
        "web.yaml:3:13: sandbox.hostname: longer than 64 characters"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  hostname: ''\n"),
        "web.yaml:3:13: sandbox.hostname: host name is empty"
    );
    assert_eq!(
        errors("command: x\nsandbox:\n  hostname: -x\n"),
        "web.yaml:3:13: sandbox.hostname: invalid host name '-x': a label starts or ends with '-'"
    );
    assert_eq!(
        errors("command: x\nsandbox: true\n"),
        "web.yaml:2:10: sandbox: expected a mapping such as {no_new_privileges: true}, got 'true'"
    );
}

#[test]
fn resources_every_key() {
    let spec = ok(
        "command: x\nresources:\n  memory_max: 256M\n  pids_max: 200\n  cpu_max: 0.5\n  cpu_weight: 100\n  accounting: true\n",
    );
    assert_eq!(
        *spec.resources,
        ResourcesSpec {
            memory_max: Some(256 << 20),
            pids_max: Some(200),
            cpu_max_millicores: Some(500),
            cpu_weight: Some(100),
            accounting: true,
        }
    );
    assert_eq!(*ok("command: x\n").resources, ResourcesSpec::default());
    // Accounting alone is no limit: such a unit loads where cgroups cannot be used.
    let accounting = *ok("command: x\nresources: {accounting: true}\n").resources;
    assert!(accounting.accounting && !accounting.is_set(), "{accounting:?}");
    let cpu =
        |v: &str| ok(&format!("command: x\nresources: {{cpu_max: {v}}}\n")).resources.cpu_max_millicores;
    assert_eq!(cpu("2"), Some(2000));
    assert_eq!(cpu("1.2345"), Some(1235));
    assert_eq!(cpu("0.0001"), Some(1));
    assert_eq!(cpu("'0.25'"), Some(250));
    assert_eq!(ok("command: x\nresources: {memory_max: 1048576}\n").resources.memory_max, Some(1 << 20));
    assert_eq!(
        ok("command: x\nresources: {memory_max: 1G, cpu_weight: 10000}\n").resources.memory_max,
        Some(1 << 30)
    );
}

#[test]
fn resources_errors() {
    assert_eq!(
        errors("command: x\nresources:\n  memory_max: 100K\n"),
        "web.yaml:3:15: resources.memory_max: '100K' is less than the minimum of 1M"
    );
    assert_eq!(
        errors("command: x\nresources:\n  memory_max: lots\n"),
        "web.yaml:3:15: resources.memory_max: invalid size 'lots': expected a number of bytes with an optional K, M, G or T suffix, e.g. 64M"
    );
    assert_eq!(
        errors("command: x\nresources:\n  pids_max: 0\n"),
        "web.yaml:3:13: resources.pids_max: expected an integer from 1 to 4194304, got '0'"
    );
    for bad in ["0", "-1", "0.0", "half", "1000001"] {
        assert_eq!(
            errors(&format!("command: x\nresources:\n  cpu_max: {bad}\n")),
            format!("web.yaml:3:12: resources.cpu_max: expected a number of cores greater than 0, such as 0.5 or 2, got '{bad}'"),
        );
    }
    assert_eq!(
        errors("command: x\nresources:\n  cpu_max: [1]\n"),
        "web.yaml:3:12: resources.cpu_max: expected a number of cores greater than 0, such as 0.5 or 2, got a list"
    );
    assert_eq!(
        errors("command: x\nresources:\n  cpu_weight: 0\n"),
        "web.yaml:3:15: resources.cpu_weight: expected an integer from 1 to 10000, got '0'"
    );
    assert_eq!(
        errors("command: x\nresources:\n  cpu_weight: 10001\n"),
        "web.yaml:3:15: resources.cpu_weight: expected an integer from 1 to 10000, got '10001'"
    );
    assert_eq!(
        errors("command: x\nresources:\n  memory_mx: 1G\n"),
        "web.yaml:3:3: resources: unknown key 'memory_mx' (did you mean 'memory_max'?)"
    );
}

// ---------------------------------------------------------------- load_dir: dependencies

#[test]
fn load_dir_checks_dependencies_across_units() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| fs::write(dir.path().join(name), text).unwrap();
    write("db.yaml", "command: postgres\n");
    write(
        "web.yaml",
        "command: nginx\nrestart: always\ndescription: w\ndepends_on:\n  dbb: ready\n  db: completed\n",
    );
    write("a.yaml", "command: a\ndescription: a\ndepends_on: [b]\n");
    write("b.yaml", "command: b\ndepends_on: [c]\n");
    write("c.yaml", "command: c\ndepends_on: [a, broken]\n");
    write("broken.yaml", "command: [x\n");
    let errors = load_dir(dir.path(), &FakeUsers::new()).unwrap_err();
    let d = dir.path().display();
    assert_eq!(
        render(&errors),
        format!(
            "\
{d}/a.yaml:3:14: depends_on: dependency cycle a -> b -> c -> a
{d}/broken.yaml:1:10: invalid YAML: unclosed bracket '['
{d}/web.yaml:5:3: depends_on: no unit 'dbb' (did you mean 'db'?)
{d}/web.yaml:6:3: depends_on: 'db' is not a oneshot, so it never completes (use ready or started)"
        )
    );
    fs::remove_file(dir.path().join("broken.yaml")).unwrap();
    write("c.yaml", "command: c\n");
    write("web.yaml", "command: nginx\ndepends_on:\n  db: ready\n  migrate: completed\n");
    write("migrate.yaml", "command: migrate\ntype: oneshot\ndepends_on: {db: started}\n");
    let units = load_dir(dir.path(), &FakeUsers::new()).unwrap();
    let order: Vec<&str> =
        crate::unit::start_order(&units).into_iter().map(|i| units[i].name.as_str()).collect();
    assert_eq!(order, ["c", "b", "a", "db", "migrate", "web"]);
}

// ---------------------------------------------------------------- strict modes (as root)

fn root_users() -> FakeUsers {
    FakeUsers { current: (0, 0), ..FakeUsers::new() }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether files made here are owned by root (the tests run as root).
fn owned_by_root(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().uid() == 0
}

/// A temporary folder (mode 0755) with an empty `units` folder (0755) in it.
fn units_folder() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let units = dir.path().join("units");
    fs::create_dir(&units).unwrap();
    chmod(&units, 0o755);
    (dir, units)
}

#[test]
fn as_root_files_others_can_write_are_refused() {
    let (dir, units) = units_folder();
    let web = units.join("web.yaml");
    fs::write(&web, "command: nginx\nenv_file: ../web.env\n").unwrap();
    chmod(&web, 0o644);
    let env = dir.path().join("web.env");
    fs::write(&env, "A=1\n").unwrap();
    chmod(&env, 0o600);
    if !owned_by_root(&web) {
        // Not root: every file is "owned by another user"; only the
        // non-root half of the rule can be shown.
        let errors = load_dir(&units, &root_users()).unwrap_err();
        assert!(errors[0].message.starts_with("refusing to load: owned by uid "), "{errors:?}");
        assert!(load_dir(&units, &FakeUsers::new()).is_ok());
        return;
    }
    assert_eq!(load_dir(&units, &root_users()).unwrap().len(), 1);

    chmod(&web, 0o666);
    let w = web.display();
    assert_eq!(
        render(&load_dir(&units, &root_users()).unwrap_err()),
        format!("{w}: refusing to load: writable by others (mode 0666); fix with chmod go-w {w}")
    );
    // Not root: nothing to protect, nothing refused.
    assert!(load_dir(&units, &FakeUsers::new()).is_ok());
    chmod(&web, 0o664);
    assert!(render(&load_dir(&units, &root_users()).unwrap_err()).contains("writable by others (mode 0664)"));
    chmod(&web, 0o644);

    chmod(&env, 0o602);
    let errors = load_dir(&units, &root_users()).unwrap_err();
    let e = units.join("../web.env");
    let e = e.display();
    assert_eq!(
        render(&errors),
        format!("{e}: refusing to load: writable by others (mode 0602); fix with chmod go-w {e}")
    );
    assert_eq!(errors[0].hint.as_deref(), Some(format!("read as env_file by {w}:2").as_str()));
    chmod(&env, 0o600);

    chmod(&units, 0o777);
    let u = units.display();
    assert_eq!(
        render(&load_dir(&units, &root_users()).unwrap_err()),
        format!("{u}: refusing to load: writable by others (mode 0777); fix with chmod go-w {u}")
    );
    chmod(&units, 0o1777);
    assert!(render(&load_dir(&units, &root_users()).unwrap_err()).contains("(mode 1777)"));
    chmod(&units, 0o755);

    // Owned by another user.
    std::os::unix::fs::chown(&web, Some(1000), None).unwrap();
    assert_eq!(
        render(&load_dir(&units, &root_users()).unwrap_err()),
        format!("{w}: refusing to load: owned by uid 1000, not root (mode 0644); fix with chown root {w}")
    );
    chmod(&web, 0o646);
    assert_eq!(
        render(&load_dir(&units, &root_users()).unwrap_err()),
        format!(
            "{w}: refusing to load: owned by uid 1000, not root, and writable by others (mode 0646); fix with chown root {w} && chmod go-w {w}"
        )
    );
    assert!(load_dir(&units, &FakeUsers::new()).is_ok());
}

#[test]
fn as_root_a_symlinked_unit_is_judged_by_its_target() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let target = dir.path().join("real.yaml");
    fs::write(&target, "command: x\n").unwrap();
    if !owned_by_root(&target) {
        return;
    }
    let units = dir.path().join("units");
    fs::create_dir(&units).unwrap();
    chmod(&units, 0o755);
    std::os::unix::fs::symlink(&target, units.join("web.yaml")).unwrap();
    chmod(&target, 0o644);
    assert!(load_dir(&units, &root_users()).is_ok());
    chmod(&target, 0o666);
    let errors = load_dir(&units, &root_users()).unwrap_err();
    assert!(errors[0].message.contains("writable by others (mode 0666)"), "{errors:?}");
}

/// The folders found safe for one file are not examined again for the
/// next, but a folder first met by a later file still is.
#[test]
fn as_root_each_file_is_judged_by_its_own_folders_in_one_load() {
    let (dir, units) = units_folder();
    fs::write(units.join("a.yaml"), "command: x\n").unwrap();
    chmod(&units.join("a.yaml"), 0o644);
    if !owned_by_root(&units) {
        return;
    }
    let open = dir.path().join("open");
    fs::create_dir(&open).unwrap();
    let target = open.join("real.yaml");
    fs::write(&target, "command: y\n").unwrap();
    chmod(&target, 0o644);
    std::os::unix::fs::symlink(&target, units.join("b.yaml")).unwrap();
    chmod(&open, 0o755);
    assert_eq!(load_dir(&units, &root_users()).unwrap().len(), 2);
    chmod(&open, 0o777);
    let errors = load_dir(&units, &root_users()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].file, units.join("b.yaml"));
    assert!(
        errors[0].message.contains(&format!("its folder {} is writable by others", open.display())),
        "{errors:?}"
    );
}

// ---------------------------------------------------------------- the table of keys

/// The loader and `keys::UNIT` agree: every key of the table (nested ones
/// too) is accepted with its example, and a value of the wrong kind is
/// rejected at that key, so no key of the table goes unchecked; a key the
/// table lacks is unknown to the loader. `tests/schema.rs` runs the same
/// samples through the JSON Schema with a real validator.
#[test]
fn every_key_of_the_table_is_checked_by_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("web.env"), "A=1\n").unwrap();
    let file = dir.path().join("web.yaml");
    let samples = keys::samples();
    assert!(samples.len() > keys::UNIT.len(), "nested keys are sampled too");
    for sample in samples {
        if let Err(errors) = parse_unit(&file, &sample.valid, &FakeUsers::new()) {
            panic!("{}: its example is refused:\n{}\n{}", sample.path, sample.valid, render(&errors));
        }
        let errors = parse_unit(&file, &sample.invalid, &FakeUsers::new())
            .expect_err(&format!("{}: a mapping is accepted:\n{}", sample.path, sample.invalid));
        let at_key = |d: &Diagnostic| {
            d.message.starts_with(&format!("{}:", sample.path))
                || d.message.starts_with(&format!("{}.", sample.path))
        };
        assert!(errors.iter().any(at_key), "{}: not reported at the key:\n{}", sample.path, render(&errors));
    }
}

#[test]
fn a_key_missing_from_the_table_is_unknown() {
    assert!(keys::find(keys::UNIT, "autostart").is_none());
    assert_eq!(errors("command: x\nautostart: true\n"), "web.yaml:2:1: unknown key 'autostart'");
    let nested = errors("command: x\nlog: {rotate: daily}\n");
    assert!(nested.starts_with("web.yaml:2:7: log: unknown key 'rotate'"), "{nested}");
    let hint = parse("command: x\nlog: {rotate: daily}\n").unwrap_err()[0].hint.clone().unwrap_or_default();
    assert_eq!(hint, format!("known keys: {}", keys::names(keys::LOG_KEYS).join(", ")));
}

#[test]
fn keys_for_some_types_are_refused_with_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    let restricted: Vec<&keys::Key> = keys::UNIT.iter().filter(|k| !k.types.is_empty()).collect();
    assert!(restricted.len() >= 4, "ready_check, watchdog, notify_fd, timeout");
    for key in restricted {
        for t in keys::SERVICE_TYPE.choices().iter().filter(|t| !key.types.contains(t)) {
            let text = format!("command: x\ntype: {t}\n{}: {}\n", key.name, key.example);
            let errors = parse_unit(&file, &text, &FakeUsers::new()).expect_err(&text);
            assert!(
                errors.iter().any(|d| d.message.starts_with(&format!("{}: ", key.name))),
                "{text}{}",
                render(&errors)
            );
        }
    }
}

#[test]
fn env_file_nul_values_are_load_errors_and_many_variables_load_fast() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("a.env");
    fs::write(&env, "A=1\nB=x\0y\n").unwrap();
    fs::write(dir.path().join("a.yaml"), format!("command: x\nenv_file: {}\n", env.display())).unwrap();
    let errors = load_dir(dir.path(), &FakeUsers::new()).unwrap_err();
    assert_eq!(
        errors[0].to_string().lines().next().unwrap(),
        format!("{}:2:3: B: the value contains a NUL byte", env.display())
    );
    // 80,000 assignments of 40,000 variables: the later value wins, each
    // once, in linear time (it was quadratic: 18.6 s for 80,000).
    let mut text = String::new();
    for i in 0..80_000 {
        text.push_str(&format!("V{}={}\n", i % 40_000, i / 40_000));
    }
    fs::write(&env, text).unwrap();
    let units = load_dir(dir.path(), &FakeUsers::new()).unwrap();
    assert_eq!(units[0].environment.len(), 40_000);
    assert_eq!(units[0].environment[0], ("V0".to_string(), "1".to_string()));
    assert_eq!(units[0].environment[39_999], ("V39999".to_string(), "1".to_string()));
}

#[test]
fn contradictory_sandbox_paths_are_load_errors() {
    let all_root =
        "command: x\nsandbox:\n  read_only_paths: [/]\n  read_write_paths: [/]\n  inaccessible_paths: [/]\n";
    let e = errors(all_root);
    assert!(e.contains("sandbox.inaccessible_paths: / cannot be hidden"), "{e}");
    assert!(e.contains("sandbox.read_write_paths: / is also in read_only_paths"), "{e}");
    assert!(e.contains("sandbox.inaccessible_paths: / is also in read_only_paths"), "{e}");
    assert_eq!(
        errors("command: x\nsandbox:\n  read_only_paths: [/]\n  inaccessible_paths: [/srv]\n  read_write_paths: [/srv/data]\n"),
        "web.yaml:5:21: sandbox.read_write_paths: /srv/data is under inaccessible path /srv, which hides it"
    );
    let landlock = "command: x\nsandbox:\n  filesystem: landlock\n  read_only_paths: [/]\n  inaccessible_paths: [/home]\n";
    assert!(errors(landlock).contains("Landlock can only grant access"), "{}", errors(landlock));
    // The usual combination is fine.
    ok("command: x\nsandbox:\n  read_only_paths: [/]\n  read_write_paths: [/srv/data]\n  inaccessible_paths: [/home, /root]\n");
}

#[test]
fn stdin_is_null_a_file_or_data() {
    assert_eq!(ok("command: x\n").stdin, crate::unit::Stdin::Null);
    assert_eq!(ok("command: x\nstdin: null\n").stdin, crate::unit::Stdin::Null);
    assert_eq!(ok("command: x\nstdin: ~\n").stdin, crate::unit::Stdin::Null);
    assert_eq!(
        ok("command: x\nstdin: {file: in/put.txt}\n").stdin,
        crate::unit::Stdin::File(PathBuf::from("in/put.txt")),
        "relative to the unit file's folder (here: none)"
    );
    let abs = parse_unit(
        Path::new("/etc/tend/units/web.yaml"),
        "command: x\nstdin: {file: q.sql}\n",
        &FakeUsers::new(),
    );
    assert_eq!(abs.unwrap().stdin, crate::unit::Stdin::File(PathBuf::from("/etc/tend/units/q.sql")));
    assert_eq!(
        ok("command: x\nstdin: {data: \"SELECT 1;\\n\"}\n").stdin,
        crate::unit::Stdin::Data("SELECT 1;\n".into())
    );
    assert_eq!(
        ok("command: x\nstdin:\n  data: |\n    a\n    b\n").stdin,
        crate::unit::Stdin::Data("a\nb\n".into())
    );
    assert_eq!(ok("command: x\nstdin: {data: 42}\n").stdin, crate::unit::Stdin::Data("42".into()));
}

#[test]
fn stdin_errors() {
    assert_eq!(
        errors("command: x\nstdin:\n"),
        "web.yaml:2:6: stdin: expected null, or a mapping such as {file: input.txt} or {data: \"text\"}, got nothing"
    );
    assert_eq!(
        errors("command: x\nstdin: /dev/zero\n"),
        "web.yaml:2:8: stdin: expected null, or a mapping such as {file: input.txt} or {data: \"text\"}, got '/dev/zero'"
    );
    assert_eq!(
        errors("command: x\nstdin: {file: a, data: b}\n"),
        "web.yaml:2:18: stdin: file and data are both set (it is one or the other)"
    );
    assert_eq!(errors("command: x\nstdin: {}\n"), "web.yaml:2:8: stdin: needs file or data");
    assert_eq!(
        errors("command: x\nstdin: {fil: a}\n"),
        "web.yaml:2:9: stdin: unknown key 'fil' (did you mean 'file'?)"
    );
    assert_eq!(errors("command: x\nstdin: {file: ''}\n"), "web.yaml:2:15: stdin.file: path is empty");
    assert_eq!(
        errors("command: x\nstdin: {data: [a]}\n"),
        "web.yaml:2:15: stdin.data: expected a string, got a list"
    );
}

#[test]
fn stdout_and_stderr_name_a_consumer() {
    let spec = ok("command: x\nstdout: {to: shipper}\nstderr:\n  to: errors@2\n");
    assert_eq!(spec.stdout_to.as_ref().map(|t| t.name.as_str()), Some("shipper"));
    assert_eq!(
        spec.stderr_to.as_ref().map(|t| (t.name.as_str(), t.at.line, t.at.column)),
        Some(("errors@2", 4, 7))
    );
    assert_eq!(ok("command: x\n").stdout_to, None);
    assert_eq!(errors("command: x\nstdout: {}\n"), "web.yaml:2:9: stdout: needs to: NAME");
    assert_eq!(
        errors("command: x\nstdout: shipper\n"),
        "web.yaml:2:9: stdout: expected a mapping such as {to: shipper}, got 'shipper'"
    );
    assert_eq!(
        errors("command: x\nstderr: {to: web}\n"),
        "web.yaml:2:14: stderr.to: web cannot pipe into itself"
    );
    assert_eq!(
        errors("command: x\nstdout: {to: Big Name}\n"),
        "web.yaml:2:14: stdout.to: 'Big Name' is not a unit name"
    );
    assert_eq!(errors("command: x\nstdout: {to: a, file: b}\n"), "web.yaml:2:17: stdout: unknown key 'file'");
}

#[test]
fn runtime_max_is_a_positive_duration_and_not_for_oneshots() {
    assert_eq!(ok("command: x\nruntime_max: 24h\n").runtime_max, Some(Duration::from_secs(86_400)));
    assert_eq!(
        ok("command: x\ntype: notify\nruntime_max: 90m\n").runtime_max,
        Some(Duration::from_secs(5_400))
    );
    assert_eq!(errors("command: x\nruntime_max: 0s\n"), "web.yaml:2:14: runtime_max: must be longer than 0s");
    assert_eq!(
        errors("command: x\ntype: oneshot\nruntime_max: 1h\n"),
        "web.yaml:3:1: runtime_max: not for type: oneshot (a oneshot runs to completion)"
    );
}
