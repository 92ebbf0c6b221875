//! Hostile rule files: each must end in a clear, positioned error (or load),
//! quickly, never in an abort or a runaway allocation.

use crate::RulesetBuilder;
use std::time::Instant;

fn load(text: &str) -> Result<crate::Ruleset, Vec<String>> {
    let mut b = RulesetBuilder::new();
    b.add_file("h.yaml", text);
    b.build().map_err(|e| e.errors.iter().map(|d| d.to_string()).collect())
}

fn rule(extra: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: info\n{extra}")
}

#[test]
fn misspelt_actions_is_an_error_with_a_suggestion() {
    let e = load(&rule("  action: [kill]\n")).unwrap_err();
    assert_eq!(e, vec!["h.yaml:6:3: rule \"r\": unknown key \"action\" (did you mean `actions`?)"]);
    // The real key still loads into `extra` for the response engine.
    let rs = load(&rule("  actions: [kill]\n  dry_run: true\n")).unwrap();
    let r = rs.get("r").unwrap();
    assert!(r.extra.contains_key("actions") && r.extra.contains_key("dry_run"));
    let e = load(&rule("  sevrity: high\n")).unwrap_err();
    assert!(e[0].contains("unknown key \"sevrity\"") && !e[0].contains("did you mean"), "{e:?}");
}

#[test]
fn unknown_keys_of_lists_and_macros() {
    let e = load("- list: l\n  itmes: [a]\n").unwrap_err();
    assert!(
        e.iter()
            .any(|m| m.starts_with("h.yaml:2:3: list \"l\": unknown key \"itmes\" (did you mean `items`?)")),
        "{e:?}"
    );
    let e = load("- macro: m\n  condtion: a = b\n").unwrap_err();
    assert!(e.iter().any(|m| m.contains("(did you mean `condition`?)")), "{e:?}");
}

#[test]
fn duplicate_keys_are_errors() {
    let text = "- rule: r\n  desc: d\n  condition: evt.type = execve\n  condition: evt.type = open\n  output: o\n  priority: info\n";
    let e = load(text).unwrap_err();
    assert_eq!(e, vec!["h.yaml:4:3: duplicate key \"condition\" (first at line 3)"]);
    // Anywhere in the file, not only in items.
    let e = load(&rule("  actions:\n    - kill: true\n      kill: false\n")).unwrap_err();
    assert!(e[0].starts_with("h.yaml:8:7: duplicate key \"kill\""), "{e:?}");
}

#[test]
fn nul_byte_is_refused_with_its_position() {
    let e = load("- list: l\n  items: [a\0b]\n").unwrap_err();
    assert_eq!(e, vec!["h.yaml:2:12: NUL byte in rule file"]);
}

#[test]
fn alias_bomb_is_refused_by_the_guard() {
    let mut text = format!("- list: big\n  items: [&a \"{}\"]\n- list: l\n  items:\n", "x".repeat(1 << 20));
    for _ in 0..5000 {
        text.push_str("    - *a\n");
    }
    let t = Instant::now();
    let e = load(&text).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("h.yaml:") && e[0].contains("expands to more than"), "{e:?}");
    assert!(t.elapsed().as_secs() < 20);
}

#[test]
fn deep_nesting_is_refused_fast() {
    for text in [format!("- list: l\n  items: {}", "[".repeat(10_000)), "- ".repeat(10_000)] {
        let t = Instant::now();
        let e = load(&text).unwrap_err();
        assert!(e[0].contains("nesting deeper than 64"), "{e:?}");
        assert!(t.elapsed().as_secs() < 10);
    }
}

#[test]
fn many_bad_rules_are_all_reported() {
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!(
            "- rule: r{i}\n  desc: d\n  condition: evt.type = execve and proc.nam = x\n  output: o\n  priority: info\n"
        ));
    }
    let e = load(&text).unwrap_err();
    assert_eq!(e.len(), 20_000);
    assert!(e[19_999].starts_with("h.yaml:99998:36: unknown field \"proc.nam\""), "{}", e[19_999]);
}

#[test]
fn macro_chain_of_1000_ends_in_an_error_not_an_abort() {
    // Defined bottom-up (each macro compiled from the cache) and top-down
    // (each use recurses into the next definition).
    for order in ["up", "down"] {
        let mut items: Vec<String> = vec!["- macro: m0\n  condition: proc.name = a\n".into()];
        for i in 1..1000 {
            items.push(format!("- macro: m{i}\n  condition: not m{}\n", i - 1));
        }
        if order == "down" {
            items.reverse();
        }
        let mut text = items.concat();
        text.push_str(&rule("").replace("evt.type = execve", "evt.type = execve and m999"));
        let e = load(&text).unwrap_err();
        assert!(
            e.iter().any(|m| m.contains("deeper than 128 levels") || m.contains("more than 64 deep")),
            "{order}: {:?}",
            &e[..e.len().min(3)]
        );
        assert!(e.iter().all(|m| m.starts_with("h.yaml:")), "{e:?}");
    }
    // A chain within the limits loads.
    let mut text = String::from("- macro: m0\n  condition: proc.name = a\n");
    for i in 1..40 {
        text.push_str(&format!("- macro: m{i}\n  condition: not m{}\n", i - 1));
    }
    text.push_str(&rule("").replace("evt.type = execve", "evt.type = execve and m39"));
    assert!(load(&text).is_ok());
}

#[test]
fn doubling_macros_are_refused_by_the_budget() {
    let mut text = String::from("- macro: m0\n  condition: proc.name = a\n");
    for i in 1..64 {
        text.push_str(&format!("- macro: m{i}\n  condition: m{p} or m{p}\n", p = i - 1));
    }
    text.push_str(&rule("").replace("evt.type = execve", "evt.type = execve and m63"));
    assert!(text.len() < 3000);
    let t = Instant::now();
    let e = load(&text).unwrap_err();
    assert!(t.elapsed().as_secs() < 20);
    let first = &e[0];
    assert!(first.contains("exceeds the rule set's budget"), "{first}");
    // Where: the use of the macro being expanded, in the macro that uses it.
    assert!(first.starts_with("h.yaml:") && first.contains("condition of macro \"m"), "{first}");
}

#[test]
fn doubling_lists_are_refused_by_the_budget() {
    let mut text = String::from("- list: l0\n  items: [a, b]\n");
    for i in 1..32 {
        text.push_str(&format!("- list: l{i}\n  items: [l{p}, l{p}]\n", p = i - 1));
    }
    text.push_str(&rule("").replace("evt.type = execve", "evt.type = execve and proc.name in (l31)"));
    let t = Instant::now();
    let e = load(&text).unwrap_err();
    assert!(t.elapsed().as_secs() < 20);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("h.yaml:67:50: expanding list \"l31\" exceeds the rule set's budget"),
        "{}",
        e[0]
    );
}

#[test]
fn control_characters_are_refused_with_their_position() {
    let e = load("- list: l\n  items: [a\u{1}b]\n").unwrap_err();
    assert_eq!(e, vec!["h.yaml:2:12: invalid YAML: control character U+0001 is not allowed"]);
    // A byte order mark before the first item is fine.
    assert!(load("\u{feff}- list: l\n  items: [a]\n").is_ok());
}
