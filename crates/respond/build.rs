//! Compiles bpf/netpolicy.bpf.c with clang into a libbpf-rs skeleton in OUT_DIR,
//! and exports a hash of the object (`NETPOLICY_OBJECT_HASH`): pinned state
//! made by a different object is replaced, not reused.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const STEM: &str = "netpolicy";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let bpf_dir = manifest_dir.join("../../bpf").canonicalize().expect("bpf/ directory next to crates/");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let src = bpf_dir.join(format!("{STEM}.bpf.c"));
    for f in [src.clone(), bpf_dir.join(format!("{STEM}.h")), bpf_dir.join("vmlinux.h")] {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let obj = out_dir.join(format!("{STEM}.bpf.o"));
    SkeletonBuilder::new()
        .source(&src)
        .obj(&obj)
        .clang_args([
            format!("-I{}", bpf_dir.display()),
            "-D__TARGET_ARCH_x86".to_string(),
            "-g".to_string(),
            "-O2".to_string(),
            "-Wall".to_string(),
            "-Wno-unused-function".to_string(),
        ])
        .build_and_generate(out_dir.join(format!("{STEM}.skel.rs")))
        .unwrap_or_else(|e| panic!("building BPF skeleton for {}: {e:#}", src.display()));
    let bytes = std::fs::read(&obj).unwrap_or_else(|e| panic!("reading {}: {e}", obj.display()));
    // FNV-1a: stable across builds of the same object, no dependency needed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    println!("cargo:rustc-env=NETPOLICY_OBJECT_HASH={h:016x}");
}
