//! Falco compatibility details: quoted list items, unused macros and lists,
//! transformers and `val()`, engine versions, output trimming, redefinitions.

use crate::tests::{connect, exec};
use crate::*;

fn load(files: &[(&str, &str)]) -> Result<Ruleset, LoadError> {
    let mut b = RulesetBuilder::new();
    for (name, text) in files {
        b.add_file(name, text);
    }
    b.build()
}

fn ok(text: &str) -> Ruleset {
    load(&[("f.yaml", text)]).unwrap_or_else(|e| panic!("refused:\n{e}"))
}

fn warnings(rs: &Ruleset) -> Vec<String> {
    rs.warnings().iter().map(|d| d.to_string()).collect()
}

#[test]
fn quoted_list_items_are_strings() {
    let text = r#"
- list: rfc_1918_addresses
  items: ['"10.0.0.0/8"', '"172.16.0.0/12"', "'192.168.0.0/16'"]
- list: allowed_cmds
  items: ['"sh -c uname -a"', plain]
- rule: net
  desc: d
  condition: evt.type = connect and fd.rnet in (rfc_1918_addresses)
  output: o
  priority: info
- rule: cmd
  desc: d
  condition: evt.type = execve and proc.cmdline in (allowed_cmds)
  output: o
  priority: info
- rule: exc
  desc: d
  condition: evt.type = execve
  output: o
  priority: info
  exceptions:
    - name: quoted
      fields: proc.cmdline
      values: ['"sh -c uname -a"']
"#;
    let rs = ok(text);
    let ctx = EvalCtx::default();
    assert!(rs.get("net").unwrap().matches(&connect("10.1.2.3", 443), &ctx));
    assert!(!rs.get("net").unwrap().matches(&connect("8.8.8.8", 443), &ctx));
    let sh = exec("sh", &["sh", "-c", "uname", "-a"]);
    assert!(rs.get("cmd").unwrap().matches(&sh, &ctx));
    assert!(!rs.get("exc").unwrap().matches(&sh, &ctx));
    assert!(rs.get("exc").unwrap().matches(&exec("sh", &["sh"]), &ctx));
}

const RULE: &str =
    "- rule: r\n  desc: d\n  condition: evt.type = execve and used\n  output: o\n  priority: info\n";

#[test]
fn errors_in_unused_macros_are_warnings() {
    let text = format!(
        "- macro: used\n  condition: proc.name = sh\n- macro: unused\n  condition: proc.nope = 1\n- macro: via_unused\n  condition: unused and fd.name = x\n{RULE}"
    );
    let rs = ok(&text);
    let w = warnings(&rs);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("f.yaml:4:14: unknown field \"proc.nope\" in condition of macro \"unused\"")
            && w[0].ends_with("(macro not used by any enabled rule; ignored)"),
        "{w:?}"
    );
    // Used by an enabled rule, through another macro: an error.
    let text =
        text.replace("condition: evt.type = execve and used", "condition: evt.type = execve and via_unused");
    let e = load(&[("f.yaml", &text)]).unwrap_err();
    assert_eq!(e.errors.len(), 1, "{e}");
    assert!(e.errors[0].to_string().starts_with("f.yaml:4:14: unknown field \"proc.nope\""), "{e}");
    // Used by a disabled rule only: a warning again.
    let text = format!("{text}  enabled: false\n");
    let rs = ok(&text);
    assert_eq!(warnings(&rs).len(), 1, "{:?}", warnings(&rs));
    assert_eq!(rs.len(), 0);
}

#[test]
fn other_sources_skip_their_macros() {
    let text = r#"
- macro: k8s_only
  condition: ka.verb = create
- macro: declared_k8s
  condition: ka.target.resource = pods
  source: k8s_audit
- rule: k8s
  desc: d
  condition: k8s_only and declared_k8s
  output: o
  priority: info
  source: k8s_audit
- rule: k8s
  append: true
  condition: and k8s_only
- rule: sys
  desc: d
  condition: evt.type = execve
  output: o
  priority: info
"#;
    let rs = ok(text);
    assert_eq!(rs.len(), 1);
    let w = warnings(&rs);
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w[0].contains("(macro only used by rules of other sources; skipped)"), "{w:?}");
    assert!(w[1].contains("macro \"declared_k8s\": source \"k8s_audit\" is not supported"), "{w:?}");
    assert!(w[2].contains("rule \"k8s\": source \"k8s_audit\" is not supported"), "{w:?}");
}

#[test]
fn engine_version_requirements() {
    let rs = ok(&format!("- required_engine_version: 0.57.0\n- required_plugin_versions:\n  - name: container\n    version: 0.2.0\n{}", RULE.replace(" and used", "")));
    assert!(rs.warnings().is_empty(), "{:?}", warnings(&rs));
    let rs = ok("- required_engine_version: 12\n");
    assert!(rs.warnings().is_empty());
    let rs = ok("- list: l\n  items: []\n- required_engine_version: 999.0.0\n");
    let w = warnings(&rs);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with(
            "f.yaml:3:28: rules require Falco engine version 999.0.0, rampart implements 0.57.0"
        ),
        "{w:?}"
    );
    let e = load(&[("f.yaml", "- required_engine_version: soon\n")]).unwrap_err();
    assert!(
        e.errors[0]
            .to_string()
            .starts_with("f.yaml:1:28: required_engine_version: \"soon\" is not a version"),
        "{e}"
    );
}

#[test]
fn folded_outputs_are_trimmed() {
    let text = "- rule: r\n  desc: d\n  condition: evt.type = execve\n  output: >\n    shell %proc.name\n    ran\n  priority: info\n";
    let rs = ok(text);
    let r = rs.get("r").unwrap();
    assert_eq!(r.output, "shell %proc.name ran");
    let (line, _) = r.render_output(&exec("sh", &["sh"]), &EvalCtx::default());
    assert_eq!(line, "shell sh ran");
    // Error positions still point into the block.
    let e = load(&[("f.yaml", &text.replace("%proc.name", "%proc.nme"))]).unwrap_err();
    assert!(e.errors[0].to_string().starts_with("f.yaml:5:11: unknown field \"proc.nme\""), "{e}");
}

#[test]
fn redefinitions_from_earlier_files_are_warned() {
    let first = "- list: l\n  items: [a]\n- macro: m\n  condition: proc.name in (l)\n- rule: r\n  desc: d\n  condition: evt.type = execve and m\n  output: o\n  priority: info\n";
    let second = "- list: l\n  items: [b]\n- macro: m\n  condition: proc.name in (l, c)\n- rule: r\n  desc: d2\n  condition: evt.type = execve and m\n  output: o\n  priority: info\n- list: l\n  items: [b, d]\n";
    let rs = load(&[("defaults.yaml", first), ("local.yaml", second)]).unwrap();
    let w = warnings(&rs);
    assert_eq!(
        w,
        vec![
            "local.yaml:1:3: list \"l\" redefines the one from defaults.yaml:1",
            "local.yaml:3:3: macro \"m\" redefines the one from defaults.yaml:3",
            "local.yaml:5:3: rule \"r\" redefines the one from defaults.yaml:5",
        ]
    );
    assert_eq!(rs.get("r").unwrap().desc, "d2");
    // An identical copy (Falco's own files repeat shared lists and macros)
    // changes nothing: not reported.
    let rs = load(&[("defaults.yaml", first), ("copy.yaml", first)]).unwrap();
    assert!(rs.warnings().is_empty(), "{:?}", warnings(&rs));
    // Within one file, and with append or override, nothing is said.
    let third =
        "- list: l\n  items: [e]\n  append: true\n- rule: r\n  desc: d3\n  override:\n    desc: replace\n";
    let rs = load(&[("defaults.yaml", first), ("local.yaml", third)]).unwrap();
    assert!(rs.warnings().is_empty(), "{:?}", warnings(&rs));
}

fn rule_with(cond: &str, output: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: '{}'\n  output: '{}'\n  priority: info\n", cond, output)
}

fn holds(cond: &str, ev: &model::Event) -> bool {
    let rs = ok(&rule_with(cond, "o"));
    let r = rs.get("r").unwrap();
    let ctx = EvalCtx::default();
    let general = r.matches(ev, &ctx);
    assert_eq!(general, rs.evaluate(ev, &ctx).count() == 1, "indexed evaluation differs for {cond}");
    general
}

#[test]
fn transformers_in_conditions() {
    let mut ev = exec("CURL", &["CURL", "Y3VybCAtcyBodHRwOi8veA=="]);
    ev.process.exe = "/usr/bin/CURL".into();
    assert!(holds("evt.type = execve and tolower(proc.name) = curl", &ev));
    assert!(!holds("evt.type = execve and proc.name = curl", &ev));
    assert!(holds("evt.type = execve and tolower(proc.name) in (wget, curl)", &ev));
    assert!(holds("toupper(tolower(proc.name)) = CURL", &ev));
    assert!(holds("basename(proc.exe) = CURL", &ev));
    assert!(holds("tolower(basename(proc.exe)) startswith cur", &ev));
    assert!(holds("b64(proc.args) = \"curl -s http://x\"", &ev));
    assert!(!holds("b64(proc.name) exists", &exec("bad!", &["bad!"])));
    // Both forms of one field under an `or` are not merged into one test.
    assert!(holds("proc.name = curl or tolower(proc.name) = curl", &ev));
    assert!(holds("evt.type = execve and not tolower(proc.name) = wget", &ev));
}

#[test]
fn val_compares_two_fields() {
    let ev = exec("sh", &["sh"]);
    assert!(holds("proc.name = val(proc.name)", &ev));
    assert!(!holds("proc.name != val(proc.name)", &ev));
    assert!(holds("proc.exe endswith val(proc.name)", &ev));
    assert!(holds("proc.pid >= val(proc.pid) and proc.pid != val(proc.ppid)", &ev));
    assert!(holds("proc.ppid < val(proc.pid)", &ev));
    // A field without value: false, both ways.
    assert!(!holds("proc.name = val(proc.pname)", &ev));
    assert!(!holds("proc.name != val(proc.pname)", &ev));
    assert!(holds("tolower(proc.name) = val(proc.name)", &ev));
}

fn cond_errors(cond: &str) -> Vec<String> {
    match load(&[("f.yaml", &rule_with(cond, "o"))]) {
        Ok(_) => panic!("accepted: {cond}"),
        Err(e) => e.errors.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn transformer_and_val_errors() {
    let e = cond_errors("tolower(proc.pid) = 1");
    assert!(e[0].starts_with("f.yaml:3:15: transformer tolower() needs a string field"), "{e:?}");
    let e = cond_errors("lower(proc.name) = a");
    assert!(e[0].contains("unknown transformer \"lower\""), "{e:?}");
    let e = cond_errors("proc.name = val(proc.pid)");
    assert!(
        e[0].starts_with("f.yaml:3:31: \"proc.name\" (string) cannot be compared with val(proc.pid)"),
        "{e:?}"
    );
    let e = cond_errors("proc.name glob val(proc.pname)");
    assert!(e[0].contains("operator 'glob' cannot compare with val(...)"), "{e:?}");
    let e = cond_errors("proc.name = val(proc.nope)");
    assert!(e[0].starts_with("f.yaml:3:31: unknown field \"proc.nope\""), "{e:?}");
    // Unknown fields inside transformers and val() can be skipped like others.
    let mut b = RulesetBuilder::new().skip_unknown_fields(true);
    b.add_file("f.yaml", &rule_with("proc.name = val(proc.nope) or tolower(fd.nope) = x", "o"));
    let rs = b.build().unwrap();
    assert!(rs.is_empty());
    assert!(rs.warnings()[0].message.contains("skipped: it uses field(s) \"proc.nope\", \"fd.nope\""));
}

#[test]
fn transformers_in_outputs() {
    let rs = ok(&rule_with("evt.type = execve", "%toupper(proc.name) ran %basename(proc.exe) (%proc.name)"));
    let (line, fields) = rs.get("r").unwrap().render_output(&exec("sh", &["sh"]), &EvalCtx::default());
    assert_eq!(line, "SH ran sh (sh)");
    assert_eq!(fields["toupper(proc.name)"], serde_json::json!("SH"));
    assert_eq!(fields["basename(proc.exe)"], serde_json::json!("sh"));
    let e = load(&[("f.yaml", &rule_with("evt.type = execve", "%tolower(proc.pid)"))]).unwrap_err();
    assert!(e.errors[0].message.contains("transformer tolower() needs a string field"), "{e}");
    let e = load(&[("f.yaml", &rule_with("evt.type = execve", "%tolower(proc.name"))]).unwrap_err();
    assert!(e.errors[0].message.contains("expected ')'"), "{e}");
}

#[test]
fn len_counts_bytes_and_compares_as_a_number() {
    let ev = exec("CURL", &["CURL", "Y3VybCAtcyBodHRwOi8veA=="]);
    assert!(holds("len(proc.name) = 4", &ev));
    assert!(holds("len(proc.args) > 20 and len(proc.args) in (24, 25)", &ev));
    assert!(holds("len(tolower(proc.name)) <= 4", &ev));
    assert!(!holds("len(proc.pname) exists", &ev));
    let e = cond_errors("len(proc.name) = curl");
    assert!(e[0].contains("\"curl\" is not a number (field \"len(proc.name)\" is of type u64)"), "{e:?}");
    let e = cond_errors("len(proc.name) contains a");
    assert!(e[0].contains("operator 'contains' cannot be used with field \"len(proc.name)\""), "{e:?}");
    let e = cond_errors("tolower(len(proc.name)) = a");
    assert!(
        e[0].contains("transformer tolower() needs a string field; \"len(proc.name)\" is of type u64"),
        "{e:?}"
    );
    let rs = ok(&rule_with("evt.type = execve", "name of %len(proc.name) bytes"));
    let (line, fields) = rs.get("r").unwrap().render_output(&ev, &EvalCtx::default());
    assert_eq!(line, "name of 4 bytes");
    assert_eq!(fields["len(proc.name)"], serde_json::json!(4));
}

#[test]
fn exception_fields_take_transformers() {
    let rule = |fields: &str| {
        format!(
            "- rule: r\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: info\n  exceptions:\n    - name: known\n      fields: {fields}\n      values:\n        - [curl, \"/usr/bin\"]\n"
        )
    };
    let mut ev = exec("CURL", &["CURL"]);
    ev.process.exe = "/usr/bin/CURL".into();
    let ctx = EvalCtx::default();
    let rs = ok(&rule("[tolower(proc.name), proc.exepath]"));
    assert_eq!(rs.evaluate(&ev, &ctx).count(), 1, "the exe differs: not excepted");
    let rs = ok(&rule("[tolower(basename(proc.exepath)), proc.exepath]"));
    assert_eq!(rs.evaluate(&ev, &ctx).count(), 1);
    let text =
        rule("[tolower(proc.name), proc.exepath]").replace("[curl, \"/usr/bin\"]", "[curl, /usr/bin/CURL]");
    assert_eq!(ok(&text).evaluate(&ev, &ctx).count(), 0, "both match: excepted");
    let e = load(&[("f.yaml", &rule("[proc.name and proc.exe, proc.exepath]"))]).unwrap_err();
    assert!(e.errors[0].to_string().contains("\"proc.name and proc.exe\" is not a field"), "{e}");
    let e = load(&[("f.yaml", &rule("[tolower(proc.pid), proc.exepath]"))]).unwrap_err();
    assert!(e.errors[0].to_string().contains("transformer tolower() needs a string field"), "{e}");
}
