#!/usr/bin/env bash
# The aarch64 sysroot for cmake/aarch64-linux-gnu.cmake: Debian 13 (trixie) arm64
# packages extracted into CACHE_DIR/sysroot-aarch64, as cmake/fetch-sysroot.sh does for
# riscv64 (same package list, same index and checks through cmake/debian-fetch.sh).
# Debian 12 has arm64, but its libmnl-dev has no libmnl.a; trixie's has all five .a.
# No host linker is fetched: Debian 12's aarch64-linux-gnu-ld 2.40 links trixie's
# arm64 libc.a (the relocations that crash it are riscv64's).
#
# Usage: fetch-sysroot-arm64.sh CACHE_DIR
set -euo pipefail

SCRIPT_VERSION=1
PKGS=(libc6-dev libc6 linux-libc-dev libcrypt-dev
      libprotobuf-c-dev libmnl-dev libseccomp-dev libcap-dev libblkid-dev
      libjson-c-dev libjson-c5)
CACHE=${1:?usage: fetch-sysroot-arm64.sh CACHE_DIR}
SELF=$(realpath "${BASH_SOURCE[0]}")
DF_TAG=fetch-sysroot-arm64
# shellcheck source=SCRIPTDIR/debian-fetch.sh
source "$(dirname "$SELF")/debian-fetch.sh"

DEST=$CACHE/sysroot-aarch64
STAMP_KEY="v$SCRIPT_VERSION $(cat "$SELF" "$(dirname "$SELF")/debian-fetch.sh" | sha256sum | cut -d' ' -f1)"
stamp_ok() { [[ -f $DEST/.stamp && $(<"$DEST/.stamp") == "$STAMP_KEY" ]]; }
stamp_ok && exit 0

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
stamp_ok && exit 0
df_mirror
df_get_index "$CACHE/index" trixie arm64
sel=$(df_select_pkgs "$CACHE/index/Packages-arm64.xz" "${PKGS[@]}")
rm -rf "$DEST.new"
mkdir -p "$DEST.new"
while read -r name arch ver filename sha; do
    deb=$(df_get_deb "$CACHE/debs-arm64" "$filename" "$sha")
    dpkg-deb -x "$deb" "$DEST.new"
    echo "$name $arch $ver $sha" >>"$DEST.new/.manifest"
done <<<"$sel"
# Absolute symlinks (linux-libc-dev's asm/) must resolve inside the sysroot.
while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    [[ $target == /* ]] || continue
    ln -sfn "$(realpath -s -m --relative-to="$(dirname "$link")" "$DEST.new$target")" "$link"
done < <(find "$DEST.new" -type l -print0)
for f in crt1.o libc.a libprotobuf-c.a libmnl.a libseccomp.a libcap.a libblkid.a libjson-c.a; do
    [[ -f $DEST.new/usr/lib/aarch64-linux-gnu/$f ]] || df_die "sysroot lacks $f"
done
echo "$STAMP_KEY" >"$DEST.new/.stamp"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
df_log "done: $DEST ($(du -sh "$DEST" | cut -f1))"
