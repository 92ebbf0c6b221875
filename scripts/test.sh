#!/usr/bin/env bash
# Set up the machine and run rampart's whole test suite, as root.
#
# The integration tests (crates/rampart/tests) load BPF programs and run real
# containers, so they need root and a running dockerd; setup.sh provides both.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p rampart --test events`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

"$ROOT/scripts/setup.sh"

# rustup's cargo when PATH lacks it (e.g. a bare root environment).
if ! command -v cargo >/dev/null && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

# Test binaries run one after another; inside one binary, this many tests run at
# once. Each integration test starts its own agent and its own uniquely named
# containers, so two at a time share dockerd safely on a 2-core machine. The
# flood, dockerd-restart and containerd-restart tests each have a test binary
# of their own.
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-2}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

if (($#)); then
    exec cargo test --release "$@"
fi
exec cargo test --workspace --release --no-fail-fast
