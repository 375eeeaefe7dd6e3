//! The table of unit file keys: each key's name, kind of value, default,
//! description and an example. It is the one source of truth about what a
//! unit file may say: the loader (`load.rs`) takes from it the keys it
//! knows (an unknown key is an error), the choices, the integer bounds and
//! the defaults it applies; `tend schema` (JSON Schema) and `tend.unit(5)`
//! are generated from it. A key added to the loader therefore appears in
//! both, and the tests in `load_tests.rs` and `tests/schema.rs` check that
//! the loader and the schema agree on every key's example and on a value of
//! the wrong kind.
//!
//! Pure data and text: no I/O. The checks themselves (what `10s` means, user
//! lookups, cross-key rules) stay in `load.rs` and `values.rs`.

use std::time::Duration;

/// One key of a unit file, or of a mapping inside one (`log.file`).
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub value: Value,
    pub default: KeyDefault,
    /// What it does, in a sentence or a few (man page, schema description).
    pub doc: &'static str,
    /// A valid value as YAML flow text, e.g. `10s` or `{soft: 1024, hard: 4096}`.
    pub example: &'static str,
    /// Only with these `type`s (empty: any type).
    pub types: &'static [&'static str],
    /// Sibling keys it needs (`log.max_size` needs `log.file`).
    pub requires: &'static [&'static str],
    /// `null` is a value of its own (`stdin: null`), not an empty key.
    pub nullable: bool,
}

/// The kind of value a key takes.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// Any string.
    Text,
    /// `true` or `false`.
    Flag,
    /// An integer in `min..=max`.
    Integer { min: i64, max: i64 },
    /// `250ms`, `10s`, `1m30s`; `positive`: more than zero.
    Duration { positive: bool },
    /// Bytes: a number, or `64M` (K, M, G, T: powers of 1024); at least `min`.
    Size { min: u64 },
    /// A program and its arguments: a list, or one string split into words.
    Command,
    /// A path, relative to the unit file's folder.
    Path,
    /// A path or a list of paths, relative to the unit file's folder.
    Paths,
    /// A list of absolute paths (in the service's view).
    AbsolutePaths,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A signal: `SIGTERM`, `term`, `15`, `SIGRTMIN+2`.
    Signal,
    /// A user or group: a name or a number.
    NameOrId,
    /// A list of group names or numbers.
    NamesOrIds,
    /// An octal string: `"0027"`.
    Umask,
    /// A list of exit statuses 0 to 255.
    ExitCodes,
    /// `NAME: value` mapping, or a list of `NAME=value`.
    Environment,
    /// Resource → limit (a number, `unlimited`, or `{soft, hard}`).
    Rlimits,
    /// A list of unit names, or unit name → condition.
    DependsOn { conditions: &'static [&'static str] },
    /// Capability names, with or without `CAP_`.
    Capabilities,
    /// A host name.
    Hostname { max_len: usize },
    /// A number of CPU cores (`0.5`, `2`), above zero and at most `max`.
    Cores { max: f64 },
    /// `host:port`.
    TcpAddress,
    /// `http://host[:port][/path]`.
    HttpUrl,
    /// A number of instances from 1 to `max`, or a list of instance names.
    Instances { max: i64 },
    /// A mapping with these keys; `one_of`: exactly one of these is set.
    Table { keys: &'static [Key], one_of: &'static [&'static str] },
}

/// What applies when a key is left out.
#[derive(Debug, Clone, Copy)]
pub enum KeyDefault {
    /// Nothing: the feature is off (or, for `command`, the key is required).
    None,
    /// Said in words, e.g. "tend's own user".
    Note(&'static str),
    Flag(bool),
    Integer(i64),
    Duration(Duration),
    Word(&'static str),
    Signal(i32),
    Integers(&'static [i64]),
}

impl Key {
    /// The bounds of an `Integer` key. Panics (at compile time in a const)
    /// for another kind.
    pub const fn range(&self) -> (i64, i64) {
        match self.value {
            Value::Integer { min, max } => (min, max),
            _ => panic!("not an integer key"),
        }
    }

    /// The words of a `Choice` key (or the conditions of `depends_on`).
    pub const fn choices(&self) -> &'static [&'static str] {
        match self.value {
            Value::Choice(words) => words,
            Value::DependsOn { conditions } => conditions,
            _ => panic!("not a choice key"),
        }
    }

    /// The keys of a `Table` key.
    pub const fn keys(&self) -> &'static [Key] {
        match self.value {
            Value::Table { keys, .. } => keys,
            _ => panic!("not a table key"),
        }
    }

    /// The default of a `Duration` key.
    pub const fn default_duration(&self) -> Duration {
        match self.default {
            KeyDefault::Duration(d) => d,
            _ => panic!("no duration default"),
        }
    }

    /// The default of an `Integer` key.
    pub const fn default_integer(&self) -> i64 {
        match self.default {
            KeyDefault::Integer(n) => n,
            _ => panic!("no integer default"),
        }
    }
}

/// Exit statuses (success_exit_codes) go from 0 to 255 (wait(2): 8 bits).
pub const EXIT_STATUS_MIN: i64 = 0;
pub const EXIT_STATUS_MAX: i64 = 255;

impl Value {
    /// The kind of value in a few words, for the man page and the schema.
    pub fn describe(&self) -> String {
        match self {
            Value::Text => "a string".into(),
            Value::Flag => "true or false".into(),
            Value::Integer { min, max } if *max == u32::MAX as i64 => format!("an integer, at least {min}"),
            Value::Integer { min, max } => format!("an integer from {min} to {max}"),
            Value::Duration { positive: false } => "a duration: 250ms, 10s, 1m30s, 2h".into(),
            Value::Duration { positive: true } => "a duration above zero: 250ms, 10s, 1m30s, 2h".into(),
            Value::Size { .. } => "a size in bytes: 4096, 512K, 64M, 1G (powers of 1024)".into(),
            Value::Command => "a list of strings, or one string split into words like a shell".into(),
            Value::Path => "a path".into(),
            Value::Paths => "a path or a list of paths".into(),
            Value::AbsolutePaths => "a list of absolute paths".into(),
            Value::Choice(words) => format!("one of {}", words.join(", ")),
            Value::Signal => "a signal: SIGTERM, TERM, 15, SIGRTMIN+2".into(),
            Value::NameOrId => "a name or a number".into(),
            Value::NamesOrIds => "a list of names or numbers".into(),
            Value::Umask => "an octal string such as \"0027\"".into(),
            Value::ExitCodes => {
                format!("a list of exit statuses from {EXIT_STATUS_MIN} to {EXIT_STATUS_MAX}")
            }
            Value::Environment => "a mapping of NAME: value, or a list of NAME=value".into(),
            Value::Rlimits => "a mapping of resource to a number, unlimited, or {soft: N, hard: N}".into(),
            Value::DependsOn { conditions } => {
                format!("a list of unit names, or a mapping of unit name to {}", conditions.join(", "))
            }
            Value::Capabilities => "a list of capability names".into(),
            Value::Hostname { .. } => "a host name".into(),
            Value::Cores { .. } => "a number of CPU cores, such as 0.5 or 2".into(),
            Value::TcpAddress => "host:port".into(),
            Value::HttpUrl => "an http:// URL".into(),
            Value::Instances { max } => {
                format!("a number from 1 to {max}, or a list of instance names (a-z, 0-9, '_', '.', '-')")
            }
            Value::Table { .. } => "a mapping".into(),
        }
    }
}

impl KeyDefault {
    /// The default as a unit file would spell it, or in words; `None` when
    /// leaving the key out just means "not set".
    pub fn describe(&self) -> Option<String> {
        Some(match self {
            KeyDefault::None => return None,
            KeyDefault::Note(text) => (*text).to_owned(),
            KeyDefault::Flag(b) => b.to_string(),
            KeyDefault::Integer(n) => n.to_string(),
            KeyDefault::Duration(d) => super::values::format_duration(*d),
            KeyDefault::Word(w) => (*w).to_owned(),
            KeyDefault::Signal(n) => super::values::signal_name(*n),
            KeyDefault::Integers(list) => {
                format!("[{}]", list.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))
            }
        })
    }
}

/// The key called `name` in `keys`.
pub fn find(keys: &'static [Key], name: &str) -> Option<&'static Key> {
    keys.iter().find(|k| k.name == name)
}

/// The names of `keys`, in table order.
pub fn names(keys: &[Key]) -> Vec<&'static str> {
    keys.iter().map(|k| k.name).collect()
}

/// A key with no default, no type restriction and nothing required.
const fn key(name: &'static str, value: Value, doc: &'static str, example: &'static str) -> Key {
    Key { name, value, default: KeyDefault::None, doc, example, types: &[], requires: &[], nullable: false }
}

const fn nullable(mut key: Key) -> Key {
    key.nullable = true;
    key
}

const fn with_default(mut key: Key, default: KeyDefault) -> Key {
    key.default = default;
    key
}

const fn only_for(mut key: Key, types: &'static [&'static str]) -> Key {
    key.types = types;
    key
}

const fn requiring(mut key: Key, requires: &'static [&'static str]) -> Key {
    key.requires = requires;
    key
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---------------------------------------------------------------- restarts and stopping

pub const RESTART_DELAY: Key = with_default(
    key(
        "restart_delay",
        Value::Duration { positive: false },
        "How long to wait before restarting. It doubles after each quick exit (one that ran less than 10s), up to restart_delay_max, and is back to this after 10s of running. A delay above 30s raises the default restart_delay_max to it.",
        "1s",
    ),
    KeyDefault::Duration(ms(100)),
);

pub const RESTART_DELAY_MAX: Key = with_default(
    key(
        "restart_delay_max",
        Value::Duration { positive: false },
        "The longest wait between restarts (at least restart_delay).",
        "1m",
    ),
    KeyDefault::Duration(secs(30)),
);

pub const START_LIMIT_BURST: Key = with_default(
    key(
        "burst",
        Value::Integer { min: 1, max: u32::MAX as i64 },
        "How many failed starts are allowed within interval.",
        "5",
    ),
    KeyDefault::Integer(5),
);

pub const START_LIMIT_INTERVAL: Key = with_default(
    key(
        "interval",
        Value::Duration { positive: false },
        "The window in which failed starts are counted.",
        "60s",
    ),
    KeyDefault::Duration(secs(60)),
);

pub const START_LIMIT: Key = key(
    "start_limit",
    Value::Table { keys: &[START_LIMIT_BURST, START_LIMIT_INTERVAL], one_of: &[] },
    "More than burst failures within interval: the service is failed and stays down until started by hand (tend start NAME).",
    "{burst: 5, interval: 60s}",
);

pub const RESTART: Key = with_default(
    key(
        "restart",
        Value::Choice(&["always", "on-failure", "never"]),
        "When to restart the service after it exits: always, on-failure (an exit status not in success_exit_codes, or a signal), or never.",
        "always",
    ),
    KeyDefault::Note("on-failure; never for type: oneshot"),
);

pub const STOP_SIGNAL: Key = with_default(
    key(
        "stop_signal",
        Value::Signal,
        "The signal that asks the service to stop, sent to its whole process group.",
        "SIGINT",
    ),
    KeyDefault::Signal(15),
);

pub const STOP_TIMEOUT: Key = with_default(
    key(
        "stop_timeout",
        Value::Duration { positive: false },
        "How long a stopping service may take after the stop signal before SIGKILL ends its whole process group (and cgroup).",
        "30s",
    ),
    KeyDefault::Duration(secs(10)),
);

// ---------------------------------------------------------------- log

pub const LOG_KEEP: Key = with_default(
    key(
        "keep",
        Value::Integer { min: 0, max: 1000 },
        "How many rotated files to keep (FILE.1 … FILE.N).",
        "5",
    ),
    KeyDefault::Integer(5),
);

pub const SYSLOG_FACILITY: Key = with_default(
    key(
        "syslog_facility",
        Value::Choice(super::values::SYSLOG_FACILITIES),
        "The syslog facility of the service's lines.",
        "local0",
    ),
    KeyDefault::Word("daemon"),
);

pub const LOG_KEYS: &[Key] = &[
    key(
        "file",
        Value::Path,
        "Append the service's output to this file (relative to the unit file's folder). In a unit with instances, %i is the instance name: each instance its own file.",
        "web.log",
    ),
    requiring(
        key(
            "max_size",
            Value::Size { min: 1 },
            "Rotate the file when it would grow past this size: FILE becomes FILE.1, and so on. Only between lines.",
            "10M",
        ),
        &["file"],
    ),
    LOG_KEEP,
    with_default(
        key("timestamps", Value::Flag, "Start each line in the file with an RFC 3339 timestamp.", "true"),
        KeyDefault::Flag(false),
    ),
    with_default(
        key(
            "syslog",
            Value::Flag,
            "Also send each line to syslog (/dev/log), tagged with the service's name: stderr at warning, stdout at info.",
            "true",
        ),
        KeyDefault::Flag(false),
    ),
    SYSLOG_FACILITY,
];

// ---------------------------------------------------------------- standard streams

pub const STDIN: Key = with_default(
    nullable(key(
        "stdin",
        Value::Table {
            keys: &[
                key(
                    "file",
                    Value::Path,
                    "Read this file (relative to the unit file's folder), opened anew at each start, as the service's user after its sandbox is set up; it must be a regular file. A file that cannot be opened is a failed start that names it.",
                    "input.txt",
                ),
                key("data", Value::Text, "Read this text, then end-of-file.", "\"SELECT 1;\\n\""),
            ],
            one_of: &["file", "data"],
        },
        "The service's standard input: null (/dev/null), {file: PATH} or {data: TEXT}. A service another one pipes into (stdout: {to: NAME}) reads that pipe instead, and may not set stdin.",
        "{file: input.txt}",
    )),
    KeyDefault::Note("null: /dev/null"),
);

/// `stdout:` and `stderr:`.
const PIPE_TO: Key = key(
    "to",
    Value::Text,
    "The service whose standard input this stream becomes (an instance, NAME@INSTANCE, for a pool).",
    "shipper",
);

pub const STDOUT: Key = with_default(
    key(
        "stdout",
        Value::Table { keys: &[PIPE_TO], one_of: &["to"] },
        "{to: NAME}: the service's stdout goes into the stdin of service NAME through a pipe tend holds open across restarts of either, instead of to tend (its output, log file and tend logs). NAME starts first and stops last.",
        "{to: shipper}",
    ),
    KeyDefault::Note("tend reads it"),
);

pub const STDERR: Key = with_default(
    key(
        "stderr",
        Value::Table { keys: &[PIPE_TO], one_of: &["to"] },
        "{to: NAME}: as stdout, for the service's stderr.",
        "{to: shipper}",
    ),
    KeyDefault::Note("tend reads it"),
);

// ---------------------------------------------------------------- readiness

pub const SERVICE_TYPE: Key = with_default(
    key(
        "type",
        Value::Choice(&["simple", "notify", "oneshot"]),
        "simple: ready once it runs (or once ready_check succeeds); notify: ready when it sends READY=1 to NOTIFY_SOCKET (sd_notify(3)), or a line on notify_fd; oneshot: runs to completion, and is completed when it exits with a success status.",
        "notify",
    ),
    KeyDefault::Word("simple"),
);

pub const DEPENDS_ON: Key = key(
    "depends_on",
    Value::DependsOn { conditions: &["started", "ready", "completed"] },
    "Units to start first: a list of names (each must have started), or a mapping of name to condition: started (its process runs), ready, or completed (a oneshot that exited with a success status). Dependents are stopped first.",
    "{db: ready, migrate: completed}",
);

const CHECK_EXEC: Key = key(
    "exec",
    Value::Command,
    "Run this command (as the service: same user, environment, cgroup and sandbox); exit status 0 is success.",
    "[pg_isready, -h, 127.0.0.1]",
);
const CHECK_TCP: Key = key(
    "tcp",
    Value::TcpAddress,
    "Success when a TCP connection to host:port is accepted.",
    "127.0.0.1:5432",
);
const CHECK_HTTP: Key = key(
    "http",
    Value::HttpUrl,
    "Success when a GET of this http:// URL answers with a 2xx status.",
    "http://127.0.0.1:8080/health",
);
pub const CHECK_TIMEOUT: Key = with_default(
    key("timeout", Value::Duration { positive: true }, "How long one try may take.", "1s"),
    KeyDefault::Duration(secs(2)),
);
pub const READY_INTERVAL: Key = with_default(
    key("interval", Value::Duration { positive: true }, "How long between tries.", "1s"),
    KeyDefault::Duration(ms(500)),
);
pub const HEALTH_INTERVAL: Key = with_default(
    key("interval", Value::Duration { positive: true }, "How long between checks.", "30s"),
    KeyDefault::Duration(secs(10)),
);
pub const HEALTH_RETRIES: Key = with_default(
    key(
        "retries",
        Value::Integer { min: 1, max: u32::MAX as i64 },
        "How many failures in a row make the service unhealthy: it is then restarted.",
        "3",
    ),
    KeyDefault::Integer(3),
);

/// The one-of keys of both checks.
const CHECK_KINDS: &[&str] = &["exec", "tcp", "http"];

pub const READY_CHECK: Key = only_for(
    key(
        "ready_check",
        Value::Table { keys: &[CHECK_EXEC, CHECK_TCP, CHECK_HTTP, READY_INTERVAL, CHECK_TIMEOUT], one_of: CHECK_KINDS },
        "The service is starting until this check first succeeds, then ready. It is tried every interval until start_timeout.",
        "{tcp: 127.0.0.1:5432, interval: 1s}",
    ),
    &["simple"],
);

pub const HEALTH_CHECK: Key = key(
    "health_check",
    Value::Table {
        keys: &[CHECK_EXEC, CHECK_TCP, CHECK_HTTP, HEALTH_INTERVAL, CHECK_TIMEOUT, HEALTH_RETRIES],
        one_of: CHECK_KINDS,
    },
    "Liveness while the service runs: after retries failures in a row it is restarted.",
    "{http: http://127.0.0.1:8080/health, interval: 30s}",
);

pub const NOTIFY_FD: Key = only_for(
    key(
        "notify_fd",
        Value::Integer { min: 3, max: 1023 },
        "Readiness by the s6 protocol instead of NOTIFY_SOCKET: the service writes a line to this descriptor.",
        "3",
    ),
    &["notify"],
);

// ---------------------------------------------------------------- sandbox and resources

pub const FILESYSTEM: Key = with_default(
    key(
        "filesystem",
        Value::Choice(&["auto", "mounts", "landlock"]),
        "How the path rules are enforced: mounts (a private mount namespace; needs CAP_SYS_ADMIN), landlock (without privileges; no private_tmp), or auto (mounts when possible, else landlock).",
        "auto",
    ),
    KeyDefault::Word("auto"),
);

pub const PROTECT_PROC: Key = with_default(
    key(
        "protect_proc",
        Value::Choice(&["default", "invisible", "noaccess", "ptraceable"]),
        "Mount a /proc of the service's own with hidepid= (as systemd's ProtectProc=): invisible hides other users' processes, noaccess shows them but not their details, ptraceable shows only what the service may ptrace. Processes of the service's own user stay visible: only private_pids hides those. Needs CAP_SYS_ADMIN.",
        "invisible",
    ),
    KeyDefault::Word("default"),
);

pub const RUNTIME_MAX: Key = only_for(
    key(
        "runtime_max",
        Value::Duration { positive: true },
        "Once the service has run this long (from its start), it is stopped gracefully (stop signal, stop_timeout, SIGKILL), with the reason runtime_max reached, and the restart policy decides what follows: always and on-failure start it again after restart_delay (a planned recycle, never counted toward start_limit), never leaves it failed. For recycling a worker that leaks.",
        "24h",
    ),
    &["simple", "notify"],
);

pub const HOSTNAME_MAX: usize = 64;

pub const SANDBOX_KEYS: &[Key] = &[
    with_default(
        key(
            "no_new_privileges",
            Value::Flag,
            "Set no_new_privs (PR_SET_NO_NEW_PRIVS): setuid programs and file capabilities cannot raise privileges.",
            "true",
        ),
        KeyDefault::Flag(false),
    ),
    with_default(
        key(
            "capabilities",
            Value::Capabilities,
            "The only capabilities the service can ever have (capabilities(7) names, with or without CAP_). For a service running as another user they are kept across the change of user, as ambient capabilities. An empty list: none.",
            "[NET_BIND_SERVICE]",
        ),
        KeyDefault::Note("not restricted"),
    ),
    with_default(
        key("private_tmp", Value::Flag, "Give the service its own empty /tmp and /var/tmp.", "true"),
        KeyDefault::Flag(false),
    ),
    key(
        "read_only_paths",
        Value::AbsolutePaths,
        "Make these paths, and every mount under them, read-only for the service.",
        "[/]",
    ),
    key(
        "read_write_paths",
        Value::AbsolutePaths,
        "Exceptions under read_only_paths that stay writable.",
        "[/var/lib/web]",
    ),
    key("inaccessible_paths", Value::AbsolutePaths, "Hide these paths from the service.", "[/root, /home]"),
    with_default(
        key(
            "private_network",
            Value::Flag,
            "Run in a new network namespace with only the loopback interface, up.",
            "true",
        ),
        KeyDefault::Flag(false),
    ),
    key(
        "hostname",
        Value::Hostname { max_len: HOSTNAME_MAX },
        "Run in a new UTS namespace with this host name.",
        "sandbox",
    ),
    with_default(
        key("private_ipc", Value::Flag, "Run in a new IPC namespace.", "true"),
        KeyDefault::Flag(false),
    ),
    with_default(
        key(
            "private_pids",
            Value::Flag,
            "Run in a new PID namespace with a /proc of its own: the service sees only its own processes, and none can reach another's files through /proc/PID/root. A minimal reaper of tend's is PID 1 there (forwards signals, reaps orphans, passes the exit status on as 128+N for a signal); the service's main process is PID 2. When the main process ends, everything left in the namespace ends with it. Needs CAP_SYS_ADMIN.",
            "true",
        ),
        KeyDefault::Flag(false),
    ),
    PROTECT_PROC,
    FILESYSTEM,
];

/// PID_MAX_LIMIT on 64-bit Linux: cgroup `pids.max` refuses more.
pub const PIDS_MAX_LIMIT: i64 = 4_194_304;
/// cgroup v2 refuses a memory.max below a page or so; 1M is a useful floor.
pub const MEMORY_MAX_MIN: u64 = 1 << 20;
pub const CPU_MAX_CORES: f64 = 1_000_000.0;

pub const PIDS_MAX: Key = key(
    "pids_max",
    Value::Integer { min: 1, max: PIDS_MAX_LIMIT },
    "The most processes and threads the service may have at once (pids.max).",
    "200",
);
pub const CPU_WEIGHT: Key = key(
    "cpu_weight",
    Value::Integer { min: 1, max: 10_000 },
    "Its share of CPU time against other services when the CPU is busy (cpu.weight; 100 is the kernel's default).",
    "100",
);

pub const RESOURCES_KEYS: &[Key] = &[
    key(
        "memory_max",
        Value::Size { min: MEMORY_MAX_MIN },
        "The most memory the service may use (memory.max, at least 1M); past it the kernel's OOM killer ends it, which tend reports.",
        "256M",
    ),
    PIDS_MAX,
    key(
        "cpu_max",
        Value::Cores { max: CPU_MAX_CORES },
        "The most CPU time it may use, in cores (cpu.max): 0.5 is half of one core.",
        "0.5",
    ),
    CPU_WEIGHT,
    with_default(
        key(
            "accounting",
            Value::Flag,
            "Report memory_bytes and cpu_usec in `status` even without a memory or CPU limit. Only matters where the memory or cpuacct controller is a cgroup v1 hierarchy (always on a host without cgroup2): joining it costs each start a little, so by default a service without limits joins only the cgroup that stops it. Never a reason to refuse the unit.",
            "true",
        ),
        KeyDefault::Flag(false),
    ),
];

// ---------------------------------------------------------------- the whole file

/// `instances`: a pool of services from one unit.
pub const INSTANCES: Key = key(
    "instances",
    Value::Instances { max: tend_core::pool::MAX_INSTANCES as i64 },
    "Run the unit as a pool: N services NAME@1 … NAME@N, or one per name in a list (NAME@eu, NAME@us), each a full service (its own process, restarts, backoff, start limit, log prefix and cgroup). %i in command, environment, working_dir and log.file is the instance name (%% a literal %), and TEND_INSTANCE is set. A command given the unit's name acts on every instance; `tend scale NAME N` changes the count at run time.",
    "4",
);

pub const NICE: Key = key(
    "nice",
    Value::Integer { min: -20, max: 19 },
    "The scheduling niceness, -20 (most favoured) to 19.",
    "5",
);

/// Every key of a unit file, in the order of the documentation.
pub const UNIT: &[Key] = &[
    key("description", Value::Text, "A short description of the service.", "front end"),
    key(
        "command",
        Value::Command,
        "Required. The program and its arguments: a list, or one string split into words as a shell would (quotes and backslashes; no variables, globs or operators: it is never run by a shell). A program name without a slash is looked up in PATH. In a unit with instances, %i is the instance name.",
        // A program every machine has: the samples built from these
        // examples must pass `tend check`, which looks the program up.
        "[sleep, infinity]",
    ),
    INSTANCES,
    with_default(
        key(
            "enabled",
            Value::Flag,
            "false: the unit is loaded and checked, but `tend up` does not start it (`tend start NAME` does, and so does a unit that is started and depends on it).",
            "false",
        ),
        KeyDefault::Flag(true),
    ),
    with_default(
        key(
            "working_dir",
            Value::Path,
            "The working directory; a relative path is relative to the unit file's folder. In a unit with instances, %i is the instance name.",
            "/srv/web",
        ),
        KeyDefault::Note("tend's working directory"),
    ),
    key(
        "environment",
        Value::Environment,
        "Variables to set, as a mapping of NAME: value or a list of NAME=value. Applied after env_file; a variable set twice keeps its last value. Values are taken as written: no $VAR expansion (in a unit with instances, %i is the instance name; env_file values are taken as they are).",
        "{LISTEN: \"127.0.0.1:8080\", WORKERS: 4}",
    ),
    key(
        "env_file",
        Value::Paths,
        "Files of NAME=value lines (# comments, optional quotes and `export `), read when the unit is loaded; relative to the unit file's folder.",
        "web.env",
    ),
    with_default(
        key(
            "clear_env",
            Value::Flag,
            "Start from an empty environment (plus a default PATH, and HOME, USER and LOGNAME for a user) instead of tend's own.",
            "true",
        ),
        KeyDefault::Flag(false),
    ),
    with_default(
        key(
            "user",
            Value::NameOrId,
            "Run as this user, a name or a uid. HOME, USER and LOGNAME come from its passwd entry. A uid without one needs group.",
            "nobody",
        ),
        KeyDefault::Note("tend's own user"),
    ),
    with_default(
        key("group", Value::NameOrId, "Run with this primary group, a name or a gid.", "nogroup"),
        KeyDefault::Note("the user's primary group"),
    ),
    with_default(
        key("supplementary_groups", Value::NamesOrIds, "The supplementary groups, names or gids.", "[nogroup]"),
        KeyDefault::Note("the user's groups in the group database"),
    ),
    with_default(
        key("umask", Value::Umask, "The file mode creation mask, an octal string.", "\"0027\""),
        KeyDefault::Note("tend's umask"),
    ),
    with_default(NICE, KeyDefault::Note("tend's niceness")),
    key(
        "rlimits",
        Value::Rlimits,
        "Resource limits (setrlimit(2)): resource: limit, where a limit is a number, unlimited, or {soft: N, hard: N}; byte-sized resources take sizes such as 64M.",
        "{nofile: 65536, core: 0}",
    ),
    with_default(
        key(
            "process_group",
            Value::Flag,
            "Run in a session and process group of its own, so that the stop signal reaches its children too.",
            "false",
        ),
        KeyDefault::Flag(true),
    ),
    RESTART,
    with_default(
        key(
            "success_exit_codes",
            Value::ExitCodes,
            "The exit statuses that count as success (for restart: on-failure and for oneshot completion).",
            "[0, 143]",
        ),
        KeyDefault::Integers(&[0]),
    ),
    RESTART_DELAY,
    RESTART_DELAY_MAX,
    START_LIMIT,
    STOP_SIGNAL,
    STOP_TIMEOUT,
    with_default(
        key(
            "critical",
            Value::Flag,
            "When this service ends for good, tend stops every other service and exits with its status.",
            "true",
        ),
        KeyDefault::Flag(false),
    ),
    key("log", Value::Table { keys: LOG_KEYS, one_of: &[] }, "Where the service's output goes besides tend's own output and tend logs.", "{file: web.log, max_size: 10M}"),
    STDIN,
    STDOUT,
    STDERR,
    SERVICE_TYPE,
    DEPENDS_ON,
    READY_CHECK,
    with_default(
        key(
            "start_timeout",
            Value::Duration { positive: true },
            "Not ready within this time after it started: the start failed, and the restart policy applies.",
            "30s",
        ),
        KeyDefault::Note("no limit"),
    ),
    HEALTH_CHECK,
    only_for(
        key(
            "watchdog",
            Value::Duration { positive: true },
            "No WATCHDOG=1 within this time, and the service is restarted (WATCHDOG_USEC is set for it).",
            "30s",
        ),
        &["notify"],
    ),
    NOTIFY_FD,
    only_for(
        key(
            "timeout",
            Value::Duration { positive: true },
            "Still running after this time, the oneshot is stopped (stop signal, then SIGKILL) and has failed.",
            "5m",
        ),
        &["oneshot"],
    ),
    RUNTIME_MAX,
    key(
        "sandbox",
        Value::Table { keys: SANDBOX_KEYS, one_of: &[] },
        "Confine the service: capabilities, no_new_privs, namespaces, path rules.",
        "{no_new_privileges: true, private_tmp: true}",
    ),
    key(
        "resources",
        Value::Table { keys: RESOURCES_KEYS, one_of: &[] },
        "cgroup limits for the service and everything it starts. A unit with resources fails to load where tend cannot use cgroups.",
        "{memory_max: 256M, pids_max: 200}",
    ),
];

/// For tests of the loader and of the schema: for every key, nested ones
/// included, a whole unit file that sets it to its example, and one that
/// sets it to a value of the wrong kind (a mapping with an unknown key,
/// which no key accepts). The unit files refer to `web.env` and write
/// nothing else; `path` is the dotted key (`log.max_size`).
#[doc(hidden)]
pub struct Sample {
    pub path: String,
    pub valid: String,
    pub invalid: String,
}

/// The units the examples name (`depends_on`), for a folder of samples.
#[doc(hidden)]
pub const SAMPLE_NEIGHBOURS: &[(&str, &str)] = &[
    ("db", "command: [sleep, infinity]\n"),
    ("migrate", "command: [\"true\"]\ntype: oneshot\n"),
    ("shipper", "command: [cat]\n"),
];

#[doc(hidden)]
pub fn samples() -> Vec<Sample> {
    const WRONG: &str = "{not_a_key: [1]}";
    let mut out = Vec::new();
    for key in UNIT {
        // What the key needs around it: a command, and its type.
        let context = |value: &str| {
            let mut text = String::new();
            if key.name != "command" {
                text.push_str("command: [sleep, infinity]\n");
            }
            if let Some(t) = key.types.first() {
                text.push_str(&format!("type: {t}\n"));
            }
            text.push_str(&format!("{}: {value}\n", key.name));
            text
        };
        out.push(Sample { path: key.name.into(), valid: context(key.example), invalid: context(WRONG) });
        let Value::Table { keys, one_of } = key.value else { continue };
        for sub in keys {
            let nested = |value: &str| {
                let mut entries = vec![format!("{}: {value}", sub.name)];
                for needed in
                    sub.requires.iter().chain(one_of.first().filter(|_| !one_of.contains(&sub.name)))
                {
                    let other = find(keys, needed).expect("a required key is in its table");
                    entries.push(format!("{}: {}", other.name, other.example));
                }
                context(&format!("{{{}}}", entries.join(", ")))
            };
            out.push(Sample {
                path: format!("{}.{}", key.name, sub.name),
                valid: nested(sub.example),
                invalid: nested(WRONG),
            });
        }
    }
    out
}
