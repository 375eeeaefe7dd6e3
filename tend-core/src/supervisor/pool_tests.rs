//! The whole core in virtual time, one scenario per test: pools of
//! instances, selection (`tend up NAME…`, `enabled: false`), scaling and
//! rolling restarts. A tiny kernel answers every action at once (a fork
//! gets the next pid and execs; a stop signal ends the process), so each
//! test reads as what a user does and what tend decides.

use super::*;
use crate::pool::{substitute, Instances};
use crate::proto::{ResultsReply, ServiceResult, Target};
use crate::spec::{Config, Dependency, DependencyCondition, RestartPolicy};
use std::collections::BTreeMap;
use std::time::Duration;

const SIGTERM: i32 = 15;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, Clone, PartialEq)]
struct TestUnit {
    name: String,
    depends_on: Vec<(String, DependencyCondition)>,
    /// Ready on READY=1 (the test says when), else ready once running.
    notify: bool,
    instances: Option<Instances>,
    enabled: bool,
    command: String,
}

fn unit(name: &str) -> TestUnit {
    TestUnit {
        name: name.into(),
        depends_on: Vec::new(),
        notify: false,
        instances: None,
        enabled: true,
        command: "run".into(),
    }
}

fn pool(name: &str, n: u32) -> TestUnit {
    TestUnit { instances: Some(Instances::Count(n)), command: "run --id %i".into(), ..unit(name) }
}

impl TestUnit {
    fn needs(mut self, name: &str, condition: DependencyCondition) -> TestUnit {
        self.depends_on.push((name.into(), condition));
        self
    }

    fn notify(mut self) -> TestUnit {
        self.notify = true;
        self
    }

    fn disabled(mut self) -> TestUnit {
        self.enabled = false;
        self
    }
}

impl Definition for TestUnit {
    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> Spec {
        Spec {
            name: self.name.clone(),
            service_type: if self.notify { ServiceType::Notify } else { ServiceType::Simple },
            depends_on: self
                .depends_on
                .iter()
                .map(|(name, condition)| Dependency { name: name.clone(), condition: *condition })
                .collect(),
            config: std::sync::Arc::new(Config {
                restart: RestartPolicy::OnFailure,
                success_exit_codes: vec![0],
                restart_delay: ms(100),
                restart_delay_max: ms(1_000),
                start_limit_burst: 5,
                start_limit_interval: ms(10_000),
                stop_signal: SIGTERM,
                stop_timeout: ms(2_000),
                process_group: true,
                needs_ready_signal: self.notify,
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
        }
    }

    fn instances(&self) -> Option<&Instances> {
        self.instances.as_ref()
    }

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn service(&self, instance: Option<&str>) -> TestUnit {
        let mut service = TestUnit { instances: None, enabled: true, ..self.clone() };
        if let Some(instance) = instance {
            service.name = crate::pool::full_name(&self.name, instance);
            service.command = substitute(&self.command, instance);
        }
        service
    }
}

/// The core and a kernel that answers at once.
struct World {
    core: Core<TestUnit>,
    now: Time,
    next_pid: i32,
    /// Live leaders: pid → service.
    procs: BTreeMap<i32, ServiceId>,
    /// Names, in the order they were forked.
    spawned: Vec<String>,
    /// (name, signal), in order.
    signalled: Vec<(String, i32)>,
    replies: Vec<(ConnId, Reply)>,
    logs: Vec<String>,
    /// Notify services become ready by themselves (else the test says READY=1).
    auto_ready: bool,
    /// Services whose stop signal leaves the process running (until SIGKILL
    /// or the test ends it).
    hang_on_stop: Vec<String>,
    next_conn: ConnId,
    /// Events for `tend events` followers.
    emitted: Vec<crate::proto::ServiceEvent>,
}

impl World {
    fn new(units: Vec<TestUnit>) -> World {
        World {
            core: Core::new(units, 1, "test"),
            now: Time::ZERO,
            next_pid: 100,
            procs: BTreeMap::new(),
            spawned: Vec::new(),
            signalled: Vec::new(),
            replies: Vec::new(),
            logs: Vec::new(),
            auto_ready: true,
            hang_on_stop: Vec::new(),
            next_conn: 1,
            emitted: Vec::new(),
        }
    }

    fn up(units: Vec<TestUnit>) -> World {
        let mut world = World::new(units);
        world.feed(Event::Up);
        world
    }

    fn id(&self, name: &str) -> ServiceId {
        (0..self.core.len())
            .find(|&i| self.core.is_live(i) && self.core.spec(i).name == name)
            .unwrap_or_else(|| panic!("no live service {name}"))
    }

    fn name(&self, service: ServiceId) -> String {
        self.core.spec(service).name.clone()
    }

    fn shown(&self, name: &str) -> ServiceState {
        self.core.shown_state(self.id(name))
    }

    fn pid(&self, name: &str) -> Option<i32> {
        self.core.pid(self.id(name))
    }

    fn live_names(&self) -> Vec<String> {
        (0..self.core.len()).filter(|&i| self.core.is_live(i)).map(|i| self.name(i)).collect()
    }

    fn running(&self) -> Vec<String> {
        let mut names: Vec<String> = self.procs.values().map(|&s| self.name(s)).collect();
        names.sort();
        names
    }

    fn feed(&mut self, event: Event<TestUnit>) {
        let actions = self.core.handle(self.now, event);
        for action in actions {
            self.execute(action);
        }
    }

    fn execute(&mut self, action: Action<TestUnit>) {
        match action {
            Action::Spawn { service, .. } => {
                let pid = self.next_pid;
                self.next_pid += 1;
                self.procs.insert(pid, service);
                self.spawned.push(self.name(service));
                self.feed(Event::Spawned { service, pid });
                self.feed(Event::ExecConfirmed { service });
                if self.auto_ready && self.core.spec(service).service_type == ServiceType::Notify {
                    self.ready(service);
                }
            }
            Action::Signal { service, pid, signal, .. } => {
                self.signalled.push((self.name(service), signal));
                if signal == crate::service::SIGCONT {
                    return;
                }
                let hangs =
                    signal != crate::service::SIGKILL && self.hang_on_stop.contains(&self.name(service));
                if !hangs && self.procs.remove(&pid).is_some() {
                    let status = ExitStatus::Signaled { signal, core_dumped: false };
                    self.feed(Event::Exited { pid, status, group_remains: false, oom_killed: false });
                }
            }
            Action::Reply { conn, reply, .. } => self.replies.push((conn, reply)),
            Action::Status { conn, reply, .. } => self.replies.push((conn, Reply::Status(reply))),
            Action::Log { text, .. } => self.logs.push(text),
            Action::Emit { event, .. } => self.emitted.push(event),
            Action::LoadUnits { .. }
            | Action::Follow { .. }
            | Action::StartCheck { .. }
            | Action::CancelCheck { .. }
            | Action::Logs { .. }
            | Action::ReopenLogs { .. }
            | Action::Added { .. }
            | Action::Redefined { .. }
            | Action::Release { .. }
            | Action::OpenPipe { .. }
            | Action::ClosePipe { .. }
            | Action::Metrics { .. } => {}
        }
    }

    fn ready(&mut self, service: ServiceId) {
        self.feed(Event::Notify { service, fields: vec![("READY".into(), "1".into())] });
    }

    /// A process ends by itself with `status`.
    fn exit(&mut self, name: &str, code: i32) {
        let pid = self.pid(name).expect("running");
        self.procs.remove(&pid);
        let status = ExitStatus::Code(code);
        self.feed(Event::Exited { pid, status, group_remains: false, oom_killed: false });
    }

    /// Let virtual time pass, delivering every deadline on the way.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.core.next_deadline().filter(|&at| at <= end) {
            self.now = self.now.max(at);
            self.feed(Event::Tick);
        }
        self.now = end;
    }

    fn request(&mut self, request: Request) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000) + self.now;
        self.feed(Event::Request { conn, request, wall });
        conn
    }

    fn answer(&self, conn: ConnId) -> Option<&Reply> {
        self.replies.iter().find(|(c, _)| *c == conn).map(|(_, reply)| reply)
    }

    fn results(&self, conn: ConnId) -> Vec<ServiceResult> {
        match self.answer(conn) {
            Some(Reply::Results(ResultsReply { results, .. })) => results.clone(),
            Some(Reply::Error(ErrorReply { results: Some(results), .. })) => results.clone(),
            other => panic!("expected results on {conn}, got {other:?}"),
        }
    }

    fn reload(&mut self, units: Vec<TestUnit>) -> crate::proto::ReloadReport {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.feed(Event::Reloaded { asked_by: vec![conn], units: Ok(units), warnings: Vec::new() });
        match self.answer(conn) {
            Some(Reply::Reload(reply)) => reply.reload.clone(),
            other => panic!("expected a reload reply, got {other:?}"),
        }
    }
}

fn target(names: &[&str]) -> Target {
    Target::names(names.iter().map(|n| n.to_string()).collect())
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|n| n.to_string()).collect()
}

use crate::proto::{ErrorCode, ErrorReply};

// ---------------------------------------------------------------- pools

#[test]
fn a_pool_is_one_service_per_instance() {
    let world = World::up(vec![pool("worker", 3), unit("web")]);
    assert_eq!(world.live_names(), ["worker@1", "worker@2", "worker@3", "web"]);
    let two = world.id("worker@2");
    assert_eq!(world.core.unit_of(two), ("worker", Some("2")));
    assert_eq!(world.core.unit(two).command, "run --id 2");
    assert_eq!(world.core.unit_of(world.id("web")), ("web", None));
    // Each its own process.
    let pids: Vec<i32> = ["worker@1", "worker@2", "worker@3"].iter().map(|n| world.pid(n).unwrap()).collect();
    assert!(pids[0] != pids[1] && pids[1] != pids[2] && pids[0] != pids[2]);
}

#[test]
fn one_instance_crashing_restarts_only_it() {
    let mut world = World::up(vec![pool("worker", 3)]);
    let before: Vec<Option<i32>> = (1..=3).map(|i| world.pid(&format!("worker@{i}"))).collect();
    world.exit("worker@2", 1);
    assert_eq!(world.shown("worker@2"), ServiceState::Backoff);
    world.advance(ms(200));
    assert_eq!(world.shown("worker@2"), ServiceState::Running);
    assert_eq!(world.pid("worker@1"), before[0]);
    assert_eq!(world.pid("worker@3"), before[2]);
    assert_ne!(world.pid("worker@2"), before[1]);
    let status = world.request(Request::Status { names: names(&["worker@2"]) });
    let Some(Reply::Status(reply)) = world.answer(status) else { panic!() };
    assert_eq!(reply.services[0].restarts, 1);
}

#[test]
fn the_unit_name_names_every_instance_and_a_full_name_one() {
    let mut world = World::up(vec![pool("worker", 3), unit("web")]);
    let conn = world.request(Request::Status { names: names(&["worker"]) });
    let Some(Reply::Status(reply)) = world.answer(conn) else { panic!() };
    let listed: Vec<(&str, Option<&str>, Option<&str>)> =
        reply.services.iter().map(|s| (s.name.as_str(), s.unit.as_deref(), s.instance.as_deref())).collect();
    assert_eq!(
        listed,
        [
            ("worker@1", Some("worker"), Some("1")),
            ("worker@2", Some("worker"), Some("2")),
            ("worker@3", Some("worker"), Some("3"))
        ]
    );
    let before = world.pid("worker@1");
    let conn = world.request(Request::Restart(target(&["worker@3"])));
    assert_eq!(world.results(conn).len(), 1);
    assert_eq!(world.pid("worker@1"), before, "only the one named");
    let conn = world.request(Request::Stop(target(&["worker"])));
    let stopped: Vec<String> = world.results(conn).into_iter().map(|r| r.name).collect();
    assert_eq!(stopped, ["worker@1", "worker@2", "worker@3"]);
    assert_eq!(world.running(), ["web"]);
    let conn = world.request(Request::Status { names: names(&["wrker"]) });
    match world.answer(conn) {
        Some(Reply::Error(ErrorReply { error, .. })) => {
            assert_eq!(
                error.message,
                "no service 'wrker' (did you mean 'worker'?); known: web, worker (3 instances)"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dependency_on_a_pool_waits_for_every_instance() {
    let mut world =
        World::new(vec![pool("worker", 3).notify(), unit("lb").needs("worker", DependencyCondition::Ready)]);
    world.auto_ready = false;
    world.feed(Event::Up);
    assert_eq!(world.shown("lb"), ServiceState::Waiting);
    world.ready(world.id("worker@1"));
    world.ready(world.id("worker@3"));
    assert_eq!(world.shown("lb"), ServiceState::Waiting);
    let conn = world.request(Request::Status { names: names(&["lb"]) });
    let Some(Reply::Status(reply)) = world.answer(conn) else { panic!() };
    assert_eq!(reply.services[0].reason.as_deref(), Some("waiting for worker@2: starting"));
    world.ready(world.id("worker@2"));
    assert_eq!(world.shown("lb"), ServiceState::Running);
}

/// Stopping one instance leaves the pool's dependents up (the pool is
/// still there); stopping the pool takes them down first.
#[test]
fn a_pools_dependents_go_down_with_the_pool_not_with_one_instance() {
    let mut world =
        World::up(vec![pool("worker", 2), unit("lb").needs("worker", DependencyCondition::Started)]);
    let conn = world.request(Request::Stop(target(&["worker@1"])));
    assert_eq!(world.results(conn).len(), 1);
    assert_eq!(world.running(), ["lb", "worker@2"]);
    // lb crashing now waits only for the instances wanted up.
    world.exit("lb", 1);
    world.advance(ms(200));
    assert_eq!(world.shown("lb"), ServiceState::Running);
    world.signalled.clear();
    let conn = world.request(Request::Stop(target(&["worker"])));
    let stopped: Vec<String> = world.results(conn).into_iter().map(|r| r.name).collect();
    assert!(stopped.contains(&"lb".to_string()), "{stopped:?}");
    let order: Vec<&str> =
        world.signalled.iter().filter(|(_, s)| *s == SIGTERM).map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, ["lb", "worker@2"], "the dependent first");
}

#[test]
fn a_dependency_on_one_instance() {
    let mut world = World::new(vec![
        pool("worker", 2).notify(),
        unit("lb").needs("worker@2", DependencyCondition::Ready),
    ]);
    world.auto_ready = false;
    world.feed(Event::Up);
    world.ready(world.id("worker@1"));
    assert_eq!(world.shown("lb"), ServiceState::Waiting);
    world.ready(world.id("worker@2"));
    assert_eq!(world.shown("lb"), ServiceState::Running);
    // That instance stopped: its dependent goes down with it, first.
    let conn = world.request(Request::Stop(target(&["worker@2"])));
    assert_eq!(world.results(conn).len(), 2);
    assert_eq!(world.running(), ["worker@1"]);
}

// ---------------------------------------------------------------- reload

#[test]
fn a_reload_that_grows_a_pool_starts_only_the_new_instances() {
    let mut world =
        World::up(vec![pool("worker", 2), unit("lb").needs("worker", DependencyCondition::Started)]);
    let pids: Vec<Option<i32>> = ["worker@1", "worker@2", "lb"].iter().map(|n| world.pid(n)).collect();
    let report =
        world.reload(vec![pool("worker", 4), unit("lb").needs("worker", DependencyCondition::Started)]);
    assert_eq!(report.started, ["worker@3", "worker@4"]);
    assert!(report.stopped.is_empty() && report.restarted.is_empty());
    assert_eq!(report.unchanged, ["lb", "worker@1", "worker@2"]);
    let after: Vec<Option<i32>> = ["worker@1", "worker@2", "lb"].iter().map(|n| world.pid(n)).collect();
    assert_eq!(pids, after, "the instances that stay are not touched");
    assert_eq!(world.running(), ["lb", "worker@1", "worker@2", "worker@3", "worker@4"]);
}

#[test]
fn a_reload_that_shrinks_a_pool_stops_the_surplus_alone() {
    let mut world =
        World::up(vec![pool("worker", 4), unit("lb").needs("worker", DependencyCondition::Started)]);
    let lb = world.pid("lb");
    world.signalled.clear();
    let report =
        world.reload(vec![pool("worker", 2), unit("lb").needs("worker", DependencyCondition::Started)]);
    assert_eq!(report.stopped, ["worker@3", "worker@4"]);
    assert_eq!(world.running(), ["lb", "worker@1", "worker@2"]);
    assert_eq!(world.pid("lb"), lb, "the pool's dependent stays up");
    assert!(world.signalled.iter().all(|(n, _)| n == "worker@3" || n == "worker@4"), "{:?}", world.signalled);
    assert_eq!(world.live_names(), ["worker@1", "worker@2", "lb"]);
}

#[test]
fn a_changed_pool_restarts_every_instance_with_its_new_definition() {
    let mut world = World::up(vec![pool("worker", 2)]);
    let mut edited = pool("worker", 2);
    edited.command = "run --shard %i".into();
    let report = world.reload(vec![edited]);
    assert_eq!(report.restarted, ["worker@1", "worker@2"]);
    assert_eq!(world.core.unit(world.id("worker@2")).command, "run --shard 2");
}

#[test]
fn a_unit_that_becomes_disabled_keeps_running_and_a_new_disabled_one_is_only_loaded() {
    let mut world = World::up(vec![unit("web"), unit("db")]);
    let web = world.pid("web");
    let report = world.reload(vec![unit("web").disabled(), unit("db"), unit("cache").disabled()]);
    assert_eq!(report.unchanged, ["db", "web"], "enabled is the unit's, not the service's");
    assert_eq!(world.pid("web"), web);
    assert!(report.started.is_empty());
    assert_eq!(report.loaded, ["cache"]);
    assert_eq!(world.shown("cache"), ServiceState::Stopped);
}

// ---------------------------------------------------------------- selection

#[test]
fn up_without_names_starts_only_enabled_units() {
    let world = World::up(vec![unit("web"), unit("debug").disabled()]);
    assert_eq!(world.running(), ["web"]);
    assert_eq!(world.shown("debug"), ServiceState::Stopped);
    let mut world = world;
    let conn = world.request(Request::Status { names: names(&["debug"]) });
    let Some(Reply::Status(reply)) = world.answer(conn) else { panic!() };
    assert!(reply.services[0].healthy, "stopped as configured");
    // Started by hand and stopped by hand: stopped as configured again.
    let conn = world.request(Request::Start(target(&["debug"])));
    assert!(world.results(conn)[0].ok);
    let conn = world.request(Request::Stop(target(&["web", "debug"])));
    assert_eq!(world.results(conn).len(), 2);
    let conn = world.request(Request::Status { names: vec![] });
    let Some(Reply::Status(reply)) = world.answer(conn) else { panic!() };
    let healthy: Vec<(&str, bool)> = reply.services.iter().map(|s| (s.name.as_str(), s.healthy)).collect();
    assert_eq!(healthy, [("web", false), ("debug", true)]);
}

#[test]
fn a_disabled_unit_starts_by_hand() {
    let mut world = World::up(vec![unit("web"), unit("debug").disabled()]);
    let conn = world.request(Request::Start(target(&["debug"])));
    assert!(world.results(conn)[0].ok);
    assert_eq!(world.running(), ["debug", "web"]);
    let status = world.request(Request::Status { names: names(&["debug"]) });
    let Some(Reply::Status(reply)) = world.answer(status) else { panic!() };
    assert!(!reply.services[0].enabled);
}

#[test]
fn a_disabled_dependency_starts_with_what_needs_it() {
    let world = World::up(vec![unit("db").disabled(), unit("web").needs("db", DependencyCondition::Started)]);
    assert_eq!(world.running(), ["db", "web"]);
}

#[test]
fn up_with_names_starts_those_and_their_dependencies_only() {
    let mut world = World::new(vec![
        unit("db"),
        pool("worker", 2),
        unit("web").needs("db", DependencyCondition::Started),
        unit("admin"),
    ]);
    world.core.select(&names(&["web", "worker@2"])).unwrap();
    world.feed(Event::Up);
    assert_eq!(world.running(), ["db", "web", "worker@2"]);
    assert_eq!(world.shown("admin"), ServiceState::Stopped);
    assert_eq!(world.shown("worker@1"), ServiceState::Stopped);
    let mut world = World::new(vec![pool("worker", 2), unit("web")]);
    world.core.select(&names(&["worker"])).unwrap();
    world.feed(Event::Up);
    assert_eq!(world.running(), ["worker@1", "worker@2"]);
    let err = World::new(vec![unit("web")]).core.select(&names(&["wbe"])).unwrap_err();
    assert_eq!(err, "no service 'wbe' (did you mean 'web'?); known: web");
}

#[test]
fn under_a_selection_a_reload_starts_no_new_unit() {
    let mut world = World::new(vec![unit("web")]);
    world.core.select(&names(&["web"])).unwrap();
    world.feed(Event::Up);
    let report = world.reload(vec![unit("web"), unit("new")]);
    assert_eq!(report.loaded, ["new"]);
    assert_eq!(world.running(), ["web"]);
}

// ---------------------------------------------------------------- scale

fn scale(world: &mut World, name: &str, instances: u32) -> ConnId {
    world.request(Request::Scale { name: name.into(), instances, wait: true })
}

fn scale_reply(world: &World, conn: ConnId) -> crate::proto::ScaleReply {
    match world.answer(conn) {
        Some(Reply::Scale(reply)) => reply.clone(),
        other => panic!("expected a scale reply, got {other:?}"),
    }
}

fn error_message(world: &World, conn: ConnId) -> String {
    match world.answer(conn) {
        Some(Reply::Error(ErrorReply { error, .. })) => error.message.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn scaling_up_starts_new_instances_and_touches_nothing_else() {
    let mut world =
        World::up(vec![pool("worker", 2), unit("lb").needs("worker", DependencyCondition::Started)]);
    let pids: Vec<Option<i32>> = ["worker@1", "worker@2", "lb"].iter().map(|n| world.pid(n)).collect();
    world.signalled.clear();
    let conn = scale(&mut world, "worker", 4);
    let reply = scale_reply(&world, conn);
    assert_eq!((reply.unit.as_str(), reply.from, reply.to), ("worker", 2, 4));
    let results: Vec<(&str, &str)> =
        reply.results.iter().map(|r| (r.name.as_str(), &r.message[..7])).collect();
    assert_eq!(results, [("worker@3", "started"), ("worker@4", "started")]);
    assert!(world.signalled.is_empty());
    let after: Vec<Option<i32>> = ["worker@1", "worker@2", "lb"].iter().map(|n| world.pid(n)).collect();
    assert_eq!(pids, after);
    assert_eq!(world.running(), ["lb", "worker@1", "worker@2", "worker@3", "worker@4"]);
    assert!(world.logs.iter().any(|l| l == "worker: scaled from 2 to 4 instances"), "{:?}", world.logs);
    // A `scale` event for each instance of the pool.
    let mut scaled: Vec<&str> = world
        .emitted
        .iter()
        .filter(|e| e.kind == crate::proto::EventKind::Scale { instances: 4 })
        .map(|e| e.service.as_str())
        .collect();
    scaled.sort();
    assert_eq!(scaled, ["worker@1", "worker@2", "worker@3", "worker@4"]);
    // The unit's name now names four.
    let conn = world.request(Request::Status { names: names(&["worker"]) });
    let Some(Reply::Status(status)) = world.answer(conn) else { panic!() };
    assert_eq!(status.services.len(), 4);
}

#[test]
fn scaling_down_stops_the_surplus_from_the_highest_and_leaves_dependents_up() {
    let mut world =
        World::up(vec![pool("worker", 5), unit("lb").needs("worker", DependencyCondition::Started)]);
    let lb = world.pid("lb");
    world.signalled.clear();
    let conn = scale(&mut world, "worker", 2);
    let reply = scale_reply(&world, conn);
    let stopped: Vec<&str> = reply.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(stopped, ["worker@5", "worker@4", "worker@3"]);
    assert!(reply.results.iter().all(|r| r.ok && r.message == "stopped"));
    let order: Vec<&str> =
        world.signalled.iter().filter(|(_, s)| *s == SIGTERM).map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, ["worker@5", "worker@4", "worker@3"]);
    assert_eq!(world.running(), ["lb", "worker@1", "worker@2"]);
    assert_eq!(world.pid("lb"), lb);
    assert_eq!(world.live_names(), ["worker@1", "worker@2", "lb"]);
    // To zero, and back.
    let conn = scale(&mut world, "worker", 0);
    assert_eq!(scale_reply(&world, conn).results.len(), 2);
    assert_eq!(world.running(), ["lb"], "a pool scaled to nothing holds its dependents to nothing");
    let conn = scale(&mut world, "worker", 1);
    assert_eq!(scale_reply(&world, conn).results[0].name, "worker@1");
    assert_eq!(world.running(), ["lb", "worker@1"]);
}

/// An instance scaled away and back while it is still stopping is the same
/// service: its old process finishes stopping before the new one starts.
#[test]
fn scaling_back_up_while_an_instance_stops_waits_for_it() {
    let mut world = World::up(vec![pool("worker", 3)]);
    world.hang_on_stop.push("worker@3".into());
    let old = world.pid("worker@3").unwrap();
    let down = world.request(Request::Scale { name: "worker".into(), instances: 2, wait: true });
    assert!(world.answer(down).is_none(), "still stopping");
    let up = scale(&mut world, "worker", 3);
    assert!(world.answer(up).is_none(), "waits for the old process");
    assert_eq!(world.core.len(), 3, "no second service of that name");
    assert_eq!(world.running(), ["worker@1", "worker@2", "worker@3"]);
    assert_eq!(world.procs.iter().filter(|(_, &s)| world.name(s) == "worker@3").count(), 1);
    // The stop timeout passes: SIGKILL, then the new process.
    world.advance(ms(2_100));
    let new = world.pid("worker@3").unwrap();
    assert_ne!(new, old);
    assert!(world.answer(down).is_some() && world.answer(up).is_some());
    assert_eq!(world.running(), ["worker@1", "worker@2", "worker@3"]);
}

#[test]
fn what_cannot_be_scaled_says_why() {
    let named = TestUnit { instances: Some(Instances::Names(names(&["eu", "us"]))), ..unit("edge") };
    let mut world = World::up(vec![
        pool("worker", 4),
        unit("web"),
        named,
        unit("pinned").needs("worker@4", DependencyCondition::Started),
    ]);
    let cases = [
        ("web", 3, "'web' has no instances: give its unit `instances:` to run it as a pool"),
        ("edge", 3, "'edge' has named instances (eu, us): change `instances:` in its unit and reload"),
        ("worker@2", 3, "'worker@2' is one instance: scale its pool, `tend scale worker`"),
        ("wroker", 3, "no service 'wroker' (did you mean 'worker'?); known: edge (2 instances), pinned, web, worker (4 instances)"),
        ("worker", 1001, "1001 instances: at most 1000"),
        ("worker", 3, "pinned depends on worker@4: scale to 4 or more, or change pinned first"),
    ];
    for (name, n, message) in cases {
        let conn = scale(&mut world, name, n);
        assert_eq!(error_message(&world, conn), message);
    }
    assert_eq!(world.live_names().len(), 8, "nothing changed");
}

/// A reload keeps the scaled count while the unit's `instances:` stays as
/// it was; a new `instances:` wins.
#[test]
fn a_reload_keeps_the_scaled_count_until_instances_changes() {
    let mut world = World::up(vec![pool("worker", 2)]);
    let conn = scale(&mut world, "worker", 4);
    scale_reply(&world, conn);
    let report = world.reload(vec![pool("worker", 2)]);
    assert!(report.stopped.is_empty() && report.started.is_empty(), "{report:?}");
    assert_eq!(world.running().len(), 4);
    let report = world.reload(vec![pool("worker", 3)]);
    assert_eq!(report.stopped, ["worker@4"]);
    assert_eq!(world.running(), ["worker@1", "worker@2", "worker@3"]);
}

// ---------------------------------------------------------------- rolling restarts

fn rolling(world: &mut World, names: &[&str]) -> ConnId {
    world.request(Request::Restart(Target { rolling: true, ..target(names) }))
}

/// How many of `instances` are up (ready) now.
fn up_count(world: &World, instances: &[&str]) -> usize {
    instances.iter().filter(|n| world.shown(n) == ServiceState::Ready).count()
}

#[test]
fn a_rolling_restart_takes_one_instance_at_a_time_and_waits_until_it_is_ready() {
    let mut world = World::new(vec![pool("worker", 3).notify()]);
    world.feed(Event::Up);
    let all = ["worker@1", "worker@2", "worker@3"];
    for name in all {
        world.ready(world.id(name));
    }
    world.auto_ready = false;
    let before: Vec<i32> = all.iter().map(|n| world.pid(n).unwrap()).collect();
    world.signalled.clear();
    let conn = rolling(&mut world, &["worker"]);
    for (step, name) in all.iter().enumerate() {
        // Exactly one is down or not ready yet; the others serve.
        assert_eq!(up_count(&world, &all), 2, "step {step}: {:?}", world.signalled);
        assert!(world.answer(conn).is_none());
        let stops: Vec<&str> =
            world.signalled.iter().filter(|(_, s)| *s == SIGTERM).map(|(n, _)| n.as_str()).collect();
        assert_eq!(stops, all[..=step], "one more stop only once the last one is ready");
        // Some time passes without readiness: nothing moves on.
        world.advance(ms(500));
        assert_eq!(up_count(&world, &all), 2);
        world.ready(world.id(name));
    }
    assert_eq!(up_count(&world, &all), 3);
    let results = world.results(conn);
    assert!(results.iter().all(|r| r.ok && r.message.starts_with("ready (pid ")), "{results:?}");
    let after: Vec<i32> = all.iter().map(|n| world.pid(n).unwrap()).collect();
    assert!(before.iter().zip(&after).all(|(b, a)| b != a));
    assert!(
        world.logs.iter().any(|l| l == "rolling restart of worker done: 3 services restarted"),
        "{:?}",
        world.logs
    );
}

#[test]
fn a_rolling_restart_stops_at_the_first_replacement_that_fails() {
    let mut world = World::new(vec![pool("worker", 3).notify()]);
    world.feed(Event::Up);
    for name in ["worker@1", "worker@2", "worker@3"] {
        world.ready(world.id(name));
    }
    world.auto_ready = false;
    let conn = rolling(&mut world, &["worker"]);
    world.ready(world.id("worker@1"));
    // worker@2's replacement crashes before it is ready.
    world.exit("worker@2", 1);
    match world.answer(conn) {
        Some(Reply::Error(ErrorReply { error, results: Some(results), .. })) => {
            assert_eq!(error.code, ErrorCode::Failed);
            assert!(
                error.message.starts_with(
                    "rolling restart of worker stopped at worker@2 (did not stay up: exited with status 1"
                ),
                "{}",
                error.message
            );
            assert!(error.message.ends_with("; not restarted: worker@3"), "{}", error.message);
            let oks: Vec<(&str, bool)> = results.iter().map(|r| (r.name.as_str(), r.ok)).collect();
            assert_eq!(oks, [("worker@1", true), ("worker@2", false), ("worker@3", false)]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !world.signalled.iter().any(|(n, s)| n == "worker@3" && *s == SIGTERM),
        "worker@3 was left as it was"
    );
}

#[test]
fn a_rolling_restart_goes_on_without_its_client_and_one_at_a_time_per_service() {
    let mut world = World::new(vec![pool("worker", 2).notify()]);
    world.feed(Event::Up);
    world.ready(world.id("worker@1"));
    world.ready(world.id("worker@2"));
    world.auto_ready = false;
    let conn = rolling(&mut world, &["worker"]);
    let again = rolling(&mut world, &["worker@2"]);
    assert_eq!(error_message(&world, again), "a rolling restart of worker@2 is under way");
    world.feed(Event::Disconnected { conn });
    world.ready(world.id("worker@1"));
    world.ready(world.id("worker@2"));
    assert!(world.answer(conn).is_none());
    assert!(world.logs.iter().any(|l| l.contains("rolling restart of worker done")), "{:?}", world.logs);
    // `--no-wait`: answered at once.
    world.auto_ready = true;
    let quick = world.request(Request::Restart(Target { rolling: true, wait: false, ..target(&["worker"]) }));
    assert!(world.results(quick).iter().all(|r| r.message == "rolling restart requested"));
}

#[test]
fn a_rolling_restart_ends_when_the_shutdown_begins() {
    let mut world = World::new(vec![pool("worker", 3).notify()]);
    world.feed(Event::Up);
    for name in ["worker@1", "worker@2", "worker@3"] {
        world.ready(world.id(name));
    }
    world.auto_ready = false;
    let conn = rolling(&mut world, &["worker"]);
    world.feed(Event::ShutdownSignal { signal: SIGTERM });
    match world.answer(conn) {
        Some(Reply::Error(ErrorReply { error, .. })) => {
            assert!(
                error.message.contains("worker@1 (not started)") || error.message.contains("shutting down"),
                "{}",
                error.message
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(world.core.finished());
}

/// Up again means running: a replacement that ends, even with success,
/// before it is ready stops the rolling restart.
#[test]
fn a_replacement_that_ends_cleanly_before_it_is_ready_stops_the_rolling_restart() {
    let mut world = World::new(vec![pool("worker", 2).notify()]);
    world.feed(Event::Up);
    world.ready(world.id("worker@1"));
    world.ready(world.id("worker@2"));
    world.auto_ready = false;
    let conn = rolling(&mut world, &["worker"]);
    world.exit("worker@1", 0);
    match world.answer(conn) {
        Some(Reply::Error(ErrorReply { results: Some(results), .. })) => {
            assert!(!results[0].ok && results[0].message.starts_with("did not stay up"), "{results:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!world.signalled.iter().any(|(n, s)| n == "worker@2" && *s == SIGTERM));
}

// ------------------------------------------------------------- what is held

/// The core holds a unit's definition once: a unit that is one service is
/// kept by that service only (its entry keeps `enabled:` and its pipes),
/// a pool keeps its template as well (`tend scale` makes instances from
/// it); and each service's rules are one copy shared by its spec and its
/// machine, through reloads too.
#[test]
fn only_a_pool_keeps_a_template_and_a_services_rules_are_held_once() {
    let shared = |world: &World, name: &str| {
        let svc = &world.core.services[world.id(name)];
        std::sync::Arc::ptr_eq(&svc.spec.config, &svc.machine.config)
    };
    let mut world = World::up(vec![pool("worker", 2), unit("web").disabled(), unit("db")]);
    let templates: Vec<(&str, bool)> =
        world.core.units.iter().map(|(name, entry)| (name.as_str(), entry.template.is_some())).collect();
    assert_eq!(templates, [("db", false), ("web", false), ("worker", true)]);
    assert!(!world.core.units["web"].enabled && world.core.units["db"].enabled);
    for name in ["worker@1", "worker@2", "web", "db"] {
        assert!(shared(&world, name), "{name}: its spec and its machine share one copy of its rules");
    }
    // A reload that edits db and makes web a pool: db restarts with its
    // new rules (still one copy), web's template is kept from then on.
    let mut db = unit("db");
    db.command = "serve --port 5433".into();
    let report = world.reload(vec![pool("worker", 2), pool("web", 2).disabled(), db]);
    assert_eq!(report.restarted, ["db"]);
    assert!(shared(&world, "db"));
    assert_eq!(world.core.unit(world.id("db")).command, "serve --port 5433");
    assert!(world.core.units["web"].template.is_some() && world.core.units["db"].template.is_none());
    // Scaling still makes instances from the pool's template.
    let conn = scale(&mut world, "worker", 3);
    assert_eq!(scale_reply(&world, conn).to, 3);
    assert_eq!(world.core.unit(world.id("worker@3")).command, "run --id 3");
    assert!(shared(&world, "worker@3"));
    // A unit that is one service cannot be scaled, template or not.
    let conn = scale(&mut world, "db", 2);
    assert!(error_message(&world, conn).contains("has no instances"), "{}", error_message(&world, conn));
}
