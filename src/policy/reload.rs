//! What a reload changes: the difference between the running units and the
//! folder as it is now. Pure: compares definitions, touches nothing.

use crate::unit::UnitSpec;

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
pub fn plan<'a>(current: impl IntoIterator<Item = &'a UnitSpec>, new: &[UnitSpec]) -> ReloadPlan {
    let mut plan = ReloadPlan::default();
    let current: Vec<&UnitSpec> = current.into_iter().collect();
    for unit in new {
        match current.iter().find(|c| c.name == unit.name) {
            None => plan.added.push(unit.name.clone()),
            Some(old) if *old == unit => plan.unchanged.push(unit.name.clone()),
            Some(_) => plan.changed.push(unit.name.clone()),
        }
    }
    for old in &current {
        if !new.iter().any(|u| u.name == old.name) {
            plan.removed.push(old.name.clone());
        }
    }
    plan.added.sort();
    plan.removed.sort();
    plan.changed.sort();
    plan.unchanged.sort();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn unit(name: &str, command: &str) -> UnitSpec {
        crate::unit::testing::unit(name, &format!("command: [{command}]\n"))
    }

    #[test]
    fn each_kind_of_difference() {
        let current = [unit("same", "a"), unit("edited", "b"), unit("gone", "c")];
        let new = [unit("same", "a"), unit("edited", "B"), unit("fresh", "d")];
        let plan = plan(&current, &new);
        assert_eq!(plan.added, ["fresh"]);
        assert_eq!(plan.removed, ["gone"]);
        assert_eq!(plan.changed, ["edited"]);
        assert_eq!(plan.unchanged, ["same"]);
    }

    #[test]
    fn any_field_counts_as_a_change() {
        let mut edited = unit("x", "a");
        edited.stop_timeout = Duration::from_secs(1);
        assert_eq!(plan(&[unit("x", "a")], &[edited]).changed, ["x"]);
    }

    #[test]
    fn nothing_to_do() {
        let units = [unit("a", "x"), unit("b", "y")];
        let plan = plan(&units, &units);
        assert!(plan.added.is_empty() && plan.removed.is_empty() && plan.changed.is_empty());
        assert_eq!(plan.unchanged, ["a", "b"]);
    }
}
