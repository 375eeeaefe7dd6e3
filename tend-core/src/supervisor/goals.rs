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
    by_name: std::collections::HashMap<String, ServiceId>,
    /// Per service, each of its `depends_on` (in order): the live service, if any.
    dependencies: Vec<Vec<Option<ServiceId>>>,
    /// Per service, the services that depend on it (live ones, and removed
    /// ones until they are down).
    dependents: Vec<Vec<ServiceId>>,
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

    /// Services that depend on `service` (see [`Graph::dependents`]).
    fn dependents(&self, service: ServiceId) -> &[ServiceId] {
        &self.graph.dependents[service]
    }

    /// Index the live services by name, and each one's dependencies and
    /// dependents by id (after any change of the set: start, reload).
    pub(super) fn rebuild_graph(&mut self) {
        let n = self.services.len();
        let mut by_name = std::collections::HashMap::with_capacity(n);
        for (id, svc) in self.services.iter().enumerate() {
            if !svc.retired {
                by_name.insert(svc.spec.name.clone(), id);
            }
        }
        let mut dependencies = vec![Vec::new(); n];
        let mut dependents = vec![Vec::new(); n];
        for (id, svc) in self.services.iter().enumerate() {
            for dep in &svc.spec.depends_on {
                let target = by_name.get(&dep.name).copied();
                dependencies[id].push(target);
                // A unit a reload removed still counts while it runs: what
                // it depends on must not stop before it is down.
                if let (Some(target), false) = (target, svc.released) {
                    if !dependents[target].contains(&id) {
                        dependents[target].push(id);
                    }
                }
            }
        }
        self.graph = Graph { by_name, dependencies, dependents };
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
    pub(super) fn dependencies_met(&self, service: ServiceId, words: bool) -> Result<(), Waiting> {
        let mut waiting = Vec::new();
        let mut blocked = false;
        let mut pending = false;
        let svc = &self.services[service];
        for (dep, &target) in svc.spec.depends_on.iter().zip(&self.graph.dependencies[service]) {
            let state = match target {
                None => DepState::Down(if words { "removed".to_string() } else { String::new() }),
                Some(d) => self.dep_state(d, dep.condition, words),
            };
            match state {
                DepState::Met => continue,
                DepState::Waiting(what) => waiting.push((dep, what)),
                DepState::Down(what) => {
                    blocked = true;
                    waiting.push((dep, what));
                }
            }
            pending = true;
        }
        if !pending {
            return Ok(());
        }
        let why = if words {
            let parts: Vec<String> =
                waiting.iter().map(|(dep, what)| format!("{}: {what}", dep.name)).collect();
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
            for &dep in &self.graph.dependencies[i] {
                if let Some(d) = dep {
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
    /// Returns the dependents that were brought down with it.
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
            stack.extend_from_slice(&self.graph.dependents[i]);
        }
        also
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
                            self.spawn(service);
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
                // Dependents first: stop this one only once they are down.
                let dependents_down = self.dependents(service).iter().all(|&d| self.services[d].is_down());
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
