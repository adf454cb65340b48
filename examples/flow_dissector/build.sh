#!/usr/bin/env bash
# Rebuilds the flow dissector's eBPF object and the raw bytes of its programs from
# flow_dissector.c with Debian's clang-19 / llvm-objcopy-19.
#
#   examples/flow_dissector/build.sh [OUT_DIR]     (OUT_DIR defaults to this folder)
#
# Outputs:
#   flow_dissector.o        the ELF object: sections "flow", "flow_mem", "xdp", "license"
#   flow_dissector.bin      raw instructions of section "flow_mem" (r1 = packet, r2 = its length),
#                           the program `bpfkit run --mem-hex PACKET` runs
#   flow_dissector_ctx.bin  raw instructions of section "flow" (r1 -> {u64 data; u64 data_end}),
#                           the benchmarked program (rbpf's EbpfVmFixedMbuff layout, offsets 0/8)
#   flow_dissector_xdp.bin  raw instructions of section "xdp" (r1 -> struct xdp_md), for the kernel
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"
CLANG="${CLANG:-clang-19}"
OBJCOPY="${OBJCOPY:-llvm-objcopy-19}"

"$CLANG" -O2 -target bpf -mcpu=v3 -Wall -Wextra -Werror -c "$here/flow_dissector.c" \
    -o "$out/flow_dissector.o"
"$OBJCOPY" -O binary --only-section=flow_mem "$out/flow_dissector.o" "$out/flow_dissector.bin"
"$OBJCOPY" -O binary --only-section=flow "$out/flow_dissector.o" "$out/flow_dissector_ctx.bin"
"$OBJCOPY" -O binary --only-section=xdp "$out/flow_dissector.o" "$out/flow_dissector_xdp.bin"
