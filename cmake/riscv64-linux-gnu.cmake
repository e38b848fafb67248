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

# This file is read several times per configure (project(), every try_compile),
# in fresh CMake instances; the cache dir is passed to try_compile explicitly.
if(NOT KA_CACHE_DIR)
  if(DEFINED ENV{KATA_AGENT_CACHE} AND NOT "$ENV{KATA_AGENT_CACHE}" STREQUAL "")
    set(_ka_cache "$ENV{KATA_AGENT_CACHE}")
  else()
    set(_ka_cache "$ENV{HOME}/.cache/kata-agent-c")
  endif()
  set(KA_CACHE_DIR "${_ka_cache}" CACHE PATH "Cache for the riscv64 sysroot and host linker")
  unset(_ka_cache)
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES KA_CACHE_DIR)

# Fetch/refresh the sysroot.  The script returns at once when its stamp matches;
# the environment marker (process-wide, so seen by try_compile's instances too)
# skips even that after the first successful run in this cmake process.
if(NOT "$ENV{_KA_SYSROOT_READY}" STREQUAL "${KA_CACHE_DIR}")
  execute_process(
    COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/fetch-sysroot.sh" "${KA_CACHE_DIR}"
    RESULT_VARIABLE _ka_rc)
  if(NOT _ka_rc EQUAL 0)
    message(FATAL_ERROR "cmake/fetch-sysroot.sh failed (${_ka_rc}); see its messages above")
  endif()
  set(ENV{_KA_SYSROOT_READY} "${KA_CACHE_DIR}")
  unset(_ka_rc)
endif()

set(KA_SYSROOT "${KA_CACHE_DIR}/sysroot")
set(_ka_libdir "${KA_SYSROOT}/usr/lib/riscv64-linux-gnu")

set(CMAKE_C_COMPILER riscv64-linux-gnu-gcc)
set(CMAKE_SYSROOT "${KA_SYSROOT}")   # CMake adds --sysroot= to compile and link lines

# Trap 1: Debian's cross gcc searches its own glibc 2.36 headers/crt/libc
# (/usr/riscv64-linux-gnu) before --sysroot.  -nostdinc plus explicit -isystem
# for the headers, -B/-L for crt*.o and libc.a.
execute_process(
  COMMAND ${CMAKE_C_COMPILER} -print-file-name=include
  OUTPUT_VARIABLE _ka_gcc_include OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE _ka_rc)
if(NOT _ka_rc EQUAL 0 OR NOT IS_DIRECTORY "${_ka_gcc_include}")
  message(FATAL_ERROR "${CMAKE_C_COMPILER} not usable (install gcc-riscv64-linux-gnu)")
endif()
set(CMAKE_C_FLAGS_INIT
  "-nostdinc -isystem ${_ka_gcc_include} -isystem ${KA_SYSROOT}/usr/include/riscv64-linux-gnu -isystem ${KA_SYSROOT}/usr/include")
# Trap 2: Debian 12's ld 2.40 crashes on trixie's libc.a; -B<cache>/bin/ makes
# gcc run the `ld` wrapper there (trixie's ld.bfd 2.44).
set(CMAKE_EXE_LINKER_FLAGS_INIT
  "-static -B${_ka_libdir}/ -L${_ka_libdir} -B${KA_CACHE_DIR}/bin/")
unset(_ka_gcc_include)
unset(_ka_rc)

# pkg-config sees only the sysroot (.pc paths get the sysroot prefix).
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${KA_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR} "${_ka_libdir}/pkgconfig:${KA_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
unset(_ka_libdir)

# Libraries and headers from the sysroot only; programs from the host.
set(CMAKE_FIND_ROOT_PATH "${KA_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

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
