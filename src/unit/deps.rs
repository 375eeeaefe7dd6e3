//! The dependency graph between units (`depends_on`, and the pipes of
//! `stdout`/`stderr: {to: NAME}`): the checks that need every unit at once
//! (unknown names, cycles, `completed` on a non-oneshot, a pipe into a
//! oneshot, into a pool without naming the instance, or into a unit with a
//! `stdin` of its own). The order services start in is the core's
//! dependency engine's: it starts each as soon as what it depends on holds.
//!
//! Pure: units in, indices and diagnostics out. An edge `a → b` means "a
//! depends on b" (b must start first); a pipe from a into b is such an edge
//! (the core starts a consumer before its producers). Dependencies on names
//! that are not in the slice are ignored by the graph functions; [`check`]
//! reports them.

use super::values::{did_you_mean, printable};
use super::{DependencyCondition, Diagnostic, PipeTarget, ServiceType, Stdin, UnitSpec};
use std::collections::{BTreeSet, VecDeque};

/// Every unit's dependencies before it, smallest name first among the
/// ready; units on or behind a cycle last, by name: the order the graph
/// functions walk (cycle detection relies on it). For the tests: tend
/// starts services as the core's dependency engine says.
#[cfg(test)]
pub(crate) fn start_order(units: &[UnitSpec]) -> Vec<usize> {
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    let (mut order, mut rest) = topological(&names, &edges(units));
    tend_core::sort::sort_by_key(&mut rest, |&i| names[i]);
    order.extend(rest);
    order
}

/// Every problem of the dependency graph as diagnostics at the dependency
/// that causes it, in the dependent's file. `known` holds the name of every
/// unit file found, including those that failed to parse, so that a broken
/// `db.yaml` is not also reported as "no unit 'db'" by its dependents.
pub(crate) fn check(units: &[UnitSpec], known: &BTreeSet<String>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let at = |unit: &UnitSpec, dep: usize, message: String| Diagnostic {
        file: unit.file.clone(),
        line: unit.depends_on[dep].line,
        column: unit.depends_on[dep].column,
        message,
        hint: None,
    };
    for unit in units {
        for (i, dep) in unit.depends_on.iter().enumerate() {
            // `worker@2`: one instance of the pool `worker`.
            let (dep_unit, instance) = tend_core::pool::split(&dep.name);
            if let (Some(instance), true) = (instance, known.contains(dep_unit)) {
                let target = units.iter().find(|u| u.name == dep_unit);
                match target.map(|t| &t.instances) {
                    // Its file did not parse: reported there.
                    None => continue,
                    Some(None) => {
                        out.push(at(
                            unit,
                            i,
                            format!(
                                "depends_on: '{dep_unit}' has no instances, so there is no '{}'",
                                dep.name
                            ),
                        ));
                        continue;
                    }
                    Some(Some(instances)) if !instances.names().iter().any(|n| n == instance) => {
                        let names = instances.names();
                        let listed = match instances {
                            super::Instances::Count(n) => format!("{dep_unit}@1 … {dep_unit}@{n}"),
                            super::Instances::Names(_) => {
                                names.iter().map(|n| format!("{dep_unit}@{n}")).collect::<Vec<_>>().join(", ")
                            }
                        };
                        out.push(at(
                            unit,
                            i,
                            format!(
                                "depends_on: '{dep_unit}' has no instance '{instance}' (it has {listed})"
                            ),
                        ));
                        continue;
                    }
                    Some(Some(_)) => {}
                }
            } else if !known.contains(&dep.name) {
                let mut message = format!("depends_on: no unit '{}'", printable(&dep.name));
                // `db.yaml` for `db`: the file name instead of the unit name.
                let stem = dep.name.strip_suffix(".yaml").or_else(|| dep.name.strip_suffix(".yml"));
                let best = match stem {
                    Some(stem) if known.contains(stem) => Some(stem),
                    _ => did_you_mean(&dep.name, known.iter().map(String::as_str)),
                };
                if let Some(best) = best {
                    message.push_str(&format!(" (did you mean '{best}'?)"));
                }
                out.push(at(unit, i, message));
                continue;
            }
            if dep.condition != DependencyCondition::Completed {
                continue;
            }
            let target = units.iter().find(|u| u.name == dep_unit);
            if target.is_some_and(|t| t.service_type != ServiceType::Oneshot) {
                out.push(at(
                    unit,
                    i,
                    format!(
                        "depends_on: '{}' is not a oneshot, so it never completes (use ready or started)",
                        dep.name
                    ),
                ));
            }
        }
    }
    out.extend(check_pipes(units, known));
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    let deps = edges(units);
    for cycle in cycles(&names, &deps) {
        let (first, second) = (cycle[0], cycle.get(1).copied().unwrap_or(cycle[0]));
        let unit = &units[first];
        let mut path: Vec<&str> = cycle.iter().map(|&i| names[i]).collect();
        path.push(names[first]);
        let path = path.join(" -> ");
        let unit_of = |name: &str| tend_core::pool::split(name).0 == names[second];
        if let Some(dep) = unit.depends_on.iter().position(|d| unit_of(&d.name)) {
            out.push(at(unit, dep, format!("depends_on: dependency cycle {path}")));
        } else if let Some((key, target)) = pipes(unit).find(|(_, t)| unit_of(&t.name)) {
            out.push(Diagnostic {
                file: unit.file.clone(),
                line: target.at.line,
                column: target.at.column,
                message: format!(
                    "{key}.to: dependency cycle {path} (a pipe counts as depends_on: {{{}: started}})",
                    target.name
                ),
                hint: None,
            });
        }
    }
    out
}

/// The pipes a unit writes into: (`stdout` or `stderr`, its target).
fn pipes(unit: &UnitSpec) -> impl Iterator<Item = (&'static str, &PipeTarget)> {
    [("stdout", &unit.stdout_to), ("stderr", &unit.stderr_to)]
        .into_iter()
        .filter_map(|(key, target)| Some((key, target.as_deref()?)))
}

/// What only the whole folder shows about pipes: a target that is no unit,
/// a oneshot (it would end, and its producers with nowhere to write), or a
/// unit with a `stdin` of its own (a consumer reads its pipe, nothing else).
fn check_pipes(units: &[UnitSpec], known: &BTreeSet<String>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for unit in units {
        for (key, target) in pipes(unit) {
            let mut problem = |message: String, hint: Option<String>| {
                out.push(Diagnostic {
                    file: unit.file.clone(),
                    line: target.at.line,
                    column: target.at.column,
                    message: format!("{key}.to: {message}"),
                    hint,
                })
            };
            // `worker@2`: one instance of the pool `worker`.
            let (consumer_unit, instance) = tend_core::pool::split(&target.name);
            if !known.contains(consumer_unit) {
                let mut message = format!("no unit '{}'", printable(&target.name));
                if let Some(best) = did_you_mean(&target.name, known.iter().map(String::as_str)) {
                    message.push_str(&format!(" (did you mean '{best}'?)"));
                }
                problem(message, None);
                continue;
            }
            // A unit whose file did not parse is reported in that file.
            let Some(consumer) = units.iter().find(|u| u.name == consumer_unit) else { continue };
            match (&consumer.instances, instance) {
                (Some(instances), None) => {
                    let first = instances.names().into_iter().next().unwrap_or_default();
                    problem(
                        format!(
                            "'{consumer_unit}' is a pool of instances: a pipe feeds one service, so name the instance"
                        ),
                        Some(format!("write {key}: {{to: {consumer_unit}@{first}}}")),
                    );
                    continue;
                }
                (None, Some(_)) => {
                    problem(
                        format!("'{consumer_unit}' has no instances, so there is no '{}'", target.name),
                        None,
                    );
                    continue;
                }
                (Some(instances), Some(instance)) if !instances.names().iter().any(|n| n == instance) => {
                    problem(format!("'{consumer_unit}' has no instance '{instance}'"), None);
                    continue;
                }
                _ => {}
            }
            if consumer.service_type == ServiceType::Oneshot {
                problem(
                    format!("'{}' is a oneshot: a pipe needs a service that keeps reading", target.name),
                    Some("pipe into a long-running service (type simple or notify)".into()),
                );
            }
            let own = match &consumer.stdin {
                Stdin::Null => None,
                Stdin::File(_) => Some("file"),
                Stdin::Data(_) => Some("data"),
            };
            if let Some(own) = own {
                problem(
                    format!(
                        "'{}' has stdin: {{{own}: ...}} of its own: a service fed by a pipe reads the pipe",
                        target.name
                    ),
                    Some(format!("remove stdin from {}", consumer.file.display())),
                );
            }
        }
    }
    out
}

/// For each unit, the indices of the units it depends on (known names
/// only, each once, in name order).
fn edges(units: &[UnitSpec]) -> Vec<Vec<usize>> {
    let mut by_name: Vec<(&str, usize)> =
        units.iter().enumerate().map(|(i, u)| (u.name.as_str(), i)).collect();
    tend_core::sort::sort(&mut by_name);
    let index = |name: &str| by_name.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|at| by_name[at].1);
    units
        .iter()
        .map(|u| {
            // An instance (`worker@2`) is its pool's unit in the graph, as
            // the target of a dependency or of a pipe.
            let mut deps: Vec<usize> = u
                .depends_on
                .iter()
                .map(|d| d.name.as_str())
                .chain(pipes(u).map(|(_, t)| t.name.as_str()))
                .filter_map(|name| index(tend_core::pool::split(name).0))
                .collect();
            tend_core::sort::sort_by_key(&mut deps, |&i| &units[i].name);
            deps.dedup();
            deps
        })
        .collect()
}

/// Kahn's algorithm, smallest name first among the ready. Returns the
/// order and the nodes left out (on a cycle or depending on one).
fn topological(names: &[&str], deps: &[Vec<usize>]) -> (Vec<usize>, Vec<usize>) {
    let n = names.len();
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: BTreeSet<(&str, usize)> =
        (0..n).filter(|&i| waiting[i] == 0).map(|i| (names[i], i)).collect();
    let mut order = Vec::with_capacity(n);
    while let Some((_, i)) = ready.pop_first() {
        order.push(i);
        for &j in &dependents[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.insert((names[j], j));
            }
        }
    }
    let rest = (0..n).filter(|&i| waiting[i] > 0).collect();
    (order, rest)
}

/// One cycle per strongly connected group of units: the shortest cycle
/// through the group's first unit in name order, starting there. (A group
/// can hold several cycles; breaking the one reported shows the next on the
/// next load, and listing every elementary cycle can be exponential.)
fn cycles(names: &[&str], deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let (_, mut rest) = topological(names, deps);
    tend_core::sort::sort_by_key(&mut rest, |&i| names[i]);
    let candidate: BTreeSet<usize> = rest.iter().copied().collect();
    let mut covered = vec![false; names.len()];
    let mut found = Vec::new();
    for &start in &rest {
        if covered[start] {
            continue;
        }
        // Breadth-first from `start` over the candidates, back to `start`.
        let mut parent: Vec<Option<usize>> = vec![None; names.len()];
        let mut seen = vec![false; names.len()];
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(i) = queue.pop_front() {
            for &d in &deps[i] {
                if d == start {
                    last = Some(i);
                    break 'search;
                }
                if candidate.contains(&d) && !covered[d] && !seen[d] {
                    seen[d] = true;
                    parent[d] = Some(i);
                    queue.push_back(d);
                }
            }
        }
        let Some(mut at) = last else {
            continue; // behind a cycle, not on one
        };
        let mut cycle = vec![at];
        while let Some(p) = parent[at] {
            cycle.push(p);
            at = p;
        }
        if cycle.last() != Some(&start) {
            cycle.push(start);
        }
        cycle.reverse();
        // Everything on a cycle with `start` belongs to its group: reachable
        // from it and reaching it. Mark it so the group is reported once.
        let forward = reach(names.len(), start, |i| deps[i].clone());
        let backward =
            reach(names.len(), start, |i| (0..names.len()).filter(|&j| deps[j].contains(&i)).collect());
        for i in 0..names.len() {
            if forward[i] && backward[i] {
                covered[i] = true;
            }
        }
        found.push(cycle);
    }
    found
}

/// Nodes (of `n`) reachable from `start`, itself included.
fn reach(n: usize, start: usize, next: impl Fn(usize) -> Vec<usize>) -> Vec<bool> {
    let mut seen = vec![false; n];
    let mut stack = vec![start];
    while let Some(i) = stack.pop() {
        if seen[i] {
            continue;
        }
        seen[i] = true;
        stack.extend(next(i));
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::parse_unit;
    use crate::unit::testing::NoUsers;
    use std::path::Path;

    /// Units from (name, extra yaml) pairs.
    fn units(defs: &[(&str, &str)]) -> Vec<UnitSpec> {
        defs.iter()
            .map(|(name, yaml)| {
                let file = format!("{name}.yaml");
                parse_unit(Path::new(&file), &format!("command: x\n{yaml}"), &NoUsers)
                    .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            })
            .collect()
    }

    fn names_in(units: &[UnitSpec], order: &[usize]) -> Vec<String> {
        order.iter().map(|&i| units[i].name.clone()).collect()
    }

    fn messages(units: &[UnitSpec]) -> Vec<String> {
        let known = units.iter().map(|u| u.name.clone()).collect();
        check(units, &known).iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn start_order_puts_dependencies_first_ties_by_name() {
        let u = units(&[
            ("proxy", "depends_on: [app]\n"),
            ("app", "depends_on: {db: ready, migrate: completed}\n"),
            ("migrate", "type: oneshot\ndepends_on: [db]\n"),
            ("db", ""),
            ("cache", ""),
            ("zz", ""),
        ]);
        assert_eq!(names_in(&u, &start_order(&u)), ["cache", "db", "migrate", "app", "proxy", "zz"]);
        assert!(messages(&u).is_empty());
    }

    #[test]
    fn start_order_of_nothing_and_of_independents() {
        assert!(start_order(&[]).is_empty());
        let u = units(&[("b", ""), ("c", ""), ("a", "")]);
        assert_eq!(names_in(&u, &start_order(&u)), ["a", "b", "c"]);
    }

    #[test]
    fn start_order_ignores_unknown_names_and_keeps_cycles_last() {
        let u =
            units(&[("a", "depends_on: [b]\n"), ("b", "depends_on: [a]\n"), ("c", "depends_on: [nope]\n")]);
        assert_eq!(names_in(&u, &start_order(&u)), ["c", "a", "b"]);
    }

    #[test]
    fn a_long_chain() {
        let defs: Vec<(String, String)> = (0..300)
            .map(|i| {
                (
                    format!("s{i:03}"),
                    if i == 0 { String::new() } else { format!("depends_on: [s{:03}]\n", i - 1) },
                )
            })
            .rev()
            .collect();
        let defs: Vec<(&str, &str)> = defs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let u = units(&defs);
        let order = names_in(&u, &start_order(&u));
        assert_eq!(order.first().map(String::as_str), Some("s000"));
        assert_eq!(order.last().map(String::as_str), Some("s299"));
        assert!(order.windows(2).all(|w| w[0] < w[1]));
        assert!(messages(&u).is_empty());
    }

    #[test]
    fn a_cycle_is_reported_once_at_its_first_unit() {
        let u = units(&[
            ("c", "depends_on: [a]\n"),
            ("b", "depends_on:\n  - c\n"),
            ("a", "description: x\ndepends_on:\n  - b\n"),
            ("d", "depends_on: [a]\n"),
        ]);
        assert_eq!(messages(&u), ["a.yaml:4:5: depends_on: dependency cycle a -> b -> c -> a"]);
    }

    #[test]
    fn two_cycles_and_a_group_with_two_cycles() {
        let u = units(&[
            ("x", "depends_on: [y]\n"),
            ("y", "depends_on: [x]\n"),
            // one group, two cycles: a -> b -> a and a -> c -> a; reported once
            ("a", "depends_on: [c, b]\n"),
            ("b", "depends_on: [a]\n"),
            ("c", "depends_on: [a]\n"),
        ]);
        assert_eq!(
            messages(&u),
            [
                "a.yaml:2:17: depends_on: dependency cycle a -> b -> a",
                "x.yaml:2:14: depends_on: dependency cycle x -> y -> x",
            ]
        );
    }

    #[test]
    fn the_reported_cycle_is_the_shortest_through_the_first_unit() {
        let u = units(&[
            ("a", "depends_on: [b, e]\n"),
            ("b", "depends_on: [c]\n"),
            ("c", "depends_on: [d]\n"),
            ("d", "depends_on: [a]\n"),
            ("e", "depends_on: [a]\n"),
        ]);
        assert_eq!(messages(&u), ["a.yaml:2:17: depends_on: dependency cycle a -> e -> a"]);
    }

    #[test]
    fn unknown_names_with_suggestions() {
        let u = units(&[("db", ""), ("web", "description: w\ndepends_on:\n  - dbb\n  - db.yaml\n  - zzz\n")]);
        assert_eq!(
            messages(&u),
            [
                "web.yaml:4:5: depends_on: no unit 'dbb' (did you mean 'db'?)",
                "web.yaml:5:5: depends_on: no unit 'db.yaml' (did you mean 'db'?)",
                "web.yaml:6:5: depends_on: no unit 'zzz'",
            ]
        );
        // A unit whose file exists but failed to parse is known.
        let u = units(&[("web", "depends_on: [db]\n")]);
        let known = ["db".to_string(), "web".to_string()].into_iter().collect();
        assert!(check(&u, &known).is_empty());
    }

    #[test]
    fn pipes_order_the_start_and_take_part_in_cycles() {
        let u = units(&[
            ("app", "stdout: {to: shipper}\n"),
            ("shipper", "stderr:\n  to: store\n"),
            ("store", ""),
        ]);
        assert_eq!(names_in(&u, &start_order(&u)), ["store", "shipper", "app"]);
        assert!(messages(&u).is_empty());
        // A pipe one way, depends_on the other: the consumer could never start.
        let u = units(&[("app", "stdout: {to: shipper}\n"), ("shipper", "depends_on: [app]\n")]);
        assert_eq!(
            messages(&u),
            ["app.yaml:2:14: stdout.to: dependency cycle app -> shipper -> app (a pipe counts as depends_on: {shipper: started})"]
        );
        let u = units(&[("a", "stdout: {to: b}\n"), ("b", "stderr: {to: a}\n")]);
        assert_eq!(
            messages(&u),
            ["a.yaml:2:14: stdout.to: dependency cycle a -> b -> a (a pipe counts as depends_on: {b: started})"]
        );
    }

    #[test]
    fn a_pipe_needs_a_known_long_running_consumer_without_stdin_of_its_own() {
        let u = units(&[
            ("app", "stdout: {to: shiper}\nstderr: {to: migrate}\n"),
            ("shipper", ""),
            ("migrate", "type: oneshot\n"),
            ("cron", "stdout: {to: reader}\n"),
            ("reader", "stdin: {file: in.txt}\n"),
        ]);
        assert_eq!(
            messages(&u),
            [
                "app.yaml:2:14: stdout.to: no unit 'shiper' (did you mean 'shipper'?)",
                "app.yaml:3:14: stderr.to: 'migrate' is a oneshot: a pipe needs a service that keeps reading\n  \
                 hint: pipe into a long-running service (type simple or notify)",
                "cron.yaml:2:14: stdout.to: 'reader' has stdin: {file: ...} of its own: a service fed by a pipe \
                 reads the pipe\n  hint: remove stdin from reader.yaml",
            ]
        );
    }

    #[test]
    fn completed_needs_a_oneshot() {
        let u = units(&[
            ("db", ""),
            ("migrate", "type: oneshot\n"),
            ("web", "depends_on:\n  db: completed\n  migrate: completed\n"),
        ]);
        assert_eq!(
            messages(&u),
            ["web.yaml:3:3: depends_on: 'db' is not a oneshot, so it never completes (use ready or started)"]
        );
    }
}
