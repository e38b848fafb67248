#!/usr/bin/env bash
# End to end on another architecture's guest (image-builder/build.sh --arch ARCH):
# boot under qemu TCG (launch.sh --arch ARCH), Health, a container whose rootfs comes
# over virtio-fs, exec into it, DestroySandbox powers the VM off.  A short version
# of tests/e2e/e2e.sh (the riscv64 suite), for what differs per architecture: the
# kernel and machine, the static agent, busybox and the payload.
#
# Usage: tests/e2e/arch.sh ARCH    (x86_64 or aarch64; riscv64 works too)
# Needs: build/guest-ARCH (build.sh --arch ARCH), build/native/agent-ctl.
# Prints "arch-e2e ARCH: boot to ready X s" and "N passed, N failed".
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ARCH=${1:?usage: arch.sh ARCH}
GUEST=${KA_GUEST_DIR:-$SRC/build/guest-$ARCH}
[[ $ARCH != riscv64 || -n ${KA_GUEST_DIR:-} ]] || GUEST=$SRC/build/guest
CTL=${KA_AGENT_CTL_BIN:-$SRC/build/native/agent-ctl}

WORK=$(mktemp -d /tmp/ka-arch.XXXXXX)
SHARED=$WORK/shared
PIDFILE=$WORK/qemu.pid
passed=0 failed=0

cleanup() {
    if [[ -f $PIDFILE ]]; then
        "$SRC/image-builder/launch.sh" --stop --pidfile "$PIDFILE" >/dev/null 2>&1 || true
    fi
    if [[ $failed -gt 0 && -f $WORK/console.log ]]; then
        echo "--- guest console (last 40 lines)"
        tail -n 40 "$WORK/console.log"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check NAME WANT GOT: GOT must contain WANT
    if [[ $3 == *"$2"* ]]; then ok "$1"; else bad "$1: wanted '$2', got '$3'"; fi
}
ctl() { timeout 120 "$CTL" --addr "unix://$WORK/agent.sock" "$@"; }

[[ -f $GUEST/Image && -f $GUEST/initrd.img && -d $GUEST/ctr-rootfs ]] ||
    { echo "arch-e2e: $GUEST is incomplete: run image-builder/build.sh --arch $ARCH"; exit 1; }

# <shared>/<cid>/rootfs on the host is /run/kata-containers/shared/containers/<cid>/rootfs.
for cid in c1 c2; do
    mkdir -p "$SHARED/$cid"
    cp -a "$GUEST/ctr-rootfs" "$SHARED/$cid/rootfs"
done
guest_rootfs() { echo "/run/kata-containers/shared/containers/$1/rootfs"; }
bundle() { # bundle CID ARGS-JSON
    mkdir -p "$WORK/bundle-$1"
    sed -e "s|\"args\": \\[\"sh\"\\]|\"args\": $2|" \
        "$SRC/tools/agent-ctl/examples/config.json" >"$WORK/bundle-$1/config.json"
    echo "$WORK/bundle-$1"
}

echo "arch-e2e $ARCH: booting $GUEST"
launch_out=$("$SRC/image-builder/launch.sh" --arch "$ARCH" --agent-sock "$WORK/agent.sock" \
    --kernel "$GUEST/Image" --initrd "$GUEST/initrd.img" --virtiofsd "$GUEST/bin/virtiofsd" \
    --shared "$SHARED" --fs virtiofs --log "$WORK/console.log" --pidfile "$PIDFILE" \
    --background --wait-ready 180 --ctl "$CTL" 2>&1) || { echo "$launch_out"; bad "boot"; exit 1; }
ready=$(grep -o 'agent ready after [0-9.]* s' <<<"$launch_out" || true)
echo "arch-e2e $ARCH: boot to ready ${ready#agent ready after }"
ok "boot: $ready"
qpid=$(awk '$1 == "qemu" { print $2 }' "$PIDFILE")

check "Health" '"status": "SERVING"' "$(ctl check)"

out=$(ctl call CreateSandbox '{"hostname": "arch-pod", "sandbox_id": "arch",
  "storages": [{"driver": "virtio-fs", "source": "kataShared", "fstype": "virtiofs",
                "mount_point": "/run/kata-containers/shared/containers/"}]}' 2>&1) &&
    ok "CreateSandbox with the virtio-fs share" || bad "CreateSandbox: $out"

# A container from the virtio-fs rootfs: its arch's busybox and payload run.
b=$(bundle c1 '["sh", "-c", "echo out-$(hostname) $(uname -m); exit 3"]')
set +e
stdout=$(ctl run --guest-rootfs "$(guest_rootfs c1)" "$b" c1 2>"$WORK/c1.err")
rc=$?
set -e
check "container stdout (over virtio-fs, the sandbox hostname, the guest's arch)" "out-arch-pod $ARCH" "$stdout"
[[ $rc == 3 ]] && ok "container exit code 3" || bad "container exit code: $rc ($(cat "$WORK/c1.err"))"

b=$(bundle c2 '["sleep", "1000"]')
out=$(ctl run -d --guest-rootfs "$(guest_rootfs c2)" "$b" c2 2>&1) &&
    ok "a second container started" || bad "second container: $out"
check "exec" "uid=1000" "$(ctl exec -u 1000:1000 c2 -- id 2>&1)"
check "exec with a tty (the payload)" "tty" "$(ctl exec -t c2 -- ka-payload isatty 0 2>&1)"
ctl call SignalProcess '{"container_id": "c2", "signal": 9}' >/dev/null
check "WaitProcess after SIGKILL" '"status": 137' "$(ctl call WaitProcess '{"container_id": "c2"}')"

out=$(ctl call DestroySandbox 2>&1) && ok "DestroySandbox answered" || bad "DestroySandbox: $out"
for _ in $(seq 1 150); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$qpid" 2>/dev/null; then bad "the VM did not power off"; else ok "the VM powered off"; rm -f "$PIDFILE"; fi
grep -q "Kernel panic" "$WORK/console.log" && bad "kernel panic in the guest" || ok "no kernel panic"

echo "arch-e2e ($ARCH): $passed passed, $failed failed"
[[ $failed == 0 ]]
