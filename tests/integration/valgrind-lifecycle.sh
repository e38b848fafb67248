#!/usr/bin/env bash
# One whole container lifecycle with the agent under valgrind: zero errors and zero
# leaks (definite, indirect, possible) or the test fails. The agent runs in its own
# mount namespace with a private /run, as the other integration tests run it.
# Usage: valgrind-lifecycle.sh AGENT AGENT-CTL ROOTFS
set -euo pipefail
AGENT=$1 CTL=$2 ROOTFS=$(realpath "$3")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/ka-vg.XXXXXX)
trap 'kill $vg_pid 2>/dev/null || true; rm -rf "$WORK"' EXIT
SOCK=$WORK/agent.sock

unshare -m sh -c "mount --make-rprivate / && mount -t tmpfs tmpfs /run &&
  exec valgrind --quiet --error-exitcode=99 --leak-check=full \
    --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible \
    --trace-children=no --child-silent-after-fork=yes \
    '$AGENT' --cmdline-file /dev/null --server-addr unix://$SOCK" > "$WORK/agent.log" 2>&1 &
vg_pid=$!
for _ in $(seq 1 300); do [[ -S $SOCK ]] && break; sleep 0.1; done
export KATA_AGENT_ADDR=unix://$SOCK
"$CTL" --timeout 60 check >/dev/null

mkdir -p "$WORK/bundle"
sed -e 's|"args": \[\"sh\"\]|"args": ["sh", "-c", "echo lifecycle; exit 7"]|' -e '/"rlimits"/d' \
    "$SRC/tools/agent-ctl/examples/config.json" > "$WORK/bundle/config.json"
ln -s "$ROOTFS" "$WORK/bundle/rootfs"
set +e
out=$("$CTL" --timeout 120 run --sandbox "$WORK/bundle" vg1 2>&1)
rc=$?
set -e
[[ $rc == 7 && $out == *lifecycle* ]] || { echo "FAIL: run gave $rc: $out"; cat "$WORK/agent.log"; exit 1; }
"$CTL" --timeout 60 exec --help >/dev/null 2>&1 || true
"$CTL" --timeout 60 call DestroySandbox >/dev/null

set +e
wait $vg_pid
status=$?
set -e
vg_errors=$(grep -v '^{' "$WORK/agent.log" || true)
if [[ $status != 0 || -n $vg_errors ]]; then
    echo "FAIL: valgrind exit $status"
    echo "$vg_errors"
    exit 1
fi
echo "valgrind: one lifecycle, 0 errors, 0 leaks"
