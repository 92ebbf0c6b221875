//! Replays the fuzz corpora and every crash the fuzzer ever found through the
//! fuzz entry points, in an ordinary `cargo test`. Files under a `pending/`
//! folder are known crashes whose fix has not landed yet: they are not run
//! here (see `fuzz/README.md`), only listed.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every regular file directly in `dir` (no recursion: `pending/` stays out).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.')))
        .collect();
    out.sort();
    out
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for target in fuzz_targets::TARGETS {
        for file in files(&root().join(kind).join(target)) {
            let data = std::fs::read(&file).unwrap();
            eprintln!("{}", file.display());
            assert!(fuzz_targets::run(target, &data));
            n += 1;
        }
    }
    n
}

#[test]
fn corpus_replays_without_crash() {
    let n = replay("corpus");
    assert!(n > 0, "no corpus under {}", root().display());
}

#[test]
fn regressions_replay_without_crash() {
    replay("regressions");
    for target in fuzz_targets::TARGETS {
        for file in files(&root().join("regressions").join(target).join("pending")) {
            eprintln!("pending (not run): {}", file.display());
        }
    }
}

#[test]
fn unknown_target_is_refused() {
    assert!(!fuzz_targets::run("nope", b""));
}
