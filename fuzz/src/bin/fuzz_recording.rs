//! AFL++ target: `fuzz_targets::recording` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::recording(data);
    });
}
