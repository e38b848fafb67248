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

# shellcheck source=tests/e2e/lib.sh
. "$SRC/tests/e2e/lib.sh"
e2e_setup arch

[[ -f $GUEST/Image && -f $GUEST/initrd.img && -d $GUEST/ctr-rootfs ]] ||
    { echo "arch-e2e: $GUEST is incomplete: run image-builder/build.sh --arch $ARCH"; exit 1; }

# <shared>/<cid>/rootfs on the host is guest_rootfs <cid> in the guest.
for cid in c1 c2; do
    mkdir -p "$SHARED/$cid"
    cp -a "$GUEST/ctr-rootfs" "$SHARED/$cid/rootfs"
done

echo "arch-e2e $ARCH: booting $GUEST"
launch_vm boot --arch "$ARCH" --kernel "$GUEST/Image" --initrd "$GUEST/initrd.img" \
    --virtiofsd "$GUEST/bin/virtiofsd" --shared "$SHARED" --fs virtiofs --wait-ready 180 || exit 1
ready=$(grep -o 'agent ready after [0-9.]* s' <<<"$launch_out" || true)
echo "arch-e2e $ARCH: boot to ready ${ready#agent ready after }"
ok "boot: $ready"

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
expect_power_off "" 150 && rm -f "$PIDFILE"
grep -q "Kernel panic" "$WORK/console.log" && bad "kernel panic in the guest" || ok "no kernel panic"

echo "arch-e2e ($ARCH): $passed passed, $failed failed"
[[ $failed == 0 ]]
