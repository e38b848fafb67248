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
# indexes are parsed directly and every .deb is checked against its SHA256.
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

# riscv64 packages extracted into the sysroot.  libc6-dev's other dependencies
# (libc-dev-bin, rpcsvc-proto) are tools, not needed to link; libblkid-dev's
# uuid-dev is not needed either (libblkid.a and blkid.pc do not use libuuid).
# libc6 is not needed for -static, but lets `qemu-riscv64-static -L sysroot`
# run a dynamically linked test binary if ever wanted.
RV_PKGS=(libc6-dev libc6 linux-libc-dev libcrypt-dev
         libprotobuf-c-dev libmnl-dev libseccomp-dev libcap-dev libblkid-dev)
# amd64 packages for the host linker: binutils-riscv64-linux-gnu bundles its own
# libbfd/libctf; the rest is the NEEDED closure of its ld.bfd (checked below).
HOST_PKGS=(binutils-riscv64-linux-gnu libc6 libgcc-s1 libjansson4 libsframe1 libzstd1 zlib1g)

CACHE=${1:-${KATA_AGENT_CACHE:-$HOME/.cache/kata-agent-c}}
SELF=$(realpath "${BASH_SOURCE[0]}")

log() { printf 'fetch-sysroot: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The stamp key changes whenever this script (package lists, flags, version) changes.
STAMP_KEY="v$SCRIPT_VERSION $SUITE $(sha256sum "$SELF" | cut -d' ' -f1)"
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

# --- Debian archive base URL -------------------------------------------------
# The "debian" archive (URI path ending in /debian, so not debian-security and not
# third-party repos) from deb822 .sources files or classic sources.list lines.
find_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        # deb822: one stanza per blank-line-separated paragraph; skip "Enabled: no".
        # (field names are case-insensitive; mawk has no IGNORECASE, hence tolower)
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
               enabled = 1; uris = ""
               for (i = 1; i <= NF; i++) {
                 l = tolower($i)
                 if (l ~ /^enabled:[ \t]*no/) enabled = 0
                 if (l ~ /^uris:/) { uris = $i; sub(/^[^:]*:[ \t]*/, "", uris) }
               }
               if (enabled) { n = split(uris, u, /[ \t]+/); for (j = 1; j <= n; j++) print u[j] }
             }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # "deb [options] URL suite components"
        sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f"
    done
}
if [[ -n ${KATA_DEBIAN_MIRROR:-} ]]; then
    MIRROR=${KATA_DEBIAN_MIRROR%/}
else
    MIRROR=$(find_mirror | sed 's:/*$::' | grep -E '^(https?|ftp|file)://.*/debian$' | head -n1 || true)
    [[ -n $MIRROR ]] || die "no Debian archive found in the apt sources; set KATA_DEBIAN_MIRROR"
fi
log "mirror $MIRROR, suite $SUITE"

# curl with retries; writes to .part and renames, so a cut download never looks complete.
fetch() {
    local url=$1 out=$2
    if ! curl -fsSL --retry 3 --connect-timeout 20 -o "$out.part" "$url"; then
        rm -f "$out.part"; log "download failed: $url"; return 1
    fi
    mv -f "$out.part" "$out"
}

# --- Indexes -------------------------------------------------------------------
mkdir -p "$CACHE/index" "$CACHE/debs"
for arch in riscv64 amd64; do
    idx=$CACHE/index/Packages-$arch.xz
    if [[ ! -s $idx ]]; then
        log "index $arch: downloading"
        fetch "$MIRROR/dists/$SUITE/main/binary-$arch/Packages.xz" "$idx" || exit 1
    fi
    xz -t "$idx" 2>/dev/null || { rm -f "$idx"; die "corrupt index $idx (deleted; re-run)"; }
done

# Print "name arch version filename sha256" for every stanza of the wanted names.
# Packages may be listed more than once (several versions): all are printed.
parse_index() {
    local idx=$1; shift
    xz -dc "$idx" | awk -v want="$*" '
        BEGIN { RS = ""; FS = "\n"; n = split(want, w, " "); for (i = 1; i <= n; i++) W[w[i]] = 1 }
        {
          p = a = v = f = s = ""
          for (i = 1; i <= NF; i++) {
            if ($i ~ /^Package: /)      p = substr($i, 10)
            if ($i ~ /^Architecture: /) a = substr($i, 15)
            if ($i ~ /^Version: /)      v = substr($i, 10)
            if ($i ~ /^Filename: /)     f = substr($i, 11)
            if ($i ~ /^SHA256: /)       s = substr($i, 9)
          }
          if (p in W) print p, a, v, f, s
        }'
}

# Pick the highest version of each wanted package; output lines in the order given.
select_pkgs() {
    local idx=$1; shift
    local cands name best bestv p a v f s
    cands=$(parse_index "$idx" "$@")
    for name in "$@"; do
        best=""; bestv=""
        while read -r p a v f s; do
            [[ $p == "$name" ]] || continue
            if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$bestv"; then
                best="$p $a $v $f $s"; bestv=$v
            fi
        done <<<"$cands"
        [[ -n $best ]] || die "package $name not found in $idx"
        echo "$best"
    done
}

RV_SEL=$(select_pkgs "$CACHE/index/Packages-riscv64.xz" "${RV_PKGS[@]}")
HOST_SEL=$(select_pkgs "$CACHE/index/Packages-amd64.xz" "${HOST_PKGS[@]}")

# --- Download and verify .debs -------------------------------------------------
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
get_deb() {   # filename sha256 -> path of a verified .deb
    local filename=$1 sha=$2 deb
    deb=$CACHE/debs/$(basename "$filename")
    if [[ -f $deb ]]; then
        if [[ $(sha_of "$deb") == "$sha" ]]; then echo "$deb"; return; fi
        log "WARNING: cached $(basename "$deb") has the wrong SHA256; deleting and re-fetching"
        rm -f "$deb"
    fi
    log "get $(basename "$deb")"
    fetch "$MIRROR/$filename" "$deb" ||
        die "if the index is stale, delete $CACHE/index and re-run"
    if [[ $(sha_of "$deb") != "$sha" ]]; then
        rm -f "$deb"
        die "SHA256 mismatch for $MIRROR/$filename (expected $sha; file deleted)"
    fi
    echo "$deb"
}

# Extract a selection into a fresh directory, replacing the old one only on success.
extract_all() {   # selection target
    local sel=$1 dest=$2 name arch ver filename sha deb
    rm -rf "$dest.new"; mkdir -p "$dest.new"
    while read -r name arch ver filename sha; do
        deb=$(get_deb "$filename" "$sha")
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
for f in crt1.o libc.a libprotobuf-c.a libmnl.a libseccomp.a libcap.a libblkid.a; do
    [[ -f $CACHE/sysroot/usr/lib/riscv64-linux-gnu/$f ]] || die "sysroot lacks $f"
done

# Drop .debs of versions no longer selected (the index was refreshed, or the lists changed).
for deb in "$CACHE"/debs/*.deb; do
    grep -qxF "$(basename "$deb")" "$CACHE/debs.keep" || { log "prune $(basename "$deb")"; rm -f "$deb"; }
done
rm -f "$CACHE/debs.keep"

echo "$STAMP_KEY" >"$CACHE/stamp"
log "done: $CACHE ($(du -sh "$CACHE/sysroot" | cut -f1) sysroot)"
