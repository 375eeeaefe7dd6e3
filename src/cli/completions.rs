//! `tend completions SHELL` and the hidden `tend __complete WHAT` it calls.
//!
//! The scripts are clap_complete's ahead-of-time output for the one clap
//! definition (so subcommands and flags never drift), plus a short hook per
//! shell that completes the running supervisor's service names (and signal
//! names for `tend signal`) by running `tend __complete`. That command asks
//! the control socket with a short timeout and prints nothing at all when
//! no supervisor answers, so a tab press never hangs or prints an error.
//!
//! Why not clap_complete's dynamic `COMPLETE=bash tend` mode: it is behind
//! an unstable feature, and its authors advise against writing its output to
//! a file, which is what a package's completion directory needs. The hook
//! here calls only `tend __complete`, whose interface this file owns.
//!
//! This module must not touch the supervisor's state: it only reads names.

use crate::ctl::client::{self, Client};
use crate::ctl::proto::{Request, StatusReply};
use std::path::PathBuf;
use std::time::Duration;

pub use super::args::{Candidates, Shell};

/// Subcommands whose positional arguments are service names.
const NAME_COMMANDS: &[&str] = &["status", "start", "stop", "restart", "logs", "signal", "events", "wait"];

/// Subcommands whose first positional argument is a pool's unit name.
const POOL_COMMANDS: &[&str] = &["scale"];

/// How long a tab press may wait for a supervisor that accepted the
/// connection but does not answer.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(500);

/// The completion script for `shell`, for a binary called `tend` whose
/// arguments `cmd` defines (the clap definition, from `cli`).
pub fn script(shell: Shell, mut cmd: clap::Command) -> String {
    let flags = value_flags(&cmd);
    let mut generated = Vec::new();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut cmd, "tend", &mut generated);
    let generated = String::from_utf8(generated).expect("clap_complete writes UTF-8");
    match shell {
        Shell::Bash => bash(&generated, &flags),
        Shell::Zsh => zsh(&generated),
        Shell::Fish => fish(&generated, &flags),
    }
}

pub fn print(shell: Shell, cmd: clap::Command) -> i32 {
    match crate::app::out::emit(&script(shell, cmd)) {
        Ok(()) => crate::exit::OK,
        Err(status) => status,
    }
}

/// `tend __complete WHAT`: one candidate per line; nothing (and status 0)
/// when there is nothing to offer, whatever the reason.
pub fn candidates(what: Candidates, socket: Option<PathBuf>) -> i32 {
    let words = match what {
        Candidates::Signals => crate::unit::values::signal_names(),
        Candidates::Services => service_names(socket, false).unwrap_or_default(),
        Candidates::Pools => service_names(socket, true).unwrap_or_default(),
    };
    let mut text = words.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    // A shell that stopped reading has no use for an error.
    let _ = crate::app::out::emit(&text);
    crate::exit::OK
}

/// The running supervisor's service names (a pool's unit name before its
/// instances), or with `pools` the pools' unit names only.
fn service_names(socket: Option<PathBuf>, pools: bool) -> Option<Vec<String>> {
    let mut client = Client::connect(&client::socket_path(socket)).ok()?;
    client.set_timeout(Some(ANSWER_TIMEOUT));
    let reply = client.call::<StatusReply>(Request::Status { names: Vec::new() }).ok()?.ok()?;
    // A pool's unit name (`worker`, every instance) before its instances.
    let mut names = Vec::new();
    for service in reply.services {
        if let Some(unit) = service.unit.filter(|u| !names.contains(u)) {
            names.push(unit);
        }
        if !pools {
            names.push(service.name);
        }
    }
    Some(names)
}

/// The flags of NAME_COMMANDS that take a value (`--socket`, `-n`, …): the
/// word after them is not a service name.
fn value_flags(cmd: &clap::Command) -> Vec<String> {
    let mut flags = std::collections::BTreeSet::new();
    for name in NAME_COMMANDS.iter().chain(POOL_COMMANDS) {
        let Some(sub) = cmd.find_subcommand(name) else { continue };
        for arg in sub.get_arguments().filter(|a| !a.is_positional() && a.get_action().takes_values()) {
            flags.extend(arg.get_long().map(|l| format!("--{l}")));
            flags.extend(arg.get_short().map(|s| format!("-{s}")));
        }
    }
    flags.into_iter().collect()
}

/// bash: wrap clap's `_tend`. At a service-name position (and for the
/// signal of `tend signal`) the candidates replace clap's list of flags,
/// which it offers for any word; flags still come when the word starts
/// with `-`. `--socket` on the line is passed on.
fn bash(generated: &str, value_flags: &[String]) -> String {
    let (body, _registration) = generated
        .rsplit_once("if [[ \"${BASH_VERSINFO[0]}\" -eq 4")
        .expect("clap_complete's bash script ends with its `complete` registration");
    format!(
        r#"{body}
# Service and signal names (added by tend; see `tend completions --help`).
_tend_names() {{
    _tend "$@"
    local cur=${{COMP_WORDS[COMP_CWORD]}}
    local prev=${{COMP_WORDS[COMP_CWORD-1]}}
    [[ $cur == -* ]] && return 0
    case $prev in {value_flags}) return 0 ;; esac
    local i word sub= socket= positional=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${{COMP_WORDS[i]}}
        case $word in
            --socket) socket=${{COMP_WORDS[i+1]}}; ((i++)) ;;
            --socket=*) socket=${{word#--socket=}} ;;
            {value_flags}) ((i++)) ;;
            -*) ;;
            *) if [[ -z $sub ]]; then sub=$word; else ((positional++)); fi ;;
        esac
    done
    case " {commands} {pool_commands} " in *" $sub "*) ;; *) return 0 ;; esac
    local what=services
    [[ $sub == signal && $positional -eq 0 ]] && what=signals
    case " {pool_commands} " in *" $sub "*) [[ $positional -eq 0 ]] || return 0; what=pools ;; esac
    local tend=${{COMP_WORDS[0]}}
    [[ $tend == "~/"* ]] && tend=$HOME/${{tend#\~/}}
    compopt +o default +o bashdefault 2>/dev/null
    COMPREPLY=($(compgen -W "$("$tend" __complete "$what" ${{socket:+--socket "$socket"}} 2>/dev/null)" -- "$cur"))
}}
complete -F _tend_names -o nosort -o bashdefault -o default tend
"#,
        commands = NAME_COMMANDS.join(" "),
        pool_commands = POOL_COMMANDS.join(" "),
        value_flags = value_flags.join("|"),
    )
}

/// zsh: clap gives each service-name argument the `_default` action (file
/// names); point those at `_tend_services` instead.
fn zsh(generated: &str) -> String {
    let mut out = String::with_capacity(generated.len() + 1024);
    let mut replaced = 0;
    let mut pools = 0;
    for line in generated.split_inclusive('\n') {
        if line.starts_with("'*::names") && line.contains(":_default'") {
            out.push_str(&line.replacen(":_default'", ":_tend_services'", 1));
            replaced += 1;
        } else if line.starts_with("':name -- ") && line.contains(":_default'") {
            out.push_str(&line.replacen(":_default'", ":_tend_pools'", 1));
            pools += 1;
        } else if line.starts_with("':signal -- ") && line.contains(":_default'") {
            out.push_str(&line.replacen(":_default'", ":_tend_signals'", 1));
        } else {
            out.push_str(line);
        }
    }
    // Each NAME_COMMANDS entry once in the subcommand arms (the `help`
    // arms take no names). A clap_complete upgrade that changes the shape
    // fails here, and in the completion tests, rather than silently.
    assert!(
        replaced >= NAME_COMMANDS.len() && pools >= POOL_COMMANDS.len(),
        "zsh script: found {replaced} service-name and {pools} pool-name arguments, expected {} and {}",
        NAME_COMMANDS.len(),
        POOL_COMMANDS.len()
    );
    let hook = r#"
# Service and signal names (added by tend).
(( $+functions[_tend_services] )) ||
_tend_services() {
    local -a names socket
    [[ -n ${opt_args[--socket]} ]] && socket=(--socket "${opt_args[--socket]}")
    names=(${(f)"$(tend __complete services $socket 2>/dev/null)"})
    _describe -t services 'service' names
}
(( $+functions[_tend_pools] )) ||
_tend_pools() {
    local -a names socket
    [[ -n ${opt_args[--socket]} ]] && socket=(--socket "${opt_args[--socket]}")
    names=(${(f)"$(tend __complete pools $socket 2>/dev/null)"})
    _describe -t pools 'pool' names
}
(( $+functions[_tend_signals] )) ||
_tend_signals() {
    local -a names
    names=(${(f)"$(tend __complete signals 2>/dev/null)"})
    _describe -t signals 'signal' names
}
"#;
    // The functions must exist before the last lines call `_tend`.
    let (body, tail) = out
        .rsplit_once("if [ \"$funcstack[1]\" = \"_tend\" ]; then")
        .expect("clap_complete's zsh script ends by calling or registering _tend");
    format!("{body}{hook}\nif [ \"$funcstack[1]\" = \"_tend\" ]; then{tail}")
}

/// fish: one more `complete` line per kind of name.
fn fish(generated: &str, value_flags: &[String]) -> String {
    let services: Vec<&str> = NAME_COMMANDS.iter().copied().filter(|c| *c != "signal").collect();
    format!(
        r#"{generated}
# Service and signal names (added by tend).
function __fish_tend_socket
    set -l tokens (commandline -opc)
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case --socket
                set -q tokens[(math $i + 1)]; and echo --socket; and echo $tokens[(math $i + 1)]
            case '--socket=*'
                echo --socket; string replace -- --socket= '' $tokens[$i]
        end
    end
end
function __fish_tend_positionals
    # How many arguments follow the subcommand (flags and --socket's value aside).
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l n 0
    set -l skip 0
    for token in $tokens
        if test $skip -eq 1
            set skip 0
        else if contains -- $token {value_flags}
            set skip 1
        else if not string match -q -- '-*' $token
            set n (math $n + 1)
        end
    end
    echo (math $n - 1)
end
complete -c tend -n "__fish_tend_using_subcommand {services}" -f -a "(tend __complete services (__fish_tend_socket) 2>/dev/null)"
complete -c tend -n "__fish_tend_using_subcommand signal; and test (__fish_tend_positionals) -ge 1" -f -a "(tend __complete services (__fish_tend_socket) 2>/dev/null)"
complete -c tend -n "__fish_tend_using_subcommand signal; and test (__fish_tend_positionals) -eq 0" -f -a "(tend __complete signals 2>/dev/null)"
complete -c tend -n "__fish_tend_using_subcommand {pools}" -f
complete -c tend -n "__fish_tend_using_subcommand {pools}; and test (__fish_tend_positionals) -eq 0" -f -a "(tend __complete pools (__fish_tend_socket) 2>/dev/null)"
"#,
        services = services.join(" "),
        pools = POOL_COMMANDS.join(" "),
        value_flags = value_flags.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> clap::Command {
        <crate::cli::args::Cli as clap::CommandFactory>::command()
    }

    #[test]
    fn every_shell_script_names_the_hook() {
        assert!(script(Shell::Bash, cli()).contains("complete -F _tend_names"));
        assert!(script(Shell::Zsh, cli()).contains(":_tend_services'"));
        assert!(script(Shell::Fish, cli()).contains("__complete services"));
    }

    #[test]
    fn the_name_commands_exist_and_take_names() {
        let cmd = cli();
        for name in NAME_COMMANDS {
            let sub = cmd.find_subcommand(name).unwrap_or_else(|| panic!("no subcommand {name}"));
            assert!(sub.get_arguments().any(|a| a.get_id() == "names"), "{name} takes no names");
        }
        for name in POOL_COMMANDS {
            let sub = cmd.find_subcommand(name).unwrap_or_else(|| panic!("no subcommand {name}"));
            assert!(sub.get_arguments().any(|a| a.get_id() == "name"), "{name} takes no pool name");
        }
    }
}
