#!/usr/bin/env bash
# Install what building and testing needs on Debian 12 (bookworm), as root.
# Everything comes from Debian's archive; the riscv64 sysroot is fetched later by
# the riscv64 CMake preset (cmake/fetch-sysroot.sh) into a cache outside the tree.
set -euo pipefail

packages=(
    # native build
    cmake gcc make pkgconf file
    protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev protobuf-compiler
    libmnl-dev libseccomp-dev libcap-dev libblkid-dev libjson-c-dev
    # tests: cmocka, busybox for the container rootfs, clang + libFuzzer for fuzzing
    libcmocka-dev busybox-static clang libclang-rt-14-dev valgrind
    # static checks (tools/static-checks.sh): formatting and cppcheck
    clang-format cppcheck
    # static riscv64 build and running it under qemu-user
    gcc-riscv64-linux-gnu qemu-user-static xz-utils curl ca-certificates util-linux
    # the guest: kernel build, Debian kernel modules, qemu, initrd and image tools
    flex bison bc libelf-dev kmod qemu-system-misc cpio e2fsprogs gzip socat
    # the x86_64 guest (image-builder/build.sh --arch x86_64): q35 under TCG
    qemu-system-x86
    # the aarch64 guest (build.sh --arch aarch64): cross gcc, qemu virt under TCG
    gcc-aarch64-linux-gnu qemu-system-arm
    # the Kata install tree: its tarball (zstd) and the configuration test (tomllib)
    zstd python3
    # interop tests and benchmarks: containerd's Go ttrpc, built offline
    golang-go golang-github-containerd-ttrpc-dev golang-github-gogo-protobuf-dev gogoprotobuf
    golang-google-grpc-dev golang-google-genproto-dev golang-golang-x-sys-dev
    golang-github-sirupsen-logrus-dev golang-github-golang-protobuf-1-3-dev
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-debian: all ${#packages[@]} packages already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-debian: run as root to install: ${missing[*]}" >&2
    exit 1
fi
echo "setup-debian: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
