//! Output templates: `%field` and `%field[arg]` placeholders, and fields in
//! transformers (`%tolower(proc.name)`).

use crate::fields::{self, Arg, EvalCtx, FieldDef};
use crate::transform::{self, Transform};
use model::Event;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Field { key: String, def: &'static FieldDef, arg: Arg, xf: Box<[Transform]> },
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
            // `%tolower(basename(proc.exe))`: transformers, then the field.
            let mut xf = Vec::new();
            let mut close = 0;
            loop {
                let mut k = i + 1;
                while k < b.len() && b[k].is_ascii_alphanumeric() {
                    k += 1;
                }
                match Transform::from_name(&text[i + 1..k]) {
                    Some(t) if b.get(k) == Some(&b'(') => {
                        xf.push(t);
                        close += 1;
                        // Continue as if the field started after the '('.
                        i = k;
                    }
                    _ => break,
                }
            }
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.') {
                j += 1;
            }
            // A trailing dot is punctuation, not part of the name.
            while j > i + 1 && b[j - 1] == b'.' {
                j -= 1;
            }
            if j == i + 1 {
                i = start + 1;
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
            let field_end = j;
            for _ in 0..close {
                if b.get(j) != Some(&b')') {
                    errs.push(TemplateErr {
                        off: j.min(b.len()),
                        msg: "expected ')' after the transformed field".into(),
                        unknown_field: None,
                    });
                    break;
                }
                j += 1;
            }
            xf.reverse();
            lit.push_str(&text[lit_start..start]);
            let checked = fields::lookup(name, arg)
                .and_then(|(def, a)| transform::result_type(&xf, name, def.ty).map(|_| (def, a)));
            match checked {
                Ok((def, a)) => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    let key = transform::written(&xf, &text[i + 1..field_end]);
                    parts.push(Part::Field { key, def, arg: a, xf: xf.into() });
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
                Part::Field { key, def, arg, xf } => {
                    let v = transform::apply_all(xf, (def.extract)(ev, ctx, arg));
                    v.render(&mut out);
                    fields.entry(key.clone()).or_insert_with(|| v.to_json());
                }
            }
        }
        (out, fields)
    }
}
