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

if(NOT KA_CACHE_DIR)
  if(DEFINED ENV{KATA_AGENT_CACHE} AND NOT "$ENV{KATA_AGENT_CACHE}" STREQUAL "")
    set(_ka_cache "$ENV{KATA_AGENT_CACHE}")
  else()
    set(_ka_cache "$ENV{HOME}/.cache/kata-agent-c")
  endif()
  set(KA_CACHE_DIR "${_ka_cache}" CACHE PATH "Cache for the aarch64 sysroot")
  unset(_ka_cache)
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES KA_CACHE_DIR)

if(NOT "$ENV{_KA_SYSROOT_ARM64_READY}" STREQUAL "${KA_CACHE_DIR}")
  execute_process(
    COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/fetch-sysroot-arm64.sh" "${KA_CACHE_DIR}"
    RESULT_VARIABLE _ka_rc)
  if(NOT _ka_rc EQUAL 0)
    message(FATAL_ERROR "cmake/fetch-sysroot-arm64.sh failed (${_ka_rc}); see its messages above")
  endif()
  set(ENV{_KA_SYSROOT_ARM64_READY} "${KA_CACHE_DIR}")
  unset(_ka_rc)
endif()

set(KA_SYSROOT "${KA_CACHE_DIR}/sysroot-aarch64")
set(_ka_libdir "${KA_SYSROOT}/usr/lib/aarch64-linux-gnu")

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_SYSROOT "${KA_SYSROOT}")

# Trap 1 (see cmake/riscv64-linux-gnu.cmake): -nostdinc plus explicit -isystem, -B/-L.
execute_process(
  COMMAND ${CMAKE_C_COMPILER} -print-file-name=include
  OUTPUT_VARIABLE _ka_gcc_include OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE _ka_rc)
if(NOT _ka_rc EQUAL 0 OR NOT IS_DIRECTORY "${_ka_gcc_include}")
  message(FATAL_ERROR "${CMAKE_C_COMPILER} not usable (install gcc-aarch64-linux-gnu)")
endif()
set(CMAKE_C_FLAGS_INIT
  "-nostdinc -isystem ${_ka_gcc_include} -isystem ${KA_SYSROOT}/usr/include/aarch64-linux-gnu -isystem ${KA_SYSROOT}/usr/include")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -B${_ka_libdir}/ -L${_ka_libdir}")
unset(_ka_gcc_include)
unset(_ka_rc)

set(ENV{PKG_CONFIG_SYSROOT_DIR} "${KA_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR} "${_ka_libdir}/pkgconfig:${KA_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
unset(_ka_libdir)

set(CMAKE_FIND_ROOT_PATH "${KA_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(KA_STRIP aarch64-linux-gnu-strip)
find_program(KA_QEMU_AARCH64 qemu-aarch64-static NO_CMAKE_FIND_ROOT_PATH)
if(KA_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${KA_QEMU_AARCH64}")
endif()

set(KA_STATIC ON CACHE BOOL "Link the agent statically")
