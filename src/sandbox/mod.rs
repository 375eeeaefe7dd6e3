//! The sandbox: what a service may do, enforced in the child before exec,
//! and the cgroups that hold and limit it.
//!
//! Owns the parent-side plans (everything computed before fork: capability
//! masks, mount lists read from /proc/self/mountinfo, Landlock rulesets,
//! cgroup directories and their open `cgroup.procs` descriptors) and the
//! child-side steps, which are async-signal-safe: raw system calls on data
//! the parent prepared, no allocation. Must not decide policy nor fork: the
//! spawner calls the child steps in its fixed order, the loop calls the
//! cgroup manager.

pub mod cgroup;
pub mod confine;
