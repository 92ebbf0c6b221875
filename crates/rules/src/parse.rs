//! Condition parser: text to an AST with byte offsets for error messages.

pub use crate::transform::Transform;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    PMatch,
    In,
    Intersects,
    Exists,
    Regex,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::PMatch => "pmatch",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::Exists => "exists",
            Op::Regex => "regex",
        }
    }

    pub fn from_word(w: &str) -> Option<Op> {
        Some(match w {
            "=" | "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "contains" => Op::Contains,
            "icontains" => Op::IContains,
            "bcontains" => Op::BContains,
            "startswith" => Op::StartsWith,
            "bstartswith" => Op::BStartsWith,
            "endswith" => Op::EndsWith,
            "glob" => Op::Glob,
            "iglob" => Op::IGlob,
            "pmatch" => Op::PMatch,
            "in" => Op::In,
            "intersects" => Op::Intersects,
            "exists" => Op::Exists,
            "regex" => Op::Regex,
            _ => return None,
        })
    }

    /// Operators whose value is a parenthesised list.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

/// A value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValTok {
    pub text: String,
    pub quoted: bool,
    pub off: usize,
}

/// A field as the right-hand side of a comparison: `val(proc.pname)`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub field: String,
    pub arg: Option<String>,
    pub off: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
    Macro {
        name: String,
        off: usize,
    },
    Cmp {
        field: String,
        arg: Option<String>,
        off: usize,
        op: Op,
        op_off: usize,
        values: Vec<ValTok>,
        /// `in list_name` without parentheses: the one value names a list.
        bare_list: bool,
        /// Transformers around the field, innermost first.
        xf: Vec<Transform>,
        /// `val(field)`: compare with another field's value, not a constant.
        rhs: Option<FieldRef>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub off: usize,
    pub message: String,
}

const MAX_DEPTH: usize = 100;

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

impl<'a> P<'a> {
    fn err<T>(&self, off: usize, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError { off, message: message.into() })
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eof(&mut self) -> bool {
        self.ws();
        self.i >= self.b.len()
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// The identifier-like word at the cursor (not consumed).
    fn word(&mut self) -> &'a str {
        self.ws();
        let start = self.i;
        let mut j = start;
        while j < self.b.len() && is_ident(self.b[j]) {
            j += 1;
        }
        &self.s[start..j]
    }

    fn keyword(&mut self, kw: &str) -> bool {
        let w = self.word();
        if w == kw {
            self.i += kw.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Ast, ParseError> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.pop().unwrap_or(Ast::And(Vec::new())) } else { Ast::Or(items) })
    }

    fn and(&mut self) -> Result<Ast, ParseError> {
        let mut items = vec![self.not()?];
        while self.keyword("and") {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 { items.pop().unwrap_or(Ast::And(Vec::new())) } else { Ast::And(items) })
    }

    fn not(&mut self) -> Result<Ast, ParseError> {
        if self.keyword("not") {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return self.err(self.i, "condition nested too deeply");
            }
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Ast::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Ast, ParseError> {
        self.ws();
        let start = self.i;
        match self.peek() {
            None => return self.err(start, "unexpected end of condition"),
            Some(b'(') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return self.err(start, "condition nested too deeply");
                }
                self.i += 1;
                let inner = self.or()?;
                if self.peek() != Some(b')') {
                    let at = self.i;
                    return self.err(at, "expected ')'");
                }
                self.i += 1;
                self.depth -= 1;
                return Ok(inner);
            }
            Some(_) => {}
        }
        let name = self.word();
        if name.is_empty() {
            let ch = self.s[start..].chars().next().unwrap_or(' ');
            return self.err(start, format!("unexpected {ch:?}"));
        }
        if matches!(name, "and" | "or") {
            return self.err(start, format!("unexpected '{name}'"));
        }
        self.i += name.len();
        let mut name = name;
        // Transformers: `tolower(basename(fd.name))`.
        let mut xf = Vec::new();
        while self.b.get(self.i) == Some(&b'(') {
            let Some(t) = Transform::from_name(name) else {
                let msg = if name == "val" {
                    "val(...) is only allowed on the right-hand side of a comparison".to_string()
                } else {
                    format!("unknown transformer {name:?}(...) (rampart has {})", Transform::NAMES.join(", "))
                };
                return self.err(start, msg);
            };
            xf.push(t);
            self.i += 1;
            self.ws();
            let at = self.i;
            name = self.word();
            if name.is_empty() {
                return self.err(at, format!("expected a field inside {t}(...)"));
            }
            self.i += name.len();
        }
        let arg = self.bracket_arg()?;
        for t in xf.iter().rev() {
            self.ws();
            if self.peek() != Some(b')') {
                let at = self.i;
                return self.err(at, format!("expected ')' to close {t}("));
            }
            self.i += 1;
        }
        xf.reverse();
        // An operator follows for a comparison; otherwise it is a macro.
        let save = self.i;
        self.ws();
        let op_off = self.i;
        let op = self.operator();
        let Some(op) = op else {
            if arg.is_some() || name.contains('.') || !xf.is_empty() {
                self.i = save;
                let at = op_off;
                if self.eof() {
                    return self.err(at, format!("expected an operator after field {name:?}"));
                }
                let w = self.word().to_string();
                let w = if w.is_empty() {
                    self.s[at..].chars().next().map(String::from).unwrap_or_default()
                } else {
                    w
                };
                return self.err(at, format!("expected an operator after field {name:?}, found {w:?}"));
            }
            self.i = save;
            return Ok(Ast::Macro { name: name.to_string(), off: start });
        };
        let mut bare_list = false;
        self.ws();
        if self.s[self.i..].starts_with("val(") {
            let at = self.i;
            if op.takes_list() || op == Op::Exists {
                return self.err(at, format!("val(...) cannot be used with '{}'", op.as_str()));
            }
            self.i += 4;
            self.ws();
            let foff = self.i;
            let field = self.word().to_string();
            if field.is_empty() {
                return self.err(foff, "expected a field inside val(...)");
            }
            self.i += field.len();
            let rarg = self.bracket_arg()?;
            self.ws();
            if self.peek() != Some(b')') {
                let at = self.i;
                return self.err(at, "expected ')' to close val(");
            }
            self.i += 1;
            let rhs = Some(FieldRef { field, arg: rarg, off: foff });
            return Ok(Ast::Cmp {
                field: name.to_string(),
                arg,
                off: start,
                op,
                op_off,
                values: Vec::new(),
                bare_list,
                xf,
                rhs,
            });
        }
        let values = if op == Op::Exists {
            Vec::new()
        } else if op.takes_list() {
            if self.peek() == Some(b'(') {
                self.list()?
            } else {
                if self.eof() || matches!(self.peek(), Some(b'"' | b'\'' | b')')) {
                    let at = self.i;
                    return self.err(at, format!("expected '(' and a list after '{}'", op.as_str()));
                }
                bare_list = true;
                vec![self.item(false)?]
            }
        } else {
            vec![self.value()?]
        };
        Ok(Ast::Cmp {
            field: name.to_string(),
            arg,
            off: start,
            op,
            op_off,
            values,
            bare_list,
            xf,
            rhs: None,
        })
    }

    /// A field's `[argument]`, if one follows.
    fn bracket_arg(&mut self) -> Result<Option<String>, ParseError> {
        if self.b.get(self.i) != Some(&b'[') {
            return Ok(None);
        }
        let open = self.i;
        let Some(close) = self.s[open..].find(']') else {
            return self.err(open, "expected ']'");
        };
        self.i = open + close + 1;
        Ok(Some(self.s[open + 1..open + close].to_string()))
    }

    fn operator(&mut self) -> Option<Op> {
        let rest = &self.b[self.i..];
        for sym in ["==", "!=", "<=", ">=", "=", "<", ">"] {
            if rest.starts_with(sym.as_bytes()) {
                self.i += sym.len();
                return Op::from_word(sym);
            }
        }
        let w = self.word();
        let op = Op::from_word(w)?;
        self.i += w.len();
        Some(op)
    }

    fn list(&mut self) -> Result<Vec<ValTok>, ParseError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b')') => {
                    self.i += 1;
                    return Ok(out);
                }
                None => return self.err(self.i, "expected ')' to close the list"),
                _ => {}
            }
            out.push(self.item(true)?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') => {}
                None => return self.err(self.i, "expected ')' to close the list"),
                Some(_) => {
                    let at = self.i;
                    return self.err(at, "expected ',' or ')' in list");
                }
            }
        }
    }

    fn value(&mut self) -> Result<ValTok, ParseError> {
        if self.eof() {
            return self.err(self.i, "expected a value");
        }
        if self.peek() == Some(b'(') {
            let at = self.i;
            return self.err(at, "a list is only allowed after in, intersects or pmatch");
        }
        self.item(false)
    }

    fn item(&mut self, in_list: bool) -> Result<ValTok, ParseError> {
        self.ws();
        let start = self.i;
        match self.b.get(self.i) {
            Some(&q @ (b'"' | b'\'')) => {
                let mut out = String::new();
                let mut chars = self.s[start + 1..].char_indices();
                while let Some((k, c)) = chars.next() {
                    if c == q as char {
                        self.i = start + 1 + k + 1;
                        return Ok(ValTok { text: out, quoted: true, off: start });
                    }
                    if c == '\\' {
                        match chars.next() {
                            Some((_, e @ ('"' | '\'' | '\\'))) => out.push(e),
                            Some((_, e)) => {
                                out.push('\\');
                                out.push(e);
                            }
                            None => break,
                        }
                    } else {
                        out.push(c);
                    }
                }
                self.err(start, "unterminated string")
            }
            _ => {
                let mut j = start;
                while j < self.b.len() {
                    let c = self.b[j];
                    if c.is_ascii_whitespace() || c == b'(' || c == b')' || (in_list && c == b',') {
                        break;
                    }
                    j += 1;
                }
                if j == start {
                    return self.err(start, "expected a value");
                }
                self.i = j;
                Ok(ValTok { text: self.s[start..j].to_string(), quoted: false, off: start })
            }
        }
    }
}

impl Ast {
    /// The names this condition uses as macros (each once, in order).
    pub fn macro_names(&self, out: &mut Vec<String>) {
        match self {
            Ast::And(v) | Ast::Or(v) => v.iter().for_each(|a| a.macro_names(out)),
            Ast::Not(a) => a.macro_names(out),
            Ast::Macro { name, .. } => {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
            Ast::Cmp { .. } => {}
        }
    }
}

/// A list item or exception value whose text is itself a quoted string of
/// the condition language (`'"10.0.0.0/8"'` in YAML): its unquoted, unescaped
/// value. Falco pastes list items into the condition text, where such quotes
/// delimit a string; `None` when the text is not exactly one quoted string.
pub fn unquote_item(text: &str) -> Option<String> {
    let t = text.trim();
    if !t.starts_with(['"', '\'']) {
        return None;
    }
    let mut p = P { s: t, b: t.as_bytes(), i: 0, depth: 0 };
    let v = p.item(false).ok()?;
    p.eof().then_some(v.text)
}

/// Parse a condition.
pub fn parse(text: &str) -> Result<Ast, ParseError> {
    let mut p = P { s: text, b: text.as_bytes(), i: 0, depth: 0 };
    if p.eof() {
        return p.err(0, "empty condition");
    }
    let ast = p.or()?;
    if !p.eof() {
        let at = p.i;
        let w = p.word();
        let w = if w.is_empty() {
            text[at..].chars().next().map(String::from).unwrap_or_default()
        } else {
            w.to_string()
        };
        return p.err(at, format!("unexpected {w:?}: expected 'and', 'or' or the end of the condition"));
    }
    Ok(ast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &Ast) -> (&str, Op, Vec<&str>) {
        match a {
            Ast::Cmp { field, op, values, .. } => {
                (field, *op, values.iter().map(|v| v.text.as_str()).collect())
            }
            _ => panic!("not a comparison: {a:?}"),
        }
    }

    #[test]
    fn precedence() {
        let a = parse("a or b and not c").unwrap();
        let Ast::Or(items) = a else { panic!() };
        assert!(matches!(&items[0], Ast::Macro { name, .. } if name == "a"));
        let Ast::And(and) = &items[1] else { panic!() };
        assert!(matches!(&and[1], Ast::Not(_)));
    }

    #[test]
    fn comparisons() {
        let a = parse("evt.type=execve and evt.dir=< and fd.typechar='f'").unwrap();
        let Ast::And(items) = a else { panic!() };
        assert_eq!(cmp(&items[0]), ("evt.type", Op::Eq, vec!["execve"]));
        assert_eq!(cmp(&items[1]), ("evt.dir", Op::Eq, vec!["<"]));
        assert_eq!(cmp(&items[2]), ("fd.typechar", Op::Eq, vec!["f"]));
        let a = parse("proc.name in (sh, bash, \"my shell\") ").unwrap();
        assert_eq!(cmp(&a), ("proc.name", Op::In, vec!["sh", "bash", "my shell"]));
        let a = parse("proc.aname[2] exists").unwrap();
        assert!(matches!(a, Ast::Cmp { arg: Some(ref x), op: Op::Exists, .. } if x == "2"));
        let a = parse("(proc.cmdline contains --x=1)").unwrap();
        assert_eq!(cmp(&a), ("proc.cmdline", Op::Contains, vec!["--x=1"]));
        let a = parse("proc.name in ()").unwrap();
        assert_eq!(cmp(&a), ("proc.name", Op::In, vec![]));
        let a = parse(r#"proc.cmdline regex "a\"b\d""#).unwrap();
        assert_eq!(cmp(&a), ("proc.cmdline", Op::Regex, vec![r#"a"b\d"#]));
    }

    #[test]
    fn quoted_items_are_unquoted() {
        assert_eq!(unquote_item("\"10.0.0.0/8\"").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(unquote_item(" 'sh -c uname -a' ").as_deref(), Some("sh -c uname -a"));
        assert_eq!(unquote_item(r#""a\"b""#).as_deref(), Some("a\"b"));
        assert_eq!(unquote_item("plain"), None);
        assert_eq!(unquote_item("\"a\" b"), None);
        assert_eq!(unquote_item("\"open"), None);
        assert_eq!(unquote_item("x\"y\""), None);
    }

    #[test]
    fn transformers_and_val() {
        let a = parse("tolower(basename( proc.exe )) = bash").unwrap();
        let Ast::Cmp { field, xf, values, .. } = &a else { panic!("{a:?}") };
        assert_eq!(field, "proc.exe");
        assert_eq!(xf, &[Transform::Basename, Transform::ToLower]);
        assert_eq!(values[0].text, "bash");
        let a = parse("proc.name != val(proc.pname) and b64(proc.aname[2]) exists").unwrap();
        let Ast::And(items) = a else { panic!() };
        let Ast::Cmp { field, op, rhs: Some(r), values, .. } = &items[0] else { panic!() };
        assert_eq!((field.as_str(), *op, r.field.as_str(), r.off), ("proc.name", Op::Ne, "proc.pname", 17));
        assert!(values.is_empty());
        let Ast::Cmp { arg, xf, .. } = &items[1] else { panic!() };
        assert_eq!((arg.as_deref(), xf.as_slice()), (Some("2"), &[Transform::B64][..]));
        let a = parse("proc.aname[1] = val(proc.aname[2])").unwrap();
        let Ast::Cmp { rhs: Some(r), .. } = &a else { panic!() };
        assert_eq!(r.arg.as_deref(), Some("2"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse("proc.name = ").unwrap_err().off, 12);
        assert_eq!(parse("proc.name foo bar").unwrap_err().off, 10);
        assert_eq!(parse("(a and b").unwrap_err().off, 8);
        assert_eq!(parse("a b").unwrap_err().off, 2);
        assert!(parse("").is_err());
        assert!(parse("proc.name in (a, b").is_err());
        assert!(parse("proc.name = 'abc").is_err());
        assert!(parse("lower(proc.name) = a").unwrap_err().message.contains("unknown transformer"));
        assert_eq!(parse("tolower(proc.name = a").unwrap_err().off, 18);
        assert!(parse("val(proc.name) = a").is_err());
        assert!(parse("proc.name in val(proc.pname)").is_err());
        assert!(parse("proc.name = val(proc.pname").is_err());
        assert!(parse(&"(".repeat(1000)).is_err());
        assert!(parse(&"not ".repeat(1000)).is_err());
    }
}
