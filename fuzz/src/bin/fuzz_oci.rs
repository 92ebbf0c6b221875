//! AFL++ target: `fuzz_targets::oci` (see crates/fuzz-targets).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz_targets::oci(data);
    });
}
