//! `tend wait`: return once every named service is where it was asked to
//! be, decided by the supervisor on the states `tend status` shows (see
//! `tend_core`'s `wait`), so nothing can happen between a look and the
//! wait. Rendering and exit statuses only.

use super::control::{call_within, error_status, print_results, timeout};
use crate::ctl::proto::{Answer, ErrorReply, Request, ResultsReply, WaitFor};
use crate::exit;
use std::path::PathBuf;
use std::time::Duration;

/// Print the outcome of a wait, and pick the exit status: 0 when every
/// service got there, 1 when one failed on the way or the time ran out.
pub(super) fn render(reply: Result<Answer<ResultsReply>, i32>) -> i32 {
    match reply {
        Ok(Ok(reply)) => match print_results(&reply.results) {
            Ok(()) => exit::OK,
            Err(code) => code,
        },
        Ok(Err(ErrorReply { error, results, .. })) => {
            if let Some(results) = results {
                if let Err(code) = print_results(&results) {
                    return code;
                }
            }
            eprintln!("tend: {}", error.message);
            error_status(&error)
        }
        Err(code) => code,
    }
}

/// Send a wait and read its answer. The supervisor keeps the time: the
/// client waits for its answer a little longer than `within`, or for as
/// long as it takes without one. `settle`: answer only once every service
/// got there or failed.
pub(super) fn ask(
    socket: Option<PathBuf>,
    names: Vec<String>,
    until: WaitFor,
    within: Option<Duration>,
    settle: bool,
) -> Result<Answer<ResultsReply>, i32> {
    let timeout_ms = within.map(|d| d.as_millis().min(u64::MAX as u128) as u64);
    let bound = within.map(|d| d + timeout());
    call_within::<ResultsReply>(socket, Request::Wait { names, until, timeout_ms, settle }, bound)
}

pub fn wait(socket: Option<PathBuf>, names: Vec<String>, until: WaitFor, within: Option<Duration>) -> i32 {
    render(ask(socket, names, until, within, false))
}
