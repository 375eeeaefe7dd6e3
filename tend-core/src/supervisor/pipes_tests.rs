//! Tests of pipelines in the whole core: when pipes open and close, what
//! each spawn's standard streams are, and the order in which consumers and
//! producers start and stop. `Loop` plays the loop with a tiny kernel:
//! pids, exec confirmations and exits on stop signals, one event at a time.

use super::super::{Event, ServiceId};
use super::*;
use crate::proto::{Reply, Request, Target};
use crate::spec::{Dependency, DependencyCondition, StdinSource};
use crate::{ExitStatus, Time};
use std::time::Duration;

const SIGTERM: i32 = 15;
const SIGCONT: i32 = 18;

use crate::supervisor::tests::Unit;

/// The core tests' unit, with a start limit these tests never reach.
fn unit(name: &str) -> Unit {
    let mut u = crate::supervisor::tests::unit(name);
    let config = std::sync::Arc::make_mut(&mut u.0.config);
    config.start_limit_burst = 100;
    config.start_limit_interval = Duration::from_secs(10);
    u
}

fn piped(name: &str, stdout_to: Option<&str>, stderr_to: Option<&str>) -> Unit {
    let mut u = unit(name);
    u.0.stdout_to = stdout_to.map(str::to_string);
    u.0.stderr_to = stderr_to.map(str::to_string);
    u
}

/// What the loop saw, in order, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Open(String),
    Close(String),
    Spawn(String, Stdio),
    Signal(String, i32),
}

struct Loop {
    core: Core<Unit>,
    now: Time,
    next_pid: i32,
    seen: Vec<Seen>,
    /// The last reload reply.
    reload: Option<crate::proto::ReloadReport>,
}

impl Loop {
    fn new(units: Vec<Unit>) -> Loop {
        Loop {
            core: Core::new(units, 1, "test"),
            now: Time::ZERO,
            next_pid: 100,
            seen: Vec::new(),
            reload: None,
        }
    }

    fn id(&self, name: &str) -> ServiceId {
        (0..self.core.len()).rev().find(|&i| self.core.spec(i).name == name).expect("a service")
    }

    fn name(&self, id: ServiceId) -> String {
        self.core.spec(id).name.clone()
    }

    /// Feed an event; carry out what comes back: forks succeed and exec at
    /// once; stop signals end the process (its group empty).
    fn feed(&mut self, event: Event<Unit>) {
        let mut queue = std::collections::VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            for action in self.core.handle(self.now, event) {
                match action {
                    Action::OpenPipe { pipe } => self.seen.push(Seen::Open(self.name(pipe))),
                    Action::ClosePipe { pipe } => self.seen.push(Seen::Close(self.name(pipe))),
                    Action::Spawn { service, stdio, .. } => {
                        self.seen.push(Seen::Spawn(self.name(service), stdio));
                        let pid = self.next_pid;
                        self.next_pid += 1;
                        queue.push_back(Event::Spawned { service, pid });
                        queue.push_back(Event::ExecConfirmed { service });
                    }
                    Action::Signal { service, pid, signal, .. } => {
                        if signal != SIGCONT {
                            self.seen.push(Seen::Signal(self.name(service), signal));
                        }
                        if signal == SIGTERM || signal == 9 {
                            let status = ExitStatus::Signaled { signal, core_dumped: false };
                            queue.push_back(Event::Exited {
                                pid,
                                status,
                                group_remains: false,
                                oom_killed: false,
                            });
                        }
                    }
                    Action::LoadUnits { .. } => panic!("the tests give the units"),
                    Action::Reply { reply: Reply::Reload(reload), .. } => self.reload = Some(reload.reload),
                    _ => {}
                }
            }
        }
    }

    fn take(&mut self) -> Vec<Seen> {
        std::mem::take(&mut self.seen)
    }

    /// Run deadlines (backoffs) due within `by`.
    fn run_for(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.core.next_deadline().filter(|&at| at <= end) {
            self.now = self.now.max(at);
            self.feed(Event::Tick);
        }
        self.now = end;
    }

    fn crash(&mut self, name: &str) {
        let pid = self.core.pid(self.id(name)).expect("running");
        self.feed(Event::Exited {
            pid,
            status: ExitStatus::Code(1),
            group_remains: false,
            oom_killed: false,
        });
    }

    fn reload(&mut self, units: Vec<Unit>) {
        self.feed(Event::Reloaded { asked_by: vec![7], units: Ok(units), warnings: Vec::new() });
    }

    fn request(&mut self, request: Request) {
        self.feed(Event::Request { conn: 9, request, wall: std::time::SystemTime::UNIX_EPOCH });
    }
}

fn pipe_in(id: ServiceId) -> Stdio {
    Stdio { stdin: Input::Pipe(id), stdout: Output::Tend, stderr: Output::Tend }
}

fn to_tend(stdin: Input) -> Stdio {
    Stdio { stdin, stdout: Output::Tend, stderr: Output::Tend }
}

fn spawn(name: &str, stdio: Stdio) -> Seen {
    Seen::Spawn(name.to_string(), stdio)
}

fn position(seen: &[Seen], wanted: impl Fn(&Seen) -> bool) -> usize {
    seen.iter().position(wanted).unwrap_or_else(|| panic!("not seen in {seen:?}"))
}

#[test]
fn the_pipe_opens_first_and_the_consumer_starts_before_its_producer() {
    let mut l = Loop::new(vec![piped("app", Some("shipper"), None), unit("shipper")]);
    assert!(l.take().is_empty());
    l.feed(Event::Up);
    let shipper = l.id("shipper");
    let app_stdio = Stdio { stdin: Input::Null, stdout: Output::Pipe(shipper), stderr: Output::Tend };
    assert_eq!(
        l.take(),
        vec![Seen::Open("shipper".into()), spawn("shipper", pipe_in(shipper)), spawn("app", app_stdio)],
        "app waits for shipper to run, though it comes first by name"
    );
    assert_eq!(l.core.open_pipes(), &[shipper]);
}

#[test]
fn a_consumer_restart_keeps_the_pipe_and_its_producers() {
    let mut l = Loop::new(vec![piped("app", Some("shipper"), None), unit("shipper")]);
    l.feed(Event::Up);
    let app_pid = l.core.pid(l.id("app"));
    l.take();
    l.crash("shipper");
    l.run_for(Duration::from_secs(1));
    let shipper = l.id("shipper");
    assert_eq!(l.take(), vec![spawn("shipper", pipe_in(shipper))], "no close, no stop of app");
    assert_eq!(l.core.pid(l.id("app")), app_pid);
}

#[test]
fn a_producer_restart_keeps_the_pipe_and_leaves_the_consumer_alone() {
    let mut l = Loop::new(vec![piped("app", Some("shipper"), None), unit("shipper")]);
    l.feed(Event::Up);
    let shipper_pid = l.core.pid(l.id("shipper"));
    l.take();
    l.crash("app");
    l.run_for(Duration::from_secs(1));
    let shipper = l.id("shipper");
    let app_stdio = Stdio { stdin: Input::Null, stdout: Output::Pipe(shipper), stderr: Output::Tend };
    assert_eq!(l.take(), vec![spawn("app", app_stdio)]);
    assert_eq!(l.core.pid(shipper), shipper_pid);
}

#[test]
fn shutdown_lets_go_of_the_pipe_and_stops_the_consumer_after_every_producer() {
    let mut l = Loop::new(vec![
        piped("a", Some("log"), None),
        piped("b", None, Some("log")),
        piped("c", Some("log"), Some("log")),
        unit("log"),
    ]);
    l.feed(Event::Up);
    l.take();
    l.feed(Event::ShutdownSignal { signal: SIGTERM });
    let seen = l.take();
    assert_eq!(seen[0], Seen::Close("log".into()), "{seen:?}");
    let consumer = position(&seen, |s| *s == Seen::Signal("log".into(), SIGTERM));
    for producer in ["a", "b", "c"] {
        assert!(position(&seen, |s| *s == Seen::Signal(producer.into(), SIGTERM)) < consumer, "{seen:?}");
    }
    assert!(l.core.finished());
}

#[test]
fn several_producers_share_one_pipe_and_each_stream_goes_where_its_unit_says() {
    let mut l = Loop::new(vec![
        piped("a", Some("log"), None),
        piped("b", None, Some("log")),
        piped("c", Some("log"), Some("log")),
        unit("log"),
    ]);
    l.feed(Event::Up);
    let log = l.id("log");
    let seen = l.take();
    assert_eq!(seen.iter().filter(|s| matches!(s, Seen::Open(_))).count(), 1);
    let p = Output::Pipe(log);
    assert!(seen.contains(&spawn("a", Stdio { stdin: Input::Null, stdout: p, stderr: Output::Tend })));
    assert!(seen.contains(&spawn("b", Stdio { stdin: Input::Null, stdout: Output::Tend, stderr: p })));
    assert!(seen.contains(&spawn("c", Stdio { stdin: Input::Null, stdout: p, stderr: p })));
    assert!(seen.contains(&spawn("log", pipe_in(log))));
}

#[test]
fn stop_of_a_consumer_by_hand_stops_its_producers_first_and_keeps_the_pipe() {
    let mut l = Loop::new(vec![piped("app", Some("shipper"), None), unit("shipper"), unit("other")]);
    l.feed(Event::Up);
    l.take();
    l.request(Request::Stop(Target {
        names: vec!["shipper".into()],
        all: false,
        wait: true,
        rolling: false,
    }));
    let seen = l.take();
    assert_eq!(
        seen,
        vec![Seen::Signal("app".into(), SIGTERM), Seen::Signal("shipper".into(), SIGTERM)],
        "app first; the pipe stays for a later start"
    );
    l.request(Request::Start(Target { names: vec!["app".into()], all: false, wait: true, rolling: false }));
    let shipper = l.id("shipper");
    let app_stdio = Stdio { stdin: Input::Null, stdout: Output::Pipe(shipper), stderr: Output::Tend };
    assert_eq!(l.take(), vec![spawn("shipper", pipe_in(shipper)), spawn("app", app_stdio)]);
}

#[test]
fn the_units_own_stdin_is_used_when_no_pipe_feeds_it() {
    let mut file = unit("reader");
    file.0.stdin = StdinSource::File;
    let mut data = unit("psql");
    data.0.stdin = StdinSource::Data;
    let mut l = Loop::new(vec![file, data, unit("plain")]);
    l.feed(Event::Up);
    let seen = l.take();
    assert!(seen.contains(&spawn("reader", to_tend(Input::File))));
    assert!(seen.contains(&spawn("psql", to_tend(Input::Data))));
    assert!(seen.contains(&spawn("plain", to_tend(Input::Null))));
    assert!(!seen.iter().any(|s| matches!(s, Seen::Open(_))));
}

#[test]
fn a_producer_that_also_depends_on_its_consumer_keeps_its_own_condition() {
    let mut app = piped("app", Some("db"), None);
    app.0.depends_on.push(Dependency { name: "db".into(), condition: DependencyCondition::Ready });
    let spec = effective_spec(&app);
    assert_eq!(
        spec.depends_on,
        vec![Dependency { name: "db".into(), condition: DependencyCondition::Ready }]
    );
    let spec = effective_spec(&piped("app", Some("log"), Some("log")));
    assert_eq!(
        spec.depends_on,
        vec![Dependency { name: "log".into(), condition: DependencyCondition::Started }],
        "one dependency for both streams"
    );
}

#[test]
fn a_reload_that_adds_a_pipe_restarts_the_new_consumer_and_one_that_removes_it_closes_it() {
    let mut l = Loop::new(vec![unit("app"), unit("shipper")]);
    l.feed(Event::Up);
    l.take();
    l.reload(vec![piped("app", Some("shipper"), None), unit("shipper")]);
    let shipper = l.id("shipper");
    let seen = l.take();
    let report = l.reload.take().expect("answered");
    assert_eq!(report.restarted, ["app", "shipper"], "shipper's stdin changes: restarted too");
    assert!(report.unchanged.is_empty());
    assert_eq!(seen[0], Seen::Open("shipper".into()), "{seen:?}");
    let app_stdio = Stdio { stdin: Input::Null, stdout: Output::Pipe(shipper), stderr: Output::Tend };
    let consumer = position(&seen, |s| *s == spawn("shipper", pipe_in(shipper)));
    let producer = position(&seen, |s| *s == spawn("app", app_stdio));
    assert!(consumer < producer, "the new app waits for the new shipper: {seen:?}");

    // Another producer into the same consumer: shipper is left alone.
    l.reload(vec![
        piped("app", Some("shipper"), None),
        piped("cron", None, Some("shipper")),
        unit("shipper"),
    ]);
    let report = l.reload.take().expect("answered");
    assert_eq!(report.started, ["cron"]);
    assert_eq!(report.unchanged, ["app", "shipper"]);
    assert!(!l.take().iter().any(|s| matches!(s, Seen::Open(_) | Seen::Close(_))));

    // No pipe into shipper any more: tend lets go, and shipper gets its own stdin back.
    l.reload(vec![unit("app"), unit("shipper")]);
    let report = l.reload.take().expect("answered");
    assert_eq!(report.restarted, ["app", "shipper"]);
    assert_eq!(report.stopped, ["cron"]);
    let seen = l.take();
    assert_eq!(seen[0], Seen::Close("shipper".into()), "{seen:?}");
    assert!(seen.contains(&spawn("shipper", to_tend(Input::Null))), "{seen:?}");
    assert!(seen.contains(&spawn("app", to_tend(Input::Null))), "{seen:?}");
    assert!(l.core.open_pipes().is_empty());
}

#[test]
fn removing_producer_and_consumer_stops_the_producer_first() {
    let mut l = Loop::new(vec![piped("app", Some("shipper"), None), unit("shipper"), unit("other")]);
    l.feed(Event::Up);
    l.take();
    l.reload(vec![unit("other")]);
    let seen = l.take();
    assert_eq!(seen[0], Seen::Close("shipper".into()), "{seen:?}");
    let consumer = position(&seen, |s| *s == Seen::Signal("shipper".into(), SIGTERM));
    let producer = position(&seen, |s| *s == Seen::Signal("app".into(), SIGTERM));
    assert!(producer < consumer, "{seen:?}");
}
