#!/usr/bin/env bash
# Set up the machine and run rampart's whole test suite, as root.
#
# The privileged tests (BPF, real containers under dockerd, containerd, podman)
# are `#[ignore = "privileged: needs ..."]`, so a plain `cargo test` as any user
# skips them visibly; this script runs them too (`-- --include-ignored`), as
# root, after setup.sh started the runtimes. Run that way, a privileged test
# whose need is not met fails (its preflight panics): it never passes by skipping.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p rampart --test events`);
# arguments after `--` go to the test binaries, after `--include-ignored`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ $(id -u) != 0 ]]; then
    echo "scripts/test.sh: the privileged tests need root; run it as root (a plain \`cargo test\` runs the rest)" >&2
    exit 1
fi

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

# Split ARGS at `--`: cargo's arguments before, the test binaries' after.
cargo_args=()
test_args=()
seen_dashes=0
for a in "$@"; do
    if ((seen_dashes)); then
        test_args+=("$a")
    elif [[ $a == -- ]]; then
        seen_dashes=1
    else
        cargo_args+=("$a")
    fi
done

if ((${#cargo_args[@]})); then
    exec cargo test --release "${cargo_args[@]}" -- --include-ignored "${test_args[@]}"
fi
exec cargo test --workspace --release --no-fail-fast -- --include-ignored "${test_args[@]}"
