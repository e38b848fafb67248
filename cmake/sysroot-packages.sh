# shellcheck shell=bash
# The target libraries every cross sysroot holds (sourced by fetch-sysroot.sh for
# riscv64 and fetch-sysroot-arm64.sh for aarch64, so the two cannot drift apart).
# libc6-dev's other dependencies (libc-dev-bin, rpcsvc-proto) are tools, not needed
# to link; libblkid-dev's uuid-dev is not needed either (libblkid.a and blkid.pc do
# not use libuuid). libc6 is not needed for -static, but lets `qemu-<arch>-static -L
# sysroot` run a dynamically linked test binary if ever wanted. libjson-c-dev is for
# the static agent-ctl in the initrd (libjson-c5 is its runtime, for the same reason
# as libc6).
# shellcheck disable=SC2034 # used by the scripts that source this file
SYSROOT_PKGS=(libc6-dev libc6 linux-libc-dev libcrypt-dev
              libprotobuf-c-dev libmnl-dev libseccomp-dev libcap-dev libblkid-dev
              libjson-c-dev libjson-c5)
# What a usable sysroot must have, under usr/lib/<triplet>/.
# shellcheck disable=SC2034
SYSROOT_LIBS=(crt1.o libc.a libprotobuf-c.a libmnl.a libseccomp.a libcap.a libblkid.a libjson-c.a)
