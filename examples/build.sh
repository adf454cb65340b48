#!/usr/bin/env bash
# Rebuilds every example object from its C source: examples/<name>/<name>.c -> <name>.o.
#
#   examples/build.sh [OUT_DIR]    (default: in place; otherwise OUT_DIR/<name>/<name>.o)
#
# Needs Debian's clang-19, llvm-19 (llvm-strip-19) and libbpf-dev (bpf/bpf_helpers.h).
# Idempotent: the same sources give byte-identical objects wherever the repository is checked out
# (source paths are made relative, DWARF is stripped; BTF and .BTF.ext stay). An example folder
# with its own build.sh is built by that script, given OUT_DIR/<name>.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$here"
CLANG=${CLANG:-clang-19}
STRIP=${STRIP:-llvm-strip-19}
MULTIARCH_INC=/usr/include/$(uname -m)-linux-gnu

# Examples built for ISA v4 (sdiv/smod, movsx, ldsx, bswap, gotol); the others target v3.
V4_EXAMPLES=" cpuv4 "

build_one() {
	local name=$1 cpu=v3 dest="$out/$1"
	[[ $V4_EXAMPLES == *" $name "* ]] && cpu=v4
	mkdir -p "$dest"
	# The source path is given relative to examples/ so that BTF line info names
	# "./<name>/<name>.c" wherever the repository lives.
	"$CLANG" -O2 -g -target bpf -mcpu=$cpu -D__TARGET_ARCH_x86 \
		-I"$MULTIARCH_INC" -Wall -Werror \
		-fdebug-prefix-map="$here"=. -fno-ident \
		-c "$name/$name.c" -o "$dest/$name.o.tmp"
	# Drop DWARF (.debug_*): BTF and .BTF.ext carry everything the loader and libbpf read.
	"$STRIP" --strip-debug "$dest/$name.o.tmp"
	mv "$dest/$name.o.tmp" "$dest/$name.o"
	echo "built $dest/$name.o (-mcpu=$cpu)"
}

for src in */*.c; do
	name=${src%%/*}
	[[ $src == "$name/$name.c" ]] || continue
	if [[ -x $name/build.sh ]]; then
		"$name/build.sh" "$out/$name"
	else
		build_one "$name"
	fi
done
