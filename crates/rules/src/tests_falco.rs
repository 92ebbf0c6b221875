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
