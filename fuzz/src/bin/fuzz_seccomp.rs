//! AFL++ target: `fuzz_targets::seccomp` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::seccomp(data);
    });
}
