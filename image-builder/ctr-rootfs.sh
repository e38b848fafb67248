#!/usr/bin/env bash
# image-builder/ctr-rootfs.sh: a container rootfs for end-to-end tests, for IB_ARCH
# (riscv64 unless build.sh --arch set it; the text below says riscv64 for short).
#
# Usage: ctr-rootfs.sh [--busybox BIN] [--payload BIN] OUTDIR
#
# The same layout tests/rootfs/make-rootfs.sh makes for the x86 integration tests
# (that script does the layout; this one feeds it riscv64 binaries):
#   /bin/busybox + applet links, /usr/bin/ka-payload + /payload/bin/<cmd> links,
#   /etc/passwd, /etc/group, /etc/hostname, ..., empty /proc /sys /dev /run /tmp
# with Debian 13's riscv64 busybox-static (1.37) and the static test payload
# (tests/payload/payload.c) compiled for riscv64 with the flags of
# cmake/riscv64-linux-gnu.cmake (cached in <cache>/image/payload).
#   --busybox, --payload   use these static riscv64 binaries instead
# Applet and command lists come from the binaries themselves, run under
# qemu-riscv64-static. A stamp beside OUTDIR makes a second run a no-op.
# Put it where the agent sees a container rootfs, e.g. SHARED/<cid>/rootfs for
# /run/kata-containers/shared/containers/<cid>/rootfs in the guest.
set -euo pipefail
IB_NAME=ctr-rootfs
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/build.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
busybox="" payload="" out=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --busybox) busybox=${2:?}; shift ;;
    --payload) payload=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [[ -z $out ]] || { usage >&2; exit 2; }; out=$1 ;;
    esac
    shift
done
[[ -n $out ]] || { usage >&2; exit 2; }
mkdir -p "$(dirname -- "$out")"
out=$(realpath -m -- "$out")
make_rootfs=$IB_SRC/tests/rootfs/make-rootfs.sh
[[ -f $make_rootfs ]] || ib_die "$make_rootfs is missing"

# The payload for x86_64: the host gcc and Debian 12's static glibc, as the
# x86_64-static preset builds the agent.
build_payload_x86_64() {
    local src=$IB_SRC/tests/payload/payload.c dir=$IB_CACHE/payload-x86_64 key
    ib_need gcc gcc
    local -a cmd=(gcc -std=gnu11 -Os -DNDEBUG -Wall -Wextra -Werror -Ulinux -D_GNU_SOURCE -static -s)
    key=$(ib_key "$src" "$(gcc --version | head -n1)" "${cmd[@]}")
    if ! ib_stamp_ok "$dir/ka-payload" "$key"; then
        mkdir -p "$dir"
        ib_log "compiling tests/payload/payload.c for x86_64 (static)"
        "${cmd[@]}" -o "$dir/ka-payload.tmp" "$src" -lm
        mv -f "$dir/ka-payload.tmp" "$dir/ka-payload"
        ib_stamp_write "$dir/ka-payload" "$key"
    fi
    echo "$dir/ka-payload"
}

# The payload for aarch64: as the aarch64 preset builds the agent (Debian 13 arm64
# sysroot, Debian 12's cross gcc and linker; see cmake/aarch64-linux-gnu.cmake).
build_payload_aarch64() {
    local src=$IB_SRC/tests/payload/payload.c dir=$IB_CACHE/payload-aarch64 sr lib inc key
    ib_need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
    bash "$IB_SRC/cmake/fetch-sysroot-arm64.sh" "$IB_CACHE_ROOT" >&2
    sr=$IB_CACHE_ROOT/sysroot-aarch64 lib=$IB_CACHE_ROOT/sysroot-aarch64/usr/lib/aarch64-linux-gnu
    inc=$(aarch64-linux-gnu-gcc -print-file-name=include)
    local -a cmd=(aarch64-linux-gnu-gcc --sysroot="$sr" -nostdinc -isystem "$inc"
        -isystem "$sr/usr/include/aarch64-linux-gnu" -isystem "$sr/usr/include"
        -std=gnu11 -Os -DNDEBUG -Wall -Wextra -Werror -Ulinux -D_GNU_SOURCE
        -static -B"$lib/" -L"$lib" -s)
    key=$(ib_key "$src" "$sr/.stamp" "$(aarch64-linux-gnu-gcc --version | head -n1)" "${cmd[@]}")
    if ! ib_stamp_ok "$dir/ka-payload" "$key"; then
        mkdir -p "$dir"
        ib_log "compiling tests/payload/payload.c for aarch64"
        "${cmd[@]}" -o "$dir/ka-payload.tmp" "$src" -lm
        mv -f "$dir/ka-payload.tmp" "$dir/ka-payload"
        ib_stamp_write "$dir/ka-payload" "$key"
    fi
    echo "$dir/ka-payload"
}

# The payload, cross-compiled like the agent (static glibc from the Debian 13
# sysroot, whose linker is binutils 2.44; see cmake/riscv64-linux-gnu.cmake).
build_payload() {
    [[ $IB_ARCH == riscv64 ]] || { "build_payload_$IB_ARCH"; return; }
    local src=$IB_SRC/tests/payload/payload.c dir=$IB_CACHE/payload sr lib inc key
    ib_need riscv64-linux-gnu-gcc gcc-riscv64-linux-gnu
    bash "$IB_SRC/cmake/fetch-sysroot.sh" "$IB_CACHE_ROOT" >&2
    sr=$IB_CACHE_ROOT/sysroot lib=$IB_CACHE_ROOT/sysroot/usr/lib/riscv64-linux-gnu
    inc=$(riscv64-linux-gnu-gcc -print-file-name=include)
    local -a cmd=(riscv64-linux-gnu-gcc --sysroot="$sr" -nostdinc -isystem "$inc"
        -isystem "$sr/usr/include/riscv64-linux-gnu" -isystem "$sr/usr/include"
        -std=gnu11 -Os -DNDEBUG -Wall -Wextra -Werror -Ulinux -D_GNU_SOURCE
        -static -B"$lib/" -L"$lib" -B"$IB_CACHE_ROOT/bin/" -s)
    key=$(ib_key "$src" "$IB_CACHE_ROOT/stamp" "$(riscv64-linux-gnu-gcc --version | head -n1)" "${cmd[@]}")
    if ! ib_stamp_ok "$dir/ka-payload" "$key"; then
        mkdir -p "$dir"
        ib_log "compiling tests/payload/payload.c for riscv64"
        "${cmd[@]}" -o "$dir/ka-payload.tmp" "$src" -lm
        mv -f "$dir/ka-payload.tmp" "$dir/ka-payload"
        ib_stamp_write "$dir/ka-payload" "$key"
    fi
    echo "$dir/ka-payload"
}
[[ -n $busybox ]] || busybox=$(ib_busybox)
[[ -n $payload ]] || payload=$(build_payload)
busybox=$(realpath -e -- "$busybox")
payload=$(realpath -e -- "$payload")

key=$(ib_key "$IB_DIR/ctr-rootfs.sh" "$IB_DIR/build.sh" "$make_rootfs" "$busybox" "$payload")
if ib_stamp_ok "$out" "$key" && [[ -x $out/bin/busybox ]]; then
    ib_log "up to date: $out ($(ib_size "$out"))"
    exit 0
fi
ib_stamp_clear "$out"

# make-rootfs.sh runs "$busybox --list" and "$payload list" and copies both files
# in: give it wrappers that run the binaries (under qemu-user for another arch), then
# put the real binaries in place of the copied wrappers.
runner=""
if [[ $(uname -m) != "$IB_ARCH" ]]; then
    runner=qemu-$IB_ARCH-static
    ib_need "$runner" qemu-user-static
fi
wrap=$(mktemp -d)
trap 'rm -rf -- "$wrap"' EXIT
for w in busybox:"$busybox" ka-payload:"$payload"; do
    printf '#!/bin/sh\nexec %s %q "$@"\n' "$runner" "${w#*:}" >"$wrap/${w%%:*}"
    chmod 0755 "$wrap/${w%%:*}"
done
KA_BUSYBOX=$wrap/busybox bash "$make_rootfs" "$out" "$wrap/ka-payload"
install -m 0755 -- "$busybox" "$out/bin/busybox"
install -m 0755 -- "$payload" "$out/usr/bin/ka-payload"
file -b "$out/bin/busybox" "$out/usr/bin/ka-payload" 2>/dev/null | grep -qv "$IB_FILE_RE" &&
    ib_die "the rootfs binaries are not $IB_ARCH"
ib_stamp_write "$out" "$key"
ib_log "wrote $out: $(ib_size "$out") ($(find "$out" | wc -l) entries; busybox $(ib_size "$busybox")," \
    "ka-payload $(ib_size "$payload"))"
