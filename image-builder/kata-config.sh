#!/usr/bin/env bash
# image-builder/kata-config.sh: the Kata runtime configuration files for this guest,
# from the one template, for a given install prefix.
#
# Usage: kata-config.sh [--arch riscv64|x86_64|aarch64] [--template FILE] [--version V]
#                      --prefix PREFIX OUTDIR
#
# Writes, under OUTDIR (the prefix's share/defaults/kata-containers/):
#   configuration-qemu.toml                          Go runtime, initrd (the default)
#   configuration-qemu-image.toml                    Go runtime, disk image
#   runtime-rs/configuration-qemu-runtime-rs.toml    runtime-rs, initrd (the default)
#   runtime-rs/configuration-qemu-runtime-rs-image.toml  runtime-rs, disk image
#   configuration.toml, runtime-rs/configuration.toml    links to the initrd files
#
# Template lines starting with #@go@, #@rs@, #@initrd@, #@image@, #@riscv64@, #@x86_64@
# or #@aarch64@ are kept (marker removed) only in the files of that runtime, variant or
# architecture; @PREFIX@, @VERSION@, @VARIANT@, @ARCH@ and the architecture's values
# (below: Kata 4.1.0's arch/*-options.mk) are replaced. --arch defaults to riscv64 (or the
# "arch" line of the template's neighbour manifest in an installed tree). --template
# defaults to image-builder/kata/ in a checkout, or configuration-qemu.toml.in beside
# this script in an installed tree; --version to the template's neighbour VERSION file
# or the checkout's CMakeLists.txt.
set -euo pipefail
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { printf 'kata-config: ERROR: %s\n' "$*" >&2; exit 1; }

template="" version="" prefix="" arch=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --arch) arch=${2:?}; shift ;;
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
if [[ -z $arch && -f $(dirname "$template")/manifest ]]; then
    arch=$(awk '$1 == "arch" { print $2 }' "$(dirname "$template")/manifest")
fi
arch=${arch:-riscv64}

# Each architecture's values as Kata 4.1.0 builds them (src/runtime/arch/<goarch>-options.mk,
# src/runtime-rs/arch/<arch>-options.mk, the Makefiles' KERNELTYPE and
# DEFSTATICRESOURCEMGMT_QEMU): machine type, qemu, CPU features, the Go runtime's and
# runtime-rs' KERNELPARAMS and MACHINEACCELERATORS, the kernel's name (Kata calls a
# compressed kernel vmlinuz.container: x86_64's is a bzImage here, the ELF vmlinux
# upstream ships cannot boot through qemu -kernel without PVH), and whether the VM is
# sized at start (no CPU/memory hotplug on riscv64 and aarch64 `virt`).
cgv2="cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
case $arch in
riscv64) machine=virt qemu=qemu-system-riscv64 cpu_features="" go_params="" rs_params=$cgv2
    go_accel="" rs_accel="" kernel=vmlinux.container static=true ;;
x86_64) machine=q35 qemu=qemu-system-x86_64 cpu_features=pmu=off go_params=$cgv2 rs_params=$cgv2
    go_accel="" rs_accel="" kernel=vmlinuz.container static=false ;;
aarch64) machine=virt qemu=qemu-system-aarch64 cpu_features=pmu=off go_params=$cgv2 rs_params=$cgv2
    go_accel="" rs_accel=usb=off,gic-version=host kernel=vmlinux.container static=true ;;
*) die "--arch $arch: riscv64, x86_64 or aarch64" ;;
esac

# gen RUNTIME VARIANT FILE
gen() {
    mkdir -p "$(dirname "$3")"
    local params=$go_params accel=$go_accel
    [[ $1 == go ]] || params=$rs_params accel=$rs_accel
    awk -v rt="$1" -v var="$2" -v prefix="$prefix" -v version="$version" -v arch="$arch" \
        -v machine="$machine" -v qemu="$qemu" -v cpu_features="$cpu_features" -v params="$params" \
        -v accel="$accel" -v kernel="$kernel" -v static="$static" '
        {
            line = $0
            while (match(line, /^#@(go|rs|initrd|image|riscv64|x86_64|aarch64)@/)) {
                m = substr(line, 3, RLENGTH - 3)
                if (m != rt && m != var && m != arch) next
                line = substr(line, RLENGTH + 1)
            }
            gsub(/@PREFIX@/, prefix, line)
            gsub(/@VERSION@/, version, line)
            gsub(/@VARIANT@/, var, line)
            gsub(/@ARCH@/, arch, line)
            gsub(/@MACHINETYPE@/, machine, line)
            gsub(/@QEMU@/, qemu, line)
            gsub(/@CPUFEATURES@/, cpu_features, line)
            gsub(/@KERNELPARAMS@/, params, line)
            gsub(/@MACHINEACCELERATORS@/, accel, line)
            gsub(/@KERNEL@/, kernel, line)
            gsub(/@STATICRESOURCEMGMT@/, static, line)
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
