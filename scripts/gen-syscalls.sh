#!/usr/bin/env bash
# Regenerate crates/seccomp/src/tables.rs: syscall name <-> number for every
# architecture the seccomp compiler targets, from the kernel UAPI headers.
#
#   x86_64, x86 (i386), x32   /usr/include/x86_64-linux-gnu/asm/unistd_{64,32,x32}.h (linux-libc-dev)
#   aarch64                   /usr/aarch64-linux-gnu/include/asm/unistd.h (linux-libc-dev-arm64-cross)
#   arm (EABI)                /usr/arm-linux-gnueabihf/include/asm/unistd.h (linux-libc-dev-armhf-cross)
#
# Names of other architectures' syscalls (ppc64le, s390x, mips64el, riscv64; only
# the names, so that a profile written for several architectures is not refused
# for naming them) come from those architectures' cross headers when installed
# (linux-libc-dev-{ppc64el,s390x,mips64el,riscv64}-cross).
#
# Syscalls newer than the installed headers are listed in EXTRA below with the
# numbers of the kernel's syscall tables (scripts/syscall.tbl and
# arch/*/syscall*.tbl); the script adds them only where the headers lack them.
#
# Usage: scripts/gen-syscalls.sh            (writes the file)
#        scripts/gen-syscalls.sh --check    (fails if the file is out of date)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/crates/seccomp/src/tables.rs
CPP=${CPP:-cpp}

need() {
    [[ -e $1 ]] || { echo "gen-syscalls.sh: missing $1 (apt-get install $2)" >&2; exit 1; }
}
need /usr/include/x86_64-linux-gnu/asm/unistd_64.h linux-libc-dev
need /usr/aarch64-linux-gnu/include/asm/unistd.h linux-libc-dev-arm64-cross
need /usr/arm-linux-gnueabihf/include/asm/unistd.h linux-libc-dev-armhf-cross

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Every macro the preprocessor sees for one architecture's <asm/unistd.h>.
defines() { # name include-dir extra-cpp-flags...
    local name=$1 inc=$2
    shift 2
    echo '#include <asm/unistd.h>' | "$CPP" -dM -nostdinc -I "$inc" "$@" - >"$TMP/$name.defs"
}
X86=/usr/include/x86_64-linux-gnu
defines x86_64 "$X86" -D__x86_64__ -U__ILP32__ -U__i386__
defines x86 "$X86" -D__i386__ -U__x86_64__
defines x32 "$X86" -D__x86_64__ -D__ILP32__ -U__i386__
defines aarch64 /usr/aarch64-linux-gnu/include -D__aarch64__
defines arm /usr/arm-linux-gnueabihf/include -D__ARM_EABI__

others=()
for dir in powerpc64le-linux-gnu s390x-linux-gnu mips64el-linux-gnuabi64 riscv64-linux-gnu; do
    if [[ -d /usr/$dir/include/asm ]]; then
        cat /usr/$dir/include/asm/unistd*.h >"$TMP/other-$dir.h"
        others+=("$TMP/other-$dir.h")
    else
        echo "gen-syscalls.sh: note: /usr/$dir/include not installed; its syscall names are left out" >&2
    fi
done

HEADERS_VERSION=$(dpkg-query -W -f='${Version}' linux-libc-dev 2>/dev/null || echo unknown)

python3 - "$TMP" "$OUT.new" "$HEADERS_VERSION" "${others[@]}" <<'PY'
import re, sys

tmp, out, headers_version, others = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

# Syscalls added after Linux 6.1 (the installed headers), numbered as in the
# kernel's syscall tables up to Linux 6.18. Since Linux 5.1 new syscalls have
# the same number on every architecture (x32 adds its 0x40000000 bit).
# Columns: number, name, architectures that lack it.
EXTRA = """
451 cachestat
452 fchmodat2
453 map_shadow_stack x32
454 futex_wake
455 futex_wait
456 futex_requeue
457 statmount
458 listmount
459 lsm_get_self_attr
460 lsm_set_self_attr
461 lsm_list_modules
462 mseal
463 setxattrat
464 getxattrat
465 listxattrat
466 removexattrat
467 open_tree_attr
468 file_getattr
469 file_setattr
"""

ARCHES = ["x86_64", "x86", "x32", "aarch64", "arm"]
X32_BIT = 0x40000000

def parse_defines(path):
    defs = {}
    for line in open(path):
        m = re.match(r"#define (\w+) (.*)$", line.rstrip("\n"))
        if m:
            defs[m.group(1)] = m.group(2)
    return defs

def evaluate(expr, defs, depth=0):
    if depth > 20:
        raise ValueError("macro recursion: " + expr)
    expr = re.sub(r"\b(\d+)[uUlL]+\b", r"\1", expr)
    def sub(m):
        name = m.group(0)
        if name in defs:
            return "(" + str(evaluate(defs[name], defs, depth + 1)) + ")"
        raise KeyError(name)
    expr = re.sub(r"\b[A-Za-z_]\w*\b", sub, expr)
    if not re.fullmatch(r"[\s\d()+\-x*<|a-fA-F]*", expr):
        raise ValueError("unexpected expression: " + expr)
    return int(eval(expr, {"__builtins__": {}}))

tables = {}
for arch in ARCHES:
    defs = parse_defines(f"{tmp}/{arch}.defs")
    defs.setdefault("__X32_SYSCALL_BIT", "0x40000000")
    entries = {}
    aliases = set()
    for name, expr in defs.items():
        m = re.fullmatch(r"__(NR|ARM_NR)_(\w+)", name)
        if not m:
            continue
        sc = m.group(2)
        if m.group(1) == "NR" and (sc in ("syscalls", "SYSCALL_BASE", "OABI_SYSCALL_BASE", "SYSCALL_MASK", "arch_specific_syscall")
                                   or sc.startswith("3264_")):
            continue
        if m.group(1) == "ARM_NR" and sc == "BASE":
            continue
        if re.fullmatch(r"__(NR|ARM_NR)_\w+", expr.strip()):
            aliases.add(sc)  # e.g. arm's sync_file_range2 = arm_sync_file_range
        try:
            nr = evaluate(expr, defs)
        except KeyError:
            continue  # refers to something undefined for this configuration
        # x32 headers also define the x86_64-only numbers as not-for-x32:
        # keep only numbers carrying the x32 bit.
        if arch == "x32" and not nr & X32_BIT:
            continue
        entries[sc] = nr
    for line in EXTRA.strip().splitlines():
        parts = line.split()
        nr, sc, lacking = int(parts[0]), parts[1], parts[2:]
        if arch in lacking or sc in entries:
            continue
        if arch == "x32":
            nr |= X32_BIT
        if nr in entries.values():
            raise SystemExit(f"gen-syscalls: {arch}: extra {sc} ({nr}) collides with a header syscall")
        entries[sc] = nr
    tables[arch] = (entries, aliases)

known = set()
for entries, _ in tables.values():
    known |= set(entries)
other_names = set()
for path in others:
    for line in open(path):
        m = re.match(r"#define __NR_(\w+)\s", line)
        if m and not m.group(1).startswith(("Linux", "3264_", "syscalls", "SYSCALL_", "N32_", "64_", "O32_", "arch_specific")) \
                and not m.group(1).endswith("_Linux_syscalls") \
                and not re.fullmatch(r"(reserved|unused)\d+", m.group(1)):
            other_names.add(m.group(1))
other_names -= known

with open(out, "w") as f:
    f.write("// @generated by scripts/gen-syscalls.sh from the kernel UAPI headers\n")
    f.write(f"// (linux-libc-dev {headers_version} and its cross-architecture packages) plus the\n")
    f.write("// syscalls that script lists as newer than those headers. Do not edit by hand.\n\n")
    for arch in ARCHES:
        entries, aliases = tables[arch]
        # Number order; at equal numbers the canonical name before its aliases.
        rows = sorted(entries.items(), key=lambda kv: (kv[1], kv[0] in aliases, kv[0]))
        f.write(f"/// `{arch}`: (name, number), by number; at equal numbers the canonical name first.\n")
        f.write(f"pub(crate) static {arch.upper()}: &[(&str, u32)] = &[\n")
        for name, nr in rows:
            f.write(f'    ("{name}", {nr:#x}),\n' if nr >= 0x10000 else f'    ("{name}", {nr}),\n')
        f.write("];\n\n")
    f.write("/// Syscall names of other architectures (ppc64le, s390x, mips64el, riscv64) that\n")
    f.write("/// none of the tables above has: recognised in profiles, never compiled.\n")
    f.write("pub(crate) static OTHER_ARCH_NAMES: &[&str] = &[\n")
    for name in sorted(other_names):
        f.write(f'    "{name}",\n')
    f.write("];\n")
PY

if [[ ${1:-} == --check ]]; then
    if ! cmp -s "$OUT.new" "$OUT"; then
        rm -f "$OUT.new"
        echo "gen-syscalls.sh: $OUT is out of date; run scripts/gen-syscalls.sh" >&2
        exit 1
    fi
    rm -f "$OUT.new"
    echo "gen-syscalls.sh: $OUT is up to date"
else
    mv "$OUT.new" "$OUT"
    echo "gen-syscalls.sh: wrote $OUT" >&2
fi
