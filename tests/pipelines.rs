//! Pipelines between services (README: Pipelines between services), through
//! the real binary: `stdout: {to: NAME}` and `stderr: {to: NAME}`, the pipe
//! tend holds across restarts of either side, several producers into one
//! consumer, the start and stop order, `tend check`'s refusals, a log file
//! beside a pipe, and reloads that add or remove a pipe.
//!
//! The services are small perl programs (perl is on every Debian machine):
//! producers write each line with one `syswrite`, so each line is one
//! write(2); the consumer that is killed mid-stream reads one byte at a
//! time, so that when it is paused every byte it took from the pipe is in
//! its output file, and nothing it did not take is lost with it.

mod common;

use common::*;
use std::collections::HashMap;
use std::fs;
use std::time::Duration;

/// Seconds: the 100,000 lines go through a byte-at-a-time perl reader.
const LONG: Duration = Duration::from_secs(60);

/// A consumer that appends each line it reads to `out`; at line `pause`,
/// on its first run only (the `marker` file does not exist yet), it writes
/// its pid to `marker` and stops reading until it is killed.
fn line_copier(out: &str, marker: &str, pause: u64) -> String {
    format!(
        r#"command:
  - perl
  - -e
  - |
    open(my $out, '>>', '{out}') or die "cannot open {out}: $!";
    my ($line, $n, $c) = ('', 0);
    while (sysread(STDIN, $c, 1)) {{
      $line .= $c;
      next unless $c eq "\n";
      syswrite($out, $line);
      $line = '';
      $n++;
      if ($n == {pause} && ! -e '{marker}') {{
        open(my $m, '>', '{marker}.tmp'); print $m "$$\n"; close($m); rename('{marker}.tmp', '{marker}');
        sleep 1 while 1;
      }}
    }}
    syswrite($out, "EOF\n");
restart: always
restart_delay: 100ms
"#
    )
}

/// A producer writing `count` numbered lines, one write(2) each, then
/// exiting 0 (and not restarted).
fn numbered(count: u64, to: &str) -> String {
    format!(
        r#"command: [perl, -e, 'syswrite(STDOUT, "$_\n") for 1..{count}']
stdout: {{to: {to}}}
restart: never
"#
    )
}

#[test]
fn a_consumer_killed_mid_stream_loses_and_repeats_no_line_the_pipe_held() {
    let env = Env::new();
    let out = env.p("received");
    let marker = env.p("paused");
    env.unit("consumer", &line_copier(out.to_str().unwrap(), marker.to_str().unwrap(), 30_000));
    env.unit("producer", &numbered(100_000, "consumer"));
    let mut tend = env.up();
    wait_socket(&env, &tend);
    // The consumer stopped reading at line 30,000: the producer fills the
    // pipe and waits. Kill the consumer there, as a crash would.
    let paused = env.await_pid(&tend, "paused");
    let killed = ctl(&env, &["signal", "SIGKILL", "consumer"]);
    assert_eq!(killed.code, 0, "{}", killed.show());
    wait_gone(paused, T, "the killed consumer");
    // A new consumer reads on from line 30,001, which waited in the pipe.
    tend.wait_until(LONG, "the 100,000th line to reach the consumer", || read(&out).ends_with("\n100000\n"));
    let text = read(&out);
    let lines: Vec<&str> = text.lines().collect();
    let expected: Vec<String> = (1..=100_000).map(|n| n.to_string()).collect();
    assert_eq!(lines.len(), expected.len(), "a line lost or repeated\n{}", tend.dump());
    assert!(lines.iter().zip(&expected).all(|(a, b)| a == b), "lines out of order\n{}", tend.dump());
    let consumer = svc(&env, "consumer");
    assert_eq!(consumer["restarts"], 1, "{consumer}");
    assert_eq!(consumer["last_exit"]["signal"], "SIGKILL", "{consumer}");
    assert_ne!(consumer["pid"].as_i64(), Some(paused as i64));
    // None of the producer's output reached tend's: it went to the consumer.
    assert!(tend.lines_of("producer").is_empty(), "{}", tend.dump());
    let logs = ctl(&env, &["logs", "producer"]);
    assert!(!logs.stdout.contains("99999"), "{}", logs.show());
    shutdown(&env, &mut tend);
}

#[test]
fn a_producer_restart_gives_the_consumer_no_end_of_file() {
    let env = Env::new();
    let out = env.p("received");
    // The consumer records every line, and `EOF` if its input ends.
    env.unit("consumer", &line_copier(out.to_str().unwrap(), "/nonexistent/never", 0));
    env.unit(
        "producer",
        r#"command: [sh, -c, 'echo "run $$"']
stdout: {to: consumer}
restart: always
restart_delay: 50ms
start_limit: {burst: 1000}
"#,
    );
    let mut tend = env.up();
    let consumer = tend.started_pid("consumer");
    tend.wait_until(T, "three runs of the producer to reach the consumer", || {
        read(&out).lines().filter(|l| l.starts_with("run ")).count() >= 3
    });
    let text = read(&out);
    assert!(!text.contains("EOF"), "the consumer saw end-of-file\n{text}");
    let runs: Vec<&str> = text.lines().collect();
    let distinct: std::collections::BTreeSet<&&str> = runs.iter().collect();
    assert_eq!(distinct.len(), runs.len(), "one line per run, each from a new process: {runs:?}");
    let status = svc(&env, "consumer");
    assert_eq!(status["pid"].as_i64(), Some(consumer as i64), "the consumer never restarted: {status}");
    assert_eq!(status["restarts"], 0);
    shutdown(&env, &mut tend);
}

#[test]
fn several_producers_into_one_consumer_each_line_whole() {
    let env = Env::new();
    let out = env.p("received");
    // The consumer copies what it reads to a file (in blocks: it is never
    // killed here) and says on its own stdout how far it got.
    env.unit(
        "merge",
        &format!(
            r#"command:
  - perl
  - -e
  - |
    $| = 1;
    open(my $out, '>>', '{}') or die;
    my $n = 0;
    while (my $line = <STDIN>) {{ syswrite($out, $line); $n++; print "merged $n\n" if $n % 10000 == 0; }}
"#,
            out.display()
        ),
    );
    // Three producers, 20,000 lines of 200 bytes each, one write(2) a line
    // (below PIPE_BUF, 4096: the kernel never interleaves such writes);
    // one of them writes on its stderr.
    for (name, stream) in [("a", "stdout"), ("b", "stdout"), ("c", "stderr")] {
        let fd = if stream == "stdout" { "STDOUT" } else { "STDERR" };
        env.unit(
            name,
            &format!(
                r#"command: [perl, -e, 'syswrite({fd}, sprintf("%s %06d %s\n", "{name}", $_, "x" x 189)) for 1..20000']
{stream}: {{to: merge}}
restart: never
"#
            ),
        );
    }
    let mut tend = env.up();
    tend.wait_until(LONG, "60,000 lines merged", || read(&out).lines().count() >= 60_000);
    tend.wait_stdout("merged 60000");
    let text = read(&out);
    let mut next: HashMap<&str, u32> = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "a line cut or mixed with another: {line:?}");
        assert_eq!((line.len(), fields[2].len()), (198, 189), "a line cut or mixed: {line:?}");
        let seq: u32 = fields[1].parse().unwrap_or_else(|_| panic!("{line:?}"));
        let expected = next.entry(fields[0]).or_insert(1);
        assert_eq!(seq, *expected, "producer {} out of order", fields[0]);
        *expected += 1;
    }
    assert_eq!(next, HashMap::from([("a", 20_001), ("b", 20_001), ("c", 20_001)]));
    // The consumer's own output is tend's as usual; the producers' is not.
    assert!(tend.lines_of("merge").iter().any(|l| l == "merged 60000"), "{}", tend.dump());
    for name in ["a", "b", "c"] {
        assert!(tend.lines_of(name).is_empty(), "{name}'s piped stream reached tend\n{}", tend.dump());
        assert!(!lines_of(&tend.stderr(), name).iter().any(|l| l.contains("xxx")), "{}", tend.dump());
    }
    shutdown(&env, &mut tend);
}

/// The position of the first event containing `needle`.
fn event_at(tend: &Tend, needle: &str) -> usize {
    tend.events()
        .iter()
        .position(|e| e.contains(needle))
        .unwrap_or_else(|| panic!("no event {needle:?}\n{}", tend.dump()))
}

#[test]
fn the_consumer_starts_before_its_producers_and_stops_after_them() {
    let env = Env::new();
    // By name, `app` would start first and stop last; the pipe reverses both.
    // zlog does not end at end-of-file (once app is gone, `cat` would, and
    // could be reaped before app): tend must stop it, after app.
    env.unit("app", "command: [sleep, infinity]\nstdout: {to: zlog}\n");
    env.unit("zlog", "command: [sh, -c, 'cat; exec sleep infinity']\n");
    let mut tend = env.up();
    wait_running(&env, &tend, &["app", "zlog"]);
    assert!(event_at(&tend, "zlog: started") < event_at(&tend, "app: started"), "{}", tend.dump());
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    assert!(event_at(&tend, "app: stopped") < event_at(&tend, "zlog: stopping"), "{}", tend.dump());
}

#[test]
fn a_consumer_reads_what_is_left_then_end_of_file_at_shutdown() {
    // At shutdown tend lets go of its ends: once the producers are gone, a
    // consumer that reads to the end gets everything, then end-of-file.
    let env = Env::new();
    let out = env.p("received");
    env.unit(
        "drain",
        &format!(
            r#"command: [sh, -c, 'trap "" TERM; cat > {}; echo EOF >> {}']
stop_timeout: 20s
"#,
            out.display(),
            out.display()
        ),
    );
    env.unit("app", "command: [sh, -c, 'seq 1 500; exec sleep infinity']\nstdout: {to: drain}\n");
    let mut tend = env.up();
    wait_running(&env, &tend, &["app", "drain"]);
    tend.wait_until(T, "the consumer to have the lines", || read(&out).contains("\n500\n"));
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.exit_code(T), 0, "{}", tend.dump());
    assert!(read(&out).ends_with("500\nEOF\n"), "{:?}\n{}", read(&out), tend.dump());
    assert!(!tend.stderr().contains("drain: did not stop"), "it ended by itself\n{}", tend.dump());
}

#[test]
fn a_log_file_gets_what_tend_reads_and_the_pipe_the_rest() {
    let env = Env::new();
    let out = env.p("received");
    env.unit("sink", &format!("command: [sh, -c, 'cat >> {}']\n", out.display()));
    env.unit(
        "app",
        r#"command: [sh, -c, 'echo to-the-pipe; echo to-tend >&2; exec sleep infinity']
stdout: {to: sink}
log: {file: app.log}
"#,
    );
    let mut tend = env.up();
    tend.wait_until(T, "the piped line to reach the consumer", || read(&out) == "to-the-pipe\n");
    let log = env.units().join("app.log");
    tend.wait_until(T, "the stderr line in the log file", || read(&log).contains("to-tend"));
    assert!(!read(&log).contains("to-the-pipe"), "the log file got the piped stream: {}", read(&log));
    assert_eq!(lines_of(&tend.stderr(), "app"), ["to-tend"], "{}", tend.dump());
    assert!(tend.lines_of("app").is_empty(), "{}", tend.dump());
    shutdown(&env, &mut tend);
}

#[test]
fn check_refuses_a_pipe_nowhere_in_a_cycle_or_into_a_oneshot() {
    let env = Env::new();
    env.unit("a", "command: [cat]\nstdout: {to: nope}\n");
    env.unit("b", "command: [cat]\nstdout: {to: c}\n");
    env.unit("c", "command: [cat]\nstderr: {to: b}\n");
    env.unit("d", "command: [cat]\nstdout: {to: once}\n");
    env.unit("once", "command: [cat]\ntype: oneshot\n");
    env.unit("e", "command: [cat]\nstdout: {to: reader}\n");
    env.unit("reader", "command: [cat]\nstdin: {data: hello}\n");
    let (code, stderr) = env.check();
    assert_eq!(code, 2, "{stderr}");
    for message in [
        "a.yaml:2:14: stdout.to: no unit 'nope'",
        "b.yaml:2:14: stdout.to: dependency cycle b -> c -> b (a pipe counts as depends_on: {c: started})",
        "d.yaml:2:14: stdout.to: 'once' is a oneshot: a pipe needs a service that keeps reading",
        "e.yaml:2:14: stdout.to: 'reader' has stdin: {data: ...} of its own",
    ] {
        assert!(stderr.contains(message), "missing {message:?} in\n{stderr}");
    }
    // And `up` starts nothing.
    let mut tend = env.up();
    assert_eq!(tend.exit_code(T), 2, "{}", tend.dump());
}

#[test]
fn reload_adds_and_removes_a_pipe() {
    let env = Env::new();
    let out = env.p("received");
    // Until a pipe feeds it, its stdin is /dev/null: it reads nothing, and waits.
    let consumer = format!("command: [sh, -c, 'cat >> {}; exec sleep infinity']\n", out.display());
    env.unit("sink", &consumer);
    env.unit("app", "command: [sh, -c, 'echo first-$$; exec sleep infinity']\n");
    let mut tend = env.up();
    wait_running(&env, &tend, &["app", "sink"]);
    let sink_before = pid_of(&status_list(&env), "sink");
    tend.wait_until(T, "app's first line on tend's output", || {
        tend.lines_of("app").iter().any(|l| l.starts_with("first-"))
    });

    // Add the pipe: app restarts into it, and sink restarts to read it.
    env.unit("app", "command: [sh, -c, 'echo piped-$$; exec sleep infinity']\nstdout: {to: sink}\n");
    let reload = ctl(&env, &["reload", "--json"]);
    assert_eq!(reload.code, 0, "{}", reload.show());
    let report: serde_json::Value = serde_json::from_str(&reload.stdout).unwrap();
    assert_eq!(report["restarted"], serde_json::json!(["app", "sink"]), "{report}");
    tend.wait_until(T, "the new app's line in the pipe", || read(&out).starts_with("piped-"));
    let list = wait_running(&env, &tend, &["app", "sink"]);
    assert_ne!(pid_of(&list, "sink"), sink_before);
    assert!(!tend.lines_of("app").iter().any(|l| l.starts_with("piped-")), "{}", tend.dump());

    // Remove it: both restart; app's output is tend's again.
    env.unit("app", "command: [sh, -c, 'echo again-$$; exec sleep infinity']\n");
    let reload = ctl(&env, &["reload", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&reload.stdout).unwrap();
    assert_eq!(report["restarted"], serde_json::json!(["app", "sink"]), "{report}");
    tend.wait_until(T, "app's line on tend's output", || {
        tend.lines_of("app").iter().any(|l| l.starts_with("again-"))
    });
    assert!(!read(&out).contains("again-"));
    shutdown(&env, &mut tend);
    let _ = fs::remove_file(&out);
}

/// A pool pipes like any unit: every instance of `worker` writes into the
/// one pipe of `shipper`, and the instances `tend scale` adds do too; the
/// pipe outlives a scale to no instances (the unit still pipes into it).
/// A pipe into a pool names one instance (`sink@2`), and that instance
/// cannot be scaled away.
#[test]
fn pools_pipe_by_instance() {
    let env = Env::new();
    let shipped = env.p("shipped");
    let sunk = env.p("sunk");
    env.unit(
        "shipper",
        &format!("command: [sh, -c, 'cat >> {}; echo EOF >> {}']\n", shipped.display(), shipped.display()),
    );
    env.unit(
        "worker",
        "command: [sh, -c, 'echo from-$TEND_INSTANCE; exec sleep infinity']\ninstances: 2\nstdout: {to: shipper}\n",
    );
    env.unit(
        "sink",
        &format!(
            "command: [sh, -c, 'cat >> {}-$TEND_INSTANCE; exec sleep infinity']\ninstances: 2\n",
            sunk.display()
        ),
    );
    env.unit("app", "command: [sh, -c, 'echo to-two; exec sleep infinity']\nstdout: {to: sink@2}\n");
    let mut tend = env.up();
    let lines = |path: &std::path::Path| {
        let mut l: Vec<String> = read(path).lines().map(str::to_string).collect();
        l.sort();
        l
    };
    tend.wait_until(T, "both instances' lines in the shipper", || lines(&shipped) == ["from-1", "from-2"]);
    let sunk_two = env.p("sunk-2");
    tend.wait_until(T, "app's line in sink@2 only", || read(&sunk_two) == "to-two\n");
    assert_eq!(read(env.p("sunk-1")), "", "sink@1 reads /dev/null");
    let shipper = tend.started_pid("shipper");
    let out = ctl(&env, &["scale", "worker", "3"]);
    assert_eq!(out.code, 0, "{}", out.show());
    tend.wait_until(T, "the new instance's line in the shipper", || lines(&shipped).len() == 3);
    assert_eq!(lines(&shipped), ["from-1", "from-2", "from-3"]);
    // No instance left: the pipe stays (the unit still pipes into it), so
    // the shipper gets no end-of-file, and a scale back up reaches it.
    let out = ctl(&env, &["scale", "worker", "0"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = ctl(&env, &["scale", "worker", "1"]);
    assert_eq!(out.code, 0, "{}", out.show());
    tend.wait_until(T, "worker@1's second line in the shipper", || lines(&shipped).len() == 4);
    assert!(!read(&shipped).contains("EOF"), "{}\n{}", read(&shipped), tend.dump());
    assert_eq!(svc(&env, "shipper")["pid"].as_i64(), Some(shipper as i64), "the shipper never restarted");
    // None of it reached tend's output.
    for name in ["worker@1", "worker@2", "worker@3", "app"] {
        assert!(tend.lines_of(name).is_empty(), "{name}\n{}", tend.dump());
    }
    // sink@2 is fed by app: it cannot be scaled away.
    let out = ctl(&env, &["scale", "sink", "1"]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(out.stderr.contains("app pipes into sink@2"), "{}", out.show());
    shutdown(&env, &mut tend);
}

#[test]
fn check_refuses_a_pipe_into_a_pool_without_its_instance() {
    let env = Env::new();
    env.unit("worker", "command: [cat]\ninstances: 3\n");
    env.unit("single", "command: [cat]\n");
    env.unit("a", "command: [cat]\nstdout: {to: worker}\n");
    env.unit("b", "command: [cat]\nstderr: {to: worker@4}\n");
    env.unit("c", "command: [cat]\nstdout: {to: single@1}\n");
    env.unit("d", "command: [cat]\nstdout: {to: worker@3}\n");
    let (code, stderr) = env.check();
    assert_eq!(code, 2, "{stderr}");
    for message in [
        "a.yaml:2:14: stdout.to: 'worker' is a pool of instances: a pipe feeds one service, so name the instance",
        "b.yaml:2:14: stderr.to: 'worker' has no instance '4'",
        "c.yaml:2:14: stdout.to: 'single' has no instances, so there is no 'single@1'",
    ] {
        assert!(stderr.contains(message), "missing {message:?} in\n{stderr}");
    }
    assert!(!stderr.contains("d.yaml"), "a pipe into one instance is fine:\n{stderr}");
}
