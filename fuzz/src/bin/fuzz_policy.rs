//! AFL++ target: `fuzz_targets::policy` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::policy(data);
    });
}
