//! Output templates: `%field` and `%field[arg]` placeholders.

use crate::fields::{self, Arg, EvalCtx, FieldDef};
use model::Event;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Field { key: String, def: &'static FieldDef, arg: Arg },
}

/// A compiled output template.
#[derive(Debug, Clone, Default)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// An error in a template: byte offset and reason.
pub(crate) struct TemplateErr {
    pub off: usize,
    pub msg: String,
    pub unknown_field: Option<String>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, Vec<TemplateErr>> {
        let b = text.as_bytes();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut errs = Vec::new();
        let mut i = 0;
        let mut lit_start = 0;
        while i < b.len() {
            if b[i] != b'%' {
                i += 1;
                continue;
            }
            let start = i;
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.') {
                j += 1;
            }
            // A trailing dot is punctuation, not part of the name.
            while j > i + 1 && b[j - 1] == b'.' {
                j -= 1;
            }
            if j == i + 1 {
                i += 1;
                continue;
            }
            let name = &text[i + 1..j];
            let mut arg = None;
            if j < b.len() && b[j] == b'[' {
                if let Some(close) = text[j..].find(']') {
                    arg = Some(&text[j + 1..j + close]);
                    j += close + 1;
                }
            }
            lit.push_str(&text[lit_start..start]);
            match fields::lookup(name, arg) {
                Ok((def, a)) => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field { key: text[i + 1..j].to_string(), def, arg: a });
                }
                Err(msg) => {
                    let unknown = msg.starts_with("unknown field").then(|| name.to_string());
                    errs.push(TemplateErr { off: start, msg, unknown_field: unknown });
                }
            }
            i = j;
            lit_start = j;
        }
        lit.push_str(&text[lit_start..]);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        if errs.is_empty() {
            Ok(Template { parts })
        } else {
            Err(errs)
        }
    }

    /// The names of the fields the template prints.
    pub fn fields(&self, out: &mut Vec<&'static str>) {
        for p in &self.parts {
            if let Part::Field { def, .. } = p {
                out.push(def.name);
            }
        }
    }

    pub fn render(&self, ev: &Event, ctx: &EvalCtx<'_>) -> (String, BTreeMap<String, serde_json::Value>) {
        let mut out = String::new();
        let mut fields = BTreeMap::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Field { key, def, arg } => {
                    let v = (def.extract)(ev, ctx, arg);
                    v.render(&mut out);
                    fields.entry(key.clone()).or_insert_with(|| v.to_json());
                }
            }
        }
        (out, fields)
    }
}
