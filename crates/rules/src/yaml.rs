//! A small YAML tree with source positions, built from yaml-rust2's event parser.

use std::collections::HashMap;
use yaml_rust2::parser::{Event as YEvent, MarkedEventReceiver, Parser};

use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in a file: line and column, both 1-based (column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        Pos { line: m.line().max(1), col: m.col() + 1 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

impl From<TScalarStyle> for Style {
    fn from(s: TScalarStyle) -> Self {
        match s {
            TScalarStyle::SingleQuoted => Style::SingleQuoted,
            TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
            TScalarStyle::Literal => Style::Literal,
            TScalarStyle::Folded => Style::Folded,
            _ => Style::Plain,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Kind {
    Scalar(String, Style),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s, Style::Plain) if s.is_empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) if !self.is_null() => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            Kind::Scalar(s, Style::Plain) => match s.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "on" => Some(true),
                "false" | "False" | "FALSE" | "no" | "No" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(..) if self.is_null() => "null",
            Kind::Scalar(..) => "scalar",
            Kind::Seq(_) => "sequence",
            Kind::Map(_) => "mapping",
        }
    }

    /// Convert to JSON (scalars typed as YAML 1.2 core schema would).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Scalar(s, style) => {
                if *style != Style::Plain {
                    return Value::String(s.clone());
                }
                if self.is_null() {
                    return Value::Null;
                }
                if let Some(b) = self.as_bool() {
                    return Value::Bool(b);
                }
                if let Ok(i) = s.parse::<i64>() {
                    return Value::from(i);
                }
                if let Ok(f) = s.parse::<f64>() {
                    if f.is_finite() {
                        if let Some(n) = serde_json::Number::from_f64(f) {
                            return Value::Number(n);
                        }
                    }
                }
                Value::String(s.clone())
            }
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => {
                let mut m = serde_json::Map::new();
                for (k, v) in entries {
                    let key = match &k.kind {
                        Kind::Scalar(s, _) => s.clone(),
                        _ => k.to_json().to_string(),
                    };
                    m.insert(key, v.to_json());
                }
                Value::Object(m)
            }
        }
    }
}

/// A YAML error with its position.
#[derive(Debug, Clone)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

const MAX_DEPTH: usize = 200;
const MAX_NODES: usize = 2_000_000;

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    /// Nesting below MAX_DEPTH is dropped; counts the open ignored containers.
    ignored_depth: usize,
    error: Option<YamlError>,
    /// Keys given twice in one mapping (readers would silently take one).
    dups: Vec<YamlError>,
}

fn count(n: &Node) -> usize {
    match &n.kind {
        Kind::Scalar(..) => 1,
        Kind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Kind::Map(e) => 1 + e.iter().map(|(k, v)| count(k) + count(v)).sum::<usize>(),
    }
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(YamlError { pos, message: message.into() });
        }
    }

    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: YEvent, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from_marker(&mark);
        if self.ignored_depth > 0 {
            match ev {
                YEvent::SequenceStart(..) | YEvent::MappingStart(..) => self.ignored_depth += 1,
                YEvent::SequenceEnd | YEvent::MappingEnd => self.ignored_depth -= 1,
                _ => {}
            }
            return;
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.fail(pos, "document too large");
            return;
        }
        match ev {
            YEvent::Scalar(value, style, anchor, _) => {
                self.push_node(Node { pos, kind: Kind::Scalar(value, style.into()) }, anchor)
            }
            YEvent::SequenceStart(anchor, _) | YEvent::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(pos, format!("nesting deeper than {MAX_DEPTH} levels"));
                    self.ignored_depth = 1;
                    return;
                }
                if matches!(ev, YEvent::SequenceStart(..)) {
                    self.stack.push(Frame::Seq(pos, anchor, Vec::new()));
                } else {
                    self.stack.push(Frame::Map(pos, anchor, Vec::new(), None));
                }
            }
            YEvent::SequenceEnd | YEvent::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(p, anchor, items)) => {
                    self.push_node(Node { pos: p, kind: Kind::Seq(items) }, anchor)
                }
                Some(Frame::Map(p, anchor, entries, _)) => {
                    let mut seen: HashMap<&str, Pos> = HashMap::new();
                    for (k, _) in &entries {
                        let Kind::Scalar(key, _) = &k.kind else { continue };
                        match seen.get(key.as_str()) {
                            Some(first) => self.dups.push(YamlError {
                                pos: k.pos,
                                message: format!("duplicate key {key:?} (first at line {})", first.line),
                            }),
                            None => {
                                seen.insert(key, k.pos);
                            }
                        }
                    }
                    // A block mapping's start marker is not where a reader looks:
                    // use its first key.
                    let p = entries.first().map(|(k, _)| k.pos).unwrap_or(p);
                    self.push_node(Node { pos: p, kind: Kind::Map(entries) }, anchor)
                }
                None => self.fail(pos, "unbalanced collection end"),
            },
            YEvent::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => {
                    self.nodes += count(&node);
                    if self.nodes > MAX_NODES {
                        self.fail(pos, "document too large (alias expansion)");
                        return;
                    }
                    self.push_node(node, 0)
                }
                None => self.fail(pos, "unknown alias"),
            },
            _ => {}
        }
    }
}

/// Parse a YAML text into its documents, with the keys duplicated in a
/// mapping (errors that do not stop the parse).
pub fn parse(text: &str) -> Result<(Vec<Node>, Vec<YamlError>), YamlError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // Drive the parser event by event: its own `load` recurses per nesting level.
    loop {
        match parser.next_token() {
            Ok((YEvent::StreamEnd, _)) => break,
            Ok((ev, mark)) => b.on_event(ev, mark),
            Err(e) => {
                return Err(YamlError { pos: Pos::from_marker(e.marker()), message: e.info().to_string() })
            }
        }
        if let Some(e) = b.error.take() {
            return Err(e);
        }
    }
    Ok((b.docs, b.dups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let (docs, _) = parse("- rule: a\n  condition: x = 1\n").unwrap();
        let Kind::Seq(items) = &docs[0].kind else { panic!() };
        let c = items[0].get("condition").unwrap();
        assert_eq!(c.pos, Pos { line: 2, col: 14 });
        assert_eq!(c.as_str(), Some("x = 1"));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("- rule: a\n  condition: [x\n").unwrap_err();
        assert!(e.pos.line >= 2, "{e:?}");
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let text = "[".repeat(10_000);
        assert!(parse(&text).is_err());
    }
}

#[cfg(test)]
mod deep_tests {
    #[test]
    fn deep_block_sequence() {
        let text = "- ".repeat(5000);
        let _ = super::parse(&text);
    }
}
