//! Compiles bpf/sensor.bpf.c with clang and generates its libbpf-rs skeleton into OUT_DIR.

use std::env;
use std::fs;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let bpf_dir = manifest_dir.join("../../bpf").canonicalize().expect("bpf/ directory next to crates/");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed={}", bpf_dir.display());

    let mut sources: Vec<PathBuf> =
        fs::read_dir(&bpf_dir).expect("read bpf/").filter_map(|e| e.ok().map(|e| e.path())).collect();
    sources.sort();
    for entry in &sources {
        // Headers too, so an edit to events.h rebuilds.
        println!("cargo:rerun-if-changed={}", entry.display());
    }
    // Only the sensor's object: other bpf/*.bpf.c belong to other crates
    // (netpolicy.bpf.c to respond).
    for src in sources.iter().filter(|p| p.file_name().is_some_and(|n| n == "sensor.bpf.c")) {
        let file = src.file_name().unwrap().to_string_lossy().to_string();
        let stem = file.trim_end_matches(".bpf.c");
        let skel = out_dir.join(format!("{stem}.skel.rs"));
        SkeletonBuilder::new()
            .source(src)
            .obj(out_dir.join(format!("{stem}.bpf.o")))
            .clang_args([
                format!("-I{}", bpf_dir.display()),
                "-D__TARGET_ARCH_x86".to_string(),
                "-g".to_string(),
                "-O2".to_string(),
                "-Wall".to_string(),
                "-Wno-unused-function".to_string(),
            ])
            .build_and_generate(&skel)
            .unwrap_or_else(|e| panic!("building BPF skeleton for {}: {e:#}", src.display()));
    }
}
