//! The dependency engine: which services are wanted up, which may start
//! now (every dependency meets its condition), which are held back and why
//! (`waiting`, or `blocked` when a dependency is down for good), and the
//! order of stops (dependents first).
//!
//! A wanted service starts as soon as its dependencies hold, in parallel
//! otherwise; wanting a service up wants up what it depends on when that is
//! down; wanting it down wants its dependents down too, and each stops only
//! once what depends on it is down.

use super::{Core, Phase, ServiceId};
use crate::proto::ServiceState;
use crate::service::{self, State};
use crate::spec::{Definition, DependencyCondition};
use crate::status::Waiting;

/// The dependency graph of the live services, by id.
#[derive(Debug, Default)]
pub(super) struct Graph {
    /// Live services by full name (`web`, `worker@2`).
    by_name: std::collections::HashMap<String, ServiceId>,
    /// Live pools by unit name (`worker`): their live instances, in order.
    pools: std::collections::HashMap<String, Vec<ServiceId>>,
    /// Per service, each of its `depends_on` (in order): what it names.
    dependencies: Vec<Vec<Target>>,
    /// Per service, the services that depend on it (live ones, and removed
    /// ones until they are down), and whether through its pool's name.
    dependents: Vec<Vec<Dependent>>,
}

/// What a `depends_on` entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// No live service or pool of that name (removed by a reload).
    Missing,
    /// One service: a unit that is one service, or one instance (`worker@2`).
    One(ServiceId),
    /// A pool by its unit's name (`worker`): every instance.
    Pool(Vec<ServiceId>),
}

impl Target {
    fn services(&self) -> &[ServiceId] {
        match self {
            Target::Missing => &[],
            Target::One(service) => std::slice::from_ref(service),
            Target::Pool(services) => services,
        }
    }
}

/// A service that depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dependent {
    pub(super) service: ServiceId,
    /// It names the other's pool, not the instance: one instance going
    /// down does not take it down while other instances are wanted.
    pub(super) through_pool: bool,
}

/// How a dependency stands for its dependent.
enum DepState {
    Met,
    /// Not yet; the text says what it is doing.
    Waiting(String),
    /// Down and not coming up by itself.
    Down(String),
}

impl<U: Definition> Core<U> {
    pub(super) fn live(&self, name: &str) -> Option<ServiceId> {
        self.graph.by_name.get(name).copied()
    }

    /// The live instances of the pool `unit`, in order (`None`: no such pool).
    pub(super) fn pool(&self, unit: &str) -> Option<&[ServiceId]> {
        self.graph.pools.get(unit).map(Vec::as_slice)
    }

    /// Services that depend on `service` (see [`Graph::dependents`]).
    fn dependents(&self, service: ServiceId) -> &[Dependent] {
        &self.graph.dependents[service]
    }

    /// No instance of `service`'s pool other than those wanted down is wanted up.
    fn pool_wanted_down(&self, service: ServiceId) -> bool {
        let unit = &self.services[service].unit_name;
        self.pool(unit).is_none_or(|ids| ids.iter().all(|&i| !self.services[i].goal.wanted))
    }

    /// Index the live services by name, and each one's dependencies and
    /// dependents by id (after any change of the set: start, reload).
    pub(super) fn rebuild_graph(&mut self) {
        let n = self.services.len();
        let mut by_name = std::collections::HashMap::with_capacity(n);
        let mut pools: std::collections::HashMap<String, Vec<ServiceId>> = std::collections::HashMap::new();
        for (id, svc) in self.services.iter().enumerate() {
            if !svc.retired {
                by_name.insert(svc.spec.name.clone(), id);
                if svc.instance.is_some() {
                    pools.entry(svc.unit_name.clone()).or_default().push(id);
                }
            }
        }
        // A pool scaled to nothing is still a pool (its dependents' condition holds).
        for (name, unit) in &self.units {
            if unit.instances.is_some() {
                pools.entry(name.clone()).or_default();
            }
        }
        let mut dependencies = vec![Vec::new(); n];
        let mut dependents: Vec<Vec<Dependent>> = vec![Vec::new(); n];
        for (id, svc) in self.services.iter().enumerate() {
            for dep in &svc.spec.depends_on {
                let target = match (by_name.get(&dep.name), pools.get(&dep.name)) {
                    (Some(&one), _) => Target::One(one),
                    (None, Some(instances)) => Target::Pool(instances.clone()),
                    (None, None) => Target::Missing,
                };
                // A unit a reload removed still counts while it runs: what
                // it depends on must not stop before it is down.
                if !svc.released {
                    let through_pool = matches!(target, Target::Pool(_));
                    for &on in target.services() {
                        if !dependents[on].iter().any(|d| d.service == id) {
                            dependents[on].push(Dependent { service: id, through_pool });
                        }
                    }
                }
                dependencies[id].push(target);
            }
        }
        self.graph = Graph { by_name, pools, dependencies, dependents };
        self.sync_pipes();
    }

    /// How dependency `service` stands for a dependent that needs
    /// `condition`; with `words`, what it is doing (for `waiting for …`).
    fn dep_state(&self, service: ServiceId, condition: DependencyCondition, words: bool) -> DepState {
        let svc = &self.services[service];
        let machine = &svc.machine;
        let met = match condition {
            DependencyCondition::Started => {
                matches!(machine.state(), State::Running { .. }) || machine.is_completed()
            }
            DependencyCondition::Ready => machine.is_ready(),
            DependencyCondition::Completed => machine.is_completed(),
        };
        if met {
            return DepState::Met;
        }
        let say = |text: &str| if words { text.to_string() } else { String::new() };
        if svc.spawning {
            return DepState::Waiting(say(ServiceState::Starting.as_str()));
        }
        match machine.state() {
            State::Starting { .. }
            | State::Running { .. }
            | State::Stopping { .. }
            | State::Backoff { .. } => DepState::Waiting(say(machine.state_name().as_str())),
            // A dependency that is itself blocked blocks us too.
            State::Stopped
                if svc.goal.start_pending && svc.goal.waiting.as_ref().is_some_and(|w| w.blocked) =>
            {
                DepState::Down(say("blocked"))
            }
            State::Stopped if svc.goal.start_pending => DepState::Waiting(say("waiting")),
            State::Stopped => DepState::Down(say("stopped")),
            State::Failed { .. } => DepState::Down(say("failed")),
            State::Exited { status, .. } => {
                DepState::Down(if words { status.describe() } else { String::new() })
            }
        }
    }

    /// Do `service`'s dependencies meet their conditions? If not: whether
    /// one is down for good, and (with `words`) why, as `tend status`
    /// says it. The words cost: the start loop runs without them.
    pub(super) fn dependencies_met<'a>(&'a self, service: ServiceId, words: bool) -> Result<(), Waiting> {
        let mut waiting: Vec<(&str, String)> = Vec::new();
        let mut blocked = false;
        let mut pending = false;
        let svc = &self.services[service];
        for (dep, target) in svc.spec.depends_on.iter().zip(&self.graph.dependencies[service]) {
            let mut note = |name: &'a str, state: DepState| match state {
                DepState::Met => {}
                DepState::Waiting(what) => {
                    pending = true;
                    waiting.push((name, what));
                }
                DepState::Down(what) => {
                    pending = true;
                    blocked = true;
                    waiting.push((name, what));
                }
            };
            match target {
                Target::Missing => {
                    note(&dep.name, DepState::Down(if words { "removed".to_string() } else { String::new() }))
                }
                Target::One(d) => note(&dep.name, self.dep_state(*d, dep.condition, words)),
                // Every instance of the pool that is wanted up (one stopped
                // on purpose holds nothing back).
                Target::Pool(instances) => {
                    for &d in instances.iter().filter(|&&d| self.services[d].goal.wanted) {
                        note(&self.services[d].spec.name, self.dep_state(d, dep.condition, words));
                    }
                }
            }
        }
        if !pending {
            return Ok(());
        }
        let why = if words {
            let parts: Vec<String> = waiting.iter().map(|(name, what)| format!("{name}: {what}")).collect();
            format!("waiting for {}", parts.join(", "))
        } else {
            String::new()
        };
        Err(Waiting { why, blocked })
    }

    /// The words of why `service` is held, as they stand now (the start
    /// loop keeps only whether it is blocked).
    pub(super) fn describe_waiting(&mut self, service: ServiceId) {
        if !self.services[service].goal.start_pending {
            return;
        }
        if let Err(waiting) = self.dependencies_met(service, true) {
            self.services[service].goal.waiting = Some(waiting);
        }
    }

    /// Want `service` up, and what it depends on when that is down.
    pub(super) fn want_up(&mut self, service: ServiceId) {
        let mut stack = vec![service];
        let mut seen = vec![false; self.services.len()];
        while let Some(i) = stack.pop() {
            if seen[i] || self.services[i].retired {
                continue;
            }
            seen[i] = true;
            let svc = &mut self.services[i];
            svc.goal.wanted = true;
            svc.goal.stop_sent = false;
            let down = match svc.machine.state() {
                State::Stopped | State::Failed { .. } => true,
                State::Exited { .. } => i == service || !svc.machine.is_completed(),
                State::Starting { .. }
                | State::Running { .. }
                | State::Stopping { .. }
                | State::Backoff { .. } => false,
            };
            if down || i == service && matches!(svc.machine.state(), State::Stopping { .. }) {
                svc.goal.start_pending = true;
            }
            if i == service {
                // Asked by name: a fresh start, whatever restart was held.
                svc.goal.resume = false;
            }
            for &d in self.graph.dependencies[i].iter().flat_map(Target::services) {
                {
                    let dep_svc = &self.services[d];
                    let state = dep_svc.machine.state();
                    let dep_down = !dep_svc.goal.wanted
                        || matches!(state, State::Stopped | State::Failed { .. })
                        || matches!(state, State::Exited { .. }) && !dep_svc.machine.is_completed();
                    if dep_down {
                        stack.push(d);
                    }
                }
            }
        }
    }

    /// Want `service` down, and everything that depends on it (first).
    /// Returns the dependents that were brought down with it. A dependent
    /// of a pool (`depends_on: {worker: ready}`) goes down only with the
    /// pool's last instance that was wanted up.
    pub(super) fn want_down(&mut self, service: ServiceId) -> Vec<ServiceId> {
        let mut stack = vec![service];
        let mut seen = vec![false; self.services.len()];
        let mut also = Vec::new();
        while let Some(i) = stack.pop() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            if i != service && self.services[i].goal.wanted {
                also.push(i);
            }
            let goal = &mut self.services[i].goal;
            goal.wanted = false;
            goal.start_pending = false;
            goal.resume = false;
            goal.waiting = None;
            goal.stop_sent = false;
            let pool_down = self.pool_wanted_down(i);
            for dependent in &self.graph.dependents[i] {
                if !dependent.through_pool || pool_down {
                    stack.push(dependent.service);
                }
            }
        }
        also
    }

    /// Stop `service` now, whatever depends on it (an instance leaving its
    /// pool, which nothing names): what [`reconcile`](Self::reconcile)
    /// would do once its dependents are down.
    pub(super) fn stop_alone(&mut self, service: ServiceId) {
        let svc = &self.services[service];
        if svc.goal.wanted || svc.goal.stop_sent || svc.spawning {
            return;
        }
        let idle =
            matches!(svc.machine.state(), State::Stopped | State::Exited { .. } | State::Failed { .. });
        self.services[service].goal.stop_sent = true;
        if !idle {
            self.deliver(service, service::Event::Stop);
        }
    }

    /// Want `service` down and nothing else: an instance leaving its pool
    /// (`tend scale`, a reload of a smaller `instances:`), which the pool's
    /// dependents do not need.
    pub(super) fn want_down_alone(&mut self, service: ServiceId) {
        let goal = &mut self.services[service].goal;
        goal.wanted = false;
        goal.start_pending = false;
        goal.resume = false;
        goal.waiting = None;
        goal.stop_sent = false;
    }

    /// Want `service` up, and only it: what it depends on is left as it is
    /// (a reload starts no unit it did not change; the service waits, or is
    /// blocked, until its dependencies hold).
    pub(super) fn want_up_alone(&mut self, service: ServiceId) {
        let svc = &mut self.services[service];
        if svc.retired {
            return;
        }
        svc.goal.wanted = true;
        svc.goal.stop_sent = false;
        svc.goal.resume = false;
        let down = match svc.machine.state() {
            State::Stopped | State::Failed { .. } | State::Exited { .. } | State::Stopping { .. } => true,
            State::Starting { .. } | State::Running { .. } | State::Backoff { .. } => false,
        };
        if down {
            svc.goal.start_pending = true;
        }
    }

    /// Restart a running service in place; start one that is down through
    /// the dependency check, like any start (a restart must not start a
    /// service before what it depends on), and with it what it depends on
    /// when that is down (`with_dependencies`: a restart asked by name) or
    /// not (a reload).
    pub(super) fn restart(&mut self, service: ServiceId, with_dependencies: bool) {
        let svc = &mut self.services[service];
        svc.goal.wanted = true;
        svc.goal.stop_sent = false;
        if svc.machine.pid().is_some() || matches!(svc.machine.state(), State::Stopping { .. }) {
            svc.goal.start_pending = false;
            svc.goal.resume = false;
            self.deliver(service, service::Event::Restart);
        } else if with_dependencies {
            self.want_up(service);
        } else {
            self.want_up_alone(service);
        }
    }

    /// Start what may start, stop what may stop. True when it did something
    /// (the caller runs it again until nothing changes).
    pub(super) fn reconcile(&mut self) -> bool {
        let running = self.phase == Phase::Running;
        let mut progress = false;
        for service in 0..self.services.len() {
            let svc = &self.services[service];
            if svc.retired && svc.goal.wanted {
                continue;
            }
            if svc.goal.wanted && svc.goal.start_pending && running {
                if matches!(svc.machine.state(), State::Stopping { .. }) {
                    continue;
                }
                if svc.spawning {
                    // Its machine restarted it already: the start is under way.
                    let goal = &mut self.services[service].goal;
                    goal.start_pending = false;
                    goal.resume = false;
                    goal.waiting = None;
                    continue;
                }
                match self.dependencies_met(service, false) {
                    Ok(()) => {
                        progress = true;
                        let goal = &mut self.services[service].goal;
                        goal.start_pending = false;
                        goal.waiting = None;
                        if std::mem::take(&mut goal.resume) {
                            // Its dependencies held it: it now follows their work.
                            self.spawn(service, false);
                        } else {
                            self.deliver(service, service::Event::Start);
                        }
                    }
                    Err(waiting) => {
                        let goal = &mut self.services[service].goal;
                        if goal.waiting.as_ref().map(|w| w.blocked) != Some(waiting.blocked)
                            || goal.waiting.is_none()
                        {
                            goal.waiting = Some(waiting);
                        }
                    }
                }
            } else if !svc.goal.wanted && !svc.goal.stop_sent {
                if svc.spawning {
                    // Its fork is being answered: stop it once it exists.
                    continue;
                }
                let idle = matches!(
                    svc.machine.state(),
                    State::Stopped | State::Exited { .. } | State::Failed { .. }
                );
                if idle {
                    self.services[service].goal.stop_sent = true;
                    continue;
                }
                // Dependents first: stop this one only once those going
                // down are down (a pool's dependent stays up while one
                // instance stops).
                let dependents_down = self.dependents(service).iter().all(|d| {
                    let dependent = &self.services[d.service];
                    dependent.is_down() || d.through_pool && dependent.goal.wanted
                });
                if dependents_down {
                    progress = true;
                    self.services[service].goal.stop_sent = true;
                    self.deliver(service, service::Event::Stop);
                }
            }
        }
        progress
    }
}
