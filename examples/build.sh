#!/usr/bin/env bash
# Rebuilds every example object from its C source: examples/<name>/<name>.c -> <name>.o.
#
# Needs Debian's clang-19 and libbpf-dev (bpf/bpf_helpers.h). Idempotent: run it again and the
# same objects come out (paths are made relative, DWARF is stripped; BTF and .BTF.ext stay).
# Usage: examples/build.sh [name...]    (default: every example directory with a <name>.c)
set -euo pipefail

cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
STRIP=${STRIP:-llvm-strip-19}
MULTIARCH_INC=/usr/include/$(uname -m)-linux-gnu

# Examples built for ISA v4 (the others target v3).
V4_EXAMPLES=" cpuv4 "

build_one() {
	local name=$1 cpu=v3
	[[ $V4_EXAMPLES == *" $name "* ]] && cpu=v4
	# Compile with the source path relative to examples/ so that BTF line info is the same
	# wherever the repository is checked out.
	"$CLANG" -O2 -g -target bpf -mcpu=$cpu -D__TARGET_ARCH_x86 \
		-I"$MULTIARCH_INC" -Wall -Werror \
		-fdebug-prefix-map="$PWD"=. -fno-ident \
		-c "$name/$name.c" -o "$name/$name.o.tmp"
	# Drop DWARF (.debug_*): BTF and .BTF.ext carry everything the loader and libbpf read.
	"$STRIP" --strip-debug "$name/$name.o.tmp"
	mv "$name/$name.o.tmp" "$name/$name.o"
	echo "built examples/$name/$name.o (-mcpu=$cpu)"
}

if [[ $# -gt 0 ]]; then
	names=("$@")
else
	names=()
	for src in */*.c; do
		dir=${src%%/*}
		[[ $src == "$dir/$dir.c" ]] && names+=("$dir")
	done
fi
for name in "${names[@]}"; do
	build_one "$name"
done
