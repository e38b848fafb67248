#!/usr/bin/env bash
# libmnl.a for the static x86_64 build (cmake/x86_64-linux-gnu-static.cmake).
#
# Usage: fetch-libmnl-amd64.sh CACHE_DIR   -> prints the path of libmnl.a
#
# Why: Debian 12's libmnl-dev ships only the shared library, while the other four
# libraries' -dev packages have their .a.  Debian 13's amd64 libmnl-dev (1.0.5) has
# libmnl.a; it needs nothing newer than glibc 2.36 (socket calls, malloc, memcpy), so
# it links against Debian 12's static glibc.  The .deb is SHA256-checked against the
# trixie index (cmake/debian-fetch.sh) and extracted into CACHE_DIR/libmnl-amd64/.
set -euo pipefail

CACHE=${1:?usage: fetch-libmnl-amd64.sh CACHE_DIR}
DEST=$CACHE/libmnl-amd64
LIB=$DEST/usr/lib/x86_64-linux-gnu/libmnl.a
DF_TAG=fetch-libmnl
# shellcheck source=SCRIPTDIR/debian-fetch.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/debian-fetch.sh"

if [[ ! -f $LIB ]]; then
    mkdir -p "$CACHE"
    # The same lock and index files as fetch-sysroot.sh and the image-builder.
    exec {lockfd}>"$CACHE/.lock"
    flock "$lockfd"
    if [[ ! -f $LIB ]]; then
        df_mirror
        df_get_index "$CACHE/index" trixie amd64
        read -r name arch ver filename sha <<<"$(df_select_pkgs "$CACHE/index/Packages-amd64.xz" libmnl-dev)"
        deb=$(df_get_deb "$CACHE/debs" "$filename" "$sha")
        rm -rf "$DEST.new"
        dpkg-deb -x "$deb" "$DEST.new"
        echo "$name $arch $ver $sha" >"$DEST.new/.manifest"
        rm -rf "$DEST"
        mv "$DEST.new" "$DEST"
    fi
    exec {lockfd}>&-
fi
[[ -f $LIB ]] || df_die "libmnl-dev has no $LIB"
echo "$LIB"
