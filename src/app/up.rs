//! `tend up`: load every unit, then supervise them until told to stop.

use crate::supervise::{run_up, SocketOptions, UpOptions};
use crate::unit::UserDb;
use std::path::PathBuf;

pub struct UpArgs {
    pub units: Option<PathBuf>,
    /// `None`: no control socket; `Some(None)`: the default path.
    pub socket: Option<Option<PathBuf>>,
    pub socket_group: Option<String>,
    pub syslog: bool,
}

pub fn up(args: UpArgs) -> i32 {
    let dir = super::units_dir(args.units);
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
    let socket = args.socket.map(|path| {
        let (path, private_dir) = crate::ctl::client::socket_target(path);
        SocketOptions { path, group, private_dir }
    });

    run_up(
        units,
        UpOptions {
            environment: super::services_environment(),
            load_units: |dir| super::load_units(dir).map(|loaded| (loaded.units, loaded.warnings)),
            units_dir: dir,
            socket,
            syslog_events: args.syslog,
        },
    )
}
