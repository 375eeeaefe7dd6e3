//! README "Editor support": `tend schema` is a valid draft 2020-12 JSON
//! Schema; every example unit in `units/` validates against it with a real
//! validator (check-jsonschema); and for every key of the loader's table,
//! nested ones too, the schema and `tend check` agree: the key's example
//! passes both, a value of the wrong kind fails both, at that key.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use tend::keys;

const VALIDATOR: &str = "check-jsonschema";

/// `tend schema` written to the test's dir.
fn schema_file(env: &Env) -> PathBuf {
    let out = ctl(env, &["schema"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let schema: Value = serde_json::from_str(&out.stdout).expect("tend schema prints JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let path = env.p("unit.schema.json");
    fs::write(&path, out.stdout).unwrap();
    path
}

/// check-jsonschema's JSON report on `files`: (exit code, errors as
/// (file name, JSON path, message)).
fn validate(schema: &Path, files: &[PathBuf]) -> (i32, Vec<(String, String, String)>) {
    let mut cmd = Command::new(VALIDATOR);
    cmd.args(["--output-format", "json", "--schemafile"]).arg(schema).args(files);
    let out = run_cmd(cmd, VALIDATOR);
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{VALIDATOR} did not print JSON ({e})\n{}", out.show()));
    let parse_errors = report["parse_errors"].as_array().map_or(0, Vec::len);
    assert_eq!(parse_errors, 0, "{}", out.show());
    let errors = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (field("filename"), field("path"), field("message"))
        })
        .collect();
    (out.code, errors)
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    if skip_unless_installed("the_schema_is_a_valid_draft_2020_12_schema", &[VALIDATOR]) {
        return;
    }
    let env = Env::new();
    let schema = schema_file(&env);
    let mut cmd = Command::new(VALIDATOR);
    cmd.arg("--check-metaschema").arg(&schema);
    let out = run_cmd(cmd, "check-jsonschema --check-metaschema");
    assert_eq!(out.code, 0, "{}", out.show());
}

#[test]
fn every_example_unit_validates() {
    if skip_unless_installed("every_example_unit_validates", &[VALIDATOR]) {
        return;
    }
    let env = Env::new();
    let schema = schema_file(&env);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("units");
    let mut units = Vec::new();
    for dir in [root.clone(), root.join("hardened")] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                units.push(path);
            }
        }
    }
    assert!(units.len() >= 6, "{units:?}");
    let (code, errors) = validate(&schema, &units);
    assert_eq!((code, errors), (0, vec![]), "{units:?}");
}

/// One folder per sample (each unit is `web.yaml`), with the `web.env` the
/// env_file example names.
fn sample_dirs(env: &Env, text: impl Fn(&keys::Sample) -> &str) -> Vec<(String, PathBuf)> {
    keys::samples()
        .iter()
        .enumerate()
        .map(|(i, sample)| {
            let dir = env.p(&format!("sample-{i}"));
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("web.env"), "A=1\n").unwrap();
            fs::write(dir.join("web.yaml"), text(sample)).unwrap();
            for (name, unit) in keys::SAMPLE_NEIGHBOURS {
                fs::write(dir.join(format!("{name}.yaml")), unit).unwrap();
            }
            (sample.path.clone(), dir)
        })
        .collect()
}

fn tend_check(dir: &Path) -> Out {
    let mut cmd = Command::new(tend_bin());
    cmd.arg("check").arg(dir);
    run_cmd(cmd, &format!("tend check {}", dir.display()))
}

#[test]
fn schema_and_loader_accept_every_keys_example() {
    if skip_unless_installed("schema_and_loader_accept_every_keys_example", &[VALIDATOR]) {
        return;
    }
    let env = Env::new();
    let schema = schema_file(&env);
    let samples = sample_dirs(&env, |s| &s.valid);
    let files: Vec<PathBuf> = samples.iter().map(|(_, dir)| dir.join("web.yaml")).collect();
    let (code, errors) = validate(&schema, &files);
    assert_eq!((code, &errors), (0, &vec![]), "the schema refuses examples the loader takes");
    for (path, dir) in &samples {
        let out = tend_check(dir);
        assert_eq!(out.code, 0, "{path}: tend check refuses its example\n{}", out.show());
    }
}

#[test]
fn schema_and_loader_refuse_a_wrong_value_for_every_key() {
    if skip_unless_installed("schema_and_loader_refuse_a_wrong_value_for_every_key", &[VALIDATOR]) {
        return;
    }
    let env = Env::new();
    let schema = schema_file(&env);
    let samples = sample_dirs(&env, |s| &s.invalid);
    let files: Vec<PathBuf> = samples.iter().map(|(_, dir)| dir.join("web.yaml")).collect();
    let (code, errors) = validate(&schema, &files);
    assert_ne!(code, 0);
    for ((path, dir), file) in samples.iter().zip(&files) {
        // The schema: an error at the key (or below it).
        let top = path.split('.').next().unwrap();
        let at_key = errors.iter().any(|(f, at, _)| {
            Path::new(f) == file && (at == &format!("$.{top}") || at.starts_with(&format!("$.{top}.")))
        });
        assert!(at_key, "{path}: the schema accepts a mapping there, or reports elsewhere: {errors:#?}");
        // The loader: exit 2, the message names the key.
        let out = tend_check(dir);
        assert_eq!(out.code, 2, "{path}: tend check accepts a mapping there\n{}", out.show());
        assert!(out.stderr.contains(&format!(" {path}")), "{path}: not named\n{}", out.show());
    }
}

#[test]
fn common_mistakes_fail_the_schema_as_they_fail_tend_check() {
    if skip_unless_installed("common_mistakes_fail_the_schema_as_they_fail_tend_check", &[VALIDATOR]) {
        return;
    }
    let env = Env::new();
    let schema = schema_file(&env);
    let mistakes = [
        ("unknown key", "command: x\nenviroment: {A: 1}\n"),
        ("no command", "description: nothing to run\n"),
        ("duration without a unit", "command: x\nstop_timeout: 10\n"),
        ("bad duration unit", "command: x\nrestart_delay: 5 sec\n"),
        ("forking type", "command: x\ntype: forking\n"),
        ("watchdog on a simple service", "command: x\nwatchdog: 30s\n"),
        ("timeout on a notify service", "command: x\ntype: notify\ntimeout: 5m\n"),
        ("zero start_timeout", "command: x\nstart_timeout: 0s\n"),
        ("misspelt capability", "command: x\nsandbox: {capabilities: [NET_BIND_SERVIC]}\n"),
        ("unknown signal", "command: x\nstop_signal: SIGTERN\n"),
        ("two kinds of check", "command: x\nready_check: {tcp: 127.0.0.1:1, http: http://127.0.0.1/}\n"),
        ("check without a kind", "command: x\nhealth_check: {interval: 5s}\n"),
        ("rotation without a file", "command: x\nlog: {max_size: 10M}\n"),
        ("nice out of range", "command: x\nnice: 20\n"),
        ("unknown rlimit", "command: x\nrlimits: {nofiles: 10}\n"),
        ("relative sandbox path", "command: x\nsandbox: {read_only_paths: [srv]}\n"),
        ("unknown condition", "command: x\ndepends_on: {db: healthy}\n"),
        ("https check", "command: x\nhealth_check: {http: \"ftp://x/\"}\n"),
    ];
    let mut files = Vec::new();
    for (i, (what, text)) in mistakes.iter().enumerate() {
        let dir = env.p(&format!("mistake-{i}"));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("web.yaml"), text).unwrap();
        fs::write(dir.join("db.yaml"), "command: x\n").unwrap();
        let out = tend_check(&dir);
        assert_eq!(out.code, 2, "{what}: tend check accepts it\n{}", out.show());
        files.push(dir.join("web.yaml"));
    }
    let (_, errors) = validate(&schema, &files);
    for ((what, text), file) in mistakes.iter().zip(&files) {
        assert!(errors.iter().any(|(f, _, _)| Path::new(f) == file), "{what}: the schema accepts\n{text}");
    }
}
