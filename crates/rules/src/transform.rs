//! Field transformers (`tolower(proc.name)`, `basename(fd.name)`, ...): a
//! function applied to a string field's value before it is compared or
//! printed, as Falco's filter language has them.

use crate::fields::{FieldType, Val};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    /// ASCII lower case (as Falco: byte by byte, other characters kept).
    ToLower,
    /// ASCII upper case.
    ToUpper,
    /// What follows the last `/` (the whole value when there is none; empty
    /// for a value ending in `/`).
    Basename,
    /// Base64 decoding (standard alphabet, padding optional); a value that is
    /// not base64 has no decoded value, so comparisons on it are false.
    B64,
    /// Length: bytes of a string, elements of a list (Falco's `len()`); a
    /// number, so it compares with numbers (`len(proc.args) > 1024`).
    Len,
}

impl Transform {
    pub const NAMES: &'static [&'static str] = &["tolower", "toupper", "basename", "b64", "len"];

    pub fn from_name(name: &str) -> Option<Transform> {
        Some(match name {
            "tolower" => Transform::ToLower,
            "toupper" => Transform::ToUpper,
            "basename" => Transform::Basename,
            "b64" => Transform::B64,
            "len" => Transform::Len,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Transform::ToLower => "tolower",
            Transform::ToUpper => "toupper",
            Transform::Basename => "basename",
            Transform::B64 => "b64",
            Transform::Len => "len",
        }
    }

    /// Whether the transformer applies to a value of type `ty` (all take
    /// strings or lists of strings).
    pub fn accepts(self, ty: FieldType) -> bool {
        ty == FieldType::String
    }

    /// The type of the transformed value.
    pub fn output(self) -> FieldType {
        match self {
            Transform::Len => FieldType::U64,
            _ => FieldType::String,
        }
    }

    /// The transformed value (lists element by element, but `len` of a list
    /// is its element count).
    pub fn apply<'a>(self, v: Val<'a>) -> Val<'a> {
        if self == Transform::Len {
            return match v {
                Val::Str(s) => Val::U64(s.len() as u64),
                Val::List(items) => Val::U64(items.len() as u64),
                _ => Val::None,
            };
        }
        match v {
            Val::Str(s) => match self.apply_str(&s) {
                Some(out) => Val::Str(Cow::Owned(out)),
                None => Val::None,
            },
            Val::List(items) => {
                Val::List(items.into_iter().map(|x| self.apply(x)).filter(|x| !x.is_none()).collect())
            }
            other => other,
        }
    }

    fn apply_str(self, s: &str) -> Option<String> {
        Some(match self {
            Transform::ToLower => s.to_ascii_lowercase(),
            Transform::ToUpper => s.to_ascii_uppercase(),
            Transform::Basename => s.rsplit('/').next().unwrap_or(s).to_string(),
            Transform::B64 => String::from_utf8_lossy(&b64_decode(s)?).into_owned(),
            Transform::Len => return None,
        })
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of `field` (of type `ty`) once transformed, innermost first; an
/// error names the first transformer that cannot take its input.
pub fn result_type(xf: &[Transform], field: &str, mut ty: FieldType) -> Result<FieldType, String> {
    for (i, t) in xf.iter().enumerate() {
        if !t.accepts(ty) {
            let inner = written(&xf[..i], field);
            return Err(format!("transformer {t}() needs a string field; {inner:?} is of type {ty}"));
        }
        ty = t.output();
    }
    Ok(ty)
}

/// Apply transformers innermost first.
pub fn apply_all<'a>(xf: &[Transform], mut v: Val<'a>) -> Val<'a> {
    for t in xf {
        v = t.apply(v);
    }
    v
}

/// `f` wrapped in the transformers, as written: `tolower(basename(f))`.
pub fn written(xf: &[Transform], field: &str) -> String {
    let mut s = field.to_string();
    for t in xf {
        s = format!("{t}({s})");
    }
    s
}

/// Standard base64, with or without `=` padding; `None` when not base64.
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: Transform, x: &str) -> Val<'static> {
        t.apply(Val::Str(Cow::Owned(x.to_string())))
    }

    #[test]
    fn transformers() {
        assert_eq!(s(Transform::ToLower, "BaSh-Ä"), Val::Str("bash-Ä".into()));
        assert_eq!(s(Transform::ToUpper, "sh"), Val::Str("SH".into()));
        assert_eq!(s(Transform::Basename, "/usr/bin/curl"), Val::Str("curl".into()));
        assert_eq!(s(Transform::Basename, "curl"), Val::Str("curl".into()));
        assert_eq!(s(Transform::Basename, "/tmp/"), Val::Str("".into()));
        assert_eq!(s(Transform::B64, "aGVsbG8="), Val::Str("hello".into()));
        assert_eq!(s(Transform::B64, "aGVsbG8"), Val::Str("hello".into()));
        assert_eq!(s(Transform::B64, "Y3VybCAtcyBodHRwOi8veA=="), Val::Str("curl -s http://x".into()));
        assert_eq!(s(Transform::B64, "not base64!"), Val::None);
        assert_eq!(s(Transform::B64, "abcde"), Val::None);
        assert_eq!(Transform::ToLower.apply(Val::U64(3)), Val::U64(3));
        let l = Val::List(vec![Val::Str("A".into()), Val::Str("B".into())]);
        assert_eq!(Transform::ToLower.apply(l), Val::List(vec![Val::Str("a".into()), Val::Str("b".into())]));
        assert_eq!(
            written(&[Transform::Basename, Transform::ToLower], "proc.exe"),
            "tolower(basename(proc.exe))"
        );
        assert_eq!(s(Transform::Len, "héllo"), Val::U64(6));
        assert_eq!(Transform::Len.apply(l_of(&["a", "b", "c"])), Val::U64(3));
        assert_eq!(Transform::Len.apply(Val::None), Val::None);
        assert_eq!(
            result_type(&[Transform::ToLower, Transform::Len], "f", FieldType::String),
            Ok(FieldType::U64)
        );
        assert_eq!(
            result_type(&[Transform::Len, Transform::ToLower], "fd.name", FieldType::String),
            Err("transformer tolower() needs a string field; \"len(fd.name)\" is of type u64".into())
        );
    }

    fn l_of(items: &[&str]) -> Val<'static> {
        Val::List(items.iter().map(|x| Val::Str(Cow::Owned(x.to_string()))).collect())
    }
}
