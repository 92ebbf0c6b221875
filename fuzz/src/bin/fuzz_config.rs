//! AFL++ target: `fuzz_targets::config` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::config(data);
    });
}
