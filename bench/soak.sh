#!/usr/bin/env bash
# Soak: N create/start/wait/remove cycles of a `true` container against an
# isolated native agent (own mount namespace, tmpfs /run), printing the agent's
# VmRSS and open fd count at the start and the end, and cycles per second.
# Root needed. Not a test: it prints figures. See bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

BUILD_DIR=$ROOT/build/native
CYCLES=10000
AGENT=
ROOTFS=

usage() {
  cat <<EOF
Usage: bench/soak.sh [options]
  --cycles N        create/start/wait/remove cycles (default $CYCLES)
  --build-dir DIR   where libka_core.a, libka_proto.a, proto-gen and kata-agent are
                    (default build/native: cmake --preset native && cmake --build --preset native)
  --agent FILE      the kata-agent to soak (default BUILD_DIR/kata-agent)
  --rootfs DIR      container rootfs (default BUILD_DIR/test-rootfs)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --cycles) CYCLES=$2; shift 2;;
    --build-dir) BUILD_DIR=$2; shift 2;;
    --agent) AGENT=$2; shift 2;;
    --rootfs) ROOTFS=$2; shift 2;;
    -h|--help) usage; exit 0;;
    *) echo "soak.sh: unknown option $1" >&2; usage >&2; exit 2;;
  esac
done
[[ $CYCLES =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: --cycles wants a positive number" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "soak.sh: needs root (containers, mount namespace)" >&2; exit 1; }
AGENT=${AGENT:-$BUILD_DIR/kata-agent}
ROOTFS=${ROOTFS:-$BUILD_DIR/test-rootfs}
[[ -x $AGENT ]] || { echo "soak.sh: no $AGENT (cmake --preset native && cmake --build --preset native)" >&2; exit 1; }
[[ -d $ROOTFS ]] || { echo "soak.sh: no rootfs $ROOTFS" >&2; exit 1; }
for f in libka_core.a libka_proto.a proto-gen/agent.pb-c.h; do
  [[ -e $BUILD_DIR/$f ]] || { echo "soak.sh: no $BUILD_DIR/$f" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/ka-soak-XXXXXX)
AGENT_PID=
cleanup() {
  if [[ -n $AGENT_PID ]] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The client, against the project's static libraries.
SOAK=$WORK/soak
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Ulinux \
  -I"$ROOT/agent" -I"$BUILD_DIR/proto-gen" \
  "$HERE/soak.c" "$BUILD_DIR/libka_core.a" "$BUILD_DIR/libka_proto.a" \
  -lprotobuf-c -o "$SOAK"

# The agent in its own mount namespace with a fresh /run (as the integration
# tests run it): containers and /run/kata-containers stay out of the host.
SOCK=$WORK/agent.sock
: >"$WORK/cmdline"
unshare --mount --propagation private -- sh -c \
  'mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run && exec "$0" --cmdline-file="$1" --server-addr="unix://$2"' \
  "$AGENT" "$WORK/cmdline" "$SOCK" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 200); do
  [[ -S $SOCK ]] && break
  kill -0 "$AGENT_PID" 2>/dev/null || { echo "soak.sh: the agent exited:" >&2; tail "$WORK/agent.log" >&2; exit 1; }
  sleep 0.05
done
[[ -S $SOCK ]] || { echo "soak.sh: the agent does not listen on $SOCK" >&2; exit 1; }

echo "soak: $CYCLES cycles of create/start/wait/remove ('true'), agent $AGENT"
if ! "$SOAK" "unix://$SOCK" "$AGENT_PID" "$ROOTFS" "$CYCLES"; then
  echo "soak.sh: failed; agent log tail:" >&2
  tail -n 20 "$WORK/agent.log" >&2
  exit 1
fi
kill -TERM "$AGENT_PID"
if ! wait "$AGENT_PID"; then
  echo "soak.sh: the agent did not exit cleanly" >&2
  exit 1
fi
AGENT_PID=
