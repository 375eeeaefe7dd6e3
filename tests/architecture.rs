//! DESIGN.md idea 6, "the tree shows the architecture": `unit/` and
//! `policy/` make no system calls and read no clock; `unsafe` lives only in
//! `spawn/`, `sandbox/` and `sys/`, each block justified by `// SAFETY:`.

use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The code of a line: without its `//` comment (doc comments may name the
/// forbidden things to explain why they are absent) and without the
/// contents of string literals. Good enough for this check: it does not
/// track `/* */` comments or raw strings.
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                in_str = false;
                out.push('"');
            }
            continue;
        }
        if c == '"' {
            in_str = true;
            out.push('"');
            continue;
        }
        if c == '/' && chars.peek() == Some(&'/') {
            break;
        }
        out.push(c);
    }
    out
}

/// `word` occurs in `code` not preceded by an identifier character (so
/// `std::os::unix::fs` does not count as `nix::`).
fn contains_word(code: &str, word: &str) -> bool {
    code.match_indices(word)
        .any(|(i, _)| !code[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_'))
}

fn rel(p: &Path) -> String {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(p).display().to_string()
}

#[test]
fn unit_and_policy_are_pure() {
    let forbidden = ["nix::", "libc::", "std::process", "std::thread", "Instant::now", "SystemTime"];
    let mut files = rust_files(&src().join("unit"));
    files.extend(rust_files(&src().join("policy")));
    assert!(!files.is_empty(), "no source files under src/unit and src/policy");
    let mut bad = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = code_of(line);
            for word in forbidden {
                if contains_word(&code, word) {
                    bad.push(format!("{}:{}: {word}: {}", rel(f), i + 1, line.trim()));
                }
            }
            // `use std::{process, thread}` and `extern crate libc` dodge the
            // plain patterns above.
            let t = code.trim();
            if t.starts_with("use std::{") && (t.contains("process") || t.contains("thread")) {
                bad.push(format!("{}:{}: grouped std import: {}", rel(f), i + 1, t));
            }
            if t.starts_with("use nix") || t.starts_with("use libc") || t.starts_with("extern crate") {
                bad.push(format!("{}:{}: system crate import: {}", rel(f), i + 1, t));
            }
        }
    }
    assert!(bad.is_empty(), "unit/ and policy/ must stay pure:\n{}", bad.join("\n"));
}

fn has_unsafe(code: &str) -> bool {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == "unsafe")
}

#[test]
fn unsafe_only_in_spawn_sandbox_sys() {
    let allowed = ["spawn", "sandbox", "sys"].map(|d| src().join(d));
    let mut bad = Vec::new();
    for f in rust_files(&src()) {
        if allowed.iter().any(|a| f.starts_with(a)) {
            continue;
        }
        let text = fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if has_unsafe(&code_of(line)) {
                bad.push(format!("{}:{}: {}", rel(&f), i + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "`unsafe` outside src/spawn, src/sandbox, src/sys:\n{}", bad.join("\n"));
}

/// Each `unsafe {` block (and `unsafe impl`) has a `// SAFETY:` comment in
/// the comment lines right above it (attributes may sit in between), or on
/// the same line.
#[test]
fn every_unsafe_block_has_a_safety_comment() {
    let mut bad = Vec::new();
    let mut seen = 0;
    for f in rust_files(&src()) {
        let text = fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = code_of(line);
            let is_block = code.contains("unsafe {") || code.trim_end().ends_with("unsafe");
            let is_impl = code.contains("unsafe impl");
            if !(is_block || is_impl) || !has_unsafe(&code) {
                continue;
            }
            seen += 1;
            if line.contains("SAFETY:") {
                continue;
            }
            let mut ok = false;
            let mut j = i;
            while j > 0 {
                j -= 1;
                let t = lines[j].trim();
                if t.starts_with("//") {
                    if t.contains("SAFETY:") {
                        ok = true;
                        break;
                    }
                } else if t.starts_with("#[") {
                    continue;
                } else {
                    break;
                }
            }
            if !ok {
                bad.push(format!("{}:{}: {}", rel(&f), i + 1, line.trim()));
            }
        }
    }
    eprintln!("checked {seen} unsafe blocks");
    assert!(bad.is_empty(), "`unsafe` without a `// SAFETY:` comment right above:\n{}", bad.join("\n"));
}
