//! Compiles bpf/netpolicy.bpf.c with clang into a libbpf-rs skeleton in OUT_DIR,
//! and exports a hash of the object (`NETPOLICY_OBJECT_HASH`): pinned state
//! made by a different object is replaced, not reused.

fn main() {
    let obj = bpf_build::build_skeleton("netpolicy");
    println!("cargo:rustc-env=NETPOLICY_OBJECT_HASH={}", bpf_build::object_hash(&obj));
}
