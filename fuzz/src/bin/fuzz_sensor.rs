//! AFL++ target: `fuzz_targets::sensor` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::sensor(data);
    });
}
