//! `tend up`: load every unit, then supervise them until told to stop; with
//! `--detach`, do so in the background and return once the stack is up.

use crate::supervise::{run_up, SocketOptions, UpOptions};
use crate::unit::UserDb;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct UpArgs {
    pub units: Option<PathBuf>,
    /// `None`: no control socket; `Some(None)`: the default path.
    pub socket: Option<Option<PathBuf>>,
    pub socket_group: Option<String>,
    pub syslog: bool,
    /// `tend up NAME…`: only these services and what they depend on.
    pub names: Vec<String>,
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub detach: bool,
    pub log_file: Option<PathBuf>,
}

/// How long `--detach` waits for the supervisor it started to answer on
/// its socket (it answers within milliseconds unless the machine is
/// swamped; its exit is noticed at once).
const STARTUP_BOUND: Duration = Duration::from_secs(60);

pub fn up(args: UpArgs) -> i32 {
    let dir = super::units_dir(args.units.clone());
    let units = match super::load(&dir) {
        Ok(super::Loaded { units, warnings }) => {
            // Its service fails when started, as it would anyway; the
            // others start.
            for warning in &warnings {
                eprintln!("tend: warning: {warning}");
            }
            units
        }
        Err(_) => {
            eprintln!("tend: nothing was started");
            return crate::exit::USAGE;
        }
    };
    if units.is_empty() {
        eprintln!("tend: no units in {} (files named NAME.yaml)", dir.display());
        return crate::exit::USAGE;
    }
    let group = match &args.socket_group {
        None => None,
        Some(name) => {
            match name.parse::<u32>().ok().or_else(|| super::users::SystemUsers.group_by_name(name)) {
                Some(gid) => Some(gid),
                None => {
                    eprintln!("tend: --socket-group: no such group '{name}'");
                    return crate::exit::USAGE;
                }
            }
        }
    };
    let socket = args.socket.clone().map(|path| {
        let (path, private_dir) = crate::ctl::client::socket_target(path);
        SocketOptions { path, group, private_dir }
    });
    if args.detach {
        // clap keeps --detach and --no-socket apart.
        let Some(socket) = socket else { return crate::exit::USAGE };
        if socket.private_dir {
            if let Some(dir) = socket.path.parent() {
                if let Err(why) = crate::sys::paths::ensure_private_dir(dir, group) {
                    eprintln!("tend: {why}");
                    return crate::exit::FAILURE;
                }
            }
        }
        let log = args.log_file.clone().unwrap_or_else(|| socket.path.with_file_name("tend.log"));
        return detach(&args, &dir, &socket.path, &log);
    }

    run_up(
        units,
        UpOptions {
            environment: super::services_environment(),
            load_units: |dir| super::load_units(dir).map(|loaded| (loaded.units, loaded.warnings)),
            units_dir: dir,
            socket,
            syslog_events: args.syslog,
            only: args.names,
            metrics_listen: args.metrics_listen,
        },
    )
}

/// `tend up --detach`: check the units here (their errors on this
/// terminal), start `tend up` again in the background in a session of its
/// own, its output appended to `log`, wait until its socket answers, then
/// until every service wanted up has started or failed to start (the
/// supervisor decides, as for `tend wait --up`). 0 only if none failed.
fn detach(args: &UpArgs, dir: &Path, socket: &Path, log: &Path) -> i32 {
    let log_file = match open_log(log) {
        Ok(file) => file,
        Err(why) => {
            eprintln!("tend: --log-file: {why}");
            return crate::exit::FAILURE;
        }
    };
    let start_of_run = log_file.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("tend: cannot find tend's own binary to start it in the background: {err}");
            return crate::exit::FAILURE;
        }
    };
    let mut command = std::process::Command::new(exe);
    command.arg("up").arg("--units").arg(absolute(dir)).arg("--socket").arg(absolute(socket));
    if let Some(group) = &args.socket_group {
        command.arg("--socket-group").arg(group);
    }
    if args.syslog {
        command.arg("--syslog");
    }
    if let Some(listen) = &args.metrics_listen {
        command.arg("--metrics-listen").arg(listen.to_string());
    }
    // `tend up --detach NAME…`: the supervisor starts only these.
    if !args.names.is_empty() {
        command.arg("--").args(&args.names);
    }
    let stderr = match log_file.try_clone() {
        Ok(file) => file,
        Err(err) => {
            eprintln!("tend: cannot use {}: {err}", log.display());
            return crate::exit::FAILURE;
        }
    };
    command.stdin(std::process::Stdio::null()).stdout(log_file).stderr(stderr);
    let mut child = match crate::sys::spawn_in_new_session(&mut command) {
        Ok(child) => child,
        Err(err) => {
            eprintln!("tend: cannot start the supervisor in the background: {err}");
            return crate::exit::FAILURE;
        }
    };
    let pid = child.id() as i32;
    // Until its socket answers with its pid: if it exits first (another
    // supervisor runs there, the socket folder is not usable), say why.
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                show_log_since(log, start_of_run);
                eprintln!("tend: the supervisor did not start ({})", describe(status));
                return status.code().filter(|&c| c != 0).unwrap_or(crate::exit::FAILURE);
            }
            Ok(None) => {}
            Err(err) => {
                eprintln!("tend: cannot watch the supervisor (pid {pid}): {err}");
                return crate::exit::FAILURE;
            }
        }
        if answers(socket) == Some(pid) {
            break;
        }
        if started.elapsed() > STARTUP_BOUND {
            eprintln!(
                "tend: the supervisor (pid {pid}) did not answer on {} within {}s; see {}",
                socket.display(),
                STARTUP_BOUND.as_secs(),
                log.display()
            );
            return crate::exit::FAILURE;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    eprintln!("tend: supervisor running in the background (pid {pid}), its output in {}", log.display());
    let outcome =
        super::wait::ask(Some(socket.to_path_buf()), Vec::new(), crate::ctl::proto::WaitFor::Up, None, true);
    let code = super::wait::render(outcome);
    if code == crate::exit::NO_SUPERVISOR {
        show_log_since(log, start_of_run);
    }
    code
}

/// `path` from the root (the background tend keeps this folder as its
/// working directory too, but says paths as given).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The log file, appended to: created 0640 if missing, never through a
/// symbolic link, and only a regular file (checked on the descriptor).
fn open_log(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => format!("refusing {}: it is a symbolic link", path.display()),
            _ => format!(
                "cannot open {}: {}",
                path.display(),
                tend_core::text::without_os_errors(&err.to_string())
            ),
        })?;
    let meta = file.metadata().map_err(|err| format!("cannot use {}: {err}", path.display()))?;
    if !meta.file_type().is_file() || meta.nlink() > 1 {
        return Err(format!("refusing {}: not a regular file with one link", path.display()));
    }
    // Opened non-blocking so that a FIFO there cannot hang us before the
    // check; the background tend's output is a plain file: clear it again.
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(&file, FcntlArg::F_GETFL).map(OFlag::from_bits_truncate).unwrap_or(OFlag::O_APPEND);
    let _ = fcntl(&file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK));
    Ok(file)
}

/// Is a tend answering on `socket`, and which pid is it?
fn answers(socket: &Path) -> Option<i32> {
    let mut client = crate::ctl::client::Client::connect(socket).ok()?;
    client.set_timeout(Some(Duration::from_secs(2)));
    match client.call::<crate::ctl::proto::HelloReply>(crate::ctl::proto::Request::Hello) {
        Ok(Ok(hello)) => Some(hello.pid),
        _ => None,
    }
}

/// What the background tend wrote since `from` (the end of its last
/// lines), to our stderr: why it did not start.
fn show_log_since(log: &Path, from: u64) {
    use std::io::{Read, Seek};
    let Ok(mut file) = std::fs::File::open(log) else { return };
    if file.seek(std::io::SeekFrom::Start(from)).is_err() {
        return;
    }
    let mut text = String::new();
    let _ = file.take(64 * 1024).read_to_string(&mut text);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(40)..] {
        eprintln!("{line}");
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {}", tend_core::text::signal_name(signal)),
        (None, None) => "ended".into(),
    }
}
