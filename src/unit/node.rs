//! YAML text → a tree of positioned nodes, the only place that talks to serde-saphyr.
//!
//! Why a tree instead of `#[derive(Deserialize)] struct UnitFile`: a derived
//! struct stops at its first error, while users should see every mistake of
//! every file in one run, each with the line and column of the key or value at
//! fault, plus did-you-mean hints. So serde-saphyr parses the text into this
//! loosely typed tree, every node wrapped in `serde_saphyr::Spanned` for its
//! position, and `load.rs` validates the tree by hand, collecting errors.
//!
//! Duplicate keys: serde-saphyr can reject them itself, but it would then stop
//! at the first one. We ask it to pass duplicates through
//! (`DuplicateKeyPolicy::PassThrough`) and [`duplicate_keys`] reports every one.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, MessageFormatter, Spanned, UserMessageFormatter};
use std::fmt;

/// Where a node starts: 1-based line and column (in characters), and its byte
/// range in the text when serde-saphyr knows it (used to recover the exact
/// spelling of plain scalars such as `1.50`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
    pub bytes: Option<(usize, usize)>,
}

/// One YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub pos: Pos,
    pub node: Node,
}

/// The YAML data model as serde-saphyr infers it (strict YAML 1.2 booleans;
/// integers with leading zeros such as `0027` stay strings).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Item>),
    /// Entries in document order, duplicates included (see module docs).
    Map(Vec<(Item, Item)>),
}

impl Node {
    /// What the user wrote, in words, for "expected X, got Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "nothing",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

impl Item {
    /// The text of a scalar as the user spelled it, for scalars that may be
    /// converted to strings (environment values, error messages). Falls back
    /// to a canonical rendering when the source slice is not a plain scalar
    /// (an alias, a tagged value) or unknown. `None` for lists and mappings.
    pub fn scalar_text(&self, src: &str) -> Option<String> {
        let canonical = match &self.node {
            Node::Str(s) => return Some(s.clone()),
            Node::Null => return Some(String::new()),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Seq(_) | Node::Map(_) => return None,
        };
        let raw = self
            .pos
            .bytes
            .and_then(|(start, len)| src.get(start..start.checked_add(len)?))
            .map(str::trim)
            .filter(|raw| {
                !raw.is_empty()
                    && !raw.starts_with(['*', '!', '&', '"', '\''])
                    && !raw.contains(['\n', '#', ',', ']', '}'])
            });
        Some(raw.map_or(canonical, str::to_owned))
    }
}

/// A YAML-level failure: syntax error, alias to nothing, resource budget...
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parse one YAML document into a tree. An empty document gives `Node::Null`.
pub(crate) fn parse_yaml(text: &str) -> Result<Item, YamlError> {
    let options = serde_saphyr::options! {
        // `yes`/`on` are strings, so `critical: yes` is reported, not guessed.
        strict_booleans: true,
        // `umask: 0027` stays the string "0027" instead of the integer 27.
        leading_zero_numbers_as_strings: true,
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options::<Item>(text, options).map_err(|err| {
        let (line, column) = err.location().map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
        let message = UserMessageFormatter.format_message(&err).into_owned();
        YamlError { line, column, message }
    })
}

/// Every repeated key of every mapping in the tree: (first, repeated).
/// Keys compare by their scalar value, so `"a"` and `a` are the same key.
pub(crate) fn duplicate_keys(root: &Item) -> Vec<(&Item, &Item)> {
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(item) = stack.pop() {
        match &item.node {
            Node::Seq(items) => stack.extend(items.iter().rev()),
            Node::Map(entries) => {
                for (i, (key, _)) in entries.iter().enumerate() {
                    let scalar = !matches!(key.node, Node::Seq(_) | Node::Map(_));
                    if let Some((first, _)) =
                        entries[..i].iter().find(|(earlier, _)| scalar && earlier.node == key.node)
                    {
                        found.push((first, key));
                    }
                }
                for (key, value) in entries.iter().rev() {
                    stack.push(value);
                    stack.push(key);
                }
            }
            _ => {}
        }
    }
    found.sort_by_key(|(_, dup)| (dup.pos.line, dup.pos.column));
    found
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Item, D::Error> {
        let spanned = Spanned::<Node>::deserialize(d)?;
        // `referenced` is where the node is used: for an alias, the `*name`
        // token, which is where a user looks for the mistake.
        let loc = spanned.referenced;
        let span = loc.span();
        let bytes = match (span.byte_offset(), span.byte_len()) {
            (Some(start), Some(len)) => usize::try_from(start).ok().zip(usize::try_from(len).ok()),
            _ => None,
        };
        Ok(Item {
            pos: Pos { line: loc.line() as usize, column: loc.column() as usize, bytes },
            node: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        i128::try_from(v).map(Node::Int).map_err(|_| E::custom("integer is too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
        // `!!binary` values: keep them as text when they are UTF-8.
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(text: &str) -> Vec<(Item, Item)> {
        match parse_yaml(text).unwrap().node {
            Node::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn positions_of_keys_and_values() {
        let entries = map("# c\ncommand: [a, 'b']\nnice: 5\n");
        assert_eq!((entries[0].0.pos.line, entries[0].0.pos.column), (2, 1));
        assert_eq!((entries[0].1.pos.line, entries[0].1.pos.column), (2, 10));
        let Node::Seq(items) = &entries[0].1.node else { panic!() };
        assert_eq!((items[1].pos.line, items[1].pos.column), (2, 14));
        assert_eq!(entries[1].1.node, Node::Int(5));
    }

    #[test]
    fn scalar_inference() {
        let entries = map("a: yes\nb: true\nc: 0027\nd: 1.50\ne:\nf: \"1\"\n");
        let nodes: Vec<_> = entries.iter().map(|(_, v)| v.node.clone()).collect();
        assert_eq!(nodes[0], Node::Str("yes".into()));
        assert_eq!(nodes[1], Node::Bool(true));
        assert_eq!(nodes[2], Node::Str("0027".into()));
        assert_eq!(nodes[3], Node::Float(1.5));
        assert_eq!(nodes[4], Node::Null);
        assert_eq!(nodes[5], Node::Str("1".into()));
    }

    #[test]
    fn scalar_text_keeps_spelling() {
        let text = "a: 1.50\nb: True\nc: &x 0x10\nd: *x\ne: [1.0]\n";
        let entries = map(text);
        let texts: Vec<_> = entries.iter().map(|(_, v)| v.scalar_text(text)).collect();
        assert_eq!(texts[0].as_deref(), Some("1.50"));
        assert_eq!(texts[1].as_deref(), Some("True"));
        assert_eq!(texts[3].as_deref(), Some("16"));
        assert_eq!(texts[4], None);
    }

    #[test]
    fn duplicates_are_all_found() {
        let root = parse_yaml("a: 1\nb: {x: 1, x: 2}\na: 3\n").unwrap();
        let dups = duplicate_keys(&root);
        let at: Vec<_> =
            dups.iter().map(|(first, dup)| (first.pos.line, dup.pos.line, dup.pos.column)).collect();
        assert_eq!(at, vec![(2, 2, 11), (1, 3, 1)]);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_yaml("a: [1, 2\n").unwrap_err();
        assert_eq!((err.line, err.column), (1, 4));
        assert_eq!(err.message, "unclosed bracket '['");
    }
}
