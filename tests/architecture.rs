//! DESIGN.md idea 6, "the tree shows the architecture", checked:
//!
//! - the core (`tend-core`) depends on nothing that reaches the kernel (no
//!   libc, no nix, in its whole dependency tree: the compiler keeps it pure)
//!   and its code makes no system call, reads no clock, touches no file;
//! - `unit/` makes no system call and reads no clock;
//! - only the spawner forks, and only the reaper waits;
//! - no import circles between the files of either crate;
//! - `unsafe` lives only in `spawn/`, `sandbox/` and `sys/`, each block
//!   justified by `// SAFETY:`.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn src() -> PathBuf {
    root().join("src")
}

fn core_src() -> PathBuf {
    root().join("tend-core").join("src")
}

/// Test code, which may fork and wait as it likes (in its own process).
fn is_test_file(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "tests.rs" || n.to_string_lossy().ends_with("_tests.rs"))
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

/// Lines of `files` that use one of `forbidden`.
fn uses(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for f in files {
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
            if t.starts_with("use std::{")
                && ["process", "thread", "fs", "net", "env"].iter().any(|m| t.contains(m))
            {
                bad.push(format!("{}:{}: grouped std import: {}", rel(f), i + 1, t));
            }
            if t.starts_with("use nix") || t.starts_with("use libc") || t.starts_with("extern crate") {
                bad.push(format!("{}:{}: system crate import: {}", rel(f), i + 1, t));
            }
        }
    }
    bad
}

#[test]
fn unit_is_pure() {
    let files = rust_files(&src().join("unit"));
    assert!(!files.is_empty(), "no source files under src/unit");
    let bad =
        uses(&files, &["nix::", "libc::", "std::process", "std::thread", "Instant::now", "SystemTime::now"]);
    assert!(bad.is_empty(), "unit/ must stay pure:\n{}", bad.join("\n"));
}

#[test]
fn the_core_makes_no_system_call_and_reads_no_clock() {
    let files = rust_files(&core_src());
    assert!(files.len() >= 8, "the core's sources are missing: {files:?}");
    let forbidden = [
        "nix::",
        "libc::",
        "std::process",
        "std::thread",
        "std::fs",
        "std::net",
        "std::env",
        "std::os",
        "Instant",
        "SystemTime::now",
        "unsafe",
        "println!",
        "eprintln!",
    ];
    let bad = uses(&files, &forbidden);
    assert!(bad.is_empty(), "tend-core must stay pure:\n{}", bad.join("\n"));
}

/// The dependencies of a package named in a Cargo.toml section.
fn toml_dependencies(manifest: &str, section: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == section;
            continue;
        }
        if inside && !t.is_empty() && !t.starts_with('#') {
            if let Some((name, _)) = t.split_once('=') {
                out.push(name.trim().to_string());
            }
        }
    }
    out
}

/// Every package reachable from `roots` in Cargo.lock.
fn lock_closure(lock: &str, roots: &[String]) -> Vec<String> {
    let mut deps: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for block in lock.split("[[package]]").skip(1) {
        let name = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
            .unwrap_or_default();
        let mut list = Vec::new();
        if let Some(at) = block.find("dependencies = [") {
            for item in block[at..].lines().skip(1) {
                let item = item.trim();
                if item.starts_with(']') {
                    break;
                }
                // "name" or "name version"
                let item = item.trim_matches(|c| c == '"' || c == ',');
                list.push(item.split(' ').next().unwrap_or(item).to_string());
            }
        }
        deps.entry(name).or_default().extend(list);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut stack: Vec<String> = roots.to_vec();
    while let Some(name) = stack.pop() {
        if seen.contains(&name) {
            continue;
        }
        stack.extend(deps.get(&name).cloned().unwrap_or_default());
        seen.push(name);
    }
    seen.sort();
    seen
}

#[test]
fn the_core_depends_on_nothing_that_reaches_the_kernel() {
    let manifest = fs::read_to_string(root().join("tend-core/Cargo.toml")).unwrap();
    let direct = toml_dependencies(&manifest, "[dependencies]");
    assert_eq!(direct, ["serde", "serde_json", "humantime"], "tend-core's dependencies changed: look again");
    let lock = fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let closure = lock_closure(&lock, &direct);
    assert!(closure.contains(&"serde_core".to_string()), "Cargo.lock not read: {closure:?}");
    let kernel =
        ["libc", "nix", "mio", "signal-hook", "rustix", "linux-raw-sys", "tokio", "caps", "landlock"];
    let bad: Vec<&String> = closure.iter().filter(|p| kernel.contains(&p.as_str())).collect();
    assert!(
        bad.is_empty(),
        "tend-core would reach the kernel through {bad:?} (its dependencies: {closure:?})"
    );
}

/// Files (not test code) of `dir` whose code mentions one of `words`.
fn files_using(dir: &Path, words: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in rust_files(dir) {
        if is_test_file(&f) {
            continue;
        }
        let text = fs::read_to_string(&f).unwrap();
        if text.lines().any(|line| words.iter().any(|w| contains_word(&code_of(line), w))) {
            found.push(rel(&f));
        }
    }
    found
}

#[test]
fn only_the_spawner_forks() {
    // The fork itself: `spawn` (and the raw clone3 it calls, in `sys`), and
    // the spawner thread of `spawn/vfork.rs` (clone3 with CLONE_VM and
    // CLONE_VFORK, for services without a sandbox). In `spawn/child.rs`, a
    // `private_pids` child (PID 1 of its namespace, already outside tend)
    // forks the service and stays as its reaper.
    assert_eq!(files_using(&src(), &["libc::fork", "libc::vfork"]), ["src/spawn/mod.rs"]);
    assert_eq!(
        files_using(&src(), &["SYS_clone", "SYS_clone3"]),
        ["src/spawn/child.rs", "src/spawn/mod.rs", "src/spawn/vfork.rs", "src/sys/mod.rs"]
    );
    // The one thread that forks is the spawner's, started in `spawn` only.
    let threads = files_using(&src(), &["std::thread::Builder", "thread::spawn"]);
    assert!(
        threads.iter().all(|f| !f.starts_with("src/spawn") || f == "src/spawn/vfork.rs"),
        "threads in spawn/: {threads:?}"
    );
    assert_eq!(files_using(&src(), &["sys::clone3"]), ["src/spawn/mod.rs"]);
    // Who asks for a fork: the loop's spawner, and `tend run` for its one child.
    assert_eq!(
        files_using(&src(), &["spawn::spawn"]),
        ["src/supervise/run.rs", "src/supervise/spawner.rs"],
        "only the spawner (and tend run) may fork"
    );
    assert!(files_using(&src(), &["std::process::Command", "Command::new"])
        .iter()
        .all(|f| !f.contains("supervise")));
}

#[test]
fn only_the_reaper_waits() {
    // One waitpid, `sys::wait_any_nohang`, called by tend's reaper and by
    // the init of a `private_pids` namespace (`spawn/child.rs`): a child of
    // tend, a process of its own, reaping inside that namespace only.
    assert_eq!(files_using(&src(), &["libc::waitpid", "libc::waitid", "libc::wait4"]), ["src/sys/mod.rs"]);
    assert_eq!(files_using(&src(), &["nix::sys::wait"]), Vec::<String>::new());
    assert_eq!(
        files_using(&src(), &["wait_any_nohang"]),
        ["src/spawn/child.rs", "src/supervise/reaper.rs", "src/sys/mod.rs"]
    );
    assert_eq!(
        files_using(&src(), &["reap_all"]),
        ["src/supervise/mod.rs", "src/supervise/reaper.rs", "src/supervise/run.rs"],
        "only the loops of `up` and `run` reap, through the reaper"
    );
}

/// The file-level import graph of a crate (`crate::`, `super::`, `self::`
/// paths, in `use` items and inline), as /work/shared/tools/rust-import-circles.py
/// builds it, and its circles.
fn import_circles(src: &Path) -> Vec<Vec<String>> {
    let files = rust_files(src);
    let module_of = |p: &Path| -> Vec<String> {
        let rel = p.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
            parts.pop();
        }
        parts
    };
    let mods: Vec<(Vec<String>, usize)> = files.iter().enumerate().map(|(i, f)| (module_of(f), i)).collect();
    let resolve = |path: &[String]| -> Option<usize> {
        (1..=path.len())
            .rev()
            .find_map(|n| mods.iter().find(|(m, _)| m.as_slice() == &path[..n]).map(|(_, i)| *i))
    };
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); files.len()];
    for (i, f) in files.iter().enumerate() {
        let me = module_of(f);
        let text: String = fs::read_to_string(f).unwrap().lines().map(code_of).collect::<Vec<_>>().join("\n");
        let mut paths: Vec<String> = Vec::new();
        // `use a::{b, c::d}` (one level of braces), and inline paths.
        for item in text.split("use ").skip(1) {
            let Some(end) = item.find(';') else { continue };
            let body = &item[..end];
            match (body.find("::{"), body.rfind('}')) {
                (Some(open), Some(close)) if close > open => {
                    let base = &body[..open];
                    for part in body[open + 3..close].split(',') {
                        let part = part.trim();
                        if !part.is_empty() {
                            paths.push(format!("{base}::{part}"));
                        }
                    }
                }
                _ => paths.push(body.trim().to_string()),
            }
        }
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("crate::") || word.starts_with("super::") || word.starts_with("self::") {
                paths.push(word.to_string());
            }
        }
        for path in paths {
            let segs: Vec<String> = path
                .split(" as ")
                .next()
                .unwrap()
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let Some(first) = segs.first() else { continue };
            let target: Vec<String> = match first.as_str() {
                "crate" => segs[1..].to_vec(),
                "super" | "self" => {
                    let mut base = me.clone();
                    let mut k = 0;
                    while k < segs.len() && (segs[k] == "super" || segs[k] == "self") {
                        if segs[k] == "super" {
                            base.pop();
                        }
                        k += 1;
                    }
                    base.extend(segs[k..].iter().cloned());
                    base
                }
                _ => continue,
            };
            if let Some(j) = resolve(&target) {
                if j != i && !edges[i].contains(&j) {
                    edges[i].push(j);
                }
            }
        }
    }
    // Strongly connected components of two files or more (Tarjan).
    struct Tarjan<'a> {
        edges: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on: Vec<bool>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn strong(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on[v] = true;
            for &w in &self.edges[v] {
                match self.index[w] {
                    None => {
                        self.strong(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(index) if self.on[w] => self.low[v] = self.low[v].min(index),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    self.out.push(comp);
                }
            }
        }
    }
    let n = files.len();
    let mut t = Tarjan {
        edges: &edges,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on: vec![false; n],
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.strong(v);
        }
    }
    t.out.into_iter().map(|comp| comp.into_iter().map(|i| rel(&files[i])).collect()).collect()
}

#[test]
fn no_import_circles() {
    for dir in [src(), core_src()] {
        let circles = import_circles(&dir);
        assert!(circles.is_empty(), "import circles in {}: {circles:?}", rel(&dir));
    }
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
