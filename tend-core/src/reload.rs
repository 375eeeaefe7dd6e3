//! What a reload changes: the difference between the running units and the
//! folder as it is now. Pure: compares definitions, touches nothing.

use crate::spec::Definition;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// In the folder, not running: start.
    pub added: Vec<String>,
    /// Running, gone from the folder: stop (gracefully, as on shutdown).
    pub removed: Vec<String>,
    /// In both, with a different definition: restart with the new one.
    pub changed: Vec<String>,
    /// In both, identical: leave alone (same pid).
    pub unchanged: Vec<String>,
}

/// Compare by name; any difference in a unit's definition (command,
/// environment, limits, policy, even its description) counts as changed.
pub fn plan<'a, U: Definition + 'a>(
    current: impl IntoIterator<Item = &'a U>,
    new: impl IntoIterator<Item = &'a U>,
) -> ReloadPlan {
    let mut plan = ReloadPlan::default();
    let current: Vec<&U> = current.into_iter().collect();
    let new: Vec<&U> = new.into_iter().collect();
    for &unit in &new {
        let name = unit.name().to_string();
        match current.iter().find(|c| c.name() == unit.name()) {
            None => plan.added.push(name),
            Some(&old) if old == unit => plan.unchanged.push(name),
            Some(_) => plan.changed.push(name),
        }
    }
    for old in &current {
        if !new.iter().any(|u| u.name() == old.name()) {
            plan.removed.push(old.name().to_string());
        }
    }
    crate::sort::sort(&mut plan.added);
    crate::sort::sort(&mut plan.removed);
    crate::sort::sort(&mut plan.changed);
    crate::sort::sort(&mut plan.unchanged);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    /// A definition that is its name and one other field.
    #[derive(Debug, PartialEq)]
    struct Unit(&'static str, &'static str);

    impl Definition for Unit {
        fn name(&self) -> &str {
            self.0
        }
        fn spec(&self) -> Spec {
            unreachable!("the plan compares definitions only")
        }
        fn service(&self, _: Option<&str>) -> Self {
            unreachable!("the plan compares definitions only")
        }
    }

    #[test]
    fn each_kind_of_difference() {
        let current = [Unit("same", "a"), Unit("edited", "b"), Unit("gone", "c")];
        let new = [Unit("same", "a"), Unit("edited", "B"), Unit("fresh", "d")];
        let plan = plan(&current, &new);
        assert_eq!(plan.added, ["fresh"]);
        assert_eq!(plan.removed, ["gone"]);
        assert_eq!(plan.changed, ["edited"]);
        assert_eq!(plan.unchanged, ["same"]);
    }

    #[test]
    fn nothing_to_do() {
        let units = [Unit("b", "y"), Unit("a", "x")];
        let plan = plan(&units, &units);
        assert!(plan.added.is_empty() && plan.removed.is_empty() && plan.changed.is_empty());
        assert_eq!(plan.unchanged, ["a", "b"], "sorted by name");
    }
}
