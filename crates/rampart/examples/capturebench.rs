//! Rule evaluation over a real capture (JSON lines of `model::Event`, as
//! `rampart replay` reads them) with the default rule set, on one core.
//! Like `rampart replay`, the process table is rebuilt from the capture and
//! only `Ruleset::evaluate` is timed; it also prints where the time goes by
//! event type and, with `--per-rule`, by rule.
//!
//! `taskset -c 0 cargo run --release -p rampart --example capturebench -- CAPTURE [--per-rule] [--repeat N] [--rules DIR]`

use model::Event;
use rules::{EvalCtx, RulesetBuilder};
use state::ProcessTable;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut capture = None;
    let mut per_rule = false;
    let mut repeat = 1u32;
    let mut dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"));
    while let Some(a) = args.next() {
        match a.as_str() {
            "--per-rule" => per_rule = true,
            // Evaluate each event N times (for profiles dominated by evaluation).
            "--repeat" => repeat = args.next().and_then(|n| n.parse().ok()).expect("--repeat N"),
            "--rules" => dir = args.next().expect("--rules DIR").into(),
            _ => capture = Some(a),
        }
    }
    let capture = capture.expect("usage: capturebench CAPTURE [--per-rule] [--rules DIR]");

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("rules dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut b = RulesetBuilder::new();
    for f in &files {
        b.add_file(&f.display().to_string(), &std::fs::read_to_string(f).expect("rule file"));
    }
    let rules = b.build().expect("rules load");
    let enabled = rules.rules().iter().filter(|r| r.enabled).count();
    let any: Vec<&str> = rules
        .rules()
        .iter()
        .filter(|r| r.enabled && r.evt_types.is_none())
        .map(|r| r.name.as_str())
        .collect();
    println!("{} rules ({enabled} enabled); {} for any event type: {any:?}", rules.len(), any.len());

    // Events are parsed one at a time right before evaluation, as in `rampart
    // replay`: the event is then warm in the cache, as it is in the agent.
    let reader = std::io::BufReader::new(std::fs::File::open(&capture).expect("capture"));
    let events = reader
        .lines()
        .map(|l| l.expect("read"))
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<Event>(&l).ok());

    let mut table = ProcessTable::events_only();
    let mut total = Duration::ZERO;
    let mut matched = 0usize;
    // (events, time, candidates) per event type
    let mut by_type: BTreeMap<String, (u64, Duration, usize)> = BTreeMap::new();
    let mut by_rule: BTreeMap<&str, (u64, Duration, u64)> = BTreeMap::new();
    let mut count = 0usize;
    for (n, ev) in events.enumerate() {
        let ev = &ev;
        count += 1;
        table.apply(ev);
        let ctx = EvalCtx { procs: Some(&table), hostname: Some("bench"), event_num: n as u64 + 1 };
        let t = Instant::now();
        for _ in 0..repeat {
            matched += rules.evaluate(std::hint::black_box(ev), &ctx).count();
        }
        let d = t.elapsed() / repeat;
        total += d;
        let ty = match ev.syscall.as_deref() {
            Some(t) => t.to_string(),
            None => format!("({})", ev.event_type().as_str()),
        };
        let e = by_type.entry(ty).or_default();
        e.0 += 1;
        e.1 += d;
        e.2 = rules.candidates_for_type(ev.syscall.as_deref().unwrap_or(""));
        if per_rule {
            for r in rules.rules().iter().filter(|r| r.enabled) {
                let applies = match (&r.evt_types, ev.syscall.as_deref()) {
                    (None, _) => true,
                    (Some(ts), Some(t)) => ts.iter().any(|x| x == t),
                    (Some(_), None) => false,
                };
                if !applies {
                    continue;
                }
                let t = Instant::now();
                let m = r.matches(ev, &ctx);
                let d = t.elapsed();
                let e = by_rule.entry(&r.name).or_default();
                e.0 += 1;
                e.1 += d;
                e.2 += u64::from(m);
            }
        }
    }
    let n = count as f64;
    println!(
        "{} events, {matched} matches: rules {:.0} ns/event ({:.0} events/s)",
        count,
        total.as_nanos() as f64 / n,
        n / total.as_secs_f64()
    );
    let mut types: Vec<_> = by_type.into_iter().collect();
    types.sort_by_key(|(_, (_, d, _))| std::cmp::Reverse(*d));
    for (t, (c, d, cand)) in types.iter().take(15) {
        println!(
            "  {t:<12} {c:>7} events  {:>6.0} ns/event  {:>5.1}% of time  {cand} candidate rules",
            d.as_nanos() as f64 / *c as f64,
            100.0 * d.as_secs_f64() / total.as_secs_f64()
        );
    }
    if per_rule {
        let mut v: Vec<_> = by_rule.into_iter().collect();
        v.sort_by_key(|(_, (_, d, _))| std::cmp::Reverse(*d));
        println!("per rule (each timed alone, Instant overhead included):");
        for (name, (c, d, m)) in v.iter().take(30) {
            println!("  {:>8.1} ms  {c:>7} evals  {m:>5} matches  {name}", d.as_secs_f64() * 1e3);
        }
    }
}
