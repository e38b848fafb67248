# Shared by the toolchain files (cmake/*-linux-gnu*.cmake): the blocks they all
# repeat, as macros so that what they set lands in the toolchain file's scope.
# Toolchain files are read several times per configure (project(), every
# try_compile), in fresh CMake instances; each read includes this file again.

# KA_CACHE_DIR: -DKA_CACHE_DIR=..., else $KATA_AGENT_CACHE, else
# ~/.cache/kata-agent-c.  Passed to try_compile explicitly, since its instances
# do not see this configure's cache.  <doc> is the cache entry's description.
macro(ka_toolchain_cache_dir doc)
  if(NOT KA_CACHE_DIR)
    if(DEFINED ENV{KATA_AGENT_CACHE} AND NOT "$ENV{KATA_AGENT_CACHE}" STREQUAL "")
      set(_ka_cache "$ENV{KATA_AGENT_CACHE}")
    else()
      set(_ka_cache "$ENV{HOME}/.cache/kata-agent-c")
    endif()
    set(KA_CACHE_DIR "${_ka_cache}" CACHE PATH "${doc}")
    unset(_ka_cache)
  endif()
  list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES KA_CACHE_DIR)
endmacro()

# Runs cmake/<script> <KA_CACHE_DIR> to fetch or refresh a sysroot.  The script
# returns at once when its stamp matches; the environment marker <ready_env>
# (process-wide, so seen by try_compile's instances too) skips even that after
# the first successful run in this cmake process.
macro(ka_toolchain_fetch_sysroot script ready_env)
  if(NOT "$ENV{${ready_env}}" STREQUAL "${KA_CACHE_DIR}")
    execute_process(
      COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/${script}" "${KA_CACHE_DIR}"
      RESULT_VARIABLE _ka_rc)
    if(NOT _ka_rc EQUAL 0)
      message(FATAL_ERROR "cmake/${script} failed (${_ka_rc}); see its messages above")
    endif()
    set(ENV{${ready_env}} "${KA_CACHE_DIR}")
    unset(_ka_rc)
  endif()
endmacro()

# A static build with Debian 12's cross gcc for <triple> against the sysroot
# KA_SYSROOT (set by the caller); <extra_link_flags> are appended to the link line.
#
# Debian's cross gcc searches its own glibc 2.36 headers/crt/libc
# (/usr/<triple>) before --sysroot ("Trap 1" in cmake/riscv64-linux-gnu.cmake):
# -nostdinc plus explicit -isystem for the headers, -B/-L for crt*.o and libc.a.
# pkg-config sees only the sysroot (.pc paths get the sysroot prefix); libraries
# and headers come from the sysroot only, programs from the host.
macro(ka_toolchain_cross_gcc triple extra_link_flags)
  set(_ka_libdir "${KA_SYSROOT}/usr/lib/${triple}")

  set(CMAKE_C_COMPILER ${triple}-gcc)
  set(CMAKE_SYSROOT "${KA_SYSROOT}")   # CMake adds --sysroot= to compile and link lines

  execute_process(
    COMMAND ${CMAKE_C_COMPILER} -print-file-name=include
    OUTPUT_VARIABLE _ka_gcc_include OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _ka_rc)
  if(NOT _ka_rc EQUAL 0 OR NOT IS_DIRECTORY "${_ka_gcc_include}")
    message(FATAL_ERROR "${CMAKE_C_COMPILER} not usable (install gcc-${triple})")
  endif()
  set(CMAKE_C_FLAGS_INIT
    "-nostdinc -isystem ${_ka_gcc_include} -isystem ${KA_SYSROOT}/usr/include/${triple} -isystem ${KA_SYSROOT}/usr/include")
  set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -B${_ka_libdir}/ -L${_ka_libdir}${extra_link_flags}")
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
endmacro()
