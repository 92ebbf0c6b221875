//! AFL++ target: `fuzz_targets::k8s` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::k8s(data);
    });
}
