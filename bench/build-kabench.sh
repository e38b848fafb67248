#!/usr/bin/env bash
# Compile bench/kabench.c against the native build's libraries (no CMake change).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
B=${1:-$ROOT/build/native}
OUT=$B/kabench
if [[ $OUT -nt $HERE/kabench.c && $OUT -nt $B/libka_core.a ]]; then exit 0; fi
cc -std=c11 -O2 -Wall -Wextra -Wno-unused-parameter -I"$ROOT/agent" -I"$B/proto-gen" \
  -o "$OUT" "$HERE/kabench.c" "$B/libka_core.a" "$B/libka_proto.a" -lprotobuf-c
