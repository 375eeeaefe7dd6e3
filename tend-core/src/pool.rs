//! Instance pools: a unit with `instances: N` (or a list of names) is N
//! services, `NAME@1` … `NAME@N`, each a full service of its own. This
//! module holds the pure rules of pools: the names of a pool's instances,
//! how a full name splits into unit and instance, what `tend scale`
//! changes, and the `%i` specifier (the instance name in a unit's command,
//! environment, working_dir and log file).
//!
//! Must not touch the system: text and lists in, text and lists out.

use serde::{Deserialize, Serialize};

/// The most instances one unit may have (`instances:` and `tend scale`):
/// each instance holds pipes and a cgroup, so the bound keeps a typo
/// (`instances: 10000000`) from exhausting descriptors.
pub const MAX_INSTANCES: u32 = 1000;

/// The longest instance name in a list (`instances: [eu-west-1, …]`).
pub const MAX_INSTANCE_NAME: usize = 64;

/// A unit's `instances:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Instances {
    /// `instances: 4`: `NAME@1` … `NAME@4`.
    Count(u32),
    /// `instances: [eu, us]`: `NAME@eu`, `NAME@us`, in this order.
    Names(Vec<String>),
}

impl Instances {
    /// The instance names, in order.
    pub fn names(&self) -> Vec<String> {
        match self {
            Instances::Count(n) => numbered(*n),
            Instances::Names(names) => names.clone(),
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        match self {
            Instances::Count(n) => *n as usize,
            Instances::Names(names) => names.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `1` … `n`.
pub fn numbered(n: u32) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
}

/// The full name of an instance: `worker@2`.
pub fn full_name(unit: &str, instance: &str) -> String {
    format!("{unit}@{instance}")
}

/// `worker@2` → (`worker`, Some(`2`)); `web` → (`web`, None).
pub fn split(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((unit, instance)) => (unit, Some(instance)),
        None => (name, None),
    }
}

/// Why `name` cannot be an instance name (in `instances: [...]`): the same
/// alphabet as unit names, without `@`.
pub fn check_instance_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an instance name is empty".into());
    }
    if name.len() > MAX_INSTANCE_NAME {
        return Err(format!("instance name '{name}' is longer than {MAX_INSTANCE_NAME} characters"));
    }
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !first_ok || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)) {
        return Err(format!(
            "invalid instance name '{}': it must start with a-z or 0-9 and contain only a-z, 0-9, '_', '.' and '-'",
            name.escape_default()
        ));
    }
    Ok(())
}

/// What `tend scale` to `target` changes in a numbered pool that has the
/// instances `current` (`1` … `n`, in order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScaleDiff {
    /// New instances to start, lowest first.
    pub add: Vec<String>,
    /// Surplus instances to stop, highest first.
    pub remove: Vec<String>,
}

/// The instances to add (`n+1` … `target`) or remove (from the highest
/// down to `target+1`): the instances that stay are never touched.
pub fn scale(current: &[String], target: u32) -> ScaleDiff {
    let wanted = numbered(target);
    let add = wanted.iter().filter(|name| !current.contains(name)).cloned().collect();
    let mut remove: Vec<String> = current.iter().filter(|name| !wanted.contains(name)).cloned().collect();
    // Highest first: numerically for numbers, then anything else.
    crate::sort::sort_by_key(&mut remove, |name| std::cmp::Reverse((name.parse::<u64>().ok(), name.clone())));
    ScaleDiff { add, remove }
}

/// A `%` in a value of an instanced unit that is neither `%i` nor `%%`,
/// with its byte offset in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSpecifier {
    pub offset: usize,
    pub message: String,
}

/// Check the specifiers of one value of an instanced unit: `%i` (the
/// instance name) and `%%` (a literal `%`) only, as in systemd, so that a
/// `%s` meant for `date` is caught rather than run as something else.
pub fn check_specifiers(text: &str) -> Result<(), BadSpecifier> {
    let mut chars = text.char_indices();
    while let Some((offset, c)) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some((_, 'i' | '%')) => {}
            Some((_, other)) => {
                return Err(BadSpecifier {
                    offset,
                    message: format!(
                        "unknown specifier '%{other}': only %i (the instance name) and %% (a literal %) are replaced"
                    ),
                })
            }
            None => {
                return Err(BadSpecifier {
                    offset,
                    message: "a lone '%' at the end: write %% for a literal %".into(),
                })
            }
        }
    }
    Ok(())
}

/// `text` with `%i` replaced by `instance` and `%%` by `%` (checked by
/// [`check_specifiers`] first; anything else is kept as it is).
pub fn substitute(text: &str, instance: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + instance.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('i') => {
                chars.next();
                out.push_str(instance);
            }
            Some('%') => {
                chars.next();
                out.push('%');
            }
            _ => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_a_count_and_of_a_list() {
        assert_eq!(Instances::Count(3).names(), ["1", "2", "3"]);
        assert_eq!(Instances::Names(vec!["eu".into(), "us".into()]).names(), ["eu", "us"]);
        assert!(Instances::Count(0).is_empty());
        assert_eq!(full_name("worker", "2"), "worker@2");
        assert_eq!(split("worker@2"), ("worker", Some("2")));
        assert_eq!(split("web"), ("web", None));
    }

    #[test]
    fn scale_up_adds_the_next_numbers_and_touches_nothing_else() {
        let diff = scale(&numbered(2), 5);
        assert_eq!(diff.add, ["3", "4", "5"]);
        assert!(diff.remove.is_empty());
        assert_eq!(scale(&numbered(4), 4), ScaleDiff::default());
    }

    #[test]
    fn scale_down_removes_from_the_highest() {
        let diff = scale(&numbered(12), 8);
        assert!(diff.add.is_empty());
        assert_eq!(diff.remove, ["12", "11", "10", "9"], "numerically, not as text");
        assert_eq!(scale(&numbered(3), 0).remove, ["3", "2", "1"]);
    }

    #[test]
    fn scale_fills_a_gap() {
        // `2` was removed by hand somehow: scaling to 3 brings it back, and
        // only it.
        let current = vec!["1".to_string(), "3".to_string()];
        assert_eq!(scale(&current, 3), ScaleDiff { add: vec!["2".into()], remove: vec![] });
    }

    #[test]
    fn specifiers() {
        assert_eq!(substitute("--id=%i", "7"), "--id=7");
        assert_eq!(substitute("100%% of %i, %i", "eu"), "100% of eu, eu");
        assert_eq!(substitute("no specifier", "x"), "no specifier");
        assert_eq!(substitute("%%i", "x"), "%i", "%% first: a literal %, then i");
        assert!(check_specifiers("/srv/%i/data %%").is_ok());
        let bad = check_specifiers("date +%s").unwrap_err();
        assert_eq!(bad.offset, 6);
        assert!(bad.message.contains("'%s'"), "{}", bad.message);
        assert!(check_specifiers("50%").unwrap_err().message.contains("lone"));
    }

    #[test]
    fn instance_names() {
        assert!(check_instance_name("eu-west.1").is_ok());
        assert!(check_instance_name("").is_err());
        assert!(check_instance_name("a@b").is_err());
        assert!(check_instance_name("Eu").is_err());
        assert!(check_instance_name(&"x".repeat(65)).is_err());
    }
}
