//! What the crates with eBPF programs (sensor, respond) do in their build.rs:
//! compile `bpf/<stem>.bpf.c` with clang (CO-RE, against the committed
//! `bpf/vmlinux.h`) and generate its libbpf-rs skeleton into `OUT_DIR` as
//! `<stem>.skel.rs`, which the crate `include!`s.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The workspace's `bpf/` directory.
pub fn bpf_dir() -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    manifest_dir.join("../../bpf").canonicalize().expect("bpf/ directory next to crates/")
}

/// Builds `bpf/<stem>.bpf.c` into `OUT_DIR/<stem>.bpf.o` and
/// `OUT_DIR/<stem>.skel.rs`; returns the object's path. Every file in `bpf/`
/// reruns the build script when it changes (headers are shared: an edit to
/// events.h must rebuild). Panics with the reason on failure (build scripts
/// report by panicking).
pub fn build_skeleton(stem: &str) -> PathBuf {
    build_skeleton_with(stem, &[])
}

/// [`build_skeleton`] with extra clang arguments, e.g. `-mcpu=v3` for a
/// program that needs BPF atomics beyond add (compare-and-swap).
pub fn build_skeleton_with(stem: &str, extra_args: &[&str]) -> PathBuf {
    let bpf_dir = bpf_dir();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&bpf_dir).expect("read bpf/").filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let src = bpf_dir.join(format!("{stem}.bpf.c"));
    let obj = out_dir.join(format!("{stem}.bpf.o"));
    SkeletonBuilder::new()
        .source(&src)
        .obj(&obj)
        .clang_args(
            [
                format!("-I{}", bpf_dir.display()),
                "-D__TARGET_ARCH_x86".to_string(),
                "-g".to_string(),
                "-O2".to_string(),
                "-Wall".to_string(),
                "-Wno-unused-function".to_string(),
            ]
            .into_iter()
            .chain(extra_args.iter().map(|a| a.to_string())),
        )
        .build_and_generate(out_dir.join(format!("{stem}.skel.rs")))
        .unwrap_or_else(|e| panic!("building BPF skeleton for {}: {e:#}", src.display()));
    obj
}

/// A hash of the object at `obj` (FNV-1a, hex): stable across builds of the
/// same object, so pinned state made by a different object can be told apart.
pub fn object_hash(obj: &std::path::Path) -> String {
    let bytes = std::fs::read(obj).unwrap_or_else(|e| panic!("reading {}: {e}", obj.display()));
    format!("{:016x}", model::fnv1a(&bytes))
}
