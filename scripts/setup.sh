#!/usr/bin/env bash
# Prepare a Debian/Ubuntu machine (as root) to build, run and test rampart:
# install the packages, start dockerd (no systemd needed) and build the test
# image. Idempotent: apt runs only when a package is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "setup.sh: $*" >&2; }

if [[ $(id -u) != 0 ]]; then
    log "must run as root (it installs packages and starts dockerd)"
    exit 1
fi

# Build: clang/llvm for the BPF objects, libelf/zlib/pkg-config for libbpf-sys.
# Run and test: docker.io (dockerd, containerd, runc, Debian's 20.10 client),
# busybox-static and gcc's static libc for the test image, auditd for the
# benchmark's peer, python3 for scripts/bench.py.
# Hardening: libseccomp-dev (the reference the seccomp compiler is tested
# against), golang-github-containers-common (its default seccomp profile, a test
# fixture), and the SELinux toolchain and reference policy that generated CIL
# modules are compiled and installed with.
PACKAGES=(
    clang llvm make gcc libc6-dev pkg-config libelf-dev zlib1g-dev
    docker.io iptables busybox-static auditd iproute2 procps ca-certificates curl python3 openssl
    libseccomp-dev golang-github-containers-common
    selinux-policy-default secilc semodule-utils policycoreutils
    # protoc: the gRPC stubs of the Kubernetes CRI client (k8s-cri) and of the
    # containerd client (containerd-client) are generated at build time.
    protobuf-compiler
    # podman 4.3 (pulls conmon, runc/crun, containernetworking-plugins): the podman
    # runtime client's live and end-to-end tests; scripts/podman.sh serves its API.
    podman
    # Prometheus (and promtool): the metrics tests scrape the agent with it;
    # tmux: `rampart top` is driven in a real terminal; rsyslog with its TLS
    # driver receives alerts over RFC 5425.
    prometheus tmux rsyslog rsyslog-gnutls
    # python3-venv: the private environment of kubernetes-validate (below).
    python3-venv
    # systemd-analyze verifies deploy/systemd/rampart.service (systemd need not
    # be PID 1); setpriv (util-linux) runs the agent with the unit's capabilities.
    systemd util-linux
    # iperf3: the flow accounting tests and bench run it between two
    # containers (tests/image/iperf3.sh builds its image).
    iperf3
    # dnsmasq (dnsmasq-base: the binary without the system service): the DNS
    # tests' resolver, in a container (tests/image/dnsmasq.sh); tcpdump reads
    # what `rampart pcap` writes.
    dnsmasq-base tcpdump
    # nmap, hping3: the scan and flood detection tests run them in containers
    # (tests/image/netattack.sh builds their image).
    nmap hping3
)

missing=()
for p in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
else
    log "all packages present"
fi

if ! command -v cargo >/dev/null && [[ ! -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    log "warning: cargo not found (install a Rust toolchain with rustup; setup.sh does not)"
fi

# kubernetes-validate from PyPI, pinned (its Kubernetes 1.31 schemas are in
# the package): tests/deploy_image.rs validates deploy/kubernetes/ offline.
KUBE_VALIDATE_VERSION=1.31.0
TOOLS_VENV=${RAMPART_TOOLS_VENV:-/opt/rampart-tools/venv}
if [[ $("$TOOLS_VENV/bin/kubernetes-validate" --version 2>/dev/null) != "$KUBE_VALIDATE_VERSION" ]]; then
    log "installing kubernetes-validate $KUBE_VALIDATE_VERSION in $TOOLS_VENV"
    python3 -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install -q "kubernetes-validate==$KUBE_VALIDATE_VERSION"
fi

# The BPF filesystem: systemd mounts it at boot on most hosts; a machine
# booted without systemd (a minimal VM init) has none, and without it the
# agent turns network policies off (they are pinned there to outlive it).
if [[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) != bpf_fs ]]; then
    log "mounting the BPF filesystem on /sys/fs/bpf"
    mount -t bpf bpf /sys/fs/bpf
fi

"$ROOT/scripts/dockerd.sh" start
# A standalone containerd with its CRI plugin on the usual socket, after dockerd
# (which then keeps its own private containerd): the containerd and CRI tests.
"$ROOT/scripts/containerd.sh" start
"$ROOT/scripts/podman.sh" start
"$ROOT/tests/image/build.sh"
"$ROOT/tests/image/iperf3.sh"
"$ROOT/tests/image/dnsmasq.sh"
"$ROOT/tests/image/netattack.sh"
# The CRI plugin's pod sandbox image (needs containerd started above).
"$ROOT/tests/image/pause.sh"
log "done"
