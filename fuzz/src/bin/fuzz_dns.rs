//! AFL++ target: `fuzz_targets::dns` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::dns(data);
    });
}
