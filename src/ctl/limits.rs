//! How much the control socket may cost the supervisor: the bounds, and the
//! decisions that apply them, as pure functions (time is an argument, no
//! system call), so the loop only carries them out.
//!
//! Anyone allowed on the socket (a `--socket-group` member) must not be
//! able to stall supervision or grow tend's memory without bound: a
//! pipelined flood is handled a few requests per connection per loop turn;
//! each connection's input and output are bounded, and so is the output of
//! all connections together (the biggest backlog is cut first); the number
//! of connections is capped and descriptors are kept for spawning; a
//! connection that sends no complete request for a while is closed.

use std::time::Duration;
use tend_core::Time;

/// Requests handled per connection per loop turn; the rest wait for the
/// next turn, after every other source had its turn.
pub const REQUESTS_PER_TURN: usize = 16;

/// Bytes read from one connection per loop turn.
pub const READ_PER_TURN: usize = 64 * 1024;

/// Connections open at once; more are answered `too many connections` and
/// closed. Far above what people and scripts use, far below the
/// descriptors a supervisor needs.
pub const MAX_CONNECTIONS: usize = 256;

/// Descriptors kept free for starting services (each start takes a few:
/// pipes, the exec-status pipe, cgroup files): a connection whose
/// descriptor would eat into them is refused.
pub const FD_RESERVE: u64 = 128;

/// Queued output of all connections together; past it, the connections
/// with the most queued are told `too_slow` and closed until it fits.
pub const TOTAL_OUTPUT: usize = 32 * 1024 * 1024;

/// A connection that sends no complete request for this long while it
/// waits for nothing (not following logs, no request in progress) is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What to do with a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission<T> {
    Accept,
    /// Accept it, and close this idle one to make room.
    AcceptClosing(T),
    /// Refuse it, and say why.
    Refuse(String),
}

/// Whether a new connection may stay. `fd` is its descriptor number:
/// descriptors are handed out lowest first, so it is about how many are
/// open. At the connection cap, the connection idle the longest among
/// those waiting for nothing (`idle_longest`) makes room, so that a flood
/// of silent connections cannot lock people out; with none, the new one is
/// refused.
pub fn admit<T>(open_connections: usize, fd: u64, fd_limit: u64, idle_longest: Option<T>) -> Admission<T> {
    if fd.saturating_add(FD_RESERVE) >= fd_limit {
        return Admission::Refuse(format!(
            "too few file descriptors left ({fd} of {fd_limit} in use; {FD_RESERVE} are kept for starting services)"
        ));
    }
    if open_connections < MAX_CONNECTIONS {
        return Admission::Accept;
    }
    match idle_longest {
        Some(old) => Admission::AcceptClosing(old),
        None => Admission::Refuse(format!(
            "too many control connections ({open_connections} open and busy, the most is {MAX_CONNECTIONS})"
        )),
    }
}

/// Among `(id, last_active, waiting)`, the one idle the longest that waits
/// for nothing.
pub fn idle_longest<T: Copy>(conns: impl IntoIterator<Item = (T, Time, bool)>) -> Option<T> {
    conns.into_iter().filter(|(_, _, waiting)| !waiting).min_by_key(|(_, at, _)| *at).map(|(id, _, _)| id)
}

/// When a connection that was last active at `last_active` is closed for
/// idleness; `None` while it waits for something (a request in progress,
/// following logs), which is not idleness.
pub fn idle_deadline(last_active: Time, waiting: bool) -> Option<Time> {
    (!waiting).then(|| last_active.saturating_add(IDLE_TIMEOUT))
}

/// Which connections to cut so that the output queued for all of them fits
/// `budget`: the biggest backlogs first. `queued` is `(id, bytes)`.
pub fn over_budget<T: Copy>(queued: &[(T, usize)], budget: usize) -> Vec<T> {
    let mut total: usize = queued.iter().map(|(_, n)| n).sum();
    if total <= budget {
        return Vec::new();
    }
    let mut by_size: Vec<&(T, usize)> = queued.iter().collect();
    tend_core::sort::sort_by_key(&mut by_size, |entry| std::cmp::Reverse(entry.1));
    let mut cut = Vec::new();
    for (id, n) in by_size {
        if total <= budget {
            break;
        }
        total -= n;
        cut.push(*id);
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_caps_connections_and_keeps_descriptors() {
        assert_eq!(admit::<u8>(0, 10, 1024, None), Admission::Accept);
        assert_eq!(admit::<u8>(MAX_CONNECTIONS - 1, 300, 1024, None), Admission::Accept);
        assert_eq!(admit(MAX_CONNECTIONS, 300, 1024, Some(7)), Admission::AcceptClosing(7));
        assert!(matches!(admit::<u8>(MAX_CONNECTIONS, 300, 1024, None),
            Admission::Refuse(why) if why.starts_with("too many control connections")));
        assert!(matches!(admit(10, 1024 - FD_RESERVE, 1024, Some(1)),
            Admission::Refuse(why) if why.starts_with("too few file descriptors")));
        assert_eq!(admit::<u8>(10, 1024 - FD_RESERVE - 1, 1024, None), Admission::Accept);
    }

    #[test]
    fn the_longest_idle_of_those_waiting_for_nothing_makes_room() {
        let t = |s| Time::new(s, 0);
        assert_eq!(idle_longest([(1, t(5), false), (2, t(3), false), (3, t(1), true)]), Some(2));
        assert_eq!(idle_longest([(3, t(1), true)]), None);
    }

    #[test]
    fn only_a_connection_waiting_for_nothing_goes_idle() {
        let at = Time::new(100, 0);
        assert_eq!(idle_deadline(at, false), Some(Time::new(110, 0)));
        assert_eq!(idle_deadline(at, true), None);
    }

    #[test]
    fn the_biggest_backlogs_are_cut_first_until_it_fits() {
        assert!(over_budget(&[(1, 10), (2, 20)], 30).is_empty());
        assert_eq!(over_budget(&[(1, 10), (2, 20), (3, 5)], 30), vec![2]);
        assert_eq!(over_budget(&[(1, 50), (2, 40), (3, 5)], 10), vec![1, 2]);
        assert!(over_budget::<u8>(&[], 0).is_empty());
    }
}
