//! Compiles bpf/sensor.bpf.c, bpf/flows.bpf.c and bpf/pcap.bpf.c with clang and generates
//! their libbpf-rs skeletons into OUT_DIR.

fn main() {
    // The benchmark's floor build (bpf/floor.h): every hot program returns
    // at once. Only through the `floor` feature, never in a default build.
    let floor: &[&str] =
        if std::env::var_os("CARGO_FEATURE_FLOOR").is_some() { &["-DRAMPART_FLOOR"] } else { &[] };
    // Only the sensor's objects: other bpf/*.bpf.c belong to other crates
    // (netpolicy.bpf.c to respond).
    bpf_build::build_skeleton_with("sensor", floor);
    // compare-and-swap on the TCP sequence edges (flows.bpf.c)
    bpf_build::build_skeleton_with("flows", &[&["-mcpu=v3"], floor].concat());
    bpf_build::build_skeleton_with("pcap", floor);
}
