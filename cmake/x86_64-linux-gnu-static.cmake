# CMake toolchain file: static x86_64 build on a Debian 12 x86_64 host, for the guest.
#
# Not a cross build: the host gcc and Debian 12's own static archives (libc.a from
# libc6-dev, libprotobuf-c.a, libseccomp.a, libcap.a, libblkid.a from their -dev
# packages).  The one gap is libmnl: Debian 12's libmnl-dev has no libmnl.a, so
# cmake/fetch-libmnl-amd64.sh takes Debian 13's (see there why that links).
# The guest then never depends on the build host's shared libraries.
#
# Sets KA_STATIC ON (the project then resolves pkg-config libraries to .a) and
# pkgcfg_lib_MNL_mnl, the cache entry FindPkgConfig would otherwise fill with
# bookworm's libmnl.so.  Cache dir as cmake/riscv64-linux-gnu.cmake.

include("${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake")
ka_toolchain_cache_dir("Cache for Debian 13's libmnl.a")

if(NOT pkgcfg_lib_MNL_mnl)
  execute_process(
    COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/fetch-libmnl-amd64.sh" "${KA_CACHE_DIR}"
    OUTPUT_VARIABLE _ka_mnl OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _ka_rc)
  if(NOT _ka_rc EQUAL 0)
    message(FATAL_ERROR "cmake/fetch-libmnl-amd64.sh failed (${_ka_rc}); see its messages above")
  endif()
  set(pkgcfg_lib_MNL_mnl "${_ka_mnl}" CACHE FILEPATH "libmnl.a (Debian 13 amd64)")
  unset(_ka_mnl)
  unset(_ka_rc)
endif()

set(CMAKE_C_COMPILER gcc)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(KA_STATIC ON CACHE BOOL "Link the agent statically")
