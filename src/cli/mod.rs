//! argv → a subcommand: parse (the definition is in [`args`]) and
//! dispatch; the work is in `app`. The completion scripts and man pages are
//! rendered from the same definition ([`completions`], [`man`]).

pub mod args;
pub mod completions;
pub mod man;

use crate::ctl::proto::Request;
use args::{Cli, Command};
use clap::{CommandFactory, Parser};

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    crate::exit::OK
                }
                _ => crate::exit::USAGE,
            };
        }
    };
    use crate::app::control;
    if let Some(timeout) = cli.command.timeout() {
        control::set_timeout(Some(timeout));
    }
    match cli.command {
        Command::Up {
            names,
            units,
            socket,
            socket_group,
            no_socket,
            syslog,
            metrics_listen,
            detach,
            log_file,
        } => crate::app::up::up(crate::app::up::UpArgs {
            units,
            socket: if no_socket { None } else { Some(socket.socket) },
            socket_group,
            syslog,
            names,
            metrics_listen,
            detach,
            log_file,
        }),
        Command::Run {
            group,
            success_exit_codes,
            parent_death_signal,
            rewrite,
            verbose,
            subreaper: _,
            command,
        } => crate::app::run::run(crate::app::run::RunOptions {
            command,
            group,
            success_exit_codes: success_exit_codes.into_iter().map(i32::from).collect(),
            parent_death_signal,
            rewrites: crate::supervise::run::Rewrites(rewrite),
            verbosity: verbose,
        }),
        Command::Check { dir, strict } => crate::app::check::check(dir, strict),
        Command::Status { names, json, socket, .. } => control::status(socket.socket, names, json),
        Command::Start { targets, socket, .. } => {
            control::change(socket.socket, Request::Start(targets.into()))
        }
        Command::Stop { targets, socket, .. } => {
            control::change(socket.socket, Request::Stop(targets.into()))
        }
        Command::Restart { targets, rolling, socket, .. } => {
            let target = tend_core::proto::Target { rolling, ..targets.into() };
            control::change(socket.socket, Request::Restart(target))
        }
        Command::Scale { name, instances, no_wait, socket, .. } => {
            control::scale(socket.socket, name, instances, !no_wait)
        }
        Command::Signal { signal, names, socket, .. } => {
            control::change(socket.socket, Request::Signal { signal, names })
        }
        Command::Logs { names, follow, lines, since, timestamps, stream, json, socket, .. } => {
            let stream = stream.map(|s| match s {
                args::StreamArg::Stdout => crate::ctl::proto::Stream::Stdout,
                args::StreamArg::Stderr => crate::ctl::proto::Stream::Stderr,
            });
            // With --since and no -n: every line since then (the history holds at most 1,000 per service).
            let lines = lines.unwrap_or(if since.is_some() { usize::MAX } else { 100 });
            control::logs(
                socket.socket,
                control::LogsArgs { names, lines, follow, since, stream, timestamps, json },
            )
        }
        Command::Top { interval, socket, .. } => crate::app::top::top(socket.socket, interval),
        Command::Wait { until, timeout, names, socket } => {
            crate::app::wait::wait(socket.socket, names, until.into(), timeout)
        }
        Command::Metrics { socket, .. } => control::metrics(socket.socket),
        Command::Events { names, json, since_start, socket, .. } => {
            crate::app::events::events(socket.socket, names, json, since_start)
        }
        Command::Reload { socket, json, .. } => control::reload(socket.socket, json),
        Command::ReopenLogs { socket, .. } => control::change(socket.socket, Request::ReopenLogs),
        Command::Shutdown { socket, .. } => control::shutdown(socket.socket),
        Command::Completions { shell } => completions::print(shell, Cli::command()),
        Command::Schema => crate::app::schema::print(),
        Command::Import { format, files, output, force } => {
            crate::app::import::import(format, files, output, force)
        }
        Command::Man { dir } => man::write(&dir, Cli::command()),
        Command::Complete { what, socket } => completions::candidates(what, socket.socket),
    }
}
