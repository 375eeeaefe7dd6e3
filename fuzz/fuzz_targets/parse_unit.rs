//! Fuzz target: `tend::parse_unit` on arbitrary UTF-8 must return
//! `Ok` or diagnostics, never panic, hang or overflow the stack, whatever the
//! YAML (aliases, deep nesting, huge numbers, control characters).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tend::{parse_unit, UserDb, UserEntry};

/// A fixed user database: the target must not depend on the host's.
struct FakeUsers;

impl UserDb for FakeUsers {
    fn user_by_name(&self, name: &str) -> Option<UserEntry> {
        match name {
            "root" => Some(entry("root", 0)),
            "www" => Some(entry("www", 33)),
            _ => None,
        }
    }
    fn user_by_uid(&self, uid: u32) -> Option<UserEntry> {
        match uid {
            0 => Some(entry("root", 0)),
            33 => Some(entry("www", 33)),
            _ => None,
        }
    }
    fn group_by_name(&self, name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "www" => Some(33),
            "adm" => Some(4),
            _ => None,
        }
    }
    fn groups_of(&self, user: &UserEntry) -> Vec<u32> {
        vec![user.gid, 4]
    }
    fn current_ids(&self) -> (u32, u32) {
        (1000, 1000)
    }
}

fn entry(name: &str, id: u32) -> UserEntry {
    UserEntry { name: name.into(), uid: id, gid: id, home: format!("/home/{name}") }
}

fuzz_target!(|text: &str| {
    // A folder that does not exist: env_file look-ups fail cleanly instead
    // of reading whatever the fuzzer names on the host.
    let file = Path::new("/nonexistent/tend-fuzz/web.yaml");
    match parse_unit(file, text, &FakeUsers) {
        Ok(spec) => {
            assert!(!spec.command.is_empty());
            assert!(spec.restart_delay <= spec.restart_delay_max);
        }
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            for d in &diagnostics {
                // Rendering must not panic either.
                let _ = d.to_string();
            }
        }
    }
});
