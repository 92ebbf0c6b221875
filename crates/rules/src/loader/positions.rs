//! Error positions: a byte offset in a (possibly appended) condition or
//! output back to file:line:column in the YAML source.

use super::*;

impl RulesetBuilder {
    pub(super) fn locate(&self, t: &Text, off: usize) -> (usize, Pos, String) {
        let Some(piece) = t.pieces.iter().rev().find(|p| p.start <= off).or(t.pieces.first()) else {
            return (0, Pos::default(), String::new());
        };
        let value = &t.text[piece.start..piece.start + piece.len];
        let mut local = off.saturating_sub(piece.start).min(value.len());
        while !value.is_char_boundary(local) {
            local -= 1;
        }
        let excerpt: String = value[local..].chars().take(40).collect();
        let excerpt = excerpt.split('\n').next().unwrap_or("").trim_end().to_string();
        let src = self.files.get(piece.file).map(|f| f.text.as_str()).unwrap_or("");
        (piece.file, locate(src, piece.pos, piece.style, value, local), excerpt)
    }

    pub(super) fn cerr(&self, t: &Text, off: usize, msg: &str, ctx: &str) -> (usize, Diagnostic) {
        let (file, pos, excerpt) = self.locate(t, off);
        let message = if excerpt.is_empty() {
            format!("{msg} in {ctx}")
        } else {
            format!("{msg} in {ctx} (at {excerpt:?})")
        };
        self.diag(file, pos, message)
    }
}

/// Map a byte offset inside a scalar's value to its position in the file:
/// non-whitespace characters of the value appear in the source in order (YAML
/// folding only changes whitespace), so count them.
fn locate(src: &str, pos: Pos, style: Style, value: &str, local: usize) -> Pos {
    let nonws = |t: &str| t.chars().filter(|c| !c.is_whitespace()).count();
    let total = nonws(value);
    if total == 0 {
        return pos;
    }
    let k = nonws(&value[..local]);
    // Past the last character: point just after it.
    let (target, after) = if k >= total { (total - 1, true) } else { (k, false) };
    let skip = match style {
        Style::SingleQuoted | Style::DoubleQuoted => pos.col,
        _ => pos.col.saturating_sub(1),
    };
    let mut count = 0;
    // Block scalars (| and >) are marked where their content starts.
    for (li, line) in src.split('\n').enumerate().skip(pos.line.saturating_sub(1)).take(100_000) {
        let first = li + 1 == pos.line;
        for (c, ch) in line.chars().enumerate().skip(if first { skip } else { 0 }) {
            if ch.is_whitespace() {
                continue;
            }
            if count == target {
                return Pos { line: li + 1, col: c + 1 + usize::from(after) };
            }
            count += 1;
        }
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_maps_offsets() {
        let src = "- rule: x\n  condition: evt.type = open and proc.nam = x\n";
        let value = "evt.type = open and proc.nam = x";
        let off = value.find("proc.nam").unwrap();
        assert_eq!(locate(src, Pos { line: 2, col: 14 }, Style::Plain, value, off), Pos { line: 2, col: 34 });
        let src = "- rule: x\n  condition: >\n    evt.type = open\n    and proc.nam = x\n";
        let value = "evt.type = open and proc.nam = x\n";
        let off = value.find("proc.nam").unwrap();
        assert_eq!(locate(src, Pos { line: 3, col: 5 }, Style::Folded, value, off), Pos { line: 4, col: 9 });
        let src = "  condition: \"a = 1 and b\"\n";
        assert_eq!(
            locate(src, Pos { line: 1, col: 14 }, Style::DoubleQuoted, "a = 1 and b", 10),
            Pos { line: 1, col: 25 }
        );
    }
}
