#!/usr/bin/env bash
# Coverage-guided fuzzing of rampart's parsers with AFL++ (cargo-afl, stable Rust).
#
#   scripts/fuzz.sh [TARGET...] [--seconds N] [--jobs J] [--no-install] [--cmin]
#
# TARGETs (default: all): rules config policy seccomp oci k8s recording capture
# sensor. Each is a function of crates/fuzz-targets called by the binary
# fuzz/src/bin/fuzz_TARGET.rs (fuzz/ is a workspace of its own, built with
# `cargo afl build --release`, debug assertions and overflow checks on).
#
# For each target: runs afl-fuzz for N seconds (default 300) seeded with
# fuzz/corpus/TARGET/ plus every known regression, prints the executions and
# the crashes and hangs found, copies each crash and hang (named by content
# hash) into fuzz/regressions/TARGET/, and appends a line to fuzz/runs.tsv
# (the record of executions across runs). fuzz/dict/TARGET.dict, when there
# is one, is the run's dictionary (-x). --jobs J fuzzes J targets at once
# (default 1). --cmin replaces fuzz/corpus/TARGET/ by the afl-cmin minimised
# union of the corpus and this run's queue (files over 64 KiB left out).
#
# A crash copied to fuzz/regressions/TARGET/ makes the replay test
# (crates/fuzz-targets/tests/replay.rs, run by `cargo test --workspace`) fail
# until it is fixed; a known crash whose fix is pending elsewhere goes to
# fuzz/regressions/TARGET/pending/, which the replay test lists but skips.
#
# Installs what is missing: cargo-afl (cargo install, which also builds its own
# AFL++ 4.x; Debian's afl++ package is not needed). Exit status: 0 when no
# crash or hang was found, 1 otherwise, 2 on a usage or setup error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ="$ROOT/fuzz"
ALL_TARGETS=(rules config policy seccomp oci k8s recording capture capture_bin sensor dns)

seconds=300
jobs=1
install=1
cmin=0
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
        --seconds=*) seconds=${1#*=}; shift ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        --jobs=*) jobs=${1#*=}; shift ;;
        --no-install) install=0; shift ;;
        --cmin) cmin=1; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *)
            if [[ " ${ALL_TARGETS[*]} " != *" $1 "* ]]; then
                echo "fuzz.sh: unknown target $1 (targets: ${ALL_TARGETS[*]})" >&2
                exit 2
            fi
            targets+=("$1"); shift ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "fuzz.sh: --seconds wants a positive integer" >&2; exit 2; }
[[ $jobs =~ ^[0-9]+$ && $jobs -gt 0 ]] || { echo "fuzz.sh: --jobs wants a positive integer" >&2; exit 2; }

if ! command -v cargo >/dev/null && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

# --- install -----------------------------------------------------------------
if [[ $install == 1 ]]; then
    if ! cargo afl --version >/dev/null 2>&1; then
        echo "fuzz.sh: installing cargo-afl" >&2
        cargo install --locked cargo-afl
    fi
    # cargo-afl >= 0.14 builds its own AFL++ once (`cargo afl config --build`).
    # afl-fuzz -h exits 1 (AFL++ 4.40c) even when built: look at what it prints.
    afl_help=$(cargo afl fuzz -h 2>&1 || true)
    if [[ $afl_help != *afl-fuzz* ]]; then
        cargo afl config --build
    fi
fi

# --- build -------------------------------------------------------------------
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$FUZZ/target}
bins=()
for t in "${targets[@]}"; do bins+=(--bin "fuzz_$t"); done
echo "fuzz.sh: building ${targets[*]} (cargo afl build --release, target dir $CARGO_TARGET_DIR)" >&2
(cd "$FUZZ" && cargo afl build --release "${bins[@]}")
BIN_DIR="$CARGO_TARGET_DIR/release"

# --- run ---------------------------------------------------------------------
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
# The machine is shared: no core pinning (afl-fuzz refuses to start when it
# finds no free core otherwise).
export AFL_NO_AFFINITY=1
# A seed that crashes or hangs (a known regression) is skipped, not fatal.
export AFL_IGNORE_SEED_PROBLEMS=1
export AFL_SKIP_CRASHES=1

stat_of() { # FILE KEY -> value or 0
    awk -F: -v k="$2" '{ gsub(/ /, "", $1) } $1 == k { gsub(/ /, "", $2); print $2; found = 1 } END { if (!found) print 0 }' "$1" 2>/dev/null || echo 0
}

run_one() { # TARGET -> writes fuzz/out/TARGET/summary
    local t=$1 out="$FUZZ/out/$t" seeds="$FUZZ/out/$t.seeds"
    rm -rf "$out" "$seeds"
    mkdir -p "$seeds" "$FUZZ/regressions/$t"
    cp "$FUZZ/corpus/$t"/* "$seeds"/ 2>/dev/null || true
    # Known crashes seed the run too: their neighbourhood is where bugs are.
    find "$FUZZ/regressions/$t" -type f ! -name '.*' -size -64k -exec cp {} "$seeds"/ \; 2>/dev/null || true
    [[ -n $(ls -A "$seeds") ]] || echo x > "$seeds/empty"
    # -m 2048: an allocation past 2 GiB fails (abort: a crash) instead of
    # swapping the shared machine; -t 2000: over 2 s per input is a hang.
    # A dictionary of the format's words, where there is one (fuzz/dict/).
    local dict=()
    [[ -f $FUZZ/dict/$t.dict ]] && dict=(-x "$FUZZ/dict/$t.dict")
    cargo afl fuzz -i "$seeds" -o "$out" -V "$seconds" -m 2048 -t 2000 "${dict[@]}" -- "$BIN_DIR/fuzz_$t" \
        >"$FUZZ/out/$t.log" 2>&1 || true
    local stats="$out/default/fuzzer_stats"
    local execs eps crashes hangs
    execs=$(stat_of "$stats" execs_done)
    eps=$(stat_of "$stats" execs_per_sec)
    crashes=$(stat_of "$stats" saved_crashes)
    hangs=$(stat_of "$stats" saved_hangs)
    local kind f h
    for kind in crash hang; do
        for f in "$out/default/${kind}s"/id:* "$out/default/${kind}es"/id:*; do
            [[ -f $f ]] || continue
            h=$(sha1sum "$f" | cut -c1-16)
            # Already known (kept or pending): not copied again.
            if ! find "$FUZZ/regressions/$t" -name "*-$h" | grep -q .; then
                cp "$f" "$FUZZ/regressions/$t/$kind-$h"
            fi
        done
    done
    if [[ ! -f $stats ]]; then
        echo "fuzz.sh: $t: afl-fuzz did not run; its log:" >&2
        tail -n 30 "$FUZZ/out/$t.log" >&2
    fi
    if [[ $cmin == 1 && -d $out/default/queue ]]; then
        local pool="$FUZZ/out/$t.pool" min="$FUZZ/out/$t.min"
        rm -rf "$pool" "$min"; mkdir -p "$pool"
        cp "$FUZZ/corpus/$t"/* "$pool"/ 2>/dev/null || true
        find "$out/default/queue" -maxdepth 1 -type f -size -64k -exec cp {} "$pool"/ \;
        if cargo afl cmin -i "$pool" -o "$min" -m 2048 -t 2000 -- "$BIN_DIR/fuzz_$t" >"$FUZZ/out/$t.cmin.log" 2>&1; then
            rm -rf "$FUZZ/corpus/$t"; mkdir -p "$FUZZ/corpus/$t"
            for f in "$min"/*; do
                cp "$f" "$FUZZ/corpus/$t/$(sha1sum "$f" | cut -c1-16)"
            done
        else
            echo "fuzz.sh: $t: afl-cmin failed (see fuzz/out/$t.cmin.log); corpus kept" >&2
        fi
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$execs" "$eps" "$crashes" "$hangs" >"$FUZZ/out/$t.summary"
}

mkdir -p "$FUZZ/out"
running=0
for t in "${targets[@]}"; do
    echo "fuzz.sh: fuzzing $t for ${seconds}s" >&2
    run_one "$t" &
    running=$((running + 1))
    if [[ $running -ge $jobs ]]; then wait -n || true; running=$((running - 1)); fi
done
wait

# --- report ------------------------------------------------------------------
status=0
[[ -f $FUZZ/runs.tsv ]] || printf 'date\ttarget\tseconds\texecs\texecs_per_sec\tcrashes\thangs\n' >"$FUZZ/runs.tsv"
printf '%-10s %14s %10s %8s %6s\n' target execs exec/s crashes hangs
for t in "${targets[@]}"; do
    IFS=$'\t' read -r _ execs eps crashes hangs <"$FUZZ/out/$t.summary"
    printf '%-10s %14s %10s %8s %6s\n' "$t" "$execs" "$eps" "$crashes" "$hangs"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$seconds" "$execs" "$eps" "$crashes" "$hangs" >>"$FUZZ/runs.tsv"
    [[ $execs != 0 ]] || status=2
    [[ $crashes == 0 && $hangs == 0 ]] || status=$((status > 1 ? status : 1))
done
awk -F'\t' 'NR > 1 { n[$2] += $4 } END { for (t in n) printf "total executions so far (fuzz/runs.tsv): %-10s %d\n", t, n[t] }' "$FUZZ/runs.tsv" | sort
echo "crashes and hangs: fuzz/regressions/<target>/ (replayed by cargo test -p fuzz-targets)"
exit $status
