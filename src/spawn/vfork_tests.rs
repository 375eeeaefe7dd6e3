//! The spawner thread for real: these fork inside the test process, so
//! they are `#[ignore]`d and run alone (`--ignored --test-threads=1`).

use super::*;
use std::os::fd::AsRawFd;

/// Read the exec-status pipe to its end (EOF: exec'd or exited).
fn report(fd: &std::os::fd::OwnedFd) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        crate::sys::wait_readable(fd);
        match crate::sys::read(fd, &mut buf) {
            Ok(0) => return bytes,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
}

fn exit_status(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid on our own child, into a local.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

#[test]
fn the_child_also_resets_the_handlers_the_list_lacks() {
    let (dfl, ign, handler) = (Some(libc::SIG_DFL as u64), Some(libc::SIG_IGN as u64), Some(0x5555_0000));
    let state = [(1, handler), (2, dfl), (13, ign), (15, handler), (17, None), (33, handler)];
    assert_eq!(handled_beyond(state.into_iter(), &[1, 13, 15, 17]), [33]);
    assert_eq!(handled_beyond(state.into_iter(), &[1, 15, 17, 33]), [0; 0], "ignored ones wait for the list");
    assert_eq!(handled_beyond(state.into_iter(), &[1, 33]), [15, 17], "an unreadable disposition counts");
    assert_eq!(handled_beyond(std::iter::empty(), &[]), [0; 0]);
}

#[test]
#[ignore] // forks: run alone with --ignored --test-threads=1
fn the_spawner_thread_starts_a_program_and_reports_an_exec_failure() {
    let run = |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let plan = Arc::new(ExecPlan::for_command(&argv, std::env::vars_os(), false, None).unwrap());
        let (read_end, write_end) = super::super::status_pipe().unwrap();
        // Free once the vfork of the previous job has returned (just
        // after that child's exec or exit): poll, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let pid = loop {
            if let Some(result) = try_spawn(&plan, write_end.as_raw_fd(), crate::sys::getpid()) {
                break result.unwrap();
            }
            assert!(std::time::Instant::now() < deadline, "the spawner thread stays busy");
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        drop(write_end);
        let bytes = report(&read_end);
        (plan, pid, bytes)
    };
    let (_, pid, bytes) = run(&["sh", "-c", "exit 7"]);
    assert!(bytes.is_empty(), "exec confirmed by EOF alone");
    assert_eq!(libc::WEXITSTATUS(exit_status(pid)), 7);
    // A second job once the first is done: the thread is free again.
    let (plan, pid, bytes) = run(&["/no/such/program"]);
    let error = super::super::decode_report(&plan, &bytes).expect("a failure report");
    assert_eq!(error.to_string(), "cannot execute /no/such/program: No such file or directory");
    assert_eq!(libc::WEXITSTATUS(exit_status(pid)), 127);
}

#[test]
fn tend_no_vfork_turns_the_thread_off_unless_empty_or_zero() {
    use std::ffi::OsStr;
    assert!(!turned_off(None));
    assert!(!turned_off(Some(OsStr::new(""))));
    assert!(!turned_off(Some(OsStr::new("0"))));
    assert!(turned_off(Some(OsStr::new("1"))));
    assert!(turned_off(Some(OsStr::new("yes"))));
}
