//! Precompiled matchers: string sets, path prefix sets, globs, IP networks.

use std::collections::HashSet;
use std::net::IpAddr;

pub use model::hash::FxBuild;
pub type FxSet<T> = HashSet<T, FxBuild>;

/// The lengths of a set's strings, to reject most values without hashing
/// them: lengths under 256 by bit, any longer one by one flag.
#[derive(Debug, Clone, Default)]
pub struct Lengths {
    short: [u64; 4],
    long: bool,
}

impl Lengths {
    fn add(&mut self, len: usize) {
        match self.short.get_mut(len / 64) {
            Some(w) => *w |= 1 << (len % 64),
            None => self.long = true,
        }
    }

    #[inline]
    fn has(&self, len: usize) -> bool {
        match self.short.get(len / 64) {
            Some(w) => w & (1 << (len % 64)) != 0,
            None => self.long,
        }
    }
}

/// A set of strings: linear for a few, hashed for more.
#[derive(Debug, Clone)]
pub enum StrSet {
    Small(Box<[Box<str>]>),
    Hashed(FxSet<Box<str>>, Lengths),
}

impl StrSet {
    pub fn new(items: impl IntoIterator<Item = String>) -> Self {
        let mut v: Vec<Box<str>> = items.into_iter().map(String::into_boxed_str).collect();
        v.sort();
        v.dedup();
        if v.len() <= 6 {
            StrSet::Small(v.into_boxed_slice())
        } else {
            let mut lengths = Lengths::default();
            v.iter().for_each(|x| lengths.add(x.len()));
            StrSet::Hashed(v.into_iter().collect(), lengths)
        }
    }

    /// The strings of the set (in no particular order).
    pub fn items(&self) -> Vec<String> {
        match self {
            StrSet::Small(v) => v.iter().map(|x| x.to_string()).collect(),
            StrSet::Hashed(h, _) => h.iter().map(|x| x.to_string()).collect(),
        }
    }

    #[inline]
    pub fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(v) => v.iter().any(|x| &**x == s),
            StrSet::Hashed(h, lengths) => lengths.has(s.len()) && h.contains(s),
        }
    }
}

/// Haystacks up to this length are searched byte by byte (first byte, then
/// the rest), which beats setting up std's substring searcher per call for the
/// short values rules see (paths, names); longer ones use std's linear search,
/// so a hostile command line cannot make a search quadratic.
const SHORT_HAYSTACK: usize = 128;

/// `h.starts_with(n)`, comparing the first two bytes inline before memcmp.
#[inline]
fn starts_with(h: &[u8], n: &[u8]) -> bool {
    match n {
        [] => true,
        [a] => h.first() == Some(a),
        [a, b, ..] => h.len() >= n.len() && h[0] == *a && h[1] == *b && h.starts_with(n),
    }
}

/// `hay.contains(needle)`, fast for short haystacks.
#[inline]
pub fn contains(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some((&first, _)) = n.split_first() else { return true };
    if h.len() > SHORT_HAYSTACK {
        return hay.contains(needle);
    }
    if h.len() < n.len() {
        return false;
    }
    // Byte offsets: a UTF-8 needle only matches at character boundaries.
    h[..=h.len() - n.len()].iter().enumerate().any(|(i, &b)| b == first && starts_with(&h[i..], n))
}

/// Several string tests on one value, any of which may hold: what
/// `f = a or f in (b, c) or f startswith d or f endswith e or f contains g`
/// compiles to, so the value is extracted once and the tests share one pass.
#[derive(Debug, Clone, Default)]
pub struct LitSet {
    exact: Option<StrSet>,
    prefixes: Vec<Box<str>>,
    suffixes: Vec<Box<str>>,
    /// Substrings, indexed by their first byte (`first[b]` is 1 + the index in
    /// `by_first` of the needles starting with `b`, 0 for none).
    first: Option<Box<[u16; 256]>>,
    by_first: Vec<Vec<Box<str>>>,
    /// An empty substring: every value matches.
    any: bool,
}

impl LitSet {
    /// The exact strings, when the set tests nothing else (no prefixes,
    /// suffixes or substrings).
    pub fn exact_only(&self) -> Option<Vec<String>> {
        if !self.prefixes.is_empty() || !self.suffixes.is_empty() || !self.by_first.is_empty() || self.any {
            return None;
        }
        Some(self.exact.as_ref().map(StrSet::items).unwrap_or_default())
    }

    pub fn new(
        exact: Vec<String>,
        prefixes: Vec<String>,
        suffixes: Vec<String>,
        infixes: Vec<String>,
    ) -> LitSet {
        let mut set = LitSet {
            exact: (!exact.is_empty()).then(|| StrSet::new(exact)),
            prefixes: prefixes.into_iter().map(String::into_boxed_str).collect(),
            suffixes: suffixes.into_iter().map(String::into_boxed_str).collect(),
            ..LitSet::default()
        };
        let mut first = Box::new([0u16; 256]);
        for n in infixes {
            let Some(&b) = n.as_bytes().first() else {
                set.any = true;
                continue;
            };
            if first[usize::from(b)] == 0 {
                set.by_first.push(Vec::new());
                // At most 256 groups, one per byte value.
                first[usize::from(b)] = set.by_first.len() as u16;
            }
            let g = usize::from(first[usize::from(b)]) - 1;
            set.by_first[g].push(n.into_boxed_str());
        }
        if !set.by_first.is_empty() {
            set.first = Some(first);
        }
        set
    }

    /// What the set was built from, to merge it with more tests:
    /// (exact values, prefixes, suffixes, substrings).
    pub fn parts(&self) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
        let mut infixes: Vec<String> = self.by_first.iter().flatten().map(|x| x.to_string()).collect();
        if self.any {
            infixes.push(String::new());
        }
        (
            self.exact.as_ref().map(StrSet::items).unwrap_or_default(),
            self.prefixes.iter().map(|x| x.to_string()).collect(),
            self.suffixes.iter().map(|x| x.to_string()).collect(),
            infixes,
        )
    }

    #[inline]
    pub fn matches(&self, s: &str) -> bool {
        if self.any {
            return true;
        }
        if self.exact.as_ref().is_some_and(|e| e.contains(s)) {
            return true;
        }
        let h = s.as_bytes();
        // The first (last) byte is compared inline before calling memcmp: most
        // values fail there.
        if self.prefixes.iter().any(|p| starts_with(h, p.as_bytes())) {
            return true;
        }
        if let Some(&last) = h.last() {
            let ends = |p: &[u8]| p.last().is_none_or(|&l| l == last) && h.ends_with(p);
            if self.suffixes.iter().any(|p| ends(p.as_bytes())) {
                return true;
            }
        } else if self.suffixes.iter().any(|p| p.is_empty()) {
            return true;
        }
        let Some(first) = &self.first else { return false };
        if h.len() > SHORT_HAYSTACK {
            return self.by_first.iter().flatten().any(|n| s.contains(&**n));
        }
        h.iter().enumerate().any(|(i, &b)| {
            let g = first[usize::from(b)];
            g != 0 && self.by_first[usize::from(g) - 1].iter().any(|n| starts_with(&h[i..], n.as_bytes()))
        })
    }
}

/// Falco's `pmatch`: the value is one of the paths or below one of them.
#[derive(Debug, Clone)]
pub struct PrefixSet {
    set: FxSet<Box<str>>,
    lengths: Lengths,
    root: bool,
}

impl PrefixSet {
    pub fn new(items: impl IntoIterator<Item = String>) -> Self {
        let mut set = FxSet::default();
        let mut lengths = Lengths::default();
        let mut root = false;
        for i in items {
            let t = i.trim_end_matches('/');
            if t.is_empty() {
                if i.starts_with('/') {
                    root = true;
                }
                continue;
            }
            lengths.add(t.len());
            set.insert(t.into());
        }
        PrefixSet { set, lengths, root }
    }

    /// The paths (without their trailing `/`), each a substring of every
    /// value that matches; `None` when `/` is one of them (every absolute
    /// path matches).
    pub fn paths(&self) -> Option<Vec<String>> {
        (!self.root).then(|| self.set.iter().map(|x| x.to_string()).collect())
    }

    #[inline]
    fn contains(&self, v: &str) -> bool {
        self.lengths.has(v.len()) && self.set.contains(v)
    }

    pub fn matches(&self, v: &str) -> bool {
        if self.root && v.starts_with('/') {
            return true;
        }
        let v = v.trim_end_matches('/');
        if self.contains(v) {
            return true;
        }
        let mut end = v.len();
        while let Some(i) = v[..end].rfind('/') {
            if i > 0 && self.contains(&v[..i]) {
                return true;
            }
            end = i;
        }
        false
    }
}

#[derive(Debug, Clone, PartialEq)]
enum G {
    Lit(char),
    Any,
    Star,
    Class(Vec<(char, char)>, bool),
}

/// A shell glob (`*` matches any characters, `/` included; `?` one character;
/// `[a-z]`, `[!x]` classes; `\` escapes).
///
/// Compiled to an anchored regex: its matching is linear in the path for a
/// given pattern, where star backtracking is O(path x pattern) (a hostile
/// path on the live event path would stall the agent).
#[derive(Debug, Clone)]
pub struct Glob {
    re: regex::Regex,
    fold: bool,
}

/// Memory the lazy DFA of one glob may use: a pattern of many stars
/// (`*a*a*...`) needs one DFA state per star, and a cache too small for
/// them would make the regex fall back to its slower engine.
const GLOB_DFA_LIMIT: usize = 32 << 20;

impl Glob {
    pub fn new(pattern: &str, fold: bool) -> Result<Glob, String> {
        let toks = Self::tokens(pattern, fold)?;
        let mut re = String::from(r"\A");
        for t in &toks {
            match t {
                G::Lit(c) => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
                G::Any => re.push_str("(?s:.)"),
                G::Star => re.push_str("(?s:.*)"),
                G::Class(ranges, neg) => {
                    re.push_str(if *neg { "[^" } else { "[" });
                    for &(a, b) in ranges {
                        // Hex escapes: no class character can be read as syntax.
                        re.push_str(&format!(r"\x{{{:x}}}-\x{{{:x}}}", a as u32, b as u32));
                    }
                    re.push(']');
                }
            }
        }
        re.push_str(r"\z");
        let re = regex::RegexBuilder::new(&re)
            .dfa_size_limit(GLOB_DFA_LIMIT)
            .build()
            .map_err(|e| format!("glob pattern cannot be compiled: {e}"))?;
        Ok(Glob { re, fold })
    }

    fn tokens(pattern: &str, fold: bool) -> Result<Vec<G>, String> {
        let pat: Vec<char> =
            if fold { pattern.to_lowercase().chars().collect() } else { pattern.chars().collect() };
        let mut toks = Vec::new();
        let mut i = 0;
        while i < pat.len() {
            let c = pat[i];
            match c {
                '*' => {
                    if toks.last() != Some(&G::Star) {
                        toks.push(G::Star);
                    }
                }
                '?' => toks.push(G::Any),
                '\\' => {
                    i += 1;
                    match pat.get(i) {
                        Some(&e) => toks.push(G::Lit(e)),
                        None => return Err("glob pattern ends with '\\'".into()),
                    }
                }
                '[' => {
                    let mut j = i + 1;
                    let neg = matches!(pat.get(j), Some('!' | '^'));
                    if neg {
                        j += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(&a) = pat.get(j) else { return Err("unclosed '[' in glob pattern".into()) };
                        if a == ']' && !first {
                            break;
                        }
                        first = false;
                        if pat.get(j + 1) == Some(&'-') && pat.get(j + 2).is_some_and(|&b| b != ']') {
                            let b = pat[j + 2];
                            ranges.push((a.min(b), a.max(b)));
                            j += 3;
                        } else {
                            ranges.push((a, a));
                            j += 1;
                        }
                    }
                    toks.push(G::Class(ranges, neg));
                    i = j;
                }
                c => toks.push(G::Lit(c)),
            }
            i += 1;
        }
        Ok(toks)
    }

    pub fn matches(&self, s: &str) -> bool {
        if self.fold {
            self.re.is_match(&s.to_lowercase())
        } else {
            self.re.is_match(s)
        }
    }
}

/// An IP network (an address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Result<IpNet, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: bad prefix length")),
            },
        };
        Ok(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => *ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Case-insensitive (ASCII) substring search; `needle` is lowercase.
pub fn icontains(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    if h.len() < n.len() {
        return false;
    }
    h.windows(n.len()).any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// Decode a hex string (`bcontains`, `bstartswith` values).
pub fn hex(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() & 1 == 1 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{s:?} is not a hex byte string"));
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        let g = Glob::new("/tmp/*.sh", false).unwrap();
        assert!(g.matches("/tmp/a.sh"));
        assert!(g.matches("/tmp/x/y.sh"));
        assert!(!g.matches("/tmp/a.py"));
        let g = Glob::new("/dev/sd[a-c]?", false).unwrap();
        assert!(g.matches("/dev/sdb1"));
        assert!(!g.matches("/dev/sdd1"));
        let g = Glob::new("[!a]*", false).unwrap();
        assert!(g.matches("bcd"));
        assert!(!g.matches("abc"));
        assert!(Glob::new("*A*", true).unwrap().matches("xax"));
        assert!(Glob::new("[abc", false).is_err());
        assert!(Glob::new("a\\*", false).unwrap().matches("a*"));
        assert!(!Glob::new("a\\*", false).unwrap().matches("ab"));
    }

    /// The star-backtracking matcher globs used before the regex: the
    /// reference the compiled globs must agree with.
    fn reference(pattern: &str, fold: bool, s: &str) -> bool {
        let toks = Glob::tokens(pattern, fold).unwrap();
        let lower;
        let s = if fold {
            lower = s.to_lowercase();
            &lower
        } else {
            s
        };
        let one = |t: &G, c: char| match t {
            G::Lit(l) => *l == c,
            G::Any => true,
            G::Class(r, neg) => r.iter().any(|&(a, b)| a <= c && c <= b) != *neg,
            G::Star => false,
        };
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < s.len() {
            let c = s[t..].chars().next().unwrap_or('\0');
            if p < toks.len() && toks[p] == G::Star {
                star = Some((p, t));
                p += 1;
            } else if p < toks.len() && one(&toks[p], c) {
                p += 1;
                t += c.len_utf8();
            } else if let Some((sp, st)) = star {
                let sc = s[st..].chars().next().unwrap_or('\0');
                p = sp + 1;
                t = st + sc.len_utf8();
                star = Some((sp, t));
            } else {
                return false;
            }
        }
        while p < toks.len() && toks[p] == G::Star {
            p += 1;
        }
        p == toks.len()
    }

    #[test]
    fn glob_agrees_with_the_backtracking_reference() {
        let patterns = [
            "*",
            "",
            "?",
            "a*",
            "*a",
            "*a*",
            "a?c",
            "[a-c]*",
            "[!a-c]*",
            "[]]x",
            "[!]]",
            "[a-]",
            "[-a]",
            "[^x]?",
            "\\[a]",
            "a\\?",
            "*.*",
            "/etc/*ow",
            "*/.ssh/*",
            "[\\]*",
            "[&&]",
            "[~-~]",
            "[.]",
            "x[z-a]y",
            "\u{e9}*",
            "*\u{c9}",
            "[\u{e0}-\u{ff}]",
            "a*b*c",
            "**a**",
            "*\n*",
            "?\n",
            "[^\n]",
            "(a|b)",
            "a{2}",
            "^$",
            ".+",
        ];
        let hays = [
            "",
            "a",
            "b",
            "abc",
            "aXc",
            "a\nc",
            "]x",
            "]",
            "-",
            "x",
            "[a]",
            "a?",
            "ab",
            "/etc/shadow",
            "/etc/sha",
            "/root/.ssh/id_rsa",
            "\\",
            "&",
            "~",
            ".",
            "zy",
            "xzy",
            "\u{e9}t\u{e9}",
            "\u{c9}T\u{c9}",
            "\u{f1}",
            "aXbYc",
            "acb",
            "\n",
            "\na",
            "(a|b)",
            "aa",
            "a{2}",
            "^$",
            "..",
            "?",
            "*",
        ];
        for fold in [false, true] {
            for p in patterns {
                let g = Glob::new(p, fold).unwrap();
                for h in hays {
                    assert_eq!(g.matches(h), reference(p, fold, h), "glob {p:?} fold {fold} on {h:?}");
                }
            }
        }
    }

    #[test]
    fn glob_is_linear_in_the_path() {
        // 3,000 characters of `*a` then `*b`, against 1 MiB of `a`: the
        // backtracking matcher took seconds per event.
        let pattern = format!("{}*b", "*a".repeat(1500));
        let g = Glob::new(&pattern, false).unwrap();
        let hay = "a".repeat(1 << 20);
        let t = std::time::Instant::now();
        assert!(!g.matches(&hay));
        assert!(g.matches(&format!("{hay}b")));
        assert!(!g.matches(&format!("{}b", "a".repeat(1499))));
        assert!(g.matches(&format!("{}b", "a".repeat(1500))));
        assert!(Glob::new(&pattern, true).unwrap().matches(&format!("{}B", "A".repeat(1 << 20))));
        assert!(t.elapsed() < std::time::Duration::from_secs(20), "took {:?}", t.elapsed());
    }

    #[test]
    fn prefix() {
        let p = PrefixSet::new(["/usr/bin".to_string(), "/etc/".to_string()]);
        assert!(p.matches("/usr/bin"));
        assert!(p.matches("/usr/bin/ls"));
        assert!(p.matches("/etc/passwd"));
        assert!(!p.matches("/usr/binx"));
        assert!(!p.matches("/usr"));
        assert!(PrefixSet::new(["/".to_string()]).matches("/x"));
        // Entries of every length, 255 and longer ones among them (the
        // lengths filter keeps one flag for all past 255).
        let dirs: Vec<String> = (1..300).map(|n| format!("/{}", "d".repeat(n))).collect();
        let p = PrefixSet::new(dirs.clone());
        for d in &dirs {
            assert!(p.matches(d) && p.matches(&format!("{d}/f")), "{}", d.len());
            assert!(!p.matches(&format!("{d}x")), "{}", d.len());
        }
    }

    #[test]
    fn nets() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(&"10.1.2.3".parse().unwrap()));
        assert!(!n.contains(&"11.1.2.3".parse().unwrap()));
        assert!(n.contains(&"::ffff:10.0.0.1".parse().unwrap()));
        let n = IpNet::parse("fd00::/8").unwrap();
        assert!(n.contains(&"fd12::1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("nope").is_err());
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(&"1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn literal_sets_agree_with_std() {
        let long = format!("{}/needle-é", "a/".repeat(100));
        let hays = ["", "/", "/tmp/rtest-bench", "/root/.aws/credentials", "é/x.pem", "aab", long.as_str()];
        let needles = ["", "/", "a", "ab", "aab", "/.aws/", ".pem", "é", "needle-é", "rtest-bench", "zz"];
        for h in hays {
            for n in needles {
                assert_eq!(contains(h, n), h.contains(n), "{h:?} contains {n:?}");
                let one = |i: usize| {
                    let v = vec![n.to_string()];
                    let e = Vec::new;
                    match i {
                        0 => LitSet::new(v, e(), e(), e()),
                        1 => LitSet::new(e(), v, e(), e()),
                        2 => LitSet::new(e(), e(), v, e()),
                        _ => LitSet::new(e(), e(), e(), v),
                    }
                };
                assert_eq!(one(0).matches(h), h == n);
                assert_eq!(one(1).matches(h), h.starts_with(n), "{h:?} startswith {n:?}");
                assert_eq!(one(2).matches(h), h.ends_with(n), "{h:?} endswith {n:?}");
                assert_eq!(one(3).matches(h), h.contains(n), "{h:?} contains {n:?}");
            }
            let all: Vec<String> = needles[1..].iter().map(|n| n.to_string()).collect();
            let set = LitSet::new(vec!["/".into()], all.clone(), all.clone(), all.clone());
            let want =
                h == "/" || needles[1..].iter().any(|n| h.starts_with(n) || h.ends_with(n) || h.contains(n));
            assert_eq!(set.matches(h), want, "{h:?}");
            let (e, p, s, i) = set.parts();
            assert_eq!((e.len(), p.len(), s.len(), i.len()), (1, all.len(), all.len(), all.len()));
        }
    }

    #[test]
    fn sets() {
        let s = StrSet::new((0..20).map(|i| i.to_string()));
        assert!(s.contains("7"));
        assert!(!s.contains("70"));
        let items: Vec<String> = [63, 64, 255, 256, 1000].iter().map(|&n| "x".repeat(n)).collect();
        let s = StrSet::new(items.iter().cloned().chain((0..3).map(|i| i.to_string())));
        for i in &items {
            assert!(s.contains(i), "{}", i.len());
            assert!(!s.contains(&"y".repeat(i.len())) && !s.contains(&format!("{i}y")), "{}", i.len());
        }
        assert!(!s.contains(&"x".repeat(300)));
        assert!(icontains("Hello World", "o w"));
        assert!(!icontains("Hello", "hellox"));
        assert_eq!(hex("41 42").unwrap(), b"AB");
        assert!(hex("4").is_err());
    }
}
