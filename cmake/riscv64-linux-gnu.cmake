# CMake toolchain file: static riscv64 build on a Debian 12 x86_64 host.
#
# Debian 12 has no riscv64 libraries, so cmake/fetch-sysroot.sh builds a sysroot
# from Debian 13 (trixie) riscv64 .debs plus trixie's binutils 2.44 linker; the
# two traps this works around are marked "Trap 1" and "Trap 2" below.
#
# Sets for the project:
#   KA_SYSROOT   the riscv64 sysroot (also CMAKE_SYSROOT)
#   KA_STRIP     a strip that handles riscv64 ELF (trixie's 2.44, via wrapper)
#   KA_STATIC    ON (cache): link everything statically
#   CMAKE_CROSSCOMPILING_EMULATOR  qemu-riscv64-static, so ctest runs the tests
#
# The project must, after project():  set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
# when KA_STATIC is ON (project() resets it; otherwise pkg-config imported
# targets resolve to .so and -static fails).
#
# Cache dir: -DKA_CACHE_DIR=..., else $KATA_AGENT_CACHE, else ~/.cache/kata-agent-c.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR riscv64)

include("${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake")
ka_toolchain_cache_dir("Cache for the riscv64 sysroot and host linker")
ka_toolchain_fetch_sysroot(fetch-sysroot.sh _KA_SYSROOT_READY)

set(KA_SYSROOT "${KA_CACHE_DIR}/sysroot")
# Trap 1: Debian's cross gcc searches its own glibc 2.36 headers/crt/libc
# (/usr/riscv64-linux-gnu) before --sysroot; ka_toolchain_cross_gcc works around it.
# Trap 2: Debian 12's ld 2.40 crashes on trixie's libc.a; -B<cache>/bin/ makes
# gcc run the `ld` wrapper there (trixie's ld.bfd 2.44).
ka_toolchain_cross_gcc(riscv64-linux-gnu " -B${KA_CACHE_DIR}/bin/")

# binutils 2.44 wrappers for the tools CMake may call on riscv64 objects (gcc
# itself links through -B above; CMAKE_LINKER is informational for C).
# Debian 12's riscv64-linux-gnu-strip 2.40 also strips the final executable
# correctly (byte-identical result), but 2.44 matches the linker.
set(KA_STRIP "${KA_CACHE_DIR}/bin/riscv64-linux-gnu-strip")
set(CMAKE_STRIP   "${KA_STRIP}" CACHE FILEPATH "strip (binutils 2.44 wrapper)")
set(CMAKE_LINKER  "${KA_CACHE_DIR}/bin/ld" CACHE FILEPATH "ld (binutils 2.44 wrapper)")
set(CMAKE_OBJCOPY "${KA_CACHE_DIR}/bin/riscv64-linux-gnu-objcopy" CACHE FILEPATH "objcopy (binutils 2.44 wrapper)")
set(CMAKE_READELF "${KA_CACHE_DIR}/bin/riscv64-linux-gnu-readelf" CACHE FILEPATH "readelf (binutils 2.44 wrapper)")

find_program(KA_QEMU_RISCV64 qemu-riscv64-static NO_CMAKE_FIND_ROOT_PATH)
if(KA_QEMU_RISCV64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${KA_QEMU_RISCV64}")
else()
  message(WARNING "qemu-riscv64-static not found (package qemu-user-static): ctest cannot run riscv64 tests")
endif()

set(KA_STATIC ON CACHE BOOL "Link the agent statically")
