//! Builds the syscall probe that `rampart profile verify` runs inside
//! containers (the default rules are embedded by the `agent` crate).

use std::path::PathBuf;

fn main() {
    build_syscall_probe();
}

/// Compiles probe/syscall_probe.c into a static, libc-free executable that
/// `rampart profile verify` runs inside containers. x86_64 only (its entry
/// point and syscall stub are x86_64 assembly); elsewhere the embedded probe is
/// empty and verify says so.
fn build_syscall_probe() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let src = manifest.join("probe/syscall_probe.c");
    println!("cargo:rerun-if-changed={}", src.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("syscall-probe");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64") {
        std::fs::write(&out, b"").unwrap();
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = std::process::Command::new(&cc)
        .args(["-static", "-nostdlib", "-O2", "-fno-stack-protector", "-fno-pie", "-no-pie", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("running {cc} for {}: {e}", src.display()));
    assert!(status.success(), "compiling {} failed", src.display());
}
