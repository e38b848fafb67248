# CMake toolchain file: static aarch64 build on a Debian 12 x86_64 host.
#
# As cmake/riscv64-linux-gnu.cmake: a sysroot of Debian 13 arm64 .debs
# (cmake/fetch-sysroot-arm64.sh) and Debian 12's cross gcc with trap 1 worked around
# (its own glibc 2.36 in /usr/aarch64-linux-gnu is searched before --sysroot).
# Trap 2 does not apply: Debian 12's aarch64 ld 2.40 links trixie's arm64 libc.a.
#
# Sets KA_SYSROOT, KA_STRIP, KA_STATIC ON, and qemu-aarch64-static as the emulator.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

include("${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake")
ka_toolchain_cache_dir("Cache for the aarch64 sysroot")
ka_toolchain_fetch_sysroot(fetch-sysroot-arm64.sh _KA_SYSROOT_ARM64_READY)

set(KA_SYSROOT "${KA_CACHE_DIR}/sysroot-aarch64")
# Trap 1 is worked around in ka_toolchain_cross_gcc; trap 2 does not apply (header).
ka_toolchain_cross_gcc(aarch64-linux-gnu "")

set(KA_STRIP aarch64-linux-gnu-strip)
find_program(KA_QEMU_AARCH64 qemu-aarch64-static NO_CMAKE_FIND_ROOT_PATH)
if(KA_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${KA_QEMU_AARCH64}")
endif()

set(KA_STATIC ON CACHE BOOL "Link the agent statically")
