//! README section "Instances (worker pools)": one unit with `instances:`
//! runs N services `NAME@1` …, seen from inside (their own pids, `%i` in
//! the command, environment, working_dir and log file, TEND_INSTANCE,
//! their own cgroup), each supervised on its own (one killed, only it
//! restarts), the unit's name acting on every instance and a full name on
//! one, a dependency on the pool waiting for every instance, `tend scale`
//! and `tend restart --rolling`.

mod common;
use common::*;

/// A pool whose instances report what they see, then wait.
fn reporting_pool(env: &Env, instances: &str) -> String {
    let out = env.p("out");
    std::fs::create_dir_all(&out).unwrap();
    for i in ["1", "2", "3", "eu", "us"] {
        std::fs::create_dir_all(env.units().join("data").join(i)).unwrap();
    }
    std::fs::create_dir_all(env.units().join("logs")).unwrap();
    format!(
        "{}instances: {instances}\nworking_dir: data/%i\nenvironment: {{SHARD: 's-%i', RATE: '100%%'}}\nlog: {{file: 'logs/worker-%i.log'}}\nstop_timeout: 2s\n",
        sh(&format!(
            "{}\necho \"hello from %i\"\nexec sleep 1000",
            put(
                "echo \"arg=%i instance=$TEND_INSTANCE shard=$SHARD rate=$RATE pid=$$ cwd=$(pwd)\"",
                &out.join("%i")
            )
        ))
    )
}

fn report(env: &Env, tend: &Tend, instance: &str) -> String {
    env.await_file(tend, &format!("out/{instance}")).trim().to_string()
}

fn field<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {report:?}"))
}

/// Pids of the instances named, from `tend status --json`.
fn pids(env: &Env, names: &[&str]) -> Vec<i32> {
    let (_, list) = status_json(env, &[]);
    names.iter().map(|n| pid_of(&list, n)).collect()
}

#[test]
fn each_instance_is_a_service_of_its_own_seen_from_inside() {
    let env = Env::new();
    env.unit("worker", &reporting_pool(&env, "3"));
    let tend = env.up();
    let list = wait_running(&env, &tend, &["worker@1", "worker@2", "worker@3"]);
    let mut seen_pids = Vec::new();
    for i in ["1", "2", "3"] {
        let r = report(&env, &tend, i);
        assert_eq!(field(&r, "arg"), i, "{r}");
        assert_eq!(field(&r, "instance"), i, "TEND_INSTANCE: {r}");
        assert_eq!(field(&r, "shard"), format!("s-{i}"), "%i in environment: {r}");
        assert_eq!(field(&r, "rate"), "100%", "%% is a literal %: {r}");
        let cwd = env.units().join("data").join(i);
        assert_eq!(field(&r, "cwd"), cwd.canonicalize().unwrap().to_str().unwrap(), "%i in working_dir: {r}");
        let pid: i32 = field(&r, "pid").parse().unwrap();
        assert_eq!(pid, pid_of(&list, &format!("worker@{i}")), "status shows the pid the instance has");
        seen_pids.push(pid);
        // Its own log file, its own prefix.
        let log = env.units().join(format!("logs/worker-{i}.log"));
        tend.wait_until(T, "the instance's own log file", || read(&log).contains(&format!("hello from {i}")));
        tend.wait_stdout(&format!("worker@{i} | hello from {i}"));
    }
    seen_pids.sort();
    seen_pids.dedup();
    assert_eq!(seen_pids.len(), 3, "distinct pids: {seen_pids:?}");
    // The JSON contract says which unit and instance each one is.
    let (_, workers) = status_json(&env, &["worker"]);
    let names: Vec<(&str, &str, &str)> = workers
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["unit"].as_str().unwrap(), s["instance"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("worker@1", "worker", "1"), ("worker@2", "worker", "2"), ("worker@3", "worker", "3")]
    );
}

#[test]
fn named_instances() {
    let env = Env::new();
    env.unit("worker", &reporting_pool(&env, "[eu, us]"));
    let tend = env.up();
    wait_running(&env, &tend, &["worker@eu", "worker@us"]);
    assert_eq!(field(&report(&env, &tend, "us"), "instance"), "us");
    assert_eq!(field(&report(&env, &tend, "eu"), "shard"), "s-eu");
}

/// Each instance has its own cgroup (`worker@2.service`): stopping one
/// cannot touch another's processes.
#[test]
fn each_instance_has_its_own_cgroup() {
    if skip_unless_root("each_instance_has_its_own_cgroup") {
        return;
    }
    let env = Env::new();
    env.unit("worker", "command: [sleep, '1000']\ninstances: 2\n");
    let tend = env.up();
    let list = wait_running(&env, &tend, &["worker@1", "worker@2"]);
    for name in ["worker@1", "worker@2"] {
        let cgroup = read(format!("/proc/{}/cgroup", pid_of(&list, name)));
        assert!(cgroup.contains(&format!("/{name}.service")), "{name}: {cgroup}\n{}", tend.dump());
    }
}

#[test]
fn killing_one_instance_restarts_only_it() {
    let env = Env::new();
    env.unit("worker", "command: [sleep, '1000']\ninstances: 3\nrestart_delay: 50ms\n");
    let tend = env.up();
    wait_running(&env, &tend, &["worker@1", "worker@2", "worker@3"]);
    let before = pids(&env, &["worker@1", "worker@2", "worker@3"]);
    kill(before[1], libc::SIGKILL);
    let restarted = wait_status(&env, &tend, "worker@2", "restarted with a new pid", |s| {
        s["state"] == "running" && s["pid"].as_i64().is_some_and(|p| p as i32 != before[1])
    });
    assert_eq!(restarted["restarts"], 1);
    let after = pids(&env, &["worker@1", "worker@3"]);
    assert_eq!(after, [before[0], before[2]], "the other instances were not touched\n{}", tend.dump());
    for name in ["worker@1", "worker@3"] {
        assert_eq!(svc(&env, name)["restarts"], 0, "{name}");
    }
    assert!(tend.stderr().contains("worker@2: killed by signal SIGKILL"), "{}", tend.dump());
}

#[test]
fn the_unit_name_acts_on_every_instance_and_a_full_name_on_one() {
    let env = Env::new();
    let got = env.p("got");
    env.unit(
        "worker",
        &format!(
            "{}instances: 3\nstop_timeout: 2s\n",
            sh(&format!(
                "trap 'echo %i >> {}' USR1\necho \"up %i\"\nwhile true; do sleep 0.05; done",
                got.display()
            ))
        ),
    );
    env.unit("web", "command: [sleep, '1000']\n");
    let tend = env.up();
    wait_running(&env, &tend, &["worker@1", "worker@2", "worker@3", "web"]);
    // status by unit name: the instances only.
    let (code, list) = status_json(&env, &["worker"]);
    assert_eq!(code, 0);
    assert_eq!(list.len(), 3);
    // restart one instance by its full name.
    let before = pids(&env, &["worker@1", "worker@2", "worker@3", "web"]);
    let out = ctl(&env, &["restart", "worker@2"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let after = pids(&env, &["worker@1", "worker@2", "worker@3", "web"]);
    assert_eq!((after[0], after[2], after[3]), (before[0], before[2], before[3]));
    assert_ne!(after[1], before[1]);
    // restart the unit: every instance, and nothing else.
    let out = ctl(&env, &["restart", "worker"]);
    assert_eq!(out.code, 0, "{}", out.show());
    for name in ["worker@1", "worker@2", "worker@3"] {
        assert!(out.stdout.contains(&format!("{name}: restarted")), "{}", out.show());
    }
    let again = pids(&env, &["worker@1", "worker@2", "worker@3", "web"]);
    assert!(again[..3].iter().zip(&after[..3]).all(|(a, b)| a != b), "{again:?} {after:?}");
    assert_eq!(again[3], before[3], "web untouched");
    // signal: every instance gets it.
    let out = ctl(&env, &["signal", "USR1", "worker"]);
    assert_eq!(out.code, 0, "{}", out.show());
    tend.wait_until(T, "each instance to get SIGUSR1", || {
        let mut lines: Vec<String> = read(&got).lines().map(str::to_string).collect();
        lines.sort();
        lines == ["1", "2", "3"]
    });
    // logs: the lines of every instance.
    let out = ctl(&env, &["logs", "worker"]);
    for i in 1..=3 {
        assert!(out.stdout.contains(&format!("up {i}")), "{}", out.show());
    }
    // stop one, then the unit, then start the unit.
    let out = ctl(&env, &["stop", "worker@3"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(state(&env, "worker@3"), "stopped");
    assert_eq!(state(&env, "worker@1"), "running");
    let out = ctl(&env, &["stop", "worker"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let (_, list) = status_json(&env, &["worker"]);
    assert!(list.iter().all(|s| s["state"] == "stopped"), "{list:?}");
    let out = ctl(&env, &["start", "worker"]);
    assert_eq!(out.code, 0, "{}", out.show());
    wait_running(&env, &tend, &["worker@1", "worker@2", "worker@3"]);
    // An unknown name says what is known, pools by their unit's name.
    let out = ctl(&env, &["status", "wroker"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("did you mean 'worker'?"), "{}", out.show());
    assert!(out.stderr.contains("known: web, worker (3 instances)"), "{}", out.show());
}

/// `depends_on: {worker: ready}` waits until every instance is ready.
#[test]
fn a_dependency_on_the_pool_waits_for_every_instance() {
    let env = Env::new();
    let go = env.p("go");
    std::fs::create_dir(&go).unwrap();
    env.unit(
        "worker",
        &format!(
            "{}type: notify\nnotify_fd: 3\ninstances: 3\n",
            sh(&format!(
                "while [ ! -e {}/%i ]; do sleep 0.02; done\necho ready >&3\nexec sleep 1000",
                go.display()
            ))
        ),
    );
    env.unit("lb", "command: [sleep, '1000']\ndepends_on: {worker: ready}\n");
    let tend = env.up();
    wait_socket(&env, &tend);
    std::fs::write(go.join("1"), "").unwrap();
    std::fs::write(go.join("3"), "").unwrap();
    wait_state(&env, &tend, "worker@3", "ready");
    wait_state(&env, &tend, "worker@1", "ready");
    let lb = svc(&env, "lb");
    assert_eq!(lb["state"], "waiting", "{lb}");
    assert_eq!(lb["reason"], "waiting for worker@2: starting", "{lb}");
    std::fs::write(go.join("2"), "").unwrap();
    wait_state(&env, &tend, "lb", "running");
}

/// `tend check` lists a pool with its size; `worker@.yaml` points to
/// `instances:`.
#[test]
fn check_lists_pools_and_refuses_template_files() {
    let env = Env::new();
    env.unit("worker", "command: [sleep, '1']\ninstances: 4\n");
    env.unit("web", "command: [sleep, '1']\n");
    let units = env.units();
    let out = ctl(&env, &["check", units.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("2 units ok: web, worker (4 instances)"), "{}", out.show());
    env.unit("api@", "command: [api, '%i']\n");
    let (code, err) = env.check();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'api@' looks like a template unit"), "{err}");
    assert!(err.contains("hint: name the file api.yaml and add `instances: 4`"), "{err}");
}

/// `tend scale`: new instances start, the surplus stop from the highest,
/// the instances that stay (and the pool's dependents) are not touched.
#[test]
fn scale_up_and_down() {
    let env = Env::new();
    env.unit("worker", "command: [sleep, '1000']\ninstances: 2\nstop_timeout: 2s\n");
    env.unit("lb", "command: [sleep, '1000']\ndepends_on: {worker: started}\n");
    let tend = env.up();
    wait_running(&env, &tend, &["worker@1", "worker@2", "lb"]);
    let before = pids(&env, &["worker@1", "worker@2", "lb"]);
    let out = ctl(&env, &["scale", "worker", "4"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.starts_with("worker: scaled from 2 to 4 instances\n"), "{}", out.show());
    assert!(
        out.stdout.contains("worker@3: started") && out.stdout.contains("worker@4: started"),
        "{}",
        out.show()
    );
    let (_, list) = status_json(&env, &[]);
    for name in ["worker@3", "worker@4"] {
        assert_eq!(service(&list, name).unwrap()["state"], "running", "{list:?}");
    }
    assert_eq!(pids(&env, &["worker@1", "worker@2", "lb"]), before, "the others are not touched");
    let surplus = pids(&env, &["worker@2", "worker@3", "worker@4"]);
    let out = ctl(&env, &["scale", "worker", "1"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let stopped: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(stopped, ["worker@4: stopped", "worker@3: stopped", "worker@2: stopped"], "{}", out.show());
    for pid in surplus {
        assert!(is_gone(pid), "{pid} still runs");
    }
    let (code, list) = status_json(&env, &[]);
    assert_eq!(code, 0);
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lb", "worker@1"]);
    assert_eq!(pids(&env, &["worker@1", "lb"]), [before[0], before[2]]);
    // A reload keeps the count while the unit's `instances:` stays as it was.
    let out = ctl(&env, &["reload"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(status_json(&env, &["worker"]).1.len(), 1);
    let out = ctl(&env, &["scale", "worker", "1"]);
    assert_eq!(out.stdout, "worker: already 1 instances\n", "{}", out.show());
    // What cannot be scaled says why.
    let out = ctl(&env, &["scale", "lb", "3"]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert_eq!(out.stderr, "tend: 'lb' has no instances: give its unit `instances:` to run it as a pool\n");
    let events = tend.events();
    assert!(events.iter().any(|e| e == "worker: scaled from 4 to 1 instances"), "{}", tend.dump());
}

/// A reload of a changed `instances:` applies the difference the same way.
#[test]
fn reload_of_a_changed_instances_applies_the_difference() {
    let env = Env::new();
    env.unit("worker", "command: [sleep, '1000']\ninstances: 3\n");
    let tend = env.up();
    wait_running(&env, &tend, &["worker@1", "worker@2", "worker@3"]);
    let before = pids(&env, &["worker@1", "worker@2"]);
    env.unit("worker", "command: [sleep, '1000']\ninstances: 2\n");
    let out = ctl(&env, &["reload", "--json"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["stopped"], serde_json::json!(["worker@3"]), "{report}");
    assert_eq!(report["unchanged"], serde_json::json!(["worker@1", "worker@2"]), "{report}");
    env.unit("worker", "command: [sleep, '1000']\ninstances: 4\n");
    let out = ctl(&env, &["reload", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["started"], serde_json::json!(["worker@3", "worker@4"]), "{report}");
    wait_running(&env, &tend, &["worker@3", "worker@4"]);
    assert_eq!(pids(&env, &["worker@1", "worker@2"]), before);
}

/// `tend restart --rolling`: one instance at a time, each ready again
/// before the next; sampled all along, at least N-1 of N are ready.
#[test]
fn a_rolling_restart_keeps_all_but_one_instance_ready() {
    let env = Env::new();
    env.unit(
        "worker",
        &format!(
            "{}type: notify\nnotify_fd: 3\ninstances: 3\nstop_timeout: 2s\n",
            sh("sleep 0.3\necho ready >&3\nexec sleep 1000")
        ),
    );
    let tend = env.up();
    wait_socket(&env, &tend);
    for name in ["worker@1", "worker@2", "worker@3"] {
        wait_state(&env, &tend, name, "ready");
    }
    let before = pids(&env, &["worker@1", "worker@2", "worker@3"]);
    // Sample the pool until the restart is done.
    let socket = env.socket();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                samples.push(ready_instances(&socket));
            }
            samples
        })
    };
    let started = std::time::Instant::now();
    let out = ctl(&env, &["restart", "--rolling", "worker"]);
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let samples = sampler.join().unwrap();
    assert_eq!(out.code, 0, "{}\n{}", out.show(), tend.dump());
    for name in ["worker@1", "worker@2", "worker@3"] {
        assert!(out.stdout.contains(&format!("{name}: ready (pid ")), "{}", out.show());
    }
    let after = pids(&env, &["worker@1", "worker@2", "worker@3"]);
    assert!(before.iter().zip(&after).all(|(b, a)| b != a), "each restarted: {before:?} {after:?}");
    let fewest = samples.iter().min().copied().unwrap_or(0);
    let during = samples.iter().filter(|&&n| n == 2).count();
    eprintln!(
        "{} samples over {took:?}, fewest ready {fewest}, {during} with one being restarted",
        samples.len()
    );
    assert!(fewest >= 2, "at some moment fewer than 2 of 3 were ready: {samples:?}");
    assert!(during > 0, "no sample caught a restart in progress: {samples:?}");
    // One at a time, each after the last was ready: three 0.3 s waits.
    assert!(took >= std::time::Duration::from_millis(900), "{took:?}");
}

/// How many of the pool's instances `status` calls ready.
fn ready_instances(socket: &std::path::Path) -> usize {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.write_all(b"{\"v\":1,\"cmd\":\"status\",\"names\":[\"worker\"]}\n").unwrap();
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
    reply["services"].as_array().unwrap().iter().filter(|s| s["state"] == "ready").count()
}

/// A replacement that does not come up stops the rolling restart there,
/// exit 1, and the instances after it are left as they are.
#[test]
fn a_rolling_restart_stops_at_a_replacement_that_fails() {
    let env = Env::new();
    let broken = env.p("broken");
    env.unit(
        "worker",
        &format!(
            "{}type: notify\nnotify_fd: 3\ninstances: 3\nrestart_delay: 5s\nstop_timeout: 2s\n",
            sh(&format!(
                "if [ %i = 2 ] && [ -e {} ]; then exit 1; fi\necho ready >&3\nexec sleep 1000",
                broken.display()
            ))
        ),
    );
    let tend = env.up();
    wait_socket(&env, &tend);
    for name in ["worker@1", "worker@2", "worker@3"] {
        wait_state(&env, &tend, name, "ready");
    }
    let before = pids(&env, &["worker@1", "worker@3"]);
    std::fs::write(&broken, "").unwrap();
    let out = ctl(&env, &["restart", "--rolling", "worker"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stdout.contains("worker@1: ready (pid"), "{}", out.show());
    assert!(
        out.stderr.contains(
            "tend: rolling restart of worker stopped at worker@2 (did not stay up: exited with status 1"
        ),
        "{}",
        out.show()
    );
    assert!(out.stderr.contains("not restarted: worker@3"), "{}", out.show());
    let now = pids(&env, &["worker@1", "worker@3"]);
    assert_ne!(now[0], before[0], "worker@1 was restarted");
    assert_eq!(now[1], before[1], "worker@3 was left alone");
    assert!(tend.stderr().contains("rolling restart of worker stopped at worker@2"), "{}", tend.dump());
}
