//! A service's standard input (README: Standard input), through the real
//! binary: `stdin: null`, `{data: ...}` (given, then end-of-file, whatever
//! its size), `{file: PATH}` (relative to the unit's folder, opened anew at
//! each start, as the service's user), and what a file that cannot be
//! opened does: a failed start that names it.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn null_is_dev_null() {
    let env = Env::new();
    let out = env.p("in");
    env.unit(
        "reader",
        &format!(
            "command: [sh, -c, 'readlink /proc/self/fd/0 > {0}; cat >> {0}']\nstdin: null\nrestart: never\n",
            out.display()
        ),
    );
    let mut tend = env.up();
    wait_state(&env, &tend, "reader", "exited");
    assert_eq!(read(&out), "/dev/null\n");
    shutdown(&env, &mut tend);
}

#[test]
fn data_is_given_then_end_of_file_even_past_a_pipes_capacity() {
    let env = Env::new();
    let out = env.p("got");
    // 300 KiB: more than a pipe holds (64 KiB); the service reads it only
    // after a while, and tend answers meanwhile.
    let line =
        "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklm\n";
    let data: String = line.repeat(300 * 1024 / line.len());
    let escaped = data.replace('\n', "\\n");
    env.unit(
        "slow",
        &format!(
            "command: [sh, -c, 'while [ ! -e {0}.go ]; do sleep 0.05; done; cat > {0}; echo done >> {0}.end']\nstdin: {{data: \"{escaped}\"}}\nrestart: never\n",
            out.display()
        ),
    );
    let mut tend = env.up();
    wait_state(&env, &tend, "slow", "running");
    fs::write(env.p("got.go"), "").unwrap();
    tend.wait_until(T, "the service to read to end-of-file", || read(env.p("got.end")) == "done\n");
    assert_eq!(read(&out).len(), data.len());
    assert!(read(&out) == data, "the data came back changed");
    let status = wait_state(&env, &tend, "slow", "exited");
    assert_eq!(status["last_exit"]["code"], 0, "{status}");
    shutdown(&env, &mut tend);
}

#[test]
fn data_is_given_anew_at_each_start() {
    let env = Env::new();
    let out = env.p("got");
    env.unit(
        "again",
        &format!(
            "command: [sh, -c, 'cat >> {}; exit 1']\nstdin: {{data: \"once\\n\"}}\nrestart: on-failure\nrestart_delay: 50ms\nstart_limit: {{burst: 100}}\n",
            out.display()
        ),
    );
    let mut tend = env.up();
    tend.wait_until(T, "three runs", || read(&out).lines().count() >= 3);
    assert!(read(&out).lines().all(|l| l == "once"), "{:?}", read(&out));
    shutdown(&env, &mut tend);
}

#[test]
fn a_file_relative_to_the_unit_is_read_from_its_start_at_each_start() {
    let env = Env::new();
    let out = env.p("got");
    fs::write(env.units().join("input.txt"), "first line\nsecond line\n").unwrap();
    env.unit(
        "cat",
        &format!(
            "command: [sh, -c, 'cat >> {}; exit 3']\nstdin: {{file: input.txt}}\nworking_dir: /\nrestart: on-failure\nrestart_delay: 50ms\nstart_limit: {{burst: 100}}\n",
            out.display()
        ),
    );
    let mut tend = env.up();
    tend.wait_until(T, "two runs", || read(&out).lines().count() >= 4);
    let text = read(&out);
    assert!(text.starts_with("first line\nsecond line\nfirst line\nsecond line\n"), "{text:?}");
    shutdown(&env, &mut tend);
}

#[test]
fn a_missing_file_is_a_failed_start_that_names_it() {
    let env = Env::new();
    env.unit("lost", "command: [cat]\nstdin: {file: nowhere/input.txt}\nrestart: never\n");
    let mut tend = env.up();
    let status = wait_state(&env, &tend, "lost", "failed");
    let path = env.units().join("nowhere/input.txt");
    let last = &status["last_exit"];
    assert_eq!(last["kind"], "exec_failed", "{status}");
    assert_eq!(last["step"], "stdin", "{status}");
    assert_eq!(last["errno"], "not_found", "{status}");
    let message = format!("cannot open stdin file {}: No such file or directory", path.display());
    assert_eq!(last["message"], message.as_str(), "{status}");
    tend.wait_stderr(&format!("lost: {message}"));
    shutdown(&env, &mut tend);
}

#[test]
fn a_fifo_or_a_folder_is_refused_without_blocking_anything() {
    let env = Env::new();
    let fifo = env.units().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    fs::create_dir(env.units().join("folder")).unwrap();
    env.unit("fifo", "command: [cat]\nstdin: {file: fifo}\nrestart: never\n");
    env.unit("folder", "command: [cat]\nstdin: {file: folder}\nrestart: never\n");
    env.unit("other", "command: [sleep, infinity]\n");
    let mut tend = env.up();
    for (name, path) in [("fifo", &fifo), ("folder", &env.units().join("folder"))] {
        let status = wait_state(&env, &tend, name, "failed");
        let message = format!("cannot read stdin from {}: not a regular file", path.display());
        assert_eq!(status["last_exit"]["message"], message.as_str(), "{status}");
        assert_eq!(status["last_exit"]["step"], "stdin", "{status}");
        assert!(status["last_exit"].get("errno").is_none(), "{status}");
    }
    wait_state(&env, &tend, "other", "running");
    shutdown(&env, &mut tend);
}

#[test]
fn the_file_is_opened_as_the_service_so_a_planted_link_gains_nothing() {
    if skip_unless_root("the_file_is_opened_as_the_service_so_a_planted_link_gains_nothing") {
        return;
    }
    // The service's folder belongs to its user, who replaced the input
    // with a link to a file only root may read. tend runs as root; the
    // child opens the file as `nobody`, so the kernel refuses.
    let env = Env::new();
    let secret = env.p("secret");
    fs::write(&secret, "root only\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let folder = env.p("data");
    fs::create_dir(&folder).unwrap();
    std::os::unix::fs::symlink(&secret, folder.join("input")).unwrap();
    std::os::unix::fs::chown(&folder, Some(65534), Some(65534)).unwrap();
    let out = env.p("leak");
    env.unit(
        "victim",
        &format!(
            "command: [sh, -c, 'cat > {}']\nuser: nobody\nstdin: {{file: {}}}\nrestart: never\n",
            out.display(),
            folder.join("input").display()
        ),
    );
    // The same file as root's own service is read: the open is the service's.
    env.unit(
        "rooted",
        &format!(
            "command: [sh, -c, 'cat > {}.root']\nstdin: {{file: {}}}\nrestart: never\n",
            out.display(),
            folder.join("input").display()
        ),
    );
    let mut tend = env.up();
    let status = wait_state(&env, &tend, "victim", "failed");
    assert_eq!(status["last_exit"]["errno"], "permission_denied", "{status}");
    assert_eq!(status["last_exit"]["step"], "stdin", "{status}");
    assert!(!out.exists(), "the service ran and read {:?}", read(&out));
    wait_state(&env, &tend, "rooted", "exited");
    assert_eq!(read(env.p("leak.root")), "root only\n");
    shutdown(&env, &mut tend);
}
