#!/usr/bin/env bash
# install.sh: install the kata-agent-c guest (kernel, initrd, image, agent,
# virtiofsd and the Kata runtime configurations) under a prefix, or remove it.
#
# Usage: install.sh [--tarball FILE] [--prefix DIR] [--destdir DIR] [--force]
#        install.sh --uninstall [--prefix DIR] [--destdir DIR]
#
#   --tarball FILE  kata-agent-c-static-<ver>-<arch>.tar.zst (default: the tree this
#                   script sits in, i.e. an unpacked tarball's opt/kata/; from a
#                   checkout, build/kata-static/'s riscv64 tarball)
#   --prefix DIR    where it lives at run time (default /opt/kata): the configuration
#                   files are generated for it
#   --destdir DIR   stage under DIR/PREFIX instead (for packaging); the files still
#                   name PREFIX
#   --force         replace files there that an earlier install of ours did not put
#                   (e.g. Kata's own configuration-qemu.toml); refused otherwise
#   --uninstall     remove what the last install put there (its list is
#                   PREFIX/share/kata-agent-c/installed), nothing else
#
# Every file is checked against the manifest's SHA256 first. Running it again is a
# no-op for unchanged files; files of an older install that the new one does not
# have are removed.
set -euo pipefail
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
log() { printf 'install: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

tarball="" prefix=/opt/kata destdir="" force=0 uninstall=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --tarball) tarball=${2:?}; shift ;;
    --prefix) prefix=${2:?}; shift ;;
    --destdir) destdir=${2:?}; shift ;;
    --force) force=1 ;;
    --uninstall) uninstall=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done
[[ $prefix == /* ]] || die "--prefix must be absolute"
prefix=$(realpath -m -- "$prefix")
if [[ -n $destdir ]]; then
    destdir=$(realpath -m -- "$destdir")
    target=$destdir$prefix
else
    target=$prefix
fi
[[ $target != / ]] || die "refusing to install into /"
list=$target/share/kata-agent-c/installed

# Remove the paths of LIST (relative to TARGET) that are not in KEEP (a file of
# paths, may be empty), then the directories that became empty (never TARGET).
remove_listed() {   # LIST KEEP
    local p d
    while read -r p; do
        [[ -n $p && $p != /* && $p != *..* ]] || continue
        grep -qxF -- "$p" "$2" && continue
        if [[ -L $target/$p || -f $target/$p ]]; then rm -f -- "${target:?}/$p"; fi
        d=$(dirname -- "$p")
        while [[ $d != . ]]; do
            rmdir -- "$target/$d" 2>/dev/null || break
            d=$(dirname -- "$d")
        done
    done <"$1"
}

if [[ $uninstall == 1 ]]; then
    [[ -f $list ]] || { log "nothing of ours under $target ($list is missing)"; exit 0; }
    old=$(mktemp "${TMPDIR:-/tmp}/ka-uninstall.XXXXXX")
    cp -- "$list" "$old"
    remove_listed "$old" /dev/null
    rm -f -- "$old"
    rmdir -- "$target" 2>/dev/null || true
    log "removed kata-agent-c from $target"
    exit 0
fi

# --- the source tree: this script's own (an unpacked tarball), or a tarball ---------
work=$(mktemp -d "${TMPDIR:-/tmp}/ka-install.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
if [[ -z $tarball && -f $here/manifest && -f $here/../../share/kata-agent-c/manifest ]]; then
    src=$(realpath -- "$here/../..")
else
    if [[ -z $tarball ]]; then
        v=$(sed -n 's/^project(kata-agent-c VERSION \([0-9.]*\).*/\1/p' "$here/../CMakeLists.txt" 2>/dev/null || true)
        tarball=$here/../build/kata-static/kata-agent-c-static-$v-riscv64.tar.zst
    fi
    [[ -f $tarball ]] || die "$tarball not found (image-builder/package.sh makes it; or --tarball FILE)"
    command -v zstd >/dev/null || die "zstd not found: install the Debian package zstd"
    zstd -q -dc -- "$tarball" | tar -C "$work" -xf - --no-same-owner
    src=$work/opt/kata
    [[ -f $src/share/kata-agent-c/manifest ]] || die "$tarball has no opt/kata/share/kata-agent-c/manifest"
fi
manifest=$src/share/kata-agent-c/manifest
version=$(awk '$1 == "version" { print $2 }' "$manifest")
# The tree's own kata-config.sh generates for its arch (passed only when not riscv64, the
# default, so that a tree from before --arch still installs).
arch=$(awk '$1 == "arch" { print $2 }' "$manifest")
archopt=()
[[ ${arch:-riscv64} == riscv64 ]] || archopt=(--arch "$arch")

# Check every file against the manifest, and that nothing unlisted or unsafe is there.
# (The configuration files are generated for the prefix below, never copied: an
# installed tree's own differ from the manifest's when its prefix is not /opt/kata.)
(cd "$src" && awk '$1 == "sha256" && $3 !~ /^share\/defaults\// { print $2 "  " $3 }' "$manifest" |
    sha256sum -c --quiet --strict -) ||
    die "$src does not match its manifest"
awk '$1 == "sha256" { print $3 } $1 == "link" { print $2 }' "$manifest" >"$work/paths"
echo share/kata-agent-c/manifest >>"$work/paths"
# The configuration files are generated for the prefix, not copied.
grep -v '^share/defaults/kata-containers/' "$work/paths" >"$work/copy" || true
while read -r p; do
    [[ $p != /* && $p != *..* ]] || die "manifest path $p is not inside the prefix"
done <"$work/paths"

# --- generate the configurations for this prefix ----------------------------------------
"$src/share/kata-agent-c/kata-config.sh" ${archopt[@]+"${archopt[@]}"} --template "$src/share/kata-agent-c/configuration-qemu.toml.in" \
    --version "$version" --prefix "$prefix" "$work/defaults"
(cd "$work/defaults" && find . \( -type f -o -type l \) -printf 'share/defaults/kata-containers/%P\n') | LC_ALL=C sort >"$work/configs"
{ cat "$work/copy" "$work/configs"; echo share/kata-agent-c/installed; } | LC_ALL=C sort -u >"$work/new-list"

# Files already there that are not ours (no earlier list names them) need --force;
# except when installing a tree onto itself (unpacked with `tar -C /`, then install.sh
# run from it to record what is ours): those files were just checked against the manifest.
touch "$work/old-list"
[[ ! -f $list ]] || cp -- "$list" "$work/old-list"
in_place=0
[[ $(realpath -m -- "$src") != "$(realpath -m -- "$target")" ]] || in_place=1
while [[ $in_place == 0 ]] && read -r p; do
    if [[ -e $target/$p || -L $target/$p ]] && ! grep -qxF -- "$p" "$work/old-list"; then
        [[ $force == 1 ]] || die "$target/$p exists and is not from kata-agent-c (--force replaces it)"
        log "replacing $target/$p (--force)"
    fi
done <"$work/new-list"

# --- copy: a changed file goes in through a temporary name and rename ---------------------
changed=0
put() {   # SRC-FILE RELPATH
    local s=$1 p=$2 t=$target/$2
    mkdir -p -- "$(dirname -- "$t")"
    if [[ -L $s ]]; then
        if [[ -L $t && $(readlink -- "$t") == "$(readlink -- "$s")" ]]; then return; fi
        ln -sfn -- "$(readlink -- "$s")" "$t.ka-new"
    else
        if [[ -f $t && ! -L $t ]] && cmp -s -- "$s" "$t" &&
            [[ $(stat -c %a -- "$s") == $(stat -c %a -- "$t") ]]; then return; fi
        cp --sparse=always -- "$s" "$t.ka-new"
        chmod "$(stat -c %a -- "$s")" "$t.ka-new"
    fi
    mv -fT -- "$t.ka-new" "$t"
    changed=$((changed + 1))
}
while read -r p; do put "$src/$p" "$p"; done <"$work/copy"
while read -r p; do put "$work/defaults/${p#share/defaults/kata-containers/}" "$p"; done <"$work/configs"
# What an older install had and this one does not: removed.
remove_listed "$work/old-list" "$work/new-list"
if ! cmp -s -- "$work/new-list" "$list"; then
    cp -- "$work/new-list" "$list.ka-new" && mv -f -- "$list.ka-new" "$list"
fi
if [[ $changed == 0 ]]; then
    log "kata-agent-c $version under $target is up to date"
else
    log "installed kata-agent-c $version under $target ($changed files changed)"
fi
log "configuration: $prefix/share/defaults/kata-containers/configuration-qemu.toml (Go runtime)," \
    "$prefix/share/defaults/kata-containers/runtime-rs/configuration-qemu-runtime-rs.toml (runtime-rs)"
