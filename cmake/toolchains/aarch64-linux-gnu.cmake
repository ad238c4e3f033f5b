# Cross build for 64-bit ARM (arm64) with Debian's cross toolchain
# (crossbuild-essential-arm64) and Debian's multiarch arm64 libraries.
# tools/cross-build.sh arm64 installs both and uses this file; by hand:
#
#   cmake -S . -B build-arm64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#     -DVB_CROSS_OVERLAY=build-arm64-deps/usr
#
# The programs are arm64; the tools that run during the build are the host's
# (protoc, cmake scripts). Tests and the man pages' --help run the arm64
# programs through qemu-user (CMAKE_CROSSCOMPILING_EMULATOR), so
# `ctest --test-dir build-arm64 -L unit` runs the unit tests under qemu.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(VB_CROSS_TRIPLET aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${VB_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${VB_CROSS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${VB_CROSS_TRIPLET})

# qemu-user runs arm64 programs on the build host; it finds their loader and
# libraries in the multiarch folders (/lib/ld-linux-aarch64.so.1,
# /usr/lib/aarch64-linux-gnu).
find_program(VB_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(VB_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${VB_QEMU_AARCH64})
endif()

# The host's protoc generates the code (the arm64 libprotobuf is the same
# Debian version, so generated code and library agree).
set(Protobuf_PROTOC_EXECUTABLE /usr/bin/protoc CACHE FILEPATH "the build host's protoc")

# pkg-config for arm64: Debian's wrapper searches only the arm64 .pc files.
set(PKG_CONFIG_EXECUTABLE /usr/bin/${VB_CROSS_TRIPLET}-pkg-config CACHE FILEPATH "")

# The arm64 -dev packages that cannot be installed beside their amd64 twins
# (libyaml-cpp-dev is Multi-Arch: no; libwebsockets-dev ships a different
# /usr/include/lws_config.h per architecture) are unpacked by
# tools/cross-build.sh into an overlay folder, searched first for packages,
# headers and .pc files.
set(VB_CROSS_OVERLAY "" CACHE PATH "folder (like /usr) with the arm64 -dev files that multiarch cannot hold")
if(VB_CROSS_OVERLAY)
  list(PREPEND CMAKE_PREFIX_PATH ${VB_CROSS_OVERLAY})
  # FindPkgConfig adds CMAKE_PREFIX_PATH's lib/<arch>/pkgconfig only when
  # not cross compiling: name it here (this file is read on every configure).
  set(ENV{PKG_CONFIG_PATH} ${VB_CROSS_OVERLAY}/lib/${VB_CROSS_TRIPLET}/pkgconfig)
endif()

# Programs (protoc, node, …) from the host; libraries, headers and CMake
# packages only for the target: the multiarch folders are picked through
# CMAKE_LIBRARY_ARCHITECTURE, never the host's x86_64 ones.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# The Debian package of this build is for arm64 (CPack asks dpkg of the
# build host otherwise).
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
