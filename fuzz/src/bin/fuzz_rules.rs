//! AFL++ target: `fuzz_targets::rules` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::rules(data);
    });
}
