//! Pipelines between services (`stdout: {to: NAME}`, `stderr: {to: NAME}`)
//! and the standard streams of every spawn.
//!
//! A pipe belongs to its consumer: one per consumer, shared by all its
//! producers, and known by the consumer's id ([`PipeId`]). The core says
//! when the loop must make one ([`Action::OpenPipe`]: a live service pipes
//! into a live consumer) and when it may let go of its ends
//! ([`Action::ClosePipe`]: no live unit pipes into it any more, or the
//! shutdown began); between the two the loop holds both ends, so that
//! neither side's restart loses what the pipe holds or gives the consumer an
//! end-of-file. A pipe counts as `depends_on: {consumer: started}` for its
//! producer: the consumer starts first and stops last (the dependency
//! engine in `goals.rs` orders both).
//!
//! Decides each spawn's [`Stdio`]: the consumer's stdin is its pipe, else
//! what its unit says; a piped stream goes into the pipe, else to tend.

use super::{Action, Core, Phase, ServiceId};
use crate::spec::{Definition, Dependency, DependencyCondition, Spec, StdinSource};
use std::collections::BTreeSet;

/// A pipe, by its consumer's id.
pub type PipeId = ServiceId;

/// Where a spawned service's standard input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `/dev/null`.
    Null,
    /// The unit's `stdin: {file: PATH}`, opened by the child.
    File,
    /// The unit's `stdin: {data: "..."}`, then end-of-file.
    Data,
    /// The read end of its pipe: it is a consumer.
    Pipe(PipeId),
}

/// Where a spawned service's stdout or stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A pipe tend reads: its output, its log file, `tend logs`.
    Tend,
    /// The write end of that consumer's pipe (tend reads none of it).
    Pipe(PipeId),
}

/// The standard streams of one spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stdio {
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
}

/// The spec the core works with: the unit's, with each pipe it writes into
/// as a dependency on its consumer (`started`), unless it depends on it
/// already.
pub(super) fn effective_spec<U: Definition>(unit: &U) -> Spec {
    let mut spec = unit.spec();
    let consumers: Vec<String> = spec.pipes_into().map(str::to_string).collect();
    for name in consumers {
        if !spec.depends_on.iter().any(|d| d.name == name) {
            spec.depends_on.push(Dependency { name, condition: DependencyCondition::Started });
        }
    }
    spec
}

impl<U: Definition> Core<U> {
    /// The consumers that need a pipe now: a unit defined pipes into them
    /// (and they are live). By unit, not by service: a pool of producers
    /// scaled to no instances keeps its consumer's pipe (`tend scale` back
    /// up writes into the pipe the consumer reads), as the pipe lives for as
    /// long as either side is defined. None once the shutdown began:
    /// nothing starts any more, and a consumer whose producers are all gone
    /// then reads what is left and gets its end-of-file.
    fn wanted_pipes(&self) -> BTreeSet<PipeId> {
        let mut wanted = BTreeSet::new();
        if self.phase != Phase::Running {
            return wanted;
        }
        for entry in self.units.values() {
            for name in &entry.pipes_into {
                if let Some(consumer) = self.live(name) {
                    wanted.insert(consumer);
                }
            }
        }
        wanted
    }

    /// Open the pipes that are needed and not open, and close those no
    /// longer needed. Called whenever the set of units or the phase changes
    /// (so before any spawn that uses a new pipe). Nothing before `up`.
    pub(super) fn sync_pipes(&mut self) {
        if !self.up {
            return;
        }
        let wanted = self.wanted_pipes();
        let mut open: Vec<PipeId> = Vec::with_capacity(wanted.len());
        for pipe in wanted {
            if let Some(at) = self.closing.iter().position(|&p| p == pipe) {
                // Needed again before it was closed: it is still open.
                self.closing.swap_remove(at);
            } else if self.pipes.binary_search(&pipe).is_err() {
                self.out.push(Action::OpenPipe { pipe });
            }
            open.push(pipe);
        }
        for &pipe in &self.pipes {
            if open.binary_search(&pipe).is_err() {
                self.closing.push(pipe);
            }
        }
        self.pipes = open;
        self.close_pipes();
    }

    /// Let go of the pipes no longer needed, once no fork is in flight: a
    /// spawn decided earlier in the same turn may still name one (the loop
    /// carries actions out in order, and a nested event, a critical
    /// service's failed start, can begin the shutdown between two of them).
    /// Meanwhile no new spawn gets them. After every event too.
    pub(super) fn close_pipes(&mut self) {
        if self.closing.is_empty() || self.services.iter().any(|s| s.spawning) {
            return;
        }
        crate::sort::sort(&mut self.closing);
        for pipe in std::mem::take(&mut self.closing) {
            self.out.push(Action::ClosePipe { pipe });
        }
    }

    /// `service` is fed by a pipe (its own is open).
    pub(super) fn fed(&self, service: ServiceId) -> bool {
        self.pipes.binary_search(&service).is_ok()
    }

    /// The consumers (by name) fed by a pipe now.
    pub(super) fn fed_names(&self) -> BTreeSet<String> {
        self.pipes.iter().map(|&c| self.services[c].spec.name.clone()).collect()
    }

    /// The standard streams of `service`'s next process.
    pub(super) fn stdio(&self, service: ServiceId) -> Stdio {
        let spec = &self.services[service].spec;
        let stdin = if self.fed(service) {
            Input::Pipe(service)
        } else {
            match spec.stdin {
                StdinSource::Null => Input::Null,
                StdinSource::File => Input::File,
                StdinSource::Data => Input::Data,
            }
        };
        let output = |to: &Option<String>| match to.as_deref().and_then(|name| self.live(name)) {
            Some(consumer) if self.fed(consumer) => Output::Pipe(consumer),
            _ => Output::Tend,
        };
        Stdio { stdin, stdout: output(&spec.stdout_to), stderr: output(&spec.stderr_to) }
    }

    /// The pipes needed now (by consumer id): those open, less any held
    /// only until the forks in flight are answered.
    pub fn open_pipes(&self) -> &[PipeId] {
        &self.pipes
    }
}

#[cfg(test)]
#[path = "pipes_tests.rs"]
mod tests;
