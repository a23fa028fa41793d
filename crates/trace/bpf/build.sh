#!/bin/sh
# Build sockscope's BPF objects from the sources in this folder.
#
#   crates/trace/bpf/build.sh [OUTDIR]     (default: this folder)
#
# The objects are committed (the Rust build embeds them, so building
# sockscope needs no clang); scripts/check-bpf runs this into a temporary
# folder and compares byte for byte. To keep the output reproducible the
# flags are fixed, there are no system headers (-nostdinc), the compiler
# runs from this folder on relative file names, debug paths are mapped to
# "." and the DWARF is stripped (BTF and the CO-RE records stay: they are
# what the loader needs). The same clang release gives the same bytes;
# the committed objects were built with CLANG_RELEASE below, the clang
# Debian 12 ships (packages clang and llvm).
set -eu
# The compiler the committed objects were built with (first line of
# `clang --version`); scripts/check-bpf compares against it.
CLANG_RELEASE="Debian clang version 14.0.6"
if [ "${1:-}" = "--clang-release" ]; then
    echo "$CLANG_RELEASE"
    exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
out=$(cd "$out" && pwd)
CLANG=${CLANG:-clang}
STRIP=${LLVM_STRIP:-llvm-strip}
cd "$here"
# trace: `sockscope trace`; counters: `sockscope export --bpf`.
for unit in trace counters; do
    for pair in x86_64:x86 aarch64:arm64; do
        name=${pair%%:*}
        arch=${pair#*:}
        obj="$out/$unit-$name.bpf.o"
        "$CLANG" -target bpfel -O2 -g -nostdinc -std=gnu11 \
            -Wall -Wextra -Wno-unused-parameter -Werror \
            -D__TARGET_ARCH_"$arch" \
            -fdebug-prefix-map="$here"=. -fno-ident \
            -c "$unit.bpf.c" -o "$obj.tmp"
        "$STRIP" --strip-debug -o "$obj" "$obj.tmp"
        rm -f "$obj.tmp"
    done
done
