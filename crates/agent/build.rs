//! Embeds the default rule set (`rules/*.yaml` at the repository root) in the
//! agent library, in file-name order (which is the load order: lists and macros
//! first).

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../rules");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut code = String::from("/// The default rule files: (name, text), in load order.\npub const DEFAULT_RULES: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = format!("rules/{}", f.file_name().unwrap().to_string_lossy());
        let abs = f.canonicalize().unwrap();
        writeln!(code, "    ({name:?}, include_str!({:?})),", abs.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("default_rules.rs");
    std::fs::write(out, code).unwrap();
}
