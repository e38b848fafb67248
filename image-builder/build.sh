#!/usr/bin/env bash
# image-builder/build.sh: the guest for qemu, in one command: riscv64 for `virt`
# (default), x86_64 for `q35`, aarch64 for `virt`.
#
# Usage: image-builder/build.sh [--arch riscv64|x86_64|aarch64]
#                               [--debian-kernel | --kernel-dir DIR] [--out DIR]
#                               [--agent-init yes|no] [--shell-init] [--no-agent-build]
#
#   --arch A          the guest's architecture (default riscv64): the kernel from
#                     kernel/kata-A.conf, the agent from the CMake preset riscv64,
#                     x86_64-static or aarch64, busybox and the payload for A;
#                     outputs in build/guest (riscv64) or build/guest-A
#   --debian-kernel   (riscv64 only) Debian 13's riscv64 kernel plus the modules the guest needs
#                     (quick; the default is the project's own kernel, built in)
#   --kernel-dir DIR  use a ready kernel directory laid out as kernel.sh makes it
#                     (DIR/Image, and for a modular kernel DIR/modules/lib/modules/<ver>/
#                     and DIR/modules.list) instead of running kernel.sh
#   --out DIR         output directory (default: build/guest[-A] in the checkout)
#   --agent-init      rootfs.img: yes = /sbin/init is the agent (default), no = the
#                     agent is a service (systemd units; busybox init stands in here)
#   --shell-init      debugging aid: the initrd's /init is a busybox script that does
#                     the PID 1 mounts and module loading itself, then execs the agent
#                     (see initrd.sh); the default /init is the agent binary
#   --no-agent-build  use the preset's build directory as it is (skip `cmake --build`)
#
# Steps (each prints what it does and is a no-op when its inputs are unchanged):
#   kernel      image-builder/kernel.sh [--debian] OUT/kernel[-debian] -> OUT/Image
#   agent       cmake --preset riscv64 (once), cmake --build --preset riscv64
#   initrd      initrd.sh     -> OUT/initrd.img   (/init = the static agent)
#   rootfs      rootfs.sh     -> OUT/rootfs.img   (ext4, busybox userland + agent)
#   ctr-rootfs  ctr-rootfs.sh -> OUT/ctr-rootfs/  (busybox + ka-payload container rootfs)
#   virtiofsd   virtiofsd.sh  -> OUT/bin/virtiofsd (Debian 13's, with its own libraries)
#
# Cache: ${KATA_AGENT_CACHE:-$HOME/.cache/kata-agent-c}/image (downloaded .debs,
# extracted packages, the riscv64 test payload); Debian 13 indexes are shared with
# cmake/fetch-sysroot.sh in <cache>/index (delete that directory to refresh them).
#
# This file is also the helper library of the other image-builder scripts: they
# source it for the ib_* functions; main() runs only when it is executed.
set -euo pipefail

IB_DIR=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
IB_SRC=$(dirname "$IB_DIR")
IB_CACHE_ROOT=${KATA_AGENT_CACHE:-$HOME/.cache/kata-agent-c}
IB_CACHE=$IB_CACHE_ROOT/image
IB_SUITE=trixie   # Debian 13
IB_NAME=${IB_NAME:-$(basename "$0" .sh)}
# The guest's architecture, exported by main() so the step scripts (which source this
# file) build for it: riscv64, x86_64 or aarch64.
# IB_DEB_ARCH is Debian's name for it, IB_PRESET the CMake preset of its static
# agent, IB_FILE_RE what file(1) says about its binaries.
# shellcheck disable=SC2034  # read by the step scripts that source this file
ib_set_arch() {   # ARCH
    IB_ARCH=$1
    case $IB_ARCH in
    riscv64) IB_DEB_ARCH=riscv64 IB_PRESET=riscv64 IB_FILE_RE='RISC-V' ;;
    x86_64) IB_DEB_ARCH=amd64 IB_PRESET=x86_64-static IB_FILE_RE='x86-64' ;;
    aarch64) IB_DEB_ARCH=arm64 IB_PRESET=aarch64 IB_FILE_RE='ARM aarch64' ;;
    *) printf '%s: arch %s: riscv64, x86_64 or aarch64\n' "$IB_NAME" "$IB_ARCH" >&2; exit 2 ;;
    esac
}
ib_set_arch "${IB_ARCH:-riscv64}"

ib_log() { printf '%s: %s\n' "$IB_NAME" "$*" >&2; }
ib_die() { ib_log "ERROR: $*"; exit 1; }

# ib_need COMMAND PACKAGE: die with the Debian package to install.
ib_need() {
    command -v "$1" >/dev/null 2>&1 || ib_die "'$1' not found: install the Debian package $2"
}

ib_now() { date +%s.%N; }
ib_since() { awk -v a="$1" -v b="$(ib_now)" 'BEGIN { printf "%.2f", b - a }'; }

# Human-readable size of a file or a directory tree (bytes, apparent size).
ib_size() {
    local b
    if [[ -d $1 ]]; then b=$(du -sb -- "$1" | cut -f1); else b=$(stat -c %s -- "$1"); fi
    awk -v b="$b" 'BEGIN { if (b >= 1048576) printf "%.1f MiB", b / 1048576;
                           else printf "%.0f KiB", b / 1024 }'
}

# Key of a set of inputs: sha256 over the given words and, for every word that is
# an existing file, its content (so scripts, binaries and options all count).
ib_key() {
    local w
    for w; do
        printf '%s\n' "$w"
        if [[ -f $w ]]; then sha256sum <"$w"; fi
    done | sha256sum | cut -d' ' -f1
}
# Stamps live beside their output: OUT -> DIR/.NAME.stamp.
ib_stamp_path() { printf '%s/.%s.stamp' "$(dirname -- "$1")" "$(basename -- "$1")"; }
ib_stamp_ok() {   # OUTPUT KEY
    local s
    s=$(ib_stamp_path "$1")
    [[ -e $1 && -f $s && $(<"$s") == "$2" ]]
}
ib_stamp_write() { printf '%s\n' "$2" >"$(ib_stamp_path "$1")"; }
ib_stamp_clear() { rm -f -- "$(ib_stamp_path "$1")"; }

# ---------------------------------------------------------------------------------
# Debian 13 packages, through the project's shared helper cmake/debian-fetch.sh
# (Packages.xz parsed directly, every .deb checked against its SHA256; apt cannot
# use trixie here, see /work/shared/reference/TOOLCHAIN.md).
DF_TAG=$IB_NAME
# shellcheck source=../cmake/debian-fetch.sh
source "$IB_SRC/cmake/debian-fetch.sh"

# ib_debs ARCH DEST PKG...: DEST = the named trixie packages (highest versions)
# extracted, with DEST/.manifest ("name arch version sha256" per package). Nothing
# is read from the network, and the index is not even parsed, when DEST was made
# from the same index and list. Downloads are serialised with fetch-sysroot.sh's
# lock (same cache, same index files).
ib_debs() {
    local arch=$1 dest=$2 idxdir=$IB_CACHE_ROOT/index idx key sel name a ver filename sha deb
    shift 2
    idx=$idxdir/Packages-$arch.xz
    key="$arch $* $(stat -c '%s %Y' "$idx" 2>/dev/null || echo none)"
    [[ -f $dest/.key && $(<"$dest/.key") == "$key" ]] && return 0
    mkdir -p "$IB_CACHE_ROOT"
    exec {lockfd}>"$IB_CACHE_ROOT/.lock"
    flock "$lockfd"
    df_mirror
    df_get_index "$idxdir" "$IB_SUITE" "$arch"
    key="$arch $* $(stat -c '%s %Y' "$idx")"
    if [[ ! -f $dest/.key || $(<"$dest/.key") != "$key" ]]; then
        sel=$(df_select_pkgs "$idx" "$@")
        rm -rf "$dest.new"
        mkdir -p "$dest.new"
        while read -r name a ver filename sha; do
            deb=$(df_get_deb "$IB_CACHE/debs" "$filename" "$sha")
            dpkg-deb -x "$deb" "$dest.new"
            echo "$name $a $ver $sha" >>"$dest.new/.manifest"
        done <<<"$sel"
        echo "$key" >"$dest.new/.key"
        rm -rf "$dest"
        mv "$dest.new" "$dest"
    fi
    exec {lockfd}>&-
}

# Debian 13's static busybox (1.37) for IB_ARCH, cached; prints its path.
ib_busybox() {
    local b dir=$IB_CACHE/busybox-$IB_ARCH
    ib_debs "$IB_DEB_ARCH" "$dir" busybox-static
    for b in usr/bin/busybox bin/busybox; do
        [[ -x $dir/$b ]] && { echo "$dir/$b"; return; }
    done
    ib_die "busybox-static .deb has no busybox binary"
}

# Run a static IB_ARCH binary on the host (for `busybox --list`, `ka-payload list`):
# directly when the host is that arch, else under qemu-user.
ib_run_rv() {
    if [[ $(uname -m) == "$IB_ARCH" ]]; then
        "$@"
    else
        ib_need "qemu-$IB_ARCH-static" qemu-user-static
        "qemu-$IB_ARCH-static" "$@"
    fi
}

# Strip an IB_ARCH ELF into OUT (Debian 12's strip handles the final executables).
ib_strip() {   # IN OUT
    if [[ $(uname -m) == "$IB_ARCH" ]]; then
        strip -o "$2" "$1"
    else
        ib_need "$IB_ARCH-linux-gnu-strip" "binutils-$IB_ARCH-linux-gnu"
        "$IB_ARCH-linux-gnu-strip" -o "$2" "$1"
    fi
}

# ---------------------------------------------------------------------------------
# Kernel directories (kernel.sh's output): DIR/Image; modular kernels also have
# DIR/modules/lib/modules/<ver>/ (depmod run) and DIR/modules.list (load order).

ib_kernel_version() {   # KDIR -> version, or nothing for a kernel without modules
    local d
    for d in "$1"/modules/lib/modules/*/; do
        [[ -d $d ]] && { basename "$d"; return; }
    done
}

# ib_module_paths KDIR: the modules of modules.list with their dependencies first,
# as paths relative to lib/modules/<ver>/, each once. modules.list lines may be
# module names (9pnet_virtio) or paths (kernel/net/9p/9pnet_virtio.ko.xz); blank
# lines and '#' comments are skipped.
ib_module_paths() {
    local kdir=$1 ver mdir
    ver=$(ib_kernel_version "$kdir")
    [[ -n $ver ]] || ib_die "$kdir/modules/lib/modules/<version>/ is missing"
    mdir=$kdir/modules/lib/modules/$ver
    [[ -f $mdir/modules.dep ]] || ib_die "$mdir/modules.dep is missing (depmod not run)"
    [[ -f $kdir/modules.list ]] || ib_die "$kdir/modules.list is missing"
    awk '
        FNR == NR {   # modules.dep: "path: dep dep ..."
            sub(/:$/, "", $1); path = $1; deps[path] = ""
            for (i = 2; i <= NF; i++) deps[path] = deps[path] " " $i
            n = path; sub(/.*\//, "", n); sub(/\.ko(\.[a-z0-9]+)?$/, "", n)
            byname[n] = path; gsub(/-/, "_", n); byname[n] = path
            next
        }
        function emit(p,   k, d, m) {
            if (p in done) return
            done[p] = 1
            m = split(deps[p], d, " ")
            for (k = m; k >= 1; k--) emit(d[k])   # modules.dep lists the deepest last
            print p
        }
        { sub(/#.*/, ""); gsub(/[ \t]+/, "") }
        $0 == "" { next }
        {
            w = $0; n = w; sub(/.*\//, "", n); sub(/\.ko(\.[a-z0-9]+)?$/, "", n); gsub(/-/, "_", n)
            if (w in deps) p = w
            else if (n in byname) p = byname[n]
            else { print "ib_module_paths: module " w " is not in modules.dep" > "/dev/stderr"; bad = 1; next }
            emit(p)
        }
        END { exit bad }' "$mdir/modules.dep" "$kdir/modules.list"
}

# ib_install_modules KDIR ROOT: the modules of KDIR/modules.list and their
# dependencies into ROOT/lib/modules/<ver>/ as they are (compressed: the agent's
# loader hands them to finit_module with MODULE_INIT_COMPRESSED_FILE), with a
# modules.dep for exactly those plus the kernel's modules.builtin, and the names
# of modules.list, in its order, one per line, to ROOT/etc/kata-agent/modules (the
# list init/modules.c reads; it resolves dependencies through modules.dep).
# Prints how many module files went in.
ib_install_modules() {
    local kdir=$1 root=$2 ver src mdir m paths
    ver=$(ib_kernel_version "$kdir")
    src=$kdir/modules/lib/modules/$ver mdir=$root/lib/modules/$ver
    paths=$(ib_module_paths "$kdir") || ib_die "$kdir/modules.list: see above"
    [[ -n $paths ]] || ib_die "$kdir/modules.list names no modules"
    mkdir -p "$mdir" "$root/etc/kata-agent"
    while read -r m; do
        mkdir -p "$mdir/$(dirname "$m")"
        cp -- "$src/$m" "$mdir/$m"
        chmod 0644 "$mdir/$m"
    done <<<"$paths"
    awk 'FNR == NR { keep[$0] = 1; next } { p = $1; sub(/:$/, "", p) } p in keep' \
        - "$src/modules.dep" <<<"$paths" >"$mdir/modules.dep"
    [[ ! -f $src/modules.builtin ]] || cp -- "$src/modules.builtin" "$mdir/modules.builtin"
    sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' -e 's:.*/::' -e 's/\.ko\(\.[a-z0-9]*\)\{0,1\}$//' \
        "$kdir/modules.list" >"$root/etc/kata-agent/modules"
    chmod 0644 "$root/etc/kata-agent/modules" "$mdir"/modules.*
    wc -l <<<"$paths"
}

# The inputs of ib_install_modules, for a stamp key (modules.list and the files).
ib_module_inputs() {
    local kdir=$1 ver m paths
    ver=$(ib_kernel_version "$kdir")
    paths=$(ib_module_paths "$kdir") || ib_die "$kdir/modules.list: see above"
    echo "kver=$ver"
    echo "$kdir/modules.list"
    while read -r m; do echo "$kdir/modules/lib/modules/$ver/$m"; done <<<"$paths"
}

# ---------------------------------------------------------------------------------

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

main() {
    local debian_kernel=0 kernel_dir="" out="" agent_init=yes
    local shell_init=0 agent_build=1
    while [[ $# -gt 0 ]]; do
        case $1 in
        --arch) ib_set_arch "${2:?--arch riscv64|x86_64|aarch64}"; shift ;;
        --debian-kernel) debian_kernel=1 ;;
        --kernel-dir) kernel_dir=$(realpath -e -- "${2:?--kernel-dir DIR}"); shift ;;
        --out) out=${2:?--out DIR}; shift ;;
        --agent-init) agent_init=${2:?--agent-init yes|no}; shift ;;
        --shell-init) shell_init=1 ;;
        --no-agent-build) agent_build=0 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
        esac
        shift
    done
    [[ $agent_init == yes || $agent_init == no ]] || ib_die "--agent-init takes yes or no"
    # The step scripts source this file: they build for the same arch.
    export IB_ARCH
    [[ $IB_ARCH == riscv64 || $debian_kernel == 0 ]] || ib_die "--debian-kernel is riscv64 only"
    if [[ -z $out ]]; then
        out=$IB_SRC/build/guest
        [[ $IB_ARCH == riscv64 ]] || out+=-$IB_ARCH
    fi
    mkdir -p "$out"
    out=$(realpath -- "$out")
    local t0 t kdir
    t0=$(ib_now)
    declare -A took=()

    # 1. Kernel.
    t=$(ib_now)
    if [[ -n $kernel_dir ]]; then
        kdir=$kernel_dir
        ib_log "== kernel: using $kdir"
    else
        [[ -x $IB_DIR/kernel.sh ]] ||
            ib_die "image-builder/kernel.sh is not there yet: pass --kernel-dir DIR (a directory with Image, modules/, modules.list)"
        if [[ $debian_kernel == 1 ]]; then
            kdir=$out/kernel-debian
            ib_log "== kernel: kernel.sh --debian $kdir"
            "$IB_DIR/kernel.sh" --debian "$kdir"
        else
            kdir=$out/kernel
            ib_log "== kernel: kernel.sh --arch $IB_ARCH $kdir"
            "$IB_DIR/kernel.sh" --arch "$IB_ARCH" "$kdir"
        fi
    fi
    [[ -f $kdir/Image ]] || ib_die "$kdir/Image is missing"
    ln -sfn "$(realpath --relative-to="$out" "$kdir/Image")" "$out/Image"
    took[kernel]=$(ib_since "$t")

    # 2. The static agent and agent-ctl for the arch.
    t=$(ib_now)
    local bdir=$IB_SRC/build/$IB_PRESET
    if [[ $agent_build == 1 ]]; then
        ib_need cmake cmake
        if [[ ! -f $bdir/CMakeCache.txt ]]; then
            ib_log "== agent: cmake --preset $IB_PRESET"
            (cd "$IB_SRC" && cmake --preset "$IB_PRESET" >&2)
        fi
        ib_log "== agent: cmake --build --preset $IB_PRESET"
        (cd "$IB_SRC" && cmake --build --preset "$IB_PRESET" -- --no-print-directory >&2) ||
            ib_die "the $IB_PRESET build failed (see above); --no-agent-build uses build/$IB_PRESET as it is"
    else
        ib_log "== agent: using build/$IB_PRESET as it is"
    fi
    local agent=$bdir/kata-agent ctl=$bdir/agent-ctl
    [[ -x $agent && -x $ctl ]] || ib_die "build/$IB_PRESET/{kata-agent,agent-ctl} missing"
    took[agent]=$(ib_since "$t")

    # 3. Images.
    local -a iargs=(--agent "$agent" --agent-ctl "$ctl")
    [[ -n $(ib_kernel_version "$kdir") ]] && iargs+=(--kernel-dir "$kdir")
    t=$(ib_now)
    ib_log "== initrd"
    local -a sargs=()
    [[ $shell_init == 0 ]] || sargs=(--shell-init)
    "$IB_DIR/initrd.sh" "${iargs[@]}" ${sargs[@]+"${sargs[@]}"} "$out/initrd.img"
    took[initrd]=$(ib_since "$t")
    t=$(ib_now)
    ib_log "== rootfs"
    "$IB_DIR/rootfs.sh" "${iargs[@]}" --agent-init "$agent_init" "$out/rootfs.img"
    took[rootfs]=$(ib_since "$t")
    t=$(ib_now)
    ib_log "== ctr-rootfs"
    "$IB_DIR/ctr-rootfs.sh" "$out/ctr-rootfs"
    took[ctr-rootfs]=$(ib_since "$t")
    t=$(ib_now)
    ib_log "== virtiofsd"
    "$IB_DIR/virtiofsd.sh" "$out"
    took[virtiofsd]=$(ib_since "$t")

    ib_log "== done in $(ib_since "$t0") s: $out"
    printf '  %-16s %10s\n' Image "$(ib_size "$(realpath "$out/Image")")" \
        initrd.img "$(ib_size "$out/initrd.img")" \
        rootfs.img "$(ib_size "$out/rootfs.img") ($(du -k "$out/rootfs.img" | cut -f1) KiB used)" \
        ctr-rootfs/ "$(ib_size "$out/ctr-rootfs")" \
        bin/virtiofsd "$(ib_size "$out/lib/virtiofsd")" >&2
    printf '  steps (s):' >&2
    for f in kernel agent initrd rootfs ctr-rootfs virtiofsd; do printf ' %s %s' "$f" "${took[$f]}" >&2; done
    printf '\n' >&2
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
