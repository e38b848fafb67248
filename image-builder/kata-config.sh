#!/usr/bin/env bash
# image-builder/kata-config.sh: the Kata runtime configuration files for this guest,
# from the one template, for a given install prefix.
#
# Usage: kata-config.sh [--template FILE] [--version V] --prefix PREFIX OUTDIR
#
# Writes, under OUTDIR (the prefix's share/defaults/kata-containers/):
#   configuration-qemu.toml                          Go runtime, initrd (the default)
#   configuration-qemu-image.toml                    Go runtime, disk image
#   runtime-rs/configuration-qemu-runtime-rs.toml    runtime-rs, initrd (the default)
#   runtime-rs/configuration-qemu-runtime-rs-image.toml  runtime-rs, disk image
#   configuration.toml, runtime-rs/configuration.toml    links to the initrd files
#
# Template lines starting with #@go@, #@rs@, #@initrd@ or #@image@ are kept (marker
# removed) only in the files of that runtime or variant; @PREFIX@, @VERSION@ and
# @VARIANT@ are replaced. --template defaults to image-builder/kata/ in a checkout,
# or configuration-qemu.toml.in beside this script in an installed tree; --version
# to the template's neighbour VERSION file or the checkout's CMakeLists.txt.
set -euo pipefail
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { printf 'kata-config: ERROR: %s\n' "$*" >&2; exit 1; }

template="" version="" prefix=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --template) template=${2:?}; shift ;;
    --version) version=${2:?}; shift ;;
    --prefix) prefix=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) break ;;
    esac
    shift
done
[[ $# -eq 1 && -n $prefix ]] || { usage >&2; exit 2; }
out=$1
[[ $prefix == /* ]] || die "--prefix must be an absolute path (the runtime reads these paths as they are)"
prefix=${prefix%/}
# A path with characters TOML strings or sed would need to escape is refused, not mangled.
[[ $prefix =~ ^[A-Za-z0-9/._+-]+$ ]] || die "--prefix $prefix: only letters, digits and / . _ + - are allowed"

if [[ -z $template ]]; then
    for t in "$here/kata/configuration-qemu.toml.in" "$here/configuration-qemu.toml.in"; do
        [[ -f $t ]] && { template=$t; break; }
    done
fi
[[ -f $template ]] || die "template not found (--template FILE)"
if [[ -z $version ]]; then
    if [[ -f $(dirname "$template")/VERSION ]]; then
        version=$(<"$(dirname "$template")/VERSION")
    elif [[ -f $here/../CMakeLists.txt ]]; then
        version=$(sed -n 's/^project(kata-agent-c VERSION \([0-9.]*\).*/\1/p' "$here/../CMakeLists.txt")
    fi
fi
[[ -n $version ]] || die "no version (--version V)"

# gen RUNTIME VARIANT FILE
gen() {
    mkdir -p "$(dirname "$3")"
    awk -v rt="$1" -v var="$2" -v prefix="$prefix" -v version="$version" '
        {
            line = $0
            while (match(line, /^#@(go|rs|initrd|image)@/)) {
                m = substr(line, 3, RLENGTH - 3)
                if (m != rt && m != var) next
                line = substr(line, RLENGTH + 1)
            }
            gsub(/@PREFIX@/, prefix, line)
            gsub(/@VERSION@/, version, line)
            gsub(/@VARIANT@/, var, line)
            print line
        }' "$template" >"$3.tmp"
    mv -- "$3.tmp" "$3"
}
gen go initrd "$out/configuration-qemu.toml"
gen go image "$out/configuration-qemu-image.toml"
gen rs initrd "$out/runtime-rs/configuration-qemu-runtime-rs.toml"
gen rs image "$out/runtime-rs/configuration-qemu-runtime-rs-image.toml"
# The names each runtime loads when nothing else is given (Go: configuration.toml in its
# defaults directory; runtime-rs: runtime-rs/configuration.toml, /opt/kata's among them),
# pointing at the initrd variant, as Kata's own release links them.
ln -sfn configuration-qemu.toml "$out/configuration.toml"
ln -sfn configuration-qemu-runtime-rs.toml "$out/runtime-rs/configuration.toml"
