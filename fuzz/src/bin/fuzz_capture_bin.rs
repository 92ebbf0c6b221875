//! AFL++ target: `fuzz_targets::capture_bin` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::capture_bin(data);
    });
}
