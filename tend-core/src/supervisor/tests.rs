//! The core's own behaviour as a follower or a waiting client sees it,
//! driven by hand in virtual time (the simulation drives it at random).

use super::*;
use crate::proto::{EventKind, ExitKind};
use crate::spec::{Config, Dependency, DependencyCondition, RestartPolicy, ServiceType, Spec};
use std::time::Duration;

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unit(pub Spec);

impl Definition for Unit {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn spec(&self) -> Spec {
        self.0.clone()
    }
    fn service(&self, _instance: Option<&str>) -> Unit {
        self.clone()
    }
}

pub(super) fn unit(name: &str) -> Unit {
    Unit(Spec {
        name: name.into(),
        service_type: ServiceType::Simple,
        depends_on: Vec::new(),
        config: std::sync::Arc::new(Config {
            restart: RestartPolicy::Always,
            success_exit_codes: vec![0],
            restart_delay: ms(100),
            restart_delay_max: ms(1_000),
            start_limit_burst: 2,
            start_limit_interval: ms(60_000),
            stop_signal: 15,
            stop_timeout: ms(2_000),
            process_group: true,
            needs_ready_signal: false,
            oneshot: false,
            start_timeout: None,
            watchdog: None,
            oneshot_timeout: None,
            runtime_max: None,
        }),
        critical: false,
        ready_check: None,
        health_check: None,
        memory_max: None,
        stdin: crate::spec::StdinSource::Null,
        stdout_to: None,
        stderr_to: None,
    })
}

pub(super) fn notify_unit(name: &str) -> Unit {
    let mut u = unit(name);
    u.0.service_type = ServiceType::Notify;
    std::sync::Arc::make_mut(&mut u.0.config).needs_ready_signal = true;
    u
}

pub(super) fn depends(mut u: Unit, on: &str, condition: DependencyCondition) -> Unit {
    u.0.depends_on.push(Dependency { name: on.into(), condition });
    u
}

/// An `events` subscription: the connection, what it follows, the replay.
pub(super) type Followed = (ConnId, Option<Vec<ServiceId>>, Vec<(ServiceId, ServiceEvent)>);

/// A core with a kernel played by hand: forks get pids from 100 on, and
/// what the loop would carry out is kept for the test to look at.
pub(super) struct Driver {
    pub core: Core<Unit>,
    pub now: Time,
    next_pid: i32,
    /// Every event emitted, in order.
    pub events: Vec<ServiceEvent>,
    /// Every reply sent, in order.
    pub replies: Vec<(ConnId, Reply, bool)>,
    pub follows: Vec<Followed>,
    /// Every spawn asked for: (service, whether the restart policy's).
    pub spawns: Vec<(ServiceId, bool)>,
}

impl Driver {
    pub fn new(units: Vec<Unit>) -> Driver {
        Driver {
            core: Core::new(units, 1, "test"),
            now: Time::ZERO,
            next_pid: 100,
            events: Vec::new(),
            replies: Vec::new(),
            follows: Vec::new(),
            spawns: Vec::new(),
        }
    }

    pub fn at(&mut self, t: u64) -> &mut Driver {
        self.now = ms(t);
        self
    }

    pub fn feed(&mut self, event: Event<Unit>) {
        let actions = self.core.handle(self.now, event);
        for action in actions {
            match action {
                Action::Spawn { service, restart, .. } => {
                    self.spawns.push((service, restart));
                    let pid = self.next_pid;
                    self.next_pid += 1;
                    self.feed(Event::Spawned { service, pid });
                }
                Action::Emit { mut event, service } => {
                    event.state = self.core.shown_state(service);
                    self.events.push(event);
                }
                Action::Reply { conn, reply, done } => self.replies.push((conn, reply, done)),
                Action::Follow { conn, reply, services, replay } => {
                    self.replies.push((conn, reply, false));
                    self.follows.push((conn, services, replay));
                }
                _ => {}
            }
        }
    }

    pub fn request(&mut self, conn: ConnId, request: Request) {
        self.feed(Event::Request { conn, request, wall: std::time::SystemTime::UNIX_EPOCH });
    }

    pub fn id(&self, name: &str) -> ServiceId {
        (0..self.core.len()).find(|&i| self.core.spec(i).name == name).expect("a service of that name")
    }

    pub fn pid(&self, name: &str) -> i32 {
        self.core.pid(self.id(name)).expect("a live process")
    }

    /// Exec confirmed for `name`'s process.
    pub fn exec(&mut self, name: &str) {
        let service = self.id(name);
        self.feed(Event::ExecConfirmed { service });
    }

    pub fn exit(&mut self, name: &str, status: ExitStatus) {
        let pid = self.pid(name);
        self.feed(Event::Exited { pid, status, group_remains: false, oom_killed: false });
    }

    /// The events so far, as `(service, event word, state)`, and forget them.
    pub fn take(&mut self) -> Vec<(String, &'static str, &'static str)> {
        std::mem::take(&mut self.events)
            .into_iter()
            .map(|e| (e.service, e.kind.as_str(), e.state.as_str()))
            .collect()
    }
}

fn said(service: &str, event: &'static str, state: &'static str) -> (String, &'static str, &'static str) {
    (service.to_string(), event, state)
}

#[test]
fn a_service_that_starts_becomes_ready_crashes_backs_off_and_fails_says_so_in_order() {
    let mut d = Driver::new(vec![notify_unit("web")]);
    d.feed(Event::Up);
    assert_eq!(d.take(), vec![said("web", "state", "starting")], "forked, not yet running");
    d.exec("web");
    let pid = d.pid("web");
    let events = std::mem::take(&mut d.events);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Started { pid });
    assert_eq!((events[0].state.as_str(), events[0].message.as_str()), ("starting", "started (pid 100)"));
    let web = d.id("web");
    d.at(5).feed(Event::Notify { service: web, fields: vec![("READY".into(), "1".into())] });
    assert_eq!(d.take(), vec![said("web", "ready", "ready")]);
    // Crash: exited with its kind and code, then the backoff with its delay.
    d.at(1_000).exit("web", ExitStatus::Code(3));
    let events = std::mem::take(&mut d.events);
    let kinds: Vec<&EventKind> = events.iter().map(|e| &e.kind).collect();
    match kinds.as_slice() {
        [EventKind::Exited(exit), EventKind::Backoff { delay_secs, restarts: 1 }] => {
            assert_eq!((exit.kind, exit.code, exit.signal.as_deref()), (ExitKind::Exited, Some(3), None));
            assert_eq!(*delay_secs, 0.1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(events[0].message, "exited with status 3");
    assert!(events.iter().all(|e| e.state.as_str() == "backoff"));
    // The restart: forked (state), running again; killed by a signal twice
    // more and the start limit (burst 2) puts it in failed.
    d.at(1_100).feed(Event::Tick);
    d.exec("web");
    let kill = ExitStatus::Signaled { signal: 9, core_dumped: false };
    d.at(1_200).exit("web", kill);
    d.at(1_400).feed(Event::Tick);
    d.exec("web");
    d.events.clear();
    d.at(1_500).exit("web", kill);
    let events = std::mem::take(&mut d.events);
    match events.iter().map(|e| &e.kind).collect::<Vec<_>>().as_slice() {
        [EventKind::Exited(exit), EventKind::Failed { reason, kind: ExitKind::StartLimit }] => {
            assert_eq!(
                (exit.kind, exit.signal.as_deref(), exit.core_dumped),
                (ExitKind::Killed, Some("SIGKILL"), Some(false))
            );
            assert_eq!(reason, "start limit hit (3 failures in 1m)");
        }
        other => panic!("{other:?}"),
    }
    assert!(events.iter().all(|e| e.state.as_str() == "failed"));
}

/// Only the restart policy's spawns say `restart` (the loop makes those
/// through its spawner thread): at the end of the delay, or at once with a
/// delay of 0; not the first start, nor a `restart` request.
#[test]
fn a_spawn_says_whether_it_is_the_restart_policys() {
    let mut quick = unit("quick");
    std::sync::Arc::make_mut(&mut quick.0.config).restart_delay = Duration::ZERO;
    let mut d = Driver::new(vec![unit("web"), quick]);
    let (web, quick) = (d.id("web"), d.id("quick"));
    d.feed(Event::Up);
    assert_eq!(d.spawns, [(web, false), (quick, false)], "tend's start");
    d.exec("web");
    d.exec("quick");
    d.spawns.clear();
    d.at(1_000).exit("web", ExitStatus::Code(3));
    assert_eq!(d.spawns, [], "backing off");
    d.at(1_100).feed(Event::Tick);
    assert_eq!(d.spawns, [(web, true)], "the delay ran out");
    d.exec("web");
    d.at(1_200).exit("quick", ExitStatus::Code(3));
    assert_eq!(d.spawns, [(web, true), (quick, true)], "a delay of 0");
    d.exec("quick");
    d.spawns.clear();
    d.at(1_300).request(7, Request::Restart(crate::proto::Target::names(vec!["quick".into()])));
    d.at(1_310).exit("quick", ExitStatus::Signaled { signal: 15, core_dumped: false });
    assert_eq!(d.spawns, [(quick, false)], "asked for");
}

#[test]
fn stops_are_told_with_the_signal_and_whether_it_took_sigkill() {
    let mut d = Driver::new(vec![unit("web")]);
    d.feed(Event::Up);
    d.exec("web");
    d.take();
    d.at(10).request(7, Request::Stop(crate::proto::Target::names(vec!["web".into()])));
    let events = std::mem::take(&mut d.events);
    assert_eq!(events[0].kind, EventKind::Stopping { signal: "SIGTERM".into() });
    assert_eq!(events[0].state.as_str(), "stopping");
    d.at(2_010).feed(Event::Tick);
    let events = std::mem::take(&mut d.events);
    assert_eq!(events[0].kind, EventKind::Stopping { signal: "SIGKILL".into() });
    assert_eq!(events[0].message, "did not stop in 2s, sending SIGKILL");
    d.at(2_020).exit("web", ExitStatus::Signaled { signal: 9, core_dumped: false });
    let words: Vec<&str> = d.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(words, ["exited", "stopped"]);
    assert_eq!(d.events[1].kind, EventKind::Stopped { killed: true });
    assert_eq!(d.events[1].state.as_str(), "stopped");
}

#[test]
fn a_held_service_says_it_waits_and_since_start_replays_where_each_one_is() {
    let db = notify_unit("db");
    let web = depends(unit("web"), "db", DependencyCondition::Ready);
    let mut d = Driver::new(vec![db, web]);
    d.feed(Event::Up);
    let events = std::mem::take(&mut d.events);
    let web_event = events.iter().find(|e| e.service == "web").expect("web is told");
    assert_eq!(web_event.state.as_str(), "waiting");
    match &web_event.kind {
        EventKind::State { reason: Some(reason), replay: false, .. } => {
            assert_eq!(reason, "waiting for db: starting")
        }
        other => panic!("{other:?}"),
    }
    d.exec("db");
    d.request(3, Request::Events { names: vec![], since_start: true });
    let (conn, services, replay) = d.follows.pop().expect("followed");
    assert_eq!((conn, services), (3, None));
    let shown: Vec<(String, &str, bool)> = replay
        .iter()
        .map(|(_, e)| {
            (e.service.clone(), e.state.as_str(), matches!(e.kind, EventKind::State { replay: true, .. }))
        })
        .collect();
    assert_eq!(shown, vec![("db".into(), "starting", true), ("web".into(), "waiting", true)]);
    // Named services only; an unknown name is refused.
    d.request(4, Request::Events { names: vec!["web".into()], since_start: false });
    let (_, services, replay) = d.follows.pop().unwrap();
    assert_eq!((services, replay.len()), (Some(vec![1]), 0));
    d.request(5, Request::Events { names: vec!["wbe".into()], since_start: false });
    assert!(
        matches!(d.replies.last(), Some((5, Reply::Error(e), true)) if e.error.code == crate::proto::ErrorCode::UnknownService)
    );
}

#[test]
fn health_checks_are_told_when_they_pass_first_and_each_time_they_fail() {
    let mut web = unit("web");
    web.0.health_check = Some(crate::spec::CheckTiming { interval: ms(100), timeout: ms(50), retries: 2 });
    let mut d = Driver::new(vec![web]);
    d.feed(Event::Up);
    d.exec("web");
    d.take();
    let id = d.id("web");
    let mut health = Vec::new();
    for (run, (t, ok)) in [(1, (100, true)), (2, (200, true)), (3, (300, false)), (4, (400, true))] {
        d.at(t).feed(Event::Tick);
        d.feed(Event::CheckDone { service: id, run, ok, message: "m".into() });
        health.extend(std::mem::take(&mut d.events).into_iter().map(|e| e.kind));
    }
    assert_eq!(
        health,
        vec![
            EventKind::Health { passing: true, failures: 0, retries: 0 },
            EventKind::Health { passing: false, failures: 1, retries: 2 },
            EventKind::Health { passing: true, failures: 0, retries: 0 },
        ]
    );
}

fn wait_for(
    d: &mut Driver,
    conn: ConnId,
    names: &[&str],
    until: crate::proto::WaitFor,
    timeout_ms: Option<u64>,
) {
    let names = names.iter().map(|n| n.to_string()).collect();
    d.request(conn, Request::Wait { names, until, timeout_ms, settle: false });
}

/// A wait's answer: `Ok(each result)` or `Err((the error, each result))`.
type Answered = Result<Vec<String>, (String, Vec<String>)>;

/// The reply on `conn`, if one came.
fn answer(d: &Driver, conn: ConnId) -> Option<Answered> {
    let (_, reply, _) = d.replies.iter().find(|(c, _, _)| *c == conn)?;
    let words = |results: &[crate::proto::ServiceResult]| {
        results.iter().map(|r| format!("{}: {}", r.name, r.message)).collect::<Vec<_>>()
    };
    Some(match reply {
        Reply::Results(r) => Ok(words(&r.results)),
        Reply::Error(e) => Err((e.error.message.clone(), words(e.results.as_deref().unwrap_or_default()))),
        other => panic!("{other:?}"),
    })
}

#[test]
fn wait_ready_is_answered_in_the_turn_the_service_becomes_ready() {
    use crate::proto::WaitFor;
    let mut d = Driver::new(vec![notify_unit("db"), depends(unit("web"), "db", DependencyCondition::Ready)]);
    d.feed(Event::Up);
    wait_for(&mut d, 1, &["db", "web"], WaitFor::Ready, None);
    d.exec("db");
    assert_eq!(answer(&d, 1), None, "db is not ready yet, web waits for it");
    let db = d.id("db");
    d.at(10).feed(Event::Notify { service: db, fields: vec![("READY".into(), "1".into())] });
    assert_eq!(answer(&d, 1), None, "web is forked, not yet running");
    d.exec("web");
    assert_eq!(answer(&d, 1), Some(Ok(vec!["db: ready (pid 100)".into(), "web: running (pid 101)".into()])));
    // Already there: answered at once.
    wait_for(&mut d, 2, &["web"], WaitFor::Up, None);
    assert_eq!(answer(&d, 2), Some(Ok(vec!["web: running (pid 101)".into()])));
}

#[test]
fn wait_fails_fast_with_the_reason_when_a_service_fails_on_the_way() {
    use crate::proto::WaitFor;
    let mut d = Driver::new(vec![notify_unit("db"), unit("other")]);
    d.feed(Event::Up);
    wait_for(&mut d, 1, &[], WaitFor::Ready, None);
    let kill = ExitStatus::Signaled { signal: 9, core_dumped: false };
    for t in [100, 300, 700] {
        d.at(t).feed(Event::Tick);
        d.exec("db");
        d.exit("db", kill);
    }
    match answer(&d, 1) {
        Some(Err((message, results))) => {
            assert_eq!(message, "db: failed: start limit hit (3 failures in 1m) (not ready)");
            assert_eq!(results[0], "db: failed: start limit hit (3 failures in 1m)");
            assert!(results[1].starts_with("other: not ready yet: starting"), "{results:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wait_gives_up_at_its_timeout_and_says_who_was_late() {
    use crate::proto::WaitFor;
    let mut d = Driver::new(vec![notify_unit("db")]);
    d.feed(Event::Up);
    d.exec("db");
    wait_for(&mut d, 1, &["db"], WaitFor::Ready, Some(1_000));
    assert_eq!(d.core.next_deadline(), Some(ms(1_000)), "the wait's deadline is the core's");
    d.at(999).feed(Event::Tick);
    assert_eq!(answer(&d, 1), None);
    d.at(1_000).feed(Event::Tick);
    match answer(&d, 1) {
        Some(Err((message, results))) => {
            assert_eq!(message, "timed out after 1s: not ready yet: db");
            assert_eq!(results, vec!["db: not ready yet: starting (pid 100)".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    // A client that went away is forgotten.
    wait_for(&mut d, 2, &["db"], WaitFor::Ready, Some(5_000));
    d.feed(Event::Disconnected { conn: 2 });
    assert_eq!(d.core.next_deadline(), None);
}

#[test]
fn wait_stopped_and_completed() {
    use crate::proto::WaitFor;
    let mut job = unit("job");
    job.0.service_type = ServiceType::Oneshot;
    std::sync::Arc::make_mut(&mut job.0.config).oneshot = true;
    std::sync::Arc::make_mut(&mut job.0.config).restart = RestartPolicy::Never;
    let mut d = Driver::new(vec![unit("web"), job]);
    d.feed(Event::Up);
    d.exec("web");
    d.exec("job");
    wait_for(&mut d, 1, &["job"], WaitFor::Completed, None);
    wait_for(&mut d, 2, &["web"], WaitFor::Stopped, None);
    d.at(50).exit("job", ExitStatus::Code(0));
    assert_eq!(answer(&d, 1), Some(Ok(vec!["job: completed".into()])));
    d.request(
        3,
        Request::Stop(crate::proto::Target {
            names: vec!["web".into()],
            all: false,
            wait: false,
            rolling: false,
        }),
    );
    assert_eq!(answer(&d, 2), None, "stopping");
    d.at(60).exit("web", ExitStatus::Signaled { signal: 15, core_dumped: false });
    assert_eq!(answer(&d, 2), Some(Ok(vec!["web: stopped".into()])));
    // Without names, a wait to be up leaves out what was stopped by hand;
    // a named one fails at once.
    wait_for(&mut d, 4, &[], WaitFor::Up, None);
    assert_eq!(answer(&d, 4), Some(Ok(vec!["job: completed".into()])));
    wait_for(&mut d, 5, &["web"], WaitFor::Ready, None);
    assert_eq!(answer(&d, 5), Some(Err(("web: stopped (not ready)".into(), vec!["web: stopped".into()]))));
}

#[test]
fn metrics_count_restarts_and_failures_by_kind_for_as_long_as_tend_runs() {
    let mut d = Driver::new(vec![unit("web")]);
    d.feed(Event::Up);
    d.exec("web");
    d.at(10).exit("web", ExitStatus::Code(3));
    d.at(200).feed(Event::Tick);
    d.exec("web");
    d.at(300).exit("web", ExitStatus::Signaled { signal: 9, core_dumped: false });
    let metrics = d.core.metrics();
    let (_, web) = &metrics[0];
    assert_eq!((web.restarts_total, web.last_exit_code), (2, Some(137)));
    assert_eq!(web.failures_total, vec![(ExitKind::Exited, 1), (ExitKind::Killed, 1)]);
    assert_eq!(web.state.as_str(), "backoff");
    // The restart after the backoff: counted once, and running again.
    d.at(600).feed(Event::Tick);
    d.exec("web");
    let (_, web) = &d.core.metrics()[0];
    assert_eq!((web.restarts_total, web.state.as_str(), web.ready, web.healthy), (2, "running", true, true));
    assert_eq!(web.uptime_secs, Some(0.0));
}

#[test]
fn a_settling_wait_waits_for_every_service_even_after_a_failure() {
    use crate::proto::WaitFor;
    let mut broken = unit("broken");
    std::sync::Arc::make_mut(&mut broken.0.config).restart = RestartPolicy::Never;
    let mut d = Driver::new(vec![broken, unit("ok")]);
    d.feed(Event::Up);
    d.request(1, Request::Wait { names: vec![], until: WaitFor::Up, timeout_ms: None, settle: true });
    let failure =
        crate::service::StartFailure { step: "exec".into(), errno: None, message: "cannot execute x".into() };
    let broken = d.id("broken");
    d.feed(Event::SpawnFailed { service: broken, failure });
    assert_eq!(answer(&d, 1), None, "ok is still starting");
    d.exec("ok");
    match answer(&d, 1) {
        Some(Err((message, results))) => {
            assert_eq!(message, "broken: failed: cannot execute x (not up)");
            assert_eq!(
                results,
                vec!["broken: failed: cannot execute x".to_string(), "ok: running (pid 101)".into()]
            );
        }
        other => panic!("{other:?}"),
    }
}
