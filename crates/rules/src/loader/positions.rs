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
        let src = self.files.get(piece.file).map(|f| f.text_from_line(piece.pos.line)).unwrap_or("");
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
/// folding only changes whitespace), so count them. `src` starts at the
/// scalar's line (found through the line index: no rescan per error).
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
    let first_line = pos.line.max(1);
    for (i, line) in src.split('\n').enumerate().take(100_000) {
        let li = first_line - 1 + i;
        let first = i == 0;
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

    /// `src` from 1-based line `line` on.
    fn at(src: &str, line: usize) -> &str {
        let start: usize = src.split_inclusive('\n').take(line - 1).map(str::len).sum();
        &src[start..]
    }

    #[test]
    fn locate_maps_offsets() {
        let src = "- rule: x\n  condition: evt.type = open and proc.nam = x\n";
        let value = "evt.type = open and proc.nam = x";
        let off = value.find("proc.nam").unwrap();
        assert_eq!(
            locate(at(src, 2), Pos { line: 2, col: 14 }, Style::Plain, value, off),
            Pos { line: 2, col: 34 }
        );
        let src = "- rule: x\n  condition: >\n    evt.type = open\n    and proc.nam = x\n";
        let value = "evt.type = open and proc.nam = x\n";
        let off = value.find("proc.nam").unwrap();
        assert_eq!(
            locate(at(src, 3), Pos { line: 3, col: 5 }, Style::Folded, value, off),
            Pos { line: 4, col: 9 }
        );
        let src = "  condition: \"a = 1 and b\"\n";
        assert_eq!(
            locate(at(src, 1), Pos { line: 1, col: 14 }, Style::DoubleQuoted, "a = 1 and b", 10),
            Pos { line: 1, col: 25 }
        );
    }
}
