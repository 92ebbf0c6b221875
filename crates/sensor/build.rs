//! Compiles bpf/sensor.bpf.c with clang and generates its libbpf-rs skeleton into OUT_DIR.

fn main() {
    // Only the sensor's object: other bpf/*.bpf.c belong to other crates
    // (netpolicy.bpf.c to respond).
    bpf_build::build_skeleton("sensor");
}
