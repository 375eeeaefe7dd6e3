//! What a supervisor that was killed (SIGKILL, the OOM killer) leaves
//! behind, found and killed by the next one at start, before it starts a
//! second copy of anything.
//!
//! With cgroups, `sandbox::cgroup` finds the `tend-PID` cgroups of dead
//! supervisors and kills what is in them. Without cgroups, this module
//! keeps a record, in tend's private runtime folder, of the process groups
//! of the services it started (`groups-PID`: the group and its leader's
//! start time), and the next tend kills the groups of records whose
//! supervisor is gone, if they are still the same groups (their leader's
//! start time, or, once the leader is gone, members that started after it).
//! A process that left its group (`setsid`, a double fork) is out of
//! reach without cgroups: the README says so.
//!
//! The decisions (is this record's supervisor alive, is this group still
//! the recorded one) are pure functions with tests; the loop calls
//! [`write_record`] after starting a service without a cgroup and
//! [`sweep`] once at start.

use crate::sys;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One supervisor's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub tend_pid: i32,
    /// tend's start time (clock ticks since boot), to tell it from a
    /// process that got its pid later.
    pub tend_start: u64,
    /// `(id, start, group)`: a process group (its leader's pid and start
    /// time) when `group`, else a single process.
    pub entries: Vec<(i32, u64, bool)>,
}

impl Record {
    pub fn render(&self) -> String {
        let mut text = format!("tend {} {}\n", self.tend_pid, self.tend_start);
        for (id, start, group) in &self.entries {
            text.push_str(&format!("{} {id} {start}\n", if *group { "group" } else { "pid" }));
        }
        text
    }

    pub fn parse(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        let mut head = lines.next()?.split(' ');
        if head.next()? != "tend" {
            return None;
        }
        let tend_pid = head.next()?.parse().ok()?;
        let tend_start = head.next()?.parse().ok()?;
        let mut entries = Vec::new();
        for line in lines {
            let mut words = line.split(' ');
            let group = match words.next()? {
                "group" => true,
                "pid" => false,
                _ => return None,
            };
            entries.push((words.next()?.parse().ok()?, words.next()?.parse().ok()?, group));
        }
        Some(Record { tend_pid, tend_start, entries })
    }
}

/// Is the record's supervisor still running? Its pid alive with the
/// recorded start time.
pub fn supervisor_alive(record: &Record, start_of_that_pid_now: Option<u64>) -> bool {
    start_of_that_pid_now == Some(record.tend_start)
}

/// The processes to kill for one entry, given what runs now: the leader
/// (when it is the recorded one) and the members of the group that started
/// no earlier than the recorded leader. A group whose leader is alive with
/// another start time is another group (the pid was reused): nothing.
pub fn to_kill(entry: (i32, u64, bool), leader_start_now: Option<u64>, members: &[(i32, u64)]) -> Vec<i32> {
    let (id, start, group) = entry;
    match leader_start_now {
        Some(now) if now != start => return Vec::new(),
        _ => {}
    }
    if !group {
        return if leader_start_now.is_some() { vec![id] } else { Vec::new() };
    }
    let mut out: Vec<i32> = members.iter().filter(|(_, s)| *s >= start).map(|(pid, _)| *pid).collect();
    if leader_start_now.is_some() && !out.contains(&id) {
        out.push(id);
    }
    out.retain(|pid| *pid > 1);
    out
}

/// The record file of supervisor `pid` in `dir`.
pub fn record_path(dir: &Path, pid: i32) -> PathBuf {
    dir.join(format!("groups-{pid}"))
}

/// Write (replace) this supervisor's record; best effort.
pub fn write_record(dir: &Path, record: &Record) {
    if sys::paths::use_private_dir(dir).is_err() {
        return;
    }
    let path = record_path(dir, record.tend_pid);
    let tmp = dir.join(format!(".groups-{}.tmp", record.tend_pid));
    if std::fs::write(&tmp, record.render()).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

/// Kill what the records of dead supervisors in `dir` name, and remove
/// those records. Returns `(dead supervisor's pid, processes killed)`.
pub fn sweep(dir: &Path) -> Vec<(i32, usize)> {
    let mut found = Vec::new();
    // Only a folder nobody else can write is believed.
    if sys::paths::check_trusted_dir(dir).is_err() {
        return found;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    let mut groups: Option<HashMap<i32, Vec<(i32, u64)>>> = None;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) =
            name.to_str().and_then(|n| n.strip_prefix("groups-")).and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == sys::getpid() {
            continue;
        }
        let Some(record) = std::fs::read_to_string(entry.path()).ok().and_then(|t| Record::parse(&t)) else {
            let _ = std::fs::remove_file(entry.path());
            continue;
        };
        if supervisor_alive(&record, sys::process_start_time(record.tend_pid)) {
            continue;
        }
        let by_group = groups.get_or_insert_with(sys::processes_by_group);
        let mut killed = 0;
        for &entry in &record.entries {
            let members = by_group.get(&entry.0).map(Vec::as_slice).unwrap_or(&[]);
            for victim in to_kill(entry, sys::process_start_time(entry.0), members) {
                if sys::send_signal(victim, libc::SIGKILL, false).is_ok() {
                    killed += 1;
                }
            }
        }
        let _ = std::fs::remove_file(entry.path());
        if killed > 0 {
            found.push((pid, killed));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let record =
            Record { tend_pid: 42, tend_start: 1000, entries: vec![(50, 1100, true), (60, 1200, false)] };
        assert_eq!(Record::parse(&record.render()), Some(record));
        assert_eq!(Record::parse("nonsense\n"), None);
    }

    #[test]
    fn a_supervisor_is_alive_only_with_its_own_start_time() {
        let record = Record { tend_pid: 42, tend_start: 1000, entries: vec![] };
        assert!(supervisor_alive(&record, Some(1000)));
        assert!(!supervisor_alive(&record, Some(5000)), "the pid is another process's now");
        assert!(!supervisor_alive(&record, None));
    }

    #[test]
    fn only_the_recorded_group_is_killed() {
        let members = [(50, 1100), (51, 1150), (52, 1300)];
        // Leader alive, same start: leader and members.
        let mut all = to_kill((50, 1100, true), Some(1100), &members);
        all.sort();
        assert_eq!(all, [50, 51, 52]);
        // Leader gone: members that started after it.
        assert_eq!(to_kill((50, 1100, true), None, &[(51, 1150), (53, 900)]), [51]);
        // The pid is another process's now: a different group, untouched.
        assert!(to_kill((50, 1100, true), Some(4000), &members).is_empty());
        // A single process: only when it is the recorded one.
        assert_eq!(to_kill((60, 1200, false), Some(1200), &[]), [60]);
        assert!(to_kill((60, 1200, false), Some(1300), &[]).is_empty());
        assert!(to_kill((60, 1200, false), None, &[]).is_empty());
    }
}
