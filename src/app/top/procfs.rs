//! CPU time and memory of a service's processes read from /proc, for the
//! services whose `status` has no cgroup figures (tend without cgroups, as
//! a user without delegation, or a v1 host where a service joins only the
//! hierarchy that stops it).
//!
//! A service's processes are its session when its main process leads one
//! (`process_group: true`, the default: it ran setsid), else its process
//! group when it leads one, else its main process alone. Its CPU time is
//! theirs plus what they collected from children they reaped; its memory
//! the sum of their resident sets (pages shared between them count once
//! per process, as in `ps`). A main process counts only when its parent is
//! the supervisor as this client sees it: a supervisor in another pid
//! namespace gets no figures rather than a stranger's.
//!
//! The parsing and the attribution are pure; [`fill`] reads /proc.

use crate::ctl::proto::StatusReply;

/// What one /proc/PID/stat line says (proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// utime + stime + cutime + cstime, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set, in pages.
    pub rss_pages: u64,
}

/// Parse one /proc/PID/stat line; `None` for a zombie (it has no memory
/// and its time is its parent's once reaped) or a malformed line.
pub fn parse_stat(text: &str) -> Option<Proc> {
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start after the last ')'.
    let pid = text.split_whitespace().next()?.parse().ok()?;
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state).
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | None) {
        return None;
    }
    let cpu_ticks = field(14)? + field(15)? + field(16)? + field(17)?;
    Some(Proc {
        pid,
        ppid: field(4)? as i32,
        pgrp: field(5)? as i32,
        session: field(6)? as i32,
        cpu_ticks,
        rss_pages: field(24)?,
    })
}

/// The service whose main process is `main` (a child of `supervisor`):
/// (CPU ticks, resident pages) of its processes, or `None` when `main` is
/// not there or not the supervisor's.
pub fn attribute(procs: &[Proc], supervisor: i32, main: i32) -> Option<(u64, u64)> {
    let leader = procs.iter().find(|p| p.pid == main && p.ppid == supervisor)?;
    let belongs = |p: &&Proc| {
        if leader.session == main {
            p.session == main
        } else if leader.pgrp == main {
            p.pgrp == main
        } else {
            p.pid == main
        }
    };
    Some(procs.iter().filter(belongs).fold((0, 0), |(cpu, rss), p| (cpu + p.cpu_ticks, rss + p.rss_pages)))
}

/// Every process /proc shows.
fn scan() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

/// Give each running service of `reply` without cgroup figures the figures
/// of its processes. Reads /proc only when one needs them.
pub fn fill(reply: &mut StatusReply) {
    let wanted = |s: &crate::ctl::proto::ServiceStatus| {
        s.pid.is_some() && (s.cpu_usec.is_none() || s.memory_bytes.is_none())
    };
    if !reply.services.iter().any(wanted) {
        return;
    }
    let procs = scan();
    let (ticks, page) = (crate::sys::clock_ticks_per_second(), crate::sys::page_size());
    for service in reply.services.iter_mut().filter(|s| wanted(s)) {
        let Some(main) = service.pid else { continue };
        let Some((cpu_ticks, pages)) = attribute(&procs, reply.pid, main) else { continue };
        service.cpu_usec.get_or_insert(cpu_ticks * 1_000_000 / ticks);
        service.memory_bytes.get_or_insert(pages * page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: i32, comm: &str, ppid: i32, pgrp: i32, session: i32, utime: u64, rss: u64) -> String {
        format!(
            "{pid} ({comm}) S {ppid} {pgrp} {session} 0 -1 4194304 100 0 0 0 {utime} 3 2 1 20 0 1 0 5000 1000000 {rss} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
        )
    }

    #[test]
    fn parses_stat_lines_even_with_odd_names() {
        let p = parse_stat(&stat(42, "we ird) (name", 7, 42, 42, 10, 300)).unwrap();
        assert_eq!(p, Proc { pid: 42, ppid: 7, pgrp: 42, session: 42, cpu_ticks: 16, rss_pages: 300 });
        let zombie = stat(43, "z", 7, 43, 43, 1, 0).replace(") S ", ") Z ");
        assert_eq!(parse_stat(&zombie), None);
        assert_eq!(parse_stat("12 (cut"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn a_service_is_its_session_or_group_or_itself() {
        let procs: Vec<Proc> = [
            stat(1, "tend", 0, 1, 1, 0, 100),
            // web leads its own session: its worker and a daemon that left
            // its group but not its session count.
            stat(10, "web", 1, 10, 10, 5, 1000),
            stat(11, "web-worker", 10, 10, 10, 7, 2000),
            stat(12, "daemon", 1, 12, 10, 1, 50),
            // db leads a group in tend's session.
            stat(20, "db", 1, 20, 1, 2, 400),
            stat(21, "db-child", 20, 20, 1, 2, 100),
            // job shares tend's group and session.
            stat(30, "job", 1, 1, 1, 3, 70),
            // A process with web's pid number elsewhere: not tend's child.
            stat(40, "stranger", 2, 40, 40, 100, 100),
        ]
        .iter()
        .map(|line| parse_stat(line).unwrap())
        .collect();
        assert_eq!(attribute(&procs, 1, 10), Some((11 + 13 + 7, 1000 + 2000 + 50)));
        assert_eq!(attribute(&procs, 1, 20), Some((8 + 8, 500)));
        assert_eq!(attribute(&procs, 1, 30), Some((9, 70)));
        assert_eq!(attribute(&procs, 1, 40), None, "not the supervisor's child");
        assert_eq!(attribute(&procs, 1, 99), None, "gone");
    }
}
