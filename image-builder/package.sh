#!/usr/bin/env bash
# image-builder/package.sh: the guest as a Kata install tree and a release tarball.
#
# Usage: image-builder/package.sh [--arch riscv64|x86_64|aarch64] [--no-build] [--guest DIR]
#                                 [--out DIR] [BUILD-OPTION]...
#
#   --arch A     the guest's architecture (default riscv64); passed on to build.sh
#   --no-build   use --guest as it is (default: run build.sh first, a no-op when
#                everything is up to date; other options are passed on to it, e.g.
#                --no-agent-build)
#   --guest DIR  build.sh's output (default build/guest, or build/guest-A)
#   --out DIR    default build/kata-static (riscv64) or build/kata-static-A
#
# Makes, in the layout of Kata's own static release (kata-static-<ver>-<arch>.tar.zst,
# everything under /opt/kata):
#   OUT/tree/opt/kata/                           the install tree (below)
#   OUT/kata-agent-c-static-<ver>-<A>.tar.zst    that tree, ./opt/kata/...
#   OUT/kata-agent-c-static-<ver>-<A>.manifest   a copy of its manifest
#
#   bin/kata-agent                        the static agent (for osbuilder's AGENT_SOURCE_BIN)
#   libexec/virtiofsd                     Debian 13's virtiofsd for A, run through its own
#   libexec/virtiofsd.d/                  loader and libraries (needs nothing from the host)
#   share/kata-containers/
#     vmlinux-<kver>, vmlinux.container ->  the kernel (riscv64 and aarch64 boot the flat
#                                           Image, which Kata names vmlinux)
#     vmlinuz-<kver>, vmlinuz.container ->  x86_64: the bzImage (Kata's name for a
#                                           compressed kernel; the configuration names it)
#     kata-agent-c-<ver>.initrd, kata-containers-initrd.img ->   /init = the agent
#     kata-agent-c-<ver>.image, kata-containers.img ->           ext4 in partition 1,
#                                                                /sbin/init = the agent
#   share/defaults/kata-containers/       the runtime configurations (kata-config.sh)
#   share/kata-agent-c/                   manifest, VERSION, install.sh, kata-config.sh and
#                                         the template (to regenerate for another prefix)
#
# The manifest names the versions (agent, kernel, busybox, virtiofsd) and has the
# SHA256 of every file; `install.sh` checks them. The same guest files give the same tarball
# (file times from the last commit).
set -euo pipefail
IB_NAME=package
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/build.sh"

PREFIX=/opt/kata

# A 512-byte MBR with one Linux partition from sector 2048 over SECTORS sectors, as
# osbuilder's images have (the runtime boots them with root=/dev/vda1). Written by
# hand so that no partitioning tool (or loop device) is needed.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
write_mbr() {   # FILE SECTORS
    local f=$1 sectors=$2
    head -c 440 /dev/zero >"$f"
    # shellcheck disable=SC2059  # the format is the bytes
    {
        printf "$(le32 0x6174616b)"                 # disk signature "kata"
        printf '\x00\x00'
        printf '\x00\xfe\xff\xff\x83\xfe\xff\xff'   # not bootable, CHS unused, type 83
        printf "$(le32 2048)$(le32 "$sectors")"
        head -c 48 /dev/zero                        # partitions 2-4 empty
        printf '\x55\xaa'
    } >>"$f"
}

# Debian 13's virtiofsd for IB_ARCH with its loader and the libraries it needs
# (DT_NEEDED, transitively) into DIR/virtiofsd.d, and DIR/virtiofsd, a wrapper the
# runtime runs like the binary. Prints the virtiofsd package version.
install_virtiofsd() {   # DIR
    local dir=$1 root=$IB_CACHE/virtiofsd-$IB_DEB_ARCH lib bin ld readelf n f
    case $IB_ARCH in
    riscv64) ld=ld-linux-riscv64-lp64d.so.1 readelf=riscv64-linux-gnu-readelf ;;
    x86_64) ld=ld-linux-x86-64.so.2 readelf=readelf ;;
    aarch64) ld=ld-linux-aarch64.so.1 readelf=readelf ;;
    esac
    if [[ $readelf == readelf ]]; then
        ib_need readelf binutils
    else
        ib_need "$readelf" "binutils-${readelf%-readelf}"
    fi
    # The same package list as virtiofsd.sh's: for amd64 both share one extraction.
    ib_debs "$IB_DEB_ARCH" "$root" virtiofsd libc6 libcap-ng0 libseccomp2 libgcc-s1
    lib=$root/usr/lib/$IB_ARCH-linux-gnu
    bin=$root/usr/libexec/virtiofsd
    [[ -x $bin ]] || ib_die "no usr/libexec/virtiofsd in Debian's $IB_DEB_ARCH virtiofsd"
    mkdir -p "$dir/virtiofsd.d"
    cp -- "$bin" "$dir/virtiofsd.d/virtiofsd"
    cp -L -- "$lib/$ld" "$dir/virtiofsd.d/$ld"
    local -a todo=("$bin")
    declare -A seen=()
    while [[ ${#todo[@]} -gt 0 ]]; do
        f=${todo[0]}
        todo=("${todo[@]:1}")
        for n in $("$readelf" -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            [[ -z ${seen[$n]:-} && $n != "$ld" ]] || continue
            seen[$n]=1
            [[ -f $lib/$n ]] || ib_die "virtiofsd needs $n, not in the packages"
            cp -L -- "$lib/$n" "$dir/virtiofsd.d/$n"
            todo+=("$lib/$n")
        done
    done
    # shellcheck disable=SC2016  # the wrapper's own variables
    printf '%s\n' '#!/bin/sh' \
        "# kata-agent-c: Debian 13 virtiofsd for $IB_ARCH, run with its own loader and" \
        '# libraries (glibc 2.39 or later), so it needs nothing from the host.' \
        'd=$(dirname "$(readlink -f "$0")")/virtiofsd.d' \
        "exec \"\$d/$ld\" --inhibit-cache --library-path \"\$d\" \"\$d/virtiofsd\" \"\$@\"" \
        >"$dir/virtiofsd"
    chmod 0755 "$dir/virtiofsd" "$dir/virtiofsd.d/virtiofsd" "$dir/virtiofsd.d/$ld"
    awk '$1 == "virtiofsd" { print $3 }' "$root/.manifest"
}

main() {
    local build=1 guest="" out="" arch=riscv64
    local -a bargs=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --arch) arch=${2:?--arch riscv64|x86_64|aarch64}; shift ;;
        --no-build) build=0 ;;
        --guest) guest=${2:?--guest DIR}; shift ;;
        --out) out=${2:?--out DIR}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) bargs+=("$1") ;;
        esac
        shift
    done
    ib_set_arch "$arch"
    ARCH=$IB_ARCH
    local sfx=""
    [[ $ARCH == riscv64 ]] || sfx=-$ARCH
    guest=${guest:-$IB_SRC/build/guest$sfx} out=${out:-$IB_SRC/build/kata-static$sfx}
    if [[ $build == 1 ]]; then
        "$IB_DIR/build.sh" --arch "$ARCH" --out "$guest" ${bargs[@]+"${bargs[@]}"}
    elif [[ ${#bargs[@]} -gt 0 ]]; then
        usage >&2
        exit 2
    fi
    ib_need zstd zstd
    local version agent=$IB_SRC/build/$IB_PRESET/kata-agent.stripped kver f kname=vmlinux
    version=$(sed -n 's/^project(kata-agent-c VERSION \([0-9.]*\).*/\1/p' "$IB_SRC/CMakeLists.txt")
    [[ -n $version ]] || ib_die "no project VERSION in CMakeLists.txt"
    for f in Image initrd.img rootfs.img; do
        [[ -f $guest/$f ]] || ib_die "$guest/$f is missing (run image-builder/build.sh)"
    done
    [[ -x $agent ]] || ib_die "$agent is missing (cmake --build --preset $IB_PRESET)"
    if [[ $ARCH == x86_64 ]]; then
        # A bzImage: its version is in the setup header, not a "Linux version" string.
        ib_need file file
        kname=vmlinuz
        kver=$(file -L -b "$guest/Image" | sed -n 's/.*bzImage, version \([0-9][^ ]*\).*/\1/p')
    else
        kver=$(grep -a -o -m1 'Linux version [0-9][^ ]*' "$guest/Image" | head -n1 | cut -d' ' -f3)
    fi
    [[ -n $kver ]] || ib_die "no kernel version found in $guest/Image"
    mkdir -p "$out"
    out=$(realpath -- "$out")
    local name=kata-agent-c-static-$version-$ARCH
    local stage=$out/tree root=$out/tree$PREFIX kc=$out/tree$PREFIX/share/kata-containers
    local epoch
    epoch=$(git -C "$IB_SRC" log -1 --format=%ct 2>/dev/null || echo 0)

    ib_log "== tree: $stage$PREFIX"
    rm -rf -- "$stage"
    mkdir -p "$root/bin" "$root/libexec" "$kc" "$root/share/kata-agent-c"
    install -m 0755 "$agent" "$root/bin/kata-agent"
    local vfsd_ver
    vfsd_ver=$(install_virtiofsd "$root/libexec")
    install -m 0644 "$(realpath "$guest/Image")" "$kc/$kname-$kver"
    ln -s "$kname-$kver" "$kc/$kname.container"
    install -m 0644 "$guest/initrd.img" "$kc/kata-agent-c-$version.initrd"
    ln -s "kata-agent-c-$version.initrd" "$kc/kata-containers-initrd.img"
    # The image: rootfs.img (ext4) as partition 1 behind a 1 MiB MBR header, sparse.
    local img=$kc/kata-agent-c-$version.image fs_bytes
    fs_bytes=$(stat -c %s "$guest/rootfs.img")
    ((fs_bytes % 512 == 0)) || ib_die "$guest/rootfs.img is not a whole number of sectors"
    write_mbr "$img" $((fs_bytes / 512))
    truncate -s 1M "$img"
    dd if="$guest/rootfs.img" of="$img" bs=1M seek=1 conv=sparse,notrunc status=none
    chmod 0644 "$img"
    ln -s "kata-agent-c-$version.image" "$kc/kata-containers.img"
    "$IB_DIR/kata-config.sh" --arch "$ARCH" --version "$version" --prefix "$PREFIX" "$root/share/defaults/kata-containers"
    install -m 0755 "$IB_DIR/install.sh" "$IB_DIR/kata-config.sh" "$root/share/kata-agent-c/"
    install -m 0644 "$IB_DIR/kata/configuration-qemu.toml.in" "$root/share/kata-agent-c/"
    echo "$version" >"$root/share/kata-agent-c/VERSION"

    # The manifest: versions, then every file and link (paths relative to the prefix).
    local busybox_ver agent_rev m=$root/share/kata-agent-c/manifest
    ib_busybox >/dev/null
    busybox_ver=$(awk '$1 == "busybox-static" { print $3 }' "$IB_CACHE/busybox-$IB_ARCH/.manifest")
    agent_rev=$(git -C "$IB_SRC" describe --always --dirty 2>/dev/null || echo unknown)
    {
        echo "# kata-agent-c $ARCH guest for Kata Containers; paths relative to the prefix"
        echo "name kata-agent-c"
        echo "version $version"
        echo "arch $ARCH"
        echo "prefix $PREFIX"
        echo "agent $version git:$agent_rev"
        echo "kernel $kver $(awk '$1 == "package" { print $2 "=" $4 }' "$(dirname "$(realpath "$guest/Image")")/kernel.manifest" 2>/dev/null)"
        echo "busybox $busybox_ver debian:busybox-static"
        echo "virtiofsd $vfsd_ver debian:virtiofsd"
        (cd "$root" && find . -path ./share/kata-agent-c/manifest -prune -o -type l -printf '%P\n' | LC_ALL=C sort |
            while read -r f; do echo "link $f $(readlink "$f")"; done)
        (cd "$root" && find . -path ./share/kata-agent-c/manifest -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
            while read -r f; do echo "sha256 $(sha256sum <"$f" | cut -d' ' -f1) $f"; done)
    } >"$m"
    cp -- "$m" "$out/$name.manifest"

    ib_log "== tarball: $out/$name.tar.zst"
    find "$stage" -exec touch -h -d "@$epoch" {} +
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
        --format=gnu --sparse -cf - ./opt | zstd -q -T2 -19 -f -o "$out/$name.tar.zst"
    ib_log "done: $out/$name.tar.zst ($(ib_size "$out/$name.tar.zst")); kernel $kver, virtiofsd $vfsd_ver, busybox $busybox_ver"
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

main "$@"
