//! One pass over an event's `fd.name` for many rules at once.
//!
//! Most rules of a file event type start with a test on the path (`fd.name in
//! (...)`, `fd.name startswith /etc/`, `fd.filename in (...)`), and most paths
//! pass none of them. Each such test holds only when the path contains one of
//! its strings (see `Expr::path_fragments`). The type index puts the strings
//! of all its rules in one Aho-Corasick automaton: one scan of the path says
//! which rules can still match, and the others are skipped without testing
//! anything. Rules whose candidacy the scan allows are evaluated in full, so
//! the scan only ever skips rules that cannot match.

use crate::fields::{Arg, EvalCtx, FieldDef, Val};
use aho_corasick::AhoCorasick;
use model::Event;

/// At most this many candidates of one event type are screened (one bit each
/// in a [`Possible`]); later ones are always evaluated.
pub(crate) const MAX_SCREENED: usize = 256;

/// Candidates (by index in the type index) that may match.
pub(crate) type Possible = [u64; MAX_SCREENED / 64];

#[derive(Debug)]
pub(crate) struct PathScan {
    field: &'static FieldDef,
    arg: Arg,
    ac: AhoCorasick,
    /// For each pattern of `ac`, the candidates that need it.
    cands_of: Box<[Box<[u16]>]>,
}

impl PathScan {
    /// `needs[i]`: the strings candidate `i` needs in `fd.name` (`None`: the
    /// candidate is not screened). `None` when screening would not pay (fewer
    /// than two candidates screened) or the automaton cannot be built.
    pub(crate) fn new(needs: &[Option<Vec<String>>]) -> Option<PathScan> {
        let mut patterns: Vec<&str> = Vec::new();
        let mut cands_of: Vec<Vec<u16>> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut screened = 0;
        for (i, need) in needs.iter().enumerate().take(MAX_SCREENED) {
            let Some(strings) = need else { continue };
            screened += 1;
            for s in strings {
                let p = *index.entry(s.as_str()).or_insert_with(|| {
                    patterns.push(s.as_str());
                    cands_of.push(Vec::new());
                    patterns.len() - 1
                });
                if cands_of[p].last() != Some(&(i as u16)) {
                    cands_of[p].push(i as u16);
                }
            }
        }
        if screened < 2 {
            return None;
        }
        let ac = AhoCorasick::new(&patterns).ok()?;
        let (field, arg) = crate::fields::lookup("fd.name", None).ok()?;
        let cands_of = cands_of.into_iter().map(Vec::into_boxed_slice).collect();
        Some(PathScan { field, arg, ac, cands_of })
    }

    /// The candidates whose strings occur in the event's `fd.name` (none when
    /// it has no value).
    pub(crate) fn possible(&self, ev: &Event, ctx: &EvalCtx<'_>) -> Possible {
        let mut out = [0u64; MAX_SCREENED / 64];
        match (self.field.extract)(ev, ctx, &self.arg) {
            Val::Str(path) => self.mark(&path, &mut out),
            Val::List(items) => {
                for v in &items {
                    if let Val::Str(path) = v {
                        self.mark(path, &mut out);
                    }
                }
            }
            _ => {}
        }
        out
    }

    fn mark(&self, path: &str, out: &mut Possible) {
        // Overlapping matches can number the path's length times the
        // patterns ending at each byte: past a linear bound, give up and let
        // every candidate through (evaluating them is always correct).
        let mut budget = 64 + 4 * path.len();
        for m in self.ac.find_overlapping_iter(path) {
            if budget == 0 {
                *out = [u64::MAX; MAX_SCREENED / 64];
                return;
            }
            budget -= 1;
            for &c in self.cands_of[m.pattern().as_usize()].iter() {
                out[usize::from(c) / 64] |= 1 << (c % 64);
            }
        }
    }
}

/// Whether candidate `i` is in `p`.
#[inline]
pub(crate) fn allows(p: &Possible, i: usize) -> bool {
    p[i / 64] & (1 << (i % 64)) != 0
}
