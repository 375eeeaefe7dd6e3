//! `tend schema`: a JSON Schema (draft 2020-12) of the unit file format,
//! generated from the loader's table of keys (`unit::keys`), for editors
//! (yaml-language-server, VS Code) and CI linters.
//!
//! The schema is meant to accept every unit the loader accepts and to
//! reject what it can see is wrong without the host: unknown keys, wrong
//! kinds of values, out-of-range numbers, unknown choices, signals and
//! capabilities, malformed durations and sizes, and keys used with the
//! wrong `type`. What needs the host (does the user exist, is there a
//! cycle in depends_on) stays with `tend check`. Two documented gaps, both
//! on the strict side: a number written as a quoted string (`nice: "5"`)
//! and an unquoted octal umask (`umask: 0o027`, an integer to JSON, where
//! `27` would be a mistake) are taken by the loader, not by the schema.

use crate::unit::keys::{self, Key, KeyDefault, Value};
use crate::unit::node::{parse_yaml, Item, Node};
use crate::unit::values::{capability_names, format_duration, signal_name, signal_names};
use crate::unit::Resource;
use serde_json::{json, Map, Value as Json};

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// `10s`, `1m30s`, `1.5s`, `250 ms`, or all zeros (see values::parse_duration).
const DURATION: &str = r"^\s*(0+|(([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*(ns|us|ms|s|m|h|d)\s*)+)$";
/// A duration that is zero however it is spelled (`0`, `0s`, `0.0m0s`).
const ZERO_DURATION: &str = r"^\s*(0*(\.0*)?\s*(ns|us|ms|s|m|h|d)?\s*)+$";
/// `4096`, `512K`, `64M`, `1GiB`, `2tb` (see values::parse_size).
const SIZE: &str = r"^\s*[0-9]+\s*([kKmMgGtTpPeE]([iI]?[bB])?|[bB])?\s*$";

/// The whole schema.
pub fn schema() -> Json {
    let mut root = object(keys::UNIT, &[]);
    let root_map = root.as_object_mut().expect("object() gives an object");
    root_map.insert("required".into(), json!(["command"]));
    // Keys only some types may have: with one of them, `type` must allow it
    // (and be written, unless the default type is one of them).
    let default_type = match keys::SERVICE_TYPE.default {
        KeyDefault::Word(word) => word,
        _ => "simple",
    };
    let rules: Vec<Json> = keys::UNIT
        .iter()
        .filter(|k| !k.types.is_empty())
        .map(|k| {
            let mut then = json!({"properties": {"type": {"enum": k.types}}});
            if !k.types.contains(&default_type) {
                then["required"] = json!(["type"]);
            }
            json!({"if": {"required": [k.name]}, "then": then})
        })
        .collect();
    let mut out = Map::new();
    out.insert("$schema".into(), json!(DRAFT));
    out.insert("title".into(), json!("tend unit file"));
    out.insert(
        "description".into(),
        json!("One service supervised by tend: units/NAME.yaml. See tend.unit(5); `tend check` validates what a schema cannot (users, groups, files, dependencies)."),
    );
    out.extend(std::mem::take(root_map));
    out.insert("allOf".into(), Json::Array(rules));
    out.insert("$defs".into(), definitions());
    Json::Object(out)
}

pub fn print() -> i32 {
    let text = serde_json::to_string_pretty(&schema()).expect("a JSON value serializes");
    match super::out::emit(&format!("{text}\n")) {
        Ok(()) => crate::exit::OK,
        Err(status) => status,
    }
}

/// A mapping with exactly `keys`; `one_of`: exactly one of those is set.
fn object(keys: &'static [Key], one_of: &[&str]) -> Json {
    let properties: Map<String, Json> = keys.iter().map(|k| (k.name.to_owned(), key(k))).collect();
    let mut out = json!({"type": "object", "properties": properties, "additionalProperties": false});
    let needs: Map<String, Json> = keys
        .iter()
        .filter(|k| !k.requires.is_empty())
        .map(|k| (k.name.to_owned(), json!(k.requires)))
        .collect();
    if !needs.is_empty() {
        out["dependentRequired"] = Json::Object(needs);
    }
    if !one_of.is_empty() {
        out["oneOf"] = one_of.iter().map(|k| json!({"required": [k]})).collect();
    }
    out
}

/// One key: its value's schema, with description, default and example.
fn key(key: &Key) -> Json {
    let mut out = value(&key.value);
    if key.nullable {
        out = json!({"anyOf": [{"type": "null"}, out]});
    }
    let null = if key.nullable { "null, or " } else { "" };
    let mut text = format!("{} Value: {null}{}.", key.doc, key.value.describe());
    if let Some(default) = key.default.describe() {
        text.push_str(&format!(" Default: {default}."));
    }
    if !key.types.is_empty() {
        text.push_str(&format!(" Only with type: {}.", key.types.join(" or ")));
    }
    out["description"] = json!(text);
    if let Some(default) = default(&key.default) {
        out["default"] = default;
    }
    if let Ok(example) = parse_yaml(key.example) {
        out["examples"] = json!([yaml_to_json(&example, key.example)]);
    }
    out
}

/// A YAML tree as JSON. The examples are read by the loader's own YAML
/// reader, so each reads as it would in a unit file (`0027` a string), and
/// the binary holds one copy of the YAML deserialiser, not a second one for
/// `serde_json::Value` (0.04 MB; README, Install).
fn yaml_to_json(item: &Item, src: &str) -> Json {
    match &item.node {
        Node::Null => Json::Null,
        Node::Bool(b) => Json::Bool(*b),
        Node::Int(n) => match (i64::try_from(*n), u64::try_from(*n)) {
            (Ok(n), _) => json!(n),
            (_, Ok(n)) => json!(n),
            _ => Json::String(n.to_string()),
        },
        Node::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Node::Str(s) => Json::String(s.clone()),
        Node::Seq(items) => Json::Array(items.iter().map(|i| yaml_to_json(i, src)).collect()),
        Node::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.scalar_text(src).unwrap_or_default(), yaml_to_json(v, src)))
                .collect(),
        ),
    }
}

fn default(default: &KeyDefault) -> Option<Json> {
    Some(match default {
        KeyDefault::None | KeyDefault::Note(_) => return None,
        KeyDefault::Flag(b) => json!(b),
        KeyDefault::Integer(n) => json!(n),
        KeyDefault::Duration(d) => json!(format_duration(*d)),
        KeyDefault::Word(w) => json!(w),
        KeyDefault::Signal(n) => json!(signal_name(*n)),
        KeyDefault::Integers(list) => json!(list),
    })
}

/// Value schemas used by several keys, referred to as `#/$defs/NAME`.
fn definitions() -> Json {
    json!({
        "duration": {"anyOf": [
            {"type": "string", "pattern": DURATION},
            {"const": 0}
        ]},
        "positive_duration": {"type": "string", "pattern": DURATION, "not": {"pattern": ZERO_DURATION}},
        "command": {"anyOf": [
            {"type": "string", "pattern": r"\S"},
            {"type": "array", "minItems": 1, "items": {"type": ["string", "number", "boolean"]}}
        ]},
        "signal": signal(),
        "name_or_id": {"anyOf": [
            {"type": "string", "pattern": r"\S"},
            {"type": "integer", "minimum": 0, "maximum": u32::MAX}
        ]},
        "limit": limit(false),
        "size_limit": limit(true),
    })
}

fn reference(name: &str) -> Json {
    json!({"$ref": format!("#/$defs/{name}")})
}

/// The schema of a kind of value.
fn value(value: &Value) -> Json {
    match value {
        Value::Text => json!({"type": "string"}),
        Value::Flag => json!({"type": "boolean"}),
        Value::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Value::Duration { positive: false } => reference("duration"),
        Value::Duration { positive: true } => reference("positive_duration"),
        Value::Size { min } => json!({"anyOf": [
            {"type": "integer", "minimum": min},
            {"type": "string", "pattern": SIZE}
        ]}),
        Value::Command => reference("command"),
        Value::Path => json!({"type": "string", "minLength": 1}),
        Value::Paths => json!({"anyOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "items": {"type": "string", "minLength": 1}}
        ]}),
        Value::AbsolutePaths => json!({"type": "array", "items": {"type": "string", "pattern": "^/"}}),
        Value::Choice(words) => json!({"enum": words}),
        Value::Signal => reference("signal"),
        Value::NameOrId => reference("name_or_id"),
        Value::NamesOrIds => json!({"type": "array", "items": reference("name_or_id")}),
        Value::Umask => json!({"anyOf": [
            {"type": "string", "pattern": r"^\s*(0o)?[0-7]{1,4}\s*$"},
            {"const": 0}
        ]}),
        Value::ExitCodes => json!({"type": "array", "items": {
            "type": "integer", "minimum": keys::EXIT_STATUS_MIN, "maximum": keys::EXIT_STATUS_MAX
        }}),
        Value::Environment => json!({"anyOf": [
            {
                "type": "object",
                "propertyNames": {"pattern": "^[^=]+$"},
                "additionalProperties": {"type": ["string", "number", "boolean"]}
            },
            {"type": "array", "items": {"type": "string", "pattern": "^[^=]+="}}
        ]}),
        Value::Rlimits => rlimits(),
        Value::DependsOn { conditions } => json!({"anyOf": [
            {"type": "array", "uniqueItems": true, "items": {"type": ["string", "integer"]}},
            {"type": "object", "additionalProperties": {"enum": conditions}}
        ]}),
        Value::Capabilities => {
            let bare = capability_names();
            let names: Vec<String> = bare.iter().flat_map(|c| [c.clone(), format!("CAP_{c}")]).collect();
            let words: Vec<&str> = bare.iter().map(String::as_str).collect();
            json!({"type": "array", "items": {"anyOf": [
                {"enum": names},
                {"type": "string", "pattern": format!(r"^\s*({})?({})\s*$", any_case("CAP_"), alternatives(&words))}
            ]}})
        }
        Value::Hostname { max_len } => json!({
            "type": "string", "minLength": 1, "maxLength": max_len, "pattern": "^[A-Za-z0-9.-]+$"
        }),
        Value::Cores { max } => json!({"anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": max},
            {"type": "string", "pattern": r"^\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*$"}
        ]}),
        Value::TcpAddress => json!({"type": "string", "pattern": r"^\s*(\[[^\]]+\]|[^:\s\[\]]+):[0-9]+\s*$"}),
        Value::HttpUrl => json!({"type": "string", "pattern": r"^\s*[hH][tT][tT][pP]://[^/?#@\s]+"}),
        Value::Instances { max } => json!({"anyOf": [
            {"type": "integer", "minimum": 1, "maximum": max},
            {"type": "array", "minItems": 1, "uniqueItems": true, "items": {
                "type": "string",
                "pattern": "^[a-z0-9][a-z0-9_.-]*$",
                "maxLength": tend_core::pool::MAX_INSTANCE_NAME,
            }},
        ]}),
        Value::Table { keys, one_of } => object(keys, one_of),
    }
}

/// The names `SIGTERM`, `TERM` (listed, for completion), any case, numbers
/// and `SIGRTMIN+N` / `SIGRTMAX-N` (see values::parse_signal).
fn signal() -> Json {
    let with_sig = signal_names();
    let bare: Vec<String> = with_sig.iter().map(|n| n.trim_start_matches("SIG").to_owned()).collect();
    let names: Vec<&str> = bare.iter().map(String::as_str).filter(|n| !n.starts_with("RT")).collect();
    let pattern = format!(
        r"^\s*([0-9]+|({})?({}|{}(\+[0-9]+)?|{}(-[0-9]+)?))\s*$",
        any_case("SIG"),
        alternatives(&names),
        any_case("RTMIN"),
        any_case("RTMAX")
    );
    let listed: Vec<&String> = with_sig.iter().chain(&bare).collect();
    json!({"anyOf": [
        {"enum": listed},
        {"type": "string", "pattern": pattern},
        {"type": "integer", "minimum": 1, "maximum": 64}
    ]})
}

/// Resource names as properties (for completion), other spellings
/// (`NOFILE`, `RLIMIT_NOFILE`) as pattern properties, as the loader takes
/// them.
fn rlimits() -> Json {
    let mut properties = Map::new();
    let mut patterns = Map::new();
    for resource in Resource::ALL {
        let name = resource.name();
        let limit = reference(if resource.is_size() { "size_limit" } else { "limit" });
        properties.insert(name.to_owned(), limit.clone());
        patterns.insert(format!("^({})?{}$", any_case("RLIMIT_"), any_case(name)), limit);
    }
    json!({
        "type": "object",
        "properties": properties,
        "patternProperties": patterns,
        "additionalProperties": false
    })
}

/// One rlimit: a number, unlimited (or infinity), a size for byte-sized
/// resources, or `{soft, hard}` of those.
fn limit(size: bool) -> Json {
    let mut scalar = vec![
        json!({"type": "integer", "minimum": 0}),
        json!({"type": "string", "pattern": format!(r"^\s*([0-9]+|{}|{})\s*$", any_case("unlimited"), any_case("infinity"))}),
    ];
    if size {
        scalar.push(json!({"type": "string", "pattern": SIZE}));
    }
    let pair = json!({
        "type": "object",
        "properties": {"soft": {"anyOf": scalar.clone()}, "hard": {"anyOf": scalar.clone()}},
        "required": ["soft", "hard"],
        "additionalProperties": false
    });
    scalar.push(pair);
    json!({"anyOf": scalar})
}

/// `abc_1` → `[aA][bB][cC]_1`: JSON Schema patterns (ECMA 262) have no
/// case-insensitive flag.
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else if c == '+' {
                r"\+".to_owned()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn alternatives(words: &[&str]) -> String {
    words.iter().map(|w| any_case(w)).collect::<Vec<_>>().join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_key_is_a_property_and_nothing_else_is() {
        let schema = schema();
        let properties = schema["properties"].as_object().unwrap();
        let names: Vec<&str> = properties.keys().map(String::as_str).collect();
        let mut table = keys::names(keys::UNIT);
        table.sort_unstable();
        assert_eq!(names, table);
        assert_eq!(schema["additionalProperties"], json!(false));
        let log: Vec<&String> = properties["log"]["properties"].as_object().unwrap().keys().collect();
        assert_eq!(log.len(), keys::LOG_KEYS.len());
    }

    #[test]
    fn defaults_descriptions_and_type_rules_come_from_the_table() {
        let schema = schema();
        let stop_timeout = &schema["properties"]["stop_timeout"];
        assert_eq!(stop_timeout["default"], json!("10s"));
        assert!(stop_timeout["description"].as_str().unwrap().contains("SIGKILL"), "{stop_timeout}");
        assert_eq!(schema["properties"]["stop_signal"]["default"], json!("SIGTERM"));
        let watchdog_rule = schema["allOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["if"]["required"] == json!(["watchdog"]))
            .expect("a rule for watchdog");
        assert_eq!(watchdog_rule["then"]["properties"]["type"]["enum"], json!(["notify"]));
        assert_eq!(watchdog_rule["then"]["required"], json!(["type"]));
    }

    #[test]
    fn any_case_matches_what_the_loader_takes() {
        assert_eq!(any_case("Rt+1"), r"[rR][tT]\+1");
    }
}
