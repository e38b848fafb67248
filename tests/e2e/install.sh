#!/usr/bin/env bash
# End to end: the Kata install tree. Packages the guest (image-builder/package.sh),
# installs the tarball into a temporary prefix (install.sh, twice: idempotent),
# checks the installed configuration files (tests/kata/test_kata_config.py), boots the
# guest through them as the runtime would (launch.sh --kata-config): on riscv64 the Go
# runtime's initrd configuration and runtime-rs' image configuration (cgroup v2), on
# x86_64 and aarch64 the Go runtime's initrd configuration (cgroup v2 there); in
# each, Health, a sandbox with the virtio-fs share, a container, power-off; then
# uninstalls.
#
# Usage: tests/e2e/install.sh [riscv64|x86_64|aarch64]   (default riscv64)
# Needs: image-builder/build.sh [--arch A] done (build/guest or build/guest-A), that
# arch's agent build (build/riscv64, build/x86_64-static, build/aarch64),
# build/native/agent-ctl.
# shellcheck disable=SC2015,SC2016  # `A && ok || bad` as in e2e.sh; $(...) meant for the guest
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ARCH=${1:-riscv64}
case $ARCH in
riscv64) sfx="" file_arch="UCB RISC-V" kname=vmlinux ;;
x86_64) sfx=-x86_64 file_arch="x86-64" kname=vmlinuz ;;
aarch64) sfx=-aarch64 file_arch="ARM aarch64" kname=vmlinux ;;
*) echo "usage: $0 [riscv64|x86_64|aarch64]" >&2; exit 2 ;;
esac
GUEST=${KA_GUEST_DIR:-$SRC/build/guest$sfx}
CTL=${KA_AGENT_CTL_BIN:-$SRC/build/native/agent-ctl}
VERSION=$(sed -n 's/^project(kata-agent-c VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")

# shellcheck source=tests/e2e/lib.sh
. "$SRC/tests/e2e/lib.sh"
e2e_setup install
OUT=$WORK/pkg
PREFIX=$WORK/opt/kata

# --- the tarball --------------------------------------------------------------------
out=$("$SRC/image-builder/package.sh" --arch "$ARCH" --no-build --guest "$GUEST" --out "$OUT" 2>&1) ||
    { echo "$out"; bad "package.sh"; exit 1; }
TARBALL=$OUT/kata-agent-c-static-$VERSION-$ARCH.tar.zst
[[ -f $TARBALL ]] && ok "package.sh made $(basename "$TARBALL")" || { bad "no $TARBALL"; exit 1; }
listing=$(zstd -q -dc "$TARBALL" | tar -tvf -)
for p in ./opt/kata/bin/kata-agent ./opt/kata/libexec/virtiofsd \
    "./opt/kata/share/kata-containers/$kname.container -> $kname-" \
    "./opt/kata/share/kata-containers/kata-containers-initrd.img -> kata-agent-c-$VERSION.initrd" \
    "./opt/kata/share/kata-containers/kata-containers.img -> kata-agent-c-$VERSION.image" \
    ./opt/kata/share/defaults/kata-containers/configuration-qemu.toml \
    "./opt/kata/share/defaults/kata-containers/configuration.toml -> configuration-qemu.toml" \
    "./opt/kata/share/defaults/kata-containers/runtime-rs/configuration.toml -> configuration-qemu-runtime-rs.toml" \
    ./opt/kata/share/defaults/kata-containers/runtime-rs/configuration-qemu-runtime-rs.toml \
    ./opt/kata/share/kata-agent-c/manifest; do
    check "the tarball holds $p" "$p" "$listing"
done
stray=$(awk '$6 !~ /^\.\/opt(\/|$)/ || $2 != "0/0" { print }' <<<"$listing")
[[ -z $stray ]] && ok "every entry is under ./opt, owned by 0/0" || bad "tarball entries: $stray"
manifest=$(cat "$OUT/kata-agent-c-static-$VERSION-$ARCH.manifest")
for k in "arch $ARCH" "agent $VERSION" "kernel 6." "busybox 1:1." "virtiofsd 1." "sha256 "; do
    check "the manifest names '$k'" $'\n'"$k" "$manifest"
done
check "bin/kata-agent is a static $ARCH binary" "ELF 64-bit LSB executable, $file_arch" \
    "$(file -L -b "$OUT/tree/opt/kata/bin/kata-agent" | grep 'statically linked')"
check "libexec/virtiofsd is $ARCH's" "ELF 64-bit LSB pie executable, $file_arch" \
    "$(file -L -b "$OUT/tree/opt/kata/libexec/virtiofsd.d/virtiofsd")"

# --- install, twice, and the configuration files ----------------------------------------
out=$("$SRC/image-builder/install.sh" --tarball "$TARBALL" --prefix "$PREFIX" 2>&1) &&
    ok "install.sh --prefix $PREFIX" || bad "install.sh: $out"
snapshot() { (cd "$PREFIX" && find . -printf '%p %y %s %T@ %l\n' | LC_ALL=C sort); }
before=$(snapshot)
out=$("$SRC/image-builder/install.sh" --tarball "$TARBALL" --prefix "$PREFIX" 2>&1) || bad "install.sh again: $out"
check "a second install changes nothing" "up to date" "$out"
[[ $before == "$(snapshot)" ]] && ok "... not a file touched" || bad "the second install changed the tree"
out=$(python3 "$SRC/tests/kata/test_kata_config.py" --installed "$PREFIX" 2>&1) &&
    ok "the installed configuration files (test_kata_config.py: $(grep -c '^ok' <<<"$out") checks)" ||
    bad "test_kata_config.py --installed: $(grep -v '^ok' <<<"$out")"
CONF=$PREFIX/share/defaults/kata-containers

# --- boot through a configuration: Health, a sandbox, a container, power-off ------------
mkdir -p "$SHARED"
launch_out="" ctr_out=""
boot() { # boot NAME CONFIG LAUNCH-WANT CONTAINER-ARGS-JSON CONTAINER-WANT
    local name=$1 conf=$2 cid=c-$1
    echo "install: booting through $(basename "$conf")"
    rm -rf "${SHARED:?}/$cid"
    mkdir -p "$SHARED/$cid"
    cp -a "$GUEST/ctr-rootfs" "$SHARED/$cid/rootfs"
    launch_vm "$name: boot" --arch "$ARCH" --accel tcg --kata-config "$conf" \
        --shared "$SHARED" --wait-ready 120 --cmdline agent.log=debug || return 0
    ok "$name: boot ($(grep -o 'agent ready after [0-9.]* s' <<<"$launch_out"))"
    check "$name: the launcher boots the configuration's guest" "$3" "$launch_out"
    check "$name: Health" '"status": "SERVING"' "$(ctl check)"
    out=$(ctl call CreateSandbox "{\"hostname\": \"pod-$name\", \"sandbox_id\": \"$name\",
      \"storages\": [{\"driver\": \"virtio-fs\", \"source\": \"kataShared\", \"fstype\": \"virtiofs\",
        \"mount_point\": \"/run/kata-containers/shared/containers/\"}]}" 2>&1) &&
        ok "$name: CreateSandbox with the virtio-fs share" || bad "$name: CreateSandbox: $out"
    local b
    b=$(bundle "$cid" "$4")
    ctr_out=$(ctl run --guest-rootfs "$(guest_rootfs "$cid")" "$b" "$cid" 2>&1 || true)
    check "$name: a container runs" "$5" "$ctr_out"
    out=$(ctl call DestroySandbox 2>&1) && ok "$name: DestroySandbox" || bad "$name: DestroySandbox: $out"
    expect_power_off "$name: " 100 || true
    stop_vm
    if grep -q "Kernel panic" "$WORK/console.log"; then bad "$name: kernel panic"; fi
}
if [[ $ARCH == riscv64 ]]; then
boot go-initrd "$CONF/configuration-qemu.toml" \
    "initrd $PREFIX/share/kata-containers/kata-containers-initrd.img" \
    '["sh", "-c", "echo out-$(hostname)"]' "out-pod-go-initrd"
check "go-initrd: the Go runtime's riscv64 parameters" "cmdline: numa=off quiet console=ttyS0 panic=1" "$launch_out"
else
# x86_64 and aarch64: the Go runtime's own parameters for the arch, the configuration's
# cgroup v2 ones (Kata 4.1's KERNELPARAMS there) at the end, and the container sees v2.
boot go-initrd "$CONF/configuration-qemu.toml" \
    "initrd $PREFIX/share/kata-containers/kata-containers-initrd.img" \
    '["sh", "-c", "echo out-$(hostname); cat /proc/self/mountinfo"]' "out-pod-go-initrd"
check "go-initrd: the kernel is the tree's $kname.container" \
    "kernel $PREFIX/share/kata-containers/$kname.container" "$launch_out"
if [[ $ARCH == x86_64 ]]; then
    want="cmdline: tsc=reliable no_timer_check rcupdate.rcu_expedited=1 i8042.direct=1"
    want+=" i8042.dumbkbd=1 i8042.nopnp=1 i8042.noaux=1 noreplace-smp reboot=k cryptomgr.notests"
    want+=" net.ifnames=0 pci=lastbus=0 quiet console=ttyS0 panic=1"
else
    want="cmdline: iommu.passthrough=0 quiet console=ttyAMA0 panic=1"
fi
check "go-initrd: the Go runtime's $ARCH parameters" "$want" "$launch_out"
check "go-initrd: the configuration's cgroup v2 parameters" \
    "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 agent.server_addr=" "$launch_out"
check "go-initrd: the container's cgroups are v2" " - cgroup2 " "$ctr_out"
fi
# riscv64 only (x86_64 and aarch64 have one boot each: CI time): runtime-rs' image variant.
if [[ $ARCH == riscv64 ]]; then
    boot rs-image "$CONF/runtime-rs/configuration-qemu-runtime-rs-image.toml" \
        "image $PREFIX/share/kata-containers/kata-containers.img" \
        '["sh", "-c", "echo out-$(hostname); cat /proc/self/mountinfo"]' "out-pod-rs-image"
    check "rs-image: root read-only from partition 1, cgroup v2 asked for (runtime-rs' parameters)" \
        "root=/dev/vda1 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4 console=ttyS0 quiet cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" \
        "$launch_out"
    check "rs-image: the container's cgroups are v2" " - cgroup2 " "$ctr_out"
fi

# --- uninstall: ours goes, anything else stays ----------------------------------------
echo keep >"$PREFIX/share/kata-containers/not-ours"
out=$("$SRC/image-builder/install.sh" --uninstall --prefix "$PREFIX" 2>&1) && ok "install.sh --uninstall" ||
    bad "uninstall: $out"
left=$(cd "$PREFIX" && find . ! -type d)
[[ $left == ./share/kata-containers/not-ours ]] && ok "uninstall removed every file of ours and nothing else" ||
    bad "after uninstall: $left"

echo "install: $passed passed, $failed failed"
[[ $failed == 0 ]]
