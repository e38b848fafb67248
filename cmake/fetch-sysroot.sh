#!/usr/bin/env bash
# Build the riscv64 cross sysroot and host linker used by cmake/riscv64-linux-gnu.cmake.
#
# Usage: fetch-sysroot.sh [CACHE_DIR]
#   CACHE_DIR defaults to ${KATA_AGENT_CACHE:-$HOME/.cache/kata-agent-c}.
# Environment:
#   KATA_DEBIAN_MIRROR   Debian archive base URL (default: read from the apt sources)
#   KATA_SYSROOT_FORCE=1 rebuild even if the stamp says everything is up to date
#
# Why: Debian 12 has no riscv64 architecture, so the riscv64 libraries come from
# Debian 13 (trixie) .debs, and Debian 12's riscv64 ld (2.40) crashes on trixie's
# libc.a (unknown R_RISCV_SET/SUB_ULEB128 relocations), so trixie's amd64
# binutils 2.44 is used through a wrapper.  `apt-get update` on trixie fails here, so the Packages.xz
# indexes are parsed directly and every .deb is checked against its SHA256
# (cmake/debian-fetch.sh, shared with image-builder/kernel.sh).
#
# Cache layout:
#   index/Packages-<arch>.xz   trixie indexes (kept; delete index/ to refresh)
#   debs/*.deb                 downloaded packages
#   sysroot/                   riscv64 .debs extracted (--sysroot)
#   hosttools/                 amd64 binutils-riscv64-linux-gnu 2.44 + its runtime libs
#   bin/ld                     wrapper for gcc -B<cache>/bin/
#   bin/riscv64-linux-gnu-{strip,objcopy,readelf}  wrappers for the 2.44 tools
#   manifest.txt               name arch version sha256, one package per line
#   stamp                      written last; present and matching = nothing to do
set -euo pipefail

SCRIPT_VERSION=1
SUITE=trixie

# riscv64 packages extracted into the sysroot: cmake/sysroot-packages.sh.
# shellcheck source=SCRIPTDIR/sysroot-packages.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/sysroot-packages.sh"
RV_PKGS=("${SYSROOT_PKGS[@]}")
# amd64 packages for the host linker: binutils-riscv64-linux-gnu bundles its own
# libbfd/libctf; the rest is the NEEDED closure of its ld.bfd (checked below).
HOST_PKGS=(binutils-riscv64-linux-gnu libc6 libgcc-s1 libjansson4 libsframe1 libzstd1 zlib1g)

CACHE=${1:-${KATA_AGENT_CACHE:-$HOME/.cache/kata-agent-c}}
SELF=$(realpath "${BASH_SOURCE[0]}")

DF_TAG=fetch-sysroot
# shellcheck source=SCRIPTDIR/debian-fetch.sh
source "$(dirname "$SELF")/debian-fetch.sh"
log() { df_log "$@"; }
die() { df_die "$@"; }

# The stamp key changes whenever this script (package lists, flags, version) or the
# shared fetch helpers change.
STAMP_KEY="v$SCRIPT_VERSION $SUITE $(cat "$SELF" "$(dirname "$SELF")/debian-fetch.sh" "$(dirname "$SELF")/sysroot-packages.sh" | sha256sum | cut -d' ' -f1)"
stamp_ok() {
    [[ -f $CACHE/stamp && $(<"$CACHE/stamp") == "$STAMP_KEY" &&
       -x $CACHE/bin/ld && -d $CACHE/sysroot/usr/include ]]
}

# Fast path: no lock, no network.
if [[ ${KATA_SYSROOT_FORCE:-0} != 1 ]] && stamp_ok; then
    exit 0
fi

mkdir -p "$CACHE"
CACHE=$(realpath "$CACHE")
# Serialise concurrent configures sharing one cache (flock is in util-linux, Essential).
exec 9>"$CACHE/.lock"
flock 9
if [[ ${KATA_SYSROOT_FORCE:-0} != 1 ]] && stamp_ok; then
    exit 0   # another process finished it while we waited
fi
rm -f "$CACHE/stamp"   # from here on, any failure leaves no stamp
# On failure, drop half-built directories (the next run starts them afresh anyway).
cleanup() {
    [[ $? -eq 0 ]] || rm -rf "$CACHE"/{sysroot,hosttools,bin}.new "$CACHE"/{manifest.txt.new,debs.keep}
}
trap cleanup EXIT

# --- Debian archive, indexes (shared helpers: cmake/debian-fetch.sh) --------------
df_mirror
log "mirror $MIRROR, suite $SUITE"
for arch in riscv64 amd64; do
    df_get_index "$CACHE/index" "$SUITE" "$arch"
done

RV_SEL=$(df_select_pkgs "$CACHE/index/Packages-riscv64.xz" "${RV_PKGS[@]}")
HOST_SEL=$(df_select_pkgs "$CACHE/index/Packages-amd64.xz" "${HOST_PKGS[@]}")

# --- Download, verify and extract .debs -------------------------------------------
# Extract a selection into a fresh directory, replacing the old one only on success.
extract_all() {   # selection target
    local sel=$1 dest=$2 name arch ver filename sha deb
    rm -rf "$dest.new"; mkdir -p "$dest.new"
    while read -r name arch ver filename sha; do
        deb=$(df_get_deb "$CACHE/debs" "$filename" "$sha")
        dpkg-deb -x "$deb" "$dest.new"
        echo "$name $arch $ver $sha" >>"$CACHE/manifest.txt.new"
        basename "$filename" >>"$CACHE/debs.keep"
    done <<<"$sel"
}

rm -f "$CACHE/manifest.txt.new" "$CACHE/debs.keep"
log "sysroot: ${RV_PKGS[*]}"
extract_all "$RV_SEL" "$CACHE/sysroot"
log "host tools: ${HOST_PKGS[*]}"
extract_all "$HOST_SEL" "$CACHE/hosttools"

# Absolute symlinks (e.g. linux-libc-dev's asm/) would point into the build host's
# /usr; make them relative so they resolve inside the sysroot.
fix_symlinks() {
    local root=$1 link target
    while IFS= read -r -d '' link; do
        target=$(readlink "$link")
        [[ $target == /* ]] || continue
        ln -sfn "$(realpath -s -m --relative-to="$(dirname "$link")" "$root$target")" "$link"
    done < <(find "$root" -type l -print0)
}
fix_symlinks "$CACHE/sysroot.new"
fix_symlinks "$CACHE/hosttools.new"

# --- Wrappers --------------------------------------------------------------------
# Run the 2.44 tools through trixie's own dynamic loader and libraries, so the
# host's (older) glibc and ld.so.cache are never involved.
H=$CACHE/hosttools
HLIB=$H/usr/lib/x86_64-linux-gnu
mkdir -p "$CACHE/bin.new"
make_wrapper() {   # wrapper-name tool
    # bash + printf %q so that any cache path (spaces, quotes) stays one word.
    {
        echo '#!/bin/bash'
        echo '# Generated by cmake/fetch-sysroot.sh: trixie binutils 2.44 (the Debian 12'
        echo '# binutils 2.40 cannot handle trixie riscv64 objects), run with trixie ld.so + libs.'
        printf 'exec %q --inhibit-cache --library-path %q %q "$@"\n' \
            "$HLIB/ld-linux-x86-64.so.2" "$HLIB" "$H/usr/bin/riscv64-linux-gnu-$2"
    } >"$CACHE/bin.new/$1"
    chmod +x "$CACHE/bin.new/$1"
}
make_wrapper ld ld.bfd
for t in strip objcopy readelf; do make_wrapper "riscv64-linux-gnu-$t" "$t"; done

# --- Swap in and self-check -------------------------------------------------------
for d in sysroot hosttools bin; do
    rm -rf "${CACHE:?}/$d"
    mv "$CACHE/$d.new" "$CACHE/$d"
done
mv -f "$CACHE/manifest.txt.new" "$CACHE/manifest.txt"

# Every library ld.bfd loads must come from hosttools (catches a missing package
# that the host would otherwise silently provide).
deps=$("$HLIB/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$HLIB" \
       --list "$H/usr/bin/riscv64-linux-gnu-ld.bfd") || die "ld.bfd cannot be loaded:
$deps"
if grep -E '=>' <<<"$deps" | grep -v -- "=> $H/" >&2; then
    die "ld.bfd resolves the libraries above outside $H; add their packages to HOST_PKGS"
fi
ldver=$("$CACHE/bin/ld" --version) || die "bin/ld does not run"
[[ ${ldver%%$'\n'*} == *" 2.4"[4-9]* ]] || die "bin/ld is not binutils 2.44+: ${ldver%%$'\n'*}"
for f in "${SYSROOT_LIBS[@]}"; do
    [[ -f $CACHE/sysroot/usr/lib/riscv64-linux-gnu/$f ]] || die "sysroot lacks $f"
done

# Drop .debs of versions no longer selected (the index was refreshed, or the lists changed).
for deb in "$CACHE"/debs/*.deb; do
    grep -qxF "$(basename "$deb")" "$CACHE/debs.keep" || { log "prune $(basename "$deb")"; rm -f "$deb"; }
done
rm -f "$CACHE/debs.keep"

echo "$STAMP_KEY" >"$CACHE/stamp"
log "done: $CACHE ($(du -sh "$CACHE/sysroot" | cut -f1) sysroot)"
