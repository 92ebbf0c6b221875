//! Compiles bpf/sensor.bpf.c, bpf/flows.bpf.c and bpf/pcap.bpf.c with clang and generates
//! their libbpf-rs skeletons into OUT_DIR.

fn main() {
    // Only the sensor's objects: other bpf/*.bpf.c belong to other crates
    // (netpolicy.bpf.c to respond).
    bpf_build::build_skeleton("sensor");
    // compare-and-swap on the TCP sequence edges (flows.bpf.c)
    bpf_build::build_skeleton_with("flows", &["-mcpu=v3"]);
    bpf_build::build_skeleton("pcap");
}
