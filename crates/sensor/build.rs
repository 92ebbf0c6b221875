//! Compiles bpf/sensor.bpf.c, bpf/flows.bpf.c and bpf/pcap.bpf.c with clang and generates
//! their libbpf-rs skeletons into OUT_DIR.

fn main() {
    // Only the sensor's objects: other bpf/*.bpf.c belong to other crates
    // (netpolicy.bpf.c to respond).
    bpf_build::build_skeleton("sensor");
    bpf_build::build_skeleton("flows");
    bpf_build::build_skeleton("pcap");
}
