//! A small YAML tree with source positions, built from the events of
//! libyaml-safer (a safe port of libyaml: it reads what Falco's yaml-cpp
//! reads, e.g. a flow sequence closed at its key's column).

use libyaml_safer::{EventData, Mark, Parser, ScalarStyle};
use std::collections::HashMap;

/// A position in a file: line and column, both 1-based (column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_mark(m: &Mark) -> Pos {
        Pos { line: m.line as usize + 1, col: m.column as usize + 1 }
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

impl From<ScalarStyle> for Style {
    fn from(s: ScalarStyle) -> Self {
        match s {
            ScalarStyle::SingleQuoted => Style::SingleQuoted,
            ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
            ScalarStyle::Literal => Style::Literal,
            ScalarStyle::Folded => Style::Folded,
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

type Anchor = Option<String>;

enum Frame {
    Seq(Pos, Anchor, Vec<Node>),
    Map(Pos, Anchor, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder<'t> {
    text: &'t str,
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<String, Node>,
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

/// Where a block scalar's content starts: libyaml marks its `|` or `>`
/// indicator, but readers (and error positions inside the text) want the
/// first character of the content. `at` is the indicator's byte offset.
fn block_content_start(text: &str, at: usize, mark: Pos) -> Pos {
    let Some(rest) = text.get(at..) else { return mark };
    let Some(nl) = rest.find('\n') else { return mark };
    for (line, l) in (mark.line + 1..).zip(rest[nl + 1..].split('\n')) {
        let l = l.strip_suffix('\r').unwrap_or(l);
        if let Some(i) = l.find(|c: char| c != ' ') {
            return Pos { line, col: l[..i].chars().count() + 1 };
        }
    }
    mark
}

impl Builder<'_> {
    fn fail(&mut self, pos: Pos, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(YamlError { pos, message: message.into() });
        }
    }

    fn push_node(&mut self, node: Node, anchor: Anchor) {
        if let Some(anchor) = anchor {
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

impl Builder<'_> {
    fn on_event(&mut self, ev: EventData, mark: Mark) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from_mark(&mark);
        if self.ignored_depth > 0 {
            match ev {
                EventData::SequenceStart { .. } | EventData::MappingStart { .. } => self.ignored_depth += 1,
                EventData::SequenceEnd | EventData::MappingEnd => self.ignored_depth -= 1,
                _ => {}
            }
            return;
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.fail(pos, "document too large");
            return;
        }
        let is_seq = matches!(ev, EventData::SequenceStart { .. });
        match ev {
            EventData::Scalar { value, style, anchor, .. } => {
                let style = Style::from(style);
                let pos = match style {
                    // A BOM before the first byte is not in libyaml's offsets.
                    Style::Literal | Style::Folded => {
                        let bom = if self.text.starts_with('\u{feff}') { 3 } else { 0 };
                        block_content_start(self.text, mark.index as usize + bom, pos)
                    }
                    _ => pos,
                };
                self.push_node(Node { pos, kind: Kind::Scalar(value, style) }, anchor)
            }
            EventData::SequenceStart { anchor, .. } | EventData::MappingStart { anchor, .. } => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(pos, format!("nesting deeper than {MAX_DEPTH} levels"));
                    self.ignored_depth = 1;
                    return;
                }
                if is_seq {
                    self.stack.push(Frame::Seq(pos, anchor, Vec::new()));
                } else {
                    self.stack.push(Frame::Map(pos, anchor, Vec::new(), None));
                }
            }
            EventData::SequenceEnd | EventData::MappingEnd => match self.stack.pop() {
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
            EventData::Alias { anchor } => match self.anchors.get(&anchor).cloned() {
                Some(node) => {
                    self.nodes += count(&node);
                    if self.nodes > MAX_NODES {
                        self.fail(pos, "document too large (alias expansion)");
                        return;
                    }
                    self.push_node(node, None)
                }
                None => self.fail(pos, format!("unknown alias *{anchor}")),
            },
            _ => {}
        }
    }
}

/// Parse a YAML text into its documents, with the keys duplicated in a
/// mapping (errors that do not stop the parse). The text is held to
/// `limits` (nesting, alias expansion) in the same pass, before each event
/// is used. An error's message is complete (`invalid YAML: ...` for what is
/// not YAML).
pub fn parse(text: &str, limits: &yamlguard::Limits) -> Result<(Vec<Node>, Vec<YamlError>), YamlError> {
    let guard_error =
        |g: yamlguard::GuardError| YamlError { pos: Pos { line: g.line, col: g.col }, message: g.message };
    if let Some(bad) = yamlguard::unreadable_char(text) {
        return Err(guard_error(bad));
    }
    let mut b = Builder { text, ..Builder::default() };
    let mut guard = yamlguard::Guard::new(text.len(), *limits);
    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    // Event by event: the tree is built here with an explicit stack.
    let mut last = Mark::default();
    loop {
        let ev = yamlguard::next_event(&mut parser, text, last).map_err(guard_error)?;
        if ev.data == EventData::StreamEnd {
            break;
        }
        last = ev.start_mark;
        guard.observe(&ev).map_err(guard_error)?;
        b.on_event(ev.data, ev.start_mark);
        if let Some(mut e) = b.error.take() {
            e.message = format!("invalid YAML: {}", e.message);
            return Err(e);
        }
    }
    Ok((b.docs, b.dups))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Vec<Node>, Vec<YamlError>), YamlError> {
        super::parse(text, &yamlguard::Limits::default())
    }

    #[test]
    fn input_the_yaml_parser_panics_on_is_an_error_with_a_position() {
        let e = parse("- list: l\n  items: [a, !b, c]\n").unwrap_err();
        assert_eq!(e.pos.line, 2, "{e:?}");
        assert!(e.message.contains("the YAML parser cannot read what follows"), "{e:?}");
    }

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
    fn block_scalars_are_marked_at_their_content() {
        let (docs, _) = parse("- rule: a\n  condition: >\n\n    evt.type = open\n    and x\n").unwrap();
        let Kind::Seq(items) = &docs[0].kind else { panic!() };
        let c = items[0].get("condition").unwrap();
        assert_eq!(c.pos, Pos { line: 4, col: 5 });
        assert_eq!(c.as_str(), Some("\nevt.type = open and x\n"));
    }

    #[test]
    fn flow_sequence_may_close_at_the_key_column() {
        // Falco's own sandbox rules are written so (yaml-cpp and libyaml read it).
        let (docs, _) = parse("- list: l\n  items: [\n    \"a\",\n    b\n  ]\n").unwrap();
        let Kind::Seq(items) = &docs[0].kind else { panic!() };
        let Kind::Seq(l) = &items[0].get("items").unwrap().kind else { panic!() };
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].pos, Pos { line: 3, col: 5 });
    }

    #[test]
    fn aliases_copy_their_anchor() {
        let (docs, _) = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(docs[0].get("b").unwrap().to_json(), serde_json::json!([1, 2]));
        let e = parse("a: *nope\n");
        assert!(e.is_err());
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
        // The guard's depth limit refuses it before the builder's own.
        let e = super::parse(&text, &yamlguard::Limits::default()).unwrap_err();
        assert!(e.message.contains("nesting deeper than"), "{e:?}");
    }
}
