#!/usr/bin/env bash
# ctest fixture: build the Go ttrpc peer into OUTDIR (a no-op when up to date).
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
timeout 600 "$(dirname "${BASH_SOURCE[0]}")/build.sh" "$1"
"$1/ttrpc-peer" --help >/dev/null 2>&1 || { echo "build-peer: $1/ttrpc-peer does not run" >&2; exit 1; }
